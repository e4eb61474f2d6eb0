"""Server mode (docs/server-mode.md): many peer connections on one shared UDP port.

The router core byte by byte (ufrag, transaction and address routing, binding only after an
authenticated check, bounded tables), then real peer connections over UDP on 127.0.0.1: N
answering pcs on one shared port, each with its own data channel echo and no message crossing to
another; a spoofing socket; one pc closing among others; the port closing at the end.
100 pairs by default (about 1 s on the 2-core reference machine);
``TRIO_RTC_SHARED_PEERS=500`` runs the issue's 500 (about 13 s there, at load 2)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from ice_helpers import connect_pair
from pc_helpers import connect, make_pc, negotiate

from trio_rtc import RTCConfiguration, RTCDataChannel, RTCPeerConnection
from trio_rtc.exceptions import InvalidAccessError, InvalidModificationError
from trio_rtc.ice.mux import (
    ENDPOINT_QUEUE_DEPTH,
    MuxRouter,
    SharedUdp,
    local_ufrag_untrusted,
    open_shared_udp,
)
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.stun import Attr, MessageClass, Method, StunMessage
from trio_rtc.testing import VirtualNetwork

PEERS = int(os.environ.get("TRIO_RTC_SHARED_PEERS", "100"))
A = ("192.0.2.1", 1000)
B = ("192.0.2.2", 2000)
DTLS = b"\x16\xfe\xfd" + bytes(20)


def check(local_ufrag: str, *, password: str = "password-of-the-server-side") -> bytes:
    request = StunMessage.request(Method.BINDING)
    request.attributes[Attr.USERNAME] = f"{local_ufrag}:remote"
    request.attributes[Attr.ICE_CONTROLLING] = 1
    return request.encode(key=password.encode(), fingerprint=True)


def success_to(request: bytes) -> bytes:
    response = StunMessage(Method.BINDING, MessageClass.SUCCESS, request[8:20], {})
    return response.encode()


# --- the core --------------------------------------------------------------------------------


def test_local_ufrag_of_a_binding_request() -> None:
    assert local_ufrag_untrusted(check("abcd")) == "abcd"
    assert local_ufrag_untrusted(success_to(check("abcd"))) is None
    assert local_ufrag_untrusted(check("abcd")[:30]) is None
    assert local_ufrag_untrusted(b"") is None


@given(st.binary(max_size=120))
def test_local_ufrag_of_anything_never_raises(data: bytes) -> None:
    result = local_ufrag_untrusted(data)
    assert result is None or isinstance(result, str)
    router: MuxRouter[str] = MuxRouter()
    router.add_owner("x")
    router.add_ufrag("x", "u")
    assert router.route_untrusted(data, A) in (None, "x")


def test_checks_go_by_ufrag_and_data_only_after_a_verified_check() -> None:
    router: MuxRouter[str] = MuxRouter()
    for owner, ufrag in (("one", "u1"), ("two", "u2")):
        router.add_owner(owner)
        router.add_ufrag(owner, ufrag)
    assert router.route_untrusted(check("u1"), A) == "one"
    assert router.route_untrusted(check("u2"), A) == "two"
    assert router.route_untrusted(check("nobody"), A) is None
    assert router.stats.dropped_unknown_ufrag == 1
    # Data from A before "one" answered A's check: nobody's.
    assert router.route_untrusted(DTLS, A) is None
    assert router.stats.dropped_unknown_source == 1
    # "one"'s agent verified A's check and answers it: A is bound to "one".
    router.on_send("one", success_to(check("u1")), A)
    assert router.route_untrusted(DTLS, A) == "one"
    assert router.route_untrusted(DTLS, B) is None


def test_responses_go_by_transaction() -> None:
    router: MuxRouter[str] = MuxRouter()
    router.add_owner("one")
    router.add_owner("two")
    ours = check("peer-ufrag")
    router.on_send("two", ours, A)
    assert router.route_untrusted(success_to(ours), A) == "two"
    # Answered once; a duplicate (or a guess) is nobody's.
    assert router.route_untrusted(success_to(ours), A) is None
    assert router.route_untrusted(success_to(check("x")), A) is None
    assert router.stats.dropped_unknown_transaction == 2


def test_a_spoofed_address_is_not_taken_from_its_owner() -> None:
    """A peer sending a valid check of its own session from another peer's address (spoofed)
    gets its check answered, but the address stays routed to the connection that owns it."""
    router: MuxRouter[str] = MuxRouter()
    router.add_owner("victim")
    router.add_owner("attacker")
    router.on_send("victim", success_to(check("v")), A)
    router.on_send("attacker", success_to(check("a")), A)
    assert router.owner_for_address(A) == "victim"
    assert router.stats.bind_conflicts == 1
    router.on_send("attacker", DTLS, A)
    assert router.route_untrusted(DTLS, A) == "victim"
    # Once the owner has left, the address can be bound again.
    router.remove_owner("victim")
    assert router.route_untrusted(DTLS, A) is None
    router.on_send("attacker", success_to(check("a")), A)
    assert router.route_untrusted(DTLS, A) == "attacker"


def test_tables_are_bounded_and_emptied() -> None:
    router: MuxRouter[str] = MuxRouter(
        max_ufrags_per_owner=2, max_addresses_per_owner=3, max_transactions=10
    )
    router.add_owner("one")
    for index in range(5):
        router.add_ufrag("one", f"u{index}")
        router.on_send("one", DTLS, ("192.0.2.9", 100 + index))
    for _ in range(20):
        router.on_send("one", check("peer"), A)
    assert router.table_sizes == (2, 3, 10)
    assert router.owner_for_ufrag("u4") == "one"
    assert router.owner_for_ufrag("u0") is None
    router.remove_owner("one")
    assert router.table_sizes[:2] == (0, 0)
    # Transactions of a removed owner are forgotten lazily: a response to one is dropped.
    assert router.route_untrusted(success_to(check("x")), A) is None


def test_a_ufrag_collision_is_refused() -> None:
    router: MuxRouter[str] = MuxRouter()
    router.add_owner("one")
    router.add_owner("two")
    router.add_ufrag("one", "same")
    router.add_ufrag("two", "same")
    assert router.owner_for_ufrag("same") == "one"


# --- real peer connections ---------------------------------------------------------------------


def test_configuration_checks() -> None:
    with pytest.raises(TypeError, match="shared_udp"):
        RTCConfiguration.coerce({"shared_udp": "0.0.0.0:3478"})


async def test_open_shared_udp_refuses_wildcards() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        async with open_shared_udp("0.0.0.0"):
            pass
    with pytest.raises(ValueError, match="numeric"):
        async with open_shared_udp("localhost"):
            pass


Pair = tuple[RTCPeerConnection, RTCPeerConnection, RTCDataChannel, list[str]]


@contextlib.asynccontextmanager
async def echo_pair(server: SharedUdp, index: int, nursery: trio.Nursery) -> AsyncIterator[Pair]:
    """A client pc with sockets of its own and a server pc on the shared port whose channel
    echoes every message prefixed with the server pc's index (and lists what it received)."""
    async with make_pc(0) as client, make_pc(1, shared_udp=server) as answerer:
        seen: list[str] = []

        async def echo(channel: RTCDataChannel) -> None:
            async for message in channel:
                assert isinstance(message, str)
                seen.append(message)
                await channel.send_message(f"{index}:{message}")

        answerer.ondatachannel = lambda event: nursery.start_soon(echo, event.channel)
        channel = client.createDataChannel(f"peer {index}")
        await connect(client, answerer, nursery, trickled=False)
        await channel.wait_open()
        yield client, answerer, channel, seen


