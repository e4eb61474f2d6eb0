"""Send-side bandwidth estimation in the manner of Google Congestion Control
(draft-ietf-rmcat-gcc-02, as libwebrtc runs it today), fed by transport-wide congestion control
feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).

Pure: no trio, no clock, no I/O; ``now`` is seconds on any monotonic clock. The driver:

* stamps every RTP packet it sends with :meth:`SendSideBandwidthEstimator.on_packet_sent`, which
  allocates the transport-wide sequence number to write in the header extension and remembers
  the send time and size (the send side of TWCC);
* hands every received :class:`~trio_rtc.rtp.rtcp_feedback.TwccFeedback` to
  :meth:`~SendSideBandwidthEstimator.receive_feedback`, a REMB to
  :meth:`~SendSideBandwidthEstimator.receive_remb`, the RTT from RTCP reports to
  :meth:`~SendSideBandwidthEstimator.set_rtt`;
* reads :attr:`~SendSideBandwidthEstimator.estimate` (bits/s), or :meth:`next_event` for
  changes, and passes :meth:`~SendSideBandwidthEstimator.probes_to_send` to the pacer.

The pieces, each a small class below:

* delay-based (§5 of the draft): packets are grouped in 5 ms send bursts; the growth of the
  one-way delay between groups is smoothed and its slope fitted over a window (libwebrtc's
  trendline filter, in place of the draft's Kalman filter); an overuse detector compares the
  slope with a threshold that adapts to it (§5.4), and an AIMD controller (§5.5) increases the
  rate (8 %/s far from the last congestion point, about one packet per response time near
  it; the point is forgotten once the acknowledged rate has stayed above it for half a second)
  or cuts it to 0.85 x the acknowledged bitrate on overuse (the first cut of an overuse to
  0.85 x the rate of the last 100 ms of arrivals when lower: behind a queue, the bottleneck's);
  a queue delay over 80 ms that grew at two successive feedbacks is overuse too, found before
  the trendline's slope crosses its threshold (see ``_QUEUE_OVERUSE``);
* loss-based (§6): more than 10 % loss cuts the rate by half the loss fraction, at most once
  per 300 ms + RTT and not below 0.85 x the acknowledged rate; 2-10 % holds it; less than 2 %
  does not limit. Runs of back-to-back losses on a path that shows no queue are bursts, not
  congestion, and are not counted (up to a quarter of the packets: a policer drops runs too);
* the estimate is the minimum of the two (and of a REMB, when the peer sends one), bounded by
  ``[min_bitrate, max_bitrate]``;
* probing: clusters at 3x and 6x the start rate, further clusters at 2x while probes succeed, a
  probe back to 85 % of the rate before a large drop every ``recovery_probe_interval`` for a
  while after it (so a link whose capacity returns is found within seconds, not at 8 %/s), and
  periodic probes while application-limited, and while the loss-based control holds the
  estimate on a path that shows no congestion (a probe that gets through lifts the hold);
* ALR (application-limited region): when we send well below the estimate, the delay-based rate
  is not increased, since feedback cannot confirm a rate that was not used.

Memory is bounded: at most ``MAX_SENT_PACKETS`` sent packets are remembered for matching
feedback, and every window below has a fixed size.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import OrderedDict, deque

import attrs

from .rtcp_feedback import TwccFeedback

__all__ = [
    "BandwidthEstimate",
    "BandwidthUsage",
    "PacketResult",
    "ProbeCluster",
    "SendSideBandwidthEstimator",
]

START_BITRATE = 300_000
MIN_BITRATE = 30_000
MAX_BITRATE = 10_000_000
#: Sent packets remembered for feedback (several seconds at 10 Mbit/s).
MAX_SENT_PACKETS = 16_384
#: Sent packets older than this are forgotten even when fewer.
MAX_SENT_AGE = 5.0
DEFAULT_RTT = 0.1

# Inter-arrival grouping (libwebrtc's InterArrivalDelta).
_GROUP_LENGTH = 0.005
_BURST_DELTA = 0.005
_MAX_BURST_DURATION = 0.1
_MAX_ARRIVAL_JUMP = 3.0
# Trendline filter and overuse detector (times in ms, as the constants are).
_WINDOW = 20
_SMOOTHING = 0.9
_THRESHOLD_GAIN = 4.0
_MAX_DELTAS = 60
_K_UP = 0.0087
_K_DOWN = 0.039
_THRESHOLD_INITIAL = 12.5
_THRESHOLD_MIN = 6.0
_THRESHOLD_MAX = 600.0
_MAX_ADAPT_OFFSET = 15.0
_OVERUSE_TIME = 10.0
# AIMD (§5.5).
_BETA = 0.85
_ETA = 1.08
# The link capacity estimate is dropped (multiplicative increase again) only once the
# acknowledged rate has stayed above its upper bound this long: the acknowledged rate is taken
# over 250 ms, and a key frame (the VP8 encoder makes one at every large rate change) lifts it
# above the bound for about that long without the link having grown.
_LINK_RESET_TIME = 0.5
_AVG_PACKET_BITS = 1200 * 8
_FRAME_RATE = 30.0
# Loss-based (§6).
_LOSS_LOW = 0.02
_LOSS_HIGH = 0.10
_LOSS_MIN_PACKETS = 20
_LOSS_WINDOW = 1.0
_START_PHASE = 2.0
# Loss bursts that are not congestion (libwebrtc's loss-based estimator judges loss together
# with delay for the same reason): a run of at least _BURST_RUN packets lost back to back, while
# the delay detector saw no overuse for _BURST_CALM seconds and the packets just before the run
# queued less than _BURST_QUEUE seconds above the path's base delay (the smallest of the last
# _BASE_DELAY_WINDOW seconds), is a burst on the path (radio fade, a switch over), which NACK/RTX
# repairs: it is not counted as loss. A queue that overflows shows up as delay first, so its
# drops stay counted.
_BURST_RUN = 3
_BURST_CALM = 0.5
_BURST_QUEUE = 0.03
# A policer (a token bucket that drops what exceeds its rate, with no queue) also drops runs of
# packets without any delay growth, and it drops them again and again. So bursts are excused
# only while they are at most _BURST_MAX_SHARE of the packets of the last _LOSS_WINDOW: beyond,
# the loss counts and the loss-based control cuts as before.
_BURST_MAX_SHARE = 0.25
_BASE_DELAY_WINDOW = 5.0
# A standing queue that keeps growing is overuse even before the trendline says so (our
# addition to libwebrtc's detector): at two successive feedbacks the queue delay (above the
# path's base delay) was over half of _QUEUE_OVERUSE and then over it, grown by at least
# _QUEUE_GROWTH, the two read at least _QUEUE_SPAN apart on our clock (two feedbacks read
# together after a stall of either host are one observation). The trendline fits its slope
# over 20 send groups (0.3-0.6 s of video) and smooths it on top: after a 3 -> 1 Mbit/s step
# it fired 370 ms in, when a 200 ms bottleneck queue had overflowed, and the resends of that
# overflow kept the send rate above the new capacity for another 0.9 s. The queue was over
# 50 ms and growing at 120-170 ms, over 80 ms at 150-220 ms: found then, a 200 ms queue does
# not overflow. Jitter of tens of ms (a userspace relay on a loaded host), or one late group,
# does not make two growing reports over half the bound.
_QUEUE_OVERUSE = 0.08
_QUEUE_GROWTH = 0.01
_QUEUE_REPORTS = 2
_QUEUE_SPAN = 0.03
_MAX_RUN = 1000
# Acknowledged bitrate: a sliding window over arrival times.
_ACKED_WINDOW = 0.25
_ACKED_MIN_SPAN = 0.1
# On overuse the cut is to 0.85 x the lower of that and the rate of the last _RECENT_WINDOW of
# arrivals (our addition): behind a standing queue packets arrive at exactly the bottleneck's
# rate, while the 250 ms window still holds arrivals from before a capacity drop. After a
# 3 -> 1 Mbit/s step it read 1.26 Mbit/s when the overuse was found; the cut to 1.07 Mbit/s
# needed a second one 100 ms later, and each cost the encoder a reopen and a keyframe while
# the queue overflowed. Only at the first cut of an overuse, only when the recent rate is
# below _RECENT_DROP x the 250 ms one (a capacity drop; 100 ms of video at a steady link is
# noisy, and taking the lower of the two cut a 2 Mbit/s link at 5 % loss about 15 % deeper on
# average), and never below half the 250 ms rate (see _update_delay_based).
_RECENT_WINDOW = 0.1
_RECENT_MIN_SPAN = 0.05
_RECENT_DROP = 0.8
# Probing (libwebrtc's ProbeController / ProbeBitrateEstimator).
_PROBE_DURATION = 0.030
_PROBE_MIN_PACKETS = 10
_PROBE_REPEAT_FRACTION = 0.7
_PROBE_WAIT = 1.0
_PROBE_MAX_AGE = 1.0
_PROBE_MAX_RATIO = 2.0
_PROBE_UNSATURATED = 0.9
_PROBE_TARGET_UTILISATION = 0.95
_DROP_THRESHOLD = 0.66
#: A delay-based cut below this fraction of the previous estimate and of the rate sent over
#: the last SENT_RATE_WINDOW seconds is a capacity drop (``BandwidthEstimate.capacity_drop``).
#: Both: while the sender is application-limited the estimate can be far above what is sent
#: (probing found the link), and a delay step then cuts it below half without any capacity
#: lost; the rate sent tells the two apart.
CAPACITY_DROP = 0.5
SENT_RATE_WINDOW = 0.5
_DROP_WINDOW = 5.0
_RECOVERY_TARGET = 0.85
# ALR (libwebrtc's AlrDetector): budget at 65 % of the estimate over a 500 ms window.
_ALR_USAGE = 0.65
_ALR_WINDOW = 0.5
_ALR_START = 0.8
_ALR_STOP = 0.5
_ALR_PROBE_INTERVAL = 5.0
# While the loss-based control holds the estimate (2-10 % loss) on a path that shows no
# congestion (delay normal, no standing queue), a probe at twice the estimate every
# _HOLD_PROBE_INTERVAL, and a probe that gets through lifts the hold (libwebrtc resets its
# loss-based estimate to a probe's result the same way). The hold keeps whatever the estimate
# was when the loss began: when the start probes gave no rate (on bench_links (b), 5 % random
# loss and 30 ms each way, 2 runs in 6), that was 600-700 kbit/s on a 2 Mbit/s link for the
# whole call.
_HOLD_PROBE_INTERVAL = 5.0


class BandwidthUsage(enum.Enum):
    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


@attrs.define(slots=True)
class ProbeCluster:
    """Send at least ``min_packets`` packets and ``min_bytes`` bytes at ``bitrate`` bit/s, tagged
    with ``id`` (pass it back to :meth:`SendSideBandwidthEstimator.on_packet_sent`)."""

    id: int
    bitrate: int
    min_bytes: int
    min_packets: int = _PROBE_MIN_PACKETS


@attrs.define(slots=True)
class PacketResult:
    """What feedback said of one packet we sent: send time and arrival time in seconds (the
    arrival on the receiver's clock, None when lost), size in bytes."""

    sequence: int
    send_time: float
    size: int
    arrival_time: float | None
    probe_cluster: int | None = None


@attrs.frozen
class BandwidthEstimate:
    """The estimate after a change: the target (bits/s) and what it is the minimum of."""

    bitrate: int
    delay_based: int
    loss_based: int | None
    acknowledged: int | None
    loss_fraction: float
    usage: BandwidthUsage
    in_alr: bool
    #: A delay-based cut below :data:`CAPACITY_DROP` x both the previous estimate and the rate
    #: actually sent over the last :data:`SENT_RATE_WINDOW`: the path lost capacity (a
    #: regular back-off is to 0.85 x the acknowledged rate).
    capacity_drop: bool = False


@attrs.define(slots=True)
class _Sent:
    send_time: float
    size: int
    probe_cluster: int | None
    #: 0 unreported, 1 reported lost (counted), 2 reported received, 3 lost in a burst that was
    #: not counted as loss, 4 reported lost and not yet judged (in the current run).
    reported: int = 0
    #: Sent again unchanged (a plain retransmission keeps its transport-wide number).
    resent: bool = False


@attrs.define(slots=True)
class _Group:
    first_send: float
    last_send: float
    first_arrival: float
    last_arrival: float
    size: int


class _InterArrival:
    """Groups packets sent within 5 ms and yields (send delta, arrival delta) between groups."""

    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        self._current: _Group | None = None
        self._previous: _Group | None = None

    def _in_burst(self, group: _Group, send: float, arrival: float) -> bool:
        arrival_delta = arrival - group.last_arrival
        send_delta = send - group.last_send
        if send_delta == 0:
            return True
        return (
            arrival_delta - send_delta < 0
            and arrival_delta <= _BURST_DELTA
            and arrival - group.first_arrival < _MAX_BURST_DURATION
        )

    def add(self, send: float, arrival: float, size: int) -> tuple[float, float] | None:
        current = self._current
        if current is None:
            self._current = _Group(send, send, arrival, arrival, size)
            return None
        if send < current.first_send:
            return None  # sent before the current group: reordered, skip
        if send - current.first_send <= _GROUP_LENGTH or self._in_burst(current, send, arrival):
            current.last_send = max(current.last_send, send)
            current.last_arrival = max(current.last_arrival, arrival)
            current.size += size
            return None
        out: tuple[float, float] | None = None
        previous = self._previous
        if previous is not None:
            send_delta = current.last_send - previous.last_send
            arrival_delta = current.last_arrival - previous.last_arrival
            if arrival_delta - send_delta > _MAX_ARRIVAL_JUMP or arrival_delta < 0:
                # A clock jump or heavy reordering: start over rather than feed nonsense.
                self._previous = None
                self._current = _Group(send, send, arrival, arrival, size)
                return None
            out = (send_delta, arrival_delta)
        self._previous = current
        self._current = _Group(send, send, arrival, arrival, size)
        return out


class _Trendline:
    """libwebrtc's trendline filter with the adaptive-threshold overuse detector (§5.4)."""

    __slots__ = (
        "_accumulated",
        "_first_arrival",
        "_last_threshold_update",
        "_num_deltas",
        "_overuse_count",
        "_prev_trend",
        "_smoothed",
        "_time_over_using",
        "_window",
        "state",
        "threshold",
    )

    def __init__(self) -> None:
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._window: deque[tuple[float, float]] = deque(maxlen=_WINDOW)
        self._num_deltas = 0
        self._prev_trend = 0.0
        self._time_over_using = -1.0
        self._overuse_count = 0
        self._last_threshold_update: float | None = None
        self.threshold = _THRESHOLD_INITIAL
        self.state = BandwidthUsage.NORMAL

    def update(self, send_delta: float, arrival_delta: float, arrival: float) -> None:
        delta_ms = (arrival_delta - send_delta) * 1000
        self._num_deltas = min(self._num_deltas + 1, 1000)
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._accumulated += delta_ms
        self._smoothed = _SMOOTHING * self._smoothed + (1 - _SMOOTHING) * self._accumulated
        self._window.append(((arrival - self._first_arrival) * 1000, self._smoothed))
        trend = self._prev_trend
        if len(self._window) == _WINDOW:
            slope = _slope(self._window)
            if slope is not None:
                trend = slope
        self._detect(trend, send_delta * 1000, arrival * 1000)

    def _detect(self, trend: float, send_delta_ms: float, now_ms: float) -> None:
        if self._num_deltas < 2:
            self.state = BandwidthUsage.NORMAL
            return
        modified = min(self._num_deltas, _MAX_DELTAS) * trend * _THRESHOLD_GAIN
        if modified > self.threshold:
            if self._time_over_using < 0:
                self._time_over_using = send_delta_ms / 2
            else:
                self._time_over_using += send_delta_ms
            self._overuse_count += 1
            if (
                self._time_over_using > _OVERUSE_TIME
                and self._overuse_count > 1
                and trend >= self._prev_trend
            ):
                self._time_over_using = 0.0
                self._overuse_count = 0
                self.state = BandwidthUsage.OVERUSING
        elif modified < -self.threshold:
            self._time_over_using = -1.0
            self._overuse_count = 0
            self.state = BandwidthUsage.UNDERUSING
        else:
            self._time_over_using = -1.0
            self._overuse_count = 0
            self.state = BandwidthUsage.NORMAL
        self._prev_trend = trend
        self._adapt_threshold(modified, now_ms)

    def _adapt_threshold(self, modified: float, now_ms: float) -> None:
        # §5.4: the threshold follows |m| slowly upward and faster downward, so the detector
        # stays sensitive without starving against concurrent TCP flows.
        last = self._last_threshold_update
        self._last_threshold_update = now_ms
        if last is None:
            return
        if abs(modified) > self.threshold + _MAX_ADAPT_OFFSET:
            return  # a spike (a route change): do not let it drag the threshold up
        k = _K_DOWN if abs(modified) < self.threshold else _K_UP
        dt = min(max(now_ms - last, 0.0), 100.0)
        self.threshold += k * (abs(modified) - self.threshold) * dt
        self.threshold = min(max(self.threshold, _THRESHOLD_MIN), _THRESHOLD_MAX)


def _slope(points: deque[tuple[float, float]]) -> float | None:
    n = len(points)
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _ in points)
    if denominator == 0:
        return None
    return numerator / denominator


