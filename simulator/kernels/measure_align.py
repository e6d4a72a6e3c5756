"""Weight matching of networks with one hidden layer, fused in one kernel (aligned_distance).

:func:`align_consensus` aligns a set of parameter rows to a reference row, then (``refine``
times) to the mean of the aligned rows, and returns the consensus distance of the result: the
whole of ``simulator.metrics.aligned_consensus_distance`` for one hidden layer, in one call.
Per row, in one parallel iteration that writes only that row of the output:

* the similarity ``S = W1_ref^T W1 + b1_ref b1^T + W2_ref W2^T`` (h, h) of the reference's
  hidden units (rows) and the row's units (columns), in float64;
* the assignment of units maximizing the summed ``S`` (``|S|`` for odd activations, whose units
  may also be negated: each matched unit then takes the sign of its ``S``), by
  :func:`hungarian` (exact);
* the permuted (and sign-flipped) row, kept only if it is not farther from the reference than
  the row it came from (the check of :func:`simulator.metrics.align.align_rows`).

The means and the consensus distance are summed in row order, in one thread: results do not
depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.threads import parallel_begin, parallel_end

_JIT = {"cache": True, "error_model": "numpy"}
# A start taken from old potentials is used when each row's best column beats its second by
# this share of the largest |cost|: far above the rounding of any solver's sums (~1e-15).
_MARGIN = 1e-9

__all__ = ["align_consensus", "hungarian"]


@njit(**_JIT)
def hungarian(cost, perm, u, v, p, way, minv, used):
    """Minimum-cost perfect matching of the square ``cost`` (h, h) float64; perm[r] = the
    column matched to row r.

    Shortest augmenting paths with potentials (the O(h^3) Hungarian method), started from a
    feasible dual solution and a partial matching: with column potentials 0, each row's
    potential is its minimum cost and each row takes its cheapest column (lowest index on ties)
    when no earlier row took it. Rows left unmatched are added by augmenting paths. When every
    row's cheapest column is its own, that start is already optimal (no assignment costs less
    than every row's minimum) and no path is searched. Scratch: u, v, minv float64 (h + 1,);
    p, way int64 (h + 1,); used bool (h + 1,).
    """
    h = cost.shape[0]
    for j in range(h + 1):
        p[j] = 0
        v[j] = 0.0
    u[0] = 0.0
    for r in range(1, h + 1):
        best = np.inf
        col = 1
        for j in range(1, h + 1):
            c = cost[r - 1, j - 1]
            if c < best:
                best = c
                col = j
        u[r] = best
        if p[col] == 0:
            p[col] = r
    matched = np.zeros(h + 1, dtype=np.bool_)
    for j in range(1, h + 1):
        if p[j] > 0:
            matched[p[j]] = True
    for r in range(1, h + 1):
        if not matched[r]:
            _augment(cost, r, u, v, p, way, minv, used)
    for j in range(1, h + 1):
        perm[p[j] - 1] = j - 1


@njit(**_JIT)
def _augment(cost, r, u, v, p, way, minv, used):
    """Add row r (1-based) to the matching by a shortest augmenting path; potentials stay
    feasible (u_i + v_j <= cost) and tight on matched pairs."""
    h = cost.shape[0]
    p[0] = r
    j0 = 0
    for j in range(h + 1):
        minv[j] = np.inf
        used[j] = False
    while True:
        used[j0] = True
        i0 = p[j0]
        delta = np.inf
        j1 = 0
        for j in range(1, h + 1):
            if not used[j]:
                cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                if cur < minv[j]:
                    minv[j] = cur
                    way[j] = j0
                if minv[j] < delta:
                    delta = minv[j]
                    j1 = j
        for j in range(h + 1):
            if used[j]:
                u[p[j]] += delta
                v[j] -= delta
            else:
                minv[j] -= delta
        j0 = j1
        if p[j0] == 0:
            break
    while j0 != 0:
        j1 = way[j0]
        p[j0] = p[j1]
        j0 = j1


@njit(**_JIT)
def _similarity(src, ref, lay, S):
    """S[a, b] (h, h) float64 between unit a of ``ref`` and unit b of ``src`` (see module)."""
    w1, b1, w2, d_in, h, d_out = lay[0], lay[1], lay[2], lay[4], lay[5], lay[6]
    for a in range(h):
        for b in range(h):
            S[a, b] = 0.0
    for i in range(d_in):
        base = w1 + i * h
        for a in range(h):
            ra = ref[base + a]
            for b in range(h):
                S[a, b] += ra * src[base + b]
    if b1 >= 0:
        for a in range(h):
            for b in range(h):
                S[a, b] += ref[b1 + a] * src[b1 + b]
    for a in range(h):
        for b in range(h):
            acc = 0.0
            for k in range(d_out):
                acc += ref[w2 + a * d_out + k] * src[w2 + b * d_out + k]
            S[a, b] += acc


@njit(**_JIT)
def _certified(cost, warm, perm):
    """True if the columns minimizing ``cost[r, j] - warm[j]`` are distinct over the rows and
    each row's minimum beats every other column of the row by a margin: then that assignment
    (written to perm) is the unique optimum, whatever the rounding of any solver (with the row
    minima and ``warm`` as dual potentials, every other assignment costs at least the margin
    more, ``_MARGIN`` times the largest |cost| and |warm|). ``warm`` (h,) holds column
    potentials, e.g. a similar problem's."""
    h = cost.shape[0]
    scale = 0.0
    for a in range(h):
        for b in range(h):
            scale = max(scale, abs(cost[a, b]))
    top = 0.0
    for b in range(h):
        top = max(top, abs(warm[b]))
    margin = _MARGIN * (scale + top)
    taken = np.zeros(h, dtype=np.bool_)
    for a in range(h):
        best, second, col = np.inf, np.inf, 0
        for b in range(h):
            c = cost[a, b] - warm[b]
            if c < best:
                second = best
                best = c
                col = b
            elif c < second:
                second = c
        if taken[col] or not second - best > margin:
            return False
        taken[col] = True
        perm[a] = col
    return True


