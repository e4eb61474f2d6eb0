"""H.264 payload format (RFC 6184): Annex B splitting, STAP-A and FU-A bytes, modes 0 and 1,
parameter sets, round trips."""

from __future__ import annotations

import pytest

from trio_rtc.rtp.codecs import FrameAssembler, H264Depacketizer, H264Packetizer, packetize_rtp
from trio_rtc.rtp.codecs.h264 import split_annex_b
from trio_rtc.rtp.errors import RtpError

SC = b"\x00\x00\x00\x01"
SPS = bytes.fromhex("6742c01e95a0a0fd")
PPS = bytes.fromhex("68ce3c80")


def idr(size: int) -> bytes:
    return b"\x65" + bytes(n % 251 + 1 for n in range(size - 1))


def slice_(size: int) -> bytes:
    return b"\x41" + bytes(n % 241 + 2 for n in range(size - 1))


def test_split_annex_b() -> None:
    stream = b"\x00" + SC + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00" + SC + b"\x65\x88\x80"
    assert split_annex_b(stream) == [SPS, PPS, b"\x65\x88\x80"]
    assert split_annex_b(SC) == []
    with pytest.raises(ValueError):
        split_annex_b(b"\x65\x88")
    with pytest.raises(ValueError):
        split_annex_b(b"\x01\x00\x00\x01\x65")


def test_stap_a_layout() -> None:
    # RFC 6184 §5.7.1, Figure 7: STAP-A header, then per NAL unit its 16-bit size and the unit.
    # F is the OR of the units' F bits and NRI their maximum (here 3), type 24.
    payloads = H264Packetizer().packetize(SC + SPS + SC + PPS + SC + idr(20))
    expected = b"\x78" + b"\x00\x08" + SPS + b"\x00\x04" + PPS + b"\x00\x14" + idr(20)
    assert payloads == [expected]
    info = H264Depacketizer().inspect_untrusted(expected, True)
    assert info.starts_frame is True and info.keyframe and info.ends_frame
    assert H264Depacketizer().assemble_untrusted(payloads) == SC + SPS + SC + PPS + SC + idr(20)


def test_fu_a_layout() -> None:
    # RFC 6184 §5.8, Figures 14 and 15: FU indicator (F, NRI of the unit, type 28) and FU header
    # (S, E, R=0, the unit's type); the unit's own header byte is not repeated.
    unit = idr(2500)
    payloads = H264Packetizer().packetize(SC + unit, max_payload_size=1000)
    assert [p[:2] for p in payloads] == [b"\x7c\x85", b"\x7c\x05", b"\x7c\x45"]
    assert b"".join(p[2:] for p in payloads) == unit[1:]
    assert all(len(p) <= 1000 for p in payloads)
    depacketizer = H264Depacketizer()
    assert [depacketizer.inspect_untrusted(p, False).starts_frame for p in payloads] == [
        None,
        False,
        False,
    ]
    assert depacketizer.assemble_untrusted(payloads) == SC + unit


def test_mode_1_aggregates_what_fits_and_fragments_the_rest() -> None:
    frame = SC + SPS + SC + PPS + SC + idr(900) + SC + idr(50) + SC + idr(60)
    payloads = H264Packetizer().packetize(frame, max_payload_size=500)
    types = [p[0] & 0x1F for p in payloads]
    # SPS+PPS fit together but not with 900 bytes; the FU-A run; then the last two aggregate.
    assert types == [24, 28, 28, 24]
    assert H264Depacketizer().assemble_untrusted(payloads) == frame


def test_single_small_unit_is_sent_as_it_is() -> None:
    assert H264Packetizer().packetize(SC + slice_(30)) == [slice_(30)]


def test_mode_0_sends_units_alone_and_refuses_large_ones() -> None:
    packetizer = H264Packetizer(packetization_mode=0)
    assert packetizer.packetize(SC + SPS + SC + PPS + SC + idr(100)) == [SPS, PPS, idr(100)]
    with pytest.raises(ValueError, match="packetization-mode=0 cannot fragment"):
        packetizer.packetize(SC + idr(1149))
    assert packetizer.packetize(SC + idr(1148)) == [idr(1148)]
    with pytest.raises(ValueError):
        H264Packetizer(packetization_mode=2)


