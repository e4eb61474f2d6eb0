"""The frame assembler: RTP packets of one stream in, complete encoded frames out.

Codec-independent; a :class:`~trio_rtc.rtp.codecs.base.Depacketizer` supplies the payload format's
rules. It is also the receiver's video jitter buffer: it can hold frames back for a moment so that
a retransmission (RFC 4585 NACK, RFC 4588 RTX) can fill a gap before the frames behind it are given
up. The policy, in the order a packet meets it:

- Packets are placed by extended sequence number (:class:`~trio_rtc.rtp.sequence.SequenceUnwrapper`),
  so they may arrive in any order within ``reorder_window`` packets of the newest one. Older
  packets, packets of a frame already emitted or dropped, and duplicates are dropped and counted.
- An empty payload is padding (bandwidth probes, RFC 3550 §5.1 padding-only packets): it belongs to
  no frame, but it proves its sequence number was not lost and that a frame boundary lies there.
- A frame is **whole** when its last packet (marker bit, or the format's end flag) has arrived and
  so has every packet back to its first. The first packet is recognised by the payload format (VP8
  S bit, VP9 B bit, AV1 N bit, an H.264 SPS) or, when the format cannot tell, by the packet before
  it having ended the previous frame.
- A whole frame is **emitted at once** when nothing older is still pending: every sequence number
  between the last one consumed and its first packet has been consumed or was padding. Frames
  always come out in order.
- A whole frame behind a **gap** (sequence numbers still missing before it) is, with
  ``max_wait > 0`` and a ``now`` given, **held** (``frames_held``) instead. Then either the missing
  packets arrive and the gap's frame completes, and it and every whole frame directly after it come
  out together, in order, decodable as if nothing had been lost (``gaps_repaired``, one per such
  release); or ``max_wait`` seconds pass since the first frame was held behind the gap
  (:meth:`FrameAssembler.get_timer`, :meth:`FrameAssembler.handle_timer`), or the reorder window
  moves past the gap so that a retransmission would be dropped as late anyway, and the gap is
  **given up** (``gaps_given_up``): the oldest held frame is released under the rules below, and
  the frames directly after it with it. ``max_wait`` follows the round-trip time
  (:meth:`FrameAssembler.set_max_wait`): a retransmission arrives about one RTT after the loss.
- A keyframe is never held: nothing after it depends on what came before, so waiting would only
  delay it. The gaps before it are given up at once. Audio formats mark every frame as a keyframe,
  so audio never waits: a decoder conceals a lost 20 ms frame better than a pause would.
- Giving up, and every whole frame when nothing can be held (``max_wait == 0``, the default, or no
  ``now``): anything older still buffered is a frame that will never complete. It is dropped
  (counted in ``frames_incomplete``, and reported as an ``EncodedFrame(complete=False, data=b"")``
  when ``emit_incomplete=True``).
- Decodability: a frame after a loss (a missing sequence number that was not padding, unless the
  VP8/VP9 PictureID shows no picture was skipped), or any frame before the first keyframe, cannot
  be decoded correctly unless it is a keyframe. Then :attr:`FrameAssembler.keyframe_needed` turns
  True (send a PLI) and, with ``wait_for_keyframe=True`` (the default), such frames are dropped
  (``frames_waiting_keyframe``) until a keyframe completes. A gap that is still held has not been
  lost yet, so it asks for no keyframe.
- Memory is bounded: a frame over ``max_frame_packets`` packets or ``max_frame_bytes`` bytes is
  dropped whole (``frames_too_large``); the buffer as a whole, held frames and padding included,
  holds at most ``max_frame_packets + reorder_window`` packets and ``2 * max_frame_bytes`` bytes.
  When full, held gaps are given up, oldest first, until it fits; if it still does not, the oldest
  packets are evicted (``packets_evicted``, and a keyframe is then needed).
- Statistics for the W3C ``RTCInboundRtpStreamStats``: for every emitted frame whose first packet
  arrived with a ``now`` and which is emitted with one, ``jitter_buffer_delay`` adds the seconds
  from that arrival to the emission and ``jitter_buffer_emitted_count`` adds one.

Nothing here raises for peer input: malformed payloads are dropped and counted
(``packets_malformed``, ``frames_malformed``). Time is an argument (``now``, in seconds on any
monotonic clock), never read here.
"""

