"""The JSEP session: the state of one side of an offer/answer negotiation (RFC 8829, webrtc-pc
§4.4) as a plain object. SDP text and models go in; SDP text, errors and
:mod:`~trio_rtc.jsep.decisions` come out. No I/O, no clock, no trio.

The peer connection owns one :class:`JsepSession` and drives it: it passes its transport
parameters to :meth:`~JsepSession.create_offer`/:meth:`~JsepSession.create_answer`, hands every
description to :meth:`~JsepSession.set_local_description` or
:meth:`~JsepSession.set_remote_description` and applies the decisions these return to its ICE,
DTLS and SCTP transports.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import attrs

from ..exceptions import (
    InvalidAccessError,
    InvalidModificationError,
    InvalidStateError,
    OperationError,
)
from ..sdp import (
    MAX_SDP_LENGTH,
    Attribute,
    Fingerprint,
    SessionDescription,
    Setup,
    parse_sdp_untrusted,
)
from .codecs import NegotiatedMedia
from .decisions import (
    AddRemoteCandidate,
    Decision,
    Gather,
    MediaChanged,
    RestartIce,
    SignalingChange,
    StartDtls,
    StartIce,
    StartSctp,
)
from .offer_answer import (
    answer_setup,
    build_answer,
    build_offer,
    dtls_is_client,
    with_transport_candidates,
)
from .remote import RemoteTransport, check_remote_offer_mlines, read_remote, transport_sections
from .sections import LocalTransport, MediaSlot, is_data_section, plan_answer, plan_offer, slots_of
from .state import (
    implicit_description_type,
    new_ice_credentials,
    new_session_id,
    next_signaling_state,
)
from .transceivers import (
    DIRECTIONS,
    JsepTransceiver,
    Undo,
    apply_answer,
    check_remote_answer,
    decorate_answer,
    match_remote_offer,
    negotiation_needed,
    offer_media_slots,
    read_remote_tracks,
    remote_track_change,
    rollback_transceivers,
    stopped_to_remove,
    update_of,
)

__all__ = ["Description", "JsepSession", "LocalCandidateTarget"]

#: Remote candidates kept for an ICE generation that has not started yet.
MAX_EARLY_CANDIDATES = 1000
#: Trickled remote candidates listed in one m-section of remoteDescription; beyond it they
#: still reach ICE (whose own bound applies) but are no longer listed, and are counted.
MAX_RECORDED_CANDIDATES = 1000


#: Description._transport_ufrag not worked out yet ("" is never an ICE ufrag, RFC 8839 §5.4).
_UNKNOWN = ""


class Description:
    """An applied description: its type and its model (remote ones gain trickled candidates).

    A settled description may be *compact*: it keeps its SDP text (what ``model.serialize()``
    gave) instead of the parsed model, which is several times larger — a connection keeps its
    current descriptions for its whole life and rarely reads them. ``model`` parses the text
    again when read (and keeps the result until the next :meth:`compact`)."""

    __slots__ = ("_live_data", "_model", "_sdp", "_transport_ufrag", "type")

    def __init__(self, type: str, model: SessionDescription) -> None:
        self.type = type
        self._model: SessionDescription | None = model
        self._sdp: str | None = None
        # Facts the connection asks for often (negotiation-needed checks, every gathered
        # candidate), kept so that asking does not parse a compact description. Neither
        # changes once applied: only candidates are added to an applied description.
        self._live_data: bool | None = None
        self._transport_ufrag: str | None = _UNKNOWN

    @property
    def model(self) -> SessionDescription:
        model = self._model
        if model is None:
            assert self._sdp is not None
            model = self._model = parse_sdp_untrusted(self._sdp)
            self._sdp = None
        return model

    @model.setter
    def model(self, model: SessionDescription) -> None:
        self._model = model
        self._sdp = None
        self._live_data = None
        self._transport_ufrag = _UNKNOWN

    def has_live_data(self) -> bool:
        """A data m-section that is not rejected."""
        if self._live_data is None:
            self._live_data = any(
                is_data_section(m) and not m.is_rejected for m in self.model.media
            )
        return self._live_data

    def transport_ufrag(self) -> str | None:
        """Our ICE ufrag in a local description: that of its first live transport section."""
        if self._transport_ufrag == _UNKNOWN:
            model = self.model
            sections = _local_transport_sections(model)
            credentials = model.ice_credentials(model.media[sections[0]]) if sections else None
            self._transport_ufrag = credentials.ufrag if credentials is not None else None
        return self._transport_ufrag

    @property
    def is_compact(self) -> bool:
        return self._model is None

    def sdp(self) -> str:
        """The description's text (``model.serialize()``), without parsing a compact one."""
        if self._model is None:
            assert self._sdp is not None
            return self._sdp
        return self._model.serialize()

    def compact(self, *known: str | None) -> None:
        """Keep the text only. The text parses back to an equal model (serialising writes
        every modelled value and, through the layout, the peer's own lines); one that would
        not pass the parser's length limit any more (trickled candidates added) stays parsed.
        A text equal to one of ``known`` (the offer or answer createOffer/createAnswer gave,
        which the session keeps anyway) is kept as that same string, not a second copy."""
        model = self._model
        if model is None:
            return
        self.has_live_data()  # worked out while the model is at hand
        self.transport_ufrag()
        try:
            text = model.serialize()
        except ValueError:
            # A value that cannot be written (a trickled candidate ending in CRLF passes the
            # candidate parser): keep the model, as before compaction existed.
            return
        text = next((k for k in known if k == text), text)
        if len(text) <= MAX_SDP_LENGTH:
            self._sdp = text
            self._model = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Description):
            return NotImplemented
        return self.type == other.type and self.model == other.model

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"Description(type={self.type!r}, model={self.model!r})"


