"""Events a :class:`~trio_rtc.turn.TurnClient` emits (drained with ``next_event()``)."""

from __future__ import annotations

import attrs

from ..stun import Address

__all__ = [
    "Allocated",
    "AllocationClosed",
    "AllocationFailed",
    "AllocationRefreshed",
    "ChannelBindFailed",
    "ChannelBound",
    "DataReceived",
    "PermissionCreated",
    "PermissionFailed",
    "TurnEvent",
]


@attrs.frozen
class Allocated:
    """The Allocate succeeded: the relayed transport address is usable."""

    relayed_address: Address
    mapped_address: Address | None
    lifetime: int


@attrs.frozen
class AllocationFailed:
    """Allocate or Refresh failed; ``code`` is the STUN error code, None for a timeout."""

    code: int | None
    reason: str


@attrs.frozen
class AllocationRefreshed:
    """A Refresh succeeded; the allocation now lives ``lifetime`` more seconds."""

    lifetime: int


@attrs.frozen
class AllocationClosed:
    """The allocation was released (Refresh with LIFETIME 0 answered, or given up on)."""


@attrs.frozen
class PermissionCreated:
    peer_ip: str


@attrs.frozen
class PermissionFailed:
    peer_ip: str
    code: int | None
    reason: str


@attrs.frozen
class ChannelBound:
    peer: Address
    channel: int


@attrs.frozen
class ChannelBindFailed:
    peer: Address
    channel: int
    code: int | None
    reason: str


@attrs.frozen
class DataReceived:
    """Application data from ``peer``, relayed by the server (Data indication or ChannelData)."""

    peer: Address
    data: bytes


TurnEvent = (
    Allocated
    | AllocationFailed
    | AllocationRefreshed
    | AllocationClosed
    | PermissionCreated
    | PermissionFailed
    | ChannelBound
    | ChannelBindFailed
    | DataReceived
)
