"""RTP payload for redundant audio data (RFC 2198), as browsers use it for Opus (pure).

Chromium offers ``a=rtpmap:63 red/48000/2`` with ``a=fmtp:63 111/111``: each RED packet carries
the current Opus frame (the *primary*) and copies of the previous one or two frames, so a lost
packet's frame usually arrives with the next one. The RTP header (sequence number, timestamp,
marker, SSRC) belongs to the primary; a redundant block says how far back it is with a 14-bit
timestamp offset.

Wire format (RFC 2198 §3): one 4-byte header per redundant block, oldest first::

     0                   1                   2                   3
    |F|   block PT  |  timestamp offset         |   block length    |

then a 1-byte header ``|0| block PT |`` for the primary, then the blocks' data in header order
(the primary's data runs to the end of the payload).

* :class:`RedEncoder` wraps each primary payload with the previous ``distance`` payloads.
* :func:`parse_red_untrusted` splits a received payload into :class:`RedBlock` values; anything
  malformed raises :class:`~trio_rtc.rtp.errors.RtpError`, and nothing else.
* :class:`RedDecoder` turns the RED packets of one stream into :class:`RedFrame` values: every
  primary, and the frames of lost packets recovered from later packets' redundancy, each frame
  once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import attrs

from .errors import RtpError
from .sequence import SequenceUnwrapper, timestamp_diff

__all__ = [
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "MAX_BLOCK_LENGTH",
    "MAX_DISTANCE",
    "MAX_RED_BLOCKS",
    "MAX_TIMESTAMP_OFFSET",
    "RedBlock",
    "RedDecoder",
    "RedEncoder",
    "RedFrame",
    "parse_red_untrusted",
]

#: The 14-bit timestamp offset and 10-bit block length of a redundant block header (§3).
MAX_TIMESTAMP_OFFSET = (1 << 14) - 1
MAX_BLOCK_LENGTH = (1 << 10) - 1
#: Most redundant copies the encoder adds: Chromium sends one or two.
MAX_DISTANCE = 2
#: Most blocks, primary included, that :func:`parse_red_untrusted` accepts in one packet. Nobody
#: sends more than a few; the bound keeps a hostile packet from costing more than a normal one.
MAX_RED_BLOCKS = 8
#: A RED payload the encoder does not exceed with redundancy: with the RTP header, extensions,
#: the SRTP tag and IP/UDP it stays under a 1280-byte IPv6 minimum MTU.
DEFAULT_MAX_PAYLOAD_SIZE = 1100
#: Frames the decoder remembers to tell a recovered frame from one already delivered.
_HISTORY = 256


@attrs.frozen
class RedBlock:
    """One block of a RED payload: the payload type of its data and how many RTP timestamp
    units it is older than the packet's timestamp (0 for the primary)."""

    payload_type: int
    timestamp_offset: int
    data: bytes


@attrs.frozen
class RedFrame:
    """One frame out of a RED stream, with the RTP sequence number and timestamp it had (or,
    when ``recovered``, would have had) as a packet of its own."""

    sequence_number: int
    timestamp: int
    payload_type: int
    data: bytes
    recovered: bool = False


