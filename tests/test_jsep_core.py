"""The JSEP core (trio_rtc.jsep.JsepSession) driven with SDP strings alone: no trio, no sockets.

Remote offers and answers are the Chromium, Firefox and aiortc samples of ``sdp_samples/``; the
decisions the core returns are what the peer connection would do to its transports."""

from __future__ import annotations

import ast
import itertools
import pathlib
import subprocess
import sys

import pytest

from trio_rtc import jsep
from trio_rtc.exceptions import (
    InvalidAccessError,
    InvalidModificationError,
    InvalidStateError,
    OperationError,
)
from trio_rtc.jsep import (
    AddRemoteCandidate,
    Gather,
    JsepSession,
    MediaChanged,
    RestartIce,
    SignalingChange,
    StartDtls,
    StartIce,
    StartSctp,
)
from trio_rtc.sdp import Direction, Fingerprint, SessionDescription, Setup, parse_sdp_untrusted

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
FINGERPRINT_A = Fingerprint("sha-256", ":".join(["AB"] * 32))
FINGERPRINT_B = Fingerprint("sha-256", ":".join(["CD"] * 32))
LOCAL_A = jsep.LocalTransport("ufragA", "a" * 24, (FINGERPRINT_A,))
LOCAL_B = jsep.LocalTransport("ufragB", "b" * 24, (FINGERPRINT_B,))
CANDIDATE = "candidate:1 1 udp 2130706431 127.0.0.1 9000 typ host"

# Remote offers of other stacks: (sample, live sections of our answer, data accepted).
OFFERS = [
    ("chromium_offer_audio_video_data.sdp", [True, True, True], True),
    ("firefox_offer_audio_video_data.sdp", [True, True, True], True),
    ("chromium_offer_audio_video.sdp", [True, True], False),
    ("aiortc_offer_data.sdp", [True], True),
    ("chromium_offer_data_mdns.sdp", [True], True),
    ("chromium_offer_simulcast.sdp", [True], False),
    ("firefox_offer_simulcast.sdp", [True], False),
    ("jsep_offer_bundle_only.sdp", [True, True, True], True),
    ("legacy_sctpmap_offer.sdp", [False], False),
]


def sample(name: str) -> SessionDescription:
    return parse_sdp_untrusted((SAMPLES / name).read_text())


def counter_credentials() -> object:
    numbers = itertools.count(1)
    return lambda: (f"new{next(numbers)}", f"{next(numbers):024d}")


def session(**kwargs: object) -> JsepSession:
    return JsepSession(session_id=1234, credentials=counter_credentials(), **kwargs)  # type: ignore[arg-type]


def of_type(decisions: list[jsep.Decision], kind: type) -> list[jsep.Decision]:
    return [d for d in decisions if isinstance(d, kind)]


def answer_to(name: str) -> tuple[JsepSession, SessionDescription, list[jsep.Decision]]:
    core = session()
    offer = sample(name)
    decisions = core.set_remote_description("offer", offer)
    # A remote offer with audio/video also announces its transceivers (MediaChanged).
    assert [d for d in decisions if not isinstance(d, MediaChanged)] == [
        SignalingChange("have-remote-offer")
    ]
    assert decisions[-1] == SignalingChange("have-remote-offer")
    text = core.create_answer(LOCAL_A)
    applied = core.set_local_description("answer", text)
    assert core.signaling_state == "stable"
    return core, parse_sdp_untrusted(text), applied


