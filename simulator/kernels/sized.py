"""Parallel kernel calls sized by :mod:`simulator.kernels.threads`, in one line.

The data, social and graph kernels loop over blocks of agents in ``prange``; a call wrapped by
:func:`sized_call` uses at most as many threads as its work keeps busy (one for a small
population) and the thread count :data:`simulator.kernels.threads.CHOOSER` measured faster
under the machine's load, in work-stealing pieces (issue 15). Nothing any iteration computes
depends on it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from simulator.kernels import threads
from simulator.kernels.threads import parallel_begin, parallel_end

__all__ = ["EDGE_FLOPS", "blocks", "sized", "sized_call"]

# What reading one neighbour (a CSR entry and the row it points to, at a random place in memory)
# costs in a graph kernel, in FLOPs at the kernels' speed (~25 GFLOP/s on small rows): the
# polarization scenario's 10,000 agents, 127,594 entries, rows of 2 numbers, one thread:
# confident_edges 3.4 ns and masked_mean_mix 3.9 ns per entry, ~90 FLOPs' time. Counting only
# the arithmetic on the rows (~6 FLOPs) sized these calls at under 1 MFLOP, one thread.
EDGE_FLOPS = 80.0


def blocks(n: int, size: int) -> int:
    """Number of blocks of ``size`` items covering ``n`` items."""
    return (int(n) + size - 1) // size


def sized_call(
    key: str, n_items: int, work_per_item: float, kernel: Callable[..., Any], *args: Any
) -> Any:
    """``kernel(*args)`` between :func:`parallel_begin` and :func:`parallel_end`.

    Parameters
    ----------
    key : str
        The kind of call (calls of one kind share their speed measurements).
    n_items : int
        Iterations of the kernel's ``prange`` loop (e.g. blocks of agents).
    work_per_item : float
        Cost of one iteration in FLOPs (or any unit of the same size; an estimate).
    kernel, args
        The Numba kernel and its arguments.

    Returns
    -------
    Whatever ``kernel`` returns.
    """
    call = parallel_begin(key, max(int(n_items), 1), float(work_per_item))
    try:
        return kernel(*args)
    finally:
        parallel_end(call)


def sized(parallel, serial, work: float, serial_below: float | None = None):
    """The serial twin of a kernel when ``work`` (FLOPs) is below ``serial_below`` (default:
    what keeps two threads busy, 2 x :data:`simulator.kernels.threads.MIN_WORK_PER_THREAD`):
    no parallel region at all; else the parallel kernel, sized by :func:`sized_call` (one
    thread or all, as measured faster). Both run the same per-row code: identical results.
    Returns a callable taking the kernel's arguments."""
    below = 2.0 * threads.MIN_WORK_PER_THREAD if serial_below is None else serial_below
    if work < below:
        return serial
    return partial(sized_call, parallel.__name__, 1, float(work), parallel)
