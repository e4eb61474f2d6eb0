"""The SDP data model: a session description (RFC 8866) with the attributes WebRTC uses.

The model is the source of truth: :mod:`trio_rtc.sdp.serialize` writes it out and
:mod:`trio_rtc.sdp.parse` builds it. Attributes the model has no field for are kept in
``attributes`` (in order) so that nothing a peer wrote is lost.

Small value records (``Codec``, ``Fingerprint``, ``Extmap`` …) are frozen; change them with
``attrs.evolve``. The two containers, :class:`SessionDescription` and :class:`MediaDescription`,
are mutable so that the JSEP layer can build and amend them.

A parsed description also remembers its :class:`Layout`: the order and exact text of the lines it
came from. Serialising follows that layout for every line whose meaning did not change, so a
description written by Chromium or Firefox comes back byte for byte (Firefox sorts its attributes
alphabetically, Chromium does not); lines that are new or changed are written in canonical form.
The layout takes no part in equality.
"""

from __future__ import annotations

import enum
import re

import attrs

__all__ = [
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
    "SessionDescription",
    "Setup",
    "Simulcast",
    "SimulcastFormat",
    "Ssrc",
    "SsrcGroup",
    "Timing",
]

#: Identifies one line of a section, e.g. ``("mid",)``, ``("rtpmap", 111)``, ``("candidate", 3)``.
LineKey = tuple[str | int, ...]


class Direction(enum.Enum):
    """Media direction attributes (RFC 8866 §6.7)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


class Setup(enum.Enum):
    """The ``a=setup`` role of RFC 4145 §4, used by DTLS (RFC 8842 §5)."""

    ACTPASS = "actpass"
    ACTIVE = "active"
    PASSIVE = "passive"
    HOLDCONN = "holdconn"


class RidDirection(enum.Enum):
    """Direction of an ``a=rid`` line (RFC 8851 §4)."""

    SEND = "send"
    RECV = "recv"


@attrs.frozen
class Origin:
    """The ``o=`` line (RFC 8866 §5.2). JSEP increments ``session_version`` on every new offer."""

    session_id: int
    session_version: int
    username: str = "-"
    net_type: str = "IN"
    addr_type: str = "IP4"
    address: str = "127.0.0.1"


@attrs.frozen
class Connection:
    """A ``c=`` line (RFC 8866 §5.7). WebRTC writes ``c=IN IP4 0.0.0.0`` until it knows better."""

    address: str
    net_type: str = "IN"
    addr_type: str = "IP4"


@attrs.frozen
class Bandwidth:
    """A ``b=<type>:<kbps>`` line (RFC 8866 §5.8), e.g. ``b=AS:30``."""

    type: str
    value: int


@attrs.frozen
class Timing:
    """A ``t=`` line and the ``r=`` lines after it, which are kept as written."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@attrs.frozen
class Attribute:
    """An attribute the model has no field for: ``a=name`` (``value`` None) or ``a=name:value``."""

    name: str
    value: str | None = None


@attrs.frozen
class Fingerprint:
    """``a=fingerprint:<hash function> <hex pairs>`` (RFC 8122 §5), kept as written."""

    algorithm: str
    value: str


@attrs.frozen
class Group:
    """``a=group:<semantics> <mid> …`` (RFC 5888 §5); BUNDLE groups are RFC 9143."""

    semantics: str
    mids: tuple[str, ...] = ()


@attrs.frozen
class MsidSemantic:
    """``a=msid-semantic:WMS <id> …``, still written by Chromium and Firefox."""

    semantic: str
    identifiers: tuple[str, ...] = ()


@attrs.frozen
class Extmap:
    """``a=extmap:<id>[/<direction>] <uri> [<attributes>]`` (RFC 8285 §7)."""

    id: int
    uri: str
    direction: Direction | None = None
    attributes: str | None = None


