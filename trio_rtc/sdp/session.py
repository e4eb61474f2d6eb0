"""The session-level lines of the SDP parser (RFC 8866 §5.3-§5.13 and session attributes)."""

from __future__ import annotations

from trio_rtc.sdp.model import Attribute, Direction, LineKey, SessionDescription
from trio_rtc.sdp.values import (
    Invalid,
    parse_bandwidth,
    parse_connection,
    parse_extmap,
    parse_fingerprint,
    parse_group,
    parse_msid_semantic,
    parse_setup,
    require_flag,
    require_token,
    require_tokens,
    split_attribute,
)

__all__ = ["SessionBuilder"]

_DIRECTIONS = {d.value: d for d in Direction}


class SessionBuilder:
    """Fills a :class:`SessionDescription` from its session-level lines, one at a time.

    ``line`` returns the key of the line, which the parser uses to find duplicates and to record
    the layout; it must match the key :func:`trio_rtc.sdp.serialize.session_lines` gives.
    ``v=``, ``o=``, ``s=``, ``t=`` and ``r=`` are handled by the parser itself.
    """

    def __init__(self, description: SessionDescription) -> None:
        self.description = description

    def line(self, kind: str, value: str) -> LineKey:
        d = self.description
        if kind == "i":
            d.information = value
            return ("i",)
        if kind == "u":
            d.uri = value
            return ("u",)
        if kind == "e":
            d.emails.append(value)
            return ("e", len(d.emails) - 1)
        if kind == "p":
            d.phones.append(value)
            return ("p", len(d.phones) - 1)
        if kind == "c":
            d.connection = parse_connection(value)
            return ("c",)
        if kind == "b":
            d.bandwidths.append(parse_bandwidth(value))
            return ("b", len(d.bandwidths) - 1)
        if kind == "z":
            d.time_zones = value
            return ("z",)
        if kind == "k":
            d.encryption_key = value
            return ("k",)
        if kind == "a":
            return self.attribute(*split_attribute(value))
        raise Invalid(f"a {kind}= line is not allowed at session level")

    def attribute(self, name: str, value: str | None) -> LineKey:
        d = self.description
        direction = _DIRECTIONS.get(name)
        if direction is not None:
            require_flag(name, value)
            d.direction = direction
            return ("direction",)
        match name:
            case "group":
                d.groups.append(parse_group(value))
                return ("group", len(d.groups) - 1)
            case "extmap-allow-mixed":
                require_flag(name, value)
                d.extmap_allow_mixed = True
            case "msid-semantic":
                d.msid_semantic = parse_msid_semantic(value)
            case "ice-lite":
                require_flag(name, value)
                d.ice_lite = True
            case "ice-ufrag":
                d.ice_ufrag = require_token(name, value, "ufrag")
            case "ice-pwd":
                d.ice_pwd = require_token(name, value, "password")
            case "ice-options":
                d.ice_options = require_tokens(name, value, "<option> …")
            case "fingerprint":
                d.fingerprints.append(parse_fingerprint(value))
                return ("fingerprint", len(d.fingerprints) - 1)
            case "setup":
                d.setup = parse_setup(value)
            case "extmap":
                d.extmaps.append(parse_extmap(value))
                return ("extmap", len(d.extmaps) - 1)
            case "end-of-candidates":
                require_flag(name, value)
                d.end_of_candidates = True
            case _:
                d.attributes.append(Attribute(name, value))
                return ("a", len(d.attributes) - 1)
        return (name,)
