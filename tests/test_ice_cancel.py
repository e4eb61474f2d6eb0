"""Cancellation leaves nothing behind: no task, no socket, no file descriptor."""

from __future__ import annotations

import os
import random

import pytest
import trio
import trio.lowlevel
import trio.testing
from ice_helpers import connect_pair

from trio_rtc.exceptions import InvalidStateError
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_count() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for n in task.child_nurseries for child in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]


async def test_cancel_at_random_points_leaves_no_fd_or_task() -> None:
    rng = random.Random(7)
    opts = IceTransportOptions(interfaces=["127.0.0.1", "::1"])
    await trio.lowlevel.checkpoint()
    fds_before = fd_count()
    tasks_before = task_count()
    cancelled = 0
    for _ in range(100):
        # Made outside the timed block: the cancellation may come before either is entered.
        a, b = RTCIceTransport(options=opts), RTCIceTransport(options=opts)
        with trio.move_on_after(rng.uniform(0, 0.01)) as scope:
            async with a, b:
                await connect_pair(a, b, trickle=rng.random() < 0.5)
                await a.wait_for_state("connected", "completed")
                a.send(bytes([23]) + b"x")
                await b.dtls_receive_channel.receive()
        cancelled += scope.cancelled_caught
        # Closed, or never started when the cancellation came before its turn.
        assert a.state in ("closed", "new") and b.state in ("closed", "new")
        assert a.state == "closed" or b.state == "new"
        assert fd_count() == fds_before
        assert task_count() == tasks_before
    # Both outcomes were exercised: cancelled mid-way and run to completion.
    assert 0 < cancelled < 100


async def test_stop_closes_sockets_and_ends_run() -> None:
    fds_before = fd_count()
    async with trio.open_nursery() as nursery:
        transport = RTCIceTransport(options=IceTransportOptions(interfaces=["127.0.0.1"]))
        await nursery.start(transport.run)
        transport.gather()
        await transport.wait_gathering_complete()
        assert fd_count() > fds_before
        transport.stop()
    assert transport.state == "closed"
    assert fd_count() == fds_before


async def test_calls_after_stop_fail_cleanly() -> None:
    async with RTCIceTransport(options=IceTransportOptions(interfaces=["127.0.0.1"])) as t:
        t.gather()
        await t.wait_gathering_complete()
        t.stop()
        assert t.send(bytes([23]) + b"late goodbye") is False
        with pytest.raises(InvalidStateError):
            t.gather()
        with pytest.raises(InvalidStateError):
            t.addRemoteCandidate(None)
