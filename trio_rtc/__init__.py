"""trio_rtc: WebRTC for Python on Trio.

Every protocol is a sans-IO core driven by a trio task; see ``docs/architecture.md``.
"""

from __future__ import annotations

from .exceptions import (
    DOMException,
    InvalidAccessError,
    InvalidModificationError,
    InvalidStateError,
    NotSupportedError,
    OperationError,
    RTCError,
    SdpSyntaxError,
)

__all__ = [
    "DOMException",
    "InvalidAccessError",
    "InvalidModificationError",
    "InvalidStateError",
    "NotSupportedError",
    "OperationError",
    "RTCError",
    "SdpSyntaxError",
]

__version__ = "0.1.0.dev0"
