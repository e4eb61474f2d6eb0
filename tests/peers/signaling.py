"""The control protocol of the WebRTC test peers, and the servers a browser page talks to.

Two peers nobody here wrote — headless Chromium (``chromium.py``, the page ``web/peer.js``) and
aiortc (``aiortc_pc_peer.py``, a subprocess) — obey the same JSON commands, so a test drives either
through one interface, :class:`PeerControl`::

    offer = await a.create_offer()          # createOffer + setLocalDescription
    await b.set_remote(offer)
    answer = await b.create_answer()
    await a.set_remote(answer)
    async for candidate in a.candidates():  # candidate.toJSON() dicts, None at the end
        await b.add_candidate(candidate)

Descriptions are ``{"type", "sdp"}`` dicts and candidates are the dicts a browser's
``candidate.toJSON()`` gives, so anything with those shapes (trio_rtc's RTCPeerConnection under
test included) can be the other side. Data channels are addressed by label.

The servers: :func:`serve_pages` serves the files in ``web/`` over HTTP on 127.0.0.1 and accepts
the page's control WebSocket (trio-websocket), each page identified by a random token in its URL.
Both listening sockets come from a factory, so the browser's harness can create them inside the
browser's private network namespace.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import trio_websocket

WEB_ROOT = Path(__file__).with_name("web")
DEFAULT_TIMEOUT = 15.0
# What the test keeps of each event in failure notes.
NOTE_CHARS = 400
MAX_REQUEST_HEAD = 8192
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

Description = dict[str, str]
CandidateInit = dict[str, Any]


class PeerError(Exception):
    """A test peer refused a command, went away, or did not answer in time."""


class PeerControl:
    """The test's side of one remote-controlled RTCPeerConnection (a browser page or aiortc).

    Subclasses provide the transport (``_send_raw``) and feed every event the peer says to
    ``_record``; ``_transport_ended`` when it can say no more. Every wait gives up after
    ``timeout`` seconds with PeerError, whose note carries the whole conversation.
    """

    def __init__(self, name: str, config: Mapping[str, Any], *, timeout: float) -> None:
        self.name = name
        self.config = dict(config)
        self.timeout = timeout
        self.messages: list[dict[str, Any]] = []
        self._changed = trio.Event()
        self._ended = False
        self._next_id = 0
        # Relays and the test's own calls send concurrently; one message at a time on the wire.
        self._send_lock = trio.Lock()
        # Per channel label: how far ``receive`` has read the message events.
        self._read_upto: dict[str, int] = {}

    # -- transport side ----------------------------------------------------------------------

    async def _send_raw(self, message: dict[str, Any]) -> None:
        raise PeerError(f"{type(self).__name__} has no transport")

    def _record(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._changed.set()
        self._changed = trio.Event()

    def _transport_ended(self) -> None:
        self._ended = True
        self._changed.set()
        self._changed = trio.Event()

    def debug_text(self) -> str:
        lines = [f"{self.name} config: {json.dumps(self.config)}"]
        for message in self.messages:
            text = json.dumps(message)
            if len(text) > NOTE_CHARS:
                text = text[:NOTE_CHARS] + f"… ({len(text)} chars)"
            lines.append(f"  < {text}")
        return "\n".join(lines)

    # -- waiting -----------------------------------------------------------------------------

    async def wait_message(
        self, predicate: Callable[[dict[str, Any]], bool], *, start: int = 0
    ) -> tuple[int, dict[str, Any]]:
        """The first event at index ``start`` or later that matches, and its index."""
        index = start
        with trio.move_on_after(self.timeout):
            while True:
                while index < len(self.messages):
                    message = self.messages[index]
                    if predicate(message):
                        return index, message
                    index += 1
                if self._ended:
                    raise PeerError(f"{self.name} went away without the expected message")
                await self._changed.wait()
        raise PeerError(f"{self.name}: no expected message within {self.timeout} s")

    async def request(self, kind: str, **params: Any) -> Any:
        """Send one command and return the value of its result (PeerError if it failed)."""
        self._next_id += 1
        request_id = self._next_id
        start = len(self.messages)
        async with self._send_lock:
            await self._send_raw({"type": kind, "id": request_id, **params})
        _, answer = await self.wait_message(
            lambda m: m.get("id") == request_id and m["type"] in ("result", "error"), start=start
        )
        if answer["type"] == "error":
            raise PeerError(f"{self.name}: {kind} failed: {answer.get('error')}")
        return answer.get("value")

    # -- signaling ---------------------------------------------------------------------------

    async def create_offer(self) -> Description:
        """createOffer + setLocalDescription; the local description (complete with candidates,
        after gathering, when the peer was configured with ``trickle=False``)."""
        return dict(await self.request("create_offer"))

    async def create_answer(self) -> Description:
        return dict(await self.request("create_answer"))

    async def set_remote(self, description: Mapping[str, str]) -> None:
        await self.request(
            "set_remote", description={"type": description["type"], "sdp": description["sdp"]}
        )

    async def add_candidate(self, candidate: Mapping[str, Any] | None) -> None:
        """addIceCandidate with a ``candidate.toJSON()`` dict; None is end-of-candidates."""
        await self.request("add_candidate", candidate=dict(candidate) if candidate else None)

    def candidates(self) -> CandidateStream:
        """Every local candidate (past and future) as a dict, then None (end-of-candidates)."""
        return CandidateStream(self)

    async def states(self) -> dict[str, str]:
        return dict(await self.request("states"))

    async def wait_state(self, value: str, *, kind: str = "connectionState") -> None:
        """Wait until ``kind`` (connectionState, iceConnectionState, …) reaches ``value``;
        PeerError if the connection fails or closes first."""
        # Events from before the snapshot are searched too: one that arrives between the
        # snapshot's reply and the search would otherwise be missed.
        start = len(self.messages)
        current = await self.states()
        if current[kind] == value:
            return

        def reached(m: dict[str, Any]) -> bool:
            if m["type"] != "state":
                return False
            if m[kind] != value and m["connectionState"] in ("failed", "closed"):
                raise PeerError(f"{self.name}: connection {m['connectionState']} before {value}")
            return bool(m[kind] == value)

        await self.wait_message(reached, start=start)

    # -- data channels -----------------------------------------------------------------------

    async def create_channel(self, label: str, *, echo: bool = False, **options: Any) -> None:
        """createDataChannel(label, options); ``echo`` sends every message received back."""
        await self.request("create_channel", label=label, echo=echo, options=options)

    async def wait_channel(self, label: str) -> dict[str, Any]:
        """Wait until the channel ``label`` (created here or by the remote) is open."""
        _, message = await self.wait_message(lambda m: m["type"] == "open" and m["label"] == label)
        return message

    async def wait_channel_closed(self, label: str) -> None:
        await self.wait_message(lambda m: m["type"] == "close" and m["label"] == label)

    async def send(self, label: str, data: str | bytes) -> None:
        if isinstance(data, str):
            await self.request("send", label=label, text=data)
        else:
            await self.request("send", label=label, binary=base64.b64encode(data).decode())

    async def receive(self, label: str) -> str | bytes:
        """The next message the channel received (channels that echo do not report)."""
        index, message = await self.wait_message(
            lambda m: m["type"] == "message" and m["label"] == label,
            start=self._read_upto.get(label, 0),
        )
        self._read_upto[label] = index + 1
        if "text" in message:
            return str(message["text"])
        return base64.b64decode(message["binary"])

    async def set_echo(self, label: str, echo: bool) -> None:
        await self.request("set_echo", label=label, echo=echo)

    async def close_channel(self, label: str) -> None:
        await self.request("close_channel", label=label)

    async def expect_bytes(self, label: str, nbytes: int) -> None:
        """Make the channel swallow the next ``nbytes`` binary bytes and hash them."""
        await self.request("expect_bytes", label=label, nbytes=nbytes)

    async def transfer_sha256(self, label: str, nbytes: int, *, chunk_size: int = 16384) -> str:
        """Send ``nbytes`` random bytes in ``chunk_size`` messages; their SHA-256 (hex)."""
        value = await self.request("send_bytes", label=label, nbytes=nbytes, chunk=chunk_size)
        return str(value["sha256"])

    async def received_sha256(self, label: str) -> str:
        """After ``expect_bytes``: wait until all bytes arrived; their SHA-256 (hex)."""
        _, message = await self.wait_message(
            lambda m: m["type"] == "transfer" and m["label"] == label
        )
        return str(message["sha256"])

    async def close(self) -> None:
        """RTCPeerConnection.close()."""
        await self.request("close")

    def state_history(self, kind: str = "connectionState") -> list[str]:
        """The values ``kind`` went through, in order, as the peer's events reported them."""
        history: list[str] = []
        for message in self.messages:
            if message["type"] == "state" and (not history or history[-1] != message[kind]):
                history.append(str(message[kind]))
        return history

    def ignored(self) -> list[dict[str, Any]]:
        """Remote candidates the peer refused (aiortc: outside the allowed networks …)."""
        return [m for m in self.messages if m["type"] == "ignored"]

    def logs(self) -> list[str]:
        return [str(m.get("text")) for m in self.messages if m["type"] == "log"]


