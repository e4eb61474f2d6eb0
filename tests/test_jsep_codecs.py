"""Codec and header extension negotiation (``trio_rtc.jsep.codecs``, ``trio_rtc.jsep.h264``),
tested with SDP text alone: answers to Chromium and Firefox offers, our offers, remote answers."""

from __future__ import annotations

import pathlib
import re

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_rtc.exceptions import InvalidAccessError, InvalidModificationError
from trio_rtc.jsep import codecs
from trio_rtc.jsep.codecs import (
    DEFAULT_EXTMAP_IDS,
    NegotiatedCodec,
    NegotiatedMedia,
    RTCRtpCodecCapability,
    answer_codecs,
    check_codec_preferences,
    format_fmtp,
    get_capabilities,
    offer_codecs,
    parse_fmtp,
)
from trio_rtc.jsep.h264 import (
    H264ParameterError,
    H264Profile,
    ProfileLevelId,
    answer_profile_level_id,
    parse_profile_level_id_untrusted,
    same_h264_configuration,
)
from trio_rtc.rtp import extensions
from trio_rtc.sdp import (
    Direction,
    Extmap,
    MediaDescription,
    Origin,
    SessionDescription,
    parse_sdp_untrusted,
)

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ORIENTATION = "urn:3gpp:video-orientation"
TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"
VIDEO_FB = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")


def sample(name: str) -> SessionDescription:
    return parse_sdp_untrusted((SAMPLES / name).read_text())


def section(kind: str, formats: str, *lines: str) -> tuple[MediaDescription, SessionDescription]:
    """A one-section offer written by hand."""
    text = "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {formats}",
            "c=IN IP4 0.0.0.0",
            "a=mid:0",
            *lines,
        ]
    )
    description = parse_sdp_untrusted(text + "\r\n")
    return description.media[0], description


def summary(media: NegotiatedMedia) -> list[tuple[int, str, str]]:
    return [(c.payload_type, c.rtpmap, format_fmtp(c.parameters)) for c in media.codecs]


def codec_of(media: NegotiatedMedia, payload_type: int) -> NegotiatedCodec:
    codec = media.codec(payload_type)
    assert codec is not None
    return codec


def pref(
    mime: str, rate: int, channels: int | None = None, fmtp: str | None = None
) -> RTCRtpCodecCapability:
    return RTCRtpCodecCapability(mime, rate, channels, fmtp)


# -- capabilities ------------------------------------------------------------------------------


def test_uris_are_the_rtp_layers() -> None:
    assert (MID, RID, RRID, ABS_SEND_TIME, TWCC, AUDIO_LEVEL, ORIENTATION, TOFFSET) == (
        extensions.URI_MID,
        extensions.URI_RID,
        extensions.URI_REPAIRED_RID,
        extensions.URI_ABS_SEND_TIME,
        extensions.URI_TRANSPORT_CC,
        extensions.URI_AUDIO_LEVEL,
        extensions.URI_VIDEO_ORIENTATION,
        extensions.URI_TOFFSET,
    )
    assert (MID, RID, RRID, ABS_SEND_TIME, TWCC, AUDIO_LEVEL, ORIENTATION, TOFFSET) == (
        codecs.URI_MID,
        codecs.URI_RID,
        codecs.URI_REPAIRED_RID,
        codecs.URI_ABS_SEND_TIME,
        codecs.URI_TRANSPORT_CC,
        codecs.URI_AUDIO_LEVEL,
        codecs.URI_VIDEO_ORIENTATION,
        codecs.URI_TOFFSET,
    )


def test_audio_capabilities() -> None:
    caps = get_capabilities("audio")
    assert [(c.mimeType, c.clockRate, c.channels, c.sdpFmtpLine) for c in caps.codecs] == [
        ("audio/opus", 48000, 2, "minptime=10;useinbandfec=1"),
        ("audio/red", 48000, 2, None),
        ("audio/PCMU", 8000, 1, None),
        ("audio/PCMA", 8000, 1, None),
        ("audio/telephone-event", 48000, 1, None),
        ("audio/telephone-event", 8000, 1, None),
    ]
    assert {h.uri for h in caps.headerExtensions} == {
        AUDIO_LEVEL,
        MID,
        RID,
        RRID,
        ABS_SEND_TIME,
        TWCC,
    }


def test_video_capabilities() -> None:
    caps = get_capabilities("video")
    assert [(c.mimeType, c.sdpFmtpLine) for c in caps.codecs] == [
        ("video/VP8", None),
        ("video/VP9", "profile-id=0"),
        ("video/VP9", "profile-id=2"),
        *[
            (
                "video/H264",
                f"level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={pli}",
            )
            for pli in ("42001f", "42e01f", "4d001f")
            for mode in (1, 0)
        ],
        ("video/AV1", "level-idx=5;profile=0;tier=0"),
        ("video/rtx", None),
    ]
    for codec in caps.codecs[:-1]:
        assert tuple(f.sdp for f in codec.rtcpFeedback) == VIDEO_FB
    assert {h.uri for h in caps.headerExtensions} == {
        TOFFSET,
        ORIENTATION,
        MID,
        RID,
        RRID,
        ABS_SEND_TIME,
        TWCC,
    }
    assert get_capabilities("application").codecs == ()


