"""RTCP codec: hand-written byte vectors from the RFC figures, round trips, malformed input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trio_rtc.rtp.ntp import (
    dlsr_from_seconds,
    middle32,
    ntp_to_seconds,
    rtt_middle32,
    rtt_seconds,
    seconds_to_middle32,
    seconds_to_ntp,
)
from trio_rtc.rtp.rtcp import (
    ApplicationDefined,
    Bye,
    DlrrBlock,
    DlrrItem,
    ExtendedReport,
    FirEntry,
    FullIntraRequest,
    GenericNack,
    PayloadFeedback,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RrtrBlock,
    RtcpPacket,
    RtpError,
    RtpFeedback,
    SdesChunk,
    SdesItem,
    SdesItemType,
    SenderReport,
    SourceDescription,
    TwccFeedback,
    TwccPacket,
    UnknownRtcpPacket,
    UnknownXrBlock,
    lost_from_nack_items,
    nack_items_from_lost,
    parse_rtcp_untrusted,
    serialize_compound,
)


def unhex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def parse_one(data: bytes) -> RtcpPacket:
    (packet,) = parse_rtcp_untrusted(data)
    return packet


# --- Hand-written vectors --------------------------------------------------------------------

# RFC 3550 §6.4.1 figure: V=2 P=0 RC=1, PT=200, length 12 words (52 bytes), sender info, one
# report block: fraction lost 0x40 (25 %), cumulative lost 5, extended highest 1 cycle + 16.
SR_ONE_BLOCK = unhex("""
    81 c8 00 0c  12 34 56 78
    de ad be ef 80 00 00 00  00 00 10 00  00 00 00 0a  00 00 03 e8
    9a bc de f0  40 00 00 05  00 01 00 10  00 00 00 20  b7 05 20 00  00 05 40 00
""")


def test_sender_report_vector() -> None:
    sr = parse_one(SR_ONE_BLOCK)
    assert sr == SenderReport(
        ssrc=0x12345678,
        ntp_timestamp=0xDEADBEEF_80000000,
        rtp_timestamp=0x1000,
        packet_count=10,
        octet_count=1000,
        reports=[ReportBlock(0x9ABCDEF0, 0x40, 5, 0x10010, 0x20, 0xB7052000, 0x54000)],
    )
    assert sr.serialize() == SR_ONE_BLOCK


def test_report_block_negative_loss_and_clamping() -> None:
    rr = ReceiverReport(1, [ReportBlock(2, packets_lost=-1)])
    data = rr.serialize()
    assert data[12:16] == unhex("00 ff ff ff")  # 24-bit two's complement
    assert parse_one(data) == rr
    # RFC 3550 A.3: out-of-range cumulative loss is clamped to the field, not wrapped.
    huge = ReceiverReport(1, [ReportBlock(2, packets_lost=1 << 30)]).serialize()
    low = ReceiverReport(1, [ReportBlock(2, packets_lost=-(1 << 30))]).serialize()
    assert huge[12:16] == unhex("00 7f ff ff")
    assert low[12:16] == unhex("00 80 00 00")
    assert parse_one(low).reports[0].packets_lost == -(1 << 23)  # type: ignore[union-attr]


def test_receiver_report_empty_and_extension() -> None:
    data = unhex("80 c9 00 01 00 00 00 07")
    assert parse_one(data) == ReceiverReport(7)
    assert ReceiverReport(7).serialize() == data
    # Profile-specific extension words after the report blocks are kept (§6.4.1).
    ext = unhex("80 c9 00 02 00 00 00 07 ca fe ba be")
    assert parse_one(ext) == ReceiverReport(7, [], unhex("ca fe ba be"))


# RFC 3550 §6.5: one chunk, CNAME "abc": 2 + 3 item bytes after the SSRC, then null octets to
# the next 32-bit boundary (3 of them here).
SDES_CNAME = unhex("81 ca 00 03 12 34 56 78 01 03 61 62 63 00 00 00")


def test_sdes_cname_vector() -> None:
    sdes = parse_one(SDES_CNAME)
    assert sdes == SourceDescription([SdesChunk(0x12345678, [SdesItem(1, b"abc")])])
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].cname == "abc"
    assert sdes.serialize() == SDES_CNAME


def test_sdes_items_ending_on_a_boundary_get_a_whole_null_word() -> None:
    # Items end exactly at 32 bits: the list still needs its null terminator, so 4 null octets.
    chunk = SdesChunk(5, [SdesItem(SdesItemType.CNAME, b"ab")])
    assert chunk.serialize() == unhex("00 00 00 05 01 02 61 62 00 00 00 00")
    empty = SdesChunk(6)
    assert empty.serialize() == unhex("00 00 00 06 00 00 00 00")
    sdes = SourceDescription(
        [chunk, empty, SdesChunk(7, [SdesItem(2, "Zoë".encode()), SdesItem(6, b"trio_rtc")])]
    )
    parsed = parse_one(sdes.serialize())
    assert parsed == sdes
    assert isinstance(parsed, SourceDescription)
    assert [c.cname for c in parsed.chunks] == ["ab", None, None]


# §6.6: one SSRC and a reason; the reason is zero-padded to 32 bits (not the P bit).
BYE_REASON = unhex("81 cb 00 03 12 34 56 78 05 68 65 6c 6c 6f 00 00")


def test_bye_vector() -> None:
    assert parse_one(BYE_REASON) == Bye([0x12345678], b"hello")
    assert Bye([0x12345678], b"hello").serialize() == BYE_REASON
    assert parse_one(unhex("82 cb 00 02 00 00 00 01 00 00 00 02")) == Bye([1, 2])
    assert parse_one(Bye([], b"").serialize()) == Bye([], b"")


APP_PACKET = unhex("82 cc 00 03 00 00 00 09 54 45 53 54 01 02 03 04")


def test_app_vector() -> None:
    app = ApplicationDefined(subtype=2, ssrc=9, name=b"TEST", data=unhex("01 02 03 04"))
    assert parse_one(APP_PACKET) == app
    assert app.serialize() == APP_PACKET


# RFC 3611: SSRC, an RRTR block (§4.4, BT=4, length 2) and a DLRR block (§4.5, BT=5, length 3).
XR_PACKET = unhex("""
    80 cf 00 08  00 00 00 01
    04 00 00 02  e0 00 00 00 80 00 00 00
    05 00 00 03  00 00 00 02  b7 05 20 00  00 05 40 00
