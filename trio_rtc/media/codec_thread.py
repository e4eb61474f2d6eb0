"""One long-lived worker thread per encoder or decoder instance.

``trio.to_thread.run_sync`` takes a thread from trio's cache for every call: a capacity
limiter, a copy of the context, an OS thread name set and reset, and a result handed back
through an outcome. For a codec called 30 or 50 times a second for the whole life of a
stream that is most of what a call costs besides the codec itself (about 85 µs of CPU per
round trip here). A :class:`CodecThread` keeps one thread for one codec instance: a call hands
the function to the thread and parks the calling task; the thread runs it and reschedules the
task through the run's token. Nothing else is shared with the Trio loop.

Short calls run inline. Some codec calls cost less than the hand-over itself: decoding a
20 ms Opus frame takes about 25 µs, a round trip through any thread about 85 µs of CPU and
two task steps. Once the last :data:`INLINE_WINDOW` calls of a codec each took less than
:data:`INLINE_BELOW` (0.3 ms: a fraction of a task step's worth of loop time, far under what
the loop-blocking budget allows), its calls run on the Trio thread; the first call that takes
longer sends the following ones back to the thread until a new window of short calls has been
seen. Video codecs (a millisecond or more per picture) always run in the thread.

The hand-over itself is a :class:`queue.SimpleQueue` (implemented in C: a put wakes the
blocked ``get`` of the thread directly), not a deque with a ``threading.Semaphore``, whose
Python-level condition variable allocates a lock per wait and costs several times as much per
call on both sides.

Order and bounds: one call at a time (the caller awaits each one; a second concurrent call is
an error), so calls run in the order they were made and at most one job is ever queued.

Cancellation: like ``trio.to_thread.run_sync`` (without ``abandon_on_cancel``), a call in
flight is not abandoned: a cancelled caller waits for it (a codec call takes milliseconds)
and the cancellation is raised at its next checkpoint. :meth:`CodecThread.close` ends the
thread and joins it, so leaving the pipeline leaves no thread behind.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

__all__ = ["INLINE_BELOW", "INLINE_WINDOW", "CodecThread"]

T = TypeVar("T")
#: A call for the thread: the function, its arguments, the run's token and the waiting task.
_Job = tuple[Callable[..., Any], tuple[Any, ...], trio.lowlevel.TrioToken, trio.lowlevel.Task]

#: A call that takes less than this (seconds, wall clock) counts as short.
INLINE_BELOW = 0.0003
#: This many short calls in a row, and the next ones run inline.
INLINE_WINDOW = 16
#: Inline calls in a row between two schedule points (a burst of queued frames still lets
#: other tasks run).
_INLINE_YIELD_EVERY = 8


class CodecThread:
    """A worker thread for one codec instance (started at the first call that needs it, ended
    by :meth:`close`). ``await run(fn, *args)`` runs ``fn(*args)`` there (or inline, see the
    module docstring) and returns its result or raises its exception."""

    __slots__ = (
        "_busy",
        "_closed",
        "_inline_below",
        "_jobs",
        "_name",
        "_short_calls",
        "_thread",
        "inline_calls",
        "thread_calls",
    )

    def __init__(self, name: str, *, inline_below: float = INLINE_BELOW) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._closed = False
        self._inline_below = inline_below
        self._short_calls = 0  # consecutive calls shorter than inline_below
        #: Calls run on the Trio thread and in the worker thread (for tests and stats).
        self.inline_calls = 0
        self.thread_calls = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._thread is not None else "idle"
        return (
            f"<CodecThread {self._name!r} {state} thread_calls={self.thread_calls} "
            f"inline_calls={self.inline_calls}>"
        )

    @property
    def alive(self) -> bool:
        """Whether the OS thread exists (started and not yet joined)."""
        return self._thread is not None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise trio.ClosedResourceError(f"{self._name}: the codec thread is closed")
        if self._busy:
            raise trio.BusyResourceError(f"{self._name}: a call is already in flight")
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._short_calls >= INLINE_WINDOW:
            return await self._run_inline(fn, args)
        if self._thread is None:
            # The thread holds the queue, not this object: one that is dropped without close()
            # is collected, and __del__ ends its thread.
            thread = threading.Thread(
                target=_work, args=(self._jobs,), name=self._name, daemon=True
            )
            thread.start()
            self._thread = thread
        self._busy = True
        try:
            self._jobs.put(
                (fn, args, trio.lowlevel.current_trio_token(), trio.lowlevel.current_task())
            )
            # The thread reschedules this task with the call's outcome and duration.
            done: tuple[outcome.Outcome[T], float] = await trio.lowlevel.wait_task_rescheduled(
                lambda _: trio.lowlevel.Abort.FAILED  # the call runs to its end
            )
        finally:
            self._busy = False
        result, seconds = done
        self.thread_calls += 1
        self._note(seconds)
        return result.unwrap()

    async def _run_inline(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self.inline_calls += 1
        self._busy = True
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._note(time.perf_counter() - started)
            try:
                if self.inline_calls % _INLINE_YIELD_EVERY == 0:
                    await trio.lowlevel.cancel_shielded_checkpoint()
            finally:
                self._busy = False

    def _note(self, seconds: float) -> None:
        self._short_calls = self._short_calls + 1 if seconds < self._inline_below else 0

    def close(self) -> None:
        """End the thread and wait for it (it is idle: no call is in flight from a caller that
        awaits its calls). Idempotent."""
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def __del__(self) -> None:
        # Dropped without close(): end the thread (without waiting for it).
        if self._thread is not None:
            self._jobs.put(None)


def _work(jobs: queue.SimpleQueue[_Job | None]) -> None:
    """The thread of a :class:`CodecThread`: run each job, hand the task its outcome and the
    call's duration, until the ``None`` job."""
    clock = time.perf_counter
    while True:
        job = jobs.get()
        if job is None:
            return
        fn, args, token, task = job
        started = clock()
        result = outcome.capture(fn, *args)
        done = outcome.Value((result, clock() - started))
        del fn, args, job, result  # nothing of the call stays alive in an idle thread
        try:
            token.run_sync_soon(trio.lowlevel.reschedule, task, done)
        except trio.RunFinishedError:  # pragma: no cover - the run ended under a call
            pass
        del done, task, token
