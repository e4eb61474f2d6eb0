"""The ICE agent core (RFC 8445 full or lite agent, RFC 8838 trickle, RFC 7675 consent), sans-IO.

The agent never touches a socket or a clock. Its driver (``transport.py``) tells it which local
sockets exist (``add_host_address``), hands it every STUN datagram that arrives
(``receive_datagram``) and calls ``handle_timer(now)`` when ``get_timer()`` is due;
in return it takes ``datagrams_to_send(now)`` (bytes, local socket, destination) and
``next_event()``. Application data never passes through here: the driver sends it on
``data_pair`` and accepts it from ``is_trusted_source`` addresses.

One component only (WebRTC always uses rtcp-mux), but any number of local sockets and remote
candidates. Credentials live in a :class:`Generation`: an ICE restart starts a new generation
while the previous one keeps its selected pair (and its consent checks) until the new one selects
a pair of its own, so data keeps flowing across a restart.

With ``lite=True`` the agent is an ICE-lite agent (RFC 8445 §2.5), for servers with a public
address: host candidates only, always controlled, no checks of its own (neither ordinary nor
triggered, nor consent checks). It answers the full peer's checks; an authenticated check makes
its pair valid at once (so DTLS may start), a check with USE-CANDIDATE nominates it (the
highest-priority nominated pair is selected), and the peer's checks are the only evidence that
the path is alive: see :data:`LITE_DISCONNECTED_TIMEOUT` and docs/server-mode.md.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from typing import Any

from ..stun import (
    Attr,
    MessageClass,
    Method,
    RetransmissionSchedule,
    StunError,
    StunMessage,
    parse_message_untrusted,
)
from .candidate import Candidate, candidate_foundation, candidate_priority, pair_priority
from .gathering import GatheringMixin
from .pairs import (
    Address,
    CandidatePair,
    IceEvent,
    LocalCandidateGathered,
    PairState,
    RoleChanged,
    SelectedPairChanged,
    ServerError,
    StateChanged,
)
from .session import (
    MAX_CONSENT_TRANSACTIONS,
    MAX_PAIRS,
    MAX_REMOTE_CANDIDATES,
    Generation,
    IceStats,
    Transaction,
    random_password,
    random_ufrag,
)

__all__ = [
    "MAX_PAIRS",
    "MAX_REMOTE_CANDIDATES",
    "IceAgent",
    "IceStats",
    "random_password",
    "random_ufrag",
]

logger = logging.getLogger("trio_rtc.ice")

#: Seconds a check list with no pair at all waits, after both sides said end-of-candidates,
#: before it fails: the peer's checks still create peer-reflexive pairs (RFC 8445 §7.3.1.3),
#: and a remote mDNS name may still be resolving (its end-of-candidates often arrives first).
NO_PAIR_GRACE = 5.0

#: ICE-lite liveness: seconds without an authenticated check from the peer on the pair in use
#: after which a lite agent reports ``disconnected``. A lite agent sends no consent checks of
#: its own (RFC 8445 §2.5), so the full peer's checks are the evidence: Chromium sends one on the
#: selected pair every 2.5 s once it is stable, and trio_rtc's full agent one a second, so
#: 7.5 s is three of Chromium's intervals missing. ``failed`` comes after ``consent_timeout``
#: (30 s), the RFC 7675 window, as for a full agent.
LITE_DISCONNECTED_TIMEOUT = 7.5


#: The consent-jitter generator of every agent not given one: a Random holds 2.5 KiB of
#: Mersenne Twister state, too much to make per connection for a jitter nobody seeds.
_SHARED_RNG = random.Random()


class IceAgent(GatheringMixin):
    """A full (or, with ``lite=True``, lite) ICE agent for one component. See the module
    docstring for how it is driven.

    ``ta`` is the pacing interval between new checks (RFC 8445 §14.2, default 50 ms);
    ``consent_interval`` the base period of consent checks (RFC 7675 §5.1 randomises it by
    ±20 %); a selected pair whose consent responses stop for ``disconnected_timeout`` seconds is
    reported ``disconnected``, and after ``consent_timeout`` (30 s, RFC 7675) ``failed``.

    ``lite``: be an ICE-lite agent (RFC 8445 §2.5): always controlled, no STUN servers, no relay
    candidates, no checks sent. Its liveness evidence is the peer's authenticated checks on the
    pair in use: ``disconnected`` after ``disconnected_timeout`` without one (default
    :data:`LITE_DISCONNECTED_TIMEOUT`, 7.5 s, instead of the full agent's 5 s), ``failed`` after
    ``consent_timeout``; and ``failed`` too if no authenticated check at all arrives within
    ``consent_timeout`` of the remote credentials (the full peer gave up or never started).
    """

    def __init__(
        self,
        *,
        controlling: bool,
        local_ufrag: str | None = None,
        local_pwd: str | None = None,
        tie_breaker: int | None = None,
        stun_servers: list[Address] | None = None,
        ta: float = 0.05,
        check_rto: float = 0.5,
        nomination_delay: float = 0.5,
        consent_interval: float = 1.0,
        disconnected_timeout: float | None = None,
        consent_timeout: float = 30.0,
        gather_rto: float = 0.5,
        gather_attempts: int = 4,
        rng: random.Random | None = None,
        lite: bool = False,
    ) -> None:
        if lite and controlling:
            raise ValueError(
                "an ICE-lite agent is always controlled (RFC 8445 §6.1.1); "
                "create it with controlling=False"
            )
        if lite and stun_servers:
            raise ValueError(
                "an ICE-lite agent gathers host candidates only (RFC 8445 §2.5); "
                "it takes no STUN servers"
            )
        #: RFC 8445 §2.5: an ICE-lite agent (see the module docstring).
        self.lite = lite
        self.controlling = controlling
        self.tie_breaker = tie_breaker if tie_breaker is not None else secrets.randbits(64)
        self.stun_servers = list(stun_servers or [])
        self.ta = ta
        self.check_rto = check_rto
        self.nomination_delay = nomination_delay
        self.consent_interval = consent_interval
        if disconnected_timeout is None:
            disconnected_timeout = LITE_DISCONNECTED_TIMEOUT if lite else 5.0
        self.disconnected_timeout = disconnected_timeout
        self.consent_timeout = consent_timeout
        self.gather_rto = gather_rto
        self.gather_attempts = gather_attempts
        self._rng = rng or _SHARED_RNG
        self.stats = IceStats()
        self.state = "new"
        #: Structured trace (trio_rtc.trace): ``trace(name, data)`` at state changes and
        #: decisions, set by the driver; None (the default) is tracing off.
        self.trace: Callable[[str, dict[str, Any]], None] | None = None
        self._closed = False
        self._bases: dict[Address, int] = {}  # local socket address -> local preference
        self._relays: dict[Address, tuple[Address | None, str]] = {}
        self._gen = Generation(local_ufrag or random_ufrag(), local_pwd or random_password())
        self._previous: Generation | None = None
        self._transactions: dict[bytes, Transaction] = {}
        self._outbox: list[tuple[bytes, Address, Address]] = []
        # A list, not a deque: a few events per connection, and a drained list holds no buffer
        # where an empty deque keeps a 64-slot block.
        self._events: list[IceEvent] = []
        self._next_check_at = 0.0
        self._hosts_done = False
        self._trusted: set[Address] = set()
        self._prflx_counter = 0

    # --- inputs: configuration --------------------------------------------------------------

    @property
    def local_ufrag(self) -> str:
        return self._gen.local_ufrag

    @property
    def local_pwd(self) -> str:
        return self._gen.local_pwd

    @property
    def remote_ufrag(self) -> str | None:
        return self._gen.remote_ufrag

    @property
    def remote_pwd(self) -> str | None:
        return self._gen.remote_pwd

    @property
    def gathering_state(self) -> str:
        return self._gen.gathering_state

    @property
    def local_candidates(self) -> list[Candidate]:
        return list(self._gen.local_candidates)

    @property
    def remote_candidates(self) -> list[Candidate]:
        return list(self._gen.remote_candidates)

    @property
    def pairs(self) -> list[CandidatePair]:
        return list(self._gen.pairs)

    @property
    def selected_pair(self) -> CandidatePair | None:
        """The pair of the current generation, or the previous one's during an ICE restart."""
        if self._gen.selected is not None:
            return self._gen.selected
        if self._previous is not None:
            return self._previous.selected
        return None

    @property
    def data_pair(self) -> CandidatePair | None:
        """Where application data goes: the selected pair, or before nomination completes the
        best valid pair (the DTLS handshake may start as soon as one side has selected)."""
        pair = self.selected_pair
        if pair is not None:
            return None if self._consent_lost(pair) else pair
        for gen in (self._gen, self._previous):  # during a restart: the previous generation's
            if gen is not None and not gen.consent_failed:
                pair = self._consent_pair(gen)
                if pair is not None:
                    return pair
        return None

    @staticmethod
    def _consent_pair(gen: Generation) -> CandidatePair | None:
        """The pair of ``gen`` that consent freshness watches (RFC 7675 §5.1): the selected one,
        or before nomination the best valid pair, which data may already use — a peer that
        vanishes before it nominates must still turn the connection disconnected, then failed."""
        if gen.selected is not None:
            return gen.selected
        # One pass, no list: asked several times per wake-up while a connection is being set up.
        best: CandidatePair | None = None
        for pair in gen.pairs:
            if pair.valid and (best is None or pair.priority > best.priority):
                best = pair
        return best

    def _consent_lost(self, pair: CandidatePair) -> bool:
        gen = self._gen if self._gen.selected is pair else self._previous
        return gen is not None and gen.consent_failed

    def is_trusted_source(self, address: Address) -> bool:
        """Whether data from ``address`` may be accepted: it sent us an authenticated check or
        answered one of ours (so it knows the ICE password)."""
        return address in self._trusted

    def set_remote_credentials(
        self, ufrag: str, pwd: str, *, remote_lite: bool = False, now: float | None = None
    ) -> None:
        """Set the peer's ``ice-ufrag``/``ice-pwd``. New values after checks began mean the peer
        restarted ICE; the caller must then call :meth:`restart` first (JSEP does both).

        ``remote_lite``: the peer said ``a=ice-lite``; a lite agent refuses it (ValueError: two
        lite agents never check anything, RFC 8445 §2.5 needs one full agent). ``now``: when a
        lite agent starts waiting for the peer's first check (see the class docstring)."""
        if self.lite and remote_lite:
            raise ValueError(
                "both ICE agents are lite: an ICE-lite agent needs a full peer to run the "
                "connectivity checks (RFC 8445 §2.5); turn ice_lite off on one side"
            )
        gen = self._gen
        if gen.remote_ufrag == ufrag and gen.remote_pwd == pwd:
            return
        if gen.remote_ufrag is not None and gen.remote_ufrag != ufrag:
            raise ValueError(
                "remote ICE credentials changed without an ICE restart; call restart() first"
            )
        gen.remote_ufrag = ufrag
        gen.remote_pwd = pwd
        if self.lite and now is not None:
            if gen.checks_expected_by is None:
                gen.checks_expected_by = now + self.consent_timeout
            self._update_state(now)  # checking: waiting for the peer's first check

    def add_host_address(self, base: Address, *, local_preference: int = 65535, now: float) -> None:
        """Register a bound local socket: it becomes a host candidate and, for each STUN server
        of its address family, the base of a server-reflexive candidate."""
        if base in self._bases:
            return
        self._bases[base] = local_preference
        self._gather_from_base(self._gen, base, now)

    def add_relay_address(
        self,
        base: Address,
        *,
        mapped: Address | None,
        server: str,
        local_preference: int = 65535,
        now: float,
    ) -> None:
        """Register a TURN allocation's relayed address (the driver holds the allocation and
        relays datagrams sent from ``base``): it becomes a relay candidate, paired like a host
        candidate (RFC 8445 §6.1.2.2)."""
        if self.lite:
            raise ValueError(
                "an ICE-lite agent gathers host candidates only (RFC 8445 §2.5); "
                "it takes no relay (TURN) addresses"
            )
        if base in self._bases:
            return
        self._bases[base] = local_preference
        self._relays[base] = (mapped, server)
        self._gather_from_base(self._gen, base, now)

    def start_gathering(self, now: float) -> None:
        """Mark the start of gathering (``gathering`` state) before sockets are registered."""
        if self._gen.gathering_state == "new":
            self._set_gathering_state(self._gen, "gathering")

    def finish_host_gathering(self, now: float) -> None:
        """The driver has registered every local socket; gathering completes as soon as the STUN
        servers have answered (or given up)."""
        self._hosts_done = True
        if self._gen.gathering_state == "new":
            self._set_gathering_state(self._gen, "gathering")
        self._maybe_gathering_complete(self._gen)

    def add_remote_candidate(self, candidate: Candidate | None, now: float) -> None:
        """Add a signalled remote candidate (trickle), or ``None`` for end-of-candidates.

        FQDN candidates (mDNS ``.local`` names) must be resolved by the driver first; given
        unresolved, they are ignored (RFC 8445 §5.1.1 requires IP addresses for checks)."""
        gen = self._gen
        if candidate is None:
            if not gen.remote_end_of_candidates:
                gen.remote_end_at = now
            gen.remote_end_of_candidates = True
            self._update_state(now)
            return
        if candidate.component != 1 or candidate.transport != "udp" or candidate.family is None:
            self.stats.remote_candidates_dropped += 1
            return
        if candidate.ufrag is not None and gen.remote_ufrag not in (None, candidate.ufrag):
            # A candidate of an older generation arriving late (RFC 8838 §11).
            self.stats.remote_candidates_dropped += 1
            return
        existing = gen.remote_candidate_at((candidate.host, candidate.port))
        if existing is not None:
            if existing.type == "prflx":
                # The signalled form replaces the peer-reflexive one we learned (RFC 8445 §7.3.1.3)
                index = gen.remote_candidates.index(existing)
                gen.remote_candidates[index] = candidate
                for pair in gen.pairs:
                    if pair.remote is existing:
                        pair.remote = candidate
            return
        if len(gen.remote_candidates) >= MAX_REMOTE_CANDIDATES:
            self.stats.remote_candidates_dropped += 1
            return
        gen.remote_candidates.append(candidate)
        if not self.lite:
            # A lite agent keeps no check list (RFC 8445 §2.5): its pairs come from the peer's
            # checks; signalled candidates only lend their priority to those pairs.
            for local in gen.local_candidates:
                if local.type in ("host", "relay"):
                    self._add_pair(gen, local, candidate)
        self._update_state(now)

    def restart(self, now: float, *, ufrag: str | None = None, pwd: str | None = None) -> None:
        """ICE restart (RFC 8445 §9): new credentials and a new check list; the current selected
        pair keeps carrying data until the new generation selects its own."""
        old = self._gen
        # What carries data now (the selected pair, or before nomination a valid one) keeps
        # doing so until the new generation has its own.
        in_use = old.selected is not None or any(p.valid for p in old.pairs)
        self._previous = old if in_use and not old.consent_failed else None
        for transaction in list(self._transactions.values()):
            if transaction.generation is old and transaction.kind != "consent":
                del self._transactions[transaction.transaction_id]
        self._gen = Generation(ufrag or random_ufrag(), pwd or random_password())
        self._set_gathering_state(self._gen, "gathering")
        for base in self._bases:
            self._gather_from_base(self._gen, base, now)
        self._maybe_gathering_complete(self._gen)
        self._update_state(now)

    def set_role(self, controlling: bool) -> None:
        if controlling and self.lite:
            raise ValueError(
                "an ICE-lite agent is always controlled (RFC 8445 §6.1.1): the full peer "
                "takes the controlling role"
            )
        if controlling != self.controlling:
            self.controlling = controlling
            self._recompute_priorities(self._gen)

    def close(self) -> None:
        self._closed = True
        self._transactions.clear()
        self._set_state("closed")

    # --- outputs ----------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        """(datagram, local socket address, destination) triples, in order."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> IceEvent | None:
        return self._events.pop(0) if self._events else None

    def get_timer(self) -> float | None:
        if self._closed:
            return None
        if self.lite:
            return self._lite_timer()
        deadlines: list[float] = []
        gen = self._gen
        if gen.remote_pwd is not None and (gen.triggered or self._has_work(gen)):
            deadlines.append(self._next_check_at)
        for transaction in self._transactions.values():
            if transaction.schedule is not None and transaction.schedule.get_timer is not None:
                deadlines.append(transaction.schedule.get_timer)
        if (
            self.controlling
            and gen.first_valid_at is not None
            and gen.selected is None
            and not any(p.nominating for p in gen.pairs)
        ):
            deadlines.append(gen.first_valid_at + self.nomination_delay)
        for g in (gen, self._previous):
            if g is not None and self._consent_pair(g) is not None and not g.consent_failed:
                if g.next_consent is not None:
                    deadlines.append(g.next_consent)
                if self.state != "disconnected":
                    deadlines.append(g.last_consent + self.disconnected_timeout)
                deadlines.append(g.last_consent + self.consent_timeout)
        if self._waiting_for_a_pair(gen) and self.state != "failed":
            deadlines.append(gen.remote_end_at + NO_PAIR_GRACE)
        return min(deadlines) if deadlines else None

    @staticmethod
    def _waiting_for_a_pair(gen: Generation) -> bool:
        """Both sides said end-of-candidates and there is no pair at all: the peer's checks
        (peer-reflexive candidates) or a name still being resolved may yet bring one."""
        return gen.remote_end_of_candidates and gen.gathering_state == "complete" and not gen.pairs

    def handle_timer(self, now: float) -> None:
        if self._closed:
            return
        if self.lite:
            self._lite_handle_timer(now)
            return
        for transaction in list(self._transactions.values()):
            schedule = transaction.schedule
            if schedule is None or schedule.get_timer is None or schedule.get_timer > now:
                continue
            if transaction.cancelled:
                schedule.complete()
                del self._transactions[transaction.transaction_id]
            elif schedule.on_timeout(now):
                self.stats.retransmissions += 1
                self._outbox.append(
                    (transaction.request, transaction.base, transaction.destination)
                )
            else:
                self._transaction_failed(transaction, now)
        gen = self._gen
        if self.controlling and gen.selected is None:
            self._maybe_nominate(gen, now)
        if gen.remote_pwd is not None and now >= self._next_check_at:
            self._send_next_check(gen, now)
        for g in (gen, self._previous):
            if g is not None and self._consent_pair(g) is not None and not g.consent_failed:
                if g.next_consent is not None and now >= g.next_consent:
                    self._send_consent(g, now)
                if now >= g.last_consent + self.consent_timeout:
                    # RFC 7675 §5.1: consent expired; stop sending on this pair.
                    g.consent_failed = True
                    logger.info("consent expired on %r", self._consent_pair(g))
                    if self.trace is not None:
                        lost = self._consent_pair(g)
                        self.trace("consent_expired", {"pair": lost and _pair_name(lost)})
        self._update_state(now)

    # --- input: STUN datagrams ----------------------------------------------------------------

    def receive_datagram(
        self, data: bytes | bytearray | memoryview, base: Address, source: Address, now: float
    ) -> None:
        """A datagram whose first byte says STUN arrived on ``base`` from ``source``. Anything
        malformed, unauthenticated or unexpected is dropped and counted in :attr:`stats`."""
        if self._closed:
            return
        self.stats.stun_received += 1
        try:
            message = parse_message_untrusted(data)
        except StunError:
            self.stats.stun_malformed += 1
            return
        if message.method != Method.BINDING:
            self.stats.stun_unexpected += 1
            return
        if message.message_class == MessageClass.REQUEST:
            self._handle_request(message, base, source, now)
        elif message.message_class in (MessageClass.SUCCESS, MessageClass.ERROR):
            self._handle_response(message, base, source, now)
        # Binding indications are keepalives (RFC 8445 §11): nothing to do.
        self._update_state(now)

    # --- requests from the peer ---------------------------------------------------------------

    def _handle_request(
        self, message: StunMessage, base: Address, source: Address, now: float
    ) -> None:
        username = message.get_str(Attr.USERNAME)
        if username is None or ":" not in username or not message.has(Attr.FINGERPRINT):
            self.stats.stun_bad_username += 1
            return
        local_ufrag, _, remote_ufrag = username.partition(":")
        gen = self._generation_for(local_ufrag)
        if gen is None:
            self.stats.stun_bad_username += 1
            return
        if not message.check_integrity(gen.local_pwd.encode()):
            self.stats.stun_bad_integrity += 1
            return
        if base not in self._bases:
            self.stats.stun_unexpected += 1
            return
        self.stats.requests_received += 1

        # RFC 8445 §7.3.1.1: role conflicts.
        peer_controlling = message.get_int(Attr.ICE_CONTROLLING)
        peer_controlled = message.get_int(Attr.ICE_CONTROLLED)
        if self.controlling and peer_controlling is not None:
            self.stats.role_conflicts += 1
            if self.tie_breaker >= peer_controlling:
                self._respond_error(message, gen, base, source, 487, "Role Conflict")
                return
            self._switch_role(False)
        elif not self.controlling and peer_controlled is not None:
            self.stats.role_conflicts += 1
            if self.lite:
                # A lite agent cannot take the controlling role (RFC 8445 §6.1.1): a 487 tells
                # the full peer to switch to controlling and check again (§7.2.5.1).
                self._respond_error(message, gen, base, source, 487, "Role Conflict")
                return
            if self.tie_breaker >= peer_controlled:
                self._switch_role(True)
            else:
                self._respond_error(message, gen, base, source, 487, "Role Conflict")
                return

        response = message.success_response()
        response.attributes[Attr.XOR_MAPPED_ADDRESS] = source
        self._outbox.append((response.encode(key=gen.local_pwd.encode()), base, source))
        self.stats.responses_sent += 1
        self._trusted.add(source)

        if gen.remote_ufrag is not None and remote_ufrag != gen.remote_ufrag:
            # Authenticated with our password but naming another remote ufrag: an old session.
            return
        # RFC 8445 §7.3.1.3: learn a peer-reflexive remote candidate.
        remote = gen.remote_candidate_at(source)
        if remote is None:
            if len(gen.remote_candidates) >= MAX_REMOTE_CANDIDATES:
                self.stats.remote_candidates_dropped += 1
                return
            priority = message.get_int(Attr.PRIORITY) or candidate_priority("prflx")
            self._prflx_counter += 1
            remote = Candidate(
                foundation=f"prflx{self._prflx_counter}",
                component=1,
                transport="udp",
                priority=priority,
                host=source[0],
                port=source[1],
                type="prflx",
            )
            gen.remote_candidates.append(remote)
        pair = gen.pair_for(base, source)
        if pair is None:
            local = self._host_candidate_for(gen, base)
            if local is None:
                return
            pair = self._add_pair(gen, local, remote, unfreeze=True)
            if pair is None:
                return
        pair.requests_received += 1
        pair.last_request_received = now
        pair.responses_sent += 1
        use_candidate = message.has(Attr.USE_CANDIDATE) and not self.controlling
        if self.lite:
            self._lite_check_received(gen, pair, use_candidate, now)
            return

        # RFC 8445 §7.3.1.4: triggered checks.
        if pair.state == PairState.SUCCEEDED:
            if use_candidate:
                self._nominate(gen, pair, now)
            return
        if pair.state == PairState.IN_PROGRESS:
            for transaction in self._transactions.values():
                if transaction.pair is pair and transaction.kind == "check":
                    transaction.cancelled = True
        if use_candidate:
            pair.nominate_on_success = True
        pair.state = PairState.WAITING
        if pair not in gen.triggered:
            gen.triggered.append(pair)

    def _respond_error(
        self,
        message: StunMessage,
        gen: Generation,
        base: Address,
        source: Address,
        code: int,
        reason: str,
    ) -> None:
        response = message.error_response(code, reason)
        self._outbox.append((response.encode(key=gen.local_pwd.encode()), base, source))
        self.stats.responses_sent += 1

    def _switch_role(self, controlling: bool) -> None:
        logger.info(
            "ICE role conflict: switching to %s", "controlling" if controlling else "controlled"
        )
        self.set_role(controlling)
        self._events.append(RoleChanged(controlling))
        if self.trace is not None:
            self.trace("role_switched", {"controlling": controlling})

    # --- responses to our requests ------------------------------------------------------------

    def _handle_response(
        self, message: StunMessage, base: Address, source: Address, now: float
    ) -> None:
        transaction = self._transactions.get(message.transaction_id)
        if transaction is None:
            self.stats.stun_unknown_transaction += 1
            return
        # RFC 8445 §7.2.5.2.1: the response must come from where the request went.
        if source != transaction.destination or base != transaction.base:
            self.stats.stun_wrong_source += 1
            return
        gen = transaction.generation
        if transaction.kind == "gather":
            del self._transactions[message.transaction_id]
            self._handle_gather_response(transaction, message, now)
            return
        if gen.remote_pwd is None or not message.check_integrity(gen.remote_pwd.encode()):
            self.stats.stun_bad_integrity += 1
            return
        del self._transactions[message.transaction_id]
        if transaction.schedule is not None:
            transaction.schedule.complete()
        self._trusted.add(source)
        pair = transaction.pair
        assert pair is not None
        rtt = max(now - transaction.sent_at, 0.0)
        if transaction.kind == "consent":
            if message.message_class == MessageClass.SUCCESS:
                self.stats.consent_responses_received += 1
                gen.last_consent = max(gen.last_consent, now)
                pair.responses_received += 1
                pair.current_round_trip_time = rtt
                pair.total_round_trip_time += rtt
                pair.last_response_received = now
            return
        if message.message_class == MessageClass.ERROR:
            code = (message.error_code or (0, ""))[0]
            if code == 487:
                # RFC 8445 §7.2.5.1: switch role as the peer told us and retry the check.
                self.stats.role_conflicts += 1
                if transaction.controlling == self.controlling:
                    self._switch_role(not transaction.controlling)
                pair.state = PairState.WAITING
                if pair not in gen.triggered:
                    gen.triggered.append(pair)
            else:
                self._pair_failed(gen, pair, now)
            return
        pair.responses_received += 1
        pair.current_round_trip_time = rtt
        pair.total_round_trip_time += rtt
        pair.last_response_received = now
        pair.mapped_address = message.get_address(Attr.XOR_MAPPED_ADDRESS)
        self._learn_local_prflx(gen, pair)
        if pair.state != PairState.SUCCEEDED:
            self._mark_succeeded(gen, pair, now)
            if gen.selected is None and gen.next_consent is None:
                # Consent starts with the first valid pair (RFC 7675 §5.1), not at nomination.
                gen.last_consent = now
                gen.next_consent = now + self._consent_delay()
            # RFC 8445 §7.2.5.3.3: unfreeze pairs sharing the foundation.
            for other in gen.pairs:
                if other.state == PairState.FROZEN and other.foundation == pair.foundation:
                    other.state = PairState.WAITING
        if transaction.use_candidate or pair.nominate_on_success:
            self._nominate(gen, pair, now)
        elif self.controlling:
            self._maybe_nominate(gen, now)

    def _learn_local_prflx(self, gen: Generation, pair: CandidatePair) -> None:
        mapped = pair.mapped_address
        if mapped is None or mapped == pair.base:
            return
        for candidate in gen.local_candidates:
            if (candidate.host, candidate.port) == mapped:
                return
        # The peer saw us at an address we did not know: a local peer-reflexive candidate
        # (RFC 8445 §7.2.5.3.1). It is reported (stats) but never signalled.
        prflx = Candidate(
            foundation=candidate_foundation("prflx", "udp", pair.base[0]),
            component=1,
            transport="udp",
            priority=candidate_priority("prflx", self._bases.get(pair.base, 65535)),
            host=mapped[0],
            port=mapped[1],
            type="prflx",
            related_address=pair.base[0],
            related_port=pair.base[1],
        )
        gen.local_candidates.append(prflx)

    def _transaction_failed(self, transaction: Transaction, now: float) -> None:
        del self._transactions[transaction.transaction_id]
        if transaction.kind == "gather":
            gen = transaction.generation
            gen.gather_pending -= 1
            host, port = transaction.destination
            self._events.append(
                ServerError(
                    address=transaction.base[0],
                    port=transaction.base[1],
                    url=transaction.server,
                    error_code=701,
                    error_text=f"STUN server {host}:{port} did not answer",
                )
            )
            self._maybe_gathering_complete(gen)
        elif transaction.kind == "check" and transaction.pair is not None:
            self._pair_failed(transaction.generation, transaction.pair, now)

    def _pair_failed(self, gen: Generation, pair: CandidatePair, now: float) -> None:
        if pair.state != PairState.SUCCEEDED:
            pair.state = PairState.FAILED
            if self.trace is not None:
                self.trace("pair_state", {"pair": _pair_name(pair), "state": "failed"})
        if pair.nominating and not pair.nominated:
            pair.nominating = False

    # --- checks -------------------------------------------------------------------------------

    def _has_work(self, gen: Generation) -> bool:
        return any(p.state in (PairState.WAITING, PairState.FROZEN) for p in gen.pairs)

    def _send_next_check(self, gen: Generation, now: float) -> None:
        """Send one check: a triggered one first, else the best waiting pair, else unfreeze."""
        pair: CandidatePair | None = None
        while gen.triggered:
            candidate = gen.triggered.pop(0)
            if candidate.state == PairState.WAITING:
                pair = candidate
                break
        if pair is None:
            waiting = [p for p in gen.pairs if p.state == PairState.WAITING]
            if not waiting:
                frozen = [p for p in gen.pairs if p.state == PairState.FROZEN]
                if frozen:
                    waiting = [max(frozen, key=lambda p: p.priority)]
            if waiting:
                pair = max(waiting, key=lambda p: p.priority)
        if pair is None:
            return
        use_candidate = self.controlling and pair.nominating
        self._send_check(gen, pair, now, use_candidate=use_candidate)
        self._next_check_at = now + self.ta

    def _send_check(
        self, gen: Generation, pair: CandidatePair, now: float, *, use_candidate: bool
    ) -> None:
        assert gen.remote_pwd is not None
        request = self._binding_request(gen, pair)
        if self.controlling and use_candidate:
            request.attributes[Attr.USE_CANDIDATE] = None
        data = request.encode(key=gen.remote_pwd.encode())
        # RFC 8445 §14.3: RTO = max(500 ms, Ta * (Waiting + In-Progress pairs)).
        busy = sum(p.state in (PairState.WAITING, PairState.IN_PROGRESS) for p in gen.pairs)
        rto = max(self.check_rto, self.ta * busy)
        self._transactions[request.transaction_id] = Transaction(
            transaction_id=request.transaction_id,
            kind="check",
            request=data,
            base=pair.base,
            destination=pair.remote_address,
            sent_at=now,
            generation=gen,
            schedule=RetransmissionSchedule(now, rto=rto),
            pair=pair,
            use_candidate=use_candidate,
            controlling=self.controlling,
        )
        pair.state = PairState.IN_PROGRESS
        pair.requests_sent += 1
        self.stats.checks_sent += 1
        self._outbox.append((data, pair.base, pair.remote_address))

    def _maybe_nominate(self, gen: Generation, now: float) -> None:
        """Regular nomination (RFC 8445 §8.1.1) by the controlling agent: pick the best valid
        pair once no better pair can still succeed, or after ``nomination_delay``."""
        if gen.selected is not None or any(p.nominating for p in gen.pairs):
            return
        valid = [p for p in gen.pairs if p.valid]
        if not valid:
            return
        best = max(valid, key=lambda p: p.priority)
        better_pending = any(
            p.priority > best.priority and p.state != PairState.FAILED and not p.valid
            for p in gen.pairs
        )
        waited = (
            gen.first_valid_at is not None and now >= gen.first_valid_at + self.nomination_delay
        )
        if better_pending and not waited:
            return
        best.nominating = True
        if self.trace is not None:
            self.trace("nomination_started", {"pair": _pair_name(best)})
        self._send_check(gen, best, now, use_candidate=True)

    def _nominate(self, gen: Generation, pair: CandidatePair, now: float) -> None:
        pair.nominated = True
        pair.nominating = False
        pair.nominate_on_success = False
        current = gen.selected
        if current is not None and (current is pair or current.priority >= pair.priority):
            return
        watched = self._consent_pair(gen)
        gen.selected = pair
        # RFC 8445 §8.1.2: once a pair is nominated, the pairs still waiting are not checked.
        gen.pairs = [p for p in gen.pairs if p.state not in (PairState.WAITING, PairState.FROZEN)]
        gen.triggered.clear()
        if watched is not pair or gen.next_consent is None:
            # Consent starts on the newly selected pair. When it was the pair consent already
            # watched (data used it before nomination), its clock goes on: a nomination that
            # arrives as the peer's request is not a consent response, and resetting the clock
            # here made a peer that vanished right after nominating look alive up to one
            # consent interval longer (disconnected 5-6.2 s, failed up to 31.2 s after the last
            # response instead of 5 and 30).
            gen.last_consent = now
            # A lite agent sends no consent checks: the peer's checks are its evidence.
            gen.next_consent = None if self.lite else now + self._consent_delay()
        gen.consent_failed = False
        if gen is self._gen and self._previous is not None:
            self._retire_previous()
        self._events.append(SelectedPairChanged(pair))
        if self.trace is not None:
            rtt = pair.current_round_trip_time
            self.trace("pair_selected", {"pair": _pair_name(pair), "rtt": rtt})

    def _mark_succeeded(self, gen: Generation, pair: CandidatePair, now: float) -> None:
        """``pair`` enters the valid list (RFC 8445 §7.2.5.3.2): by a response to our check, or
        for a lite agent by the peer's authenticated check."""
        pair.state = PairState.SUCCEEDED
        pair.valid = True
        if self.trace is not None:
            self.trace("pair_state", {"pair": _pair_name(pair), "state": "succeeded"})
        if gen.first_valid_at is None:
            gen.first_valid_at = now

    def _retire_previous(self) -> None:
        previous = self._previous
        self._previous = None
        for transaction in list(self._transactions.values()):
            if transaction.generation is previous:
                del self._transactions[transaction.transaction_id]

    def _binding_request(self, gen: Generation, pair: CandidatePair) -> StunMessage:
        """A connectivity check (RFC 8445 §7.2.2), also the form of consent checks (RFC 7675)."""
        request = StunMessage.request(Method.BINDING)
        request.attributes[Attr.USERNAME] = f"{gen.remote_ufrag}:{gen.local_ufrag}"
        request.attributes[Attr.PRIORITY] = candidate_priority(
            "prflx", self._bases.get(pair.base, 65535)
        )
        role = Attr.ICE_CONTROLLING if self.controlling else Attr.ICE_CONTROLLED
        request.attributes[role] = self.tie_breaker
        return request

    # --- consent freshness (RFC 7675) ---------------------------------------------------------

    def _consent_delay(self) -> float:
        return self.consent_interval * self._rng.uniform(0.8, 1.2)

    def _send_consent(self, gen: Generation, now: float) -> None:
        pair = self._consent_pair(gen)
        assert pair is not None
        gen.next_consent = now + self._consent_delay()
        if gen.remote_ufrag is None or gen.remote_pwd is None:
            return
        request = self._binding_request(gen, pair)
        data = request.encode(key=gen.remote_pwd.encode())
        consent = [t for t in self._transactions.values() if t.kind == "consent"]
        if len(consent) >= MAX_CONSENT_TRANSACTIONS:
            del self._transactions[min(consent, key=lambda t: t.sent_at).transaction_id]
        self._transactions[request.transaction_id] = Transaction(
            transaction_id=request.transaction_id,
            kind="consent",
            request=data,
            base=pair.base,
            destination=pair.remote_address,
            sent_at=now,
            generation=gen,
            pair=pair,
        )
        pair.consent_requests_sent += 1
        self.stats.consent_requests_sent += 1
        self._outbox.append((data, pair.base, pair.remote_address))

    # --- ICE-lite (RFC 8445 §2.5) -------------------------------------------------------------

    def _lite_check_received(
        self, gen: Generation, pair: CandidatePair, use_candidate: bool, now: float
    ) -> None:
        """An authenticated check from the full peer arrived on ``pair``: a lite agent's only
        input besides signalling (the check was answered already).

        RFC 8445 §7.3.1.4 and §7.3.1.5 as they apply to a lite agent: no triggered check; the
        pair enters the valid list at once, so data may use it (DTLS can start); USE-CANDIDATE
        nominates it, and of several nominated pairs the highest-priority one is selected
        (§8.1.1, :meth:`_nominate`). A check on the pair in use (the selected pair, or before
        nomination the best valid one: :meth:`_consent_pair`) is the liveness evidence that
        stands in for the consent checks a lite agent does not send."""
        if gen.consent_failed:
            # The generation expired (no evidence for consent_timeout): it stays failed until an
            # ICE restart, as a full agent's does. The check was still answered.
            return
        if not pair.valid:
            self._mark_succeeded(gen, pair, now)
        if use_candidate:
            self._nominate(gen, pair, now)
        if self._consent_pair(gen) is pair:
            gen.last_consent = max(gen.last_consent, now)

    def _lite_timer(self) -> float | None:
        """A lite agent's only deadlines: its liveness windows (see the class docstring)."""
        deadlines: list[float] = []
        for g in (self._gen, self._previous):
            if g is None or g.consent_failed:
                continue
            if self._consent_pair(g) is not None:
                if self.state != "disconnected":
                    deadlines.append(g.last_consent + self.disconnected_timeout)
                deadlines.append(g.last_consent + self.consent_timeout)
            elif g.checks_expected_by is not None:
                deadlines.append(g.checks_expected_by)
        return min(deadlines, default=None)

    def _lite_handle_timer(self, now: float) -> None:
        for g in (self._gen, self._previous):
            if g is None or g.consent_failed:
                continue
            pair = self._consent_pair(g)
            if pair is not None:
                if now >= g.last_consent + self.consent_timeout:
                    # RFC 7675 §5.1's window, with the peer's checks as the evidence.
                    g.consent_failed = True
                    logger.info(
                        "ICE-lite: no check from the peer on %r for %.1f s",
                        pair,
                        now - g.last_consent,
                    )
                    if self.trace is not None:
                        self.trace("consent_expired", {"pair": _pair_name(pair)})
            elif g.checks_expected_by is not None and now >= g.checks_expected_by:
                g.consent_failed = True
                logger.info("ICE-lite: the peer sent no authenticated check; giving up")
                if self.trace is not None:
                    self.trace("consent_expired", {"pair": None})
        self._update_state(now)

    def _update_lite_state(self, now: float) -> None:
        """A lite agent's RTCIceTransportState: ``checking`` once the remote credentials are
        known, ``connected`` from the first authenticated check, ``completed`` once a pair is
        selected (the full peer nominated it), ``disconnected``/``failed`` by the liveness
        windows; during an ICE restart the previous generation speaks until the new one has a
        usable pair, as for a full agent."""
        gen = self._gen
        active: Generation | None = gen if gen.selected is not None else self._previous
        if active is None or active.selected is None:
            active = next(
                (g for g in (gen, self._previous) if g is not None and self._consent_pair(g)),
                None,
            )
        if active is not None:
            if active.consent_failed:
                self._set_state("failed")
            elif now >= active.last_consent + self.disconnected_timeout:
                self._set_state("disconnected")
            elif active is gen and gen.selected is not None and gen.gathering_state == "complete":
                self._set_state("completed")
            else:
                self._set_state("connected")
            return
        if gen.consent_failed:
            self._set_state("failed")
        elif gen.remote_pwd is not None or self.state != "new":
            self._set_state("checking")

    # --- gathering ----------------------------------------------------------------------------

    def _add_local_candidate(self, gen: Generation, candidate: Candidate, now: float) -> None:
        gen.local_candidates.append(candidate)
        self._events.append(LocalCandidateGathered(candidate, gen.local_ufrag))
        if self.trace is not None:
            self.trace(
                "candidate_gathered",
                {
                    "type": candidate.type,
                    "protocol": candidate.transport.lower(),
                    "address": candidate.host,
                    "port": candidate.port,
                    "priority": candidate.priority,
                },
            )
        if candidate.type in ("host", "relay") and not self.lite:
            for remote in gen.remote_candidates:
                self._add_pair(gen, candidate, remote)

    # --- check list ---------------------------------------------------------------------------

    def _add_pair(
        self, gen: Generation, local: Candidate, remote: Candidate, *, unfreeze: bool = False
    ) -> CandidatePair | None:
        base = (local.host, local.port)
        if (":" in base[0]) != (":" in remote.host):
            return None
        if gen.pair_for(base, (remote.host, remote.port)) is not None:
            return None
        if len(gen.pairs) >= MAX_PAIRS:
            # RFC 8445 §6.1.2.5: drop the lowest-priority pair to make room for a better one.
            worst = min(gen.pairs, key=lambda p: p.priority)
            priority = self._pair_priority(local, remote)
            self.stats.pairs_dropped += 1
            if worst.priority >= priority or worst is gen.selected or worst.valid:
                return None
            gen.pairs.remove(worst)
        pair = CandidatePair(
            local=local, remote=remote, base=base, priority=self._pair_priority(local, remote)
        )
        # RFC 8445 §6.1.2.6: the first pair of each foundation starts Waiting, the rest Frozen.
        if unfreeze or not any(p.foundation == pair.foundation for p in gen.pairs):
            pair.state = PairState.WAITING
        gen.pairs.append(pair)
        return pair

    def _pair_priority(self, local: Candidate, remote: Candidate) -> int:
        if self.controlling:
            return pair_priority(local.priority, remote.priority)
        return pair_priority(remote.priority, local.priority)

    def _recompute_priorities(self, gen: Generation) -> None:
        for pair in gen.pairs:
            pair.priority = self._pair_priority(pair.local, pair.remote)

    def _host_candidate_for(self, gen: Generation, base: Address) -> Candidate | None:
        for candidate in gen.local_candidates:
            if candidate.type in ("host", "relay") and (candidate.host, candidate.port) == base:
                return candidate
        return None

    def _generation_for(self, local_ufrag: str) -> Generation | None:
        if local_ufrag == self._gen.local_ufrag:
            return self._gen
        if self._previous is not None and local_ufrag == self._previous.local_ufrag:
            return self._previous
        return None

    # --- state --------------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            if self.trace is not None:
                self.trace("state", {"state": state, "previous": self.state})
            self.state = state
            self._events.append(StateChanged(state))

    def _update_state(self, now: float) -> None:
        """The W3C RTCIceTransportState from the check list and consent (webrtc-pc §5.6)."""
        if self._closed:
            return
        if self.lite:
            self._update_lite_state(now)
            return
        gen = self._gen
        active = gen if gen.selected is not None else self._previous
        if active is not None and active.selected is not None:
            if active.consent_failed:
                self._set_state("failed")
            elif now >= active.last_consent + self.disconnected_timeout:
                self._set_state("disconnected")
            elif (
                active is gen
                and gen.remote_end_of_candidates
                and gen.gathering_state == "complete"
                and not any(
                    p.state in (PairState.WAITING, PairState.IN_PROGRESS, PairState.FROZEN)
                    for p in gen.pairs
                )
            ):
                self._set_state("completed")
            else:
                self._set_state("connected")
            return
        early = next(
            (g for g in (gen, self._previous) if g is not None and self._consent_pair(g)), None
        )
        if early is not None:
            # webrtc-pc §5.6 "connected": a usable connection was found while other pairs are
            # still checked. Data (DTLS first) may flow on a valid pair before nomination
            # (RFC 8445 §12), as browsers let it; it moves to the nominated pair when there is
            # one (data_pair). Consent is watched on it meanwhile.
            if early.consent_failed:
                self._set_state("failed")
            elif now >= early.last_consent + self.disconnected_timeout:
                self._set_state("disconnected")
            else:
                self._set_state("connected")
            return
        if (
            gen.remote_end_of_candidates
            and gen.gathering_state == "complete"
            and all(p.state == PairState.FAILED for p in gen.pairs)
            and (gen.pairs or now >= gen.remote_end_at + NO_PAIR_GRACE)
            and not any(
                t.generation is gen and t.kind == "check" for t in self._transactions.values()
            )
        ):
            self._set_state("failed")
        elif gen.pairs or self.state not in ("new",):
            self._set_state("checking")


def _pair_name(pair: CandidatePair) -> str:
    """How a trace names a pair: ``local type host:port -> remote type host:port``."""
    local, remote = pair.local, pair.remote
    return f"{local.type} {local.host}:{local.port} -> {remote.type} {remote.host}:{remote.port}"
