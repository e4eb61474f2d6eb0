"""The seam between the SCTP transport and the data channels above it.

The SCTP layer knows streams, not W3C channels: a layer above (``trio_rtc.datachannel``) attaches
a :class:`StreamUser` for each channel with :meth:`RTCSctpTransport.add_channel`, and hears about
its stream through the five ``on_stream_*`` calls below, made from the SCTP task. It queues
messages and requests through the transport's public methods (``send_message``,
``buffered_amount``, ``close_stream``, ``watch_buffered``, ``pause_reading``,
``resume_reading``, ``forget``). Channels the peer opens are made by the ``stream_factory`` the
layer above gives the transport. Nothing crosses the seam but these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..events import HandlerQueue
    from ..exceptions import RTCError
    from .dcep import DataChannelParameters

__all__ = ["StreamUser"]


class StreamUser(Protocol):
    """What the SCTP transport needs of a channel attached to it (RTCDataChannel is one)."""

    def stream_parameters(self) -> DataChannelParameters:
        """How to open the stream (label, protocol, reliability, priority as the DCEP value,
        negotiated). ``stream_id`` is the id a negotiated channel asked for, else -1."""

    def on_stream_attached(self, transport: object, handler_queue: HandlerQueue | None) -> None:
        """The transport took the channel; async event handlers run through ``handler_queue``."""

    def on_stream_assigned(self, stream_id: int) -> None:
        """The stream id is fixed (webrtc-pc: at once on a connected transport)."""

    def on_stream_open(self) -> None:
        """The stream is open on the association: readyState ``open``, the ``open`` event."""

    def on_stream_message(self, data: str | bytes, size: int) -> None:
        """One message arrived (``size``: its length on the wire, 0 for an empty one)."""

    def on_stream_closing(self) -> None:
        """The peer reset its direction of the stream (webrtc-pc §6.2.4: ``closing``)."""

    def on_stream_closed(self, error: RTCError | None, fire: bool) -> None:
        """The stream ended (with ``error`` if the transport failed); events only if ``fire``."""

    def stats(self) -> dict[str, object]:
        """The channel's ``RTCDataChannelStats`` members (for ``channel_stats``)."""

    def on_buffered_amount(self, amount: int) -> bool:
        """The stream's buffered amount fell to ``amount``; return whether to keep watching."""
