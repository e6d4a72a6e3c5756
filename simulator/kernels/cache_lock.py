"""Numba's on-disk kernel cache, safe for several processes compiling at once.

Numba keeps one index file per cached function (signature -> data file) beside numbered data
files. Writing an entry reads the index, picks the first free number, writes the index, then the
data (``numba.core.caching.IndexDataCacheFile.save``, Numba 0.68); reading an entry reads the
index, then the data file it names. Each file is replaced atomically, but the sequence is not:
two processes compiling two signatures of one function at once can both pick number 1, and the
index can end up naming, for one signature, the code compiled for the other (a kernel run on
arrays of the wrong type), or a reader can load a data file that a writer is about to replace.
Numba's developers suggest a file lock (numba/numba#10128). Several processes do compile at once
here: a local sweep's workers on a fresh install, ``make test``'s two test processes, two runs
started side by side.

:func:`install` (run when :mod:`simulator.kernels` is imported, before any kernel compiles)
wraps both operations in an exclusive ``flock`` on one lock file per cache directory,
``<cache dir>/.cache.lock``: an entry is written, or read, by one process at a time, index and
data together. Each operation is file I/O of milliseconds (the compilation itself happens
outside the lock). Where ``flock`` does not exist (Windows) or fails (a file system without
it), or the lock file cannot be created (a read-only cache directory, where nothing is written
anyway), the operations run unlocked, as in Numba.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

from numba.core import caching

try:
    import fcntl
except ImportError:  # Windows: no flock; Numba's own behaviour
    fcntl = None

LOCK_NAME = ".cache.lock"


@contextlib.contextmanager
def locked(cache_dir: str) -> Iterator[None]:
    """Hold the exclusive lock of the kernel cache in ``cache_dir`` (blocks until it is free).

    Unlocked (a no-op) without ``fcntl``, when the lock file cannot be opened or when ``flock``
    fails on its file system.
    """
    fd = -1
    if fcntl is not None:
        try:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # as folder_lock.py
            fd = os.open(os.path.join(cache_dir, LOCK_NAME), flags, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no directory, read-only, a symlink, or no flock on its file system
            if fd >= 0:
                os.close(fd)
            fd = -1
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock


def _under_lock(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of an IndexDataCacheFile, run holding its cache directory's lock."""

    @functools.wraps(method)
    def run(self: caching.IndexDataCacheFile, *args: Any) -> Any:
        with locked(self._cache_path):
            return method(self, *args)

    run.__cache_lock__ = True
    return run


def install() -> None:
    """Lock Numba's cache-entry writes and reads across processes (idempotent)."""
    cls = caching.IndexDataCacheFile
    for name in ("save", "load"):
        method = getattr(cls, name)
        if not getattr(method, "__cache_lock__", False):
            setattr(cls, name, _under_lock(method))
