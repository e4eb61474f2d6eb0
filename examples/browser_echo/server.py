"""A browser talks to trio_rtc: a page opens a data channel to this server, which echoes it.

    .venv/bin/python examples/browser_echo/server.py [--port 8080] [--interface 127.0.0.1]

Open the URL it prints in Chrome, Chromium or Firefox on the same machine. The page creates an
RTCPeerConnection with one data channel ("echo"), sends its offer and candidates over a WebSocket
(trio-websocket, the message shapes of :mod:`trio_rtc.signaling`), and this server answers with a
trio_rtc RTCPeerConnection per page that sends every message back. Type a line or press
"Send 1 MiB"; ``?selftest`` in the URL makes the page check the echo by itself and report.

The server prints what happens: each connection state, each text message it echoes, and per
channel how many messages and binary bytes went through (with the SHA-256 of the binary bytes, so
a transfer can be checked on both ends).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from functools import partial
from pathlib import Path

import trio
import trio_websocket

from trio_rtc import RTCDataChannel, RTCDataChannelEvent, RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.signaling import SignalingChannel, negotiate_over
from trio_rtc.signaling.server import MAX_MESSAGE_SIZE

HERE = Path(__file__).resolve().parent
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
MAX_REQUEST_HEAD = 8192
#: Pages served at once; further WebSocket connections are refused (each holds a connection).
MAX_PEERS = 16
#: Text messages longer than this are shortened in the log.
LOG_TEXT = 160


class EchoServer:
    """What the HTTP and WebSocket handlers share."""

    def __init__(self, ice_options: IceTransportOptions) -> None:
        self.ice_options = ice_options
        self.files: dict[str, bytes] = {}
        self.peers = 0
        self.numbers = itertools.count(1)

    def load_files(self, signaling_url: str) -> None:
        page = (HERE / "index.html").read_text().replace("__SIGNALING_URL__", signaling_url)
        self.files = {"": page.encode(), "index.html": page.encode()}
        self.files["echo.js"] = (HERE / "echo.js").read_bytes()

    async def serve_http(self, stream: trio.SocketStream) -> None:
        """Answer one GET for the page or its script; anything else gets 404."""
        async with stream:
            head = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    head += chunk
            request = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            status, body, content_type = "404 Not Found", b"not found\n", "text/plain"
            if len(request) == 3 and request[0] == "GET":
                name = request[1].split("?", 1)[0].lstrip("/")
                if name in self.files:
                    status, body = "200 OK", self.files[name]
                    content_type = CONTENT_TYPES[Path(name or "index.html").suffix]
            header = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            try:
                await stream.send_all(header.encode() + body)
            except trio.BrokenResourceError:
                pass

    async def serve_peer(self, request: trio_websocket.WebSocketRequest) -> None:
        """One page: a peer connection that lives as long as the page's WebSocket."""
        if self.peers >= MAX_PEERS:
            await request.reject(503, body=b"too many pages at once")
            return
        self.peers += 1
        try:
            connection = await request.accept()
            number = next(self.numbers)
            await self._run_peer(number, SignalingChannel(connection))
            print(f"peer {number}: gone", flush=True)
        finally:
            self.peers -= 1

    async def _run_peer(self, number: int, signaling: SignalingChannel) -> None:
        async with RTCPeerConnection(ice_options=self.ice_options) as pc:

            def on_state(_event: object) -> None:
                print(f"peer {number}: connectionState {pc.connectionState}", flush=True)

            async def on_datachannel(event: RTCDataChannelEvent) -> None:
                # An async handler runs in the connection's nursery: it ends with the connection.
                await echo(number, event.channel)

            pc.addEventListener("connectionstatechange", on_state)
            pc.addEventListener("datachannel", on_datachannel)
            # The page offers; we are the polite side and answer. Returns when the page leaves.
            await negotiate_over(pc, signaling, polite=True)


async def echo(number: int, channel: RTCDataChannel) -> None:
    """Send every message back; print text messages and, at the end, what went through."""
    label = channel.label
    print(f"peer {number}: channel {label!r} opened", flush=True)
    messages = 0
    binary = 0
    digest = hashlib.sha256()
    async for message in channel:
        messages += 1
        if isinstance(message, str):
            shown = message if len(message) <= LOG_TEXT else f"{message[:LOG_TEXT]}…"
            print(f"peer {number}: {label!r} text {shown!r}", flush=True)
        else:
            binary += len(message)
            digest.update(message)
        await channel.send_message(message)
    print(
        f"peer {number}: channel {label!r} closed after {messages} messages, "
        f"{binary} binary bytes, sha256 {digest.hexdigest()}",
        flush=True,
    )


async def main(host: str, port: int, interfaces: list[str] | None) -> None:
    # Without explicit interfaces, gather on every usable one and resolve the browser's
    # <uuid>.local candidates by mDNS, as a browser would.
    options = IceTransportOptions(interfaces=interfaces, mdns=interfaces is None)
    server = EchoServer(options)
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
        server.load_files(f"ws://{url_host}:{ws_server.port}/echo")
        listeners = await trio.open_tcp_listeners(port, host=host)
        http_port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server.serve_http, listeners)
        print(f"browser echo page: http://{url_host}:{http_port}/", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the page on")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free one)")
    parser.add_argument(
        "--interface",
        action="append",
        help="local address to gather ICE candidates on (repeatable; default: every interface)",
    )
    args = parser.parse_args()
    try:
        trio.run(main, args.host, args.port, args.interface)
    except* KeyboardInterrupt:
        # Ctrl-C: trio cancelled every task (and closed every connection) on the way out.
        print("stopped", flush=True)
