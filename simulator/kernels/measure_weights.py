"""Numba kernels for the weight-space measures: one pass over ``params`` per quantity.

Arrays and scalars in, arrays filled in place. Every parallel loop writes only its own slot
(a block of rows, or one row); the caller reduces the slots afterwards in a fixed order, so the
results are bit-identical on any number of threads. Accumulation is in float64.

Each kernel comes as a parallel driver and a ``*_serial`` twin running the same per-slot code
in one thread: the serial one is for small inputs, where starting threads costs more than the
work (several milliseconds per call on a loaded machine). Both give identical results.

* :func:`block_sums`: per block of ``BLOCK_ROWS`` rows, the sum of the rows, the sum of the unit
  vectors ``p / ||p||`` (zero rows skipped) and the count of non-zero rows: the centroid and the
  exact mean pairwise cosine (``sum_{i != j} u_i . u_j = ||sum u||^2 - sum ||u||^2``). A row
  whose squared norm is not a normal float64 (0, or subnormal or inf: tiny or huge but finite
  values) marks its block; :func:`units_again` then adds such rows' unit vectors, from ``p``
  scaled by a power of two near ``1 / max |p|`` (:func:`_rescaled_unit`): every finite row gets
  its exact unit vector. Blocks of normal and zero rows keep the sums of the hot loops, bit for
  bit; the hot loops only note the marks.
* :func:`row_sq_distances`: ``||p_i - c||^2`` for every row (consensus distance, the row nearest
  the centroid).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from simulator.kernels.numpy_sum import pairwise_sum
from simulator.kernels.sized import sized

# Rows per block of the parallel column sums: a block's rows stay in cache while it is summed,
# and the number of blocks (the partial sums) depends on P only, never on the thread count.
BLOCK_ROWS = 256
# Below this many array elements touched (~0.1 ms of streaming), a kernel runs in its serial twin:
# no parallel region at all. Above it the parallel kernel runs on as many threads as the thread
# chooser (simulator.kernels.threads.CHOOSER) measured faster for calls of its kind and size: on
# a machine whose cores are busy with other work a parallel region waits for its slowest thread
# (measured on 2 shared cores at load 2-7 with OpenMP and every pass parallel: 10k agents'
# measures took 31-42 ms, 14-17 ms serial), so there it settles on one thread; on an idle machine
# on two (10k agents: the standard measures 10-20% faster than serial). Either way the same
# machine code runs, so results do not depend on the choice.
SERIAL_BELOW = 1 << 18
FLOPS_PER_ELEMENT = 4.0  # a rough cost of one element touched, for the thread chooser's sizing
SQ_ROWS = 64  # rows per parallel slot of row_sq_distances
_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract"}}
TINY = float(np.finfo(np.float64).tiny)  # the smallest normal float64, ~2.2e-308
# marks of a block of rows (block_sums): a row's squared norm was 0 / subnormal or inf
ZERO, ODD = 1, 2


# What a row costs beside its elements (its norm's square root and division, its distance's
# store, the extremes), in elements' time: measured in one thread at 100,000 rows, D = 1 to
# 16, ~6.5 ns a row and ~0.33 ns an element. Counting elements alone kept polarization's
# 100,000 rows of 2 numbers (0.7 ms) in the serial twin.
ROW_ELEMENTS = 20


def row_work(n_rows: int, n_cols: int) -> int:
    """Work of a pass over n_rows rows of n_cols numbers, in elements (for :func:`pick`)."""
    return n_rows * (n_cols + ROW_ELEMENTS)


def pick(parallel, serial, work: int):
    """The serial twin of a kernel for small work (elements touched); else the parallel kernel,
    sized by the thread chooser (see :data:`SERIAL_BELOW`). Returns a callable taking the
    kernel's arguments."""
    return sized(
        parallel, serial, float(work) * FLOPS_PER_ELEMENT, SERIAL_BELOW * FLOPS_PER_ELEMENT
    )


@njit(inline="always")
def _inverse_norm(sq):
    """1 / sqrt(sq) for a row's squared norm, 0 for a zero row (it adds nothing to the units)."""
    return 1.0 / np.sqrt(sq) if sq > 0.0 else 0.0


@njit(inline="always")
def _positive(sq):
    """A row's squared norm, or +inf for a zero row (the least positive one is kept)."""
    return sq if sq > 0.0 else np.inf


@njit(inline="always")
def _mark(least, most, nonzero, rows):
    """A block's mark from its least positive and its largest squared norm and its counts:
    ``ODD`` if a squared norm was subnormal (tiny values) or inf (huge values), else ``ZERO``
    if a row was 0, else 0. (A NaN row is not marked: it makes the block's sums NaN, which
    the caller refuses.)"""
    if least < TINY or most == np.inf:
        return ODD
    return ZERO if nonzero < rows else 0


