"""Raw frames through two RTCPeerConnections on 127.0.0.1 when things are not nice.

- A file played into one pc and recorded from the other is a file of the same length.
- A reader that stops reading (or never starts) costs bounded memory: the remote track's queues
  stay within their bounds however long the media flows.
- Bad input does not end a track: a corrupt or truncated frame, another codec's bytes in a VP8
  stream, a picture size that changes mid-stream. Decode errors are counted in the stats and
  decoding goes on at the next keyframe.
- Cancelling at any point of setting up or running raw-frame media (encoders and decoders busy
  in worker threads) leaves no task, thread or file descriptor behind.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import av
import pytest
import trio
import trio.testing
from media_frames_helpers import (
    file_streams,
    open_fds,
    other_threads,
    prefer_codec,
    rss_bytes,
    task_names,
    write_test_file,
)
from pc_helpers import connect, make_pc, pc_pair

from trio_rtc import RTCPeerConnection
from trio_rtc.jsep.codecs import NegotiatedCodec
from trio_rtc.media import (
    MediaStreamTrack,
    OutgoingFrame,
    VideoSource,
    default_registry,
)
from trio_rtc.media.player import MediaPlayer
from trio_rtc.media.recorder import MediaRecorder
from trio_rtc.media.sources import TestPatternTrack, ToneTrack, read_frame_counter
from trio_rtc.media.tracks import DEFAULT_VIDEO_QUEUE
from trio_rtc.pc.media import RTCTrackEvent

WIDTH, HEIGHT = 320, 240


def inbound(stats: dict[str, Any], kind: str = "video") -> dict[str, Any]:
    [entry] = [s for s in stats.values() if s["type"] == "inbound-rtp" and s["kind"] == kind]
    return dict(entry)


def outbound(stats: dict[str, Any], kind: str = "video") -> dict[str, Any]:
    [entry] = [s for s in stats.values() if s["type"] == "outbound-rtp" and s["kind"] == kind]
    return dict(entry)


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` (state a reader task changes) until it holds."""
    while not predicate():  # noqa: ASYNC110 (a plain list, nothing to wait on)
        await trio.sleep(0.02)


async def remote_tracks(
    a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery, count: int
) -> list[MediaStreamTrack]:
    """Connect ``a`` to ``b`` and return ``b``'s ``count`` remote tracks (in ``a``'s order)."""
    events: list[RTCTrackEvent] = []
    b.ontrack = events.append
    await connect(a, b, nursery)
    await b.wait_until(lambda: len(events) == count)
    return [e.track for e in sorted(events, key=lambda e: int(e.transceiver.mid or 0))]


# --- a file played, sent and recorded ------------------------------------------------------------


