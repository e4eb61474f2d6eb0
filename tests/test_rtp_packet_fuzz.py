"""Hypothesis: the RTP parser and the typed extension readers only ever return a value or raise
RtpError; generated valid packets survive serialize -> parse unchanged; the sequence helpers agree
with plain integer arithmetic on unwrapped values."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_rtc.rtp.errors import RtpError
from trio_rtc.rtp.extensions import (
    ABS_SEND_TIME,
    AUDIO_LEVEL,
    MID,
    REPAIRED_RID,
    RID,
    TOFFSET,
    TRANSPORT_CC,
    VIDEO_ORIENTATION,
    ExtensionCodec,
    ExtensionMap,
)
from trio_rtc.rtp.packet import RtpPacket, parse_rtp_untrusted
from trio_rtc.rtp.sequence import SequenceUnwrapper, seq_diff, seq_newer

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CODECS: list[ExtensionCodec[Any]] = [
    MID,
    RID,
    REPAIRED_RID,
    ABS_SEND_TIME,
    TRANSPORT_CC,
    AUDIO_LEVEL,
    VIDEO_ORIENTATION,
    TOFFSET,
]
EXT_MAP = ExtensionMap({i + 1: codec.uri for i, codec in enumerate(CODECS)}, allow_mixed=True)

SEEDS = [
    RtpPacket(96, 65535, 2**32 - 1, 1, b"media", marker=True, extensions={1: b"0", 4: b"abc"}),
    RtpPacket(0, 0, 0, 0, b"", csrcs=(1, 2, 3), padding_size=4, extensions={200: b""}),
]


def _one_byte_ids() -> st.SearchStrategy[dict[int, bytes]]:
    return st.dictionaries(st.integers(1, 14), st.binary(min_size=1, max_size=16), max_size=14)


def _two_byte_ids() -> st.SearchStrategy[dict[int, bytes]]:
    return st.dictionaries(st.integers(1, 255), st.binary(max_size=255), max_size=8)


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    payload=st.binary(max_size=1400),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFF_FFFF), max_size=15).map(tuple),
    extensions=st.one_of(_one_byte_ids(), _two_byte_ids()),
    padding_size=st.integers(0, 255),
)


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid packets with bytes overwritten, inserted or cut: close to real, so deep paths run."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        packet = draw(st.one_of(st.sampled_from(SEEDS), packets))
        data = bytearray(packet.serialize(extmap_allow_mixed=True))
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(data)))
            action = draw(st.sampled_from(["set", "insert", "cut"]))
            if action == "set" and position < len(data):
                data[position] = draw(st.integers(0, 255))
            elif action == "insert":
                data[position:position] = draw(st.binary(min_size=1, max_size=4))
            else:
                del data[position : position + draw(st.integers(1, 8))]
        return bytes(data)

    return mutate()


def _parse_or_error(data: bytes) -> RtpPacket | None:
    try:
        return parse_rtp_untrusted(data)
    except RtpError:
        return None


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    _parse_or_error(data)


@FUZZ
@given(st.binary(max_size=64).map(lambda tail: b"\x80" + tail))
def test_version_2_prefix_parse_or_raise_rtp_error(data: bytes) -> None:
    _parse_or_error(data)


@FUZZ
@given(_mutations())
def test_mutated_packets_parse_or_raise_rtp_error(data: bytes) -> None:
    packet = _parse_or_error(data)
    if packet is not None:
        # Whatever parses is a packet we can send again and read back the same.
        wire = packet.serialize(extmap_allow_mixed=True)
        assert parse_rtp_untrusted(wire) == packet


@FUZZ
@given(packets)
def test_valid_packets_round_trip(packet: RtpPacket) -> None:
    wire = packet.serialize(extmap_allow_mixed=True)
    assert parse_rtp_untrusted(wire) == packet
    assert parse_rtp_untrusted(memoryview(wire)) == packet
    assert parse_rtp_untrusted(wire).serialize(extmap_allow_mixed=True) == wire
    if packet.extensions:
        assert parse_rtp_untrusted(packet.serialize(two_byte_header=True)) == packet


@FUZZ
@given(
    packets.filter(lambda p: all(1 <= len(v) <= 16 and i <= 14 for i, v in p.extensions.items()))
)
def test_one_byte_packets_need_no_allow_mixed(packet: RtpPacket) -> None:
    assert parse_rtp_untrusted(packet.serialize()) == packet


@FUZZ
@given(st.sampled_from(CODECS), st.binary(max_size=300))
def test_typed_readers_raise_only_rtp_error(codec: ExtensionCodec[Any], raw: bytes) -> None:
    packet = RtpPacket(96, 1, 2, 3, extensions={CODECS.index(codec) + 1: raw})
    try:
        value = EXT_MAP.read(packet, codec)
    except RtpError:
        return
    assert value is not None
    # A value that decodes re-encodes to something that decodes to the same value.
    assert codec.decode_untrusted(codec.encode(value)) == value


@FUZZ
@given(st.sampled_from(CODECS), st.binary(max_size=300))
def test_typed_decoders_raise_only_rtp_error(codec: ExtensionCodec[Any], raw: bytes) -> None:
    try:
        codec.decode_untrusted(raw)
    except RtpError:
        pass


@FUZZ
@given(st.integers(0, 2**40), st.lists(st.integers(-30000, 30000), max_size=50))
def test_unwrapper_matches_true_sequence(start: int, steps: list[int]) -> None:
    # Any walk whose every value is within half the space of the highest so far unwraps exactly.
    unwrapper = SequenceUnwrapper()
    # The first value comes back as its 16 bits; the rest are relative to it.
    offset = start - (start & 0xFFFF)
    assert unwrapper.unwrap(start & 0xFFFF) + offset == start
    true_value = highest = start
    for step in steps:
        candidate = true_value + step
        if highest - candidate >= 0x8000:
            continue
        true_value = candidate
        highest = max(highest, true_value)
        assert unwrapper.unwrap(true_value & 0xFFFF) + offset == true_value


@FUZZ
@given(st.integers(0, 0xFFFF), st.integers(-0x7FFF, 0x7FFF))
def test_seq_diff_inverts_addition(b: int, delta: int) -> None:
    a = (b + delta) & 0xFFFF
    assert seq_diff(a, b) == delta
    assert seq_newer(a, b) is (delta > 0)
    assert not (seq_newer(a, b) and seq_newer(b, a))
