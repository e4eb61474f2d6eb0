"""SRTP against the published vectors, chained: RFC 3711 B.2/B.3 and RFC 7714 §16/§17 check an
implementation written from the RFCs (``srtp_reference``); that implementation then checks, byte
for byte, what pylibsrtp and :class:`trio_rtc.rtp.srtp.SrtpSession` send and accept.

The chain is needed because RFC 7714 publishes session keys and no master key, and pylibsrtp takes
only master keys: the GCM vectors cannot be fed to libsrtp. Instead the key derivation is pinned
by RFC 3711 B.3 (which RFC 7714 §11 reuses) and the GCM transform by RFC 7714 §16-17, and the two
together predict libsrtp's output from a master key exactly.
"""

from __future__ import annotations

import random
import struct

import pylibsrtp
import pytest
from srtp_reference import (
    LABEL_RTP_AUTH,
    LABEL_RTP_ENCRYPTION,
    LABEL_RTP_SALT,
    PROFILE_PARAMETERS,
    SessionKeys,
    SrtpReference,
    SrtpReferenceError,
    aes_cm,
    aes_cm_iv,
    derive_session_key,
    gcm_rtcp_iv,
    gcm_rtp_iv,
    kdf_prf_input,
    srtcp_index_of,
)

from trio_rtc.dtls.crypto import SRTP_PROFILES, SrtpKeys, SrtpProfile
from trio_rtc.rtp.srtp import SrtpSession


def unhex(text: str) -> bytes:
    """Hex as the RFCs print it: in groups, across lines."""
    return bytes.fromhex("".join(text.split()))


# -- RFC 3711 Appendix B.2: AES-CM keystream ---------------------------------------------------

B2_SESSION_KEY = unhex("2B7E151628AED2A6ABF7158809CF4F3C")
# "Session Salt: F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000 (already shifted)": the 112-bit salt times 2^16.
B2_SESSION_SALT = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
B2_OFFSET = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
#: Keystream segment length: 1044512 octets (65282 AES blocks).
B2_SEGMENT_BLOCKS = 65282
B2_KEYSTREAM_BLOCKS = {
    0x0000: "E03EAD0935C95E80E166B16DD92B4EB4",
    0x0001: "D23513162B02D0F72A43A2FE4A5F97AB",
    0x0002: "41E95B3BB0A2E8DD477901E4FCA894C0",
    0xFEFF: "EC8CDF7398607CB0F2D21675EA9EA1E4",
    0xFF00: "362B7C3C6773516318A077D7FC5073AE",
    0xFF01: "6A2CC3787889374FBEB4C81B17BA6C44",
}


def test_rfc3711_b2_aes_cm_keystream() -> None:
    # Rollover counter 0, sequence number 0, SSRC 0: the IV is the shifted salt alone.
    iv = aes_cm_iv(B2_SESSION_SALT, ssrc=0, index=0)
    assert iv == B2_OFFSET
    keystream = aes_cm(B2_SESSION_KEY, iv, bytes(16 * B2_SEGMENT_BLOCKS))
    for block, expected in B2_KEYSTREAM_BLOCKS.items():
        assert keystream[16 * block : 16 * block + 16] == unhex(expected), hex(block)
    assert 16 * (max(B2_KEYSTREAM_BLOCKS) + 1) == len(keystream)


# -- RFC 3711 Appendix B.3: key derivation -----------------------------------------------------

