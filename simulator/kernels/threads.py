"""Which threading layer runs the parallel kernels: TBB's work stealing, found without setup.

Every parallel kernel of the project (``numba.prange``: training, measures, data, social
rules) runs on one of Numba's threading layers. The layer matters on a busy machine, which is
the usual one (the app beside a browser and a notebook, sweeps running several workers):

* ``omp`` (GNU OpenMP): the loop is cut into one static share per thread and the call returns
  when the last share is done. When another process holds a thread's core, the whole call
  waits for the scheduler to give that core back: a time slice (milliseconds) on a call that
  takes one millisecond. Measured on two busy cores: 0.4x-1.5x single-threaded JAX from one
  run to the next on the same workload.
* ``tbb`` (Intel oneTBB, work stealing): work is taken by whichever thread is running; a
  share not yet started when its thread is off its core is done by the others.

So the kernels use TBB when it can be loaded. The ``tbb`` package (a dependency) installs the
TBB runtime into ``<prefix>/lib``, which is not on the dynamic loader's search path, and Numba
asks the loader for ``libtbb.so.12`` by name: without help Numba would silently fall back to
OpenMP (or fail, if ``NUMBA_THREADING_LAYER=tbb`` was asked for). :func:`configure` loads that
library into the process (``ctypes``, ``RTLD_GLOBAL``) before Numba starts its threads; the
loader then finds it already loaded. Numba's own choice does the rest: its default order is
tbb, omp, workqueue.

Control (see also the README, "Threads"):

* ``NUMBA_THREADING_LAYER=omp`` (or ``workqueue``, or ``tbb``) in the environment before the
  first parallel kernel runs chooses the layer; with ``omp`` or ``workqueue`` TBB is not loaded.
* ``NUMBA_NUM_THREADS`` (at start) or ``numba.set_num_threads(n)`` (at any time, per calling
  thread) sets the number of threads; results are bit-identical whatever the layer and the
  number of threads (every kernel iteration writes only its own rows).
* :func:`threading_info` tells which layer runs and where TBB came from.

Around a kernel call, :func:`parallel_begin` / :func:`parallel_end` (from Python) size it: the
call uses as many threads as its work can keep busy (a call too small to pay for waking a
second thread runs on one), and hands the loop to the layer in small pieces (Numba's
``parallel_chunksize``), so that TBB can move pieces from a thread whose core is taken to one
that runs. Neither changes what any iteration computes.

:func:`configure` runs once when :mod:`simulator.kernels` is imported (its only side effect:
the TBB library is loaded, a few milliseconds). It never changes a layer Numba has already
started, nor one a user chose.
"""

from __future__ import annotations

import ctypes
import os
from importlib import metadata
from typing import Any

import numba

__all__ = ["configure", "parallel_begin", "parallel_end", "tbb_library", "threading_info"]

# A second thread pays for itself above this much work in one call (FLOPs or any unit of the
# same size): waking a thread and joining it costs ~10-50 us, and the kernels do ~20-100
# GFLOP/s per core, so a thread gets at least ~50-100 us of work.
MIN_WORK_PER_THREAD = 2_000_000.0
# Pieces of a parallel loop hold about this much work (a few microseconds): small enough for
# work stealing to even out a busy machine, large enough that scheduling costs stay < 1%.
WORK_PER_PIECE = 200_000.0

_state: dict[str, Any] = {"tbb_path": None, "tbb_error": None, "configured": False}
# layers for which TBB is worth loading: Numba's default search (tbb first) and the explicit
# or "safe" requests that accept TBB
_WANTS_TBB = ("default", "tbb", "safe", "threadsafe")


def tbb_library() -> str | None:
    """Path of ``libtbb.so.12`` installed by the ``tbb`` package, or None.

    The wheel's record lists the library as ``libtbb.so.12`` and ``libtbb.so.12.<minor>`` (plain
    files, no symbolic link); either is the same runtime. Debian's ``libtbb12`` lives on the
    loader's path already, so Numba finds it without this.
    """
    try:
        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        return None
    found = []
    for f in files:
        if f.name == "libtbb.so.12" or f.name.startswith("libtbb.so.12."):
            path = os.path.realpath(str(f.locate()))
            if os.path.isfile(path):
                found.append((f.name != "libtbb.so.12", path))  # the exact name first
    return min(found)[1] if found else None


def _threads_started() -> bool:
    from numba.np.ufunc import parallel

    return bool(getattr(parallel, "_is_initialized", False))


def configure() -> None:
    """Make TBB loadable for Numba, once, before its threads start (see the module docstring).

    Does nothing when Numba's threads already run, when the requested layer
    (``NUMBA_THREADING_LAYER``) excludes TBB, or when the ``tbb`` package is not installed
    (Numba then uses a system TBB if the loader finds one, else OpenMP). A library that fails to
    load is recorded in :func:`threading_info` and Numba falls back as usual.
    """
    if _state["configured"]:
        return
    _state["configured"] = True
    if _threads_started() or str(numba.config.THREADING_LAYER).lower() not in _WANTS_TBB:
        return
    path = tbb_library()
    if path is None:
        return
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:  # a broken install: Numba falls back to OpenMP
        _state["tbb_error"] = str(exc)
        return
    _state["tbb_path"] = path


def threading_info() -> dict[str, Any]:
    """What runs the parallel kernels.

    Starts Numba's threads if no parallel kernel has run yet (as the first kernel would).

    Returns
    -------
    dict with ``layer`` (``"tbb"``, ``"omp"`` or ``"workqueue"``), ``requested``
    (``NUMBA_THREADING_LAYER``, ``"default"`` unless set), ``num_threads``
    (``numba.get_num_threads()``), ``tbb_library`` (the path loaded by :func:`configure`, or
    None) and ``tbb_error`` (why that load failed, or None).
    """
    configure()
    numba.get_num_threads()  # starts the threads (and so chooses the layer) if not yet done
    return {
        "layer": numba.threading_layer(),
        "requested": str(numba.config.THREADING_LAYER).lower(),
        "num_threads": numba.get_num_threads(),
        "tbb_library": _state["tbb_path"],
        "tbb_error": _state["tbb_error"],
    }


def parallel_begin(n_items: int, work_per_item: float) -> tuple[int, int]:
    """Threads and piece size for the next parallel kernel call, a loop over ``n_items`` items.

    Call from Python right before the kernel (Numba cannot cache a kernel that sets these
    itself) and hand the result to :func:`parallel_end` right after, in a ``finally``.

    Parameters
    ----------
    n_items : int
        Iterations of the kernel's ``prange`` loop.
    work_per_item : float
        Cost of one iteration, in FLOPs (or any unit of the same size).

    Returns
    -------
    (threads, chunksize) of the calling thread before this call. Sets its thread count to
    ``n_items * work_per_item / MIN_WORK_PER_THREAD`` (between 1 and the current count) and
    Numba's parallel chunk size to about ``WORK_PER_PIECE`` of work per piece.
    """
    threads = numba.get_num_threads()
    use = max(1, min(threads, int(n_items * work_per_item / MIN_WORK_PER_THREAD)))
    if use != threads:
        numba.set_num_threads(use)
    piece = max(1, int(WORK_PER_PIECE / max(work_per_item, 1.0)))
    return threads, numba.set_parallel_chunksize(piece)


def parallel_end(saved: tuple[int, int]) -> None:
    """Restore the thread count and chunk size that :func:`parallel_begin` returned."""
    if numba.get_num_threads() != saved[0]:
        numba.set_num_threads(saved[0])
    numba.set_parallel_chunksize(saved[1])
