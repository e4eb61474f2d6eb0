"""RED (RFC 2198) for Opus in offers and answers (``trio_rtc.jsep.codecs``), and when the
media driver sends it (``trio_rtc.media.driver.sending_red``): SDP text alone."""

from __future__ import annotations

import pathlib

import pytest

from trio_rtc.jsep.codecs import (
    NegotiatedCodec,
    NegotiatedMedia,
    answer_codecs,
    get_capabilities,
    offer_codecs,
    red_payload_types,
)
from trio_rtc.media.driver import sending_codec, sending_red
from trio_rtc.sdp import MediaDescription, Origin, SessionDescription, parse_sdp_untrusted

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
OPUS = ("a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1")


def offered(formats: str, *lines: str) -> tuple[MediaDescription, SessionDescription]:
    text = "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            f"m=audio 9 UDP/TLS/RTP/SAVPF {formats}",
            "c=IN IP4 0.0.0.0",
            "a=mid:0",
            *lines,
        ]
    )
    description = parse_sdp_untrusted(text + "\r\n")
    return description.media[0], description


def written(negotiated: NegotiatedMedia) -> MediaDescription:
    """``negotiated`` as an m-section, read back from its SDP text."""
    media = MediaDescription(kind="audio", port=9, protocol="UDP/TLS/RTP/SAVPF", formats=[])
    media.mid = "0"
    negotiated.write_to(media)
    text = SessionDescription(origin=Origin(1, 1), media=[media]).serialize()
    return parse_sdp_untrusted(text).media[0]


def capability(mime: str) -> object:
    return next(c for c in get_capabilities("audio").codecs if c.mimeType == mime)


def names(negotiated: NegotiatedMedia) -> list[tuple[int, str]]:
    return [(c.payload_type, c.name) for c in negotiated.codecs]


# -- the fmtp ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmtp", "expected"),
    [
        ("111/111", (111, 111)),
        ("111/111/111", (111, 111, 111)),
        ("0/5", (0, 5)),
        ("111", (111,)),
        (None, None),
        ("", None),
        ("111/", None),
        ("111/abc", None),
        ("111/128", None),
        ("111/1111", None),
        ("111;0", None),
        ("/".join(["111"] * 9), None),
        ("١١١/١١١", None),  # Arabic-Indic digits are digits to str.isdigit, not to RFC 2198
    ],
)
def test_red_payload_types(fmtp: str | None, expected: tuple[int, ...] | None) -> None:
    media, _ = offered("63", "a=rtpmap:63 red/48000/2", *([f"a=fmtp:63 {fmtp}"] if fmtp else []))
    [red] = NegotiatedMedia.from_media(media).codecs
    assert red_payload_types(red) == expected


def test_only_red_has_red_payload_types() -> None:
    assert red_payload_types(NegotiatedCodec(111, "opus", 48000, 2, {"111/111": ""})) is None


# -- capabilities and offers -------------------------------------------------------------------


def test_red_is_an_audio_capability_after_opus() -> None:
    mimes = [c.mimeType for c in get_capabilities("audio").codecs]
    assert mimes[:2] == ["audio/opus", "audio/red"]
    red = capability("audio/red")
    assert (red.clockRate, red.channels, red.sdpFmtpLine) == (48000, 2, None)  # type: ignore[attr-defined]
    assert "video/red" not in [c.mimeType for c in get_capabilities("video").codecs]


def test_offer_names_our_opus_payload_type() -> None:
    offer = offer_codecs("audio")
    assert names(offer)[:2] == [(96, "opus"), (63, "red")]
    media = written(offer)
    assert media.codec(63) is not None
    assert (media.codec(63).name, media.codec(63).fmtp) == ("red", "96/96")  # type: ignore[union-attr]
    # Opus first: the default offer sends plain Opus (and receives RED if the peer sends it).
    assert sending_codec(offer).name == "opus"
    assert sending_red(offer, sending_codec(offer)) is None


def test_red_takes_another_payload_type_when_63_is_taken_in_the_bundle() -> None:
    video = offer_codecs("video")
    taken = NegotiatedMedia("video", (NegotiatedCodec(63, "VP8", 90000),))
    audio = offer_codecs("audio", bundle=[video, taken])
    [red] = [c for c in audio.codecs if c.name == "red"]
    assert red.payload_type != 63
    assert red.payload_type not in video.payload_types
    opus = audio.codecs[0].payload_type
    assert red_payload_types(red) == (opus, opus)


def test_offer_with_red_first_sends_red() -> None:
    preferences = [capability("audio/red"), capability("audio/opus")]
    offer = offer_codecs("audio", preferences=preferences)  # type: ignore[arg-type]
    assert names(offer) == [(63, "red"), (96, "opus")]
    assert red_payload_types(offer.codecs[0]) == (96, 96)
    codec = sending_codec(offer)
    assert codec.name == "opus"  # RED is never the codec packetized
    assert sending_red(offer, codec) == 63


def test_red_without_opus_is_not_offered() -> None:
    preferences = [capability("audio/red"), capability("audio/PCMU")]
    offer = offer_codecs("audio", preferences=preferences)  # type: ignore[arg-type]
    assert names(offer) == [(0, "PCMU")]


