"""DTMF over a lossy path: RFC 4733 tones survive 20 % packet loss.

Two RTCPeerConnections on 127.0.0.1 whose every datagram crosses a :class:`UdpRelay`: the
offerer knows the answerer only by the relay's address, the answerer learns the offerer's (the
relay's outward socket) from its checks. Once connected, the relay drops 20 % of the datagrams
each way and the offerer sends a string of tones.

The receiving side has no DTMF API (``RTCRtpReceiver`` counts telephone-event packets as
unhandled), so the test reads the packets the answerer's RTP task delivers for the audio section
and decodes them as an RFC 4733 receiver would: an event is known from any of its packets (they
all carry its code and its start timestamp, §2.5.1), its final duration from any of the three
end packets (§2.5.1.4). A 100 ms tone is seven packets (four updates, three ends), so the test
does not depend on which packets the seeded relay drops: every tone is decoded unless all seven
of one are lost (0.2**7 ≈ 1e-5 per tone), and the end of a tone is lost only with all three
copies (0.2**3 per tone), which the test allows for a few tones.
"""

from __future__ import annotations

import struct

import trio
from pc_helpers import pc_pair
from relay_helpers import connected_through_relay

from trio_rtc.media import MediaStreamTrack
from trio_rtc.media.dtmf import END_PACKETS, TONE_EVENTS, RTCDTMFToneChangeEvent
from trio_rtc.rtp.packet import RtpPacket
from trio_rtc.testing import LinkConditions

TONES = "1234567890*#ABCD"
CLOCK_RATE = 48000
TONE_UNITS = CLOCK_RATE // 10  # 100 ms


def decode_events(packets: list[RtpPacket]) -> list[tuple[int, int, int | None]]:
    """RFC 4733 events in timestamp order: (event code, timestamp, final duration or None when
    no end packet arrived)."""
    events: dict[int, tuple[int, int | None]] = {}
    for packet in packets:
        code, flags, duration = struct.unpack("!BBH", packet.payload[:4])
        known, final = events.get(packet.timestamp, (code, None))
        assert known == code, "two events with one timestamp"
        if flags & 0x80:
            assert final in (None, duration), "end packets of one event disagree"
            final = duration
        events[packet.timestamp] = (code, final)
    return [(code, ts, final) for ts, (code, final) in sorted(events.items())]


async def test_every_tone_survives_twenty_percent_loss() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        audio = MediaStreamTrack("audio", "microphone")
        sender = a.addTrack(audio)
        dtmf = sender.dtmf
        assert dtmf is not None
        with trio.fail_after(30):
            async with connected_through_relay(a, b, seed=4733) as relay:
                assert dtmf.canInsertDTMF

                negotiated = sender._negotiated
                assert negotiated is not None
                [event_type] = [
                    c.payload_type
                    for c in negotiated.codecs
                    if c.name.lower() == "telephone-event" and c.clock_rate == CLOCK_RATE
                ]
                rtp = b._media.rtp
                assert rtp is not None
                received: list[RtpPacket] = []
                deliver = rtp._deliver

                def tap(mid: str, packets: list[RtpPacket]) -> None:
                    received.extend(p for p in packets if p.payload_type == event_type)
                    deliver(mid, packets)

                rtp._deliver = tap  # type: ignore[method-assign]

                relay.set_conditions(LinkConditions(loss=0.2))
                done = trio.Event()

                def on_tone(event: RTCDTMFToneChangeEvent) -> None:
                    if event.tone == "":
                        done.set()

                dtmf.addEventListener("tonechange", on_tone)
                dtmf.insertDTMF(TONES, duration=100, interToneGap=70)
                await done.wait()
                await trio.sleep(0.3)  # the last end packets are on their way

                # Every tone was sent as four updates and END_PACKETS end packets.
                assert dtmf.packets_sent == len(TONES) * (4 + END_PACKETS)
                lost = relay.forward_stats.dropped_loss
                assert lost > 0
                assert len(received) < dtmf.packets_sent  # the loss hit the tones too

                events = decode_events(received)
                assert [code for code, _, _ in events] == [TONE_EVENTS[t] for t in TONES]
                finals = [final for _, _, final in events]
                assert set(finals) <= {TONE_UNITS, None}
                assert finals.count(None) <= 2, f"{finals.count(None)} tones lost every end packet"
        nursery.cancel_scope.cancel()
