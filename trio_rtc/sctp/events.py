"""Events produced by :class:`~trio_rtc.sctp.association.SctpAssociation` (``next_event()``)."""

from __future__ import annotations

import attrs

__all__ = [
    "AssociationAborted",
    "AssociationClosed",
    "AssociationEstablished",
    "BufferedAmountChanged",
    "MessageReceived",
    "SctpEvent",
    "StreamsReset",
]


@attrs.frozen
class AssociationEstablished:
    """The four-way handshake finished (RFC 9260 §5.1)."""

    outbound_streams: int
    inbound_streams: int
    #: Both sides announced RFC 9653 zero checksum for DTLS; we now send checksum 0.
    zero_checksum: bool
    #: The peer supports FORWARD-TSN (RFC 3758), so partial reliability works.
    partial_reliability: bool
    #: The peer supports RE-CONFIG stream reset (RFC 6525).
    stream_reset: bool


@attrs.frozen
class MessageReceived:
    """One complete user message (all fragments reassembled)."""

    stream_id: int
    ppid: int
    data: bytes
    ordered: bool = True


@attrs.frozen
class StreamsReset:
    """Stream sequence numbers were reset (RFC 6525).

    ``incoming``: the peer reset its outgoing streams (our incoming side); after this event no
    more messages arrive on these ids until the peer reuses them. Otherwise our own outgoing reset
    request for these ids was performed by the peer.
    """

    stream_ids: tuple[int, ...]
    incoming: bool


@attrs.frozen
class BufferedAmountChanged:
    """Bytes queued on a stream but not yet sent the first time decreased."""

    stream_id: int
    buffered_amount: int


@attrs.frozen
class AssociationClosed:
    """Graceful SHUTDOWN finished (RFC 9260 §9.2)."""


@attrs.frozen
class AssociationAborted:
    """The association ended abruptly: peer ABORT, our abort(), or too many retransmissions."""

    reason: str
    by_peer: bool
    #: The peer's ABORT said it closed on purpose: every error cause it carried is
    #: User-Initiated Abort (RFC 9260 §3.3.10.12), which is what a WebRTC stack sends when its
    #: application closes the connection (ours does in ``abort()``). The channels still see
    #: it as an error, as browsers show it; this tells a closing peer from a failing one (the
    #: reason names the causes). False for every other ABORT (no cause, a protocol violation,
    #: ...) and for our own aborts.
    user_initiated: bool = False


SctpEvent = (
    AssociationEstablished
    | MessageReceived
    | StreamsReset
    | BufferedAmountChanged
    | AssociationClosed
    | AssociationAborted
)
