"""RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions.

Pure: no trio, no clock, no I/O. :func:`parse_rtp_untrusted` is the only entry point for peer
input: it raises :class:`RtpError` for anything malformed and nothing else, and its work is bounded
by the datagram length. :meth:`RtpPacket.serialize` raises plain ``ValueError`` for fields out of
range, because those are the caller's mistakes, not the network's.

Header extensions are kept raw, as ``{id: value bytes}``; the typed view (which id is the MID,
what an abs-send-time value means) lives in :mod:`trio_rtc.rtp.extensions`, driven by the
negotiated ``a=extmap`` lines.
"""

from __future__ import annotations

import struct

import attrs

from .errors import RtpError

__all__ = [
    "FIXED_HEADER_LENGTH",
    "MAX_CSRCS",
    "ONE_BYTE_PROFILE",
    "RTP_VERSION",
    "TWO_BYTE_PROFILE",
    "RtpError",
    "RtpPacket",
    "parse_rtp_untrusted",
]

RTP_VERSION = 2
FIXED_HEADER_LENGTH = 12
MAX_CSRCS = 15
# RFC 8285 §4.2: "defined by profile" value of the one-byte form.
ONE_BYTE_PROFILE = 0xBEDE
# RFC 8285 §4.3: 0x100 followed by four "appbits"; we send them as zero and ignore them on receipt.
TWO_BYTE_PROFILE = 0x1000
_TWO_BYTE_PROFILE_MASK = 0xFFF0

_FIXED = struct.Struct("!BBHII")
_PROFILE_LENGTH = struct.Struct("!HH")
_CSRCS = tuple(struct.Struct(f"!{n}I") for n in range(MAX_CSRCS + 1))

# Largest element values of each form (RFC 8285 §4.2: L is length - 1 in 4 bits; §4.3: 8 bits).
_ONE_BYTE_MAX_ID = 14
_ONE_BYTE_MAX_LENGTH = 16
_TWO_BYTE_MAX_ID = 255
_TWO_BYTE_MAX_LENGTH = 255


def _payload_repr(payload: bytes) -> str:
    return f"<{len(payload)} bytes>"


