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

import contextlib
import logging
import math
from collections.abc import Callable, Collection
from typing import Any, Literal, get_args

import attrs
import trio

from .._channels import Batch, Outgoing, WakeTimer
from .._supervision import unwrap
from ..dtls.driver import RTCDtlsTransport
from ..events import (
    Event,
    EventTarget,
    HandlerQueue,
    RTCDataChannelEvent,
    on_event,
)
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
    SctpEvent,
    StreamsReset,
)
from .states import AssociationState
from .streams import StreamUser

__all__ = ["RTCSctpTransport", "RTCSctpTransportState"]

logger = logging.getLogger("trio_rtc.sctp")

RTCSctpTransportState = Literal["connecting", "connected", "closed"]
_STATES: tuple[RTCSctpTransportState, ...] = get_args(RTCSctpTransportState)

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
#: The inbox item of the timer task: a deadline of the association may have passed.
_TIMER = _Wake()


#: Makes the channel for a stream the peer opened (the layer above gives it; see streams.py).
StreamFactory = Callable[[DataChannelParameters], StreamUser]


@attrs.define(eq=False)
class _Stream:
    """The transport's record of one attached channel."""

    user: StreamUser
    parameters: DataChannelParameters
    stream_id: int = -1
    #: Opened on the association (DCEP OPEN sent, or negotiated out of band).
    attached: bool = False
    #: Bytes queued by send_message that the task has not moved into the association yet.
    unsent: int = 0
    closed: bool = False
    #: maxPacketLifetime is set: DCEP needs the clock for this stream's messages.
    lifetime: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.lifetime = self.parameters.max_packet_lifetime is not None


