"""UdpEndpoint.send_many_nowait: the burst form of send_nowait, on sockets and virtual links."""

from __future__ import annotations

import pytest
import trio

from trio_rtc.testing import VirtualNetwork
from trio_rtc.udp import open_udp_endpoint


async def _exchange(host: str) -> None:
    with await open_udp_endpoint(host) as a, await open_udp_endpoint(host) as b:
        assert a.send_many_nowait([b"one", b"two", b"three"], b.local_address) == (3, 11)
        assert a.send_many_nowait([b"four"], b.local_address) == (1, 4)
        received: list[bytes] = []
        with trio.fail_after(5):
            while len(received) < 4:
                await b.wait_readable()
                received += [data for data, _ in b.recv_batch_nowait()]
        assert received == [b"one", b"two", b"three", b"four"]
        assert a.stats.datagrams_sent == 4 and a.stats.bytes_sent == 15
        with pytest.raises(ValueError):
            a.send_many_nowait([b"x", b"y"], ("localhost", 9))
        a.close()
        with pytest.raises(trio.ClosedResourceError):
            a.send_many_nowait([b"x", b"y"], b.local_address)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_send_many_over_sockets(host: str) -> None:
    await _exchange(host)


async def test_send_many_over_a_virtual_network() -> None:
    async with VirtualNetwork(seed=0):
        await _exchange("127.0.0.1")
