"""A progress bar on stderr without a dependency.

Why not rich or tqdm: the CLI needs one bar, a rate and an estimate of the time left; that is a
few lines of arithmetic, and trio_rtc keeps its dependencies to the protocol stack itself. On a
terminal the bar redraws in place at most ten times a second; to a pipe or file it writes a plain
line every tenth of the way, which keeps logs readable.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

__all__ = ["ProgressBar", "format_bytes", "format_duration"]


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


class ProgressBar:
    """``bar.update(done)`` as bytes move; ``bar.finish()`` ends the line. ``start`` is where a
    resumed transfer began: the rate counts only what moved in this run."""

    def __init__(
        self, total: int, *, start: int = 0, label: str = "", stream: TextIO | None = None
    ) -> None:
        self.total = max(total, 1)
        self.start = start
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.began = time.monotonic()
        self.done = start
        self._last_draw = 0.0
        self._last_tenth = start * 10 // self.total

    def rate(self) -> float:
        """Bytes per second over this run."""
        elapsed = time.monotonic() - self.began
        return (self.done - self.start) / elapsed if elapsed > 0 else 0.0

    def line(self, width: int) -> str:
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        text = (
            f" {self.done * 100 / self.total:5.1f}% {format_bytes(self.done)}/"
            f"{format_bytes(self.total)} {format_bytes(rate)}/s ETA {format_duration(left)}"
        )
        head = f"{self.label} " if self.label else ""
        room = width - len(head) - len(text) - 2
        if room < 10:
            return head + text.lstrip()
        filled = room * self.done // self.total
        return f"{head}[{'#' * filled}{'.' * (room - filled)}]{text}"

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                width = shutil.get_terminal_size().columns - 1
                self.stream.write("\r" + self.line(width))
                self.stream.flush()
            return
        tenth = self.done * 10 // self.total
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self.line(72) + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + self.line(width) + "\n")
            self.stream.flush()
