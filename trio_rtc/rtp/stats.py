"""Per-stream RTP statistics: what a receiver reports and what a sender states (RFC 3550 §6.4).

Pure: no trio, no clock. Every method that depends on time takes ``now`` in seconds on the
caller's monotonic clock; only :meth:`SendStreamStatistics.sender_report` also takes the
wallclock (``ntp_now``, Unix seconds) that goes into the SR's NTP timestamp.

:class:`ReceiveStreamStatistics` follows RFC 3550 Appendix A closely:

- A.1: a new source is on probation until ``MIN_SEQUENTIAL`` packets arrive in sequence; a jump
  of more than ``MAX_DROPOUT`` ahead or ``MAX_MISORDER`` behind is treated as a restart when the
  next packet confirms it, and otherwise discarded.
- A.3: cumulative loss is ``expected - received`` (duplicates count as received, so it can go
  negative), the fraction lost is computed over the interval since the previous report block.
- A.8: interarrival jitter in RTP timestamp units, with the arrival time converted to the codec
  clock rate.

:class:`SendStreamStatistics` counts what we send, builds the SR (with an RTP timestamp
extrapolated to the report's time) and measures the round-trip time from report blocks that
echo our SRs (RFC 3550 §6.4.1).
"""

from __future__ import annotations

from collections.abc import Sequence

from .ntp import (
    dlsr_from_seconds,
    middle32,
    ntp_to_seconds,
    rtt_seconds,
    seconds_to_middle32,
    seconds_to_ntp,
)
from .packet import RtpPacket
from .rtcp import ReportBlock, SenderReport
from .sequence import timestamp_diff, timestamp_newer

__all__ = [
    "DUPLICATE_WINDOW",
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "ReceiveStreamStatistics",
    "SendStreamStatistics",
]

# RFC 3550 A.1's suggested constants: two packets in sequence validate a source; a jump of 3000
# forward or 100 back is "large" (at 50 packets/s, a minute of loss or two seconds of delay).
MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100
_SEQ_MOD = 1 << 16
_SEQ_MASK = _SEQ_MOD - 1

#: How many of the most recent sequence numbers are remembered to recognize duplicates. A
#: duplicate older than that is counted as a late packet, as RFC 3550 does for all of them.
DUPLICATE_WINDOW = 1024
_WINDOW_MASK = (1 << DUPLICATE_WINDOW) - 1

# Largest cumulative loss that fits the signed 24-bit field (A.3 clamps rather than wraps).
_LOST_MAX = 0x7F_FFFF
_LOST_MIN = -0x80_0000
# How many of our own SRs we remember for matching LSR echoes: a report block echoes the last
# SR its sender received, which is rarely older than a couple of report intervals.
_SENT_SR_MEMORY = 8


