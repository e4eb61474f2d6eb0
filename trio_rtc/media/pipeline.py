"""Raw frames ⇄ encoded frames around the RTP tasks, with the codec work in worker threads.

- :func:`run_encoder` (started by ``run_sender`` for a track fed by raw frames): a reader task
  pulls the track's frame source into a small mailbox, and the encoder task takes the newest
  frame, encodes it in a worker thread and queues the result in the track's
  :class:`~trio_rtc.media.tracks.EncodedSource` (bounded: backpressure from the network).
- :func:`run_decoder` (started by ``run_receiver`` when a remote track is first read with
  ``recv()``): takes the track's assembled frames in order, decodes them in a worker thread and
  queues the pictures/sound for the reader.
- :class:`Transcoder`: a relayed frame whose codec differs from the negotiated one is decoded
  and re-encoded on its way out.

Threads: every encoder and decoder instance has a worker thread of its own
(:class:`~trio_rtc.media.codec_thread.CodecThread`, started at its first frame, joined when
the pipeline ends), so its calls never overlap and keep their order, and the Trio loop never
waits on a codec. One thread for the life of the stream costs less per frame than a
``trio.to_thread.run_sync`` per frame (no limiter, context copy or thread renaming per
call). Audio codec calls that prove shorter than the hand-over (0.3 ms) run inline; video
calls always go to the thread. A cancelled call waits for the codec call in flight (a few
milliseconds) instead of abandoning the thread: nothing is left running.

Bounds: video keeps only the newest raw frame when the encoder is slower than the source (the
older one is dropped and counted), and the newest decoded pictures when the reader is slow;
audio is a bounded FIFO in both directions: the reader of a raw source waits when it is full
(never reordered, never dropped), decoded audio drops its oldest frame (counted) for a reader
that does not keep up.
"""

from __future__ import annotations

import fractions
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..jsep.codecs import NegotiatedCodec, get_capabilities
from ..rtp.codecs import EncodedFrame
from ..rtp.jitter import (
    AudioJitterBuffer,
    Concealment,
    JitterBufferStats,
    Playout,
    PlayoutFrame,
)
from ..rtp.sequence import TimestampUnwrapper
from .codec_thread import INLINE_BELOW, CodecThread
from .coding import (
    CodecError,
    CodecRegistry,
    DecodeError,
    Decoder,
    EncoderSettings,
    default_registry,
    max_video_bitrate,
)
from .tracks import OutgoingFrame

if TYPE_CHECKING:
    from .rtp_objects import RTCRtpReceiver, RTCRtpSender
    from .tracks import MediaStreamTrack

__all__ = [
    "AUDIO_MAILBOX",
    "CodecStats",
    "Transcoder",
    "codec_for_mime",
    "run_decoder",
    "run_encoder",
]

logger = logging.getLogger("trio_rtc.media")

#: Raw audio frames (20 ms each, typically) a source may run ahead of its encoder.
AUDIO_MAILBOX = 10
#: Raw video frames waiting for the encoder: the newest only.
VIDEO_MAILBOX = 1


#: webrtc-stats: a gap between two pictures longer than this is a pause, not a freeze.
PAUSE_SECONDS = 5.0


