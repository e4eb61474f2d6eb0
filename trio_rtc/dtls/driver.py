"""RTCDtlsTransport: the trio task that drives one :class:`DtlsConnection`.

The driver owns exactly one core. It reads DTLS datagrams from the ICE layer's memory channel
(draining everything queued after each wake-up, so a burst costs one task switch), feeds the
core, sends what the core produces through a plain callable, and sleeps until the next datagram
or the core's timer, whichever comes first. Decrypted application data (SCTP packets) goes up
through :attr:`RTCDtlsTransport.application_data_receive_channel`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import trio

from ..events import Event, EventTarget, event_handler_property
from ..exceptions import InvalidStateError, RTCError
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
        self._wait_scope: trio.CancelScope | None = None
        self._handshake: HandshakeComplete | None = None
        self._app_send, self.application_data_receive_channel = trio.open_memory_channel[bytes](
            application_buffer
        )
        #: Application records dropped because the reader of the channel fell behind.
        self.application_data_dropped = 0

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
        self, *, receive_channel: trio.abc.ReceiveChannel[bytes], send: Callable[[bytes], object]
    ) -> None:
        """Drive the handshake and the association until it closes, fails or is cancelled."""
        if self._send is not None or self._state != "new":
            raise InvalidStateError("RTCDtlsTransport.run() may be called once")
        self._send = send
        core = self.core
        try:
            async with trio.open_nursery() as nursery:
                self._event_nursery = nursery
                core.start(trio.current_time())
                self._after_core_step()
                while self._state in ("new", "connecting", "connected"):
                    deadline = core.next_timeout()
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
                    core.handle_timeout(trio.current_time())
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
            self._event_nursery = None
            self._wait_scope = None
            if self._state not in ("closed", "failed"):
                # Cancelled from outside (the peer connection is closing): say goodbye.
                core.close()
                self._flush()
                self._set_state("closed")
            self._app_send.close()

    # --- internals -----------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._send is None:
            return
        for datagram in self.core.datagrams_to_send(trio.current_time()):
            self._send(datagram)

    def _after_core_step(self) -> None:
        self._flush()
        while (event := self.core.next_event()) is not None:
            if isinstance(event, ApplicationData):
                try:
                    self._app_send.send_nowait(event.data)
                except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    # SCTP above retransmits; holding more would let a slow reader grow memory.
                    self.application_data_dropped += 1
            elif isinstance(event, HandshakeComplete):
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
        self._set_state(self.core.state)

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
