"""The receiving half of an association: TSN bookkeeping for SACKs, reassembly of fragments,
ordered and unordered delivery per stream, FORWARD TSN (RFC 3758 §3.6) and incoming stream reset
(RFC 6525 §5.2.2).

Memory is bounded: every payload byte held here (fragments, messages waiting for an earlier
SSN, and delivered messages the application has not taken yet) counts against the receive
window we advertise. A peer that ignores the window gets its DATA dropped; the only exception is
the chunk that fills the next cumulative TSN (it can unblock delivery), and even that stops at
``receive_window + max_message_size``.
"""

from __future__ import annotations

from .chunks import FLAG_BEGIN, FLAG_END, FLAG_UNORDERED
from .events import MessageReceived, SctpEvent, StreamsReset
from .sender import unwrap_tsn

__all__ = ["ReceiveResult", "Receiver"]

#: Reset requests a receiver remembers having performed (each stream a peer closes adds one).
MAX_REMEMBERED_RESETS = 64

_MASK32 = 0xFFFFFFFF
# Gap Ack Block offsets are 16 bits (RFC 9260 §3.3.4): a TSN further ahead cannot be reported.
_MAX_TSN_AHEAD = 0xFFFF
_MAX_REPORTED_DUPLICATES = 32


class ReceiveResult:
    ACCEPTED = 0
    DUPLICATE = 1
    DROPPED = 2
    TOO_LARGE = 3


