"""SCTP for WebRTC data channels (RFC 9260 over DTLS per RFC 8261, RFC 8831, RFC 8832).

Pure sans-IO cores: :class:`SctpAssociation` (the association) and :class:`DcepChannelManager`
(data channel establishment). See ``docs/sctp.md``.
"""

from __future__ import annotations

from .association import SctpAssociation
from .chunks import SctpError
from .crc32c import IMPLEMENTATION as CRC32C_IMPLEMENTATION
from .dcep import (
    ChannelAcknowledged,
    ChannelClosed,
    ChannelMessage,
    ChannelOpened,
    ChannelType,
    DataChannelOpen,
    DataChannelParameters,
    DcepChannelManager,
    DcepError,
    DcepEvent,
    Ppid,
)
from .events import (
    AssociationAborted,
    AssociationClosed,
    AssociationEstablished,
    BufferedAmountChanged,
    MessageReceived,
    SctpEvent,
    StreamsReset,
)
from .states import AssociationState, SctpStats

__all__ = [
    "CRC32C_IMPLEMENTATION",
    "AssociationAborted",
    "AssociationClosed",
    "AssociationEstablished",
    "AssociationState",
    "BufferedAmountChanged",
    "ChannelAcknowledged",
    "ChannelClosed",
    "ChannelMessage",
    "ChannelOpened",
    "ChannelType",
    "DataChannelOpen",
    "DataChannelParameters",
    "DcepChannelManager",
    "DcepError",
    "DcepEvent",
    "MessageReceived",
    "Ppid",
    "SctpAssociation",
    "SctpError",
    "SctpEvent",
    "SctpStats",
    "StreamsReset",
]
