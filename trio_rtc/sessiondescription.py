"""``RTCSessionDescription`` (webrtc-pc §4.8.1): an SDP ``type`` and its ``sdp`` text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SDP_TYPES", "RTCSessionDescription", "coerce_description"]

#: The RTCSdpType enum.
SDP_TYPES = ("offer", "pranswer", "answer", "rollback")


class RTCSessionDescription:
    """``RTCSessionDescription(type=..., sdp=...)`` or ``RTCSessionDescription({"type": ...,
    "sdp": ...})``; ``toJSON()`` gives the init dict back, as a browser's does."""

    __slots__ = ("sdp", "type")

    def __init__(
        self,
        descriptionInitDict: Mapping[str, Any] | None = None,
        /,
        *,
        type: str | None = None,
        sdp: str = "",
    ) -> None:
        if descriptionInitDict is not None:
            unknown = set(descriptionInitDict) - {"type", "sdp"}
            if unknown:
                raise TypeError(
                    f"RTCSessionDescriptionInit has no member(s) {sorted(unknown)}; "
                    "expected 'type' and 'sdp'"
                )
            type = descriptionInitDict.get("type")
            sdp = descriptionInitDict.get("sdp") or ""
        if type not in SDP_TYPES:
            raise TypeError(f"type must be one of {list(SDP_TYPES)}, not {type!r}")
        if not isinstance(sdp, str):
            raise TypeError(f"sdp must be a str, not {sdp.__class__.__name__}")
        self.type: str = type
        self.sdp: str = sdp

    def toJSON(self) -> dict[str, str]:
        return {"type": self.type, "sdp": self.sdp}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RTCSessionDescription):
            return NotImplemented
        return self.type == other.type and self.sdp == other.sdp

    def __hash__(self) -> int:
        return hash((self.type, self.sdp))

    def __repr__(self) -> str:
        return f"RTCSessionDescription(type={self.type!r}, sdp=<{len(self.sdp)} chars>)"


def coerce_description(
    value: RTCSessionDescription | Mapping[str, Any] | None,
) -> RTCSessionDescription | None:
    """Accept an RTCSessionDescription, an init dict (``sdp`` may be missing) or None."""
    if value is None or isinstance(value, RTCSessionDescription):
        return value
    if isinstance(value, Mapping):
        return RTCSessionDescription(value)
    raise TypeError(
        f"expected an RTCSessionDescription or a dict with 'type' and 'sdp', not {value!r}"
    )