B3_MASTER_KEY = unhex("E1F97A0D3E018BE0D64FA32C06DE4139")
B3_MASTER_SALT = unhex("0EC675AD498AFEEBB6960B3AABE6")
#: label -> "x*2^16 (AES-CM input)".
B3_PRF_INPUTS = {
    LABEL_RTP_ENCRYPTION: "0EC675AD498AFEEBB6960B3AABE60000",
    LABEL_RTP_SALT: "0EC675AD498AFEE9B6960B3AABE60000",
    LABEL_RTP_AUTH: "0EC675AD498AFEEAB6960B3AABE60000",
}
B3_CIPHER_KEY = unhex("C61E7A93744F39EE10734AFE3FF7A087")
B3_CIPHER_SALT_BLOCK = unhex("30CBBC08863D8C85D49DB34A9AE17AC6")
B3_CIPHER_SALT = unhex("30CBBC08863D8C85D49DB34A9AE1")
#: The 94-octet auth key, one AES block a row.
B3_AUTH_KEY = unhex(
    """
    CEBE321F6FF7716B6FD4AB49AF256A15
    6D38BAA48F0A0ACF3C34E2359E6CDBCE
    E049646C43D9327AD175578EF7227098
    6371C10C9A369AC2F94A8C5FBCDDDC25
    6D6E919A48B610EF17C2041E47403576
    6B68642C59BBFC2F34DB60DBDFB2
    """
)


def test_rfc3711_b3_key_derivation() -> None:
    for label, expected in B3_PRF_INPUTS.items():
        assert kdf_prf_input(B3_MASTER_SALT, label) == unhex(expected), label
    derive = derive_session_key
    assert derive(B3_MASTER_KEY, B3_MASTER_SALT, LABEL_RTP_ENCRYPTION, 16) == B3_CIPHER_KEY
    assert derive(B3_MASTER_KEY, B3_MASTER_SALT, LABEL_RTP_SALT, 16) == B3_CIPHER_SALT_BLOCK
    assert derive(B3_MASTER_KEY, B3_MASTER_SALT, LABEL_RTP_SALT, 14) == B3_CIPHER_SALT
    assert len(B3_AUTH_KEY) == 94
    assert derive(B3_MASTER_KEY, B3_MASTER_SALT, LABEL_RTP_AUTH, 94) == B3_AUTH_KEY
    # The context derives SRTP's keys with the right labels and HMAC-SHA1's 160-bit key length.
    context = SrtpReference.from_master(
        SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80, B3_MASTER_KEY, B3_MASTER_SALT
    )
    assert context.rtp == SessionKeys(B3_CIPHER_KEY, B3_CIPHER_SALT, B3_AUTH_KEY[:20])


# -- RFC 7714 §16 and §17: AES-GCM -----------------------------------------------------------

# §16: "The 16-octet (128-bit) key is 00 01 02 ... 0f, and the 32-octet (256-bit) key is
# 00 01 02 ... 1f". These are session keys; §16 and §17 use them for SRTP and SRTCP alike.
GCM_KEYS = {
    SrtpProfile.SRTP_AEAD_AES_128_GCM: bytes(range(16)),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: bytes(range(32)),
}
GCM_SALT = unhex("51756964 2070726f 2071756f")

#: §16: a 12-octet header and the 38-octet payload "Gallia est omnis divisa in partes tres".
RTP_PACKET = unhex(
    """
    8040f17b 8041f8d3 5501a0b2 47616c6c
    69612065 7374206f 6d6e6973 20646976
    69736120 696e2070 61727465 73207472
    6573
    """
)
RTP_IV = unhex("51 75 3c 65 80 c2 72 6f 20 71 84 14")
#: §16.1.1 and §16.2.1, "Encrypted and tagged packet" (also the input of §16.1.2 and §16.2.2).
RTP_ENCRYPTED = {
    SrtpProfile.SRTP_AEAD_AES_128_GCM: unhex(
        """
        8040f17b 8041f8d3 5501a0b2 f24de3a3
        fb34de6c acba861c 9d7e4bca be633bd5
        0d294e6f 42a5f47a 51c7d19b 36de3adf
        8833899d 7f27beb1 6a9152cf 765ee439
        0cce
        """
    ),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: unhex(
        """
        8040f17b 8041f8d3 5501a0b2 32b1de78
        a822fe12 ef9f78fa 332e33aa b1801238
        9a58e2f3 b50b2a02 76ffae0f 1ba63799
        b87b7aa3 db36dfff d6b0f9bb 7878d7a7
        6c13
        """
    ),
}
#: §16.1.3 and §16.2.3, "Tagged packet" (authentication only; the input of §16.1.4 and §16.2.4).
RTP_TAGGED = {
    SrtpProfile.SRTP_AEAD_AES_128_GCM: unhex(
        """
        8040f17b 8041f8d3 5501a0b2 47616c6c
        69612065 7374206f 6d6e6973 20646976
        69736120 696e2070 61727465 73207472
        65732249 3f82d2bc e397e9d7 9e3b19aa
        4216
        """
    ),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: unhex(
        """
        8040f17b 8041f8d3 5501a0b2 47616c6c
        69612065 7374206f 6d6e6973 20646976
        69736120 696e2070 61727465 73207472
        6573a866 d5910f88 7463067c eefec452
        15d4
        """
    ),
}