@attrs.frozen
class Codec:
    """What ``a=rtpmap``, ``a=fmtp`` and ``a=rtcp-fb`` say about one RTP payload type.

    ``name`` and ``clock_rate`` are None when there is no ``a=rtpmap`` (a static payload type);
    ``channels`` is None when the rtpmap has no channel count. ``fmtp`` is the parameter text as
    written (it is not always ``key=value;…``, e.g. ``0-15`` for telephone-event), None when there
    is no ``a=fmtp`` line.
    """

    payload_type: int
    name: str | None = None
    clock_rate: int | None = None
    channels: int | None = None
    fmtp: str | None = None
    rtcp_fb: tuple[str, ...] = ()

    def fmtp_parameters(self) -> dict[str, str]:
        """The fmtp text read as ``key=value;…`` (RFC 8866 §6.15 leaves the format to the codec);
        keys are lower-cased, a part without ``=`` maps to the empty string."""
        parameters: dict[str, str] = {}
        for part in (self.fmtp or "").split(";"):
            key, _, value = part.partition("=")
            key = key.strip().lower()
            if key:
                parameters[key] = value.strip()
        return parameters


@attrs.frozen
class Ssrc:
    """``a=ssrc:<ssrc> <attribute>[:<value>]`` (RFC 5576 §4.1), e.g. ``cname``, ``msid``."""

    ssrc: int
    attribute: str
    value: str | None = None


@attrs.frozen
class SsrcGroup:
    """``a=ssrc-group:<semantics> <ssrc> …`` (RFC 5576 §4.2), e.g. ``FID`` for RTX, ``SIM``."""

    semantics: str
    ssrcs: tuple[int, ...] = ()


@attrs.frozen
class Msid:
    """``a=msid:<stream id> [<track id>]`` (RFC 8830 §2)."""

    stream_id: str
    track_id: str | None = None


@attrs.frozen
class RtcpAddress:
    """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605)."""

    port: int
    connection: Connection | None = None


@attrs.frozen
class Rid:
    """``a=rid:<id> send|recv [pt=<fmt>,…][;<restriction>[=<value>]…]`` (RFC 8851 §4, §10).

    ``payload_types`` is the ``pt=`` list (empty: every payload type of the m-line);
    ``restrictions`` the other parameters in order, as ``(name, value)`` with ``value`` None for
    a bare name. The typed properties read the ones RFC 8851 §4 defines; a value that does not
    fit its grammar reads as None (the ABNF still admits it as an unknown parameter)."""

    id: str
    direction: RidDirection
    payload_types: tuple[int, ...] = ()
    restrictions: tuple[tuple[str, str | None], ...] = ()

    def restriction(self, name: str) -> str | None:
        """The value of restriction ``name`` (the first one), or None."""
        return next((value for key, value in self.restrictions if key == name), None)

    def _integer(self, name: str) -> int | None:
        value = self.restriction(name)
        if value is None or not (value.isascii() and value.isdigit()) or len(value) > 12:
            return None
        return int(value)

    @property
    def max_width(self) -> int | None:
        return self._integer("max-width")

    @property
    def max_height(self) -> int | None:
        return self._integer("max-height")

    @property
    def max_fps(self) -> float | None:
        value = self.restriction("max-fps")
        if value is None or not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,12})?", value):
            return None
        return float(value)

    @property
    def max_fs(self) -> int | None:
        return self._integer("max-fs")

    @property
    def max_br(self) -> int | None:
        return self._integer("max-br")

    @property
    def max_pps(self) -> int | None:
        return self._integer("max-pps")

    @property
    def depend(self) -> tuple[str, ...]:
        """The rids this one depends on (``depend=``, RFC 8851 §4)."""
        value = self.restriction("depend")
        return tuple(value.split(",")) if value else ()


@attrs.frozen
class SimulcastFormat:
    """One rid in an ``a=simulcast`` list; ``paused`` is the ``~`` prefix (RFC 8853 §5.1)."""

    rid: str
    paused: bool = False


@attrs.frozen
class Simulcast:
    """``a=simulcast:send …  recv …`` (RFC 8853 §5.1).

    Each direction is a list of simulcast streams; each stream lists alternative rids
    (``a,b;c`` is two streams, the first with two alternatives).
    """

    send: tuple[tuple[SimulcastFormat, ...], ...] = ()
    recv: tuple[tuple[SimulcastFormat, ...], ...] = ()


@attrs.frozen
class IceCredentials:
    """The ICE username fragment and password in effect for a media section (RFC 8839 §5.4)."""

    ufrag: str
    pwd: str


@attrs.frozen(eq=False)
class Layout:
    """How a parsed section was written: the order of its lines and their exact text.

    ``positions`` maps each line's key to its index; ``canonical[i]`` is the text the serialiser
    would write for that line's value, ``original[i]`` the text that was parsed. While the model
    still produces ``canonical[i]`` for that key, ``original[i]`` is written instead.
    """

    positions: dict[LineKey, int]
    canonical: tuple[str, ...]
    original: tuple[str, ...]


