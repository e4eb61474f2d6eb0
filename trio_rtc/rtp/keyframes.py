"""Key frame requests both ways: PLI (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1), rate-limited.

Pure: no trio, no clock, no I/O.

* :class:`KeyframeRequester` (receiving side): the decoder, the NACK generator or the user asks
  for a key frame of a remote SSRC as often as it likes; a request goes out at most once per
  ``min_interval`` per SSRC, and a request made inside the interval is not lost but sent when
  the interval ends. It also numbers FIR requests: RFC 5104 §4.3.1.2 wants the sequence number
  incremented for each new request and kept for a repetition of the same request.
* :class:`KeyframeResponder` (sending side): a burst of requests (a PLI from every receiver
  behind an SFU, a PLI and a FIR together, the repetitions of one FIR) yields one key frame:
  the first request is answered at once, the others within ``hold_off`` seconds of it are
  folded into it, and a FIR repeating a sequence number already answered is ignored.
"""

from __future__ import annotations

import attrs

from .rtcp_feedback import FirEntry

__all__ = ["KeyframeRequester", "KeyframeResponder"]

#: Requests per remote SSRC at most once per this many seconds (libwebrtc waits ~200-300 ms).
MIN_REQUEST_INTERVAL = 0.3
#: Requests within this long of the last key frame we started are answered by it.
HOLD_OFF = 0.3
#: Remote SSRCs tracked by one requester; a peer's new SSRCs beyond this evict the oldest.
MAX_SSRCS = 64


@attrs.define(slots=True)
class _RequestState:
    last_sent: float | None = None
    pending: bool = False
    fir_sequence: int = 0


class KeyframeRequester:
    """When to send PLI/FIR for each remote media SSRC."""

    __slots__ = ("_ssrcs", "min_interval", "requests_sent", "requests_suppressed")

    def __init__(self, *, min_interval: float = MIN_REQUEST_INTERVAL) -> None:
        self.min_interval = min_interval
        self._ssrcs: dict[int, _RequestState] = {}
        self.requests_sent = 0
        #: Requests folded into one already sent or pending.
        self.requests_suppressed = 0

    def _state(self, ssrc: int) -> _RequestState:
        state = self._ssrcs.get(ssrc)
        if state is None:
            while len(self._ssrcs) >= MAX_SSRCS:
                del self._ssrcs[next(iter(self._ssrcs))]
            state = self._ssrcs[ssrc] = _RequestState()
        return state

    def forget(self, ssrc: int) -> None:
        """The stream ended (BYE, renegotiation)."""
        self._ssrcs.pop(ssrc, None)

    def request_keyframe(self, ssrc: int, now: float) -> None:
        """Ask for a key frame of ``ssrc``; :meth:`requests_to_send` says when to send it."""
        state = self._state(ssrc)
        if state.pending:
            self.requests_suppressed += 1
            return
        state.pending = True

    def get_timer(self) -> float | None:
        deadline: float | None = None
        for state in self._ssrcs.values():
            if state.pending:
                at = 0.0 if state.last_sent is None else state.last_sent + self.min_interval
                if deadline is None or at < deadline:
                    deadline = at
        return deadline

    def requests_to_send(self, now: float) -> list[int]:
        """The SSRCs to send a PLI (or FIR, with :meth:`fir_entry`) for now."""
        out: list[int] = []
        for ssrc, state in self._ssrcs.items():
            if not state.pending:
                continue
            if state.last_sent is not None and now - state.last_sent < self.min_interval:
                continue
            state.pending = False
            state.last_sent = now
            state.fir_sequence = (state.fir_sequence + 1) & 0xFF
            out.append(ssrc)
        self.requests_sent += len(out)
        return out

    def fir_entry(self, ssrc: int) -> FirEntry:
        """The FIR entry for the request last returned by :meth:`requests_to_send` for ``ssrc``
        (a repetition of that request carries the same number)."""
        return FirEntry(ssrc, self._state(ssrc).fir_sequence)


class KeyframeResponder:
    """Whether a received PLI/FIR for one of our SSRCs should make the encoder send a key frame."""

    __slots__ = ("_fir_seen", "_last_keyframe", "hold_off", "requests_folded", "requests_received")

    def __init__(self, *, hold_off: float = HOLD_OFF) -> None:
        self.hold_off = hold_off
        self._last_keyframe: float | None = None
        #: The last FIR sequence number answered, per requesting SSRC (bounded by MAX_SSRCS).
        self._fir_seen: dict[int, int] = {}
        self.requests_received = 0
        self.requests_folded = 0

    def receive_pli(self, now: float) -> bool:
        """A PLI arrived: True when the encoder should start a key frame now."""
        self.requests_received += 1
        return self._answer(now)

    def receive_fir(self, requester_ssrc: int, sequence_number: int, now: float) -> bool:
        """A FIR entry for our SSRC arrived from ``requester_ssrc``: True when the encoder
        should start a key frame now. A repeated sequence number is the same request
        (RFC 5104 §4.3.1.2) and is not answered again."""
        self.requests_received += 1
        seen = self._fir_seen
        if seen.get(requester_ssrc) == sequence_number:
            self.requests_folded += 1
            return False
        if requester_ssrc not in seen:
            while len(seen) >= MAX_SSRCS:
                del seen[next(iter(seen))]
        seen[requester_ssrc] = sequence_number
        return self._answer(now)

    def on_keyframe_sent(self, now: float) -> None:
        """The encoder produced a key frame on its own (start, resolution change): requests
        within ``hold_off`` are answered by it."""
        self._last_keyframe = now

    def _answer(self, now: float) -> bool:
        last = self._last_keyframe
        if last is not None and now - last < self.hold_off:
            self.requests_folded += 1
            return False
        self._last_keyframe = now
        return True
