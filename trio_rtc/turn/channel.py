"""ChannelData framing (RFC 8656 §12.4, §12.5): a 4-byte header instead of a STUN message.

    0                   1                   2                   3
    | Channel Number (0x4000-0x4FFF) | Length (of the application data) |
    | Application Data ... (padded to 4 bytes over TCP, optional over UDP)

The first two bits are ``01``, which is how a ChannelData message is told apart from STUN
(``00``) on the same 5-tuple (RFC 8656 §12, RFC 7983).
"""

from __future__ import annotations

import struct

__all__ = [
    "CHANNEL_MAX",
    "CHANNEL_MIN",
    "TurnError",
    "encode_channel_data",
    "is_channel_data_untrusted",
    "parse_channel_data_untrusted",
]

# RFC 8656 §12: 0x4000-0x4FFF are channel numbers; 0x5000-0x7FFF are reserved (RFC 7983
# keeps them away from other protocols) and must not be used or accepted.
CHANNEL_MIN = 0x4000
CHANNEL_MAX = 0x4FFF
_HEADER = struct.Struct("!HH")


class TurnError(Exception):
    """Malformed TURN input (ChannelData framing); callers count it and drop the datagram."""


def encode_channel_data(channel: int, payload: bytes, *, pad: bool = False) -> bytes:
    """One ChannelData message. ``pad=True`` pads to 4 bytes, required over TCP (§12.5)."""
    if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
        raise ValueError(f"channel number {channel:#x} is not in 0x4000-0x4FFF")
    length = len(payload)
    if length > 0xFFFF:
        raise ValueError(f"ChannelData payload of {length} bytes is over 65535")
    header = _HEADER.pack(channel, length)
    if pad and length & 3:
        return header + payload + b"\x00" * (-length & 3)
    return header + payload


def is_channel_data_untrusted(data: bytes | bytearray | memoryview) -> bool:
    """Cheap demultiplexing test: the first two bits are ``01`` (RFC 8656 §12)."""
    return len(data) >= 4 and 0x40 <= data[0] <= 0x7F


def parse_channel_data_untrusted(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """``(channel number, application data)`` of one datagram; raises :class:`TurnError`.

    Over UDP the datagram may carry padding (or any trailing bytes) after the data; they are
    ignored. A Length running past the end of the datagram is an error (RFC 8656 §12.5: the
    message is discarded).
    """
    size = len(data)
    if size < 4:
        raise TurnError("shorter than a ChannelData header")
    channel, length = _HEADER.unpack_from(data, 0)
    if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
        raise TurnError(f"channel number {channel:#x} is not in 0x4000-0x4FFF")
    if length > size - 4:
        raise TurnError(f"ChannelData length {length} runs past the {size}-byte datagram")
    return channel, bytes(data[4 : 4 + length])
