"""Decoded media between trio_rtc and headless Chromium, both ways at once (issue 12).

One call per video codec (VP8, H.264, VP9, AV1) and per offerer (the page offers / we offer),
each carrying, at the same time:

- Chromium's fake camera (640x480) and microphone to us: ``await track.recv()`` gives at least
  100 decoded ``av.VideoFrame``s of 640x480 and Opus ``av.AudioFrame``s at 48 kHz;
- our picture (a :class:`VideoSource` fed at 30 fps with four coloured quadrants and the
  stamped frame counter of ``trio_rtc.media.sources`` across the top) and a tone (an
  :class:`AudioSource`) to Chromium: its getStats() shows ``framesDecoded`` >= 100 with the same
  codec and ``totalSamplesReceived`` growing, and the picture its ``<video>`` element shows has
  the four colours where we put them, both drawn into a canvas by the page (``call.js``) and in
  a DevTools screenshot (``Page.captureScreenshot``) of the element.

This Chromium (Debian 156) lists AV1 among both its sender and receiver capabilities and sends
it with its software encoder, so AV1 is tested both ways like the other codecs. The browser is
the session's ``chromium_loopback`` (fake camera and microphone); every test opens a fresh page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import av
import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import open_trio_peer
from peers.chromium import BrowserPeer, ChromiumBrowser, chromium_loopback
from test_pc_media_chromium import first_codec, negotiate, section

from trio_rtc import RTCPeerConnection
from trio_rtc.media import AudioSource, RTCRtpSender, RTCRtpTransceiver, VideoSource
from trio_rtc.media.sources import ToneTrack, stamp_frame_counter
from trio_rtc.pc.media import RTCTrackEvent

pytestmark = pytest.mark.interop

# The session fixture lives in peers/chromium.py; naming it here registers it for this module.
__all__ = ["chromium_loopback"]

# The codec both sides prefer for video, as (mimeType, fmtp parts that must all be there).
CODECS: dict[str, tuple[str, list[str]]] = {
    "VP8": ("video/VP8", []),
    # Constrained Baseline, the profile every H.264 WebRTC stack has.
    "H264": ("video/H264", ["profile-level-id=42e01f", "packetization-mode=1"]),
    "VP9": ("video/VP9", ["profile-id=0"]),
    "AV1": ("video/AV1", ["profile=0"]),
}
CAMERA = {"video": {"width": 640, "height": 480}, "audio": True}
VIDEO_FRAMES = 100  # decoded on each side
AUDIO_FRAMES = 50  # 1 s of 20 ms Opus frames, decoded here
# What we send: 320x240 at 30 fps (our encoders and Chromium's decoders share two cores with
# Chromium's encoder and our decoder), and 20 ms of a 440 Hz tone at a time.
SEND_WIDTH, SEND_HEIGHT, SEND_FPS = 320, 240, 30
TIMEOUT = 40

# The quadrants of our picture, clockwise from the top left, and where to look for them: the
# middle of each quadrant, below the counter stamp (the top eighth of the picture).
QUADRANTS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "yellow": (255, 255, 0),
    "blue": (0, 0, 255),
}
REGIONS = [
    {"x0": 0.1, "y0": 0.2, "x1": 0.4, "y1": 0.4},
    {"x0": 0.6, "y0": 0.2, "x1": 0.9, "y1": 0.4},
    {"x0": 0.6, "y0": 0.6, "x1": 0.9, "y1": 0.9},
    {"x0": 0.1, "y0": 0.6, "x1": 0.4, "y1": 0.9},
]
# Wide enough for a colour-matrix mismatch: our H.264, VP9 and AV1 streams say nothing about
# their colour space, and Chromium renders them as BT.709 while PyAV converted our RGB with
# BT.601 (pure green comes out as (0, 216, 2)); VP8, BT.601 by definition, comes back exact.
COLOUR_TOLERANCE = 60
# The page's inbound stats a failure note shows.
PROGRESS_STATS = ("mimeType", "packetsReceived", "framesDecoded", "totalSamplesReceived")


# -- what we send -------------------------------------------------------------------------------


class QuadrantPattern:
    """Four flat colours (:data:`QUADRANTS`) with the frame counter stamped across the top, so
    that every picture differs and the colours survive any encoder."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        colours = list(QUADRANTS.values())
        half = width // 2
        top = bytes(colours[0]) * half + bytes(colours[1]) * (width - half)
        bottom = bytes(colours[3]) * half + bytes(colours[2]) * (width - half)
        rgb = av.VideoFrame(width, height, "rgb24")
        plane = rgb.planes[0]
        pad = bytes(plane.line_size - 3 * width)
        rows = [top + pad] * (height // 2) + [bottom + pad] * (height - height // 2)
        plane.update(b"".join(rows))
        # RGB to video-range BT.601 YUV once; each frame copies these planes.
        yuv = rgb.reformat(format="yuv420p")
        self._planes = [(bytes(p), p.line_size, p.width, p.height) for p in yuv.planes]
        # The planes laid out for a new frame's line sizes (PyAV 18.1.1 pads the rows of a
        # reformatted frame and of a new one differently: copying the bytes as they are no
        # longer fits).
        self._laid_out: dict[tuple[int, int], bytes] = {}

    def _plane_bytes(self, index: int, line_size: int) -> bytes:
        laid = self._laid_out.get((index, line_size))
        if laid is None:
            data, source_line, width, height = self._planes[index]
            if line_size == source_line:
                laid = data
            else:
                pad = bytes(line_size - width)
                laid = b"".join(
                    data[row * source_line : row * source_line + width] + pad
                    for row in range(height)
                )
            self._laid_out[(index, line_size)] = laid
        return laid

    def frame(self, index: int) -> av.VideoFrame:
        picture = av.VideoFrame(self.width, self.height, "yuv420p")
        for number, plane in enumerate(picture.planes):
            plane.update(self._plane_bytes(number, plane.line_size))
        stamp_frame_counter(picture, index)
        picture.pts = index * 90000 // SEND_FPS
        picture.time_base = Fraction(1, 90000)
        return picture


async def feed_video(source: VideoSource) -> None:
    """Our pattern at SEND_FPS until cancelled."""
    pattern = QuadrantPattern(SEND_WIDTH, SEND_HEIGHT)
    start = trio.current_time()
    index = 0
    while True:
        await source.send(pattern.frame(index))
        index += 1
        await trio.sleep_until(start + index / SEND_FPS)


async def feed_audio(source: AudioSource) -> None:
    """A 440 Hz tone in 20 ms frames until cancelled."""
    tone = ToneTrack(440, 48000, realtime=False)
    start = trio.current_time()
    index = 0
    while True:
        await source.send(tone.make_frame(index * 960))
        index += 1
        await trio.sleep_until(start + index * 0.02)


def prefer(transceiver: RTCRtpTransceiver, codec: str) -> None:
    """Our transceiver's codec preferences: ``codec`` (and RTX) only."""
    mime_type, fmtp = CODECS[codec]
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    wanted = [
        c
        for c in capabilities.codecs
        if c.mimeType.lower() == mime_type.lower()
        and all(part in (c.sdpFmtpLine or "").split(";") for part in fmtp)
    ]
    assert wanted, f"trio_rtc offers no {mime_type} {fmtp}"
    rtx = [c for c in capabilities.codecs if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(wanted + rtx)


def add_our_tracks(pc: RTCPeerConnection, codec: str) -> tuple[VideoSource, AudioSource]:
    video, audio = VideoSource(), AudioSource()
    pc.addTrack(video.create_track("quadrants"))
    pc.addTrack(audio.create_track("tone"))
    [transceiver] = [t for t in pc.getTransceivers() if t.receiver.track.kind == "video"]
    prefer(transceiver, codec)
    return video, audio


# -- the page -----------------------------------------------------------------------------------


async def start_camera(page: BrowserPeer, codec: str) -> None:
    """getUserMedia (fake camera and microphone), addTrack both, prefer ``codec`` for video, and
    keep 640x480 (Chromium scales a camera down while its bandwidth estimate is low)."""
    tracks = await page.request("get_user_media", constraints=CAMERA)
    settings = {t["kind"]: t["settings"] for t in tracks}
    assert (settings["video"]["width"], settings["video"]["height"]) == (640, 480), settings
    mime_type, fmtp = CODECS[codec]
    await page.request("add_tracks", codecs={"video": {"mimeType": mime_type, "fmtp": fmtp}})
    await page.request(
        "set_degradation_preference", trackKind="video", preference="maintain-resolution"
    )


async def screenshot(browser: ChromiumBrowser, clip: Mapping[str, float]) -> av.VideoFrame:
    """A DevTools screenshot (``Page.captureScreenshot``) of ``clip`` (CSS pixels) of the page
    open at ``call.html``, as an rgb24 picture.

    The harness's DevTools calls go to the browser; a page's own domains need a session:
    ``Target.attachToTarget`` with ``flatten``, then messages that carry its ``sessionId``."""
    targets = await browser.devtools_call("Target.getTargets")
    [target] = [
        t for t in targets["targetInfos"] if t["type"] == "page" and "/call.html?" in t["url"]
    ]
    async with browser._devtools() as devtools:
        attached = await devtools.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        devtools.next_id += 1
        request = {
            "id": devtools.next_id,
            "sessionId": attached["sessionId"],
            "method": "Page.captureScreenshot",
            "params": {"format": "png", "clip": {**clip, "scale": 1}},
        }
        await devtools.ws.send_message(json.dumps(request))
        while True:
            reply = json.loads(await devtools.ws.get_message())
            if reply.get("id") == request["id"]:
                break
    assert "error" not in reply, reply
    png = base64.b64decode(reply["result"]["data"])
    decoder = av.CodecContext.create("png", "r")
    [picture] = decoder.decode(av.Packet(png))
    return picture.reformat(format="rgb24")


def region_colours(
    picture: av.VideoFrame, regions: Sequence[Mapping[str, float]]
) -> list[list[int]]:
    """The mean colour of each region (fractions of the picture) of an rgb24 picture."""
    plane = picture.planes[0]
    data = bytes(plane)
    colours = []
    for region in regions:
        x0, x1 = int(region["x0"] * picture.width), int(region["x1"] * picture.width)
        y0, y1 = int(region["y0"] * picture.height), int(region["y1"] * picture.height)
        sums = [0, 0, 0]
        for y in range(y0, y1):
            row = data[y * plane.line_size + 3 * x0 : y * plane.line_size + 3 * x1]
            for channel in range(3):
                sums[channel] += sum(row[channel::3])
        count = (x1 - x0) * (y1 - y0)
        colours.append([round(total / count) for total in sums])
    return colours


def colour_matches(seen: list[int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(seen, expected, strict=True))


async def watch_page(
    browser: ChromiumBrowser, page: BrowserPeer, progress: dict[str, Any]
) -> dict[str, Any]:
    """Wait until the page decoded VIDEO_FRAMES of our pictures and its audio sample count grew
    after that; what its <video> shows then (drawn into a canvas, and in a screenshot), and the
    stats. ``progress["page"]`` holds the page's latest inbound stats meanwhile."""
    while True:
        stats = await page.request("stats")
        progress["page"] = {
            kind: {k: v for k, v in entry.items() if k in PROGRESS_STATS}
            for kind, entry in stats["inbound"].items()
        }
        video = stats["inbound"].get("video", {})
        if video.get("framesDecoded", 0) >= VIDEO_FRAMES:
            break
        await trio.sleep(0.2)
    samples_before = stats["inbound"].get("audio", {}).get("totalSamplesReceived", 0)
    pixels = await page.request("video_pixels", regions=REGIONS)
    rect = await page.request("video_rect")
    clip = {k: rect[k] for k in ("x", "y", "width", "height")}
    shot = await screenshot(browser, clip)
    while True:
        await trio.sleep(0.2)
        later = await page.request("stats")
        samples_after = later["inbound"].get("audio", {}).get("totalSamplesReceived", 0)
        if samples_after > samples_before:
            break
    return {
        "stats": stats,
        "pixels": pixels,
        "screenshot": {
            "size": (shot.width, shot.height),
            "rect": rect,
            "regions": region_colours(shot, REGIONS),
        },
        "samples": (samples_before, samples_after),
        "players": await page.request("players"),
    }


# -- what we receive ----------------------------------------------------------------------------


async def receive_camera(
    events: list[RTCTrackEvent], progress: dict[str, Any]
) -> dict[str, list[Any]]:
    """VIDEO_FRAMES decoded pictures and AUDIO_FRAMES decoded audio frames, read at once (into
    ``progress["received"]`` as they come)."""
    assert sorted(e.track.kind for e in events) == ["audio", "video"], events
    by_kind = {e.track.kind: e.track for e in events}
    got: dict[str, list[Any]] = {"video": [], "audio": []}
    progress["received"] = got

    async def receive(kind: str, count: int) -> None:
        while len(got[kind]) < count:
            got[kind].append(await by_kind[kind].recv())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive, "video", VIDEO_FRAMES)
        nursery.start_soon(receive, "audio", AUDIO_FRAMES)
    return got


def check_camera(frames: Mapping[str, list[Any]]) -> None:
    pictures, sounds = frames["video"], frames["audio"]
    assert all(isinstance(p, av.VideoFrame) for p in pictures)
    assert {(p.width, p.height) for p in pictures} == {(640, 480)}
    assert {p.time_base for p in pictures} == {Fraction(1, 90000)}
    pts = [p.pts for p in pictures]
    assert pts == sorted(pts) and len(set(pts)) == len(pts), pts
    assert all(isinstance(s, av.AudioFrame) for s in sounds)
    assert {s.sample_rate for s in sounds} == {48000}
    assert {s.time_base for s in sounds} == {Fraction(1, 48000)}
    assert sum(s.samples for s in sounds) >= AUDIO_FRAMES * 960 * 0.9


async def exchange(
    browser: ChromiumBrowser,
    page: BrowserPeer,
    events: list[RTCTrackEvent],
    sources: tuple[VideoSource, AudioSource],
    progress: dict[str, Any],
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Both directions at once: our sources fed in real time until the camera frames are in
    and the page has seen enough of ours."""
    result: dict[str, Any] = {}

    async def camera() -> None:
        result["camera"] = await receive_camera(events, progress)

    async def page_side() -> None:
        result["page"] = await watch_page(browser, page, progress)

    async with trio.open_nursery() as feeders:
        feeders.start_soon(feed_video, sources[0])
        feeders.start_soon(feed_audio, sources[1])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(camera)
            nursery.start_soon(page_side)
        feeders.cancel_scope.cancel()
    return result["camera"], result["page"]


def check_page(codec: str, seen: Mapping[str, Any]) -> None:
    inbound = seen["stats"]["inbound"]
    video = inbound["video"]
    assert video["mimeType"].lower() == CODECS[codec][0].lower(), video
    assert video["framesDecoded"] >= VIDEO_FRAMES
    assert (video["frameWidth"], video["frameHeight"]) == (SEND_WIDTH, SEND_HEIGHT), video
    assert inbound["audio"]["mimeType"] == "audio/opus"
    before, after = seen["samples"]
    assert after > before > 0, seen["samples"]
    pixels = seen["pixels"]
    assert (pixels["width"], pixels["height"]) == (SEND_WIDTH, SEND_HEIGHT), pixels
    for (name, expected), colour in zip(QUADRANTS.items(), pixels["regions"], strict=True):
        assert colour_matches(colour, expected), f"{name} quadrant shows {colour}: {pixels}"
    shot = seen["screenshot"]
    # The element is laid out at the picture's own size (no CSS), one device pixel per pixel.
    assert shot["size"] == (SEND_WIDTH, SEND_HEIGHT), shot
    for (name, expected), colour in zip(QUADRANTS.items(), shot["regions"], strict=True):
        assert colour_matches(colour, expected), f"{name} quadrant screenshot {colour}: {shot}"


async def call(
    browser: ChromiumBrowser, codec: str, offerer: str, progress: dict[str, Any]
) -> tuple[dict[str, list[Any]], dict[str, Any], Mapping[str, Any], dict[str, Any], float, float]:
    """One call: what we decoded, what the page saw, our stats, the page's outbound stats, the
    seconds to connect and the seconds both directions took then."""
    with trio.fail_after(TIMEOUT):
        async with browser.open_peer(page="call.html") as page:
            with browser.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc) as ours:
                    events: list[RTCTrackEvent] = []
                    pc.ontrack = events.append
                    start = trio.current_time()
                    if offerer == "chromium":
                        await start_camera(page, codec)
                        sources: list[tuple[VideoSource, AudioSource]] = []

                        async def we_add_tracks() -> None:
                            sources.append(add_our_tracks(pc, codec))

                        answer = await negotiate(page, ours, before_answer=we_add_tracks)
                        [our_sources] = sources
                    else:
                        our_sources = add_our_tracks(pc, codec)

                        async def page_adds_camera() -> None:
                            await start_camera(page, codec)

                        answer = await negotiate(ours, page, before_answer=page_adds_camera)
                    connected = trio.current_time() - start
                    assert first_codec(answer["sdp"], "video") == codec
                    assert first_codec(answer["sdp"], "audio") == "opus"
                    for kind in ("video", "audio"):
                        assert "a=sendrecv" in section(answer["sdp"], kind)
                    assert [t.currentDirection for t in pc.getTransceivers()] == ["sendrecv"] * 2
                    frames, seen = await exchange(browser, page, events, our_sources, progress)
                    took = trio.current_time() - start - connected
                    ours_stats = await pc.getStats()
                    sent = (await page.request("stats"))["outbound"]
    return frames, seen, ours_stats, sent, connected, took


@pytest.mark.parametrize("offerer", ["chromium", "trio_rtc"])
@pytest.mark.parametrize("codec", list(CODECS))
async def test_camera_to_us_and_our_pattern_to_chromium(
    chromium_loopback: ChromiumBrowser, codec: str, offerer: str
) -> None:
    browser = chromium_loopback
    progress: dict[str, Any] = {}
    try:
        frames, seen, ours_stats, sent, connected, took = await call(
            browser, codec, offerer, progress
        )
    except Exception as exc:
        received = {k: len(v) for k, v in progress.get("received", {}).items()}
        exc.add_note(f"decoded here: {received}; the page's inbound: {progress.get('page')}")
        raise
    check_camera(frames)
    check_page(codec, seen)
    [inbound] = [
        s for s in ours_stats.values() if s["type"] == "inbound-rtp" and s["kind"] == "video"
    ]
    assert inbound["framesDecoded"] >= VIDEO_FRAMES
    assert sent["video"]["mimeType"].lower() == CODECS[codec][0].lower()
    video = seen["stats"]["inbound"]["video"]
    print(
        f"{codec}, {offerer} offers: connected in {connected:.2f} s, both ways done in "
        f"{took:.1f} s; chromium encoder {sent['video'].get('encoderImplementation')}, "
        f"decoder {video.get('decoderImplementation')}, decoded {video['framesDecoded']} "
        f"(dropped {video.get('framesDropped')}), colours {seen['pixels']['regions']}, "
        f"screenshot {seen['screenshot']['regions']}"
    )
