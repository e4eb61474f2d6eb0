"""RTCCertificate generation, expiry and fingerprints."""

from __future__ import annotations

import datetime
import hashlib
import time

import pytest
import trio
import trio.lowlevel
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trio_rtc.configuration import RTCConfiguration
from trio_rtc.dtls import RTCCertificate, RTCDtlsFingerprint, certificate_fingerprint
from trio_rtc.dtls.certificate import MAX_EXPIRES_MS, wall_clock_ms
from trio_rtc.exceptions import InvalidAccessError, NotSupportedError


async def test_default_is_ecdsa_p256_generated_off_the_event_loop() -> None:
    certificate = await RTCCertificate.generate()
    assert isinstance(certificate.private_key, ec.EllipticCurvePrivateKey)
    assert certificate.private_key.curve.name == "secp256r1"
    days = (certificate.expires / 1000 - time.time()) / 86400
    assert 29 < days <= 30
    assert not certificate.is_expired()
    [fingerprint] = certificate.getFingerprints()
    assert fingerprint.algorithm == "sha-256"
    assert fingerprint.value == ":".join(
        f"{b:02X}" for b in hashlib.sha256(certificate.der).digest()
    )
    assert fingerprint.matches(certificate.der)
    assert RTCDtlsFingerprint("SHA-256", fingerprint.value.lower()).matches(certificate.der)


async def test_rsa_and_p384_and_expires() -> None:
    rsa_cert = await RTCCertificate.generate(
        {
            "name": "RSASSA-PKCS1-v1_5",
            "modulusLength": 2048,
            "publicExponent": bytes([1, 0, 1]),
            "hash": "SHA-256",
        }
    )
    assert (
        isinstance(rsa_cert.private_key, rsa.RSAPrivateKey)
        and rsa_cert.private_key.key_size == 2048
    )
    assert rsa_cert.key_type == "rsa"
    p384 = RTCCertificate.generate_sync(
        {"name": "ECDSA", "namedCurve": "P-384", "expires": 3_600_000}
    )
    assert abs(p384.expires / 1000 - time.time() - 3600) < 5
    assert p384.is_expired(at_ms=p384.expires + 1)


@pytest.mark.parametrize(
    ("algorithm", "error", "words"),
    [
        ({"name": "ECDSA", "namedCurve": "P-521"}, NotSupportedError, "P-521"),
        ({"name": "RSA-PSS"}, NotSupportedError, "RSA-PSS"),
        ({"name": "RSASSA-PKCS1-v1_5", "modulusLength": 512}, NotSupportedError, "modulusLength"),
        ({"name": "RSASSA-PKCS1-v1_5", "publicExponent": 17}, NotSupportedError, "publicExponent"),
        ({"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-1"}, NotSupportedError, "hash"),
        ({"namedCurve": "P-256"}, TypeError, "name"),
        ({"name": "ECDSA", "expires": "soon"}, TypeError, "expires"),
        (42, TypeError, "keygenAlgorithm"),
    ],
)
async def test_bad_algorithms_are_refused_with_a_reason(
    algorithm: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await RTCCertificate.generate(algorithm)  # type: ignore[arg-type]


def test_validity_comes_from_the_now_passed_in() -> None:
    """The core reads no clock: ``now_ms`` fixes notBefore (a day of slack) and ``expires``."""
    now_ms = 1_700_000_000_000.0  # 2023-11-14T22:13:20Z
    certificate = RTCCertificate.generate_sync(
        {"name": "ECDSA", "expires": 3_600_000}, now_ms=now_ms
    )
    assert certificate.expires == now_ms + 3_600_000
    assert certificate.certificate.not_valid_before_utc == datetime.datetime(
        2023, 11, 13, 22, 13, 20, tzinfo=datetime.UTC
    )
    assert not certificate.is_expired(now_ms)
    assert not certificate.is_expired(at_ms=now_ms + 3_599_999)
    assert certificate.is_expired(at_ms=now_ms + 3_600_000)
    assert certificate.is_expired()  # the default is the wall clock now, long after 2023
    capped = RTCCertificate.generate_sync(
        {"name": "ECDSA", "expires": 10 * MAX_EXPIRES_MS}, now_ms=0
    )
    assert capped.expires == MAX_EXPIRES_MS


def test_the_default_now_is_the_wall_clock() -> None:
    before = time.time() * 1000.0
    assert before <= wall_clock_ms() <= time.time() * 1000.0
    certificate = RTCCertificate.generate_sync({"name": "ECDSA", "expires": 60_000})
    assert before + 59_000 <= certificate.expires <= time.time() * 1000.0 + 60_000


def test_configuration_refuses_a_certificate_expired_at_now() -> None:
    certificate = RTCCertificate.generate_sync({"name": "ECDSA", "expires": 60_000}, now_ms=0)
    with pytest.raises(InvalidAccessError, match="expired"):
        RTCConfiguration.coerce({"certificates": [certificate]})
    RTCConfiguration.coerce({"certificates": [certificate]}, now_ms=59_000)
    with pytest.raises(InvalidAccessError, match="expired"):
        RTCConfiguration(certificates=(certificate,)).validate(now_ms=60_000)


def test_fingerprint_algorithms() -> None:
    der = b"not really a certificate"
    assert certificate_fingerprint(der, "sha-1").value == ":".join(
        f"{b:02X}" for b in hashlib.sha1(der).digest()
    )
    assert len(certificate_fingerprint(der, "sha-512").value) == 64 * 3 - 1
    with pytest.raises(NotSupportedError):
        certificate_fingerprint(der, "md5")
    assert not RTCDtlsFingerprint("md5", "AB").matches(der)


async def test_generation_does_not_block_other_tasks() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await RTCCertificate.generate({"name": "RSASSA-PKCS1-v1_5", "modulusLength": 2048})
        nursery.cancel_scope.cancel()
    assert ticks > 1
