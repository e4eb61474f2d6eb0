"""trio_rtc <-> trio_rtc over real UDP on 127.0.0.1: offer/answer, states and their events,
trickle and not, both offerer roles, a wrong fingerprint, getStats."""

from __future__ import annotations

import pytest
import trio
from pc_helpers import connect, negotiate, pc_pair

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.pc.events import RTCPeerConnectionIceEvent
from trio_rtc.sdp import parse_sdp_untrusted

STATE_EVENTS = (
    "signalingstatechange",
    "icegatheringstatechange",
    "iceconnectionstatechange",
    "connectionstatechange",
)


def watch(pc: RTCPeerConnection) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {name: [] for name in STATE_EVENTS}
    attribute = {
        "signalingstatechange": "signalingState",
        "icegatheringstatechange": "iceGatheringState",
        "iceconnectionstatechange": "iceConnectionState",
        "connectionstatechange": "connectionState",
    }
    for name in STATE_EVENTS:
        pc.addEventListener(name, lambda e, n=name: seen[n].append(getattr(pc, attribute[n])))
    return seen


@pytest.mark.parametrize("trickled", [True, False], ids=["trickle", "non-trickle"])
@pytest.mark.parametrize("first_offers", [True, False], ids=["a-offers", "b-offers"])
async def test_connect_states_events_and_channel(trickled: bool, first_offers: bool) -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        offerer, answerer = (a, b) if first_offers else (b, a)
        seen_offerer, seen_answerer = watch(offerer), watch(answerer)
        candidates: list[RTCPeerConnectionIceEvent] = []
        offerer.addEventListener("icecandidate", candidates.append)
        channels: list[RTCDataChannel] = []
        answerer.ondatachannel = lambda event: channels.append(event.channel)
        channel = offerer.createDataChannel("chat", {"protocol": "p1"})
        with trio.fail_after(10):
            await connect(offerer, answerer, nursery, trickled=trickled)
            await channel.wait_open()
            await answerer.wait_until(lambda: bool(channels))
            await offerer.wait_gathering_complete()
        remote_channel = channels[0]
        assert (remote_channel.label, remote_channel.protocol) == ("chat", "p1")
        channel.send("ping")
        assert await remote_channel.receive() == "ping"
        remote_channel.send(b"pong")
        assert await channel.receive() == b"pong"

        for pc, seen in ((offerer, seen_offerer), (answerer, seen_answerer)):
            assert pc.signalingState == "stable"
            assert pc.iceConnectionState in ("connected", "completed")
            assert seen["connectionstatechange"] == ["connecting", "connected"]
            assert seen["iceconnectionstatechange"][0] == "checking"
            assert seen["iceconnectionstatechange"][1] in ("connected", "completed")
            assert seen["icegatheringstatechange"] == ["gathering", "complete"]
            assert pc.sctp is not None and pc.sctp.state == "connected"
            assert pc.sctp.maxMessageSize == 262144
        assert seen_offerer["signalingstatechange"] == ["have-local-offer", "stable"]
        assert seen_answerer["signalingstatechange"] == ["have-remote-offer", "stable"]
        # icecandidate: candidates with sdpMid/sdpMLineIndex/usernameFragment, then the
        # transport's empty end candidate, then null.
        assert candidates[-1].candidate is None
        end = candidates[-2].candidate
        assert end is not None and end.candidate == "" and end.sdpMid == "0"
        first = candidates[0].candidate
        assert first is not None and first.sdpMid == "0" and first.sdpMLineIndex == 0
        local = offerer.localDescription
        assert local is not None
        assert first.usernameFragment == parse_sdp_untrusted(local.sdp).media[0].ice_ufrag
        assert first.candidate.removeprefix("candidate:") in local.sdp
        assert "a=end-of-candidates" in local.sdp
        assert offerer.canTrickleIceCandidates is True
        assert offerer.dtls_transport is not None and answerer.dtls_transport is not None
        # DTLS roles from a=setup: the answerer is active (client), the offerer passive.
        assert answerer.dtls_transport.core.is_client
        assert not offerer.dtls_transport.core.is_client
        nursery.cancel_scope.cancel()
    assert a.connectionState == "closed" and b.signalingState == "closed"


