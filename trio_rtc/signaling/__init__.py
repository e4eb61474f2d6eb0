"""Signalling helpers on trio-websocket, used by the examples: a relay server
(:func:`serve_signaling`), a JSON channel (:func:`open_signaling`) and the perfect negotiation
loop (:func:`negotiate_over`)."""

from __future__ import annotations

from .client import SignalingChannel, SignalingError, negotiate_over, open_signaling
from .server import SignalingServer, serve_signaling

__all__ = [
    "SignalingChannel",
    "SignalingError",
    "SignalingServer",
    "negotiate_over",
    "open_signaling",
    "serve_signaling",
]
