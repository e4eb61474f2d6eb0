"""Writing offers and answers from the m-line plan and our transport parameters, and the DTLS
roles they imply. Pure functions over the SDP model."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..sdp import (
    Codec,
    Connection,
    Direction,
    Group,
    MediaDescription,
    Msid,
    Origin,
    SessionDescription,
    Setup,
    Ssrc,
    SsrcGroup,
)
from .sections import DATA_FORMAT, LocalTransport, MediaSlot, Sender

__all__ = [
    "answer_setup",
    "build_answer",
    "build_offer",
    "dtls_is_client",
    "with_candidates",
]


def answer_setup(remote_offer_setup: Setup | None, *, current_is_client: bool | None) -> Setup:
    """Our ``a=setup`` in an answer (RFC 8842 §5.2). An established association keeps its roles
    (RFC 8842 §5.3); otherwise an ``actpass`` offer gets ``active`` (we are the DTLS client)."""
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


def _transport_attributes(media: MediaDescription, local: LocalTransport, setup: Setup) -> None:
    # Every live section carries the same ICE and DTLS attributes, as Chromium and aiortc write
    # them: an offerer cannot know whether the answerer does BUNDLE (RFC 8829 §5.2.1), and a
    # BUNDLE-aware receiver reads those of the tagged section anyway (RFC 9143 §7.2).
    media.ice_ufrag = local.ice_ufrag
    media.ice_pwd = local.ice_pwd
    media.ice_options = ["trickle"]
    media.fingerprints = list(local.fingerprints)
    media.setup = setup


def _data_section(slot: MediaSlot, local: LocalTransport, setup: Setup) -> MediaDescription:
    media = MediaDescription(
        kind="application",
        port=9,
        protocol=slot.protocol,
        formats=[DATA_FORMAT],
        connection=Connection("0.0.0.0"),
        mid=slot.mid,
    )
    _transport_attributes(media, local, setup)
    media.sctp_port = local.sctp_port
    media.max_message_size = local.max_message_size
    return media


def _codec_lines(media: MediaDescription, codec: Codec | None) -> None:
    """One payload type, mapped if it has a name: enough for a valid RTP m-line."""
    if codec is None:
        media.formats = list(media.formats[:1]) or ["0"]
        return
    media.formats = [str(codec.payload_type)]
    if codec.name is not None:
        media.codecs = {codec.payload_type: _answer_codec(codec)}


def _answer_codec(codec: Codec) -> Codec:
    """The codec as an answer names it: rtpmap and fmtp, without the offer's rtcp-fb lines."""
    return Codec(codec.payload_type, codec.name, codec.clock_rate, codec.channels, codec.fmtp)


def _sender_lines(media: MediaDescription, sender: Sender, *, rtx: bool, sends: bool) -> None:
    """``a=msid`` (RFC 8830 §2: one per stream, ``-`` for none; RFC 8829 §5.2.1/§5.3.1 ask for
    it whenever the transceiver's direction sends, also if the answer's does not) and, if the
    section sends, ``a=ssrc`` lines as Chromium and Firefox write them: ``cname`` (RFC 5576
    §4.1, RFC 7022) and ``msid``, the RTX SSRC tied to the media one by ``a=ssrc-group:FID``
    (RFC 5576 §4.2, RFC 4588 §8.3). Peers that demultiplex by SSRC before they see a MID header
    extension need them."""
    if sender.track_id is not None:
        media.msids = [Msid(s, sender.track_id) for s in sender.stream_ids or ("-",)]
    if sender.ssrc is None or not sends:
        return
    if media.simulcast is not None and media.simulcast.send:
        # Simulcast streams are told apart by their rid header extension (RFC 8853 §5.2), each
        # on an SSRC of its own that no a=ssrc line could name in advance.
        return
    ssrcs = [sender.ssrc]
    if rtx and sender.rtx_ssrc is not None:
        ssrcs.append(sender.rtx_ssrc)
        media.ssrc_groups = [SsrcGroup("FID", tuple(ssrcs))]
    for ssrc in ssrcs:
        media.ssrcs.append(Ssrc(ssrc, "cname", sender.cname))
        if sender.track_id is not None:
            stream = sender.stream_ids[0] if sender.stream_ids else "-"
            media.ssrcs.append(Ssrc(ssrc, "msid", f"{stream} {sender.track_id}"))


