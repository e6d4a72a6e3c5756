"""Numba kernel of the mean linear CKA over pairs of agents: one call per measurement.

Linear CKA of two representations ``X_i``, ``X_j`` (n items x h units, each unit centred over
the items) is ``||X_i^T X_j||_F^2 / (||X_i^T X_i||_F ||X_j^T X_j||_F)`` (Kornblith et al.
2019). :func:`mean_cka_pairs` computes the mean over given pairs in one call, in float64
whatever the input's float type:

1. which agents the pairs use (a mark per agent, in one thread: O(P + pairs));
2. per agent (parallel): if a pair uses it, its representation centred in row passes (the
   column means summed row by row, in the order of a plain loop; then subtracted over blocks
   of rows) and stored once as (n, h) float64, and its norm ``||X^T X||_F`` from the upper
   half of the Gram matrix (0 for a representation constant up to rounding: centred sum of
   squares, the Gram matrix's trace, <= ``rtol`` x the raw sum of squares); every agent's
   values checked finite, and the raw sum of squares of every agent a pair uses checked to be
   in :data:`RAW_RANGE` (where its Gram matrix's squares neither overflow nor underflow);
3. per pair (parallel): ``||X_i^T X_j||_F^2`` from one small matrix product held in
   registers (with AVX-512: tiles of 8 units x 16 units, 16 vector accumulators of fused
   multiply-adds over the items, :func:`simulator.kernels.gemm._tile`; else
   :func:`simulator.kernels.gemm.gemm`) and the pair's CKA capped at 1;
4. the mean over pairs, summed in pair order (one thread).

Cost: O((pairs + agents / 2) h^2 n) multiply-adds; for 128 pairs among 64 agents of
(256 items x 16 units) about 11.5 million, near the FMA units' peak.

Every parallel iteration writes only its own slot and every sum has a fixed order, so the
result is bit-identical on any number of threads.

An agent whose values are finite but too large or too small for that range makes the result
+inf: the caller rescales such agents by powers of two (CKA does not change) and calls again.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.gemm import INIT_ZERO, VECTOR_BYTES, _tile, gemm, wide_vectors
from simulator.kernels.measure_weights import pick

_JIT = {"cache": True, "error_model": "numpy"}
_FAST = {**_JIT, "fastmath": {"reassoc"}}  # reassoc only: see measure_function
_BAND = 8  # rows of the Gram matrix per product in the norm (the tile height)
# Agents or pairs per parallel iteration: each piece a thread takes costs ~0.3 us of
# scheduling, a quarter of a pair's product at the usual sizes (measured: 128 pairs among
# 64 agents, one piece per iteration, ~60 us more per call than four).
_GROUP = 4
_ACC = 256  # elements of the row blocks summed at once when centring (at least one row)
# Raw sums of squares s of a representation for which every product of the kernel stays a normal
# float64: its Gram norm squared and the pair terms are at most s^2 (<= 1e300), and a
# representation not constant (centred energy > rtol s) has a Gram norm squared >= (rtol s)^2 / h.
RAW_RANGE = (1e-120, 1e150)
# States of an agent: a value is NaN or inf; all fine; finite but outside RAW_RANGE.
NOT_FINITE, FINITE, OUT_OF_RANGE = 0, 1, 2


@njit(**_JIT)
def agent_slots(n_agents, I, J, slot):
    """slot (n_agents,) int64: position of agent k among the agents some pair uses (in
    increasing agent order), -1 for the others. Returns the number of agents used."""
    slot[:] = -1
    for p in range(I.shape[0]):
        slot[I[p]] = 0
        slot[J[p]] = 0
    used = 0
    for k in range(n_agents):
        if slot[k] == 0:
            slot[k] = used
            used += 1
    return used


# Loops below index slices by their own loop variable: an index computed as ``base + i`` goes
# through Numba's negative-index wraparound, which LLVM vectorizes as gathers and scatters.


@njit(**_FAST)
def _finite(X):
    """Whether every value of X (1-D) is finite (x - x is 0 for finite x, else NaN)."""
    wide_vectors()
    check = 0.0
    for i in range(X.shape[0]):
        check += X[i] - X[i]
    return check == 0.0


@njit(**_JIT)
def _nonzero(X):
    """Whether some value of X (1-D) is not 0."""
    for i in range(X.shape[0]):
        if X[i] != 0.0:
            return True
    return False


@njit(**_FAST)
def _column_means(X, h):
    """Means (h,) float64 of the columns of X (n h,), an (n, h) block row by row.

    Each column is summed over the rows in order (vectorized across columns, which leaves every
    column's order as it is): the means have the bits of a plain loop, so a near-constant
    representation, whose centred values are mostly the rounding of its mean, is centred
    exactly as by the definition's plain loops."""
    n = X.shape[0] // h
    mean = np.zeros(h)
    for t in range(n):
        row = X[t * h : (t + 1) * h]
        for u in range(h):
            mean[u] += row[u]
    for u in range(h):
        mean[u] /= n
    return mean


@njit(**_FAST)
def _center(X, h, out, acc):
    """out (n h,) float64 = X (n h,), an (n, h) block row by row, with its column means
    subtracted from every row. Returns (the sum of the squares of X, the sum of x - x: 0 if X
    is all finite, else NaN). acc (a multiple of h,) float64 is scratch (the means repeated
    over its rows: the loop runs over blocks of rows, long enough to vectorize)."""
    wide_vectors()
    mean = _column_means(X, h)
    rows = acc.shape[0] // h
    for r in range(rows):
        acc[r * h : (r + 1) * h] = mean
    raw = 0.0
    check = 0.0
    size = X.shape[0]
    width = rows * h
    lo = 0
    while lo < size:
        width = min(width, size - lo)  # the last block: the rows left over
        src = X[lo : lo + width]
        dst = out[lo : lo + width]
        for i in range(width):
            x = np.float64(src[i])
            dst[i] = x - acc[i]
            raw += x * x
            check += x - x
        lo += width
    return raw, check


@njit(inline="always", **_FAST)
def _product(G, ldg, Cf, a_off, b_off, h, n, rows, cols):
    """G[r * ldg + j] = sum_t Cf[a_off + t h + r] Cf[b_off + t h + j] for r < rows, j < cols.

    With 64-byte vectors, tiles of 8 rows x 2 vectors (16 accumulators: enough independent
    multiply-adds to keep both FMA units busy), then 8 rows x 1 vector; what is left through
    :func:`simulator.kernels.gemm.gemm` (tiles of 4 rows)."""
    m = 0
    if VECTOR_BYTES == 64:
        while m + 8 <= rows:
            j = 0
            while j + 16 <= cols:
                _tile(G, m * ldg + j, ldg, Cf, a_off + m, 1, h, Cf, b_off + j, h, n,
                      INIT_ZERO, G, 0, 8, 2, 64)  # fmt: skip
                j += 16
            if j + 8 <= cols:
                _tile(G, m * ldg + j, ldg, Cf, a_off + m, 1, h, Cf, b_off + j, h, n,
                      INIT_ZERO, G, 0, 8, 1, 64)  # fmt: skip
                j += 8
            if j < cols:
                gemm(G, m * ldg + j, ldg, Cf, a_off + m, 1, h, Cf, b_off + j, h, 8, cols - j, n,
                     INIT_ZERO, G, 0)  # fmt: skip
            m += 8
    if m < rows:
        gemm(G, m * ldg, ldg, Cf, a_off + m, 1, h, Cf, b_off, h, rows - m, cols, n,
             INIT_ZERO, G, 0)  # fmt: skip


@njit(**_FAST)
def _norm_sq(Cf, base, n, h, G):
    """(||X^T X||_F^2, trace X^T X) for the centred (n, h) X at Cf[base]: the Gram matrix in
    bands of ``_BAND`` rows from the diagonal rightwards, off-diagonal blocks counted twice.
    G (_BAND * h,) float64 is scratch."""
    total = 0.0
    trace = 0.0
    for m in range(0, h, _BAND):
        rows = min(_BAND, h - m)
        width = h - m
        _product(G, width, Cf, base + m, base + m, h, n, rows, width)
        diag = 0.0
        off = 0.0
        for r in range(rows):
            row = G[r * width : (r + 1) * width]
            trace += row[r]
            for j in range(rows):
                diag += row[j] * row[j]
            for j in range(rows, width):
                off += row[j] * row[j]
        total += diag + 2.0 * off
    return total, trace


@njit(**_FAST)
def _cross_sq(Cf, a_off, b_off, n, h, G):
    """||X_a^T X_b||_F^2 for the centred (n, h) X_a at Cf[a_off], X_b at Cf[b_off]; G (h * h,)
    float64 is scratch."""
    _product(G, h, Cf, a_off, b_off, h, n, h, h)
    total = 0.0
    for i in range(h * h):
        total += G[i] * G[i]
    return total


@njit(**_FAST)
def _agent(Hf, n, h, slot, Cf, norms, finite, rtol, k):
    """Agent k: finite[k] = its state (NOT_FINITE, FINITE, or OUT_OF_RANGE for a used agent
    whose raw sum of squares is outside RAW_RANGE, unless all its values are 0); if a pair uses
    it (slot s >= 0), its centred representation at Cf[s n h] and its norm in norms[s] (0 if
    constant: its centred sum of squares, the Gram matrix's trace, <= rtol x its raw sum of
    squares)."""
    s = slot[k]
    size = n * h
    X = Hf[k * size : (k + 1) * size]
    if s < 0:
        finite[k] = FINITE if _finite(X) else NOT_FINITE
        return
    raw, check = _center(X, h, Cf[s * size : (s + 1) * size], np.empty(max(1, _ACC // h) * h))
    finite[k] = FINITE if check == 0.0 else NOT_FINITE
    norms[s] = 0.0
    if finite[k] == NOT_FINITE:
        return
    if not RAW_RANGE[0] <= raw < RAW_RANGE[1]:  # huge or tiny values (or all zero): rare
        if raw > 0.0 or _nonzero(X):  # raw == 0: zero, or squares that all underflowed
            finite[k] = OUT_OF_RANGE
            return
    sq, energy = _norm_sq(Cf, s * size, n, h, np.empty(_BAND * h))
    if energy > rtol * raw:
        norms[s] = np.sqrt(sq)


@njit(**_FAST)
def _pair(Cf, n, h, norms, a, b, ratio, p):
    """ratio[p] = CKA of slots a[p], b[p], capped at 1; -1 when either is constant."""
    den = norms[a[p]] * norms[b[p]]
    if den > 0.0:
        hsic = _cross_sq(Cf, a[p] * n * h, b[p] * n * h, n, h, np.empty(h * h))
        ratio[p] = min(1.0, hsic / den)
    else:
        ratio[p] = -1.0


@njit(**_JIT)
def _prepare(Hs, I, J):
    """(slot of each agent, slot of I, slot of J, centred buffer, norms, finite, ratios)."""
    slot = np.empty(Hs.shape[0], dtype=np.int64)
    used = agent_slots(Hs.shape[0], I, J, slot)
    a = np.empty(I.shape[0], dtype=np.int64)
    b = np.empty(I.shape[0], dtype=np.int64)
    for p in range(I.shape[0]):
        a[p] = slot[I[p]]
        b[p] = slot[J[p]]
    C = np.empty(used * Hs.shape[1] * Hs.shape[2])
    finite = np.empty(Hs.shape[0], dtype=np.int8)
    return slot, a, b, C, np.empty(used), finite, np.empty(I.shape[0])


@njit(**_JIT)
def _mean(ratio, finite):
    """Mean over pairs of the ratios, constant pairs (-1) counted as 0; summed in pair order.
    NaN if any agent has a value that is not finite, else +inf if an agent a pair uses has
    values outside RAW_RANGE."""
    for k in range(finite.shape[0]):
        if finite[k] == NOT_FINITE:
            return np.nan
    for k in range(finite.shape[0]):
        if finite[k] == OUT_OF_RANGE:
            return np.inf
    total = 0.0
    for p in range(ratio.shape[0]):
        if ratio[p] >= 0.0:
            total += ratio[p]
    return total / ratio.shape[0]


@njit(parallel=True, **_JIT)
def mean_cka_parallel(Hs, I, J, rtol):
    """Mean linear CKA over the pairs (I[p], J[p]) of agents of Hs (P, n, h) float32/64:
    agents in parallel, then pairs in parallel, ``_GROUP`` per iteration. Returns a float."""
    slot, a, b, C, norms, finite, ratio = _prepare(Hs, I, J)
    P, n, h = Hs.shape
    Hf = Hs.reshape(P * n * h)
    for g in prange((P + _GROUP - 1) // _GROUP):
        for k in range(g * _GROUP, min(P, (g + 1) * _GROUP)):
            _agent(Hf, n, h, slot, C, norms, finite, rtol, k)
    pairs = I.shape[0]
    for g in prange((pairs + _GROUP - 1) // _GROUP):
        for p in range(g * _GROUP, min(pairs, (g + 1) * _GROUP)):
            _pair(C, n, h, norms, a, b, ratio, p)
    return _mean(ratio, finite)


@njit(**_JIT)
def mean_cka_serial(Hs, I, J, rtol):
    """:func:`mean_cka_parallel` in one thread."""
    slot, a, b, C, norms, finite, ratio = _prepare(Hs, I, J)
    P, n, h = Hs.shape
    Hf = Hs.reshape(P * n * h)
    for k in range(P):
        _agent(Hf, n, h, slot, C, norms, finite, rtol, k)
    for p in range(I.shape[0]):
        _pair(C, n, h, norms, a, b, ratio, p)
    return _mean(ratio, finite)


def mean_cka_pairs(Hs: np.ndarray, I: np.ndarray, J: np.ndarray, rtol: float) -> float:
    """Mean over pairs p of the linear CKA of agents ``I[p]``, ``J[p]``.

    Parameters
    ----------
    Hs : float32 or float64, shape (P, n, h), C-contiguous: each agent's representation of
        the same n items. Not modified.
    I, J : int64, shape (pairs,), values in [0, P): the pairs.
    rtol : float
        A representation whose centred sum of squares is <= ``rtol`` x its raw sum of squares
        is constant: its pairs count as CKA 0.

    Returns
    -------
    float: sum over pairs of ``min(1, CKA)`` divided by the number of pairs; NaN if a value of
    Hs is not finite; +inf if an agent a pair uses has finite values whose raw sum of squares
    is outside :data:`RAW_RANGE` (rescale it by a power of two and call again).
    """
    n, h = Hs.shape[1], Hs.shape[2]
    work = (I.size + Hs.shape[0] // 2) * h * h * n
    return pick(mean_cka_parallel, mean_cka_serial, work // 8)(Hs, I, J, float(rtol))


__all__ = ["RAW_RANGE", "agent_slots", "mean_cka_pairs", "mean_cka_parallel", "mean_cka_serial"]
