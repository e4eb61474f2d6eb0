"""The browser echo example (``examples/browser_echo``), run as a user runs it against headless
Chromium with the browser's **default flags** (no WebRTC switch: host addresses hidden behind
``<uuid>.local`` mDNS names, loopback left out).

The browser runs in a network namespace of its own, as in ``peers/chromium.py``, with what a
user's machine has: ``lo`` and one network interface with a default route (a veth whose both
ends stay inside). The example server runs as a subprocess in that namespace with its default
options (every interface, mDNS resolution on); DevTools opens the page with ``?selftest``, which
makes the page send text and 1 MiB of binary over its data channel, check every echo, and send a
verdict line that the server prints. The server's own count and SHA-256 of the binary bytes it
echoed must match the page's, and the page's status block must read "self-test passed" — in the
DOM and, in green, in a screenshot.

On a machine whose only network is loopback, a browser with default settings gathers no ICE
candidate at all; the second test checks that the page and the server then both say so, in a few
seconds, instead of failing silently.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import av
import pytest
import trio
import trio.lowlevel
from peers import chromium
from peers.chromium import ChromiumBrowser, Mode
from peers.signaling import open_service_nursery

pytestmark = pytest.mark.interop

SERVER = Path(__file__).resolve().parent.parent / "examples" / "browser_echo" / "server.py"
TIMEOUT = 20.0
#: The page's status colours (index.html): green when connected, red when it gave up.
GREEN = (0x1E, 0x8E, 0x3E)
RED = (0xC5, 0x22, 0x1F)
COLOUR_TOLERANCE = 12
#: The server's --connect-timeout in the test where nothing can connect.
CONNECT_TIMEOUT = 2


class Output:
    """The lines a subprocess printed, and a way to wait for one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = trio.Event()
        self.ended = False

    async def read(self, stream: trio.abc.ReceiveStream) -> None:
        buffer = b""
        try:
            while chunk := await stream.receive_some(65536):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                self.lines += [line.decode("utf-8", "replace") for line in complete]
                self._changed.set()
                self._changed = trio.Event()
        finally:
            self.ended = True
            self._changed.set()

    async def wait_line(self, predicate: Callable[[str], bool]) -> str:
        index = 0
        while True:
            for line in self.lines[index:]:
                if predicate(line):
                    return line
            index = len(self.lines)
            if self.ended:
                raise AssertionError("the server exited before printing the expected line")
            await self._changed.wait()


def launch_with_default_flags(mode: Mode, work_dir: Path, *extra: str) -> ChromiumBrowser:
    """Chromium with only the harness's base flags (headless, no sandbox, no background
    networking, DevTools) and ``extra``: none of the WebRTC switches the other browser tests add.

    Mode ``mdns`` gives the namespace a veth with a default route (a user's machine on a
    network); mode ``loopback`` gives it only ``lo``."""
    flags = list(extra)
    with (
        mock.patch.object(chromium, "MDNS_FLAGS", flags),
        mock.patch.object(chromium, "LOOPBACK_FLAGS", flags),
    ):
        return ChromiumBrowser.launch(mode, work_dir)


@pytest.fixture(scope="module")
def chromium_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromiumBrowser]:
    browser = launch_with_default_flags("mdns", tmp_path_factory.mktemp("chromium-default"))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def chromium_default_loopback_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ChromiumBrowser]:
    work_dir = tmp_path_factory.mktemp("chromium-default-lo")
    browser = launch_with_default_flags("loopback", work_dir)
    try:
        yield browser
    finally:
        browser.close()


async def page_call(
    browser: ChromiumBrowser, target_id: str, method: str, **params: Any
) -> dict[str, Any]:
    """One DevTools call in a page's own session (``Target.attachToTarget`` with ``flatten``;
    the harness's calls go to the browser)."""
    with trio.fail_after(chromium.DEVTOOLS_TIMEOUT):
        async with browser._devtools() as devtools:
            attached = await devtools.call(
                "Target.attachToTarget", targetId=target_id, flatten=True
            )
            devtools.next_id += 1
            request = {
                "id": devtools.next_id,
                "sessionId": attached["sessionId"],
                "method": method,
                "params": params,
            }
            await devtools.ws.send_message(json.dumps(request))
            while True:
                reply = json.loads(await devtools.ws.get_message())
                if reply.get("id") == request["id"]:
                    break
    assert "error" not in reply, reply
    return dict(reply["result"])


async def page_status(browser: ChromiumBrowser, target_id: str) -> dict[str, Any]:
    """The status block's text, class and place on the page (CSS pixels)."""
    expression = (
        "(() => { const s = document.getElementById('status');"
        " return {text: s.textContent, kind: s.className,"
        " rect: s.getBoundingClientRect().toJSON()}; })()"
    )
    result = await page_call(
        browser, target_id, "Runtime.evaluate", expression=expression, returnByValue=True
    )
    return dict(result["result"]["value"])


async def wait_status(browser: ChromiumBrowser, target_id: str, kind: str) -> dict[str, Any]:
    while True:
        status = await page_status(browser, target_id)
        if status["kind"] == kind:
            return status
        await trio.sleep(0.05)


