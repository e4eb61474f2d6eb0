"""The ICE-lite agent core (RFC 8445 §2.5) alone: no sockets, no trio, time passed in by hand.

Two kinds of peer talk to the lite agent here: checks built by hand (so each rule can be
checked one datagram at a time: what makes a pair valid, what nominates, which nominated pair
wins, how the liveness windows run) and trio_rtc's own full agent over an in-memory wire (the
whole exchange, a role conflict, an ICE restart)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.ice.agent import LITE_DISCONNECTED_TIMEOUT, IceAgent
from trio_rtc.ice.candidate import Candidate, candidate_priority
from trio_rtc.ice.pairs import SelectedPairChanged, StateChanged
from trio_rtc.stun import Attr, MessageClass, Method, StunMessage, parse_message_untrusted

LITE_BASE = ("192.0.2.10", 3478)
LITE_BASE_V6 = ("2001:db8::10", 3478)
PEER = ("198.51.100.7", 50000)
PEER_2 = ("198.51.100.7", 50002)
PEER_V6 = ("2001:db8::7", 50004)
PEER_UFRAG = "peerufrag"
PEER_PWD = "peer-password-0123456789"
FULL_BASE = ("198.51.100.1", 40000)


def lite_agent(*bases: tuple[str, int], remote: bool = True, now: float = 0.0) -> IceAgent:
    agent = IceAgent(controlling=False, lite=True, rng=random.Random(3))
    for index, base in enumerate(bases or (LITE_BASE,)):
        agent.add_host_address(base, local_preference=65535 - index, now=now)
    agent.finish_host_gathering(now)
    if remote:
        agent.set_remote_credentials(PEER_UFRAG, PEER_PWD, now=now)
    return agent


def check(
    agent: IceAgent,
    *,
    use_candidate: bool = False,
    priority: int | None = None,
    pwd: str | None = None,
    role: int = Attr.ICE_CONTROLLING,
    ufrag: str | None = None,
) -> bytes:
    """A connectivity check from the full peer to ``agent`` (RFC 8445 §7.2.2)."""
    request = StunMessage.request(Method.BINDING)
    request.attributes[Attr.USERNAME] = f"{ufrag or agent.local_ufrag}:{PEER_UFRAG}"
    request.attributes[Attr.PRIORITY] = priority or candidate_priority("prflx")
    request.attributes[role] = 12345
    if use_candidate:
        request.attributes[Attr.USE_CANDIDATE] = None
    return request.encode(key=(pwd or agent.local_pwd).encode())


def deliver(
    agent: IceAgent,
    data: bytes,
    now: float,
    *,
    base: tuple[str, int] = LITE_BASE,
    source: tuple[str, int] = PEER,
) -> list[StunMessage]:
    """Hand ``data`` to the agent; return what it sent back (parsed)."""
    agent.receive_datagram(data, base, source, now)
    return [parse_message_untrusted(d) for d, _b, _dst in agent.datagrams_to_send(now)]


def drain_states(agent: IceAgent) -> list[str]:
    states = []
    while (event := agent.next_event()) is not None:
        if isinstance(event, StateChanged):
            states.append(event.state)
    return states


def advance(agent: IceAgent, now: float, until: float) -> float:
    """Run the agent's timers up to ``until``, by hand; assert it never sends anything."""
    while True:
        deadline = agent.get_timer()
        if deadline is None or deadline > until:
            return until
        now = max(now, deadline)
        agent.handle_timer(now)
        assert agent.datagrams_to_send(now) == []


# --- construction and refusals ------------------------------------------------------------------


def test_a_lite_agent_is_controlled_and_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="always controlled"):
        IceAgent(controlling=True, lite=True)
    with pytest.raises(ValueError, match="no STUN servers"):
        IceAgent(controlling=False, lite=True, stun_servers=[("192.0.2.1", 3478)])
    agent = lite_agent(remote=False)
    with pytest.raises(ValueError, match="always controlled"):
        agent.set_role(True)
    agent.set_role(False)  # what JSEP asks of it: fine
    with pytest.raises(ValueError, match="no relay"):
        agent.add_relay_address(("192.0.2.99", 9), mapped=None, server="turn:x", now=0.0)
    assert [c.type for c in agent.local_candidates] == ["host"]