""")


def test_xr_vector() -> None:
    xr = ExtendedReport(
        1, [RrtrBlock(0xE0000000_80000000), DlrrBlock([DlrrItem(2, 0xB7052000, 0x54000)])]
    )
    assert parse_one(XR_PACKET) == xr
    assert xr.serialize() == XR_PACKET


def test_xr_unknown_block_is_kept() -> None:
    data = unhex("80 cf 00 03 00 00 00 01 2a 07 00 01 01 02 03 04")
    xr = parse_one(data)
    assert xr == ExtendedReport(1, [UnknownXrBlock(42, 7, unhex("01 02 03 04"))])
    assert xr.serialize() == data


# RFC 4585 §6.2.1: PID 100, BLP 0b101 -> 100, 101 and 103 lost.
NACK_PACKET = unhex("81 cd 00 03 00 00 00 01 00 00 00 02 00 64 00 05")


def test_generic_nack_vector() -> None:
    nack = parse_one(NACK_PACKET)
    assert nack == GenericNack(1, 2, [(100, 5)])
    assert isinstance(nack, GenericNack)
    assert nack.lost_sequence_numbers() == [100, 101, 103]
    assert GenericNack.from_lost(1, 2, [103, 100, 101]).serialize() == NACK_PACKET


def test_nack_helpers_wrap_and_split() -> None:
    # A loss run across the 16-bit wrap is one item, ordered as sent.
    assert nack_items_from_lost([0, 65535, 1, 65534]) == [(65534, 0b111)]
    assert lost_from_nack_items([(65534, 0b111)]) == [65534, 65535, 0, 1]
    # PID + 16 is the last a BLP reaches; PID + 17 starts a new item.
    assert nack_items_from_lost([10, 26, 27]) == [(10, 1 << 15), (27, 0)]
    assert nack_items_from_lost([]) == []
    # Overlapping items from a peer do not repeat numbers.
    assert lost_from_nack_items([(5, 1), (6, 1)]) == [5, 6, 7]


# RFC 4585 §6.3.1: PLI has FMT 1, length 2 and no FCI.
PLI_PACKET = unhex("81 ce 00 02 00 00 00 01 00 00 00 02")


def test_pli_vector_reduced_size() -> None:
    # RFC 5506: a lone PLI (no SR/RR first) is a valid reduced-size RTCP datagram.
    assert parse_rtcp_untrusted(PLI_PACKET) == [PictureLossIndication(1, 2)]
    assert PictureLossIndication(1, 2).serialize() == PLI_PACKET


# RFC 5104 §4.3.1: FMT 4, media source 0, one FCI entry (SSRC, seq nr 7, 24 reserved bits).
FIR_PACKET = unhex("84 ce 00 04 11 11 11 11 00 00 00 00 22 22 22 22 07 00 00 00")


def test_fir_vector() -> None:
    fir = FullIntraRequest(0x11111111, [FirEntry(0x22222222, 7)])
    assert parse_one(FIR_PACKET) == fir
    assert fir.serialize() == FIR_PACKET


# draft-alvestrand-rmcat-remb-03 §2.2: 1 000 000 bit/s = 250 000 (0x3d090, 18 bits) * 2**2, so
# the byte after Num SSRC is exponent 2 << 2 | mantissa bits 17-16 (0b11) = 0x0b.
REMB_PACKET = unhex("""
    8f ce 00 05  00 00 00 01  00 00 00 00
    52 45 4d 42  01 0b d0 90  33 33 33 33