# --- remote offers of other stacks ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "live", "data"), OFFERS, ids=[o[0] for o in OFFERS])
def test_answer_to_sample_offer(name: str, live: list[bool], data: bool) -> None:
    offer = sample(name)
    core, answer, decisions = answer_to(name)
    assert [m.mid for m in answer.media] == [m.mid for m in offer.media]
    assert [m.kind for m in answer.media] == [m.kind for m in offer.media]
    assert [not m.is_rejected for m in answer.media] == live
    live_mids = tuple(m.mid for m in answer.media if not m.is_rejected)
    if any(live):
        # One BUNDLE group with every live section, each with its mid and the transport.
        assert [g.mids for g in answer.bundle_groups()] == [live_mids]
        for media in answer.media:
            if media.is_rejected:
                continue
            assert media.port == 9 and media.setup == Setup.ACTIVE
            assert (media.ice_ufrag, media.fingerprints) == ("ufragA", [FINGERPRINT_A])
            if media.is_rtp:
                # Transceivers created by the offer are recvonly (webrtc-pc §4.4.1.5): a
                # sendrecv or sendonly offer (simulcast) is answered recvonly, with the
                # negotiated codecs.
                offered = offer.media_by_mid(media.mid or "")
                assert offered is not None
                assert offer.direction_for(offered) in (Direction.SENDRECV, Direction.SENDONLY)
                assert media.direction == Direction.RECVONLY and media.rtcp_mux
                assert set(media.formats) <= set(offered.formats)
        [ice] = of_type(decisions, StartIce)
        assert isinstance(ice, StartIce) and ice.new_generation and ice.role == "controlled"
        tag = offer.bundle_tag_media(offer.media[0])
        assert ice.ufrag == tag.ice_ufrag and ice.mid == tag.mid
        assert of_type(decisions, StartDtls) == [StartDtls(ice_fingerprints(offer), True)]
        assert bool(of_type(decisions, StartSctp)) == data
        [gather] = of_type(decisions, Gather)
        assert gather == Gather("ufragA", live_mids[0], 0)
    else:
        assert answer.bundle_groups() == [] and all(m.port == 0 for m in answer.media)
        assert decisions == [SignalingChange("stable")]
    # The answer reads back as the offerer would read it.
    remote = jsep.read_remote(answer, "answer", local_offer=offer)
    assert (remote is not None) == any(live)
    assert decisions[-1] == SignalingChange("stable")
    assert core.current_local is not None and core.current_remote is not None


def ice_fingerprints(description: SessionDescription) -> tuple[Fingerprint, ...]:
    return tuple(description.fingerprints_for(description.bundle_tag_media(description.media[0])))


def test_media_only_offer_is_answered_recvonly_and_starts_dtls() -> None:
    offer = sample("chromium_offer_audio_video.sdp")
    assert not any(jsep.is_data_section(m) for m in offer.media)
    core, answer, decisions = answer_to("chromium_offer_audio_video.sdp")
    text = answer.serialize()
    assert "a=group:BUNDLE 0 1\r\n" in text
    audio, video = answer.media
    assert (audio.kind, audio.port, audio.protocol) == ("audio", 9, "UDP/TLS/RTP/SAVPF")
    assert audio.formats[0] == "111" and "a=rtpmap:111 opus/48000/2\r\n" in text
    assert "a=fmtp:111 minptime=10;useinbandfec=1\r\n" in text
    assert video.formats[0] == "96" and "a=rtpmap:96 VP8/90000\r\n" in text
    for media in (audio, video):
        assert media.direction == Direction.RECVONLY and media.rtcp_mux
        assert media.mid is not None and media.setup == Setup.ACTIVE
        assert media.ice_pwd == "a" * 24 and media.fingerprints == [FINGERPRINT_A]
    assert [type(d) for d in decisions] == [
        StartIce,
        StartDtls,
        MediaChanged,
        Gather,
        SignalingChange,
    ]
    ice = decisions[0]
    assert isinstance(ice, StartIce)
    assert (ice.ufrag, ice.pwd, ice.mid, ice.mline_index) == (
        "Vq7e",
        "9pQzR4wW+uTmN2cY8kLhB0sd",
        "0",
        0,
    )
    dtls = decisions[1]
    assert isinstance(dtls, StartDtls) and dtls.is_client  # we answered a=setup:active
    assert not core.data_negotiated
    # The slots stay live for the next offer, in order, with their mids and codecs.
    reoffer = parse_sdp_untrusted(core.create_offer(LOCAL_A))
    assert [(m.mid, m.port) for m in reoffer.media] == [("0", 9), ("1", 9)]
    # Our re-offer lists all our codecs; the negotiated ones keep their payload types.
    for answered, offered in zip((audio, video), reoffer.media, strict=True):
        for pt in answered.payload_types:
            assert offered.codec(pt) == answered.codec(pt)
    assert all(m.setup == Setup.ACTPASS for m in reoffer.media)