async def test_player_to_recorder_round_trip_keeps_the_duration(tmp_path: Path) -> None:
    """Our MediaPlayer plays a 2 s file (VP8 + Opus) into one pc; the other records the two
    remote tracks with MediaRecorder (H.264 + AAC in mp4) from their first frame. PyAV reads
    back both streams, each 2 s long within 0.3 s, and the pictures are the file's (their
    stamped counters, in order)."""
    source = write_test_file(tmp_path / "source.webm", seconds=2)
    recording = tmp_path / "recording.mp4"
    with trio.fail_after(60):
        async with (
            pc_pair() as (a, b),
            trio.open_nursery() as nursery,
            MediaPlayer(str(source)) as player,
        ):
            assert player.video is not None and player.audio is not None
            senders = [a.addTrack(player.video), a.addTrack(player.audio)]  # type: ignore[arg-type]
            ended = [trio.Event(), trio.Event()]
            for sender, event in zip(senders, ended, strict=True):
                assert sender.track is not None
                sender.track.onended = lambda _e, event=event: event.set()
            events: list[RTCTrackEvent] = []
            b.ontrack = events.append
            nursery.start_soon(connect, a, b, nursery)
            # The remote tracks exist once b has the offer: record them before media flows.
            await b.wait_until(lambda: len(events) == 2)
            taps = [Tap(e.track) for e in sorted(events, key=lambda e: e.track.kind, reverse=True)]
            recorder = MediaRecorder(str(recording))
            for tap in taps:
                recorder.addTrack(tap)
            await nursery.start(recorder.run)
            await ended[0].wait()
            await ended[1].wait()
            # The file's last frames are still on their way: stop once nothing came for a while.
            while True:
                counts = [tap.frames for tap in taps]
                await trio.sleep(1.5)
                if counts == [tap.frames for tap in taps]:
                    break
            recorder.stop()
            await wait_for(lambda: recorder.closed)
            nursery.cancel_scope.cancel()
    streams = file_streams(recording)
    assert sorted(streams) == ["audio", "video"]
    assert streams["video"][0] == "h264" and streams["audio"][0] == "aac"
    for kind, (_codec, seconds) in streams.items():
        assert abs(seconds - 2.0) <= 0.3, (kind, seconds, [t.frames for t in taps])
    with av.open(str(recording)) as container:
        assert container.duration is not None
        assert abs(container.duration / 1e6 - 2.0) <= 0.3, container.duration
        counters = [read_frame_counter(f) for f in container.decode(video=0)]
    # A busy machine drops pictures on the way (the decoded queue keeps the newest): fewer
    # than 60, but the file's, in order, and the last ones among them.
    readable = [c for c in counters if c is not None]
    assert len(readable) >= 15 and len(readable) >= len(counters) - 3, counters
    assert readable == sorted(readable) and set(readable) <= set(range(60))
    assert readable[-1] >= 50, counters


