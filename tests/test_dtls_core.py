"""The DTLS core against itself under fake time: flights, loss, timers, fragmentation."""

from __future__ import annotations

import pytest
from dtls_sim import Link, certs, pair

from trio_rtc.dtls import (
    ApplicationData,
    ConnectionClosed,
    ConnectionFailed,
    DtlsConnection,
    HandshakeComplete,
    RTCCertificate,
)
from trio_rtc.dtls.records import records_untrusted
from trio_rtc.exceptions import InvalidStateError


def state(connection: DtlsConnection) -> str:
    """The state as a plain str, so that mypy does not narrow it across calls that change it."""
    return connection.state


@pytest.mark.parametrize("use_cookies", [False, True])
def test_handshake_data_and_close(use_cookies: bool) -> None:
    client, server = pair(server_use_cookies=use_cookies)
    link = Link(client, server)
    link.handshake()
    assert client.state == server.state == "connected"
    [c_done] = link.events[True]
    [s_done] = link.events[False]
    assert isinstance(c_done, HandshakeComplete) and isinstance(s_done, HandshakeComplete)
    assert c_done.srtp_keys is not None and s_done.srtp_keys is not None
    assert c_done.srtp_keys.local_key == s_done.srtp_keys.remote_key
    assert c_done.srtp_keys.remote_salt == s_done.srtp_keys.local_salt
    assert client.export_keying_material("EXPORTER-x", 40, b"ctx") == server.export_keying_material(
        "EXPORTER-x", 40, b"ctx"
    )
    assert client.export_keying_material("EXPORTER-x", 40) != client.export_keying_material(
        "EXPORTER-x", 40, b""
    )
    # Four datagrams for the whole handshake without cookies: flights 1, 4, 5, 6.
    assert len(link.sent[True]) + len(link.sent[False]) == (6 if use_cookies else 4)

    client.send_application_data(b"hello server")
    server.send_application_data(b"hello client")
    link.run(lambda: False)
    assert link.events[False][1:] == [ApplicationData(b"hello server")]
    assert link.events[True][1:] == [ApplicationData(b"hello client")]

    server.close()
    link.run(lambda: False)
    assert state(server) == state(client) == "closed"
    assert link.events[True][-1] == ConnectionClosed()
    with pytest.raises(InvalidStateError):
        client.send_application_data(b"late")


@pytest.mark.parametrize("seed", range(8))
def test_handshake_completes_with_30_percent_loss_and_reordering(seed: int) -> None:
    client, server = pair(server_use_cookies=seed % 2 == 1)
    link = Link(client, server, loss=0.3, reorder=0.5, seed=seed)
    link.handshake()
    assert client.state == server.state == "connected", (
        client.state,
        server.state,
        client.stats,
        server.stats,
    )
    # Data still flows once both are up (a single datagram may be lost: send a few).
    for _ in range(10):
        client.send_application_data(b"x")
    link.run(lambda: False)
    assert any(isinstance(e, ApplicationData) for e in link.events[False])


def test_silent_peer_fails_after_the_back_off_schedule() -> None:
    (cert, other) = certs()
    client = DtlsConnection(
        is_client=True, certificate=cert, remote_fingerprints=other.getFingerprints()
    )
    client.start(0.0)
    sends = [0.0]
    assert len(client.datagrams_to_send(0.0)) == 1
    while (deadline := client.get_timer()) is not None:
        client.handle_timer(deadline)
        if client.datagrams_to_send(deadline):
            sends.append(deadline)
    # RFC 6347 §4.2.4.1: 1 s, doubling, capped at 60 s; six retransmissions, then give up.
    assert sends == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]
    assert client.state == "failed"
    event = client.next_event()
    assert isinstance(event, ConnectionFailed) and "timed out" in event.reason
    assert client.get_timer() is None


def test_wrong_fingerprint_fails_both_sides() -> None:
    a, b = certs()
    stranger = RTCCertificate.generate_sync()
    client = DtlsConnection(is_client=True, certificate=a, remote_fingerprints=b.getFingerprints())
    server = DtlsConnection(
        is_client=False, certificate=b, remote_fingerprints=stranger.getFingerprints()
    )
    link = Link(client, server)
    link.handshake()
    assert server.state == "failed" and client.state == "failed"
    [server_event] = link.events[False]
    assert (
        isinstance(server_event, ConnectionFailed)
        and server_event.alert == 42
        and not server_event.received
    )
    [client_event] = link.events[True]
    assert (
        isinstance(client_event, ConnectionFailed)
        and client_event.alert == 42
        and client_event.received
    )


