"""The whole stack (ICE + DTLS + SCTP drivers, unmodified) over the in-memory virtual network
with loss, jitter, reordering and duplication, under trio's MockClock."""

from __future__ import annotations

import hashlib
import random

import pytest
import trio
import trio.testing
from test_datachannel_stack import remote_channels, sctp_pair

from trio_rtc.datachannel import RTCDataChannel
from trio_rtc.testing import LinkConditions, VirtualNetwork

ADDRESSES = ("198.51.100.1", "198.51.100.2")


@pytest.mark.parametrize("seed", [1, 2])
async def test_five_percent_loss_delivers_everything_in_order(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    conditions = LinkConditions(loss=0.05, delay=0.01, jitter=0.005, reorder=0.05, duplicate=0.02)
    blob = random.Random(seed).randbytes(1 << 20)
    async with VirtualNetwork(seed=seed, conditions=conditions) as net:
        with trio.fail_after(600):
            async with sctp_pair(addresses=ADDRESSES) as stack:
                at_b = remote_channels(stack.sctp_b)
                a = RTCDataChannel("bulk")
                stack.sctp_a.add_channel(a)
                small = RTCDataChannel("small", negotiated=True, id=10)
                small_b = RTCDataChannel("small", negotiated=True, id=10)
                stack.sctp_a.add_channel(small)
                stack.sctp_b.add_channel(small_b)
                await a.wait_open()
                await small.wait_open()
                await stack.sctp_b.wait_until(lambda: bool(at_b))
                [b] = at_b

                async def send_all() -> None:
                    for offset in range(0, len(blob), 16384):
                        await a.send_message(blob[offset : offset + 16384])
                    for i in range(2000):
                        await small.send_message(str(i))

                digest = hashlib.sha256()
                got = 0
                started = trio.current_time()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_all)
                    async for message in b:
                        assert isinstance(message, bytes)
                        digest.update(message)
                        got += len(message)
                        if got == len(blob):
                            break
                    texts = [await small_b.receive() for _ in range(2000)]
                assert digest.hexdigest() == hashlib.sha256(blob).hexdigest()
                assert texts == [str(i) for i in range(2000)]
                # Virtual seconds: loss recovery works by fast retransmit, not by long timeouts.
                elapsed = trio.current_time() - started
                assert elapsed < 30
                stats = stack.sctp_a.association.stats
                assert stats.retransmitted_chunks > 0
                # Closing still works over the lossy path.
                await a.aclose()
                await b.wait_until(lambda: b.readyState == "closed")
        assert net.stats.dropped_loss > 0 and net.stats.duplicated > 0


async def test_partial_reliability_under_loss(autojump_clock: trio.testing.MockClock) -> None:
    # 20 % loss: a reliable channel still gets everything, an unordered channel without
    # retransmissions loses about what the network dropped, and a 50 ms lifetime channel
    # gives up on what it could not deliver in time.
    conditions = LinkConditions(loss=0.2, delay=0.03)
    async with VirtualNetwork(seed=3, conditions=conditions):
        with trio.fail_after(600):
            async with sctp_pair(addresses=ADDRESSES, start=False) as stack:
                pairs = {}
                for stream_id, options in (
                    (0, {}),
                    (2, {"ordered": False, "maxRetransmits": 0}),
                    (4, {"maxPacketLifetime": 50}),
                ):
                    ends = [
                        RTCDataChannel(
                            "c",
                            negotiated=True,
                            id=stream_id,
                            **options,  # type: ignore[arg-type]
                        )
                        for _ in range(2)
                    ]
                    stack.sctp_a.add_channel(ends[0])
                    stack.sctp_b.add_channel(ends[1])
                    pairs[stream_id] = ends
                await stack.start()
                for sender, _ in pairs.values():
                    await sender.wait_open()
                for i in range(300):
                    for sender, _ in pairs.values():
                        sender.send(b"%d" % i)
                    await trio.sleep(0.01)
                await trio.sleep(10)
                received = {}
                for stream_id, (_, receiver) in pairs.items():
                    got = []
                    while True:
                        try:
                            got.append(receiver.receive_nowait())
                        except trio.WouldBlock:
                            break
                    received[stream_id] = got
                assert received[0] == [b"%d" % i for i in range(300)]
                assert 180 < len(received[2]) < 290
                assert len(received[4]) < 300
                # What arrived on the lifetime channel is in order.
                numbers = [int(m) for m in received[4]]
                assert numbers == sorted(numbers)
                assert stack.sctp_a.association.stats.abandoned_messages > 0


@pytest.mark.parametrize("one_way_delay", [0.025, 0.1])
async def test_slow_start_is_exponential_over_a_long_path(
    autojump_clock: trio.testing.MockClock, one_way_delay: float
) -> None:
    # No loss, no rate limit: every burst arrives at once, so each side handles its SACKs in
    # batches. Slow start must still double cwnd per round trip (it grew by one MTU per round
    # trip when only the first SACK of a batch counted: 4 MiB took 4 s at 50 ms, 30 s at 200 ms).
    async with VirtualNetwork(seed=1, conditions=LinkConditions(delay=one_way_delay)):
        async with sctp_pair(addresses=ADDRESSES, start=False) as stack:
            a = RTCDataChannel("x", negotiated=True, id=1)
            b = RTCDataChannel("x", negotiated=True, id=1)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await stack.start()
            await a.wait_open()
            await b.wait_open()
            chunk = b"s" * 16384
            started = trio.current_time()

            async def send_all() -> None:
                for _ in range(256):  # 4 MiB
                    await a.send_message(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                for _ in range(256):
                    await b.receive()
            # About 20 round trips (cwnd grows 1.5x per round trip with a SACK every second
            # packet, until the link's 1000-datagram queue overflows once); 80 and 148 before.
            round_trips = (trio.current_time() - started) / (2 * one_way_delay)
            assert round_trips < 40, round_trips