# -- answering Chromium and Firefox ------------------------------------------------------------

CHROMIUM_SAMPLES = ["chromium_offer_audio_video.sdp", "chromium_offer_audio_video_data.sdp"]


@pytest.mark.parametrize("name", CHROMIUM_SAMPLES)
def test_answer_chromium_audio(name: str) -> None:
    offer = sample(name)
    answer = answer_codecs(offer.media[0], session=offer)
    assert not answer.rejected
    assert summary(answer) == [
        (111, "opus/48000/2", "minptime=10;useinbandfec=1"),
        (63, "red/48000/2", "111/111"),
        (0, "PCMU/8000", ""),
        (8, "PCMA/8000", ""),
        (110, "telephone-event/48000", ""),
        (126, "telephone-event/8000", ""),
    ]  # G722 9 and CN 13 dropped
    assert codec_of(answer, 111).rtcp_feedback == ("transport-cc",)
    assert answer.extmap == {1: AUDIO_LEVEL, 2: ABS_SEND_TIME, 3: TWCC, 4: MID}
    assert answer.rtcp_rsize and answer.extmap_allow_mixed  # session-level extmap-allow-mixed
    assert answer.rtx == {}


@pytest.mark.parametrize("name", CHROMIUM_SAMPLES)
def test_answer_chromium_video(name: str) -> None:
    offer = sample(name)
    answer = answer_codecs(offer.media[1], session=offer)
    assert summary(answer) == [
        (96, "VP8/90000", ""),
        (97, "rtx/90000", "apt=96"),
        (
            102,
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        ),
        (103, "rtx/90000", "apt=102"),
        (45, "AV1/90000", "level-idx=5;profile=0;tier=0"),
        (46, "rtx/90000", "apt=45"),
        (98, "VP9/90000", "profile-id=0"),
        (99, "rtx/90000", "apt=98"),
    ]  # red 116, its RTX 117 and ulpfec 118 dropped
    assert answer.rtx == {97: 96, 103: 102, 46: 45, 99: 98}
    for codec in answer.media_codecs:
        assert codec.rtcp_feedback == ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
    for codec in answer.codecs:
        if codec.is_rtx:
            assert codec.rtcp_feedback == ()
    # Our extensions keep the offerer's ids; playout-delay, content type, timing, color space go.
    assert answer.extmap == {
        14: TOFFSET,
        2: ABS_SEND_TIME,
        13: ORIENTATION,
        3: TWCC,
        4: MID,
        10: RID,
        11: RRID,
    }
    assert all(e.direction is None for e in answer.extmaps)


def test_answer_firefox() -> None:
    offer = sample("firefox_offer_audio_video_data.sdp")
    audio = answer_codecs(offer.media[0], session=offer)
    assert summary(audio) == [
        (109, "opus/48000/2", "maxplaybackrate=48000;stereo=1;useinbandfec=1"),  # carried over
        (0, "PCMU/8000", ""),
        (8, "PCMA/8000", ""),
        (101, "telephone-event/8000", "0-15"),
    ]  # G722/8000/1 dropped
    # csrc-audio-level (recvonly) is not ours.
    assert audio.extmap == {1: AUDIO_LEVEL, 3: MID}
    assert not audio.rtcp_rsize and not audio.extmap_allow_mixed

    video = answer_codecs(offer.media[1], session=offer)
    assert summary(video) == [
        (120, "VP8/90000", "max-fs=12288;max-fr=60"),
        (124, "rtx/90000", "apt=120"),
        (121, "VP9/90000", "max-fs=12288;max-fr=60"),  # no profile-id: profile 0
        (125, "rtx/90000", "apt=121"),
        (
            126,
            "H264/90000",
            "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1",
        ),
        (127, "rtx/90000", "apt=126"),
        (97, "H264/90000", "profile-level-id=42e01f;level-asymmetry-allowed=1"),  # mode 0
        (98, "rtx/90000", "apt=97"),
    ]  # ulpfec 123, red 122 and red's RTX 119 dropped
    assert video.extmap == {3: MID, 4: ABS_SEND_TIME, 5: TOFFSET, 7: TWCC}  # playout-delay gone
    assert video.rtcp_rsize and not video.extmap_allow_mixed


