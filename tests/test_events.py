import gc
import logging
import warnings
import weakref
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from trio_rtc.events import Event, EventTarget, HandlerQueue, event_handler_property


class Thing(EventTarget):
    onping = event_handler_property["Thing"]("ping")


async def test_plain_async_and_attribute_handlers_all_run() -> None:
    seen: list[str] = []
    thing = Thing()

    def plain(event: Event) -> None:
        seen.append("plain:" + event.type)

    async def later(event: Event) -> None:
        await trio.lowlevel.checkpoint()
        seen.append("async:" + event.type)

    thing.onping = lambda e: seen.append("on")
    thing.addEventListener("ping", plain)
    thing.addEventListener("ping", later)
    async with trio.open_nursery() as nursery:
        queue = thing._handler_queue = HandlerQueue()
        await nursery.start(queue.run)
        thing.dispatchEvent(Event("ping"))
        await wait_completed(queue, 1)
        queue.close()
    assert seen == ["on", "plain:ping", "async:ping"]
    thing.removeEventListener("ping", plain)
    thing.onping = None
    thing._handler_queue = None
    thing.dispatchEvent(Event("ping"))  # the async handler is dropped, not leaked
    assert seen == ["on", "plain:ping", "async:ping"]


async def test_raising_handler_does_not_reach_dispatcher() -> None:
    thing = Thing()

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    thing.addEventListener("ping", broken)
    assert thing.dispatchEvent(Event("ping"))


