"""Cancelling createOffer, setRemoteDescription, the connect or a transfer at random points,
200 times each, leaves no task, no socket and no file descriptor behind, and the peer
connections end closed."""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from pc_helpers import connect, make_pc

from trio_rtc import RTCPeerConnection

ITERATIONS = 200


def open_fds() -> tuple[int, int]:
    """(file descriptors, of which sockets) of this process."""
    fds = sockets = 0
    for name in os.listdir("/proc/self/fd"):
        fds += 1
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                sockets += 1
        except OSError:
            pass  # the listing's own descriptor, already closed
    return fds, sockets


def living_tasks() -> int:
    return trio.lowlevel.current_statistics().tasks_living


async def create_offer(a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery) -> None:
    a.createDataChannel("x")
    await a.createOffer()


async def set_remote(a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery) -> None:
    a.createDataChannel("x")
    await a.setLocalDescription()
    assert a.localDescription is not None
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription()


async def connect_and_transfer(
    a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery
) -> None:
    channel = a.createDataChannel("x")
    await connect(a, b, nursery)
    await channel.wait_open()
    for _ in range(200):
        await channel.send_message(b"y" * 10_000)


Operation = Callable[[RTCPeerConnection, RTCPeerConnection, trio.Nursery], Awaitable[None]]


@pytest.mark.parametrize(
    ("operation", "window"),
    [(create_offer, 0.002), (set_remote, 0.004), (connect_and_transfer, 0.06)],
    ids=["createOffer", "setRemoteDescription", "connect-and-transfer"],
)
async def test_cancel_at_random_points(operation: Operation, window: float) -> None:
    rng = random.Random(5)
    await trio.testing.wait_all_tasks_blocked()
    fds_before = open_fds()
    tasks_before = living_tasks()
    completed = 0
    for _ in range(ITERATIONS):
        a, b = make_pc(0), make_pc(1)
        with trio.move_on_after(rng.uniform(0, window)) as scope:
            async with a, b, trio.open_nursery() as nursery:
                await operation(a, b, nursery)
                nursery.cancel_scope.cancel()
        completed += not scope.cancelled_caught
        for pc in (a, b):
            ice = pc.ice_transport
            if ice is None and pc.signalingState != "closed":
                # Cancelled before ``async with`` reached this one: it never opened anything.
                assert pc is b and pc.connectionState == "new"
                continue
            assert (pc.connectionState, pc.signalingState) == ("closed", "closed")
            assert ice is None or ice.state == "closed"
        await trio.testing.wait_all_tasks_blocked()
        assert living_tasks() == tasks_before
        assert open_fds() == fds_before
    # The window is wide enough that some runs finish and most are cut somewhere inside.
    assert 0 < ITERATIONS - completed
