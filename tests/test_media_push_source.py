"""VideoSource/AudioSource.send: a frame that finds room is queued without a schedule point
(one task step less per frame for every source), and send stays a cancellation point with
backpressure once the queue is full."""

from __future__ import annotations

import trio
import trio.testing

from trio_rtc.media import AudioSource, VideoSource


async def test_a_send_with_room_does_not_let_other_tasks_run() -> None:
    source = VideoSource(max_queue=2)
    ran: list[bool] = []

    async def other() -> None:
        ran.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await source.send("picture 1")
        await source.send("picture 2")
        assert not ran and source.frames_sent == 2
    assert ran
    assert [await source.recv(), await source.recv()] == ["picture 1", "picture 2"]


async def test_a_cancelled_send_queues_nothing() -> None:
    source = AudioSource(max_queue=2)
    with trio.CancelScope() as scope:
        scope.cancel()
        await source.send("sound")
    assert scope.cancelled_caught and source.frames_sent == 0
    await source.send("sound 2")
    assert await source.recv() == "sound 2"


async def test_a_full_queue_still_waits_for_the_reader() -> None:
    source = VideoSource(max_queue=1)
    await source.send("picture 1")
    sent = trio.Event()

    async def send_second() -> None:
        await source.send("picture 2")
        sent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_second)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set() and source.frames_sent == 1
        assert await source.recv() == "picture 1"
        await sent.wait()
    assert await source.recv() == "picture 2" and source.frames_sent == 2
