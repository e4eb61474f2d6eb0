"""MediaRecorder (trio_rtc.media.recorder): tracks to a file that PyAV reads back."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import av
import pytest
import trio
import trio.testing

from trio_rtc.media.frames import FrameTrack
from trio_rtc.media.recorder import MediaRecorder
from trio_rtc.media.sources import TestPatternTrack, ToneTrack, read_frame_counter


def probe(path: Path) -> tuple[float, dict[str, str], list[int | None], int]:
    """(duration in s, codec by kind, video counters, audio samples) as PyAV reads the file."""
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1e6
        codecs = {s.type: s.codec_context.name for s in container.streams}
        counters = (
            [read_frame_counter(f) for f in container.decode(video=0)]
            if container.streams.video
            else []
        )
    samples = 0
    with av.open(str(path)) as container:
        if container.streams.audio:
            samples = sum(f.samples for f in container.decode(audio=0))
    return duration, codecs, counters, samples


def not_open(path: Path) -> bool:
    target = os.path.realpath(path)
    return all(
        os.readlink(f"/proc/self/fd/{fd}") != target
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


@pytest.mark.parametrize(
    ("name", "video", "audio"),
    [("rec.mp4", "h264", "aac"), ("rec.webm", "vp8", "opus"), ("rec.mkv", "h264", "aac")],
)
async def test_run_records_both_streams(tmp_path: Path, name: str, video: str, audio: str) -> None:
    path = tmp_path / name
    recorder = MediaRecorder(str(path))
    pattern = TestPatternTrack(320, 240, realtime=False, duration=2.0)
    tone = ToneTrack(realtime=False, duration=2.0)
    recorder.addTrack(pattern)
    recorder.addTrack(tone)
    await recorder.run()
    assert recorder.closed and not_open(path)
    assert recorder.frames_recorded == {pattern.id: 60, tone.id: 100}
    duration, codecs, counters, samples = probe(path)
    assert codecs == {"video": video, "audio": audio}
    assert duration == pytest.approx(2.0, abs=0.1)
    assert counters == list(range(60))
    assert samples / 48000 == pytest.approx(2.0, abs=0.05)


async def test_async_with_records_while_the_body_runs(tmp_path: Path) -> None:
    path = tmp_path / "live.mp4"
    recorder = MediaRecorder(str(path))
    recorder.addTrack(TestPatternTrack(320, 240))
    recorder.addTrack(ToneTrack(channels=2))
    async with recorder:
        with pytest.raises(RuntimeError):
            recorder.addTrack(ToneTrack())
        await trio.sleep(1.0)
    assert recorder.closed and not_open(path)
    duration, codecs, counters, samples = probe(path)
    assert codecs == {"video": "h264", "audio": "aac"}
    assert duration == pytest.approx(1.0, abs=0.2)
    assert counters[:5] == [0, 1, 2, 3, 4]
    assert samples / 48000 == pytest.approx(1.0, abs=0.2)


async def test_cancelled_recording_is_a_complete_file(tmp_path: Path) -> None:
    rng = random.Random(5)
    for attempt in range(4):
        path = tmp_path / f"cancelled{attempt}.webm"
        recorder = MediaRecorder(str(path))
        recorder.addTrack(TestPatternTrack(160, 120, realtime=False))  # as fast as it encodes
        recorder.addTrack(ToneTrack())
        delay = rng.uniform(0.2, 0.5)
        with trio.move_on_after(delay):
            await recorder.run()
        assert recorder.closed and not_open(path)
        _duration, codecs, counters, _samples = probe(path)
        assert codecs == {"video": "vp8", "audio": "opus"}
        assert counters and counters == list(range(len(counters)))
    await trio.testing.wait_all_threads_completed()


async def test_start_in_nursery_and_stop(tmp_path: Path) -> None:
    path = tmp_path / "started.mkv"
    recorder = MediaRecorder(str(path))
    recorder.addTrack(TestPatternTrack(160, 120))
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        await trio.sleep(0.5)
        recorder.stop()
    assert recorder.closed
    duration, codecs, _counters, _ = probe(path)
    assert codecs == {"video": "h264"} and duration == pytest.approx(0.5, abs=0.15)
    with pytest.raises(RuntimeError):
        await recorder.run()


class _Silent(FrameTrack):
    async def recv(self) -> Any:
        await trio.sleep_forever()


async def test_a_silent_track_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    recorder = MediaRecorder(str(path), first_frame_timeout=0.2)
    recorder.addTrack(TestPatternTrack(160, 120, realtime=False, duration=1.0))
    recorder.addTrack(_Silent("audio"))
    with pytest.raises(TypeError):
        recorder.addTrack(object())
    with trio.fail_after(10):
        async with recorder:
            await trio.sleep(1.0)
    _duration, codecs, counters, _ = probe(path)
    assert codecs == {"video": "h264"} and counters == list(range(30))


async def test_frames_of_another_size_are_scaled(tmp_path: Path) -> None:
    class Changing(FrameTrack):
        def __init__(self) -> None:
            super().__init__("video")
            self.small = TestPatternTrack(160, 120, realtime=False)
            self.big = TestPatternTrack(320, 240, realtime=False)
            self.n = 0

        async def recv(self) -> Any:
            self._check_live()
            await trio.lowlevel.checkpoint()
            if self.n == 20:
                self.stop()
                self._check_live()
            source = self.small if self.n < 10 else self.big
            self.n += 1
            frame = source.make_frame(self.n - 1)
            return frame

    path = tmp_path / "sizes.mp4"
    recorder = MediaRecorder(str(path))
    recorder.addTrack(Changing())
    await recorder.run()
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert {(f.width, f.height) for f in frames} == {(160, 120)}
    assert [read_frame_counter(f) for f in frames] == list(range(20))
