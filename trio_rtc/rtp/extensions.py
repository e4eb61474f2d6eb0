"""Typed RTP header extensions and the negotiated ``a=extmap`` mapping (RFC 8285 §5).

A packet carries extensions as ``{local id: raw bytes}``; which id means what is agreed in SDP and
held by an :class:`ExtensionMap`. Each extension WebRTC uses has an :class:`ExtensionCodec`: its
URI plus a pair of small functions, ``encode(value) -> bytes`` and
``decode_untrusted(raw) -> value``. Reading and writing go through the map::

    ext_map = ExtensionMap({1: URI_MID, 2: URI_RID}, allow_mixed=True)
    mid = ext_map.read(packet, MID)        # str, or None if absent / not negotiated
    ext_map.write(packet, MID, "audio")   # ValueError if MID was not negotiated

Error contract: ``read`` returns ``None`` when the extension was not negotiated or the packet
does not carry it, and raises :class:`RtpError` when it carries it malformed (wrong length,
invalid UTF-8, empty string): a value the peer sent wrong is a drop decision for the caller, not
a silent "absent". ``encode`` and ``write`` raise plain ``ValueError`` for out-of-range values.

A demultiplexer reading the MID on every packet can hoist the lookup out of its loop:
``mid_id = ext_map.id_of(URI_MID)``, then ``raw = packet.extensions.get(mid_id)`` and
``MID.decode_untrusted(raw)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

import attrs

from .errors import RtpError
from .packet import RtpPacket

__all__ = [
    "ABS_SEND_TIME",
    "AUDIO_LEVEL",
    "MID",
    "REPAIRED_RID",
    "RID",
    "TOFFSET",
    "TRANSPORT_CC",
    "URI_ABS_SEND_TIME",
    "URI_AUDIO_LEVEL",
    "URI_MID",
    "URI_REPAIRED_RID",
    "URI_RID",
    "URI_TOFFSET",
    "URI_TRANSPORT_CC",
    "URI_VIDEO_ORIENTATION",
    "VIDEO_ORIENTATION",
    "AudioLevel",
    "ExtensionCodec",
    "ExtensionMap",
    "RtpError",
    "VideoOrientation",
    "abs_send_time_from_seconds",
    "abs_send_time_to_seconds",
    "decode_abs_send_time_untrusted",
    "decode_audio_level_untrusted",
    "decode_sdes_text_untrusted",
    "decode_toffset_untrusted",
    "decode_transport_cc_untrusted",
    "decode_video_orientation_untrusted",
    "encode_abs_send_time",
    "encode_audio_level",
    "encode_sdes_text",
    "encode_toffset",
    "encode_transport_cc",
    "encode_video_orientation",
]

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
URI_TOFFSET = "urn:ietf:params:rtp-hdrext:toffset"

T = TypeVar("T")


def _expect_length(raw: bytes, length: int, name: str) -> None:
    if len(raw) != length:
        raise RtpError(f"{name} header extension of {len(raw)} bytes, expected {length}")


# --- SDES text items: MID (RFC 8843 §15), RID and repaired RID (RFC 8852 §3) -------------------


def encode_sdes_text(value: str) -> bytes:
    """A MID or RID as carried in a header extension (RFC 7941): UTF-8, no terminator."""
    raw = value.encode()
    if not 1 <= len(raw) <= 255:
        raise ValueError(f"an SDES header extension holds 1..255 bytes, {value!r} is {len(raw)}")
    return raw


def decode_sdes_text_untrusted(raw: bytes) -> str:
    """The MID or RID in ``raw``.

    RFC 7941 §4 sends the text without a NUL terminator, but some senders pad with NULs; the text
    ends at the first NUL. Empty text or invalid UTF-8 raises :class:`RtpError`.
    """
    end = raw.find(0)
    if end >= 0:
        raw = raw[:end]
    if not raw:
        raise RtpError("empty SDES header extension (MID/RID)")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise RtpError(f"SDES header extension (MID/RID) is not UTF-8: {raw!r}") from exc


# --- abs-send-time: 24-bit, 6.18 fixed-point seconds (webrtc.org experiment) ----------------------

_ABS_SEND_TIME_FRACTION_BITS = 18
_U24_MAX = 0xFFFFFF


def encode_abs_send_time(value: int) -> bytes:
    """Three bytes of a raw abs-send-time (6.18 fixed point, wrapping every 64 s)."""
    if not 0 <= value <= _U24_MAX:
        raise ValueError(f"abs-send-time {value} is outside 0..2**24-1 (6.18 fixed point)")
    return value.to_bytes(3, "big")


def decode_abs_send_time_untrusted(raw: bytes) -> int:
    _expect_length(raw, 3, "abs-send-time")
    return int.from_bytes(raw, "big")


def abs_send_time_from_seconds(seconds: float) -> int:
    """The 6.18 fixed-point value of a send time in seconds, modulo 64 s (its wrap period)."""
    if seconds < 0:
        raise ValueError(f"abs-send-time of a negative time {seconds}")
    return int(seconds * (1 << _ABS_SEND_TIME_FRACTION_BITS)) & _U24_MAX


def abs_send_time_to_seconds(value: int) -> float:
    """Seconds in ``[0, 64)`` of a raw abs-send-time; compare two of them modulo 64 s."""
    return value / (1 << _ABS_SEND_TIME_FRACTION_BITS)


# --- transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2) --------


def encode_transport_cc(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"transport-wide sequence number {value} is outside 0..65535")
    return value.to_bytes(2, "big")


def decode_transport_cc_untrusted(raw: bytes) -> int:
    _expect_length(raw, 2, "transport-wide-cc")
    return int.from_bytes(raw, "big")


# --- client-to-mixer audio level (RFC 6464 §3) ------------------------------------------------------


@attrs.frozen
class AudioLevel:
    """RFC 6464: ``level`` is -dBov, 0 (loudest) .. 127 (silence); V flags voice activity."""

    voice_activity: bool
    level: int


def encode_audio_level(value: AudioLevel) -> bytes:
    if not 0 <= value.level <= 0x7F:
        raise ValueError(f"audio level {value.level} is outside 0..127 (-dBov)")
    return bytes(((0x80 if value.voice_activity else 0) | value.level,))


def decode_audio_level_untrusted(raw: bytes) -> AudioLevel:
    _expect_length(raw, 1, "ssrc-audio-level")
    byte = raw[0]
    return AudioLevel(voice_activity=byte >= 0x80, level=byte & 0x7F)


# --- coordination of video orientation (3GPP TS 26.114 §7.4.5, one byte: 0 0 0 0 C F R1 R0) -------


@attrs.frozen
class VideoOrientation:
    """CVO: ``camera_back`` is C (back-facing camera), ``flip`` is F (horizontal flip),
    ``rotation`` is R1R0 in degrees, one of 0, 90, 180, 270 (as TS 26.114 defines it)."""

    camera_back: bool
    flip: bool
    rotation: int


def encode_video_orientation(value: VideoOrientation) -> bytes:
    if value.rotation not in (0, 90, 180, 270):
        raise ValueError(f"video rotation {value.rotation} is not 0, 90, 180 or 270 degrees")
    byte = value.rotation // 90
    if value.flip:
        byte |= 0x04
    if value.camera_back:
        byte |= 0x08
    return bytes((byte,))


def decode_video_orientation_untrusted(raw: bytes) -> VideoOrientation:
    _expect_length(raw, 1, "video-orientation")
    # The upper four bits are reserved (zero when sent); a receiver ignores them.
    byte = raw[0]
    return VideoOrientation(
        camera_back=bool(byte & 0x08), flip=bool(byte & 0x04), rotation=(byte & 0x03) * 90
    )


# --- transmission time offset (RFC 5450 §2: 24-bit signed, in RTP timestamp units) ----------------


def encode_toffset(value: int) -> bytes:
    if not -(1 << 23) <= value < (1 << 23):
        raise ValueError(f"transmission offset {value} is outside -2**23..2**23-1")
    return value.to_bytes(3, "big", signed=True)


def decode_toffset_untrusted(raw: bytes) -> int:
    _expect_length(raw, 3, "toffset")
    return int.from_bytes(raw, "big", signed=True)


# --- codecs and the map -------------------------------------------------------------------------


@attrs.frozen
class ExtensionCodec(Generic[T]):
    """One header extension: its URI and how its value maps to bytes and back."""

    uri: str
    encode: Callable[[T], bytes]
    decode_untrusted: Callable[[bytes], T]


MID: ExtensionCodec[str] = ExtensionCodec(URI_MID, encode_sdes_text, decode_sdes_text_untrusted)
RID: ExtensionCodec[str] = ExtensionCodec(URI_RID, encode_sdes_text, decode_sdes_text_untrusted)
REPAIRED_RID: ExtensionCodec[str] = ExtensionCodec(
    URI_REPAIRED_RID, encode_sdes_text, decode_sdes_text_untrusted
)
ABS_SEND_TIME: ExtensionCodec[int] = ExtensionCodec(
    URI_ABS_SEND_TIME, encode_abs_send_time, decode_abs_send_time_untrusted
)
TRANSPORT_CC: ExtensionCodec[int] = ExtensionCodec(
    URI_TRANSPORT_CC, encode_transport_cc, decode_transport_cc_untrusted
)
AUDIO_LEVEL: ExtensionCodec[AudioLevel] = ExtensionCodec(
    URI_AUDIO_LEVEL, encode_audio_level, decode_audio_level_untrusted
)
VIDEO_ORIENTATION: ExtensionCodec[VideoOrientation] = ExtensionCodec(
    URI_VIDEO_ORIENTATION, encode_video_orientation, decode_video_orientation_untrusted
)
TOFFSET: ExtensionCodec[int] = ExtensionCodec(URI_TOFFSET, encode_toffset, decode_toffset_untrusted)


class ExtensionMap:
    """The negotiated ``a=extmap`` lines of one m-section (or BUNDLE group): id <-> URI.

    Immutable: renegotiation builds a new map. ``allow_mixed`` records ``a=extmap-allow-mixed``
    (RFC 8285 §6) so a sender can write ``packet.serialize(extmap_allow_mixed=m.allow_mixed)``.
    Ids are 1..255; 1..14 fit the one-byte form. One URI maps to one id.
    """

    __slots__ = ("_id_by_uri", "_uri_by_id", "allow_mixed")

    def __init__(self, extmaps: Mapping[int, str] | None = None, *, allow_mixed: bool = False):
        uri_by_id: dict[int, str] = {}
        id_by_uri: dict[str, int] = {}
        for ext_id, uri in (extmaps or {}).items():
            if not 1 <= ext_id <= 255:
                raise ValueError(f"extmap id {ext_id} for {uri} is outside 1..255 (RFC 8285 §5)")
            if uri in id_by_uri:
                raise ValueError(f"{uri} is mapped twice, to ids {id_by_uri[uri]} and {ext_id}")
            uri_by_id[ext_id] = uri
            id_by_uri[uri] = ext_id
        self._uri_by_id = uri_by_id
        self._id_by_uri = id_by_uri
        self.allow_mixed = allow_mixed

    def id_of(self, uri: str) -> int | None:
        return self._id_by_uri.get(uri)

    def uri_of(self, ext_id: int) -> str | None:
        return self._uri_by_id.get(ext_id)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self._uri_by_id.items())

    def __len__(self) -> int:
        return len(self._uri_by_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExtensionMap):
            return NotImplemented
        return self._uri_by_id == other._uri_by_id and self.allow_mixed == other.allow_mixed

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ExtensionMap({self._uri_by_id!r}, allow_mixed={self.allow_mixed})"

    def read(self, packet: RtpPacket, codec: ExtensionCodec[T]) -> T | None:
        """The typed value, ``None`` if not negotiated or absent; :class:`RtpError` if malformed."""
        ext_id = self._id_by_uri.get(codec.uri)
        if ext_id is None:
            return None
        raw = packet.extensions.get(ext_id)
        if raw is None:
            return None
        return codec.decode_untrusted(raw)

    def write(self, packet: RtpPacket, codec: ExtensionCodec[T], value: T) -> None:
        """Set the extension on ``packet``; ``ValueError`` if it was not negotiated."""
        ext_id = self._id_by_uri.get(codec.uri)
        if ext_id is None:
            raise ValueError(f"header extension {codec.uri} was not negotiated (no a=extmap)")
        packet.extensions[ext_id] = codec.encode(value)
