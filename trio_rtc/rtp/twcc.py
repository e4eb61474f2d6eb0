"""Receive side of transport-wide congestion control
(draft-holmer-rmcat-transport-wide-cc-extensions-01 §3): record when each packet carrying a
transport-wide sequence number arrived, and turn the record into :class:`TwccFeedback` packets
for the media sender's bandwidth estimator.

Pure and bounded: :class:`TwccRecorder` sees 16-bit sequence numbers and arrival times in µs
(any non-negative epoch) and never reads a clock. The driver calls :meth:`TwccRecorder.on_packet`
for every received packet with the extension, and :meth:`TwccRecorder.feedback` once
:attr:`TwccRecorder.next_feedback_at` has passed.

Memory: at most ``max_packets`` arrivals are kept, and none older than ``max_age_us`` than the
newest. History already reported is kept within those bounds so that a packet arriving late
(reordered) moves the start of the next feedback back and is reported again, as received, the
way libwebrtc's receiver does. Sequence numbers between the start and the newest that have no
arrival are reported "not received" (lost).
"""

from __future__ import annotations

from collections import deque

from .rtcp_feedback import TwccFeedback
from .sequence import SequenceUnwrapper

__all__ = [
    "FEEDBACK_INTERVAL_US",
    "FEEDBACK_SHARE",
    "MAX_AGE_US",
    "MAX_FEEDBACK_INTERVAL_US",
    "MAX_PACKETS",
    "MAX_PACKETS_PER_FEEDBACK",
    "TwccRecorder",
]

#: How often feedback is sent at most while packets arrive.
FEEDBACK_INTERVAL_US = 50_000
#: How seldom at least: a slow stream (audio alone) is reported every 250 ms.
MAX_FEEDBACK_INTERVAL_US = 250_000
#: Between the two, feedback takes about this share of the reported stream's bitrate (as in
#: libwebrtc): a 64 kbit/s Opus stream is reported about every 170 ms, not 20 times a second;
#: video of 220 kbit/s or more every 50 ms. Each feedback costs both ends a wake-up, a packet
#: and a parse.
FEEDBACK_SHARE = 0.05
#: The size feedback is reckoned to have for that share (bytes, libwebrtc's figure).
_FEEDBACK_SIZE = 68
#: Arrivals kept at most, and for at most this long behind the newest one.
MAX_PACKETS = 10_000
MAX_AGE_US = 1_000_000
#: Sequence numbers one feedback packet describes at most; more go in several.
MAX_PACKETS_PER_FEEDBACK = 1000
# A receive delta is a signed 16-bit count of 250 µs ticks (§3.1.5): stay well inside it.
_MAX_DELTA_US = 8_000_000