class CodecStats:
    """What an encoder or decoder did, for ``getStats()`` (webrtc-stats §8.2, §8.4):
    frames and keyframes out, seconds spent in the codec, the last picture size, the sum of
    the quantizers it reported, errors (frames it could not code) and frames dropped before it
    (newest-wins). ``frames_per_second`` counts frames of the last second."""

    __slots__ = (
        "_frame_durations",
        "_last_frame_at",
        "_recent",
        "dropped",
        "errors",
        "frames",
        "freeze_count",
        "height",
        "jitter_buffer",
        "keyframes",
        "pause_count",
        "qp_frames",
        "qp_sum",
        "samples",
        "total_freezes_duration",
        "total_inter_frame_delay",
        "total_pauses_duration",
        "total_squared_inter_frame_delay",
        "total_time",
        "width",
    )

    def __init__(self) -> None:
        #: Audio decoding: the playout buffer's counters (W3C jitterBuffer*, concealment).
        self.jitter_buffer: JitterBufferStats | None = None
        self.frames = 0
        self.keyframes = 0
        self.total_time = 0.0
        self.width: int | None = None
        self.height: int | None = None
        self.qp_sum = 0
        self.qp_frames = 0
        self.errors = 0
        self.dropped = 0
        #: Audio samples (per channel) coded.
        self.samples = 0
        self._recent: deque[float] = deque(maxlen=240)
        #: Decoded video (webrtc-stats RTCInboundRtpStreamStats): freezes and pauses between
        #: consecutive pictures, and the inter-frame delay sums.
        self.freeze_count = 0
        self.total_freezes_duration = 0.0
        self.pause_count = 0
        self.total_pauses_duration = 0.0
        self.total_inter_frame_delay = 0.0
        self.total_squared_inter_frame_delay = 0.0
        self._last_frame_at: float | None = None
        self._frame_durations: deque[float] = deque(maxlen=30)

    def __repr__(self) -> str:
        return (
            f"<CodecStats frames={self.frames} keyframes={self.keyframes} "
            f"time={self.total_time:.3f}s errors={self.errors} dropped={self.dropped}>"
        )

    def count(self, *, keyframe: bool, seconds: float, picture: Any = None) -> None:
        self.frames += 1
        self.keyframes += int(keyframe)
        self.total_time += seconds
        self._recent.append(time.monotonic())
        width = getattr(picture, "width", None)
        if isinstance(width, int):
            self.width = width
            self.height = getattr(picture, "height", None)
            self._picture_at(self._recent[-1])
        samples = getattr(picture, "samples", None)
        if isinstance(samples, int):
            self.samples += samples

    def _picture_at(self, now: float) -> None:
        """A video picture came out at ``now``. webrtc-stats: a pause is a gap of more than
        5 s; otherwise a freeze is a gap of at least max(3 x, 150 ms +) the average of the
        last 30 gaps."""
        last, self._last_frame_at = self._last_frame_at, now
        if last is None:
            return
        gap = now - last
        self.total_inter_frame_delay += gap
        self.total_squared_inter_frame_delay += gap * gap
        durations = self._frame_durations
        if gap > PAUSE_SECONDS:
            self.pause_count += 1
            self.total_pauses_duration += gap
        elif durations:
            average = sum(durations) / len(durations)
            if gap >= max(3 * average, average + 0.150):
                self.freeze_count += 1
                self.total_freezes_duration += gap
        durations.append(gap)

    def frames_per_second(self) -> float | None:
        if not self._recent:
            return None
        horizon = time.monotonic() - 1.0
        return float(sum(1 for t in self._recent if t >= horizon))


class _Mailbox:
    """Frames between the reader of a source and the encoder. Video (``depth`` 1): a new frame
    replaces the waiting one (counted in ``stats.dropped``). Audio: FIFO of ``depth`` frames,
    ``put`` waits while full."""

    def __init__(self, depth: int, *, newest_wins: bool, stats: CodecStats) -> None:
        self._frames: deque[Any] = deque()
        self._depth = depth
        self._newest_wins = newest_wins
        self._stats = stats
        self._getters = trio.lowlevel.ParkingLot()
        self._putters = trio.lowlevel.ParkingLot()
        self._ended = False

    async def put(self, frame: Any) -> None:
        """Queue ``frame``: a schedule point only when it waits (a full audio mailbox) or
        drops a frame (the reader is ahead of the encoder), else just a cancellation point.
        The reader's next ``recv()`` from its source usually parks anyway, and a task step
        saved per frame is CPU saved per frame; a source that never parks still cannot keep
        the reader running: it fills the mailbox, and then waits or drops, and yields."""
        ahead = False
        if self._newest_wins:
            while len(self._frames) >= self._depth:
                self._frames.popleft()
                self._stats.dropped += 1
                ahead = True
        else:
            while len(self._frames) >= self._depth:
                await self._putters.park()
        self._frames.append(frame)
        self._getters.unpark()
        if ahead:
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    def end(self) -> None:
        self._ended = True
        self._getters.unpark_all()

    async def get(self) -> Any:
        while not self._frames:
            if self._ended:
                raise trio.EndOfChannel
            await self._getters.park()
        frame = self._frames.popleft()
        self._putters.unpark()
        return frame


def _is_av_frame(frame: Any) -> bool:
    return type(frame).__module__.startswith("av.")


def _blank_like(frame: Any) -> Any:
    """A black picture or silence shaped like ``frame`` (a disabled track sends these, as
    browsers do); ``frame`` itself when it is not a PyAV frame."""
    if not _is_av_frame(frame):
        return frame
    import av

    blank: av.VideoFrame | av.AudioFrame
    if isinstance(frame, av.VideoFrame):
        picture = av.VideoFrame(frame.width, frame.height, "yuv420p")
        for index, plane in enumerate(picture.planes):
            plane.update(bytes([16 if index == 0 else 128]) * plane.buffer_size)
        blank = picture
    elif isinstance(frame, av.AudioFrame):
        sound = av.AudioFrame(
            format=frame.format.name, layout=frame.layout.name, samples=frame.samples
        )
        sound.sample_rate = frame.sample_rate
        for audio_plane in sound.planes:
            audio_plane.update(bytes(audio_plane.buffer_size))
        blank = sound
    else:
        return frame
    blank.pts = frame.pts
    blank.time_base = frame.time_base
    return blank


