"""H.264 payload format (RFC 6184), packetization modes 0 and 1.

Frames in and out are Annex B byte streams (NAL units behind ``00 00 01`` / ``00 00 00 01`` start
codes); on the wire every NAL unit travels without its start code (§1.3), in one of three packet
types, told apart by the type field of the first byte, which has the NAL header's layout
``|F|NRI|Type|``:

- a single NAL unit packet (types 1..23, §5.6): the NAL unit itself;
- STAP-A (24, §5.7.1): a header byte, then per NAL unit a 16-bit size and the unit;
- FU-A (28, §5.8): an FU indicator (F and NRI of the NAL unit, type 28), an FU header
  ``|S|E|R|Type|`` (start, end, the NAL unit's type) and a piece of the unit after its header.

Mode 0 (§6.2) allows single NAL unit packets only: a NAL unit over the payload size is refused
with ``ValueError`` (configure the encoder's slice size, or negotiate packetization-mode=1).
Mode 1 (§6.3) aggregates consecutive NAL units that fit one packet into a STAP-A (so SPS and PPS
ride with the IDR slice), sends a lone unit as it is, and fragments larger ones with FU-A. The
interleaved mode 2 (STAP-B, MTAPs, FU-B) is not supported; its packets are refused on receipt.

Receiving: a frame is a keyframe when it holds an IDR slice (type 5). H.264 has no "first packet
of the picture" flag, so a packet proves it starts an access unit only when it opens with an
access unit delimiter or an SPS (H.264 §7.4.1.2.3 puts them first); otherwise the packet before it
must have ended the previous frame. The last SPS and PPS seen in band (or given from the SDP's
``sprop-parameter-sets`` with :meth:`H264Depacketizer.set_parameter_sets`) are kept, and an IDR
frame that arrives without them gets them prepended, so every keyframe decodes on its own.
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
    split_evenly,
)

__all__ = [
    "NAL_FU_A",
    "NAL_IDR",
    "NAL_PPS",
    "NAL_SPS",
    "NAL_STAP_A",
    "H264Depacketizer",
    "H264Packetizer",
    "split_annex_b",
]

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_STAP_A = 24
NAL_FU_A = 28
START_CODE = b"\x00\x00\x00\x01"
_STARTS_ACCESS_UNIT = frozenset((NAL_AUD, NAL_SPS))


def split_annex_b(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes or trailing zero bytes.

    H.264 §7.4.1: a NAL unit never ends in a zero byte, so zeros before a start code belong to the
    stream (zero_byte, trailing_zero_8bits), not to the unit. ``ValueError`` if the stream does
    not open with a start code.
    """
    start = stream.find(b"\x00\x00\x01")
    if start < 0 or stream[:start].strip(b"\x00"):
        raise ValueError("not an Annex B byte stream: no start code before the first NAL unit")
    units = []
    position = start + 3
    while True:
        following = stream.find(b"\x00\x00\x01", position)
        end = len(stream) if following < 0 else following
        unit = stream[position:end].rstrip(b"\x00")
        if unit:
            units.append(unit)
        if following < 0:
            return units
        position = following + 3


