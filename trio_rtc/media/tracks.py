"""MediaStreamTrack and MediaStream (mediacapture-main §4, §3), with an encoded-media side.

The spec surface is what a browser has: ids, ``kind``, ``label``, ``enabled``, ``muted``,
``readyState``, ``stop()``, ``clone()`` and the ``mute``/``unmute``/``ended`` events on a track;
the track set, ``active`` and ``addtrack``/``removetrack`` on a stream.

The trio-native side carries *encoded* media (the codecs themselves come in a later part):

- a local track is fed by an :class:`EncodedSource`: ``await source.send(frame)`` queues one
  encoded frame in a bounded memory channel, so a producer that runs ahead of the network waits
  (backpressure) instead of piling frames up. ``source.keyframe_requested`` is set when the peer
  asks for a keyframe (RTCP PLI/FIR), and cleared by the next keyframe sent;
- a remote track yields what the receiver assembled: ``async for frame in
  track.encoded_frames()`` or ``await track.recv_encoded()`` give
  :class:`~trio_rtc.rtp.codecs.EncodedFrame` objects and end cleanly when the track ends.
"""

from __future__ import annotations

import contextlib
import math
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal

import attrs
import trio

from ..events import Event, EventTarget, on_event
from ..rtp.codecs import EncodedFrame
from .frames import MediaStreamError, is_frame_track

__all__ = [
    "DEFAULT_AUDIO_QUEUE",
    "DEFAULT_DECODED_AUDIO_QUEUE",
    "DEFAULT_DECODED_VIDEO_QUEUE",
    "DEFAULT_SOURCE_QUEUE",
    "DEFAULT_VIDEO_QUEUE",
    "EncodedSource",
    "KeyframeRequest",
    "MediaStream",
    "MediaStreamTrack",
    "MediaStreamTrackEvent",
    "MediaStreamTrackState",
    "OutgoingFrame",
    "as_media_track",
]

MediaStreamTrackState = Literal["live", "ended"]
_KINDS = ("audio", "video")

#: Frames an :class:`EncodedSource` queues before ``send`` waits.
DEFAULT_SOURCE_QUEUE = 8
#: Frames a remote video track holds for a slow reader (see :meth:`MediaStreamTrack._deliver`).
DEFAULT_VIDEO_QUEUE = 8
#: Frames a remote audio track holds (1 s of 20 ms Opus) before dropping the oldest.
DEFAULT_AUDIO_QUEUE = 50
#: Decoded pictures a remote video track keeps for a slow ``recv()`` reader (the newest).
DEFAULT_DECODED_VIDEO_QUEUE = 3
#: Decoded audio frames (1 s of 20 ms) a remote track keeps before dropping the oldest.
DEFAULT_DECODED_AUDIO_QUEUE = 50


@attrs.define
class PlayoutCounters:
    """Audio samples ``recv()`` handed to the application (webrtc-stats RTCAudioPlayoutStats:
    the application is the playout device here): their count and duration, and the sum over
    samples of the time they waited between their packet's arrival and ``recv()``."""

    samples: int = 0
    duration: float = 0.0
    delay: float = 0.0


class _Wakeup:
    """Cancel scopes of tasks waiting for "something about this object changed".

    A driver task wraps its blocking wait in :meth:`scope`; :meth:`wake` interrupts every such
    wait, and the task re-reads the state. Cheaper and simpler than racing two tasks."""

    __slots__ = ("_scopes",)

    def __init__(self) -> None:
        self._scopes: set[trio.CancelScope] = set()

    def add(self, scope: trio.CancelScope) -> None:
        self._scopes.add(scope)

    def discard(self, scope: trio.CancelScope) -> None:
        self._scopes.discard(scope)

    def wake(self) -> None:
        for scope in tuple(self._scopes):
            scope.cancel()


