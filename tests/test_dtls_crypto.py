"""PRF, key schedule, exporter and AEAD record protection of the DTLS core."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from trio_rtc.dtls.crypto import (
    CIPHER_SUITES,
    CipherSuite,
    RecordProtection,
    compute_master_secret,
    export_keying_material,
    key_block,
    prf,
)


def test_prf_sha256_vector() -> None:
    """The P_SHA256 test vector published on the IETF TLS list (msg03416) for RFC 5246 §5."""
    secret = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
    seed = bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
    expected = bytes.fromhex(
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9"
        "af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110ff"
        "f70187347b66"
    )
    assert prf("sha256", secret, b"test label", seed, 100) == expected


def test_prf_sha384_vector() -> None:
    """The P_SHA384 vector from the same IETF TLS list message."""
    secret = bytes.fromhex("b80b733d6ceefcdc71566ea48e5567df")
    seed = bytes.fromhex("cd665cf6a8447dd6ff8b27555edb7465")
    expected = bytes.fromhex(
        "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0"
        "e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425"
        "9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e099070"
        "3d73e56f"
    )
    assert prf("sha384", secret, b"test label", seed, 148) == expected


def test_extended_master_secret_differs_and_uses_session_hash() -> None:
    pms, cr, sr = b"p" * 32, b"c" * 32, b"s" * 32
    classic = compute_master_secret(
        "sha256", pms, client_random=cr, server_random=sr, session_hash=None
    )
    extended = compute_master_secret(
        "sha256", pms, client_random=cr, server_random=sr, session_hash=b"h" * 32
    )
    assert classic == prf("sha256", pms, b"master secret", cr + sr, 48)
    assert extended == prf("sha256", pms, b"extended master secret", b"h" * 32, 48)
    assert len(extended) == 48 and classic != extended


def test_key_block_layout() -> None:
    info = CIPHER_SUITES[CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    ms, cr, sr = b"m" * 48, b"c" * 32, b"s" * 32
    block = prf("sha256", ms, b"key expansion", sr + cr, 40)
    assert key_block(info, ms, client_random=cr, server_random=sr) == (
        block[:16],
        block[16:32],
        block[32:36],
        block[36:40],
    )


def test_exporter_context_encoding() -> None:
    """RFC 5705 §4: no context and an empty context are different seeds."""
    ms, cr, sr = b"m" * 48, b"c" * 32, b"s" * 32
    common = {"label": b"EXPERIMENTAL x", "client_random": cr, "server_random": sr, "length": 32}
    without = export_keying_material("sha256", ms, context=None, **common)  # type: ignore[arg-type]
    empty = export_keying_material("sha256", ms, context=b"", **common)  # type: ignore[arg-type]
    assert without == prf("sha256", ms, b"EXPERIMENTAL x", cr + sr, 32)
    assert empty == prf("sha256", ms, b"EXPERIMENTAL x", cr + sr + b"\x00\x00", 32)
    assert without != empty


def _aad(epoch: int, seq: int, content_type: int, length: int) -> bytes:
    return struct.pack("!HHIBHH", epoch, seq >> 32, seq & 0xFFFFFFFF, content_type, 0xFEFD, length)


def test_aes_gcm_record_matches_rfc5288_construction() -> None:
    """Nonce = 4-byte salt || 8-byte explicit nonce (= epoch||seq); AAD per RFC 6347 §4.1.2.1."""
    info = CIPHER_SUITES[CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    key, salt = bytes(range(16)), b"\xa0\xa1\xa2\xa3"
    protection = RecordProtection(info, key, salt)
    sealed = protection.seal(23, 0xFEFD, 1, 0x0102030405, b"hello dtls")
    explicit = struct.pack("!HHI", 1, 0x01, 0x02030405)
    assert sealed[:8] == explicit
    assert sealed[8:] == AESGCM(key).encrypt(
        salt + explicit, b"hello dtls", _aad(1, 0x0102030405, 23, 10)
    )
    assert protection.open(23, 0xFEFD, 1, 0x0102030405, sealed) == b"hello dtls"
    # Wrong sequence number, content type or a flipped bit: no plaintext.
    assert protection.open(23, 0xFEFD, 1, 0x0102030406, sealed) is None
    assert protection.open(22, 0xFEFD, 1, 0x0102030405, sealed) is None
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert protection.open(23, 0xFEFD, 1, 0x0102030405, tampered) is None
    assert protection.open(23, 0xFEFD, 1, 0x0102030405, sealed[:20]) is None


def test_chacha20_record_matches_rfc7905_construction() -> None:
    info = CIPHER_SUITES[CipherSuite.ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
    key, iv = bytes(range(32)), bytes(range(100, 112))
    protection = RecordProtection(info, key, iv)
    sealed = protection.seal(23, 0xFEFD, 1, 7, b"payload")
    seq64 = struct.pack("!HHI", 1, 0, 7)
    nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + seq64, strict=True))
    assert sealed == ChaCha20Poly1305(key).encrypt(nonce, b"payload", _aad(1, 7, 23, 7))
    assert protection.open(23, 0xFEFD, 1, 7, sealed) == b"payload"
    assert protection.open(23, 0xFEFD, 1, 8, sealed) is None


def test_exporter_length_limits() -> None:
    with pytest.raises(ValueError):
        export_keying_material(
            "sha256",
            b"m" * 48,
            label=b"x",
            client_random=b"",
            server_random=b"",
            context=bytes(70000),
            length=4,
        )
