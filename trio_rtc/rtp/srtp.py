"""SRTP and SRTCP protection (RFC 3711, RFC 7714) keyed by DTLS-SRTP (RFC 5764), over pylibsrtp.

A pure core: bytes in, bytes out, no trio, no clock. One :class:`SrtpSession` per DTLS transport
holds two libsrtp sessions, because DTLS-SRTP gives each direction its own master key and salt
(RFC 5764 §4.2): the outbound one is keyed with ``local_key``/``local_salt`` and protects, the
inbound one is keyed with ``remote_key``/``remote_salt`` and unprotects. Both are wildcard
sessions (``SSRC_ANY_OUTBOUND`` / ``SSRC_ANY_INBOUND``): libsrtp clones a stream context for each
SSRC the first time it sees one, so any number of streams needs no set-up, and an SSRC's RTP and
RTCP share that context whichever comes first.

Peer input never raises: :meth:`SrtpSession.unprotect_rtp` and :meth:`SrtpSession.unprotect_rtcp`
return ``None`` for anything libsrtp rejects and count why in :class:`SrtpStats`. Our own input
(what we protect) that libsrtp cannot take raises :class:`ValueError`, always before libsrtp's
fixed buffer could be overrun — see :data:`MAX_RTP_PACKET` for the measured limits.
"""

from __future__ import annotations

import struct

import attrs
import pylibsrtp

from ..dtls.crypto import SRTP_PROFILES, SrtpKeys, SrtpProfile

__all__ = [
    "DEFAULT_REPLAY_WINDOW",
    "MAX_RTCP_PACKET",
    "MAX_RTP_PACKET",
    "MAX_SRTP_DATAGRAM",
    "SRTP_POLICY_PROFILES",
    "SrtpSession",
    "SrtpStats",
]

#: Largest plain RTP packet pylibsrtp 1.0 can protect, for every profile. Measured (see
#: docs/srtp.md and tests/test_srtp.py): its ``Session`` copies packets into one 1500-byte buffer
#: and refuses any RTP packet that would not leave room for the *largest possible* trailer
#: (16-byte tag + 128-byte MKI = 144), whatever the profile's real tag, so 1500 - 144.
MAX_RTP_PACKET = 1356
#: Largest plain RTCP packet: the SRTCP trailer adds the 4-byte E flag and index, so 1500 - 148.
MAX_RTCP_PACKET = 1352
#: Largest SRTP/SRTCP datagram pylibsrtp can unprotect (its whole buffer). Nothing we or a
#: browser protect from an MTU-sized packet comes near it; anything larger is dropped as malformed.
MAX_SRTP_DATAGRAM = 1500

#: The replay window (packets) of each SSRC, in and out. libsrtp's default of 128 is shorter than
#: the reordering and NACK retransmission delay of a video stream at a few Mbit/s: a packet
#: retransmitted ~200 ms late would be dropped as "too old". 1024 is what browsers use.
DEFAULT_REPLAY_WINDOW = 1024

#: Our profile (the use_srtp code point, RFC 5764 §4.1.2 / RFC 7714 §14.2) -> pylibsrtp's policy
#: constant. Spelled out rather than passed through: the two numbering schemes agree today, but
#: only by libsrtp's choice.
SRTP_POLICY_PROFILES: dict[SrtpProfile, int] = {
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    SrtpProfile.SRTP_AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    SrtpProfile.SRTP_AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}

#: Bytes each profile appends: (SRTP tag, SRTCP tag). The _32 profile keeps an 80-bit tag on
#: SRTCP (RFC 5764 §4.1.2). A datagram shorter than header + trailer cannot be genuine, so it is
#: counted as malformed without asking libsrtp.
_TAG_LENGTHS: dict[SrtpProfile, tuple[int, int]] = {
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_80: (10, 10),
    SrtpProfile.SRTP_AES128_CM_HMAC_SHA1_32: (4, 10),
    SrtpProfile.SRTP_AEAD_AES_128_GCM: (16, 16),
    SrtpProfile.SRTP_AEAD_AES_256_GCM: (16, 16),
}
_RTP_HEADER = 12
#: RTCP common header + sender SSRC (RFC 3550 §6.4), the least SRTCP authenticates.
_RTCP_HEADER = 8
#: The SRTCP E flag and 31-bit index (RFC 3711 §3.4).
_SRTCP_INDEX = 4

_SEQ_SSRC = struct.Struct("!H4xI")

# pylibsrtp raises one exception type carrying libsrtp's error string (its ERRORS table); these
# are the strings that mean something other than "did not authenticate".
_REPLAY_ERRORS = frozenset(
    {
        "replay check failed (bad index)",
        "replay check failed (index too old)",
        "packet index is too old to consider",
    }
)
_MALFORMED_ERRORS = frozenset({"unsupported parameter", "error parsing data"})


