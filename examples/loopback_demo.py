"""trio_rtc loopback demo: two RTCPeerConnections in one process, over real UDP on 127.0.0.1.

1. Signalling in-process: offer, answer and trickled candidates go straight to the other side.
2. ICE (RFC 8445), DTLS 1.2 (our own, on `cryptography`) and SCTP come up; a data channel opens.
3. A bulk transfer (checked by SHA-256) and a burst of small messages, timed.
4. Media on the same connection: a moving test pattern (640x480, 30 fps) encoded with PyAV's
   libvpx VP8 and a 440 Hz tone encoded with libopus, sent in real time for a few seconds,
   decoded on the other side (encoders and decoders in worker threads, never on the event loop);
   it prints the frame counts and the capture-to-decoded latency, and pings over the data channel
   meanwhile.

Run:  .venv/bin/python examples/loopback_demo.py [--mib N] [--messages N] [--seconds S] [--ipv6]
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import fractions
import hashlib
import math
import os
import statistics
from typing import Any

import av
import av.video.frame
import trio

from trio_rtc import RTCDataChannel, RTCDataChannelEvent, RTCPeerConnection
from trio_rtc.dtls.crypto import CipherSuite
from trio_rtc.dtls.keys import NamedGroup
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.media import MediaStreamTrack, OutgoingFrame
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
# Media: a test pattern encoded with PyAV (libvpx VP8) and a sine tone (libopus), both encoded
# and decoded in worker threads, never on the event loop.

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_CLOCK = 90_000  # RTP clock of VP8
AUDIO_RATE, AUDIO_SAMPLES = 48_000, 960  # Opus, 20 ms frames
RAMP = bytes(range(256)) * 4  # any 640-byte window of it is a horizontal ramp
#: 440 Hz at 48 kHz repeats every 1200 samples (11 periods): one table, sliced per frame.
TONE = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * n / 48_000)) for n in range(1200)))


class PatternEncoder:
    """A moving diagonal gradient, 640x480, encoded to VP8. Called in a worker thread only."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("libvpx", "w")
        self.codec.width, self.codec.height, self.codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        self.codec.time_base = fractions.Fraction(1, FPS)
        self.codec.bit_rate = 1_500_000
        # One thread: with its default of one per core, libvpx's encode time jumped from ~3 ms
        # to ~100 ms now and then on a 2-core machine.
        self.codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "threads": "1",
        }

    def encode(self, index: int, keyframe: bool) -> list[tuple[bytes, bool]]:
        picture = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma, blue, red = picture.planes
        shift = 4 * index  # the gradient moves 4 pixels per frame
        pad = bytes(luma.line_size - WIDTH)
        luma.update(b"".join(RAMP[(row + shift) % 256 :][:WIDTH] + pad for row in range(HEIGHT)))
        for plane, speed in ((blue, 1), (red, -2)):
            plane.update(
                b"".join(
                    bytes([(row + speed * index) % 256]) * plane.line_size
                    for row in range(plane.height)
                )
            )
        picture.pts = index
        if keyframe:
            picture.pict_type = av.video.frame.PictureType.I
        return [(bytes(packet), bool(packet.is_keyframe)) for packet in self.codec.encode(picture)]


