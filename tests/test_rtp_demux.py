"""BUNDLE demultiplexing (trio_rtc.rtp.demux): a Chromium-like BUNDLE (audio, video + RTX, a
data section), signaled SSRCs and FID groups, simulcast with rid / repaired-rid, payload type
fallback, counted drops, RTCP routing, and hypothesis: no exception, bounded tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.rtp.demux import DropReason, MediaSection, RtpDemuxer
from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.rtp.rtcp import (
    ApplicationDefined,
    Bye,
    DlrrBlock,
    DlrrItem,
    ExtendedReport,
    FirEntry,
    FullIntraRequest,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RrtrBlock,
    RtcpPacket,
    RtpError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    TwccFeedback,
    parse_rtcp_untrusted,
)

# Chromium's usual extmap ids for these URIs.
MID_ID, RID_ID, RRID_ID = 4, 10, 11
LOCAL_AUDIO, LOCAL_VIDEO, LOCAL_VIDEO_RTX = 0x0A01, 0x0B01, 0x0B02


def _audio(**kwargs: object) -> MediaSection:
    return MediaSection(  # type: ignore[misc]
        "0",
        payload_types={111, 63, 9, 0, 8, 13, 110, 126},
        local_ssrcs={LOCAL_AUDIO},
        mid_extension_id=MID_ID,
        **kwargs,
    )


def _video(**kwargs: object) -> MediaSection:
    defaults: dict[str, object] = {
        "payload_types": {96, 97, 98, 99, 45, 46},
        "rtx_payload_types": {97, 99, 46},
        "local_ssrcs": {LOCAL_VIDEO, LOCAL_VIDEO_RTX},
        "mid_extension_id": MID_ID,
        "rid_extension_id": RID_ID,
        "repaired_rid_extension_id": RRID_ID,
    }
    defaults.update(kwargs)
    return MediaSection("1", **defaults)  # type: ignore[arg-type]


def _pkt(ssrc: int, pt: int, seq: int = 1, **ext: str | bytes) -> RtpPacket:
    ids = {"mid": MID_ID, "rid": RID_ID, "rrid": RRID_ID}
    extensions = {ids[k]: v.encode() if isinstance(v, str) else v for k, v in ext.items()}
    return RtpPacket(pt, seq, 0, ssrc, b"p", extensions=extensions)


# --- Chromium-like BUNDLE: learning from the MID ----------------------------------------------


def test_chromium_like_bundle_learns_ssrcs_from_the_mid() -> None:
    # audio "0", video "1" with RTX, and a data section "2" (no RTP, so not configured).
    demux = RtpDemuxer([_audio(), _video()])
    audio = demux.route_rtp(_pkt(0x1111, 111, mid="0"))
    assert audio is not None and audio.mid == "0" and not audio.repair
    video = demux.route_rtp(_pkt(0x2222, 96, mid="1"))
    assert video is not None and video.mid == "1"
    rtx = demux.route_rtp(_pkt(0x3333, 97, mid="1"))
    assert rtx is not None and rtx.mid == "1" and rtx.repair
    assert demux.learned_count == 3
    # Once learned, packets without the MID (Chrome stops sending it) follow the SSRC.
    assert demux.route_rtp(_pkt(0x1111, 111, seq=2)) is audio
    assert demux.route_rtp(_pkt(0x2222, 96, seq=2)) is video
    # The data section's mid carries no RTP.
    assert demux.route_rtp(_pkt(0x4444, 111, mid="2")) is None
    assert demux.drops[DropReason.UNKNOWN_MID] == 1
    assert demux.packets_routed == 5


def test_signaled_ssrcs_and_fid_groups_route_without_extensions() -> None:
    demux = RtpDemuxer(
        [_audio(ssrcs={0x1111}), _video(ssrcs={0x2222, 0x3333}, fid_groups=[(0x2222, 0x3333)])]
    )
    audio = demux.route_rtp(_pkt(0x1111, 111))
    assert audio is not None and audio.mid == "0" and audio.signaled
    rtx = demux.route_rtp(_pkt(0x3333, 97))
    assert rtx is not None and rtx.repair and rtx.primary_ssrc == 0x2222
    assert demux.learned_count == 0 and demux.route_count == 3


def test_a_mid_naming_another_section_moves_the_ssrc() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    demux.route_rtp(_pkt(0x1111, 111, mid="0"))
    moved = demux.route_rtp(_pkt(0x1111, 96, seq=2, mid="1"))
    assert moved is not None and moved.mid == "1"
    assert demux.learned_count == 1


def test_payload_type_the_section_does_not_use_is_dropped() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    assert demux.route_rtp(_pkt(0x1111, 96, mid="0")) is None
    assert demux.binding(0x1111) is None  # not learned either
    demux.route_rtp(_pkt(0x1111, 111, mid="0"))
    assert demux.route_rtp(_pkt(0x1111, 96, seq=2)) is None
    assert demux.drops[DropReason.PAYLOAD_TYPE_MISMATCH] == 2


def test_malformed_mid_is_dropped() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    assert demux.route_rtp(_pkt(0x1111, 111, mid=b"\xff\xfe")) is None
    assert demux.route_rtp(_pkt(0x1111, 111, mid=b"\x00")) is None
    assert demux.drops[DropReason.MALFORMED_EXTENSION] == 2


# --- simulcast -------------------------------------------------------------------------------


def test_simulcast_binds_rids_and_pairs_repaired_rid_streams() -> None:
    demux = RtpDemuxer([_audio(), _video(rids=("h", "m", "l"))])
    high = demux.route_rtp(_pkt(0x21, 96, mid="1", rid="h"))
    low = demux.route_rtp(_pkt(0x23, 96, mid="1", rid="l"))
    assert high is not None and high.rid == "h" and not high.repair
    assert low is not None and low.rid == "l"
    high_rtx = demux.route_rtp(_pkt(0x31, 97, mid="1", rrid="h"))
    assert high_rtx is not None and high_rtx.repair and high_rtx.rid == "h"
    assert high_rtx.primary_ssrc == 0x21
    # The repair stream of "m" shows up before its media stream: paired once it does.
    mid_rtx = demux.route_rtp(_pkt(0x32, 97, mid="1", rrid="m"))
    assert mid_rtx is not None and mid_rtx.primary_ssrc is None
    demux.route_rtp(_pkt(0x22, 96, mid="1", rid="m"))
    assert mid_rtx.primary_ssrc == 0x22
    # A rid nobody negotiated.
    assert demux.route_rtp(_pkt(0x24, 96, mid="1", rid="x")) is None
    assert demux.drops[DropReason.UNKNOWN_RID] == 1


def test_a_rid_without_mid_routes_when_one_section_lists_it() -> None:
    demux = RtpDemuxer([_audio(), _video(rids=("h", "l"))])
    binding = demux.route_rtp(_pkt(0x21, 96, rid="l"))
    assert binding is not None and binding.mid == "1" and binding.rid == "l"
    assert demux.route_rtp(_pkt(0x22, 96, rid="q")) is None
    assert demux.drops[DropReason.UNKNOWN_RID] == 1


def test_rid_is_ignored_by_a_section_without_simulcast() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    binding = demux.route_rtp(_pkt(0x21, 96, mid="1", rid="h"))
    assert binding is not None and binding.rid is None


# --- payload type fallback ---------------------------------------------------------------


def test_payload_type_fallback() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    binding = demux.route_rtp(_pkt(0x55, 111))
    assert binding is not None and binding.mid == "0"
    assert demux.binding(0x55) is binding  # learned (RFC 8843 §9.2)
    rtx = demux.route_rtp(_pkt(0x56, 99))
    assert rtx is not None and rtx.mid == "1" and rtx.repair
    assert demux.route_rtp(_pkt(0x57, 120)) is None
    assert demux.drops[DropReason.UNKNOWN_PAYLOAD_TYPE] == 1


def test_a_payload_type_used_by_two_sections_is_ambiguous() -> None:
    second_video = MediaSection("2", payload_types={96, 97}, rtx_payload_types={97})
    demux = RtpDemuxer([_audio(), _video(), second_video])
    assert demux.route_rtp(_pkt(0x66, 96)) is None
    assert demux.drops[DropReason.AMBIGUOUS_PAYLOAD_TYPE] == 1
    assert demux.route_rtp(_pkt(0x66, 96, mid="2")) is not None


# --- bounds ---------------------------------------------------------------------------------


def test_learned_ssrcs_are_bounded_oldest_forgotten_first() -> None:
    demux = RtpDemuxer([_audio(ssrcs={0x9999}), _video()], max_learned_ssrcs=5)
    for ssrc in range(1, 11):
        assert demux.route_rtp(_pkt(ssrc, 111, mid="0")) is not None
    assert demux.learned_count == 5
    assert [demux.binding(s) is not None for s in range(1, 11)] == [False] * 5 + [True] * 5
    assert demux.binding(0x9999) is not None  # signaled SSRCs are never forgotten
    demux.forget(0x9999)
    assert demux.binding(0x9999) is not None


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="mid"):
        RtpDemuxer([_audio(), _audio()])
    with pytest.raises(ValueError, match="SSRC 5"):
        RtpDemuxer([_audio(ssrcs={5}), _video(ssrcs={5})])
    with pytest.raises(ValueError):
        RtpDemuxer([_audio()], max_learned_ssrcs=0)


# --- RTCP routing ------------------------------------------------------------------------


def test_rtcp_routes_by_the_ssrcs_inside() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    demux.route_rtp(_pkt(0x1111, 111, mid="0"))
    demux.route_rtp(_pkt(0x2222, 96, mid="1"))
    sr = SenderReport(0x1111, 0, 0, 0, 0, [ReportBlock(LOCAL_VIDEO), ReportBlock(0xDEAD)])
    rr = ReceiverReport(0x7777, [ReportBlock(LOCAL_AUDIO)])
    sdes = SourceDescription([SdesChunk(0x1111), SdesChunk(0x2222)])
    nack = GenericNack.from_lost(0x7777, LOCAL_VIDEO_RTX, [1])
    pli = PictureLossIndication(0x7777, LOCAL_VIDEO)
    fir = FullIntraRequest(0x7777, [FirEntry(LOCAL_VIDEO, 1), FirEntry(LOCAL_AUDIO, 1)])
    remb = Remb(0x7777, 500_000, [LOCAL_VIDEO])
    twcc = TwccFeedback.from_arrival_times(0x7777, LOCAL_AUDIO, 0, 1, [1000])
    xr = ExtendedReport(0x2222, [RrtrBlock(5), DlrrBlock([DlrrItem(LOCAL_AUDIO, 1, 2)])])
    app = ApplicationDefined(0, 0x1111, b"TEST")
    packets: list[RtcpPacket] = [sr, rr, sdes, nack, pli, fir, remb, twcc, xr, app]
    routes = demux.route_rtcp(packets)
    summary = [(r.mid, r.ssrc, r.local, type(r.packet).__name__) for r in routes]
    assert summary == [
        ("0", 0x1111, False, "SenderReport"),
        ("1", LOCAL_VIDEO, True, "SenderReport"),
        ("0", LOCAL_AUDIO, True, "ReceiverReport"),
        ("0", 0x1111, False, "SourceDescription"),
        ("1", 0x2222, False, "SourceDescription"),
        ("1", LOCAL_VIDEO_RTX, True, "GenericNack"),
        ("1", LOCAL_VIDEO, True, "PictureLossIndication"),
        ("1", LOCAL_VIDEO, True, "FullIntraRequest"),
        ("0", LOCAL_AUDIO, True, "FullIntraRequest"),
        (None, 0, True, "Remb"),
        (None, LOCAL_AUDIO, True, "TwccFeedback"),
        ("0", LOCAL_AUDIO, True, "ExtendedReport"),
        ("1", 0x2222, False, "ExtendedReport"),
    ]
    assert routes[1].report_block == ReportBlock(LOCAL_VIDEO)
    assert demux.drops[DropReason.RTCP_UNKNOWN_SSRC] == 1  # the block about 0xDEAD
    assert demux.drops[DropReason.RTCP_UNROUTABLE] == 1


def test_bye_routes_then_forgets_learned_ssrcs() -> None:
    demux = RtpDemuxer([_audio(), _video()])
    demux.route_rtp(_pkt(0x1111, 111, mid="0"))
    (route,) = demux.route_rtcp([Bye([0x1111])])
    assert route.mid == "0" and not route.local
    assert demux.binding(0x1111) is None and demux.learned_count == 0
    assert demux.route_rtcp([Bye([0x1111])]) == []
    assert demux.drops[DropReason.RTCP_UNKNOWN_SSRC] == 1


# --- hypothesis ------------------------------------------------------------------------------

_MIDS = st.sampled_from(["0", "1", "2", "x"]).map(str.encode) | st.binary(max_size=4)
_RIDS = st.sampled_from(["h", "m", "l", "q"]).map(str.encode) | st.binary(max_size=3)
_EXTENSIONS = st.dictionaries(
    st.sampled_from([MID_ID, RID_ID, RRID_ID, 1, 2]), _MIDS | _RIDS, max_size=3
)
_PACKETS = st.builds(
    lambda ssrc, pt, ext: RtpPacket(pt, 0, 0, ssrc, b"", extensions=ext),
    st.integers(0, 40) | st.integers(0, 0xFFFF_FFFF),
    st.integers(0, 127),
    _EXTENSIONS,
)
BOUND = 8


@settings(max_examples=300, deadline=None)
@given(st.lists(_PACKETS, max_size=80))
def test_random_packet_streams_never_raise_and_stay_bounded(packets: list[RtpPacket]) -> None:
    demux = RtpDemuxer(
        [_audio(ssrcs={1, 2}), _video(rids=("h", "m", "l"), fid_groups=[(3, 4)])],
        max_learned_ssrcs=BOUND,
    )
    signaled = demux.route_count
    for packet in packets:
        binding = demux.route_rtp(packet)
        if binding is not None:
            assert binding.section.accepts_payload_type(packet.payload_type)
            assert demux.binding(packet.ssrc) is binding
        assert demux.learned_count <= BOUND
        assert demux.route_count <= BOUND + signaled
        assert len(demux._rid_primary) <= 3 and len(demux._rid_repair) <= 3
    routed = demux.packets_routed + sum(
        n for reason, n in demux.drops.items() if not reason.value.startswith("rtcp")
    )
    assert routed == len(packets)


_SSRC = st.sampled_from([1, 0x1111, LOCAL_AUDIO, LOCAL_VIDEO, LOCAL_VIDEO_RTX]) | st.integers(
    0, 0xFFFF_FFFF
)
_BLOCKS = st.lists(st.builds(ReportBlock, _SSRC), max_size=4)
_RTCP = st.one_of(
    st.builds(SenderReport, _SSRC, st.just(0), st.just(0), st.just(0), st.just(0), _BLOCKS),
    st.builds(ReceiverReport, _SSRC, _BLOCKS),
    st.builds(Bye, st.lists(_SSRC, max_size=3)),
    st.builds(SourceDescription, st.lists(st.builds(SdesChunk, _SSRC), max_size=3)),
    st.builds(PictureLossIndication, _SSRC, _SSRC),
    st.builds(FullIntraRequest, _SSRC, st.lists(st.builds(FirEntry, _SSRC, st.just(0)))),
    st.builds(ExtendedReport, _SSRC, st.lists(st.builds(RrtrBlock, st.just(1)), max_size=1)),
    st.builds(ApplicationDefined, st.just(0), _SSRC, st.just(b"TEST")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PACKETS, max_size=20), st.lists(_RTCP, max_size=10), st.binary(max_size=120))
def test_routing_any_rtcp_never_raises(
    packets: list[RtpPacket], rtcp: list[RtcpPacket], data: bytes
) -> None:
    demux = RtpDemuxer([_audio(ssrcs={1}), _video()], max_learned_ssrcs=BOUND)
    for packet in packets:
        demux.route_rtp(packet)
    try:
        parsed = parse_rtcp_untrusted(data)
    except RtpError:
        parsed = []
    for route in demux.route_rtcp(rtcp + parsed):
        assert route.mid in (None, "0", "1")
        if route.local:
            assert route.mid is None or demux.local_mid(route.ssrc) == route.mid
    assert demux.learned_count <= BOUND
