"""NTP timestamps as RTCP uses them (RFC 3550 §4, §6.4.1).

An RTCP sender report carries a 64-bit NTP timestamp: 32 bits of seconds since 1900-01-01 and 32
bits of binary fraction. Receiver reports echo its middle 32 bits (16.16 fixed point) as LSR and
give the time they held it as DLSR in 1/65536 s; the sender then computes the round-trip time
from its own clock on arrival. All arithmetic here wraps the way the wire fields do, so values
from a peer never raise.

No clock is read: callers pass ``now`` in seconds (Unix epoch, or any epoch that both the SR
timestamp and the arrival time share, since only differences matter for the RTT).
"""

from __future__ import annotations

__all__ = [
    "NTP_UNIX_OFFSET",
    "dlsr_from_seconds",
    "middle32",
    "ntp_to_seconds",
    "rtt_middle32",
    "rtt_seconds",
    "seconds_to_middle32",
    "seconds_to_ntp",
]

# Seconds from 1900-01-01 (the NTP epoch) to 1970-01-01 (the Unix epoch).
NTP_UNIX_OFFSET = 2_208_988_800

_MASK32 = 0xFFFF_FFFF
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def seconds_to_ntp(seconds: float) -> int:
    """Unix seconds -> 64-bit NTP timestamp (32.32 fixed point), wrapping at era boundaries."""
    return round((seconds + NTP_UNIX_OFFSET) * (1 << 32)) & _MASK64


def ntp_to_seconds(ntp: int) -> float:
    """64-bit NTP timestamp -> Unix seconds (NTP era 0: before 2036-02-07)."""
    return (ntp & _MASK64) / (1 << 32) - NTP_UNIX_OFFSET


def middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: what a report block echoes as LSR (§6.4.1)."""
    return (ntp >> 16) & _MASK32


def seconds_to_middle32(seconds: float) -> int:
    """Unix seconds -> the 16.16 middle-32 form, for comparing an arrival time with LSR."""
    return middle32(seconds_to_ntp(seconds))


def dlsr_from_seconds(delay: float) -> int:
    """The DLSR field for a delay since the last SR: 1/65536 s units, clamped to 32 bits."""
    if delay <= 0:
        return 0
    return min(round(delay * 65536), _MASK32)


def rtt_middle32(arrival_middle32: int, lsr: int, dlsr: int) -> int:
    """RFC 3550 §6.4.1: ``A - LSR - DLSR`` in 1/65536 s, modulo 2**32.

    The subtraction wraps like the 16.16 fields do; a result in the upper half means the peer's
    DLSR was larger than the time that actually passed (clock skew or a lie), see
    :func:`rtt_seconds`.
    """
    return (arrival_middle32 - lsr - dlsr) & _MASK32


def rtt_seconds(arrival_middle32: int, lsr: int, dlsr: int) -> float | None:
    """The round-trip time in seconds from a report block, or None when it carries none.

    LSR zero means the reporter has not received an SR yet (§6.4.1), so there is nothing to
    measure. A "negative" RTT (the wrapped difference in the upper half) is reported as 0.0
    rather than as ~18 hours.
    """
    if lsr == 0:
        return None
    units = rtt_middle32(arrival_middle32, lsr, dlsr)
    if units >= 1 << 31:
        return 0.0
    return units / 65536