""")


def test_remb_vector() -> None:
    remb = Remb(1, 1_000_000, [0x33333333])
    assert parse_one(REMB_PACKET) == remb
    assert remb.serialize() == REMB_PACKET


def test_remb_rounds_down_to_what_the_wire_carries() -> None:
    remb = parse_one(Remb(1, (1 << 18) + 1).serialize())
    assert isinstance(remb, Remb)
    assert remb.bitrate == 1 << 18
    assert parse_one(Remb(1, 0x3FFFF << 63).serialize()) == Remb(1, 0x3FFFF << 63)
    with pytest.raises(ValueError):
        Remb(1, 1 << 82).serialize()


# Transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1), base
# sequence 65530 (so it wraps), 26 packets, reference time 258 * 64 ms, feedback count 5.
# Statuses: 1 2 0 1 1 0 0 | 0 x16 | 1 0 1
#   2-bit vector  11 01 10 00 01 01 00 00 = 0xd850   (7 symbols: small, large, lost, ...)
#   run length    0 00 0000000010000      = 0x0010   (16 not received)
#   1-bit vector  10 101 00000000000      = 0xa800   (3 symbols, then padding symbols)
# Deltas: 04 (+1 ms), ff fc (-1 ms, large), ff (63.75 ms), 00, 28 (10 ms), 01 (250 µs); the
# FCI (21 bytes) is zero-padded to 24.
TWCC_PACKET = unhex("""
    8f cd 00 08  00 00 00 01  00 00 00 02
    ff fa 00 1a  00 01 02 05
    d8 50 00 10 a8 00
    04 ff fc ff 00 28 01  00 00 00
