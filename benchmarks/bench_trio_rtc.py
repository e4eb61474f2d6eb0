"""The trio_rtc side of the side-by-side benchmark: one scenario per process, result as JSON.

Written against the W3C names (the spec is the contract, and the same code would drive a
browser): ``RTCPeerConnection``, ``createDataChannel(label, ordered=..., maxRetransmits=...)``,
``createOffer``/``setLocalDescription``/``setRemoteDescription``, ``icecandidate`` and
``addIceCandidate``, ``datachannel``, ``open`` and ``message`` events, ``send``,
``bufferedAmount``, ``bufferedAmountLowThreshold`` and ``bufferedamountlow``. Two peer
connections with the default ``RTCConfiguration`` live in one trio process and are signalled
in-process: each description carries its gathered candidates (non-trickle), except in
``setup_trickle``, where offer and answer go across as soon as they are set and every candidate
follows through ``icecandidate`` → ``addIceCandidate`` as it is gathered.

``--path default`` (the default) patches nothing: host candidates come from every interface the
ICE layer finds, and the result's details record the addresses gathered and the selected pair of
every connection. ``--path loopback`` narrows the interface scan to 127.0.0.1 (as the aiortc
side narrows aioice's) and checks every SDP before the other side sees it.

The ``media`` scenario sends pre-encoded VP8 frames through ``addTrack`` and an
``EncodedSource`` and counts them out of the ``track`` event's remote track. The lower-layer
scenarios (``ice``, ``ice_dtls``) drive ``RTCIceTransport`` and
``RTCDtlsTransport`` directly, as ``examples/loopback_demo.py`` does.

Usually started by ``run.py``; by hand:

    .venv/bin/python benchmarks/bench_trio_rtc.py --scenario setup [--path loopback] [--quick]
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from common import (
    EXIT_UNAVAILABLE,
    FLEET_MESSAGE,
    HIGH_WATER,
    LOOPBACK,
    LOW_THRESHOLD,
    MEDIA_TICKS_PER_FRAME,
    MEDIA_WINDOW,
    MediaRun,
    ScenarioResult,
    Sizes,
    Transfer,
    bench_arguments,
    call_profiled,
    check_sdp_loopback,
    cpu_seconds,
    describe_error,
    encode_vp8_frames,
    first_video_codec,
    median,
    mib,
    note_data_path,
    package_versions,
    percentile,
    raise_fd_limit,
    rss_bytes,
    write_result,
)

import trio_rtc
import trio_rtc.ice.transport
from trio_rtc.dtls.certificate import RTCCertificate
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.ice.interfaces import InterfaceAddress, usable_host_addresses
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.media import MediaStreamTrack, OutgoingFrame

STACK = "trio_rtc"
UNAVAILABLE = "trio_rtc.RTCPeerConnection is not available yet"
#: Scenarios that need the peer connection (the others use lower layers that exist today).
NEEDS_PEER_CONNECTION = frozenset(
    {
        "setup",
        "setup_trickle",
        "reliable_16k",
        "reliable_64k",
        "unordered",
        "small",
        "rtt",
        "many",
        "fleet",
        "media",
    }
)
#: How long the receiver of an unreliable transfer waits for stragglers once the sender is done.
QUIET_PERIOD = 0.5

# Looked up at run time so that this script states clearly what is missing instead of failing
# on an import while the peer connection is being written.
RTCPeerConnection: Any = getattr(trio_rtc, "RTCPeerConnection", None)


class Unavailable(Exception):
    """The scenario needs a part of trio_rtc that does not exist yet."""


@dataclass
class Run:
    """This process's ``--path`` and what it saw of the data path (into the result details)."""

    path: str = "default"
    data_path: dict[str, Any] = field(default_factory=dict)

    @property
    def loopback_only(self) -> bool:
        return self.path == "loopback"


RUN = Run()


def loopback_host_addresses(
    *, include_loopback: bool | None = None, ipv6: bool = True, link_local: bool = False
) -> list[InterfaceAddress]:
    """Stands in for the interface scan: 127.0.0.1 only, whatever else the machine has."""
    everything = usable_host_addresses(include_loopback=True, ipv6=False)
    return [entry for entry in everything if entry.address == LOOPBACK]


