"""When to send RTCP and what goes in it (RFC 3550 §6.2-§6.4, A.7; RFC 8108 §5.3; RFC 4585
§3.5; RFC 5506).

Pure: no trio, no clock, randomness from an injected ``random.Random``. The verbs are those of
every core: :meth:`RtcpScheduler.get_timer` says when the next regular report is due,
:meth:`RtcpScheduler.handle_timer` returns the compound packets to send then (typed packets; the
driver serializes them with :func:`~trio_rtc.rtp.rtcp.serialize_compound` and protects them with
SRTCP).

The interval. RFC 3550 §6.3 / A.7 computes a deterministic interval from the session's RTCP
bandwidth (5 % of the session bandwidth, §6.2), the number of members and senders and the average
compound size, bounds it below by a minimum, then multiplies it by a random factor in
[0.5, 1.5] so that reports of many participants do not synchronize. Choices made here:

- The minimum follows what browsers do rather than RFC 3550's fixed 5 s: libwebrtc reports every
  1 s (randomized) on video streams, whose loss and RTT feed congestion control and NACK
  timing, and every 5 s on audio. :data:`VIDEO_MINIMUM_INTERVAL` and
  :data:`AUDIO_MINIMUM_INTERVAL` hold the two; :func:`reduced_minimum_interval` gives RFC 3550
  §6.2's "reduced minimum" (360 s divided by the session bandwidth in kbit/s) for callers that
  prefer to scale with bandwidth. The first interval is halved (§6.2, "initial").
- No timer reconsideration (§6.3.3, §6.3.6): it matters for sessions whose membership changes
  quickly, and a peer connection has two endpoints. Without it the A.7 division by e - 3/2
  (which compensates for reconsideration's bias, §6.3.1) would make reports too frequent, so it
  is left out as well; the mean interval is the deterministic one.
- One endpoint may own several SSRCs (an audio and a video sender, RTX): their reports go out
  together in one compound (RFC 8108 §5.3), one SR per active sender, the report blocks in the
  first, and one SDES chunk per reporting SSRC. ``avg_rtcp_size`` is updated with the compound's
  size divided by the SSRCs it reports for, so aggregation does not inflate the interval
  (each SSRC's share is what it would have sent alone, as RFC 8108 §5.3 intends).

Feedback (NACK, PLI, FIR, REMB, TWCC) goes through :meth:`RtcpScheduler.send_feedback`: with
reduced-size RTCP negotiated (``a=rtcp-rsize``, RFC 5506 §3) it leaves at once on its own;
otherwise it rides an early full compound, at most one between regular reports (RFC 4585 §3.5.2,
with T_dither_max = 0 as for two members), and waits for the next regular report after that.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from .rtcp import (
    Bye,
    ReceiverReport,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SdesItemType,
    SenderReport,
    SourceDescription,
)
from .rtcp_feedback import RtcpFeedbackPacket
from .stats import ReceiveStreamStatistics, SendStreamStatistics

__all__ = [
    "AUDIO_MINIMUM_INTERVAL",
    "RTCP_BANDWIDTH_FRACTION",
    "VIDEO_MINIMUM_INTERVAL",
    "RtcpScheduler",
    "reduced_minimum_interval",
]

#: RFC 3550 §6.2's RTCP_MIN_TIME, and libwebrtc's audio report interval.
AUDIO_MINIMUM_INTERVAL = 5.0
#: libwebrtc's video report interval.
VIDEO_MINIMUM_INTERVAL = 1.0
#: RFC 3550 §6.2: RTCP gets 5 % of the session bandwidth.
RTCP_BANDWIDTH_FRACTION = 0.05
# RFC 3550 §6.3.1 / A.7: senders get a quarter of the RTCP bandwidth when they are at most a
# quarter of the members, so that they report often enough for lip-sync in large sessions.
_SENDER_FRACTION = 0.25
_RECEIVER_FRACTION = 1 - _SENDER_FRACTION
# A.7: avg_rtcp_size counts lower-layer headers too; IPv4 + UDP, plus SRTCP's index and tag.
_TRANSPORT_OVERHEAD = 20 + 8 + 4 + 10
# A.7: "the probable size of the first RTCP packet": an SR with a block and an SDES, on the wire.
_INITIAL_AVG_RTCP_SIZE = 100.0
_MAX_REPORT_BLOCKS = 31  # the 5-bit RC field
_MAX_PENDING_FEEDBACK = 64


def reduced_minimum_interval(session_bandwidth_bps: float) -> float:
    """RFC 3550 §6.2's reduced minimum: 360 divided by the session bandwidth in kbit/s.

    For 1 Mbit/s that is 0.36 s. RFC 3550 still recommends the 5 s minimum for the first report
    and for interoperation with unicast peers that do not scale; WebRTC peers tolerate both.
    """
    if session_bandwidth_bps <= 0:
        raise ValueError(f"session bandwidth must be positive, got {session_bandwidth_bps}")
    return 360.0 / (session_bandwidth_bps / 1000.0)


class RtcpScheduler:
    """Regular RTCP reports of one RTP session (one BUNDLE transport) and the feedback between.

    ``cname`` goes into every SDES. ``receiver_ssrc`` is the SSRC that reports when no local
    stream is sending (a receive-only endpoint still needs one, RFC 8108 §6.1). ``video`` picks
    the default minimum interval; ``minimum_interval`` overrides it. ``session_bandwidth_bps``,
    when known (``b=AS``/``b=TIAS``), lets the bandwidth rule lengthen the interval beyond the
    minimum. ``wallclock_offset`` is added to ``now`` to get the Unix wallclock of SR NTP
    timestamps, so that the core still never reads a clock.
    """

    def __init__(
        self,
        cname: str,
        rng: random.Random,
        *,
        receiver_ssrc: int,
        video: bool = False,
        minimum_interval: float | None = None,
        session_bandwidth_bps: float | None = None,
        reduced_size: bool = False,
        wallclock_offset: float = 0.0,
        max_packet_size: int = 1200,
        immediate_feedback: bool = False,
    ) -> None:
        if minimum_interval is None:
            minimum_interval = VIDEO_MINIMUM_INTERVAL if video else AUDIO_MINIMUM_INTERVAL
        if minimum_interval <= 0:
            raise ValueError(f"minimum interval must be positive, got {minimum_interval}")
        if session_bandwidth_bps is not None and session_bandwidth_bps <= 0:
            raise ValueError(f"session bandwidth must be positive, got {session_bandwidth_bps}")
        self.cname = cname
        self.receiver_ssrc = receiver_ssrc
        self.minimum_interval = minimum_interval
        self.session_bandwidth_bps = session_bandwidth_bps
        self.reduced_size = reduced_size
        #: RFC 4585 §3.5.2 Immediate Feedback mode (a two-party session, as WebRTC's are, RFC
        #: 8834 §5.1.1): without rtcp-rsize, each feedback goes at once in a compound of its
        #: own, instead of one early compound per report interval (Early RTCP mode).
        self.immediate_feedback = immediate_feedback
        self.wallclock_offset = wallclock_offset
        self.max_packet_size = max_packet_size
        self.avg_rtcp_size = _INITIAL_AVG_RTCP_SIZE
        self.senders: dict[int, SendStreamStatistics] = {}
        self.receivers: dict[int, ReceiveStreamStatistics] = {}
        self.reports_sent = 0
        self._rng = rng
        self._next_at: float | None = None
        self._last_report_at: float | None = None
        self._allow_early = True
        self._pending_feedback: list[RtcpFeedbackPacket] = []
        #: Feedback messages dropped, oldest first, past the 64 waiting for a compound.
        self.feedback_dropped = 0
        # packets_sent of each local SSRC at the last two reports (RFC 3550 §6.4: an SR goes out
        # if the SSRC sent since the report before the last one).
        self._sent_at_reports: dict[int, tuple[int, int]] = {}
        self._closed = False

    # --- streams --------------------------------------------------------------------------

    def add_sender(self, stats: SendStreamStatistics) -> None:
        self.senders[stats.ssrc] = stats

    def remove_sender(self, ssrc: int) -> None:
        self.senders.pop(ssrc, None)
        self._sent_at_reports.pop(ssrc, None)

    def add_receiver(self, stats: ReceiveStreamStatistics) -> None:
        self.receivers[stats.ssrc] = stats

    def remove_receiver(self, ssrc: int) -> None:
        self.receivers.pop(ssrc, None)

    # --- the interval ----------------------------------------------------------------------

    def _active_senders(self) -> list[SendStreamStatistics]:
        active = []
        for ssrc, stats in self.senders.items():
            if not stats.has_sent:
                continue
            _, before_last = self._sent_at_reports.get(ssrc, (0, 0))
            if stats.packets_sent != before_last:
                active.append(stats)
        return active

    def _heard_receivers(self) -> list[ReceiveStreamStatistics]:
        since = self._last_report_at
        return [
            r
            for r in self.receivers.values()
            if r.valid
            and r.last_packet_received_at is not None
            and (since is None or r.last_packet_received_at >= since)
        ]

    def deterministic_interval(self, *, initial: bool = False) -> float:
        """RFC 3550 A.7's interval before randomization, in seconds."""
        minimum = self.minimum_interval / 2 if initial else self.minimum_interval
        if self.session_bandwidth_bps is None:
            return minimum
        rtcp_bandwidth = self.session_bandwidth_bps * RTCP_BANDWIDTH_FRACTION / 8  # octets/s
        we_sent = bool(self._active_senders())
        members = max(1, len(self.senders)) + len(self.receivers)
        senders = len(self._active_senders()) + len(self._heard_receivers())
        n = members
        if senders <= members * _SENDER_FRACTION:
            if we_sent:
                rtcp_bandwidth *= _SENDER_FRACTION
                n = senders
            else:
                rtcp_bandwidth *= _RECEIVER_FRACTION
                n -= senders
        return max(minimum, self.avg_rtcp_size * n / rtcp_bandwidth)

    def next_interval(self, *, initial: bool = False) -> float:
        """One randomized interval: the deterministic one times a uniform factor in [0.5, 1.5]."""
        return self.deterministic_interval(initial=initial) * (self._rng.random() + 0.5)

    # --- the core's verbs ---------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Schedule the first report (half the minimum interval on average, RFC 3550 §6.2)."""
        if self._next_at is None and not self._closed:
            self._next_at = now + self.next_interval(initial=True)

    def get_timer(self) -> float | None:
        """When the next regular report is due, or None before :meth:`start` / after BYE."""
        return self._next_at

    def handle_timer(self, now: float) -> list[list[RtcpPacket]]:
        """The compound packets to send at ``now``: empty unless a regular report is due."""
        if self._next_at is None or now < self._next_at:
            return []
        compounds = self._compounds(now, self._take_feedback())
        self._next_at = now + self.next_interval()
        self._allow_early = True
        return compounds

    def send_feedback(
        self, packets: Iterable[RtcpFeedbackPacket], now: float
    ) -> list[list[RtcpPacket]]:
        """What to send now for these feedback messages; the rest waits for the next report."""
        packets = list(packets)
        if not packets or self._closed:
            return []
        if self.reduced_size:
            # RFC 5506 §3: with rtcp-rsize a feedback message may travel alone, which is what
            # lets NACKs and TWCC go out the moment they are ready.
            return [list(packets)]
        self._pending_feedback.extend(packets)
        # Our own queue, so bounded by our own rate of requests; the oldest are the stalest.
        excess = len(self._pending_feedback) - _MAX_PENDING_FEEDBACK
        if excess > 0:
            self.feedback_dropped += excess
            del self._pending_feedback[:excess]
        if self.immediate_feedback:
            return self._compounds(now, self._take_feedback())
        if not self._allow_early:
            return []
        self._allow_early = False
        return self._compounds(now, self._take_feedback())

    def on_rtcp_received(self, size: int) -> None:
        """Account for a received compound of ``size`` octets in ``avg_rtcp_size`` (A.7)."""
        self._update_avg(size + _TRANSPORT_OVERHEAD)

    def bye(self, now: float, reason: bytes | None = None) -> list[list[RtcpPacket]]:
        """The last compound: reports, SDES and a BYE of every local SSRC (RFC 3550 §6.6).

        Stops the timer. RFC 3550 §6.3.7's BYE back-off is for large groups and is not applied.
        """
        if self._closed:
            return []
        compounds = self._compounds(now, self._take_feedback())
        ssrcs = list(self.senders) or [self.receiver_ssrc]
        compounds[-1].append(Bye(ssrcs[:_MAX_REPORT_BLOCKS], reason))
        self._closed = True
        self._next_at = None
        return compounds

    # --- building compounds ---------------------------------------------------------------

    def _take_feedback(self) -> list[RtcpFeedbackPacket]:
        feedback, self._pending_feedback = self._pending_feedback, []
        return feedback

    def _sdes(self, ssrcs: list[int]) -> SourceDescription:
        cname = self.cname.encode()
        return SourceDescription(
            [SdesChunk(ssrc, [SdesItem(SdesItemType.CNAME, cname)]) for ssrc in ssrcs]
        )

    def _compounds(self, now: float, feedback: list[RtcpFeedbackPacket]) -> list[list[RtcpPacket]]:
        ntp_now = now + self.wallclock_offset
        blocks = [r.report_block(now) for r in self._heard_receivers()]
        active = self._active_senders()
        for stats in self.senders.values():
            before = self._sent_at_reports.get(stats.ssrc, (0, 0))
            self._sent_at_reports[stats.ssrc] = (stats.packets_sent, before[0])
        self._last_report_at = now

        # Report packets: one SR per active sender, the report blocks spread over them 31 at
        # a time, and extra RRs from the first reporting SSRC for any left over (§6.4.2).
        reports: list[SenderReport | ReceiverReport] = []
        for stats in active:
            chunk, blocks = blocks[:_MAX_REPORT_BLOCKS], blocks[_MAX_REPORT_BLOCKS:]
            reports.append(stats.sender_report(now, ntp_now, chunk))
        first_ssrc = active[0].ssrc if active else self.receiver_ssrc
        if not reports or blocks:
            while True:
                chunk, blocks = blocks[:_MAX_REPORT_BLOCKS], blocks[_MAX_REPORT_BLOCKS:]
                reports.append(ReceiverReport(first_ssrc, chunk))
                if not blocks:
                    break

        # Pack them into compounds of at most max_packet_size, each with its SDES (RFC 8108
        # §5.3: a compound split in several still starts with a report and carries CNAMEs).
        compounds: list[list[RtcpPacket]] = []
        current: list[SenderReport | ReceiverReport] = []
        size = 0
        for report in reports:
            report_size = len(report.serialize())
            ssrcs = _unique_ssrcs([*current, report])
            if current and size + report_size + _sdes_size(self.cname, ssrcs) > (
                self.max_packet_size
            ):
                compounds.append(self._close_compound(current))
                current, size = [], 0
            current.append(report)
            size += report_size
        compounds.append(self._close_compound(current))

        for packet in feedback:
            last = compounds[-1]
            packet_size = len(packet.serialize())
            if _compound_size(last) + packet_size > self.max_packet_size:
                last = [ReceiverReport(first_ssrc), self._sdes([first_ssrc])]
                compounds.append(last)
            last.append(packet)

        for compound in compounds:
            reporting = sum(isinstance(p, SenderReport | ReceiverReport) for p in compound)
            self._update_avg((_compound_size(compound) + _TRANSPORT_OVERHEAD) / max(1, reporting))
        self.reports_sent += len(compounds)
        return compounds

    def _close_compound(self, reports: list[SenderReport | ReceiverReport]) -> list[RtcpPacket]:
        compound: list[RtcpPacket] = list(reports)
        compound.append(self._sdes(_unique_ssrcs(reports)))
        return compound

    def _update_avg(self, size: float) -> None:
        # A.7: an exponentially weighted average with gain 1/16.
        self.avg_rtcp_size += (size - self.avg_rtcp_size) / 16


def _unique_ssrcs(reports: list[SenderReport | ReceiverReport]) -> list[int]:
    return list(dict.fromkeys(r.ssrc for r in reports))


def _sdes_size(cname: str, ssrcs: list[int]) -> int:
    # 4 header octets; per chunk the SSRC, CNAME type and length, the text, then at least one
    # null octet padded to 32 bits (§6.5).
    chunk = 4 + 2 + len(cname.encode())
    return 4 + len(ssrcs) * (chunk + 4 - chunk % 4)


def _compound_size(compound: list[RtcpPacket]) -> int:
    return sum(len(p.serialize()) for p in compound)