class Tap:
    """A frame track passing ``track``'s frames on, counting them."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.kind = track.kind
        self.id = track.id
        self.frames = 0

    async def recv(self) -> Any:
        frame = await self.track.recv()
        self.frames += 1
        return frame


# --- a reader that does not read -------------------------------------------------------------


async def test_a_consumer_that_never_reads_costs_bounded_memory() -> None:
    """Two 640x480 VP8 streams at 30 fps for 24 s: one remote track was read once (its decoder
    runs, the pictures pile up in nobody's hands), the other never. Their queues stay within
    bounds all along, both keep dropping (so media does arrive), and neither the Python heap
    (tracemalloc) nor the process (RSS) grows in the second half of the run."""
    seconds, samples = 24, 12
    tracemalloc.start()
    try:
        async with pc_pair() as (a, b), trio.open_nursery() as nursery:
            for _ in range(2):
                # (A short history of production times: the default 1024 would still be
                # filling up, 34 s worth, and show as growth on the sending side.)
                a.addTrack(TestPatternTrack(640, 480, 30, history=30))  # type: ignore[arg-type]
            with trio.fail_after(30):
                read_once, never_read = await remote_tracks(a, b, nursery, 2)
                picture = await read_once.recv()
            assert (picture.width, picture.height) == (640, 480)
            heap: list[int] = []
            rss: list[int] = []
            for _ in range(samples):
                await trio.sleep(seconds / samples)
                heap.append(tracemalloc.get_traced_memory()[0])
                rss.append(rss_bytes())
                assert len(read_once._decoded) <= read_once.max_decoded_queue == 3
                assert read_once.queued_frames <= DEFAULT_VIDEO_QUEUE
                assert never_read.queued_frames <= DEFAULT_VIDEO_QUEUE
                assert not never_read.decoding
            stats = await b.getStats()
            nursery.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
    # Media flowed all along (up to ~700 frames each, fewer on a busy machine): the never-read
    # track dropped what came, the read-once one decoded it and dropped the pictures.
    assert never_read.frames_dropped >= 30, never_read.frames_dropped
    assert read_once.decoded_frames_dropped >= 30, read_once.decoded_frames_dropped
    [decoded] = [s for s in stats.values() if s["type"] == "inbound-rtp" and "totalDecodeTime" in s]
    assert decoded["framesDecoded"] >= 30
    half = samples // 2
    heap_growth = max(heap[half:]) - heap[half - 1]
    rss_growth = max(rss[half:]) - rss[half - 1]
    mib = 1 << 20
    summary = f"heap {[h // 1024 for h in heap]} KiB, rss {[r // mib for r in rss]} MiB"
    # A queue that kept encoded frames would grow the heap by ~1 MiB in 12 s, one that kept
    # decoded pictures the RSS by ~150 MiB (460 KiB a picture, 30 a second). The allocator may
    # still take one step of its own in the second half with the heap flat (a CI run saw RSS go
    # 585 -> 595 MiB once and stay there), so the RSS bound leaves room for one such step.
    assert heap_growth < mib, summary
    assert rss_growth < 32 * mib, summary


# --- bad input -----------------------------------------------------------------------------------


@functools.cache
def encoded_stream(codec: str, count: int, keyframe_every: int = 10) -> list[OutgoingFrame]:
    """``count`` frames of the stamped pattern (frame ``n`` has counter ``n``), encoded by
    trio_rtc's own ``codec`` encoder, a keyframe every ``keyframe_every`` frames; the frames
    carry no ``codec`` (plain encoded frames, sent as they are on any sender)."""
    encoder = default_registry.create_encoder(NegotiatedCodec(96, codec, 90000))
    pattern = TestPatternTrack(WIDTH, HEIGHT, 30, realtime=False)
    frames = []
    try:
        for index in range(count):
            picture = pattern.make_frame(index)
            [out] = encoder.encode(picture, keyframe=index % keyframe_every == 0)
            assert out.keyframe == (index % keyframe_every == 0)
            frames.append(OutgoingFrame(out.data, out.keyframe, duration=1 / 30))
    finally:
        encoder.close()
    return frames


async def send_encoded(track: MediaStreamTrack, frames: Iterable[OutgoingFrame]) -> None:
    source = track.source
    assert source is not None
    for frame in frames:
        await source.send(frame)
        await trio.sleep(1 / 30)


def first_at_least(counters: list[int | None], value: int) -> int:
    """The index of the first counter of ``value`` or more."""
    return next(i for i, c in enumerate(counters) if c is not None and c >= value)


async def collect(track: MediaStreamTrack, out: list[int | None]) -> None:
    """Read ``track``'s pictures until cancelled, noting each one's counter (None: unreadable,
    a damaged picture)."""
    async for picture in track:
        out.append(read_frame_counter(picture))


async def send_and_read(
    frames: list[OutgoingFrame], *, until: int
) -> tuple[list[int | None], dict[str, Any]]:
    """Send ``frames`` on a VP8 sender fed with encoded frames; read the far side's decoded
    pictures until one with a counter of ``until`` or more came out. Returns the counters read
    and the far side's inbound-rtp stats (taken while the track was live).

    The frames were encoded beforehand, so a keyframe request cannot be honoured: a receiver
    that fell behind (its queue overflowed, it waits for a keyframe) gets the next of the
    regular ones, and ``frames`` should go on for a few after ``until``."""
    counters: list[int | None] = []
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        local = MediaStreamTrack("video", "encoded")
        a.addTrack(local)
        prefer_codec(a.getTransceivers()[0], "video", "VP8")
        with trio.fail_after(60):
            [remote] = await remote_tracks(a, b, nursery, 1)
            nursery.start_soon(collect, remote, counters)
            async with trio.open_nursery() as feeding:
                feeding.start_soon(send_encoded, local, frames)
                await wait_for(lambda: any(c is not None and c >= until for c in counters))
                feeding.cancel_scope.cancel()
        stats = inbound(await b.getStats())
        assert remote.readyState == "live" and b.connectionState == "connected"
        nursery.cancel_scope.cancel()
    return counters, stats


async def test_corrupt_and_truncated_frames_are_counted_and_decoding_goes_on() -> None:
    """Among good VP8 frames (keyframes at 0, 10, 20, ...): random bytes after frame 15 and
    keyframe 40 cut to a third of its size. The track goes on, the errors are counted in
    ``decodeErrors``, a keyframe is asked for (PLI), and from keyframe 50 on every picture is
    the one sent, in order."""
    good = encoded_stream("VP8", 120)
    garbage = OutgoingFrame(random.Random(1).randbytes(400), False, duration=1 / 30)
    truncated = OutgoingFrame(good[40].data[: len(good[40].data) // 3], True, duration=1 / 30)
    frames = [*good[:16], garbage, *good[16:40], truncated, *good[41:]]
    counters, stats = await send_and_read(frames, until=89)
    assert stats["decodeErrors"] >= 2, stats
    assert stats["pliCount"] >= 1
    assert stats["framesDecoded"] >= 60
    # Before the damage, and from the next keyframe on, the pictures are the frames sent.
    before = counters[: first_at_least(counters, 16)]
    assert before == sorted(before) and None not in before
    after = counters[first_at_least(counters, 50) :]
    assert after == sorted(after) and None not in after and after[-1] >= 89


async def test_no_damaged_picture_comes_out_after_a_decode_error() -> None:
    """docs/media-frames.md: a frame the decoder cannot decode is dropped, "and decoding goes on
    at the next keyframe". A truncated keyframe breaks the decoder's reference picture, so the
    frames after it up to the next keyframe can only give damaged pictures: none of them may
    reach the reader (libwebrtc waits for a keyframe after a decode error the same way)."""
    good = encoded_stream("VP8", 90)
    truncated = OutgoingFrame(good[20].data[: len(good[20].data) // 3], True, duration=1 / 30)
    counters, stats = await send_and_read([*good[:20], truncated, *good[21:]], until=59)
    assert stats["decodeErrors"] >= 1, stats
    damaged = counters.count(None)
    assert damaged == 0, f"{damaged} damaged pictures reached the reader: {counters}"
    assert set(counters) & set(range(21, 30)) == set(), counters


async def test_another_codecs_frames_on_a_vp8_stream_are_counted_and_vp8_goes_on() -> None:
    """A producer mislabels its frames: H.264 access units (plain encoded frames, no codec
    named) on a sender that negotiated VP8, between VP8 frames. The VP8 decoder refuses them
    (``decodeErrors``), the track goes on and the VP8 frames after them decode again."""
    vp8 = encoded_stream("VP8", 90)
    h264 = encoded_stream("H264", 6, keyframe_every=6)
    counters, stats = await send_and_read([*vp8[:20], *h264, *vp8[20:]], until=59)
    assert stats["decodeErrors"] >= 1, stats
    readable = [c for c in counters if c is not None]
    assert readable == sorted(readable) and readable[-1] >= 59
    assert len([c for c in readable if c >= 20]) >= 10


async def test_a_picture_size_change_mid_stream_is_followed_without_errors() -> None:
    """A VideoSource sends 640x480, then 320x240, then 640x480 again: the encoder restarts
    with a keyframe at each change, the far side's pictures change size with the stream, in
    order, and no frame fails to encode or decode."""
    big = TestPatternTrack(640, 480, 30, realtime=False)
    small = TestPatternTrack(320, 240, 30, realtime=False)
    # The last phase goes on until the far side saw it (a receiver that fell behind gets a
    # keyframe on the next picture it asks for).
    phases = [(big, range(0, 45)), (small, range(45, 90)), (big, itertools.count(90))]
    seen: list[tuple[int, int, int | None]] = []
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        source = VideoSource()
        sender = a.addTrack(source.create_track("changing"))
        with trio.fail_after(40):
            [remote] = await remote_tracks(a, b, nursery, 1)

            async def read() -> None:
                async for picture in remote:
                    seen.append((picture.width, picture.height, read_frame_counter(picture)))

            nursery.start_soon(read)

            async def feed() -> None:
                for pattern, counters in phases:
                    for counter in counters:
                        await source.send(pattern.make_frame(counter))
                        await trio.sleep(1 / 30)

            async with trio.open_nursery() as feeding:
                feeding.start_soon(feed)
                await wait_for(lambda: any(c is not None and c >= 120 for *_, c in seen))
                feeding.cancel_scope.cancel()
        stats_in = inbound(await b.getStats())
        stats_out = outbound(await a.getStats())
        nursery.cancel_scope.cancel()
    sizes = [(w, h) for w, h, _ in seen]
    assert [size for size, _ in itertools.groupby(sizes)] == [(640, 480), (320, 240), (640, 480)]
    for width, height, counter in seen:
        assert counter is not None, seen
        assert (width, height) == ((320, 240) if 45 <= counter < 90 else (640, 480)), seen
    counters = [c for *_, c in seen]
    assert counters == sorted(counters)
    assert "decodeErrors" not in stats_in and "encodeErrors" not in stats_out
    assert sender.encode_stats is not None and sender.encode_stats.errors == 0
    assert stats_out["keyFramesEncoded"] >= 3  # the first picture and each change of size
    assert stats_in["frameWidth"] == 640


# --- cancellation with raw frames ----------------------------------------------------------------

SEEDS = 16
#: Connecting and opening the first codecs take ~30 ms on loopback: half the seeds cut in there,
#: the other half while media flows.
SETUP, FLOW = 0.06, 2.0


async def feed_source(source: VideoSource) -> None:
    pattern = TestPatternTrack(WIDTH, HEIGHT, 30, realtime=False)
    for counter in itertools.count():
        await source.send(pattern.make_frame(counter))
        await trio.sleep(1 / 30)


async def read_decoded(track: MediaStreamTrack, counts: dict[str, int]) -> None:
    async for _frame in track:
        counts[track.kind] = counts.get(track.kind, 0) + 1


async def raw_media_session(
    a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery, counts: dict[str, int]
) -> None:
    """a sends a test pattern (VP8) and a tone (Opus), b a VideoSource (H.264); both read what
    they receive with ``recv()`` (decoders running): forever, until cancelled."""
    a.addTrack(TestPatternTrack(WIDTH, HEIGHT, 30))  # type: ignore[arg-type]
    a.addTrack(ToneTrack())  # type: ignore[arg-type]
    source = VideoSource()
    b.addTrack(source.create_track("b camera"))
    prefer_codec(b.getTransceivers()[0], "video", "H264")
    for pc in (a, b):
        pc.ontrack = lambda e: nursery.start_soon(read_decoded, e.track, counts)
    await connect(a, b, nursery)
    counts["connected"] = 1
    nursery.start_soon(feed_source, source)
    await trio.sleep_forever()


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_cancel_raw_media_at_a_random_point(seed: int) -> None:
    # Load the codecs and trio's thread machinery outside the measured window.
    encoded_stream("VP8", 1)
    await trio.to_thread.run_sync(lambda: None)
    rng = random.Random(seed)
    delay = rng.uniform(0, SETUP) if seed % 2 else rng.uniform(SETUP, FLOW)
    await trio.testing.wait_all_tasks_blocked()
    tasks_before, fds_before, threads_before = task_names(), open_fds(), other_threads()
    counts: dict[str, int] = {}
    a, b = make_pc(0), make_pc(1)
    with trio.move_on_after(delay) as scope:
        async with a, b, trio.open_nursery() as nursery:
            await raw_media_session(a, b, nursery, counts)
    assert scope.cancelled_caught
    # Every codec call was waited for, not abandoned: no worker thread is still busy.
    assert trio.testing.active_thread_count() == 0
    for pc in (a, b):
        if pc.ice_transport is None and pc.signalingState != "closed":
            assert pc is b and pc.connectionState == "new"  # cut before it was entered
            continue
        assert (pc.connectionState, pc.signalingState) == ("closed", "closed")
    await trio.testing.wait_all_threads_completed()
    await trio.testing.wait_all_tasks_blocked()
    assert task_names() == tasks_before
    assert open_fds() == fds_before, os.listdir("/proc/self/fd")
    assert other_threads() == threads_before
    print(f"seed {seed}: cancelled after {delay:.3f} s, {counts}")