def parse_red_untrusted(payload: bytes) -> list[RedBlock]:
    """The blocks of a RED payload in wire order, the primary last.

    Raises :class:`RtpError` when the headers run past the payload, a block's length runs past
    it, or there are more than :data:`MAX_RED_BLOCKS` blocks. A primary without data is allowed
    (the header alone says which payload type it would have)."""
    size = len(payload)
    headers: list[tuple[int, int, int]] = []
    position = 0
    while True:
        if position >= size:
            raise RtpError(f"RED payload of {size} bytes ends inside its block headers")
        first = payload[position]
        if not first & 0x80:
            primary_type = first & 0x7F
            position += 1
            break
        if len(headers) >= MAX_RED_BLOCKS - 1:
            raise RtpError(f"RED payload has more than {MAX_RED_BLOCKS} blocks")
        if position + 4 > size:
            raise RtpError(f"RED payload of {size} bytes ends inside a block header")
        word = int.from_bytes(payload[position : position + 4], "big")
        headers.append(((word >> 24) & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
        position += 4
    blocks: list[RedBlock] = []
    for payload_type, offset, length in headers:
        end = position + length
        if end > size:
            raise RtpError(
                f"RED block of {length} bytes at offset {position} runs past the {size}-byte payload"
            )
        blocks.append(RedBlock(payload_type, offset, bytes(payload[position:end])))
        position = end
    blocks.append(RedBlock(primary_type, 0, bytes(payload[position:])))
    return blocks


def _check_payload_type(payload_type: int) -> None:
    if not 0 <= payload_type <= 0x7F:
        raise ValueError(f"payload type {payload_type} is outside 0..127")


class RedEncoder:
    """Makes RED payloads of one stream: ``encode(payload_type, timestamp, data)`` per packet.

    Each payload carries the previous ``distance`` (1 or 2) frames before the primary, the most
    recent ones first to be kept. Going back from the previous frame, copying stops at the first
    frame that cannot be carried: its timestamp offset is not in 1..2**14-1, its length is 0 or
    not below 2**10, or it would take the payload past ``max_payload_size``. Stopping there
    (rather than skipping it and taking an older one) keeps the redundant blocks the frames of
    the packets just before this one, so a receiver that numbers them by position
    (:class:`RedDecoder`, Chromium) gets the sequence numbers right. The first packets carry
    fewer blocks; a primary too large for the limit goes out alone."""

    __slots__ = ("_distance", "_history", "_max_payload_size")

    def __init__(
        self, distance: int = 1, *, max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE
    ) -> None:
        if not 1 <= distance <= MAX_DISTANCE:
            raise ValueError(f"RED distance {distance}; expected 1..{MAX_DISTANCE}")
        if max_payload_size < 1:
            raise ValueError(f"max_payload_size {max_payload_size}; expected at least 1")
        self._distance = distance
        self._max_payload_size = max_payload_size
        self._history: deque[tuple[int, int, bytes]] = deque(maxlen=distance)

    @property
    def distance(self) -> int:
        return self._distance

    def reset(self) -> None:
        """Forget the previous frames (a new stream, or after a pause in sending)."""
        self._history.clear()

    def encode(self, payload_type: int, timestamp: int, data: bytes) -> bytes:
        """The RED payload of the packet that carries ``data`` (the primary, of
        ``payload_type``) at RTP ``timestamp``; remembers it for the next packets."""
        _check_payload_type(payload_type)
        if not 0 <= timestamp <= 0xFFFF_FFFF:
            raise ValueError(f"RTP timestamp {timestamp} is outside 0..2**32-1")
        data = bytes(data)
        size = 1 + len(data)
        chosen: list[tuple[int, int, bytes]] = []  # newest first
        for block_type, block_timestamp, block_data in reversed(self._history):
            offset = timestamp_diff(timestamp, block_timestamp)
            cost = 4 + len(block_data)
            if (
                not 0 < offset <= MAX_TIMESTAMP_OFFSET
                or not 0 < len(block_data) <= MAX_BLOCK_LENGTH
                or size + cost > self._max_payload_size
            ):
                break
            chosen.append((block_type, offset, block_data))
            size += cost
        self._history.append((payload_type, timestamp, data))
        chosen.reverse()
        out = bytearray()
        for block_type, offset, block_data in chosen:
            word = 0x8000_0000 | block_type << 24 | offset << 10 | len(block_data)
            out += word.to_bytes(4, "big")
        out.append(payload_type)
        for _, _, block_data in chosen:
            out += block_data
        out += data
        return bytes(out)


class RedDecoder:
    """Frames out of the RED packets of one stream (one SSRC), each frame once.

    :meth:`receive` takes a packet's sequence number, timestamp and payload and returns its
    frames, oldest first: the recovered ones, then the primary. A redundant block is the frame of
    a packet just before this one (block ``j`` of ``n`` belongs to sequence number
    ``sequence_number - (n - j)``; see :class:`RedEncoder` on why that holds), and is delivered
    only if that packet has not arrived and no frame with its timestamp was delivered, and it
    is not from before the first packet received (those were not lost, just not ours to see).
    Duplicated packets, and late packets whose frame was already recovered, give nothing.

    Raises :class:`RtpError` for a malformed payload (the caller drops the packet) and
    ``ValueError`` for a sequence number or timestamp out of range (our own bug)."""

    __slots__ = (
        "_delivered",
        "_delivered_order",
        "_first",
        "_received",
        "_received_order",
        "_unwrapper",
        "frames_recovered",
    )

    def __init__(self) -> None:
        self._unwrapper = SequenceUnwrapper()
        self._first: int | None = None
        self._received: set[int] = set()  # extended sequence numbers of arrived packets
        self._received_order: deque[int] = deque()
        self._delivered: set[int] = set()  # timestamps of delivered frames
        self._delivered_order: deque[int] = deque()
        #: Frames delivered from redundancy because their own packet was missing.
        self.frames_recovered = 0

    def receive(self, sequence_number: int, timestamp: int, payload: bytes) -> list[RedFrame]:
        if not 0 <= timestamp <= 0xFFFF_FFFF:
            raise ValueError(f"RTP timestamp {timestamp} is outside 0..2**32-1")
        blocks = parse_red_untrusted(payload)
        extended = self._unwrapper.unwrap(sequence_number)
        if self._first is None:
            self._first = extended
        highest = self._unwrapper.highest
        assert highest is not None
        if extended <= highest - _HISTORY or extended in self._received:
            return []  # too old to tell whether it was delivered, or a duplicate
        self._remember(self._received, self._received_order, extended)
        frames: list[RedFrame] = []
        redundant = blocks[:-1]
        for index, block in enumerate(redundant):
            block_sequence = extended - (len(redundant) - index)
            block_timestamp = (timestamp - block.timestamp_offset) & 0xFFFF_FFFF
            if (
                block.timestamp_offset == 0
                or block_sequence < self._first
                or block_sequence <= highest - _HISTORY
                or block_sequence in self._received
                or block_timestamp in self._delivered
            ):
                continue
            self._remember(self._delivered, self._delivered_order, block_timestamp)
            self.frames_recovered += 1
            frames.append(
                RedFrame(
                    block_sequence & 0xFFFF,
                    block_timestamp,
                    block.payload_type,
                    block.data,
                    recovered=True,
                )
            )
        primary = blocks[-1]
        if timestamp not in self._delivered:
            self._remember(self._delivered, self._delivered_order, timestamp)
            frames.append(RedFrame(sequence_number, timestamp, primary.payload_type, primary.data))
        return frames

    def receive_all(self, packets: Iterable[tuple[int, int, bytes]]) -> list[RedFrame]:
        """:meth:`receive` for each ``(sequence_number, timestamp, payload)``; a malformed
        payload is skipped."""
        frames: list[RedFrame] = []
        for sequence_number, timestamp, payload in packets:
            try:
                frames.extend(self.receive(sequence_number, timestamp, payload))
            except RtpError:
                continue
        return frames

    @staticmethod
    def _remember(seen: set[int], order: deque[int], value: int) -> None:
        seen.add(value)
        order.append(value)
        if len(order) > _HISTORY:
            seen.discard(order.popleft())
