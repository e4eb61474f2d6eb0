"""What a :class:`~trio_rtc.dtls.connection.DtlsConnection` reports through ``next_event()``."""

from __future__ import annotations

import attrs

from .crypto import SrtpKeys, SrtpProfile

__all__ = [
    "ApplicationData",
    "ConnectionClosed",
    "ConnectionFailed",
    "DtlsEvent",
    "HandshakeComplete",
]


@attrs.frozen
class HandshakeComplete:
    """The peer is authenticated (its certificate matched a remote fingerprint)."""

    cipher_suite: int
    srtp_profile: SrtpProfile | None
    #: SRTP master keys and salts for both directions (RFC 5764 §4.2), when use_srtp agreed.
    srtp_keys: SrtpKeys | None
    remote_certificate_der: bytes
    extended_master_secret: bool
    #: The ECDHE group of the key exchange (29 = X25519, 23 = P-256, 24 = P-384).
    key_exchange_group: int


@attrs.frozen
class ApplicationData:
    data: bytes


@attrs.frozen
class ConnectionClosed:
    """The peer sent close_notify (RFC 5246 §7.2.1)."""


@attrs.frozen
class ConnectionFailed:
    """The connection failed: a fatal alert was sent or received, or the handshake timed out."""

    reason: str
    #: The alert description (RFC 5246 §7.2), or None when no alert was involved.
    alert: int | None
    #: True when the peer sent the alert, False when we did.
    received: bool


DtlsEvent = HandshakeComplete | ApplicationData | ConnectionClosed | ConnectionFailed
