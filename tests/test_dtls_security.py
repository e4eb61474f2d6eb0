"""Safe-by-default behaviour: tampering, replay, old epochs, weak offers, floods."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from dtls_sim import Link, pair

from trio_rtc.dtls import ApplicationData, ConnectionFailed, DtlsConnection
from trio_rtc.dtls.handshake import ClientHello, ExtensionType, HandshakeType, encode_handshake
from trio_rtc.dtls.records import ContentType, encode_record, records_untrusted


def connected_pair() -> tuple[DtlsConnection, DtlsConnection, Link]:
    client, server = pair()
    link = Link(client, server)
    link.handshake()
    link.run(lambda: False)
    assert client.state == server.state == "connected"
    return client, server, link


def client_hello_datagram(
    suites: list[int],
    *,
    version: int = 0xFEFD,
    extensions: dict[int, bytes] | None = None,
    record_seq: int = 0,
) -> bytes:
    if extensions is None:
        extensions = {
            ExtensionType.SUPPORTED_GROUPS: b"\x00\x02\x00\x1d",
            ExtensionType.SIGNATURE_ALGORITHMS: b"\x00\x02\x04\x03",
            ExtensionType.EXTENDED_MASTER_SECRET: b"",
        }
    hello = ClientHello(b"r" * 32, b"", b"", suites, b"\x00", extensions, version)
    return encode_record(
        ContentType.HANDSHAKE,
        0,
        record_seq,
        encode_handshake(HandshakeType.CLIENT_HELLO, 0, hello.encode()),
    )


def server_reply_alert(server: DtlsConnection) -> tuple[int, int]:
    [datagram] = server.datagrams_to_send(0.0)
    [record] = records_untrusted(datagram)
    assert record.content_type == ContentType.ALERT and record.epoch == 0
    return record.fragment[0], record.fragment[1]


@pytest.mark.parametrize(
    "suites",
    [
        [0x002F, 0x0035, 0x000A],  # RSA key transport with CBC / 3DES
        [0xC013, 0xC014],  # ECDHE-RSA with CBC-SHA1
        [0x0004, 0x0005],  # RC4
    ],
)
def test_client_hello_with_only_weak_suites_is_refused(suites: list[int]) -> None:
    _, server = pair()
    server.receive_datagram(client_hello_datagram(suites), 0.0)
    assert server.state == "failed"
    assert server_reply_alert(server) == (2, 40)  # fatal handshake_failure
    event = server.next_event()
    assert isinstance(event, ConnectionFailed) and "cipher suite" in event.reason


def test_dtls_1_0_only_client_is_refused() -> None:
    _, server = pair()
    server.receive_datagram(client_hello_datagram([0xC02B], version=0xFEFF), 0.0)
    assert server_reply_alert(server) == (2, 70)  # protocol_version


def test_extended_master_secret_can_be_required() -> None:
    _, server = pair(server_require_extended_master_secret=True)
    extensions: dict[int, bytes] = {ExtensionType.SUPPORTED_GROUPS: b"\x00\x02\x00\x1d"}
    server.receive_datagram(client_hello_datagram([0xC02B], extensions=extensions), 0.0)
    assert server_reply_alert(server) == (2, 40)


def test_malformed_client_hello_is_dropped_not_fatal() -> None:
    _, server = pair()
    garbage = encode_record(
        22, 0, 0, encode_handshake(HandshakeType.CLIENT_HELLO, 0, b"\xfe\xfd" + b"x" * 10)
    )
    server.receive_datagram(garbage, 0.0)
    assert server.state == "connecting" and server.stats.content_dropped == 1
    server.receive_datagram(client_hello_datagram([0xC02B], record_seq=1), 0.0)
    assert server.state == "connecting" and server.datagrams_to_send(0.0)  # flight 4 went out


def test_tampered_replayed_and_old_epoch_records_are_dropped() -> None:
    client, server, _link = connected_pair()
    client.send_application_data(b"genuine")
    [datagram] = client.datagrams_to_send(0.0)
    tampered = datagram[:-3] + bytes([datagram[-3] ^ 0x40]) + datagram[-2:]
    server.receive_datagram(tampered, 1.0)
    assert server.stats.auth_failed_dropped == 1 and server.next_event() is None
    server.receive_datagram(datagram, 1.0)
    assert server.next_event() == ApplicationData(b"genuine")
    server.receive_datagram(datagram, 1.0)  # replay
    assert server.stats.replay_dropped == 1 and server.next_event() is None
    # Plaintext application data in epoch 0, and a record of an epoch that never existed.
    server.receive_datagram(encode_record(23, 0, 99, b"forged"), 1.0)
    server.receive_datagram(encode_record(23, 2, 1, b"x" * 40), 1.0)
    assert server.stats.epoch_dropped == 2 and server.next_event() is None
    # An unauthenticated fatal alert or close_notify does not end an established association.
    server.receive_datagram(encode_record(21, 0, 100, b"\x02\x28"), 1.0)
    server.receive_datagram(encode_record(21, 0, 101, b"\x01\x00"), 1.0)
    assert server.state == "connected" and server.next_event() is None
    # A record whose header is cut short: the datagram is dropped and counted.
    server.receive_datagram(datagram[:10], 1.0)
    assert server.stats.malformed_dropped == 1


def test_renegotiation_is_refused_with_a_warning() -> None:
    client, server, _link = connected_pair()
    hello = ClientHello(b"r" * 32, b"", b"", [0xC02B], b"\x00", {})
    message = encode_handshake(
        HandshakeType.CLIENT_HELLO, server.reassembler.next_seq, hello.encode()
    )
    server.receive_datagram(client.records.seal(ContentType.HANDSHAKE, 1, message), 2.0)
    [reply] = server.datagrams_to_send(2.0)
    [record] = records_untrusted(reply)
    assert record.content_type == ContentType.ALERT and record.epoch == 1
    assert client.records.open(record) == b"\x01\x64"  # warning no_renegotiation
    assert server.state == "connected"


def test_garbage_flood_does_not_grow_memory() -> None:
    client, server, link = connected_pair()
    _, fresh_server = pair()
    rng = random.Random(7)

    def garbage() -> bytes:
        kind = rng.randrange(4)
        if kind == 0:
            return rng.randbytes(rng.randrange(1, 1200))
        if kind == 1:  # well-formed epoch-0 handshake fragments announcing big messages
            seq = rng.randrange(0, 20)
            length = rng.randrange(1, 1 << 16)
            offset = rng.randrange(0, length)
            frag = rng.randbytes(min(200, length - offset))
            header = (
                bytes([rng.choice([1, 11, 16, 20])])
                + length.to_bytes(3, "big")
                + seq.to_bytes(2, "big")
            )
            header += offset.to_bytes(3, "big") + len(frag).to_bytes(3, "big")
            return encode_record(22, 0, rng.randrange(1 << 48), header + frag)
        if kind == 2:  # epoch-1 records that do not authenticate
            return encode_record(
                rng.choice([21, 22, 23]), 1, rng.randrange(1 << 48), rng.randbytes(100)
            )
        return encode_record(
            rng.choice([20, 21, 22, 23]), rng.randrange(1 << 16), rng.randrange(1 << 48), b"z" * 50
        )

    def flood(count: int) -> None:
        for _ in range(count):
            data = garbage()
            server.receive_datagram(data, 3.0)
            fresh_server.receive_datagram(data, 3.0)
            server.datagrams_to_send(3.0)
            fresh_server.datagrams_to_send(3.0)
            while server.next_event() is not None or fresh_server.next_event() is not None:
                pass

    flood(2000)  # warm-up: caches, interned objects
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    flood(5000)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 1_000_000, after - before
    assert server.state == "connected"
    assert len(server._early_records) <= 32 and len(fresh_server._early_records) <= 32
    # The established association still works after the flood.
    client.send_application_data(b"still here")
    link.run(lambda: False)
    assert link.events[False][-1] == ApplicationData(b"still here")


def test_certificate_with_an_unknown_x509_version_is_a_dtls_error() -> None:
    # Found by the handshake fuzzer: cryptography raises x509.InvalidVersion (not a ValueError)
    # for a version field it does not know; it must become a bad_certificate DtlsError.
    from trio_rtc.dtls.certificate import RTCCertificate
    from trio_rtc.dtls.connection import DtlsError
    from trio_rtc.dtls.keys import load_certificate_untrusted

    der = RTCCertificate.generate_sync().der
    version_v3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    assert version_v3 in der
    mutated = der.replace(version_v3, bytes.fromhex("a003020103"), 1)
    with pytest.raises(DtlsError) as caught:
        load_certificate_untrusted(mutated)
    assert caught.value.alert == 42


@pytest.mark.parametrize("message_seq", [65535, 65534, 1000])
def test_a_client_hello_numbered_near_the_16_bit_limit_is_dropped(message_seq: int) -> None:
    """Issue 16: a ClientHello with message_seq 65535 made the server's own numbers (which follow
    it) overflow: struct.error escaped the core. Now it is dropped and counted; a proper one
    that follows is answered."""
    _, server = pair()
    hello = bytearray(client_hello_datagram([0xC02B]))
    hello[13 + 4 : 13 + 6] = message_seq.to_bytes(2, "big")  # record header, then type+length
    server.receive_datagram(bytes(hello), 0.0)
    assert server.state == "connecting" and server.stats.content_dropped == 1
    assert server.datagrams_to_send(0.0) == []
    server.receive_datagram(client_hello_datagram([0xC02B], record_seq=1), 0.0)
    assert server.state == "connecting" and server.datagrams_to_send(0.0)