@attrs.frozen
class LocalCandidateTarget:
    """Where our gathered candidates go: the ICE generation (``ufrag``) of the applied local
    description and its BUNDLE tag, ``sdpMid``/``sdpMLineIndex`` of the icecandidate events."""

    ufrag: str
    mid: str | None
    mline_index: int
    mids: tuple[str | None, ...]


def _local_transport_sections(model: SessionDescription) -> list[int]:
    """Our live sections on the transport: an offer's every live one (all bundled), an answer's
    accepted ones."""
    return transport_sections(model, "answer")


class JsepSession:
    """One side of a JSEP negotiation. See the module doc and ``docs/jsep.md``.

    ``credentials`` makes ICE credentials for restarts (injectable for tests);
    ``session_id`` is the ``o=`` id (random by default); ``ice_lite``: we are an ICE-lite agent
    (also settable as the attribute before the first description)."""

    # Slots, not a __dict__: one per peer connection, and past 30 attributes a __dict__
    # stops sharing its keys and costs over 1.5 KiB.
    __slots__ = (
        "_agent_credentials",
        "_answer_credentials",
        "_dtls_fingerprints",
        "_dtls_is_client",
        "_early_candidates",
        "_local_candidates",
        "_local_complete",
        "_new_credentials",
        "_offer_undo",
        "_planned_mids",
        "_remote_generation",
        "_restart_credentials",
        "_used_mids",
        "candidate_target",
        "candidates_not_recorded",
        "cname",
        "credentials_to_replace",
        "current_local",
        "current_remote",
        "data_wanted",
        "early_candidates_dropped",
        "ice_lite",
        "last_answer",
        "last_offer",
        "negotiation_needed",
        "pending_local",
        "pending_remote",
        "session_id",
        "session_version",
        "signaling_state",
        "slots",
        "transceivers",
    )

    def __init__(
        self,
        *,
        session_id: int | None = None,
        credentials: Callable[[], tuple[str, str]] = new_ice_credentials,
        ice_lite: bool = False,
    ) -> None:
        #: We are an ICE-lite agent (RFC 8445 §2.5, the trio_rtc ``ice_lite`` configuration):
        #: our offers and answers carry a session-level ``a=ice-lite``, our ICE role is always
        #: controlled (RFC 8445 §6.1.1), and a remote description that is lite too is refused.
        self.ice_lite = ice_lite
        self.signaling_state = "stable"
        self.pending_local: Description | None = None
        self.current_local: Description | None = None
        self.pending_remote: Description | None = None
        self.current_remote: Description | None = None
        #: The text createOffer/createAnswer last returned: setLocalDescription must get it back
        #: unchanged (no SDP munging).
        self.last_offer: str | None = None
        self.last_answer: str | None = None
        self.session_id = new_session_id() if session_id is None else session_id
        self.session_version = 1
        #: The m-line plan of the last completed negotiation (never shrinks; a rejected m-line
        #: may be recycled with a new mid).
        self.slots: list[MediaSlot] = []
        # Every mid a completed negotiation used: a recycled m-line never gets an old one back.
        self._used_mids: set[str] = set()
        #: Data channels exist: offers need a data m-section.
        self.data_wanted = False
        #: webrtc-pc [[NegotiationNeeded]].
        self.negotiation_needed = False
        #: webrtc-pc [[LocalIceCredentialsToReplace]] (their ufrags): set by restartIce().
        self.credentials_to_replace: set[str] = set()
        #: Where our trickled candidates go, once a local description is applied.
        self.candidate_target: LocalCandidateTarget | None = None
        self._new_credentials = credentials
        self._restart_credentials: tuple[str, str] | None = None
        self._answer_credentials: tuple[str, str] | None = None
        # What the ICE agent uses, as the driver last told us (create_*) or we told it (RestartIce).
        self._agent_credentials: tuple[str, str] | None = None
        self._remote_generation: str | None = None
        self._early_candidates: list[tuple[str, str | None]] = []
        #: Trickled remote candidates not listed in remoteDescription (MAX_RECORDED_CANDIDATES).
        self.candidates_not_recorded = 0
        #: Candidates for a generation not started yet, past MAX_EARLY_CANDIDATES.
        self.early_candidates_dropped = 0
        self._dtls_fingerprints: frozenset[Fingerprint] | None = None
        self._dtls_is_client: bool | None = None
        self._local_candidates: dict[str, list[str]] = {}
        self._local_complete: set[str] = set()
        #: The audio/video transceivers, in creation order (webrtc-pc [[Transceivers]]).
        self.transceivers: list[JsepTransceiver] = []
        #: Our RTCP CNAME (RFC 7022: random, one per peer connection), in ``a=ssrc … cname``.
        self.cname = secrets.token_urlsafe(12)
        # Mids the last createOffer gave new transceivers; set when that offer is applied.
        self._planned_mids: dict[str, JsepTransceiver] = {}
        # What applying the pending offer (ours or theirs) changed on transceivers.
        self._offer_undo: list[Undo] = []

    def settle(self) -> None:
        """If the signaling state is stable, make every applied description compact (see
        :class:`Description`). The driver decides when: a peer connection calls it once
        connected and after each operation from then on, not during setup, where the
        descriptions are read again at once (the local one to add gathered candidates) and
        compacting would cost a serialisation and a parse each time."""
        if self.signaling_state != "stable":
            return
        for description in (
            self.current_local,
            self.current_remote,
            self.pending_local,
            self.pending_remote,
        ):
            if description is not None:
                description.compact(self.last_offer, self.last_answer)

    # --- views ------------------------------------------------------------------------------------

    @property
    def local_description(self) -> Description | None:
        return self.pending_local or self.current_local

    @property
    def remote_description(self) -> Description | None:
        return self.pending_remote or self.current_remote

    @property
    def closed(self) -> bool:
        return self.signaling_state == "closed"

    @property
    def ice_started(self) -> bool:
        """Whether a remote ICE generation was handed to the agent (a StartIce decision)."""
        return self._remote_generation is not None

    @property
    def ice_restart_requested(self) -> bool:
        return bool(self.credentials_to_replace)

    @property
    def data_negotiated(self) -> bool:
        """A data m-section lives in the current local description."""
        if self.current_local is None:
            return False
        return self.current_local.has_live_data()

    @property
    def can_trickle(self) -> bool | None:
        """canTrickleIceCandidates: None until a remote description is set; then whether it says
        ``a=ice-options:trickle`` (RFC 8840 §4.1.3)."""
        remote = self.remote_description
        if remote is None:
            return None
        model = remote.model
        if "trickle" in model.ice_options:
            return True
        return any("trickle" in model.ice_options_for(m) for m in model.media)

    def local_sdp(self, description: Description) -> str:
        """A local description's text with the candidates gathered for it so far, in every live
        bundled m-section, and ``a=end-of-candidates`` once gathering is complete."""
        ufrag = description.transport_ufrag()
        if ufrag is None or (
            ufrag not in self._local_candidates and ufrag not in self._local_complete
        ):
            return description.sdp()  # nothing to add: a compact one is not even parsed
        model = description.model
        sections = _local_transport_sections(model)
        model = with_transport_candidates(
            model,
            [model.media[i].mid for i in sections],
            self._local_candidates.get(ufrag, []),
            end_of_candidates=ufrag in self._local_complete,
        )
        return model.serialize()

    def close(self) -> None:
        self.signaling_state = "closed"

    # --- negotiation-needed (webrtc-pc §4.7.3) --------------------------------------------------

    def want_data(self) -> bool:
        """Data channels exist now. True if that may need a negotiation (none is negotiated)."""
        self.data_wanted = True
        return not self.data_negotiated

    def is_negotiation_needed(self) -> bool:
        """webrtc-pc §4.7.3 "check if negotiation is needed"."""
        if self.credentials_to_replace:
            return True
        local = self.current_local
        # Without transceivers nothing is compared: the models are not even parsed.
        if self.transceivers and negotiation_needed(
            self.transceivers,
            local.model if local is not None else None,
            local is not None and local.type == "offer",
            self.current_remote.model if self.current_remote is not None else None,
        ):
            return True
        return self.data_wanted and not self.data_negotiated

    def update_negotiation_needed(self) -> bool:
        """The core of webrtc-pc §4.7.3 "update the negotiation-needed flag" (the driver handles
        the operations chain and the closed check). True: fire ``negotiationneeded`` now."""
        if self.signaling_state != "stable":
            return False  # re-checked when the state returns to stable
        if not self.is_negotiation_needed():
            self.negotiation_needed = False
            return False
        if self.negotiation_needed:
            return False
        self.negotiation_needed = True
        return True

    # --- transceivers -------------------------------------------------------------------------------

    def add_transceiver(
        self,
        kind: str,
        direction: str = "sendrecv",
        stream_ids: Sequence[str] = (),
        track_id: str | None = None,
        ssrc: int | None = None,
        rtx_ssrc: int | None = None,
    ) -> JsepTransceiver:
        """addTransceiver()/addTrack() (webrtc-pc §5.1): a new transceiver without a mid, which
        makes negotiation needed. ``ssrc``/``rtx_ssrc``: the SSRCs for what
        we send (random when not given, RFC 3550 §8.1); ``track_id`` None means no track yet (no ``a=msid``)."""
        if kind not in ("audio", "video"):
            raise TypeError(f"transceiver kind must be 'audio' or 'video', not {kind!r}")
        if direction not in DIRECTIONS:
            raise TypeError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        transceiver = JsepTransceiver(
            kind,
            direction,
            stream_ids=tuple(stream_ids),
            track_id=track_id,
            ssrc=ssrc,
            rtx_ssrc=rtx_ssrc,
        )
        self.transceivers.append(transceiver)
        return transceiver

    def stop_transceiver(self, transceiver: JsepTransceiver) -> bool:
        """RTCRtpTransceiver.stop() (webrtc-pc §5.4): the next offer rejects its m-line. True if
        negotiation-needed should be updated."""
        if transceiver.stopping or transceiver.stopped:
            return False
        transceiver.stopping = True
        return True

    def restart_ice(self) -> bool:
        """restartIce() (webrtc-pc §4.4.1.6): the credentials of our applied descriptions are to
        be replaced in the next offer. True if negotiation-needed should be updated."""
        if self.closed:
            return False
        self.credentials_to_replace = {
            credentials.ufrag
            for description in (self.current_local, self.pending_local)
            if description is not None
            for media in description.model.media
            if (credentials := description.model.ice_credentials(media)) is not None
        }
        self._restart_credentials = None
        return bool(self.credentials_to_replace)

    # --- createOffer / createAnswer ----------------------------------------------------------------

    def create_offer(
        self, local: LocalTransport, *, ice_restart: bool = False, identity: str | None = None
    ) -> str:
        """An offer (RFC 8829 §5.2) with the negotiated m-lines and whatever is wanted now.
        ``local`` carries the ICE agent's current credentials; new ones replace them if an ICE
        restart is requested (``ice_restart``, or restartIce()). ``identity``: the value of a
        session-level ``a=identity`` (RFC 8827 §7.4.1), made by the driver's IdP."""
        self._agent_credentials = (local.ice_ufrag, local.ice_pwd)
        if ice_restart or self.credentials_to_replace:
            if self._restart_credentials is None:
                self._restart_credentials = self._new_credentials()
            ufrag, pwd = self._restart_credentials
            local = attrs.evolve(local, ice_ufrag=ufrag, ice_pwd=pwd)
        self.session_version += 1
        slots = [attrs.evolve(slot) for slot in self.slots]
        local_description = self.local_description
        self._planned_mids = offer_media_slots(
            slots,
            self.transceivers,
            local_description.model if local_description is not None else None,
            self.cname,
            taken=self._used_mids,
        )
        model = build_offer(
            plan_offer(slots, want_data=self.data_wanted, taken=self._used_mids),
            local,
            session_id=self.session_id,
            version=self.session_version,
        )
        model.ice_lite = self.ice_lite  # RFC 8839 §5.3: a session-level a=ice-lite
        if identity is not None:
            model.attributes.append(Attribute("identity", identity))
        self.last_offer = model.serialize()
        return self.last_offer

    def create_answer(self, local: LocalTransport, *, identity: str | None = None) -> str:
        """An answer (RFC 8829 §5.3) to the pending remote offer; ``identity`` as for
        :meth:`create_offer`."""
        if self.signaling_state not in ("have-remote-offer", "have-local-pranswer"):
            raise InvalidStateError(
                "createAnswer() needs a remote offer (signalingState 'have-remote-offer' or "
                f"'have-local-pranswer'), not {self.signaling_state!r}"
            )
        assert self.pending_remote is not None
        offer = self.pending_remote.model
        self._agent_credentials = (local.ice_ufrag, local.ice_pwd)
        if self._answer_credentials is not None:
            ufrag, pwd = self._answer_credentials
            local = attrs.evolve(local, ice_ufrag=ufrag, ice_pwd=pwd)
        remote = read_remote(offer, "offer", local_offer=None)
        setup = answer_setup(
            remote.setup if remote is not None else None, current_is_client=self._dtls_is_client
        )
        self.session_version += 1
        slots = plan_answer(offer)
        decorate_answer(slots, self.transceivers, offer, self.cname)
        model = build_answer(
            offer,
            slots,
            local,
            setup=setup,
            session_id=self.session_id,
            version=self.session_version,
        )
        model.ice_lite = self.ice_lite  # RFC 8839 §5.3: a session-level a=ice-lite
        if identity is not None:
            model.attributes.append(Attribute("identity", identity))
        self.last_answer = model.serialize()
        return self.last_answer

    def implicit_type(self) -> str:
        """The type an argument-less setLocalDescription() creates."""
        return implicit_description_type(self.signaling_state)

    # --- setLocalDescription / setRemoteDescription / rollback ---------------------------------

    def set_local_description(self, sdp_type: str, sdp: str) -> list[Decision]:
        """Apply our offer, answer or pranswer (the text create_* returned) or a rollback."""
        if sdp_type == "rollback":
            return self.rollback()
        after = next_signaling_state(self.signaling_state, sdp_type, remote=False)
        expected = self.last_offer if sdp_type == "offer" else self.last_answer
        if sdp != expected:
            raise InvalidModificationError(
                f"setLocalDescription(): the {sdp_type} must be the one create"
                f"{'Offer' if sdp_type == 'offer' else 'Answer'}() returned, unchanged "
                "(SDP munging is not supported)"
            )
        model = parse_sdp_untrusted(sdp)
        decisions: list[Decision] = []
        sections = _local_transport_sections(model)
        credentials = model.ice_credentials(model.media[sections[0]]) if sections else None
        if credentials is not None:
            agent = self._agent_credentials
            if agent is not None and credentials.ufrag != agent[0]:
                # A restart, ours or answering the peer's: new credentials, a new gathering.
                decisions.append(RestartIce(credentials.ufrag, credentials.pwd))
                self._agent_credentials = (credentials.ufrag, credentials.pwd)
            if credentials.ufrag not in self.credentials_to_replace:
                self.credentials_to_replace.clear()
                self._restart_credentials = None
        if sdp_type == "offer":
            self.pending_local = Description("offer", model)
            self._assign_offered_mids(model)
        else:
            self._answer_credentials = None
            assert self.pending_remote is not None
            offer = self.pending_remote.model
            apply_answer(
                self.transceivers,
                model,
                offer,
                local_is_answer=True,
                negotiated={
                    i: NegotiatedMedia.from_media(m, model)
                    for i, m in enumerate(model.media)
                    if m.is_rtp and not m.is_rejected
                },
            )
            if sdp_type == "answer":
                self._offer_undo = []
                self.current_local = Description("answer", model)
                self.current_remote = self.pending_remote
                self.pending_local = self.pending_remote = None
                self._set_slots(slots_of(model, self.current_remote.model))
            else:
                self.pending_local = Description("pranswer", model)
            remote = self.remote_description
            assert remote is not None
            transport = read_remote(remote.model, "offer", local_offer=None)
            if transport is not None and sections:
                tag = model.media[sections[0]]
                is_client = dtls_is_client(local_setup=model.setup_for(tag), remote_setup=None)
                # The answerer is controlled unless the offerer is lite (RFC 8445 §6.1.1).
                decisions += self._connect(
                    transport, model, controlling=transport.ice_lite, is_client=is_client
                )
            changes = self._media_changed(model, removed=self._unreceptive(model))
            decisions += self._remove_stopped(changes) if sdp_type == "answer" else changes
        if credentials is not None:
            tag_index = sections[0]
            self.candidate_target = LocalCandidateTarget(
                ufrag=credentials.ufrag,
                mid=model.media[tag_index].mid,
                mline_index=tag_index,
                mids=tuple(model.media[i].mid for i in sections),
            )
            decisions.append(Gather(credentials.ufrag, model.media[tag_index].mid, tag_index))
        return decisions + self._set_state(after)

    def set_remote_description(self, sdp_type: str, model: SessionDescription) -> list[Decision]:
        """Apply the peer's offer, answer or pranswer (a parsed model), or a rollback. A remote
        offer in ``have-local-offer`` rolls our offer back first (perfect negotiation,
        webrtc-pc §4.4.1.5)."""
        if sdp_type == "rollback":
            return self.rollback()
        state = self.signaling_state
        implicit_rollback = sdp_type == "offer" and state == "have-local-offer"
        after = next_signaling_state(
            "stable" if implicit_rollback else state, sdp_type, remote=True
        )
        local_offer = self.pending_local.model if self.pending_local is not None else None
        if sdp_type == "offer":
            check_remote_offer_mlines(model, self.slots)
        transport = read_remote(
            model, sdp_type, local_offer=None if sdp_type == "offer" else local_offer
        )
        if self.ice_lite and transport is not None and transport.ice_lite:
            raise InvalidAccessError(
                f"the remote {sdp_type} says a=ice-lite and so are we (ice_lite): two ICE-lite "
                "agents never run a connectivity check (RFC 8445 §2.5); one side must be a "
                "full agent"
            )
        if (
            transport is not None
            and self._dtls_fingerprints is not None
            and frozenset(transport.fingerprints) != self._dtls_fingerprints
        ):
            raise InvalidAccessError(
                "the remote certificate fingerprint changed; a new DTLS association is not "
                "supported on a running connection"
            )
        negotiated = (
            check_remote_answer(local_offer, model)
            if sdp_type != "offer" and local_offer is not None
            else {}
        )
        decisions: list[Decision] = []
        if implicit_rollback:
            decisions += self.rollback()
        if sdp_type == "offer":
            self.pending_remote = Description("offer", model)
            self._offer_undo = match_remote_offer(self.transceivers, model)
            if (
                transport is not None
                and self._remote_generation is not None
                and transport.ice_ufrag != self._remote_generation
            ):
                # The peer restarts ICE: our answer needs new credentials too (RFC 8445 §9).
                self._answer_credentials = self._new_credentials()
        else:
            assert self.pending_local is not None
            local = self.pending_local.model
            apply_answer(
                self.transceivers, local, model, local_is_answer=False, negotiated=negotiated
            )
            if sdp_type == "answer":
                self._offer_undo = []
                self.current_remote = Description("answer", model)
                self.current_local = self.pending_local
                self.pending_local = self.pending_remote = None
                self._set_slots(slots_of(local, model))
            else:
                self.pending_remote = Description("pranswer", model)
            if transport is not None:
                # We offered actpass: the answerer's a=setup decides (RFC 8842 §5.2).
                is_client = dtls_is_client(local_setup=Setup.ACTPASS, remote_setup=transport.setup)
                decisions += self._connect(transport, local, controlling=True, is_client=is_client)
        changes = self._remote_tracks(model)
        decisions += self._remove_stopped(changes) if sdp_type == "answer" else changes
        return decisions + self._set_state(after)

    def rollback(self) -> list[Decision]:
        """Discard the pending descriptions (webrtc-pc §4.4.1.5 rollback)."""
        next_signaling_state(self.signaling_state, "rollback", remote=False)
        self.pending_local = None
        self.pending_remote = None
        self._answer_credentials = None
        rollback_transceivers(self.transceivers, self._offer_undo)
        self._offer_undo = []
        return self._set_state("stable")

    # --- transceivers and descriptions -----------------------------------------------------------

    def _assign_offered_mids(self, model: SessionDescription) -> None:
        """Our offer is applied: its new m-sections' mids go to the transceivers createOffer
        planned them for (webrtc-pc §4.4.1.5); a rollback takes them back."""
        self._offer_undo = []
        for index, media in enumerate(model.media):
            transceiver = self._planned_mids.get(media.mid or "")
            if transceiver is not None and transceiver.mid is None:
                self._offer_undo.append(Undo(transceiver, None, transceiver.mline_index))
                transceiver.mid, transceiver.mline_index = media.mid, index

    def _set_slots(self, slots: list[MediaSlot]) -> None:
        self.slots = slots
        self._used_mids.update(slot.mid for slot in slots if slot.mid is not None)

    def _remove_stopped(self, changes: list[Decision]) -> list[Decision]:
        """An answer was applied: stopped transceivers whose m-section is rejected leave
        :attr:`transceivers` (webrtc-pc §4.4.1.5); ``changes`` (the MediaChanged of this
        description, if any) tells the driver which."""
        assert self.current_local is not None and self.current_remote is not None
        gone = stopped_to_remove(
            self.transceivers, self.current_local.model, self.current_remote.model
        )
        if not gone:
            return changes
        self.transceivers[:] = [t for t in self.transceivers if all(t is not g for g in gone)]
        for index, decision in enumerate(changes):
            if isinstance(decision, MediaChanged):
                changes[index] = attrs.evolve(decision, removed=tuple(gone))
                return changes
        return [*changes, MediaChanged((), removed=tuple(gone))]

    def _associated(self, model: SessionDescription) -> list[JsepTransceiver]:
        """The transceivers with an m-section in ``model``, in m-line order."""
        found = []
        for media in model.media:
            transceiver = next((t for t in self.transceivers if t.mid == media.mid), None)
            if media.mid is not None and transceiver is not None:
                found.append(transceiver)
        return found

    def _remote_tracks(self, model: SessionDescription) -> list[Decision]:
        """A remote description is applied: record what the peer sends and which transceivers
        start or stop receiving (webrtc-pc §4.4.1.5 "process remote tracks")."""
        updates = []
        for transceiver in self._associated(model):
            media = model.media_by_mid(transceiver.mid or "")
            assert media is not None
            read_remote_tracks(transceiver, media)
            added, removed = remote_track_change(transceiver, model, media)
            updates.append(update_of(transceiver, track_added=added, track_removed=removed))
        return [MediaChanged(tuple(updates))] if updates else []

    def _unreceptive(self, model: SessionDescription) -> set[str]:
        """Mids of our answer that do not receive although a track was announced: webrtc-pc
        §4.4.1.5 processes the removal of those remote tracks."""
        removed: set[str] = set()
        for transceiver in self._associated(model):
            if transceiver.fired_direction in ("sendrecv", "recvonly") and not (
                transceiver.receiving
            ):
                transceiver.fired_direction = transceiver.current_direction
                removed.add(transceiver.mid or "")
        return removed

    def _media_changed(self, model: SessionDescription, *, removed: set[str]) -> list[Decision]:
        updates = tuple(
            update_of(t, track_removed=t.mid in removed) for t in self._associated(model)
        )
        return [MediaChanged(updates)] if updates else []

    def _set_state(self, state: str) -> list[Decision]:
        if state == self.signaling_state:
            return []
        if state == "stable":
            # webrtc-pc §4.4.1.5: back to stable clears [[NegotiationNeeded]]; the driver then
            # updates it (SignalingChange("stable")).
            self.negotiation_needed = False
        self.signaling_state = state
        return [SignalingChange(state)]

    def _connect(
        self,
        transport: RemoteTransport,
        local: SessionDescription,
        *,
        controlling: bool,
        is_client: bool,
    ) -> list[Decision]:
        """The decisions that bring the negotiated transport up (or keep it up)."""
        new_generation = transport.ice_ufrag != self._remote_generation
        self._remote_generation = transport.ice_ufrag
        early = [value for ufrag, value in self._early_candidates if ufrag == transport.ice_ufrag]
        self._early_candidates = []
        candidates = list(transport.candidates)
        candidates += [v for v in early if v is not None and v not in candidates]
        # RFC 8445 §6.1.1: the offerer controls, unless one side is lite (the full one controls).
        if self.ice_lite:
            role = "controlled"
        else:
            role = "controlling" if controlling or transport.ice_lite else "controlled"
        decisions: list[Decision] = [
            StartIce(
                ufrag=transport.ice_ufrag,
                pwd=transport.ice_pwd,
                ice_lite=transport.ice_lite,
                role=role,
                new_generation=new_generation,
                mid=transport.mid,
                mline_index=transport.mline_index,
                candidates=tuple(candidates),
                end_of_candidates=transport.end_of_candidates or None in early,
            )
        ]
        if self._dtls_fingerprints is None:
            self._dtls_fingerprints = frozenset(transport.fingerprints)
            self._dtls_is_client = is_client
        decisions.append(StartDtls(transport.fingerprints, self._dtls_is_client is True))
        data = transport.data
        if data is not None and data.mline_index < len(local.media):
            ours = local.media[data.mline_index]
            if is_data_section(ours) and not ours.is_rejected:
                decisions.append(StartSctp(data.sctp_port, data.max_message_size))
        return decisions

    # --- candidates ----------------------------------------------------------------------------

    def locate_remote_candidate(
        self, mid: str | None, mline_index: int | None, ufrag: str | None
    ) -> int | None:
        """The m-line a remote candidate names (webrtc-pc §4.4.1.6 addIceCandidate checks):
        InvalidStateError without a remote description, OperationError for an unknown mid, an
        index out of range or a ufrag of no remote generation. None: no m-line named (an
        end-of-candidates for all)."""
        remote = self.remote_description
        if remote is None:
            raise InvalidStateError(
                "addIceCandidate() needs a remote description: call setRemoteDescription() first"
            )
        model = remote.model
        index: int | None = None
        if mid is not None:
            index = model.mline_index(mid)
            if index is None:
                raise OperationError(f"addIceCandidate(): no m-section has mid {mid!r}")
        elif mline_index is not None:
            if mline_index >= len(model.media):
                raise OperationError(
                    f"addIceCandidate(): sdpMLineIndex {mline_index} is out of range "
                    f"(the remote description has {len(model.media)} m-lines)"
                )
            index = mline_index
        if index is not None and ufrag is not None:
            credentials = model.ice_credentials(model.media[index])
            if credentials is not None and credentials.ufrag != ufrag:
                raise OperationError(
                    f"addIceCandidate(): usernameFragment {ufrag!r} matches no remote ICE "
                    f"generation (the remote description has {credentials.ufrag!r})"
                )
        return index

    def add_remote_candidate(self, value: str | None, index: int | None) -> list[Decision]:
        """A trickled remote candidate (``candidate:`` value; None or "" for end-of-candidates)
        for m-line ``index`` from :meth:`locate_remote_candidate`. It is recorded in the remote
        description and given to ICE if it belongs to the bundled transport; for an ICE
        generation not started yet it is kept until that generation starts (RFC 8838 §11)."""
        remote = self.remote_description
        assert remote is not None
        model = remote.model
        sections = transport_sections(model, "offer" if remote.type == "offer" else "answer")
        generation: str | None = None
        tag_mid: str | None = None
        tag_index: int | None = None
        if sections:
            tag = model.bundle_tag_media(model.media[sections[0]])
            credentials = model.ice_credentials(tag)
            generation = credentials.ufrag if credentials is not None else None
            tag_mid, tag_index = tag.mid, model.media.index(tag)
        if not value:
            # End of candidates, for one m-section or for all (RFC 8838 §4.4).
            for media in [model.media[index]] if index is not None else model.media:
                media.end_of_candidates = True
            return self._to_ice(generation, None, tag_mid, tag_index)
        assert index is not None
        media = model.media[index]
        if index not in sections or generation is None:
            return []  # a rejected or unbundled section has no transport here
        value = value.removeprefix("a=").removeprefix("candidate:")
        if len(media.candidates) >= MAX_RECORDED_CANDIDATES:
            self.candidates_not_recorded += 1
        elif value not in media.candidates:
            media.candidates.append(value)
        return self._to_ice(generation, value, tag_mid, tag_index)

    def _to_ice(
        self, generation: str | None, value: str | None, mid: str | None, index: int | None
    ) -> list[Decision]:
        if generation is None:
            return []
        if generation == self._remote_generation:
            return [AddRemoteCandidate(value, mid, index, generation)]
        if len(self._early_candidates) < MAX_EARLY_CANDIDATES:
            self._early_candidates.append((generation, value))
        else:
            self.early_candidates_dropped += 1
        return []

    def add_local_candidate(self, ufrag: str, value: str) -> None:
        """A candidate gathered for ICE generation ``ufrag`` (listed in localDescription)."""
        if ufrag not in self._local_candidates:
            self._forget_local_generations(ufrag)
        values = self._local_candidates.setdefault(ufrag, [])
        value = value.removeprefix("a=").removeprefix("candidate:")
        if value not in values:
            values.append(value)

    def local_candidates_complete(self, ufrag: str) -> None:
        """Gathering for ``ufrag`` is complete: localDescription says a=end-of-candidates."""
        if ufrag not in self._local_complete:
            self._forget_local_generations(ufrag)
        self._local_complete.add(ufrag)

    def _forget_local_generations(self, ufrag: str) -> None:
        """A new ICE generation ``ufrag`` gathers: forget the candidates of generations no
        local description lists any more (each ICE restart would otherwise leave its list
        behind). Kept: the current and pending local descriptions' generations and the one
        the agent gathers for."""
        live = {ufrag}
        for description in (self.current_local, self.pending_local):
            if description is not None:
                described = description.transport_ufrag()
                if described is not None:
                    live.add(described)
        if self._agent_credentials is not None:
            live.add(self._agent_credentials[0])
        for old in [u for u in self._local_candidates if u not in live]:
            del self._local_candidates[old]
        self._local_complete &= live