from __future__ import annotations

from ..errors import RtpError
from ..packet import RtpPacket
from ..sequence import SequenceUnwrapper
from .base import Depacketizer, EncodedFrame, PayloadInfo

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_FRAME_PACKETS",
    "DEFAULT_REORDER_WINDOW",
    "FrameAssembler",
    "frame_hold",
]

DEFAULT_REORDER_WINDOW = 512
DEFAULT_MAX_FRAME_PACKETS = 2000
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
#: Bounds of :func:`frame_hold`, seconds.
MIN_FRAME_HOLD = 0.2
MAX_FRAME_HOLD = 0.5


def frame_hold(rtt: float | None) -> float:
    """How long a video frame behind a gap waits for its retransmission (``max_wait``), for a
    path with this round-trip time (None: not measured yet, 100 ms assumed).

    A NACK goes out after a short reorder allowance and the packet comes back in about one RTT;
    there is room for a second try (the retransmission can be lost too) before the gap is
    given up and a key frame is needed. Never less than MIN_FRAME_HOLD: after a loss burst the
    resends of every packet in it queue behind each other at the bottleneck (a 150 ms burst of
    1.5 Mbit/s video takes about 100 ms to resend over a 2 Mbit/s link), so on a short path
    three RTTs ended the wait while the line was still draining, and the key frame that
    followed froze the picture for longer than the repair would have.
    """
    rtt = 0.1 if rtt is None else rtt
    return min(max(3 * rtt + 0.03, MIN_FRAME_HOLD), MAX_FRAME_HOLD)


# Timestamps of dropped oversized frames remembered, so their later packets are dropped on sight.
_OVERSIZED_MEMORY = 16

# A stored packet and what its payload said; ``None`` marks padding.
_Entry = tuple[RtpPacket, PayloadInfo | None]


