"""The SDP model's helpers, building descriptions from scratch, and editing parsed ones."""

from __future__ import annotations

import pathlib

import attrs
import pytest

from trio_rtc.sdp import (
    Attribute,
    Codec,
    Connection,
    Direction,
    Fingerprint,
    Group,
    IceCredentials,
    MediaDescription,
    MsidSemantic,
    Origin,
    SessionDescription,
    Setup,
    parse_sdp,
    serialize_sdp,
)

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"


def load(name: str) -> str:
    with open(SAMPLES / name, encoding="utf-8", newline="") as f:
        return f.read()


def lines(text: str) -> list[str]:
    assert text.endswith("\r\n")
    return text.split("\r\n")[:-1]


def data_section(mid: str, **changes: object) -> MediaDescription:
    media = MediaDescription(
        kind="application",
        port=9,
        protocol="UDP/DTLS/SCTP",
        formats=["webrtc-datachannel"],
        connection=Connection("0.0.0.0"),
        mid=mid,
        sctp_port=5000,
        max_message_size=262144,
    )
    return attrs.evolve(media, **changes)  # type: ignore[arg-type]


def test_building_an_offer_from_scratch() -> None:
    offer = SessionDescription(
        origin=Origin(session_id=42, session_version=1),
        groups=[Group("BUNDLE", ("0",))],
        msid_semantic=MsidSemantic("WMS", ("*",)),
        media=[
            data_section(
                "0",
                ice_ufrag="abcd",
                ice_pwd="0123456789abcdef012345",
                ice_options=["trickle"],
                fingerprints=[Fingerprint("sha-256", "AA:BB")],
                setup=Setup.ACTPASS,
            )
        ],
    )
    assert lines(offer.serialize()) == [
        "v=0",
        "o=- 42 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdef012345",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 AA:BB",
        "a=setup:actpass",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
    ]
    assert parse_sdp(offer.serialize()) == offer


def test_codec_lines_follow_mline_order() -> None:
    media = MediaDescription(
        kind="audio",
        port=9,
        protocol="UDP/TLS/RTP/SAVPF",
        formats=["8", "111"],
        codecs={
            111: Codec(111, "opus", 48000, 2, "minptime=10", ("transport-cc",)),
            8: Codec(8, "PCMA", 8000),
            101: Codec(101, None, None, None, "0-15"),
        },
        rtcp_mux=True,
    )
    description = SessionDescription(origin=Origin(1, 1), media=[media])
    assert lines(description.serialize())[4:] == [
        "m=audio 9 UDP/TLS/RTP/SAVPF 8 111",
        "a=rtcp-mux",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10",
        "a=fmtp:101 0-15",
    ]


def test_serialising_refuses_line_breaks_and_empty_formats() -> None:
    description = SessionDescription(origin=Origin(1, 1), media=[data_section("0\r\na=evil")])
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        description.serialize()
    description = SessionDescription(origin=Origin(1, 1), session_name="x\ny")
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        serialize_sdp(description)
    description = SessionDescription(origin=Origin(1, 1), media=[data_section("0", formats=[])])
    with pytest.raises(ValueError, match="no formats"):
        description.serialize()


def test_lookups() -> None:
    d = parse_sdp(load("chromium_offer_audio_video_data.sdp"))
    video = d.media_by_mid("1")
    assert video is not None and video.kind == "video"
    assert d.media_by_mid("9") is None
    assert d.mline_index("2") == 2 and d.mline_index("x") is None
    assert d.bundle_group_of("1") == Group("BUNDLE", ("0", "1", "2"))
    assert d.bundle_group_of("x") is None
    assert d.bundle_tag_media(video) is d.media[0]
    assert d.direction_for(video) is Direction.SENDRECV


def test_effective_transport_falls_back_to_bundle_tag_then_session() -> None:
    tagged = data_section(
        "a",
        ice_ufrag="tagU",
        ice_pwd="tagP",
        fingerprints=[Fingerprint("sha-256", "01")],
        setup=Setup.ACTIVE,
        ice_options=["trickle"],
    )
    bundled = data_section("b", bundle_only=True, port=0)
    alone = data_section("c")
    d = SessionDescription(
        origin=Origin(1, 1),
        groups=[Group("LS", ("a", "c")), Group("bundle", ("a", "b"))],
        ice_ufrag="sessU",
        ice_pwd="sessP",
        fingerprints=[Fingerprint("sha-1", "02")],
        setup=Setup.PASSIVE,
        direction=Direction.RECVONLY,
        media=[tagged, bundled, alone],
    )
    assert [g.semantics for g in d.bundle_groups()] == ["bundle"]
    assert not bundled.is_rejected and alone.port == 9
    assert d.ice_credentials(bundled) == IceCredentials("tagU", "tagP")
    assert d.fingerprints_for(bundled) == [Fingerprint("sha-256", "01")]
    assert d.setup_for(bundled) is Setup.ACTIVE
    assert d.ice_options_for(bundled) == ["trickle"]
    assert d.ice_credentials(alone) == IceCredentials("sessU", "sessP")
    assert d.fingerprints_for(alone) == [Fingerprint("sha-1", "02")]
    assert d.setup_for(alone) is Setup.PASSIVE
    assert d.ice_options_for(alone) == []
    assert d.direction_for(alone) is Direction.RECVONLY
    # A ufrag without a pwd is not a credential.
    d.ice_pwd = None
    assert d.ice_credentials(alone) is None
    # A group naming a missing mid first: the section uses its own transport.
    d.groups = [Group("BUNDLE", ("zz", "b"))]
    assert d.bundle_tag_media(bundled) is bundled
    assert SessionDescription(origin=Origin(1, 1)).direction_for(alone) is Direction.SENDRECV


