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
