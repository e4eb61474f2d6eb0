"""Codec and RTP header extension negotiation for audio and video m-sections (pure).

* :func:`get_capabilities` is what ``RTCRtpSender.getCapabilities(kind)`` returns: the codecs
  PyAV can encode and decode, RTX for video, and the header extensions the RTP layer writes.
* :func:`answer_codecs` answers a remote offer's section: the offered codecs we support, with the
  *offerer's* payload types and extension ids (RFC 3264 §6.1, RFC 8285 §6).
* :func:`offer_codecs` writes our offer's codecs: payload types assigned once and kept across
  renegotiations (RFC 3264 §8.3.2), RTX right after its codec, RED (RFC 2198) naming our Opus.
* :class:`NegotiatedMedia` is the result; it writes itself into a
  :class:`~trio_rtc.sdp.MediaDescription`, reads itself back, and checks a remote answer
  against our offer (:meth:`NegotiatedMedia.from_answer`).

Everything read from a peer is untrusted: malformed fmtp or rtpmap values make a codec
unsupported, never an exception. The only errors are :class:`InvalidAccessError` (a remote
description that breaks a rule we cannot work around, named in the message) and
:class:`InvalidModificationError` (codec preferences that are not among our capabilities, as
``setCodecPreferences`` reports them). See ``docs/codecs.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from ..exceptions import InvalidAccessError, InvalidModificationError
from ..sdp import Codec, Direction, Extmap, MediaDescription, SessionDescription
from .h264 import answer_h264_parameters, same_h264_configuration

__all__ = [
    "DEFAULT_EXTMAP_IDS",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "RTCRtcpFeedback",
    "RTCRtpCapabilities",
    "RTCRtpCodecCapability",
    "RTCRtpHeaderExtensionCapability",
    "answer_codecs",
    "check_codec_preferences",
    "format_fmtp",
    "get_capabilities",
    "offer_codecs",
    "parse_fmtp",
    "red_payload_types",
]


@attrs.frozen
class RTCRtcpFeedback:
    """One ``a=rtcp-fb`` value (RFC 4585 §4.2): ``type`` ``nack``, ``parameter`` ``pli`` …"""

    type: str
    parameter: str | None = None

    @property
    def sdp(self) -> str:
        return self.type if self.parameter is None else f"{self.type} {self.parameter}"


@attrs.frozen
class RTCRtpCodecCapability:
    """A codec as ``getCapabilities()`` lists it (webrtc-pc §5.2 ``RTCRtpCodec``), with the
    RTCP feedback we use with it."""

    mimeType: str
    clockRate: int
    channels: int | None = None
    sdpFmtpLine: str | None = None
    rtcpFeedback: tuple[RTCRtcpFeedback, ...] = ()

    @property
    def kind(self) -> str:
        return self.mimeType.partition("/")[0].lower()

    @property
    def name(self) -> str:
        """The rtpmap encoding name, e.g. ``opus`` for ``audio/opus``."""
        return self.mimeType.partition("/")[2]


@attrs.frozen
class RTCRtpHeaderExtensionCapability:
    """A header extension as ``getCapabilities()`` lists it: its RFC 8285 URI."""

    uri: str


@attrs.frozen
class RTCRtpCapabilities:
    """``RTCRtpCapabilities`` (webrtc-pc §5.2) of one kind."""

    codecs: tuple[RTCRtpCodecCapability, ...]
    headerExtensions: tuple[RTCRtpHeaderExtensionCapability, ...]


_VIDEO_FEEDBACK = tuple(
    RTCRtcpFeedback(*text.split())
    for text in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
)


def _video(name: str, fmtp: str | None = None) -> RTCRtpCodecCapability:
    return RTCRtpCodecCapability(f"video/{name}", 90000, None, fmtp, _VIDEO_FEEDBACK)


def _h264(profile_level_id: str, mode: int) -> RTCRtpCodecCapability:
    return _video(
        "H264",
        f"level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile_level_id}",
    )


# Chromium's order: VP8 first (every browser decodes it), then VP9, H.264, AV1. The H.264 set is
# what a PyAV/FFmpeg encoder produces and decodes: Baseline 42001f, Constrained Baseline 42e01f
# and Main 4d001f at level 3.1, each in packetization-mode 1 and 0. RTX is listed once, as
# browsers do; every video codec gets its own RTX payload type in SDP.
_VIDEO_CODECS = (
    _video("VP8"),
    _video("VP9", "profile-id=0"),
    _video("VP9", "profile-id=2"),
    _h264("42001f", 1),
    _h264("42001f", 0),
    _h264("42e01f", 1),
    _h264("42e01f", 0),
    _h264("4d001f", 1),
    _h264("4d001f", 0),
    _video("AV1", "level-idx=5;profile=0;tier=0"),
    RTCRtpCodecCapability("video/rtx", 90000),
)
# RED (RFC 2198) right after Opus, as Chromium lists it: Opus stays the preferred codec, and a
# RED listed after it is received but not sent (see ``trio_rtc.media.driver``). Its fmtp names
# the Opus payload type, which only an offer or answer knows, so the capability has none.
_AUDIO_CODECS = (
    RTCRtpCodecCapability(
        "audio/opus", 48000, 2, "minptime=10;useinbandfec=1", (RTCRtcpFeedback("transport-cc"),)
    ),
    RTCRtpCodecCapability("audio/red", 48000, 2),
    RTCRtpCodecCapability("audio/PCMU", 8000, 1),
    RTCRtpCodecCapability("audio/PCMA", 8000, 1),
    RTCRtpCodecCapability("audio/telephone-event", 48000, 1),
    RTCRtpCodecCapability("audio/telephone-event", 8000, 1),
)
# The header extension URIs WebRTC uses (the RTP layer's ``trio_rtc.rtp.extensions`` has the same
# constants; the JSEP core imports only the SDP model, so they are repeated here and a test keeps
# the two equal).
URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
URI_TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"
_COMMON_EXTENSIONS = (URI_MID, URI_RID, URI_REPAIRED_RID, URI_ABS_SEND_TIME, URI_TRANSPORT_CC)
_EXTENSIONS = {
    "audio": (URI_AUDIO_LEVEL, *_COMMON_EXTENSIONS),
    "video": (URI_TOFFSET, URI_VIDEO_ORIENTATION, *_COMMON_EXTENSIONS),
}
#: The extmap id each of our URIs gets in our offers unless an earlier negotiation fixed another:
#: Chromium's numbers, one table for both kinds, so that audio and video sections in one BUNDLE
#: group never give one id two meanings (RFC 8843 §9.2) and all fit the one-byte form (1–14).
DEFAULT_EXTMAP_IDS: Mapping[str, int] = {
    URI_AUDIO_LEVEL: 1,
    URI_ABS_SEND_TIME: 2,
    URI_TRANSPORT_CC: 3,
    URI_MID: 4,
    URI_RID: 10,
    URI_REPAIRED_RID: 11,
    URI_VIDEO_ORIENTATION: 13,
    URI_TOFFSET: 14,
}


def get_capabilities(kind: str) -> RTCRtpCapabilities:
    """``RTCRtpSender.getCapabilities(kind)``: our codecs and header extensions for ``audio`` or
    ``video``; another kind has none."""
    codecs = {"audio": _AUDIO_CODECS, "video": _VIDEO_CODECS}.get(kind, ())
    uris = _EXTENSIONS.get(kind, ())
    return RTCRtpCapabilities(codecs, tuple(RTCRtpHeaderExtensionCapability(u) for u in uris))


# -- fmtp ------------------------------------------------------------------------------------


def parse_fmtp(text: str | None) -> dict[str, str]:
    """fmtp text read as ``key=value;…``: keys lower-cased, values as written, a part without
    ``=`` (``0-15`` of telephone-event) maps to the empty string. Never raises."""
    return Codec(0, fmtp=text).fmtp_parameters()


def format_fmtp(parameters: Mapping[str, str]) -> str:
    """The fmtp text of ``parameters``, in their order; :func:`parse_fmtp` reads it back."""
    return ";".join(key if value == "" else f"{key}={value}" for key, value in parameters.items())


#: Most payload types a RED fmtp may name: the primary and a few redundant encodings.
_MAX_RED_FORMATS = 8


def red_payload_types(codec: NegotiatedCodec) -> tuple[int, ...] | None:
    """The payload types a RED codec's fmtp names, primary first (RFC 2198 §5:
    ``a=fmtp:63 111/111``); None when ``codec`` is not RED or its fmtp is absent or malformed
    (then nobody can tell what its blocks carry)."""
    if codec.name.lower() != "red":
        return None
    parts = format_fmtp(codec.parameters).split("/")
    if not 1 <= len(parts) <= _MAX_RED_FORMATS:
        return None
    if not all(p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 127 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _red_is_complete(codec: NegotiatedCodec, media: Iterable[NegotiatedCodec]) -> bool:
    """Whether every payload type RED ``codec`` names is a real codec of ``media`` (as RTX needs
    its ``apt``): a RED whose blocks would carry something unnegotiated is left out."""
    named = red_payload_types(codec)
    real = {c.payload_type for c in media if _is_real_codec(c)}
    return named is not None and all(pt in real for pt in named)


# -- the result ------------------------------------------------------------------------------


@attrs.frozen
class NegotiatedCodec:
    """One payload type of a section: rtpmap, fmtp parameters and RTCP feedback."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    #: The fmtp parameters (see :func:`parse_fmtp`); treat as read-only.
    parameters: dict[str, str] = attrs.field(factory=dict, hash=False)
    rtcp_feedback: tuple[str, ...] = ()

    @property
    def is_rtx(self) -> bool:
        return self.name.lower() == "rtx"

    @property
    def apt(self) -> int | None:
        """An RTX payload type's associated payload type (RFC 4588 §8.1), None if absent or bad."""
        text = self.parameters.get("apt", "")
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else None

    @property
    def rtpmap(self) -> str:
        channels = "" if self.channels is None else f"/{self.channels}"
        return f"{self.name}/{self.clock_rate}{channels}"

    def to_sdp(self) -> Codec:
        return Codec(
            self.payload_type,
            self.name,
            self.clock_rate,
            self.channels,
            format_fmtp(self.parameters) if self.parameters else None,
            self.rtcp_feedback,
        )