class FrameAssembler:
    """Assembles the frames of one RTP stream (one SSRC, one payload format).

    The sans-IO verbs: :meth:`receive_packet` with the arrival time, :meth:`get_timer` for the
    moment the oldest held gap will be given up, :meth:`handle_timer` once that moment has come.
    """

    __slots__ = (
        "_arrival",
        "_decodable",
        "_depacketizer",
        "_emit_incomplete",
        "_held",
        "_keyframe_needed",
        "_last_done",
        "_last_done_boundary",
        "_last_done_timestamp",
        "_last_picture",
        "_late_run",
        "_lost",
        "_max_frame_bytes",
        "_max_frame_packets",
        "_max_stored_bytes",
        "_max_stored_packets",
        "_max_wait",
        "_oversized",
        "_reorder_window",
        "_store",
        "_stored_bytes",
        "_unwrapper",
        "_usage",
        "_wait_for_keyframe",
        "frames_emitted",
        "frames_held",
        "frames_incomplete",
        "frames_malformed",
        "frames_too_large",
        "frames_waiting_keyframe",
        "gaps_given_up",
        "gaps_repaired",
        "jitter_buffer_delay",
        "jitter_buffer_emitted_count",
        "packets_duplicate",
        "packets_evicted",
        "packets_late",
        "packets_malformed",
        "packets_oversized",
        "packets_received",
        "sequence_restarts",
    )

    def __init__(
        self,
        depacketizer: Depacketizer,
        *,
        reorder_window: int = DEFAULT_REORDER_WINDOW,
        max_frame_packets: int = DEFAULT_MAX_FRAME_PACKETS,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        wait_for_keyframe: bool = True,
        emit_incomplete: bool = False,
        max_wait: float = 0.0,
    ) -> None:
        if reorder_window < 1 or max_frame_packets < 1 or max_frame_bytes < 1:
            raise ValueError("reorder_window, max_frame_packets and max_frame_bytes must be >= 1")
        self._depacketizer = depacketizer
        self._reorder_window = reorder_window
        self._max_frame_packets = max_frame_packets
        self._max_frame_bytes = max_frame_bytes
        self._max_stored_packets = max_frame_packets + reorder_window
        self._max_stored_bytes = 2 * max_frame_bytes
        self._wait_for_keyframe = wait_for_keyframe
        self._emit_incomplete = emit_incomplete
        self._max_wait = 0.0
        self.set_max_wait(max_wait)
        self.packets_received = 0
        self.packets_late = 0
        self.packets_duplicate = 0
        self.packets_malformed = 0
        self.packets_oversized = 0
        self.packets_evicted = 0
        self.frames_emitted = 0
        self.frames_incomplete = 0
        self.frames_too_large = 0
        self.frames_malformed = 0
        self.frames_waiting_keyframe = 0
        self.sequence_restarts = 0
        self.frames_held = 0
        self.gaps_repaired = 0
        self.gaps_given_up = 0
        #: webrtc-stats jitterBufferDelay: seconds, summed over the emitted frames.
        self.jitter_buffer_delay = 0.0
        #: webrtc-stats jitterBufferEmittedCount: the frames that delay was summed over.
        self.jitter_buffer_emitted_count = 0
        self._keyframe_needed = False
        self._restart()

    def _restart(self) -> None:
        self._unwrapper = SequenceUnwrapper()
        self._store: dict[int, _Entry] = {}
        self._stored_bytes = 0
        # Per RTP timestamp: [packets, payload bytes] currently stored.
        self._usage: dict[int, list[int]] = {}
        # Per RTP timestamp with packets stored: when its first packet arrived (when told).
        self._arrival: dict[int, float] = {}
        self._oversized: dict[int, None] = {}
        # Held whole frames: first extended sequence number -> when it was held.
        self._held: dict[int, float] = {}
        # The newest extended sequence number consumed (emitted, dropped as stale or evicted), and
        # whether a frame boundary follows it: the "packet before" of the next frame's first packet.
        self._last_done: int | None = None
        self._last_done_boundary = True
        self._last_done_timestamp = 0
        self._last_picture: tuple[int, int] | None = None
        self._lost = False
        self._decodable = False
        self._late_run = 0

    def reset(self) -> None:
        """Forget every buffered packet and held frame (a new SSRC or a decoder reset); counters
        stay."""
        self._restart()

    @property
    def keyframe_needed(self) -> bool:
        """True from a frame that cannot be decoded (after a loss, or before any keyframe) until
        the next keyframe is emitted: the moment to send a PLI (RFC 4585 §6.3.1) or FIR."""
        return self._keyframe_needed

    @property
    def buffered_packets(self) -> int:
        return len(self._store)

    @property
    def buffered_bytes(self) -> int:
        """Payload bytes buffered (padding counts as none)."""
        return self._stored_bytes

    @property
    def held_frames(self) -> int:
        """Whole frames waiting behind a gap."""
        return len(self._held)

    @property
    def max_wait(self) -> float:
        return self._max_wait

    def set_max_wait(self, seconds: float) -> None:
        """How long a gap may hold the frames behind it, in seconds (0 holds nothing).

        Meant to follow the round-trip time: a retransmission arrives about one RTT after the
        NACK. A change applies to the gaps already held too; see :meth:`get_timer` again after it.
        """
        if not seconds >= 0.0:  # also refuses NaN
            raise ValueError(f"max_wait must be >= 0 seconds, got {seconds!r}")
        self._max_wait = float(seconds)

    def get_timer(self) -> float | None:
        """When the oldest held gap is given up (on the clock of ``now``), or None if none is."""
        if not self._held:
            return None
        # Every held frame waits on the oldest gap, so it was seen when the first of them was held.
        return min(self._held.values()) + self._max_wait

    def handle_timer(self, now: float) -> list[EncodedFrame]:
        """Give up the gaps whose time has come; return the frames that releases, in order."""
        frames: list[EncodedFrame] = []
        self._expire(now, frames)
        return frames

    def receive_packet(self, packet: RtpPacket, now: float | None = None) -> list[EncodedFrame]:
        """Take one packet of the stream; return the frames it releases, in order (usually none or
        one; several when it fills a gap). ``now`` is its arrival time: without it nothing is held
        and no statistics are kept. Gaps whose time has come are given up after the packet."""
        frames: list[EncodedFrame] = []
        self._receive(packet, now, frames)
        if self._held and now is not None:
            self._expire(now, frames)
        return frames

    def _receive(self, packet: RtpPacket, now: float | None, frames: list[EncodedFrame]) -> None:
        self.packets_received += 1
        ext = self._unwrapper.unwrap(packet.sequence_number)
        highest = self._unwrapper.highest
        assert highest is not None
        last_done = self._last_done
        if (last_done is not None and ext <= last_done) or ext < highest - self._reorder_window:
            self.packets_late += 1
            self._late_run += 1
            if self._late_run > self._reorder_window:
                # Only "late" packets for a whole window: the sender's numbering jumped back (a
                # restart). Start over instead of dropping up to half the number space.
                self._restart()
                self.sequence_restarts += 1
                self.packets_received -= 1
                self._receive(packet, now, frames)
            return
        self._late_run = 0
        store = self._store
        if ext in store:
            self.packets_duplicate += 1
            return
        payload = packet.payload
        if not payload:
            store[ext] = (packet, None)
            if len(store) > self._max_stored_packets:
                self._relieve(now, frames)
            # Padding may be the last missing piece before a frame already whole.
            self._complete_from(self._skip_padding(ext + 1), now, frames)
            return
        timestamp = packet.timestamp
        if timestamp in self._oversized:
            self.packets_oversized += 1
            return
        try:
            info = self._depacketizer.inspect_untrusted(payload, packet.marker)
        except RtpError:
            self.packets_malformed += 1
            return
        usage = self._usage.get(timestamp)
        if usage is None:
            usage = self._usage[timestamp] = [0, 0]
            if now is not None:
                self._arrival[timestamp] = now
        if (
            usage[0] + 1 > self._max_frame_packets
            or usage[1] + len(payload) > self._max_frame_bytes
        ):
            self._drop_oversized(timestamp)
            return
        usage[0] += 1
        usage[1] += len(payload)
        store[ext] = (packet, info)
        self._stored_bytes += len(payload)
        if len(store) > self._max_stored_packets or self._stored_bytes > self._max_stored_bytes:
            self._relieve(now, frames)
            if ext not in store:
                return
        if not self._complete_from(ext, now, frames):
            # This packet's frame is not whole, but it may be the "packet before" that the next
            # frame's first packet was waiting for.
            following = store.get(ext + 1)
            if following is not None and (info.ends_frame or following[0].timestamp != timestamp):
                self._complete_from(ext + 1, now, frames)

    def _complete_from(self, ext: int, now: float | None, frames: list[EncodedFrame]) -> bool:
        """Emit or hold the frame containing ``ext`` if it is whole (True), else do nothing."""
        span = self._find_frame(ext)
        if span is None:
            return False
        first = span[0]
        hold_since = now if self._max_wait > 0.0 else None
        if (hold_since is None and not self._held) or self._ready(first):
            if self._release_from(span, now, frames):
                self.gaps_repaired += 1
        elif hold_since is not None and not self._is_keyframe(span):
            if first not in self._held:
                self._held[first] = hold_since
                self.frames_held += 1
        else:
            # Nothing may wait, or a keyframe makes waiting pointless: give up every gap before
            # this frame (the frames held behind them come out first), then what is left of them.
            while self._held and min(self._held) <= first:
                self._give_up(now, frames)
            if first in self._store:
                self._release_from(span, now, frames)
        return True

    def _ready(self, first: int) -> bool:
        """True when nothing before ``first`` can still arrive and complete (see module doc)."""
        store = self._store
        last_done = self._last_done
        if last_done is None:
            # Nothing consumed yet: only a partial frame stored before this one is a known gap.
            return not any(ext < first and entry[1] is not None for ext, entry in store.items())
        # The rest of a frame whose first packets were evicted can never complete: not a gap.
        dead = None if self._last_done_boundary else self._last_done_timestamp
        for ext in range(last_done + 1, first):
            entry = store.get(ext)
            if entry is None:
                return False
            if entry[1] is not None and entry[0].timestamp != dead:
                return False
        return True

    def _is_keyframe(self, span: tuple[int, int]) -> bool:
        store = self._store
        for ext in range(span[0], span[1] + 1):
            info = store[ext][1]
            if info is not None and info.keyframe:
                return True
        return False

    def _skip_padding(self, ext: int) -> int:
        """The first sequence number from ``ext`` on that is not stored padding."""
        store = self._store
        entry = store.get(ext)
        while entry is not None and entry[1] is None:
            ext += 1
            entry = store.get(ext)
        return ext

    def _release_from(
        self, span: tuple[int, int] | None, now: float | None, frames: list[EncodedFrame]
    ) -> int:
        """Emit the frame ``span`` and every whole frame directly after it (padding between is
        fine); return how many of them had been held."""
        released = 0
        while span is not None:
            first, last = span
            if self._held.pop(first, None) is not None:
                released += 1
            self._emit(first, last, now, frames)
            span = self._find_frame(self._skip_padding(last + 1))
        return released

    def _give_up(self, now: float | None, frames: list[EncodedFrame]) -> None:
        """Give up the oldest gap: release the oldest held frame, dropping what is older."""
        first = min(self._held)
        span = self._find_frame(first)
        if span is None or span[0] != first:
            del self._held[first]  # no longer whole (a peer reusing its timestamp): forget it
            return
        self.gaps_given_up += 1
        self._release_from(span, now, frames)

    def _expire(self, now: float, frames: list[EncodedFrame]) -> None:
        """Give up the held gaps that have waited ``max_wait``, or that the reorder window has
        passed (a retransmission would be dropped as late)."""
        held = self._held
        highest = self._unwrapper.highest
        while held:
            if min(held.values()) + self._max_wait > now and (
                highest is None or min(held) > highest - self._reorder_window
            ):
                break
            self._give_up(now, frames)

    def _relieve(self, now: float | None, frames: list[EncodedFrame]) -> None:
        """The buffer is over its bounds: give up held gaps, oldest first, then evict."""
        store = self._store
        while self._held and (
            len(store) > self._max_stored_packets or self._stored_bytes > self._max_stored_bytes
        ):
            self._give_up(now, frames)
        if len(store) > self._max_stored_packets or self._stored_bytes > self._max_stored_bytes:
            self._evict()

    def _find_frame(self, ext: int) -> tuple[int, int] | None:
        """(first, last) extended sequence numbers of the whole frame holding ``ext``, or None."""
        store = self._store
        entry = store.get(ext)
        if entry is None or entry[1] is None:
            return None
        timestamp = entry[0].timestamp
        limit = self._max_frame_packets
        last = ext
        info = entry[1]
        while not info.ends_frame:
            last += 1
            following = store.get(last)
            if following is None or following[0].timestamp != timestamp or last - ext >= limit:
                return None
            if following[1] is None:
                return None
            info = following[1]
        first = ext
        info = entry[1]
        while True:
            before = store.get(first - 1)
            if before is not None:
                before_info = before[1]
                boundary = (
                    before_info is None
                    or before_info.ends_frame
                    or before[0].timestamp != timestamp
                )
            elif first - 1 == self._last_done:
                before_info = None
                boundary = self._last_done_boundary or self._last_done_timestamp != timestamp
            else:
                # The packet before is missing: only the payload format can vouch for a start.
                return (first, last) if info.starts_frame is True else None
            if boundary:
                return (first, last) if info.starts_frame is not False else None
            if before_info is None:
                return None  # the frame's earlier packets were consumed: it cannot complete
            first -= 1
            info = before_info
            if last - first >= limit:
                return None

    def _pop(self, ext: int) -> _Entry:
        entry = self._store.pop(ext)
        if entry[1] is not None:
            size = len(entry[0].payload)
            self._stored_bytes -= size
            timestamp = entry[0].timestamp
            usage = self._usage[timestamp]
            usage[0] -= 1
            usage[1] -= size
            if usage[0] == 0:
                del self._usage[timestamp]
                self._arrival.pop(timestamp, None)
        return entry

    def _emit(self, first: int, last: int, now: float | None, frames: list[EncodedFrame]) -> None:
        arrival = self._arrival.get(self._store[first][0].timestamp)
        entries = [self._pop(ext) for ext in range(first, last + 1)]
        lost = self._lost
        self._lost = False
        # Frames go out in order, so whatever older is still here has been given up (or is padding,
        # or the rest of an evicted frame): it will never complete (see module doc).
        stale = sorted(ext for ext in self._store if ext < first)
        partial: dict[int, list[_Entry]] = {}
        for ext in stale:
            entry = self._pop(ext)
            if entry[1] is not None:
                partial.setdefault(entry[0].timestamp, []).append(entry)
        if partial:
            lost = True
            self.frames_incomplete += len(partial)
            if self._emit_incomplete:
                for timestamp, group in partial.items():
                    frames.append(
                        EncodedFrame(
                            b"",
                            timestamp,
                            any(info is not None and info.keyframe for _, info in group),
                            group[0][0].sequence_number,
                            group[-1][0].sequence_number,
                            complete=False,
                        )
                    )
        last_done = self._last_done
        if last_done is not None and first - last_done - 1 > len(stale):
            lost = True  # a sequence number in between never arrived
        first_packet, first_info = entries[0]
        assert first_info is not None
        timestamp = first_packet.timestamp
        picture = None
        if first_info.picture_id is not None:
            picture = (first_info.picture_id, first_info.picture_id_bits)
            previous = self._last_picture
            # The PictureID can only clear a suspected loss: a lost padding packet or a late
            # retransmission leaves a sequence gap but no missing picture.
            if (
                lost
                and previous is not None
                and previous[1] == picture[1]
                and (picture[0] - previous[0]) % (1 << picture[1]) == 1
            ):
                lost = False
        self._last_picture = picture
        self._last_done = last
        self._last_done_boundary = True
        self._last_done_timestamp = timestamp
        keyframe = any(info is not None and info.keyframe for _, info in entries)
        try:
            data = self._depacketizer.assemble_untrusted([packet.payload for packet, _ in entries])
        except RtpError:
            self.frames_malformed += 1
            self._decodable = False
            self._keyframe_needed = True
            return
        if keyframe:
            self._decodable = True
            self._keyframe_needed = False
        elif lost or not self._decodable:
            self._decodable = False
            self._keyframe_needed = True
            if self._wait_for_keyframe:
                self.frames_waiting_keyframe += 1
                return
        self.frames_emitted += 1
        if now is not None and arrival is not None:
            self.jitter_buffer_delay += now - arrival
            self.jitter_buffer_emitted_count += 1
        frames.append(
            EncodedFrame(
                data,
                timestamp,
                keyframe,
                first_packet.sequence_number,
                entries[-1][0].sequence_number,
            )
        )

    def _drop_oversized(self, timestamp: int) -> None:
        for ext in [ext for ext, entry in self._store.items() if entry[0].timestamp == timestamp]:
            if self._store[ext][1] is not None:
                self._pop(ext)
        self._usage.pop(timestamp, None)
        self._arrival.pop(timestamp, None)
        self._oversized[timestamp] = None
        if len(self._oversized) > _OVERSIZED_MEMORY:
            del self._oversized[next(iter(self._oversized))]
        self.frames_too_large += 1
        self.packets_oversized += 1
        # No loss flag: the frame's sequence numbers stay missing, which tells the next frame in
        # order (a flag would wrongly hit an older frame still held or reordered).
        self._forget_broken_holds()

    def _evict(self) -> None:
        """Drop the oldest packets until the buffer is back to three quarters of its bounds (the
        slack keeps a stream that overflows from sorting the buffer on every packet)."""
        target_packets = self._max_stored_packets * 3 // 4
        target_bytes = self._max_stored_bytes * 3 // 4
        store = self._store
        for ext in sorted(store):
            if len(store) <= target_packets and self._stored_bytes <= target_bytes:
                break
            packet, info = self._pop(ext)
            self.packets_evicted += 1
            if info is not None:
                self._lost = True
            if self._last_done is None or ext > self._last_done:
                self._last_done = ext
                self._last_done_boundary = info is None or info.ends_frame
                self._last_done_timestamp = packet.timestamp
        if self._lost:
            self._decodable = False
            self._keyframe_needed = True
        self._forget_broken_holds()

    def _forget_broken_holds(self) -> None:
        """Forget held frames whose first packet was dropped."""
        if self._held:
            for first in [first for first in self._held if first not in self._store]:
                del self._held[first]