def test_sample_answers_to_our_offer() -> None:
    for name, max_message_size in [
        ("chromium_answer_data_candidates.sdp", 262144),
        ("firefox_answer_data_candidates.sdp", 1073741823),
    ]:
        core = session()
        core.want_data()
        offer = parse_sdp_untrusted(core.create_offer(LOCAL_A))
        assert [m.mid for m in offer.media] == ["0"]
        applied = core.set_local_description("offer", offer.serialize())
        assert applied == [Gather("ufragA", "0", 0), SignalingChange("have-local-offer")]
        answer = sample(name)
        decisions = core.set_remote_description("answer", answer)
        ice, dtls, sctp, stable = decisions
        assert isinstance(ice, StartIce) and ice.role == "controlling" and ice.candidates
        assert ice.ufrag == answer.media[0].ice_ufrag
        # They answered a=setup:active: we are the DTLS server.
        assert dtls == StartDtls(ice_fingerprints(answer), False)
        assert sctp == StartSctp(5000, max_message_size)
        assert stable == SignalingChange("stable") and core.data_negotiated


def test_aiortc_answer_with_audio_and_data_is_one_transport() -> None:
    answer = sample("aiortc_answer_audio_data.sdp")
    remote = jsep.read_remote(answer, "answer", local_offer=None)
    assert remote is not None and remote.mid == "0" and remote.sections == (0, 1)
    assert remote.setup == Setup.ACTIVE and remote.data is not None and remote.data.mid == "1"


# --- two cores negotiating ---------------------------------------------------------------------


def negotiate(offerer: JsepSession, answerer: JsepSession) -> tuple[str, str]:
    offer = offerer.create_offer(LOCAL_A)
    offerer.set_local_description("offer", offer)
    answerer.set_remote_description("offer", parse_sdp_untrusted(offer))
    answer = answerer.create_answer(LOCAL_B)
    answerer.set_local_description("answer", answer)
    offerer.set_remote_description("answer", parse_sdp_untrusted(answer))
    return offer, answer


def test_renegotiation_keeps_m_line_order_and_mids() -> None:
    a, b = session(), session()
    # a learns audio+video from a remote (Chromium) offer, then adds data and re-offers; b
    # answers in Chromium's place, with its transport parameters.
    chromium = sample("chromium_offer_audio_video.sdp")
    local_b = jsep.LocalTransport("Vq7e", "9pQzR4wW+uTmN2cY8kLhB0sd", ice_fingerprints(chromium))
    a.set_remote_description("offer", chromium)
    a.set_local_description("answer", a.create_answer(LOCAL_A))
    a.want_data()
    assert a.update_negotiation_needed()
    reoffer = parse_sdp_untrusted(a.create_offer(LOCAL_A))
    assert [(m.kind, m.mid) for m in reoffer.media] == [
        ("audio", "0"),
        ("video", "1"),
        ("application", "2"),
    ]
    assert [g.mids for g in reoffer.bundle_groups()] == [("0", "1", "2")]
    a.set_local_description("offer", reoffer.serialize())
    b.set_remote_description("offer", reoffer)
    answer = parse_sdp_untrusted(b.create_answer(local_b))
    assert [m.mid for m in answer.media] == ["0", "1", "2"]
    assert all(m.port == 9 for m in answer.media)
    b.set_local_description("answer", answer.serialize())
    decisions = a.set_remote_description("answer", answer)
    assert StartSctp(5000, 262144) in decisions and a.data_negotiated
    [ice] = of_type(decisions, StartIce)
    assert isinstance(ice, StartIce) and not ice.new_generation  # the same ICE generation
    # A third offer: same m-lines, same mids, same order.
    third = parse_sdp_untrusted(a.create_offer(LOCAL_A))
    assert [m.mid for m in third.media] == ["0", "1", "2"]
    assert third.origin.session_version > reoffer.origin.session_version
    assert third.origin.session_id == 1234


