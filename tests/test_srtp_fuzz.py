"""Hypothesis: no input makes an SRTP session raise while unprotecting, or crash the process while
protecting; the stats account for every datagram."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from trio_rtc.dtls.crypto import SRTP_PROFILES, SrtpKeys, SrtpProfile
from trio_rtc.rtp.srtp import SrtpSession, SrtpStats

profiles = st.sampled_from(list(SrtpProfile))


def session(profile: SrtpProfile) -> SrtpSession:
    info = SRTP_PROFILES[profile]
    key, salt = b"k" * info.key_length, b"s" * info.salt_length
    return SrtpSession(SrtpKeys(profile, key, salt, key, salt))


def accounted(stats: SrtpStats) -> int:
    return (
        stats.rtp_unprotected
        + stats.rtcp_unprotected
        + stats.dropped_auth
        + stats.dropped_replay
        + stats.dropped_malformed
    )


# Datagrams that get past the first byte checks: version 2, any flags, any length around an RTP or
# RTCP header plus a tag, so libsrtp's header parsing and verification are exercised, not just the
# length gate.
rtp_like = st.builds(
    lambda flags, rest: bytes([0x80 | flags]) + rest,
    st.integers(0, 0x3F),
    st.binary(min_size=0, max_size=200),
)
any_bytes = st.binary(min_size=0, max_size=1600)


@given(profiles, st.lists(st.one_of(any_bytes, rtp_like), max_size=8))
def test_unprotect_never_raises(profile: SrtpProfile, datagrams: list[bytes]) -> None:
    s = session(profile)
    for data in datagrams:
        assert s.unprotect_rtp(data) is None
        assert s.unprotect_rtcp(data) is None
    assert accounted(s.stats) == 2 * len(datagrams)


@given(profiles, st.integers(0, 65535), st.binary(max_size=100), st.integers(0, 10_000), st.data())
def test_tampered_genuine_packets_are_dropped(
    profile: SrtpProfile, seq: int, payload: bytes, position: int, data: st.DataObject
) -> None:
    s = session(profile)  # keyed the same both ways, so it can read its own packets
    packet = struct.pack("!BBHII", 0x80, 96, seq, 0, 1234) + payload
    protected = bytearray(s.protect_rtp(packet))
    position %= len(protected)
    protected[position] ^= data.draw(st.integers(1, 255))
    assert s.unprotect_rtp(bytes(protected)) is None
    assert s.unprotect_rtp(s.protect_rtp(packet)) == packet


@given(profiles, st.one_of(any_bytes, rtp_like, st.binary(min_size=1300, max_size=1400)))
def test_protect_returns_bytes_or_raises_value_error(profile: SrtpProfile, packet: bytes) -> None:
    s = session(profile)
    for protect, unprotect in (
        (s.protect_rtp, s.unprotect_rtp),
        (s.protect_rtcp, s.unprotect_rtcp),
    ):
        try:
            protected = protect(packet)
        except ValueError:
            continue
        assert isinstance(protected, bytes)
        assert unprotect(protected) in (packet, None)
