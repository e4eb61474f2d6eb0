"""Encoded media end to end over two real ICE + DTLS + SRTP stacks on 127.0.0.1: PyAV encodes
(tests only; trio_rtc never imports av), EncodedSource -> run_sender -> network -> run_receiver
-> remote track -> PyAV decodes."""

from __future__ import annotations

import fractions
import itertools
import math

import av
import trio
from media_helpers import AUDIO, AUDIO_MID, VIDEO, VIDEO_MID, media_pair, task_count

from trio_rtc.media import (
    MediaStreamTrack,
    OutgoingFrame,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    run_receiver,
    run_sender,
)
from trio_rtc.rtp.codecs import EncodedFrame

WIDTH, HEIGHT = 320, 240
VIDEO_FRAMES, AUDIO_FRAMES = 60, 50
SSRC_VIDEO, SSRC_AUDIO = 0x0BAD_CAFE, 0x0A0D_10AA


def encode_vp8(count: int) -> list[tuple[bytes, bool]]:
    context = av.CodecContext.create("libvpx", "w")
    context.width, context.height = WIDTH, HEIGHT
    context.pix_fmt = "yuv420p"
    context.time_base = fractions.Fraction(1, 30)
    context.framerate = 30
    context.bit_rate = 500_000
    context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out = []
    for index in range(count):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane_index, plane in enumerate(frame.planes):  # a moving gradient
            row = bytes(
                (x * (plane_index + 1) * 3 + index * 7) % 256 for x in range(plane.line_size)
            )
            plane.update(b"".join(row[y % 11 :] + row[: y % 11] for y in range(plane.height)))
        frame.pts = index
        frame.time_base = fractions.Fraction(1, 30)
        out += [(bytes(p), bool(p.is_keyframe)) for p in context.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in context.encode(None)]
    return out


def decode_vp8(frames: list[EncodedFrame]) -> list[tuple[int, int]]:
    context = av.CodecContext.create("vp8", "r")
    sizes = []
    for frame in frames:
        sizes += [(p.width, p.height) for p in context.decode(av.Packet(frame.data))]
    return sizes


def encode_opus(count: int) -> list[bytes]:
    context = av.CodecContext.create("libopus", "w")
    context.sample_rate = 48000
    context.layout = "stereo"
    context.format = "s16"
    context.bit_rate = 64000
    out = []
    for index in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        tone = b"".join(
            int(math.sin(i * 0.05 + index) * 8000).to_bytes(2, "little", signed=True) * 2
            for i in range(960)
        )
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = index * 960
        out += [bytes(p) for p in context.encode(frame)]
    out += [bytes(p) for p in context.encode(None)]
    return out


def decode_opus(frames: list[EncodedFrame]) -> int:
    context = av.CodecContext.create("opus", "r")
    context.sample_rate = 48000
    context.layout = "stereo"
    return sum(f.samples for frame in frames for f in context.decode(av.Packet(frame.data)))


async def test_vp8_frames_encoded_sent_received_and_decoded() -> None:
    encoded = encode_vp8(VIDEO_FRAMES)
    assert len(encoded) == VIDEO_FRAMES and encoded[0][1]
    with trio.fail_after(15):
        async with media_pair() as pair:
            track = MediaStreamTrack("video", "camera")
            sender, receiver = RTCRtpSender(track), RTCRtpReceiver("video")
            remote = receiver.track
            events: list[str] = []
            remote.onunmute = lambda e: events.append(e.type)
            assert remote.muted
            await pair.nursery.start(run_receiver, receiver, pair.rtp_b, VIDEO_MID, VIDEO)
            await pair.nursery.start(run_sender, sender, pair.rtp_a, VIDEO_MID, SSRC_VIDEO, VIDEO)
            assert track.source is not None
            source = track.source

            async def produce() -> None:
                for data, keyframe in encoded:
                    await source.send(OutgoingFrame(data, keyframe, duration=1 / 30))
                    await trio.sleep(0.003)  # paced as a camera would be, a little faster

            got: list[EncodedFrame] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce)
                async for frame in remote.encoded_frames():
                    got.append(frame)
                    if len(got) == VIDEO_FRAMES:
                        break
            assert [f.data for f in got] == [data for data, _ in encoded]
            assert [f.keyframe for f in got] == [keyframe for _, keyframe in encoded]
            steps = {(b.timestamp - a.timestamp) & 0xFFFF_FFFF for a, b in itertools.pairwise(got)}
            assert steps == {3000}  # 1/30 s at 90 kHz
            assert decode_vp8(got) == [(WIDTH, HEIGHT)] * VIDEO_FRAMES
            assert events == ["unmute"] and not remote.muted
            assert sender.frames_sent == VIDEO_FRAMES and remote.frames_dropped == 0
            (ssrc,) = receiver.getSynchronizationSources()
            assert ssrc.source == SSRC_VIDEO and ssrc.rtpTimestamp == got[-1].timestamp
            assert ssrc.audioLevel is None
            sent = next(iter((await sender.getStats()).values()))
            assert sent["type"] == "outbound-rtp" and sent["packetsSent"] >= VIDEO_FRAMES
            (inbound,) = (await receiver.getStats()).values()
            assert inbound["ssrc"] == SSRC_VIDEO and inbound["framesReceived"] == VIDEO_FRAMES

            # A keyframe request from the receiving side reaches the source (PLI over SRTCP).
            assert not source.keyframe_requested.is_set()
            remote.request_keyframe()
            await source.keyframe_requested.wait()
            assert source.keyframe_requested.count == 1
            # The next keyframe the producer sends answers it.
            await source.send(OutgoingFrame(encoded[0][0], True, duration=1 / 30))
            assert not source.keyframe_requested.is_set()


