"""RTP packets and RFC 8285 header extensions: hand-written byte vectors, round trips, the typed
extension codecs and 16/32-bit wrap-around arithmetic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trio_rtc.rtp.errors import RtpError
from trio_rtc.rtp.extensions import (
    ABS_SEND_TIME,
    AUDIO_LEVEL,
    MID,
    REPAIRED_RID,
    RID,
    TOFFSET,
    TRANSPORT_CC,
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_REPAIRED_RID,
    URI_RID,
    URI_TOFFSET,
    URI_TRANSPORT_CC,
    URI_VIDEO_ORIENTATION,
    VIDEO_ORIENTATION,
    AudioLevel,
    ExtensionMap,
    VideoOrientation,
    abs_send_time_from_seconds,
    abs_send_time_to_seconds,
    decode_sdes_text_untrusted,
)
from trio_rtc.rtp.packet import RtpPacket, parse_rtp_untrusted
from trio_rtc.rtp.sequence import (
    SequenceUnwrapper,
    TimestampUnwrapper,
    seq_diff,
    seq_newer,
    timestamp_diff,
    timestamp_newer,
)

# RFC 3550 §5.1 fixed header, written out field by field:
#   V=2 P=0 X=0 CC=0 | M=1 PT=96 | seq=0x1234 | ts=0xDEADBEEF | SSRC=0x01020304
FIXED_HEADER = bytes.fromhex("80 e0 1234 deadbeef 01020304")

# RFC 8285 §4.2 figure (one-byte form): an element with L=0 (1 byte), one with L=1 (2 bytes), two
# padding bytes, one with L=3 (4 bytes); length=3 words.
ONE_BYTE_BLOCK = bytes.fromhex("bede 000310 aa21 bbcc00 0033 dd ee ff 11")
# RFC 8285 §4.3 figure (two-byte form): an element with L=0, one with L=1, one padding byte, one
# with L=4; length=3 words.
TWO_BYTE_BLOCK = bytes.fromhex("1000 000301 0002 01 aa0003 04 bbccddee")


def header(
    first: int = 0x80, second: int = 0x60, seq: int = 1, ts: int = 2, ssrc: int = 3
) -> bytes:
    return (
        bytes((first, second))
        + seq.to_bytes(2, "big")
        + ts.to_bytes(4, "big")
        + ssrc.to_bytes(4, "big")
    )


# --- fixed header -------------------------------------------------------------------------------


def test_fixed_header_vector_parses_and_serializes() -> None:
    data = FIXED_HEADER + b"payload"
    packet = parse_rtp_untrusted(data)
    assert packet == RtpPacket(96, 0x1234, 0xDEADBEEF, 0x01020304, b"payload", marker=True)
    assert packet.version == 2
    assert not packet.padding and not packet.extension
    assert packet.serialize() == data


def test_csrcs_padding_and_marker() -> None:
    # V=2 P=1 X=0 CC=2, M=0 PT=0, two CSRCs, payload "ab", 3 bytes of padding (last counts 3).
    data = bytes.fromhex("a2 00 0001 00000002 000000030000000a 0000000b") + b"ab" + b"\x00\x00\x03"
    packet = parse_rtp_untrusted(data)
    assert packet.csrcs == (10, 11)
    assert packet.payload == b"ab"
    assert packet.padding_size == 3 and packet.padding
    assert not packet.marker and packet.payload_type == 0
    assert packet.serialize() == data


def test_padding_only_packet() -> None:
    # Padding may cover the whole payload (bandwidth probes).
    data = header(first=0xA0) + bytes(3) + b"\x04"
    packet = parse_rtp_untrusted(data)
    assert packet.payload == b"" and packet.padding_size == 4
    assert packet.serialize() == data


def test_fifteen_csrcs_round_trip() -> None:
    packet = RtpPacket(111, 65535, 2**32 - 1, 2**32 - 1, b"x", csrcs=tuple(range(15)))
    assert parse_rtp_untrusted(packet.serialize()) == packet


def test_accepts_bytearray_and_memoryview() -> None:
    data = FIXED_HEADER + ONE_BYTE_BLOCK[:0] + b"pp"
    expected = parse_rtp_untrusted(data)
    assert parse_rtp_untrusted(bytearray(data)) == expected
    assert parse_rtp_untrusted(memoryview(data)) == expected
    assert type(parse_rtp_untrusted(memoryview(data)).payload) is bytes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter"),
        (header()[:11], "shorter"),
        (header(first=0x40), "version"),
        (header(first=0xC0), "version"),
        (header(first=0x81), "CSRC"),
        (header(first=0x8F) + bytes(56), "CSRC"),
        (header(first=0x90), "extension"),
        (header(first=0x90) + bytes.fromhex("bede"), "extension"),
        (header(first=0x90) + bytes.fromhex("bede 0001"), "extension"),
        (header(first=0x90) + bytes.fromhex("bede 0001 1f00 0000"), "past the extension block"),
        (header(first=0x90) + bytes.fromhex("1000 0001 0505 0000"), "past the extension block"),
        (header(first=0x90) + bytes.fromhex("1000 0001 0000 0007"), "no length byte"),
        (header(first=0xA0, ssrc=0), "padding count is 0"),
        (header(first=0xA0) + b"\x00", "padding count is 0"),
        (header(first=0xA0) + b"ab\x04", "run into the RTP header"),
    ],
)
def test_malformed_packets_raise_rtp_error(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        parse_rtp_untrusted(data)


def test_rtp_error_is_a_value_error() -> None:
    assert issubclass(RtpError, ValueError)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"payload_type": 128}, "payload_type"),
        ({"payload_type": -1}, "payload_type"),
        ({"sequence_number": 65536}, "sequence_number"),
        ({"timestamp": 2**32}, "timestamp"),
        ({"ssrc": -1}, "ssrc"),
        ({"csrcs": tuple(range(16))}, "CSRCs"),
        ({"csrcs": (2**32,)}, "csrc"),
        ({"padding_size": 256}, "padding_size"),
        ({"extensions": {0: b"x"}}, "outside 1..255"),
        ({"extensions": {256: b"x"}}, "outside 1..255"),
        ({"extensions": {1: bytes(256)}}, "at most 255"),
    ],
)
def test_serialize_rejects_out_of_range_fields(changes: dict[str, object], message: str) -> None:
    packet = RtpPacket(96, 1, 2, 3, b"p")
    for name, value in changes.items():
        setattr(packet, name, value)
    with pytest.raises(ValueError, match=message) as info:
        packet.serialize(extmap_allow_mixed=True)
    assert not isinstance(info.value, RtpError)


def test_repr_summarises_the_payload() -> None:
    assert "<1200 bytes>" in repr(RtpPacket(96, 1, 2, 3, bytes(1200)))


# --- RFC 8285 header extensions -------------------------------------------------------------------


def test_rfc8285_one_byte_example() -> None:
    data = header(first=0x90) + ONE_BYTE_BLOCK + b"media"
    packet = parse_rtp_untrusted(data)
    assert packet.extensions == {1: b"\xaa", 2: b"\xbb\xcc", 3: b"\xdd\xee\xff\x11"}
    assert packet.payload == b"media"
    # Re-serialised without the interior padding: the same elements, packed.
    assert (
        packet.serialize()
        == header(first=0x90) + bytes.fromhex("bede 0003 10aa 21bbcc 33ddeeff11 0000") + b"media"
    )
    assert parse_rtp_untrusted(packet.serialize()) == packet


def test_rfc8285_two_byte_example() -> None:
    data = header(first=0x90) + TWO_BYTE_BLOCK + b"media"
    packet = parse_rtp_untrusted(data)
    assert packet.extensions == {1: b"", 2: b"\xaa", 3: b"\xbb\xcc\xdd\xee"}
    # A zero-length element only fits the two-byte form.
    with pytest.raises(ValueError, match="extmap-allow-mixed"):
        packet.serialize()
    assert (
        packet.serialize(extmap_allow_mixed=True)
        == header(first=0x90) + bytes.fromhex("1000 0003 0100 0201aa 0304bbccddee 00") + b"media"
    )


def test_two_byte_appbits_are_accepted() -> None:
    block = bytes.fromhex("100f 0001 0501 7700")
    assert parse_rtp_untrusted(header(first=0x90) + block).extensions == {5: b"\x77"}


def test_one_byte_id_15_stops_processing() -> None:
    # RFC 8285 §4.2: elements after id 15 are ignored, its length too.
    block = bytes.fromhex("bede 0002 10aa f0 2100 000000")
    assert parse_rtp_untrusted(header(first=0x90) + block).extensions == {1: b"\xaa"}


def test_one_byte_padding_with_length_bits_is_skipped() -> None:
    block = bytes.fromhex("bede 0001 05 10aa 00")
    assert parse_rtp_untrusted(header(first=0x90) + block).extensions == {1: b"\xaa"}


def test_unknown_profile_is_skipped() -> None:
    data = header(first=0x90) + bytes.fromhex("abcd 0001 01020304") + b"pl"
    packet = parse_rtp_untrusted(data)
    assert packet.extensions == {} and packet.payload == b"pl"


def test_empty_extension_block() -> None:
    packet = parse_rtp_untrusted(header(first=0x90) + bytes.fromhex("bede 0000") + b"x")
    assert packet.extensions == {} and packet.payload == b"x"


def test_unknown_extensions_round_trip_byte_exactly() -> None:
    values = {7: b"\x00\x01\x02", 14: bytes(range(16)), 3: b"\xff"}
    packet = RtpPacket(100, 5, 6, 7, b"data", extensions=dict(values))
    wire = packet.serialize()
    assert wire[12:14] == b"\xbe\xde"
    assert parse_rtp_untrusted(wire).extensions == values
    assert parse_rtp_untrusted(wire).serialize() == wire


@pytest.mark.parametrize(
    "extensions",
    [{15: b"x"}, {1: bytes(17)}, {1: b""}, {255: bytes(255)}],
    ids=["id-15", "17-bytes", "empty", "max"],
)
def test_two_byte_form_needs_allow_mixed(extensions: dict[int, bytes]) -> None:
    packet = RtpPacket(96, 1, 2, 3, b"p", extensions={2: b"ok", **extensions})
    with pytest.raises(ValueError, match="two-byte form") as info:
        packet.serialize()
    assert not isinstance(info.value, RtpError)
    wire = packet.serialize(extmap_allow_mixed=True)
    assert wire[12:14] == b"\x10\x00"
    assert parse_rtp_untrusted(wire) == packet


def test_two_byte_header_forced() -> None:
    packet = RtpPacket(96, 1, 2, 3, b"p", extensions={1: b"a"})
    wire = packet.serialize(two_byte_header=True)
    assert wire[12:] == bytes.fromhex("1000 0001 0101 6100") + b"p"
    assert parse_rtp_untrusted(wire) == packet
    # allow-mixed alone still prefers the one-byte form when everything fits.
    assert packet.serialize(extmap_allow_mixed=True)[12:14] == b"\xbe\xde"


def test_extension_with_csrcs_and_padding() -> None:
    packet = RtpPacket(
        96, 9, 8, 7, b"abc", marker=True, csrcs=(1, 2), extensions={1: b"0"}, padding_size=5
    )
    wire = packet.serialize()
    assert wire[0] == 0x80 | 0x20 | 0x10 | 2
    assert wire[-1] == 5 and wire[-5:-1] == bytes(4)
    assert parse_rtp_untrusted(wire) == packet


# --- typed extensions and the map ---------------------------------------------------------------

ALL_URIS = {
    1: URI_MID,
    2: URI_RID,
    3: URI_REPAIRED_RID,
    4: URI_ABS_SEND_TIME,
    5: URI_TRANSPORT_CC,
    6: URI_AUDIO_LEVEL,
    7: URI_VIDEO_ORIENTATION,
    8: URI_TOFFSET,
}


def test_extension_map_lookup() -> None:
    ext_map = ExtensionMap(ALL_URIS, allow_mixed=True)
    assert ext_map.id_of(URI_MID) == 1 and ext_map.uri_of(8) == URI_TOFFSET
    assert ext_map.id_of("urn:x") is None and ext_map.uri_of(9) is None
    assert dict(ext_map) == ALL_URIS and len(ext_map) == 8
    assert ext_map == ExtensionMap(dict(ALL_URIS), allow_mixed=True)
    assert ext_map != ExtensionMap(ALL_URIS)
    assert "allow_mixed=True" in repr(ext_map)


@pytest.mark.parametrize("bad", [{0: URI_MID}, {256: URI_MID}, {1: URI_MID, 2: URI_MID}])
def test_extension_map_rejects_bad_ids(bad: dict[int, str]) -> None:
    with pytest.raises(ValueError):
        ExtensionMap(bad)


def test_every_codec_round_trips_through_a_packet() -> None:
    ext_map = ExtensionMap(ALL_URIS)
    packet = RtpPacket(96, 1, 2, 3, b"media")
    ext_map.write(packet, MID, "audio0")
    ext_map.write(packet, RID, "hi")
    ext_map.write(packet, REPAIRED_RID, "lo")
    ext_map.write(packet, ABS_SEND_TIME, 0xABCDEF)
    ext_map.write(packet, TRANSPORT_CC, 65535)
    ext_map.write(packet, AUDIO_LEVEL, AudioLevel(voice_activity=True, level=42))
    ext_map.write(packet, VIDEO_ORIENTATION, VideoOrientation(True, False, 270))
    ext_map.write(packet, TOFFSET, -5)
    parsed = parse_rtp_untrusted(packet.serialize())
    assert ext_map.read(parsed, MID) == "audio0"
    assert ext_map.read(parsed, RID) == "hi"
    assert ext_map.read(parsed, REPAIRED_RID) == "lo"
    assert ext_map.read(parsed, ABS_SEND_TIME) == 0xABCDEF
    assert ext_map.read(parsed, TRANSPORT_CC) == 65535
    assert ext_map.read(parsed, AUDIO_LEVEL) == AudioLevel(True, 42)
    assert ext_map.read(parsed, VIDEO_ORIENTATION) == VideoOrientation(True, False, 270)
    assert ext_map.read(parsed, TOFFSET) == -5


def test_wire_values_of_each_codec() -> None:
    assert MID.encode("0") == b"0"
    assert ABS_SEND_TIME.encode(0x123456) == b"\x12\x34\x56"
    assert TRANSPORT_CC.encode(0x0102) == b"\x01\x02"
    # RFC 6464 §3: V in the top bit, then the level in -dBov.
    assert AUDIO_LEVEL.encode(AudioLevel(True, 0x21)) == b"\xa1"
    assert AUDIO_LEVEL.decode_untrusted(b"\x7f") == AudioLevel(False, 127)
    # 3GPP TS 26.114: 0 0 0 0 C F R1 R0.
    assert VIDEO_ORIENTATION.encode(VideoOrientation(True, True, 90)) == b"\x0d"
    assert VIDEO_ORIENTATION.decode_untrusted(b"\x06") == VideoOrientation(False, True, 180)
    assert VIDEO_ORIENTATION.decode_untrusted(b"\xf0") == VideoOrientation(False, False, 0)
    # RFC 5450: 24-bit two's complement.
    assert TOFFSET.encode(-1) == b"\xff\xff\xff"
    assert TOFFSET.decode_untrusted(b"\x80\x00\x00") == -(2**23)
    assert TOFFSET.decode_untrusted(b"\x7f\xff\xff") == 2**23 - 1


def test_abs_send_time_fixed_point() -> None:
    assert abs_send_time_from_seconds(1.0) == 1 << 18
    assert abs_send_time_from_seconds(0.5) == 1 << 17
    assert abs_send_time_from_seconds(64.25) == abs_send_time_from_seconds(0.25)  # 64 s wrap
    assert abs_send_time_to_seconds(3 << 17) == 1.5
    with pytest.raises(ValueError):
        abs_send_time_from_seconds(-1.0)


def test_read_absent_or_not_negotiated_is_none() -> None:
    packet = RtpPacket(96, 1, 2, 3, extensions={9: b"x"})
    assert ExtensionMap({1: URI_MID}).read(packet, MID) is None
    assert ExtensionMap({}).read(packet, MID) is None
    with pytest.raises(ValueError, match="not negotiated"):
        ExtensionMap({}).write(packet, MID, "0")


@pytest.mark.parametrize(
    ("codec", "raw"),
    [
        (MID, b""),
        (MID, b"\x00abc"),
        (RID, b"\xff\xfe"),
        (ABS_SEND_TIME, b"\x01\x02"),
        (ABS_SEND_TIME, b"\x01\x02\x03\x04"),
        (TRANSPORT_CC, b"\x01"),
        (AUDIO_LEVEL, b""),
        (AUDIO_LEVEL, b"\x01\x02"),
        (VIDEO_ORIENTATION, b"\x01\x02"),
        (TOFFSET, b"\x01"),
    ],
)
def test_malformed_values_raise_rtp_error(codec: object, raw: bytes) -> None:
    ext_map = ExtensionMap(ALL_URIS, allow_mixed=True)
    packet = RtpPacket(96, 1, 2, 3)
    packet.extensions[ext_map.id_of(codec.uri)] = raw  # type: ignore[attr-defined,index]
    with pytest.raises(RtpError):
        ext_map.read(packet, codec)  # type: ignore[arg-type]


def test_sdes_text_ends_at_nul() -> None:
    assert decode_sdes_text_untrusted(b"mid1\x00\x00") == "mid1"
    assert decode_sdes_text_untrusted("vidéo".encode()) == "vidéo"


@pytest.mark.parametrize(
    ("codec", "value"),
    [
        (MID, ""),
        (RID, "x" * 256),
        (ABS_SEND_TIME, 1 << 24),
        (TRANSPORT_CC, -1),
        (AUDIO_LEVEL, AudioLevel(False, 128)),
        (VIDEO_ORIENTATION, VideoOrientation(False, False, 45)),
        (TOFFSET, 1 << 23),
    ],
)
def test_encoders_reject_out_of_range(codec: object, value: object) -> None:
    with pytest.raises(ValueError):
        codec.encode(value)  # type: ignore[attr-defined]


def test_long_mid_needs_two_byte_form() -> None:
    ext_map = ExtensionMap({1: URI_MID}, allow_mixed=False)
    packet = RtpPacket(96, 1, 2, 3)
    ext_map.write(packet, MID, "a" * 17)
    with pytest.raises(ValueError, match="two-byte"):
        packet.serialize(extmap_allow_mixed=ext_map.allow_mixed)
    assert (
        ext_map.read(parse_rtp_untrusted(packet.serialize(two_byte_header=True)), MID) == "a" * 17
    )


# --- sequence arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [(0, 0, 0), (1, 0, 1), (0, 65535, 1), (2, 65534, 4), (65534, 2, -4), (100, 200, -100)],
)
def test_seq_diff_and_newer_at_wrap(a: int, b: int, diff: int) -> None:
    assert seq_diff(a, b) == diff
    assert seq_newer(a, b) is (diff > 0)


def test_seq_half_way_is_neither_newer() -> None:
    assert not seq_newer(0x8000, 0) and not seq_newer(0, 0x8000)
    assert seq_diff(0x7FFF, 0) == 0x7FFF and seq_newer(0x7FFF, 0)
    assert seq_diff(0x8001, 0) == -0x7FFF


def test_timestamp_diff_at_wrap() -> None:
    assert timestamp_diff(10, 2**32 - 10) == 20
    assert timestamp_diff(2**32 - 10, 10) == -20
    assert timestamp_newer(5, 2**32 - 1) and not timestamp_newer(2**32 - 1, 5)


def test_sequence_unwrapper() -> None:
    unwrapper = SequenceUnwrapper()
    assert unwrapper.highest is None
    values = [65530, 65535, 0, 65534, 3, 30000, 60000, 65535, 1, 2]
    got = [unwrapper.unwrap(v) for v in values]
    assert got == [65530, 65535, 65536, 65534, 65539, 95536, 125536, 131071, 131073, 131074]
    assert unwrapper.highest == 131074


def test_sequence_unwrapper_before_first_goes_negative() -> None:
    unwrapper = SequenceUnwrapper()
    assert unwrapper.unwrap(3) == 3
    assert unwrapper.unwrap(65535) == -1
    assert unwrapper.highest == 3
    with pytest.raises(ValueError):
        unwrapper.unwrap(65536)


def test_timestamp_unwrapper() -> None:
    unwrapper = TimestampUnwrapper()
    assert unwrapper.unwrap(2**32 - 3000) == 2**32 - 3000
    assert unwrapper.unwrap(3000) == 2**32 + 3000
    assert unwrapper.unwrap(2**32 - 6000) == 2**32 - 6000
    # Exactly half-way counts as older; just under half-way as newer.
    assert unwrapper.unwrap(2**31 + 3000) == 2**31 + 3000
    assert unwrapper.unwrap(2**31 + 2000) == 2**32 + 2**31 + 2000
    with pytest.raises(ValueError):
        unwrapper.unwrap(-1)


# --- the user guide stays runnable -------------------------------------------------------------


def test_docs_rtp_examples_run() -> None:
    text = (Path(__file__).parent.parent / "docs" / "rtp.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(block, namespace)
