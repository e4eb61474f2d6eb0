"""RTCDtlsTransport: the trio task that drives one :class:`DtlsConnection`.

The driver owns exactly one core. It reads DTLS datagrams from the ICE layer's memory channel
(draining everything queued after each wake-up, so a burst costs one task switch), feeds the
core, sends what the core produces through a plain callable, and sleeps until the next datagram
or the core's timer, whichever comes first. Decrypted application data (SCTP packets) goes up
through :attr:`RTCDtlsTransport.application_data_receive_channel`.

When the receive channel is the ICE transport's own ``dtls_receive_channel``, the driver also
registers itself as the ICE transport's DTLS sink, so the socket reader task feeds the core
directly; and a layer above may do the same with :meth:`set_application_data_sink`. Both save a
task switch per received batch (docs/architecture.md, "Receive path"); the channels stay the
default and still carry the end of the transport.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import trio

from ..events import Event, EventTarget, event_handler_property
from ..exceptions import InvalidStateError, RTCError
from ..ice.transport import RTCIceTransport
from .certificate import RTCCertificate, RTCDtlsFingerprint
from .connection import DtlsConnection
from .crypto import SrtpKeys
from .events import ApplicationData, ConnectionClosed, ConnectionFailed, HandshakeComplete

__all__ = ["RTCDtlsTransport", "RTCDtlsTransportState", "RTCErrorEvent"]

logger = logging.getLogger("trio_rtc.dtls")

RTCDtlsTransportState = Literal["new", "connecting", "connected", "closed", "failed"]


class RTCErrorEvent(Event):
    """The spec's ``RTCErrorEvent``: an event carrying an :class:`RTCError` in ``error``."""

    def __init__(self, type: str, error: RTCError) -> None:
        super().__init__(type)
        self.error = error


