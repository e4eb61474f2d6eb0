"""A peer that vanishes without a word, with the real clock: consent freshness (RFC 7675).

trio_rtc's RTCPeerConnection is connected to a real stack (node-datachannel, a Node
subprocess; aiortc, a Python one); then the peer's process is stopped with SIGSTOP, so it answers nothing — no
consent response, no SCTP, no close. trio_rtc's ``connectionState`` must turn ``disconnected``
5 s after the last consent response (4-6 s after the stop, as consent checks go out every
0.8-1.2 s) and ``failed`` 30 s after it; a peer continued with SIGCONT before then must bring the
connection back to ``connected`` and carry messages again.

Every scenario runs at once in one nursery (each its own connection and process), so the file
takes about as long as the longest one: ~32 s. Times are printed (``pytest -s``).

The same rule for a peer that vanishes before it nominated a pair (data already flows on a
valid pair then, RFC 8445 §12) is checked on the ICE core alone, with time passed by hand: under
load the real peers sometimes stopped in that window, and trio_rtc stayed ``connected`` for good.
"""

from __future__ import annotations

import functools
import random
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import attrs
import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import TrioPeer, connect, open_trio_peer
from peers.aiortc_pc_harness import AiortcPeer, open_aiortc_peer
from peers.node.harness import NodePeer, Stack, open_node_peer

from trio_rtc import RTCPeerConnection
from trio_rtc.ice.agent import IceAgent

pytestmark = pytest.mark.interop

#: werift is not here: in two full runs of the suite on a loaded machine both werift processes
#: of this file spun at 100 % CPU and the test hung until killed (alone it passes: disconnected
#: 5.00 s and failed 30.00 s after the last consent response, back 6 ms after SIGCONT).
STACKS: tuple[Stack | Literal["aiortc"], ...] = ("node-datachannel", "aiortc")
#: RFC 7675 as trio_rtc applies it: disconnected 5 s and failed 30 s after the last consent
#: response; the last one came at most one consent interval (<= 1.2 s) before the stop.
DISCONNECTED_WINDOW = (3.5, 6.5)
FAILED_WINDOW = (28.5, 32.5)
#: Measured from the last consent response instead: exactly what RFC 7675 and webrtc-pc ask.
#: (The low ends allow for floating-point rounding.)
SINCE_RESPONSE_DISCONNECTED = (4.99, 6.0)
SINCE_RESPONSE_FAILED = (29.99, 32.0)
#: When the returning peer is continued, seconds after the stop: disconnected, far from failed.
COME_BACK_AFTER = 10.0


async def wait_connection_state(pc: RTCPeerConnection, state: str, seconds: float) -> None:
    with trio.move_on_after(seconds):
        await pc.wait_until(lambda: pc.connectionState == state)
    assert pc.connectionState == state, (
        f"connectionState {pc.connectionState} (ICE {pc.iceConnectionState}) after {seconds} s, "
        f"waited for {state}; {pc.ice_transport.agent.stats if pc.ice_transport else None}"
    )


def ice_state(pc: RTCPeerConnection) -> str:
    return str(pc.iceConnectionState)


def last_consent_response(pc: RTCPeerConnection) -> float:
    """When the pair consent freshness watches last got an answer (trio's clock)."""
    ice = pc.ice_transport
    assert ice is not None
    pair = ice.agent.data_pair or ice.agent.selected_pair
    assert pair is not None and pair.last_response_received is not None
    return float(pair.last_response_received)


async def echo_once(ours: TrioPeer, text: str) -> None:
    await ours.send("chat", text)
    assert await ours.receive("chat") == text


def open_peer(stack: Stack | Literal["aiortc"]) -> AbstractAsyncContextManager[Any]:
    if stack == "aiortc":
        return open_aiortc_peer(trickle=True, echo=True)
    return open_node_peer(stack, echo=True)


