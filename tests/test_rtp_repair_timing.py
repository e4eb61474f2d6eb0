"""Loss repair on impaired links (issue 13's bench_links scenarios b and d, and peers that ask for
each lost packet once), in plain time values: no clock, no sockets.

* With ``wait_after_reordering``, a gap is asked for at once until the path reorders.
* The NACK generator repeats a request only after the time retransmissions have been taking
  (not at exactly one RTT, when the sender, which answers a repeat only an RTT after its
  resend, took it or dropped it by chance).
* With ``retry_needs_arrival`` it does not spend its retries while nothing arrives (a loss
  burst), and the first packet after the burst releases the repeats.
* The retransmitter resends an isolated loss twice when the peer asks for many packets, and
  not a burst, not under congestion, not beyond its rate limit.
* Against a receiver that asks once (aiortc), those copies shorten the time lost packets stay
  missing (its picture waits for each).
* The video frame hold outlasts the resends of a loss burst on a short path.
* A plain retransmission (no RTX: it keeps its transport-wide number) arriving after its
  packet was reported lost does not undo the loss for the loss-based control.
"""

from __future__ import annotations

import random

import pytest

from trio_rtc.rtp.codecs import frame_hold
from trio_rtc.rtp.gcc import SendSideBandwidthEstimator
from trio_rtc.rtp.nack import NackGenerator
from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.rtp.repair import REDUNDANCY_LOSS, PacketHistory, Retransmitter
from trio_rtc.rtp.rtcp_feedback import TwccFeedback

MEDIA_SSRC = 0x1234
RTX_SSRC = 0x5678
VP8, RTX = 96, 97


def media(seq: int) -> RtpPacket:
    return RtpPacket(VP8, seq & 0xFFFF, 3000 * (seq // 4), MEDIA_SSRC, b"x" * 1000)


# --- the repeat waits for the measured repair delay -----------------------------------------


def test_repeat_waits_for_the_repair_delay_measured() -> None:
    gen = NackGenerator(reorder_delay=0.0, rtt=0.060)
    assert gen.repair_delay is None and gen.retry_interval == pytest.approx(0.060)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.0)
    assert gen.nacks_to_send(0.0) == [1]
    gen.receive_packet(1, 0.066)  # the resend came 6 ms after one RTT (turnaround, pacer)
    assert gen.repair_delay == pytest.approx(0.066)
    assert gen.retry_interval == pytest.approx(0.066 * 1.1 + 0.005)

    gen.receive_packet(4, 1.0)
    assert gen.nacks_to_send(1.0) == [3]
    assert gen.nacks_to_send(1.061) == []  # one RTT: the resend may still be on its way
    assert gen.get_timer() == pytest.approx(1.0 + 0.066 * 1.1 + 0.005)
    assert gen.nacks_to_send(1.078) == [3]


def test_only_packets_asked_for_once_are_measured() -> None:
    gen = NackGenerator(reorder_delay=0.0, rtt=0.010)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.0)
    assert gen.nacks_to_send(0.0) == [1]
    assert gen.nacks_to_send(0.011) == [1]  # asked twice: which request did it answer?
    gen.receive_packet(1, 0.015)
    assert gen.repair_delay is None


def test_a_shorter_repair_delay_leaves_the_rtt_in_charge() -> None:
    gen = NackGenerator(reorder_delay=0.0, rtt=0.100)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.0)
    gen.nacks_to_send(0.0)
    gen.receive_packet(1, 0.02)  # a reordered packet, not a resend
    assert gen.retry_interval == pytest.approx(0.100)


def test_the_sender_answers_the_repeat_when_its_resend_was_lost() -> None:
    """Receiver and sender 30 ms apart each way; the sender turns a NACK around in 4 ms. The
    first resend is lost: the repeat reaches the sender more than one RTT after that resend,
    so it is answered, and the packet arrives one repair delay after the repeat."""
    one_way, turnaround = 0.030, 0.004
    sender = Retransmitter(PacketHistory())
    sender.set_rtt(2 * one_way)
    receiver = NackGenerator(reorder_delay=0.0, rtt=2 * one_way)
    for seq in range(40):
        sender.on_media_sent(media(seq), seq * 0.005)
    # A first loss, repaired: the receiver learns how long a repair takes.
    receiver.receive_packet(0, 0.03)
    receiver.receive_packet(2, 0.04)
    (asked,) = receiver.nacks_to_send(0.04)
    assert [r.original_sequence_number for r in sender.receive_nack([asked], 0.07)] == [1]
    receiver.receive_packet(1, 0.07 + turnaround + one_way)
    # A second loss whose resend is lost on the way.
    for seq in range(3, 21):
        receiver.receive_packet(seq, 0.2)
    receiver.receive_packet(22, 0.21)
    (asked,) = receiver.nacks_to_send(0.21)
    assert len(sender.receive_nack([asked], 0.21 + one_way)) == 1  # lost
    repeat_at = receiver.get_timer()
    assert repeat_at is not None and repeat_at > 0.21 + 2 * one_way + turnaround
    assert receiver.nacks_to_send(repeat_at) == [21]
    again = sender.receive_nack([21], repeat_at + one_way)
    assert [r.original_sequence_number for r in again] == [21]
    assert sender.counters.too_soon == 0


