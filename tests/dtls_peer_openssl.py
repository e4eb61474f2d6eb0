"""An OpenSSL DTLS 1.2 endpoint (through pyOpenSSL, test-only) speaking over a trio UDP socket.

It is the independent peer of the interop tests: OpenSSL does the handshake, the record layer,
SRTP key export and close_notify; this module only moves datagrams between its memory BIOs and a
socket bound to 127.0.0.1, and echoes application data back with a prefix.
"""

from __future__ import annotations

import math

import attrs
import trio
from OpenSSL import SSL

from trio_rtc.dtls import RTCCertificate

SRTP_NAMES = {
    0x0001: b"SRTP_AES128_CM_SHA1_80",
    0x0007: b"SRTP_AEAD_AES_128_GCM",
    0x0008: b"SRTP_AEAD_AES_256_GCM",
}


@attrs.define
class OpenSSLPeer:
    is_client: bool
    certificate: RTCCertificate
    cipher_list: bytes = b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    srtp_profiles: bytes = b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
    mtu: int = 1200
    #: Server only: answer the first ClientHello with a HelloVerifyRequest (RFC 6347 §4.2.1).
    cookie_exchange: bool = False
    received: list[bytes] = attrs.Factory(list)
    handshake_done: trio.Event = attrs.Factory(trio.Event)
    closed_by_peer: trio.Event = attrs.Factory(trio.Event)
    failed: str | None = None
    failure: trio.Event = attrs.Factory(trio.Event)
    connection: SSL.Connection | None = None

    def _make_connection(self) -> SSL.Connection:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_options(SSL.OP_NO_QUERY_MTU)
        ctx.use_certificate(self.certificate.certificate)
        ctx.use_privatekey(self.certificate.private_key)
        # WebRTC authenticates by fingerprint, which the test checks; accept the self-signed cert
        # but insist that the peer sends one.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        ctx.set_cipher_list(self.cipher_list)
        if self.srtp_profiles:
            ctx.set_tlsext_use_srtp(self.srtp_profiles)
        if self.cookie_exchange:
            assert SSL.OP_COOKIE_EXCHANGE is not None
            ctx.set_options(SSL.OP_COOKIE_EXCHANGE)
            ctx.set_cookie_generate_callback(lambda ssl: b"fixed-test-cookie")
            ctx.set_cookie_verify_callback(lambda ssl, cookie: cookie == b"fixed-test-cookie")
        conn = SSL.Connection(ctx, None)
        conn.set_ciphertext_mtu(self.mtu)
        if self.is_client:
            conn.set_connect_state()
        else:
            conn.set_accept_state()
        return conn

    def send(self, data: bytes) -> None:
        assert self.connection is not None
        self.connection.send(data)

    def shutdown(self) -> None:
        assert self.connection is not None
        self.connection.shutdown()

    def export(self, length: int) -> bytes:
        assert self.connection is not None
        return self.connection.export_keying_material(b"EXTRACTOR-dtls_srtp", length)

    def selected_srtp_profile(self) -> bytes:
        assert self.connection is not None
        return self.connection.get_selected_srtp_profile()

    async def run(self, sock: trio.socket.SocketType, peer: tuple[str, int]) -> None:
        """Serve until cancelled: handshake, then echo ``b"echo:" + data`` for each message."""
        conn = self.connection = self._make_connection()
        while True:
            self._drive(conn)
            while True:
                try:
                    outgoing = conn.bio_read(65536)
                except SSL.WantReadError:
                    break
                await sock.sendto(outgoing, peer)
            timeout = conn.DTLSv1_get_timeout()
            # Wake up now and then to flush what send() and shutdown() queued from the test.
            with trio.move_on_after(min(timeout if timeout is not None else math.inf, 0.02)):
                data, _address = await sock.recvfrom(65536)
                conn.bio_write(data)
            if timeout is not None and conn.DTLSv1_get_timeout() == 0:
                conn.DTLSv1_handle_timeout()

    def _fail(self, exc: Exception) -> None:
        self.failed = repr(exc)
        self.failure.set()

    def _drive(self, conn: SSL.Connection) -> None:
        if self.failed is not None or self.closed_by_peer.is_set():
            return
        if not self.handshake_done.is_set():
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                return
            except SSL.Error as exc:
                self._fail(exc)
                return
            self.handshake_done.set()
        while True:
            try:
                data = conn.recv(65536)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self.closed_by_peer.set()
                return
            except SSL.Error as exc:
                self._fail(exc)
                return
            self.received.append(data)
            conn.send(b"echo:" + data)
