"""Offer/answer as the W3C surface: createOffer, createAnswer, setLocalDescription,
setRemoteDescription, rollback, addIceCandidate and restartIce. Each hands its SDP to the JSEP
core (:class:`trio_rtc.jsep.JsepSession`) and applies the decisions it returns to the ICE
transport and to the supervisor's hooks that start DTLS and SCTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import trio

from .. import jsep
from ..events import Event
from ..exceptions import OperationError
from ..ice.rtc import RTCIceCandidate, RTCIceParameters
from ..ice.transport import RTCIceTransport
from ..identity.assertion import has_identity_attribute
from ..sdp import Fingerprint, parse_sdp_untrusted
from ..sessiondescription import RTCSessionDescription, coerce_description
from .base import PeerConnectionBase

__all__ = ["Negotiation", "RTCAnswerOptions", "RTCOfferOptions"]


class RTCOfferOptions(TypedDict, total=False):
    """``createOffer()`` options (webrtc-pc §4.2.8, and the legacy members of §11.1)."""

    iceRestart: bool
    #: Legacy; accepted and ignored (add transceivers to receive media).
    offerToReceiveAudio: bool | int
    #: Legacy; accepted and ignored.
    offerToReceiveVideo: bool | int
    #: Accepted and ignored, as in browsers.
    voiceActivityDetection: bool


class RTCAnswerOptions(TypedDict, total=False):
    """``createAnswer()`` options (webrtc-pc §4.2.8): accepted and ignored, as in browsers."""

    voiceActivityDetection: bool


#: Remote descriptions longer than this are parsed in a worker thread (a browser's is ~4 KiB).
PARSE_IN_THREAD_ABOVE = 32 * 1024


class Negotiation(PeerConnectionBase):
    """The JSEP methods of :class:`~trio_rtc.pc.connection.RTCPeerConnection`: a driver of the
    JSEP core."""

    # --- createOffer / createAnswer ----------------------------------------------------------------

    async def createOffer(self, options: RTCOfferOptions | None = None) -> RTCSessionDescription:
        """An offer (RFC 8829 §5.2). ``options``: ``iceRestart`` (legacy ``offerToReceive*`` keys
        are accepted and ignored: there is no media yet)."""
        async with self._operation("createOffer()") as ice:
            identity = await self._identity_assertion()
            sdp = self._jsep.create_offer(
                self._local_transport(ice),
                ice_restart=bool((options or {}).get("iceRestart")),
                identity=identity,
            )
            return RTCSessionDescription(type="offer", sdp=sdp)

    async def createAnswer(self, options: RTCAnswerOptions | None = None) -> RTCSessionDescription:
        async with self._operation("createAnswer()") as ice:
            identity = await self._identity_assertion(answer=True)
            return RTCSessionDescription(
                type="answer",
                sdp=self._jsep.create_answer(self._local_transport(ice), identity=identity),
            )

    async def _identity_assertion(self, *, answer: bool = False) -> str | None:
        """The ``a=identity`` value for an offer or answer when an IdP is set
        (webrtc-identity §8.3-8.4); an IdP failure rejects the call with its RTCError."""
        if self._identity.provider is None:
            return None
        answerable = ("have-remote-offer", "have-local-pranswer")
        if answer and self._jsep.signaling_state not in answerable:
            return None  # the core rejects the call with its InvalidStateError
        assert self._certificate is not None
        fingerprints = [
            Fingerprint(f.algorithm, f.value) for f in self._certificate.getFingerprints()
        ]
        return await self._identity.request(fingerprints)

    def _local_transport(self, ice: RTCIceTransport) -> jsep.LocalTransport:
        """Our transport parameters as the core writes them: the ICE agent's credentials, the
        certificate's fingerprints, our SCTP max message size."""
        assert self._certificate is not None
        params = ice.getLocalParameters()
        fingerprints = tuple(
            Fingerprint(f.algorithm, f.value) for f in self._certificate.getFingerprints()
        )
        return jsep.LocalTransport(
            ice_ufrag=params.usernameFragment,
            ice_pwd=params.password,
            fingerprints=fingerprints,
            max_message_size=self._data.local_max_message_size,
        )

    # --- setLocalDescription / setRemoteDescription ----------------------------------------------

    async def setLocalDescription(
        self, description: RTCSessionDescription | Mapping[str, Any] | None = None
    ) -> None:
        """Apply a local description; with no argument (or an empty ``sdp``) create the offer or
        answer the state calls for first (the spec's implicit setLocalDescription)."""
        init = coerce_description(description)
        async with self._operation("setLocalDescription()") as ice:
            if init is not None and init.type == "rollback":
                self._apply(ice, self._jsep.rollback())
                return
            if init is None or not init.sdp:
                sdp_type = init.type if init is not None else self._jsep.implicit_type()
                identity = await self._identity_assertion(answer=sdp_type != "offer")
                local = self._local_transport(ice)
                if sdp_type == "offer":
                    text = self._jsep.create_offer(local, identity=identity)
                else:
                    text = self._jsep.create_answer(local, identity=identity)
                init = RTCSessionDescription(type=sdp_type, sdp=text)
            self._apply(ice, self._jsep.set_local_description(init.type, init.sdp))

    async def setRemoteDescription(
        self, description: RTCSessionDescription | Mapping[str, Any]
    ) -> None:
        """Apply the peer's offer, answer, pranswer or a rollback. Malformed SDP raises
        :class:`~trio_rtc.exceptions.SdpSyntaxError`; invalid content InvalidAccessError."""
        init = coerce_description(description)
        if init is None:
            raise TypeError("setRemoteDescription() needs a description")
        async with self._operation("setRemoteDescription()") as ice:
            if init.type == "rollback":
                self._apply(ice, self._jsep.rollback())
                return
            if len(init.sdp) > PARSE_IN_THREAD_ABOVE:
                # A large description can take tens of milliseconds to parse (docs/sdp.md):
                # not on the event loop. Then let a cancellation that came meanwhile win.
                model = await trio.to_thread.run_sync(parse_sdp_untrusted, init.sdp)
                await trio.lowlevel.checkpoint_if_cancelled()
                self._require_running("setRemoteDescription()")
            else:
                model = parse_sdp_untrusted(init.sdp)
            # webrtc-identity §8.5: with a target peer identity the assertion is validated
            # before the description applies (a failure rejects this call); without one it is
            # validated alongside, and only peerIdentity hears the outcome.
            blocking = self._identity.blocking
            if blocking:
                await self._identity.validate_remote(model)
                self._require_running("setRemoteDescription()")
            self._apply(ice, self._jsep.set_remote_description(init.type, model))
            if not blocking and self._nursery is not None and has_identity_attribute(model):
                self._nursery.start_soon(self._identity.validate_remote, model)

    # --- the decisions of the core -----------------------------------------------------------------

    def _apply(self, ice: RTCIceTransport, decisions: Sequence[jsep.Decision]) -> None:
        """Act on the core's decisions, in order; ``track`` events last (webrtc-pc §4.4.1.5:
        after signalingstatechange)."""
        tracks: list[Event] = []
        for decision in decisions:
            match decision:
                case jsep.RestartIce(ufrag=ufrag, pwd=pwd):
                    # New local credentials: a new gathering (RFC 8445 §9).
                    ice.restart(ufrag=ufrag, pwd=pwd)
                case jsep.StartIce():
                    self._start_ice(ice, decision)
                case jsep.AddRemoteCandidate():
                    ice.addRemoteCandidate(self._remote_candidate(decision.value, decision))
                case jsep.StartDtls(fingerprints=fingerprints, is_client=is_client):
                    self._ensure_dtls(ice, fingerprints, is_client)
                case jsep.StartSctp(remote_port=port, max_message_size=size):
                    self._ensure_sctp(port, size)
                case jsep.Gather():
                    ice.gather()
                    if self._candidate_buffer and self._nursery is not None:
                        # Candidates gathered earlier (a candidate pool, or a restart the peer
                        # started) are announced from a task, as the spec queues them: the
                        # application gets to send this description before the first
                        # icecandidate event.
                        (self._queue_nursery or self._nursery).start_soon(self._announce_buffered)
                case jsep.SignalingChange(state=state):
                    self._signaling_changed(state)
                case jsep.MediaChanged(transceivers=updates, removed=removed):
                    tracks.extend(
                        self._media.changed(
                            updates,
                            removed=removed,
                            nursery=self._nursery,
                            dtls=self._dtls,
                            ice=ice,
                            handler_queue=self._handler_queue,
                        )
                    )
        for event in tracks:
            self.dispatchEvent(event)

    @staticmethod
    def _remote_candidate(
        value: str | None, where: jsep.StartIce | jsep.AddRemoteCandidate
    ) -> RTCIceCandidate | None:
        if value is None:
            return None
        return RTCIceCandidate(
            candidate="candidate:" + value,
            sdpMid=where.mid,
            sdpMLineIndex=where.mline_index,
            usernameFragment=where.ufrag,
        )

    def _start_ice(self, ice: RTCIceTransport, decision: jsep.StartIce) -> None:
        """Start (or restart) ICE checks with the peer's credentials and candidates."""
        if decision.new_generation:
            ice.start(
                RTCIceParameters(decision.ufrag, decision.pwd, decision.ice_lite), decision.role
            )
        for value in decision.candidates:
            ice.addRemoteCandidate(self._remote_candidate(value, decision))
        if decision.end_of_candidates:
            ice.addRemoteCandidate(None)

    async def _announce_buffered(self) -> None:
        await trio.lowlevel.checkpoint()
        if not self._closed:
            self._flush_candidates()

    # --- addIceCandidate / restartIce ---------------------------------------------------------------

    async def addIceCandidate(
        self, candidate: RTCIceCandidate | Mapping[str, Any] | None = None
    ) -> None:
        """Add a remote candidate (webrtc-pc §4.4.1.6 addIceCandidate): an RTCIceCandidate, the
        dict a browser's ``candidate.toJSON()`` gives, or None / ``candidate: ""`` for
        end-of-candidates. A candidate for any m-section of the BUNDLE group goes to its one
        transport."""
        mid: str | None
        index: int | None
        ufrag: str | None
        if candidate is None:
            text, mid, index, ufrag = "", None, None, None
        elif isinstance(candidate, RTCIceCandidate):
            text, mid, index = candidate.candidate, candidate.sdpMid, candidate.sdpMLineIndex
            ufrag = candidate.usernameFragment
        elif isinstance(candidate, Mapping):
            text = candidate.get("candidate") or ""
            mid, index = candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
            ufrag = candidate.get("usernameFragment")
            if text:
                parsed = RTCIceCandidate(candidate)  # TypeError for bad keys, as the spec says
                text, ufrag = parsed.candidate, parsed.usernameFragment
        else:
            raise TypeError(
                f"addIceCandidate() takes an RTCIceCandidate or a dict, not {candidate!r}"
            )
        async with self._operation("addIceCandidate()") as ice:
            line = self._jsep.locate_remote_candidate(mid, index, ufrag)
            value = text.removeprefix("a=").removeprefix("candidate:") if text else None
            if value is not None:
                rtc = RTCIceCandidate(
                    candidate="candidate:" + value,
                    sdpMid=mid,
                    sdpMLineIndex=index,
                    usernameFragment=ufrag,
                )
                if rtc.parsed is None:
                    raise OperationError(f"addIceCandidate(): cannot parse candidate {text!r}")
            self._apply(ice, self._jsep.add_remote_candidate(value, line))

    def restartIce(self) -> None:
        """Ask for an ICE restart in the next offer (webrtc-pc §4.4.1.6 restartIce)."""
        if self._closed:
            return
        if self._jsep.restart_ice():
            self._update_negotiation_needed()
