"""Cancelling two RTCPeerConnections at a random point of their media life (addTrack, offer/answer,
ICE/DTLS, the first frames, VP8 + Opus and a data channel in full flow), 20 seeds: afterwards
no task is left beyond the test's own, no file descriptor or thread leaked, and both peer
connections are closed."""

from __future__ import annotations

import fractions
import functools
import itertools
import os
import random
import threading
from collections import Counter

import av
import pytest
import trio
import trio.lowlevel
import trio.testing
from pc_helpers import connect, make_pc

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.media import MediaStream, MediaStreamTrack, OutgoingFrame
from trio_rtc.pc.media import RTCTrackEvent

SEEDS = 20
MAX_DELAY = 1.5
WIDTH, HEIGHT = 160, 120


@functools.cache
def vp8_frames() -> list[tuple[bytes, bool]]:
    """One second of VP8 (a keyframe first), encoded once for every run."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frames = []
    for index in range(30):
        picture = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane in picture.planes:
            plane.update(bytes([(index * 7) % 256]) * (plane.line_size * plane.height))
        picture.pts = index
        frames += [(bytes(p), bool(p.is_keyframe)) for p in encoder.encode(picture)]
    return frames


@functools.cache
def opus_frames() -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    frames = []
    for index in range(50):
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples.sample_rate = 48000
        samples.planes[0].update(bytes(range(256)) * 15)
        samples.pts = index * 960
        frames += [bytes(p) for p in encoder.encode(samples)]
    return frames


def task_names() -> Counter[str]:
    """The name of every task alive under trio's root task, counted."""
    names: Counter[str] = Counter()

    def walk(task: trio.lowlevel.Task) -> None:
        names[task.name] += 1
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root)
    return names


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    """Live threads, less trio's idle worker-thread cache (``trio.to_thread`` keeps its workers
    for a while; one still running a job would show as a task)."""
    return sum(not t.name.startswith("Trio thread ") for t in threading.enumerate())


async def send_video(track: MediaStreamTrack) -> None:
    assert track.source is not None
    for data, keyframe in itertools.cycle(vp8_frames()):
        await track.source.send(OutgoingFrame(data, keyframe=keyframe, duration=1 / 30))
        await trio.sleep(1 / 60)


async def send_audio(track: MediaStreamTrack) -> None:
    assert track.source is not None
    for data in itertools.cycle(opus_frames()):
        await track.source.send(OutgoingFrame(data, duration=0.02))
        await trio.sleep(0.01)


async def read_track(event: RTCTrackEvent, counts: Counter[str]) -> None:
    async for _frame in event.track.encoded_frames():
        counts[event.track.kind] += 1


async def read_channel(channel: RTCDataChannel, counts: Counter[str]) -> None:
    async for _message in channel:
        counts["messages"] += 1


async def media_session(
    a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery, counts: Counter[str]
) -> None:
    """Both ways media and a data channel, forever (until cancelled)."""
    stream = MediaStream()
    a_video, a_audio = MediaStreamTrack("video", "a camera"), MediaStreamTrack("audio", "a mic")
    b_video = MediaStreamTrack("video", "b camera")
    a.addTrack(a_video, stream)
    a.addTrack(a_audio, stream)
    b.addTrack(b_video)
    for pc in (a, b):
        pc.ontrack = lambda e: nursery.start_soon(read_track, e, counts)
    b.ondatachannel = lambda e: nursery.start_soon(read_channel, e.channel, counts)
    channel = a.createDataChannel("alongside")
    await connect(a, b, nursery)
    counts["connected"] += 1
    for task, track in ((send_video, a_video), (send_audio, a_audio), (send_video, b_video)):
        nursery.start_soon(task, track)
    await channel.wait_open()
    while True:
        await channel.send_message(b"m" * 1000)
        await trio.sleep(0.005)


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_cancel_media_at_a_random_point(seed: int) -> None:
    vp8_frames(), opus_frames()  # encoded outside the measured window
    # 0 to 1.5 s, skewed towards the start: offer/answer, ICE, DTLS and the first frames take
    # ~25 ms on loopback, and about a third of the seeds cut there, the rest in the flow.
    delay = random.Random(seed).uniform(0, 1) ** 3 * MAX_DELAY
    await trio.testing.wait_all_tasks_blocked()
    tasks_before, fds_before, threads_before = task_names(), open_fds(), threads()
    counts: Counter[str] = Counter()
    a, b = make_pc(0), make_pc(1)
    with trio.move_on_after(delay) as scope:
        async with a, b, trio.open_nursery() as nursery:
            await media_session(a, b, nursery, counts)
    assert scope.cancelled_caught
    for pc in (a, b):
        if pc.ice_transport is None and pc.signalingState != "closed":
            # Cancelled before ``async with`` entered this one: it never opened anything.
            assert pc is b and pc.connectionState == "new"
            continue
        assert (pc.connectionState, pc.signalingState) == ("closed", "closed")
        assert all(t.currentDirection in (None, "stopped") for t in pc.getTransceivers())
    await trio.testing.wait_all_tasks_blocked()
    assert task_names() == tasks_before
    assert open_fds() == fds_before
    assert threads() == threads_before
    # Where the cut fell, for the log: before connecting, or with this much media through.
    print(f"seed {seed}: cancelled after {delay:.3f} s, {dict(counts)}")