class ReceiveStreamStatistics:
    """Reception statistics of one remote SSRC (RFC 3550 §6.4.1, A.1, A.3, A.8).

    Feed every RTP packet of the stream to :meth:`on_packet` and every SR of its SSRC to
    :meth:`on_sender_report`; ask :meth:`report_block` once per RTCP report. ``clock_rate`` is the
    codec's RTP clock rate in Hz (jitter and lip-sync need it).
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_initialized",
        "_last_arrival",
        "_last_timestamp",
        "_max_seq",
        "_probation",
        "_received_mask",
        "_received_prior",
        "_sr_ntp",
        "_sr_received_at",
        "_sr_rtp",
        "bytes_received",
        "clock_rate",
        "duplicates",
        "fraction_lost",
        "header_bytes_received",
        "jitter_estimate",
        "last_packet_received_at",
        "packets_discarded",
        "packets_received",
        "remote_octets_sent",
        "remote_packets_sent",
        "remote_reports",
        "retransmitted_bytes_received",
        "retransmitted_packets_received",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        #: A.1 ``received``: packets counted since the source was validated (duplicates included).
        self.packets_received = 0
        #: Payload octets of counted packets (W3C ``bytesReceived`` excludes header and padding).
        self.bytes_received = 0
        #: Header and padding octets, when :meth:`on_packet` is given the datagram size.
        self.header_bytes_received = 0
        #: The peer's own counts from its latest SR (RFC 3550 §6.4.1), and how many SRs came.
        self.remote_packets_sent = 0
        self.remote_octets_sent = 0
        self.remote_reports = 0
        #: Copies of a packet already counted, recognized within the last DUPLICATE_WINDOW.
        self.duplicates = 0
        #: Packets recovered by retransmission (RTX, RFC 4588): counted as received (they were
        #: not lost in the end) but kept out of the jitter estimate (W3C
        #: ``retransmittedPacketsReceived``/``retransmittedBytesReceived``).
        self.retransmitted_packets_received = 0
        self.retransmitted_bytes_received = 0
        #: Packets not counted: during probation, or far out of sequence (A.1 "bad" packets).
        self.packets_discarded = 0
        #: A.8 ``jitter``, in RTP timestamp units, unrounded.
        self.jitter_estimate = 0.0
        #: The fraction lost of the last report block, 8-bit fixed point.
        self.fraction_lost = 0
        self.last_packet_received_at: float | None = None
        self._initialized = False
        self._probation = MIN_SEQUENTIAL
        self._max_seq = 0
        self._cycles = 0
        self._base_seq = 0
        self._bad_seq = _SEQ_MOD + 1  # a value no 16-bit sequence number can equal
        self._expected_prior = 0
        self._received_prior = 0
        # Bit i set: extended sequence number (highest - i) was counted.
        self._received_mask = 0
        self._last_arrival = 0.0
        self._last_timestamp: int | None = None
        self._sr_ntp = 0
        self._sr_rtp = 0
        self._sr_received_at: float | None = None

    # --- RTP ---------------------------------------------------------------------------------

    def on_packet(
        self,
        packet: RtpPacket,
        now: float,
        size: int | None = None,
        *,
        retransmitted: bool = False,
    ) -> bool:
        """Account for one received packet of this SSRC; True when it counts (A.1 ``update_seq``).

        False means probation (a new or restarted source not yet confirmed) or a sequence number
        too far from the stream to trust. The caller may still play such a packet out; only the
        statistics ignore it. ``size`` is the whole datagram's length, for header byte counts.
        ``retransmitted``: recovered from RTX; its lateness is the repair's, not jitter.
        """
        seq = packet.sequence_number
        if retransmitted:
            self.retransmitted_packets_received += 1
            self.retransmitted_bytes_received += len(packet.payload)
            if not self._initialized or self._probation:
                return False
            udelta = (seq - self._max_seq) & _SEQ_MASK
            if udelta == 0 or udelta > _SEQ_MOD - MAX_MISORDER:
                behind = 0 if udelta == 0 else _SEQ_MOD - udelta
                if self._mark_old(behind):
                    # Already here (a retransmission used as a bandwidth probe, or one that
                    # crossed the original): nothing was lost, nothing more was received.
                    self.duplicates += 1
                    return False
                self.packets_received += 1
                self.bytes_received += len(packet.payload)
                return True
            return False  # a retransmission ahead of the stream: not ours to count
        self.last_packet_received_at = now
        if not self._initialized:
            # A.1: a new source starts on probation, as if the previous packet were seq - 1.
            self._initialized = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) & _SEQ_MASK
            self._probation = MIN_SEQUENTIAL
        udelta = (seq - self._max_seq) & _SEQ_MASK
        if self._probation:
            if udelta == 1:
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    self._count(packet, now, size, False)
                    return True
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = seq
            self.packets_discarded += 1
            return False
        if udelta < MAX_DROPOUT:
            # In order, possibly with a gap; crossing zero starts a new cycle.
            if seq < self._max_seq:
                self._cycles += _SEQ_MOD
            self._max_seq = seq
            duplicate = self._advance(udelta)
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            # A very large jump. Two in a row (the second exactly following the first) mean the
            # sender restarted its sequence: start over without probation, as A.1 does.
            if seq == self._bad_seq:
                self._init_seq(seq)
                duplicate = False
            else:
                self._bad_seq = (seq + 1) & _SEQ_MASK
                self.packets_discarded += 1
                return False
        else:
            # Behind the highest by at most MAX_MISORDER: a reordered packet or a duplicate.
            duplicate = self._mark_old(_SEQ_MOD - udelta)
        self._count(packet, now, size, duplicate)
        return True

    def _init_seq(self, seq: int) -> None:
        # A.1 init_seq; also restarts the interval counters so the next fraction is sane.
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = _SEQ_MOD + 1
        self._cycles = 0
        self.packets_received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._received_mask = 1  # init_seq is only called for a packet that is counted
        self._last_timestamp = None

    def _advance(self, delta: int) -> bool:
        mask = self._received_mask
        if delta == 0:
            duplicate = bool(mask & 1)
            self._received_mask = mask | 1
            return duplicate
        self._received_mask = ((mask << delta) | 1) & _WINDOW_MASK
        return False

    def _mark_old(self, behind: int) -> bool:
        bit = 1 << behind
        if self._received_mask & bit:
            return True
        self._received_mask |= bit
        return False

    def _count(self, packet: RtpPacket, now: float, size: int | None, duplicate: bool) -> None:
        self.packets_received += 1
        payload = len(packet.payload)
        self.bytes_received += payload
        if size is not None:
            self.header_bytes_received += max(0, size - payload)
        if duplicate:
            # A copy adds nothing to the spacing between packets; letting it into A.8 would
            # count the network's (or a same-SSRC retransmission's) delay as jitter.
            self.duplicates += 1
            return
        timestamp = packet.timestamp
        last_timestamp = self._last_timestamp
        if last_timestamp is not None:
            # A.8: D = (Rj - Ri) - (Sj - Si) in timestamp units. Computing the difference of
            # differences keeps both the 32-bit timestamp wrap and the float clock exact.
            arrival_delta = (now - self._last_arrival) * self.clock_rate
            d = abs(arrival_delta - timestamp_diff(timestamp, last_timestamp))
            self.jitter_estimate += (d - self.jitter_estimate) / 16
        self._last_arrival = now
        self._last_timestamp = timestamp

    # --- derived counters ----------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """The source passed probation (A.1)."""
        return self._initialized and not self._probation

    @property
    def extended_highest_sequence(self) -> int:
        """Cycles in the upper bits, the highest sequence number in the lower 16 (A.3)."""
        return (self._cycles + self._max_seq) & 0xFFFF_FFFF

    @property
    def packets_expected(self) -> int:
        if not self.valid:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def packets_lost(self) -> int:
        """Cumulative loss (A.3): expected minus received; negative with duplicates."""
        return self.packets_expected - self.packets_received

    @property
    def jitter(self) -> int:
        """Interarrival jitter as the report block carries it, RTP timestamp units."""
        return int(self.jitter_estimate)

    # --- RTCP ----------------------------------------------------------------------------------

    def on_sender_report(self, sr: SenderReport, now: float) -> None:
        """Remember this SSRC's SR: LSR/DLSR for our next report block, and lip-sync."""
        if self._sr_received_at is not None:
            # A reordered SR older than the one we have would move LSR backwards; the 64-bit
            # NTP difference is read modulo 2**64 so an era rollover is still "newer".
            if (sr.ntp_timestamp - self._sr_ntp) & ((1 << 64) - 1) >= 1 << 63:
                return
        self._sr_ntp = sr.ntp_timestamp
        self._sr_rtp = sr.rtp_timestamp
        self._sr_received_at = now
        self.remote_packets_sent = sr.packet_count
        self.remote_octets_sent = sr.octet_count
        self.remote_reports += 1

    def report_block(self, now: float) -> ReportBlock:
        """The report block about this source for an RTCP report sent at ``now``.

        This closes a report interval (A.3): the fraction lost covers the packets expected since
        the previous call, so call it once per report actually sent.
        """
        expected = self.packets_expected
        received = self.packets_received
        expected_interval = expected - self._expected_prior
        received_interval = received - self._received_prior
        self._expected_prior = expected
        self._received_prior = received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.fraction_lost = fraction
        lost = max(_LOST_MIN, min(self.packets_lost, _LOST_MAX))
        lsr = dlsr = 0
        if self._sr_received_at is not None:
            lsr = middle32(self._sr_ntp)
            dlsr = dlsr_from_seconds(now - self._sr_received_at)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.extended_highest_sequence,
            jitter=min(self.jitter, 0xFFFF_FFFF),
            lsr=lsr,
            dlsr=dlsr,
        )

    @property
    def last_sender_report_at(self) -> float | None:
        """When (our clock) the latest SR of this SSRC arrived, or None."""
        return self._sr_received_at

    def rtp_to_sender_ntp(self, rtp_timestamp: int) -> int | None:
        """The sender's 64-bit NTP wallclock of ``rtp_timestamp``, or None before any SR.

        Lip-sync (RFC 3550 §6.4.1): the latest SR pairs an NTP time with an RTP timestamp; any
        other timestamp of the stream is that time plus its signed distance at the nominal clock
        rate. Audio and video of one CNAME share the sender's wallclock, so comparing the
        results aligns them.
        """
        if self._sr_received_at is None:
            return None
        offset = timestamp_diff(rtp_timestamp, self._sr_rtp) / self.clock_rate
        return (self._sr_ntp + round(offset * (1 << 32))) & ((1 << 64) - 1)

    def rtp_to_sender_seconds(self, rtp_timestamp: int) -> float | None:
        """:meth:`rtp_to_sender_ntp` as Unix seconds on the sender's wallclock."""
        ntp = self.rtp_to_sender_ntp(rtp_timestamp)
        return None if ntp is None else ntp_to_seconds(ntp)


