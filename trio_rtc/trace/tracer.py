"""The peer connection's side of tracing: timestamps, pc id and layer; writers; live consumers.

A core never sees this class: its driver gives it ``tracer.core(layer)``, a plain callable
``(name, data)``. With tracing off the core's ``trace`` stays ``None`` and costs one ``is None``
check at each decision point.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from .events import SCHEMA_VERSION, CoreTracer, TraceEvent
from .writers import JsonLinesWriter, QlogWriter, TraceWriter

__all__ = [
    "ENV_VAR",
    "TraceOption",
    "TraceSubscription",
    "Tracer",
    "make_tracer",
    "tracing",
]

#: Trace writers belong to their peer connection: their failures are logged as its own.
logger = logging.getLogger("trio_rtc.pc")

#: ``TRIO_RTC_TRACE=trace.jsonl`` (one file, every pc of the process) or ``=some/dir/`` (one
#: JSON-lines file per pc in that directory, made if needed) turns tracing on process-wide.
ENV_VAR = "TRIO_RTC_TRACE"

#: How many events a live consumer may fall behind before newer ones are dropped.
DEFAULT_CONSUMER_BUFFER = 1024

TraceOption = bool | str | os.PathLike[str] | TraceWriter | Sequence[TraceWriter] | None

_pc_ids = itertools.count(1)
_default: contextvars.ContextVar[TraceOption] = contextvars.ContextVar(
    "trio_rtc_trace", default=None
)
#: JSON-lines files shared by every pc of this process (the env var naming one file).
_shared: dict[str, JsonLinesWriter] = {}


class TraceSubscription:
    """A live view of a pc's events: ``async for event in pc.trace(): ...``.

    Its buffer holds ``max_buffer`` events; when the consumer falls further behind, newer events
    are dropped and counted in :attr:`dropped` (the protocol never waits for a consumer). The
    iteration ends when the peer connection closes, or when the consumer leaves ``async with``
    or calls :meth:`close`."""

    def __init__(self, tracer: Tracer, max_buffer: int) -> None:
        self._tracer = tracer
        self._send, self._receive = trio.open_memory_channel[TraceEvent](max_buffer)
        self.dropped = 0

    def _offer(self, event: TraceEvent) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._tracer._subscriptions.discard(self)

    def close(self) -> None:
        self._tracer._subscriptions.discard(self)
        self._send.close()

    def __aiter__(self) -> AsyncIterator[TraceEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TraceEvent]:
        async for event in self._receive:
            yield event

    async def __aenter__(self) -> TraceSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self._receive.close()


class Tracer:
    """Events of one peer connection (``pc_id``): stamps them with trio's clock and hands them
    to the writers and live subscriptions."""

    def __init__(self, writers: Sequence[TraceWriter] = (), *, pc_id: str | None = None) -> None:
        self.pc_id = pc_id or f"pc-{os.getpid()}-{next(_pc_ids)}"
        self.writers: list[TraceWriter] = list(writers)
        self._subscriptions: set[TraceSubscription] = set()
        self.closed = False
        #: Events emitted, per layer.
        self.counts: dict[str, int] = {}
        self._last_time = 0.0
        self.emit("pc", "trace_started", {"schema": SCHEMA_VERSION, "pc": self.pc_id})

    @property
    def dropped(self) -> int:
        """Events the live subscriptions still open had to drop."""
        return sum(s.dropped for s in self._subscriptions)

    def core(self, layer: str) -> CoreTracer:
        """The callable a core of ``layer`` calls: ``trace(name, data)``."""

        def trace(name: str, data: dict[str, Any]) -> None:
            self.emit(layer, name, data)

        return trace

    def emit(self, layer: str, name: str, data: dict[str, Any] | None = None) -> None:
        if self.closed:
            return
        try:
            now = trio.current_time()
        except RuntimeError:  # outside trio.run (a pc made before the loop): last known time
            now = self._last_time
        self._last_time = now
        event = TraceEvent(now, self.pc_id, layer, name, data or {})
        self.counts[layer] = self.counts.get(layer, 0) + 1
        for writer in self.writers:
            writer.write(event)
        for subscription in tuple(self._subscriptions):
            subscription._offer(event)

    def subscribe(self, max_buffer: int = DEFAULT_CONSUMER_BUFFER) -> TraceSubscription:
        subscription = TraceSubscription(self, max_buffer)
        if self.closed:
            subscription._send.close()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def close(self) -> None:
        """The last event (``trace_stopped``), then every writer closes and every live
        iteration ends."""
        if self.closed:
            return
        self.emit("pc", "trace_stopped", {"dropped": self.dropped})
        self.closed = True
        for subscription in tuple(self._subscriptions):
            subscription.close()
        for writer in self.writers:
            try:
                writer.close()
            except OSError:
                logger.exception("closing a trace writer failed")


def _writers_for(option: TraceOption, pc_id: str) -> list[TraceWriter]:
    if option is None or isinstance(option, bool):
        return []
    if isinstance(option, str | os.PathLike):
        path = str(option)
        if path.endswith(os.sep) or Path(path).is_dir():
            directory = Path(path)
            directory.mkdir(parents=True, exist_ok=True)
            return [JsonLinesWriter(directory / f"trio_rtc-{pc_id}.jsonl")]
        if str(path).endswith((".qlog", ".qlog.json")):
            return [QlogWriter(path)]
        shared = _shared.get(path)
        if shared is None or shared.closed:
            shared = _shared[path] = JsonLinesWriter(path)
            return [shared]
        return [shared.share()]
    if isinstance(option, Sequence):
        return [writer for writer in option if not isinstance(writer, str)]
    return [option]


def make_tracer(option: TraceOption) -> Tracer | None:
    """The tracer for a new peer connection: its ``trace=`` argument, else the enclosing
    :func:`tracing` block's, else the :data:`ENV_VAR` environment variable's; None when off."""
    if option is None:
        option = _default.get()
    if option is None:
        option = os.environ.get(ENV_VAR) or None
    if option is None or option is False:
        return None
    pc_id = f"pc-{os.getpid()}-{next(_pc_ids)}"
    return Tracer(_writers_for(option, pc_id), pc_id=pc_id)


@contextlib.contextmanager
def tracing(option: TraceOption = True) -> Iterator[None]:
    """Trace every peer connection created inside this block (same values as ``trace=``)."""
    token = _default.set(option)
    try:
        yield
    finally:
        _default.reset(token)
