"""Data channels over the full stack (ICE + DTLS + SCTP), two peers in one process, real UDP on
127.0.0.1: MB/s of reliable ordered 16 KiB and 64 KiB messages, 100-byte messages/s, and the
ping-pong round-trip time.

The bulk runs use the W3C surface the way a browser application does: ``send()`` while
``bufferedAmount`` is below a high-water mark, then wait for ``bufferedamountlow``. The small
message run uses the trio-native ``await send_message()`` and ``async for``.

    python benchmarks/datachannel_loopback.py [--megabytes 32] [--small 50000] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import pstats
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

from trio_rtc.datachannel import MessageEvent, RTCDataChannel
from trio_rtc.dtls.certificate import RTCCertificate
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.events import Event
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.sctp.transport import RTCSctpTransport
from trio_rtc.testing import VirtualNetwork

#: --virtual: run trio_rtc over trio_rtc.testing.VirtualNetwork between these two addresses.
VIRTUAL = False
VIRTUAL_ADDRESSES = ("198.51.100.1", "198.51.100.2")

HIGH_WATER = 4 << 20
#: Print per-run transport statistics (set by --verbose).
VERBOSE = False
LOW_WATER = 1 << 20


async def _run_dtls(dtls: RTCDtlsTransport, ice: RTCIceTransport) -> None:
    await dtls.run(receive_channel=ice.dtls_receive_channel, send=ice.send)


@contextlib.asynccontextmanager
async def channel_pair() -> AsyncIterator[tuple[RTCDataChannel, RTCDataChannel]]:
    """Two stacks connected over loopback UDP (or the in-memory virtual network with
    ``--virtual``) and one negotiated channel between them."""
    address_a, address_b = VIRTUAL_ADDRESSES if VIRTUAL else ("127.0.0.1", "127.0.0.1")
    options_a = IceTransportOptions(interfaces=[address_a], mdns=False)
    options_b = IceTransportOptions(interfaces=[address_b], mdns=False)
    cert_a = await RTCCertificate.generate()
    cert_b = await RTCCertificate.generate()
    async with (
        RTCIceTransport(options=options_a) as ice_a,
        RTCIceTransport(options=options_b) as ice_b,
        trio.open_nursery() as nursery,
    ):
        ice_a.onicecandidate = lambda e: ice_b.addRemoteCandidate(e.candidate)
        ice_b.onicecandidate = lambda e: ice_a.addRemoteCandidate(e.candidate)
        ice_a.start(ice_b.getLocalParameters(), "controlling")
        ice_b.start(ice_a.getLocalParameters(), "controlled")
        ice_a.gather()
        ice_b.gather()
        await ice_a.wait_for_state("connected", "completed")
        await ice_b.wait_for_state("connected", "completed")
        dtls_a = RTCDtlsTransport(
            ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints()
        )
        dtls_b = RTCDtlsTransport(
            ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints()
        )
        nursery.start_soon(_run_dtls, dtls_a, ice_a)
        nursery.start_soon(_run_dtls, dtls_b, ice_b)
        await dtls_a.wait_connected()
        await dtls_b.wait_connected()
        sctp_a = RTCSctpTransport(dtls_a, stream_factory=RTCDataChannel.for_remote_stream)
        sctp_b = RTCSctpTransport(dtls_b, stream_factory=RTCDataChannel.for_remote_stream)
        a = RTCDataChannel("bench", negotiated=True, id=1)
        b = RTCDataChannel("bench", negotiated=True, id=1)
        sctp_a.add_channel(a)
        sctp_b.add_channel(b)
        await nursery.start(sctp_a.run)
        await nursery.start(sctp_b.run)
        await a.wait_open()
        await b.wait_open()
        yield a, b
        nursery.cancel_scope.cancel()


async def bulk(size: int, total: int) -> tuple[float, float]:
    """Returns (MB/s, messages/s) of ``total`` bytes in ``size``-byte messages."""
    count = total // size
    payload = bytes(range(256)) * (size // 256)
    async with channel_pair() as (a, b):
        received = 0
        digest = hashlib.sha256()
        done = trio.Event()

        def on_message(event: MessageEvent) -> None:
            nonlocal received
            assert isinstance(event.data, bytes)
            received += len(event.data)
            digest.update(event.data)
            if received >= count * size:
                done.set()

        b.onmessage = on_message
        low = trio.Event()

        def on_low(event: Event) -> None:
            low.set()

        a.bufferedAmountLowThreshold = LOW_WATER
        a.onbufferedamountlow = on_low
        start = time.perf_counter()
        sent = 0
        while sent < count:
            while sent < count and a.bufferedAmount < HIGH_WATER:
                a.send(payload)
                sent += 1
            if sent < count:
                low = trio.Event()
                await low.wait()
        await done.wait()
        elapsed = time.perf_counter() - start
        transport = a.sctp_transport
        b_transport = b.sctp_transport
        assert transport is not None and b_transport is not None
        stats = transport.association.stats
        if VERBOSE:
            print(
                f"    ({stats.packets_sent:,} packets sent, {stats.retransmitted_chunks:,} chunks"
                f" retransmitted, {stats.t3_expirations} T3 expirations,"
                f" {b_transport.transport.application_data_dropped} DTLS records dropped)"
            )
        expected = hashlib.sha256(payload * count).hexdigest()
        assert digest.hexdigest() == expected, "corrupted transfer"
    return received / elapsed / 1e6, count / elapsed


async def small(count: int) -> float:
    """100-byte messages with send_message()/async for; returns messages/s."""
    payload = b"x" * 100
    async with channel_pair() as (a, b):
        start = time.perf_counter()

        async def sender() -> None:
            for _ in range(count):
                await a.send_message(payload)

        got = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            async for message in b:
                assert len(message) == 100
                got += 1
                if got == count:
                    break
        elapsed = time.perf_counter() - start
    return count / elapsed


async def ping_pong(rounds: int) -> list[float]:
    async with channel_pair() as (a, b):

        async def echo() -> None:
            async for message in b:
                b.send(message)

        rtts: list[float] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            for i in range(rounds):
                start = time.perf_counter()
                a.send(b"ping %d" % i)
                assert await a.receive() == b"ping %d" % i
                rtts.append(time.perf_counter() - start)
            nursery.cancel_scope.cancel()
    return rtts


Figures = dict[str, float]


async def trio_rtc_round(megabytes: int, small_count: int) -> Figures:
    if VIRTUAL:
        # No loss, no delay: what the stack costs without the kernel's UDP path.
        async with VirtualNetwork(seed=0):
            return await _trio_rtc_figures(megabytes, small_count)
    return await _trio_rtc_figures(megabytes, small_count)


async def _trio_rtc_figures(megabytes: int, small_count: int) -> Figures:
    figures: Figures = {}
    for size in (16384, 65536):
        rate, _messages = await bulk(size, megabytes << 20)
        figures[f"{size // 1024} KiB messages, MB/s"] = rate
    figures["100-byte messages/s"] = await small(small_count)
    figures["ping-pong RTT, median us"] = statistics.median(await ping_pong(1000)) * 1e6
    return figures


async def aiortc_round(megabytes: int, small_count: int) -> Figures:
    """The same workloads with aiortc (two RTCPeerConnections in one asyncio loop), for a side by
    side ratio under the same machine load. aioice is limited to 127.0.0.1 and gets no STUN
    server, so nothing leaves the loopback interface."""
    import asyncio

    import aioice.ice
    from aiortc import RTCConfiguration, RTCPeerConnection

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

    async def pair() -> tuple[Any, Any, Any, Any]:
        pc_a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc_b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        a = pc_a.createDataChannel("bench", negotiated=True, id=1)
        b = pc_b.createDataChannel("bench", negotiated=True, id=1)
        opened = asyncio.Event()
        b.on("open", opened.set)
        a_opened = asyncio.Event()
        a.on("open", a_opened.set)
        await pc_a.setLocalDescription(await pc_a.createOffer())
        await pc_b.setRemoteDescription(pc_a.localDescription)
        await pc_b.setLocalDescription(await pc_b.createAnswer())
        await pc_a.setRemoteDescription(pc_b.localDescription)
        await opened.wait()
        await a_opened.wait()
        return pc_a, pc_b, a, b

    async def bulk_aiortc(size: int, total: int) -> float:
        pc_a, pc_b, a, b = await pair()
        count = total // size
        payload = bytes(range(256)) * (size // 256)
        done = asyncio.Event()
        received = 0

        def on_message(data: bytes) -> None:
            nonlocal received
            received += len(data)
            if received >= count * size:
                done.set()

        b.on("message", on_message)
        low = asyncio.Event()
        a.bufferedAmountLowThreshold = LOW_WATER
        a.on("bufferedamountlow", low.set)
        start = time.perf_counter()
        sent = 0
        while sent < count:
            while sent < count and a.bufferedAmount < HIGH_WATER:
                a.send(payload)
                sent += 1
            if sent < count:
                low.clear()
                await low.wait()
        await done.wait()
        elapsed = time.perf_counter() - start
        await pc_a.close()
        await pc_b.close()
        return received / elapsed / 1e6

    async def small_aiortc(count: int) -> float:
        pc_a, pc_b, a, b = await pair()
        done = asyncio.Event()
        got = 0

        def on_message(data: bytes) -> None:
            nonlocal got
            got += 1
            if got == count:
                done.set()

        b.on("message", on_message)
        low = asyncio.Event()
        a.bufferedAmountLowThreshold = LOW_WATER
        a.on("bufferedamountlow", low.set)
        start = time.perf_counter()
        for _ in range(count):
            if a.bufferedAmount > HIGH_WATER:
                low.clear()
                await low.wait()
            a.send(b"x" * 100)
        await done.wait()
        elapsed = time.perf_counter() - start
        await pc_a.close()
        await pc_b.close()
        return count / elapsed

    async def ping_pong_aiortc(rounds: int) -> list[float]:
        pc_a, pc_b, a, b = await pair()
        b.on("message", b.send)
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        a.on("message", replies.put_nowait)
        rtts = []
        for i in range(rounds):
            start = time.perf_counter()
            a.send(b"ping %d" % i)
            assert await replies.get() == b"ping %d" % i
            rtts.append(time.perf_counter() - start)
        await pc_a.close()
        await pc_b.close()
        return rtts

    figures: Figures = {}
    for size in (16384, 65536):
        figures[f"{size // 1024} KiB messages, MB/s"] = await bulk_aiortc(size, megabytes << 20)
    figures["100-byte messages/s"] = await small_aiortc(small_count)
    figures["ping-pong RTT, median us"] = statistics.median(await ping_pong_aiortc(1000)) * 1e6
    return figures


def report(ours: list[Figures], theirs: list[Figures]) -> None:
    """Medians over the rounds (the machine is shared: rounds alternate between the stacks so
    that load hits both alike), with the ratio when aiortc ran too."""
    header = f"  {'':<28}{'trio_rtc':>12}"
    if theirs:
        header += f"{'aiortc':>12}{'ratio':>8}"
    print(header)
    for name in ours[0]:
        mine = statistics.median(figures[name] for figures in ours)
        line = f"  {name:<28}{mine:>12,.1f}"
        if theirs:
            other = statistics.median(figures[name] for figures in theirs)
            # For the round trip, smaller is better: the ratio says how many times faster.
            ratio = other / mine if name.startswith("ping-pong") else mine / other
            line += f"{other:>12,.1f}{ratio:>7.1f}x"
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=32)
    parser.add_argument("--small", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="per-run transport statistics")
    parser.add_argument("--aiortc", action="store_true", help="also run aiortc, side by side")
    parser.add_argument(
        "--virtual", action="store_true", help="trio_rtc over the in-memory virtual network"
    )
    args = parser.parse_args()
    VIRTUAL = args.virtual
    VERBOSE = args.verbose
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    ours: list[Figures] = []
    theirs: list[Figures] = []
    for _ in range(args.rounds):
        ours.append(trio.run(trio_rtc_round, args.megabytes, args.small))
        if args.aiortc:
            import asyncio

            theirs.append(asyncio.run(aiortc_round(args.megabytes, args.small)))
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    print(
        "data channels, two stacks in one process over "
        + ("the virtual network (no loss)" if VIRTUAL else "UDP on 127.0.0.1")
        + " (ICE + DTLS + SCTP),"
        f" {args.megabytes} MiB bulk, {args.small:,} small messages, median of {args.rounds}"
    )
    report(ours, theirs)
