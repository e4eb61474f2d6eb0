"""What applying a description asks of the transports: plain records the driver (the peer
connection) acts upon, in the order given. The core never touches a transport itself."""

from __future__ import annotations

import attrs

from ..sdp import Fingerprint

__all__ = [
    "AddRemoteCandidate",
    "Decision",
    "Gather",
    "RestartIce",
    "SignalingChange",
    "StartDtls",
    "StartIce",
    "StartSctp",
]


@attrs.frozen
class RestartIce:
    """Our ICE credentials change (an ICE restart, RFC 8445 §9): restart
    the agent with these; a new gathering follows."""

    ufrag: str
    pwd: str


@attrs.frozen
class StartIce:
    """Run connectivity checks against the peer's transport. ``new_generation``: these remote
    credentials are new (first answer, or the peer restarted ICE), so the agent (re)starts with
    them and ``role``; otherwise only the candidates are added. ``candidates`` are ``candidate:``
    attribute values (from the description, then those trickled early), all for ``mid`` /
    ``mline_index``, the BUNDLE tag."""

    ufrag: str
    pwd: str
    ice_lite: bool
    role: str  # "controlling" or "controlled"
    new_generation: bool
    mid: str | None
    mline_index: int
    candidates: tuple[str, ...] = ()
    end_of_candidates: bool = False


@attrs.frozen
class AddRemoteCandidate:
    """A trickled remote candidate for the running ICE generation (``value`` None: the peer's
    end of candidates, RFC 8838 §4.4)."""

    value: str | None
    mid: str | None
    mline_index: int | None
    ufrag: str


@attrs.frozen
class StartDtls:
    """Start the BUNDLE group's DTLS transport (once: later ones are no-ops for the driver)."""

    fingerprints: tuple[Fingerprint, ...]
    is_client: bool


@attrs.frozen
class StartSctp:
    """Start the SCTP association over DTLS, or update the peer's ``a=max-message-size`` if it
    runs (RFC 8841 §6)."""

    remote_port: int
    max_message_size: int


@attrs.frozen
class Gather:
    """Gather local candidates (if not yet) and announce those of ``ufrag`` to the application as
    ``sdpMid``/``sdpMLineIndex`` of the first bundled m-section, the BUNDLE tag: one transport,
    so each candidate is signalled once and the peer applies it to the whole group."""

    ufrag: str
    mid: str | None
    mline_index: int


@attrs.frozen
class SignalingChange:
    """signalingState became ``state``: fire ``signalingstatechange`` (webrtc-pc §4.4.1.5). An
    implicit rollback gives two, ``stable`` first."""

    state: str


Decision = (
    SignalingChange | RestartIce | StartIce | AddRemoteCandidate | StartDtls | StartSctp | Gather
)
