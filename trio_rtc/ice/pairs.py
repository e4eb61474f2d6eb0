"""Candidate pairs, the check list's pair states, and the events the ICE agent core emits.

Kept apart from ``agent.py`` so that the W3C layer (``transport.py``) and stats can use these
plain records without reaching into the agent's machinery.
"""

from __future__ import annotations

import enum

import attrs

from .candidate import Candidate

__all__ = [
    "Address",
    "CandidatePair",
    "GatheringStateChanged",
    "IceEvent",
    "LocalCandidateGathered",
    "PairState",
    "RoleChanged",
    "SelectedPairChanged",
    "ServerError",
    "StateChanged",
]

Address = tuple[str, int]


class PairState(enum.Enum):
    """RFC 8445 §6.1.2.6 candidate pair states."""

    FROZEN = "frozen"
    WAITING = "waiting"
    IN_PROGRESS = "in-progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.define(eq=False, slots=True)
class CandidatePair:
    """A local candidate (always a host or relay candidate: server-reflexive ones are replaced by
    their base, RFC 8445 §6.1.2.4) paired with a remote one, plus what the checks taught us."""

    local: Candidate
    remote: Candidate
    base: Address
    priority: int
    state: PairState = PairState.FROZEN
    #: set when a check on this pair succeeded (it is in the valid list, RFC 8445 §7.2.5.3.2)
    valid: bool = False
    nominated: bool = False
    #: controlled side: the peer asked to nominate this pair before our own check succeeded
    nominate_on_success: bool = False
    #: controlling side: a check carrying USE-CANDIDATE is (or was) in flight for this pair
    nominating: bool = False
    #: server-reflexive/peer-reflexive address the peer saw our check come from
    mapped_address: Address | None = None
    # Statistics, named as in the W3C RTCIceCandidatePairStats dictionary.
    requests_sent: int = 0
    requests_received: int = 0
    responses_sent: int = 0
    responses_received: int = 0
    consent_requests_sent: int = 0
    total_round_trip_time: float = 0.0
    current_round_trip_time: float | None = None
    last_request_received: float | None = None
    last_response_received: float | None = None

    @property
    def remote_address(self) -> Address:
        return (self.remote.host, self.remote.port)

    @property
    def foundation(self) -> tuple[str, str]:
        return (self.local.foundation, self.remote.foundation)

    def __repr__(self) -> str:
        return (
            f"<CandidatePair {self.base[0]}:{self.base[1]} -> {self.remote.host}:{self.remote.port}"
            f" {self.state.value}{' nominated' if self.nominated else ''}>"
        )


# --- events ---------------------------------------------------------------------------------


@attrs.frozen
class LocalCandidateGathered:
    """A new local candidate to signal to the peer (trickle ICE, RFC 8838)."""

    candidate: Candidate
    ufrag: str


@attrs.frozen
class GatheringStateChanged:
    """``new`` → ``gathering`` → ``complete`` (again ``gathering`` after an ICE restart)."""

    state: str
    ufrag: str


@attrs.frozen
class StateChanged:
    """The W3C RTCIceTransportState: new, checking, connected, completed, disconnected, failed,
    closed."""

    state: str


@attrs.frozen
class SelectedPairChanged:
    pair: CandidatePair


@attrs.frozen
class RoleChanged:
    """A role conflict (RFC 8445 §7.3.1.1) switched our role."""

    controlling: bool


@attrs.frozen
class ServerError:
    """A STUN server did not answer or answered with an error (the W3C icecandidateerror)."""

    address: str
    port: int
    url: str
    error_code: int
    error_text: str


IceEvent = (
    LocalCandidateGathered
    | GatheringStateChanged
    | StateChanged
    | SelectedPairChanged
    | RoleChanged
    | ServerError
)
