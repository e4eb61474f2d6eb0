"""Reading a remote description: the checks JSEP makes (webrtc-pc §4.4.1.5, InvalidAccessError)
and the one transport it describes.

The transport of a BUNDLE group is described by its tagged m-section (RFC 9143 §7.2), whichever
kind that is: audio, video or data. We use the group of the first m-section that lives on our
side of the negotiation, so a media-only session brings ICE and DTLS up as well as a data one.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..exceptions import InvalidAccessError
from ..sdp import Fingerprint, MediaDescription, SessionDescription, Setup
from .sections import (
    DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
    DEFAULT_SCTP_PORT,
    MediaSlot,
    accepted_sections,
    is_data_section,
)

__all__ = [
    "RemoteData",
    "RemoteTransport",
    "check_remote_offer_mlines",
    "read_remote",
    "transport_sections",
]


@attrs.frozen
class RemoteData:
    """The peer's data m-section on the transport (RFC 8841)."""

    mid: str | None
    mline_index: int
    sctp_port: int
    max_message_size: int


@attrs.frozen
class RemoteTransport:
    """What a remote description says about our one (bundled) transport.

    ``mid``/``mline_index`` name the m-section the transport is read from: the BUNDLE tag, or
    the first live section when there is no group. ``sections`` are the m-line indices of every
    live section carried by it."""

    mid: str | None
    mline_index: int
    sections: tuple[int, ...]
    ice_ufrag: str
    ice_pwd: str
    ice_lite: bool
    trickle: bool
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup | None
    candidates: tuple[str, ...]
    end_of_candidates: bool
    data: RemoteData | None = None

    @property
    def sctp_port(self) -> int:
        return self.data.sctp_port if self.data is not None else DEFAULT_SCTP_PORT

    @property
    def max_message_size(self) -> int:
        if self.data is None:
            return DEFAULT_REMOTE_MAX_MESSAGE_SIZE
        return self.data.max_message_size


def _live_sections(description: SessionDescription, sdp_type: str) -> list[int]:
    if sdp_type == "offer":
        # What we would accept of it: only those sections need a transport.
        return accepted_sections(description)
    return [i for i, m in enumerate(description.media) if not m.is_rejected]


def transport_sections(description: SessionDescription, sdp_type: str) -> list[int]:
    """The indices of the live m-sections that share the transport of the first one: its BUNDLE
    group's (by tag, RFC 9143 §7.2), or that section alone. Empty if nothing lives."""
    live = _live_sections(description, sdp_type)
    if not live:
        return []
    tag = description.bundle_tag_media(description.media[live[0]])
    return [i for i in live if description.bundle_tag_media(description.media[i]) is tag]


def _check_answer_mirrors_offer(
    description: SessionDescription, sdp_type: str, offer: SessionDescription
) -> None:
    ours = [m.mid for m in offer.media]
    theirs = [m.mid for m in description.media]
    if ours != theirs:
        raise InvalidAccessError(
            f"the {sdp_type} must have the offer's m-lines in order (mids {ours}), got mids {theirs}"
        )
    for index, (offered, answered) in enumerate(zip(offer.media, description.media, strict=True)):
        if not answered.is_rejected and offered.is_rejected:
            raise InvalidAccessError(
                f"the {sdp_type} accepts m-line {index} (mid {answered.mid!r}), "
                "which the offer rejected"
            )
        if not answered.is_rejected and is_data_section(answered) != is_data_section(offered):
            raise InvalidAccessError(
                f"the {sdp_type} answers m-line {index} (mid {answered.mid!r}) with a different "
                f"kind of section ({answered.kind} {answered.protocol}) than offered "
                f"({offered.kind} {offered.protocol})"
            )


def check_remote_offer_mlines(offer: SessionDescription, slots: Sequence[MediaSlot]) -> None:
    """A remote offer keeps the negotiated m-lines (``slots``, the last completed negotiation):
    none is removed (RFC 3264 §8), and one that lives keeps its index, mid and kind. Only a
    rejected m-line may come back with a new mid and another kind, recycled (RFC 8829 §5.2.2);
    anything else raises InvalidAccessError."""
    if len(offer.media) < len(slots):
        raise InvalidAccessError(
            f"the offer has {len(offer.media)} m-lines, fewer than the {len(slots)} negotiated "
            "(m-lines are never removed, RFC 3264 §8)"
        )
    for index, slot in enumerate(slots):
        media = offer.media[index]
        if slot.live and (media.mid != slot.mid or media.kind != slot.kind):
            raise InvalidAccessError(
                f"the offer's m-line {index} is {media.kind} with mid {media.mid!r}, but the "
                f"negotiated {slot.kind} m-line there (mid {slot.mid!r}) is not rejected: only "
                "a rejected m-line may be recycled (RFC 8829 §5.2.2)"
            )


