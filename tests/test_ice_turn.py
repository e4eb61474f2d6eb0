"""Relay candidates from a real coturn: an ICE transport that may only use TURN (the W3C
iceTransportPolicy "relay") connects to a peer on 127.0.0.1 through the relay."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
from ice_helpers import connect_pair
from peers.coturn import CoturnServer, run_coturn

from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport

pytestmark = pytest.mark.interop


async def exchange(a: RTCIceTransport, b: RTCIceTransport, count: int) -> None:
    """``count`` datagrams each way on the selected pair (first bytes in the DTLS range, so
    they reach the DTLS channel), all arriving."""
    for i in range(count):
        assert a.send(bytes([23]) + b"a->b %d" % i)
        assert b.send(bytes([23]) + b"b->a %d" % i)
    got_b = {await b.dtls_receive_channel.receive() for _ in range(count)}
    got_a = {await a.dtls_receive_channel.receive() for _ in range(count)}
    assert got_b == {bytes([23]) + b"a->b %d" % i for i in range(count)}
    assert got_a == {bytes([23]) + b"b->a %d" % i for i in range(count)}


def turn_server(coturn: CoturnServer, password: str | None = None) -> dict[str, str]:
    host, port = coturn.turn_address
    return {
        "urls": f"turn:{host}:{port}?transport=udp",
        "username": coturn.username,
        "credential": password or coturn.password,
    }


@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "non-trickle"])
async def test_relay_only_transport_connects_through_coturn(
    coturn: CoturnServer, trickle: bool
) -> None:
    relay_only = IceTransportOptions(interfaces=["127.0.0.1"], relay_only=True)
    direct = IceTransportOptions(interfaces=["127.0.0.1"])
    with trio.fail_after(15):
        async with (
            RTCIceTransport(iceServers=[turn_server(coturn)], options=relay_only) as a,
            RTCIceTransport(options=direct) as b,
        ):
            await connect_pair(a, b, trickle=trickle)
            assert [c.type for c in a.getLocalCandidates()] == ["relay"]
            relay = a.getLocalCandidates()[0]
            assert relay.relatedAddress == "127.0.0.1"  # the mapped address coturn saw
            assert relay.url is not None and relay.url.startswith("turn:")
            assert relay.relayProtocol == "udp"
            assert relay.port in range(coturn.relay_ports[0], coturn.relay_ports[1] + 1)
            pair = a.getSelectedCandidatePair()
            assert pair is not None and pair.local.type == "relay"
            # Data both ways through the relay (first bytes in the DTLS range).
            await exchange(a, b, 20)


async def test_wrong_turn_credentials_report_icecandidateerror(coturn: CoturnServer) -> None:
    options = IceTransportOptions(interfaces=["127.0.0.1"], relay_only=True)
    errors = []
    with trio.fail_after(15):
        async with RTCIceTransport(
            iceServers=[turn_server(coturn, password="wrong")], options=options
        ) as transport:
            transport.onicecandidateerror = errors.append
            transport.gather()
            await transport.wait_gathering_complete()
    assert transport.getLocalCandidates() == []
    assert [e.errorCode for e in errors] == [401]
    assert errors[0].url.startswith("turn:")


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_relay_over_each_transport_to_the_server_binds_channels(
    tmp_path: Path, transport: str
) -> None:
    """turn: over UDP, turn:?transport=tcp and turns: (TLS, its certificate checked with the
    trust given in ``turn_tls_context``) each give a relay candidate that connects; its
    ``relayProtocol`` says which, and the relay sends to the peer through a bound channel
    (ChannelData) rather than Send indications."""
    async with run_coturn(tmp_path, tls=transport == "tls") as coturn:
        host, port = coturn.turn_address
        url = {
            "udp": f"turn:{host}:{port}",
            "tcp": f"turn:{host}:{port}?transport=tcp",
            "tls": f"turns:{host}:{coturn.tls_address[1] if coturn.tls_address else 0}",
        }[transport]
        trust = (
            ssl.create_default_context(cafile=str(coturn.certificate_path))
            if coturn.certificate_path is not None
            else None
        )
        relay_only = IceTransportOptions(
            interfaces=["127.0.0.1"], relay_only=True, turn_tls_context=trust
        )
        server = {"urls": url, "username": coturn.username, "credential": coturn.password}
        with trio.fail_after(15):
            async with (
                RTCIceTransport(iceServers=[server], options=relay_only) as a,
                RTCIceTransport(options=IceTransportOptions(interfaces=["127.0.0.1"])) as b,
            ):
                await connect_pair(a, b, trickle=True)
                [relay] = a.getLocalCandidates()
                assert relay.type == "relay" and relay.url == url
                assert relay.relayProtocol == transport
                await exchange(a, b, 20)
                pair = a.getSelectedCandidatePair()
                assert pair is not None
                sender = a._endpoints[(relay.address, relay.port)]
                client = sender._allocation.client  # type: ignore[union-attr]
                assert client.channel_for((pair.remote.address, pair.remote.port)) is not None


async def test_a_tcp_turn_server_is_not_asked_for_a_binding_over_udp(coturn: CoturnServer) -> None:
    """turn:…?transport=tcp is not a STUN server over UDP (its UDP port may be closed, and an
    unanswered Binding would fire a false icecandidateerror): only a UDP turn: one is."""
    host, port = coturn.turn_address
    server = {
        "urls": f"turn:{host}:{port}?transport=tcp",
        "username": coturn.username,
        "credential": coturn.password,
    }
    with trio.fail_after(15):
        async with RTCIceTransport(
            iceServers=[server], options=IceTransportOptions(interfaces=["127.0.0.1"])
        ) as transport:
            errors = []
            transport.onicecandidateerror = errors.append
            transport.gather()
            await transport.wait_gathering_complete()
            assert errors == []
            assert transport.agent.stun_servers == []
            assert sorted(c.type for c in transport.getLocalCandidates()) == ["host", "relay"]


async def test_ipv6_relay_candidate_from_an_ipv6_turn_server(tmp_path: Path) -> None:
    """On IPv6 only (no IPv4 address to allocate from), a turn: server reached over IPv6
    gives an IPv6 relay candidate (REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.1) that connects to
    an IPv6 peer."""
    async with run_coturn(tmp_path, ipv6=True) as coturn:
        assert coturn.turn_address_v6 is not None
        host, port = coturn.turn_address_v6
        server = {
            "urls": f"turn:[{host}]:{port}",
            "username": coturn.username,
            "credential": coturn.password,
        }
        relay_only = IceTransportOptions(interfaces=["::1"], relay_only=True)
        with trio.fail_after(15):
            async with (
                RTCIceTransport(iceServers=[server], options=relay_only) as a,
                RTCIceTransport(options=IceTransportOptions(interfaces=["::1"])) as b,
            ):
                await connect_pair(a, b, trickle=True)
                [relay] = a.getLocalCandidates()
                assert relay.type == "relay" and relay.address == "::1"
                assert relay.port in range(coturn.relay_ports[0], coturn.relay_ports[1] + 1)
                await exchange(a, b, 10)
