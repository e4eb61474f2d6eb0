"""The playout delay follows the target down as well as up: after a delay spike the buffer
merges a frame into the next one (time compression by a whole frame) until the applied delay
is within a frame of the target, never dropping a frame, never faster than one merge per
ACCELERATE_INTERVAL_SECONDS of audio. Time is a plain float fed to the core."""

from __future__ import annotations

import itertools
import random

import pytest
from test_rtp_jitter import FRAME, PERIOD, RATE, Arrival, drive

from trio_rtc.rtp.jitter import (
    ACCELERATE_INTERVAL_SECONDS,
    AudioJitterBuffer,
    Concealment,
    PlayoutFrame,
)


def spiked_stream(count: int, *, spike: float, jitter: float, seed: int) -> list[Arrival]:
    """20 ms frames over a 30 ms path with ``jitter`` of uniform noise; from packet 1 the path
    stalls for ``spike`` seconds (a start-up stall): what was sent meanwhile arrives at once,
    1 ms apart, in order."""
    rng = random.Random(seed)
    arrivals = []
    stall_end = PERIOD + 0.03 + spike
    for i in range(count):
        arrival = i * PERIOD + 0.03 + rng.uniform(0.0, jitter)
        if i >= 1:
            arrival = max(arrival, stall_end + i * 0.001)
        arrivals.append((arrival, i, i * FRAME))
    return arrivals


def test_a_spike_raises_the_delay_and_merges_bring_it_back_to_the_target() -> None:
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    out = drive(buffer, spiked_stream(750, spike=0.08, jitter=0.002, seed=1))
    played = [item for _, item in out if isinstance(item, PlayoutFrame)]
    # Every frame comes out once, in order: nothing dropped, nothing concealed.
    assert [item.frame for item in played] == list(range(750))
    assert [item for _, item in out if isinstance(item, Concealment)] == []
    merged = [item for item in played if item.merge]
    assert merged, "the delay never came down"
    assert buffer.stats.removed_samples_for_acceleration == FRAME * len(merged)
    assert buffer.stats.inserted_samples_for_deceleration == 0
    # The delay ends within a frame of the target (15 s after a 2 ms-jitter path settled).
    assert buffer.target_delay < 0.005
    assert buffer.target_delay <= buffer.applied_delay < buffer.target_delay + PERIOD
    # A merged frame and the frame it merges into come out together, in one slot.
    for (now, item), (later, following) in itertools.pairwise(out):
        if isinstance(item, PlayoutFrame) and item.merge:
            assert isinstance(following, PlayoutFrame) and following.frame == item.frame + 1
            assert following.playout_time == pytest.approx(item.playout_time)
            assert later == now
    # At most one merge per ACCELERATE_INTERVAL_SECONDS of audio.
    gaps = [b.frame - a.frame for a, b in itertools.pairwise(merged)]
    assert min(gaps, default=len(played)) * PERIOD >= ACCELERATE_INTERVAL_SECONDS - 1e-9


def test_a_delay_within_a_frame_of_the_target_is_left_alone() -> None:
    """The step is a frame: a delay less than a frame above the target is not merged down
    (it would fall below the target)."""
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    out = drive(buffer, spiked_stream(500, spike=0.012, jitter=0.001, seed=2))
    assert [item.frame for _, item in out if isinstance(item, PlayoutFrame)] == list(range(500))
    assert buffer.stats.removed_samples_for_acceleration == 0
    assert buffer.applied_delay - buffer.target_delay < PERIOD


def test_a_floor_is_never_merged_under() -> None:
    """jitterBufferTarget holds the delay: compression stops at the floor."""
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    buffer.set_minimum_delay(0.06)
    out = drive(buffer, spiked_stream(750, spike=0.15, jitter=0.002, seed=3))
    assert [item.frame for _, item in out if isinstance(item, PlayoutFrame)] == list(range(750))
    assert buffer.stats.removed_samples_for_acceleration > 0
    assert 0.06 - 1e-9 <= buffer.applied_delay < 0.06 + PERIOD


def test_real_jitter_still_raises_the_delay() -> None:
    """After settling low on a clean path, 60 ms of jitter raises the delay again (by
    inserted frames or by re-anchoring after an underrun), and few packets come too late."""
    rng = random.Random(4)
    arrivals = []
    for i in range(600):
        jitter = rng.uniform(0.0, 0.06) if i >= 300 else rng.uniform(0.0, 0.001)
        arrivals.append((i * PERIOD + 0.03 + jitter, i, i * FRAME))
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    drive(buffer, arrivals)
    assert buffer.target_delay > 0.04
    assert buffer.applied_delay > 0.04
    assert buffer.stats.packets_late < 30
