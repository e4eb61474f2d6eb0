"""``trio_rtc.peerconnection.RTCPeerConnection``: the implementation lives in :mod:`trio_rtc.pc`."""

from __future__ import annotations

from .pc import RTCPeerConnection, RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent

__all__ = ["RTCPeerConnection", "RTCPeerConnectionIceErrorEvent", "RTCPeerConnectionIceEvent"]
