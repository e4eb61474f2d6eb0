"""The SCTP association core (RFC 9260 as profiled for WebRTC by RFC 8261 and RFC 8831).

Sans-IO: packets and ``now`` go in, packets, events and the next timer deadline come out. One
packet here is one DTLS record's payload. The four verbs are :meth:`SctpAssociation.receive_datagram`,
:meth:`~SctpAssociation.datagrams_to_send`, :meth:`~SctpAssociation.get_timer` /
:meth:`~SctpAssociation.handle_timer`, and :meth:`~SctpAssociation.next_event`.

The sending half lives in ``sender.py``, the receiving half in ``reassembly.py``, the
handshake's cookie in ``handshake.py``; this module is the state machine that ties them together.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import InvalidStateError
from .chunks import (
    CHUNK_HEADER,
    COMMON_HEADER_SIZE,
    DATA_HEADER,
    FLAG_IMMEDIATE,
    FLAG_T,
    CauseCode,
    ChunkType,
    ErrorCause,
    InitChunk,
    RawChunk,
    SackChunk,
    SctpError,
    decode_chunks_untrusted,
    encode_causes,
    encode_chunk,
    encode_forward_tsn,
    encode_heartbeat,
    encode_init,
    encode_packet,
    encode_reconfig,
    encode_sack,
    verify_packet_untrusted,
)
from .congestion import CongestionControl, RtoEstimator
from .control import HANDLERS, on_init
from .events import (
    AssociationAborted,
    AssociationEstablished,
    BufferedAmountChanged,
    MessageReceived,
    SctpEvent,
)
from .handshake import (
    PeerCapabilities,
    build_init_parameters,
)
from .reassembly import Receiver, ReceiveResult
from .reconfig import ReconfigState
from .sender import Sender
from .states import CAN_SEND, DATA_STATES, HEARTBEAT_INFO, SENDS_DATA, AssociationState, SctpStats

__all__ = ["AssociationState", "SctpAssociation", "SctpStats"]

_MASK32 = 0xFFFFFFFF
# Chunks after which a packet must carry a real CRC32c even with RFC 9653 negotiated.
_NEEDS_CRC = frozenset({ChunkType.INIT, ChunkType.INIT_ACK, ChunkType.COOKIE_ECHO})
# RFC 9260 §6.10: INIT, INIT ACK and SHUTDOWN COMPLETE are never bundled with another chunk
# (stacks built on usrsctp drop the whole packet when they are).
_ALONE = frozenset({ChunkType.INIT, ChunkType.INIT_ACK, ChunkType.SHUTDOWN_COMPLETE})


#: SystemRandom reads the OS generator and keeps no state of its own, yet each instance still
#: allocates Random's 2.5 KiB of unused Mersenne Twister state: one serves every association.
_SYSTEM_RNG = random.SystemRandom()


class SctpAssociation:
    """One SCTP association over one DTLS connection. Never awaits, never reads a clock.

    ``is_client`` is the DTLS role. SCTP itself is symmetric in WebRTC (both sides may call
    :meth:`connect`; the INIT collision is resolved per RFC 9260 §5.2); the role only matters to
    DCEP's stream id parity, and is kept here for the layers above.
    """

    # Slots: one association per peer connection, and with this many attributes a __dict__
    # stops sharing its keys and costs over 1.5 KiB. "__dict__" stays so that an attribute
    # beyond these still works (a test patches next_event on one association); it is only
    # made if one is set.
    __slots__ = (
        "__dict__",
        "_control",
        "_data_packets_unacked",
        "_error_count",
        "_events",
        "_events_read",
        "_heartbeat_nonce",
        "_heartbeat_outstanding",
        "_initial_tsn",
        "_last_advertised_rwnd",
        "_last_sent_at",
        "_paused",
        "_rng",
        "_sack_at",
        "_sack_needed",
        "_sacks",
        "_secret",
        "_t1_at",
        "_t1_chunk",
        "_t1_count",
        "_t1_rto",
        "_t2_at",
        "_t2_count",
        "_t2_pending",
        "_terminated",
        "_traced",
        "_traced_counts",
        "_window_update_step",
        "_zero_checksum_active",
        "capabilities",
        "cookie_lifetime",
        "delayed_ack_timeout",
        "heartbeat_interval",
        "inbound_streams",
        "is_client",
        "local_port",
        "local_tag",
        "max_init_retransmissions",
        "max_message_size",
        "max_retransmissions",
        "mtu",
        "outbound_streams",
        "peer_tag",
        "receive_window",
        "receiver",
        "reconfig",
        "remote_max_message_size",
        "remote_port",
        "rto",
        "sender",
        "state",
        "stats",
        "streams",
        "trace",
        "zero_checksum",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        local_port: int = 5000,
        remote_port: int = 5000,
        max_message_size: int = 262144,
        remote_max_message_size: int | None = None,
        receive_window: int = 1 << 21,
        mtu: int = 1200,
        zero_checksum: bool = True,
        streams: int = 65535,
        rto_initial: float = 1.0,
        rto_min: float = 0.2,
        rto_max: float = 60.0,
        max_retransmissions: int = 10,
        max_init_retransmissions: int = 8,
        heartbeat_interval: float | None = 30.0,
        delayed_ack_timeout: float = 0.2,
        cookie_lifetime: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if mtu < 128:
            raise ValueError("mtu must be at least 128 bytes")
        if receive_window < max_message_size:
            raise ValueError("receive_window must be at least max_message_size")
        rng = rng if rng is not None else _SYSTEM_RNG
        self.is_client = is_client
        self.local_port = local_port
        self.remote_port = remote_port
        self.max_message_size = max_message_size
        #: The largest message we may send: the peer's SDP ``a=max-message-size`` (RFC 8841
        #: §6); settable once the remote description is known.
        self.remote_max_message_size = (
            max_message_size if remote_max_message_size is None else remote_max_message_size
        )
        self.receive_window = receive_window
        self.mtu = mtu
        self.zero_checksum = zero_checksum
        self.streams = streams
        self.max_retransmissions = max_retransmissions
        self.max_init_retransmissions = max_init_retransmissions
        self.heartbeat_interval = heartbeat_interval
        self.delayed_ack_timeout = delayed_ack_timeout
        self.cookie_lifetime = cookie_lifetime
        self.stats = SctpStats()
        self.state = AssociationState.CLOSED
        self._rng = rng
        self._secret = rng.getrandbits(256).to_bytes(32, "big")
        # Our tag and initial TSN are fixed for the association's life: every INIT and INIT ACK
        # we send carries the same ones, which is what RFC 9260 §5.2.1 asks for when both sides
        # send INIT at once, and it makes every cookie we issue agree with our TCB.
        self.local_tag = rng.randrange(1, 1 << 32)
        self._initial_tsn = rng.randrange(0, 1 << 32)
        self.peer_tag = 0
        self.capabilities = PeerCapabilities(False, False, False)
        self.outbound_streams = streams
        self.inbound_streams = streams
        # A list read from _events_read on, cleared (which frees its storage) once read to the
        # end: an idle association then holds no buffer, where a deque always keeps a 64-slot
        # block, and each event still costs O(1).
        self._events: list[SctpEvent] = []
        self._events_read = 0
        self._control: list[tuple[int, bytes]] = []
        self.rto = RtoEstimator(rto_initial=rto_initial, rto_min=rto_min, rto_max=rto_max)
        self.sender = Sender(
            initial_tsn=self._initial_tsn,
            max_payload=(mtu - COMMON_HEADER_SIZE - 16) & ~3,
            peer_rwnd=0,
            rto=self.rto,
            congestion=CongestionControl(mtu=mtu, peer_rwnd=receive_window),
        )
        self.receiver: Receiver | None = None
        self.reconfig = ReconfigState(self._initial_tsn)
        self._paused: dict[int, list[tuple[int, bytes, bool, int | None, float | None]]] = {}
        self._zero_checksum_active = False
        self._error_count = 0
        # Handshake (T1) and shutdown (T2) retransmission.
        self._t1_at: float | None = None
        self._t1_chunk = b""
        self._t1_count = 0
        self._t1_rto = rto_initial
        self._t2_at: float | None = None
        self._t2_count = 0
        # Delayed SACK (RFC 9260 §6.2).
        self._sack_at: float | None = None
        self._sack_needed = False
        self._sacks: list[bytes] = []
        self._window_update_step = max(self.receive_window >> 2, self.mtu)
        self._data_packets_unacked = 0
        self._last_advertised_rwnd = receive_window
        # Heartbeats (RFC 9260 §8.3).
        self._last_sent_at = 0.0
        self._heartbeat_nonce = 0
        self._heartbeat_outstanding = False
        self._terminated = False
        self._t2_pending = False
        #: Structured trace (trio_rtc.trace): ``trace(name, data)`` at state, cwnd/ssthresh/RTO
        #: changes and retransmission decisions, set by the driver; None is tracing off.
        self.trace: Callable[[str, dict[str, Any]], None] | None = None
        self._traced: tuple[object, ...] = ()
        self._traced_counts: tuple[int, int, int] = (0, 0, 0)

    # -- public API ----------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Send INIT (RFC 9260 §5.1 A). In WebRTC either side, or both, may call this."""
        if self.state is not AssociationState.CLOSED or self.receiver is not None:
            raise InvalidStateError("connect() needs a fresh association")
        self._t1_chunk = encode_init(ChunkType.INIT, self._init_chunk())
        self._control.append((0, self._t1_chunk))
        self._t1_count = 0
        self._t1_at = now + self._t1_rto
        self.state = AssociationState.COOKIE_WAIT
        if self.trace is not None:
            self._trace_changes()

    def send_message(
        self,
        stream_id: int,
        ppid: int,
        data: bytes,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_lifetime: float | None = None,
        now: float,
    ) -> None:
        """Queue one user message. ``max_packet_lifetime`` is in seconds (RFC 3758 timed
        reliability); ``max_retransmits`` counts retransmissions. Both need the peer's
        FORWARD-TSN support to take effect, as in every WebRTC stack."""
        refused = self.send_messages(
            stream_id, (ppid,), (data,), ordered, max_retransmits, max_packet_lifetime, now
        )
        if refused:
            raise refused[0][1]

    def send_messages(
        self,
        stream_id: int,
        ppids: Sequence[int],
        messages: Sequence[bytes],
        ordered: bool,
        max_retransmits: int | None,
        max_packet_lifetime: float | None,
        now: float,
    ) -> list[tuple[int, ValueError]]:
        """:meth:`send_message` for several messages of one stream with the same reliability,
        in order. The stream and the association are checked once (InvalidStateError,
        ValueError as there); a message refused on its own (empty, too large) is left out and
        returned with its index and the error, and the others go."""
        state = self.state
        if self._terminated or (
            state is not AssociationState.ESTABLISHED and state not in CAN_SEND
        ):
            raise InvalidStateError(f"cannot send in association state {self.state.value}")
        if not 0 <= stream_id < self.outbound_streams:
            raise ValueError(f"stream id {stream_id} outside 0..{self.outbound_streams - 1}")
        if max_retransmits is not None and max_retransmits < 0:
            raise ValueError("max_retransmits must be >= 0")
        expires_at = None if max_packet_lifetime is None else now + max_packet_lifetime
        refused: list[tuple[int, ValueError]] = []
        limit = self.remote_max_message_size
        for index, data in enumerate(messages):
            if not data:
                error = ValueError(
                    "SCTP cannot carry an empty message (use PPID 56/57 and one byte)"
                )
                refused.append((index, error))
            elif len(data) > limit:
                refused.append((index, ValueError(f"message of {len(data)} bytes exceeds {limit}")))
        if refused:
            skip = {index for index, _ in refused}
            ppids = [p for index, p in enumerate(ppids) if index not in skip]
            messages = [m for index, m in enumerate(messages) if index not in skip]
        reconfig = self.reconfig
        resetting = (reconfig.pending or reconfig.outstanding is not None) and (
            stream_id in reconfig.resetting()
        )
        if resetting or stream_id in self._paused:
            # RFC 6525 §5.1.2: no new data on a stream between the reset request and its
            # response, or it could overtake the request and be taken for old data.
            held = self._paused.setdefault(stream_id, [])
            sender = self.sender
            for ppid, data in zip(ppids, messages, strict=True):
                held.append((ppid, data, ordered, max_retransmits, expires_at))
                sender.buffered[stream_id] = sender.buffered.get(stream_id, 0) + len(data)
                sender.buffered_total += len(data)
            return refused
        if messages:
            self.sender.enqueue_many(
                stream_id, ppids, messages, ordered, max_retransmits, expires_at
            )
        return refused

    def buffered_amount(self, stream_id: int) -> int:
        """Bytes queued on ``stream_id`` and not yet sent once (the W3C bufferedAmount)."""
        return self.sender.buffered.get(stream_id, 0)

    @property
    def buffered_total(self) -> int:
        return self.sender.buffered_total

    def reset_streams(self, stream_ids: list[int]) -> None:
        """Reset our outgoing stream sequence numbers (RFC 6525 §5.1.2), e.g. to close a data
        channel. A ``StreamsReset(incoming=False)`` event follows when the peer performed it.
        Before establishment the request waits; a peer without RE-CONFIG support never gets it
        (``AssociationEstablished.stream_reset`` says so)."""
        if self._terminated or not (
            self.state in DATA_STATES
            or self.state in (AssociationState.COOKIE_WAIT, AssociationState.COOKIE_ECHOED)
        ):
            raise InvalidStateError(f"cannot reset streams in state {self.state.value}")
        if self.receiver is not None and not self.capabilities.reconfig:
            return  # the peer cannot reset streams (RFC 6525 not announced)
        self.reconfig.queue_outgoing_reset(stream_ids)

    def has_pending_data(self) -> bool:
        """Messages are queued, unacknowledged, or held back behind a stream reset."""
        return self.sender.outstanding() or bool(self._paused)

    def _release_paused(self, stream_ids: list[int]) -> None:
        sender = self.sender
        for stream_id in stream_ids:
            for ppid, data, ordered, max_retransmits, expires_at in self._paused.pop(stream_id, []):
                sender.buffered[stream_id] -= len(data)
                sender.buffered_total -= len(data)
                sender.enqueue(
                    stream_id,
                    ppid,
                    data,
                    ordered=ordered,
                    max_retransmits=max_retransmits,
                    expires_at=expires_at,
                )

    def shutdown(self) -> None:
        """Graceful close: deliver what is queued, then SHUTDOWN (RFC 9260 §9.2)."""
        if self.state in (AssociationState.COOKIE_WAIT, AssociationState.COOKIE_ECHOED):
            self.abort("shutdown before establishment")
            return
        if self.state is AssociationState.ESTABLISHED:
            self.state = AssociationState.SHUTDOWN_PENDING
            if self.trace is not None:
                self._trace_changes()

    def abort(self, reason: str = "") -> None:
        """Send ABORT with a User-Initiated Abort cause and close at once (RFC 9260 §9.1)."""
        if self._terminated:
            return
        if self.peer_tag:
            cause = ErrorCause(CauseCode.USER_INITIATED_ABORT, reason.encode()[:256])
            self._control.append(
                (self.peer_tag, encode_chunk(ChunkType.ABORT, 0, encode_causes([cause])))
            )
        self._terminate(AssociationAborted(reason or "aborted locally", by_peer=False))

    def has_events(self) -> bool:
        """Events wait for :meth:`next_event`."""
        return bool(self._events)

    def next_event(self) -> SctpEvent | None:
        events = self._events
        if not events:
            return None
        index = self._events_read
        event = events[index]
        index += 1
        if index == len(events):
            events.clear()
            index = 0
        self._events_read = index
        if type(event) is MessageReceived and self.receiver is not None:
            receiver = self.receiver
            receiver.released(len(event.data))
            # Window update: tell a peer that we made room once a quarter of the window opened
            # since the last SACK (otherwise it would wait for a zero-window probe).
            if receiver.a_rwnd() - self._last_advertised_rwnd >= self._window_update_step:
                self._sack_needed = True
        return event

    def take_events(self) -> list[SctpEvent]:
        """Every waiting event at once, in order: what :meth:`next_event` returns one by one,
        without the per-message window accounting. The caller reports the bytes of the
        messages it took with :meth:`messages_taken` and may hand back, in order, what it did
        not get to with :meth:`put_back` (a pause for a slow reader)."""
        events = self._events
        if not events:
            return []
        index = self._events_read
        taken = events[index:] if index else events.copy()
        events.clear()
        self._events_read = 0
        return taken

    def put_back(self, events: list[SctpEvent]) -> None:
        """Events from :meth:`take_events` not handled yet: they come first again."""
        if events:
            waiting = self._events
            index = self._events_read
            waiting[index:index] = events

    def messages_taken(self, size: int) -> None:
        """The application took messages of ``size`` bytes from :meth:`take_events`: they
        leave the receive window (as :meth:`next_event` does per message)."""
        receiver = self.receiver
        if size and receiver is not None:
            receiver.released(size)
            if receiver.a_rwnd() - self._last_advertised_rwnd >= self._window_update_step:
                self._sack_needed = True

    # -- timers --------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        # Called at least once per wake-up of the driver: written out instead of a loop over
        # a tuple, which costs a microsecond per call on the data path.
        deadline = self._t1_at
        candidate = self._t2_at
        if candidate is not None and (deadline is None or candidate < deadline):
            deadline = candidate
        candidate = self._sack_at
        if candidate is not None and (deadline is None or candidate < deadline):
            deadline = candidate
        state = self.state
        if state in DATA_STATES:
            candidate = self.sender.t3_expires_at
            if candidate is not None and (deadline is None or candidate < deadline):
                deadline = candidate
        candidate = self.reconfig.timer_at
        if candidate is not None and (deadline is None or candidate < deadline):
            deadline = candidate
        if self.heartbeat_interval is not None and state is AssociationState.ESTABLISHED:
            candidate = self._last_sent_at + self.heartbeat_interval + self.rto.rto
            if deadline is None or candidate < deadline:
                deadline = candidate
        return deadline

    def _heartbeat_deadline(self) -> float | None:
        if self.heartbeat_interval is None or self.state is not AssociationState.ESTABLISHED:
            return None
        return self._last_sent_at + self.heartbeat_interval + self.rto.rto

    def handle_timer(self, now: float) -> None:
        if self._t1_at is not None and now >= self._t1_at:
            self._on_t1(now)
        if self._t2_at is not None and now >= self._t2_at:
            self._on_t2(now)
        if self._sack_at is not None and now >= self._sack_at:
            self._sack_at = None
            self._sack_needed = True
        t3 = self.sender.t3_expires_at
        if t3 is not None and now >= t3 and self.state in DATA_STATES:
            self.stats.t3_expirations += 1
            self._error_count += 1
            if self._error_count > self.max_retransmissions:
                self._fail("too many retransmissions (T3-rtx)")
                return
            self.sender.on_t3_expired(now)
            if self.trace is not None:
                self.trace("t3_expired", {"rto": self.rto.rto})
        if self.reconfig.timer_at is not None and now >= self.reconfig.timer_at:
            self.reconfig.on_timeout()
        heartbeat = self._heartbeat_deadline()
        if heartbeat is not None and now >= heartbeat:
            if self._heartbeat_outstanding:
                self._error_count += 1
                if self._error_count > self.max_retransmissions:
                    self._fail("peer unreachable (heartbeats unanswered)")
                    return
            self._heartbeat_nonce = self._rng.getrandbits(64)
            info = HEARTBEAT_INFO.pack(self._heartbeat_nonce, now)
            self._control.append((self.peer_tag, encode_heartbeat(ChunkType.HEARTBEAT, info)))
            self._heartbeat_outstanding = True
            self._last_sent_at = now
        if self.trace is not None:
            self._trace_changes()

    def _on_t1(self, now: float) -> None:
        self._t1_count += 1
        if self._t1_count > self.max_init_retransmissions:
            self._fail("handshake timed out")
            return
        self._t1_rto = min(self._t1_rto * 2, self.rto.rto_max)
        self._t1_at = now + self._t1_rto
        tag = 0 if self.state is AssociationState.COOKIE_WAIT else self.peer_tag
        self._control.append((tag, self._t1_chunk))

    def _on_t2(self, now: float) -> None:
        self._t2_count += 1
        if self._t2_count > self.max_retransmissions:
            self._fail("shutdown timed out")
            return
        self.rto.back_off()
        self._t2_at = now + self.rto.rto
        self._send_shutdown_chunk()

    def _fail(self, reason: str, code: int = CauseCode.PROTOCOL_VIOLATION) -> None:
        if self.peer_tag:
            cause = ErrorCause(code, reason.encode())
            self._control.append(
                (self.peer_tag, encode_chunk(ChunkType.ABORT, 0, encode_causes([cause])))
            )
        self._terminate(AssociationAborted(reason, by_peer=False))

    def _terminate(self, event: SctpEvent) -> None:
        self.state = AssociationState.CLOSED
        self._terminated = True
        self._t1_at = self._t2_at = self._sack_at = None
        self.sender.t3_expires_at = None
        self.reconfig.timer_at = None
        self._events.append(event)
        if self.trace is not None:
            self._trace_changes()

    # -- input ---------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Process one SCTP packet. Anything malformed is dropped and counted in ``stats``."""
        self.stats.packets_received += 1
        if self._terminated:
            self._after_close_untrusted(data)
            return
        try:
            self._receive_untrusted(data, now)
        except SctpError:
            self.stats.malformed_packets += 1

    def _after_close_untrusted(self, data: bytes) -> None:
        """RFC 9260 §8.4 (5): a SHUTDOWN ACK after we closed means our SHUTDOWN COMPLETE was
        lost; answer with one carrying the T bit so the peer can close too."""
        if (
            len(data) >= COMMON_HEADER_SIZE + 4
            and data[COMMON_HEADER_SIZE] == ChunkType.SHUTDOWN_ACK
            and self.peer_tag
            and int.from_bytes(data[4:8], "big") == self.local_tag
        ):
            try:
                verify_packet_untrusted(data, accept_zero_checksum=self.zero_checksum)
            except SctpError:
                self.stats.malformed_packets += 1
                return
            self._control.append(
                (self.local_tag, encode_chunk(ChunkType.SHUTDOWN_COMPLETE, FLAG_T))
            )

    def _receive_untrusted(self, data: bytes, now: float) -> None:
        source, destination, tag, zero = verify_packet_untrusted(
            data, accept_zero_checksum=self.zero_checksum
        )
        if source != self.remote_port or destination != self.local_port:
            self.stats.foreign_packets += 1
            return
        end = len(data)
        offset = COMMON_HEADER_SIZE
        first_type = data[offset]
        if first_type == ChunkType.INIT:
            # RFC 9260 §8.5.1 A, §6.10: INIT goes alone, with tag 0 and a real checksum.
            if tag != 0 or zero:
                raise SctpError("INIT with a nonzero tag or a zero checksum")
            chunks = decode_chunks_untrusted(data)
            if len(chunks) != 1:
                raise SctpError("INIT bundled with other chunks")
            on_init(self, chunks[0], now)
            return
        if tag != self.local_tag:
            # §8.5.1 B and C: ABORT and SHUTDOWN COMPLETE with the T bit carry the peer's tag.
            flags = data[offset + 1]
            reflected = (
                first_type in (ChunkType.ABORT, ChunkType.SHUTDOWN_COMPLETE) and flags & FLAG_T
            )
            if not (reflected and self.peer_tag and tag == self.peer_tag):
                self.stats.foreign_packets += 1
                return
        receiver = self.receiver
        data_seen = False
        immediate = False
        while offset < end:
            if end - offset < 4:
                raise SctpError("truncated chunk header")
            chunk_type, flags, length = CHUNK_HEADER.unpack_from(data, offset)
            if length < 4 or offset + length > end:
                raise SctpError(f"bad chunk length {length}")
            if chunk_type == 0:
                if length < 17:
                    if length < 16:
                        raise SctpError("DATA chunk shorter than its header")
                    self._fail("peer sent a DATA chunk without user data", CauseCode.NO_USER_DATA)
                    return
                state = self.state
                if receiver is None or (
                    state is not AssociationState.ESTABLISHED and state not in DATA_STATES
                ):
                    offset += (length + 3) & ~3
                    continue
                _, _, _, tsn, stream_id, ssn, ppid = DATA_HEADER.unpack_from(data, offset)
                result = receiver.receive_data(
                    flags, tsn, stream_id, ssn, ppid, data[offset + 16 : offset + length]
                )
                data_seen = True
                if result:
                    if result == ReceiveResult.DUPLICATE:
                        self.stats.duplicate_data_chunks += 1
                    elif result == ReceiveResult.DROPPED:
                        self.stats.data_chunks_dropped += 1
                        immediate = True
                    else:
                        self._fail("message larger than max-message-size")
                        return
                if flags & FLAG_IMMEDIATE:
                    immediate = True
            else:
                chunk = RawChunk(chunk_type, flags, data[offset + 4 : offset + length])
                if not self._on_control(chunk, now):
                    break
                if self._terminated:
                    return
                receiver = self.receiver
            offset += (length + 3) & ~3
        if data_seen and receiver is not None:
            self._data_packets_unacked += 1
            # RFC 9260 §6.2 and §6.7: SACK at once on gaps or duplicates, else every second
            # packet, else within the delayed-ack timeout. A SACK reporting a gap or duplicates
            # is built now, per packet, since the peer counts misses per SACK (§7.2.4). A plain
            # one is built when packets next go out: for a burst handed over in one step that is
            # one SACK covering all of it, instead of one per two packets of which all but the
            # last would be superseded before leaving. (Our sender keeps slow start's growth
            # with such a SACK by counting bytes, see CongestionControl.on_cumulative_ack.)
            if immediate or receiver.received_above or receiver.duplicates:
                self._sacks.append(self._build_sack())
            elif self._data_packets_unacked >= 2:
                self._sack_needed = True
            elif self._sack_at is None:
                self._sack_at = now + self.delayed_ack_timeout

    def _on_control(self, chunk: RawChunk, now: float) -> bool:
        """Handle one non-DATA chunk. Returns False to stop processing the packet."""
        kind = chunk.type
        handler = HANDLERS.get(kind)
        if handler is not None:
            handler(self, chunk, now)
            if self.trace is not None:
                if kind == ChunkType.FORWARD_TSN:
                    self.trace("forward_tsn_received", {"length": len(chunk.value)})
                self._trace_changes()
            return True
        self.stats.unknown_chunks += 1
        # RFC 9260 §3.2: the two high bits of an unknown type say what to do.
        action = kind >> 6
        if action in (1, 3) and self.peer_tag:
            cause = ErrorCause(
                CauseCode.UNRECOGNIZED_CHUNK_TYPE, encode_chunk(kind, chunk.flags, chunk.value)
            )
            self._control.append(
                (self.peer_tag, encode_chunk(ChunkType.ERROR, 0, encode_causes([cause])))
            )
        return action >= 2

    # -- handshake -----------------------------------------------------------------------------

    def _init_chunk(self) -> InitChunk:
        return InitChunk(
            self.local_tag,
            self.receive_window,
            self.streams,
            self.streams,
            self._initial_tsn,
            build_init_parameters(zero_checksum=self.zero_checksum),
        )

    def _adopt_peer(
        self,
        tag: int,
        initial_tsn: int,
        a_rwnd: int,
        outbound_streams: int,
        inbound_streams: int,
        capabilities: PeerCapabilities,
    ) -> None:
        self.peer_tag = tag
        self.capabilities = capabilities
        self.outbound_streams = min(self.streams, inbound_streams)
        self.inbound_streams = min(self.streams, outbound_streams)
        self.receiver = Receiver(
            initial_tsn=initial_tsn,
            receive_window=self.receive_window,
            max_message_size=self.max_message_size,
            events=self._events,
        )
        self.reconfig.peer_expected_sequence = initial_tsn
        sender = self.sender
        sender.peer_rwnd = a_rwnd
        sender.cc.ssthresh = max(a_rwnd, 4 * self.mtu)

    def _establish(self) -> None:
        self.state = AssociationState.ESTABLISHED
        self._t1_at = None
        if not self.capabilities.reconfig and self.reconfig.pending:
            # Resets asked for before we knew the peer cannot do them: let the data go.
            streams = self.reconfig.pending
            self.reconfig.pending = []
            self._release_paused(streams)
        self._zero_checksum_active = self.zero_checksum and self.capabilities.zero_checksum
        self._events.append(
            AssociationEstablished(
                self.outbound_streams,
                self.inbound_streams,
                self._zero_checksum_active,
                self.capabilities.forward_tsn,
                self.capabilities.reconfig,
            )
        )

    # -- data-phase control chunks -------------------------------------------------------------

    def _after_ack(self) -> None:
        sender = self.sender
        stats = self.stats
        stats.retransmitted_chunks = sender.retransmissions
        stats.fast_retransmitted_chunks = sender.fast_retransmissions
        stats.abandoned_messages = sender.abandoned_messages
        if self.has_pending_data():
            return
        if self.state is AssociationState.SHUTDOWN_PENDING:
            self.state = AssociationState.SHUTDOWN_SENT
            self._start_t2()
        elif self.state is AssociationState.SHUTDOWN_RECEIVED:
            self.state = AssociationState.SHUTDOWN_ACK_SENT
            self._start_t2()

    def _start_t2(self) -> None:
        self._t2_count = 0
        self._t2_at = None  # armed in datagrams_to_send, which knows ``now``
        self._send_shutdown_chunk()

    def _send_shutdown_chunk(self) -> None:
        if self.state is AssociationState.SHUTDOWN_SENT:
            assert self.receiver is not None
            value = struct.pack("!I", self.receiver.cumulative_tsn & _MASK32)
            self._control.append((self.peer_tag, encode_chunk(ChunkType.SHUTDOWN, 0, value)))
        elif self.state is AssociationState.SHUTDOWN_ACK_SENT:
            self._control.append((self.peer_tag, encode_chunk(ChunkType.SHUTDOWN_ACK)))
        self._t2_pending = True

    # -- output --------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Every packet due now, each at most ``mtu`` bytes: control chunks first (SACK before
        DATA, RFC 9260 §6.5), then DATA bundled as tightly as the MTU allows (no Nagle)."""
        state = self.state
        sender = self.sender
        control = self._control
        data_allowed = False
        if state in DATA_STATES and self.receiver is not None:
            if (
                state is AssociationState.SHUTDOWN_PENDING
                or state is AssociationState.SHUTDOWN_RECEIVED
            ) and not self.has_pending_data():
                self._after_ack()
            data_allowed = self.state in SENDS_DATA
            self._queue_data_phase_control(now, data_allowed)
        if self._t2_pending:
            self._t2_pending = False
            self._t2_at = now + self.rto.rto
        if self.trace is not None:
            self._trace_changes()
        if not control and not (data_allowed and sender.has_data_to_send()):
            return []
        packets: list[bytes] = []
        budget = self.mtu - COMMON_HEADER_SIZE
        local, remote = self.local_port, self.remote_port
        zero_ok = self._zero_checksum_active
        chunks: list[bytes] = []
        size = 0
        tag = -1
        needs_crc = False
        alone = False  # the packet being built holds a chunk that travels alone
        for chunk_tag, chunk in control:
            if chunks and (
                alone
                or chunk_tag != tag
                or size + len(chunk) > budget
                or chunk[0] in _ALONE
                or chunk[0] == ChunkType.SACK
            ):
                packets.append(
                    encode_packet(
                        local, remote, tag, chunks, zero_checksum=zero_ok and not needs_crc
                    )
                )
                chunks, size, needs_crc = [], 0, False
            tag = chunk_tag
            chunks.append(chunk)
            size += len(chunk)
            needs_crc = needs_crc or chunk[0] in _NEEDS_CRC
            alone = chunk[0] in _ALONE
        control.clear()
        if data_allowed:
            peer_tag = self.peer_tag
            if chunks and (tag != peer_tag or alone):
                packets.append(
                    encode_packet(
                        local, remote, tag, chunks, zero_checksum=zero_ok and not needs_crc
                    )
                )
                chunks, size, needs_crc = [], 0, False
            ignore_cwnd = sender.fast_retransmit_pending
            sender.fast_retransmit_pending = False
            while True:
                data = sender.collect(budget - size, now, ignore_cwnd=ignore_cwnd)
                ignore_cwnd = False
                if data:
                    chunks.extend(data)
                elif not chunks:
                    break
                packets.append(
                    encode_packet(
                        local, remote, peer_tag, chunks, zero_checksum=zero_ok and not needs_crc
                    )
                )
                # A control-only packet may have left no room for a full DATA chunk: loop
                # once more with an empty packet; ``collect`` returning nothing ends it.
                chunks, size, needs_crc = [], 0, False
            self._emit_buffered_changes()
        elif chunks:
            packets.append(
                encode_packet(local, remote, tag, chunks, zero_checksum=zero_ok and not needs_crc)
            )
        if packets:
            stats = self.stats
            stats.packets_sent += len(packets)
            stats.retransmitted_chunks = sender.retransmissions
            stats.fast_retransmitted_chunks = sender.fast_retransmissions
            stats.abandoned_messages = sender.abandoned_messages
            self._last_sent_at = now
            if self.trace is not None:
                self._trace_changes()
        return packets

    def _queue_data_phase_control(self, now: float, data_allowed: bool) -> None:
        sender = self.sender
        receiver = self.receiver
        assert receiver is not None
        control = self._control
        if self.reconfig.wants_to_send() and self.capabilities.reconfig:
            request, _ = self.reconfig.take_request(sender.next_tsn - 1)
            control.append((self.peer_tag, encode_reconfig([request])))
            self.reconfig.timer_at = now + self.rto.rto
        if sender.forward_tsn_needed:
            sender.forward_tsn_needed = False
            if self.capabilities.forward_tsn:
                forward = sender.forward_tsn()
                control.insert(0, (self.peer_tag, encode_forward_tsn(forward)))
                if self.trace is not None:
                    self.trace(
                        "forward_tsn_sent", {"new_cumulative_tsn": forward.new_cumulative_tsn}
                    )
                # RFC 3758 §3.5 C3: a FORWARD TSN can be lost too; T3-rtx resends it. This
                # matters when only never-sent chunks were abandoned (nothing else in flight).
                if sender.t3_expires_at is None:
                    sender.t3_expires_at = now + self.rto.rto
        if self._sack_needed or (
            self._sack_at is not None and data_allowed and sender.has_data_to_send()
        ):
            self._sacks.append(self._build_sack())
        if self._sacks:
            # Each SACK goes in its own packet, the newest one first in the next packet so that
            # it rides along with DATA.
            sacks = self._sacks
            self._sacks = []
            control[:0] = [(self.peer_tag, sack) for sack in sacks]

    def _build_sack(self) -> bytes:
        receiver = self.receiver
        assert receiver is not None
        self._sack_needed = False
        self._sack_at = None
        self._data_packets_unacked = 0
        duplicates = receiver.take_duplicates()
        limit = (self.mtu - COMMON_HEADER_SIZE - 16 - 4 * len(duplicates)) // 4
        a_rwnd = receiver.a_rwnd()
        self._last_advertised_rwnd = a_rwnd
        sack = SackChunk(
            receiver.cumulative_tsn & _MASK32,
            a_rwnd,
            receiver.gap_blocks(limit),
            duplicates,
        )
        if self.trace is not None and (sack.gap_blocks or duplicates):
            self.trace(
                "sack_gap",
                {
                    "cumulative_tsn": sack.cumulative_tsn_ack,
                    "gaps": [list(block) for block in sack.gap_blocks],
                    "duplicates": len(duplicates),
                },
            )
        return encode_sack(sack)

    def _emit_buffered_changes(self) -> None:
        changed = self.sender.buffered_changed
        if changed:
            buffered = self.sender.buffered
            for stream_id in changed:
                amount = buffered[stream_id]
                self._events.append(BufferedAmountChanged(stream_id, amount))
                if not amount:
                    del buffered[stream_id]  # every stream ever used would keep an entry
            changed.clear()

    # -- structured trace (trio_rtc.trace) -----------------------------------------------------

    def _trace_changes(self) -> None:
        """Report what changed since the last look: the state, the congestion and timer
        variables, and the retransmission counters. Called only while tracing."""
        trace = self.trace
        assert trace is not None
        sender = self.sender
        cc = sender.cc
        rto = self.rto
        previous = self._traced[0] if self._traced else AssociationState.CLOSED
        if self.state is not previous:
            assert isinstance(previous, AssociationState)
            trace("state", {"state": self.state.value, "previous": previous.value})
        snapshot = (self.state, cc.cwnd, cc.ssthresh, rto.rto, rto.srtt, cc.in_fast_recovery)
        if snapshot[1:] != self._traced[1:]:
            trace(
                "metrics",
                {
                    "cwnd": cc.cwnd,
                    "ssthresh": cc.ssthresh,
                    "rto": rto.rto,
                    "srtt": rto.srtt,
                    "flight_size": sender.flight_size,
                    "in_fast_recovery": cc.in_fast_recovery,
                    "bytes_acked": sender.bytes_acked,
                },
            )
        self._traced = snapshot
        counts = (sender.retransmissions, sender.fast_retransmissions, sender.abandoned_messages)
        if counts != self._traced_counts:
            if counts[:2] != self._traced_counts[:2]:
                trace("retransmitted", {"chunks": counts[0], "fast_chunks": counts[1]})
            if counts[2] != self._traced_counts[2]:
                trace("abandoned", {"messages": counts[2]})
            self._traced_counts = counts
