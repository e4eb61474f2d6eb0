"""Audio payload formats: Opus (RFC 7587) and G.711 PCMU/PCMA (RFC 3551).

Both carry one frame per packet and need no payload header, so every packet is a whole frame:
the depacketizers report each payload as starting and ending a frame, and as a "keyframe" because
an audio frame never depends on the one before it being decodable (the decoder conceals a lost
packet on its own). The RTP marker bit means the start of a talkspurt here (RFC 3551 §4.1,
RFC 7587 §4.1), never a frame end: pass ``marker=True`` to
:func:`~trio_rtc.rtp.codecs.base.packetize_rtp` for the first packet after silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..errors import RtpError
from .base import DEFAULT_MAX_PAYLOAD_SIZE, Depacketizer, Packetizer, PayloadInfo

__all__ = [
    "G711_CLOCK_RATE",
    "G711_FRAME_SAMPLES",
    "OPUS_CLOCK_RATE",
    "PCMA_PAYLOAD_TYPE",
    "PCMU_PAYLOAD_TYPE",
    "G711Depacketizer",
    "G711Packetizer",
    "OpusDepacketizer",
    "OpusPacketizer",
]

# RFC 7587 §4.1: the RTP clock of Opus is always 48 kHz, whatever rate the encoder runs at.
OPUS_CLOCK_RATE = 48_000
G711_CLOCK_RATE = 8_000
# RFC 3551 §4.5 recommends 20 ms packets for sample-based codecs: 160 one-byte samples at 8 kHz.
G711_FRAME_SAMPLES = 160
# RFC 3551 §6, Table 4: the static payload types.
PCMU_PAYLOAD_TYPE = 0
PCMA_PAYLOAD_TYPE = 8

_WHOLE = PayloadInfo(True, True, True)


def _single_payload(frame: bytes, max_payload_size: int, what: str) -> list[bytes]:
    if not frame:
        raise ValueError(f"an empty {what} frame: an empty RTP payload would read as padding")
    if len(frame) > max_payload_size:
        raise ValueError(
            f"a {len(frame)}-byte {what} frame does not fit a {max_payload_size}-byte payload; "
            f"{what} frames are never fragmented (one frame per packet)"
        )
    return [bytes(frame)]


class OpusPacketizer(Packetizer):
    """RFC 7587 §4.2: the payload is exactly one Opus packet (which may itself hold several
    20 ms frames, per its TOC byte); the RTP timestamp advances by 48 kHz samples."""

    clock_rate: ClassVar[int] = OPUS_CLOCK_RATE
    marker_on_last: ClassVar[bool] = False

    def packetize(
        self,
        frame: bytes,
        *,
        keyframe: bool = False,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> list[bytes]:
        return _single_payload(frame, max_payload_size, "Opus")


class OpusDepacketizer(Depacketizer):
    """Every non-empty payload is one Opus packet, handed to the decoder unchanged.

    The Opus packet structure (RFC 6716 §3) is the decoder's to check: a damaged packet decodes
    as a lost one there, which is the best any receiver can do with it.
    """

    clock_rate: ClassVar[int] = OPUS_CLOCK_RATE

    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        if not payload:
            raise RtpError("an empty Opus payload")
        return _WHOLE

    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        if len(payloads) != 1:
            raise RtpError(f"an Opus frame is one packet, not {len(payloads)}")
        return bytes(payloads[0])


class G711Packetizer(Packetizer):
    """RFC 3551 §4.5.14: PCMU (payload type 0) and PCMA (8) payloads are the 8-bit samples
    themselves, one byte per 1/8000 s. Send one 20 ms frame (160 samples) per packet; the RTP
    timestamp advances by the number of samples."""

    clock_rate: ClassVar[int] = G711_CLOCK_RATE
    marker_on_last: ClassVar[bool] = False

    def packetize(
        self,
        frame: bytes,
        *,
        keyframe: bool = False,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> list[bytes]:
        return _single_payload(frame, max_payload_size, "G.711")


class G711Depacketizer(Depacketizer):
    """Any non-empty payload is a run of samples (any length: senders choose their ptime)."""

    clock_rate: ClassVar[int] = G711_CLOCK_RATE

    def inspect_untrusted(self, payload: bytes, marker: bool) -> PayloadInfo:
        if not payload:
            raise RtpError("an empty G.711 payload")
        return _WHOLE

    def assemble_untrusted(self, payloads: Sequence[bytes]) -> bytes:
        if len(payloads) != 1:
            raise RtpError(f"a G.711 frame is one packet, not {len(payloads)}")
        return bytes(payloads[0])
