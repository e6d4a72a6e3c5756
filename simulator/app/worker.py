"""A session's background worker: model builds and steps run off the page's event thread.

Building or stepping a large population can take seconds (10,000 agents with the standard
measures: tens of seconds on a small machine). Run on the thread that handles the browser's
events, that would freeze the page; run here, one job after another on one thread per session,
the page stays responsive (Pause, the agent chooser and the plots keep working) and shows a
progress bar while a job runs. Jobs of one session never overlap, so a parameter change made
while playing applies between two frames.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Worker:
    """Runs submitted callables in order on one daemon thread.

    Parameters
    ----------
    after : callable, optional
        Called (on the worker thread) after every job, e.g. to ask the page to redraw.
    """

    def __init__(self, after: Callable[[], None] | None = None):
        self.after = after
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.label = ""
        self._thread = threading.Thread(target=self._loop, daemon=True, name="neuropop-worker")
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while a job is queued or running."""
        return not self._idle.is_set()

    def submit(self, label: str, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; ``label`` says what runs (shown by the page while busy)."""
        with self._lock:
            self._pending += 1
            self._idle.clear()
            if not self.label:
                self.label = label
        self._queue.put((label, fn, args))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False on timeout."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        """End the thread after the queued jobs."""
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            label, fn, args = item
            self.label = label
            try:
                fn(*args)
            except Exception:  # a job's failure must not kill the session's worker
                logger.exception("app job %r failed", label)
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self.label = ""
                        self._idle.set()
            if self.after is not None:
                try:
                    self.after()
                except Exception:
                    logger.exception("app redraw after %r failed", label)
