"""SRTP and SRTCP written from the RFCs alone, on `cryptography`: the yardstick for libsrtp.

Nothing here comes from libsrtp, pylibsrtp or :mod:`trio_rtc.rtp.srtp`. It is checked against the
published vectors (RFC 3711 Appendix B.2 and B.3, RFC 7714 §16 and §17) in
``test_srtp_rfc_vectors.py``, and only then used to judge what libsrtp produces, so an IV, key
derivation or associated-data boundary that is wrong but self-consistent on both sides of a round
trip cannot pass unnoticed.

Scope: key_derivation_rate 0 and no MKI (what DTLS-SRTP uses, RFC 5764 §4.1.2), the four
DTLS-SRTP profiles, and RFC 7714's tag-only (unencrypted) forms, which its vectors exercise.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "LABEL_RTCP_AUTH",
    "LABEL_RTCP_ENCRYPTION",
    "LABEL_RTCP_SALT",
    "LABEL_RTP_AUTH",
    "LABEL_RTP_ENCRYPTION",
    "LABEL_RTP_SALT",
    "PROFILE_PARAMETERS",
    "ReferenceProfile",
    "SessionKeys",
    "SrtpReference",
    "SrtpReferenceError",
    "aes_cm",
    "aes_cm_iv",
    "derive_session_key",
    "gcm_rtcp_iv",
    "gcm_rtp_iv",
    "independent_unprotect_rtcp",
    "independent_unprotect_rtp",
    "kdf_prf_input",
    "rtp_header_length",
    "srtcp_e_index",
    "srtcp_index_of",
]

# The key derivation labels (RFC 3711 §4.3.1 for SRTP, §4.3.2 for SRTCP).
LABEL_RTP_ENCRYPTION = 0x00
LABEL_RTP_AUTH = 0x01
LABEL_RTP_SALT = 0x02
LABEL_RTCP_ENCRYPTION = 0x03
LABEL_RTCP_AUTH = 0x04
LABEL_RTCP_SALT = 0x05

#: The HMAC-SHA1 session authentication key length, n_a = 160 bits (RFC 3711 §4.2.1).
_AUTH_KEY_LENGTH = 20
#: The session salt: 112 bits for AES-CM (RFC 3711 §4.1.1), 96 for AES-GCM (RFC 7714 §8.1).
_CM_SALT_LENGTH = 14
_GCM_SALT_LENGTH = 12
_GCM_TAG_LENGTH = 16


class SrtpReferenceError(Exception):
    """A packet does not verify or does not parse."""


@attrs.frozen
class ReferenceProfile:
    """One DTLS-SRTP protection profile's transform parameters."""

    name: str
    master_key_length: int
    master_salt_length: int
    aead: bool
    rtp_tag_length: int
    rtcp_tag_length: int

    @property
    def session_salt_length(self) -> int:
        return _GCM_SALT_LENGTH if self.aead else _CM_SALT_LENGTH

    @property
    def auth_key_length(self) -> int:
        return 0 if self.aead else _AUTH_KEY_LENGTH


#: By use_srtp code point. RFC 5764 §4.1.2 for the counter-mode profiles (whose _32 variant keeps
#: an 80-bit tag on SRTCP), RFC 7714 §14.2 for the AEAD ones.
PROFILE_PARAMETERS: dict[int, ReferenceProfile] = {
    0x0001: ReferenceProfile("SRTP_AES128_CM_HMAC_SHA1_80", 16, 14, False, 10, 10),
    0x0002: ReferenceProfile("SRTP_AES128_CM_HMAC_SHA1_32", 16, 14, False, 4, 10),
    0x0007: ReferenceProfile("SRTP_AEAD_AES_128_GCM", 16, 12, True, 16, 16),
    0x0008: ReferenceProfile("SRTP_AEAD_AES_256_GCM", 32, 12, True, 16, 16),
}


