"""RTCDTMFSender (webrtc-pc §7) and its RFC 4733 packets.

The timing tests run ``run_sender`` under trio's MockClock against an RtpTransport whose task
is not running: what the sender hands it stays in its inbox, where the test reads it. The last
test sends tones between two RTCPeerConnections over UDP on 127.0.0.1 next to Opus audio.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing
from pc_helpers import connect, pc_pair
from test_pc_media import opus_frames

from trio_rtc.exceptions import DOMException, InvalidCharacterError, InvalidStateError
from trio_rtc.jsep.codecs import NegotiatedCodec, NegotiatedMedia
from trio_rtc.media import MediaStreamTrack, OutgoingFrame, RTCRtpTransceiver, run_sender
from trio_rtc.media.dtmf import (
    END_PACKETS,
    RTCDTMFSender,
    RTCDTMFToneChangeEvent,
    encode_event,
    telephone_event_codec,
)
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.rtp.driver import RtpTransport
from trio_rtc.rtp.packet import RtpPacket

OPUS = NegotiatedCodec(111, "opus", 48000, 2)
PCMU = NegotiatedCodec(0, "PCMU", 8000, 1)
TE48 = NegotiatedCodec(126, "telephone-event", 48000, 1, {"0-15": ""})
TE8 = NegotiatedCodec(110, "telephone-event", 8000, 1, {"0-15": ""})
AUDIO = NegotiatedMedia("audio", codecs=(OPUS, TE48, TE8))
SSRC = 0x1234


class _Dtls:
    """The sender's transport as canInsertDTMF reads it (webrtc-pc §7.3: connected)."""

    state = "connected"


def negotiated_transceiver(
    negotiated: NegotiatedMedia = AUDIO, current_direction: str = "sendrecv"
) -> RTCRtpTransceiver:
    """An audio transceiver as a pc leaves it once an answer is applied."""
    transceiver = RTCRtpTransceiver(MediaStreamTrack("audio", "microphone"))
    transceiver.set_mid("0")
    transceiver.set_current_direction(current_direction)
    transceiver.sender.set_transport(_Dtls())
    transceiver.sender.set_negotiated(negotiated)
    return transceiver


def dtmf_of(transceiver: RTCRtpTransceiver) -> RTCDTMFSender:
    dtmf = transceiver.sender.dtmf
    assert isinstance(dtmf, RTCDTMFSender)
    return dtmf


async def start_sender(
    nursery: trio.Nursery, transceiver: RTCRtpTransceiver, negotiated: NegotiatedMedia = AUDIO
) -> RtpTransport:
    rtp = RtpTransport(None, None)  # not run: the packets wait in its inbox
    await nursery.start(run_sender, transceiver.sender, rtp, "0", SSRC, negotiated)
    return rtp


def sent(rtp: RtpTransport) -> list[RtpPacket]:
    packets: list[RtpPacket] = []
    while True:
        try:
            item: Any = rtp._inbox.receive_nowait()
        except trio.WouldBlock:
            return packets
        packets.extend(item.packets)


def record_tones(dtmf: RTCDTMFSender) -> list[tuple[float, str]]:
    start = trio.current_time()
    events: list[tuple[float, str]] = []

    def on_tone(event: RTCDTMFToneChangeEvent) -> None:
        events.append((round(trio.current_time() - start, 6), event.tone))

    dtmf.ontonechange = on_tone
    return events


# --- RFC 4733 ----------------------------------------------------------------------------------


def test_event_payload_bytes() -> None:
    # '#' is event 11; E bit and volume 10 share the second byte; duration 800 = 100 ms at 8 kHz.
    assert encode_event(11, end=True, duration=800) == bytes([11, 0x80 | 10, 0x03, 0x20])
    assert encode_event(1, end=False, duration=960) == bytes([1, 10, 0x03, 0xC0])
    with pytest.raises(ValueError):
        encode_event(1, end=False, duration=0x10000)


def test_telephone_event_clock_follows_the_audio_codec() -> None:
    assert telephone_event_codec(AUDIO, 48000) == TE48
    assert telephone_event_codec(AUDIO, 8000) == TE8
    # No telephone-event at the codec's rate: the lowest rate, as Chromium picks.
    assert telephone_event_codec(NegotiatedMedia("audio", codecs=(PCMU, TE48)), 8000) == TE48
    assert telephone_event_codec(NegotiatedMedia("audio", codecs=(OPUS,)), 48000) is None
    assert telephone_event_codec(None, 48000) is None


