"""Raw frames through two RTCPeerConnections over real UDP on 127.0.0.1: a VideoSource /
AudioSource / aiortc-style track on one side is encoded (PyAV, worker threads) with the
negotiated codec; the other side's ``await track.recv()`` returns decoded frames with pts and
time_base. Plus the decoder pipeline on its own: a corrupt frame is dropped and counted, a slow
reader keeps the newest pictures, a missing decoder is an error that names the codec."""

from __future__ import annotations

import fractions
import math
import threading
from typing import Any

import av
import pytest
import trio
from pc_helpers import connect, pc_pair

from trio_rtc.jsep.codecs import NegotiatedCodec
from trio_rtc.media import (
    AudioSource,
    CodecRegistry,
    CodecUnavailableError,
    MediaStreamError,
    MediaStreamTrack,
    RTCRtpSender,
    VideoSource,
    default_registry,
)
from trio_rtc.media.pipeline import run_decoder
from trio_rtc.media.sources import TestPatternTrack, read_frame_counter
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.rtp.codecs import EncodedFrame

WIDTH, HEIGHT = 320, 240
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


def flat_picture(index: int, width: int = WIDTH, height: int = HEIGHT) -> av.VideoFrame:
    """A grey picture whose luma says which frame it is (survives any codec within a few
    levels): 40, 60, ..., 220, 40, ..."""
    picture = av.VideoFrame(width, height, "yuv420p")
    for plane_index, plane in enumerate(picture.planes):
        value = 40 + (index % 10) * 20 if plane_index == 0 else 128
        plane.update(bytes([value]) * plane.buffer_size)
    picture.pts = index * 3000
    picture.time_base = VIDEO_TIME_BASE
    return picture


def mean_luma(picture: Any) -> float:
    # The Y plane as coded (a "gray" conversion would stretch video range to full range).
    data = bytes(picture.reformat(format="yuv420p").planes[0])
    return sum(data[::97]) / len(data[::97])


def tone(index: int, samples: int = 960, rate: int = 48000) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    frame.sample_rate = rate
    start = index * samples
    values = b"".join(
        int(8000 * math.sin(2 * math.pi * 440 * (start + n) / rate)).to_bytes(
            2, "little", signed=True
        )
        for n in range(samples)
    )
    frame.planes[0].update(values)
    frame.pts = start
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def prefer(transceiver: Any, kind: str, name: str) -> None:
    capabilities = RTCRtpSender.getCapabilities(kind)
    assert capabilities is not None
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() == f"{kind}/{name}".lower()]
    assert codecs, f"{name} is not offered"
    transceiver.setCodecPreferences(codecs)


PATTERN = TestPatternTrack(WIDTH, HEIGHT, realtime=False)


def pattern_picture(index: int) -> av.VideoFrame:
    """A moving pattern with ``index`` stamped in (read back with read_frame_counter)."""
    return PATTERN.make_frame(index)


async def feed_video(source: VideoSource, count: int, *, interval: float = 1 / 30) -> None:
    for index in range(count):
        await source.send(pattern_picture(index))
        await trio.sleep(interval)


@pytest.mark.parametrize("codec", ["VP8", "VP9", "H264", "AV1"])
async def test_video_source_arrives_as_decoded_pictures(codec: str) -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        source = VideoSource()
        sender = a.addTrack(source.create_track("pattern"))
        [transceiver] = a.getTransceivers()
        prefer(transceiver, "video", codec)
        with trio.fail_after(40):
            await connect(a, b, nursery)
            await b.wait_until(lambda: bool(events))
            track = events[0].track
            nursery.start_soon(feed_video, source, 400)
            pictures = []
            async for picture in track:
                pictures.append(picture)
                if len(pictures) == 20:
                    break
        assert all(isinstance(p, av.VideoFrame) for p in pictures)
        assert {(p.width, p.height) for p in pictures} == {(WIDTH, HEIGHT)}
        assert all(p.time_base == VIDEO_TIME_BASE for p in pictures)
        pts = [p.pts for p in pictures]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
        # The pictures are the ones sent, in order (the encoder may skip one when it is late).
        counters = [read_frame_counter(p) for p in pictures]
        assert None not in counters, counters
        assert counters == sorted(counters) and len(set(counters)) == len(counters), counters
        stats = await a.getStats()
        [outbound] = [s for s in stats.values() if s["type"] == "outbound-rtp"]
        assert outbound["framesEncoded"] >= 20 and outbound["keyFramesEncoded"] >= 1
        assert outbound["totalEncodeTime"] > 0 and outbound["frameWidth"] == WIDTH
        [codec_stats] = [s for s in stats.values() if s["type"] == "codec"]
        assert codec_stats["mimeType"].lower() == f"video/{codec}".lower()
        stats = await b.getStats()
        [inbound] = [s for s in stats.values() if s["type"] == "inbound-rtp"]
        assert inbound["framesDecoded"] >= 20 and inbound["keyFramesDecoded"] >= 1
        assert inbound["totalDecodeTime"] > 0 and inbound["frameHeight"] == HEIGHT
        assert sender.encode_stats is not None and sender.encode_stats.errors == 0
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("codec", "rate"), [("opus", 48000), ("PCMU", 8000), ("PCMA", 8000)])
async def test_audio_source_arrives_as_decoded_sound(codec: str, rate: int) -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        source = AudioSource()
        a.addTrack(source.create_track("tone"))
        prefer(a.getTransceivers()[0], "audio", codec)
        with trio.fail_after(30):
            await connect(a, b, nursery)
            await b.wait_until(lambda: bool(events))
            track = events[0].track

            async def feed() -> None:
                for index in range(500):
                    await source.send(tone(index, 441, 22050))  # 20 ms at 22.05 kHz
                    await trio.sleep(0.02)

            nursery.start_soon(feed)
            frames = [await track.recv() for _ in range(25)]
        assert all(isinstance(f, av.AudioFrame) and f.sample_rate == rate for f in frames)
        assert all(f.time_base == fractions.Fraction(1, rate) for f in frames)
        step = rate // 50
        assert [f.pts - frames[0].pts for f in frames] == [i * step for i in range(25)]
        assert sum(f.samples for f in frames) == 25 * step
        stats = await b.getStats()
        [inbound] = [s for s in stats.values() if s["type"] == "inbound-rtp"]
        assert inbound["totalSamplesReceived"] >= 25 * step
        playout = stats[inbound["playoutId"]]
        assert playout["type"] == "media-playout" and playout["kind"] == "audio"
        assert playout["totalSamplesCount"] == 25 * step
        assert abs(playout["totalSamplesDuration"] - 0.5) < 1e-9
        assert playout["totalPlayoutDelay"] > 0
        nursery.cancel_scope.cancel()


