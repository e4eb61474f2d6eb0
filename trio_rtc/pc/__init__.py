"""The peer connection, split by concern: :mod:`.base` (state, events, negotiationneeded),
:mod:`.negotiation` (offer/answer and the transports it wires), :mod:`.connection` (the public
class, its lifetime and supervision), :mod:`.data` (data channels and SCTP)."""

from __future__ import annotations

from .connection import MediaStreamEvent, RTCPeerConnection
from .events import RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent
from .media import RTCTrackEvent
from .states import (
    RTCIceConnectionState,
    RTCIceGatheringState,
    RTCPeerConnectionState,
    RTCSignalingState,
)

__all__ = [
    "MediaStreamEvent",
    "RTCIceConnectionState",
    "RTCIceGatheringState",
    "RTCPeerConnection",
    "RTCPeerConnectionIceErrorEvent",
    "RTCPeerConnectionIceEvent",
    "RTCPeerConnectionState",
    "RTCSignalingState",
    "RTCTrackEvent",
]