""")
TWCC_RECEIVED = {0: 1000, 1: -1000, 3: 63750, 4: 0, 23: 10000, 25: 250}


def _twcc_expected() -> TwccFeedback:
    packets = [
        TwccPacket((65530 + i) & 0xFFFF, i in TWCC_RECEIVED, TWCC_RECEIVED.get(i, 0))
        for i in range(26)
    ]
    return TwccFeedback(1, 2, 258, 5, packets)


def test_twcc_vector() -> None:
    feedback = parse_one(TWCC_PACKET)
    assert feedback == _twcc_expected()
    assert isinstance(feedback, TwccFeedback)
    assert feedback.base_sequence == 65530
    assert feedback.packets[6].sequence == 0
    assert feedback.serialize() == TWCC_PACKET


def test_twcc_padding_by_p_bit() -> None:
    # libwebrtc pads TWCC with the P bit (last octet = padding count) instead of zeros.
    padded = bytearray(TWCC_PACKET)
    padded[0] |= 0x20
    padded[-1] = 3
    assert parse_one(bytes(padded)) == _twcc_expected()


def test_twcc_arrival_times() -> None:
    feedback = _twcc_expected()
    times = dict(feedback.arrival_times_us())
    base = 258 * 64_000
    assert times[65530] == base + 1000
    assert times[65531] == base
    assert times[65532] is None
    assert times[19] == base + 1000 - 1000 + 63750 + 10000 + 250
    rebuilt = TwccFeedback.from_arrival_times(
        1, 2, 5, 65530, [t for _, t in feedback.arrival_times_us()]
    )
    assert rebuilt == feedback


def test_twcc_from_arrival_times_does_not_accumulate_rounding() -> None:
    arrivals = [1_000_100 + 330 * i for i in range(100)]
    feedback = TwccFeedback.from_arrival_times(9, 9, 0, 7, arrivals)
    decoded = parse_one(feedback.serialize())
    assert isinstance(decoded, TwccFeedback)
    for (_, got), want in zip(decoded.arrival_times_us(), arrivals, strict=True):
        assert got is not None and abs(got - want) <= 125


def test_twcc_long_runs_use_run_length_chunks() -> None:
    packets = [TwccPacket(i, i >= 5000, 250 if i >= 5000 else 0) for i in range(9000)]
    data = TwccFeedback(1, 2, 0, 0, packets).serialize()
    # 5000 lost: one chunk; 4000 received small: one chunk; then 4000 one-byte deltas.
    assert len(data) == 12 + 8 + 4 + 4000
    assert parse_one(data) == TwccFeedback(1, 2, 0, 0, packets)


def test_twcc_serialize_errors() -> None:
    with pytest.raises(ValueError):
        TwccFeedback(1, 2, 0, 0, []).serialize()
    with pytest.raises(ValueError):
        TwccFeedback(1, 2, 0, 0, [TwccPacket(1, True, 0), TwccPacket(3, True, 0)]).serialize()
    with pytest.raises(ValueError):
        TwccFeedback(1, 2, 0, 0, [TwccPacket(1, True, 250 * 40000)]).serialize()
    with pytest.raises(ValueError):
        TwccFeedback(1, 2, 1 << 24, 0, [TwccPacket(1, True, 0)]).serialize()


# A Chromium-style full compound: SR without report blocks, then SDES with a 16-character CNAME
# (2 + 16 item bytes after the SSRC, 2 null octets).
CHROMIUM_COMPOUND = unhex("""
    80 c8 00 06  4b 1d 2f 3e  e9 5c 1a 2b 3c 4d 5e 6f  6a 3b 8c 40  00 00 01 2c  00 04 93 e0
    81 ca 00 06  4b 1d 2f 3e  01 10 35 6d 58 54 79 57 64 59 7a 46 41 6b 64 71 6e 49 00 00