def _scaled(frame: Any, scale: float | None) -> Any:
    """``scaleResolutionDownBy`` applied to a PyAV picture (even sizes, at least 2x2)."""
    if scale is None or scale <= 1.0 or not _is_av_frame(frame) or not hasattr(frame, "reformat"):
        return frame
    width = max(2, int(frame.width / scale) & ~1)
    height = max(2, int(frame.height / scale) & ~1)
    scaled = frame.reformat(width=width, height=height)
    scaled.pts = frame.pts
    scaled.time_base = frame.time_base
    return scaled


def _codec_thread(name: str, kind: str) -> CodecThread:
    """The worker thread of one codec instance. Audio calls that prove short (an Opus frame:
    25 µs to decode) run inline (see :mod:`~trio_rtc.media.codec_thread`); video calls never
    do: a small picture can encode in a fraction of a millisecond, but a keyframe or a reopen
    for a new bitrate takes milliseconds, which the loop must not wait for."""
    return CodecThread(name, inline_below=INLINE_BELOW if kind == "audio" else 0.0)


async def _read_source(producer: Any, *mailboxes: _Mailbox) -> None:
    """Read ``producer``'s raw frames into every mailbox (one per encoder: several for
    simulcast) until it ends; then end them."""
    try:
        while True:
            frame = await producer.recv()
            for mailbox in mailboxes:
                await mailbox.put(frame)
    except trio.EndOfChannel:
        pass
    except Exception as exc:
        # aiortc's tracks end with their own MediaStreamError: any exception named so is the
        # end; anything else is the source failing, which ends it too (said once).
        if type(exc).__name__ != "MediaStreamError":
            logger.warning("the frame source %r failed: %r; its track ends", producer, exc)
    finally:
        for mailbox in mailboxes:
            mailbox.end()


async def _encode_in_thread(
    encoder: Any,
    frame: Any,
    keyframe: bool,
    worker: CodecThread,
    stats: CodecStats,
    what: str,
) -> tuple[list[OutgoingFrame], float] | None:
    """One picture through ``encoder`` on its worker thread (its :class:`CodecThread`): what
    it made and the seconds it took, or None when it refused the picture (counted, said once
    as ``what``)."""
    started = time.perf_counter()
    call = functools.partial(encoder.encode, frame, keyframe=keyframe)
    try:
        encoded: list[OutgoingFrame] = await worker.run(call)
    except CodecError as exc:
        stats.errors += 1
        if stats.errors == 1:
            logger.warning("%s failed on a frame: %s", what, exc)
        return None
    return encoded, time.perf_counter() - started


def _scaled_size(frame: Any, scale: float | None) -> tuple[int, int] | None:
    """The size of a video frame after ``scaleResolutionDownBy``; None for audio."""
    width, height = getattr(frame, "width", None), getattr(frame, "height", None)
    if not isinstance(width, int) or not isinstance(height, int):
        return None
    factor = scale if scale is not None and scale > 1 else 1.0
    return int(width / factor), int(height / factor)


