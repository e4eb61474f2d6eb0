"""RTCDtlsTransport: over real UDP on 127.0.0.1, against OpenSSL, and under MockClock."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable

import pytest
import trio
import trio.testing
from dtls_peer_openssl import OpenSSLPeer
from dtls_sim import certs

from trio_rtc._channels import Outgoing
from trio_rtc.dtls import RTCCertificate
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.events import Event, RTCErrorEvent
from trio_rtc.exceptions import InvalidStateError, RTCError
from trio_rtc.testing import virtual_network
from trio_rtc.udp import Address, UdpEndpoint, open_udp_endpoint


class UdpPipe:
    """A non-blocking 127.0.0.1 socket: a pump task fills a channel, ``send`` never blocks."""

    def __init__(self) -> None:
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.raw.setblocking(False)
        self.raw.bind(("127.0.0.1", 0))
        self.sock = trio.socket.from_stdlib_socket(self.raw)
        self.peer: tuple[str, int] | None = None
        self.send_channel, self.receive_channel = trio.open_memory_channel[bytes](256)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.raw.getsockname()
        return host, port

    def send(self, data: bytes) -> None:
        assert self.peer is not None
        try:
            self.raw.sendto(data, self.peer)
        except BlockingIOError:
            pass

    async def pump(self) -> None:
        while True:
            data, _ = await self.sock.recvfrom(65536)
            self.send_channel.send_nowait(data)


async def test_two_transports_over_udp() -> None:
    a, b = certs()
    pipe_a, pipe_b = UdpPipe(), UdpPipe()
    pipe_a.peer, pipe_b.peer = pipe_b.address, pipe_a.address
    ice = object()
    client = RTCDtlsTransport(ice, a, is_client=True, remote_fingerprints=b.getFingerprints())
    server = RTCDtlsTransport(ice, b, is_client=False, remote_fingerprints=a.getFingerprints())
    states: list[str] = []
    client.onstatechange = lambda event: states.append(client.state)
    assert (
        client.iceTransport is ice
        and client.state == "new"
        and client.getRemoteCertificates() == []
    )
    with trio.fail_after(10), pipe_a.raw, pipe_b.raw:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pipe_a.pump)
            nursery.start_soon(pipe_b.pump)
            nursery.start_soon(
                lambda: client.run(receive_channel=pipe_a.receive_channel, send=pipe_a.send)
            )
            nursery.start_soon(
                lambda: server.run(receive_channel=pipe_b.receive_channel, send=pipe_b.send)
            )
            await client.wait_connected()
            await server.wait_connected()
            assert client.getRemoteCertificates() == [b.der]
            assert client.srtp_keys is not None and server.srtp_keys is not None
            assert client.srtp_keys.local_key == server.srtp_keys.remote_key
            for i in range(50):
                await client.send_application_data(b"msg %d" % i)
            received = [await server.application_data_receive_channel.receive() for _ in range(50)]
            assert received == [b"msg %d" % i for i in range(50)]
            await server.send_application_data(b"back")
            assert await client.application_data_receive_channel.receive() == b"back"
            client.close()
            await server.wait_until(lambda: server.state == "closed")
            nursery.cancel_scope.cancel()
    assert states == ["connecting", "connected", "closed"]
    with pytest.raises(InvalidStateError):
        await client.send_application_data(b"after close")


async def test_transport_against_openssl_server() -> None:
    ours, theirs = certs()
    peer_sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await peer_sock.bind(("127.0.0.1", 0))
    pipe = UdpPipe()
    pipe.peer = peer_sock.getsockname()
    peer = OpenSSLPeer(is_client=False, certificate=theirs)
    transport = RTCDtlsTransport(
        None, ours, is_client=True, remote_fingerprints=theirs.getFingerprints()
    )
    with trio.fail_after(10), pipe.raw, peer_sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.run, peer_sock, pipe.address)
            nursery.start_soon(pipe.pump)
            nursery.start_soon(
                lambda: transport.run(receive_channel=pipe.receive_channel, send=pipe.send)
            )
            await transport.wait_connected()
            await transport.send_application_data(b"hi openssl")
            assert await transport.application_data_receive_channel.receive() == b"echo:hi openssl"
            nursery.cancel_scope.cancel()
    # Cancellation from outside closes the transport (and sends close_notify on the way out).
    assert transport.state == "closed"


async def test_silent_peer_fails_after_back_off_with_no_task_left(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0
    a, b = certs()
    transport = RTCDtlsTransport(None, a, is_client=True, remote_fingerprints=b.getFingerprints())
    sent: list[float] = []
    errors: list[RTCErrorEvent] = []
    transport.addEventListener("error", errors.append)
    _send, receive = trio.open_memory_channel[bytes](10)
    start = trio.current_time()
    await transport.run(
        receive_channel=receive, send=lambda data: sent.append(trio.current_time() - start)
    )
    # run() returned by itself: the back-off schedule ran out.
    assert transport.state == "failed"
    assert [round(t) for t in sent] == [0, 1, 3, 7, 15, 31, 63]
    assert round(trio.current_time() - start) == 123
    [error] = errors
    assert isinstance(error.error, RTCError) and error.error.errorDetail == "dtls-failure"
    with pytest.raises(RTCError):
        await transport.wait_connected()


async def test_loss_and_reordering_with_mock_clock(mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    a, b = certs()
    rng = random.Random(5)
    client = RTCDtlsTransport(None, a, is_client=True, remote_fingerprints=b.getFingerprints())
    server = RTCDtlsTransport(None, b, is_client=False, remote_fingerprints=a.getFingerprints())
    to_client, from_server = trio.open_memory_channel[bytes](100)
    to_server, from_client = trio.open_memory_channel[bytes](100)

    async with trio.open_nursery() as nursery:

        def lossy(channel: trio.MemorySendChannel[bytes]) -> Callable[[bytes], None]:
            async def deliver_later(data: bytes) -> None:
                await trio.sleep(0.01 + rng.random() * 0.1)
                channel.send_nowait(data)

            def send(data: bytes) -> None:
                if rng.random() >= 0.3:
                    nursery.start_soon(deliver_later, data)

            return send

        nursery.start_soon(lambda: client.run(receive_channel=from_server, send=lossy(to_server)))
        nursery.start_soon(lambda: server.run(receive_channel=from_client, send=lossy(to_client)))
        with trio.fail_after(300):
            await client.wait_connected()
            await server.wait_connected()
        nursery.cancel_scope.cancel()


async def test_wrong_fingerprint_fires_error_then_statechange() -> None:
    a, b = certs()
    stranger = RTCCertificate.generate_sync()
    client = RTCDtlsTransport(
        None, a, is_client=True, remote_fingerprints=stranger.getFingerprints()
    )
    server = RTCDtlsTransport(None, b, is_client=False, remote_fingerprints=a.getFingerprints())
    seen: list[tuple[str, str]] = []

    def record(event: Event) -> None:
        seen.append((event.type, client.state))

    client.addEventListener("error", record)
    client.addEventListener("statechange", record)
    to_client, from_server = trio.open_memory_channel[bytes](100)
    to_server, from_client = trio.open_memory_channel[bytes](100)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: client.run(receive_channel=from_server, send=to_server.send_nowait)
            )
            nursery.start_soon(
                lambda: server.run(receive_channel=from_client, send=to_client.send_nowait)
            )
            with pytest.raises(RTCError):
                await client.wait_connected()
            await server.wait_until(lambda: server.state == "failed")
            nursery.cancel_scope.cancel()
    assert seen == [("statechange", "connecting"), ("error", "failed"), ("statechange", "failed")]


async def _run_transport(
    transport: RTCDtlsTransport,
    channel: trio.MemoryReceiveChannel[bytes],
    send: Callable[[bytes], None],
) -> None:
    await transport.run(receive_channel=channel, send=send)


async def _endpoint_pump(endpoint: UdpEndpoint, channel: trio.MemorySendChannel[bytes]) -> None:
    while True:
        await endpoint.wait_readable()
        for data, _address in endpoint.recv_batch_nowait():
            channel.send_nowait(data)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_virtual_network_30_percent_loss_and_reordering(
    mock_clock: trio.testing.MockClock, seed: int
) -> None:
    mock_clock.autojump_threshold = 0
    a, b = certs()
    async with virtual_network(
        seed=seed, loss=0.3, delay=0.02, jitter=0.03, reorder=0.3, duplicate=0.05
    ) as net:
        endpoints = [await open_udp_endpoint("10.0.0.1"), await open_udp_endpoint("10.0.0.2")]
        transports = [
            RTCDtlsTransport(None, a, is_client=True, remote_fingerprints=b.getFingerprints()),
            RTCDtlsTransport(None, b, is_client=False, remote_fingerprints=a.getFingerprints()),
        ]
        async with trio.open_nursery() as nursery:
            for i, transport in enumerate(transports):
                send_channel, receive_channel = trio.open_memory_channel[bytes](256)
                endpoint, peer = endpoints[i], endpoints[1 - i].local_address

                def send(
                    data: bytes, endpoint: UdpEndpoint = endpoint, peer: Address = peer
                ) -> None:
                    endpoint.send_nowait(data, peer)

                nursery.start_soon(_endpoint_pump, endpoint, send_channel)
                nursery.start_soon(_run_transport, transport, receive_channel, send)
            with trio.fail_after(120):
                for transport in transports:
                    await transport.wait_connected()
            nursery.cancel_scope.cancel()
        assert net.stats.dropped_loss > 0


async def test_a_crashing_send_fails_the_transport_visibly() -> None:
    a, b = certs()
    transport = RTCDtlsTransport(None, a, is_client=True, remote_fingerprints=b.getFingerprints())
    errors: list[RTCErrorEvent] = []
    transport.addEventListener("error", errors.append)
    _send_channel, receive_channel = trio.open_memory_channel[bytes](1)

    def broken_send(data: bytes) -> None:
        raise OSError("ICE transport is gone")

    with trio.fail_after(5):
        await transport.run(receive_channel=receive_channel, send=broken_send)
    assert transport.state == "failed"
    assert "ICE transport is gone" in str(errors[0].error)


async def test_data_queued_behind_the_peers_close_notify_is_dropped_not_a_crash() -> None:
    """A close_notify and data to send in the same wake-up: the core closes on the first, the
    data is counted as dropped (it used to crash the task: cannot send in state closed)."""
    a, b = certs()
    pipe_a, pipe_b = UdpPipe(), UdpPipe()
    pipe_a.peer, pipe_b.peer = pipe_b.address, pipe_a.address
    ice = object()
    client = RTCDtlsTransport(ice, a, is_client=True, remote_fingerprints=b.getFingerprints())
    server = RTCDtlsTransport(ice, b, is_client=False, remote_fingerprints=a.getFingerprints())
    with trio.fail_after(10), pipe_a.raw, pipe_b.raw:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pipe_a.pump)
            nursery.start_soon(pipe_b.pump)
            nursery.start_soon(
                lambda: client.run(receive_channel=pipe_a.receive_channel, send=pipe_a.send)
            )
            nursery.start_soon(
                lambda: server.run(receive_channel=pipe_b.receive_channel, send=pipe_b.send)
            )
            await client.wait_connected()
            await server.wait_connected()
            # The client's goodbye, made by its core, and data the server's upper layer hands
            # over right behind it: one wake-up of the server's task takes both.
            client.core.close()
            [goodbye] = client.core.datagrams_to_send(trio.current_time())
            server._inbox_send.send_nowait([goodbye])
            server._inbox_send.send_nowait(Outgoing([b"late"]))
            with trio.fail_after(5):
                await server.wait_until(lambda: server.state != "connected")
            nursery.cancel_scope.cancel()
    assert server.crashed is None
    assert server.state == "closed"
    assert server.outgoing_dropped == 1


async def test_a_short_first_timer_from_ice_still_waits_as_long_before_giving_up(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The first timer comes from the ICE round trip (50 ms here), but a peer whose answer is
    still on its way (signalling pasted by hand) is given as long as with the 1 s start."""
    mock_clock.autojump_threshold = 0

    class Pair:
        current_round_trip_time = 0.001

    class Ice:
        selected_pair = Pair()

    a, b = certs()
    transport = RTCDtlsTransport(Ice(), a, is_client=True, remote_fingerprints=b.getFingerprints())
    sent: list[float] = []
    _send, receive = trio.open_memory_channel[bytes](10)
    start = trio.current_time()
    await transport.run(
        receive_channel=receive, send=lambda data: sent.append(trio.current_time() - start)
    )
    assert transport.state == "failed"
    assert sent[1] == pytest.approx(0.05)  # the first resend: after 50 ms, not 1 s
    # Doubling from 50 ms (capped at 60 s), and still failing only after about two minutes.
    assert 100 < trio.current_time() - start < 200