async def test_packets_of_one_tone(autojump_clock: trio.testing.MockClock) -> None:
    transceiver = negotiated_transceiver()
    dtmf = dtmf_of(transceiver)
    async with trio.open_nursery() as nursery:
        rtp = await start_sender(nursery, transceiver)
        dtmf.insertDTMF("1")
        await trio.sleep(1)
        transceiver.stop()
    packets = sent(rtp)
    # 100 ms at 48 kHz: an update every 20 ms, then the final duration three times with E.
    durations = [960, 1920, 2880, 3840]
    expected = [encode_event(1, end=False, duration=d) for d in durations]
    expected += [encode_event(1, end=True, duration=4800)] * END_PACKETS
    assert [p.payload for p in packets] == expected
    assert [p.marker for p in packets] == [True] + [False] * (len(expected) - 1)
    assert {p.payload_type for p in packets} == {TE48.payload_type}
    assert {p.ssrc for p in packets} == {SSRC}
    assert len({p.timestamp for p in packets}) == 1
    first = packets[0].sequence_number
    assert [p.sequence_number for p in packets] == [
        (first + i) & 0xFFFF for i in range(len(packets))
    ]
    assert dtmf.packets_sent == len(packets)


async def test_the_telephone_event_clock_is_the_negotiated_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    negotiated = NegotiatedMedia("audio", codecs=(PCMU, TE48, TE8))
    transceiver = negotiated_transceiver(negotiated)
    async with trio.open_nursery() as nursery:
        rtp = await start_sender(nursery, transceiver, negotiated)
        dtmf_of(transceiver).insertDTMF("#", duration=50)
        await trio.sleep(1)
        transceiver.stop()
    packets = sent(rtp)
    assert {p.payload_type for p in packets} == {TE8.payload_type}
    # 50 ms at 8 kHz: 160, 320, then 400 with E.
    assert [p.payload for p in packets] == [
        encode_event(11, end=False, duration=160),
        encode_event(11, end=False, duration=320),
        *[encode_event(11, end=True, duration=400)] * END_PACKETS,
    ]


async def test_a_long_tone_is_sent_in_segments(autojump_clock: trio.testing.MockClock) -> None:
    transceiver = negotiated_transceiver()
    async with trio.open_nursery() as nursery:
        rtp = await start_sender(nursery, transceiver)
        dtmf_of(transceiver).insertDTMF("5", duration=6000)  # 288000 units at 48 kHz
        await trio.sleep(7)
        transceiver.stop()
    packets = sent(rtp)
    durations = [int.from_bytes(p.payload[2:], "big") for p in packets]
    assert max(durations) == 0xFFFF
    stamps = sorted({p.timestamp for p in packets})
    assert len(stamps) == 288000 // 0xFFFF + 1
    assert all((b - a) & 0xFFFF_FFFF == 0xFFFF for a, b in itertools.pairwise(stamps))
    assert sum(p.marker for p in packets) == 1 and packets[0].marker
    # The end packets carry what is left after the full segments.
    assert durations[-END_PACKETS:] == [288000 - 4 * 0xFFFF] * END_PACKETS
    assert all(p.payload[1] & 0x80 for p in packets[-END_PACKETS:])
    assert not any(p.payload[1] & 0x80 for p in packets[:-END_PACKETS])


# --- the tone buffer and tonechange timing ------------------------------------------------------


async def test_tonechange_timing_and_tone_buffer(autojump_clock: trio.testing.MockClock) -> None:
    transceiver = negotiated_transceiver()
    dtmf = dtmf_of(transceiver)
    async with trio.open_nursery() as nursery:
        await start_sender(nursery, transceiver)
        events = record_tones(dtmf)
        dtmf.insertDTMF("1,2", duration=100, interToneGap=70)
        assert dtmf.toneBuffer == "1,2"  # the Playout task is queued, not run yet
        await trio.testing.wait_all_tasks_blocked()
        assert events == [(0.0, "1")]
        assert dtmf.toneBuffer == ",2"
        await trio.sleep(10)
        transceiver.stop()
    # A tone lasts duration + interToneGap before the next; ',' is a 2 s pause; "" at the end.
    assert events == [(0.0, "1"), (0.17, ","), (2.17, "2"), (2.34, "")]
    assert dtmf.toneBuffer == ""