def test_data_offer_between_two_cores() -> None:
    a, b = session(), session()
    assert not a.is_negotiation_needed()
    assert a.want_data() and a.update_negotiation_needed()
    assert not a.update_negotiation_needed()  # already flagged: fire once
    _offer, answer = negotiate(a, b)
    assert a.signaling_state == b.signaling_state == "stable"
    assert a.data_negotiated and b.data_negotiated
    assert not a.update_negotiation_needed() and not a.negotiation_needed
    assert not a.want_data()  # more channels: no new negotiation
    assert parse_sdp_untrusted(answer).media[0].setup == Setup.ACTIVE


# --- signaling states and errors --------------------------------------------------------------


def test_out_of_state_calls_raise_with_the_state_named() -> None:
    core = session()
    with pytest.raises(InvalidStateError, match=r"createAnswer.*'stable'"):
        core.create_answer(LOCAL_A)
    with pytest.raises(InvalidStateError, match="remote answer in signalingState 'stable'"):
        core.set_remote_description("answer", sample("chromium_answer_data_candidates.sdp"))
    with pytest.raises(InvalidStateError, match="rollback"):
        core.rollback()
    core.want_data()
    offer = core.create_offer(LOCAL_A)
    with pytest.raises(InvalidModificationError, match=r"createOffer.*munging"):
        core.set_local_description("offer", offer.replace("262144", "1024"))
    core.set_local_description("offer", offer)
    with pytest.raises(InvalidStateError, match="local answer"):
        core.set_local_description("answer", offer)
    core.close()
    assert core.closed
    with pytest.raises(InvalidStateError, match="'closed'"):
        core.set_local_description("offer", offer)


def test_pranswer_then_answer() -> None:
    a, b = session(), session()
    a.want_data()
    offer = a.create_offer(LOCAL_A)
    a.set_local_description("offer", offer)
    b.set_remote_description("offer", parse_sdp_untrusted(offer))
    pranswer = b.create_answer(LOCAL_B)
    decisions = b.set_local_description("pranswer", pranswer)
    assert b.signaling_state == "have-local-pranswer" and b.pending_local is not None
    assert of_type(decisions, StartIce) and of_type(decisions, StartDtls)
    decisions = a.set_remote_description("pranswer", parse_sdp_untrusted(pranswer))
    assert a.signaling_state == "have-remote-pranswer" and a.current_remote is None
    assert of_type(decisions, StartIce)
    assert b.implicit_type() == "answer" and a.implicit_type() == "offer"
    answer = b.create_answer(LOCAL_B)
    b.set_local_description("answer", answer)
    decisions = a.set_remote_description("answer", parse_sdp_untrusted(answer))
    [ice] = of_type(decisions, StartIce)
    assert isinstance(ice, StartIce) and not ice.new_generation  # same generation as pranswer
    assert a.signaling_state == b.signaling_state == "stable"
    assert a.pending_local is None and a.pending_remote is None


def test_explicit_and_implicit_rollback() -> None:
    a, b = session(), session()
    a.want_data()
    b.want_data()
    offer_a = a.create_offer(LOCAL_A)
    a.set_local_description("offer", offer_a)
    assert a.rollback() == [SignalingChange("stable")]
    assert a.local_description is None
    a.set_local_description("offer", a.create_offer(LOCAL_A))
    b_offer = b.create_offer(LOCAL_B)
    b.set_local_description("offer", b_offer)
    # Glare, perfect negotiation: the polite side rolls back implicitly on the remote offer.
    decisions = a.set_remote_description("offer", parse_sdp_untrusted(b_offer))
    assert decisions == [SignalingChange("stable"), SignalingChange("have-remote-offer")]
    assert a.pending_local is None and a.pending_remote is not None


