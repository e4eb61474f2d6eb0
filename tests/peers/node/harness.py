"""Drive a WebRTC stack that runs in Node (node-datachannel, werift) from trio tests.

Each stack has a CommonJS script here (``node_datachannel_peer.js``, ``werift_peer.js``) that
speaks the control protocol of the Chromium page and the aiortc peer (``control.js``), so the
peer is a :class:`PeerControl` and ``pc_interop_helpers.connect`` / ``transfer`` work with it::

    async with open_node_peer("werift", echo=True) as theirs:
        await ours.create_channel("chat")
        await connect(ours, theirs, trickle=True)

The packages come from ``package.json`` / ``package-lock.json`` in this folder, installed by
``.ci/setup`` (``npm ci``). Leaving the block (normally, by an error or by cancellation) closes
the connection, ends the process by its pid and reaps it; an exception leaving the block carries
the conversation and the script's stderr as notes. :meth:`NodePeer.pause` and
:meth:`NodePeer.resume` stop and continue the process (SIGSTOP/SIGCONT): a peer that vanishes
from the network without a word, and comes back.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
import trio
import trio.lowlevel

from peers.signaling import DEFAULT_TIMEOUT, PeerControl, PeerError, open_service_nursery

HERE = Path(__file__).parent
SCRIPTS = {
    "node-datachannel": HERE / "node_datachannel_peer.js",
    "werift": HERE / "werift_peer.js",
}
Stack = Literal["node-datachannel", "werift"]
STDERR_KEEP = 256 * 1024
MAX_LINE = 16 << 20


def require_node() -> str:
    """The node executable; fails the test (never skips) saying what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: bash .ci/setup installs nodejs and npm and runs npm ci in "
            "tests/peers/node",
            pytrace=False,
        )
    for package in ("node-datachannel", "werift"):
        if not (HERE / "node_modules" / package / "package.json").exists():
            pytest.fail(
                f"{package} is missing from tests/peers/node/node_modules: run bash .ci/setup "
                "(npm ci in tests/peers/node)",
                pytrace=False,
            )
    return node


class NodePeer(PeerControl):
    """A Node WebRTC stack in a subprocess, spoken to in JSON lines."""

    def __init__(self, stack: str, config: dict[str, Any], *, timeout: float) -> None:
        super().__init__(f"{stack} peer", config, timeout=timeout)
        self.stack = stack
        self._process: trio.Process | None = None
        self._stderr = bytearray()
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def pause(self) -> None:
        """SIGSTOP: the peer stops answering anything, as if it dropped off the network."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    async def _send_raw(self, message: dict[str, Any]) -> None:
        if self._process is None or self._process.stdin is None:
            raise PeerError(f"the {self.stack} peer is not running")
        try:
            await self._process.stdin.send_all(json.dumps(message).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerError(f"the {self.stack} peer's stdin is closed: {exc}") from exc

    async def _read_stdout(self, process: trio.Process) -> None:
        assert process.stdout is not None
        buffer = bytearray()
        try:
            while chunk := await process.stdout.receive_some(65536):
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        self._record(_parse_line(line))
                if len(buffer) > MAX_LINE:
                    raise PeerError(f"the {self.stack} peer wrote an overlong line")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        finally:
            self._transport_ended()

    async def _read_stderr(self, process: trio.Process) -> None:
        assert process.stderr is not None
        try:
            while chunk := await process.stderr.receive_some(65536):
                self._stderr += chunk
                if len(self._stderr) > STDERR_KEEP:
                    del self._stderr[: len(self._stderr) - STDERR_KEEP]
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def errors(self) -> list[str]:
        """What the script reported at level ``error`` (uncaught exceptions included)."""
        return [
            str(m.get("text"))
            for m in self.messages
            if m["type"] == "log" and m.get("level") == "error"
        ]

    def debug_text(self) -> str:
        return f"{super().debug_text()}\n{self.stack} peer stderr:\n{self.stderr_text()}"


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        # A stray console.log in the stack: keep it for debugging, it is not protocol.
        return {"type": "log", "level": "stdout", "text": line.decode("utf-8", "replace")}
    return message


@asynccontextmanager
async def open_node_peer(
    stack: Stack,
    *,
    trickle: bool = True,
    echo: bool = False,
    max_message_size: int = 262144,
    wait_seconds: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[NodePeer]:
    """Start ``stack``'s peer script; ``trickle=False`` leaves the candidates in the SDP,
    ``echo`` makes channels the remote opens send every message back, ``max_message_size``
    is the ``a=max-message-size`` it advertises (the stacks' own defaults are 256 KiB for
    libdatachannel and 64 KiB for werift; 256 KiB, trio_rtc's, unless told)."""
    node = require_node()
    config: dict[str, Any] = {"trickle": trickle, "echo": echo, "maxMessageSize": max_message_size}
    peer = NodePeer(stack, config, timeout=wait_seconds)
    process = await trio.lowlevel.open_process(
        [node, str(SCRIPTS[stack]), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(HERE),
    )
    peer._process = process
    try:
        async with open_service_nursery() as nursery:
            nursery.start_soon(peer._read_stdout, process)
            nursery.start_soon(peer._read_stderr, process)
            try:
                await peer.wait_message(lambda m: m["type"] == "hello")
                yield peer
            finally:
                with trio.CancelScope(shield=True):
                    await _stop(process)
    except BaseException as exc:
        if isinstance(exc, Exception):
            exc.add_note(peer.debug_text())
        raise
    finally:
        # Every wait here is bounded: a cleanup that hangs would hang the whole test run.
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            if process.returncode is None:
                process.kill()
            await process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()
        peer.returncode = process.returncode


async def _stop(process: trio.Process) -> None:
    """End of stdin makes the script close its connection and exit; kill it if it lingers."""
    if process.returncode is None:
        # A paused peer cannot read its stdin.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
    with trio.move_on_after(5):
        if process.stdin is not None:
            await process.stdin.aclose()
        await process.wait()
    if process.returncode is None:
        process.kill()
    with trio.move_on_after(5):
        await process.wait()
