"""Test and research tools: a seeded virtual network with NATs, STUN/TURN servers, a scenario
runner, and a real lossy relay.

* :class:`VirtualNetwork` — installed for a trio run, it makes ``open_udp_endpoint`` return
  in-memory endpoints with loss (random or bursty, :class:`BurstLoss`), delay, jitter,
  reordering, duplication and a bottleneck, driven by trio time so runs under ``MockClock`` are
  deterministic; ``capture=True`` logs every delivered datagram.
* :class:`Nat` with the RFC 4787 behaviours (:data:`FULL_CONE`, :data:`ADDRESS_RESTRICTED`,
  :data:`PORT_RESTRICTED`, :data:`SYMMETRIC`, or any :class:`NatBehavior`).
* :class:`StunServer`, :class:`TurnServer` — in-process servers on a (virtual) public address.
* :class:`Scenario`, :func:`run_session`, :func:`run_many` — seeded experiments with two peer
  connections, written out as a :class:`Results` table.
* :class:`UdpRelay` — the same impairments applied to real UDP on loopback, for end-to-end tests.

See ``docs/testing.md`` and ``docs/research.md``.
"""

from __future__ import annotations

from .nat import (
    ADDRESS_RESTRICTED,
    FULL_CONE,
    PORT_RESTRICTED,
    SYMMETRIC,
    Filtering,
    Mapping,
    Nat,
    NatBehavior,
    NatStats,
)
from .relay import UdpRelay
from .scenario import (
    BulkTransfer,
    Results,
    Scenario,
    Session,
    SessionResult,
    Topology,
    connect_only,
    deterministic_trio,
    run_many,
    run_session,
    simulate,
)
from .servers import StunServer, TurnServer, TurnServerStats
from .virtual_network import (
    BurstLoss,
    CapturedDatagram,
    LinkConditions,
    NetworkStats,
    VirtualEndpoint,
    VirtualNetwork,
    virtual_network,
)

__all__ = [
    "ADDRESS_RESTRICTED",
    "FULL_CONE",
    "PORT_RESTRICTED",
    "SYMMETRIC",
    "BulkTransfer",
    "BurstLoss",
    "CapturedDatagram",
    "Filtering",
    "LinkConditions",
    "Mapping",
    "Nat",
    "NatBehavior",
    "NatStats",
    "NetworkStats",
    "Results",
    "Scenario",
    "Session",
    "SessionResult",
    "StunServer",
    "Topology",
    "TurnServer",
    "TurnServerStats",
    "UdpRelay",
    "VirtualEndpoint",
    "VirtualNetwork",
    "connect_only",
    "deterministic_trio",
    "run_many",
    "run_session",
    "simulate",
    "virtual_network",
]