def test_a_lite_peer_is_refused() -> None:
    agent = lite_agent(remote=False)
    with pytest.raises(ValueError, match="both ICE agents are lite"):
        agent.set_remote_credentials(PEER_UFRAG, PEER_PWD, remote_lite=True, now=0.0)
    assert agent.remote_ufrag is None
    # A full agent takes a lite peer (it becomes the controlling side; JSEP decides that).
    IceAgent(controlling=True).set_remote_credentials(PEER_UFRAG, PEER_PWD, remote_lite=True)


def test_defaults() -> None:
    agent = lite_agent()
    assert agent.disconnected_timeout == LITE_DISCONNECTED_TIMEOUT == 7.5
    assert agent.consent_timeout == 30.0
    assert IceAgent(controlling=True).disconnected_timeout == 5.0  # full agents unchanged


# --- no checks of its own -----------------------------------------------------------------------


def test_signalled_candidates_make_no_pairs_and_no_checks() -> None:
    agent = lite_agent()
    for port in (50000, 50002, 50004):
        agent.add_remote_candidate(
            Candidate(f"f{port}", 1, "udp", candidate_priority("host"), PEER[0], port, "host"), 0.0
        )
    agent.add_remote_candidate(None, 0.0)
    assert agent.pairs == []
    assert len(agent.remote_candidates) == 3
    assert agent.state == "checking"
    # Its only deadline is the wait for the peer's first check; it sends nothing meanwhile.
    assert agent.get_timer() == 30.0
    advance(agent, 0.0, 29.0)
    assert agent.stats.checks_sent == 0 and agent.stats.consent_requests_sent == 0


def test_connected_on_the_first_authenticated_check_no_triggered_check() -> None:
    agent = lite_agent()
    drain_states(agent)
    # A wrong password: dropped and counted, nothing answered, nothing trusted.
    assert deliver(agent, check(agent, pwd="x" * 24), 0.1) == []
    assert agent.stats.stun_bad_integrity == 1
    assert agent.state == "checking" and not agent.is_trusted_source(PEER)
    # An unknown ufrag: the same.
    assert deliver(agent, check(agent, ufrag="nobody"), 0.1) == []
    assert agent.stats.stun_bad_username == 1

    replies = deliver(agent, check(agent), 0.2)
    assert [m.message_class for m in replies] == [MessageClass.SUCCESS]
    assert replies[0].get_address(Attr.XOR_MAPPED_ADDRESS) == PEER
    assert agent.state == "connected"
    assert drain_states(agent) == ["connected"]
    [pair] = agent.pairs
    assert pair.valid and pair.remote.type == "prflx" and not pair.nominated
    # Usable for data at once (DTLS may start): the data pair, and its source is trusted.
    assert agent.data_pair is pair and agent.selected_pair is None
    assert agent.is_trusted_source(PEER)
    # No triggered check (RFC 8445 §7.3.1.4 is for full agents), no consent check, ever.
    advance(agent, 0.2, 5.0)
    assert agent.stats.checks_sent == 0 and agent.stats.consent_requests_sent == 0


def test_use_candidate_selects_the_pair_and_completes() -> None:
    agent = lite_agent()
    deliver(agent, check(agent), 0.0)
    assert agent.state == "connected"
    replies = deliver(agent, check(agent, use_candidate=True), 0.05)
    assert [m.message_class for m in replies] == [MessageClass.SUCCESS]
    [pair] = agent.pairs
    assert pair.nominated and agent.selected_pair is pair and agent.data_pair is pair
    assert agent.state == "completed"
    assert any(isinstance(e, SelectedPairChanged) for e in iter(agent.next_event, None))
    # A check that nominates on its very first arrival works as well.
    other = lite_agent()
    deliver(other, check(other, use_candidate=True), 0.0)
    assert other.state == "completed" and other.selected_pair is not None


