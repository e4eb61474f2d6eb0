"""Hypothesis: every depacketizer takes any payload bytes with a result or RtpError only; the
assembler takes any packets without raising; and loss, reordering and duplication of a packetized
stream never yield a frame that claims to be complete but differs from what was sent."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_rtc.rtp.codecs import (
    Av1Depacketizer,
    Av1Packetizer,
    Depacketizer,
    FrameAssembler,
    G711Depacketizer,
    G711Packetizer,
    H264Depacketizer,
    H264Packetizer,
    OpusDepacketizer,
    OpusPacketizer,
    Packetizer,
    Vp8Depacketizer,
    Vp8Packetizer,
    Vp9Depacketizer,
    Vp9Packetizer,
    packetize_rtp,
)
from trio_rtc.rtp.codecs.av1 import TEMPORAL_DELIMITER, leb128_encode
from trio_rtc.rtp.errors import RtpError
from trio_rtc.rtp.packet import RtpPacket

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DEPACKETIZERS: list[Callable[[], Depacketizer]] = [
    Vp8Depacketizer,
    Vp9Depacketizer,
    H264Depacketizer,
    Av1Depacketizer,
    OpusDepacketizer,
    G711Depacketizer,
]
IDS = ["vp8", "vp9", "h264", "av1", "opus", "g711"]


@pytest.mark.parametrize("make", DEPACKETIZERS, ids=IDS)
@FUZZ
@given(payloads=st.lists(st.binary(max_size=64), min_size=1, max_size=5), marker=st.booleans())
def test_depacketizers_take_any_bytes(
    make: Callable[[], Depacketizer], payloads: list[bytes], marker: bool
) -> None:
    depacketizer = make()
    for payload in payloads:
        try:
            depacketizer.inspect_untrusted(payload, marker)
        except RtpError:
            pass
    try:
        assert isinstance(depacketizer.assemble_untrusted(payloads), bytes)
    except RtpError:
        pass


@pytest.mark.parametrize("make", DEPACKETIZERS, ids=IDS)
@FUZZ
@given(
    packets=st.lists(
        st.tuples(
            st.integers(0, 40),
            st.integers(0, 3),
            st.booleans(),
            st.binary(max_size=24),
        ),
        max_size=60,
    )
)
def test_assembler_takes_any_packets(
    make: Callable[[], Depacketizer], packets: list[tuple[int, int, bool, bytes]]
) -> None:
    assembler = FrameAssembler(make(), reorder_window=16, max_frame_packets=8, max_frame_bytes=64)
    for sequence, timestamp, marker, payload in packets:
        for frame in assembler.receive_packet(
            RtpPacket(96, (65520 + sequence) & 0xFFFF, timestamp, 1, payload, marker)
        ):
            assert isinstance(frame.data, bytes)
        assert assembler.buffered_packets <= 24


def _body(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def vp8_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    out = []
    for index in range(count):
        key = index % 5 == 0
        out.append((bytes([0x10 if key else 0x11]) + _body(rng, rng.randint(0, 900)), key))
    return out


def vp9_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    return [(_body(rng, rng.randint(1, 900)), index % 5 == 0) for index in range(count)]


def h264_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    sc = b"\x00\x00\x00\x01"

    def unit(first: int, size: int) -> bytes:
        # No zero bytes in the body, so no start code can hide inside it.
        return bytes([first]) + bytes(rng.randint(1, 255) for _ in range(size))

    out = []
    for index in range(count):
        if index % 5 == 0:
            frame = sc + unit(0x67, 6) + sc + unit(0x68, 3) + sc + unit(0x65, rng.randint(1, 900))
            out.append((frame, True))
        else:
            slices = [sc + unit(0x41, rng.randint(1, 500)) for _ in range(rng.randint(1, 3))]
            out.append((b"".join(slices), False))
    return out


def h264_small_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    """Frames of several small slices: packetization-mode 0 sends each in its own packet."""
    sc = b"\x00\x00\x00\x01"

    def unit(first: int, size: int) -> bytes:
        return bytes([first]) + bytes(rng.randint(1, 255) for _ in range(size))

    out = []
    for index in range(count):
        key = index % 5 == 0
        units = [unit(0x67, 6), unit(0x68, 3)] if key else []
        units += [unit(0x65 if key else 0x41, rng.randint(1, 50)) for _ in range(rng.randint(1, 6))]
        out.append((b"".join(sc + u for u in units), key))
    return out


def av1_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    def obu(obu_type: int, size: int) -> bytes:
        return bytes([(obu_type << 3) | 0x02]) + leb128_encode(size) + _body(rng, size)

    out = []
    for index in range(count):
        key = index % 5 == 0
        obus = [obu(1, 10)] if key else []
        obus += [obu(rng.choice((5, 6)), rng.randint(0, 600)) for _ in range(rng.randint(1, 5))]
        out.append((TEMPORAL_DELIMITER + b"".join(obus), key))
    return out


def audio_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    return [(_body(rng, rng.randint(1, 60)), True) for _ in range(count)]


CASES: list[
    tuple[
        Callable[[], Packetizer],
        Callable[[], Depacketizer],
        Callable[[random.Random, int], list[tuple[bytes, bool]]],
    ]
] = [
    (Vp8Packetizer, Vp8Depacketizer, vp8_frames),
    (Vp9Packetizer, Vp9Depacketizer, vp9_frames),
    (lambda: H264Packetizer(1), H264Depacketizer, h264_frames),
    (lambda: H264Packetizer(0), H264Depacketizer, h264_small_frames),
    (Av1Packetizer, Av1Depacketizer, av1_frames),
    (OpusPacketizer, OpusDepacketizer, audio_frames),
    (G711Packetizer, G711Depacketizer, audio_frames),
]
CASE_IDS = ["vp8", "vp9", "h264-mode1", "h264-mode0", "av1", "opus", "g711"]


@pytest.mark.parametrize(
    ("make_packetizer", "make_depacketizer", "make_frames"), CASES, ids=CASE_IDS
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    first_sequence=st.integers(0, 0xFFFF),
    max_payload_size=st.integers(60, 1200),
    loss=st.sampled_from([0.0, 0.02, 0.1, 0.3]),
    jitter=st.sampled_from([0, 1, 3, 10]),
    duplicates=st.sampled_from([0.0, 0.05]),
    wait_for_keyframe=st.booleans(),
)
def test_loss_and_reordering_never_yield_a_corrupt_complete_frame(
    make_packetizer: Callable[[], Packetizer],
    make_depacketizer: Callable[[], Depacketizer],
    make_frames: Callable[[random.Random, int], list[tuple[bytes, bool]]],
    seed: int,
    first_sequence: int,
    max_payload_size: int,
    loss: float,
    jitter: int,
    duplicates: float,
    wait_for_keyframe: bool,
) -> None:
    rng = random.Random(seed)
    frames = make_frames(rng, 15)
    packetizer = make_packetizer()
    sent: dict[int, bytes] = {}
    packets: list[RtpPacket] = []
    sequence = first_sequence
    for index, (frame, keyframe) in enumerate(frames):
        timestamp = (0xFFFF_0000 + index * 3000) & 0xFFFF_FFFF
        sent[timestamp] = frame
        frame_packets = packetize_rtp(
            packetizer,
            frame,
            sequence_number=sequence,
            timestamp=timestamp,
            payload_type=96,
            ssrc=1,
            keyframe=keyframe,
            max_payload_size=max_payload_size,
        )
        sequence = (sequence + len(frame_packets)) & 0xFFFF
        packets += frame_packets
    arrivals = []
    for index, packet in enumerate(packets):
        if rng.random() < loss:
            continue
        arrivals.append((index + rng.uniform(0, jitter), packet))
        if rng.random() < duplicates:
            arrivals.append((index + rng.uniform(0, jitter + 5), packet))
    arrivals.sort(key=lambda item: item[0])
    assembler = FrameAssembler(
        make_depacketizer(), wait_for_keyframe=wait_for_keyframe, emit_incomplete=True
    )
    emitted = []
    for _, packet in arrivals:
        emitted += assembler.receive_packet(packet)
    complete = [frame for frame in emitted if frame.complete]
    for got in complete:
        assert got.data == sent[got.timestamp]
    order = [(got.timestamp - 0xFFFF_0000) & 0xFFFF_FFFF for got in emitted]
    assert order == sorted(order)  # in order, each at most once
    assert len(set(order)) == len(order)
    if loss == 0 and jitter == 0:
        assert [got.data for got in complete] == [data for data, _ in frames]
        assert not assembler.keyframe_needed
