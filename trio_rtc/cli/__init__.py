"""``python -m trio_rtc`` / ``trio-rtc``: the things people try first, from a shell.

    trio-rtc relay [--host H] [--port P]          the signalling relay (WebSocket rooms)
    trio-rtc send FILE [--relay ws://H:P/room]    send a file (progress, throughput, sha256,
    trio-rtc receive [-o PATH] [--relay ...]        resumable); without --relay: copy-paste tokens
    trio-rtc chat [--relay ...] [--answer]        type lines to each other
    trio-rtc stats [--relay ...] [--answer]       getStats() of a live session, as a table
    trio-rtc bench [...]                          the benchmark (benchmarks/run.py in a checkout)
    trio-rtc trace summarize|plot FILE            read a structured trace (docs/tracing.md)

See ``docs/cli.md``. Status lines go to stderr; stdout carries tokens, chat lines and tables.
Exit status: 0 done, 1 failed (the message says why), 130 interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from .. import __version__
from .session import CommandError, ConnectionLost, Handler, Link, run_link, say, unwrap

__all__ = ["main"]

DEFAULT_PORT = 8765

EXAMPLES = """examples:
  trio-rtc relay --host 0.0.0.0                        # on a machine both sides reach
  trio-rtc receive --relay ws://relay-host:8765/room   # machine A
  trio-rtc send big.iso --relay ws://relay-host:8765/room   # machine B
  trio-rtc send big.iso    # no server: prints a token to paste into `trio-rtc receive`

