"""Interop of the DTLS core with OpenSSL (pyOpenSSL) over real UDP on 127.0.0.1, both roles."""

from __future__ import annotations

import math

import pytest
import trio
from dtls_peer_openssl import SRTP_NAMES, OpenSSLPeer

from trio_rtc.dtls import (
    ApplicationData,
    CipherSuite,
    ConnectionClosed,
    DtlsConnection,
    DtlsEvent,
    HandshakeComplete,
    RTCCertificate,
    SrtpProfile,
)
from trio_rtc.dtls.crypto import SRTP_PROFILES
from trio_rtc.dtls.keys import NamedGroup

pytestmark = pytest.mark.interop

_CERTS: dict[str, RTCCertificate] = {}


def cert(kind: str) -> RTCCertificate:
    """Certificates are cached per kind: RSA generation is slow and not what is tested here."""
    if kind not in _CERTS:
        algorithm = (
            {"name": "ECDSA", "namedCurve": "P-256"}
            if kind == "ecdsa"
            else {"name": "RSASSA-PKCS1-v1_5"}
        )
        _CERTS[kind] = RTCCertificate.generate_sync(algorithm)
    return _CERTS[kind]


def other_cert(kind: str) -> RTCCertificate:
    return cert(kind + "-2") if kind + "-2" in _CERTS else _make_other(kind)


def _make_other(kind: str) -> RTCCertificate:
    algorithm = (
        {"name": "ECDSA", "namedCurve": "P-256"}
        if kind == "ecdsa"
        else {"name": "RSASSA-PKCS1-v1_5"}
    )
    _CERTS[kind + "-2"] = RTCCertificate.generate_sync(algorithm)
    return _CERTS[kind + "-2"]


class CoreRunner:
    """Drives a DtlsConnection over a trio UDP socket and collects its events."""

    def __init__(
        self, core: DtlsConnection, sock: trio.socket.SocketType, peer: tuple[str, int]
    ) -> None:
        self.core = core
        self.sock = sock
        self.peer = peer
        self.events: list[DtlsEvent] = []
        self.changed = trio.Event()

    async def flush(self) -> None:
        for datagram in self.core.datagrams_to_send(trio.current_time()):
            await self.sock.sendto(datagram, self.peer)

    async def run(self) -> None:
        self.core.start(trio.current_time())
        while True:
            await self.flush()
            deadline = self.core.get_timer()
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                data, _ = await self.sock.recvfrom(65536)
                self.core.receive_datagram(data, trio.current_time())
            self.core.handle_timer(trio.current_time())
            while (event := self.core.next_event()) is not None:
                self.events.append(event)
                self.changed.set()
                self.changed = trio.Event()

    async def wait_for(self, kind: type) -> DtlsEvent:
        while True:
            for event in self.events:
                if isinstance(event, kind):
                    return event
            await self.changed.wait()


async def _bound() -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    return sock


CASES = [
    # (our role is client, our key, OpenSSL key, OpenSSL cipher list, our groups, SRTP profile)
    (
        True,
        "ecdsa",
        "ecdsa",
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        (NamedGroup.X25519,),
        SrtpProfile.SRTP_AEAD_AES_128_GCM,
    ),
    (
        False,
        "ecdsa",
        "ecdsa",
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        (NamedGroup.SECP256R1,),
        SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80,
    ),
    (
        True,
        "rsa",
        "ecdsa",
        b"ECDHE-ECDSA-AES256-GCM-SHA384",
        (NamedGroup.SECP256R1,),
        SrtpProfile.SRTP_AEAD_AES_256_GCM,
    ),
    (
        False,
        "ecdsa",
        "rsa",
        b"ECDHE-ECDSA-AES256-GCM-SHA384",
        (NamedGroup.X25519,),
        SrtpProfile.SRTP_AEAD_AES_128_GCM,
    ),
    (
        True,
        "ecdsa",
        "ecdsa",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        (NamedGroup.SECP384R1,),
        SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80,
    ),
    (
        False,
        "ecdsa",
        "ecdsa",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        (NamedGroup.X25519,),
        SrtpProfile.SRTP_AEAD_AES_256_GCM,
    ),
    (
        True,
        "ecdsa",
        "rsa",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        (NamedGroup.X25519,),
        SrtpProfile.SRTP_AEAD_AES_128_GCM,
    ),
    (
        False,
        "rsa",
        "ecdsa",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        (NamedGroup.SECP256R1,),
        SrtpProfile.SRTP_AEAD_AES_128_GCM,
    ),
    (
        True,
        "ecdsa",
        "rsa",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        (NamedGroup.SECP256R1,),
        SrtpProfile.SRTP_AEAD_AES_128_GCM,
    ),
    (
        False,
        "rsa",
        "ecdsa",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        (NamedGroup.X25519,),
        SrtpProfile.SRTP_AEAD_AES_256_GCM,
    ),
    (
        True,
        "ecdsa",
        "rsa",
        b"ECDHE-RSA-CHACHA20-POLY1305",
        (NamedGroup.X25519,),
        SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80,
    ),
    (
        False,
        "rsa",
        "ecdsa",
        b"ECDHE-RSA-CHACHA20-POLY1305",
        (NamedGroup.SECP256R1,),
        SrtpProfile.SRTP_AEAD_AES_128_GCM,
    ),
]