@njit(**_JIT)
def _rescaled_unit(row, u):
    """Add to ``u`` the unit vector of a finite non-zero row: ``(p / 2^e) / ||p / 2^e||`` with
    ``2^e > max |p| >= 2^(e - 1)``, exact whatever the row's scale. A row with an inf or NaN
    adds nothing here (its row sums are not finite, which the caller sees).

    The scaling is ``math.ldexp``: exact, and opaque to the caller's fast-math flags, which
    Numba applies to the callees it compiles with it (``(p / m) * w`` became ``(p * w) / m``,
    0 for a subnormal ``p``)."""
    D = row.shape[0]
    m = 0.0
    for t in range(D):
        a = abs(np.float64(row[t]))
        if a > m:
            m = a
    if not 0.0 < m < np.inf:
        return
    e = -math.frexp(m)[1]
    q = 0.0
    for t in range(D):
        v = math.ldexp(np.float64(row[t]), e)
        q += v * v
    w = 1.0 / np.sqrt(q)  # q in [1/4, D]
    for t in range(D):
        u[t] += math.ldexp(np.float64(row[t]), e) * w


@njit(**_JIT)
def _block(params, sums, units, nonzero, marks, b):
    """Block b of :func:`block_sums`: four rows per pass over the block's sums (one load and
    store of each partial sum per four rows), then the rest one by one. marks[b]: ``ZERO`` if
    a row's squared norm was 0, ``ODD`` if one was subnormal or inf, else 0 (the hot loops
    only note it; :func:`units_again` does the rest)."""
    P, D = params.shape
    s = sums[b]
    u = units[b]
    s[:] = 0.0
    u[:] = 0.0
    count = 0
    least, most = np.inf, 0.0  # the least positive and the largest squared norm of a row
    i, hi = b * BLOCK_ROWS, min(P, (b + 1) * BLOCK_ROWS)
    rows = hi - i
    while i + 4 <= hi:
        r0, r1, r2, r3 = params[i], params[i + 1], params[i + 2], params[i + 3]
        q0 = q1 = q2 = q3 = 0.0
        for t in range(D):
            v0, v1 = np.float64(r0[t]), np.float64(r1[t])
            v2, v3 = np.float64(r2[t]), np.float64(r3[t])
            s[t] += (v0 + v1) + (v2 + v3)
            q0 += v0 * v0
            q1 += v1 * v1
            q2 += v2 * v2
            q3 += v3 * v3
        count += (q0 > 0.0) + (q1 > 0.0) + (q2 > 0.0) + (q3 > 0.0)
        w0, w1, w2, w3 = _inverse_norm(q0), _inverse_norm(q1), _inverse_norm(q2), _inverse_norm(q3)
        for t in range(D):
            a = np.float64(r0[t]) * w0 + np.float64(r1[t]) * w1
            u[t] += a + (np.float64(r2[t]) * w2 + np.float64(r3[t]) * w3)
        least = min(least, _positive(q0), _positive(q1), _positive(q2), _positive(q3))
        most = max(most, q0, q1, q2, q3)
        i += 4
    while i < hi:
        row = params[i]
        sq = 0.0
        for t in range(D):
            v = np.float64(row[t])
            s[t] += v
            sq += v * v
        count += sq > 0.0
        w = _inverse_norm(sq)
        for t in range(D):
            u[t] += np.float64(row[t]) * w
        least = min(least, _positive(sq))
        most = max(most, sq)
        i += 1
    nonzero[b] = count
    marks[b] = _mark(least, most, count, rows)


@njit(**_JIT)
def units_again(params, units, nonzero, marks):
    """The unit vectors of the blocks :func:`block_sums` marked, and their counts of non-zero
    rows (a rare path, in one thread):

    * ``ODD`` (a row whose squared norm is subnormal, inf or NaN): units[b] and nonzero[b]
      computed again, each row's squared norm summed once and used for both; such a row's unit
      from :func:`_rescaled_unit`.
    * ``ZERO`` (a row whose squared norm is 0): a zero row adds nothing, as before; a row of
      values so tiny that every square is 0 (every ``|p| < ~1.5e-162``) adds its unit from
      :func:`_rescaled_unit` and counts. The other rows' sums are left as they are.
    """
    P = params.shape[0]
    for b in range(units.shape[0]):
        lo, hi = b * BLOCK_ROWS, min(P, (b + 1) * BLOCK_ROWS)
        u = units[b]
        if marks[b] == ODD:
            u[:] = 0.0
            nonzero[b] = 0
        for i in range(lo, hi if marks[b] else lo):
            row = params[i]
            sq = size = 0.0
            for t in range(row.shape[0]):
                v = np.float64(row[t])
                sq += v * v
                size += abs(v)
            if marks[b] == ODD and sq >= TINY and sq < np.inf:
                w = 1.0 / np.sqrt(sq)
                for t in range(row.shape[0]):
                    u[t] += np.float64(row[t]) * w
                nonzero[b] += 1
            elif size > 0.0 and (marks[b] == ODD or sq == 0.0):  # subnormal, inf, or all tiny
                _rescaled_unit(row, u)
                nonzero[b] += 1


