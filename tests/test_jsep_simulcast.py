"""Simulcast negotiation: ``a=rid`` (RFC 8851) and ``a=simulcast`` (RFC 8853) in the SDP model,
in the JSEP core both ways (answering a browser's simulcast offer, offering our own and applying
the answer), webrtc-pc §5.1 sendEncodings checks, and two peer connections negotiating it."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pc_helpers import pc_pair

from trio_rtc import InvalidModificationError, RTCSessionDescription
from trio_rtc.jsep import JsepSession, LocalTransport
from trio_rtc.jsep.codecs import URI_REPAIRED_RID, URI_RID
from trio_rtc.sdp import (
    Direction,
    Fingerprint,
    Rid,
    RidDirection,
    Simulcast,
    SimulcastFormat,
    parse_sdp_untrusted,
)
from trio_rtc.sdp.media import MAX_RIDS, parse_rid_untrusted, parse_simulcast_untrusted
from trio_rtc.sdp.values import Invalid

LOCAL = LocalTransport("ufragA", "a" * 24, (Fingerprint("sha-256", ":".join(["AB"] * 32)),))

# What Chromium offers for addTransceiver('video', {sendEncodings: [{rid: 'h'},
# {rid: 'm', scaleResolutionDownBy: 2}, {rid: 'l', scaleResolutionDownBy: 4}]}).
CHROMIUM_SIMULCAST_OFFER = (
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Xq3b\r\n"
    "a=ice-pwd:cB8sVx0kZ2mQ7nT4yW9rL1pD\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 5B:60:33:F8:16:1D:1B:2F:EF:54:31:1F:DD:83:25:33:53:B3:11:5E:7F:AB:"
    "11:34:4C:46:39:84:1D:C5:43:16\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
    "a=sendonly\r\n"
    "a=msid:- 0c5a2d1e-3f4b-4c6d-8e9f-a0b1c2d3e4f5\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 transport-cc\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:98 X-UNKNOWN/90000\r\n"
    "a=rid:h send\r\n"
    "a=rid:m send\r\n"
    "a=rid:l send\r\n"
    "a=simulcast:send h;m;l\r\n"
)


def answer_offer(text: str) -> tuple[JsepSession, str]:
    core = JsepSession(session_id=1)
    core.set_remote_description("offer", parse_sdp_untrusted(text))
    answer = core.create_answer(LOCAL)
    core.set_local_description("answer", answer)
    return core, answer


# --- SDP model ----------------------------------------------------------------------------------


def test_rid_and_simulcast_lines_parse_into_typed_values_and_serialize_back() -> None:
    rid = parse_rid_untrusted("h send pt=96,97;max-width=1280;max-height=720;max-fps=30;x-y")
    assert rid == Rid(
        "h",
        RidDirection.SEND,
        (96, 97),
        (("max-width", "1280"), ("max-height", "720"), ("max-fps", "30"), ("x-y", None)),
    )
    assert (rid.max_width, rid.max_height, rid.max_fps, rid.max_br) == (1280, 720, 30.0, None)
    assert parse_rid_untrusted("q recv depend=h,m").depend == ("h", "m")
    simulcast = parse_simulcast_untrusted("recv 1,~2;3 send ~a")
    assert simulcast == Simulcast(
        send=((SimulcastFormat("a", paused=True),),),
        recv=((SimulcastFormat("1"), SimulcastFormat("2", paused=True)), (SimulcastFormat("3"),)),
    )
    head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    lines = (
        "a=rid:h send pt=96;max-width=1280\r\na=rid:l  recv\r\na=simulcast:recv 1,~2;3 send ~a\r\n"
    )
    description = parse_sdp_untrusted(head + lines)
    assert description.serialize() == head + lines  # as written
    canonical = description.serialize(keep_layout=False)
    assert "a=rid:l recv\r\n" in canonical and "a=simulcast:send ~a recv 1,~2;3\r\n" in canonical
    assert parse_sdp_untrusted(canonical) == description
    assert description.media[0].dropped_simulcast_lines == 0


HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"


@pytest.mark.parametrize(
    "lines",
    [
        "a=rid:1 sideways",
        "a=rid:h",
        "a=rid:h SEND",
        "a=rid:h.x send",
        "a=rid:" + "a" * 256 + " send",
        "a=rid:h send max-width=1;pt=96",
        "a=rid:h send pt=",
        "a=rid:h send pt=128",
        "a=rid:h send max_width=1",
        "a=rid:h send a;;b",
        "a=rid:h send " + ";".join(f"p{i}" for i in range(33)),
        "a=rid:h send\r\na=rid:h send",
        "\r\n".join(f"a=rid:r{i} send" for i in range(MAX_RIDS + 1)),
        "a=simulcast:send",
        "a=simulcast:up a;b",
        "a=simulcast:send a send b",
        "a=simulcast:send a;;b",
        "a=simulcast:send ~",
        "a=simulcast:send a,~a",
        "a=simulcast:send rid=a;b",
        "a=simulcast:send " + ";".join(f"r{i}" for i in range(MAX_RIDS + 1)),
        "a=simulcast:send a\r\na=simulcast:recv b",
    ],
)
def test_malformed_rid_and_simulcast_lines_are_dropped_and_counted(lines: str) -> None:
    text = HEAD + lines + "\r\n"
    media = parse_sdp_untrusted(text).media[0]
    assert media.dropped_simulcast_lines == 1
    assert len(media.rids) + (media.simulcast is not None) == lines.count("\r\n")
    # Kept as text: nothing the peer wrote is lost, and it reads the same again.
    description = parse_sdp_untrusted(text)
    assert description.serialize() == text
    assert parse_sdp_untrusted(description.serialize(keep_layout=False)) == description


RID_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + "-_=;,.~ " + "\u00e9", max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        RID_TEXT,
        st.builds(
            lambda i, d, rest: f"{i} {d} {rest}",
            st.text(string.ascii_letters + "-_", min_size=1, max_size=4),
            st.sampled_from(["send", "recv", "sendrecv"]),
            RID_TEXT,
        ),
    )
)
def test_rid_parser_fuzz(text: str) -> None:
    try:
        rid = parse_rid_untrusted(text)
    except Invalid:
        return
    again = parse_sdp_untrusted(HEAD + f"a=rid:{text}\r\n").media[0].rids
    assert again == [rid]
    canonical = parse_sdp_untrusted(HEAD + f"a=rid:{text}\r\n").serialize(keep_layout=False)
    assert parse_sdp_untrusted(canonical).media[0].rids == [rid]


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        lambda a, x, b, y: f"{a} {x} {b} {y}".strip(),
        st.sampled_from(["send", "recv", "", "sendonly"]),
        st.text(alphabet="abc~,;_-", max_size=20),
        st.sampled_from(["send", "recv", ""]),
        st.text(alphabet="abc~,;_-", max_size=20),
    )
)
def test_simulcast_parser_fuzz(text: str) -> None:
    try:
        simulcast = parse_simulcast_untrusted(text)
    except Invalid:
        return
    for streams in (simulcast.send, simulcast.recv):
        rids = [f.rid for alternatives in streams for f in alternatives]
        assert len(rids) == len(set(rids)) <= MAX_RIDS  # a rid once per direction
    canonical = parse_sdp_untrusted(HEAD + f"a=simulcast:{text}\r\n").serialize(keep_layout=False)
    assert parse_sdp_untrusted(canonical).media[0].simulcast == simulcast


# --- answering a simulcast offer ----------------------------------------------------------------


def test_chromium_simulcast_offer_is_answered_with_recv_rids() -> None:
    core, text = answer_offer(CHROMIUM_SIMULCAST_OFFER)
    [video] = parse_sdp_untrusted(text).media
    assert video.direction == Direction.RECVONLY
    assert video.rids == [Rid(r, RidDirection.RECV) for r in "hml"]
    assert video.simulcast == Simulcast(recv=tuple((SimulcastFormat(r),) for r in "hml"))
    assert "a=rid:h recv\r\na=rid:m recv\r\na=rid:l recv\r\na=simulcast:recv h;m;l\r\n" in text
    uris = {e.uri: e.id for e in video.extmaps}
    assert (uris[URI_RID], uris[URI_REPAIRED_RID]) == (10, 11)
    [transceiver] = core.transceivers
    assert transceiver.receive_rids == ("h", "m", "l")
    assert transceiver.simulcast.send == ()


def test_rids_we_cannot_receive_are_left_out_of_the_answer() -> None:
    offer = CHROMIUM_SIMULCAST_OFFER.replace("a=rid:m send\r\n", "a=rid:m send pt=98\r\n").replace(
        "a=rid:l send\r\n", "a=rid:l send pt=98,96;max-width=320;depend=h;x-foo=1\r\n"
    )
    offer = offer.replace("a=simulcast:send h;m;l", "a=simulcast:send h;m;l;q,~l2")
    offer = offer.replace("a=rid:h send\r\n", "a=rid:h send\r\na=rid:l2 send\r\n")
    core, text = answer_offer(offer)
    [video] = parse_sdp_untrusted(text).media
    # m is bound to a payload type we reject, q has no a=rid line; l keeps the payload type we
    # answer and the restriction we understand; the paused alternative stays paused.
    assert video.rids == [
        Rid("h", RidDirection.RECV),
        Rid("l", RidDirection.RECV, (96,), (("max-width", "320"),)),
        Rid("l2", RidDirection.RECV),
    ]
    assert video.simulcast == Simulcast(
        recv=(
            (SimulcastFormat("h"),),
            (SimulcastFormat("l"),),
            (SimulcastFormat("l2", paused=True),),
        )
    )
    assert core.transceivers[0].receive_rids == ("h", "l", "l2")


@pytest.mark.parametrize(
    "change",
    [
        ("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", ""),
        ("a=simulcast:send h;m;l\r\n", ""),
        ("a=simulcast:send h;m;l\r\n", "a=simulcast:send h;m;;l\r\n"),
        ("a=sendonly", "a=inactive"),
    ],
)
def test_no_simulcast_in_the_answer_without_what_it_needs(change: tuple[str, str]) -> None:
    core, text = answer_offer(CHROMIUM_SIMULCAST_OFFER.replace(*change))
    [video] = parse_sdp_untrusted(text).media
    assert video.rids == [] and video.simulcast is None
    assert core.transceivers[0].receive_rids == ()


# --- offering simulcast --------------------------------------------------------------------------


def offering(rids: tuple[str, ...], direction: str = "sendrecv") -> tuple[JsepSession, str]:
    core = JsepSession(session_id=2)
    record = core.add_transceiver("video", direction, track_id="t")
    record.send_rids = rids
    offer = core.create_offer(LOCAL)
    core.set_local_description("offer", offer)
    return core, offer


def remote_answer(offer: str, simulcast: str | None, rids: str = "hml") -> str:
    """An answer by another JSEP core, with its simulcast line replaced."""
    answerer = JsepSession(session_id=3)
    answerer.set_remote_description("offer", parse_sdp_untrusted(offer))
    text = answerer.create_answer(LocalTransport("ufragB", "b" * 24, LOCAL.fingerprints))
    lines = [
        line
        for line in text.split("\r\n")
        if not line.startswith(("a=simulcast", "a=rid"))
        or (line.startswith("a=rid:") and line[6] in rids)
    ]
    if simulcast is not None:
        lines.insert(-1, simulcast)
    return "\r\n".join(lines)


def test_our_simulcast_offer_and_an_answer_that_takes_part_of_it() -> None:
    core, offer = offering(("h", "m", "l"))
    [video] = parse_sdp_untrusted(offer).media
    assert video.rids == [Rid(r, RidDirection.SEND) for r in "hml"]
    assert video.simulcast == Simulcast(send=tuple((SimulcastFormat(r),) for r in "hml"))
    assert {URI_RID, URI_REPAIRED_RID} <= {e.uri for e in video.extmaps}
    answer = remote_answer(offer, "a=simulcast:recv h;~l", rids="hl")
    core.set_remote_description("answer", parse_sdp_untrusted(answer))
    [record] = core.transceivers
    assert record.send_rids == ("h", "l")
    assert record.simulcast.send_rids == ("h", "l")
    assert [layer.paused for layer in record.simulcast.send] == [False, True]
    # The next offer sends only what was accepted.
    again = parse_sdp_untrusted(core.create_offer(LOCAL)).media[0]
    assert [r.id for r in again.rids] == ["h", "l"]


def test_an_answer_without_simulcast_leaves_no_simulcast() -> None:
    core, offer = offering(("h", "m", "l"))
    core.set_remote_description("answer", parse_sdp_untrusted(remote_answer(offer, None, "")))
    [record] = core.transceivers
    assert record.send_rids == () and record.simulcast.send == ()
    assert parse_sdp_untrusted(core.create_offer(LOCAL)).media[0].simulcast is None


def test_a_recvonly_offer_carries_no_simulcast_and_keeps_the_encodings() -> None:
    core, offer = offering(("h", "m"), direction="recvonly")
    assert parse_sdp_untrusted(offer).media[0].simulcast is None
    core.set_remote_description("answer", parse_sdp_untrusted(remote_answer(offer, None, "")))
    assert core.transceivers[0].send_rids == ("h", "m")


def test_two_jsep_cores_negotiate_simulcast() -> None:
    core, offer = offering(("h", "m", "l"))
    answerer, answer = answer_offer(offer)
    core.set_remote_description("answer", parse_sdp_untrusted(answer))
    [theirs] = answerer.transceivers
    [ours] = core.transceivers
    assert ours.simulcast.send_rids == ("h", "m", "l") and ours.simulcast.recv == ()
    assert theirs.simulcast.recv_rids == ("h", "m", "l") and theirs.simulcast.send == ()


# --- sendEncodings (webrtc-pc §5.1) and the W3C objects ----------------------------------------

SIMULCAST = [
    {"rid": "h"},
    {"rid": "m", "scaleResolutionDownBy": 2},
    {"rid": "l", "scaleResolutionDownBy": 4},
]


@pytest.mark.parametrize(
    ("encodings", "error", "message"),
    [
        ([{"rid": "h"}, {"rid": "a b"}], TypeError, "'a b' is not an RFC 8851 rid-id"),
        ([{"rid": "h"}, {"rid": "x" * 256}], TypeError, "rid-id"),
        ([{"rid": "h"}, {"rid": ""}], TypeError, "rid-id"),
        ([{"rid": "h"}, {"rid": 5}], TypeError, "rid-id"),
        ([{"rid": "h"}, {}], TypeError, "1 of 2 encodings have a rid"),
        ([{"rid": "h"}, {"rid": "h"}], TypeError, "rid 'h' is used by more than one"),
        ([{"rid": "h", "bogus": 1}, {"rid": "l"}], TypeError, "no member"),
        ([{"rid": "h"}, {"rid": "l", "scaleResolutionDownBy": 0.5}], ValueError, "RangeError"),
        ([{"rid": "h", "maxFramerate": -1}, {"rid": "l"}], ValueError, "RangeError"),
        ("hml", TypeError, "sequence"),
        ([object()], TypeError, "RTCRtpEncodingParameters or dicts"),
    ],
)
async def test_send_encodings_are_checked(encodings: object, error: type, message: str) -> None:
    async with pc_pair() as (pc, _):
        with pytest.raises(error, match=message):
            pc.addTransceiver("video", {"sendEncodings": encodings})
        assert pc.getTransceivers() == []


async def test_send_encodings_defaults_and_limits() -> None:
    async with pc_pair() as (pc, _):
        three = pc.addTransceiver("video", {"sendEncodings": [{"rid": r} for r in "hml"]})
        encodings = three.sender.getParameters().encodings
        assert [(e.rid, e.scaleResolutionDownBy) for e in encodings] == [
            ("h", 4.0),
            ("m", 2.0),
            ("l", 1.0),
        ]
        # More than the limit (4 for video) is truncated, as webrtc-pc §5.1 says.
        many = pc.addTransceiver("video", {"sendEncodings": [{"rid": f"r{i}"} for i in range(6)]})
        assert [e.rid for e in many.sender.encodings] == ["r0", "r1", "r2", "r3"]
        # Audio has one encoding; a lone encoding has no rid.
        audio = pc.addTransceiver("audio", {"sendEncodings": [{"rid": "a"}, {"rid": "b"}]})
        assert [(e.rid, e.scaleResolutionDownBy) for e in audio.sender.encodings] == [(None, None)]
        lone = pc.addTransceiver("video", {"sendEncodings": [{"rid": "x", "maxBitrate": 9}]})
        assert [(e.rid, e.maxBitrate) for e in lone.sender.encodings] == [(None, 9)]


async def test_set_parameters_keeps_the_encoding_count_and_rids() -> None:
    async with pc_pair() as (pc, _):
        sender = pc.addTransceiver("video", {"sendEncodings": SIMULCAST}).sender
        parameters = sender.getParameters()
        parameters.encodings[1].rid = "x"
        with pytest.raises(InvalidModificationError, match="rid"):
            await sender.setParameters(parameters)
        parameters = sender.getParameters()
        parameters.encodings.pop()
        with pytest.raises(InvalidModificationError, match="number of encodings"):
            await sender.setParameters(parameters)
        parameters = sender.getParameters()
        parameters.encodings[2].active = False
        await sender.setParameters(parameters)
        assert [e.active for e in sender.encodings] == [True, True, False]


async def test_two_peer_connections_negotiate_simulcast() -> None:
    async with pc_pair() as (a, b):
        sender = a.addTransceiver("video", {"sendEncodings": SIMULCAST}).sender
        await a.setLocalDescription(await a.createOffer())
        assert a.localDescription is not None
        offer = parse_sdp_untrusted(a.localDescription.sdp).media[0]
        assert offer.simulcast == Simulcast(send=tuple((SimulcastFormat(r),) for r in "hml"))
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        assert b.localDescription is not None
        await a.setRemoteDescription(b.localDescription)
        assert a.signalingState == b.signalingState == "stable"
        assert [e.rid for e in sender.getParameters().encodings] == ["h", "m", "l"]
        [record] = b._jsep.transceivers
        assert record.receive_rids == ("h", "m", "l")
        assert a._jsep.transceivers[0].simulcast.send_rids == ("h", "m", "l")


@pytest.mark.parametrize(
    ("simulcast", "rids", "expected"),
    [
        ("a=simulcast:recv h;l", "hl", [("h", 4.0), ("l", 1.0)]),
        (None, "", [(None, 4.0)]),
    ],
)
async def test_remote_answer_shrinks_the_encodings(
    simulcast: str | None, rids: str, expected: list[tuple[str | None, float]]
) -> None:
    async with pc_pair() as (a, _):
        sender = a.addTransceiver("video", {"sendEncodings": [{"rid": r} for r in "hml"]}).sender
        await a.setLocalDescription(await a.createOffer())
        assert a.localDescription is not None
        answer = remote_answer(a.localDescription.sdp, simulcast, rids)
        await a.setRemoteDescription(RTCSessionDescription(type="answer", sdp=answer))
        assert [(e.rid, e.scaleResolutionDownBy) for e in sender.getParameters().encodings] == (
            expected
        )