def test_answer_every_codec_chromium_lists() -> None:
    offer = sample("chromium_offer_every_codec.sdp")
    audio = answer_codecs(offer.media[0], session=offer)
    assert audio.payload_types == [111, 63, 0, 8, 110, 126]
    video = answer_codecs(offer.media[1], session=offer)
    assert video.payload_types == [
        96, 97,  # VP8
        98, 99,  # VP9 profile 0 (profile 1, 35/36, dropped)
        100, 101,  # VP9 profile 2
        102, 103,  # H264 42001f mode 1
        104, 105,  # H264 42001f mode 0
        106, 107,  # H264 42e01f mode 1
        108, 109,  # H264 42e01f mode 0
        127, 125,  # H264 4d001f mode 1
        39, 40,  # H264 4d001f mode 0 (a 35-63 payload type)
        45, 46,  # AV1
    ]  # fmt: skip
    # High 64001f (112/113), red (114), its RTX (115) and ulpfec (116) are dropped.
    modes = {
        c.payload_type: (c.parameters["profile-level-id"], c.parameters["packetization-mode"])
        for c in video.codecs
        if c.name == "H264"
    }
    assert modes == {
        102: ("42001f", "1"),
        104: ("42001f", "0"),
        106: ("42e01f", "1"),
        108: ("42e01f", "0"),
        127: ("4d001f", "1"),
        39: ("4d001f", "0"),
    }
    assert codec_of(video, 100).parameters == {"profile-id": "2"}
    assert video.rtx == {97: 96, 99: 98, 101: 100, 103: 102, 105: 104, 107: 106, 109: 108} | {
        125: 127,
        40: 39,
        46: 45,
    }


# -- preferences -------------------------------------------------------------------------------


def test_preferences_reorder_and_limit() -> None:
    offer = sample("chromium_offer_every_codec.sdp")
    preferences = [
        pref(
            "video/H264",
            90000,
            fmtp="level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        ),
        pref("video/vp8", 90000),  # mime types compare case-insensitively
        pref("video/rtx", 90000),
    ]
    answer = answer_codecs(offer.media[1], preferences=preferences, session=offer)
    assert answer.payload_types == [106, 107, 96, 97]
    # Without RTX in the preferences, no RTX.
    answer = answer_codecs(offer.media[1], preferences=preferences[:2], session=offer)
    assert answer.payload_types == [106, 96]


def test_preferences_in_other_fmtp_order_match() -> None:
    offer = sample("chromium_offer_every_codec.sdp")
    opus = pref("audio/opus", 48000, 2, "useinbandfec=1;minptime=10")
    answer = answer_codecs(offer.media[0], preferences=[pref("audio/PCMA", 8000, 1), opus])
    assert answer.payload_types == [8, 111]


def test_preferences_must_be_capabilities() -> None:
    caps = get_capabilities("video")
    with pytest.raises(InvalidModificationError, match="H265"):
        check_codec_preferences([pref("video/H265", 90000)], caps)
    with pytest.raises(InvalidModificationError, match="only RTX"):
        check_codec_preferences([pref("video/rtx", 90000)], caps)
    assert check_codec_preferences([], caps) == []


def test_preferences_outside_the_offer_reject_the_section() -> None:
    offer = sample("firefox_offer_audio_video_data.sdp")
    answer = answer_codecs(
        offer.media[1], preferences=[pref("video/AV1", 90000, fmtp="level-idx=5;profile=0;tier=0")]
    )
    assert answer.rejected and "none of the offered video codecs" in (answer.rejected_reason or "")


# -- rejections and edge cases -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "formats", "lines"),
    [
        ("audio", "9 13", ["a=rtpmap:9 G722/8000", "a=rtpmap:13 CN/8000"]),
        ("audio", "101", ["a=rtpmap:101 telephone-event/8000"]),  # no media codec of its own
        (
            "video",
            "100 101",
            ["a=rtpmap:100 H265/90000", "a=rtpmap:101 rtx/90000", "a=fmtp:101 apt=100"],
        ),
        ("video", "100", ["a=rtpmap:100 VP9/90000", "a=fmtp:100 profile-id=1"]),
        ("video", "100", ["a=rtpmap:100 H264/90000", "a=fmtp:100 packetization-mode=2"]),
        ("video", "100", ["a=fmtp:100 profile-id=0"]),  # a dynamic type without rtpmap
    ],
)
def test_nothing_supported_rejects(kind: str, formats: str, lines: list[str]) -> None:
    media, session = section(kind, formats, *lines)
    answer = answer_codecs(media, session=session)
    assert answer.rejected and answer.codecs == ()
    assert answer.rejected_reason is not None and "none of the offered" in answer.rejected_reason
    with pytest.raises(ValueError, match="rejected"):
        answer.write_to(media)


def test_static_payload_types_without_rtpmap() -> None:
    media, session = section("audio", "0 8 9")
    assert summary(answer_codecs(media, session=session)) == [
        (0, "PCMU/8000/1", ""),
        (8, "PCMA/8000/1", ""),
    ]


