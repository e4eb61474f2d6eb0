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
import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs
import trio

from .._channels import Batch
from .._supervision import unwrap
from ..events import Event, EventTarget, HandlerQueue, RTCErrorEvent, event_handler_property
from ..exceptions import InvalidStateError, RTCError
from .demux import MediaSection, RtpDemuxer
from .errors import RtpError
from .extensions import (
    URI_TRANSPORT_CC,
    ExtensionMap,
    decode_transport_cc_untrusted,
    encode_sdes_text,
)
from .packet import RtpPacket, parse_rtp_untrusted
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
_SEND_ERRORS = (OSError, trio.ClosedResourceError, trio.BrokenResourceError)

#: The receive end a receiver reads: one list of packets per wake-up of the RTP task.
RtpReceiverChannel = trio.MemoryReceiveChannel[list[RtpPacket]]


@attrs.define(eq=False)
class _Send:
    """A burst of packets of one sender, for the RTP task to serialize, protect and send."""

    sender: RtpSender
    packets: list[RtpPacket]


@attrs.define(eq=False)
class _Keyframe:
    mid: str


@attrs.define(eq=False)
class _Close:
    reason: bytes | None = None


#: A received burst (a plain list of datagrams), something to send, a command, or the end.
InboxItem = Batch | _Send | _Keyframe | _Close | None


class RtpSender:
    """Sends the packets of one local SSRC in one m-section, through the RTP task.

    ``on_keyframe_request`` is called (in the RTP task; it must not block) when the peer asks
    for a key frame of this SSRC with PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1).
    """

    def __init__(
        self,
        transport: RtpTransport,
        mid: str,
        ssrc: int,
        clock_rate: int,
        on_keyframe_request: Callable[[], object] | None,
    ) -> None:
        self.transport = transport
        self.mid = mid
        self.ssrc = ssrc
        self.statistics = SendStreamStatistics(ssrc, clock_rate)
        self.on_keyframe_request = on_keyframe_request
        self.keyframe_requests = 0
        #: Packets dropped: inbox full, no keys yet, transport ended, or unprotectable.
        self.packets_dropped = 0
        self._warned = False

    def send_packets_nowait(self, packets: list[RtpPacket]) -> bool:
        """Hand a burst to the RTP task; False (dropped and counted, as UDP would) when its
        inbox is full or it has ended. The packets are the task's from now on: it sets the mid
        header extension on them."""
        try:
            self.transport._inbox_send.send_nowait(_Send(self, packets))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.packets_dropped += len(packets)
            return False
        return True

    async def send_packets(self, packets: list[RtpPacket]) -> None:
        """Like :meth:`send_packets_nowait`, but waits while the RTP task's inbox is full."""
        try:
            await self.transport._inbox_send.send(_Send(self, packets))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.packets_dropped += len(packets)
            raise InvalidStateError("the RTP transport has ended") from None


class _Receiver:
    __slots__ = ("clock_rate", "dropped", "receive", "send")

    def __init__(self, clock_rate: int, depth: int) -> None:
        self.send, self.receive = trio.open_memory_channel[list[RtpPacket]](depth)
        self.clock_rate = clock_rate
        self.dropped = 0


@attrs.define
class RtpTransportCounters:
    """What the RTP task dropped and handled, beyond the SRTP and demultiplexer counters."""

    dropped_before_keys: int = 0
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


