"""MediaRelay (trio_rtc.media.relay): encoded fan-out of a remote track, frame fan-out."""

from __future__ import annotations

import random
from typing import Any

import av  # noqa: F401 (the media extra)
import pytest
import trio
import trio.testing

from trio_rtc.media.frames import MediaStreamError
from trio_rtc.media.relay import MediaRelay, RelayedFrameTrack
from trio_rtc.media.sources import TestPatternTrack, ToneTrack, read_frame_counter
from trio_rtc.media.tracks import DEFAULT_SOURCE_QUEUE, MediaStreamTrack, OutgoingFrame
from trio_rtc.rtp.codecs import EncodedFrame

GOP = 30


def video_frame(n: int) -> EncodedFrame:
    return EncodedFrame(
        n.to_bytes(4, "big"), 3000 * n, n % GOP == 0, n, n, codec="video/VP8", arrival_time=None
    )


def remote_track(kind: str = "video") -> tuple[MediaStreamTrack, list[int]]:
    track = MediaStreamTrack(kind, remote=True)
    requests: list[int] = []
    track._keyframe_hook = lambda: requests.append(1)
    return track, requests


async def drain(track: MediaStreamTrack, out: list[OutgoingFrame]) -> None:
    assert track.source is not None
    while True:
        try:
            out.append(await track.source.receive_frame())
        except trio.EndOfChannel:
            return


async def test_encoded_fan_out_with_a_stalled_subscriber() -> None:
    remote, requests = remote_track()
    async with MediaRelay() as relay:
        subscribers = [relay.subscribe(remote) for _ in range(3)]
        assert all(isinstance(s, MediaStreamTrack) and not s.remote for s in subscribers)
        assert len(requests) == 3  # every new subscriber asks for a keyframe
        got: list[list[OutgoingFrame]] = [[], []]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, subscribers[0], got[0])
            nursery.start_soon(drain, subscribers[1], got[1])
            for n in range(200):
                remote._deliver(video_frame(n))
                await trio.testing.wait_all_tasks_blocked()
                stalled = subscribers[2].source
                assert stalled is not None
                # The third never reads: its queue stays bounded.
                assert stalled._send.statistics().current_buffer_used <= DEFAULT_SOURCE_QUEUE
            remote._end(fire=True)
        # The two readers got every frame, as OutgoingFrames carrying the codec.
        for frames in got:
            assert [int.from_bytes(f.data, "big") for f in frames] == list(range(200))
            assert {f.codec for f in frames} == {"video/VP8"}
            assert [f.timestamp for f in frames] == [3000 * n for n in range(200)]
            assert [f.keyframe for f in frames] == [n % GOP == 0 for n in range(200)]
        # The stalled one asked for keyframes while it dropped (not only at subscription).
        assert len(requests) > 3
        # The source ended: so did every subscriber's track.
        assert all(s.readyState == "ended" for s in subscribers)
        # What the stalled one queued starts at a keyframe and is contiguous.
        stalled_frames: list[OutgoingFrame] = []
        await drain(subscribers[2], stalled_frames)
        numbers = [int.from_bytes(f.data, "big") for f in stalled_frames]
        assert numbers[0] == 0 and numbers == list(range(len(numbers)))


async def test_slow_subscriber_resumes_at_a_keyframe() -> None:
    remote, requests = remote_track()
    async with MediaRelay() as relay:
        slow = relay.subscribe(remote)
        assert slow.source is not None
        for n in range(40):  # 8 queued (0..7), then dropping until the keyframe at 30
            remote._deliver(video_frame(n))
            await trio.testing.wait_all_tasks_blocked()
            if n == 12:
                for _ in range(8):
                    await slow.source.receive_frame()  # room again, but 13 would not decode
        received = []
        while True:
            try:
                received.append(int.from_bytes(slow.source._receive.receive_nowait().data, "big"))
            except trio.WouldBlock:
                break
        assert received == list(range(30, 38))  # full again at 38: dropping to the next keyframe
        assert len(requests) >= 2