def test_invalid_remote_descriptions() -> None:
    a = session()
    a.want_data()
    offer = a.create_offer(LOCAL_A)
    a.set_local_description("offer", offer)
    wrong_mids = offer.replace("a=mid:0", "a=mid:x").replace("BUNDLE 0", "BUNDLE x")
    wrong_mids = wrong_mids.replace("actpass", "active")
    with pytest.raises(InvalidAccessError, match="m-lines in order"):
        a.set_remote_description("answer", parse_sdp_untrusted(wrong_mids))
    with pytest.raises(InvalidAccessError, match="active or passive"):
        a.set_remote_description("answer", parse_sdp_untrusted(offer))
    no_mux = (SAMPLES / "chromium_offer_audio_video.sdp").read_text().replace("a=rtcp-mux\n", "")
    with pytest.raises(InvalidAccessError, match="m-line 0 \\(audio\\) lacks a=rtcp-mux"):
        session().set_remote_description("offer", parse_sdp_untrusted(no_mux))
    text = (SAMPLES / "chromium_offer_audio_video.sdp").read_text()
    no_ufrag = "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("a=ice-")
    )
    with pytest.raises(InvalidAccessError, match=r"m-line 0 \(audio, mid '0'\).*ice-ufrag"):
        session().set_remote_description("offer", parse_sdp_untrusted(no_ufrag))
    assert a.signaling_state == "have-local-offer"


def test_changed_fingerprint_is_refused_on_a_running_transport() -> None:
    a, b = session(), session()
    a.want_data()
    negotiate(a, b)
    offer = b.create_offer(LOCAL_B)
    changed = offer.replace(FINGERPRINT_B.value, FINGERPRINT_A.value)
    with pytest.raises(InvalidAccessError, match="fingerprint changed"):
        a.set_remote_description("offer", parse_sdp_untrusted(changed))


# --- ICE restarts and candidates -----------------------------------------------------------------


def test_restart_ice_needs_negotiation_and_new_credentials() -> None:
    a, b = session(), session()
    assert not a.restart_ice()  # nothing to restart before a local description
    a.want_data()
    negotiate(a, b)
    assert not a.is_negotiation_needed()
    assert a.restart_ice() and a.ice_restart_requested
    assert a.update_negotiation_needed()
    first = a.create_offer(LOCAL_A)
    offer = a.create_offer(LOCAL_A)
    # The restart credentials stay the same until an offer with them is applied.
    assert first.split("a=ice-ufrag:")[1][:5] == offer.split("a=ice-ufrag:")[1][:5] == "new1\r"
    decisions = a.set_local_description("offer", offer)
    assert decisions[0] == RestartIce("new1", "000000000000000000000002")
    assert Gather("new1", "0", 0) in decisions
    assert not a.ice_restart_requested
    # The peer sees new remote credentials: its answer gets new ones too (RFC 8445 §9).
    b.set_remote_description("offer", parse_sdp_untrusted(offer))
    answer = b.create_answer(LOCAL_B)
    assert "a=ice-ufrag:new1\r\n" in answer  # b's first generated pair
    decisions = b.set_local_description("answer", answer)
    assert decisions[0] == RestartIce("new1", "000000000000000000000002")
    [ice] = of_type(decisions, StartIce)
    assert isinstance(ice, StartIce) and ice.new_generation and ice.ufrag == "new1"
    decisions = a.set_remote_description("answer", parse_sdp_untrusted(answer))
    [ice] = of_type(decisions, StartIce)
    assert isinstance(ice, StartIce) and ice.new_generation


def test_ice_restart_option_without_restart_ice() -> None:
    a = session()
    a.want_data()
    first = parse_sdp_untrusted(a.create_offer(LOCAL_A))
    restarted = parse_sdp_untrusted(a.create_offer(LOCAL_A, ice_restart=True))
    assert first.media[0].ice_ufrag == "ufragA" and restarted.media[0].ice_ufrag == "new1"


