"""RFC 2198 redundant audio (RED) for Opus: encoder, parser and the decoder that recovers frames
of lost packets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_rtc.rtp.errors import RtpError
from trio_rtc.rtp.red import (
    MAX_BLOCK_LENGTH,
    MAX_RED_BLOCKS,
    MAX_TIMESTAMP_OFFSET,
    RedBlock,
    RedDecoder,
    RedEncoder,
    RedFrame,
    parse_red_untrusted,
)

OPUS = 111
FRAME = 960  # 20 ms at 48 kHz


def frame(index: int, size: int = 60) -> bytes:
    return bytes([index & 0xFF]) * size


def stream(
    count: int, distance: int, start_ts: int = 1000, start_seq: int = 7
) -> list[tuple[int, int, bytes]]:
    """``count`` RED packets (sequence number, timestamp, payload) of 20 ms Opus frames."""
    encoder = RedEncoder(distance)
    packets = []
    for index in range(count):
        timestamp = (start_ts + index * FRAME) & 0xFFFF_FFFF
        packets.append(
            ((start_seq + index) & 0xFFFF, timestamp, encoder.encode(OPUS, timestamp, frame(index)))
        )
    return packets


# --- wire format -------------------------------------------------------------------------------


def test_first_packets_carry_fewer_blocks_then_distance() -> None:
    encoder = RedEncoder(2)
    first = encoder.encode(OPUS, 1000, b"a")
    assert first == bytes([OPUS]) + b"a"  # just the 1-byte primary header
    second = encoder.encode(OPUS, 1960, b"bb")
    # F=1, PT 111, offset 960, length 1; then the primary header; then the data.
    word = 0x8000_0000 | OPUS << 24 | 960 << 10 | 1
    assert second == word.to_bytes(4, "big") + bytes([OPUS]) + b"a" + b"bb"
    third = encoder.encode(OPUS, 2920, b"ccc")
    assert parse_red_untrusted(third) == [
        RedBlock(OPUS, 1920, b"a"),
        RedBlock(OPUS, 960, b"bb"),
        RedBlock(OPUS, 0, b"ccc"),
    ]
    fourth = encoder.encode(OPUS, 3880, b"d")
    assert [b.data for b in parse_red_untrusted(fourth)] == [b"bb", b"ccc", b"d"]


@pytest.mark.parametrize("distance", [1, 2])
def test_round_trip_across_the_timestamp_wrap(distance: int) -> None:
    packets = stream(10, distance, start_ts=0xFFFF_FFFF - 3 * FRAME, start_seq=0xFFFD)
    for index, (_, _, payload) in enumerate(packets):
        blocks = parse_red_untrusted(payload)
        assert len(blocks) == min(index, distance) + 1
        assert blocks[-1] == RedBlock(OPUS, 0, frame(index))
        for back, block in enumerate(reversed(blocks[:-1]), start=1):
            assert block == RedBlock(OPUS, back * FRAME, frame(index - back))
    frames = RedDecoder().receive_all(packets)
    assert [f.data for f in frames] == [frame(i) for i in range(10)]
    assert not any(f.recovered for f in frames)
    assert [f.sequence_number for f in frames] == [(0xFFFD + i) & 0xFFFF for i in range(10)]


def test_distance_is_one_or_two() -> None:
    for bad in (0, 3):
        with pytest.raises(ValueError):
            RedEncoder(bad)
    with pytest.raises(ValueError):
        RedEncoder(1).encode(128, 0, b"x")
    with pytest.raises(ValueError):
        RedEncoder(1).encode(OPUS, 1 << 32, b"x")


# --- what does not fit -------------------------------------------------------------------------


def test_a_block_whose_offset_does_not_fit_is_left_out() -> None:
    encoder = RedEncoder(2)
    encoder.encode(OPUS, 0, b"old")
    encoder.encode(OPUS, 100, b"mid")
    # "old" is 2**14 units back: too far for 14 bits; "mid" fits.
    blocks = parse_red_untrusted(encoder.encode(OPUS, 1 << 14, b"new"))
    assert blocks == [RedBlock(OPUS, (1 << 14) - 100, b"mid"), RedBlock(OPUS, 0, b"new")]
    assert MAX_TIMESTAMP_OFFSET == (1 << 14) - 1
    # A timestamp going backwards (or standing still) gives no redundancy.
    assert parse_red_untrusted(encoder.encode(OPUS, 50, b"back")) == [RedBlock(OPUS, 0, b"back")]


def test_a_block_whose_length_does_not_fit_is_left_out_and_so_are_older_ones() -> None:
    encoder = RedEncoder(2, max_payload_size=10_000)
    encoder.encode(OPUS, 0, b"small")
    encoder.encode(OPUS, 960, b"x" * (MAX_BLOCK_LENGTH + 1))
    # The big frame cannot be a redundant block; the older small one would fit but is not
    # taken, so that the blocks stay the packets just before this one.
    assert parse_red_untrusted(encoder.encode(OPUS, 1920, b"p")) == [RedBlock(OPUS, 0, b"p")]
    encoder.encode(OPUS, 2880, b"x" * MAX_BLOCK_LENGTH)
    blocks = parse_red_untrusted(encoder.encode(OPUS, 3840, b"q"))
    assert [len(b.data) for b in blocks] == [1, MAX_BLOCK_LENGTH, 1]


def test_the_payload_size_limit_drops_the_oldest_blocks_first() -> None:
    encoder = RedEncoder(2, max_payload_size=1 + 100 + 4 + 100 + 4 + 100 - 1)
    for index in range(2):
        encoder.encode(OPUS, index * FRAME, frame(index, 100))
    payload = encoder.encode(OPUS, 2 * FRAME, frame(2, 100))
    assert [b.data for b in parse_red_untrusted(payload)] == [frame(1, 100), frame(2, 100)]
    assert len(payload) <= 1 + 100 + 4 + 100 + 4 + 100 - 1
    # A primary larger than the limit goes out alone.
    big = encoder.encode(OPUS, 3 * FRAME, b"z" * 400)
    assert parse_red_untrusted(big) == [RedBlock(OPUS, 0, b"z" * 400)]


def test_empty_frames_are_not_repeated() -> None:
    encoder = RedEncoder(1)
    encoder.encode(OPUS, 0, b"")
    assert parse_red_untrusted(encoder.encode(OPUS, 960, b"a")) == [RedBlock(OPUS, 0, b"a")]


# --- parser bounds -----------------------------------------------------------------------------


def header(payload_type: int, offset: int, length: int) -> bytes:
    return (0x8000_0000 | payload_type << 24 | offset << 10 | length).to_bytes(4, "big")


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # no header at all
        header(OPUS, 960, 1),  # no primary header
        header(OPUS, 960, 1)[:3],  # a header cut short
        header(OPUS, 960, 5) + bytes([OPUS]) + b"abc",  # a block runs past the end
        b"".join(header(OPUS, 960 * i, 0) for i in range(MAX_RED_BLOCKS)) + bytes([OPUS]),
    ],
)
def test_malformed_payloads_raise_rtp_error(payload: bytes) -> None:
    with pytest.raises(RtpError):
        parse_red_untrusted(payload)


def test_the_most_blocks_allowed_and_an_empty_primary() -> None:
    redundant = MAX_RED_BLOCKS - 1
    payload = b"".join(header(OPUS, 960 * (redundant - i), 1) for i in range(redundant))
    payload += bytes([OPUS]) + b"r" * redundant
    blocks = parse_red_untrusted(payload)
    assert len(blocks) == MAX_RED_BLOCKS
    assert blocks[-1] == RedBlock(OPUS, 0, b"")


@given(st.binary(max_size=300))
def test_fuzz_the_parser_raises_only_rtp_error(payload: bytes) -> None:
    try:
        blocks = parse_red_untrusted(payload)
    except RtpError:
        return
    assert 1 <= len(blocks) <= MAX_RED_BLOCKS
    assert sum(len(b.data) for b in blocks) + 4 * (len(blocks) - 1) + 1 == len(payload)
    assert all(0 <= b.payload_type <= 127 and 0 <= b.timestamp_offset < 1 << 14 for b in blocks)
    assert all(len(b.data) <= MAX_BLOCK_LENGTH for b in blocks[:-1])


@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF), st.binary(max_size=80)),
        max_size=30,
    )
)
def test_fuzz_the_decoder_never_delivers_a_timestamp_twice(
    packets: list[tuple[int, int, bytes]],
) -> None:
    decoder = RedDecoder()
    frames: list[RedFrame] = []
    for sequence_number, timestamp, payload in packets:
        try:
            frames.extend(decoder.receive(sequence_number, timestamp, payload))
        except RtpError:
            continue
    timestamps = [f.timestamp for f in frames]
    assert len(timestamps) == len(set(timestamps))


@given(st.binary(min_size=1, max_size=MAX_BLOCK_LENGTH), st.binary(max_size=400))
def test_fuzz_round_trip(old: bytes, new: bytes) -> None:
    encoder = RedEncoder(1, max_payload_size=4000)
    encoder.encode(OPUS, 5, old)
    assert parse_red_untrusted(encoder.encode(OPUS, 5 + FRAME, new)) == [
        RedBlock(OPUS, FRAME, old),
        RedBlock(OPUS, 0, new),
    ]


# --- loss recovery -----------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [1, 2])
def test_a_lost_packet_is_recovered_from_the_next(distance: int) -> None:
    packets = stream(8, distance)
    lost = {3}
    frames = RedDecoder().receive_all(p for i, p in enumerate(packets) if i not in lost)
    assert [f.data for f in frames] == [frame(i) for i in range(8)]
    [recovered] = [f for f in frames if f.recovered]
    seq, timestamp, _ = packets[3]
    assert recovered == RedFrame(seq, timestamp, OPUS, frame(3), recovered=True)


def test_two_lost_packets_need_distance_two() -> None:
    lost = {3, 4}
    for distance, expected in ((1, [0, 1, 2, 4, 5, 6, 7]), (2, list(range(8)))):
        decoder = RedDecoder()
        packets = stream(8, distance)
        frames = decoder.receive_all(p for i, p in enumerate(packets) if i not in lost)
        assert [f.data for f in frames] == [frame(i) for i in expected]
        assert decoder.frames_recovered == len(expected) - 6
        by_sequence = {f.sequence_number: f.timestamp for f in frames}
        assert all(by_sequence[seq] == ts for seq, ts, _ in packets if seq in by_sequence)


def test_nothing_is_delivered_twice_duplicates_late_packets_and_redundancy() -> None:
    packets = stream(6, 2)
    # Packet 2 arrives late, after packet 3 already recovered its frame; packet 4 twice.
    order = [0, 1, 3, 2, 4, 4, 5]
    frames = RedDecoder().receive_all(packets[i] for i in order)
    assert sorted(f.data for f in frames) == [frame(i) for i in range(6)]
    assert len(frames) == 6


def test_frames_from_before_the_first_packet_are_not_recovered() -> None:
    packets = stream(6, 2)
    frames = RedDecoder().receive_all(packets[3:])
    assert [f.data for f in frames] == [frame(3), frame(4), frame(5)]


def test_random_loss_is_recovered_when_the_next_packets_arrive() -> None:
    rng = random.Random(2198)
    packets = stream(500, 2, start_seq=65000)
    kept = [i for i in range(500) if rng.random() >= 0.2]
    frames = RedDecoder().receive_all(packets[i] for i in kept)
    # A frame is lost for good only when its packet and the next two are all lost.
    received = set(kept)
    expected = [i for i in range(kept[0], 500) if {i, i + 1, i + 2} & received]
    assert [f.data for f in frames] == [frame(i) for i in expected]
    assert len(frames) > len(kept)


def test_malformed_packets_are_skipped_by_receive_all_and_raise_in_receive() -> None:
    decoder = RedDecoder()
    with pytest.raises(RtpError):
        decoder.receive(1, 0, header(OPUS, 1, 5))
    assert decoder.receive_all([(2, 0, b""), (3, 960, bytes([OPUS]) + b"ok")]) == [
        RedFrame(3, 960, OPUS, b"ok")
    ]
