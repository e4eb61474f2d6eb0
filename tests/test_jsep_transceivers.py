"""Transceivers in the JSEP core: codec/extension negotiation of audio and video m-sections,
directions (RFC 8829 §5.3.1), msid/ssrc lines, currentDirection, negotiation-needed and the
MediaChanged decision, with SDP strings alone."""

from __future__ import annotations

import itertools
import pathlib

import attrs
import pytest

from trio_rtc import jsep
from trio_rtc.exceptions import InvalidAccessError
from trio_rtc.jsep import (
    Gather,
    JsepSession,
    JsepTransceiver,
    MediaChanged,
    SignalingChange,
    StartIce,
    TransceiverUpdate,
)
from trio_rtc.jsep.codecs import URI_MID, URI_TRANSPORT_CC, get_capabilities
from trio_rtc.sdp import (
    Direction,
    Fingerprint,
    MediaDescription,
    SessionDescription,
    SsrcGroup,
    parse_sdp_untrusted,
)

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"
LOCAL_A = jsep.LocalTransport("ufragA", "a" * 24, (Fingerprint("sha-256", ":".join(["AB"] * 32)),))
LOCAL_B = jsep.LocalTransport("ufragB", "b" * 24, (Fingerprint("sha-256", ":".join(["CD"] * 32)),))


def sample(name: str) -> SessionDescription:
    return parse_sdp_untrusted((SAMPLES / name).read_text())


def session() -> JsepSession:
    numbers = itertools.count(1)
    return JsepSession(
        session_id=99, credentials=lambda: (f"new{next(numbers)}", f"{next(numbers):024d}")
    )


def updates(decisions: list[jsep.Decision]) -> tuple[TransceiverUpdate, ...]:
    [changed] = [d for d in decisions if isinstance(d, MediaChanged)]
    assert isinstance(changed, MediaChanged)
    return changed.transceivers


def answer_remote(core: JsepSession, offer: SessionDescription) -> SessionDescription:
    core.set_remote_description("offer", offer)
    text = core.create_answer(LOCAL_A)
    core.set_local_description("answer", text)
    return parse_sdp_untrusted(text)


def negotiate(
    offerer: JsepSession,
    answerer: JsepSession,
    transports: tuple[jsep.LocalTransport, jsep.LocalTransport] = (LOCAL_A, LOCAL_B),
) -> tuple[SessionDescription, SessionDescription, list[jsep.Decision], list[jsep.Decision]]:
    offer = offerer.create_offer(transports[0])
    offerer.set_local_description("offer", offer)
    answerer.set_remote_description("offer", parse_sdp_untrusted(offer))
    answer = answerer.create_answer(transports[1])
    answered = answerer.set_local_description("answer", answer)
    applied = offerer.set_remote_description("answer", parse_sdp_untrusted(answer))
    return parse_sdp_untrusted(offer), parse_sdp_untrusted(answer), answered, applied


def codec_names(media: MediaDescription) -> list[str]:
    names = []
    for pt in media.payload_types:
        codec = media.codec(pt)
        assert codec is not None and codec.name is not None
        names.append(f"{pt} {codec.name}")
    return names


# --- answering browsers -------------------------------------------------------------------------


