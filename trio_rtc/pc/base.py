"""The state of a peer connection and the rules that do not apply descriptions: the operations
chain, negotiationneeded (webrtc-pc §4.7.3), aggregate states and their events, the candidates
gathered for the applied local description, and the description views."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import trio

from .. import jsep
from ..configuration import RTCConfiguration
from ..dtls.certificate import RTCCertificate
from ..dtls.driver import RTCDtlsTransport
from ..events import Event, EventTarget
from ..exceptions import (
    InvalidStateError,
)
from ..ice.rtc import RTCIceCandidate
from ..ice.transport import (
    IceCandidateErrorEvent,
    IceCandidateEvent,
    IceTransportOptions,
    RTCIceTransport,
)
from ..sdp import SessionDescription
from ..sessiondescription import RTCSessionDescription
from .data import DataChannels
from .events import RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent
from .states import connection_state, ice_connection_state, ice_gathering_state

__all__ = ["PeerConnectionBase"]

logger = logging.getLogger("trio_rtc.pc")


@attrs.define
class _Description:
    """An applied description: its type and its model (remote ones gain trickled candidates)."""

    type: str
    model: SessionDescription


class PeerConnectionBase(EventTarget):
    """State shared by :class:`~trio_rtc.pc.negotiation.Negotiation` and
    :class:`~trio_rtc.pc.connection.RTCPeerConnection`."""

    def __init__(
        self,
        configuration: RTCConfiguration | Mapping[str, Any] | None = None,
        *,
        ice_options: IceTransportOptions | None = None,
    ) -> None:
        self._config = RTCConfiguration.coerce(configuration)
        self._ice_options = ice_options
        self._certificate: RTCCertificate | None = (
            self._config.certificates[0] if self._config.certificates else None
        )
        self._entered = False
        self._closed = False
        self._nursery: trio.Nursery | None = None
        self._supervisor_scope: trio.CancelScope | None = None
        self._lock = trio.Lock()
        self._signaling_state = "stable"
        self._ice_connection_state = "new"
        self._connection_state = "new"
        self._gathering_state = "new"
        self._pending_local: _Description | None = None
        self._current_local: _Description | None = None
        self._pending_remote: _Description | None = None
        self._current_remote: _Description | None = None
        self._last_offer: str | None = None
        self._last_answer: str | None = None
        self._session_id = jsep.new_session_id()
        self._session_version = 1
        self._slots: list[jsep.MediaSlot] = []
        self._ice: RTCIceTransport | None = None
        self._dtls: RTCDtlsTransport | None = None
        self._dtls_is_client: bool | None = None
        self._ice_applied = False
        self._early_remote_candidates: list[tuple[str | None, RTCIceCandidate | None]] = []
        self._negotiation_needed = False
        self._negotiation_update_pending = False
        self._ice_restart_requested = False
        self._restart_credentials: tuple[str, str] | None = None
        self._answer_credentials: tuple[str, str] | None = None
        self._announced_ufrag: str | None = None
        self._local_mid: str | None = None
        self._local_mline_index = 0
        self._candidate_buffer: list[tuple[str, str, RTCIceCandidate | None]] = []
        self._local_candidates: dict[str, list[str]] = {}
        self._local_complete: set[str] = set()
        self._data = DataChannels(self)

    # --- guards ---------------------------------------------------------------------------------

    def _check_not_closed(self, what: str) -> None:
        if self._closed:
            raise InvalidStateError(f"{what}: the RTCPeerConnection is closed")

    def _require_running(self, what: str) -> tuple[RTCIceTransport, trio.Nursery]:
        self._check_not_closed(what)
        if self._ice is None or self._nursery is None:
            raise InvalidStateError(
                f"{what} needs an open peer connection: use "
                "'async with RTCPeerConnection(configuration) as pc:' and call it inside"
            )
        return self._ice, self._nursery

    @contextlib.asynccontextmanager
    async def _operation(self, what: str) -> AsyncIterator[RTCIceTransport]:
        """The spec's operations chain: one JSEP operation at a time, in call order."""
        # A cancellation that is already tearing the connection down wins over a state error.
        await trio.lowlevel.checkpoint_if_cancelled()
        self._require_running(what)
        try:
            async with self._lock:
                # Acquiring the lock ends in a shielded checkpoint: a cancellation delivered
                # meanwhile (one that is already closing our nurseries) must win here, before
                # the operation changes any state.
                await trio.lowlevel.checkpoint_if_cancelled()
                ice, _ = self._require_running(what)
                yield ice
        finally:
            if self._negotiation_update_pending and not self._lock.locked():
                self._negotiation_update_pending = False
                self._update_negotiation_needed()

    # --- negotiationneeded (webrtc-pc §4.7.3) --------------------------------------------------------

    def _data_negotiated(self) -> bool:
        if self._current_local is None:
            return False
        return any(
            jsep.is_data_section(m) and not m.is_rejected for m in self._current_local.model.media
        )

    def _is_negotiation_needed(self) -> bool:
        if self._ice_restart_requested:
            return True
        return self._data.wanted and not self._data_negotiated()

    def _update_negotiation_needed(self) -> None:
        if self._closed:
            return
        if self._nursery is None or self._lock.locked():
            self._negotiation_update_pending = True
            return
        self._nursery.start_soon(self._negotiation_needed_task)

    async def _negotiation_needed_task(self) -> None:
        await trio.lowlevel.checkpoint()  # "queue a task"
        if self._closed:
            return
        if self._lock.locked():
            self._negotiation_update_pending = True
            return
        if self._signaling_state != "stable":
            return
        if not self._is_negotiation_needed():
            self._negotiation_needed = False
            return
        if self._negotiation_needed:
            return
        self._negotiation_needed = True
        self.dispatchEvent(Event("negotiationneeded"))

    # --- states and events --------------------------------------------------------------------------

    def _set_signaling_state(self, state: str) -> None:
        if self._closed or state == self._signaling_state:
            return
        logger.debug("pc %x signalingState %s -> %s", id(self), self._signaling_state, state)
        self._signaling_state = state
        self.dispatchEvent(Event("signalingstatechange"))
        if state == "stable":
            self._negotiation_needed = False
            self._update_negotiation_needed()

    def _update_states(self) -> None:
        if self._closed or self._ice is None:
            return
        ice_states = [self._ice.state] if self._ice_applied else []
        dtls_states = [self._dtls.state] if self._dtls is not None else []
        new_ice = ice_connection_state(ice_states, closed=False)
        new_connection = connection_state(ice_states, dtls_states, closed=False)
        if new_ice != self._ice_connection_state:
            self._ice_connection_state = new_ice
            self.dispatchEvent(Event("iceconnectionstatechange"))
        if new_connection != self._connection_state:
            logger.debug("pc %x connectionState -> %s", id(self), new_connection)
            self._connection_state = new_connection
            self.dispatchEvent(Event("connectionstatechange"))

    def _on_ice_candidate(self, event: IceCandidateEvent) -> None:
        ice = self._ice
        if ice is None or self._closed:
            return
        candidate = event.candidate
        ufrag = (
            candidate.usernameFragment
            if candidate is not None and candidate.usernameFragment is not None
            else ice.getLocalParameters().usernameFragment
        )
        self._candidate_buffer.append(("candidate", ufrag, candidate))
        self._flush_candidates()

    def _on_gathering_state(self, _event: Event) -> None:
        ice = self._ice
        if ice is None or self._closed:
            return
        ufrag = ice.getLocalParameters().usernameFragment
        self._candidate_buffer.append((ice.gatheringState, ufrag, None))
        self._flush_candidates()

    def _flush_candidates(self) -> None:
        """Announce what the ICE transport gathered for the ufrag of our applied local
        description, in order; keep what belongs to credentials not yet announced."""
        announced = self._announced_ufrag
        if announced is None:
            return
        keep: list[tuple[str, str, RTCIceCandidate | None]] = []
        for kind, ufrag, candidate in self._candidate_buffer:
            if ufrag != announced:
                if (
                    self._ice is not None
                    and ufrag == self._ice.getLocalParameters().usernameFragment
                ):
                    keep.append((kind, ufrag, candidate))
                continue
            if kind == "candidate" and candidate is not None:
                self._local_candidates.setdefault(ufrag, []).append(candidate.candidate)
                self.dispatchEvent(
                    RTCPeerConnectionIceEvent(
                        RTCIceCandidate.from_candidate(
                            candidate.parsed,
                            sdpMid=self._local_mid,
                            sdpMLineIndex=self._local_mline_index,
                            usernameFragment=ufrag,
                        )
                        if candidate.parsed is not None
                        else candidate
                    )
                )
            elif kind == "candidate":
                self._local_complete.add(ufrag)
                self.dispatchEvent(RTCPeerConnectionIceEvent(None))
            else:
                if kind == "complete":
                    # The transport finished: an empty candidate for its m-section (§5.6).
                    self.dispatchEvent(
                        RTCPeerConnectionIceEvent(
                            RTCIceCandidate(
                                candidate="",
                                sdpMid=self._local_mid,
                                sdpMLineIndex=self._local_mline_index,
                                usernameFragment=ufrag,
                            )
                        )
                    )
                state = ice_gathering_state([kind])
                if state != self._gathering_state:
                    self._gathering_state = state
                    self.dispatchEvent(Event("icegatheringstatechange"))
        self._candidate_buffer = keep

    def _on_ice_candidate_error(self, event: IceCandidateErrorEvent) -> None:
        if self._closed:
            return
        self.dispatchEvent(
            RTCPeerConnectionIceErrorEvent(
                address=event.address,
                port=event.port,
                url=event.url,
                errorCode=event.errorCode,
                errorText=event.errorText,
            )
        )

    # --- description views ------------------------------------------------------------------------------

    def _local_view(self, description: _Description | None) -> RTCSessionDescription | None:
        if description is None:
            return None
        model = description.model
        data = next((m for m in model.media if jsep.is_data_section(m) and not m.is_rejected), None)
        if data is not None:
            credentials = model.ice_credentials(data)
            if credentials is not None and (
                credentials.ufrag in self._local_candidates
                or credentials.ufrag in self._local_complete
            ):
                model = jsep.with_candidates(
                    model,
                    data.mid,
                    self._local_candidates.get(credentials.ufrag, []),
                    end_of_candidates=credentials.ufrag in self._local_complete,
                )
        return RTCSessionDescription(type=description.type, sdp=model.serialize())

    def _remote_view(self, description: _Description | None) -> RTCSessionDescription | None:
        if description is None:
            return None
        return RTCSessionDescription(type=description.type, sdp=description.model.serialize())
