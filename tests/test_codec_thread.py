"""CodecThread: the one worker thread of an encoder or decoder (trio_rtc.media.codec_thread).

Calls keep their order and never overlap, a second concurrent call is refused (the queue holds
at most one job), exceptions come back to the caller, a cancelled caller waits for the call in
flight, close() leaves no thread, and short calls move inline (and back to the thread when
one is long)."""

from __future__ import annotations

import gc
import threading
import time

import pytest
import trio
import trio.testing

from trio_rtc.media.codec_thread import INLINE_WINDOW, CodecThread


def live_codec_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


async def test_calls_run_in_order_in_one_other_thread() -> None:
    worker = CodecThread("test codec order", inline_below=0.0)
    seen: list[tuple[int, int]] = []

    def call(index: int) -> int:
        seen.append((index, threading.get_ident()))
        return index * 2

    try:
        results = [await worker.run(call, index) for index in range(50)]
    finally:
        worker.close()
    assert results == [index * 2 for index in range(50)]
    assert [index for index, _ in seen] == list(range(50))
    idents = {ident for _, ident in seen}
    assert len(idents) == 1 and threading.get_ident() not in idents
    assert worker.thread_calls == 50 and worker.inline_calls == 0


async def test_exception_comes_back_and_the_thread_stays_usable() -> None:
    worker = CodecThread("test codec error")

    def fail() -> None:
        raise ValueError("bad frame")

    try:
        with pytest.raises(ValueError, match="bad frame"):
            await worker.run(fail)
        assert await worker.run(lambda: 7) == 7
    finally:
        worker.close()


async def test_a_second_concurrent_call_is_refused() -> None:
    worker = CodecThread("test codec busy")
    release = threading.Event()
    errors: list[BaseException] = []

    async def second() -> None:
        try:
            await worker.run(lambda: None)
        except trio.BusyResourceError as exc:
            errors.append(exc)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.run, release.wait)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    finally:
        worker.close()
    assert len(errors) == 1


async def test_cancelled_caller_waits_for_the_call_in_flight() -> None:
    worker = CodecThread("test codec cancel")
    finished: list[bool] = []

    def slow() -> None:
        time.sleep(0.05)
        finished.append(True)

    try:
        with trio.move_on_after(0.005) as scope:
            await worker.run(slow)
            await trio.sleep(1)  # the cancellation lands at the next checkpoint
        assert scope.cancelled_caught
        assert finished == [True]  # the call ran to its end before the caller went on
    finally:
        worker.close()


async def test_close_leaves_no_thread_and_refuses_calls() -> None:
    name = "test codec close"
    worker = CodecThread(name)
    assert not worker.alive and not live_codec_threads(name)  # started lazily
    await worker.run(lambda: None)
    assert worker.alive and len(live_codec_threads(name)) == 1
    worker.close()
    worker.close()  # idempotent
    assert not worker.alive and not live_codec_threads(name)
    with pytest.raises(trio.ClosedResourceError):
        await worker.run(lambda: None)


async def test_cancelling_a_pipeline_task_leaves_no_thread() -> None:
    name = "test codec pipeline"

    async def pipeline(task_status: trio.TaskStatus[None]) -> None:
        worker = CodecThread(name, inline_below=0.0)
        try:
            task_status.started()
            while True:
                await worker.run(time.sleep, 0.001)
        finally:
            worker.close()

    async with trio.open_nursery() as nursery:
        await nursery.start(pipeline)
        await trio.sleep(0.02)
        assert len(live_codec_threads(name)) == 1
        nursery.cancel_scope.cancel()
    assert not live_codec_threads(name)


async def test_short_calls_move_inline_and_a_long_one_moves_back() -> None:
    worker = CodecThread("test codec inline", inline_below=0.005)
    where: list[bool] = []

    def call(pause: float = 0.0) -> None:
        if pause:
            time.sleep(pause)
        where.append(threading.current_thread() is threading.main_thread())

    try:
        for _ in range(INLINE_WINDOW):
            await worker.run(call)
        assert where == [False] * INLINE_WINDOW  # the window is seen in the thread
        await worker.run(call)
        assert where[-1] is True and worker.inline_calls == 1
        await worker.run(call, 0.01)  # a long call (inline, measured) ...
        assert where[-1] is True
        await worker.run(call)  # ... sends the next ones back to the thread
        assert where[-1] is False
    finally:
        worker.close()


async def test_a_dropped_codec_thread_ends_its_thread() -> None:
    name = "test codec dropped"
    worker: CodecThread | None = CodecThread(name)
    assert worker is not None
    await worker.run(lambda: None)
    [thread] = live_codec_threads(name)
    worker = None  # never closed: collected, and its thread told to end
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()