def test_renegotiation_keeps_reds_payload_type_and_follows_opus() -> None:
    first = offer_codecs(
        "audio", bundle=[NegotiatedMedia("video", (NegotiatedCodec(96, "VP8", 90000),))]
    )
    opus = first.codecs[0].payload_type
    again = offer_codecs("audio", previous=first)
    assert again.codecs[:2] == first.codecs[:2]
    assert red_payload_types(again.codecs[1]) == (opus, opus)


# -- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["chromium_offer_audio_video.sdp", "chromium_offer_every_codec.sdp"]
)
def test_answer_keeps_chromiums_red(name: str) -> None:
    offer = parse_sdp_untrusted((SAMPLES / name).read_text())
    answer = answer_codecs(offer.media[0], session=offer)
    red = answer.codec(63)
    assert red is not None and red.rtpmap == "red/48000/2"
    assert red_payload_types(red) == (111, 111)
    media = written(answer)
    assert media.codec(63).fmtp == "111/111"  # type: ignore[union-attr]
    # Chromium lists Opus first: we answer in its order and send plain Opus.
    assert sending_red(answer, sending_codec(answer)) is None


def test_answer_to_red_first_sends_red() -> None:
    media, session = offered("63 111", "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", *OPUS)
    answer = answer_codecs(media, session=session)
    assert names(answer) == [(63, "red"), (111, "opus")]
    assert sending_red(answer, sending_codec(answer)) == 63


@pytest.mark.parametrize(
    "red_lines",
    [
        ("a=rtpmap:63 red/48000/2",),  # no fmtp: nobody can tell what its blocks carry
        ("a=rtpmap:63 red/48000/2", "a=fmtp:63 111/112"),  # 112 not offered
        ("a=rtpmap:63 red/48000/2", "a=fmtp:63 111/9"),  # G722: offered, not kept
        ("a=rtpmap:63 red/48000/2", "a=fmtp:63 111/63"),  # RED in RED
        ("a=rtpmap:63 red/48000/2", "a=fmtp:63 x/y"),
        ("a=rtpmap:63 red/8000", "a=fmtp:63 0/0"),  # not our RED (48000/2)
    ],
)
def test_answer_drops_red_that_names_what_is_not_answered(red_lines: tuple[str, ...]) -> None:
    media, session = offered("111 63 9 0", *OPUS, *red_lines, "a=rtpmap:9 G722/8000")
    answer = answer_codecs(media, session=session)
    assert names(answer) == [(111, "opus"), (0, "PCMU")]


def test_answer_drops_red_when_opus_is_not_kept() -> None:
    media, session = offered(
        "63 111 0", "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:111 opus/48000"
    )  # opus/48000 (one channel) is not RFC 7587 Opus: not ours
    answer = answer_codecs(media, session=session)
    assert names(answer) == [(0, "PCMU")]


def test_answer_with_preferences_without_red_drops_it() -> None:
    media, session = offered("111 63", *OPUS, "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111")
    answer = answer_codecs(media, preferences=[capability("audio/opus")], session=session)  # type: ignore[list-item]
    assert names(answer) == [(111, "opus")]
    preferred = answer_codecs(
        media,
        preferences=[capability("audio/red"), capability("audio/opus")],  # type: ignore[list-item]
        session=session,
    )
    assert names(preferred) == [(63, "red"), (111, "opus")]
    assert sending_red(preferred, sending_codec(preferred)) == 63


# -- remote answers ----------------------------------------------------------------------------


def test_from_answer_keeps_red_naming_answered_opus() -> None:
    offer = offer_codecs("audio")
    answer = NegotiatedMedia.from_answer(written(offer), offer)
    assert names(answer) == names(offer)
    assert red_payload_types(answer.codecs[1]) == (96, 96)


@pytest.mark.parametrize(
    ("formats", "red_fmtp"),
    [
        ("0 63", "96/96"),  # Opus not answered
        ("96 63 0", "96/0"),  # fine: both answered (kept)
        ("96 63 0", "96/8"),  # PCMA not answered
        ("96 63", None),  # no fmtp
        ("96 63", "96/x"),
    ],
)
def test_from_answer_checks_reds_fmtp(formats: str, red_fmtp: str | None) -> None:
    offer = offer_codecs("audio")
    answer_lines = [
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        *([f"a=fmtp:63 {red_fmtp}"] if red_fmtp else []),
        "a=rtpmap:0 PCMU/8000",
    ]
    media, session = offered(formats, *answer_lines)
    answer = NegotiatedMedia.from_answer(media, offer, session)
    keep = red_fmtp == "96/0"
    assert (63 in answer.payload_types) == keep
    assert [pt for pt in answer.payload_types if pt != 63] == [
        int(f) for f in formats.split() if f != "63"
    ]


def test_remote_answer_with_red_first_sends_red() -> None:
    offer = offer_codecs("audio")
    media, session = offered(
        "63 96", "a=rtpmap:63 red/48000/2", "a=fmtp:63 96/96", "a=rtpmap:96 opus/48000/2"
    )
    answer = NegotiatedMedia.from_answer(media, offer, session)
    assert sending_red(answer, sending_codec(answer)) == 63


def test_red_for_another_codec_is_not_sent_with_opus() -> None:
    media, session = offered(
        "63 111 0", "a=rtpmap:63 red/48000/2", "a=fmtp:63 0/0", *OPUS, "a=rtpmap:0 PCMU/8000"
    )
    answer = answer_codecs(media, session=session)
    assert 63 in answer.payload_types  # kept (and received): it names a kept codec
    assert sending_codec(answer).name == "opus"
    assert sending_red(answer, sending_codec(answer)) is None
