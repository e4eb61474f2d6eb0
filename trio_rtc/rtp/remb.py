"""Receive-side bandwidth estimation, reported to the sender as REMB
(draft-alvestrand-rmcat-remb-03), for peers that negotiate ``goog-remb`` and not transport-wide
congestion control (aiortc, older stacks): they cannot learn the link's capacity from anything
else, and without it keep sending at whatever rate they started with.

Pure: no trio, no clock, no I/O; ``now`` and arrival times are seconds on any monotonic clock.
The driver:

* hands every received media packet that carries the abs-send-time header extension
  (``http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time``, the sender's clock as 6.18
  fixed-point seconds) to :meth:`ReceiveSideEstimator.on_packet`, with its arrival time, size
  on the wire and SSRC;
* passes RTT measurements to :meth:`~ReceiveSideEstimator.set_rtt`;
* wakes at :meth:`~ReceiveSideEstimator.get_timer` for :meth:`~ReceiveSideEstimator.handle_timer`,
  and after each burst of packets asks :meth:`~ReceiveSideEstimator.remb_to_send` whether a REMB
  is due, sending the bitrate and SSRCs it returns.

The delay-based pieces are those of the send-side estimator (:mod:`trio_rtc.rtp.gcc`, the
draft-ietf-rmcat-gcc-02 §5 half): packets grouped in 5 ms bursts of send time, the trendline
filter with its adaptive threshold, and the AIMD controller around the incoming bitrate. What
differs is where the times come from (the abs-send-time stamp and our arrival clock instead of
transport-wide feedback) and that the incoming bitrate is measured here.

The estimate becomes valid after ``INITIALIZATION_TIME`` of incoming data (then it starts at the
incoming bitrate), or at the first overuse. REMB timing follows libwebrtc's: at once when the
estimate falls 3 % below the last one sent, otherwise at most every 200 ms while it changes and
once a second when it holds. A stream heard from for ``STREAM_TIMEOUT`` is dropped from the list.
Memory is bounded: ``MAX_STREAMS`` SSRCs, a one-second window of packets capped at
``MAX_WINDOW_PACKETS``.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from .gcc import MAX_BITRATE, MIN_BITRATE, BandwidthUsage, _Aimd, _InterArrival, _Trendline

__all__ = ["ReceiveSideEstimator"]

#: The incoming bitrate is measured over this window (seconds of arrival time).
RATE_WINDOW = 1.0
#: Packets kept in that window at most (a flood cannot grow it without bound).
MAX_WINDOW_PACKETS = 16_384
#: Seconds of incoming data before the estimate starts at the incoming bitrate.
INITIALIZATION_TIME = 1.0
#: The AIMD controller runs at least this often while packets arrive.
UPDATE_INTERVAL = 0.2
#: REMB timing: a fall of more than 3 % goes at once; otherwise at most every 200 ms, and at
#: least once a second while the estimate is valid.
REMB_DECREASE = 0.97
REMB_MIN_INTERVAL = 0.2
REMB_MAX_INTERVAL = 1.0
#: A stream silent this long is no longer listed in the REMB.
STREAM_TIMEOUT = 2.0
#: SSRCs remembered at most (the oldest is forgotten first).
MAX_STREAMS = 64
_DEFAULT_RTT = 0.1
#: abs-send-time: 24 bits, 18 of them fraction (RTP header extension, 64 s wrap).
_WRAP = 1 << 24
_HALF = 1 << 23
_UNITS_PER_SECOND = float(1 << 18)


class ReceiveSideEstimator:
    """The REMB estimate for everything one transport receives with abs-send-time.

    ``min_bitrate`` and ``max_bitrate`` bound the estimate (bits/s).
    """

    __slots__ = (
        "_aimd",
        "_first_arrival",
        "_inter_arrival",
        "_last_raw",
        "_last_send",
        "_last_update",
        "_rate_bytes",
        "_rate_samples",
        "_rtt",
        "_sent_at",
        "_sent_bitrate",
        "_streams",
        "_trendline",
        "max_bitrate",
        "min_bitrate",
        "packets",
    )

    def __init__(self, *, min_bitrate: int = MIN_BITRATE, max_bitrate: int = MAX_BITRATE) -> None:
        if not 0 < min_bitrate <= max_bitrate:
            raise ValueError(
                f"min_bitrate {min_bitrate} and max_bitrate {max_bitrate}: need 0 < min <= max"
            )
        self.min_bitrate = min_bitrate
        self.max_bitrate = max_bitrate
        self._inter_arrival = _InterArrival()
        self._trendline = _Trendline()
        self._aimd: _Aimd | None = None
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._rate_bytes = 0
        self._first_arrival: float | None = None
        self._last_raw: int | None = None
        self._last_send = 0.0
        self._last_update: float | None = None
        self._rtt = _DEFAULT_RTT
        self._streams: OrderedDict[int, float] = OrderedDict()
        self._sent_at: float | None = None
        self._sent_bitrate: int | None = None
        #: Packets taken into the estimate.
        self.packets = 0

    # --- input ---------------------------------------------------------------------------------

    def set_rtt(self, rtt: float | None) -> None:
        if rtt is not None and rtt > 0:
            self._rtt = rtt

    def on_packet(self, abs_send_time: int, arrival: float, size: int, ssrc: int) -> None:
        """One received packet: its raw abs-send-time (0 .. 2**24-1), arrival time, size in
        bytes on the wire and SSRC."""
        raw = abs_send_time % _WRAP
        last = self._last_raw
        if last is None:
            send = 0.0
        else:
            delta = (raw - last) % _WRAP
            if delta >= _HALF:
                delta -= _WRAP  # sent before the previous packet: reordered
            send = self._last_send + delta / _UNITS_PER_SECOND
        self._last_raw = raw
        self._last_send = send
        self.packets += 1

        streams = self._streams
        if ssrc in streams:
            streams.move_to_end(ssrc)
        elif len(streams) >= MAX_STREAMS:
            streams.popitem(last=False)
        streams[ssrc] = arrival

        self._add_rate(arrival, size)
        if self._first_arrival is None:
            self._first_arrival = arrival

        deltas = self._inter_arrival.add(send, arrival, size)
        if deltas is not None:
            self._trendline.update(deltas[0], deltas[1], arrival)
            if self._trendline.state is BandwidthUsage.OVERUSING:
                incoming = self.incoming_bitrate(arrival)
                aimd = self._aimd
                if incoming is not None and (
                    aimd is None or aimd.time_to_reduce(arrival, incoming, self._rtt)
                ):
                    self._update(arrival)
                return
        if self._last_update is None or arrival - self._last_update >= UPDATE_INTERVAL:
            self._update(arrival)

    def _add_rate(self, arrival: float, size: int) -> None:
        samples = self._rate_samples
        if samples and arrival < samples[-1][0]:
            arrival = samples[-1][0]  # keep the window monotonic
        samples.append((arrival, size))
        self._rate_bytes += size
        self._trim_rate(arrival)

    def _trim_rate(self, now: float) -> None:
        samples = self._rate_samples
        start = now - RATE_WINDOW
        while samples and (samples[0][0] <= start or len(samples) > MAX_WINDOW_PACKETS):
            self._rate_bytes -= samples.popleft()[1]

    def incoming_bitrate(self, now: float) -> float | None:
        """Bits/s received over the last second; None before half a second of data."""
        self._trim_rate(now)
        first = self._first_arrival
        if first is None or not self._rate_samples or now - first < RATE_WINDOW / 2:
            return None
        span = min(now - first, RATE_WINDOW)
        return self._rate_bytes * 8 / span

    # --- the controller ------------------------------------------------------------------------

    def _update(self, now: float) -> None:
        self._last_update = now
        incoming = self.incoming_bitrate(now)
        usage = self._trendline.state
        aimd = self._aimd
        if aimd is None:
            first = self._first_arrival
            started = first is not None and now - first >= INITIALIZATION_TIME
            if incoming is None or not (started or usage is BandwidthUsage.OVERUSING):
                return
            aimd = self._aimd = _Aimd(incoming, self.min_bitrate, self.max_bitrate)
            aimd.set_estimate(incoming, now)
        aimd.update(usage, incoming, now, self._rtt, False)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is due: the periodic update while packets arrive, or the
        REMB that repeats the estimate once a second."""
        if self._last_update is None:
            return None
        due = self._last_update + UPDATE_INTERVAL
        if self._sent_at is not None:
            due = min(due, self._sent_at + REMB_MAX_INTERVAL)
        return due

    def handle_timer(self, now: float) -> None:
        """Run the controller if no packet ran it lately (the link may have gone quiet: the
        incoming bitrate falls, and so does what the estimate may grow to)."""
        if self._last_update is not None and now - self._last_update >= UPDATE_INTERVAL:
            self._update(now)

    # --- output --------------------------------------------------------------------------------

    @property
    def estimate(self) -> int | None:
        """The current estimate in bits/s, None until it is valid."""
        aimd = self._aimd
        return None if aimd is None else int(aimd.bitrate)

    def ssrcs(self, now: float) -> list[int]:
        """The SSRCs heard from within ``STREAM_TIMEOUT``, oldest first."""
        streams = self._streams
        for ssrc in [s for s, last in streams.items() if now - last > STREAM_TIMEOUT]:
            del streams[ssrc]
        return list(streams)

    def remb_to_send(self, now: float) -> tuple[int, list[int]] | None:
        """``(bitrate, ssrcs)`` when a REMB is due now, else None (it is then counted as sent)."""
        bitrate = self.estimate
        if bitrate is None:
            return None
        last_at, last_bitrate = self._sent_at, self._sent_bitrate
        if last_at is not None and last_bitrate is not None:
            elapsed = now - last_at
            falling = bitrate < REMB_DECREASE * last_bitrate
            changed = bitrate != last_bitrate and elapsed >= REMB_MIN_INTERVAL
            if not (falling or changed or elapsed >= REMB_MAX_INTERVAL):
                return None
        ssrcs = self.ssrcs(now)
        if not ssrcs:
            return None
        self._sent_at, self._sent_bitrate = now, bitrate
        return bitrate, ssrcs
