"""An adaptive playout (jitter) buffer for received audio: when to play each frame, and what to
conceal.

Pure: no trio, no clock, no I/O. Frames go in with :meth:`AudioJitterBuffer.put` (their RTP
timestamp and sequence number, and ``now``); :meth:`AudioJitterBuffer.pop` returns what is due at
``now``, in timestamp order: a :class:`PlayoutFrame` to decode, or a :class:`Concealment` telling
the caller to synthesize samples (see :mod:`trio_rtc.media.concealment`).
:meth:`AudioJitterBuffer.get_timer` says when the next item is due.

The model:

- *Playout mapping.* Each frame has a slot: ``slot(ts) = origin + ts / clock_rate + offset``.
  The offset is set when playout (re)starts so that a frame arriving over the fastest path seen
  recently waits exactly the target delay.
- *Target delay.* Each packet's relative delay is its arrival time minus its RTP timestamp in
  seconds; its spread above the window's minimum (RFC 3550 §6.4.1's transit difference, taken
  against the fastest packet instead of the previous one) is kept for a sliding window. The 95th
  percentile of that spread is the raw target: it rises as soon as a few packets in the window are
  slow, and falls back slowly (exponential decay, :data:`TARGET_DECAY_SECONDS`) once they have left
  the window. The target is clamped to ``[min_delay, max_delay]``, and never below the floor set
  by :meth:`AudioJitterBuffer.set_minimum_delay` (W3C ``RTCRtpReceiver.jitterBufferTarget``).
- *Moving the applied delay.* No time-stretching. The buffer re-anchors the mapping to the target
  for free where there is no audio to disturb: at the first frame, across a DTX/silence gap (the
  RTP timestamp jumps while the sequence numbers are consecutive) and after an underrun. During a
  talkspurt it grows by inserting one frame of concealment (reason ``"expand"``, counted as
  ``insertedSamplesForDeceleration``) when the target is a frame or more above the applied delay,
  and shrinks by one frame (``removedSamplesForAcceleration``) when the applied delay is a frame
  or more above the target and the next frame is already here, at most once per
  :data:`ACCELERATE_INTERVAL_SECONDS` of audio: that frame comes out with ``merge`` set, in the
  same :meth:`~AudioJitterBuffer.pop` as the next one, which takes its slot; the caller decodes
  both (the decoder's state runs on) and cross-fades the two into one frame's length
  (:func:`trio_rtc.media.concealment.crossfade`), NetEq's *accelerate* in whole frames. A frame
  is the step: a caller that hands out frames of one size keeps that size. A smaller threshold
  would undershoot the target; a larger one (two frames, as before) held the delay up to 40 ms
  above a target that had come down, for the rest of a talkspurt.
- *Loss.* When a frame's slot comes and the next frame present has a sequence number further on,
  the missing packets are concealed (reason ``"lost"``), one :class:`Concealment` per packet,
  each at its own slot; the one right before a frame that is present carries that frame in
  ``fec_from`` (Opus in-band FEC rebuilds a packet from the one after it, RFC 6716 §2.1.7).
  A hole longer than :data:`MAX_CONCEALMENT_SECONDS` is a discontinuity, not a loss: playout
  re-anchors on the next frame.
- *Underrun.* When a slot comes and nothing is queued, the buffer cannot tell loss from a DTX gap
  or a delay spike until the next packet arrives, so it emits nothing and waits (the audio simply
  pauses, as it does across DTX). The next frame re-anchors the mapping, no earlier than its own
  arrival: a delay spike raises the applied delay by its size, and frames that were lost during
  the wait are concealed then.
- *Late packets.* A packet for a slot that was already played or concealed is dropped and
  counted (``packets_late``, and ``packetsDiscarded`` as W3C defines it).

Memory is bounded by ``max_packets`` queued frames and a fixed-size delay window.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Generic, Literal, TypeAlias, TypeVar

import attrs

from .sequence import SequenceUnwrapper, TimestampUnwrapper

__all__ = [
    "ACCELERATE_INTERVAL_SECONDS",
    "CONCEALMENT_FADE_SECONDS",
    "MAX_CONCEALMENT_SECONDS",
    "TARGET_DECAY_SECONDS",
    "AudioJitterBuffer",
    "Concealment",
    "ConcealmentReason",
    "JitterBufferStats",
    "Playout",
    "PlayoutFrame",
]

T = TypeVar("T")

ConcealmentReason: TypeAlias = Literal["lost", "expand"]

#: Concealment fades the last audio to silence over this long (trio_rtc.media.concealment does);
#: the concealed samples after it are counted as silent (W3C silentConcealedSamples).
CONCEALMENT_FADE_SECONDS = 0.03
#: A hole in the sequence longer than this is a discontinuity (playout restarts), not a loss.
MAX_CONCEALMENT_SECONDS = 2.0
#: The target delay falls back towards the measured spread with this time constant.
TARGET_DECAY_SECONDS = 4.0
#: At most one frame is merged away to reduce the delay per this much played audio: a delay
#: 100 ms above the target comes down in about a second, one smooth step at a time.
ACCELERATE_INTERVAL_SECONDS = 0.2
#: The delay window: relative delays of the packets of the last WINDOW_SECONDS (and at most
#: WINDOW_PACKETS of them).
WINDOW_SECONDS = 2.0
WINDOW_PACKETS = 250
TARGET_PERCENTILE = 0.95
#: A relative delay this far from the window's minimum means the sender's timeline restarted.
_RESTART_SECONDS = 30.0
#: Frame durations longer than this (Opus's maximum is 120 ms) are gaps, not frames.
_MAX_FRAME_SECONDS = 0.12
_TS_MASK = 0xFFFF_FFFF
_EPSILON = 1e-9  # seconds: delay comparisons ignore float rounding
_SEQ_MASK = 0xFFFF


@attrs.frozen(slots=True)
class PlayoutFrame(Generic[T]):
    """A received frame to decode now."""

    frame: T
    #: The frame's 32-bit RTP timestamp and 16-bit sequence number, as received.
    timestamp: int
    sequence_number: int
    #: How many samples (per channel) the frame is taken to cover.
    samples: int
    #: The slot it was scheduled for (the caller's clock).
    playout_time: float
    #: Time compression: this frame is merged into the next one, which follows it in the same
    #: :meth:`AudioJitterBuffer.pop` with the same slot. Decode it, then cross-fade its audio
    #: into the next frame's (the pair plays in one frame's time).
    merge: bool = False


@attrs.frozen(slots=True)
class Concealment(Generic[T]):
    """Synthesize ``samples`` samples (per channel) here instead of a frame.

    ``reason`` is ``"lost"`` for a missing packet and ``"expand"`` for samples inserted to raise
    the delay (nothing is missing; the next frame follows). ``fec_from``, on a lost packet, is the
    frame right after it when that one is already here: an Opus decoder with in-band FEC could
    rebuild the lost packet from it.
    """

    samples: int
    reason: ConcealmentReason
    #: The 32-bit RTP timestamp of the first concealed sample.
    timestamp: int
    playout_time: float
    fec_from: T | None = None


Playout: TypeAlias = PlayoutFrame[T] | Concealment[T]


@attrs.define(slots=True)
class JitterBufferStats:
    """Counters with the meaning of W3C webrtc-stats RTCInboundRtpStreamStats (in samples and
    sample-seconds, as defined there for audio)."""

    #: jitterBufferDelay: sum over emitted samples of (emit time - arrival time), in seconds.
    jitter_buffer_delay: float = 0.0
    #: jitterBufferEmittedCount: samples that came out of the buffer (concealment excluded).
    jitter_buffer_emitted_count: int = 0
    #: jitterBufferTargetDelay: sum over emitted samples of the target delay at emit time.
    jitter_buffer_target_delay: float = 0.0
    #: jitterBufferMinimumDelay: as the target, but ignoring jitterBufferTarget (the floor).
    jitter_buffer_minimum_delay: float = 0.0
    #: totalSamplesReceived: decoded plus concealed samples ("lost" concealment).
    total_samples_received: int = 0
    #: concealedSamples / silentConcealedSamples / concealmentEvents.
    concealed_samples: int = 0
    silent_concealed_samples: int = 0
    concealment_events: int = 0
    #: insertedSamplesForDeceleration / removedSamplesForAcceleration.
    inserted_samples_for_deceleration: int = 0
    removed_samples_for_acceleration: int = 0
    #: packetsDiscarded: late packets plus packets dropped because the buffer was full.
    packets_discarded: int = 0
    #: Packets that came after their slot had been played or concealed.
    packets_late: int = 0
    #: packetsDuplicated (a sequence number already queued).
    packets_duplicated: int = 0
    #: Packets put in (duplicates included).
    packets_received: int = 0


@attrs.define(slots=True)
class _Entry(Generic[T]):
    timestamp: int  # extended
    sequence_number: int  # extended
    frame: T
    arrival: float
    samples: int | None


class AudioJitterBuffer(Generic[T]):
    """Orders received audio frames and schedules them for playout (see the module docstring).

    ``clock_rate`` is the RTP clock (48000 for Opus, 8000 for G.711). Delays are in seconds of the
    caller's clock. ``max_packets`` bounds the queue; when it is full the frame that would play
    last is discarded. ``frame_samples`` is the frame duration assumed until two consecutive
    packets show it (20 ms by default).
    """

    def __init__(
        self,
        clock_rate: int,
        *,
        min_delay: float = 0.0,
        max_delay: float = 1.0,
        max_packets: int = 200,
        frame_samples: int | None = None,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be positive, not {clock_rate}")
        if not 0.0 <= min_delay <= max_delay:
            raise ValueError(f"need 0 <= min_delay <= max_delay, not {min_delay}, {max_delay}")
        if max_packets < 1:
            raise ValueError(f"max_packets must be at least 1, not {max_packets}")
        self.clock_rate = clock_rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.max_packets = max_packets
        self.stats = JitterBufferStats()
        self._frame_samples = frame_samples or max(1, round(clock_rate * 0.02))
        self._fade_samples = max(1, round(clock_rate * CONCEALMENT_FADE_SECONDS))
        self._max_hole = round(clock_rate * MAX_CONCEALMENT_SECONDS)
        self._max_frame = round(clock_rate * _MAX_FRAME_SECONDS)
        self._accelerate_interval = round(clock_rate * ACCELERATE_INTERVAL_SECONDS)
        self._floor = 0.0
        self._seq_unwrapper = SequenceUnwrapper()
        self._ts_unwrapper = TimestampUnwrapper()
        # Sorted by (extended timestamp, extended sequence number).
        self._queue: list[_Entry[T]] = []
        self._keys: list[tuple[int, int]] = []
        self._queued_sequence_numbers: set[int] = set()
        # Delay estimation: (arrival, relative delay) in arrival order, relative to the origin.
        self._origin: tuple[float, int] | None = None  # (arrival, extended timestamp)
        self._window: deque[tuple[float, float]] = deque()
        # The same relative delays, kept sorted as they come and go (an insort and a deletion
        # per packet), so the minimum and the percentile need no sort per packet.
        self._sorted_delays: list[float] = []
        self._window_min: float = 0.0
        self._raw_target = min_delay
        self._smoothed = min_delay
        self._smoothed_at: float | None = None
        # Playout state.
        self._offset = 0.0
        self._cursor: int | None = None  # extended timestamp of the next sample to play
        self._expected: int | None = None  # extended sequence number of the next packet
        self._resync = True  # re-anchor the mapping on the next frame
        self._last_end: float | None = None  # when the last playout item ends
        self._conceal_run = 0  # samples in the current run of "lost" concealment
        self._since_accelerate = 0

    # -- configuration ------------------------------------------------------------------------

    def set_minimum_delay(self, seconds: float | None) -> None:
        """W3C ``RTCRtpReceiver.jitterBufferTarget`` (here in seconds, None to clear): a floor
        under the target delay. It is held at ``max_delay`` at most."""
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0.0):
            raise ValueError(f"the minimum delay must be a non-negative number, not {seconds}")
        self._floor = seconds or 0.0

    @property
    def minimum_delay(self) -> float:
        """The delay the network calls for now (the target without the user's floor)."""
        return self._clamp(self._smoothed)

    @property
    def target_delay(self) -> float:
        """The delay playout aims for now, in seconds."""
        return min(max(self.minimum_delay, self._floor), self.max_delay)

    @property
    def applied_delay(self) -> float:
        """The delay the current playout mapping gives a frame that took the fastest path."""
        return self._offset - self._window_min

    def __len__(self) -> int:
        return len(self._queue)

    # -- input ----------------------------------------------------------------------------------

    def put(
        self,
        timestamp: int,
        sequence_number: int,
        frame: T,
        now: float,
        *,
        samples: int | None = None,
    ) -> bool:
        """Queue one received frame (its 32-bit RTP timestamp and 16-bit sequence number).

        ``samples`` is the frame's duration when the caller knows it (an Opus TOC says); without
        it the buffer infers it from the next packet. Returns False when the frame was dropped
        (late, duplicate, or the buffer is full and it would play last)."""
        stats = self.stats
        stats.packets_received += 1
        ext_ts = self._ts_unwrapper.unwrap(timestamp & _TS_MASK)
        ext_seq = self._seq_unwrapper.unwrap(sequence_number & _SEQ_MASK)
        self._observe_delay(ext_ts, now)
        cursor, expected = self._cursor, self._expected
        if (cursor is not None and ext_ts < cursor) or (
            expected is not None and ext_seq < expected
        ):
            stats.packets_late += 1
            stats.packets_discarded += 1
            return False
        if ext_seq in self._queued_sequence_numbers:
            stats.packets_duplicated += 1
            return False
        queue = self._queue
        if not queue and cursor is not None and not self._resync and self._slot(cursor) < now:
            self._resync = True  # its slot passed while nothing was queued: an underrun
        key = (ext_ts, ext_seq)
        index = bisect.bisect_left(self._keys, key)
        if len(queue) >= self.max_packets:
            stats.packets_discarded += 1
            if index >= len(queue):
                return False
            self._queued_sequence_numbers.discard(queue.pop().sequence_number)
            self._keys.pop()
        queue.insert(index, _Entry(ext_ts, ext_seq, frame, now, samples))
        self._keys.insert(index, key)
        self._queued_sequence_numbers.add(ext_seq)
        return True

    def _observe_delay(self, ext_ts: int, now: float) -> None:
        if self._origin is None:
            self._origin = (now, ext_ts)
        origin_arrival, origin_ts = self._origin
        relative = (now - origin_arrival) - (ext_ts - origin_ts) / self.clock_rate
        window = self._window
        ordered = self._sorted_delays
        if window and abs(relative - self._window_min) > _RESTART_SECONDS:
            window.clear()  # the sender's timeline restarted: learn the path again
            ordered.clear()
        window.append((now, relative))
        bisect.insort(ordered, relative)
        if len(window) > WINDOW_PACKETS:
            self._forget_oldest()
        self._update_target(now, changed=True)

    def _forget_oldest(self) -> None:
        """Drop the oldest delay of the window (from both views of it)."""
        _, delay = self._window.popleft()
        ordered = self._sorted_delays
        del ordered[bisect.bisect_left(ordered, delay)]

    def _update_target(self, now: float, *, changed: bool = False) -> None:
        window = self._window
        while window and window[0][0] < now - WINDOW_SECONDS:
            self._forget_oldest()
            changed = True
        if changed:
            ordered = self._sorted_delays
            if ordered:
                # The minimum stays when the window empties: the mapping still needs a base.
                # The spreads above it are the sorted delays less the minimum (subtracting a
                # constant keeps their order), so the percentile is one element of the list.
                minimum = self._window_min = ordered[0]
                rank = max(0, math.ceil(TARGET_PERCENTILE * len(ordered)) - 1)
                self._raw_target = ordered[rank] - minimum
            else:
                self._raw_target = 0.0
        raw = self._raw_target
        last = self._smoothed_at
        if last is None or raw >= self._smoothed:
            self._smoothed = raw
        elif now > last:
            self._smoothed = raw + (self._smoothed - raw) * math.exp(
                -(now - last) / TARGET_DECAY_SECONDS
            )
        if last is None or now > last:
            self._smoothed_at = now

    def _clamp(self, delay: float) -> float:
        return min(max(delay, self.min_delay), self.max_delay)

    # -- output ---------------------------------------------------------------------------------

    def _slot(self, ext_ts: int) -> float:
        assert self._origin is not None
        origin_arrival, origin_ts = self._origin
        return origin_arrival + (ext_ts - origin_ts) / self.clock_rate + self._offset

    def get_timer(self) -> float | None:
        """When :meth:`pop` next has something to return; None while waiting for a packet."""
        if not self._queue:
            return None
        if self._resync:
            return self._anchored_slot(self._queue[0])
        assert self._cursor is not None
        return self._slot(self._cursor)

    def _anchored_slot(self, first: _Entry[T]) -> float:
        """Where re-anchoring on ``first`` would put the cursor (see :meth:`_reanchor`)."""
        saved = self._offset, self._cursor
        self._reanchor(first)
        assert self._cursor is not None
        slot = self._slot(self._cursor)
        self._offset, self._cursor = saved
        return slot

    def _reanchor(self, first: _Entry[T]) -> None:
        """Map ``first`` to (fastest arrival + target), no earlier than its arrival and with no
        overlap with what was played before. Frames lost before it stay to be concealed."""
        assert self._origin is not None
        origin_arrival, origin_ts = self._origin
        expected = self._expected
        if self._cursor is None or expected is None or first.sequence_number <= expected:
            self._cursor = first.timestamp
        base = origin_arrival + (first.timestamp - origin_ts) / self.clock_rate
        offset = max(self._window_min + self.target_delay, first.arrival - base)
        if self._last_end is not None:
            cursor_base = origin_arrival + (self._cursor - origin_ts) / self.clock_rate
            offset = max(offset, self._last_end - cursor_base)
        self._offset = offset

    def pop(self, now: float) -> list[Playout[T]]:
        """Everything due at ``now``, in playout order."""
        self._update_target(now)
        out: list[Playout[T]] = []
        queue = self._queue
        while queue:
            first = queue[0]
            if self._resync:
                self._reanchor(first)
                self._resync = False
                if self._expected is None or first.sequence_number <= self._expected:
                    self._expected = first.sequence_number
            cursor, expected = self._cursor, self._expected
            assert cursor is not None and expected is not None
            due = self._slot(cursor)
            if due > now:
                break
            if first.timestamp < cursor:
                # Overlaps what was played (a frame longer than its spacing, or a reused
                # timestamp): too late for its slot.
                self._remove_first()
                self.stats.packets_late += 1
                self.stats.packets_discarded += 1
                continue
            if first.timestamp == cursor:
                if first.sequence_number > expected:
                    # A timestamp that does not advance across lost packets: nothing to conceal.
                    self._expected = first.sequence_number
                self._play_frame(first, due, now, out)
                continue
            missing = first.sequence_number - expected
            hole = first.timestamp - cursor
            if missing <= 0 or min(hole, missing * self._frame_samples) > self._max_hole:
                # A DTX/silence gap (consecutive sequence numbers) or a discontinuity.
                self._expected = first.sequence_number
                self._resync = True
                continue
            samples = min(hole, self._frame_samples)
            fec = first.frame if missing == 1 and samples == hole else None
            self._conceal(samples, "lost", cursor, due, fec, out)
            self._cursor = cursor + samples
            self._expected = expected + 1
            if missing == 1 and samples < hole:
                self._resync = True  # the rest of the hole is silence
        else:
            if self._cursor is not None and not self._resync and self._slot(self._cursor) <= now:
                self._resync = True  # underrun: wait for the next packet, then re-anchor
        return out

    def _remove_first(self) -> None:
        entry = self._queue.pop(0)
        del self._keys[0]
        self._queued_sequence_numbers.discard(entry.sequence_number)

    def _frame_duration(self, entry: _Entry[T]) -> int:
        if entry.samples is not None and entry.samples > 0:
            return entry.samples
        queue = self._queue
        if len(queue) > 1 and queue[1].sequence_number == entry.sequence_number + 1:
            step = queue[1].timestamp - entry.timestamp
            if 0 < step <= self._max_frame:
                self._frame_samples = step
        return self._frame_samples

    def _play_frame(self, entry: _Entry[T], due: float, now: float, out: list[Playout[T]]) -> None:
        stats = self.stats
        samples = self._frame_duration(entry)
        frame_seconds = samples / self.clock_rate
        target = self.target_delay
        applied = self.applied_delay
        if target - applied >= frame_seconds - _EPSILON:
            # Raise the delay by one frame: conceal in front of this frame, which then waits.
            stats.inserted_samples_for_deceleration += samples
            out.append(Concealment(samples, "expand", entry.timestamp & _TS_MASK, due))
            self._offset += frame_seconds
            self._last_end = due + frame_seconds
            return
        self._remove_first()
        self._cursor = entry.timestamp + samples
        self._expected = entry.sequence_number + 1
        self._since_accelerate += samples
        if (
            applied - target >= frame_seconds - _EPSILON
            and self._since_accelerate >= self._accelerate_interval
            and self._queue
            and self._queue[0].sequence_number == entry.sequence_number + 1
            and self._queue[0].timestamp == self._cursor
        ):
            # Lower the delay by one frame: this one is merged into the next, which takes its
            # slot (and comes out next in this pop).
            stats.removed_samples_for_acceleration += samples
            self._offset -= frame_seconds
            self._since_accelerate = 0
            out.append(
                PlayoutFrame(
                    entry.frame,
                    entry.timestamp & _TS_MASK,
                    entry.sequence_number & _SEQ_MASK,
                    samples,
                    # The slot the next frame gets, computed as it will be: ``due`` is the same
                    # time on paper, but rounding could put it a hair after the next frame's.
                    self._slot(self._cursor),
                    True,
                )
            )
            return
        self._conceal_run = 0
        self._last_end = due + frame_seconds
        stats.jitter_buffer_delay += samples * max(0.0, now - entry.arrival)
        stats.jitter_buffer_emitted_count += samples
        stats.jitter_buffer_target_delay += samples * target
        stats.jitter_buffer_minimum_delay += samples * self.minimum_delay
        stats.total_samples_received += samples
        out.append(
            PlayoutFrame(
                entry.frame,
                entry.timestamp & _TS_MASK,
                entry.sequence_number & _SEQ_MASK,
                samples,
                due,
            )
        )

    def _conceal(
        self,
        samples: int,
        reason: ConcealmentReason,
        ext_ts: int,
        due: float,
        fec: T | None,
        out: list[Playout[T]],
    ) -> None:
        stats = self.stats
        if self._conceal_run == 0:
            stats.concealment_events += 1
        fade = self._fade_samples
        run = self._conceal_run
        stats.silent_concealed_samples += max(0, run + samples - fade) - max(0, run - fade)
        self._conceal_run = run + samples
        stats.concealed_samples += samples
        stats.total_samples_received += samples
        self._last_end = due + samples / self.clock_rate
        out.append(Concealment(samples, reason, ext_ts & _TS_MASK, due, fec))
