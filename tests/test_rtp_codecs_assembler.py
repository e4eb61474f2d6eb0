"""The frame assembler: emission on the last packet, loss, reordering, wrap-around, padding,
keyframe recovery and memory bounds (driven through the VP8, H.264 and Opus formats)."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.codecs import (
    EncodedFrame,
    FrameAssembler,
    H264Depacketizer,
    H264Packetizer,
    OpusDepacketizer,
    OpusPacketizer,
    Packetizer,
    Vp8Depacketizer,
    Vp8Packetizer,
    packetize_rtp,
)
from trio_rtc.rtp.packet import RtpPacket

SPS = bytes.fromhex("6742c01e95a0a0fd")
PPS = bytes.fromhex("68ce3c80")


def vp8_frame(index: int, size: int, keyframe: bool) -> bytes:
    # Byte 0's lowest bit is the VP8 payload header's P bit: 0 for a key frame (RFC 7741 §4.3).
    first = 0x10 if keyframe else 0x11
    return bytes([first]) + bytes((index + n) & 0xFF for n in range(size - 1))


def h264_frame(index: int, size: int, keyframe: bool) -> bytes:
    body = bytes((index + n) % 251 + 1 for n in range(size))
    if keyframe:
        return (
            b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x00\x01\x65" + body
        )
    return b"\x00\x00\x00\x01\x41" + body


def stream(
    packetizer: Packetizer,
    frames: list[tuple[bytes, bool]],
    *,
    first_sequence: int = 1000,
    max_payload_size: int = 300,
) -> list[list[RtpPacket]]:
    """Packets per frame, numbered on from ``first_sequence`` (wrapping)."""
    out = []
    sequence = first_sequence
    for index, (frame, keyframe) in enumerate(frames):
        packets = packetize_rtp(
            packetizer,
            frame,
            sequence_number=sequence,
            timestamp=(index * 3000) & 0xFFFF_FFFF,
            payload_type=96,
            ssrc=0x1234,
            keyframe=keyframe,
            max_payload_size=max_payload_size,
        )
        sequence = (sequence + len(packets)) & 0xFFFF
        out.append(packets)
    return out


def feed(assembler: FrameAssembler, packets: list[RtpPacket]) -> list[EncodedFrame]:
    frames = []
    for packet in packets:
        frames += assembler.receive_packet(packet)
    return frames


def vp8_stream(
    count: int = 5, size: int = 1000, **kwargs: int
) -> tuple[list[bytes], list[list[RtpPacket]]]:
    frames = [vp8_frame(i, size, i == 0) for i in range(count)]
    return frames, stream(Vp8Packetizer(), [(f, i == 0) for i, f in enumerate(frames)], **kwargs)


def test_frame_is_emitted_on_its_last_packet() -> None:
    frames, packets = vp8_stream()
    assembler = FrameAssembler(Vp8Depacketizer())
    for index, frame_packets in enumerate(packets):
        assert len(frame_packets) > 1
        for packet in frame_packets[:-1]:
            assert assembler.receive_packet(packet) == []
        (emitted,) = assembler.receive_packet(frame_packets[-1])
        assert emitted.data == frames[index]
        assert emitted.complete
        assert emitted.keyframe == (index == 0)
        assert emitted.timestamp == index * 3000
        assert emitted.first_sequence_number == frame_packets[0].sequence_number
        assert emitted.last_sequence_number == frame_packets[-1].sequence_number
    assert assembler.buffered_packets == 0
    assert not assembler.keyframe_needed


def test_h264_frame_without_a_start_flag_is_emitted_on_its_marker() -> None:
    # H.264 has no "first packet" flag: the previous frame's marker packet vouches for the start.
    raw = [h264_frame(i, 700, i == 0) for i in range(4)]
    packets = stream(H264Packetizer(), [(f, i == 0) for i, f in enumerate(raw)])
    assembler = FrameAssembler(H264Depacketizer())
    for frame_packets in packets:
        emitted = feed(assembler, frame_packets)
        assert len(emitted) == 1
    assert assembler.frames_emitted == 4


def test_reordering_within_a_frame() -> None:
    frames, packets = vp8_stream()
    assembler = FrameAssembler(Vp8Depacketizer())
    out = []
    for frame_packets in packets:
        out += feed(assembler, list(reversed(frame_packets)))
    assert [f.data for f in out] == frames


def test_reordering_across_frames_that_completes_in_order() -> None:
    # Frame 1's last packet arrives after frame 2's first ones: frame 1 still comes out first.
    frames, packets = vp8_stream()
    assembler = FrameAssembler(Vp8Depacketizer())
    order = packets[0] + packets[1][:-1] + packets[2][:1] + packets[1][-1:] + packets[2][1:]
    out = feed(assembler, order)
    assert [f.data for f in out] == frames[:3]
    assert not assembler.keyframe_needed


def test_h264_next_frame_waits_for_the_packet_before_it() -> None:
    # Frame 2 arrives whole before frame 1's marker packet: the start of frame 2 is unknown until
    # then, and then both come out, in order.
    raw = [h264_frame(i, 700, i == 0) for i in range(3)]
    packets = stream(H264Packetizer(), [(f, i == 0) for i, f in enumerate(raw)])
    assembler = FrameAssembler(H264Depacketizer())
    assert len(feed(assembler, packets[0])) == 1
    assert feed(assembler, packets[1][:-1] + packets[2]) == []
    out = feed(assembler, packets[1][-1:])
    assert [f.timestamp for f in out] == [3000, 6000]


def test_missing_middle_packet_means_no_frame_and_keyframe_needed() -> None:
    _frames, packets = vp8_stream(count=4)
    assembler = FrameAssembler(Vp8Depacketizer())
    assert len(feed(assembler, packets[0])) == 1
    assert feed(assembler, packets[1][:1] + packets[1][2:]) == []
    assert not assembler.keyframe_needed  # nothing has shown that decoding cannot go on yet
    # Frame 2 is whole but follows a lost frame and is not a keyframe: dropped, PLI time.
    assert feed(assembler, packets[2]) == []
    assert assembler.keyframe_needed
    assert assembler.frames_incomplete == 1
    assert assembler.frames_waiting_keyframe == 1
    assert feed(assembler, packets[3]) == []
    # A keyframe restores decoding.
    key = vp8_frame(9, 900, True)
    (key_packets,) = stream(
        Vp8Packetizer(),
        [(key, True)],
        first_sequence=(packets[3][-1].sequence_number + 1) & 0xFFFF,
    )
    (emitted,) = feed(assembler, key_packets)
    assert emitted.keyframe and emitted.data == key
    assert not assembler.keyframe_needed


def test_incomplete_frames_are_reported_when_asked() -> None:
    _, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), emit_incomplete=True, wait_for_keyframe=False)
    feed(assembler, packets[0])
    feed(assembler, packets[1][:-1])  # the marker packet is lost
    lost, after = feed(assembler, packets[2])
    assert not lost.complete and lost.data == b"" and lost.timestamp == 3000
    assert lost.first_sequence_number == packets[1][0].sequence_number
    assert lost.last_sequence_number == packets[1][-2].sequence_number
    assert after.complete and after.timestamp == 6000  # emitted anyway (wait_for_keyframe=False)
    assert assembler.keyframe_needed


def test_first_frame_not_a_keyframe_is_not_decodable() -> None:
    _, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer())
    assert feed(assembler, packets[1] + packets[2]) == []
    assert assembler.keyframe_needed


def test_sequence_numbers_wrap() -> None:
    frames, packets = vp8_stream(count=6, first_sequence=65530)
    assert any(p.sequence_number == 0 for fp in packets for p in fp)
    assembler = FrameAssembler(Vp8Depacketizer())
    out = []
    for frame_packets in packets:
        out += feed(assembler, frame_packets[::-1])
    assert [f.data for f in out] == frames
    assert assembler.packets_late == 0


def test_duplicates_and_late_packets_are_dropped_and_counted() -> None:
    frames, packets = vp8_stream(count=2)
    assembler = FrameAssembler(Vp8Depacketizer())
    assert feed(assembler, packets[0][:1] * 2) == []
    assert assembler.packets_duplicate == 1
    out = feed(assembler, packets[0][1:] + packets[1])
    assert [f.data for f in out] == frames
    assert feed(assembler, packets[0]) == []
    assert assembler.packets_late == len(packets[0])


def test_padding_fills_the_sequence_without_a_loss() -> None:
    frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer())
    feed(assembler, packets[0])
    # Renumber frames 1 and 2 to leave room for a padding packet in between.
    shifted = [
        RtpPacket(96, (p.sequence_number + 1) & 0xFFFF, p.timestamp, p.ssrc, p.payload, p.marker)
        for p in packets[1] + packets[2]
    ]
    padding = RtpPacket(96, packets[1][0].sequence_number, 0, 0x1234, b"", padding_size=200)
    out = feed(assembler, [padding, *shifted])
    assert [f.data for f in out] == frames[1:]
    assert not assembler.keyframe_needed


def test_h264_padding_before_a_frame_marks_its_start() -> None:
    raw = [h264_frame(i, 700, i == 0) for i in range(2)]
    packets = stream(H264Packetizer(), [(f, i == 0) for i, f in enumerate(raw)])
    assembler = FrameAssembler(H264Depacketizer(), wait_for_keyframe=False)
    # Packet numbering: frame 0, then a padding packet, then frame 1 (shifted by one).
    feed(assembler, packets[0])
    shifted = [
        RtpPacket(96, (p.sequence_number + 1) & 0xFFFF, p.timestamp, p.ssrc, p.payload, p.marker)
        for p in packets[1]
    ]
    padding = RtpPacket(96, packets[1][0].sequence_number, 0, 0x1234, b"")
    assert feed(assembler, shifted) == []  # the packet before frame 1 is missing
    (out,) = feed(assembler, [padding])
    assert out.timestamp == 3000


def test_picture_id_tells_a_lost_padding_packet_from_a_lost_frame() -> None:
    frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer())
    feed(assembler, packets[0])
    # Frame 1 and 2 numbered one later: the gap was a padding packet that never arrived.
    shifted = [
        RtpPacket(96, (p.sequence_number + 1) & 0xFFFF, p.timestamp, p.ssrc, p.payload, p.marker)
        for p in packets[1] + packets[2]
    ]
    out = feed(assembler, shifted)
    assert [f.data for f in out] == frames[1:]
    assert not assembler.keyframe_needed


def test_h264_after_a_loss_only_an_access_unit_start_restarts() -> None:
    raw = [h264_frame(i, 700, i in (0, 3)) for i in range(4)]
    packets = stream(H264Packetizer(), [(f, i in (0, 3)) for i, f in enumerate(raw)])
    assembler = FrameAssembler(H264Depacketizer())
    feed(assembler, packets[0])
    # Frame 1 lost entirely: frame 2's first packet (a P slice) cannot prove it starts a frame.
    assert feed(assembler, packets[2]) == []
    # Frame 3 opens with SPS: a certain start, a keyframe; the stale frame 2 is dropped.
    (out,) = feed(assembler, packets[3])
    assert out.keyframe and out.timestamp == 9000
    assert assembler.frames_incomplete == 1


def test_too_many_packets_drop_the_frame() -> None:
    _frames, packets = vp8_stream(count=3, size=3000, max_payload_size=100)
    assembler = FrameAssembler(Vp8Depacketizer(), max_frame_packets=10)
    assert len(packets[1]) > 10
    assert feed(assembler, packets[0]) == []
    assert assembler.frames_too_large == 1
    assert feed(assembler, packets[1] + packets[2]) == []
    assert assembler.frames_too_large == 3
    assert assembler.buffered_packets < 10


def test_too_many_bytes_drop_the_frame() -> None:
    _, packets = vp8_stream(count=2, size=5000, max_payload_size=1000)
    assembler = FrameAssembler(Vp8Depacketizer(), max_frame_bytes=4000)
    assert feed(assembler, packets[0] + packets[1]) == []
    assert assembler.frames_too_large == 2
    assert assembler.packets_oversized > 0


def test_buffer_stays_bounded_under_unfinished_frames() -> None:
    # Every frame loses its marker packet: nothing completes, the buffer must not grow.
    assembler = FrameAssembler(Vp8Depacketizer(), reorder_window=20, max_frame_packets=30)
    packetizer = Vp8Packetizer()
    sequence = 0
    for index in range(200):
        packets = packetize_rtp(
            packetizer,
            vp8_frame(index, 500, False),
            sequence_number=sequence,
            timestamp=index * 3000,
            payload_type=96,
            ssrc=1,
            max_payload_size=100,
        )
        sequence += len(packets)
        assert feed(assembler, packets[:-1]) == []
        assert assembler.buffered_packets <= 50
    assert assembler.packets_evicted > 0
    assert assembler.keyframe_needed


def test_packets_beyond_the_reorder_window_are_late() -> None:
    _frames, packets = vp8_stream(count=3, size=2000, max_payload_size=100)
    assembler = FrameAssembler(Vp8Depacketizer(), reorder_window=8)
    first = packets[0]
    out = feed(assembler, first[1:])
    assert out == []
    assert feed(assembler, first[:1]) == []
    assert assembler.packets_late == 1


def test_a_sender_restart_backwards_is_followed() -> None:
    _frames, packets = vp8_stream(count=2, first_sequence=40000)
    restarted = stream(
        Vp8Packetizer(), [(vp8_frame(i, 300, True), True) for i in range(40)], first_sequence=100
    )
    assembler = FrameAssembler(Vp8Depacketizer(), reorder_window=16)
    feed(assembler, packets[0] + packets[1])
    out = []
    for frame_packets in restarted:
        out += feed(assembler, frame_packets)
    assert out  # after a window of "late" packets the assembler starts over
    assert out[-1].first_sequence_number == restarted[-1][0].sequence_number


def test_audio_loss_never_needs_a_keyframe() -> None:
    packetizer = OpusPacketizer()
    frames = [bytes([0x78, index]) * 40 for index in range(10)]
    packets = stream(packetizer, [(f, False) for f in frames])
    assembler = FrameAssembler(OpusDepacketizer())
    out = feed(assembler, [p for i, fp in enumerate(packets) for p in fp if i not in (3, 4)])
    assert [f.data for f in out] == [f for i, f in enumerate(frames) if i not in (3, 4)]
    assert not assembler.keyframe_needed


def test_reset_forgets_buffered_packets() -> None:
    _, packets = vp8_stream(count=2)
    assembler = FrameAssembler(Vp8Depacketizer())
    feed(assembler, packets[0][:-1])
    assembler.reset()
    assert assembler.buffered_packets == 0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        FrameAssembler(Vp8Depacketizer(), reorder_window=0)
