"""The peer connection as a supervising task tree: one named task per component, nothing left
after ``async with``, a crashing component fails the connection visibly, and async event
handlers stay bounded under a flood."""

from __future__ import annotations

import logging

import pytest
import trio
from pc_helpers import connect, pc_pair

from trio_rtc import RTCDataChannel, RTCPeerConnection
from trio_rtc.events import RTCErrorEvent
from trio_rtc.exceptions import RTCError


def task_names(task: trio.lowlevel.Task) -> list[str]:
    """Names of every task below ``task`` (depth first)."""
    names: list[str] = []
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            names.append(child.name)
            names.extend(task_names(child))
    return names


def supervisor_children(task: trio.lowlevel.Task) -> list[str]:
    """The names of the tasks in each ``trio_rtc.pc`` supervisor's own nursery."""
    found: list[str] = []
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            if child.name == "trio_rtc.pc":
                for inner in child.child_nurseries:
                    found.extend(sorted(t.name for t in inner.child_tasks))
            else:
                found.extend(supervisor_children(child))
    return found


async def connected_pair_with_channel(
    a: RTCPeerConnection, b: RTCPeerConnection, nursery: trio.Nursery
) -> tuple[RTCDataChannel, RTCDataChannel]:
    remote: list[RTCDataChannel] = []
    b.ondatachannel = lambda event: remote.append(event.channel)
    channel = a.createDataChannel("tree")
    with trio.fail_after(10):
        await connect(a, b, nursery)
        await channel.wait_open()
        await b.wait_until(lambda: bool(remote))
    return channel, remote[0]


async def test_task_tree_has_one_named_task_per_component_and_none_after_exit() -> None:
    me = trio.lowlevel.current_task()
    before = task_names(me)
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        await connected_pair_with_channel(a, b, nursery)
        # Transient tasks (negotiationneeded, candidate announcements) have ended by now.
        await trio.testing.wait_all_tasks_blocked()
        children = supervisor_children(me)
        for name in ("trio_rtc.events", "trio_rtc.ice", "trio_rtc.dtls", "trio_rtc.sctp"):
            assert children.count(name) == 2, (name, children)  # one per pc
        assert set(children) == {
            "trio_rtc.events",
            "trio_rtc.ice",
            "trio_rtc.dtls",
            "trio_rtc.sctp",
        }, children
        nursery.cancel_scope.cancel()
    assert task_names(me) == before
    assert a.connectionState == b.connectionState == "closed"


async def test_a_crashing_component_fails_the_peer_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        channel, remote = await connected_pair_with_channel(a, b, nursery)
        sctp = b.sctp
        assert sctp is not None
        errors: list[RTCErrorEvent] = []
        b.addEventListener("error", errors.append)
        states: list[str] = []
        b.onconnectionstatechange = lambda _e: states.append(b.connectionState)

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("bug in the association core")

        # The next message the SCTP task takes from its core raises.
        sctp._dcep.message_data = broken  # type: ignore[method-assign,assignment]
        with caplog.at_level(logging.ERROR, logger="trio_rtc"), trio.fail_after(10):
            channel.send("trigger")
            await b.wait_connection_state("failed")
        assert b.connectionState == "failed"
        assert states == ["failed"]
        [event] = errors
        assert isinstance(event.error, RTCError)
        assert isinstance(event.error.__cause__, RuntimeError)
        assert "bug in the association core" in str(event.error)
        assert b.failure is event.error.__cause__
        # The channels of the failed connection closed with the error.
        assert remote.readyState == "closed"
        # Logged once, with its traceback.
        crashes = [r for r in caplog.records if r.exc_info and "crashed" in r.getMessage()]
        assert len(crashes) == 1
        nursery.cancel_scope.cancel()
    assert b.connectionState == "closed"


async def test_an_async_handler_flood_stays_bounded() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        channel, remote = await connected_pair_with_channel(a, b, nursery)
        release = trio.Event()
        started = 0
        most_alive = 0

        async def slow(_event: object) -> None:
            nonlocal started, most_alive
            started += 1
            queue = b._handler_queue
            assert queue is not None
            most_alive = max(most_alive, queue.running + queue.pending)
            await release.wait()

        remote.onmessage = slow
        total = 5000
        with trio.fail_after(20):
            for index in range(total):
                channel.send(b"%d" % index)
            await remote.wait_until(lambda: remote.messages_received == total)
        queue = b._handler_queue
        assert queue is not None
        assert queue.running <= queue.max_running
        assert queue.pending <= queue.max_pending
        assert most_alive <= queue.max_running + queue.max_pending
        assert queue.dropped == total - queue.running - queue.pending - queue.completed
        assert queue.dropped > 0
        release.set()
        nursery.cancel_scope.cancel()


async def test_rtp_without_a_media_consumer_is_dropped_and_counted() -> None:
    async with pc_pair() as (a, b), trio.open_nursery() as nursery:
        channel, remote = await connected_pair_with_channel(a, b, nursery)
        ice_a, ice_b = a.ice_transport, b.ice_transport
        assert ice_a is not None and ice_b is not None
        # An RTP-looking datagram (first byte 0x80, RFC 7983) on the connected pair.
        for _ in range(3):
            assert ice_a.send(bytes([0x80, 111]) + bytes(30))
        with trio.fail_after(5):
            # The connection carries on; the message left after the RTP on the same socket, so
            # by the time it arrives the RTP was read too.
            channel.send("still here")
            assert await remote.receive() == "still here"
        assert ice_b.stats.datagrams_dropped_rtp == 3
        assert b.connectionState == "connected"
        nursery.cancel_scope.cancel()