class RTCSctpTransport(EventTarget):
    """The W3C ``RTCSctpTransport`` (webrtc-pc §6.1) and the driver of its association.

    ``run()`` is started (by the peer connection) once the DTLS transport is connected. Both
    sides send INIT, as browsers do; the core resolves the collision (RFC 9260 §5.2.1).
    ``stream_factory`` makes the channel for each stream the peer opens (see
    :mod:`trio_rtc.sctp.streams`); without one, such streams are closed at once.
    """

    onstatechange = on_event[Event]("statechange")
    #: Not a W3C attribute of RTCSctpTransport: the peer connection re-dispatches this event as
    #: its own ``datachannel`` event.
    ondatachannel = on_event[RTCDataChannelEvent]("datachannel")
    #: Structured trace of the data channels' states (trio_rtc.trace); None is tracing off.
    trace_channels: Callable[[str, dict[str, Any]], None] | None = None

    def __init__(
        self,
        dtls_transport: RTCDtlsTransport,
        *,
        local_port: int = 5000,
        remote_port: int = 5000,
        local_max_message_size: int = 262144,
        remote_max_message_size: int = 65536,
        mtu: int = 1200,
        stream_factory: StreamFactory | None = None,
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
        self._dcep.stream_id_policy = "round-robin"
        self._stream_factory = stream_factory
        self._state: RTCSctpTransportState = "connecting"
        self._inbox_send, self._inbox = trio.open_memory_channel[Batch | _Wake | None](INBOX_DEPTH)
        dtls_transport.set_application_channel(self._inbox_send.clone())
        #: Messages queued by channels, not yet in the association, flat: stream, data, size,
        #: stream, data, size, ... (no tuple per message: fewer objects for the collector).
        self._outbox: list[Any] = []
        self._by_user: dict[StreamUser, _Stream] = {}
        #: Streams with an id (attached or about to be), by id.
        self._streams: dict[int, _Stream] = {}
        #: Channels waiting for the association to come up.
        self._pending: list[_Stream] = []
        #: Channels added on a connected association, to open from the task.
        self._opening: list[_Stream] = []
        #: Channels just opened on the association, whose ``open`` the pump announces.
        self._announce: list[_Stream] = []
        self._watched: dict[_Stream, None] = {}
        self._resets: dict[_Stream, None] = {}
        #: The channel whose full inbox holds the association's receive side shut, if any.
        self._paused_by: StreamUser | None = None
        self._max_channels: int | None = None
        self._started = False
        self._pumping = False
        self._again = False
        self._wake_pending = False
        self._timer = WakeTimer(self._wake_timer)
        self._run_scope: trio.CancelScope | None = None
        #: Channels opened (by either side) and closed over this transport's life, for
        #: RTCPeerConnectionStats' dataChannelsOpened / dataChannelsClosed.
        self.data_channels_opened = 0
        self.data_channels_closed = 0
        #: The unexpected exception that ended the task, if one did (see ``run``).
        self.crashed: BaseException | None = None
        self._shutting_down = False

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

    def shutdown(self) -> bool:
        """Start a graceful close (RFC 9260 §9.2): what is queued is delivered, then SHUTDOWN,
        and the peer's channels reach ``closed`` with every acknowledged message delivered.
        True when an established association is closing so (wait for :attr:`closed`, then
        :meth:`stop` in any case); False when there is nothing to close gracefully. Ours end
        without events, as ``RTCPeerConnection.close()`` says."""
        if (
            self._state != "connected"
            or self._association.state is not AssociationState.ESTABLISHED
        ):
            return False
        self._shutting_down = True
        # What the channels sent and the task has not pumped yet goes in first: after
        # SHUTDOWN the association takes no new message (RFC 9260 §9.2).
        self._move_outbox(trio.current_time())
        self._association.shutdown()
        self._request_flush()
        return True

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    async def wait_for(
        self, *, state: RTCSctpTransportState | Collection[RTCSctpTransportState]
    ) -> RTCSctpTransportState:
        """Wait until ``state`` has a value, or one of several, and return it:
        ``await sctp.wait_for(state="connected")``. ValueError for a value it never takes;
        InvalidStateError if the transport closes first (unless ``"closed"`` is wanted)."""
        value: RTCSctpTransportState = await self._wait_for_value(
            {"state": state}, _STATES, lambda: self._state == "closed"
        )
        return value

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

    def goodbye(self, now: float = 0.0) -> list[bytes]:
        """What the association still has to send (the ABORT after :meth:`stop`); the closing
        peer connection hands it to DTLS ahead of close_notify."""
        return self._association.datagrams_to_send(now)

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
        return [stream.user.stats() for stream in self._by_user.values() if not stream.closed]

    # --- the seam: used by the channels above (see streams.py) ----------------------------------

    def add_channel(self, user: StreamUser) -> None:
        """Attach a channel. It opens as soon as the association is up (now, if it is): in
        band with DCEP, or directly if ``negotiated``. Raises OperationError if a negotiated id
        is taken or no stream id is free, InvalidStateError if it cannot be attached."""
        if self._state == "closed":
            raise InvalidStateError("the SCTP transport is closed")
        if user in self._by_user:
            raise InvalidStateError("the data channel is already attached to this transport")
        parameters = self.check_parameters(user.stream_parameters())
        stream = _Stream(user, parameters)
        if self._state == "connected":
            # webrtc-pc §4.4.1.6: on a connected transport the id is assigned at once (and an
            # unusable one raises now); the open event still fires later, from the task.
            self._assign_stream_id(stream)
            self._by_user[user] = stream
            user.on_stream_attached(self, self._handler_queue)
            user.on_stream_assigned(stream.stream_id)
            self._opening.append(stream)
            self._request_flush()
        else:
            self._by_user[user] = stream
            user.on_stream_attached(self, self._handler_queue)
            self._pending.append(stream)

    def check_parameters(self, parameters: DataChannelParameters) -> DataChannelParameters:
        """OperationError if a negotiated id is already taken by a channel on this transport."""
        if parameters.negotiated and (
            parameters.stream_id in self._streams
            or any(s.parameters.stream_id == parameters.stream_id for s in self._pending)
        ):
            raise OperationError(f"data channel id {parameters.stream_id} is already in use")
        return parameters

    def send_message(
        self, user: StreamUser, data: str | bytes, size: int, *, max_buffered: int
    ) -> int:
        """Queue one message for the task; returns the stream's buffered amount after it.
        OperationError if that would exceed ``max_buffered`` bytes."""
        stream = self._by_user[user]
        buffered = self._association.buffered_amount(stream.stream_id) + stream.unsent + size
        if buffered > max_buffered:
            raise OperationError(f"send queue is full ({buffered - size} bytes buffered)")
        outbox = self._outbox
        outbox.append(stream)
        outbox.append(data)
        outbox.append(size)
        stream.unsent += size
        # In a handler of this task the running pump sees the outbox and sends it (no extra
        # turn of its loop); from elsewhere the task is woken once.
        if not self._pumping and not self._wake_pending:
            self._request_flush()
        return buffered

    def buffered_amount(self, user: StreamUser) -> int:
        """Bytes queued on the stream and not yet handed to the network once."""
        stream = self._by_user.get(user)
        if stream is None:
            return 0
        if not stream.attached or stream.closed:
            return stream.unsent
        return self._association.buffered_amount(stream.stream_id) + stream.unsent

    def close_stream(self, user: StreamUser) -> bool:
        """Start closing the channel's stream (RFC 8831 §6.7: reset once its data left).
        Returns False if it never opened on the association: then there is nothing to reset,
        and the caller closes the channel itself."""
        stream = self._by_user.get(user)
        if stream is None or stream.closed:
            return False
        if not stream.attached:
            self._forget(stream)
            return False
        # The reset goes out from the pump, in a packet after the channel's last DATA: a
        # RE-CONFIG bundled ahead of that DATA (control chunks come first in a packet) would
        # reach the peer before the data it must wait for, get "in progress" (RFC 6525 §5.2.2)
        # and be retried only after a full RTO.
        self._resets[stream] = None
        self._request_flush()
        return True

    def forget(self, user: StreamUser) -> None:
        """Detach a channel that never opened (closed before the association came up)."""
        stream = self._by_user.get(user)
        if stream is not None and not stream.attached:
            self._forget(stream)

    def watch_buffered(self, user: StreamUser) -> None:
        """Call ``user.on_buffered_amount`` as its buffered amount falls, until it says stop."""
        stream = self._by_user.get(user)
        if stream is not None and not stream.closed and stream not in self._watched:
            self._watched[stream] = None
            # Watching starts above the threshold: only what the task does (a SACK, the outbox)
            # can lower the amount, and every pump checks watched streams. From a handler of
            # this task, the running pump checks it; from elsewhere the task is woken once.
            if not self._pumping:
                self._request_flush()

    def pause_reading(self, user: StreamUser) -> None:
        """The channel's inbox is full: leave events in the association (its receive window
        closes and the peer slows down) until :meth:`resume_reading`. One channel at a time
        holds it: the first whose inbox filled up."""
        if self._paused_by is None:
            self._paused_by = user

    def resume_reading(self, user: StreamUser) -> None:
        if self._paused_by is user:
            self._paused_by = None
            self._request_flush()

    def is_paused_by(self, user: StreamUser) -> bool:
        return self._paused_by is user

    # --- the driver --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the association until it closes, fails, ``stop()`` is called or the task is
        cancelled; on the way out the state is ``closed`` and every channel is closed."""
        if self._started:
            raise InvalidStateError("RTCSctpTransport.run() may be called once")
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                self._run_scope = nursery.cancel_scope
                if self._handler_queue is None:
                    # Used on its own: async event handlers get a queue of the transport's own.
                    self._handler_queue = HandlerQueue(name="sctp")
                    await nursery.start(self._handler_queue.run)
                for stream in self._pending:
                    stream.user.on_stream_attached(self, self._handler_queue)
                task_status.started()
                if self._state != "closed":
                    await nursery.start(self._timer.run)
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
        has_events = core.has_events
        inbox = self._inbox
        arm = self._timer.arm
        items: list[Batch | _Wake | None] = []
        now = trio.current_time()
        while True:
            self._pump(now)
            if self._state == "closed":
                return
            arm(core.get_timer())
            items.append(await inbox.receive())
            now = trio.current_time()
            # Everything that queued up meanwhile, in the same wake-up.
            while True:
                try:
                    items.append(inbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            timer_fired = False
            for item in items:
                if item is _WAKE:
                    self._wake_pending = False
                elif item is _TIMER:
                    timer_fired = True
                elif item is None:
                    self._on_dtls_closed()
                    return
                else:
                    assert isinstance(item, list)
                    for packet in item:
                        if has_events():
                            self._deliver_between_datagrams(now)
                        feed(packet, now)
            items.clear()
            # Deadlines are looked at only when the wake timer fired: it is armed at or before
            # the core's earliest deadline (see WakeTimer), so none is missed, and a wake-up by
            # data (most of them) skips the lookup.
            if timer_fired:
                deadline = core.get_timer()
                if deadline is not None and now >= deadline:
                    core.handle_timer(now)

    def _deliver_between_datagrams(self, now: float) -> None:
        """The messages of the datagram just fed reach the application before the next one is
        fed (those of a wake-up's last datagram, in the pump). A burst of hundreds of datagrams
        otherwise held thousands of delivered messages at once, which the garbage collector
        walked and promoted: a tenth of a small-message transfer. A handler's sends wait for the
        pump, as they would inside it."""
        if self._state == "closed":
            return
        self._pumping = True
        try:
            self._process_events(now)
        finally:
            self._pumping = False

    def _wake_timer(self) -> None:
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._inbox_send.send_nowait(_TIMER)

    def _on_dtls_closed(self) -> None:
        # What came in the same burst as DTLS's end is seen first: the last messages, and the
        # peer's ABORT, which says whether it closed on purpose or failed.
        self._process_events(trio.current_time())
        if self._state == "closed":
            return
        failed = self._dtls.state == "failed"
        self._association.abort("DTLS transport closed")
        self._finish(
            error=RTCError("DTLS transport failed", errorDetail="dtls-failure") if failed else None,
            fire=True,
        )

    # --- the pump -------------------------------------------------------------------------------

    def _pump(self, now: float | None = None) -> None:
        """Turn core events into channel events and send every packet due, until quiet."""
        if self._pumping:
            return  # a handler sent or closed: the running pump loops once more
        self._pumping = True
        try:
            if now is None:
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
                    for stream in announce:
                        if not stream.closed:
                            stream.user.on_stream_open()
                self._process_events(now)
                if self._outbox:
                    # A message handler answered (an echo): its data rides in the same packets
                    # as the SACK for what it answered, instead of a second turn of the loop.
                    self._move_outbox(now)
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
        for stream in opening:
            if stream.closed or self._state != "connected":
                continue
            try:
                self._open_stream(stream)
            except OperationError as error:
                self._streams.pop(stream.stream_id, None)
                self._close(stream, RTCError(str(error), errorDetail="data-channel-failure"), True)

    def _move_outbox(self, now: float) -> None:
        """Messages the channels queued since the last pump go into the association, a run of
        messages of one channel in one call."""
        outbox, self._outbox = self._outbox, []
        send_many = self._dcep.send_many
        count = len(outbox)
        index = 0
        while index < count:
            stream: _Stream = outbox[index]
            run: list[str | bytes] = []
            while index < count and outbox[index] is stream:
                run.append(outbox[index + 1])
                stream.unsent -= outbox[index + 2]
                index += 3
            if not stream.attached or stream.closed:
                continue  # closed meanwhile: webrtc-pc drops what was not sent
            try:
                # The clock matters only for maxPacketLifetime.
                refused = send_many(stream.stream_id, run, now=now if stream.lifetime else 0.0)
            except (ValueError, InvalidStateError) as error:
                logger.debug(
                    "%d message(s) on stream %d dropped: %s", len(run), stream.stream_id, error
                )
                continue
            for _, why in refused:
                logger.debug("message on stream %d dropped: %s", stream.stream_id, why)

    def _send_packets(self, now: float) -> int:
        packets = self._association.datagrams_to_send(now)
        if packets:
            self._dtls.send_application_batch_nowait(Outgoing(packets))
        return len(packets)

    def _process_events(self, now: float) -> None:
        core = self._association
        dcep = self._dcep
        streams = self._streams
        closed = AssociationState.CLOSED
        # Paused for a slow reader, events wait in the core (holding the receive window shut),
        # unless the association is over: then its end must be seen at once. The events are
        # taken in bulk (a burst of small messages is one call, and one window update, instead
        # of one per message); what a pause leaves is handed back in order.
        while self._paused_by is None or core.state is closed:
            events = core.take_events()
            if not events:
                break
            taken = 0
            try:
                for index, event in enumerate(events):
                    if self._paused_by is not None and core.state is not closed:
                        core.put_back(events[index:])
                        break
                    if type(event) is MessageReceived:
                        assert isinstance(event, MessageReceived)
                        taken += len(event.data)
                        ppid = event.ppid
                        if ppid == _PPID_DCEP:
                            self._on_dcep_events(dcep.handle_event(event, now=now))
                            continue
                        data = dcep.message_data(event)
                        if data is not None:
                            stream = streams.get(event.stream_id)
                            if stream is not None and stream.attached:
                                stream.user.on_stream_message(
                                    data, 0 if ppid in _EMPTY_PPIDS else len(event.data)
                                )
                    else:
                        self._process_event(event, now)
            finally:
                core.messages_taken(taken)

    def _process_event(self, event: SctpEvent, now: float) -> None:
        """An association event other than a message."""
        core = self._association
        dcep = self._dcep
        streams = self._streams
        kind = type(event)
        if kind is StreamsReset:
            assert isinstance(event, StreamsReset)
            if core.trace is not None:
                core.trace(
                    "stream_reset",
                    {"stream_ids": list(event.stream_ids), "incoming": event.incoming},
                )
            if event.incoming:
                for stream_id in event.stream_ids:
                    stream = streams.get(stream_id)
                    if stream is not None and not stream.closed:
                        stream.user.on_stream_closing()
            self._on_dcep_events(dcep.handle_event(event, now=now))
        elif kind is AssociationEstablished:
            assert isinstance(event, AssociationEstablished)
            self._on_established(event)
        elif kind is AssociationAborted:
            assert isinstance(event, AssociationAborted)
            # Every ABORT is an error for the channels, a User-Initiated Abort (the peer's
            # application left without a graceful shutdown) included: browsers do the same
            # (Chromium fires sctp-failure for any ABORT). The reason says which it was.
            logger.debug("SCTP association aborted: %s", event.reason)
            error = RTCError(
                f"SCTP association aborted: {event.reason}", errorDetail="sctp-failure"
            )
            self._finish(error=error, fire=True)
        elif kind is AssociationClosed:
            # Closed by our own shutdown() (the peer connection closing): no events, as
            # RTCPeerConnection.close() fires none; by the peer's SHUTDOWN: events.
            self._finish(error=None, fire=not self._shutting_down)
        # BufferedAmountChanged needs nothing: watched channels are checked after each pump.

    def _on_dcep_events(self, events: list[DcepEvent]) -> None:
        for event in events:
            if type(event) is ChannelOpened:
                assert isinstance(event, ChannelOpened)
                if event.by_peer:
                    self._on_remote_channel(event.parameters)
            elif type(event) is ChannelClosed:
                assert isinstance(event, ChannelClosed)
                stream = self._streams.pop(event.stream_id, None)
                if stream is not None:
                    self._watched.pop(stream, None)
                    self.data_channels_closed += 1
                    self._close(stream, None, True)

    def _on_remote_channel(self, parameters: DataChannelParameters) -> None:
        factory = self._stream_factory
        if factory is None:
            logger.info(
                "closing stream %d the peer opened: no stream factory", parameters.stream_id
            )
            self._dcep.close_channel(parameters.stream_id)
            return
        user = factory(parameters)
        stream = _Stream(user, parameters, parameters.stream_id, attached=True)
        self._by_user[user] = stream
        self._streams[parameters.stream_id] = stream
        self.data_channels_opened += 1
        user.on_stream_attached(self, self._handler_queue)
        user.on_stream_assigned(parameters.stream_id)
        # webrtc-pc §6.2.3: the factory made the channel open; datachannel fires, then open.
        self.dispatchEvent(RTCDataChannelEvent("datachannel", user))
        if not stream.closed:
            user.on_stream_open()

    def _on_established(self, event: AssociationEstablished) -> None:
        self._max_channels = min(event.outbound_streams, event.inbound_streams)
        self._state = "connected"
        self.dispatchEvent(Event("statechange"))
        pending, self._pending = self._pending, []
        for stream in pending:
            if stream.closed:
                continue
            try:
                self._assign_stream_id(stream)
                stream.user.on_stream_assigned(stream.stream_id)
                self._open_stream(stream)
            except OperationError as error:
                self._streams.pop(stream.stream_id, None)
                self._close(stream, RTCError(str(error), errorDetail="data-channel-failure"), True)

    def _assign_stream_id(self, stream: _Stream) -> None:
        """Give the stream its id (the negotiated one, or the next free one of our parity by
        the DCEP manager's policy) and reserve it; OperationError if it cannot be used."""
        if stream.parameters.negotiated:
            stream_id = stream.parameters.stream_id
        else:
            try:
                stream_id = self._dcep.allocate_stream_id(reserved=self._streams)
            except ValueError as error:
                raise OperationError(str(error)) from None
        max_channels = self._max_channels
        if max_channels is not None and stream_id >= max_channels:
            raise OperationError(f"data channel id {stream_id} is not below maxChannels")
        if stream_id in self._streams or stream_id in self._dcep.channels:
            raise OperationError(f"data channel id {stream_id} is already in use")
        stream.stream_id = stream_id
        stream.parameters = attrs.evolve(stream.parameters, stream_id=stream_id)
        self._streams[stream_id] = stream

    def _open_stream(self, stream: _Stream) -> None:
        """Open the stream on the association (DCEP, or directly if negotiated)."""
        try:
            self._dcep.open_channel(stream.parameters, now=trio.current_time())
        except ValueError as error:
            raise OperationError(f"data channel id {stream.stream_id} is already in use") from error
        except InvalidStateError:
            # The association ended in this same wake-up (the peer aborted, or our close
            # raced the open): the channel closes with the transport like every other one.
            # Closing is not a crash.
            return
        stream.attached = True
        self.data_channels_opened += 1
        # RFC 8832 §6: the opener may send right after DATA_CHANNEL_OPEN (ordered until the ACK
        # arrives, which the DCEP manager enforces), so the channel is open without a round trip.
        self._announce.append(stream)

    def _forget(self, stream: _Stream) -> None:
        self._by_user.pop(stream.user, None)
        if stream.stream_id >= 0 and self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]
        if stream in self._pending:
            self._pending.remove(stream)
        if stream in self._opening:
            self._opening.remove(stream)
        stream.closed = True

    def _close(self, stream: _Stream, error: RTCError | None, fire: bool) -> None:
        if stream.closed:
            return
        stream.closed = True
        self._by_user.pop(stream.user, None)
        if self._paused_by is stream.user:
            self._paused_by = None
        stream.user.on_stream_closed(error, fire)

    def _finish(self, *, error: RTCError | None, fire: bool) -> None:
        if self._state == "closed":
            return
        self._state = "closed"
        streams = list(self._by_user.values())
        self._streams.clear()
        self._pending.clear()
        self._announce.clear()
        self._opening.clear()
        self._outbox.clear()
        self._watched.clear()
        self._resets.clear()
        self._paused_by = None
        for stream in streams:
            if not stream.closed:
                self.data_channels_closed += stream.attached
                self._close(stream, error, fire)
        if fire:
            self.dispatchEvent(Event("statechange"))
        else:
            self._notify_waiters()
        self._request_flush()

    def _send_resets(self) -> None:
        association = self._association
        for stream in list(self._resets):
            if stream.closed:
                del self._resets[stream]
            elif association.buffered_amount(stream.stream_id) == 0 and stream.unsent == 0:
                del self._resets[stream]
                try:
                    self._dcep.close_channel(stream.stream_id)
                except InvalidStateError:
                    # The association cannot reset streams any more: nothing left to close.
                    self._streams.pop(stream.stream_id, None)
                    self._close(stream, None, True)
                    continue
                self._again = True

    def _check_buffered(self) -> None:
        buffered_amount = self._association.buffered_amount
        for stream in list(self._watched):
            if stream.closed:
                del self._watched[stream]
                continue
            amount = buffered_amount(stream.stream_id) + stream.unsent
            if not stream.user.on_buffered_amount(amount):
                self._watched.pop(stream, None)

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