def _media_section(slot: MediaSlot, local: LocalTransport, setup: Setup) -> MediaDescription:
    """A live audio/video section: a real port, bundled, the negotiated codecs and extensions
    and the slot's direction; ``a=msid``/``a=ssrc`` if we send. ``a=rtcp-mux`` because our
    rtcpMuxPolicy is ``require`` (webrtc-pc §4.2.4)."""
    media = MediaDescription(
        kind=slot.kind,
        port=9,
        protocol=slot.protocol,
        formats=list(slot.formats[:1]) or ["0"],
        connection=Connection("0.0.0.0"),
        mid=slot.mid,
        direction=slot.direction,
        rtcp_mux=True,
    )
    _transport_attributes(media, local, setup)
    negotiated = slot.negotiated
    if negotiated is not None and not negotiated.rejected:
        negotiated.write_to(media)
    else:
        _codec_lines(media, slot.codec)
    media.rids = list(slot.rids)
    media.simulcast = slot.simulcast
    if slot.sender is not None:
        _sender_lines(
            media,
            slot.sender,
            rtx=negotiated is not None and bool(negotiated.rtx),
            sends=slot.direction in (Direction.SENDRECV, Direction.SENDONLY),
        )
    return media


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
        codec = slot.codec
        if codec is not None:
            media.formats = [str(codec.payload_type)]
            if codec.name is not None:
                media.codecs = {
                    codec.payload_type: Codec(
                        codec.payload_type, codec.name, codec.clock_rate, codec.channels
                    )
                }
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
        if slot.rejected:
            description.media.append(_rejected_section(slot))
        elif slot.data:
            description.media.append(_data_section(slot, local, setup))
        else:
            description.media.append(_media_section(slot, local, setup))
    live = [s.mid for s in slots if s.live and s.mid is not None]
    if bundle and live:
        # One group, tagged by its first mid (RFC 9143 §7.2): every live section shares the
        # transport of the first.
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
    """An answer (RFC 8829 §5.3) to ``offer``, whose m-lines ``slots`` mirror. We BUNDLE only if
    the offerer did (RFC 9143 §7.3); the live slots are then all in the offer's group."""
    first = next((s.mid for s in slots if s.live), None)
    bundle = first is not None and offer.bundle_group_of(first) is not None
    return _build(slots, local, setup=setup, session_id=session_id, version=version, bundle=bundle)


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
    return with_transport_candidates(
        description, [mid], candidates, end_of_candidates=end_of_candidates
    )


def with_transport_candidates(
    description: SessionDescription,
    mids: Sequence[str | None],
    candidates: Sequence[str],
    *,
    end_of_candidates: bool,
) -> SessionDescription:
    """:func:`with_candidates` for every live section of ``mids`` (the sections of one bundled
    transport), so that a peer reading any of them finds the transport's candidates."""
    wanted = set(mids)
    values = [text.removeprefix("a=").removeprefix("candidate:") for text in candidates]
    sections = []
    for media in description.media:
        if media.mid in wanted and not media.is_rejected and not media.bundle_only:
            listed = list(media.candidates)
            for value in values:
                if value not in listed:
                    listed.append(value)
            media = attrs.evolve(
                media,
                candidates=listed,
                end_of_candidates=media.end_of_candidates or end_of_candidates,
            )
        sections.append(media)
    # A new description and new changed sections; the rest is shared with ``description``
    # (a deep copy of the whole model cost half a millisecond per call, on every setup).
    return attrs.evolve(description, media=sections)
