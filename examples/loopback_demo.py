"""trio_rtc loopback demo: two RTCPeerConnections in one process, over real UDP on 127.0.0.1.

1. Signalling in-process: offer, answer and trickled candidates go straight to the other side.
2. ICE (RFC 8445), DTLS 1.2 (our own, on `cryptography`) and SCTP come up; a data channel opens.
3. A bulk transfer (checked by SHA-256) and a burst of small messages, timed.
4. Media on the same connection: a moving test pattern (640x480, 30 fps, its frame counter
   stamped into the picture) and a 440 Hz tone, added with `addTrack`, encoded by the library
   (VP8 and Opus through PyAV, in worker threads, never on the event loop), decoded on the other
   side with `await track.recv()`; it prints the frame counts, the capture-to-decoded latency
   (the counter read back from each decoded picture) and pings over the data channel meanwhile.

Run:  .venv/bin/python examples/loopback_demo.py [--mib N] [--messages N] [--seconds S] [--ipv6]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import os
import statistics
import time
from typing import Any

import trio

from trio_rtc import RTCDataChannel, RTCDataChannelEvent, RTCPeerConnection
from trio_rtc.dtls.crypto import CipherSuite
from trio_rtc.dtls.keys import NamedGroup
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.media import MediaStreamTrack
from trio_rtc.media.sources import TestPatternTrack, ToneTrack, read_frame_counter
from trio_rtc.pc.media import RTCTrackEvent


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer with trickle ICE, in-process."""

    async def trickle(target: RTCPeerConnection, event: object) -> None:
        await target.addIceCandidate(getattr(event, "candidate", None))

    offerer.onicecandidate = lambda event: trickle(answerer, event)
    answerer.onicecandidate = lambda event: trickle(offerer, event)
    await offerer.setLocalDescription(await offerer.createOffer())
    assert offerer.localDescription is not None
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    assert answerer.localDescription is not None
    await offerer.setRemoteDescription(answerer.localDescription)


# ---------------------------------------------------------------------------------------------
# Media: the library encodes and decodes (PyAV, in worker threads, never on the event loop).
# The sending side adds a test pattern (with its frame counter stamped into the picture) and a
# tone; the receiving side reads decoded frames with `await track.recv()` and reads the counter
# back from each picture, which gives the capture-to-decoded latency.

WIDTH, HEIGHT, FPS = 640, 480, 30
AUDIO_RATE = 48_000


@dataclasses.dataclass
class MediaStats:
    video_decoded: int = 0
    sizes: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    latencies: list[float] = dataclasses.field(default_factory=list)
    audio_frames: int = 0
    audio_samples: int = 0
    rtts: list[float] = dataclasses.field(default_factory=list)
    pings: int = 0


async def receive_video(
    track: MediaStreamTrack, pattern: TestPatternTrack, stats: MediaStats
) -> None:
    """Decoded pictures until the track ends; latency = read back - produced."""
    async for picture in track:
        now = time.monotonic()
        stats.video_decoded += 1
        stats.sizes.add((picture.width, picture.height))
        counter = read_frame_counter(picture)
        produced = pattern.produced_at(counter) if counter is not None else None
        if produced is not None:
            stats.latencies.append(now - produced)


async def receive_audio(track: MediaStreamTrack, stats: MediaStats) -> None:
    async for frame in track:
        stats.audio_frames += 1
        stats.audio_samples += frame.samples


async def ping_alongside(
    local: RTCDataChannel, remote: RTCDataChannel, seconds: float, stats: MediaStats
) -> None:
    """The data channel keeps working while media flows: a ping every 100 ms, echoed back."""

    async def echo() -> None:
        while True:
            await remote.send_message(await remote.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        start = trio.current_time()
        while trio.current_time() - start < seconds:
            stats.pings += 1
            sent = trio.current_time()
            await local.send_message(b"ping %d" % stats.pings)
            with trio.move_on_after(1):  # counted as not echoed
                if await local.receive() == b"ping %d" % stats.pings:
                    stats.rtts.append(trio.current_time() - sent)
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def track_ended(track: MediaStreamTrack | None) -> None:
    if track is None or track.readyState == "ended":
        return
    ended = trio.Event()
    track.addEventListener("ended", lambda event: ended.set())
    await ended.wait()


async def media_session(
    a: RTCPeerConnection,
    b: RTCPeerConnection,
    pattern: TestPatternTrack,
    incoming: dict[str, MediaStreamTrack],
    local: RTCDataChannel,
    remote: RTCDataChannel,
    seconds: float,
) -> None:
    stats = MediaStats()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_video, incoming["video"], pattern, stats)
        nursery.start_soon(receive_audio, incoming["audio"], stats)
        await ping_alongside(local, remote, seconds, stats)
        # The pattern and the tone end after `seconds` (their tracks too); then the last
        # frames get through.
        with trio.move_on_after(5):
            for sender in a.getSenders():
                await track_ended(sender.track)
        await trio.sleep(0.3)
        sent = await a.getStats()
        received = await b.getStats()
        nursery.cancel_scope.cancel()

    def by_kind(report: Any, kind: str, type_: str) -> dict[str, Any]:
        return next(
            (s for s in report.values() if s["type"] == type_ and s.get("kind") == kind), {}
        )

    video_out = by_kind(sent, "video", "outbound-rtp")
    video_in = by_kind(received, "video", "inbound-rtp")
    audio_out = by_kind(sent, "audio", "outbound-rtp")
    audio_in = by_kind(received, "audio", "inbound-rtp")
    sizes = ", ".join(f"{width}x{height}" for width, height in sorted(stats.sizes)) or "-"
    kbit_s = video_out.get("bytesSent", 0) * 8 / seconds / 1000
    print(f"media: VP8 {WIDTH}x{HEIGHT} at {FPS} fps + Opus 48 kHz for {seconds:g} s (PyAV)")
    print(
        f"  video: {video_out.get('framesEncoded', 0)} frames sent ({kbit_s:,.0f} kbit/s), "
        f"{video_in.get('framesReceived', 0)} received, {stats.video_decoded} decoded at {sizes}"
    )
    if stats.latencies:
        median = statistics.median(stats.latencies) * 1000
        p95 = percentile(stats.latencies, 0.95) * 1000
        print(f"  glass-to-glass (capture -> decoded): median {median:.1f} ms, p95 {p95:.1f} ms")
    encode = video_out.get("totalEncodeTime", 0.0) / max(1, video_out.get("framesEncoded", 1))
    decode = video_in.get("totalDecodeTime", 0.0) / max(1, video_in.get("framesDecoded", 1))
    print(f"  per frame: encode {encode * 1000:.1f} ms, decode {decode * 1000:.1f} ms")
    print(
        f"  audio: {audio_out.get('packetsSent', 0)} Opus frames sent, "
        f"{audio_in.get('packetsReceived', 0)} received, "
        f"{stats.audio_samples / AUDIO_RATE:.2f} s decoded"
    )
    rtt = f", median RTT {statistics.median(stats.rtts) * 1000:.2f} ms" if stats.rtts else ""
    print(f"  data channel meanwhile: {len(stats.rtts)}/{stats.pings} pings echoed{rtt}")


