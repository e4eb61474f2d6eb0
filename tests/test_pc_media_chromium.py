"""Media between trio_rtc's RTCPeerConnection and headless Chromium (issue 11).

Chromium's fake camera (a 640x480 test pattern, ``--use-fake-device-for-media-stream``) and
microphone (a beep) reach our pc, with Chromium offering and with us offering; the VP8 (and
H.264) and Opus frames decode with PyAV. The other way, VP8 and Opus encoded here by PyAV play
in the page's <video> and <audio> elements, which the page's getStats() confirms. The page is
``peers/web/media.html`` (``peer.js`` plus the media commands of ``media.js``); the browser is
the session's ``chromium_loopback`` (its flags include the fake devices).
"""

from __future__ import annotations

import fractions
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import av
import av.video.frame
import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import InteropPeer, open_trio_peer
from peers.chromium import BrowserPeer, ChromiumBrowser, chromium_loopback

from trio_rtc import RTCPeerConnection
from trio_rtc.media import MediaStream, MediaStreamTrack, OutgoingFrame
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.rtp.codecs import EncodedFrame

pytestmark = pytest.mark.interop

# The session fixture lives in peers/chromium.py; naming it here registers it for this module.
__all__ = ["chromium_loopback"]

CAMERA = {"video": {"width": 640, "height": 480}, "audio": True}
CODECS = {
    "vp8": {"mimeType": "video/VP8"},
    # Constrained Baseline, the profile every H.264 WebRTC stack has.
    "h264": {"mimeType": "video/H264", "fmtp": ["profile-level-id=42e01f", "packetization-mode=1"]},
}
VIDEO_FRAMES = 100
AUDIO_FRAMES = 50  # 1 s of 20 ms Opus frames
# What we send: PyAV's libvpx at 320x240, 30 fps, and 20 ms Opus frames, paced in real time.
SEND_WIDTH, SEND_HEIGHT, SEND_FPS, SEND_FRAMES = 320, 240, 30, 150
TIMEOUT = 30


# -- signalling --------------------------------------------------------------------------------


async def _relay(source: InteropPeer, sink: InteropPeer) -> None:
    async for candidate in source.candidates():
        await sink.add_candidate(candidate)


async def negotiate(
    offerer: InteropPeer,
    answerer: InteropPeer,
    *,
    before_answer: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, str]:
    """Offer/answer with trickled candidates until both are connected (as
    ``pc_interop_helpers.connect``), running ``before_answer`` between the answerer's
    setRemoteDescription and createAnswer (where an answerer adds its tracks); the answer."""
    offer = await offerer.create_offer()
    await answerer.set_remote(offer)
    if before_answer is not None:
        await before_answer()
    answer = await answerer.create_answer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_relay, offerer, answerer)
        await offerer.set_remote(answer)
        nursery.start_soon(_relay, answerer, offerer)
        await offerer.wait_state("connected")
        await answerer.wait_state("connected")
    return answer


def section(sdp: str, kind: str) -> list[str]:
    """The lines of the ``m=kind`` section of ``sdp``."""
    lines: list[str] = []
    inside = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            inside = line.startswith(f"m={kind} ")
        if inside:
            lines.append(line)
    return lines


def first_codec(sdp: str, kind: str) -> str:
    """The encoding name of the first payload type of the ``m=kind`` section."""
    lines = section(sdp, kind)
    payload_type = lines[0].split()[3]
    [rtpmap] = [line for line in lines if line.startswith(f"a=rtpmap:{payload_type} ")]
    return rtpmap.split()[1].split("/")[0]


# -- receiving from Chromium -------------------------------------------------------------------


async def start_camera(page: BrowserPeer, codec: str) -> None:
    """getUserMedia (fake camera and microphone), addTrack both, prefer ``codec`` for video."""
    tracks = await page.request("get_user_media", constraints=CAMERA)
    settings = {t["kind"]: t["settings"] for t in tracks}
    assert (settings["video"]["width"], settings["video"]["height"]) == (640, 480), settings
    await page.request("add_tracks", codecs={"video": CODECS[codec]})
    # Chromium may scale the camera down while its bandwidth estimate is low; keep 640x480.
    await page.request(
        "set_degradation_preference", trackKind="video", preference="maintain-resolution"
    )