def narrow_to_loopback() -> None:
    """``--path loopback``: gather host candidates from 127.0.0.1 alone."""
    # The transport module imported the scan by name; replace it there.
    setattr(trio_rtc.ice.transport, "usable_host_addresses", loopback_host_addresses)  # noqa: B010


def note_ice_path(ice: Any) -> None:
    """Record the addresses ``ice`` (an RTCIceTransport) gathered on and its selected pair."""
    selected = ice.getSelectedCandidatePair()
    if selected is None:
        raise RuntimeError("connected, yet the ICE transport has no selected candidate pair")
    gathered = [candidate.address for candidate in ice.getLocalCandidates()]
    note_data_path(RUN.data_path, gathered, selected.local.address, selected.remote.address)


def note_pc_path(pc: Any) -> None:
    """The same for a peer connection, through its RTCSctpTransport (W3C surface)."""
    note_ice_path(pc.sctp.transport.iceTransport)


async def wait_until(target: Any, event_type: str, condition: Callable[[], bool]) -> None:
    """Return once ``condition()`` holds, re-checking on every ``event_type`` event."""
    if condition():
        return
    changed = trio.Event()

    def listener(event: Any) -> None:
        if condition():
            changed.set()

    target.addEventListener(event_type, listener)
    try:
        if not condition():
            await changed.wait()
    finally:
        target.removeEventListener(event_type, listener)


async def described(pc: Any) -> Any:
    """``pc.localDescription`` once gathering is complete (no trickle), checked for loopback on
    the loopback path."""
    await wait_until(
        pc, "icegatheringstatechange", lambda: bool(pc.iceGatheringState == "complete")
    )
    description = pc.localDescription
    if RUN.loopback_only:
        check_sdp_loopback(description.sdp)
    return description


class TrickleSignaling:
    """In-process trickle signaling between two pcs, as an application does it over a wire:
    every ``icecandidate`` goes at once to the other side's ``addIceCandidate`` (the final
    ``None`` too, as end-of-candidates), held back only until that side has a remote
    description to add it to."""

    def __init__(self, offerer: Any, answerer: Any) -> None:
        self.links = [self._link(offerer, answerer), self._link(answerer, offerer)]
        self.gathering_at_send: dict[str, str] = {}

    @staticmethod
    def _link(source: Any, target: Any) -> tuple[Any, Any, trio.Event]:
        send, receive = trio.open_memory_channel[Any](math.inf)
        source.onicecandidate = lambda event: send.send_nowait(event.candidate)
        return target, receive, trio.Event()

    def described(self, side: str, pc: Any) -> Any:
        """``pc.localDescription`` as it is now (sent before gathering completes)."""
        self.gathering_at_send[side] = pc.iceGatheringState
        description = pc.localDescription
        if RUN.loopback_only:
            check_sdp_loopback(description.sdp, trickle=True)
        return description

    def remote_set(self, pc: Any) -> None:
        """``pc`` has its remote description: candidates for it may flow now."""
        for target, _receive, ready in self.links:
            if target is pc:
                ready.set()

    async def forward_all(self, nursery: trio.Nursery) -> None:
        for target, receive, ready in self.links:
            nursery.start_soon(self._forward, target, receive, ready)

    @staticmethod
    async def _forward(target: Any, receive: Any, ready: trio.Event) -> None:
        await ready.wait()
        async for candidate in receive:
            # The end-of-candidates event carries None, or a candidate with no address.
            address = None if candidate is None else candidate.address
            if RUN.loopback_only and address not in (None, LOOPBACK):
                raise RuntimeError(f"non-loopback candidate {address}")
            await target.addIceCandidate(candidate)


@dataclass
class Pair:
    offerer: Any
    answerer: Any
    local: Any
    """The channel ``offerer`` created."""
    remote: Any
    """Its other end, announced to ``answerer`` by ``datachannel``."""


