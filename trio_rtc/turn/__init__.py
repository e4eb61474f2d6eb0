"""TURN client core (RFC 8656), sans-IO, and its trio driver. See ``docs/turn.md``.

The core names import eagerly and without trio; the driver's (``TurnAllocation``,
``TurnAllocationError``, ``open_turn_allocation``) load :mod:`trio_rtc.turn.driver`, and with it
trio, on first access (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .channel import (
    CHANNEL_MAX,
    CHANNEL_MIN,
    StreamFramer,
    TurnError,
    encode_channel_data,
    is_channel_data_untrusted,
    parse_channel_data_untrusted,
)
from .client import TurnClient, TurnState, TurnStats, TurnUsageError
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

if TYPE_CHECKING:
    from .driver import TurnAllocation, TurnAllocationError, open_turn_allocation

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
    "StreamFramer",
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

_DRIVER_NAMES = frozenset({"TurnAllocation", "TurnAllocationError", "open_turn_allocation"})


# Hidden from type checkers, which would otherwise accept any attribute of this module: they
# see the real names through the TYPE_CHECKING imports above.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import the trio driver on first access to one of its names."""
        if name not in _DRIVER_NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from . import driver

        value = getattr(driver, name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
