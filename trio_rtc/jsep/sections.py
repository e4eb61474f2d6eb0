"""The m-line plan: which m-sections an offer or an answer has, in which order, and which of them
live on our one transport.

A :class:`MediaSlot` is one m-line. Slots are never removed: once an m-line exists its index is
fixed, and a rejected one stays in later offers and answers as port 0 (RFC 8829 §5.2.2,
§5.3.2) until a new transceiver recycles it (:func:`recyclable`): the m-line then gets the new
transceiver's kind and a new mid, at the same index. Everything we accept is carried by one ICE/DTLS transport, the BUNDLE group's
(RFC 9143).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import attrs

from ..sdp import (
    Codec,
    Direction,
    Fingerprint,
    MediaDescription,
    Rid,
    RidDirection,
    SessionDescription,
    Simulcast,
    SimulcastFormat,
)
from .codecs import URI_RID, NegotiatedMedia, answer_codecs

__all__ = [
    "DATA_FORMAT",
    "DEFAULT_REMOTE_MAX_MESSAGE_SIZE",
    "DEFAULT_SCTP_PORT",
    "LocalTransport",
    "MediaSlot",
    "NegotiatedSimulcast",
    "Sender",
    "SimulcastLayer",
    "accepted_sections",
    "answer_direction",
    "answer_simulcast",
    "intersect_directions",
    "is_data_section",
    "is_media_section",
    "negotiated_simulcast",
    "offer_simulcast",
    "plan_answer",
    "plan_offer",
    "recyclable",
    "reverse_direction",
    "slots_of",
]

DATA_FORMAT = "webrtc-datachannel"
DATA_PROTOCOLS = ("UDP/DTLS/SCTP", "TCP/DTLS/SCTP")
#: The DTLS-SRTP profiles an answerer accepts (RFC 8829 §5.1.3 lists these; an answer echoes the
#: offered one). Plain RTP/AVP(F) has no DTLS and cannot share our transport.
RTP_PROTOCOLS = (
    "UDP/TLS/RTP/SAVPF",
    "UDP/TLS/RTP/SAVP",
    "TCP/DTLS/RTP/SAVPF",
    "TCP/DTLS/RTP/SAVP",
    "RTP/SAVPF",
    "RTP/SAVP",
)
#: RFC 8841 §6: without ``a=max-message-size`` a peer accepts 64 KiB.
DEFAULT_REMOTE_MAX_MESSAGE_SIZE = 65536
DEFAULT_SCTP_PORT = 5000
#: Payload formats that are no codec of their own: an inactive answer names a real one instead.
_AUXILIARY_CODECS = frozenset({"rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn"})


def _sends(direction: Direction) -> bool:
    return direction in (Direction.SENDRECV, Direction.SENDONLY)


def _receives(direction: Direction) -> bool:
    return direction in (Direction.SENDRECV, Direction.RECVONLY)


def direction_of(*, send: bool, receive: bool) -> Direction:
    if send:
        return Direction.SENDRECV if receive else Direction.SENDONLY
    return Direction.RECVONLY if receive else Direction.INACTIVE


def reverse_direction(direction: Direction) -> Direction:
    """The peer's direction seen from our side: its ``sendonly`` is our ``recvonly``."""
    return direction_of(send=_receives(direction), receive=_sends(direction))


def intersect_directions(one: Direction, other: Direction) -> Direction:
    """Send only if both send, receive only if both receive."""
    return direction_of(
        send=_sends(one) and _sends(other), receive=_receives(one) and _receives(other)
    )


def answer_direction(offered: Direction, ours: Direction) -> Direction:
    """An answer's direction (RFC 8829 §5.3.1, RFC 3264 §6.1): the offer's, reversed, limited to
    what our transceiver wants. Offer ``sendrecv`` + ours ``recvonly`` → ``recvonly``; offer
    ``sendonly`` + ours ``sendrecv`` → ``recvonly``."""
    return intersect_directions(reverse_direction(offered), ours)


@attrs.frozen
class Sender:
    """What an m-section we send on says about our stream (RFC 8830 §2, RFC 5576 §4): the
    ``a=msid`` (stream ids and track id), and the SSRCs (RTX in an ``a=ssrc-group:FID``) each
    with our ``cname``, as browsers write them."""

    cname: str
    track_id: str | None
    stream_ids: tuple[str, ...] = ()
    ssrc: int | None = None
    rtx_ssrc: int | None = None


