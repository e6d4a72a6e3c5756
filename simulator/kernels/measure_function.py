"""Numba kernels for the function-space and representation measures.

Arrays and scalars in, arrays filled in place. Every parallel loop writes only its own slot;
sums over agents run serially inside one slot (one column block, one item, one pair), so results
are bit-identical on any number of threads. Accumulation is in float64. Each kernel has a
``*_serial`` twin (same per-slot code, one thread) for small inputs; the public wrappers at the
end pick one (:func:`simulator.kernels.measure_weights.pick`).

* :func:`column_means`, :func:`weighted_column_sums`: the (weighted) mean row of an (m, D)
  array (the ensemble's mean output).
* :func:`class_counts`: per probe item, how many agents decide each class.
* :func:`decision_tallies`: the same counts, and which decisions are wrong, in one pass.
* :func:`assignments`: a batch of linear assignment problems (weight matching of hidden units).

Linear CKA has its own kernel: :mod:`simulator.kernels.measure_cka`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.measure_align import hungarian
from simulator.kernels.measure_weights import SQ_ROWS, pick, sq_rows
from simulator.kernels.numpy_sum import pairwise_sum

_JIT = {"cache": True, "error_model": "numpy"}
# reassoc only: with "contract" as well, LLVM compiled these reductions differently when
# freshly compiled and when loaded from the cache (last-bit differences between a cold and a
# warm run of the same seed); reassoc alone still vectorizes them and gives one result.
_FAST = {**_JIT, "fastmath": {"reassoc"}}
_COLUMNS = 512  # columns per parallel slot of the column sums


@njit(**_FAST)
def _columns(F, w, out, s):
    """Columns of slot s: out[t] = sum_i w_i F[i, t] (w of length 0: plain mean), summed in
    row order in a local accumulator."""
    m, D = F.shape
    lo, hi = s * _COLUMNS, min(D, (s + 1) * _COLUMNS)
    acc = np.zeros(hi - lo)
    if w.shape[0] == 0:
        for i in range(m):
            row = F[i, lo:hi]
            for t in range(hi - lo):
                acc[t] += row[t]
        for t in range(hi - lo):
            out[lo + t] = acc[t] / m
    else:
        for i in range(m):
            wi = w[i]
            row = F[i, lo:hi]
            for t in range(hi - lo):
                acc[t] += wi * row[t]
        for t in range(hi - lo):
            out[lo + t] = acc[t]


@njit(parallel=True, **_JIT)
def column_sums(F, w, out):
    """out (D,) float64 = sum_i w[i] F[i] for F (m, D), or the mean row when w is empty."""
    for s in prange((F.shape[1] + _COLUMNS - 1) // _COLUMNS):
        _columns(F, w, out, s)


@njit(**_JIT)
def column_sums_serial(F, w, out):
    """:func:`column_sums` in one thread."""
    for s in range((F.shape[1] + _COLUMNS - 1) // _COLUMNS):
        _columns(F, w, out, s)


@njit(cache=True, error_model="numpy", fastmath=False)
def _mean_of(sq, n):
    """``sq /= n`` (each in place), then ``sq.sum()`` in NumPy's order."""
    for i in range(sq.shape[0]):
        sq[i] /= n
    return pairwise_sum(sq, 0, sq.shape[0])


