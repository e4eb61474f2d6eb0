"""AV1 payload format (AOM "RTP Payload Format for AV1", v1.0.0).

A payload is a one-byte aggregation header and OBU elements (§4.4)::

     0 1 2 3 4 5 6 7
    +-+-+-+-+-+-+-+-+
    |Z|Y| W |N|-|-|-|  Z: the first element continues an OBU from the previous packet;
    +-+-+-+-+-+-+-+-+  Y: the last element continues in the next packet; W: the number of
                       elements (1..3, the last one without a length field), or 0 for "each
                       element has a LEB128 length"; N: first packet of a coded video sequence

An OBU element is an OBU as the AV1 bitstream spells it (§5.3), header first, except that the
sender SHOULD clear ``obu_has_size_field`` and drop the ``obu_size`` (the element length says it).

Sending: the input is a temporal unit in the low-overhead bitstream format (AV1 spec §5.2, what
encoders emit: every OBU with its size field). Temporal delimiters are dropped (§5: they MUST NOT
be sent; the RTP timestamp marks the temporal unit), as are tile list and padding OBUs (the
format says they SHOULD be). The remaining OBUs lose their size fields and are packed greedily:
as many elements per packet as fit, fragmenting an OBU across packets (Y/Z) where it does not.
N is set on the first packet of a keyframe (pass ``keyframe=True``, as encoders flag it).

Receiving: fragments are joined, every OBU gets its size field back, and a temporal delimiter is
prepended, so the output is again a low-overhead temporal unit that any AV1 decoder takes. A
keyframe is a frame whose first packet has N=1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..errors import RtpError
from .base import (
    DEFAULT_MAX_PAYLOAD_SIZE,
    VIDEO_CLOCK_RATE,
    Depacketizer,
    Packetizer,
    PayloadInfo,
)

__all__ = [
    "OBU_FRAME",
    "OBU_PADDING",
    "OBU_SEQUENCE_HEADER",
    "OBU_TEMPORAL_DELIMITER",
    "OBU_TILE_LIST",
    "TEMPORAL_DELIMITER",
    "Av1Depacketizer",
    "Av1Packetizer",
    "leb128_decode_untrusted",
    "leb128_encode",
    "split_obus",
]

OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
OBU_FRAME_HEADER = 3
OBU_TILE_GROUP = 4
OBU_METADATA = 5
OBU_FRAME = 6
OBU_TILE_LIST = 8
OBU_PADDING = 15
# A temporal delimiter with obu_has_size_field=1 and obu_size=0.
TEMPORAL_DELIMITER = bytes(((OBU_TEMPORAL_DELIMITER << 3) | 0x02, 0))
_NOT_SENT = frozenset((OBU_TEMPORAL_DELIMITER, OBU_TILE_LIST, OBU_PADDING))
# AV1 spec §4.10.5: at most 8 bytes, and the value must fit 32 bits.
_LEB128_MAX_BYTES = 8
_LEB128_MAX_VALUE = (1 << 32) - 1


def leb128_encode(value: int) -> bytes:
    """The shortest LEB128 form of ``value`` (AV1 spec §4.10.5)."""
    if not 0 <= value <= _LEB128_MAX_VALUE:
        raise ValueError(f"{value} is outside the LEB128 range of AV1 (0..2**32-1)")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _leb128_length(value: int) -> int:
    return max(1, -(-value.bit_length() // 7))


def leb128_decode_untrusted(data: bytes, offset: int) -> tuple[int, int]:
    """(value, offset after it) of the LEB128 at ``data[offset:]``; RtpError if malformed."""
    value = 0
    for index in range(_LEB128_MAX_BYTES):
        if offset + index >= len(data):
            raise RtpError("a LEB128 length runs past the data")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if value > _LEB128_MAX_VALUE:
                raise RtpError("a LEB128 length above 2**32-1")
            return value, offset + index + 1
    raise RtpError("a LEB128 length longer than 8 bytes")


def _obu_parts_untrusted(obu: bytes, whole: bool) -> tuple[int, bytes, bytes, int]:
    """(header byte, extension byte(s), payload, bytes used) of the OBU at the start of ``obu``.

    With ``whole`` the OBU is an RTP element: it fills ``obu`` unless it has a size field.
    """
    if not obu:
        raise RtpError("an empty OBU")
    header = obu[0]
    if header & 0x80:
        raise RtpError("an OBU with its forbidden bit set")
    header_length = 2 if header & 0x04 else 1
    if len(obu) < header_length:
        raise RtpError("an OBU extension header is missing")
    extension = obu[1:header_length]
    if header & 0x02:
        size, start = leb128_decode_untrusted(obu, header_length)
        end = start + size
        if end > len(obu):
            raise RtpError(f"an OBU of {size} bytes runs past its data")
    elif whole:
        start = header_length
        end = len(obu)
    else:
        raise RtpError("an OBU without a size field before the end of the temporal unit")
    return header, extension, obu[start:end], end


def split_obus(temporal_unit: bytes) -> list[tuple[int, bytes, bytes]]:
    """The OBUs of a low-overhead temporal unit as (header byte, extension, payload).

    Every OBU but the last must carry its size (AV1 spec §5.2). ``ValueError`` if malformed.
    """
    obus = []
    offset = 0
    while offset < len(temporal_unit):
        rest = temporal_unit[offset:]
        try:
            header, extension, payload, used = _obu_parts_untrusted(rest, whole=False)
        except RtpError as error:
            if rest and not rest[0] & 0x02 and not rest[0] & 0x80:
                # The last OBU may omit its size: it runs to the end.
                header, extension, payload, used = _obu_parts_untrusted(rest, whole=True)
            else:
                raise ValueError(f"not a low-overhead AV1 bitstream: {error}") from None
        obus.append((header, extension, payload))
        offset += used
    return obus


class Av1Packetizer(Packetizer):
    """AV1 temporal units to RTP payloads."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def packetize(
        self,
        frame: bytes,
        *,
        keyframe: bool = False,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> list[bytes]:
        elements = [
            bytes((header & ~0x02,)) + extension + payload
            for header, extension, payload in split_obus(frame)
            if (header >> 3) & 0x0F not in _NOT_SENT
        ]
        if not elements:
            raise ValueError("a temporal unit without OBUs to send (only delimiters or padding)")
        budget = max_payload_size - 1  # after the aggregation header
        if budget < 2:
            raise ValueError(f"a {max_payload_size}-byte payload cannot carry AV1 OBU elements")
        packets: list[tuple[list[bytes], bool, bool]] = []  # (elements, Z, Y)
        current: list[bytes] = []
        used = 0  # the current elements' bytes, each counted with a length field
        continues = False  # Z of the current packet
        for element in elements:
            offset = 0
            while offset < len(element):
                room = budget - used
                # Up to three elements the last one needs no length field (W=1..3); from the
                # fourth on every element carries one (W=0).
                if len(current) >= 3:
                    room -= _leb128_length(room)
                if room < 1:
                    packets.append((current, continues, False))
                    current, used, continues = [], 0, False
                    continue
                piece = element[offset : offset + room]
                current.append(piece)
                used += _leb128_length(len(piece)) + len(piece)
                offset += len(piece)
                if offset < len(element):
                    packets.append((current, continues, True))
                    current, used, continues = [], 0, True
        if current:
            packets.append((current, continues, False))
        payloads = []
        for index, (pieces, z_bit, y_bit) in enumerate(packets):
            count = len(pieces)
            header = (0x80 if z_bit else 0) | (0x40 if y_bit else 0)
            if count <= 3:
                header |= count << 4
            if keyframe and index == 0:
                header |= 0x08
            parts = [bytes((header,))]
            for position, piece in enumerate(pieces):
                if count > 3 or position < count - 1:
                    parts.append(leb128_encode(len(piece)))
                parts.append(piece)
            payloads.append(b"".join(parts))
        return payloads


