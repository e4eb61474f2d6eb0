"""Per-stream statistics (trio_rtc.rtp.stats): RFC 3550 A.1 probation and wrap, A.3 loss, A.8
jitter against a direct implementation, SR/RR round trips giving the RTT, lip-sync mapping."""

from __future__ import annotations

import random

import pytest

from trio_rtc.rtp.ntp import NTP_UNIX_OFFSET, middle32, seconds_to_ntp
from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.rtp.rtcp import ReportBlock, SenderReport, parse_rtcp_untrusted
from trio_rtc.rtp.stats import (
    MAX_DROPOUT,
    ReceiveStreamStatistics,
    SendStreamStatistics,
)

SSRC = 0x1234_5678


def _packet(seq: int, timestamp: int = 0, payload: bytes = b"x" * 100) -> RtpPacket:
    return RtpPacket(96, seq & 0xFFFF, timestamp & 0xFFFF_FFFF, SSRC, payload)


def _feed(stats: ReceiveStreamStatistics, seqs: list[int], start: float = 0.0) -> list[bool]:
    return [stats.on_packet(_packet(s), start + i * 0.02) for i, s in enumerate(seqs)]


# --- A.1: probation, wrap, restarts ---------------------------------------------------------


def test_a_new_source_is_on_probation_until_two_packets_in_sequence() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    assert stats.on_packet(_packet(1000), 0.0) is False
    assert not stats.valid
    assert stats.on_packet(_packet(1001), 0.02) is True
    assert stats.valid
    assert stats.packets_received == 1  # A.1 counts from the packet that ends probation
    assert stats.packets_discarded == 1
    assert stats.packets_expected == 1 and stats.packets_lost == 0


def test_probation_restarts_on_a_gap() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    assert _feed(stats, [10, 12, 13, 14]) == [False, False, True, True]
    assert stats.packets_received == 2
    assert stats.extended_highest_sequence == 14


def test_sequence_wrap_counts_a_cycle() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    assert all(_feed(stats, [65533, 65534, 65535, 0, 1, 2])[1:])
    assert stats.extended_highest_sequence == (1 << 16) | 2
    assert stats.packets_expected == 5 and stats.packets_received == 5
    block = stats.report_block(1.0)
    assert block.highest_sequence == 65538 and block.packets_lost == 0


def test_a_single_far_jump_is_discarded_and_two_restart_the_stream() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    _feed(stats, [100, 101, 102])
    far = 102 + MAX_DROPOUT + 10
    assert stats.on_packet(_packet(far), 1.0) is False  # one outlier
    assert stats.on_packet(_packet(103), 1.02) is True
    assert stats.on_packet(_packet(far + 20), 1.04) is False
    assert stats.on_packet(_packet(far + 21), 1.06) is True  # confirmed: the sender restarted
    assert stats.extended_highest_sequence == far + 21
    assert stats.packets_received == 1 and stats.packets_expected == 1


def test_a_packet_slightly_late_is_counted_not_a_restart() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    assert _feed(stats, [5, 6, 7, 9, 8, 10])[1:] == [True] * 5
    assert stats.packets_lost == 0 and stats.duplicates == 0


# --- A.3: cumulative and fraction lost ------------------------------------------------------


def test_loss_fraction_of_a_hand_made_sequence_with_loss_and_duplicates() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    # 100 is probation; counted from 101. 104 and 107 are lost, 106 arrives twice.
    _feed(stats, [100, 101, 102, 103, 105, 106, 106, 108, 109])
    assert stats.packets_expected == 9  # 101..109
    assert stats.packets_received == 8  # the duplicate counts (RFC 3550 §6.4.1)
    assert stats.duplicates == 1
    block = stats.report_block(1.0)
    assert block.packets_lost == 1
    assert block.fraction_lost == (1 << 8) // 9 == 28
    # Next interval: 110..119 with 112 lost.
    _feed(stats, [s for s in range(110, 120) if s != 112], start=2.0)
    block = stats.report_block(3.0)
    assert block.packets_lost == 2
    assert block.fraction_lost == (1 << 8) // 10
    # An interval without loss reports 0 however lossy the past.
    _feed(stats, list(range(120, 130)), start=4.0)
    assert stats.report_block(5.0).fraction_lost == 0


