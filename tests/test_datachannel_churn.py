"""Random churn: both peers open (in band and negotiated), send on and close many channels at
once over a lossy virtual network. Every message sent on a channel that both sides saw open
arrives in order, every channel ends closed on both sides, ids get reused, nothing raises."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from test_datachannel_stack import Stack, sctp_pair

from trio_rtc.datachannel import RTCDataChannel, RTCDataChannelEvent
from trio_rtc.sctp.transport import RTCSctpTransport
from trio_rtc.testing import LinkConditions, VirtualNetwork

ADDRESSES = ("198.51.100.1", "198.51.100.2")


class Side:
    """One peer's view: its transport and the channels it has (by label)."""

    def __init__(self, transport: RTCSctpTransport) -> None:
        self.transport = transport
        self.channels: dict[str, RTCDataChannel] = {}
        self.received: dict[str, list[str]] = {}
        transport.addEventListener("datachannel", self._on_datachannel)

    def _on_datachannel(self, event: RTCDataChannelEvent) -> None:
        self.track(event.channel)

    def track(self, channel: RTCDataChannel) -> None:
        self.channels[channel.label] = channel
        received = self.received.setdefault(channel.label, [])
        channel.onmessage = lambda event: received.append(event.data)


async def churn(stack: Stack, rng: random.Random) -> tuple[Side, Side, dict[str, list[str]]]:
    sides = (Side(stack.sctp_a), Side(stack.sctp_b))
    sent: dict[str, list[str]] = {}
    negotiated_id = 100
    for step in range(400):
        side = sides[rng.randrange(2)]
        other = sides[1] if side is sides[0] else sides[0]
        action = rng.random()
        open_channels = [c for c in side.channels.values() if c.readyState == "open"]
        if action < 0.15:
            label = f"c{step}"
            channel = RTCDataChannel(label, ordered=rng.random() < 0.8)
            side.track(channel)
            side.transport.add_channel(channel)
        elif action < 0.2:
            label = f"n{step}"
            negotiated_id += 2
            ends = [RTCDataChannel(label, negotiated=True, id=negotiated_id) for _ in range(2)]
            side.track(ends[0])
            other.track(ends[1])
            side.transport.add_channel(ends[0])
            other.transport.add_channel(ends[1])
        elif action < 0.3 and open_channels:
            rng.choice(open_channels).close()
        elif open_channels:
            channel = rng.choice(open_channels)
            peer = other.channels.get(channel.label)
            # Count a message as owed only if the peer's end is open too: a message racing the
            # peer's close may be dropped, as in any WebRTC stack.
            if peer is not None and peer.readyState == "open" and channel.ordered:
                message = f"{channel.label}:{step}"
                channel.send(message)
                sent.setdefault(f"{side is sides[0]}:{channel.label}", []).append(message)
            else:
                channel.send(f"unowed {step}")
        await trio.sleep(rng.uniform(0, 0.02))
    return sides[0], sides[1], sent


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("peer_reuses_at_once", [False, True], ids=["round-robin", "lowest-free"])
async def test_random_churn_of_channels(
    autojump_clock: trio.testing.MockClock, seed: int, peer_reuses_at_once: bool
) -> None:
    rng = random.Random(seed)
    conditions = LinkConditions(loss=0.03, delay=0.01, jitter=0.004, reorder=0.02)
    async with VirtualNetwork(seed=seed, conditions=conditions):
        with trio.fail_after(900):
            async with sctp_pair(addresses=ADDRESSES) as stack:
                if peer_reuses_at_once:
                    # Like a browser: b takes the lowest free id, so it reopens an id as soon as
                    # its side of the old channel closed, racing a's view of that closing.
                    stack.sctp_b._dcep.stream_id_policy = "lowest-free"
                a, b, sent = await churn(stack, rng)
                await trio.sleep(10)
                # Everything owed arrived, in order, on the peer's end of the same channel.
                for key, messages in sent.items():
                    from_a, label = key.split(":", 1)
                    receiver = b if from_a == "True" else a
                    got = [m for m in receiver.received[label] if not m.startswith("unowed")]
                    assert got[: len(messages)] == messages
                # Close everything still open; both ends of every channel end closed.
                for side in (a, b):
                    for channel in list(side.channels.values()):
                        channel.close()
                await trio.sleep(10)
                for side in (a, b):
                    stuck = [c for c in side.channels.values() if c.readyState != "closed"]
                    assert not stuck, stuck
                assert stack.sctp_a.channel_stats() == [] and stack.sctp_b.channel_stats() == []
                assert stack.sctp_a.state == stack.sctp_b.state == "connected"
