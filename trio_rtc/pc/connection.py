"""``RTCPeerConnection``: the supervisor and the public surface (webrtc-pc §4).

``async with RTCPeerConnection(configuration) as pc:`` starts one supervising task whose nursery
holds every driver of this connection: the ICE transport, the DTLS transport and the SCTP
association. Leaving the block or ``await pc.close()`` cancels that nursery, which closes every
socket; the connection ends in ``closed``. The user's code in the block is never cancelled by
the peer connection (the drivers live in a nursery of their own).

The offer/answer rules are in :mod:`trio_rtc.jsep`; this module applies descriptions, wires the
layers together and keeps the spec's states and events. Everything is BUNDLEd on one ICE
transport and one DTLS transport.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, Unpack, get_args, overload

import attrs
import trio

from .._channels import Batch
from .._lifetime import AsyncLifetime
from .._supervision import unwrap
from ..configuration import RTCConfiguration
from ..datachannel import RTCDataChannel, RTCDataChannelInit
from ..dtls.certificate import RTCCertificate, RTCDtlsFingerprint
from ..dtls.driver import INBOX_DEPTH as DTLS_INBOX_DEPTH
from ..dtls.driver import RTCDtlsTransport
from ..dtls.generate import shared_certificate
from ..events import (
    Event,
    HandlerQueue,
    RTCDataChannelEvent,
    RTCErrorEvent,
    on_event,
    require_trio,
)
from ..exceptions import (
    InvalidAccessError,
    InvalidStateError,
    RTCError,
)
from ..ice.rtc import RTCIceCandidate
from ..ice.transport import (
    IceTransportOptions,
    RTCIceTransport,
)
from ..identity import IdentityPromise, IdentityProviderRegistry, PeerIdentity
from ..identity.session import RTCIdentityErrorEvent, RTCIdentityEvent
from ..media import MediaStream, MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from ..media.dtmf import RTCDTMFSender
from ..media.frames import FrameTrackLike
from ..media.tracks import as_media_track
from ..rtp.driver import RtpTransport
from ..sctp.transport import RTCSctpTransport
from ..sdp import Fingerprint
from ..sessiondescription import RTCSessionDescription
from ..stats import RTCStatsReport, collect_stats
from ..trace import Tracer, TraceSubscription, make_tracer
from ..trace.tracer import TraceOption
from .events import RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent
from .media import RTCTrackEvent
from .negotiation import Negotiation, RTCAnswerOptions, RTCOfferOptions
from .states import (
    RTCIceConnectionState,
    RTCIceGatheringState,
    RTCPeerConnectionState,
    RTCSignalingState,
)

__all__ = ["MediaStreamEvent", "RTCPeerConnection"]


class _Component(Protocol):
    """A driver the supervisor runs: ICE, DTLS, SCTP or RTP."""

    @property
    def run(self) -> Callable[..., Awaitable[object]]: ...


logger = logging.getLogger("trio_rtc.pc")


class MediaStreamEvent(Event):
    """The obsolete ``addstream``/``removestream`` events' interface: ``stream``."""

    def __init__(self, type: str, stream: MediaStream) -> None:
        super().__init__(type)
        self.stream = stream


#: The values each state attribute takes, for ``wait_for``'s check of what it is asked to wait for.
_STATE_VALUES: dict[str, tuple[str, ...]] = {
    "connectionState": get_args(RTCPeerConnectionState),
    "iceConnectionState": get_args(RTCIceConnectionState),
    "iceGatheringState": get_args(RTCIceGatheringState),
    "signalingState": get_args(RTCSignalingState),
}

#: The longest ``close()`` waits for the SCTP association's graceful SHUTDOWN before aborting.
GRACEFUL_CLOSE_SECONDS = 0.5


