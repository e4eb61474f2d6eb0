"""Event objects the peer connection fires (webrtc-pc §4.8.2, §4.8.3)."""

from __future__ import annotations

from ..events import Event
from ..ice.rtc import RTCIceCandidate

__all__ = ["RTCPeerConnectionIceErrorEvent", "RTCPeerConnectionIceEvent"]


class RTCPeerConnectionIceEvent(Event):
    """``icecandidate``: ``candidate`` is the new local candidate (with ``sdpMid``,
    ``sdpMLineIndex`` and ``usernameFragment``), one whose ``candidate`` is ``""`` when a
    transport finished gathering, or None when all gathering is complete."""

    def __init__(self, candidate: RTCIceCandidate | None, url: str | None = None) -> None:
        super().__init__("icecandidate")
        self.candidate = candidate
        self.url = url


class RTCPeerConnectionIceErrorEvent(Event):
    """``icecandidateerror``: a STUN or TURN server answered with an error or not at all."""

    def __init__(
        self, *, address: str | None, port: int | None, url: str, errorCode: int, errorText: str
    ) -> None:
        super().__init__("icecandidateerror")
        self.address = address
        self.port = port
        self.url = url
        self.errorCode = errorCode
        self.errorText = errorText