class H264Packetizer(Packetizer):
    """Annex B access units to RTP payloads in packetization mode 0 or 1."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def __init__(self, packetization_mode: int = 1) -> None:
        if packetization_mode not in (0, 1):
            raise ValueError(f"packetization-mode {packetization_mode} is not supported (0 or 1)")
        self.packetization_mode = packetization_mode

    def packetize(
        self,
        frame: bytes,
        *,
        keyframe: bool = False,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> list[bytes]:
        units = split_annex_b(frame)
        if not units:
            raise ValueError("an access unit without NAL units")
        payloads: list[bytes] = []
        if self.packetization_mode == 0:
            for unit in units:
                if len(unit) > max_payload_size:
                    raise ValueError(
                        f"a {len(unit)}-byte NAL unit (type {unit[0] & 0x1F}) does not fit a "
                        f"{max_payload_size}-byte payload, and packetization-mode=0 cannot "
                        "fragment (RFC 6184 §6.2): limit the encoder's slice size or negotiate "
                        "packetization-mode=1"
                    )
                payloads.append(unit)
            return payloads
        if max_payload_size < 3:
            raise ValueError(f"a {max_payload_size}-byte payload cannot carry an FU-A fragment")
        pending: list[bytes] = []
        pending_size = 1  # the STAP-A header byte
        for unit in units:
            if len(unit) > max_payload_size:
                _flush(pending, payloads)
                pending_size = 1
                _fragment(unit, max_payload_size, payloads)
                continue
            if pending and pending_size + 2 + len(unit) > max_payload_size:
                _flush(pending, payloads)
                pending_size = 1
            pending.append(unit)
            pending_size += 2 + len(unit)
        _flush(pending, payloads)
        return payloads


def _flush(pending: list[bytes], payloads: list[bytes]) -> None:
    if len(pending) == 1:
        payloads.append(pending[0])
    elif pending:
        # §5.7.1: F is the OR of the units' F bits, NRI their maximum.
        forbidden = 0
        nri = 0
        for unit in pending:
            forbidden |= unit[0] & 0x80
            nri = max(nri, unit[0] & 0x60)
        parts = [bytes((forbidden | nri | NAL_STAP_A,))]
        for unit in pending:
            parts.append(len(unit).to_bytes(2, "big"))
            parts.append(unit)
        payloads.append(b"".join(parts))
    pending.clear()


def _fragment(unit: bytes, max_payload_size: int, payloads: list[bytes]) -> None:
    indicator = (unit[0] & 0xE0) | NAL_FU_A
    unit_type = unit[0] & 0x1F
    sizes = split_evenly(len(unit) - 1, max_payload_size - 2)
    offset = 1
    last = len(sizes) - 1
    for index, size in enumerate(sizes):
        header = unit_type
        if index == 0:
            header |= 0x80
        if index == last:
            header |= 0x40
        payloads.append(bytes((indicator, header)) + unit[offset : offset + size])
        offset += size


def _stap_units_untrusted(payload: bytes) -> list[bytes]:
    units = []
    offset = 1
    length = len(payload)
    while offset < length:
        if offset + 2 > length:
            raise RtpError("a STAP-A NAL unit size is truncated")
        size = (payload[offset] << 8) | payload[offset + 1]
        offset += 2
        if size == 0 or offset + size > length:
            raise RtpError(f"a {size}-byte STAP-A NAL unit does not fit its packet")
        units.append(payload[offset : offset + size])
        offset += size
    if not units:
        raise RtpError("a STAP-A without NAL units")
    return units


class H264Depacketizer(Depacketizer):
    """RFC 6184 payloads (single NAL unit, STAP-A, FU-A) back to Annex B access units."""

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE

    def __init__(self, *, insert_parameter_sets: bool = True) -> None:
        self.insert_parameter_sets = insert_parameter_sets
        #: The last SPS and PPS NAL units seen (without start codes).
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def set_parameter_sets(self, sps: bytes, pps: bytes) -> None:
        """Seed the SPS and PPS, e.g. from ``sprop-parameter-sets`` (RFC 6184 §8.1)."""
        self.sps = bytes(sps)
        self.pps = bytes(pps)

    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        if not payload:
            raise RtpError("an empty H.264 payload")
        packet_type = payload[0] & 0x1F
        if 1 <= packet_type <= 23:
            return PayloadInfo(
                True if packet_type in _STARTS_ACCESS_UNIT else None,
                marker,
                packet_type == NAL_IDR,
            )
        if packet_type == NAL_STAP_A:
            types = [unit[0] & 0x1F for unit in _stap_units_untrusted(payload)]
            return PayloadInfo(
                True if types[0] in _STARTS_ACCESS_UNIT else None, marker, NAL_IDR in types
            )
        if packet_type == NAL_FU_A:
            if len(payload) < 3:
                raise RtpError("an FU-A without fragment data")
            header = payload[1]
            if header & 0xC0 == 0xC0:
                raise RtpError("an FU-A with both S and E set (RFC 6184 §5.8)")
            unit_type = header & 0x1F
            if header & 0x80:
                starts: bool | None = True if unit_type in _STARTS_ACCESS_UNIT else None
            else:
                starts = False  # a continuation fragment never opens an access unit
            return PayloadInfo(starts, marker, unit_type == NAL_IDR)
        raise RtpError(
            f"H.264 packet type {packet_type} is not supported (interleaved mode or reserved)"
        )

    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        parts: list[bytes] = []
        fragment_type: int | None = None  # the NAL type of the FU-A in progress
        has_idr = has_sps = has_pps = False
        for payload in payloads:
            if not payload:
                raise RtpError("an empty H.264 payload")
            packet_type = payload[0] & 0x1F
            if packet_type == NAL_FU_A:
                if len(payload) < 3:
                    raise RtpError("an FU-A without fragment data")
                header = payload[1]
                unit_type = header & 0x1F
                if header & 0x80:
                    if fragment_type is not None:
                        raise RtpError("an FU-A starts before the previous one ended")
                    fragment_type = unit_type
                    parts.append(START_CODE)
                    parts.append(bytes(((payload[0] & 0xE0) | unit_type,)))
                    has_idr = has_idr or unit_type == NAL_IDR
                elif fragment_type != unit_type:
                    raise RtpError("an FU-A fragment without its start")
                parts.append(payload[2:])
                if header & 0x40:
                    fragment_type = None
                continue
            if fragment_type is not None:
                raise RtpError("an FU-A interrupted by another packet")
            if 1 <= packet_type <= 23:
                units = [payload]
            elif packet_type == NAL_STAP_A:
                units = _stap_units_untrusted(payload)
            else:
                raise RtpError(f"H.264 packet type {packet_type} is not supported")
            for unit in units:
                unit_type = unit[0] & 0x1F
                if unit_type == NAL_SPS:
                    self.sps = bytes(unit)
                    has_sps = True
                elif unit_type == NAL_PPS:
                    self.pps = bytes(unit)
                    has_pps = True
                elif unit_type == NAL_IDR:
                    has_idr = True
                parts.append(START_CODE)
                parts.append(unit)
        if fragment_type is not None:
            raise RtpError("the access unit ends inside an FU-A")
        if has_idr and self.insert_parameter_sets:
            prefix = []
            if not has_sps and self.sps is not None:
                prefix += [START_CODE, self.sps]
            if not has_pps and self.pps is not None:
                prefix += [START_CODE, self.pps]
            parts = prefix + parts
        return b"".join(parts)