@njit(parallel=True, **_JIT)
def output_moments(F, n, out):
    """The mean row of F (m, D) and each row's squared distance to it over ``n``, in one call,
    into ``out`` float64 (D + m,) (allocated by the caller with NumPy: huge pages for large m):
    returns (mean (D,), sq (m,) ``||F_i - mean||^2 / n``, views of out; ``sq.sum()`` in
    NumPy's order), as :func:`column_means` and
    :func:`simulator.kernels.measure_weights.row_sq_distances` give them."""
    m, D = F.shape
    mean, sq = out[:D], out[D : D + m]
    for s in prange((D + _COLUMNS - 1) // _COLUMNS):
        _columns(F, np.empty(0), mean, s)
    for c in prange((m + SQ_ROWS - 1) // SQ_ROWS):
        sq_rows(F, mean, sq, c * SQ_ROWS, min(m, (c + 1) * SQ_ROWS))
    return mean, sq, _mean_of(sq, n)


@njit(**_JIT)
def output_moments_serial(F, n, out):
    """:func:`output_moments` in one thread."""
    m, D = F.shape
    mean, sq = out[:D], out[D : D + m]
    for s in range((D + _COLUMNS - 1) // _COLUMNS):
        _columns(F, np.empty(0), mean, s)
    sq_rows(F, mean, sq, 0, m)
    return mean, sq, _mean_of(sq, n)


def column_means(F: np.ndarray, out: np.ndarray) -> None:
    """out (D,) float64 = mean over the m rows of F (m, D); each column summed in row order."""
    pick(column_sums, column_sums_serial, F.size)(F, np.empty(0), out)


def weighted_column_sums(F: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out (D,) float64 = sum_i w[i] F[i] for F (m, D) and float64 weights w (m,)."""
    pick(column_sums, column_sums_serial, F.size)(F, w, out)


@njit(**_JIT)
def _count_items(dec, counts, lo, hi):
    """counts[b] for items lo..hi-1, reading dec row by row (contiguous)."""
    for b in range(lo, hi):
        for k in range(counts.shape[1]):
            counts[b, k] = 0
    for i in range(dec.shape[0]):
        row = dec[i]
        for b in range(lo, hi):
            counts[b, row[b]] += 1


@njit(parallel=True, **_JIT)
def class_counts_parallel(dec, counts):
    """counts (n, K) int64: counts[b, k] = agents whose decision on item b is k. dec (m, n)."""
    n = dec.shape[1]
    for c in prange((n + 255) // 256):
        _count_items(dec, counts, c * 256, min(n, (c + 1) * 256))


@njit(**_JIT)
def class_counts_serial(dec, counts):
    """:func:`class_counts_parallel` in one thread."""
    _count_items(dec, counts, 0, dec.shape[1])


def class_counts(dec: np.ndarray, counts: np.ndarray) -> None:
    """counts (n, K) int64: counts[b, k] = agents whose decision on item b is k. dec (m, n)."""
    pick(class_counts_parallel, class_counts_serial, dec.size)(dec, counts)


@njit(**_JIT)
def _tally_items(dec, labels, counts, fails, lo, hi):
    """Items lo..hi-1 of :func:`decision_tallies`, reading dec row by row (contiguous)."""
    for b in range(lo, hi):
        for k in range(counts.shape[1]):
            counts[b, k] = 0
    for i in range(dec.shape[0]):
        row = dec[i]
        wrong = fails[i]
        for b in range(lo, hi):
            d = row[b]
            counts[b, d] += 1
            wrong[b] = d != labels[b]


@njit(parallel=True, **_JIT)
def decision_tallies_parallel(dec, labels, counts, fails):
    """:func:`decision_tallies`, parallel over blocks of 256 items."""
    n = dec.shape[1]
    for c in prange((n + 255) // 256):
        _tally_items(dec, labels, counts, fails, c * 256, min(n, (c + 1) * 256))


@njit(**_JIT)
def decision_tallies_serial(dec, labels, counts, fails):
    """:func:`decision_tallies` in one thread."""
    _tally_items(dec, labels, counts, fails, 0, dec.shape[1])


def decision_tallies(
    dec: np.ndarray, labels: np.ndarray, counts: np.ndarray, fails: np.ndarray
) -> None:
    """counts (n, K) int64 as :func:`class_counts`, and fails (m, n) uint8: 1 where agent i's
    decision on item b is not labels[b]. dec int64 (m, n) with values in [0, K); labels int64
    (n,)."""
    pick(decision_tallies_parallel, decision_tallies_serial, dec.size)(dec, labels, counts, fails)


@njit(**_JIT)
def _assign_one(score, perm, r):
    """Optimal assignment of score[r]. When the columns of the rows' maxima are all distinct,
    that choice is optimal (no assignment can beat every row's maximum) and the Hungarian
    algorithm (:func:`simulator.kernels.measure_align.hungarian`) is skipped: the usual case
    for networks already close to aligned."""
    h = score.shape[1]
    row = perm[r]
    taken = np.zeros(h, dtype=np.bool_)
    distinct = True
    for a in range(h):
        best = 0
        for b in range(1, h):
            if score[r, a, b] > score[r, a, best]:
                best = b
        row[a] = best
        if taken[best]:
            distinct = False
            break
        taken[best] = True
    if distinct:
        return
    cost = np.empty((h, h))
    for a in range(h):
        for b in range(h):
            cost[a, b] = -score[r, a, b]
    u = np.empty(h + 1)
    v = np.empty(h + 1)
    minv = np.empty(h + 1)
    pp = np.empty(h + 1, dtype=np.int64)
    way = np.empty(h + 1, dtype=np.int64)
    hungarian(cost, row, u, v, pp, way, minv)


@njit(parallel=True, **_JIT)
def assignments_parallel(score, perm):
    """perm[r] (h,) int64 = the assignment of rows to columns maximizing the summed score[r]
    (h, h) float64, for every r of the batch (m, h, h); each r writes only its own row."""
    for r in prange(score.shape[0]):
        _assign_one(score, perm, r)


@njit(**_JIT)
def assignments_serial(score, perm):
    """:func:`assignments_parallel` in one thread."""
    for r in range(score.shape[0]):
        _assign_one(score, perm, r)


def assignments(score: np.ndarray, perm: np.ndarray) -> None:
    """Maximum-score assignment of each (h, h) matrix of ``score`` (m, h, h) into perm (m, h)."""
    h = score.shape[1]
    pick(assignments_parallel, assignments_serial, score.shape[0] * h**3)(score, perm)


__all__ = [
    "assignments",
    "class_counts",
    "column_means",
    "column_sums",
    "output_moments",
    "output_moments_serial",
    "weighted_column_sums",
]