@attrs.frozen
class NegotiatedMedia:
    """The codecs, RTX mapping, header extensions and RTCP flags of one audio/video section.

    ``codecs`` is in m-line order (preference order) and includes the RTX payload types.
    ``rejected_reason`` is None for a usable section; otherwise the section must be rejected
    (port 0) and the text says why."""

    kind: str
    codecs: tuple[NegotiatedCodec, ...] = ()
    extmaps: tuple[Extmap, ...] = ()
    rtcp_rsize: bool = False
    extmap_allow_mixed: bool = False
    rejected_reason: str | None = None

    @property
    def rejected(self) -> bool:
        return self.rejected_reason is not None

    @property
    def payload_types(self) -> list[int]:
        return [c.payload_type for c in self.codecs]

    @property
    def media_codecs(self) -> list[NegotiatedCodec]:
        """The codecs that are not RTX."""
        return [c for c in self.codecs if not c.is_rtx]

    @property
    def rtx(self) -> dict[int, int]:
        """RTX payload type → associated payload type."""
        return {c.payload_type: apt for c in self.codecs if c.is_rtx and (apt := c.apt) is not None}

    @property
    def extmap(self) -> dict[int, str]:
        """Extension id → URI."""
        return {e.id: e.uri for e in self.extmaps}

    def codec(self, payload_type: int) -> NegotiatedCodec | None:
        return next((c for c in self.codecs if c.payload_type == payload_type), None)

    def write_to(self, media: MediaDescription) -> None:
        """Write the m-line formats and the rtpmap/fmtp/rtcp-fb/extmap lines and flags into
        ``media``, replacing what it had. A rejected result has nothing to write: the caller
        writes a port-0 section instead, so this raises ``ValueError``."""
        if self.rejected_reason is not None:
            raise ValueError(f"a rejected section has no codecs to write: {self.rejected_reason}")
        media.formats = [str(pt) for pt in self.payload_types]
        media.codecs = {c.payload_type: c.to_sdp() for c in self.codecs}
        media.rtcp_fb_wildcard = []
        media.extmaps = list(self.extmaps)
        media.rtcp_rsize = self.rtcp_rsize
        media.extmap_allow_mixed = self.extmap_allow_mixed

    @classmethod
    def from_media(
        cls, media: MediaDescription, session: SessionDescription | None = None
    ) -> NegotiatedMedia:
        """Read a section as written (ours, or a peer's), without judging it. Payload types that
        have no rtpmap and no static meaning are left out; ``a=rtcp-fb:*`` applies to every
        codec (RFC 4585 §4.2); session-level extmaps and ``extmap-allow-mixed`` count too."""
        return cls(
            kind=media.kind,
            codecs=tuple(_read_codecs(media)),
            extmaps=tuple(_all_extmaps(media, session)),
            rtcp_rsize=media.rtcp_rsize,
            extmap_allow_mixed=media.extmap_allow_mixed
            or (session is not None and session.extmap_allow_mixed),
            rejected_reason="the m-section has port 0" if media.is_rejected else None,
        )

    @classmethod
    def from_answer(
        cls,
        answer: MediaDescription,
        our_offer: NegotiatedMedia,
        session: SessionDescription | None = None,
    ) -> NegotiatedMedia:
        """What a remote answer to our offer negotiated, checked (RFC 3264 §6.1, §7).

        Every answered payload type must be one we offered, with the same encoding and an
        fmtp-compatible configuration (the H.264 level may differ); RTX must point at an
        answered codec; at least one real codec must remain. Otherwise
        :class:`InvalidAccessError` names the problem. RTCP feedback is limited to what we
        offered; extensions we did not offer are ignored; the flags hold only if both sides
        wrote them. A rejected (port 0) answer gives a rejected result."""
        if answer.is_rejected:
            return cls(answer.kind, rejected_reason="the answerer rejected the m-section")
        offered = {c.payload_type: c for c in our_offer.codecs}
        feedback_of = {c.payload_type: _feedback_set(c.rtcp_feedback) for c in our_offer.codecs}
        kept: list[NegotiatedCodec] = []
        for pt in dict.fromkeys(answer.payload_types):
            mine = offered.get(pt)
            if mine is None:
                raise InvalidAccessError(
                    f"the answer's {answer.kind} payload type {pt} was not in our offer; "
                    f"expected a subset of {sorted(offered)}"
                )
            theirs = _codec_from_sdp(pt, answer.codec(pt) or Codec(pt), answer)
            if theirs is None:
                # No rtpmap for a dynamic type (RFC 8866 §6.6 wants one), but the number alone
                # names the codec we offered.
                theirs = attrs.evolve(mine, rtcp_feedback=())
            if not _same_encoding(answer.kind, theirs, mine):
                raise InvalidAccessError(
                    f"the answer maps payload type {pt} to {theirs.rtpmap}, but our offer "
                    f"mapped it to {mine.rtpmap}"
                )
            if not _compatible_fmtp(mine.name, theirs.parameters, mine.parameters):
                raise InvalidAccessError(
                    f"the answer's fmtp for payload type {pt} ({mine.rtpmap}) "
                    f"{format_fmtp(theirs.parameters)!r} does not match the configuration we "
                    f"offered, {format_fmtp(mine.parameters)!r}"
                )
            if mine.is_rtx and theirs.apt != mine.apt:
                raise InvalidAccessError(
                    f"the answer's RTX payload type {pt} has apt={theirs.parameters.get('apt')}, "
                    f"but our offer associated it with {mine.apt}"
                )
            wanted = feedback_of[pt]
            feedback = tuple(f for f in theirs.rtcp_feedback if _norm(f) in wanted)
            kept.append(attrs.evolve(theirs, rtcp_feedback=feedback))
        kept = [c for c in kept if c.name.lower() != "red" or _red_is_complete(c, kept)]
        answered = {c.payload_type for c in kept}
        kept = [c for c in kept if not c.is_rtx or c.apt in answered]
        if not any(_is_real_codec(c) for c in kept):
            raise InvalidAccessError(
                f"the answer accepts the {answer.kind} m-section (mid {answer.mid}) but names "
                f"none of the codecs we offered ({', '.join(c.rtpmap for c in our_offer.codecs)})"
            )
        ours = {e.uri for e in our_offer.extmaps}
        extmaps = _checked_extmaps(_all_extmaps(answer, session), "the answer")
        return cls(
            kind=answer.kind,
            codecs=tuple(kept),
            extmaps=tuple(e for e in extmaps if e.uri in ours),
            rtcp_rsize=answer.rtcp_rsize and our_offer.rtcp_rsize,
            extmap_allow_mixed=our_offer.extmap_allow_mixed
            and (answer.extmap_allow_mixed or (session is not None and session.extmap_allow_mixed)),
        )


