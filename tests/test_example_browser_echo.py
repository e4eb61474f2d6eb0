"""The browser echo example (``examples/browser_echo``), run for real against headless Chromium.

The example server runs as a subprocess inside the browser's network namespace (it serves the page
on that namespace's 127.0.0.1 and gathers ICE candidates there); DevTools opens the page with
``?selftest``, which makes the page send text and 1 MiB of binary over its data channel, check
every echo, and send a verdict line that the server prints. The server's own count and SHA-256 of
the binary bytes it echoed must match the page's.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from peers.chromium import ChromiumBrowser, chromium_loopback
from peers.signaling import open_service_nursery

pytestmark = pytest.mark.interop

# Session fixtures live in peers/chromium.py; naming them here registers them for this module.
__all__ = ["chromium_loopback"]

SERVER = Path(__file__).resolve().parent.parent / "examples" / "browser_echo" / "server.py"
TIMEOUT = 20.0


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


async def test_browser_echo_page_against_the_example_server(
    chromium_loopback: ChromiumBrowser,
) -> None:
    browser = chromium_loopback
    command = [sys.executable, "-u", str(SERVER), "--port", "0", "--interface", "127.0.0.1"]
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
                ready = await output.wait_line(lambda line: line.startswith("browser echo page: "))
                url = ready.split(": ", 1)[1]
                assert url.startswith("http://127.0.0.1:")
                served = trio.current_time() - start
                target = await browser.devtools_call("Target.createTarget", url=url + "?selftest")
                try:
                    verdict = await output.wait_line(lambda line: "self-test" in line)
                    closed = await output.wait_line(lambda line: "closed after" in line)
                finally:
                    await browser.devtools_call("Target.closeTarget", targetId=target["targetId"])
                finished = trio.current_time() - start
                # Closing the page ends its WebSocket, and with it the server's connection.
                await output.wait_line(lambda line: line == "peer 1: gone")
                # Ctrl-C stops the server cleanly.
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

    assert "self-test passed" in verdict, verdict
    page_sha = re.search(r"sha256 ([0-9a-f]{64})", verdict)
    server = re.search(r"after (\d+) messages, (\d+) binary bytes, sha256 ([0-9a-f]{64})", closed)
    assert page_sha is not None and server is not None, (verdict, closed)
    # 4 texts, 64 binary chunks of 16 KiB, the verdict.
    assert server.groups() == ("69", str(1 << 20), page_sha.group(1))
    assert "peer 1: connectionState connected" in output.lines
    assert "peer 1: 'echo' text 'hello'" in output.lines
    assert process.returncode == 0, errors.lines
    print(f"example server ready {served:.2f} s; page self-test done {finished:.2f} s after start")
