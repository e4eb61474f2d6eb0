"""A video call between a browser and trio_rtc: camera and microphone both ways.

    .venv/bin/python examples/video_call/server.py [--port 8080] [--codec VP8|VP9|H264|AV1]

Open the URL it prints in Chrome or Chromium (or Firefox) on the same machine and allow the
camera and microphone. The page sends its camera and microphone to a trio_rtc
RTCPeerConnection in this server, one per page, which sends back a picture of its own (a clock
and a frame counter over moving bars, pushed into a :class:`~trio_rtc.media.VideoSource`) and a
short beep every second (the :class:`~trio_rtc.media.sources.ToneTrack` test source, added as
it is). The page shows its camera and what the server sends side by side.

The server decodes what the browser sends (``await track.recv()`` gives ``av.VideoFrame`` and
``av.AudioFrame``) and prints, once a second, the camera's picture size, its frame rate and how
many frames it decoded; the page reports what it plays of ours (getStats()) over the signalling
WebSocket, and the server prints that too. Nothing is echoed back: each side sees the other's
picture, as in a call.

Signalling: the server makes the offer (``negotiate_over``, trio_rtc's perfect negotiation, on
``negotiationneeded``) once the page's WebSocket connects; the page answers, adding its camera
and microphone to the transceivers the offer made. Messages are the JSON shapes of
:mod:`trio_rtc.signaling`; the page's reports are ``{"report": {...}}``.

Needs the ``media`` extra (PyAV). ``--interface 127.0.0.1`` gathers on loopback only (then the
browser must be allowed loopback candidates, see README.md); without it the server gathers on
every interface and resolves the browser's ``<uuid>.local`` candidates by mDNS.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import trio
import trio_websocket

from trio_rtc import RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.media import RTCRtpSender, VideoSource
from trio_rtc.media.sources import ToneTrack
from trio_rtc.pc.media import RTCTrackEvent
from trio_rtc.signaling import SignalingChannel, negotiate_over
from trio_rtc.signaling.server import MAX_MESSAGE_SIZE

HERE = Path(__file__).resolve().parent
PAGE_FILES = {"index.html": "text/html; charset=utf-8", "call.js": "text/javascript; charset=utf-8"}
MAX_PEERS = 8
WIDTH, HEIGHT, FPS = 640, 480, 30


# --- the picture we send ---------------------------------------------------------------------------

# 3x5 glyphs, one string per row, "#" lit.
GLYPHS = {
    "0": ["###", "#.#", "#.#", "#.#", "###"],
    "1": [".#.", "##.", ".#.", ".#.", "###"],
    "2": ["###", "..#", "###", "#..", "###"],
    "3": ["###", "..#", "###", "..#", "###"],
    "4": ["#.#", "#.#", "###", "..#", "..#"],
    "5": ["###", "#..", "###", "..#", "###"],
    "6": ["###", "#..", "###", "#.#", "###"],
    "7": ["###", "..#", "..#", "..#", "..#"],
    "8": ["###", "#.#", "###", "#.#", "###"],
    "9": ["###", "#.#", "###", "..#", "###"],
    ":": ["...", ".#.", "...", ".#.", "..."],
    ".": ["...", "...", "...", "...", ".#."],
    " ": ["...", "...", "...", "...", "..."],
}
CELL = 10  # pixels per glyph cell
ADVANCE = 4 * CELL  # a glyph and a one-cell gap


class ClockPicture:
    """``yuv420p`` pictures: bars scrolling sideways, a slowly changing tint, and a black box
    with the wall-clock time (to a tenth of a second) and the frame number in white."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.width, self.height = width, height
        bars = bytes(40 + 160 * ((x * 10 // width) % 2) for x in range(width))
        self._bars = bars + bars
        self._lines = 2
        self._box_width = 12 * ADVANCE + CELL
        self._box_height = self._lines * 6 * CELL + CELL
        self._box_x = (width - self._box_width) // 2 // 2 * 2
        self._box_y = (height - self._box_height) // 2 // 2 * 2

    def make(self, index: int) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        luma, u_plane, v_plane = frame.planes
        stride = luma.line_size
        shift = (index * 6) % self.width
        row = self._bars[shift : shift + self.width] + bytes(stride - self.width)
        pixels = bytearray(row * self.height)
        x0, y0 = self._box_x, self._box_y
        for y in range(y0, y0 + self._box_height):
            pixels[y * stride + x0 : y * stride + x0 + self._box_width] = bytes(self._box_width)
        now = time.time()
        clock = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 10) % 10}"
        for line, text in enumerate((clock, f"{index:>9}")):
            self._draw(pixels, stride, text, x0 + CELL, y0 + CELL + line * 6 * CELL)
        luma.update(bytes(pixels))
        # The tint goes round the colour wheel every 8 seconds; the box stays neutral.
        phase = 2 * math.pi * index / (FPS * 8)
        for plane, value in (
            (u_plane, 128 + 30 * math.sin(phase)),
            (v_plane, 128 + 30 * math.cos(phase)),
        ):
            tint = bytes([int(value)])
            chroma_stride = plane.line_size
            cx0, cw = x0 // 2, self._box_width // 2
            plain = tint * chroma_stride
            boxed = tint * cx0 + b"\x80" * cw + tint * (chroma_stride - cx0 - cw)
            cy0, cy1 = y0 // 2, (y0 + self._box_height) // 2
            plane.update(plain * cy0 + boxed * (cy1 - cy0) + plain * (plane.height - cy1))
        frame.pts = index * 90000 // FPS
        frame.time_base = Fraction(1, 90000)
        return frame

    @staticmethod
    def _draw(pixels: bytearray, stride: int, text: str, x: int, y: int) -> None:
        lit = b"\xeb" * CELL
        for glyph in text:
            for gy, glyph_row in enumerate(GLYPHS.get(glyph, GLYPHS[" "])):
                for gx, cell in enumerate(glyph_row):
                    if cell == "#":
                        left = x + gx * CELL
                        for py in range(y + gy * CELL, y + (gy + 1) * CELL):
                            pixels[py * stride + left : py * stride + left + CELL] = lit
            x += ADVANCE


async def send_pictures(source: VideoSource) -> None:
    """Our picture at FPS, in real time, until cancelled."""
    picture = ClockPicture()
    start = trio.current_time()
    for index in itertools.count():
        await source.send(picture.make(index))
        await trio.sleep_until(start + (index + 1) / FPS)


# --- one call ----------------------------------------------------------------------------------------


class Received:
    """What the server decoded of the browser's camera and microphone."""

    def __init__(self) -> None:
        self.frames = 0
        self.size = (0, 0)
        self.audio_seconds = 0.0
        self.sample_rate = 0

    async def read_video(self, event: RTCTrackEvent) -> None:
        async for picture in event.track:
            self.frames += 1
            self.size = (picture.width, picture.height)

    async def read_audio(self, event: RTCTrackEvent) -> None:
        async for sound in event.track:
            self.sample_rate = sound.sample_rate
            self.audio_seconds += sound.samples / sound.sample_rate


class PageChannel(SignalingChannel):
    """The signalling channel, minus the page's ``{"report": ...}`` messages, which are printed."""

    def __init__(self, connection: trio_websocket.WebSocketConnection, number: int) -> None:
        super().__init__(connection)
        self.number = number

    async def receive(self) -> dict[str, Any]:
        while True:
            message = await super().receive()
            report = message.get("report")
            if not isinstance(report, dict):
                return message
            print(
                f"peer {self.number}: the page plays our video {report.get('width')}x"
                f"{report.get('height')}, {report.get('framesDecoded')} frames decoded, "
                f"{report.get('audioSamples')} audio samples",
                flush=True,
            )


async def print_received(number: int, received: Received) -> None:
    """Once a second: the camera's size, frame rate and frames so far, and the microphone."""
    last = 0
    while True:
        await trio.sleep(1)
        if received.frames == 0 and received.audio_seconds == 0:
            continue
        width, height = received.size
        print(
            f"peer {number}: camera {width}x{height}, {received.frames - last} frames/s, "
            f"{received.frames} frames decoded; microphone {received.sample_rate} Hz, "
            f"{received.audio_seconds:.1f} s decoded",
            flush=True,
        )
        last = received.frames


class CallServer:
    """What the HTTP and WebSocket handlers share."""

    def __init__(self, ice_options: IceTransportOptions, codec: str | None) -> None:
        self.ice_options = ice_options
        self.codec = codec
        self.files: dict[str, tuple[bytes, str]] = {}
        self.peers = 0
        self.numbers = itertools.count(1)

    def load_files(self, signaling_url: str) -> None:
        for name, content_type in PAGE_FILES.items():
            data = (HERE / name).read_bytes().replace(b"__SIGNALING_URL__", signaling_url.encode())
            self.files[name] = (data, content_type)
        self.files[""] = self.files["index.html"]

    async def serve_http(self, stream: trio.SocketStream) -> None:
        """GET of the page or its script; 404 for anything else."""
        async with stream:
            request = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in request and len(request) < 8192:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    request += chunk
            words = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = words[1].split("?", 1)[0].lstrip("/") if len(words) == 3 else None
            found = self.files.get(path) if words[:1] == ["GET"] and path is not None else None
            status = "200 OK" if found else "404 Not Found"
            body, content_type = found or (b"not found\n", "text/plain")
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            try:
                await stream.send_all(head.encode() + body)
            except trio.BrokenResourceError:
                pass

    async def serve_peer(self, request: trio_websocket.WebSocketRequest) -> None:
        """One page: a call that lasts as long as the page's WebSocket."""
        if self.peers >= MAX_PEERS:
            await request.reject(503, body=b"too many calls at once")
            return
        self.peers += 1
        try:
            connection = await request.accept()
            number = next(self.numbers)
            await self._call(number, PageChannel(connection, number))
            print(f"peer {number}: gone", flush=True)
        finally:
            self.peers -= 1

    async def _call(self, number: int, channel: PageChannel) -> None:
        received = Received()
        async with (
            RTCPeerConnection(ice_options=self.ice_options) as pc,
            trio.open_nursery() as nursery,
        ):

            def on_state(_event: object) -> None:
                print(f"peer {number}: connectionState {pc.connectionState}", flush=True)

            async def on_track(event: RTCTrackEvent) -> None:
                # An async handler runs in the connection's nursery: it ends with the call.
                print(f"peer {number}: receiving the page's {event.track.kind}", flush=True)
                if event.track.kind == "video":
                    await received.read_video(event)
                else:
                    await received.read_audio(event)

            pc.addEventListener("connectionstatechange", on_state)
            pc.addEventListener("track", on_track)

            async def signalling(task_status: trio.TaskStatus[None]) -> None:
                await negotiate_over(pc, channel, polite=True, task_status=task_status)
                nursery.cancel_scope.cancel()  # the page left: hang up

            # Listen for negotiationneeded first: adding the tracks makes the offer.
            await nursery.start(signalling)
            pictures = VideoSource()
            pc.addTrack(pictures.create_track("clock"))
            pc.addTrack(ToneTrack(880, amplitude=0.2, burst_every=1.0, burst_length=0.08))
            if self.codec is not None:
                self._prefer(pc, self.codec)
            nursery.start_soon(send_pictures, pictures)
            nursery.start_soon(print_received, number, received)

    @staticmethod
    def _prefer(pc: RTCPeerConnection, codec: str) -> None:
        capabilities = RTCRtpSender.getCapabilities("video")
        assert capabilities is not None
        wanted = [c for c in capabilities.codecs if c.mimeType.lower() == f"video/{codec}".lower()]
        if codec.upper() == "H264":
            # Constrained Baseline with packetization-mode 1 first: what every browser has.
            wanted.sort(key=lambda c: "42e01f" not in (c.sdpFmtpLine or ""))
        rtx = [c for c in capabilities.codecs if c.mimeType.lower() == "video/rtx"]
        for transceiver in pc.getTransceivers():
            if transceiver.receiver.track.kind == "video":
                transceiver.setCodecPreferences(wanted + rtx)


async def main(host: str, port: int, interfaces: list[str] | None, codec: str | None) -> None:
    # Without explicit interfaces: every usable one, and the browser's <uuid>.local candidates
    # resolved by mDNS, as a browser would.
    options = IceTransportOptions(interfaces=interfaces, mdns=interfaces is None)
    server = CallServer(options, codec)
    async with trio.open_nursery() as nursery:
        ws_server = await nursery.start(
            partial(
                trio_websocket.serve_websocket,
                server.serve_peer,
                host,
                0,
                None,
                max_message_size=MAX_MESSAGE_SIZE,
            )
        )
        url_host = f"[{host}]" if ":" in host else host
        server.load_files(f"ws://{url_host}:{ws_server.port}/call")
        listeners = await trio.open_tcp_listeners(port, host=host)
        http_port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server.serve_http, listeners)
        print(f"video call page: http://{url_host}:{http_port}/", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the page on")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free one)")
    parser.add_argument(
        "--interface",
        action="append",
        help="local address to gather ICE candidates on (repeatable; default: every interface)",
    )
    parser.add_argument(
        "--codec",
        choices=["VP8", "VP9", "H264", "AV1"],
        type=str.upper,
        help="the video codec to offer first (default: trio_rtc's order, VP8 first)",
    )
    args = parser.parse_args()
    try:
        trio.run(main, args.host, args.port, args.interface, args.codec)
    except* KeyboardInterrupt:
        # Ctrl-C: trio cancelled every task (and closed every connection) on the way out.
        print("stopped", flush=True)
