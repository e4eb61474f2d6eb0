"""Loss repair on the sending side: the packet history and the retransmitter (RFC 4585 generic
NACK answered by plain retransmission or RFC 4588 RTX), and the RTX receive helper.

Pure: no trio, no clock, no I/O. The driver hands every media packet it sends to
:meth:`PacketHistory.put`, every received NACK's sequence numbers to
:meth:`Retransmitter.receive_nack`, and sends what comes back.

Bounds: the history keeps at most ``max_packets`` packets, ``max_bytes`` payload bytes and none
older than ``max_age`` seconds behind the newest; a NACK from the peer can only point into that
history, and the retransmitter's output is capped by a sliding-window rate limit, so a NACK storm
costs at most the configured share of the media rate.

Two ways to resend (RFC 4588 §1):

* RTX negotiated: a new packet on the RTX SSRC with its own sequence numbers and the RTX payload
  type paired with the original one (``a=fmtp:<rtx> apt=<original>``); its payload is the
  original sequence number (2 bytes, network order) followed by the original payload (§4).
* No RTX: the original packet again, unchanged. SRTP protects the same index twice, which is
  only safe when the bytes are identical (see :mod:`trio_rtc.rtp.srtp`), so the driver must
  serialize a plain retransmission exactly as the first time (same header extensions, no new
  transport-wide sequence number).
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping

import attrs

from .errors import RtpError
from .packet import FIXED_HEADER_LENGTH, RtpPacket
from .sequence import SequenceUnwrapper

__all__ = [
    "PacketHistory",
    "Retransmission",
    "Retransmitter",
    "RetransmitterCounters",
    "unwrap_rtx_untrusted",
    "wrap_rtx",
]

#: History bounds: 600 packets as libwebrtc keeps, about two seconds of 2-3 Mbit/s video. The
#: age bound is longer than our own receiver asks (it gives up after a second) for peers that
#: repeat a request only when a later packet is lost too (aiortc, within 128 packets): at a few
#: hundred kbit/s that comes seconds later, and a request the history cannot answer stalls such
#: a peer until its jitter buffer overflows.
MAX_PACKETS = 600
MAX_AGE = 3.0
MAX_BYTES = 2_000_000
#: A packet is not resent again sooner than this, nor sooner than one RTT after the last resend.
MIN_RESEND_INTERVAL = 0.010
#: Retransmitted bytes per window at most this share of the media bytes sent in the window ...
RETRANSMIT_RATIO = 0.5
#: ... and at least this many bits/s, so a low-rate stream can still be repaired.
RETRANSMIT_FLOOR_BPS = 100_000
_RATE_WINDOW = 1.0
#: A resend waits at most this long for the resends ahead of it (see Retransmitter).
_MAX_BACKLOG_WAIT = 0.5
#: Redundant resends: at this share of the media packets asked for within the window, an
#: isolated loss is resent twice (see Retransmitter; off unless given, as the RTP task does).
REDUNDANCY_LOSS = 0.02
_OSN = struct.Struct("!H")


def wrap_rtx(
    packet: RtpPacket, rtx_ssrc: int, rtx_payload_type: int, rtx_sequence_number: int
) -> RtpPacket:
    """The RTX packet (RFC 4588 §4) that carries ``packet``: same timestamp, marker, CSRCs and
    header extensions (a copy), the RTX SSRC, payload type and sequence number, and as payload
    the original sequence number followed by the original payload. Padding is not carried."""
    return RtpPacket(
        payload_type=rtx_payload_type,
        sequence_number=rtx_sequence_number & 0xFFFF,
        timestamp=packet.timestamp,
        ssrc=rtx_ssrc,
        payload=_OSN.pack(packet.sequence_number) + packet.payload,
        marker=packet.marker,
        csrcs=packet.csrcs,
        extensions=dict(packet.extensions),
    )


def unwrap_rtx_untrusted(
    packet: RtpPacket, media_ssrc: int, apt: Mapping[int, int]
) -> RtpPacket | None:
    """The original packet an RTX packet from the peer carries (RFC 4588 §4): ``media_ssrc``
    (the stream the RTX SSRC repairs), the payload type that ``apt`` (RTX payload type ->
    original payload type) pairs with the RTX one, and the sequence number from the first two
    payload bytes. None for an RTX packet without payload after them (padding, sent for
    bandwidth probing, RFC 4588 §4 allows it). Raises :class:`RtpError` for an unknown RTX
    payload type or a payload shorter than 2 bytes."""
    original_pt = apt.get(packet.payload_type)
    if original_pt is None:
        raise RtpError(f"RTX payload type {packet.payload_type} has no apt mapping")
    payload = packet.payload
    if len(payload) < 2:
        if not payload and packet.padding_size:
            return None
        raise RtpError("RTX payload shorter than its 2-byte original sequence number")
    if len(payload) == 2:
        return None
    (original_seq,) = _OSN.unpack_from(payload)
    return RtpPacket(
        payload_type=original_pt,
        sequence_number=original_seq,
        timestamp=packet.timestamp,
        ssrc=media_ssrc,
        payload=payload[2:],
        marker=packet.marker,
        csrcs=packet.csrcs,
        extensions=packet.extensions,
    )


@attrs.define(slots=True)
class _Stored:
    packet: RtpPacket
    size: int
    sent_at: float
    resent_at: float | None = None
    resends: int = 0
    #: The peer asked for it at least once.
    nacked: bool = False
    #: Seconds the resends issued just before the last resend of this one needed to drain:
    #: how long that resend may have stood in line.
    queued_behind: float = 0.0


class PacketHistory:
    """The media packets of one SSRC recently sent, by sequence number, for retransmission.

    ``put`` stores the packet object itself (not a copy): the driver must not change it after
    sending. ``size`` is what the packet costs on the wire (default: header + payload)."""

    __slots__ = ("_bytes", "_packets", "_unwrapper", "max_age", "max_bytes", "max_packets")

    def __init__(
        self,
        *,
        max_packets: int = MAX_PACKETS,
        max_age: float = MAX_AGE,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        if max_packets < 1 or max_age <= 0 or max_bytes < 1:
            raise ValueError("packet history bounds must be positive")
        self.max_packets = max_packets
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._unwrapper = SequenceUnwrapper()
        #: extended sequence number -> stored packet, in the order sent.
        self._packets: OrderedDict[int, _Stored] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def bytes_stored(self) -> int:
        return self._bytes

    def put(self, packet: RtpPacket, now: float, size: int | None = None) -> None:
        """Remember ``packet``, sent at ``now``; forget what falls out of the bounds."""
        if size is None:
            size = FIXED_HEADER_LENGTH + 4 * len(packet.csrcs) + len(packet.payload)
        ext = self._unwrapper.unwrap(packet.sequence_number)
        packets = self._packets
        old = packets.pop(ext, None)
        if old is not None:
            self._bytes -= old.size
        packets[ext] = _Stored(packet, size, now)
        self._bytes += size
        self._prune(now)

    def _prune(self, now: float) -> None:
        packets = self._packets
        oldest = now - self.max_age
        while packets:
            stored = next(iter(packets.values()))
            if (
                len(packets) <= self.max_packets
                and self._bytes <= self.max_bytes
                and stored.sent_at >= oldest
            ):
                break
            _, stored = packets.popitem(last=False)
            self._bytes -= stored.size

    def _lookup(self, sequence_number: int) -> _Stored | None:
        highest = self._unwrapper.highest
        if highest is None:
            return None
        # Place the 16-bit number next to the newest without moving the unwrapper (a NACK is
        # peer input: it must not shift our own numbering).
        delta = ((sequence_number - highest + 0x8000) & 0xFFFF) - 0x8000
        return self._packets.get(highest + delta)

    def get(self, sequence_number: int) -> RtpPacket | None:
        """The packet sent with this 16-bit sequence number, if still kept."""
        stored = self._lookup(sequence_number)
        return None if stored is None else stored.packet

    def _nacked(self, sequence_number: int) -> bool:
        stored = self._lookup(sequence_number & 0xFFFF)
        return stored is not None and stored.nacked


@attrs.define
class RetransmitterCounters:
    """W3C outbound-rtp ``nackCount`` (NACK packets), ``retransmittedPacketsSent`` and
    ``retransmittedBytesSent``, and why requested packets were not resent."""

    nack_packets_received: int = 0
    nacked_sequence_numbers: int = 0
    retransmitted_packets_sent: int = 0
    retransmitted_bytes_sent: int = 0
    not_in_history: int = 0
    too_soon: int = 0
    rate_limited: int = 0
    #: Second copies of a resend (isolated losses at a high loss rate; see Retransmitter).
    redundant_packets_sent: int = 0


@attrs.define(slots=True)
class Retransmission:
    """A packet to send again. ``rtx``: it is a new RTX packet (give it a fresh transport-wide
    sequence number); otherwise it is the original packet, to serialize exactly as before."""

    packet: RtpPacket
    rtx: bool
    original_sequence_number: int
    size: int


class Retransmitter:
    """Answers generic NACKs (RFC 4585 §6.2.1) for one media SSRC from its :class:`PacketHistory`.

    With ``rtx_ssrc`` and ``rtx_payload_types`` (original payload type -> RTX payload type) the
    packets go over RTX; a payload type without an RTX mapping, or no ``rtx_ssrc``, resends the
    original. ``rtx_sequence_start`` is the RTX stream's first sequence number (random, RFC 3550
    §5.1).

    A packet is resent at most once per ``max(rtt, min_interval)``, or per the time the resends
    still ahead of it needed to drain (a leaky bucket emptied at the media rate) if that is
    longer: a NACK repeated before our
    retransmission can have arrived is not answered twice. On a short path the RTT alone is a
    few milliseconds, while the resends of a burst loss (tens of packets) stand in line for tens
    of ms in the pacer and at the bottleneck; the receiver asks again meanwhile, and answering
    every repeat sent each packet three or four times and used up the rate limit below.

    Retransmitted bytes within any second are capped by ``max(ratio * media bytes sent in that
    second, floor_bps / 8)``, or by :meth:`set_max_rate` when the bandwidth estimator gives one.

    Redundancy (``redundancy_loss``, e.g. :data:`REDUNDANCY_LOSS`; None, the default, is off):
    when the peer asked for at least ``redundancy_loss`` of the media packets sent
    within the window (:attr:`loss_fraction`), a resend is likely to be lost as well, and each
    loss costs the receiver another round trip (two for a request that repeats at one RTT) or,
    with a peer that asks for each packet once and again only when a later packet is lost
    (aiortc), a stall until then. So a packet lost on its own (neither neighbour asked for) is
    resent twice, the copy after the answer's other resends, from what the rate limit leaves:
    with random loss p both are lost with p². The copies cost about p of the media rate. Runs
    of losses (a burst) get none: their resends already fill the line, and a copy adjacent to
    its original meets the same burst. None while :attr:`congested` (the driver sets it from
    the bandwidth estimator's overuse): loss from a full queue is not repaired by adding load.
    """

    __slots__ = (
        "_backlog_at",
        "_backlog_bytes",
        "_max_rate_bps",
        "_media_window",
        "_media_window_bytes",
        "_nacked_window",
        "_resent_window",
        "_resent_window_bytes",
        "_rtx_seq",
        "congested",
        "counters",
        "floor_bps",
        "history",
        "min_interval",
        "ratio",
        "redundancy_loss",
        "rtt",
        "rtx_payload_types",
        "rtx_ssrc",
    )

    def __init__(
        self,
        history: PacketHistory,
        *,
        rtx_ssrc: int | None = None,
        rtx_payload_types: Mapping[int, int] | None = None,
        rtx_sequence_start: int = 0,
        min_interval: float = MIN_RESEND_INTERVAL,
        ratio: float = RETRANSMIT_RATIO,
        floor_bps: int = RETRANSMIT_FLOOR_BPS,
        redundancy_loss: float | None = None,
    ) -> None:
        self.history = history
        self.rtx_ssrc = rtx_ssrc
        self.rtx_payload_types = dict(rtx_payload_types or {})
        self._rtx_seq = rtx_sequence_start & 0xFFFF
        self.min_interval = min_interval
        self.ratio = ratio
        self.floor_bps = floor_bps
        self._max_rate_bps: int | None = None
        self.rtt: float | None = None
        self.counters = RetransmitterCounters()
        #: None turns redundant resends off.
        self.redundancy_loss = redundancy_loss
        self.congested = False
        # Times at which a media packet was first asked for, within the last _RATE_WINDOW.
        self._nacked_window: deque[float] = deque()
        # (time, bytes) of media sent and of retransmissions, within the last _RATE_WINDOW.
        self._media_window: deque[tuple[float, int]] = deque()
        self._media_window_bytes = 0
        self._resent_window: deque[tuple[float, int]] = deque()
        self._resent_window_bytes = 0
        # Resends issued and not yet drained (bytes), as of _backlog_at.
        self._backlog_bytes = 0.0
        self._backlog_at: float | None = None

    @property
    def rtx_sequence_number(self) -> int:
        """The sequence number the next RTX packet will carry."""
        return self._rtx_seq

    def set_rtt(self, rtt: float | None) -> None:
        self.rtt = rtt

    def take_rtx_sequence_number(self) -> int:
        """Allocate an RTX sequence number for a packet that is not a retransmission (RTX
        padding sent as a bandwidth probe, RFC 4588 §4)."""
        seq = self._rtx_seq
        self._rtx_seq = (seq + 1) & 0xFFFF
        return seq

    def set_max_rate(self, bps: int | None) -> None:
        """Cap retransmissions at ``bps`` (e.g. a share of the bandwidth estimate) instead of the
        media-rate share; None goes back to the media-rate share."""
        self._max_rate_bps = bps

    def on_media_sent(self, packet: RtpPacket, now: float, size: int | None = None) -> None:
        """Store a media packet just sent in the history and count it for the rate limit."""
        if size is None:
            size = FIXED_HEADER_LENGTH + 4 * len(packet.csrcs) + len(packet.payload)
        self.history.put(packet, now, size)
        self._media_window.append((now, size))
        self._media_window_bytes += size
        self._expire(now)

    def _expire(self, now: float) -> None:
        start = now - _RATE_WINDOW
        media = self._media_window
        while media and media[0][0] < start:
            self._media_window_bytes -= media.popleft()[1]
        # Also bounded by count: a burst of tiny packets must not grow the window without end.
        while len(media) > 4 * self.history.max_packets:
            self._media_window_bytes -= media.popleft()[1]
        resent = self._resent_window
        while resent and resent[0][0] < start:
            self._resent_window_bytes -= resent.popleft()[1]
        nacked = self._nacked_window
        while nacked and (nacked[0] < start or len(nacked) > len(media)):
            nacked.popleft()

    @property
    def loss_fraction(self) -> float:
        """Media packets first asked for within the window, per media packet sent in it."""
        return len(self._nacked_window) / max(len(self._media_window), 1)

    def _redundant(self) -> bool:
        threshold = self.redundancy_loss
        return threshold is not None and not self.congested and self.loss_fraction >= threshold

    def _budget(self) -> float:
        if self._max_rate_bps is not None:
            return self._max_rate_bps / 8 * _RATE_WINDOW
        return max(self.ratio * self._media_window_bytes, self.floor_bps / 8 * _RATE_WINDOW)

    def _drain_rate(self) -> float:
        """Bytes/s at which queued resends are taken to leave: the media rate (the pacer sends
        faster, the bottleneck carries at least that), and at least the rate limit's floor."""
        return max(self._media_window_bytes / _RATE_WINDOW, self.floor_bps / 8, 1.0)

    def _backlog(self, now: float, drain: float) -> float:
        """Bytes of resends still in line now: what was issued, less what ``drain`` carried
        away since (a single resend now and then is gone long before the next one)."""
        last = self._backlog_at
        self._backlog_at = now
        if last is not None and now > last:
            self._backlog_bytes = max(0.0, self._backlog_bytes - drain * (now - last))
        return self._backlog_bytes

    def receive_nack(self, sequence_numbers: Iterable[int], now: float) -> list[Retransmission]:
        """The packets to resend for one received NACK (its lost sequence numbers, 16-bit)."""
        counters = self.counters
        counters.nack_packets_received += 1
        self._expire(now)
        interval = max(self.rtt or 0.0, self.min_interval)
        drain = self._drain_rate()
        ahead = self._backlog(now, drain)  # resends still in line before this NACK's
        budget = self._budget()
        out: list[Retransmission] = []
        isolated: list[_Stored] = []
        # Each NACK item names at most 17 numbers and the history is bounded, so the work is
        # bounded by the NACK's length; duplicates inside one NACK are skipped.
        seen: set[int] = set()
        numbers = [seq & 0xFFFF for seq in sequence_numbers]
        history = self.history
        for seq in numbers:
            stored = history._lookup(seq)
            if stored is not None and not stored.nacked:
                stored.nacked = True
                self._nacked_window.append(now)
        self._expire(now)
        redundant = self._redundant()
        for seq in numbers:
            if seq in seen:
                continue
            seen.add(seq)
            counters.nacked_sequence_numbers += 1
            stored = history._lookup(seq)
            if stored is None:
                counters.not_in_history += 1
                continue
            # The wait is the longer of the two, not their sum: on a long path the RTT from
            # RTCP already covers a short line (adding it delayed second tries at 5 % loss and
            # 60 ms RTT past the W3C freeze threshold); on a short one the line dominates.
            if stored.resent_at is not None and now - stored.resent_at < max(
                interval, stored.queued_behind
            ):
                counters.too_soon += 1
                continue
            packet = stored.packet
            rtx_pt = self.rtx_payload_types.get(packet.payload_type)
            rtx = self.rtx_ssrc is not None and rtx_pt is not None
            size = stored.size + 2 if rtx else stored.size
            if self._resent_window_bytes + size > budget:
                counters.rate_limited += 1
                continue
            if rtx:
                assert self.rtx_ssrc is not None and rtx_pt is not None
                packet = wrap_rtx(packet, self.rtx_ssrc, rtx_pt, self._rtx_seq)
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            stored.resent_at = now
            stored.resends += 1
            stored.queued_behind = min(ahead / drain, _MAX_BACKLOG_WAIT)
            ahead += size
            self._backlog_bytes = ahead
            self._account(now, size, stored)
            out.append(Retransmission(packet, rtx, stored.packet.sequence_number, size))
            if redundant and not (history._nacked(seq - 1) or history._nacked(seq + 1)):
                isolated.append(stored)
        for stored in isolated:
            copy = self._copy(stored, budget)
            if copy is None:
                break
            ahead += copy.size
            self._backlog_bytes = ahead
            self._account(now, copy.size, stored)
            counters.redundant_packets_sent += 1
            out.append(copy)
        return out

    def _account(self, now: float, size: int, stored: _Stored) -> None:
        self._resent_window.append((now, size))
        self._resent_window_bytes += size
        self.counters.retransmitted_packets_sent += 1
        self.counters.retransmitted_bytes_sent += len(stored.packet.payload)

    def _copy(self, stored: _Stored, budget: float) -> Retransmission | None:
        """A second resend of ``stored`` (a new RTX packet, or the original again), if the
        rate limit leaves room for it."""
        packet = stored.packet
        rtx_pt = self.rtx_payload_types.get(packet.payload_type)
        rtx = self.rtx_ssrc is not None and rtx_pt is not None
        size = stored.size + 2 if rtx else stored.size
        if self._resent_window_bytes + size > budget:
            return None
        if rtx:
            assert self.rtx_ssrc is not None and rtx_pt is not None
            packet = wrap_rtx(packet, self.rtx_ssrc, rtx_pt, self._rtx_seq)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        return Retransmission(packet, rtx, stored.packet.sequence_number, size)
