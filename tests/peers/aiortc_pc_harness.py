"""Drive an aiortc RTCPeerConnection (``aiortc_pc_peer.py``, a subprocess) from trio tests.

The peer obeys the same commands as the Chromium page, so it is a :class:`PeerControl` too and a
test can swap one for the other::

    async with open_aiortc_peer(trickle=True) as aiortc_peer:
        offer = await aiortc_peer.create_offer()
        ...

Leaving the block (normally, by an error or by cancellation) closes the peer connection, stops
the subprocess, reaps it and closes its pipes. An exception leaving the block carries the whole
conversation and aiortc's log (stderr) as notes.

To talk to a peer inside a network namespace (Chromium's, see ``chromium.py``), pass
``namespace=browser.namespace``: the subprocess then runs inside it and may also use the
namespace's private networks; ``mdns=True`` additionally lets aioice resolve ``.local`` names
(multicast, contained in the namespace). Outside a namespace only loopback is ever used.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel

from peers.chromium import NetworkNamespace
from peers.signaling import DEFAULT_TIMEOUT, PeerControl, PeerError, open_service_nursery

PEER_SCRIPT = Path(__file__).with_name("aiortc_pc_peer.py")
STDERR_KEEP = 256 * 1024
MAX_LINE = 16 << 20


class AiortcPeer(PeerControl):
    """aiortc's RTCPeerConnection in a subprocess, spoken to in JSON lines."""

    def __init__(self, config: dict[str, Any], *, timeout: float) -> None:
        super().__init__("aiortc peer", config, timeout=timeout)
        self._process: trio.Process | None = None
        self._stderr = bytearray()
        self.returncode: int | None = None

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
            raise PeerError("the aiortc peer is not running")
        try:
            await self._process.stdin.send_all(json.dumps(message).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerError(f"the aiortc peer's stdin is closed: {exc}") from exc

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
                    raise PeerError("the aiortc peer wrote an overlong line")
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

    async def add_transceiver(self, kind: str, direction: str = "sendrecv") -> dict[str, Any]:
        """aiortc's ``addTransceiver(kind, direction=…)`` without a track: the next offer has an
        m-section of that kind."""
        return dict(await self.request("add_transceiver", media=kind, direction=direction))

    async def add_track(self, kind: str, *, noise: bool = False) -> dict[str, Any]:
        """aiortc's ``addTrack`` with its generated track of ``kind`` (silence, a blank
        picture; ``noise``: random pixels): media flows once negotiated."""
        return dict(await self.request("add_track", media=kind, noise=noise))

    async def sender_bitrates(self) -> list[int | None]:
        """Each sender's encoder target bitrate (aiortc follows the REMB it receives)."""
        return list(await self.request("sender_bitrates"))

    async def transceivers(self) -> list[dict[str, Any]]:
        """Each transceiver's mid, kind and currentDirection."""
        return list(await self.request("transceivers"))

    async def receive_media(self) -> None:
        """Read and decode (aiortc's decoders) every remote track from now on."""
        await self.request("receive_media")

    async def media_received(self) -> list[dict[str, Any]]:
        """Per remote track read: mid, kind, frames, sizes ({"WxH": n}), last, samples, ended."""
        return list(await self.request("media_received"))

    async def media_transceivers(self) -> list[dict[str, Any]]:
        """Each transceiver's mid, kind, direction, currentDirection, stopped, receiverTrack
        (readyState)."""
        return list(await self.request("media_transceivers"))

    async def remove_track(self, mid: str) -> dict[str, Any]:
        """removeTrack's direction change on the transceiver of ``mid``."""
        return dict(await self.request("remove_track", mid=mid))

    async def stop_transceiver(self, mid: str) -> None:
        """aiortc's ``transceiver.stop()``; the ``…_rejecting`` verbs then reject its m-section."""
        await self.request("stop_transceiver", mid=mid)

    async def set_remote_rejecting(self, description: Mapping[str, str]) -> list[str]:
        """``set_remote`` for a description with rejected m-sections (port 0): aiortc 1.16
        accepts it and stops their transceivers, as a browser would. The rejected mids."""
        return list(
            await self.request(
                "set_remote_rejecting",
                description={"type": description["type"], "sdp": description["sdp"]},
            )
        )

    async def create_offer_rejecting(self) -> dict[str, str]:
        """``create_offer`` with stopped or rejected transceivers' m-sections at port 0 and out
        of BUNDLE, as JSEP wants and aiortc 1.16 does not do."""
        return dict(await self.request("create_offer_rejecting"))

    async def create_answer_rejecting(self) -> dict[str, str]:
        """``create_answer`` with stopped or rejected transceivers' m-sections at port 0."""
        return dict(await self.request("create_answer_rejecting"))

    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def debug_text(self) -> str:
        return f"{super().debug_text()}\naiortc peer stderr:\n{self.stderr_text()}"


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        # A stray print in the peer: keep it for debugging, it is not protocol.
        return {"type": "log", "level": "stdout", "text": line.decode("utf-8", "replace")}
    return message


@asynccontextmanager
async def open_aiortc_peer(
    *,
    trickle: bool = True,
    echo: bool = False,
    namespace: NetworkNamespace | None = None,
    mdns: bool = False,
    debug: bool = False,
    python: str = sys.executable,
    wait_seconds: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[AiortcPeer]:
    """Start an aiortc peer; see the module doc. ``trickle=False`` leaves the candidates in
    the SDP; ``echo`` makes channels the remote opens send every message back."""
    if mdns and namespace is None:
        # Resolving .local names multicasts; only a test-made namespace keeps that inside.
        raise ValueError("mdns=True needs a namespace (it would multicast on real interfaces)")
    config: dict[str, Any] = {
        "trickle": trickle,
        "echo": echo,
        "mdns": mdns,
        "allow": list(namespace.allowed_networks) if namespace else [],
        "debug": debug,
    }
    peer = AiortcPeer(config, timeout=wait_seconds)
    command = [python, "-u", str(PEER_SCRIPT), json.dumps(config)]
    if namespace is not None:
        command = namespace.command(command)
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
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
                    await _stop(peer, process)
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


async def _stop(peer: AiortcPeer, process: trio.Process) -> None:
    """End of stdin makes the peer close its connection and exit; kill it if it lingers."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a paused peer cannot read its stdin
    with trio.move_on_after(5):
        if process.stdin is not None:
            await process.stdin.aclose()
        await process.wait()
    if process.returncode is None:
        process.kill()
    with trio.move_on_after(5):
        await process.wait()