async def test_durations_are_clamped(autojump_clock: trio.testing.MockClock) -> None:
    transceiver = negotiated_transceiver()
    dtmf = dtmf_of(transceiver)
    async with trio.open_nursery() as nursery:
        rtp = await start_sender(nursery, transceiver)
        events = record_tones(dtmf)
        dtmf.insertDTMF("12", duration=1, interToneGap=0)  # 40 ms and 30 ms
        await trio.sleep(1)
        assert events == [(0.0, "1"), (0.07, "2"), (0.14, "")]
        events.clear()
        assert {int.from_bytes(p.payload[2:], "big") for p in sent(rtp)} == {960, 1920}
        dtmf.insertDTMF("3", duration=60_000, interToneGap=60_000)  # 6 s and 6 s
        await trio.sleep(20)
        transceiver.stop()
    assert [tone for _, tone in events] == ["3", ""]
    assert events[1][0] - events[0][0] == pytest.approx(12.0)


async def test_insert_replaces_the_buffer(autojump_clock: trio.testing.MockClock) -> None:
    transceiver = negotiated_transceiver()
    dtmf = dtmf_of(transceiver)
    async with trio.open_nursery() as nursery:
        await start_sender(nursery, transceiver)
        events = record_tones(dtmf)
        dtmf.insertDTMF("123")
        await trio.sleep(0.05)  # "1" plays
        dtmf.insertDTMF("a9")  # replaces "23", normalized; the scheduled task plays it
        assert dtmf.toneBuffer == "A9"
        await trio.sleep(1)
        assert [tone for _, tone in events] == ["1", "A", "9", ""]
        assert [t for t, _ in events] == pytest.approx([0.0, 0.17, 0.34, 0.51])
        events.clear()
        dtmf.insertDTMF("")  # nothing scheduled, nothing to play: no event
        dtmf.insertDTMF("45")
        await trio.sleep(0.05)
        dtmf.insertDTMF("")  # cancels what follows the playing tone
        await trio.sleep(1)
        transceiver.stop()
    assert [tone for _, tone in events] == ["4", ""]


async def test_audio_is_not_sent_while_a_tone_plays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transceiver = negotiated_transceiver()
    track = transceiver.sender.track
    assert track is not None and track.source is not None
    async with trio.open_nursery() as nursery:
        rtp = await start_sender(nursery, transceiver)
        for index in range(40):  # 800 ms of 20 ms frames; a tone from 200 ms to 300 ms
            if index == 10:
                dtmf_of(transceiver).insertDTMF("7")
            await track.source.send(OutgoingFrame(b"\xfc" + bytes(40), duration=0.02))
            await trio.sleep(0.02)
        transceiver.stop()
    packets = sent(rtp)
    kinds = ["tone" if p.payload_type == TE48.payload_type else "audio" for p in packets]
    first, last = kinds.index("tone"), len(kinds) - kinds[::-1].index("tone")
    assert set(kinds[first:last]) == {"tone"}  # no audio between a tone's packets
    assert kinds.count("audio") >= 30
    assert 3 <= transceiver.sender.frames_dropped <= 6
    # One stream: sequence numbers run on through the tone.
    numbers = [p.sequence_number for p in packets]
    assert numbers == [(numbers[0] + i) & 0xFFFF for i in range(len(numbers))]
    # The tone starts where the audio stood; the audio after it resumes later on the timeline.
    tone_stamp = packets[first].timestamp
    assert packets[first - 1].timestamp < tone_stamp < packets[last].timestamp
    assert packets[last].marker  # a new talkspurt


# --- the spec's error rules -----------------------------------------------------------------------


def test_only_audio_senders_have_one() -> None:
    assert RTCRtpTransceiver("video").sender.dtmf is None
    assert isinstance(RTCRtpTransceiver("audio").sender.dtmf, RTCDTMFSender)
    assert dtmf_of(negotiated_transceiver()).canInsertDTMF