def test_the_highest_priority_nominated_pair_wins() -> None:
    agent = lite_agent(LITE_BASE, LITE_BASE_V6)
    # The peer's PRIORITY attribute is the remote candidate's priority (RFC 8445 §7.3.1.3).
    low, high = candidate_priority("prflx", 1000), candidate_priority("prflx", 60000)
    deliver(agent, check(agent, use_candidate=True, priority=low), 0.0, source=PEER_2)
    first = agent.selected_pair
    assert first is not None and first.remote_address == PEER_2
    # A higher-priority pair nominated later replaces it (RFC 8445 §8.1.1).
    deliver(agent, check(agent, use_candidate=True, priority=high), 0.1, source=PEER)
    best = agent.selected_pair
    assert best is not None and best.remote_address == PEER and best.priority > first.priority
    # A lower-priority one nominated after that does not.
    deliver(
        agent,
        check(agent, use_candidate=True, priority=low),
        0.2,
        base=LITE_BASE_V6,
        source=PEER_V6,
    )
    assert agent.selected_pair is best
    assert sum(p.nominated for p in agent.pairs) == 3
    # Before any nomination the best valid pair carries data.
    other = lite_agent()
    deliver(other, check(other, priority=low), 0.0, source=PEER_2)
    deliver(other, check(other, priority=high), 0.0, source=PEER)
    assert other.data_pair is not None and other.data_pair.remote_address == PEER


def test_a_peer_claiming_controlled_gets_487_and_the_lite_agent_stays_controlled() -> None:
    agent = lite_agent()
    replies = deliver(agent, check(agent, role=Attr.ICE_CONTROLLED), 0.0)
    assert [m.error_code for m in replies] == [(487, "Role Conflict")]
    assert not agent.controlling and agent.stats.role_conflicts == 1
    assert agent.pairs == [] and agent.state == "checking"


# --- liveness: the peer's checks are the evidence ----------------------------------------------


def test_liveness_windows_disconnected_at_7_5_s_failed_at_30_s() -> None:
    agent = lite_agent()
    deliver(agent, check(agent, use_candidate=True), 0.0)
    assert agent.state == "completed"
    # The full peer checks the selected pair every 2.5 s (as Chromium does): all stays well.
    now = 0.0
    while now < 10.0:
        now = advance(agent, now, now + 2.5)
        deliver(agent, check(agent, use_candidate=True), now)
        assert agent.state == "completed"
    last = now  # 10.0: the last check
    assert agent.get_timer() == last + 7.5
    advance(agent, now, last + 7.4)
    assert agent.state == "completed"
    advance(agent, now, last + 7.5)
    assert agent.state == "disconnected"
    assert agent.data_pair is not None  # disconnected is not fatal: data may still go
    # A check on the selected pair brings it back at once.
    deliver(agent, check(agent, use_candidate=True), last + 9.0)
    assert agent.state == "completed"
    last += 9.0
    # A check on another pair is no evidence for the selected one.
    advance(agent, last, last + 5.0)
    deliver(agent, check(agent, priority=1), last + 5.0, source=PEER_2)
    advance(agent, last + 5.0, last + 7.5)
    assert agent.state == "disconnected"
    assert agent.get_timer() == last + 30.0
    advance(agent, last + 7.5, last + 29.9)
    assert agent.state == "disconnected"
    advance(agent, last + 29.9, last + 30.0)
    assert agent.state == "failed"
    assert agent.data_pair is None  # consent is over: nothing may be sent on the pair
    assert agent.get_timer() is None
    # A late check is answered but does not revive the generation; an ICE restart would.
    replies = deliver(agent, check(agent, use_candidate=True), last + 31.0)
    assert [m.message_class for m in replies] == [MessageClass.SUCCESS]
    assert agent.state == "failed" and agent.data_pair is None
    assert agent.stats.checks_sent == 0 and agent.stats.consent_requests_sent == 0


