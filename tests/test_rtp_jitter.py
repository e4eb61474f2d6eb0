"""The audio jitter buffer core: scheduling, adaptation, loss, lateness, DTX and bounds.

Time is a plain float fed to the core; a small event loop below plays the driver's part (put at
arrival, pop at the core's timer)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.rtp.jitter import AudioJitterBuffer, Concealment, Playout, PlayoutFrame

RATE = 48_000
FRAME = 960  # 20 ms
PERIOD = FRAME / RATE

Arrival = tuple[float, int, int]  # (arrival time, sequence number, timestamp)


def sent(count: int, *, seq0: int = 0, ts0: int = 0, t0: float = 0.0) -> list[Arrival]:
    """``count`` frames sent every 20 ms, arriving after a 50 ms base transit."""
    return [
        (t0 + i * PERIOD + 0.05, (seq0 + i) & 0xFFFF, (ts0 + i * FRAME) & 0xFFFF_FFFF)
        for i in range(count)
    ]


def drive(
    buffer: AudioJitterBuffer[int], arrivals: list[Arrival], *, until: float | None = None
) -> list[tuple[float, Playout[int]]]:
    """Feed arrivals in time order, popping whenever the core's timer or an arrival is due.
    The payload of each frame is its sequence number."""
    out: list[tuple[float, Playout[int]]] = []
    pending = sorted(arrivals, key=lambda a: a[0])
    end = until if until is not None else (pending[-1][0] + 2.0 if pending else 0.0)
    index = 0
    now = 0.0
    for _ in range(1_000_000):
        timer = buffer.get_timer()
        next_arrival = pending[index][0] if index < len(pending) else None
        candidates = [t for t in (timer, next_arrival) if t is not None]
        if not candidates:
            break
        now = max(now, min(candidates))
        if now > end:
            break
        while index < len(pending) and pending[index][0] <= now:
            _, seq, ts = pending[index]
            buffer.put(ts, seq, seq, now)
            index += 1
        out += [(now, item) for item in buffer.pop(now)]
    return out


def frames(out: list[tuple[float, Playout[int]]]) -> list[int]:
    return [item.frame for _, item in out if isinstance(item, PlayoutFrame)]


def concealments(out: list[tuple[float, Playout[int]]]) -> list[Concealment[int]]:
    return [item for _, item in out if isinstance(item, Concealment)]


def test_steady_stream_plays_in_order_at_a_fixed_delay() -> None:
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04)
    out = drive(buffer, sent(50))
    assert frames(out) == list(range(50))
    assert concealments(out) == []
    for now, item in out:
        assert isinstance(item, PlayoutFrame)
        # sent at seq * 20 ms, arrived 50 ms later, played 40 ms after that.
        assert item.playout_time == pytest.approx(item.frame * PERIOD + 0.09)
        assert now == pytest.approx(item.playout_time)
    stats = buffer.stats
    assert stats.jitter_buffer_emitted_count == 50 * FRAME
    assert stats.total_samples_received == 50 * FRAME
    # W3C jitterBufferDelay: sample-seconds from arrival to emit.
    assert stats.jitter_buffer_delay / stats.jitter_buffer_emitted_count == pytest.approx(0.04)
    assert stats.jitter_buffer_target_delay / stats.jitter_buffer_emitted_count == pytest.approx(
        0.04
    )


def test_jitter_step_raises_the_target_quickly_and_it_decays_later() -> None:
    rng = random.Random(7)
    arrivals = []
    for i in range(600):
        jitter = rng.uniform(0.0, 0.08) if 100 <= i < 200 else 0.0
        arrivals.append((i * PERIOD + 0.05 + jitter, i, i * FRAME))
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    targets: dict[int, float] = {}
    for t, seq, ts in sorted(arrivals):
        buffer.put(ts, seq, seq, t)
        buffer.pop(t)
        targets[seq] = buffer.target_delay
    assert targets[99] == pytest.approx(0.0, abs=1e-9)
    # Within 20 packets of the step the target covers most of the new spread.
    assert targets[120] > 0.05
    assert max(targets[i] for i in range(150, 200)) <= 0.08 + 1e-9
    # It falls back slowly: still up shortly after the jitter stops, low again much later.
    assert targets[210] > 0.04
    assert targets[599] < 0.25 * targets[199]  # 4 s time constant, after the 2 s window
    assert buffer.stats.packets_late < 20


def test_a_lost_packet_is_concealed_once_in_its_slot_with_fec_from_the_next() -> None:
    arrivals = [a for a in sent(20) if a[1] != 7]
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04)
    out = drive(buffer, arrivals)
    assert frames(out) == [i for i in range(20) if i != 7]
    (concealment,) = concealments(out)
    assert concealment.reason == "lost"
    assert concealment.samples == FRAME
    assert concealment.timestamp == 7 * FRAME
    assert concealment.playout_time == pytest.approx(7 * PERIOD + 0.09)
    assert concealment.fec_from == 8
    items = [item for _, item in out]
    assert items.index(concealment) == 7  # between frames 6 and 8
    stats = buffer.stats
    assert stats.concealed_samples == FRAME
    assert stats.concealment_events == 1
    assert stats.silent_concealed_samples == 0  # 20 ms, within the 30 ms fade
    assert stats.total_samples_received == 20 * FRAME


def test_a_burst_loss_is_one_event_with_a_concealment_per_packet() -> None:
    arrivals = [a for a in sent(20) if not 5 <= a[1] <= 7]
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04)
    out = drive(buffer, arrivals)
    hidden = concealments(out)
    assert [c.timestamp for c in hidden] == [5 * FRAME, 6 * FRAME, 7 * FRAME]
    assert [c.fec_from for c in hidden] == [None, None, 8]
    assert buffer.stats.concealment_events == 1
    assert buffer.stats.concealed_samples == 3 * FRAME
    assert buffer.stats.silent_concealed_samples == 3 * FRAME - 1440  # after the 30 ms fade


def test_reordering_within_the_delay_is_not_concealed() -> None:
    arrivals = sent(30)
    # Packet 10 arrives 30 ms late (after 11), within the 40 ms delay.
    arrivals[10] = (arrivals[10][0] + 0.03, 10, 10 * FRAME)
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04, max_delay=0.04)
    out = drive(buffer, arrivals)
    assert frames(out) == list(range(30))
    assert concealments(out) == []
    assert buffer.stats.packets_late == 0


def test_a_packet_after_its_slot_is_dropped_and_counted() -> None:
    arrivals = sent(30)
    arrivals[10] = (arrivals[10][0] + 0.1, 10, 10 * FRAME)  # 100 ms late, delay 40 ms
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04, max_delay=0.04)
    out = drive(buffer, arrivals)
    assert frames(out) == [i for i in range(30) if i != 10]
    (concealment,) = concealments(out)
    assert concealment.timestamp == 10 * FRAME
    assert buffer.stats.packets_late == 1
    assert buffer.stats.packets_discarded == 1


def test_duplicates_are_counted_and_ignored() -> None:
    arrivals = sent(10)
    arrivals.append((arrivals[4][0] + 0.001, 4, 4 * FRAME))
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04)
    out = drive(buffer, arrivals)
    assert frames(out) == list(range(10))
    assert buffer.stats.packets_duplicated == 1


def test_sequence_and_timestamp_wrap_around() -> None:
    arrivals = sent(40, seq0=65_520, ts0=0xFFFF_FFFF - 10 * FRAME)
    del arrivals[20]  # lose the packet just after both counters wrapped
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, min_delay=0.04)
    out = drive(buffer, arrivals)
    expected = [(65_520 + i) & 0xFFFF for i in range(40) if i != 20]
    assert frames(out) == expected
    (concealment,) = concealments(out)
    assert concealment.timestamp == (0xFFFF_FFFF - 10 * FRAME + 20 * FRAME) & 0xFFFF_FFFF
    times = [item.playout_time for _, item in out]
    assert times == sorted(times)


def test_a_dtx_gap_is_not_concealed_and_moves_the_delay() -> None:
    rng = random.Random(3)
    talk = []
    for i in range(100):  # a jittery talkspurt, then 5 s of DTX, then a calm one
        talk.append((i * PERIOD + 0.05 + rng.uniform(0, 0.06), i, i * FRAME))
    gap = 250
    for i in range(100, 300):
        talk.append(((i + gap) * PERIOD + 0.05, i, (i + gap) * FRAME))
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    resume = (100 + gap) * PERIOD + 0.05
    out = drive(buffer, talk[:100], until=resume)
    last = out[-1][1]
    assert isinstance(last, PlayoutFrame) and last.frame == 99
    delay_before = last.playout_time - (99 * PERIOD + 0.05)
    assert buffer.pop(resume) == []  # (lets the target decay up to now)
    target = buffer.target_delay
    out += drive(buffer, talk[100:])
    # (Reordering in the first talkspurt is concealed while the target is being learnt.)
    assert [c for c in concealments(out) if c.timestamp >= 100 * FRAME] == []
    assert frames(out)[-200:] == list(range(100, 300))
    # Across the silence the delay moved to the (decayed) target, for free.
    first_after = next(
        item for _, item in out if isinstance(item, PlayoutFrame) and item.frame == 100
    )
    assert first_after.playout_time - resume == pytest.approx(target)
    assert target < delay_before / 2


def test_jitter_buffer_target_is_a_floor() -> None:
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    buffer.set_minimum_delay(0.2)
    out = drive(buffer, sent(20))
    first = out[0][1]
    assert isinstance(first, PlayoutFrame)
    assert first.playout_time == pytest.approx(0.05 + 0.2)
    assert buffer.target_delay == pytest.approx(0.2)
    assert buffer.minimum_delay == pytest.approx(0.0)
    stats = buffer.stats
    assert stats.jitter_buffer_target_delay / stats.jitter_buffer_emitted_count == pytest.approx(
        0.2
    )
    assert stats.jitter_buffer_minimum_delay == pytest.approx(0.0)
    # Above max_delay the floor is held at max_delay.
    buffer.set_minimum_delay(3.0)
    assert buffer.target_delay == pytest.approx(1.0)
    buffer.set_minimum_delay(None)
    assert buffer.target_delay == pytest.approx(0.0)
    with pytest.raises(ValueError):
        buffer.set_minimum_delay(-1.0)


def test_raising_the_floor_mid_talkspurt_expands_by_whole_frames() -> None:
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE)
    arrivals = sent(60)
    out = drive(buffer, arrivals[:20], until=arrivals[19][0])
    buffer.set_minimum_delay(0.06)
    rest = drive(buffer, arrivals[20:])
    expands = [c for c in concealments(rest) if c.reason == "expand"]
    assert len(expands) == 3
    assert buffer.stats.inserted_samples_for_deceleration == 3 * FRAME
    assert buffer.stats.concealed_samples == 0
    assert frames(out) + frames(rest) == list(range(60))
    assert buffer.applied_delay == pytest.approx(0.06)


def test_an_underrun_waits_and_resumes_later_without_loss() -> None:
    arrivals = sent(40)
    # A 200 ms delay spike from packet 10: everything queues up behind it, then arrives in a
    # burst, 1 ms apart.
    for i in range(10, 40):
        arrivals[i] = (max(arrivals[i][0], 10 * PERIOD + 0.25 + (i - 10) * 0.001), i, i * FRAME)
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, max_delay=0.3)
    out = drive(buffer, arrivals)
    assert frames(out) == list(range(40))
    assert buffer.stats.concealed_samples == 0
    assert buffer.stats.packets_late == 0
    times = [item.playout_time for _, item in out]
    assert times == sorted(times)


def test_memory_is_bounded_under_a_flood() -> None:
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, max_packets=50)
    for i in range(5000):
        buffer.put((i * FRAME) & 0xFFFF_FFFF, i & 0xFFFF, i, 1.0 + i * 1e-6)
        assert len(buffer) <= 50
    assert buffer.stats.packets_discarded == 4950
    out = buffer.pop(10.0)
    assert len([item for item in out if isinstance(item, PlayoutFrame)]) == 50
    assert len(buffer._window) <= 250


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        AudioJitterBuffer(0)
    with pytest.raises(ValueError):
        AudioJitterBuffer(RATE, min_delay=0.5, max_delay=0.1)
    with pytest.raises(ValueError):
        AudioJitterBuffer(RATE, max_packets=0)


def test_g711_frames_and_explicit_durations() -> None:
    buffer: AudioJitterBuffer[bytes] = AudioJitterBuffer(8_000, min_delay=0.02)
    for i in range(5):
        buffer.put(i * 160, i, bytes([i]), i * 0.02, samples=160)
    out = buffer.pop(1.0)
    assert [item.frame for item in out if isinstance(item, PlayoutFrame)] == [
        bytes([i]) for i in range(5)
    ]
    assert all(item.samples == 160 for item in out)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 0.5),  # extra delay
            st.integers(-3, 3),  # sequence perturbation
            st.sampled_from([0, 0, 0, 1, 2, 50, 100_000, 2**31]),  # timestamp jump
            st.booleans(),  # lost
        ),
        max_size=120,
    ),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF_FFFF),
    st.integers(1, 40),
    st.floats(0.0, 0.3),
)
def test_random_arrivals_never_raise_and_play_in_order(
    plan: list[tuple[float, int, int, bool]],
    seq0: int,
    ts0: int,
    max_packets: int,
    floor: float,
) -> None:
    buffer: AudioJitterBuffer[int] = AudioJitterBuffer(RATE, max_delay=0.5, max_packets=max_packets)
    buffer.set_minimum_delay(floor)
    arrivals = []
    ts = ts0
    for i, (extra, perturb, jump, lost) in enumerate(plan):
        ts = (ts + FRAME + jump * FRAME) & 0xFFFF_FFFF
        if not lost:
            arrivals.append((i * PERIOD + extra, (seq0 + i + perturb) & 0xFFFF, ts))
    out = drive(buffer, arrivals)
    times = [item.playout_time for _, item in out]
    assert times == sorted(times)
    pops = [now for now, _ in out]
    assert pops == sorted(pops)
    assert len(buffer) <= max_packets
    played = [
        (item.sequence_number, item.timestamp) for _, item in out if isinstance(item, PlayoutFrame)
    ]
    assert len(played) == len(set(played))
    for now, item in out:
        assert item.playout_time <= now + 1e-9
        assert item.samples > 0