# -- reading a section -----------------------------------------------------------------------

#: RFC 3551 §6 static payload types a WebRTC peer may list without an rtpmap line.
_STATIC_PAYLOAD_TYPES: Mapping[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    13: ("CN", 8000, 1),
}
#: Payload formats that carry no media of their own: a section with only these is useless.
_AUXILIARY = frozenset(("rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn"))


def _norm(feedback: str) -> str:
    return " ".join(feedback.lower().split())


def _feedback_set(feedback: Iterable[str]) -> frozenset[str]:
    return frozenset(_norm(f) for f in feedback)


def _is_real_codec(codec: NegotiatedCodec) -> bool:
    return codec.name.lower() not in _AUXILIARY


def _codec_from_sdp(pt: int, codec: Codec, media: MediaDescription) -> NegotiatedCodec | None:
    feedback = tuple(dict.fromkeys((*codec.rtcp_fb, *media.rtcp_fb_wildcard)))
    if codec.name is not None and codec.clock_rate is not None:
        name, clock_rate, channels = codec.name, codec.clock_rate, codec.channels
    elif pt in _STATIC_PAYLOAD_TYPES:
        name, clock_rate, channels = _STATIC_PAYLOAD_TYPES[pt]
    else:
        return None
    return NegotiatedCodec(pt, name, clock_rate, channels, parse_fmtp(codec.fmtp), feedback)