def test_duplicates_can_drive_cumulative_loss_negative() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    _feed(stats, [1, 2, 3, 3, 3, 4])
    assert stats.packets_lost == -2 and stats.duplicates == 2
    block = stats.report_block(1.0)
    assert block.packets_lost == -2 and block.fraction_lost == 0
    # The wire keeps the sign (24-bit two's complement).
    sr = SenderReport(1, 0, 0, 0, 0, [block])
    (parsed,) = parse_rtcp_untrusted(sr.serialize())
    assert isinstance(parsed, SenderReport) and parsed.reports[0].packets_lost == -2


def test_a_reordered_packet_is_not_a_duplicate() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    _feed(stats, [1, 2, 4, 3, 3])
    assert stats.duplicates == 1 and stats.packets_lost == -1


def test_byte_counts() -> None:
    stats = ReceiveStreamStatistics(SSRC, 90000)
    stats.on_packet(_packet(1, payload=b"a" * 50), 0.0, size=62)
    stats.on_packet(_packet(2, payload=b"a" * 50), 0.0, size=62)
    assert stats.bytes_received == 50 and stats.header_bytes_received == 12


# --- A.8: interarrival jitter ---------------------------------------------------------------


def _reference_jitter(arrivals: list[float], timestamps: list[int], rate: int) -> float:
    """RFC 3550 A.8 written out with unwrapped timestamps and exact arrival times."""
    jitter = 0.0
    previous_transit: float | None = None
    for arrival, timestamp in zip(arrivals, timestamps, strict=True):
        transit = arrival * rate - timestamp
        if previous_transit is not None:
            d = abs(transit - previous_transit)
            jitter += (1.0 / 16.0) * (d - jitter)
        previous_transit = transit
    return jitter


def test_jitter_matches_a_direct_implementation_of_a8_across_the_timestamp_wrap() -> None:
    rng = random.Random(7)
    rate = 90000
    start_ts = (1 << 32) - 3000 * 50  # wraps after 50 frames
    timestamps = [start_ts + 3000 * i for i in range(400)]
    arrivals = [1000.0 + i / 30 + rng.uniform(0, 0.015) for i in range(400)]
    stats = ReceiveStreamStatistics(SSRC, rate)
    for i, (arrival, ts) in enumerate(zip(arrivals, timestamps, strict=True)):
        stats.on_packet(_packet(i, ts), arrival)
    # The first packet is probation (A.1), so A.8 starts with the second.
    expected = _reference_jitter(arrivals[1:], timestamps[1:], rate)
    assert stats.jitter_estimate == pytest.approx(expected, rel=1e-9)
    assert stats.jitter == int(expected)
    assert stats.report_block(2000.0).jitter == int(expected)


def test_jitter_is_zero_for_a_perfectly_paced_stream_and_ignores_duplicates() -> None:
    stats = ReceiveStreamStatistics(SSRC, 48000)
    for i in range(50):
        stats.on_packet(_packet(i, 960 * i), i * 0.02)
    stats.on_packet(_packet(49, 960 * 49), 5.0)  # a late copy
    assert stats.jitter_estimate == pytest.approx(0.0, abs=1e-6)
    assert stats.duplicates == 1


# --- SR / RR round trip, RTT and lip-sync ------------------------------------------------


