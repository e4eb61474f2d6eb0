"""Data Channel Establishment Protocol (RFC 8832) and the WebRTC PPIDs (RFC 8831 §8).

:class:`DcepChannelManager` is pure like the association it drives: it turns channel operations
into ``send_message``/``reset_streams`` calls and turns association events into channel events.
RTCDataChannel builds on it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs

from ..exceptions import InvalidStateError
from .association import SctpAssociation
from .events import MessageReceived, SctpEvent, StreamsReset

__all__ = [
    "MAX_OPEN_CHANNELS",
    "ChannelAcknowledged",
    "ChannelClosed",
    "ChannelMessage",
    "ChannelOpened",
    "ChannelType",
    "DataChannelOpen",
    "DataChannelParameters",
    "DcepChannelManager",
    "DcepError",
    "DcepEvent",
    "Ppid",
]

#: Data channels open at once on one association, whoever opened them (docs/limits.md). We
#: announce 65535 streams in INIT, as RFC 8831 §6.2 says, so the stream count bounds nothing
#: useful: a peer could open about 32,768 channels of its parity. Chromium and libdatachannel
#: negotiate 1024 streams (ids 0..1023), Firefox 2048 (1024 of each parity), so no browser
#: opens more than 1024 channels itself and this bound matches what browsers live with. A peer's
#: DATA_CHANNEL_OPEN beyond it is refused: its stream is reset, so the peer sees the channel
#: it opened close (RFC 8831 §6.7), and ``DcepChannelManager.channels_refused`` counts it.
#: Our own ``createDataChannel`` beyond it raises OperationError.
MAX_OPEN_CHANNELS = 1024
#: Refused OPENs whose stream reset we have asked for and the peer not yet answered. Past it a
#: refused OPEN is dropped (still counted) without a reset of its own: a peer that floods OPENs
#: and never answers RE-CONFIG cannot make every refusal cost a longer reset request.
_MAX_REFUSALS_IN_FLIGHT = 256


class DcepError(Exception):
    """A malformed DCEP message from the peer. Callers count it and drop the message."""


class Ppid(enum.IntEnum):
    """Payload Protocol Identifiers used by WebRTC (RFC 8831 §8, RFC 8832 §8.1)."""

    DCEP = 50
    STRING = 51
    STRING_PARTIAL = 52  # deprecated
    BINARY = 53
    BINARY_PARTIAL = 54  # deprecated
    STRING_EMPTY = 56
    BINARY_EMPTY = 57


class ChannelType(enum.IntEnum):
    """RFC 8832 §5.1: the high bit means unordered, the low bits the reliability kind."""

    RELIABLE = 0x00
    RELIABLE_UNORDERED = 0x80
    PARTIAL_RELIABLE_REXMIT = 0x01
    PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81
    PARTIAL_RELIABLE_TIMED = 0x02
    PARTIAL_RELIABLE_TIMED_UNORDERED = 0x82


MESSAGE_OPEN = 0x03
MESSAGE_ACK = 0x02
_OPEN_HEADER = struct.Struct("!BBHIHH")
# Labels and protocols are at most 65535 bytes by their 16-bit length fields.


@attrs.frozen
class DataChannelOpen:
    """DATA_CHANNEL_OPEN (RFC 8832 §5.1)."""

    channel_type: int
    priority: int
    reliability_parameter: int
    label: str
    protocol: str

    def encode(self) -> bytes:
        label = self.label.encode()
        protocol = self.protocol.encode()
        header = _OPEN_HEADER.pack(
            MESSAGE_OPEN,
            self.channel_type,
            self.priority,
            self.reliability_parameter,
            len(label),
            len(protocol),
        )
        return header + label + protocol

    @classmethod
    def decode_untrusted(cls, data: bytes) -> DataChannelOpen:
        if len(data) < _OPEN_HEADER.size:
            raise DcepError("DATA_CHANNEL_OPEN shorter than its header")
        kind, channel_type, priority, reliability, label_length, protocol_length = (
            _OPEN_HEADER.unpack_from(data)
        )
        if kind != MESSAGE_OPEN:
            raise DcepError("not a DATA_CHANNEL_OPEN")
        if channel_type not in ChannelType._value2member_map_:
            raise DcepError(f"unknown channel type {channel_type:#x}")
        end = _OPEN_HEADER.size + label_length + protocol_length
        if len(data) != end:
            raise DcepError("DATA_CHANNEL_OPEN length does not match its label and protocol")
        try:
            label = data[_OPEN_HEADER.size : _OPEN_HEADER.size + label_length].decode()
            protocol = data[_OPEN_HEADER.size + label_length : end].decode()
        except UnicodeDecodeError as error:
            raise DcepError("label or protocol is not UTF-8") from error
        return cls(channel_type, priority, reliability, label, protocol)


@attrs.define
class DataChannelParameters:
    """What RTCDataChannel needs to know about one channel."""

    stream_id: int
    label: str = ""
    protocol: str = ""
    ordered: bool = True
    max_retransmits: int | None = None
    #: Milliseconds, as in the W3C API and on the DCEP wire.
    max_packet_lifetime: int | None = None
    priority: int = 256
    negotiated: bool = False

    def to_open(self) -> DataChannelOpen:
        kind: int
        parameter: int
        if self.max_retransmits is not None:
            kind, parameter = ChannelType.PARTIAL_RELIABLE_REXMIT, self.max_retransmits
        elif self.max_packet_lifetime is not None:
            kind, parameter = ChannelType.PARTIAL_RELIABLE_TIMED, self.max_packet_lifetime
        else:
            kind, parameter = ChannelType.RELIABLE, 0
        if not self.ordered:
            kind |= 0x80
        return DataChannelOpen(kind, self.priority, parameter, self.label, self.protocol)

    @classmethod
    def from_open(cls, stream_id: int, message: DataChannelOpen) -> DataChannelParameters:
        reliability = message.channel_type & 0x7F
        return cls(
            stream_id=stream_id,
            label=message.label,
            protocol=message.protocol,
            ordered=not message.channel_type & 0x80,
            max_retransmits=message.reliability_parameter if reliability == 0x01 else None,
            max_packet_lifetime=message.reliability_parameter if reliability == 0x02 else None,
            priority=message.priority,
        )


@attrs.frozen
class ChannelOpened:
    """A channel exists: the peer sent DATA_CHANNEL_OPEN (``by_peer``) or we opened one."""

    parameters: DataChannelParameters
    by_peer: bool


@attrs.frozen
class ChannelAcknowledged:
    """The peer's DATA_CHANNEL_ACK arrived for a channel we opened in band."""

    stream_id: int


