"""RTCP packets: parse and serialize (RFC 3550 §6, RFC 5506, RFC 3611; feedback in
:mod:`trio_rtc.rtp.rtcp_feedback`).

Pure code over bytes. :func:`parse_rtcp_untrusted` is the entry point for peer input: it splits a
compound packet (RFC 3550 §6.1) into typed packets and raises :class:`RtpError`, and nothing
else, on anything malformed. It does not insist that a compound packet starts with SR or RR:
with reduced-size RTCP (RFC 5506 §3.1) a datagram may carry a lone PLI or NACK, and telling a
full compound from a reduced one is the session's business, not the codec's.

Packet types and feedback formats we do not interpret come back as :class:`UnknownRtcpPacket`,
:class:`~trio_rtc.rtp.rtcp_feedback.RtpFeedback` or
:class:`~trio_rtc.rtp.rtcp_feedback.PayloadFeedback`, and unknown XR blocks as
:class:`UnknownXrBlock`: a newer peer is not malformed. Each keeps its bytes, so it serializes
back as it came.

Serializing our own objects raises ``ValueError`` (not :class:`RtpError`) for a field out of
range. The P bit of a received packet is honoured and its padding dropped; ``serialize`` only
pads when a raw body is not a multiple of 32 bits.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from typing import TypeAlias

import attrs

from .errors import RtpError
from .rtcp_feedback import (
    FirEntry,
    FullIntraRequest,
    GenericNack,
    PayloadFeedback,
    PictureLossIndication,
    Remb,
    RtcpFeedbackPacket,
    RtpFeedback,
    TwccFeedback,
    TwccPacket,
    lost_from_nack_items,
    nack_items_from_lost,
    pack_rtcp_packet,
    parse_psfb_untrusted,
    parse_rtpfb_untrusted,
)

__all__ = [
    "ApplicationDefined",
    "Bye",
    "DlrrBlock",
    "DlrrItem",
    "ExtendedReport",
    "FirEntry",
    "FullIntraRequest",
    "GenericNack",
    "PayloadFeedback",
    "PictureLossIndication",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RrtrBlock",
    "RtcpPacket",
    "RtcpPacketType",
    "RtpError",
    "RtpFeedback",
    "SdesChunk",
    "SdesItem",
    "SdesItemType",
    "SenderReport",
    "SourceDescription",
    "TwccFeedback",
    "TwccPacket",
    "UnknownRtcpPacket",
    "UnknownXrBlock",
    "XrBlock",
    "lost_from_nack_items",
    "nack_items_from_lost",
    "parse_rtcp_untrusted",
    "serialize_compound",
]


class RtcpPacketType(enum.IntEnum):
    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204
    RTPFB = 205
    PSFB = 206
    XR = 207


class SdesItemType(enum.IntEnum):
    """RFC 3550 §6.5; 0 (END) never appears as an item, it terminates a chunk's list."""

    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP timestamp, RTP timestamp, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")
_APP_HEAD = struct.Struct("!I4s")
_XR_BLOCK_HEAD = struct.Struct("!BBH")
_RRTR = struct.Struct("!Q")
_DLRR_ITEM = struct.Struct("!III")

_MAX_COUNT = 31  # the 5-bit RC/SC field
_XR_RRTR = 4  # RFC 3611 §4.4
_XR_DLRR = 5  # RFC 3611 §4.5


def _pack(layout: struct.Struct, *values: int | bytes) -> bytes:
    try:
        return layout.pack(*values)
    except struct.error as exc:
        raise ValueError(f"RTCP field out of range: {exc}") from None


def _check_count(n: int, what: str) -> int:
    if n > _MAX_COUNT:
        raise ValueError(f"at most 31 {what} fit in one RTCP packet, got {n}")
    return n


# --- SR and RR (RFC 3550 §6.4) ---------------------------------------------------------------


