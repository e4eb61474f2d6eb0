"""trio_rtc's ICE agent against peers nobody here wrote: aioice (the ICE library under aiortc)
and coturn (as a STUN server for server-reflexive candidates), all on 127.0.0.1 / ::1."""

from __future__ import annotations

import pytest
import trio
from peers.aioice_harness import AioicePeer
from peers.coturn import CoturnServer

from trio_rtc.ice.rtc import RTCIceParameters
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("our_role", ["controlling", "controlled"])
@pytest.mark.parametrize("trickle", [False, True], ids=["non-trickle", "trickle"])
async def test_connects_to_aioice(our_role: str, family: str, trickle: bool) -> None:
    address = "127.0.0.1" if family == "ipv4" else "::1"
    their_role = "controlled" if our_role == "controlling" else "controlling"
    with trio.fail_after(20):
        async with (
            AioicePeer(role=their_role, family=family) as peer,
            RTCIceTransport(options=IceTransportOptions(interfaces=[address])) as ours,
        ):
            theirs = await peer.local_description()
            ours.start(RTCIceParameters(theirs.ufrag, theirs.pwd), our_role)
            ours.gather()
            if trickle:
                # Our candidates go out one by one as they are gathered; theirs come in the same way.
                await ours.wait_gathering_complete()
                params = ours.getLocalParameters()
                await peer.set_remote(
                    params.usernameFragment, params.password, [], end_of_candidates=False
                )
                for candidate in ours.getLocalCandidates():
                    await peer.add_candidate(candidate.candidate)
                await peer.end_of_candidates()
                for line in theirs.candidates:
                    ours.addRemoteCandidate({"candidate": line, "sdpMid": "0"})
            else:
                await ours.wait_gathering_complete()
                params = ours.getLocalParameters()
                await peer.set_remote(
                    params.usernameFragment,
                    params.password,
                    [c.candidate for c in ours.getLocalCandidates()],
                )
                for line in theirs.candidates:
                    ours.addRemoteCandidate(line)
            ours.addRemoteCandidate(None)

            selected = await peer.wait_connected()
            await ours.wait_for_state("connected", "completed")
            pair = ours.getSelectedCandidatePair()
            assert pair is not None and pair.local.address == address
            assert str(pair.local.port) in selected.remote

            # Data both ways: aioice echoes what it receives (first byte 0x80: the RTP range).
            for i in range(50):
                assert ours.send(bytes([0x80, i]) + b"x" * 100)
            echoed = [await ours.rtp_receive_channel.receive() for _ in range(50)]
            assert sorted(echoed) == sorted(bytes([0x80, i]) + b"x" * 100 for i in range(50))
            stats = await peer.wait_received(50)
            assert stats.count >= 50
            await peer.send(bytes([0x81]) + b"from aioice")
            assert await ours.rtp_receive_channel.receive() == bytes([0x81]) + b"from aioice"


async def test_server_reflexive_gathering_from_coturn(coturn: CoturnServer) -> None:
    host, port = coturn.stun_address
    opts = IceTransportOptions(interfaces=["127.0.0.1"])
    errors = []
    with trio.fail_after(10):
        async with RTCIceTransport(
            iceServers=[{"urls": f"stun:{host}:{port}"}], options=opts
        ) as transport:
            transport.onicecandidateerror = errors.append
            transport.gather()
            await transport.wait_gathering_complete()
    # On loopback there is no NAT: coturn sees our host address, so the server-reflexive
    # candidate is redundant with the host one and is pruned (RFC 8445 §5.1.3). The Binding
    # transaction itself must have succeeded (no icecandidateerror) and been answered.
    assert errors == []
    assert transport.agent.stats.stun_received >= 1
    types = [c.type for c in transport.getLocalCandidates()]
    assert types == ["host"]