async def round_trip(channel: RTCDataChannel, index: int, count: int = 3) -> None:
    for number in range(count):
        await channel.send_message(f"from {index} #{number}")
        assert await channel.receive() == f"{index}:from {index} #{number}"


async def test_many_peers_on_one_port_each_with_its_own_traffic() -> None:
    async with open_shared_udp("127.0.0.1") as server:
        (address,) = server.local_addresses
        pairs: dict[int, Pair] = {}
        with trio.fail_after(max(120, PEERS // 2)):
            async with trio.open_nursery() as nursery:
                joined, done, left = trio.Event(), trio.Event(), trio.Event()
                gone: list[int] = []

                async def peer(index: int) -> None:
                    # Each pair lives in a task of its own (a pc's nursery belongs to its task).
                    async with echo_pair(server, index, nursery) as pair:
                        pairs[index] = pair
                        if len(pairs) == PEERS:
                            joined.set()
                        await done.wait()
                    gone.append(index)
                    if len(gone) == PEERS:
                        left.set()

                for index in range(PEERS):
                    nursery.start_soon(peer, index)
                await joined.wait()
                assert server.endpoint_count == PEERS
                # Every server pc has the shared port as its one host candidate.
                for _client, answerer, _channel, _seen in pairs.values():
                    ice = answerer.ice_transport
                    assert ice is not None
                    assert [(c.address, c.port) for c in ice.getLocalCandidates()] == [address]
                async with trio.open_nursery() as traffic:
                    for index, (_client, _answerer, channel, _seen) in pairs.items():
                        traffic.start_soon(round_trip, channel, index)
                for index, (_client, _answerer, _channel, seen) in pairs.items():
                    assert seen == [f"from {index} #{n}" for n in range(3)]
                (stats,) = server.stats
                assert stats.addresses_bound == PEERS
                assert stats.bind_conflicts == 0
                assert stats.dropped_overflow == 0
                done.set()
                await left.wait()
                nursery.cancel_scope.cancel()  # the echo tasks
        assert server.endpoint_count == 0
        assert server.routers()[0].table_sizes[:2] == (0, 0)


async def test_a_spoofing_socket_reaches_no_connection() -> None:
    async with open_shared_udp("127.0.0.1") as server, trio.open_nursery() as nursery:
        (address,) = server.local_addresses
        (router,) = server.routers()
        async with echo_pair(server, 0, nursery) as (_client, answerer, channel, _seen):
            ice = answerer.ice_transport
            assert ice is not None
            ufrag = ice.getLocalParameters().usernameFragment
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rogue:
                rogue.bind(("127.0.0.1", 0))
                source = rogue.getsockname()
                # Data from an address that never passed a check.
                rogue.sendto(DTLS, address)
                # A check for the server pc's ufrag with the wrong password: routed to the pc,
                # whose agent rejects it, so the address is not bound ...
                bad_integrity = ice.agent.stats.stun_bad_integrity
                rogue.sendto(check(ufrag, password="not-the-password"), address)
                # ... and the data that follows is dropped too.
                rogue.sendto(DTLS, address)
                await trio.sleep(0.1)
                assert ice.agent.stats.stun_bad_integrity == bad_integrity + 1
                assert router.owner_for_address(source) is None
                assert router.stats.dropped_unknown_source >= 2
                assert not ice.agent.is_trusted_source(source)
            await round_trip(channel, 0)
        nursery.cancel_scope.cancel()


async def test_one_closing_leaves_the_others_working() -> None:
    async with open_shared_udp("127.0.0.1") as server, trio.open_nursery() as nursery:
        (router,) = server.routers()
        async with contextlib.AsyncExitStack() as stack:
            pairs = [
                await stack.enter_async_context(echo_pair(server, i, nursery)) for i in range(3)
            ]
            leaving = pairs[1][1]
            ice = leaving.ice_transport
            assert ice is not None
            ufrag = ice.getLocalParameters().usernameFragment
            assert router.owner_for_ufrag(ufrag) is not None
            await leaving.close()
            assert server.endpoint_count == 2
            assert router.owner_for_ufrag(ufrag) is None
            with trio.fail_after(10):
                await round_trip(pairs[0][2], 0)
                await round_trip(pairs[2][2], 2)
        nursery.cancel_scope.cancel()


async def test_ice_restart_on_a_shared_port() -> None:
    async with open_shared_udp("127.0.0.1") as server, trio.open_nursery() as nursery:
        (router,) = server.routers()
        async with echo_pair(server, 0, nursery) as (client, answerer, channel, _seen):
            ice = answerer.ice_transport
            assert ice is not None
            old = ice.getLocalParameters().usernameFragment
            with trio.fail_after(10):
                client.restartIce()
                await negotiate(client, answerer, trickled=False)
                new = ice.getLocalParameters().usernameFragment
                assert new != old
                assert router.owner_for_ufrag(new) is router.owner_for_ufrag(old) is not None
                # The new generation's checks reach the server pc and a pair is nominated.
                await trio.sleep(0.7)
                await round_trip(channel, 0)
        nursery.cancel_scope.cancel()


async def test_the_port_closes_after_the_last_pc_and_the_block() -> None:
    async with open_shared_udp("127.0.0.1") as server, trio.open_nursery() as nursery:
        (address,) = server.local_addresses
        async with echo_pair(server, 0, nursery) as (_client, answerer, channel, _seen):
            await round_trip(channel, 0)
            assert answerer.getConfiguration()["shared_udp"] is server
            with pytest.raises(InvalidModificationError):
                answerer.setConfiguration(RTCConfiguration(shared_udp=await_other()))
        assert server.endpoint_count == 0
        # Still bound while the block runs.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            with pytest.raises(OSError):
                probe.bind(address)
        nursery.cancel_scope.cancel()
    assert server.closed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(address)  # the port is free again
    with pytest.raises(OSError):
        await server.open_endpoint("127.0.0.1", "ufrag")
    with pytest.raises(InvalidAccessError):
        RTCConfiguration.coerce({"shared_udp": server})


def await_other() -> SharedUdp:
    """Another (never opened) server object, for the setConfiguration check."""
    return SharedUdp([])


# --- over the virtual network, where a test can forge source addresses ------------------------


async def test_a_forged_source_address_takes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two clients reach two ICE transports on one shared port. A third party forges datagrams
    with client one's address: data is delivered to client one's connection only (as UDP must),
    a check that is valid for the forger's own session does not move client one's address to
    it, and data from a forged address that passed no check reaches nobody."""
    server_host, one_host, two_host = "198.51.100.1", "198.51.100.2", "198.51.100.3"
    async with (
        VirtualNetwork(seed=3) as net,
        open_shared_udp(server_host, 3478) as server,
    ):
        (router,) = server.routers()
        shared_options = IceTransportOptions(shared_udp=server, mdns=False)
        async with (
            RTCIceTransport(options=IceTransportOptions(interfaces=[one_host], mdns=False)) as one,
            RTCIceTransport(options=IceTransportOptions(interfaces=[two_host], mdns=False)) as two,
            RTCIceTransport(options=shared_options) as serves_one,
            RTCIceTransport(options=shared_options) as serves_two,
        ):
            with trio.fail_after(10):
                await connect_pair(one, serves_one, trickle=False)
                await connect_pair(two, serves_two, trickle=False)
            pair = one.selected_pair
            assert pair is not None
            one_address = pair.base
            assert router.owner_for_address(one_address) is not None
            owner = router.owner_for_address(one_address)
            # Client two's owner forges a valid check of its own session from one's address.
            params = serves_two.getLocalParameters()
            forged = StunMessage.request(Method.BINDING)
            forged.attributes[Attr.USERNAME] = f"{params.usernameFragment}:x"
            forged.attributes[Attr.ICE_CONTROLLING] = 1
            forged.attributes[Attr.PRIORITY] = 1
            check_bytes = forged.encode(key=params.password.encode(), fingerprint=True)
            accepted = serves_two.agent.stats.requests_received
            net._transmit(one_address, check_bytes, (server_host, 3478))  # forged source
            await trio.sleep(0.1)
            # A valid check (its own consent checks may land in the same 0.1 s: at least one).
            assert serves_two.agent.stats.requests_received >= accepted + 1
            assert router.stats.bind_conflicts >= 1
            assert router.owner_for_address(one_address) is owner
            # Data from one's (real or forged) address still reaches serves_one only.
            one.send(b"\x17from one")
            with trio.fail_after(1):
                assert await serves_one.dtls_receive_channel.receive() == b"\x17from one"
            # Data from an address that never passed a check reaches nobody.
            dropped = router.stats.dropped_unknown_source
            net._transmit(("198.51.100.9", 4000), b"\x17forged", (server_host, 3478))
            await trio.sleep(0.1)
            assert router.stats.dropped_unknown_source == dropped + 1
            two.send(b"\x17from two")
            with trio.fail_after(1):
                assert await serves_two.dtls_receive_channel.receive() == b"\x17from two"


async def test_endpoint_queue_close_and_drops(autojump_clock: trio.testing.MockClock) -> None:
    """A virtual endpoint behaves like a socket: a full queue drops (counted), close wakes a
    waiting reader with ClosedResourceError, and a closed endpoint refuses to send."""
    async with VirtualNetwork(seed=1) as net, open_shared_udp("198.51.100.1", 5000) as server:
        endpoint = await server.open_endpoint("198.51.100.1", "ufrag")
        (router,) = server.routers()
        router.on_send(endpoint, DTLS, B)  # as if its agent had authenticated B
        for _ in range(ENDPOINT_QUEUE_DEPTH + 10):
            net._transmit(B, DTLS, ("198.51.100.1", 5000))
        await trio.sleep(0.01)
        assert len(endpoint.recv_batch_nowait(10_000)) == ENDPOINT_QUEUE_DEPTH
        assert endpoint.stats.receive_drops == 10 == router.stats.dropped_overflow

        async def close_later() -> None:
            await trio.sleep(1)
            endpoint.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_later)
            with pytest.raises(trio.ClosedResourceError):
                await endpoint.wait_readable()
        with pytest.raises(trio.ClosedResourceError):
            endpoint.send_nowait(DTLS, B)
        assert server.endpoint_count == 0
        assert router.owner_for_address(B) is None