""")


def test_chromium_compound_sr_sdes() -> None:
    sr, sdes = parse_rtcp_untrusted(CHROMIUM_COMPOUND)
    assert sr == SenderReport(0x4B1D2F3E, 0xE95C1A2B_3C4D5E6F, 0x6A3B8C40, 300, 300_000)
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].ssrc == 0x4B1D2F3E
    assert sdes.chunks[0].cname == "5mXTyWdYzFAkdqnI"
    assert serialize_compound([sr, sdes]) == CHROMIUM_COMPOUND
    # memoryview and bytearray input parse the same.
    assert parse_rtcp_untrusted(memoryview(bytearray(CHROMIUM_COMPOUND))) == [sr, sdes]


def test_compound_of_everything_round_trips() -> None:
    packets: list[RtcpPacket] = [
        parse_one(SR_ONE_BLOCK),
        parse_one(SDES_CNAME),
        parse_one(BYE_REASON),
        parse_one(APP_PACKET),
        parse_one(XR_PACKET),
        parse_one(NACK_PACKET),
        parse_one(PLI_PACKET),
        parse_one(FIR_PACKET),
        parse_one(REMB_PACKET),
        parse_one(TWCC_PACKET),
        RtpFeedback(3, 1, 2, unhex("00 00 00 01 02 03 04 05")),
        PayloadFeedback(2, 1, 2, unhex("de ad be ef")),
        PayloadFeedback(15, 1, 2, b"NOTR"),
        UnknownRtcpPacket(195, 3, unhex("00 00 00 01")),
        UnknownRtcpPacket(210, 0, b"odd"),  # not 32-bit: sent with the P bit
    ]
    data = serialize_compound(packets)
    assert parse_rtcp_untrusted(data) == packets


def test_padding_on_the_last_packet() -> None:
    # RFC 3550 §6.4.1: padding at the end of the compound, counted by its last octet.
    padded = SDES_CNAME + unhex("a0 c9 00 02 00 00 00 07 00 00 00 04")
    assert parse_rtcp_untrusted(padded)[1] == ReceiverReport(7)
    raw = UnknownRtcpPacket(210, 0, b"odd").serialize()
    assert raw == unhex("a0 d2 00 01 6f 64 64 01")


# --- Malformed input -------------------------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "short header": unhex("81 c9 00"),
    "version 1": unhex("41 c9 00 01 00 00 00 01"),
    "version 0": unhex("01 c9 00 01 00 00 00 01"),
    "length beyond data": unhex("80 c9 00 02 00 00 00 01"),
    "trailing partial header": unhex("80 c9 00 01 00 00 00 01 80"),
    "padding zero": unhex("a0 c9 00 01 00 00 00 00"),
    "padding beyond packet": unhex("a0 c9 00 01 00 00 00 05"),
    "padding, no body": unhex("a0 c9 00 00"),
    "SR too short": unhex("80 c8 00 01 00 00 00 01"),
    "SR count beyond data": b"\x82" + SR_ONE_BLOCK[1:],
    "RR no SSRC": unhex("80 c9 00 00"),
    "RR count beyond data": unhex("81 c9 00 01 00 00 00 01"),
    "SDES count beyond data": unhex("82 ca 00 03 12 34 56 78 01 03 61 62 63 00 00 00"),
    "SDES unterminated": unhex("81 ca 00 02 12 34 56 78 01 02 61 62"),
    "SDES item too long": unhex("81 ca 00 02 12 34 56 78 01 09 61 62"),
    "SDES trailing chunk": SDES_CNAME[:3] + b"\x05" + SDES_CNAME[4:] + bytes(8),
    "BYE count beyond data": unhex("82 cb 00 01 00 00 00 01"),
    "BYE reason too long": unhex("81 cb 00 02 00 00 00 01 09 61 62 63"),
    "BYE trailing words": unhex("81 cb 00 03 00 00 00 01 01 61 00 00 00 00 00 00"),
    "APP too short": unhex("80 cc 00 01 00 00 00 01"),
    "XR no SSRC": unhex("80 cf 00 00"),
    "XR block beyond packet": unhex("80 cf 00 02 00 00 00 01 2a 00 00 01"),
    "RRTR bad length": unhex("80 cf 00 03 00 00 00 01 04 00 00 01 00 00 00 00"),
    "DLRR bad length": unhex("80 cf 00 03 00 00 00 01 05 00 00 01 00 00 00 00"),
    "feedback no SSRCs": unhex("81 cd 00 01 00 00 00 01"),
    "NACK no FCI": unhex("81 cd 00 02 00 00 00 01 00 00 00 02"),
    "PLI with FCI": unhex("81 ce 00 03 00 00 00 01 00 00 00 02 00 00 00 00"),
    "FIR no FCI": unhex("84 ce 00 02 00 00 00 01 00 00 00 00"),
    "FIR half entry": unhex("84 ce 00 03 00 00 00 01 00 00 00 00 00 00 00 02"),
    "REMB short": unhex("8f ce 00 03 00 00 00 01 00 00 00 00 52 45 4d 42"),
    "REMB count beyond data": REMB_PACKET[:16] + b"\x02" + REMB_PACKET[17:],
    "REMB count short of data": REMB_PACKET[:16] + b"\x00" + REMB_PACKET[17:],
    "TWCC short header": unhex("8f cd 00 03 00 00 00 01 00 00 00 02 00 01 00 01"),
    "TWCC status count 0": unhex(
        "8f cd 00 05 00 00 00 01 00 00 00 02 00 01 00 00 00 00 00 00 20 01 00 00"
    ),
    "TWCC chunks missing": unhex("8f cd 00 04 00 00 00 01 00 00 00 02 00 01 00 03 00 00 00 00"),
    "TWCC run beyond count": unhex(
        "8f cd 00 05 00 00 00 01 00 00 00 02 00 01 00 03 00 00 00 00 00 04 00 00"
    ),
    "TWCC deltas missing": unhex(
        "8f cd 00 05 00 00 00 01 00 00 00 02 00 01 00 03 00 00 00 00 20 03 01 02"
    ),
    "TWCC reserved symbol": unhex(
        "8f cd 00 05 00 00 00 01 00 00 00 02 00 01 00 01 00 00 00 00 60 01 00 00"
    ),
    "TWCC data after deltas": TWCC_PACKET[:3] + b"\x09" + TWCC_PACKET[4:] + bytes(4),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_raises_rtp_error(name: str) -> None:
    with pytest.raises(RtpError):
        parse_rtcp_untrusted(MALFORMED[name])


def test_unknown_feedback_formats_are_kept() -> None:
    tmmbr = unhex("83 cd 00 04 00 00 00 01 00 00 00 00 00 00 00 02 04 00 00 00")
    assert parse_one(tmmbr) == RtpFeedback(3, 1, 0, unhex("00 00 00 02 04 00 00 00"))
    assert parse_one(tmmbr).serialize() == tmmbr


def test_serialize_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        ReceiverReport(1 << 32).serialize()
    with pytest.raises(ValueError):
        ReceiverReport(1, [ReportBlock(1)] * 32).serialize()
    with pytest.raises(ValueError):
        ReportBlock(1, fraction_lost=256).serialize()
    with pytest.raises(ValueError):
        SdesItem(0, b"x").serialize()
    with pytest.raises(ValueError):
        SdesItem(1, b"x" * 256).serialize()
    with pytest.raises(ValueError):
        Bye([1], b"x" * 256).serialize()
    with pytest.raises(ValueError):
        ApplicationDefined(0, 1, b"TOOLONG").serialize()
    with pytest.raises(ValueError):
        ApplicationDefined(32, 1, b"TEST").serialize()
    with pytest.raises(ValueError):
        UnknownXrBlock(9, 0, b"abc").serialize()
    with pytest.raises(ValueError):
        GenericNack(1, 2, [(70000, 0)]).serialize()
    with pytest.raises(ValueError):
        UnknownRtcpPacket(210, 0, bytes(4 * 65536)).serialize()
    assert not issubclass(ValueError, RtpError)


# --- NTP -------------------------------------------------------------------------------------


def test_rtt_example_from_rfc3550_figure_2() -> None:
    # §6.4.1 figure 2: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
    # DLSR = 0x0005:4000 (5.250 s) -> RTT 0x0006:2000 = 6.125 s.
    assert rtt_middle32(0xB7108000, 0xB7052000, 0x00054000) == 0x00062000
    assert rtt_seconds(0xB7108000, 0xB7052000, 0x00054000) == 6.125


def test_rtt_wrap_and_edge_cases() -> None:
    # Across the wrap of the 16-bit seconds part.
    assert rtt_middle32(0x0000_8000, 0xFFFF_8000, 0x0000_8000) == 0x0000_8000
    assert rtt_seconds(0x0000_8000, 0xFFFF_8000, 0x0000_8000) == 0.5
    assert rtt_seconds(0x1234, 0, 0) is None  # no SR received yet
    assert rtt_seconds(0x0001_0000, 0x0001_0000, 0x0000_1000) == 0.0  # DLSR too large


def test_ntp_conversions() -> None:
    # 1970-01-01 is NTP second 2208988800 (0x83aa7e80).
    assert seconds_to_ntp(0.0) == 0x83AA7E80_00000000
    assert seconds_to_ntp(0.5) == 0x83AA7E80_80000000
    assert ntp_to_seconds(0x83AA7E80_80000000) == 0.5
    assert middle32(0x83AA7E80_80000000) == 0x7E808000
    assert seconds_to_middle32(0.5) == 0x7E808000
    now = 1_700_000_000.123456
    assert abs(ntp_to_seconds(seconds_to_ntp(now)) - now) < 1e-6
    assert dlsr_from_seconds(5.25) == 0x00054000
    assert dlsr_from_seconds(-1) == 0
    assert dlsr_from_seconds(1e9) == 0xFFFFFFFF


def test_rtt_from_an_sr_and_its_report_block() -> None:
    sent_at, held_for, flight = 1_700_000_000.0, 0.75, 0.040
    sr = SenderReport(1, seconds_to_ntp(sent_at), 0, 0, 0)
    block = ReportBlock(1, lsr=middle32(sr.ntp_timestamp), dlsr=dlsr_from_seconds(held_for))
    arrival = seconds_to_middle32(sent_at + held_for + flight)
    rtt = rtt_seconds(arrival, block.lsr, block.dlsr)
    assert rtt is not None and abs(rtt - flight) < 1e-4


def test_docs_example_runs_and_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).parent.parent / "docs" / "rtcp.md").read_text()
    example = re.findall(r"```python\n(.*?)```", text, re.S)[-1]
    printed = text.split("It prints:\n\n```\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/rtcp.md", "exec"), {})
    assert capsys.readouterr().out == printed
