"""The peer connection's driver state: the JSEP core it drives, the operations chain,
negotiationneeded (webrtc-pc §4.7.3), aggregate states and their events, and the announcement of
gathered candidates. The negotiation state itself lives in :class:`trio_rtc.jsep.JsepSession`."""

from __future__ import annotations

import abc
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import trio

from ..configuration import RTCConfiguration
from ..dtls.certificate import RTCCertificate
from ..dtls.driver import RTCDtlsTransport
from ..events import Event, EventTarget, RefuseUnknownHandlers, require_trio
from ..exceptions import InvalidStateError
from ..ice.rtc import RTCIceCandidate
from ..ice.transport import (
    IceCandidateErrorEvent,
    IceCandidateEvent,
    IceTransportOptions,
    RTCIceTransport,
)
from ..identity import IdentityProviderRegistry, PeerIdentity, default_registry
from ..jsep import Description, JsepSession
from ..rtp.driver import RtpTransport
from ..sdp import Fingerprint
from ..sessiondescription import RTCSessionDescription
from .data import DataChannels
from .events import RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent
from .media import MediaSide
from .states import (
    RTCIceConnectionState,
    RTCIceGatheringState,
    RTCPeerConnectionState,
    RTCSignalingState,
    connection_state,
    ice_connection_state,
    ice_gathering_state,
)

__all__ = ["PeerConnectionBase"]

logger = logging.getLogger("trio_rtc.pc")


