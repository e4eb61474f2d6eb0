"""JSEP (RFC 8829) offer/answer rules over the SDP model: pure functions, no I/O, no clock.

What the peer connection needs from JSEP, and nothing else:

* the signalingState machine (:func:`next_signaling_state`, webrtc-pc §4.3.1);
* building offers (:func:`build_offer`) and answers (:func:`build_answer`) from the m-line plan
  (:class:`MediaSlot`) and the local transport parameters;
* checking a remote description and extracting what the ICE, DTLS and SCTP layers need
  (:func:`read_remote`), raising the spec's errors for invalid ones;
* DTLS roles from ``a=setup`` (RFC 8842 §5) and local candidates written into a description.

There is one transport for everything (BUNDLE, RFC 9143) and one data m-section. Audio and video
m-sections that a peer offers are answered as rejected (port 0) until the media layer exists.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Sequence

import attrs

from .exceptions import InvalidAccessError, InvalidStateError
from .ice.agent import random_password, random_ufrag
from .sdp import (
    Codec,
    Connection,
    Direction,
    Fingerprint,
    Group,
    MediaDescription,
    Origin,
    SessionDescription,
    Setup,
)

__all__ = [
    "DATA_FORMAT",
    "DEFAULT_REMOTE_MAX_MESSAGE_SIZE",
    "LocalTransport",
    "MediaSlot",
    "RemoteTransport",
    "answer_setup",
    "build_answer",
    "build_offer",
    "dtls_is_client",
    "is_data_section",
    "new_ice_credentials",
    "new_session_id",
    "next_signaling_state",
    "plan_answer",
    "plan_offer",
    "read_remote",
    "slots_of",
    "with_candidates",
]

DATA_FORMAT = "webrtc-datachannel"
DATA_PROTOCOLS = ("UDP/DTLS/SCTP", "TCP/DTLS/SCTP")
#: RFC 8841 §6: without ``a=max-message-size`` a peer accepts 64 KiB.
DEFAULT_REMOTE_MAX_MESSAGE_SIZE = 65536
DEFAULT_SCTP_PORT = 5000

# webrtc-pc §4.3.1: (description type, local or remote) -> states it may be applied in, and the
# state that follows.
_TRANSITIONS: dict[tuple[str, bool], tuple[tuple[str, ...], str]] = {
    ("offer", False): (("stable", "have-local-offer"), "have-local-offer"),
    ("answer", False): (("have-remote-offer", "have-local-pranswer"), "stable"),
    ("pranswer", False): (("have-remote-offer", "have-local-pranswer"), "have-local-pranswer"),
    ("offer", True): (("stable", "have-remote-offer"), "have-remote-offer"),
    ("answer", True): (("have-local-offer", "have-remote-pranswer"), "stable"),
    ("pranswer", True): (("have-local-offer", "have-remote-pranswer"), "have-remote-pranswer"),
    ("rollback", False): (("have-local-offer", "have-remote-offer"), "stable"),
    ("rollback", True): (("have-local-offer", "have-remote-offer"), "stable"),
}


def next_signaling_state(state: str, sdp_type: str, *, remote: bool) -> str:
    """The signalingState after applying a ``sdp_type`` description, or InvalidStateError."""
    allowed, after = _TRANSITIONS[(sdp_type, remote)]
    if state not in allowed:
        side = "remote" if remote else "local"
        raise InvalidStateError(
            f"cannot set a {side} {sdp_type} in signalingState {state!r}; "
            f"it is allowed in {' or '.join(repr(s) for s in allowed)}"
        )
    return after


def new_session_id() -> int:
    """A random ``o=`` session id below 2**62 (RFC 8829 §5.2.1)."""
    return secrets.randbits(62)


def new_ice_credentials() -> tuple[str, str]:
    """A fresh ``ice-ufrag``/``ice-pwd`` pair (RFC 8839 §5.4 lengths), for an ICE restart."""
    return random_ufrag(), random_password()


@attrs.define
class MediaSlot:
    """One m-line of the negotiation, in order. Slots are never removed: a rejected one stays as
    port 0 in later offers and answers (RFC 8829 §5.2.2)."""

    mid: str | None
    kind: str
    protocol: str
    formats: list[str]
    data: bool = False
    rejected: bool = False
    #: For a rejected RTP slot: the codec of its first format, so that the port-0 section still
    #: maps its payload type.
    codec: Codec | None = None


@attrs.frozen
class LocalTransport:
    """Our side of the single bundled transport, written into every offer and answer."""

    ice_ufrag: str
    ice_pwd: str
    fingerprints: tuple[Fingerprint, ...]
    sctp_port: int = DEFAULT_SCTP_PORT
    max_message_size: int = 262144


@attrs.frozen
class RemoteTransport:
    """What a remote description says about the data m-section and its transport."""

    mid: str | None
    mline_index: int
    ice_ufrag: str
    ice_pwd: str
    ice_lite: bool
    trickle: bool
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup | None
    candidates: tuple[str, ...]
    end_of_candidates: bool
    sctp_port: int
    max_message_size: int


def is_data_section(media: MediaDescription) -> bool:
    """An SCTP-over-DTLS data channel m-section (RFC 8841 §4)."""
    return (
        media.kind == "application"
        and media.protocol.upper() in DATA_PROTOCOLS
        and DATA_FORMAT in media.formats
    )


def _next_mid(slots: Sequence[MediaSlot]) -> str:
    used = {slot.mid for slot in slots}
    index = len(slots)
    while str(index) in used:
        index += 1
    return str(index)


def plan_offer(previous: Sequence[MediaSlot], *, want_data: bool) -> list[MediaSlot]:
    """The m-lines of a new offer: the negotiated ones in their order (RFC 8829 §5.2.2), plus a
    data m-section at the end if data channels exist and none was negotiated yet."""
    slots = [attrs.evolve(slot) for slot in previous]
    if want_data and not any(slot.data and not slot.rejected for slot in slots):
        slots.append(
            MediaSlot(
                mid=_next_mid(slots),
                kind="application",
                protocol="UDP/DTLS/SCTP",
                formats=[DATA_FORMAT],
                data=True,
            )
        )
    return slots


def plan_answer(offer: SessionDescription) -> list[MediaSlot]:
    """The m-lines of our answer: one per offered m-line (RFC 8829 §5.3.1). The first usable
    data m-section is accepted; everything else (audio, video, legacy SCTP) is rejected."""
    slots: list[MediaSlot] = []
    have_data = False
    for media in offer.media:
        accept = not have_data and is_data_section(media) and not media.is_rejected
        have_data = have_data or accept
        codec = None
        if media.is_rtp and media.payload_types:
            first = media.payload_types[0]
            codec = media.codec(first) or Codec(first)
        slots.append(
            MediaSlot(
                mid=media.mid,
                kind=media.kind,
                protocol=media.protocol,
                formats=list(media.formats[:1]) if not accept else [DATA_FORMAT],
                data=accept,
                rejected=not accept,
                codec=codec,
            )
        )
    return slots


def answer_setup(remote_offer_setup: Setup | None, *, current_is_client: bool | None) -> Setup:
    """Our ``a=setup`` in an answer (RFC 8842 §5.2). An established association keeps its roles;
    otherwise an ``actpass`` offer gets ``active`` (we are the DTLS client)."""
    if remote_offer_setup == Setup.ACTIVE:
        return Setup.PASSIVE
    if remote_offer_setup == Setup.PASSIVE:
        return Setup.ACTIVE
    if current_is_client is not None:
        return Setup.ACTIVE if current_is_client else Setup.PASSIVE
    return Setup.ACTIVE


def dtls_is_client(*, local_setup: Setup | None, remote_setup: Setup | None) -> bool:
    """Whether we are the DTLS client once an answer is applied (RFC 8842 §5): the side whose
    ``a=setup`` is ``active``."""
    if local_setup == Setup.ACTIVE:
        return True
    if local_setup == Setup.PASSIVE:
        return False
    # We offered actpass: the answerer chose.
    return remote_setup == Setup.PASSIVE


def _data_section(slot: MediaSlot, local: LocalTransport, setup: Setup) -> MediaDescription:
    return MediaDescription(
        kind="application",
        port=9,
        protocol=slot.protocol,
        formats=[DATA_FORMAT],
        connection=Connection("0.0.0.0"),
        mid=slot.mid,
        ice_ufrag=local.ice_ufrag,
        ice_pwd=local.ice_pwd,
        ice_options=["trickle"],
        fingerprints=list(local.fingerprints),
        setup=setup,
        sctp_port=local.sctp_port,
        max_message_size=local.max_message_size,
    )


def _rejected_section(slot: MediaSlot) -> MediaDescription:
    media = MediaDescription(
        kind=slot.kind,
        port=0,
        protocol=slot.protocol,
        formats=list(slot.formats[:1]) or ["0"],
        connection=Connection("0.0.0.0"),
        mid=slot.mid,
    )
    if media.is_rtp:
        media.direction = Direction.INACTIVE
        if slot.codec is not None and slot.codec.name is not None:
            codec = Codec(
                slot.codec.payload_type, slot.codec.name, slot.codec.clock_rate, slot.codec.channels
            )
            media.codecs = {codec.payload_type: codec}
        if slot.codec is not None:
            media.formats = [str(slot.codec.payload_type)]
        media.rtcp_mux = True
    return media


def _build(
    slots: Sequence[MediaSlot],
    local: LocalTransport,
    *,
    setup: Setup,
    session_id: int,
    version: int,
    bundle: bool,
) -> SessionDescription:
    description = SessionDescription(origin=Origin(session_id=session_id, session_version=version))
    for slot in slots:
        if slot.data and not slot.rejected:
            description.media.append(_data_section(slot, local, setup))
        else:
            description.media.append(_rejected_section(slot))
    live = [s.mid for s in slots if s.data and not s.rejected and s.mid is not None]
    if bundle and live:
        description.groups.append(Group("BUNDLE", tuple(live)))
    return description


def build_offer(
    slots: Sequence[MediaSlot], local: LocalTransport, *, session_id: int, version: int
) -> SessionDescription:
    """An offer (RFC 8829 §5.2): every live m-section in one BUNDLE group, ``a=setup:actpass``
    (RFC 8842 §5.2: the offerer always offers actpass, also in re-offers)."""
    return _build(
        slots, local, setup=Setup.ACTPASS, session_id=session_id, version=version, bundle=True
    )


def build_answer(
    offer: SessionDescription,
    slots: Sequence[MediaSlot],
    local: LocalTransport,
    *,
    setup: Setup,
    session_id: int,
    version: int,
) -> SessionDescription:
    """An answer (RFC 8829 §5.3) to ``offer``, whose m-lines ``slots`` mirror. We BUNDLE only
    if the offerer did (RFC 9143 §7.3)."""
    data_mid = next((s.mid for s in slots if s.data and not s.rejected), None)
    bundle = data_mid is not None and offer.bundle_group_of(data_mid) is not None
    return _build(slots, local, setup=setup, session_id=session_id, version=version, bundle=bundle)


def read_remote(
    description: SessionDescription,
    sdp_type: str,
    *,
    local_offer: SessionDescription | None,
) -> RemoteTransport | None:
    """Check a remote offer or answer and return its data transport (None if it has no live
    data m-section). Invalid content raises InvalidAccessError (webrtc-pc §4.4.1.5)."""
    if sdp_type in ("answer", "pranswer") and local_offer is not None:
        ours = [m.mid for m in local_offer.media]
        theirs = [m.mid for m in description.media]
        if ours != theirs:
            raise InvalidAccessError(
                f"the {sdp_type} must have the offer's m-lines in order (mids {ours}), "
                f"got mids {theirs}"
            )
    for index, media in enumerate(description.media):
        tagged = description.bundle_tag_media(media)
        muxed = media.rtcp_mux or media.rtcp_mux_only or tagged.rtcp_mux or tagged.rtcp_mux_only
        if media.is_rtp and not media.is_rejected and not muxed:
            # rtcpMuxPolicy "require" (webrtc-pc §4.2.4, RFC 8829 §5.8).
            raise InvalidAccessError(
                f"m-line {index} ({media.kind}) lacks a=rtcp-mux, which rtcpMuxPolicy "
                "'require' needs"
            )
    data_index = next(
        (i for i, m in enumerate(description.media) if is_data_section(m) and not m.is_rejected),
        None,
    )
    if data_index is None:
        return None
    media = description.media[data_index]
    if sdp_type in ("answer", "pranswer") and local_offer is not None:
        offered = local_offer.media[data_index]
        if not is_data_section(offered) or offered.is_rejected:
            raise InvalidAccessError(
                f"the {sdp_type} accepts m-line {data_index}, which the offer did not offer"
            )
    where = f"the data m-section (mid {media.mid!r})"
    credentials = description.ice_credentials(media)
    if credentials is None:
        raise InvalidAccessError(f"{where} has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)")
    fingerprints = description.fingerprints_for(media)
    if not fingerprints:
        raise InvalidAccessError(f"{where} has no a=fingerprint (RFC 8122 §5)")
    setup = description.setup_for(media)
    if sdp_type in ("answer", "pranswer") and setup not in (Setup.ACTIVE, Setup.PASSIVE, None):
        raise InvalidAccessError(
            f"{where}: an answer's a=setup must be active or passive, not {setup.value}"
        )
    if sdp_type == "offer" and setup == Setup.HOLDCONN:
        raise InvalidAccessError(f"{where}: a=setup:holdconn is not allowed (RFC 8842 §5.1)")
    tagged = description.bundle_tag_media(media)
    candidates = list(tagged.candidates) + (
        [c for c in media.candidates if c not in tagged.candidates] if tagged is not media else []
    )
    return RemoteTransport(
        mid=media.mid,
        mline_index=data_index,
        ice_ufrag=credentials.ufrag,
        ice_pwd=credentials.pwd,
        ice_lite=description.ice_lite,
        trickle="trickle" in description.ice_options_for(media),
        fingerprints=tuple(fingerprints),
        setup=setup,
        candidates=tuple(candidates),
        end_of_candidates=media.end_of_candidates
        or tagged.end_of_candidates
        or description.end_of_candidates,
        sctp_port=media.sctp_port if media.sctp_port is not None else DEFAULT_SCTP_PORT,
        max_message_size=(
            media.max_message_size
            if media.max_message_size is not None
            else DEFAULT_REMOTE_MAX_MESSAGE_SIZE
        ),
    )


def slots_of(local: SessionDescription, remote: SessionDescription | None) -> list[MediaSlot]:
    """The m-line plan a negotiated pair of descriptions leaves for the next offer: a slot is
    live only if both sides kept it."""
    slots: list[MediaSlot] = []
    for index, media in enumerate(local.media):
        remote_media = (
            remote.media[index] if remote is not None and index < len(remote.media) else None
        )
        rejected = media.is_rejected or (remote_media is not None and remote_media.is_rejected)
        codec = None
        if media.is_rtp and media.payload_types:
            first = media.payload_types[0]
            codec = media.codec(first) or Codec(first)
        slots.append(
            MediaSlot(
                mid=media.mid,
                kind=media.kind,
                protocol=media.protocol,
                formats=list(media.formats),
                data=is_data_section(media),
                rejected=rejected,
                codec=codec,
            )
        )
    return slots


def with_candidates(
    description: SessionDescription,
    mid: str | None,
    candidates: Sequence[str],
    *,
    end_of_candidates: bool,
) -> SessionDescription:
    """A copy of ``description`` whose m-section ``mid`` lists ``candidates`` (``candidate:``
    attribute values) and, once gathering is complete, ``a=end-of-candidates`` (RFC 8838 §8.2).
    This is what ``localDescription`` shows while candidates trickle in."""
    result = copy.deepcopy(description)
    for media in result.media:
        if media.mid == mid and not media.is_rejected:
            for text in candidates:
                value = text.removeprefix("a=").removeprefix("candidate:")
                if value not in media.candidates:
                    media.candidates.append(value)
            media.end_of_candidates = media.end_of_candidates or end_of_candidates
    return result