class ToneEncoder:
    """A 440 Hz sine, mono, 48 kHz, in 20 ms Opus frames. Called in a worker thread only."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.sample_rate, self.codec.layout, self.codec.format = AUDIO_RATE, "mono", "s16"

    def encode(self, index: int) -> list[bytes]:
        start = index * AUDIO_SAMPLES
        offset = start % len(TONE)
        pcm = (TONE + TONE)[offset : offset + AUDIO_SAMPLES]
        samples = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        samples.sample_rate = AUDIO_RATE
        samples.planes[0].update(pcm.tobytes())
        samples.pts = start
        return [bytes(packet) for packet in self.codec.encode(samples)]


def decode_video(decoder: av.VideoCodecContext, data: bytes) -> list[tuple[int, int]]:
    return [(picture.width, picture.height) for picture in decoder.decode(av.Packet(data))]


def decode_audio(decoder: av.AudioCodecContext, data: bytes) -> int:
    return sum(samples.samples for samples in decoder.decode(av.Packet(data)))


@dataclasses.dataclass
class MediaStats:
    video_sent: int = 0
    video_bytes: int = 0
    video_received: int = 0
    video_decoded: int = 0
    sizes: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    captured: dict[int, float] = dataclasses.field(default_factory=dict)
    latencies: list[float] = dataclasses.field(default_factory=list)
    audio_sent: int = 0
    audio_received: int = 0
    audio_samples: int = 0
    rtts: list[float] = dataclasses.field(default_factory=list)
    pings: int = 0


async def send_video(track: MediaStreamTrack, frames: int, stats: MediaStats) -> None:
    """30 frames/s in real time: capture (generate) and encode each in the worker thread."""
    source = track.source
    assert source is not None
    encoder = PatternEncoder()
    limiter = trio.CapacityLimiter(1)  # one encoder, one frame at a time
    start = trio.current_time()
    for index in range(frames):
        await trio.sleep_until(start + index / FPS)
        # The receiver asks for a keyframe (PLI) when it lost one; the first frame is one anyway.
        forced = source.keyframe_requested.is_set()
        stats.captured[index] = trio.current_time()
        packets = await trio.to_thread.run_sync(encoder.encode, index, forced, limiter=limiter)
        for data, keyframe in packets:
            # The RTP timestamp carries the frame's index: index * 3000 at 90 kHz.
            timestamp = index * VIDEO_CLOCK // FPS
            await source.send(OutgoingFrame(data, keyframe=keyframe, timestamp=timestamp))
            stats.video_sent += 1
            stats.video_bytes += len(data)


async def send_audio(track: MediaStreamTrack, frames: int, stats: MediaStats) -> None:
    source = track.source
    assert source is not None
    encoder = ToneEncoder()
    limiter = trio.CapacityLimiter(1)
    start = trio.current_time()
    for index in range(frames):
        await trio.sleep_until(start + index * AUDIO_SAMPLES / AUDIO_RATE)
        for data in await trio.to_thread.run_sync(encoder.encode, index, limiter=limiter):
            await source.send(OutgoingFrame(data, timestamp=index * AUDIO_SAMPLES))
            stats.audio_sent += 1


async def receive_video(track: MediaStreamTrack, frames: int, stats: MediaStats) -> None:
    """Decode every frame in a worker thread; its index is its RTP timestamp's distance from the
    first frame's (the stream starts at frame 0, a keyframe), so latency = decoded - captured."""
    decoder = av.CodecContext.create("vp8", "r")
    limiter = trio.CapacityLimiter(1)
    first: int | None = None
    async for frame in track.encoded_frames():
        stats.video_received += 1
        if first is None:
            first = frame.timestamp
        index = ((frame.timestamp - first) % 2**32) // (VIDEO_CLOCK // FPS)
        pictures = await trio.to_thread.run_sync(decode_video, decoder, frame.data, limiter=limiter)
        decoded = trio.current_time()
        if pictures:
            stats.video_decoded += len(pictures)
            stats.sizes.update(pictures)
            if index in stats.captured:
                stats.latencies.append(decoded - stats.captured[index])
        if index == frames - 1:
            return


async def receive_audio(track: MediaStreamTrack, frames: int, stats: MediaStats) -> None:
    decoder = av.CodecContext.create("opus", "r")
    limiter = trio.CapacityLimiter(1)
    first: int | None = None
    async for frame in track.encoded_frames():
        stats.audio_received += 1
        if first is None:
            first = frame.timestamp
        stats.audio_samples += await trio.to_thread.run_sync(
            decode_audio, decoder, frame.data, limiter=limiter
        )
        if ((frame.timestamp - first) % 2**32) // AUDIO_SAMPLES == frames - 1:
            return


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


async def media_session(
    outgoing: dict[str, MediaStreamTrack],
    incoming: dict[str, MediaStreamTrack],
    local: RTCDataChannel,
    remote: RTCDataChannel,
    seconds: float,
) -> None:
    frames = round(seconds * FPS)
    audio_frames = round(seconds * AUDIO_RATE / AUDIO_SAMPLES)
    stats = MediaStats()

    async def until_done(receive: Any, track: MediaStreamTrack, count: int) -> None:
        with trio.move_on_after(seconds + 5):  # whatever is lost, the demo ends
            await receive(track, count, stats)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(until_done, receive_video, incoming["video"], frames)
        nursery.start_soon(until_done, receive_audio, incoming["audio"], audio_frames)
        nursery.start_soon(send_video, outgoing["video"], frames, stats)
        nursery.start_soon(send_audio, outgoing["audio"], audio_frames, stats)
        nursery.start_soon(ping_alongside, local, remote, seconds, stats)

    sizes = ", ".join(f"{width}x{height}" for width, height in sorted(stats.sizes)) or "-"
    kbit_s = stats.video_bytes * 8 / (frames / FPS) / 1000
    print(f"media: VP8 {WIDTH}x{HEIGHT} at {FPS} fps + Opus 48 kHz for {seconds:g} s (PyAV)")
    print(
        f"  video: {stats.video_sent} frames sent ({kbit_s:,.0f} kbit/s), "
        f"{stats.video_received} received, {stats.video_decoded} decoded at {sizes}"
    )
    if stats.latencies:
        median = statistics.median(stats.latencies) * 1000
        p95 = percentile(stats.latencies, 0.95) * 1000
        print(f"  glass-to-glass (capture -> decoded): median {median:.1f} ms, p95 {p95:.1f} ms")
    print(
        f"  audio: {stats.audio_sent} Opus frames sent, {stats.audio_received} received, "
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
        # Media tracks negotiated in the same offer (one BUNDLE); they carry frames in step 4.
        outgoing = {kind: MediaStreamTrack(kind, f"demo {kind}") for kind in ("video", "audio")}
        for track in outgoing.values():
            a.addTrack(track)
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
            "(BUNDLE with video + audio)"
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
            await media_session(outgoing, remote_tracks, sender, receiver, seconds)


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
