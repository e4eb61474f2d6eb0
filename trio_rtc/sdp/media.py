"""The m-section lines of the SDP parser: the ``m=`` line and the media-level attributes."""

from __future__ import annotations

import re

from trio_rtc.sdp.model import (
    Attribute,
    Codec,
    Direction,
    LineKey,
    MediaDescription,
    Msid,
    Rid,
    RidDirection,
    RtcpAddress,
    Simulcast,
    SimulcastFormat,
    Ssrc,
    SsrcGroup,
)
from trio_rtc.sdp.values import (
    Invalid,
    parse_bandwidth,
    parse_connection,
    parse_extmap,
    parse_fingerprint,
    parse_int,
    parse_setup,
    require_flag,
    require_token,
    require_tokens,
    require_value,
    show,
    split_attribute,
)

__all__ = [
    "MAX_RIDS",
    "MAX_RID_LENGTH",
    "MAX_RID_RESTRICTIONS",
    "MediaBuilder",
    "is_rid_id",
    "parse_rid_untrusted",
    "parse_simulcast_untrusted",
]

_DIRECTIONS = {d.value: d for d in Direction}
# Property attributes whose field is the name with "_" for "-".
_FLAGS = frozenset(
    (
        "end-of-candidates",
        "rtcp-mux",
        "rtcp-mux-only",
        "rtcp-rsize",
        "bundle-only",
        "extmap-allow-mixed",
    )
)
_MAX_PT = 127
_MAX_SSRC = 2**32 - 1


def _parse_mline(value: str) -> MediaDescription:
    tokens = value.split()
    if len(tokens) < 4:
        raise Invalid(
            f"expected m=<media> <port> <proto> <fmt> …, with at least one format, got m={show(value)}"
        )
    kind, port_text, protocol, formats = tokens[0], tokens[1], tokens[2], tokens[3:]
    port_text, slash, count_text = port_text.partition("/")
    port = parse_int(port_text, "an m-line port", 65535)
    count = parse_int(count_text, "a port count", 65535, minimum=1) if slash else None
    media = MediaDescription(
        kind=kind, port=port, protocol=protocol, formats=formats, port_count=count
    )
    if media.is_rtp:
        for fmt in formats:
            parse_int(fmt, "an RTP payload type in the m-line", _MAX_PT)
    return media


def _payload_type(name: str, text: str) -> int:
    try:
        return parse_int(text, "a payload type", _MAX_PT)
    except Invalid:
        raise Invalid(f"expected a={name}:<payload type 0-127> …, got {show(text)}") from None


#: Most ``a=rid`` lines kept per m-section, and most rids one ``a=simulcast`` direction may
#: list: browsers send at most four layers, and a peer must not make us track more.
MAX_RIDS = 8
#: RFC 8851 §10 leaves the length of a rid-id open; the RTP header extension that carries it
#: holds at most 255 bytes (RFC 8285 §4.3, RFC 8852 §3).
MAX_RID_LENGTH = 255
#: Most restrictions one ``a=rid`` line may carry.
MAX_RID_RESTRICTIONS = 32
# RFC 8851 §10: rid-id = 1*(alpha-numeric / "-" / "_"); rid-param-other's name is
# 1*(alpha-numeric / "-"); param-val = *(%x20-3A / %x3C-7E), printable but ";".
_RID_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_RID_LENGTH}}}")
_RID_PARAM_NAME = re.compile(r"[A-Za-z0-9-]+")
_RID_PARAM_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
_RID_DIRECTIONS = {d.value: d for d in RidDirection}


def is_rid_id(text: str) -> bool:
    """Whether ``text`` is a rid-id of RFC 8851 §10 within :data:`MAX_RID_LENGTH`."""
    return _RID_ID.fullmatch(text) is not None


