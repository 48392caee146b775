"""Progress of long work (patch search, kernel generation, C compilation) through a callback.

The compiler never prints: functions that take long accept ``progress``, a
``Callable[[str], None] | None`` (``BuildOptions.progress``; None: silent), and
report through :func:`note` (one line) or :func:`counter` (a counted phase).
A counted phase draws a ``tqdm`` bar on stderr when stderr is a terminal, and
otherwise sends plain lines through the callback, at most one every
:data:`EVERY_SECONDS` (and the last one always).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

#: the callback long work reports through (None: silent)
Progress = Callable[[str], None] | None
#: plain (non-terminal) progress: at most one line per this many seconds within a phase
EVERY_SECONDS = 5.0


def note(progress: Progress, line: str) -> None:
    """Report one line (nothing when ``progress`` is None)."""
    if progress is not None:
        progress(line)


class Counter:
    """A phase of ``total`` counted items (None: not known in advance): call :meth:`step` per item
    and :meth:`close` at the end."""

    def __init__(self, progress: Progress, label: str, total: int | None, every: float = EVERY_SECONDS) -> None:
        self.progress, self.label, self.total, self.every = progress, label, total, every
        self.done = 0
        self._start = self._last = time.monotonic()
        self._bar = None
        if progress is not None and _stderr_is_tty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="", file=sys.stderr, leave=False)

    def step(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.progress is not None and time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self.progress(f"{self.label}: {self._count()}")

    def close(self, summary: bool = True) -> None:
        """The phase ended: with ``summary``, one line with its count and duration."""
        if self._bar is not None:
            self._bar.close()
        if summary:
            note(self.progress, f"{self.label}: {self._count()} in {time.monotonic() - self._start:.1f} s")

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)


def counter(progress: Progress, label: str, total: int | None = None) -> Counter:
    """A :class:`Counter` of ``total`` items reported as ``label``."""
    return Counter(progress, label, total)


def _stderr_is_tty() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