def test_liveness_before_nomination_watches_the_best_valid_pair() -> None:
    agent = lite_agent()
    deliver(agent, check(agent), 1.0)
    assert agent.state == "connected"
    advance(agent, 1.0, 8.4)
    assert agent.state == "connected"
    advance(agent, 8.4, 8.5)
    assert agent.state == "disconnected"
    advance(agent, 8.5, 31.0)
    assert agent.state == "failed" and agent.data_pair is None


def test_no_authenticated_check_at_all_fails_after_30_s() -> None:
    agent = lite_agent(now=2.0)
    assert agent.state == "checking"
    assert agent.get_timer() == 32.0
    deliver(agent, check(agent, pwd="y" * 24), 10.0)  # unauthenticated: no evidence
    advance(agent, 2.0, 31.9)
    assert agent.state == "checking"
    advance(agent, 31.9, 32.0)
    assert agent.state == "failed"
    assert agent.get_timer() is None


def test_the_timings_are_configurable() -> None:
    agent = IceAgent(controlling=False, lite=True, disconnected_timeout=3.0, consent_timeout=10.0)
    agent.add_host_address(LITE_BASE, now=0.0)
    agent.finish_host_gathering(0.0)
    agent.set_remote_credentials(PEER_UFRAG, PEER_PWD, now=0.0)
    deliver(agent, check(agent, use_candidate=True), 0.0)
    advance(agent, 0.0, 3.0)
    assert agent.state == "disconnected"
    advance(agent, 3.0, 10.0)
    assert agent.state == "failed"


# --- against trio_rtc's full agent ---------------------------------------------------------------


class Wire:
    """Delivers datagrams between agents by base address and runs their timers by hand."""

    def __init__(self, agents: dict[tuple[str, int], IceAgent]) -> None:
        self.agents = agents
        self.sent: dict[int, list[StunMessage]] = {id(a): [] for a in agents.values()}

    def run(self, now: float, until: float) -> float:
        while True:
            moved = True
            while moved:
                moved = False
                for base, agent in self.agents.items():
                    for data, source, destination in agent.datagrams_to_send(now):
                        self.sent[id(agent)].append(parse_message_untrusted(data))
                        target = self.agents.get(destination)
                        if target is not None:
                            target.receive_datagram(data, destination, source, now)
                            moved = True
                        assert source == base
            deadlines = [t for a in self.agents.values() if (t := a.get_timer()) is not None]
            if not deadlines or min(deadlines) > until:
                return until
            now = max(now, min(deadlines))
            for agent in self.agents.values():
                deadline = agent.get_timer()
                if deadline is not None and deadline <= now:
                    agent.handle_timer(now)


def full_and_lite(*, full_controlling: bool = True) -> tuple[IceAgent, IceAgent, Wire]:
    full = IceAgent(controlling=full_controlling, rng=random.Random(1))
    lite = IceAgent(controlling=False, lite=True, rng=random.Random(2))
    full.add_host_address(FULL_BASE, now=0.0)
    lite.add_host_address(LITE_BASE, now=0.0)
    full.finish_host_gathering(0.0)
    lite.finish_host_gathering(0.0)
    signal(full, lite, 0.0)
    return full, lite, Wire({FULL_BASE: full, LITE_BASE: lite})


def signal(full: IceAgent, lite: IceAgent, now: float) -> None:
    """What JSEP carries: credentials, the lite flag, the candidates and their end."""
    full.set_remote_credentials(lite.local_ufrag, lite.local_pwd, remote_lite=True)
    lite.set_remote_credentials(full.local_ufrag, full.local_pwd, now=now)
    for candidate in lite.local_candidates:
        full.add_remote_candidate(candidate, now)
    for candidate in full.local_candidates:
        lite.add_remote_candidate(candidate, now)
    full.add_remote_candidate(None, now)
    lite.add_remote_candidate(None, now)


