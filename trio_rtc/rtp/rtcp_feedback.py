"""RTCP feedback messages: RTPFB (205) and PSFB (206) from RFC 4585 §6, with RFC 5104 FIR,
transport-wide congestion control feedback and REMB.

Every feedback message starts with the same 12 bytes (RFC 4585 §6.1): the RTCP header with the
5-bit FMT in place of the count, the SSRC of the packet sender and the SSRC of the media source;
the rest is the FCI. :mod:`trio_rtc.rtp.rtcp` splits compound packets and hands the body of each
RTPFB/PSFB packet to :func:`parse_rtpfb_untrusted` / :func:`parse_psfb_untrusted`, which raise
only :class:`RtpError`. A FMT we do not know is kept whole as :class:`RtpFeedback` /
:class:`PayloadFeedback` rather than refused.

Work and memory are bounded by the packet: a NACK item expands to at most 17 sequence numbers
per 4 bytes, and a transport-wide feedback describes at most 65535 packets (its 16-bit status
count), with every chunk and delta it claims actually present.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import NamedTuple, TypeAlias

import attrs

from .errors import RtpError

__all__ = [
    "PSFB",
    "RTPFB",
    "FirEntry",
    "FullIntraRequest",
    "GenericNack",
    "PayloadFeedback",
    "PictureLossIndication",
    "Remb",
    "RtpFeedback",
    "TwccFeedback",
    "TwccPacket",
    "lost_from_nack_items",
    "nack_items_from_lost",
    "pack_rtcp_packet",
    "parse_psfb_untrusted",
    "parse_rtpfb_untrusted",
]

RTPFB = 205  # transport layer feedback (RFC 4585 §6.2)
PSFB = 206  # payload-specific feedback (RFC 4585 §6.3)

# FMT values.
_FMT_NACK = 1  # RFC 4585 §6.2.1
_FMT_TWCC = 15  # draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1
_FMT_PLI = 1  # RFC 4585 §6.3.1
_FMT_FIR = 4  # RFC 5104 §4.3.1
_FMT_AFB = 15  # application layer feedback (RFC 4585 §6.4), which REMB rides on

_HEADER = struct.Struct("!BBH")
_SSRCS = struct.Struct("!II")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_NACK_ITEM = struct.Struct("!HH")
_FIR_ENTRY = struct.Struct("!IB3x")
_TWCC_HEAD = struct.Struct("!HHI")
_REMB_HEAD = struct.Struct("!4sBBH")
_LARGE_DELTA = struct.Struct("!h")

_REMB_ID = b"REMB"
# TWCC receive deltas count 250 µs ticks; the reference time counts 64 ms (= 256 ticks).
_TICK_US = 250
_REFERENCE_US = 64_000
_MAX_RUN_LENGTH = 0x1FFF
# Status symbols (§3.1.1).
_NOT_RECEIVED = 0
_SMALL = 1
_LARGE = 2


def pack_rtcp_packet(count: int, packet_type: int, body: bytes) -> bytes:
    """One RTCP packet: header (V=2, 5-bit count or FMT, type, length in words minus one) + body.

    Bodies are normally a multiple of 32 bits. One that is not (a raw body parsed from a padded
    packet) is padded the RFC 3550 §6.4.1 way: the P bit, and the last octet counts the padding.
    """
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP count/FMT must fit in 5 bits, got {count}")
    first = 0x80 | count
    pad = -len(body) % 4
    if pad:
        first |= 0x20
        body = body + bytes(pad - 1) + bytes((pad,))
    words = (len(body) + 4) // 4 - 1
    if words > 0xFFFF:
        raise ValueError(f"RTCP packet of {len(body) + 4} bytes exceeds the 16-bit length field")
    return _pack(_HEADER, first, packet_type, words) + body


def _pack(layout: struct.Struct, *values: int | bytes) -> bytes:
    # Serializing our own objects: an out-of-range field is the caller's bug, reported as
    # ValueError rather than struct.error.
    try:
        return layout.pack(*values)
    except struct.error as exc:
        raise ValueError(f"RTCP field out of range: {exc}") from None


def _feedback(fmt: int, packet_type: int, sender_ssrc: int, media_ssrc: int, fci: bytes) -> bytes:
    return pack_rtcp_packet(fmt, packet_type, _pack(_SSRCS, sender_ssrc, media_ssrc) + fci)


# --- RTPFB -----------------------------------------------------------------------------------


def nack_items_from_lost(lost: Iterable[int]) -> list[tuple[int, int]]:
    """Generic NACK items (PID, BLP) covering ``lost`` sequence numbers (taken modulo 2**16).

    The numbers are ordered the way they were sent: starting after the largest gap on the
    16-bit circle, so that ``65534, 65535, 0, 1`` is one run and becomes one item. Each item
    names a PID and, in BLP bit i, the loss of PID + i + 1 (RFC 4585 §6.2.1).
    """
    seqs = sorted({s & 0xFFFF for s in lost})
    if not seqs:
        return []
    start = max(range(len(seqs)), key=lambda i: (seqs[i] - seqs[i - 1]) & 0xFFFF)
    ordered = seqs[start:] + seqs[:start]
    items: list[tuple[int, int]] = []
    pid, blp = ordered[0], 0
    for seq in ordered[1:]:
        offset = (seq - pid) & 0xFFFF
        if offset <= 16:
            blp |= 1 << (offset - 1)
        else:
            items.append((pid, blp))
            pid, blp = seq, 0
    items.append((pid, blp))
    return items


def lost_from_nack_items(items: Iterable[tuple[int, int]]) -> list[int]:
    """The sequence numbers a list of (PID, BLP) items reports lost, in order, without repeats."""
    out: list[int] = []
    seen: set[int] = set()
    for pid, blp in items:
        candidates = [pid] + [(pid + i + 1) & 0xFFFF for i in range(16) if blp >> i & 1]
        for seq in candidates:
            if seq not in seen:
                seen.add(seq)
                out.append(seq)
    return out


@attrs.define
class GenericNack:
    """RFC 4585 §6.2.1: the media sender should retransmit these packets."""

    sender_ssrc: int
    media_ssrc: int
    items: list[tuple[int, int]] = attrs.field(factory=list)  # (PID, BLP)

    @classmethod
    def from_lost(cls, sender_ssrc: int, media_ssrc: int, lost: Iterable[int]) -> GenericNack:
        return cls(sender_ssrc, media_ssrc, nack_items_from_lost(lost))

    def lost_sequence_numbers(self) -> list[int]:
        return lost_from_nack_items(self.items)

    def serialize(self) -> bytes:
        fci = b"".join(_pack(_NACK_ITEM, pid, blp) for pid, blp in self.items)
        return _feedback(_FMT_NACK, RTPFB, self.sender_ssrc, self.media_ssrc, fci)


class TwccPacket(NamedTuple):
    """One packet in a transport-wide feedback: its transport-wide sequence number, whether it
    arrived, and its receive delta in µs (from the previous received packet, or from the
    reference time for the first one; 0 when not received)."""

    sequence: int
    received: bool
    delta_us: int


@attrs.define
class TwccFeedback:
    """Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
    extensions-01 §3.1): for consecutive sequence numbers from ``packets[0].sequence``, which
    arrived and when.

    ``reference_time`` is the raw 24-bit field in 64 ms units: it wraps, so compare two of them
    modulo 2**24. ``feedback_count`` is the 8-bit feedback packet count, also wrapping.
    Deltas are sent in 250 µs ticks; :meth:`serialize` rounds other values to the nearest tick.
    """

    sender_ssrc: int
    media_ssrc: int
    reference_time: int
    feedback_count: int
    packets: list[TwccPacket] = attrs.field(factory=list)

    @property
    def base_sequence(self) -> int:
        return self.packets[0].sequence if self.packets else 0

    @classmethod
    def from_arrival_times(
        cls,
        sender_ssrc: int,
        media_ssrc: int,
        feedback_count: int,
        base_sequence: int,
        arrival_times_us: Sequence[int | None],
    ) -> TwccFeedback:
        """Feedback for packets ``base_sequence, base_sequence + 1, ...`` that arrived at the
        given times in µs (any non-negative epoch; None for a packet not received).

        Deltas are quantized against the running total of ticks already sent, so rounding does
        not accumulate; the receiver reconstructs every time within 125 µs.
        """
        first = next((t for t in arrival_times_us if t is not None), 0)
        if first < 0:
            raise ValueError("arrival times must not be negative")
        reference = first // _REFERENCE_US
        sent_ticks = reference * (_REFERENCE_US // _TICK_US)
        packets: list[TwccPacket] = []
        for i, arrival in enumerate(arrival_times_us):
            sequence = (base_sequence + i) & 0xFFFF
            if arrival is None:
                packets.append(TwccPacket(sequence, False, 0))
                continue
            ticks = (arrival + _TICK_US // 2) // _TICK_US
            packets.append(TwccPacket(sequence, True, (ticks - sent_ticks) * _TICK_US))
            sent_ticks = ticks
        return cls(sender_ssrc, media_ssrc, reference & 0xFFFFFF, feedback_count, packets)

    def arrival_times_us(self) -> list[tuple[int, int | None]]:
        """(sequence, arrival time in µs or None), in the time base of ``reference_time``."""
        now = self.reference_time * _REFERENCE_US
        out: list[tuple[int, int | None]] = []
        for packet in self.packets:
            if packet.received:
                now += packet.delta_us
                out.append((packet.sequence, now))
            else:
                out.append((packet.sequence, None))
        return out

    def serialize(self) -> bytes:
        if not self.packets:
            raise ValueError("a transport-wide feedback describes at least one packet")
        if len(self.packets) > 0xFFFF:
            raise ValueError("a transport-wide feedback describes at most 65535 packets")
        base = self.packets[0].sequence
        symbols: list[int] = []
        deltas: list[bytes] = []
        for i, packet in enumerate(self.packets):
            if packet.sequence != (base + i) & 0xFFFF:
                raise ValueError("transport-wide feedback sequence numbers must be consecutive")
            if not packet.received:
                symbols.append(_NOT_RECEIVED)
                continue
            ticks = (packet.delta_us + _TICK_US // 2) // _TICK_US
            if 0 <= ticks <= 0xFF:
                symbols.append(_SMALL)
                deltas.append(bytes((ticks,)))
            else:
                symbols.append(_LARGE)
                deltas.append(_pack(_LARGE_DELTA, ticks))
        if not (0 <= self.reference_time <= 0xFFFFFF and 0 <= self.feedback_count <= 0xFF):
            raise ValueError("reference time is 24 bits and feedback count 8 bits")
        head = _pack(_TWCC_HEAD, base, len(symbols), self.reference_time << 8 | self.feedback_count)
        fci = head + b"".join(_U16.pack(c) for c in _encode_chunks(symbols)) + b"".join(deltas)
        # Pad the FCI with zeros to 32 bits: the receiver stops reading after the last delta.
        fci += bytes(-len(fci) % 4)
        return _feedback(_FMT_TWCC, RTPFB, self.sender_ssrc, self.media_ssrc, fci)


def _encode_chunks(symbols: list[int]) -> list[int]:
    """Packet status chunks for ``symbols`` (§3.1.3, §3.1.4).

    Greedy: a run-length chunk when at least a vector's worth of identical symbols follows (14,
    or 7 for large deltas, where a two-bit vector would be needed), else a one-bit vector when the
    next 14 symbols need no large delta, else a two-bit vector of 7. A vector may only run past
    the status count at the very end, which is where the slicing pads it with "not received".
    """
    chunks: list[int] = []
    i, n = 0, len(symbols)
    while i < n:
        symbol = symbols[i]
        run = 1
        while i + run < n and run < _MAX_RUN_LENGTH and symbols[i + run] == symbol:
            run += 1
        if run >= 14 or (symbol == _LARGE and run >= 7) or i + run == n:
            chunks.append(symbol << 13 | run)
            i += run
        elif _LARGE not in symbols[i : i + 14]:
            chunk = 0x8000
            for k, s in enumerate(symbols[i : i + 14]):
                chunk |= s << (13 - k)
            chunks.append(chunk)
            i += 14
        else:
            chunk = 0xC000
            for k, s in enumerate(symbols[i : i + 7]):
                chunk |= s << (12 - 2 * k)
            chunks.append(chunk)
            i += 7
    return chunks


def _parse_twcc(sender_ssrc: int, media_ssrc: int, fci: bytes) -> TwccFeedback:
    if len(fci) < _TWCC_HEAD.size:
        raise RtpError("transport-wide feedback FCI shorter than its 8-byte header")
    base, count, reference_and_count = _TWCC_HEAD.unpack_from(fci)
    if count == 0:
        raise RtpError("transport-wide feedback with a packet status count of 0")
    symbols = bytearray()
    pos, end = _TWCC_HEAD.size, len(fci)
    # Each chunk costs the peer 2 bytes and cannot describe more packets than the status count
    # still owes, so the loop and the list are bounded by both. The worst case, 65535 packets
    # from eight run-length chunks, is a few MB for a moment: SRTCP authenticates the sender.
    while len(symbols) < count:
        if pos + 2 > end:
            raise RtpError("transport-wide feedback chunks end before the packet status count")
        (chunk,) = _U16.unpack_from(fci, pos)
        pos += 2
        remaining = count - len(symbols)
        if not chunk & 0x8000:
            symbol, run = chunk >> 13 & 3, chunk & _MAX_RUN_LENGTH
            if run > remaining:
                raise RtpError("transport-wide feedback run length beyond the status count")
            symbols += bytes((symbol,)) * run
        elif not chunk & 0x4000:
            symbols.extend(chunk >> (13 - k) & 1 for k in range(min(14, remaining)))
        else:
            symbols.extend(chunk >> (12 - 2 * k) & 3 for k in range(min(7, remaining)))
    if 3 in symbols:
        raise RtpError("transport-wide feedback uses the reserved status symbol 11")
    # Check the deltas add up to the bytes present before building anything from them.
    delta_bytes = symbols.count(_SMALL) + 2 * symbols.count(_LARGE)
    if pos + delta_bytes > end:
        raise RtpError("transport-wide feedback receive deltas end early")
    if end - pos - delta_bytes >= 4:
        raise RtpError("transport-wide feedback has data after its receive deltas")
    packets: list[TwccPacket] = []
    for i, symbol in enumerate(symbols):
        sequence = (base + i) & 0xFFFF
        if symbol == _NOT_RECEIVED:
            packets.append(TwccPacket(sequence, False, 0))
        elif symbol == _SMALL:
            packets.append(TwccPacket(sequence, True, fci[pos] * _TICK_US))
            pos += 1
        else:
            (ticks,) = _LARGE_DELTA.unpack_from(fci, pos)
            packets.append(TwccPacket(sequence, True, ticks * _TICK_US))
            pos += 2
    return TwccFeedback(
        sender_ssrc, media_ssrc, reference_and_count >> 8, reference_and_count & 0xFF, packets
    )


@attrs.define
class RtpFeedback:
    """An RTPFB message with a FMT we do not interpret (TMMBR, TMMBN, ...), kept whole."""

    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""

    def serialize(self) -> bytes:
        return _feedback(self.fmt, RTPFB, self.sender_ssrc, self.media_ssrc, self.fci)


def _split_feedback(body: bytes) -> tuple[int, int, bytes]:
    if len(body) < _SSRCS.size:
        raise RtpError("feedback message shorter than its two SSRCs")
    sender_ssrc, media_ssrc = _SSRCS.unpack_from(body)
    return sender_ssrc, media_ssrc, body[_SSRCS.size :]


def parse_rtpfb_untrusted(fmt: int, body: bytes) -> GenericNack | TwccFeedback | RtpFeedback:
    """An RTPFB message from its FMT and the bytes after the 4-byte RTCP header."""
    sender_ssrc, media_ssrc, fci = _split_feedback(body)
    if fmt == _FMT_NACK:
        if not fci or len(fci) % 4:
            raise RtpError("generic NACK FCI must hold one or more 4-byte items")
        items = [_NACK_ITEM.unpack_from(fci, pos) for pos in range(0, len(fci), 4)]
        return GenericNack(sender_ssrc, media_ssrc, items)
    if fmt == _FMT_TWCC:
        return _parse_twcc(sender_ssrc, media_ssrc, fci)
    return RtpFeedback(fmt, sender_ssrc, media_ssrc, fci)


# --- PSFB ------------------------------------------------------------------------------------


@attrs.define
class PictureLossIndication:
    """RFC 4585 §6.3.1: the decoder lost picture data; the sender should send a key frame."""

    sender_ssrc: int
    media_ssrc: int

    def serialize(self) -> bytes:
        return _feedback(_FMT_PLI, PSFB, self.sender_ssrc, self.media_ssrc, b"")


@attrs.define
class FirEntry:
    ssrc: int
    sequence_number: int  # 8 bits; a repeated request keeps the number of the first (§4.3.1.1)


@attrs.define
class FullIntraRequest:
    """RFC 5104 §4.3.1: a decoder refresh point, requested of each SSRC in ``entries``.

    The media source SSRC of the common header is unused for FIR and set to 0 (§4.3.1.2).
    """

    sender_ssrc: int
    entries: list[FirEntry] = attrs.field(factory=list)
    media_ssrc: int = 0

    def serialize(self) -> bytes:
        fci = b"".join(_pack(_FIR_ENTRY, e.ssrc, e.sequence_number) for e in self.entries)
        return _feedback(_FMT_FIR, PSFB, self.sender_ssrc, self.media_ssrc, fci)


@attrs.define
class Remb:
    """Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb-03 §2.2), an application
    layer feedback message: the total bitrate in bit/s the receiver estimates for ``ssrcs``.

    On the wire the bitrate is an 18-bit mantissa times 2**exponent; :meth:`serialize` picks the
    smallest exponent, which rounds a bitrate above 2**18 down to what the wire can carry.
    """

    sender_ssrc: int
    bitrate: int
    ssrcs: list[int] = attrs.field(factory=list)
    media_ssrc: int = 0  # "unused", always 0

    def serialize(self) -> bytes:
        if self.bitrate < 0:
            raise ValueError("REMB bitrate must not be negative")
        exponent = max(0, self.bitrate.bit_length() - 18)
        if exponent > 63:
            raise ValueError("REMB bitrate too large for a 6-bit exponent")
        mantissa = self.bitrate >> exponent
        head = _pack(
            _REMB_HEAD,
            _REMB_ID,
            len(self.ssrcs),
            exponent << 2 | mantissa >> 16,
            mantissa & 0xFFFF,
        )
        fci = head + b"".join(_pack(_U32, ssrc) for ssrc in self.ssrcs)
        return _feedback(_FMT_AFB, PSFB, self.sender_ssrc, self.media_ssrc, fci)


@attrs.define
class PayloadFeedback:
    """A PSFB message we do not interpret (SLI, RPSI, other AFB, ...), kept whole."""

    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""

    def serialize(self) -> bytes:
        return _feedback(self.fmt, PSFB, self.sender_ssrc, self.media_ssrc, self.fci)


def parse_psfb_untrusted(
    fmt: int, body: bytes
) -> PictureLossIndication | FullIntraRequest | Remb | PayloadFeedback:
    """A PSFB message from its FMT and the bytes after the 4-byte RTCP header."""
    sender_ssrc, media_ssrc, fci = _split_feedback(body)
    if fmt == _FMT_PLI:
        # §6.3.1: "the length field MUST be 2, and there MUST NOT be any FCI".
        if fci:
            raise RtpError("PLI carries no FCI")
        return PictureLossIndication(sender_ssrc, media_ssrc)
    if fmt == _FMT_FIR:
        if not fci or len(fci) % _FIR_ENTRY.size:
            raise RtpError("FIR FCI must hold one or more 8-byte entries")
        entries = [FirEntry(*_FIR_ENTRY.unpack_from(fci, pos)) for pos in range(0, len(fci), 8)]
        return FullIntraRequest(sender_ssrc, entries, media_ssrc)
    if fmt == _FMT_AFB and fci[:4] == _REMB_ID:
        if len(fci) < _REMB_HEAD.size:
            raise RtpError("REMB FCI shorter than its 8-byte header")
        _, count, exponent_high, mantissa_low = _REMB_HEAD.unpack_from(fci)
        if len(fci) != _REMB_HEAD.size + 4 * count:
            raise RtpError("REMB SSRC count does not match the FCI length")
        mantissa = (exponent_high & 3) << 16 | mantissa_low
        ssrcs = [v for (v,) in _U32.iter_unpack(fci[_REMB_HEAD.size :])]
        return Remb(sender_ssrc, mantissa << (exponent_high >> 2), ssrcs, media_ssrc)
    return PayloadFeedback(fmt, sender_ssrc, media_ssrc, fci)


RtcpFeedbackPacket: TypeAlias = (
    GenericNack
    | TwccFeedback
    | RtpFeedback
    | PictureLossIndication
    | FullIntraRequest
    | Remb
    | PayloadFeedback
)