@pytest.mark.parametrize(
    "change",
    ["not negotiated", "recvonly", "inactive", "no track", "inactive encoding", "no te", "stopped"],
)
async def test_insert_raises_invalid_state_when_it_cannot_send(change: str) -> None:
    transceiver = negotiated_transceiver()
    sender = transceiver.sender
    if change == "not negotiated":
        transceiver = RTCRtpTransceiver(MediaStreamTrack("audio", "microphone"))
    elif change in ("recvonly", "inactive"):
        transceiver.set_current_direction(change)
    elif change == "no track":
        await sender.replaceTrack(None)
    elif change == "inactive encoding":
        parameters = sender.getParameters()
        parameters.encodings[0].active = False
        await sender.setParameters(parameters)
    elif change == "no te":
        sender.set_negotiated(NegotiatedMedia("audio", codecs=(OPUS,)))
    else:
        transceiver.stop()
    dtmf = dtmf_of(transceiver)
    assert not dtmf.canInsertDTMF
    with pytest.raises(InvalidStateError):
        dtmf.insertDTMF("1")
    assert dtmf.toneBuffer == ""


def test_disconnected_transport_cannot_insert() -> None:
    transceiver = negotiated_transceiver()
    transceiver.sender.set_transport(None)
    assert not dtmf_of(transceiver).canInsertDTMF


@pytest.mark.parametrize("tones", ["1e", "12 3", "+", "٣", "1;"])
async def test_invalid_characters(tones: str) -> None:
    dtmf = dtmf_of(negotiated_transceiver())
    with pytest.raises(InvalidCharacterError) as caught:
        dtmf.insertDTMF(tones)
    assert caught.value.name == "InvalidCharacterError"
    assert isinstance(caught.value, DOMException)
    assert dtmf.toneBuffer == ""


async def test_valid_characters_are_normalized() -> None:
    dtmf = dtmf_of(negotiated_transceiver())
    dtmf.insertDTMF("0123456789abcdABCD#*,")
    assert dtmf.toneBuffer == "0123456789ABCDABCD#*,"
    with pytest.raises(TypeError):
        dtmf.insertDTMF(1234)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        dtmf.insertDTMF("1", duration="100")  # type: ignore[arg-type]


async def test_stop_aborts_the_playout(autojump_clock: trio.testing.MockClock) -> None:
    transceiver = negotiated_transceiver()
    dtmf = dtmf_of(transceiver)
    async with trio.open_nursery() as nursery:
        await start_sender(nursery, transceiver)
        events = record_tones(dtmf)
        dtmf.insertDTMF("12")
        await trio.sleep(0.05)
        transceiver.stop()  # the sending task returns; the next Playout task never runs
        await trio.sleep(1)
    assert [tone for _, tone in events] == ["1"]


# --- between two peer connections -----------------------------------------------------------------


async def test_tones_reach_the_other_peer_between_opus_frames() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        tracks: list[RTCTrackEvent] = []
        b.ontrack = tracks.append
        audio = MediaStreamTrack("audio", "microphone")
        sender = a.addTrack(audio)
        dtmf = sender.dtmf
        assert dtmf is not None
        assert [dtmf.canInsertDTMF] == [False]  # not negotiated yet
        with trio.fail_after(30):
            await connect(a, b, nursery)
            assert dtmf.canInsertDTMF
            [event] = tracks
            receiver = event.receiver
            tones: list[str] = []
            done = trio.Event()

            def on_tone(e: RTCDTMFToneChangeEvent) -> None:
                tones.append(e.tone)
                if e.tone == "":
                    done.set()

            dtmf.addEventListener("tonechange", on_tone)
            frames = list(opus_frames(60))
            assert audio.source is not None
            got = 0

            async def receive() -> None:
                nonlocal got
                async for _ in event.track.encoded_frames():
                    got += 1

            nursery.start_soon(receive)
            for index, data in enumerate(frames):
                if index == 10:
                    dtmf.insertDTMF("1#")
                await audio.source.send(OutgoingFrame(data, duration=0.02))
                await trio.sleep(0.02)
            await done.wait()
            assert tones == ["1", "#", ""]
            # Two 100 ms tones at 48 kHz: 4 updates and 3 end packets each. The receiver has
            # no depacketizer for telephone-event: it counts them as unhandled.
            assert dtmf.packets_sent == 14
            for _ in range(500):  # the last end packets are on their way
                if receiver.packets_unhandled >= dtmf.packets_sent:
                    break
                await trio.sleep(0.01)
            assert receiver.packets_unhandled == 14
            rtp = b._media.rtp
            assert rtp is not None
            inbound = [s for s in rtp.stats()["inbound"].values() if s["mid"] == receiver._mid]
            # One SSRC carries both, audio and tones.
            [stream] = inbound
            assert stream["packets_received"] > got
            assert got >= 40  # the audio went on around the tones
        nursery.cancel_scope.cancel()
