"""RtpTransport: the trio task that owns the SRTP session, the BUNDLE demultiplexer and the RTCP
scheduler of one BUNDLE transport (the media counterpart of the DTLS and SCTP tasks).

One inbox, a memory channel of batches (:mod:`trio_rtc._channels`): the ICE transport puts each
burst of received RTP/RTCP datagrams on it as one plain ``list`` of bytes; senders put a
:class:`_Send` (a burst of packets of one :class:`RtpSender`); ``request_keyframe`` and
``close`` put small commands; ``None`` says the layer below ended. The task takes the first item
with ``await`` and the rest with ``receive_nowait``, and sleeps until the next item or the RTCP
scheduler's timer. It alone touches the :class:`~trio_rtc.rtp.srtp.SrtpSession` (libsrtp keeps
per-SSRC replay and rollover state that two writers would corrupt), the demultiplexer and the
per-SSRC statistics; everything protocol-related stays in those pure cores.

Keys: the task waits for the DTLS transport to be connected and builds the SRTP session from
``dtls.srtp_keys`` (RFC 5764 §4.2). Until then received datagrams are dropped and counted, as
are packets handed to a sender. A DTLS transport that connected without use_srtp fails this
transport visibly: media cannot flow, and saying so beats silence.

Supervision follows ``dtls/driver.py``: an unexpected exception is logged once, kept in
``crashed`` and fails the transport (state ``failed``, an ``error`` event, receivers ended);
garbage from the network is only counted.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs
import trio

from .._channels import Batch
from .._supervision import unwrap
from ..events import Event, EventTarget, HandlerQueue, RTCErrorEvent, on_event
from ..exceptions import InvalidStateError, RTCError
from .demux import MediaSection, RtpDemuxer
from .errors import RtpError
from .extensions import (
    URI_ABS_SEND_TIME,
    URI_REPAIRED_RID,
    URI_RID,
    URI_TRANSPORT_CC,
    ExtensionMap,
    abs_send_time_from_seconds,
    decode_transport_cc_untrusted,
    encode_abs_send_time,
    encode_sdes_text,
    encode_transport_cc,
)
from .gcc import BandwidthUsage, SendSideBandwidthEstimator
from .keyframes import KeyframeRequester, KeyframeResponder
from .nack import NackGenerator
from .pacer import Paced, Pacer, PacketKind
from .packet import RtpPacket, parse_rtp_untrusted
from .remb import ReceiveSideEstimator
from .repair import (
    REDUNDANCY_LOSS,
    RETRANSMIT_FLOOR_BPS,
    PacketHistory,
    Retransmission,
    Retransmitter,
    unwrap_rtx_untrusted,
)
from .reports import RtcpScheduler
from .rtcp import (
    Bye,
    FullIntraRequest,
    GenericNack,
    PictureLossIndication,
    RtcpPacket,
    SenderReport,
    parse_rtcp_untrusted,
    serialize_compound,
)
from .rtcp_feedback import Remb, RtcpFeedbackPacket, TwccFeedback
from .srtp import SrtpSession
from .stats import ReceiveStreamStatistics, SendStreamStatistics
from .twcc import TwccRecorder

__all__ = ["RtpReceiverChannel", "RtpSender", "RtpTransport", "RtpTransportState"]

logger = logging.getLogger("trio_rtc.rtp")

RtpTransportState = Literal["new", "connected", "closed", "failed"]

#: Batches queued for the RTP task (received bursts and bursts to send) before more are dropped.
INBOX_DEPTH = 512
#: Batches a receiver's channel holds before the oldest is dropped.
RECEIVER_DEPTH = 256
#: Clock rate assumed for statistics of an SSRC whose mid has no receiver (video's 90 kHz).
DEFAULT_CLOCK_RATE = 90_000
#: SRTP/SRTCP datagrams that arrive before the DTLS handshake gave us the keys are held, up to
#: this many datagrams and bytes, and handled with their arrival times once the keys come. The
#: side that finishes the handshake first starts sending at once; when its last flight is lost
#: (or is still in the other side's DTLS task when the media arrives) the other side gets keys
#: a retransmission later. Dropping meanwhile lost the first key frame and the start probes:
#: on bench_links (b), 5 % loss, 2 runs of 6 dropped 30-34 datagrams each, and the estimate
#: then started at 340 kbit/s on a 2 Mbit/s link instead of ~1.8 Mbit/s, for 10 s and more.
EARLY_HOLD_DATAGRAMS = 512
EARLY_HOLD_BYTES = 512 * 1024
#: Held datagrams older than this when the keys come are dropped (and counted) instead.
EARLY_HOLD_SECONDS = 2.0
_SEND_ERRORS = (OSError, trio.ClosedResourceError, trio.BrokenResourceError)

#: The receive end a receiver reads: one list of packets per wake-up of the RTP task.
RtpReceiverChannel = trio.MemoryReceiveChannel[list[RtpPacket]]


@attrs.define(eq=False)
class _Send:
    """A burst of packets of one sender, for the RTP task to serialize, protect and send."""

    sender: RtpSender
    packets: list[RtpPacket]
    keyframe: bool = False


@attrs.define(eq=False)
class _Keyframe:
    mid: str


@attrs.define(eq=False)
class _Close:
    reason: bytes | None = None


#: A received burst (a plain list of datagrams), something to send, a command, or the end.
InboxItem = Batch | _Send | _Keyframe | _Close | None

#: Bits/s reserved for each audio sender when the estimate is shared out among video senders.
AUDIO_ALLOWANCE = 64_000
#: A video sender's target follows its share of the estimate when it moves by more than this.
RETARGET_STEP = 0.02
#: A video sender is never asked for less than this (the estimator's floor is lower).
MIN_VIDEO_BITRATE = 50_000
#: Bytes of header, SRTP tag and UDP/IP overhead added to a payload when accounting for it
#: before it is serialized (the bandwidth estimator wants the size on the wire).
_PACKET_OVERHEAD = 12 + 24 + 10 + 28
#: IPv4 and UDP headers, added to a received datagram's size for the receive-side estimate.
_UDP_OVERHEAD = 28
#: The largest RTP padding a packet can carry (RFC 3550 §5.1: the count is one octet).
_MAX_PADDING = 255


def _keyframe_hold_off(rtt: float | None) -> float:
    """How long after a key frame a request is taken to be about the frames before it: a
    request sent before the key frame arrived reaches us within about one RTT of it."""
    return min(max(1.5 * (rtt if rtt is not None else 0.05), 0.02), 0.3)


@attrs.define(eq=False, slots=True)
class _Outgoing:
    """A packet waiting in the pacer: a media packet, or a retransmission (``rtx``: already
    wrapped for the RTX stream; ``resend``: the original, to go out byte for byte again)."""

    sender: RtpSender
    packet: RtpPacket
    rtx: bool = False
    resend: bool = False


class RtpSender:
    """Sends the packets of one local SSRC in one m-section, through the RTP task.

    ``on_keyframe_request`` is called (in the RTP task; it must not block) when the peer asks
    for a key frame of this SSRC with PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1); a burst
    of requests makes one call (:class:`~trio_rtc.rtp.keyframes.KeyframeResponder`).

    ``nack``: the peer may NACK this stream (``a=rtcp-fb:<pt> nack``): sent packets are kept
    in a bounded history and resent, over RTX when ``rtx_ssrc`` and ``rtx_payload_types``
    (media payload type → RTX payload type) say so, else as they were (RFC 4588 §1).

    ``target_bitrate`` is this stream's share of the bandwidth estimate (None while no
    congestion control runs); the encoder follows it.
    """

    def __init__(
        self,
        transport: RtpTransport,
        mid: str,
        ssrc: int,
        clock_rate: int,
        on_keyframe_request: Callable[[], object] | None,
        *,
        kind: str = "video",
        nack: bool = False,
        rtx_ssrc: int | None = None,
        rtx_payload_types: dict[int, int] | None = None,
        rng: random.Random | None = None,
        rid: str | None = None,
    ) -> None:
        self.transport = transport
        self.mid = mid
        self.ssrc = ssrc
        self.kind = kind
        self.statistics = SendStreamStatistics(ssrc, clock_rate)
        self.on_keyframe_request = on_keyframe_request
        self.keyframe_requests = 0
        self.pli_received = 0
        self.fir_received = 0
        self.nacks_received = 0
        self.keyframes = KeyframeResponder(hold_off=_keyframe_hold_off(None))
        self.rtx_ssrc = rtx_ssrc if rtx_payload_types else None
        self.retransmitter: Retransmitter | None = None
        if nack:
            self.retransmitter = Retransmitter(
                PacketHistory(),
                rtx_ssrc=self.rtx_ssrc,
                rtx_payload_types=rtx_payload_types,
                rtx_sequence_start=(rng or random).getrandbits(16),
                redundancy_loss=REDUNDANCY_LOSS,
            )
        #: RTX packets sent carrying no media (bandwidth probes).
        self.padding_packets_sent = 0
        self.padding_bytes_sent = 0
        self.target_bitrate: int | None = None
        #: Simulcast (RFC 8853): the stream's rid (sent in the rid header extension, and as
        #: repaired-rid on its RTX packets), its rank among the section's layers (0: the
        #: smallest picture, served first) and the most it should get of the estimate.
        self.rid = rid
        self.layer_rank: int | None = None
        self.layer_max_bitrate: int | None = None
        self._last_report: tuple[int, int] | None = None
        #: Packets dropped: inbox full, no keys yet, transport ended, or unprotectable.
        self.packets_dropped = 0
        self._warned = False

    def send_packets_nowait(self, packets: list[RtpPacket], *, keyframe: bool = False) -> bool:
        """Hand a burst to the RTP task; False (dropped and counted, as UDP would) when its
        inbox is full or it has ended. The packets are the task's from now on: it sets the mid
        header extension on them. ``keyframe``: they carry a key frame (requests arriving
        just after it are answered by it)."""
        try:
            self.transport._inbox_send.send_nowait(_Send(self, packets, keyframe))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.packets_dropped += len(packets)
            return False
        return True

    async def send_packets(self, packets: list[RtpPacket], *, keyframe: bool = False) -> None:
        """Like :meth:`send_packets_nowait`, but waits while the RTP task's inbox is full.

        A cancellation point; a schedule point only when it waits. A media sender calls this
        once per frame between two waits for the next frame, so yielding here as well cost a
        task step per frame and bought nothing: the RTP task it wakes runs in the next batch
        either way."""
        item = _Send(self, packets, keyframe)
        inbox = self.transport._inbox_send
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                inbox.send_nowait(item)
            except trio.WouldBlock:
                await inbox.send(item)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.packets_dropped += len(packets)
            raise InvalidStateError("the RTP transport has ended") from None


class _Receiver:
    __slots__ = ("clock_rate", "dropped", "fir", "nack", "receive", "remb", "rtx", "send")

    def __init__(
        self,
        clock_rate: int,
        depth: int,
        nack: bool,
        rtx: dict[int, int],
        fir: bool,
        remb: bool = False,
    ) -> None:
        self.send, self.receive = trio.open_memory_channel[list[RtpPacket]](depth)
        self.clock_rate = clock_rate
        self.dropped = 0
        self.nack = nack
        self.rtx = rtx
        self.fir = fir
        self.remb = remb


@attrs.define
class RtpTransportCounters:
    """What the RTP task dropped and handled, beyond the SRTP and demultiplexer counters."""

    #: Received datagrams dropped before the keys (beyond the hold, too old, or the transport
    #: ended first) and packets our senders handed over before them.
    dropped_before_keys: int = 0
    #: Received datagrams held before the keys and handled once they came.
    held_before_keys: int = 0
    rtp_malformed: int = 0
    rtcp_malformed: int = 0
    rtp_no_receiver: int = 0
    receiver_overflow: int = 0
    packets_received: int = 0
    packets_sent: int = 0
    rtcp_received: int = 0
    rtcp_sent: int = 0
    send_refused: int = 0
    nacks_received: int = 0
    keyframe_requests_received: int = 0
    keyframe_requests_sent: int = 0
    byes_received: int = 0
    twcc_feedback_sent: int = 0
    twcc_feedback_received: int = 0
    remb_received: int = 0
    remb_sent: int = 0
    nacks_sent: int = 0
    fir_sent: int = 0
    retransmissions_received: int = 0
    rtx_malformed: int = 0
    rtx_unpaired: int = 0


class RtpTransport(EventTarget):
    """The RTP/SRTP task of one BUNDLE transport, beside its DTLS (and SCTP) tasks.

    ``dtls``: the group's ``RTCDtlsTransport`` (keys); ``ice``: its ``RTCIceTransport``
    (``send_many``). ``cname``: the RTCP CNAME of this transport's streams (random by
    default). ``reduced_size``: ``a=rtcp-rsize`` was negotiated (RFC 5506): feedback may go
    alone. ``extension_map``: the group's negotiated ``a=extmap`` ids (RFC 8843 §9.1: one id
    per URI across the group), used to write the mid extension on what we send.
    """

    onstatechange = on_event[Event]("statechange")
    onerror = on_event[RTCErrorEvent]("error")

    def __init__(
        self,
        dtls: Any,
        ice: Any,
        *,
        sections: Sequence[MediaSection] = (),
        extension_map: ExtensionMap | None = None,
        cname: str | None = None,
        reduced_size: bool = False,
        video: bool = False,
        minimum_interval: float | None = None,
        rng: random.Random | None = None,
        inbox_depth: int = INBOX_DEPTH,
    ) -> None:
        self._dtls = dtls
        self._ice = ice
        self._rng = rng or random.Random(secrets.randbits(64))
        self.cname = cname or secrets.token_urlsafe(12)
        self.reduced_size = reduced_size
        self._video = video
        self._minimum_interval = minimum_interval
        self._state: RtpTransportState = "new"
        self._running = False
        self._inbox_send, self._inbox = trio.open_memory_channel[InboxItem](inbox_depth)
        self._sections: list[MediaSection] = list(sections)
        self._extension_map = extension_map or ExtensionMap()
        #: The transport-wide-cc and abs-send-time extension ids (None: not negotiated),
        #: looked up per map.
        self._twcc_id = self._extension_map.id_of(URI_TRANSPORT_CC)
        self._abs_send_time_id = self._extension_map.id_of(URI_ABS_SEND_TIME)
        self.demuxer = RtpDemuxer(self._sections)
        self._senders: dict[int, RtpSender] = {}
        self._receivers: dict[str, _Receiver] = {}
        #: Statistics of every remote SSRC heard (or reported by SR), and its mid.
        self.inbound: dict[int, ReceiveStreamStatistics] = {}
        self._inbound_mid: dict[int, str] = {}
        self.session: SrtpSession | None = None
        self.scheduler: RtcpScheduler | None = None
        #: Arrival times of received packets with a transport-wide sequence number, fed back
        #: to their sender (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3); created
        #: with the keys. Times are µs since ``_twcc_epoch`` (trio time).
        self.twcc: TwccRecorder | None = None
        self._twcc_epoch = 0.0
        #: Datagrams received before the keys, with their arrival times (EARLY_HOLD_*).
        self._early: list[tuple[float, Batch]] = []
        self._early_datagrams = 0
        self._early_bytes = 0
        #: Receive side of loss repair: one NACK generator per remote media SSRC of a mid
        #: that negotiated NACK, and the PLI/FIR rate limiter of every remote SSRC.
        self._nack: dict[int, NackGenerator] = {}
        self.keyframe_requester = KeyframeRequester()
        #: Congestion control (draft-ietf-rmcat-gcc-02, in :mod:`trio_rtc.rtp.gcc`): created
        #: when the first packet of a sender that has feedback (transport-cc, REMB) is sent;
        #: the pacer spreads packets at its estimate.
        self.estimator: SendSideBandwidthEstimator | None = None
        self.pacer: Pacer[_Outgoing] | None = None
        self._remb = False
        #: The receive side of REMB (draft-alvestrand-rmcat-remb-03): created when a packet
        #: with abs-send-time arrives for a receiver that negotiated goog-remb while the
        #: group has no transport-cc (with it the sender estimates for itself).
        self.remb: ReceiveSideEstimator | None = None
        #: The last estimate shared out among the senders (bits/s).
        self.available_outgoing_bitrate: int | None = None
        #: Structured trace (trio_rtc.trace), set by the peer connection; None is tracing off.
        self.trace: Callable[[str, dict[str, Any]], None] | None = None
        self._last_rtt: float | None = None
        self._ice_rtt_checked = -math.inf
        self.counters = RtpTransportCounters()
        #: The unexpected exception that ended the task, if one did.
        self.crashed: BaseException | None = None
        #: Why the transport failed (a crash, or DTLS connected without use_srtp).
        self.error: RTCError | None = None

    @property
    def round_trip_time(self) -> float | None:
        """The latest round-trip time from RTCP reports (RFC 3550 §6.4.1), else the ICE
        pair's; None before either was measured."""
        return self._rtt()

    # --- configuration (any task; the demuxer is only read by the RTP task between items) ---

    @property
    def state(self) -> RtpTransportState:
        return self._state

    def inbox_send_channel(self) -> trio.MemorySendChannel[Batch | None]:
        """A clone of the inbox for the ICE transport (``ice.set_rtp_channel(...)``)."""
        return self._inbox_send.clone()

    def configure(
        self, sections: Sequence[MediaSection], extension_map: ExtensionMap | None = None
    ) -> None:
        """The negotiated RTP m-sections of the group; call again on renegotiation.

        The demultiplexer is rebuilt (the pure core has no reconfigure step), so learned SSRCs
        are learned again from the next packet carrying a MID; signaled ones are immediate."""
        self._sections = list(sections)
        if extension_map is not None:
            self._extension_map = extension_map
            self._twcc_id = extension_map.id_of(URI_TRANSPORT_CC)
            self._abs_send_time_id = extension_map.id_of(URI_ABS_SEND_TIME)
        self._rebuild_demuxer()

    def _rebuild_demuxer(self) -> None:
        sections = []
        for section in self._sections:
            local = {s.ssrc for s in self._senders.values() if s.mid == section.mid}
            local.update(
                s.rtx_ssrc
                for s in self._senders.values()
                if s.mid == section.mid and s.rtx_ssrc is not None
            )
            if not local <= section.local_ssrcs:
                section = attrs.evolve(section, local_ssrcs=section.local_ssrcs | local)
            sections.append(section)
        self.demuxer = RtpDemuxer(sections)

    def open_receiver(
        self,
        mid: str,
        *,
        clock_rate: int = DEFAULT_CLOCK_RATE,
        depth: int = RECEIVER_DEPTH,
        nack: bool = False,
        rtx: dict[int, int] | None = None,
        fir: bool = False,
        remb: bool = False,
    ) -> RtpReceiverChannel:
        """The channel of received packets of ``mid``: one ``list[RtpPacket]`` per wake-up of
        the task. Bounded: when full the oldest batch is dropped and counted, never blocking
        the task. Ends (``EndOfChannel``) when the transport ends.

        ``nack``: ask for lost packets with generic NACK (RFC 4585 §6.2.1). ``rtx``: RTX
        payload type → the payload type it repairs (``a=fmtp:<rtx> apt=``); RTX packets are
        unwrapped (RFC 4588 §4) and delivered as the packets they carry. ``fir``: ask for key
        frames with FIR (RFC 5104 §4.3.1), for a peer that negotiated ``ccm fir`` and not
        ``nack pli``; PLI otherwise. ``remb``: the peer takes REMB (``goog-remb``); when the
        group has abs-send-time and no transport-cc, we estimate what reaches us and send it
        (:mod:`trio_rtc.rtp.remb`)."""
        if mid in self._receivers:
            raise InvalidStateError(f"a receiver for mid {mid!r} is already open")
        receiver = _Receiver(clock_rate, depth, nack, dict(rtx or {}), fir, remb)
        if self._state in ("closed", "failed"):
            receiver.send.close()
        self._receivers[mid] = receiver
        return receiver.receive

    def open_sender(
        self,
        mid: str,
        ssrc: int,
        clock_rate: int,
        *,
        on_keyframe_request: Callable[[], object] | None = None,
        kind: str = "video",
        nack: bool = False,
        rtx_ssrc: int | None = None,
        rtx_payload_types: dict[int, int] | None = None,
        remb: bool = False,
        rid: str | None = None,
    ) -> RtpSender:
        """A sender of SSRC ``ssrc`` in m-section ``mid`` at ``clock_rate`` Hz.

        ``nack``, ``rtx_ssrc``, ``rtx_payload_types``: see :class:`RtpSender`. ``remb``: the
        peer may send REMB (``goog-remb``), a bandwidth estimate for when transport-cc is not
        negotiated."""
        if ssrc in self._senders:
            raise InvalidStateError(f"SSRC {ssrc} already has a sender")
        sender = RtpSender(
            self,
            mid,
            ssrc,
            clock_rate,
            on_keyframe_request,
            kind=kind,
            nack=nack,
            rtx_ssrc=rtx_ssrc,
            rtx_payload_types=rtx_payload_types,
            rng=self._rng,
            rid=rid,
        )
        self._remb = self._remb or remb
        self._senders[ssrc] = sender
        section = self.demuxer.sections.get(mid)
        if section is not None and not {ssrc, sender.rtx_ssrc} - {None} <= section.local_ssrcs:
            self._rebuild_demuxer()  # so RTCP about this SSRC finds its sender
        if self.scheduler is not None:
            self.scheduler.add_sender(sender.statistics)
        return sender

    def request_keyframe(self, mid: str) -> bool:
        """Send a PLI for the streams received in ``mid`` (reduced-size if negotiated)."""
        try:
            self._inbox_send.send_nowait(_Keyframe(mid))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def close(self, reason: bytes | None = None) -> None:
        """Send a BYE for our SSRCs and end the task (RFC 3550 §6.6)."""
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._inbox_send.send_nowait(_Close(reason))

    def stats(self) -> dict[str, Any]:
        """A snapshot of every counter: the task's, SRTP's, the demultiplexer's, per stream."""
        session = self.session
        return {
            "state": self._state,
            "transport": attrs.asdict(self.counters),
            "srtp": attrs.asdict(session.stats) if session is not None else None,
            "demux": {
                "packets_routed": self.demuxer.packets_routed,
                "drops": {r.value: n for r, n in self.demuxer.drops.items()},
            },
            "receivers": {mid: {"dropped": r.dropped} for mid, r in self._receivers.items()},
            "inbound": {
                ssrc: {
                    "mid": self._inbound_mid.get(ssrc),
                    "packets_received": s.packets_received,
                    "bytes_received": s.bytes_received,
                    "packets_lost": s.packets_lost,
                    "jitter": s.jitter,
                }
                for ssrc, s in self.inbound.items()
            },
            "outbound": {
                ssrc: {
                    "mid": s.mid,
                    "packets_sent": s.statistics.packets_sent,
                    "bytes_sent": s.statistics.octets_sent,
                    "round_trip_time": s.statistics.round_trip_time,
                    "packets_dropped": s.packets_dropped,
                    "keyframe_requests": s.keyframe_requests,
                }
                for ssrc, s in self._senders.items()
            },
        }

    # --- the task ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until closed, the layer below ends, a failure, or cancellation."""
        if self._running:
            raise InvalidStateError("RtpTransport.run() may be called once")
        self._running = True
        inbox = self._inbox
        try:
            async with trio.open_nursery() as nursery:
                if self._handler_queue is None:
                    self._handler_queue = HandlerQueue(name="rtp")
                    await nursery.start(self._handler_queue.run)
                nursery.start_soon(self._watch_dtls)
                task_status.started()
                items: list[InboxItem] = []
                while self._state in ("new", "connected"):
                    # The wait for the next item is bounded by the timers' next deadline. One
                    # cancel scope serves every wait until its deadline fires: a wake-up by an
                    # item only moves the deadline (nothing to do when it did not change),
                    # which costs a fraction of entering and leaving a new scope per wait.
                    with trio.CancelScope() as waiting:
                        while self._state in ("new", "connected"):
                            deadline = self._next_deadline()
                            if deadline is None:
                                deadline = math.inf
                            if deadline != waiting.deadline:
                                waiting.deadline = deadline
                                if deadline <= trio.current_time():
                                    waiting.cancel()  # due already: as a new scope would be
                            try:
                                items.append(await inbox.receive())
                            except (trio.EndOfChannel, trio.ClosedResourceError):
                                items.append(None)
                            self._wake_up(items)
                            if waiting.cancel_called:
                                break  # its deadline passed meanwhile: a new scope
                    if waiting.cancelled_caught:
                        self._wake_up(items)  # the deadline: no item, the timers
                nursery.cancel_scope.cancel()
        except Exception as exc:
            logger.exception("RTP transport task crashed")
            self.crashed = unwrap(exc)
            # No W3C errorDetail names RTP; SRTP is the media half of the DTLS-SRTP transport.
            self._fail(
                RTCError(f"RTP transport crashed: {self.crashed!r}", errorDetail="dtls-failure")
            )
        finally:
            if self._state == "connected" and self.scheduler is not None:
                # Cancelled from outside: a BYE still leaves (a synchronous socket write).
                with contextlib.suppress(Exception):
                    self._send_rtcp(self.scheduler.bye(trio.current_time()))
            self._set_state("closed")
            # Held for keys that never came: dropped now.
            self.counters.dropped_before_keys += self._early_datagrams
            self._early = []
            self._early_datagrams = self._early_bytes = 0
            # Senders above see a closed channel and count their drops. The receive end stays
            # open: RTCIceTransport.stop() does not expect BrokenResourceError from it (the ICE
            # readers' clone fills up and counts overflow instead).
            self._inbox_send.close()
            for receiver in self._receivers.values():
                receiver.send.close()

    def _wake_up(self, items: list[InboxItem]) -> None:
        """One wake-up of the task: ``items`` holds the item it woke for (empty when its
        deadline woke it); take everything else queued meanwhile, then run the timers."""
        if items:
            inbox = self._inbox
            while True:  # everything that queued meanwhile, in this wake-up
                try:
                    items.append(inbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            self._take(items, trio.current_time())
            items.clear()
        if self.scheduler is not None and self._state == "connected":
            self._on_timers(trio.current_time())

    async def _watch_dtls(self) -> None:
        """Wake the task with the keys once DTLS is connected (an empty batch does it)."""
        try:
            await self._dtls.wait_connected()
        except RTCError:
            item: InboxItem = None  # DTLS failed or closed: so does media
        else:
            item = []
        with contextlib.suppress(trio.ClosedResourceError):
            await self._inbox_send.send(item)

    def _start_keys(self, now: float) -> bool:
        """SRTP and RTCP from the DTLS keys; False when the keys are unusable (failed)."""
        keys = self._dtls.srtp_keys
        if keys is None:
            self._fail(
                RTCError(
                    "DTLS connected without use_srtp (RFC 5764 §4.1): the peer agreed no SRTP "
                    "profile, so no media can be protected; expected one of the offered "
                    "profiles in both ClientHello and ServerHello",
                    errorDetail="dtls-failure",
                )
            )
            return False
        self.session = SrtpSession(keys)
        scheduler = RtcpScheduler(
            self.cname,
            self._rng,
            receiver_ssrc=self._rng.getrandbits(32),
            video=self._video,
            minimum_interval=self._minimum_interval,
            reduced_size=self.reduced_size,
            # NACK and PLI are worth nothing late: a WebRTC session has two members.
            immediate_feedback=True,
            # SR NTP timestamps are wallclock (RFC 3550 §6.4.1); the core only sees ``now``.
            wallclock_offset=time.time() - now,
        )
        for sender in self._senders.values():
            scheduler.add_sender(sender.statistics)
        for stats in self.inbound.values():
            scheduler.add_receiver(stats)
        scheduler.start(now)
        self.scheduler = scheduler
        self.twcc = TwccRecorder(next(iter(self._senders), scheduler.receiver_ssrc))
        # The held datagrams' arrival times come before now: the epoch is the first of them.
        self._twcc_epoch = self._early[0][0] if self._early else now
        self._set_state("connected")
        return True

    def _take(self, items: list[InboxItem], now: float) -> None:
        delivered: dict[str, list[RtpPacket]] = {}
        outgoing: list[bytes] = []
        for item in items:
            if item is None:
                self._set_state("closed")
                break
            if type(item) is list:
                if (
                    self.session is None
                    and self._state == "new"
                    and self._dtls.state == "connected"
                ):
                    if self._start_keys(now) and self._early:
                        self._receive_held(now, delivered)
                if self.session is None:
                    self._hold(item, now)
                    continue
                self._receive(item, now, delivered)
            elif type(item) is _Send:
                self._send(item, now, outgoing)
            elif type(item) is _Keyframe:
                self._keyframe_request(item.mid, now)
            elif type(item) is _Close:
                if self.scheduler is not None and self._state == "connected":
                    outgoing.extend(self._protect_rtcp(self.scheduler.bye(now, item.reason)))
                self._set_state("closed")
                break
        if outgoing:
            self._write(outgoing)
        for mid, packets in delivered.items():
            self._deliver(mid, packets)
        # Counters and statistics moved: ``wait_until`` predicates are re-checked (one dict
        # lookup per wake-up, not per packet).
        self._notify_waiters()

    @property
    def held_datagrams(self) -> int:
        """Received datagrams held until the keys come (see ``EARLY_HOLD_DATAGRAMS``)."""
        return self._early_datagrams

    def _hold(self, datagrams: Batch, now: float) -> None:
        """Keep datagrams that came before the keys, within EARLY_HOLD_*; count the rest."""
        counters = self.counters
        if self._state != "new":
            counters.dropped_before_keys += len(datagrams)
            return
        early = self._early
        while early and now - early[0][0] > EARLY_HOLD_SECONDS:
            _, stale = early.pop(0)
            self._early_datagrams -= len(stale)
            self._early_bytes -= sum(len(d) for d in stale)
            counters.dropped_before_keys += len(stale)
        kept: list[bytes] = []
        count, size = self._early_datagrams, self._early_bytes
        for data in datagrams:
            if count < EARLY_HOLD_DATAGRAMS and size + len(data) <= EARLY_HOLD_BYTES:
                kept.append(data)
                count += 1
                size += len(data)
            else:
                counters.dropped_before_keys += 1
        if kept:
            early.append((now, kept))
            self._early_datagrams, self._early_bytes = count, size

    def _receive_held(self, now: float, delivered: dict[str, list[RtpPacket]]) -> None:
        """The keys came: the held datagrams, in order, each batch at its arrival time."""
        early, self._early = self._early, []
        self._early_datagrams = self._early_bytes = 0
        for at, datagrams in early:
            if now - at > EARLY_HOLD_SECONDS:
                self.counters.dropped_before_keys += len(datagrams)
                continue
            self.counters.held_before_keys += len(datagrams)
            self._receive(datagrams, at, delivered)

    # --- receive walk ----------------------------------------------------------------------

    def _receive(
        self,
        datagrams: Batch,
        now: float,
        delivered: dict[str, list[RtpPacket]],
    ) -> None:
        session = self.session
        assert session is not None
        counters = self.counters
        route = self.demuxer.route_rtp
        twcc = self.twcc
        twcc_id = self._twcc_id if twcc is not None else None
        arrival_us = int((now - self._twcc_epoch) * 1_000_000)
        abs_id = self._abs_send_time_id if self._twcc_id is None else None
        for data in datagrams:
            # RFC 5761 §4: with rtcp-mux, RTCP's packet types 200-207 (192-223 to be safe)
            # sit in the second byte where RTP has M + payload type; RTP avoids 64-95.
            if len(data) > 1 and 192 <= data[1] <= 223:
                plain = session.unprotect_rtcp(data)
                if plain is not None:
                    self._receive_rtcp(plain, now)
                continue
            plain = session.unprotect_rtp(data)
            if plain is None:
                continue
            try:
                packet = parse_rtp_untrusted(plain)
            except RtpError:
                counters.rtp_malformed += 1
                continue
            binding = route(packet)
            if binding is None:
                continue
            mid = binding.mid
            receiver = self._receivers.get(mid)
            stats = self.inbound.get(packet.ssrc)
            if stats is None:
                stats = self._new_inbound(packet.ssrc, mid)
            stats.on_packet(packet, now, len(plain))
            if twcc_id is not None:
                raw = packet.extensions.get(twcc_id)
                if raw is not None and len(raw) == 2:
                    assert twcc is not None
                    twcc.on_packet(
                        decode_transport_cc_untrusted(raw),
                        arrival_us,
                        packet.ssrc,
                        len(data) + _UDP_OVERHEAD,
                    )
            elif abs_id is not None and receiver is not None and receiver.remb:
                raw = packet.extensions.get(abs_id)
                if raw is not None and len(raw) == 3:
                    remb = self.remb
                    if remb is None:
                        remb = self._start_remb()
                    remb.on_packet(
                        int.from_bytes(raw, "big"), now, len(data) + _UDP_OVERHEAD, packet.ssrc
                    )
            recovered = False
            if binding.repair:
                # RFC 4588: a retransmission. Its transport-wide number and arrival counted
                # above for congestion control like any packet's; the media packet inside goes
                # on to the receiver as if it had arrived on time.
                original = self._unwrap_rtx(packet, binding.primary_ssrc, receiver, now)
                if original is None:
                    continue
                packet = original
                recovered = True
            counters.packets_received += 1
            if receiver is None:
                counters.rtp_no_receiver += 1
                continue
            if receiver.nack:
                generator = self._nack.get(packet.ssrc)
                if generator is None:
                    generator = self._nack[packet.ssrc] = NackGenerator(
                        retry_needs_arrival=True, wait_after_reordering=True
                    )
                    rtt = self._rtt()
                    if rtt is not None:
                        generator.set_rtt(rtt)
                generator.receive_packet(packet.sequence_number, now, recovered=recovered)
            batch = delivered.get(mid)
            if batch is None:
                delivered[mid] = [packet]
            else:
                batch.append(packet)

    def _unwrap_rtx(
        self, packet: RtpPacket, primary: int | None, receiver: _Receiver | None, now: float
    ) -> RtpPacket | None:
        """The media packet an RTX packet carries, or None (padding, unpaired, malformed)."""
        counters = self.counters
        if not packet.payload:
            return None  # padding only: a bandwidth probe (RFC 4588 §4, "RTX padding")
        if primary is None or receiver is None or not receiver.rtx:
            counters.rtx_unpaired += 1
            return None
        try:
            original = unwrap_rtx_untrusted(packet, primary, receiver.rtx)
        except RtpError:
            counters.rtx_malformed += 1
            return None
        if original is None:
            return None  # the original sequence number and nothing else: padding too
        counters.retransmissions_received += 1
        primary_stats = self.inbound.get(primary)
        if primary_stats is not None:
            primary_stats.on_packet(original, now, retransmitted=True)
        return original

    def _new_inbound(self, ssrc: int, mid: str) -> ReceiveStreamStatistics:
        receiver = self._receivers.get(mid)
        stats = ReceiveStreamStatistics(
            ssrc, receiver.clock_rate if receiver else DEFAULT_CLOCK_RATE
        )
        self.inbound[ssrc] = stats
        self._inbound_mid[ssrc] = mid
        if self.scheduler is not None:
            self.scheduler.add_receiver(stats)
        return stats

    def _receive_rtcp(self, plain: bytes, now: float) -> None:
        counters = self.counters
        try:
            packets = parse_rtcp_untrusted(plain)
        except RtpError:
            counters.rtcp_malformed += 1
            return
        counters.rtcp_received += 1
        if self.scheduler is not None:
            self.scheduler.on_rtcp_received(len(plain))
        for route in self.demuxer.route_rtcp(packets):
            packet = route.packet
            if route.local:
                if isinstance(packet, TwccFeedback):
                    counters.twcc_feedback_received += 1
                    estimator = self.estimator
                    if estimator is not None:
                        estimator.receive_feedback(packet, now)
                        # Loss while the queue grows is congestion: no redundant resends.
                        congested = estimator.usage is BandwidthUsage.OVERUSING
                        for local in self._senders.values():
                            if local.retransmitter is not None:
                                local.retransmitter.congested = congested
                    continue
                if isinstance(packet, Remb):
                    counters.remb_received += 1
                    if self.estimator is not None:
                        self.estimator.receive_remb(packet.bitrate, now)
                    continue
                sender = self._senders.get(route.ssrc)
                if sender is None:
                    continue
                if route.report_block is not None:
                    block = route.report_block
                    rtt = sender.statistics.on_report_block(block, now)
                    if rtt is not None:
                        self._on_rtt(rtt)
                    if self.estimator is not None:
                        # The interval's loss from the cumulative fields (RFC 3550 §6.4.1).
                        last = sender._last_report
                        sender._last_report = (block.highest_sequence, block.packets_lost)
                        if last is not None:
                            expected = block.highest_sequence - last[0]
                            if 0 < expected < 0x10000:
                                self.estimator.receive_loss_report(
                                    block.packets_lost - last[1], expected, now
                                )
                elif isinstance(packet, PictureLossIndication | FullIntraRequest):
                    counters.keyframe_requests_received += 1
                    sender.keyframe_requests += 1
                    if isinstance(packet, FullIntraRequest):
                        sender.fir_received += 1
                        entry = next(e for e in packet.entries if e.ssrc == route.ssrc)
                        answer = sender.keyframes.receive_fir(
                            packet.sender_ssrc, entry.sequence_number, now
                        )
                    else:
                        sender.pli_received += 1
                        answer = sender.keyframes.receive_pli(now)
                    if answer and sender.on_keyframe_request is not None:
                        try:
                            sender.on_keyframe_request()
                        except Exception:
                            # The user's callback, not this task, is broken: as for event
                            # handlers, log it and let media go on.
                            logger.exception("on_keyframe_request of SSRC %d raised", sender.ssrc)
                elif isinstance(packet, GenericNack):
                    lost = packet.lost_sequence_numbers()
                    counters.nacks_received += len(lost)
                    sender.nacks_received += 1
                    retransmitter = sender.retransmitter
                    if retransmitter is not None:
                        self._retransmit(sender, retransmitter.receive_nack(lost, now), now)
            elif isinstance(packet, SenderReport):
                stats = self.inbound.get(route.ssrc)
                if stats is None and route.mid is not None:
                    stats = self._new_inbound(route.ssrc, route.mid)
                if stats is not None:
                    stats.on_sender_report(packet, now)
            elif isinstance(packet, Bye):
                # RFC 3550 §6.6: the source left; its statistics stop being reported.
                counters.byes_received += 1
                if self.inbound.pop(route.ssrc, None) is not None and self.scheduler:
                    self.scheduler.remove_receiver(route.ssrc)
                self._inbound_mid.pop(route.ssrc, None)

    def _deliver(self, mid: str, packets: list[RtpPacket]) -> None:
        receiver = self._receivers[mid]
        try:
            receiver.send.send_nowait(packets)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            # The reader closed its end: nobody listens for this mid any more.
            del self._receivers[mid]
            self.counters.receiver_overflow += len(packets)
            return
        # Full: the reader fell behind. Drop the oldest batch (stale media is worth least)
        # rather than block this task, which would stall every other stream of the group.
        with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            old = receiver.receive.receive_nowait()
            receiver.dropped += len(old)
            self.counters.receiver_overflow += len(old)
        with contextlib.suppress(
            trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError
        ):
            receiver.send.send_nowait(packets)

    # --- send walk ---------------------------------------------------------------------------

    def _send(self, item: _Send, now: float, outgoing: list[bytes]) -> None:
        sender = item.sender
        session = self.session
        if session is None or self._state != "connected":
            sender.packets_dropped += len(item.packets)
            self.counters.dropped_before_keys += len(item.packets)
            return
        section = self.demuxer.sections.get(sender.mid)
        mid_id = section.mid_extension_id if section is not None else None
        if mid_id is not None:
            mid_value = encode_sdes_text(sender.mid)
            for packet in item.packets:
                packet.extensions[mid_id] = mid_value
        if sender.rid is not None:
            rid_id = self._extension_map.id_of(URI_RID)
            if rid_id is not None:
                rid_value = encode_sdes_text(sender.rid)
                for packet in item.packets:
                    packet.extensions[rid_id] = rid_value
        if item.keyframe:
            sender.keyframes.on_keyframe_sent(now)
        pacer = self.pacer
        if pacer is None and self._congestion_control():
            pacer = self._start_congestion_control(now)
        if pacer is None:
            for packet in item.packets:
                self._emit(sender, packet, now, outgoing)
            return
        kind = PacketKind.AUDIO if sender.kind == "audio" else PacketKind.VIDEO
        pacer.enqueue_many(
            [_Outgoing(sender, p) for p in item.packets],
            [len(p.payload) + _PACKET_OVERHEAD for p in item.packets],
            kind,
            now,
        )
        self._release(now, outgoing)

    def _congestion_control(self) -> bool:
        """Whether the peer tells us how our packets fare: transport-wide feedback for the
        transport-cc extension we stamp, or REMB."""
        return self._remb or self._twcc_id is not None

    def _start_congestion_control(self, now: float) -> Pacer[_Outgoing]:
        estimator = self.estimator = SendSideBandwidthEstimator()
        rtt = self._rtt()
        if rtt is not None:
            estimator.set_rtt(rtt)
        pacer = self.pacer = Pacer[_Outgoing](estimator.estimate)
        self._share_estimate(estimator.estimate)
        return pacer

    def _share_estimate(self, estimate: int) -> None:
        """Give each video sender its share of ``estimate`` (what audio needs comes first);
        the encoders follow ``target_bitrate``.

        Retransmissions are not taken off the share (libwebrtc takes its protection bitrate
        off its encoders' targets): tried (1f5d8f4), it could not lower what bench_links' test
        pattern sends (its noise block costs 770 kbit/s at 640x480 whatever the target)
        unless libvpx dropped pictures, and in the bench_links runs that had it 5 scenario
        runs of 22 started at 300-900 kbit/s instead of 2-3.5 Mbit/s (0 of 17 before, 0 of 4
        after), for reasons not found."""
        if self.trace is not None and estimate != self.available_outgoing_bitrate:
            self.trace("estimate", {"bitrate": estimate})
        self.available_outgoing_bitrate = estimate
        senders = list(self._senders.values())
        # Retransmissions get at most half the estimate: after a capacity drop the media-rate
        # share (half of what the last second sent) still allows more than the new link
        # carries, and the resends of what the overflow lost kept it overloaded (a 3 -> 1
        # Mbit/s step took 2.8 s instead of 1.2 s to get under the new capacity).
        retransmit_cap = max(estimate // 2, RETRANSMIT_FLOOR_BPS)
        for sender in senders:
            if sender.retransmitter is not None:
                sender.retransmitter.set_max_rate(retransmit_cap)
        video = [s for s in senders if s.kind == "video"]
        if not video:
            return
        audio = sum(AUDIO_ALLOWANCE for s in senders if s.kind == "audio")
        # One share per video source: a plain sender, or the simulcast layers of one section.
        sources: dict[str, list[RtpSender]] = {}
        for sender in video:
            key = sender.mid if sender.layer_rank is not None else f"ssrc {sender.ssrc}"
            sources.setdefault(key, []).append(sender)
        share = max((estimate - audio) // len(sources), MIN_VIDEO_BITRATE)
        for group in sources.values():
            if len(group) == 1 and group[0].layer_rank is None:
                self._retarget(group[0], share)
            else:
                self._share_layers(group, share)

    @staticmethod
    def _retarget(sender: RtpSender, share: int) -> None:
        # Every change beyond RETARGET_STEP: whether a change is worth a keyframe is the
        # encoder's to judge (x264 takes a new rate live; libvpx reopens, and rations its
        # reopens). A second hysteresis here (rises only beyond 30 %) kept the encoder at the
        # rate of the last back-off while the estimate climbed back: a 2 Mbit/s link was used
        # at 85 %.
        current = sender.target_bitrate
        if current is None or abs(share - current) > RETARGET_STEP * current:
            sender.target_bitrate = share

    def _share_layers(self, layers: list[RtpSender], share: int) -> None:
        """Simulcast: the smallest picture first, each layer up to its maximum; a layer that
        cannot get a third of its maximum is paused (target 0) rather than sent starved, and
        the ones above it too (a receiver switching up needs them all)."""
        left = share
        starved = False
        for sender in sorted(layers, key=lambda s: s.layer_rank or 0):
            ceiling = sender.layer_max_bitrate or share
            if starved or (left < ceiling / 3 and sender.layer_rank):
                starved = True
                sender.target_bitrate = 0
                continue
            given = min(left, ceiling)
            left -= given
            if sender.target_bitrate == 0:
                sender.target_bitrate = given  # resumed
            else:
                self._retarget(sender, given)

    def _release(self, now: float, outgoing: list[bytes]) -> None:
        """Send what the pacer lets go now."""
        pacer = self.pacer
        if pacer is None:
            return
        estimator = self.estimator
        if estimator is not None:
            for cluster in estimator.probes_to_send(now):
                pacer.add_probe_cluster(cluster)
        for paced in pacer.datagrams_to_send(now):
            item = paced.item
            if item is None:
                self._emit_padding(paced, now, outgoing)
            elif item.resend or item.rtx:
                self._emit_retransmission(item, now, outgoing, paced.probe_cluster)
            else:
                self._emit(item.sender, item.packet, now, outgoing, paced.probe_cluster)

    def _stamp(self, packet: RtpPacket, now: float, probe_cluster: int | None) -> None:
        """The send time in abs-send-time when it is negotiated (a REMB peer estimates from
        it), and the transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-
        extensions-01 §2) when congestion control runs and the extension is negotiated."""
        abs_id = self._abs_send_time_id
        if abs_id is not None:
            packet.extensions[abs_id] = encode_abs_send_time(abs_send_time_from_seconds(now))
        estimator = self.estimator
        if estimator is None:
            return
        twcc_id = self._twcc_id
        if twcc_id is None:
            return
        size = len(packet.payload) + packet.padding_size + _PACKET_OVERHEAD
        seq = estimator.on_packet_sent(size, now, probe_cluster=probe_cluster)
        packet.extensions[twcc_id] = encode_transport_cc(seq)

    def _protect(self, sender: RtpSender, packet: RtpPacket) -> tuple[bytes, int] | None:
        session = self.session
        assert session is not None
        try:
            plain = packet.serialize(extmap_allow_mixed=self._extension_map.allow_mixed)
            return session.protect_rtp(plain), len(plain)
        except ValueError as exc:
            # Our caller's packet (too large, a field out of range): refused and counted,
            # logged once per sender; the transport and the other streams carry on.
            self.counters.send_refused += 1
            sender.packets_dropped += 1
            if not sender._warned:
                sender._warned = True
                logger.warning("RTP sender %d refused a packet: %s", sender.ssrc, exc)
            return None

    def _emit(
        self,
        sender: RtpSender,
        packet: RtpPacket,
        now: float,
        outgoing: list[bytes],
        probe_cluster: int | None = None,
    ) -> None:
        self._stamp(packet, now, probe_cluster)
        done = self._protect(sender, packet)
        if done is None:
            return
        protected, size = done
        outgoing.append(protected)
        sender.statistics.on_packet_sent(packet, now, size=size)
        if sender.retransmitter is not None:
            sender.retransmitter.on_media_sent(packet, now, size)
        self.counters.packets_sent += 1

    def _retransmit(self, sender: RtpSender, resends: list[Retransmission], now: float) -> None:
        """Queue the answer to a NACK (before new video, RFC 4588 §1's point: it is late)."""
        if not resends or self.session is None or self._state != "connected":
            return
        items = [_Outgoing(sender, r.packet, rtx=r.rtx, resend=not r.rtx) for r in resends]
        pacer = self.pacer
        if pacer is None:
            outgoing: list[bytes] = []
            for item in items:
                self._emit_retransmission(item, now, outgoing, None)
            self._write(outgoing)
            return
        pacer.enqueue_many(
            items,
            [r.size + _PACKET_OVERHEAD for r in resends],
            PacketKind.RETRANSMISSION,
            now,
        )

    def _emit_retransmission(
        self, item: _Outgoing, now: float, outgoing: list[bytes], probe_cluster: int | None
    ) -> None:
        sender, packet = item.sender, item.packet
        if item.rtx:
            if sender.rid is not None:
                # RFC 8852 §3.2: an RTX packet names the stream it repairs by repaired-rid.
                rid_id = self._extension_map.id_of(URI_RID)
                repaired_id = self._extension_map.id_of(URI_REPAIRED_RID)
                value = packet.extensions.pop(rid_id, None) if rid_id is not None else None
                if repaired_id is not None and value is not None:
                    packet.extensions[repaired_id] = value
            # A new packet of the RTX stream: its own transport-wide number, like any.
            self._stamp(packet, now, probe_cluster)
        elif self.estimator is not None and self._twcc_id is not None:
            raw = packet.extensions.get(self._twcc_id)
            if raw is not None and len(raw) == 2:
                self.estimator.on_packet_resent(decode_transport_cc_untrusted(raw))
        # A plain resend goes out exactly as the first time (its transport-wide number too):
        # SRTP protects the same index again, safe only for identical bytes.
        done = self._protect(sender, packet)
        if done is None:
            return
        outgoing.append(done[0])
        sender.statistics.retransmitted_packets_sent += 1
        sender.statistics.retransmitted_bytes_sent += len(packet.payload) - (2 if item.rtx else 0)
        self.counters.packets_sent += 1

    def _emit_padding(self, paced: Paced[_Outgoing], now: float, outgoing: list[bytes]) -> None:
        """A probe asked for padding: RTX packets carrying only padding (RFC 4588 §4 allows
        them), on a video sender that has an RTX stream; without one the probe goes without."""
        sender = next(
            (
                s
                for s in self._senders.values()
                if s.rtx_ssrc is not None and s.retransmitter is not None
            ),
            None,
        )
        if sender is None:
            return
        retransmitter = sender.retransmitter
        assert retransmitter is not None and sender.rtx_ssrc is not None
        rtx_pt = next(iter(retransmitter.rtx_payload_types.values()))
        left = paced.size
        section = self.demuxer.sections.get(sender.mid)
        mid_id = section.mid_extension_id if section is not None else None
        while left > 0:
            padding = min(_MAX_PADDING, max(left - _PACKET_OVERHEAD, 1))
            packet = RtpPacket(
                payload_type=rtx_pt,
                sequence_number=retransmitter.take_rtx_sequence_number(),
                timestamp=sender.statistics.last_timestamp,
                ssrc=sender.rtx_ssrc,
                payload=b"",
                padding_size=padding,
            )
            if mid_id is not None:
                packet.extensions[mid_id] = encode_sdes_text(sender.mid)
            self._stamp(packet, now, paced.probe_cluster)
            done = self._protect(sender, packet)
            if done is None:
                return
            outgoing.append(done[0])
            sender.padding_packets_sent += 1
            sender.padding_bytes_sent += padding
            left -= padding + _PACKET_OVERHEAD

    # --- receive-side feedback -------------------------------------------------------------

    def _rtt(self) -> float | None:
        """The latest round-trip time from RTCP (SR/RR, RFC 3550 §6.4.1), else the ICE
        pair's (its STUN checks measure it too): a side that only receives has no SR of its
        own to measure with."""
        if self._last_rtt is not None:
            return self._last_rtt
        pair = getattr(self._ice, "selected_pair", None)
        rtt = getattr(pair, "current_round_trip_time", None)
        return rtt if isinstance(rtt, float) and rtt > 0 else None

    def _refresh_ice_rtt(self, now: float) -> None:
        """Without an RTCP round-trip time, pass the ICE pair's on (once a second)."""
        if self._last_rtt is not None or now < self._ice_rtt_checked + 1.0:
            return
        self._ice_rtt_checked = now
        rtt = self._rtt()
        if rtt is not None:
            for generator in self._nack.values():
                generator.set_rtt(rtt)
            if self.remb is not None:
                self.remb.set_rtt(rtt)

    def _on_rtt(self, rtt: float) -> None:
        self._last_rtt = rtt
        for generator in self._nack.values():
            generator.set_rtt(rtt)
        for sender in self._senders.values():
            if sender.retransmitter is not None:
                sender.retransmitter.set_rtt(rtt)
            sender.keyframes.hold_off = _keyframe_hold_off(rtt)
        if self.estimator is not None:
            self.estimator.set_rtt(rtt)
        if self.remb is not None:
            self.remb.set_rtt(rtt)

    def _keyframe_request(self, mid: str, now: float) -> None:
        """Ask for a key frame of every media stream received in ``mid`` (rate-limited per
        SSRC by the requester; sent by :meth:`_send_feedback`)."""
        for ssrc, m in self._inbound_mid.items():
            if m == mid and not self._is_repair(ssrc):
                self.keyframe_requester.request_keyframe(ssrc, now)

    def _our_ssrc(self) -> int:
        scheduler = self.scheduler
        assert scheduler is not None
        return next(iter(self._senders), scheduler.receiver_ssrc)

    def _send_feedback(self, now: float) -> None:
        """NACKs and key frame requests that are due, in one RTCP packet when the rules allow
        (RFC 4585 §3.5: reduced-size alone, else queued for the next compound)."""
        scheduler = self.scheduler
        if scheduler is None or self._state != "connected":
            return
        ours = self._our_ssrc()
        feedback: list[RtcpFeedbackPacket] = []
        requester = self.keyframe_requester
        for ssrc, generator in list(self._nack.items()):
            if ssrc not in self.inbound:
                del self._nack[ssrc]  # BYE, or the stream left the demultiplexer
                continue
            lost = generator.nacks_to_send(now)
            if lost:
                feedback.append(GenericNack.from_lost(ours, ssrc, lost))
                self.counters.nacks_sent += 1
                if self.trace is not None:
                    self.trace("nack_sent", {"ssrc": ssrc, "count": len(lost)})
            if generator.take_keyframe_request():
                requester.request_keyframe(ssrc, now)
        for ssrc in requester.requests_to_send(now):
            receiver = self._receivers.get(self._inbound_mid.get(ssrc, ""))
            if receiver is not None and receiver.fir:
                feedback.append(FullIntraRequest(ours, [requester.fir_entry(ssrc)]))
                self.counters.fir_sent += 1
            else:
                feedback.append(PictureLossIndication(ours, ssrc))
            self.counters.keyframe_requests_sent += 1
            if self.trace is not None:
                fir = receiver is not None and receiver.fir
                self.trace("fir_sent" if fir else "pli_sent", {"ssrc": ssrc})
        if feedback:
            self._send_rtcp(scheduler.send_feedback(feedback, now))

    def _next_deadline(self) -> float | None:
        """When the task must wake without input: the next RTCP report, TWCC feedback, NACK,
        key frame request, paced packet or probe.

        Called once per wake-up of the task (about a hundred times a second per side with
        paced video), so it keeps a running minimum instead of building a list of deadlines."""
        scheduler = self.scheduler
        if scheduler is None:
            return None
        deadline = scheduler.get_timer()
        if self._state != "connected":
            return deadline
        twcc = self.twcc
        if twcc is not None:
            due = twcc.next_feedback_at
            if due is not None:
                feedback_at = self._twcc_epoch + due / 1_000_000
                if deadline is None or feedback_at < deadline:
                    deadline = feedback_at
        at: float | None
        for generator in self._nack.values():
            at = generator.get_timer()
            if at is not None and (deadline is None or at < deadline):
                deadline = at
        at = self.keyframe_requester.get_timer()
        if at is not None and (deadline is None or at < deadline):
            deadline = at
        pacer = self.pacer
        if pacer is not None:
            at = pacer.get_timer()
            if at is not None and (deadline is None or at < deadline):
                deadline = at
        estimator = self.estimator
        if estimator is not None:
            at = estimator.get_timer()
            if at is not None and (deadline is None or at < deadline):
                deadline = at
        remb = self.remb
        if remb is not None:
            at = remb.get_timer()
            if at is not None and (deadline is None or at < deadline):
                deadline = at
        return deadline

    def _on_timers(self, now: float) -> None:
        """Everything time-driven, after each wake-up. Each part returns at once when it has
        nothing due; the ones that need an object that may not exist (the receive-side
        estimator, the pacer) are skipped without a call while it does not."""
        self._refresh_ice_rtt(now)
        self._send_twcc(now)
        self._send_feedback(now)
        if self.remb is not None:
            self._send_remb(now)
        estimator = self.estimator
        if estimator is not None:
            event = estimator.next_event()
            if event is not None:
                pacer = self.pacer
                assert pacer is not None
                if event.capacity_drop:
                    # The resends of what the bottleneck dropped before the overuse was found
                    # must not keep the link congested (trio_rtc.rtp.pacer,
                    # RETRANSMISSION_LIMIT_SECONDS). Only after a capacity drop: limiting them
                    # after every back-off cost bench_links (b), 5 % random loss, 14-15
                    # freezes against 0-1.
                    pacer.limit_retransmissions(now, event.bitrate)
                pacer.set_estimate(event.bitrate)
                self._share_estimate(event.bitrate)
        if self.pacer is not None:
            outgoing: list[bytes] = []
            self._release(now, outgoing)
            if outgoing:
                self._write(outgoing)
        scheduler = self.scheduler
        assert scheduler is not None
        due = scheduler.get_timer()
        if due is not None and now >= due:  # handle_timer returns nothing before its timer
            self._send_rtcp(scheduler.handle_timer(now))

    def _start_remb(self) -> ReceiveSideEstimator:
        remb = self.remb = ReceiveSideEstimator()
        remb.set_rtt(self._rtt())
        return remb

    def _send_remb(self, now: float) -> None:
        """Our receive-side estimate to the sender, when one is due (at once when it falls)."""
        remb, scheduler = self.remb, self.scheduler
        if remb is None or scheduler is None or self._state != "connected":
            return
        remb.handle_timer(now)
        due = remb.remb_to_send(now)
        if due is None:
            return
        bitrate, ssrcs = due
        self.counters.remb_sent += 1
        self._send_rtcp(scheduler.send_feedback([Remb(self._our_ssrc(), bitrate, ssrcs)], now))

    def _send_twcc(self, now: float) -> None:
        """Send transport-wide feedback if it is due: alone with reduced-size RTCP, else
        queued for the next compound the RFC 4585 timing allows."""
        twcc, scheduler = self.twcc, self.scheduler
        if twcc is None or scheduler is None or self._state != "connected":
            return
        due = twcc.next_feedback_at
        now_us = int((now - self._twcc_epoch) * 1_000_000)
        # Up to 1 ms early: a float round trip through trio time must not leave the deadline
        # in the past with nothing sent (the loop would spin).
        if due is None or now_us < due - 1000:
            return
        # Ours, as for PLI: a sender's SSRC once there is one, else the receiver-only SSRC.
        twcc.sender_ssrc = self._our_ssrc()
        feedback = twcc.feedback(now_us)
        self.counters.twcc_feedback_sent += len(feedback)
        self._send_rtcp(scheduler.send_feedback(feedback, now))

    def _is_repair(self, ssrc: int) -> bool:
        binding = self.demuxer.binding(ssrc)
        return binding is not None and binding.repair

    def _send_rtcp(self, compounds: list[list[RtcpPacket]]) -> None:
        datagrams = self._protect_rtcp(compounds)
        if datagrams:
            self._write(datagrams)

    def _protect_rtcp(self, compounds: list[list[RtcpPacket]]) -> list[bytes]:
        session = self.session
        if session is None:
            return []
        self.counters.rtcp_sent += len(compounds)
        return [session.protect_rtcp(serialize_compound(c)) for c in compounds]

    def _write(self, datagrams: list[bytes]) -> None:
        try:
            self._ice.send_many(datagrams)
        except _SEND_ERRORS as exc:
            # The socket below is gone; media cannot go on (ICE reports its own failure).
            logger.debug("RTP transport cannot send: %r", exc)
            self._set_state("closed")

    # --- state -----------------------------------------------------------------------------

    def _fail(self, error: RTCError) -> None:
        if self._state in ("closed", "failed"):
            return
        self.error = error
        self._state = "failed"
        self.dispatchEvent(RTCErrorEvent("error", error))
        self.dispatchEvent(Event("statechange"))

    def _set_state(self, state: RtpTransportState) -> None:
        if state == self._state or self._state in ("closed", "failed"):
            return
        self._state = state
        self.dispatchEvent(Event("statechange"))