each command has --help; the guide is docs/cli.md"""


def _connection_options(parser: argparse.ArgumentParser, *, answer_flag: bool) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--relay",
        metavar="URL",
        help="ws://host:port/room of a `trio-rtc relay` (both sides name the same room); "
        "without it the two sides exchange copy-paste tokens",
    )
    if answer_flag:
        group.add_argument(
            "--answer",
            action="store_true",
            help="token mode: paste the other side's offer token instead of making one",
        )
    group.add_argument(
        "--ice-server",
        metavar="URL",
        action="append",
        default=[],
        help="stun: or turn: server (repeatable; default none: host candidates only)",
    )
    group.add_argument("--ice-username", metavar="NAME", help="username for the turn: servers")
    group.add_argument("--ice-credential", metavar="SECRET", help="password for the turn: servers")
    group.add_argument(
        "--interface",
        metavar="ADDRESS",
        action="append",
        help="local address to gather candidates on (repeatable; default: every interface)",
    )
    group.add_argument(
        "--connect-timeout",
        metavar="SECONDS",
        type=float,
        default=30.0,
        help="how long the connection may take to open once both sides are known (default 30)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-rtc",
        description="WebRTC data channels from the shell: send files, chat, inspect, benchmark.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trio_rtc {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    relay = commands.add_parser("relay", help="run the signalling relay")
    relay.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    relay.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")

    send = commands.add_parser("send", help="send a file to a `trio-rtc receive`")
    send.add_argument("file", type=Path)
    send.add_argument("--no-progress", action="store_true", help="no progress bar")
    _connection_options(send, answer_flag=False)

    receive = commands.add_parser("receive", help="receive a file from a `trio-rtc send`")
    receive.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("."),
        help="directory to save into (under the sender's file name) or the file's path "
        "(default: the current directory)",
    )
    receive.add_argument("--force", action="store_true", help="replace an existing file")
    receive.add_argument("--no-progress", action="store_true", help="no progress bar")
    _connection_options(receive, answer_flag=False)

    chat = commands.add_parser("chat", help="type lines to each other")
    chat.add_argument("--name", default=None, help="shown before your lines (default: login)")
    _connection_options(chat, answer_flag=True)

    stats = commands.add_parser("stats", help="getStats() of a live session as a table")
    stats.add_argument("--interval", type=float, default=2.0, metavar="SECONDS")
    stats.add_argument("--count", type=int, default=None, help="tables to print, then exit")
    stats.add_argument("--all", action="store_true", help="every stats object, not a summary")
    _connection_options(stats, answer_flag=True)

    bench = commands.add_parser(
        "bench",
        help="benchmark: benchmarks/run.py in a checkout, else a quick measurement",
        description="In a checkout, run benchmarks/run.py with the remaining arguments "
        "(trio_rtc against aiortc). Otherwise, or with --builtin, measure this installation "
        "alone on 127.0.0.1.",
    )
    bench.add_argument("--builtin", action="store_true", help="the quick measurement")
    bench.add_argument("--mib", type=int, default=64, help="--builtin: MiB to transfer")

    # `trace`: the viewer of docs/tracing.md (no connection, no trio).
    trace = commands.add_parser("trace", help="summarize or plot a structured trace file")
    trace.add_argument("action", choices=("summarize", "plot"))
    trace.add_argument("file", help="a JSON-lines trace (or a .qlog written by trio_rtc)")
    trace.add_argument("-o", "--output", help="plot: the PNG to write (default FILE.png)")
    return parser


def _link(args: argparse.Namespace) -> Link:
    relay = args.relay
    if relay is not None and not relay.startswith(("ws://", "wss://")):
        raise CommandError(f"--relay takes a ws:// URL, not {relay!r}")
    return Link(
        role=args.command,
        relay=relay,
        offerer=not getattr(args, "answer", False) and args.command != "receive",
        ice_servers=args.ice_server,
        ice_username=args.ice_username,
        ice_credential=args.ice_credential,
        interfaces=args.interface,
        connect_timeout=args.connect_timeout,
    )


async def _relay(host: str, port: int) -> None:
    from ..signaling import serve_signaling

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_signaling, host, port)
        # stdout, flushed: scripts (and the tests) read the URL from here.
        print(f"relay listening: {server.url('<room>')}", flush=True)


def _handler(args: argparse.Namespace) -> Handler:
    if args.command == "send":
        from .transfer import FileSender

        if not args.file.is_file():
            raise CommandError(f"{args.file} is not a file")
        return FileSender(args.file, progress=not args.no_progress)
    if args.command == "receive":
        from .transfer import FileReceiver

        output = args.output
        if not output.is_dir() and not output.parent.is_dir():
            raise CommandError(f"{output.parent} is not a directory")
        return FileReceiver(output, force=args.force, progress=not args.no_progress)
    if args.command == "chat":
        from .chat import Chat

        return Chat(args.name or _login())
    from .stats import StatsWatch

    return StatsWatch(interval=args.interval, count=args.count, everything=args.all)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "me"


def _bench(args: argparse.Namespace, extra: list[str]) -> int:
    from .bench import builtin_bench, checkout_benchmark

    script = checkout_benchmark()
    if script is not None and not args.builtin:
        return subprocess.call([sys.executable, str(script), *extra])
    if extra:
        raise CommandError(f"{' '.join(extra)}: only benchmarks/run.py of a checkout takes these")
    if script is None:
        say("no benchmarks/ here (an installed package): measuring trio_rtc alone")
    trio.run(partial(builtin_bench, args.mib))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Options `bench` does not know are benchmarks/run.py's.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "trace":
        from ..trace.summarize import run_command

        return run_command(args.action, args.file, args.output)
    try:
        if args.command == "relay":
            trio.run(_relay, args.host, args.port)
            return 0
        if args.command == "bench":
            return _bench(args, [a for a in extra if a != "--"])
        link = _link(args)
        trio.run(run_link, link, _handler(args))
        return 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BaseException as exc:
        inner = unwrap(exc)
        if isinstance(inner, KeyboardInterrupt):
            say("interrupted")
            return 130
        if isinstance(inner, ConnectionLost):
            resume = (
                " (run both sides again to resume)" if args.command in ("send", "receive") else ""
            )
            say(f"error: connection lost: {inner}{resume}")
            return 1
        if isinstance(inner, CommandError | OSError):
            say(f"error: {inner}")
            return 1
        raise
