"""``async with obj:`` for objects whose lifetime is an ``@asynccontextmanager``.

A peer connection, an ICE transport, the virtual network and the UDP relay each hold a nursery
for the duration of an ``async with`` block. Writing that block as a generator-based context
manager (``_running``) is what exits the nursery correctly even when entering is cancelled
half-way; this mix-in turns it into ``__aenter__``/``__aexit__`` on the object itself.
"""

from __future__ import annotations

import abc
import types
from contextlib import AbstractAsyncContextManager
from typing import Any, Self

__all__ = ["AsyncLifetime"]


class AsyncLifetime(abc.ABC):
    _lifetime: AbstractAsyncContextManager[Any] | None = None

    @abc.abstractmethod
    def _running(self) -> AbstractAsyncContextManager[Any]:
        """The object's lifetime: opened by ``__aenter__``, closed by ``__aexit__``. It raises
        when the object cannot be entered (again), before doing anything."""

    async def __aenter__(self) -> Self:
        context = self._running()
        await context.__aenter__()
        # Stored only once entered: a refused second ``async with`` must not replace the
        # context that the running block will exit.
        self._lifetime = context
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        context, self._lifetime = self._lifetime, None
        assert context is not None, "__aexit__ without __aenter__"
        return bool(await context.__aexit__(exc_type, exc, tb))