class PeerConnectionBase(RefuseUnknownHandlers, EventTarget, abc.ABC):
    """State shared by :class:`~trio_rtc.pc.negotiation.Negotiation` and
    :class:`~trio_rtc.pc.connection.RTCPeerConnection`."""

    def __init__(
        self,
        configuration: RTCConfiguration | Mapping[str, Any] | None = None,
        *,
        ice_options: IceTransportOptions | None = None,
        identity_providers: IdentityProviderRegistry | None = None,
    ) -> None:
        self._config = RTCConfiguration.coerce(configuration)
        self._ice_options = ice_options
        #: webrtc-identity: the IdP, our assertion, peerIdentity (trio_rtc/identity/session.py).
        self._identity = PeerIdentity(
            identity_providers if identity_providers is not None else default_registry,
            self.dispatchEvent,
            configured_peer_identity=self._config.peerIdentity,
            remote_certificates=lambda: self._dtls.getRemoteCertificates() if self._dtls else [],
        )
        self._certificate: RTCCertificate | None = (
            self._config.certificates[0] if self._config.certificates else None
        )
        self._entered = False
        self._closed = False
        self._nursery: trio.Nursery | None = None
        #: Where the spec's "queue a task" steps run (a checkpoint, then a few synchronous
        #: steps): the nursery that holds the supervisor, not the supervisor's own. Trio keeps
        #: a nursery's tasks in sets that never shrink; one transient task beside the four
        #: drivers would grow two of them for the connection's life (about 1 KiB).
        self._queue_nursery: trio.Nursery | None = None
        self._supervisor_scope: trio.CancelScope | None = None
        self._lock = trio.Lock()
        #: The JSEP core: signaling state, descriptions, m-line plan, ICE restarts.
        self._jsep = JsepSession()
        #: signalingState as announced so far: an implicit rollback passes through "stable"
        #: while the core is already further, and a handler must see each state in turn.
        self._announced_signaling_state = self._jsep.signaling_state
        self._ice_connection_state: RTCIceConnectionState = "new"
        self._connection_state: RTCPeerConnectionState = "new"
        self._gathering_state: RTCIceGatheringState = "new"
        self._ice: RTCIceTransport | None = None
        self._dtls: RTCDtlsTransport | None = None
        #: Set by the supervisor once DTLS runs (pc/connection.py).
        self._dtls_is_client: bool | None = None
        self._negotiation_update_pending = False
        #: What the ICE transport gathered, kept until its ICE generation is announced.
        self._candidate_buffer: list[tuple[str, str, RTCIceCandidate | None]] = []
        self._data = DataChannels(self)
        #: Transceivers, the RTP task and the tasks that move media.
        self._media = MediaSide(self._jsep, self._update_negotiation_needed, self._supervised_rtp)

    # --- the transports a negotiation starts: implemented by the supervisor -----------------------

    @abc.abstractmethod
    def _ensure_dtls(
        self, ice: RTCIceTransport, fingerprints: Sequence[Fingerprint], is_client: bool
    ) -> None:
        """Start the DTLS transport of the BUNDLE group over ``ice`` (idempotent)."""

    @abc.abstractmethod
    async def _supervised_rtp(self, rtp: RtpTransport) -> None:
        """Run the BUNDLE group's RTP task under the connection's supervision."""

    @abc.abstractmethod
    def _ensure_sctp(self, remote_port: int, remote_max_message_size: int) -> None:
        """Start the SCTP association over DTLS (idempotent; a second call updates the peer's
        max message size)."""

    # --- views of the core --------------------------------------------------------------------------

    @property
    def _signaling_state(self) -> RTCSignalingState:
        if self._jsep.closed:
            return "closed"
        # The JSEP core keeps its states as plain strings; they are the spec's.
        return cast(RTCSignalingState, self._announced_signaling_state)

    @property
    def _ice_applied(self) -> bool:
        """Whether the ICE transport was started with remote parameters (it is "in use")."""
        return self._jsep.ice_started

    def _data_negotiated(self) -> bool:
        return self._jsep.data_negotiated

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
        require_trio(f"RTCPeerConnection.{what}")
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
            self._settle_descriptions()
            if self._negotiation_update_pending and not self._lock.locked():
                self._negotiation_update_pending = False
                self._update_negotiation_needed()

    def _settle_descriptions(self) -> None:
        """Once connected, return the applied descriptions to their compact form (their SDP
        text, see ``jsep.Description``) after anything that parsed one: a view, a late
        trickled candidate, a negotiation-needed check. Before that they stay parsed: setup
        reads them again at once (the local one gains gathered candidates)."""
        if self._connection_state == "connected":
            self._jsep.settle()

    # --- negotiationneeded (webrtc-pc §4.7.3) --------------------------------------------------------

    def _update_negotiation_needed(self) -> None:
        """The driver's half of "update the negotiation-needed flag": wait for an empty
        operations chain, queue a task; the core decides whether to fire."""
        if self._closed:
            return
        if self._nursery is None or self._lock.locked():
            self._negotiation_update_pending = True
            return
        (self._queue_nursery or self._nursery).start_soon(self._negotiation_needed_task)

    async def _negotiation_needed_task(self) -> None:
        await trio.lowlevel.checkpoint()  # "queue a task"
        if self._closed:
            return
        if self._lock.locked():
            self._negotiation_update_pending = True
            return
        needed = self._jsep.update_negotiation_needed()
        self._settle_descriptions()
        if needed:
            self.dispatchEvent(Event("negotiationneeded"))

    # --- states and events --------------------------------------------------------------------------

    def _signaling_changed(self, state: str) -> None:
        self._announced_signaling_state = state
        if self._closed:
            return
        logger.debug("pc %x signalingState -> %s", id(self), state)
        self.dispatchEvent(Event("signalingstatechange"))
        if state == "stable":
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
            if new_connection == "connected":
                # What the setup read (localDescription, trickled candidates) goes back to
                # text: a parsed description is several KiB, kept for the connection's life.
                self._jsep.settle()
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
        """Announce what the ICE transport gathered for the ICE generation of our applied local
        description, in order, as candidates of its BUNDLE tag m-section; keep what belongs to
        credentials not yet announced."""
        target = self._jsep.candidate_target
        if target is None:
            return
        keep: list[tuple[str, str, RTCIceCandidate | None]] = []
        for kind, ufrag, candidate in self._candidate_buffer:
            if ufrag != target.ufrag:
                if (
                    self._ice is not None
                    and ufrag == self._ice.getLocalParameters().usernameFragment
                ):
                    keep.append((kind, ufrag, candidate))
                continue
            if kind == "candidate" and candidate is not None:
                self._jsep.add_local_candidate(ufrag, candidate.candidate)
                self.dispatchEvent(
                    RTCPeerConnectionIceEvent(
                        RTCIceCandidate.from_candidate(
                            candidate.parsed,
                            sdpMid=target.mid,
                            sdpMLineIndex=target.mline_index,
                            usernameFragment=ufrag,
                        )
                        if candidate.parsed is not None
                        else candidate,
                        # The obsolete event member: the STUN/TURN server's URL, as on the
                        # candidate (webrtc-pc §4.8.2).
                        url=candidate.url,
                    )
                )
            elif kind == "candidate":
                self._jsep.local_candidates_complete(ufrag)
                self.dispatchEvent(RTCPeerConnectionIceEvent(None))
            else:
                if kind == "complete":
                    # The transport finished: an empty candidate for its m-section (§5.6).
                    self.dispatchEvent(
                        RTCPeerConnectionIceEvent(
                            RTCIceCandidate(
                                candidate="",
                                sdpMid=target.mid,
                                sdpMLineIndex=target.mline_index,
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

    def _local_view(self, description: Description | None) -> RTCSessionDescription | None:
        if description is None:
            return None
        view = RTCSessionDescription(type=description.type, sdp=self._jsep.local_sdp(description))
        self._settle_descriptions()
        return view

    def _remote_view(self, description: Description | None) -> RTCSessionDescription | None:
        if description is None:
            return None
        return RTCSessionDescription(type=description.type, sdp=description.sdp())
