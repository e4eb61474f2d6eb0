"""An aioice ICE agent run as a subprocess and driven by JSON lines on stdin/stdout.

aioice is asyncio-based, so the trio tests cannot host it in-process; they start this script with
the venv's python (see ``aioice_harness.py``) and talk to it one JSON object per line. The protocol
is documented in ``docs/interop.md``; in short:

peer → harness (stdout)
    ``{"type": "local", "ufrag", "pwd", "candidates": ["candidate:…"], "ice_lite": false}``
    ``{"type": "connected", "selected": {"local": "candidate:…", "remote": "candidate:…"}}``
    ``{"type": "failed", "error": "…"}``
    ``{"type": "ignored", "candidate": "…", "reason": "…"}`` (a remote candidate it refused)
    ``{"type": "received", "count": n, "bytes": n, "recent": ["<hex>", …]}`` (answer to ``stats``)
    ``{"type": "error", "error": "…"}`` (a command it could not carry out)
    ``{"type": "closed"}`` then exit status 0

harness → peer (stdin)
    ``{"type": "remote", "ufrag", "pwd", "candidates": [...], "ice_lite": false,
    "end_of_candidates": true}``
    ``{"type": "candidate", "candidate": "candidate:…"}`` and ``{"type": "end-of-candidates"}``
    ``{"type": "send", "data": "<hex>"}``: send one datagram to the remote peer
    ``{"type": "stats"}``: print a ``received`` line
    ``{"type": "close"}`` (end of stdin means the same)

Once connected, every datagram received is counted and, when ``echo`` is on (the default), sent
back unchanged on the same connection.

Safety: this script only ever binds loopback sockets (aioice's address enumeration is replaced) and
refuses remote candidates, STUN and TURN servers that are not loopback IP literals, so it can never
send to another host nor start aioice's mDNS resolver (multicast).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import sys
from collections import deque
from typing import Any

import aioice
import aioice.ice

# How many recent payloads a ``received`` line reports, so tests can check echoed content.
RECENT_PAYLOADS = 16
# A line on stdin longer than this is a harness bug; refuse it rather than buffer without bound.
MAX_LINE = 1 << 20


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def candidate_to_line(candidate: aioice.Candidate) -> str:
    # RFC 8839 section 5.1: the attribute value is "candidate:" followed by the fields.
    return "candidate:" + candidate.to_sdp()


def candidate_from_line(line: str) -> aioice.Candidate:
    text = line.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    return aioice.Candidate.from_sdp(text)


def loopback_server(value: Any, what: str) -> tuple[str, int] | None:
    if value is None:
        return None
    host, port = str(value[0]), int(value[1])
    if not is_loopback_literal(host):
        raise SystemExit(f"aioice_peer: {what} {host!r} is not a loopback IP literal")
    return (host, port)


class Peer:
    def __init__(self, config: dict[str, Any]) -> None:
        family = config.get("family", "ipv4")
        if family not in ("ipv4", "ipv6"):
            raise SystemExit(f"aioice_peer: family must be ipv4 or ipv6, not {family!r}")
        self.loopback = "127.0.0.1" if family == "ipv4" else "::1"
        # aioice leaves out 127.0.0.1 and ::1 whenever another interface exists; replace its
        # enumeration so that it gathers exactly one loopback host candidate per component.
        loopback = self.loopback
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [loopback]

        role = config.get("role", "controlled")
        if role not in ("controlling", "controlled"):
            raise SystemExit(f"aioice_peer: role must be controlling or controlled, not {role!r}")
        policy = config.get("transport_policy", "all")
        self.connection = aioice.Connection(
            ice_controlling=role == "controlling",
            components=int(config.get("components", 1)),
            stun_server=loopback_server(config.get("stun_server"), "stun_server"),
            turn_server=loopback_server(config.get("turn_server"), "turn_server"),
            turn_username=config.get("turn_username"),
            turn_password=config.get("turn_password"),
            use_ipv4=family == "ipv4",
            use_ipv6=family == "ipv6",
            transport_policy=(
                aioice.TransportPolicy.RELAY if policy == "relay" else aioice.TransportPolicy.ALL
            ),
            local_username=config.get("ufrag"),
            local_password=config.get("pwd"),
        )
        self.echo = bool(config.get("echo", True))
        self.connect_task: asyncio.Task[None] | None = None
        self.received_count = 0
        self.received_bytes = 0
        self.recent: deque[bytes] = deque(maxlen=RECENT_PAYLOADS)

    async def add_remote_candidate(self, line: str) -> None:
        try:
            candidate = candidate_from_line(line)
        except (ValueError, IndexError) as exc:
            emit({"type": "ignored", "candidate": line, "reason": f"unparsable: {exc}"})
            return
        if not is_loopback_literal(candidate.host):
            # Never resolve .local names (multicast) nor send to another host.
            emit({"type": "ignored", "candidate": line, "reason": "not a loopback IP literal"})
            return
        await self.connection.add_remote_candidate(candidate)

    async def run_connection(self) -> None:
        try:
            await self.connection.connect()
        except (ConnectionError, ValueError) as exc:
            emit({"type": "failed", "error": str(exc) or type(exc).__name__})
            return
        # The nominated pair is only reachable through aioice's private state.
        pair = self.connection._nominated.get(1)
        selected = {}
        if pair is not None:
            selected = {
                "local": candidate_to_line(pair.local_candidate),
                "remote": candidate_to_line(pair.remote_candidate),
            }
        emit({"type": "connected", "selected": selected})
        while True:
            try:
                data, component = await self.connection.recvfrom()
            except ConnectionError:
                return
            self.received_count += 1
            self.received_bytes += len(data)
            self.recent.append(data)
            if self.echo:
                await self.connection.sendto(data, component)

    async def handle(self, message: dict[str, Any]) -> bool:
        """Carry out one command; return False when the peer must close."""
        kind = message.get("type")
        if kind == "remote":
            if self.connect_task is not None:
                emit({"type": "error", "error": "remote description already set"})
                return True
            self.connection.remote_username = str(message["ufrag"])
            self.connection.remote_password = str(message["pwd"])
            self.connection.remote_is_lite = bool(message.get("ice_lite", False))
            for line in message.get("candidates", []):
                await self.add_remote_candidate(str(line))
            if message.get("end_of_candidates", True):
                await self.connection.add_remote_candidate(None)
            self.connect_task = asyncio.create_task(self.run_connection())
        elif kind == "candidate":
            await self.add_remote_candidate(str(message["candidate"]))
        elif kind == "end-of-candidates":
            await self.connection.add_remote_candidate(None)
        elif kind == "send":
            await self.connection.send(bytes.fromhex(str(message["data"])))
        elif kind == "stats":
            emit(
                {
                    "type": "received",
                    "count": self.received_count,
                    "bytes": self.received_bytes,
                    "recent": [payload.hex() for payload in self.recent],
                }
            )
        elif kind == "close":
            return False
        else:
            emit({"type": "error", "error": f"unknown command {kind!r}"})
        return True

    async def run(self) -> None:
        await self.connection.gather_candidates()
        emit(
            {
                "type": "local",
                "ufrag": self.connection.local_username,
                "pwd": self.connection.local_password,
                "candidates": [candidate_to_line(c) for c in self.connection.local_candidates],
                "ice_lite": False,
            }
        )
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                    keep_going = await self.handle(message)
                except (ValueError, KeyError, TypeError, ConnectionError) as exc:
                    emit({"type": "error", "error": f"{type(exc).__name__}: {exc}"})
                    continue
                if not keep_going:
                    break
        finally:
            await self.connection.close()
            if self.connect_task is not None:
                self.connect_task.cancel()
                await asyncio.gather(self.connect_task, return_exceptions=True)
        emit({"type": "closed"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="JSON object: role, family, echo, stun_server, …")
    args = parser.parse_args()
    config = json.loads(args.config)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if config.get("debug") else logging.INFO,
        format="%(relativeCreated)6.0fms %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(Peer(config).run())


if __name__ == "__main__":
    main()
