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
  already ``reorder_packets`` behind the newest).
* A request is repeated every ``max(rtt, min_retry_interval)`` (the retransmission cannot have
  arrived sooner), until the packet arrives, ``max_retries`` requests were sent or the packet is
  ``max_age`` seconds missing: then it is given up (the jitter buffer has moved on).

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


@attrs.define(slots=True)
class _Missing:
    detected_at: float
    sent_at: float | None = None
    retries: int = 0


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
        "_highest",
        "_keyframe_wanted",
        "_missing",
        "_unwrapper",
        "counters",
        "max_age",
        "max_missing",
        "max_retries",
        "min_retry_interval",
        "reorder_delay",
        "reorder_packets",
        "rtt",
    )

    def __init__(
        self,
        *,
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

    def receive_packet(
        self, sequence_number: int, now: float, *, recovered: bool = False, keyframe: bool = False
    ) -> None:
        """A packet of the stream arrived (``recovered``: from RTX). ``keyframe``: it starts a
        key frame, so nothing before it is needed any more."""
        ext = self._unwrapper.unwrap(sequence_number & 0xFFFF)
        highest = self._highest
        missing = self._missing
        if highest is None:
            self._highest = ext
            return
        if ext <= highest:
            if missing.pop(ext, None) is not None:
                if recovered:
                    self.counters.recovered += 1
                else:
                    self.counters.late_arrivals += 1
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

    def _retry_interval(self) -> float:
        return max(self.rtt, self.min_retry_interval)

    def _due(self, ext: int, entry: _Missing) -> float:
        if entry.sent_at is None:
            highest = self._highest
            assert highest is not None
            if highest - ext >= self.reorder_packets:
                return entry.detected_at
            return entry.detected_at + self.reorder_delay
        return entry.sent_at + self._retry_interval()

    def get_timer(self) -> float | None:
        """When :meth:`nacks_to_send` next has something to do (a request or a give-up)."""
        deadline: float | None = None
        for ext, entry in self._missing.items():
            at = min(self._due(ext, entry), entry.detected_at + self.max_age)
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
            if now >= self._due(ext, entry):
                if entry.retries >= self.max_retries:
                    # The last request had its retry interval to be answered.
                    gave_up.append(ext)
                    continue
                entry.sent_at = now
                entry.retries += 1
                out.append(ext & 0xFFFF)
        for ext in gave_up:
            del self._missing[ext]
        self.counters.given_up += len(gave_up)
        if out:
            self.counters.nack_packets += 1
            self.counters.nack_requests += len(out)
        return out