async def vanish(
    stack: Stack | Literal["aiortc"], *, come_back: bool, results: dict[str, str]
) -> None:
    """Connect to ``stack`` (trio_rtc offers when the peer stays away, the peer offers when it
    comes back), stop it, and check what trio_rtc's connection goes through."""
    trio_offers = not come_back
    async with (
        open_peer(stack) as theirs,
        make_pc(0) as pc,
        open_trio_peer(pc) as ours,
    ):
        offerer: TrioPeer | NodePeer | AiortcPeer = ours if trio_offers else theirs
        answerer: TrioPeer | NodePeer | AiortcPeer = theirs if trio_offers else ours
        await offerer.create_channel("chat", echo=True)
        with trio.fail_after(15):
            await connect(offerer, answerer, trickle=True)
            await ours.wait_channel("chat")
            await echo_once(ours, "before")

        stopped = trio.current_time()
        theirs.pause()
        await wait_connection_state(pc, "disconnected", DISCONNECTED_WINDOW[1] + 1)
        disconnected = trio.current_time() - stopped
        last_response = last_consent_response(pc)
        since_response = trio.current_time() - last_response
        assert ice_state(pc) == "disconnected"
        name = f"{stack} {'comes back' if come_back else 'stays away'}"
        if come_back:
            await trio.sleep_until(stopped + COME_BACK_AFTER)
            theirs.resume()
            await wait_connection_state(pc, "connected", 10)
            recovered = trio.current_time() - stopped - COME_BACK_AFTER
            with trio.fail_after(10):
                await echo_once(ours, "after")
            results[name] = (
                f"disconnected after {disconnected:.2f} s ({since_response:.2f} s after the "
                f"last consent response); continued at {COME_BACK_AFTER:.0f} s, "
                f"connected again {recovered * 1000:.0f} ms later, messages flow"
            )
        else:
            await wait_connection_state(pc, "failed", FAILED_WINDOW[1] + 1)
            failed = trio.current_time() - stopped
            failed_since_response = trio.current_time() - last_response
            assert ice_state(pc) == "failed"
            results[name] = (
                f"disconnected after {disconnected:.2f} s, failed after {failed:.2f} s "
                f"({since_response:.2f} s and {failed_since_response:.2f} s after the last "
                "consent response)"
            )
            assert FAILED_WINDOW[0] <= failed <= FAILED_WINDOW[1], results[name]
            low, high = SINCE_RESPONSE_FAILED
            assert low <= failed_since_response <= high, results[name]
        assert DISCONNECTED_WINDOW[0] <= disconnected <= DISCONNECTED_WINDOW[1], results[name]
        low, high = SINCE_RESPONSE_DISCONNECTED
        assert low <= since_response <= high, results[name]


async def test_vanished_peer_disconnects_fails_or_recovers() -> None:
    results: dict[str, str] = {}
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for stack in STACKS:
                for come_back in (False, True):
                    nursery.start_soon(
                        functools.partial(vanish, stack, come_back=come_back, results=results)
                    )
    for name, text in sorted(results.items()):
        print(f"{name}: {text}")
    assert len(results) == 2 * len(STACKS)


def test_peer_vanishing_before_nomination_is_caught_by_consent() -> None:
    """A controlling peer that never nominates (here: a nomination delay longer than the test)
    and then goes silent: the controlled agent has data on a valid pair, watches consent on it,
    and turns disconnected 5 s and failed 30 s after the last answer."""
    controlling = IceAgent(
        controlling=True, tie_breaker=2, nomination_delay=1000.0, rng=random.Random(1)
    )
    controlled = IceAgent(controlling=False, tie_breaker=1, rng=random.Random(2))
    bases = {controlling: ("10.0.0.1", 5000), controlled: ("10.0.0.2", 6000)}
    by_base = {base: agent for agent, base in bases.items()}
    for agent, base in bases.items():
        agent.add_host_address(base, now=0.0)
        agent.finish_host_gathering(0.0)
    controlling.set_remote_credentials(controlled.local_ufrag, controlled.local_pwd)
    controlled.set_remote_credentials(controlling.local_ufrag, controlling.local_pwd)
    for agent, other in ((controlling, controlled), (controlled, controlling)):
        for candidate in other.local_candidates:
            agent.add_remote_candidate(candidate, 0.0)
    # A better candidate that never answers keeps the controlling agent from nominating.
    [real] = controlled.local_candidates
    better = attrs.evolve(real, host="10.0.0.9", priority=real.priority + 1000)
    controlling.add_remote_candidate(better, 0.0)

    silent = False
    last = 0.0
    now = 0.0
    states: list[tuple[float, str]] = []
    while now < 40.0:
        for agent in (controlling, controlled):
            for data, base, destination in agent.datagrams_to_send(now):
                if silent and agent is controlling:
                    continue
                target = by_base.get(destination)
                if target is not None and not (silent and target is controlling):
                    target.receive_datagram(data, destination, base, now)
        if not states or states[-1][1] != controlled.state:
            states.append((now, controlled.state))
        if not silent and now >= 2.0:
            assert controlled.state == "connected", states
            assert controlled.selected_pair is None and controlled.data_pair is not None
            silent = True
            answered = controlled.data_pair.last_response_received
            assert answered is not None
            last = answered
        deadlines = [t for a in (controlling, controlled) if (t := a.get_timer()) is not None]
        now = max(now + 0.001, min([*deadlines, now + 0.1]))
        for agent in (controlling, controlled):
            timer = agent.get_timer()
            if timer is not None and timer <= now:
                agent.handle_timer(now)
    when = {state: at for at, state in states}
    # (A little below for floating-point rounding of the deadlines.)
    assert 4.999 <= when["disconnected"] - last <= 5.2, states
    assert 29.999 <= when["failed"] - last <= 30.2, states