def test_non_rtp_section_is_rejected() -> None:
    offer = sample("chromium_offer_audio_video_data.sdp")
    assert answer_codecs(offer.media[2]).rejected


def test_rtx_without_its_codec_or_with_another_clock_is_dropped() -> None:
    media, session = section(
        "video",
        "96 97 98 99",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=120",
        "a=rtpmap:98 rtx/45000",
        "a=fmtp:98 apt=96",
        "a=rtpmap:99 rtx/90000",
        "a=fmtp:99 apt=96;rtx-time=3000",
    )
    answer = answer_codecs(media, session=session)
    assert summary(answer) == [(96, "VP8/90000", ""), (99, "rtx/90000", "apt=96;rtx-time=3000")]


def test_rtcp_fb_intersection_and_wildcard() -> None:
    media, session = section(
        "video",
        "96",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 NACK   PLI",
        "a=rtcp-fb:96 ccm tmmbr",
        "a=rtcp-fb:* transport-cc",
    )
    answer = answer_codecs(media, session=session)
    assert answer.codecs[0].rtcp_feedback == ("NACK   PLI", "transport-cc")


def test_extmap_directions_and_ids() -> None:
    media, session = section(
        "video",
        "96",
        "a=rtpmap:96 VP8/90000",
        f"a=extmap:1/sendonly {MID}",
        f"a=extmap:2/recvonly {TOFFSET}",
        f"a=extmap:3/inactive {ORIENTATION}",
        f"a=extmap:300 {ABS_SEND_TIME}",  # beyond 255: unusable
        f"a=extmap:200 {TWCC}",  # two-byte form: fine
        f"a=extmap:5 {AUDIO_LEVEL}",  # an audio extension in a video section
    )
    answer = answer_codecs(media, session=session)
    assert answer.extmaps == (
        Extmap(1, MID, Direction.RECVONLY),
        Extmap(2, TOFFSET, Direction.SENDONLY),
        Extmap(3, ORIENTATION, Direction.INACTIVE),
        Extmap(200, TWCC),
    )


def test_session_level_extmaps_apply() -> None:
    text = (SAMPLES / "firefox_offer_audio_video_data.sdp").read_text()
    text = text.replace(
        "a=msid-semantic:WMS *", f"a=msid-semantic:WMS *\r\na=extmap:9 {ABS_SEND_TIME}"
    )
    offer = parse_sdp_untrusted(text)
    assert answer_codecs(offer.media[0], session=offer).extmap[9] == ABS_SEND_TIME


def test_extmap_id_with_two_uris_is_an_error() -> None:
    media, session = section("audio", "0", f"a=extmap:1 {MID}", f"a=extmap:1 {AUDIO_LEVEL}")
    with pytest.raises(InvalidAccessError, match="extmap id 1"):
        answer_codecs(media, session=session)


# -- H.264 profile-level-id -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "profile", "level_rank"),
    [
        ("42e01f", H264Profile.CONSTRAINED_BASELINE, 310),
        ("42c01f", H264Profile.CONSTRAINED_BASELINE, 310),
        ("42401f", H264Profile.CONSTRAINED_BASELINE, 310),
        ("4d801f", H264Profile.CONSTRAINED_BASELINE, 310),  # Main + constraint_set0
        ("58c01f", H264Profile.CONSTRAINED_BASELINE, 310),  # Extended + set0 + set1
        ("42001f", H264Profile.BASELINE, 310),
        ("42a01e", H264Profile.BASELINE, 300),
        ("58801f", H264Profile.BASELINE, 310),
        ("4d001f", H264Profile.MAIN, 310),
        ("4d4028", H264Profile.MAIN, 400),
        ("58001f", H264Profile.EXTENDED, 310),
        ("64001f", H264Profile.HIGH, 310),
        ("640c1f", H264Profile.CONSTRAINED_HIGH, 310),
        ("64081f", H264Profile.PROGRESSIVE_HIGH, 310),
        ("f4001f", H264Profile.HIGH_444, 310),
        ("6e101f", H264Profile.HIGH_10_INTRA, 310),
        ("42f00b", H264Profile.CONSTRAINED_BASELINE, 105),  # level 1b: 11 with constraint_set3
        ("42e00b", H264Profile.CONSTRAINED_BASELINE, 110),  # level 1.1
        ("640009", H264Profile.HIGH, 105),  # level 1b in High: level_idc 9
        ("42E01F", H264Profile.CONSTRAINED_BASELINE, 310),
    ],
)
def test_profile_table(text: str, profile: str, level_rank: int) -> None:
    parsed = parse_profile_level_id_untrusted(text)
    assert (parsed.profile, parsed.level_rank) == (profile, level_rank)


