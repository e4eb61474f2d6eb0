"""The frame assembler as a jitter buffer: whole frames held behind a gap until a retransmission
fills it or ``max_wait`` passes, its timer, its memory bounds and its W3C statistics. Time is a
plain number here; the assembler never reads a clock."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from test_rtp_codecs_assembler import h264_frame, stream, vp8_frame, vp8_stream

from trio_rtc.rtp.codecs import (
    EncodedFrame,
    FrameAssembler,
    H264Depacketizer,
    H264Packetizer,
    Vp8Depacketizer,
    Vp8Packetizer,
)
from trio_rtc.rtp.packet import RtpPacket


def feed_at(assembler: FrameAssembler, packets: list[RtpPacket], now: float) -> list[EncodedFrame]:
    frames = []
    for packet in packets:
        frames += assembler.receive_packet(packet, now)
    return frames


def shifted(packets: list[RtpPacket], by: int = 1) -> list[RtpPacket]:
    """The same packets numbered ``by`` later (room for a padding packet before them)."""
    return [
        RtpPacket(96, (p.sequence_number + by) & 0xFFFF, p.timestamp, p.ssrc, p.payload, p.marker)
        for p in packets
    ]


def test_a_retransmission_releases_the_held_frames_in_order() -> None:
    frames, packets = vp8_stream(count=5)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.1)
    assert len(feed_at(assembler, packets[0], 0.0)) == 1
    lost = packets[1][1]
    assert feed_at(assembler, [p for p in packets[1] if p is not lost], 0.01) == []
    assert feed_at(assembler, packets[2], 0.02) == []
    assert feed_at(assembler, packets[3], 0.03) == []
    assert assembler.held_frames == 2
    assert assembler.get_timer() == 0.02 + 0.1  # from the first frame held behind the gap
    assert not assembler.keyframe_needed  # a held gap is not a loss yet
    out = assembler.receive_packet(lost, 0.05)
    assert [f.data for f in out] == frames[1:4]
    assert all(f.complete for f in out)
    assert not assembler.keyframe_needed
    assert assembler.get_timer() is None
    assert (assembler.frames_held, assembler.gaps_repaired, assembler.gaps_given_up) == (2, 1, 0)
    assert assembler.frames_incomplete == 0 and assembler.frames_waiting_keyframe == 0
    (last,) = feed_at(assembler, packets[4], 0.06)
    assert last.data == frames[4]
    assert assembler.buffered_packets == 0


def test_without_loss_nothing_waits() -> None:
    frames, packets = vp8_stream(count=6)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.5)
    for index, frame_packets in enumerate(packets):
        (out,) = feed_at(assembler, frame_packets, index / 30)
        assert out.data == frames[index]
        assert assembler.get_timer() is None
    assert assembler.frames_held == 0


def test_reordering_across_frames_is_repaired_instead_of_dropped() -> None:
    # Frame 1's last packet arrives after all of frame 2: frame 2 waits for it; without a hold
    # frame 1 would be dropped and frame 2 would need a keyframe.
    frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.05)
    order = packets[0] + packets[1][:-1] + packets[2] + packets[1][-1:]
    out = feed_at(assembler, order, 1.0)
    assert [f.data for f in out] == frames
    assert assembler.gaps_repaired == 1 and assembler.frames_incomplete == 0
    assert not assembler.keyframe_needed


def test_reordering_within_a_frame_holds_nothing() -> None:
    frames, packets = vp8_stream()
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.1)
    out = []
    for index, frame_packets in enumerate(packets):
        out += feed_at(assembler, frame_packets[::-1], index * 0.03)
    assert [f.data for f in out] == frames
    assert assembler.frames_held == 0 and assembler.buffered_packets == 0


def test_a_gap_is_given_up_at_exactly_max_wait() -> None:
    _frames, packets = vp8_stream(count=4)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.25)
    feed_at(assembler, packets[0], 0.0)
    feed_at(assembler, packets[1][:-1], 0.5)  # the marker packet is lost for good
    assert feed_at(assembler, packets[2], 1.0) == []
    assert assembler.receive_packet(packets[3][0], 1.125) == []
    assert assembler.get_timer() == 1.25
    assert assembler.handle_timer(math.nextafter(1.25, 0.0)) == []
    assert assembler.held_frames == 1
    # Frame 2 follows a lost frame and is not a keyframe: dropped, and a keyframe is needed.
    assert assembler.handle_timer(1.25) == []
    assert assembler.get_timer() is None
    assert assembler.keyframe_needed
    assert (assembler.gaps_given_up, assembler.frames_incomplete) == (1, 1)
    assert assembler.frames_waiting_keyframe == 1
    assert feed_at(assembler, packets[3][1:], 1.3) == []  # still waiting for a keyframe


def test_giving_up_reports_the_lost_frame_then_releases_the_held_ones() -> None:
    frames, packets = vp8_stream(count=4)
    assembler = FrameAssembler(
        Vp8Depacketizer(), max_wait=0.25, wait_for_keyframe=False, emit_incomplete=True
    )
    feed_at(assembler, packets[0], 0.0)
    feed_at(assembler, packets[1][1:], 0.0)  # the first packet is lost for good
    feed_at(assembler, packets[2] + packets[3], 0.125)
    assert assembler.held_frames == 2
    # A packet arriving after the deadline gives the gap up too (the driver was late).
    lost, second, third = assembler.receive_packet(packets[3][0], 0.5)
    assert not lost.complete and lost.timestamp == 3000
    assert [second.data, third.data] == frames[2:]
    assert assembler.keyframe_needed


def test_a_lost_padding_packet_given_up_needs_no_keyframe() -> None:
    # Frame 2 is numbered one later than its predecessor's end: the gap is a padding packet that
    # never arrives. The PictureID shows no picture was skipped, so frame 2 still decodes.
    frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.25)
    feed_at(assembler, packets[0] + packets[1], 0.0)
    assert feed_at(assembler, shifted(packets[2]), 0.5) == []
    (out,) = assembler.handle_timer(0.75)
    assert out.data == frames[2]
    assert not assembler.keyframe_needed and assembler.gaps_given_up == 1


def test_padding_arriving_late_fills_a_gap() -> None:
    frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.1)
    feed_at(assembler, packets[0] + packets[1], 0.0)
    assert feed_at(assembler, shifted(packets[2]), 0.01) == []
    padding = RtpPacket(96, packets[2][0].sequence_number, 0, 0x1234, b"")
    (out,) = assembler.receive_packet(padding, 0.02)
    assert out.data == frames[2] and assembler.gaps_repaired == 1


def test_a_keyframe_is_never_held() -> None:
    raw = [vp8_frame(i, 1000, i in (0, 3)) for i in range(4)]
    packets = stream(Vp8Packetizer(), [(f, i in (0, 3)) for i, f in enumerate(raw)])
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=1.0)
    feed_at(assembler, packets[0], 0.0)
    feed_at(assembler, packets[1][:-1], 0.1)
    assert feed_at(assembler, packets[2], 0.2) == []  # held
    (key,) = feed_at(assembler, packets[3], 0.3)  # the gap is given up for it at once
    assert key.keyframe and key.data == raw[3]
    assert assembler.held_frames == 0 and assembler.gaps_given_up == 1
    assert not assembler.keyframe_needed


def test_a_hold_across_the_sequence_number_wrap() -> None:
    raw = [h264_frame(i, 700, i == 0) for i in range(6)]
    packets = stream(
        H264Packetizer(), [(f, i == 0) for i, f in enumerate(raw)], first_sequence=65529
    )
    numbers = [p.sequence_number for fp in packets for p in fp]
    assert 65535 in numbers and 0 in numbers
    (frame_index,) = [i for i, fp in enumerate(packets) if fp[-1].sequence_number == 65535]
    assert 0 < frame_index < 5
    lost = packets[frame_index][-1]  # the marker packet of the frame that ends on 65535
    assembler = FrameAssembler(H264Depacketizer(), max_wait=0.2)
    out = []
    for index, frame_packets in enumerate(packets):
        out += feed_at(assembler, [p for p in frame_packets if p is not lost], index * 0.01)
    assert len(out) == frame_index
    out += assembler.receive_packet(lost, 0.1)
    assert [f.data for f in out] == raw
    assert not assembler.keyframe_needed and assembler.packets_late == 0


def test_a_middle_loss_across_the_wrap_holds_h264_frames() -> None:
    raw = [h264_frame(i, 700, i == 0) for i in range(5)]
    packets = stream(
        H264Packetizer(), [(f, i == 0) for i, f in enumerate(raw)], first_sequence=65531
    )
    lost = packets[1][1]
    assert [p.sequence_number for p in packets[1]] == [65535, 0, 1]
    assembler = FrameAssembler(H264Depacketizer(), max_wait=0.2)
    feed_at(assembler, packets[0], 0.0)
    assert feed_at(assembler, [p for p in packets[1] if p is not lost], 0.01) == []
    assert feed_at(assembler, packets[2] + packets[3] + packets[4], 0.02) == []
    assert assembler.held_frames == 3
    out = assembler.receive_packet(lost, 0.03)
    assert [f.data for f in out] == raw[1:]


def test_held_frames_stay_within_the_memory_bounds() -> None:
    # A gap that never fills and a long max_wait: the held frames fill the byte bound, and the
    # gap is then given up (its frames released, not evicted) rather than the bound exceeded.
    assembler = FrameAssembler(
        Vp8Depacketizer(),
        reorder_window=40,
        max_frame_packets=20,
        max_frame_bytes=3000,
        max_wait=60.0,
    )
    frames = [vp8_frame(i, 500, i == 0) for i in range(300)]
    packets = stream(Vp8Packetizer(), [(f, i == 0) for i, f in enumerate(frames)])
    out = []
    for index, frame_packets in enumerate(packets):
        if index % 50 == 1:
            frame_packets = frame_packets[1:]  # a lost packet every 50 frames, never repaired
        out += feed_at(assembler, frame_packets, index * 0.01)
        assert assembler.buffered_packets <= 60
        assert assembler.buffered_bytes <= 6000
    assert assembler.gaps_given_up >= 6 and assembler.packets_evicted == 0
    timestamps = [f.timestamp for f in out]
    assert timestamps == sorted(set(timestamps))


def test_held_frames_stay_within_the_packet_bound_under_padding() -> None:
    assembler = FrameAssembler(
        Vp8Depacketizer(), reorder_window=8, max_frame_packets=8, max_wait=60.0
    )
    for sequence in range(1000):
        assembler.receive_packet(RtpPacket(96, sequence & 0xFFFF, 0, 1, b""), sequence * 0.001)
        assert assembler.buffered_packets <= 16


def test_jitter_buffer_statistics() -> None:
    frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=1.0)
    feed_at(assembler, packets[0][:-1], 0.0)
    assert len(feed_at(assembler, packets[0][-1:], 0.5)) == 1  # 0.5 s from its first packet
    lost = packets[1][0]
    feed_at(assembler, packets[1][1:], 1.0)
    feed_at(assembler, packets[2], 1.25)
    out = assembler.receive_packet(lost, 1.5)  # 0.5 s and 0.25 s
    assert [f.data for f in out] == frames[1:]
    assert assembler.jitter_buffer_emitted_count == 3
    assert assembler.jitter_buffer_delay == 1.25


def test_no_time_no_statistics_and_no_hold() -> None:
    _frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=1.0)
    for frame_packets in packets:
        for packet in frame_packets:
            assembler.receive_packet(packet)
    assert assembler.frames_emitted == 3
    assert assembler.jitter_buffer_emitted_count == 0 and assembler.jitter_buffer_delay == 0.0
    assert assembler.frames_held == 0 and assembler.get_timer() is None


def test_max_wait_follows_the_round_trip_time() -> None:
    _frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.5)
    feed_at(assembler, packets[0] + packets[1][1:] + packets[2], 2.0)
    assert assembler.get_timer() == 2.5
    assembler.set_max_wait(0.125)
    assert assembler.get_timer() == 2.125
    for bad in (-1.0, math.nan):
        try:
            assembler.set_max_wait(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("a negative or NaN max_wait must be refused")


def test_reset_forgets_held_frames() -> None:
    _frames, packets = vp8_stream(count=3)
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.5)
    feed_at(assembler, packets[0] + packets[1][1:] + packets[2], 0.0)
    assert assembler.held_frames == 1
    assembler.reset()
    assert assembler.held_frames == 0 and assembler.get_timer() is None


# --- properties -----------------------------------------------------------------------------

FRAME_COUNT = 24


def _frames_and_packets(
    first_sequence: int, keyframes: set[int]
) -> tuple[list[bytes], list[RtpPacket]]:
    raw = [vp8_frame(i, 150 + 97 * (i % 7), i == 0 or i in keyframes) for i in range(FRAME_COUNT)]
    per_frame = stream(
        Vp8Packetizer(),
        [(f, i == 0 or i in keyframes) for i, f in enumerate(raw)],
        first_sequence=first_sequence,
        max_payload_size=120,
    )
    return raw, [p for fp in per_frame for p in fp]


def _run(
    assembler: FrameAssembler, arrivals: list[tuple[float, RtpPacket]], raw: list[bytes]
) -> list[EncodedFrame]:
    """Feed the arrivals in time order, firing the timer when it is due, as the driver does."""
    out: list[EncodedFrame] = []
    bound_packets = assembler._max_stored_packets
    bound_bytes = assembler._max_stored_bytes
    newest = -1
    for now, packet in sorted(arrivals, key=lambda arrival: arrival[0]):
        timer = assembler.get_timer()
        frames = [] if timer is None or timer > now else assembler.handle_timer(timer)
        restarts = assembler.sequence_restarts
        frames += assembler.receive_packet(packet, now)
        if assembler.sequence_restarts != restarts:
            # A run of late duplicates longer than the reorder window looks like a sender that
            # restarted its numbering: the assembler starts over, and so does the order.
            newest = -1
        for frame in frames:
            assert frame.timestamp > newest  # in order, each at most once
            newest = frame.timestamp
            if frame.complete:
                assert frame.data == raw[frame.timestamp // 3000]
        out += frames
        assert assembler.buffered_packets <= bound_packets
        assert assembler.buffered_bytes <= bound_bytes
    frames = assembler.handle_timer(math.inf)
    assert all(frame.timestamp > newest for frame in frames)
    assert assembler.held_frames == 0
    return out + frames


@settings(max_examples=150)
@given(
    first_sequence=st.integers(0, 0xFFFF),
    keyframes=st.sets(st.integers(1, FRAME_COUNT - 1), max_size=3),
    # Per packet: kept (after a delay), lost, duplicated, or retransmitted (a good while later).
    fate=st.lists(st.tuples(st.sampled_from("kkkkkkldr"), st.floats(0.0, 0.2)), min_size=1),
    max_wait=st.sampled_from([0.0, 0.01, 0.05, 0.5]),
    small=st.booleans(),
    emit_incomplete=st.booleans(),
)
def test_loss_reordering_and_duplication_never_break_order_or_bounds(
    first_sequence: int,
    keyframes: set[int],
    fate: list[tuple[str, float]],
    max_wait: float,
    small: bool,
    emit_incomplete: bool,
) -> None:
    raw, packets = _frames_and_packets(first_sequence, keyframes)
    arrivals = []
    for index, packet in enumerate(packets):
        kind, delay = fate[index % len(fate)]
        sent = index * 0.005
        if kind == "r":
            arrivals.append((sent + 0.05 + 2 * delay, packet))
        elif kind != "l":
            arrivals.append((sent + delay, packet))
        if kind == "d":
            arrivals.append((sent + 2 * delay + 0.001, packet))
    limits = (
        {"reorder_window": 12, "max_frame_packets": 10, "max_frame_bytes": 900} if small else {}
    )
    assembler = FrameAssembler(
        Vp8Depacketizer(), max_wait=max_wait, emit_incomplete=emit_incomplete, **limits
    )
    _run(assembler, arrivals, raw)


@settings(max_examples=100)
@given(
    first_sequence=st.integers(0, 0xFFFF),
    # Not the very first packet: nobody can know of a loss before the first packet received.
    lost=st.sets(st.integers(1, 200)),
    jitter=st.lists(st.floats(0.0, 0.004), min_size=1),
    rtt=st.floats(0.075, 0.095),
)
def test_every_retransmission_within_max_wait_saves_every_frame(
    first_sequence: int, lost: set[int], jitter: list[float], rtt: float
) -> None:
    raw, packets = _frames_and_packets(first_sequence, set())
    arrivals = []
    for index, packet in enumerate(packets):
        sent = index * 0.005 + jitter[index % len(jitter)]
        arrivals.append((sent + rtt if index in lost else sent, packet))
    assembler = FrameAssembler(Vp8Depacketizer(), max_wait=0.1)
    out = _run(assembler, arrivals, raw)
    assert [f.data for f in out] == raw
    assert not assembler.keyframe_needed
    assert assembler.gaps_given_up == 0 and assembler.frames_incomplete == 0
    # A retransmission lands 15 packets or more after the loss, by when the next frame is whole.
    if lost and min(lost) < len(packets) - 14:
        assert assembler.frames_held > 0
