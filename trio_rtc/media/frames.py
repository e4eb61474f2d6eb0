"""Raw-frame tracks: the pull protocol aiortc's ``MediaStreamTrack`` uses, on Trio.

A *frame track* is any object with ``kind`` ("audio" or "video") and ``async def recv()``
returning raw frames (``av.VideoFrame`` / ``av.AudioFrame`` with ``pts`` and ``time_base``),
raising :class:`MediaStreamError` once it has ended. aiortc's tracks and sources written for it
fit as they are; ``pc.addTrack`` and ``sender.replaceTrack`` accept one and encode it with the
negotiated codec (the ``media`` extra).

:class:`FrameTrack` is the base class for frame tracks written here (the test sources, the
player): subclass it and implement :meth:`FrameTrack.recv`. ``async for frame in track`` reads
until the end.
"""

from __future__ import annotations

import abc
import uuid
from typing import Any, Literal, Protocol, runtime_checkable

import trio

__all__ = [
    "AudioSource",
    "FrameTrack",
    "FrameTrackLike",
    "MediaStreamError",
    "VideoSource",
    "is_frame_track",
]


class MediaStreamError(trio.EndOfChannel):
    """The track ended: ``recv()`` has nothing more to give.

    The name is aiortc's, so code catching it ports over; it is a ``trio.EndOfChannel`` so Trio
    code catching that works too."""


@runtime_checkable
class FrameTrackLike(Protocol):
    """What ``addTrack`` accepts besides a :class:`~trio_rtc.media.MediaStreamTrack`."""

    kind: str

    async def recv(self) -> Any:
        """The next raw frame; :class:`MediaStreamError` (or ``trio.EndOfChannel``) at the end."""


def is_frame_track(obj: object) -> bool:
    """True for an object with a ``kind`` of "audio"/"video" and a callable ``recv``."""
    return getattr(obj, "kind", None) in ("audio", "video") and callable(getattr(obj, "recv", None))


class FrameTrack(abc.ABC):
    """Base class of a pull-based raw-frame track (see the module docstring).

    ``id`` (a uuid unless given), ``kind``, ``label``, ``readyState``; :meth:`stop` ends it (the
    next ``recv`` raises :class:`MediaStreamError`; a subclass that holds resources frees them
    in :meth:`_on_stop`)."""

    def __init__(self, kind: str, *, label: str = "", id: str | None = None) -> None:
        if kind not in ("audio", "video"):
            raise TypeError(f"kind must be 'audio' or 'video', not {kind!r}")
        self.kind = kind
        self.label = label
        self.id = id or str(uuid.uuid4())
        self._ready_state: Literal["live", "ended"] = "live"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.id} {self._ready_state}>"

    @property
    def readyState(self) -> Literal["live", "ended"]:
        return self._ready_state

    @abc.abstractmethod
    async def recv(self) -> Any:
        """The next frame. Subclasses implement this; raise :class:`MediaStreamError` at the end
        (check :meth:`_check_live` first)."""

    def _check_live(self) -> None:
        if self._ready_state == "ended":
            raise MediaStreamError(f"{type(self).__name__} {self.id} has ended")

    def stop(self) -> None:
        if self._ready_state == "ended":
            return
        self._ready_state = "ended"
        self._on_stop()

    def _on_stop(self) -> None:  # noqa: B027 (a hook: most tracks hold nothing to free)
        """Free what the track holds (called once, from :meth:`stop`)."""

    def __aiter__(self) -> FrameTrack:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class _PushSource(FrameTrack):
    """A frame track the application pushes into: ``await source.send(frame)``."""

    def __init__(self, kind: str, *, max_queue: int, label: str = "") -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue!r}")
        super().__init__(kind, label=label)
        self._send, self._receive = trio.open_memory_channel[Any](max_queue)
        #: Frames the application handed to :meth:`send`.
        self.frames_sent = 0

    async def send(self, frame: Any) -> None:
        """Queue one raw frame, waiting while the queue is full (the encoder is behind, or no
        sender runs yet). ``trio.ClosedResourceError`` after :meth:`close`/:meth:`stop`.

        A frame that finds room is queued with a cancellation point but no schedule point: a
        source paces itself (it sleeps until its next frame, or waits here once the queue is
        full), so yielding after every frame only cost a task step per frame."""
        if self._ready_state == "ended":
            raise trio.ClosedResourceError(f"{type(self).__name__} {self.id} was closed")
        self._check_frame(frame)
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._send.send_nowait(frame)
        except trio.WouldBlock:
            await self._send.send(frame)
        self.frames_sent += 1

    def send_nowait(self, frame: Any) -> None:
        """Queue one raw frame or raise ``trio.WouldBlock`` when the queue is full."""
        if self._ready_state == "ended":
            raise trio.ClosedResourceError(f"{type(self).__name__} {self.id} was closed")
        self._check_frame(frame)
        self._send.send_nowait(frame)
        self.frames_sent += 1

    def _check_frame(self, frame: Any) -> None:
        expected = "VideoFrame" if self.kind == "video" else "AudioFrame"
        name = type(frame).__name__
        if type(frame).__module__.startswith("av.") and name != expected:
            raise TypeError(f"a {self.kind} source takes av.{expected}s, not {frame!r}")

    async def recv(self) -> Any:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise MediaStreamError(f"{type(self).__name__} {self.id} has ended") from None

    def close(self) -> None:
        """No more frames: the reader gets what is queued, then the end (its track ends)."""
        self.stop()

    def _on_stop(self) -> None:
        self._send.close()

    def create_track(self, label: str = "") -> Any:
        """A new live local :class:`~trio_rtc.media.MediaStreamTrack` fed by this source."""
        from .tracks import MediaStreamTrack

        return MediaStreamTrack(self.kind, label or self.label, frames=self)


class VideoSource(_PushSource):
    """Pictures a Trio app makes itself: ``source = VideoSource(); track =
    source.create_track(); pc.addTrack(track); await source.send(frame)`` with ``av.VideoFrame``s
    (any size and pixel format; ``pts``/``time_base`` give their timing, else the time they are
    taken). ``send`` waits while ``max_queue`` frames wait (backpressure); the encoder itself
    keeps only the newest picture when it falls behind."""

    def __init__(self, *, max_queue: int = 2, label: str = "") -> None:
        super().__init__("video", max_queue=max_queue, label=label)


class AudioSource(_PushSource):
    """Sound a Trio app makes itself: ``await source.send(frame)`` with ``av.AudioFrame``s
    (any rate, layout and sample format; resampled to the codec's). ``send`` waits while
    ``max_queue`` frames wait: audio is never dropped or reordered on the way to the encoder."""

    def __init__(self, *, max_queue: int = 10, label: str = "") -> None:
        super().__init__("audio", max_queue=max_queue, label=label)
