"""Real-socket UDP endpoints on loopback (127.0.0.1 and ::1 only)."""

from __future__ import annotations

import os
import socket

import pytest
import trio

from trio_rtc.udp import (
    SocketUdpEndpoint,
    UdpEndpoint,
    _is_link_local_v6,
    _strip_scope,
    bind_socket_endpoint,
    open_udp_endpoint,
)

# Linux's <linux/in.h> value; the stdlib does not export it.
IP_RECVERR = 11


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_send_and_receive(host: str) -> None:
    with (
        await open_udp_endpoint(host) as a,
        await open_udp_endpoint(host) as b,
    ):
        assert isinstance(a, SocketUdpEndpoint)
        assert a.local_address[0] == host
        assert a.local_address[1] != 0
        assert a.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
        assert a.send_nowait(b"hello", b.local_address)
        assert a.send_nowait(memoryview(b"world"), b.local_address)
        assert a.send_nowait(bytearray(b"!"), b.local_address)
        with trio.fail_after(5):
            await b.wait_readable()
        assert b.recv_batch_nowait() == [
            (b"hello", a.local_address),
            (b"world", a.local_address),
            (b"!", a.local_address),
        ]
        assert b.recv_batch_nowait() == []
        assert a.stats.datagrams_sent == 3
        assert a.stats.bytes_sent == 11
        assert b.stats.datagrams_received == 3
        assert b.stats.bytes_received == 11


async def test_recv_batch_helper_and_large_datagram() -> None:
    with await open_udp_endpoint("127.0.0.1") as a, await open_udp_endpoint("127.0.0.1") as b:
        payload = bytes(range(256)) * 200  # 51,200 bytes: not truncated
        assert a.send_nowait(payload, b.local_address)
        with trio.fail_after(5):
            batch = await b.recv_batch()
        assert batch == [(payload, a.local_address)]


async def test_batch_drain_of_1000_without_awaiting() -> None:
    with await open_udp_endpoint("127.0.0.1") as a, await open_udp_endpoint("127.0.0.1") as b:
        for i in range(1000):
            assert a.send_nowait(i.to_bytes(4, "big") * 300, b.local_address)
        with trio.fail_after(5):
            await b.wait_readable()
        # Loopback delivers inside sendto, so everything is queued by now: no await needed.
        received: list[bytes] = []
        first = b.recv_batch_nowait(10)
        assert len(first) == 10
        received.extend(data for data, _ in first)
        for _ in range(100):
            batch = b.recv_batch_nowait(1000)
            if not batch:
                break
            received.extend(data for data, _ in batch)
        assert [int.from_bytes(d[:4], "big") for d in received] == list(range(1000))
        assert b.stats.datagrams_received == 1000


async def test_buffers_enlarged_and_reported() -> None:
    with await open_udp_endpoint("127.0.0.1", receive_buffer=1 << 20, send_buffer=1 << 20) as a:
        assert isinstance(a, SocketUdpEndpoint)
        assert a.receive_buffer_size == a._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert a.send_buffer_size == a._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        # Linux doubles the request; any kernel grants at least the default here.
        assert a.receive_buffer_size >= 1 << 16
        assert a.send_buffer_size >= 1 << 16


async def test_close_wakes_waiter() -> None:
    endpoint = await open_udp_endpoint("127.0.0.1")
    woken: list[type[BaseException]] = []

    async def waiter() -> None:
        try:
            await endpoint.wait_readable()
        except trio.ClosedResourceError as exc:
            woken.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await endpoint.wait_readable()
        endpoint.close()
    assert woken == [trio.ClosedResourceError]
    endpoint.close()  # idempotent
    assert endpoint.closed
    with pytest.raises(trio.ClosedResourceError):
        await endpoint.wait_readable()
    with pytest.raises(trio.ClosedResourceError):
        endpoint.recv_batch_nowait()
    with pytest.raises(trio.ClosedResourceError):
        endpoint.send_nowait(b"x", ("127.0.0.1", 9))


