"""A small WebSocket signalling server on trio-websocket: peers that connect to the same path
(``ws://host:port/<room>``) receive each other's messages.

It relays text messages (JSON, at most :data:`MAX_MESSAGE_SIZE` bytes) unchanged to every other
peer of the room. Messages sent while a peer is alone in its room are kept (at most
:data:`MAX_QUEUED` of them) and delivered to the next peer that joins, so the first peer can send
its offer before the second one connected. A peer that leaves before anyone joined takes its kept
messages with it: they were meant for a conversation that never happened, and a later peer must
not mistake them for a live one. Rooms hold at most :data:`MAX_PEERS` peers.
"""

from __future__ import annotations

import logging

import attrs
import trio
import trio_websocket

__all__ = ["MAX_MESSAGE_SIZE", "MAX_PEERS", "MAX_QUEUED", "SignalingServer", "serve_signaling"]

logger = logging.getLogger("trio_rtc.signaling")

MAX_MESSAGE_SIZE = 256 * 1024
MAX_PEERS = 8
MAX_QUEUED = 256
MAX_ROOMS = 1024


@attrs.define(eq=False)
class _Room:
    peers: list[trio_websocket.WebSocketConnection] = attrs.Factory(list)
    # Messages sent while their sender was alone, with that sender.
    queued: list[tuple[trio_websocket.WebSocketConnection, str]] = attrs.Factory(list)


@attrs.define(eq=False)
class SignalingServer:
    """What :func:`serve_signaling` hands to ``task_status``: where it listens."""

    host: str
    port: int
    rooms: dict[str, _Room] = attrs.Factory(dict)

    def url(self, room: str = "room") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/{room}"

    async def handle(self, request: trio_websocket.WebSocketRequest) -> None:
        room_name = request.path.lstrip("/") or "default"
        room = self.rooms.get(room_name)
        if room is None:
            if len(self.rooms) >= MAX_ROOMS:
                await request.reject(503, body=b"too many rooms")
                return
            room = self.rooms[room_name] = _Room()
        if len(room.peers) >= MAX_PEERS:
            await request.reject(409, body=b"room is full")
            return
        connection = await request.accept()
        room.peers.append(connection)
        try:
            queued, room.queued = room.queued, []
            for _sender, text in queued:
                await connection.send_message(text)
            while True:
                received = await connection.get_message()
                if not isinstance(received, str):
                    continue  # the protocol is JSON text; binary frames are dropped
                message = received
                others = [peer for peer in room.peers if peer is not connection]
                if not others:
                    if len(room.queued) < MAX_QUEUED:
                        room.queued.append((connection, message))
                    continue
                for peer in others:
                    try:
                        await peer.send_message(message)
                    except trio_websocket.ConnectionClosed:
                        pass
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            room.peers.remove(connection)
            room.queued = [item for item in room.queued if item[0] is not connection]
            if not room.peers and not room.queued:
                self.rooms.pop(room_name, None)


async def serve_signaling(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[SignalingServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``await nursery.start(serve_signaling)`` gives the
    :class:`SignalingServer` (its ``port`` is the one bound when ``port`` is 0)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    address = listeners[0].socket.getsockname()
    server = SignalingServer(host=str(address[0]), port=int(address[1]))
    websocket_server = trio_websocket.WebSocketServer(
        server.handle, listeners, max_message_size=MAX_MESSAGE_SIZE
    )
    logger.info("signalling server on %s", server.url(""))
    task_status.started(server)
    await websocket_server.run()
