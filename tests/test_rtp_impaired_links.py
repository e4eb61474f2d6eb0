"""What the congestion control and loss repair cores do on impaired links (issue 13's bench_links
scenarios), in simulated time: no clock, no sockets.

* A short loss burst on a path that shows no queue (no delay growth) is a burst, not congestion:
  it does not count as loss and does not cut the estimate; the same run of losses after the
  delay grew does.
* A loss-based cut does not go below 0.85 x the acknowledged rate (what the delay-based back-off
  would take).
* NACK: the sender does not resend packets whose earlier resend is still standing in line
  behind the others of its burst.
"""

from __future__ import annotations

from collections.abc import Callable

from trio_rtc.rtp.gcc import SendSideBandwidthEstimator
from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.rtp.repair import PacketHistory, Retransmitter
from trio_rtc.rtp.rtcp_feedback import TwccFeedback

PACKET = 1200  # bytes on the wire
INTERVAL = 0.010  # one packet every 10 ms: 960 kbit/s
FEEDBACK = 0.050


def run_stream(
    bwe: SendSideBandwidthEstimator,
    seconds: float,
    *,
    lost: Callable[[float], bool] = lambda t: False,
    extra_delay: Callable[[float], float] = lambda t: 0.0,
    delay: float = 0.020,
) -> list[tuple[float, int]]:
    """A constant 960 kbit/s stream through a path with ``delay`` (+ ``extra_delay(t)``, a
    queue) that drops what ``lost(t)`` says; feedback every 50 ms, one way back with ``delay``.
    Returns (time, estimate) after each feedback."""
    sent: list[tuple[int, float]] = []
    pending: list[tuple[int, int | None]] = []  # (sequence, arrival µs) since the last feedback
    history: list[tuple[float, int]] = []
    now = 0.0
    next_feedback = FEEDBACK
    steps = int(seconds / INTERVAL)
    for step in range(steps):
        now = step * INTERVAL
        seq = bwe.on_packet_sent(PACKET, now)
        sent.append((seq, now))
        arrival = None if lost(now) else int((now + delay + extra_delay(now)) * 1e6)
        pending.append((seq, arrival))
        if now >= next_feedback:
            next_feedback += FEEDBACK
            # Report up to the last packet that arrived (TWCC feedback ends with one); the
            # losses after it go in the next feedback.
            last = max((i for i, (_, arrival) in enumerate(pending) if arrival is not None),
                       default=None)  # fmt: skip
            if last is not None:
                feedback = TwccFeedback.from_arrival_times(
                    1, 2, 0, pending[0][0], [arrival for _, arrival in pending[: last + 1]]
                )
                bwe.receive_feedback(feedback, now + delay)
                history.append((now, bwe.estimate))
                pending = pending[last + 1 :]
    return history


def test_short_loss_burst_without_delay_growth_is_not_congestion() -> None:
    bwe = SendSideBandwidthEstimator(start_bitrate=800_000, probing=False)

    def burst(t: float) -> bool:  # 120 ms lost every second: 12 % of the packets
        return t >= 1.0 and (t % 1.0) < 0.12

    history = run_stream(bwe, 6.0, lost=burst)
    # The bursts were seen, and not counted as loss: no loss-based limit, no cut.
    assert bwe.burst_losses > 40
    before = max(estimate for t, estimate in history if t < 1.0)
    assert min(estimate for t, estimate in history if t >= 1.0) >= before


def test_the_same_bursts_behind_a_growing_queue_are_loss() -> None:
    bwe = SendSideBandwidthEstimator(start_bitrate=800_000, probing=False)

    def burst(t: float) -> bool:
        return t >= 1.0 and (t % 1.0) < 0.12

    def queue(t: float) -> float:
        # A queue that builds up to 150 ms over the 300 ms before each burst (the bottleneck
        # overflowing) and is gone after it.
        phase = t % 1.0
        return 0.0 if t < 0.7 or 0.12 <= phase < 0.7 else 0.5 * ((phase - 0.7) % 1.0)

    run_stream(bwe, 6.0, lost=burst, extra_delay=queue)
    assert bwe.burst_losses == 0
    assert bwe._loss_fraction > 0.05


def test_loss_cut_stops_at_the_acknowledged_rate() -> None:
    # Every fifth packet lost: 20 % loss while the stream (960 kbit/s) is acknowledged at
    # 770 kbit/s: the cuts stop at 0.85 x that, instead of halving the estimate in 3 s.
    bwe = SendSideBandwidthEstimator(start_bitrate=1_000_000, probing=False)
    counter = iter(range(10**6))
    history = run_stream(bwe, 6.0, lost=lambda t: t >= 2.0 and next(counter) % 5 == 0)
    after = [estimate for t, estimate in history if t >= 4.0]
    assert min(after) >= 0.85 * 0.8 * 960_000 * 0.95  # acknowledged rate, give or take
    assert min(after) < 1_000_000  # it was cut


def media(seq: int) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, timestamp=0, ssrc=1234,
                     payload=b"x" * 1000)  # fmt: skip


def test_resend_not_repeated_while_its_burst_stands_in_line() -> None:
    retransmitter = Retransmitter(PacketHistory(), min_interval=0.01)
    retransmitter.set_rtt(0.002)
    for seq in range(125):  # one second of 1 Mbit/s media
        retransmitter.on_media_sent(media(seq), seq / 125)
    burst = list(range(100, 120))  # 20 packets lost in a row
    assert len(retransmitter.receive_nack(burst, 1.0)) == 20
    # 15 ms later the receiver asks for the ones that have not arrived yet: the first few
    # could have (they left first); the later ones are still behind them, not resent again.
    again = retransmitter.receive_nack(burst, 1.015)
    assert 0 < len(again) < 5
    assert retransmitter.counters.too_soon > 15
    # Once the whole burst could have drained, a repeated request is answered.
    assert len(retransmitter.receive_nack([119], 1.3)) == 1


def test_a_policer_is_congestion_though_it_shows_no_delay() -> None:
    # A token bucket that drops runs of 4 packets out of every 10 (40 %), with no queue and so
    # no delay growth: only the first bursts of each second are excused, the rest is loss.
    bwe = SendSideBandwidthEstimator(start_bitrate=800_000, probing=False)
    counter = iter(range(10**6))
    run_stream(bwe, 6.0, lost=lambda t: t >= 1.0 and next(counter) % 10 < 4)
    # 500 packets from 1 s on, 200 of them dropped: at most a quarter of what was sent is
    # excused (without the limit, all 200 were).
    assert bwe.burst_losses <= 0.25 * 500 + 12
    assert bwe.estimate < 600_000