def _elements_untrusted(payload: bytes) -> list[bytes]:
    if len(payload) < 2:
        raise RtpError("an AV1 payload without OBU elements")
    count = (payload[0] >> 4) & 0x03
    elements: list[bytes] = []
    offset = 1
    while offset < len(payload):
        if count and len(elements) == count - 1:
            elements.append(payload[offset:])  # W>0: the last element has no length field
            offset = len(payload)
            break
        size, offset = leb128_decode_untrusted(payload, offset)
        if offset + size > len(payload):
            raise RtpError(f"an OBU element of {size} bytes runs past the AV1 payload")
        elements.append(payload[offset : offset + size])
        offset += size
    if count and len(elements) != count:
        raise RtpError(f"W says {count} OBU elements, the AV1 payload holds {len(elements)}")
    if not elements:
        raise RtpError("an AV1 payload without OBU elements")
    return elements


class Av1Depacketizer(Depacketizer):
    """AV1 payloads back to low-overhead temporal units (with a temporal delimiter)."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        elements = _elements_untrusted(payload)
        aggregation = payload[0]
        starts: bool | None
        if aggregation & 0x80:
            starts = False  # Z: the first element continues an OBU
        elif aggregation & 0x08:
            starts = True  # N: a new coded video sequence begins here
        elif elements[0] and (elements[0][0] >> 3) & 0x0F in (
            OBU_SEQUENCE_HEADER,
            OBU_TEMPORAL_DELIMITER,
        ):
            starts = True  # both come first in a temporal unit (AV1 spec §7.5)
        else:
            starts = None
        return PayloadInfo(starts, marker, bool(aggregation & 0x08))

    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        obus: list[bytes] = []
        pending: bytearray | None = None  # an OBU fragmented across packets
        for payload in payloads:
            elements = _elements_untrusted(payload)
            aggregation = payload[0]
            if aggregation & 0x80:
                if pending is None:
                    raise RtpError("an AV1 packet continues an OBU that never started (Z=1)")
                pending += elements[0]
                elements = elements[1:]
                if not elements and aggregation & 0x40:
                    continue  # the same OBU goes on in the next packet
                obus.append(bytes(pending))
                pending = None
            elif pending is not None:
                raise RtpError("an AV1 packet does not continue the previous one's OBU (Y=1)")
            if aggregation & 0x40:
                pending = bytearray(elements.pop())
            obus.extend(elements)
        if pending is not None:
            raise RtpError("the AV1 temporal unit ends inside a fragmented OBU")
        parts = [TEMPORAL_DELIMITER]
        for obu in obus:
            if not obu:
                continue  # an empty element carries nothing (a sender's zero-length filler)
            header, extension, data, used = _obu_parts_untrusted(obu, whole=True)
            if used != len(obu):
                raise RtpError("bytes after an OBU's declared size in its element")
            if (header >> 3) & 0x0F == OBU_TEMPORAL_DELIMITER:
                continue  # we add our own, exactly one, in front
            parts.append(bytes((header | 0x02,)))
            parts.append(extension)
            parts.append(leb128_encode(len(data)))
            parts.append(data)
        return b"".join(parts)