async def test_the_opus_encoder_follows_the_loss_the_receiver_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trio_rtc.media.av_codecs import OpusEncoder

    twelve_percent = trio.Event()
    original = OpusEncoder.set_packet_loss

    def record(self: OpusEncoder, fraction: float) -> None:
        if fraction == 31 / 256:
            twelve_percent.set()
        original(self, fraction)

    monkeypatch.setattr(OpusEncoder, "set_packet_loss", record)
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        source = AudioSource()
        sender = a.addTrack(source.create_track("tone"))
        prefer(a.getTransceivers()[0], "audio", "opus")
        with trio.fail_after(30):
            await connect(a, b, nursery)

            async def feed() -> None:
                for index in range(500):
                    await source.send(tone(index, 441, 22050))
                    await trio.sleep(0.02)

            nursery.start_soon(feed)
            await trio.sleep(0.2)
            rtp_sender = sender._rtp_sender
            assert rtp_sender is not None
            # What a receiver report saying 12 % (31/256) of the packets were lost leaves.
            rtp_sender.statistics.remote_fraction_lost = 31
            await twelve_percent.wait()
        nursery.cancel_scope.cancel()


class AiortcStyleTrack:
    """What aiortc code hands to addTrack: kind, id and recv(), ending with an exception
    called MediaStreamError (aiortc's own class, not ours)."""

    kind = "video"

    class MediaStreamError(Exception):
        pass

    def __init__(self, count: int) -> None:
        self.id = "aiortc-style-track"
        self.count = count
        self.index = 0
        self.stopped = False

    async def recv(self) -> av.VideoFrame:
        if self.index == self.count:
            raise AiortcStyleTrack.MediaStreamError
        await trio.sleep(1 / 30)
        self.index += 1
        return flat_picture(self.index - 1)

    def stop(self) -> None:
        self.stopped = True


async def test_an_aiortc_style_track_is_encoded_and_its_end_ends_the_track() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        raw = AiortcStyleTrack(count=45)
        sender = a.addTrack(raw)  # type: ignore[arg-type]
        local = sender.track
        assert local is not None and local.frame_source is raw and local.id == raw.id
        ended = trio.Event()
        local.onended = lambda event: ended.set()
        with pytest.raises(Exception, match="already has a sender"):
            a.addTrack(raw)  # type: ignore[arg-type]
        with trio.fail_after(30):
            await connect(a, b, nursery)
            await b.wait_until(lambda: bool(events))
            pictures = [await events[0].track.recv() for _ in range(10)]
            assert all(p.width == WIDTH for p in pictures)
            await ended.wait()
        assert local.readyState == "ended" and raw.index == 45
        nursery.cancel_scope.cancel()


async def test_a_disabled_track_sends_black_pictures() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        source = VideoSource()
        track = source.create_track()
        a.addTrack(track)
        with trio.fail_after(30):
            await connect(a, b, nursery)
            await b.wait_until(lambda: bool(events))
            nursery.start_soon(feed_video, source, 1000)
            remote = events[0].track
            first = await remote.recv()
            assert mean_luma(first) > 30
            track.enabled = False
            for _ in range(100):
                picture = await remote.recv()
                if mean_luma(picture) < 20:
                    break
            else:
                raise AssertionError("no black picture arrived after disabling the track")
            assert picture.width == WIDTH
        nursery.cancel_scope.cancel()


# --- the decoder pipeline on its own --------------------------------------------------------