async def receive_frames(event: RTCTrackEvent, count: int) -> list[EncodedFrame]:
    frames: list[EncodedFrame] = []
    async for frame in event.track.encoded_frames():
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


async def receive_camera(tracks: list[RTCTrackEvent]) -> dict[str, list[EncodedFrame]]:
    """VIDEO_FRAMES video and AUDIO_FRAMES audio frames, both read at once."""
    assert sorted(e.track.kind for e in tracks) == ["audio", "video"]
    by_kind = {e.track.kind: e for e in tracks}
    got: dict[str, list[EncodedFrame]] = {}

    async def receive(kind: str, count: int) -> None:
        got[kind] = await receive_frames(by_kind[kind], count)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive, "video", VIDEO_FRAMES)
        nursery.start_soon(receive, "audio", AUDIO_FRAMES)
    return got


def check_decoded(codec: str, frames: Mapping[str, list[EncodedFrame]]) -> None:
    """The video frames decode (PyAV) to 640x480 pictures, the first one being a keyframe; the
    Opus frames decode to 20 ms of 48 kHz audio each."""
    video = frames["video"]
    assert video[0].keyframe
    decoder = av.CodecContext.create("vp8" if codec == "vp8" else "h264", "r")
    sizes = [
        (picture.width, picture.height)
        for frame in video
        for picture in decoder.decode(av.Packet(frame.data))
    ]
    sizes += [(p.width, p.height) for p in decoder.decode(None)]
    assert sizes == [(640, 480)] * len(video)
    opus = av.CodecContext.create("opus", "r")
    samples = [s.samples for f in frames["audio"] for s in opus.decode(av.Packet(f.data))]
    assert samples == [960] * len(frames["audio"])


def check_clean(pc: RTCPeerConnection) -> None:
    """Nothing was lost or dropped on our side (loopback)."""
    ice = pc.ice_transport
    assert ice is not None and ice.stats.datagrams_dropped_rtp == 0
    rtp = pc._media.rtp
    assert rtp is not None
    stats = rtp.stats()
    assert stats["srtp"]["dropped_auth"] == stats["srtp"]["dropped_replay"] == 0, stats
    assert sum(s["dropped"] for s in stats["receivers"].values()) == 0, stats
    assert all(s["packets_lost"] == 0 for s in stats["inbound"].values()), stats


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_chromium_offers_camera_and_microphone(
    chromium_loopback: ChromiumBrowser, codec: str
) -> None:
    browser = chromium_loopback
    with trio.fail_after(TIMEOUT):
        async with browser.open_peer(page="media.html") as page:
            await start_camera(page, codec)
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    tracks: list[RTCTrackEvent] = []
                    pc.ontrack = tracks.append
                    start = trio.current_time()
                    answer = await negotiate(page, ours)
                    connected = trio.current_time() - start
                    assert first_codec(answer["sdp"], "video") == codec.upper()
                    assert first_codec(answer["sdp"], "audio") == "opus"
                    # Our transceivers were made by the remote offer: recvonly.
                    assert sorted(t.currentDirection or "" for t in pc.getTransceivers()) == [
                        "recvonly",
                        "recvonly",
                    ]
                    assert len({s.id for e in tracks for s in e.streams}) == 1
                    frames = await receive_camera(tracks)
                    received = trio.current_time() - start - connected
                    check_clean(pc)
                    sent = await page.request("stats")
            check_decoded(codec, frames)
            assert sent["outbound"]["video"]["mimeType"].lower() == f"video/{codec}"
            print(
                f"chromium offers {codec}: connected in {connected * 1000:.0f} ms, "
                f"{VIDEO_FRAMES} video + {AUDIO_FRAMES} audio frames in {received:.1f} s; "
                f"chromium encoder {sent['outbound']['video'].get('encoderImplementation')}"
            )