def test_packetizer_refuses_empty_access_units() -> None:
    with pytest.raises(ValueError):
        H264Packetizer().packetize(SC)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x78",  # STAP-A without units
        b"\x78\x00",  # truncated size
        b"\x78\x00\x05\x67",  # unit past the end
        b"\x78\x00\x00",  # zero-size unit
        b"\x7c\x85",  # FU-A without data
        b"\x7c\xc5\x00",  # FU-A with S and E
        b"\x79\x00",  # STAP-B (interleaved mode)
        b"\x7a\x00",  # MTAP16
        b"\x7d\x00",  # FU-B
        b"\x60",  # type 0
        b"\x7e",  # reserved
    ],
)
def test_malformed_payloads(payload: bytes) -> None:
    with pytest.raises(RtpError):
        H264Depacketizer().inspect_untrusted(payload, True)


@pytest.mark.parametrize(
    "payloads",
    [
        [b"\x7c\x05\x00"],  # FU-A continuation without its start
        [b"\x7c\x85\x00"],  # FU-A never ends
        [b"\x7c\x85\x00", b"\x7c\x85\x00"],  # two starts
        [b"\x7c\x85\x00", b"\x41\x00"],  # interrupted
        [b"\x7c\x85\x00", b"\x7c\x41\x00"],  # the type changes mid-unit
    ],
)
def test_malformed_fragment_sequences(payloads: list[bytes]) -> None:
    with pytest.raises(RtpError):
        H264Depacketizer().assemble_untrusted(payloads)


def test_parameter_sets_are_tracked_and_prepended_to_a_bare_idr() -> None:
    depacketizer = H264Depacketizer()
    assert depacketizer.assemble_untrusted([SPS, PPS, idr(10)]) == SC + SPS + SC + PPS + SC + idr(
        10
    )
    assert depacketizer.sps == SPS and depacketizer.pps == PPS
    assert depacketizer.assemble_untrusted([idr(10)]) == SC + SPS + SC + PPS + SC + idr(10)
    assert depacketizer.assemble_untrusted([slice_(10)]) == SC + slice_(10)
    seeded = H264Depacketizer()
    seeded.set_parameter_sets(SPS, PPS)
    assert seeded.assemble_untrusted([idr(10)]).startswith(SC + SPS + SC + PPS)
    plain = H264Depacketizer(insert_parameter_sets=False)
    plain.set_parameter_sets(SPS, PPS)
    assert plain.assemble_untrusted([idr(10)]) == SC + idr(10)


def test_start_of_access_unit() -> None:
    depacketizer = H264Depacketizer()
    assert depacketizer.inspect_untrusted(b"\x09\xf0", False).starts_frame is True  # AUD
    assert depacketizer.inspect_untrusted(SPS, False).starts_frame is True
    assert depacketizer.inspect_untrusted(PPS, False).starts_frame is None
    assert depacketizer.inspect_untrusted(slice_(5), True).starts_frame is None


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("size", [2, 100, 1145, 1148, 1149, 3000, 60_000])
def test_round_trip(mode: int, size: int) -> None:
    frames = [
        SC + SPS + SC + PPS + SC + idr(size),
        SC + slice_(size),
        SC + slice_(7) + SC + slice_(size),
    ]
    if mode == 0 and size > 1148:
        with pytest.raises(ValueError):
            H264Packetizer(0).packetize(frames[1])
        return
    packetizer = H264Packetizer(mode)
    assembler = FrameAssembler(H264Depacketizer())
    sequence = 65534
    out = []
    for index, frame in enumerate(frames):
        packets = packetize_rtp(
            packetizer,
            frame,
            sequence_number=sequence,
            timestamp=index * 3000,
            payload_type=102,
            ssrc=9,
            keyframe=index == 0,
        )
        sequence = (sequence + len(packets)) & 0xFFFF
        assert all(len(p.payload) <= 1148 for p in packets)
        for packet in packets:
            out += assembler.receive_packet(packet)
    assert [f.data for f in out] == frames
    assert [f.keyframe for f in out] == [True, False, False]
