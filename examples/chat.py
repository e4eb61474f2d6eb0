"""Data channel chat between two processes, signalled through trio_rtc's WebSocket server.

Terminal 1:  .venv/bin/python examples/chat.py serve --port 8765
Terminal 2:  .venv/bin/python examples/chat.py join ws://127.0.0.1:8765/room --name alice
Terminal 3:  .venv/bin/python examples/chat.py join ws://127.0.0.1:8765/room --name bob --polite

Type a line and press Enter to send it; the other side prints it. Both peers create the same
negotiated data channel (id 0) and run the W3C "perfect negotiation" pattern
(:func:`trio_rtc.signaling.negotiate_over`), so it does not matter who joins first; exactly one
of them must be ``--polite``. ``--send TEXT`` (repeatable) and ``--expect N`` make a scripted run
that sends its lines once the channel opens and exits after receiving N messages.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import trio

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.signaling import negotiate_over, open_signaling, serve_signaling


async def serve(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_signaling, host, port)
        print(f"signalling server at {server.url('<room>')}", flush=True)


async def type_lines(channel: RTCDataChannel, name: str) -> None:
    stdin = trio.wrap_file(sys.stdin)
    async for line in stdin:
        await channel.send_message(f"{name}: {line.rstrip()}")


async def join(
    url: str,
    name: str,
    polite: bool,
    send: list[str],
    expect: int | None,
    interfaces: list[str] | None,
) -> None:
    options = IceTransportOptions(interfaces=interfaces, mdns=interfaces is None)
    async with (
        open_signaling(url) as signaling,
        RTCPeerConnection(ice_options=options) as pc,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(partial(negotiate_over, pc, signaling, polite=polite))
        channel = pc.createDataChannel("chat", negotiated=True, id=0)
        start = trio.current_time()
        await channel.wait_open()
        print(f"[{name}] connected in {(trio.current_time() - start) * 1000:.0f} ms", flush=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the signalling server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8765)
    join_parser = commands.add_parser("join", help="chat with whoever joins the same room")
    join_parser.add_argument("url", help="ws://host:port/room")
    join_parser.add_argument("--name", default="me")
    join_parser.add_argument("--polite", action="store_true")
    join_parser.add_argument("--send", action="append", default=[])
    join_parser.add_argument("--expect", type=int)
    join_parser.add_argument(
        "--interface",
        action="append",
        help="local address to gather candidates on (repeatable; default: every interface)",
    )
    args = parser.parse_args()
    if args.command == "serve":
        trio.run(serve, args.host, args.port)
    else:
        trio.run(join, args.url, args.name, args.polite, args.send, args.expect, args.interface)


if __name__ == "__main__":
    main()
