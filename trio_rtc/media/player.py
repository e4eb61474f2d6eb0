"""MediaPlayer: a file or URL that FFmpeg reads, as frame tracks (the ``media`` extra).

::

    async with MediaPlayer("talk.mp4", loop=True) as player:
        pc.addTrack(player.video)   # None when the file has no video
        pc.addTrack(player.audio)
        await trio.sleep_forever()  # play until cancelled

How it runs. There is no background task: a track's ``recv()`` pulls. When its queue is empty it
runs one *pump* in a worker thread (``trio.to_thread.run_sync`` with the player's own
``CapacityLimiter(1)``, under a lock shared by both tracks): the pump demuxes packets of the
container (and decodes them, unless ``decode=False``) until it has something for that track,
and what it finds for the other track waits in that track's bounded queue. So the Trio loop
never touches FFmpeg, both tracks share one demuxer, and nothing runs ahead of the readers. A
thread call is never abandoned: a cancelled ``recv`` waits for the pump it started (one packet's
worth of work), so cancellation leaves no thread working on the container.

Queues. The queue of a track nobody reads keeps the newest frames (video: 8, audio: 50, i.e.
1 s; older ones are dropped and counted in ``frames_dropped``); an encoded video queue that
overflows drops everything up to the next keyframe.

Timestamps and pacing. Video frames get ``pts`` in 1/90000 from the start of the file; audio is
resampled to ``s16`` 48 kHz (mono, or stereo for two or more channels) in 20 ms frames with
``pts`` in samples. With ``realtime=True`` (the default) a frame is returned when its time comes
on Trio's clock, counted from when the player returned its first frame (both tracks share that
origin, which keeps them in sync); ``realtime=False`` returns frames as fast as they are read
(and is right for capture devices, which pace themselves). ``loop=True`` seeks back to the start
at the end of the file, and timestamps keep increasing across the loops.

The end. Once the file is exhausted (without ``loop``) every track's ``recv`` raises
:class:`~trio_rtc.media.frames.MediaStreamError` after its queued frames, and the container is
closed. ``stop()`` on every track, :meth:`MediaPlayer.close` or leaving ``async with`` close it
earlier. The constructor opens the container synchronously (fine for a file); for a network URL
use ``await MediaPlayer.open(url, ...)``, which opens it in a worker thread.

``decode=False`` (relay a file without re-encoding). The tracks then return the stream's packets
as :class:`~trio_rtc.media.OutgoingFrame` objects (``data``, ``keyframe``, ``timestamp`` in the
RTP clock from the start, ``codec`` MIME type), ready for ``await source.send(frame)`` on an
:class:`~trio_rtc.media.EncodedSource`. Only codecs WebRTC carries are offered (a stream of any
other codec gives no track): VP8, VP9, H.264 (converted to Annex B from the ``avcC`` form of
mp4/mkv files with the stream's SPS/PPS put before each keyframe; a stream with B-frames plays
but browsers do not expect them), AV1 (the ``av1C`` sequence header put before each keyframe
that lacks one), Opus, and G.711 (PCMU/PCMA, in whatever packet sizes the file has).
"""

from __future__ import annotations

import logging
from collections import deque
from fractions import Fraction
from types import TracebackType
from typing import Any

import av
import av.container
import trio

from ..rtp.codecs.av1 import OBU_SEQUENCE_HEADER, split_obus
from .frames import FrameTrack, MediaStreamError
from .tracks import OutgoingFrame

__all__ = ["PASSTHROUGH_CODECS", "MediaPlayer", "PlayerTrack", "avcc_to_annexb"]

logger = logging.getLogger(__name__)

#: Codec (FFmpeg name) → (MIME type, RTP clock rate) that ``decode=False`` passes through.
PASSTHROUGH_CODECS: dict[str, tuple[str, int]] = {
    "vp8": ("video/VP8", 90000),
    "vp9": ("video/VP9", 90000),
    "h264": ("video/H264", 90000),
    "av1": ("video/AV1", 90000),
    "opus": ("audio/opus", 48000),
    "pcm_mulaw": ("audio/PCMU", 8000),
    "pcm_alaw": ("audio/PCMA", 8000),
}

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_FRAME_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
VIDEO_QUEUE = 8
AUDIO_QUEUE = 50
_PUMP_BATCH = 64  # most items one pump hands back
_START_CODE = b"\x00\x00\x00\x01"


