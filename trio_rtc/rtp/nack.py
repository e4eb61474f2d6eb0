"""The receive side of generic NACK (RFC 4585 §6.2.1): which media packets to ask again for, and
when.

Pure: no trio, no clock, no I/O. One :class:`NackGenerator` per received media SSRC. The driver
calls :meth:`NackGenerator.receive_packet` with the 16-bit sequence number of every packet of the
stream (and of every packet recovered from RTX, with ``recovered=True``), calls
:meth:`NackGenerator.nacks_to_send` when :meth:`NackGenerator.get_timer` has passed (or after
feeding a batch), and turns the numbers into ``GenericNack.from_lost(...)``.

Timing:

* A gap is not asked for at once: packets arrive slightly reordered on real paths, so a missing
  packet is first requested ``reorder_delay`` after the gap was seen (or at once when it is
  already ``reorder_packets`` behind the newest). With ``wait_after_reordering`` the delay
  applies only once the stream has shown reordering (a packet taken as missing arrived
  before it was asked for), as libwebrtc waits only on paths that reorder: on one that does
  not, the wait only added to every repair.
* A request is repeated every ``max(rtt, min_retry_interval)`` (the retransmission cannot have
  arrived sooner), until the packet arrives, ``max_retries`` requests were sent or the packet is
  ``max_age`` seconds missing: then it is given up (the jitter buffer has moved on).
* The repeat waits at least as long as retransmissions have been taking: the time from a
  request to the arrival of its packet (only packets asked for once, so that a sample is never
  matched with the wrong request) is smoothed, and the repeat waits that plus a margin when it
  is longer than the RTT. The RTT alone leaves out the sender's turnaround and its pacer: a
  repeat sent at exactly one RTT reached the sender a few ms before the resend it asked about
  could have arrived, so a sender that does not answer a repeat within one RTT of its resend
  (libwebrtc, and :class:`~trio_rtc.rtp.repair.Retransmitter`) took it or dropped it by chance,
  and a lost resend cost two RTTs more instead of one.
* With ``retry_needs_arrival``, a repeat is sent only once some packet of the stream has arrived
  since the previous request: while nothing arrives (a loss burst on the forward path) another
  request would only have the sender resend into the same hole, and with a short RTT the
  retries ran out within the burst (ten in 100 ms) so that the packets were given up for good.
  The first packet after the burst releases every repeat that is due.

Bounds: at most ``max_missing`` sequence numbers are tracked. A larger gap (a burst loss, or a
peer jumping its sequence numbers) is not NACKed packet by packet: the list is cleared and a key
frame is asked for instead (:meth:`NackGenerator.take_keyframe_request`), as libwebrtc does.
"""

from __future__ import annotations

import attrs

from .sequence import SequenceUnwrapper

__all__ = ["NackCounters", "NackGenerator"]

REORDER_DELAY = 0.010
REORDER_PACKETS = 16
MIN_RETRY_INTERVAL = 0.010
DEFAULT_RTT = 0.100
MAX_RETRIES = 10
MAX_AGE = 1.0
MAX_MISSING = 1000
#: A jump forward larger than this is a new sequence-number space, not a loss.
MAX_GAP = 10_000
#: Smoothing of the request -> retransmission delay (as RFC 6298 smooths an RTT).
_REPAIR_GAIN = 0.25
#: A repeat waits the smoothed repair delay times this, plus REPAIR_MARGIN.
REPAIR_FACTOR = 1.1
REPAIR_MARGIN = 0.005


@attrs.define(slots=True)
class _Missing:
    detected_at: float
    sent_at: float | None = None
    retries: int = 0
    #: The newest packet of the stream when the request was sent (``retry_needs_arrival``).
    arrivals_at_request: int = 0


@attrs.define
class NackCounters:
    """``nack_requests``: sequence numbers asked for (counting repeats); ``nack_packets``: NACK
    messages (calls of :meth:`NackGenerator.nacks_to_send` that returned numbers; the W3C
    inbound-rtp ``nackCount``)."""

    nack_packets: int = 0
    nack_requests: int = 0
    recovered: int = 0
    late_arrivals: int = 0
    given_up: int = 0
    keyframe_requests: int = 0
    overflows: int = 0


