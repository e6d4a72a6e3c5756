"""Weight matching of networks with one hidden layer, fused in one kernel (aligned_distance).

:func:`align_consensus` aligns a set of parameter rows to a reference row, then (``refine``
times) to the mean of the aligned rows, and returns the consensus distance of the result: the
whole of ``simulator.metrics.aligned_consensus_distance`` for one hidden layer, in one call.
Per row, in one parallel iteration that writes only that row of the output:

* the similarity ``S = W1_ref^T W1 + b1_ref b1^T + W2_ref W2^T`` (h, h) of the reference's
  hidden units (rows) and the row's units (columns), in float64, over 2-D views of the rows
  (loops from index 0 over contiguous units: they vectorize);
* the assignment of units maximizing the summed ``S`` (``|S|`` for odd activations, whose units
  may also be negated: each matched unit then takes the sign of its ``S``), by
  :func:`hungarian` (exact; each step of a path updates all columns in one vectorized pass of
  selects and takes their least by a vectorized minimum, with the textbook arithmetic and tie
  rule);
* the permuted (and sign-flipped) row, kept only if it is not farther from the reference than
  the row it came from (the check of :func:`simulator.metrics.align.align_rows`).

Each row has its own scratch (allocated once per call). The means and the consensus distance
are summed in row order, in one thread; a serial twin runs the same per-row code for calls too
small to pay for a second thread: results do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.sized import sized

_JIT = {"cache": True, "error_model": "numpy"}
_LEAST_JIT = {**_JIT, "fastmath": {"nnan", "nsz"}}
# A start taken from old potentials is used when each row's best column beats its second by
# this share of the largest |cost|: far above the rounding of any solver's sums (~1e-15).
_MARGIN = 1e-9

__all__ = ["align_consensus", "align_work", "hungarian"]


@njit(**_JIT)
def hungarian(cost, perm, u, v, p, way, minv):
    """Minimum-cost perfect matching of the square ``cost`` (h, h) float64; perm[r] = the
    column matched to row r.

    Shortest augmenting paths with potentials (the O(h^3) Hungarian method), started from a
    feasible dual solution and a partial matching: with column potentials 0, each row's
    potential is its minimum cost and each row takes its cheapest column (lowest index on ties)
    when no earlier row took it. Rows left unmatched are added by augmenting paths. When every
    row's cheapest column is its own, that start is already optimal (no assignment costs less
    than every row's minimum) and no path is searched. Scratch: u, v, minv float64 (h + 1,);
    p, way int64 (h + 1,).
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
    tree = np.empty(h + 1, dtype=np.int64)
    reached = np.empty(h + 1)
    for r in range(1, h + 1):
        if not matched[r]:
            _augment(cost, r, u, v, p, way, minv, reached, tree)
    for j in range(1, h + 1):
        perm[p[j] - 1] = j - 1


@njit(**_LEAST_JIT)
def _least(minv, reached, h):
    """min over columns j = 1..h of ``minv[j] + reached[j]`` (reached: 0 or +inf): the least
    ``minv`` of the columns not reached yet, as one vectorized reduction. The values are
    finite or +inf, never NaN (no-NaN flags let the minimum vectorize; min is exact, so any
    order gives the same value)."""
    delta = np.inf
    for j in range(1, h + 1):
        delta = min(delta, minv[j] + reached[j])
    return delta


@njit(**_JIT)
def _augment(cost, r, u, v, p, way, minv, reached, tree):
    """Add row r (1-based) to the matching by a shortest augmenting path; potentials stay
    feasible (u_i + v_j <= cost) and tight on matched pairs. reached (h + 1,) float64: scratch
    (0 for a column not reached yet, +inf once reached); tree (>= h + 1,) int64: scratch (the
    columns reached, in order).

    Each step updates every column at once with selects (a vectorized pass; reached columns
    keep their values), takes the least ``minv`` of the columns not reached by a vectorized
    minimum and the lowest such column (the textbook tie rule), and shifts the potentials by
    a select too (subtracting 0.0 leaves a value unchanged): the textbook arithmetic, so the
    same matchings and potentials, bit for bit.
    """
    h = cost.shape[0]
    p[0] = r
    j0 = 0
    n_tree = 0
    for j in range(h + 1):
        minv[j] = np.inf
        reached[j] = 0.0
    while True:
        reached[j0] = np.inf
        tree[n_tree] = j0
        n_tree += 1
        i0 = p[j0]
        crow = cost[i0 - 1]
        ui = u[i0]
        for j in range(1, h + 1):
            cur = crow[j - 1] - ui - v[j]
            mj = minv[j]
            take = (cur < mj) & (reached[j] == 0.0)
            minv[j] = cur if take else mj
            way[j] = j0 if take else way[j]
        delta = _least(minv, reached, h)
        j1 = 1
        while j1 < h and (reached[j1] != 0.0 or minv[j1] != delta):
            j1 += 1
        for q in range(n_tree):  # distinct columns, and distinct rows p[j]: any order
            u[p[tree[q]]] += delta
        for j in range(h + 1):
            done = reached[j] != 0.0
            v[j] = v[j] - (delta if done else 0.0)
            minv[j] = minv[j] - (0.0 if done else delta)
        j0 = j1
        if p[j0] == 0:
            break
    while j0 != 0:
        j1 = way[j0]
        p[j0] = p[j1]
        j0 = j1