def _read_codecs(media: MediaDescription) -> list[NegotiatedCodec]:
    codecs: list[NegotiatedCodec] = []
    for pt in dict.fromkeys(media.payload_types):
        read = _codec_from_sdp(pt, media.codec(pt) or Codec(pt), media)
        if read is not None:
            codecs.append(read)
    return codecs


def _all_extmaps(media: MediaDescription, session: SessionDescription | None) -> list[Extmap]:
    # RFC 8285 §7: session-level extmaps apply to every section that does not map the id itself.
    own = {e.id for e in media.extmaps}
    inherited = [e for e in (session.extmaps if session else []) if e.id not in own]
    return [*media.extmaps, *inherited]


def _checked_extmaps(extmaps: Iterable[Extmap], who: str) -> list[Extmap]:
    """Extmaps with usable ids, one per URI. RFC 8285 §5: ids 1–14 (one-byte form) and 1–255
    (two-byte form); 4096–4351 only stand for "pick one" in old offers and are dropped. An id
    mapped to two URIs makes the packets ambiguous: that is an :class:`InvalidAccessError`."""
    by_id: dict[int, str] = {}
    kept: list[Extmap] = []
    for extmap in extmaps:
        if not 1 <= extmap.id <= 255:
            continue
        known = by_id.setdefault(extmap.id, extmap.uri)
        if known != extmap.uri:
            raise InvalidAccessError(
                f"{who} maps extmap id {extmap.id} to both {known} and {extmap.uri}; "
                "expected one URI per id (RFC 8285 §5)"
            )
        if all(e.uri != extmap.uri for e in kept) and all(e.id != extmap.id for e in kept):
            kept.append(extmap)
    return kept


