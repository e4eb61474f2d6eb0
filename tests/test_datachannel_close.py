"""Closing: by either side (stream reset, RFC 8831 §6.7), id reuse, transport stop, peer abort,
and cancellation of the whole stack mid-transfer leaving no task or file descriptor behind."""

from __future__ import annotations

import os
import random

import pytest
import trio
import trio.lowlevel
from test_datachannel_stack import recorder, remote_channels, sctp_pair

from trio_rtc.datachannel import RTCDataChannel
from trio_rtc.events import RTCErrorEvent
from trio_rtc.exceptions import InvalidStateError, OperationError
from trio_rtc.sctp.transport import RTCSctpTransport


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_count() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for n in task.child_nurseries for child in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]


EVENTS = ("open", "closing", "close", "error")


@pytest.mark.parametrize("closer", ["opener", "answerer"])
async def test_close_from_either_side_resets_the_stream_and_frees_the_id(closer: str) -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            at_b = remote_channels(stack.sctp_b)
            a = RTCDataChannel("c")
            stack.sctp_a.add_channel(a)
            await a.wait_open()
            await stack.sctp_b.wait_until(lambda: bool(at_b))
            [b] = at_b
            seen_a = recorder(a, *EVENTS)
            seen_b = recorder(b, *EVENTS)
            first_id = a.id
            local, remote = (a, b) if closer == "opener" else (b, a)
            seen_local, seen_remote = (seen_a, seen_b) if closer == "opener" else (seen_b, seen_a)
            # What was sent before close() still arrives (the reset waits for it).
            local.send("last words")
            local.close()
            assert local.readyState == "closing"
            local.close()  # closing twice is a no-op
            assert await remote.receive() == "last words"
            await local.wait_until(lambda: local.readyState == "closed")
            await remote.wait_until(lambda: remote.readyState == "closed")
            # The closing side does not get "closing" (webrtc-pc §6.2.4); the other one does.
            assert seen_local == [("close", "closed")]
            assert seen_remote == [("closing", "closing"), ("close", "closed")]
            with pytest.raises(trio.EndOfChannel):
                await remote.receive()
            assert stack.sctp_a.channel_stats() == []
            assert stack.sctp_a.stats()["dataChannelsClosed"] == 1
            # In-band ids go round robin: the next channel takes a fresh id, not the one that
            # just closed (whose closing the peer may see later than we do).
            fresh = RTCDataChannel("fresh")
            stack.sctp_a.add_channel(fresh)
            assert fresh.id is not None and first_id is not None and fresh.id == first_id + 2
            await fresh.wait_open()
            await stack.sctp_b.wait_until(lambda: len(at_b) == 2)
            # The closed id is free again on both sides.
            again_a = RTCDataChannel("again", negotiated=True, id=first_id)
            again_b = RTCDataChannel("again", negotiated=True, id=first_id)
            stack.sctp_a.add_channel(again_a)
            stack.sctp_b.add_channel(again_b)
            await again_a.wait_open()
            await again_b.wait_open()
            again_a.send(b"reused")
            assert await again_b.receive() == b"reused"


async def test_negotiated_id_reuse_and_conflicts() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("n", negotiated=True, id=5)
            b = RTCDataChannel("n", negotiated=True, id=5)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            with pytest.raises(OperationError):
                stack.sctp_a.add_channel(RTCDataChannel("dup", negotiated=True, id=5))
            with pytest.raises(InvalidStateError):
                stack.sctp_a.add_channel(a)
            await a.wait_open()
            await b.wait_open()
            await b.aclose()
            await a.wait_until(lambda: a.readyState == "closed")
            a2 = RTCDataChannel("n2", negotiated=True, id=5)
            b2 = RTCDataChannel("n2", negotiated=True, id=5)
            stack.sctp_a.add_channel(a2)
            stack.sctp_b.add_channel(b2)
            await a2.wait_open()
            await b2.wait_open()
            a2.send("second life")
            assert await b2.receive() == "second life"


