"""The pacer: spreads outgoing RTP packets over time at a rate derived from the bandwidth
estimate, instead of sending each encoded frame as one burst that fills the bottleneck queue.

Pure: no trio, no clock, no I/O; generic over what a packet is (the driver's RtpPacket, or a
(sender, packet) pair). The driver:

* sets the rate with :meth:`Pacer.set_estimate` whenever the estimator changes;
* :meth:`Pacer.enqueue` the packets of a sender with their kind and size;
* hands probe clusters from the estimator to :meth:`Pacer.add_probe_cluster`;
* calls :meth:`Pacer.datagrams_to_send` when :meth:`Pacer.get_timer` has passed (and after each
  enqueue), and sends what comes back in order, stamping each with a transport-wide sequence
  number (``probe_cluster`` goes to the estimator's ``on_packet_sent``). A :class:`Paced` with
  ``item=None`` asks for ``size`` bytes of padding (an RTX padding packet, RFC 4588 §4, or
  RTP padding) for a probe.

Rate: ``pacing_factor`` x the estimate (libwebrtc paces at 2.5x: the encoder's rate is the
estimate, and pacing a frame faster than the average keeps the delay of each frame low while
still breaking up its burst). Packets go in priority order: audio (never held back, but counted),
retransmissions, video, and probe padding last. A queue holding more than ``max_queue_time`` of
data at the pacing rate is drained faster so that it empties within that time (latency over
rate), and beyond ``max_queue_packets`` the oldest video packets are dropped and counted
(bounded memory whatever the encoder does).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

import attrs

from .gcc import ProbeCluster

__all__ = ["Paced", "Pacer", "PacketKind"]

T = TypeVar("T")

PACING_FACTOR = 2.5
MAX_QUEUE_TIME = 2.0
MAX_QUEUE_PACKETS = 10_000
#: After an idle moment up to this much sending time may go at once.
MAX_BURST = 0.005
#: At a pacing rate where this much sending time holds more than a full packet, packets may
#: leave up to that far ahead of their slot, so that a wake-up of the sending task releases a
#: few packets instead of one (libwebrtc's pacer works in 5 ms steps). Below about 5 Mbit/s of
#: pacing rate the spacing is exact, one packet per wake-up.
PROCESS_INTERVAL = 0.002
PADDING_PACKET_SIZE = 1200
#: After a delay-based back-off (:meth:`Pacer.limit_retransmissions`) the link is congested:
#: for this long retransmissions leave only within RETRANSMISSION_SHARE of the new estimate, and
#: one that waited RETRANSMISSION_MAX_WAIT for that budget is dropped (the receiver asks again
#: if it still needs it). Measured on bench_links (c), 3 -> 1 Mbit/s: the resends of what the
#: bottleneck queue dropped before the overuse was found went out on top of media already at
#: the new estimate, and kept the send rate above the new capacity for 0.7 s after the cut.
RETRANSMISSION_LIMIT_SECONDS = 1.0
RETRANSMISSION_SHARE = 0.15
RETRANSMISSION_MAX_WAIT = 0.1
MAX_PROBE_CLUSTERS = 8
# Floating point slack when comparing the debt with zero (bytes).
_EPSILON = 1e-6


class PacketKind(enum.IntEnum):
    AUDIO = 0
    RETRANSMISSION = 1
    VIDEO = 2
    PADDING = 3


@attrs.define(slots=True)
class Paced(Generic[T]):
    """A packet released by the pacer (``item`` None: padding of ``size`` bytes for a probe)."""

    item: T | None
    size: int
    kind: PacketKind
    probe_cluster: int | None = None


@attrs.define(slots=True)
class _Probe:
    cluster: ProbeCluster
    started: float | None = None
    bytes_sent: int = 0
    packets_sent: int = 0


@attrs.define
class PacerCounters:
    packets_sent: int = 0
    bytes_sent: int = 0
    padding_bytes_sent: int = 0
    packets_dropped: int = 0
    probe_clusters_sent: int = 0
    #: Retransmissions dropped while limited after a back-off (also in ``packets_dropped``).
    retransmissions_dropped: int = 0


class Pacer(Generic[T]):
    """Releases queued packets at the pacing rate, by priority."""

    def __init__(
        self,
        estimate_bps: int,
        *,
        pacing_factor: float = PACING_FACTOR,
        max_queue_time: float = MAX_QUEUE_TIME,
        max_queue_packets: int = MAX_QUEUE_PACKETS,
        max_burst: float = MAX_BURST,
        process_interval: float = PROCESS_INTERVAL,
    ) -> None:
        if estimate_bps <= 0 or pacing_factor <= 0 or max_queue_packets < 1:
            raise ValueError("pacer rate and bounds must be positive")
        self.pacing_factor = pacing_factor
        self.max_queue_time = max_queue_time
        self.max_queue_packets = max_queue_packets
        self.max_burst = max_burst
        self.process_interval = process_interval
        self._estimate = float(estimate_bps)
        #: Per kind (audio, retransmission, video): (item, size, enqueued at).
        self._queues: tuple[deque[tuple[T, int, float]], ...] = (deque(), deque(), deque())
        self._queued_bytes = 0
        self._debt = 0.0  # bytes sent ahead of the pacing rate
        self._last: float | None = None
        self._probes: deque[_Probe] = deque()
        self.counters = PacerCounters()
        # Retransmissions after a back-off: limited until this time, at this rate (bytes/s),
        # with this many bytes of budget left (a token bucket of one packet).
        self._rtx_until: float | None = None
        self._rtx_rate = 0.0
        self._rtx_tokens = 0.0

    # --- configuration ----------------------------------------------------------------------

    def set_estimate(self, estimate_bps: int) -> None:
        """The bandwidth estimate (bits/s); the pacing rate follows it."""
        if estimate_bps > 0:
            self._estimate = float(estimate_bps)

    def limit_retransmissions(self, now: float, estimate_bps: int) -> None:
        """A delay-based back-off to ``estimate_bps`` happened: limit retransmissions (see
        ``RETRANSMISSION_LIMIT_SECONDS``)."""
        self._advance(now)
        self._rtx_until = now + RETRANSMISSION_LIMIT_SECONDS
        self._rtx_rate = max(estimate_bps, 0) * RETRANSMISSION_SHARE / 8
        self._rtx_tokens = min(self._rtx_tokens, float(PADDING_PACKET_SIZE))

    @property
    def retransmissions_limited(self) -> bool:
        until = self._rtx_until
        return until is not None and (self._last or 0.0) < until

    @property
    def pacing_rate(self) -> float:
        """Bits/s at which queued packets leave now: ``pacing_factor`` x the estimate, more when
        the queue would otherwise hold more than ``max_queue_time``."""
        rate = self._estimate * self.pacing_factor
        if self.max_queue_time > 0 and self._queued_bytes:
            # libwebrtc's rule: send what is queued before its oldest packet has waited
            # max_queue_time (a rate from the queue size alone would drain it ever slower).
            oldest = min((q[0][2] for q in self._queues if q), default=self._last or 0.0)
            waited = (self._last or 0.0) - oldest
            left = max(self.max_queue_time - waited, 0.001)
            rate = max(rate, self._queued_bytes * 8 / left)
        return rate

    @property
    def queued_packets(self) -> int:
        return sum(len(q) for q in self._queues)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def expected_queue_time(self) -> float:
        """How long the queue takes to drain at the pacing rate (seconds)."""
        return self._queued_bytes * 8 / self.pacing_rate

    # --- input ------------------------------------------------------------------------------

    def enqueue(self, item: T, size: int, kind: PacketKind, now: float) -> None:
        """Queue one packet of ``size`` bytes."""
        self.enqueue_many([item], [size], kind, now)

    def enqueue_many(
        self, items: Iterable[T], sizes: Iterable[int], kind: PacketKind, now: float
    ) -> None:
        """Queue packets of one kind, in order."""
        if kind is PacketKind.PADDING:
            raise ValueError("padding is generated by the pacer, not queued")
        self._advance(now)
        queue = self._queues[kind]
        for item, size in zip(items, sizes, strict=True):
            queue.append((item, size, now))
            self._queued_bytes += size
        self._bound()

    def _bound(self) -> None:
        queues = self._queues
        while sum(len(q) for q in queues) > self.max_queue_packets:
            # Oldest video first, then old retransmissions: audio is small and most urgent.
            for kind in (PacketKind.VIDEO, PacketKind.RETRANSMISSION, PacketKind.AUDIO):
                if queues[kind]:
                    _, size, _ = queues[kind].popleft()
                    self._queued_bytes -= size
                    self.counters.packets_dropped += 1
                    break

    def add_probe_cluster(self, cluster: ProbeCluster) -> None:
        if len(self._probes) < MAX_PROBE_CLUSTERS:
            self._probes.append(_Probe(cluster))

    # --- timing -----------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        last = self._last
        self._last = now
        if last is None or now <= last:
            return
        bytes_per_second = self.pacing_rate / 8  # once: it looks at every queue
        burst = bytes_per_second * self.max_burst
        self._debt = max(self._debt - bytes_per_second * (now - last), -burst)
        until = self._rtx_until
        if until is not None:
            if now >= until:
                # The limit is over: nothing to refill on every later call. The budget is full
                # again (as the refill had made it: one packet), ready for the next limit.
                self._rtx_until = None
                self._rtx_tokens = float(PADDING_PACKET_SIZE)
            else:
                self._rtx_tokens = min(
                    self._rtx_tokens + self._rtx_rate * (now - last), float(PADDING_PACKET_SIZE)
                )

    def _allowance(self, rate: float) -> float:
        """Bytes media may run ahead of the rate (see ``PROCESS_INTERVAL``)."""
        budget = rate / 8 * self.process_interval
        return budget if budget > PADDING_PACKET_SIZE else 0.0

    def _probe_due(self, probe: _Probe, now: float) -> float:
        if probe.started is None:
            return now
        return probe.started + probe.bytes_sent * 8 / probe.cluster.bitrate

    def get_timer(self) -> float | None:
        """When :meth:`datagrams_to_send` next releases something (None: nothing queued)."""
        last = self._last if self._last is not None else 0.0
        if self._queues[PacketKind.AUDIO]:
            return last
        if self._probes:
            return self._probe_due(self._probes[0], last)
        if self._queues[PacketKind.VIDEO] or (
            self._queues[PacketKind.RETRANSMISSION] and not self.retransmissions_limited
        ):
            # Wake when the debt is paid; the release may then run ahead by the allowance.
            return last + max(self._debt, 0.0) * 8 / self.pacing_rate
        due = self._retransmission_due()
        if due is not None:
            return max(due, last + max(self._debt, 0.0) * 8 / self.pacing_rate)
        return None

    def handle_timer(self, now: float) -> list[Paced[T]]:
        return self.datagrams_to_send(now)

    def _pop_media(self) -> tuple[T, int, PacketKind] | None:
        queues = self._queues
        resends = queues[PacketKind.RETRANSMISSION]
        if resends and self.retransmissions_limited:
            limited = self._pop_limited_retransmission(resends)
            if limited is not None:
                return limited
        elif resends:
            resend, size, _ = resends.popleft()
            self._queued_bytes -= size
            return resend, size, PacketKind.RETRANSMISSION
        video = queues[PacketKind.VIDEO]
        if video:
            media, size, _ = video.popleft()
            self._queued_bytes -= size
            return media, size, PacketKind.VIDEO
        return None

    def _pop_limited_retransmission(
        self, resends: deque[tuple[T, int, float]]
    ) -> tuple[T, int, PacketKind] | None:
        """The next retransmission the budget after a back-off allows, dropping those that
        waited too long for it; None when the budget is spent."""
        now = self._last or 0.0
        counters = self.counters
        while resends:
            item, size, queued_at = resends[0]
            if now - queued_at > RETRANSMISSION_MAX_WAIT:
                resends.popleft()
                self._queued_bytes -= size
                counters.packets_dropped += 1
                counters.retransmissions_dropped += 1
                continue
            if self._rtx_tokens + _EPSILON < size:
                return None
            resends.popleft()
            self._queued_bytes -= size
            self._rtx_tokens -= size
            return item, size, PacketKind.RETRANSMISSION
        return None

    def _retransmission_due(self) -> float | None:
        """While limited, when the oldest queued retransmission can go (or must be dropped)."""
        resends = self._queues[PacketKind.RETRANSMISSION]
        if not resends or not self.retransmissions_limited:
            return None
        now = self._last or 0.0
        _, size, queued_at = resends[0]
        missing = size - self._rtx_tokens
        refill = now + missing / self._rtx_rate if self._rtx_rate > 0 else math.inf
        return max(now, min(refill, queued_at + RETRANSMISSION_MAX_WAIT + _EPSILON))

    def datagrams_to_send(self, now: float) -> list[Paced[T]]:
        """The packets to send now, in order."""
        self._advance(now)
        queues = self._queues
        if not (self._probes or queues[0] or queues[1] or queues[2]):
            # Nothing queued (the driver asks after every wake-up, most of which are not for
            # the pacer): the time is accounted for above, and nothing more would happen.
            return []
        out: list[Paced[T]] = []
        counters = self.counters
        audio = queues[PacketKind.AUDIO]
        while audio:
            item, size, _ = audio.popleft()
            self._queued_bytes -= size
            self._debt += size
            out.append(Paced(item, size, PacketKind.AUDIO))
        while self._probes:
            probe = self._probes[0]
            if probe.started is None:
                probe.started = now
                counters.probe_clusters_sent += 1
            if self._probe_due(probe, now) > now + _EPSILON:
                break
            cluster = probe.cluster
            media = self._pop_media()
            if media is not None:
                item, size, kind = media
                out.append(Paced(item, size, kind, cluster.id))
            else:
                size = min(PADDING_PACKET_SIZE, max(cluster.min_bytes - probe.bytes_sent, 200))
                counters.padding_bytes_sent += size
                out.append(Paced(None, size, PacketKind.PADDING, cluster.id))
            probe.bytes_sent += size
            probe.packets_sent += 1
            if probe.bytes_sent >= cluster.min_bytes and probe.packets_sent >= cluster.min_packets:
                self._probes.popleft()
        # While a probe runs, media leaves as part of it (at the probe's rate), so that the
        # probe measures its own rate and not the sum with paced media.
        allowance = self._allowance(self.pacing_rate) + _EPSILON
        while not self._probes and self._debt <= allowance:
            media = self._pop_media()
            if media is None:
                break
            item, size, kind = media
            self._debt += size
            out.append(Paced(item, size, kind))
        counters.packets_sent += len(out)
        counters.bytes_sent += sum(p.size for p in out)
        return out