@njit(parallel=True, **_JIT)
def block_sums(params, sums, units, nonzero, marks):
    """Fill the per-block partial sums of ``params`` (float32/64, (P, D)).

    sums, units : float64 (n_blocks, D) with ``n_blocks = ceil(P / BLOCK_ROWS)``: block b's sum of
    rows and sum of unit rows. nonzero : int64 (n_blocks,): rows with a non-zero norm.
    marks : int8 (n_blocks,): ``ZERO`` or ``ODD`` for a block to pass to :func:`units_again`
    (a zero, tiny or huge row in it), else 0.
    """
    for b in prange(sums.shape[0]):
        _block(params, sums, units, nonzero, marks, b)


@njit(**_JIT)
def block_sums_serial(params, sums, units, nonzero, marks):
    """:func:`block_sums` in one thread."""
    for b in range(sums.shape[0]):
        _block(params, sums, units, nonzero, marks, b)


@njit(**_JIT)
def sq_rows(params, center, out, lo, hi):
    """out[i] = ||params[i] - center||^2 (float64) for rows lo..hi-1: a slot of SQ_ROWS rows of
    :func:`row_sq_distances`."""
    D = params.shape[1]
    for i in range(lo, hi):
        row = params[i]
        acc = 0.0
        for t in range(D):
            d = np.float64(row[t]) - center[t]
            acc += d * d
        out[i] = acc


