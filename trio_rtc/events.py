"""A small ``EventTarget`` for the spec's events, with trio-native waiting beside it.

Handlers are registered with ``addEventListener(type, handler)`` or by assigning an ``on<type>``
property, as in the browser. A handler may be a plain function or an ``async def``: plain ones run
synchronously inside ``dispatchEvent``; async ones are started in the owner's nursery (the peer
connection's, or the transport driver's) so they can await without blocking the protocol. An
exception raised by a handler is logged and never reaches the protocol code that fired the event.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar, overload

import trio

__all__ = ["Event", "EventHandler", "EventTarget", "event_handler_property"]

logger = logging.getLogger("trio_rtc.events")


class Event:
    """The spec's ``Event``: ``type`` and ``target``. Subclasses add the spec's attributes."""

    def __init__(self, type: str) -> None:
        self.type = type
        self.target: object | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type!r}>"


EventHandler = Callable[[Any], None] | Callable[[Any], Awaitable[None]]


class EventTarget:
    """Mix-in giving ``addEventListener``, ``removeEventListener`` and ``dispatchEvent``.

    The owner sets ``_event_nursery`` once it runs inside a nursery; async handlers dispatched
    before that (or after it closed) are dropped with a log line rather than left dangling.
    """

    _event_nursery: trio.Nursery | None = None

    def _listeners(self) -> dict[str, list[EventHandler]]:
        try:
            return self.__dict__["_event_listeners"]  # type: ignore[no-any-return]
        except KeyError:
            listeners: dict[str, list[EventHandler]] = {}
            self.__dict__["_event_listeners"] = listeners
            return listeners

    def addEventListener(self, type: str, listener: EventHandler) -> None:
        handlers = self._listeners().setdefault(type, [])
        if listener not in handlers:
            handlers.append(listener)

    def removeEventListener(self, type: str, listener: EventHandler) -> None:
        handlers = self._listeners().get(type, [])
        if listener in handlers:
            handlers.remove(listener)

    def dispatchEvent(self, event: Event) -> bool:
        """Call the ``on<type>`` handler, then every listener, in registration order.

        This sits on the per-message path of data channels, so it does no work for absent
        handlers and no introspection: a handler is called, and if it returned a coroutine (an
        ``async def`` handler, or any callable returning one) that coroutine runs in the owner's
        nursery."""
        event.target = self
        state = self.__dict__
        attribute_handler = state.get("_on_" + event.type)
        if attribute_handler is not None:
            self._call_handler(attribute_handler, event)
        listeners: dict[str, list[EventHandler]] | None = state.get("_event_listeners")
        if listeners:
            handlers = listeners.get(event.type)
            if handlers:
                for handler in tuple(handlers):
                    self._call_handler(handler, event)
        if "_changed" in state:
            self._notify_waiters()
        return True

    def _call_handler(self, handler: EventHandler, event: Event) -> None:
        try:
            result = handler(event)
        except Exception:
            logger.exception("%s handler raised", event.type)
            return
        if isinstance(result, types.CoroutineType):
            nursery = self._event_nursery
            if nursery is None:
                result.close()
                logger.warning("async %s handler dropped: %r is not running", event.type, self)
                return
            nursery.start_soon(self._run_async_handler, result, event.type)

    @staticmethod
    async def _run_async_handler(coroutine: Coroutine[Any, Any, object], event_type: str) -> None:
        try:
            await coroutine
        except Exception:
            logger.exception("async %s handler raised", event_type)

    # --- trio-native waiting -----------------------------------------------------------------

    def _notify_waiters(self) -> None:
        changed: trio.Event | None = self.__dict__.pop("_changed", None)
        if changed is not None:
            changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return as soon as ``predicate()`` is true; it is re-checked after every event."""
        while not predicate():
            changed = self.__dict__.get("_changed")
            if changed is None:
                changed = self.__dict__["_changed"] = trio.Event()
            await changed.wait()


T = TypeVar("T", bound=EventTarget)


class event_handler_property(Generic[T]):
    """Descriptor for an ``on<type>`` attribute: ``pc.onicecandidate = handler``."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        self.slot = "_on_" + event_type

    @overload
    def __get__(self, obj: None, objtype: type[T]) -> event_handler_property[T]: ...
    @overload
    def __get__(self, obj: T, objtype: type[T]) -> EventHandler | None: ...
    def __get__(
        self, obj: T | None, objtype: type[T]
    ) -> EventHandler | event_handler_property[T] | None:
        if obj is None:
            return self
        handler: EventHandler | None = obj.__dict__.get(self.slot)
        return handler

    def __set__(self, obj: T, value: EventHandler | None) -> None:
        if value is not None and not callable(value):
            raise TypeError(f"on{self.event_type} must be a callable or None, not {value!r}")
        obj.__dict__[self.slot] = value