async def test_keyframe_requests_and_late_subscribers() -> None:
    remote, requests = remote_track()
    async with MediaRelay() as relay:
        first = relay.subscribe(remote)
        assert first.source is not None
        remote._deliver(video_frame(0))
        remote._deliver(video_frame(1))
        await trio.testing.wait_all_tasks_blocked()
        count = len(requests)
        first.source.keyframe_requested.set()  # the sender got a PLI
        remote._deliver(video_frame(2))
        await trio.testing.wait_all_tasks_blocked()
        assert len(requests) == count + 1
        # A late subscriber gets nothing until the next keyframe.
        late = relay.subscribe(remote)
        assert late.source is not None
        for n in range(3, 31):
            remote._deliver(video_frame(n))
            await trio.testing.wait_all_tasks_blocked()
            while first.source._receive.statistics().current_buffer_used:
                first.source._receive.receive_nowait()
        frame = late.source._receive.receive_nowait()
        assert frame.keyframe and int.from_bytes(frame.data, "big") == 30
        # A stopped subscriber is dropped; the others go on.
        late.stop()
        remote._deliver(video_frame(31))
        await trio.testing.wait_all_tasks_blocked()
        assert int.from_bytes(first.source._receive.receive_nowait().data, "big") == 31


async def test_audio_encoded_relay() -> None:
    remote, requests = remote_track("audio")
    async with MediaRelay() as relay:
        a, b = relay.subscribe(remote), relay.subscribe(remote, buffered=False)
        assert requests == []
        for n in range(5):
            remote._deliver(EncodedFrame(b"op%d" % n, 960 * n, False, n, n, codec="audio/opus"))
            await trio.testing.wait_all_tasks_blocked()
        assert a.source is not None and b.source is not None
        got = [a.source._receive.receive_nowait() for _ in range(5)]
        assert [f.timestamp for f in got] == [960 * n for n in range(5)]
        assert all(f.keyframe and f.codec == "audio/opus" for f in got)
        # Unbuffered: one frame deep, the first one stays (audio is never reordered).
        assert b.source._receive.receive_nowait().data == b"op0"
    assert a.readyState == "ended" and b.readyState == "ended"


async def test_frame_track_fan_out(autojump_clock: trio.testing.MockClock) -> None:
    pattern = TestPatternTrack(64, 48, framerate=30, duration=2.0)
    async with MediaRelay() as relay:
        subscribers = [relay.subscribe(pattern) for _ in range(3)]
        latest = relay.subscribe(pattern, buffered=False)
        assert all(isinstance(s, RelayedFrameTrack) for s in subscribers)
        got: list[list[Any]] = [[], []]

        async def read(track: Any, out: list[Any]) -> None:
            async for frame in track:
                out.append(read_frame_counter(frame))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read, subscribers[0], got[0])
            nursery.start_soon(read, subscribers[1], got[1])
            for _ in range(30):
                await trio.sleep(1 / 30)
                assert subscribers[2].queued_frames <= 8  # never read: bounded
                assert latest.queued_frames <= 1
        assert got == [list(range(60)), list(range(60))]
        assert subscribers[2].frames_dropped == 60 - 8
        # The stalled subscriber still has the newest 8, then the end.
        rest = [read_frame_counter(f) async for f in subscribers[2]]
        assert rest == list(range(52, 60))
        assert read_frame_counter(await latest.recv()) == 59
        with pytest.raises(MediaStreamError):
            await latest.recv()


async def test_relay_lifetime_and_errors(autojump_clock: trio.testing.MockClock) -> None:
    relay = MediaRelay()
    tone = ToneTrack()
    with pytest.raises(RuntimeError):
        relay.subscribe(tone)
    async with relay:
        with pytest.raises(TypeError):
            relay.subscribe(MediaStreamTrack("video"))  # a local track: nothing to read
        with pytest.raises(TypeError):
            relay.subscribe(tone, encoded=True)
        sub = relay.subscribe(tone)
        assert isinstance(sub, RelayedFrameTrack)
        frame = await sub.recv()
        assert frame.pts == 0
    # Leaving the block stops reading and ends the subscribers.
    with pytest.raises(MediaStreamError):
        while True:
            await sub.recv()
    assert tone.readyState == "live"  # the relay does not own its sources


async def test_cancelled_at_random_points_leaves_no_task() -> None:
    rng = random.Random(7)
    for _ in range(10):
        remote, _requests = remote_track()
        pattern = TestPatternTrack(64, 48, framerate=100)
        with trio.move_on_after(rng.uniform(0, 0.05)):
            async with MediaRelay() as relay:
                encoded = relay.subscribe(remote)
                frames = relay.subscribe(pattern)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drain, encoded, [])
                    nursery.start_soon(frames.recv)
                    for n in range(1000):
                        remote._deliver(video_frame(n))
                        await trio.sleep(0.001)
        assert encoded.readyState == "ended" and frames.readyState in ("live", "ended")
    # Every task ran inside a nursery that has exited; nothing is left to run.
    await trio.testing.wait_all_tasks_blocked()
