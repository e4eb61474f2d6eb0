"""Real encoders and decoders through PyAV (tests only; trio_rtc never imports av): encode a test
pattern, packetize, depacketize, decode, and every frame decodes at the right size. A lost packet
stops decoding until the next keyframe, which the encoder is then asked for."""

from __future__ import annotations

import fractions
import os
from collections.abc import Callable, Iterator

import av
import pytest

from trio_rtc.media.av_codecs import _ordinary_scheduling
from trio_rtc.rtp.codecs import (
    Av1Depacketizer,
    Av1Packetizer,
    Depacketizer,
    EncodedFrame,
    FrameAssembler,
    H264Depacketizer,
    H264Packetizer,
    Packetizer,
    Vp8Depacketizer,
    Vp8Packetizer,
    Vp9Depacketizer,
    Vp9Packetizer,
    packetize_rtp,
)
from trio_rtc.rtp.codecs.h264 import split_annex_b
from trio_rtc.rtp.packet import RtpPacket

WIDTH, HEIGHT = 320, 240
FRAMES = 30
FORCED_KEYFRAME = 15
REALTIME_VPX = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}

# (encoder, options, decoder, packetizer, depacketizer)
CODECS: dict[
    str,
    tuple[str, dict[str, str], str, Callable[[], Packetizer], Callable[[], Depacketizer]],
] = {
    "vp8": ("libvpx", REALTIME_VPX, "vp8", Vp8Packetizer, Vp8Depacketizer),
    "h264-mode1": (
        "libx264",
        {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency"},
        "h264",
        lambda: H264Packetizer(1),
        H264Depacketizer,
    ),
    # Mode 0 works when the encoder keeps every slice under the payload size.
    "h264-mode0": (
        "libx264",
        {
            "profile": "baseline",
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": "slice-max-size=1000",
        },
        "h264",
        lambda: H264Packetizer(0),
        H264Depacketizer,
    ),
    "vp9": ("libvpx-vp9", REALTIME_VPX, "vp9", Vp9Packetizer, Vp9Depacketizer),
    "av1": ("libsvtav1", {"preset": "12"}, "libdav1d", Av1Packetizer, Av1Depacketizer),
}


def pattern_frames() -> Iterator[object]:
    """A moving gradient: enough detail for multi-packet keyframes, cheap to make."""
    for index in range(FRAMES):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane_index, plane in enumerate(frame.planes):
            row = bytes(
                (x * (plane_index + 1) * 3 + index * 5) % 256 for x in range(plane.line_size)
            )
            plane.update(b"".join(row[y % 13 :] + row[: y % 13] for y in range(plane.height)))
        frame.pts = index
        frame.time_base = fractions.Fraction(1, 30)
        if index == FORCED_KEYFRAME:
            frame.pict_type = av.video.frame.PictureType.I
        yield frame


def encode(encoder: str, options: dict[str, str]) -> list[tuple[bytes, bool]]:
    # PyAV's wheels ship these encoders; a build without one is a broken test environment.
    assert encoder in av.codecs_available, f"PyAV has no {encoder}"
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr otherwise
    context = av.CodecContext.create(encoder, "w")
    context.width, context.height = WIDTH, HEIGHT
    context.pix_fmt = "yuv420p"
    context.time_base = fractions.Fraction(1, 30)
    context.framerate = 30
    context.bit_rate = 2_000_000
    context.gop_size = 1000  # no keyframe but the first and the forced one
    context.options = options
    packets = []
    # SVT-AV1, run as root, makes the thread that opens it (here the test process's main
    # thread, on the first encode) SCHED_FIFO 99: every process the suite starts afterwards
    # would inherit real-time priority (a spinning werift peer then starved the machine and
    # hung a later test). trio_rtc's encoders guard their opens the same way.
    with _ordinary_scheduling():
        for frame in pattern_frames():
            packets += context.encode(frame)
        packets += context.encode(None)
    return [(bytes(packet), bool(packet.is_keyframe)) for packet in packets]


def packetize(
    packetizer: Packetizer, encoded: list[tuple[bytes, bool]], max_payload_size: int
) -> list[list[RtpPacket]]:
    out = []
    sequence = 65_500  # wraps within the stream
    for index, (data, keyframe) in enumerate(encoded):
        packets = packetize_rtp(
            packetizer,
            data,
            sequence_number=sequence,
            timestamp=(0xFFFF_F000 + index * 3000) & 0xFFFF_FFFF,
            payload_type=96,
            ssrc=0xCAFE,
            keyframe=keyframe,
            max_payload_size=max_payload_size,
        )
        sequence = (sequence + len(packets)) & 0xFFFF
        out.append(packets)
    return out


def decode(decoder: str, frames: list[EncodedFrame]) -> list[tuple[int, int]]:
    context = av.CodecContext.create(decoder, "r")
    sizes = []
    for frame in frames:
        for picture in context.decode(av.Packet(frame.data)):
            sizes.append((picture.width, picture.height))
    for picture in context.decode(None):
        sizes.append((picture.width, picture.height))
    return sizes


@pytest.mark.parametrize(
    ("name", "max_payload_size"),
    # x264's slices for mode 0 are sized for the default payload; the rest also run fragmented.
    [
        (name, size)
        for name in CODECS
        for size in (1148, 300)
        if (name, size) != ("h264-mode0", 300)
    ],
)
def test_real_encoder_round_trip(name: str, max_payload_size: int) -> None:
    encoder, options, decoder, make_packetizer, make_depacketizer = CODECS[name]
    encoded = encode(encoder, options)
    assert len(encoded) == FRAMES
    per_frame = packetize(make_packetizer(), encoded, max_payload_size)
    assert max(len(packets) for packets in per_frame) > 1
    depacketizer: Depacketizer = make_depacketizer()
    assembler = FrameAssembler(depacketizer)
    out = []
    for packets in per_frame:
        emitted = []
        for packet in packets:
            emitted += assembler.receive_packet(packet)
        assert len(emitted) == 1  # out on the frame's last packet, not later
        out += emitted
    assert [frame.keyframe for frame in out] == [keyframe for _, keyframe in encoded]
    assert out[0].keyframe and out[FORCED_KEYFRAME].keyframe
    if name.startswith("h264"):
        # Start codes come back as 4 bytes each: compare the NAL units.
        assert [split_annex_b(frame.data) for frame in out] == [
            split_annex_b(data) for data, _ in encoded
        ]
    else:
        assert [frame.data for frame in out] == [data for data, _ in encoded]
    assert decode(decoder, out) == [(WIDTH, HEIGHT)] * FRAMES


@pytest.mark.parametrize("name", list(CODECS))
def test_real_encoder_loss_waits_for_the_next_keyframe(name: str) -> None:
    encoder, options, decoder, make_packetizer, make_depacketizer = CODECS[name]
    encoded = encode(encoder, options)
    per_frame = packetize(make_packetizer(), encoded, 1148 if name == "h264-mode0" else 300)
    lost_frame = 5
    assert len(per_frame[lost_frame]) > 1 or name.startswith("h264")
    assembler = FrameAssembler(make_depacketizer())
    out = []
    needed_at = None
    for index, packets in enumerate(per_frame):
        for packet in packets:
            if index == lost_frame and packet is packets[0]:
                continue  # the frame's first packet is lost
            out += assembler.receive_packet(packet)
        if assembler.keyframe_needed and needed_at is None:
            needed_at = index
    assert needed_at == lost_frame + 1  # the next frame shows decoding cannot go on
    assert not assembler.keyframe_needed  # the forced keyframe repaired it
    timestamps = [(frame.timestamp - 0xFFFF_F000) & 0xFFFF_FFFF for frame in out]
    expected = list(range(lost_frame)) + list(range(FORCED_KEYFRAME, FRAMES))
    assert timestamps == [index * 3000 for index in expected]
    assert decode(decoder, out) == [(WIDTH, HEIGHT)] * len(expected)
