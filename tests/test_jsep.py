"""The pure JSEP rules (trio_rtc.jsep) over SDP text: state machine, offers, answers (audio and
video accepted with the negotiated codecs, legacy sections rejected), remote checks and DTLS
roles."""

from __future__ import annotations

import itertools
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc import jsep
from trio_rtc.exceptions import InvalidAccessError, InvalidStateError, SdpSyntaxError
from trio_rtc.sdp import Direction, Fingerprint, Setup, parse_sdp_untrusted

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
STATES = [
    "stable",
    "have-local-offer",
    "have-remote-offer",
    "have-local-pranswer",
    "have-remote-pranswer",
    "closed",
]
FINGERPRINT = Fingerprint("sha-256", ":".join(["AB"] * 32))
LOCAL = jsep.LocalTransport("ufrg", "p" * 24, (FINGERPRINT,))

# webrtc-pc §4.3.1, written out independently of the table in jsep.py.
ALLOWED = {
    ("stable", "offer", False): "have-local-offer",
    ("have-local-offer", "offer", False): "have-local-offer",
    ("have-remote-offer", "answer", False): "stable",
    ("have-local-pranswer", "answer", False): "stable",
    ("have-remote-offer", "pranswer", False): "have-local-pranswer",
    ("have-local-pranswer", "pranswer", False): "have-local-pranswer",
    ("stable", "offer", True): "have-remote-offer",
    ("have-remote-offer", "offer", True): "have-remote-offer",
    ("have-local-offer", "answer", True): "stable",
    ("have-remote-pranswer", "answer", True): "stable",
    ("have-local-offer", "pranswer", True): "have-remote-pranswer",
    ("have-remote-pranswer", "pranswer", True): "have-remote-pranswer",
    ("have-local-offer", "rollback", False): "stable",
    ("have-remote-offer", "rollback", False): "stable",
    ("have-local-offer", "rollback", True): "stable",
    ("have-remote-offer", "rollback", True): "stable",
}


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


@pytest.mark.parametrize(
    ("state", "sdp_type", "remote"),
    list(itertools.product(STATES, ["offer", "answer", "pranswer", "rollback"], [False, True])),
)
def test_signaling_state_machine(state: str, sdp_type: str, remote: bool) -> None:
    expected = ALLOWED.get((state, sdp_type, remote))
    if expected is None:
        with pytest.raises(InvalidStateError, match=repr(state)):
            jsep.next_signaling_state(state, sdp_type, remote=remote)
    else:
        assert jsep.next_signaling_state(state, sdp_type, remote=remote) == expected


def test_offer_with_data_section() -> None:
    slots = jsep.plan_offer([], want_data=True)
    offer = jsep.build_offer(slots, LOCAL, session_id=42, version=2)
    text = offer.serialize()
    parsed = parse_sdp_untrusted(text)
    assert parsed.serialize() == text
    assert [g.mids for g in parsed.bundle_groups()] == [("0",)]
    media = parsed.media[0]
    assert jsep.is_data_section(media)
    assert (media.port, media.protocol, media.mid) == (9, "UDP/DTLS/SCTP", "0")
    assert media.setup == Setup.ACTPASS
    assert media.ice_options == ["trickle"]
    assert (media.ice_ufrag, media.ice_pwd) == ("ufrg", "p" * 24)
    assert media.fingerprints == [FINGERPRINT]
    assert (media.sctp_port, media.max_message_size) == (5000, 262144)
    assert parsed.origin.session_id == 42 and parsed.origin.session_version == 2


def test_offer_without_channels_has_no_m_sections() -> None:
    offer = jsep.build_offer(jsep.plan_offer([], want_data=False), LOCAL, session_id=1, version=1)
    assert offer.media == [] and offer.groups == []


def test_reoffer_keeps_m_lines_and_their_order() -> None:
    offer = parse_sdp_untrusted(sample("chromium_offer_audio_video_data.sdp"))
    answer = jsep.build_answer(
        offer, jsep.plan_answer(offer), LOCAL, setup=Setup.ACTIVE, session_id=1, version=1
    )
    slots = jsep.slots_of(answer, offer)
    reoffer = jsep.build_offer(
        jsep.plan_offer(slots, want_data=True), LOCAL, session_id=1, version=2
    )
    assert [m.mid for m in reoffer.media] == [m.mid for m in offer.media]
    # Audio and video were accepted (recvonly, as a new transceiver answers a sendrecv offer):
    # they stay live, bundled, with the direction and codecs of the answer.
    assert [m.port for m in reoffer.media] == [9, 9, 9]
    assert [g.mids for g in reoffer.bundle_groups()] == [("0", "1", "2")]
    assert [m.direction for m in reoffer.media[:2]] == [Direction.RECVONLY] * 2
    assert [m.formats for m in reoffer.media[:2]] == [m.formats for m in answer.media[:2]]