def test_fingerprints_given_after_the_handshake() -> None:
    a, b = certs()
    client = DtlsConnection(is_client=True, certificate=a, remote_fingerprints=b.getFingerprints())
    server = DtlsConnection(is_client=False, certificate=b, remote_fingerprints=[])
    link = Link(client, server)
    link.handshake()
    link.run(lambda: False)
    assert client.state == "connected" and server.state == "connecting" and link.events[False] == []
    client.send_application_data(b"early")
    link.run(lambda: False)
    server.set_remote_fingerprints(a.getFingerprints())
    link.run(lambda: False)
    assert state(server) == "connected"
    assert [type(e) for e in link.events[False]] == [HandshakeComplete, ApplicationData]


def test_small_mtu_fragments_every_flight() -> None:
    rsa = _rsa_cert()
    _, b = certs()
    client = DtlsConnection(
        is_client=True, certificate=rsa, remote_fingerprints=b.getFingerprints(), mtu=300
    )
    server = DtlsConnection(
        is_client=False, certificate=b, remote_fingerprints=rsa.getFingerprints(), mtu=300
    )
    link = Link(client, server, loss=0.2, reorder=0.3, seed=3)
    link.handshake()
    assert client.state == server.state == "connected"
    assert max(len(d) for d in link.sent[True] + link.sent[False]) <= 300


def test_lost_final_flight_is_repeated_when_the_client_retransmits() -> None:
    client, server = pair()
    dropped: list[bytes] = []

    def drop_first_server_finished(src: DtlsConnection, datagram: bytes) -> bytes | None:
        if (
            not src.is_client
            and any(r.epoch == 1 for r in records_untrusted(datagram))
            and not dropped
        ):
            dropped.append(datagram)
            return None
        return datagram

    link = Link(client, server, tap=drop_first_server_finished)
    elapsed = link.handshake()
    assert dropped and client.state == server.state == "connected"
    assert client.stats.flight_retransmissions == 1
    assert 1.0 <= elapsed < 1.5


def test_start_twice_and_data_before_handshake() -> None:
    client, _ = pair()
    with pytest.raises(InvalidStateError):
        client.send_application_data(b"x")
    client.start(0.0)
    with pytest.raises(InvalidStateError):
        client.start(0.0)
    with pytest.raises(InvalidStateError):
        client.export_keying_material("x", 10)


@pytest.mark.parametrize("group", [23, 24, 29])
def test_each_key_exchange_group(group: int) -> None:
    client, server = pair(groups=(group,))
    link = Link(client, server)
    link.handshake()
    events = [link.events[True][0], link.events[False][0]]
    assert all(isinstance(e, HandshakeComplete) and e.key_exchange_group == group for e in events)


@pytest.mark.parametrize("scheme", [0x0401, 0x0501, 0x0601, 0x0804, 0x0805, 0x0806])
def test_rsa_signature_schemes(scheme: int) -> None:
    from trio_rtc.dtls.keys import sign, verify_signature
    from trio_rtc.dtls.records import DtlsError

    rsa = _rsa_cert()
    signature = sign(rsa.private_key, scheme, b"signed data")
    verify_signature(rsa.der, scheme, b"signed data", signature)
    with pytest.raises(DtlsError):
        verify_signature(rsa.der, scheme, b"other data", signature)
    with pytest.raises(DtlsError):
        verify_signature(rsa.der, 0x0403, b"signed data", signature)  # ECDSA scheme, RSA key


_RSA: list[RTCCertificate] = []


def _rsa_cert() -> RTCCertificate:
    if not _RSA:
        _RSA.append(
            RTCCertificate.generate_sync({"name": "RSASSA-PKCS1-v1_5", "modulusLength": 2048})
        )
    return _RSA[0]


def test_rsa_server_certificate_selects_rsa_suite() -> None:
    a, _ = certs()
    rsa = _rsa_cert()
    client = DtlsConnection(
        is_client=True, certificate=a, remote_fingerprints=rsa.getFingerprints()
    )
    server = DtlsConnection(
        is_client=False, certificate=rsa, remote_fingerprints=a.getFingerprints()
    )
    link = Link(client, server)
    link.handshake()
    [event] = link.events[True]
    assert isinstance(event, HandshakeComplete) and event.cipher_suite == 0xC02F