@attrs.define
class ReportBlock:
    """Reception statistics about one source (RFC 3550 §6.4.1).

    ``packets_lost`` is the cumulative count, a signed 24-bit field: duplicates can make it
    negative. Serializing clamps it to the field the way RFC 3550 A.3 does. ``lsr`` and ``dlsr``
    are in the 16.16 NTP form (see :mod:`trio_rtc.rtp.ntp`).
    """

    ssrc: int
    fraction_lost: int = 0  # 8-bit fixed point, lost/expected * 256
    packets_lost: int = 0
    highest_sequence: int = 0  # extended: cycles << 16 | highest sequence number
    jitter: int = 0  # in RTP timestamp units
    lsr: int = 0
    dlsr: int = 0

    def serialize(self) -> bytes:
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"fraction lost is 8 bits, got {self.fraction_lost}")
        lost = max(-0x80_0000, min(self.packets_lost, 0x7F_FFFF)) & 0xFF_FFFF
        return _pack(
            _REPORT_BLOCK,
            self.ssrc,
            self.fraction_lost << 24 | lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _parse_report_blocks(body: bytes, offset: int, count: int) -> tuple[list[ReportBlock], int]:
    end = offset + count * _REPORT_BLOCK.size
    if end > len(body):
        raise RtpError(f"report count {count} exceeds the packet length")
    blocks = []
    for pos in range(offset, end, _REPORT_BLOCK.size):
        ssrc, loss, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(body, pos)
        lost = loss & 0xFF_FFFF
        if lost & 0x80_0000:
            lost -= 0x100_0000
        blocks.append(ReportBlock(ssrc, loss >> 24, lost, highest, jitter, lsr, dlsr))
    return blocks, end


@attrs.define
class SenderReport:
    """SR (RFC 3550 §6.4.1): what an active sender sent, plus its report blocks.

    ``ntp_timestamp`` is the 64-bit wallclock paired with ``rtp_timestamp``; ``extension`` holds
    profile-specific extension bytes after the report blocks, if any.
    """

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = attrs.field(factory=list)
    extension: bytes = b""

    def serialize(self) -> bytes:
        count = _check_count(len(self.reports), "report blocks")
        info = _pack(
            _SENDER_INFO,
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        blocks = b"".join(r.serialize() for r in self.reports)
        return pack_rtcp_packet(count, RtcpPacketType.SR, info + blocks + self.extension)


@attrs.define
class ReceiverReport:
    """RR (RFC 3550 §6.4.2): report blocks from a participant that is not sending."""

    ssrc: int
    reports: list[ReportBlock] = attrs.field(factory=list)
    extension: bytes = b""

    def serialize(self) -> bytes:
        count = _check_count(len(self.reports), "report blocks")
        blocks = b"".join(r.serialize() for r in self.reports)
        body = _pack(_U32, self.ssrc) + blocks + self.extension
        return pack_rtcp_packet(count, RtcpPacketType.RR, body)


def _parse_sr(count: int, body: bytes) -> SenderReport:
    if len(body) < _SENDER_INFO.size:
        raise RtpError("SR shorter than its sender info")
    ssrc, ntp, rtp, packets, octets = _SENDER_INFO.unpack_from(body)
    reports, end = _parse_report_blocks(body, _SENDER_INFO.size, count)
    return SenderReport(ssrc, ntp, rtp, packets, octets, reports, body[end:])


def _parse_rr(count: int, body: bytes) -> ReceiverReport:
    if len(body) < _U32.size:
        raise RtpError("RR shorter than its SSRC")
    (ssrc,) = _U32.unpack_from(body)
    reports, end = _parse_report_blocks(body, _U32.size, count)
    return ReceiverReport(ssrc, reports, body[end:])


# --- SDES (RFC 3550 §6.5) --------------------------------------------------------------------


@attrs.define
class SdesItem:
    type: int  # an SdesItemType, or another value from a newer peer
    value: bytes  # UTF-8 text for the standard items; PRIV keeps its prefix length inside

    def serialize(self) -> bytes:
        if not 1 <= self.type <= 0xFF:
            raise ValueError(f"SDES item type must be 1..255, got {self.type}")
        if len(self.value) > 0xFF:
            raise ValueError(f"SDES item of {len(self.value)} bytes exceeds 255")
        return bytes((self.type, len(self.value))) + self.value


@attrs.define
class SdesChunk:
    ssrc: int
    items: list[SdesItem] = attrs.field(factory=list)

    @property
    def cname(self) -> str | None:
        """The first CNAME item as text (invalid UTF-8 replaced), or None."""
        for item in self.items:
            if item.type == SdesItemType.CNAME:
                return item.value.decode("utf-8", "replace")
        return None

    def serialize(self) -> bytes:
        data = _pack(_U32, self.ssrc) + b"".join(i.serialize() for i in self.items)
        # One null octet ends the item list; more pad the chunk to 32 bits (§6.5).
        return data + bytes(4 - len(data) % 4)


@attrs.define
class SourceDescription:
    """SDES (RFC 3550 §6.5): items (CNAME above all) describing each source."""

    chunks: list[SdesChunk] = attrs.field(factory=list)

    def serialize(self) -> bytes:
        count = _check_count(len(self.chunks), "SDES chunks")
        body = b"".join(c.serialize() for c in self.chunks)
        return pack_rtcp_packet(count, RtcpPacketType.SDES, body)


def _parse_sdes(count: int, body: bytes) -> SourceDescription:
    chunks = []
    pos, end = 0, len(body)
    for _ in range(count):
        if pos + 4 > end:
            raise RtpError(f"SDES source count {count} exceeds the packet length")
        (ssrc,) = _U32.unpack_from(body, pos)
        pos += 4
        items = []
        while True:
            if pos >= end:
                raise RtpError("SDES chunk not terminated by a null item")
            item_type = body[pos]
            if item_type == 0:
                break
            if pos + 2 > end or pos + 2 + body[pos + 1] > end:
                raise RtpError("SDES item longer than the packet")
            length = body[pos + 1]
            items.append(SdesItem(item_type, body[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        # Skip the null octet and the padding to the next 32-bit boundary; chunks start aligned.
        pos = min(end, pos + 4 - pos % 4)
        chunks.append(SdesChunk(ssrc, items))
    if pos != end:
        raise RtpError("bytes after the last SDES chunk")
    return SourceDescription(chunks)


# --- BYE and APP (RFC 3550 §6.6, §6.7) -------------------------------------------------------


@attrs.define
class Bye:
    """BYE: these sources are leaving, optionally saying why (UTF-8 text, at most 255 bytes)."""

    ssrcs: list[int] = attrs.field(factory=list)
    reason: bytes | None = None

    def serialize(self) -> bytes:
        count = _check_count(len(self.ssrcs), "SSRCs in a BYE")
        body = b"".join(_pack(_U32, s) for s in self.ssrcs)
        if self.reason is not None:
            if len(self.reason) > 0xFF:
                raise ValueError(f"BYE reason of {len(self.reason)} bytes exceeds 255")
            body += bytes((len(self.reason),)) + self.reason
            body += bytes(-len(body) % 4)  # zero padding, not the P bit (§6.6)
        return pack_rtcp_packet(count, RtcpPacketType.BYE, body)


def _parse_bye(count: int, body: bytes) -> Bye:
    end = 4 * count
    if end > len(body):
        raise RtpError(f"BYE source count {count} exceeds the packet length")
    ssrcs = [s for (s,) in _U32.iter_unpack(body[:end])]
    reason = None
    if end < len(body):
        length = body[end]
        if end + 1 + length > len(body):
            raise RtpError("BYE reason longer than the packet")
        reason = body[end + 1 : end + 1 + length]
        if len(body) - (end + 1 + length) >= 4:
            raise RtpError("bytes after the BYE reason")
    return Bye(ssrcs, reason)


@attrs.define
class ApplicationDefined:
    """APP (RFC 3550 §6.7): experimental data under a four-character name."""

    subtype: int  # 5 bits, in the header's count field
    ssrc: int
    name: bytes  # 4 ASCII characters
    data: bytes = b""

    def serialize(self) -> bytes:
        if len(self.name) != 4:
            raise ValueError(f"APP name must be 4 bytes, got {self.name!r}")
        body = _pack(_APP_HEAD, self.ssrc, self.name) + self.data
        return pack_rtcp_packet(self.subtype, RtcpPacketType.APP, body)


def _parse_app(subtype: int, body: bytes) -> ApplicationDefined:
    if len(body) < _APP_HEAD.size:
        raise RtpError("APP shorter than its SSRC and name")
    ssrc, name = _APP_HEAD.unpack_from(body)
    return ApplicationDefined(subtype, ssrc, name, body[_APP_HEAD.size :])


# --- XR (RFC 3611) ---------------------------------------------------------------------------


@attrs.define
class RrtrBlock:
    """Receiver Reference Time (RFC 3611 §4.4): lets a receiver that does not send measure RTT,
    the way an SR's NTP timestamp does for senders."""

    ntp_timestamp: int

    def serialize(self) -> bytes:
        return _pack(_XR_BLOCK_HEAD, _XR_RRTR, 0, 2) + _pack(_RRTR, self.ntp_timestamp)


@attrs.define
class DlrrItem:
    ssrc: int
    lrr: int  # middle 32 bits of that receiver's last RRTR
    dlrr: int  # delay since then, 1/65536 s


@attrs.define
class DlrrBlock:
    """Delay since Last Receiver Report (RFC 3611 §4.5), the reply to RRTR blocks."""

    items: list[DlrrItem] = attrs.field(factory=list)

    def serialize(self) -> bytes:
        data = b"".join(_pack(_DLRR_ITEM, i.ssrc, i.lrr, i.dlrr) for i in self.items)
        return _pack(_XR_BLOCK_HEAD, _XR_DLRR, 0, 3 * len(self.items)) + data


@attrs.define
class UnknownXrBlock:
    block_type: int
    type_specific: int
    data: bytes = b""  # a multiple of 4 bytes

    def serialize(self) -> bytes:
        if len(self.data) % 4:
            raise ValueError("XR block contents must be a multiple of 32 bits")
        head = _pack(_XR_BLOCK_HEAD, self.block_type, self.type_specific, len(self.data) // 4)
        return head + self.data


XrBlock: TypeAlias = RrtrBlock | DlrrBlock | UnknownXrBlock


@attrs.define
class ExtendedReport:
    """XR (RFC 3611 §2): report blocks beyond SR/RR."""

    ssrc: int
    blocks: list[XrBlock] = attrs.field(factory=list)

    def serialize(self) -> bytes:
        body = _pack(_U32, self.ssrc) + b"".join(b.serialize() for b in self.blocks)
        return pack_rtcp_packet(0, RtcpPacketType.XR, body)


def _parse_xr(body: bytes) -> ExtendedReport:
    if len(body) < _U32.size:
        raise RtpError("XR shorter than its SSRC")
    (ssrc,) = _U32.unpack_from(body)
    blocks: list[XrBlock] = []
    pos, end = _U32.size, len(body)
    while pos < end:
        if pos + _XR_BLOCK_HEAD.size > end:
            raise RtpError("XR block header truncated")
        block_type, type_specific, words = _XR_BLOCK_HEAD.unpack_from(body, pos)
        start = pos + _XR_BLOCK_HEAD.size
        pos = start + 4 * words  # RFC 3611 §3: block length in words minus one (the header)
        if pos > end:
            raise RtpError("XR block length exceeds the packet")
        data = body[start:pos]
        if block_type == _XR_RRTR:
            if words != 2:
                raise RtpError("RRTR block length must be 2")
            blocks.append(RrtrBlock(_RRTR.unpack(data)[0]))
        elif block_type == _XR_DLRR:
            if words % 3:
                raise RtpError("DLRR block length must be a multiple of 3")
            items = [DlrrItem(*v) for v in _DLRR_ITEM.iter_unpack(data)]
            blocks.append(DlrrBlock(items))
        else:
            blocks.append(UnknownXrBlock(block_type, type_specific, data))
    return ExtendedReport(ssrc, blocks)


# --- Anything else, and compound packets (RFC 3550 §6.1) -------------------------------------


@attrs.define
class UnknownRtcpPacket:
    """A packet type we do not interpret, kept whole (``body`` is everything after the header)."""

    packet_type: int
    count: int  # the 5-bit field after the P bit
    body: bytes = b""

    def serialize(self) -> bytes:
        return pack_rtcp_packet(self.count, self.packet_type, self.body)


RtcpPacket: TypeAlias = (
    SenderReport
    | ReceiverReport
    | SourceDescription
    | Bye
    | ApplicationDefined
    | ExtendedReport
    | RtcpFeedbackPacket
    | UnknownRtcpPacket
)


def _parse_one(count: int, packet_type: int, body: bytes) -> RtcpPacket:
    if packet_type == RtcpPacketType.SR:
        return _parse_sr(count, body)
    if packet_type == RtcpPacketType.RR:
        return _parse_rr(count, body)
    if packet_type == RtcpPacketType.SDES:
        return _parse_sdes(count, body)
    if packet_type == RtcpPacketType.BYE:
        return _parse_bye(count, body)
    if packet_type == RtcpPacketType.APP:
        return _parse_app(count, body)
    if packet_type == RtcpPacketType.RTPFB:
        return parse_rtpfb_untrusted(count, body)
    if packet_type == RtcpPacketType.PSFB:
        return parse_psfb_untrusted(count, body)
    if packet_type == RtcpPacketType.XR:
        return _parse_xr(body)
    return UnknownRtcpPacket(packet_type, count, body)


def parse_rtcp_untrusted(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Every packet of a compound (or reduced-size) RTCP datagram, in order.

    Raises :class:`RtpError` when the datagram is empty, when a header does not say version 2,
    when a length runs past the datagram or padding past its packet, and when a packet's own
    counts and lengths disagree with its bytes.
    """
    buf = bytes(data)
    if not buf:
        raise RtpError("empty RTCP datagram")
    packets: list[RtcpPacket] = []
    pos, end = 0, len(buf)
    while pos < end:
        if pos + _HEADER.size > end:
            raise RtpError("RTCP header truncated")
        first, packet_type, words = _HEADER.unpack_from(buf, pos)
        if first >> 6 != 2:
            raise RtpError(f"RTCP version {first >> 6}, expected 2")
        packet_end = pos + 4 * (words + 1)  # §6.4.1: length in 32-bit words minus one
        if packet_end > end:
            raise RtpError("RTCP length exceeds the datagram")
        body = buf[pos + _HEADER.size : packet_end]
        if first & 0x20:
            # The last octet counts the padding octets, itself included (§6.4.1).
            padding = body[-1] if body else 0
            if padding == 0 or padding > len(body):
                raise RtpError("RTCP padding count is zero or exceeds the packet")
            body = body[:-padding]
        packets.append(_parse_one(first & 0x1F, packet_type, body))
        pos = packet_end
    return packets


def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """One datagram holding ``packets`` back to back (RFC 3550 §6.1).

    The caller chooses the order: a full compound starts with SR or RR and carries an SDES with
    a CNAME; a reduced-size one (RFC 5506) may be a single feedback message.
    """
    return b"".join(p.serialize() for p in packets)