def parse_rid_untrusted(value: str | None) -> Rid:
    """An ``a=rid`` value (RFC 8851 §10): ``<id> send|recv [pt=<fmt>,…][;<name>[=<value>]…]``.
    Raises :class:`Invalid` for anything else."""
    shape = "a=rid:<id> send|recv [pt=<fmt>,…;<restriction>=<value>…]"
    parts = require_value("rid", value, "<id> send|recv [<restrictions>]").split(None, 2)
    if len(parts) < 2 or parts[1] not in _RID_DIRECTIONS:
        raise Invalid(f"expected {shape}, got {show(value or '')}")
    if not is_rid_id(parts[0]):
        raise Invalid(
            f"expected a rid-id of 1 to {MAX_RID_LENGTH} letters, digits, '-' or '_', "
            f"got {show(parts[0])}"
        )
    payload_types: tuple[int, ...] = ()
    restrictions: list[tuple[str, str | None]] = []
    items = parts[2].split(";") if len(parts) == 3 else []
    if len(items) > MAX_RID_RESTRICTIONS:
        raise Invalid(f"more than {MAX_RID_RESTRICTIONS} restrictions in a=rid:{parts[0]}")
    for index, item in enumerate(items):
        name, equals, text = item.partition("=")
        if name == "pt" and equals and index == 0:
            # rid-fmt-list = %s"pt=" fmt *("," fmt): payload types of the m-line.
            payload_types = tuple(_payload_type("rid", pt) for pt in text.split(","))
            continue
        if (
            name == "pt"
            or not _RID_PARAM_NAME.fullmatch(name)
            or not _RID_PARAM_VALUE.fullmatch(text)
        ):
            raise Invalid(f"expected {shape}, got {show(value or '')}")
        restrictions.append((name, text if equals else None))
    return Rid(parts[0], _RID_DIRECTIONS[parts[1]], payload_types, tuple(restrictions))


def _parse_simulcast_list(text: str) -> tuple[tuple[SimulcastFormat, ...], ...]:
    # RFC 8853 §5.1: sc-str-list = sc-alt-list *(";" sc-alt-list),
    # sc-alt-list = sc-id *("," sc-id), sc-id = ["~"] rid-id.
    streams = []
    seen: set[str] = set()
    for stream in text.split(";"):
        alternatives = []
        for item in stream.split(","):
            paused = item.startswith("~")
            rid = item[1:] if paused else item
            if not is_rid_id(rid):
                raise Invalid(f"expected a simulcast list like 'a;b,~c', got {show(text)}")
            if rid in seen:
                raise Invalid(f"rid {show(rid)} appears twice in a simulcast list")
            seen.add(rid)
            alternatives.append(SimulcastFormat(rid, paused))
        streams.append(tuple(alternatives))
    if len(seen) > MAX_RIDS:
        raise Invalid(f"a simulcast list of {len(seen)} rids; at most {MAX_RIDS} accepted")
    return tuple(streams)


def parse_simulcast_untrusted(value: str | None) -> Simulcast:
    """An ``a=simulcast`` value (RFC 8853 §5.1): ``send <list> [recv <list>]`` or the other way
    round. Raises :class:`Invalid` for anything else."""
    tokens = require_tokens("simulcast", value, "send <list> [recv <list>]")
    if len(tokens) not in (2, 4):
        raise Invalid(f"expected a=simulcast:send <list> [recv <list>], got {show(value or '')}")
    lists: dict[str, tuple[tuple[SimulcastFormat, ...], ...]] = {}
    for direction, text in zip(tokens[::2], tokens[1::2], strict=True):
        if direction not in ("send", "recv") or direction in lists:
            raise Invalid(
                f"expected 'send' and/or 'recv' once each in a=simulcast, got {show(direction)}"
            )
        lists[direction] = _parse_simulcast_list(text)
    return Simulcast(send=lists.get("send", ()), recv=lists.get("recv", ()))


