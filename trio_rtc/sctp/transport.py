"""RTCSctpTransport: the trio task that owns one SCTP association and the DCEP manager.

The task has one inbox, a memory channel of batches (:mod:`trio_rtc._channels`): the DTLS task
puts each burst of decrypted SCTP packets on it as one list (``None`` once DTLS ended), and the
data channels above ring it with a wake-up item when they queued something (a message to send,
a channel to open or close, a reader that caught up). The task takes the first item with
``await`` and the rest with ``receive_nowait``, feeds the core, and then *pumps* until quiet:
queued messages go into the association, association events become channel events (a
``message`` handler runs here, in this task), and every packet the core has ready goes to the
DTLS task as one :class:`~trio_rtc._channels.Outgoing` batch. It sleeps until the next item or the
core's next timer (``min`` of T1/T2/T3, delayed SACK, RE-CONFIG and heartbeat).

Sending never costs a task switch per message: :meth:`RTCDataChannel.send` appends to the
transport's outbox and rings the inbox only if it is not rung already, so every message queued
before the task runs is bundled into as few packets as the MTU allows. A message sent from a
handler running in this task needs no wake-up at all: the pump loops once more.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import attrs
import trio

from .._channels import Batch, Outgoing
from .._supervision import unwrap
from ..datachannel import (
    MAX_SEND_QUEUE,
    PRIORITY_TO_DCEP,
    RTCDataChannel,
    RTCDataChannelEvent,
    RTCPriorityType,
)
from ..dtls.driver import RTCDtlsTransport
from ..events import Event, EventTarget, HandlerQueue, event_handler_property
from ..exceptions import InvalidStateError, OperationError, RTCError
from .association import SctpAssociation
from .dcep import (
    ChannelClosed,
    ChannelOpened,
    DataChannelParameters,
    DcepChannelManager,
    DcepEvent,
    Ppid,
)
from .events import (
    AssociationAborted,
    AssociationClosed,
    AssociationEstablished,
    MessageReceived,
    StreamsReset,
)
from .states import AssociationState

__all__ = ["RTCSctpTransport", "RTCSctpTransportState"]

logger = logging.getLogger("trio_rtc.sctp")

RTCSctpTransportState = Literal["connecting", "connected", "closed"]

# Plain ints: comparing and hashing IntEnum members costs more on the per-message path.
_PPID_DCEP = int(Ppid.DCEP)
# PPIDs whose one-byte payload stands for an empty message (RFC 8831 §6.6).
_EMPTY_PPIDS = frozenset({int(Ppid.STRING_EMPTY), int(Ppid.BINARY_EMPTY)})
#: Items queued for the SCTP task before more are dropped (received batches; wake-ups are one
#: at a time).
INBOX_DEPTH = 512


class _Wake:
    """The inbox item that says: the outbox or a request list has something."""

    __slots__ = ()


_WAKE = _Wake()


def _priority_name(value: int) -> RTCPriorityType:
    # RFC 8832 §5.1 leaves the values between the named ones to mean "at least this much".
    if value <= PRIORITY_TO_DCEP["very-low"]:
        return "very-low"
    if value <= PRIORITY_TO_DCEP["low"]:
        return "low"
    if value <= PRIORITY_TO_DCEP["medium"]:
        return "medium"
    return "high"


class RTCSctpTransport(EventTarget):
    """The W3C ``RTCSctpTransport`` (webrtc-pc §6.1) and the driver of its association.

    ``run()`` is started (by the peer connection) once the DTLS transport is connected. Both
    sides send INIT, as browsers do; the core resolves the collision (RFC 9260 §5.2.1).
    """

    onstatechange = event_handler_property["RTCSctpTransport"]("statechange")
    #: Not a W3C attribute of RTCSctpTransport: the peer connection re-dispatches this event as
    #: its own ``datachannel`` event.
    ondatachannel = event_handler_property["RTCSctpTransport"]("datachannel")

    def __init__(
        self,
        dtls_transport: RTCDtlsTransport,
        *,
        local_port: int = 5000,
        remote_port: int = 5000,
        local_max_message_size: int = 262144,
        remote_max_message_size: int = 65536,
        mtu: int = 1200,
        **association_options: Any,
    ) -> None:
        if local_max_message_size <= 0:
            raise ValueError("local_max_message_size must be positive")
        self._dtls = dtls_transport
        is_client = dtls_transport.core.is_client
        self._local_max_message_size = local_max_message_size
        self._remote_max_message_size = 0
        self._max_message_size = local_max_message_size
        self.set_remote_max_message_size(remote_max_message_size)
        association_options.setdefault("receive_window", max(1 << 21, local_max_message_size))
        self._association = SctpAssociation(
            is_client=is_client,
            local_port=local_port,
            remote_port=remote_port,
            max_message_size=local_max_message_size,
            mtu=mtu,
            **association_options,
        )
        self._dcep = DcepChannelManager(self._association, is_client=is_client)
        self._state: RTCSctpTransportState = "connecting"
        self._inbox_send, self._inbox = trio.open_memory_channel[Batch | _Wake | None](INBOX_DEPTH)
        dtls_transport.set_application_channel(self._inbox_send.clone())
        #: Messages queued by channels, not yet in the association: (channel, data, size).
        self._outbox: list[tuple[RTCDataChannel, str | bytes, int]] = []
        self._opening: list[RTCDataChannel] = []
        self._max_channels: int | None = None
        self._channels: dict[int, RTCDataChannel] = {}
        self._pending: list[RTCDataChannel] = []
        self._announce: list[RTCDataChannel] = []
        self._watched: dict[RTCDataChannel, None] = {}
        self._resets: dict[RTCDataChannel, None] = {}
        self._paused_by: RTCDataChannel | None = None
        self._next_stream_index = 0
        self._started = False
        self._pumping = False
        self._again = False
        self._wake_pending = False
        self._run_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        #: Channels opened (by either side) and closed over this transport's life, for
        #: RTCPeerConnectionStats' dataChannelsOpened / dataChannelsClosed.
        self.data_channels_opened = 0
        self.data_channels_closed = 0
        #: The unexpected exception that ended the task, if one did (see ``run``).
        self.crashed: BaseException | None = None

    # --- W3C surface -----------------------------------------------------------------------

    @property
    def transport(self) -> RTCDtlsTransport:
        return self._dtls

    @property
    def state(self) -> RTCSctpTransportState:
        return self._state

    @property
    def maxMessageSize(self) -> int:
        """webrtc-pc §6.1.1: the smaller of what the peer accepts and what we can send."""
        return self._max_message_size

    @property
    def maxChannels(self) -> int | None:
        """Streams usable in both directions once connected; None before."""
        return self._max_channels

    # --- used by the peer connection -------------------------------------------------------------

    @property
    def association(self) -> SctpAssociation:
        """The sans-IO core, for inspection (stats, state). Do not drive it directly."""
        return self._association

    def set_remote_max_message_size(self, value: int) -> None:
        """The remote description's ``a=max-message-size`` (0 means no limit, RFC 8841 §6)."""
        if value < 0:
            raise ValueError("max-message-size cannot be negative")
        self._remote_max_message_size = value
        remote = math.inf if value == 0 else value
        self._max_message_size = int(min(remote, self._local_max_message_size))

    def add_channel(self, channel: RTCDataChannel) -> None:
        """Attach a channel created by ``createDataChannel``. It opens as soon as the
        association is up (now, if it is): in band with DCEP, or directly if ``negotiated``.
        Raises OperationError if a negotiated id is taken or no stream id is free."""
        if self._state == "closed":
            raise InvalidStateError("the SCTP transport is closed")
        if channel._transport is not None:
            raise InvalidStateError("the data channel is already attached to a transport")
        if channel.readyState != "connecting":
            raise InvalidStateError(f"cannot attach a data channel that is {channel.readyState}")
        if channel.negotiated and (
            channel.id in self._channels or any(p.id == channel.id for p in self._pending)
        ):
            raise OperationError(f"data channel id {channel.id} is already in use")
        channel._transport = self
        channel._handler_queue = self._handler_queue
        if self._state == "connected":
            # webrtc-pc §4.4.1.6: on a connected transport the id is assigned at once (and an
            # unusable one raises now); the open event still fires later, from the driver.
            try:
                self._assign_stream_id(channel)
            except OperationError:
                channel._transport = None
                raise
            self._opening.append(channel)
            self._request_flush()
        else:
            self._pending.append(channel)

    def stop(self) -> None:
        """Abort the association and close every channel at once, without events (as
        ``RTCPeerConnection.close()`` does, webrtc-pc §4.4.1.6); ``run`` returns. The ABORT is
        then in :meth:`goodbye`, for the closing peer connection to send through DTLS."""
        if self._state == "closed":
            return
        self._association.abort("closed by the application")
        self._finish(error=None, fire=False)
        if self._run_scope is not None:
            self._run_scope.cancel()

    def stats(self) -> dict[str, object]:
        """Transport-level counters: the association's and the channel counts."""
        result: dict[str, object] = {
            "state": self._state,
            "dataChannelsOpened": self.data_channels_opened,
            "dataChannelsClosed": self.data_channels_closed,
        }
        result.update(attrs.asdict(self._association.stats))
        result["dcep_messages_dropped"] = self._dcep.dropped_messages
        return result

    def channel_stats(self) -> list[dict[str, object]]:
        """``RTCDataChannelStats`` of every channel attached and not yet closed."""
        channels = list(self._channels.values()) + self._pending
        return [channel.stats() for channel in channels]

    # --- the driver --------------------------------------------------------------------------------

    def goodbye(self, now: float = 0.0) -> list[bytes]:
        """What the association still has to send (the ABORT after :meth:`stop`); the closing
        peer connection hands it to DTLS ahead of close_notify."""
        return self._association.datagrams_to_send(now)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the association until it closes, fails, ``stop()`` is called or the task is
        cancelled; on the way out the state is ``closed`` and every channel is closed."""
        if self._started:
            raise InvalidStateError("RTCSctpTransport.run() may be called once")
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._run_scope = nursery.cancel_scope
                if self._handler_queue is None:
                    # Used on its own: async event handlers get a queue of the transport's own.
                    self._handler_queue = HandlerQueue(name="sctp")
                    await nursery.start(self._handler_queue.run)
                for channel in self._pending:
                    channel._handler_queue = self._handler_queue
                task_status.started()
                if self._state != "closed":
                    await self._run_association()
                # Done: what still runs in here (async handlers of our own queue) ends too.
                nursery.cancel_scope.cancel()
        except Exception as exc:
            # A bug: this transport fails visibly (its channels see the error), and the
            # supervisor (the peer connection) reads ``crashed`` and fails the connection.
            logger.exception("SCTP transport task crashed")
            self.crashed = unwrap(exc)
            self._finish(
                error=RTCError(
                    f"SCTP transport crashed: {self.crashed!r}", errorDetail="sctp-failure"
                ),
                fire=True,
            )
        finally:
            self._nursery = None
            self._run_scope = None
            self._inbox_send.close()
            if self._state != "closed":
                # Cancelled from outside: the peer connection is closing.
                self._association.abort("closed")
                self._send_packets(trio.current_time())
                self._finish(error=None, fire=False)

    async def _run_association(self) -> None:
        try:
            await self._dtls.wait_connected()
        except RTCError as error:
            self._finish(error=error, fire=True)
            return
        self._association.connect(trio.current_time())
        await self._drive()

    async def _drive(self) -> None:
        core = self._association
        feed = core.receive_datagram
        inbox = self._inbox
        items: list[Batch | _Wake | None] = []
        while True:
            self._pump()
            if self._state == "closed":
                return
            deadline = core.get_timer()
            if deadline is None:
                items.append(await inbox.receive())
            else:
                with trio.CancelScope(deadline=deadline):
                    items.append(await inbox.receive())
            now = trio.current_time()
            if not items:
                core.handle_timer(now)
                continue
            # Everything that queued up meanwhile, in the same wake-up.
            while True:
                try:
                    items.append(inbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            for item in items:
                if item is _WAKE:
                    self._wake_pending = False
                elif item is None:
                    self._on_dtls_closed()
                    return
                else:
                    assert isinstance(item, list)
                    for packet in item:
                        feed(packet, now)
            items.clear()
            if deadline is not None and now >= deadline:
                core.handle_timer(now)

    def _on_dtls_closed(self) -> None:
        failed = self._dtls.state == "failed"
        self._association.abort("DTLS transport closed")
        self._finish(
            error=RTCError("DTLS transport failed", errorDetail="dtls-failure") if failed else None,
            fire=True,
        )

    # --- the pump -------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Turn core events into channel events and send every packet due, until quiet."""
        if self._pumping:
            return  # a handler sent or closed: the running pump loops once more
        self._pumping = True
        try:
            now = trio.current_time()
            while True:
                self._again = False
                # A wake-up still in the inbox will find nothing to do; one that could not be
                # queued (a full inbox) must not block the next.
                self._wake_pending = False
                if self._opening:
                    self._open_requested()
                if self._outbox:
                    self._move_outbox(now)
                if self._announce:
                    announce, self._announce = self._announce, []
                    for channel in announce:
                        if channel._attached:
                            channel._set_open()
                self._process_events(now)
                # Everything the events caused is queued by now, so one call sends it all; the
                # BufferedAmountChanged events it leaves behind need no answer.
                self._send_packets(now)
                if self._state == "closed":
                    return
                if self._watched:
                    self._check_buffered()
                if self._resets:
                    self._send_resets()
                # A handler sent, closed or opened something: once more.
                if not (self._again or self._announce or self._outbox or self._opening):
                    return
        finally:
            self._pumping = False

    def _open_requested(self) -> None:
        opening, self._opening = self._opening, []
        for channel in opening:
            if channel.readyState != "connecting" or self._state != "connected":
                continue
            try:
                self._open_stream(channel)
            except OperationError as error:
                self._channels.pop(channel._id, None)  # type: ignore[arg-type]
                channel._set_closed(
                    error=RTCError(str(error), errorDetail="data-channel-failure"), fire=True
                )

    def _move_outbox(self, now: float) -> None:
        """Messages the channels queued since the last pump go into the association."""
        outbox, self._outbox = self._outbox, []
        send = self._dcep.send
        for channel, data, size in outbox:
            channel._unsent -= size
            stream_id = channel._id
            if stream_id is None or not channel._attached:
                continue  # closed meanwhile: webrtc-pc drops what was not sent
            try:
                # The clock matters only for maxPacketLifetime.
                send(stream_id, data, now=0.0 if channel._max_packet_lifetime is None else now)
            except (ValueError, InvalidStateError) as error:
                logger.debug("message on stream %d dropped: %s", stream_id, error)

    def _send_packets(self, now: float) -> int:
        packets = self._association.datagrams_to_send(now)
        if packets:
            self._dtls.send_application_batch_nowait(Outgoing(packets))
        return len(packets)

    def _process_events(self, now: float) -> None:
        core = self._association
        dcep = self._dcep
        channels = self._channels
        # Paused for a slow reader, events wait in the core (holding the receive window shut),
        # unless the association is over: then its end must be seen at once.
        while self._paused_by is None or core.state is AssociationState.CLOSED:
            event = core.next_event()
            if event is None:
                break
            kind = type(event)
            if kind is MessageReceived:
                assert isinstance(event, MessageReceived)
                ppid = event.ppid
                if ppid == _PPID_DCEP:
                    self._on_dcep_events(dcep.handle_event(event, now=now))
                    continue
                data = dcep.message_data(event)
                if data is not None:
                    channel = channels.get(event.stream_id)
                    if channel is not None:
                        channel._deliver(data, 0 if ppid in _EMPTY_PPIDS else len(event.data))
            elif kind is StreamsReset:
                assert isinstance(event, StreamsReset)
                if event.incoming:
                    for stream_id in event.stream_ids:
                        channel = channels.get(stream_id)
                        if channel is not None:
                            channel._set_closing_by_peer()
                self._on_dcep_events(dcep.handle_event(event, now=now))
            elif kind is AssociationEstablished:
                assert isinstance(event, AssociationEstablished)
                self._on_established(event)
            elif kind is AssociationAborted:
                assert isinstance(event, AssociationAborted)
                error = RTCError(
                    f"SCTP association aborted: {event.reason}", errorDetail="sctp-failure"
                )
                self._finish(error=error, fire=True)
            elif kind is AssociationClosed:
                self._finish(error=None, fire=True)
            # BufferedAmountChanged needs nothing: watched channels are checked after each pump.

    def _on_dcep_events(self, events: list[DcepEvent]) -> None:
        for event in events:
            if type(event) is ChannelOpened:
                assert isinstance(event, ChannelOpened)
                if event.by_peer:
                    self._on_remote_channel(event.parameters)
            elif type(event) is ChannelClosed:
                assert isinstance(event, ChannelClosed)
                channel = self._channels.pop(event.stream_id, None)
                if channel is not None:
                    self._watched.pop(channel, None)
                    self.data_channels_closed += 1
                    channel._set_closed(error=None)

    def _on_remote_channel(self, parameters: DataChannelParameters) -> None:
        channel = RTCDataChannel(
            parameters.label,
            ordered=parameters.ordered,
            maxPacketLifetime=parameters.max_packet_lifetime,
            maxRetransmits=parameters.max_retransmits,
            protocol=parameters.protocol,
            priority=_priority_name(parameters.priority),
        )
        channel._id = parameters.stream_id
        channel._transport = self
        channel._handler_queue = self._handler_queue
        channel._attached = True
        # webrtc-pc §6.2.3: readyState is open when datachannel fires; open fires right after.
        channel._ready_state = "open"
        self._channels[parameters.stream_id] = channel
        self.data_channels_opened += 1
        self.dispatchEvent(RTCDataChannelEvent("datachannel", channel))
        if channel.readyState == "open":
            channel.dispatchEvent(Event("open"))

    def _on_established(self, event: AssociationEstablished) -> None:
        self._max_channels = min(event.outbound_streams, event.inbound_streams)
        self._state = "connected"
        self.dispatchEvent(Event("statechange"))
        pending, self._pending = self._pending, []
        for channel in pending:
            if channel.readyState != "connecting":
                continue
            try:
                self._assign_stream_id(channel)
                self._open_stream(channel)
            except OperationError as error:
                channel._set_closed(
                    error=RTCError(str(error), errorDetail="data-channel-failure"), fire=True
                )

    def _assign_stream_id(self, channel: RTCDataChannel) -> None:
        """Give ``channel`` its stream id (webrtc-pc §4.4.1.6: at once on a connected
        transport) and reserve it; OperationError if it cannot be used."""
        if channel.negotiated:
            stream_id = channel.id
            assert stream_id is not None
        else:
            stream_id = self._allocate_stream_id()
        max_channels = self._max_channels
        if max_channels is not None and stream_id >= max_channels:
            raise OperationError(f"data channel id {stream_id} is not below maxChannels")
        if stream_id in self._channels or stream_id in self._dcep.channels:
            raise OperationError(f"data channel id {stream_id} is already in use")
        channel._id = stream_id
        self._channels[stream_id] = channel

    def _open_stream(self, channel: RTCDataChannel) -> None:
        """Open the channel's stream on the association (DCEP, or directly if negotiated)."""
        dcep = self._dcep
        stream_id = channel._id
        assert stream_id is not None
        parameters = DataChannelParameters(
            stream_id=stream_id,
            label=channel.label,
            protocol=channel.protocol,
            ordered=channel.ordered,
            max_retransmits=channel.maxRetransmits,
            max_packet_lifetime=channel.maxPacketLifetime,
            priority=PRIORITY_TO_DCEP[channel.priority],
            negotiated=channel.negotiated,
        )
        try:
            dcep.open_channel(parameters, now=trio.current_time())
        except ValueError as error:
            raise OperationError(f"data channel id {stream_id} is already in use") from error
        channel._attached = True
        self.data_channels_opened += 1
        # RFC 8832 §6: the opener may send right after DATA_CHANNEL_OPEN (ordered until the ACK
        # arrives, which the DCEP manager enforces), so the channel is open without a round trip.
        self._announce.append(channel)

    def _allocate_stream_id(self) -> int:
        """An id of our parity (RFC 8832 §6), round robin from the one after the last given
        out. Browsers take the lowest free id; taking a just-closed id last instead means its
        reuse cannot overtake the peer's view of the old channel's closing (the peer frees the
        id half a round trip after us, later still if a RE-CONFIG response is lost)."""
        dcep = self._dcep
        association = self._association
        limit = min(dcep.max_channels, association.outbound_streams)
        parity = dcep.parity
        count = (limit - parity + 1) // 2
        for step in range(count):
            index = (self._next_stream_index + step) % count
            stream_id = parity + 2 * index
            if stream_id not in dcep.channels and stream_id not in self._channels:
                self._next_stream_index = index + 1
                return stream_id
        raise OperationError("no free stream id for a new data channel")

    def _finish(self, *, error: RTCError | None, fire: bool) -> None:
        if self._state == "closed":
            return
        self._state = "closed"
        channels = list(self._channels.values()) + self._pending + self._announce
        self._channels.clear()
        self._pending.clear()
        self._announce.clear()
        self._opening.clear()
        self._outbox.clear()
        self._watched.clear()
        self._resets.clear()
        self._paused_by = None
        for channel in channels:
            if channel.readyState != "closed":
                self.data_channels_closed += channel._attached
                channel._set_closed(error=error, fire=fire)
        if fire:
            self.dispatchEvent(Event("statechange"))
        else:
            self._notify_waiters()
        self._request_flush()

    # --- used by RTCDataChannel ------------------------------------------------------------------

    def _buffered_amount(self, stream_id: int) -> int:
        return self._association.buffered_amount(stream_id)

    def _send(self, channel: RTCDataChannel, data: str | bytes, size: int) -> int:
        """Queue one message for the task; returns the channel's bufferedAmount after it."""
        stream_id = channel._id
        assert stream_id is not None
        buffered = self._association.buffered_amount(stream_id) + channel._unsent + size
        if buffered > MAX_SEND_QUEUE:
            raise OperationError(f"send queue is full ({buffered - size} bytes buffered)")
        self._outbox.append((channel, data, size))
        channel._unsent += size
        if buffered > channel._buffered_amount_low_threshold:
            channel._low_armed = True
            self._watched[channel] = None
        if self._pumping:
            self._again = True  # the running pump (a handler in this task) sends it
        elif not self._wake_pending:
            self._request_flush()
        return buffered

    def _close_channel(self, channel: RTCDataChannel) -> None:
        # The reset goes out from the pump, in a packet after the channel's last DATA: a
        # RE-CONFIG bundled ahead of that DATA (control chunks come first in a packet) would
        # reach the peer before the data it must wait for, get "in progress" (RFC 6525 §5.2.2)
        # and be retried only after a full RTO.
        self._resets[channel] = None
        self._request_flush()

    def _send_resets(self) -> None:
        association = self._association
        for channel in list(self._resets):
            stream_id = channel._id
            if stream_id is None or channel.readyState != "closing":
                del self._resets[channel]
            elif association.buffered_amount(stream_id) == 0:
                del self._resets[channel]
                try:
                    self._dcep.close_channel(stream_id)
                except InvalidStateError:
                    # The association cannot reset streams any more: nothing left to close.
                    self._channels.pop(stream_id, None)
                    channel._set_closed(error=None)
                    continue
                self._again = True

    def _forget_pending(self, channel: RTCDataChannel) -> None:
        if channel in self._pending:
            self._pending.remove(channel)

    def _watch_buffered(self, channel: RTCDataChannel) -> None:
        self._watched[channel] = None
        self._request_flush()

    def _check_buffered(self) -> None:
        buffered_amount = self._association.buffered_amount
        for channel in list(self._watched):
            stream_id = channel._id
            if stream_id is None or channel.readyState == "closed":
                del self._watched[channel]
                continue
            if not channel._buffered_amount_changed(buffered_amount(stream_id)):
                self._watched.pop(channel, None)

    def _pause_reading(self, channel: RTCDataChannel) -> None:
        self._paused_by = channel

    def _resume_reading(self) -> None:
        self._paused_by = None
        self._request_flush()

    def _request_flush(self) -> None:
        """Have the task pump: at once if it is pumping (this runs in a handler), else by a
        wake-up item on its inbox (one at a time)."""
        if self._pumping:
            self._again = True
            return
        if self._wake_pending:
            return
        try:
            self._inbox_send.send_nowait(_WAKE)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return  # a full inbox wakes the task anyway; a closed one has no task left
        self._wake_pending = True
