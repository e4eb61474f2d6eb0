"""VP8 payload format (RFC 7741): descriptor bytes, packetization, round trips."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.codecs import FrameAssembler, Vp8Depacketizer, Vp8Packetizer, packetize_rtp
from trio_rtc.rtp.codecs.vp8 import Vp8PayloadDescriptor
from trio_rtc.rtp.errors import RtpError


@pytest.mark.parametrize(
    ("wire", "descriptor"),
    [
        # RFC 7741 §4.6.1 layout: a key frame; X=1 S=1 PID=0, I=1, 7-bit PictureID 17.
        ("908011", Vp8PayloadDescriptor(True, picture_id=17, picture_id_bits=7)),
        # §4.6.2: an interframe in one packet without a PictureID: only the required byte.
        ("10", Vp8PayloadDescriptor(True)),
        # §4.6.3: a frame in several packets, 15-bit PictureID 4711 (M=1): the first packet ...
        ("90809267", Vp8PayloadDescriptor(True, picture_id=4711)),
        # ... and a later one (S=0), and the start of partition 1 (S=1, PID=1).
        ("80809267", Vp8PayloadDescriptor(False, picture_id=4711)),
        ("91809267", Vp8PayloadDescriptor(True, 1, picture_id=4711)),
        # §4.6.4: temporal scalability, I, L and T: TL0PICIDX 5, TID 1 with Y=1.
        (
            "90e0926705 60".replace(" ", ""),
            Vp8PayloadDescriptor(
                True, picture_id=4711, tl0_pic_idx=5, temporal_layer=1, layer_sync=True
            ),
        ),
        # N=1 (non-reference) with K only: KEYIDX 17.
        ("b01011", Vp8PayloadDescriptor(True, non_reference=True, key_index=17)),
        # Everything: I (7-bit), L, T and K sharing one byte.
        (
            "97f0 7f ff 9f".replace(" ", ""),
            Vp8PayloadDescriptor(
                True,
                7,
                picture_id=127,
                picture_id_bits=7,
                tl0_pic_idx=255,
                temporal_layer=2,
                key_index=31,
            ),
        ),
    ],
)
def test_descriptor_vectors(wire: str, descriptor: Vp8PayloadDescriptor) -> None:
    data = bytes.fromhex(wire)
    assert Vp8PayloadDescriptor.parse_untrusted(data + b"\x00") == (descriptor, len(data))
    assert descriptor.serialize() == data


def test_tid_means_nothing_without_t() -> None:
    # K=1, T=0: the TID and Y bits of the shared byte are ignored (RFC 7741 §4.2).
    descriptor, _ = Vp8PayloadDescriptor.parse_untrusted(bytes.fromhex("9010e5"))
    assert descriptor.temporal_layer is None and not descriptor.layer_sync
    assert descriptor.key_index == 5


@pytest.mark.parametrize("wire", ["", "80", "8080", "808080", "8040", "8020", "8010", "80c005"])
def test_truncated_descriptors(wire: str) -> None:
    with pytest.raises(RtpError):
        Vp8PayloadDescriptor.parse_untrusted(bytes.fromhex(wire))


def test_descriptor_without_data_is_refused() -> None:
    with pytest.raises(RtpError):
        Vp8Depacketizer().inspect_untrusted(bytes.fromhex("90809267"), True)


def test_descriptor_serialize_checks_ranges() -> None:
    for bad in (
        Vp8PayloadDescriptor(True, 8),
        Vp8PayloadDescriptor(True, picture_id=0x8000),
        Vp8PayloadDescriptor(True, picture_id=128, picture_id_bits=7),
        Vp8PayloadDescriptor(True, picture_id=1, picture_id_bits=8),
        Vp8PayloadDescriptor(True, tl0_pic_idx=256),
        Vp8PayloadDescriptor(True, temporal_layer=4),
        Vp8PayloadDescriptor(True, key_index=32),
    ):
        with pytest.raises(ValueError):
            bad.serialize()


def test_packetizer_layout() -> None:
    packetizer = Vp8Packetizer(picture_id=4711)
    frame = bytes(range(256)) * 10
    payloads = packetizer.packetize(frame, max_payload_size=500)
    assert len(payloads) == 6
    assert payloads[0][:4] == bytes.fromhex("90809267")
    assert all(p[:4] == bytes.fromhex("80809267") for p in payloads[1:])
    assert all(len(p) <= 500 for p in payloads)
    # Even split: sizes differ by at most one byte.
    assert max(map(len, payloads)) - min(map(len, payloads)) <= 1
    assert b"".join(p[4:] for p in payloads) == frame
    assert packetizer.picture_id == 4712


def test_picture_id_wraps_at_15_bits() -> None:
    packetizer = Vp8Packetizer(picture_id=0x7FFF)
    first = packetizer.packetize(b"\x00")[0]
    second = packetizer.packetize(b"\x00")[0]
    assert first[2:4] == b"\xff\xff" and second[2:4] == b"\x80\x00"


def test_packetizer_refuses_what_it_cannot_send() -> None:
    with pytest.raises(ValueError):
        Vp8Packetizer().packetize(b"")
    with pytest.raises(ValueError):
        Vp8Packetizer().packetize(b"\x00", max_payload_size=4)
    with pytest.raises(ValueError):
        Vp8Packetizer(picture_id=-1)


@pytest.mark.parametrize("size", [1, 2, 1144, 1145, 1146, 5000, 100_000])
def test_round_trip(size: int) -> None:
    frame = bytes([0x10]) + bytes(n % 253 for n in range(size - 1))  # P=0: a key frame
    packets = packetize_rtp(
        Vp8Packetizer(),
        frame,
        sequence_number=65500,
        timestamp=90000,
        payload_type=96,
        ssrc=7,
        keyframe=True,
    )
    # 1148 bytes per payload by default, 4 of them the descriptor.
    assert len(packets) == -(-size // 1144)
    assert [p.marker for p in packets] == [False] * (len(packets) - 1) + [True]
    assert all(len(p.payload) <= 1148 for p in packets)
    assembler = FrameAssembler(Vp8Depacketizer())
    out = []
    for packet in packets:
        out += assembler.receive_packet(packet)
    assert len(out) == 1
    assert out[0].data == frame and out[0].keyframe and out[0].complete


def test_keyframe_comes_from_the_first_packet_p_bit() -> None:
    depacketizer = Vp8Depacketizer()
    assert depacketizer.inspect_untrusted(bytes.fromhex("1000"), True).keyframe
    assert not depacketizer.inspect_untrusted(bytes.fromhex("1001"), True).keyframe
    # A P bit of 0 in a continuation packet is just data.
    info = depacketizer.inspect_untrusted(bytes.fromhex("0000"), True)
    assert not info.keyframe and info.starts_frame is False
    # The start of partition 1 is not the start of the frame.
    assert depacketizer.inspect_untrusted(bytes.fromhex("1100"), False).starts_frame is False