class NackGenerator:
    """The missing packets of one received stream and the NACKs that ask for them."""

    __slots__ = (
        "_arrivals",
        "_highest",
        "_keyframe_wanted",
        "_missing",
        "_reordered",
        "_repair_delay",
        "_unwrapper",
        "counters",
        "max_age",
        "max_missing",
        "max_retries",
        "min_retry_interval",
        "reorder_delay",
        "reorder_packets",
        "retry_needs_arrival",
        "rtt",
        "wait_after_reordering",
    )

    def __init__(
        self,
        *,
        retry_needs_arrival: bool = False,
        wait_after_reordering: bool = False,
        reorder_delay: float = REORDER_DELAY,
        reorder_packets: int = REORDER_PACKETS,
        min_retry_interval: float = MIN_RETRY_INTERVAL,
        max_retries: int = MAX_RETRIES,
        max_age: float = MAX_AGE,
        max_missing: int = MAX_MISSING,
        rtt: float = DEFAULT_RTT,
    ) -> None:
        if max_missing < 1 or max_retries < 1:
            raise ValueError("NACK bounds must be positive")
        self.reorder_delay = reorder_delay
        self.reorder_packets = reorder_packets
        self.min_retry_interval = min_retry_interval
        self.max_retries = max_retries
        self.max_age = max_age
        self.max_missing = max_missing
        self.rtt = rtt
        self.retry_needs_arrival = retry_needs_arrival
        self.wait_after_reordering = wait_after_reordering
        #: A packet taken as missing arrived before it was asked for.
        self._reordered = False
        #: Packets received so far (any: new, late or recovered), to tell a silent path.
        self._arrivals = 0
        #: Smoothed seconds from a request to its packet's arrival; None before a sample.
        self._repair_delay: float | None = None
        self._unwrapper = SequenceUnwrapper()
        self._highest: int | None = None
        #: extended sequence number -> state; insertion order is sequence order.
        self._missing: dict[int, _Missing] = {}
        self._keyframe_wanted = False
        self.counters = NackCounters()

    def __len__(self) -> int:
        return len(self._missing)

    @property
    def missing(self) -> list[int]:
        """The 16-bit sequence numbers currently missing, oldest first."""
        return [ext & 0xFFFF for ext in self._missing]

    def set_rtt(self, rtt: float | None) -> None:
        if rtt is not None and rtt > 0:
            self.rtt = rtt

    @property
    def repair_delay(self) -> float | None:
        """Smoothed seconds from a request to the arrival of the packet it asked for."""
        return self._repair_delay

    @property
    def retry_interval(self) -> float:
        """Seconds between two requests for the same packet."""
        return self._retry_interval()

    def receive_packet(
        self, sequence_number: int, now: float, *, recovered: bool = False, keyframe: bool = False
    ) -> None:
        """A packet of the stream arrived (``recovered``: from RTX). ``keyframe``: it starts a
        key frame, so nothing before it is needed any more."""
        ext = self._unwrapper.unwrap(sequence_number & 0xFFFF)
        highest = self._highest
        missing = self._missing
        self._arrivals += 1
        if highest is None:
            self._highest = ext
            return
        if ext <= highest:
            entry = missing.pop(ext, None)
            if entry is not None:
                if recovered:
                    self.counters.recovered += 1
                else:
                    self.counters.late_arrivals += 1
                    if entry.sent_at is None:
                        self._reordered = True
                if entry.retries == 1 and entry.sent_at is not None and now >= entry.sent_at:
                    self._learn_repair_delay(now - entry.sent_at)
            if keyframe:
                self._clear_before(ext)
            return
        if recovered:
            # RTX never carries packets we have not seen a successor of, unless the peer
            # retransmits unasked; do not let it move the stream forward.
            return
        gap = ext - highest - 1
        self._highest = ext
        if keyframe:
            self._clear_before(ext)
            return
        if gap == 0:
            return
        if gap > MAX_GAP or len(missing) + gap > self.max_missing:
            # RFC 4585 §3.5.3 leaves this to the receiver: repairing so much by NACK would only
            # add load; a key frame is the cheaper repair.
            self.counters.overflows += 1
            missing.clear()
            self._ask_keyframe()
            return
        for seq in range(highest + 1, ext):
            missing[seq] = _Missing(now)

    def _clear_before(self, ext: int) -> None:
        missing = self._missing
        for seq in [s for s in missing if s < ext]:
            del missing[seq]

    def _ask_keyframe(self) -> None:
        if not self._keyframe_wanted:
            self.counters.keyframe_requests += 1
        self._keyframe_wanted = True

    def take_keyframe_request(self) -> bool:
        """True once after the generator gave up on NACK and wants a key frame instead (feed
        it to the PLI limiter of :mod:`trio_rtc.rtp.keyframes`)."""
        wanted, self._keyframe_wanted = self._keyframe_wanted, False
        return wanted

    def _learn_repair_delay(self, sample: float) -> None:
        old = self._repair_delay
        self._repair_delay = sample if old is None else old + _REPAIR_GAIN * (sample - old)

    def _retry_interval(self) -> float:
        interval = max(self.rtt, self.min_retry_interval)
        repair = self._repair_delay
        if repair is not None:
            interval = max(interval, repair * REPAIR_FACTOR + REPAIR_MARGIN)
        return interval

    def _due(self, ext: int, entry: _Missing) -> float | None:
        """When the next request for ``ext`` is due; None while it waits for an arrival."""
        if entry.sent_at is None:
            highest = self._highest
            assert highest is not None
            if highest - ext >= self.reorder_packets:
                return entry.detected_at
            if self.wait_after_reordering and not self._reordered:
                return entry.detected_at
            return entry.detected_at + self.reorder_delay
        if self.retry_needs_arrival and self._arrivals == entry.arrivals_at_request:
            return None
        return entry.sent_at + self._retry_interval()

    def get_timer(self) -> float | None:
        """When :meth:`nacks_to_send` next has something to do (a request or a give-up)."""
        deadline: float | None = None
        for ext, entry in self._missing.items():
            at = entry.detected_at + self.max_age
            due = self._due(ext, entry)
            if due is not None and due < at:
                at = due
            if deadline is None or at < deadline:
                deadline = at
        return deadline

    def handle_timer(self, now: float) -> list[int]:
        """Same as :meth:`nacks_to_send`."""
        return self.nacks_to_send(now)

    def nacks_to_send(self, now: float) -> list[int]:
        """The 16-bit sequence numbers to NACK now (oldest first); gives up on stale ones."""
        out: list[int] = []
        gave_up: list[int] = []
        for ext, entry in self._missing.items():
            if now - entry.detected_at >= self.max_age:
                gave_up.append(ext)
                continue
            due = self._due(ext, entry)
            if due is not None and now >= due:
                if entry.retries >= self.max_retries:
                    # The last request had its retry interval to be answered.
                    gave_up.append(ext)
                    continue
                entry.sent_at = now
                entry.retries += 1
                entry.arrivals_at_request = self._arrivals
                out.append(ext & 0xFFFF)
        for ext in gave_up:
            del self._missing[ext]
        self.counters.given_up += len(gave_up)
        if out:
            self.counters.nack_packets += 1
            self.counters.nack_requests += len(out)
        return out