# -- matching --------------------------------------------------------------------------------


def _channel_count(kind: str, channels: int | None) -> int | None:
    # RFC 8866 §6.6: an audio rtpmap without a channel count means one channel.
    return (channels or 1) if kind == "audio" else channels


def _same_encoding(kind: str, one: NegotiatedCodec, other: NegotiatedCodec) -> bool:
    return (
        one.name.lower() == other.name.lower()
        and one.clock_rate == other.clock_rate
        and _channel_count(kind, one.channels) == _channel_count(kind, other.channels)
    )


def _int_parameter(parameters: Mapping[str, str], key: str, default: int) -> int | None:
    text = parameters.get(key, str(default)).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else None


def _compatible_fmtp(name: str, first: Mapping[str, str], second: Mapping[str, str]) -> bool:
    """Whether two fmtp sets configure the same codec (the rules of each payload format)."""
    match name.lower():
        case "h264":
            return same_h264_configuration(first, second)
        case "vp9":
            # VP9 RTP payload format §6: profile-id, default 0, must match.
            one = _int_parameter(first, "profile-id", 0)
            return one is not None and one == _int_parameter(second, "profile-id", 0)
        case "av1":
            # AV1 RTP payload format §7.2: profile, default 0, must match; level-idx and tier
            # describe what the receiver can take and may differ.
            one = _int_parameter(first, "profile", 0)
            return one is not None and one == _int_parameter(second, "profile", 0)
    return True


def _capability_for(
    kind: str, codec: NegotiatedCodec, capabilities: RTCRtpCapabilities
) -> RTCRtpCodecCapability | None:
    """Our capability that ``codec`` (an offered or previous non-RTX codec) configures."""
    for capability in capabilities.codecs:
        mine = NegotiatedCodec(0, capability.name, capability.clockRate, capability.channels)
        if _same_encoding(kind, codec, mine) and _compatible_fmtp(
            codec.name, codec.parameters, parse_fmtp(capability.sdpFmtpLine)
        ):
            return capability
    return None


def _rtx_capability(capabilities: RTCRtpCapabilities) -> RTCRtpCodecCapability | None:
    return next((c for c in capabilities.codecs if c.name.lower() == "rtx"), None)


