"""The built-in encoders and decoders, through PyAV (the ``media`` extra).

Imported by :mod:`trio_rtc.media.coding` only when ``av`` imports; :data:`ENCODERS` and
:data:`DECODERS` map a lowercase codec name to a factory.

Everything is tuned for real-time latency: one encoded frame out per picture in (no lookahead,
no B-frames, no frame threading), one picture out per encoded frame in (low-delay decoders,
slice threads only).

Video encoders (input: ``av.VideoFrame`` of any pixel format and size, reformatted to yuv420p
with even dimensions when needed; the first frame, a forced one and the first after a picture
size change are keyframes):

- VP8 ``libvpx`` / VP9 ``libvpx-vp9``: ``deadline=realtime``, ``cpu-used`` -6 (a fixed speed) / 8,
  ``lag-in-frames=0``, CBR with a one-second buffer, keyframes capped at three average frames
  (``max-intra-rate=300``, WebRTC does the same: a keyframe is then a short burst, not a latency
  spike); VP9 with ``row-mt`` and cyclic-refresh AQ. Not error resilient: as in libwebrtc with
  one temporal layer, a lost frame is repaired by NACK or a keyframe (a receiver skips to it),
  so resetting the entropy context on every frame only cost time (2-4 % per frame) and bits.
  libwebrtc's ``static-thresh=1`` (skip macroblocks that did not change) would save about a
  quarter of VP8's encoding time, but with it the bandwidth estimate behind a 1 Mbit/s
  bottleneck settled about 8 % higher (median of 9 runs of test_media_loss's rate-limit test,
  2 of them above its bound of 1.1 times the capacity): left out until the estimator is
  checked against it.
- H.264 ``libx264``: constrained baseline, ``preset`` veryfast below 1280x720 (about twice the
  time of ultrafast and far better pictures) and ultrafast from there, ``tune=zerolatency``
  (sliced threads, no lookahead), Annex B with SPS/PPS on every IDR, forced keyframes are IDRs.
  ``packetization-mode`` 0 (or absent) sets ``slice-max-size`` to the RTP payload size so every
  NAL unit fits a packet. The level written in the SPS is the fmtp ``profile-level-id``'s, or
  higher when the picture needs it (by frame size). x264's version SEI is dropped (it is ~700
  bytes of text that would not fit a mode-0 packet of small payload size).
- AV1 ``libsvtav1``: preset 10 with ``rtc=1`` and the low-delay prediction structure
  (``pred-struct=1``), CBR. ``SVT_LOG`` defaults to errors only (SVT-AV1 otherwise prints
  its banner and warnings to stderr on every open).

Rate changes (``set_target``), measured with PyAV 18.1 / FFmpeg 8 by encoding 640x480 at
1 Mbit/s and halving or raising ``bit_rate`` on the open context:

- libx264: FFmpeg reconfigures x264 when ``bit_rate`` changes, but x264 only takes the new rate
  while it is at most the VBV ``maxrate`` the encoder was opened with (opened CBR:
  ``maxrate == bitrate``). Lower rates (and raising back up to that ceiling) apply live, on the
  next frame, with no keyframe; a rate above the ceiling needs a reopen.
- libvpx (VP8, VP9) and libsvtav1: ``bit_rate`` on an open context has no effect at all (the
  wrappers read it only at open), so a new rate needs a reopen.

A reopen costs a keyframe (and 2-10 ms of codec setup), so it happens only at a keyframe that
is being sent anyway (forced, or a size change), at once for a fall of more than 15 % (a
congestion back-off: the keyframe at the new rate, capped by ``max-intra-rate``, costs less than
staying above the link), and for any change of more than 6 % once the last open is at least
three seconds old (so the encoder follows an estimate that climbs back after a back-off within
a few per cent, at most one such keyframe every three seconds: at one a second, bench_links
decoded 22-30 keyframes in 33 s on a clean or bursty 2 Mbit/s link, each capped at three
frames' bits, and their bursts overflowed the bottleneck's queue in the loss-burst scenario;
at three seconds 10-14, with no change in utilisation). Frame rate:
libvpx and x264 pace their rate control by the frame timestamps, so a frame rate change needs
nothing; SVT-AV1 budgets by its configured frame rate, and reopens under the same rule.

QP: FFmpeg attaches ``quality_stats`` side data (quality = QP x 118) to the packets of all four
video encoders; ``OutgoingFrame.qp`` is that QP in the encoder's own scale (libvpx reports its
0-63 quantizer, x264 0-51, SVT-AV1 0-63).

Video decoders: FFmpeg's ``vp8``, ``vp9``, ``h264`` and ``libdav1d`` (``max_frame_delay=1``),
``flags=low_delay``, slice threads only. Every FFmpeg error becomes
:class:`~trio_rtc.media.coding.DecodeError` and the decoder stays usable (the next keyframe
decodes). H.264 runs with ``err_detect=explode`` so a truncated or damaged access unit is an
error instead of a concealed picture; FFmpeg's VP8 decoder cannot detect a truncated token
partition (it decodes it as zeros) and reports only damage it can see in the headers.

Audio:

- Opus ``libopus``: 48 kHz, stereo only when the fmtp says ``stereo=1``, 20 ms frames, VBR,
  32 kbit/s mono / 64 kbit/s stereo unless told otherwise, at most ``maxaveragebitrate``.
  Application ``lowdelay`` (CELT only: 2.5 ms of lookahead instead of 6.5 ms) unless the
  fmtp has ``useinbandfec=1``: in-band FEC exists only in Opus's SILK layer, so then the
  application is ``voip`` with FEC on. How much FEC libopus sends follows the expected loss,
  which is the loss the receiver reports (:meth:`OpusEncoder.set_packet_loss`, in steps of 0, 1,
  5, 10 and 20 %), 1 % until a report says otherwise; as in libwebrtc, which starts at none. A
  fixed 10 % made libopus code every frame in SILK for its redundancy, music and tones
  included: four times the CPU of CELT (143 against 38 µs per 20 ms frame) and about 10 % more
  bits, for a decoder that may never lose a packet. libopus's mode decision weighs the expected
  loss against how voice-like the signal is, so speech gets FEC at a lower loss than music. A new
  bitrate or loss level reopens the encoder (rate-limited to once every three seconds;
  libopus's FFmpeg wrapper has no live reconfiguration).
- PCMU/PCMA: 8 kHz mono, 160 samples (20 ms) per frame.
- Input is any ``av.AudioFrame`` (resampled with ``av.AudioResampler`` and buffered to the
  codec's frame size); ``timestamp`` counts samples from the first one.
- The Opus decoder is ``libopus`` (s16 output). Neither it nor FFmpeg's native ``opus`` can do
  FEC recovery or packet loss concealment through FFmpeg's packet API (that needs
  ``opus_decode`` with ``decode_fec=1`` or a NULL packet, which FFmpeg never passes), so they
  are equal there; libopus is the reference decoder and outputs s16 directly.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, ClassVar, cast

import av
from av.audio.codeccontext import AudioCodecContext
from av.video.codeccontext import VideoCodecContext

from ..jsep.codecs import NegotiatedCodec
from ..rtp.codecs import EncodedFrame
from ..rtp.codecs.h264 import split_annex_b
from .coding import DecodeError, DecoderFactory, EncoderFactory, EncoderSettings
from .tracks import OutgoingFrame

__all__ = [
    "DECODERS",
    "ENCODERS",
    "Av1Decoder",
    "Av1Encoder",
    "G711Decoder",
    "G711Encoder",
    "H264Decoder",
    "H264Encoder",
    "OpusDecoder",
    "OpusEncoder",
    "Vp8Decoder",
    "Vp8Encoder",
    "Vp9Decoder",
    "Vp9Encoder",
    "default_video_bitrate",
]

# SVT-AV1 prints a banner and warnings to stderr on every open unless told not to.
os.environ.setdefault("SVT_LOG", "1")

VIDEO_CLOCK_RATE = 90_000
_VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)
#: FFmpeg's FF_QP2LAMBDA: ``quality_stats`` side data holds QP times this.
_QP2LAMBDA = 118
#: No periodic keyframes to speak of: a receiver asks for one (PLI/FIR) when it needs it.
_GOP_SIZE = 3000
#: A fall this large (relative) reopens a codec that cannot change its rate live at once.
_LARGE_CHANGE = 0.15
#: A change (either way) this large reopens it once the last open is _REOPEN_INTERVAL old.
_SMALL_CHANGE = 0.06
_REOPEN_INTERVAL = 3.0
_DEFAULT_FRAMERATE = 30.0
_MIN_VIDEO_BITRATE = 30_000
_MAX_VIDEO_BITRATE = 50_000_000


def default_video_bitrate(width: int, height: int, framerate: float = _DEFAULT_FRAMERATE) -> int:
    """What a video encoder aims at without a target: 1 Mbit/s at 640x480 and 30 fps, scaled
    by the pixel rate (linear in pixels, square root in frame rate: a higher rate means smaller
    differences between frames)."""
    pixels = width * height / (640 * 480)
    rate = 1_000_000 * pixels * math.sqrt(max(framerate, 1.0) / _DEFAULT_FRAMERATE)
    return int(min(max(rate, 100_000), 20_000_000))


def _threads(width: int, height: int) -> int:
    """Encoder threads for a picture size: one below 720p, more for larger pictures, never more
    than the machine has. At 30 fps the encoder's threads sleep between pictures, and waking
    them costs more than they save at VGA: measured on a 2-core machine at 640x480, libvpx VP8
    with 2 threads took 5.0 ms median / 15 ms p90 / 40 ms max per real-time frame, with 1
    thread 3.4 / 3.6 / 8 ms (x264 2.1 / 2.5 / 15 against 2.7 / 2.8 / 9)."""
    pixels = width * height
    wanted = 1 if pixels < 1280 * 720 else 2 if pixels < 1920 * 1080 else 4
    return max(1, min(wanted, os.cpu_count() or 1))


def _packet_qp(packet: av.Packet[Any]) -> int | None:
    if not packet.has_sidedata("quality_stats"):
        return None
    stats = bytes(packet.get_sidedata("quality_stats"))
    if len(stats) < 4:
        return None
    return round(int.from_bytes(stats[:4], "little") / _QP2LAMBDA)


class _VideoEncoder(abc.ABC):
    """The common part of the video encoders: format, size, timestamps, keyframes, rate."""

    kind: str = "video"
    mime_type: str
    _encoder_name: str
    #: ``bit_rate`` on the open context reaches the encoder, up to the rate it was opened with.
    _live_bitrate: ClassVar[bool] = False
    #: The encoder paces its rate control by the frame timestamps (no reopen for a new fps).
    _timestamp_paced: ClassVar[bool] = True

    def __init__(self, codec: NegotiatedCodec, settings: EncoderSettings) -> None:
        self.codec = codec
        self.max_payload_size = settings.max_payload_size
        # Written by set_target (maybe from another thread), read at the next encode.
        self._wanted_bitrate: int | None = settings.bitrate
        self._wanted_framerate: float = settings.framerate or _DEFAULT_FRAMERATE
        self._context: VideoCodecContext | None = None
        self._size = (0, 0)
        self._ceiling = 0  # the bitrate the context was opened with
        self._bitrate = 0  # the bitrate in effect
        self._framerate = _DEFAULT_FRAMERATE  # the frame rate the context was opened with
        self._opened_at = -math.inf
        self._last_pts = -1
        self._last_timestamp: int | None = None
        self._origin: tuple[Fraction, int] | None = None  # (seconds, timestamp) of the first pts
        self._timestamps: dict[int, int] = {}

    def set_target(self, *, bitrate: int | None = None, framerate: float | None = None) -> None:
        """Keep the new target; the next :meth:`encode` applies it (thread-safe: two plain
        attribute stores)."""
        if bitrate is not None:
            self._wanted_bitrate = int(min(max(bitrate, _MIN_VIDEO_BITRATE), _MAX_VIDEO_BITRATE))
        if framerate is not None and math.isfinite(framerate) and framerate > 0:
            self._wanted_framerate = float(framerate)

    def close(self) -> None:
        self._close_context()

    def encode(self, frame: Any, *, keyframe: bool = False) -> list[OutgoingFrame]:
        if not isinstance(frame, av.VideoFrame):
            raise TypeError(f"a video encoder takes av.VideoFrame, not {type(frame).__name__}")
        timestamp = self._timestamp(frame)
        width, height = frame.width & ~1, frame.height & ~1
        if width < 2 or height < 2:
            raise ValueError(f"a {frame.width}x{frame.height} picture is too small to encode")
        framerate = self._wanted_framerate
        bitrate = self._wanted_bitrate or default_video_bitrate(width, height, framerate)
        if self._context is None or (width, height) != self._size:
            self._open(width, height, bitrate, framerate)
            keyframe = True
        elif bitrate != self._bitrate or framerate != self._framerate:
            keyframe = self._retarget(bitrate, framerate, keyframe)
        context = self._context
        assert context is not None
        picture = frame
        if frame.format.name != "yuv420p" or (frame.width, frame.height) != (width, height):
            picture = frame.reformat(width=width, height=height, format="yuv420p")
        pts = max(timestamp, self._last_pts + 1)
        self._last_pts = pts
        self._timestamps[pts] = timestamp
        # The caller's frame is only borrowed: restore what we set on it for the encoder.
        saved = (picture.pts, picture.time_base, picture.pict_type)
        picture.pts = pts
        picture.time_base = _VIDEO_TIME_BASE
        picture.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        try:
            packets = context.encode(picture)
        finally:
            picture.pts, time_base, picture.pict_type = saved
            if time_base is not None:  # PyAV cannot set it back to "unset"
                picture.time_base = time_base
        out = []
        for packet in packets:
            packet_ts = (
                self._timestamps.pop(packet.pts, timestamp) if packet.pts is not None else timestamp
            )
            is_key = bool(packet.is_keyframe)
            out.append(
                OutgoingFrame(
                    self._bitstream(bytes(packet), is_key),
                    is_key,
                    packet_ts,
                    None,
                    _packet_qp(packet),
                    self.mime_type,
                )
            )
        if len(self._timestamps) > 16:  # an encoder that swallowed pictures: forget them
            self._timestamps.clear()
        return out

    def _timestamp(self, frame: av.VideoFrame) -> int:
        """90 kHz from the first frame: from ``pts * time_base`` when the frame has both, else
        one frame interval at the target frame rate after the previous frame."""
        step = round(VIDEO_CLOCK_RATE / self._wanted_framerate)
        if frame.pts is not None and frame.time_base is not None:
            seconds = frame.pts * frame.time_base
            if self._origin is None:
                start = 0 if self._last_timestamp is None else self._last_timestamp + step
                self._origin = (seconds, start)
            origin_seconds, origin_ts = self._origin
            timestamp = origin_ts + round((seconds - origin_seconds) * VIDEO_CLOCK_RATE)
        elif self._last_timestamp is None:
            timestamp = 0
        else:
            timestamp = self._last_timestamp + step
        self._last_timestamp = timestamp
        return timestamp

    def _retarget(self, bitrate: int, framerate: float, keyframe: bool) -> bool:
        """Apply a new rate to the open context, live when the encoder can, else by reopening
        under the rules in the module docstring. Returns whether this picture is a keyframe."""
        context = self._context
        assert context is not None
        if self._live_bitrate and bitrate != self._bitrate and bitrate <= self._ceiling:
            context.bit_rate = bitrate
            self._bitrate = bitrate
        if self._timestamp_paced:
            self._framerate = framerate  # the timestamps carry the new rate
        framerate_pending = framerate != self._framerate
        if bitrate == self._bitrate and not framerate_pending:
            return keyframe
        notable = (
            abs(bitrate - self._bitrate) > _SMALL_CHANGE * self._bitrate
            or abs(framerate - self._framerate) > _LARGE_CHANGE * self._framerate
        )
        # A large fall is a congestion back-off: the link no longer carries the old rate, and
        # waiting out the interval kept the encoder above it for up to a second (after a
        # 3 -> 1 Mbit/s step the estimate fell in two cuts 100 ms apart; the second waited
        # 1.05 s, the bottleneck queue overflowed meanwhile and the send rate took 2.2 s to get
        # under the new capacity). The keyframe it costs is small at the new rate (capped by
        # max-intra-rate: about two frames). A rise waits for the interval: it is not urgent.
        # But it is not held back for long either: with rises taken only beyond 15 %, the
        # encoder sat at the rate of the last cut (0.85 x what the link carried) while the
        # estimate climbed back towards the link, and a 2 Mbit/s link was used at 85 %.
        falling = bitrate < (1 - _LARGE_CHANGE) * self._bitrate
        due = time.monotonic() - self._opened_at >= _REOPEN_INTERVAL
        if keyframe or falling or (notable and due):
            self._open(self._size[0], self._size[1], bitrate, framerate)
            return True
        return keyframe

    def _open(self, width: int, height: int, bitrate: int, framerate: float) -> None:
        self._close_context()
        context = cast(VideoCodecContext, av.CodecContext.create(self._encoder_name, "w"))
        context.width = width
        context.height = height
        context.pix_fmt = "yuv420p"
        context.time_base = _VIDEO_TIME_BASE
        context.framerate = Fraction(framerate).limit_denominator(1001)
        context.bit_rate = bitrate
        context.gop_size = _GOP_SIZE
        context.max_b_frames = 0
        context.thread_count = _threads(width, height)
        # Say what the pictures are: BT.601 (SMPTE 170M) in limited range, as PyAV and FFmpeg
        # make yuv420p from RGB. Without it H264/VP9/AV1 carry "unspecified", which browsers show
        # as BT.709 (greens and reds shift); VP8 has no such field (it is BT.601 by definition).
        context.colorspace = _SMPTE170M
        context.color_primaries = _SMPTE170M
        context.color_trc = _SMPTE170M
        context.color_range = _LIMITED_RANGE
        context.options = self._options(width, height, bitrate, framerate)
        with _ordinary_scheduling():
            context.open()
        self._context = context
        self._size = (width, height)
        self._bitrate = self._ceiling = bitrate
        self._framerate = framerate
        self._opened_at = time.monotonic()

    def _close_context(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            try:
                context.encode(None)  # drain: SVT-AV1 complains when closed without EOS
            except av.FFmpegError:
                pass
            self._timestamps.clear()

    @abc.abstractmethod
    def _options(self, width: int, height: int, bitrate: int, framerate: float) -> dict[str, str]:
        """The codec's private options for this size and rate (each encoder has its own)."""

    def _bitstream(self, data: bytes, keyframe: bool) -> bytes:
        return data


