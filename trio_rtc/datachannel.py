"""RTCDataChannel: the W3C surface (webrtc-pc §6.2) and a trio-native one beside it.

A channel can be created before any transport exists (``pc.createDataChannel`` before
negotiation); :meth:`trio_rtc.sctp.transport.RTCSctpTransport.add_channel` attaches it, and the
transport's task opens it once the SCTP association is up. Everything protocol-related (DCEP,
stream ids, PPIDs, stream resets) happens below the seam described in
:mod:`trio_rtc.sctp.streams`: the channel talks to the transport only through its public seam
methods, and the transport to the channel only through the ``stream_parameters`` /
``on_stream_*`` methods here. This class holds the channel's state, its inbox, and the
user-facing methods.

Incoming messages go to the ``message`` event listeners when the channel has any (``onmessage``
or ``addEventListener("message", ...)``), otherwise to an inbox read by :meth:`receive` and
``async for``. The inbox is bounded: past :attr:`RTCDataChannel.receive_high_water` bytes the
transport stops taking messages from the association, the SCTP receive window closes and the
peer slows down, so a reader that falls behind never makes us buffer without limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from typing import Any, Literal, TypedDict, get_args

import trio

from .events import (
    Event,
    EventHandler,
    EventTarget,
    Handler,
    HandlerQueue,
    RefuseUnknownHandlers,
    RTCDataChannelEvent,
    RTCErrorEvent,
    on_event,
    require_trio,
)
from .exceptions import InvalidStateError, RTCError
from .sctp.dcep import DataChannelParameters
from .sctp.transport import RTCSctpTransport

__all__ = [
    "MessageEvent",
    "RTCDataChannel",
    "RTCDataChannelEvent",
    "RTCDataChannelInit",
    "RTCDataChannelState",
    "RTCPriorityType",
]

RTCDataChannelState = Literal["connecting", "open", "closing", "closed"]
RTCPriorityType = Literal["very-low", "low", "medium", "high"]


class RTCDataChannelInit(TypedDict, total=False):
    """The options of ``createDataChannel`` (webrtc-pc §6.2 RTCDataChannelInit, and
    ``priority`` from webrtc-priority), as a dict or as keywords."""

    ordered: bool
    maxPacketLifetime: int | None
    maxRetransmits: int | None
    protocol: str
    negotiated: bool
    id: int | None
    priority: RTCPriorityType


_READY_STATES: tuple[RTCDataChannelState, ...] = get_args(RTCDataChannelState)

# RFC 8832 §5.1 priority values for the W3C priorities (webrtc-priority §4.1).
PRIORITY_TO_DCEP: dict[str, int] = {"very-low": 128, "low": 256, "medium": 512, "high": 1024}
_UNSIGNED_SHORT = 65535
# Spec surface send(): a browser refuses to queue more than this (Chromium: 16 MiB, raising
# OperationError "send queue is full"); it bounds what a careless sender can pile up.
MAX_SEND_QUEUE = 16 << 20
# A trio-native send_message()/receive() that never has to wait still yields to the scheduler
# once per this many calls, so a tight loop cannot starve other tasks, yet the driver still
# sees messages in batches it can bundle into full packets.
_YIELD_EVERY = 256


class MessageEvent(Event):
    """The DOM ``MessageEvent``: ``data`` is ``str`` for text, ``bytes`` for binary."""

    def __init__(self, type: str, data: str | bytes) -> None:
        super().__init__(type)
        self.data = data


class _Traffic:
    """A channel's per-message bookkeeping, in slots: RTCDataChannel checks every attribute
    assignment on itself (it refuses unknown ``on*`` names), which the per-message path does
    not pay for here."""

    __slots__ = (
        "buffered_hint",
        "bytes_received",
        "bytes_sent",
        "inbox_bytes",
        "low_armed",
        "messages_received",
        "messages_sent",
        "receives_since_yield",
        "sends_since_yield",
        "waiters",
    )

    def __init__(self) -> None:
        #: bufferedAmount after our last send: it only overestimates (the buffer drains).
        self.buffered_hint = 0
        #: Unread bytes in the inbox.
        self.inbox_bytes = 0
        #: bufferedamountlow is armed: bufferedAmount rose above the threshold since it fired.
        self.low_armed = False
        #: Tasks in wait_until (their predicates may read bufferedAmount).
        self.waiters = 0
        self.sends_since_yield = 0
        self.receives_since_yield = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.bytes_received = 0


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _unsigned_short(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name} must be a non-negative integer or None, not {value!r}")
    # WebIDL [EnforceRange] unsigned short; webrtc-pc §6.2 clamps lifetimes the UA cannot honour.
    return min(value, _UNSIGNED_SHORT)


class _LowHandler(on_event[Event]):
    """``onbufferedamountlow``: setting a handler watches the buffer if it is above the
    threshold (see RTCDataChannel._arm_low)."""

    def __set__(self, obj: object, value: Handler[Event] | None) -> None:
        super().__set__(obj, value)
        if value is not None and isinstance(obj, RTCDataChannel):
            obj._arm_low()


class RTCDataChannel(RefuseUnknownHandlers, EventTarget, trio.abc.ReceiveChannel[str | bytes]):
    """A WebRTC data channel (webrtc-pc §6.2), also usable as a ``trio.abc.ReceiveChannel``.

    Spec surface: every attribute, ``send()`` (synchronous; raises the spec's errors),
    ``close()``, and the events ``open``, ``message``, ``bufferedamountlow``, ``error``,
    ``closing`` and ``close``. Trio-native additions: ``await send_message(data)`` waits for
    buffer room, ``await receive()`` / ``async for message in channel`` read the inbox,
    ``await wait_open()``, ``await wait_for(readyState=...)`` and ``await aclose()``.
    """

    onopen = on_event[Event]("open")
    onmessage = on_event[MessageEvent]("message")
    onbufferedamountlow = _LowHandler("bufferedamountlow")
    onerror = on_event[RTCErrorEvent]("error")
    onclosing = on_event[Event]("closing")
    onclose = on_event[Event]("close")

    #: ``send_message`` waits while ``bufferedAmount`` is at least this many bytes, and resumes
    #: once it fell to half of it.
    send_high_water: int = 1 << 20
    #: Unread inbox bytes past which the transport stops reading the association (see module doc).
    receive_high_water: int = 1 << 20

    def __init__(
        self,
        label: str = "",
        *,
        ordered: bool = True,
        maxPacketLifetime: int | None = None,
        maxRetransmits: int | None = None,
        protocol: str = "",
        negotiated: bool = False,
        id: int | None = None,
        priority: RTCPriorityType = "low",
    ) -> None:
        # Validation in the order of webrtc-pc §4.4.1 createDataChannel().
        if not isinstance(label, str) or not isinstance(protocol, str):
            raise TypeError("label and protocol must be strings")
        if _utf8_length(label) > _UNSIGNED_SHORT:
            raise TypeError("label is longer than 65535 bytes in UTF-8")
        if _utf8_length(protocol) > _UNSIGNED_SHORT:
            raise TypeError("protocol is longer than 65535 bytes in UTF-8")
        lifetime = _unsigned_short("maxPacketLifetime", maxPacketLifetime)
        retransmits = _unsigned_short("maxRetransmits", maxRetransmits)
        if lifetime is not None and retransmits is not None:
            raise TypeError("maxPacketLifetime and maxRetransmits cannot both be set")
        if negotiated:
            if id is None:
                raise TypeError("a negotiated data channel needs an id")
            if isinstance(id, bool) or not isinstance(id, int) or not 0 <= id <= 65534:
                raise TypeError(f"id must be an integer in 0..65534, not {id!r}")
        if priority not in PRIORITY_TO_DCEP:
            raise TypeError(f"priority must be one of {sorted(PRIORITY_TO_DCEP)}, not {priority!r}")
        self._label = label
        self._ordered = bool(ordered)
        self._max_packet_lifetime = lifetime
        self._max_retransmits = retransmits
        self._protocol = protocol
        self._negotiated = bool(negotiated)
        # webrtc-pc: the id option is ignored unless the channel is negotiated out of band.
        self._id: int | None = id if negotiated else None
        self._priority: RTCPriorityType = priority
        self._ready_state: RTCDataChannelState = "connecting"
        self._buffered_amount_low_threshold = 0
        self._binary_type: Literal["arraybuffer", "blob"] = "arraybuffer"
        self._transport: RTCSctpTransport | None = None
        self._closed_with_error = False
        #: Bytes given to send() that the transport's task has not yet taken into the association.
        self._unsent = 0
        # The inbox and the two parking lots are made when first needed: a channel read through
        # onmessage, or one nobody waits on, never needs them (an empty deque alone holds a
        # 64-slot block). None reads as empty everywhere.
        self._inbox: deque[str | bytes] | None = None
        self._inbox_waiters: trio.lowlevel.ParkingLot | None = None
        self._room_waiters: trio.lowlevel.ParkingLot | None = None
        self._traffic = _Traffic()

    def __repr__(self) -> str:
        return f"<RTCDataChannel {self._label!r} id={self._id} {self._ready_state}>"

    # --- counters (RTCDataChannelStats) ------------------------------------------------------

    @property
    def messages_sent(self) -> int:
        return self._traffic.messages_sent

    @property
    def bytes_sent(self) -> int:
        return self._traffic.bytes_sent

    @property
    def messages_received(self) -> int:
        return self._traffic.messages_received

    @property
    def bytes_received(self) -> int:
        return self._traffic.bytes_received

    @property
    def _inbox_bytes(self) -> int:
        """Unread bytes in the inbox."""
        return self._traffic.inbox_bytes

    # --- W3C attributes ----------------------------------------------------------------------

    @property
    def label(self) -> str:
        return self._label

    @property
    def ordered(self) -> bool:
        return self._ordered

    @property
    def maxPacketLifetime(self) -> int | None:
        return self._max_packet_lifetime

    @property
    def maxRetransmits(self) -> int | None:
        return self._max_retransmits

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def negotiated(self) -> bool:
        return self._negotiated

    @property
    def id(self) -> int | None:
        return self._id

    @property
    def priority(self) -> RTCPriorityType:
        return self._priority

    @property
    def readyState(self) -> RTCDataChannelState:
        return self._ready_state

    @property
    def bufferedAmount(self) -> int:
        """Bytes given to :meth:`send` and not yet handed to the network once."""
        transport = self._transport
        return 0 if transport is None else transport.buffered_amount(self)

    @property
    def bufferedAmountLowThreshold(self) -> int:
        return self._buffered_amount_low_threshold

    @bufferedAmountLowThreshold.setter
    def bufferedAmountLowThreshold(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"bufferedAmountLowThreshold must be an integer >= 0, not {value!r}")
        self._buffered_amount_low_threshold = value
        if self._transport is not None and self.bufferedAmount > value:
            self._traffic.low_armed = True
            self._transport.watch_buffered(self)

    @property
    def binaryType(self) -> Literal["arraybuffer", "blob"]:
        """Binary messages arrive as ``bytes`` whatever this says (Python has no Blob)."""
        return self._binary_type

    @binaryType.setter
    def binaryType(self, value: Literal["arraybuffer", "blob"]) -> None:
        if value not in ("arraybuffer", "blob"):
            raise TypeError(f"binaryType must be 'arraybuffer' or 'blob', not {value!r}")
        self._binary_type = value

    @property
    def sctp_transport(self) -> RTCSctpTransport | None:
        """The SCTP transport this channel is attached to (None until ``add_channel``)."""
        return self._transport

    # --- W3C methods -------------------------------------------------------------------------

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Queue one message (webrtc-pc §6.2 ``send``). Raises InvalidStateError unless open,
        TypeError if larger than the transport's ``maxMessageSize``, OperationError if the
        send queue is full (see ``MAX_SEND_QUEUE``)."""
        if self._ready_state != "open":
            raise InvalidStateError(f"cannot send on a data channel that is {self._ready_state}")
        size: int
        if isinstance(data, bytes):
            size = len(data)
        elif isinstance(data, str):
            size = len(data) if data.isascii() else len(data.encode())
        elif isinstance(data, bytearray | memoryview):
            data = bytes(data)
            size = len(data)
        else:
            raise TypeError(f"data must be str, bytes, bytearray or memoryview, not {type(data)}")
        transport = self._transport
        assert transport is not None
        if size > transport.maxMessageSize:
            raise TypeError(
                f"message of {size} bytes exceeds maxMessageSize ({transport.maxMessageSize})"
            )
        buffered = transport.send_message(self, data, size, max_buffered=MAX_SEND_QUEUE)
        traffic = self._traffic
        traffic.buffered_hint = buffered
        if (
            buffered > self._buffered_amount_low_threshold
            and not traffic.low_armed
            and self._low_noticed()
        ):
            # Armed once per fall: the transport watches the stream until the event fired.
            # Unwatched when nobody would notice (a listener, a handler or a waiter arriving
            # later arms it then, see _arm_low): a message's round trip is 2-3 µs shorter.
            traffic.low_armed = True
            transport.watch_buffered(self)
        traffic.messages_sent += 1
        traffic.bytes_sent += size

    def close(self) -> None:
        """Start closing (webrtc-pc §6.2 ``close``): readyState becomes ``closing``; ``close``
        fires once both directions of the stream are reset (RFC 8831 §6.7)."""
        if self._ready_state in ("closing", "closed"):
            return
        transport = self._transport
        if transport is None or not transport.close_stream(self):
            # Never opened on an association: nothing to reset, closed at once.
            self._ready_state = "closing"
            self._set_closed(error=None)
            return
        self._ready_state = "closing"
        self._trace_state()
        self._notify_waiters()

    # --- trio-native additions -----------------------------------------------------------------

    async def wait_open(self) -> None:
        """Return once the channel is open; raise InvalidStateError if it closed instead."""
        if self._ready_state == "connecting":
            require_trio("RTCDataChannel.wait_open()")
        await self.wait_until(lambda: self._ready_state != "connecting")
        if self._ready_state != "open":
            raise InvalidStateError(f"data channel is {self._ready_state}, not open")

    async def wait_for(
        self, *, readyState: RTCDataChannelState | Collection[RTCDataChannelState]
    ) -> RTCDataChannelState:
        """Wait until ``readyState`` has a value, or one of several, and return it:
        ``await channel.wait_for(readyState="closed")``. ValueError for a value it never takes;
        InvalidStateError if the channel closes first (unless ``"closed"`` is wanted)."""
        state: RTCDataChannelState = await self._wait_for_value(
            {"readyState": readyState},
            _READY_STATES,
            lambda: self._ready_state == "closed",
        )
        return state

    async def send_message(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send with backpressure: wait until the channel is open and ``bufferedAmount`` is
        below :attr:`send_high_water`, then :meth:`send`."""
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except RuntimeError:
            require_trio("RTCDataChannel.send_message()")
            raise
        if self._ready_state == "connecting":
            await self.wait_open()
        # The hint (bufferedAmount after our last send) only overestimates: the buffer drains
        # between sends. It spares a lookup per message while far below the mark.
        high_water = self.send_high_water
        traffic = self._traffic
        if (
            self._ready_state == "open"
            and traffic.buffered_hint >= high_water
            and self.bufferedAmount >= high_water
        ):
            transport = self._transport
            assert transport is not None
            while self._ready_state == "open" and self.bufferedAmount > self.send_high_water // 2:
                transport.watch_buffered(self)
                if self._room_waiters is None:
                    self._room_waiters = trio.lowlevel.ParkingLot()
                await self._room_waiters.park()
            traffic.sends_since_yield = 0
            self.send(data)
            return
        self.send(data)
        traffic.sends_since_yield += 1
        if traffic.sends_since_yield >= _YIELD_EVERY:
            traffic.sends_since_yield = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    def receive_nowait(self) -> str | bytes:
        """The next inbox message; ``trio.WouldBlock`` if none is there yet, ``trio.EndOfChannel``
        once the channel closed and the inbox is drained."""
        inbox = self._inbox
        if inbox:
            data = inbox.popleft()
            traffic = self._traffic
            traffic.inbox_bytes -= len(data)
            transport = self._transport
            if (
                transport is not None
                and traffic.inbox_bytes <= self.receive_high_water // 2
                and transport.is_paused_by(self)
            ):
                transport.resume_reading(self)
            return data
        if self._ready_state == "closed":
            if self._closed_with_error:
                raise trio.BrokenResourceError("the data channel's transport failed")
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> str | bytes:
        """The next message (``str`` or ``bytes``); ``trio.EndOfChannel`` once the channel closed
        and every message was read, ``trio.BrokenResourceError`` if it closed by a failure."""
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except RuntimeError:
            require_trio("RTCDataChannel.receive()")
            raise
        traffic = self._traffic
        while True:
            inbox = self._inbox
            if inbox and self._transport is not None and not self._transport.is_paused_by(self):
                # The common case, inline: a message is there and nothing to resume.
                data = inbox.popleft()
                traffic.inbox_bytes -= len(data)
            else:
                try:
                    data = self.receive_nowait()
                except trio.WouldBlock:
                    if self._inbox_waiters is None:
                        self._inbox_waiters = trio.lowlevel.ParkingLot()
                    await self._inbox_waiters.park()
                    traffic.receives_since_yield = 0
                    continue
            traffic.receives_since_yield += 1
            if traffic.receives_since_yield >= _YIELD_EVERY:
                traffic.receives_since_yield = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    def send_channel(self) -> trio.abc.SendChannel[str | bytes]:
        """This channel's sending side as a ``trio.abc.SendChannel`` (its ``send`` is
        :meth:`send_message`; ``aclose`` closes the data channel), for code written against
        trio's channel interface. The data channel itself is the receiving side."""
        return _DataChannelSender(self)

    async def aclose(self) -> None:
        """Close and wait until ``readyState`` is ``closed``."""
        require_trio("RTCDataChannel.aclose()")
        self.close()
        await self.wait_until(lambda: self._ready_state == "closed")

    # --- the seam: called by the SCTP transport (see trio_rtc.sctp.streams) ---------------------

    @classmethod
    def for_remote_stream(cls, parameters: DataChannelParameters) -> RTCDataChannel:
        """The channel for a stream the peer opened (the SCTP transport's stream factory): open
        from the start, as webrtc-pc §6.2.3 announces it."""
        channel = cls(
            parameters.label,
            ordered=parameters.ordered,
            maxPacketLifetime=parameters.max_packet_lifetime,
            maxRetransmits=parameters.max_retransmits,
            protocol=parameters.protocol,
            priority=_priority_name(parameters.priority),
        )
        channel._id = parameters.stream_id
        channel._ready_state = "open"
        return channel

    def stream_parameters(self) -> DataChannelParameters:
        return DataChannelParameters(
            stream_id=self._id if self._negotiated and self._id is not None else -1,
            label=self._label,
            protocol=self._protocol,
            ordered=self._ordered,
            max_retransmits=self._max_retransmits,
            max_packet_lifetime=self._max_packet_lifetime,
            priority=PRIORITY_TO_DCEP[self._priority],
            negotiated=self._negotiated,
        )

    def on_stream_attached(self, transport: object, handler_queue: HandlerQueue | None) -> None:
        if self._transport is not None and self._transport is not transport:
            raise InvalidStateError("the data channel is already attached to a transport")
        if self._ready_state not in ("connecting", "open"):
            raise InvalidStateError(f"cannot attach a data channel that is {self._ready_state}")
        assert isinstance(transport, RTCSctpTransport)
        self._transport = transport
        self._handler_queue = handler_queue
        if transport.trace_channels is not None:
            self._trace = transport.trace_channels
        if self._ready_state == "open":
            self._trace_state()

    #: Structured trace (trio_rtc.trace) from the transport; None is tracing off.
    _trace: Callable[[str, dict[str, Any]], None] | None = None

    def _trace_state(self) -> None:
        if self._trace is not None:
            self._trace("state", {"label": self._label, "id": self._id, "state": self._ready_state})

    def on_stream_assigned(self, stream_id: int) -> None:
        self._id = stream_id

    def on_stream_open(self) -> None:
        if self._ready_state == "connecting":
            self._ready_state = "open"
            self._trace_state()
        if self._ready_state == "open":
            self.dispatchEvent(Event("open"))

    def _has_message_listeners(self) -> bool:
        return self.__dict__.get("_on_message") is not None or bool(
            self._listeners().get("message")
        )

    def _low_noticed(self) -> bool:
        """Someone would notice bufferedAmount falling: a bufferedamountlow listener or
        handler, or a task in :meth:`wait_until` (whose predicate may read it)."""
        return (
            self._traffic.waiters > 0
            or self.__dict__.get("_on_bufferedamountlow") is not None
            or bool(self._listeners().get("bufferedamountlow"))
        )

    def _arm_low(self) -> None:
        """Watch for the fall below the threshold now if :meth:`send` left it unwatched."""
        transport = self._transport
        if (
            transport is not None
            and not self._traffic.low_armed
            and self.bufferedAmount > self._buffered_amount_low_threshold
        ):
            self._traffic.low_armed = True
            transport.watch_buffered(self)

    def addEventListener(self, type: str, listener: EventHandler) -> None:
        super().addEventListener(type, listener)
        if type == "bufferedamountlow":
            self._arm_low()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        traffic = self._traffic
        traffic.waiters += 1
        try:
            self._arm_low()
            await super().wait_until(predicate)
        finally:
            traffic.waiters -= 1

    def _wants_buffered_events(self) -> bool:
        """Someone would notice a bufferedamountlow now: a listener or a waiting sender."""
        return (
            bool(self._room_waiters)
            or self.__dict__.get("_on_bufferedamountlow") is not None
            or bool(self._listeners().get("bufferedamountlow"))
        )

    def on_stream_message(self, data: str | bytes, size: int) -> None:
        traffic = self._traffic
        traffic.messages_received += 1
        traffic.bytes_received += size
        if self._has_message_listeners():
            self.dispatchEvent(MessageEvent("message", data))
            return
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(data)
        traffic.inbox_bytes += len(data)
        if self._inbox_waiters:
            self._inbox_waiters.unpark_all()
        transport = self._transport
        if traffic.inbox_bytes > self.receive_high_water and transport is not None:
            transport.pause_reading(self)

    def on_stream_closing(self) -> None:
        # webrtc-pc §6.2.4: unless close() started it, readyState closing and fire "closing".
        if self._ready_state in ("connecting", "open"):
            self._ready_state = "closing"
            self._trace_state()
            self.dispatchEvent(Event("closing"))

    def on_stream_closed(self, error: RTCError | None, fire: bool) -> None:
        self._set_closed(error=error, fire=fire)

    def _set_closed(self, *, error: RTCError | None, fire: bool = True) -> None:
        if self._ready_state == "closed":
            return
        self._ready_state = "closed"
        self._trace_state()
        self._closed_with_error = error is not None
        if self._inbox_waiters is not None:
            self._inbox_waiters.unpark_all()
        if self._room_waiters is not None:
            self._room_waiters.unpark_all()
        if fire:
            if error is not None:
                self.dispatchEvent(RTCErrorEvent("error", error))
            self.dispatchEvent(Event("close"))
        else:
            self._notify_waiters()

    def on_buffered_amount(self, amount: int) -> bool:
        if self._room_waiters and amount <= self.send_high_water // 2:
            self._room_waiters.unpark_all()
        traffic = self._traffic
        if traffic.low_armed and amount <= self._buffered_amount_low_threshold:
            # webrtc-pc §6.2: fires when bufferedAmount falls from above the threshold to it.
            traffic.low_armed = False
            if self._wants_buffered_events():
                self.dispatchEvent(Event("bufferedamountlow"))
            else:
                self._notify_waiters()  # no listener: skip the event, still wake wait_until
        return traffic.low_armed or bool(self._room_waiters)

    def stats(self) -> dict[str, object]:
        """The ``RTCDataChannelStats`` members (webrtc-stats §7.12) of this channel."""
        return {
            "type": "data-channel",
            "label": self._label,
            "protocol": self._protocol,
            "dataChannelIdentifier": self._id,
            "state": self._ready_state,
            "messagesSent": self._traffic.messages_sent,
            "bytesSent": self._traffic.bytes_sent,
            "messagesReceived": self._traffic.messages_received,
            "bytesReceived": self._traffic.bytes_received,
        }


def _priority_name(value: int) -> RTCPriorityType:
    # RFC 8832 §5.1 leaves the values between the named ones to mean "at least this much".
    if value <= PRIORITY_TO_DCEP["very-low"]:
        return "very-low"
    if value <= PRIORITY_TO_DCEP["low"]:
        return "low"
    if value <= PRIORITY_TO_DCEP["medium"]:
        return "medium"
    return "high"


class _DataChannelSender(trio.abc.SendChannel[str | bytes]):
    """See :meth:`RTCDataChannel.send_channel`."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self._channel = channel

    async def send(self, value: str | bytes) -> None:
        try:
            await self._channel.send_message(value)
        except InvalidStateError as error:
            # trio's channel contract: a channel that can no longer carry data is broken.
            raise trio.BrokenResourceError(str(error)) from error

    async def aclose(self) -> None:
        await self._channel.aclose()