@njit(**_JIT)
def _units(row, lay):
    """Views of a row's W1 (d_in, h), b1 (h,) (empty without biases) and W2 (h, d_out)."""
    w1, b1, w2, d_in, h, d_out = lay[0], lay[1], lay[2], lay[4], lay[5], lay[6]
    W1 = row[w1 : w1 + d_in * h].reshape((d_in, h))
    B1 = row[b1 : b1 + h] if b1 >= 0 else row[:0]
    W2 = row[w2 : w2 + h * d_out].reshape((h, d_out))
    return W1, B1, W2


@njit(**_JIT)
def _similarity(src, ref, lay, S, T):
    """S[a, b] (h, h) float64 between unit a of ``ref`` and unit b of ``src`` (see module),
    summed term by term in a fixed order: over W1's inputs, then the biases, then W2's outputs
    (summed apart first). Loops run over 2-D views from index 0 (no negative-index checks:
    the inner loops over b vectorize). T (d_out, h): scratch."""
    Wr, Br, Vr = _units(ref, lay)
    Ws, Bs, Vs = _units(src, lay)
    d_in, h = Wr.shape
    d_out = Vr.shape[1]
    for a in range(h):
        Sa = S[a]
        for b in range(h):
            Sa[b] = 0.0
        for i in range(d_in):
            ra = Wr[i, a]
            Wi = Ws[i]
            for b in range(h):
                Sa[b] += ra * Wi[b]
        if Br.shape[0] > 0:
            ra = Br[a]
            for b in range(h):
                Sa[b] += ra * Bs[b]
    for k in range(d_out):
        for b in range(h):
            T[k, b] = Vs[b, k]
    acc = np.empty(h)
    for a in range(h):
        Sa = S[a]
        for b in range(h):
            acc[b] = 0.0
        for k in range(d_out):
            ra = Vr[a, k]
            Tk = T[k]
            for b in range(h):
                acc[b] += ra * Tk[b]
        for b in range(h):
            Sa[b] += acc[b]


@njit(**_JIT)
def _certified(cost, warm, perm, taken):
    """True if the columns minimizing ``cost[r, j] - warm[j]`` are distinct over the rows and
    each row's minimum beats every other column of the row by a margin: then that assignment
    (written to perm) is the unique optimum, whatever the rounding of any solver (with the row
    minima and ``warm`` as dual potentials, every other assignment costs at least the margin
    more, ``_MARGIN`` times the largest |cost| and |warm|). ``warm`` (h,) holds column
    potentials, e.g. a similar problem's. taken (>= h,) bool: scratch. The margin is computed
    only when the columns are distinct (the usual refusal costs one scan)."""
    h = cost.shape[0]
    for b in range(h):
        taken[b] = False
    gap = np.inf
    scale = 0.0
    for a in range(h):
        best, second, col = np.inf, np.inf, 0
        row = cost[a]
        for b in range(h):  # selects, not branches: the textbook if / elif, same values
            scale = max(scale, abs(row[b]))
            c = row[b] - warm[b]
            lower = c < best
            second = best if lower else (c if c < second else second)
            best = c if lower else best
            col = b if lower else col
        if taken[col]:
            return False
        taken[col] = True
        perm[a] = col
        g = second - best
        if not g == g:  # NaN (costs that are not finite): not certified, as before
            return False
        gap = min(gap, g)
    top = 0.0
    for b in range(h):
        top = max(top, abs(warm[b]))
    return gap > _MARGIN * (scale + top)


@njit(**_JIT)
def _align_row(src, ref, lay, odd, warm, dst, S, T, cost, perm, fw, iw, used):
    """dst (n_params,) float64 = src (float64, n_params) with its hidden units permuted (and
    sign-flipped when ``odd``) to match ``ref``; src itself if that is not closer to ref.
    warm (h,) float64: column potentials of this row's last problem (a start that changes only
    the time taken), updated. Scratch of this row only: S, cost (h, h) float64; T (d_out, h)
    float64; perm (h,) int64; fw (3, h + 1) float64; iw (2, h + 1) int64; used (h + 1,) bool.
    """
    h = S.shape[0]
    _similarity(src, ref, lay, S, T)
    for a in range(h):
        Sa = S[a]
        ca = cost[a]
        for b in range(h):
            ca[b] = -abs(Sa[b]) if odd else -Sa[b]
    if not _certified(cost, warm, perm, used):
        v = fw[1]
        hungarian(cost, perm, fw[0], v, iw[0], iw[1], fw[2])
        for b in range(h):
            warm[b] = v[b + 1]
    n = src.shape[0]
    for t in range(n):
        dst[t] = src[t]
    same = True
    for a in range(h):
        same = same and perm[a] == a and not (odd and S[a, a] < 0)
    if same:  # the identity: dst is src, and the check below could not undo it
        return
    sW1, sB1, sW2 = _units(src, lay)
    dW1, dB1, dW2 = _units(dst, lay)
    for a in range(h):
        b = perm[a]
        s = -1.0 if odd and S[a, b] < 0 else 1.0
        for i in range(sW1.shape[0]):
            dW1[i, a] = sW1[i, b] * s
        if sB1.shape[0] > 0:
            dB1[a] = sB1[b] * s
        for k in range(sW2.shape[1]):
            dW2[a, k] = sW2[b, k] * s
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
        row = rows[r]
        for t in range(D):
            out[t] += row[t]
    for t in range(D):
        out[t] /= m