class KeyframeRequest:
    """A resettable flag with a counter: the far end asked for a keyframe.

    ``count`` is the number of requests so far; :meth:`is_set` says one is pending;
    ``await wait()`` returns once one is. :meth:`clear` (also done by
    :meth:`EncodedSource.send` when it is given a keyframe) resets the flag."""

    __slots__ = ("_event", "count")

    def __init__(self) -> None:
        self._event = trio.Event()
        self.count = 0

    def __repr__(self) -> str:
        return f"<KeyframeRequest {'set' if self.is_set() else 'clear'} count={self.count}>"

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    def set(self) -> None:
        self.count += 1
        self._event.set()


@attrs.frozen(slots=True)
class OutgoingFrame:
    """One encoded frame on its way to a sender.

    ``timestamp``: in the negotiated codec's RTP clock units (90 kHz video, 48 kHz Opus),
    relative to the start of the stream (the sender adds its own random offset, RFC 3550 §5.1,
    so a relayed :class:`~trio_rtc.rtp.codecs.EncodedFrame` can be passed as it is).
    ``duration``: seconds this frame lasts; the next frame without a timestamp then starts where
    this one ends. Neither: the frame is stamped with the time it is taken for sending."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    keyframe: bool = False
    timestamp: int | None = None
    duration: float | None = None
    #: The encoder's quantizer for this frame, when it knows it (summed in ``qpSum`` stats).
    qp: int | None = None
    #: The codec's MIME type ("video/VP8") when the producer knows it (a relayed frame does):
    #: a sender whose negotiated codec differs transcodes the frame (with the ``media`` extra).
    codec: str | None = None


def _outgoing(frame: Any, kind: str) -> OutgoingFrame:
    if isinstance(frame, OutgoingFrame):
        out = frame
    else:
        data = getattr(frame, "data", None)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                "an encoded frame needs a bytes-like .data (plus optional .keyframe, "
                f".timestamp in RTP clock units, .duration in seconds), not {frame!r}"
            )
        out = OutgoingFrame(
            bytes(data),
            bool(getattr(frame, "keyframe", False)),
            getattr(frame, "timestamp", None),
            getattr(frame, "duration", None),
            getattr(frame, "qp", None),
            getattr(frame, "codec", None),
        )
    if not out.data:
        raise ValueError("an empty encoded frame: there is nothing to send")
    if out.timestamp is not None and (
        isinstance(out.timestamp, bool) or not isinstance(out.timestamp, int)
    ):
        raise TypeError(f"timestamp must be an int in RTP clock units, not {out.timestamp!r}")
    if out.duration is not None and not (
        isinstance(out.duration, int | float) and math.isfinite(out.duration) and out.duration >= 0
    ):
        raise ValueError(f"duration must be a finite number of seconds >= 0, not {out.duration!r}")
    if kind == "audio" and not out.keyframe:
        # Every audio frame decodes on its own; treating them as keyframes keeps the sender's
        # "wait for a keyframe" gate (after replaceTrack, re-enabling) video-only.
        out = attrs.evolve(out, keyframe=True)
    return out


class EncodedSource:
    """Where a local track's encoded frames come from: ``await source.send(frame)``.

    ``frame`` is an :class:`OutgoingFrame` or any object with ``data`` (bytes) and optionally
    ``keyframe``, ``timestamp`` (RTP clock units) and ``duration`` (seconds), such as a received
    :class:`~trio_rtc.rtp.codecs.EncodedFrame`. Frames wait in a memory channel of ``max_queue``
    frames; ``send`` waits while it is full (backpressure: the sender takes a frame when the RTP
    task has room for its packets), ``send_nowait`` raises ``trio.WouldBlock`` instead.

    One sender takes the frames: a source feeds one ``RTCRtpSender`` at a time (a cloned track
    shares its source, so put one of the two on a sender). ``send`` raises
    ``trio.ClosedResourceError`` after :meth:`close`, and ``trio.BrokenResourceError`` once
    every track of the source was stopped (nothing will ever take the frames).
    """

    def __init__(self, kind: str, *, max_queue: int = DEFAULT_SOURCE_QUEUE) -> None:
        if kind not in _KINDS:
            raise TypeError(f"kind must be 'audio' or 'video', not {kind!r}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue!r}")
        self.kind = kind
        self._send, self._receive = trio.open_memory_channel[OutgoingFrame](max_queue)
        #: Set when the peer asked for a keyframe (RTCP PLI or FIR); see :class:`KeyframeRequest`.
        self.keyframe_requested = KeyframeRequest()
        self._tracks: list[MediaStreamTrack] = []
        self._closed = False
        self._broken = False
        self.frames_sent = 0
        #: Frames the sender took but did not send: disabled track, inactive encoding, waiting
        #: for a keyframe, or a frame the packetizer refused.
        self.frames_dropped = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._broken else "open"
        return f"<EncodedSource {self.kind} {state} sent={self.frames_sent}>"

    @property
    def closed(self) -> bool:
        return self._closed or self._broken

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this EncodedSource was closed")
        if self._broken:
            raise trio.BrokenResourceError("every track of this EncodedSource was stopped")

    async def send(self, frame: Any) -> None:
        """Queue one encoded frame for the sender, waiting while the queue is full."""
        self._check()
        out = _outgoing(frame, self.kind)
        await self._send.send(out)
        self._sent(out)

    def send_nowait(self, frame: Any) -> None:
        """Queue one encoded frame, or raise ``trio.WouldBlock`` when the queue is full."""
        self._check()
        out = _outgoing(frame, self.kind)
        self._send.send_nowait(out)
        self._sent(out)

    def _sent(self, frame: OutgoingFrame) -> None:
        self.frames_sent += 1
        if frame.keyframe and self.kind == "video":
            self.keyframe_requested.clear()

    def close(self) -> None:
        """The source ends (a camera unplugged): its live tracks end and fire ``ended``
        (mediacapture-main §4.3.1.2: a source ending for a reason other than ``stop()``)."""
        if self._closed:
            return
        self._closed = True
        self._send.close()
        for track in tuple(self._tracks):
            track._end(fire=True)

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> EncodedSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def create_track(self, label: str = "") -> MediaStreamTrack:
        """A new live local track fed by this source."""
        return MediaStreamTrack(self.kind, label, source=self)

    # --- for the sender --------------------------------------------------------------------

    def _attach(self, track: MediaStreamTrack) -> None:
        self._tracks.append(track)

    def _detach(self, track: MediaStreamTrack) -> None:
        if track in self._tracks:
            self._tracks.remove(track)
        if not self._tracks and not self._closed and not self._broken:
            # mediacapture-main §4.3.1.1 stop(): the source stops once no track uses it.
            self._broken = True
            self._send.close()

    async def receive_frame(self) -> OutgoingFrame:
        """The next queued frame (for the sender's task); ``trio.EndOfChannel`` once ended."""
        return await self._receive.receive()


class MediaStreamTrackEvent(Event):
    """``addtrack``/``removetrack`` on a :class:`MediaStream`, and the pc's ``track`` event
    carries the same ``track`` attribute."""

    def __init__(self, type: str, track: MediaStreamTrack) -> None:
        super().__init__(type)
        self.track = track


class MediaStreamTrack(EventTarget):
    """A track (mediacapture-main §4.3): one kind of media from one source.

    A local track is made from a ``kind`` and optionally an :class:`EncodedSource` (a new one by
    default, in ``track.source``). Remote tracks are made by ``RTCRtpReceiver`` and start muted
    (webrtc-pc §5.3: unmuted when media first arrives); read them with :meth:`encoded_frames`
    or :meth:`recv_encoded`.

    ``enabled = False`` stops media without ending the track: a browser would send black frames
    or silence; with encoded media the sender sends nothing (and resumes at a keyframe), and a
    disabled remote track drops what arrives (and asks for a keyframe when re-enabled).
    """

    onmute = on_event[Event]("mute")
    onunmute = on_event[Event]("unmute")
    onended = on_event[Event]("ended")

    def __init__(
        self,
        kind: str,
        label: str = "",
        *,
        source: EncodedSource | None = None,
        remote: bool = False,
        id: str | None = None,
        max_queue: int | None = None,
        frames: Any = None,
    ) -> None:
        if kind not in _KINDS:
            raise TypeError(f"kind must be 'audio' or 'video', not {kind!r}")
        if source is not None and (remote or source.kind != kind):
            raise TypeError("a source feeds a local track of its own kind")
        if frames is not None:
            if remote or source is not None:
                raise TypeError("frames= feeds a new local track (not with source= or remote=)")
            if not is_frame_track(frames) or frames.kind != kind:
                raise TypeError(
                    f"frames= takes an object with kind {kind!r} and an async recv() returning "
                    f"raw frames (an aiortc-style track, a VideoSource), not {frames!r}"
                )
        if source is not None and source.closed:
            raise trio.ClosedResourceError(
                "this EncodedSource has ended; a new track needs a live one"
            )
        self._id = id or str(uuid.uuid4())
        self._kind = kind
        self._label = str(label)
        self._enabled = True
        self._remote = remote
        self._muted = remote
        self._ready_state: MediaStreamTrackState = "live"
        self.source: EncodedSource | None = None
        #: The raw-frame source a sender encodes (``frames=``), None for encoded-only tracks.
        self.frame_source: Any = frames
        if not remote:
            self.source = source if source is not None else EncodedSource(kind)
            self.source._attach(self)
        self._wakeup = _Wakeup()
        # The remote side: assembled frames waiting for the reader.
        depth = max_queue or (DEFAULT_VIDEO_QUEUE if kind == "video" else DEFAULT_AUDIO_QUEUE)
        self._max_queue = depth
        self._frames: deque[EncodedFrame] = deque()
        self._readers = trio.lowlevel.ParkingLot()
        self._waiting_keyframe = False
        self._keyframe_hook: Callable[[], object] | None = None
        self.frames_received = 0
        #: Remote frames dropped: reader too slow, track disabled, or waiting for a keyframe.
        self.frames_dropped = 0
        # Decoded frames (``recv()``): filled by the receiver's decoder task once asked for.
        self._decoded: deque[tuple[Any, float | None]] = deque()
        self._decoded_readers = trio.lowlevel.ParkingLot()
        self._decoding = False  # recv() was called: decode this track
        self._decoder_running = False
        self._decode_error: BaseException | None = None
        self._decode_starter: Callable[[], object] | None = None
        #: Decoded frames kept for a slow reader: video keeps the newest, audio drops its
        #: oldest past this (both counted in ``decoded_frames_dropped``).
        self.max_decoded_queue = (
            DEFAULT_DECODED_VIDEO_QUEUE if kind == "video" else DEFAULT_DECODED_AUDIO_QUEUE
        )
        self.decoded_frames_dropped = 0
        #: Decoded audio the application took with recv() (the ``media-playout`` stats).
        self.playout = PlayoutCounters()

    def __repr__(self) -> str:
        where = "remote" if self._remote else "local"
        return f"<MediaStreamTrack {where} {self._kind} {self._id} {self._ready_state}>"

    # --- W3C attributes ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def label(self) -> str:
        return self._label

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        value = bool(value)
        if value == self._enabled:
            return
        self._enabled = value
        if value and self._kind == "video":
            # What was dropped meanwhile was referenced by what comes next.
            if self._remote:
                self._waiting_keyframe = True
                self.request_keyframe()
        self._wakeup.wake()

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def readyState(self) -> MediaStreamTrackState:
        return self._ready_state

    @property
    def remote(self) -> bool:
        """True for a track made by an RTCRtpReceiver (trio_rtc addition)."""
        return self._remote

    def getSettings(self) -> dict[str, Any]:
        """mediacapture-main §4.3.1: nothing is captured here, so only ``deviceId``-free basics."""
        return {}

    def stop(self) -> None:
        """End the track without an ``ended`` event (mediacapture-main §4.3.1.1). A local
        source whose every track stopped ends too."""
        self._end(fire=False)

    def clone(self) -> MediaStreamTrack:
        """A new track with a new id, the same source, ``enabled`` and ``muted``
        (mediacapture-main §4.3.1.1 clone()). Cloning a remote track gives a track that
        reports the same state but does not receive frames: one reader per receiver."""
        if self._remote:
            twin = MediaStreamTrack(self._kind, self._label, remote=True)
        else:
            assert self.source is not None
            if self.source.closed or self._ready_state == "ended":
                # An ended track clones to an ended track (its source is gone).
                twin = MediaStreamTrack(self._kind, self._label)
                twin._end(fire=False)
            else:
                twin = MediaStreamTrack(self._kind, self._label, source=self.source)
                twin.frame_source = self.frame_source
        twin._enabled = self._enabled
        twin._muted = self._muted
        if self._ready_state == "ended":
            twin._end(fire=False)
        return twin

    # --- decoded frames (the aiortc-style protocol; needs a decoder: the media extra) ---------

    async def recv(self) -> Any:
        """The next decoded frame of a remote track (``av.VideoFrame``/``av.AudioFrame`` with
        ``pts`` counted from the first frame and ``time_base`` the codec clock's), decoded in a
        worker thread; :class:`~trio_rtc.media.frames.MediaStreamError` once the track ended
        and every decoded frame was read. The first call starts the decoder: from then on the
        track's encoded frames go to it (read a track one way: ``recv()`` or
        ``recv_encoded()``). Raises :class:`~trio_rtc.media.coding.CodecUnavailableError` when
        no decoder exists for the codec (PyAV not installed, or none registered)."""
        if not self._remote:
            raise TypeError(
                "recv() reads a remote track; a local track's frames go to its sender "
                "(fan one source out with trio_rtc.media.relay.MediaRelay)"
            )
        if not self._decoding:
            self._decoding = True
            if self._decode_starter is not None:
                self._decode_starter()
        while not self._decoded:
            if self._decode_error is not None:
                raise self._decode_error
            if self._ready_state == "ended" and not self._decoder_running:
                raise MediaStreamError(f"track {self._id} has ended")
            await self._decoded_readers.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        frame, arrival_time = self._decoded.popleft()
        samples = getattr(frame, "samples", None)
        if isinstance(samples, int):
            # Audio handed to the application is what plays out here (media-playout stats).
            playout = self.playout
            playout.samples += samples
            rate = getattr(frame, "sample_rate", None) or 48_000
            playout.duration += samples / rate
            if arrival_time is not None:
                playout.delay += (trio.current_time() - arrival_time) * samples
        return frame

    def __aiter__(self) -> MediaStreamTrack:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    @property
    def decoding(self) -> bool:
        """True once ``recv()`` asked for decoded frames."""
        return self._decoding

    def _deliver_decoded(self, frame: Any, arrival_time: float | None = None) -> None:
        frames = self._decoded
        if len(frames) >= self.max_decoded_queue:
            frames.popleft()
            self.decoded_frames_dropped += 1
        frames.append((frame, arrival_time))
        self._decoded_readers.unpark_all()

    def _decoded_end(self) -> None:
        self._decoder_running = False
        self._decoded_readers.unpark_all()

    def _decode_failed(self, error: BaseException) -> None:
        self._decode_error = error
        self._decoded_readers.unpark_all()

    # --- remote frames (trio-native) -----------------------------------------------------------

    async def recv_encoded(self) -> EncodedFrame:
        """The next assembled frame of a remote track; ``trio.EndOfChannel`` once the track
        ended and every queued frame was read."""
        if not self._remote:
            raise TypeError("recv_encoded() reads a remote track; a local one is fed by its source")
        while not self._frames:
            if self._ready_state == "ended":
                raise trio.EndOfChannel
            await self._readers.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        return self._frames.popleft()

    async def _wait_encoded(self) -> None:
        """Wait until an assembled frame is queued (without taking it); ``trio.EndOfChannel``
        once the track ended and nothing is queued. For a reader that takes frames in batches
        with :meth:`_take_encoded`."""
        while not self._frames:
            if self._ready_state == "ended":
                raise trio.EndOfChannel
            await self._readers.park()
        await trio.lowlevel.checkpoint_if_cancelled()

    def _take_encoded(self) -> list[EncodedFrame]:
        """Every queued assembled frame, oldest first, without waiting (the audio playout
        takes them in one go)."""
        frames = self._frames
        if not frames:
            return []
        taken = list(frames)
        frames.clear()
        return taken

    async def encoded_frames(self) -> AsyncIterator[EncodedFrame]:
        """``async for frame in track.encoded_frames()``: stops when the track ends."""
        while True:
            try:
                frame = await self.recv_encoded()
            except trio.EndOfChannel:
                return
            yield frame

    def request_keyframe(self) -> None:
        """Ask the remote sender for a keyframe (RTCP PLI), e.g. for a new decoder. Rate-limited
        by the receiver's task; nothing happens until it runs."""
        if self._keyframe_hook is not None:
            self._keyframe_hook()

    @property
    def queued_frames(self) -> int:
        return len(self._frames)

    def _deliver(self, frame: EncodedFrame) -> bool:
        """Queue an assembled frame for the reader (the receiver's task). Returns True when a
        keyframe should be requested.

        Bounded. Audio is a FIFO that drops its oldest frame when full: audio frames stand
        alone, and the oldest is the most out of date. Video cannot drop a single frame: the
        frames after it reference it. A full video queue is dropped whole and nothing but a
        keyframe is queued after that; a keyframe arriving at a full queue replaces everything
        before it. Either way the newest decodable picture wins."""
        if self._ready_state == "ended":
            return False
        if self._muted:
            self._set_muted(False)
        if not self._enabled:
            self.frames_dropped += 1
            return False
        frames = self._frames
        if self._kind == "video":
            if self._waiting_keyframe and not frame.keyframe:
                self.frames_dropped += 1
                return True
            self._waiting_keyframe = False
            if frame.keyframe and frames:
                self.frames_dropped += len(frames)
                frames.clear()
            elif len(frames) >= self._max_queue:
                self.frames_dropped += len(frames) + 1
                frames.clear()
                self._waiting_keyframe = True
                return True
        elif len(frames) >= self._max_queue:
            frames.popleft()
            self.frames_dropped += 1
        frames.append(frame)
        self.frames_received += 1
        self._readers.unpark_all()
        return False

    # --- state -----------------------------------------------------------------------------

    def _set_muted(self, muted: bool) -> None:
        if muted == self._muted or self._ready_state == "ended":
            return
        self._muted = muted
        self.dispatchEvent(Event("mute" if muted else "unmute"))

    def _end(self, *, fire: bool) -> None:
        """The track ends; ``fire``: its source ended (not ``stop()``), so ``ended`` fires."""
        if self._ready_state == "ended":
            return
        self._ready_state = "ended"
        self._readers.unpark_all()
        self._decoded_readers.unpark_all()
        self._wakeup.wake()
        if self.source is not None:
            self.source._detach(self)
            if self.source.closed and self.frame_source is not None:
                # Nothing reads the raw source any more: stop it (a player, a camera).
                stop = getattr(self.frame_source, "stop", None)
                if callable(stop):
                    stop()
        if fire:
            self.dispatchEvent(Event("ended"))


_wrappers: weakref.WeakKeyDictionary[Any, MediaStreamTrack] = weakref.WeakKeyDictionary()


def as_media_track(track: Any) -> MediaStreamTrack | None:
    """``track`` itself when it is a :class:`MediaStreamTrack`; for a frame track (an
    aiortc-style object with ``kind`` and ``async recv()``), the live local MediaStreamTrack that
    encodes it (the same one each time while it lives, with the frame track's ``id`` and
    ``label`` when it has string ones); None for anything else."""
    if isinstance(track, MediaStreamTrack):
        return track
    if not is_frame_track(track):
        return None
    try:
        wrapper = _wrappers.get(track)
    except TypeError:  # not weakly referenceable: a new wrapper each time
        wrapper = None
    if wrapper is not None and wrapper.readyState == "live":
        return wrapper
    track_id = getattr(track, "id", None)
    label = getattr(track, "label", "")
    wrapper = MediaStreamTrack(
        track.kind,
        label if isinstance(label, str) else "",
        id=track_id if isinstance(track_id, str) and track_id else None,
        frames=track,
    )
    with contextlib.suppress(TypeError):
        _wrappers[track] = wrapper
    return wrapper


class MediaStream(EventTarget):
    """A set of tracks (mediacapture-main §3): ``MediaStream()``, ``MediaStream(stream)`` (the
    same tracks) or ``MediaStream(tracks)``.

    As in the spec, ``addTrack``/``removeTrack`` called by the application fire no event;
    ``addtrack``/``removetrack`` fire when the peer connection changes a remote stream
    (:meth:`add_remote_track`, :meth:`remove_remote_track`).
    """

    onaddtrack = on_event[MediaStreamTrackEvent]("addtrack")
    onremovetrack = on_event[MediaStreamTrackEvent]("removetrack")

    def __init__(
        self, tracks: MediaStream | Iterable[MediaStreamTrack] = (), *, id: str | None = None
    ) -> None:
        self._id = id or str(uuid.uuid4())
        self._tracks: dict[str, MediaStreamTrack] = {}
        source = tracks.getTracks() if isinstance(tracks, MediaStream) else tracks
        for track in source:
            if not isinstance(track, MediaStreamTrack):
                raise TypeError(f"a MediaStream holds MediaStreamTracks, not {track!r}")
            self._tracks.setdefault(track.id, track)

    def __repr__(self) -> str:
        return f"<MediaStream {self._id} tracks={len(self._tracks)}>"

    @property
    def id(self) -> str:
        return self._id

    @property
    def active(self) -> bool:
        """True while at least one track is live (mediacapture-main §3.1)."""
        return any(t.readyState == "live" for t in self._tracks.values())

    def getTracks(self) -> list[MediaStreamTrack]:
        return list(self._tracks.values())

    def getAudioTracks(self) -> list[MediaStreamTrack]:
        return [t for t in self._tracks.values() if t.kind == "audio"]

    def getVideoTracks(self) -> list[MediaStreamTrack]:
        return [t for t in self._tracks.values() if t.kind == "video"]

    def getTrackById(self, trackId: str) -> MediaStreamTrack | None:
        return self._tracks.get(trackId)

    def addTrack(self, track: MediaStreamTrack) -> None:
        if not isinstance(track, MediaStreamTrack):
            raise TypeError(f"addTrack() takes a MediaStreamTrack, not {track!r}")
        self._tracks.setdefault(track.id, track)

    def removeTrack(self, track: MediaStreamTrack) -> None:
        if not isinstance(track, MediaStreamTrack):
            raise TypeError(f"removeTrack() takes a MediaStreamTrack, not {track!r}")
        self._tracks.pop(track.id, None)

    def clone(self) -> MediaStream:
        """A new stream with a clone of every track (mediacapture-main §3.1.1)."""
        return MediaStream([t.clone() for t in self._tracks.values()])

    # --- for the peer connection -------------------------------------------------------------

    def add_remote_track(self, track: MediaStreamTrack) -> None:
        """Add ``track`` and fire ``addtrack``, as the pc does when a remote description adds a
        track to this stream (webrtc-pc §4.4.1.6 "add a track to a remote stream")."""
        if track.id in self._tracks:
            return
        self._tracks[track.id] = track
        self.dispatchEvent(MediaStreamTrackEvent("addtrack", track))

    def remove_remote_track(self, track: MediaStreamTrack) -> None:
        """Remove ``track`` and fire ``removetrack`` (webrtc-pc §4.4.1.6)."""
        if self._tracks.pop(track.id, None) is None:
            return
        self.dispatchEvent(MediaStreamTrackEvent("removetrack", track))