def _parse_avcc(extradata: bytes) -> tuple[int, list[bytes]]:
    """NAL length size and the SPS+PPS NAL units of an ``avcC`` record (ISO 14496-15 §5.3.3)."""
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (extradata[4] & 3) + 1
    nals: list[bytes] = []
    offset = 5
    for count_mask in (0x1F, 0xFF):  # SPS count has 5 bits, PPS count 8
        count = extradata[offset] & count_mask
        offset += 1
        for _ in range(count):
            size = int.from_bytes(extradata[offset : offset + 2], "big")
            nal = extradata[offset + 2 : offset + 2 + size]
            if len(nal) != size:
                raise ValueError("truncated avcC record")
            nals.append(nal)
            offset += 2 + size
    return length_size, nals


def _opus_samples(packet: bytes) -> int | None:
    """Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return None
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        per_frame = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:  # hybrid: 10, 20 ms
        per_frame = (480, 960)[config % 2]
    else:  # CELT: 2.5, 5, 10, 20 ms
        per_frame = (120, 240, 480, 960)[config % 4]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    elif len(packet) < 2:
        return None
    else:
        frames = packet[1] & 0x3F
    return per_frame * frames


def avcc_to_annexb(data: bytes, length_size: int) -> list[bytes]:
    """The NAL units of a length-prefixed (AVCC) H.264 access unit."""
    nals: list[bytes] = []
    offset = 0
    while offset + length_size <= len(data):
        size = int.from_bytes(data[offset : offset + length_size], "big")
        offset += length_size
        if size == 0 or offset + size > len(data):
            break
        nals.append(data[offset : offset + size])
        offset += size
    return nals


class _H264ToAnnexB:
    """Turns one stream's H.264 packets into Annex B access units, SPS/PPS before keyframes."""

    def __init__(self, extradata: bytes | None) -> None:
        self.length_size = 0  # 0: already Annex B
        self.parameter_sets = b""
        if extradata and extradata[0] == 1:
            self.length_size, nals = _parse_avcc(extradata)
            self.parameter_sets = b"".join(_START_CODE + nal for nal in nals)
        elif extradata:
            self.parameter_sets = extradata

    def convert(self, data: bytes, keyframe: bool) -> bytes:
        if self.length_size:
            nals = avcc_to_annexb(data, self.length_size)
            has_sps = any(nal and nal[0] & 0x1F == 7 for nal in nals)
            out = b"".join(_START_CODE + nal for nal in nals)
        else:
            out = data
            has_sps = b"\x00\x00\x01\x67" in data[:64] or b"\x00\x00\x01\x27" in data[:64]
        if keyframe and not has_sps:
            out = self.parameter_sets + out
        return out


class _Av1Prefix:
    """Puts the ``av1C`` configuration OBUs (the sequence header) before keyframes lacking it."""

    def __init__(self, extradata: bytes | None) -> None:
        self.config = extradata[4:] if extradata and len(extradata) > 4 else b""

    def convert(self, data: bytes, keyframe: bool) -> bytes:
        if not keyframe or not self.config:
            return data
        try:
            types = {(header >> 3) & 0xF for header, _ext, _payload in split_obus(data)}
        except Exception:
            return data
        return data if OBU_SEQUENCE_HEADER in types else self.config + data


class _StreamState:
    """Per-stream timestamp bookkeeping in the worker thread."""

    def __init__(self, stream: Any, kind: str, clock: int) -> None:
        self.stream = stream
        self.kind = kind
        self.clock = clock  # the output timestamp clock (90000, 48000, 8000)
        self.pass_first: int | None = None  # first raw pts of the current pass (stream units)
        self.base = 0  # output timestamp of the current pass's first frame
        self.end = 0  # output timestamp just after the last frame emitted
        self.last_step = 0  # duration of the last frame, output units
        self.converter: Any = None
        self.mime = ""

    def stamp(self, raw: int | None, duration: int | None) -> int:
        """The output timestamp of a frame/packet with raw pts ``raw`` (stream time base)."""
        time_base = self.stream.time_base or Fraction(1, self.clock)
        if raw is None:
            out = self.end
        else:
            if self.pass_first is None:
                self.pass_first = raw
            out = self.base + round((raw - self.pass_first) * time_base * self.clock)
        if duration:
            step = round(duration * time_base * self.clock)
        else:
            rate = getattr(self.stream, "average_rate", None)
            step = round(self.clock / rate) if rate else self.last_step or 1
        self.last_step = max(step, 1)
        self.end = max(self.end, out + self.last_step)
        return out

    def new_pass(self) -> None:
        self.pass_first = None
        self.base = self.end


