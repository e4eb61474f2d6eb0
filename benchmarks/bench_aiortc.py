"""The aiortc side of the side-by-side benchmark: one scenario per process, result as JSON.

Two ``RTCPeerConnection`` in one asyncio process, signalled in-process (offer and answer carry
the gathered candidates), with aiortc's defaults but one: ``RTCConfiguration(iceServers=[])``,
the W3C default and trio_rtc's, where aiortc's own default would add a Google STUN server (a
round trip to the internet, or a wait for nothing on a machine without a route).

``--path default`` (the default) patches nothing: aioice gathers host candidates from every
interface it finds (it never offers 127.0.0.1 when another address exists), and the result's
details record the addresses gathered and the nominated pair of every connection.
``--path loopback`` replaces ``aioice.ice.get_host_addresses`` by one returning
``["127.0.0.1"]`` and checks every SDP for loopback candidates only before the other side sees
it.

``setup_trickle`` is not available: aiortc has no trickle ICE. The scenario shows it, rather
than assuming it: ``setLocalDescription`` returns with gathering complete and every candidate
already in the SDP, and no ``icecandidate`` event is ever emitted.

The ``media`` scenario sends pre-encoded VP8 frames through a track whose ``recv()`` returns
``av.Packet`` objects: aiortc's ``RTCRtpSender`` packs those without encoding (its
``_next_encoded_frame`` calls the encoder's ``pack`` for anything that is not an ``av.Frame``).
On the receiving side the decoder is replaced by a pass-through, so the remote track yields the
jitter buffer's encoded frames: neither stack decodes, as trio_rtc delivers encoded frames.

Usually started by ``run.py``; by hand:

    .venv/bin/python benchmarks/bench_aiortc.py --scenario setup [--path loopback] [--quick]
"""

from __future__ import annotations

