"""DTLS 1.2 (RFC 6347) on the ``cryptography`` package: certificates, a sans-IO core, a driver."""

from __future__ import annotations

from .certificate import RTCCertificate, RTCDtlsFingerprint, certificate_fingerprint
from .connection import DtlsConnection, DtlsError
from .crypto import CipherSuite, SrtpKeys, SrtpProfile
from .events import (
    ApplicationData,
    ConnectionClosed,
    ConnectionFailed,
    DtlsEvent,
    HandshakeComplete,
)

__all__ = [
    "ApplicationData",
    "CipherSuite",
    "ConnectionClosed",
    "ConnectionFailed",
    "DtlsConnection",
    "DtlsError",
    "DtlsEvent",
    "HandshakeComplete",
    "RTCCertificate",
    "RTCDtlsFingerprint",
    "SrtpKeys",
    "SrtpProfile",
    "certificate_fingerprint",
]