SUITE_BY_OPENSSL_NAME = {
    b"ECDHE-ECDSA-AES128-GCM-SHA256": CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    b"ECDHE-ECDSA-AES256-GCM-SHA384": CipherSuite.ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    b"ECDHE-ECDSA-CHACHA20-POLY1305": CipherSuite.ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    b"ECDHE-RSA-AES128-GCM-SHA256": CipherSuite.ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    b"ECDHE-RSA-AES256-GCM-SHA384": CipherSuite.ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    b"ECDHE-RSA-CHACHA20-POLY1305": CipherSuite.ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}


@pytest.mark.parametrize(
    ("we_are_client", "our_key", "their_key", "cipher", "groups", "profile"), CASES
)
async def test_interop_with_openssl(
    we_are_client: bool,
    our_key: str,
    their_key: str,
    cipher: bytes,
    groups: tuple[int, ...],
    profile: SrtpProfile,
) -> None:
    # The server's key decides between ECDSA and RSA suites.
    server_key = their_key if we_are_client else our_key
    if server_key == "rsa":
        cipher = cipher.replace(b"ECDHE-ECDSA", b"ECDHE-RSA")
    ours = cert(our_key)
    theirs = other_cert(their_key)
    our_sock, their_sock = await _bound(), await _bound()
    with our_sock, their_sock:
        peer = OpenSSLPeer(
            is_client=not we_are_client,
            certificate=theirs,
            cipher_list=cipher,
            srtp_profiles=SRTP_NAMES[profile],
        )
        core = DtlsConnection(
            is_client=we_are_client,
            certificate=ours,
            remote_fingerprints=theirs.getFingerprints(),
            groups=groups,
            srtp_profiles=(profile,),
            initial_retransmit_timeout=0.2,
        )
        runner = CoreRunner(core, our_sock, their_sock.getsockname())
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.run, their_sock, our_sock.getsockname())
                nursery.start_soon(runner.run)
                complete = await runner.wait_for(HandshakeComplete)
                await peer.handshake_done.wait()
                assert isinstance(complete, HandshakeComplete)
                assert complete.cipher_suite == SUITE_BY_OPENSSL_NAME[cipher]
                assert complete.srtp_profile == profile
                assert peer.selected_srtp_profile() == SRTP_NAMES[profile]
                assert complete.extended_master_secret
                assert complete.remote_certificate_der == theirs.der
                if not we_are_client or groups[0] != NamedGroup.SECP384R1:
                    assert complete.key_exchange_group == groups[0]
                # SRTP keys: both sides derive the same client/server keys and salts.
                info = SRTP_PROFILES[profile]
                exported = peer.export(2 * (info.key_length + info.salt_length))
                k, s = info.key_length, info.salt_length
                client_key, server_key_b = exported[:k], exported[k : 2 * k]
                client_salt, server_salt = exported[2 * k : 2 * k + s], exported[2 * k + s :]
                keys = complete.srtp_keys
                assert keys is not None
                if we_are_client:
                    assert (keys.local_key, keys.local_salt) == (client_key, client_salt)
                    assert (keys.remote_key, keys.remote_salt) == (server_key_b, server_salt)
                else:
                    assert (keys.local_key, keys.local_salt) == (server_key_b, server_salt)
                    assert (keys.remote_key, keys.remote_salt) == (client_key, client_salt)
                assert core.export_keying_material("EXTRACTOR-dtls_srtp", len(exported)) == exported

                # Application data both ways: OpenSSL echoes what it receives.
                core.send_application_data(b"ping from trio_rtc")
                await runner.flush()
                reply = await runner.wait_for(ApplicationData)
                assert isinstance(reply, ApplicationData)
                assert reply.data == b"echo:ping from trio_rtc"
                assert peer.received == [b"ping from trio_rtc"]

                if we_are_client:
                    # Our close_notify reaches OpenSSL.
                    core.close()
                    await runner.flush()
                    await peer.closed_by_peer.wait()
                else:
                    # OpenSSL's close_notify closes us.
                    peer.shutdown()
                    await runner.wait_for(ConnectionClosed)
                    assert core.state == "closed"
                assert peer.failed is None
                nursery.cancel_scope.cancel()


