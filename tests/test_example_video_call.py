"""The video call example (``examples/video_call``), run for real against headless Chromium.

The example server runs as a user would start it (a subprocess with its default options, here
inside the browser's network namespace so that it serves the page on that namespace's 127.0.0.1
and gathers candidates there). The browser has the default settings of a user with a camera who
allowed its use: no WebRTC switch, only Chromium's fake devices (``--use-fake-device-for-media-stream``)
and the permission granted (``--use-fake-ui-for-media-stream``), in a namespace with a network
besides loopback (see ``test_example_browser_echo``). DevTools opens the page; the server prints
what it decodes of the camera and what the page reports playing of the server's picture; both
must pass 30 frames. Ctrl-C then stops the server cleanly.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from peers.chromium import ChromiumBrowser
from peers.signaling import open_service_nursery
from test_example_browser_echo import Output, launch_with_default_flags

pytestmark = pytest.mark.interop

SERVER = Path(__file__).resolve().parent.parent / "examples" / "video_call" / "server.py"
TIMEOUT = 60.0
FRAMES = 30

CAMERA = re.compile(
    r"peer 1: camera (\d+)x(\d+), \d+ frames/s, (\d+) frames decoded; microphone (\d+) Hz"
)
PAGE = re.compile(
    r"peer 1: the page plays our video (\d+)x(\d+), (\d+) frames decoded, (\d+) audio"
)


@pytest.fixture(scope="module")
def chromium_with_camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromiumBrowser]:
    browser = launch_with_default_flags(
        "mdns",
        tmp_path_factory.mktemp("chromium-camera"),
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
    )
    try:
        yield browser
    finally:
        browser.close()


def at_least(pattern: re.Pattern[str], group: int, count: int) -> Callable[[str], bool]:
    """A line matching ``pattern`` whose ``group`` is at least ``count``."""

    def check(line: str) -> bool:
        match = pattern.match(line)
        return match is not None and int(match.group(group)) >= count

    return check


@pytest.mark.parametrize("codec", [None, "H264"])
async def test_video_call_page_against_the_example_server(
    chromium_with_camera: ChromiumBrowser, codec: str | None
) -> None:
    browser = chromium_with_camera
    command = [sys.executable, "-u", str(SERVER), "--port", "0"]
    if codec is not None:
        command += ["--codec", codec]
    process = await trio.lowlevel.open_process(
        browser.namespace.command(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    output, errors = Output(), Output()
    start = trio.current_time()
    try:
        async with open_service_nursery() as nursery:
            nursery.start_soon(output.read, process.stdout)
            nursery.start_soon(errors.read, process.stderr)
            with trio.fail_after(TIMEOUT):
                ready = await output.wait_line(lambda line: line.startswith("video call page: "))
                url = ready.split(": ", 1)[1]
                assert url.startswith("http://127.0.0.1:")
                target = await browser.devtools_call("Target.createTarget", url=url)
                try:
                    camera = await output.wait_line(at_least(CAMERA, 3, FRAMES))
                    page = await output.wait_line(at_least(PAGE, 3, FRAMES))
                    finished = trio.current_time() - start
                finally:
                    await browser.devtools_call("Target.closeTarget", targetId=target["targetId"])
                # Closing the page ends its WebSocket, and with it the call.
                await output.wait_line(lambda line: line == "peer 1: gone")
                process.send_signal(signal.SIGINT)
                await output.wait_line(lambda line: line == "stopped")
                await process.wait()
    except BaseException as exc:
        if isinstance(exc, Exception):
            exc.add_note("server stdout:\n" + "\n".join(output.lines))
            exc.add_note("server stderr:\n" + "\n".join(errors.lines))
            exc.add_note(browser.log_tail())
        raise
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            for stream in (process.stdout, process.stderr):
                await stream.aclose()

    camera_match, page_match = CAMERA.match(camera), PAGE.match(page)
    assert camera_match is not None and page_match is not None
    # Chromium's fake camera at the size the page asks for, its microphone as Opus at 48 kHz.
    assert camera_match.group(1, 2, 4) == ("640", "480", "48000"), camera
    # The server's clock picture, and its beeps counted as samples.
    assert page_match.group(1, 2) == ("640", "480"), page
    assert int(page_match.group(4)) > 0, page
    assert "peer 1: connectionState connected" in output.lines
    assert {"peer 1: receiving the page's video", "peer 1: receiving the page's audio"} <= set(
        output.lines
    )
    assert process.returncode == 0, errors.lines
    print(f"{codec or 'default codec'}: {camera!r}, {page!r} after {finished:.1f} s")
