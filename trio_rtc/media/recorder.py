"""MediaRecorder: frame tracks to a file, audio and video muxed (the ``media`` extra).

Two Trio-style ways to run it::

    recorder = MediaRecorder("call.mp4")
    recorder.addTrack(remote_video)   # any frame track; a remote MediaStreamTrack too
    recorder.addTrack(remote_audio)

    async with recorder:              # records while the body runs
        await trio.sleep(10)
    # here the file is flushed and closed: also when the body raised or was cancelled

    await recorder.run()              # or: record until every track has ended

``run`` also fits ``await nursery.start(recorder.run)`` (it returns from ``start`` once the file is
open) with :meth:`MediaRecorder.stop` to end it from elsewhere. The file is opened when
recording starts, not in the constructor.

Each track is read by its own task; encoding and muxing run in a worker thread
(``trio.to_thread.run_sync`` with the recorder's ``CapacityLimiter(1)``: one container, one
thread at a time). The calls are never abandoned, so cancelling waits for at most one frame's
encode; the final flush (the encoders' delayed frames, the trailer, closing the file) runs
shielded, so a cancelled recording is still a complete file.

Codecs by container: ``webm`` VP8 + Opus, ``ogg`` Opus, ``wav`` PCM, ``mp3`` MP3, an image
sequence (``frame-%3d.png``) PNG, anything else (mp4, mov, mkv, ...) H.264 (libx264) + AAC, or
the container's default codec; ``addTrack(track, codec=...)`` overrides. A video stream takes the
size of the track's first frame (later frames are scaled to it).

Timing. A container's streams must all be known before anything is written, so recording starts
when every track has given its first frame (or ended), or ``first_frame_timeout`` seconds after
the first one did: a track still silent then is left out (with a warning). Each track's
timestamps count from its first frame's ``pts``, placed at the Trio time that frame arrived
relative to the first frame of all, which keeps audio and video in sync; timestamps that go
backwards are nudged forward, so the encoders always see increasing ones.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from types import TracebackType
from typing import Any

import av
import av.container
import trio

__all__ = ["MediaRecorder"]

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90000)
_VIDEO_CODECS = {"webm": "libvpx", "image2": "png", "ogg": None, "wav": None, "mp3": None}
_AUDIO_CODECS = {
    "webm": "libopus",
    "ogg": "libopus",
    "opus": "libopus",
    "wav": "pcm_s16le",
    "mp3": "libmp3lame",
    "image2": None,
}


class _TrackContext:
    """One recorded track: its stream and timestamp state (the stream is used in the thread)."""

    def __init__(self, track: Any, codec: str | None, options: dict[str, str] | None) -> None:
        self.track = track
        self.kind: str = track.kind
        self.codec = codec
        self.options = options
        self.stream: Any = None
        self.first_frame: Any = None
        self.first_pts: int | None = None
        self.offset = 0.0  # seconds from the recording's start to this track's first frame
        self.last_pts: int | None = None  # video: last pts given to the encoder (1/90000)
        self.next_pts = 0  # audio: where the last frame ended (1/sample rate)
        self.excluded = False
        self.frames = 0


class MediaRecorder:
    """Records frame tracks into ``file`` (a path or file-like object; ``format`` and ``options``
    go to ``av.open``). See the module docstring for the ways to run it and what it writes.

    ``frames_recorded`` counts the frames encoded per track id."""

    def __init__(
        self,
        file: Any,
        format: str | None = None,
        options: dict[str, str] | None = None,
        *,
        first_frame_timeout: float = 5.0,
    ) -> None:
        self._file = file
        self._format = format
        self._options = options or {}
        self._first_frame_timeout = first_frame_timeout
        self._contexts: list[_TrackContext] = []
        self._container: av.container.OutputContainer | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._stop_scope = trio.CancelScope()
        self._state = "new"  # new -> running -> closed
        self._ready = trio.Event()
        self._first_arrival: float | None = None
        self._streams_lock = trio.Lock()
        self._streams_open = False
        self._nursery_cm: Any = None
        self.frames_recorded: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<MediaRecorder {self._state} tracks={len(self._contexts)}>"

    def addTrack(
        self, track: Any, *, codec: str | None = None, options: dict[str, str] | None = None
    ) -> None:
        """Record ``track`` (a frame track: ``kind`` and ``async recv()`` of ``av`` frames).
        ``codec`` (an FFmpeg encoder name) and ``options`` (its options) override the choice
        by container. Only before recording starts."""
        if self._state != "new":
            raise RuntimeError("addTrack() comes before the recording starts")
        if getattr(track, "kind", None) not in ("audio", "video") or not callable(
            getattr(track, "recv", None)
        ):
            raise TypeError(f"MediaRecorder records frame tracks, not {track!r}")
        if any(ctx.track is track for ctx in self._contexts):
            return
        self._contexts.append(_TrackContext(track, codec, options))
        self.frames_recorded.setdefault(str(getattr(track, "id", id(track))), 0)

    # --- running ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record until every track has ended or :meth:`stop` is called; then flush and close
        the file (also when cancelled)."""
        if self._state != "new":
            raise RuntimeError("a MediaRecorder records once")
        self._state = "running"
        try:
            self._container = await trio.to_thread.run_sync(self._open, limiter=self._limiter)
            if not self._contexts:
                self._ready.set()
            with self._stop_scope:
                async with trio.open_nursery() as nursery:
                    for ctx in self._contexts:
                        nursery.start_soon(self._read_track, ctx)
                    task_status.started()
        finally:
            self._state = "closed"
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._finish, limiter=self._limiter)

    def stop(self) -> None:
        """End the recording: the readers stop and :meth:`run` flushes, closes and returns."""
        self._stop_scope.cancel()

    async def __aenter__(self) -> MediaRecorder:
        if self._nursery_cm is not None:
            raise RuntimeError("this MediaRecorder is already running")
        self._nursery_cm = trio.open_nursery()
        nursery = await self._nursery_cm.__aenter__()
        try:
            await nursery.start(self.run)
        except BaseException as exc:
            cm, self._nursery_cm = self._nursery_cm, None
            if not await cm.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        cm, self._nursery_cm = self._nursery_cm, None
        assert cm is not None
        self.stop()
        return bool(await cm.__aexit__(exc_type, exc, tb))

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    # --- the readers -----------------------------------------------------------------------

    async def _read_track(self, ctx: _TrackContext) -> None:
        try:
            first = await ctx.track.recv()
        except trio.EndOfChannel:
            ctx.excluded = True
            self._check_ready()
            return
        self._check_frame(ctx, first)
        now = trio.current_time()
        if self._first_arrival is None:
            self._first_arrival = now
        ctx.offset = now - self._first_arrival
        ctx.first_frame = first
        self._check_ready()
        with trio.move_on_at(self._first_arrival + self._first_frame_timeout):
            await self._ready.wait()
        if not self._ready.is_set():
            for other in self._contexts:
                if other.first_frame is None and not other.excluded:
                    other.excluded = True
                    logger.warning(
                        "MediaRecorder: no frame from %r within %.1f s: not recorded",
                        other.track,
                        self._first_frame_timeout,
                    )
            self._ready.set()
        if ctx.excluded:
            return
        async with self._streams_lock:
            if not self._streams_open:
                await trio.to_thread.run_sync(self._open_streams, limiter=self._limiter)
                self._streams_open = True
        if ctx.stream is None:
            return
        frame = first
        while True:
            await trio.to_thread.run_sync(self._encode, ctx, frame, limiter=self._limiter)
            self.frames_recorded[str(getattr(ctx.track, "id", id(ctx.track)))] = ctx.frames
            try:
                frame = await ctx.track.recv()
            except trio.EndOfChannel:
                return
            self._check_frame(ctx, frame)

    def _check_ready(self) -> None:
        if all(ctx.first_frame is not None or ctx.excluded for ctx in self._contexts):
            self._ready.set()

    @staticmethod
    def _check_frame(ctx: _TrackContext, frame: Any) -> None:
        wanted = av.VideoFrame if ctx.kind == "video" else av.AudioFrame
        if not isinstance(frame, wanted):
            raise TypeError(f"a {ctx.kind} track gave {frame!r}, not an {wanted.__name__}")

    # --- the worker thread -----------------------------------------------------------------

    def _open(self) -> av.container.OutputContainer:
        return av.open(self._file, mode="w", format=self._format, options=self._options)

    def _codec_for(self, ctx: _TrackContext, container: av.container.OutputContainer) -> str | None:
        if ctx.codec:
            return ctx.codec
        name = container.format.name
        table = _VIDEO_CODECS if ctx.kind == "video" else _AUDIO_CODECS
        if name in table:
            return table[name]
        default = (
            container.default_video_codec if ctx.kind == "video" else container.default_audio_codec
        )
        if (
            ctx.kind == "video"
            and default in ("h264", "libx264")
            and "libx264" in av.codecs_available
        ):
            return "libx264"
        if ctx.kind == "audio" and default in ("aac", "ac3", "mp2"):
            return "aac"
        return None if default in (None, "none") else default

    def _open_streams(self) -> None:
        container = self._container
        assert container is not None
        for ctx in self._contexts:
            if ctx.excluded or ctx.first_frame is None:
                continue
            codec = self._codec_for(ctx, container)
            if codec is None:
                logger.warning("MediaRecorder: %s cannot hold %s", container.format.name, ctx.kind)
                ctx.excluded = True
                continue
            first = ctx.first_frame
            if ctx.kind == "video":
                stream: Any = container.add_stream(codec, rate=30)
                stream.width = max(2, first.width - first.width % 2)
                stream.height = max(2, first.height - first.height % 2)
                stream.pix_fmt = "rgb24" if codec == "png" else "yuv420p"
                stream.codec_context.time_base = VIDEO_TIME_BASE
                stream.time_base = VIDEO_TIME_BASE
                options = dict(ctx.options or {})
                if codec == "libx264":
                    options.setdefault("preset", "veryfast")
                elif codec == "libvpx":
                    options.setdefault("deadline", "realtime")
                    options.setdefault("cpu-used", "8")
                    stream.bit_rate = 1_000_000
                stream.options = options
            else:
                rate = 48000 if "opus" in codec else first.sample_rate
                stream = container.add_stream(codec, rate=rate)
                stream.layout = "mono" if first.layout.nb_channels == 1 else "stereo"
                if ctx.options:
                    stream.options = dict(ctx.options)
            ctx.stream = stream
            ctx.first_pts = first.pts

    def _encode(self, ctx: _TrackContext, frame: Any) -> None:
        container = self._container
        if container is None or ctx.stream is None:
            return
        stream = ctx.stream
        seconds = ctx.offset
        if frame.pts is not None and ctx.first_pts is not None and frame.time_base is not None:
            seconds += float((frame.pts - ctx.first_pts) * frame.time_base)
        if ctx.kind == "video":
            out = frame.reformat(stream.width, stream.height, stream.pix_fmt)
            if out is frame:
                out = _copy_video(frame)  # the frame may be shared (a relay): never touch it
            pts = max(0, round(seconds * 90000))
            if ctx.last_pts is not None and pts <= ctx.last_pts:
                pts = ctx.last_pts + 1
            ctx.last_pts = pts
            out.pts = pts
            out.time_base = VIDEO_TIME_BASE
            out.pict_type = 0  # let the encoder choose (a decoded frame keeps its own type)
        else:
            out = _copy_audio(frame)
            rate = frame.sample_rate
            pts = max(0, round(seconds * rate))
            if pts < ctx.next_pts or pts - ctx.next_pts < frame.samples // 2:
                pts = ctx.next_pts  # overlapping or jittery: keep the audio contiguous
            ctx.next_pts = pts + frame.samples
            out.pts = pts
            out.time_base = Fraction(1, rate)
        for packet in stream.encode(out):
            container.mux(packet)
        ctx.frames += 1

    def _finish(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            for ctx in self._contexts:
                if ctx.stream is not None and ctx.frames:
                    try:
                        for packet in ctx.stream.encode(None):
                            container.mux(packet)
                    except av.error.FFmpegError as exc:
                        logger.warning("MediaRecorder: flushing %s failed: %s", ctx.kind, exc)
        finally:
            container.close()


def _copy_video(frame: av.VideoFrame) -> av.VideoFrame:
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for source, target in zip(frame.planes, copy.planes, strict=True):
        if source.line_size == target.line_size:
            target.update(bytes(source))
        else:
            rows = min(source.line_size, target.line_size)
            data = memoryview(source).cast("B")
            target.update(
                b"".join(
                    bytes(data[y * source.line_size : y * source.line_size + rows]).ljust(
                        target.line_size, b"\0"
                    )
                    for y in range(target.height)
                )
            )
    return copy


def _copy_audio(frame: av.AudioFrame) -> av.AudioFrame:
    copy = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=frame.samples)
    for source, target in zip(frame.planes, copy.planes, strict=True):
        data = bytes(source)[: target.buffer_size]
        target.update(data.ljust(target.buffer_size, b"\0"))
    copy.sample_rate = frame.sample_rate
    return copy
