"""Opus (RFC 7587) and G.711 (RFC 3551): one frame per packet, the marker means a talkspurt."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.codecs import (
    G711_CLOCK_RATE,
    OPUS_CLOCK_RATE,
    PCMU_PAYLOAD_TYPE,
    Depacketizer,
    FrameAssembler,
    G711Depacketizer,
    G711Packetizer,
    OpusDepacketizer,
    OpusPacketizer,
    Packetizer,
    packetize_rtp,
)
from trio_rtc.rtp.errors import RtpError

CODECS: list[tuple[Packetizer, Depacketizer, int]] = [
    (OpusPacketizer(), OpusDepacketizer(), OPUS_CLOCK_RATE),
    (G711Packetizer(), G711Depacketizer(), G711_CLOCK_RATE),
]


def test_clock_rates() -> None:
    # RFC 7587 §4.1: Opus always counts at 48 kHz; RFC 3551 §4.5.14: G.711 at 8 kHz.
    assert OpusPacketizer.clock_rate == 48_000 and G711Packetizer.clock_rate == 8_000


@pytest.mark.parametrize(("packetizer", "depacketizer", "rate"), CODECS)
def test_round_trip_and_marker(
    packetizer: Packetizer, depacketizer: Depacketizer, rate: int
) -> None:
    frames = [bytes([0xFC, n]) + bytes(158) for n in range(20)]
    assembler = FrameAssembler(depacketizer)
    out = []
    for index, frame in enumerate(frames):
        (packet,) = packetize_rtp(
            packetizer,
            frame,
            sequence_number=(65530 + index) & 0xFFFF,
            timestamp=index * rate // 50,
            payload_type=PCMU_PAYLOAD_TYPE,
            ssrc=1,
            marker=index == 0 or None,  # a talkspurt starts with the first packet only
        )
        assert packet.payload == frame
        assert packet.marker == (index == 0)
        out += assembler.receive_packet(packet)
    assert [f.data for f in out] == frames
    assert all(f.keyframe and f.complete for f in out)


@pytest.mark.parametrize(("packetizer", "depacketizer", "rate"), CODECS)
def test_limits(packetizer: Packetizer, depacketizer: Depacketizer, rate: int) -> None:
    with pytest.raises(ValueError):
        packetizer.packetize(b"")
    with pytest.raises(ValueError, match="never fragmented"):
        packetizer.packetize(bytes(1149))
    assert packetizer.packetize(bytes(1148)) == [bytes(1148)]
    with pytest.raises(RtpError):
        depacketizer.inspect_untrusted(b"", False)
    with pytest.raises(RtpError):
        depacketizer.assemble_untrusted([b"\x01", b"\x02"])


def test_reordered_audio_comes_out_in_order_and_late_is_dropped() -> None:
    packetizer = OpusPacketizer()
    packets = [
        packetize_rtp(
            packetizer,
            bytes([n + 1]),
            sequence_number=n,
            timestamp=n * 960,
            payload_type=111,
            ssrc=2,
        )[0]
        for n in range(4)
    ]
    assembler = FrameAssembler(OpusDepacketizer())
    out = []
    for packet in (packets[0], packets[2], packets[1], packets[3]):
        out += assembler.receive_packet(packet)
    # Packet 2 completes its own frame at once; packet 1 is then older than what was emitted.
    assert [f.data for f in out] == [b"\x01", b"\x03", b"\x04"]
    assert assembler.packets_late == 1
