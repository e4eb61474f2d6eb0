"""SDP (RFC 8866) with the attributes WebRTC uses: a typed model, a parser, a serialiser.

Pure code: no I/O, no clock. ``parse_sdp_untrusted(text)`` builds a :class:`SessionDescription`
or raises :class:`SdpParseError` (an :class:`~trio_rtc.exceptions.SdpSyntaxError`);
``description.serialize()`` writes it back. Parsed text round-trips exactly (line endings become
CRLF), unknown attributes included. See ``docs/sdp.md``.
"""

from __future__ import annotations

from trio_rtc.sdp.model import (
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    Extmap,
    Fingerprint,
    Group,
    IceCredentials,
    Layout,
    LineKey,
    MediaDescription,
    Msid,
    MsidSemantic,
    Origin,
    Rid,
    RidDirection,
    RtcpAddress,
    SessionDescription,
    Setup,
    Simulcast,
    SimulcastFormat,
    Ssrc,
    SsrcGroup,
    Timing,
)
from trio_rtc.sdp.parse import (
    MAX_LINE_LENGTH,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_LENGTH,
    SdpParseError,
    parse_sdp,
    parse_sdp_untrusted,
)
from trio_rtc.sdp.serialize import serialize_sdp

__all__ = [
    "MAX_LINE_LENGTH",
    "MAX_MEDIA_SECTIONS",
    "MAX_SDP_LENGTH",
    "Attribute",
    "Bandwidth",
    "Codec",
    "Connection",
    "Direction",
    "Extmap",
    "Fingerprint",
    "Group",
    "IceCredentials",
    "Layout",
    "LineKey",
    "MediaDescription",
    "Msid",
    "MsidSemantic",
    "Origin",
    "Rid",
    "RidDirection",
    "RtcpAddress",
    "SdpParseError",
    "SessionDescription",
    "Setup",
    "Simulcast",
    "SimulcastFormat",
    "Ssrc",
    "SsrcGroup",
    "Timing",
    "parse_sdp",
    "parse_sdp_untrusted",
    "serialize_sdp",
]