import asyncio
import fractions
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aioice
import aioice.ice
import aiortc.rtcrtpreceiver
import av
from aiortc import (
    RTCCertificate,
    RTCConfiguration,
    RTCDataChannel,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCPeerConnection,
)
from aiortc.mediastreams import MediaStreamTrack
from common import (
    EXIT_UNAVAILABLE,
    FLEET_MESSAGE,
    HIGH_WATER,
    LOOPBACK,
    LOW_THRESHOLD,
    MEDIA_FPS,
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

STACK = "aiortc"
#: How long the receiver of an unreliable transfer waits for stragglers once the sender is done.
QUIET_PERIOD = 0.5


class Unavailable(Exception):
    """aiortc cannot run this scenario (the message says why)."""


@dataclass
class Run:
    """This process's ``--path`` and what it saw of the data path (into the result details)."""

    path: str = "default"
    data_path: dict[str, Any] = field(default_factory=dict)

    @property
    def loopback_only(self) -> bool:
        return self.path == "loopback"


RUN = Run()


def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Stands in for aioice's interface scan, which never offers 127.0.0.1 when a LAN exists."""
    return [LOOPBACK] if use_ipv4 else []


def narrow_to_loopback() -> None:
    """``--path loopback``: gather host candidates from 127.0.0.1 alone."""
    aioice.ice.get_host_addresses = loopback_host_addresses


def check_candidate(address: str) -> None:
    if RUN.loopback_only and address != LOOPBACK:
        raise RuntimeError(f"non-loopback candidate {address}")


def note_connection_path(connection: aioice.Connection) -> None:
    """Record the addresses an aioice connection gathered on and its nominated pair. aiortc
    exposes neither the selected pair nor candidate-pair statistics, so this reads aioice's
    ``_nominated`` (component 1: RTP and data share it)."""
    nominated = connection._nominated.get(1)
    if nominated is None:
        raise RuntimeError("connected, yet aioice nominated no candidate pair")
    note_data_path(
        RUN.data_path,
        [candidate.host for candidate in connection.local_candidates],
        nominated.local_candidate.host,
        nominated.remote_candidate.host,
    )


def note_pc_path(pc: RTCPeerConnection) -> None:
    """The same for a peer connection, down from its RTCSctpTransport."""
    assert pc.sctp is not None
    note_connection_path(pc.sctp.transport.transport._connection)


@dataclass
class Pair:
    offerer: RTCPeerConnection
    answerer: RTCPeerConnection
    local: RTCDataChannel
    """The channel ``offerer`` created."""
    remote: RTCDataChannel
    """Its other end, announced to ``answerer`` by ``datachannel``."""

    async def close(self) -> None:
        # Noted as the pair closes: not inside any timing.
        note_pc_path(self.offerer)
        await self.offerer.close()
        await self.answerer.close()


async def wait_open(channel: RTCDataChannel) -> None:
    if channel.readyState == "open":
        return
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await opened.wait()


async def connect_pair(
    *,
    ordered: bool = True,
    max_retransmits: int | None = None,
    before_offer: Callable[[RTCPeerConnection, RTCPeerConnection], None] | None = None,
) -> Pair:
    """Create two pcs and a channel, signal in-process, return once the channel is open on both.
    ``before_offer(offerer, answerer)`` runs before the offer is made (to add tracks)."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if before_offer is not None:
        before_offer(offerer, answerer)
    local = offerer.createDataChannel("bench", ordered=ordered, maxRetransmits=max_retransmits)
    announced: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    answerer.on("datachannel", announced.put_nowait)

    await offerer.setLocalDescription(await offerer.createOffer())
    if RUN.loopback_only:
        check_sdp_loopback(offerer.localDescription.sdp)
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    if RUN.loopback_only:
        check_sdp_loopback(answerer.localDescription.sdp)
    await offerer.setRemoteDescription(answerer.localDescription)

    remote = await announced.get()
    await wait_open(local)
    await wait_open(remote)
    return Pair(offerer, answerer, local, remote)


async def transfer(pair: Pair, message_size: int, count: int, *, reliable: bool) -> Transfer:
    """Send ``count`` messages local → remote, flow-controlled by bufferedAmount, as fast as
    the stack allows; for an unreliable channel, stop once nothing more arrives."""
    payload = bytes(message_size)
    received = 0
    received_bytes = 0
    last_arrival = 0.0
    all_arrived = asyncio.Event()
    arrival = asyncio.Event()

    def on_message(message: bytes | str) -> None:
        nonlocal received, received_bytes, last_arrival
        received += 1
        received_bytes += len(message)
        last_arrival = time.perf_counter()
        arrival.set()
        if received == count:
            all_arrived.set()

    pair.remote.on("message", on_message)
    low = asyncio.Event()
    pair.local.bufferedAmountLowThreshold = LOW_THRESHOLD
    pair.local.on("bufferedamountlow", low.set)

    cpu_start = cpu_seconds()
    start = time.perf_counter()
    sent = 0
    while sent < count:
        while sent < count and pair.local.bufferedAmount < HIGH_WATER:
            pair.local.send(payload)
            sent += 1
        if sent < count and pair.local.bufferedAmount > LOW_THRESHOLD:
            low.clear()
            await low.wait()
        else:
            # Let the transport run even when the buffer drained without an event.
            await asyncio.sleep(0)
    if reliable:
        await all_arrived.wait()
    else:
        while not all_arrived.is_set():
            arrival.clear()
            try:
                await asyncio.wait_for(arrival.wait(), QUIET_PERIOD)
            except TimeoutError:
                if pair.local.bufferedAmount == 0:
                    break
    cpu = cpu_seconds() - cpu_start
    pair.remote.remove_listener("message", on_message)
    return Transfer(last_arrival - start, received, received_bytes, cpu)


async def scenario_setup(sizes: Sizes, result: ScenarioResult) -> None:
    # One untimed round first: lazy imports and first-use costs are not part of a setup.
    await (await connect_pair()).close()
    times = []
    cpu_start = cpu_seconds()
    for _ in range(sizes.setup_repeats):
        start = time.perf_counter()
        pair = await connect_pair()
        times.append(time.perf_counter() - start)
        await pair.close()
    # Closing is inside the CPU interval; it is cheap next to creating and connecting.
    cpu = cpu_seconds() - cpu_start
    result.figures["setup_ms"] = median(times) * 1000
    result.figures["setup_cpu_ms"] = cpu / sizes.setup_repeats * 1000
    result.details["setup_ms_all"] = [t * 1000 for t in times]


async def scenario_setup_trickle(sizes: Sizes, result: ScenarioResult) -> None:
    """Show that aiortc cannot trickle, then report the scenario unavailable."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    emitted: list[Any] = []
    pc.on("icecandidate", emitted.append)
    try:
        pc.createDataChannel("probe")
        await pc.setLocalDescription(await pc.createOffer())
        state = pc.iceGatheringState
        in_sdp = len(re.findall(r"^a=candidate:", pc.localDescription.sdp, re.MULTILINE))
        await asyncio.sleep(0.2)  # an icecandidate event would come by now
    finally:
        await pc.close()
    if state != "complete" or not in_sdp or emitted:
        raise RuntimeError(
            f"aiortc may trickle now (iceGatheringState {state!r} after setLocalDescription, "
            f"{in_sdp} candidates in the SDP, {len(emitted)} icecandidate events): "
            "give bench_aiortc.py a trickle scenario"
        )
    version = package_versions(["aiortc"]).get("aiortc", "?")
    raise Unavailable(
        f"aiortc {version} has no trickle ICE: setLocalDescription returned with "
        f"iceGatheringState 'complete' and {in_sdp} candidate(s) already in the SDP; "
        "no icecandidate event"
    )


async def bulk(sizes: Sizes, result: ScenarioResult, message_size: int, prefix: str) -> None:
    pair = await connect_pair()
    try:
        done = await transfer(pair, message_size, sizes.bulk_bytes // message_size, reliable=True)
    finally:
        await pair.close()
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
    pair = await connect_pair(ordered=False, max_retransmits=0)
    try:
        done = await transfer(pair, message_size, count, reliable=False)
    finally:
        await pair.close()
    if done.messages == 0:
        raise RuntimeError(f"no message of {count} arrived")
    result.figures["unordered_mib_s"] = mib(done.byte_count) / done.elapsed
    result.figures["unordered_delivered_pct"] = 100 * done.messages / count
    result.details.update(sent=count, delivered=done.messages, seconds=done.elapsed)


async def scenario_small(sizes: Sizes, result: ScenarioResult) -> None:
    pair = await connect_pair()
    try:
        done = await transfer(pair, sizes.small_size, sizes.small_count, reliable=True)
    finally:
        await pair.close()
    result.figures["small_msg_s"] = done.messages / done.elapsed
    result.figures["small_cpu_s_per_mib"] = done.cpu / mib(done.byte_count)
    result.details.update(messages=done.messages, seconds=done.elapsed)


async def scenario_rtt(sizes: Sizes, result: ScenarioResult) -> None:
    pair = await connect_pair()
    echoes: asyncio.Queue[bytes | str] = asyncio.Queue()
    pair.remote.on("message", pair.remote.send)
    pair.local.on("message", echoes.put_nowait)
    ping = bytes(32)
    times = []
    try:
        for index in range(sizes.rtt_warmup + sizes.rtt_count):
            start = time.perf_counter()
            pair.local.send(ping)
            await echoes.get()
            if index >= sizes.rtt_warmup:
                times.append(time.perf_counter() - start)
    finally:
        await pair.close()
    result.figures["rtt_ms"] = median(times) * 1000
    result.details["rtt_ms_min"] = min(times) * 1000
    result.details["rtt_ms_max"] = max(times) * 1000


async def scenario_many(sizes: Sizes, result: ScenarioResult) -> None:
    await (await connect_pair()).close()
    before = rss_bytes()
    start = time.perf_counter()
    pairs = await asyncio.gather(*(connect_pair() for _ in range(sizes.many_pcs // 2)))
    elapsed = time.perf_counter() - start
    after = rss_bytes()
    try:
        result.figures["many_connect_s"] = elapsed
        result.figures["many_rss_kib_per_pc"] = (after - before) / len(pairs) / 2 / 1024
        result.details.update(pcs=2 * len(pairs), rss_before=before, rss_after=after)
    finally:
        for pair in pairs:
            await pair.close()


async def scenario_fleet(sizes: Sizes, result: ScenarioResult) -> None:
    """As trio_rtc's fleet scenario: ``fleet_pcs`` pcs connected at once, then every pair's
    offerer sends one message a second (each pair at its own phase) and the answerer echoes it,
    for ``fleet_seconds``."""
    raise_fd_limit(8 * sizes.fleet_pcs + 256)
    await (await connect_pair()).close()
    before = rss_bytes()
    start = time.perf_counter()
    pairs = await asyncio.gather(*(connect_pair() for _ in range(sizes.fleet_pcs // 2)))
    connected = time.perf_counter() - start
    after = rss_bytes()
    latencies: list[float] = []
    window_open = False

    def on_echo(message: bytes | str) -> None:
        if window_open and isinstance(message, bytes):
            (sent,) = FLEET_MESSAGE.unpack(message)
            latencies.append(time.perf_counter() - sent)

    async def pinger(pair: Pair, phase: float) -> None:
        await asyncio.sleep(phase)
        while True:
            pair.local.send(FLEET_MESSAGE.pack(time.perf_counter()))
            await asyncio.sleep(1.0)

    for pair in pairs:
        pair.remote.on("message", pair.remote.send)
        pair.local.on("message", on_echo)
    tasks = [asyncio.ensure_future(pinger(pair, i / len(pairs))) for i, pair in enumerate(pairs)]
    try:
        await asyncio.sleep(1.0)  # every pair has sent once before the window opens
        window_open = True
        cpu_start, wall_start = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(sizes.fleet_seconds)
        cpu = cpu_seconds() - cpu_start
        wall = time.perf_counter() - wall_start
        window_open = False
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pair in pairs:
            await pair.close()
    if not latencies:
        raise RuntimeError("no echo came back during the window")
    result.figures["fleet_connect_s"] = connected
    result.figures["fleet_rss_kib_per_pc"] = (after - before) / len(pairs) / 2 / 1024
    result.figures["fleet_cpu_pct"] = 100 * cpu / wall
    result.figures["fleet_echo_p99_ms"] = percentile(latencies, 0.99) * 1000
    result.details.update(
        pcs=2 * len(pairs),
        echoes=len(latencies),
        echo_median_ms=median(latencies) * 1000,
        echo_max_ms=max(latencies) * 1000,
        window_s=wall,
    )


class MediaFlow:
    """The media scenario's flow control: frames delivered so far, and an event on each."""

    def __init__(self) -> None:
        self.delivered = 0
        self.progress = asyncio.Event()
        self.go = asyncio.Event()


class PreEncodedTrack(MediaStreamTrack):
    """A video track whose ``recv()`` returns the pre-encoded frames as ``av.Packet`` objects
    (pts in 1/30 s), at most MEDIA_WINDOW ahead of what the receiver got, then waits forever."""

    kind = "video"

    def __init__(self, frames: list[tuple[bytes, bool]], flow: MediaFlow) -> None:
        super().__init__()
        self.frames = frames
        self.flow = flow
        self.index = 0
        self.time_base = fractions.Fraction(1, MEDIA_FPS)

    async def recv(self) -> Any:
        flow = self.flow
        await flow.go.wait()
        while self.index >= len(self.frames) or self.index - flow.delivered >= MEDIA_WINDOW:
            flow.progress.clear()
            await flow.progress.wait()
        data, keyframe = self.frames[self.index]
        packet = av.Packet(data)
        packet.pts = self.index
        packet.time_base = self.time_base
        packet.is_keyframe = keyframe
        self.index += 1
        return packet


class PassThroughDecoder:
    """Stands in for aiortc's decoder: the receiver's decoder thread hands on encoded frames."""

    def decode(self, encoded_frame: Any) -> list[Any]:
        return [encoded_frame]


async def scenario_media(sizes: Sizes, result: ScenarioResult) -> None:
    """Pre-encoded VP8 frames through ``addTrack`` → ``track``, as fast as the receive path
    takes them (at most MEDIA_WINDOW frames in flight); packets from ``inbound-rtp``."""
    # The decoder thread looks the function up in its module at each codec change.
    setattr(aiortc.rtcrtpreceiver, "get_decoder", lambda codec: PassThroughDecoder())  # noqa: B010
    count = sizes.media_frames
    # One frame more than counted: the jitter buffer hands a frame over when the next starts.
    frames = encode_vp8_frames(count + 1)
    flow = MediaFlow()
    camera = PreEncodedTrack(frames, flow)
    remote_tracks: list[Any] = []

    def add_track(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
        offerer.addTrack(camera)
        answerer.on("track", remote_tracks.append)

    pair = await connect_pair(before_offer=add_track)
    try:
        codec = first_video_codec(pair.answerer.localDescription.sdp)
        if codec.upper() != "VP8":
            raise RuntimeError(f"negotiated {codec}, not VP8")
        [remote] = remote_tracks
        [receiver] = [r for r in pair.answerer.getReceivers() if r.track is remote]
        await asyncio.sleep(0.1)  # let the RTP tasks settle after the handshake
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        flow.go.set()
        while flow.delivered < count:
            frame = await remote.recv()
            if isinstance(frame, av.VideoFrame):
                raise RuntimeError("aiortc decoded the frames: the pass-through was not used")
            flow.delivered += 1
            flow.progress.set()
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        stats = await receiver.getStats()
    finally:
        await pair.close()
    inbound = [entry for entry in stats.values() if entry.type == "inbound-rtp"]
    packets = sum(entry.packetsReceived for entry in inbound)
    lost = sum(entry.packetsLost for entry in inbound)
    run = MediaRun(elapsed, flow.delivered, packets, cpu)
    result.figures["media_rtp_packets_s"] = run.packets / run.elapsed
    result.figures["media_cpu_us_per_packet"] = run.cpu / run.packets * 1e6
    result.details.update(
        frames=run.frames,
        packets=run.packets,
        packets_lost=lost,
        seconds=run.elapsed,
        frame_bytes=sum(len(data) for data, _ in frames[:count]),
    )


async def ice_connect_once() -> float:
    """aioice on its own (the ICE layer of aiortc), gather + checks + nomination on both."""
    start = time.perf_counter()
    controlling = aioice.Connection(ice_controlling=True)
    controlled = aioice.Connection(ice_controlling=False)
    try:
        await asyncio.gather(controlling.gather_candidates(), controlled.gather_candidates())
        for this, other in ((controlling, controlled), (controlled, controlling)):
            for candidate in other.local_candidates:
                check_candidate(candidate.host)
                await this.add_remote_candidate(candidate)
            await this.add_remote_candidate(None)
            this.remote_username = other.local_username
            this.remote_password = other.local_password
        await asyncio.gather(controlling.connect(), controlled.connect())
        elapsed = time.perf_counter() - start
        note_connection_path(controlling)
        return elapsed
    finally:
        await controlling.close()
        await controlled.close()


async def scenario_ice(sizes: Sizes, result: ScenarioResult) -> None:
    await ice_connect_once()
    times = [await ice_connect_once() for _ in range(sizes.ice_repeats)]
    result.figures["ice_connect_ms"] = median(times) * 1000


async def ice_dtls_connect_once() -> float:
    """aiortc's ORTC objects: RTCIceGatherer/RTCIceTransport then RTCDtlsTransport, both sides."""
    certificates = [RTCCertificate.generateCertificate() for _ in range(2)]
    start = time.perf_counter()
    gatherers = [RTCIceGatherer(iceServers=[]), RTCIceGatherer(iceServers=[])]
    await asyncio.gather(*(gatherer.gather() for gatherer in gatherers))
    ices = [RTCIceTransport(gatherer) for gatherer in gatherers]
    # What RTCPeerConnection itself does for the offerer.
    ices[0]._connection.ice_controlling = True
    dtlses = [RTCDtlsTransport(ice, [cert]) for ice, cert in zip(ices, certificates, strict=True)]

    async def side(index: int) -> None:
        other = 1 - index
        for candidate in gatherers[other].getLocalCandidates():
            check_candidate(candidate.ip)
            await ices[index].addRemoteCandidate(candidate)
        await ices[index].addRemoteCandidate(None)
        await ices[index].start(gatherers[other].getLocalParameters())
        await dtlses[index].start(dtlses[other].getLocalParameters())

    try:
        await asyncio.gather(side(0), side(1))
        elapsed = time.perf_counter() - start
        note_connection_path(ices[0]._connection)
        return elapsed
    finally:
        for dtls in dtlses:
            await dtls.stop()
        for ice in ices:
            await ice.stop()


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
        versions=package_versions(["aiortc", "aioice", "pyOpenSSL", "cryptography", "pylibsrtp"]),
    )
    try:
        call_profiled(
            args.profile,
            lambda: asyncio.run(
                asyncio.wait_for(SCENARIO_FUNCTIONS[args.scenario](sizes, result), sizes.deadline)
            ),
        )
    except Unavailable as unavailable:
        result.available = False
        result.error = str(unavailable)
        print(unavailable, file=sys.stderr)
    except TimeoutError:
        result.error = f"the scenario exceeded its deadline of {sizes.deadline:.0f} s"
    except Exception as exc:
        result.error = describe_error(exc)
    result.details["path"] = RUN.path
    result.details.update(RUN.data_path)
    write_result(result, args.out)
    if not result.available:
        return EXIT_UNAVAILABLE
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
