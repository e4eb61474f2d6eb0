"""DCEP (RFC 8832) over two associations: open/ack, PPIDs, negotiated channels, stream id
parity, close by resetting both directions and reuse of the id; fuzzing of the OPEN parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_sctp_harness import Pair

from trio_rtc.sctp.association import SctpAssociation
from trio_rtc.sctp.dcep import (
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
)
from trio_rtc.sctp.events import SctpEvent


class Channels:
    def __init__(self, *, loss: float = 0.0) -> None:
        self.pair = Pair(seed=21, loss=loss, reorder=0.2 if loss else 0.0, on_event=self._on_event)
        self.managers = {
            id(self.pair.a): DcepChannelManager(self.pair.a, is_client=True),
            id(self.pair.b): DcepChannelManager(self.pair.b, is_client=False),
        }
        self.events: dict[int, list[DcepEvent]] = {id(self.pair.a): [], id(self.pair.b): []}
        self.pair.connect()

    def _on_event(self, core: SctpAssociation, event: SctpEvent) -> None:
        manager = self.managers[id(core)]
        self.events[id(core)].extend(manager.handle_event(event, now=self.pair.now))

    def of(self, core: SctpAssociation, kind: type[DcepEvent]) -> list[DcepEvent]:
        return [e for e in self.events[id(core)] if isinstance(e, kind)]


def test_open_ack_messages_and_ppids() -> None:
    channels = Channels()
    pair = channels.pair
    a = channels.managers[id(pair.a)]
    stream_id = a.allocate_stream_id()
    assert stream_id % 2 == 0
    a.open_channel(
        DataChannelParameters(stream_id, label="chat", protocol="p", max_retransmits=3),
        now=pair.now,
    )
    for data in ("hello", "", b"\x00\x01", b""):
        a.send(stream_id, data, now=pair.now)
    pair.run(lambda: len(channels.of(pair.b, ChannelMessage)) == 4)
    (opened,) = channels.of(pair.b, ChannelOpened)
    assert isinstance(opened, ChannelOpened) and opened.by_peer
    assert opened.parameters == DataChannelParameters(
        stream_id, label="chat", protocol="p", max_retransmits=3
    )
    received = [
        e.data for e in channels.of(pair.b, ChannelMessage) if isinstance(e, ChannelMessage)
    ]
    assert received == ["hello", "", b"\x00\x01", b""]
    pair.run(lambda: bool(channels.of(pair.a, ChannelAcknowledged)))
    # The answerer replies on the same stream.
    b = channels.managers[id(pair.b)]
    b.send(stream_id, "pong", now=pair.now)
    pair.run(lambda: bool(channels.of(pair.a, ChannelMessage)))
    assert channels.of(pair.a, ChannelMessage) == [ChannelMessage(stream_id, "pong")]
    assert b.allocate_stream_id() % 2 == 1


def test_negotiated_channel_needs_no_dcep() -> None:
    channels = Channels()
    pair = channels.pair
    for core in (pair.a, pair.b):
        channels.managers[id(core)].open_channel(
            DataChannelParameters(7, label="pre", negotiated=True, ordered=False), now=pair.now
        )
    channels.managers[id(pair.a)].send(7, b"raw", now=pair.now)
    pair.run(lambda: bool(channels.of(pair.b, ChannelMessage)))
    assert channels.of(pair.b, ChannelOpened) == []
    assert channels.of(pair.b, ChannelMessage) == [ChannelMessage(7, b"raw")]


def test_close_resets_both_directions_and_frees_the_id() -> None:
    channels = Channels(loss=0.1)
    pair = channels.pair
    a = channels.managers[id(pair.a)]
    stream_id = a.allocate_stream_id()
    a.open_channel(DataChannelParameters(stream_id, label="x"), now=pair.now)
    a.send(stream_id, "last words", now=pair.now)
    a.close_channel(stream_id)
    pair.run(
        lambda: (
            bool(channels.of(pair.a, ChannelClosed)) and bool(channels.of(pair.b, ChannelClosed))
        )
    )
    assert channels.of(pair.b, ChannelMessage) == [ChannelMessage(stream_id, "last words")]
    assert a.allocate_stream_id() == stream_id
    # Reuse: a new channel on the same id works from zero.
    a.open_channel(DataChannelParameters(stream_id, label="y"), now=pair.now)
    a.send(stream_id, "again", now=pair.now)
    pair.run(lambda: len(channels.of(pair.b, ChannelMessage)) == 2)
    assert channels.of(pair.b, ChannelMessage)[-1] == ChannelMessage(stream_id, "again")
    with pytest.raises(ValueError, match="in use"):
        a.open_channel(DataChannelParameters(stream_id), now=pair.now)


def test_channel_types_round_trip() -> None:
    for parameters, kind in [
        (DataChannelParameters(0), ChannelType.RELIABLE),
        (DataChannelParameters(0, ordered=False), ChannelType.RELIABLE_UNORDERED),
        (DataChannelParameters(0, max_retransmits=0), ChannelType.PARTIAL_RELIABLE_REXMIT),
        (
            DataChannelParameters(0, ordered=False, max_packet_lifetime=150),
            ChannelType.PARTIAL_RELIABLE_TIMED_UNORDERED,
        ),
    ]:
        message = parameters.to_open()
        assert message.channel_type == kind
        decoded = DataChannelOpen.decode_untrusted(message.encode())
        assert DataChannelParameters.from_open(0, decoded) == parameters


def test_open_wire_format() -> None:
    # RFC 8832 §5.1: type 3, channel type, priority, reliability, label and protocol lengths.
    message = DataChannelOpen(0x00, 256, 0, "ab", "c")
    assert message.encode() == bytes.fromhex("03 00 0100 00000000 0002 0001") + b"abc"


@given(st.binary(max_size=64))
def test_fuzz_open_parser(data: bytes) -> None:
    try:
        DataChannelOpen.decode_untrusted(data)
    except DcepError:
        pass