# --- no reorder wait on a path that does not reorder ----------------------------------------


def test_no_reorder_wait_until_the_path_reorders() -> None:
    gen = NackGenerator(wait_after_reordering=True, reorder_delay=0.010)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.001)
    assert gen.nacks_to_send(0.001) == [1]  # at once: nothing was ever reordered
    gen.receive_packet(4, 0.002)
    gen.receive_packet(3, 0.003)  # taken as missing, then arrived unasked: reordering
    assert gen.counters.late_arrivals == 1
    gen.receive_packet(6, 0.004)
    assert gen.nacks_to_send(0.004) == []
    assert gen.nacks_to_send(0.014) == [5]  # from now on the reorder wait applies


# --- no retries spent while nothing arrives -------------------------------------------------


def test_retries_wait_for_an_arrival_during_a_burst() -> None:
    gen = NackGenerator(retry_needs_arrival=True, reorder_delay=0.0, rtt=0.001, max_retries=3)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(5, 0.0)
    assert gen.nacks_to_send(0.0) == [1, 2, 3, 4]
    # 150 ms of silence: the path is dark, a repeat would only be resent into it.
    for step in range(1, 150):
        assert gen.nacks_to_send(step * 0.001) == []
    assert gen.get_timer() == pytest.approx(1.0)  # only the age limit is pending
    assert gen.missing == [1, 2, 3, 4] and gen.counters.given_up == 0
    gen.receive_packet(6, 0.150)  # the burst is over
    assert gen.get_timer() == pytest.approx(0.010)  # every repeat is due
    assert gen.nacks_to_send(0.150) == [1, 2, 3, 4]


def test_without_retry_needs_arrival_the_retries_run_out_in_the_burst() -> None:
    gen = NackGenerator(reorder_delay=0.0, rtt=0.001, max_retries=3)
    gen.receive_packet(0, 0.0)
    gen.receive_packet(2, 0.0)
    for step in range(150):
        gen.nacks_to_send(step * 0.001)
    assert gen.missing == [] and gen.counters.given_up == 1


# --- redundant resends --------------------------------------------------------------------


def sent_stream(retransmitter: Retransmitter, count: int, start: float = 0.0) -> float:
    for seq in range(count):
        retransmitter.on_media_sent(media(seq), start + seq * 0.005)
    return start + count * 0.005


def originals(out: list) -> list[int]:  # type: ignore[type-arg]
    return [r.original_sequence_number for r in out]


def test_isolated_losses_are_resent_twice_at_a_high_loss_rate() -> None:
    retransmitter = Retransmitter(PacketHistory(), redundancy_loss=REDUNDANCY_LOSS)
    now = sent_stream(retransmitter, 200)
    # 5 of 200 asked for (2.5 %): the isolated ones twice, after the answer's other resends.
    out = retransmitter.receive_nack([10, 50, 51, 52, 90], now)
    assert originals(out) == [10, 50, 51, 52, 90, 10, 90]
    assert retransmitter.loss_fraction == pytest.approx(5 / 200)
    assert retransmitter.counters.redundant_packets_sent == 2
    assert retransmitter.counters.retransmitted_packets_sent == 7
    # The plain copy is the very same packet (SRTP protects the same bytes again).
    assert out[5].packet is out[0].packet and not out[5].rtx


def test_rtx_copies_are_packets_of_their_own() -> None:
    retransmitter = Retransmitter(
        PacketHistory(),
        rtx_ssrc=RTX_SSRC,
        rtx_payload_types={VP8: RTX},
        rtx_sequence_start=100,
        redundancy_loss=REDUNDANCY_LOSS,
    )
    now = sent_stream(retransmitter, 100)
    out = retransmitter.receive_nack([10, 30, 60], now)
    assert originals(out) == [10, 30, 60, 10, 30, 60]
    assert [r.packet.sequence_number for r in out] == list(range(100, 106))
    assert all(r.rtx and r.packet.payload[2:] == media(0).payload for r in out)