async def test_trio_offers_recvonly(chromium_loopback: ChromiumBrowser) -> None:
    browser = chromium_loopback
    with trio.fail_after(TIMEOUT):
        async with browser.open_peer(page="media.html") as page:
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    tracks: list[RTCTrackEvent] = []
                    pc.ontrack = tracks.append
                    pc.addTransceiver("video", {"direction": "recvonly"})
                    pc.addTransceiver("audio", {"direction": "recvonly"})

                    async def page_adds_tracks() -> None:
                        await start_camera(page, "vp8")
                        # addTrack reused the transceivers our offer made.
                        assert len(await page.request("transceivers")) == 2

                    answer = await negotiate(ours, page, before_answer=page_adds_tracks)
                    assert "a=sendonly" in section(answer["sdp"], "video")
                    assert "a=sendonly" in section(answer["sdp"], "audio")
                    assert [t.currentDirection for t in pc.getTransceivers()] == [
                        "recvonly",
                        "recvonly",
                    ]
                    page_side = await page.request("transceivers")
                    assert [t["currentDirection"] for t in page_side] == ["sendonly", "sendonly"]
                    frames = await receive_camera(tracks)
                    check_clean(pc)
            check_decoded("vp8", frames)


# -- sending to Chromium -----------------------------------------------------------------------


def vp8_encoder() -> av.VideoCodecContext:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = SEND_WIDTH, SEND_HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, SEND_FPS)
    encoder.bit_rate = 500_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return encoder


def gradient_picture(index: int) -> av.VideoFrame:
    """A moving gradient, so that every frame differs."""
    picture = av.VideoFrame(SEND_WIDTH, SEND_HEIGHT, "yuv420p")
    luma = picture.planes[0]
    row = bytes((x + 4 * index) % 256 for x in range(luma.line_size))
    luma.update(row * luma.height)
    for plane in picture.planes[1:]:
        plane.update(bytes([128]) * (plane.line_size * plane.height))
    picture.pts = index
    return picture


async def send_video(track: MediaStreamTrack) -> int:
    """SEND_FRAMES VP8 frames at SEND_FPS, a keyframe whenever the peer asks; the keyframes."""
    source = track.source
    assert source is not None
    encoder = vp8_encoder()
    keyframes = 0
    next_time = trio.current_time()
    for index in range(SEND_FRAMES):
        picture = gradient_picture(index)
        if source.keyframe_requested.is_set():
            picture.pict_type = av.video.frame.PictureType.I
        for packet in encoder.encode(picture):
            keyframes += packet.is_keyframe
            frame = OutgoingFrame(bytes(packet), keyframe=packet.is_keyframe, duration=1 / SEND_FPS)
            await source.send(frame)
        next_time += 1 / SEND_FPS
        await trio.sleep_until(next_time)
    return keyframes


async def send_audio(track: MediaStreamTrack, seconds: float) -> None:
    """Opus (PyAV's libopus) silence in 20 ms frames, paced in real time."""
    source = track.source
    assert source is not None
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    next_time = trio.current_time()
    for index in range(int(seconds / 0.02)):
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples.sample_rate = 48000
        samples.planes[0].update(bytes(960 * 4))
        samples.pts = index * 960
        for packet in encoder.encode(samples):
            await source.send(OutgoingFrame(bytes(packet), duration=0.02))
        next_time += 0.02
        await trio.sleep_until(next_time)


