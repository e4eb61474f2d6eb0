"""Audio and video m-sections on the peer connection: a remote offer's audio/video sections are
answered ``a=recvonly`` (a transceiver the offer created, webrtc-pc §4.4.1.5) in the BUNDLE group,
and the bundled transport (ICE + DTLS) comes up from whichever section is first, also without a
data section.

Against aiortc (an audio-only offer, in a subprocess) and between two trio_rtc peer connections
(one of them hand-fed a media-only remote offer)."""

from __future__ import annotations

import pathlib

import pytest
import trio
from pc_helpers import make_pc, trickle
from pc_interop_helpers import connect, open_trio_peer
from peers.aiortc_pc_harness import open_aiortc_peer

from trio_rtc import RTCPeerConnection
from trio_rtc.pc.events import RTCPeerConnectionIceEvent
from trio_rtc.sdp import Direction, parse_sdp_untrusted

SAMPLES = pathlib.Path(__file__).parent / "sdp_samples"


@pytest.mark.interop
@pytest.mark.parametrize("trickled", [True, False], ids=["trickle", "complete"])
async def test_aiortc_audio_only_offer_connects(trickled: bool) -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=trickled) as ours,
            open_aiortc_peer(trickle=trickled) as theirs,
        ):
            candidates: list[RTCPeerConnectionIceEvent] = []
            pc.addEventListener("icecandidate", candidates.append)
            await theirs.add_transceiver("audio", "sendrecv")
            await connect(theirs, ours, trickle=trickled)
            assert pc.connectionState == "connected"
            assert pc.dtls_transport is not None and pc.sctp is None
            local = pc.localDescription
            assert local is not None
            answer = parse_sdp_untrusted(local.sdp)
            [audio] = answer.media
            assert (audio.kind, audio.port, audio.direction) == ("audio", 9, Direction.RECVONLY)
            assert [g.mids for g in answer.bundle_groups()] == [(audio.mid,)]
            assert audio.candidates  # localDescription lists the transport's candidates
            # Trickled candidates name the BUNDLE tag, the audio section.
            sent = [e.candidate for e in candidates if e.candidate is not None]
            assert sent and all(c.sdpMid == audio.mid and c.sdpMLineIndex == 0 for c in sent)
            [transceiver] = await theirs.transceivers()
            assert transceiver["mid"] == audio.mid
            assert transceiver["currentDirection"] == "sendonly"  # aiortc's view of recvonly
            await theirs.wait_state("connected")


def _media_only_offer(offerer: RTCPeerConnection, text: str) -> str:
    """A Chromium-shaped audio+video offer carrying ``offerer``'s own transport: its ICE
    credentials, candidates and certificate fingerprint."""
    local = offerer.localDescription
    assert local is not None
    ours = parse_sdp_untrusted(local.sdp).media[0]
    sample = parse_sdp_untrusted(text)
    for media in sample.media:
        media.ice_ufrag, media.ice_pwd = ours.ice_ufrag, ours.ice_pwd
        media.fingerprints = list(ours.fingerprints)
        media.candidates = list(ours.candidates)
        media.end_of_candidates = ours.end_of_candidates
    return sample.serialize()


async def test_trio_answers_a_media_only_offer_and_connects() -> None:
    """``a`` makes a real (data) offer for its transport; ``b`` is fed a media-only offer with
    that transport instead, answers it, and the answer is handed back to ``a`` as if it answered
    the data offer — the transport is the same, so both connect over DTLS, without SCTP."""
    text = (SAMPLES / "chromium_offer_audio_video.sdp").read_text()
    with trio.fail_after(20):
        async with (
            trio.open_nursery() as nursery,
            make_pc(0) as a,
            make_pc(1) as b,
        ):
            a.createDataChannel("x")
            await a.setLocalDescription()
            await a.wait_gathering_complete()
            trickle(b, a, nursery)
            await b.setRemoteDescription({"type": "offer", "sdp": _media_only_offer(a, text)})
            await b.setLocalDescription()
            answer = b.localDescription
            assert answer is not None
            parsed = parse_sdp_untrusted(answer.sdp)
            assert [(m.kind, m.port, m.direction) for m in parsed.media] == [
                ("audio", 9, Direction.RECVONLY),
                ("video", 9, Direction.RECVONLY),
            ]
            assert [g.mids for g in parsed.bundle_groups()] == [("0", "1")]
            # a's own offer had one data section, mid "0": rewrite b's answer into that shape
            # (same transport attributes), as the peer that made the media offer would see it.
            audio = parsed.media[0]
            data_answer = (
                "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
                f"a=ice-ufrag:{audio.ice_ufrag}\r\na=ice-pwd:{audio.ice_pwd}\r\n"
                + "".join(f"a=fingerprint:{f.algorithm} {f.value}\r\n" for f in audio.fingerprints)
                + f"a=setup:{audio.setup.value if audio.setup else 'active'}\r\n"
                "a=mid:0\r\na=sctp-port:5000\r\n"
            )
            await a.setRemoteDescription({"type": "answer", "sdp": data_answer})
            await b.wait_connection_state("connected")
            await a.wait_connection_state("connected")
            assert b.dtls_transport is not None and b.sctp is None
            nursery.cancel_scope.cancel()
