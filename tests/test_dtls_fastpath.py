"""The one-step path for application records (RecordLayer.open_application_datagram) must give
the same result as the general path, and must leave every unusual datagram to it."""

from __future__ import annotations

import pytest
from dtls_sim import Link, pair

from trio_rtc.dtls import ApplicationData, DtlsConnection
from trio_rtc.dtls.records import encode_record


def connected(suite: int) -> tuple[DtlsConnection, DtlsConnection]:
    client, server = pair(cipher_suites=[suite])
    link = Link(client, server)
    link.handshake()
    link.run(lambda: False)
    assert client.state == server.state == "connected"
    return client, server


@pytest.mark.parametrize("size", [0, 1, 100, 1200, 16384])
def test_application_records_take_the_fast_path(size: int) -> None:
    client, server = connected(0xC02B)  # ECDHE-ECDSA-AES128-GCM-SHA256
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    client.send_application_data(payload)
    [datagram] = client.datagrams_to_send(0.0)
    assert server.records.open_application_datagram(datagram) == payload
    # Fresh from here on: the window moved, so the replay is left to the general path.
    assert server.records.open_application_datagram(datagram) is None
    server.receive_datagram(datagram, 0.0)
    assert server.stats.replay_dropped == 1 and server.next_event() is None


def test_fast_path_leaves_unusual_datagrams_to_the_general_path() -> None:
    client, server = connected(0xC02B)
    client.send_application_data(b"one")
    client.send_application_data(b"two")
    first, second = client.datagrams_to_send(0.0)
    records = server.records
    assert records.open_application_datagram(first + second) is None  # two records
    assert records.open_application_datagram(first[:-1]) is None  # length mismatch
    tampered = first[:-1] + bytes([first[-1] ^ 1])
    assert records.open_application_datagram(tampered) is None  # does not authenticate
    assert records.open_application_datagram(encode_record(23, 0, 5, b"x" * 40)) is None
    server.receive_datagram(first + second, 0.0)
    assert server.next_event() == ApplicationData(b"one")
    assert server.next_event() == ApplicationData(b"two")


def test_chacha_records_use_the_general_path() -> None:
    client, server = connected(0xCCA9)  # ECDHE-ECDSA-CHACHA20-POLY1305
    client.send_application_data(b"chacha")
    [datagram] = client.datagrams_to_send(0.0)
    assert server.records.open_application_datagram(datagram) is None
    server.receive_datagram(datagram, 0.0)
    assert server.next_event() == ApplicationData(b"chacha")