@pytest.mark.parametrize(
    "text",
    ["", "42e0", "42e01f0", "zz001f", "4d201f", "42e01e0", "6401 f", "123456", "42e0ff", "42e31f"],
)
def test_bad_profile_level_ids(text: str) -> None:
    with pytest.raises(H264ParameterError):
        parse_profile_level_id_untrusted(text)


def test_absent_profile_level_id_is_baseline_level_1() -> None:
    default = parse_profile_level_id_untrusted(None)
    assert (default.profile, default.level_rank, str(default)) == (
        H264Profile.BASELINE,
        100,
        "42000a",
    )


def h264(pli: str | None, mode: str | None = "1") -> dict[str, str]:
    parameters = {}
    if pli is not None:
        parameters["profile-level-id"] = pli
    if mode is not None:
        parameters["packetization-mode"] = mode
    return parameters


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        (h264("42e01f"), h264("42e01f"), True),
        (h264("42e01f"), h264("42e034"), True),  # levels may differ
        (h264("42e01f"), h264("42401f"), True),  # two spellings of Constrained Baseline
        (h264("42e01f"), h264("4d801f"), True),
        (h264("42e01f"), h264("42001f"), False),  # Constrained Baseline is not Baseline
        (h264("4d001f"), h264("4d401f"), True),
        (h264("4d001f"), h264("64001f"), False),
        (h264("64001f"), h264("640c1f"), False),  # High is not Constrained High
        (h264("42e01f", "1"), h264("42e01f", "0"), False),
        (h264("42e01f", None), h264("42e01f", "0"), True),  # mode 0 is the default
        (h264(None), h264("42001f"), True),  # absent: Baseline
        (h264("bogus"), h264("bogus"), False),  # malformed matches nothing
        (h264("42e01f", "3"), h264("42e01f", "3"), False),
    ],
)
def test_h264_configuration_matching(
    one: dict[str, str], other: dict[str, str], same: bool
) -> None:
    assert same_h264_configuration(one, other) is same
    assert same_h264_configuration(other, one) is same


@pytest.mark.parametrize(
    ("offered", "ours", "asymmetric", "answer"),
    [
        ("42e034", "42e01f", True, "42e01f"),  # each side states what it receives
        ("42e00a", "42e01f", True, "42e01f"),
        ("42e034", "42e01f", False, "42e01f"),  # level downgrade to what we can do
        ("42e00d", "42e01f", False, "42e00d"),  # the offer's lower level stands
        ("42f00b", "42e01f", False, "42f00b"),  # 1b kept, with constraint_set3
        ("42e01f", "42f00b", False, "42f00b"),  # lowered to 1b: set3 is set
        ("42f00b", "42e01f", True, "42e01f"),  # raised from 1b: set3 cleared
        ("4d801f", "42e01f", True, "4d801f"),  # the offer's profile bytes are kept
        ("640009", "64001f", True, "64001f"),
        ("64001f", "640009", False, "640009"),
    ],
)
def test_answer_level(offered: str, ours: str, asymmetric: bool, answer: str) -> None:
    result = answer_profile_level_id(
        parse_profile_level_id_untrusted(offered),
        parse_profile_level_id_untrusted(ours),
        level_asymmetry_allowed=asymmetric,
    )
    assert str(result) == answer


@pytest.mark.parametrize(
    ("fmtp", "answered"),
    [
        ("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e034", "42e01f"),
        ("packetization-mode=1;profile-level-id=42e028", "42e01f"),
        ("packetization-mode=1;profile-level-id=42e00d", "42e00d"),
        ("packetization-mode=1;profile-level-id=42E00D", "42e00d"),
    ],
)
def test_answer_h264_level(fmtp: str, answered: str) -> None:
    media, session = section("video", "100", "a=rtpmap:100 H264/90000", f"a=fmtp:100 {fmtp}")
    answer = answer_codecs(media, session=session)
    assert answer.codecs[0].parameters["profile-level-id"] == answered


def test_answer_h264_without_profile_level_id() -> None:
    # The default, Baseline level 1, is within ours (42001f): nothing to write.
    media, session = section("video", "100", "a=rtpmap:100 H264/90000")
    assert summary(answer_codecs(media, session=session)) == [(100, "H264/90000", "")]


# -- our offers --------------------------------------------------------------------------------