#: FFmpeg's AVCOL_SPC/AVCOL_PRI/AVCOL_TRC value for SMPTE 170M (BT.601), and AVCOL_RANGE_MPEG.
_SMPTE170M = 6
_LIMITED_RANGE = 1

_REALTIME_POLICIES = frozenset(
    getattr(os, name) for name in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, name)
)


@contextlib.contextmanager
def _ordinary_scheduling() -> Iterator[None]:
    """Undo what a codec does to the process's scheduling while it opens.

    SVT-AV1, run as root on Linux, switches the thread that opens it and every thread it starts
    to SCHED_FIFO priority 99. A spinning real-time thread starves everything else on the
    machine, and every process the program starts afterwards (a browser, a subprocess) inherits
    the policy. Threads that were not real-time before the call are put back to SCHED_OTHER."""
    if not _REALTIME_POLICIES or not hasattr(os, "sched_setscheduler"):
        yield
        return
    tasks = "/proc/self/task"

    def realtime_threads() -> set[int]:
        found: set[int] = set()
        try:
            tids = [int(name) for name in os.listdir(tasks)]
        except OSError:
            return found
        for tid in tids:
            try:
                if os.sched_getscheduler(tid) in _REALTIME_POLICIES:
                    found.add(tid)
            except OSError:
                continue  # the thread ended meanwhile
        return found

    before = realtime_threads()
    try:
        yield
    finally:
        for tid in realtime_threads() - before:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


