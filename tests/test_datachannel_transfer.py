"""Moving data over the full stack on real UDP: order, integrity, PPIDs, partial reliability,
backpressure and the spec's send() errors."""

from __future__ import annotations

import hashlib
import random

import pytest
import trio
from test_datachannel_stack import Stack, remote_channels, sctp_pair

from trio_rtc.datachannel import MessageEvent, RTCDataChannel
from trio_rtc.events import Event
from trio_rtc.exceptions import InvalidStateError, OperationError


async def negotiated(stack: Stack, **options: object) -> tuple[RTCDataChannel, RTCDataChannel]:
    a = RTCDataChannel("t", negotiated=True, id=3, **options)  # type: ignore[arg-type]
    b = RTCDataChannel("t", negotiated=True, id=3, **options)  # type: ignore[arg-type]
    stack.sctp_a.add_channel(a)
    stack.sctp_b.add_channel(b)
    await a.wait_open()
    await b.wait_open()
    return a, b


async def test_ten_thousand_messages_in_order() -> None:
    with trio.fail_after(30):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)

            async def send_all() -> None:
                for i in range(10_000):
                    await a.send_message(b"%d" % i)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                received = [await b.receive() for _ in range(10_000)]
            assert received == [b"%d" % i for i in range(10_000)]
            assert a.messages_sent == b.messages_received == 10_000
            stats = b.stats()
            assert stats["messagesReceived"] == 10_000 and stats["type"] == "data-channel"
            assert stats["bytesReceived"] == sum(len(b"%d" % i) for i in range(10_000))
            assert a.stats()["bytesSent"] == stats["bytesReceived"]


async def test_eight_mebibytes_verified_by_sha256() -> None:
    rng = random.Random(8)
    blob = rng.randbytes(8 << 20)
    with trio.fail_after(30):
        async with sctp_pair() as stack:
            # In band this time, opened from the DTLS server's side.
            at_a = remote_channels(stack.sctp_a)
            b = RTCDataChannel("file")
            stack.sctp_b.add_channel(b)
            await b.wait_open()
            await stack.sctp_a.wait_until(lambda: bool(at_a))
            [a] = at_a
            digest = hashlib.sha256()

            async def send_all() -> None:
                view = memoryview(blob)
                offset = 0
                while offset < len(blob):
                    # Uneven sizes, up to the 64 KiB remote max-message-size.
                    size = rng.randint(1, 65536)
                    await b.send_message(view[offset : offset + size])
                    offset += size

            got = 0
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                async for message in a:
                    assert isinstance(message, bytes)
                    digest.update(message)
                    got += len(message)
                    if got == len(blob):
                        break
            assert digest.hexdigest() == hashlib.sha256(blob).hexdigest()
            transport_stats = stack.sctp_b.stats()
            assert transport_stats["malformed_packets"] == 0
            assert transport_stats["state"] == "connected"


async def test_strings_binary_and_empty_messages_keep_their_type() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            assert b.binaryType == "arraybuffer"
            b.binaryType = "blob"  # bytes either way in Python
            with pytest.raises(TypeError):
                b.binaryType = "string"  # type: ignore[assignment]
            messages: list[str | bytes] = [
                "text",
                b"binary",
                "",
                b"",
                "héllo wörld ✓",
                bytearray(b"from a bytearray"),  # type: ignore[list-item]
                memoryview(b"from a memoryview"),  # type: ignore[list-item]
            ]
            for message in messages:
                a.send(message)
            received = [await b.receive() for _ in messages]
            assert received == [
                "text",
                b"binary",
                "",
                b"",
                "héllo wörld ✓",
                b"from a bytearray",
                b"from a memoryview",
            ]
            assert [type(m) for m in received] == [str, bytes, str, bytes, str, bytes, bytes]
            # bytesSent counts UTF-8 bytes; empty messages count zero.
            assert a.bytes_sent == 4 + 6 + 0 + 0 + len("héllo wörld ✓".encode()) + 16 + 17
            assert b.bytes_received == a.bytes_sent
            with pytest.raises(TypeError):
                a.send(12345)  # type: ignore[arg-type]


async def test_unordered_channel_without_retransmissions() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            at_b = remote_channels(stack.sctp_b)
            a = RTCDataChannel("lossy", ordered=False, maxRetransmits=0)
            stack.sctp_a.add_channel(a)
            await a.wait_open()
            await stack.sctp_b.wait_until(lambda: bool(at_b))
            [b] = at_b
            assert (b.ordered, b.maxRetransmits) == (False, 0)
            for i in range(200):
                await a.send_message(b"%d" % i)
            # No loss on loopback: everything arrives, in whatever order.
            got = {await b.receive() for _ in range(200)}
            assert got == {b"%d" % i for i in range(200)}


async def test_send_errors_follow_the_spec() -> None:
    with trio.fail_after(10):
        async with sctp_pair(start=False, remote_max_message_size=1000) as stack:
            a = RTCDataChannel("e")
            with pytest.raises(InvalidStateError):
                a.send("not attached")
            stack.sctp_a.add_channel(a)
            with pytest.raises(InvalidStateError):
                a.send("not open yet")
            await stack.start()
            await a.wait_open()
            assert stack.sctp_a.maxMessageSize == 1000
            a.send(b"x" * 1000)
            with pytest.raises(TypeError):
                a.send(b"x" * 1001)
            with pytest.raises(TypeError):
                a.send("é" * 501)  # 1002 bytes in UTF-8
            # 0 means no limit on the peer's side: ours applies (webrtc-pc §6.1.1).
            stack.sctp_a.set_remote_max_message_size(0)
            assert stack.sctp_a.maxMessageSize == 262144
            a.send(b"x" * 262144)
            a.close()
            with pytest.raises(InvalidStateError):
                a.send("closing")
            await a.aclose()
            with pytest.raises(InvalidStateError):
                a.send("closed")
            with pytest.raises(InvalidStateError):
                await a.send_message("closed")


