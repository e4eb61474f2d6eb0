"""``bench``: the side-by-side benchmark against aiortc from a checkout, or a quick measurement
of this installation alone.

In a source checkout ``bench`` runs ``benchmarks/run.py`` (every option after ``bench`` goes to
it; see ``benchmarks/README.md``): trio_rtc and aiortc in fresh processes, A B A B. An installed
wheel has no ``benchmarks/``, so there (or with ``--builtin``) ``bench`` measures trio_rtc by
itself with two peer connections in one process on 127.0.0.1: connection setup, reliable
throughput in 64 KiB messages, and the round trip of a small message.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import trio

from ..datachannel import RTCDataChannel
from ..ice.transport import IceTransportOptions
from ..pc import RTCPeerConnection

__all__ = ["builtin_bench", "checkout_benchmark"]


def checkout_benchmark() -> Path | None:
    """``benchmarks/run.py`` of the checkout this package is imported from, if there is one."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
    return script if script.is_file() else None


async def _connect(
    a: RTCPeerConnection, b: RTCPeerConnection
) -> tuple[float, RTCDataChannel, RTCDataChannel]:
    """Seconds from the offer to both ends of a negotiated channel open, and the two ends."""
    began = time.perf_counter()
    ca = a.createDataChannel("bench", negotiated=True, id=0)
    cb = b.createDataChannel("bench", negotiated=True, id=0)
    await a.setLocalDescription()
    await a.wait_gathering_complete()
    assert a.localDescription is not None
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription()
    await b.wait_gathering_complete()
    assert b.localDescription is not None
    await a.setRemoteDescription(b.localDescription)
    await ca.wait_open()
    await cb.wait_open()
    return time.perf_counter() - began, ca, cb


async def builtin_bench(mib: int = 64, rounds: int = 3) -> dict[str, float]:
    """Figures of this installation (see the module doc); printed as they come."""
    options = IceTransportOptions(interfaces=["127.0.0.1"])
    setups: list[float] = []
    for _ in range(rounds):
        async with (
            RTCPeerConnection(ice_options=options) as a,
            RTCPeerConnection(ice_options=options) as b,
        ):
            seconds, _, _ = await _connect(a, b)
            setups.append(seconds)
    figures = {"setup_ms": statistics.median(setups) * 1000}
    print(f"setup (offer to channel open, median of {rounds}): {figures['setup_ms']:.1f} ms")

    async with (
        RTCPeerConnection(ice_options=options) as a,
        RTCPeerConnection(ice_options=options) as b,
    ):
        _, channel_a, channel_b = await _connect(a, b)
        total = mib << 20
        message = bytes(64 * 1024)
        began = time.perf_counter()
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                for _ in range(total // len(message)):
                    await channel_a.send_message(message)

            nursery.start_soon(send)
            received = 0
            while received < total:
                data = await channel_b.receive()
                received += len(data)
        seconds = time.perf_counter() - began
        figures["reliable_mib_s"] = mib / seconds
        print(f"reliable, 64 KiB messages, {mib} MiB: {figures['reliable_mib_s']:.1f} MiB/s")

        rtts: list[float] = []
        for _ in range(200):
            sent = time.perf_counter()
            await channel_a.send_message(b"ping")
            await channel_b.receive()
            await channel_b.send_message(b"pong")
            await channel_a.receive()
            rtts.append(time.perf_counter() - sent)
        figures["rtt_ms"] = statistics.median(rtts[20:]) * 1000
        print(f"round trip of a small message (median of 180): {figures['rtt_ms']:.3f} ms")
    return figures