def _ssn_after(a: int, b: int) -> bool:
    """a > b in 16-bit serial number arithmetic."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class _InboundStream:
    __slots__ = ("fragments", "next_ssn", "ready")

    def __init__(self) -> None:
        self.next_ssn = 0
        # Fragments of incomplete messages by TSN: (flags, ssn, ppid, payload).
        self.fragments: dict[int, tuple[int, int, int, bytes]] = {}
        # Complete ordered messages waiting for an earlier SSN: ssn -> (ppid, data).
        self.ready: dict[int, tuple[int, bytes]] = {}


class _DeferredReset:
    __slots__ = ("held", "last_tsn", "request_sequence", "stream_ids")

    def __init__(self, request_sequence: int, last_tsn: int, stream_ids: frozenset[int]) -> None:
        self.request_sequence = request_sequence
        self.last_tsn = last_tsn
        self.stream_ids = stream_ids
        self.held: list[tuple[int, int, int, int, int, bytes]] = []


class Receiver:
    def __init__(
        self,
        *,
        initial_tsn: int,
        receive_window: int,
        max_message_size: int,
        events: list[SctpEvent],
    ) -> None:
        self.cumulative_tsn = initial_tsn - 1
        self.received_above: set[int] = set()
        self.duplicates: list[int] = []
        self.receive_window = receive_window
        self.max_message_size = max_message_size
        self.buffered = 0
        self._max_held = max(1024, receive_window // 64)
        self._streams: dict[int, _InboundStream] = {}
        self._events = events
        self._deferred: list[_DeferredReset] = []
        #: Request sequence numbers of the resets performed (RFC 6525 §5.2.2 answers a
        #: retransmitted request by them), the most recent ``MAX_REMEMBERED_RESETS``.
        self.performed_resets: dict[int, None] = {}

    # -- DATA ----------------------------------------------------------------------------------

    def a_rwnd(self) -> int:
        return max(0, self.receive_window - self.buffered)

    def receive_data(
        self, flags: int, wire_tsn: int, stream_id: int, ssn: int, ppid: int, payload: bytes
    ) -> int:
        cumulative = self.cumulative_tsn
        if wire_tsn == (cumulative + 1) & _MASK32:
            tsn = cumulative + 1  # the common case, without serial arithmetic
        else:
            tsn = unwrap_tsn(wire_tsn, cumulative)
        if tsn <= cumulative or tsn in self.received_above:
            if len(self.duplicates) < _MAX_REPORTED_DUPLICATES:
                self.duplicates.append(wire_tsn)
            return ReceiveResult.DUPLICATE
        if tsn - cumulative > _MAX_TSN_AHEAD:
            return ReceiveResult.DROPPED
        size = len(payload)
        buffered = self.buffered + size
        next_in_line = tsn == cumulative + 1
        if buffered > self.receive_window and (
            not next_in_line or buffered > self.receive_window + self.max_message_size
        ):
            return ReceiveResult.DROPPED
        if len(self.received_above) >= self._max_held and not next_in_line:
            return ReceiveResult.DROPPED
        if next_in_line:
            cumulative += 1
            above = self.received_above
            if above:
                while cumulative + 1 in above:
                    cumulative += 1
                    above.discard(cumulative)
            self.cumulative_tsn = cumulative
        else:
            self.received_above.add(tsn)
        self.buffered = buffered
        if self._deferred and self._hold_for_reset(tsn, flags, stream_id, ssn, ppid, payload):
            pass
        elif not self._deliver(tsn, flags, stream_id, ssn, ppid, payload):
            return ReceiveResult.TOO_LARGE
        if self._deferred and next_in_line and not self._perform_due_resets():
            return ReceiveResult.TOO_LARGE
        return ReceiveResult.ACCEPTED

    def _deliver(
        self, tsn: int, flags: int, stream_id: int, ssn: int, ppid: int, payload: bytes
    ) -> bool:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = _InboundStream()
        if flags & 3 == 3:
            # Fast path: an unfragmented message.
            if flags & FLAG_UNORDERED:
                self._events.append(MessageReceived(stream_id, ppid, payload, False))
            elif ssn == stream.next_ssn:
                self._events.append(MessageReceived(stream_id, ppid, payload))
                stream.next_ssn = (ssn + 1) & 0xFFFF
                if stream.ready:
                    self._drain_ready(stream_id, stream)
            else:
                self._park(stream, ssn, ppid, payload)
            return True
        fragments = stream.fragments
        fragments[tsn] = (flags, ssn, ppid, payload)
        # A message is complete only when its E fragment is present; unless this fragment ends
        # one or fills a hole before a later fragment, nothing can have completed.
        if not flags & FLAG_END and tsn + 1 not in fragments:
            return True
        first = tsn
        while not fragments[first][0] & FLAG_BEGIN:
            first -= 1
            if first not in fragments:
                return True
        last = tsn
        while not fragments[last][0] & FLAG_END:
            last += 1
            if last not in fragments:
                return True
        head_flags, head_ssn, head_ppid, _ = fragments[first]
        data = b"".join([fragments.pop(t)[3] for t in range(first, last + 1)])
        if len(data) > self.max_message_size:
            self.buffered -= len(data)
            return False
        if head_flags & FLAG_UNORDERED:
            self._events.append(MessageReceived(stream_id, head_ppid, data, False))
        elif head_ssn == stream.next_ssn:
            self._events.append(MessageReceived(stream_id, head_ppid, data))
            stream.next_ssn = (head_ssn + 1) & 0xFFFF
            if stream.ready:
                self._drain_ready(stream_id, stream)
        else:
            self._park(stream, head_ssn, head_ppid, data)
        return True

    def _park(self, stream: _InboundStream, ssn: int, ppid: int, data: bytes) -> None:
        if ssn in stream.ready or not _ssn_after(ssn, stream.next_ssn):
            # A second message with the same SSN, or one older than what was delivered: a
            # broken peer. Drop it but keep the window accounting straight.
            self.buffered -= len(data)
            return
        stream.ready[ssn] = (ppid, data)

    def _drain_ready(self, stream_id: int, stream: _InboundStream) -> None:
        ready = stream.ready
        ssn = stream.next_ssn
        while ssn in ready:
            ppid, data = ready.pop(ssn)
            self._events.append(MessageReceived(stream_id, ppid, data))
            ssn = (ssn + 1) & 0xFFFF
        stream.next_ssn = ssn

    def released(self, size: int) -> None:
        """The application took a delivered message: its bytes leave the window."""
        self.buffered -= size

    # -- SACK ----------------------------------------------------------------------------------

    def gap_blocks(self, limit: int) -> list[tuple[int, int]]:
        """Gap Ack Blocks (offsets from the cumulative TSN), at most ``limit`` of them."""
        if not self.received_above:
            return []
        base = self.cumulative_tsn
        blocks: list[tuple[int, int]] = []
        start = end = -1
        for tsn in sorted(self.received_above):
            offset = tsn - base
            if offset == end + 1:
                end = offset
                continue
            if start >= 0:
                blocks.append((start, end))
                if len(blocks) >= limit:
                    return blocks
            start = end = offset
        blocks.append((start, end))
        return blocks[:limit]

    def take_duplicates(self) -> list[int]:
        duplicates = self.duplicates
        self.duplicates = []
        return duplicates

    # -- FORWARD TSN (RFC 3758 §3.6) -----------------------------------------------------------

    def forward_tsn(self, wire_tsn: int, streams: list[tuple[int, int]]) -> None:
        new_cumulative = unwrap_tsn(wire_tsn, self.cumulative_tsn)
        if new_cumulative <= self.cumulative_tsn:
            return
        skipped = new_cumulative
        above = {tsn for tsn in self.received_above if tsn > new_cumulative}
        while new_cumulative + 1 in above:
            new_cumulative += 1
            above.discard(new_cumulative)
        self.received_above = above
        self.cumulative_tsn = new_cumulative
        # Fragments of abandoned messages will never complete: release them. Only up to the
        # FORWARD TSN's own value: fragments received above it belong to live messages.
        for inbound in self._streams.values():
            fragments = inbound.fragments
            if fragments:
                for tsn in [t for t in fragments if t <= skipped]:
                    self.buffered -= len(fragments.pop(tsn)[3])
        for stream_id, ssn in streams:
            stream = self._streams.setdefault(stream_id, _InboundStream())
            if not _ssn_after(stream.next_ssn, ssn):
                # Skip every SSN up to and including the abandoned one.
                for old in [s for s in stream.ready if not _ssn_after(s, ssn)]:
                    self.buffered -= len(stream.ready.pop(old)[1])
                stream.next_ssn = (ssn + 1) & 0xFFFF
                self._drain_ready(stream_id, stream)
        if self._deferred:
            self._perform_due_resets()

    # -- incoming stream reset (RFC 6525 §5.2.2) -----------------------------------------------

    def request_reset(
        self, request_sequence: int, wire_last_tsn: int, stream_ids: list[int]
    ) -> bool:
        """Reset the peer's outgoing streams now, or defer until ``last_tsn`` arrived (E2).

        Returns True when performed now. A deferred reset emits its StreamsReset event later.
        """
        last_tsn = unwrap_tsn(wire_last_tsn, self.cumulative_tsn)
        targets = frozenset(stream_ids) if stream_ids else frozenset(self._streams)
        if last_tsn <= self.cumulative_tsn:
            self._reset(request_sequence, targets)
            return True
        for deferred in self._deferred:
            if deferred.request_sequence == request_sequence:
                return False
        self._deferred.append(_DeferredReset(request_sequence, last_tsn, targets))
        return False

    def _reset(self, request_sequence: int, stream_ids: frozenset[int]) -> None:
        for stream_id in stream_ids:
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                for _, _, _, payload in stream.fragments.values():
                    self.buffered -= len(payload)
                for _, data in stream.ready.values():
                    self.buffered -= len(data)
        resets = self.performed_resets
        resets[request_sequence] = None
        if len(resets) > MAX_REMEMBERED_RESETS:
            del resets[next(iter(resets))]
        self._events.append(StreamsReset(tuple(sorted(stream_ids)), incoming=True))

    def _hold_for_reset(
        self, tsn: int, flags: int, stream_id: int, ssn: int, ppid: int, payload: bytes
    ) -> bool:
        """E2: data after the last assigned TSN on a stream being reset waits for the reset."""
        for deferred in self._deferred:
            if tsn > deferred.last_tsn and stream_id in deferred.stream_ids:
                deferred.held.append((tsn, flags, stream_id, ssn, ppid, payload))
                return True
        return False

    def _perform_due_resets(self) -> bool:
        ok = True
        while self._deferred and self._deferred[0].last_tsn <= self.cumulative_tsn:
            deferred = self._deferred.pop(0)
            self._reset(deferred.request_sequence, deferred.stream_ids)
            for tsn, flags, stream_id, ssn, ppid, payload in deferred.held:
                if self._deferred and self._hold_for_reset(
                    tsn, flags, stream_id, ssn, ppid, payload
                ):
                    continue
                ok = self._deliver(tsn, flags, stream_id, ssn, ppid, payload) and ok
        return ok