async def test_openssl_client_with_cookie_exchange() -> None:
    """Our server sends a HelloVerifyRequest; OpenSSL's client answers it with the cookie."""
    ours, theirs = cert("ecdsa"), other_cert("ecdsa")
    our_sock, their_sock = await _bound(), await _bound()
    with our_sock, their_sock:
        peer = OpenSSLPeer(is_client=True, certificate=theirs)
        core = DtlsConnection(
            is_client=False,
            certificate=ours,
            remote_fingerprints=theirs.getFingerprints(),
            use_cookies=True,
        )
        runner = CoreRunner(core, our_sock, their_sock.getsockname())
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.run, their_sock, our_sock.getsockname())
                nursery.start_soon(runner.run)
                await runner.wait_for(HandshakeComplete)
                await peer.handshake_done.wait()
                peer.send(b"from openssl")
                assert (await runner.wait_for(ApplicationData)) == ApplicationData(b"from openssl")
                nursery.cancel_scope.cancel()


async def test_openssl_server_rejects_wrong_fingerprint_from_us() -> None:
    """We refuse an OpenSSL server whose certificate is not the one in the remote SDP."""
    ours, theirs = cert("ecdsa"), other_cert("ecdsa")
    our_sock, their_sock = await _bound(), await _bound()
    with our_sock, their_sock:
        peer = OpenSSLPeer(is_client=False, certificate=theirs)
        core = DtlsConnection(
            is_client=True, certificate=ours, remote_fingerprints=ours.getFingerprints()
        )
        runner = CoreRunner(core, our_sock, their_sock.getsockname())
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.run, their_sock, our_sock.getsockname())
                nursery.start_soon(runner.run)
                from trio_rtc.dtls import ConnectionFailed

                failed = await runner.wait_for(ConnectionFailed)
                assert isinstance(failed, ConnectionFailed) and failed.alert == 42
                assert core.state == "failed"
                await runner.flush()
                await peer.failure.wait()
                assert peer.failed is not None and "certificate" in peer.failed.lower()
                nursery.cancel_scope.cancel()


async def test_our_client_answers_openssl_hello_verify_request() -> None:
    ours, theirs = cert("ecdsa"), other_cert("ecdsa")
    our_sock, their_sock = await _bound(), await _bound()
    with our_sock, their_sock:
        peer = OpenSSLPeer(is_client=False, certificate=theirs, cookie_exchange=True)
        core = DtlsConnection(
            is_client=True, certificate=ours, remote_fingerprints=theirs.getFingerprints()
        )
        runner = CoreRunner(core, our_sock, their_sock.getsockname())
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.run, their_sock, our_sock.getsockname())
                nursery.start_soon(runner.run)
                await runner.wait_for(HandshakeComplete)
                assert core._flow._cookie_rounds == 1
                core.send_application_data(b"after cookie")
                await runner.flush()
                assert (await runner.wait_for(ApplicationData)) == ApplicationData(
                    b"echo:after cookie"
                )
                nursery.cancel_scope.cancel()
