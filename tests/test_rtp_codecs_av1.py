"""AV1 payload format (AOM RTP spec): LEB128, the aggregation header, OBU elements, fragments,
temporal delimiters, round trips."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.codecs import Av1Depacketizer, Av1Packetizer, FrameAssembler, packetize_rtp
from trio_rtc.rtp.codecs.av1 import (
    TEMPORAL_DELIMITER,
    leb128_decode_untrusted,
    leb128_encode,
    split_obus,
)
from trio_rtc.rtp.errors import RtpError


def obu(
    obu_type: int, payload: bytes, *, extension: int | None = None, sized: bool = True
) -> bytes:
    header = (obu_type << 3) | (0x04 if extension is not None else 0) | (0x02 if sized else 0)
    ext = bytes([extension]) if extension is not None else b""
    size = leb128_encode(len(payload)) if sized else b""
    return bytes([header]) + ext + size + payload


SEQUENCE_HEADER = obu(1, bytes.fromhex("0000000a0b0000002c"))
PADDING = obu(15, b"\x00" * 5)


def frame_obu(size: int, seed: int = 0) -> bytes:
    return obu(6, bytes((seed + n) % 256 for n in range(size)))


@pytest.mark.parametrize(
    ("value", "wire"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (2**32 - 1, "ffffffff0f")],
)
def test_leb128(value: int, wire: str) -> None:
    assert leb128_encode(value) == bytes.fromhex(wire)
    assert leb128_decode_untrusted(bytes.fromhex("aa" + wire), 1) == (value, 1 + len(wire) // 2)


def test_leb128_limits() -> None:
    # Non-minimal forms are legal (AV1 spec §4.10.5) up to 8 bytes.
    assert leb128_decode_untrusted(bytes.fromhex("8080808080808000"), 0) == (0, 8)
    for wire in ("", "80", "808080808080808000", "ffffffff10"):
        with pytest.raises(RtpError):
            leb128_decode_untrusted(bytes.fromhex(wire), 0)
    with pytest.raises(ValueError):
        leb128_encode(2**32)


def test_aggregation_header_with_w() -> None:
    # Z=0 Y=0 W=2 N=1: two elements, the first with a LEB128 length, the last without; the OBUs
    # without their size fields.
    payload = bytes.fromhex("28") + b"\x0a\x08" + SEQUENCE_HEADER[2:] + b"\x30\x01\x02\x03"
    depacketizer = Av1Depacketizer()
    info = depacketizer.inspect_untrusted(payload, True)
    assert info.starts_frame is True and info.keyframe and info.ends_frame
    assert depacketizer.assemble_untrusted([payload]) == (
        TEMPORAL_DELIMITER + SEQUENCE_HEADER + obu(6, b"\x01\x02\x03")
    )


def test_aggregation_header_w_zero_and_kept_size_fields() -> None:
    # W=0: every element has a length. A sender may keep obu_has_size_field (then it must match).
    elements = [obu(3, b"\x10\x11"), obu(4, b"\x20", sized=False)]
    payload = b"\x00" + b"".join(leb128_encode(len(e)) + e for e in elements)
    assert Av1Depacketizer().assemble_untrusted([payload]) == (
        TEMPORAL_DELIMITER + obu(3, b"\x10\x11") + obu(4, b"\x20")
    )


def test_packetizer_drops_delimiters_and_padding_and_strips_sizes() -> None:
    unit = TEMPORAL_DELIMITER + SEQUENCE_HEADER + PADDING + frame_obu(20)
    (payload,) = Av1Packetizer().packetize(unit, keyframe=True)
    # N=1, W=2; the sequence header's element has a length, the frame's does not.
    assert payload[0] == 0x28
    assert payload[1:] == (
        bytes([len(SEQUENCE_HEADER) - 1])
        + b"\x08"
        + SEQUENCE_HEADER[2:]
        + b"\x30"
        + frame_obu(20)[2:]
    )
    assert Av1Depacketizer().assemble_untrusted([payload]) == (
        TEMPORAL_DELIMITER + SEQUENCE_HEADER + frame_obu(20)
    )


def test_more_than_three_elements_use_w_zero() -> None:
    unit = TEMPORAL_DELIMITER + b"".join(obu(5, bytes([n])) for n in range(5))
    (payload,) = Av1Packetizer().packetize(unit)
    assert payload[0] == 0x00
    assert Av1Depacketizer().assemble_untrusted([payload]) == unit


def test_fragments_carry_z_and_y() -> None:
    unit = TEMPORAL_DELIMITER + SEQUENCE_HEADER + frame_obu(3000)
    payloads = Av1Packetizer().packetize(unit, keyframe=True, max_payload_size=1000)
    headers = [p[0] for p in payloads]
    assert len(payloads) == 4
    assert headers[0] & 0xC8 == 0x48  # Z=0 Y=1 N=1
    assert all(h & 0xC0 == 0xC0 for h in headers[1:-1])  # Z=1 Y=1
    assert headers[-1] & 0xC0 == 0x80  # Z=1 Y=0
    assert all(len(p) <= 1000 for p in payloads)
    depacketizer = Av1Depacketizer()
    assert [depacketizer.inspect_untrusted(p, False).starts_frame for p in payloads] == [
        True,
        False,
        False,
        False,
    ]
    assert depacketizer.assemble_untrusted(payloads) == unit


def test_extension_headers_survive() -> None:
    unit = TEMPORAL_DELIMITER + obu(6, b"\x01" * 50, extension=0x28)
    payloads = Av1Packetizer().packetize(unit, max_payload_size=20)
    assert Av1Depacketizer().assemble_untrusted(payloads) == unit


def test_last_obu_without_size_is_accepted_on_send() -> None:
    unit = SEQUENCE_HEADER + obu(6, b"\x01\x02", sized=False)
    assert split_obus(unit) == [(0x0A, b"", SEQUENCE_HEADER[2:]), (0x30, b"", b"\x01\x02")]
    (payload,) = Av1Packetizer().packetize(unit)
    assert Av1Depacketizer().assemble_untrusted([payload]) == (
        TEMPORAL_DELIMITER + SEQUENCE_HEADER + obu(6, b"\x01\x02")
    )


@pytest.mark.parametrize(
    "unit",
    [
        TEMPORAL_DELIMITER,
        TEMPORAL_DELIMITER + PADDING,
        b"\x32\x05\x00",  # size past the end
        b"\xb2\x00",  # forbidden bit
    ],
)
def test_packetizer_refuses(unit: bytes) -> None:
    with pytest.raises(ValueError):
        Av1Packetizer().packetize(unit)


@pytest.mark.parametrize(
    "payloads",
    [
        [b"\x10"],  # no element
        [b"\x20\x05\x30"],  # W=2 but the first element runs past the end
        [b"\x30\x01\x30\x01\x30"],  # W=3, only two elements
        [b"\x90\x30\x00"],  # Z=1 in the first packet
        [b"\x50\x30\x00"],  # Y=1 in the last packet
        [b"\x50\x30\x00", b"\x10\x30"],  # Y=1 not followed by Z=1
        [b"\x10\xb0\x00"],  # forbidden bit
        [b"\x10\x32\x05\x00"],  # size field past its element
        [b"\x10\x32\x00\x00"],  # bytes after the declared size
        [b"\x10\x34"],  # extension byte missing
    ],
)
def test_malformed_payloads(payloads: list[bytes]) -> None:
    depacketizer = Av1Depacketizer()
    with pytest.raises(RtpError):
        for payload in payloads:
            depacketizer.inspect_untrusted(payload, True)
        depacketizer.assemble_untrusted(payloads)


@pytest.mark.parametrize("size", [1, 100, 1140, 1143, 1144, 1145, 5000, 150_000])
def test_round_trip(size: int) -> None:
    units = [
        (TEMPORAL_DELIMITER + SEQUENCE_HEADER + frame_obu(size), True),
        (TEMPORAL_DELIMITER + frame_obu(size, 7) + frame_obu(3, 1), False),
    ]
    packetizer = Av1Packetizer()
    assembler = FrameAssembler(Av1Depacketizer())
    sequence = 65530
    out = []
    for index, (unit, keyframe) in enumerate(units):
        packets = packetize_rtp(
            packetizer,
            unit,
            sequence_number=sequence,
            timestamp=index * 3000,
            payload_type=45,
            ssrc=5,
            keyframe=keyframe,
        )
        sequence = (sequence + len(packets)) & 0xFFFF
        assert all(len(p.payload) <= 1148 for p in packets)
        for packet in packets:
            out += assembler.receive_packet(packet)
    assert [(f.data, f.keyframe) for f in out] == units