@attrs.define
class SrtpStats:
    """Counters of one :class:`SrtpSession`; drops of peer input never raise."""

    rtp_protected: int = 0
    rtcp_protected: int = 0
    rtp_unprotected: int = 0
    rtcp_unprotected: int = 0
    #: Datagrams whose tag did not verify (tampered, wrongly keyed, garbage of plausible length).
    dropped_auth: int = 0
    #: Datagrams whose index was already received or is older than the replay window.
    dropped_replay: int = 0
    #: Datagrams too short or too long to be SRTP/SRTCP, or whose RTP header does not parse.
    dropped_malformed: int = 0
    #: Packets we were asked to protect that exceed :data:`MAX_RTP_PACKET`/:data:`MAX_RTCP_PACKET`.
    oversize_refused: int = 0


class _SentIndices:
    """Which RTP indices of one outbound SSRC were protected recently, and over what bytes.

    RFC 3711 §9.1 forbids protecting two different packets under one index: with AES-CM or GCM
    the keystream repeats, so the XOR of the two plaintexts leaks (and GCM's authentication key
    with it). Sending the *same* packet again is harmless (the output is identical) and is how a
    NACK is answered without RTX, so libsrtp is told to allow repeats (``allow_repeat_tx``) and
    this ring refuses a repeat whose bytes differ. It covers the replay window, beyond which
    libsrtp refuses any repeat itself. A hash, not the packet, is kept so the ring stays small.
    """

    __slots__ = ("digests", "highest", "indices")

    def __init__(self, size: int, first_index: int) -> None:
        self.highest = first_index
        self.indices = [-1] * size
        self.digests = [0] * size