@attrs.define
class MediaSlot:
    """One m-line of the negotiation, in order.

    ``data``: the SCTP data section. A live RTP slot (``rejected`` False, ``data`` False) is an
    audio/video section: ``negotiated`` holds its codecs and extensions (written with
    :meth:`NegotiatedMedia.write_to`), ``direction`` its ``a=sendrecv``/… and ``sender`` the
    msid/ssrc lines when we send. ``codec`` is the one codec a section without ``negotiated``
    names (for a rejected one, so that port 0 still maps its payload type)."""

    mid: str | None
    kind: str
    protocol: str
    formats: list[str]
    data: bool = False
    rejected: bool = False
    codec: Codec | None = None
    negotiated: NegotiatedMedia | None = None
    direction: Direction = Direction.INACTIVE
    sender: Sender | None = None
    #: The ``a=rid`` lines and the ``a=simulcast`` line a live audio/video section writes.
    rids: tuple[Rid, ...] = ()
    simulcast: Simulcast | None = None

    @property
    def live(self) -> bool:
        return not self.rejected


@attrs.frozen
class LocalTransport:
    """Our side of the bundled transport, written into every live section of an offer or answer:
    the ICE agent's credentials, the certificate fingerprints, and the SCTP parameters."""

    ice_ufrag: str
    ice_pwd: str
    fingerprints: tuple[Fingerprint, ...]
    sctp_port: int = DEFAULT_SCTP_PORT
    max_message_size: int = 262144


def is_data_section(media: MediaDescription) -> bool:
    """An SCTP-over-DTLS data channel m-section (RFC 8841 §4)."""
    return (
        media.kind == "application"
        and media.protocol.upper() in DATA_PROTOCOLS
        and DATA_FORMAT in media.formats
    )


def is_media_section(media: MediaDescription) -> bool:
    """An audio or video section over DTLS-SRTP with at least one payload type: one we can keep
    on the bundled transport (if we support one of its codecs, see :func:`accepted_sections`)."""
    return (
        media.kind in ("audio", "video")
        and media.protocol.upper() in RTP_PROTOCOLS
        and bool(media.payload_types)
    )


def first_codec(media: MediaDescription) -> Codec | None:
    """The codec an answer or a rejected section names for ``media``: the first payload type that
    is a real codec (not RTX, RED, FEC, DTMF or comfort noise), else the first one."""
    types = media.payload_types
    if not types:
        return None
    for pt in types:
        codec = media.codec(pt)
        if codec is not None and (codec.name or "").lower() not in _AUXILIARY_CODECS:
            return Codec(pt, codec.name, codec.clock_rate, codec.channels, codec.fmtp)
    codec = media.codec(types[0])
    if codec is None:
        return Codec(types[0])  # a static payload type without a=rtpmap (RFC 3551)
    return Codec(types[0], codec.name, codec.clock_rate, codec.channels, codec.fmtp)


def accepted_sections(offer: SessionDescription) -> list[int]:
    """The m-line indices of a remote offer that our answer accepts, all on one transport.

    Usable are live audio/video sections over DTLS-SRTP with at least one codec we support (a
    section whose codecs are all unknown to us is rejected, so it can never be the section our
    answer's BUNDLE group is tagged by) and the first live data section (a second one, or the
    legacy ``DTLS/SCTP`` form, is rejected). With BUNDLE, we accept the usable
    sections of one group: the data section's if there is one (data is what works end to end
    today), else the first usable section's; usable sections outside that group would need a
    transport of their own, so they are rejected (port 0, RFC 9143 §7.3). Without BUNDLE only
    that one section is accepted, for the same reason."""
    usable: list[int] = []
    data_index: int | None = None
    for index, media in enumerate(offer.media):
        if media.is_rejected:
            continue
        if is_data_section(media):
            if data_index is None:
                data_index = index
                usable.append(index)
        elif is_media_section(media) and not answer_codecs(media, session=offer).rejected:
            usable.append(index)
    if not usable:
        return []
    anchor = offer.media[data_index if data_index is not None else usable[0]]
    group = offer.bundle_group_of(anchor.mid) if anchor.mid is not None else None
    if group is None:
        return [offer.media.index(anchor)]
    return [i for i in usable if offer.media[i].mid in group.mids]


def _next_mid(slots: Sequence[MediaSlot], taken: Collection[str] = ()) -> str:
    """A mid no slot has and none in ``taken`` (mids an earlier negotiation used: a recycled
    m-line gets a new one, RFC 8829 §5.2.2, and an old one is never given again)."""
    used = {slot.mid for slot in slots} | set(taken)
    index = len(slots)
    while str(index) in used:
        index += 1
    return str(index)


def recyclable(slot: MediaSlot) -> bool:
    """Whether a new transceiver may take ``slot``'s m-line (RFC 8829 §5.2.2): the last
    completed negotiation rejected it (port 0 in the current local or remote description, see
    :func:`slots_of`; a line still live in both, e.g. one whose stop() is not negotiated yet,
    is never recycled) and it is an audio or video line. Data and other ``application``
    sections are not recycled (a new data section is appended instead). The caller also checks
    that no transceiver that is not stopped still has the slot's mid."""
    return slot.rejected and not slot.data and slot.kind in ("audio", "video")


