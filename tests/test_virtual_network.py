"""The in-memory network under MockClock: loss, delay, jitter, reordering, duplication, blocking."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

from trio_rtc.testing import (
    LinkConditions,
    VirtualEndpoint,
    VirtualNetwork,
    virtual_network,
)
from trio_rtc.udp import SocketUdpEndpoint, UdpEndpoint, open_udp_endpoint

A = "198.51.100.1"
B = "198.51.100.2"


def seq(n: int) -> bytes:
    return n.to_bytes(4, "big")


async def collect(endpoint: UdpEndpoint, quiet: float = 1.0) -> list[tuple[float, int]]:
    """(arrival time, sequence number) of everything arriving until *quiet* seconds pass idle."""
    got: list[tuple[float, int]] = []
    while True:
        with trio.move_on_after(quiet) as scope:
            await endpoint.wait_readable()
        if scope.cancelled_caught:
            return got
        now = trio.current_time()
        got.extend((now, int.from_bytes(d[:4], "big")) for d, _ in endpoint.recv_batch_nowait(4096))


async def blast(
    conditions: LinkConditions, count: int, *, seed: int = 0, spacing: float = 0.0
) -> tuple[list[tuple[float, int]], VirtualNetwork]:
    """Send *count* numbered datagrams A -> B over a network with *conditions*."""
    async with VirtualNetwork(seed=seed, conditions=conditions) as net:
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B, 5000)
        async with trio.open_nursery() as nursery:
            result: list[list[tuple[float, int]]] = []

            async def receive() -> None:
                result.append(await collect(b))

            nursery.start_soon(receive)
            for i in range(count):
                a.send_nowait(seq(i), b.local_address)
                if spacing:
                    await trio.sleep(spacing)
        return result[0], net


async def test_endpoints_are_virtual_and_zero_delay_is_immediate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with VirtualNetwork() as net:
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint("2001:DB8::1", 7)
        c = await open_udp_endpoint("2001:db8::2")
        assert isinstance(a, VirtualEndpoint)
        assert a.local_address == (A, 49152)
        assert b.local_address == ("2001:db8::1", 7)
        assert a.send_nowait(b"hello", (A, 49152))  # to itself
        assert a.recv_batch_nowait() == [(b"hello", (A, 49152))]
        assert c.send_nowait(bytearray(b"v6"), ("2001:DB8:0::1", 7))
        assert b.recv_batch_nowait() == [(b"v6", c.local_address)]
        assert b.recv_batch_nowait() == []
        with pytest.raises(ValueError):
            a.send_nowait(b"x", ("2001:db8::1", 7))
        with pytest.raises(ValueError):
            a.send_nowait(b"x", ("example.com", 7))
        assert not a.send_nowait(bytes(70000), a.local_address)
        assert a.stats.send_drops == 1
        assert net.stats.delivered == 2
        assert trio.current_time() == 0


async def test_loss_rate_over_10000(autojump_clock: trio.testing.MockClock) -> None:
    got, net = await blast(LinkConditions(loss=0.2), 10_000, seed=7)
    assert 0.18 < 1 - len(got) / 10_000 < 0.22
    assert net.stats.dropped_loss == 10_000 - len(got)
    assert net.stats.dropped == net.stats.dropped_loss
    assert net.stats.delivered == len(got)
    assert [n for _, n in got] == sorted(n for _, n in got)


async def test_delay_is_exact(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork(conditions=LinkConditions(delay=0.05)) as net:
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B)
        await trio.sleep(1.0)
        start = trio.current_time()
        a.send_nowait(b"x", b.local_address)
        assert b.recv_batch_nowait() == []
        assert net.in_flight == 1
        await b.wait_readable()
        assert trio.current_time() == start + 0.05
        assert b.recv_batch_nowait() == [(b"x", a.local_address)]
        # The reverse direction has the same default delay.
        b.send_nowait(b"y", a.local_address)
        assert await a.recv_batch() == [(b"y", b.local_address)]
        assert trio.current_time() == start + 0.1


async def test_jitter_reorders(autojump_clock: trio.testing.MockClock) -> None:
    got, _net = await blast(LinkConditions(delay=0.01, jitter=0.02), 200, spacing=0.001)
    order = [n for _, n in got]
    assert sorted(order) == list(range(200))
    assert order != list(range(200))
    for arrival, n in got:
        # Sent at n * 1 ms: arrival within [delay, delay + jitter).
        assert 0.01 <= arrival - n * 0.001 < 0.03 + 1e-9


async def test_reorder_probability(autojump_clock: trio.testing.MockClock) -> None:
    conditions = LinkConditions(delay=0.005, reorder=0.25, reorder_delay=0.05)
    got, net = await blast(conditions, 1000, spacing=0.001)
    order = [n for _, n in got]
    assert sorted(order) == list(range(1000))
    late = sum(1 for arrival, n in got if arrival - n * 0.001 > 0.04)
    assert late == net.stats.reordered
    assert 200 < late < 300
    assert order != list(range(1000))


async def test_duplication(autojump_clock: trio.testing.MockClock) -> None:
    got, net = await blast(LinkConditions(duplicate=0.1, delay=0.01, queue_limit=5000), 2000)
    numbers = [n for _, n in got]
    assert set(numbers) == set(range(2000))
    extra = len(numbers) - 2000
    assert extra == net.stats.duplicated
    assert 150 < extra < 250


async def test_rate_serialises(autojump_clock: trio.testing.MockClock) -> None:
    # 100-byte datagrams at 1000 bytes/s: one every 0.1 s.
    async with VirtualNetwork(conditions=LinkConditions(rate=1000.0, delay=0.5)):
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B)
        for i in range(10):
            a.send_nowait(seq(i) + bytes(96), b.local_address)
        arrivals = [t for t, _ in await collect(b)]
    assert arrivals == pytest.approx([0.5 + 0.1 * (i + 1) for i in range(10)])


async def test_queue_limit_tail_drops(autojump_clock: trio.testing.MockClock) -> None:
    got, net = await blast(LinkConditions(delay=0.1, queue_limit=50), 80)
    assert [n for _, n in got] == list(range(50))
    assert net.stats.dropped_queue_full == 30


async def test_receive_buffer_bounded(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork() as net:
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B, receive_buffer=10 * (100 + 256))
        for i in range(15):
            a.send_nowait(seq(i) + bytes(96), b.local_address)
        assert len(b.recv_batch_nowait(100)) == 10
        assert b.stats.receive_drops == 5
        assert net.stats.dropped_receive_buffer == 5
        a.send_nowait(b"room again", b.local_address)
        assert b.recv_batch_nowait() == [(b"room again", a.local_address)]


async def test_block_and_unblock(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork(conditions=LinkConditions(delay=0.1)) as net:
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B)
        a.send_nowait(b"in flight", b.local_address)
        net.block(A, B)
        a.send_nowait(b"blocked", b.local_address)
        b.send_nowait(b"other way", a.local_address)  # only A -> B is blocked
        await trio.sleep(1)
        assert b.recv_batch_nowait() == []
        assert a.recv_batch_nowait() == [(b"other way", b.local_address)]
        assert net.stats.dropped_blocked == 2
        net.unblock(A, B)
        a.send_nowait(b"back", b.local_address)
        assert await b.recv_batch() == [(b"back", a.local_address)]


async def test_per_direction_conditions(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork(conditions=LinkConditions(delay=0.01)) as net:
        net.set_conditions(LinkConditions(delay=0.2), src=A, dst=B)
        net.set_conditions(LinkConditions(loss=1.0), src="203.0.113.9")
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B)
        c = await open_udp_endpoint("203.0.113.9")
        a.send_nowait(b"slow", b.local_address)
        b.send_nowait(b"fast", a.local_address)
        c.send_nowait(b"lost", a.local_address)
        await a.wait_readable()
        assert trio.current_time() == pytest.approx(0.01)
        await b.wait_readable()
        assert trio.current_time() == pytest.approx(0.2)
        await trio.sleep(1)
        assert a.recv_batch_nowait() == [(b"fast", b.local_address)]
        assert net.stats.dropped_loss == 1
        # A conditions change applies to links that already carried traffic.
        net.set_conditions(LinkConditions(), src=A, dst=B)
        a.send_nowait(b"now fast", b.local_address)
        assert b.recv_batch_nowait()[-1] == (b"now fast", a.local_address)


async def test_same_seed_same_outcome(autojump_clock: trio.testing.MockClock) -> None:
    conditions = LinkConditions(loss=0.1, delay=0.01, jitter=0.01, duplicate=0.05, reorder=0.1)
    first, _ = await blast(conditions, 500, seed=42, spacing=0.002)
    start = trio.current_time()
    second, _ = await blast(conditions, 500, seed=42, spacing=0.002)
    other, _ = await blast(conditions, 500, seed=43, spacing=0.002)
    shift = trio.current_time() - start
    assert [n for _, n in first] == [n for _, n in second]
    assert [t for t, _ in first] == pytest.approx([t - start for t, _ in second])
    assert [n for _, n in first] != [n for _, n in other]
    assert shift > 0


async def test_address_in_use_and_bad_binds(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork() as net:
        await open_udp_endpoint(A, 4000)
        with pytest.raises(OSError) as info:
            await open_udp_endpoint(A, 4000)
        assert info.value.errno == errno.EADDRINUSE
        await open_udp_endpoint(B, 4000)  # same port, other IP: fine
        with pytest.raises(OSError, match="explicit host IP"):
            net.open_endpoint("0.0.0.0")
        with pytest.raises(OSError):
            net.open_endpoint("not-an-ip")
        # Port 0 never hands out a bound port.
        taken = {net.open_endpoint(A).local_address[1] for _ in range(5)}
        assert len(taken) == 5
        assert 4000 not in taken
        # Closing frees the port.
        first = net.open_endpoint(A, 4001)
        first.close()
        net.open_endpoint(A, 4001)


async def test_send_to_nobody_drops_silently(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork() as net:
        a = await open_udp_endpoint(A)
        assert a.send_nowait(b"void", (B, 9))
        assert net.stats.dropped_no_endpoint == 1


async def test_close_wakes_waiter(autojump_clock: trio.testing.MockClock) -> None:
    async with VirtualNetwork():
        endpoint = await open_udp_endpoint(A)
        caught: list[BaseException] = []

        async def waiter() -> None:
            try:
                await endpoint.wait_readable()
            except trio.ClosedResourceError as exc:
                caught.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await endpoint.wait_readable()
            endpoint.close()
        assert len(caught) == 1
        endpoint.close()
        with pytest.raises(trio.ClosedResourceError):
            endpoint.send_nowait(b"x", (B, 9))
        with pytest.raises(trio.ClosedResourceError):
            endpoint.recv_batch_nowait()
        with pytest.raises(trio.ClosedResourceError):
            await endpoint.wait_readable()


async def test_exit_closes_everything_and_uninstalls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_network(seed=3, delay=0.5) as net:
        a = await open_udp_endpoint(A)
        b = await open_udp_endpoint(B)
        a.send_nowait(b"never arrives", b.local_address)
        assert net.in_flight == 1
    assert a.closed
    assert b.closed
    real = await open_udp_endpoint("127.0.0.1")
    assert isinstance(real, SocketUdpEndpoint)
    real.close()
    # Nested networks: the inner one shadows the outer one and gives it back on exit.
    async with VirtualNetwork() as outer:
        async with VirtualNetwork() as inner:
            await open_udp_endpoint(A, 1)
            assert (A, 1) in inner._endpoints
        await open_udp_endpoint(A, 1)
        assert (A, 1) in outer._endpoints
    async with net:
        with pytest.raises(RuntimeError, match="already running"):
            async with net:
                pass


def test_conditions_are_validated() -> None:
    with pytest.raises(ValueError):
        LinkConditions(loss=1.5)
    with pytest.raises(ValueError):
        LinkConditions(delay=-1)
    with pytest.raises(ValueError):
        LinkConditions(rate=0)
    with pytest.raises(ValueError):
        LinkConditions(queue_limit=0)