def _vpx_options(bitrate: int, cpu_used: int) -> dict[str, str]:
    return {
        "deadline": "realtime",
        "cpu-used": str(cpu_used),
        "lag-in-frames": "0",
        "max-intra-rate": "300",
        # minrate == maxrate == bitrate: libvpx's CBR mode; one second of buffer.
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "undershoot-pct": "100",
        "overshoot-pct": "15",
        # Never drop a picture: one frame out per picture in. libwebrtc's VP8 drops below 30 %
        # of the rate buffer. Tried here (1f5d8f4, together with taking retransmissions off
        # the encoder's share): it made the encoder meet a target under what the picture
        # needs (400 kbit/s asked, 402 sent, every other picture), but bench_links runs with
        # the two started at 300-900 kbit/s instead of 2-3.5 Mbit/s (which of the two did it
        # is not known; see RtpTransport._share_estimate).
        "drop-threshold": "0",
    }


class Vp8Encoder(_VideoEncoder):
    """VP8 through libvpx (see the module docstring for the settings)."""

    mime_type = "video/VP8"
    _encoder_name = "libvpx"

    def _options(self, width: int, height: int, bitrate: int, framerate: float) -> dict[str, str]:
        # A negative cpu-used fixes libvpx's VP8 speed; a positive one turns on its automatic
        # speed selection, which spent about twice the time per frame here (3.1 against 1.6 ms
        # at 640x480 and 1 Mbit/s, same size). -6 is what WebRTC uses.
        return _vpx_options(bitrate, -6)