def plan_offer(
    previous: Sequence[MediaSlot], *, want_data: bool, taken: Collection[str] = ()
) -> list[MediaSlot]:
    """The m-lines of a new offer: the negotiated ones in their order and with their mids (RFC
    8829 §5.2.2), plus a data m-section at the end if data channels exist and none lives yet.
    ``taken``: mids not to give again (see :func:`_next_mid`)."""
    slots = [attrs.evolve(slot) for slot in previous]
    if want_data and not any(slot.data and slot.live for slot in slots):
        slots.append(
            MediaSlot(
                mid=_next_mid(slots, taken),
                kind="application",
                protocol="UDP/DTLS/SCTP",
                formats=[DATA_FORMAT],
                data=True,
            )
        )
    return slots


def plan_answer(offer: SessionDescription) -> list[MediaSlot]:
    """The m-lines of our answer: one per offered m-line, same order and mids (RFC 8829 §5.3.1).
    See :func:`accepted_sections` for which live. A live audio/video slot gets the negotiated
    codecs (:func:`~trio_rtc.jsep.codecs.answer_codecs`) and the direction a ``recvonly``
    transceiver answers with; :class:`~trio_rtc.jsep.JsepSession` then applies its
    transceivers (direction, codec preferences, msid)."""
    accepted = set(accepted_sections(offer))
    slots: list[MediaSlot] = []
    for index, media in enumerate(offer.media):
        live = index in accepted
        data = live and is_data_section(media)
        slot = MediaSlot(
            mid=media.mid,
            kind=media.kind,
            protocol=media.protocol,
            formats=[DATA_FORMAT] if data else list(media.formats[:1]),
            data=data,
            rejected=not live,
            codec=first_codec(media) if media.is_rtp else None,
        )
        if live and not data:
            slot.negotiated = answer_codecs(media, session=offer)
            slot.direction = answer_direction(offer.direction_for(media), Direction.RECVONLY)
            slot.rids, slot.simulcast = answer_simulcast(media, slot.negotiated, slot.direction)
        slots.append(slot)
    return slots


def slots_of(local: SessionDescription, remote: SessionDescription | None) -> list[MediaSlot]:
    """The m-line plan a negotiated pair of descriptions leaves for the next offer: a slot lives
    only if both sides kept it."""
    slots: list[MediaSlot] = []
    for index, media in enumerate(local.media):
        remote_media = (
            remote.media[index] if remote is not None and index < len(remote.media) else None
        )
        rejected = media.is_rejected or (remote_media is not None and remote_media.is_rejected)
        data = is_data_section(media)
        slot = MediaSlot(
            mid=media.mid,
            kind=media.kind,
            protocol=media.protocol,
            formats=list(media.formats),
            data=data,
            rejected=rejected,
            codec=first_codec(media) if media.is_rtp else None,
        )
        if media.is_rtp and not rejected and not data:
            # Our side of the negotiated section: what the next offer starts from.
            slot.negotiated = NegotiatedMedia.from_media(media, local)
            slot.direction = local.direction_for(media)
        slots.append(slot)
    return slots


# --- simulcast (RFC 8853) with rids (RFC 8851) ----------------------------------------------------

#: The restrictions of RFC 8851 §4 an answer keeps on a rid it accepts; others (``depend``,
#: unknown ones) are removed, as an answerer does with restrictions it does not support.
_ANSWERED_RESTRICTIONS = frozenset(
    ("max-width", "max-height", "max-fps", "max-fs", "max-br", "max-pps", "max-bpp")
)


@attrs.frozen
class SimulcastLayer:
    """One negotiated simulcast RTP stream: its rid, whether it is paused (``~``, RFC 8853
    §5.1) and its ``a=rid`` line as the side that wrote the applied answer gave it (payload
    types and restrictions, RFC 8851)."""

    rid: str
    paused: bool = False
    restrictions: Rid | None = None


@attrs.frozen
class NegotiatedSimulcast:
    """The simulcast streams an applied answer negotiated for one m-section, seen from our side.

    ``send``: the streams we send, in our encodings' order (the rids of the sender's
    encodings that the answer kept). ``recv``: the peer's streams we accept, in its order; the
    demultiplexer routes by these rids (``MediaSection.rids``). Both are empty without
    simulcast."""

    send: tuple[SimulcastLayer, ...] = ()
    recv: tuple[SimulcastLayer, ...] = ()

    @property
    def send_rids(self) -> tuple[str, ...]:
        return tuple(layer.rid for layer in self.send)

    @property
    def recv_rids(self) -> tuple[str, ...]:
        return tuple(layer.rid for layer in self.recv)


