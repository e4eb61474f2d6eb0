"""MediaPlayer (trio_rtc.media.player) on files written by the test with PyAV."""

from __future__ import annotations

import itertools
import os
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
import trio
import trio.testing

from trio_rtc.media.frames import MediaStreamError
from trio_rtc.media.player import MediaPlayer, avcc_to_annexb
from trio_rtc.media.sources import TestPatternTrack, ToneTrack, read_frame_counter
from trio_rtc.media.tracks import OutgoingFrame

FPS = 30


def write_file(
    path: Path,
    video: str | None = "libx264",
    audio: str | None = "aac",
    seconds: float = 2.0,
    size: tuple[int, int] = (320, 240),
    video_options: dict[str, str] | None = None,
) -> Path:
    """``seconds`` of the counter pattern (frame n shows n) and a tone, interleaved."""
    container = av.open(str(path), "w")
    vstream = astream = None
    if video:
        vstream = container.add_stream(video, rate=FPS)
        vstream.width, vstream.height = size
        vstream.pix_fmt = "yuv420p"
        vstream.options = video_options or {}
    if audio:
        astream = container.add_stream(audio, rate=48000)
    pattern = TestPatternTrack(*size, FPS, realtime=False)
    tone = ToneTrack(realtime=False)
    sample = 0
    for n in range(round(seconds * FPS)):
        if vstream is not None:
            frame = pattern.make_frame(n)
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            for packet in vstream.encode(frame):
                container.mux(packet)
        while astream is not None and sample < (n + 1) * 48000 // FPS:
            for packet in astream.encode(tone.make_frame(sample)):
                container.mux(packet)
            sample += 960
    for stream in (vstream, astream):
        if stream is not None:
            for packet in stream.encode(None):
                container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("player")
    write_file(directory / "av.mp4")
    write_file(directory / "av.webm", "libvpx", "libopus")
    write_file(directory / "video.mp4", audio=None, video_options={"bf": "0"})
    write_file(directory / "audio.ogg", video=None, audio="libopus")
    return directory


def open_files(path: Path) -> bool:
    """True while this process holds ``path`` open."""
    target = os.path.realpath(path)
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                return True
        except OSError:
            pass
    return False


async def read_all(track: Any, out: list[Any], limit: int | None = None) -> None:
    async for frame in track:
        out.append(frame)
        if limit is not None and len(out) >= limit:
            return


@pytest.mark.parametrize("name", ["av.mp4", "av.webm"])
async def test_plays_in_real_time(
    media_dir: Path, name: str, autojump_clock: trio.testing.MockClock
) -> None:
    path = media_dir / name
    player = MediaPlayer(str(path))
    assert player.video is not None and player.audio is not None
    assert player.video.kind == "video" and player.audio.kind == "audio"
    video: list[Any] = []
    audio: list[Any] = []
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all, player.video, video)
        nursery.start_soon(read_all, player.audio, audio)
    # Paced: the last frames come about 2 s after the first, on trio's clock.
    assert 1.9 <= trio.current_time() - start <= 2.1
    assert [read_frame_counter(f) for f in video] == list(range(60))
    assert all(f.time_base == Fraction(1, 90000) for f in video)
    assert [f.pts for f in video] == pytest.approx([n * 3000 for n in range(60)], abs=45)
    assert all(f.format.name == "s16" and f.sample_rate == 48000 for f in audio)
    assert [f.pts for f in audio] == [n * 960 for n in range(len(audio))]
    assert 1.95 <= sum(f.samples for f in audio) / 48000 <= 2.1
    # The end: MediaStreamError, the tracks ended, the file closed.
    with pytest.raises(MediaStreamError):
        await player.video.recv()
    assert player.video.readyState == "ended" and player.closed
    assert not open_files(path)


async def test_without_nursery_or_pacing(media_dir: Path) -> None:
    player = MediaPlayer(str(media_dir / "video.mp4"), realtime=False)
    assert player.audio is None and player.video is not None
    frames = [await player.video.recv() for _ in range(10)]
    assert [read_frame_counter(f) for f in frames] == list(range(10))
    player.video.stop()  # every track stopped: the container closes
    assert player.closed and not open_files(media_dir / "video.mp4")
    audio_only = MediaPlayer(str(media_dir / "audio.ogg"), realtime=False)
    assert audio_only.video is None and audio_only.audio is not None
    async with audio_only:
        frame = await audio_only.audio.recv()
        assert frame.samples == 960
    assert audio_only.closed


async def test_loop_keeps_timestamps_increasing(
    media_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with MediaPlayer(str(media_dir / "av.webm"), loop=True) as player:
        assert player.video is not None and player.audio is not None
        video: list[Any] = []
        audio: list[Any] = []
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all, player.video, video, 150)
            nursery.start_soon(read_all, player.audio, audio, 250)
        assert trio.current_time() - start == pytest.approx(5.0, abs=0.1)
        assert player.loops == 2
    assert player.closed
    counters = [read_frame_counter(f) for f in video]
    assert counters == [n % 60 for n in range(150)]
    pts = [f.pts for f in video]
    assert all(b - a == pytest.approx(3000, abs=60) for a, b in itertools.pairwise(pts))
    assert [f.pts for f in audio] == [n * 960 for n in range(250)]