class _LinkCapacity:
    """Where the last overuse happened (kbit/s), with its spread: near it, increase slowly."""

    __slots__ = ("_deviation", "estimate")

    def __init__(self) -> None:
        self.estimate: float | None = None
        self._deviation = 0.4

    def reset(self) -> None:
        self.estimate = None

    def on_overuse(self, bitrate: float) -> None:
        sample = bitrate / 1000
        alpha = 0.05
        est = sample if self.estimate is None else (1 - alpha) * self.estimate + alpha * sample
        norm = max(est, 1.0)
        self._deviation = (1 - alpha) * self._deviation + alpha * (est - sample) ** 2 / norm
        self._deviation = min(max(self._deviation, 0.4), 2.5)
        self.estimate = est

    def _spread(self) -> float:
        assert self.estimate is not None
        return 3 * math.sqrt(self._deviation * self.estimate)

    def upper_bound(self) -> float:
        return math.inf if self.estimate is None else (self.estimate + self._spread()) * 1000


class _Aimd:
    """The rate controller of §5.5, in bits/s."""

    __slots__ = (
        "_above_since",
        "_last_change",
        "_last_decrease",
        "_link",
        "_state",
        "bitrate",
        "max",
        "min",
    )

    def __init__(self, start: float, minimum: float, maximum: float) -> None:
        self.bitrate = start
        self.min = minimum
        self.max = maximum
        self._state = "increase"
        self._last_change: float | None = None
        self._last_decrease: float | None = None
        self._link = _LinkCapacity()
        self._above_since: float | None = None

    def set_estimate(self, bitrate: float, now: float) -> None:
        self.bitrate = min(max(bitrate, self.min), self.max)
        self._last_change = now

    def time_to_reduce(self, now: float, acked: float | None, rtt: float) -> bool:
        interval = min(max(rtt, 0.01), 0.2)
        if self._last_change is None or now - self._last_change >= interval:
            return True
        return acked is not None and acked < 0.5 * self.bitrate

    def update(
        self,
        usage: BandwidthUsage,
        acked: float | None,
        now: float,
        rtt: float,
        in_alr: bool,
    ) -> None:
        if usage is BandwidthUsage.OVERUSING:
            self._state = "decrease"
        elif usage is BandwidthUsage.UNDERUSING:
            self._state = "hold"
        elif self._state == "hold":
            self._state = "increase"
            self._last_change = now  # the increase starts now, not at the last cut
        current = self.bitrate
        if self._state == "increase":
            if acked is not None and acked > self._link.upper_bound():
                if self._above_since is None:
                    self._above_since = now
                if now - self._above_since >= _LINK_RESET_TIME:
                    self._link.reset()  # well past the old congestion point: search again
                    self._above_since = None
            else:
                self._above_since = None
            limit = 1.5 * acked + 10_000 if acked is not None else math.inf
            if in_alr:
                limit = min(limit, current)
            if current < limit:
                if self._link.estimate is not None:
                    increase = self._additive(current, now, rtt)
                else:
                    increase = self._multiplicative(current, now)
                current = min(current + increase, limit)
            self._last_change = now
        elif self._state == "decrease":
            decreased = _BETA * (acked if acked is not None else current)
            if decreased > current and self._link.estimate is not None:
                decreased = _BETA * self._link.estimate * 1000
            if decreased < current:
                current = decreased
            if acked is not None:
                self._link.on_overuse(acked)
            self._state = "hold"
            self._last_change = now
            self._last_decrease = now
        self.bitrate = min(max(current, self.min), self.max)

    def _multiplicative(self, current: float, now: float) -> float:
        dt = 1.0 if self._last_change is None else min(max(now - self._last_change, 0.0), 1.0)
        return max(current * (math.pow(_ETA, dt) - 1), 1000.0)

    def _additive(self, current: float, now: float, rtt: float) -> float:
        dt = 0.0 if self._last_change is None else max(now - self._last_change, 0.0)
        response_time = rtt + 0.1
        bits_per_frame = current / _FRAME_RATE
        packets_per_frame = max(1.0, math.ceil(bits_per_frame / _AVG_PACKET_BITS))
        per_second = max(4000.0, bits_per_frame / packets_per_frame / response_time)
        return per_second * dt


