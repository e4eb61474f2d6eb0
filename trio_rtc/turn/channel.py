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
    "StreamFramer",
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


class StreamFramer:
    """Cuts the byte stream of a TURN connection over TCP or TLS into messages (RFC 8656
    §3.1, §12.5; RFC 8489 §6.2.2): STUN messages (first two bits ``00``; 20-byte header plus
    its Length) and ChannelData (``01``; 4-byte header plus its Length, padded to 4 bytes)
    follow one another with nothing between them.

    :meth:`feed` returns the complete messages (ChannelData without its padding) and keeps the
    rest. Anything else at a message boundary cannot be resynchronised: :class:`TurnError`,
    and the connection is to be closed. At most one incomplete message (under 64 KiB plus a
    header) is ever held, so a peer cannot make it grow without bound.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        offset = 0
        end = len(buffer)
        while end - offset >= 4:
            first = buffer[offset]
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if first < 0x40:
                if length & 3:
                    raise TurnError(f"STUN message length {length} is not a multiple of 4")
                size = 20 + length
                if end - offset < size:
                    break
                messages.append(bytes(buffer[offset : offset + size]))
            elif first < 0x80:
                channel = (first << 8) | buffer[offset + 1]
                if channel > CHANNEL_MAX:
                    raise TurnError(f"channel number {channel:#x} is not in 0x4000-0x4FFF")
                size = 4 + length + (-length & 3)
                if end - offset < size:
                    break
                messages.append(bytes(buffer[offset : offset + 4 + length]))
            else:
                raise TurnError(f"byte {first:#04x} starts neither STUN nor ChannelData")
            offset += size
        if offset:
            del buffer[:offset]
        return messages