def _layers(media: MediaDescription, direction: RidDirection) -> list[SimulcastLayer]:
    """The streams of one direction of ``media``'s ``a=simulcast``, alternatives flattened in
    order; a rid without an ``a=rid`` line of that direction is left out (RFC 8853 §5.1)."""
    if media.simulcast is None:
        return []
    streams = media.simulcast.send if direction == RidDirection.SEND else media.simulcast.recv
    defined = {r.id: r for r in media.rids if r.direction == direction}
    return [
        SimulcastLayer(f.rid, f.paused, defined[f.rid])
        for alternatives in streams
        for f in alternatives
        if f.rid in defined
    ]


def negotiated_simulcast(
    local: MediaDescription, remote: MediaDescription, *, local_is_answer: bool
) -> NegotiatedSimulcast:
    """What an applied offer/answer pair negotiated. Our answer says it all (it kept only what
    we accept of the offer); to our offer, the answer's ``recv`` list names which of our
    ``send`` streams it takes and its ``send`` list which of our ``recv`` ones (RFC 8853 §5.3),
    with the answerer's pause flags."""
    send = _layers(local, RidDirection.SEND)
    recv = _layers(local, RidDirection.RECV)
    if local_is_answer:
        return NegotiatedSimulcast(tuple(send), tuple(recv))
    takes = {layer.rid: layer for layer in _layers(remote, RidDirection.RECV)}
    gives = {layer.rid: layer for layer in _layers(remote, RidDirection.SEND)}
    return NegotiatedSimulcast(
        tuple(attrs.evolve(s, paused=takes[s.rid].paused) for s in send if s.rid in takes),
        tuple(attrs.evolve(r, paused=gives[r.rid].paused) for r in recv if r.rid in gives),
    )


def offer_simulcast(rids: Sequence[str]) -> tuple[tuple[Rid, ...], Simulcast | None]:
    """The lines an offer that sends simulcast writes (RFC 8829 §5.2.1, RFC 8853 §5.2): one
    ``a=rid:<id> send`` per encoding and ``a=simulcast:send <id>;<id>…`` in encoding order."""
    if not rids:
        return (), None
    lines = tuple(Rid(rid, RidDirection.SEND) for rid in rids)
    return lines, Simulcast(send=tuple((SimulcastFormat(rid),) for rid in rids))


def _answer_rid(offered: Rid, payload_types: Collection[int]) -> Rid | None:
    """Our ``a=rid:<id> recv`` for an offered send rid (RFC 8851 §6.2, the rid-aware answerer):
    the ``pt=`` list limited to the payload types the answer keeps (none left: the rid cannot
    be taken), the restrictions we understand kept."""
    kept = tuple(pt for pt in offered.payload_types if pt in payload_types)
    if offered.payload_types and not kept:
        return None
    restrictions = tuple(r for r in offered.restrictions if r[0] in _ANSWERED_RESTRICTIONS)
    return Rid(offered.id, RidDirection.RECV, kept, restrictions)


def answer_simulcast(
    offered: MediaDescription, negotiated: NegotiatedMedia | None, direction: Direction
) -> tuple[tuple[Rid, ...], Simulcast | None]:
    """The ``a=rid``/``a=simulcast`` lines of our answer to an offered section (RFC 8853
    §5.3.2): the offer's ``send`` streams we can receive come back as ``recv``, each stream's
    alternatives in the offerer's order. A rid is dropped if it has no ``a=rid:<id> send``
    line, if its ``pt=`` list names none of the payload types we answer, or if the section does
    not receive. Without the RtpStreamId header extension (RFC 8852) the streams could not be
    told apart, so nothing is taken. We do not send simulcast in answers (an offer's ``recv``
    list is not answered)."""
    if (
        offered.simulcast is None
        or negotiated is None
        or negotiated.rejected
        or not _receives(direction)
        or all(e.uri != URI_RID for e in negotiated.extmaps)
    ):
        return (), None
    sent = {r.id: r for r in offered.rids if r.direction == RidDirection.SEND}
    payload_types = {c.payload_type for c in negotiated.media_codecs}
    rids: list[Rid] = []
    streams: list[tuple[SimulcastFormat, ...]] = []
    for alternatives in offered.simulcast.send:
        kept: list[SimulcastFormat] = []
        for fmt in alternatives:
            rid = sent.get(fmt.rid)
            answered = _answer_rid(rid, payload_types) if rid is not None else None
            if answered is not None:
                rids.append(answered)
                kept.append(fmt)
        if kept:
            streams.append(tuple(kept))
    if not streams:
        return (), None
    return tuple(rids), Simulcast(recv=tuple(streams))