async def test_close_before_open_and_aclose() -> None:
    with trio.fail_after(10):
        async with sctp_pair(start=False) as stack:
            never = RTCDataChannel("never")
            stack.sctp_a.add_channel(never)
            seen = recorder(never, *EVENTS)
            never.close()
            assert never.readyState == "closed" and seen == [("close", "closed")]
            with pytest.raises(InvalidStateError):
                await never.wait_open()
            detached = RTCDataChannel("detached")
            await detached.aclose()
            assert detached.readyState == "closed"
            await stack.start()
            await stack.connected()
            assert stack.sctp_a.channel_stats() == []


async def test_stop_closes_every_channel_without_events() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            at_b = remote_channels(stack.sctp_b)
            channels = [RTCDataChannel(f"c{i}") for i in range(3)]
            for channel in channels:
                stack.sctp_a.add_channel(channel)
            for channel in channels:
                await channel.wait_open()
            await stack.sctp_b.wait_until(lambda: len(at_b) == 3)
            seen = recorder(channels[0], *EVENTS)
            pending = RTCDataChannel("pending")
            stack.sctp_a.stop()
            assert stack.sctp_a.state == "closed"
            assert all(c.readyState == "closed" for c in channels)
            assert seen == []  # like RTCPeerConnection.close(): no events
            with pytest.raises(InvalidStateError):
                stack.sctp_a.add_channel(pending)
            with pytest.raises(trio.EndOfChannel):
                await channels[0].receive()
            # The peer got our ABORT: its channels close with an error, its transport closes.
            peer_seen = recorder(at_b[0], *EVENTS)
            await stack.sctp_b.wait_until(lambda: stack.sctp_b.state == "closed")
            assert all(c.readyState == "closed" for c in at_b)
            assert [kind for kind, _ in peer_seen] == ["error", "close"]
            with pytest.raises(trio.BrokenResourceError):
                await at_b[0].receive()


async def test_peer_abort_fires_error_with_sctp_failure() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("x", negotiated=True, id=0)
            b = RTCDataChannel("x", negotiated=True, id=0)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await b.wait_open()
            errors: list[RTCErrorEvent] = []
            b.onerror = errors.append
            states: list[str] = []
            stack.sctp_b.onstatechange = lambda event: states.append(stack.sctp_b.state)
            stack.sctp_a.stop()
            await b.wait_until(lambda: b.readyState == "closed")
            [error] = errors
            assert error.error.errorDetail == "sctp-failure"
            assert states == ["closed"]


async def test_dtls_close_closes_the_sctp_transport() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("x", negotiated=True, id=0)
            stack.sctp_a.add_channel(a)
            await a.wait_open()
            stack.dtls_a.close()
            await stack.sctp_a.wait_until(lambda: stack.sctp_a.state == "closed")
            assert a.readyState == "closed"


async def test_cancelling_mid_transfer_leaves_no_task_or_fd() -> None:
    await trio.lowlevel.checkpoint()
    fds_before = fd_count()
    tasks_before = task_count()
    for delay in (0.0, 0.002, 0.02, 0.1):
        with trio.move_on_after(5):
            async with sctp_pair() as stack:
                a = RTCDataChannel("bulk", negotiated=True, id=1)
                b = RTCDataChannel("bulk", negotiated=True, id=1)
                stack.sctp_a.add_channel(a)
                stack.sctp_b.add_channel(b)

                async def pump(a: RTCDataChannel = a, b: RTCDataChannel = b) -> None:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_send_forever, a)
                        async for _message in b:
                            pass

                with trio.move_on_after(delay):
                    await pump()
                transports = (stack.sctp_a, stack.sctp_b)
                stack.nursery.cancel_scope.cancel()
        assert all(t.state == "closed" for t in transports)
        assert a.readyState == b.readyState == "closed"
        assert fd_count() == fds_before
        assert task_count() == tasks_before