def _encoding_target(
    sender: RTCRtpSender | None, size: tuple[int, int] | None = None
) -> tuple[int | None, float | None, float | None]:
    """Bitrate, frame rate and scale for the encoder: the first encoding's limits, and the
    share of the bandwidth estimate the RTP task gave this sender (congestion control) when it
    is lower. ``size``: the picture's, which bounds what an estimate may ask
    (:func:`~trio_rtc.media.coding.max_video_bitrate`) unless ``maxBitrate`` is set."""
    if sender is None or not sender._encodings:
        return None, None, None
    encoding = sender._encodings[0]
    bitrate = encoding.maxBitrate
    rtp = sender._rtp_sender
    estimate = rtp.target_bitrate if rtp is not None else None
    if estimate is not None:
        # The share counts every byte on the wire; the encoder's bits are what is left after
        # packet overhead (RTP header and extensions, SRTP tag, UDP/IP: about 5 % of a full
        # packet) and retransmissions (a few per cent on a lossy path), as libwebrtc takes
        # both off the target before its encoders see it. Given the whole share, a 640x480
        # stream sat at a 2 Mbit/s link's capacity and overflowed its queue.
        estimate = int(estimate * _ENCODER_SHARE)
        # Quantised to 5 %: the estimate moves with every feedback, the encoder need not.
        step = max(estimate // 20, 1)
        estimate = estimate // step * step
        if bitrate is None and size is not None:
            bitrate = max_video_bitrate(*size)
        bitrate = estimate if bitrate is None else min(bitrate, estimate)
    return bitrate, encoding.maxFramerate, encoding.scaleResolutionDownBy


#: The part of a sender's share of the estimate its encoder is asked for (see _encoding_target).
_ENCODER_SHARE = 0.9
#: Bits per pixel and frame below which a picture looks broken up in the codecs here: the
#: floor of :class:`_Adaptation` (about 280 kbit/s for 640x480 at 30 fps).
MIN_BITS_PER_PIXEL = 0.03
#: The ladders of (extra resolution divisor, frame rate divisor) per degradationPreference.
_LADDERS: dict[str, tuple[tuple[int, int], ...]] = {
    "maintain-framerate": ((1, 1), (2, 1), (4, 1)),
    "maintain-resolution": ((1, 1), (1, 2), (1, 4)),
    "balanced": ((1, 1), (1, 2), (2, 2), (4, 2)),
}
#: Seconds between two adaptation steps (a resolution step costs a keyframe).
_ADAPT_INTERVAL = 2.0
#: Seconds the bitrate must stay under the floor before a step down.
_SUSTAINED_SHORTAGE = 1.0
#: A step up needs this many times the floor of the level above: the estimate grows by at
#: most 1.5 times what the (adapted) stream really sends, so a larger margin could never be
#: reached from below.
_STEP_UP_MARGIN = 1.4


class _Adaptation:
    """Frame rate, then resolution, lowered when the bitrate congestion control allows is too
    low for the picture, in the order the sender's ``degradationPreference`` says
    (webrtc-extensions §6): ``maintain-framerate`` halves the resolution, ``maintain-resolution``
    halves the frame rate, ``balanced`` (the default) first halves the frame rate, then the
    resolution. A step down when the bitrate has stayed under the floor for the current level
    (see :data:`MIN_BITS_PER_PIXEL`) for :data:`_SUSTAINED_SHORTAGE`, a step up when it is
    :data:`_STEP_UP_MARGIN` times the floor of the level above;
    at most one step per :data:`_ADAPT_INTERVAL` seconds. Counted as webrtc-stats
    ``qualityLimitation*``."""

    __slots__ = (
        "_fps",
        "_last_frame",
        "_last_step",
        "_low_since",
        "_skip",
        "durations",
        "level",
        "resolution_changes",
    )

    def __init__(self) -> None:
        self.level = 0
        self._last_step = -math.inf
        self._low_since: float | None = None
        self._last_frame: float | None = None
        self._fps = 30.0
        self._skip = 0
        self.resolution_changes = 0
        #: Seconds spent limited and not (webrtc-stats qualityLimitationDurations).
        self.durations = {"none": 0.0, "bandwidth": 0.0}

    @property
    def reason(self) -> str:
        return "bandwidth" if self.level else "none"

    def step(
        self, preference: str, bitrate: int | None, size: tuple[int, int] | None, now: float
    ) -> tuple[int, int]:
        """The (resolution divisor, frame rate divisor) for a frame arriving at ``now``."""
        ladder = _LADDERS.get(preference, _LADDERS["balanced"])
        last = self._last_frame
        self._last_frame = now
        if last is not None and now > last:
            gap = now - last
            self.durations[self.reason] += gap
            self._fps += (min(1 / gap, 120.0) - self._fps) / 16
        self.level = min(self.level, len(ladder) - 1)
        if bitrate is None or size is None or now - self._last_step < _ADAPT_INTERVAL:
            return ladder[self.level]

        def floor(level: int) -> float:
            scale, fps_divisor = ladder[level]
            pixels = size[0] * size[1] / (scale * scale)
            return MIN_BITS_PER_PIXEL * pixels * self._fps / fps_divisor

        before = ladder[self.level]
        if bitrate < floor(self.level) and self.level + 1 < len(ladder):
            # Only a shortage that lasts: at the start the estimate is low for a moment
            # while probing finds the link.
            if self._low_since is None:
                self._low_since = now
            elif now - self._low_since >= _SUSTAINED_SHORTAGE:
                self.level += 1
                self._low_since = None
        else:
            self._low_since = None
            if self.level > 0 and bitrate > _STEP_UP_MARGIN * floor(self.level - 1):
                self.level -= 1
        after = ladder[self.level]
        if after != before:
            self._last_step = now
            if after[0] != before[0]:
                self.resolution_changes += 1
        return after

    def keep(self, fps_divisor: int) -> bool:
        """Whether this frame is encoded (every ``fps_divisor``-th one is)."""
        self._skip = (self._skip + 1) % fps_divisor if fps_divisor > 1 else 0
        return self._skip == 0


async def run_encoder(
    track: MediaStreamTrack,
    producer: Any,
    codec: NegotiatedCodec,
    *,
    sender: RTCRtpSender | None = None,
    registry: CodecRegistry | None = None,
    settings: EncoderSettings | None = None,
    stats: CodecStats | None = None,
) -> None:
    """Encode ``producer``'s raw frames with ``codec`` into ``track.source`` until the producer
    ends (the track then ends) or this task is cancelled (a new track, the sender stops).

    ``sender`` (optional) supplies the rate limits of its first encoding (``maxBitrate``,
    ``maxFramerate``, ``scaleResolutionDownBy``) and gets the stats in ``encode_stats``."""
    source = track.source
    assert source is not None
    registry = registry or default_registry
    stats = stats if stats is not None else CodecStats()
    if sender is not None:
        sender.encode_stats = stats
    bitrate, framerate, scale = _encoding_target(sender)
    settings = settings or EncoderSettings(bitrate=bitrate, framerate=framerate)
    try:
        encoder = registry.create_encoder(codec, settings)
    except CodecError as exc:
        stats.errors += 1
        if sender is not None:
            sender.encode_error = exc
        logger.warning("cannot encode %s for track %s: %s", codec.rtpmap, track.id, exc)
        return
    video = track.kind == "video"
    adaptation = _Adaptation()
    if sender is not None:
        sender.adaptation = adaptation
    mailbox = _Mailbox(VIDEO_MAILBOX if video else AUDIO_MAILBOX, newest_wins=video, stats=stats)
    worker = _codec_thread(f"trio_rtc encoder {codec.name} {track.id}", track.kind)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _read_source, producer, mailbox, name=f"trio_rtc.media.read {track.id}"
            )
            target = (bitrate, framerate)
            # An encoder with loss protection of its own (the Opus encoder's in-band FEC)
            # follows the loss the receiver reports.
            set_packet_loss = getattr(encoder, "set_packet_loss", None)
            reported_loss = -1
            while True:
                try:
                    frame = await mailbox.get()
                except trio.EndOfChannel:
                    source.close()  # the source ended: so does the track (`ended` fires)
                    break
                bitrate, framerate, scale = _encoding_target(sender, _scaled_size(frame, scale))
                if video and sender is not None:
                    down, every = adaptation.step(
                        sender._degradation_preference,
                        bitrate if sender._rtp_sender is not None else None,
                        _scaled_size(frame, scale),
                        trio.current_time(),
                    )
                    if not adaptation.keep(every):
                        stats.dropped += 1
                        continue
                    scale = (scale or 1.0) * down
                if (bitrate, framerate) != target:
                    target = (bitrate, framerate)
                    encoder.set_target(bitrate=bitrate, framerate=framerate)
                if set_packet_loss is not None and sender is not None:
                    rtp_sender = sender._rtp_sender
                    if rtp_sender is not None:
                        lost = rtp_sender.statistics.remote_fraction_lost  # in 1/256
                        if lost != reported_loss:
                            reported_loss = lost
                            set_packet_loss(lost / 256)
                if not track.enabled:
                    frame = _blank_like(frame)
                frame = _scaled(frame, scale)
                keyframe = video and source.keyframe_requested.is_set()
                done = await _encode_in_thread(
                    encoder, frame, keyframe, worker, stats, f"encoder {encoder.mime_type}"
                )
                if done is None:
                    continue
                encoded, seconds = done
                for index, out in enumerate(encoded):
                    stats.count(
                        keyframe=out.keyframe and video,
                        seconds=seconds if index == 0 else 0.0,
                        picture=frame,
                    )
                    if out.qp is not None:
                        stats.qp_sum += out.qp
                        stats.qp_frames += 1
                    try:
                        try:
                            # Without a schedule point when there is room (the next
                            # mailbox.get() parks): one task step less per frame.
                            source.send_nowait(out)
                        except trio.WouldBlock:
                            await source.send(out)  # backpressure from the network
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        return
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            # No codec call is in flight (the calls above wait for theirs); free it in its
            # thread all the same, as closing flushes; then the thread ends.
            try:
                await worker.run(encoder.close)
            finally:
                worker.close()


