"""Opus in RED (RFC 2198) from headless Chromium to trio_rtc.

Chromium offers its fake microphone with ``a=rtpmap:63 red/48000/2`` and ``a=fmtp:63
111/111`` after Opus; our answer puts RED first (``setCodecPreferences``), and libwebrtc sends
what the answer lists first: Opus frames in RED packets, each with a copy of the previous
frame. Our receiver unwraps them into Opus frames that decode to 20 ms each, in order.
"""

from __future__ import annotations

import itertools
from typing import Any

import av
import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import open_trio_peer
from peers.chromium import ChromiumBrowser, chromium_loopback
from test_pc_media_chromium import negotiate, receive_frames, section

from trio_rtc.media import RTCRtpSender, driver
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.rtp.red import RedDecoder, RedFrame

pytestmark = pytest.mark.interop

__all__ = ["chromium_loopback"]

TIMEOUT = 30
FRAMES = 100  # 2 s of 20 ms Opus frames


class CountingRedDecoder(RedDecoder):
    """A RedDecoder that counts the RED packets it was given (all instances together)."""

    packets = 0

    def receive(self, sequence_number: int, timestamp: int, payload: bytes) -> list[RedFrame]:
        CountingRedDecoder.packets += 1
        return super().receive(sequence_number, timestamp, payload)


async def test_chromium_sends_opus_in_red(
    chromium_loopback: ChromiumBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "RedDecoder", CountingRedDecoder)
    browser = chromium_loopback
    with trio.fail_after(TIMEOUT):
        async with browser.open_peer(page="media.html") as page:
            await page.request("get_user_media", constraints={"audio": True})
            await page.request("add_tracks")
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    tracks: list[RTCTrackEvent] = []
                    pc.ontrack = tracks.append

                    async def prefer_red() -> None:
                        capabilities = RTCRtpSender.getCapabilities("audio")
                        assert capabilities is not None
                        red, opus = (
                            next(c for c in capabilities.codecs if c.mimeType == mime)
                            for mime in ("audio/red", "audio/opus")
                        )
                        [transceiver] = pc.getTransceivers()
                        transceiver.setCodecPreferences([red, opus])

                    answer = await negotiate(page, ours, before_answer=prefer_red)
                    lines = section(answer["sdp"], "audio")
                    assert lines[0].split()[3:5] == ["63", "111"], lines[0]
                    assert "a=fmtp:63 111/111" in lines
                    [event] = tracks
                    frames = await receive_frames(event, FRAMES)
                    [receiver] = [t.receiver for t in pc.getTransceivers()]
                    unhandled = receiver.packets_unhandled
                    report: dict[str, Any] = await page.request("stats")
    assert CountingRedDecoder.packets >= FRAMES - 5, CountingRedDecoder.packets
    assert unhandled == 0
    # Every 20 ms frame, in order (the sequence numbers skip the padding Chromium sends on
    # the audio SSRC to probe bandwidth).
    steps = {(b.timestamp - a.timestamp) & 0xFFFF_FFFF for a, b in itertools.pairwise(frames)}
    assert steps == {960}, steps
    opus = av.CodecContext.create("opus", "r")
    samples = [s.samples for f in frames for s in opus.decode(av.Packet(f.data))]
    assert samples == [960] * len(frames)
    print(
        f"chromium sends RED: {CountingRedDecoder.packets} RED packets; "
        f"its outbound audio codec {report['outbound']['audio'].get('mimeType')}"
    )
