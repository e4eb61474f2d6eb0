"""ICE-lite (RFC 8445 §2.5) end to end over real UDP on 127.0.0.1: the configuration and its
errors, bare ``RTCIceTransport``s, trio_rtc full ↔ trio_rtc lite peer connections in both offerer
roles with a data channel echo, ICE restarts started from either side, two lite sides refused,
and a lite server on one shared UDP port (``open_shared_udp``) with a few clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio
from ice_helpers import connect_pair, exchange_data
from pc_helpers import certificate, connect, make_pc, negotiate

from trio_rtc import RTCConfiguration, RTCDataChannel, RTCPeerConnection
from trio_rtc.exceptions import InvalidAccessError, InvalidModificationError
from trio_rtc.ice.mux import SharedUdp, open_shared_udp
from trio_rtc.ice.rtc import RTCIceParameters
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.sdp import parse_sdp_untrusted

STUN_SERVER = {"urls": "stun:stun.example.org"}
LOOPBACK = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False)
LITE_LOOPBACK = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False, ice_lite=True)


# --- configuration ------------------------------------------------------------------------------


def test_configuration_member_and_its_conflicts() -> None:
    assert RTCConfiguration.coerce({"ice_lite": True}).ice_lite
    assert not RTCConfiguration.coerce(None).ice_lite
    assert RTCConfiguration.coerce({"ice_lite": True}).to_dict()["ice_lite"] is True
    assert "ice_lite" not in RTCConfiguration().to_dict()
    with pytest.raises(TypeError, match="ice_lite must be True or False"):
        RTCConfiguration.coerce({"ice_lite": "yes"})
    with pytest.raises(InvalidAccessError, match="iceTransportPolicy 'relay'"):
        RTCConfiguration.coerce({"ice_lite": True, "iceTransportPolicy": "relay"})
    with pytest.raises(InvalidAccessError, match="iceServers"):
        RTCConfiguration.coerce({"ice_lite": True, "iceServers": [STUN_SERVER]})


async def test_set_configuration_keeps_ice_lite_and_its_rules() -> None:
    async with make_pc(0, ice_lite=True) as pc:
        assert pc.getConfiguration()["ice_lite"] is True
        # Left out: kept (fixed at construction, like shared_udp).
        pc.setConfiguration({"bundlePolicy": "balanced"})
        assert pc.getConfiguration()["ice_lite"] is True
        with pytest.raises(InvalidAccessError, match="iceServers"):
            pc.setConfiguration({"iceServers": [STUN_SERVER]})
        with pytest.raises(InvalidAccessError, match="relay"):
            pc.setConfiguration({"iceTransportPolicy": "relay"})
    async with make_pc(0) as pc:
        with pytest.raises(InvalidModificationError, match="ice_lite"):
            pc.setConfiguration({"ice_lite": True})


async def test_transport_options_conflicts_and_roles() -> None:
    with pytest.raises(ValueError, match="iceServers"):
        RTCIceTransport(iceServers=[STUN_SERVER], options=LITE_LOOPBACK)
    with pytest.raises(ValueError, match="relay_only"):
        RTCIceTransport(
            options=IceTransportOptions(interfaces=["127.0.0.1"], ice_lite=True, relay_only=True)
        )
    async with RTCIceTransport(options=LITE_LOOPBACK) as lite:
        params = lite.getLocalParameters()
        assert params.iceLite
        with pytest.raises(ValueError, match="always 'controlled'"):
            lite.start(RTCIceParameters("peer", "p" * 22), "controlling")
        with pytest.raises(ValueError, match="both sides are ICE-lite"):
            lite.start(RTCIceParameters("peer", "p" * 22, iceLite=True), "controlled")
        with pytest.raises(ValueError, match="iceServers"):
            lite.set_ice_servers([STUN_SERVER])


@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "complete"])
async def test_full_and_lite_transports_over_udp(trickle: bool) -> None:
    with trio.fail_after(10):
        async with (
            RTCIceTransport(options=LOOPBACK) as full,
            RTCIceTransport(options=LITE_LOOPBACK, controlling=False) as lite,
        ):
            await connect_pair(full, lite, trickle=trickle, a_role="controlling")
            await exchange_data(full, lite)
            await lite.wait_for(state="completed")
            assert full.role == "controlling" and lite.role == "controlled"
            assert lite.agent.stats.checks_sent == 0
            assert lite.agent.stats.consent_requests_sent == 0
            selected = lite.agent.selected_pair
            assert selected is not None and selected.nominated
            assert lite.getSelectedCandidatePair() is not None


# --- peer connections -----------------------------------------------------------------------------


def assert_lite_session(
    full: RTCPeerConnection, lite: RTCPeerConnection, *, nominated: bool = True
) -> None:
    """The lite side said a=ice-lite (at session level), the full one did not; the full side
    controls; the lite agent never sent a check; the pair in use is the one the full side
    nominated."""
    lite_sdp = lite.localDescription
    full_sdp = full.localDescription
    assert lite_sdp is not None and full_sdp is not None
    assert parse_sdp_untrusted(lite_sdp.sdp).ice_lite
    session_level = lite_sdp.sdp.split("\r\nm=")[0] + "\r\n"
    assert "\r\na=ice-lite\r\n" in session_level
    assert "a=ice-lite" not in full_sdp.sdp
    full_ice, lite_ice = full.ice_transport, lite.ice_transport
    assert full_ice is not None and lite_ice is not None
    assert full_ice.role == "controlling" and lite_ice.role == "controlled"
    stats = lite_ice.agent.stats
    assert stats.checks_sent == 0 and stats.consent_requests_sent == 0
    assert stats.role_conflicts == 0
    assert stats.requests_received > 0 and stats.responses_sent > 0
    if nominated:
        selected = lite_ice.agent.selected_pair
        assert selected is not None and selected.nominated
        assert lite_ice.selected_pair is selected


async def echo_forever(channel: RTCDataChannel) -> None:
    async for message in channel:
        await channel.send_message(f"echo: {message}")


async def round_trip(channel: RTCDataChannel, text: str) -> None:
    await channel.send_message(text)
    assert await channel.receive() == f"echo: {text}"


@pytest.mark.parametrize("lite_offers", [True, False], ids=["lite-offers", "full-offers"])
@pytest.mark.parametrize("trickled", [True, False], ids=["trickle", "complete"])
async def test_full_pc_and_lite_pc(lite_offers: bool, trickled: bool) -> None:
    with trio.fail_after(20):
        async with (
            make_pc(0) as full,
            make_pc(1, ice_lite=True) as lite,
            trio.open_nursery() as nursery,
        ):
            offerer, answerer = (lite, full) if lite_offers else (full, lite)
            answerer.ondatachannel = lambda event: nursery.start_soon(echo_forever, event.channel)
            channel = offerer.createDataChannel("chat")
            await connect(offerer, answerer, nursery, trickled=trickled)
            await channel.wait_open()
            for number in range(5):
                await round_trip(channel, f"message {number}")
            lite_ice = lite.ice_transport
            assert lite_ice is not None
            await lite_ice.wait_for(state="completed")
            assert lite.iceConnectionState == "completed"
            assert_lite_session(full, lite)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("restarter", ["full", "lite"])
async def test_ice_restart_from_either_side(restarter: str) -> None:
    with trio.fail_after(20):
        async with (
            make_pc(0) as full,
            make_pc(1, ice_lite=True) as lite,
            trio.open_nursery() as nursery,
        ):
            lite.ondatachannel = lambda event: nursery.start_soon(echo_forever, event.channel)
            channel = full.createDataChannel("chat")
            await connect(full, lite, nursery, trickled=False)
            await channel.wait_open()
            await round_trip(channel, "before")
            lite_ice = lite.ice_transport
            assert lite_ice is not None
            old = lite_ice.getLocalParameters().usernameFragment
            first, second = (full, lite) if restarter == "full" else (lite, full)
            first.restartIce()
            await negotiate(first, second, trickled=False)
            assert lite_ice.getLocalParameters().usernameFragment != old
            # The full side drives the new generation's checks and nominates a pair of it.
            with trio.fail_after(5):
                await lite_ice.wait_until(
                    lambda: (
                        lite_ice.agent.selected_pair is not None
                        and lite_ice.agent.selected_pair in lite_ice.agent.pairs
                    )
                )
            await lite_ice.wait_for(state="completed")
            await round_trip(channel, "after")
            assert_lite_session(full, lite)
            nursery.cancel_scope.cancel()


async def test_two_lite_sides_are_refused() -> None:
    # A lite offer reaching a lite answerer: refused before anything changes.
    async with make_pc(0, ice_lite=True) as a, make_pc(1, ice_lite=True) as b:
        a.createDataChannel("chat")
        await a.setLocalDescription(await a.createOffer())
        offer = a.localDescription
        assert offer is not None and "a=ice-lite" in offer.sdp
        with pytest.raises(InvalidAccessError, match="two ICE-lite agents"):
            await b.setRemoteDescription(offer)
        assert b.signalingState == "stable"
    # A lite answer reaching a lite offerer (a full answerer's answer marked lite, as another
    # lite implementation would send it): refused too.
    async with make_pc(0, ice_lite=True) as a, make_pc(1) as b:
        a.createDataChannel("chat")
        await a.setLocalDescription(await a.createOffer())
        offer = a.localDescription
        assert offer is not None
        await b.setRemoteDescription(offer)
        await b.setLocalDescription(await b.createAnswer())
        answer = b.localDescription
        assert answer is not None and "a=ice-lite" not in answer.sdp
        lite_answer = answer.sdp.replace("t=0 0\r\n", "t=0 0\r\na=ice-lite\r\n")
        with pytest.raises(InvalidAccessError, match="two ICE-lite agents"):
            await a.setRemoteDescription({"type": "answer", "sdp": lite_answer})
        assert a.signalingState == "have-local-offer"


# --- a lite server on one shared UDP port -------------------------------------------------------


@contextlib.asynccontextmanager
async def lite_server_pc(
    server: SharedUdp, nursery: trio.Nursery
) -> AsyncIterator[RTCPeerConnection]:
    """A server connection: lite, on the shared port, echoing every channel the client opens."""
    async with RTCPeerConnection(
        RTCConfiguration(shared_udp=server, ice_lite=True, certificates=(certificate(1),))
    ) as pc:
        pc.ondatachannel = lambda event: nursery.start_soon(echo_forever, event.channel)
        yield pc


async def test_lite_server_on_a_shared_port_with_several_clients() -> None:
    async with open_shared_udp("127.0.0.1") as server:
        (address,) = server.local_addresses
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery, contextlib.AsyncExitStack() as stack:
                clients = []
                for index in range(4):
                    client = await stack.enter_async_context(make_pc(0))
                    lite = await stack.enter_async_context(lite_server_pc(server, nursery))
                    channel = client.createDataChannel(f"client {index}")
                    await connect(client, lite, nursery, trickled=index % 2 == 0)
                    await channel.wait_open()
                    clients.append((client, lite, channel))
                assert server.endpoint_count == 4
                for index, (client, lite, channel) in enumerate(clients):
                    await round_trip(channel, f"hello from {index}")
                    ice = lite.ice_transport
                    assert ice is not None
                    candidates = ice.getLocalCandidates()
                    assert [(c.address, c.port, c.type) for c in candidates] == [(*address, "host")]
                    await ice.wait_for(state="completed")
                    assert_lite_session(client, lite)
                (stats,) = server.stats
                assert stats.addresses_bound == 4 and stats.bind_conflicts == 0
                await clients[1][1].close()
                assert server.endpoint_count == 3
                for index in (0, 2, 3):
                    await round_trip(clients[index][2], f"still here {index}")
                nursery.cancel_scope.cancel()
        assert server.endpoint_count == 0