async def test_opus_frames_arrive_in_order() -> None:
    encoded = encode_opus(AUDIO_FRAMES)
    assert len(encoded) >= AUDIO_FRAMES
    with trio.fail_after(15):
        async with media_pair() as pair:
            transceiver_a = RTCRtpTransceiver("audio", direction="sendonly")
            transceiver_b = RTCRtpTransceiver("audio", direction="recvonly")
            track = MediaStreamTrack("audio", "microphone")
            await transceiver_a.sender.replaceTrack(track)
            remote = transceiver_b.receiver.track
            await pair.nursery.start(
                run_receiver, transceiver_b.receiver, pair.rtp_b, AUDIO_MID, AUDIO
            )
            await pair.nursery.start(
                run_sender, transceiver_a.sender, pair.rtp_a, AUDIO_MID, SSRC_AUDIO, AUDIO
            )
            assert track.source is not None
            for data in encoded:
                await track.source.send(OutgoingFrame(data, duration=0.02))
            got = [await remote.recv_encoded() for _ in encoded]
            assert [f.data for f in got] == encoded
            assert [(f.timestamp - got[0].timestamp) & 0xFFFF_FFFF for f in got] == [
                i * 960 for i in range(len(encoded))
            ]
            assert decode_opus(got) >= AUDIO_FRAMES * 960 - 960
            # stop(): the sender stops, the remote track ends, its iteration finishes.
            ended: list[str] = []
            remote.onended = lambda e: ended.append(e.type)
            transceiver_b.stop()
            assert [f async for f in remote.encoded_frames()] == []
            assert remote.readyState == "ended" and ended == ["ended"]
            transceiver_a.stop()
            with trio.move_on_after(0.2):
                await track.source.send(OutgoingFrame(b"\xfc\x00"))
            assert transceiver_a.sender.frames_sent == len(encoded)


async def test_cancelling_the_media_tasks_leaves_no_task() -> None:
    with trio.fail_after(15):
        async with media_pair() as pair:
            baseline = task_count()
            track = MediaStreamTrack("video")
            sender, receiver = RTCRtpSender(track), RTCRtpReceiver("video")
            assert track.source is not None
            async with trio.open_nursery() as nursery:
                await nursery.start(run_receiver, receiver, pair.rtp_b, VIDEO_MID, VIDEO)
                await nursery.start(run_sender, sender, pair.rtp_a, VIDEO_MID, SSRC_VIDEO, VIDEO)
                # VP8-shaped bytes: a key frame has P=0 in the first byte.
                await track.source.send(OutgoingFrame(b"\x10" + bytes(3000), True, duration=0.03))
                frame = await receiver.track.recv_encoded()
                assert frame.keyframe and len(frame.data) == 3001
                nursery.cancel_scope.cancel()
            assert task_count() == baseline
            assert receiver.track.readyState == "ended"
            # A non-keyframe to a stopped task's source only queues; nothing is left to read it.
            track.stop()
            assert track.source.closed