def codec_for_mime(mime: str, payload_type: int = 0) -> NegotiatedCodec:
    """A NegotiatedCodec for a MIME type ("video/VP8", "audio/opus") with the clock rate and
    channels our capabilities give it (what a relayed frame's ``codec`` names)."""
    kind, _, name = mime.partition("/")
    capabilities = get_capabilities(kind) if kind in ("audio", "video") else None
    for capability in capabilities.codecs if capabilities is not None else ():
        if capability.mimeType.lower() == mime.lower():
            return NegotiatedCodec(payload_type, name, capability.clockRate, capability.channels)
    return NegotiatedCodec(payload_type, name, 90_000 if kind == "video" else 48_000)


class Transcoder:
    """Decodes frames of one codec and encodes them with another (a relayed track sent with a
    codec other than the one it arrived in). ``await transcode(frame)`` returns the encoded
    frames; keyframe requests are honoured at the encoder; a frame the decoder refuses is
    dropped (``stats.errors``) and ``need_keyframe`` set so the caller can ask its source."""

    def __init__(
        self, source_mime: str, target: NegotiatedCodec, *, registry: CodecRegistry | None = None
    ) -> None:
        registry = registry or default_registry
        self.source_mime = source_mime
        source_codec = codec_for_mime(source_mime)
        self._time_base = fractions.Fraction(1, source_codec.clock_rate)
        self._decoder = registry.create_decoder(source_codec)
        try:
            self._encoder = registry.create_encoder(target)
        except BaseException:
            self._decoder.close()
            raise
        self._worker = _codec_thread(
            f"trio_rtc transcoder {source_mime} to {target.name}", source_mime.partition("/")[0]
        )
        self.stats = CodecStats()
        self.need_keyframe = False

    async def transcode(
        self, frame: OutgoingFrame, *, keyframe: bool = False
    ) -> list[OutgoingFrame]:
        encoded = EncodedFrame(frame.data, frame.timestamp or 0, frame.keyframe, 0, 0)
        started = time.perf_counter()
        try:
            pictures = await self._worker.run(self._decoder.decode, encoded)
        except DecodeError:
            self.stats.errors += 1
            self.need_keyframe = True
            return []
        out: list[OutgoingFrame] = []
        for picture in pictures:
            if _is_av_frame(picture):
                # The source's timing goes on: its RTP timestamp in its clock.
                picture.pts = encoded.timestamp
                picture.time_base = self._time_base
            out.extend(
                await self._worker.run(
                    functools.partial(self._encoder.encode, picture, keyframe=keyframe)
                )
            )
            keyframe = False
        self.stats.count(keyframe=False, seconds=time.perf_counter() - started)
        return out

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self._worker.run(self._decoder.close)
                await self._worker.run(self._encoder.close)
            finally:
                self._worker.close()


