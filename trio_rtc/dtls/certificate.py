"""RTCCertificate: the self-signed certificate a peer connection authenticates with.

WebRTC does not use certificate authorities: each side hashes the other's certificate and
compares it with the ``a=fingerprint`` line of the remote SDP (RFC 8122 §5, RFC 8827 §6.5).

Pure code, like the other cores: no trio, and no clock read inside the logic. Validity is
wall-clock time (X.509 ``notBefore``/``notAfter``, W3C ``expires`` in ms since the epoch), so
it comes in as an argument (``now_ms``, ``at_ms``); left out, it is read by :func:`wall_clock_ms`,
the one place this module looks at a clock. The trio part of the async
:meth:`RTCCertificate.generate` (a worker thread) lives in :mod:`trio_rtc.dtls.generate`, which
is imported only when ``generate`` is awaited.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..exceptions import NotSupportedError

__all__ = [
    "FINGERPRINT_ALGORITHMS",
    "PrivateKey",
    "RTCCertificate",
    "RTCDtlsFingerprint",
    "certificate_fingerprint",
    "wall_clock_ms",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: SDP hash function names (RFC 8122 §5) to hashlib names. sha-1 is accepted from a peer's SDP
#: for old endpoints; we always announce sha-256.
FINGERPRINT_ALGORITHMS = {
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}

#: Browsers give certificates a 30-day lifetime by default; the W3C spec caps ``expires`` at a year.
DEFAULT_EXPIRES_MS = 30 * 24 * 3600 * 1000.0
MAX_EXPIRES_MS = 365 * 24 * 3600 * 1000.0


def wall_clock_ms() -> float:
    """Now, in milliseconds since the Unix epoch, from the wall clock (``time.time()``).

    The default "now" of :meth:`RTCCertificate.generate_sync` and
    :meth:`RTCCertificate.is_expired` when the caller passes none, read at that public boundary
    and nowhere else in this module. Wall time, not trio's clock: certificate validity is an
    absolute date that the peer checks against its own wall clock.
    """
    return time.time() * 1000.0


_CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}


@attrs.frozen
class RTCDtlsFingerprint:
    """The W3C ``RTCDtlsFingerprint``: ``algorithm`` such as ``"sha-256"`` and ``value`` in the SDP
    form, upper-case hex bytes separated by colons."""

    algorithm: str
    value: str

    def matches(self, der: bytes) -> bool:
        """Whether this fingerprint is that of the DER certificate ``der`` (case-insensitive)."""
        algorithm = self.algorithm.lower()
        if algorithm not in FINGERPRINT_ALGORITHMS:
            return False
        return certificate_fingerprint(der, algorithm).value == self.value.upper()


def certificate_fingerprint(der: bytes, algorithm: str = "sha-256") -> RTCDtlsFingerprint:
    try:
        hash_name = FINGERPRINT_ALGORITHMS[algorithm]
    except KeyError:
        raise NotSupportedError(
            f"fingerprint algorithm {algorithm!r} is not supported; expected one of {sorted(FINGERPRINT_ALGORITHMS)}"
        ) from None
    digest = hashlib.new(hash_name, der).digest()
    return RTCDtlsFingerprint(algorithm, ":".join(f"{b:02X}" for b in digest))


def _parse_algorithm(algorithm: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(algorithm, str):
        algorithm = {"name": algorithm}
    if not isinstance(algorithm, Mapping):
        raise TypeError(f"keygenAlgorithm must be a str or a dict, not {type(algorithm).__name__}")
    name = algorithm.get("name")
    if not isinstance(name, str):
        raise TypeError(
            "keygenAlgorithm needs a 'name' string, e.g. 'ECDSA' or 'RSASSA-PKCS1-v1_5'"
        )
    return name.upper(), dict(algorithm)


def parse_keygen_algorithm(
    keygenAlgorithm: str | Mapping[str, Any] | None,
) -> tuple[str, dict[str, Any], float]:
    """Check the W3C ``keygenAlgorithm`` (default ECDSA P-256) and its ``expires`` member: the
    algorithm's upper-case name, its parameters and the lifetime in milliseconds (capped at a
    year). Raises ``TypeError`` for a malformed dictionary; the key parameters themselves are
    checked when the key is generated."""
    name, params = _parse_algorithm(keygenAlgorithm or {"name": "ECDSA", "namedCurve": "P-256"})
    expires_raw = params.get("expires", DEFAULT_EXPIRES_MS)
    if (
        not isinstance(expires_raw, int | float)
        or isinstance(expires_raw, bool)
        or expires_raw <= 0
    ):
        raise TypeError(f"'expires' must be a positive number of milliseconds, not {expires_raw!r}")
    return name, params, min(float(expires_raw), MAX_EXPIRES_MS)


def _generate_key(
    name: str, params: dict[str, Any]
) -> tuple[PrivateKey, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]]:
    if name == "ECDSA":
        curve_name = params.get("namedCurve", "P-256")
        if curve_name not in _CURVES:
            raise NotSupportedError(
                f"ECDSA namedCurve {curve_name!r} is not supported; expected 'P-256' or 'P-384'"
            )
        digest = hashes.SHA256 if curve_name == "P-256" else hashes.SHA384
        return ec.generate_private_key(_CURVES[curve_name]()), digest
    if name == "RSASSA-PKCS1-V1_5":
        modulus = params.get("modulusLength", 2048)
        if not isinstance(modulus, int) or isinstance(modulus, bool) or not 1024 <= modulus <= 8192:
            raise NotSupportedError(
                f"RSA modulusLength {modulus!r} is not supported; expected 1024..8192"
            )
        exponent_raw = params.get("publicExponent", 65537)
        if isinstance(exponent_raw, bytes | bytearray | memoryview):
            exponent = int.from_bytes(bytes(exponent_raw), "big")
        elif isinstance(exponent_raw, int) and not isinstance(exponent_raw, bool):
            exponent = exponent_raw
        else:
            raise TypeError("RSA publicExponent must be an int or big-endian bytes (Uint8Array)")
        if exponent not in (3, 65537):
            raise NotSupportedError(
                f"RSA publicExponent {exponent} is not supported; expected 65537"
            )
        hash_param = params.get("hash", "SHA-256")
        hash_name = hash_param.get("name") if isinstance(hash_param, Mapping) else hash_param
        if not isinstance(hash_name, str) or hash_name.upper() not in _HASHES:
            raise NotSupportedError(
                f"RSA hash {hash_param!r} is not supported; expected one of {sorted(_HASHES)}"
            )
        return rsa.generate_private_key(exponent, modulus), _HASHES[hash_name.upper()]
    raise NotSupportedError(
        f"keygenAlgorithm {name!r} is not supported; expected 'ECDSA' or 'RSASSA-PKCS1-v1_5'"
    )


def _build_certificate(
    key: PrivateKey,
    digest: type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512],
    now_ms: float,
    expires_ms: float,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WebRTC-" + secrets.token_hex(4))])
    now = datetime.datetime.fromtimestamp(now_ms / 1000.0, datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A day of slack before now: the peer's clock may be behind ours.
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(datetime.datetime.fromtimestamp(expires_ms / 1000.0, datetime.UTC))
        .sign(key, digest())
    )


class RTCCertificate:
    """A private key and its self-signed X.509 certificate (W3C WebRTC §4.9)."""

    def __init__(self, private_key: PrivateKey, certificate: x509.Certificate) -> None:
        self.private_key = private_key
        self.certificate = certificate
        self.der = certificate.public_bytes(serialization.Encoding.DER)
        self._fingerprint = certificate_fingerprint(self.der, "sha-256")

    @property
    def expires(self) -> float:
        """Expiry in milliseconds since the epoch, as the spec's ``DOMTimeStamp``."""
        return self.certificate.not_valid_after_utc.timestamp() * 1000.0

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        return [self._fingerprint]

    def is_expired(self, at_ms: float | None = None) -> bool:
        """Whether the certificate has expired at ``at_ms``, in milliseconds since the epoch
        (default: now, from :func:`wall_clock_ms`)."""
        return (wall_clock_ms() if at_ms is None else at_ms) >= self.expires

    @property
    def key_type(self) -> str:
        """``"ecdsa"`` or ``"rsa"``: the cipher suites this certificate can serve."""
        return "ecdsa" if isinstance(self.private_key, ec.EllipticCurvePrivateKey) else "rsa"

    @classmethod
    def generate_sync(
        cls, keygenAlgorithm: str | Mapping[str, Any] | None = None, *, now_ms: float | None = None
    ) -> RTCCertificate:
        """Blocking generation; use :meth:`generate` from async code. The certificate is valid
        from a day before ``now_ms`` (milliseconds since the epoch; default: now, from
        :func:`wall_clock_ms`) until ``now_ms`` plus the ``expires`` member of
        ``keygenAlgorithm`` (default 30 days, at most a year)."""
        name, params, lifetime_ms = parse_keygen_algorithm(keygenAlgorithm)
        if now_ms is None:
            now_ms = wall_clock_ms()
        key, digest = _generate_key(name, params)
        return cls(key, _build_certificate(key, digest, now_ms, now_ms + lifetime_ms))

    @classmethod
    async def generate(
        cls, keygenAlgorithm: str | Mapping[str, Any] | None = None
    ) -> RTCCertificate:
        """``RTCPeerConnection.generateCertificate``: ECDSA P-256 unless asked otherwise. Key
        generation (tens of milliseconds for RSA) runs in a trio worker thread; see
        :func:`trio_rtc.dtls.generate.generate_certificate`."""
        # The trio side is imported here, not at module import: this module stays a pure core.
        from .generate import generate_certificate

        return await generate_certificate(keygenAlgorithm, cls=cls)

    def __repr__(self) -> str:
        return f"<RTCCertificate {self.key_type} {self._fingerprint.value[:23]}… expires={self.expires:.0f}>"