def aes_cm(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES in counter mode from the 16-byte ``iv``, the counter being the whole block (RFC 3711
    §4.1.1 increments it mod 2^128); XORs ``data`` with the keystream."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def kdf_prf_input(master_salt: bytes, label: int, index_div_kdr: int = 0) -> bytes:
    """The AES-CM PRF's IV, x * 2^16 (RFC 3711 §4.3.1, §4.3.3): x = (label || r) XOR master_salt,
    with r 48 bits wide.

    RFC 3711 right-aligns key_id with its 112-bit salt. RFC 7714 §11 sends its 96-bit salt through
    the same PRF without saying how it is widened; libsrtp, and so every browser, puts it in the
    high-order bits with two zero octets on the right, and so does this function (the RFC 7714
    tests pin that pylibsrtp does and that the other alignment does not match it).
    """
    key_id = (label << 48) | index_div_kdr
    x = int.from_bytes(master_salt.ljust(_CM_SALT_LENGTH, b"\0")) ^ key_id
    return (x << 16).to_bytes(16)


def derive_session_key(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """PRF_n(k_master, x) with key_derivation_rate 0: the AES-CM keystream under the master key
    (AES-128, or AES-256 for a 256-bit master key: RFC 6188's AES_256_CM_PRF), truncated to
    ``length``."""
    return aes_cm(master_key, kdf_prf_input(master_salt, label), bytes(length))


def aes_cm_iv(session_salt: bytes, ssrc: int, index: int) -> bytes:
    """IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16) (RFC 3711 §4.1.1); ``index`` is the
    48-bit SRTP packet index or the 31-bit SRTCP index (§3.4)."""
    iv = (int.from_bytes(session_salt) << 16) ^ (ssrc << 64) ^ (index << 16)
    return iv.to_bytes(16)


def gcm_rtp_iv(session_salt: bytes, ssrc: int, roc: int, seq: int) -> bytes:
    """(00 00 || SSRC || ROC || SEQ) XOR salt (RFC 7714 §8.1)."""
    return _xor(struct.pack("!HIIH", 0, ssrc, roc, seq), session_salt)


def gcm_rtcp_iv(session_salt: bytes, ssrc: int, index: int) -> bytes:
    """(00 00 || SSRC || 00 00 || 0 || SRTCP index) XOR salt (RFC 7714 §9.1): no E flag."""
    return _xor(struct.pack("!HIHI", 0, ssrc, 0, index & 0x7FFFFFFF), session_salt)


def srtcp_e_index(index: int, encrypted: bool) -> bytes:
    """The E flag and 31-bit SRTCP index (RFC 3711 §3.4; RFC 7714 calls it the ESRTCP word)."""
    return ((encrypted << 31) | index).to_bytes(4)


def rtp_header_length(packet: bytes) -> int:
    """Fixed header, CSRC list and header extension (RFC 3550 §5.1, §5.3.1): what SRTP leaves in
    the clear and AES-GCM takes as associated data (RFC 7714 §8.2)."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        raise SrtpReferenceError("not an RTP packet")
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < length + 4:
            raise SrtpReferenceError("header extension runs past the packet")
        length += 4 + 4 * struct.unpack_from("!H", packet, length + 2)[0]
    if len(packet) < length:
        raise SrtpReferenceError("RTP header runs past the packet")
    return length


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@attrs.frozen
class SessionKeys:
    """The session keys of SRTP or of SRTCP, one direction (RFC 3711 §4.3.1)."""

    encryption_key: bytes
    salt: bytes
    auth_key: bytes = b""


@attrs.frozen
class SrtpReference:
    """One direction of an SRTP crypto context: both transforms, keyed with session keys.

    Stateless: the caller says which rollover counter (RTP) or SRTCP index each packet has.
    """

    profile: ReferenceProfile
    rtp: SessionKeys
    rtcp: SessionKeys

    @classmethod
    def from_master(cls, profile: int, master_key: bytes, master_salt: bytes) -> SrtpReference:
        """Session keys derived from a master key and salt (RFC 3711 §4.3, RFC 7714 §11)."""
        params = PROFILE_PARAMETERS[profile]
        if len(master_key) != params.master_key_length:
            raise ValueError(f"{params.name} needs a {params.master_key_length}-byte master key")
        if len(master_salt) != params.master_salt_length:
            raise ValueError(f"{params.name} needs a {params.master_salt_length}-byte salt")

        def keys(encryption: int, auth: int, salt: int) -> SessionKeys:
            return SessionKeys(
                derive_session_key(master_key, master_salt, encryption, len(master_key)),
                derive_session_key(master_key, master_salt, salt, params.session_salt_length),
                derive_session_key(master_key, master_salt, auth, params.auth_key_length),
            )

        return cls(
            params,
            keys(LABEL_RTP_ENCRYPTION, LABEL_RTP_AUTH, LABEL_RTP_SALT),
            keys(LABEL_RTCP_ENCRYPTION, LABEL_RTCP_AUTH, LABEL_RTCP_SALT),
        )

    # -- SRTP (RFC 3711 §3.1, §4.1, §4.2; RFC 7714 §8) -----------------------------------------

    def protect_rtp(self, packet: bytes, roc: int = 0, *, encrypt: bool = True) -> bytes:
        """The SRTP packet for ``packet`` under rollover counter ``roc``. ``encrypt=False`` is
        RFC 7714's authentication-only form (the whole packet is associated data)."""
        header_length = rtp_header_length(packet)
        seq, ssrc = struct.unpack_from("!H4xI", packet, 2)
        header, payload = packet[:header_length], packet[header_length:]
        keys = self.rtp
        if self.profile.aead:
            aead = AESGCM(keys.encryption_key)
            iv = gcm_rtp_iv(keys.salt, ssrc, roc, seq)
            if not encrypt:
                return packet + aead.encrypt(iv, b"", packet)
            return header + aead.encrypt(iv, payload, header)
        if encrypt:
            iv = aes_cm_iv(keys.salt, ssrc, (roc << 16) | seq)
            payload = aes_cm(keys.encryption_key, iv, payload)
        authenticated = header + payload
        return authenticated + self._rtp_tag(authenticated, roc)

    def unprotect_rtp(self, data: bytes, roc: int = 0, *, encrypted: bool = True) -> bytes:
        """The RTP packet inside ``data``; raises :class:`SrtpReferenceError` if it does not
        verify under rollover counter ``roc``."""
        tag_length = self.profile.rtp_tag_length
        if len(data) < 12 + tag_length:
            raise SrtpReferenceError("shorter than a header and a tag")
        header_length = rtp_header_length(data[:-tag_length])
        seq, ssrc = struct.unpack_from("!H4xI", data, 2)
        header = data[:header_length]
        keys = self.rtp
        if self.profile.aead:
            aead = AESGCM(keys.encryption_key)
            iv = gcm_rtp_iv(keys.salt, ssrc, roc, seq)
            try:
                if not encrypted:
                    aead.decrypt(iv, data[-tag_length:], data[:-tag_length])
                    return data[:-tag_length]
                return header + aead.decrypt(iv, data[header_length:], header)
            except InvalidTag:
                raise SrtpReferenceError("AES-GCM tag does not verify") from None
        authenticated, tag = data[:-tag_length], data[-tag_length:]
        if not hmac.compare_digest(tag, self._rtp_tag(authenticated, roc)):
            raise SrtpReferenceError("HMAC-SHA1 tag does not verify")
        payload = authenticated[header_length:]
        if encrypted:
            iv = aes_cm_iv(keys.salt, ssrc, (roc << 16) | seq)
            payload = aes_cm(keys.encryption_key, iv, payload)
        return header + payload

    def _rtp_tag(self, authenticated: bytes, roc: int) -> bytes:
        # The authenticated portion followed by the ROC (RFC 3711 §4.2).
        digest = hmac.digest(self.rtp.auth_key, authenticated + roc.to_bytes(4), hashlib.sha1)
        return digest[: self.profile.rtp_tag_length]

    # -- SRTCP (RFC 3711 §3.4; RFC 7714 §9) -----------------------------------------------------

    def protect_rtcp(self, packet: bytes, index: int, *, encrypt: bool = True) -> bytes:
        """The SRTCP packet for ``packet`` under SRTCP index ``index`` (31 bits)."""
        if len(packet) < 8:
            raise SrtpReferenceError("shorter than an RTCP header and SSRC")
        ssrc = struct.unpack_from("!I", packet, 4)[0]
        header, body = packet[:8], packet[8:]
        e_index = srtcp_e_index(index, encrypt)
        keys = self.rtcp
        if self.profile.aead:
            # The ESRTCP word ends the associated data and follows the cipher (RFC 7714 §9.2,
            # §9.3): the reverse of RFC 3711's index-then-tag trailer.
            aead = AESGCM(keys.encryption_key)
            iv = gcm_rtcp_iv(keys.salt, ssrc, index)
            if not encrypt:
                return packet + aead.encrypt(iv, b"", packet + e_index) + e_index
            return header + aead.encrypt(iv, body, header + e_index) + e_index
        if encrypt:
            body = aes_cm(keys.encryption_key, aes_cm_iv(keys.salt, ssrc, index), body)
        authenticated = header + body + e_index
        return authenticated + self._rtcp_tag(authenticated)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        """The RTCP packet inside ``data``, encrypted or not as its E flag says; raises
        :class:`SrtpReferenceError` if it does not verify."""
        tag_length = self.profile.rtcp_tag_length
        if len(data) < 8 + 4 + tag_length:
            raise SrtpReferenceError("shorter than a header, an index and a tag")
        ssrc = struct.unpack_from("!I", data, 4)[0]
        keys = self.rtcp
        if self.profile.aead:
            e_index = data[-4:]
            encrypted, index = bool(e_index[0] & 0x80), int.from_bytes(e_index) & 0x7FFFFFFF
            aead = AESGCM(keys.encryption_key)
            iv = gcm_rtcp_iv(keys.salt, ssrc, index)
            try:
                if not encrypted:
                    body = data[: -4 - tag_length]
                    aead.decrypt(iv, data[-4 - tag_length : -4], body + e_index)
                    return body
                return data[:8] + aead.decrypt(iv, data[8:-4], data[:8] + e_index)
            except InvalidTag:
                raise SrtpReferenceError("AES-GCM tag does not verify") from None
        authenticated, tag = data[:-tag_length], data[-tag_length:]
        if not hmac.compare_digest(tag, self._rtcp_tag(authenticated)):
            raise SrtpReferenceError("HMAC-SHA1 tag does not verify")
        e_index = authenticated[-4:]
        body = authenticated[8:-4]
        if e_index[0] & 0x80:
            index = int.from_bytes(e_index) & 0x7FFFFFFF
            body = aes_cm(keys.encryption_key, aes_cm_iv(keys.salt, ssrc, index), body)
        return data[:8] + body

    def _rtcp_tag(self, authenticated: bytes) -> bytes:
        digest = hmac.digest(self.rtcp.auth_key, authenticated, hashlib.sha1)
        return digest[: self.profile.rtcp_tag_length]


def srtcp_index_of(profile: int, data: bytes) -> tuple[bool, int]:
    """The E flag and SRTCP index of a protected packet, from where its profile puts them."""
    at = (
        len(data) - 4
        if PROFILE_PARAMETERS[profile].aead
        else len(data) - PROFILE_PARAMETERS[profile].rtcp_tag_length - 4
    )
    word = int.from_bytes(data[at : at + 4])
    return bool(word >> 31), word & 0x7FFFFFFF


def independent_unprotect_rtp(profile: int, key: bytes, salt: bytes, data: bytes) -> bytes:
    """Verifies and decrypts an SRTP packet of rollover counter 0 keyed by a master key and salt."""
    return SrtpReference.from_master(profile, key, salt).unprotect_rtp(data)


def independent_unprotect_rtcp(profile: int, key: bytes, salt: bytes, data: bytes) -> bytes:
    """Verifies and decrypts an SRTCP packet keyed by a master key and salt; it must be encrypted
    (E flag set), as everything DTLS-SRTP sends is."""
    if not srtcp_index_of(profile, data)[0]:
        raise SrtpReferenceError("SRTCP packet is not encrypted")
    return SrtpReference.from_master(profile, key, salt).unprotect_rtcp(data)