class SrtpSession:
    """Protects what we send and unprotects what the peer sends, with DTLS-SRTP keys."""

    def __init__(self, keys: SrtpKeys, *, replay_window: int = DEFAULT_REPLAY_WINDOW) -> None:
        profile = keys.profile
        policy_profile = SRTP_POLICY_PROFILES.get(profile)
        if policy_profile is None or profile not in SRTP_PROFILES:
            name = getattr(profile, "name", repr(profile))
            raise ValueError(
                f"SRTP profile {name} is not supported; expected one of "
                f"{[p.name for p in SRTP_POLICY_PROFILES]}"
            )
        info = SRTP_PROFILES[profile]
        for side in ("local", "remote"):
            key, salt = getattr(keys, f"{side}_key"), getattr(keys, f"{side}_salt")
            if len(key) != info.key_length or len(salt) != info.salt_length:
                raise ValueError(
                    f"{profile.name} needs a {info.key_length}-byte key and a "
                    f"{info.salt_length}-byte salt; {side} has {len(key)} and {len(salt)}"
                )
        # libsrtp's replay database takes 64 <= window < 2**15 (srtp_rdbx_init).
        if not 64 <= replay_window < 0x8000:
            raise ValueError(f"replay_window must be in [64, 32767], not {replay_window}")
        self.profile = SrtpProfile(profile)
        self.replay_window = replay_window
        self.stats = SrtpStats()
        self._rtp_tag, self._rtcp_tag = _TAG_LENGTHS[self.profile]
        self._outbound = pylibsrtp.Session(
            self._policy(
                policy_profile, keys.local_key + keys.local_salt, "outbound", replay_window
            )
        )
        self._inbound = pylibsrtp.Session(
            self._policy(
                policy_profile, keys.remote_key + keys.remote_salt, "inbound", replay_window
            )
        )
        self._sent: dict[int, _SentIndices] = {}

    @staticmethod
    def _policy(profile: int, key: bytes, direction: str, window: int) -> pylibsrtp.Policy:
        ssrc_type = (
            pylibsrtp.Policy.SSRC_ANY_OUTBOUND
            if direction == "outbound"
            else pylibsrtp.Policy.SSRC_ANY_INBOUND
        )
        policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
        policy.window_size = window
        # Inbound this flag means nothing; outbound, _SentIndices keeps repeats identical.
        policy.allow_repeat_tx = direction == "outbound"
        return policy

    # -- what we send ---------------------------------------------------------------------------

    def protect_rtp(self, packet: bytes) -> bytes:
        """SRTP-protect one RTP packet of ours. Raises :class:`ValueError` for a packet that is
        too large (:data:`MAX_RTP_PACKET`), whose header does not parse, or that reuses a recent
        index with different bytes; sending the identical packet again is allowed."""
        if len(packet) > MAX_RTP_PACKET:
            self.stats.oversize_refused += 1
            raise ValueError(
                f"RTP packet of {len(packet)} bytes is too large to protect; "
                f"expected at most {MAX_RTP_PACKET} (pylibsrtp's buffer)"
            )
        if len(packet) < _RTP_HEADER:
            raise ValueError(f"RTP packet of {len(packet)} bytes is shorter than its header")
        seq, ssrc = _SEQ_SSRC.unpack_from(packet, 2)
        sent = self._sent.get(ssrc)
        if sent is None:
            sent = _SentIndices(self.replay_window, seq)
        if sent.highest <= 0x8000:
            # libsrtp's estimate while the index is still in its first half-cycle: rollover
            # counter 0, never -1 (srtp_rdbx_estimate_index), so the index is the number itself.
            index = seq
        else:
            # Otherwise the index nearest the highest one sent (RFC 3711 §3.3.1, Appendix A).
            delta = (seq - sent.highest) & 0xFFFF
            if delta >= 0x8000:
                delta -= 0x10000
            index = sent.highest + delta
        slot = index % self.replay_window
        digest = hash(packet)
        if sent.indices[slot] == index and sent.digests[slot] != digest:
            raise ValueError(
                f"RTP packet reuses index {index} (SSRC {ssrc:#010x}, sequence number {seq}) "
                "with different bytes; SRTP forbids this (RFC 3711 §9.1), only an identical "
                "retransmission may repeat an index"
            )
        try:
            protected = self._outbound.protect(packet)
        except pylibsrtp.Error as exc:
            raise ValueError(
                f"pylibsrtp cannot protect this RTP packet (SSRC {ssrc:#010x}, sequence "
                f"number {seq}): {exc}"
            ) from None
        if ssrc not in self._sent:
            self._sent[ssrc] = sent
        sent.indices[slot] = index
        sent.digests[slot] = digest
        if index > sent.highest:
            sent.highest = index
        self.stats.rtp_protected += 1
        return protected

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP-protect one RTCP (compound) packet of ours. Raises :class:`ValueError` for a
        packet larger than :data:`MAX_RTCP_PACKET` or shorter than an RTCP header and SSRC.
        libsrtp numbers SRTCP packets itself, so repeats need no care here."""
        if len(packet) > MAX_RTCP_PACKET:
            self.stats.oversize_refused += 1
            raise ValueError(
                f"RTCP packet of {len(packet)} bytes is too large to protect; "
                f"expected at most {MAX_RTCP_PACKET} (pylibsrtp's buffer)"
            )
        if len(packet) < _RTCP_HEADER:
            raise ValueError(
                f"RTCP packet of {len(packet)} bytes is shorter than a header and SSRC "
                f"({_RTCP_HEADER})"
            )
        try:
            protected = self._outbound.protect_rtcp(packet)
        except pylibsrtp.Error as exc:
            raise ValueError(f"pylibsrtp cannot protect this RTCP packet: {exc}") from None
        self.stats.rtcp_protected += 1
        return protected

    # -- what the peer sends --------------------------------------------------------------------

    def unprotect_rtp(self, data: bytes) -> bytes | None:
        """The RTP packet inside one SRTP datagram from the peer, or ``None`` (counted) if it
        does not verify, is a replay, or is not SRTP at all."""
        if not _RTP_HEADER + self._rtp_tag <= len(data) <= MAX_SRTP_DATAGRAM:
            self.stats.dropped_malformed += 1
            return None
        try:
            packet = self._inbound.unprotect(data)
        except pylibsrtp.Error as exc:
            self._count_drop(str(exc))
            return None
        self.stats.rtp_unprotected += 1
        return packet

    def unprotect_rtcp(self, data: bytes) -> bytes | None:
        """The RTCP packet inside one SRTCP datagram from the peer, or ``None`` (counted)."""
        if not _RTCP_HEADER + _SRTCP_INDEX + self._rtcp_tag <= len(data) <= MAX_SRTP_DATAGRAM:
            self.stats.dropped_malformed += 1
            return None
        try:
            packet = self._inbound.unprotect_rtcp(data)
        except pylibsrtp.Error as exc:
            self._count_drop(str(exc))
            return None
        self.stats.rtcp_unprotected += 1
        return packet

    def _count_drop(self, reason: str) -> None:
        # Anything not known to be a replay or a parse failure counts as failed authentication:
        # libsrtp reports GCM tag failures as "cipher failure", and SRTCP without the E flag
        # under the AES-CM profiles as "unable to perform desired validation". (Under the GCM
        # profiles it accepts authenticated, unencrypted SRTCP, which RFC 3711 §3.4 allows.)
        if reason in _REPLAY_ERRORS:
            self.stats.dropped_replay += 1
        elif reason in _MALFORMED_ERRORS:
            self.stats.dropped_malformed += 1
        else:
            self.stats.dropped_auth += 1
