"""Server mode under load: N peers on one shared UDP port, against one socket per pc.

A server process holds N answering trio_rtc peer connections, either all on one shared port
(``RTCConfiguration(shared_udp=server)``, docs/server-mode.md) or each with sockets of its own
(the default). A second process (started by this script) holds the N offering trio_rtc pcs, each
with a data channel that the server side echoes. Signalling runs over one local TCP connection
(a JSON line per offer and per answer). Once every channel is open, each client channel keeps
``--window`` 64-byte messages in flight for ``--seconds``; the script prints the aggregate echoed
messages per second and the CPU time each process spent in that window.

    python benchmarks/bench_shared_port.py [--peers 1000] [--seconds 10] [--mode both]

Both processes run on the same machine, so the CPU they use is shared: read the ratios between
the two modes of one run, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from trio_rtc import RTCConfiguration, RTCDataChannel, RTCPeerConnection
from trio_rtc.ice.mux import SharedUdp, open_shared_udp
from trio_rtc.ice.transport import IceTransportOptions
from trio_rtc.sessiondescription import RTCSessionDescription

HOST = "127.0.0.1"
OPTIONS = IceTransportOptions(interfaces=[HOST], mdns=False)
MESSAGE = b"x" * 64
#: --freeze-gc: move every object alive after setup out of the collector's sight (gc.freeze).
FREEZE_GC = False
#: Offers in flight at once (each costs a DTLS handshake on both sides).
SETUP_CONCURRENCY = 32


class Lines:
    """JSON lines over a trio stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.lock = trio.Lock()

    async def send(self, value: dict[str, Any]) -> None:
        async with self.lock:
            await self.stream.send_all(json.dumps(value).encode() + b"\n")

    async def receive(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        value: dict[str, Any] = json.loads(line)
        return value


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the server process (this one) -------------------------------------------------------------


async def echo(channel: RTCDataChannel) -> None:
    async for message in channel:
        await channel.send_message(message)


async def answer(
    offer: dict[str, Any], config: RTCConfiguration, lines: Lines, done: trio.Event
) -> None:
    """One server pc, in a task of its own (a pc belongs to the task that entered it)."""
    async with (
        RTCPeerConnection(config, ice_options=OPTIONS) as pc,
        trio.open_nursery() as echoes,
    ):
        pc.ondatachannel = lambda event: echoes.start_soon(echo, event.channel)
        await pc.setRemoteDescription(RTCSessionDescription(type="offer", sdp=offer["sdp"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await pc.wait_gathering_complete()
        description = pc.localDescription
        assert description is not None
        await lines.send({"id": offer["id"], "sdp": description.sdp})
        await done.wait()
        echoes.cancel_scope.cancel()


@asynccontextmanager
async def maybe_shared(mode: str) -> AsyncIterator[SharedUdp | None]:
    if mode == "shared":
        async with open_shared_udp(HOST) as server:
            yield server
    else:
        yield None


async def serve(mode: str, peers: int, seconds: float, window: int) -> dict[str, Any]:
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    port = listeners[0].socket.getsockname()[1]
    command = [
        sys.executable,
        __file__,
        "--role=client",
        f"--signal-port={port}",
        f"--peers={peers}",
        f"--seconds={seconds}",
        f"--window={window}",
        *(["--freeze-gc"] if FREEZE_GC else []),
    ]
    result: dict[str, Any] = {"mode": mode, "peers": peers}
    started = time.perf_counter()
    async with maybe_shared(mode) as shared, trio.open_nursery() as nursery:
        config = RTCConfiguration(shared_udp=shared)
        nursery.start_soon(partial(trio.run_process, command, check=True))
        stream = await listeners[0].accept()
        for listener in listeners:
            await listener.aclose()
        lines = Lines(stream)
        done = trio.Event()
        async with trio.open_nursery() as pcs:
            cpu_start = 0.0
            while (message := await lines.receive()) is not None:
                if "sdp" in message:
                    pcs.start_soon(answer, message, config, lines, done)
                elif message.get("event") == "ready":
                    if FREEZE_GC:
                        gc.freeze()
                    result["setup_seconds"] = round(time.perf_counter() - started, 2)
                    if shared is not None:
                        result["shared_endpoints"] = shared.endpoint_count
                    cpu_start = cpu_seconds()
                elif message.get("event") == "done":
                    result["server_cpu_seconds"] = round(cpu_seconds() - cpu_start, 2)
                    result.update(message["client"])
                    break
            if shared is not None:
                stats = shared.stats[0]
                result["routed"] = stats.datagrams_routed
                result["dropped"] = (
                    stats.dropped_unknown_ufrag
                    + stats.dropped_unknown_transaction
                    + stats.dropped_unknown_source
                    + stats.dropped_overflow
                )
            result["server_max_rss_mib"] = round(max_rss_mib())
            done.set()
        await stream.aclose()
    return result


# --- the client process ------------------------------------------------------------------------


async def client(port: int, peers: int, seconds: float, window: int) -> None:
    stream = await trio.open_tcp_stream(HOST, port)
    lines = Lines(stream)
    answers: dict[int, trio.MemorySendChannel[str]] = {}
    counts = [0] * peers
    opened: list[int] = []
    all_open, start, stop = trio.Event(), trio.Event(), trio.Event()
    deadline = [0.0]
    limiter = trio.CapacityLimiter(SETUP_CONCURRENCY)

    async def route_answers() -> None:
        while (message := await lines.receive()) is not None:
            answers.pop(message["id"]).send_nowait(message["sdp"])

    async def peer(index: int) -> None:
        async with RTCPeerConnection(ice_options=OPTIONS) as pc:
            channel = pc.createDataChannel("echo")
            async with limiter:
                await pc.setLocalDescription(await pc.createOffer())
                await pc.wait_gathering_complete()
                offer = pc.localDescription
                assert offer is not None
                send, receive = trio.open_memory_channel[str](1)
                answers[index] = send
                await lines.send({"id": index, "sdp": offer.sdp})
                sdp = await receive.receive()
                await pc.setRemoteDescription(RTCSessionDescription(type="answer", sdp=sdp))
                await channel.wait_open()
            opened.append(index)
            if len(opened) == peers:
                all_open.set()
            await start.wait()
            with trio.move_on_at(deadline[0]):
                for _ in range(window):
                    await channel.send_message(MESSAGE)
                async for _message in channel:
                    counts[index] += 1
                    await channel.send_message(MESSAGE)
            await stop.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(route_answers)
        for index in range(peers):
            nursery.start_soon(peer, index)
        await all_open.wait()
        if FREEZE_GC:
            gc.freeze()
        await lines.send({"event": "ready"})
        cpu_start = cpu_seconds()
        started = time.perf_counter()
        deadline[0] = trio.current_time() + seconds
        start.set()
        await trio.sleep_until(deadline[0])
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_start
        total = sum(counts)
        await lines.send(
            {
                "event": "done",
                "client": {
                    "echoes_per_second": round(total / elapsed),
                    "slowest_peer_echoes_per_second": round(min(counts) / elapsed, 1),
                    "idle_peers": sum(1 for count in counts if count == 0),
                    "client_cpu_seconds": round(cpu, 2),
                    "client_max_rss_mib": round(max_rss_mib()),
                    "measured_seconds": round(elapsed, 2),
                },
            }
        )
        stop.set()
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=4, help="messages in flight per peer")
    parser.add_argument("--mode", choices=["shared", "per-pc", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=1, help="A B A B … alternations")
    parser.add_argument(
        "--freeze-gc", action="store_true", help="gc.freeze() in both processes after setup"
    )
    parser.add_argument("--role", choices=["server", "client"], default="server")
    parser.add_argument("--signal-port", type=int, default=0)
    args = parser.parse_args()
    global FREEZE_GC
    FREEZE_GC = args.freeze_gc
    if args.role == "client":
        trio.run(client, args.signal_port, args.peers, args.seconds, args.window)
        return
    modes = ["shared", "per-pc"] if args.mode == "both" else [args.mode]
    print(f"# {args.peers} peers, window {args.window}, {args.seconds} s, pid {os.getpid()}")
    for _ in range(args.rounds):
        for mode in modes:
            result = trio.run(serve, mode, args.peers, args.seconds, args.window)
            cpu = result["server_cpu_seconds"]
            result["server_cpu_percent"] = round(100 * cpu / result["measured_seconds"])
            result["server_cpu_us_per_echo"] = round(
                1e6 * cpu / max(result["echoes_per_second"] * result["measured_seconds"], 1), 1
            )
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