async def test_send_queue_is_bounded() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a, _b = await negotiated(stack)
            chunk = b"x" * 65536
            with pytest.raises(OperationError):
                for _ in range(1000):  # no checkpoint: nothing leaves meanwhile
                    a.send(chunk)
            assert a.bufferedAmount <= 16 << 20


async def test_bufferedamountlow_fires_when_the_buffer_drains() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            a.bufferedAmountLowThreshold = 100_000
            lows: list[int] = []
            a.onbufferedamountlow = lambda event: lows.append(a.bufferedAmount)
            b.onmessage = lambda event: None
            for _ in range(40):
                a.send(b"y" * 10_000)
            assert a.bufferedAmount > 300_000  # the first message may already be on its way
            await a.wait_until(lambda: bool(lows))
            assert lows[0] <= 100_000
            # Below the threshold all along: no new event.
            a.send(b"z")
            await trio.sleep(0.05)
            assert len(lows) == 1
            with pytest.raises(TypeError):
                a.bufferedAmountLowThreshold = -1


@pytest.mark.parametrize("how", ["listener", "handler", "waiter"])
async def test_bufferedamountlow_for_a_listener_that_comes_after_the_sends(how: str) -> None:
    # Nobody listens while the messages are sent, so the buffer is not watched then; whoever
    # arrives while it is still above the threshold is told when it drains.
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            b.onmessage = lambda event: None
            for _ in range(40):
                a.send(b"y" * 10_000)
            assert a.bufferedAmount > 300_000
            # A trio.Event, not wait_until, which would watch the buffer by itself.
            low = trio.Event()
            if how == "listener":
                a.addEventListener("bufferedamountlow", lambda event: low.set())
            elif how == "handler":
                a.onbufferedamountlow = lambda event: low.set()
            else:
                await a.wait_until(lambda: a.bufferedAmount == 0)
                low.set()
            await low.wait()
            assert a.bufferedAmount == 0


async def test_message_events_and_inbox() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            events: list[str | bytes] = []

            def on_message(event: MessageEvent) -> None:
                events.append(event.data)

            b.onmessage = on_message
            a.send("to the handler")
            await b.wait_until(lambda: bool(events))
            assert events == ["to the handler"]
            # Without a message listener, messages wait in the inbox for receive().
            b.onmessage = None
            a.send("to the inbox")
            assert await b.receive() == "to the inbox"
            with pytest.raises(trio.WouldBlock):
                b.receive_nowait()


async def test_slow_reader_throttles_the_sender() -> None:
    with trio.fail_after(20):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            b.receive_high_water = 64 * 1024
            chunk = b"s" * 16384

            async def send_all() -> None:
                for _ in range(400):  # 6.5 MiB
                    await a.send_message(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                await trio.sleep(0.3)
                # The reader has not read: its inbox stops near the high-water mark and the
                # rest waits in the peer's buffers (SCTP window), not in ours.
                assert stack.sctp_b._paused_by is b
                assert b._inbox_bytes <= 64 * 1024 + 65536
                assert a.bufferedAmount > 0
                for _ in range(400):
                    assert await b.receive() == chunk


async def test_open_event_and_wait_open() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("w")
            opened: list[Event] = []
            a.onopen = opened.append
            stack.sctp_a.add_channel(a)
            assert a.readyState == "connecting"
            await a.wait_open()
            assert len(opened) == 1 and opened[0].target is a


async def test_trio_channel_interfaces() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            assert isinstance(b, trio.abc.ReceiveChannel)
            sender = a.send_channel()
            assert isinstance(sender, trio.abc.SendChannel)

            async def produce() -> None:
                async with sender:  # aclose() closes the data channel at the end
                    for i in range(100):
                        await sender.send(f"item {i}")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce)
                got = [message async for message in b]  # ends when the peer closes
            assert got == [f"item {i}" for i in range(100)]
            assert a.readyState == b.readyState == "closed"
            with pytest.raises(trio.BrokenResourceError):
                await sender.send("after close")


async def test_a_burst_of_datagrams_reaches_the_application_datagram_by_datagram() -> None:
    """A wake-up that brings hundreds of datagrams hands each datagram's messages to the
    application before it feeds the next one, so the association never holds more delivered
    messages than one datagram carries (thousands of them otherwise, which the garbage
    collector walked and promoted)."""
    with trio.fail_after(30):
        async with sctp_pair() as stack:
            a, b = await negotiated(stack)
            core = stack.sctp_b._association
            waiting: list[int] = []
            done = trio.Event()
            count = 20_000

            def on_message(event: MessageEvent) -> None:
                waiting.append(len(core._events) - core._events_read)
                if len(waiting) == count:
                    done.set()

            b.onmessage = on_message
            payload = bytes(100)
            sent = 0
            while sent < count:
                # Queued without a schedule point: the sender's bursts are as large as cwnd.
                while sent < count and a.bufferedAmount < 1 << 20:
                    a.send(payload)
                    sent += 1
                await trio.lowlevel.checkpoint()
            await done.wait()
    # At most one 1200-byte packet's worth of 100-byte messages (11) waits behind the one
    # being delivered.
    assert max(waiting) <= 11
