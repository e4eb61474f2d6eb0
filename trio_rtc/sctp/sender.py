"""The sending half of an association: fragmentation, TSN/SSN assignment, SACK processing,
retransmission (T3-rtx and fast retransmit), and partial reliability (RFC 9260 §6, §7;
RFC 3758).

TSNs are kept *unwrapped* (plain Python ints that never wrap); only the wire carries them modulo
2**32. A TSN is assigned when a message is queued, so fragments of one message get consecutive
TSNs as RFC 9260 §6.9 requires and the RE-CONFIG "sender's last assigned TSN" is simply
``next_tsn - 1``.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

from .chunks import (
    DATA_HEADER,
    DATA_HEADER_SIZE,
    FLAG_BEGIN,
    FLAG_END,
    FLAG_UNORDERED,
    ChunkType,
    ForwardTsnChunk,
    SackChunk,
)
from .congestion import CongestionControl, RtoEstimator

__all__ = ["OutboundChunk", "Sender"]

_MASK32 = 0xFFFFFFFF
# A plain int: packing an IntEnum member goes through __index__ on every message.
_DATA = int(ChunkType.DATA)


def unwrap_tsn(tsn: int, reference: int) -> int:
    """Map a 32-bit wire TSN to the unwrapped TSN nearest to ``reference`` (serial arithmetic)."""
    delta = (tsn - reference) & _MASK32
    if delta >= 0x80000000:
        delta -= 0x100000000
    return reference + delta


#: Chunk objects of acknowledged one-chunk messages, kept for the next messages (shared by the
#: associations of the process, at most :data:`SPARE_CHUNKS`). A new object per message was the
#: main food of the garbage collector in a small-message transfer: thousands in flight at once,
#: each allocation counting towards a young-generation pass that then walked and promoted them.
#: A reused object is old already and allocates nothing.
_spare_chunks: list[OutboundChunk] = []
SPARE_CHUNKS = 8192


class OutboundChunk:
    """One DATA chunk waiting for its acknowledgement, carrying its message's settings.

    A message of one chunk is this one object: queued messages are what the garbage collector
    walks during a transfer (thousands of them under a 1 MiB send buffer), so the common small
    message costs one tracked object, not three. The fragments of a larger message share
    ``group``, the list of them all, through which abandoning one abandons the message."""

    __slots__ = (
        "abandoned",
        "acked",
        "expires_at",
        "fast_retransmitted",
        "group",
        "in_flight",
        "max_retransmits",
        "misses",
        "ordered",
        "retransmit",
        "sent_at",
        "sent_count",
        "size",
        "ssn",
        "stream_id",
        "tsn",
        "wire",
    )

    def __init__(
        self,
        tsn: int,
        ssn: int,
        ordered: bool,
        wire: bytes,
        size: int,
        stream_id: int,
        max_retransmits: int | None,
        expires_at: float | None,
        group: list[OutboundChunk] | None,
    ) -> None:
        self.tsn = tsn
        self.ssn = ssn
        self.ordered = ordered
        self.wire = wire
        self.size = size
        self.stream_id = stream_id
        self.max_retransmits = max_retransmits
        self.expires_at = expires_at
        self.abandoned = False
        self.group = group
        self.sent_count = 0
        self.sent_at = 0.0
        self.acked = False
        self.in_flight = False
        self.retransmit = False
        self.fast_retransmitted = False
        self.misses = 0


class Sender:
    """Outbound queue and loss recovery for one association (one path: WebRTC has one)."""

    def __init__(
        self,
        *,
        initial_tsn: int,
        max_payload: int,
        peer_rwnd: int,
        rto: RtoEstimator,
        congestion: CongestionControl,
    ) -> None:
        self.max_payload = max_payload
        self.rto = rto
        self.cc = congestion
        self.next_tsn = initial_tsn
        self.cumulative_ack = initial_tsn - 1
        self.advanced_peer_ack = initial_tsn - 1
        self.peer_rwnd = peer_rwnd
        self.flight_size = 0
        # Every chunk with TSN > cumulative_ack, in TSN order; never-sent ones at the tail.
        self.queue: deque[OutboundChunk] = deque()
        self.unsent_index = 0
        self._retransmit_heap: list[int] = []
        self._next_ssn: dict[int, int] = {}
        self.buffered: dict[int, int] = {}
        self.buffered_total = 0
        self.buffered_changed: set[int] = set()
        self.t3_expires_at: float | None = None
        self.forward_tsn_needed = False
        self.fast_retransmit_pending = False
        #: The last transmission opportunity stopped at cwnd with data still queued.
        self.cwnd_limited = False
        self._gap_acked = False
        self.retransmissions = 0
        self.fast_retransmissions = 0
        self.abandoned_messages = 0
        #: Bytes of DATA acknowledged for the first time (throughput; the trace reports it).
        self.bytes_acked = 0

    # -- queueing ------------------------------------------------------------------------------

    def enqueue(
        self,
        stream_id: int,
        ppid: int,
        data: bytes,
        *,
        ordered: bool,
        max_retransmits: int | None,
        expires_at: float | None,
    ) -> None:
        self.enqueue_many(stream_id, (ppid,), (data,), ordered, max_retransmits, expires_at)

    def enqueue_many(
        self,
        stream_id: int,
        ppids: Sequence[int],
        messages: Sequence[bytes],
        ordered: bool,
        max_retransmits: int | None,
        expires_at: float | None,
    ) -> None:
        """Queue messages of one stream, in order, with the same reliability (a burst of sends
        costs one call, and the per-stream work is done once)."""
        if ordered:
            ssn = self._next_ssn.get(stream_id, 0)
            base_flags = 0
        else:
            ssn = 0
            base_flags = FLAG_UNORDERED
        step = self.max_payload
        tsn = self.next_tsn
        queue = self.queue
        pack = DATA_HEADER.pack
        total_size = 0
        for ppid, data in zip(ppids, messages, strict=True):
            total = len(data)
            total_size += total
            if total <= step:
                # Fast path: one chunk, no slicing.
                length = DATA_HEADER_SIZE + total
                wire = pack(_DATA, base_flags | 3, length, tsn & _MASK32, stream_id, ssn, ppid)
                wire = wire + data + b"\x00" * (-length & 3) if length & 3 else wire + data
                try:
                    chunk = _spare_chunks.pop()
                except IndexError:
                    chunk = OutboundChunk(
                        tsn, ssn, ordered, wire, total, stream_id, max_retransmits, expires_at, None
                    )
                else:
                    # Every field, as __init__ sets them (abandoned, acked, in_flight,
                    # retransmit, fast_retransmitted, group and the counters were reset when
                    # it came back).
                    chunk.tsn = tsn
                    chunk.ssn = ssn
                    chunk.ordered = ordered
                    chunk.wire = wire
                    chunk.size = total
                    chunk.stream_id = stream_id
                    chunk.max_retransmits = max_retransmits
                    chunk.expires_at = expires_at
                queue.append(chunk)
                tsn += 1
            else:
                tsn = self._enqueue_fragments(
                    stream_id,
                    ppid,
                    data,
                    ssn,
                    base_flags,
                    ordered,
                    max_retransmits,
                    expires_at,
                    tsn,
                )
            if ordered:
                ssn = (ssn + 1) & 0xFFFF
        self.next_tsn = tsn
        if ordered:
            self._next_ssn[stream_id] = ssn
        self.buffered[stream_id] = self.buffered.get(stream_id, 0) + total_size
        self.buffered_total += total_size

    def _enqueue_fragments(
        self,
        stream_id: int,
        ppid: int,
        data: bytes,
        ssn: int,
        base_flags: int,
        ordered: bool,
        max_retransmits: int | None,
        expires_at: float | None,
        tsn: int,
    ) -> int:
        """A message larger than a chunk, cut into fragments; returns the next TSN."""
        step = self.max_payload
        total = len(data)
        chunks: list[OutboundChunk] = []
        pack = DATA_HEADER.pack
        view = memoryview(data)
        offset = 0
        while True:
            piece = bytes(view[offset : offset + step])
            flags = base_flags
            if offset == 0:
                flags |= FLAG_BEGIN
            offset += step
            if offset >= total:
                flags |= FLAG_END
            length = DATA_HEADER_SIZE + len(piece)
            wire = (
                pack(ChunkType.DATA, flags, length, tsn & _MASK32, stream_id, ssn, ppid)
                + piece
                + b"\x00" * (-length & 3)
            )
            chunks.append(
                OutboundChunk(
                    tsn,
                    ssn,
                    ordered,
                    wire,
                    len(piece),
                    stream_id,
                    max_retransmits,
                    expires_at,
                    chunks,
                )
            )
            tsn += 1
            if offset >= total:
                break
        self.queue.extend(chunks)
        return tsn

    def reset_stream_sequences(self, stream_ids: list[int]) -> None:
        """RFC 6525 §5.1.2: after an outgoing reset request the next SSN is 0."""
        for stream_id in stream_ids:
            self._next_ssn.pop(stream_id, None)

    def pending_on_streams(self, stream_ids: set[int]) -> bool:
        return any(chunk.stream_id in stream_ids for chunk in self.queue)

    # -- transmission --------------------------------------------------------------------------

    def has_data_to_send(self) -> bool:
        return bool(self._retransmit_heap) or self.unsent_index < len(self.queue)

    def collect(self, budget: int, now: float, *, ignore_cwnd: bool = False) -> list[bytes]:
        """DATA chunks for one packet, at most ``budget`` bytes: retransmissions first."""
        out: list[bytes] = []
        cc = self.cc
        queue = self.queue
        heap = self._retransmit_heap
        while heap and budget > 0:
            index = heap[0] - queue[0].tsn if queue else -1
            if index < 0:
                heapq.heappop(heap)
                continue
            chunk = queue[index]
            if chunk.acked or chunk.abandoned or not chunk.retransmit:
                heapq.heappop(heap)
                chunk.retransmit = False
                continue
            if not ignore_cwnd and self.flight_size >= cc.cwnd:
                self.cwnd_limited = True
                return out
            if self._expired(chunk, now):
                heapq.heappop(heap)
                continue
            if len(chunk.wire) > budget:
                return out
            heapq.heappop(heap)
            chunk.retransmit = False
            budget -= len(chunk.wire)
            self._transmit(chunk, now)
            self.retransmissions += 1
            out.append(chunk.wire)
        if ignore_cwnd:
            return out
        # First transmissions, the hot loop of bulk transfers: per-chunk state in locals,
        # written back once (or before abandoning an expired message, which changes it).
        buffered = self.buffered
        changed = self.buffered_changed
        cwnd = cc.cwnd
        while True:
            index = self.unsent_index
            end = len(queue)
            flight = self.flight_size
            rwnd = self.peer_rwnd
            sent_bytes = 0
            expired: OutboundChunk | None = None
            stopped = False
            while index < end and budget > 0:
                chunk = queue[index]
                if chunk.abandoned:
                    index += 1
                    continue
                expires_at = chunk.expires_at
                if expires_at is not None and now > expires_at:
                    expired = chunk
                    break
                if flight >= cwnd:
                    self.cwnd_limited = stopped = True
                    break
                size = chunk.size
                # RFC 9260 §6.1 A: respect the peer's window, but allow one chunk in flight as
                # a zero-window probe.
                if size > rwnd and flight > 0:
                    self.cwnd_limited = False
                    stopped = True
                    break
                wire = chunk.wire
                if len(wire) > budget:
                    stopped = True
                    break
                budget -= len(wire)
                index += 1
                stream_id = chunk.stream_id
                buffered[stream_id] -= size
                changed.add(stream_id)
                sent_bytes += size
                chunk.sent_count += 1
                chunk.sent_at = now
                chunk.in_flight = True
                chunk.misses = 0
                flight += size
                rwnd = rwnd - size if rwnd > size else 0
                out.append(wire)
            self.unsent_index = index
            if sent_bytes:
                self.flight_size = flight
                self.peer_rwnd = rwnd
                self.buffered_total -= sent_bytes
                if self.t3_expires_at is None:
                    self.t3_expires_at = now + self.rto.rto
            if expired is not None:
                self._abandon(expired)
                continue
            if not stopped and index >= end:
                # Everything queued went out: the application, not cwnd, set the pace.
                self.cwnd_limited = False
            return out

    def _transmit(self, chunk: OutboundChunk, now: float) -> None:
        chunk.sent_count += 1
        chunk.sent_at = now
        chunk.in_flight = True
        chunk.misses = 0
        self.flight_size += chunk.size
        self.peer_rwnd = max(0, self.peer_rwnd - chunk.size)
        if self.t3_expires_at is None:
            self.t3_expires_at = now + self.rto.rto

    def _expired(self, chunk: OutboundChunk, now: float) -> bool:
        """Partial reliability (RFC 3758 §3.5 A1): abandon instead of retransmitting."""
        limit = chunk.max_retransmits
        if (limit is not None and chunk.sent_count > limit) or (
            chunk.expires_at is not None and now > chunk.expires_at
        ):
            self._abandon(chunk)
            return True
        return False

    def _abandon(self, chunk: OutboundChunk) -> None:
        """Abandon the message ``chunk`` belongs to: every fragment of it."""
        if chunk.abandoned:
            return
        self.abandoned_messages += 1
        stream_id = chunk.stream_id
        for part in chunk.group or (chunk,):
            part.abandoned = True
            if part.in_flight:
                part.in_flight = False
                self.flight_size -= part.size
            part.retransmit = False
            if part.sent_count == 0:
                self.buffered[stream_id] -= part.size
                self.buffered_total -= part.size
                self.buffered_changed.add(stream_id)
        self._advance_peer_ack_point()

    def _advance_peer_ack_point(self) -> None:
        """RFC 3758 §3.5 C1: move over abandoned chunks; a FORWARD TSN is due if it moved."""
        queue = self.queue
        point = max(self.advanced_peer_ack, self.cumulative_ack)
        index = point - self.cumulative_ack
        while index < len(queue):
            chunk = queue[index]
            if not chunk.abandoned:
                break
            point += 1
            index += 1
        self.advanced_peer_ack = point
        if point > self.cumulative_ack:
            self.forward_tsn_needed = True
            while self.unsent_index < index:
                # Abandoned never-sent chunks are skipped by the FORWARD TSN itself.
                self.unsent_index += 1

    def forward_tsn(self) -> ForwardTsnChunk:
        """The FORWARD TSN for the current advanced peer ack point (RFC 3758 §3.5 C4)."""
        streams: dict[int, int] = {}
        for index in range(self.advanced_peer_ack - self.cumulative_ack):
            chunk = self.queue[index]
            if chunk.ordered:
                streams[chunk.stream_id] = chunk.ssn
        return ForwardTsnChunk(self.advanced_peer_ack & _MASK32, sorted(streams.items()))

    # -- acknowledgements ----------------------------------------------------------------------

    def on_sack(self, sack: SackChunk, now: float) -> bool:
        """Process a SACK (RFC 9260 §6.2.1). Returns True when the cumulative point advanced."""
        cumulative = unwrap_tsn(sack.cumulative_tsn_ack, self.cumulative_ack)
        if cumulative < self.cumulative_ack or cumulative >= self.next_tsn:
            # Stale (reordered) SACK, or one acknowledging what we never sent: ignore it.
            return False
        if cumulative > self.cumulative_ack:
            last = self.queue[cumulative - self.cumulative_ack - 1]
            if last.sent_count == 0 and not last.abandoned:
                return False  # acknowledges a chunk we never sent
        flight_before = self.flight_size
        queue = self.queue
        newly_acked = 0
        rtt_sample: float | None = None
        advanced = cumulative > self.cumulative_ack
        while queue and queue[0].tsn <= cumulative:
            chunk = queue.popleft()
            self.unsent_index -= 1
            if chunk.in_flight:
                self.flight_size -= chunk.size
                chunk.in_flight = False
            if not chunk.acked and not chunk.abandoned:
                newly_acked += chunk.size
                if chunk.sent_count == 1:
                    rtt_sample = now - chunk.sent_at
            group = chunk.group
            if group is None:
                # Nothing refers to a one-chunk message's object once it left the queue:
                # back to the spares, in the state __init__ gives, its payload let go.
                if len(_spare_chunks) < SPARE_CHUNKS:
                    chunk.wire = b""
                    chunk.acked = False
                    chunk.abandoned = False
                    chunk.sent_count = 0
                    chunk.sent_at = 0.0
                    chunk.in_flight = False
                    chunk.retransmit = False
                    chunk.fast_retransmitted = False
                    chunk.misses = 0
                    _spare_chunks.append(chunk)
                else:
                    chunk.acked = True
            else:
                chunk.acked = True
                if group[-1] is chunk:
                    # The message's last fragment left the queue (they leave in TSN order):
                    # emptying the shared list ends the fragments <-> list cycle, so reference
                    # counting frees them now. Left to the cyclic collector, they were 2.6
                    # garbage objects per message and a quarter of a transfer's CPU.
                    group.clear()
        if self.unsent_index < 0:
            self.unsent_index = 0
        self.cumulative_ack = cumulative
        if self.advanced_peer_ack < cumulative:
            self.advanced_peer_ack = cumulative

        highest_newly_acked = 0
        if sack.gap_blocks:
            self._gap_acked = True
            newly, highest_newly_acked = self._process_gaps(sack.gap_blocks)
            newly_acked += newly
        elif self._gap_acked:
            # No gap blocks: nothing above the cumulative point is held by the peer (reneging is
            # allowed, RFC 9260 §6.2), so forget earlier gap acks.
            self._gap_acked = False
            for chunk in queue:
                if chunk.sent_count == 0:
                    break
                if chunk.acked:
                    chunk.acked = False
                    self._mark_retransmit(chunk)
        if rtt_sample is not None:
            self.rto.measure(rtt_sample)
        elif advanced:
            self.rto.reset_backoff()
        # RFC 9260 §7.2.1 grows cwnd only while the window is "fully utilized". A driver that
        # hands over a burst of SACKs before the window can be refilled would let only the
        # first one count (flight drops after it), turning slow start linear; the window was
        # full if the last send stopped at cwnd with data left (a cwnd-limited flight, the
        # notion TCP stacks and RFC 7661 use for the same question).
        utilized = max(flight_before, self.cc.cwnd) if self.cwnd_limited else flight_before
        self.cc.on_cumulative_ack(newly_acked, utilized, cumulative)
        self.bytes_acked += newly_acked
        if highest_newly_acked:
            self._count_misses(highest_newly_acked)
        self.peer_rwnd = max(0, sack.a_rwnd - self.flight_size)
        if self.flight_size == 0 and not self._retransmit_heap:
            self.t3_expires_at = None
        elif advanced:
            self.t3_expires_at = now + self.rto.rto
        self._advance_peer_ack_point()
        if self.advanced_peer_ack <= self.cumulative_ack:
            self.forward_tsn_needed = False
        return advanced

    def _process_gaps(self, blocks: list[tuple[int, int]]) -> tuple[int, int]:
        queue = self.queue
        base = self.cumulative_ack
        limit = len(queue)
        newly = 0
        highest = 0
        previous_end = 0
        for start, end in blocks:
            if start == 0 or start > end or start <= previous_end:
                continue
            # Chunks between the previous block and this one are missing: reneged if acked.
            for index in range(previous_end, min(start - 1, limit)):
                chunk = queue[index]
                if chunk.acked:
                    chunk.acked = False
                    self._mark_retransmit(chunk)
            previous_end = end
            for index in range(start - 1, min(end, limit)):
                chunk = queue[index]
                if chunk.sent_count == 0:
                    break
                if not chunk.acked:
                    chunk.acked = True
                    if chunk.in_flight:
                        chunk.in_flight = False
                        self.flight_size -= chunk.size
                    if not chunk.abandoned:
                        newly += chunk.size
                    chunk.retransmit = False
                    highest = base + index + 1
        return newly, highest

    def _count_misses(self, highest_newly_acked: int) -> None:
        """Fast retransmit on the third miss indication (RFC 9260 §7.2.4, HTNA rule)."""
        queue = self.queue
        base = self.cumulative_ack
        marked = False
        for index in range(highest_newly_acked - base - 1):
            chunk = queue[index]
            if chunk.acked or not chunk.in_flight or chunk.fast_retransmitted:
                continue
            chunk.misses += 1
            if chunk.misses >= 3:
                chunk.misses = 0
                chunk.fast_retransmitted = True
                chunk.in_flight = False
                self.flight_size -= chunk.size
                self._mark_retransmit(chunk)
                marked = True
                self.fast_retransmissions += 1
        if marked:
            self.cc.on_fast_retransmit(self.next_tsn - 1)
            self.fast_retransmit_pending = True

    def _mark_retransmit(self, chunk: OutboundChunk) -> None:
        if not chunk.retransmit:
            chunk.retransmit = True
            heapq.heappush(self._retransmit_heap, chunk.tsn)

    # -- timer ---------------------------------------------------------------------------------

    def on_t3_expired(self, now: float) -> None:
        """RFC 9260 §6.3.3: back off, collapse cwnd, retransmit everything outstanding."""
        self.rto.back_off()
        self.cc.on_retransmission_timeout()
        for index in range(self.unsent_index):
            chunk = self.queue[index]
            if chunk.acked or chunk.abandoned:
                continue
            if chunk.in_flight:
                chunk.in_flight = False
                self.flight_size -= chunk.size
            if not self._expired(chunk, now):
                self._mark_retransmit(chunk)
        self.t3_expires_at = now + self.rto.rto if self.unsent_index else None
        self._advance_peer_ack_point()

    def outstanding(self) -> bool:
        """Data is queued or unacknowledged (SHUTDOWN waits for this to be False)."""
        return bool(self.queue)