class _AckedBitrate:
    """Bytes acknowledged by feedback over the last ``_ACKED_WINDOW`` of arrival time."""

    __slots__ = ("_bytes", "_samples")

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, arrival: float, size: int) -> None:
        samples = self._samples
        if samples and arrival < samples[-1][0]:
            arrival = samples[-1][0]  # keep the window monotonic
        samples.append((arrival, size))
        self._bytes += size
        start = arrival - _ACKED_WINDOW
        while samples and (samples[0][0] < start or len(samples) > MAX_SENT_PACKETS):
            self._bytes -= samples.popleft()[1]

    def bitrate(self) -> float | None:
        samples = self._samples
        if len(samples) < 2:
            return None
        span = samples[-1][0] - samples[0][0]
        if span < _ACKED_MIN_SPAN:
            return None
        return (self._bytes - samples[0][1]) * 8 / span

    def recent_bitrate(self) -> float | None:
        """The same over the last ``_RECENT_WINDOW`` of arrival time only."""
        samples = self._samples
        if len(samples) < 2:
            return None
        last = samples[-1][0]
        start = last - _RECENT_WINDOW
        total = 0
        first = last
        first_size = 0
        for arrival, size in reversed(samples):
            if arrival < start:
                break
            total += size
            first, first_size = arrival, size
        span = last - first
        if span < _RECENT_MIN_SPAN:
            return None
        return (total - first_size) * 8 / span