def test_offer_payload_types() -> None:
    audio = offer_codecs("audio")
    assert summary(audio) == [
        (96, "opus/48000/2", "minptime=10;useinbandfec=1"),
        (63, "red/48000/2", "96/96"),
        (0, "PCMU/8000", ""),
        (8, "PCMA/8000", ""),
        (97, "telephone-event/48000", ""),
        (98, "telephone-event/8000", ""),
    ]
    video = offer_codecs("video", bundle=[audio])
    assert video.payload_types == list(range(99, 119))  # each codec, then its RTX
    assert video.rtx == {pt + 1: pt for pt in range(99, 119, 2)}
    assert [c.rtpmap for c in video.codecs[1::2]] == ["rtx/90000"] * 10
    assert video.rtcp_rsize and video.extmap_allow_mixed
    assert audio.extmap == {
        DEFAULT_EXTMAP_IDS[u]: u for u in (AUDIO_LEVEL, MID, RID, RRID, ABS_SEND_TIME, TWCC)
    }
    assert video.extmap == {
        DEFAULT_EXTMAP_IDS[u]: u
        for u in (TOFFSET, ORIENTATION, MID, RID, RRID, ABS_SEND_TIME, TWCC)
    }
    assert all(1 <= ident <= 14 for ident in video.extmap)


def test_offer_is_stable_across_renegotiation() -> None:
    first = offer_codecs("video")
    again = offer_codecs("video", previous=first)
    assert again == first
    # Reordered by preferences: the same numbers follow their codecs.
    caps = get_capabilities("video")
    av1, vp8, rtx = caps.codecs[9], caps.codecs[0], caps.codecs[-1]
    reordered = offer_codecs("video", preferences=[av1, vp8, rtx], previous=first)
    assert summary(reordered) == [
        (first.codecs[18].payload_type, "AV1/90000", "level-idx=5;profile=0;tier=0"),
        (first.codecs[19].payload_type, "rtx/90000", f"apt={first.codecs[18].payload_type}"),
        (96, "VP8/90000", ""),
        (97, "rtx/90000", "apt=96"),
    ]
    # A later full offer puts everything back where it was.
    assert offer_codecs("video", previous=reordered).payload_types[:4] == first.payload_types[:4]


def test_offer_keeps_the_numbers_a_remote_offer_gave() -> None:
    chromium = sample("chromium_offer_audio_video.sdp")
    negotiated = answer_codecs(chromium.media[1], session=chromium)
    offer = offer_codecs("video", previous=negotiated)
    by_codec = {(c.name, format_fmtp(c.parameters)): c.payload_type for c in offer.media_codecs}
    assert by_codec["VP8", ""] == 96
    assert by_codec["VP9", "profile-id=0"] == 98
    assert by_codec["AV1", "level-idx=5;profile=0;tier=0"] == 45
    assert (
        by_codec["H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"]
        == 102
    )
    assert {97: 96, 99: 98, 46: 45, 103: 102}.items() <= offer.rtx.items()
    # New codecs take numbers the earlier negotiation did not use.
    fresh = set(offer.payload_types) - set(negotiated.payload_types)
    assert fresh.isdisjoint(negotiated.payload_types) and len(fresh) == 20 - 8
    assert offer.extmap == negotiated.extmap  # Chromium's ids equal our defaults here


def test_offer_extmap_ids_follow_previous_and_bundle() -> None:
    previous = NegotiatedMedia("video", extmaps=(Extmap(7, MID), Extmap(14, RID)))
    audio = NegotiatedMedia("audio", extmaps=(Extmap(2, AUDIO_LEVEL), Extmap(9, TWCC)))
    video = offer_codecs("video", previous=previous, bundle=[audio])
    assert video.extmap[7] == MID and video.extmap[14] == RID  # kept
    assert video.extmap[9] == TWCC  # the bundle's id for the same URI
    assert video.extmap.get(2) != ABS_SEND_TIME  # never the bundle's id for another URI
    assert len(set(video.extmap.values())) == 7


def test_offer_uses_35_to_63_when_96_to_127_run_out() -> None:
    used = NegotiatedMedia(
        "audio", tuple(NegotiatedCodec(pt, "opus", 48000, 2) for pt in range(96, 128))
    )
    video = offer_codecs("video", bundle=[used])
    assert video.payload_types == list(range(35, 55))


def test_offer_leaves_out_codecs_beyond_the_payload_type_space() -> None:
    used = NegotiatedMedia(
        "audio",
        tuple(NegotiatedCodec(pt, "opus", 48000, 2) for pt in (*range(96, 128), *range(35, 58))),
    )
    video = offer_codecs("video", bundle=[used])
    assert video.payload_types == [58, 59, 60, 61, 62, 63]  # VP8, VP9/0, VP9/2 with RTX
    full = NegotiatedMedia(
        "audio",
        tuple(NegotiatedCodec(pt, "opus", 48000, 2) for pt in (*range(96, 128), *range(35, 64))),
    )
    assert offer_codecs("video", bundle=[full]).rejected


def test_offer_with_preferences_without_rtx() -> None:
    caps = get_capabilities("video")
    offer = offer_codecs("video", preferences=[caps.codecs[0]])
    assert summary(offer) == [(96, "VP8/90000", "")]


# -- writing, reading, remote answers ----------------------------------------------------------


