"""VP9 payload format (RFC 9628).

Every packet starts with the VP9 payload descriptor (§4.2)::

         0 1 2 3 4 5 6 7
        +-+-+-+-+-+-+-+-+
        |I|P|L|F|B|E|V|Z|  I: PictureID present; P: inter-picture predicted; L: layer indices;
        +-+-+-+-+-+-+-+-+  F: flexible mode; B/E: begin/end of a frame; V: scalability
   I:   |M| PICTURE ID  |  structure (SS) present; Z: not a reference for upper spatial layers
   M:   | EXTENDED PID  |  M=1: 15-bit PictureID
   L:   | TID |U| SID |D|
   F=0: |   TL0PICIDX   |  (non-flexible mode, with L only)
   F=1: |   P_DIFF    |N|  (flexible mode, with P only; up to 3, N: another follows)
   V:   | SS .......... |  (§4.2.1)

B=1 marks a frame's first packet, E=1 its last (the marker bit ends the whole picture, which for
a stream without spatial layers is the same packet). A key frame is B=1 with P=0 on the base
spatial layer. The SS is parsed (so its length is known and malformed ones are refused) and
otherwise ignored: resolutions come from the bitstream, which the decoder reads anyway.

We send what a non-layered stream needs: non-flexible mode without layer indices, a 15-bit
PictureID counting frames, and on a key frame's first packet an SS with one spatial layer and
its resolution when the VP9 uncompressed header yields it (§4.2.1 says the SS SHOULD come with
every key frame).
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
    "Vp9Depacketizer",
    "Vp9Packetizer",
    "Vp9PayloadDescriptor",
    "Vp9ScalabilityStructure",
    "vp9_keyframe_size",
]


@attrs.frozen(slots=True)
class Vp9ScalabilityStructure:
    """§4.2.1: per spatial layer its (width, height) when Y=1 (else empty), and the picture
    group description as (TID, U, P_DIFFs) per picture when G=1."""

    spatial_layers: int
    resolutions: tuple[tuple[int, int], ...] = ()
    pictures: tuple[tuple[int, bool, tuple[int, ...]], ...] | None = None

    def serialize(self) -> bytes:
        if not 1 <= self.spatial_layers <= 8:
            raise ValueError(f"{self.spatial_layers} spatial layers, expected 1..8")
        out = bytearray([(self.spatial_layers - 1) << 5])
        if self.resolutions:
            if len(self.resolutions) != self.spatial_layers:
                raise ValueError("one resolution per spatial layer, or none")
            out[0] |= 0x10
            for width, height in self.resolutions:
                out += width.to_bytes(2, "big") + height.to_bytes(2, "big")
        if self.pictures is not None:
            out[0] |= 0x08
            out.append(len(self.pictures))
            for tid, switching, p_diffs in self.pictures:
                out.append((tid << 5) | (0x10 if switching else 0) | (len(p_diffs) << 2))
                out += bytes(p_diffs)
        return bytes(out)

    @classmethod
    def parse_untrusted(cls, data: bytes, offset: int) -> tuple[Vp9ScalabilityStructure, int]:
        """The SS at ``data[offset:]`` and the offset after it; RtpError if truncated."""
        if offset >= len(data):
            raise RtpError("the VP9 scalability structure is missing")
        header = data[offset]
        offset += 1
        spatial_layers = (header >> 5) + 1
        resolutions = []
        if header & 0x10:
            end = offset + 4 * spatial_layers
            if end > len(data):
                raise RtpError("the VP9 SS resolutions are truncated")
            for index in range(offset, end, 4):
                resolutions.append(
                    (
                        int.from_bytes(data[index : index + 2]),
                        int.from_bytes(data[index + 2 : index + 4]),
                    )
                )
            offset = end
        pictures = None
        if header & 0x08:
            if offset >= len(data):
                raise RtpError("the VP9 SS picture group count is missing")
            count = data[offset]
            offset += 1
            group = []
            for _ in range(count):
                if offset >= len(data):
                    raise RtpError("the VP9 SS picture group is truncated")
                description = data[offset]
                references = (description >> 2) & 0x03
                end = offset + 1 + references
                if end > len(data):
                    raise RtpError("the VP9 SS P_DIFFs are truncated")
                group.append(
                    (description >> 5, bool(description & 0x10), tuple(data[offset + 1 : end]))
                )
                offset = end
            pictures = tuple(group)
        return cls(spatial_layers, tuple(resolutions), pictures), offset


@attrs.frozen(slots=True)
class Vp9PayloadDescriptor:
    """The fields of one VP9 payload descriptor; None for an optional field that is absent.

    ``layer`` is (TID, U, SID, D) when L=1; ``tl0_pic_idx`` goes with it in non-flexible mode.
    ``p_diffs`` are the flexible mode's reference differences (F=1 with P=1).
    """

    begin: bool
    end: bool
    inter_predicted: bool = False
    flexible: bool = False
    not_upper_reference: bool = False
    picture_id: int | None = None
    picture_id_bits: int = 15
    layer: tuple[int, bool, int, bool] | None = None
    tl0_pic_idx: int | None = None
    p_diffs: tuple[int, ...] = ()
    scalability: Vp9ScalabilityStructure | None = None

    def serialize(self) -> bytes:
        first = 0
        tail = bytearray()
        if self.picture_id is not None:
            first |= 0x80
            if self.picture_id_bits == 15 and 0 <= self.picture_id <= 0x7FFF:
                tail += (0x8000 | self.picture_id).to_bytes(2, "big")
            elif self.picture_id_bits == 7 and 0 <= self.picture_id <= 0x7F:
                tail.append(self.picture_id)
            else:
                raise ValueError(
                    f"PictureID {self.picture_id} does not fit {self.picture_id_bits} bits"
                )
        if self.inter_predicted:
            first |= 0x40
        if self.layer is not None:
            first |= 0x20
            tid, switching, sid, inter_layer = self.layer
            tail.append((tid << 5) | (0x10 if switching else 0) | (sid << 1) | int(inter_layer))
            if not self.flexible:
                tail.append(self.tl0_pic_idx or 0)
        if self.flexible:
            first |= 0x10
            if self.inter_predicted:
                if not 1 <= len(self.p_diffs) <= 3:
                    raise ValueError("flexible mode with P=1 needs 1..3 P_DIFFs")
                for index, p_diff in enumerate(self.p_diffs):
                    more = 0x01 if index + 1 < len(self.p_diffs) else 0
                    tail.append((p_diff << 1) | more)
        if self.begin:
            first |= 0x08
        if self.end:
            first |= 0x04
        if self.scalability is not None:
            first |= 0x02
            tail += self.scalability.serialize()
        if self.not_upper_reference:
            first |= 0x01
        return bytes((first,)) + bytes(tail)

    @classmethod
    def parse_untrusted(cls, payload: bytes) -> tuple[Vp9PayloadDescriptor, int]:
        """The descriptor at the start of ``payload`` and its length; RtpError if malformed."""
        length = len(payload)
        if length < 1:
            raise RtpError("an empty VP9 payload")
        first = payload[0]
        offset = 1
        picture_id = None
        picture_id_bits = 15
        if first & 0x80:
            if offset >= length:
                raise RtpError("the VP9 PictureID is missing")
            if payload[offset] & 0x80:
                if offset + 2 > length:
                    raise RtpError("the 15-bit VP9 PictureID is truncated")
                picture_id = ((payload[offset] & 0x7F) << 8) | payload[offset + 1]
                offset += 2
            else:
                picture_id = payload[offset]
                picture_id_bits = 7
                offset += 1
        inter_predicted = bool(first & 0x40)
        flexible = bool(first & 0x10)
        layer = None
        tl0_pic_idx = None
        if first & 0x20:
            if offset >= length:
                raise RtpError("the VP9 layer indices are missing")
            byte = payload[offset]
            layer = (byte >> 5, bool(byte & 0x10), (byte >> 1) & 0x07, bool(byte & 0x01))
            offset += 1
            if not flexible:
                if offset >= length:
                    raise RtpError("the VP9 TL0PICIDX is missing")
                tl0_pic_idx = payload[offset]
                offset += 1
        p_diffs = []
        if flexible and inter_predicted:
            while True:
                if offset >= length:
                    raise RtpError("the VP9 P_DIFF list is truncated")
                byte = payload[offset]
                offset += 1
                p_diffs.append(byte >> 1)
                if not byte & 0x01:
                    break
                if len(p_diffs) == 3:
                    raise RtpError("more than 3 VP9 P_DIFFs (RFC 9628 §4.2)")
        scalability = None
        if first & 0x02:
            scalability, offset = Vp9ScalabilityStructure.parse_untrusted(payload, offset)
        descriptor = cls(
            bool(first & 0x08),
            bool(first & 0x04),
            inter_predicted,
            flexible,
            bool(first & 0x01),
            picture_id,
            picture_id_bits,
            layer,
            tl0_pic_idx,
            tuple(p_diffs),
            scalability,
        )
        return descriptor, offset


def vp9_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP9 key frame's uncompressed header (VP9 spec §6.2), else None.

    Only what the SS needs: the profile, the frame type, the sync code, the colour config's
    length and the 16-bit sizes. None for an inter frame or anything unexpected.
    """
    bits = int.from_bytes(frame[:16])
    total = 8 * min(len(frame), 16)
    position = 0

    def read(count: int) -> int:
        nonlocal position
        position += count
        if position > total:
            raise IndexError
        return (bits >> (128 - position)) & ((1 << count) - 1)

    try:
        if read(2) != 2:  # frame_marker
            return None
        profile = read(1) | (read(1) << 1)
        if profile == 3:
            read(1)
        if read(1):  # show_existing_frame
            return None
        if read(1) != 0:  # frame_type: 0 is KEY_FRAME
            return None
        read(2)  # show_frame, error_resilient_mode
        if read(24) != 0x498342:  # frame_sync_code
            return None
        if profile >= 2:
            read(1)  # ten_or_twelve_bit
        if read(3) != 7:  # color_space other than CS_RGB
            read(1)  # color_range
            if profile in (1, 3):
                read(3)  # subsampling_x, subsampling_y, reserved_zero
        elif profile in (1, 3):
            read(1)
        return read(16) + 1, read(16) + 1
    except IndexError:
        return None