async def _send_forever(channel: RTCDataChannel) -> None:
    chunk = b"c" * 16384
    while True:
        await channel.send_message(chunk)


async def test_a_crash_in_the_driver_fails_the_transport_visibly() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("x", negotiated=True, id=0)
            b = RTCDataChannel("x", negotiated=True, id=0)
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await a.wait_open()
            await b.wait_open()
            errors: list[RTCErrorEvent] = []
            b.onerror = errors.append

            def broken(event: object, *, now: float) -> list[object]:
                raise RuntimeError("bug in the core")

            def broken_data(event: object) -> object:
                raise RuntimeError("bug in the core")

            stack.sctp_b._dcep.handle_event = broken  # type: ignore[method-assign,assignment]
            # Messages take the per-message path, not handle_event.
            stack.sctp_b._dcep.message_data = broken_data  # type: ignore[method-assign,assignment]
            a.send("trigger")
            await b.wait_until(lambda: b.readyState == "closed")
            assert stack.sctp_b.state == "closed"
            [error] = errors
            assert "bug in the core" in str(error.error)
            assert error.error.errorDetail == "sctp-failure"


async def test_peer_abort_is_seen_while_a_slow_reader_holds_the_association() -> None:
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            a = RTCDataChannel("x", negotiated=True, id=0)
            b = RTCDataChannel("x", negotiated=True, id=0)
            b.receive_high_water = 16384
            stack.sctp_a.add_channel(a)
            stack.sctp_b.add_channel(b)
            await a.wait_open()
            for _ in range(20):
                a.send(b"p" * 16384)
            await trio.sleep(0.3)
            assert stack.sctp_b._paused_by is b
            stack.sctp_a.stop()
            # b never reads, yet learns that the association is gone.
            await stack.sctp_b.wait_until(lambda: stack.sctp_b.state == "closed")
            assert b.readyState == "closed"
            assert isinstance(await b.receive(), bytes)  # what arrived can still be read


async def test_cancelling_at_random_points_leaves_nothing_behind() -> None:
    rng = random.Random(4)
    await trio.lowlevel.checkpoint()
    fds_before = fd_count()
    tasks_before = task_count()
    outcomes = set()
    for delay in [0.0] + [rng.uniform(0, 0.08) for _ in range(19)]:
        transports: list[RTCSctpTransport] = []
        with trio.move_on_after(delay) as scope:
            async with sctp_pair(start=False) as stack:
                transports += [stack.sctp_a, stack.sctp_b]
                a = RTCDataChannel("bulk", negotiated=True, id=1)
                b = RTCDataChannel("bulk", negotiated=True, id=1)
                stack.sctp_a.add_channel(a)
                stack.sctp_b.add_channel(b)
                await stack.start()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_send_forever, a)
                    async for _message in b:
                        pass
        outcomes.add((scope.cancelled_caught, bool(transports)))
        # Every transport whose run() began ended closed (one never started stays connecting).
        assert all(t.state == "closed" for t in transports if t._started)
        assert fd_count() == fds_before
        assert task_count() == tasks_before
    # Cancelled both before the SCTP transports existed and after.
    assert {(True, False), (True, True)} <= outcomes


async def test_a_channel_opened_as_the_association_ends_is_no_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A channel created in the same turn as the association ends (the close race a random
    cancellation found) closes with the transport; nothing is logged at ERROR and the
    transport is not marked crashed."""
    with trio.fail_after(10):
        async with sctp_pair() as stack:
            first = RTCDataChannel("first")
            stack.sctp_a.add_channel(first)
            await first.wait_open()
            stack.sctp_a._association.abort("test")
            late = RTCDataChannel("late")
            stack.sctp_a.add_channel(late)
            await stack.sctp_a.wait_until(lambda: stack.sctp_a.state == "closed")
            await late.wait_until(lambda: late.readyState == "closed")
    assert stack.sctp_a.crashed is None
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