def _dictionary_match(one: RTCRtpCodecCapability, other: RTCRtpCodecCapability) -> bool:
    # webrtc-pc §5.2 "codec dictionary match"; fmtp lines are compared as parameter sets, which
    # the spec's note allows, so that "a=1;b=2" and "b=2;a=1" are the same codec.
    return (
        one.mimeType.lower() == other.mimeType.lower()
        and one.clockRate == other.clockRate
        and one.channels == other.channels
        and (one.sdpFmtpLine is None) == (other.sdpFmtpLine is None)
        and parse_fmtp(one.sdpFmtpLine) == parse_fmtp(other.sdpFmtpLine)
    )


def check_codec_preferences(
    preferences: Sequence[RTCRtpCodecCapability], capabilities: RTCRtpCapabilities
) -> list[RTCRtpCodecCapability]:
    """``setCodecPreferences`` checks (webrtc-pc §5.4): every entry must match one of our
    capabilities, and not only RTX/RED/FEC may remain. Returns the matching capabilities in
    preference order, duplicates removed; raises :class:`InvalidModificationError`."""
    chosen: list[RTCRtpCodecCapability] = []
    for preference in preferences:
        match = next((c for c in capabilities.codecs if _dictionary_match(preference, c)), None)
        if match is None:
            raise InvalidModificationError(
                f"codec preference {preference.mimeType}/{preference.clockRate} "
                f"({preference.sdpFmtpLine or 'no fmtp'}) is not one of the capabilities; "
                "expected an entry of RTCRtpSender.getCapabilities()"
            )
        if match not in chosen:
            chosen.append(match)
    if chosen and all(c.name.lower() in ("rtx", "red", "ulpfec", "flexfec-03") for c in chosen):
        raise InvalidModificationError(
            "codec preferences name only RTX/RED/FEC; expected at least one media codec"
        )
    return chosen


def _answer_parameters(codec: NegotiatedCodec, capability: RTCRtpCodecCapability) -> dict[str, str]:
    """The offered fmtp carried into the answer, for H.264 at the level we may answer."""
    if codec.name.lower() == "h264":
        return answer_h264_parameters(codec.parameters, parse_fmtp(capability.sdpFmtpLine))
    return dict(codec.parameters)


# -- answering -------------------------------------------------------------------------------

_ANSWER_DIRECTION = {
    # RFC 8285 §6: an extension the offerer only sends we only receive, and the reverse.
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}


def answer_codecs(
    offered: MediaDescription,
    capabilities: RTCRtpCapabilities | None = None,
    preferences: Sequence[RTCRtpCodecCapability] | None = None,
    *,
    session: SessionDescription | None = None,
) -> NegotiatedMedia:
    """Our answer's codecs for a remote offer's audio/video section.

    Kept: the offered codecs we support (see ``docs/codecs.md`` for the fmtp rules), with the
    offerer's payload types, in the offerer's order, or in ``preferences`` order (the
    transceiver's ``setCodecPreferences``, which also limits the set; with preferences, RTX is
    kept only if they list it). RTX is kept only with its associated codec. RTCP feedback is the
    offered feedback we also use; extensions are the offered ones we support, with the
    offerer's ids and the mirrored direction (RFC 8285 §6); ``rtcp-rsize`` and
    ``extmap-allow-mixed`` are kept if offered. ``session`` (the whole offer) contributes
    session-level extmaps and ``extmap-allow-mixed``.

    Nothing usable gives a result whose ``rejected_reason`` says why. Raises
    :class:`InvalidAccessError` for an extmap id mapped to two URIs and
    :class:`InvalidModificationError` for preferences outside ``capabilities``."""
    kind = offered.kind
    if capabilities is None:
        capabilities = get_capabilities(kind)
    if kind not in ("audio", "video") or not offered.is_rtp:
        return NegotiatedMedia(kind, rejected_reason=f"not an audio/video RTP m-section ({kind})")
    chosen = check_codec_preferences(preferences or (), capabilities)
    rank = {c: i for i, c in enumerate(chosen)}
    rtx = _rtx_capability(capabilities)
    allow_rtx = rtx is not None and (not chosen or rtx in chosen)
    read = _read_codecs(offered)

    kept: dict[int, tuple[NegotiatedCodec, int]] = {}  # pt → (answer codec, preference rank)
    for codec in read:
        if codec.is_rtx:
            continue
        capability = _capability_for(kind, codec, capabilities)
        if capability is None or (chosen and capability not in rank):
            continue
        allowed = _feedback_set(f.sdp for f in capability.rtcpFeedback)
        answered = attrs.evolve(
            codec,
            parameters=_answer_parameters(codec, capability),
            rtcp_feedback=tuple(f for f in codec.rtcp_feedback if _norm(f) in allowed),
        )
        kept[codec.payload_type] = (answered, rank.get(capability, 0))
    kept_codecs = [c for c, _ in kept.values()]
    for pt in [pt for pt, (c, _) in kept.items() if c.name.lower() == "red"]:
        if not _red_is_complete(kept[pt][0], kept_codecs):
            del kept[pt]

    rtx_of: dict[int, NegotiatedCodec] = {}  # apt → RTX codec
    if allow_rtx:
        for codec in read:
            apt = codec.apt
            if codec.is_rtx and apt in kept and apt not in rtx_of:
                # RFC 4588 §8.1: RTX runs at its original's clock rate.
                if codec.clock_rate == kept[apt][0].clock_rate:
                    rtx_of[apt] = attrs.evolve(codec, rtcp_feedback=())

    if not any(_is_real_codec(c) for c, _ in kept.values()):
        offered_names = ", ".join(c.rtpmap for c in read) or "none"
        return NegotiatedMedia(
            kind,
            rejected_reason=f"none of the offered {kind} codecs is supported ({offered_names})",
        )
    order = {c.payload_type: i for i, c in enumerate(read)}
    codecs: list[NegotiatedCodec] = []
    if chosen:
        for answered, _ in sorted(kept.values(), key=lambda k: (k[1], order[k[0].payload_type])):
            codecs.append(answered)
            if answered.payload_type in rtx_of:
                codecs.append(rtx_of[answered.payload_type])
    else:
        by_pt = {pt: c for pt, (c, _) in kept.items()}
        by_pt.update((c.payload_type, c) for c in rtx_of.values())
        codecs = [by_pt[c.payload_type] for c in read if c.payload_type in by_pt]

    supported = {h.uri for h in capabilities.headerExtensions}
    extmaps = [
        Extmap(e.id, e.uri, _ANSWER_DIRECTION.get(e.direction) if e.direction else None)
        for e in _checked_extmaps(_all_extmaps(offered, session), "the offer")
        if e.uri in supported
    ]
    return NegotiatedMedia(
        kind,
        tuple(codecs),
        tuple(extmaps),
        rtcp_rsize=offered.rtcp_rsize,
        extmap_allow_mixed=offered.extmap_allow_mixed
        or (session is not None and session.extmap_allow_mixed),
    )


