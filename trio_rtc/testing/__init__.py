"""Test tools for trio_rtc and its users: an in-memory impaired network and a real lossy relay.

* :class:`VirtualNetwork` — installed for a trio run, it makes ``open_udp_endpoint`` return
  in-memory endpoints with loss, delay, jitter, reordering, duplication and a bottleneck, driven
  by trio time so tests under ``MockClock`` are deterministic.
* :class:`UdpRelay` — the same impairments applied to real UDP on loopback, for end-to-end tests.

See ``docs/testing.md``.
"""

from __future__ import annotations

from .relay import UdpRelay
from .virtual_network import (
    LinkConditions,
    NetworkStats,
    VirtualEndpoint,
    VirtualNetwork,
    virtual_network,
)

__all__ = [
    "LinkConditions",
    "NetworkStats",
    "UdpRelay",
    "VirtualEndpoint",
    "VirtualNetwork",
    "virtual_network",
]