async def run_decoder(
    track: MediaStreamTrack,
    *,
    receiver: RTCRtpReceiver | None = None,
    registry: CodecRegistry | None = None,
    stats: CodecStats | None = None,
) -> None:
    """Decode the remote ``track``'s assembled frames into its decoded queue until the track
    ends (after the frames queued before the end). A frame the decoder refuses is dropped and
    counted, a keyframe is requested, and decoding goes on.

    The decoder of the receiver's first negotiated codec is opened in the codec's thread as
    this starts, before the first frame. Audio goes through the playout buffer; a frame it
    merges away (time compression) is decoded and cross-faded into the next one, so the
    application gets frames of one length on an unbroken timeline."""
    registry = registry or default_registry
    stats = stats if stats is not None else CodecStats()
    if receiver is not None:
        receiver.decode_stats = stats
    decoders: dict[str, tuple[Decoder, int]] = {}
    worker = _codec_thread(f"trio_rtc decoder {track.kind} {track.id}", track.kind)
    unwrapper = TimestampUnwrapper()
    first_timestamp: int | None = None  # pts count from the first frame
    time_bases: dict[int, fractions.Fraction] = {}
    broken = False  # video: a frame failed to decode, so everything up to a keyframe is skipped

    def clock_rate_of(encoded: EncodedFrame) -> int:
        mime = encoded.codec or ""
        codec = _negotiated_codec(receiver, mime) or codec_for_mime(mime or track.kind)
        return codec.clock_rate

    merging: Any = None  # audio: a decoded frame to cross-fade into the next one

    async def decode(encoded: EncodedFrame, merge: bool = False) -> list[Any] | None:
        """Decode one frame into the track's queue; its pictures (None: no decoder at all).
        ``merge`` (audio, the playout buffer's time compression): keep this frame's sound to
        cross-fade into the next frame's instead of queueing it."""
        nonlocal broken, first_timestamp, merging
        mime = encoded.codec or ""
        entry = decoders.get(mime)
        if entry is None:
            codec = _negotiated_codec(receiver, mime) or codec_for_mime(mime or track.kind)
            try:
                # In the codec's thread: opening a codec (and, the first time, importing PyAV)
                # takes tens of milliseconds, which on the loop would delay every packet that
                # arrives meanwhile (and the playout buffer would take that for jitter).
                decoder = await worker.run(registry.create_decoder, codec)
            except CodecError as exc:
                stats.errors += 1
                track._decode_failed(exc)
                return None
            entry = decoders[mime] = (decoder, codec.clock_rate)
        decoder, clock_rate = entry
        if broken and not encoded.keyframe:
            # The frames after a failed one reference what could not be decoded: they would
            # come out damaged. Wait for the keyframe that was asked for, and ask again
            # (the request is rate-limited): the request or the keyframe may be lost.
            stats.dropped += 1
            track.request_keyframe()
            return []
        broken = False
        started = time.perf_counter()
        try:
            pictures = await worker.run(decoder.decode, encoded)
        except DecodeError as exc:
            stats.errors += 1
            if stats.errors == 1:
                logger.info("decoder %s dropped a frame: %s", decoder.mime_type, exc)
            if track.kind == "video":
                broken = True
                track.request_keyframe()
            return []
        seconds = time.perf_counter() - started
        extended = unwrapper.unwrap(encoded.timestamp)
        if first_timestamp is None:
            first_timestamp = extended
        position = extended - first_timestamp
        time_base = time_bases.get(clock_rate)
        if time_base is None:
            time_base = time_bases[clock_rate] = fractions.Fraction(1, clock_rate)
        if merging is not None and pictures and _is_av_frame(pictures[0]):
            from .concealment import crossfade

            pictures[0] = crossfade(merging, pictures[0])
            merging = None
        if merge and pictures and _is_av_frame(pictures[-1]):
            merging = pictures.pop()
            stats.count(keyframe=False, seconds=seconds, picture=merging)
            seconds = 0.0
        for index, picture in enumerate(pictures):
            if _is_av_frame(picture):
                if playout is not None and isinstance(getattr(picture, "samples", None), int):
                    _stamp_playout(picture)
                else:
                    picture.pts = position
                    picture.time_base = time_base
            stats.count(
                keyframe=encoded.keyframe and track.kind == "video" and index == 0,
                seconds=seconds if index == 0 else 0.0,
                picture=picture,
            )
            track._deliver_decoded(picture, encoded.arrival_time)
        return pictures

    played = 0  # audio samples given to the track (decoded and concealed)

    def _stamp_playout(picture: Any) -> None:
        """Audio through the playout buffer: pts counts the samples played out, concealed
        and inserted ones included, so the timeline has no hole and never goes back."""
        nonlocal played
        rate = picture.sample_rate
        time_base = time_bases.get(rate)
        if time_base is None:
            time_base = time_bases[rate] = fractions.Fraction(1, rate)
        picture.pts = played
        picture.time_base = time_base
        played += picture.samples

    # Audio goes through a playout buffer that times it and conceals what was lost; video
    # is decoded as soon as the frame assembler (its jitter buffer) lets it go.
    playout = _AudioPlayout(track, receiver, clock_rate_of) if track.kind == "audio" else None
    if playout is not None:
        stats.jitter_buffer = playout.buffer_stats
    concealer: Any = None
    try:
        await _open_negotiated_decoder(receiver, track.kind, registry, worker, decoders)
        while True:
            items: list[EncodedFrame] | list[Playout[EncodedFrame]]
            try:
                if playout is None:
                    items = [await track.recv_encoded()]
                else:
                    items = await playout.next_items()
            except trio.EndOfChannel:
                break
            for item in items:
                if isinstance(item, PlayoutFrame):
                    pictures = await decode(item.frame, item.merge)
                elif isinstance(item, Concealment):
                    merging = None  # (the buffer merges a frame only into the next one)
                    if concealer is None or playout is None or first_timestamp is None:
                        continue  # nothing decoded yet: nothing to continue from
                    picture = concealer.conceal(item.samples)
                    _stamp_playout(picture)
                    track._deliver_decoded(picture, None)
                    continue
                else:
                    pictures = await decode(item)
                if pictures is None:
                    return
                if playout is not None and pictures and _is_av_frame(pictures[-1]):
                    if concealer is None:
                        from .concealment import AudioConcealer

                        concealer = AudioConcealer()
                    concealer.observe(pictures[-1])
    finally:
        track._decoded_end()
        with trio.CancelScope(shield=True):
            try:
                for decoder, _ in decoders.values():
                    await worker.run(decoder.close)
            finally:
                worker.close()


