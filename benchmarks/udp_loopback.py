"""Datagrams/s between two UDP endpoints on 127.0.0.1 in one trio process.

Compares the batched, non-awaiting :class:`trio_rtc.udp.UdpEndpoint` (wait once, drain until
EAGAIN, send without awaiting) with the naive trio socket style (``await sock.sendto`` and
``await sock.recvfrom`` per datagram). Both runs use a sender task and a receiver task with the
same window of datagrams in flight, so the kernel never has to drop and the rates compare the
per-datagram cost of the two styles.

    .venv/bin/python benchmarks/udp_loopback.py [--count N] [--size BYTES] [--window N]
"""

from __future__ import annotations

import argparse
import time

import trio
import trio.socket

from trio_rtc.udp import bind_socket_endpoint


async def run_endpoints(count: int, size: int, window: int) -> tuple[float, int]:
    sender = bind_socket_endpoint("127.0.0.1")
    receiver = bind_socket_endpoint("127.0.0.1")
    payload = bytes(size)
    destination = receiver.local_address
    received = 0
    done = trio.Event()

    async def receive() -> None:
        nonlocal received
        while received < count:
            await receiver.wait_readable()
            received += len(receiver.recv_batch_nowait(window))
        done.set()

    start = time.perf_counter()
    with sender, receiver:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            sent = 0
            while sent < count:
                burst = min(window - (sent - received), count - sent)
                for _ in range(burst):
                    sender.send_nowait(payload, destination)
                sent += burst
                # One checkpoint per burst lets the receiver drain.
                await trio.lowlevel.checkpoint()
            with trio.move_on_after(1):
                await done.wait()
            nursery.cancel_scope.cancel()
        elapsed = time.perf_counter() - start
        return elapsed, count - received + sender.stats.send_drops


async def run_naive(count: int, size: int, window: int) -> tuple[float, int]:
    sender = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    receiver = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    for sock in (sender, receiver):
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_SNDBUF, 4 << 20)
    await sender.bind(("127.0.0.1", 0))
    await receiver.bind(("127.0.0.1", 0))
    payload = bytes(size)
    destination = receiver.getsockname()
    received = 0
    done = trio.Event()

    async def receive() -> None:
        nonlocal received
        while received < count:
            await receiver.recvfrom(2048)
            received += 1
        done.set()

    start = time.perf_counter()
    with sender, receiver:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            for sent in range(count):
                while sent - received >= window:
                    await trio.lowlevel.checkpoint()
                await sender.sendto(payload, destination)
            with trio.move_on_after(1):
                await done.wait()
            nursery.cancel_scope.cancel()
        elapsed = time.perf_counter() - start
        return elapsed, count - received


async def main(count: int, size: int, window: int, rounds: int) -> None:
    print(f"{count} datagrams of {size} bytes, window {window}, best of {rounds}")
    results: dict[str, float] = {}
    for name, bench in (("UdpEndpoint (batched)", run_endpoints), ("naive trio socket", run_naive)):
        best = 0.0
        for _ in range(rounds):
            elapsed, lost = await bench(count, size, window)
            best = max(best, count / elapsed)
        results[name] = best
        print(f"  {name:24} {best:>10,.0f} datagrams/s  {best * size / 1e6:7.1f} MB/s  lost {lost}")
    fast, naive = results.values()
    print(f"  ratio {fast / naive:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1200)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trio.run(main, args.count, args.size, args.window, args.rounds)
