"""Glue for the interop tests: trio_rtc's RTCPeerConnection driven with the verbs of the
third-party test peers (``peers/signaling.py``'s ``PeerControl``).

A Chromium page or an aiortc subprocess is a ``PeerControl``; :class:`TrioPeer` gives the
RTCPeerConnection under test the same offer/answer/candidate/channel verbs, so one
:func:`connect` and one :func:`transfer` serve every pairing::

    async with open_trio_peer(pc, echo=True) as ours, open_aiortc_peer() as theirs:
        await theirs.create_channel("chat")
        await connect(theirs, ours, trickle=True)

Descriptions cross as ``{"type", "sdp"}`` dicts and candidates as ``candidate.toJSON()`` dicts,
exactly what signalling would carry between two real machines: nothing here reaches into the
other peer. Channels are addressed by label, like the harness does.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import trio

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.pc.events import RTCPeerConnectionIceEvent

Description = dict[str, str]
CandidateInit = dict[str, Any]

DEFAULT_TIMEOUT = 15.0
MIB = 1 << 20
#: trio_rtc's sockets go here: inside a browser's namespace too (see docs/interop.md).
LOOPBACK_OPTIONS = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False)


class TrioPeerError(Exception):
    """The trio_rtc side of an interop test did not get what it waited for in time."""


class InteropPeer(Protocol):
    """What :func:`connect` and :func:`transfer` need; ``PeerControl`` and :class:`TrioPeer`
    both have it."""

    async def create_offer(self) -> Description: ...
    async def create_answer(self) -> Description: ...
    async def set_remote(self, description: Mapping[str, str]) -> None: ...
    async def add_candidate(self, candidate: Mapping[str, Any] | None) -> None: ...
    def candidates(self) -> AsyncIterator[CandidateInit | None]: ...
    async def wait_state(self, value: str, *, kind: str = "connectionState") -> None: ...
    async def expect_bytes(self, label: str, nbytes: int) -> None: ...
    async def transfer_sha256(self, label: str, nbytes: int, *, chunk_size: int = ...) -> str: ...
    async def received_sha256(self, label: str) -> str: ...


class TrioPeer:
    """An RTCPeerConnection (already entered) with the ``PeerControl`` verbs.

    ``trickle=False`` makes ``create_offer``/``create_answer`` wait for gathering to complete so
    that the description carries every candidate; ``echo`` makes the channels the remote opens
    send every message back. Every wait gives up after ``timeout`` seconds (TrioPeerError).
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        nursery: trio.Nursery,
        *,
        trickle: bool,
        echo: bool,
        timeout: float,
    ) -> None:
        self.pc = pc
        self.trickle = trickle
        self.echo = echo
        self.timeout = timeout
        self.channels: dict[str, RTCDataChannel] = {}
        self._nursery = nursery
        self._candidates: list[CandidateInit | None] = []
        self._changed = trio.Event()
        self._echoes: dict[str, trio.CancelScope] = {}
        self._sinks: dict[str, trio.Event] = {}
        self._sink_results: dict[str, str] = {}
        pc.addEventListener("icecandidate", self._on_candidate)
        pc.addEventListener("datachannel", self._on_datachannel)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _on_candidate(self, event: RTCPeerConnectionIceEvent) -> None:
        self._candidates.append(event.candidate.toJSON() if event.candidate else None)
        self._notify()

    def _on_datachannel(self, event: Any) -> None:
        self._adopt(event.channel, self.echo)

    def _adopt(self, channel: RTCDataChannel, echo: bool) -> None:
        if channel.label in self.channels:
            raise TrioPeerError(f"channels are addressed by label; {channel.label} is taken")
        self.channels[channel.label] = channel
        self._notify()
        if echo:
            self._start_echo(channel)

    def _start_echo(self, channel: RTCDataChannel) -> None:
        scope = trio.CancelScope()
        self._echoes[channel.label] = scope

        async def echo() -> None:
            with scope:
                async for message in channel:
                    await channel.send_message(message)

        self._nursery.start_soon(echo)

    async def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        with trio.move_on_after(self.timeout):
            while not predicate():
                await self._changed.wait()
            return
        raise TrioPeerError(f"trio_rtc peer: no {what} within {self.timeout} s")

    # -- signalling --------------------------------------------------------------------------

    async def _local_description(self) -> Description:
        if not self.trickle:
            with trio.fail_after(self.timeout):
                await self.pc.wait_gathering_complete()
        description = self.pc.localDescription
        assert description is not None
        return description.toJSON()

    async def create_offer(self) -> Description:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self._local_description()

    async def create_answer(self) -> Description:
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return await self._local_description()

    async def set_remote(self, description: Mapping[str, str]) -> None:
        await self.pc.setRemoteDescription({"type": description["type"], "sdp": description["sdp"]})

    async def add_candidate(self, candidate: Mapping[str, Any] | None) -> None:
        await self.pc.addIceCandidate(dict(candidate) if candidate else None)

    async def candidates(self) -> AsyncIterator[CandidateInit | None]:
        """Every local candidate (past and future), ``None`` last."""
        index = 0
        while True:
            await self._wait(functools.partial(self._has_candidate, index), "end-of-candidates")
            candidate = self._candidates[index]
            index += 1
            yield candidate
            if candidate is None:
                return

    def _has_candidate(self, index: int) -> bool:
        return index < len(self._candidates)

    async def wait_state(self, value: str, *, kind: str = "connectionState") -> None:
        pc = self.pc

        def settled() -> bool:
            return getattr(pc, kind) == value or pc.connectionState in ("failed", "closed")

        with trio.move_on_after(self.timeout):
            await pc.wait_until(settled)
        if getattr(pc, kind) != value:
            raise TrioPeerError(
                f"trio_rtc peer: {kind} is {getattr(pc, kind)} (connectionState "
                f"{pc.connectionState}), waited for {value}"
            )

    # -- data channels -----------------------------------------------------------------------

    async def create_channel(self, label: str, *, echo: bool = False, **options: Any) -> None:
        self._adopt(self.pc.createDataChannel(label, options), echo)

    async def wait_channel(self, label: str) -> RTCDataChannel:
        """The channel ``label`` (created here or by the remote) once it is open."""
        await self._wait(lambda: label in self.channels, f"data channel {label!r}")
        channel = self.channels[label]
        with trio.fail_after(self.timeout):
            await channel.wait_open()
        return channel

    async def wait_channel_closed(self, label: str) -> None:
        channel = self.channels[label]
        with trio.fail_after(self.timeout):
            await channel.wait_until(lambda: channel.readyState == "closed")

    async def send(self, label: str, data: str | bytes) -> None:
        with trio.fail_after(self.timeout):
            await self.channels[label].send_message(data)

    async def receive(self, label: str) -> str | bytes:
        with trio.fail_after(self.timeout):
            return await self.channels[label].receive()

    async def set_echo(self, label: str, echo: bool) -> None:
        scope = self._echoes.pop(label, None)
        if scope is not None:
            scope.cancel()
        if echo:
            self._start_echo(self.channels[label])

    async def close_channel(self, label: str) -> None:
        self.channels[label].close()

    async def expect_bytes(self, label: str, nbytes: int) -> None:
        """Read the next ``nbytes`` binary bytes of ``label`` in the background and hash them."""
        channel = self.channels[label]
        done = self._sinks[label] = trio.Event()

        async def sink() -> None:
            digest = hashlib.sha256()
            received = 0
            while received < nbytes:
                message = await channel.receive()
                if not isinstance(message, bytes) or received + len(message) > nbytes:
                    raise TrioPeerError(f"{label}: unexpected message in a transfer")
                digest.update(message)
                received += len(message)
            self._sink_results[label] = digest.hexdigest()
            done.set()

        self._nursery.start_soon(sink)

    async def received_sha256(self, label: str) -> str:
        with trio.fail_after(self.timeout):
            await self._sinks[label].wait()
        return self._sink_results.pop(label)

    async def transfer_sha256(self, label: str, nbytes: int, *, chunk_size: int = 16384) -> str:
        """Send ``nbytes`` random bytes in ``chunk_size`` messages (with backpressure)."""
        data = os.urandom(nbytes)
        channel = self.channels[label]
        view = memoryview(data)
        with trio.fail_after(self.timeout):
            for offset in range(0, nbytes, chunk_size):
                await channel.send_message(view[offset : offset + chunk_size])
        return hashlib.sha256(data).hexdigest()

    def remote_candidate_types(self) -> list[str]:
        """The types of the remote candidates ICE knows (``prflx`` for peer-reflexive ones)."""
        ice = self.pc.ice_transport
        assert ice is not None
        return [candidate.type for candidate in ice.agent.remote_candidates]