@attrs.define(slots=True, eq=True)
class RtpPacket:
    """One RTP packet, header fields as integers, the payload as bytes.

    The wire flags are derived, never stored: V is always 2, P is set when ``padding_size > 0``,
    X when ``extensions`` is non-empty, CC is ``len(csrcs)``. ``padding_size`` counts the padding
    octets including the final count octet (RFC 3550 §5.1), so it is 0 or 1..255.

    ``extensions`` maps an RFC 8285 local id to the element's raw value; the packet neither knows
    nor checks what an id means, so unknown elements survive parse -> serialize byte-exactly.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = attrs.field(default=b"", repr=_payload_repr)
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extensions: dict[int, bytes] = attrs.field(factory=dict)
    padding_size: int = 0

    @property
    def version(self) -> int:
        return RTP_VERSION

    @property
    def padding(self) -> bool:
        """The P bit."""
        return self.padding_size > 0

    @property
    def extension(self) -> bool:
        """The X bit."""
        return bool(self.extensions)

    def serialize(
        self, *, extmap_allow_mixed: bool = False, two_byte_header: bool = False
    ) -> bytes:
        """The packet on the wire.

        Header extensions use the one-byte form (RFC 8285 §4.2) whenever every element fits it
        (id 1..14, value 1..16 bytes). An element that does not fit needs the two-byte form
        (§4.3), which is chosen automatically only when ``extmap_allow_mixed`` says the session
        negotiated ``a=extmap-allow-mixed`` (RFC 8285 §6); otherwise this raises ``ValueError``.
        ``two_byte_header=True`` always uses the two-byte form (a session that negotiated ids
        above 14 without allow-mixed sends every packet that way).
        """
        payload_type = self.payload_type
        if not 0 <= payload_type <= 0x7F:
            raise ValueError(f"payload_type {payload_type} is outside 0..127 (7 bits)")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence_number {self.sequence_number} is outside 0..65535")
        if not 0 <= self.timestamp <= 0xFFFF_FFFF:
            raise ValueError(f"timestamp {self.timestamp} is outside 0..2**32-1")
        if not 0 <= self.ssrc <= 0xFFFF_FFFF:
            raise ValueError(f"ssrc {self.ssrc} is outside 0..2**32-1")
        csrcs = self.csrcs
        csrc_count = len(csrcs)
        if csrc_count > MAX_CSRCS:
            raise ValueError(f"{csrc_count} CSRCs, at most {MAX_CSRCS} fit the 4-bit CC field")
        padding_size = self.padding_size
        if not 0 <= padding_size <= 0xFF:
            raise ValueError(f"padding_size {padding_size} is outside 0..255")

        first = 0x80 | csrc_count
        if padding_size:
            first |= 0x20
        extensions = self.extensions
        if extensions:
            first |= 0x10
        second = payload_type | 0x80 if self.marker else payload_type
        parts = [_FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        if csrc_count:
            for csrc in csrcs:
                if not 0 <= csrc <= 0xFFFF_FFFF:
                    raise ValueError(f"csrc {csrc} is outside 0..2**32-1")
            parts.append(_CSRCS[csrc_count].pack(*csrcs))
        if extensions:
            parts.append(_serialize_extensions(extensions, extmap_allow_mixed, two_byte_header))
        parts.append(self.payload)
        if padding_size:
            # RFC 3550 §5.1: the last padding octet counts the padding, itself included.
            parts.append(bytes(padding_size - 1) + padding_size.to_bytes(1, "big"))
        return b"".join(parts)


def _serialize_extensions(
    extensions: dict[int, bytes], allow_mixed: bool, two_byte_header: bool
) -> bytes:
    needs_two_byte: tuple[int, int] | None = None  # the first element that does not fit one byte
    for ext_id, value in extensions.items():
        length = len(value)
        if not 1 <= ext_id <= _TWO_BYTE_MAX_ID:
            raise ValueError(f"header extension id {ext_id} is outside 1..255 (RFC 8285 §4.3)")
        if length > _TWO_BYTE_MAX_LENGTH:
            raise ValueError(
                f"header extension id {ext_id} has a {length}-byte value; "
                f"at most {_TWO_BYTE_MAX_LENGTH} bytes fit an element (RFC 8285 §4.3)"
            )
        if needs_two_byte is None and not (
            ext_id <= _ONE_BYTE_MAX_ID and 1 <= length <= _ONE_BYTE_MAX_LENGTH
        ):
            needs_two_byte = (ext_id, length)
    body = bytearray()
    if not two_byte_header and needs_two_byte is None:
        profile = ONE_BYTE_PROFILE
        for ext_id, value in extensions.items():
            body.append((ext_id << 4) | (len(value) - 1))
            body += value
    else:
        if needs_two_byte is not None and not (two_byte_header or allow_mixed):
            ext_id, length = needs_two_byte
            raise ValueError(
                f"header extension id {ext_id} with a {length}-byte value needs the two-byte "
                "form (one-byte form: id 1..14, 1..16 bytes; RFC 8285 §4.2); pass "
                "extmap_allow_mixed=True when a=extmap-allow-mixed was negotiated, or "
                "two_byte_header=True when the session uses the two-byte form throughout"
            )
        profile = TWO_BYTE_PROFILE
        for ext_id, value in extensions.items():
            body.append(ext_id)
            body.append(len(value))
            body += value
    # The block is a whole number of 32-bit words; zero bytes are padding in both forms.
    pad = -len(body) % 4
    if pad:
        body += bytes(pad)
    return _PROFILE_LENGTH.pack(profile, len(body) >> 2) + body


def _parse_one_byte_untrusted(data: bytes, start: int, end: int, out: dict[int, bytes]) -> None:
    index = start
    while index < end:
        header = data[index]
        ext_id = header >> 4
        if ext_id == 0:
            # RFC 8285 §4.2: a padding byte (0x00) carries no id and no length. A non-zero length
            # under id 0 is not allowed either; we skip such a byte the same way rather than drop
            # the whole packet.
            index += 1
            continue
        if ext_id == 15:
            # RFC 8285 §4.2: id 15 is reserved; its length is ignored and processing stops here,
            # keeping the elements before it.
            return
        index += 1
        stop = index + (header & 0x0F) + 1
        if stop > end:
            raise RtpError(f"header extension element {ext_id} runs past the extension block")
        out[ext_id] = data[index:stop]
        index = stop


def _parse_two_byte_untrusted(data: bytes, start: int, end: int, out: dict[int, bytes]) -> None:
    index = start
    while index < end:
        ext_id = data[index]
        if ext_id == 0:
            index += 1  # RFC 8285 §4.3: a single padding byte
            continue
        if index + 2 > end:
            raise RtpError(f"header extension element {ext_id} has no length byte")
        start_value = index + 2
        stop = start_value + data[index + 1]
        if stop > end:
            raise RtpError(f"header extension element {ext_id} runs past the extension block")
        out[ext_id] = data[start_value:stop]
        index = stop


def parse_rtp_untrusted(data: bytes | bytearray | memoryview) -> RtpPacket:
    """Parse one RTP packet from a peer; raise :class:`RtpError` if it is malformed.

    Checks: at least the 12-byte fixed header, version 2, CSRCs, extension header and extension
    block within the datagram, every RFC 8285 element within its block, and a padding count that
    is non-zero and within what follows the header (RFC 3550 §5.1, §A.1). A header extension with
    a profile other than RFC 8285's is skipped (RFC 3550 §5.3.1 lets receivers ignore extensions
    they do not understand) and is not kept. Duplicate element ids: the last one wins.
    """
    # One copy up front for a bytearray or memoryview; then every slice below is already bytes,
    # which is cheaper than a memoryview per value and hands the payload out as an owned object.
    buf = data if isinstance(data, bytes) else bytes(data)
    length = len(buf)
    if length < FIXED_HEADER_LENGTH:
        raise RtpError(f"{length} bytes is shorter than the 12-byte RTP header")
    first, second, sequence_number, timestamp, ssrc = _FIXED.unpack_from(buf)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    csrc_count = first & 0x0F
    offset = FIXED_HEADER_LENGTH + 4 * csrc_count
    if offset > length:
        raise RtpError(f"{csrc_count} CSRCs do not fit a {length}-byte packet")
    csrcs: tuple[int, ...] = _CSRCS[csrc_count].unpack_from(buf, 12) if csrc_count else ()

    extensions: dict[int, bytes] = {}
    if first & 0x10:
        if offset + 4 > length:
            raise RtpError("the header extension header runs past the packet")
        profile, words = _PROFILE_LENGTH.unpack_from(buf, offset)
        offset += 4
        block_end = offset + 4 * words
        if block_end > length:
            raise RtpError(f"a {4 * words}-byte header extension runs past the packet")
        if profile == ONE_BYTE_PROFILE:
            _parse_one_byte_untrusted(buf, offset, block_end, extensions)
        elif profile & _TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
            _parse_two_byte_untrusted(buf, offset, block_end, extensions)
        offset = block_end

    payload_end = length
    padding_size = 0
    if first & 0x20:
        padding_size = buf[-1]
        if padding_size == 0:
            raise RtpError("the P bit is set but the padding count is 0")
        payload_end -= padding_size
        if payload_end < offset:
            raise RtpError(f"{padding_size} bytes of padding run into the RTP header")

    return RtpPacket(
        second & 0x7F,
        sequence_number,
        timestamp,
        ssrc,
        buf[offset:payload_end],
        second >= 0x80,
        csrcs,
        extensions,
        padding_size,
    )
