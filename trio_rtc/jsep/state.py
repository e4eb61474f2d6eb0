"""The signalingState machine (webrtc-pc §4.3.1) and the random values JSEP needs.

Randomness comes from :mod:`secrets`; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import secrets

from ..exceptions import InvalidStateError

__all__ = [
    "SIGNALING_STATES",
    "implicit_description_type",
    "new_ice_credentials",
    "new_session_id",
    "next_signaling_state",
]

SIGNALING_STATES = (
    "stable",
    "have-local-offer",
    "have-remote-offer",
    "have-local-pranswer",
    "have-remote-pranswer",
    "closed",
)

# webrtc-pc §4.3.1: (description type, remote?) -> states it may be applied in, and the state that
# follows.
_TRANSITIONS: dict[tuple[str, bool], tuple[tuple[str, ...], str]] = {
    ("offer", False): (("stable", "have-local-offer"), "have-local-offer"),
    ("answer", False): (("have-remote-offer", "have-local-pranswer"), "stable"),
    ("pranswer", False): (("have-remote-offer", "have-local-pranswer"), "have-local-pranswer"),
    ("offer", True): (("stable", "have-remote-offer"), "have-remote-offer"),
    ("answer", True): (("have-local-offer", "have-remote-pranswer"), "stable"),
    ("pranswer", True): (("have-local-offer", "have-remote-pranswer"), "have-remote-pranswer"),
    ("rollback", False): (("have-local-offer", "have-remote-offer"), "stable"),
    ("rollback", True): (("have-local-offer", "have-remote-offer"), "stable"),
}

# RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/".
_ICE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def next_signaling_state(state: str, sdp_type: str, *, remote: bool) -> str:
    """The signalingState after applying a ``sdp_type`` description, or InvalidStateError."""
    allowed, after = _TRANSITIONS[(sdp_type, remote)]
    if state not in allowed:
        side = "remote" if remote else "local"
        raise InvalidStateError(
            f"cannot set a {side} {sdp_type} in signalingState {state!r}; "
            f"it is allowed in {' or '.join(repr(s) for s in allowed)}"
        )
    return after


def implicit_description_type(state: str) -> str:
    """What an argument-less setLocalDescription() creates (webrtc-pc §4.4.1.5): an offer in
    ``stable``, ``have-local-offer`` and ``have-remote-pranswer``, else an answer."""
    return "offer" if state in ("stable", "have-local-offer", "have-remote-pranswer") else "answer"


def new_session_id() -> int:
    """A random ``o=`` session id below 2**62 (RFC 8829 §5.2.1)."""
    return secrets.randbits(62)


def new_ice_credentials() -> tuple[str, str]:
    """A fresh ``ice-ufrag``/``ice-pwd`` pair: 8 and 24 ice-chars, above the 24 and 128 bits of
    randomness RFC 8839 §5.4 asks for. Used for ICE restarts."""
    ufrag = "".join(secrets.choice(_ICE_CHARS) for _ in range(8))
    pwd = "".join(secrets.choice(_ICE_CHARS) for _ in range(24))
    return ufrag, pwd
