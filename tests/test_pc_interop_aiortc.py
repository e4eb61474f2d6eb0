"""trio_rtc's RTCPeerConnection against aiortc's (PyPI, asyncio, in a subprocess), on 127.0.0.1.

The aiortc side is the harness of ``peers/aiortc_pc_harness.py`` (docs/interop.md); the trio_rtc
side is driven with the same verbs by ``pc_interop_helpers.TrioPeer``. Both offerer roles, with
and without trickle; channels opened by each side; text and binary messages (empty ones too);
a pre-negotiated channel with the same id on both sides; close from each side; 1 MiB each way
checked by SHA-256 on both ends.
"""

from __future__ import annotations

import os

import pytest
import trio
from pc_helpers import make_pc
from pc_interop_helpers import MIB, TrioPeer, connect, open_trio_peer, transfer
from peers.aiortc_pc_harness import AiortcPeer, open_aiortc_peer

pytestmark = pytest.mark.interop


async def exchange(sender: TrioPeer | AiortcPeer, label: str) -> None:
    """``sender`` sends text and binary on ``label``; the other side echoes each back."""
    messages: list[str | bytes] = ["hello", "ünïcödé ✓", "", os.urandom(1000), b""]
    # Larger than one SCTP packet: fragmented and reassembled on both sides.
    messages.append(os.urandom(70000))
    for message in messages:
        await sender.send(label, message)
        assert await sender.receive(label) == message


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "aiortc-offers"])
@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "complete"])
async def test_channels_both_ways_and_transfer(trio_offers: bool, trickle: bool) -> None:
    with trio.fail_after(30):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=trickle, echo=not trio_offers) as ours,
            open_aiortc_peer(trickle=trickle, echo=trio_offers) as theirs,
        ):
            offerer: TrioPeer | AiortcPeer = ours if trio_offers else theirs
            answerer: TrioPeer | AiortcPeer = theirs if trio_offers else ours
            # The offerer opens the first channel (in the offer); the answerer echoes it.
            await offerer.create_channel("first")
            seconds = await connect(offerer, answerer, trickle=trickle)
            await offerer.wait_channel("first")
            await answerer.wait_channel("first")
            assert pc.connectionState == "connected"
            assert pc.sctp is not None
            await exchange(offerer, "first")

            # The answerer opens one in band on the running association.
            await answerer.create_channel("second", echo=False)
            await answerer.wait_channel("second")
            await offerer.wait_channel("second")
            await offerer.set_echo("second", True)
            await exchange(answerer, "second")

            # 1 MiB each way on a third channel, verified on both ends.
            await ours.create_channel("bulk")
            await theirs.wait_channel("bulk")
            await ours.wait_channel("bulk")
            await theirs.set_echo("bulk", False)
            up = await transfer(ours, theirs, "bulk", MIB)
            down = await transfer(theirs, ours, "bulk", MIB)

            # Close from our side: aiortc sees it; close from aiortc: we see it.
            await ours.close_channel("first")
            await theirs.wait_channel_closed("first")
            await ours.wait_channel_closed("first")
            await theirs.close_channel("second")
            await ours.wait_channel_closed("second")
            await theirs.wait_channel_closed("second")
            # The remaining channel still works.
            await theirs.send("bulk", "still here")
            assert await ours.receive("bulk") == "still here"
            stats = await pc.getStats()
            [opened] = stats.of_type("peer-connection")
            assert opened["dataChannelsOpened"] == 3
            print(
                f"offer to connected {seconds * 1000:.0f} ms; 1 MiB trio->aiortc {up:.1f} MB/s, "
                f"aiortc->trio {down:.1f} MB/s"
            )


@pytest.mark.parametrize("trio_offers", [True, False], ids=["trio-offers", "aiortc-offers"])
async def test_negotiated_channel(trio_offers: bool) -> None:
    """A pre-negotiated channel (same id on both sides, no DCEP), closed by the answerer."""
    with trio.fail_after(20):
        async with (
            make_pc(0) as pc,
            open_trio_peer(pc) as ours,
            open_aiortc_peer() as theirs,
        ):
            await ours.create_channel("neg", negotiated=True, id=7)
            await theirs.create_channel("neg", negotiated=True, id=7, echo=True)
            offerer: TrioPeer | AiortcPeer = ours if trio_offers else theirs
            answerer: TrioPeer | AiortcPeer = theirs if trio_offers else ours
            await connect(offerer, answerer, trickle=True)
            channel = await ours.wait_channel("neg")
            opened = await theirs.wait_channel("neg")
            assert channel.negotiated and channel.id == 7
            assert opened["negotiated"] and opened["id"] == 7
            await exchange(ours, "neg")
            await answerer.close_channel("neg")
            await ours.wait_channel_closed("neg")
            await theirs.wait_channel_closed("neg")