class Vp9Encoder(_VideoEncoder):
    """VP9 profile 0 through libvpx-vp9 (see the module docstring for the settings)."""

    mime_type = "video/VP9"
    _encoder_name = "libvpx-vp9"

    def _options(self, width: int, height: int, bitrate: int, framerate: float) -> dict[str, str]:
        options = _vpx_options(bitrate, 8)
        options.update(
            {
                "row-mt": "1",
                "aq-mode": "3",  # cyclic refresh, libvpx's real-time AQ
                "tile-columns": "1" if width >= 640 else "0",
                "frame-parallel": "0",
            }
        )
        return options


# H.264 levels (Table A-1): level_idc and the largest frame in macroblocks.
_H264_LEVEL_MAX_FS = (
    (10, 99),
    (11, 396),
    (20, 396),
    (21, 792),
    (22, 1620),
    (30, 1620),
    (31, 3600),
    (32, 5120),
    (40, 8192),
    (42, 8704),
    (50, 22080),
    (51, 36864),
    (60, 139264),
)


def _h264_level(profile_level_id: str | None, width: int, height: int) -> int:
    """The fmtp's level_idc (3.1 when absent or malformed), raised to what the picture needs."""
    level = 31
    if profile_level_id is not None and len(profile_level_id) == 6:
        try:
            level = int(profile_level_id[4:], 16) or 31
        except ValueError:
            level = 31
    macroblocks = ((width + 15) // 16) * ((height + 15) // 16)
    needed = next((idc for idc, max_fs in _H264_LEVEL_MAX_FS if max_fs >= macroblocks), 60)
    return max(level, needed)


class H264Encoder(_VideoEncoder):
    """H.264 constrained baseline through libx264 (see the module docstring)."""

    mime_type = "video/H264"
    _encoder_name = "libx264"
    _live_bitrate = True

    def __init__(self, codec: NegotiatedCodec, settings: EncoderSettings) -> None:
        super().__init__(codec, settings)
        self.packetization_mode = 1 if codec.parameters.get("packetization-mode") == "1" else 0

    def _options(self, width: int, height: int, bitrate: int, framerate: float) -> dict[str, str]:
        level = _h264_level(self.codec.parameters.get("profile-level-id"), width, height)
        params = ["scenecut=0", "repeat-headers=1", "annexb=1", "aud=0"]
        if self.packetization_mode == 0:
            params.append(f"slice-max-size={self.max_payload_size}")
        return {
            "preset": "veryfast" if width * height < 1280 * 720 else "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "level": f"{level // 10}.{level % 10}",
            "forced-idr": "1",
            # CBR (maxrate == bitrate) is what lets x264 take a lower bit_rate live.
            "maxrate": str(bitrate),
            "bufsize": str(bitrate // 2),
            "x264-params": ":".join(params),
        }

    def _bitstream(self, data: bytes, keyframe: bool) -> bytes:
        if not keyframe:
            return data
        units = split_annex_b(data)
        if not any(unit and unit[0] & 0x1F == 6 for unit in units):
            return data
        # x264's first IDR carries a long "x264 - core ..." SEI: no decoder needs it.
        return b"".join(b"\x00\x00\x00\x01" + unit for unit in units if unit[0] & 0x1F != 6)


class Av1Encoder(_VideoEncoder):
    """AV1 through SVT-AV1, real-time low-delay (see the module docstring)."""

    mime_type = "video/AV1"
    _encoder_name = "libsvtav1"
    _timestamp_paced = False

    def _options(self, width: int, height: int, bitrate: int, framerate: float) -> dict[str, str]:
        return {
            "preset": "10",
            "maxrate": str(bitrate),  # maxrate == bitrate: CBR, the only mode low delay has
            "svtav1-params": "pred-struct=1:rtc=1:scd=0",
        }


class _VideoDecoder:
    """FFmpeg decoder, low delay, errors as :class:`DecodeError`."""

    kind: str = "video"
    mime_type: str
    _decoder_name: ClassVar[str]
    _decoder_options: ClassVar[dict[str, str]] = {}

    def __init__(self, codec: NegotiatedCodec) -> None:
        self.codec = codec
        context = cast(VideoCodecContext, av.CodecContext.create(self._decoder_name, "r"))
        # Slice/tile threads only: frame threads hold pictures back by a frame per thread.
        context.thread_type = "SLICE"
        context.thread_count = max(1, min(2, os.cpu_count() or 1))
        context.flags |= av.codec.context.Flags.low_delay
        context.options = dict(self._decoder_options)
        context.open()
        self._context: VideoCodecContext | None = context

    def decode(self, frame: EncodedFrame) -> list[Any]:
        context = self._context
        if context is None:
            raise DecodeError("the decoder is closed")
        if not frame.data:
            raise DecodeError("an empty frame (lost packets) cannot be decoded")
        try:
            return list(context.decode(av.Packet(frame.data)))
        except (av.FFmpegError, ValueError) as error:
            raise DecodeError(f"{self.mime_type}: {error}") from error

    def close(self) -> None:
        self._context = None


class Vp8Decoder(_VideoDecoder):
    mime_type = "video/VP8"
    _decoder_name = "vp8"


class Vp9Decoder(_VideoDecoder):
    mime_type = "video/VP9"
    _decoder_name = "vp9"


class H264Decoder(_VideoDecoder):
    mime_type = "video/H264"
    _decoder_name = "h264"
    # A damaged access unit is an error (and a keyframe request), not a concealed picture.
    _decoder_options: ClassVar[dict[str, str]] = {"err_detect": "explode"}


class Av1Decoder(_VideoDecoder):
    mime_type = "video/AV1"
    _decoder_name = "libdav1d"
    _decoder_options: ClassVar[dict[str, str]] = {"max_frame_delay": "1"}


class _AudioEncoder:
    """Resample, buffer to the codec's frame size, encode; timestamps count samples."""

    kind: str = "audio"
    mime_type: str
    _encoder_name: str
    sample_rate: ClassVar[int]
    frame_samples: ClassVar[int]

    def __init__(self, codec: NegotiatedCodec, settings: EncoderSettings) -> None:
        self.codec = codec
        self.channels = self._channels(codec)
        self._layout = "stereo" if self.channels == 2 else "mono"
        self._wanted_bitrate = self._bitrate(settings.bitrate)
        self._resampler = av.AudioResampler(
            format="s16", layout=self._layout, rate=self.sample_rate
        )
        self._fifo = av.AudioFifo()
        self._next_timestamp = 0
        self._context: AudioCodecContext | None = None
        self._opened_bitrate = 0
        self._opened_at = -math.inf
        self._time_base = Fraction(1, self.sample_rate)
        self._open()

    def _channels(self, codec: NegotiatedCodec) -> int:
        return 1

    def _bitrate(self, wanted: int | None) -> int:
        return 64_000

    def _options(self) -> dict[str, str]:
        return {}

    def _open(self) -> None:
        context = cast(AudioCodecContext, av.CodecContext.create(self._encoder_name, "w"))
        context.sample_rate = self.sample_rate
        context.layout = self._layout
        context.format = "s16"
        context.time_base = Fraction(1, self.sample_rate)
        context.bit_rate = self._wanted_bitrate
        context.options = self._options()
        context.open()
        self._context = context
        self._opened_bitrate = self._wanted_bitrate
        self._opened_at = time.monotonic()

    def set_target(self, *, bitrate: int | None = None, framerate: float | None = None) -> None:
        if bitrate is not None:
            self._wanted_bitrate = self._bitrate(bitrate)

    def _reopen_wanted(self) -> bool:
        """Whether what was asked for differs enough from what the codec was opened with."""
        wanted, opened = self._wanted_bitrate, self._opened_bitrate
        return wanted != opened and abs(wanted - opened) > _LARGE_CHANGE * opened

    def encode(self, frame: Any, *, keyframe: bool = False) -> list[OutgoingFrame]:
        if not isinstance(frame, av.AudioFrame):
            raise TypeError(f"an audio encoder takes av.AudioFrame, not {type(frame).__name__}")
        if self._context is None:
            raise RuntimeError("the encoder is closed")
        if self._reopen_wanted() and time.monotonic() - self._opened_at >= _REOPEN_INTERVAL:
            self._open()
        for resampled in self._resampler.resample(frame):
            resampled.pts = None  # the fifo checks pts continuity; we count samples instead
            self._fifo.write(resampled)
        out = []
        duration = self.frame_samples / self.sample_rate
        while self._fifo.samples >= self.frame_samples:
            chunk = self._fifo.read(self.frame_samples)
            if chunk is None:  # pragma: no cover - the fifo holds enough
                break
            chunk.pts = self._next_timestamp
            chunk.time_base = self._time_base
            for packet in self._context.encode(chunk):
                out.append(
                    OutgoingFrame(
                        bytes(packet), True, self._next_timestamp, duration, None, self.mime_type
                    )
                )
            self._next_timestamp += self.frame_samples
        return out

    def close(self) -> None:
        self._context = None


class OpusEncoder(_AudioEncoder):
    """Opus through libopus (see the module docstring)."""

    mime_type = "audio/opus"
    _encoder_name = "libopus"
    sample_rate = 48_000
    frame_samples = 960

    def _channels(self, codec: NegotiatedCodec) -> int:
        return 2 if codec.parameters.get("stereo") == "1" else 1

    def _bitrate(self, wanted: int | None) -> int:
        if wanted is None:
            wanted = 64_000 if self.channels == 2 else 32_000
        cap = self.codec.parameters.get("maxaveragebitrate", "")
        if cap.isascii() and cap.isdigit() and len(cap) <= 7:
            wanted = min(wanted, int(cap))
        return min(max(wanted, 6_000), 510_000)

    def __init__(self, codec: NegotiatedCodec, settings: EncoderSettings) -> None:
        self._fec = codec.parameters.get("useinbandfec") == "1"
        # Expected loss in per cent (one of _OPUS_LOSS_LEVELS): wanted, and opened with.
        self._wanted_loss = self._opened_loss = _OPUS_INITIAL_LOSS
        super().__init__(codec, settings)

    def set_packet_loss(self, fraction: float) -> None:
        """The share of packets the receiver reports lost (0 to 1, RTCP's fraction lost):
        with FEC on, libopus sizes its redundancy by it. Kept as a level of
        ``_OPUS_LOSS_LEVELS`` (the highest at or below it; a level is left downwards only once
        the loss is under half of it, so a loss that hovers does not reopen the encoder every
        second); the next :meth:`encode` applies it. Thread-safe like :meth:`set_target`."""
        if not self._fec or not math.isfinite(fraction):
            return
        percent = min(max(fraction, 0.0), 1.0) * 100
        level = max(step for step in _OPUS_LOSS_LEVELS if step <= percent)
        current = self._wanted_loss
        if level < current and percent >= current / 2:
            return
        self._wanted_loss = level

    def _reopen_wanted(self) -> bool:
        return self._wanted_loss != self._opened_loss or super()._reopen_wanted()

    def _options(self) -> dict[str, str]:
        if self._fec:
            # In-band FEC lives in SILK, which "lowdelay" (CELT only) does not have.
            self._opened_loss = loss = self._wanted_loss
            return {
                "application": "voip",
                "frame_duration": "20",
                "fec": "1",
                "packet_loss": str(loss),
            }
        return {"application": "lowdelay", "frame_duration": "20"}


#: The expected losses (per cent) the Opus encoder is opened with when FEC is on, and the one
#: it starts at before the receiver has reported any (see the module docstring).
_OPUS_LOSS_LEVELS = (0, 1, 5, 10, 20)
_OPUS_INITIAL_LOSS = 1


class G711Encoder(_AudioEncoder):
    """PCMU (``pcm_mulaw``) or PCMA (``pcm_alaw``): 8 kHz mono, 20 ms frames."""

    sample_rate = 8_000
    frame_samples = 160

    def __init__(self, codec: NegotiatedCodec, settings: EncoderSettings) -> None:
        alaw = codec.name.lower() == "pcma"
        self.mime_type = "audio/PCMA" if alaw else "audio/PCMU"
        self._encoder_name = "pcm_alaw" if alaw else "pcm_mulaw"
        super().__init__(codec, settings)


class _AudioDecoder:
    kind: str = "audio"
    mime_type: str

    def __init__(self, codec: NegotiatedCodec, name: str, rate: int, channels: int) -> None:
        self.codec = codec
        context = cast(AudioCodecContext, av.CodecContext.create(name, "r"))
        context.sample_rate = rate
        context.layout = "stereo" if channels == 2 else "mono"
        context.open()
        self._context: AudioCodecContext | None = context
        self._resampler: av.AudioResampler | None = None
        self._rate = rate
        self._channels = channels

    def decode(self, frame: EncodedFrame) -> list[Any]:
        context = self._context
        if context is None:
            raise DecodeError("the decoder is closed")
        if not frame.data:
            raise DecodeError("an empty frame (a lost packet) cannot be decoded")
        try:
            frames = context.decode(av.Packet(frame.data))
        except (av.FFmpegError, ValueError) as error:
            raise DecodeError(f"{self.mime_type}: {error}") from error
        out: list[Any] = []
        for decoded in frames:
            if decoded.format.name == "s16" and decoded.sample_rate == self._rate:
                out.append(decoded)
                continue
            if self._resampler is None:  # a decoder that prefers another format
                layout = "stereo" if self._channels == 2 else "mono"
                self._resampler = av.AudioResampler(format="s16", layout=layout, rate=self._rate)
            out += self._resampler.resample(decoded)
        return out

    def close(self) -> None:
        self._context = None


class OpusDecoder(_AudioDecoder):
    """Opus through libopus, s16 at 48 kHz; stereo when the fmtp says the sender sends it."""

    mime_type = "audio/opus"

    def __init__(self, codec: NegotiatedCodec) -> None:
        stereo = "1" in (codec.parameters.get("stereo"), codec.parameters.get("sprop-stereo"))
        super().__init__(codec, "libopus", 48_000, 2 if stereo else 1)


class G711Decoder(_AudioDecoder):
    """PCMU/PCMA to s16 at 8 kHz mono."""

    def __init__(self, codec: NegotiatedCodec) -> None:
        alaw = codec.name.lower() == "pcma"
        self.mime_type = "audio/PCMA" if alaw else "audio/PCMU"
        super().__init__(codec, "pcm_alaw" if alaw else "pcm_mulaw", 8_000, 1)


ENCODERS: dict[str, EncoderFactory] = {
    "opus": OpusEncoder,
    "pcmu": G711Encoder,
    "pcma": G711Encoder,
    "vp8": Vp8Encoder,
    "vp9": Vp9Encoder,
    "h264": H264Encoder,
    "av1": Av1Encoder,
}

DECODERS: dict[str, DecoderFactory] = {
    "opus": OpusDecoder,
    "pcmu": G711Decoder,
    "pcma": G711Decoder,
    "vp8": Vp8Decoder,
    "vp9": Vp9Decoder,
    "h264": H264Decoder,
    "av1": Av1Decoder,
}
