"""The pure transport-wide congestion control recorder (trio_rtc.rtp.twcc)."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.rtcp import parse_rtcp_untrusted, serialize_compound
from trio_rtc.rtp.rtcp_feedback import TwccFeedback
from trio_rtc.rtp.twcc import TwccRecorder

SENDER = 0x11111111
MEDIA = 0x22222222


def round_trip(feedback: list[TwccFeedback]) -> list[TwccFeedback]:
    parsed = [parse_rtcp_untrusted(serialize_compound([f])) for f in feedback]
    out: list[TwccFeedback] = []
    for packets in parsed:
        assert len(packets) == 1
        assert isinstance(packets[0], TwccFeedback)
        out.append(packets[0])
    return out


def reported(feedback: list[TwccFeedback]) -> list[tuple[int, int | None]]:
    """(sequence, arrival µs relative to the first feedback's reference time or None)."""
    out: list[tuple[int, int | None]] = []
    for f in round_trip(feedback):
        out.extend(f.arrival_times_us())
    return out


def test_nothing_recorded_nothing_due() -> None:
    recorder = TwccRecorder(SENDER)
    assert recorder.next_feedback_at is None
    assert recorder.feedback(1_000_000) == []


def test_round_trip_and_interval() -> None:
    recorder = TwccRecorder(SENDER, interval_us=50_000)
    base = 3_000_000
    for i in range(10):
        recorder.on_packet(100 + i, base + i * 1000, MEDIA)
    recorder.on_packet(200, base + 20_000, MEDIA + 1)  # another SSRC: media SSRC stays
    assert recorder.next_feedback_at == base + 50_000
    feedback = recorder.feedback(base + 50_000)
    assert len(feedback) == 1
    (parsed,) = round_trip(feedback)
    assert (parsed.sender_ssrc, parsed.media_ssrc, parsed.feedback_count) == (SENDER, MEDIA, 0)
    assert parsed.base_sequence == 100
    times = dict(parsed.arrival_times_us())
    assert len(times) == 101
    for i in range(10):
        assert times[100 + i] == pytest.approx(base + i * 1000, abs=125)
    assert times[200] == pytest.approx(base + 20_000, abs=125)
    assert all(times[s] is None for s in range(110, 200))  # gaps are reported lost
    # Nothing new: nothing due; the next feedback counts on.
    assert recorder.next_feedback_at is None
    assert recorder.feedback(base + 100_000) == []
    recorder.on_packet(201, base + 110_000, MEDIA)
    assert recorder.next_feedback_at == base + 100_000
    (second,) = round_trip(recorder.feedback(base + 110_000))
    assert second.feedback_count == 1
    assert second.arrival_times_us() == [(201, pytest.approx(base + 110_000, abs=125))]


def feed(
    recorder: TwccRecorder, start: int, count: int, at_us: int, every_us: int, size: int
) -> int:
    for i in range(count):
        recorder.on_packet(start + i, at_us + i * every_us, MEDIA, size)
    return start + count


@pytest.mark.parametrize(
    ("size", "every_us", "interval_us"),
    [
        (140, 20_000, 194_285),  # Opus: 56 kbit/s; 68 bytes are 5 % of it every 194 ms
        (30, 20_000, 250_000),  # 12 kbit/s: at most 250 ms between feedbacks
        (1200, 10_000, 50_000),  # video, 960 kbit/s: at least 50 ms between them
    ],
)
def test_interval_follows_the_reported_bitrate(size: int, every_us: int, interval_us: int) -> None:
    recorder = TwccRecorder(SENDER)
    assert recorder.interval_us == 50_000
    seq = feed(recorder, 0, 5, 0, every_us, size)
    assert len(recorder.feedback(50_000)) == 1  # the first: no rate known yet
    assert recorder.interval_us == 50_000
    # 1 s of the stream, reported at once: its bitrate sets the interval.
    seq = feed(recorder, seq, 1_000_000 // every_us, 50_000, every_us, size)
    assert len(recorder.feedback(1_050_000)) == 1
    assert recorder.interval_us == pytest.approx(interval_us, abs=2)
    assert recorder.next_feedback_at is None
    recorder.on_packet(seq, 1_060_000, MEDIA, size)
    assert recorder.next_feedback_at == 1_050_000 + recorder.interval_us


def test_interval_without_sizes_stays_at_its_minimum() -> None:
    recorder = TwccRecorder(SENDER, interval_us=40_000)
    seq = feed(recorder, 0, 50, 0, 20_000, 0)
    recorder.feedback(1_000_000)
    feed(recorder, seq, 50, 1_000_000, 20_000, 0)
    recorder.feedback(2_000_000)
    assert recorder.interval_us == 40_000


def test_sequence_wrap() -> None:
    recorder = TwccRecorder(SENDER)
    sequences = [65533, 65534, 0, 1, 2]  # 65535 lost across the wrap
    for k, seq in enumerate(sequences):
        recorder.on_packet(seq, 10_000 + 500 * k, MEDIA)
    (parsed,) = round_trip(recorder.feedback(100_000))
    assert parsed.base_sequence == 65533
    assert [s for s, _ in parsed.arrival_times_us()] == [65533, 65534, 65535, 0, 1, 2]
    times = dict(parsed.arrival_times_us())
    assert times[65535] is None
    assert times[0] == pytest.approx(11_000, abs=125)
    assert times[2] == pytest.approx(12_000, abs=125)


def test_feedback_count_wraps_at_8_bits() -> None:
    recorder = TwccRecorder(SENDER)
    counts = []
    for i in range(300):
        recorder.on_packet(i, i * 1000, MEDIA)
        (f,) = recorder.feedback(i * 1000)
        counts.append(f.feedback_count)
    assert counts == [i & 0xFF for i in range(300)]


def test_reordered_packet_is_reported_again_as_received() -> None:
    recorder = TwccRecorder(SENDER)
    for seq in (10, 11, 13):
        recorder.on_packet(seq, 1000 * seq, MEDIA)
    first = dict(reported(recorder.feedback(20_000)))
    assert first[12] is None
    recorder.on_packet(12, 21_000, MEDIA)  # late
    (parsed,) = round_trip(recorder.feedback(30_000))
    assert parsed.base_sequence == 12
    assert dict(parsed.arrival_times_us())[12] == pytest.approx(21_000, abs=125)


def test_duplicates_and_too_old_are_dropped() -> None:
    recorder = TwccRecorder(SENDER, max_packets=100)
    recorder.on_packet(500, 1000, MEDIA)
    recorder.on_packet(500, 2000, MEDIA)
    recorder.on_packet(350, 3000, MEDIA)  # more than max_packets behind
    assert recorder.packets_dropped == 2
    assert len(recorder) == 1


def test_bounded_by_count() -> None:
    recorder = TwccRecorder(SENDER, max_packets=1000, max_per_feedback=1000)
    for i in range(5000):
        recorder.on_packet(i & 0xFFFF, 100 * i, MEDIA)  # 500 ms: age bound not reached
        assert len(recorder) <= 1000
    feedback = recorder.feedback(600_000)
    sequences = [s for s, _ in reported(feedback)]
    assert sequences == list(range(4000, 5000))


def test_bounded_by_age() -> None:
    recorder = TwccRecorder(SENDER, max_age_us=1_000_000)
    for i in range(3000):
        recorder.on_packet(i, 1000 * i, MEDIA)  # one per ms for 3 s, never fed back
    assert len(recorder) <= 1001
    sequences = [s for s, _ in reported(recorder.feedback(3_000_000))]
    assert sequences[0] >= 1999 and sequences[-1] == 2999


def test_split_into_feedbacks_of_at_most_max_per_feedback() -> None:
    recorder = TwccRecorder(SENDER)
    for i in range(2500):
        if i % 7:  # some loss
            recorder.on_packet(i, 40 * i, MEDIA)
    feedback = round_trip(recorder.feedback(200_000))
    assert len(feedback) == 3
    assert all(len(f.packets) <= 1000 for f in feedback)
    assert [f.feedback_count for f in feedback] == [0, 1, 2]
    everything = [p for f in feedback for p in f.packets]
    # Contiguous, none skipped; the last, 2499, was lost (a feedback ends with an arrival).
    assert [p.sequence for p in everything] == list(range(1, 2499))
    assert [p.received for p in everything] == [bool(i % 7) for i in range(1, 2499)]
    for f in feedback:
        for seq, at in f.arrival_times_us():
            if at is not None:
                assert at == pytest.approx(40 * seq, abs=125)


def test_losses_right_after_a_feedback_are_reported() -> None:
    """Packets lost just after one feedback went out: the next feedback starts at the first
    of them (reported lost), not at the first packet that arrived after it."""
    recorder = TwccRecorder(SENDER)
    for seq in range(10):
        recorder.on_packet(seq, 1000 * seq, MEDIA)
    assert [s for s, _ in reported(recorder.feedback(20_000))] == list(range(10))
    for seq in range(12, 16):  # 10 and 11 are lost
        recorder.on_packet(seq, 1000 * seq + 20_000, MEDIA)
    (parsed,) = round_trip(recorder.feedback(70_000))
    assert parsed.base_sequence == 10
    times = dict(parsed.arrival_times_us())
    assert times[10] is None and times[11] is None
    assert all(times[s] is not None for s in range(12, 16))


def test_long_sequence_gap_is_not_a_feedback_of_losses() -> None:
    recorder = TwccRecorder(SENDER)
    recorder.on_packet(0, 1000, MEDIA)
    recorder.on_packet(5000, 2000, MEDIA)  # 4999 missing: more than one feedback's worth
    feedback = round_trip(recorder.feedback(50_000))
    assert all(any(p.received for p in f.packets) for f in feedback)
    received = [s for f in feedback for s, at in f.arrival_times_us() if at is not None]
    assert received == [0, 5000]
    assert all(len(f.packets) <= 1000 for f in feedback)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        TwccRecorder(SENDER, max_packets=0)
    recorder = TwccRecorder(SENDER)
    with pytest.raises(ValueError):
        recorder.on_packet(1, -1, MEDIA)
    with pytest.raises(ValueError):
        recorder.on_packet(70_000, 1, MEDIA)
