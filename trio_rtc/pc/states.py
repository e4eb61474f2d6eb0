"""The peer connection's aggregate states, exactly as the spec's tables define them
(webrtc-pc §4.3.2 RTCIceGatheringState, §4.3.3 RTCPeerConnectionState, §4.3.4
RTCIceConnectionState). Pure functions over the states of the transports in use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = [
    "RTCIceConnectionState",
    "RTCIceGatheringState",
    "RTCPeerConnectionState",
    "RTCSignalingState",
    "connection_state",
    "ice_connection_state",
    "ice_gathering_state",
]

#: ``RTCPeerConnection.connectionState`` (webrtc-pc §4.3.3).
RTCPeerConnectionState = Literal[
    "new", "connecting", "connected", "disconnected", "failed", "closed"
]
#: ``RTCPeerConnection.iceConnectionState`` (webrtc-pc §4.3.4).
RTCIceConnectionState = Literal[
    "new", "checking", "connected", "completed", "disconnected", "failed", "closed"
]
#: ``RTCPeerConnection.iceGatheringState`` (webrtc-pc §4.3.2).
RTCIceGatheringState = Literal["new", "gathering", "complete"]
#: ``RTCPeerConnection.signalingState`` (webrtc-pc §4.3.1).
RTCSignalingState = Literal[
    "stable",
    "have-local-offer",
    "have-remote-offer",
    "have-local-pranswer",
    "have-remote-pranswer",
    "closed",
]


def ice_gathering_state(gathering: Sequence[str]) -> RTCIceGatheringState:
    """``gathering`` if any transport gathers; ``complete`` if at least one is complete and none
    is new or gathering; else ``new`` (also with no transports)."""
    if "gathering" in gathering:
        return "gathering"
    if "complete" in gathering and "new" not in gathering:
        return "complete"
    return "new"


def ice_connection_state(ice: Sequence[str], *, closed: bool) -> RTCIceConnectionState:
    """RTCIceConnectionState over the RTCIceTransports in use."""
    if closed:
        return "closed"
    if "failed" in ice:
        return "failed"
    if "disconnected" in ice:
        return "disconnected"
    if all(s in ("new", "closed") for s in ice):
        return "new"
    if any(s in ("new", "checking") for s in ice):
        return "checking"
    if all(s in ("completed", "closed") for s in ice):
        return "completed"
    return "connected"


def connection_state(
    ice: Sequence[str], dtls: Sequence[str], *, closed: bool
) -> RTCPeerConnectionState:
    """RTCPeerConnectionState over the ICE and DTLS transports in use."""
    if closed:
        return "closed"
    if "failed" in ice or "failed" in dtls:
        return "failed"
    if "disconnected" in ice:
        return "disconnected"
    if all(s in ("new", "closed") for s in ice) and all(s in ("new", "closed") for s in dtls):
        return "new"
    if any(s in ("new", "checking") for s in ice) or any(s in ("new", "connecting") for s in dtls):
        return "connecting"
    return "connected"