async def main(mib: int, messages: int, seconds: float, address: str) -> None:
    options = IceTransportOptions(interfaces=[address])
    async with (
        RTCPeerConnection(ice_options=options) as a,
        RTCPeerConnection(ice_options=options) as b,
    ):
        start = trio.current_time()
        incoming, arrived = trio.open_memory_channel[RTCDataChannel](1)

        def on_datachannel(event: RTCDataChannelEvent) -> None:
            incoming.send_nowait(event.channel)

        b.ondatachannel = on_datachannel
        sender = a.createDataChannel("demo")
        # Media tracks negotiated in the same offer (one BUNDLE); they carry frames in step 4:
        # frames start when the pattern is first read, which the encoder does once media flows.
        pattern = TestPatternTrack(WIDTH, HEIGHT, FPS, duration=max(seconds, 0.1))
        tone = ToneTrack(440, AUDIO_RATE, duration=max(seconds, 0.1))
        if seconds > 0:
            a.addTrack(pattern)
            a.addTrack(tone)
        remote_tracks: dict[str, MediaStreamTrack] = {}

        def on_track(event: RTCTrackEvent) -> None:
            remote_tracks[event.track.kind] = event.track

        b.ontrack = on_track
        await connect(a, b)
        await sender.wait_open()
        receiver = await arrived.receive()
        await receiver.wait_open()
        setup = trio.current_time() - start

        pair = a.ice_transport.getSelectedCandidatePair() if a.ice_transport else None
        dtls = a.dtls_transport.handshake_complete if a.dtls_transport else None
        print(
            f"connected: data channel open on both sides in {setup * 1000:.1f} ms "
            + (" (BUNDLE with video + audio)" if seconds > 0 else "")
        )
        if pair is not None:
            print(f"  ICE pair {pair.local.address}:{pair.local.port} <-> {pair.remote.port}")
        if dtls is not None:
            suite = CipherSuite(dtls.cipher_suite).name
            print(f"  DTLS 1.2 {suite}, key exchange {NamedGroup(dtls.key_exchange_group).name}")

        # Bulk: 64 KiB messages, with backpressure (send_message waits for buffer room).
        chunk = os.urandom(64 * 1024)
        total = mib * 1024 * 1024
        count = total // len(chunk)
        expected = hashlib.sha256(chunk * count).hexdigest()
        got = hashlib.sha256()

        async def drain(n: int) -> None:
            for _ in range(n):
                message = await receiver.receive()
                got.update(message if isinstance(message, bytes) else message.encode())

        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, count)
            for _ in range(count):
                await sender.send_message(chunk)
        elapsed = trio.current_time() - t0
        assert got.hexdigest() == expected, "transfer corrupted"
        print(
            f"transfer: {mib} MiB in {elapsed:.2f} s = {total / elapsed / 1e6:.1f} MB/s "
            "(sha256 verified)"
        )

        # Small messages: 100 bytes each.
        small = b"m" * 100
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, messages)
            for _ in range(messages):
                await sender.send_message(small)
        elapsed = trio.current_time() - t0
        print(
            f"small messages: {messages} x 100 B in {elapsed:.2f} s = {messages / elapsed:,.0f}/s"
        )

        if seconds > 0:
            await media_session(a, b, pattern, remote_tracks, sender, receiver, seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="bulk transfer size in MiB")
    parser.add_argument("--messages", type=int, default=20000, help="number of 100-byte messages")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="media duration in seconds (0: no media)"
    )
    parser.add_argument("--ipv6", action="store_true", help="use ::1 instead of 127.0.0.1")
    args = parser.parse_args()
    trio.run(main, args.mib, args.messages, args.seconds, "::1" if args.ipv6 else "127.0.0.1")
