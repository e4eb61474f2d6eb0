"""The encoder/decoder interface and the registry that picks one per negotiated codec.

Pure of PyAV at import: the built-in codecs (:mod:`trio_rtc.media.av_codecs`, the ``media``
extra) register themselves the first time a registry is asked for a codec, and only if ``av``
imports. A user brings a hardware or custom codec by implementing :class:`Encoder` /
:class:`Decoder` and registering a factory::

    from trio_rtc.media import coding

    coding.default_registry.register_encoder("VP8", MyVp8Encoder)  # replaces the built-in one

Threading contract. An encoder or decoder instance is driven by one pipeline: its
:meth:`Encoder.encode` / :meth:`Decoder.decode` run in its own worker thread, one call at a time
and in order; :meth:`Encoder.set_target` is called from the Trio thread between those calls or
while one runs, so an implementation keeps the new target in a plain attribute and applies it at
its next ``encode``. ``close`` is the last call, made the same way. An audio codec
whose calls each take less than 0.3 ms (Opus, G.711) is then called on the Trio thread instead,
as a hand-over to a thread would cost more than the call (see
:mod:`trio_rtc.media.codec_thread`); the calls still never overlap and keep their order, but may
come from either thread. Video codecs are always called in their thread. Frames in and out are PyAV
frames (``av.VideoFrame`` / ``av.AudioFrame``) for the built-ins; a custom codec may use any
frame type its sources and sinks agree on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from ..jsep.codecs import NegotiatedCodec
from ..rtp.codecs import EncodedFrame
from .tracks import OutgoingFrame

__all__ = [
    "CodecError",
    "CodecRegistry",
    "CodecUnavailableError",
    "DecodeError",
    "Decoder",
    "DecoderFactory",
    "Encoder",
    "EncoderFactory",
    "EncoderSettings",
    "av_available",
    "default_registry",
    "max_video_bitrate",
]


class CodecError(Exception):
    """Base of the codec errors."""


class CodecUnavailableError(CodecError):
    """No encoder or decoder is registered for a codec (or PyAV is not installed)."""


class DecodeError(CodecError):
    """A decoder could not decode one frame (corrupt, truncated, mislabelled). The pipeline
    drops that frame, counts it, asks the sender for a keyframe and goes on."""


@attrs.define(slots=True)
class EncoderSettings:
    """What an encoder is created with. ``bitrate`` in bits per second (None: the codec's
    default for the picture size), ``framerate`` in frames per second (video), and the RTP
    ``max_payload_size`` a packetizer will cut frames into (H.264 packetization-mode 0 needs
    slices that fit)."""

    bitrate: int | None = None
    framerate: float | None = None
    max_payload_size: int = 1148


@runtime_checkable
class Encoder(Protocol):
    """Turns raw frames into encoded frames for one negotiated codec.

    ``encode(frame, keyframe=...)`` returns zero or more :class:`OutgoingFrame` (an encoder with
    no lookahead returns one per picture; audio encoders buffer to their frame size).
    ``timestamp`` of each is in the codec's RTP clock units, counted from the encoder's first
    frame, taken from the raw frame's ``pts``/``time_base`` when it has them; ``keyframe`` is
    True for a picture that decodes on its own. ``keyframe=True`` forces one.
    ``set_target(bitrate=, framerate=)`` changes the rate while running (applied at the next
    ``encode``). A new picture size is handled inside ``encode`` (a built-in encoder reopens
    its codec and emits a keyframe).

    Optional: an encoder with loss protection of its own may have
    ``set_packet_loss(fraction)``, the share of packets (0 to 1) the receiver reports lost,
    called like ``set_target``; the built-in Opus encoder sizes its in-band FEC by it."""

    kind: str
    mime_type: str

    def encode(self, frame: Any, *, keyframe: bool = False) -> list[OutgoingFrame]:
        """Encode one raw frame (called in a worker thread)."""

    def set_target(self, *, bitrate: int | None = None, framerate: float | None = None) -> None:
        """The next ``encode`` aims at this rate (called from the Trio thread)."""

    def close(self) -> None:
        """Free the codec; no call follows."""


@runtime_checkable
class Decoder(Protocol):
    """Turns encoded frames of one negotiated codec back into raw frames.

    ``decode(frame)`` returns zero or more raw frames (``pts`` is set by the pipeline from the
    RTP timestamp afterwards) or raises :class:`DecodeError` for a frame it cannot decode; it
    must stay usable after that (the next keyframe resynchronises it)."""

    kind: str
    mime_type: str

    def decode(self, frame: EncodedFrame) -> list[Any]:
        """Decode one encoded frame (called in a worker thread)."""

    def close(self) -> None:
        """Free the codec; no call follows."""


EncoderFactory = Callable[[NegotiatedCodec, EncoderSettings], Encoder]
DecoderFactory = Callable[[NegotiatedCodec], Decoder]


def av_available() -> bool:
    """True when PyAV imports (the ``media`` extra is installed)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class CodecRegistry:
    """Encoder and decoder factories by codec name (case-insensitive: "VP8", "opus", ...).

    A fresh registry starts with the built-in PyAV codecs (when ``av`` imports) unless
    ``builtins=False``; a registration replaces what was there for that name."""

    def __init__(self, *, builtins: bool = True) -> None:
        self._encoders: dict[str, EncoderFactory] = {}
        self._decoders: dict[str, DecoderFactory] = {}
        self._builtins = builtins
        self._loaded = not builtins
        self._lock = threading.Lock()

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        with self._lock:
            self._load_builtins_locked()

    def _load_builtins_locked(self) -> None:
        if self._loaded:  # another thread got here first
            return
        try:
            if not av_available():
                return
            from . import av_codecs

            for name, encoder in av_codecs.ENCODERS.items():
                self._encoders.setdefault(name, encoder)
            for name, decoder in av_codecs.DECODERS.items():
                self._decoders.setdefault(name, decoder)
        finally:
            # Only now: a thread that finds it set skips the lock, so it must not see the
            # tables before they are filled (a decoder opened in a codec thread while the
            # loop opened an encoder found "no encoder is registered for VP8").
            self._loaded = True

    def register_encoder(self, name: str, factory: EncoderFactory) -> None:
        self._load_builtins()
        self._encoders[name.lower()] = factory

    def register_decoder(self, name: str, factory: DecoderFactory) -> None:
        self._load_builtins()
        self._decoders[name.lower()] = factory

    def can_encode(self, name: str) -> bool:
        self._load_builtins()
        return name.lower() in self._encoders

    def can_decode(self, name: str) -> bool:
        self._load_builtins()
        return name.lower() in self._decoders

    def create_encoder(
        self, codec: NegotiatedCodec, settings: EncoderSettings | None = None
    ) -> Encoder:
        self._load_builtins()
        factory = self._encoders.get(codec.name.lower())
        if factory is None:
            raise CodecUnavailableError(self._missing("encoder", codec))
        return factory(codec, settings or EncoderSettings())

    def create_decoder(self, codec: NegotiatedCodec) -> Decoder:
        self._load_builtins()
        factory = self._decoders.get(codec.name.lower())
        if factory is None:
            raise CodecUnavailableError(self._missing("decoder", codec))
        return factory(codec)

    def _missing(self, what: str, codec: NegotiatedCodec) -> str:
        if self._builtins and not av_available():
            return (
                f"no {what} for {codec.rtpmap}: PyAV is not installed "
                "(pip install 'trio_rtc[media]'), and none was registered"
            )
        return f"no {what} is registered for {codec.rtpmap}"


#: The registry the peer connection uses unless told otherwise.
default_registry = CodecRegistry()


def max_video_bitrate(width: int, height: int) -> int:
    """The most congestion control asks of a video encoder for a picture of this size
    (600 kbit/s up to 320x240, 2 Mbit/s up to 960x540, 2.5 Mbit/s above). A bandwidth estimate
    can be far above what the picture needs; more buys nothing visible and makes every keyframe
    a burst the link must queue. An encoding's ``maxBitrate`` set by the application replaces
    it.

    libwebrtc gives up to 640x480 1.7 Mbit/s. libvpx stays 5-10 % below the rate it is asked
    for, so a 640x480 stream on a 2 Mbit/s link used 80 % of it (issue 13 wants 85 %); 2 Mbit/s
    fills it to about 90 % with the queue still short (benchmarks/bench_links.py, scenario a).
    Not more: the closer the stream sits to a link's capacity, the sooner loss and its
    retransmissions overflow the link's queue."""
    pixels = width * height
    if pixels <= 320 * 240:
        return 600_000
    if pixels <= 960 * 540:
        return 2_000_000
    return 2_500_000
