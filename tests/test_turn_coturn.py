"""TurnClient against a real coturn on 127.0.0.1 over UDP (driven by a small trio loop here),
and the driver over UDP, TCP and TLS."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from peers.coturn import CoturnServer, run_coturn

from trio_rtc.turn import (
    Allocated,
    AllocationClosed,
    AllocationFailed,
    AllocationRefreshed,
    ChannelBound,
    DataReceived,
    PermissionCreated,
    TurnAllocation,
    TurnAllocationError,
    TurnClient,
    TurnEvent,
    TurnState,
    TurnStats,
    open_turn_allocation,
)

pytestmark = pytest.mark.interop


class Driver:
    """Owns one TurnClient and one UDP socket; ``wait_for`` pumps until an event matches."""

    def __init__(self, client: TurnClient, sock: trio.socket.SocketType) -> None:
        self.client = client
        self.sock = sock
        self.events: list[TurnEvent] = []

    async def flush(self) -> None:
        for datagram in self.client.datagrams_to_send(0.0):
            await self.sock.sendto(datagram, self.client.server)
        while (event := self.client.next_event()) is not None:
            self.events.append(event)

    async def wait_for(self, predicate: Callable[[TurnEvent], bool]) -> TurnEvent:
        while True:
            await self.flush()
            for index, event in enumerate(self.events):
                if predicate(event):
                    return self.events.pop(index)
            deadline = self.client.get_timer()
            with trio.move_on_at(deadline if deadline is not None else trio.current_time() + 1):
                data, source = await self.sock.recvfrom(65536)
                self.client.receive_datagram(data, source, trio.current_time())
                continue
            self.client.handle_timer(trio.current_time())


async def open_driver(coturn: CoturnServer, password: str | None = None) -> Driver:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    client = TurnClient(
        coturn.turn_address, coturn.username, coturn.password if password is None else password
    )
    return Driver(client, sock)


async def test_allocate_relay_and_deallocate(coturn: CoturnServer) -> None:
    driver = await open_driver(coturn)
    client = driver.client
    with (
        driver.sock,
        trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
        trio.fail_after(8),
    ):
        await peer.bind(("127.0.0.1", 0))
        peer_address = peer.getsockname()

        started = time.perf_counter()
        client.allocate(trio.current_time())
        allocated = await driver.wait_for(lambda e: isinstance(e, Allocated))
        elapsed = time.perf_counter() - started
        assert isinstance(allocated, Allocated)
        assert allocated.relayed_address[0] == "127.0.0.1"
        assert coturn.relay_ports[0] <= allocated.relayed_address[1] <= coturn.relay_ports[1]
        assert allocated.mapped_address == driver.sock.getsockname()
        assert allocated.lifetime > 0
        assert client.realm == coturn.realm
        print(f"allocation against coturn took {elapsed * 1000:.1f} ms")

        # Send indication / Data indication path.
        client.create_permission("127.0.0.1", trio.current_time())
        await driver.wait_for(lambda e: isinstance(e, PermissionCreated))
        client.send_to(peer_address, b"hello via Send", trio.current_time())
        await driver.flush()
        data, source = await peer.recvfrom(2048)
        assert data == b"hello via Send"
        assert source == allocated.relayed_address
        await peer.sendto(b"reply via Data", source)
        received = await driver.wait_for(lambda e: isinstance(e, DataReceived))
        assert received == DataReceived(peer_address, b"reply via Data")

        # ChannelData path, with a payload length that is not a multiple of 4.
        number = client.bind_channel(peer_address, trio.current_time())
        bound = await driver.wait_for(lambda e: isinstance(e, ChannelBound))
        assert bound == ChannelBound(peer_address, number)
        client.send_to(peer_address, b"hello via channel", trio.current_time())
        await driver.flush()
        data, _ = await peer.recvfrom(2048)
        assert data == b"hello via channel"
        await peer.sendto(b"reply via channel!", source)
        received = await driver.wait_for(lambda e: isinstance(e, DataReceived))
        assert received == DataReceived(peer_address, b"reply via channel!")

        # Refresh now instead of waiting minutes for the timer.
        client.refresh(trio.current_time())
        refreshed = await driver.wait_for(lambda e: isinstance(e, AllocationRefreshed))
        assert isinstance(refreshed, AllocationRefreshed)
        assert refreshed.lifetime > 0
        assert client.relayed_address == allocated.relayed_address
        assert client.stats == TurnStats()

        client.close(trio.current_time())
        await driver.wait_for(lambda e: isinstance(e, AllocationClosed))
        assert client.state is TurnState.CLOSED


async def test_wrong_password_fails_with_401(coturn: CoturnServer) -> None:
    driver = await open_driver(coturn, password="not the password")
    with driver.sock, trio.fail_after(5):
        driver.client.allocate(trio.current_time())
        failed = await driver.wait_for(lambda e: isinstance(e, AllocationFailed))
        assert isinstance(failed, AllocationFailed)
        assert failed.code == 401
        assert driver.client.state is TurnState.FAILED


async def test_driver_relays_both_ways_and_deallocates(coturn: CoturnServer) -> None:
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer, trio.fail_after(8):
        await peer.bind(("127.0.0.1", 0))
        peer_address = peer.getsockname()
        server, user, password = coturn.turn_address, coturn.username, coturn.password
        async with open_turn_allocation(
            server, user, password, local_host="127.0.0.1"
        ) as allocation:
            relayed = allocation.relayed_address
            assert coturn.relay_ports[0] <= relayed[1] <= coturn.relay_ports[1]
            await allocation.create_permission("127.0.0.1")
            await allocation.create_permission("127.0.0.1")  # already there: returns at once
            allocation.send_to(peer_address, b"ping")
            data, source = await peer.recvfrom(2048)
            assert (data, source) == (b"ping", relayed)
            await peer.sendto(b"pong", relayed)
            assert await allocation.receive() == (peer_address, b"pong")

            number = await allocation.bind_channel(peer_address)
            assert await allocation.bind_channel(peer_address) == number
            for size in (0, 1, 5, 1200):
                allocation.send_to(peer_address, bytes(size))
                data, _ = await peer.recvfrom(2048)
                assert data == bytes(size)
                await peer.sendto(b"x" * size, relayed)
                assert await allocation.receive() == (peer_address, b"x" * size)
            client = allocation.client
        assert client.state is TurnState.CLOSED
        assert client.stats == TurnStats()


async def test_driver_wrong_password_raises_401(coturn: CoturnServer) -> None:
    with trio.fail_after(5), pytest.raises(TurnAllocationError) as info:
        async with open_turn_allocation(
            coturn.turn_address, coturn.username, "wrong", local_host="127.0.0.1"
        ):
            pytest.fail("allocated with a wrong password")
    assert info.value.code == 401


async def _relay_round_trip(allocation: TurnAllocation, coturn: CoturnServer) -> None:
    """Data both ways between the allocation and a UDP peer: Send/Data indications, then a
    channel (whose ChannelData is padded over TCP and TLS), every size."""
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        await peer.bind(("127.0.0.1", 0))
        peer_address = peer.getsockname()
        relayed = allocation.relayed_address
        assert coturn.relay_ports[0] <= relayed[1] <= coturn.relay_ports[1]
        await allocation.create_permission("127.0.0.1")
        allocation.send_to(peer_address, b"ping")
        assert await peer.recvfrom(2048) == (b"ping", relayed)
        await peer.sendto(b"pong", relayed)
        assert await allocation.receive() == (peer_address, b"pong")
        await allocation.bind_channel(peer_address)
        for size in (0, 1, 2, 3, 5, 1200, 4001):
            allocation.send_to(peer_address, bytes([size & 0xFF]) * size)
            data, _ = await peer.recvfrom(8192)
            assert data == bytes([size & 0xFF]) * size
            await peer.sendto(b"x" * size, relayed)
            assert await allocation.receive() == (peer_address, b"x" * size)


async def test_allocation_over_tcp_relays_and_deallocates(coturn: CoturnServer) -> None:
    """turn:…?transport=tcp (RFC 8656 §3.1): the messages to the server share one TCP
    connection, requests go once, the relay is UDP."""
    with trio.fail_after(10):
        async with open_turn_allocation(
            coturn.turn_address,
            coturn.username,
            coturn.password,
            local_host="127.0.0.1",
            transport="tcp",
        ) as allocation:
            assert allocation.transport == "tcp"
            await _relay_round_trip(allocation, coturn)
            client = allocation.client
        assert client.state is TurnState.CLOSED
        assert client.stats == TurnStats() and allocation.dropped_sends == 0


async def test_allocation_over_tls_checks_the_certificate(tmp_path: Path) -> None:
    """turns: (TLS over TCP): the server's certificate is checked against the trust given
    (here the test's self-signed one) and the URL's host; an untrusted one fails the
    handshake before anything is sent."""
    async with run_coturn(tmp_path, tls=True) as coturn:
        assert coturn.tls_address is not None and coturn.certificate_path is not None
        trust = ssl.create_default_context(cafile=str(coturn.certificate_path))
        with trio.fail_after(10):
            async with open_turn_allocation(
                coturn.tls_address,
                coturn.username,
                coturn.password,
                local_host="127.0.0.1",
                transport="tls",
                server_name="127.0.0.1",
                ssl_context=trust,
            ) as allocation:
                assert allocation.transport == "tls"
                await _relay_round_trip(allocation, coturn)
                client = allocation.client
            assert client.state is TurnState.CLOSED
        with trio.fail_after(10), pytest.raises(trio.BrokenResourceError):
            async with open_turn_allocation(
                coturn.tls_address,
                coturn.username,
                coturn.password,
                local_host="127.0.0.1",
                transport="tls",
                server_name="127.0.0.1",
                ssl_context=ssl.create_default_context(),  # the system's roots only
            ):
                pytest.fail("allocated through an untrusted certificate")


async def test_tcp_allocation_ends_when_the_server_goes(tmp_path: Path) -> None:
    """The allocation lives on its connection (RFC 8656 §3.1): when the server closes it,
    receive() raises instead of waiting forever."""
    with trio.fail_after(15):
        async with run_coturn(tmp_path) as coturn:
            allocation_cm = open_turn_allocation(
                coturn.turn_address,
                coturn.username,
                coturn.password,
                local_host="127.0.0.1",
                transport="tcp",
                close_timeout=0.2,
            )
            allocation = await allocation_cm.__aenter__()
            try:
                os.kill(coturn.pid, signal.SIGKILL)
                with pytest.raises(TurnAllocationError):
                    while True:
                        await allocation.receive()
                assert allocation.client.state is TurnState.FAILED
            finally:
                await allocation_cm.__aexit__(None, None, None)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_cancelled_allocation_leaves_no_socket_or_task(
    tmp_path: Path, transport: str
) -> None:
    """Cancelled at any point (connecting, in the TLS handshake, allocating, allocated), an
    allocation leaves no file descriptor behind (its tasks end with its block, by
    structure)."""
    async with run_coturn(tmp_path, tls=transport == "tls") as coturn:
        address = coturn.tls_address if transport == "tls" else coturn.turn_address
        assert address is not None
        trust = (
            ssl.create_default_context(cafile=str(coturn.certificate_path))
            if coturn.certificate_path is not None
            else None
        )
        fds_before = len(os.listdir("/proc/self/fd"))
        for delay in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05):
            with trio.move_on_after(delay):
                async with open_turn_allocation(
                    address,
                    coturn.username,
                    coturn.password,
                    local_host="127.0.0.1",
                    transport=transport,  # type: ignore[arg-type]
                    server_name="127.0.0.1",
                    ssl_context=trust,
                    close_timeout=0.2,
                ):
                    await trio.sleep_forever()
        assert len(os.listdir("/proc/self/fd")) == fds_before
