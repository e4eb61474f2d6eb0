"""A peer that vanishes without a word, with the real clock: consent freshness (RFC 7675).

trio_rtc's RTCPeerConnection is connected to a real stack (node-datachannel and werift, Node
subprocesses; aiortc, a Python one); then the peer's process is stopped with SIGSTOP, so it
answers nothing — no consent response, no SCTP, no close. trio_rtc's ``connectionState`` must
turn ``disconnected`` 5 s after the last consent response (4-6 s after the stop, as consent
checks go out every 0.8-1.2 s) and ``failed`` 30 s after it; a peer continued with SIGCONT before
then must bring the connection back to ``connected`` and carry messages again. The windows and
the measurement live in ``vanish_helpers.py``, shared with the same test against Chromium and
Firefox (test_vanished_browsers.py).

Every scenario runs at once in one nursery (each its own connection and process), so the file
takes about as long as the longest one: ~32 s. Times are printed (``pytest -s``).

werift was left out for a while: in two full runs on a loaded machine its processes were found
spinning at 100 % CPU and the test hung. The hang did not come back (alone, under busy loops on
both cores, three copies of this file at once, after test_interop_werift.py in one process), but
the spin has a cause in the harness: a Node peer whose stdout reader is gone while its stdin is
still open got EPIPE on its next write, and its uncaught-exception handler wrote again, a loop
that also kept it from ever seeing the end of stdin. ``peers/node/control.js`` now exits on a
broken stdout or stderr, and at the latest 3 s after the end of stdin.

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
from vanish_helpers import CHANNEL, check_vanish, echo_once

from trio_rtc.ice.agent import IceAgent

pytestmark = pytest.mark.interop

STACKS: tuple[Stack | Literal["aiortc"], ...] = ("node-datachannel", "werift", "aiortc")


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
        # The peer's end echoes (its harness echoes the channels trio_rtc opens).
        await offerer.create_channel(CHANNEL, echo=not trio_offers)
        with trio.fail_after(15):
            await connect(offerer, answerer, trickle=True)
            await ours.wait_channel(CHANNEL)
            await echo_once(ours, "before")

        async def pause() -> None:
            theirs.pause()

        async def resume() -> None:
            theirs.resume()

        await check_vanish(
            pc,
            ours,
            name=f"{stack} {'comes back' if come_back else 'stays away'}",
            vanish=pause,
            come_back=resume if come_back else None,
            results=results,
        )


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
