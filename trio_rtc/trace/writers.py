"""Where trace events go: JSON lines (our schema) or one qlog JSON document.

Writers are plain objects with ``write(event)`` and ``close()``, called from the trio tasks of a
peer connection. They write to a buffered file: a line is a few hundred bytes and reaches the
disk in 64 KiB blocks, so the event loop sees a small write syscall now and then, never one per
event.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Protocol

from .events import TraceEvent
from .qlog import qlog_document

__all__ = ["JsonLinesWriter", "MemoryWriter", "QlogWriter", "TraceWriter", "writer_for_path"]

_BUFFER = 1 << 16


class TraceWriter(Protocol):
    def write(self, event: TraceEvent) -> None: ...
    def close(self) -> None: ...


def _open(target: str | os.PathLike[str] | IO[str]) -> tuple[IO[str], bool]:
    if isinstance(target, str | os.PathLike):
        return Path(target).open("a", encoding="utf-8", buffering=_BUFFER), True
    return target, False


class JsonLinesWriter:
    """One JSON object per line (``docs/tracing.md``, schema version 1); appends to a file path
    or writes to an open text stream (which it does not close)."""

    def __init__(self, target: str | os.PathLike[str] | IO[str]) -> None:
        self._file, self._owned = _open(target)
        self._refs = 1
        self.closed = False

    def write(self, event: TraceEvent) -> None:
        if not self.closed:
            self._file.write(json.dumps(event.to_record(), default=str) + "\n")

    def share(self) -> JsonLinesWriter:
        """One more peer connection writes here; each ``close()`` gives one back."""
        self._refs += 1
        return self

    def close(self) -> None:
        self._refs -= 1
        if self._refs > 0 or self.closed:
            return
        self.closed = True
        if self._owned:
            self._file.close()
        else:
            self._file.flush()


class QlogWriter:
    """Keeps the events and writes one qlog JSON document (one trace per pc) at ``close()``:
    a qlog file is a single JSON value, so it cannot grow line by line."""

    def __init__(self, target: str | os.PathLike[str] | IO[str], *, title: str = "") -> None:
        self._target = target
        self._title = title or "trio_rtc trace"
        self.events: list[TraceEvent] = []
        self.closed = False

    def write(self, event: TraceEvent) -> None:
        if not self.closed:
            self.events.append(event)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        document = qlog_document(self.events, title=self._title)
        target = self._target
        if isinstance(target, str | os.PathLike):
            file: IO[str] = Path(target).open("w", encoding="utf-8")
            owned = True
        else:
            file, owned = target, False
        try:
            json.dump(document, file, default=str)
            file.write("\n")
        finally:
            if owned:
                file.close()
            else:
                file.flush()


class MemoryWriter:
    """Keeps every event in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def write(self, event: TraceEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def writer_for_path(path: str | os.PathLike[str]) -> TraceWriter:
    """A qlog writer for ``*.qlog``, JSON lines for anything else."""
    if str(path).endswith((".qlog", ".qlog.json")):
        return QlogWriter(path)
    return JsonLinesWriter(path)
