"""UdpRelay: impairments over real loopback sockets, NAT-like mappings, cleanup."""

from __future__ import annotations

import os

import pytest
import trio
import trio.lowlevel

from trio_rtc.testing import LinkConditions, UdpRelay
from trio_rtc.udp import UdpEndpoint, open_udp_endpoint


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def echo(server: UdpEndpoint) -> None:
    while True:
        await server.wait_readable()
        for data, source in server.recv_batch_nowait(256):
            server.send_nowait(data, source)


async def receive_until_quiet(endpoint: UdpEndpoint, quiet: float = 0.3) -> list[bytes]:
    got: list[bytes] = []
    while True:
        with trio.move_on_after(quiet) as scope:
            await endpoint.wait_readable()
        if scope.cancelled_caught:
            return got
        got.extend(data for data, _ in endpoint.recv_batch_nowait(1024))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_traffic_crosses_with_loss_and_replies_return(host: str) -> None:
    before = open_fds()
    with await open_udp_endpoint(host) as server, await open_udp_endpoint(host) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo, server)
            async with UdpRelay(
                server.local_address,
                conditions=LinkConditions(loss=0.2),
                reverse_conditions=LinkConditions(),
                seed=5,
                host=host,
            ) as relay:
                for i in range(1000):
                    client.send_nowait(i.to_bytes(4, "big"), relay.address)
                    if i % 100 == 99:
                        await trio.lowlevel.checkpoint()  # let the relay and the echo keep up
                with trio.fail_after(10):
                    replies = await receive_until_quiet(client)
                numbers = [int.from_bytes(r, "big") for r in replies]
                assert numbers == sorted(numbers)
                assert relay.forward_stats.sent == 1000
                assert relay.forward_stats.dropped_loss == 1000 - len(replies)
                assert 150 < relay.forward_stats.dropped_loss < 250
                assert relay.reverse_stats.delivered == len(replies)
                # The server saw the relay's outward address, never the client's.
                assert list(relay.mappings) == [client.local_address]
                assert server.stats.datagrams_received == len(replies)
            nursery.cancel_scope.cancel()
    assert open_fds() == before


async def test_delay_both_ways_and_one_mapping_per_client() -> None:
    with (
        await open_udp_endpoint("127.0.0.1") as server,
        await open_udp_endpoint("127.0.0.1") as first,
        await open_udp_endpoint("127.0.0.1") as second,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo, server)
            async with UdpRelay(
                server.local_address, conditions=LinkConditions(delay=0.05)
            ) as relay:
                start = trio.current_time()
                first.send_nowait(b"one", relay.address)
                second.send_nowait(b"two", relay.address)
                with trio.fail_after(5):
                    assert await first.recv_batch() == [(b"one", relay.address)]
                    assert await second.recv_batch() == [(b"two", relay.address)]
                assert trio.current_time() - start >= 0.1
                mappings = relay.mappings
                assert set(mappings) == {first.local_address, second.local_address}
                assert len(set(mappings.values())) == 2
            nursery.cancel_scope.cancel()


async def test_filtering_blocking_and_client_limit() -> None:
    with (
        await open_udp_endpoint("127.0.0.1") as server,
        await open_udp_endpoint("127.0.0.1") as client,
        await open_udp_endpoint("127.0.0.1") as stranger,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo, server)
            async with UdpRelay(server.local_address, max_clients=1) as relay:
                client.send_nowait(b"a", relay.address)
                with trio.fail_after(5):
                    assert await client.recv_batch() == [(b"a", relay.address)]
                # Only the target may answer through a mapping.
                stranger.send_nowait(b"spoof", relay.mappings[client.local_address])
                # A second client exceeds max_clients.
                stranger.send_nowait(b"b", relay.address)
                relay.block("reverse")
                client.send_nowait(b"c", relay.address)
                await trio.sleep(0.1)
                assert client.recv_batch_nowait() == []
                assert relay.filtered == 1
                assert relay.rejected == 1
                assert relay.reverse_stats.dropped_blocked == 1
                relay.unblock()
                relay.set_conditions(LinkConditions(loss=1.0), direction="forward")
                client.send_nowait(b"d", relay.address)
                await trio.sleep(0.05)
                assert relay.forward_stats.dropped_loss == 1
                relay.set_conditions(LinkConditions())
                client.send_nowait(b"e", relay.address)
                with trio.fail_after(5):
                    assert await client.recv_batch() == [(b"e", relay.address)]
            nursery.cancel_scope.cancel()


async def test_relay_cleanup_frees_its_port() -> None:
    before = open_fds()
    with await open_udp_endpoint("127.0.0.1") as client:
        relay = UdpRelay(("127.0.0.1", 9), conditions=LinkConditions(delay=1.0))
        with pytest.raises(RuntimeError):
            _ = relay.address
        async with relay:
            client.send_nowait(b"pending", relay.address)
            await trio.sleep(0.05)
            assert len(relay.mappings) == 1
            address = relay.address
        # Port free again: nothing left bound.
        with await open_udp_endpoint(*address):
            pass
    assert open_fds() == before