def test_no_copies_at_low_loss_in_bursts_under_congestion_or_by_default() -> None:
    low = Retransmitter(PacketHistory(), redundancy_loss=REDUNDANCY_LOSS)
    now = sent_stream(low, 200)
    assert originals(low.receive_nack([10], now)) == [10]  # 0.5 %
    assert originals(low.receive_nack([100, 101, 102, 103], now)) == [100, 101, 102, 103]

    congested = Retransmitter(PacketHistory(), redundancy_loss=REDUNDANCY_LOSS)
    now = sent_stream(congested, 100)
    congested.congested = True
    assert originals(congested.receive_nack([10, 30, 60], now)) == [10, 30, 60]

    default = Retransmitter(PacketHistory())
    now = sent_stream(default, 100)
    assert originals(default.receive_nack([10, 30, 60], now)) == [10, 30, 60]


def test_copies_come_from_what_the_rate_limit_leaves() -> None:
    retransmitter = Retransmitter(PacketHistory(), redundancy_loss=REDUNDANCY_LOSS)
    now = sent_stream(retransmitter, 100)
    retransmitter.set_max_rate(8 * 1012 * 4)  # four resends per second
    out = retransmitter.receive_nack([10, 30, 60], now)
    assert originals(out) == [10, 30, 60, 10]
    assert retransmitter.counters.rate_limited == 0


# --- a receiver that asks once -------------------------------------------------------------


def once_asking_peer(redundancy: float | None, seed: int) -> float:
    """aiortc's receiver at 10 % random loss each way: it NACKs the missing packets whenever a
    new gap opens (all of them, within 128 packets) and never on a timer, and its picture
    waits at the oldest missing packet. 2,000 packets of a 300 kbit/s stream, 40 packets a
    second; returns the seconds the lost packets stayed missing, added up."""
    rng = random.Random(seed)
    loss = 0.10
    sender = Retransmitter(PacketHistory(), redundancy_loss=redundancy)
    sender.set_rtt(0.002)
    lost_at: dict[int, float] = {}
    missing: set[int] = set()
    waited = 0.0
    highest = -1
    for seq in range(2000):
        now = seq / 40
        sender.on_media_sent(media(seq), now)
        if rng.random() < loss:
            lost_at[seq] = now
            continue
        new_gap = seq > highest + 1
        missing.update(range(highest + 1, seq))
        highest = seq
        missing = {s for s in missing if s >= seq - 128}
        if new_gap and rng.random() >= loss:  # the NACK crosses the lossy path
            for resend in sender.receive_nack(sorted(missing), now + 0.001):
                original = resend.original_sequence_number
                if original in missing and rng.random() >= loss:
                    missing.discard(original)
                    waited += now + 0.002 - lost_at[original]
    return waited + sum(2000 / 40 - lost_at[seq] for seq in missing)


def test_copies_shorten_the_stalls_of_a_peer_that_asks_once() -> None:
    without = sum(once_asking_peer(None, seed) for seed in range(5))
    with_copies = sum(once_asking_peer(REDUNDANCY_LOSS, seed) for seed in range(5))
    assert with_copies < 0.8 * without, (with_copies, without)


def test_the_history_answers_a_request_seconds_later() -> None:
    """A once-asking peer repeats a request only with its next gap, at 40 packets a second
    possibly two seconds later: the history still holds the packet."""
    history = PacketHistory()
    for seq in range(100):
        history.put(media(seq), seq / 40)
    assert history.get(0) is not None


# --- the frame hold ------------------------------------------------------------------------


def test_frame_hold_outlasts_a_burst_on_a_short_path() -> None:
    assert frame_hold(0.001) == pytest.approx(0.2)
    assert frame_hold(0.060) == pytest.approx(0.21)
    assert frame_hold(None) == pytest.approx(0.33)
    assert frame_hold(1.0) == pytest.approx(0.5)


# --- plain retransmissions and the loss-based control ---------------------------------------


def loss_seen(resent: bool) -> float:
    """100 packets, every tenth reported lost; each is then resent unchanged (no RTX: the same
    transport-wide number) and its arrival reported in the next feedback."""
    bwe = SendSideBandwidthEstimator(start_bitrate=800_000, probing=False)
    for step in range(100):
        bwe.on_packet_sent(1200, step * 0.01)
    arrivals: list[int | None] = [
        None if seq % 10 == 5 else 20_000 + seq * 10_000 for seq in range(100)
    ]
    bwe.receive_feedback(TwccFeedback.from_arrival_times(1, 2, 0, 0, arrivals), 1.05)
    late = [seq for seq in range(100) if arrivals[seq] is None]
    if resent:
        for seq in late:
            bwe.on_packet_resent(seq)
    repaired = [1_100_000 + seq * 100 if seq in late else None for seq in range(100)]
    bwe.receive_feedback(TwccFeedback.from_arrival_times(1, 2, 1, 0, repaired), 1.15)
    event = bwe.next_event()
    return event.loss_fraction if event is not None else 0.0


def test_a_plain_retransmission_does_not_undo_the_loss() -> None:
    assert loss_seen(resent=True) == pytest.approx(0.10)
    assert loss_seen(resent=False) == pytest.approx(0.0)  # a late original: not lost after all