def test_remote_candidates_for_any_bundled_mid() -> None:
    core = session()
    core.set_remote_description("offer", sample("chromium_offer_audio_video_data.sdp"))
    with pytest.raises(OperationError, match="mid 'nope'"):
        core.locate_remote_candidate("nope", None, None)
    with pytest.raises(OperationError, match="out of range"):
        core.locate_remote_candidate(None, 9, None)
    with pytest.raises(OperationError, match="usernameFragment 'zz'"):
        core.locate_remote_candidate("1", None, "zz")
    # Before the answer the ICE generation has not started: the candidate waits.
    assert core.add_remote_candidate(CANDIDATE, core.locate_remote_candidate("1", None, None)) == []
    decisions = core.set_local_description("answer", core.create_answer(LOCAL_A))
    [ice] = of_type(decisions, StartIce)
    assert isinstance(ice, StartIce) and CANDIDATE.removeprefix("candidate:") in ice.candidates
    # Now a candidate for the video section goes straight to the transport, as the tag's.
    other = CANDIDATE.replace("9000", "9001")
    decisions = core.add_remote_candidate(other, core.locate_remote_candidate("1", None, None))
    assert decisions == [AddRemoteCandidate(other.removeprefix("candidate:"), "0", 0, "Kx9q")]
    assert core.add_remote_candidate(None, None) == [AddRemoteCandidate(None, "0", 0, "Kx9q")]
    remote = core.remote_description
    assert remote is not None and "9001 typ host" in remote.model.media[1].candidates[-1]


def test_candidate_for_a_rejected_section_is_ignored() -> None:
    core = session()
    core.set_remote_description("offer", sample("legacy_sctpmap_offer.sdp"))
    core.set_local_description("answer", core.create_answer(LOCAL_A))
    assert (
        core.add_remote_candidate(CANDIDATE, core.locate_remote_candidate("data", None, None)) == []
    )


def test_local_candidates_in_every_bundled_section_of_local_description() -> None:
    core, _, _ = answer_to("chromium_offer_audio_video.sdp")
    target = core.candidate_target
    assert target is not None and (target.mid, target.mline_index) == ("0", 0)
    core.add_local_candidate("ufragA", CANDIDATE)
    core.add_local_candidate("other", CANDIDATE.replace("9000", "1"))  # another generation
    assert core.current_local is not None
    text = core.local_sdp(core.current_local)
    assert text.count("a=" + CANDIDATE + "\r\n") == 2 and "127.0.0.1 1 typ" not in text
    assert "a=end-of-candidates" not in text
    core.local_candidates_complete("ufragA")
    assert core.local_sdp(core.current_local).count("a=end-of-candidates") == 2


def test_can_trickle() -> None:
    core = session()
    assert core.can_trickle is None
    core.set_remote_description("offer", sample("aiortc_offer_data.sdp"))
    assert core.can_trickle is False
    core.rollback()
    core.set_remote_description("offer", sample("chromium_offer_data_mdns.sdp"))
    assert core.can_trickle is True


# --- purity ---------------------------------------------------------------------------------------

ALLOWED_IMPORTS = {"__future__", "attrs", "collections.abc", "copy", "secrets", "typing"}


def test_the_core_does_no_io() -> None:
    """No trio, no sockets, no clock: only the SDP model, the exceptions and plain Python."""
    package = pathlib.Path(jsep.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.module is None or node.module.split(".")[0] in (
                        "sdp",
                        "exceptions",
                        *[p.stem for p in package.glob("*.py")],
                    ), f"{path.name} imports .{node.module}"
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name in ALLOWED_IMPORTS, f"{path.name} imports {name}"
    code = "import sys, trio_rtc.jsep; print(sorted({'trio', 'socket', 'trio_rtc.pc'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
