"""Records of the ICE agent core: statistics, outstanding STUN transactions, and the
*generation* (credentials, candidates, check list, selection) that an ICE restart replaces."""

from __future__ import annotations

import secrets
import string

import attrs

from ..stun import RetransmissionSchedule
from .candidate import Candidate
from .pairs import Address, CandidatePair

__all__ = [
    "MAX_CONSENT_TRANSACTIONS",
    "MAX_PAIRS",
    "MAX_REMOTE_CANDIDATES",
    "Generation",
    "IceStats",
    "Transaction",
    "random_password",
    "random_ufrag",
]

_ICE_CHARS = string.ascii_letters + string.digits + "+/"

#: RFC 8445 §6.1.2.5: a check list is limited (100 pairs is the RFC's recommended default).
MAX_PAIRS = 100
#: Remote candidates we accept per generation (signalled plus peer-reflexive): a peer cannot make
#: us hold an unbounded list.
MAX_REMOTE_CANDIDATES = 100
#: Consent checks whose responses we still accept (RFC 7675 §5.1: any response within the
#: 30 s window counts); older transaction ids are forgotten.
MAX_CONSENT_TRANSACTIONS = 40


def random_ufrag() -> str:
    """An ICE username fragment: 24 bits of randomness at least (RFC 8445 §5.3); we use 4 chars
    of 6 bits, as browsers do, plus margin."""
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(8))


def random_password() -> str:
    """An ICE password: 128 bits of randomness at least (RFC 8445 §5.3)."""
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(24))


@attrs.define
class IceStats:
    """Counters a researcher (or a test) can read; drops are counted, never raised."""

    stun_received: int = 0
    stun_malformed: int = 0
    stun_bad_integrity: int = 0
    stun_bad_username: int = 0
    stun_unknown_transaction: int = 0
    stun_wrong_source: int = 0
    stun_unexpected: int = 0
    requests_received: int = 0
    responses_sent: int = 0
    checks_sent: int = 0
    retransmissions: int = 0
    consent_requests_sent: int = 0
    consent_responses_received: int = 0
    role_conflicts: int = 0
    remote_candidates_dropped: int = 0
    #: Pairs not formed, or pruned for a better one, at MAX_PAIRS (RFC 8445 §6.1.2.5).
    pairs_dropped: int = 0


@attrs.define(eq=False)
class Transaction:
    """One outstanding STUN request of ours (a check, a consent check or a gathering request)."""

    transaction_id: bytes
    kind: str  # "check" | "consent" | "gather"
    request: bytes
    base: Address
    destination: Address
    sent_at: float
    generation: Generation
    schedule: RetransmissionSchedule | None = None
    pair: CandidatePair | None = None
    use_candidate: bool = False
    #: the role we claimed in the request (RFC 8445 §7.2.5.1 compares it on a 487)
    controlling: bool = False
    #: RFC 8445 §7.3.1.4: a check replaced by a triggered one is not retransmitted and its
    #: timeout is not a failure, but a late response is still accepted.
    cancelled: bool = False
    server: str = ""


@attrs.define(eq=False)
class Generation:
    """Everything that an ICE restart replaces: credentials, candidates, check list, selection."""

    local_ufrag: str
    local_pwd: str
    remote_ufrag: str | None = None
    remote_pwd: str | None = None
    local_candidates: list[Candidate] = attrs.Factory(list)
    remote_candidates: list[Candidate] = attrs.Factory(list)
    remote_end_of_candidates: bool = False
    #: When the remote end-of-candidates arrived (the no-pair grace counts from it).
    remote_end_at: float = 0.0
    pairs: list[CandidatePair] = attrs.Factory(list)
    # A list (it stays short, drained one pair per Ta): an empty deque would keep a 64-slot
    # block for the connection's whole life.
    triggered: list[CandidatePair] = attrs.Factory(list)
    selected: CandidatePair | None = None
    gathering_state: str = "new"
    gather_pending: int = 0
    first_valid_at: float | None = None
    # RFC 7675 consent on the selected pair
    last_consent: float = 0.0
    next_consent: float | None = None
    consent_failed: bool = False
    #: ICE-lite: when the lite agent gives up if no authenticated check has arrived (set with the
    #: remote credentials; None for a full agent).
    checks_expected_by: float | None = None

    def pair_for(self, base: Address, remote: Address) -> CandidatePair | None:
        for pair in self.pairs:
            if (
                pair.base == base
                and pair.remote.host == remote[0]
                and pair.remote.port == remote[1]
            ):
                return pair
        return None

    def remote_candidate_at(self, address: Address) -> Candidate | None:
        for candidate in self.remote_candidates:
            if candidate.host == address[0] and candidate.port == address[1]:
                return candidate
        return None
