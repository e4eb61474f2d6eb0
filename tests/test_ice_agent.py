"""The ICE agent core alone: no sockets, no trio, time passed in by hand.

A tiny in-memory "wire" moves datagrams between agents, so every rule can be checked
deterministically: pairing and priorities, frozen/waiting, pacing, triggered checks, role
conflicts, nomination, early checks, limits, and arbitrary input."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.ice.agent import MAX_REMOTE_CANDIDATES, NO_PAIR_GRACE, IceAgent
from trio_rtc.ice.candidate import Candidate, candidate_priority, pair_priority
from trio_rtc.ice.pairs import RoleChanged, SelectedPairChanged, StateChanged
from trio_rtc.stun import Attr, Method, StunMessage

A_BASE = ("10.0.0.1", 5000)
B_BASE = ("10.0.0.2", 6000)


class Wire:
    """Delivers datagrams between agents by base address, with optional loss."""

    def __init__(self, *agents: IceAgent, loss: float = 0.0, seed: int = 0) -> None:
        self.agents = agents
        self.by_base: dict[tuple[str, int], IceAgent] = {}
        self.loss = loss
        self.rng = random.Random(seed)
        self.sent: list[tuple[bytes, tuple[str, int], tuple[str, int]]] = []

    def bind(self, agent: IceAgent, base: tuple[str, int]) -> None:
        self.by_base[base] = agent

    def flush(self, now: float) -> int:
        moved = 0
        progress = True
        while progress:
            progress = False
            for agent in self.agents:
                for data, base, destination in agent.datagrams_to_send(0.0):
                    self.sent.append((data, base, destination))
                    progress = True
                    if self.rng.random() < self.loss:
                        continue
                    target = self.by_base.get(destination)
                    if target is not None:
                        target.receive_datagram(data, destination, base, now)
                        moved += 1
        return moved

    def run(self, now: float, until: float) -> float:
        """Advance time to each agent deadline until ``until``."""
        while now < until:
            self.flush(now)
            deadlines = [t for a in self.agents if (t := a.get_timer()) is not None]
            if not deadlines:
                break
            now = max(now, min(deadlines))
            if now >= until:
                break
            for agent in self.agents:
                timeout = agent.get_timer()
                if timeout is not None and timeout <= now:
                    agent.handle_timer(now)
        self.flush(now)
        return now


def make_pair(
    *, a_controlling: bool = True, b_controlling: bool = False, loss: float = 0.0, seed: int = 0
) -> tuple[IceAgent, IceAgent, Wire]:
    a = IceAgent(controlling=a_controlling, tie_breaker=2**63, rng=random.Random(1))
    b = IceAgent(controlling=b_controlling, tie_breaker=2**62, rng=random.Random(2))
    wire = Wire(a, b, loss=loss, seed=seed)
    wire.bind(a, A_BASE)
    wire.bind(b, B_BASE)
    a.add_host_address(A_BASE, now=0.0)
    b.add_host_address(B_BASE, now=0.0)
    a.finish_host_gathering(0.0)
    b.finish_host_gathering(0.0)
    return a, b, wire


def exchange(a: IceAgent, b: IceAgent, now: float = 0.0) -> None:
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    for candidate in a.local_candidates:
        b.add_remote_candidate(candidate, now)
    for candidate in b.local_candidates:
        a.add_remote_candidate(candidate, now)
    a.add_remote_candidate(None, now)
    b.add_remote_candidate(None, now)


def events(agent: IceAgent) -> list[object]:
    out = []
    while (event := agent.next_event()) is not None:
        out.append(event)
    return out


def test_connects_and_completes_with_one_round_trip_per_step() -> None:
    a, b, wire = make_pair()
    exchange(a, b)
    wire.run(0.0, 1.0)
    assert a.state == "completed" and b.state == "completed"
    assert a.selected_pair is not None and b.selected_pair is not None
    assert a.selected_pair.remote_address == B_BASE
    assert b.selected_pair.remote_address == A_BASE
    assert a.selected_pair.nominated and b.selected_pair.nominated
    assert any(isinstance(e, SelectedPairChanged) for e in events(a))
    assert [e.state for e in events(b) if isinstance(e, StateChanged)][-1] == "completed"


def test_pair_priority_follows_the_role() -> None:
    a, b, _wire = make_pair()
    exchange(a, b)
    pair = a.pairs[0]
    assert pair.priority == pair_priority(pair.local.priority, pair.remote.priority)
    b_pair = b.pairs[0]
    assert b_pair.priority == pair_priority(b_pair.remote.priority, b_pair.local.priority)
    assert pair.priority == b_pair.priority  # both sides agree (RFC 8445 §6.1.2.3)


def test_first_pair_of_each_foundation_waits_the_rest_are_frozen() -> None:
    a = IceAgent(controlling=True)
    a.add_host_address(A_BASE, now=0.0)
    a.finish_host_gathering(0.0)
    a.set_remote_credentials("rufrag", "rpwd" * 6)
    for port in (7000, 7001, 7002):
        a.add_remote_candidate(
            Candidate("same", 1, "udp", candidate_priority("host"), "10.0.0.9", port, "host"), 0.0
        )
    states = sorted(p.state.value for p in a.pairs)
    assert states == ["frozen", "frozen", "waiting"]


def test_checks_are_paced_by_ta() -> None:
    a = IceAgent(controlling=True, ta=0.05)
    a.add_host_address(A_BASE, now=0.0)
    a.finish_host_gathering(0.0)
    a.set_remote_credentials("rufrag", "rpwd" * 6)
    for port in range(7000, 7010):
        a.add_remote_candidate(
            Candidate(f"f{port}", 1, "udp", 1000 + port, "10.0.0.9", port, "host"), 0.0
        )
    sent_at = []
    now = 0.0
    while now < 0.3:
        a.handle_timer(now)
        if a.datagrams_to_send(0.0):
            sent_at.append(round(now, 3))
        now = a.get_timer() or 1.0
    # One new check per Ta (50 ms): 0, 0.05, 0.1 ... (retransmissions come later, at RTO).
    assert sent_at[:6] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
    # The best pair (highest priority) goes first.
    first = max(a.pairs, key=lambda p: p.priority)
    assert first.requests_sent == 1


def test_both_controlling_role_conflict_is_resolved_by_tie_breaker() -> None:
    # Both claim controlling: the larger tie-breaker (a) keeps it, b switches (RFC 8445 §7.3.1.1).
    a, b, wire = make_pair(a_controlling=True, b_controlling=True)
    exchange(a, b)
    wire.run(0.0, 2.0)
    assert a.controlling and not b.controlling
    assert a.stats.role_conflicts + b.stats.role_conflicts >= 1
    assert any(isinstance(e, RoleChanged) and not e.controlling for e in events(b))
    assert a.state == "completed" and b.state == "completed"
    # A 487 answer went out to b's request.
    errors = []
    for data, _base, _dst in wire.sent:
        from trio_rtc.stun import parse_message_untrusted

        message = parse_message_untrusted(data)
        if message.error_code is not None:
            errors.append(message.error_code[0])
    assert 487 in errors


def test_both_controlled_role_conflict_is_resolved_by_tie_breaker() -> None:
    a, b, wire = make_pair(a_controlling=False, b_controlling=False)
    exchange(a, b)
    wire.run(0.0, 2.0)
    assert a.controlling and not b.controlling
    assert a.state == "completed" and b.state == "completed"


def test_early_check_before_remote_credentials_creates_prflx_and_waits() -> None:
    a, b, wire = make_pair()
    # b learns nothing of a's candidates; a knows b's candidates and credentials.
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    for candidate in b.local_candidates:
        a.add_remote_candidate(candidate, 0.0)
    wire.run(0.0, 0.01)
    # b answered a's check and learned a peer-reflexive candidate, but cannot check back yet.
    assert [c.type for c in b.remote_candidates] == ["prflx"]
    assert b.stats.responses_sent >= 1 and b.stats.checks_sent == 0
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    wire.run(0.01, 2.0)
    assert a.selected_pair is not None and b.selected_pair is not None
    assert b.selected_pair.remote.type == "prflx"


def test_remote_candidates_are_bounded() -> None:
    a = IceAgent(controlling=True)
    a.add_host_address(A_BASE, now=0.0)
    for port in range(1, MAX_REMOTE_CANDIDATES + 50):
        a.add_remote_candidate(Candidate(f"f{port}", 1, "udp", 1000, "10.0.0.9", port, "host"), 0.0)
    assert len(a.remote_candidates) == MAX_REMOTE_CANDIDATES
    assert len(a.pairs) <= 100
    assert a.stats.remote_candidates_dropped == 49


def test_non_udp_other_component_and_fqdn_candidates_are_ignored() -> None:
    a = IceAgent(controlling=True)
    a.add_host_address(A_BASE, now=0.0)
    a.add_remote_candidate(Candidate("1", 1, "tcp", 1, "10.0.0.9", 9, "host", tcptype="active"), 0)
    a.add_remote_candidate(Candidate("1", 2, "udp", 1, "10.0.0.9", 9, "host"), 0)
    a.add_remote_candidate(Candidate("1", 1, "udp", 1, "abc.local", 9, "host"), 0)
    assert a.remote_candidates == []
    assert a.stats.remote_candidates_dropped == 3


def test_connects_through_heavy_loss_in_pure_core() -> None:
    for seed in range(10):
        a, b, wire = make_pair(loss=0.4, seed=seed)
        exchange(a, b)
        wire.run(0.0, 60.0)
        assert a.selected_pair is not None and b.selected_pair is not None, seed


def test_all_pairs_failing_after_end_of_candidates_gives_failed() -> None:
    a = IceAgent(controlling=True)
    a.add_host_address(A_BASE, now=0.0)
    a.finish_host_gathering(0.0)
    a.set_remote_credentials("rufrag", "rpwd" * 6)
    a.add_remote_candidate(Candidate("x", 1, "udp", 1000, "10.0.0.9", 9, "host"), 0.0)
    a.add_remote_candidate(None, 0.0)
    now = 0.0
    while (deadline := a.get_timer()) is not None and deadline < 100:
        now = deadline
        a.handle_timer(now)
        a.datagrams_to_send(0.0)
    assert a.state == "failed"
    # RFC 8489 §6.2.1 schedule with RTO 500 ms: the check fails at 39.5 s.
    assert 39.0 < now < 40.0


def test_end_of_candidates_before_any_candidate_waits_for_the_peers_checks() -> None:
    """The peer says end-of-candidates before we learn any of its candidates (or while its
    mDNS names still resolve): no pair at all is not a failure yet; its checks bring one."""
    a, b, wire = make_pair()
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    for candidate in a.local_candidates:
        b.add_remote_candidate(candidate, 0.0)
    b.add_remote_candidate(None, 0.0)
    a.add_remote_candidate(None, 0.0)  # a knows no candidate of b's
    assert a.state != "failed"
    assert a.get_timer() == NO_PAIR_GRACE  # it will look again then
    wire.run(0.0, 2.0)
    # b's checks made a peer-reflexive pair on a, and both connected.
    assert a.selected_pair is not None and b.selected_pair is not None
    assert a.selected_pair.remote.type == "prflx"
    assert a.state in ("connected", "completed")


def test_no_pair_at_all_fails_after_the_grace() -> None:
    a = IceAgent(controlling=True)
    a.add_host_address(A_BASE, now=0.0)
    a.finish_host_gathering(0.0)
    a.set_remote_credentials("rufrag", "rpwd" * 6)
    a.add_remote_candidate(None, 1.0)
    assert a.state != "failed"
    deadline = a.get_timer()
    assert deadline == 1.0 + NO_PAIR_GRACE
    a.handle_timer(deadline)
    assert a.state == "failed"
    assert a.get_timer() is None


def test_wrong_source_for_a_response_is_dropped() -> None:
    a, b, _wire = make_pair()
    exchange(a, b)
    a.handle_timer(0.0)
    (request, base, destination), *_ = a.datagrams_to_send(0.0)
    b.receive_datagram(request, destination, base, 0.0)
    (response, _b_base, _to), *_ = b.datagrams_to_send(0.0)
    # The response arrives from an unexpected address: RFC 8445 §7.2.5.2.1 says not a success.
    a.receive_datagram(response, base, ("10.0.0.66", 6000), 0.001)
    assert a.stats.stun_wrong_source == 1
    assert not any(p.valid for p in a.pairs)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    attributes=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    Attr.USERNAME,
                    Attr.PRIORITY,
                    Attr.ICE_CONTROLLING,
                    Attr.ICE_CONTROLLED,
                    Attr.USE_CANDIDATE,
                    Attr.XOR_MAPPED_ADDRESS,
                    Attr.ERROR_CODE,
                ]
            ),
            st.integers(min_value=0, max_value=5),
        ),
        max_size=6,
    ),
    message_class=st.sampled_from(["request", "success", "error", "indication"]),
)
def test_arbitrary_stun_input_never_raises(
    data: bytes, attributes: list[tuple[Attr, int]], message_class: str
) -> None:
    a, b, wire = make_pair()
    exchange(a, b)
    wire.run(0.0, 0.2)
    a.receive_datagram(data, A_BASE, B_BASE, 1.0)
    # Well-formed and correctly authenticated messages with odd attribute mixes.
    message = StunMessage.request(Method.BINDING)
    values = {
        Attr.USERNAME: [f"{a.local_ufrag}:{b.local_ufrag}", "x:y", ":", "", "a" * 500, "::"],
        Attr.PRIORITY: [0, 1, 2**32 - 1, 5, 7, 9],
        Attr.ICE_CONTROLLING: [0, 2**64 - 1, 1, 2, 3, 4],
        Attr.ICE_CONTROLLED: [0, 2**64 - 1, 1, 2, 3, 4],
        Attr.USE_CANDIDATE: [None] * 6,
        Attr.XOR_MAPPED_ADDRESS: [("10.0.0.1", 1), ("::1", 2), ("0.0.0.0", 0)] * 2,
        Attr.ERROR_CODE: [(487, "Role Conflict"), (400, "x"), (300, ""), (699, "y")]
        + [(401, "")] * 2,
    }
    for attr, index in attributes:
        message.attributes[attr] = values[attr][index]
    if message_class == "success":
        message = StunMessage(
            Method.BINDING,
            message.message_class.SUCCESS,
            message.transaction_id,
            message.attributes,
        )
    for key in (a.local_pwd.encode(), b.local_pwd.encode(), None):
        try:
            encoded = message.encode(key=key)
        except Exception:
            return  # our own encoder refused an impossible value
        a.receive_datagram(encoded, A_BASE, B_BASE, 1.0)
    wire.run(1.0, 3.0)
    assert a.state in ("connected", "completed", "checking")