async def _open_negotiated_decoder(
    receiver: RTCRtpReceiver | None,
    kind: str,
    registry: CodecRegistry,
    worker: CodecThread,
    decoders: dict[str, tuple[Decoder, int]],
) -> None:
    """Open the decoder of the receiver's first negotiated codec before any frame comes (in
    the codec's thread): at the first frame, opening it (and importing PyAV) would hold that
    frame for tens of milliseconds, and the first frames' delay sets the playout delay's
    start. A codec that cannot be opened is left to the first frame, which reports it."""
    negotiated = receiver._negotiated if receiver is not None else None
    if negotiated is None or not negotiated.media_codecs:
        return
    codec = negotiated.media_codecs[0]
    try:
        decoder = await worker.run(registry.create_decoder, codec)
    except CodecError:
        return
    decoders[f"{kind}/{codec.name}"] = (decoder, codec.clock_rate)


class _AudioPlayout:
    """The audio side of :func:`run_decoder`: frames from the track into an
    :class:`~trio_rtc.rtp.jitter.AudioJitterBuffer`, and out at their playout time (or a
    concealment in place of a lost one). The buffer is made at the first frame, in its codec's
    clock; ``jitterBufferTarget`` of the receiver is its floor."""

    def __init__(
        self,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver | None,
        clock_rate_of: Callable[[EncodedFrame], int],
    ) -> None:
        self._track = track
        self._receiver = receiver
        self._clock_rate_of = clock_rate_of
        self._buffer: AudioJitterBuffer[EncodedFrame] | None = None
        self._ended = False
        self._floor_set: float | None = None
        self.buffer_stats = JitterBufferStats()

    def _floor(self) -> float | None:
        receiver = self._receiver
        target = receiver.jitterBufferTarget if receiver is not None else None
        return None if target is None else target / 1000

    def _put(self, frames: list[EncodedFrame]) -> AudioJitterBuffer[EncodedFrame]:
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = AudioJitterBuffer(self._clock_rate_of(frames[0]))
            buffer.stats = self.buffer_stats
        for encoded in frames:
            arrival = encoded.arrival_time
            buffer.put(
                encoded.timestamp,
                encoded.first_sequence_number,
                encoded,
                arrival if arrival is not None else trio.current_time(),
            )
        return buffer

    async def next_items(self) -> list[Playout[EncodedFrame]]:
        """What is due now, waiting for it; ``EndOfChannel`` once the track ended and the
        buffer is empty (what was queued at the end plays out at once).

        Per frame this is one wake-up at its arrival and one at its slot; each takes every
        frame the track holds at once (their arrival times were stamped by the receiver, so
        a frame put late is still timed right), and the buffer is only asked for what is due
        when its timer says something is."""
        track = self._track
        while True:
            buffer = self._buffer
            arrived = track._take_encoded()
            if arrived:
                buffer = self._put(arrived)
            if buffer is not None:
                floor = self._floor()
                if floor != self._floor_set:
                    buffer.set_minimum_delay(floor)
                    self._floor_set = floor
                now = trio.current_time()
                if self._ended:
                    due: list[Playout[EncodedFrame]] = []
                    while len(buffer):
                        timer = buffer.get_timer()
                        due += buffer.pop(max(now, timer if timer is not None else now))
                    if due:
                        return due
                else:
                    timer = buffer.get_timer()
                    if timer is not None and timer <= now:
                        due = buffer.pop(now)
                        if due:
                            return due
                        continue
            if self._ended:
                raise trio.EndOfChannel
            timer = buffer.get_timer() if buffer is not None else None
            try:
                if timer is None:
                    await track._wait_encoded()
                else:
                    with trio.move_on_at(timer):
                        await track._wait_encoded()
            except trio.EndOfChannel:
                self._ended = True


def _negotiated_codec(receiver: RTCRtpReceiver | None, mime: str) -> NegotiatedCodec | None:
    negotiated = receiver._negotiated if receiver is not None else None
    if negotiated is None or not mime:
        return None
    name = mime.partition("/")[2].lower()
    for codec in negotiated.media_codecs:
        if codec.name.lower() == name:
            return codec
    return None
