"""Wrap-around arithmetic on RTP's bounded counters (RFC 3550 §5.1, Appendix A.1).

Sequence numbers are 16 bits and wrap every 65,536 packets (about 20 s of 4K video); timestamps are
32 bits and wrap every 13 hours at 90 kHz. Comparing them with ``<`` is wrong near the wrap, so every
core (NACK, RTX, jitter buffer, RTCP receiver reports) compares through these helpers.

The rule is serial-number arithmetic (RFC 1982): ``a`` is newer than ``b`` when going forward from
``b`` reaches ``a`` in fewer than half the number space. Exactly half-way is ambiguous; here neither
value is newer than the other there, so ``seq_newer(a, b)`` is always ``seq_diff(a, b) > 0``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "SequenceUnwrapper",
    "TimestampUnwrapper",
    "seq_diff",
    "seq_newer",
    "timestamp_diff",
    "timestamp_newer",
]

_SEQ_MASK = 0xFFFF
_SEQ_HALF = 0x8000
_TS_MASK = 0xFFFF_FFFF
_TS_HALF = 0x8000_0000


def seq_diff(a: int, b: int) -> int:
    """Signed distance from sequence number ``b`` forward to ``a``, in ``[-32768, 32767]``.

    ``seq_diff(2, 65534) == 4`` (two packets across the wrap); ``seq_diff(65534, 2) == -4``.
    """
    return ((a - b + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (modulo 2**16)."""
    return seq_diff(a, b) > 0


def timestamp_diff(a: int, b: int) -> int:
    """Signed distance from RTP timestamp ``b`` forward to ``a``, in ``[-2**31, 2**31 - 1]``."""
    return ((a - b + _TS_HALF) & _TS_MASK) - _TS_HALF


def timestamp_newer(a: int, b: int) -> bool:
    """True when RTP timestamp ``a`` comes after ``b`` (modulo 2**32)."""
    return timestamp_diff(a, b) > 0


class _Unwrapper:
    """Extends a wrapping counter to an unbounded integer (RFC 3550 A.1 "extended" numbers).

    Each value is placed at the extended position nearest to the highest value seen so far, so
    reordering and loss of fewer than half the number space are unwrapped correctly. The first
    value is returned as is; a later value that is older than it across the wrap comes out
    negative (for instance 65535 after 3 gives -1), which keeps the arithmetic exact instead of
    clamping. Python integers do not overflow, so the "64-bit" result never wraps.
    """

    __slots__ = ("_highest",)

    _MASK: ClassVar[int]
    _HALF: ClassVar[int]

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The highest extended value returned so far, or None before the first."""
        return self._highest

    def unwrap(self, value: int) -> int:
        """The extended value of ``value``; moves the reference forward when it is newer."""
        if not 0 <= value <= self._MASK:
            raise ValueError(f"{value} is outside 0..{self._MASK}")
        highest = self._highest
        if highest is None:
            self._highest = value
            return value
        half = self._HALF
        delta = ((value - highest + half) & self._MASK) - half
        extended = highest + delta
        if delta > 0:
            self._highest = extended
        return extended


class SequenceUnwrapper(_Unwrapper):
    """16-bit RTP sequence numbers to extended sequence numbers."""

    __slots__ = ()
    _MASK = _SEQ_MASK
    _HALF = _SEQ_HALF


class TimestampUnwrapper(_Unwrapper):
    """32-bit RTP timestamps to extended timestamps."""

    __slots__ = ()
    _MASK = _TS_MASK
    _HALF = _TS_HALF
