"""Test sources (pattern with a frame counter, tone, blackhole): trio_rtc.media.sources."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import pytest
import trio
import trio.testing

from trio_rtc.media.frames import FrameTrack, MediaStreamError
from trio_rtc.media.sources import (
    MediaBlackhole,
    TestPatternTrack,
    ToneTrack,
    read_frame_counter,
    stamp_frame_counter,
    tone_onset,
)
from trio_rtc.media.tracks import MediaStreamTrack
from trio_rtc.rtp.codecs import EncodedFrame


def test_pattern_is_cheap_and_reads_back() -> None:
    track = TestPatternTrack(640, 480)
    start = time.perf_counter()
    frames = [track.make_frame(n) for n in range(100)]
    per_frame = (time.perf_counter() - start) / 100
    # ~0.15 ms here; generous bound for a loaded 2-core machine.
    assert per_frame < 2e-3, per_frame
    assert all(read_frame_counter(f) == n for n, f in enumerate(frames))
    frame = track.make_frame(0xABCDEF)
    assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (640, 480)
    assert frame.time_base == Fraction(1, 90000)
    # Any pixel format and a scaled copy read the same.
    assert read_frame_counter(frame.reformat(format="rgb24")) == 0xABCDEF
    assert read_frame_counter(frame.reformat(320, 240, format="nv12")) == 0xABCDEF
    assert read_frame_counter(frame.reformat(format="gray")) == 0xABCDEF
    # Counters wrap at 24 bits.
    assert read_frame_counter(track.make_frame(1 << 24 | 5)) == 5


def test_counter_unreadable_gives_none() -> None:
    grey = av.VideoFrame(640, 480, "gray")
    grey.planes[0].update(bytes([128]) * grey.planes[0].buffer_size)
    assert read_frame_counter(grey) is None
    assert read_frame_counter("not a frame") is None
    frame = TestPatternTrack(640, 480).make_frame(1234)
    # Flip one data bit: the CRC catches it.
    plane = frame.planes[0]
    view = memoryview(plane).cast("B")
    cell = 640 * 5 // 18
    for y in range(10, 20):
        start = y * plane.line_size + cell + 5
        view[start : start + 20] = bytes([255 - view[start]]) * 20
    assert read_frame_counter(frame) is None
    stamp_frame_counter(frame, 42)
    assert read_frame_counter(frame) == 42


def _round_trip(codec: str, options: dict[str, str]) -> tuple[int, int]:
    track = TestPatternTrack(640, 480, 30, realtime=False)
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = 640, 480, "yuv420p"
    encoder.time_base = Fraction(1, 90000)
    encoder.framerate = Fraction(30)
    encoder.bit_rate = 300_000
    encoder.gop_size = 300
    encoder.options = options
    decoder = av.CodecContext.create("vp8" if codec == "libvpx" else "h264", "r")
    read: list[int | None] = []
    packets = []
    for n in range(100):
        packets.extend(encoder.encode(track.make_frame(n)))
    packets.extend(encoder.encode(None))
    size = sum(p.size for p in packets)
    for packet in packets:
        read.extend(read_frame_counter(f) for f in decoder.decode(packet))
    read.extend(read_frame_counter(f) for f in decoder.decode(None))
    good = sum(1 for n, value in enumerate(read) if value == n)
    return good, size


@pytest.mark.parametrize(
    ("codec", "options"),
    [
        ("libvpx", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}),
        ("libx264", {"preset": "ultrafast", "tune": "zerolatency"}),
    ],
)
def test_counter_survives_lossy_codec(codec: str, options: dict[str, str]) -> None:
    assert codec in av.codecs_available, f"PyAV here has no {codec}"
    good, size = _round_trip(codec, options)
    assert good >= 99, good
    # It was lossy: about 300 kbit/s over 3.3 s (a generous upper bound).
    assert size * 8 / (100 / 30) < 1_000_000


async def test_pattern_paces_on_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    track = TestPatternTrack(64, 48, framerate=25)
    start = trio.current_time()
    frames = [await track.recv() for _ in range(50)]
    assert trio.current_time() - start == pytest.approx(49 / 25)
    assert [f.pts for f in frames] == [n * 3600 for n in range(50)]
    assert [read_frame_counter(f) for f in frames] == list(range(50))
    assert track.produced_at(0) is not None and track.produced_at(49) is not None
    assert track.produced_at(0) <= track.produced_at(49)  # type: ignore[operator]
    assert track.produced_at(1000) is None
    # A late reader gets the current time slot's frame: at 2.361 s that is frame 59 (50..58 are
    # skipped, as a camera would).
    await trio.sleep(0.401)
    frame = await track.recv()
    assert read_frame_counter(frame) == 59 and frame.pts == 59 * 3600
    track.stop()
    assert track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_pattern_duration_and_iteration() -> None:
    track = TestPatternTrack(64, 48, framerate=10, realtime=False, duration=1.0)
    counters = [read_frame_counter(f) async for f in track]
    assert counters == list(range(10))
    assert track.readyState == "ended"


async def test_tone_frames_and_bursts(autojump_clock: trio.testing.MockClock) -> None:
    tone = ToneTrack(1000, burst_every=0.5, burst_length=0.05, channels=2)
    start = trio.current_time()
    frames = [await tone.recv() for _ in range(50)]
    assert trio.current_time() - start == pytest.approx(49 * 0.02)
    assert [f.pts for f in frames] == [n * 960 for n in range(50)]
    first = frames[0]
    assert first.format.name == "s16" and first.layout.name == "stereo"
    assert first.samples == 960 and first.sample_rate == 48000
    assert first.time_base == Fraction(1, 48000)
    # Bursts at samples 0 and 24000 (frame 25), 50 ms long; silence between.
    onsets = [tone_onset(f) for f in frames]
    assert onsets[0] is not None and onsets[0] < 5
    assert onsets[1] is not None and onsets[2] is not None  # 50 ms = 2.5 frames
    assert onsets[4:25] == [None] * 21
    assert onsets[25] is not None and onsets[25] < 5
    assert tone.burst_produced_at(0) is not None and tone.burst_produced_at(1) is not None
    assert tone.burst_produced_at(2) is None
    # A burst starting inside a frame: found at its offset, any sample format.
    odd = ToneTrack(1000, burst_every=0.01, burst_length=0.005, realtime=False)
    frame = odd.make_frame(300)  # bursts every 480 samples: the next starts at offset 180
    onset = tone_onset(frame)
    assert onset is not None and 180 <= onset <= 185
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=48000)
    floats = resampler.resample(frame)[0]
    assert tone_onset(floats) == onset


async def test_tone_duration() -> None:
    tone = ToneTrack(realtime=False, duration=0.1, samples_per_frame=480)
    frames = [f async for f in tone]
    assert len(frames) == 10


class _Forever(FrameTrack):
    async def recv(self) -> object:
        await trio.sleep_forever()


async def test_blackhole_async_with_and_run(autojump_clock: trio.testing.MockClock) -> None:
    pattern = TestPatternTrack(64, 48, framerate=30)
    tone = ToneTrack()
    remote = MediaStreamTrack("video", remote=True)
    async with MediaBlackhole(pattern, tone, _Forever("audio")) as blackhole:
        blackhole.addTrack(remote)
        remote._deliver(EncodedFrame(b"x", 0, True, 0, 0))
        await trio.sleep(1)
    counts = blackhole.frames_received
    assert counts[pattern.id] >= 30 and counts[tone.id] >= 50 and counts[remote.id] == 1
    # run(): until every track ended.
    finite = TestPatternTrack(64, 48, realtime=False, duration=0.5)
    remote2 = MediaStreamTrack("audio", remote=True)
    remote2._deliver(EncodedFrame(b"x", 0, True, 0, 0))
    remote2.stop()
    blackhole = MediaBlackhole(finite, remote2)
    await blackhole.run()
    assert blackhole.frames_received == {finite.id: 15, remote2.id: 1}


def test_mock_clock_autojump_runs_sources_instantly() -> None:
    # (pytest-trio's default clock is real; this checks the MockClock path end to end.)
    async def main() -> float:
        track = TestPatternTrack(64, 48, framerate=30)
        for _ in range(300):
            await track.recv()
        return trio.current_time()

    started = time.perf_counter()
    elapsed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]
    assert elapsed == pytest.approx(299 / 30)
    assert time.perf_counter() - started < 5
