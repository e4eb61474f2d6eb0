"""VP8 payload format (RFC 7741).

Every packet starts with the VP8 payload descriptor (§4.2)::

         0 1 2 3 4 5 6 7
        +-+-+-+-+-+-+-+-+
        |X|R|N|S|R| PID |  X: extension byte follows; N: non-reference frame;
        +-+-+-+-+-+-+-+-+  S: start of a partition; PID: partition index
   X:   |I|L|T|K| RSV   |  which optional fields follow
        +-+-+-+-+-+-+-+-+
   I:   |M| PictureID   |  M=1: a 15-bit PictureID (two bytes), else 7 bits
        +-+-+-+-+-+-+-+-+
   L:   |   TL0PICIDX   |
        +-+-+-+-+-+-+-+-+
   T/K: |TID|Y| KEYIDX  |  one byte when T or K is set
        +-+-+-+-+-+-+-+-+

The first packet of a frame has S=1 and PID=0, and its data begins with the VP8 payload header
(§4.3), whose lowest bit of the first byte is P: 0 for a key frame. The marker bit ends the frame.

We packetize without regard to partition boundaries, as §4.4 allows and browsers do: PID=0
everywhere, S=1 on the first packet only, and a 15-bit PictureID that counts frames, so the
receiver can tell a lost frame from a lost padding packet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs

from ..errors import RtpError
from .base import (
    DEFAULT_MAX_PAYLOAD_SIZE,
    VIDEO_CLOCK_RATE,
    Depacketizer,
    Packetizer,
    PayloadInfo,
    split_evenly,
)

__all__ = [
    "Vp8Depacketizer",
    "Vp8Packetizer",
    "Vp8PayloadDescriptor",
]


@attrs.frozen(slots=True)
class Vp8PayloadDescriptor:
    """The fields of one VP8 payload descriptor; None for an optional field that is absent.

    ``picture_id_bits`` is 7 or 15 (the M bit) and matters only with a ``picture_id``.
    ``temporal_layer`` and ``layer_sync`` travel in the T/K byte with ``key_index``.
    """

    start_of_partition: bool
    partition_index: int = 0
    non_reference: bool = False
    picture_id: int | None = None
    picture_id_bits: int = 15
    tl0_pic_idx: int | None = None
    temporal_layer: int | None = None
    layer_sync: bool = False
    key_index: int | None = None

    def serialize(self) -> bytes:
        """The descriptor's bytes; ``ValueError`` for a field outside its width."""
        if not 0 <= self.partition_index <= 7:
            raise ValueError(f"PID {self.partition_index} is outside 0..7")
        first = self.partition_index
        if self.non_reference:
            first |= 0x20
        if self.start_of_partition:
            first |= 0x10
        extension = 0
        tail = bytearray()
        if self.picture_id is not None:
            extension |= 0x80
            if self.picture_id_bits == 15:
                if not 0 <= self.picture_id <= 0x7FFF:
                    raise ValueError(f"PictureID {self.picture_id} is outside 0..32767")
                tail += (0x8000 | self.picture_id).to_bytes(2, "big")
            elif self.picture_id_bits == 7:
                if not 0 <= self.picture_id <= 0x7F:
                    raise ValueError(f"PictureID {self.picture_id} is outside 0..127")
                tail.append(self.picture_id)
            else:
                raise ValueError(f"picture_id_bits is {self.picture_id_bits}, expected 7 or 15")
        if self.tl0_pic_idx is not None:
            if not 0 <= self.tl0_pic_idx <= 0xFF:
                raise ValueError(f"TL0PICIDX {self.tl0_pic_idx} is outside 0..255")
            extension |= 0x40
            tail.append(self.tl0_pic_idx)
        if self.temporal_layer is not None or self.key_index is not None:
            tk = 0
            if self.temporal_layer is not None:
                if not 0 <= self.temporal_layer <= 3:
                    raise ValueError(f"TID {self.temporal_layer} is outside 0..3")
                extension |= 0x20
                tk |= self.temporal_layer << 6
                if self.layer_sync:
                    tk |= 0x20
            if self.key_index is not None:
                if not 0 <= self.key_index <= 31:
                    raise ValueError(f"KEYIDX {self.key_index} is outside 0..31")
                extension |= 0x10
                tk |= self.key_index
            tail.append(tk)
        if extension:
            return bytes((first | 0x80, extension)) + bytes(tail)
        return bytes((first,))

    @classmethod
    def parse_untrusted(cls, payload: bytes) -> tuple[Vp8PayloadDescriptor, int]:
        """The descriptor at the start of ``payload`` and its length; RtpError if truncated."""
        length = len(payload)
        if length < 1:
            raise RtpError("an empty VP8 payload")
        first = payload[0]
        offset = 1
        picture_id = tl0_pic_idx = temporal_layer = key_index = None
        picture_id_bits = 15
        layer_sync = False
        if first & 0x80:
            if length < 2:
                raise RtpError("the VP8 descriptor's X byte is missing")
            extension = payload[1]
            offset = 2
            if extension & 0x80:
                if offset >= length:
                    raise RtpError("the VP8 PictureID is missing")
                if payload[offset] & 0x80:
                    if offset + 2 > length:
                        raise RtpError("the 15-bit VP8 PictureID is truncated")
                    picture_id = ((payload[offset] & 0x7F) << 8) | payload[offset + 1]
                    offset += 2
                else:
                    picture_id = payload[offset]
                    picture_id_bits = 7
                    offset += 1
            if extension & 0x40:
                if offset >= length:
                    raise RtpError("the VP8 TL0PICIDX is missing")
                tl0_pic_idx = payload[offset]
                offset += 1
            if extension & 0x30:
                if offset >= length:
                    raise RtpError("the VP8 TID/KEYIDX byte is missing")
                tk = payload[offset]
                offset += 1
                # §4.2: TID and Y mean something only with T=1, KEYIDX only with K=1.
                if extension & 0x20:
                    temporal_layer = tk >> 6
                    layer_sync = bool(tk & 0x20)
                if extension & 0x10:
                    key_index = tk & 0x1F
        descriptor = cls(
            bool(first & 0x10),
            first & 0x07,
            bool(first & 0x20),
            picture_id,
            picture_id_bits,
            tl0_pic_idx,
            temporal_layer,
            layer_sync,
            key_index,
        )
        return descriptor, offset