async def test_wait_until_wakes_on_event() -> None:
    thing = Thing()
    state = {"v": 0}

    async def bump() -> None:
        await trio.sleep(1)
        state["v"] = 1
        thing.dispatchEvent(Event("ping"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bump)
        with trio.fail_after(5):
            await thing.wait_until(lambda: state["v"] == 1)


# --- HandlerQueue: async handlers through one bounded queue ---------------------------------


@pytest.fixture
def no_unawaited() -> Iterator[None]:
    """Turn "coroutine ... was never awaited" (and every other warning) into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
        gc.collect()  # a leaked coroutine would warn (and fail) here


async def wait_completed(queue: HandlerQueue, n: int) -> None:
    # The queue offers counters, not events: poll one (deterministic under the MockClock).
    with trio.fail_after(60):
        while queue.completed < n:  # noqa: ASYNC110
            await trio.sleep(0.01)


def all_tasks() -> set[trio.lowlevel.Task]:
    found: set[trio.lowlevel.Task] = set()
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return found


def drop_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "trio_rtc.events" and r.levelno >= logging.WARNING and "dropped" in r.msg
    ]


async def test_queue_defaults_and_validation() -> None:
    queue = HandlerQueue()
    assert (queue.max_running, queue.max_pending) == (64, 1024)
    assert (queue.pending, queue.running, queue.dropped, queue.completed) == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="max_running"):
        HandlerQueue(max_running=0)
    with pytest.raises(ValueError, match="max_pending"):
        HandlerQueue(max_pending=0)


async def test_async_handlers_start_in_submission_order(
    autojump_clock: trio.testing.MockClock, no_unawaited: None
) -> None:
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue(max_running=8)
    started: list[int] = []
    finished: list[int] = []

    async def handler(event: Event) -> None:
        n = int(event.type[4:])
        started.append(n)
        await trio.sleep((n * 7) % 5)  # finish in another order than they started
        finished.append(n)

    for n in range(50):
        thing.addEventListener(f"ping{n}", handler)
    async with trio.open_nursery() as nursery:
        for n in range(20):  # queued before the runner starts: they wait, in order
            thing.dispatchEvent(Event(f"ping{n}"))
        assert queue.pending == 20
        await nursery.start(queue.run)
        for n in range(20, 50):
            thing.dispatchEvent(Event(f"ping{n}"))
            if n % 3 == 0:
                await trio.sleep(0.5)
        await wait_completed(queue, 50)
        queue.close()  # run() returns once nothing is running
    assert started == list(range(50))
    assert finished != started
    assert sorted(finished) == started
    assert (queue.pending, queue.running, queue.dropped) == (0, 0, 0)


async def test_at_most_max_running_at_once(
    autojump_clock: trio.testing.MockClock, no_unawaited: None
) -> None:
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue(max_running=4, max_pending=100)
    now = 0
    peak = 0
    release = trio.Event()

    async def handler(event: Event) -> None:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        assert queue.running <= 4
        await release.wait()
        now -= 1

    thing.onping = handler
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        for _ in range(30):
            thing.dispatchEvent(Event("ping"))
        await trio.sleep(1)
        assert (queue.running, queue.pending, now) == (4, 26, 4)
        release.set()
        await wait_completed(queue, 30)
        nursery.cancel_scope.cancel()
    assert peak == 4
    assert (queue.completed, queue.dropped, queue.running, queue.pending) == (30, 0, 0, 0)


async def test_one_slow_handler_does_not_stall_the_others(
    autojump_clock: trio.testing.MockClock, no_unawaited: None
) -> None:
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue(max_running=2)
    done: list[str] = []

    async def handler(event: Event) -> None:
        await trio.sleep(1000 if event.type == "slow" else 0.01)
        done.append(event.type)

    thing.addEventListener("slow", handler)
    thing.addEventListener("fast", handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        thing.dispatchEvent(Event("slow"))
        for _ in range(10):
            thing.dispatchEvent(Event("fast"))
        await trio.sleep(1)
        assert done == ["fast"] * 10
        nursery.cancel_scope.cancel()


async def test_flood_is_bounded_dropped_and_logged_once(
    autojump_clock: trio.testing.MockClock,
    no_unawaited: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_rtc.events")
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue()  # the defaults: 64 running, 1024 pending
    limit = queue.max_running + queue.max_pending
    alive: weakref.WeakSet[Coroutine[Any, Any, None]] = weakref.WeakSet()
    peak_alive = 0

    async def slow(event: Event) -> None:
        await trio.sleep(3600)

    def handler(event: Event) -> Coroutine[Any, Any, None]:
        coroutine = slow(event)
        alive.add(coroutine)
        return coroutine

    thing.onping = handler
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        for n in range(100_000):
            thing.dispatchEvent(Event("ping"))
            peak_alive = max(peak_alive, len(alive))  # a refused coroutine is already gone
            if n % 1000 == 0:
                await trio.sleep(0.001)  # let the runner start what it may
        assert queue.running == queue.max_running
        assert queue.pending == queue.max_pending
        assert queue.dropped == 100_000 - limit
        assert queue.completed == 0
        assert len(drop_records(caplog)) == 1
        record = drop_records(caplog)[0]
        assert record.levelno == logging.WARNING
        assert record.args is not None and record.args[0] == "ping"
        assert "max_running=64" in record.getMessage() and "max_pending=1024" in record.getMessage()
        nursery.cancel_scope.cancel()
    assert peak_alive <= limit
    assert len(alive) == 0  # the running ones were cancelled, the waiting ones closed
    assert queue.closed and (queue.pending, queue.running) == (0, 0)


async def test_a_new_overflow_episode_logs_again(
    autojump_clock: trio.testing.MockClock, no_unawaited: None, caplog: pytest.LogCaptureFixture
) -> None:
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue(max_running=1, max_pending=2)

    async def handler(event: Event) -> None:
        await trio.sleep(1)

    thing.onping = handler
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        for _ in range(2):  # two episodes, the backlog drains in between
            for _ in range(10):
                thing.dispatchEvent(Event("ping"))
            await trio.sleep(10)
        queue.close()
    assert len(drop_records(caplog)) == 2
    assert (queue.dropped, queue.completed) == (16, 4)


async def test_handler_exceptions_are_logged_and_the_runner_goes_on(
    autojump_clock: trio.testing.MockClock, no_unawaited: None, caplog: pytest.LogCaptureFixture
) -> None:
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue(max_running=1)
    seen: list[int] = []

    async def handler(event: Event) -> None:
        await trio.sleep(0.1)
        seen.append(len(seen))
        if len(seen) % 2:
            raise RuntimeError(f"boom {len(seen)}")

    thing.onping = handler
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        for _ in range(6):
            assert thing.dispatchEvent(Event("ping"))
        await trio.sleep(5)
        queue.close()
    assert seen == [0, 1, 2, 3, 4, 5]
    assert (queue.completed, queue.failed) == (6, 3)
    raised = [r for r in caplog.records if r.name == "trio_rtc.events" and r.exc_info]
    assert [str(r.exc_info[1]) for r in raised if r.exc_info] == ["boom 1", "boom 3", "boom 5"]
    assert all("async ping handler raised" in r.getMessage() for r in raised)


async def test_close_leaves_no_task_and_no_unawaited_coroutine(
    autojump_clock: trio.testing.MockClock, no_unawaited: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_rtc.events")
    thing = Thing()
    queue = thing._handler_queue = HandlerQueue(max_running=2, max_pending=10)
    cancelled = 0

    async def handler(event: Event) -> None:
        nonlocal cancelled
        try:
            await trio.sleep(3600)
        except trio.Cancelled:
            cancelled += 1
            raise

    thing.onping = handler
    tasks_before = all_tasks()
    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        for _ in range(8):
            thing.dispatchEvent(Event("ping"))
        await trio.sleep(1)
        assert (queue.running, queue.pending) == (2, 6)
        assert len(all_tasks() - tasks_before) == 1 + 2  # run() and two workers
        queue.close()  # the 6 waiting ones are closed unstarted; the running ones go on
        assert (queue.running, queue.pending, queue.closed) == (2, 0, True)
        for _ in range(500):  # refused, counted, one debug line
            assert not queue.submit(handler(Event("ping")), "ping")
            thing.dispatchEvent(Event("ping"))
        assert queue.dropped == 1000
        nursery.cancel_scope.cancel()  # the owner's nursery ends the running ones
    assert cancelled == 2
    assert (queue.running, queue.completed) == (0, 0)
    assert all_tasks() == tasks_before
    logged = [r for r in caplog.records if r.name == "trio_rtc.events"]
    assert len(logged) == 1 and logged[0].levelno == logging.DEBUG


async def test_close_before_run_and_run_after_close(no_unawaited: None) -> None:
    queue = HandlerQueue()

    async def handler() -> None:
        await trio.lowlevel.checkpoint()

    assert queue.submit(handler(), "ping")
    queue.close()  # never started: the waiting coroutine is closed, not leaked
    assert queue.pending == 0 and not queue.submit(handler(), "ping")
    with trio.fail_after(1):
        await queue.run()  # returns at once
    with pytest.raises(RuntimeError, match="already running or has run"):
        await queue.run()


async def test_run_returns_after_close_once_running_handlers_finish(
    autojump_clock: trio.testing.MockClock, no_unawaited: None
) -> None:
    queue = HandlerQueue()
    finished = False

    async def handler() -> None:
        nonlocal finished
        await trio.sleep(5)
        finished = True

    async with trio.open_nursery() as nursery:
        await nursery.start(queue.run)
        queue.submit(handler(), "ping")
        await trio.sleep(1)
        queue.close()
    assert finished and trio.current_time() >= 5