def test_chromium_audio_video_data_offer_is_answered_with_negotiated_codecs() -> None:
    core = session()
    offer = sample("chromium_offer_audio_video_data.sdp")
    offered = core.set_remote_description("offer", offer)
    # The offer creates two recvonly transceivers and announces two remote tracks.
    audio_update, video_update = updates(offered)
    assert offered[-1] == SignalingChange("have-remote-offer")
    assert [(u.mid, u.kind, u.track_added, u.negotiated) for u in (audio_update, video_update)] == [
        ("0", "audio", True, None),
        ("1", "video", True, None),
    ]
    assert audio_update.remote_ssrcs == (1745382917,)
    assert video_update.remote_ssrcs == (2208351617,)
    assert video_update.remote_rtx_ssrcs == ((2208351617, 3904516790),)
    assert video_update.remote_stream_ids == ("5c14d750-033e-4f40-81b8-b9dd705655af",)
    assert video_update.remote_track_id == "d0a974f1-f416-4326-95a0-9616bb9c1796"
    audio_t, video_t = core.transceivers
    assert (audio_t.direction, audio_t.mid, audio_t.created_by_remote) == ("recvonly", "0", True)

    text = core.create_answer(LOCAL_A)
    decisions = core.set_local_description("answer", text)
    answer = parse_sdp_untrusted(text)
    audio, video, data = answer.media
    # Offerer's payload types and order; G722, CN, video red, ulpfec and red's RTX are dropped.
    assert codec_names(audio) == [
        "111 opus",
        "63 red",
        "0 PCMU",
        "8 PCMA",
        "110 telephone-event",
        "126 telephone-event",
    ]
    assert codec_names(video) == [
        "96 VP8",
        "97 rtx",
        "102 H264",
        "103 rtx",
        "45 AV1",
        "46 rtx",
        "98 VP9",
        "99 rtx",
    ]
    assert audio.codec(111) is not None and audio.codec(111).rtcp_fb == ("transport-cc",)  # type: ignore[union-attr]
    assert [(e.id, e.uri) for e in audio.extmaps][:4] == [
        (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        (2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        (3, URI_TRANSPORT_CC),
        (4, URI_MID),
    ]
    assert {e.id for e in video.extmaps} == {14, 2, 13, 3, 4, 10, 11}
    assert audio.rtcp_rsize and video.rtcp_rsize
    assert audio.extmap_allow_mixed or answer.extmap_allow_mixed
    # sendrecv offered, a recvonly transceiver: recvonly; nothing sent, so no msid/ssrc.
    assert [m.direction for m in (audio, video)] == [Direction.RECVONLY] * 2
    assert audio.msids == [] and audio.ssrcs == []
    assert jsep.is_data_section(data) and data.port == 9
    assert [g.mids for g in answer.bundle_groups()] == [("0", "1", "2")]
    # Applying our answer sets currentDirection and the negotiated codecs.
    assert (audio_t.current_direction, video_t.current_direction) == ("recvonly", "recvonly")
    assert video_t.negotiated is not None and video_t.negotiated.rtx == {
        97: 96,
        103: 102,
        46: 45,
        99: 98,
    }
    configured = updates(decisions)
    assert [(u.mid, u.send, u.receive, u.track_added) for u in configured] == [
        ("0", False, True, False),
        ("1", False, True, False),
    ]
    assert configured[1].mid_extension == 4 and configured[1].transport_cc_extension == 3
    assert configured[1].abs_send_time_extension == 2 and configured[1].rid_extension == 10
    assert configured[1].transceiver is video_t and configured[1].negotiated == video_t.negotiated
    assert decisions[-1] == SignalingChange("stable")


def test_firefox_offer_is_answered_with_its_payload_types_and_extmap_ids() -> None:
    offer = sample("firefox_offer_audio_video_data.sdp")
    answer = answer_remote(session(), offer)
    for offered, answered in zip(offer.media[:2], answer.media[:2], strict=True):
        assert answered.port == 9 and answered.direction == Direction.RECVONLY
        assert set(answered.payload_types) <= set(offered.payload_types)
        assert any(n.split()[1] in ("opus", "VP8") for n in codec_names(answered))
        for pt in answered.payload_types:
            mine, theirs = answered.codec(pt), offered.codec(pt)
            assert mine is not None and theirs is not None
            assert (mine.name, mine.clock_rate) == (theirs.name, theirs.clock_rate)
        offered_ids = {(e.id, e.uri) for e in offered.extmaps + offer.extmaps}
        assert {(e.id, e.uri) for e in answered.extmaps} <= offered_ids


@pytest.mark.parametrize(
    ("ours", "offered", "expected"),
    [
        ("recvonly", "sendrecv", "recvonly"),
        ("sendrecv", "sendonly", "recvonly"),
        ("sendrecv", "recvonly", "sendonly"),
        ("sendrecv", "sendrecv", "sendrecv"),
        ("sendonly", "sendonly", "inactive"),
        ("inactive", "sendrecv", "inactive"),
    ],
)
def test_answer_direction_follows_the_offer_and_the_transceiver(
    ours: str, offered: str, expected: str
) -> None:
    offer = sample("chromium_offer_audio_video.sdp")
    for media in offer.media:
        media.direction = Direction(offered)
    core = session()
    core.add_transceiver("audio", ours, ["s"], "track-a", ssrc=1111)
    answer = answer_remote(core, offer)
    assert answer.media[0].direction == Direction(expected)
    assert core.transceivers[0].mid == "0" and core.transceivers[0].current_direction == expected
    assert not core.transceivers[0].created_by_remote  # matched by kind (webrtc-pc §4.4.1.5)
    sending = expected in ("sendrecv", "sendonly")
    assert bool(answer.media[0].ssrcs) == sending
    assert core.transceivers[1].direction == "recvonly"  # video: created by the offer


def test_section_without_a_supported_codec_is_rejected_and_never_the_bundle_tag() -> None:
    offer = sample("chromium_offer_audio_video.sdp")
    audio = offer.media[0]
    g722 = audio.codec(9)
    assert g722 is not None
    audio.formats, audio.codecs = ["9"], {9: g722}
    assert [g.mids for g in offer.bundle_groups()] == [("0", "1")]
    core = session()
    core.set_remote_description("offer", offer)
    audio_t, video_t = core.transceivers
    text = core.create_answer(LOCAL_A)
    decisions = core.set_local_description("answer", text)
    answer = parse_sdp_untrusted(text)
    assert [m.port for m in answer.media] == [0, 9]
    assert answer.media[0].formats == ["9"]  # port 0 still names the offered codec
    assert [g.mids for g in answer.bundle_groups()] == [("1",)]
    assert [d for d in decisions if isinstance(d, Gather)] == [Gather("ufragA", "1", 1)]
    assert audio_t.stopped and not video_t.stopped
    assert [u.stopped for u in updates(decisions)] == [True, False]
    # Stopped with its m-line rejected: out of the set of transceivers (webrtc-pc §4.4.1.5).
    assert core.transceivers == [video_t]
    [changed] = [d for d in decisions if isinstance(d, MediaChanged)]
    assert changed.removed == (audio_t,)


def test_codec_preferences_limit_and_order_the_answer() -> None:
    caps = get_capabilities("video")
    vp9 = next(c for c in caps.codecs if c.sdpFmtpLine == "profile-id=0")
    vp8 = caps.codecs[0]
    core = session()
    video = core.add_transceiver("video", "recvonly")
    video.codec_preferences = (vp9, vp8)
    answer = answer_remote(core, sample("chromium_offer_audio_video.sdp"))
    assert codec_names(answer.media[1]) == ["98 VP9", "96 VP8"]  # no RTX: not preferred


def test_remote_offer_rollback_removes_created_transceivers() -> None:
    core = session()
    mine = core.add_transceiver("video", "sendrecv", ["s"], "t", ssrc=5)
    core.set_remote_description("offer", sample("chromium_offer_audio_video.sdp"))
    assert len(core.transceivers) == 2 and mine.mid == "1"
    assert core.rollback() == [SignalingChange("stable")]
    assert core.transceivers == [mine] and mine.mid is None and mine.mline_index is None


# --- two cores ------------------------------------------------------------------------------------


def two_with_media() -> tuple[JsepSession, JsepSession]:
    a, b = session(), session()
    a.add_transceiver("audio", "sendrecv", ["stream-a"], "audio-a", ssrc=1001)
    a.add_transceiver("video", "sendrecv", ["stream-a"], "video-a", ssrc=1002, rtx_ssrc=1003)
    a.want_data()
    b.add_transceiver("audio", "sendrecv", ["stream-b"], "audio-b", ssrc=2001)
    b.add_transceiver("video", "sendrecv", ["stream-b"], "video-b", ssrc=2002, rtx_ssrc=2003)
    return a, b


def test_our_offer_with_audio_video_and_data_is_answered_by_another_core() -> None:
    a, b = two_with_media()
    assert a.update_negotiation_needed()
    offer, answer, answered, applied = negotiate(a, b)
    assert [(m.kind, m.mid) for m in offer.media] == [
        ("audio", "0"),
        ("video", "1"),
        ("application", "2"),
    ]
    assert [g.mids for g in offer.bundle_groups()] == [("0", "1", "2")]
    audio, video, _data = offer.media
    assert audio.direction == video.direction == Direction.SENDRECV
    assert [(m.stream_id, m.track_id) for m in video.msids] == [("stream-a", "video-a")]
    assert video.ssrc_groups == [SsrcGroup("FID", (1002, 1003))]
    assert {(s.ssrc, s.attribute) for s in video.ssrcs} == {
        (1002, "cname"),
        (1002, "msid"),
        (1003, "cname"),
        (1003, "msid"),
    }
    assert next(s.value for s in audio.ssrcs if s.attribute == "cname") == a.cname
    assert audio.rtcp_rsize and video.extmap_allow_mixed
    # No payload type means two things in the BUNDLE group (RFC 8843 §9.1).
    assert not set(audio.payload_types) & set(video.payload_types)
    # b matched its own transceivers by kind and answers sendrecv with its msid/ssrc.
    assert [t.mid for t in b.transceivers] == ["0", "1"]
    assert [m.direction for m in answer.media[:2]] == [Direction.SENDRECV] * 2
    assert answer.media[1].ssrc_groups == [SsrcGroup("FID", (2002, 2003))]
    for ta, tb in zip(a.transceivers, b.transceivers, strict=True):
        assert ta.current_direction == tb.current_direction == "sendrecv"
        assert ta.negotiated is not None and ta.negotiated == tb.negotiated
        assert ta.remote_ssrcs == (tb.ssrc,) and tb.remote_ssrcs == (ta.ssrc,)
    assert a.transceivers[1].remote_rtx_ssrcs == ((2002, 2003),)
    assert a.transceivers[1].remote_track_id == "video-b"
    ua, ub = updates(applied), updates(answered)
    assert [(u.send, u.receive, u.track_added) for u in ua] == [(True, True, True)] * 2
    assert [(u.ssrc, u.rtx_ssrc) for u in ua] == [(1001, None), (1002, 1003)]
    assert [(u.send, u.receive) for u in ub] == [(True, True)] * 2
    assert not a.update_negotiation_needed() and not b.update_negotiation_needed()
    assert a.data_negotiated and b.data_negotiated


def test_renegotiation_adds_video_and_changes_a_direction() -> None:
    a, b = two_with_media()
    first, _, _, _ = negotiate(a, b)
    assert not a.update_negotiation_needed()
    # A second video transceiver: negotiation needed (no mid yet, webrtc-pc §4.7.3).
    extra = a.add_transceiver("video", "sendonly", ["stream-a"], "video-2", ssrc=1004)
    assert a.update_negotiation_needed()
    second, answer, _, applied = negotiate(a, b)
    assert [m.mid for m in second.media] == ["0", "1", "2", "3"]
    assert [m.kind for m in second.media] == ["audio", "video", "application", "video"]
    for before, after in zip(first.media, second.media[:3], strict=False):
        assert after.payload_types == before.payload_types  # PTs stable
        assert [(e.id, e.uri) for e in after.extmaps] == [(e.id, e.uri) for e in before.extmaps]
    assert not set(second.media[3].payload_types) & set(second.media[1].payload_types)
    assert [g.mids for g in second.bundle_groups()] == [("0", "1", "2", "3")]
    assert extra.mid == "3" and extra.current_direction == "sendonly"
    assert b.transceivers[-1].current_direction == "recvonly"  # created by the offer
    assert answer.media[3].direction == Direction.RECVONLY
    assert updates(applied)[-1].send and not updates(applied)[-1].receive
    assert not a.update_negotiation_needed()
    # A direction change: negotiation needed; the re-offer says so, the answer follows.
    a.transceivers[1].direction = "recvonly"
    assert a.update_negotiation_needed()
    third, answer, _, _ = negotiate(a, b)
    assert [m.mid for m in third.media] == ["0", "1", "2", "3"]
    assert third.media[1].payload_types == second.media[1].payload_types
    assert third.media[1].direction == Direction.RECVONLY and third.media[1].ssrcs == []
    assert answer.media[1].direction == Direction.SENDONLY
    assert a.transceivers[1].current_direction == "recvonly"
    assert b.transceivers[1].current_direction == "sendonly"
    assert not a.update_negotiation_needed()


def test_the_answerer_renegotiates_a_direction_change() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    b.transceivers[0].direction = "inactive"
    assert b.update_negotiation_needed()
    offer, answer, _, _ = negotiate(b, a, (LOCAL_B, LOCAL_A))
    assert offer.media[0].direction == Direction.INACTIVE
    assert answer.media[0].direction == Direction.INACTIVE
    assert a.transceivers[0].current_direction == b.transceivers[0].current_direction == "inactive"
    assert not a.update_negotiation_needed() and not b.update_negotiation_needed()


def test_stop_rejects_the_m_line_in_the_next_offer() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    stopped_a, stopped_b = a.transceivers[0], b.transceivers[0]
    assert a.stop_transceiver(stopped_a) and a.update_negotiation_needed()
    offer, answer, _, applied = negotiate(a, b)
    assert [m.port for m in offer.media] == [0, 9, 9] and answer.media[0].port == 0
    assert [g.mids for g in offer.bundle_groups()] == [("1", "2")]
    assert stopped_a.stopped and stopped_b.stopped
    assert updates(applied)[0].stopped
    assert not a.update_negotiation_needed()
    # The rejected m-line stays at port 0 until a new transceiver recycles it.
    again, _, _, _ = negotiate(a, b)
    assert [(m.kind, m.mid, m.port) for m in again.media] == [
        ("audio", "0", 0),
        ("video", "1", 9),
        ("application", "2", 9),
    ]


def test_local_offer_rollback_clears_the_mid() -> None:
    a = session()
    t = a.add_transceiver("audio", "sendrecv", ["s"], "t", ssrc=1)
    a.set_local_description("offer", a.create_offer(LOCAL_A))
    assert t.mid == "0"
    a.rollback()
    assert t.mid is None and a.update_negotiation_needed()


# --- remote answer validation ----------------------------------------------------------------


def _tampered(answer: str, old: str, new: str) -> SessionDescription:
    assert old in answer
    return parse_sdp_untrusted(answer.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("a=rtpmap:99 VP8/90000", "a=rtpmap:99 VP9/90000", "maps payload type 99"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96", "m=audio 9 UDP/TLS/RTP/SAVPF 77 96", "77 was not"),
        ("a=fmtp:100 apt=99", "a=fmtp:100 apt=101", "apt=101"),
        ("a=fmtp:101 profile-id=0", "a=fmtp:101 profile-id=2", "does not match"),
    ],
)
def test_invalid_remote_answer_is_refused_before_any_state_change(
    old: str, new: str, message: str
) -> None:
    a, b = two_with_media()
    offer = a.create_offer(LOCAL_A)
    a.set_local_description("offer", offer)
    b.set_remote_description("offer", parse_sdp_untrusted(offer))
    answer = b.create_answer(LOCAL_B)
    with pytest.raises(InvalidAccessError, match=message):
        a.set_remote_description("answer", _tampered(answer, old, new))
    assert a.signaling_state == "have-local-offer" and not a.ice_started
    assert all(t.negotiated is None and t.current_direction is None for t in a.transceivers)
    # The untampered answer still applies.
    decisions = a.set_remote_description("answer", parse_sdp_untrusted(answer))
    assert any(isinstance(d, StartIce) for d in decisions)
    assert all(t.current_direction == "sendrecv" for t in a.transceivers)


def test_remote_answer_rejecting_a_section_stops_the_transceiver() -> None:
    a, b = two_with_media()
    offer = a.create_offer(LOCAL_A)
    a.set_local_description("offer", offer)
    b.set_remote_description("offer", parse_sdp_untrusted(offer))
    text = b.create_answer(LOCAL_B)
    # The answerer refuses audio: port 0, out of the BUNDLE group (RFC 8843 §7.3.3).
    answer = _tampered(text, "m=audio 9 ", "m=audio 0 ")
    answer.groups[0] = attrs.evolve(answer.groups[0], mids=("1", "2"))
    audio = a.transceivers[0]
    applied = a.set_remote_description("answer", answer)
    assert audio.stopped and audio.current_direction is None
    assert [u.stopped for u in updates(applied)] == [True, False]
    assert audio not in a.transceivers  # removed (webrtc-pc §4.4.1.5)


def test_transceiver_record() -> None:
    t = JsepTransceiver("audio")
    assert (t.direction, t.mid, t.sending, t.receiving) == ("sendrecv", None, False, False)
    with pytest.raises(TypeError):
        session().add_transceiver("data")
    with pytest.raises(TypeError):
        session().add_transceiver("audio", "stopped")


# --- stopped transceivers, m-line recycling (RFC 8829 §5.2.2, webrtc-pc §4.4.1.5) ------------


def changed_of(decisions: list[jsep.Decision]) -> MediaChanged:
    [changed] = [d for d in decisions if isinstance(d, MediaChanged)]
    return changed


def stop_and_negotiate(
    a: JsepSession,
    b: JsepSession,
    transports: tuple[jsep.LocalTransport, jsep.LocalTransport] = (LOCAL_A, LOCAL_B),
) -> tuple[JsepTransceiver, JsepTransceiver, list[jsep.Decision], list[jsep.Decision]]:
    """``a`` stops its transceiver of m-line 0 and offers; ``b`` answers."""
    [stopped_a] = [t for t in a.transceivers if t.mline_index == 0]
    [stopped_b] = [t for t in b.transceivers if t.mline_index == 0]
    assert stopped_a.mid == stopped_b.mid is not None
    a.stop_transceiver(stopped_a)
    offer, answer, answered, applied = negotiate(a, b, transports)
    assert offer.media[0].port == answer.media[0].port == 0
    return stopped_a, stopped_b, answered, applied


def test_stopped_transceiver_leaves_the_set_once_its_rejection_is_negotiated() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    stopped_a, stopped_b = a.transceivers[0], b.transceivers[0]
    a.stop_transceiver(stopped_a)
    offer = a.create_offer(LOCAL_A)
    a.set_local_description("offer", offer)
    assert stopped_a in a.transceivers  # stopping: not negotiated yet
    b.set_remote_description("offer", parse_sdp_untrusted(offer))
    assert stopped_b in b.transceivers and not stopped_b.stopped
    answer = b.create_answer(LOCAL_B)
    answered = b.set_local_description("answer", answer)
    applied = a.set_remote_description("answer", parse_sdp_untrusted(answer))
    assert stopped_a.stopped and stopped_b.stopped
    assert stopped_a not in a.transceivers and stopped_b not in b.transceivers
    assert [t.mid for t in a.transceivers] == [t.mid for t in b.transceivers] == ["1"]
    # Each side's MediaChanged has the stopped transceiver's last update, then removes it.
    for decisions, gone in ((applied, stopped_a), (answered, stopped_b)):
        changed = changed_of(decisions)
        assert changed.removed == (gone,)
        assert [(u.mid, u.stopped) for u in changed.transceivers] == [("0", True), ("1", False)]
        assert changed.transceivers[0].transceiver is gone
    assert not a.update_negotiation_needed() and not b.update_negotiation_needed()
    # A later negotiation removes nothing more and keeps the m-line at port 0.
    a.transceivers[0].direction = "sendonly"
    again, _, _, applied = negotiate(a, b)
    assert [(m.mid, m.port) for m in again.media] == [("0", 0), ("1", 9), ("2", 9)]
    assert changed_of(applied).removed == ()


def test_new_transceiver_recycles_a_rejected_m_line_with_a_new_mid() -> None:
    a, b = two_with_media()
    first, _, _, _ = negotiate(a, b)
    stop_and_negotiate(a, b)
    # A video transceiver (another kind) takes m-line 0 back, with a new mid; a second new one
    # finds no rejected m-line left and is appended.
    video2 = a.add_transceiver("video", "sendrecv", ["s2"], "video-2", ssrc=1005, rtx_ssrc=1006)
    audio2 = a.add_transceiver("audio", "sendonly", ["s2"], "audio-2", ssrc=1007)
    assert a.update_negotiation_needed()
    offer, answer, answered, applied = negotiate(a, b)
    assert [(m.kind, m.mid, m.port) for m in offer.media] == [
        ("video", "3", 9),
        ("video", "1", 9),
        ("application", "2", 9),
        ("audio", "4", 9),
    ]
    assert [g.mids for g in offer.bundle_groups()] == [("3", "1", "2", "4")]
    # The other m-lines keep their payload types and extension ids; no payload type is shared.
    for before, after in zip(first.media[1:], offer.media[1:3], strict=True):
        assert after.payload_types == before.payload_types
        assert [(e.id, e.uri) for e in after.extmaps] == [(e.id, e.uri) for e in before.extmaps]
    recycled = offer.media[0]
    assert not set(recycled.payload_types) & set(offer.media[1].payload_types)
    assert not set(offer.media[3].payload_types) & set(recycled.payload_types)
    assert recycled.direction == Direction.SENDRECV
    assert recycled.ssrc_groups == [SsrcGroup("FID", (1005, 1006))]
    assert (video2.mid, video2.mline_index, audio2.mid, audio2.mline_index) == ("3", 0, "4", 3)
    # b (no transceiver to match) creates a recvonly one for the recycled m-line.
    assert [(m.mid, m.port, m.direction) for m in answer.media] == [
        ("3", 9, Direction.RECVONLY),
        ("1", 9, Direction.SENDRECV),
        ("2", 9, None),
        ("4", 9, Direction.RECVONLY),
    ]
    theirs = next(t for t in b.transceivers if t.mid == "3")
    assert theirs.kind == "video" and theirs.created_by_remote and theirs.mline_index == 0
    assert theirs.remote_rtx_ssrcs == ((1005, 1006),)
    assert theirs.negotiated == video2.negotiated and theirs.current_direction == "recvonly"
    assert (video2.current_direction, audio2.current_direction) == ("sendonly", "sendonly")
    assert [(u.mid, u.kind, u.send) for u in updates(applied)] == [
        ("3", "video", True),
        ("1", "video", True),
        ("4", "audio", True),
    ]
    assert (updates(answered)[0].mid, updates(answered)[0].track_added) == ("3", False)
    assert changed_of(applied).removed == changed_of(answered).removed == ()
    assert not a.update_negotiation_needed() and not b.update_negotiation_needed()
    assert [s.mid for s in a.slots] == [s.mid for s in b.slots] == ["3", "1", "2", "4"]


def test_remote_offer_recycling_our_rejected_m_line_takes_a_matching_transceiver() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    # b stopped its audio: b's offer rejected m-line 0, and a answered it.
    stopped_b, stopped_a, _, _ = stop_and_negotiate(b, a, (LOCAL_B, LOCAL_A))
    assert stopped_a not in a.transceivers and stopped_b not in b.transceivers
    # a has a new audio transceiver of its own; b's offer recycles m-line 0 for a new audio one.
    mine = a.add_transceiver("audio", "sendrecv", ["sa"], "audio-again", ssrc=1010)
    b.add_transceiver("audio", "sendrecv", ["sb"], "audio-b2", ssrc=2010)
    offer, answer, answered, _ = negotiate(b, a, (LOCAL_B, LOCAL_A))
    assert [(m.kind, m.mid, m.port) for m in offer.media] == [
        ("audio", "3", 9),
        ("video", "1", 9),
        ("application", "2", 9),
    ]
    # a matches its own audio transceiver by kind (webrtc-pc §4.4.1.5) and answers sendrecv.
    assert (mine.mid, mine.mline_index, mine.created_by_remote) == ("3", 0, False)
    assert answer.media[0].mid == "3" and answer.media[0].direction == Direction.SENDRECV
    assert [s.ssrc for s in answer.media[0].ssrcs if s.attribute == "cname"] == [1010]
    assert mine.current_direction == "sendrecv" and mine.remote_ssrcs == (2010,)
    first = updates(answered)[0]
    assert (first.mid, first.send, first.receive) == ("3", True, True)
    assert [t.mid for t in a.transceivers] == ["1", "3"]
    assert not a.update_negotiation_needed() and not b.update_negotiation_needed()
    # Roles swap: a's next offer keeps the recycled mid.
    a.transceivers[1].direction = "recvonly"
    again, _, _, _ = negotiate(a, b)
    assert [(m.mid, m.port) for m in again.media] == [("3", 9), ("1", 9), ("2", 9)]


def test_nothing_is_recycled_while_the_m_line_is_in_use() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    # stop() not negotiated yet: the line lives in both current descriptions.
    stopped = a.transceivers[0]
    a.stop_transceiver(stopped)
    new = a.add_transceiver("audio", "sendrecv", ["s"], "new", ssrc=9)
    offer, _, _, _ = negotiate(a, b)
    assert [(m.kind, m.mid, m.port) for m in offer.media] == [
        ("audio", "0", 0),
        ("video", "1", 9),
        ("application", "2", 9),
        ("audio", "3", 9),
    ]
    assert new.mid == "3" and stopped not in a.transceivers
    # A rejected m-line held by a transceiver that is not stopped is not free either.
    a2, b2 = two_with_media()
    negotiate(a2, b2)
    stop_and_negotiate(a2, b2)
    ghost = JsepTransceiver("audio", mid="0", mline_index=0)  # not stopped (hypothetical)
    a2.transceivers.append(ghost)
    late = a2.add_transceiver("video", "sendrecv", ["s"], "late", ssrc=11)
    offer = parse_sdp_untrusted(a2.create_offer(LOCAL_A))
    assert [(m.mid, m.port) for m in offer.media] == [("0", 0), ("1", 9), ("2", 9), ("3", 9)]
    assert late.mid is None  # given when the offer is applied


def test_recycling_offer_rollback_gives_the_same_m_line_again() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    stop_and_negotiate(a, b)
    new = a.add_transceiver("audio", "sendrecv", ["s"], "new", ssrc=9)
    a.set_local_description("offer", a.create_offer(LOCAL_A))
    assert (new.mid, new.mline_index) == ("3", 0)
    a.rollback()
    assert (new.mid, new.mline_index) == (None, None)
    assert (a.slots[0].mid, a.slots[0].rejected) == ("0", True)
    offer, _, _, _ = negotiate(a, b)
    assert (offer.media[0].mid, offer.media[0].port, new.mid) == ("3", 9, "3")


def test_recycled_m_line_never_gets_an_old_mid_back() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    for expected in ("3", "4"):
        stop_and_negotiate(a, b)
        a.add_transceiver("audio", "sendrecv", ["s"], f"t{expected}", ssrc=int(expected))
        offer, _, _, _ = negotiate(a, b)
        assert [m.mid for m in offer.media] == [expected, "1", "2"]
        assert a.transceivers[-1].mid == expected


def test_data_sections_are_not_recycled() -> None:
    data = jsep.MediaSlot(
        "2", "application", "UDP/DTLS/SCTP", [jsep.DATA_FORMAT], data=True, rejected=True
    )
    audio = jsep.MediaSlot("0", "audio", "UDP/TLS/RTP/SAVPF", ["111"], rejected=True)
    assert not jsep.sections.recyclable(data) and jsep.sections.recyclable(audio)
    assert not jsep.sections.recyclable(attrs.evolve(audio, rejected=False))


def test_remote_offer_changing_a_live_m_line_is_refused() -> None:
    a, b = two_with_media()
    negotiate(a, b)
    offer = a.create_offer(LOCAL_A)
    changed = parse_sdp_untrusted(offer.replace("a=mid:0", "a=mid:9").replace(" 0 1 2", " 9 1 2"))
    with pytest.raises(InvalidAccessError, match="only a rejected m-line may be recycled"):
        b.set_remote_description("offer", changed)
    fewer = parse_sdp_untrusted(offer)
    del fewer.media[2]
    fewer.groups[0] = attrs.evolve(fewer.groups[0], mids=("0", "1"))
    with pytest.raises(InvalidAccessError, match="never removed"):
        b.set_remote_description("offer", fewer)
    assert b.signaling_state == "stable" and b.pending_remote is None
    assert [t.mid for t in b.transceivers] == ["0", "1"]
