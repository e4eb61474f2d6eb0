"""Association states, the state sets the core checks, and its statistics (RFC 9260 §4)."""

from __future__ import annotations

import enum
import struct

import attrs

__all__ = [
    "CAN_SEND",
    "DATA_STATES",
    "HEARTBEAT_INFO",
    "SENDS_DATA",
    "AssociationState",
    "SctpStats",
]

# Our HEARTBEAT info: a random nonce and the send time (RFC 9260 §8.3 leaves it to the sender).
HEARTBEAT_INFO = struct.Struct("!Qd")


class AssociationState(enum.Enum):
    CLOSED = "closed"
    COOKIE_WAIT = "cookie-wait"
    COOKIE_ECHOED = "cookie-echoed"
    ESTABLISHED = "established"
    SHUTDOWN_PENDING = "shutdown-pending"
    SHUTDOWN_SENT = "shutdown-sent"
    SHUTDOWN_RECEIVED = "shutdown-received"
    SHUTDOWN_ACK_SENT = "shutdown-ack-sent"

    # Members are singletons compared by identity: hash them by identity too, in C, instead
    # of Enum's Python-level hash of the name (state sets are tested on every packet).
    __hash__ = object.__hash__


CAN_SEND = frozenset(
    {
        AssociationState.CLOSED,
        AssociationState.COOKIE_WAIT,
        AssociationState.COOKIE_ECHOED,
        AssociationState.ESTABLISHED,
    }
)
DATA_STATES = frozenset(
    {
        AssociationState.ESTABLISHED,
        AssociationState.SHUTDOWN_PENDING,
        AssociationState.SHUTDOWN_SENT,
        AssociationState.SHUTDOWN_RECEIVED,
    }
)


@attrs.define
class SctpStats:
    packets_received: int = 0
    packets_sent: int = 0
    #: Packets dropped: bad checksum, truncated, bad lengths, malformed chunks.
    malformed_packets: int = 0
    #: Packets dropped for a wrong verification tag or port.
    foreign_packets: int = 0
    #: DATA chunks dropped because the peer overran our receive window.
    data_chunks_dropped: int = 0
    duplicate_data_chunks: int = 0
    retransmitted_chunks: int = 0
    fast_retransmitted_chunks: int = 0
    t3_expirations: int = 0
    abandoned_messages: int = 0
    unknown_chunks: int = 0
    errors_received: int = 0


SENDS_DATA = frozenset(
    {
        AssociationState.ESTABLISHED,
        AssociationState.SHUTDOWN_PENDING,
        AssociationState.SHUTDOWN_RECEIVED,
    }
)
