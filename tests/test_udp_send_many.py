"""UdpEndpoint.send_many_nowait: the burst form of send_nowait, on sockets and virtual links."""

from __future__ import annotations

import errno
import os
import socket
import sys

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.testing import VirtualNetwork
from trio_rtc.udp import (
    GSO_MAX_SEGMENTS,
    Address,
    SocketUdpEndpoint,
    UdpEndpoint,
    open_udp_endpoint,
)


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


# --- segmentation offload (Linux): a burst leaves as runs of equal-sized datagrams ------------

segmented = pytest.mark.skipif(sys.platform != "linux", reason="UDP_SEGMENT is Linux-only")


async def _receive(endpoint: UdpEndpoint, count: int) -> list[bytes]:
    received: list[bytes] = []
    with trio.fail_after(5):
        while len(received) < count:
            await endpoint.wait_readable()
            received += [data for data, _ in endpoint.recv_batch_nowait()]
    return received


def _burst() -> list[bytes]:
    """Runs of every shape: longer than the segment limit, over the byte limit, closed by a
    shorter datagram, single datagrams between them, an empty one."""
    full = [bytes([n % 251]) * 1200 for n in range(GSO_MAX_SEGMENTS + 9)]
    big = [bytes([n]) * 9000 for n in range(9)]  # 81,000 bytes: over GSO_MAX_BYTES
    return [
        *full,
        b"short tail",
        b"alone",
        *big,
        b"",
        *[b"ab" * 30] * 5,
        b"a",
        *[b"c" * 700] * 3,
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_segmented_burst_arrives_as_the_same_datagrams(host: str) -> None:
    with await open_udp_endpoint(host) as a, await open_udp_endpoint(host) as b:
        assert isinstance(a, SocketUdpEndpoint)
        assert a.segmentation == (sys.platform == "linux")
        burst = _burst()
        assert a.send_many_nowait(burst, b.local_address) == (len(burst), sum(map(len, burst)))
        assert await _receive(b, len(burst)) == burst
        assert a.stats.datagrams_sent == len(burst) and a.stats.send_drops == 0
        assert a.segmentation == (sys.platform == "linux")


class _RefusingSocket:
    """A socket whose segmented sends fail with ``error`` (everything else passes through)."""

    def __init__(self, sock: socket.socket, error: int) -> None:
        self._sock = sock
        self._error = error
        self.refused = 0

    def sendmsg(self, *args: object) -> int:
        self.refused += 1
        raise OSError(self._error, os.strerror(self._error))

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


@segmented
async def test_a_kernel_that_cannot_segment_gets_one_datagram_per_call() -> None:
    with await open_udp_endpoint("127.0.0.1") as a, await open_udp_endpoint("127.0.0.1") as b:
        assert isinstance(a, SocketUdpEndpoint)
        refusing = _RefusingSocket(a._sock, errno.EIO)
        a._sock = refusing  # type: ignore[assignment]
        burst = [b"x" * 500] * 4
        for round_number in range(4):
            assert a.send_many_nowait(burst, b.local_address) == (4, 2000)
            assert await _receive(b, 4) == burst
            # Three refusals, then the endpoint stops trying.
            assert a.segmentation == (round_number < 2)
        assert refusing.refused == 3
        assert a.stats.send_drops == 0 and a.stats.datagrams_sent == 16


@segmented
async def test_a_full_buffer_drops_the_run_and_keeps_segmenting() -> None:
    with await open_udp_endpoint("127.0.0.1") as a, await open_udp_endpoint("127.0.0.1") as b:
        assert isinstance(a, SocketUdpEndpoint)
        a._sock = _RefusingSocket(a._sock, errno.EAGAIN)  # type: ignore[assignment]
        assert a.send_many_nowait([b"y" * 300] * 5 + [b"z"], b.local_address) == (0, 0)
        assert a.stats.send_drops == 6 and a.segmentation


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3000), min_size=2, max_size=150))
def test_any_burst_arrives_intact(sizes: list[int]) -> None:
    burst = [bytes([index % 256]) * size for index, size in enumerate(sizes)]

    async def main() -> None:
        with await open_udp_endpoint("127.0.0.1") as a, await open_udp_endpoint("127.0.0.1") as b:
            assert a.send_many_nowait(burst, b.local_address) == (len(burst), sum(sizes))
            assert await _receive(b, len(burst)) == burst

    trio.run(main)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_a_burst_read_back_is_the_same_datagrams_in_few_reads(host: str) -> None:
    with await open_udp_endpoint(host) as a, await open_udp_endpoint(host) as b:
        assert isinstance(b, SocketUdpEndpoint)
        burst = [bytes([n]) * 1200 for n in range(20)] + [b"last, shorter"]
        a.send_many_nowait(burst, b.local_address)
        received: list[tuple[bytes, Address]] = []
        reads = 0
        with trio.fail_after(5):
            while len(received) < len(burst):
                await b.wait_readable()
                received += b.recv_batch_nowait(max_count=1)
                reads += 1
        assert [data for data, _ in received] == burst
        assert {source for _, source in received} == {a.local_address}
        assert b.stats.datagrams_received == 21
        assert b.stats.bytes_received == sum(map(len, burst))
        if b.coalescing and a.segmentation:
            # One read: the segmented send arrives as one buffer, cut at 1200 bytes.
            assert reads == 1
