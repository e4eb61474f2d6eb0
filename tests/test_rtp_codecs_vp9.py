"""VP9 payload format (RFC 9628): descriptors in both modes, the scalability structure, the key
frame size, packetization and round trips."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.codecs import FrameAssembler, Vp9Depacketizer, Vp9Packetizer, packetize_rtp
from trio_rtc.rtp.codecs.vp9 import (
    Vp9PayloadDescriptor,
    Vp9ScalabilityStructure,
    vp9_keyframe_size,
)
from trio_rtc.rtp.errors import RtpError

SS_TWO_LAYERS = Vp9ScalabilityStructure(
    2, ((320, 180), (640, 360)), ((0, False, (1,)), (1, True, (1,)))
)


@pytest.mark.parametrize(
    ("wire", "descriptor"),
    [
        # Non-flexible mode with layer indices: I (7-bit 5), L: TID 1, U=1, SID 0; TL0PICIDX 7.
        (
            "a8 05 30 07",
            Vp9PayloadDescriptor(
                True,
                False,
                picture_id=5,
                picture_id_bits=7,
                layer=(1, True, 0, False),
                tl0_pic_idx=7,
            ),
        ),
        # Flexible mode, inter-predicted, two P_DIFFs (N=1 on the first), 15-bit PictureID 4711.
        (
            "d8 9267 03 04",
            Vp9PayloadDescriptor(
                True, False, inter_predicted=True, flexible=True, picture_id=4711, p_diffs=(1, 2)
            ),
        ),
        # A key frame's only packet: B, E, V with an SS of two spatial layers, Y=1, G=1.
        (
            "8e 01 38 0140 00b4 0280 0168 02 04 01 34 01",
            Vp9PayloadDescriptor(
                True, True, picture_id=1, picture_id_bits=7, scalability=SS_TWO_LAYERS
            ),
        ),
        # A middle packet: no flags at all but the PictureID; Z=1 alone.
        ("80 8001", Vp9PayloadDescriptor(False, False, picture_id=1)),
        ("01", Vp9PayloadDescriptor(False, False, not_upper_reference=True)),
    ],
)
def test_descriptor_vectors(wire: str, descriptor: Vp9PayloadDescriptor) -> None:
    data = bytes.fromhex(wire)
    assert Vp9PayloadDescriptor.parse_untrusted(data + b"\xaa") == (descriptor, len(data))
    assert descriptor.serialize() == data


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "80",
        "8080",
        "20",
        "2030",  # L in non-flexible mode needs TL0PICIDX
        "50",  # F=1, P=1 without P_DIFF
        "5003",  # the P_DIFF list goes on
        "50030303",  # a fourth P_DIFF
        "02",  # V without SS
        "0210",  # SS resolutions truncated
        "0208",  # SS without N_G
        "020801",  # SS picture group truncated
        "02080104",  # SS P_DIFF truncated
    ],
)
def test_malformed_descriptors(wire: str) -> None:
    with pytest.raises(RtpError):
        Vp9PayloadDescriptor.parse_untrusted(bytes.fromhex(wire))


def keyframe_header(width: int, height: int, profile: int = 0) -> bytes:
    """The start of a VP9 key frame's uncompressed header (VP9 spec §6.2)."""
    bits = "10" + str(profile & 1) + str(profile >> 1)
    if profile == 3:
        bits += "0"
    bits += "0" + "0" + "1" + "0"  # show_existing_frame, KEY_FRAME, show_frame, error_resilient
    bits += f"{0x498342:024b}"
    if profile >= 2:
        bits += "0"
    bits += "001" + "0"  # color_space BT_601, color_range
    if profile in (1, 3):
        bits += "000"
    bits += f"{width - 1:016b}{height - 1:016b}"
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8) + b"\x00" * 8


@pytest.mark.parametrize("profile", [0, 1, 2, 3])
def test_keyframe_size(profile: int) -> None:
    assert vp9_keyframe_size(keyframe_header(1280, 720, profile)) == (1280, 720)


def test_keyframe_size_of_other_frames() -> None:
    assert vp9_keyframe_size(b"") is None
    assert vp9_keyframe_size(b"\x86\x00") is None  # an inter frame
    assert vp9_keyframe_size(b"\x00" * 16) is None  # no frame marker
    assert vp9_keyframe_size(keyframe_header(64, 64)[:6]) is None  # truncated


def test_packetizer_layout() -> None:
    packetizer = Vp9Packetizer(picture_id=300)
    key = keyframe_header(640, 480) + bytes(3000)
    payloads = packetizer.packetize(key, keyframe=True, max_payload_size=1000)
    descriptors = [Vp9PayloadDescriptor.parse_untrusted(p)[0] for p in payloads]
    assert [d.begin for d in descriptors] == [True, False, False, False]
    assert [d.end for d in descriptors] == [False, False, False, True]
    assert not any(d.inter_predicted for d in descriptors)
    assert descriptors[0].scalability == Vp9ScalabilityStructure(1, ((640, 480),))
    assert all(d.scalability is None for d in descriptors[1:])
    assert {d.picture_id for d in descriptors} == {300}
    assert all(len(p) <= 1000 for p in payloads)
    (single,) = packetizer.packetize(b"\x86\x00\x01")
    descriptor, offset = Vp9PayloadDescriptor.parse_untrusted(single)
    assert descriptor == Vp9PayloadDescriptor(True, True, inter_predicted=True, picture_id=301)
    assert single[offset:] == b"\x86\x00\x01"


def test_keyframe_detection() -> None:
    depacketizer = Vp9Depacketizer()
    assert depacketizer.inspect_untrusted(bytes.fromhex("8c0100"), True).keyframe
    assert not depacketizer.inspect_untrusted(bytes.fromhex("cc0100"), True).keyframe  # P=1
    assert not depacketizer.inspect_untrusted(bytes.fromhex("840100"), True).keyframe  # B=0
    # An upper spatial layer (SID 1) of a key picture is not the key frame itself.
    assert not depacketizer.inspect_untrusted(bytes.fromhex("ac010207 00"), True).keyframe
    # E ends the frame even without the marker bit.
    assert depacketizer.inspect_untrusted(bytes.fromhex("84010000"), False).ends_frame
    with pytest.raises(RtpError):
        depacketizer.inspect_untrusted(bytes.fromhex("8c01"), True)


@pytest.mark.parametrize("size", [1, 50, 1144, 1145, 1146, 10_000, 200_000])
def test_round_trip(size: int) -> None:
    packetizer = Vp9Packetizer()
    frames = [
        (keyframe_header(320, 240) + bytes(n % 7 for n in range(size)), True),
        (bytes(n % 9 + 1 for n in range(size)), False),
    ]
    assembler = FrameAssembler(Vp9Depacketizer())
    sequence = 65535
    out = []
    for index, (frame, keyframe) in enumerate(frames):
        packets = packetize_rtp(
            packetizer,
            frame,
            sequence_number=sequence,
            timestamp=index * 3000,
            payload_type=98,
            ssrc=3,
            keyframe=keyframe,
        )
        sequence = (sequence + len(packets)) & 0xFFFF
        assert all(len(p.payload) <= 1148 for p in packets)
        for packet in packets:
            out += assembler.receive_packet(packet)
    assert [(f.data, f.keyframe) for f in out] == frames
