"""Hypothesis: the RTCP parser returns packets or raises RtpError, valid packets round-trip, and
the NACK helpers round-trip any set of sequence numbers within half the 16-bit circle."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

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

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, (1 << 64) - 1)
small_bytes = st.binary(max_size=40)
words = st.integers(0, 10).map(lambda n: n * 4).flatmap(lambda n: st.binary(min_size=n, max_size=n))

report_blocks = st.lists(
    st.builds(ReportBlock, u32, u8, st.integers(-(1 << 23), (1 << 23) - 1), u32, u32, u32, u32),
    max_size=31,
)
sdes_items = st.builds(SdesItem, st.integers(1, 255), st.binary(max_size=255))
xr_blocks = st.one_of(
    st.builds(RrtrBlock, u64),
    st.builds(DlrrBlock, st.lists(st.builds(DlrrItem, u32, u32, u32), max_size=4)),
    st.builds(UnknownXrBlock, st.integers(0, 255).filter(lambda t: t not in (4, 5)), u8, words),
)
known_types = set(range(200, 208))


@st.composite
def twcc_feedback(draw: st.DrawFn) -> TwccFeedback:
    base = draw(u16)
    # Mostly short, sometimes long runs, so run-length chunks and both vector kinds appear.
    statuses = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["lost", "small", "large"]),
                st.integers(1, 40),
            ),
            min_size=1,
            max_size=12,
        )
    )
    packets: list[TwccPacket] = []
    for kind, run in statuses:
        for _ in range(run):
            sequence = (base + len(packets)) & 0xFFFF
            if kind == "lost":
                packets.append(TwccPacket(sequence, False, 0))
            elif kind == "small":
                packets.append(TwccPacket(sequence, True, 250 * draw(st.integers(0, 255))))
            else:
                ticks = draw(st.integers(-32768, 32767))
                packets.append(TwccPacket(sequence, True, 250 * ticks))
    return TwccFeedback(draw(u32), draw(u32), draw(st.integers(0, 0xFFFFFF)), draw(u8), packets)


packets_strategy: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(SenderReport, u32, u64, u32, u32, u32, report_blocks, small_bytes),
    st.builds(ReceiverReport, u32, report_blocks, small_bytes),
    st.builds(
        SourceDescription,
        st.lists(st.builds(SdesChunk, u32, st.lists(sdes_items, max_size=4)), max_size=31),
    ),
    st.builds(Bye, st.lists(u32, max_size=31), st.one_of(st.none(), st.binary(max_size=255))),
    st.builds(
        ApplicationDefined, st.integers(0, 31), u32, st.binary(min_size=4, max_size=4), small_bytes
    ),
    st.builds(ExtendedReport, u32, st.lists(xr_blocks, max_size=4)),
    st.builds(GenericNack, u32, u32, st.lists(st.tuples(u16, u16), min_size=1, max_size=8)),
    twcc_feedback(),
    st.builds(
        RtpFeedback, st.integers(0, 31).filter(lambda f: f not in (1, 15)), u32, u32, small_bytes
    ),
    st.builds(PictureLossIndication, u32, u32),
    st.builds(
        FullIntraRequest, u32, st.lists(st.builds(FirEntry, u32, u8), min_size=1, max_size=4), u32
    ),
    st.builds(
        Remb,
        u32,
        st.builds(lambda m, e: m << e, st.integers(0, (1 << 18) - 1), st.integers(0, 63)),
        st.lists(u32, max_size=8),
        u32,
    ),
    st.builds(
        PayloadFeedback,
        st.integers(0, 31).filter(lambda f: f not in (1, 4, 15)),
        u32,
        u32,
        small_bytes,
    ),
    st.builds(
        UnknownRtcpPacket,
        u8.filter(lambda t: t not in known_types),
        st.integers(0, 31),
        small_bytes,
    ),
)


def _seeds() -> list[bytes]:
    twcc = TwccFeedback.from_arrival_times(
        1, 2, 3, 65500, [None if i % 5 == 0 else 1_000_000 + 4000 * i for i in range(60)]
    )
    return [
        serialize_compound(
            [
                SenderReport(1, 2, 3, 4, 5, [ReportBlock(6, 7, -8, 9, 10, 11, 12)]),
                SourceDescription([SdesChunk(1, [SdesItem(1, b"cname")])]),
                ExtendedReport(1, [RrtrBlock(5), DlrrBlock([DlrrItem(1, 2, 3)])]),
                twcc,
                GenericNack.from_lost(1, 2, [1, 2, 5, 40]),
                Remb(1, 123456789, [2, 3]),
                FullIntraRequest(1, [FirEntry(2, 3)]),
                Bye([1], b"bye"),
            ]
        ),
        twcc.serialize(),
    ]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(u8)
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


def _parse_or_error(data: bytes) -> list[RtcpPacket] | None:
    try:
        return parse_rtcp_untrusted(data)
    except RtpError:
        return None


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated()))
def test_any_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    packets = _parse_or_error(data)
    if packets is not None:
        # Whatever parses re-serializes (nothing out of range) to the same packets.
        assert parse_rtcp_untrusted(serialize_compound(packets)) == packets


@FUZZ
@given(st.binary(max_size=200))
def test_valid_headers_with_random_bodies(body: bytes) -> None:
    # Random bodies behind well-formed headers reach every packet parser, not just the framing.
    body += bytes(-len(body) % 4)
    for packet_type in range(200, 208):
        for count in (0, 1, 2, 4, 15):
            header = bytes((0x80 | count, packet_type)) + (len(body) // 4).to_bytes(2, "big")
            packets = _parse_or_error(header + body)
            if packets is not None:
                assert parse_rtcp_untrusted(serialize_compound(packets)) == packets


@FUZZ
@given(packets_strategy)
def test_generated_packets_round_trip(packet: RtcpPacket) -> None:
    assert parse_rtcp_untrusted(packet.serialize()) == [packet]


@FUZZ
@given(st.lists(packets_strategy, min_size=1, max_size=5))
def test_generated_compounds_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_rtcp_untrusted(serialize_compound(packets)) == packets


@FUZZ
@given(u16, st.sets(st.integers(0, (1 << 15) - 1), max_size=200))
def test_nack_helpers_round_trip_within_half_the_circle(start: int, offsets: set[int]) -> None:
    lost = [(start + o) & 0xFFFF for o in offsets]
    items = nack_items_from_lost(lost)
    in_send_order = [(start + o) & 0xFFFF for o in sorted(offsets)]
    assert lost_from_nack_items(items) == in_send_order
    # Every item is needed: each PID is itself lost and not covered by the item before it.
    for (pid, _), (next_pid, _) in itertools.pairwise(items):
        assert (next_pid - pid) & 0xFFFF > 16
    nack = GenericNack.from_lost(1, 2, lost)
    if items:
        parsed = parse_rtcp_untrusted(nack.serialize())
        assert parsed == [nack]
        assert isinstance(parsed[0], GenericNack)
        assert parsed[0].lost_sequence_numbers() == in_send_order


@FUZZ
@given(
    u16,
    st.integers(0, 1 << 40),
    st.lists(st.one_of(st.none(), st.integers(0, 8000)), min_size=1, max_size=300),
)
def test_twcc_arrival_times_round_trip(base: int, start: int, gaps: list[int | None]) -> None:
    # Arrival times on the 250 µs grid, non-decreasing; None for a lost packet.
    arrivals: list[int | None] = []
    now = start * 250
    for gap in gaps:
        if gap is None:
            arrivals.append(None)
        else:
            now += gap * 250
            arrivals.append(now)
    assume(any(a is not None for a in arrivals))
    feedback = TwccFeedback.from_arrival_times(1, 2, 3, base, arrivals)
    (parsed,) = parse_rtcp_untrusted(feedback.serialize())
    assert isinstance(parsed, TwccFeedback)
    first = next(a for a in arrivals if a is not None)
    offset = (first // 64_000 - parsed.reference_time) * 64_000  # the 24-bit wrap of the field
    expected = [None if a is None else a - offset for a in arrivals]
    assert [t for _, t in parsed.arrival_times_us()] == expected
    assert [s for s, _ in parsed.arrival_times_us()] == [
        (base + i) & 0xFFFF for i in range(len(arrivals))
    ]