def through_sdp(media: NegotiatedMedia) -> tuple[MediaDescription, SessionDescription]:
    section_ = MediaDescription(
        kind=media.kind, port=9, protocol="UDP/TLS/RTP/SAVPF", formats=[], mid="0"
    )
    media.write_to(section_)
    description = SessionDescription(origin=Origin(1, 1), media=[section_])
    parsed = parse_sdp_untrusted(description.serialize())
    return parsed.media[0], parsed


@pytest.mark.parametrize(
    "make",
    [
        lambda: offer_codecs("audio"),
        lambda: offer_codecs("video"),
        lambda: answer_codecs(sample("firefox_offer_audio_video_data.sdp").media[0]),
        lambda: answer_codecs(sample("chromium_offer_every_codec.sdp").media[1]),
    ],
)
def test_round_trip_through_sdp(make: object) -> None:
    assert callable(make)
    media: NegotiatedMedia = make()
    parsed, session = through_sdp(media)
    assert NegotiatedMedia.from_media(parsed, session) == media


def test_written_lines() -> None:
    section_, _ = through_sdp(
        offer_codecs(
            "video",
            preferences=[get_capabilities("video").codecs[3], get_capabilities("video").codecs[-1]],
        )
    )
    text = SessionDescription(origin=Origin(1, 1), media=[section_]).serialize(keep_layout=False)
    assert "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" in text
    for line in (
        "a=rtpmap:96 H264/90000",
        "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        f"a=extmap:4 {MID}",
        "a=rtcp-rsize",
        "a=extmap-allow-mixed",
    ):
        assert line + "\r\n" in text


def remote_answer(our_offer: NegotiatedMedia) -> tuple[MediaDescription, SessionDescription]:
    """What a peer running the same rules answers to our offer."""
    offered, session = through_sdp(our_offer)
    return through_sdp(answer_codecs(offered, session=session))


def test_from_answer_accepts_a_subset() -> None:
    offer = offer_codecs("video")
    answer_media, session = remote_answer(offer)
    negotiated = NegotiatedMedia.from_answer(answer_media, offer, session)
    assert negotiated == NegotiatedMedia.from_media(answer_media, session)
    # A smaller answer: only H264 42e01f mode 0 and its RTX.
    h264 = next(
        c
        for c in offer.codecs
        if c.parameters.get("packetization-mode") == "0"
        and c.parameters["profile-level-id"] == "42e01f"
    )
    rtx = next(c for c in offer.codecs if c.apt == h264.payload_type)
    smaller = attrs.evolve(
        offer,
        codecs=(
            attrs.evolve(h264, parameters={**h264.parameters, "profile-level-id": "42e00d"}),
            rtx,
        ),
    )
    answer_media, session = through_sdp(smaller)
    negotiated = NegotiatedMedia.from_answer(answer_media, offer, session)
    assert negotiated.payload_types == [h264.payload_type, rtx.payload_type]
    assert negotiated.codecs[0].parameters["profile-level-id"] == "42e00d"  # a level may differ


def test_from_answer_limits_feedback_extensions_and_flags() -> None:
    offer = attrs.evolve(offer_codecs("audio"), rtcp_rsize=False)
    answer_media, session = remote_answer(offer)
    answer_media.codecs[96] = attrs.evolve(
        answer_media.codecs[96], rtcp_fb=("transport-cc", "nack")
    )
    answer_media.extmaps.append(Extmap(12, "urn:example:not-offered"))
    answer_media.rtcp_rsize = True
    negotiated = NegotiatedMedia.from_answer(answer_media, offer, session)
    assert codec_of(negotiated, 96).rtcp_feedback == ("transport-cc",)
    assert 12 not in negotiated.extmap
    assert not negotiated.rtcp_rsize


def test_from_answer_rejected() -> None:
    offer = offer_codecs("audio")
    answer_media, session = remote_answer(offer)
    answer_media.port = 0
    assert NegotiatedMedia.from_answer(answer_media, offer, session).rejected


def test_from_answer_without_rtpmap_uses_the_offer() -> None:
    offer = offer_codecs("audio")
    answer_media, session = section("audio", "96 0")
    negotiated = NegotiatedMedia.from_answer(answer_media, offer, session)
    assert [c.rtpmap for c in negotiated.codecs] == ["opus/48000/2", "PCMU/8000/1"]