class PlayerTrack(FrameTrack):
    """One of a :class:`MediaPlayer`'s tracks (``player.audio`` / ``player.video``)."""

    def __init__(self, player: MediaPlayer, kind: str) -> None:
        super().__init__(kind, label=f"MediaPlayer {kind}")
        self._player = player
        # (item, media time in seconds, keyframe)
        self._queue: deque[tuple[Any, float, bool]] = deque()
        self._limit = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        self._skip_to_keyframe = False
        self.frames_dropped = 0

    @property
    def player(self) -> MediaPlayer:
        return self._player

    def _push(self, item: Any, at: float, keyframe: bool) -> None:
        queue = self._queue
        if self._player.decode or self.kind == "audio":
            if len(queue) >= self._limit:
                queue.popleft()
                self.frames_dropped += 1
            queue.append((item, at, keyframe))
            return
        # Encoded video: frames reference the ones before, so drop up to a keyframe.
        if self._skip_to_keyframe and not keyframe:
            self.frames_dropped += 1
            return
        self._skip_to_keyframe = False
        if len(queue) >= self._limit:
            self.frames_dropped += len(queue) + (0 if keyframe else 1)
            queue.clear()
            if not keyframe:
                self._skip_to_keyframe = True
                return
        queue.append((item, at, keyframe))

    async def recv(self) -> Any:
        """The next frame (decoded ``av`` frame, or :class:`OutgoingFrame` with
        ``decode=False``), when its time comes; :class:`MediaStreamError` at the end."""
        player = self._player
        while True:
            self._check_live()
            if self._queue:
                item, at, _keyframe = self._queue[0]
                if player.realtime:
                    due = player._due(at)
                    if due > trio.current_time():
                        # Peek, sleep, look again: a cancelled sleep loses no frame.
                        await trio.sleep_until(due)
                        continue
                await trio.lowlevel.checkpoint()
                self._check_live()
                if self._queue and self._queue[0][0] is item:
                    self._queue.popleft()
                    return item
                continue
            if player._ended:
                self.stop()
                raise MediaStreamError(f"the MediaPlayer's {self.kind} has ended")
            await player._fill(self)

    def _on_stop(self) -> None:
        self._queue.clear()
        self._player._track_stopped(self)


