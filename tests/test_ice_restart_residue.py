"""ICE restarts leave nothing behind (issue 16: the soak found ~2.8 KB kept per restart).

Two peer connections on the virtual network restart ICE 50 times, alternately offering, as
benchmarks/soak.py does. What an ICE generation creates — remote candidates as
RTCIceCandidate/Candidate objects, the local candidates listed in localDescription, the agent's
candidates, pairs and transactions — must be bounded by what the live generations need, not by
the number of restarts. Measured with tracemalloc before the fix: per restart, three remote
RTCIceCandidates kept by RTCIceTransport (about 2 KB) and one list of local candidates per
ufrag kept by JsepSession (about 0.7 KB)."""

from __future__ import annotations

import functools
import gc

import trio
import trio.testing
from pc_helpers import certificate, negotiate, trickle

from trio_rtc import RTCPeerConnection
from trio_rtc.ice.candidate import Candidate
from trio_rtc.ice.rtc import RTCIceCandidate
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.testing import LinkConditions, VirtualNetwork

ADDRESSES = ("198.51.100.1", "198.51.100.2")
RESTARTS = 50
WARM_UP = 6
#: What may differ between two snapshots without a leak (timing, not restarts).
SLACK = 4


def make(index: int) -> RTCPeerConnection:
    return RTCPeerConnection(
        {"certificates": [certificate(index)]},
        ice_options=IceTransportOptions(interfaces=[ADDRESSES[index]], mdns=False),
    )


def _uses_new_pair(transport: RTCIceTransport) -> bool:
    return transport.selected_pair in transport.agent.pairs


async def restart(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """One ICE restart, done once both sides selected a pair of the new generation."""
    offerer.restartIce()
    await negotiate(offerer, answerer, trickled=True)
    for pc in (offerer, answerer):
        transport = pc.ice_transport
        assert transport is not None
        await transport.wait_until(functools.partial(_uses_new_pair, transport))


def held(pcs: tuple[RTCPeerConnection, ...]) -> dict[str, int]:
    """What could grow with restarts: live objects by type, and the per-generation tables."""
    gc.collect()
    counts = {"RTCIceCandidate": 0, "Candidate": 0}
    for item in gc.get_objects():
        kind = type(item)
        if kind is RTCIceCandidate or kind is Candidate:
            counts[kind.__name__] += 1
    for index, pc in enumerate(pcs):
        transport = pc.ice_transport
        assert transport is not None
        agent = transport.agent
        jsep = pc._jsep
        counts[f"local candidate generations {index}"] = len(jsep._local_candidates)
        counts[f"generations complete {index}"] = len(jsep._local_complete)
        counts[f"remote candidates {index}"] = len(agent.remote_candidates)
        counts[f"pairs {index}"] = len(agent.pairs)
        counts[f"transactions {index}"] = len(agent._transactions)
    return counts


async def test_ice_restarts_keep_a_bounded_amount_of_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conditions = LinkConditions(delay=0.01)
    async with VirtualNetwork(seed=3, conditions=conditions), make(0) as a, make(1) as b:
        async with trio.open_nursery() as nursery:
            trickle(a, b, nursery)
            trickle(b, a, nursery)
            channel = a.createDataChannel("alive")
            with trio.fail_after(60):
                await negotiate(a, b, trickled=True)
                await channel.wait_open()
            before: dict[str, int] = {}
            for count in range(RESTARTS):
                offerer, answerer = (a, b) if count % 2 == 0 else (b, a)
                with trio.fail_after(60):
                    await restart(offerer, answerer)
                # Let the old generation's checks and consent transactions expire.
                await trio.sleep(5)
                if count + 1 == WARM_UP:
                    await trio.sleep(40)
                    before = held((a, b))
            await trio.sleep(40)
            after = held((a, b))
            # A few may come and go with timing (a consent check in flight, a peer-reflexive
            # candidate); one per restart or more is what a leak looks like.
            grown = {
                name: (before[name], after[name])
                for name in after
                if after[name] > before[name] + SLACK
            }
            assert grown == {}, f"grew over {RESTARTS - WARM_UP} restarts: {grown}"
            # At most the current, the pending and the gathering generation are listed.
            for index in (0, 1):
                assert after[f"local candidate generations {index}"] <= 3
            # The channel lived through every restart.
            await channel.send_message("still here")
            nursery.cancel_scope.cancel()
