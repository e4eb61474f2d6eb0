"""Send-side bandwidth estimation (trio_rtc.rtp.gcc) with the pacer, over a simulated link.

The link is a FIFO bottleneck (capacity in bit/s, tail drop beyond 500 ms of queue), a fixed
one-way delay and seeded random loss. The receiver is the real :class:`TwccRecorder`; its
feedback goes through serialize/parse back to the estimator after the same delay. The
"encoder" makes 30 frames/s at the current estimate, and the pacer spreads them.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import attrs
import pytest

from trio_rtc.rtp.gcc import BandwidthUsage, SendSideBandwidthEstimator
from trio_rtc.rtp.pacer import Pacer, PacketKind
from trio_rtc.rtp.rtcp import parse_rtcp_untrusted, serialize_compound
from trio_rtc.rtp.rtcp_feedback import TwccFeedback
from trio_rtc.rtp.twcc import TwccRecorder

OVERHEAD = 40  # IP/UDP/SRTP bytes on top of the paced RTP packet


@attrs.define
class Sample:
    time: float
    estimate: int
    delivered_bps: float  # over the last second
    queue_delay: float


class Link:
    def __init__(
        self, capacity: Callable[[float], float], delay: float, loss: float, seed: int
    ) -> None:
        self.capacity = capacity
        self.delay = delay
        self.loss = loss
        self.rng = random.Random(seed)
        self.max_queue = 0.5
        self.busy_until = 0.0
        self.in_flight: deque[tuple[float, int, int]] = deque()

    def send(self, seq: int, size: int, now: float) -> None:
        if self.rng.random() < self.loss:
            return
        start = max(now, self.busy_until)
        if start - now > self.max_queue:
            return
        self.busy_until = start + size * 8 / self.capacity(now)
        self.in_flight.append((self.busy_until + self.delay, seq, size))


def send_due_feedback(
    recorder: TwccRecorder,
    now: float,
    delay: float,
    feedback: deque[tuple[float, TwccFeedback]],
) -> None:
    """When the recorder's feedback is due, put it through the wire format and on the return
    path (arriving ``delay`` later)."""
    due = recorder.next_feedback_at
    if due is not None and due <= now * 1e6:
        for fb in recorder.feedback(int(now * 1e6)):
            (parsed,) = parse_rtcp_untrusted(serialize_compound([fb]))
            assert isinstance(parsed, TwccFeedback)
            feedback.append((now + delay, parsed))


def simulate(
    capacity: Callable[[float], float],
    duration: float,
    *,
    delay: float = 0.025,
    loss: float = 0.0,
    seed: int = 1,
    lose_start_probes: bool = False,
) -> tuple[list[Sample], SendSideBandwidthEstimator]:
    bwe = SendSideBandwidthEstimator(start_bitrate=300_000)
    if lose_start_probes:
        assert bwe.probes_to_send(0.0)  # taken and never sent: they give no rate
    pacer: Pacer[int] = Pacer(bwe.estimate)
    link = Link(capacity, delay, loss, seed)
    recorder = TwccRecorder(1)
    feedback: deque[tuple[float, TwccFeedback]] = deque()
    window: deque[tuple[float, int]] = deque()
    window_bytes = 0
    samples: list[Sample] = []
    next_frame = next_sample = 0.0
    step = 0.001
    tick = 0
    while (now := tick * step) < duration:
        tick += 1
        if now >= next_frame:
            next_frame += 1 / 30
            frame = max(200, bwe.estimate // 8 // 30)
            sizes = [1200] * (frame // 1200) + ([frame % 1200] if frame % 1200 else [])
            pacer.enqueue_many(range(len(sizes)), sizes, PacketKind.VIDEO, now)
        for cluster in bwe.probes_to_send(now):
            pacer.add_probe_cluster(cluster)
        for paced in pacer.datagrams_to_send(now):
            size = paced.size + OVERHEAD
            link.send(bwe.on_packet_sent(size, now, probe_cluster=paced.probe_cluster), size, now)
        while link.in_flight and link.in_flight[0][0] <= now:
            arrival, seq, size = link.in_flight.popleft()
            recorder.on_packet(seq, int(arrival * 1e6), 2)
            window.append((arrival, size))
            window_bytes += size
        send_due_feedback(recorder, now, delay, feedback)
        while feedback and feedback[0][0] <= now:
            bwe.receive_feedback(feedback.popleft()[1], now)
            pacer.set_estimate(bwe.estimate)
        while window and window[0][0] < now - 1.0:
            window_bytes -= window.popleft()[1]
        if now >= next_sample:
            next_sample += 0.1
            queue = max(0.0, link.busy_until - now)
            samples.append(Sample(now, bwe.estimate, window_bytes * 8.0, queue))
    return samples, bwe


def between(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.time < end]


def test_steady_link_is_used() -> None:
    capacity = 2_000_000
    samples, _ = simulate(lambda t: capacity, 12.0)
    # Probing finds the link within the first second.
    assert max(s.estimate for s in between(samples, 0, 1.5)) > 0.8 * capacity
    # After convergence: at least 85 % of the link is used, the queue stays short.
    steady = between(samples, 3.0, 12.0)
    utilisation = sum(s.delivered_bps for s in steady) / len(steady) / capacity
    assert utilisation >= 0.85, utilisation
    assert max(s.queue_delay for s in steady) < 0.1


def test_capacity_step_down_and_up() -> None:
    def capacity(t: float) -> float:
        return 1_000_000 if 8.0 <= t < 14.0 else 3_000_000

    samples, _ = simulate(capacity, 20.0)
    before = between(samples, 6.0, 8.0)
    assert min(s.estimate for s in before) > 2_000_000
    # Below the new capacity within a second of the drop, and staying at most near it.
    assert all(s.estimate < 1_000_000 for s in between(samples, 9.0, 9.5))
    assert all(s.estimate < 1_100_000 for s in between(samples, 9.0, 14.0))
    # The queue built by the drop drains while the capacity is low.
    assert max(s.queue_delay for s in between(samples, 12.5, 14.0)) < 0.1
    # Back up within 5 s of the capacity returning.
    assert max(s.estimate for s in between(samples, 14.0, 19.0)) > 2_400_000
    assert min(s.estimate for s in between(samples, 18.0, 20.0)) > 2_000_000


def test_a_loss_hold_on_a_path_without_congestion_is_probed_out_of() -> None:
    """5 % random loss on a 2 Mbit/s link whose start probes gave no rate: the loss-based
    control holds the estimate where it was when the loss began (near the start rate), and only
    probes that get through can show the path carries more."""
    samples, bwe = simulate(lambda t: 2_000_000, 30.0, loss=0.05, lose_start_probes=True)
    assert max(s.estimate for s in between(samples, 2.0, 4.0)) < 700_000
    assert min(s.estimate for s in between(samples, 25.0, 30.0)) > 1_400_000
    assert bwe.usage is BandwidthUsage.NORMAL or bwe.estimate > 1_400_000


def test_loss_based_control() -> None:
    moderate, _ = simulate(lambda t: 8_000_000, 10.0, loss=0.05, delay=0.03, seed=5)
    heavy, _ = simulate(lambda t: 8_000_000, 10.0, loss=0.15, delay=0.03, seed=5)
    # 5 %: held where probing got it (§6: 2-10 % loss neither raises nor cuts) ... (about
    # 0.8-0.9 Mbit/s at this seed: the start probes meet the loss; other seeds reach 1.6-6
    # Mbit/s. Since probe results are taken over the cluster's later half this seed's read
    # 0.79 instead of 0.9.)
    assert min(s.estimate for s in between(moderate, 3.0, 10.0)) > 750_000
    # ... 15 %: cut again and again, well below the 5 % case.
    peak = max(s.estimate for s in heavy)
    final = heavy[-1].estimate
    assert final < 0.7 * peak
    assert final < 0.7 * moderate[-1].estimate


def test_remb_fallback_and_cap() -> None:
    bwe = SendSideBandwidthEstimator(start_bitrate=300_000)
    bwe.receive_remb(800_000, 1.0)
    assert bwe.estimate == 800_000  # no transport-wide feedback: REMB is the estimate
    event = bwe.next_event()
    assert event is not None and event.bitrate == 800_000
    assert bwe.next_event() is None
    bwe.receive_remb(500_000, 2.0)
    assert bwe.estimate == 500_000


def test_loss_reports_without_twcc() -> None:
    bwe = SendSideBandwidthEstimator(start_bitrate=1_000_000)
    bwe.receive_remb(1_000_000, 0.0)
    for i in range(10):
        bwe.receive_loss_report(30, 100, 3.0 + i)
    assert bwe.estimate < 500_000


def test_feedback_for_unknown_packets_is_counted() -> None:
    bwe = SendSideBandwidthEstimator()
    seq = bwe.on_packet_sent(1000, 0.0)
    fb = TwccFeedback.from_arrival_times(1, 2, 0, (seq + 100) & 0xFFFF, [1000, 2000])
    results = bwe.receive_feedback(fb, 0.1)
    assert results == []
    assert bwe.unknown_feedback_packets == 2
    assert bwe.usage is BandwidthUsage.NORMAL


def test_transport_sequence_wraps_and_memory_is_bounded() -> None:
    bwe = SendSideBandwidthEstimator()
    seqs = [bwe.on_packet_sent(100, i * 1e-4) for i in range(70_000)]
    assert seqs[65_536] == 0 and seqs[-1] == (70_000 - 1) & 0xFFFF
    assert len(bwe._sent) <= 16_384
    fb = TwccFeedback.from_arrival_times(1, 2, 0, seqs[-2], [10_000, 11_000])
    results = bwe.receive_feedback(fb, 7.1)
    assert [r.sequence for r in results] == [70_000 - 2, 70_000 - 1]


def test_bitrate_bounds() -> None:
    with pytest.raises(ValueError):
        SendSideBandwidthEstimator(start_bitrate=10, min_bitrate=100)


def _bucket_arrivals(
    count: int, size: int, send_bps: float, link_bps: float, bucket: int
) -> list[float]:
    """Arrival times of ``count`` packets sent at ``send_bps`` through a token-bucket shaper
    (``tc tbf``: rate ``link_bps``, ``bucket`` bytes, full at the start)."""
    tokens, refilled, out = float(bucket), 0.0, []
    for index in range(count):
        sent = index * size * 8 / send_bps
        tokens = min(bucket, tokens + (sent - refilled) * link_bps / 8)
        refilled = leaves = sent
        if tokens < size:
            leaves = sent + (size - tokens) * 8 / link_bps
            tokens, refilled = float(size), leaves
        tokens -= size
        out.append(leaves)
    return out


def test_a_probe_through_a_token_bucket_reads_the_link_rate() -> None:
    """The first packets of a probe pass a shaper's bucket at the sender's pace; the rate is
    taken where the bucket no longer helps (the cluster's later half), not over the whole
    cluster (which read 2.4 Mbit/s for 10 packets, 3.2 for 5, through 2 Mbit/s)."""
    from trio_rtc.rtp.gcc import PacketResult, ProbeCluster, _ProbeEstimator

    link, send = 2_000_000, 4_000_000
    cluster = ProbeCluster(1, send, send * 30 // 1000 // 8)
    estimator = _ProbeEstimator()
    estimator.start(cluster, 0.0)
    arrivals = _bucket_arrivals(cluster.min_packets, 1200, send, link, 3028)
    found = None
    for index, arrival in enumerate(arrivals):
        result = PacketResult(index, index * 1200 * 8 / send, 1200, 0.01 + arrival, 1)
        found = estimator.add(result, 0.01 + arrival) or found
    assert found is not None
    rate, saturated = found
    assert saturated  # sent at twice what the link carried
    assert 0.9 * link <= rate <= 1.0 * link, rate
