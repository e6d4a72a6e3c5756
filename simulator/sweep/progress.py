"""Progress of a sweep: a tqdm bar on a terminal, plain lines in a log, or a Python callback."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["ProgressEvent", "make_progress"]


@dataclass(frozen=True)
class ProgressEvent:
    """What a progress callback receives after each finished run (and on ``tick``s).

    Attributes
    ----------
    total : int
        Runs in the spec.
    done : int
        Runs finished, including those found already finished in the folder (``skipped``).
    failed : int
        Runs finished with status "failed" in this invocation.
    skipped : int
        Runs already finished when this invocation started (resume).
    elapsed : float
        Seconds since this invocation started.
    eta : float or None
        Estimated seconds left (None before the first run finishes).
    run_id, status, seconds, error :
        The run that just finished (None on a tick).
    """

    total: int
    done: int
    failed: int
    skipped: int
    elapsed: float
    eta: float | None
    run_id: str | None = None
    status: str | None = None
    seconds: float | None = None
    error: str | None = None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class Progress:
    """Counts finished runs and hands a :class:`ProgressEvent` to ``emit``."""

    def __init__(self, total: int, skipped: int, emit: Callable[[ProgressEvent, bool], None]):
        self.total, self.skipped, self.emit = total, skipped, emit
        self.done, self.failed = skipped, 0
        self.start = time.monotonic()

    def event(self, result: dict[str, Any] | None = None) -> ProgressEvent:
        elapsed = time.monotonic() - self.start
        new = self.done - self.skipped
        eta = (self.total - self.done) * elapsed / new if new else None
        extra = {}
        if result is not None:
            extra = {k: result.get(k) for k in ("run_id", "status", "seconds", "error")}
        return ProgressEvent(
            self.total, self.done, self.failed, self.skipped, elapsed, eta, **extra
        )

    def finished(self, result: dict[str, Any]) -> None:
        """A run finished (ok or failed)."""
        self.done += 1
        self.failed += result.get("status") != "ok"
        self.emit(self.event(result), False)

    def tick(self) -> None:
        """Called every few seconds while runs are in flight."""
        self.emit(self.event(), True)

    def close(self) -> None:
        """The sweep ended."""
        closer = getattr(self.emit, "close", None)
        if closer is not None:
            closer()


class _Bar:
    def __init__(self, total: int, skipped: int, stream: TextIO):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=skipped, unit="run", file=stream, dynamic_ncols=True)

    def __call__(self, event: ProgressEvent, tick: bool) -> None:
        if not tick:
            self.bar.update(1)
            self.bar.set_postfix(failed=event.failed, refresh=False)

    def close(self) -> None:
        self.bar.close()


class _Lines:
    """One line every ``every`` runs or ``seconds`` seconds, and at the end."""

    def __init__(self, total: int, stream: TextIO, every: int | None, seconds: float):
        self.stream, self.seconds = stream, seconds
        self.every = every or max(total // 10, 1)
        self.last = time.monotonic()

    def __call__(self, event: ProgressEvent, tick: bool) -> None:
        now = time.monotonic()
        new = event.done - event.skipped
        due = now - self.last >= self.seconds or event.done == event.total
        if not (due if tick else due or new % self.every == 0):
            return
        self.last = now
        self.stream.write(
            f"sweep: {event.done}/{event.total} runs done, {event.failed} failed, "
            f"{_clock(event.elapsed)} elapsed, ETA {_clock(event.eta)}\n"
        )
        self.stream.flush()


def make_progress(
    progress: Any, total: int, skipped: int, stream: TextIO | None = None
) -> Progress:
    """A progress reporter from the ``progress`` argument of :func:`simulator.sweep.sweep`.

    ``"auto"``: a tqdm bar when ``stream`` (default stderr) is a terminal or in Jupyter, else a
    plain line every ~10% of the runs or 30 s; ``"bar"``, ``"lines"``; ``None``/``False``:
    silent; a callable: called with a :class:`ProgressEvent` after each finished run.
    """
    stream = stream if stream is not None else sys.stderr
    if callable(progress):
        return Progress(total, skipped, lambda event, tick: None if tick else progress(event))
    if progress in (None, False):
        return Progress(total, skipped, lambda event, tick: None)
    if progress == "auto":
        tty = getattr(stream, "isatty", lambda: False)()
        progress = "bar" if tty or "ipykernel" in sys.modules else "lines"
    if progress == "bar":
        return Progress(total, skipped, _Bar(total, skipped, stream))
    if progress == "lines":
        return Progress(total, skipped, _Lines(total, stream, None, 30.0))
    from simulator.config import fail

    raise fail("progress", progress, '"auto", "bar", "lines", None or a callable')
