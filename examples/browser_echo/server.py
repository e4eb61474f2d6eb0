"""A browser talks to trio_rtc: a page opens a data channel to this server, which echoes it.

    .venv/bin/python examples/browser_echo/server.py [--port 8080]

Open the URL it prints in Chrome, Chromium or Firefox on the same machine, with the browser's
default settings. The page creates an RTCPeerConnection with one data channel ("echo"), sends its
offer and candidates over a WebSocket (trio-websocket, the message shapes of
:mod:`trio_rtc.signaling`, see docs/signaling.md), and this server answers with a trio_rtc
RTCPeerConnection per page that sends every message back. Type a line or press "Send 1 MiB";
``?selftest`` in the URL makes the page check the echo by itself and report.

Browsers hide the machine's addresses behind ``<uuid>.local`` names (mDNS); the server gathers on
every interface and resolves those names as a browser would. Browsers also leave loopback out, so
the machine needs a network besides loopback (any LAN or Wi-Fi, no internet needed). When nothing
connects within ``--connect-timeout`` seconds (5), both the page (a red line) and the server say
what they saw and the likely cause.

The server prints what happens: each page, the candidates the browser sent, each connection
state, each text message it echoes, and per channel how many messages and binary bytes went
through (with the SHA-256 of the binary bytes, so a transfer can be checked on both ends).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
from functools import partial
from pathlib import Path
from typing import Any

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
#: Page log lines longer than this are cut.
LOG_PAGE = 600
#: Browser candidates printed (and counted) per page.
MAX_LOGGED_CANDIDATES = 32


class EchoServer:
    """What the HTTP and WebSocket handlers share."""

    def __init__(self, ice_options: IceTransportOptions, connect_timeout: float) -> None:
        self.ice_options = ice_options
        self.connect_timeout = connect_timeout
        self.files: dict[str, bytes] = {}
        self.peers = 0
        self.numbers = itertools.count(1)

    def load_files(self, signaling_url: str) -> None:
        page = (HERE / "index.html").read_text().replace("__SIGNALING_URL__", signaling_url)
        page = page.replace("__CONNECT_TIMEOUT__", f"{self.connect_timeout:g}")
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
            print(f"peer {number}: page connected, waiting for its offer", flush=True)
            await self._run_peer(number, PageSignaling(connection, number))
            print(f"peer {number}: gone", flush=True)
        finally:
            self.peers -= 1

    async def _run_peer(self, number: int, signaling: PageSignaling) -> None:
        async with (
            RTCPeerConnection(ice_options=self.ice_options) as pc,
            trio.open_nursery() as watchers,
        ):

            def on_state(_event: object) -> None:
                print(f"peer {number}: connectionState {pc.connectionState}", flush=True)

            async def on_datachannel(event: RTCDataChannelEvent) -> None:
                # An async handler runs in the connection's nursery: it ends with the connection.
                await echo(number, event.channel)

            pc.addEventListener("connectionstatechange", on_state)
            pc.addEventListener("datachannel", on_datachannel)
            watchers.start_soon(self._watch, number, pc, signaling)
            # The page offers; we are the polite side and answer. Returns when the page leaves.
            await negotiate_over(pc, signaling, polite=True)
            watchers.cancel_scope.cancel()

    async def _watch(self, number: int, pc: RTCPeerConnection, signaling: PageSignaling) -> None:
        """Say why, when the page has not connected within the timeout."""
        await trio.sleep(self.connect_timeout)
        if pc.connectionState != "connected":
            print(f"peer {number}: {diagnosis(pc, signaling, self.connect_timeout)}", flush=True)


class PageSignaling(SignalingChannel):
    """The page's WebSocket, as :func:`negotiate_over` reads it, noting what went by: the
    browser's candidates are printed and counted, and its ``{"log": text}`` lines printed."""

    def __init__(self, connection: trio_websocket.WebSocketConnection, number: int) -> None:
        super().__init__(connection)
        self.number = number
        self.offer = False
        self.candidates: list[str] = []

    async def receive(self) -> dict[str, Any]:
        while True:
            message = await super().receive()
            if "log" in message:
                # One line, whatever the page put in it.
                text = " ".join(str(message["log"]).split())[:LOG_PAGE]
                print(f"peer {self.number}: the page says: {text}", flush=True)
                continue
            if isinstance(message.get("description"), dict):
                self.offer = True
            if "candidate" in message:
                self._note_candidate(message["candidate"])
            return message

    def _note_candidate(self, candidate: object) -> None:
        line = candidate.get("candidate") if isinstance(candidate, dict) else None
        if isinstance(line, str) and line and len(self.candidates) < MAX_LOGGED_CANDIDATES:
            self.candidates.append(line)
            # candidate:<foundation> <component> <transport> <priority> <address> <port> typ <t>
            fields = line.split()
            shown = f"{fields[7]} {fields[4]}:{fields[5]} {fields[2]}" if len(fields) >= 8 else line
            print(f"peer {self.number}: browser candidate {shown[:200]}", flush=True)


def diagnosis(pc: RTCPeerConnection, signaling: PageSignaling, timeout: float) -> str:
    """One line on why a page did not connect, the commonest causes first."""
    waited = f"not connected after {timeout:g} s"
    if not signaling.offer:
        return f"{waited}: the page sent no offer (is JavaScript on? see the browser console)"
    if not signaling.candidates:
        # A browser with no usable interface does not even end its gathering: none is none.
        return (
            f"{waited}: the browser sent no ICE candidates. Browsers leave loopback out by "
            "default, so on a machine whose only network is loopback they have nothing to "
            "connect with: join any network (no internet needed), or start Chromium with "
            "--disable-features=WebRtcHideLocalIpsWithMdns --allow-loopback-in-peer-connection"
        )
    names = sum(".local " in line for line in signaling.candidates)
    hidden = f", {names} of them mDNS .local names" if names else ""
    return (
        f"{waited} (ICE {pc.iceConnectionState}): the browser sent "
        f"{len(signaling.candidates)} candidates{hidden}, and no pair worked. Is a firewall "
        "dropping UDP, or was the server started with --interface addresses the browser "
        "cannot reach?"
    )


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


async def main(host: str, port: int, interfaces: list[str] | None, connect_timeout: float) -> int:
    # Without explicit interfaces, gather on every usable one and resolve the browser's
    # <uuid>.local candidates by mDNS, as a browser would.
    options = IceTransportOptions(interfaces=interfaces, mdns=interfaces is None)
    server = EchoServer(options, connect_timeout)
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        print(
            f"cannot serve the page on {host}:{port}: {exc.strerror or exc} "
            "(--port 0 picks a free port)",
            file=sys.stderr,
        )
        return 2
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
        http_port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server.serve_http, listeners)
        print(f"browser echo page: http://{url_host}:{http_port}/", flush=True)
    return 0


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
        "--connect-timeout",
        type=float,
        default=5.0,
        help="seconds after which a page that has not connected is explained (default 5)",
    )
    args = parser.parse_args()
    status = 0
    try:
        status = trio.run(main, args.host, args.port, args.interface, args.connect_timeout)
    except* KeyboardInterrupt:
        # Ctrl-C: trio cancelled every task (and closed every connection) on the way out.
        print("stopped", flush=True)
    sys.exit(status)
