"""Media through RTCPeerConnection against a real aiortc peer (a subprocess): aiortc sends its
generated audio (Opus) and video (VP8), our pc answers with recvonly transceivers, fires
``track`` and delivers the encoded frames; the frames decode with PyAV (the test's own)."""

from __future__ import annotations

from typing import Any

import av
import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import connect, open_trio_peer
from peers.aiortc_pc_harness import open_aiortc_peer

from trio_rtc.pc.media import RTCTrackEvent


@pytest.mark.interop
@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_aiortc_sends_media_to_our_pc(kind: str) -> None:
    with trio.fail_after(40):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=True) as ours,
            open_aiortc_peer(trickle=True) as theirs,
        ):
            tracks: list[RTCTrackEvent] = []
            states: list[str] = []
            pc.ontrack = tracks.append
            pc.onsignalingstatechange = lambda _e: states.append(pc.signalingState)
            await theirs.add_track(kind)
            await connect(theirs, ours, trickle=True)
            assert pc.connectionState == "connected"
            # One track event, after the signaling state reached stable (webrtc-pc §4.4.1.5).
            [event] = tracks
            assert event.track.kind == kind and event.receiver.track is event.track
            assert event.transceiver.receiver is event.receiver
            assert event.transceiver.currentDirection == "recvonly"
            assert [t.kind for t in pc.getTransceivers()] == [kind]
            [theirs_transceiver] = await theirs.transceivers()
            assert theirs_transceiver["currentDirection"] == "sendonly"
            frames: list[Any] = []
            async for frame in event.track.encoded_frames():
                frames.append(frame)
                if len(frames) == 25:
                    break
            codec = "opus" if kind == "audio" else "vp8"
            decoder = av.CodecContext.create(codec, "r")
            decoded = 0
            for frame in frames:
                for picture in decoder.decode(av.Packet(frame.data)):
                    decoded += 1
                    if kind == "video":
                        assert (picture.width, picture.height) == (640, 480)
            assert decoded >= 20
            stats = pc.ice_transport.stats if pc.ice_transport is not None else None
            assert stats is not None and stats.datagrams_dropped_rtp == 0
