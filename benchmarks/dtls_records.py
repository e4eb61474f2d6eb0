"""DTLS numbers on this machine: handshake time on loopback, records/s protected and opened.

Run: ``.venv/bin/python benchmarks/dtls_records.py``. Prints one line per measurement.
"""

from __future__ import annotations

import socket
import statistics
import time

import trio

from trio_rtc.dtls import DtlsConnection, RTCCertificate
from trio_rtc.dtls.crypto import CIPHER_SUITES, CipherSuite, RecordProtection
from trio_rtc.dtls.driver import RTCDtlsTransport

PAYLOAD = 1100  # about one SCTP packet at the default MTU


def bench_records(suite: CipherSuite, seconds: float = 1.0) -> tuple[float, float]:
    info = CIPHER_SUITES[suite]
    protection = RecordProtection(info, bytes(info.key_length), bytes(info.fixed_iv_length))
    payload = bytes(PAYLOAD)
    count, seq, start = 0, 0, time.perf_counter()
    sealed = []
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            sealed.append(protection.seal(23, 0xFEFD, 1, seq, payload))
            seq += 1
        count += 1000
    seal_rate = count / (time.perf_counter() - start)
    start = time.perf_counter()
    for i, fragment in enumerate(sealed):
        protection.open(23, 0xFEFD, 1, i, fragment)
    open_rate = len(sealed) / (time.perf_counter() - start)
    return seal_rate, open_rate


def bench_connection_throughput(seconds: float = 1.0) -> float:
    """Full record path: send_application_data + datagrams_to_send + receive_datagram + event."""
    a, b = RTCCertificate.generate_sync(), RTCCertificate.generate_sync()
    client = DtlsConnection(is_client=True, certificate=a, remote_fingerprints=b.getFingerprints())
    server = DtlsConnection(is_client=False, certificate=b, remote_fingerprints=a.getFingerprints())
    client.start(0.0)
    for _ in range(4):
        for d in client.datagrams_to_send(0.0):
            server.receive_datagram(d, 0.0)
        for d in server.datagrams_to_send(0.0):
            client.receive_datagram(d, 0.0)
    while client.next_event() or server.next_event():
        pass
    payload = bytes(PAYLOAD)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            client.send_application_data(payload)
        for d in client.datagrams_to_send(0.0):
            server.receive_datagram(d, 0.0)
        while server.next_event():
            count += 1
    return count / (time.perf_counter() - start)


def bench_core_handshake(rounds: int = 20) -> float:
    a, b = RTCCertificate.generate_sync(), RTCCertificate.generate_sync()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        client = DtlsConnection(
            is_client=True, certificate=a, remote_fingerprints=b.getFingerprints()
        )
        server = DtlsConnection(
            is_client=False, certificate=b, remote_fingerprints=a.getFingerprints()
        )
        client.start(0.0)
        while client.state != "connected" or server.state != "connected":
            for d in client.datagrams_to_send(0.0):
                server.receive_datagram(d, 0.0)
            for d in server.datagrams_to_send(0.0):
                client.receive_datagram(d, 0.0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _pump(raw: socket.socket, channel: trio.MemorySendChannel[bytes]) -> None:
    sock = trio.socket.from_stdlib_socket(raw)
    while True:
        data, _ = await sock.recvfrom(65536)
        channel.send_nowait(data)


async def _drive(
    transport: RTCDtlsTransport,
    raw: socket.socket,
    peer: tuple[str, int],
    channel: trio.MemoryReceiveChannel[bytes],
) -> None:
    def send(data: bytes) -> None:
        raw.sendto(data, peer)

    await transport.run(receive_channel=channel, send=send)


async def bench_loopback_handshake(rounds: int = 10) -> float:
    a, b = RTCCertificate.generate_sync(), RTCCertificate.generate_sync()
    times = []
    for _ in range(rounds):
        raws = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for raw in raws:
            raw.setblocking(False)
            raw.bind(("127.0.0.1", 0))
        start = trio.current_time()
        client = RTCDtlsTransport(None, a, is_client=True, remote_fingerprints=b.getFingerprints())
        server = RTCDtlsTransport(None, b, is_client=False, remote_fingerprints=a.getFingerprints())
        async with trio.open_nursery() as nursery:
            for i, transport in enumerate((client, server)):
                send_channel, receive_channel = trio.open_memory_channel[bytes](256)
                nursery.start_soon(_pump, raws[i], send_channel)
                nursery.start_soon(
                    _drive, transport, raws[i], raws[1 - i].getsockname(), receive_channel
                )
            await client.wait_connected()
            await server.wait_connected()
            times.append(trio.current_time() - start)
            nursery.cancel_scope.cancel()
        for raw in raws:
            raw.close()
    return statistics.median(times)


def main() -> None:
    bench_records(CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0.2)  # warm-up
    for suite in (
        CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite.ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite.ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ):
        seal_rate, open_rate = bench_records(suite)
        print(
            f"record protection {suite.name}: {seal_rate:,.0f} sealed/s, {open_rate:,.0f} opened/s ({PAYLOAD} B)"
        )
    print(
        f"connection record path (seal+parse+open+event): {bench_connection_throughput():,.0f} records/s"
    )
    print(
        f"handshake, two cores in memory (CPU only): {bench_core_handshake() * 1000:.1f} ms median"
    )
    print(
        f"handshake, two RTCDtlsTransports over UDP 127.0.0.1: {trio.run(bench_loopback_handshake) * 1000:.1f} ms median"
    )


if __name__ == "__main__":
    main()