def test_sr_rr_round_trip_gives_the_rtt() -> None:
    one_way = 0.025
    sender_clock, receiver_clock = 10.0, 500.0  # unrelated monotonic clocks
    wallclock = 1_700_000_000.0
    sender = SendStreamStatistics(SSRC, 90000)
    receiver = ReceiveStreamStatistics(SSRC, 90000)
    for i in range(20):
        packet = _packet(i, 3000 * i)
        sender.on_packet_sent(packet, sender_clock + i / 30)
        receiver.on_packet(packet, receiver_clock + i / 30 + one_way)
    t_sr = sender_clock + 1.0
    sr = sender.sender_report(t_sr, wallclock + 1.0)
    assert sr.packet_count == 20 and sr.octet_count == 2000
    (sr,) = parse_rtcp_untrusted(sr.serialize())
    assert isinstance(sr, SenderReport)
    receiver.on_sender_report(sr, receiver_clock + 1.0 + one_way)
    held = 0.3137
    block = receiver.report_block(receiver_clock + 1.0 + one_way + held)
    assert block.lsr == middle32(sr.ntp_timestamp)
    assert block.dlsr == round(held * 65536)
    rtt = sender.on_report_block(block, t_sr + one_way + held + one_way)
    assert rtt is not None and abs(rtt - 2 * one_way) <= 1 / 65536
    assert sender.round_trip_time == rtt and sender.round_trip_time_measurements == 1


def test_rtt_is_not_measured_from_unknown_or_absent_lsr() -> None:
    sender = SendStreamStatistics(SSRC, 90000)
    sender.on_packet_sent(_packet(1), 0.0)
    sender.sender_report(1.0, 1_700_000_000.0)
    assert sender.on_report_block(ReportBlock(SSRC, lsr=0, dlsr=0), 1.1) is None
    assert sender.on_report_block(ReportBlock(SSRC, lsr=12345, dlsr=0), 1.1) is None
    assert sender.round_trip_time is None
    with pytest.raises(ValueError, match="SSRC"):
        sender.on_report_block(ReportBlock(SSRC + 1), 1.1)


def test_report_block_before_any_sr_has_no_lsr() -> None:
    receiver = ReceiveStreamStatistics(SSRC, 90000)
    _feed(receiver, [1, 2, 3])
    block = receiver.report_block(1.0)
    assert block.lsr == 0 and block.dlsr == 0


def test_sr_rtp_timestamp_is_extrapolated_to_the_report_time() -> None:
    sender = SendStreamStatistics(SSRC, 90000)
    sender.on_packet_sent(_packet(1, (1 << 32) - 1000), 1.0)
    sender.on_packet_sent(_packet(2, (1 << 32) - 1000), 1.004)  # same frame, paced later
    sr = sender.sender_report(1.5, 1_700_000_000.0)
    assert sr.rtp_timestamp == ((1 << 32) - 1000 + 45000) & 0xFFFF_FFFF
    with pytest.raises(ValueError, match="no RTP packet"):
        SendStreamStatistics(1, 90000).sender_report(0.0, 0.0)


def test_lip_sync_maps_rtp_timestamps_to_the_senders_wallclock() -> None:
    receiver = ReceiveStreamStatistics(SSRC, 48000)
    assert receiver.rtp_to_sender_seconds(0) is None
    wallclock = 1_700_000_123.25
    sr = SenderReport(SSRC, seconds_to_ntp(wallclock), (1 << 32) - 24000, 0, 0)
    receiver.on_sender_report(sr, 5.0)
    assert receiver.rtp_to_sender_seconds(24000) == pytest.approx(wallclock + 1.0, abs=1e-6)
    assert receiver.rtp_to_sender_seconds((1 << 32) - 48000) == pytest.approx(
        wallclock - 0.5, abs=1e-6
    )
    ntp = receiver.rtp_to_sender_ntp((1 << 32) - 24000)
    assert ntp == sr.ntp_timestamp
    assert NTP_UNIX_OFFSET > 0


def test_an_older_sr_does_not_replace_a_newer_one() -> None:
    receiver = ReceiveStreamStatistics(SSRC, 90000)
    new = SenderReport(SSRC, seconds_to_ntp(2000.0), 0, 0, 0)
    old = SenderReport(SSRC, seconds_to_ntp(1999.0), 0, 0, 0)
    receiver.on_sender_report(new, 1.0)
    receiver.on_sender_report(old, 1.1)
    assert receiver.report_block(1.5).lsr == middle32(new.ntp_timestamp)
    assert receiver.last_sender_report_at == 1.0


def test_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReceiveStreamStatistics(SSRC, 0)
    with pytest.raises(ValueError):
        SendStreamStatistics(SSRC, -1)