@attrs.frozen
class ChannelMessage:
    stream_id: int
    data: str | bytes


@attrs.frozen
class ChannelClosed:
    """Both directions of the stream were reset (RFC 8831 §6.7); the id is free again."""

    stream_id: int


DcepEvent = ChannelOpened | ChannelAcknowledged | ChannelMessage | ChannelClosed


# Plain ints for the per-message paths: IntEnum members cost more to compare and to pack.
_STRING, _BINARY = int(Ppid.STRING), int(Ppid.BINARY)
_STRING_EMPTY, _BINARY_EMPTY = int(Ppid.STRING_EMPTY), int(Ppid.BINARY_EMPTY)


class _Channel:
    __slots__ = (
        "acknowledged",
        "incoming_reset",
        "lifetime",
        "outgoing_done",
        "outgoing_reset",
        "parameters",
    )

    def __init__(self, parameters: DataChannelParameters, *, acknowledged: bool) -> None:
        self.parameters = parameters
        #: maxPacketLifetime in seconds, as the association takes it.
        self.lifetime = (
            None
            if parameters.max_packet_lifetime is None
            else parameters.max_packet_lifetime / 1000
        )
        self.acknowledged = acknowledged
        self.outgoing_reset = False  # we asked to reset our direction
        self.outgoing_done = False  # the peer performed it
        self.incoming_reset = False