async def connect_pair(
    stack: contextlib.AsyncExitStack,
    *,
    ordered: bool = True,
    max_retransmits: int | None = None,
    before_offer: Callable[[Any, Any], None] | None = None,
    trickle: bool = False,
) -> Pair:
    """Two pcs (closed with ``stack``) and a channel, open on both sides when this returns.
    ``before_offer(offerer, answerer)`` runs before the offer is made (to add tracks);
    ``trickle``: signal with trickle ICE (see :class:`TrickleSignaling`)."""
    if RTCPeerConnection is None:
        raise Unavailable(UNAVAILABLE)
    offerer = await stack.enter_async_context(RTCPeerConnection())
    answerer = await stack.enter_async_context(RTCPeerConnection())
    if before_offer is not None:
        before_offer(offerer, answerer)
    local = offerer.createDataChannel("bench", ordered=ordered, maxRetransmits=max_retransmits)
    announced: list[Any] = []
    answerer.addEventListener("datachannel", lambda event: announced.append(event.channel))

    if trickle:
        signaling = TrickleSignaling(offerer, answerer)
        async with trio.open_nursery() as nursery:
            await signaling.forward_all(nursery)
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(signaling.described("offer", offerer))
            signaling.remote_set(answerer)
            await answerer.setLocalDescription(await answerer.createAnswer())
            await offerer.setRemoteDescription(signaling.described("answer", answerer))
            signaling.remote_set(offerer)
            remote = await channels_open(answerer, local, announced)
            nursery.cancel_scope.cancel()
        for side, state in signaling.gathering_at_send.items():
            key = f"{side}_sent_while_{state}"
            RUN.data_path[key] = RUN.data_path.get(key, 0) + 1
    else:
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(await described(offerer))
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(await described(answerer))
        remote = await channels_open(answerer, local, announced)
    pair = Pair(offerer, answerer, local, remote)
    # Noted when the pair closes (callbacks run before the pcs close): not inside any timing.
    stack.callback(note_pc_path, offerer)
    return pair


async def channels_open(answerer: Any, local: Any, announced: list[Any]) -> Any:
    """Wait for ``datachannel`` on ``answerer`` and ``open`` on both ends; the remote end."""
    await wait_until(answerer, "datachannel", lambda: bool(announced))
    remote = announced[0]
    await wait_until(local, "open", lambda: bool(local.readyState == "open"))
    await wait_until(remote, "open", lambda: bool(remote.readyState == "open"))
    return remote


async def transfer(pair: Pair, message_size: int, count: int, *, reliable: bool) -> Transfer:
    """Send ``count`` messages local → remote, flow-controlled by bufferedAmount, as fast as
    the stack allows; for an unreliable channel, stop once nothing more arrives."""
    payload = bytes(message_size)
    received = 0
    received_bytes = 0
    last_arrival = 0.0
    all_arrived = trio.Event()
    arrival = trio.Event()

    def on_message(event: Any) -> None:
        nonlocal received, received_bytes, last_arrival, arrival
        received += 1
        received_bytes += len(event.data)
        last_arrival = time.perf_counter()
        arrival.set()
        if received == count:
            all_arrived.set()

    pair.remote.onmessage = on_message
    low = trio.Event()

    def on_low(event: Any) -> None:
        low.set()

    pair.local.bufferedAmountLowThreshold = LOW_THRESHOLD
    pair.local.onbufferedamountlow = on_low

    cpu_start = cpu_seconds()
    start = time.perf_counter()
    sent = 0
    while sent < count:
        while sent < count and pair.local.bufferedAmount < HIGH_WATER:
            pair.local.send(payload)
            sent += 1
        if sent < count and pair.local.bufferedAmount > LOW_THRESHOLD:
            low = trio.Event()
            await low.wait()
        else:
            # Let the drivers run even when the buffer drained without an event.
            await trio.lowlevel.checkpoint()
    if reliable:
        await all_arrived.wait()
    else:
        while not all_arrived.is_set():
            arrival = trio.Event()
            with trio.move_on_after(QUIET_PERIOD) as quiet:
                await arrival.wait()
            if quiet.cancelled_caught and pair.local.bufferedAmount == 0:
                break
    cpu = cpu_seconds() - cpu_start
    pair.remote.onmessage = None
    return Transfer(last_arrival - start, received, received_bytes, cpu)