class TwccRecorder:
    """Arrival times of transport-wide sequence numbers, and the feedback that reports them.

    ``sender_ssrc`` is ours (the feedback's packet sender); the media SSRC of every feedback is
    the first remote SSRC passed to :meth:`on_packet` (the draft leaves it unused; libwebrtc
    puts the first media SSRC there too).
    """

    __slots__ = (
        "_arrivals",
        "_bytes",
        "_feedback_count",
        "_highest",
        "_last_feedback_at",
        "_order",
        "_report_from",
        "_reported_to",
        "_unwrapper",
        "interval_us",
        "max_age_us",
        "max_interval_us",
        "max_packets",
        "max_per_feedback",
        "media_ssrc",
        "min_interval_us",
        "packets_dropped",
        "sender_ssrc",
    )

    def __init__(
        self,
        sender_ssrc: int,
        *,
        interval_us: int = FEEDBACK_INTERVAL_US,
        max_interval_us: int = MAX_FEEDBACK_INTERVAL_US,
        max_packets: int = MAX_PACKETS,
        max_age_us: int = MAX_AGE_US,
        max_per_feedback: int = MAX_PACKETS_PER_FEEDBACK,
    ) -> None:
        if max_packets < 1 or max_per_feedback < 1 or interval_us < 0 or max_age_us < 0:
            raise ValueError("TWCC recorder bounds must be positive")
        self.sender_ssrc = sender_ssrc
        self.media_ssrc: int | None = None
        #: The current feedback interval (µs): ``min_interval_us`` .. ``max_interval_us``, set by
        #: the bitrate of the packets reported (see :data:`FEEDBACK_SHARE`) when their sizes are
        #: given to :meth:`on_packet`.
        self.interval_us = interval_us
        self.min_interval_us = interval_us
        self.max_interval_us = max(max_interval_us, interval_us)
        #: Bytes of the packets recorded since the last feedback (sizes given).
        self._bytes = 0
        self.max_packets = max_packets
        self.max_age_us = max_age_us
        self.max_per_feedback = min(max_per_feedback, 0xFFFF)
        self._unwrapper = SequenceUnwrapper()
        #: extended sequence number -> arrival time in µs.
        self._arrivals: dict[int, int] = {}
        #: Extended sequence numbers in the order they arrived (oldest first), for pruning.
        self._order: deque[int] = deque()
        self._highest: int | None = None
        #: The extended sequence number the next feedback starts at, or None: nothing to report.
        self._report_from: int | None = None
        #: The highest extended sequence number the last feedback covered.
        self._reported_to: int | None = None
        self._last_feedback_at: int | None = None
        self._feedback_count = 0
        #: Packets ignored: a duplicate, or older than the history kept.
        self.packets_dropped = 0

    def __len__(self) -> int:
        return len(self._arrivals)

    @property
    def feedback_count(self) -> int:
        """The 8-bit feedback packet count the next feedback will carry."""
        return self._feedback_count

    @property
    def next_feedback_at(self) -> int | None:
        """When (µs) feedback is next due, or None while there is nothing unreported."""
        if self._report_from is None:
            return None
        if self._last_feedback_at is None:
            # The first feedback goes one interval after the first unreported arrival.
            return self._arrivals.get(self._report_from, 0) + self.interval_us
        return self._last_feedback_at + self.interval_us

    def on_packet(self, sequence: int, arrival_us: int, media_ssrc: int, size: int = 0) -> None:
        """Record that transport-wide sequence number ``sequence`` arrived at ``arrival_us``
        (``size``: its bytes on the wire, which set the feedback interval; 0: not known)."""
        if arrival_us < 0:
            raise ValueError("arrival times must not be negative")
        if self.media_ssrc is None:
            self.media_ssrc = media_ssrc
        ext = self._unwrapper.unwrap(sequence)
        highest = self._highest
        if ext in self._arrivals or (highest is not None and ext <= highest - self.max_packets):
            self.packets_dropped += 1
            return
        self._arrivals[ext] = arrival_us
        self._bytes += size
        self._order.append(ext)
        if highest is None or ext > highest:
            self._highest = ext
        if self._report_from is None or ext < self._report_from:
            # A reordered packet already reported lost is reported again, as received.
            self._report_from = ext
        self._prune(arrival_us)

    def _prune(self, now_us: int) -> None:
        arrivals, order = self._arrivals, self._order
        highest = self._highest
        assert highest is not None
        oldest_seq = highest - self.max_packets
        oldest_time = now_us - self.max_age_us
        while order:
            ext = order[0]
            if len(arrivals) <= self.max_packets and ext > oldest_seq:
                if arrivals[ext] >= oldest_time:
                    break
            order.popleft()
            del arrivals[ext]
        if self._report_from is not None:
            if not arrivals:
                self._report_from = None
            elif self._report_from not in arrivals:
                # What was to be reported got pruned: start at the oldest still kept.
                start = self._report_from
                self._report_from = min((e for e in arrivals if e >= start), default=None)

    def feedback(self, now_us: int) -> list[TwccFeedback]:
        """Feedback for everything recorded since the last call (possibly several packets);
        empty when nothing is new. Restarts the interval at ``now_us``."""
        start = self._report_from
        if start is None:
            return []
        last = self._last_feedback_at
        if last is not None and self._bytes and now_us > last:
            bitrate = self._bytes * 8_000_000 / (now_us - last)
            interval = _FEEDBACK_SIZE * 8_000_000 / (FEEDBACK_SHARE * bitrate)
            self.interval_us = int(min(max(interval, self.min_interval_us), self.max_interval_us))
        self._bytes = 0
        self._last_feedback_at = now_us
        self._report_from = None
        highest = self._highest
        assert highest is not None
        reported = self._reported_to
        if reported is not None and reported + 1 < start:
            # Packets right after the last feedback that never arrived: the next feedback
            # starts at the first arrival, so without this they were never reported lost
            # (16.7 % of drops showed as about 10 % to the sender). Within the history only.
            start = max(reported + 1, highest - self.max_packets + 1)
        self._reported_to = highest
        arrivals = self._arrivals
        out: list[TwccFeedback] = []
        seq = start
        while seq <= highest:
            # One feedback from ``seq``: up to max_per_feedback sequence numbers, ended early
            # before a receive delta that would not fit, and ending with a received packet.
            times: list[int | None] = []
            last_received = -1
            previous: int | None = None
            nxt = seq
            while nxt <= highest and len(times) < self.max_per_feedback:
                arrival = arrivals.get(nxt)
                if arrival is not None:
                    if previous is not None and abs(arrival - previous) > _MAX_DELTA_US:
                        break
                    previous = arrival
                    last_received = len(times)
                times.append(arrival)
                nxt += 1
            if last_received < 0:
                # A whole feedback's worth of nothing: sequence numbers the sender skipped or
                # long lost, not news. Resume at the next packet that arrived.
                seq = nxt
                while seq <= highest and seq not in arrivals:
                    seq += 1
                continue
            del times[last_received + 1 :]
            out.append(self._make(seq, times))
            seq += len(times)
        return out

    def _make(self, start: int, times: list[int | None]) -> TwccFeedback:
        count = self._feedback_count
        self._feedback_count = (count + 1) & 0xFF
        media = self.media_ssrc if self.media_ssrc is not None else 0
        return TwccFeedback.from_arrival_times(
            self.sender_ssrc, media, count, start & 0xFFFF, times
        )