class SendStreamStatistics:
    """What we sent on one local SSRC, our SRs, and the RTT the peer's reports reveal.

    Feed every packet sent to :meth:`on_packet_sent`, build SRs with :meth:`sender_report`, and
    hand every received report block whose SSRC is ours to :meth:`on_report_block`.
    """

    __slots__ = (
        "_last_timestamp",
        "_last_timestamp_at",
        "_sent_srs",
        "clock_rate",
        "header_octets_sent",
        "octets_sent",
        "packets_sent",
        "remote_fraction_lost",
        "remote_jitter",
        "remote_packets_lost",
        "retransmitted_bytes_sent",
        "retransmitted_packets_sent",
        "round_trip_time",
        "round_trip_time_measurements",
        "ssrc",
        "total_round_trip_time",
    )

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.packets_sent = 0
        #: RFC 3550 §6.4.1 "sender's octet count": payload octets, no header or padding.
        self.octets_sent = 0
        #: Header (and padding) octets of the packets sent, when the driver gives their size.
        self.header_octets_sent = 0
        #: Packets resent after a NACK (over RTX or as they were) and their payload bytes
        #: (W3C ``retransmittedPacketsSent``/``retransmittedBytesSent``); not in the SR counts.
        self.retransmitted_packets_sent = 0
        self.retransmitted_bytes_sent = 0
        self._last_timestamp: int | None = None
        self._last_timestamp_at = 0.0
        # middle32 of the SR's NTP timestamp -> (its wallclock seconds, our clock when sent)
        self._sent_srs: dict[int, tuple[float, float]] = {}
        self.round_trip_time: float | None = None
        self.total_round_trip_time = 0.0
        self.round_trip_time_measurements = 0
        # The peer's view of our stream, from its latest report block (W3C remote-inbound-rtp).
        self.remote_fraction_lost = 0
        self.remote_packets_lost = 0
        self.remote_jitter = 0

    @property
    def has_sent(self) -> bool:
        return self._last_timestamp is not None

    @property
    def last_timestamp(self) -> int:
        """The RTP timestamp of the newest frame sent (0 before the first)."""
        return self._last_timestamp or 0

    def on_packet_sent(self, packet: RtpPacket, now: float, size: int | None = None) -> None:
        """Count one packet sent on this SSRC at ``now`` (``size``: its serialized length, for
        the header bytes)."""
        self.packets_sent += 1
        self.octets_sent += len(packet.payload)
        if size is not None:
            self.header_octets_sent += max(0, size - len(packet.payload))
        timestamp = packet.timestamp
        # Anchor the RTP clock at the first packet of each frame: later packets of the same
        # frame leave later (pacing) with the same timestamp, which would drag the
        # extrapolation behind the capture clock.
        last = self._last_timestamp
        if last is None or timestamp_newer(timestamp, last):
            self._last_timestamp = timestamp
            self._last_timestamp_at = now

    def rtp_timestamp_at(self, now: float) -> int:
        """The RTP timestamp this stream's clock shows at ``now``, extrapolated from the last
        frame sent at the nominal clock rate. ValueError before the first packet."""
        if self._last_timestamp is None:
            raise ValueError(f"SSRC {self.ssrc} has sent no RTP packet to extrapolate from")
        elapsed = (now - self._last_timestamp_at) * self.clock_rate
        return (self._last_timestamp + round(elapsed)) & 0xFFFF_FFFF

    def sender_report(
        self, now: float, ntp_now: float, reports: Sequence[ReportBlock] = ()
    ) -> SenderReport:
        """An SR for a report sent at ``now`` (our clock) and ``ntp_now`` (Unix wallclock).

        RFC 3550 §6.4.1: the RTP timestamp "corresponds to the same time as the NTP timestamp",
        but need not be one of a packet sent, so it is extrapolated. The SR is remembered so a
        report block echoing it later yields the RTT.
        """
        ntp = seconds_to_ntp(ntp_now)
        sr = SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=self.rtp_timestamp_at(now),
            packet_count=self.packets_sent & 0xFFFF_FFFF,
            octet_count=self.octets_sent & 0xFFFF_FFFF,
            reports=list(reports),
        )
        sent = self._sent_srs
        sent[middle32(ntp)] = (ntp_now, now)
        while len(sent) > _SENT_SR_MEMORY:
            del sent[next(iter(sent))]
        return sr

    def on_report_block(self, block: ReportBlock, now: float) -> float | None:
        """Take the peer's report about this SSRC; return the RTT in seconds if it measures one.

        RFC 3550 §6.4.1: RTT = A - LSR - DLSR, with A the arrival time in the SR's NTP units. A
        is the wallclock of the echoed SR advanced by our own clock's elapsed time, so a
        wallclock step between the SR and the report does not distort the RTT. An LSR that
        matches none of our recent SRs (none yet, or forged) measures nothing.
        """
        if block.ssrc != self.ssrc:
            raise ValueError(f"report block about SSRC {block.ssrc}, this is {self.ssrc}")
        self.remote_fraction_lost = block.fraction_lost
        self.remote_packets_lost = block.packets_lost
        self.remote_jitter = block.jitter
        sent = self._sent_srs.get(block.lsr) if block.lsr else None
        if sent is None:
            return None
        ntp_sent, sent_at = sent
        arrival = seconds_to_middle32(ntp_sent + (now - sent_at))
        rtt = rtt_seconds(arrival, block.lsr, block.dlsr)
        if rtt is None:
            return None
        self.round_trip_time = rtt
        self.total_round_trip_time += rtt
        self.round_trip_time_measurements += 1
        return rtt