class Vp8Packetizer(Packetizer):
    """VP8 frames to payloads; ``picture_id`` is the first frame's PictureID (15 bits, then +1
    per frame, wrapping). Start it at a random value for a new stream if you like."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def __init__(self, picture_id: int = 0) -> None:
        if not 0 <= picture_id <= 0x7FFF:
            raise ValueError(f"picture_id {picture_id} is outside 0..32767")
        self.picture_id = picture_id

    def packetize(
        self,
        frame: bytes,
        *,
        keyframe: bool = False,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> list[bytes]:
        if not frame:
            raise ValueError("an empty VP8 frame")
        picture_id = self.picture_id
        self.picture_id = (picture_id + 1) & 0x7FFF
        # X=1 | I=1 | M=1 + 15-bit PictureID: four bytes; only the first packet has S=1.
        tail = bytes((0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF))
        first_header = b"\x90" + tail
        other_header = b"\x80" + tail
        payloads = []
        offset = 0
        for size in split_evenly(len(frame), max_payload_size - len(first_header)):
            header = first_header if offset == 0 else other_header
            payloads.append(header + frame[offset : offset + size])
            offset += size
        return payloads


def _descriptor_length_untrusted(payload: bytes) -> int:
    return Vp8PayloadDescriptor.parse_untrusted(payload)[1]


class Vp8Depacketizer(Depacketizer):
    """VP8 payloads back to frames: the descriptors are stripped and the rest joined."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        descriptor, offset = Vp8PayloadDescriptor.parse_untrusted(payload)
        if offset >= len(payload):
            raise RtpError("a VP8 payload with a descriptor and no data")
        starts = descriptor.start_of_partition and descriptor.partition_index == 0
        # §4.3: the payload header, and its P bit, only follow the first packet's descriptor.
        keyframe = starts and not payload[offset] & 0x01
        picture_bits = descriptor.picture_id_bits if descriptor.picture_id is not None else 0
        return PayloadInfo(starts, marker, keyframe, descriptor.picture_id, picture_bits)

    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        parts = []
        for payload in payloads:
            parts.append(payload[_descriptor_length_untrusted(payload) :])
        return b"".join(parts)