async def wait_page_stats(
    page: BrowserPeer, done: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    """Poll the page's getStats() summary until ``done`` says so (or give up); the last one."""
    with trio.move_on_after(seconds):
        while True:
            stats: dict[str, Any] = await page.request("stats")
            if done(stats):
                return stats
            await trio.sleep(0.2)
    return stats


async def test_chromium_plays_what_we_send(chromium_loopback: ChromiumBrowser) -> None:
    browser = chromium_loopback
    with trio.fail_after(TIMEOUT):
        async with browser.open_peer(page="media.html") as page:
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    stream = MediaStream(id="trio-stream")
                    video = MediaStreamTrack("video", "pyav vp8")
                    audio = MediaStreamTrack("audio", "pyav opus")
                    pc.addTrack(video, stream)
                    pc.addTrack(audio, stream)
                    answer = await negotiate(ours, page)
                    assert first_codec(answer["sdp"], "video") == "VP8"
                    assert [t.currentDirection for t in pc.getTransceivers()] == [
                        "sendonly",
                        "sendonly",
                    ]
                    _, track_event = await page.wait_message(
                        lambda m: m["type"] == "track" and m["kind"] == "video"
                    )
                    assert track_event["streams"] == ["trio-stream"]
                    start = trio.current_time()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(send_audio, audio, SEND_FRAMES / SEND_FPS)
                        keyframes = await send_video(video)
                    sending = trio.current_time() - start

                    def played(stats: dict[str, Any]) -> bool:
                        inbound = stats["inbound"]
                        return bool(
                            inbound.get("video", {}).get("framesDecoded", 0) >= 100
                            and inbound.get("audio", {}).get("packetsReceived", 0) > 0
                        )

                    stats = await wait_page_stats(page, played, 5)
                    players = await page.request("players")
                    ours_sent = await pc.getSenders()[0].getStats()
            inbound = stats["inbound"]
            summary = {
                kind: {
                    k: inbound.get(kind, {}).get(k)
                    for k in (
                        "mimeType",
                        "packetsReceived",
                        "packetsLost",
                        "framesDecoded",
                        "framesDropped",
                        "keyFramesDecoded",
                        "frameWidth",
                        "frameHeight",
                        "pliCount",
                        "nackCount",
                    )
                }
                for kind in ("video", "audio")
            }
            assert played(stats), summary
            assert summary["video"]["mimeType"] == "video/VP8"
            assert summary["video"]["packetsLost"] == 0, summary
            assert (summary["video"]["frameWidth"], summary["video"]["frameHeight"]) == (
                SEND_WIDTH,
                SEND_HEIGHT,
            )
            assert summary["audio"]["mimeType"] == "audio/opus"
            [player] = [p for p in players if p["tag"] == "video"]
            assert (player["videoWidth"], player["videoHeight"]) == (SEND_WIDTH, SEND_HEIGHT)
            print(
                f"{SEND_FRAMES} VP8 frames sent in {sending:.1f} s ({keyframes} keyframes); "
                f"chromium: {summary}; our sender: {list(ours_sent.values())}"
            )


async def test_chromium_bandwidth_estimate_grows_with_our_feedback(
    chromium_loopback: ChromiumBrowser,
) -> None:
    """Our transport-wide CC feedback lets Chromium's send-side estimate ramp up: without it,
    its video target bitrate stays near 140 kbit/s."""
    browser = chromium_loopback
    with trio.fail_after(TIMEOUT):
        async with browser.open_peer(page="media.html") as page:
            await start_camera(page, "vp8")
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    tracks: list[RTCTrackEvent] = []
                    pc.ontrack = tracks.append
                    await negotiate(page, ours)
                    await receive_camera(tracks)
                    start = trio.current_time()

                    def target(stats: dict[str, Any]) -> float:
                        video = stats["outbound"].get("video", {})
                        return float(video.get("targetBitrate") or 0)

                    await trio.sleep(5)
                    stats = await wait_page_stats(page, lambda s: target(s) > 500_000, 5)
                    elapsed = trio.current_time() - start
                    rtp = pc._media.rtp
                    assert rtp is not None
                    feedback_sent = rtp.counters.twcc_feedback_sent
            print(
                f"chromium video targetBitrate {target(stats):.0f} bps after {elapsed:.1f} s; "
                f"{feedback_sent} TWCC feedback packets sent"
            )
            assert target(stats) > 500_000, stats["outbound"].get("video")