class MediaPlayer:
    """Plays a file or URL that FFmpeg reads as :attr:`audio` and :attr:`video` frame tracks
    (see the module docstring for the threading, pacing and ``decode=False`` details).

    ``format`` and ``options`` go to ``av.open`` (e.g. ``format="v4l2", options={"video_size":
    "640x480"}``); ``timeout`` (seconds) too. ``loop`` needs a seekable input."""

    def __init__(
        self,
        file: Any,
        format: str | None = None,
        options: dict[str, str] | None = None,
        *,
        loop: bool = False,
        realtime: bool = True,
        decode: bool = True,
        timeout: float | None = None,
    ) -> None:
        container = av.open(file, mode="r", format=format, options=options or {}, timeout=timeout)
        self._setup(container, loop=loop, realtime=realtime, decode=decode)

    @classmethod
    async def open(
        cls,
        file: Any,
        format: str | None = None,
        options: dict[str, str] | None = None,
        *,
        loop: bool = False,
        realtime: bool = True,
        decode: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 - FFmpeg's I/O timeout, for av.open
    ) -> MediaPlayer:
        """Like the constructor, but ``av.open`` (which may wait on the network) runs in a
        worker thread."""
        container = await trio.to_thread.run_sync(
            lambda: av.open(file, mode="r", format=format, options=options or {}, timeout=timeout)
        )
        player = cls.__new__(cls)
        player._setup(container, loop=loop, realtime=realtime, decode=decode)
        return player

    def _setup(
        self, container: av.container.InputContainer, *, loop: bool, realtime: bool, decode: bool
    ) -> None:
        self._container: av.container.InputContainer | None = container
        self.loop = loop
        self.realtime = realtime
        self.decode = decode
        self._limiter = trio.CapacityLimiter(1)
        self._lock = trio.Lock()
        self._busy = False
        self._ended = False
        self._origin: float | None = None
        self._states: dict[int, _StreamState] = {}
        self._tracks: dict[str, PlayerTrack] = {}
        self._demux: Any = None
        self._resampler: Any = None
        self._audio_samples = 0
        self._loops = 0
        for kind, streams in (
            ("video", container.streams.video),
            ("audio", container.streams.audio),
        ):
            for stream in streams:
                name = stream.codec_context.name
                if decode:
                    clock = 90000 if kind == "video" else AUDIO_RATE
                elif name in PASSTHROUGH_CODECS:
                    clock = PASSTHROUGH_CODECS[name][1]
                else:
                    continue
                state = _StreamState(stream, kind, clock)
                if not decode:
                    state.mime = PASSTHROUGH_CODECS[name][0]
                    extradata = stream.codec_context.extradata
                    if name == "h264":
                        state.converter = _H264ToAnnexB(extradata)
                    elif name == "av1":
                        state.converter = _Av1Prefix(extradata)
                elif kind == "video":
                    stream.codec_context.thread_type = "AUTO"  # FFmpeg's own decoding threads
                self._states[stream.index] = state
                self._tracks[kind] = PlayerTrack(self, kind)
                break
        if loop and container.duration is None:
            logger.warning(
                "MediaPlayer(%s): loop=True on an input of unknown duration", _file_name(container)
            )
        if not self._tracks:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._container is None else "open"
        return f"<MediaPlayer {state} tracks={sorted(self._tracks)}>"

    @property
    def audio(self) -> PlayerTrack | None:
        """The audio track, None when the input has none (or none to pass through)."""
        return self._tracks.get("audio")

    @property
    def video(self) -> PlayerTrack | None:
        """The video track, None when the input has none (or none to pass through)."""
        return self._tracks.get("video")

    @property
    def closed(self) -> bool:
        return self._container is None

    @property
    def loops(self) -> int:
        """How many times playback went back to the start (``loop=True``)."""
        return self._loops

    # --- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """End both tracks and close the container (at once, or as soon as the pump now
        running in a worker thread returns)."""
        self._ended = True
        for track in tuple(self._tracks.values()):
            track.stop()
        self._close_container()

    def _close_container(self) -> None:
        if self._busy or self._container is None:
            return  # _fill closes it when the thread returns
        container, self._container = self._container, None
        self._demux = None
        container.close()

    async def aclose(self) -> None:
        """:meth:`close`, after waiting for a running pump to return (it cannot be abandoned)."""
        self.close()
        with trio.CancelScope(shield=True):
            async with self._lock:
                self._close_container()

    async def __aenter__(self) -> MediaPlayer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _track_stopped(self, track: PlayerTrack) -> None:
        if all(t.readyState == "ended" for t in self._tracks.values()):
            self._ended = True
            self._close_container()

    # --- pacing ----------------------------------------------------------------------------

    def _closing(self) -> bool:
        return self._ended

    def _due(self, at: float) -> float:
        if self._origin is None:
            self._origin = trio.current_time() - at
        return self._origin + at

    # --- pumping ---------------------------------------------------------------------------

    async def _fill(self, track: PlayerTrack) -> None:
        """Run one pump in the worker thread unless the track got something meanwhile."""
        async with self._lock:
            if track._queue or self._ended or self._container is None:
                if self._container is None:
                    self._ended = True
                return
            self._busy = True
            try:
                items, ended, again = await trio.to_thread.run_sync(
                    self._pump, track.kind, limiter=self._limiter
                )
            finally:
                self._busy = False
                if self._closing():
                    self._close_container()  # close() came while the thread ran
            for kind, item, at, keyframe in items:
                target = self._tracks.get(kind)
                if target is not None and target.readyState == "live":
                    target._push(item, at, keyframe)
            if ended:
                self._ended = True
                self._close_container()
            elif again and not items:
                await trio.sleep(0.01)  # a live input with nothing yet (EAGAIN)

    def _pump(self, want: str) -> tuple[list[tuple[str, Any, float, bool]], bool, bool]:
        """Worker thread: demux (and decode) until there is an item for ``want``.

        Returns (items as (kind, item, media seconds, keyframe), the input ended, EAGAIN)."""
        container = self._container
        assert container is not None
        items: list[tuple[str, Any, float, bool]] = []
        wanted = False
        live = {t.kind for t in self._tracks.values() if t.readyState == "live"}
        streams = [s.stream for s in self._states.values()]
        while not wanted and len(items) < _PUMP_BATCH:
            if self._demux is None:
                self._demux = container.demux(*streams)
            try:
                packet = next(self._demux)
            except StopIteration:
                self._demux = None
                if self.decode:
                    items.extend(self._flush_audio(final=not self.loop))
                if not self.loop or container.duration is None:
                    return items, True, False
                container.seek(0)
                self._loops += 1
                for state in self._states.values():
                    state.new_pass()
                continue
            except av.error.BlockingIOError:
                return items, False, True
            except av.error.EOFError:
                return items, True, False
            except av.error.FFmpegError as exc:
                logger.warning("MediaPlayer: reading %s failed: %s", _file_name(container), exc)
                return items, True, False
            stream_state = self._states.get(packet.stream.index)
            if stream_state is None or stream_state.kind not in live:
                continue
            produced = (
                self._decode_packet(stream_state, packet)
                if self.decode
                else self._pass_packet(stream_state, packet)
            )
            for item in produced:
                wanted = wanted or item[0] == want
            items.extend(produced)
        return items, False, False

    def _pass_packet(self, state: _StreamState, packet: Any) -> list[tuple[str, Any, float, bool]]:
        if packet.size == 0:
            return []
        data = bytes(packet)
        keyframe = bool(packet.is_keyframe) or state.kind == "audio"
        if state.converter is not None:
            data = state.converter.convert(data, keyframe)
        if state.kind == "audio":
            # Audio timestamps count samples: exact and gapless, whatever the container's
            # time base (WebM's milliseconds would jitter by ±48).
            timestamp = state.end
            samples = _opus_samples(data) if state.mime == "audio/opus" else None
            if samples is None:
                samples = len(data) if state.clock == 8000 else 960
            state.end += samples
            frame = OutgoingFrame(data, True, timestamp, codec=state.mime)
            return [(state.kind, frame, timestamp / state.clock, True)]
        timestamp = state.stamp(packet.pts, packet.duration)
        # Pace in decode order: a packet is needed before the frames that reference it.
        at = timestamp / state.clock
        if packet.dts is not None and packet.pts is not None and packet.dts < packet.pts:
            at -= float((packet.pts - packet.dts) * state.stream.time_base)
        frame = OutgoingFrame(data, keyframe, timestamp, codec=state.mime)
        return [(state.kind, frame, max(at, 0.0), keyframe)]

    def _decode_packet(
        self, state: _StreamState, packet: Any
    ) -> list[tuple[str, Any, float, bool]]:
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            if isinstance(exc, av.error.EOFError):
                return []
            logger.debug("MediaPlayer: dropping a packet that does not decode: %s", exc)
            return []
        out: list[tuple[str, Any, float, bool]] = []
        for frame in frames:
            if state.kind == "video":
                frame.pts = state.stamp(frame.pts, frame.duration)
                frame.time_base = VIDEO_TIME_BASE
                out.append(("video", frame, frame.pts / 90000, frame.key_frame))
            else:
                out.extend(self._resample(frame))
        return out

    def _resample(self, frame: Any) -> list[tuple[str, Any, float, bool]]:
        if self._resampler is None:
            layout = "mono" if frame.layout.nb_channels == 1 else "stereo"
            self._resampler = av.AudioResampler(
                format="s16", layout=layout, rate=AUDIO_RATE, frame_size=AUDIO_FRAME_SAMPLES
            )
        frame.pts = None  # the resampler counts samples; we stamp them ourselves
        return self._stamp_audio(self._resampler.resample(frame))

    def _flush_audio(self, *, final: bool) -> list[tuple[str, Any, float, bool]]:
        if self._resampler is None or not final:
            return []
        return self._stamp_audio(self._resampler.resample(None))

    def _stamp_audio(self, frames: list[Any]) -> list[tuple[str, Any, float, bool]]:
        out: list[tuple[str, Any, float, bool]] = []
        for frame in frames:
            frame.pts = self._audio_samples
            frame.time_base = AUDIO_TIME_BASE
            self._audio_samples += frame.samples
            out.append(("audio", frame, frame.pts / AUDIO_RATE, True))
        return out


def _file_name(container: Any) -> str:
    return str(getattr(container, "name", "?"))
