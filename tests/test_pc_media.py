"""Media between two RTCPeerConnections over real UDP on 127.0.0.1: addTrack with an encoded
source on one side, ``track`` and encoded frames on the other, video (VP8) and audio (Opus)
encoded by PyAV in the test, both directions at once, with a data channel in the same BUNDLE
carrying 1 MiB (SHA-256 checked) while the video flows."""

from __future__ import annotations

import fractions
import hashlib
from collections.abc import Iterator

import av
import trio
from pc_helpers import connect, negotiate, pc_pair

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.media import MediaStream, MediaStreamTrack, OutgoingFrame
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.sdp import parse_sdp_untrusted

WIDTH, HEIGHT = 320, 240


def vp8_frames(count: int) -> Iterator[tuple[bytes, bool]]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    for index in range(count):
        picture = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane in picture.planes:
            plane.update(bytes([(index * 7) % 256]) * (plane.line_size * plane.height))
        picture.pts = index
        for packet in encoder.encode(picture):
            yield bytes(packet), bool(packet.is_keyframe)
    for packet in encoder.encode(None):
        yield bytes(packet), bool(packet.is_keyframe)


def opus_frames(count: int) -> Iterator[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    for index in range(count):
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples.sample_rate = 48000
        samples.planes[0].update(bytes(960 * 4))
        samples.pts = index * 960
        for packet in encoder.encode(samples):
            yield bytes(packet)


async def send_video(track: MediaStreamTrack, count: int) -> None:
    assert track.source is not None
    for data, keyframe in vp8_frames(count):
        await track.source.send(OutgoingFrame(data, keyframe=keyframe, duration=1 / 30))


async def send_audio(track: MediaStreamTrack, count: int) -> None:
    assert track.source is not None
    for data in opus_frames(count):
        await track.source.send(OutgoingFrame(data, duration=0.02))


async def collect(event: RTCTrackEvent, count: int) -> list[bytes]:
    frames: list[bytes] = []
    async for frame in event.track.encoded_frames():
        frames.append(frame.data)
        if len(frames) == count:
            break
    return frames


def decoded_pictures(frames: list[bytes]) -> list[tuple[int, int]]:
    decoder = av.CodecContext.create("vp8", "r")
    return [
        (picture.width, picture.height)
        for data in frames
        for picture in decoder.decode(av.Packet(data))
    ]


async def transfer_while_media(channel: RTCDataChannel, remote: RTCDataChannel) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    chunks = [payload[i : i + 16384] for i in range(0, len(payload), 16384)]
    for chunk in chunks:
        await channel.send_message(chunk)
    received = bytearray()
    while len(received) < len(payload):
        message = await remote.receive()
        assert isinstance(message, bytes)
        received += message
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


async def test_video_and_audio_both_ways_with_a_data_channel() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        tracks: dict[RTCPeerConnection, list[RTCTrackEvent]] = {a: [], b: []}
        a.ontrack = tracks[a].append
        b.ontrack = tracks[b].append
        remote_channels: list[RTCDataChannel] = []
        b.ondatachannel = lambda event: remote_channels.append(event.channel)
        stream = MediaStream(id="stream-a")
        video = MediaStreamTrack("video", "camera")
        audio = MediaStreamTrack("audio", "microphone")
        a.addTrack(video, stream)
        a.addTrack(audio, stream)
        b_video = MediaStreamTrack("video", "b camera")
        b.addTrack(b_video)
        channel = a.createDataChannel("alongside")
        with trio.fail_after(30):
            await connect(a, b, nursery)
            await channel.wait_open()
            await b.wait_until(lambda: bool(remote_channels))
            remote_channel = remote_channels[0]
            kinds = sorted(e.track.kind for e in tracks[b])
            assert kinds == ["audio", "video"]
            assert all([s.id for s in e.streams] == ["stream-a"] for e in tracks[b])
            # a offered sendrecv video and got b's track on the same transceiver.
            [back] = tracks[a]
            assert back.track.kind == "video"
            by_kind = {e.track.kind: e for e in tracks[b]}
            got: dict[str, list[bytes]] = {}

            async def receive(name: str, event: RTCTrackEvent, count: int) -> None:
                got[name] = await collect(event, count)

            async with trio.open_nursery() as flows:
                flows.start_soon(receive, "b video", by_kind["video"], 60)
                flows.start_soon(receive, "b audio", by_kind["audio"], 40)
                flows.start_soon(receive, "a video", back, 60)
                flows.start_soon(send_video, video, 60)
                flows.start_soon(send_audio, audio, 40)
                flows.start_soon(send_video, b_video, 60)
                # The data channel carries 1 MiB, checked, while media flows.
                flows.start_soon(transfer_while_media, channel, remote_channel)
        assert decoded_pictures(got["b video"]) == [(WIDTH, HEIGHT)] * 60
        assert decoded_pictures(got["a video"]) == [(WIDTH, HEIGHT)] * 60
        opus = av.CodecContext.create("opus", "r")
        assert sum(len(opus.decode(av.Packet(data))) for data in got["b audio"]) == 40
        assert {t.currentDirection for t in b.getTransceivers()} == {"sendrecv", "recvonly"}
        nursery.cancel_scope.cancel()
    assert a.connectionState == b.connectionState == "closed"


async def test_stopped_transceiver_is_removed_and_its_m_line_recycled() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        tracks: list[RTCTrackEvent] = []
        b.ontrack = tracks.append
        video = MediaStreamTrack("video", "camera")
        a.addTrack(video)
        a.createDataChannel("keep")
        with trio.fail_after(20):
            await connect(a, b, nursery)
            [transceiver] = a.getTransceivers()
            assert transceiver.mid == "0"
            transceiver.stop()
            await negotiate(a, b, trickled=True)
            # webrtc-pc §4.4.1.5: stopped and rejected, it leaves the set on both sides.
            assert a.getTransceivers() == [] and b.getTransceivers() == []
            assert transceiver.currentDirection == "stopped"
            local = a.localDescription
            assert local is not None
            assert [m.port for m in parse_sdp_untrusted(local.sdp).media] == [0, 9]
            # A new track takes the rejected m-line (RFC 8829 §5.2.2) with a new mid.
            audio = MediaStreamTrack("audio", "microphone")
            a.addTrack(audio)
            await negotiate(a, b, trickled=True)
            offer = a.localDescription
            assert offer is not None
            media = parse_sdp_untrusted(offer.sdp).media
            assert [(m.kind, m.port) for m in media] == [("audio", 9), ("application", 9)]
            assert media[0].mid not in ("0", "1")
            [audio_event] = [e for e in tracks if e.track.kind == "audio"]
            async with trio.open_nursery() as flows:
                flows.start_soon(send_audio, audio, 20)
                frames = await collect(audio_event, 20)
            assert len(frames) == 20
        nursery.cancel_scope.cancel()