async def timed_setups(sizes: Sizes, result: ScenarioResult, prefix: str, *, trickle: bool) -> None:
    # One untimed round first: lazy imports and first-use costs are not part of a setup.
    async with contextlib.AsyncExitStack() as stack:
        await connect_pair(stack, trickle=trickle)
    times = []
    cpu_start = cpu_seconds()
    for _ in range(sizes.setup_repeats):
        async with contextlib.AsyncExitStack() as stack:
            start = time.perf_counter()
            await connect_pair(stack, trickle=trickle)
            times.append(time.perf_counter() - start)
    # Closing is inside the CPU interval; it is cheap next to creating and connecting.
    cpu = cpu_seconds() - cpu_start
    result.figures[f"{prefix}_ms"] = median(times) * 1000
    result.figures[f"{prefix}_cpu_ms"] = cpu / sizes.setup_repeats * 1000
    result.details[f"{prefix}_ms_all"] = [t * 1000 for t in times]


async def scenario_setup(sizes: Sizes, result: ScenarioResult) -> None:
    await timed_setups(sizes, result, "setup", trickle=False)


async def scenario_setup_trickle(sizes: Sizes, result: ScenarioResult) -> None:
    await timed_setups(sizes, result, "setup_trickle", trickle=True)


async def bulk(sizes: Sizes, result: ScenarioResult, message_size: int, prefix: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pair = await connect_pair(stack)
        done = await transfer(pair, message_size, sizes.bulk_bytes // message_size, reliable=True)
    result.figures[f"{prefix}_mib_s"] = mib(done.byte_count) / done.elapsed
    result.figures[f"{prefix}_cpu_s_per_mib"] = done.cpu / mib(done.byte_count)
    result.details["bytes"] = done.byte_count
    result.details["seconds"] = done.elapsed


async def scenario_reliable_16k(sizes: Sizes, result: ScenarioResult) -> None:
    await bulk(sizes, result, 16 * 1024, "reliable_16k")


async def scenario_reliable_64k(sizes: Sizes, result: ScenarioResult) -> None:
    await bulk(sizes, result, 64 * 1024, "reliable_64k")


async def scenario_unordered(sizes: Sizes, result: ScenarioResult) -> None:
    message_size = 16 * 1024
    count = sizes.bulk_bytes // message_size
    async with contextlib.AsyncExitStack() as stack:
        pair = await connect_pair(stack, ordered=False, max_retransmits=0)
        done = await transfer(pair, message_size, count, reliable=False)
    if done.messages == 0:
        raise RuntimeError(f"no message of {count} arrived")
    result.figures["unordered_mib_s"] = mib(done.byte_count) / done.elapsed
    result.figures["unordered_delivered_pct"] = 100 * done.messages / count
    result.details.update(sent=count, delivered=done.messages, seconds=done.elapsed)


async def scenario_small(sizes: Sizes, result: ScenarioResult) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pair = await connect_pair(stack)
        done = await transfer(pair, sizes.small_size, sizes.small_count, reliable=True)
    result.figures["small_msg_s"] = done.messages / done.elapsed
    result.figures["small_cpu_s_per_mib"] = done.cpu / mib(done.byte_count)
    result.details.update(messages=done.messages, seconds=done.elapsed)


async def scenario_rtt(sizes: Sizes, result: ScenarioResult) -> None:
    echoes_in, echoes_out = trio.open_memory_channel[Any](1)
    times = []
    async with contextlib.AsyncExitStack() as stack:
        pair = await connect_pair(stack)
        pair.remote.onmessage = lambda event: pair.remote.send(event.data)
        pair.local.onmessage = lambda event: echoes_in.send_nowait(event.data)
        ping = bytes(32)
        for index in range(sizes.rtt_warmup + sizes.rtt_count):
            start = time.perf_counter()
            pair.local.send(ping)
            await echoes_out.receive()
            if index >= sizes.rtt_warmup:
                times.append(time.perf_counter() - start)
    result.figures["rtt_ms"] = median(times) * 1000
    result.details["rtt_ms_min"] = min(times) * 1000
    result.details["rtt_ms_max"] = max(times) * 1000


async def scenario_many(sizes: Sizes, result: ScenarioResult) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await connect_pair(stack)
    pair_count = sizes.many_pcs // 2
    connected = 0
    all_connected = trio.Event()
    release = trio.Event()

    async def hold_pair() -> None:
        # A pc's nursery belongs to the task that entered it: each pair lives in its own task.
        nonlocal connected
        async with contextlib.AsyncExitStack() as stack:
            await connect_pair(stack)
            connected += 1
            if connected == pair_count:
                all_connected.set()
            await release.wait()

    before = rss_bytes()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(pair_count):
            nursery.start_soon(hold_pair)
        await all_connected.wait()
        elapsed = time.perf_counter() - start
        after = rss_bytes()
        release.set()
    result.figures["many_connect_s"] = elapsed
    result.figures["many_rss_kib_per_pc"] = (after - before) / pair_count / 2 / 1024
    result.details.update(pcs=2 * pair_count, rss_before=before, rss_after=after)


async def scenario_fleet(sizes: Sizes, result: ScenarioResult) -> None:
    """``fleet_pcs`` pcs (half as many pairs, each with a channel) connected at once in this
    process; then, for ``fleet_seconds``, every pair's offerer sends one message a second (each
    pair at its own phase) and the answerer echoes it: every pc receives and sends one message
    a second. Connect time, RSS per pc, CPU of the process during the echo window, and the
    echo latency's p99."""
    raise_fd_limit(8 * sizes.fleet_pcs + 256)
    async with contextlib.AsyncExitStack() as stack:
        await connect_pair(stack)
    pair_count = sizes.fleet_pcs // 2
    pairs: list[Pair] = []
    all_connected = trio.Event()
    release = trio.Event()
    latencies: list[float] = []
    window_open = False

    async def hold_pair() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pair = await connect_pair(stack)
            channel, echo = pair.local, pair.remote
            echo.onmessage = lambda event: echo.send(event.data)

            def on_echo(event: Any) -> None:
                if window_open:
                    (sent,) = FLEET_MESSAGE.unpack(event.data)
                    latencies.append(time.perf_counter() - sent)

            channel.onmessage = on_echo
            pairs.append(pair)
            if len(pairs) == pair_count:
                all_connected.set()
            await release.wait()

    async def pinger(pair: Pair, phase: float) -> None:
        await trio.sleep(phase)
        while True:
            pair.local.send(FLEET_MESSAGE.pack(time.perf_counter()))
            await trio.sleep(1.0)

    before = rss_bytes()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(pair_count):
            nursery.start_soon(hold_pair)
        await all_connected.wait()
        connected = time.perf_counter() - start
        after = rss_bytes()
        async with trio.open_nursery() as pingers:
            for index, pair in enumerate(pairs):
                pingers.start_soon(pinger, pair, index / pair_count)
            await trio.sleep(1.0)  # every pair has sent once before the window opens
            window_open = True
            cpu_start, wall_start = cpu_seconds(), time.perf_counter()
            await trio.sleep(sizes.fleet_seconds)
            cpu = cpu_seconds() - cpu_start
            wall = time.perf_counter() - wall_start
            window_open = False
            pingers.cancel_scope.cancel()
        release.set()
    if not latencies:
        raise RuntimeError("no echo came back during the window")
    result.figures["fleet_connect_s"] = connected
    result.figures["fleet_rss_kib_per_pc"] = (after - before) / pair_count / 2 / 1024
    result.figures["fleet_cpu_pct"] = 100 * cpu / wall
    result.figures["fleet_echo_p99_ms"] = percentile(latencies, 0.99) * 1000
    result.details.update(
        pcs=2 * pair_count,
        echoes=len(latencies),
        echo_median_ms=median(latencies) * 1000,
        echo_max_ms=max(latencies) * 1000,
        window_s=wall,
    )


async def scenario_media(sizes: Sizes, result: ScenarioResult) -> None:
    """Pre-encoded VP8 frames through ``addTrack`` → ``track``, as fast as the receive path
    takes them (at most MEDIA_WINDOW frames in flight); packets from ``inbound-rtp``."""
    count = sizes.media_frames
    # One frame more than counted: the last counted frame is then not the stream's last, as for
    # aiortc, whose jitter buffer hands a frame over when the next one starts.
    frames = encode_vp8_frames(count + 1)
    camera = MediaStreamTrack("video", "bench")
    events: list[Any] = []

    def add_track(offerer: Any, answerer: Any) -> None:
        offerer.addTrack(camera)
        answerer.addEventListener("track", events.append)

    async with contextlib.AsyncExitStack() as stack:
        pair = await connect_pair(stack, before_offer=add_track)
        await wait_until(pair.answerer, "track", lambda: bool(events))
        codec = first_video_codec(pair.answerer.localDescription.sdp)
        if codec.upper() != "VP8":
            raise RuntimeError(f"negotiated {codec}, not VP8")
        event = events[0]
        delivered = 0
        progress = trio.Event()
        done: list[float] = []

        async def receive() -> None:
            nonlocal delivered
            async for _frame in event.track.encoded_frames():
                delivered += 1
                progress.set()
                if delivered == count:
                    done.extend((time.perf_counter(), cpu_seconds()))
                    return

        assert camera.source is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.sleep(0.1)  # let the RTP task settle after the handshake
            cpu_start = cpu_seconds()
            start = time.perf_counter()
            for index, (data, keyframe) in enumerate(frames):
                while index - delivered >= MEDIA_WINDOW and not done:
                    progress = trio.Event()
                    await progress.wait()
                if done:
                    break
                timestamp = index * MEDIA_TICKS_PER_FRAME
                await camera.source.send(
                    OutgoingFrame(data, keyframe=keyframe, timestamp=timestamp)
                )
        stats = await event.receiver.getStats()
    packets = sum(entry["packetsReceived"] for entry in stats.values())
    lost = sum(entry["packetsLost"] for entry in stats.values())
    run = MediaRun(done[0] - start, delivered, packets, done[1] - cpu_start)
    result.figures["media_rtp_packets_s"] = run.packets / run.elapsed
    result.figures["media_cpu_us_per_packet"] = run.cpu / run.packets * 1e6
    result.details.update(
        frames=run.frames,
        packets=run.packets,
        packets_lost=lost,
        seconds=run.elapsed,
        frame_bytes=sum(len(data) for data, _ in frames[:count]),
    )


def check_loopback_candidates(candidates: Sequence[Any]) -> None:
    if not RUN.loopback_only:
        return
    for candidate in candidates:
        if candidate.address != LOOPBACK:
            raise RuntimeError(f"non-loopback candidate {candidate.address}")


async def ice_connect(
    ice_a: RTCIceTransport, ice_b: RTCIceTransport, check: Callable[[Any], None]
) -> None:
    """Signal in-process (each candidate straight to the other side) and wait for both."""

    def forward(to: RTCIceTransport) -> Callable[[Any], None]:
        def on_candidate(event: Any) -> None:
            if event.candidate is not None:
                check([event.candidate])
            to.addRemoteCandidate(event.candidate)

        return on_candidate

    ice_a.onicecandidate = forward(ice_b)
    ice_b.onicecandidate = forward(ice_a)
    ice_a.start(ice_b.getLocalParameters(), "controlling")
    ice_b.start(ice_a.getLocalParameters(), "controlled")
    ice_a.gather()
    ice_b.gather()
    await ice_a.wait_for_state("connected", "completed")
    await ice_b.wait_for_state("connected", "completed")


async def ice_connect_once() -> float:
    options = IceTransportOptions()
    start = time.perf_counter()
    async with RTCIceTransport(options=options) as ice_a, RTCIceTransport(options=options) as ice_b:
        await ice_connect(ice_a, ice_b, check_loopback_candidates)
        elapsed = time.perf_counter() - start
        note_ice_path(ice_a)
    return elapsed


async def scenario_ice(sizes: Sizes, result: ScenarioResult) -> None:
    await ice_connect_once()
    times = [await ice_connect_once() for _ in range(sizes.ice_repeats)]
    result.figures["ice_connect_ms"] = median(times) * 1000


async def ice_dtls_connect_once() -> float:
    cert_a, cert_b = await RTCCertificate.generate(), await RTCCertificate.generate()
    options = IceTransportOptions()
    start = time.perf_counter()
    async with (
        RTCIceTransport(options=options) as ice_a,
        RTCIceTransport(options=options) as ice_b,
        trio.open_nursery() as nursery,
    ):
        await ice_connect(ice_a, ice_b, check_loopback_candidates)
        dtls_a = RTCDtlsTransport(
            ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints()
        )
        dtls_b = RTCDtlsTransport(
            ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints()
        )
        nursery.start_soon(
            lambda: dtls_a.run(receive_channel=ice_a.dtls_receive_channel, send=ice_a.send)
        )
        nursery.start_soon(
            lambda: dtls_b.run(receive_channel=ice_b.dtls_receive_channel, send=ice_b.send)
        )
        await dtls_a.wait_connected()
        await dtls_b.wait_connected()
        elapsed = time.perf_counter() - start
        note_ice_path(ice_a)
        nursery.cancel_scope.cancel()
    return elapsed


async def scenario_ice_dtls(sizes: Sizes, result: ScenarioResult) -> None:
    await ice_dtls_connect_once()
    times = [await ice_dtls_connect_once() for _ in range(sizes.ice_repeats)]
    result.figures["ice_dtls_connect_ms"] = median(times) * 1000


SCENARIO_FUNCTIONS: dict[str, Callable[[Sizes, ScenarioResult], Awaitable[None]]] = {
    "setup": scenario_setup,
    "setup_trickle": scenario_setup_trickle,
    "reliable_16k": scenario_reliable_16k,
    "reliable_64k": scenario_reliable_64k,
    "unordered": scenario_unordered,
    "small": scenario_small,
    "rtt": scenario_rtt,
    "many": scenario_many,
    "fleet": scenario_fleet,
    "ice": scenario_ice,
    "ice_dtls": scenario_ice_dtls,
    "media": scenario_media,
}


async def run_scenario(scenario: str, sizes: Sizes, result: ScenarioResult) -> None:
    with trio.fail_after(sizes.deadline):
        await SCENARIO_FUNCTIONS[scenario](sizes, result)


def main() -> int:
    args = bench_arguments(__doc__.splitlines()[0] if __doc__ else STACK)
    sizes = Sizes.make(args.quick)
    RUN.path = args.path
    if RUN.loopback_only:
        narrow_to_loopback()
    result = ScenarioResult(
        STACK,
        args.scenario,
        args.quick,
        versions=package_versions(["trio_rtc", "trio", "cryptography", "google-crc32c", "attrs"]),
    )
    status = 0
    if args.scenario in NEEDS_PEER_CONNECTION and RTCPeerConnection is None:
        result.available = False
        result.error = UNAVAILABLE
        print(UNAVAILABLE, file=sys.stderr)
        status = EXIT_UNAVAILABLE
    else:
        try:
            call_profiled(
                args.profile, lambda: trio.run(run_scenario, args.scenario, sizes, result)
            )
        except trio.TooSlowError:
            result.error = f"the scenario exceeded its deadline of {sizes.deadline:.0f} s"
            status = 1
        except Exception as exc:
            result.error = describe_error(exc)
            status = 1
    result.details["path"] = RUN.path
    result.details.update(RUN.data_path)
    write_result(result, args.out)
    return status


if __name__ == "__main__":
    sys.exit(main())
