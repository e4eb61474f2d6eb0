"""Offer/answer: createOffer, createAnswer, setLocalDescription, setRemoteDescription, rollback,
addIceCandidate and restartIce, and the wiring of ICE, DTLS and SCTP they cause. The rules
themselves are in :mod:`trio_rtc.jsep`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import trio

from .. import jsep
from ..exceptions import (
    InvalidAccessError,
    InvalidModificationError,
    InvalidStateError,
    OperationError,
)
from ..ice.rtc import RTCIceCandidate, RTCIceParameters
from ..ice.transport import (
    RTCIceTransport,
)
from ..sdp import Fingerprint, SessionDescription, Setup, parse_sdp_untrusted
from ..sessiondescription import RTCSessionDescription, coerce_description
from .base import PeerConnectionBase, _Description

__all__ = ["Negotiation"]

#: Remote candidates kept for an ICE generation that has not started yet.
MAX_EARLY_CANDIDATES = 1000
#: Remote descriptions longer than this are parsed in a worker thread (a browser's is ~4 KiB).
PARSE_IN_THREAD_ABOVE = 32 * 1024


class Negotiation(PeerConnectionBase):
    """The JSEP methods of :class:`~trio_rtc.pc.connection.RTCPeerConnection`."""

    # The transports a negotiation starts are wired by the supervisor (pc/connection.py).

    def _ensure_dtls(
        self, ice: RTCIceTransport, fingerprints: Sequence[Fingerprint], is_client: bool
    ) -> None:
        raise NotImplementedError

    def _ensure_sctp(self, remote_port: int, remote_max_message_size: int) -> None:
        raise NotImplementedError

    # --- createOffer / createAnswer ----------------------------------------------------------------

    async def createOffer(self, options: Mapping[str, Any] | None = None) -> RTCSessionDescription:
        """An offer (RFC 8829 §5.2). ``options``: ``iceRestart`` (legacy ``offerToReceive*`` keys
        are accepted and ignored: there is no media yet)."""
        async with self._operation("createOffer()") as ice:
            return self._create_offer(ice, options or {})

    async def createAnswer(self, options: Mapping[str, Any] | None = None) -> RTCSessionDescription:
        async with self._operation("createAnswer()") as ice:
            return self._create_answer(ice)

    def _create_offer(
        self, ice: RTCIceTransport, options: Mapping[str, Any]
    ) -> RTCSessionDescription:
        if options.get("iceRestart") and not self._ice_restart_requested:
            self._ice_restart_requested = True
            self._restart_credentials = None
        if self._ice_restart_requested:
            if self._restart_credentials is None:
                self._restart_credentials = jsep.new_ice_credentials()
            ufrag, pwd = self._restart_credentials
        else:
            params = ice.getLocalParameters()
            ufrag, pwd = params.usernameFragment, params.password
        slots = jsep.plan_offer(self._slots, want_data=self._data.wanted)
        self._session_version += 1
        model = jsep.build_offer(
            slots,
            self._local_transport(ufrag, pwd),
            session_id=self._session_id,
            version=self._session_version,
        )
        self._last_offer = model.serialize()
        return RTCSessionDescription(type="offer", sdp=self._last_offer)

    def _create_answer(self, ice: RTCIceTransport) -> RTCSessionDescription:
        if self._signaling_state not in ("have-remote-offer", "have-local-pranswer"):
            raise InvalidStateError(
                f"createAnswer() needs a remote offer (signalingState 'have-remote-offer' or "
                f"'have-local-pranswer'), not {self._signaling_state!r}"
            )
        assert self._pending_remote is not None
        offer = self._pending_remote.model
        if self._answer_credentials is not None:
            ufrag, pwd = self._answer_credentials
        else:
            params = ice.getLocalParameters()
            ufrag, pwd = params.usernameFragment, params.password
        remote = jsep.read_remote(offer, "offer", local_offer=None)
        setup = jsep.answer_setup(
            remote.setup if remote is not None else None, current_is_client=self._dtls_is_client
        )
        self._session_version += 1
        model = jsep.build_answer(
            offer,
            jsep.plan_answer(offer),
            self._local_transport(ufrag, pwd),
            setup=setup,
            session_id=self._session_id,
            version=self._session_version,
        )
        self._last_answer = model.serialize()
        return RTCSessionDescription(type="answer", sdp=self._last_answer)

    def _local_transport(self, ufrag: str, pwd: str) -> jsep.LocalTransport:
        assert self._certificate is not None
        fingerprints = tuple(
            Fingerprint(f.algorithm, f.value) for f in self._certificate.getFingerprints()
        )
        return jsep.LocalTransport(
            ice_ufrag=ufrag,
            ice_pwd=pwd,
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
                self._rollback()
                return
            if init is None or not init.sdp:
                sdp_type = init.type if init is not None else None
                if sdp_type is None:
                    offering = self._signaling_state in (
                        "stable",
                        "have-local-offer",
                        "have-remote-pranswer",
                    )
                    sdp_type = "offer" if offering else "answer"
                if sdp_type == "offer":
                    text = self._create_offer(ice, {}).sdp
                else:
                    text = self._create_answer(ice).sdp
                init = RTCSessionDescription(type=sdp_type, sdp=text)
            self._apply_local(ice, init)

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
                self._rollback()
                return
            if len(init.sdp) > PARSE_IN_THREAD_ABOVE:
                # A large description can take tens of milliseconds to parse (docs/sdp.md):
                # not on the event loop. Then let a cancellation that came meanwhile win.
                model = await trio.to_thread.run_sync(parse_sdp_untrusted, init.sdp)
                await trio.lowlevel.checkpoint_if_cancelled()
                self._require_running("setRemoteDescription()")
            else:
                model = parse_sdp_untrusted(init.sdp)
            self._apply_remote(ice, init.type, model)

    def _apply_local(self, ice: RTCIceTransport, init: RTCSessionDescription) -> None:
        after = jsep.next_signaling_state(self._signaling_state, init.type, remote=False)
        expected = self._last_offer if init.type == "offer" else self._last_answer
        if init.sdp != expected:
            raise InvalidModificationError(
                f"setLocalDescription(): the {init.type} must be the one create"
                f"{'Offer' if init.type == 'offer' else 'Answer'}() returned, unchanged "
                "(SDP munging is not supported)"
            )
        model = parse_sdp_untrusted(init.sdp)
        data = next((m for m in model.media if jsep.is_data_section(m) and not m.is_rejected), None)
        credentials = model.ice_credentials(data) if data is not None else None
        if init.type == "offer":
            self._pending_local = _Description("offer", model)
            if (
                credentials is not None
                and credentials.ufrag != ice.getLocalParameters().usernameFragment
            ):
                # Our restart offer: new credentials, a new gathering (RFC 8445 §9).
                ice.restart(ufrag=credentials.ufrag, pwd=credentials.pwd)
            self._ice_restart_requested = False
            self._restart_credentials = None
        else:
            if credentials is not None and self._answer_credentials is not None:
                # The peer restarted ICE: our answer carries the new credentials.
                ice.restart(ufrag=credentials.ufrag, pwd=credentials.pwd)
            self._answer_credentials = None
            if init.type == "answer":
                assert self._pending_remote is not None
                self._current_local = _Description("answer", model)
                self._current_remote = self._pending_remote
                self._pending_local = self._pending_remote = None
                self._slots = jsep.slots_of(model, self._current_remote.model)
            else:
                self._pending_local = _Description("pranswer", model)
            remote = self._pending_remote or self._current_remote
            assert remote is not None
            transport = jsep.read_remote(remote.model, "offer", local_offer=None)
            if transport is not None and data is not None:
                self._apply_remote_ice(ice, transport, controlling=transport.ice_lite)
                is_client = jsep.dtls_is_client(
                    local_setup=model.setup_for(data), remote_setup=None
                )
                self._ensure_dtls(ice, transport.fingerprints, is_client)
                self._ensure_sctp(transport.sctp_port, transport.max_message_size)
        if data is not None and credentials is not None:
            self._local_mid = data.mid
            self._local_mline_index = model.media.index(data)
            self._announced_ufrag = credentials.ufrag
            ice.gather()
            if self._candidate_buffer and self._nursery is not None:
                # Candidates gathered earlier (a candidate pool, or a restart the peer started)
                # are announced from a task, as the spec queues them: the application gets to
                # send this description before the first icecandidate event.
                self._nursery.start_soon(self._announce_buffered)
        self._set_signaling_state(after)

    def _apply_remote(self, ice: RTCIceTransport, sdp_type: str, model: SessionDescription) -> None:
        state = self._signaling_state
        implicit_rollback = sdp_type == "offer" and state == "have-local-offer"
        after = jsep.next_signaling_state(
            "stable" if implicit_rollback else state, sdp_type, remote=True
        )
        local_offer = self._pending_local.model if self._pending_local is not None else None
        transport = jsep.read_remote(
            model, sdp_type, local_offer=None if sdp_type == "offer" else local_offer
        )
        current = self._current_remote
        if transport is not None and self._dtls is not None and current is not None:
            old = jsep.read_remote(current.model, current.type, local_offer=None)
            if old is not None and set(old.fingerprints) != set(transport.fingerprints):
                raise InvalidAccessError(
                    "the remote certificate fingerprint changed; a new DTLS association is not "
                    "supported on a running connection"
                )
        if implicit_rollback:
            # Perfect negotiation (webrtc-pc §4.4.1.5): a remote offer in have-local-offer rolls
            # our offer back first.
            self._rollback()
        if sdp_type == "offer":
            self._pending_remote = _Description("offer", model)
            if transport is not None and self._ice_applied:
                applied = ice.getRemoteParameters()
                if applied is not None and applied.usernameFragment != transport.ice_ufrag:
                    # The peer restarts ICE: our answer needs new credentials too.
                    self._answer_credentials = jsep.new_ice_credentials()
        else:
            assert self._pending_local is not None
            if sdp_type == "answer":
                self._current_remote = _Description("answer", model)
                self._current_local = self._pending_local
                self._pending_local = self._pending_remote = None
                self._slots = jsep.slots_of(self._current_local.model, model)
            else:
                self._pending_remote = _Description("pranswer", model)
            if transport is not None:
                self._apply_remote_ice(ice, transport, controlling=True)
                self._ensure_dtls(
                    ice,
                    transport.fingerprints,
                    jsep.dtls_is_client(local_setup=Setup.ACTPASS, remote_setup=transport.setup),
                )
                self._ensure_sctp(transport.sctp_port, transport.max_message_size)
        self._set_signaling_state(after)

    def _rollback(self) -> None:
        jsep.next_signaling_state(self._signaling_state, "rollback", remote=False)
        self._pending_local = None
        self._pending_remote = None
        self._answer_credentials = None
        self._set_signaling_state("stable")

    def _apply_remote_ice(
        self, ice: RTCIceTransport, transport: jsep.RemoteTransport, *, controlling: bool
    ) -> None:
        """Start (or restart) ICE checks with the peer's credentials and SDP candidates."""
        applied = ice.getRemoteParameters()
        if applied is None or applied.usernameFragment != transport.ice_ufrag:
            ice.start(
                RTCIceParameters(transport.ice_ufrag, transport.ice_pwd, transport.ice_lite),
                "controlling" if controlling or transport.ice_lite else "controlled",
            )
        self._ice_applied = True
        for text in transport.candidates:
            ice.addRemoteCandidate(
                RTCIceCandidate(
                    candidate="candidate:" + text,
                    sdpMid=transport.mid,
                    sdpMLineIndex=transport.mline_index,
                    usernameFragment=transport.ice_ufrag,
                )
            )
        early, self._early_remote_candidates = self._early_remote_candidates, []
        for generation, candidate in early:
            if generation == transport.ice_ufrag:
                ice.addRemoteCandidate(candidate)
        if transport.end_of_candidates:
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
        end-of-candidates."""
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
            remote = self._pending_remote or self._current_remote
            if remote is None:
                raise InvalidStateError(
                    "addIceCandidate() needs a remote description: call setRemoteDescription() first"
                )
            self._add_remote_candidate(ice, remote.model, text, mid, index, ufrag)

    def _add_remote_candidate(
        self,
        ice: RTCIceTransport,
        model: SessionDescription,
        text: str,
        mid: str | None,
        index: int | None,
        ufrag: str | None,
    ) -> None:
        media = None
        if mid is not None:
            media = model.media_by_mid(mid)
            if media is None:
                raise OperationError(f"addIceCandidate(): no m-section has mid {mid!r}")
        elif index is not None:
            if index >= len(model.media):
                raise OperationError(
                    f"addIceCandidate(): sdpMLineIndex {index} is out of range "
                    f"(the remote description has {len(model.media)} m-lines)"
                )
            media = model.media[index]
        if media is not None and ufrag is not None:
            credentials = model.ice_credentials(media)
            if credentials is not None and credentials.ufrag != ufrag:
                raise OperationError(
                    f"addIceCandidate(): usernameFragment {ufrag!r} matches no remote ICE "
                    f"generation (the remote description has {credentials.ufrag!r})"
                )
        data = next((m for m in model.media if jsep.is_data_section(m) and not m.is_rejected), None)
        data_credentials = model.ice_credentials(data) if data is not None else None
        generation = data_credentials.ufrag if data_credentials is not None else None
        if not text:
            # End of candidates, for one m-section or for all (RFC 8838 §4.4).
            for section in [media] if media is not None else model.media:
                section.end_of_candidates = True
            self._add_to_ice(ice, generation, None)
            return
        value = text.removeprefix("a=").removeprefix("candidate:")
        rtc = RTCIceCandidate(
            candidate="candidate:" + value, sdpMid=mid, sdpMLineIndex=index, usernameFragment=ufrag
        )
        if rtc.parsed is None:
            raise OperationError(f"addIceCandidate(): cannot parse candidate {text!r}")
        assert media is not None
        if (
            data is None
            or media.is_rejected
            or model.bundle_tag_media(media) is not model.bundle_tag_media(data)
        ):
            return  # a rejected or unbundled section has no transport here
        if value not in media.candidates:
            media.candidates.append(value)
        self._add_to_ice(ice, generation, rtc)

    def _add_to_ice(
        self, ice: RTCIceTransport, generation: str | None, candidate: RTCIceCandidate | None
    ) -> None:
        """Hand a remote candidate to ICE, or keep it until the ICE generation it belongs to
        (the remote ufrag) is started: before the first answer, or while a peer's ICE restart
        offer waits for our answer (RFC 8838 §11)."""
        applied = ice.getRemoteParameters()
        if self._ice_applied and applied is not None and applied.usernameFragment == generation:
            ice.addRemoteCandidate(candidate)
        elif len(self._early_remote_candidates) < MAX_EARLY_CANDIDATES:
            self._early_remote_candidates.append((generation, candidate))

    def restartIce(self) -> None:
        """Ask for an ICE restart in the next offer (webrtc-pc §4.4.1.6 restartIce)."""
        if self._closed:
            return
        if self._current_local is None and self._pending_local is None:
            return
        self._ice_restart_requested = True
        self._restart_credentials = None
        self._update_negotiation_needed()
