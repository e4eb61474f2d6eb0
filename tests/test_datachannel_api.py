"""RTCDataChannel and RTCSctpTransport attributes and argument checks, without a network."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from dtls_sim import certs

from trio_rtc.datachannel import MessageEvent, RTCDataChannel, RTCDataChannelEvent
from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.events import RTCErrorEvent
from trio_rtc.exceptions import InvalidStateError
from trio_rtc.sctp.transport import RTCSctpTransport


def dtls(is_client: bool = True) -> RTCDtlsTransport:
    a, b = certs()
    return RTCDtlsTransport(None, a, is_client=is_client, remote_fingerprints=b.getFingerprints())


def test_defaults() -> None:
    channel = RTCDataChannel()
    assert channel.label == "" and channel.protocol == ""
    assert channel.ordered and not channel.negotiated
    assert channel.maxPacketLifetime is None and channel.maxRetransmits is None
    assert channel.id is None and channel.priority == "low"
    assert channel.readyState == "connecting"
    assert channel.bufferedAmount == 0 and channel.bufferedAmountLowThreshold == 0
    assert channel.binaryType == "arraybuffer"
    assert channel.sctp_transport is None
    assert channel.stats() == {
        "type": "data-channel",
        "label": "",
        "protocol": "",
        "dataChannelIdentifier": None,
        "state": "connecting",
        "messagesSent": 0,
        "bytesSent": 0,
        "messagesReceived": 0,
        "bytesReceived": 0,
    }
    assert "connecting" in repr(channel)


def test_create_data_channel_validation() -> None:
    # webrtc-pc §4.4.1 createDataChannel.
    RTCDataChannel("x" * 65535)
    with pytest.raises(TypeError):
        RTCDataChannel("x" * 65536)
    with pytest.raises(TypeError):
        RTCDataChannel("é" * 32768)  # 65536 bytes in UTF-8
    with pytest.raises(TypeError):
        RTCDataChannel(protocol="p" * 65536)
    with pytest.raises(TypeError):
        RTCDataChannel(maxPacketLifetime=100, maxRetransmits=1)
    with pytest.raises(TypeError):
        RTCDataChannel(negotiated=True)
    with pytest.raises(TypeError):
        RTCDataChannel(negotiated=True, id=65535)
    with pytest.raises(TypeError):
        RTCDataChannel(negotiated=True, id=-1)
    with pytest.raises(TypeError):
        RTCDataChannel(maxRetransmits=-1)
    with pytest.raises(TypeError):
        RTCDataChannel(priority="urgent")  # type: ignore[arg-type]
    assert RTCDataChannel(negotiated=True, id=65534).id == 65534
    # The id option means nothing for a channel negotiated in band.
    assert RTCDataChannel(id=4).id is None
    # Values beyond an unsigned short are clamped.
    assert RTCDataChannel(maxPacketLifetime=10**6).maxPacketLifetime == 65535
    channel = RTCDataChannel("c", ordered=False, maxRetransmits=0, priority="very-low")
    assert (channel.ordered, channel.maxRetransmits, channel.priority) == (False, 0, "very-low")


def test_event_handler_properties() -> None:
    channel = RTCDataChannel()
    for name in ("open", "message", "bufferedamountlow", "error", "closing", "close"):
        handler = lambda event: None  # noqa: E731
        setattr(channel, "on" + name, handler)
        assert getattr(channel, "on" + name) is handler
    with pytest.raises(TypeError):
        channel.onmessage = "not callable"  # type: ignore[assignment]
    event = MessageEvent("message", b"x")
    assert event.data == b"x" and event.type == "message"
    assert RTCDataChannelEvent("datachannel", channel).channel is channel


def test_send_and_receive_before_open() -> None:
    channel = RTCDataChannel()
    with pytest.raises(InvalidStateError):
        channel.send("x")
    with pytest.raises(trio.WouldBlock):
        channel.receive_nowait()
    channel.close()
    assert channel.readyState == "closed"
    with pytest.raises(trio.EndOfChannel):
        channel.receive_nowait()


def test_sctp_transport_attributes() -> None:
    transport = RTCSctpTransport(dtls())
    assert transport.state == "connecting"
    assert transport.maxChannels is None
    # webrtc-pc §6.1.1: min(remote, local); the remote default is 64 KiB.
    assert transport.maxMessageSize == 65536
    transport.set_remote_max_message_size(100_000)
    assert transport.maxMessageSize == 100_000
    transport.set_remote_max_message_size(0)  # RFC 8841: no limit
    assert transport.maxMessageSize == 262144
    with pytest.raises(ValueError):
        transport.set_remote_max_message_size(-1)
    small = RTCSctpTransport(dtls(), local_max_message_size=1000, remote_max_message_size=5000)
    assert small.maxMessageSize == 1000
    stats = transport.stats()
    assert stats["state"] == "connecting" and stats["packets_sent"] == 0


async def test_stop_before_run_and_run_once() -> None:
    transport = RTCSctpTransport(dtls())
    channel = RTCDataChannel("pending")
    transport.add_channel(channel)
    assert transport.channel_stats()[0]["label"] == "pending"
    transport.stop()
    assert transport.state == "closed" and channel.readyState == "closed"
    transport.stop()  # idempotent
    await transport.run()  # returns at once: already closed
    with pytest.raises(InvalidStateError):
        await transport.run()


async def test_failed_dtls_fails_the_channels(autojump_clock: trio.testing.MockClock) -> None:
    # A DTLS client whose peer never answers: the handshake times out, the transport fails.
    dtls_transport = dtls()
    transport = RTCSctpTransport(dtls_transport)
    channel = RTCDataChannel("doomed")
    transport.add_channel(channel)
    errors: list[RTCErrorEvent] = []
    channel.onerror = errors.append
    _send, receive = trio.open_memory_channel[bytes](1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: dtls_transport.run(receive_channel=receive, send=lambda d: None))
        await transport.run()
    assert transport.state == "closed" and channel.readyState == "closed"
    [error] = errors
    assert error.error.errorDetail == "dtls-failure"
    with pytest.raises(trio.BrokenResourceError):
        await channel.receive()