@njit(parallel=True, **_JIT)
def row_sq_distances(params, center, out):
    """out[i] = ||params[i] - center||^2 in float64. params (P, D); center float64 (D,)."""
    P = params.shape[0]
    for c in prange((P + SQ_ROWS - 1) // SQ_ROWS):
        sq_rows(params, center, out, c * SQ_ROWS, min(P, (c + 1) * SQ_ROWS))


@njit(**_JIT)
def row_sq_distances_serial(params, center, out):
    """:func:`row_sq_distances` in one thread."""
    sq_rows(params, center, out, 0, params.shape[0])


# fastmath=False said, not left unset: the reductions below keep NumPy's order of additions
@njit(cache=True, error_model="numpy", fastmath=False)
def _reduce_blocks(params, sums, units, nonzero, marks, centroid, u):
    """After :func:`block_sums`: the marked blocks' units again (:func:`units_again`), then
    ``centroid = sums.sum(axis=0) / P`` and ``u = units.sum(axis=0)`` added in NumPy's order
    (row after row, from the first row), bit for bit. Returns the count of non-zero rows."""
    nb, D = sums.shape
    for b in range(nb):
        if marks[b]:
            units_again(params, units, nonzero, marks)
            break
    for t in range(D):
        centroid[t] = sums[0, t]
        u[t] = units[0, t]
    for b in range(1, nb):
        for t in range(D):
            centroid[t] += sums[b, t]
            u[t] += units[b, t]
    P = params.shape[0]
    for t in range(D):
        centroid[t] /= P
    return nonzero.sum()


@njit(inline="always")
def _sq_slot(params, centroid, sq, slot_min, slot_max, c):
    """Slot c of SQ_ROWS rows: their squared distances to the centroid (:func:`sq_rows`), then,
    while they are in cache, the slot's first row of the least and its largest."""
    lo, hi = c * SQ_ROWS, min(params.shape[0], (c + 1) * SQ_ROWS)
    sq_rows(params, centroid, sq, lo, hi)
    best, least, most = lo, sq[lo], sq[lo]
    for i in range(lo + 1, hi):
        v = sq[i]
        if v < least:
            best, least = i, v
        most = max(most, v)
    slot_min[c] = best
    slot_max[c] = most


@njit(cache=True, error_model="numpy", fastmath=False)
def _sq_extremes(sq, slot_min, slot_max, centroid):
    """(``sq.sum()`` in NumPy's order, ``argmin(sq)`` (the first), ``max(sq)``,
    ``max |centroid|``) of finite values, from the slots' own (:func:`_sq_slot`)."""
    nearest, far = slot_min[0], slot_max[0]
    for c in range(1, slot_min.shape[0]):
        if sq[slot_min[c]] < sq[nearest]:
            nearest = slot_min[c]
        far = max(far, slot_max[c])
    top = 0.0
    for t in range(centroid.shape[0]):
        top = max(top, abs(centroid[t]))
    return pairwise_sum(sq, 0, sq.shape[0]), nearest, far, top


@njit(inline="always")
def _moments_arrays(params, scratch, out):
    """The arrays of :func:`weight_moments` as views of its buffers: block sums and unit sums
    (n_blocks, D) in scratch, centroid (D,), u (D,) and sq (P,) in out; the counts and marks
    (n_blocks,) allocated here (small)."""
    P, D = params.shape
    nb = (P + BLOCK_ROWS - 1) // BLOCK_ROWS
    sums = scratch[: nb * D].reshape((nb, D))
    units = scratch[nb * D : 2 * nb * D].reshape((nb, D))
    nonzero, marks = np.empty(nb, dtype=np.int64), np.empty(nb, dtype=np.int8)
    return sums, units, nonzero, marks, out[:D], out[D : 2 * D], out[2 * D : 2 * D + P]


def moments_buffers(P: int, D: int) -> tuple[np.ndarray, np.ndarray]:
    """(scratch, out) float64 buffers for :func:`weight_moments` of P rows of D numbers,
    allocated by NumPy (whose large buffers come in huge pages: the kernel's own allocations
    took a page fault per 4 KiB, +3-5 ms a call at 1,000,000 agents)."""
    return np.empty(2 * n_blocks(P) * D), np.empty(2 * D + P)


@njit(parallel=True, **_JIT)
def weight_moments(params, scratch, out):
    """:func:`block_sums`, :func:`_reduce_blocks` and :func:`row_sq_distances` to the centroid
    in one call, for params (P, D) float32/64, with the buffers of :func:`moments_buffers`.
    Returns (centroid (D,), u (D,): the sum of the unit rows, sq (P,): ``||p_i - centroid||^2``,
    all float64 views of ``out``; the count of non-zero rows; then
    :func:`_sq_extremes`: ``sq.sum()`` in NumPy's order, the first row of the least sq, the
    largest sq, ``max |centroid|``; these three only meaningful for a finite sum)."""
    sums, units, nonzero, marks, centroid, u, sq = _moments_arrays(params, scratch, out)
    for b in prange(sums.shape[0]):
        _block(params, sums, units, nonzero, marks, b)
    nonzero_rows = _reduce_blocks(params, sums, units, nonzero, marks, centroid, u)
    n_slots = (params.shape[0] + SQ_ROWS - 1) // SQ_ROWS
    slot_min, slot_max = np.empty(n_slots, dtype=np.int64), np.empty(n_slots)
    for c in prange(n_slots):
        _sq_slot(params, centroid, sq, slot_min, slot_max, c)
    return centroid, u, sq, nonzero_rows, _sq_extremes(sq, slot_min, slot_max, centroid)


@njit(**_JIT)
def weight_moments_serial(params, scratch, out):
    """:func:`weight_moments` in one thread."""
    sums, units, nonzero, marks, centroid, u, sq = _moments_arrays(params, scratch, out)
    for b in range(sums.shape[0]):
        _block(params, sums, units, nonzero, marks, b)
    nonzero_rows = _reduce_blocks(params, sums, units, nonzero, marks, centroid, u)
    n_slots = (params.shape[0] + SQ_ROWS - 1) // SQ_ROWS
    slot_min, slot_max = np.empty(n_slots, dtype=np.int64), np.empty(n_slots)
    for c in range(n_slots):
        _sq_slot(params, centroid, sq, slot_min, slot_max, c)
    return centroid, u, sq, nonzero_rows, _sq_extremes(sq, slot_min, slot_max, centroid)


def sq_distances(params: np.ndarray, center: np.ndarray, out: np.ndarray) -> None:
    """:func:`row_sq_distances`, serial for small inputs."""
    pick(row_sq_distances, row_sq_distances_serial, params.size)(params, center, out)


def n_blocks(n_rows: int) -> int:
    """Number of row blocks :func:`block_sums` uses for ``n_rows`` rows."""
    return (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS


__all__ = [
    "BLOCK_ROWS",
    "ODD",
    "ROW_ELEMENTS",
    "SERIAL_BELOW",
    "SQ_ROWS",
    "TINY",
    "ZERO",
    "block_sums",
    "block_sums_serial",
    "moments_buffers",
    "n_blocks",
    "pick",
    "row_sq_distances",
    "row_sq_distances_serial",
    "row_work",
    "sq_distances",
    "sq_rows",
    "units_again",
    "weight_moments",
    "weight_moments_serial",
]
