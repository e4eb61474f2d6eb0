"""MediaRelay: one track to many consumers (the ``media`` extra).

::

    async with MediaRelay() as relay:
        for pc in viewers:
            pc.addTrack(relay.subscribe(remote_video))   # no decode, no re-encode
        await trio.sleep_forever()  # relay until cancelled

A relay reads each source track once, in a task of its own nursery (so it is an ``async with``
object; leaving the block stops the reading and ends every subscriber's track), and hands
every subscriber its own copy:

- **A remote** :class:`~trio_rtc.media.MediaStreamTrack` (what a receiver gives): its *encoded*
  frames are fanned out without decoding. ``subscribe`` returns a new local
  ``MediaStreamTrack`` fed by its own :class:`~trio_rtc.media.EncodedSource`; every frame is an
  :class:`~trio_rtc.media.OutgoingFrame` whose ``codec`` is the source's MIME type (a sender that
  negotiated another codec transcodes). A subscriber whose source is full (its sender is slow)
  drops frames instead of slowing the others, and for video keeps dropping until the next
  keyframe (frames after a gap would not decode), asking the source for one. Keyframe requests
  of a subscriber's sender (PLI/FIR, a sender starting) go to the source track
  (``request_keyframe()``, which the receiver rate-limits), and so does a new subscription.
- **A frame track** (``recv()`` giving raw ``av`` frames, e.g. a
  :class:`~trio_rtc.media.player.MediaPlayer` track): ``subscribe`` returns a
  :class:`RelayedFrameTrack`. Its bounded queue keeps the newest frames (``buffered=True``:
  8 video or 50 audio frames, ``False``: only the latest one); frames are never reordered.
  Subscribers share the frame objects: treat them as read-only.

``subscribe(track, encoded=False)`` relays a remote track's decoded frames instead (the
``recv()`` the receiver offers). A subscriber stops by ``stop()``-ping its track; when the
source ends, every subscriber's track ends after what it has queued. A source with no
subscribers left is no longer read.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import Any

import trio

from .frames import FrameTrack, MediaStreamError
from .tracks import DEFAULT_SOURCE_QUEUE, EncodedSource, MediaStreamTrack, OutgoingFrame

__all__ = ["MediaRelay", "RelayedFrameTrack"]

#: Frames a buffered frame-track subscriber keeps, by kind.
FRAME_QUEUE = {"video": 8, "audio": 50}


class RelayedFrameTrack(FrameTrack):
    """A subscriber's frame track: a bounded queue the relay's reader fills."""

    def __init__(self, source: Any, *, limit: int) -> None:
        super().__init__(
            source.kind, label=f"relay of {getattr(source, 'label', '') or source.kind}"
        )
        self.source = source
        self._frames: deque[Any] = deque()
        self._limit = limit
        self._readers = trio.lowlevel.ParkingLot()
        self._source_ended = False
        #: Frames dropped because this subscriber did not keep up.
        self.frames_dropped = 0

    @property
    def queued_frames(self) -> int:
        return len(self._frames)

    def _push(self, frame: Any) -> None:
        if len(self._frames) >= self._limit:
            self._frames.popleft()
            self.frames_dropped += 1
        self._frames.append(frame)
        self._readers.unpark_all()

    def _end_source(self) -> None:
        self._source_ended = True
        self._readers.unpark_all()

    async def recv(self) -> Any:
        while True:
            self._check_live()
            if self._frames:
                await trio.lowlevel.checkpoint_if_cancelled()
                if self._frames:
                    return self._frames.popleft()
                continue
            if self._source_ended:
                self.stop()
                raise MediaStreamError("the relayed track has ended")
            await self._readers.park()

    def _on_stop(self) -> None:
        self._frames.clear()
        self._readers.unpark_all()


class _EncodedSubscriber:
    __slots__ = ("dropped", "requests_seen", "source", "track", "waiting_keyframe")

    def __init__(self, source: EncodedSource, track: MediaStreamTrack, video: bool) -> None:
        self.source = source
        self.track = track
        self.waiting_keyframe = video
        self.requests_seen = 0
        self.dropped = 0


class _Fanout:
    """One source track and its subscribers."""

    def __init__(self, track: Any, encoded: bool) -> None:
        self.track = track
        self.encoded = encoded
        self.encoded_subscribers: list[_EncodedSubscriber] = []
        self.frame_subscribers: list[RelayedFrameTrack] = []
        self.running = False
        self.ended = False

    def has_subscribers(self) -> bool:
        return bool(self.encoded_subscribers or self.frame_subscribers)


class MediaRelay:
    """Relays tracks to many subscribers (see the module docstring). Use ``async with``."""

    def __init__(self) -> None:
        self._fanouts: dict[tuple[int, bool], _Fanout] = {}
        self._nursery: trio.Nursery | None = None
        self._nursery_cm: Any = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._nursery else "new"
        return f"<MediaRelay {state} sources={len(self._fanouts)}>"

    async def __aenter__(self) -> MediaRelay:
        if self._nursery_cm is not None or self._closed:
            raise RuntimeError("a MediaRelay is entered once")
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        cm, self._nursery_cm = self._nursery_cm, None
        assert cm is not None and self._nursery is not None
        self._nursery.cancel_scope.cancel()
        self._nursery = None
        try:
            return bool(await cm.__aexit__(exc_type, exc, tb))
        finally:
            self._closed = True
            for fanout in self._fanouts.values():
                self._end_subscribers(fanout)
            self._fanouts.clear()

    def subscribe(
        self, track: Any, *, buffered: bool = True, encoded: bool | None = None
    ) -> MediaStreamTrack | RelayedFrameTrack:
        """A new track relaying ``track`` for one consumer.

        ``encoded``: relay encoded frames (the default for a remote ``MediaStreamTrack``; only
        possible for one) or raw frames (any frame track). ``buffered=False`` keeps one frame
        per subscriber instead of a queue (the freshest picture, more drops)."""
        if self._nursery is None:
            raise RuntimeError("subscribe() inside 'async with MediaRelay() as relay:'")
        remote = isinstance(track, MediaStreamTrack) and track.remote
        if isinstance(track, MediaStreamTrack) and not remote:
            raise TypeError("a local MediaStreamTrack's frames go to its sender: nothing to relay")
        if encoded is None:
            encoded = remote
        if encoded and not remote:
            raise TypeError("only a remote MediaStreamTrack has encoded frames to relay")
        if not encoded and not callable(getattr(track, "recv", None)):
            raise TypeError(f"cannot relay {track!r}: not a frame track or a remote track")
        if getattr(track, "readyState", "live") == "ended":
            raise ValueError(f"{track!r} has ended")
        key = (id(track), encoded)
        fanout = self._fanouts.get(key)
        if fanout is None or fanout.ended:
            fanout = self._fanouts[key] = _Fanout(track, encoded)
        out: MediaStreamTrack | RelayedFrameTrack
        if encoded:
            source = EncodedSource(track.kind, max_queue=DEFAULT_SOURCE_QUEUE if buffered else 1)
            out = source.create_track(f"relay of {track.label or track.kind}")
            fanout.encoded_subscribers.append(
                _EncodedSubscriber(source, out, track.kind == "video")
            )
            if track.kind == "video":
                track.request_keyframe()  # the new subscriber starts at a keyframe
        else:
            limit = FRAME_QUEUE[track.kind] if buffered else 1
            out = RelayedFrameTrack(track, limit=limit)
            fanout.frame_subscribers.append(out)
        if not fanout.running:
            fanout.running = True
            self._nursery.start_soon(self._run_fanout, fanout, key)
        return out

    async def _run_fanout(self, fanout: _Fanout, key: tuple[int, bool]) -> None:
        try:
            if fanout.encoded:
                await self._relay_encoded(fanout)
            else:
                await self._relay_frames(fanout)
        finally:
            fanout.running = False
            if fanout.ended or not fanout.has_subscribers():
                if self._fanouts.get(key) is fanout:
                    del self._fanouts[key]
            if fanout.ended:
                self._end_subscribers(fanout)

    async def _relay_encoded(self, fanout: _Fanout) -> None:
        track: MediaStreamTrack = fanout.track
        video = track.kind == "video"
        subscribers = fanout.encoded_subscribers
        while subscribers:
            try:
                frame = await track.recv_encoded()
            except trio.EndOfChannel:
                fanout.ended = True
                return
            if not frame.data or not frame.complete:
                continue
            out = OutgoingFrame(frame.data, frame.keyframe, frame.timestamp, codec=frame.codec)
            need_keyframe = False
            for sub in tuple(subscribers):
                requested = sub.source.keyframe_requested
                if requested.count > sub.requests_seen:
                    sub.requests_seen = requested.count
                    need_keyframe = True
                if video and sub.waiting_keyframe and not frame.keyframe:
                    sub.dropped += 1
                    continue
                try:
                    sub.source.send_nowait(out)
                except trio.WouldBlock:
                    sub.dropped += 1
                    if video:
                        sub.waiting_keyframe = True
                        need_keyframe = True
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    subscribers.remove(sub)  # its track was stopped
                else:
                    sub.waiting_keyframe = False
            if need_keyframe:
                track.request_keyframe()

    async def _relay_frames(self, fanout: _Fanout) -> None:
        subscribers = fanout.frame_subscribers
        while subscribers:
            try:
                frame = await fanout.track.recv()
            except trio.EndOfChannel:
                fanout.ended = True
                return
            for sub in tuple(subscribers):
                if sub.readyState == "ended":
                    subscribers.remove(sub)
                else:
                    sub._push(frame)

    @staticmethod
    def _end_subscribers(fanout: _Fanout) -> None:
        for sub in fanout.encoded_subscribers:
            sub.source.close()
        for track in fanout.frame_subscribers:
            track._end_source()
        fanout.encoded_subscribers.clear()
        fanout.frame_subscribers.clear()