class Vp9Packetizer(Packetizer):
    """VP9 frames to payloads (non-flexible mode, no layers); ``picture_id`` as for VP8."""

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
            raise ValueError("an empty VP9 frame")
        picture_id = self.picture_id
        self.picture_id = (picture_id + 1) & 0x7FFF
        picture = bytes((0x80 | (picture_id >> 8), picture_id & 0xFF))
        flags = 0x80 if keyframe else 0xC0  # I=1, and P=1 unless a key frame
        scalability = b""
        if keyframe:
            resolution = vp9_keyframe_size(frame)
            if resolution is not None and max(resolution) > 0xFFFF:
                resolution = None  # 65536 does not fit the SS's 16-bit fields
            structure = Vp9ScalabilityStructure(1, (resolution,) if resolution else ())
            scalability = structure.serialize()
        # The first packet may carry the SS as well: size the pieces by the larger header.
        room = max_payload_size - 3 - len(scalability)
        sizes = split_evenly(len(frame), room)
        payloads = []
        offset = 0
        last = len(sizes) - 1
        for index, size in enumerate(sizes):
            first = flags
            extra = b""
            if index == 0:
                first |= 0x08  # B
                if scalability:
                    first |= 0x02  # V
                    extra = scalability
            if index == last:
                first |= 0x04  # E
            payloads.append(bytes((first,)) + picture + extra + frame[offset : offset + size])
            offset += size
        return payloads


class Vp9Depacketizer(Depacketizer):
    """VP9 payloads back to frames: the descriptors are stripped and the rest joined."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        descriptor, offset = Vp9PayloadDescriptor.parse_untrusted(payload)
        if offset >= len(payload):
            raise RtpError("a VP9 payload with a descriptor and no data")
        base_layer = descriptor.layer is None or descriptor.layer[2] == 0
        keyframe = descriptor.begin and not descriptor.inter_predicted and base_layer
        picture_bits = descriptor.picture_id_bits if descriptor.picture_id is not None else 0
        return PayloadInfo(
            descriptor.begin,
            descriptor.end or marker,
            keyframe,
            descriptor.picture_id,
            picture_bits,
        )

    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        return b"".join(
            payload[Vp9PayloadDescriptor.parse_untrusted(payload)[1] :] for payload in payloads
        )
