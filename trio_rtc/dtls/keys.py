"""ECDHE key shares and handshake signatures (RFC 8422, RFC 5246 §7.4.1.4.1, RFC 8446 §4.2.3)."""

from __future__ import annotations

import enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .certificate import PrivateKey
from .records import DtlsError

__all__ = [
    "KeyShare",
    "NamedGroup",
    "SignatureScheme",
    "choose_signature_scheme",
    "sign",
    "verify_signature",
]


class NamedGroup(enum.IntEnum):
    SECP256R1 = 23
    SECP384R1 = 24
    X25519 = 29


class SignatureScheme(enum.IntEnum):
    """TLS 1.2 SignatureAndHashAlgorithm values, named as in RFC 8446. SHA-1 ones are absent:
    they are refused."""

    RSA_PKCS1_SHA256 = 0x0401
    RSA_PKCS1_SHA384 = 0x0501
    RSA_PKCS1_SHA512 = 0x0601
    ECDSA_SECP256R1_SHA256 = 0x0403
    ECDSA_SECP384R1_SHA384 = 0x0503
    ECDSA_SECP521R1_SHA512 = 0x0603
    RSA_PSS_RSAE_SHA256 = 0x0804
    RSA_PSS_RSAE_SHA384 = 0x0805
    RSA_PSS_RSAE_SHA512 = 0x0806


_SCHEME_HASH: dict[int, type[hashes.HashAlgorithm]] = {
    0x0401: hashes.SHA256,
    0x0501: hashes.SHA384,
    0x0601: hashes.SHA512,
    0x0403: hashes.SHA256,
    0x0503: hashes.SHA384,
    0x0603: hashes.SHA512,
    0x0804: hashes.SHA256,
    0x0805: hashes.SHA384,
    0x0806: hashes.SHA512,
}
_ECDSA_SCHEMES = (0x0403, 0x0503, 0x0603)
_RSA_SCHEMES = (0x0401, 0x0501, 0x0601, 0x0804, 0x0805, 0x0806)
#: What we announce and accept, in preference order.
SUPPORTED_SIGNATURE_SCHEMES: tuple[int, ...] = (
    0x0403,
    0x0503,
    0x0804,
    0x0401,
    0x0805,
    0x0501,
    0x0806,
    0x0601,
)


class KeyShare:
    """Our ephemeral private key for one group; ``public_bytes`` goes on the wire."""

    def __init__(self, group: int) -> None:
        self.group = group
        self._private: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey
        if group == NamedGroup.X25519:
            self._private = x25519.X25519PrivateKey.generate()
            self.public_bytes = self._private.public_key().public_bytes_raw()
        elif group in (NamedGroup.SECP256R1, NamedGroup.SECP384R1):
            curve = ec.SECP256R1() if group == NamedGroup.SECP256R1 else ec.SECP384R1()
            self._private = ec.generate_private_key(curve)
            self.public_bytes = self._private.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )
        else:
            raise ValueError(f"unsupported group {group}")

    def exchange_untrusted(self, peer_public: bytes) -> bytes:
        """The shared secret (the pre-master secret, RFC 8422 §5.10). A point that is not on the
        curve or gives an all-zero X25519 output raises DtlsError (illegal_parameter)."""
        try:
            if isinstance(self._private, x25519.X25519PrivateKey):
                if len(peer_public) != 32:
                    raise DtlsError("X25519 public key must be 32 bytes", alert=47)
                return self._private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
            if not peer_public or peer_public[0] != 4:
                raise DtlsError("EC public key must be an uncompressed point", alert=47)
            point = ec.EllipticCurvePublicKey.from_encoded_point(self._private.curve, peer_public)
            return self._private.exchange(ec.ECDH(), point)
        except ValueError as exc:
            raise DtlsError(f"invalid peer key share: {exc}", alert=47) from None


def choose_signature_scheme(key: PrivateKey, offered: list[int] | None) -> int:
    """Our preferred scheme for ``key`` among those the peer offered; without the extension,
    RFC 5246 §7.4.1.4.1 says SHA-1, which we refuse, so we still use SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ours: tuple[int, ...] = (
            (0x0403, 0x0503, 0x0603) if key.curve.key_size < 384 else (0x0503, 0x0403, 0x0603)
        )
    else:
        ours = (0x0401, 0x0804, 0x0501, 0x0805, 0x0601, 0x0806)
    if offered is None:
        return ours[0]
    for scheme in ours:
        if scheme in offered:
            return scheme
    raise DtlsError("no signature algorithm in common", alert=40)


def sign(key: PrivateKey, scheme: int, data: bytes) -> bytes:
    digest = _SCHEME_HASH[scheme]()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(digest))
    if scheme in (0x0804, 0x0805, 0x0806):
        return key.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    return key.sign(data, padding.PKCS1v15(), digest)


def load_certificate_untrusted(certificate_der: bytes) -> x509.Certificate:
    """Parse a peer's DER certificate; anything `cryptography` refuses (a bad encoding, an
    unknown X.509 version, an unsupported algorithm) becomes DtlsError(bad_certificate, 42)."""
    try:
        return x509.load_der_x509_certificate(certificate_der)
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm):
        raise DtlsError("peer certificate does not parse", alert=42) from None


def verify_signature(certificate_der: bytes, scheme: int, data: bytes, signature: bytes) -> None:
    """Raise DtlsError (decrypt_error, 51) unless ``signature`` by the certificate's key is valid."""
    try:
        public_key = load_certificate_untrusted(certificate_der).public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise DtlsError("peer certificate does not parse", alert=42) from None
    digest_type = _SCHEME_HASH.get(scheme)
    if digest_type is None:
        raise DtlsError(f"signature scheme {scheme:#06x} is not accepted", alert=47)
    digest = digest_type()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and scheme in _ECDSA_SCHEMES:
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public_key, rsa.RSAPublicKey) and scheme in _RSA_SCHEMES:
            if scheme >= 0x0804:
                public_key.verify(
                    signature, data, padding.PSS(padding.MGF1(digest), padding.PSS.AUTO), digest
                )
            else:
                public_key.verify(signature, data, padding.PKCS1v15(), digest)
        else:
            raise DtlsError("signature scheme does not fit the certificate's key", alert=47)
    except InvalidSignature:
        raise DtlsError("handshake signature does not verify", alert=51) from None