#: §17.1's packet, "with 32-bit SRTCP index 000005d4". (§17's preamble prints a slightly
#: different packet — 81c8000e, 4e545031, 0000eb98 — that no subsection uses; every §17.x input
#: and output is this one.)
RTCP_PACKET = unhex(
    """
    81c8000d 4d617273 4e545031 4e545032
    52545020 0000042a 0000e930 4c756e61
    deadbeef deadbeef deadbeef deadbeef
    deadbeef
    """
)
RTCP_INDEX = 0x000005D4
RTCP_IV = unhex("51 75 24 05 52 03 72 6f 20 71 70 bb")
#: §17.1 (AES-128, "Encrypted and tagged packet") and §17.2 (AES-256, "Decrypting the following
#: packet", which verifies and decrypts to RTCP_PACKET).
RTCP_ENCRYPTED = {
    SrtpProfile.SRTP_AEAD_AES_128_GCM: unhex(
        """
        81c8000d 4d617273 63e94885 dcdab67c
        a727d766 2f6b7e99 7ff5c0f7 6c06f32d
        c676a5f1 730d6fda 4ce09b46 86303ded
        0bb9275b c84aa458 96cf4d2f c5abf872
        45d9eade 800005d4
        """
    ),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: unhex(
        """
        81c8000d 4d617273 d50ae4d1 f5ce5d30
        4ba297e4 7d470c28 2c3ece5d bffe0a50
        a2eaa5c1 110555be 8415f658 c61de047
        6f1b6fad 1d1eb30c 4446839f 57ff6f6c
        b26ac3be 800005d4
        """
    ),
}
#: §17.3 (AES-128, "Tagged packet") and §17.4 (AES-256, "Verifying the following packet"):
#: tagged only, E flag clear.
RTCP_TAGGED = {
    SrtpProfile.SRTP_AEAD_AES_128_GCM: unhex(
        """
        81c8000d 4d617273 4e545031 4e545032
        52545020 0000042a 0000e930 4c756e61
        deadbeef deadbeef deadbeef deadbeef
        deadbeef 841dd968 3dd78ec9 2ae58790
        125f62b3 000005d4
        """
    ),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: unhex(
        """
        81c8000d 4d617273 4e545031 4e545032
        52545020 0000042a 0000e930 4c756e61
        deadbeef deadbeef deadbeef deadbeef
        deadbeef 91db4afb feee5a97 8fab4393
        ed2615fe 000005d4
        """
    ),
}

GCM_PROFILES = list(GCM_KEYS)


def rfc7714_context(profile: SrtpProfile) -> SrtpReference:
    """The reference keyed with §16's session key and salt, for SRTP and SRTCP alike."""
    keys = SessionKeys(GCM_KEYS[profile], GCM_SALT)
    return SrtpReference(PROFILE_PARAMETERS[profile], keys, keys)


def test_rfc7714_salt_and_ivs() -> None:
    assert GCM_SALT == b"Quid pro quo"
    # §16 and §8.1: SSRC 5501a0b2, ROC 0, SEQ f17b.
    assert gcm_rtp_iv(GCM_SALT, ssrc=0x5501A0B2, roc=0, seq=0xF17B) == RTP_IV
    # §17 and §9.1: SSRC 4d617273, SRTCP index 5d4; the E flag is not part of the IV.
    assert gcm_rtcp_iv(GCM_SALT, ssrc=0x4D617273, index=RTCP_INDEX) == RTCP_IV
    assert gcm_rtcp_iv(GCM_SALT, ssrc=0x4D617273, index=RTCP_INDEX | 1 << 31) == RTCP_IV


