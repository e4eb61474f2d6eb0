"""A small ``EventTarget`` for the spec's events, with trio-native waiting beside it.

Handlers are registered with ``addEventListener(type, handler)`` or by assigning an ``on<type>``
property, as in the browser. A handler may be a plain function or an ``async def``: plain ones run
synchronously inside ``dispatchEvent``; async ones go through the owner's ``HandlerQueue`` (one per
peer connection, or per transport used alone), which runs them in its own task tree with bounded
concurrency and a bounded backlog, so they can await without blocking the protocol and a flood of
events cannot become a flood of tasks. An exception raised by a handler is logged and never reaches
the protocol code that fired the event.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import sys
import types
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, overload

import trio

from .exceptions import InvalidStateError

if TYPE_CHECKING:
    from .datachannel import RTCDataChannel

__all__ = [
    "Event",
    "EventHandler",
    "EventTarget",
    "HandlerQueue",
    "RTCDataChannelEvent",
    "RTCErrorEvent",
    "RefuseUnknownHandlers",
    "event_handler_property",
    "on_event",
    "require_trio",
]

logger = logging.getLogger("trio_rtc.events")


class Event:
    """The spec's ``Event``: ``type`` and ``target``. Subclasses add the spec's attributes."""

    def __init__(self, type: str) -> None:
        self.type = type
        self.target: object | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type!r}>"


class HandlerQueue:
    """Runs the coroutines of ``async def`` event handlers: bounded, in order, never raising.

    One queue serves a peer connection and everything it owns (or one transport used alone).
    ``dispatchEvent`` hands each handler coroutine to :meth:`submit`, which never blocks and
    never raises. The owner starts :meth:`run` in its nursery (``await nursery.start(queue.run)``);
    handlers then run in that task's own nursery:

    - at most ``max_running`` (default 64) handlers run at the same time, so one slow handler
      does not hold up the others, and handlers *start* in the order their events were
      dispatched (they may finish in any order);
    - at most ``max_pending`` (default 1024) more wait to start. A coroutine submitted while the
      backlog is full is closed unstarted and counted in ``dropped``; one warning is logged when
      such an overflow episode begins, and the episode ends once the backlog has drained;
    - an exception from a handler is logged (logger ``trio_rtc.events``), counted in ``failed``,
      and does not disturb the queue or the protocol.

    Coroutines submitted before :meth:`run` starts wait in the backlog. :meth:`close` closes every
    waiting coroutine and refuses later ones (counted in ``dropped``, logged once at debug level);
    handlers already running are not interrupted: they end with the owner's nursery, or finish,
    after which :meth:`run` returns. :meth:`run` also closes the queue when it is cancelled.

    An owner that supervises a nursery of its own (the peer connection) starts :meth:`serve`
    instead of :meth:`run`: the same, but the handlers run in the owner's nursery, so the queue
    keeps no nursery of its own for the connection's whole life.
    """

    __slots__ = (
        "_closed",
        "_finished",
        "_max_pending",
        "_max_running",
        "_nursery",
        "_overflowing",
        "_pending",
        "_running",
        "_slots",
        "completed",
        "dropped",
        "failed",
        "name",
    )

    def __init__(self, *, max_running: int = 64, max_pending: int = 1024, name: str = "") -> None:
        if max_running < 1:
            raise ValueError(f"max_running must be at least 1, not {max_running!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending!r}")
        self._max_running = max_running
        self._max_pending = max_pending
        self.name = name
        # Made on the first submission: most connections never run an async handler, and an
        # empty deque still holds a 64-slot block.
        self._pending: deque[tuple[Coroutine[Any, Any, object], str]] | None = None
        self._nursery: trio.Nursery | None = None
        self._finished: trio.Event | None = None
        self._closed = False
        self._overflowing = False
        self._slots = 0  # worker tasks alive (each runs one handler at a time)
        self._running = 0  # handlers currently running
        #: Handlers that ran to their end (including those that raised).
        self.completed = 0
        #: Handlers that raised an exception (logged).
        self.failed = 0
        #: Coroutines closed unstarted: backlog full, or submitted after :meth:`close`.
        self.dropped = 0

    def __repr__(self) -> str:
        name = f" {self.name}" if self.name else ""
        return (
            f"<HandlerQueue{name} running={self._running}/{self._max_running}"
            f" pending={self.pending}/{self._max_pending} dropped={self.dropped}"
            f"{' closed' if self._closed else ''}>"
        )

    @property
    def max_running(self) -> int:
        return self._max_running

    @property
    def max_pending(self) -> int:
        return self._max_pending

    @property
    def pending(self) -> int:
        """Handler coroutines waiting to start."""
        return len(self._pending) if self._pending is not None else 0

    @property
    def running(self) -> int:
        """Handlers currently running."""
        return self._running

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, coroutine: Coroutine[Any, Any, object], event_type: str) -> bool:
        """Queue ``coroutine`` (the result of an async ``event_type`` handler) to run.

        Never blocks and never raises. Returns False when it was refused: it is then closed
        unstarted (no "never awaited" warning) and counted in ``dropped``."""
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        if self._closed or len(pending) >= self._max_pending:
            self._refuse(coroutine, event_type)
            return False
        pending.append((coroutine, event_type))
        nursery = self._nursery
        # A worker that has been started but has not run yet takes the oldest coroutine when it
        # does, so only start one more when there are more coroutines than such idle workers.
        if (
            nursery is not None
            and self._slots < self._max_running
            and self._slots - self._running < len(pending)
        ):
            self._start_worker(nursery)
        return True

    def _refuse(self, coroutine: Coroutine[Any, Any, object], event_type: str) -> None:
        coroutine.close()
        self.dropped += 1
        if self._overflowing:
            return
        self._overflowing = True  # stays set after close(): no log per refused event
        if self._closed:
            logger.debug("async %s handler dropped: %r is closed", event_type, self)
        else:
            logger.warning(
                "async %s handlers are dropped: %d running (max_running=%d) and %d waiting"
                " (max_pending=%d)%s; further drops are only counted until the backlog drains",
                event_type,
                self._running,
                self._max_running,
                self.pending,
                self._max_pending,
                f" in {self.name}" if self.name else "",
            )

    def _start_worker(self, nursery: trio.Nursery) -> None:
        self._slots += 1
        try:
            nursery.start_soon(self._worker)
        except RuntimeError:  # the nursery is closing: nothing will run these
            self._slots -= 1
            self.close()

    async def _worker(self) -> None:
        pending = self._pending
        assert pending is not None  # a worker starts for a submitted coroutine
        try:
            while pending:
                # Once the owner's nursery is cancelled, start nothing more (run() closes the rest).
                await trio.lowlevel.checkpoint_if_cancelled()
                # Taking the oldest coroutine and running it up to its first checkpoint happen
                # in one step of this task, so handlers start in submission order whatever
                # order trio schedules the workers in.
                coroutine, event_type = pending.popleft()
                self._running += 1
                try:
                    await coroutine
                except Exception:
                    self.failed += 1
                    self.completed += 1
                    logger.exception("async %s handler raised", event_type)
                else:
                    self.completed += 1
                finally:
                    self._running -= 1
            if not self._closed:
                self._overflowing = False  # the backlog drained: a new overflow logs again
        finally:
            self._slots -= 1
            if self._slots == 0 and self._closed and self._finished is not None:
                self._finished.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run queued handlers until :meth:`close` (then return once running ones finish) or
        until cancelled (which cancels the running ones and closes the queue). Start it once, in
        the owner's nursery: ``await nursery.start(queue.run)``."""
        if self._nursery is not None or self._finished is not None:
            raise RuntimeError(f"{self!r} is already running or has run")
        finished = self._finished = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # The backlog submitted before we started.
                for _ in range(min(self._max_running, self.pending)):
                    self._start_worker(nursery)
                task_status.started()
                if not (self._closed and self._slots == 0):
                    await finished.wait()
        finally:
            self._nursery = None
            self.close()

    async def serve(
        self,
        nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """As :meth:`run`, but the handlers run in ``nursery``, the owner's (which must outlive
        this task: start it there, ``await nursery.start(queue.serve, nursery)``). A peer
        connection keeps its queue for its whole life and most never run an async handler:
        a nursery of the queue's own would cost as much as the task."""
        if self._nursery is not None or self._finished is not None:
            raise RuntimeError(f"{self!r} is already running or has run")
        finished = self._finished = trio.Event()
        try:
            self._nursery = nursery
            # The backlog submitted before we started.
            for _ in range(min(self._max_running, self.pending)):
                self._start_worker(nursery)
            task_status.started()
            # The status keeps the nursery start() made; this frame lives as long as the
            # owner (a peer connection's whole life).
            del task_status
            if not (self._closed and self._slots == 0):
                await finished.wait()
        finally:
            self._nursery = None
            self.close()

    def close(self) -> None:
        """Close every waiting coroutine unstarted and refuse new ones. Idempotent."""
        self._closed = True
        pending = self._pending
        while pending:
            coroutine, _ = pending.popleft()
            coroutine.close()
        if self._slots == 0 and self._finished is not None:
            self._finished.set()


EventHandler = Callable[[Any], None] | Callable[[Any], Awaitable[None]]


class EventTarget:
    """Mix-in giving ``addEventListener``, ``removeEventListener`` and ``dispatchEvent``.

    The owner sets ``_handler_queue`` (its peer connection's, or a running transport's own)
    and async handlers go through it; without one they are dropped with a log line rather than
    left dangling.
    """

    _handler_queue: HandlerQueue | None = None

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
        ``async def`` handler, or any callable returning one) that coroutine goes to the owner's
        ``HandlerQueue``."""
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
            queue = self._handler_queue
            if queue is None:
                result.close()
                logger.warning("async %s handler dropped: %r is not running", event.type, self)
                return
            queue.submit(result, event.type)

    # --- trio-native waiting -----------------------------------------------------------------

    def _notify_waiters(self) -> None:
        changed: trio.Event | None = self.__dict__.pop("_changed", None)
        if changed is not None:
            changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return as soon as ``predicate()`` is true; it is re-checked after every event."""
        if not predicate():
            require_trio(f"{type(self).__name__}.wait_until()")
        while not predicate():
            changed = self.__dict__.get("_changed")
            if changed is None:
                changed = self.__dict__["_changed"] = trio.Event()
            await changed.wait()

    async def _wait_for_value(
        self,
        conditions: dict[str, object],
        valid: Collection[str],
        ended: Callable[[], bool],
    ) -> Any:
        """The body of every ``wait_for(attribute=value_or_values)``: one keyword, naming a
        state attribute of this object, whose wanted values are checked against ``valid``
        (a misspelt state would otherwise wait forever). Returns the attribute's value once it
        is one of them; InvalidStateError once ``ended()`` says it never will be."""
        owner = type(self).__name__
        require_trio(f"{owner}.wait_for()")
        given = {name: value for name, value in conditions.items() if value is not None}
        if len(given) != 1:
            raise TypeError(
                f"{owner}.wait_for() takes exactly one of {', '.join(conditions)} as a keyword, "
                f"for example wait_for({next(iter(conditions))}={next(iter(valid))!r})"
            )
        ((attribute, wanted),) = given.items()
        values = frozenset((wanted,) if isinstance(wanted, str) else cast(Collection[str], wanted))
        for value in values:
            if value not in valid:
                close = difflib.get_close_matches(str(value), valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"{owner}.{attribute} is never {value!r}{hint} "
                    f"(its values: {', '.join(repr(v) for v in valid)})"
                )

        def reached() -> bool:
            return getattr(self, attribute) in values or ended()

        if reached():
            await trio.lowlevel.checkpoint()  # a Trio async function always checkpoints
        else:
            await self.wait_until(reached)
        current = getattr(self, attribute)
        if current not in values:
            wanted_text = " or ".join(repr(v) for v in sorted(values))
            raise InvalidStateError(
                f"{owner}.{attribute} is {current!r} and the {owner} has ended: it will never be "
                f"{wanted_text}"
            )
        return current


