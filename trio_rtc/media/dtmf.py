"""RTCDTMFSender (webrtc-pc §7): DTMF tones as RFC 4733 telephone-event packets.

An audio :class:`~trio_rtc.media.RTCRtpSender` has one in ``sender.dtmf``. ``insertDTMF()``
fills the tone buffer; the sender's task (:func:`~trio_rtc.media.driver.run_sender`) runs the
spec's "Playout task" on trio's clock: it asks :meth:`RTCDTMFSender._poll` for the packets due
and waits no longer than :attr:`RTCDTMFSender._deadline`. The packets go out on the audio
stream's SSRC, sequence numbers and timeline, with the negotiated telephone-event payload type;
audio frames are not sent while a tone plays (as browsers do).

Packets of one tone (RFC 4733 §2.5): one every :data:`PACKET_INTERVAL` from the tone's start, all
with the RTP timestamp of its start, the marker on the first, the duration so far in RTP units of
the telephone-event clock, volume :data:`VOLUME`; then :data:`END_PACKETS` copies of the final
packet with the E bit. A tone longer than 0xFFFF units (1.36 s at 48 kHz) is sent in segments
(RFC 4733 §2.5.2.3): a packet with duration 0xFFFF closes one, the next starts at that timestamp
plus 0xFFFF, without the marker.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..events import Event, EventTarget, on_event
from ..exceptions import InvalidCharacterError, InvalidStateError
from ..jsep.codecs import NegotiatedCodec, NegotiatedMedia
from ..rtp.packet import RtpPacket

if TYPE_CHECKING:
    from .rtp_objects import RTCRtpSender

__all__ = [
    "END_PACKETS",
    "PACKET_INTERVAL",
    "PAUSE",
    "TONE_EVENTS",
    "VOLUME",
    "RTCDTMFSender",
    "RTCDTMFToneChangeEvent",
    "encode_event",
    "telephone_event_codec",
]

#: RFC 4733 §3.2 event codes of the DTMF characters.
TONE_EVENTS = {
    **{str(digit): digit for digit in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
#: Seconds of silence a ',' in the tone buffer stands for (webrtc-pc §7.2).
PAUSE = 2.0
#: Seconds between two packets of a tone: an audio packet's length, so a tone replaces frames.
PACKET_INTERVAL = 0.02
#: Copies of the final packet (E bit set), RFC 4733 §2.5.1.4: the end survives some loss.
END_PACKETS = 3
#: The power level of the tones, -dBm0 (RFC 4733 §2.3.4): 10, as browsers send.
VOLUME = 10
#: webrtc-pc §7.2: duration 40..6000 ms, interToneGap 30..6000 ms.
MIN_DURATION, MAX_DURATION = 40, 6000
MIN_GAP, MAX_GAP = 30, 6000
_MAX_UNITS = 0xFFFF


def encode_event(event: int, *, end: bool, duration: int, volume: int = VOLUME) -> bytes:
    """The 4-byte payload of RFC 4733 §2.3: event, E bit, R=0, volume, duration."""
    if not 0 <= event <= 255 or not 0 <= volume <= 63 or not 0 <= duration <= _MAX_UNITS:
        raise ValueError(f"no RFC 4733 payload for event={event} volume={volume} {duration=}")
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def telephone_event_codec(
    negotiated: NegotiatedMedia | None, clock_rate: int
) -> NegotiatedCodec | None:
    """The telephone-event payload type to send beside a codec at ``clock_rate``: the one with
    the same clock (the events share the audio stream's timeline), else the lowest clock rate,
    as Chromium picks; None when the section negotiated none."""
    if negotiated is None:
        return None
    events = [c for c in negotiated.codecs if c.name.lower() == "telephone-event"]
    same = next((c for c in events if c.clock_rate == clock_rate), None)
    return same or min(events, key=lambda c: c.clock_rate, default=None)


class RTCDTMFToneChangeEvent(Event):
    """The ``tonechange`` event (webrtc-pc §7.4): ``tone`` is the tone that starts playing,
    ``","`` for a pause, ``""`` once the tone buffer is done."""

    def __init__(
        self, type: str = "tonechange", eventInitDict: dict[str, str] | None = None
    ) -> None:
        super().__init__(type)
        self.tone = (eventInitDict or {}).get("tone", "")

    def __repr__(self) -> str:
        return f"<RTCDTMFToneChangeEvent {self.tone!r}>"


class _Tone:
    """The RTP event being sent: its packets' timestamp, the time it started and lasts."""

    __slots__ = (
        "clock_rate",
        "code",
        "duration",
        "first",
        "payload_type",
        "segment",
        "start",
        "ticks",
        "timestamp",
    )

    def __init__(
        self, code: int, start: float, duration: float, timestamp: int, codec: NegotiatedCodec
    ) -> None:
        self.code = code
        self.start = start
        self.duration = duration
        self.timestamp = timestamp
        self.clock_rate = codec.clock_rate
        self.payload_type = codec.payload_type
        self.first = True  # the marker goes on the event's first packet
        self.segment = 0  # units of the event before the current segment
        self.ticks = 0  # packet intervals sent

    @property
    def next_time(self) -> float:
        return min(self.start + (self.ticks + 1) * PACKET_INTERVAL, self.start + self.duration)


class RTCDTMFSender(EventTarget):
    """Sends DTMF on an audio sender's stream (webrtc-pc §7). Made by the RTCRtpSender."""

    ontonechange = on_event[RTCDTMFToneChangeEvent]("tonechange")

    def __init__(self, sender: RTCRtpSender) -> None:
        self._sender = sender
        self._tone_buffer = ""
        self._duration = 100
        self._gap = 70
        #: When the scheduled Playout task runs (-inf: as soon as the sending task looks);
        #: None when none is scheduled.
        self._playout_at: float | None = None
        self._tone: _Tone | None = None
        #: RTP packets of tones handed to the RTP task.
        self.packets_sent = 0

    def __repr__(self) -> str:
        return f"<RTCDTMFSender toneBuffer={self._tone_buffer!r}>"

    # --- W3C ----------------------------------------------------------------------------------

    @property
    def toneBuffer(self) -> str:
        """The tones not played yet (the one playing is not in it)."""
        return self._tone_buffer

    @property
    def canInsertDTMF(self) -> bool:
        """webrtc-pc §7.3 "determine if DTMF can be sent": the connection is connected (here:
        the sender's DTLS transport), the sender has a track, its transceiver sends
        (currentDirection sendrecv/sendonly), the first encoding is active, and telephone-event
        was negotiated in its section."""
        sender = self._sender
        transceiver = sender._transceiver
        if transceiver is None or transceiver.stopping or sender._stopping:
            return False
        if getattr(sender.transport, "state", None) != "connected":
            return False
        if sender.track is None:
            return False
        if transceiver.currentDirection not in ("sendrecv", "sendonly"):
            return False
        if not (sender._encodings and sender._encodings[0].active):
            return False
        negotiated = sender._negotiated
        return negotiated is not None and any(
            c.name.lower() == "telephone-event" for c in negotiated.codecs
        )

    def insertDTMF(self, tones: str, duration: int = 100, interToneGap: int = 70) -> None:
        """webrtc-pc §7.2: replace the tone buffer with ``tones`` (0-9, A-D, a-d, #, *, and ','
        for a 2 s pause) played ``duration`` ms each (40..6000) with ``interToneGap`` ms
        (30..6000) between them. InvalidStateError when the transceiver is stopped or does not
        send, or ``canInsertDTMF`` is false; InvalidCharacterError for another character."""
        if not isinstance(tones, str):
            raise TypeError(f"insertDTMF() takes a string of tones, not {tones!r}")
        for name, value in (("duration", duration), ("interToneGap", interToneGap)):
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise TypeError(f"insertDTMF(): {name} must be a number of ms, not {value!r}")
        transceiver = self._sender._transceiver
        if transceiver is None or transceiver.stopping or self._sender._stopping:
            raise InvalidStateError("insertDTMF(): the transceiver of this sender is stopped")
        if transceiver.currentDirection in ("recvonly", "inactive"):
            raise InvalidStateError(
                f"insertDTMF(): the transceiver does not send (currentDirection "
                f"{transceiver.currentDirection!r})"
            )
        if not self.canInsertDTMF:
            raise InvalidStateError(
                "insertDTMF(): DTMF cannot be sent now (canInsertDTMF is false: not connected, "
                "no track, not sending, inactive, or no telephone-event negotiated)"
            )
        normalized = "".join(c.upper() if c in "abcd" else c for c in tones)
        bad = sorted({c for c in normalized if c not in TONE_EVENTS and c != ","})
        if bad:
            raise InvalidCharacterError(
                f"insertDTMF(): {''.join(bad)!r} are not DTMF tones; expected 0-9, A-D, #, * or ','"
            )
        self._tone_buffer = normalized
        self._duration = int(min(max(duration, MIN_DURATION), MAX_DURATION))
        self._gap = int(min(max(interToneGap, MIN_GAP), MAX_GAP))
        if not normalized or self._playout_at is not None:
            return  # nothing to play, or the scheduled Playout task will read the new buffer
        self._playout_at = -math.inf  # "queue a task": the sending task runs it next
        self._sender._wakeup.wake()

    # --- for run_sender ---------------------------------------------------------------------

    @property
    def _deadline(self) -> float:
        """When the sending task must call :meth:`_poll` next (inf: only after a change)."""
        deadline = self._playout_at if self._playout_at is not None else math.inf
        if self._tone is not None:
            deadline = min(deadline, self._tone.next_time)
        return deadline

    @property
    def _playing(self) -> bool:
        """A tone is on the stream: audio frames are not sent meanwhile."""
        return self._tone is not None

    def _poll(
        self,
        now: float,
        ssrc: int,
        sequence: int,
        position: Callable[[float], int],
        clock_rate: int,
    ) -> list[RtpPacket]:
        """The packets due at ``now`` (numbered from ``sequence``), after running the Playout
        task if it is due. ``position(now)`` is the audio stream's RTP timestamp then (where a
        tone starting now begins); ``clock_rate`` the audio codec's."""
        packets: list[RtpPacket] = []
        tone = self._tone
        if tone is not None and now >= tone.next_time:
            packets.extend(self._tone_packets(tone, now))
        playout_at = self._playout_at
        if playout_at is not None and now >= playout_at:
            self._playout(now, position, clock_rate)
        for index, packet in enumerate(packets):
            packet.ssrc = ssrc
            packet.sequence_number = (sequence + index) & 0xFFFF
        self.packets_sent += len(packets)
        return packets

    def _playout(self, now: float, position: Callable[[float], int], clock_rate: int) -> None:
        """webrtc-pc §7.2 the Playout task."""
        self._playout_at = None
        sender = self._sender
        transceiver = sender._transceiver
        if transceiver is None or transceiver.stopping or sender._stopping:
            return
        if transceiver.currentDirection in ("recvonly", "inactive"):
            return
        if not self._tone_buffer:
            self._fire("")
            return
        tone, self._tone_buffer = self._tone_buffer[0], self._tone_buffer[1:]
        if tone == ",":
            self._playout_at = now + PAUSE
        else:
            duration = self._duration / 1000
            codec = telephone_event_codec(sender._negotiated, clock_rate)
            if codec is not None and self._tone is None:
                self._tone = _Tone(TONE_EVENTS[tone], now, duration, position(now), codec)
            self._playout_at = now + duration + self._gap / 1000
        self._fire(tone)

    def _tone_packets(self, tone: _Tone, now: float) -> list[RtpPacket]:
        total = round(tone.duration * tone.clock_rate)
        ended = now >= tone.start + tone.duration
        if ended:
            units = total
        else:
            # On the packet grid (never backwards, never the same tick twice).
            tone.ticks = max(tone.ticks + 1, int((now - tone.start) / PACKET_INTERVAL + 1e-9))
            units = min(round(tone.ticks * PACKET_INTERVAL * tone.clock_rate), total)
        packets: list[RtpPacket] = []
        while units - tone.segment > _MAX_UNITS:
            # RFC 4733 §2.5.2.3: close this segment at the largest duration, start the next.
            packets.append(self._packet(tone, _MAX_UNITS, end=False))
            tone.segment += _MAX_UNITS
            tone.timestamp = (tone.timestamp + _MAX_UNITS) & 0xFFFF_FFFF
        if ended:
            for _ in range(END_PACKETS):
                packets.append(self._packet(tone, units - tone.segment, end=True))
            self._tone = None
        else:
            packets.append(self._packet(tone, units - tone.segment, end=False))
        return packets

    def _packet(self, tone: _Tone, duration: int, *, end: bool) -> RtpPacket:
        marker, tone.first = tone.first, False
        return RtpPacket(
            payload_type=tone.payload_type,
            sequence_number=0,  # numbered by _poll
            timestamp=tone.timestamp,
            ssrc=0,
            payload=encode_event(tone.code, end=end, duration=duration),
            marker=marker,
        )

    def _fire(self, tone: str) -> None:
        rtp = self._sender._rtp_transport
        if rtp is not None and self._handler_queue is None:
            self._handler_queue = rtp._handler_queue  # async handlers run in the pc's queue
        self.dispatchEvent(RTCDTMFToneChangeEvent("tonechange", {"tone": tone}))
