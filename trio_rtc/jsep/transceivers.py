"""Transceivers in the JSEP core: the pure record of one RTCRtpTransceiver and the rules that tie
transceivers to m-sections (RFC 8829 §5.2, §5.3; webrtc-pc §4.4.1.5, §4.7.3, §5.4).

A :class:`JsepTransceiver` is plain data that :class:`~trio_rtc.jsep.JsepSession` owns; the peer
connection keeps its RTCRtpTransceiver next to it and changes ``direction``, ``stream_ids``,
``track_id`` … directly, then asks the session whether negotiation is needed. The functions here
are what the session does with transceivers when it writes or applies a description:

* :func:`match_remote_offer`: a remote offer's audio/video m-sections find their transceivers
  (by mid, else the first unassociated one of the kind) or create ``recvonly`` ones.
* :func:`decorate_answer` / :func:`offer_media_slots`: the slots of our answer or offer get the
  transceivers' codecs, directions and msid/ssrc.
* :func:`check_remote_answer` / :func:`apply_answer`: a remote answer is validated before any
  state changes, then fills ``negotiated`` and ``current_direction``.
* :func:`negotiation_needed`: the transceiver part of webrtc-pc §4.7.3.

* :func:`stopped_to_remove`: stopped transceivers whose m-line an answer rejected leave the
  set of transceivers (webrtc-pc §4.4.1.5); their m-line may then be recycled by a new one
  (RFC 8829 §5.2.2, :func:`offer_media_slots`).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence

import attrs

from ..sdp import Direction, MediaDescription, RidDirection, SessionDescription
from .codecs import NegotiatedMedia, RTCRtpCodecCapability, answer_codecs, offer_codecs
from .decisions import TransceiverUpdate
from .sections import (
    MediaSlot,
    NegotiatedSimulcast,
    Sender,
    _next_mid,
    answer_direction,
    answer_simulcast,
    intersect_directions,
    is_media_section,
    negotiated_simulcast,
    offer_simulcast,
    recyclable,
    reverse_direction,
)

__all__ = [
    "DIRECTIONS",
    "JsepTransceiver",
    "Undo",
    "apply_answer",
    "check_remote_answer",
    "decorate_answer",
    "match_remote_offer",
    "negotiation_needed",
    "offer_media_slots",
    "read_remote_tracks",
    "remote_track_change",
    "rollback_transceivers",
    "stopped_to_remove",
    "update_of",
]

#: RTCRtpTransceiverDirection values a transceiver may be set to (``stopped`` is ``stopping``).
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@attrs.define(eq=False)
class JsepTransceiver:
    """One RTCRtpTransceiver as the negotiation sees it (webrtc-pc §5.4), compared by identity.

    ``mid``/``mline_index``: the m-section it is associated with, set when a description that
    gives it one is applied (our offer, or a remote offer) and cleared by a rollback of it.
    ``direction`` is [[Direction]]; ``current_direction`` [[CurrentDirection]], set when an
    answer is applied. ``stopping``: stop() was called, the next offer rejects its m-line;
    ``stopped``: an applied description rejected it. ``codec_preferences``: from
    setCodecPreferences() (checked by the caller with ``check_codec_preferences``). What we
    send: ``stream_ids``, ``track_id`` (None: no track, no ``a=msid``), ``ssrc`` and
    ``rtx_ssrc`` (random, chosen by the driver). What the peer sends, from the last remote
    description: ``remote_*``. ``fired_direction`` is [[FiredDirection]], which decides when a
    ``track`` event is due.

    Simulcast: ``send_rids`` are the rids of the sender's encodings when it has several
    (webrtc-pc §5.1 addTransceiver sendEncodings; empty otherwise), which our offers send as
    ``a=rid``/``a=simulcast`` (RFC 8853); an applied answer shrinks them to the streams it
    accepted (webrtc-pc §4.4.1.5), and empties them if it accepted none. ``simulcast`` is what
    the last applied answer negotiated: the rids we send and those of the peer we receive."""

    kind: str
    direction: str = "sendrecv"
    mid: str | None = None
    mline_index: int | None = None
    current_direction: str | None = None
    stopping: bool = False
    stopped: bool = False
    codec_preferences: tuple[RTCRtpCodecCapability, ...] = ()
    stream_ids: tuple[str, ...] = ()
    track_id: str | None = None
    ssrc: int | None = None
    rtx_ssrc: int | None = None
    negotiated: NegotiatedMedia | None = None
    remote_ssrcs: tuple[int, ...] = ()
    remote_rtx_ssrcs: tuple[tuple[int, int], ...] = ()
    remote_rids: tuple[str, ...] = ()
    remote_stream_ids: tuple[str, ...] = ()
    remote_track_id: str | None = None
    fired_direction: str | None = None
    #: Created by a remote offer (removed again if that offer is rolled back).
    created_by_remote: bool = False
    send_rids: tuple[str, ...] = ()
    simulcast: NegotiatedSimulcast = attrs.Factory(NegotiatedSimulcast)

    def __attrs_post_init__(self) -> None:
        # The SSRCs this transceiver sends with, should it ever send (RFC 3550 §8.1: random);
        # a transceiver a remote offer created gets them too, for an addTrack that reuses it.
        if self.ssrc is None:
            self.ssrc = secrets.randbits(32) or 1
        if self.rtx_ssrc is None and self.kind == "video":
            self.rtx_ssrc = secrets.randbits(32) or 1

    @property
    def receive_rids(self) -> tuple[str, ...]:
        """The peer's simulcast rids we accepted (RFC 8851/8853), to demultiplex by; empty
        without simulcast."""
        return self.simulcast.recv_rids

    @property
    def sending(self) -> bool:
        return not self.stopped and self.current_direction in ("sendrecv", "sendonly")

    @property
    def receiving(self) -> bool:
        return not self.stopped and self.current_direction in ("sendrecv", "recvonly")

    def sender(self, cname: str) -> Sender:
        return Sender(cname, self.track_id, self.stream_ids, self.ssrc, self.rtx_ssrc)


@attrs.frozen
class Undo:
    """What applying an offer changed on a transceiver, restored by a rollback."""

    transceiver: JsepTransceiver
    mid: str | None
    mline_index: int | None
    created: bool = False


def _by_mid(transceivers: Sequence[JsepTransceiver], mid: str | None) -> JsepTransceiver | None:
    if mid is None:
        return None
    return next((t for t in transceivers if t.mid == mid), None)


def _receives(direction: Direction) -> bool:
    return direction in (Direction.SENDRECV, Direction.RECVONLY)


# --- remote offers ------------------------------------------------------------------------------


def match_remote_offer(
    transceivers: list[JsepTransceiver], offer: SessionDescription
) -> list[Undo]:
    """Associate the live audio/video m-sections of a remote offer with transceivers (webrtc-pc
    §4.4.1.5, "set the RTCSessionDescription", remote offer): the one with the section's mid;
    else the first transceiver of the kind without a mid that is not stopping; else a new
    ``recvonly`` one is appended. Returns what a rollback must undo."""
    undo: list[Undo] = []
    for index, media in enumerate(offer.media):
        if media.is_rejected or media.mid is None or not is_media_section(media):
            continue
        found = _by_mid(transceivers, media.mid)
        if found is not None:
            if found.mline_index != index:
                undo.append(Undo(found, found.mid, found.mline_index))
                found.mline_index = index
            continue
        found = next(
            (
                t
                for t in transceivers
                if t.mid is None and t.kind == media.kind and not (t.stopping or t.stopped)
            ),
            None,
        )
        if found is not None:
            undo.append(Undo(found, None, found.mline_index))
        else:
            found = JsepTransceiver(media.kind, "recvonly", created_by_remote=True)
            transceivers.append(found)
            undo.append(Undo(found, None, None, created=True))
        found.mid, found.mline_index = media.mid, index
    return undo


def rollback_transceivers(transceivers: list[JsepTransceiver], undo: Sequence[Undo]) -> None:
    """Undo :func:`match_remote_offer` or the mids our offer gave (webrtc-pc §4.4.1.5 rollback:
    mids set by the rolled-back description are cleared, transceivers it created removed)."""
    for change in reversed(undo):
        if change.created:
            if change.transceiver in transceivers:
                transceivers.remove(change.transceiver)
        else:
            change.transceiver.mid = change.mid
            change.transceiver.mline_index = change.mline_index


def read_remote_tracks(transceiver: JsepTransceiver, media: MediaDescription) -> None:
    """What the peer says it sends in ``media``: SSRCs (RTX ones paired by ``a=ssrc-group:FID``,
    RFC 5576 §4.2), ``a=msid`` (RFC 8830; the ``a=ssrc … msid:`` form as a fallback) and the
    rids it sends (RFC 8851 §4: its ``send`` rids)."""
    pairs = tuple(
        (group.ssrcs[0], group.ssrcs[1])
        for group in media.ssrc_groups
        if group.semantics.upper() == "FID" and len(group.ssrcs) == 2
    )
    repair = {rtx for _, rtx in pairs}
    transceiver.remote_rtx_ssrcs = pairs
    transceiver.remote_ssrcs = tuple(
        dict.fromkeys(s.ssrc for s in media.ssrcs if s.ssrc not in repair)
    )
    transceiver.remote_rids = tuple(r.id for r in media.rids if r.direction == RidDirection.SEND)
    if media.msids:
        transceiver.remote_stream_ids = tuple(
            m.stream_id for m in media.msids if m.stream_id != "-"
        )
        transceiver.remote_track_id = media.msids[0].track_id
        return
    for ssrc in media.ssrcs:
        if ssrc.attribute == "msid" and ssrc.value:
            stream, _, track = ssrc.value.partition(" ")
            transceiver.remote_stream_ids = () if stream == "-" else (stream,)
            transceiver.remote_track_id = track or None
            return
    transceiver.remote_stream_ids, transceiver.remote_track_id = (), None


def remote_track_change(
    transceiver: JsepTransceiver, description: SessionDescription, media: MediaDescription
) -> tuple[bool, bool]:
    """webrtc-pc §4.4.1.5 "process remote tracks" for a remote description: the section's
    direction reversed (inactive if rejected) decides whether the peer sends to us. Returns
    (track added, track removed) against [[FiredDirection]], which it updates."""
    direction = (
        Direction.INACTIVE
        if media.is_rejected
        else reverse_direction(description.direction_for(media))
    )
    was = transceiver.fired_direction in ("sendrecv", "recvonly")
    transceiver.fired_direction = direction.value
    now = _receives(direction)
    return now and not was, was and not now


# --- writing our descriptions -------------------------------------------------------------------


def decorate_answer(
    slots: Sequence[MediaSlot],
    transceivers: Sequence[JsepTransceiver],
    offer: SessionDescription,
    cname: str,
) -> None:
    """Give the live audio/video slots of our answer their transceiver's say: codec
    preferences (which may leave nothing: the slot is rejected), the direction (the offer's
    reversed, intersected with the transceiver's, RFC 8829 §5.3.1) and our msid/ssrc when we
    send. A stopping or stopped transceiver rejects its m-line (webrtc-pc §5.4 stop())."""
    for index, slot in enumerate(slots):
        if slot.rejected or slot.data or slot.negotiated is None:
            continue
        transceiver = _by_mid(transceivers, slot.mid)
        if transceiver is None:
            continue
        if transceiver.stopping or transceiver.stopped:
            slot.rejected, slot.negotiated = True, None
            continue
        media = offer.media[index]
        if transceiver.codec_preferences:
            negotiated = answer_codecs(
                media, preferences=transceiver.codec_preferences, session=offer
            )
            if negotiated.rejected:
                slot.rejected, slot.negotiated = True, None
                continue
            slot.negotiated = negotiated
        wanted = Direction(transceiver.direction)
        slot.direction = answer_direction(offer.direction_for(media), wanted)
        slot.rids, slot.simulcast = answer_simulcast(media, slot.negotiated, slot.direction)
        if wanted in (Direction.SENDRECV, Direction.SENDONLY):
            slot.sender = transceiver.sender(cname)


def offer_media_slots(
    slots: list[MediaSlot],
    transceivers: Sequence[JsepTransceiver],
    previous: SessionDescription | None,
    cname: str,
    *,
    taken: Collection[str] = (),
) -> dict[str, JsepTransceiver]:
    """Give the slots of our next offer the transceivers' codecs, directions and msid/ssrc, and
    a slot to every transceiver without a mid that is not stopping, with a new mid (RFC 8829
    §5.2.1; never one of ``taken``). A new transceiver takes, in creation order, the first
    m-line the last negotiation rejected and no live transceiver holds (RFC 8829 §5.2.2
    recycling, see :func:`~trio_rtc.jsep.sections.recyclable`; any kind may replace any
    other), else a slot appended at the end. The other m-lines keep their order and mids.
    Payload types and extension ids stay what ``previous`` (our last local description, offer
    or answer) used for the section (RFC 3264 §8.3.2), and sections in the BUNDLE group never
    share a payload type (RFC 8843 §9.1). Returns the mids given to new transceivers, to be
    set when the offer is applied."""
    planned: dict[str, JsepTransceiver] = {}
    for transceiver in transceivers:
        if transceiver.mid is not None or transceiver.stopping or transceiver.stopped:
            continue  # RFC 8829 §5.2.2: no m-line for a stopped transceiver without one
        mid = _next_mid(slots, taken)
        fresh = MediaSlot(mid=mid, kind=transceiver.kind, protocol="UDP/TLS/RTP/SAVPF", formats=[])
        index = next(
            (
                i
                for i, slot in enumerate(slots)
                if recyclable(slot)
                and all(t.stopped for t in transceivers if t.mid is not None and t.mid == slot.mid)
            ),
            None,
        )
        if index is None:
            slots.append(fresh)
        else:
            slots[index] = fresh  # recycled: same index, new mid and kind
        planned[mid] = transceiver
    # (slot, transceiver, what the section used last time)
    work: list[tuple[MediaSlot, JsepTransceiver, NegotiatedMedia | None]] = []
    for slot in slots:
        owner = planned.get(slot.mid or "") or _by_mid(transceivers, slot.mid)
        if owner is None or slot.data or slot.kind not in ("audio", "video"):
            continue
        if slot.rejected or owner.stopping or owner.stopped:
            # RFC 8829 §5.2.2: a stopped transceiver's m-line is port 0 (until recycled).
            slot.rejected, slot.negotiated, slot.sender = True, None, None
            continue
        earlier: NegotiatedMedia | None = None
        if previous is not None and slot.mid is not None:
            media = previous.media_by_mid(slot.mid)
            if media is not None and not media.is_rejected and media.is_rtp:
                earlier = NegotiatedMedia.from_media(media, previous)
        work.append((slot, owner, earlier))
    done: list[NegotiatedMedia] = []
    for position, (slot, transceiver, earlier) in enumerate(work):
        later = [e for _, _, e in work[position + 1 :] if e is not None]
        negotiated = offer_codecs(
            slot.kind,
            preferences=transceiver.codec_preferences or None,
            previous=earlier,
            bundle=[*done, *later],
        )
        if negotiated.rejected:
            slot.rejected, slot.negotiated, slot.sender = True, None, None
            continue
        done.append(negotiated)
        slot.negotiated = negotiated
        slot.direction = Direction(transceiver.direction)
        if slot.direction in (Direction.SENDRECV, Direction.SENDONLY):
            slot.sender = transceiver.sender(cname)
            # Simulcast only where we send: RFC 8853 §5.1 ties the send list to the direction.
            slot.rids, slot.simulcast = offer_simulcast(transceiver.send_rids)
    return planned


# --- applying answers ---------------------------------------------------------------------------


def check_remote_answer(
    our_offer: SessionDescription, answer: SessionDescription
) -> dict[int, NegotiatedMedia]:
    """Validate a remote answer's (or pranswer's) audio/video sections against our offer
    (:meth:`NegotiatedMedia.from_answer`, RFC 3264 §6.1): raises InvalidAccessError before any
    state changes. Returns what each of our live audio/video m-lines negotiated (a rejected
    result for those the answer rejects)."""
    results: dict[int, NegotiatedMedia] = {}
    for index, offered in enumerate(our_offer.media):
        if offered.is_rejected or not offered.is_rtp or index >= len(answer.media):
            continue
        ours = NegotiatedMedia.from_media(offered, our_offer)
        results[index] = NegotiatedMedia.from_answer(answer.media[index], ours, answer)
    return results


def apply_answer(
    transceivers: Sequence[JsepTransceiver],
    local: SessionDescription,
    remote: SessionDescription,
    *,
    local_is_answer: bool,
    negotiated: dict[int, NegotiatedMedia],
) -> None:
    """An answer (ours or theirs) is applied: each transceiver of our audio/video m-lines gets
    ``negotiated`` and [[CurrentDirection]] (webrtc-pc §4.4.1.5), or is stopped if the m-line is
    rejected. Our answer's direction is ours as written; a remote answer's is reversed and
    limited to what we offered."""
    for index, media in enumerate(local.media):
        transceiver = _by_mid(transceivers, media.mid)
        if transceiver is None or index >= len(remote.media):
            continue
        theirs = remote.media[index]
        result = negotiated.get(index)
        if media.is_rejected or theirs.is_rejected or result is None or result.rejected:
            transceiver.stopped, transceiver.stopping = True, False
            transceiver.negotiated, transceiver.current_direction = None, None
            continue
        transceiver.negotiated = result
        transceiver.mline_index = index
        _apply_simulcast(transceiver, media, theirs, local_is_answer=local_is_answer)
        if local_is_answer:
            direction = local.direction_for(media)
        else:
            direction = intersect_directions(
                reverse_direction(remote.direction_for(theirs)), local.direction_for(media)
            )
        transceiver.current_direction = direction.value


def _apply_simulcast(
    transceiver: JsepTransceiver,
    local: MediaDescription,
    remote: MediaDescription,
    *,
    local_is_answer: bool,
) -> None:
    """An answer negotiated ``transceiver.simulcast``. webrtc-pc §4.4.1.5 ("set the
    description", an answer, when [[SendEncodings]] has more than one encoding): the encodings
    whose stream the answer rejected are removed; if it takes none (no ``a=simulcast`` at all),
    only the first is kept (the driver removes its rid). Our offer without simulcast (a
    direction that does not send) leaves the encodings as they are."""
    negotiated = negotiated_simulcast(local, remote, local_is_answer=local_is_answer)
    transceiver.simulcast = negotiated
    offered = negotiated_simulcast(local, local, local_is_answer=True).send_rids
    if not transceiver.send_rids or (not local_is_answer and not offered):
        return
    accepted = set(negotiated.send_rids)
    transceiver.send_rids = tuple(rid for rid in transceiver.send_rids if rid in accepted)


def stopped_to_remove(
    transceivers: Sequence[JsepTransceiver],
    local: SessionDescription,
    remote: SessionDescription,
) -> list[JsepTransceiver]:
    """webrtc-pc §4.4.1.5 (an answer is applied): a transceiver that is stopped and associated
    with an m-section rejected in the current local or remote description is removed from the
    set of transceivers. Returns those, in order; the caller removes them."""
    gone = []
    for transceiver in transceivers:
        if not transceiver.stopped or transceiver.mid is None:
            continue
        for description in (local, remote):
            media = description.media_by_mid(transceiver.mid)
            if media is not None and media.is_rejected:
                gone.append(transceiver)
                break
    return gone


def update_of(
    transceiver: JsepTransceiver, *, track_added: bool = False, track_removed: bool = False
) -> TransceiverUpdate:
    negotiated = transceiver.negotiated
    extensions = tuple((e.uri, e.id) for e in negotiated.extmaps) if negotiated else ()
    return TransceiverUpdate(
        mid=transceiver.mid,
        mline_index=transceiver.mline_index,
        kind=transceiver.kind,
        negotiated=negotiated,
        send=transceiver.sending,
        receive=transceiver.receiving,
        stopped=transceiver.stopped,
        ssrc=transceiver.ssrc if transceiver.sending else None,
        rtx_ssrc=transceiver.rtx_ssrc if transceiver.sending else None,
        remote_ssrcs=transceiver.remote_ssrcs,
        remote_rtx_ssrcs=transceiver.remote_rtx_ssrcs,
        remote_rids=transceiver.remote_rids,
        remote_stream_ids=transceiver.remote_stream_ids,
        remote_track_id=transceiver.remote_track_id,
        extensions=extensions,
        track_added=track_added,
        track_removed=track_removed,
        transceiver=transceiver,
    )


# --- negotiation-needed -------------------------------------------------------------------------


def negotiation_needed(
    transceivers: Sequence[JsepTransceiver],
    local: SessionDescription | None,
    local_is_offer: bool,
    remote: SessionDescription | None,
) -> bool:
    """The transceiver steps of webrtc-pc §4.7.3 "check if negotiation is needed", against the
    current local description: a transceiver stopping but not stopped; one not stopped without
    an m-section; one whose sending msid differs from what we wrote; one whose direction differs
    from the negotiated one (in our offer: as we offered it; in our answer: intersected with the
    offer's, as RFC 8829 §5.3.1 answers)."""
    for transceiver in transceivers:
        if transceiver.stopped:
            continue
        if transceiver.stopping:
            return True
        media = local.media_by_mid(transceiver.mid) if local and transceiver.mid else None
        if local is None or media is None:
            return True
        if media.is_rejected:
            continue
        wanted = Direction(transceiver.direction)
        if wanted in (Direction.SENDRECV, Direction.SENDONLY) and transceiver.track_id:
            written = [(m.stream_id, m.track_id) for m in media.msids]
            expected = [(s, transceiver.track_id) for s in transceiver.stream_ids or ("-",)]
            if written != expected:
                return True
        if local_is_offer:
            if local.direction_for(media) != wanted:
                return True
        elif remote is not None:
            theirs = remote.media_by_mid(transceiver.mid or "")
            if theirs is not None and local.direction_for(media) != answer_direction(
                remote.direction_for(theirs), wanted
            ):
                return True
    return False
