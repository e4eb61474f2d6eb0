"""Media objects written for asyncio (aiortc's ``MediaPlayer``, ``VideoStreamTrack``, your own
asyncio tracks) used from Trio.

Their ``recv()`` awaits asyncio futures and sleeps, which only an asyncio event loop can run; a
Trio program has none. :class:`AsyncioBridge` runs one in a thread of its own for as long as the
``async with`` block lasts::

    from aiortc.contrib.media import MediaPlayer

    async with AsyncioBridge() as bridge:
        player = await bridge.run_sync(MediaPlayer, "clip.mp4")   # made on the asyncio loop
        pc.addTrack(bridge.track(player.video))
        pc.addTrack(bridge.track(player.audio))
        await trio.sleep_forever()  # the call goes on until cancelled

:meth:`AsyncioBridge.track` gives a frame track for Trio: each ``recv()`` runs the asyncio
track's ``recv()`` on the bridge's loop and waits for it in a worker thread (the Trio loop never
blocks); a cancelled ``recv`` cancels the asyncio one; aiortc's ``MediaStreamError`` at the end
comes through as it is (trio_rtc takes any exception of that name as the end of a track).
Leaving the block cancels what still runs on the asyncio loop, stops it and joins its thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import trio

__all__ = ["AsyncioBridge", "BridgedTrack"]

T = TypeVar("T")


class BridgedTrack:
    """A frame track whose frames come from an asyncio track on an :class:`AsyncioBridge`."""

    def __init__(self, track: Any, bridge: AsyncioBridge) -> None:
        kind = getattr(track, "kind", None)
        if kind not in ("audio", "video") or not callable(getattr(track, "recv", None)):
            raise TypeError(f"a track has kind 'audio'/'video' and recv(), not {track!r}")
        self.track = track
        self.kind: str = kind
        self.id: str | None = getattr(track, "id", None)
        self.label: str = getattr(track, "label", "") or ""
        self._bridge = bridge
        #: Frames handed to Trio so far.
        self.frames = 0

    def __repr__(self) -> str:
        return f"<BridgedTrack {self.kind} of {self.track!r}>"

    async def recv(self) -> Any:
        frame = await self._bridge.run(self.track.recv)
        self.frames += 1
        return frame

    def stop(self) -> None:
        stop = getattr(self.track, "stop", None)
        if callable(stop) and not self._bridge.closed:
            self._bridge.loop.call_soon_threadsafe(stop)


class AsyncioBridge:
    """An asyncio event loop in a thread of its own, for asyncio media objects (see the module
    docstring). ``async with AsyncioBridge() as bridge:``."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the bridge is not running: use `async with AsyncioBridge()`")
        return self._loop

    async def __aenter__(self) -> AsyncioBridge:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="asyncio bridge", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self.closed:
            return
        self.closed = True

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        def shut_down() -> None:
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shut_down)

    async def run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await function(*args)`` on the asyncio loop; its result here (or its exception).
        Cancelling this cancels the asyncio task."""
        future = asyncio.run_coroutine_threadsafe(_call(function, *args), self.loop)
        try:
            return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except trio.Cancelled:
            future.cancel()
            raise

    async def run_sync(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` called on the asyncio loop's thread (constructors of
        objects that look up the running loop, such as aiortc's ``MediaPlayer``)."""

        async def call() -> T:
            return function(*args, **kwargs)

        return await self.run(call)

    def track(self, track: Any) -> BridgedTrack:
        """A frame track for ``pc.addTrack`` (or a recorder) reading the asyncio ``track``."""
        return BridgedTrack(track, self)


async def _call(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await functools.partial(function, *args)()