def test_codec_helpers() -> None:
    codec = Codec(111, "opus", 48000, 2, " minptime=10; useinbandfec=1;Stereo;=x;")
    assert codec.fmtp_parameters() == {"minptime": "10", "useinbandfec": "1", "stereo": ""}
    assert Codec(0).fmtp_parameters() == {}
    media = MediaDescription(kind="audio", port=9, protocol="RTP/AVP", formats=["0", "x", "8"])
    assert media.payload_types == [0, 8]
    assert media.codec(0) is None and media.codecs_named("PCMU") == []
    assert data_section("0").payload_types == []


# -- editing parsed descriptions: unchanged lines keep their text and place -----------------


def test_new_candidate_goes_after_the_last_one() -> None:
    text = load("firefox_answer_data_candidates.sdp")
    d = parse_sdp(text)
    d.media[0].candidates.append("3 1 UDP 8265471 198.51.100.9 40000 typ relay raddr 0.0.0.0")
    out = lines(d.serialize())
    original = lines(text)
    last = original.index(next(x for x in reversed(original) if x.startswith("a=candidate:")))
    assert out[: last + 1] == original[: last + 1]
    assert out[last + 1] == "a=candidate:3 1 UDP 8265471 198.51.100.9 40000 typ relay raddr 0.0.0.0"
    assert out[last + 2 :] == original[last + 1 :]


def test_changed_value_is_rewritten_in_place() -> None:
    text = load("firefox_offer_audio_video_data.sdp")
    d = parse_sdp(text)
    audio = d.media[0]
    audio.setup = Setup.PASSIVE
    audio.codecs[109] = attrs.evolve(audio.codecs[109], fmtp="stereo=0")
    out = lines(d.serialize())
    original = lines(text)
    assert len(out) == len(original)
    changed = [(a, b) for a, b in zip(original, out, strict=True) if a != b]
    assert changed == [
        ("a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1", "a=fmtp:109 stereo=0"),
        ("a=setup:actpass", "a=setup:passive"),
    ]


def test_spelling_is_kept_until_the_value_changes() -> None:
    text = load("chromium_answer_data_candidates.sdp")
    d = parse_sdp(text)
    assert "a=msid-semantic: WMS" in lines(d.serialize())
    assert d.msid_semantic is not None
    d.msid_semantic = attrs.evolve(d.msid_semantic, identifiers=("s1",))
    assert "a=msid-semantic:WMS s1" in lines(d.serialize())
    spaced = text.replace("a=setup:active", "a=setup:ACTIVE").replace("t=0 0", "t=0  0")
    assert parse_sdp(spaced).serialize() == spaced
    assert parse_sdp(spaced).media[0].setup is Setup.ACTIVE


def test_removed_lines_vanish_and_new_sections_are_canonical() -> None:
    text = load("chromium_offer_audio_video_data.sdp")
    d = parse_sdp(text)
    video = d.media[1]
    for pt in (97, 103, 46, 99, 117):
        del video.codecs[pt]
        video.formats.remove(str(pt))
    video.ssrc_groups.clear()
    d.media.append(data_section("3"))
    d.attributes.append(Attribute("x-note", "added"))
    out = lines(d.serialize())
    assert not any(line.startswith(("a=fmtp:97 ", "a=rtpmap:117 ", "a=ssrc-group")) for line in out)
    assert "m=video 9 UDP/TLS/RTP/SAVPF 96 102 45 98 116 118" in out
    assert out[out.index("a=msid-semantic: WMS 5c14d750-033e-4f40-81b8-b9dd705655af") + 1] == (
        "a=x-note:added"
    )
    assert out[-5:] == [
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:3",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
    ]
    again = parse_sdp("\r\n".join(out) + "\r\n")
    assert again == d


def test_unknown_attributes_keep_their_order_and_values() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "a=x-b\r\na=group:BUNDLE 0\r\na=x-a:1:2\r\na=x-b:\r\n"
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        "a=sctpmap:5000 webrtc-datachannel 1024\r\na=mid:0\r\na=label: x \r\n"
    )
    d = parse_sdp(text)
    assert d.attributes == [Attribute("x-b"), Attribute("x-a", "1:2"), Attribute("x-b", "")]
    assert d.media[0].attributes == [
        Attribute("sctpmap", "5000 webrtc-datachannel 1024"),
        Attribute("label", " x "),
    ]
    assert d.serialize() == text
    canonical = d.serialize(keep_layout=False)
    assert (
        canonical.index("a=x-b\r\n") < canonical.index("a=x-a:1:2") < canonical.index("a=x-b:\r\n")
    )
