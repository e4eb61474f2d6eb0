"""Round trips and typed contents of offers and answers as Chromium, Firefox and aiortc write them.

The texts in ``tests/sdp_samples/`` were written by hand for these tests, in the shape each
implementation produces (attribute order, spacing, identifiers), with made-up values.
"""

from __future__ import annotations

import pathlib

import pytest

from trio_rtc.sdp import (
    Codec,
    Connection,
    Direction,
    Extmap,
    Fingerprint,
    Group,
    IceCredentials,
    Msid,
    MsidSemantic,
    Rid,
    RidDirection,
    RtcpAddress,
    SessionDescription,
    Setup,
    Simulcast,
    SimulcastFormat,
    Ssrc,
    SsrcGroup,
    parse_sdp,
)

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.sdp"))


def load(name: str) -> str:
    # newline="" keeps the CRLF line endings of the files.
    with open(SAMPLES / name, encoding="utf-8", newline="") as f:
        return f.read()


def test_there_are_samples() -> None:
    assert len(SAMPLE_NAMES) >= 10


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_round_trip_is_exact(name: str) -> None:
    text = load(name)
    assert text.endswith("\r\n")
    description = parse_sdp(text)
    assert description.serialize() == text
    assert SessionDescription.parse(text) == description


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_lf_input_gives_crlf_output(name: str) -> None:
    text = load(name)
    description = parse_sdp(text.replace("\r\n", "\n"))
    assert description == parse_sdp(text)
    assert description.serialize() == text


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_canonical_form_parses_to_the_same_model(name: str) -> None:
    description = parse_sdp(load(name))
    canonical = description.serialize(keep_layout=False)
    again = parse_sdp(canonical)
    assert again == description
    assert again.serialize() == canonical
    assert sorted(canonical.split("\r\n")) == sorted(
        line.replace("msid-semantic: ", "msid-semantic:") for line in load(name).split("\r\n")
    )


@pytest.mark.parametrize("name", [n for n in SAMPLE_NAMES if n.startswith("chromium")])
def test_canonical_order_is_chromiums(name: str) -> None:
    # Chromium's only spelling that differs from ours is the space in "msid-semantic: WMS".
    text = load(name).replace("a=msid-semantic: WMS", "a=msid-semantic:WMS")
    assert parse_sdp(text).serialize(keep_layout=False) == text