async def test_answerer_creates_channels_and_stats_are_real() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        a.createDataChannel("first")
        got: list[RTCDataChannel] = []
        a.ondatachannel = lambda event: got.append(event.channel)
        with trio.fail_after(10):
            await connect(a, b, nursery)
            channel = b.createDataChannel("from-b", ordered=False, maxRetransmits=3)
            await channel.wait_open()
            await a.wait_until(lambda: bool(got))
        assert got[0].label == "from-b" and not got[0].ordered and got[0].maxRetransmits == 3
        assert channel.id is not None and got[0].id == channel.id
        for _ in range(5):
            channel.send(b"x" * 1000)
        for _ in range(5):
            assert await got[0].receive() == b"x" * 1000
        report = await b.getStats()
        types = {stats["type"] for stats in report.values()}
        assert {
            "peer-connection",
            "transport",
            "candidate-pair",
            "local-candidate",
            "remote-candidate",
            "certificate",
            "data-channel",
        } <= types
        transport = report["T01"]
        assert transport["dtlsState"] == "connected" and transport["iceState"] in (
            "connected",
            "completed",
        )
        assert transport["bytesSent"] > 5000 and transport["packetsReceived"] > 0
        assert transport["tlsVersion"] == "FEFD" and transport["dtlsRole"] == "client"
        pair = report[transport["selectedCandidatePairId"]]
        assert pair["state"] == "succeeded" and pair["nominated"]
        # One interface, one pair: selected once (webrtc-stats selectedCandidatePairChanges).
        assert transport["selectedCandidatePairChanges"] == 1
        assert pair["responsesReceived"] > 0 and pair["bytesSent"] == transport["bytesSent"]
        local = report[pair["localCandidateId"]]
        assert (local["address"], local["candidateType"], local["protocol"]) == (
            "127.0.0.1",
            "host",
            "udp",
        )
        certificate = report[transport["localCertificateId"]]
        assert b.certificate is not None
        assert certificate["fingerprint"] == b.certificate.getFingerprints()[0].value
        assert transport["remoteCertificateId"] in report
        channel_stats = [
            s for s in report.values() if s["type"] == "data-channel" and s["label"] == "from-b"
        ]
        assert channel_stats[0]["messagesSent"] == 5 and channel_stats[0]["bytesSent"] == 5000
        peer = report["P"]
        assert peer["dataChannelsOpened"] == 2
        nursery.cancel_scope.cancel()


async def test_wrong_fingerprint_fails_the_connection() -> None:
    async with pc_pair() as (a, b):
        a.createDataChannel("x")
        await a.setLocalDescription()
        assert a.localDescription is not None
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription()
        answer = b.localDescription
        assert answer is not None
        parsed = parse_sdp_untrusted(answer.sdp)
        value = parsed.media[0].fingerprints[0].value
        wrong = ("00" if value[:2] != "00" else "11") + value[2:]
        await b.wait_gathering_complete()
        answer = b.localDescription
        assert answer is not None
        await a.setRemoteDescription({"type": "answer", "sdp": answer.sdp.replace(value, wrong)})
        await a.wait_gathering_complete()
        assert a.localDescription is not None
        for line in a.localDescription.sdp.splitlines():
            if line.startswith("a=candidate:"):
                await b.addIceCandidate({"candidate": line[2:], "sdpMid": "0"})
        with trio.fail_after(10):
            assert await a.wait_connection_state("failed", "connected") == "failed"
        assert a.iceConnectionState in ("connected", "completed")  # ICE itself was fine
        assert a.dtls_transport is not None and a.dtls_transport.state == "failed"


async def test_close_from_inside_ends_every_task() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        channel = a.createDataChannel("x")
        with trio.fail_after(10):
            await connect(a, b, nursery)
            await channel.wait_open()
        await a.close()
        assert (a.connectionState, a.iceConnectionState, a.signalingState) == ("closed",) * 3
        assert channel.readyState == "closed"
        ice = a.ice_transport
        assert ice is not None and ice.state == "closed"
        sctp = b.sctp
        assert sctp is not None
        with trio.fail_after(5):
            # The peer sees the DTLS close_notify and the association's ABORT at once.
            await sctp.wait_until(lambda: sctp.state == "closed")
        nursery.cancel_scope.cancel()


async def test_renegotiation_keeps_transports() -> None:
    async with pc_pair() as (a, b):
        a.createDataChannel("x")
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await connect(a, b, nursery)
                dtls = a.dtls_transport
                # b re-offers (no changes): roles of ICE and DTLS stay as they were.
                await negotiate(b, a, trickled=True)
                assert a.dtls_transport is dtls
                assert a.ice_transport is not None and a.ice_transport.role == "controlling"
                nursery.cancel_scope.cancel()