class DcepChannelManager:
    """Channels of one association: ids by DTLS role, DCEP open/ack, PPIDs, close by reset."""

    def __init__(
        self,
        association: SctpAssociation,
        *,
        is_client: bool,
        max_channels: int = 65535,
        max_open_channels: int = MAX_OPEN_CHANNELS,
    ) -> None:
        self.association = association
        # RFC 8832 §6: the DTLS client uses even stream ids, the DTLS server odd ones.
        self.parity = 0 if is_client else 1
        #: Stream ids given out are below this (and below the negotiated stream count).
        self.max_channels = max_channels
        #: Channels open at once, ours and the peer's (:data:`MAX_OPEN_CHANNELS`).
        self.max_open_channels = max_open_channels
        #: Every channel not yet closed in both directions, by stream id.
        self.channels: dict[int, _Channel] = {}
        #: DCEP messages and messages on streams without a channel, dropped.
        self.dropped_messages = 0
        #: The peer's DATA_CHANNEL_OPENs refused at ``max_open_channels`` (each is also in
        #: ``dropped_messages``).
        self.channels_refused = 0
        #: Stream ids reset to refuse an OPEN, whose reset the peer has not answered yet.
        self._refusing: set[int] = set()
        self._next_stream_index = 0
        #: "lowest-free" (what browsers do) or "round-robin" (what RTCSctpTransport uses; see
        #: allocate_stream_id).
        self.stream_id_policy = "lowest-free"
        #: Structured trace (trio_rtc.trace), set by the driver; None is tracing off.
        self.trace: Callable[[str, dict[str, Any]], None] | None = None

    def allocate_stream_id(self, reserved: Collection[int] = ()) -> int:
        """The stream id for a new channel: of our parity (RFC 8832 §6), free here and not in
        ``reserved`` (ids the layer above has given out but not opened yet). By
        :attr:`stream_id_policy`: the lowest such id, as browsers do, or round robin from the
        one after the last given out — taking a just-closed id last means its reuse cannot
        overtake the peer's view of the old channel's closing (the peer frees the id half a
        round trip after us, later still if a RE-CONFIG response is lost). ValueError if none
        is free, or if :attr:`max_open_channels` channels are open or reserved already."""
        channels = self.channels
        open_count = len(channels) + sum(1 for i in reserved if i not in channels)
        if open_count >= self.max_open_channels:
            raise ValueError(
                f"{open_count} data channels are open, the most one connection may have at once"
                f" (MAX_OPEN_CHANNELS = {self.max_open_channels}); close one first"
            )
        limit = min(self.max_channels, self.association.outbound_streams)
        parity = self.parity
        count = max(0, (limit - parity + 1) // 2)
        start = 0 if self.stream_id_policy == "lowest-free" else self._next_stream_index
        for step in range(count):
            index = (start + step) % count
            stream_id = parity + 2 * index
            if stream_id not in self.channels and stream_id not in reserved:
                self._next_stream_index = index + 1
                return stream_id
        raise ValueError("no free stream id for a new data channel")

    def open_channel(self, parameters: DataChannelParameters, *, now: float) -> None:
        """Register a channel; unless ``negotiated``, send DATA_CHANNEL_OPEN (RFC 8832 §6)."""
        if parameters.stream_id in self.channels:
            raise ValueError(f"stream id {parameters.stream_id} is already in use")
        self.channels[parameters.stream_id] = _Channel(
            parameters, acknowledged=parameters.negotiated
        )
        if not parameters.negotiated:
            self.association.send_message(
                parameters.stream_id, Ppid.DCEP, parameters.to_open().encode(), now=now
            )
            if self.trace is not None:
                self._trace_open("open_sent", parameters)

    def send(self, stream_id: int, data: str | bytes, *, now: float) -> None:
        refused = self.send_many(stream_id, [data], now=now)
        if refused:
            raise refused[0][1]

    def send_many(
        self, stream_id: int, messages: Sequence[str | bytes], *, now: float
    ) -> list[tuple[int, ValueError]]:
        """Several messages of one channel, in order (:meth:`send` for each, with the channel
        looked up once). Raises ValueError when the channel is not open; returns the messages
        the association refused on their own (index, error): the others went."""
        channel = self.channels.get(stream_id)
        if channel is None or channel.outgoing_reset:
            raise ValueError(f"no open data channel on stream {stream_id}")
        ppids: list[int] = []
        payloads: list[bytes] = []
        for data in messages:
            if type(data) is bytes:
                payload = data
                ppid = _BINARY if payload else _BINARY_EMPTY
            elif isinstance(data, str):
                payload = data.encode()
                ppid = _STRING if payload else _STRING_EMPTY
            else:
                payload = bytes(data)
                ppid = _BINARY if payload else _BINARY_EMPTY
            ppids.append(ppid)
            # RFC 8831 §6.6: an empty message is sent as one byte with the "empty" PPID.
            payloads.append(payload or b"\x00")
        parameters = channel.parameters
        return self.association.send_messages(
            stream_id,
            ppids,
            payloads,
            # RFC 8832 §6: until the ACK arrives, messages go ordered so none overtakes the OPEN.
            parameters.ordered or not channel.acknowledged,
            parameters.max_retransmits,
            channel.lifetime,
            now,
        )

    def close_channel(self, stream_id: int) -> None:
        """Reset our outgoing stream; ChannelClosed follows once the peer resets its side."""
        channel = self.channels.get(stream_id)
        if channel is None or channel.outgoing_reset:
            return
        channel.outgoing_reset = True
        self.association.reset_streams([stream_id])

    def handle_event(self, event: SctpEvent, *, now: float) -> list[DcepEvent]:
        """Feed every association event here; returns the channel events it causes."""
        if isinstance(event, MessageReceived):
            return self._on_message(event, now)
        if isinstance(event, StreamsReset):
            return self._on_reset(event)
        return []

    def message_data(self, event: MessageReceived) -> str | bytes | None:
        """The per-message path of :meth:`handle_event` for a message that is not DCEP: its
        data for the application, or None when it is dropped (counted)."""
        channel = self.channels.get(event.stream_id)
        if channel is None or channel.incoming_reset:
            self.dropped_messages += 1
            return None
        # RFC 8832 §6: any message from the peer implies it got our OPEN.
        channel.acknowledged = True
        ppid = event.ppid
        if ppid == _BINARY or ppid == Ppid.BINARY_PARTIAL:
            return event.data
        if ppid == _STRING or ppid == Ppid.STRING_PARTIAL:
            return event.data.decode("utf-8", "replace")
        if ppid == _STRING_EMPTY:
            return ""
        if ppid == _BINARY_EMPTY:
            return b""
        self.dropped_messages += 1
        return None

    def _on_message(self, event: MessageReceived, now: float) -> list[DcepEvent]:
        stream_id = event.stream_id
        ppid = event.ppid
        if ppid == Ppid.DCEP:
            try:
                return self._on_dcep_untrusted(stream_id, event.data, now)
            except DcepError:
                self.dropped_messages += 1
                return []
        channel = self.channels.get(stream_id)
        if channel is None or channel.incoming_reset:
            self.dropped_messages += 1
            return []
        # RFC 8832 §6: any message from the peer implies it got our OPEN.
        channel.acknowledged = True
        data: str | bytes
        if ppid in (Ppid.STRING, Ppid.STRING_PARTIAL):
            data = event.data.decode("utf-8", "replace")
        elif ppid in (Ppid.BINARY, Ppid.BINARY_PARTIAL):
            data = event.data
        elif ppid == Ppid.STRING_EMPTY:
            data = ""
        elif ppid == Ppid.BINARY_EMPTY:
            data = b""
        else:
            self.dropped_messages += 1
            return []
        return [ChannelMessage(stream_id, data)]

    def _on_dcep_untrusted(self, stream_id: int, data: bytes, now: float) -> list[DcepEvent]:
        if not data:
            raise DcepError("empty DCEP message")
        if data[0] == MESSAGE_ACK:
            if len(data) != 1:
                raise DcepError("DATA_CHANNEL_ACK must be one byte")
            channel = self.channels.get(stream_id)
            if channel is None or channel.acknowledged:
                return []
            channel.acknowledged = True
            if self.trace is not None:
                self.trace("ack_received", {"stream_id": stream_id})
            return [ChannelAcknowledged(stream_id)]
        message = DataChannelOpen.decode_untrusted(data)
        events: list[DcepEvent] = []
        old = self.channels.get(stream_id)
        if old is not None and old.incoming_reset:
            # The peer reuses an id whose closing we have not seen end: it frees an id only once
            # it performed our reset too, so only its response is still on the way (maybe lost
            # and retransmitted). The old channel is closed; the new one starts.
            del self.channels[stream_id]
            events.append(ChannelClosed(stream_id))
        elif old is not None or stream_id % 2 == self.parity:
            # An id that is in use, or of our own parity: the peer broke RFC 8832 §6.
            raise DcepError(f"DATA_CHANNEL_OPEN on unusable stream {stream_id}")
        if len(self.channels) >= self.max_open_channels:
            self._refuse_open(stream_id)
            return events
        parameters = DataChannelParameters.from_open(stream_id, message)
        try:
            self.association.send_message(stream_id, Ppid.DCEP, bytes([MESSAGE_ACK]), now=now)
        except InvalidStateError:
            # The OPEN was read after the association ended (it came in the same burst as the
            # end): there is no channel to open any more.
            return events
        self.channels[stream_id] = _Channel(parameters, acknowledged=True)
        events.append(ChannelOpened(parameters, by_peer=True))
        if self.trace is not None:
            self._trace_open("open_received", parameters)
        return events

    def _refuse_open(self, stream_id: int) -> None:
        """Refuse the peer's DATA_CHANNEL_OPEN on ``stream_id`` (at :attr:`max_open_channels`):
        no ACK and nothing kept; our side of the stream is reset, which is how a channel closes
        (RFC 8831 §6.7), so the peer sees the channel it opened close and frees the id. What the
        peer sent on the stream meanwhile is dropped like any message without a channel."""
        self.channels_refused += 1
        self.dropped_messages += 1
        if self.trace is not None:
            self.trace("open_refused", {"stream_id": stream_id, "open": len(self.channels)})
        refusing = self._refusing
        if stream_id not in refusing and len(refusing) >= _MAX_REFUSALS_IN_FLIGHT:
            return
        try:
            self.association.reset_streams([stream_id])
        except InvalidStateError:
            return  # the association ended in this same burst: nothing left to refuse
        refusing.add(stream_id)

    def _on_reset(self, event: StreamsReset) -> list[DcepEvent]:
        closed: list[DcepEvent] = []
        to_reset: list[int] = []
        refusing = self._refusing
        for stream_id in event.stream_ids:
            if refusing and not event.incoming:
                refusing.discard(stream_id)  # the peer performed the reset of a refused OPEN
            channel = self.channels.get(stream_id)
            if channel is None:
                continue
            if event.incoming:
                channel.incoming_reset = True
                if not channel.outgoing_reset:
                    # RFC 8831 §6.7: the peer closed; close our direction too.
                    channel.outgoing_reset = True
                    to_reset.append(stream_id)
            elif channel.outgoing_reset:
                # A late response for a previous channel on this id (see _on_dcep_untrusted)
                # says nothing about a channel that has not asked for its reset yet.
                channel.outgoing_done = True
            if channel.incoming_reset and channel.outgoing_done:
                del self.channels[stream_id]
                closed.append(ChannelClosed(stream_id))
        if to_reset:
            self.association.reset_streams(to_reset)
        return closed

    def _trace_open(self, name: str, parameters: DataChannelParameters) -> None:
        assert self.trace is not None
        self.trace(
            name,
            {
                "stream_id": parameters.stream_id,
                "label": parameters.label,
                "protocol": parameters.protocol,
            },
        )