class RtpTransport(EventTarget):
    """The RTP/SRTP task of one BUNDLE transport, beside its DTLS (and SCTP) tasks.

    ``dtls``: the group's ``RTCDtlsTransport`` (keys); ``ice``: its ``RTCIceTransport``
    (``send_many``). ``cname``: the RTCP CNAME of this transport's streams (random by
    default). ``reduced_size``: ``a=rtcp-rsize`` was negotiated (RFC 5506): feedback may go
    alone. ``extension_map``: the group's negotiated ``a=extmap`` ids (RFC 8843 §9.1: one id
    per URI across the group), used to write the mid extension on what we send.
    """

    onstatechange = event_handler_property["RtpTransport"]("statechange")
    onerror = event_handler_property["RtpTransport"]("error")

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
        self.counters = RtpTransportCounters()
        #: The unexpected exception that ended the task, if one did.
        self.crashed: BaseException | None = None
        #: Why the transport failed (a crash, or DTLS connected without use_srtp).
        self.error: RTCError | None = None

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
        self._rebuild_demuxer()

    def _rebuild_demuxer(self) -> None:
        sections = []
        for section in self._sections:
            local = {s.ssrc for s in self._senders.values() if s.mid == section.mid}
            if not local <= section.local_ssrcs:
                section = attrs.evolve(section, local_ssrcs=section.local_ssrcs | local)
            sections.append(section)
        self.demuxer = RtpDemuxer(sections)

    def open_receiver(
        self, mid: str, *, clock_rate: int = DEFAULT_CLOCK_RATE, depth: int = RECEIVER_DEPTH
    ) -> RtpReceiverChannel:
        """The channel of received packets of ``mid``: one ``list[RtpPacket]`` per wake-up of
        the task. Bounded: when full the oldest batch is dropped and counted, never blocking
        the task. Ends (``EndOfChannel``) when the transport ends."""
        if mid in self._receivers:
            raise InvalidStateError(f"a receiver for mid {mid!r} is already open")
        receiver = _Receiver(clock_rate, depth)
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
    ) -> RtpSender:
        """A sender of SSRC ``ssrc`` in m-section ``mid`` at ``clock_rate`` Hz."""
        if ssrc in self._senders:
            raise InvalidStateError(f"SSRC {ssrc} already has a sender")
        sender = RtpSender(self, mid, ssrc, clock_rate, on_keyframe_request)
        self._senders[ssrc] = sender
        section = self.demuxer.sections.get(mid)
        if section is not None and ssrc not in section.local_ssrcs:
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
                    deadline = self._next_deadline()
                    try:
                        if deadline is None:
                            items.append(await inbox.receive())
                        else:
                            with trio.CancelScope(deadline=deadline):
                                items.append(await inbox.receive())
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        items.append(None)
                    if items:
                        while True:  # everything that queued meanwhile, in this wake-up
                            try:
                                items.append(inbox.receive_nowait())
                            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                                break
                        self._take(items, trio.current_time())
                        items.clear()
                    if self.scheduler is not None and self._state == "connected":
                        now = trio.current_time()
                        self._send_twcc(now)
                        self._send_rtcp(self.scheduler.handle_timer(now))
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
            # Senders above see a closed channel and count their drops. The receive end stays
            # open: RTCIceTransport.stop() does not expect BrokenResourceError from it (the ICE
            # readers' clone fills up and counts overflow instead).
            self._inbox_send.close()
            for receiver in self._receivers.values():
                receiver.send.close()

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

    def _start_keys(self, now: float) -> None:
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
            return
        self.session = SrtpSession(keys)
        scheduler = RtcpScheduler(
            self.cname,
            self._rng,
            receiver_ssrc=self._rng.getrandbits(32),
            video=self._video,
            minimum_interval=self._minimum_interval,
            reduced_size=self.reduced_size,
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
        self._twcc_epoch = now
        self._set_state("connected")

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
                    self._start_keys(now)
                if self.session is None:
                    self.counters.dropped_before_keys += len(item)
                    continue
                self._receive(item, now, delivered)
            elif type(item) is _Send:
                self._send(item, now, outgoing)
            elif type(item) is _Keyframe:
                outgoing.extend(self._keyframe_request(item.mid, now))
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
        twcc_id = self._extension_map.id_of(URI_TRANSPORT_CC) if twcc is not None else None
        arrival_us = int((now - self._twcc_epoch) * 1_000_000)
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
            stats = self.inbound.get(packet.ssrc)
            if stats is None:
                stats = self._new_inbound(packet.ssrc, mid)
            stats.on_packet(packet, now, len(plain))
            counters.packets_received += 1
            if twcc_id is not None:
                raw = packet.extensions.get(twcc_id)
                if raw is not None and len(raw) == 2:
                    assert twcc is not None
                    twcc.on_packet(decode_transport_cc_untrusted(raw), arrival_us, packet.ssrc)
            if mid not in self._receivers:
                counters.rtp_no_receiver += 1
                continue
            batch = delivered.get(mid)
            if batch is None:
                delivered[mid] = [packet]
            else:
                batch.append(packet)

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
                sender = self._senders.get(route.ssrc)
                if sender is None:
                    continue
                if route.report_block is not None:
                    sender.statistics.on_report_block(route.report_block, now)
                elif isinstance(packet, PictureLossIndication | FullIntraRequest):
                    counters.keyframe_requests_received += 1
                    sender.keyframe_requests += 1
                    if sender.on_keyframe_request is not None:
                        try:
                            sender.on_keyframe_request()
                        except Exception:
                            # The user's callback, not this task, is broken: as for event
                            # handlers, log it and let media go on.
                            logger.exception("on_keyframe_request of SSRC %d raised", sender.ssrc)
                elif isinstance(packet, GenericNack):
                    # Retransmissions (RTX, RFC 4588) are not used yet; counted.
                    counters.nacks_received += len(packet.lost_sequence_numbers())
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
        ext_map = self._extension_map
        section = self.demuxer.sections.get(sender.mid)
        mid_id = section.mid_extension_id if section is not None else None
        mid_value = encode_sdes_text(sender.mid) if mid_id is not None else b""
        allow_mixed = ext_map.allow_mixed
        stats = sender.statistics
        sent = 0
        for packet in item.packets:
            if mid_id is not None:
                packet.extensions[mid_id] = mid_value
            try:
                plain = packet.serialize(extmap_allow_mixed=allow_mixed)
                protected = session.protect_rtp(plain)
            except ValueError as exc:
                # Our caller's packet (too large, a field out of range): refused and counted,
                # logged once per sender; the transport and the other streams carry on.
                self.counters.send_refused += 1
                sender.packets_dropped += 1
                if not sender._warned:
                    sender._warned = True
                    logger.warning("RTP sender %d refused a packet: %s", sender.ssrc, exc)
                continue
            outgoing.append(protected)
            stats.on_packet_sent(packet, now, size=len(plain))
            sent += 1
        self.counters.packets_sent += sent

    def _keyframe_request(self, mid: str, now: float) -> list[bytes]:
        scheduler = self.scheduler
        if scheduler is None or self._state != "connected":
            return []
        sender_ssrc = next(iter(self._senders), scheduler.receiver_ssrc)
        plis = [
            PictureLossIndication(sender_ssrc, ssrc)
            for ssrc, m in self._inbound_mid.items()
            if m == mid and not self._is_repair(ssrc)
        ]
        self.counters.keyframe_requests_sent += len(plis)
        return self._protect_rtcp(scheduler.send_feedback(plis, now))

    def _next_deadline(self) -> float | None:
        """When the task must wake without input: the next RTCP report or TWCC feedback."""
        scheduler = self.scheduler
        if scheduler is None:
            return None
        deadline = scheduler.get_timer()
        twcc = self.twcc
        if twcc is not None and self._state == "connected":
            due = twcc.next_feedback_at
            if due is not None:
                at = self._twcc_epoch + due / 1_000_000
                deadline = at if deadline is None else min(deadline, at)
        return deadline

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
        twcc.sender_ssrc = next(iter(self._senders), scheduler.receiver_ssrc)
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