@attrs.define
class MediaDescription:
    """One m-section: the ``m=`` line and everything up to the next one (RFC 8866 §5.14)."""

    kind: str
    port: int
    protocol: str
    formats: list[str]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = attrs.Factory(list)
    encryption_key: str | None = None
    mid: str | None = None
    direction: Direction | None = None
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: list[str] = attrs.Factory(list)
    fingerprints: list[Fingerprint] = attrs.Factory(list)
    setup: Setup | None = None
    #: Values of ``a=candidate:`` lines, without the ``candidate:`` prefix.
    candidates: list[str] = attrs.Factory(list)
    end_of_candidates: bool = False
    rtcp: RtcpAddress | None = None
    rtcp_mux: bool = False
    rtcp_mux_only: bool = False
    rtcp_rsize: bool = False
    #: Codecs keyed by payload type (the key must equal ``Codec.payload_type``). RTP sections
    #: only: elsewhere ``a=rtpmap``/``a=fmtp``/``a=rtcp-fb`` lines are kept in ``attributes``.
    codecs: dict[int, Codec] = attrs.Factory(dict)
    #: ``a=rtcp-fb:* …`` values, which apply to every payload type (RFC 4585 §4.2).
    rtcp_fb_wildcard: list[str] = attrs.Factory(list)
    extmaps: list[Extmap] = attrs.Factory(list)
    extmap_allow_mixed: bool = False
    msids: list[Msid] = attrs.Factory(list)
    ssrc_groups: list[SsrcGroup] = attrs.Factory(list)
    ssrcs: list[Ssrc] = attrs.Factory(list)
    rids: list[Rid] = attrs.Factory(list)
    simulcast: Simulcast | None = None
    sctp_port: int | None = None
    max_message_size: int | None = None
    bundle_only: bool = False
    attributes: list[Attribute] = attrs.Factory(list)
    layout: Layout | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def dropped_simulcast_lines(self) -> int:
        """How many ``a=rid``/``a=simulcast`` lines the parser could not use (malformed, over
        the limits of :mod:`trio_rtc.sdp.media`, or a repeated rid). They are dropped from
        ``rids``/``simulcast`` — negotiation goes on without them, as if the peer had not
        offered those streams — and kept as text in ``attributes`` so that nothing is lost."""
        return sum(1 for a in self.attributes if a.name in ("rid", "simulcast"))

    @property
    def is_rtp(self) -> bool:
        """Whether the protocol carries RTP, so that the formats are payload types."""
        return "RTP/" in self.protocol.upper()

    @property
    def is_rejected(self) -> bool:
        """Port 0 without ``a=bundle-only``: the section is rejected or removed (RFC 8843 §7)."""
        return self.port == 0 and not self.bundle_only

    @property
    def payload_types(self) -> list[int]:
        """The m-line formats as payload types (empty for a non-RTP section)."""
        if not self.is_rtp:
            return []
        return [int(f) for f in self.formats if f.isascii() and f.isdigit() and len(f) <= 3]

    def codec(self, payload_type: int) -> Codec | None:
        """The codec record of a payload type, or None."""
        return self.codecs.get(payload_type)

    def codecs_named(self, name: str) -> list[Codec]:
        """Codecs whose rtpmap encoding name is ``name`` (case-insensitive, as RFC 8866 §6.6
        says), in m-line order."""
        wanted = name.lower()
        order = {pt: i for i, pt in enumerate(self.payload_types)}
        found = [c for c in self.codecs.values() if c.name is not None and c.name.lower() == wanted]
        return sorted(found, key=lambda c: order.get(c.payload_type, len(order)))

    def attribute_values(self, name: str) -> list[str | None]:
        """Values of the unmodelled attributes called ``name``, in order."""
        return [a.value for a in self.attributes if a.name == name]