class RTCPeerConnection(Negotiation, AsyncLifetime):
    """The W3C ``RTCPeerConnection`` on trio. See ``docs/peerconnection.md``."""

    onconnectionstatechange = on_event[Event]("connectionstatechange")
    ondatachannel = on_event[RTCDataChannelEvent]("datachannel")
    onicecandidate = on_event[RTCPeerConnectionIceEvent]("icecandidate")
    onicecandidateerror = on_event[RTCPeerConnectionIceErrorEvent]("icecandidateerror")
    oniceconnectionstatechange = on_event[Event]("iceconnectionstatechange")
    onicegatheringstatechange = on_event[Event]("icegatheringstatechange")
    onnegotiationneeded = on_event[Event]("negotiationneeded")
    onsignalingstatechange = on_event[Event]("signalingstatechange")
    ontrack = on_event[RTCTrackEvent]("track")
    # webrtc-identity (and the identity events of the older MDN page): see docs/identity.md.
    onidentityresult = on_event[RTCIdentityEvent]("identityresult")
    onidpassertionerror = on_event[RTCIdentityErrorEvent]("idpassertionerror")
    onidpvalidationerror = on_event[RTCIdentityErrorEvent]("idpvalidationerror")
    onpeeridentity = on_event[Event]("peeridentity")

    _failure: BaseException | None = None
    #: The DTLS task's inbox, made at start so the ICE transport can queue early datagrams.
    _dtls_inbox: (
        tuple[trio.MemorySendChannel[Batch | None], trio.MemoryReceiveChannel[Batch | None]] | None
    ) = None

    if TYPE_CHECKING:
        # The offer/answer methods live in Negotiation; declared again here, so that a type
        # checker's messages about them name RTCPeerConnection, the class users know.
        async def createOffer(
            self, options: RTCOfferOptions | None = None
        ) -> RTCSessionDescription: ...
        async def createAnswer(
            self, options: RTCAnswerOptions | None = None
        ) -> RTCSessionDescription: ...
        async def setLocalDescription(
            self, description: RTCSessionDescription | Mapping[str, Any] | None = None
        ) -> None: ...
        async def setRemoteDescription(
            self, description: RTCSessionDescription | Mapping[str, Any]
        ) -> None: ...
        async def addIceCandidate(
            self, candidate: RTCIceCandidate | Mapping[str, Any] | None = None
        ) -> None: ...
        def restartIce(self) -> None: ...

    def __init__(
        self,
        configuration: RTCConfiguration | Mapping[str, Any] | None = None,
        *,
        ice_options: IceTransportOptions | None = None,
        identity_providers: IdentityProviderRegistry | None = None,
        trace: TraceOption = None,
    ) -> None:
        """``trace``: the structured trace (``docs/tracing.md``), off by default — a path
        (JSON lines; ``*.qlog``: qlog; a directory: a file per connection), a writer, or True
        (live consumers only); None follows ``trio_rtc.trace.tracing()`` and the
        ``TRIO_RTC_TRACE`` environment variable."""
        super().__init__(
            configuration, ice_options=ice_options, identity_providers=identity_providers
        )
        self._tracer: Tracer | None = make_tracer(trace)
        self._attach_tracer()
        # ICE-lite (docs/server-mode.md): our descriptions say a=ice-lite; we stay controlled.
        self._jsep.ice_lite = self._config.ice_lite

    # --- configuration and static members -----------------------------------------------------

    @staticmethod
    async def generateCertificate(
        keygenAlgorithm: str | Mapping[str, Any] | None = None,
    ) -> RTCCertificate:
        """``RTCPeerConnection.generateCertificate()``: see :meth:`RTCCertificate.generate`."""
        require_trio("RTCPeerConnection.generateCertificate()")
        return await RTCCertificate.generate(keygenAlgorithm)

    def getConfiguration(self) -> dict[str, Any]:
        config = self._config
        if self._certificate is not None and not config.certificates:
            config = attrs.evolve(config, certificates=(self._certificate,))
        return config.to_dict()

    def setConfiguration(self, configuration: RTCConfiguration | Mapping[str, Any]) -> None:
        """Change the configuration with the spec's restrictions (webrtc-pc §4.4.1.6).

        New ``iceServers`` are used from the next gathering on (an ICE restart, see
        ``restartIce()``), as the spec says; candidates already gathered stay."""
        if self._closed:
            raise InvalidStateError("setConfiguration(): the RTCPeerConnection is closed")
        new = RTCConfiguration.coerce(configuration)
        self._config.check_update(
            new,
            local_description_set=self._jsep.local_description is not None,
        )
        self._identity.check_configuration(new.peerIdentity)
        servers_changed = new.iceServers != self._config.iceServers
        self._config = attrs.evolve(
            new,
            certificates=self._config.certificates,
            peerIdentity=new.peerIdentity or self._config.peerIdentity,
            shared_udp=self._config.shared_udp,  # server mode: fixed at construction
            ice_lite=self._config.ice_lite,  # likewise
        )
        if servers_changed and self._ice is not None:
            self._ice.set_ice_servers(self._config.iceServers)

    def getDefaultIceServers(self) -> list[dict[str, Any]]:
        """No ICE servers are used unless the configuration names them."""
        return []

    # --- read-only attributes ------------------------------------------------------------------

    @property
    def signalingState(self) -> RTCSignalingState:
        return self._signaling_state

    @property
    def iceGatheringState(self) -> RTCIceGatheringState:
        return self._gathering_state

    @property
    def iceConnectionState(self) -> RTCIceConnectionState:
        return self._ice_connection_state

    @property
    def connectionState(self) -> RTCPeerConnectionState:
        return self._connection_state

    @property
    def canTrickleIceCandidates(self) -> bool | None:
        """None until a remote description is set; then whether it says ``ice-options:trickle``."""
        can_trickle = self._jsep.can_trickle
        self._settle_descriptions()
        return can_trickle

    @property
    def localDescription(self) -> RTCSessionDescription | None:
        return self._local_view(self._jsep.local_description)

    @property
    def currentLocalDescription(self) -> RTCSessionDescription | None:
        return self._local_view(self._jsep.current_local)

    @property
    def pendingLocalDescription(self) -> RTCSessionDescription | None:
        return self._local_view(self._jsep.pending_local)

    @property
    def remoteDescription(self) -> RTCSessionDescription | None:
        return self._remote_view(self._jsep.remote_description)

    @property
    def currentRemoteDescription(self) -> RTCSessionDescription | None:
        return self._remote_view(self._jsep.current_remote)

    @property
    def pendingRemoteDescription(self) -> RTCSessionDescription | None:
        return self._remote_view(self._jsep.pending_remote)

    @property
    def sctp(self) -> RTCSctpTransport | None:
        """The RTCSctpTransport once a data m-section is negotiated, else None."""
        return self._data.sctp

    # --- identity (webrtc-identity §8) ------------------------------------------------------------

    def setIdentityProvider(
        self,
        provider: str,
        options: Mapping[str, Any] | str | None = None,
        usernameHint: str | None = None,
    ) -> None:
        """Use IdP ``provider`` (a domain registered in this connection's
        ``IdentityProviderRegistry``) for our assertions. ``options``: ``protocol``,
        ``usernameHint``, ``peerIdentity``; the older ``(domain, protocol, username)`` form is
        accepted too. An unregistered (domain, protocol) raises RTCError ``idp-load-failure``
        naming it; a protocol with '/' or '\\' raises SdpSyntaxError (the DOM SyntaxError)."""
        self._check_not_closed("setIdentityProvider()")
        if isinstance(options, str) or usernameHint is not None:
            options = {"protocol": options or "default", "usernameHint": usernameHint}
        self._identity.set_provider(provider, dict(options or {}))

    async def getIdentityAssertion(self) -> str:
        """Request an identity assertion from the IdP (or the one already made) and return the
        ``a=identity`` value (base64 JSON). RTCError with an ``idp-*`` ``errorDetail`` when the
        IdP fails (after an ``idpassertionerror`` event); InvalidStateError without an IdP."""
        require_trio("RTCPeerConnection.getIdentityAssertion()")
        await trio.lowlevel.checkpoint()
        self._check_not_closed("getIdentityAssertion()")
        if self._certificate is None:
            self._require_running("getIdentityAssertion()")
        assert self._certificate is not None
        fingerprints = [
            Fingerprint(f.algorithm, f.value) for f in self._certificate.getFingerprints()
        ]
        return await self._identity.request(fingerprints)

    @property
    def peerIdentity(self) -> IdentityPromise:
        """The peer's identity as an awaitable: ``identity = await pc.peerIdentity`` gives an
        RTCIdentityAssertion (``idp``, ``name``) once the peer's ``a=identity`` validates, and
        raises the error if validation fails (a new pending value replaces it unless a target
        peer identity is set)."""
        return self._identity.promise

    @property
    def idpLoginUrl(self) -> str | None:
        """The login URL an IdP gave with ``idp-need-login``, else None."""
        return self._identity.idpLoginUrl

    @property
    def idpErrorInfo(self) -> str | None:
        """What the IdP said about its last error, else None."""
        return self._identity.idpErrorInfo

    @property
    def identity(self) -> PeerIdentity:
        """The identity state: the registry in use, the target peer identity, and counters of
        malformed ``a=identity`` attributes dropped (``malformed``) and failed validations."""
        return self._identity

    # --- media (webrtc-pc §5) -------------------------------------------------------------------

    def getSenders(self) -> list[RTCRtpSender]:
        return [t.sender for t in self._media.transceivers() if t.currentDirection != "stopped"]

    def getReceivers(self) -> list[RTCRtpReceiver]:
        return [t.receiver for t in self._media.transceivers() if t.currentDirection != "stopped"]

    def getTransceivers(self) -> list[RTCRtpTransceiver]:
        return self._media.transceivers()

    def addTrack(
        self, track: MediaStreamTrack | FrameTrackLike, *streams: MediaStream
    ) -> RTCRtpSender:
        """Send ``track`` (webrtc-pc §4.4.1.6 addTrack); ``streams`` give its ``a=msid``. A
        frame track (``kind`` and ``async recv()`` of raw frames) is encoded by the sender."""
        self._check_not_closed("addTrack()")
        media_track = as_media_track(track)
        if media_track is None:
            raise TypeError(
                "addTrack() takes a MediaStreamTrack or a frame track (an object with kind and "
                f"async recv() returning PyAV frames), not {track!r}"
            )
        return self._media.add_track(media_track, streams)

    def removeTrack(self, sender: RTCRtpSender) -> None:
        self._check_not_closed("removeTrack()")
        self._media.remove_track(sender)

    def addTransceiver(
        self,
        trackOrKind: MediaStreamTrack | FrameTrackLike | str,
        init: Mapping[str, Any] | None = None,
    ) -> RTCRtpTransceiver:
        """A transceiver for ``trackOrKind`` (webrtc-pc §4.4.1.6 addTransceiver); ``init``:
        direction, streams, sendEncodings."""
        self._check_not_closed("addTransceiver()")
        if isinstance(trackOrKind, str):
            return self._media.add_transceiver(trackOrKind, init)
        media_track = as_media_track(trackOrKind)
        if media_track is None:
            raise TypeError(
                "addTransceiver() takes 'audio', 'video', a MediaStreamTrack or a frame track, "
                f"not {trackOrKind!r}"
            )
        return self._media.add_transceiver(media_track, init)

    # --- obsolete media members (MDN "Obsolete methods/events"), on top of the above ------------

    onaddstream = on_event[MediaStreamEvent]("addstream")
    onremovestream = on_event[MediaStreamEvent]("removestream")
    #: Streams given to addStream() and not removed (the legacy "local streams set").
    _legacy_local_streams: dict[str, MediaStream] | None = None
    #: The remote streams as the last applied description left them (addstream/removestream).
    _legacy_remote_streams: tuple[MediaStream, ...] = ()

    def addStream(self, stream: MediaStream) -> None:
        """Obsolete: send every track of ``stream`` with ``addTrack(track, stream)`` (as
        Chromium did); a track that already has a sender is left alone; adding a stream twice
        does nothing."""
        self._check_not_closed("addStream()")
        if not isinstance(stream, MediaStream):
            raise TypeError(f"addStream() takes a MediaStream, not {stream!r}")
        if self._legacy_local_streams is None:
            self._legacy_local_streams = {}
        if stream.id in self._legacy_local_streams:
            return
        self._legacy_local_streams[stream.id] = stream
        sent = {t.sender.track for t in self._media.transceivers()}
        for track in stream.getTracks():
            if track not in sent:
                self.addTrack(track, stream)

    def removeStream(self, stream: MediaStream) -> None:
        """Obsolete: ``removeTrack()`` for the sender of each track of a stream given to
        ``addStream()``; another stream is ignored."""
        self._check_not_closed("removeStream()")
        if not isinstance(stream, MediaStream):
            raise TypeError(f"removeStream() takes a MediaStream, not {stream!r}")
        if self._legacy_local_streams is None or (
            self._legacy_local_streams.pop(stream.id, None) is None
        ):
            return
        tracks = set(stream.getTracks())
        for transceiver in self._media.transceivers():
            if transceiver.sender.track in tracks and not transceiver.stopping:
                self.removeTrack(transceiver.sender)

    def getStreamById(self, streamId: str) -> MediaStream | None:
        """Obsolete (older MDN page): the local (``addStream``) or remote stream with this id,
        else None."""
        local = (self._legacy_local_streams or {}).get(streamId)
        if local is not None:
            return local
        return next((s for s in self._remote_stream_list() if s.id == streamId), None)

    def createDTMFSender(self, track: MediaStreamTrack) -> RTCDTMFSender:
        """Obsolete: the RTCDTMFSender of the sender of ``track`` (``sender.dtmf``).
        InvalidAccessError when no live sender of this connection sends ``track``, or it is not
        an audio track (Chromium says SyntaxError for both)."""
        self._check_not_closed("createDTMFSender()")
        if not isinstance(track, MediaStreamTrack):
            raise TypeError(f"createDTMFSender() takes a MediaStreamTrack, not {track!r}")
        for transceiver in self._media.transceivers():
            sender = transceiver.sender
            if sender.track is track and not transceiver.stopping:
                if sender.dtmf is None:
                    raise InvalidAccessError(
                        f"createDTMFSender(): track {track.id} is a {track.kind} track; "
                        "DTMF needs an audio track"
                    )
                return sender.dtmf
        raise InvalidAccessError(
            f"createDTMFSender(): track {track.id} is not sent by this connection "
            "(addTrack() or addStream() it first)"
        )

    def _remote_stream_list(self) -> list[MediaStream]:
        """Remote streams holding a track of a transceiver that is not stopped (what legacy
        getRemoteStreams() gave)."""
        live = {t.receiver.track for t in self._media.transceivers() if not t.stopping}
        return [s for s in self._media._remote_streams.values() if live.intersection(s.getTracks())]

    def _apply(self, ice: RTCIceTransport, decisions: Sequence[Any]) -> None:
        """As Negotiation's, then the obsolete ``addstream``/``removestream`` events: after the
        ``track`` events, for a remote stream that appeared / lost its last track."""
        super()._apply(ice, decisions)
        before = self._legacy_remote_streams
        after = tuple(self._remote_stream_list())
        self._legacy_remote_streams = after
        for stream in after:
            if stream not in before:
                self.dispatchEvent(MediaStreamEvent("addstream", stream))
        for stream in before:
            if stream not in after:
                self.dispatchEvent(MediaStreamEvent("removestream", stream))

    # --- data channels ---------------------------------------------------------------------------

    def createDataChannel(
        self,
        label: str,
        dataChannelDict: RTCDataChannelInit | None = None,
        **options: Unpack[RTCDataChannelInit],
    ) -> RTCDataChannel:
        """Create an RTCDataChannel (webrtc-pc §6.1); the RTCDataChannelInit members as a dict,
        as keywords, or both (keywords win)."""
        self._check_not_closed("createDataChannel()")
        channel = self._data.create(label, {**(dataChannelDict or {}), **options})
        if self._jsep.want_data():
            self._update_negotiation_needed()
        return channel

    # --- lifetime -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[RTCPeerConnection]:
        require_trio("async with RTCPeerConnection()")
        if self._entered:
            raise InvalidStateError("an RTCPeerConnection can be opened once; create a new one")
        if self._closed:
            raise InvalidStateError("the RTCPeerConnection is closed; create a new one")
        self._entered = True
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._supervise, name="trio_rtc.pc")
                self._queue_nursery = nursery
                try:
                    yield self
                finally:
                    self._close_now()
        finally:
            self._close_now()

    def _ice_transport_options(self) -> IceTransportOptions:
        options = self._ice_options or IceTransportOptions()
        # iceTransportPolicy "relay": only relay candidates are gathered (webrtc-pc §4.2.5).
        return attrs.evolve(
            options,
            relay_only=self._config.iceTransportPolicy == "relay",
            shared_udp=self._config.shared_udp or options.shared_udp,  # server mode
            ice_lite=self._config.ice_lite,  # RFC 8445 §2.5, docs/server-mode.md
        )

    async def _supervise(self, *, task_status: trio.TaskStatus[None]) -> None:
        """The supervising task: its nursery holds every driver of this connection."""
        try:
            async with trio.open_nursery() as nursery:
                self._supervisor_scope = nursery.cancel_scope
                if self._certificate is None:
                    self._certificate = await shared_certificate()
                # The DTLS task's inbox exists before the DTLS transport does, so the ICE
                # transport can queue a peer's early ClientHello on it.
                self._dtls_inbox = trio.open_memory_channel[Batch | None](DTLS_INBOX_DEPTH)
                ice = RTCIceTransport(
                    iceServers=self._config.iceServers,
                    controlling=True,
                    options=self._ice_transport_options(),
                    dtls_channel=self._dtls_inbox[0].clone(),
                    # No media consumer yet: RTP/RTCP that arrives is dropped and counted.
                    deliver_rtp=False,
                )
                ice.addEventListener("icecandidate", self._on_ice_candidate)
                ice.addEventListener("gatheringstatechange", self._on_gathering_state)
                ice.addEventListener("statechange", lambda _e: self._update_states())
                ice.addEventListener("icecandidateerror", self._on_ice_candidate_error)
                if self._tracer is not None:
                    ice.agent.trace = self._tracer.core("ice")
                # One bounded queue runs every async event handler of this connection (in this
                # nursery: the queue keeps none of its own).
                queue = HandlerQueue(name=f"pc {id(self):x}")
                await nursery.start(queue.serve, nursery, name="trio_rtc.events")
                self._handler_queue = ice._handler_queue = queue
                await nursery.start(self._supervised, "ICE", None, ice, name="trio_rtc.ice")
                self._ice = ice
                self._nursery = nursery
                if self._config.iceCandidatePoolSize > 0:
                    ice.gather()  # pre-gathering; announced once a local description is set
                task_status.started()
                # Trio's task status keeps the nursery start() made for us, and this frame
                # would keep the status for the connection's life (about 1 KiB).
                del task_status
                if self._negotiation_update_pending and not self._closed:
                    self._negotiation_update_pending = False
                    self._update_negotiation_needed()
                try:
                    await trio.sleep_forever()
                finally:
                    # The nursery takes no new tasks from here on: say so before it closes.
                    self._nursery = None
        finally:
            self._nursery = None
            self._close_now()

    async def close(self) -> None:
        """Close the connection (webrtc-pc §4.4.1.3): every task stops, every socket closes.

        An established SCTP association is first closed gracefully (RFC 9260 §9.2: what is
        queued is delivered, then SHUTDOWN), for at most :data:`GRACEFUL_CLOSE_SECONDS` or
        three round trips, whichever is less; then, or if the peer does not answer, it is
        aborted. Cancelling the wait closes at once."""
        require_trio("RTCPeerConnection.close()")
        try:
            if not self._closed:
                await self._close_sctp_gracefully()
        finally:
            self._close_now()
        await trio.lowlevel.checkpoint()

    async def _close_sctp_gracefully(self) -> None:
        sctp = self._data.sctp
        if sctp is None or not sctp.shutdown():
            return
        pair = self._ice.selected_pair if self._ice is not None else None
        rtt = getattr(pair, "current_round_trip_time", None)
        bound = GRACEFUL_CLOSE_SECONDS
        if isinstance(rtt, float) and rtt > 0:
            bound = min(bound, max(3 * rtt, 0.05))
        with trio.move_on_after(bound):
            await sctp.wait_until(lambda: sctp.closed)

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jsep.close()
        # Goodbyes leave in order before the sockets close: SCTP's ABORT, then close_notify.
        goodbye = self._data.close()
        self._media.close()
        if self._dtls is not None:
            self._dtls.close(last_records=goodbye)
        if self._ice is not None:
            self._ice.stop()
        # The spec sets these without firing events.
        self._ice_connection_state = "closed"
        self._connection_state = "closed"
        if self._supervisor_scope is not None:
            self._supervisor_scope.cancel()
        self._notify_waiters()
        if self._tracer is not None:
            self._trace_state("connection_state", "closed")
            self._tracer.close()

    # --- the transports a negotiation starts ------------------------------------------------------

    def _ensure_dtls(
        self, ice: RTCIceTransport, fingerprints: Sequence[Fingerprint], is_client: bool
    ) -> None:
        """Start the DTLS transport of the BUNDLE group (once; a renegotiation keeps it)."""
        if self._dtls is not None or self._nursery is None:
            return
        assert self._certificate is not None
        assert self._dtls_inbox is not None
        dtls = RTCDtlsTransport(
            ice,
            self._certificate,
            inbox=self._dtls_inbox,
            is_client=is_client,
            remote_fingerprints=[
                RTCDtlsFingerprint(f.algorithm.lower(), f.value) for f in fingerprints
            ],
        )
        dtls._handler_queue = self._handler_queue
        dtls.addEventListener("statechange", lambda _e: self._update_states())
        dtls.addEventListener("statechange", self._check_identity_binding)
        self._dtls = dtls
        self._dtls_is_client = is_client
        self._attach_tracer()
        # The handshake starts once ICE has a pair, so that the first flight is not sent into
        # the void (it would wait a whole retransmission timeout, RFC 6347 §4.2.4.1).
        run = partial(
            self._supervised, "DTLS", "dtls-failure", dtls, wait_for=ice, send_many=ice.send_many
        )
        self._nursery.start_soon(run, name="trio_rtc.dtls")
        self._update_states()

    def _check_identity_binding(self, _event: Event) -> None:
        """Once DTLS connects, a validated peer identity must bind the certificate the peer
        used; if it does not, the connection fails."""
        if self._dtls is None or self._dtls.state != "connected":
            return
        error = self._identity.check_handshake()
        if error is not None:
            self._component_failed("identity", error, "fingerprint-failure")

    def _ensure_sctp(self, remote_port: int, remote_max_message_size: int) -> None:
        """Start the SCTP association over the DTLS transport (once); a renegotiation may
        change the peer's ``a=max-message-size``."""
        if self._data.sctp is not None:
            self._data.update_remote(remote_max_message_size)
            return
        if self._dtls is None or self._nursery is None:
            return
        self._data.start(
            self._nursery,
            self._dtls,
            remote_port,
            remote_max_message_size,
            partial(self._supervised, "SCTP", "sctp-failure"),
        )
        self._attach_tracer()

    async def _supervised_rtp(self, rtp: RtpTransport) -> None:
        if self._tracer is not None:
            rtp.trace = self._tracer.core("rtp")
        await self._supervised("RTP", "dtls-failure", rtp)

    async def _supervised(
        self,
        name: str,
        detail: str | None,
        component: _Component,
        *,
        wait_for: RTCIceTransport | None = None,
        **run_options: Any,
    ) -> None:
        """Run one component's task, ``component.run(**run_options)``, once ``wait_for`` (an
        ICE transport) has a pair: an exception out of it, or one it caught and kept in its
        ``crashed`` (failing itself visibly first), fails the connection. The ICE, DTLS and
        SCTP tasks start here directly (``nursery.start`` adds ``task_status``): no wrapper
        coroutine stays alive beside each of them for the connection's life."""
        if wait_for is not None:
            ice = wait_for
            # ("failed" is not the end: an ICE restart can bring the transport back.)
            await ice.wait_until(lambda: ice.state in ("connected", "completed", "closed"))
            if ice.state == "closed":
                return
        try:
            # The options (a task status among them, which keeps the nursery start() made,
            # about 1 KiB) go to the driver, which lets go of its status once started; this
            # frame, alive as long as the connection, keeps none of them.
            running = component.run(**run_options)
            run_options.clear()
            await running
        except Exception as exc:
            logger.exception("%s component crashed", name)
            self._component_failed(name, exc, detail)
            return
        crashed = getattr(component, "crashed", None)
        if crashed is not None:
            self._component_failed(name, crashed, detail)

    def _component_failed(self, name: str, exc: BaseException, detail: str | None) -> None:
        """A component's task ended by an unexpected exception (a bug, already logged with its
        traceback): the connection fails — ``connectionState`` ``failed``, an ``error`` event
        (an RTCErrorEvent whose ``error.__cause__`` is the exception), every transport stopped.
        :attr:`failure` keeps the exception."""
        if self._closed or self._failure is not None:
            return
        exc = unwrap(exc)
        self._failure = exc
        error = RTCError(
            f"the {name} component of the peer connection crashed: {exc!r}",
            errorDetail=detail or "dtls-failure",
        )
        error.__cause__ = exc
        goodbye = self._data.close()
        if self._dtls is not None:
            self._dtls.close(last_records=goodbye)
        if self._ice is not None:
            self._ice.stop()
        self._ice_connection_state = "failed"
        self._connection_state = "failed"
        self.dispatchEvent(Event("iceconnectionstatechange"))
        self.dispatchEvent(Event("connectionstatechange"))
        self.dispatchEvent(RTCErrorEvent("error", error))

    def _update_states(self) -> None:
        if self._failure is not None:
            return  # failed by a crash: the states stay failed until close()
        super()._update_states()

    @property
    def failure(self) -> BaseException | None:
        """The exception that failed this connection (a crashed component), or None."""
        return self._failure

    # --- trio-native additions ------------------------------------------------------------------

    @overload
    async def wait_for(
        self, *, connectionState: RTCPeerConnectionState | Collection[RTCPeerConnectionState]
    ) -> RTCPeerConnectionState: ...
    @overload
    async def wait_for(
        self, *, iceConnectionState: RTCIceConnectionState | Collection[RTCIceConnectionState]
    ) -> RTCIceConnectionState: ...
    @overload
    async def wait_for(
        self, *, iceGatheringState: RTCIceGatheringState | Collection[RTCIceGatheringState]
    ) -> RTCIceGatheringState: ...
    @overload
    async def wait_for(
        self, *, signalingState: RTCSignalingState | Collection[RTCSignalingState]
    ) -> RTCSignalingState: ...
    async def wait_for(
        self,
        *,
        connectionState: str | Collection[str] | None = None,
        iceConnectionState: str | Collection[str] | None = None,
        iceGatheringState: str | Collection[str] | None = None,
        signalingState: str | Collection[str] | None = None,
    ) -> str:
        """Wait until one state attribute has a value, or one of several, and return it:
        ``await pc.wait_for(connectionState="connected")``,
        ``state = await pc.wait_for(connectionState=("connected", "failed"))``.

        One keyword per call. ValueError for a value the attribute never takes;
        InvalidStateError if the connection closes first (unless ``"closed"`` is wanted).
        See ``docs/waiting-and-errors.md``."""
        conditions: dict[str, object] = {
            "connectionState": connectionState,
            "iceConnectionState": iceConnectionState,
            "iceGatheringState": iceGatheringState,
            "signalingState": signalingState,
        }
        given = [name for name, value in conditions.items() if value is not None]
        valid = _STATE_VALUES[given[0]] if len(given) == 1 else _STATE_VALUES["connectionState"]
        state: str = await self._wait_for_value(conditions, valid, lambda: self._closed)
        return state

    async def wait_connection_state(self, *states: str) -> str:
        """The older spelling of ``wait_for(connectionState=states)``."""
        state: str = await self._wait_for_value(
            {"connectionState": states}, _STATE_VALUES["connectionState"], lambda: self._closed
        )
        return state

    async def wait_gathering_complete(self) -> None:
        """Wait until ``iceGatheringState`` is ``complete`` (for non-trickle signalling), or the
        connection closed."""
        await self.wait_until(lambda: self._gathering_state == "complete" or self._closed)

    # --- structured trace (docs/tracing.md) ------------------------------------------------------

    def trace(self, max_buffer: int = 1024) -> TraceSubscription:
        """This connection's trace events, live: ``async for event in pc.trace(): ...``
        (``trio_rtc.trace.TraceEvent``). Turns tracing on if it was off. A consumer that
        falls ``max_buffer`` events behind loses the newer ones (counted in the subscription's
        ``dropped``); the protocol never waits for it. The iteration ends when the connection
        closes."""
        if self._tracer is None:
            self._tracer = Tracer()
            self._attach_tracer()
            if self._closed:
                self._tracer.close()
        return self._tracer.subscribe(max_buffer)

    @property
    def tracer(self) -> Tracer | None:
        """The connection's ``trio_rtc.trace.Tracer`` (counts, pc id), None when off."""
        return self._tracer

    _traced_states: dict[str, str] | None = None

    def _attach_tracer(self) -> None:
        """Give every core that exists a tracer (idempotent; new ones get theirs as they
        start). Cores of a connection that is not traced keep ``trace = None``."""
        tracer = self._tracer
        if tracer is None:
            return
        if self._traced_states is None:
            self._traced_states = {}
            for event, name, attribute in (
                ("connectionstatechange", "connection_state", "connectionState"),
                ("iceconnectionstatechange", "ice_connection_state", "iceConnectionState"),
                ("icegatheringstatechange", "ice_gathering_state", "iceGatheringState"),
                ("signalingstatechange", "signaling_state", "signalingState"),
            ):
                self._traced_states[name] = getattr(self, attribute)
                self.addEventListener(
                    event,
                    lambda _e, name=name, attribute=attribute: self._trace_state(
                        name, getattr(self, attribute)
                    ),
                )
        if self._ice is not None and self._ice.agent.trace is None:
            self._ice.agent.trace = tracer.core("ice")
        if self._dtls is not None and self._dtls.core.trace is None:
            self._dtls.core.trace = tracer.core("dtls")
        sctp = self._data.sctp
        if sctp is not None and sctp.trace_channels is None:
            sctp.association.trace = tracer.core("sctp")
            sctp._dcep.trace = tracer.core("dcep")
            sctp.trace_channels = tracer.core("datachannel")
            for channel in self._data.channels:
                if channel._trace is None:
                    channel._trace = sctp.trace_channels
        rtp = self._media.rtp
        if rtp is not None and rtp.trace is None:
            rtp.trace = tracer.core("rtp")

    def _trace_state(self, name: str, state: str) -> None:
        states = self._traced_states
        if self._tracer is None or states is None or states.get(name) == state:
            return
        self._tracer.emit("pc", name, {"state": state, "previous": states.get(name)})
        states[name] = state

    @property
    def ice_transport(self) -> RTCIceTransport | None:
        """The one (BUNDLE) ICE transport, once the connection is open."""
        return self._ice

    @property
    def dtls_transport(self) -> RTCDtlsTransport | None:
        """The DTLS transport, once an answer fixed the DTLS roles."""
        return self._dtls

    @property
    def certificate(self) -> RTCCertificate | None:
        return self._certificate

    async def getStats(self, selector: MediaStreamTrack | None = None) -> RTCStatsReport:
        """An RTCStatsReport (a mapping of id to stats dict); see :mod:`trio_rtc.stats`.
        ``selector``: a track of one of this connection's senders or receivers, for that
        stream's stats only (InvalidAccessError for anything else)."""
        require_trio("RTCPeerConnection.getStats()")
        await trio.lowlevel.checkpoint()
        return collect_stats(
            ice=self._ice,
            ice_in_use=self._ice_applied,
            dtls=self._dtls,
            certificate=self._certificate,
            sctp=self._data.sctp,
            channels=self._data.channels,
            channel_numbers=self._data.numbers,
            media=self._media,
            selector=selector,
        )