def test_reoffer_keeps_rejected_m_lines_at_port_0() -> None:
    offer = parse_sdp_untrusted(sample("chromium_offer_audio_video_data.sdp"))
    # The peer rejected audio and video in its answer: the slots stay, rejected.
    answer = parse_sdp_untrusted(sample("chromium_answer_rejected_media.sdp"))
    slots = jsep.slots_of(offer, answer)
    reoffer = jsep.build_offer(
        jsep.plan_offer(slots, want_data=True), LOCAL, session_id=1, version=2
    )
    assert [m.mid for m in reoffer.media] == [m.mid for m in offer.media]
    assert [m.port for m in reoffer.media] == [0, 0, 9]
    assert [g.mids for g in reoffer.bundle_groups()] == [("2",)]
    # Reparse: a port-0 RTP section still maps its payload type.
    reparsed = parse_sdp_untrusted(reoffer.serialize())
    assert reparsed.media[0].codec(reparsed.media[0].payload_types[0]) is not None


@pytest.mark.parametrize(
    "name", ["chromium_offer_audio_video_data.sdp", "firefox_offer_audio_video_data.sdp"]
)
def test_answer_accepts_media_recvonly_and_data(name: str) -> None:
    offer = parse_sdp_untrusted(sample(name))
    slots = jsep.plan_answer(offer)
    answer = jsep.build_answer(offer, slots, LOCAL, setup=Setup.ACTIVE, session_id=7, version=1)
    parsed = parse_sdp_untrusted(answer.serialize())
    assert [m.mid for m in parsed.media] == [m.mid for m in offer.media]
    assert [m.kind for m in parsed.media] == [m.kind for m in offer.media]
    assert parsed.bundle_groups()[0].mids == tuple(m.mid for m in offer.media)
    for offered, answered in zip(offer.media, parsed.media, strict=True):
        assert answered.port == 9 and answered.setup == Setup.ACTIVE
        if not jsep.is_data_section(offered):
            # Both samples offer sendrecv; a transceiver created by the offer is recvonly.
            assert answered.direction == Direction.RECVONLY and answered.rtcp_mux
            assert set(answered.formats) <= set(offered.formats) and len(answered.formats) > 1
            for pt in answered.payload_types:
                codec = answered.codec(pt)
                assert codec is not None and codec.name is not None
    # What the offerer sees when it applies our answer: one transport for all three sections.
    remote = jsep.read_remote(parsed, "answer", local_offer=offer)
    assert remote is not None and remote.setup == Setup.ACTIVE
    assert remote.sections == (0, 1, 2) and remote.mid == offer.media[0].mid
    assert remote.data is not None and remote.data.mline_index == 2


def test_answer_to_legacy_sctpmap_offer_rejects_it() -> None:
    offer = parse_sdp_untrusted(sample("legacy_sctpmap_offer.sdp"))
    slots = jsep.plan_answer(offer)
    assert all(slot.rejected for slot in slots)
    answer = jsep.build_answer(offer, slots, LOCAL, setup=Setup.ACTIVE, session_id=1, version=1)
    assert all(m.port == 0 for m in parse_sdp_untrusted(answer.serialize()).media)


def test_read_remote_offers_of_other_stacks() -> None:
    aiortc = jsep.read_remote(
        parse_sdp_untrusted(sample("aiortc_offer_data.sdp")), "offer", local_offer=None
    )
    assert aiortc is not None
    assert aiortc.ice_ufrag == "dXbQ" and len(aiortc.fingerprints) == 3
    assert aiortc.end_of_candidates and len(aiortc.candidates) == 2
    assert not aiortc.trickle
    chromium = jsep.read_remote(
        parse_sdp_untrusted(sample("chromium_offer_data_mdns.sdp")), "offer", local_offer=None
    )
    assert chromium is not None and chromium.trickle and chromium.setup == Setup.ACTPASS
    assert chromium.max_message_size == 262144 and chromium.sctp_port == 5000
    bundle_only = jsep.read_remote(
        parse_sdp_untrusted(sample("jsep_offer_bundle_only.sdp")), "offer", local_offer=None
    )
    # The bundle-only data section takes its transport from the BUNDLE tag (RFC 9143 §7.2).
    assert bundle_only is not None and bundle_only.mid == "a1"
    assert bundle_only.data is not None and bundle_only.data.mid == "d1"
    assert bundle_only.ice_ufrag == "ETEn" and bundle_only.end_of_candidates
    assert len(bundle_only.candidates) == 2 and bundle_only.max_message_size == 65536