@attrs.define
class SessionDescription:
    """A whole session description: the session-level lines and the m-sections."""

    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: list[str] = attrs.Factory(list)
    phones: list[str] = attrs.Factory(list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = attrs.Factory(list)
    timing: list[Timing] = attrs.Factory(lambda: [Timing()])
    time_zones: str | None = None
    encryption_key: str | None = None
    groups: list[Group] = attrs.Factory(list)
    extmap_allow_mixed: bool = False
    msid_semantic: MsidSemantic | None = None
    ice_lite: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: list[str] = attrs.Factory(list)
    fingerprints: list[Fingerprint] = attrs.Factory(list)
    setup: Setup | None = None
    direction: Direction | None = None
    extmaps: list[Extmap] = attrs.Factory(list)
    end_of_candidates: bool = False
    attributes: list[Attribute] = attrs.Factory(list)
    media: list[MediaDescription] = attrs.Factory(list)
    layout: Layout | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        """Parse SDP text from a peer; see :func:`trio_rtc.sdp.parse.parse_sdp_untrusted`."""
        from trio_rtc.sdp.parse import parse_sdp_untrusted

        return parse_sdp_untrusted(text)

    def serialize(self, *, keep_layout: bool = True) -> str:
        """The SDP text, CRLF line endings; see :func:`trio_rtc.sdp.serialize.serialize_sdp`."""
        from trio_rtc.sdp.serialize import serialize_sdp

        return serialize_sdp(self, keep_layout=keep_layout)

    # -- lookups -------------------------------------------------------------------------------

    def media_by_mid(self, mid: str) -> MediaDescription | None:
        """The m-section whose ``a=mid`` is ``mid``, or None."""
        for media in self.media:
            if media.mid == mid:
                return media
        return None

    def mline_index(self, mid: str) -> int | None:
        """The 0-based index of the m-section with this mid (``sdpMLineIndex``), or None."""
        for index, media in enumerate(self.media):
            if media.mid == mid:
                return index
        return None

    def bundle_groups(self) -> list[Group]:
        """The ``a=group:BUNDLE`` groups (RFC 9143 §7), in order."""
        return [g for g in self.groups if g.semantics.upper() == "BUNDLE"]

    def bundle_group_of(self, mid: str) -> Group | None:
        """The BUNDLE group that contains ``mid``, or None."""
        for group in self.bundle_groups():
            if mid in group.mids:
                return group
        return None

    def bundle_tag_media(self, media: MediaDescription) -> MediaDescription:
        """The m-section whose transport a bundled section uses: the first mid of its BUNDLE
        group, the "tagged" m-section of RFC 9143 §7.2. A section outside any group (or whose
        group names no existing section) uses its own transport."""
        if media.mid is not None:
            group = self.bundle_group_of(media.mid)
            if group is not None and group.mids:
                tagged = self.media_by_mid(group.mids[0])
                if tagged is not None:
                    return tagged
        return media

    # -- effective transport attributes: media level, then the BUNDLE tag, then session level --

    def _sources(self, media: MediaDescription) -> list[MediaDescription]:
        tagged = self.bundle_tag_media(media)
        return [media] if tagged is media else [media, tagged]

    def ice_credentials(self, media: MediaDescription) -> IceCredentials | None:
        """The ICE ufrag and pwd for ``media``. Media-level values override session-level ones
        (RFC 8839 §5.4); a bundled section without its own falls back to its BUNDLE tag's."""
        for source in self._sources(media):
            if source.ice_ufrag is not None and source.ice_pwd is not None:
                return IceCredentials(source.ice_ufrag, source.ice_pwd)
        if self.ice_ufrag is not None and self.ice_pwd is not None:
            return IceCredentials(self.ice_ufrag, self.ice_pwd)
        return None

    def ice_options_for(self, media: MediaDescription) -> list[str]:
        """The ICE options (e.g. ``trickle``) for ``media``, with the same fallbacks."""
        for source in self._sources(media):
            if source.ice_options:
                return list(source.ice_options)
        return list(self.ice_options)

    def fingerprints_for(self, media: MediaDescription) -> list[Fingerprint]:
        """The certificate fingerprints for ``media`` (RFC 8122 §5: media level wins)."""
        for source in self._sources(media):
            if source.fingerprints:
                return list(source.fingerprints)
        return list(self.fingerprints)

    def setup_for(self, media: MediaDescription) -> Setup | None:
        """The DTLS setup role for ``media`` (RFC 4145 §4 allows it at both levels)."""
        for source in self._sources(media):
            if source.setup is not None:
                return source.setup
        return self.setup

    def direction_for(self, media: MediaDescription) -> Direction:
        """The media direction: media level, then session level, else sendrecv (RFC 8866 §6.7)."""
        if media.direction is not None:
            return media.direction
        return self.direction if self.direction is not None else Direction.SENDRECV
