"""Consent freshness across a nomination (RFC 7675 §5.1), on the ICE core with time passed by
hand.

Data may use a valid pair before it is nominated (RFC 8445 §12), so consent already watches that
pair then. When the controlling peer nominates the same pair, the nomination arrives as its
request, which is no consent response: the consent clock must go on, not restart. Restarting it
made a peer that vanished right after nominating look alive up to one consent interval longer
(``disconnected`` 5-6.2 s and ``failed`` up to 31.2 s after the last response). The vanished-peer
test against real stacks found it (a Firefox run at 5.60 s).
"""

from __future__ import annotations

import random

import attrs
import pytest

from trio_rtc.ice.agent import IceAgent

A = ("10.0.0.1", 5000)
B = ("10.0.0.2", 6000)


def vanish_after_nomination(seed: int) -> tuple[float, float, float]:
    """The controlling agent nominates late (a better remote candidate that never answers holds
    it back), then goes silent the moment the controlled agent selects. Returns when that was,
    and how long after its last consent response the controlled agent turned ``disconnected``
    and ``failed``."""
    controlling = IceAgent(
        controlling=True, tie_breaker=2, nomination_delay=3.0, rng=random.Random(seed)
    )
    controlled = IceAgent(controlling=False, tie_breaker=1, rng=random.Random(seed + 100))
    agents = {A: controlling, B: controlled}
    for base, agent in agents.items():
        agent.add_host_address(base, now=0.0)
        agent.finish_host_gathering(0.0)
    controlling.set_remote_credentials(controlled.local_ufrag, controlled.local_pwd)
    controlled.set_remote_credentials(controlling.local_ufrag, controlling.local_pwd)
    for agent, other in ((controlling, controlled), (controlled, controlling)):
        for candidate in other.local_candidates:
            agent.add_remote_candidate(candidate, 0.0)
    [real] = controlled.local_candidates
    silent_better = attrs.evolve(real, host="10.0.0.9", priority=real.priority + 1000)
    controlling.add_remote_candidate(silent_better, 0.0)

    now = 0.0
    vanished = False
    selected_at = 0.0
    last_response: float | None = None
    seen: dict[str, float] = {}
    while now < 45.0 and "failed" not in seen:
        for agent in (controlling, controlled):
            for data, base, destination in agent.datagrams_to_send(now):
                target = agents.get(destination)
                if target is None or (vanished and controlling in (agent, target)):
                    continue
                target.receive_datagram(data, destination, base, now)
        pair = controlled.selected_pair
        if not vanished and pair is not None:
            vanished = True
            selected_at = now
            last_response = pair.last_response_received
        seen.setdefault(controlled.state, now)
        deadlines = [t for a in (controlling, controlled) if (t := a.get_timer()) is not None]
        now = max(now + 0.001, min([*deadlines, now + 0.1]))
        for agent in (controlling, controlled):
            deadline = agent.get_timer()
            if deadline is not None and deadline <= now:
                agent.handle_timer(now)
    assert last_response is not None, seen
    return selected_at, seen["disconnected"] - last_response, seen["failed"] - last_response


@pytest.mark.parametrize("seed", range(12))
def test_nomination_does_not_restart_the_consent_clock(seed: int) -> None:
    selected_at, disconnected, failed = vanish_after_nomination(seed)
    assert selected_at > 2.9  # the nomination came late, after consent had started
    # RFC 7675 as the agent applies it: 5 s and 30 s after the last consent response (the
    # loop steps time by at most 1 ms past a deadline).
    assert disconnected == pytest.approx(5.0, abs=0.002)
    assert failed == pytest.approx(30.0, abs=0.002)