@attrs.define(slots=True)
class _ProbeStats:
    created: float
    min_bytes: int
    min_packets: int
    first_send: float = math.inf
    last_send: float = -math.inf
    first_arrival: float = math.inf
    last_arrival: float = -math.inf
    size: int = 0
    last_send_size: int = 0
    first_arrival_size: int = 0
    packets: int = 0
    #: (arrival, size) of every packet reported received, for the later-half rate.
    arrivals: list[tuple[float, int]] = attrs.Factory(list)


class _ProbeEstimator:
    """The rate a probe cluster got through: min(sent rate, received rate) (libwebrtc's
    ProbeBitrateEstimator)."""

    __slots__ = ("_clusters",)

    def __init__(self) -> None:
        self._clusters: OrderedDict[int, _ProbeStats] = OrderedDict()

    def start(self, cluster: ProbeCluster, now: float) -> None:
        self._clusters[cluster.id] = _ProbeStats(now, cluster.min_bytes, cluster.min_packets)
        while len(self._clusters) > 16:
            self._clusters.popitem(last=False)

    def add(self, result: PacketResult, now: float) -> tuple[float, bool] | None:
        """(rate, saturated) once the cluster has enough packets; ``saturated``: the link
        delivered clearly less than was sent, so the rate is the link's."""
        for cid in [c for c, s in self._clusters.items() if now - s.created > _PROBE_MAX_AGE]:
            del self._clusters[cid]
        assert result.probe_cluster is not None and result.arrival_time is not None
        stats = self._clusters.get(result.probe_cluster)
        if stats is None:
            return None
        send, arrival, size = result.send_time, result.arrival_time, result.size
        if send > stats.last_send:
            stats.last_send, stats.last_send_size = send, size
        stats.first_send = min(stats.first_send, send)
        if arrival < stats.first_arrival:
            stats.first_arrival, stats.first_arrival_size = arrival, size
        stats.last_arrival = max(stats.last_arrival, arrival)
        stats.size += size
        stats.packets += 1
        stats.arrivals.append((arrival, size))
        if stats.packets < 0.8 * stats.min_packets or stats.size < 0.8 * stats.min_bytes:
            return None
        send_interval = stats.last_send - stats.first_send
        receive_interval = stats.last_arrival - stats.first_arrival
        if not (0 < send_interval <= 1.0 and 0 < receive_interval <= 1.0):
            return None
        send_rate = (stats.size - stats.last_send_size) * 8 / send_interval
        receive_rate = (stats.size - stats.first_arrival_size) * 8 / receive_interval
        # And no more than the cluster's later half arrived at: a token-bucket shaper or
        # policer lets the first packets of a burst through at the sender's pace, which the
        # whole cluster's rate counts as link (a 5-packet probe at 2x a 2 Mbit/s tbf with a
        # two-packet bucket read 3.2 Mbit/s; bench_links (b)'s recovery probes put the
        # estimate at 2.3-3.1 Mbit/s, and the encoder reopened up and down: two keyframes).
        arrivals = sorted(stats.arrivals)
        tail = arrivals[len(arrivals) // 2 :]
        if len(tail) >= 3:
            span = tail[-1][0] - tail[0][0]
            if span > 0:
                tail_rate = sum(size for _, size in tail[1:]) * 8 / span
                receive_rate = min(receive_rate, tail_rate)
        if receive_rate > _PROBE_MAX_RATIO * send_rate:
            return None
        if receive_rate < _PROBE_UNSATURATED * send_rate:
            return _PROBE_TARGET_UTILISATION * receive_rate, True
        return min(send_rate, receive_rate), False


class _Alr:
    """Application-limited region: an interval budget at 65 % of the estimate; ALR while most
    of it goes unused."""

    __slots__ = ("_budget", "_last", "active")

    def __init__(self) -> None:
        self._budget = 0.0
        self._last: float | None = None
        self.active = False

    def on_sent(self, size: int, now: float, estimate: float) -> None:
        rate = estimate * _ALR_USAGE / 8
        window = rate * _ALR_WINDOW
        if self._last is not None:
            self._budget += rate * min(max(now - self._last, 0.0), _ALR_WINDOW)
        self._last = now
        self._budget = min(max(self._budget - size, -window), window)
        ratio = self._budget / window if window > 0 else 0.0
        if not self.active and ratio > _ALR_START:
            self.active = True
        elif self.active and ratio < _ALR_STOP:
            self.active = False


class SendSideBandwidthEstimator:
    """GCC for one transport (all SSRCs sent over it share the transport-wide sequence).

    ``start_bitrate``, ``min_bitrate``, ``max_bitrate`` in bits/s. ``probing``: send probe
    clusters (the pacer must support them); without it the estimate grows by AIMD alone.
    """

    def __init__(
        self,
        *,
        start_bitrate: int = START_BITRATE,
        min_bitrate: int = MIN_BITRATE,
        max_bitrate: int = MAX_BITRATE,
        probing: bool = True,
        recovery_probe_interval: float = 2.0,
        recovery_probe_duration: float = 30.0,
    ) -> None:
        if not 0 < min_bitrate <= start_bitrate <= max_bitrate:
            raise ValueError("bitrates must satisfy 0 < min <= start <= max")
        self.min_bitrate = min_bitrate
        self.max_bitrate = max_bitrate
        self.probing = probing
        self.recovery_probe_interval = recovery_probe_interval
        self.recovery_probe_duration = recovery_probe_duration
        self._next_sequence = 0  # extended; the wire carries the low 16 bits
        self._sent: OrderedDict[int, _Sent] = OrderedDict()
        self._inter_arrival = _InterArrival()
        self._trendline = _Trendline()
        self._aimd = _Aimd(start_bitrate, min_bitrate, max_bitrate)
        self._acked = _AckedBitrate()
        self._probes = _ProbeEstimator()
        self._alr = _Alr()
        self._reference: int | None = None  # unwrapped 24-bit TWCC reference time
        self._rtt: float | None = None
        self._feedback_rtt: float | None = None
        self._remb: int | None = None
        self._have_twcc = False
        self._first_feedback_at: float | None = None
        # Loss-based control.
        self._loss_lost = 0
        self._loss_expected = 0
        self._loss_fraction = 0.0
        self._last_loss_update: float | None = None
        self._low_loss_since: float | None = None
        self._loss_window: deque[tuple[float, int, int]] = deque()
        self._loss_window_lost = 0
        self._loss_window_expected = 0
        self._loss_bitrate: float | None = None  # None: not limiting
        self._last_loss_decrease: float | None = None
        self._loss_reported = False
        # Loss bursts: the current run of lost packets (extended sequence numbers, in order),
        # when the delay detector last saw overuse, the path's base one-way delay.
        self._run: list[int] = []
        self._last_overuse: float | None = None
        self._queue_delay = 0.0  # of the last packet received, above the base delay
        # (now, queue delay) as of the last _QUEUE_REPORTS feedbacks.
        self._queue_reports: deque[tuple[float, float]] = deque(maxlen=_QUEUE_REPORTS)
        # The trendline's state, or overuse when the queue delay says so (see _QUEUE_OVERUSE).
        self._usage = BandwidthUsage.NORMAL
        self._previous_usage = BandwidthUsage.NORMAL
        #: Overuses found by the queue delay before the trendline found them.
        self.queue_overuses = 0
        # The current overuse was found by the queue delay (not, or not yet, by the trendline).
        self._queue_found = False
        self._newest_delay_send = -math.inf
        self._base_delay: deque[tuple[float, float]] = deque()
        # (time, packets) of the runs excused as bursts within the last _LOSS_WINDOW.
        self._bursts: deque[tuple[float, int]] = deque()
        self._burst_packets = 0
        #: Lost packets not counted as loss (bursts on a path that showed no queue).
        self.burst_losses = 0
        # Probing.
        self._probe_id = 0
        self._pending_probes: list[ProbeCluster] = []
        self._started = False
        self._probe_waiting_until: float | None = None
        self._probe_further_above: float | None = None
        self._bitrate_before_drop: float | None = None
        self._drop_at: float | None = None
        self._next_recovery_probe: float | None = None
        self._next_alr_probe: float | None = None
        self._next_hold_probe: float | None = None
        self._peaks: deque[tuple[float, float]] = deque()
        self._recovery_probes: deque[int] = deque(maxlen=16)
        self._estimate = float(start_bitrate)
        self._event: BandwidthEstimate | None = None
        #: Feedback that named packets we do not remember (too old, or never sent).
        self.unknown_feedback_packets = 0
        self.feedback_received = 0

    # --- read side ------------------------------------------------------------------------

    @property
    def estimate(self) -> int:
        """The target bitrate in bits/s: the sum of what all streams on the transport may send
        (W3C ``availableOutgoingBitrate``)."""
        return int(self._estimate)

    @property
    def delay_based_estimate(self) -> int:
        return int(self._aimd.bitrate)

    @property
    def acknowledged_bitrate(self) -> int | None:
        acked = self._acked.bitrate()
        return None if acked is None else int(acked)

    @property
    def usage(self) -> BandwidthUsage:
        return self._usage

    @property
    def in_alr(self) -> bool:
        return self._alr.active

    @property
    def rtt(self) -> float:
        if self._rtt is not None:
            return self._rtt
        return self._feedback_rtt if self._feedback_rtt is not None else DEFAULT_RTT

    def next_event(self) -> BandwidthEstimate | None:
        """The latest estimate if it changed since the last call (at most one is kept)."""
        event, self._event = self._event, None
        return event

    # --- send side ------------------------------------------------------------------------

    def on_packet_sent(self, size: int, now: float, *, probe_cluster: int | None = None) -> int:
        """Record a packet leaving now (``size``: its bytes on the wire); return the 16-bit
        transport-wide sequence number to put in its header extension."""
        seq = self._next_sequence
        self._next_sequence += 1
        sent = self._sent
        sent[seq] = _Sent(now, size, probe_cluster)
        while sent and (
            len(sent) > MAX_SENT_PACKETS or next(iter(sent.values())).send_time < now - MAX_SENT_AGE
        ):
            sent.popitem(last=False)
        self._alr.on_sent(size, now, self._estimate)
        return seq & 0xFFFF

    def sent_bitrate(self, now: float) -> float:
        """Bits/s that left over the last :data:`SENT_RATE_WINDOW` (retransmissions and
        probes included), from the history kept for feedback (walked from its newest end;
        asked for at a deep cut, not per packet)."""
        since = now - SENT_RATE_WINDOW
        total = 0
        for sent in reversed(self._sent.values()):
            if sent.send_time < since:
                break
            total += sent.size
        return total * 8 / SENT_RATE_WINDOW

    def on_packet_resent(self, sequence_number: int) -> None:
        """The packet with this 16-bit transport-wide number was sent again unchanged (a plain
        retransmission, without RTX). Its arrival after it was reported lost is then the
        resend's, not the original's: the loss stays counted. Otherwise the loss-based control
        saw almost none of a path's random loss whenever NACK repaired it (at 5 % loss it saw
        0-1.6 %), and the estimate climbed past the link as if it were clean."""
        highest = self._next_sequence - 1
        ext = highest + (((sequence_number - highest + 0x8000) & 0xFFFF) - 0x8000)
        sent = self._sent.get(ext)
        if sent is not None:
            sent.resent = True

    def set_rtt(self, rtt: float | None) -> None:
        """The round-trip time from RTCP reports (None: use the feedback's own)."""
        self._rtt = rtt if rtt is None or rtt > 0 else None

    # --- feedback ---------------------------------------------------------------------------

    def receive_feedback(self, feedback: TwccFeedback, now: float) -> list[PacketResult]:
        """Take one transport-wide feedback from the peer; returns what it said about the
        packets we remember (for stats or tests)."""
        self.feedback_received += 1
        self._have_twcc = True
        if self._first_feedback_at is None:
            self._first_feedback_at = now
        reference = feedback.reference_time
        if self._reference is None:
            self._reference = reference
        else:
            delta = ((reference - self._reference + 0x800000) & 0xFFFFFF) - 0x800000
            self._reference += delta
        offset_us = (self._reference - reference) * 64_000
        highest = self._next_sequence - 1
        results: list[PacketResult] = []
        newest_send: float | None = None
        for sequence, arrival_us in feedback.arrival_times_us():
            ext = highest + (((sequence - highest + 0x8000) & 0xFFFF) - 0x8000)
            sent = self._sent.get(ext)
            if sent is None:
                self.unknown_feedback_packets += 1
                continue
            if arrival_us is None:
                if sent.reported == 0:
                    self._lost_in_run(ext, sent, now)
                    results.append(
                        PacketResult(ext, sent.send_time, sent.size, None, sent.probe_cluster)
                    )
                continue
            if sent.reported == 2:
                continue  # reported again (the receiver repeats after reordering)
            if self._run:
                self._judge_run(now)  # a packet arrived: the run of losses before it is over
            if sent.reported == 1:
                if not sent.resent:
                    self._loss_lost -= 1  # reported lost before, arrived late
            else:  # 0; or 3, a burst loss that was not counted, arrived late
                self._loss_expected += 1
            sent.reported = 2
            arrival = (arrival_us + offset_us) / 1_000_000
            if sent.send_time >= self._newest_delay_send:
                # Only packets in send order: a late one (a plain retransmission keeps its
                # transport-wide number and so the first send time) would look queued.
                self._newest_delay_send = sent.send_time
                self._note_delay(arrival - sent.send_time, now)
            results.append(
                PacketResult(ext, sent.send_time, sent.size, arrival, sent.probe_cluster)
            )
            if newest_send is None or sent.send_time > newest_send:
                newest_send = sent.send_time
        if newest_send is not None:
            sample = now - newest_send
            old = self._feedback_rtt
            self._feedback_rtt = sample if old is None else 0.9 * old + 0.1 * sample
        self._process(results, now)
        return results

    def _lost_in_run(self, ext: int, sent: _Sent, now: float) -> None:
        """A packet reported lost: it joins the current run of back-to-back losses, which is
        judged (burst or loss) when a packet after it arrives."""
        run = self._run
        if run and (ext != run[-1] + 1 or len(run) >= _MAX_RUN):
            self._judge_run(now)  # not back to back (or an outage): judge what came before
        sent.reported = 4
        run.append(ext)

    def _judge_run(self, now: float) -> None:
        run, self._run = self._run, []
        last = self._last_overuse
        bursts = self._bursts
        while bursts and (bursts[0][0] < now - _LOSS_WINDOW or len(bursts) > 1000):
            self._burst_packets -= bursts.popleft()[1]
        excused = self._burst_packets + len(run)
        seen = self._loss_window_expected + self._loss_expected + excused
        burst = (
            len(run) >= _BURST_RUN
            and (last is None or now - last > _BURST_CALM)
            and self._usage is not BandwidthUsage.OVERUSING
            and self._queue_delay < _BURST_QUEUE
            and excused <= _BURST_MAX_SHARE * seen
        )
        if burst:
            bursts.append((now, len(run)))
            self._burst_packets += len(run)
        for ext in run:
            sent = self._sent.get(ext)
            if sent is None or sent.reported != 4:
                continue  # forgotten, or it arrived meanwhile
            if burst:
                sent.reported = 3
                self.burst_losses += 1
            else:
                sent.reported = 1
                self._loss_lost += 1
                self._loss_expected += 1

    def _note_delay(self, delay: float, now: float) -> None:
        """The one-way delay of a received packet (arrival on the peer's clock minus send time
        on ours: only its changes mean anything): how far it is above the smallest of the last
        few seconds, i.e. how long the packet queued."""
        base = self._base_delay
        while base and base[-1][1] >= delay:
            base.pop()
        base.append((now, delay))
        while base[0][0] < now - _BASE_DELAY_WINDOW or len(base) > 1000:
            base.popleft()
        self._queue_delay = delay - base[0][1]

    def _process(self, results: list[PacketResult], now: float) -> None:
        received = sorted(
            (r for r in results if r.arrival_time is not None),
            key=lambda r: r.arrival_time or 0.0,
        )
        probe_rate: float | None = None
        for result in received:
            assert result.arrival_time is not None
            self._acked.add(result.arrival_time, result.size)
            deltas = self._inter_arrival.add(result.send_time, result.arrival_time, result.size)
            if deltas is not None:
                self._trendline.update(deltas[0], deltas[1], result.arrival_time)
            if result.probe_cluster is not None:
                probe = self._probes.add(result, now)
                if probe is not None:
                    rate, saturated = probe
                    # A recovery probe that saturated only shows the link is still where we
                    # are: taking its 95 % of the receive rate would stop a queue draining.
                    if not (saturated and result.probe_cluster in self._recovery_probes):
                        probe_rate = rate
        self._update_usage(now)
        self._update_delay_based(now, probe_rate)
        self._update_loss_based(now)
        loss_bitrate = self._loss_bitrate
        if (
            probe_rate is not None
            and loss_bitrate is not None
            and probe_rate > loss_bitrate
            and self._loss_fraction <= _LOSS_HIGH
        ):
            # A probe got through at more than the loss-based control holds: the loss is not
            # what limits the path (see _HOLD_PROBE_INTERVAL).
            self._loss_bitrate = probe_rate
        self._update_target(now)
        if probe_rate is not None:
            self._on_probe_result(probe_rate, now)

    def _update_usage(self, now: float) -> None:
        self._previous_usage = self._usage
        usage = self._trendline.state
        reports = self._queue_reports
        reports.append((now, self._queue_delay))
        if (
            usage is not BandwidthUsage.OVERUSING
            and len(reports) == _QUEUE_REPORTS
            and reports[0][1] > _QUEUE_OVERUSE / 2
            and reports[-1][1] > _QUEUE_OVERUSE
            and now - reports[0][0] >= _QUEUE_SPAN
            and all(b[1] - a[1] >= _QUEUE_GROWTH for a, b in itertools.pairwise(reports))
        ):
            usage = BandwidthUsage.OVERUSING
            self.queue_overuses += 1
            if self._usage is not BandwidthUsage.OVERUSING:
                self._queue_found = True
        elif usage is not BandwidthUsage.OVERUSING:
            self._queue_found = False
        self._usage = usage

    def _update_delay_based(self, now: float, probe_rate: float | None) -> None:
        aimd = self._aimd
        acked = self._acked.bitrate()
        usage = self._usage
        if usage is BandwidthUsage.OVERUSING:
            self._last_overuse = now
            if acked is not None:
                if aimd.time_to_reduce(now, acked, self.rtt):
                    base = acked
                    recent = self._acked.recent_bitrate()
                    if (
                        recent is not None
                        and recent < _RECENT_DROP * acked
                        and self._previous_usage is not usage
                        and self._queue_found
                    ):
                        # The first cut of an overuse only (the later ones see the queue
                        # drain, when arrivals are no longer at the bottleneck's rate), of one
                        # the standing queue revealed (a queue, so arrivals at the bottleneck's
                        # rate: on a lossy link without one, 100 ms of arrivals is noise that
                        # cut the estimate too deep), and not below half the longer window's:
                        # a hiccup of either host makes arrivals sparse for a moment.
                        base = max(recent, acked / 2)
                    aimd.update(usage, base, now, self.rtt, self._alr.active)
            elif aimd.time_to_reduce(now, None, self.rtt):
                aimd.set_estimate(aimd.bitrate / 2, now)
        elif probe_rate is not None and probe_rate > aimd.bitrate:
            aimd.set_estimate(probe_rate, now)
        else:
            aimd.update(usage, acked, now, self.rtt, self._alr.active)

    def _update_loss_based(self, now: float) -> None:
        # Loss over the last _LOSS_WINDOW of feedback, not per feedback: 20 packets at 5 %
        # loss often show none, and one lucky feedback must not lift the limit.
        window = self._loss_window
        window.append((now, self._loss_lost, self._loss_expected))
        self._loss_window_lost += self._loss_lost
        self._loss_window_expected += self._loss_expected
        self._loss_lost = self._loss_expected = 0
        while window and (window[0][0] < now - _LOSS_WINDOW or len(window) > 1000):
            _, lost, expected = window.popleft()
            self._loss_window_lost -= lost
            self._loss_window_expected -= expected
        if self._loss_window_expected < _LOSS_MIN_PACKETS:
            return
        self._loss_fraction = max(self._loss_window_lost, 0) / self._loss_window_expected
        self._loss_reported = True
        loss = self._loss_fraction
        current = self._estimate
        last_update, self._last_loss_update = self._last_loss_update, now
        if loss > _LOSS_LOW:
            self._low_loss_since = None
        elif self._low_loss_since is None:
            self._low_loss_since = now
        if self._in_start_phase(now) and loss <= _LOSS_HIGH:
            self._loss_bitrate = None
        elif loss <= _LOSS_LOW:
            low_since = self._low_loss_since
            assert low_since is not None
            if now - low_since >= _LOSS_WINDOW:
                # Low loss for a whole window: no limit, the delay-based estimate governs.
                self._loss_bitrate = None
            elif self._loss_bitrate is not None and last_update is not None:
                # §6: increase by 8 %/s meanwhile.
                dt = min(max(now - last_update, 0.0), 1.0)
                self._loss_bitrate *= math.pow(_ETA, dt)
        elif loss <= _LOSS_HIGH:
            if self._loss_bitrate is None:
                self._loss_bitrate = current  # hold where we are
        else:
            last = self._last_loss_decrease
            if last is None or now - last >= 0.3 + self.rtt:
                self._last_loss_decrease = now
                base = current if self._loss_bitrate is None else min(self._loss_bitrate, current)
                # Not below what the delay-based back-off would take (0.85 x the acknowledged
                # rate): when a queue overflows because we sent too much, the link still
                # delivered the acknowledged rate, and the window keeps that loss for a second,
                # so three or four cuts for one overflow took the estimate to half the link.
                acked = self._acked.bitrate()
                floor = self.min_bitrate if acked is None else min(base, _BETA * acked)
                self._loss_bitrate = max(base * (1 - 0.5 * loss), floor, self.min_bitrate)

    def _in_start_phase(self, now: float) -> bool:
        first = self._first_feedback_at
        return first is not None and now - first < _START_PHASE

    def _update_target(self, now: float) -> None:
        target = self._aimd.bitrate
        if self._loss_bitrate is not None:
            target = min(target, self._loss_bitrate)
        if self._remb is not None:
            target = min(target, self._remb)
        target = min(max(target, self.min_bitrate), self.max_bitrate)
        previous = self._estimate
        self._estimate = target
        peak = self._recent_peak(target, now)
        if target < _DROP_THRESHOLD * peak:
            self._note_drop(peak, now)
        elif self._drop_at is not None and target >= self._bitrate_before_drop_target():
            self._drop_at = None  # recovered
        if target != previous:
            capacity_drop = (
                self._usage is BandwidthUsage.OVERUSING
                and target < CAPACITY_DROP * previous
                and target < CAPACITY_DROP * self.sent_bitrate(now)
            )
            self._event = BandwidthEstimate(
                bitrate=int(target),
                delay_based=int(self._aimd.bitrate),
                loss_based=None if self._loss_bitrate is None else int(self._loss_bitrate),
                acknowledged=self.acknowledged_bitrate,
                loss_fraction=self._loss_fraction,
                usage=self._usage,
                in_alr=self._alr.active,
                capacity_drop=capacity_drop,
            )

    # --- REMB and RTCP loss (peers without transport-cc) ---------------------------------

    def receive_remb(self, bitrate: int, now: float) -> None:
        """A REMB from the peer: an upper limit on the estimate, and the delay-based estimate
        itself while the peer sends no transport-wide feedback."""
        self._remb = max(int(bitrate), self.min_bitrate)
        if not self._have_twcc:
            self._aimd.set_estimate(self._remb, now)
        self._update_target(now)

    def receive_loss_report(self, lost: int, expected: int, now: float) -> None:
        """Loss from RTCP receiver reports (the interval's lost and expected packets), used only
        while no transport-wide feedback arrives."""
        if self._have_twcc or expected <= 0:
            return
        self._loss_lost += max(0, min(lost, expected))
        self._loss_expected += expected
        if self._first_feedback_at is None:
            self._first_feedback_at = now
        self._update_loss_based(now)
        self._update_target(now)

    # --- probing ------------------------------------------------------------------------------

    def _new_probe(self, bitrate: float, now: float) -> None:
        bitrate = min(bitrate, self.max_bitrate)
        self._probe_id += 1
        cluster = ProbeCluster(
            self._probe_id, int(bitrate), max(1, int(bitrate * _PROBE_DURATION / 8))
        )
        self._probes.start(cluster, now)
        self._pending_probes.append(cluster)

    def _on_probe_result(self, rate: float, now: float) -> None:
        above = self._probe_further_above
        waiting = self._probe_waiting_until
        if above is None or waiting is None or now > waiting:
            return
        if rate >= above and self._estimate < self.max_bitrate:
            target = 2 * self._estimate
            self._probe_further_above = _PROBE_REPEAT_FRACTION * target
            self._probe_waiting_until = now + _PROBE_WAIT
            self._new_probe(target, now)

    def _note_drop(self, previous: float, now: float) -> None:
        before = self._bitrate_before_drop
        if self._drop_at is None or before is None or previous > before:
            self._bitrate_before_drop = previous
        if self._drop_at is None:
            self._next_recovery_probe = now + self.recovery_probe_interval
        self._drop_at = now

    def _recent_peak(self, target: float, now: float) -> float:
        # A monotonic deque: the largest estimate of the last _DROP_WINDOW seconds, in O(1).
        peaks = self._peaks
        while peaks and peaks[-1][1] <= target:
            peaks.pop()
        peaks.append((now, target))
        while peaks[0][0] < now - _DROP_WINDOW or len(peaks) > 1000:
            peaks.popleft()
        return peaks[0][1]

    def _bitrate_before_drop_target(self) -> float:
        before = self._bitrate_before_drop or 0.0
        return _RECOVERY_TARGET * before

    def get_timer(self) -> float | None:
        """When :meth:`probes_to_send` may have a probe (recovery or ALR) to start."""
        if not self.probing:
            return None
        times = [
            t
            for t in (self._next_recovery_probe, self._next_alr_probe, self._next_hold_probe)
            if t is not None
        ]
        if self._drop_at is None:
            times = [t for t in times if t != self._next_recovery_probe]
        return min(times, default=None)

    def handle_timer(self, now: float) -> list[ProbeCluster]:
        return self.probes_to_send(now)

    def probes_to_send(self, now: float) -> list[ProbeCluster]:
        """Probe clusters for the pacer to send now (empty when not probing)."""
        if not self.probing:
            return []
        if not self._started:
            self._started = True
            start = self._estimate
            self._new_probe(3 * start, now)
            self._new_probe(6 * start, now)
            self._probe_further_above = _PROBE_REPEAT_FRACTION * 6 * start
            self._probe_waiting_until = now + _PROBE_WAIT
        self._maybe_recovery_probe(now)
        self._maybe_alr_probe(now)
        self._maybe_hold_probe(now)
        out, self._pending_probes = self._pending_probes, []
        return out

    def _maybe_recovery_probe(self, now: float) -> None:
        # Our addition to libwebrtc's rule (which probes after a drop only in ALR): a link
        # whose capacity came back is found by a short probe, not by 8 %/s of AIMD.
        drop_at, due = self._drop_at, self._next_recovery_probe
        if drop_at is None or due is None or now < due:
            return
        if now - drop_at > self.recovery_probe_duration:
            self._drop_at = self._next_recovery_probe = None
            return
        self._next_recovery_probe = now + self.recovery_probe_interval
        if self._usage is not BandwidthUsage.NORMAL:
            return  # congested, or a queue still draining: a probe would only add to it
        target = self._bitrate_before_drop_target()
        if self._estimate < target:
            self._new_probe(min(target, 2 * self._estimate), now)
            self._recovery_probes.append(self._probe_id)

    def _holding(self) -> bool:
        """The loss-based control holds the estimate, on a path that shows no congestion."""
        return (
            self._loss_bitrate is not None
            and _LOSS_LOW < self._loss_fraction <= _LOSS_HIGH
            and self._usage is BandwidthUsage.NORMAL
            and self._queue_delay < _BURST_QUEUE
            and not self._alr.active
        )

    def _maybe_hold_probe(self, now: float) -> None:
        # The loss fraction (over a second) and the delay state flicker: the schedule runs
        # while the loss-based control limits the estimate, and each due probe goes out if
        # the path shows no congestion then.
        if self._loss_bitrate is None:
            self._next_hold_probe = None
            return
        due = self._next_hold_probe
        if due is None:
            self._next_hold_probe = now + _HOLD_PROBE_INTERVAL
        elif now >= due:
            self._next_hold_probe = now + _HOLD_PROBE_INTERVAL
            if self._holding():
                self._new_probe(2 * self._estimate, now)

    def _maybe_alr_probe(self, now: float) -> None:
        if not self._alr.active:
            self._next_alr_probe = None
            return
        if self._next_alr_probe is None:
            self._next_alr_probe = now + _ALR_PROBE_INTERVAL
        elif now >= self._next_alr_probe:
            self._next_alr_probe = now + _ALR_PROBE_INTERVAL
            self._new_probe(2 * self._estimate, now)