def vp8_stream(count: int) -> list[EncodedFrame]:
    encoder = default_registry.create_encoder(NegotiatedCodec(96, "VP8", 90000))
    frames = []
    for index in range(count):
        for out in encoder.encode(flat_picture(index), keyframe=index % 10 == 0):
            assert out.timestamp is not None
            frames.append(
                EncodedFrame(out.data, out.timestamp, out.keyframe, index, index, codec="video/VP8")
            )
    encoder.close()
    return frames


async def wait_for(condition: Any) -> None:
    while not condition():  # noqa: ASYNC110 (the decoder runs in a thread: poll)
        await trio.sleep(0.001)


def remote_video_track() -> tuple[MediaStreamTrack, list[int]]:
    track = MediaStreamTrack("video", remote=True)
    requests: list[int] = []
    track._keyframe_hook = lambda: requests.append(1)
    return track, requests


async def test_a_corrupt_frame_is_dropped_counted_and_a_keyframe_requested() -> None:
    frames = vp8_stream(11)
    track, requests = remote_video_track()
    garbage = EncodedFrame(b"\x00\x01\x02" * 50, 0, True, 0, 0, codec="video/VP8")
    async with trio.open_nursery() as nursery:
        track._decoding = track._decoder_running = True
        stats_holder: list[Any] = []
        from trio_rtc.media.pipeline import CodecStats

        stats = CodecStats()
        stats_holder.append(stats)
        nursery.start_soon(lambda: run_decoder(track, stats=stats))
        track._deliver(garbage)
        with trio.fail_after(5):
            await wait_for(lambda: stats.errors == 1)
        track._deliver(frames[10])  # a keyframe: decoding resumes there
        with trio.fail_after(10):
            picture = await track.recv()
        assert picture.width == WIDTH and picture.pts == 0
        assert stats.errors == 1 and requests
        track._end(fire=True)
        with pytest.raises(MediaStreamError):
            await track.recv()


async def test_a_slow_reader_keeps_the_newest_pictures_only() -> None:
    frames = vp8_stream(30)
    track, _ = remote_video_track()
    async with trio.open_nursery() as nursery:
        track._decoding = track._decoder_running = True
        nursery.start_soon(lambda: run_decoder(track))
        for frame in frames:
            track._deliver(frame)
            with trio.fail_after(5):
                await wait_for(lambda: not track.queued_frames)
            await trio.sleep(0.005)
        last_pts = frames[-1].timestamp - frames[0].timestamp
        with trio.fail_after(5):
            await wait_for(lambda: bool(track._decoded) and track._decoded[-1][0].pts == last_pts)
        assert len(track._decoded) == track.max_decoded_queue == 3
        assert track.decoded_frames_dropped == 27
        newest = [await track.recv() for _ in range(3)]
        first = frames[0].timestamp
        assert [p.pts for p in newest] == [f.timestamp - first for f in frames[-3:]]
        nursery.cancel_scope.cancel()


async def test_no_decoder_is_an_error_naming_the_codec() -> None:
    track, _ = remote_video_track()
    async with trio.open_nursery() as nursery:
        track._decoding = track._decoder_running = True
        nursery.start_soon(lambda: run_decoder(track, registry=CodecRegistry(builtins=False)))
        track._deliver(vp8_stream(1)[0])
        with pytest.raises(CodecUnavailableError, match="VP8/90000"), trio.fail_after(5):
            await track.recv()


async def test_a_relayed_frame_in_another_codec_is_transcoded() -> None:
    """Encoded VP8 frames (``codec`` says so) given to a sender that negotiated H264 are
    decoded and re-encoded on the way out; the far end decodes H264."""
    frames = vp8_stream(60)
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        track = MediaStreamTrack("video", "relay")
        a.addTrack(track)
        prefer(a.getTransceivers()[0], "video", "H264")
        with trio.fail_after(30):
            await connect(a, b, nursery)
            await b.wait_until(lambda: bool(events))
            assert track.source is not None

            async def feed() -> None:
                assert track.source is not None
                for frame in frames:
                    await track.source.send(frame)
                    await trio.sleep(1 / 30)

            nursery.start_soon(feed)
            remote = events[0].track
            encoded = await remote.recv_encoded()
            assert encoded.codec == "video/H264"
            remote._frames.clear()
            pictures = [await remote.recv() for _ in range(5)]
        assert all(p.width == WIDTH for p in pictures)
        nursery.cancel_scope.cancel()


async def test_cancelling_a_recv_and_closing_leaves_no_codec_thread_busy() -> None:
    before = threading.active_count()
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        events: list[RTCTrackEvent] = []
        b.ontrack = events.append
        source = VideoSource()
        a.addTrack(source.create_track())
        with trio.fail_after(30):
            await connect(a, b, nursery)
            await b.wait_until(lambda: bool(events))
            nursery.start_soon(feed_video, source, 1000)
            await events[0].track.recv()
            with trio.move_on_after(0.01):
                await events[0].track.recv()
                await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    assert a.connectionState == b.connectionState == "closed"
    # Idle worker threads stay cached by trio for a while; none is running a codec call.
    assert threading.active_count() <= before + 4
