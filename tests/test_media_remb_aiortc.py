"""REMB both ways with a real aiortc peer behind a link limit.

aiortc negotiates ``goog-remb`` and abs-send-time and no transport-wide CC, so the only thing
that can tell its sender how much the link carries is the REMB its receiver gets — from us. Its
video encoder starts at 500 kbit/s and follows REMB within 250 kbit/s .. 1.5 Mbit/s.

Both peers live in one network namespace made by the test (aiortc's peer script gathers on
127.0.0.1 only); its loopback is limited with ``tc … tbf`` to 400 kbit/s once both are
connected. aiortc sends random pixels (nothing an encoder can squeeze under its target), so
without our REMB it would push 500 kbit/s into the 400 kbit/s link for ever. Our own video goes
the other way, so aiortc's REMB reaches our estimator too (we stamp abs-send-time for it).
Nothing here asserts timing; the bounds are wide.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from netns_helpers import LossyNamespace, lossy_namespace
from pc_helpers import make_pc
from pc_interop_helpers import open_trio_peer
from peers.aiortc_pc_harness import open_aiortc_peer
from test_media_loss_aiortc import relay

from trio_rtc.media.sources import TestPatternTrack
from trio_rtc.pc.media import RTCTrackEvent

pytestmark = pytest.mark.interop

LIMIT = 400_000  # bits/s on the namespace's loopback (both directions share it)


@pytest.fixture
def limited() -> Iterator[LossyNamespace]:
    with lossy_namespace("remb") as made:
        yield made


def tc(namespace: LossyNamespace, *args: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", namespace.name, "tc", *args], check=True, capture_output=True
    )


async def inbound_bytes(pc: Any) -> int:
    stats = await pc.getStats()
    return sum(
        int(s.get("bytesReceived", 0))
        for s in stats.values()
        if s["type"] == "inbound-rtp" and s["kind"] == "video"
    )


async def test_aiortc_follows_our_remb_under_a_link_limit(limited: LossyNamespace) -> None:
    with trio.fail_after(90):
        async with open_aiortc_peer(trickle=True, namespace=limited.namespace) as theirs:
            with limited.namespace.sockets():
                async with make_pc(0) as pc, open_trio_peer(pc, trickle=True) as ours:
                    events: list[RTCTrackEvent] = []
                    pc.ontrack = events.append
                    await theirs.add_track("video", noise=True)
                    await ours.set_remote(await theirs.create_offer())
                    pc.addTrack(TestPatternTrack(160, 120, 15))  # type: ignore[arg-type]
                    answer = await ours.create_answer()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(relay, theirs, ours)
                        await theirs.set_remote(answer)
                        nursery.start_soon(relay, ours, theirs)
                        await theirs.wait_state("connected")
                        await ours.wait_state("connected")
                        nursery.cancel_scope.cancel()
                    await pc.wait_until(lambda: bool(events))
                    await trio.sleep(1.0)
                    before_limit = await theirs.sender_bitrates()

                    tc(limited, "qdisc", "add", "dev", "lo", "root", "tbf", "rate",
                       f"{LIMIT}bit", "burst", "16kb", "latency", "200ms")  # fmt: skip
                    try:
                        await trio.sleep(8.0)
                        start_bytes, start = await inbound_bytes(pc), trio.current_time()
                        await trio.sleep(4.0)
                        end_bytes, end = await inbound_bytes(pc), trio.current_time()
                        under_limit = await theirs.sender_bitrates()
                    finally:
                        tc(limited, "qdisc", "del", "dev", "lo", "root")
                    rtp = pc._media.rtp
                    assert rtp is not None
                    counters = rtp.counters
                    remb = rtp.remb
                    ours_estimate = remb.estimate if remb is not None else None
                    received_rate = (end_bytes - start_bytes) * 8 / (end - start)
    print(
        f"aiortc encoder target before the limit {before_limit}, under {LIMIT} bit/s "
        f"{under_limit}; our REMB estimate {ours_estimate}, REMB sent {counters.remb_sent}, "
        f"received {counters.remb_received}; video received {received_rate:.0f} bit/s"
    )
    # We estimate what reaches us and tell aiortc: its encoder leaves its 500 kbit/s start
    # for less than the link carries.
    assert counters.remb_sent > 0
    assert ours_estimate is not None and ours_estimate < LIMIT
    [target] = [rate for rate in under_limit if rate is not None]
    assert target < LIMIT, (before_limit, under_limit)
    # What arrives fits the link (it would be the link's full rate, queued, without REMB).
    assert received_rate < LIMIT
    # aiortc's receiver estimates our video from the abs-send-time we stamp, and says so.
    assert counters.remb_received > 0
