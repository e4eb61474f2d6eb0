"""RTCPeerConnection's JSEP surface over SDP text: the signalingState machine with pranswer,
rollback and implicit setLocalDescription, errors for out-of-state calls, malformed SDP and bad
candidates, negotiationneeded, configuration rules and the media members that wait for media."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest
import trio
import trio.testing
from pc_helpers import certificate, make_pc

from trio_rtc import (
    InvalidAccessError,
    InvalidModificationError,
    InvalidStateError,
    NotSupportedError,
    OperationError,
    RTCCertificate,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
    SdpSyntaxError,
)
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.pc.events import RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent
from trio_rtc.sdp import parse_sdp_untrusted
from trio_rtc.testing import VirtualNetwork

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"


def record(pc: RTCPeerConnection, *types: str) -> list[str]:
    seen: list[str] = []
    for type in types:
        pc.addEventListener(type, lambda e: seen.append(e.type))
    return seen


async def test_never_entered_pc_says_how_to_open_it() -> None:
    pc = make_pc()
    with pytest.raises(InvalidStateError, match="async with RTCPeerConnection"):
        await pc.createOffer()
    with pytest.raises(InvalidStateError, match="async with"):
        await pc.setRemoteDescription({"type": "offer", "sdp": "v=0"})
    await pc.close()
    assert pc.signalingState == "closed" and pc.connectionState == "closed"
    with pytest.raises(InvalidStateError, match="closed"):
        pc.createDataChannel("x")


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"bundlepolicy": "balanced"}, TypeError, "no member"),
        ({"bundlePolicy": "max-everything"}, TypeError, "bundlePolicy"),
        ({"iceTransportPolicy": "public"}, TypeError, "iceTransportPolicy"),
        ({"rtcpMuxPolicy": "negotiate"}, NotSupportedError, "negotiate"),
        ({"iceCandidatePoolSize": 256}, TypeError, "0..255"),
        ({"iceServers": [{"urls": "http://example.org"}]}, NotSupportedError, "scheme"),
        ({"iceServers": [{"urls": "turn:127.0.0.1"}]}, InvalidAccessError, "username"),
        ({"iceServers": [{"urls": "stun:"}]}, SdpSyntaxError, "cannot be parsed"),
        ({"iceServers": [{"url": "stun:127.0.0.1"}]}, TypeError, "urls"),
        ({"certificates": ["not a certificate"]}, TypeError, "RTCCertificate"),
    ],
)
def test_bad_configuration_is_refused_by_the_constructor(
    config: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RTCPeerConnection(config)


def test_expired_certificate_is_refused() -> None:
    expired = RTCCertificate.generate_sync({"name": "ECDSA", "namedCurve": "P-256", "expires": 1})
    time.sleep(0.01)
    with pytest.raises(InvalidAccessError, match="expired"):
        RTCPeerConnection({"certificates": [expired]})


async def test_configuration_round_trip_and_set_configuration_rules() -> None:
    servers = [{"urls": ["stun:127.0.0.1:3478"]}]
    pc = RTCPeerConnection(
        RTCConfiguration.coerce({"iceServers": servers, "certificates": [certificate(0)]})
    )
    config = pc.getConfiguration()
    assert config["iceServers"] == servers and config["bundlePolicy"] == "balanced"
    assert config["certificates"] == [certificate(0)] and config["rtcpMuxPolicy"] == "require"
    with pytest.raises(InvalidModificationError, match="bundlePolicy"):
        pc.setConfiguration({"bundlePolicy": "max-bundle"})
    with pytest.raises(InvalidModificationError, match="certificates"):
        pc.setConfiguration({"certificates": [certificate(1)]})
    pc.setConfiguration({"iceServers": [], "iceCandidatePoolSize": 2})
    assert pc.getConfiguration()["iceServers"] == []
    assert pc.getConfiguration()["certificates"] == [certificate(0)]
    await pc.close()
    with pytest.raises(InvalidStateError):
        pc.setConfiguration({})


async def test_generate_certificate_is_static() -> None:
    cert = await RTCPeerConnection.generateCertificate({"name": "ECDSA", "namedCurve": "P-256"})
    assert isinstance(cert, RTCCertificate) and not cert.is_expired()


async def test_media_members() -> None:
    async with make_pc() as pc:
        assert pc.getSenders() == [] and pc.getReceivers() == [] and pc.getTransceivers() == []
        with pytest.raises(TypeError, match="MediaStreamTrack"):
            pc.addTrack(object())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'audio' or 'video'"):
            pc.addTransceiver("text")
        with pytest.raises(TypeError, match="RTCRtpTransceiverInit"):
            pc.addTransceiver("audio", {"bogus": 1})
        transceiver = pc.addTransceiver("audio", {"direction": "recvonly"})
        assert pc.getTransceivers() == [transceiver]
        assert transceiver.mid is None and transceiver.currentDirection is None
        assert pc.getReceivers() == [transceiver.receiver]
        with pytest.raises(InvalidAccessError):
            pc.removeTrack(object())  # type: ignore[arg-type]
        offer = await pc.createOffer()
        [audio] = parse_sdp_untrusted(offer.sdp).media
        assert audio.kind == "audio" and audio.direction is not None
        assert audio.direction.value == "recvonly"
        assert pc.sctp is None and pc.canTrickleIceCandidates is None
        with pytest.raises(InvalidAccessError):
            await pc.getStats(object())


async def test_offer_rollback_and_implicit_set_local_description() -> None:
    async with make_pc() as pc:
        events = record(pc, "signalingstatechange")
        pc.createDataChannel("x")
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        assert pc.signalingState == "have-local-offer"
        assert pc.pendingLocalDescription is not None and pc.currentLocalDescription is None
        await pc.setLocalDescription({"type": "rollback"})
        assert (pc.signalingState, pc.localDescription) == ("stable", None)
        await pc.setLocalDescription()  # implicit: creates and applies an offer
        local = pc.localDescription
        assert (pc.signalingState, local and local.type) == ("have-local-offer", "offer")
        assert events == ["signalingstatechange"] * 3


async def test_munged_offer_is_refused() -> None:
    async with make_pc() as pc:
        pc.createDataChannel("x")
        offer = await pc.createOffer()
        munged = RTCSessionDescription(type="offer", sdp=offer.sdp.replace("262144", "1024"))
        with pytest.raises(InvalidModificationError, match="createOffer"):
            await pc.setLocalDescription(munged)
        assert pc.signalingState == "stable"


async def test_offer_answer_with_pranswer_and_descriptions() -> None:
    async with make_pc(0) as a, make_pc(1) as b:
        a.createDataChannel("x")
        offer = await a.createOffer()
        await a.setLocalDescription(offer)
        await b.setRemoteDescription(offer)
        assert b.signalingState == "have-remote-offer"
        assert b.pendingRemoteDescription is not None and b.canTrickleIceCandidates is True
        pranswer = await b.createAnswer()
        pranswer = RTCSessionDescription(type="pranswer", sdp=pranswer.sdp)
        await b.setLocalDescription(pranswer)
        assert b.signalingState == "have-local-pranswer"
        await a.setRemoteDescription(pranswer)
        assert a.signalingState == "have-remote-pranswer"
        assert a.pendingRemoteDescription is not None and a.currentRemoteDescription is None
        await b.setLocalDescription()  # implicit answer in have-local-pranswer
        assert b.signalingState == "stable"
        assert b.currentLocalDescription is not None and b.pendingLocalDescription is None
        assert b.currentRemoteDescription is not None
        await a.setRemoteDescription(b.localDescription)  # type: ignore[arg-type]
        assert a.signalingState == "stable"
        assert None not in (a.currentLocalDescription, a.currentRemoteDescription)
        assert [a.pendingLocalDescription, a.pendingRemoteDescription] == [None, None]


async def test_glare_and_out_of_state_calls() -> None:
    async with make_pc(0) as a, make_pc(1) as b:
        a.createDataChannel("x")
        b.createDataChannel("y")
        offer_a = await a.createOffer()
        offer_b = await b.createOffer()
        with pytest.raises(InvalidStateError, match="createAnswer"):
            await a.createAnswer()
        await a.setLocalDescription(offer_a)
        with pytest.raises(InvalidStateError, match="'stable'"):
            await b.setRemoteDescription(
                RTCSessionDescription(type="answer", sdp=offer_a.sdp.replace("actpass", "active"))
            )
        await b.setRemoteDescription(offer_a)
        # b now has a remote offer: its own offer is refused (glare).
        with pytest.raises(InvalidStateError, match="have-remote-offer"):
            await b.setLocalDescription(offer_b)
        # a remote offer in have-local-offer rolls our offer back (perfect negotiation).
        events = record(a, "signalingstatechange")
        await a.setRemoteDescription(offer_b)
        assert a.signalingState == "have-remote-offer" and events == ["signalingstatechange"] * 2
        with pytest.raises(InvalidStateError, match="rollback"):
            await b.setRemoteDescription({"type": "rollback"})  # fine: have-remote-offer
            await b.setRemoteDescription({"type": "rollback"})  # stable: refused
        assert b.signalingState == "stable"


async def test_malformed_and_invalid_remote_sdp() -> None:
    async with make_pc() as pc:
        with pytest.raises(SdpSyntaxError):
            await pc.setRemoteDescription({"type": "offer", "sdp": "v=0\r\nthis is not sdp\r\n"})
        assert pc.signalingState == "stable" and pc.remoteDescription is None
        text = (SAMPLES / "chromium_offer_data_mdns.sdp").read_text()
        no_fingerprint = "".join(
            line for line in text.splitlines(True) if not line.startswith("a=fingerprint")
        )
        with pytest.raises(InvalidAccessError, match="fingerprint"):
            await pc.setRemoteDescription({"type": "offer", "sdp": no_fingerprint})
        with pytest.raises(TypeError, match="type"):
            await pc.setRemoteDescription({"type": "question", "sdp": text})
        assert pc.signalingState == "stable"


async def test_remote_media_offer_is_answered_with_recvonly_sections() -> None:
    text = (SAMPLES / "chromium_offer_audio_video_data.sdp").read_text()
    async with make_pc() as pc:
        await pc.setRemoteDescription(RTCSessionDescription(type="offer", sdp=text))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        parsed = parse_sdp_untrusted(answer.sdp)
        # Audio and video are accepted on the bundle by transceivers the offer created
        # (recvonly: we have no track to send).
        assert [(m.kind, m.port) for m in parsed.media] == [
            ("audio", 9),
            ("video", 9),
            ("application", 9),
        ]
        assert [m.direction and m.direction.value for m in parsed.media[:2]] == ["recvonly"] * 2
        assert parsed.bundle_groups()[0].mids == ("0", "1", "2")
        assert parsed.media[2].setup is not None and parsed.media[2].setup.value == "active"
        assert pc.signalingState == "stable" and pc.sctp is not None


async def test_remote_legacy_sctpmap_offer_is_answered_rejected() -> None:
    text = (SAMPLES / "legacy_sctpmap_offer.sdp").read_text()
    async with make_pc() as pc:
        await pc.setRemoteDescription(RTCSessionDescription(type="offer", sdp=text))
        await pc.setLocalDescription()
        answer = pc.localDescription
        assert answer is not None
        assert [m.port for m in parse_sdp_untrusted(answer.sdp).media] == [0]
        assert pc.signalingState == "stable" and pc.sctp is None and pc.dtls_transport is None


async def test_a_candidate_with_its_line_ending_goes_into_the_remote_description() -> None:
    text = (SAMPLES / "chromium_offer_audio_video_data.sdp").read_text()
    line = "candidate:1 1 udp 2130706431 192.0.2.9 9 typ host"
    async with make_pc() as pc:
        await pc.setRemoteDescription({"type": "offer", "sdp": text})
        await pc.addIceCandidate({"candidate": line + "\r\n", "sdpMid": "0"})
        with pytest.raises(OperationError, match="parse"):
            await pc.addIceCandidate({"candidate": line + "\ngeneration 0", "sdpMid": "0"})
        remote = pc.remoteDescription
        assert remote is not None and remote.sdp.count("a=" + line + "\r\n") == 1


async def test_add_ice_candidate_rules() -> None:
    text = (SAMPLES / "chromium_offer_audio_video_data.sdp").read_text()
    line = "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"
    async with make_pc() as pc:
        with pytest.raises(InvalidStateError, match="setRemoteDescription"):
            await pc.addIceCandidate({"candidate": line, "sdpMid": "0"})
        await pc.setRemoteDescription({"type": "offer", "sdp": text})
        with pytest.raises(OperationError, match="mid 'nope'"):
            await pc.addIceCandidate({"candidate": line, "sdpMid": "nope"})
        with pytest.raises(OperationError, match="out of range"):
            await pc.addIceCandidate({"candidate": line, "sdpMLineIndex": 7})
        with pytest.raises(OperationError, match="usernameFragment"):
            await pc.addIceCandidate({"candidate": line, "sdpMid": "2", "usernameFragment": "zz"})
        with pytest.raises(OperationError, match="parse"):
            await pc.addIceCandidate({"candidate": "candidate:garbage", "sdpMid": "2"})
        with pytest.raises(TypeError, match="sdpMid or sdpMLineIndex"):
            await pc.addIceCandidate({"candidate": line})
        with pytest.raises(TypeError, match="no member"):
            await pc.addIceCandidate({"candidate": line, "sdpMid": "2", "extra": 1})
        # The forms a browser's toJSON() gives, and an RTCIceCandidate; all bundled on mid 2.
        await pc.addIceCandidate({"candidate": line, "sdpMid": "2", "sdpMLineIndex": 2})
        await pc.addIceCandidate(
            RTCIceCandidate(candidate=line.replace(" 9 ", " 10 "), sdpMLineIndex=0)
        )
        await pc.addIceCandidate({"candidate": "", "sdpMid": "2"})  # end for one section
        await pc.addIceCandidate(None)  # end of candidates for all
        remote = pc.remoteDescription
        assert remote is not None and "127.0.0.1 9 typ host" in remote.sdp
        assert "a=end-of-candidates" in remote.sdp
        await pc.close()
        with pytest.raises(InvalidStateError):
            await pc.addIceCandidate(None)


async def test_negotiationneeded_fires_once_and_only_when_stable() -> None:
    async with make_pc(0) as a, make_pc(1) as b:
        events = record(a, "negotiationneeded")
        a.createDataChannel("one")
        a.createDataChannel("two")
        await trio.testing.wait_all_tasks_blocked()
        assert events == ["negotiationneeded"]
        await a.setLocalDescription()
        await b.setRemoteDescription(a.localDescription)  # type: ignore[arg-type]
        await b.setLocalDescription()
        await a.setRemoteDescription(b.localDescription)  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        # Negotiated: a third channel needs no new negotiation.
        a.createDataChannel("three")
        await trio.testing.wait_all_tasks_blocked()
        assert events == ["negotiationneeded"]
        a.restartIce()
        await trio.testing.wait_all_tasks_blocked()
        assert events == ["negotiationneeded"] * 2
        offer = await a.createOffer()
        assert a.localDescription is not None
        old = parse_sdp_untrusted(a.localDescription.sdp).media[0].ice_ufrag
        assert parse_sdp_untrusted(offer.sdp).media[0].ice_ufrag != old


async def test_close_fires_no_state_events_and_ends_closed() -> None:
    async with make_pc() as pc:
        events = record(
            pc, "signalingstatechange", "iceconnectionstatechange", "connectionstatechange"
        )
        await pc.close()
        assert (pc.signalingState, pc.iceConnectionState, pc.connectionState) == (
            "closed",
            "closed",
            "closed",
        )
        assert events == []
        with pytest.raises(InvalidStateError, match="closed"):
            await pc.createOffer()
        await pc.close()  # idempotent


async def test_remote_ice_lite_offer_makes_us_controlling() -> None:
    text = (SAMPLES / "chromium_offer_data_mdns.sdp").read_text()
    lite = text.replace("t=0 0\r\n", "t=0 0\r\na=ice-lite\r\n").replace(
        "t=0 0\n", "t=0 0\na=ice-lite\n"
    )
    assert "a=ice-lite" in lite
    async with make_pc() as pc:
        await pc.setRemoteDescription({"type": "offer", "sdp": lite})
        await pc.setLocalDescription()
        ice = pc.ice_transport
        assert ice is not None and ice.role == "controlling"
    async with make_pc() as pc:
        await pc.setRemoteDescription({"type": "offer", "sdp": text})
        await pc.setLocalDescription()
        ice = pc.ice_transport
        assert ice is not None and ice.role == "controlled"


async def test_candidate_pool_gathers_before_the_description_and_announces_after() -> None:
    async with make_pc(0, iceCandidatePoolSize=1) as pc:
        events: list[RTCPeerConnectionIceEvent] = []
        pc.addEventListener("icecandidate", events.append)
        ice = pc.ice_transport
        assert ice is not None
        with trio.fail_after(5):
            await ice.wait_gathering_complete()  # pre-gathered on entering
        assert events == [] and pc.iceGatheringState == "new"
        pc.createDataChannel("x")
        await pc.setLocalDescription()
        with trio.fail_after(5):
            await pc.wait_gathering_complete()
        assert events[-1].candidate is None
        first = events[0].candidate
        assert first is not None and first.sdpMid == "0" and first.address == "127.0.0.1"


async def test_icecandidateerror_for_an_unreachable_stun_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork(seed=1):
        pc = RTCPeerConnection(
            {"certificates": [certificate(0)], "iceServers": [{"urls": "stun:198.51.100.9:3478"}]},
            ice_options=IceTransportOptions(interfaces=["198.51.100.1"], mdns=False),
        )
        async with pc:
            errors: list[RTCPeerConnectionIceErrorEvent] = []
            pc.onicecandidateerror = errors.append
            pc.createDataChannel("x")
            await pc.setLocalDescription()
            with trio.fail_after(30):
                await pc.wait_gathering_complete()
            assert len(errors) == 1
            error = errors[0]
            assert error.url == "stun:198.51.100.9:3478" and error.errorCode == 701
            assert error.address == "198.51.100.1" and error.port is not None


async def test_large_remote_description_is_parsed_off_the_event_loop() -> None:
    text = (SAMPLES / "chromium_offer_data_mdns.sdp").read_text()
    padding = "".join(f"a=x-padding-{i}:{'p' * 60}\r\n" for i in range(1000))
    large = text.replace("a=sctp-port", padding + "a=sctp-port")
    assert len(large) > 32 * 1024
    async with make_pc() as pc:
        await pc.setRemoteDescription({"type": "offer", "sdp": large})
        assert pc.signalingState == "have-remote-offer"
        remote = pc.remoteDescription
        assert remote is not None and "a=x-padding-999:" in remote.sdp
        with pytest.raises(SdpSyntaxError):
            await pc.setRemoteDescription({"type": "offer", "sdp": large + "garbage\r\n"})
