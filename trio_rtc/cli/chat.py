"""``chat``: lines typed on stdin go to the peer; the peer's lines are printed on stdout."""

from __future__ import annotations

import trio

from ..datachannel import RTCDataChannel
from ..pc import RTCPeerConnection
from .session import printable, read_lines, say

__all__ = ["Chat"]

#: The longest line sent (longer ones are cut; every browser takes messages of this size).
MAX_LINE = 64 * 1024


class Chat:
    """The ``chat`` side. It ends when stdin ends (Ctrl-D) or the peer leaves; a connection
    that fails instead is lost (over a relay, the chat waits for the peer to come back)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
        say(f"connected as {self.name}; type a line and press Enter (Ctrl-D leaves)")
        async with trio.open_nursery() as nursery:

            async def type_lines() -> None:
                stdin = await read_lines()
                async for line in stdin:
                    await channel.send_message(f"{self.name}: {line.rstrip()}"[:MAX_LINE])
                nursery.cancel_scope.cancel()

            nursery.start_soon(type_lines)
            async for message in channel:
                if isinstance(message, bytes):
                    message = message.decode(errors="replace")
                print(printable(message, MAX_LINE), flush=True)
            # The channel ended without a failure: the peer closed it (it left the chat).
            say("the peer left")
            nursery.cancel_scope.cancel()