async def colour_share(
    browser: ChromiumBrowser, target_id: str, rect: dict[str, float], colour: tuple[int, int, int]
) -> float:
    """The share of the pixels of a screenshot of ``rect`` that have ``colour``."""
    clip = {key: rect[key] for key in ("x", "y", "width", "height")}
    shot = await page_call(
        browser, target_id, "Page.captureScreenshot", format="png", clip={**clip, "scale": 1}
    )
    decoder = av.CodecContext.create("png", "r")
    [picture] = decoder.decode(av.Packet(base64.b64decode(shot["data"])))
    rgb = picture.reformat(format="rgb24")
    plane = rgb.planes[0]
    data = bytes(plane)
    matching = 0
    for y in range(rgb.height):
        row = data[y * plane.line_size : y * plane.line_size + 3 * rgb.width]
        for x in range(0, len(row), 3):
            pixel = row[x : x + 3]
            if all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(pixel, colour, strict=True)):
                matching += 1
    return matching / (rgb.width * rgb.height)


@asynccontextmanager
async def run_server(
    browser: ChromiumBrowser, *options: str
) -> AsyncIterator[tuple[trio.Process, Output, str]]:
    """The example server started as a user would (plus ``options``) inside the browser's
    namespace: the process, its stdout lines and the page URL it printed. Killed at the end;
    the server's output and the browser's log are attached to a failure."""
    command = [sys.executable, "-u", str(SERVER), "--port", "0", *options]
    process = await trio.lowlevel.open_process(
        browser.namespace.command(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    output, errors = Output(), Output()
    try:
        async with open_service_nursery() as nursery:
            nursery.start_soon(output.read, process.stdout)
            nursery.start_soon(errors.read, process.stderr)
            with trio.fail_after(TIMEOUT):
                ready = await output.wait_line(lambda line: line.startswith("browser echo page: "))
            url = ready.split(": ", 1)[1]
            assert url.startswith("http://127.0.0.1:")
            yield process, output, url
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


async def test_browser_echo_with_the_browsers_default_settings(
    chromium_default: ChromiumBrowser,
) -> None:
    browser = chromium_default
    start = trio.current_time()
    async with run_server(browser) as (process, output, url):
        with trio.fail_after(TIMEOUT):
            served = trio.current_time() - start
            target = await browser.devtools_call("Target.createTarget", url=url + "?selftest")
            target_id = str(target["targetId"])
            try:
                verdict = await output.wait_line(lambda line: "self-test" in line)
                closed = await output.wait_line(lambda line: "closed after" in line)
                status = await wait_status(browser, target_id, "connected")
                green = await colour_share(browser, target_id, status["rect"], GREEN)
            finally:
                await browser.devtools_call("Target.closeTarget", targetId=target_id)
            finished = trio.current_time() - start
            # Closing the page ends its WebSocket, and with it the server's connection.
            await output.wait_line(lambda line: line == "peer 1: gone")
            # Ctrl-C stops the server cleanly.
            process.send_signal(signal.SIGINT)
            await output.wait_line(lambda line: line == "stopped")
            await process.wait()
            assert process.returncode == 0

    assert "self-test passed" in verdict, verdict
    page_sha = re.search(r"sha256 ([0-9a-f]{64})", verdict)
    server = re.search(r"after (\d+) messages, (\d+) binary bytes, sha256 ([0-9a-f]{64})", closed)
    assert page_sha is not None and server is not None, (verdict, closed)
    # 4 texts, 64 binary chunks of 16 KiB, the verdict.
    assert server.groups() == ("69", str(1 << 20), page_sha.group(1))
    assert "peer 1: connectionState connected" in output.lines
    assert "peer 1: 'echo' text 'hello'" in output.lines
    assert not any("not connected" in line for line in output.lines), output.lines
    # Default privacy: the browser showed its address only as an mDNS name.
    candidates = [line for line in output.lines if line.startswith("peer 1: browser candidate ")]
    assert candidates and all(".local:" in line for line in candidates), candidates
    # The page says so, in its DOM and in pixels: a green block behind the status line.
    assert status["text"] == "self-test passed", status
    assert green > 0.5, (green, status)
    print(
        f"example server ready {served:.2f} s; page self-test done {finished:.2f} s after start; "
        f"status block {green:.0%} green"
    )


async def test_browser_echo_says_why_when_the_browser_has_no_network(
    chromium_default_loopback_only: ChromiumBrowser,
) -> None:
    """Only ``lo``: Chromium with default settings gathers no candidate, and nothing can
    connect. Within the connect timeout the server prints why, the page shows it in red and
    sends the same diagnosis, which the server prints too."""
    browser = chromium_default_loopback_only
    async with run_server(browser, "--connect-timeout", str(CONNECT_TIMEOUT)) as (_, output, url):
        with trio.fail_after(TIMEOUT):
            target = await browser.devtools_call("Target.createTarget", url=url)
            target_id = str(target["targetId"])
            opened = trio.current_time()
            try:
                server_says = await output.wait_line(lambda line: "not connected after" in line)
                explained = trio.current_time() - opened
                page_says = await output.wait_line(lambda line: "the page says:" in line)
                status = await wait_status(browser, target_id, "failed")
                red = await colour_share(browser, target_id, status["rect"], RED)
            finally:
                await browser.devtools_call("Target.closeTarget", targetId=target_id)

    assert server_says == (
        f"peer 1: not connected after {CONNECT_TIMEOUT} s: the browser sent no ICE candidates. "
        "Browsers leave loopback out by default, so on a machine whose only network is loopback "
        "they have nothing to connect with: join any network (no internet needed), or start "
        "Chromium with --disable-features=WebRtcHideLocalIpsWithMdns "
        "--allow-loopback-in-peer-connection"
    )
    assert explained < CONNECT_TIMEOUT + 3, explained
    assert "this browser gathered no ICE candidates" in page_says, page_says
    assert status["text"].startswith(f"no connection after {CONNECT_TIMEOUT} s: this browser")
    assert red > 0.5, (red, status)
    print(f"explained {explained:.2f} s after the page opened; status block {red:.0%} red")
