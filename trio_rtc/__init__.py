"""trio_rtc: WebRTC for Python on Trio.

Every protocol is a sans-IO core driven by a trio task; see ``docs/peerconnection.md`` for the
peer connection and ``docs/mdn-mapping.md`` for how the MDN surface maps onto this package.
"""

from __future__ import annotations

from .configuration import RTCConfiguration
from .datachannel import RTCDataChannel, RTCDataChannelEvent
from .dtls.certificate import RTCCertificate, RTCDtlsFingerprint
from .dtls.driver import RTCDtlsTransport, RTCErrorEvent
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
from .ice.rtc import RTCIceCandidate, RTCIceCandidatePair, RTCIceParameters, RTCIceServer
from .ice.transport import RTCIceTransport
from .pc import RTCPeerConnection, RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent
from .sctp.transport import RTCSctpTransport
from .sessiondescription import RTCSessionDescription
from .stats import RTCStatsReport

__all__ = [
    "DOMException",
    "InvalidAccessError",
    "InvalidModificationError",
    "InvalidStateError",
    "NotSupportedError",
    "OperationError",
    "RTCCertificate",
    "RTCConfiguration",
    "RTCDataChannel",
    "RTCDataChannelEvent",
    "RTCDtlsFingerprint",
    "RTCDtlsTransport",
    "RTCError",
    "RTCErrorEvent",
    "RTCIceCandidate",
    "RTCIceCandidatePair",
    "RTCIceParameters",
    "RTCIceServer",
    "RTCIceTransport",
    "RTCPeerConnection",
    "RTCPeerConnectionIceErrorEvent",
    "RTCPeerConnectionIceEvent",
    "RTCSctpTransport",
    "RTCSessionDescription",
    "RTCStatsReport",
    "SdpSyntaxError",
]

__version__ = "0.1.0.dev0"
