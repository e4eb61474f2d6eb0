"""RTCDtlsTransport: the trio task that owns one :class:`DtlsConnection` core.

The task has one inbox, a memory channel of batches (:mod:`trio_rtc._channels`): the ICE
transport puts each burst of received DTLS datagrams on it as one list, and the layer above
(SCTP) puts each burst of packets to protect and send as one :class:`~trio_rtc._channels.Outgoing`
list. The task takes the first item with ``await`` and the rest of what queued with
``receive_nowait``, feeds the core, hands the core's datagrams to the ICE transport's socket in
one call, puts the decrypted application records on the upper layer's channel as one batch, and
sleeps until the next item or the core's timer, whichever comes first. Its timer is its own; no
other task drives its core.

Used on its own (tests, a program that speaks DTLS without a peer connection), ``run`` takes the
channel of received datagrams as ``receive_channel`` and a small forwarding task moves them to
the inbox; received records are then read from :attr:`application_data_receive_channel`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal, get_args

import trio

from .._channels import Batch, BatchReceiveChannel, Outgoing, ended_batch_channel
from .._supervision import unwrap
from ..events import Event, EventTarget, HandlerQueue, RTCErrorEvent, on_event
from ..exceptions import InvalidStateError, RTCError
from .certificate import RTCCertificate, RTCDtlsFingerprint
from .connection import DtlsConnection
from .crypto import SrtpKeys
from .events import ApplicationData, ConnectionClosed, ConnectionFailed, HandshakeComplete

__all__ = ["RTCDtlsTransport", "RTCDtlsTransportState"]

logger = logging.getLogger("trio_rtc.dtls")

RTCDtlsTransportState = Literal["new", "connecting", "connected", "closed", "failed"]
_STATES: tuple[RTCDtlsTransportState, ...] = get_args(RTCDtlsTransportState)

#: Batches queued for the DTLS task (from ICE and from the layer above) before more are dropped.
INBOX_DEPTH = 512
#: What a failing ``send`` raises when the transport below is gone: that fails this transport.
_SEND_ERRORS = (OSError, trio.ClosedResourceError, trio.BrokenResourceError)


#: The floor of the first retransmission timeout when ICE measured the path's round trip.
MIN_RETRANSMIT_TIMEOUT = 0.05


class RTCDtlsTransport(EventTarget):
    """The W3C ``RTCDtlsTransport`` (WebRTC §5.5), plus a trio-native ``run`` and data path.

    ``inbox``: the (send, receive) ends of the task's inbox, when the peer connection created
    it before this transport (so the ICE transport can queue early datagrams on it); by default
    the transport makes its own. ``application_channel``: where batches of decrypted records go
    (the SCTP task's inbox); by default a channel of its own, read through
    :attr:`application_data_receive_channel`.
    """

    onstatechange = on_event[Event]("statechange")
    onerror = on_event[RTCErrorEvent]("error")

    def __init__(
        self,
        iceTransport: object,
        certificate: RTCCertificate,
        *,
        is_client: bool,
        remote_fingerprints: Sequence[RTCDtlsFingerprint] = (),
        application_buffer: int = 512,
        inbox: tuple[trio.MemorySendChannel[Batch | None], trio.MemoryReceiveChannel[Batch | None]]
        | None = None,
        **core_options: Any,
    ) -> None:
        self._ice_transport = iceTransport
        self.core = DtlsConnection(
            is_client=is_client,
            certificate=certificate,
            remote_fingerprints=remote_fingerprints,
            **core_options,
        )
        self._state: RTCDtlsTransportState = "new"
        self._send_many: Callable[[list[bytes]], object] | None = None
        self._handshake: HandshakeComplete | None = None
        self._running = False
        if inbox is None:
            inbox = trio.open_memory_channel[Batch | None](INBOX_DEPTH)
        self._inbox_send, self._inbox = inbox
        app_send, app_receive = trio.open_memory_channel[Batch | None](application_buffer)
        self._app_send: trio.MemorySendChannel[Batch | None] = app_send
        self._app_receive: BatchReceiveChannel[bytes] | None = BatchReceiveChannel(app_receive)
        #: Application records dropped because the reader of the channel fell behind.
        self.application_data_dropped = 0
        #: Application payloads dropped because they were handed over before the handshake
        #: completed or after the transport ended (the layer above retransmits).
        self.outgoing_dropped = 0
        #: Standalone use: datagrams dropped because the task's inbox was full.
        self.inbox_dropped = 0
        #: The unexpected exception that ended the task, if one did (see ``run``).
        self.crashed: BaseException | None = None

    def _timeout_from_ice(self) -> None:
        """Start the retransmission timer from the round trip ICE measured on the pair in use
        (three times it, between 50 ms and the core's 1 s), still doubling on each expiry (RFC
        6347 §4.2.4.1): a first flight the peer dropped (some stacks drop a ClientHello that
        arrives before their own ICE says connected) then costs tens of milliseconds, not 1 s."""
        pair = getattr(self._ice_transport, "selected_pair", None)
        rtt = getattr(pair, "current_round_trip_time", None)
        if isinstance(rtt, float) and rtt >= 0:
            core = self.core
            before = core.initial_retransmit_timeout
            start = min(before, max(MIN_RETRANSMIT_TIMEOUT, 3 * rtt))
            if start < before:
                core.initial_retransmit_timeout = start
                # As long before giving up as the schedule from the core's own start: a peer
                # whose answer is still on its way (slow signalling) is not abandoned after
                # seconds. Each doubling from the shorter start makes up for one halving.
                core.max_retransmissions += math.ceil(math.log2(before / start))

    # --- W3C surface -----------------------------------------------------------------------

    @property
    def state(self) -> RTCDtlsTransportState:
        return self._state

    @property
    def iceTransport(self) -> object:
        return self._ice_transport

    def getRemoteCertificates(self) -> list[bytes]:
        """The peer's certificate chain as DER (the spec's ``ArrayBuffer`` list)."""
        der = self.core.remote_certificate_der
        return [der] if der is not None and self._handshake is not None else []

    # --- trio-native additions ---------------------------------------------------------------

    @property
    def srtp_keys(self) -> SrtpKeys | None:
        """SRTP master keys and salts, once connected and if use_srtp was agreed."""
        return self._handshake.srtp_keys if self._handshake is not None else None

    @property
    def handshake_complete(self) -> HandshakeComplete | None:
        return self._handshake

    def export_keying_material(
        self, label: str, length: int, context: bytes | None = None
    ) -> bytes:
        return self.core.export_keying_material(label, length, context)

    async def wait_connected(self) -> None:
        """Return once connected; raise :class:`RTCError` if the transport fails or closes."""
        await self.wait_until(lambda: self._state not in ("new", "connecting"))
        if self._state != "connected":
            raise RTCError(f"DTLS transport is {self._state}", errorDetail="dtls-failure")

    async def wait_for(
        self, *, state: RTCDtlsTransportState | Collection[RTCDtlsTransportState]
    ) -> RTCDtlsTransportState:
        """Wait until ``state`` has a value, or one of several, and return it:
        ``await dtls.wait_for(state=("connected", "failed"))``. ValueError for a value it never
        takes; InvalidStateError if the transport ends (``closed`` or ``failed``) first unless
        that state is wanted. :meth:`wait_connected` is the shorthand that raises RTCError."""
        value: RTCDtlsTransportState = await self._wait_for_value(
            {"state": state}, _STATES, lambda: self._state in ("closed", "failed")
        )
        return value

    async def send_application_data(self, data: bytes) -> None:
        """Protect ``data`` in one record and send it (from the transport's task). Raises
        InvalidStateError unless connected."""
        if self._state != "connected":
            raise InvalidStateError(f"cannot send on a DTLS transport in state {self._state!r}")
        self.send_application_batch_nowait(Outgoing((data,)))
        await trio.lowlevel.checkpoint()

    def send_application_batch_nowait(self, payloads: Outgoing) -> bool:
        """Hand a burst of payloads (one record each) to the transport's task, which protects
        and sends them in one step. Returns False, dropping them as UDP would, if its inbox is
        full or it has ended."""
        try:
            self._inbox_send.send_nowait(payloads)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.outgoing_dropped += len(payloads)
            return False
        return True

    @property
    def application_data_receive_channel(self) -> BatchReceiveChannel[bytes]:
        """Decrypted application records one at a time, unless the records go to another
        layer's channel (:meth:`set_application_channel`; then an ended channel)."""
        if self._app_receive is None:
            self._app_receive = ended_batch_channel()
        return self._app_receive

    def set_application_channel(self, channel: trio.MemorySendChannel[Batch | None]) -> None:
        """Send decrypted records to ``channel`` (the upper layer's inbox: one batch per
        burst, ``None`` once this transport ended) instead of
        :attr:`application_data_receive_channel`. Records already queued move over first."""
        old, self._app_send = self._app_send, channel
        pending = self.application_data_receive_channel.take_queued()
        old.close()
        # Our own channel is not read any more: let it go (a connection's whole life).
        self._app_receive = None
        for batch in pending:
            self._deliver_up(batch)

    def close(self, *, last_records: Sequence[bytes] = ()) -> None:
        """Send ``last_records`` (e.g. SCTP's ABORT), then close_notify, now; ``run`` returns.

        Closing is the one step taken outside the transport's task: the peer connection calls
        it as it tears its task tree down, so the goodbye leaves before the sockets close."""
        if self._state in ("closed", "failed"):
            return
        if last_records and self._state == "connected":
            self.core.send_application_data_many(list(last_records))
        self.core.close()
        self._flush()
        self._after_core_step()
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._inbox_send.send_nowait(None)  # wakes the task, which sees the state and ends
        self._inbox_send.close()

    async def run(
        self,
        *,
        receive_channel: trio.abc.ReceiveChannel[bytes] | None = None,
        send: Callable[[bytes], object] | None = None,
        send_many: Callable[[list[bytes]], object] | None = None,
    ) -> None:
        """Drive the handshake and the association until it closes, fails or is cancelled.

        ``send_many`` sends a list of datagrams (the ICE transport's ``send_many``); ``send``,
        one datagram, is the simpler alternative for standalone use. ``receive_channel``: a
        channel of received datagrams to read, for standalone use; without it, the lower layer
        puts batches on this transport's inbox directly."""
        if self._running or self._state != "new":
            raise InvalidStateError("RTCDtlsTransport.run() may be called once")
        if send_many is None:
            if send is None:
                raise TypeError("run() needs send_many or send")
            one = send

            def send_each(datagrams: list[bytes]) -> None:
                for datagram in datagrams:
                    one(datagram)

            send_many = send_each
        self._running = True
        self._send_many = send_many
        core = self.core
        try:
            if self._handler_queue is None or receive_channel is not None:
                async with trio.open_nursery() as nursery:
                    if self._handler_queue is None:
                        # Used on its own: async event handlers get a queue of the transport's
                        # own.
                        self._handler_queue = HandlerQueue(name="dtls")
                        await nursery.start(self._handler_queue.run)
                    if receive_channel is not None:
                        nursery.start_soon(self._forward, receive_channel)
                    await self._loop()
                    nursery.cancel_scope.cancel()
            else:
                # In a peer connection: its queue runs our handlers and the ICE transport fills
                # our inbox, so this task keeps no nursery for the connection's life.
                await self._loop()
        except Exception as exc:
            # A bug: this transport fails visibly, and the supervisor (the peer connection)
            # reads ``crashed`` and fails the connection.
            logger.exception("DTLS transport task crashed")
            self.crashed = unwrap(exc)
            self._fail_visibly(
                RTCError(f"DTLS transport crashed: {self.crashed!r}", errorDetail="dtls-failure")
            )
        finally:
            if self._state not in ("closed", "failed"):
                # Cancelled from outside (the peer connection is closing): say goodbye.
                core.close()
                self._flush()
                self._set_state("closed")
            self._send_many = None
            self._inbox_send.close()
            self._deliver_up(None)
            self._app_send.close()

    # --- internals -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        """The task's one loop: wait for the inbox (or the core's timer), feed the core,
        send what it produced, until the transport ends."""
        core = self.core
        inbox = self._inbox
        self._timeout_from_ice()
        core.start(trio.current_time())
        self._after_core_step()
        items: list[Batch | None] = []
        while self._state in ("new", "connecting", "connected"):
            deadline = core.get_timer()
            try:
                if deadline is None:
                    items.append(await inbox.receive())
                else:
                    with trio.CancelScope(deadline=deadline):
                        items.append(await inbox.receive())
            except (trio.EndOfChannel, trio.ClosedResourceError):
                items.append(None)
            now = trio.current_time()
            if items:
                # Everything that queued meanwhile, in the same wake-up.
                while True:
                    try:
                        items.append(inbox.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                        break
                self._take(items, now)
                items.clear()
            else:
                core.handle_timer(now)
            self._after_core_step(now)

    def _take(self, items: list[Batch | None], now: float) -> None:
        core = self.core
        receive = core.receive_datagram
        for item in items:
            if item is None:
                # The transport below ended: so does this one.
                core.close()
                return
            if type(item) is Outgoing:
                # The core's state, not ours: a close_notify earlier in this same wake-up
                # closed it, and our state follows only after the batch.
                if core.state == "connected":
                    core.send_application_data_many(item)
                else:
                    self.outgoing_dropped += len(item)
                continue
            for datagram in item:
                receive(datagram, now)

    async def _forward(self, channel: trio.abc.ReceiveChannel[bytes]) -> None:
        """Standalone use: move datagrams from ``channel`` to the inbox, a burst per item."""
        inbox = self._inbox_send
        while True:
            try:
                batch = [await channel.receive()]
            except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                batch = None
            if batch is not None and isinstance(
                channel, trio.MemoryReceiveChannel | BatchReceiveChannel
            ):
                while True:
                    try:
                        batch.append(channel.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                        break
            try:
                inbox.send_nowait(batch)
            except trio.WouldBlock:
                self.inbox_dropped += len(batch or ())
                continue  # full: dropped (and counted), as UDP would
            except trio.ClosedResourceError:
                return
            if batch is None:
                return

    def _deliver_up(self, batch: Batch | None) -> None:
        try:
            self._app_send.send_nowait(batch)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            # SCTP above retransmits; holding more would let a slow reader grow memory.
            if batch:
                self.application_data_dropped += len(batch)

    def _flush(self, now: float | None = None) -> None:
        send_many = self._send_many
        if send_many is None:
            return
        datagrams = self.core.datagrams_to_send(trio.current_time() if now is None else now)
        if not datagrams:
            return
        try:
            send_many(datagrams)
        except _SEND_ERRORS as exc:
            # The transport below is gone (or its send broke): this transport fails.
            self._send_many = None
            self._fail_visibly(
                RTCError(f"DTLS transport cannot send: {exc!r}", errorDetail="dtls-failure")
            )

    def _after_core_step(self, now: float | None = None) -> None:
        self._flush(now)
        core = self.core
        records: Batch = []
        while (event := core.next_event()) is not None:
            if type(event) is ApplicationData:
                records.append(event.data)
                continue
            if records:
                # Data that arrived before this event goes up before it is handled.
                self._deliver_up(records)
                records = []
            if isinstance(event, HandshakeComplete):
                self._handshake = event
            elif isinstance(event, ConnectionFailed):
                detail = "fingerprint-failure" if event.alert == 42 else "dtls-failure"
                error = RTCError(
                    f"DTLS failed: {event.reason}",
                    errorDetail=detail,
                    receivedAlert=event.alert if event.received else None,
                    sentAlert=event.alert if not event.received else None,
                )
                self._fail_visibly(error)
            elif isinstance(event, ConnectionClosed):
                pass
        if records:
            self._deliver_up(records)
        state = core.state
        if state != self._state and self._state != "failed":
            self._set_state(state)

    def _fail_visibly(self, error: RTCError) -> None:
        if self._state in ("closed", "failed"):
            return
        # W3C §5.5: the state reads failed, then error fires, then statechange.
        self._state = "failed"
        self.dispatchEvent(RTCErrorEvent("error", error))
        self.dispatchEvent(Event("statechange"))

    def _set_state(self, state: RTCDtlsTransportState) -> None:
        if state == self._state or self._state in ("closed", "failed"):
            return
        self._state = state
        logger.debug("DTLS transport %s -> %s", id(self), state)
        self.dispatchEvent(Event("statechange"))
