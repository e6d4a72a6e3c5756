"""Which threading layer runs the parallel kernels: TBB's work stealing, found without setup.

Every parallel kernel of the project (``numba.prange``: training, measures, data, social
rules) runs on one of Numba's threading layers. The layer matters on a busy machine, which is
the usual one (the app beside a browser and a notebook, sweeps running several workers):

* ``omp`` (GNU OpenMP): the loop is cut into one static share per thread and the call returns
  when the last share is done. When another process holds a thread's core, the whole call
  waits for the scheduler to give that core back: a time slice (milliseconds) on a call that
  takes one millisecond. Measured (8-16-1, 1,000 agents, two threads, one other busy process,
  on a machine other users also loaded): 0.30x, 1.19x and 0.39x single-threaded JAX in three
  runs, where TBB gave 0.64x-1.40x.
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
call uses at most as many threads as its work can keep busy (a call too small to pay for waking
a second thread runs on one), one thread instead when that has been measured faster for this
kind of call (:class:`ThreadChooser`: on a machine busy enough, one thread beats two that keep
waiting for each other), and it hands the loop to the layer in small pieces (Numba's
``parallel_chunksize``), so that TBB can move pieces from a thread whose core is taken to one
that runs. None of this changes what any iteration computes.

:func:`configure` runs once when :mod:`simulator.kernels` is imported (its only side effect:
the TBB library is loaded, a few milliseconds). It never changes a layer Numba has already
started, nor one a user chose.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from importlib import metadata
from typing import Any, NamedTuple

import numba

__all__ = [
    "CHOOSER",
    "ParallelCall",
    "ThreadChooser",
    "configure",
    "parallel_begin",
    "parallel_end",
    "tbb_library",
    "threading_info",
]

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


class ThreadChooser:
    """Chooses, call by call, between one thread and all of them, from the speed measured.

    A parallel call is as slow as its slowest piece: when other processes hold the cores, a
    thread that is off its core holds up the call (work stealing shortens the wait but cannot
    remove it: a piece under way must finish). How busy the machine is cannot be known
    beforehand, so each kind of call (``key``) keeps an exponentially weighted mean of the
    seconds per unit of work with one thread and with all threads (the two "arms"), uses all
    threads only while their mean is at least ``MARGIN`` below one thread's (a busy machine
    makes their times erratic: in doubt, one thread, whose time is steady) and, every
    ``period`` calls, tries the other arm once, a try that weighs more in its mean (it may be
    stale: measured under another load); calls measured long (:data:`LONG_CALL`) keep all
    threads without tries. The period is the relative gap
    between the arms over ``EXPLORE_COST`` (between 8 and 32 calls), so the tries cost about
    3% of the time (two threads twice as fast as one, on a quiet machine: one call in 32 on
    one thread), and they come often when the arms are close, where the choice changes with
    the load; two tries bring back an arm whose mean was measured under a load that has gone.
    While one thread is ahead of all threads measured fewer than :data:`SETTLE` times, all
    threads are tried every other call (a single slow measurement must not decide for dozens
    of calls). The first call of each kind is not measured (it may include compiling).

    Results never depend on the choice: every kernel iteration writes only its own rows.
    """

    ALPHA, ALPHA_TRY = 0.3, 0.7  # weight of the newest measurement in the means
    # Calls measured to take longer than this on all threads keep all threads, untried on one:
    # a core taken by another process holds up at most one small piece of such a call (a few
    # milliseconds of a time slice beside >= 50), while a one-thread try would cost up to a
    # whole call (evolution's probe pass of 1,000,000 agents: ~1 s on two threads, ~2 s on
    # one, tried in the model's first steps and every 8-32 calls after).
    LONG_CALL = 0.05
    MARGIN = 0.9  # all threads only while their mean is below MARGIN x one thread's
    PERIOD_MIN, PERIOD_MAX = 8, 32
    EXPLORE_COST = 0.03  # time lost to tries ~ gap / period: 3% (more for gaps > ~1)
    # While one thread is ahead of all threads measured fewer times than this, all threads are
    # tried every other call: a first all-thread call measured slow (its first page faults, a
    # moment of load) otherwise decided for up to PERIOD_MAX calls (measured: gossip_learning's
    # CKA at 10,000 agents ran on one thread, at 1.7x its two-thread time, from its 3rd to its
    # 20th collect). Not the other way round: a try on one thread costs a whole call's worth
    # on a quiet machine (training at 10,000 agents: 9 ms against 4.5)
    SETTLE = 3

    def __init__(self) -> None:
        self.enabled = os.environ.get("NEUROPOP_ADAPTIVE_THREADS", "1") != "0"
        self._kinds: dict[Any, CallKind] = {}

    def state(self, key: Any) -> CallKind:
        """The measurements of calls of kind ``key`` (created empty on first use)."""
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = CallKind()
        return kind

    def choose(self, key: Any, most: int, work: float = 0.0) -> tuple[int, bool]:
        """(threads, explored): 1 or ``most`` threads for the next call of kind ``key`` with
        ``work``, and whether that is the arm measured slower (a try that refreshes its mean).
        A call measured long (:data:`LONG_CALL`) gets all threads, never a try."""
        if most <= 1 or not self.enabled:
            return max(1, most), False
        kind = self.state(key)  # one lookup a call: this runs around every kernel call
        calls = kind.calls
        kind.calls = calls + 1
        one, every = kind.mean
        if every != every:  # all threads first (the first call, unmeasured, too)
            return most, False
        if every * work > self.LONG_CALL:  # long_call(key, work), without a second lookup
            return most, False
        if one != one:
            return 1, True
        best = 1 if every < self.MARGIN * one else 0
        if best == 0 and kind.measured[1] < self.SETTLE:
            explore = calls % 2 == 1  # one thread won against too few all-thread calls
        else:
            gap = max(one, every) / max(min(one, every), 1e-300) - 1.0
            period = int(min(self.PERIOD_MAX, max(self.PERIOD_MIN, gap / self.EXPLORE_COST)))
            explore = calls % period == period - 1
        return (1, most)[best ^ explore], explore

    def long_call(self, key: Any, work: float) -> bool:
        """Whether a call of kind ``key`` with ``work`` is expected to take over
        :data:`LONG_CALL` seconds on all threads (from their measured mean; False before it is
        measured)."""
        kind = self._kinds.get(key)
        rate = _NAN if kind is None else kind.mean[1]
        return self.enabled and rate == rate and rate * work > self.LONG_CALL

    def record(self, key: Any, call: ParallelCall, seconds: float) -> None:
        """Fold one call's wall time into its arm's mean."""
        if call.most <= 1 or not self.enabled or call.work <= 0:
            return
        kind = self._kinds.get(key)
        if kind is None or kind.calls <= 1:  # the first call of this kind: maybe a compile
            return
        mean = kind.mean
        arm = 0 if call.threads == 1 else 1
        kind.measured[arm] += 1
        rate = seconds / call.work
        if mean[arm] != mean[arm]:
            mean[arm] = rate
        else:
            alpha = self.ALPHA_TRY if call.explored else self.ALPHA
            mean[arm] = (1 - alpha) * mean[arm] + alpha * rate

    def means(self) -> dict[Any, tuple[float, float]]:
        """Seconds per unit of work measured so far: key -> (one thread, all threads)."""
        return {
            k: (v.mean[0], v.mean[1])
            for k, v in self._kinds.items()
            if v.mean[0] == v.mean[0] or v.mean[1] == v.mean[1]
        }


class CallKind:
    """What :class:`ThreadChooser` keeps for one kind of call, in one object (one dictionary
    lookup a call): ``calls`` chosen so far, ``mean`` seconds per unit of work [one thread,
    all threads] (NaN before the first measurement) and ``measured`` counts [one, all]."""

    __slots__ = ("calls", "mean", "measured")

    def __init__(self) -> None:
        self.calls = 0
        self.mean = [_NAN, _NAN]
        self.measured = [0, 0]


_NAN = float("nan")
CHOOSER = ThreadChooser()
"""The process's chooser: ``CHOOSER.enabled = False`` (or ``NEUROPOP_ADAPTIVE_THREADS=0`` in the
environment) makes every call use all the threads its work can keep busy."""


class ParallelCall(NamedTuple):
    """What :func:`parallel_begin` set, for :func:`parallel_end`."""

    key: Any  # the kind of call and the size class of its work
    threads: int  # used by this call
    most: int  # threads the work could keep busy
    explored: bool  # the arm measured slower, tried to refresh its mean
    saved_threads: int
    saved_chunk: int
    work: float
    start: float


def parallel_begin(key: Any, n_items: int, work_per_item: float) -> ParallelCall:
    """Threads and piece size for the next parallel kernel call, a loop over ``n_items`` items.

    Call from Python right before the kernel (Numba cannot cache a kernel that sets these
    itself) and hand the result to :func:`parallel_end` right after, in a ``finally``.

    Parameters
    ----------
    key : hashable
        The kind of call (e.g. the kernel's name): calls of one kind share their measurements.
    n_items : int
        Iterations of the kernel's ``prange`` loop.
    work_per_item : float
        Cost of one iteration, in FLOPs (or any unit of the same size).

    Returns
    -------
    ParallelCall. Sets the calling thread's Numba thread count to at most
    ``n_items * work_per_item / MIN_WORK_PER_THREAD`` (between 1 and the current count; one
    or all of those as :data:`CHOOSER` decides; all of them for a call it measured long) and
    Numba's parallel chunk size to about
    ``WORK_PER_PIECE`` of work per piece.
    """
    get_threads, set_threads, set_chunk = _API or _api()
    threads = get_threads()
    work = n_items * work_per_item
    most = max(1, min(threads, int(work / MIN_WORK_PER_THREAD)))
    key = (key, int(math.log2(max(work, 1.0))))  # calls of one kind and a similar size
    use, explored = CHOOSER.choose(key, most, work)
    if use != threads:
        set_threads(use)
    chunk = set_chunk(max(1, int(WORK_PER_PIECE / max(work_per_item, 1.0))))
    return ParallelCall(key, use, most, explored, threads, chunk, work, time.perf_counter())


def parallel_end(call: ParallelCall) -> None:
    """Restore what :func:`parallel_begin` changed; record the call's speed."""
    seconds = time.perf_counter() - call.start
    _, set_threads, set_chunk = _API or _api()
    if call.threads != call.saved_threads:
        set_threads(call.saved_threads)
    set_chunk(call.saved_chunk)
    CHOOSER.record(call.key, call, seconds)


_API: tuple | None = None


def _api() -> tuple:
    """(get threads, set threads, set chunk size) of the calling thread, as direct calls into
    the threading layer: Numba's public functions check their argument and take a process lock
    each time (~5 us a call), which a 1 ms kernel call would pay five times. Falls back to the
    public functions if this Numba has no such entry points. Starts Numba's threads."""
    global _API
    from numba.np.ufunc import parallel

    numba.get_num_threads()  # starts the threads: the entry points exist from then on
    direct = [getattr(parallel, name, None) for name in _DIRECT]
    if all(callable(f) for f in direct):
        _API = tuple(direct)
    else:  # pragma: no cover - another Numba
        _API = (numba.get_num_threads, numba.set_num_threads, numba.set_parallel_chunksize)
    return _API


_DIRECT = ("_get_num_threads", "_set_num_threads", "_set_parallel_chunksize")
