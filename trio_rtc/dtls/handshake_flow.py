"""The client and server handshake of DTLS 1.2 (RFC 6347 §4.2, RFC 5246 §7.3), one message at a
time. :class:`HandshakeFlow` decides; :class:`~.connection.DtlsConnection` sends and times.

Full handshake with mutual authentication, as WebRTC always does it::

    client                                         server
    ClientHello                  -------->                          flight 1
                                 <--------  HelloVerifyRequest      flight 2 (if cookies)
    ClientHello (with cookie)    -------->                          flight 3
                                            ServerHello             flight 4
                                            Certificate
                                            ServerKeyExchange
                                            CertificateRequest
                                 <--------  ServerHelloDone
    Certificate                                                     flight 5
    ClientKeyExchange
    CertificateVerify
    [ChangeCipherSpec]
    Finished                     -------->
                                            [ChangeCipherSpec]      flight 6
                                 <--------  Finished
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .crypto import (
    CIPHER_SUITES,
    CipherSuiteInfo,
    RecordProtection,
    SrtpProfile,
    compute_master_secret,
    finished_verify_data,
    key_block,
)
from .events import HandshakeComplete
from .handshake import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    ExtensionType,
    Finished,
    HandshakeType,
    HelloVerifyRequest,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
    ec_point_formats_untrusted,
    encode_handshake,
    encode_u16_list_extension,
    encode_use_srtp,
    u16_list_extension_untrusted,
    use_srtp_untrusted,
)
from .keys import (
    SUPPORTED_SIGNATURE_SCHEMES,
    KeyShare,
    NamedGroup,
    choose_signature_scheme,
    load_certificate_untrusted,
    sign,
    verify_signature,
)
from .recordlayer import FlightEntry
from .records import DTLS_1_2, ContentType, DtlsError

if TYPE_CHECKING:
    from .connection import DtlsConnection
    from .handshake import HandshakeFragment

__all__ = ["HandshakeFlow"]

UNEXPECTED_MESSAGE = 10
HANDSHAKE_FAILURE = 40
UNSUPPORTED_CERTIFICATE = 43
ILLEGAL_PARAMETER = 47
DECRYPT_ERROR = 51
PROTOCOL_VERSION = 70
UNSUPPORTED_EXTENSION = 110
#: TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3).
EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
#: ecdsa_sign and rsa_sign certificate types (RFC 8422 §5.5, RFC 5246 §7.4.4).
CERTIFICATE_TYPES = bytes([64, 1])


class HandshakeFlow:
    """Handshake state of one connection: transcript, randoms, negotiated parameters."""

    # Slots, not a __dict__: one per connection, kept for its whole life.
    __slots__ = (
        "_client_extensions",
        "_cookie_rounds",
        "_cookie_secret",
        "certificate_requested",
        "client_random",
        "conn",
        "extended_master_secret",
        "key_share",
        "master_secret",
        "peer_signature_schemes",
        "pre_master_secret",
        "server_random",
        "srtp_profile",
        "step",
        "suite",
        "transcript",
    )

    def __init__(self, conn: DtlsConnection) -> None:
        self.conn = conn
        self.step = "start"
        #: Every handshake message so far as it enters the hashes: unfragmented, with its DTLS
        #: header. The first ClientHello and the HelloVerifyRequest are left out (RFC 6347 §4.2.1).
        self.transcript: list[bytes] = []
        self.client_random = b""
        self.server_random = b""
        self.suite: int | None = None
        self.master_secret: bytes | None = None
        self.extended_master_secret = False
        self.srtp_profile: SrtpProfile | None = None
        self.key_share: KeyShare | None = None
        self.pre_master_secret = b""
        self.peer_signature_schemes: list[int] | None = None
        self.certificate_requested = False
        self._client_extensions: dict[int, bytes] = {}
        self._cookie_secret = conn.random_bytes(32)
        self._cookie_rounds = 0

    # --- shared helpers ------------------------------------------------------------------------

    def suite_info(self) -> CipherSuiteInfo:
        assert self.suite is not None
        return CIPHER_SUITES[self.suite]

    def _transcript_hash(self) -> bytes:
        return hashlib.new(self.suite_info().prf_hash, b"".join(self.transcript)).digest()

    def _record(self, msg_type: int, seq: int, body: bytes) -> None:
        self.transcript.append(encode_handshake(msg_type, seq, body))

    def _entry(self, msg_type: int, body: bytes, epoch: int = 0) -> FlightEntry:
        seq = self.conn.next_message_seq()
        self._record(msg_type, seq, body)
        return FlightEntry(ContentType.HANDSHAKE, epoch, msg_type, seq, body)

    def _compute_master_secret(self) -> None:
        info = self.suite_info()
        self.master_secret = compute_master_secret(
            info.prf_hash,
            self.pre_master_secret,
            client_random=self.client_random,
            server_random=self.server_random,
            session_hash=self._transcript_hash() if self.extended_master_secret else None,
        )
        self.pre_master_secret = b""

    def record_protections(self) -> tuple[RecordProtection, RecordProtection]:
        """``(read, write)`` protections for epoch 1."""
        info = self.suite_info()
        assert self.master_secret is not None
        client_key, server_key, client_iv, server_iv = key_block(
            info,
            self.master_secret,
            client_random=self.client_random,
            server_random=self.server_random,
        )
        client = RecordProtection(info, client_key, client_iv)
        server = RecordProtection(info, server_key, server_iv)
        return (server, client) if self.conn.is_client else (client, server)

    def _verify_data(self, label: bytes) -> bytes:
        assert self.master_secret is not None
        return finished_verify_data(
            self.suite_info().prf_hash, self.master_secret, label, self._transcript_hash()
        )

    def _complete(self) -> None:
        self.step = "done"
        assert self.suite is not None and self.conn.remote_certificate_der is not None
        profile = self.srtp_profile
        self.conn.complete_handshake(
            HandshakeComplete(
                cipher_suite=self.suite,
                srtp_profile=profile,
                srtp_keys=self.conn.srtp_keys(profile) if profile is not None else None,
                remote_certificate_der=self.conn.remote_certificate_der,
                extended_master_secret=self.extended_master_secret,
                key_exchange_group=self.key_share.group if self.key_share is not None else 0,
            )
        )
        # What only the handshake needed goes now: a connection lives for hours, and these
        # (every handshake message, the ephemeral private key, the peer's offers) would stay
        # with it. After "done" only the suite, the randoms and the master secret are read
        # (export_keying_material); a repeated flight is answered from the connection's own
        # copy of our last flight, and a new ClientHello is refused (no renegotiation).
        self.transcript = []
        self.key_share = None
        self.peer_signature_schemes = None
        self._client_extensions = {}

    def _peer_certificate_untrusted(self, body: bytes) -> bytes:
        chain = Certificate.parse_untrusted(body).certificates
        if not chain:
            # WebRTC requires both certificates (RFC 8827 §6.5).
            raise DtlsError("peer sent no certificate", alert=HANDSHAKE_FAILURE)
        leaf = chain[0]
        load_certificate_untrusted(leaf)
        self.conn.authenticate_peer(leaf)
        return leaf

    def accepts_new_client_hello(self, fragment: HandshakeFragment) -> bool:
        return (
            not self.conn.is_client
            and self.step in ("start", "wait_client_hello")
            and fragment.msg_type == HandshakeType.CLIENT_HELLO
        )

    # --- dispatch ----------------------------------------------------------------------------

    def handle_message(self, msg_type: int, seq: int, body: bytes, epoch: int, now: float) -> None:
        # Finished is the only message protected by the new epoch; anything else in epoch 1, or
        # a Finished in epoch 0, is out of place (RFC 5246 §7.4.9).
        if (msg_type == HandshakeType.FINISHED) != (epoch == 1) and self.step != "done":
            raise DtlsError(
                f"handshake message {msg_type} in epoch {epoch}", alert=UNEXPECTED_MESSAGE
            )
        if self.step == "done":
            if msg_type in (HandshakeType.CLIENT_HELLO, HandshakeType.HELLO_REQUEST):
                self.conn.refuse_renegotiation()
            return
        if not self.conn.is_client and self.step in ("start", "wait_client_hello"):
            if msg_type != HandshakeType.CLIENT_HELLO:
                # A server that has not answered keeps no state, and so no grudge either.
                self.conn.stats.content_dropped += 1
                return
        handler = (_CLIENT_STEPS if self.conn.is_client else _SERVER_STEPS).get(
            (self.step, msg_type)
        )
        if handler is None:
            raise DtlsError(
                f"unexpected handshake message {msg_type} in step {self.step}",
                alert=UNEXPECTED_MESSAGE,
            )
        handler(self, seq, body, now)

    # --- client --------------------------------------------------------------------------------

    def client_start(self, now: float) -> None:
        self.client_random = self.conn.random_bytes(32)
        conn = self.conn
        extensions: dict[int, bytes] = {
            ExtensionType.RENEGOTIATION_INFO: b"\x00",
            ExtensionType.EXTENDED_MASTER_SECRET: b"",
            ExtensionType.SUPPORTED_GROUPS: encode_u16_list_extension(self._advertised_groups()),
            ExtensionType.EC_POINT_FORMATS: b"\x01\x00",
            ExtensionType.SIGNATURE_ALGORITHMS: encode_u16_list_extension(
                SUPPORTED_SIGNATURE_SCHEMES
            ),
        }
        if conn.srtp_profiles:
            extensions[ExtensionType.USE_SRTP] = encode_use_srtp(conn.srtp_profiles)
        self._client_extensions = extensions
        self._send_client_hello(b"", now)

    def _advertised_groups(self) -> list[int]:
        # supported_groups also names the curves whose ECDSA certificates we can verify
        # (RFC 8422 §5.1.1), so P-256 and P-384 are always listed, after the preferred groups.
        groups = list(self.conn.groups)
        groups += [g for g in (NamedGroup.SECP256R1, NamedGroup.SECP384R1) if g not in groups]
        return groups

    def _send_client_hello(self, cookie: bytes, now: float) -> None:
        hello = ClientHello(
            random=self.client_random,
            session_id=b"",
            cookie=cookie,
            cipher_suites=list(self.conn.cipher_suites),
            compression_methods=b"\x00",
            extensions=self._client_extensions,
        )
        seq = self.conn.next_message_seq()
        body = hello.encode()
        self.transcript = [encode_handshake(HandshakeType.CLIENT_HELLO, seq, body)]
        self.step = "wait_server_hello"
        entry = FlightEntry(ContentType.HANDSHAKE, 0, HandshakeType.CLIENT_HELLO, seq, body)
        self.conn.send_flight([entry], now, expect_reply=True)

    def _client_hello_verify_request(self, seq: int, body: bytes, now: float) -> None:
        request = HelloVerifyRequest.parse_untrusted(body)
        self._cookie_rounds += 1
        if self._cookie_rounds > 2:
            raise DtlsError("server keeps sending HelloVerifyRequest", alert=UNEXPECTED_MESSAGE)
        self._send_client_hello(request.cookie, now)

    def _client_server_hello(self, seq: int, body: bytes, now: float) -> None:
        hello = ServerHello.parse_untrusted(body)
        if hello.server_version != DTLS_1_2:
            raise DtlsError(
                f"server chose version {hello.server_version:#06x}", alert=PROTOCOL_VERSION
            )
        if hello.cipher_suite not in self.conn.cipher_suites or hello.compression_method != 0:
            raise DtlsError(
                "server chose a cipher suite or compression we did not offer",
                alert=ILLEGAL_PARAMETER,
            )
        unsolicited = set(hello.extensions) - set(self._client_extensions)
        if unsolicited:
            raise DtlsError(
                f"server sent unsolicited extensions {sorted(unsolicited)}",
                alert=UNSUPPORTED_EXTENSION,
            )
        renegotiation = hello.extensions.get(ExtensionType.RENEGOTIATION_INFO)
        if renegotiation is not None and renegotiation != b"\x00":
            raise DtlsError(
                "non-empty renegotiation_info in an initial handshake", alert=HANDSHAKE_FAILURE
            )
        self.extended_master_secret = ExtensionType.EXTENDED_MASTER_SECRET in hello.extensions
        if self.conn.require_extended_master_secret and not self.extended_master_secret:
            raise DtlsError(
                "server does not support extended_master_secret", alert=HANDSHAKE_FAILURE
            )
        srtp = hello.extensions.get(ExtensionType.USE_SRTP)
        if srtp is not None:
            profiles, _mki = use_srtp_untrusted(srtp)
            if len(profiles) != 1 or profiles[0] not in self.conn.srtp_profiles:
                raise DtlsError(
                    "server chose an SRTP profile we did not offer", alert=ILLEGAL_PARAMETER
                )
            self.srtp_profile = SrtpProfile(profiles[0])
        self.suite = hello.cipher_suite
        self.server_random = hello.random
        self._record(HandshakeType.SERVER_HELLO, seq, body)
        self.step = "wait_certificate"

    def _client_certificate(self, seq: int, body: bytes, now: float) -> None:
        leaf = self._peer_certificate_untrusted(body)
        try:
            public_key = load_certificate_untrusted(leaf).public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise DtlsError(
                "server certificate key is not supported", alert=UNSUPPORTED_CERTIFICATE
            ) from None
        wanted = (
            ec.EllipticCurvePublicKey
            if self.suite_info().authentication == "ecdsa"
            else rsa.RSAPublicKey
        )
        if not isinstance(public_key, wanted):
            raise DtlsError(
                "server certificate key does not fit the cipher suite",
                alert=UNSUPPORTED_CERTIFICATE,
            )
        self._record(HandshakeType.CERTIFICATE, seq, body)
        self.step = "wait_server_key_exchange"

    def _client_server_key_exchange(self, seq: int, body: bytes, now: float) -> None:
        exchange = ServerKeyExchange.parse_untrusted(body)
        if exchange.named_group not in self._advertised_groups():
            raise DtlsError(
                f"server chose group {exchange.named_group} we did not offer",
                alert=ILLEGAL_PARAMETER,
            )
        if exchange.signature_scheme not in SUPPORTED_SIGNATURE_SCHEMES:
            raise DtlsError("server signed with a scheme we did not offer", alert=ILLEGAL_PARAMETER)
        assert self.conn.remote_certificate_der is not None
        signed = self.client_random + self.server_random + exchange.params()
        verify_signature(
            self.conn.remote_certificate_der, exchange.signature_scheme, signed, exchange.signature
        )
        self.key_share = KeyShare(exchange.named_group)
        self.pre_master_secret = self.key_share.exchange_untrusted(exchange.public_key)
        self._record(HandshakeType.SERVER_KEY_EXCHANGE, seq, body)
        self.step = "wait_certificate_request"

    def _client_certificate_request(self, seq: int, body: bytes, now: float) -> None:
        request = CertificateRequest.parse_untrusted(body)
        self.certificate_requested = True
        self.peer_signature_schemes = request.signature_schemes
        self._record(HandshakeType.CERTIFICATE_REQUEST, seq, body)
        self.step = "wait_server_hello_done"

    def _client_server_hello_done(self, seq: int, body: bytes, now: float) -> None:
        ServerHelloDone.parse_untrusted(body)
        self._record(HandshakeType.SERVER_HELLO_DONE, seq, body)
        assert self.key_share is not None
        certificate = self.conn.certificate
        entries: list[FlightEntry] = []
        if self.certificate_requested:
            entries.append(
                self._entry(HandshakeType.CERTIFICATE, Certificate([certificate.der]).encode())
            )
        entries.append(
            self._entry(
                HandshakeType.CLIENT_KEY_EXCHANGE,
                ClientKeyExchange(self.key_share.public_bytes).encode(),
            )
        )
        self._compute_master_secret()
        if self.certificate_requested:
            scheme = choose_signature_scheme(certificate.private_key, self.peer_signature_schemes)
            signature = sign(certificate.private_key, scheme, b"".join(self.transcript))
            entries.append(
                self._entry(
                    HandshakeType.CERTIFICATE_VERIFY, CertificateVerify(scheme, signature).encode()
                )
            )
        self.conn.install_epoch_keys()
        entries.append(FlightEntry(ContentType.CHANGE_CIPHER_SPEC, 0))
        entries.append(
            self._entry(HandshakeType.FINISHED, self._verify_data(b"client finished"), epoch=1)
        )
        self.step = "wait_finished"
        self.conn.send_flight(entries, now, expect_reply=True)

    def _client_finished(self, seq: int, body: bytes, now: float) -> None:
        finished = Finished.parse_untrusted(body)
        if not hmac.compare_digest(finished.verify_data, self._verify_data(b"server finished")):
            raise DtlsError("server Finished does not verify", alert=DECRYPT_ERROR)
        self._record(HandshakeType.FINISHED, seq, body)
        self.conn.stop_timer()
        self.conn.forget_flight()
        self._complete()

    # --- server --------------------------------------------------------------------------------

    def _cookie_for(self, hello: ClientHello) -> bytes:
        # Stateless cookie (RFC 6347 §4.2.1): an HMAC over the hello's own parameters.
        return hmac.digest(self._cookie_secret, attrs.evolve(hello, cookie=b"").encode(), "sha256")[
            :16
        ]

    def _server_client_hello(self, seq: int, body: bytes, now: float) -> None:
        conn = self.conn
        try:
            hello = ClientHello.parse_untrusted(body)
        except DtlsError:
            # Nothing is established yet and anyone can send us this: drop it rather than fail,
            # as a server that has not answered keeps no state (RFC 6347 §4.2.1).
            conn.stats.content_dropped += 1
            self.step = "wait_client_hello"
            return
        if conn.use_cookies:
            cookie = self._cookie_for(hello)
            if not hmac.compare_digest(hello.cookie, cookie):
                entry = FlightEntry(
                    ContentType.HANDSHAKE,
                    0,
                    HandshakeType.HELLO_VERIFY_REQUEST,
                    seq,
                    HelloVerifyRequest(cookie).encode(),
                )
                conn.send_once([entry])
                self.step = "wait_client_hello"
                return
        # DTLS version numbers count down: 0xFEFD (1.2) is below 0xFEFF (1.0).
        if hello.client_version > DTLS_1_2:
            raise DtlsError("client does not offer DTLS 1.2", alert=PROTOCOL_VERSION)
        if 0 not in hello.compression_methods:
            raise DtlsError("client does not offer null compression", alert=ILLEGAL_PARAMETER)
        key_type = conn.certificate.key_type
        suite = next(
            (
                s
                for s in conn.cipher_suites
                if s in hello.cipher_suites and CIPHER_SUITES[s].authentication == key_type
            ),
            None,
        )
        if suite is None:
            raise DtlsError("no cipher suite in common with the client", alert=HANDSHAKE_FAILURE)
        extensions = hello.extensions
        groups_raw = extensions.get(ExtensionType.SUPPORTED_GROUPS)
        offered_groups = (
            u16_list_extension_untrusted(groups_raw)
            if groups_raw is not None
            else [NamedGroup.SECP256R1]
        )
        group = next((g for g in conn.groups if g in offered_groups), None)
        if group is None:
            raise DtlsError(
                "no key exchange group in common with the client", alert=HANDSHAKE_FAILURE
            )
        formats_raw = extensions.get(ExtensionType.EC_POINT_FORMATS)
        if formats_raw is not None and 0 not in ec_point_formats_untrusted(formats_raw):
            raise DtlsError("client does not accept uncompressed points", alert=ILLEGAL_PARAMETER)
        schemes_raw = extensions.get(ExtensionType.SIGNATURE_ALGORITHMS)
        client_schemes = (
            u16_list_extension_untrusted(schemes_raw) if schemes_raw is not None else None
        )
        scheme = choose_signature_scheme(conn.certificate.private_key, client_schemes)
        renegotiation = extensions.get(ExtensionType.RENEGOTIATION_INFO)
        if renegotiation is not None and renegotiation != b"\x00":
            raise DtlsError(
                "non-empty renegotiation_info in an initial handshake", alert=HANDSHAKE_FAILURE
            )
        self.extended_master_secret = ExtensionType.EXTENDED_MASTER_SECRET in extensions
        if conn.require_extended_master_secret and not self.extended_master_secret:
            raise DtlsError(
                "client does not support extended_master_secret", alert=HANDSHAKE_FAILURE
            )

        reply: dict[int, bytes] = {}
        if renegotiation is not None or EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites:
            reply[ExtensionType.RENEGOTIATION_INFO] = b"\x00"
        if self.extended_master_secret:
            reply[ExtensionType.EXTENDED_MASTER_SECRET] = b""
        if formats_raw is not None:
            reply[ExtensionType.EC_POINT_FORMATS] = b"\x01\x00"
        srtp_raw = extensions.get(ExtensionType.USE_SRTP)
        if srtp_raw is not None and conn.srtp_profiles:
            offered_profiles, _mki = use_srtp_untrusted(srtp_raw)
            profile = next((p for p in conn.srtp_profiles if p in offered_profiles), None)
            if profile is not None:
                self.srtp_profile = SrtpProfile(profile)
                reply[ExtensionType.USE_SRTP] = encode_use_srtp([profile])

        self.suite = suite
        self.client_random = hello.random
        self.server_random = conn.random_bytes(32)
        # RFC 6347 §4.2.2: the server's first message_seq follows the ClientHello it answers.
        conn.set_message_seq(seq)
        self.transcript = [encode_handshake(HandshakeType.CLIENT_HELLO, seq, body)]
        self.key_share = KeyShare(group)
        exchange = ServerKeyExchange(group, self.key_share.public_bytes, scheme, b"")
        signature = sign(
            conn.certificate.private_key,
            scheme,
            self.client_random + self.server_random + exchange.params(),
        )
        exchange = attrs.evolve(exchange, signature=signature)
        entries = [
            self._entry(
                HandshakeType.SERVER_HELLO,
                ServerHello(self.server_random, b"", suite, reply).encode(),
            ),
            self._entry(HandshakeType.CERTIFICATE, Certificate([conn.certificate.der]).encode()),
            self._entry(HandshakeType.SERVER_KEY_EXCHANGE, exchange.encode()),
            self._entry(
                HandshakeType.CERTIFICATE_REQUEST,
                CertificateRequest(CERTIFICATE_TYPES, list(SUPPORTED_SIGNATURE_SCHEMES)).encode(),
            ),
            self._entry(HandshakeType.SERVER_HELLO_DONE, b""),
        ]
        self.step = "wait_certificate"
        conn.send_flight(entries, now, expect_reply=True)

    def _server_certificate(self, seq: int, body: bytes, now: float) -> None:
        self._peer_certificate_untrusted(body)
        self._record(HandshakeType.CERTIFICATE, seq, body)
        self.step = "wait_client_key_exchange"

    def _server_client_key_exchange(self, seq: int, body: bytes, now: float) -> None:
        exchange = ClientKeyExchange.parse_untrusted(body)
        assert self.key_share is not None
        self.pre_master_secret = self.key_share.exchange_untrusted(exchange.public_key)
        self._record(HandshakeType.CLIENT_KEY_EXCHANGE, seq, body)
        self._compute_master_secret()
        self.conn.install_epoch_keys()
        self.step = "wait_certificate_verify"

    def _server_certificate_verify(self, seq: int, body: bytes, now: float) -> None:
        verify = CertificateVerify.parse_untrusted(body)
        if verify.signature_scheme not in SUPPORTED_SIGNATURE_SCHEMES:
            raise DtlsError("client signed with a scheme we did not offer", alert=ILLEGAL_PARAMETER)
        assert self.conn.remote_certificate_der is not None
        verify_signature(
            self.conn.remote_certificate_der,
            verify.signature_scheme,
            b"".join(self.transcript),
            verify.signature,
        )
        self._record(HandshakeType.CERTIFICATE_VERIFY, seq, body)
        self.step = "wait_finished"

    def _server_finished(self, seq: int, body: bytes, now: float) -> None:
        finished = Finished.parse_untrusted(body)
        if not hmac.compare_digest(finished.verify_data, self._verify_data(b"client finished")):
            raise DtlsError("client Finished does not verify", alert=DECRYPT_ERROR)
        self._record(HandshakeType.FINISHED, seq, body)
        entries = [
            FlightEntry(ContentType.CHANGE_CIPHER_SPEC, 0),
            self._entry(HandshakeType.FINISHED, self._verify_data(b"server finished"), epoch=1),
        ]
        # No timer: if this flight is lost the client repeats its own, which makes us repeat this.
        self.conn.send_flight(entries, now, expect_reply=False)
        self._complete()


_Step = Callable[[HandshakeFlow, int, bytes, float], None]
_CLIENT_STEPS: dict[tuple[str, int], _Step] = {
    (
        "wait_server_hello",
        HandshakeType.HELLO_VERIFY_REQUEST,
    ): HandshakeFlow._client_hello_verify_request,
    ("wait_server_hello", HandshakeType.SERVER_HELLO): HandshakeFlow._client_server_hello,
    ("wait_certificate", HandshakeType.CERTIFICATE): HandshakeFlow._client_certificate,
    (
        "wait_server_key_exchange",
        HandshakeType.SERVER_KEY_EXCHANGE,
    ): HandshakeFlow._client_server_key_exchange,
    (
        "wait_certificate_request",
        HandshakeType.CERTIFICATE_REQUEST,
    ): HandshakeFlow._client_certificate_request,
    (
        "wait_certificate_request",
        HandshakeType.SERVER_HELLO_DONE,
    ): HandshakeFlow._client_server_hello_done,
    (
        "wait_server_hello_done",
        HandshakeType.SERVER_HELLO_DONE,
    ): HandshakeFlow._client_server_hello_done,
    ("wait_finished", HandshakeType.FINISHED): HandshakeFlow._client_finished,
}
_SERVER_STEPS: dict[tuple[str, int], _Step] = {
    ("start", HandshakeType.CLIENT_HELLO): HandshakeFlow._server_client_hello,
    ("wait_client_hello", HandshakeType.CLIENT_HELLO): HandshakeFlow._server_client_hello,
    ("wait_certificate", HandshakeType.CERTIFICATE): HandshakeFlow._server_certificate,
    (
        "wait_client_key_exchange",
        HandshakeType.CLIENT_KEY_EXCHANGE,
    ): HandshakeFlow._server_client_key_exchange,
    (
        "wait_certificate_verify",
        HandshakeType.CERTIFICATE_VERIFY,
    ): HandshakeFlow._server_certificate_verify,
    ("wait_finished", HandshakeType.FINISHED): HandshakeFlow._server_finished,
}
