"""trio_rtc: WebRTC for Python on Trio.

Every protocol is a sans-IO core driven by a trio task; see ``docs/peerconnection.md`` for the
peer connection and ``docs/mdn-mapping.md`` for how the MDN surface maps onto this package.

The public names below are imported lazily (PEP 562): ``from trio_rtc import RTCPeerConnection``
loads the peer connection (and trio) on first use, while importing a sans-IO core such as
``trio_rtc.sctp.association`` never does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .configuration import RTCConfiguration
    from .datachannel import (
        MessageEvent,
        RTCDataChannel,
        RTCDataChannelEvent,
        RTCDataChannelInit,
        RTCDataChannelState,
    )
    from .dtls.certificate import RTCCertificate, RTCDtlsFingerprint
    from .dtls.driver import RTCDtlsTransport
    from .events import Event, RTCErrorEvent
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
    from .pc import (
        RTCIceConnectionState,
        RTCIceGatheringState,
        RTCPeerConnection,
        RTCPeerConnectionIceErrorEvent,
        RTCPeerConnectionIceEvent,
        RTCPeerConnectionState,
        RTCSignalingState,
        RTCTrackEvent,
    )
    from .sctp.transport import RTCSctpTransport
    from .sessiondescription import RTCSessionDescription
    from .stats import RTCStatsReport

__all__ = [
    "DOMException",
    "Event",
    "InvalidAccessError",
    "InvalidModificationError",
    "InvalidStateError",
    "MessageEvent",
    "NotSupportedError",
    "OperationError",
    "RTCCertificate",
    "RTCConfiguration",
    "RTCDataChannel",
    "RTCDataChannelEvent",
    "RTCDataChannelInit",
    "RTCDataChannelState",
    "RTCDtlsFingerprint",
    "RTCDtlsTransport",
    "RTCError",
    "RTCErrorEvent",
    "RTCIceCandidate",
    "RTCIceCandidatePair",
    "RTCIceConnectionState",
    "RTCIceGatheringState",
    "RTCIceParameters",
    "RTCIceServer",
    "RTCIceTransport",
    "RTCPeerConnection",
    "RTCPeerConnectionIceErrorEvent",
    "RTCPeerConnectionIceEvent",
    "RTCPeerConnectionState",
    "RTCSctpTransport",
    "RTCSessionDescription",
    "RTCSignalingState",
    "RTCStatsReport",
    "RTCTrackEvent",
    "SdpSyntaxError",
]

__version__ = "0.1.0.dev0"

#: Public name -> the submodule (relative to this package) that defines it. Keep in step with the
#: ``TYPE_CHECKING`` imports above; ``tests/test_cores_import.py`` checks that the two agree.
_LAZY: dict[str, str] = {
    "RTCConfiguration": ".configuration",
    "RTCDataChannel": ".datachannel",
    "RTCDataChannelEvent": ".datachannel",
    "RTCDataChannelInit": ".datachannel",
    "RTCDataChannelState": ".datachannel",
    "MessageEvent": ".datachannel",
    "RTCCertificate": ".dtls.certificate",
    "RTCDtlsFingerprint": ".dtls.certificate",
    "RTCDtlsTransport": ".dtls.driver",
    "RTCErrorEvent": ".events",
    "Event": ".events",
    "DOMException": ".exceptions",
    "InvalidAccessError": ".exceptions",
    "InvalidModificationError": ".exceptions",
    "InvalidStateError": ".exceptions",
    "NotSupportedError": ".exceptions",
    "OperationError": ".exceptions",
    "RTCError": ".exceptions",
    "SdpSyntaxError": ".exceptions",
    "RTCIceCandidate": ".ice.rtc",
    "RTCIceCandidatePair": ".ice.rtc",
    "RTCIceParameters": ".ice.rtc",
    "RTCIceServer": ".ice.rtc",
    "RTCIceTransport": ".ice.transport",
    "RTCPeerConnection": ".pc",
    "RTCPeerConnectionIceErrorEvent": ".pc",
    "RTCPeerConnectionIceEvent": ".pc",
    "RTCPeerConnectionState": ".pc",
    "RTCIceConnectionState": ".pc",
    "RTCIceGatheringState": ".pc",
    "RTCSignalingState": ".pc",
    "RTCTrackEvent": ".pc",
    "RTCSctpTransport": ".sctp.transport",
    "RTCSessionDescription": ".sessiondescription",
    "RTCStatsReport": ".stats",
}


# Hidden from type checkers, which would otherwise accept any attribute of this module: they
# see the real names through the TYPE_CHECKING imports above.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import a public name's module on first access and cache the name in this module."""
        try:
            module_name = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module_name, __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
