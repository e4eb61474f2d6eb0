"""TURN client core (RFC 8656), sans-IO. See ``docs/turn.md``."""

from __future__ import annotations

from .channel import (
    CHANNEL_MAX,
    CHANNEL_MIN,
    TurnError,
    encode_channel_data,
    is_channel_data_untrusted,
    parse_channel_data_untrusted,
)
from .client import TurnClient, TurnState, TurnStats, TurnUsageError
from .driver import TurnAllocation, TurnAllocationError, open_turn_allocation
from .events import (
    Allocated,
    AllocationClosed,
    AllocationFailed,
    AllocationRefreshed,
    ChannelBindFailed,
    ChannelBound,
    DataReceived,
    PermissionCreated,
    PermissionFailed,
    TurnEvent,
)

__all__ = [
    "CHANNEL_MAX",
    "CHANNEL_MIN",
    "Allocated",
    "AllocationClosed",
    "AllocationFailed",
    "AllocationRefreshed",
    "ChannelBindFailed",
    "ChannelBound",
    "DataReceived",
    "PermissionCreated",
    "PermissionFailed",
    "TurnAllocation",
    "TurnAllocationError",
    "TurnClient",
    "TurnError",
    "TurnEvent",
    "TurnState",
    "TurnStats",
    "TurnUsageError",
    "encode_channel_data",
    "is_channel_data_untrusted",
    "open_turn_allocation",
    "parse_channel_data_untrusted",
]