@contextlib.asynccontextmanager
async def open_trio_peer(
    pc: RTCPeerConnection,
    *,
    trickle: bool = True,
    echo: bool = False,
    wait_seconds: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[TrioPeer]:
    """A :class:`TrioPeer` for an entered ``pc``; its background tasks end with the block."""
    async with trio.open_nursery() as nursery:
        yield TrioPeer(pc, nursery, trickle=trickle, echo=echo, timeout=wait_seconds)
        nursery.cancel_scope.cancel()


async def _relay(source: InteropPeer, sink: InteropPeer) -> None:
    async for candidate in source.candidates():
        await sink.add_candidate(candidate)


async def connect(offerer: InteropPeer, answerer: InteropPeer, *, trickle: bool) -> float:
    """Offer/answer (trickling candidates both ways, or not) until both are connected; the
    seconds it took from createOffer."""
    start = trio.current_time()
    offer = await offerer.create_offer()
    await answerer.set_remote(offer)
    answer = await answerer.create_answer()
    async with trio.open_nursery() as nursery:
        if trickle:
            # Only now: a candidate must not arrive before its remote description.
            nursery.start_soon(_relay, offerer, answerer)
        await offerer.set_remote(answer)
        if trickle:
            nursery.start_soon(_relay, answerer, offerer)
        await offerer.wait_state("connected")
        await answerer.wait_state("connected")
    return trio.current_time() - start


async def transfer(source: InteropPeer, sink: InteropPeer, label: str, nbytes: int) -> float:
    """``nbytes`` from ``source`` to ``sink`` on ``label``, checked by SHA-256 on both ends;
    the rate in MB/s."""
    await sink.expect_bytes(label, nbytes)
    start = trio.current_time()
    sent = await source.transfer_sha256(label, nbytes)
    received = await sink.received_sha256(label)
    seconds = trio.current_time() - start
    assert sent == received, f"{label}: sha256 {sent} sent, {received} received"
    return nbytes / seconds / 1e6