class CandidateStream:
    """``async for candidate in peer.candidates()``: every local candidate, ending after None."""

    def __init__(self, peer: PeerControl) -> None:
        self._peer = peer
        self._index = 0
        self._done = False

    def __aiter__(self) -> CandidateStream:
        return self

    async def __anext__(self) -> CandidateInit | None:
        if self._done:
            raise StopAsyncIteration
        index, message = await self._peer.wait_message(
            lambda m: m["type"] == "candidate", start=self._index
        )
        self._index = index + 1
        candidate = message["candidate"]
        if candidate is None:
            self._done = True
            return None
        return dict(candidate)


async def relay_candidates(source: PeerControl, sink: PeerControl) -> int:
    """Give ``sink`` every candidate of ``source``, end-of-candidates included; how many."""
    count = 0
    async for candidate in source.candidates():
        await sink.add_candidate(candidate)
        count += candidate is not None
    return count


async def connect_peers(offerer: PeerControl, answerer: PeerControl, *, trickle: bool) -> None:
    """Offer/answer between two test peers, trickling candidates or not, until both are
    connected and (with trickle) every candidate was delivered."""
    offer = await offerer.create_offer()
    await answerer.set_remote(offer)
    answer = await answerer.create_answer()
    try:
        async with trio.open_nursery() as nursery:
            if trickle:
                # Only now: a candidate must not arrive before its remote description.
                nursery.start_soon(relay_candidates, offerer, answerer)
            await offerer.set_remote(answer)
            if trickle:
                nursery.start_soon(relay_candidates, answerer, offerer)
            await offerer.wait_state("connected")
            await answerer.wait_state("connected")
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def open_service_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for background tasks (readers, servers) that are cancelled when the block ends.

    What the block raises comes out as itself, not wrapped in an exception group, so
    ``pytest.raises`` and ``except`` around a harness block work as written.
    """
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if body_error is not None and list(group.exceptions) == [body_error]:
            raise body_error from None
        raise


# -- the page server ---------------------------------------------------------------------------


def listen_loopback() -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (an ephemeral port), in this process's namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@dataclass
class PageServer:
    """Serves ``root`` over HTTP and accepts control WebSockets at ``/control/<token>``."""

    http_port: int
    ws_port: int
    _waiting: dict[str, tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]] = field(
        default_factory=dict
    )

    def new_page(self, page: str = "peer.html") -> tuple[str, str]:
        """A fresh token, and the URL that makes a page connect back with it."""
        token = secrets.token_hex(8)
        self._waiting[token] = trio.open_memory_channel[Any](1)
        ws_url = f"ws://127.0.0.1:{self.ws_port}/control/{token}"
        return token, f"http://127.0.0.1:{self.http_port}/{page}?ws={ws_url}"

    async def wait_page(self, token: str) -> tuple[trio_websocket.WebSocketConnection, trio.Event]:
        """Wait for the page with ``token`` to connect. The connection stays open until the
        returned event is set (or the server stops)."""
        send, receive = self._waiting[token]
        try:
            connection, done = await receive.receive()
        finally:
            del self._waiting[token]
            send.close()
            receive.close()
        return connection, done

    async def _handle_ws(self, request: trio_websocket.WebSocketRequest) -> None:
        parts = request.path.split("/")
        waiting = self._waiting.get(parts[-1]) if len(parts) == 3 else None
        if waiting is None or parts[1] != "control":
            await request.reject(404)
            return
        connection = await request.accept()
        done = trio.Event()
        try:
            waiting[0].send_nowait((connection, done))
        except (trio.WouldBlock, trio.ClosedResourceError):
            await connection.aclose()
            return
        # The connection closes when this handler returns: keep it for the test's block.
        await done.wait()
        await connection.aclose()


def _load_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}


async def _serve_http(files: Mapping[str, bytes], stream: trio.SocketStream) -> None:
    """Answer one GET for one of ``files`` (by plain name); anything else gets 404."""
    async with stream:
        head = b""
        with trio.move_on_after(5):
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        body, status, content_type = b"not found\n", "404 Not Found", "text/plain"
        if len(request_line) == 3 and request_line[0] == "GET":
            name = request_line[1].split("?", 1)[0].lstrip("/")
            if name in files:
                body = files[name]
                status = "200 OK"
                content_type = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        header = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        try:
            await stream.send_all(header.encode() + body)
        except trio.BrokenResourceError:
            pass


@asynccontextmanager
async def serve_pages(
    listen: Callable[[], socket.socket] = listen_loopback, root: Path = WEB_ROOT
) -> AsyncIterator[PageServer]:
    """Serve ``root`` and the control WebSockets for the duration of the block.

    ``listen`` makes a listening socket bound to 127.0.0.1; it is called (in a thread) twice.
    """
    files = await trio.to_thread.run_sync(_load_files, root)
    http_sock = await trio.to_thread.run_sync(listen)
    ws_sock = await trio.to_thread.run_sync(listen)
    http_listener = trio.SocketListener(trio.socket.from_stdlib_socket(http_sock))
    ws_listener = trio.SocketListener(trio.socket.from_stdlib_socket(ws_sock))
    server = PageServer(http_port=http_sock.getsockname()[1], ws_port=ws_sock.getsockname()[1])
    async with open_service_nursery() as nursery:

        async def handle_http(stream: trio.SocketStream) -> None:
            await _serve_http(files, stream)

        nursery.start_soon(trio.serve_listeners, handle_http, [http_listener])
        ws_server = trio_websocket.WebSocketServer(
            server._handle_ws, [ws_listener], max_message_size=16 << 20
        )
        nursery.start_soon(ws_server.run)
        yield server