async def test_no_fd_leak_after_close_or_cancel() -> None:
    before = open_fds()
    endpoints = [await open_udp_endpoint("127.0.0.1") for _ in range(20)]
    endpoints += [await open_udp_endpoint("::1") for _ in range(5)]
    assert open_fds() == before + 25
    for endpoint in endpoints:
        endpoint.close()
    assert open_fds() == before

    # A task cancelled while waiting, then the endpoint closed by its owner.
    with trio.move_on_after(0.01):
        with await open_udp_endpoint("127.0.0.1") as endpoint:
            await endpoint.wait_readable()
    assert endpoint.closed
    # Opening inside an already-cancelled scope creates nothing.
    with trio.CancelScope() as scope:
        scope.cancel()
        await open_udp_endpoint("127.0.0.1")
    assert open_fds() == before


async def test_send_to_closed_port_does_not_raise() -> None:
    with await open_udp_endpoint("127.0.0.1") as a, await open_udp_endpoint("127.0.0.1") as b:
        closed_port = b.local_address
        b.close()
        assert isinstance(a, SocketUdpEndpoint)
        # Ask the kernel to report ICMP errors even on this unconnected socket, so the error
        # path is really taken.
        a._sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
        results = [a.send_nowait(b"x", closed_port) for _ in range(5)]
        await trio.sleep(0.01)
        assert a.recv_batch_nowait() == []
        assert results[0] is True
        assert a.stats.receive_errors + a.stats.send_drops >= 1


async def test_invalid_destinations_raise_value_error() -> None:
    with await open_udp_endpoint("127.0.0.1") as v4, await open_udp_endpoint("::1") as v6:
        with pytest.raises(ValueError, match="IPv4"):
            v4.send_nowait(b"x", ("::1", 9))
        with pytest.raises(ValueError, match="IPv6"):
            v6.send_nowait(b"x", ("127.0.0.1", 9))
        with pytest.raises(ValueError):
            v4.send_nowait(b"x", ("localhost", 9))  # never resolved
        with pytest.raises(ValueError):
            v4.send_nowait(b"x", ("127.0.0.1", 0))
        with pytest.raises(ValueError):
            v4.send_nowait(b"x", ("127.0.0.1", 70000))
        assert v4.stats.datagrams_sent == 0


async def test_bind_errors_name_the_address() -> None:
    with await open_udp_endpoint("127.0.0.1") as a:
        port = a.local_address[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            await open_udp_endpoint("127.0.0.1", port)
    with pytest.raises(OSError, match="localhost"):
        bind_socket_endpoint("localhost")
    with await open_udp_endpoint("::1") as b:
        with pytest.raises(OSError, match=rf"\[::1\]:{b.local_address[1]}"):
            bind_socket_endpoint("::1", b.local_address[1])


async def test_ipv6_socket_is_v6only() -> None:
    with await open_udp_endpoint("::") as a:
        assert isinstance(a, SocketUdpEndpoint)
        assert a._sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_endpoint_is_abstract() -> None:
    with pytest.raises(TypeError):
        UdpEndpoint()  # type: ignore[abstract]


def test_link_local_scope_is_parsed_on_bind() -> None:
    # The scope is understood (no "not a numeric address" error); the bind then fails only
    # because loopback has no such address.
    with pytest.raises(OSError, match=r"\[fe80::1%lo\]:0: (?!not a numeric)"):
        bind_socket_endpoint("fe80::1%lo")


def test_scope_helpers() -> None:
    assert _strip_scope("fe80::1%eth0") == "fe80::1"
    assert _strip_scope("2001:db8::1") == "2001:db8::1"
    assert _is_link_local_v6("fe80::1")
    assert _is_link_local_v6("FEBF::1")
    assert not _is_link_local_v6("fec0::1")
    assert not _is_link_local_v6("::1")