T = TypeVar("T", bound=EventTarget)
E = TypeVar("E", bound=Event)

#: What can be assigned to an ``on<type>`` attribute whose events are ``E``: a plain function or
#: an ``async def`` taking the event (or None to remove it).
Handler = Callable[[E], object]


class on_event(Generic[E]):
    """Descriptor for an ``on<type>`` attribute whose handler receives an ``E``:
    ``onmessage = on_event[MessageEvent]("message")`` lets a type checker see that
    ``channel.onmessage = handler`` needs a handler taking a :class:`MessageEvent`."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        self.slot = "_on_" + event_type

    @overload
    def __get__(self, obj: None, objtype: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: object, objtype: type[Any]) -> Handler[E] | None: ...
    def __get__(self, obj: object | None, objtype: type[Any]) -> Self | Handler[E] | None:
        if obj is None:
            return self
        handler: Handler[E] | None = obj.__dict__.get(self.slot)
        return handler

    def __set__(self, obj: object, value: Handler[E] | None) -> None:
        if value is not None and not callable(value):
            raise TypeError(f"on{self.event_type} must be a callable or None, not {value!r}")
        obj.__dict__[self.slot] = value


class event_handler_property(on_event[Any], Generic[T]):
    """An ``on<type>`` attribute whose events a type checker sees as ``Any``:
    ``event_handler_property["Owner"]("ping")``. Prefer :class:`on_event`, which names the
    event class."""


#: ``on`` and lowercase letters: the shape of every DOM event handler attribute.
_HANDLER_NAME = re.compile(r"on[a-z]+")


def _declares(cls: type, name: str) -> bool:
    """Whether ``name`` is an attribute or an annotation of ``cls`` or one of its bases."""
    return hasattr(cls, name) or any(
        name in inspect.get_annotations(klass) for klass in cls.__mro__
    )


def _unknown_handler_message(cls: type, name: str) -> str:
    names = set(dir(cls)).union(*(inspect.get_annotations(klass) for klass in cls.__mro__))
    known = sorted(n for n in names if _HANDLER_NAME.fullmatch(n))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"{cls.__name__} has no event handler attribute {name!r}: {hint}"
        f"its on* attributes are {', '.join(known)}. "
        "(A subclass may declare an on* attribute of its own.)"
    )


class RefuseUnknownHandlers:
    """Mix-in for the objects users hang handlers on: assigning an ``on<lowercase>`` attribute
    the class does not have raises AttributeError naming the nearest one, so
    ``pc.ondatachanel = handler`` fails where it is written instead of never being called.

    Every other attribute is set as usual; a subclass that declares an ``on*`` attribute (a
    class attribute or an annotation) may set it. The check costs a Python call per attribute
    assignment, so a class using this mix-in keeps its per-message counters elsewhere."""

    if not TYPE_CHECKING:  # a type checker then reports unknown attributes itself

        def __setattr__(self, name: str, value: object) -> None:
            if (
                name[:2] == "on"
                and _HANDLER_NAME.fullmatch(name)
                and not _declares(type(self), name)
            ):
                raise AttributeError(
                    _unknown_handler_message(type(self), name), name=name, obj=self
                )
            super().__setattr__(name, value)


def require_trio(what: str) -> None:
    """Raise a RuntimeError that says so if we are not running in a Trio task (for example
    under asyncio, where Trio's own error would not say what is wrong)."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        pass
    else:
        return
    library = _running_event_loop()
    where = f"this code runs under {library}" if library else "no Trio run is active"
    raise RuntimeError(
        f"{what} needs Trio, but {where}. trio_rtc is built on Trio: start your program with "
        "trio.run(main) and use trio_rtc from Trio tasks. To combine it with asyncio code, "
        "run Trio as the main loop and reach the asyncio parts through trio-asyncio."
    ) from None


def _running_event_loop() -> str | None:
    """The name of another event loop running in this thread, if we can tell."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return "asyncio"
    return None


class RTCErrorEvent(Event):
    """The spec's ``RTCErrorEvent``: an event carrying an :class:`~trio_rtc.exceptions.RTCError`
    in ``error`` (fired by RTCDtlsTransport, RTCDataChannel and, for a component that crashed,
    RTCPeerConnection)."""

    def __init__(self, type: str, error: Exception) -> None:
        super().__init__(type)
        self.error = error


class RTCDataChannelEvent(Event):
    """The ``datachannel`` event: ``channel`` is the RTCDataChannel the peer opened."""

    def __init__(self, type: str, channel: object) -> None:
        super().__init__(type)
        # The peer connection's SCTP transport makes RTCDataChannels; one used on its own
        # carries whatever its stream_factory made.
        self.channel = cast("RTCDataChannel", channel)