def _check_rtcp_mux(description: SessionDescription) -> None:
    for index, media in enumerate(description.media):
        tagged = description.bundle_tag_media(media)
        muxed = media.rtcp_mux or media.rtcp_mux_only or tagged.rtcp_mux or tagged.rtcp_mux_only
        if media.is_rtp and not media.is_rejected and not muxed:
            # rtcpMuxPolicy "require" (webrtc-pc §4.2.4, RFC 8829 §5.8).
            raise InvalidAccessError(
                f"m-line {index} ({media.kind}) lacks a=rtcp-mux, which rtcpMuxPolicy "
                "'require' needs"
            )


def _candidates(description: SessionDescription, sections: list[int]) -> list[str]:
    """Candidates of the transport from every section carried by it, tag first, each once:
    browsers list them in the tag only or in every bundled section."""
    found: list[str] = []
    tag = description.bundle_tag_media(description.media[sections[0]])
    for media in [tag, *(description.media[i] for i in sections)]:
        for value in media.candidates:
            if value not in found:
                found.append(value)
    return found


def _remote_data(description: SessionDescription, sections: list[int]) -> RemoteData | None:
    for index in sections:
        media = description.media[index]
        if is_data_section(media):
            return RemoteData(
                mid=media.mid,
                mline_index=index,
                sctp_port=media.sctp_port if media.sctp_port is not None else DEFAULT_SCTP_PORT,
                max_message_size=(
                    media.max_message_size
                    if media.max_message_size is not None
                    else DEFAULT_REMOTE_MAX_MESSAGE_SIZE
                ),
            )
    return None


def read_remote(
    description: SessionDescription,
    sdp_type: str,
    *,
    local_offer: SessionDescription | None,
) -> RemoteTransport | None:
    """Check a remote offer, answer or pranswer and return the transport it describes (None if
    no m-section of it lives on our side). Invalid content raises InvalidAccessError that names
    the m-line and what is missing. ``local_offer``: our offer, for an answer's checks."""
    if sdp_type in ("answer", "pranswer") and local_offer is not None:
        _check_answer_mirrors_offer(description, sdp_type, local_offer)
    _check_rtcp_mux(description)
    sections = transport_sections(description, sdp_type)
    if not sections:
        return None
    first = description.media[sections[0]]
    tag = description.bundle_tag_media(first)
    tag_index = description.media.index(tag)
    where = f"m-line {tag_index} ({tag.kind}, mid {tag.mid!r}), which carries the transport,"
    credentials = description.ice_credentials(tag)
    if credentials is None:
        raise InvalidAccessError(f"{where} has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)")
    fingerprints = description.fingerprints_for(tag)
    if not fingerprints:
        raise InvalidAccessError(f"{where} has no a=fingerprint (RFC 8122 §5)")
    setup = description.setup_for(tag)
    if sdp_type in ("answer", "pranswer") and setup not in (Setup.ACTIVE, Setup.PASSIVE, None):
        raise InvalidAccessError(
            f"{where}: an answer's a=setup must be active or passive, not {setup.value}"
        )
    if sdp_type == "offer" and setup == Setup.HOLDCONN:
        raise InvalidAccessError(f"{where}: a=setup:holdconn is not allowed (RFC 8842 §5.1)")
    carried: list[MediaDescription] = [tag, *(description.media[i] for i in sections)]
    return RemoteTransport(
        mid=tag.mid,
        mline_index=tag_index,
        sections=tuple(sections),
        ice_ufrag=credentials.ufrag,
        ice_pwd=credentials.pwd,
        ice_lite=description.ice_lite,
        trickle="trickle" in description.ice_options_for(tag),
        fingerprints=tuple(fingerprints),
        setup=setup,
        candidates=tuple(_candidates(description, sections)),
        end_of_candidates=description.end_of_candidates
        or any(m.end_of_candidates for m in carried),
        data=_remote_data(description, sections),
    )
