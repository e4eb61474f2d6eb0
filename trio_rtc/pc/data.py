"""The peer connection's data-channel side: channels made before the SCTP transport exists, the
RTCSctpTransport once the data m-section is negotiated, and its ``datachannel`` events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from ..datachannel import RTCDataChannel
from ..dtls.driver import RTCDtlsTransport
from ..events import EventTarget, RTCDataChannelEvent
from ..exceptions import OperationError
from ..sctp.dcep import MAX_OPEN_CHANNELS
from ..sctp.transport import RTCSctpTransport

__all__ = ["DataChannels"]

_OPTIONS = frozenset(
    {"ordered", "maxPacketLifetime", "maxRetransmits", "protocol", "negotiated", "id", "priority"}
)

#: What we announce in ``a=max-message-size`` (RFC 8841 §6), as Chromium does.
LOCAL_MAX_MESSAGE_SIZE = 262144
#: Closed data channels a connection keeps listing in getStats (the most recent ones).
MAX_CLOSED_CHANNELS = 8


class DataChannels:
    """Owned by one RTCPeerConnection (``owner``), which re-dispatches ``datachannel``."""

    local_max_message_size = LOCAL_MAX_MESSAGE_SIZE

    def __init__(self, owner: EventTarget) -> None:
        self._owner = owner
        self.sctp: RTCSctpTransport | None = None
        #: True once createDataChannel was called: the next offer needs a data m-section.
        self.wanted = False
        self._pending: list[RTCDataChannel] = []
        #: The channels created or announced on this connection, for getStats: every open one
        #: and the last ``MAX_CLOSED_CHANNELS`` closed ones (a connection that opens and closes
        #: channels for hours must not keep them all).
        self.channels: list[RTCDataChannel] = []
        #: Each remembered channel's number, its stats id ``D<number>`` (stable while kept).
        self.numbers: dict[RTCDataChannel, int] = {}
        self._next_number = 0

    def create(self, label: str, options: Mapping[str, Any]) -> RTCDataChannel:
        unknown = set(options) - _OPTIONS
        if unknown:
            raise TypeError(
                f"RTCDataChannelInit has no member(s) {sorted(unknown)}; "
                f"expected some of {sorted(_OPTIONS)}"
            )
        channel = RTCDataChannel(label, **options)
        open_count = sum(1 for c in self.channels if c.readyState != "closed")
        if open_count >= MAX_OPEN_CHANNELS:
            # Ours and the peer's, as the DCEP manager counts them (it refuses the peer's OPENs
            # past the same number).
            raise OperationError(
                f"{open_count} data channels are open, the most one connection may have at once"
                f" (MAX_OPEN_CHANNELS = {MAX_OPEN_CHANNELS}); close one first"
            )
        if self.sctp is not None:
            self.sctp.add_channel(channel)  # OperationError if a negotiated id is taken
        else:
            self._pending.append(channel)
        self.wanted = True
        self._remember(channel)
        return channel

    def start(
        self,
        nursery: trio.Nursery,
        dtls: RTCDtlsTransport,
        remote_port: int,
        remote_max_message_size: int,
        run: Callable[[RTCSctpTransport], Awaitable[None]],
    ) -> None:
        """Create the SCTP transport over ``dtls`` and start ``run(transport)`` (the peer
        connection's supervising wrapper) in the peer connection's nursery."""
        if self.sctp is not None:
            return
        sctp = RTCSctpTransport(
            dtls,
            remote_port=remote_port,
            local_max_message_size=self.local_max_message_size,
            remote_max_message_size=remote_max_message_size,
            stream_factory=RTCDataChannel.for_remote_stream,
        )
        sctp._handler_queue = self._owner._handler_queue
        sctp.addEventListener("datachannel", self._on_remote_channel)
        self.sctp = sctp
        pending, self._pending = self._pending, []
        for channel in pending:
            sctp.add_channel(channel)
        nursery.start_soon(run, sctp, name="trio_rtc.sctp")

    def update_remote(self, remote_max_message_size: int) -> None:
        """A renegotiation may change the peer's ``a=max-message-size``."""
        if self.sctp is not None:
            self.sctp.set_remote_max_message_size(remote_max_message_size)

    def _remember(self, channel: RTCDataChannel) -> None:
        closed = [c for c in self.channels if c.readyState == "closed"]
        if len(closed) >= MAX_CLOSED_CHANNELS:
            forget = set(closed[: len(closed) - MAX_CLOSED_CHANNELS + 1])
            self.channels = [c for c in self.channels if c not in forget]
            for old in forget:
                del self.numbers[old]
        self.numbers[channel] = self._next_number
        self._next_number += 1
        self.channels.append(channel)

    def _on_remote_channel(self, event: RTCDataChannelEvent) -> None:
        self._remember(event.channel)
        self._owner.dispatchEvent(RTCDataChannelEvent("datachannel", event.channel))

    def close(self) -> list[bytes]:
        """``RTCPeerConnection.close()``: every channel ends ``closed`` without events. Returns
        the SCTP packets (the ABORT) for the closing connection to send through DTLS."""
        goodbye: list[bytes] = []
        if self.sctp is not None:
            self.sctp.stop()
            goodbye = self.sctp.goodbye(trio.current_time())
        pending, self._pending = self._pending, []
        for channel in pending:
            channel.on_stream_closed(None, False)
        return goodbye
