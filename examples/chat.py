"""Data channel chat between two processes, signalled through trio_rtc's WebSocket relay.

Terminal 1:  .venv/bin/python examples/chat.py serve --port 8765
Terminal 2:  .venv/bin/python examples/chat.py join ws://127.0.0.1:8765/room --name alice
Terminal 3:  .venv/bin/python examples/chat.py join ws://127.0.0.1:8765/room --name bob

Type a line and press Enter to send it; the other side prints it. Both peers create the same
negotiated data channel (id 0) and run the W3C "perfect negotiation" pattern
(:func:`trio_rtc.signaling.negotiate_over`), which needs one polite and one impolite peer. The
roles are decided automatically: each peer first sends ``{"hello": <random id>, "polite":
null}`` through the relay, and the one with the larger id is polite. So it does not matter who
joins first, or whether both join at once. ``--polite`` forces this side's role (the other one
then takes the opposite).

It says what it is doing: "waiting for another peer" while alone in the room, one line and exit
status 2 when the relay cannot be reached, one line and exit status 1 when a peer was found but no
connection came up within ``--connect-timeout`` seconds. ``--send TEXT`` (repeatable) and
``--expect N`` make a scripted run that sends its lines once the channel opens and exits after
receiving N messages.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from functools import partial
from typing import Any

import trio

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.signaling import (
    SignalingChannel,
    SignalingError,
    negotiate_over,
    open_signaling,
    serve_signaling,
)

#: How long a peer stays quiet about waiting alone in the room (a peer already there answers
#: within a few milliseconds).
QUIET_WAIT = 0.5


class ChatError(Exception):
    """Something the user should read in one line; the program exits with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


async def serve(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        try:
            server = await nursery.start(serve_signaling, host, port)
        except OSError as exc:
            raise ChatError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from exc
        print(f"signalling relay at {server.url('<room>')}", flush=True)


class Greeted(SignalingChannel):
    """The relay after the greeting, as :func:`negotiate_over` reads it: first the messages that
    arrived before the peer's hello, then the rest. Hellos of further peers are reported and
    skipped: this chat is for two."""

    def __init__(self, channel: SignalingChannel, name: str, peer_id: str) -> None:
        super().__init__(channel.connection)
        self.name = name
        self.peer_id = peer_id
        self.early: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        while True:
            message = self.early.pop(0) if self.early else await super().receive()
            if "hello" not in message:
                return message
            if message["hello"] != self.peer_id:
                print(f"[{self.name}] another peer joined the room; ignoring it", flush=True)


async def greet(
    signaling: SignalingChannel, url: str, name: str, polite: bool | None
) -> tuple[Greeted, bool]:
    """Exchange hellos with the other peer; return the channel to negotiate over and whether
    this side is polite."""
    our_id = secrets.token_hex(8)
    await signaling.send({"hello": our_id, "polite": polite})
    early: list[dict[str, Any]] = []

    async def next_hello() -> dict[str, Any]:
        while True:
            message = await signaling.receive()
            if "hello" in message:
                return message
            early.append(message)  # a peer that skipped the greeting; kept for negotiate_over

    hello: dict[str, Any] | None = None
    with trio.move_on_after(QUIET_WAIT):
        hello = await next_hello()
    if hello is None:
        print(f"[{name}] waiting for another peer at {url} …", flush=True)
        hello = await next_hello()
    peer_id, peer_polite = hello.get("hello"), hello.get("polite")
    if not isinstance(peer_id, str) or not isinstance(peer_polite, bool | None):
        raise ChatError(f"[{name}] the peer's greeting is not understood: {hello!r}")
    if polite is None:
        if peer_polite is not None:
            polite = not peer_polite
        elif peer_id == our_id:
            raise ChatError(f"[{name}] the peer has our id; start again")
        else:
            polite = our_id > peer_id
    elif peer_polite == polite:
        role = "--polite" if polite else "the same role"
        raise ChatError(f"[{name}] both peers were started with {role}; restart one without it")
    greeted = Greeted(signaling, name, peer_id)
    greeted.early = early
    return greeted, polite


async def type_lines(channel: RTCDataChannel, name: str) -> None:
    stdin = trio.wrap_file(sys.stdin)
    async for line in stdin:
        await channel.send_message(f"{name}: {line.rstrip()}")


async def join(
    url: str,
    name: str,
    polite: bool | None,
    send: list[str],
    expect: int | None,
    interfaces: list[str] | None,
    connect_timeout: float,
) -> None:
    options = IceTransportOptions(interfaces=interfaces, mdns=interfaces is None)
    async with open_signaling(url) as signaling:
        greeted, polite = await greet(signaling, url, name, polite)
        side = "polite" if polite else "impolite"
        print(f"[{name}] found a peer; this side is the {side} one", flush=True)
        async with (
            RTCPeerConnection(ice_options=options) as pc,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(partial(negotiate_over, pc, greeted, polite=polite))
            channel = pc.createDataChannel("chat", negotiated=True, id=0)
            start = trio.current_time()
            with trio.move_on_after(connect_timeout) as slow:
                await channel.wait_open()
            if slow.cancelled_caught:
                nursery.cancel_scope.cancel()
                raise ChatError(
                    f"[{name}] the peer answered through the relay, but no connection came up "
                    f"within {connect_timeout:g} s (ICE {pc.iceConnectionState}): the two "
                    "machines cannot reach each other over UDP (firewall, different networks "
                    "without a TURN server?)"
                )
            elapsed = (trio.current_time() - start) * 1000
            print(f"[{name}] connected in {elapsed:.0f} ms", flush=True)
            for text in send:
                await channel.send_message(f"{name}: {text}")
            if expect is None:
                nursery.start_soon(type_lines, channel, name)
            received = 0
            async for message in channel:
                print(message, flush=True)
                received += 1
                if expect is not None and received >= expect:
                    break
            # Give the last messages time to be acknowledged before the connection closes.
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()


def leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions of a (nested) group, in order."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the signalling relay")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8765)
    join_parser = commands.add_parser("join", help="chat with whoever joins the same room")
    join_parser.add_argument("url", help="ws://host:port/room")
    join_parser.add_argument("--name", default="me")
    join_parser.add_argument(
        "--polite",
        action="store_const",
        const=True,
        help="force this side polite (normally decided automatically)",
    )
    join_parser.add_argument("--send", action="append", default=[])
    join_parser.add_argument("--expect", type=int)
    join_parser.add_argument(
        "--interface",
        action="append",
        help="local address to gather candidates on (repeatable; default: every interface)",
    )
    join_parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the connection once a peer is found (default 10)",
    )
    args = parser.parse_args()
    # One line for what the user should fix, no traceback (``return`` is not allowed in except*).
    status = 0
    try:
        if args.command == "serve":
            trio.run(serve, args.host, args.port)
        else:
            trio.run(
                join,
                args.url,
                args.name,
                args.polite,
                args.send,
                args.expect,
                args.interface,
                args.connect_timeout,
            )
    except* SignalingError as unreachable:
        for error in leaves(unreachable):
            print(f"chat: {error}", file=sys.stderr)
        status = 2
    except* ChatError as failed:
        for error in leaves(failed):
            print(error, file=sys.stderr)
            status = max(status, error.status if isinstance(error, ChatError) else 1)
    except* KeyboardInterrupt:
        status = 130
    return status


if __name__ == "__main__":
    sys.exit(main())