async def test_server_reflexive_candidate_through_a_nat_like_relay(coturn: CoturnServer) -> None:
    """The same gathering through a UDP relay that rewrites our source address, as a NAT does:
    coturn then reports the relay's address and a srflx candidate appears."""
    from trio_rtc.testing import UdpRelay

    async with UdpRelay(target=coturn.stun_address) as relay:
        relay_host, relay_port = relay.address
        opts = IceTransportOptions(interfaces=["127.0.0.1"])
        errors = []
        with trio.fail_after(10):
            async with RTCIceTransport(
                iceServers=[{"urls": f"stun:{relay_host}:{relay_port}"}], options=opts
            ) as transport:
                transport.onicecandidateerror = errors.append
                transport.gather()
                await transport.wait_gathering_complete()
        assert errors == []
        srflx = [c for c in transport.getLocalCandidates() if c.type == "srflx"]
        host = [c for c in transport.getLocalCandidates() if c.type == "host"]
        assert len(srflx) == 1 and len(host) == 1
        assert srflx[0].address == "127.0.0.1"
        assert srflx[0].port != host[0].port  # the relay's outward port, as coturn saw it
        assert srflx[0].relatedAddress == "127.0.0.1" and srflx[0].relatedPort == host[0].port
        # webrtc-pc §5.7: a candidate gathered through a server names it; a host one does not.
        assert srflx[0].url == f"stun:{relay_host}:{relay_port}"
        assert srflx[0].relayProtocol is None
        assert host[0].url is None and host[0].relayProtocol is None


async def test_icecandidate_event_names_the_stun_server_of_a_srflx_candidate(
    coturn: CoturnServer,
) -> None:
    """The pc's icecandidate event carries the server URL (the obsolete event member ``url``)
    and so does its candidate; the host candidate's event has None."""
    from trio_rtc import RTCPeerConnection
    from trio_rtc.testing import UdpRelay

    async with UdpRelay(target=coturn.stun_address) as relay:
        relay_host, relay_port = relay.address
        server = f"stun:{relay_host}:{relay_port}"
        events = []
        with trio.fail_after(10):
            async with RTCPeerConnection(
                {"iceServers": [{"urls": server}]},
                ice_options=IceTransportOptions(interfaces=["127.0.0.1"]),
            ) as pc:
                pc.onicecandidate = events.append
                pc.createDataChannel("x")
                await pc.setLocalDescription(await pc.createOffer())
                await pc.wait_gathering_complete()
    by_type = {e.candidate.type: e for e in events if e.candidate is not None and e.candidate.type}
    assert set(by_type) == {"host", "srflx"}
    assert by_type["srflx"].url == server and by_type["srflx"].candidate.url == server
    assert by_type["host"].url is None and by_type["host"].candidate.url is None


async def test_unreachable_stun_server_reports_icecandidateerror() -> None:
    opts = IceTransportOptions(interfaces=["127.0.0.1"])
    errors = []
    # A port on loopback where nothing listens: requests go unanswered until the schedule ends.
    with trio.fail_after(20):
        async with RTCIceTransport(
            iceServers=[{"urls": "stun:127.0.0.1:9"}], options=opts
        ) as transport:
            transport.onicecandidateerror = errors.append
            transport.gather()
            await transport.wait_gathering_complete()
    assert len(errors) == 1
    assert errors[0].errorCode == 701 and errors[0].url == "stun:127.0.0.1:9"


async def test_new_ice_servers_apply_from_the_next_gathering(coturn: CoturnServer) -> None:
    """setConfiguration's iceServers: candidates already gathered stay; an ICE restart gathers
    from the new servers (webrtc-pc §4.4.1.6)."""
    from trio_rtc.testing import UdpRelay

    async with UdpRelay(target=coturn.stun_address) as relay:
        host, port = relay.address
        opts = IceTransportOptions(interfaces=["127.0.0.1"])
        with trio.fail_after(10):
            async with RTCIceTransport(options=opts) as transport:
                transport.gather()
                await transport.wait_gathering_complete()
                assert [c.type for c in transport.getLocalCandidates()] == ["host"]
                transport.set_ice_servers([{"urls": f"stun:{host}:{port}"}])
                await trio.sleep(0.1)  # the new server's address is resolved in the background
                assert [c.type for c in transport.getLocalCandidates()] == ["host"]
                transport.restart()
                await transport.wait_until(
                    lambda: any(c.type == "srflx" for c in transport.getLocalCandidates())
                )
                await transport.wait_gathering_complete()