def test_chromium_offer_contents() -> None:
    d = parse_sdp(load("chromium_offer_audio_video_data.sdp"))
    assert d.origin.session_id == 4215775240449105457
    assert d.origin.session_version == 2
    assert d.origin.address == "127.0.0.1"
    assert d.session_name == "-"
    assert d.groups == [Group("BUNDLE", ("0", "1", "2"))]
    assert d.extmap_allow_mixed
    assert d.msid_semantic == MsidSemantic("WMS", ("5c14d750-033e-4f40-81b8-b9dd705655af",))
    assert [m.kind for m in d.media] == ["audio", "video", "application"]
    audio, video, data = d.media
    assert audio.port == 9 and audio.protocol == "UDP/TLS/RTP/SAVPF"
    assert audio.connection == Connection("0.0.0.0")
    assert audio.rtcp == RtcpAddress(9, Connection("0.0.0.0"))
    assert audio.mid == "0" and audio.direction is Direction.SENDRECV
    assert audio.ice_ufrag == "Kx9q" and audio.ice_options == ["trickle"]
    assert audio.setup is Setup.ACTPASS
    assert audio.fingerprints[0].algorithm == "sha-256"
    assert audio.rtcp_mux and audio.rtcp_rsize and not audio.rtcp_mux_only
    assert audio.payload_types == [111, 63, 9, 0, 8, 13, 110, 126]
    assert audio.codec(111) == Codec(
        111, "opus", 48000, 2, "minptime=10;useinbandfec=1", ("transport-cc",)
    )
    assert audio.codec(111) is not None
    assert audio.codec(111).fmtp_parameters() == {"minptime": "10", "useinbandfec": "1"}  # type: ignore[union-attr]
    assert audio.codec(9) == Codec(9, "G722", 8000)
    assert [c.payload_type for c in audio.codecs_named("TELEPHONE-EVENT")] == [110, 126]
    assert audio.extmaps[0] == Extmap(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
    assert audio.msids == [
        Msid("5c14d750-033e-4f40-81b8-b9dd705655af", "6601737b-27bc-4f01-a7e0-efa574c35032")
    ]
    assert audio.ssrcs[0] == Ssrc(1745382917, "cname", "Yq3f5ZbW9tLkP0aM")
    assert video.ssrc_groups == [SsrcGroup("FID", (2208351617, 3904516790))]
    assert video.codec(96) is not None
    assert video.codec(96).rtcp_fb == (  # type: ignore[union-attr]
        "goog-remb",
        "transport-cc",
        "ccm fir",
        "nack",
        "nack pli",
    )
    assert video.codec(97) == Codec(97, "rtx", 90000, None, "apt=96")
    assert [c.payload_type for c in video.codecs_named("rtx")] == [97, 103, 46, 99, 117]
    assert not data.is_rtp and data.payload_types == []
    assert data.formats == ["webrtc-datachannel"]
    assert data.sctp_port == 5000 and data.max_message_size == 262144
    assert all(not m.attributes for m in d.media) and not d.attributes


def test_firefox_offer_contents() -> None:
    d = parse_sdp(load("firefox_offer_audio_video_data.sdp"))
    assert d.origin.username == "mozilla...THIS_IS_SDPARTA-120.0"
    assert d.direction is Direction.SENDRECV
    assert d.ice_options == ["trickle"]
    assert len(d.fingerprints) == 1
    assert d.msid_semantic == MsidSemantic("WMS", ("*",))
    audio, video, data = d.media
    # Fingerprint and ice-options only at session level: the helpers fall back to them.
    assert audio.fingerprints == []
    assert d.fingerprints_for(audio) == d.fingerprints
    assert d.ice_options_for(data) == ["trickle"]
    assert d.ice_credentials(video) == IceCredentials(
        "a1b2c3d4", "4f7c2b1e9d8a6f5e3c2b1a0f9e8d7c6b"
    )
    assert audio.extmaps[1] == Extmap(
        2, "urn:ietf:params:rtp-hdrext:csrc-audio-level", Direction.RECVONLY
    )
    # fmtp came before rtpmap: the codec record has both.
    assert audio.codec(109) == Codec(
        109, "opus", 48000, 2, "maxplaybackrate=48000;stereo=1;useinbandfec=1"
    )
    assert audio.codec(9) == Codec(9, "G722", 8000, 1)
    assert audio.codec(101) == Codec(101, "telephone-event", 8000, None, "0-15")
    assert list(video.codecs) != video.payload_types  # first-seen order differs
    assert sorted(video.codecs) == sorted(video.payload_types)
    assert video.codec(120) is not None and len(video.codec(120).rtcp_fb) == 5  # type: ignore[union-attr]
    assert data.direction is Direction.SENDRECV
    assert d.setup_for(data) is Setup.ACTPASS
    assert data.max_message_size == 1073741823


def test_simulcast_samples() -> None:
    firefox = parse_sdp(load("firefox_offer_simulcast.sdp")).media[0]
    assert firefox.rids == [Rid(r, RidDirection.SEND) for r in "abc"]
    assert firefox.simulcast == Simulcast(send=tuple((SimulcastFormat(r),) for r in "abc"))
    assert len(firefox.ssrc_groups) == 3
    chromium = parse_sdp(load("chromium_offer_simulcast.sdp")).media[0]
    assert [r.id for r in chromium.rids] == ["q", "h", "f"]
    assert chromium.simulcast is not None and len(chromium.simulcast.send) == 3
    assert chromium.direction is Direction.SENDONLY


def test_candidates_and_end_of_candidates() -> None:
    aiortc = parse_sdp(load("aiortc_offer_data.sdp"))
    media = aiortc.media[0]
    assert media.candidates[0].startswith("4d5c1a3b2e8f9a0b1c2d3e4f5a6b7c8d 1 udp ")
    assert len(media.candidates) == 2 and media.end_of_candidates
    assert [f.algorithm for f in media.fingerprints] == ["sha-256", "sha-384", "sha-512"]
    firefox = parse_sdp(load("firefox_answer_data_candidates.sdp")).media[0]
    assert firefox.port == 61232 and firefox.setup is Setup.ACTIVE
    assert len(firefox.candidates) == 3 and firefox.end_of_candidates
    mdns = parse_sdp(load("chromium_offer_data_mdns.sdp")).media[0]
    assert all(".local " in c for c in mdns.candidates)
    assert not mdns.end_of_candidates


def test_rejected_and_legacy_sections() -> None:
    d = parse_sdp(load("chromium_answer_rejected_media.sdp"))
    assert [m.is_rejected for m in d.media] == [True, True, False]
    assert d.bundle_groups() == [Group("BUNDLE", ("2",))]
    assert d.media[0].direction is Direction.INACTIVE
    legacy = parse_sdp(load("legacy_sctpmap_offer.sdp")).media[0]
    assert legacy.protocol == "DTLS/SCTP" and legacy.formats == ["5000"]
    assert legacy.attribute_values("sctpmap") == ["5000 webrtc-datachannel 1024"]
    assert legacy.bandwidths[0].type == "AS" and legacy.bandwidths[0].value == 30
    assert legacy.mid == "data"


def test_aiortc_answer_fingerprints_per_media() -> None:
    d = parse_sdp(load("aiortc_answer_audio_data.sdp"))
    audio, data = d.media
    assert d.fingerprints == []
    assert d.fingerprints_for(data) == [Fingerprint("sha-256", audio.fingerprints[0].value)]
    assert d.setup_for(audio) is Setup.ACTIVE
    assert audio.rtcp == RtcpAddress(9, Connection("0.0.0.0"))
    assert audio.codec(0) == Codec(0, "PCMU", 8000)


def test_jsep_style_offer_with_bundle_only() -> None:
    d = parse_sdp(load("jsep_offer_bundle_only.sdp"))
    audio, video, data = d.media
    assert [g.semantics for g in d.groups] == ["BUNDLE", "LS"]
    assert d.ice_options == ["trickle", "ice2"]
    assert video.bundle_only and data.bundle_only
    assert not video.is_rejected and video.port == 0
    assert video.rtcp_mux_only and not video.rtcp_mux
    assert video.ice_ufrag is None
    assert d.bundle_tag_media(video) is audio
    assert d.ice_credentials(data) == IceCredentials("ETEn", "OtSK0WpNtpUjkY4+86js7ZQl")
    assert d.setup_for(data) is Setup.ACTPASS
    assert audio.rtcp == RtcpAddress(10101, Connection("203.0.113.100"))
    assert audio.attribute_values("maxptime") == ["120"]
    assert audio.attribute_values("dtls-id") == ["1"]
    assert audio.msids == [Msid("47017fee-b6c1-4162-929c-a25110252400")]
    assert video.codec(100) is not None
    assert video.codec(100).rtcp_fb == ("ccm fir", "nack", "nack pli")  # type: ignore[union-attr]
    # Outside RTP, rtpmap/fmtp/rtcp-fb are not codecs: the draft-era fmtp line is kept as is.
    assert data.codecs == {}
    assert data.attribute_values("fmtp") == ["webrtc-datachannel max-message-size=65536"]