@njit(**_JIT)
def _align_row(src, ref, lay, odd, warm, dst):
    """dst (n_params,) float64 = src (float64, n_params) with its hidden units permuted (and
    sign-flipped when ``odd``) to match ``ref``; src itself if that is not closer to ref.
    warm (h,) float64: column potentials of this row's last problem (a start that changes only
    the time taken), updated."""
    h, d_in, d_out = lay[5], lay[4], lay[6]
    w1, b1, w2 = lay[0], lay[1], lay[2]
    S = np.empty((h, h))
    _similarity(src, ref, lay, S)
    cost = np.empty((h, h))
    for a in range(h):
        for b in range(h):
            cost[a, b] = -abs(S[a, b]) if odd else -S[a, b]
    perm = np.empty(h, dtype=np.int64)
    if not _certified(cost, warm, perm):
        u, v, minv = np.empty(h + 1), np.empty(h + 1), np.empty(h + 1)
        pp, way = np.empty(h + 1, dtype=np.int64), np.empty(h + 1, dtype=np.int64)
        used = np.empty(h + 1, dtype=np.bool_)
        hungarian(cost, perm, u, v, pp, way, minv, used)
        for b in range(h):
            warm[b] = v[b + 1]
    n = src.shape[0]
    for t in range(n):
        dst[t] = src[t]
    for a in range(h):
        b = perm[a]
        s = -1.0 if odd and S[a, b] < 0 else 1.0
        for i in range(d_in):
            dst[w1 + i * h + a] = src[w1 + i * h + b] * s
        if b1 >= 0:
            dst[b1 + a] = src[b1 + b] * s
        for k in range(d_out):
            dst[w2 + a * d_out + k] = src[w2 + b * d_out + k] * s
    new = 0.0
    old = 0.0
    for t in range(n):
        new += dst[t] * ref[t]
        old += src[t] * ref[t]
    if new < old:
        for t in range(n):
            dst[t] = src[t]


@njit(**_JIT)
def _mean_row(rows, out):
    """out (D,) = mean of rows (m, D) float64, summed in row order."""
    m, D = rows.shape
    for t in range(D):
        out[t] = 0.0
    for r in range(m):
        for t in range(D):
            out[t] += rows[r, t]
    for t in range(D):
        out[t] /= m


@njit(parallel=True, **_JIT)
def _align_consensus(params, who, ref, lay, odd, refine, warm, out):
    m, D = out.shape
    for r in prange(m):
        src = np.empty(D)
        row = params[who[r]]
        for t in range(D):
            src[t] = row[t]
        _align_row(src, ref, lay, odd, warm[0, r], out[r])
    center = np.empty(D)
    for k in range(refine):
        _mean_row(out, center)
        for r in prange(m):
            src = out[r].copy()
            _align_row(src, center, lay, odd, warm[k + 1, r], out[r])
    _mean_row(out, center)
    total = 0.0
    for r in range(m):
        acc = 0.0
        for t in range(D):
            d = out[r, t] - center[t]
            acc += d * d
        total += acc
    return total / m


def align_consensus(
    params: np.ndarray,
    who: np.ndarray,
    ref: np.ndarray,
    lay: np.ndarray,
    odd: bool,
    refine: int,
    out: np.ndarray,
    warm: np.ndarray | None = None,
) -> float:
    """Align rows ``params[who]`` to ``ref``, then ``refine`` times to their mean; return the
    mean squared distance of the aligned rows to their mean (float64).

    Parameters
    ----------
    params : float (P, n_params), read only. who : int64 (m,) rows to align.
    ref : float64 (n_params,), the reference row.
    lay : int64 (7,): offsets of W1, b1 (-1: no biases), W2, b2 in a row, then d_in, h, d_out.
    odd : bool, the hidden activation is odd (units may be negated).
    refine : int >= 0. out : float64 (m, n_params), filled with the aligned rows.
    warm : float64 (refine + 1, m, h), optional: column potentials of the last call's
        assignments (zeros at first), updated. They only speed up later calls on similar rows:
        an assignment taken from them is used only when it is provably the unique optimum
        (see :func:`_certified`), which the solver would find too.
    """
    if warm is None:
        warm = np.zeros((refine + 1, who.shape[0], int(lay[5])))
    h = int(lay[5])
    work = h * h * (int(lay[4]) + int(lay[6]) + 2 + 4 * h) + 4 * out.shape[1]
    call = parallel_begin("align_consensus", who.shape[0] * (1 + refine), work)
    try:
        return float(_align_consensus(params, who, ref, lay, odd, refine, warm, out))
    finally:
        parallel_end(call)
