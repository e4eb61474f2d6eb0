"""``trio_rtc.peerconnection.RTCPeerConnection``: the implementation lives in :mod:`trio_rtc.pc`."""

from __future__ import annotations

from .pc import (
    RTCIceConnectionState,
    RTCIceGatheringState,
    RTCPeerConnection,
    RTCPeerConnectionIceErrorEvent,
    RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
    RTCSignalingState,
)

__all__ = [
    "RTCIceConnectionState",
    "RTCIceGatheringState",
    "RTCPeerConnection",
    "RTCPeerConnectionIceErrorEvent",
    "RTCPeerConnectionIceEvent",
    "RTCPeerConnectionState",
    "RTCSignalingState",
]