# -- offering --------------------------------------------------------------------------------

# RFC 3551 §6: dynamic payload types are 96–127; 35–63 are unassigned and, unlike 64–95, cannot
# be mistaken for RTCP packet types on a muxed port (RFC 5761 §4). Chromium uses them the same way.
_DYNAMIC_PAYLOAD_TYPES: tuple[int, ...] = (*range(96, 128), *range(35, 64))
_STATIC_FOR = {("pcmu", 8000): 0, ("pcma", 8000): 8}
# Chromium's number for RED, taken when free: it keeps the other codecs' numbers where they
# were before RED was offered (it is the last of the ranges above).
_CUSTOMARY_FOR = {("red", 48000): 63}
_EXTMAP_IDS: tuple[int, ...] = (
    *range(1, 15),
    *range(16, 256),
)  # 15 is reserved in the one-byte form


def offer_codecs(
    kind: str,
    capabilities: RTCRtpCapabilities | None = None,
    preferences: Sequence[RTCRtpCodecCapability] | None = None,
    previous: NegotiatedMedia | None = None,
    *,
    bundle: Sequence[NegotiatedMedia] = (),
) -> NegotiatedMedia:
    """Our offer's codecs for an audio/video section.

    The codecs are ``capabilities`` (default :func:`get_capabilities`) in their order, or the
    ``preferences`` (``setCodecPreferences``; an empty list means none) in theirs, each video
    codec followed by its RTX (left out if preferences do not list RTX). Payload types: a codec
    ``previous`` (this section's last negotiated result or our last offer) had keeps its number,
    and no number ``previous`` used is given to another codec (RFC 3264 §8.3.2); PCMU and PCMA
    take their static 0 and 8; others take the first free of 96–127, then 35–63 (a codec that
    finds none is left out). ``bundle`` lists the other sections' results in the same BUNDLE
    group: their payload types are avoided and their extmap ids reused for the same URI and
    never for another (RFC 8843 §9). Extension ids: ``previous``'s, else
    :data:`DEFAULT_EXTMAP_IDS`, else the first free, 1–14 before 16–255. We always offer
    ``rtcp-rsize`` and ``extmap-allow-mixed``."""
    if capabilities is None:
        capabilities = get_capabilities(kind)
    chosen = check_codec_preferences(preferences or (), capabilities) or list(capabilities.codecs)
    rtx = _rtx_capability(capabilities)
    with_rtx = kind == "video" and rtx is not None and rtx in chosen

    previous_codecs = previous.codecs if previous is not None else ()
    earlier_rtx = {apt: pt for pt, apt in previous.rtx.items()} if previous is not None else {}
    reserved = {c.payload_type for c in previous_codecs}
    reserved |= {c.payload_type for media in bundle for c in media.codecs}
    taken: set[int] = set()

    def allocate(preferred: int | None) -> int | None:
        if preferred is not None and preferred not in taken:
            taken.add(preferred)
            return preferred
        for pt in _DYNAMIC_PAYLOAD_TYPES:
            if pt not in taken and pt not in reserved:
                taken.add(pt)
                return pt
        return None

    codecs: list[NegotiatedCodec] = []
    for capability in chosen:
        if capability.name.lower() == "rtx":
            continue
        template = NegotiatedCodec(
            0,
            capability.name,
            capability.clockRate,
            # "PCMU/8000", not "PCMU/8000/1": one channel is the default (RFC 8866 §6.6).
            None if capability.channels == 1 else capability.channels,
            parse_fmtp(capability.sdpFmtpLine),
            tuple(f.sdp for f in capability.rtcpFeedback),
        )
        earlier = next(
            (
                c
                for c in previous_codecs
                if not c.is_rtx
                and c.payload_type not in taken
                and _same_encoding(kind, c, template)
                and _compatible_fmtp(c.name, c.parameters, template.parameters)
            ),
            None,
        )
        encoding = (capability.name.lower(), capability.clockRate)
        static = _STATIC_FOR.get(encoding)
        customary = _CUSTOMARY_FOR.get(encoding)
        if static is None and customary is not None and customary not in reserved:
            static = customary
        pt = allocate(earlier.payload_type if earlier is not None else static)
        if pt is None:
            break
        codecs.append(attrs.evolve(template, payload_type=pt))
        if with_rtx and rtx is not None:
            rtx_pt = allocate(earlier_rtx.get(earlier.payload_type) if earlier else None)
            if rtx_pt is None:
                codecs.pop()
                taken.discard(pt)
                break
            codecs.append(NegotiatedCodec(rtx_pt, rtx.name, rtx.clockRate, None, {"apt": str(pt)}))

    codecs = _name_red_primary(codecs)
    if not any(_is_real_codec(c) for c in codecs):
        return NegotiatedMedia(kind, rejected_reason=f"we have no {kind} codec to offer")
    return NegotiatedMedia(
        kind,
        tuple(codecs),
        tuple(_offer_extmaps(capabilities, previous, bundle)),
        rtcp_rsize=True,
        extmap_allow_mixed=True,
    )


