"""Key schedule and record protection for DTLS 1.2 with AEAD cipher suites.

Everything here is a pure function of its inputs: the TLS 1.2 PRF (RFC 5246 §5), the master
secret (RFC 5246 §8.1, or the extended master secret of RFC 7627 §4), the key block (RFC 5246
§6.3), the keying material exporter (RFC 5705 §4) and the AEAD record protection of RFC 5288
(AES-GCM) and RFC 7905 (ChaCha20-Poly1305) with the DTLS sequence number (RFC 6347 §4.1.2.1).
"""

from __future__ import annotations

import enum
import hmac
import struct

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .records import DTLS_1_2, RECORD_HEADER

__all__ = [
    "CIPHER_SUITES",
    "CipherSuite",
    "CipherSuiteInfo",
    "RecordProtection",
    "SrtpKeys",
    "SrtpProfile",
    "SrtpProfileInfo",
    "compute_master_secret",
    "export_keying_material",
    "finished_verify_data",
    "key_block",
    "prf",
]


class CipherSuite(enum.IntEnum):
    """The AEAD ECDHE suites WebRTC endpoints negotiate (IANA TLS Cipher Suites registry)."""

    ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9


@attrs.frozen
class CipherSuiteInfo:
    suite: CipherSuite
    #: "ecdsa" or "rsa": the key type the server's certificate must have.
    authentication: str
    #: "aes-gcm" or "chacha20-poly1305".
    cipher: str
    key_length: int
    #: Bytes of IV taken from the key block: 4 (GCM salt, RFC 5288 §3) or 12 (RFC 7905 §2).
    fixed_iv_length: int
    #: "sha256" or "sha384": the PRF hash and the Finished transcript hash.
    prf_hash: str


CIPHER_SUITES: dict[int, CipherSuiteInfo] = {
    info.suite: info
    for info in (
        CipherSuiteInfo(
            CipherSuite.ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ecdsa", "aes-gcm", 16, 4, "sha256"
        ),
        CipherSuiteInfo(
            CipherSuite.ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ecdsa", "aes-gcm", 32, 4, "sha384"
        ),
        CipherSuiteInfo(
            CipherSuite.ECDHE_RSA_WITH_AES_128_GCM_SHA256, "rsa", "aes-gcm", 16, 4, "sha256"
        ),
        CipherSuiteInfo(
            CipherSuite.ECDHE_RSA_WITH_AES_256_GCM_SHA384, "rsa", "aes-gcm", 32, 4, "sha384"
        ),
        CipherSuiteInfo(
            CipherSuite.ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            "rsa",
            "chacha20-poly1305",
            32,
            12,
            "sha256",
        ),
        CipherSuiteInfo(
            CipherSuite.ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            "ecdsa",
            "chacha20-poly1305",
            32,
            12,
            "sha256",
        ),
    )
}


class SrtpProfile(enum.IntEnum):
    """SRTP protection profiles of the use_srtp extension (RFC 5764 §4.1.2, RFC 7714 §14.2)."""

    SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001
    SRTP_AES128_CM_HMAC_SHA1_32 = 0x0002
    SRTP_AEAD_AES_128_GCM = 0x0007
    SRTP_AEAD_AES_256_GCM = 0x0008


@attrs.frozen
class SrtpProfileInfo:
    key_length: int
    salt_length: int


SRTP_PROFILES: dict[int, SrtpProfileInfo] = {
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80: SrtpProfileInfo(16, 14),
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_32: SrtpProfileInfo(16, 14),
    SrtpProfile.SRTP_AEAD_AES_128_GCM: SrtpProfileInfo(16, 12),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: SrtpProfileInfo(32, 12),
}


@attrs.frozen
class SrtpKeys:
    """SRTP master keys and salts for both directions, from the local endpoint's point of view."""

    profile: SrtpProfile
    local_key: bytes
    local_salt: bytes
    remote_key: bytes
    remote_salt: bytes


def prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF: P_<hash>(secret, label + seed) truncated to ``length`` (RFC 5246 §5)."""
    label_seed = label + seed
    output = bytearray()
    a = label_seed
    while len(output) < length:
        a = hmac.digest(secret, a, hash_name)
        output += hmac.digest(secret, a + label_seed, hash_name)
    return bytes(output[:length])


def compute_master_secret(
    hash_name: str,
    pre_master_secret: bytes,
    *,
    client_random: bytes,
    server_random: bytes,
    session_hash: bytes | None,
) -> bytes:
    """The 48-byte master secret; with ``session_hash`` it is the extended master secret, which
    binds the secret to the whole handshake so it cannot be synchronised across two connections
    (RFC 7627 §4)."""
    if session_hash is not None:
        return prf(hash_name, pre_master_secret, b"extended master secret", session_hash, 48)
    return prf(hash_name, pre_master_secret, b"master secret", client_random + server_random, 48)


def key_block(
    info: CipherSuiteInfo, master_secret: bytes, *, client_random: bytes, server_random: bytes
) -> tuple[bytes, bytes, bytes, bytes]:
    """``(client_write_key, server_write_key, client_write_IV, server_write_IV)``; AEAD suites
    have no MAC keys, so the block is keys then IVs (RFC 5246 §6.3)."""
    k, v = info.key_length, info.fixed_iv_length
    block = prf(
        info.prf_hash, master_secret, b"key expansion", server_random + client_random, 2 * (k + v)
    )
    return block[:k], block[k : 2 * k], block[2 * k : 2 * k + v], block[2 * k + v :]


def finished_verify_data(
    hash_name: str, master_secret: bytes, label: bytes, transcript_hash: bytes
) -> bytes:
    """The 12-byte verify_data of a Finished message (RFC 5246 §7.4.9)."""
    return prf(hash_name, master_secret, label, transcript_hash, 12)


def export_keying_material(
    hash_name: str,
    master_secret: bytes,
    *,
    label: bytes,
    client_random: bytes,
    server_random: bytes,
    context: bytes | None,
    length: int,
) -> bytes:
    """RFC 5705 §4: a context, when given, is prefixed by its 16-bit length; no context and an
    empty context give different outputs."""
    seed = client_random + server_random
    if context is not None:
        if len(context) > 0xFFFF:
            raise ValueError("exporter context must be shorter than 65536 bytes")
        seed += struct.pack("!H", len(context)) + context
    return prf(hash_name, master_secret, label, seed, length)


_SEQ64 = struct.Struct("!HHI")
_AAD_TAIL = struct.Struct("!BHH")
_LENGTH = struct.Struct("!H")
_HEADER = RECORD_HEADER


#: Bytes an AEAD adds to each protected record: explicit nonce (GCM only) and 16-byte tag.
def record_overhead(info: CipherSuiteInfo) -> int:
    return (8 if info.cipher == "aes-gcm" else 0) + 16


class RecordProtection:
    """Seals and opens records of one epoch in one direction.

    The additional data is ``epoch || sequence_number || type || version || length`` with the
    64-bit DTLS sequence number in place of the TLS one (RFC 6347 §4.1.2.1). AES-GCM sends an
    8-byte explicit nonce, for which we use that same 64-bit value, so a nonce never repeats
    under one key (RFC 5288 §3). ChaCha20-Poly1305 XORs it into the 12-byte IV (RFC 7905 §2).
    """

    __slots__ = ("_aead", "_chacha", "_iv", "_iv_int", "overhead")

    def __init__(self, info: CipherSuiteInfo, key: bytes, iv: bytes) -> None:
        self._chacha = info.cipher == "chacha20-poly1305"
        self._aead: AESGCM | ChaCha20Poly1305 = (
            ChaCha20Poly1305(key) if self._chacha else AESGCM(key)
        )
        self._iv = iv
        self._iv_int = int.from_bytes(iv, "big")
        self.overhead = record_overhead(info)

    def _nonce(self, seq64: bytes) -> bytes:
        if self._chacha:
            return (self._iv_int ^ int.from_bytes(seq64, "big")).to_bytes(12, "big")
        return self._iv + seq64

    def seal_record(
        self, content_type: int, epoch: int, sequence_number: int, data: bytes
    ) -> bytes:
        """A whole DTLS 1.2 record (header included) protecting ``data``: the per-packet path,
        with the header, nonce and additional data packed once each."""
        high, low = sequence_number >> 32, sequence_number & 0xFFFFFFFF
        seq64 = _SEQ64.pack(epoch, high, low)
        aad = seq64 + _AAD_TAIL.pack(content_type, DTLS_1_2, len(data))
        sealed = self._aead.encrypt(self._nonce(seq64), data, aad)
        if self._chacha:
            return _HEADER.pack(content_type, DTLS_1_2, epoch, high, low, len(sealed)) + sealed
        return (
            _HEADER.pack(content_type, DTLS_1_2, epoch, high, low, 8 + len(sealed)) + seq64 + sealed
        )

    def seal(
        self, content_type: int, version: int, epoch: int, sequence_number: int, plaintext: bytes
    ) -> bytes:
        """The record fragment: ``[explicit nonce] || ciphertext || tag``."""
        seq64 = struct.pack("!HHI", epoch, sequence_number >> 32, sequence_number & 0xFFFFFFFF)
        aad = seq64 + struct.pack("!BHH", content_type, version, len(plaintext))
        sealed = self._aead.encrypt(self._nonce(seq64), plaintext, aad)
        return sealed if self._chacha else seq64 + sealed

    def open_gcm_record(self, record: bytes) -> bytes | None:
        """The plaintext of a whole AES-GCM record (header included) whose header the caller
        has checked, or None when it does not authenticate. The per-packet fast path: the
        header already holds epoch || sequence number (the explicit nonce we send, RFC 5288
        §3) and type || version, so the additional data is two slices and the length."""
        view = memoryview(record)
        body_length = len(record) - 37  # 13-byte header, 8-byte explicit nonce, 16-byte tag
        if body_length < 0 or self._chacha:
            return None
        aad = record[3:11] + record[0:3] + _LENGTH.pack(body_length)
        try:
            return self._aead.decrypt(self._iv + record[13:21], view[21:], aad)
        except InvalidTag:
            return None

    def open(
        self, content_type: int, version: int, epoch: int, sequence_number: int, fragment: bytes
    ) -> bytes | None:
        """The plaintext, or None when the record does not authenticate."""
        seq64 = struct.pack("!HHI", epoch, sequence_number >> 32, sequence_number & 0xFFFFFFFF)
        if self._chacha:
            nonce_bytes, body = seq64, fragment
            nonce = self._nonce(seq64)
        else:
            nonce_bytes, body = fragment[:8], fragment[8:]
            nonce = self._iv + nonce_bytes
        if len(body) < 16:
            return None
        aad = seq64 + struct.pack("!BHH", content_type, version, len(body) - 16)
        try:
            return self._aead.decrypt(nonce, body, aad)
        except InvalidTag:
            return None