@njit(**_JIT)
def _scratch(m, D, lay):
    """Per-row scratch of :func:`_align_row` for m rows (each row owns its slices)."""
    h, d_out = lay[5], lay[6]
    return (
        np.empty((m, D)),
        np.empty((m, h, h)),
        np.empty((m, d_out, h)),
        np.empty((m, h, h)),
        np.empty((m, h), dtype=np.int64),
        np.empty((m, 3, h + 1)),
        np.empty((m, 2, h + 1), dtype=np.int64),
        np.empty((m, h + 1), dtype=np.bool_),
    )


@njit(**_JIT)
def _do_row(params, who, ref, lay, odd, k, warm, out, r, scratch):
    """Row r of pass k: params[who[r]] (pass 0) or out[r] (later passes) aligned to ref,
    into out[r]."""
    src, S, T, cost, perm, fw, iw, used = scratch
    s = src[r]
    if k == 0:
        row = params[who[r]]
        for t in range(s.shape[0]):
            s[t] = row[t]
    else:
        s[:] = out[r]
    _align_row(
        s, ref, lay, odd, warm[k, r], out[r], S[r], T[r], cost[r], perm[r], fw[r], iw[r], used[r]
    )


@njit(**_JIT)
def _distance(out, center):
    """Mean over the rows of out (m, D) of ||row - center||^2, summed in row order."""
    m, D = out.shape
    total = 0.0
    for r in range(m):
        row = out[r]
        acc = 0.0
        for t in range(D):
            d = row[t] - center[t]
            acc += d * d
        total += acc
    return total / m


@njit(parallel=True, **_JIT)
def _align_consensus(params, who, ref, lay, odd, refine, warm, out):
    m, D = out.shape
    scratch = _scratch(m, D, lay)
    for r in prange(m):
        _do_row(params, who, ref, lay, odd, 0, warm, out, r, scratch)
    center = np.empty(D)
    for k in range(refine):
        _mean_row(out, center)
        for r in prange(m):
            _do_row(params, who, center, lay, odd, k + 1, warm, out, r, scratch)
    _mean_row(out, center)
    return _distance(out, center)


@njit(**_JIT)
def _align_consensus_serial(params, who, ref, lay, odd, refine, warm, out):
    """:func:`_align_consensus` in one thread."""
    m, D = out.shape
    scratch = _scratch(m, D, lay)
    for r in range(m):
        _do_row(params, who, ref, lay, odd, 0, warm, out, r, scratch)
    center = np.empty(D)
    for k in range(refine):
        _mean_row(out, center)
        for r in range(m):
            _do_row(params, who, center, lay, odd, k + 1, warm, out, r, scratch)
    _mean_row(out, center)
    return _distance(out, center)


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

    Runs in one thread (no parallel region) when the work keeps only one thread busy, else in
    parallel over the rows as :func:`simulator.kernels.sized.sized` decides; every row's
    work is the same code either way: the result does not depend on the thread count.

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
    kernel = sized(_align_consensus, _align_consensus_serial, align_work(lay, who.shape[0], refine))
    return float(kernel(params, who, ref, lay, odd, refine, warm, out))


# Cost of one exact assignment of h units, in FLOP-like units of the thread sizing: the
# Hungarian method's O(h^3) steps are branchy scalar work (measured on 16 units: ~4 us, about
# what the vectorized kernels do in 80,000 FLOPs), so each counts ~20.
_ASSIGN_COST = 20.0


def align_work(lay: np.ndarray, m: int, refine: int) -> float:
    """Estimated work (FLOP-like units) of :func:`align_consensus` on m rows: per row and pass,
    the similarity (h^2 (d_in + d_out + 2)), the assignment (at worst ~h^3 steps) and the
    copies and checks (~8 n_params)."""
    d_in, h, d_out = int(lay[4]), int(lay[5]), int(lay[6])
    n_params = (d_in + 1) * h + (h + 1) * d_out
    per_row = h * h * (d_in + d_out + 2) + _ASSIGN_COST * h**3 + 8.0 * n_params
    return float(m * (1 + refine) * per_row)