@pytest.mark.parametrize("profile", GCM_PROFILES, ids=lambda p: p.name)
def test_rfc7714_16_srtp_encryption_and_decryption(profile: SrtpProfile) -> None:
    """§16.1.1-2 and §16.2.1-2: the whole packet, header, ciphertext and tag, byte for byte."""
    context = rfc7714_context(profile)
    assert context.protect_rtp(RTP_PACKET) == RTP_ENCRYPTED[profile]
    assert context.unprotect_rtp(RTP_ENCRYPTED[profile]) == RTP_PACKET


@pytest.mark.parametrize("profile", GCM_PROFILES, ids=lambda p: p.name)
def test_rfc7714_16_srtp_tagging_and_verification(profile: SrtpProfile) -> None:
    """§16.1.3-4 and §16.2.3-4: authentication only, the whole packet as associated data."""
    context = rfc7714_context(profile)
    assert context.protect_rtp(RTP_PACKET, encrypt=False) == RTP_TAGGED[profile]
    assert context.unprotect_rtp(RTP_TAGGED[profile], encrypted=False) == RTP_PACKET


@pytest.mark.parametrize("profile", GCM_PROFILES, ids=lambda p: p.name)
def test_rfc7714_17_srtcp(profile: SrtpProfile) -> None:
    """§17.1-4. The RFC encrypts with AES-128 and decrypts with AES-256 (and likewise tags and
    verifies); both directions are run for both key sizes."""
    context = rfc7714_context(profile)
    assert context.protect_rtcp(RTCP_PACKET, RTCP_INDEX) == RTCP_ENCRYPTED[profile]
    assert context.unprotect_rtcp(RTCP_ENCRYPTED[profile]) == RTCP_PACKET
    assert context.protect_rtcp(RTCP_PACKET, RTCP_INDEX, encrypt=False) == RTCP_TAGGED[profile]
    assert context.unprotect_rtcp(RTCP_TAGGED[profile]) == RTCP_PACKET


@pytest.mark.parametrize("profile", GCM_PROFILES, ids=lambda p: p.name)
def test_rfc7714_vectors_with_any_bit_flipped_do_not_verify(profile: SrtpProfile) -> None:
    """The tag is checked, not just recomputed: without this the vectors would also pass an
    implementation that ignored it on the way in."""
    context = rfc7714_context(profile)
    for vector, unprotect in (
        (RTP_ENCRYPTED[profile], context.unprotect_rtp),
        (RTP_TAGGED[profile], lambda data: context.unprotect_rtp(data, encrypted=False)),
        (RTCP_ENCRYPTED[profile], context.unprotect_rtcp),
        (RTCP_TAGGED[profile], context.unprotect_rtcp),
    ):
        for position in range(len(vector)):
            tampered = bytearray(vector)
            tampered[position] ^= 0x04
            with pytest.raises(SrtpReferenceError):
                unprotect(bytes(tampered))


# -- the chain closed: pylibsrtp and SrtpSession against the verified reference ------------------

PROFILES = list(SrtpProfile)


def master_keys(profile: SrtpProfile, seed: int) -> tuple[bytes, bytes]:
    rng = random.Random(f"{profile.name}-{seed}")
    info = SRTP_PROFILES[profile]
    return rng.randbytes(info.key_length), rng.randbytes(info.salt_length)


def raw_session(profile: SrtpProfile, key: bytes, salt: bytes, outbound: bool) -> pylibsrtp.Session:
    """pylibsrtp keyed by hand, without SrtpSession's code."""
    policy = pylibsrtp.Policy(
        key=key + salt,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND
        if outbound
        else pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=int(profile),
    )
    return pylibsrtp.Session(policy)


