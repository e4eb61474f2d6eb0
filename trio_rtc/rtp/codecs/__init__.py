"""RTP packetizers and depacketizers: pure, no trio, no clock, no PyAV.

See ``docs/rtp-codecs.md``. A :class:`Packetizer` turns encoded frames into RTP payloads; a
:class:`FrameAssembler` driven by a :class:`Depacketizer` turns RTP packets back into
:class:`EncodedFrame` objects, handling reordering, loss and memory bounds.
"""

from __future__ import annotations

from .assembler import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_FRAME_PACKETS,
    DEFAULT_REORDER_WINDOW,
    FrameAssembler,
    frame_hold,
)
from .audio import (
    G711_CLOCK_RATE,
    OPUS_CLOCK_RATE,
    PCMA_PAYLOAD_TYPE,
    PCMU_PAYLOAD_TYPE,
    G711Depacketizer,
    G711Packetizer,
    OpusDepacketizer,
    OpusPacketizer,
)
from .av1 import Av1Depacketizer, Av1Packetizer
from .base import (
    DEFAULT_MAX_PAYLOAD_SIZE,
    VIDEO_CLOCK_RATE,
    Depacketizer,
    EncodedFrame,
    Packetizer,
    PayloadInfo,
    packetize_rtp,
)
from .h264 import H264Depacketizer, H264Packetizer
from .vp8 import Vp8Depacketizer, Vp8Packetizer
from .vp9 import Vp9Depacketizer, Vp9Packetizer

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_FRAME_PACKETS",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "DEFAULT_REORDER_WINDOW",
    "G711_CLOCK_RATE",
    "OPUS_CLOCK_RATE",
    "PCMA_PAYLOAD_TYPE",
    "PCMU_PAYLOAD_TYPE",
    "VIDEO_CLOCK_RATE",
    "Av1Depacketizer",
    "Av1Packetizer",
    "Depacketizer",
    "EncodedFrame",
    "FrameAssembler",
    "G711Depacketizer",
    "G711Packetizer",
    "H264Depacketizer",
    "H264Packetizer",
    "OpusDepacketizer",
    "OpusPacketizer",
    "Packetizer",
    "PayloadInfo",
    "Vp8Depacketizer",
    "Vp8Packetizer",
    "Vp9Depacketizer",
    "Vp9Packetizer",
    "frame_hold",
    "packetize_rtp",
]