def _offer_text() -> str:
    return jsep.build_offer(
        jsep.plan_offer([], want_data=True), LOCAL, session_id=1, version=1
    ).serialize()


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("a=fingerprint:", "a=fingerprint"),
        ("a=ice-ufrag:", "ice-ufrag"),
        ("a=ice-pwd:", "ice-ufrag"),
    ],
)
def test_remote_without_transport_attributes_is_invalid(remove: str, message: str) -> None:
    text = "".join(
        line for line in _offer_text().splitlines(keepends=True) if not line.startswith(remove)
    )
    with pytest.raises(InvalidAccessError, match=message):
        jsep.read_remote(parse_sdp_untrusted(text), "offer", local_offer=None)


def test_answer_must_mirror_offer_m_lines() -> None:
    offer = parse_sdp_untrusted(_offer_text())
    other = parse_sdp_untrusted(
        _offer_text()
        .replace("a=mid:0", "a=mid:x")
        .replace("BUNDLE 0", "BUNDLE x")
        .replace("actpass", "active")
    )
    with pytest.raises(InvalidAccessError, match="m-lines"):
        jsep.read_remote(other, "answer", local_offer=offer)
    actpass_answer = parse_sdp_untrusted(_offer_text())
    with pytest.raises(InvalidAccessError, match="active or passive"):
        jsep.read_remote(actpass_answer, "answer", local_offer=offer)


def test_rtp_section_without_rtcp_mux_is_refused() -> None:
    text = sample("chromium_offer_audio_video_data.sdp").replace("a=rtcp-mux\n", "")
    with pytest.raises(InvalidAccessError, match="rtcp-mux"):
        jsep.read_remote(parse_sdp_untrusted(text), "offer", local_offer=None)


def test_dtls_roles() -> None:
    assert jsep.answer_setup(Setup.ACTPASS, current_is_client=None) == Setup.ACTIVE
    assert jsep.answer_setup(None, current_is_client=None) == Setup.ACTIVE
    assert jsep.answer_setup(Setup.ACTIVE, current_is_client=None) == Setup.PASSIVE
    assert jsep.answer_setup(Setup.PASSIVE, current_is_client=None) == Setup.ACTIVE
    # Renegotiation keeps the roles of the running association (RFC 8842 §5.3).
    assert jsep.answer_setup(Setup.ACTPASS, current_is_client=False) == Setup.PASSIVE
    assert jsep.dtls_is_client(local_setup=Setup.ACTIVE, remote_setup=Setup.ACTPASS)
    assert not jsep.dtls_is_client(local_setup=Setup.PASSIVE, remote_setup=Setup.ACTPASS)
    assert jsep.dtls_is_client(local_setup=Setup.ACTPASS, remote_setup=Setup.PASSIVE)
    assert not jsep.dtls_is_client(local_setup=Setup.ACTPASS, remote_setup=Setup.ACTIVE)


def test_with_candidates_adds_lines_and_end_of_candidates() -> None:
    offer = parse_sdp_untrusted(_offer_text())
    line = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
    shown = jsep.with_candidates(offer, "0", [line, line], end_of_candidates=True)
    text = shown.serialize()
    assert text.count("a=candidate:1 1 udp") == 1 and "a=end-of-candidates" in text
    assert offer.media[0].candidates == []  # the original is untouched


_SAMPLE_TEXTS = [p.read_text() for p in sorted(SAMPLES.glob("*.sdp"))]


@settings(max_examples=300, deadline=None)
@given(
    sample=st.sampled_from(_SAMPLE_TEXTS),
    cuts=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 40)), max_size=4),
    insert=st.text(max_size=30),
)
def test_any_remote_offer_gives_an_answer_or_a_clean_error(
    sample: str, cuts: list[tuple[int, int]], insert: str
) -> None:
    """A peer's offer, mangled: parsing fails cleanly, the JSEP checks refuse it with
    InvalidAccessError, or an answer is built that parses again with the offer's m-lines."""
    text = sample
    for position, length in cuts:
        position %= len(text) + 1
        text = text[:position] + insert + text[position + length :]
    try:
        offer = parse_sdp_untrusted(text)
    except SdpSyntaxError:
        return
    try:
        jsep.read_remote(offer, "offer", local_offer=None)
    except InvalidAccessError:
        return
    answer = jsep.build_answer(
        offer, jsep.plan_answer(offer), LOCAL, setup=Setup.ACTIVE, session_id=1, version=1
    )
    reparsed = parse_sdp_untrusted(answer.serialize())
    assert [m.mid for m in reparsed.media] == [m.mid for m in offer.media]
    assert jsep.read_remote(reparsed, "answer", local_offer=offer) is not None or not any(
        jsep.is_data_section(m) and not m.is_rejected for m in offer.media
    )