def rtp(
    seq: int,
    payload: bytes,
    *,
    ssrc: int = 0x5501A0B2,
    csrcs: int = 0,
    extension: bytes | None = None,
    marker: bool = False,
) -> bytes:
    first = 0x80 | csrcs | (0x10 if extension is not None else 0)
    header = struct.pack("!BBHII", first, 96 | marker << 7, seq, seq * 960 & 0xFFFFFFFF, ssrc)
    header += b"".join(struct.pack("!I", 0xC0000000 + n) for n in range(csrcs))
    if extension is not None:
        padded = extension + bytes(-len(extension) % 4)
        header += struct.pack("!HH", 0xBEDE, len(padded) // 4) + padded
    return header + payload


#: (rollover counter, packet): one stream across a sequence-number wrap (RFC 3711 §3.3.1), with
#: CSRCs, a header extension (left in the clear, authenticated, and GCM associated data) and an
#: empty payload among them.
WRAPPING_STREAM = [
    (0, rtp(65533, b"Gallia est omnis divisa in partes tres")),
    (0, rtp(65534, bytes(range(200)), csrcs=2)),
    (0, rtp(65535, b"\xff" * 33, extension=b"\x10\xaa\x21\xbb\xcc")),
    (1, rtp(0, b"after the wrap", marker=True)),
    (1, rtp(1, b"", csrcs=1, extension=b"\x22\x01\x02\x03")),
    (1, rtp(2, bytes(1000))),
]


def rtcp_reports(ssrc: int) -> list[bytes]:
    """A sender report, a compound packet (receiver report + SDES), and a receiver report with
    nothing after the sender SSRC, so nothing to encrypt."""
    sender_report = struct.pack("!BBHI", 0x80, 200, 6, ssrc) + bytes(range(20))
    receiver_report = struct.pack("!BBHI", 0x81, 201, 7, ssrc) + bytes(range(100, 124))
    sdes = struct.pack("!BBHI", 0x81, 202, 3, ssrc) + b"\x01\x04peer\x00\x00"
    empty_receiver_report = struct.pack("!BBHI", 0x80, 201, 1, ssrc)
    return [sender_report, receiver_report + sdes, empty_receiver_report]


def outbound_session(profile: SrtpProfile, key: bytes, salt: bytes) -> SrtpSession:
    other_key, other_salt = master_keys(profile, seed=99)
    return SrtpSession(SrtpKeys(profile, key, salt, other_key, other_salt))


def inbound_session(profile: SrtpProfile, key: bytes, salt: bytes) -> SrtpSession:
    other_key, other_salt = master_keys(profile, seed=99)
    return SrtpSession(SrtpKeys(profile, other_key, other_salt, key, salt))


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_pylibsrtp_sends_the_bytes_the_reference_predicts(profile: SrtpProfile) -> None:
    """From a master key: our session and a bare pylibsrtp session protect every packet of a
    wrapping stream into exactly the bytes the reference makes with the KDF-derived session keys
    and the packet's rollover counter."""
    key, salt = master_keys(profile, seed=1)
    reference = SrtpReference.from_master(profile, key, salt)
    ours = outbound_session(profile, key, salt)
    raw = raw_session(profile, key, salt, outbound=True)
    for roc, packet in WRAPPING_STREAM:
        expected = reference.protect_rtp(packet, roc)
        assert ours.protect_rtp(packet) == expected, (roc, packet[:4].hex())
        assert raw.protect(packet) == expected, (roc, packet[:4].hex())


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_pylibsrtp_accepts_what_the_reference_sends(profile: SrtpProfile) -> None:
    key, salt = master_keys(profile, seed=2)
    reference = SrtpReference.from_master(profile, key, salt)
    ours = inbound_session(profile, key, salt)
    raw = raw_session(profile, key, salt, outbound=False)
    for roc, packet in WRAPPING_STREAM:
        protected = reference.protect_rtp(packet, roc)
        assert ours.unprotect_rtp(protected) == packet, (roc, packet[:4].hex())
        assert raw.unprotect(protected) == packet, (roc, packet[:4].hex())
    # The rollover counter is authenticated (RFC 3711 §4.2) or in the IV (RFC 7714 §8.1): the
    # next packet under the wrong one is refused.
    wrong_roc = reference.protect_rtp(rtp(3, b"late"), roc=0)
    assert ours.unprotect_rtp(wrong_roc) is None
    assert ours.stats.dropped_auth == 1
    assert ours.unprotect_rtp(reference.protect_rtp(rtp(3, b"late"), roc=1)) == rtp(3, b"late")


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_pylibsrtp_srtcp_matches_the_reference_both_ways(profile: SrtpProfile) -> None:
    """SRTCP, E flag set, index as libsrtp numbers it; then reference-made packets at indices of
    our choosing (including RFC 7714 §17's and the largest 31-bit one) are accepted."""
    key, salt = master_keys(profile, seed=3)
    reference = SrtpReference.from_master(profile, key, salt)
    ours = outbound_session(profile, key, salt)
    raw = raw_session(profile, key, salt, outbound=True)
    indices = []
    for report in rtcp_reports(0x4D617273) * 2:
        for protected in (ours.protect_rtcp(report), raw.protect_rtcp(report)):
            encrypted, index = srtcp_index_of(profile, protected)
            assert encrypted
            assert protected == reference.protect_rtcp(report, index)
            indices.append(index)
    # Each session numbers its own packets, consecutively.
    assert indices[0::2] == indices[1::2] == list(range(indices[0], indices[0] + 6))

    receiver = inbound_session(profile, key, salt)
    raw_in = raw_session(profile, key, salt, outbound=False)
    for index, report in zip(
        (1, 2, RTCP_INDEX, 0x7FFFFFFF), [*rtcp_reports(0x4D617273), RTCP_PACKET], strict=True
    ):
        protected = reference.protect_rtcp(report, index)
        assert receiver.unprotect_rtcp(protected) == report, index
        assert raw_in.unprotect_rtcp(protected) == report, index
    # Tagged but not encrypted (E flag clear; RFC 3711 §3.4, RFC 7714 §9.3). libsrtp's
    # counter-mode path refuses it under a policy that encrypts SRTCP, which the session counts
    # as failed authentication; its AEAD path accepts it. Either way a forgery is refused.
    tagged_only = reference.protect_rtcp(RTCP_PACKET, 5, encrypt=False)
    forged = bytearray(tagged_only)
    forged[20] ^= 0x01
    fresh = inbound_session(profile, key, salt)
    assert fresh.unprotect_rtcp(bytes(forged)) is None
    aead = PROFILE_PARAMETERS[profile].aead
    assert fresh.unprotect_rtcp(tagged_only) == (RTCP_PACKET if aead else None)
    assert fresh.stats.dropped_auth == (1 if aead else 2)


@pytest.mark.parametrize("profile", GCM_PROFILES, ids=lambda p: p.name)
def test_libsrtp_widens_the_96_bit_gcm_salt_on_the_right(profile: SrtpProfile) -> None:
    """RFC 7714 §11 runs the 96-bit master salt through RFC 3711's PRF without saying how it fills
    the 112-bit x. libsrtp puts it in the high-order bits; right-aligned, as RFC 3711 §4.3.1
    aligns a 112-bit salt with key_id, it would derive other keys. The reference follows libsrtp,
    and this pins that the choice matters."""
    key, salt = master_keys(profile, seed=4)
    sent = raw_session(profile, key, salt, outbound=True).protect(RTP_PACKET)
    assert sent == SrtpReference.from_master(profile, key, salt).protect_rtp(RTP_PACKET)

    def right_aligned(label: int, length: int) -> bytes:
        return derive_session_key(key, b"\0\0" + salt, label, length)

    keys = SessionKeys(
        right_aligned(LABEL_RTP_ENCRYPTION, len(key)), right_aligned(LABEL_RTP_SALT, 12)
    )
    other = SrtpReference(PROFILE_PARAMETERS[profile], keys, keys)
    assert other.protect_rtp(RTP_PACKET) != sent
