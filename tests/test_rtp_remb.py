"""The receive-side estimator behind REMB (trio_rtc.rtp.remb): a simulated bottleneck, the
abs-send-time wrap, REMB timing and its bounds, fuzzed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.rtp.remb import (
    MAX_STREAMS,
    MAX_WINDOW_PACKETS,
    REMB_MAX_INTERVAL,
    STREAM_TIMEOUT,
    ReceiveSideEstimator,
)

PACKET = 1200
UNITS = 1 << 18


def _raw(send: float, offset: int = 0) -> int:
    return (int(send * UNITS) + offset) % (1 << 24)


class Link:
    """A bottleneck of ``capacity`` bits/s with a FIFO queue and ``delay`` seconds of
    propagation, fed by a sender at 30 frames a second whose rate follows the REMBs it gets."""

    def __init__(self, capacity: float, rate: float, *, delay: float = 0.02, offset: int = 0):
        self.capacity = capacity
        self.rate = rate
        self.delay = delay
        self.offset = offset
        self.estimator = ReceiveSideEstimator()
        self.free_at = 0.0
        self.queue_delays: list[tuple[float, float]] = []
        self.rembs: list[tuple[float, int]] = []
        self.received: list[tuple[float, int]] = []
        self.follow = True

    def run(self, seconds: float, start: float = 0.0) -> None:
        frame = 1 / 30
        t = start
        pending: list[tuple[float, int]] = []  # REMBs on their way back
        budget = 0.0
        while t < start + seconds:
            budget += self.rate * frame / 8
            count = int(budget // PACKET)
            budget -= count * PACKET
            for i in range(count):
                send = t + i * 0.0005  # a frame leaves as a short burst
                begin = max(send, self.free_at)
                self.free_at = begin + PACKET * 8 / self.capacity
                arrival = self.free_at + self.delay
                self.queue_delays.append((send, begin - send))
                self.estimator.on_packet(_raw(send, self.offset), arrival, PACKET, 1234)
                self.received.append((arrival, PACKET))
                remb = self.estimator.remb_to_send(arrival)
                if remb is not None:
                    self.rembs.append((arrival, remb[0]))
                    pending.append((arrival + self.delay, remb[0]))
            t += frame
            timer = self.estimator.get_timer()
            if timer is not None and timer <= t:
                self.estimator.handle_timer(t)
            if self.follow:
                for at, bitrate in [p for p in pending if p[0] <= t]:
                    self.rate = bitrate
                    pending.remove((at, bitrate))

    def estimate_at(self, when: float) -> int | None:
        before = [b for at, b in self.rembs if at <= when]
        return before[-1] if before else None


def test_no_estimate_before_a_second_of_data_then_the_incoming_rate() -> None:
    link = Link(capacity=5e6, rate=800_000)
    link.follow = False
    link.run(0.8)
    assert link.estimator.estimate is None and not link.rembs
    link.run(0.6, start=0.8)
    first = link.rembs[0][1]
    assert 600_000 < first < 1_100_000, first


def test_an_overloaded_link_is_found_and_the_rate_brought_under_it() -> None:
    link = Link(capacity=500_000, rate=1_000_000)
    link.run(20.0)
    # Under the capacity within a few seconds, and it stays near it.
    early = link.estimate_at(3.0)
    assert early is not None and early <= 500_000, link.rembs[:10]
    late = [b for at, b in link.rembs if at > 10.0]
    assert late and max(late) < 650_000 and min(late) > 250_000, late
    # The queue the first second built drains (GCC cuts to 85 % of what arrives).
    peak = max(d for _, d in link.queue_delays)
    tail = [d for s, d in link.queue_delays if s > 15.0]
    assert max(tail) < peak / 2, (peak, max(tail))
    # And the link stays busy meanwhile.
    received = sum(size for at, size in link.received if 10.0 <= at < 20.0)
    assert received * 8 / 10.0 > 0.7 * link.capacity


def test_a_link_with_room_never_sees_overuse_and_the_estimate_grows() -> None:
    link = Link(capacity=10e6, rate=400_000)
    link.run(12.0)
    assert all(b >= 350_000 for _, b in link.rembs), link.rembs[:5]
    assert link.rembs[-1][1] > 700_000, link.rembs[-1]


def test_the_abs_send_time_wrap_changes_nothing() -> None:
    plain = Link(capacity=700_000, rate=1_200_000)
    plain.run(6.0)
    # The same session with the sender's clock 10 ms before its 64 s wrap.
    wrapped = Link(capacity=700_000, rate=1_200_000, offset=(1 << 24) - UNITS // 100)
    wrapped.run(6.0)
    assert [b for _, b in plain.rembs] == [b for _, b in wrapped.rembs]


def test_remb_timing_falls_at_once_repeats_each_second() -> None:
    estimator = ReceiveSideEstimator()
    t = 0.0
    for _ in range(60):  # 1.2 s at 480 kbit/s, evenly spaced
        estimator.on_packet(_raw(t), t + 0.02, PACKET, 7)
        t += 0.02
    first = estimator.remb_to_send(t)
    assert first is not None and first[1] == [7]
    assert estimator.remb_to_send(t + 0.01) is None  # nothing changed, too soon
    # Held: repeated after a second even though nothing changed.
    bitrate = estimator.estimate
    assert bitrate is not None
    assert estimator.remb_to_send(t + REMB_MAX_INTERVAL) is not None
    # A fall of more than 3 % goes at once.
    assert estimator._aimd is not None
    estimator._aimd.bitrate *= 0.9
    sent = estimator.remb_to_send(t + REMB_MAX_INTERVAL + 0.01)
    assert sent is not None and sent[0] < bitrate


def test_silent_streams_leave_the_list_and_streams_are_bounded() -> None:
    estimator = ReceiveSideEstimator()
    for n in range(MAX_STREAMS + 10):
        estimator.on_packet(_raw(n * 0.001), n * 0.001, 100, n)
    assert len(estimator.ssrcs(0.1)) == MAX_STREAMS
    assert estimator.ssrcs(0.1)[0] == 10  # the oldest went first
    estimator.on_packet(_raw(3.0), 3.0, 100, 99_999)
    assert estimator.ssrcs(3.0 + STREAM_TIMEOUT / 2) == [99_999]


def test_the_rate_window_is_bounded_by_packets() -> None:
    estimator = ReceiveSideEstimator()
    for _ in range(MAX_WINDOW_PACKETS + 500):
        estimator.on_packet(_raw(0.0), 0.5, 60, 1)  # a flood in one instant
    assert len(estimator._rate_samples) <= MAX_WINDOW_PACKETS


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, (1 << 24) - 1),
            st.floats(0, 0.5, allow_nan=False),
            st.integers(0, 2000),
            st.integers(0, 5),
        ),
        max_size=300,
    )
)
def test_any_packets_keep_the_estimate_in_bounds(
    packets: list[tuple[int, float, int, int]],
) -> None:
    estimator = ReceiveSideEstimator()
    now = 0.0
    for raw, gap, size, ssrc in packets:
        now += gap
        estimator.on_packet(raw, now, size, ssrc)
        estimator.handle_timer(now)
        remb = estimator.remb_to_send(now)
        if remb is not None:
            assert estimator.min_bitrate <= remb[0] <= estimator.max_bitrate
            assert remb[1]