class RTCDtlsTransport(EventTarget):
    """The W3C ``RTCDtlsTransport`` (WebRTC §5.5), plus a trio-native ``run`` and data path.

    ``send`` given to :meth:`run` must not block: it hands a datagram to the ICE layer (which
    drops it if its socket buffer is full, as UDP would).
    """

    onstatechange = event_handler_property["RTCDtlsTransport"]("statechange")
    onerror = event_handler_property["RTCDtlsTransport"]("error")

    def __init__(
        self,
        iceTransport: object,
        certificate: RTCCertificate,
        *,
        is_client: bool,
        remote_fingerprints: Sequence[RTCDtlsFingerprint] = (),
        application_buffer: int = 512,
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
        self._send: Callable[[bytes], object] | None = None
        self._send_many: Callable[[list[bytes]], object] | None = None
        self._wait_scope: trio.CancelScope | None = None
        self._handshake: HandshakeComplete | None = None
        self._app_send, self.application_data_receive_channel = trio.open_memory_channel[bytes](
            application_buffer
        )
        #: Application records dropped because the reader of the channel fell behind.
        self.application_data_dropped = 0
        self._app_sink: Callable[[list[bytes]], object] | None = None

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

    def set_remote_fingerprints(self, fingerprints: Sequence[RTCDtlsFingerprint]) -> None:
        """Fingerprints from a remote description that arrived after the handshake started."""
        self.core.set_remote_fingerprints(fingerprints)
        self._after_core_step()

    async def wait_connected(self) -> None:
        """Return once connected; raise :class:`RTCError` if the transport fails or closes."""
        await self.wait_until(lambda: self._state not in ("new", "connecting"))
        if self._state != "connected":
            raise RTCError(f"DTLS transport is {self._state}", errorDetail="dtls-failure")

    async def send_application_data(self, data: bytes) -> None:
        """Protect ``data`` in one record and send it. Raises InvalidStateError unless connected."""
        if self._state != "connected" or self._send is None:
            raise InvalidStateError(f"cannot send on a DTLS transport in state {self._state!r}")
        self.core.send_application_data(data)
        self._flush()
        await trio.lowlevel.checkpoint()

    def send_application_data_nowait(self, data: bytes) -> bool:
        """Protect ``data`` in one record and send it now, without a checkpoint, for a driver
        above (SCTP) that writes a burst of packets in one synchronous step. Returns False, and
        drops the data as UDP would, unless connected."""
        if self._state != "connected" or self._send is None:
            return False
        core = self.core
        core.send_application_data(data)
        send = self._send
        for datagram in core.datagrams_to_send(trio.current_time()):
            send(datagram)
        return True

    def send_application_packets_nowait(self, packets: list[bytes]) -> bool:
        """:meth:`send_application_data_nowait` for a burst: one record per packet, handed to
        the ICE transport in one call when it can take a list. Returns False, and drops the
        packets as UDP would, unless connected."""
        if self._state != "connected" or self._send is None:
            return False
        core = self.core
        core.send_application_data_many(packets)
        datagrams = core.datagrams_to_send(0.0)
        send_many = self._send_many
        if send_many is not None:
            send_many(datagrams)
        else:
            send = self._send
            for datagram in datagrams:
                send(datagram)
        return True

    def set_application_data_sink(self, sink: Callable[[list[bytes]], object] | None) -> None:
        """Hand decrypted application data to ``sink`` (one call per received batch, records in
        order) instead of queueing it on :attr:`application_data_receive_channel`. What is
        already queued goes to ``sink`` now. ``sink`` must not block and must not raise; the
        channel still ends (EndOfChannel) when this transport does. ``None`` restores the
        channel."""
        self._app_sink = sink
        if sink is None:
            return
        queued: list[bytes] = []
        receive_channel = self.application_data_receive_channel
        while True:
            try:
                queued.append(receive_channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        if queued:
            sink(queued)

    def close(self) -> None:
        """Send close_notify and stop the driver (``run`` returns)."""
        if self._state in ("closed", "failed"):
            return
        self.core.close()
        self._flush()
        self._after_core_step()
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def run(
        self,
        *,
        receive_channel: trio.abc.ReceiveChannel[bytes],
        send: Callable[[bytes], object],
        send_many: Callable[[list[bytes]], object] | None = None,
    ) -> None:
        """Drive the handshake and the association until it closes, fails or is cancelled.

        ``send_many``, if given, sends a list of datagrams as ``send`` would each (for bursts
        of application data, e.g. :meth:`RTCIceTransport.send_many`); when ``send`` is the ICE
        transport's own ``send``, its ``send_many`` is used without asking."""
        if self._send is not None or self._state != "new":
            raise InvalidStateError("RTCDtlsTransport.run() may be called once")
        self._send = send
        self._send_many = send_many
        core = self.core
        ice = self._ice_transport
        sink_source: RTCIceTransport | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._event_nursery = nursery
                core.start(trio.current_time())
                self._after_core_step()
                if isinstance(ice, RTCIceTransport) and receive_channel is ice.dtls_receive_channel:
                    # The ICE reader task feeds the core from now on; what it queued before
                    # goes in first, in order.
                    sink_source = ice
                    if send_many is None and send == ice.send:
                        self._send_many = ice.send_many
                    queued: list[bytes] = []
                    while True:
                        try:
                            queued.append(receive_channel.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                            break
                    ice.set_dtls_sink(self._receive_from_ice)
                    if queued:
                        self._receive_from_ice(queued)
                while self._state in ("new", "connecting", "connected"):
                    deadline = core.get_timer()
                    with trio.CancelScope(
                        deadline=deadline if deadline is not None else math.inf
                    ) as scope:
                        self._wait_scope = scope
                        try:
                            first = await receive_channel.receive()
                        except (trio.EndOfChannel, trio.ClosedResourceError):
                            core.close()
                            self._flush()
                            self._after_core_step()
                            break
                        now = trio.current_time()
                        core.receive_datagram(first, now)
                        # Drain what queued up meanwhile: one wake-up per burst, not per datagram.
                        while isinstance(receive_channel, trio.MemoryReceiveChannel):
                            try:
                                data = receive_channel.receive_nowait()
                            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                                break
                            core.receive_datagram(data, now)
                    self._wait_scope = None
                    core.handle_timer(trio.current_time())
                    self._after_core_step()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            # A bug or a broken ``send`` fails this transport, visibly, instead of taking the
            # peer connection's nursery down with it or hanging.
            logger.exception("DTLS transport driver crashed")
            self._event_nursery = None
            self._fail_visibly(
                RTCError(f"DTLS transport crashed: {exc!r}", errorDetail="dtls-failure")
            )
        finally:
            self._send_many = None
            if sink_source is not None:
                sink_source.set_dtls_sink(None)
            self._event_nursery = None
            self._wait_scope = None
            if self._state not in ("closed", "failed"):
                # Cancelled from outside (the peer connection is closing): say goodbye.
                core.close()
                self._flush()
                self._set_state("closed")
            self._app_send.close()

    # --- internals -----------------------------------------------------------------------------

    def _receive_from_ice(self, datagrams: list[bytes]) -> None:
        """The ICE transport's DTLS sink: one core step for a whole received batch, run in the
        ICE reader's task. Failures fail this transport, never the ICE reader."""
        if self._state not in ("new", "connecting", "connected"):
            return
        core = self.core
        try:
            now = trio.current_time()
            receive = core.receive_datagram
            for datagram in datagrams:
                receive(datagram, now)
            self._after_core_step()
        except Exception as exc:
            logger.exception("DTLS transport driver crashed")
            self._fail_visibly(
                RTCError(f"DTLS transport crashed: {exc!r}", errorDetail="dtls-failure")
            )
        scope = self._wait_scope
        if scope is not None:
            if self._is_over():
                scope.cancel()
            else:
                deadline = core.get_timer()
                scope.deadline = math.inf if deadline is None else deadline

    def _is_over(self) -> bool:
        return self._state in ("closed", "failed")

    def _flush(self) -> None:
        if self._send is None:
            return
        for datagram in self.core.datagrams_to_send(trio.current_time()):
            self._send(datagram)

    def _after_core_step(self) -> None:
        self._flush()
        core = self.core
        sink = self._app_sink
        records: list[bytes] = []
        while (event := core.next_event()) is not None:
            if type(event) is ApplicationData:
                if sink is not None:
                    records.append(event.data)
                    continue
                try:
                    self._app_send.send_nowait(event.data)
                except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    # SCTP above retransmits; holding more would let a slow reader grow memory.
                    self.application_data_dropped += 1
                continue
            if records and sink is not None:
                # Data that arrived before this event goes up before it is handled.
                sink(records)
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
        if records and sink is not None:
            sink(records)
        self._set_state(core.state)

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