class MediaBuilder:
    """Fills a :class:`MediaDescription` from its lines, one at a time.

    Codec lines may come in any order (Firefox writes ``a=fmtp`` before ``a=rtpmap``), so their
    parts are collected here and turned into :class:`Codec` records by :meth:`finish`.
    ``line`` returns keys that match :func:`trio_rtc.sdp.serialize.media_lines`.
    """

    def __init__(self, media: MediaDescription) -> None:
        self.media = media
        self._rtpmap: dict[int, tuple[str, int, int | None]] = {}
        self._fmtp: dict[int, str] = {}
        self._rtcp_fb: dict[int, list[str]] = {}
        self._order: dict[int, None] = {}

    @classmethod
    def from_mline(cls, value: str) -> MediaBuilder:
        return cls(_parse_mline(value))

    def finish(self) -> MediaDescription:
        for pt in self._order:
            rtpmap = self._rtpmap.get(pt)
            name, clock_rate, channels = rtpmap if rtpmap is not None else (None, None, None)
            self.media.codecs[pt] = Codec(
                payload_type=pt,
                name=name,
                clock_rate=clock_rate,
                channels=channels,
                fmtp=self._fmtp.get(pt),
                rtcp_fb=tuple(self._rtcp_fb.get(pt, ())),
            )
        return self.media

    def line(self, kind: str, value: str) -> LineKey:
        m = self.media
        if kind == "i":
            m.information = value
            return ("i",)
        if kind == "c":
            if m.connection is not None:
                raise Invalid("a second c= line in this m-section; expected at most one")
            m.connection = parse_connection(value)
            return ("c",)
        if kind == "b":
            m.bandwidths.append(parse_bandwidth(value))
            return ("b", len(m.bandwidths) - 1)
        if kind == "k":
            m.encryption_key = value
            return ("k",)
        return self.attribute(*split_attribute(value))

    def attribute(self, name: str, value: str | None) -> LineKey:
        m = self.media
        direction = _DIRECTIONS.get(name)
        if direction is not None:
            require_flag(name, value)
            m.direction = direction
            return ("direction",)
        if name in _FLAGS:
            require_flag(name, value)
            setattr(m, name.replace("-", "_"), True)
            return (name,)
        match name:
            case "mid":
                m.mid = require_token(name, value, "identification-tag")
            case "ice-ufrag":
                m.ice_ufrag = require_token(name, value, "ufrag")
            case "ice-pwd":
                m.ice_pwd = require_token(name, value, "password")
            case "ice-options":
                m.ice_options = require_tokens(name, value, "<option> …")
            case "setup":
                m.setup = parse_setup(value)
            case "simulcast":
                return self._simulcast(value)
            case "sctp-port":
                m.sctp_port = parse_int(require_token(name, value, "port"), "an SCTP port", 65535)
            case "max-message-size":
                size = require_token(name, value, "size")
                m.max_message_size = parse_int(size, "a max-message-size", 2**64)
            case "rtcp":
                m.rtcp = self._rtcp(value)
            case "rtpmap" | "fmtp" | "rtcp-fb" if m.is_rtp:
                # Codecs are an RTP notion; elsewhere (e.g. the data channel drafts'
                # "a=fmtp:webrtc-datachannel …") these lines are kept as unknown attributes.
                return self._codec_attribute(name, value)
            case _:
                return self._list_attribute(name, value)
        return (name,)

    def _list_attribute(self, name: str, value: str | None) -> LineKey:
        """Attributes that may appear several times; the key carries the index."""
        m = self.media
        match name:
            case "candidate":
                m.candidates.append(require_value(name, value, "<candidate>"))
                return ("candidate", len(m.candidates) - 1)
            case "fingerprint":
                m.fingerprints.append(parse_fingerprint(value))
                return ("fingerprint", len(m.fingerprints) - 1)
            case "extmap":
                m.extmaps.append(parse_extmap(value))
                return ("extmap", len(m.extmaps) - 1)
            case "msid":
                tokens = require_tokens(name, value, "<stream id> [<track id>]")
                if len(tokens) > 2:
                    raise Invalid(
                        f"expected a=msid:<stream id> [<track id>], got {show(value or '')}"
                    )
                m.msids.append(Msid(tokens[0], tokens[1] if len(tokens) == 2 else None))
                return ("msid", len(m.msids) - 1)
            case "ssrc":
                m.ssrcs.append(self._ssrc(value))
                return ("ssrc", len(m.ssrcs) - 1)
            case "ssrc-group":
                tokens = require_tokens(name, value, "<semantics> <ssrc> …")
                ssrcs = tuple(parse_int(t, "an SSRC", _MAX_SSRC) for t in tokens[1:])
                m.ssrc_groups.append(SsrcGroup(tokens[0], ssrcs))
                return ("ssrc-group", len(m.ssrc_groups) - 1)
            case "rid":
                return self._rid(value)
        m.attributes.append(Attribute(name, value))
        return ("a", len(m.attributes) - 1)

    def _codec_attribute(self, name: str, value: str | None) -> LineKey:
        parts = require_value(name, value, "<payload type> …").split(None, 1)
        rest = parts[1] if len(parts) == 2 else None
        if name == "rtcp-fb" and parts[0] == "*":
            fb = require_value(name, rest, "* <feedback type>")
            self.media.rtcp_fb_wildcard.append(fb)
            return ("rtcp-fb", "*", len(self.media.rtcp_fb_wildcard) - 1)
        pt = _payload_type(name, parts[0])
        self._order[pt] = None
        if name == "fmtp":
            if pt in self._fmtp:
                raise Invalid(f"a second a=fmtp line for payload type {pt}; expected at most one")
            self._fmtp[pt] = rest or ""
            return ("fmtp", pt)
        if name == "rtcp-fb":
            feedback = self._rtcp_fb.setdefault(pt, [])
            feedback.append(require_value(name, rest, f"{pt} <feedback type>"))
            return ("rtcp-fb", pt, len(feedback) - 1)
        if pt in self._rtpmap:
            raise Invalid(f"a second a=rtpmap line for payload type {pt}; expected at most one")
        self._rtpmap[pt] = self._encoding(rest)
        return ("rtpmap", pt)

    @staticmethod
    def _encoding(text: str | None) -> tuple[str, int, int | None]:
        shape = "a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]"
        fields = (text or "").split()
        parts = fields[0].split("/") if len(fields) == 1 else []
        if len(parts) not in (2, 3) or not parts[0]:
            raise Invalid(f"expected {shape}, got {show(text or '')}")
        clock_rate = parse_int(parts[1], "an rtpmap clock rate", 2**32)
        channels = parse_int(parts[2], "an rtpmap channel count", 255) if len(parts) == 3 else None
        return parts[0], clock_rate, channels

    @staticmethod
    def _rtcp(value: str | None) -> RtcpAddress:
        tokens = require_tokens("rtcp", value, "<port> [<nettype> <addrtype> <address>]")
        if len(tokens) not in (1, 4):
            raise Invalid(
                f"expected a=rtcp:<port> [<nettype> <addrtype> <address>], got {show(value or '')}"
            )
        port = parse_int(tokens[0], "an RTCP port", 65535)
        if len(tokens) == 1:
            return RtcpAddress(port)
        connection = parse_connection(" ".join(tokens[1:]))
        return RtcpAddress(port, connection)

    @staticmethod
    def _ssrc(value: str | None) -> Ssrc:
        parts = require_value("ssrc", value, "<ssrc> <attribute>[:<value>]").split(None, 1)
        if len(parts) != 2:
            raise Invalid(f"expected a=ssrc:<ssrc> <attribute>[:<value>], got {show(value or '')}")
        attribute, colon, attribute_value = parts[1].partition(":")
        if not attribute:
            raise Invalid(f"expected a=ssrc:<ssrc> <attribute>[:<value>], got {show(value or '')}")
        return Ssrc(
            parse_int(parts[0], "an SSRC", _MAX_SSRC), attribute, attribute_value if colon else None
        )

    # RFC 8851 and RFC 8853 lines a peer gets wrong cost it those streams, not the session: an
    # unusable line is kept as an unmodelled attribute and counted
    # (MediaDescription.dropped_simulcast_lines), and negotiation goes on without it.

    def _drop(self, name: str, value: str | None) -> LineKey:
        self.media.attributes.append(Attribute(name, value))
        return ("a", len(self.media.attributes) - 1)

    def _rid(self, value: str | None) -> LineKey:
        m = self.media
        try:
            rid = parse_rid_untrusted(value)
        except Invalid:
            return self._drop("rid", value)
        if len(m.rids) >= MAX_RIDS or any(
            r.id == rid.id and r.direction == rid.direction for r in m.rids
        ):
            return self._drop("rid", value)
        m.rids.append(rid)
        return ("rid", len(m.rids) - 1)

    def _simulcast(self, value: str | None) -> LineKey:
        if self.media.simulcast is not None:
            return self._drop("simulcast", value)
        try:
            self.media.simulcast = parse_simulcast_untrusted(value)
        except Invalid:
            return self._drop("simulcast", value)
        return ("simulcast",)
