"""BUNDLE demultiplexing: which m-section (and which simulcast / RTX stream) a packet belongs to
(RFC 8843 §9.2, JSEP RFC 8829 §5.11, RFC 8852, RFC 4588).

Pure: no trio, no clock. The configuration is one :class:`MediaSection` per RTP m-section of the
BUNDLE group, built from the negotiated descriptions (the data section carries no RTP and is not
listed). :meth:`RtpDemuxer.route_rtp` maps a parsed RTP packet to an :class:`SsrcBinding`, in
this order:

1. a known SSRC: signaled with ``a=ssrc`` / ``a=ssrc-group:FID``, or learned earlier. A MID
   header extension that names another m-section moves the SSRC there (RFC 8843 §9.2: the MID
   updates the SSRC mapping);
2. the MID header extension (RFC 8843 §15) of an unknown SSRC: the SSRC is learned for that mid,
   with the RID or repaired RID (RFC 8852 §3) it carries, if the section uses simulcast;
3. without a MID, a RID or repaired RID that exactly one m-section lists;
4. a payload type that exactly one m-section uses (RFC 8843 §9.2's payload type table).

A packet that matches nothing, names a mid or rid nobody negotiated, carries a malformed MID/RID,
or has a payload type its section does not use, is dropped and counted in
:attr:`RtpDemuxer.drops` by :class:`DropReason`. Learning is bounded: at most
``max_learned_ssrcs`` learned bindings, the oldest forgotten first, and the per-rid tables only
hold rids the configuration lists, so a peer inventing SSRCs or rids costs a fixed amount of
memory.

:meth:`RtpDemuxer.route_rtcp` routes the packets of a compound by the SSRCs inside them: SR,
SDES and BYE from a remote source go to that source's stream; report blocks, NACK, PLI, FIR and
DLRR about one of our SSRCs go to our sending stream; transport-wide feedback and REMB go to the
transport (``mid`` None).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from .errors import RtpError
from .extensions import decode_sdes_text_untrusted
from .packet import RtpPacket
from .rtcp import (
    Bye,
    DlrrBlock,
    ExtendedReport,
    FullIntraRequest,
    GenericNack,
    PayloadFeedback,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    RtpFeedback,
    SenderReport,
    SourceDescription,
    TwccFeedback,
)

__all__ = [
    "DEFAULT_MAX_LEARNED_SSRCS",
    "DropReason",
    "MediaSection",
    "RtcpRoute",
    "RtpDemuxer",
    "SsrcBinding",
]

DEFAULT_MAX_LEARNED_SSRCS = 1000


def _int_set(values: Iterable[int]) -> frozenset[int]:
    return frozenset(values)


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _pairs(values: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((primary, repair) for primary, repair in values)


@attrs.frozen
class MediaSection:
    """What the demultiplexer needs to know of one negotiated RTP m-section.

    ``payload_types`` are every payload type the section receives (media, RTX, FEC);
    ``rtx_payload_types`` the RTX ones among them (RFC 4588 ``a=rtpmap:... rtx``). ``ssrcs`` are
    the peer's ``a=ssrc`` values and ``fid_groups`` its ``a=ssrc-group:FID <primary> <rtx>``
    pairs. ``rids`` are the peer's ``a=rid:... send`` ids (RFC 8851), empty without simulcast.
    ``local_ssrcs`` are the SSRCs we send in this section (media and RTX), so RTCP about them
    finds its way back. The extension ids are those of the section's ``a=extmap`` lines for the
    MID, RID and repaired-RID URIs; RFC 8843 §9.1 has one id per URI across a BUNDLE group.
    """

    mid: str
    payload_types: frozenset[int] = attrs.field(factory=frozenset, converter=_int_set)
    rtx_payload_types: frozenset[int] = attrs.field(factory=frozenset, converter=_int_set)
    ssrcs: frozenset[int] = attrs.field(factory=frozenset, converter=_int_set)
    fid_groups: tuple[tuple[int, int], ...] = attrs.field(factory=tuple, converter=_pairs)
    rids: tuple[str, ...] = attrs.field(factory=tuple, converter=_str_tuple)
    local_ssrcs: frozenset[int] = attrs.field(factory=frozenset, converter=_int_set)
    mid_extension_id: int | None = None
    rid_extension_id: int | None = None
    repaired_rid_extension_id: int | None = None

    def accepts_payload_type(self, payload_type: int) -> bool:
        return payload_type in self.payload_types or payload_type in self.rtx_payload_types


@attrs.define(eq=False, slots=True)
class SsrcBinding:
    """Where packets of one remote SSRC go. Owned by the demultiplexer: read, do not modify.

    ``repair`` marks an RTX stream (RFC 4588); ``primary_ssrc`` is the media SSRC it repairs,
    once known (from FID, or from the stream with the same rid). ``rid`` is the simulcast
    stream's RID (for an RTX stream, the RID it repairs).
    """

    ssrc: int
    section: MediaSection
    rid: str | None = None
    repair: bool = False
    primary_ssrc: int | None = None
    signaled: bool = False

    @property
    def mid(self) -> str:
        return self.section.mid


class DropReason(enum.Enum):
    UNKNOWN_MID = "unknown_mid"  # the MID names no RTP m-section of the group
    UNKNOWN_RID = "unknown_rid"  # a RID / repaired RID the section (or group) does not list
    MALFORMED_EXTENSION = "malformed_extension"  # an empty or non-UTF-8 MID / RID
    PAYLOAD_TYPE_MISMATCH = "payload_type_mismatch"  # routed, but the section lacks the PT
    UNKNOWN_PAYLOAD_TYPE = "unknown_payload_type"  # unknown SSRC, no MID/RID, PT unused
    AMBIGUOUS_PAYLOAD_TYPE = "ambiguous_payload_type"  # unknown SSRC, PT in several sections
    RTCP_UNKNOWN_SSRC = "rtcp_unknown_ssrc"  # an RTCP item about an SSRC we cannot place
    RTCP_UNROUTABLE = "rtcp_unroutable"  # APP and packet types we do not interpret


@attrs.frozen
class RtcpRoute:
    """One piece of a compound RTCP packet and where it goes.

    ``local`` True: about our sending SSRC ``ssrc`` (a report block, NACK, PLI, FIR, DLRR), for
    the sender of section ``mid``. ``local`` False: from the peer's SSRC ``ssrc`` (SR, SDES,
    BYE, RRTR), for the receiver of ``mid``. ``mid`` None: transport-wide feedback and REMB,
    for the congestion controller. ``report_block`` is set for report blocks, whose ``packet``
    is the SR or RR that carried them.
    """

    mid: str | None
    ssrc: int
    local: bool
    packet: RtcpPacket
    report_block: ReportBlock | None = None


class RtpDemuxer:
    """Routes the RTP and RTCP packets of one BUNDLE transport to its m-sections."""

    def __init__(
        self,
        sections: Iterable[MediaSection],
        *,
        max_learned_ssrcs: int = DEFAULT_MAX_LEARNED_SSRCS,
    ) -> None:
        if max_learned_ssrcs < 1:
            raise ValueError(f"max_learned_ssrcs must be at least 1, got {max_learned_ssrcs}")
        self.max_learned_ssrcs = max_learned_ssrcs
        self.sections: dict[str, MediaSection] = {}
        self.drops: dict[DropReason, int] = dict.fromkeys(DropReason, 0)
        self.packets_routed = 0
        self._routes: dict[int, SsrcBinding] = {}
        self._learned: dict[int, None] = {}  # insertion order = age, for forgetting the oldest
        self._local: dict[int, str] = {}
        self._by_payload_type: dict[int, list[MediaSection]] = {}
        self._by_rid: dict[str, list[MediaSection]] = {}
        # (mid, rid) -> SSRC of the media stream / of its RTX stream; keys only configured rids.
        self._rid_primary: dict[tuple[str, str], int] = {}
        self._rid_repair: dict[tuple[str, str], int] = {}
        mid_ids: set[int] = set()
        rid_ids: set[int] = set()
        repaired_ids: set[int] = set()
        for section in sections:
            if section.mid in self.sections:
                raise ValueError(f"mid {section.mid!r} appears in two m-sections")
            self.sections[section.mid] = section
            for pt in section.payload_types | section.rtx_payload_types:
                self._by_payload_type.setdefault(pt, []).append(section)
            for rid in section.rids:
                self._by_rid.setdefault(rid, []).append(section)
            for ssrc in section.local_ssrcs:
                self._local[ssrc] = section.mid
            if section.mid_extension_id is not None:
                mid_ids.add(section.mid_extension_id)
            if section.rid_extension_id is not None:
                rid_ids.add(section.rid_extension_id)
            if section.repaired_rid_extension_id is not None:
                repaired_ids.add(section.repaired_rid_extension_id)
            self._signal(section)
        self._mid_ids = tuple(sorted(mid_ids))
        self._rid_ids = tuple(sorted(rid_ids))
        self._repaired_ids = tuple(sorted(repaired_ids))

    def _signal(self, section: MediaSection) -> None:
        repairs = {repair: primary for primary, repair in section.fid_groups}
        for ssrc in sorted(section.ssrcs | repairs.keys() | {p for p, _ in section.fid_groups}):
            other = self._routes.get(ssrc)
            if other is not None:
                raise ValueError(
                    f"SSRC {ssrc} is signaled in mids {other.mid!r} and {section.mid!r}"
                )
            primary = repairs.get(ssrc)
            self._routes[ssrc] = SsrcBinding(
                ssrc, section, repair=primary is not None, primary_ssrc=primary, signaled=True
            )

    # --- queries ---------------------------------------------------------------------------

    def binding(self, ssrc: int) -> SsrcBinding | None:
        """The current binding of a remote SSRC, signaled or learned."""
        return self._routes.get(ssrc)

    @property
    def learned_count(self) -> int:
        return len(self._learned)

    @property
    def route_count(self) -> int:
        return len(self._routes)

    def local_mid(self, ssrc: int) -> str | None:
        """The mid of one of our sending SSRCs."""
        return self._local.get(ssrc)

    def forget(self, ssrc: int) -> None:
        """Drop a learned binding (a BYE, a timeout); signaled bindings stay."""
        if ssrc in self._learned:
            del self._learned[ssrc]
            self._unpair(self._routes.pop(ssrc))

    # --- RTP -------------------------------------------------------------------------------

    def route_rtp(self, packet: RtpPacket) -> SsrcBinding | None:
        """The binding for ``packet``, learning its SSRC when needed; None means dropped."""
        binding = self._routes.get(packet.ssrc)
        mid: str | None = None
        extensions = packet.extensions
        if extensions and self._mid_ids:
            try:
                mid = self._read(extensions, self._mid_ids)
            except RtpError:
                self._drop(DropReason.MALFORMED_EXTENSION)
                return None
        if binding is not None and (mid is None or mid == binding.section.mid):
            if not binding.section.accepts_payload_type(packet.payload_type):
                self._drop(DropReason.PAYLOAD_TYPE_MISMATCH)
                return None
            self.packets_routed += 1
            return binding
        if mid is not None:
            section = self.sections.get(mid)
            if section is None:
                self._drop(DropReason.UNKNOWN_MID)
                return None
            return self._learn(packet, section)
        # No MID: a RID or repaired RID that only one section lists still tells (RFC 8852).
        if extensions and (self._rid_ids or self._repaired_ids):
            try:
                rid = self._read(extensions, self._repaired_ids) or self._read(
                    extensions, self._rid_ids
                )
            except RtpError:
                self._drop(DropReason.MALFORMED_EXTENSION)
                return None
            if rid is not None:
                candidates = self._by_rid.get(rid, ())
                if len(candidates) != 1:
                    self._drop(DropReason.UNKNOWN_RID)
                    return None
                return self._learn(packet, candidates[0])
        candidates = self._by_payload_type.get(packet.payload_type, ())
        if not candidates:
            self._drop(DropReason.UNKNOWN_PAYLOAD_TYPE)
            return None
        if len(candidates) > 1:
            self._drop(DropReason.AMBIGUOUS_PAYLOAD_TYPE)
            return None
        return self._learn(packet, candidates[0])

    @staticmethod
    def _read(extensions: dict[int, bytes], ids: tuple[int, ...]) -> str | None:
        for ext_id in ids:
            raw = extensions.get(ext_id)
            if raw is not None:
                return decode_sdes_text_untrusted(raw)
        return None

    def _drop(self, reason: DropReason) -> None:
        self.drops[reason] += 1

    def _learn(self, packet: RtpPacket, section: MediaSection) -> SsrcBinding | None:
        if not section.accepts_payload_type(packet.payload_type):
            self._drop(DropReason.PAYLOAD_TYPE_MISMATCH)
            return None
        repair = packet.payload_type in section.rtx_payload_types
        rid: str | None = None
        if section.rids:
            extensions = packet.extensions
            try:
                repaired = self._section_text(extensions, section.repaired_rid_extension_id)
                rid = repaired or self._section_text(extensions, section.rid_extension_id)
            except RtpError:
                self._drop(DropReason.MALFORMED_EXTENSION)
                return None
            if rid is not None and rid not in section.rids:
                self._drop(DropReason.UNKNOWN_RID)
                return None
            repair = repair or repaired is not None
        ssrc = packet.ssrc
        old = self._routes.get(ssrc)
        binding = SsrcBinding(ssrc, section, rid, repair, signaled=old is not None and old.signaled)
        if old is not None:
            self._unpair(old)
        if rid is not None:
            key = (section.mid, rid)
            if repair:
                self._rid_repair[key] = ssrc
                binding.primary_ssrc = self._rid_primary.get(key)
            else:
                self._rid_primary[key] = ssrc
                repair_ssrc = self._rid_repair.get(key)
                repair_binding = self._routes.get(repair_ssrc) if repair_ssrc is not None else None
                if repair_binding is not None:
                    repair_binding.primary_ssrc = ssrc
        self._routes[ssrc] = binding
        if not binding.signaled:
            # Re-learning moves the SSRC to the young end; past the bound the oldest goes.
            self._learned.pop(ssrc, None)
            self._learned[ssrc] = None
            while len(self._learned) > self.max_learned_ssrcs:
                oldest = next(iter(self._learned))
                self.forget(oldest)
        self.packets_routed += 1
        return binding

    @staticmethod
    def _section_text(extensions: dict[int, bytes], ext_id: int | None) -> str | None:
        if ext_id is None:
            return None
        raw = extensions.get(ext_id)
        return None if raw is None else decode_sdes_text_untrusted(raw)

    def _unpair(self, binding: SsrcBinding) -> None:
        if binding.rid is None:
            return
        key = (binding.mid, binding.rid)
        table = self._rid_repair if binding.repair else self._rid_primary
        if table.get(key) == binding.ssrc:
            del table[key]

    # --- RTCP ------------------------------------------------------------------------------

    def route_rtcp(self, packets: Iterable[RtcpPacket]) -> list[RtcpRoute]:
        """Where each part of a parsed compound goes; unplaceable parts are counted drops."""
        routes: list[RtcpRoute] = []
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._remote(routes, packet.ssrc, packet)
                self._blocks(routes, packet, packet.reports)
            elif isinstance(packet, ReceiverReport):
                self._blocks(routes, packet, packet.reports)
            elif isinstance(packet, SourceDescription):
                for chunk in packet.chunks:
                    self._remote(routes, chunk.ssrc, packet)
            elif isinstance(packet, Bye):
                for ssrc in packet.ssrcs:
                    self._remote(routes, ssrc, packet)
                    self.forget(ssrc)
            elif isinstance(packet, TwccFeedback | Remb):
                # Congestion control feedback is about the transport, whatever SSRC it names.
                routes.append(RtcpRoute(None, packet.media_ssrc, True, packet))
            elif isinstance(packet, FullIntraRequest):
                for entry in packet.entries:
                    self._local_route(routes, entry.ssrc, packet)
            elif isinstance(
                packet, GenericNack | PictureLossIndication | RtpFeedback | PayloadFeedback
            ):
                self._local_route(routes, packet.media_ssrc, packet)
            elif isinstance(packet, ExtendedReport):
                self._xr(routes, packet)
            else:
                self._drop(DropReason.RTCP_UNROUTABLE)
        return routes

    def _remote(self, routes: list[RtcpRoute], ssrc: int, packet: RtcpPacket) -> None:
        binding = self._routes.get(ssrc)
        if binding is None:
            self._drop(DropReason.RTCP_UNKNOWN_SSRC)
        else:
            routes.append(RtcpRoute(binding.mid, ssrc, False, packet))

    def _local_route(
        self,
        routes: list[RtcpRoute],
        ssrc: int,
        packet: RtcpPacket,
        block: ReportBlock | None = None,
    ) -> None:
        mid = self._local.get(ssrc)
        if mid is None:
            self._drop(DropReason.RTCP_UNKNOWN_SSRC)
        else:
            routes.append(RtcpRoute(mid, ssrc, True, packet, block))

    def _blocks(
        self, routes: list[RtcpRoute], packet: RtcpPacket, blocks: list[ReportBlock]
    ) -> None:
        for block in blocks:
            self._local_route(routes, block.ssrc, packet, block)

    def _xr(self, routes: list[RtcpRoute], packet: ExtendedReport) -> None:
        has_dlrr = False
        for block in packet.blocks:
            if isinstance(block, DlrrBlock):
                has_dlrr = True
                for item in block.items:
                    self._local_route(routes, item.ssrc, packet)
        if not has_dlrr or packet.ssrc in self._routes:
            self._remote(routes, packet.ssrc, packet)