def _name_red_primary(codecs: list[NegotiatedCodec]) -> list[NegotiatedCodec]:
    """Our offer's RED with the fmtp that names our Opus payload type as the primary and the
    one redundant block (``{pt}/{pt}``, RFC 2198 §5; Chromium writes ``111/111``); without
    Opus in the offer there is nothing for RED to carry and it is left out."""
    opus = next((c.payload_type for c in codecs if c.name.lower() == "opus"), None)
    return [
        attrs.evolve(c, parameters={f"{opus}/{opus}": ""}) if c.name.lower() == "red" else c
        for c in codecs
        if c.name.lower() != "red" or opus is not None
    ]


def _offer_extmaps(
    capabilities: RTCRtpCapabilities,
    previous: NegotiatedMedia | None,
    bundle: Sequence[NegotiatedMedia],
) -> list[Extmap]:
    earlier = {e.uri: e.id for e in (previous.extmaps if previous is not None else ())}
    earlier_ids = {e.id: e.uri for e in (previous.extmaps if previous is not None else ())}
    shared_ids: dict[int, str] = {}
    shared: dict[str, int] = {}
    for media in bundle:
        for extmap in media.extmaps:
            shared_ids.setdefault(extmap.id, extmap.uri)
            shared.setdefault(extmap.uri, extmap.id)
    used: dict[int, str] = {}
    extmaps: list[Extmap] = []
    for extension in capabilities.headerExtensions:
        uri = extension.uri
        candidates = (earlier.get(uri), shared.get(uri), DEFAULT_EXTMAP_IDS.get(uri))
        for ident in (*(c for c in candidates if c is not None), *_EXTMAP_IDS):
            if (
                ident not in used
                and shared_ids.get(ident, uri) == uri
                and earlier_ids.get(ident, uri) == uri
            ):
                used[ident] = uri
                extmaps.append(Extmap(ident, uri))
                break
    return extmaps