def test_full_agent_against_lite_agent_completes_and_keeps_alive() -> None:
    full, lite, wire = full_and_lite()
    wire.run(0.0, 2.0)
    assert full.state == "completed" and lite.state == "completed"
    assert full.selected_pair is not None and lite.selected_pair is not None
    assert full.selected_pair.remote_address == LITE_BASE
    assert lite.selected_pair.remote_address == FULL_BASE
    # The lite agent sent responses only.
    assert {m.message_class for m in wire.sent[id(lite)]} == {MessageClass.SUCCESS}
    assert lite.stats.checks_sent == 0 and lite.stats.consent_requests_sent == 0
    # The full agent's consent checks (one a second) keep both alive for a minute.
    wire.run(2.0, 62.0)
    assert full.state == "completed" and lite.state == "completed"
    assert {m.message_class for m in wire.sent[id(lite)]} == {MessageClass.SUCCESS}


def test_full_agent_that_starts_controlled_switches_on_487() -> None:
    # A full peer that missed our a=ice-lite starts controlled; the lite agent answers 487.
    full, lite, wire = full_and_lite(full_controlling=False)
    wire.run(0.0, 3.0)
    assert full.controlling and not lite.controlling
    assert lite.stats.role_conflicts >= 1
    assert full.state == "completed" and lite.state == "completed"


def test_lite_agent_notices_a_vanished_full_peer() -> None:
    full, lite, wire = full_and_lite()
    wire.run(0.0, 2.0)
    assert lite.state == "completed"
    full.close()  # the peer disappears: no more consent checks
    quiet_since = max(p.last_request_received or 0.0 for p in lite.pairs)
    wire.run(2.0, quiet_since + 7.49)
    assert lite.state == "completed"
    wire.run(quiet_since + 7.49, quiet_since + 7.5)
    assert lite.state == "disconnected"
    wire.run(quiet_since + 7.5, quiet_since + 30.0)
    assert lite.state == "failed"


@pytest.mark.parametrize("restarter", ["full", "lite"])
def test_ice_restart(restarter: str) -> None:
    """New credentials on both sides (whoever asked, the full peer drives the checks); the old
    pair carries data until the new generation selects one."""
    full, lite, wire = full_and_lite()
    wire.run(0.0, 2.0)
    old = lite.selected_pair
    assert old is not None and lite.state == "completed"
    old_ufrag = lite.local_ufrag
    # JSEP: the restarting side's offer has new credentials, the answer too (RFC 8445 §9).
    first, second = (full, lite) if restarter == "full" else (lite, full)
    first.restart(2.0)
    second.restart(2.0)
    assert lite.local_ufrag != old_ufrag
    assert lite.data_pair is old  # the previous generation still carries data
    signal(full, lite, 2.0)
    wire.run(2.0, 4.0)
    assert lite.state == "completed" and full.state == "completed"
    new = lite.selected_pair
    assert new is not None and new is not old
    assert lite.data_pair is new
    # Checks on the old credentials are no longer accepted once the old generation retired.
    stale = StunMessage.request(Method.BINDING)
    stale.attributes[Attr.USERNAME] = f"{old_ufrag}:{full.local_ufrag}"
    stale.attributes[Attr.ICE_CONTROLLING] = 1
    lite.receive_datagram(stale.encode(key=b"whatever"), LITE_BASE, FULL_BASE, 4.0)
    assert lite.stats.stun_bad_username >= 1
    wire.run(4.0, 40.0)
    assert lite.state == "completed"
    assert lite.stats.checks_sent == 0


# --- arbitrary input ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    use_candidate=st.booleans(),
    priority=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_arbitrary_input_never_raises(data: bytes, use_candidate: bool, priority: int) -> None:
    agent = lite_agent()
    agent.receive_datagram(data, LITE_BASE, PEER, 0.0)
    agent.receive_datagram(
        check(agent, use_candidate=use_candidate, priority=priority), LITE_BASE, PEER, 0.0
    )
    # Garbage that starts like STUN, from the trusted source, and a response to nothing.
    agent.receive_datagram(b"\x00\x01" + data, LITE_BASE, PEER, 0.1)
    response = StunMessage(Method.BINDING, MessageClass.SUCCESS).encode(key=b"k")
    agent.receive_datagram(response, LITE_BASE, PEER, 0.2)
    assert agent.stats.stun_unknown_transaction >= 1
    agent.handle_timer(1.0)
    assert agent.stats.checks_sent == 0