async def test_slow_reader_keeps_newest_video(media_dir: Path) -> None:
    # Only audio is read: the video queue holds the newest 8 frames, no more.
    async with MediaPlayer(str(media_dir / "av.mp4"), realtime=False) as player:
        assert player.video is not None and player.audio is not None
        audio = [await player.audio.recv() for _ in range(75)]  # 1.5 s
        assert len(audio) == 75
        assert len(player.video._queue) <= 8
        assert player.video.frames_dropped > 0
        frame = await player.video.recv()
        counter = read_frame_counter(frame)
        assert counter is not None and counter >= 30


async def test_passthrough_h264_vp8_opus(media_dir: Path) -> None:
    async with MediaPlayer(str(media_dir / "video.mp4"), decode=False, realtime=False) as player:
        assert player.video is not None and player.audio is None
        packets: list[OutgoingFrame] = []
        await read_all(player.video, packets)
    assert len(packets) == 60 and all(isinstance(p, OutgoingFrame) for p in packets)
    assert {p.codec for p in packets} == {"video/H264"}
    assert packets[0].keyframe and packets[0].data.startswith(b"\x00\x00\x00\x01\x67")
    assert [p.timestamp for p in packets] == [n * 3000 for n in range(60)]
    decoder = av.CodecContext.create("h264", "r")
    decoded = [read_frame_counter(f) for p in packets for f in decoder.decode(av.Packet(p.data))]
    decoded += [read_frame_counter(f) for f in decoder.decode(None)]
    assert decoded == list(range(60))

    async with MediaPlayer(str(media_dir / "av.webm"), decode=False, realtime=False) as player:
        assert player.video is not None and player.audio is not None
        video: list[OutgoingFrame] = []
        audio: list[OutgoingFrame] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all, player.video, video)
            nursery.start_soon(read_all, player.audio, audio)
    assert {p.codec for p in video} == {"video/VP8"} and {p.codec for p in audio} == {"audio/opus"}
    decoder = av.CodecContext.create("vp8", "r")
    decoded = [read_frame_counter(f) for p in video for f in decoder.decode(av.Packet(p.data))]
    assert decoded == list(range(60))
    # 20 ms Opus packets, counted in samples of the 48 kHz RTP clock.
    assert [p.timestamp for p in audio] == [n * 960 for n in range(len(audio))]
    # AAC is not a WebRTC codec: no audio track to pass through.
    player = MediaPlayer(str(media_dir / "av.mp4"), decode=False)
    assert player.audio is None and player.video is not None
    player.close()


async def test_passthrough_paced_and_looped(
    media_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with MediaPlayer(str(media_dir / "video.mp4"), decode=False, loop=True) as player:
        assert player.video is not None
        start = trio.current_time()
        packets: list[OutgoingFrame] = []
        await read_all(player.video, packets, 90)
        assert trio.current_time() - start == pytest.approx(89 / 30, abs=0.05)
    stamps = [p.timestamp for p in packets]
    assert stamps == [n * 3000 for n in range(90)]
    assert packets[60].keyframe and packets[60].data.startswith(b"\x00\x00\x00\x01\x67")


def test_avcc_to_annexb() -> None:
    data = b"\x00\x00\x00\x02\x65\x01\x00\x00\x00\x03\x41\x02\x03"
    assert avcc_to_annexb(data, 4) == [b"\x65\x01", b"\x41\x02\x03"]
    assert avcc_to_annexb(b"\x00\x02\x65\x01\x00\x09\x41", 2) == [b"\x65\x01"]  # truncated


async def test_cancellation_leaves_nothing_behind(media_dir: Path) -> None:
    rng = random.Random(12)
    path = media_dir / "av.webm"
    for _ in range(12):
        player = MediaPlayer(str(path), realtime=rng.random() < 0.5)
        assert player.video is not None and player.audio is not None
        with trio.move_on_after(rng.uniform(0, 0.15)):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all, player.video, [])
                nursery.start_soon(read_all, player.audio, [])
        # Every worker-thread call returned before the cancelled recv did.
        assert not player._busy
        await player.aclose()
        assert player.closed and not open_files(path)
    await trio.testing.wait_all_threads_completed()
    assert trio.testing.active_thread_count() == 0


async def test_close_from_another_task_while_pumping(media_dir: Path) -> None:
    path = media_dir / "av.mp4"
    player = MediaPlayer(str(path), realtime=False)
    assert player.video is not None

    async def reader() -> None:
        with pytest.raises(MediaStreamError):
            while True:
                await player.video.recv()  # type: ignore[union-attr]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(0.02)
        player.close()  # a pump may be running: the container closes when it returns
    await trio.testing.wait_all_threads_completed()
    assert player.closed and not open_files(path)