@pytest.mark.parametrize(
    ("formats", "lines", "message"),
    [
        # Our video offer: 96 VP8, 98 VP9/0, 100 VP9/2, 102 H264 42001f mode 1, … each + RTX.
        ("120", ["a=rtpmap:120 VP8/90000"], "payload type 120 was not in our offer"),
        ("96", ["a=rtpmap:96 VP9/90000"], "maps payload type 96 to VP9/90000"),
        ("96", ["a=rtpmap:96 vp8/45000"], "maps payload type 96"),
        (
            "102",
            ["a=rtpmap:102 H264/90000", "a=fmtp:102 packetization-mode=0;profile-level-id=42001f"],
            "fmtp for payload type 102",
        ),
        (
            "102",
            ["a=rtpmap:102 H264/90000", "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f"],
            "fmtp for payload type 102",
        ),
        ("98", ["a=rtpmap:98 VP9/90000", "a=fmtp:98 profile-id=2"], "fmtp for payload type 98"),
        ("96 97", ["a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=99"], "apt=99"),
        ("99", ["a=rtpmap:99 rtx/90000", "a=fmtp:99 apt=98"], "names none of the codecs"),
        ("96", ["a=rtpmap:96 VP8/90000", f"a=extmap:1 {MID}", f"a=extmap:1 {RID}"], "extmap id 1"),
    ],
)
def test_from_answer_errors(formats: str, lines: list[str], message: str) -> None:
    offer = offer_codecs("video")
    answer_media, session = section("video", formats, *lines)
    with pytest.raises(InvalidAccessError, match=message):
        NegotiatedMedia.from_answer(answer_media, offer, session)


def test_fmtp_helpers() -> None:
    assert parse_fmtp(" Minptime=10 ; useinbandfec=1;") == {"minptime": "10", "useinbandfec": "1"}
    assert parse_fmtp(None) == {}
    assert format_fmtp({"0-15": ""}) == "0-15"
    assert parse_fmtp(format_fmtp({"apt": "96", "rtx-time": "3000"})) == {
        "apt": "96",
        "rtx-time": "3000",
    }


# -- fuzzing -----------------------------------------------------------------------------------

fmtp_text = st.one_of(
    st.text(
        alphabet="0123456789abcdefABCDEF=;-_ profile-level-idpacketizationmodeaptxyz", max_size=80
    ),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "profile-level-id",
                    "packetization-mode",
                    "level-asymmetry-allowed",
                    "profile-id",
                    "profile",
                    "apt",
                    "stereo",
                    "x",
                ]
            ),
            st.text(alphabet="0123456789abcdefxyz-", max_size=8),
        ),
        max_size=5,
    ).map(lambda pairs: ";".join(f"{k}={v}" for k, v in pairs)),
)
codec_names = st.sampled_from(
    ["H264", "VP9", "AV1", "VP8", "opus", "rtx", "telephone-event", "red", "h264"]
)


@FUZZ
@given(
    st.lists(
        st.tuples(codec_names, st.sampled_from([8000, 48000, 90000]), fmtp_text),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_answers_never_raise(codecs: list[tuple[str, int, str]]) -> None:
    lines: list[str] = []
    formats = []
    for index, (name, rate, fmtp) in enumerate(codecs):
        pt = 96 + index
        formats.append(str(pt))
        lines.append(f"a=rtpmap:{pt} {name}/{rate}")
        if fmtp.strip():
            lines.append(f"a=fmtp:{pt} {fmtp}")
    try:
        media, session = section("video", " ".join(formats), *lines)
    except Exception:  # the SDP parser's own business (tested in test_sdp_fuzz.py)
        return
    answer = answer_codecs(media, session=session)
    if not answer.rejected:
        parsed, parsed_session = through_sdp(answer)
        assert (
            NegotiatedMedia.from_media(parsed, parsed_session).payload_types == answer.payload_types
        )
    try:
        NegotiatedMedia.from_answer(media, offer_codecs("video"), session)
    except InvalidAccessError:
        pass


@FUZZ
@given(st.one_of(st.text(max_size=12), st.binary(min_size=3, max_size=3).map(bytes.hex)))
def test_fuzz_profile_level_id(text: str) -> None:
    try:
        parsed = parse_profile_level_id_untrusted(text)
    except H264ParameterError:
        assert not same_h264_configuration({"profile-level-id": text}, {"profile-level-id": text})
        return
    assert isinstance(parsed, ProfileLevelId)
    assert parse_profile_level_id_untrusted(str(parsed)) == parsed
    for ours in ("42e01f", "42001f", "4d001f", "42f00b"):
        mine = parse_profile_level_id_untrusted(ours)
        for asymmetric in (True, False):
            answer = answer_profile_level_id(parsed, mine, level_asymmetry_allowed=asymmetric)
            again = parse_profile_level_id_untrusted(str(answer))
            assert again.profile == parsed.profile
            assert again.level_rank <= max(parsed.level_rank, mine.level_rank)


def test_docs_example_runs_and_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    text = (pathlib.Path(__file__).parent.parent / "docs" / "codecs.md").read_text()
    example = re.findall(r"```python\n(.*?)```", text, re.S)[-1]
    printed = text.split("It prints:\n\n```\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/codecs.md", "exec"), {})
    assert capsys.readouterr().out == printed
