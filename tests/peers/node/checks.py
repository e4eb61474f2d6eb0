"""What the interop tests against the Node stacks check, shared by
``tests/test_interop_node_datachannel.py`` and ``tests/test_interop_werift.py``.

trio_rtc's RTCPeerConnection (``pc_interop_helpers.TrioPeer``) faces a Node peer
(:func:`peers.node.harness.open_node_peer`) on 127.0.0.1; descriptions and candidates cross as
``{"type", "sdp"}`` and ``candidate.toJSON()`` dicts, as real signalling would carry them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
from pc_helpers import make_pc
from pc_interop_helpers import MIB, TrioPeer, connect, open_trio_peer, transfer

import trio_rtc.sctp.association
from peers.node.harness import NodePeer, Stack, open_node_peer
from trio_rtc.sctp.association import AssociationState, SctpAssociation

#: A few KiB of messages, and sizes that fragment into several SCTP packets.
SMALL_SIZES = (1, 1000, 4096, 16384, 70000)
#: Setup on loopback takes 0.05-0.4 s here; this only catches a hang or a fallback to a long
#: retransmission timer.
SETUP_SANITY_SECONDS = 5.0


async def exchange(sender: TrioPeer | NodePeer, label: str) -> None:
    """``sender`` sends text and binary on ``label``; the other side echoes each back."""
    messages: list[str | bytes] = ["hello", "ünïcödé ✓", *(os.urandom(n) for n in SMALL_SIZES)]
    messages.append("x" * 5000)
    for message in messages:
        await sender.send(label, message)
        assert await sender.receive(label) == message


async def echo_large(ours: TrioPeer, label: str, size: int) -> None:
    """One ``size``-byte message to the peer, which echoes it; compared by SHA-256."""
    data = os.urandom(size)
    await ours.send(label, data)
    echoed = await ours.receive(label)
    assert isinstance(echoed, bytes)
    assert len(echoed) == size
    assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(data).hexdigest()


async def channels_both_ways(
    stack: Stack, *, trio_offers: bool, trickle: bool, large_message: int
) -> float:
    """The offerer opens a channel in the offer, the answerer one in band; messages echoed
    both ways; one ``large_message``-byte message echoed; 1 MiB each way by SHA-256; close
    from each side. Returns the setup time (createOffer to both connected), in seconds."""
    with trio.fail_after(40):
        # The Node peer outermost: trio_rtc closes first, gracefully, while the peer still
        # runs (libdatachannel's close() aborts the association instead).
        async with (
            open_node_peer(
                stack, trickle=trickle, echo=trio_offers, max_message_size=large_message
            ) as theirs,
            make_pc(0) as pc,
            open_trio_peer(pc, trickle=trickle, echo=not trio_offers) as ours,
        ):
            offerer: TrioPeer | NodePeer = ours if trio_offers else theirs
            answerer: TrioPeer | NodePeer = theirs if trio_offers else ours
            await offerer.create_channel("first")
            seconds = await connect(offerer, answerer, trickle=trickle)
            await offerer.wait_channel("first")
            await answerer.wait_channel("first")
            assert pc.connectionState == "connected"
            await exchange(offerer, "first")

            await answerer.create_channel("second")
            await answerer.wait_channel("second")
            await offerer.wait_channel("second")
            await offerer.set_echo("second", True)
            await exchange(answerer, "second")

            await ours.create_channel("bulk")
            await theirs.wait_channel("bulk")
            await ours.wait_channel("bulk")
            await theirs.set_echo("bulk", True)
            await echo_large(ours, "bulk", large_message)
            await theirs.set_echo("bulk", False)
            up = await transfer(ours, theirs, "bulk", MIB)
            down = await transfer(theirs, ours, "bulk", MIB)

            await ours.close_channel("first")
            await theirs.wait_channel_closed("first")
            await ours.wait_channel_closed("first")
            await theirs.close_channel("second")
            await ours.wait_channel_closed("second")
            await theirs.wait_channel_closed("second")
            await theirs.send("bulk", "still here")
            assert await ours.receive("bulk") == "still here"
            assert theirs.errors() == []
            role = "trio_rtc offers" if trio_offers else f"{stack} offers"
            print(
                f"{stack}, {role}, {'trickle' if trickle else 'complete'}: offer to connected "
                f"{seconds * 1000:.0f} ms; 1 MiB up {up:.1f} MB/s, down {down:.1f} MB/s"
            )
            assert seconds < SETUP_SANITY_SECONDS
    return seconds


async def negotiated_channel(stack: Stack, *, trio_offers: bool) -> None:
    """A pre-negotiated channel (id 7 on both sides, no DCEP), closed by the answerer."""
    with trio.fail_after(20):
        async with (
            open_node_peer(stack) as theirs,
            make_pc(0) as pc,
            open_trio_peer(pc) as ours,
        ):
            await ours.create_channel("neg", negotiated=True, id=7)
            await theirs.create_channel("neg", negotiated=True, id=7, echo=True)
            offerer: TrioPeer | NodePeer = ours if trio_offers else theirs
            answerer: TrioPeer | NodePeer = theirs if trio_offers else ours
            await connect(offerer, answerer, trickle=True)
            channel = await ours.wait_channel("neg")
            opened = await theirs.wait_channel("neg")
            assert channel.negotiated and channel.id == 7
            assert opened["id"] == 7
            await exchange(ours, "neg")
            await answerer.close_channel("neg")
            await ours.wait_channel_closed("neg")
            await theirs.wait_channel_closed("neg")


async def init_collision(stack: Stack, *, trio_offers: bool) -> list[AssociationState]:
    """Connect with a channel from the offerer and echo over it; the state our association was
    in at each INIT the peer sent (see :func:`watch_inits`)."""
    with watch_inits() as seen, trio.fail_after(20):
        async with (
            open_node_peer(stack, echo=trio_offers) as theirs,
            make_pc(0) as pc,
            open_trio_peer(pc, echo=not trio_offers) as ours,
        ):
            offerer: TrioPeer | NodePeer = ours if trio_offers else theirs
            answerer: TrioPeer | NodePeer = theirs if trio_offers else ours
            await offerer.create_channel("first")
            await connect(offerer, answerer, trickle=True)
            await offerer.wait_channel("first")
            await exchange(offerer, "first")
            assert pc.sctp is not None and pc.sctp.state == "connected"
    return seen


@contextmanager
def watch_inits() -> Iterator[list[AssociationState]]:
    """The state our association was in at each INIT it received (COOKIE_WAIT: both sides
    sent INIT at once, the collision of RFC 9260 §5.2.1)."""
    seen: list[AssociationState] = []
    module = trio_rtc.sctp.association
    original: Callable[..., Any] = getattr(module, "on_init")  # noqa: B009

    def recording(association: SctpAssociation, *args: Any) -> Any:
        seen.append(association.state)
        return original(association, *args)

    setattr(module, "on_init", recording)  # noqa: B010
    try:
        yield seen
    finally:
        setattr(module, "on_init", original)  # noqa: B010
