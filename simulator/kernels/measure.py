"""Numba kernels for the pairwise parts of the population measures.

Arrays and scalars in, arrays out (or filled in place, as documented). Validation happens in
:mod:`simulator.metrics` before any call.

* :func:`joint_failures`: for groups of agents, the share of items on which all of them fail.
* :func:`sweep_components`: exact connected components of the graph linking rows closer than
  a radius ``eps`` (single linkage cut at ``eps``): every row tested against the row nearest
  the centre, then a sweep along the top principal axis until one component is left, pruned
  by projected distances, every link confirmed by an exact float64 distance.
  The coordinates come from :func:`simulator.kernels.measure_pivot.pivot_coordinates`
  (imported here too).
* :func:`group_means`, :func:`pair_distances`: cluster centroids and distances between them
  (polarization).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.arrays import borrow
from simulator.kernels.measure_pivot import pivot_coordinates  # noqa: F401 (re-exported)
from simulator.kernels.measure_weights import pick
from simulator.kernels.numpy_sum import pairwise_sum

_JIT = {"cache": True, "error_model": "numpy"}
# Partial squared distances are checked against their cap after every block of this many terms.
_BLOCK = 32
_FAST_BLOCK = 256  # the same for the vectorized sum of the sweep's first test
_TINY = 1e-30  # squared radii outside (_TINY, 1 / _TINY): no fast test (see sweep_components)


_GROUPS = 64  # groups per parallel slot of joint_failures (one scratch row per slot)


@njit(inline="always")
def _joint_block(fail, groups, out, lo, hi, acc):
    """Groups lo..hi-1 of :func:`joint_failures`, with acc (n_items,) uint8 scratch."""
    k = groups.shape[1]
    n_items = fail.shape[1]
    for g in range(lo, hi):
        first = fail[groups[g, 0]]
        for t in range(n_items):
            acc[t] = first[t]
        for m in range(1, k):
            row = fail[groups[g, m]]
            for t in range(n_items):
                acc[t] &= row[t]
        count = np.int64(0)  # not the uint8 of acc: it would wrap at 255
        for t in range(n_items):
            count += acc[t]
        out[g] = count / n_items


@njit(parallel=True, **_JIT)
def joint_failures(fail, groups, out):
    """out[g] = share of items on which every agent of ``groups[g]`` fails.

    fail : uint8 (P, n_items), 1 = failure; groups : int64 (G, k); out : float64 (G,), filled.
    Each group writes only its own entry: bit-identical on any number of threads.
    """
    n_groups = groups.shape[0]
    for b in prange((n_groups + _GROUPS - 1) // _GROUPS):
        acc = np.empty(fail.shape[1], dtype=np.uint8)
        _joint_block(fail, groups, out, b * _GROUPS, min(n_groups, (b + 1) * _GROUPS), acc)


@njit(**_JIT)
def joint_failures_serial(fail, groups, out):
    """:func:`joint_failures` in one thread."""
    acc = np.empty(fail.shape[1], dtype=np.uint8)
    _joint_block(fail, groups, out, 0, groups.shape[0], acc)


@njit(**_JIT)
def homogenization_ratio(fail, groups, joint):
    """Mean over the groups of ``joint[g] / prod_{i in groups[g]} rate_i`` (1 where the product
    is 0), ``rate_i`` the share of items agent i fails: the last steps of
    :func:`simulator.metrics.outcome_homogenization`, with NumPy's arithmetic (the product
    from the group's first agent on, the mean in NumPy's pairwise order).

    fail : uint8 (P, n_items), 1 = failure; groups : int64 (G, k), G >= 1; joint : float64 (G,)
    from :func:`joint_failures`.
    """
    P, n_items = fail.shape
    rates = np.empty(P)
    for i in range(P):
        row = fail[i]
        count = np.int64(0)
        for t in range(n_items):
            count += row[t]
        rates[i] = count / n_items
    n_groups, k = groups.shape
    ratio = np.empty(n_groups)
    for g in range(n_groups):
        expected = rates[groups[g, 0]]
        for m in range(1, k):
            expected *= rates[groups[g, m]]
        ratio[g] = joint[g] / expected if expected > 0 else 1.0
    return pairwise_sum(ratio, 0, n_groups) / n_groups


@njit(inline="always")
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(inline="always")
def _union(parent, i, j):
    """Merge the sets of i and j; the smaller root index becomes the root. Returns 1 when two
    sets were merged, 0 when i and j were already in one."""
    ri, rj = _find(parent, i), _find(parent, j)
    if ri < rj:
        parent[rj] = ri
    elif rj < ri:
        parent[ri] = rj
    return 1 if ri != rj else 0


@njit(**_JIT)
def _sqdist(F, i, j, cap):
    """||F_i - F_j||^2 in float64; may stop early once the partial sum reaches ``cap``."""
    d = F.shape[1]
    s = 0.0
    for start in range(0, d, _BLOCK):
        stop = min(start + _BLOCK, d)
        for t in range(start, stop):
            diff = np.float64(F[i, t]) - np.float64(F[j, t])
            s += diff * diff
        if s >= cap:
            return s
    return s


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _sum_sq_diff(a, b):
    """sum (a - b)^2 over two equal 1-D views, in their own precision, in any order
    (vectorized; indices from 0, so no negative-index checks)."""
    s = a[0] - a[0]
    for t in range(a.shape[0]):
        x = a[t] - b[t]
        s += x * x
    return s


@njit(**_JIT)
def _sqdist_fast(F, i, j, cap):
    """||F_i - F_j||^2 summed in F's own precision (float32 for float32 rows) in any order:
    relative error <= ~(D + 2) u of F's dtype. May stop early, after a block of
    ``_FAST_BLOCK`` terms, once the sum reaches ``cap``."""
    d = F.shape[1]
    a, b = F[i], F[j]
    s = 0.0
    for start in range(0, d, _FAST_BLOCK):
        stop = min(start + _FAST_BLOCK, d)
        s += np.float64(_sum_sq_diff(a[start:stop], b[start:stop]))
        if s >= cap:
            break
    return s


@njit(inline="always")
def _decide(F, i, j, s, eps2, lo, hi):
    """1 if ``_sqdist(F, i, j, eps2) < eps2``, given the fast sum ``s`` of the rows' squared
    differences: decided by ``s`` when it is outside [lo, hi) (a margin wider than the rounding
    of either sum), else by _sqdist; else 0."""
    if s >= hi:
        return 0
    if s < lo or _sqdist(F, i, j, eps2) < eps2:
        return 1
    return 0


@njit(**_JIT)
def _closer(F, i, j, eps2, lo, hi):
    """``_sqdist(F, i, j, eps2) < eps2``, decided from :func:`_sqdist_fast` (see
    :func:`_decide`)."""
    return _decide(F, i, j, _sqdist_fast(F, i, j, hi), eps2, lo, hi) == 1


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _sum_sq_diff4(a, b0, b1, b2, b3):
    """The four sums (a - b_k)^2 over equal 1-D views, for four rows b_k at once (one load of
    ``a`` for four sums), in their own precision, in any order (vectorized)."""
    s0 = s1 = s2 = s3 = a[0] - a[0]
    for t in range(a.shape[0]):
        x = a[t]
        d0, d1, d2, d3 = x - b0[t], x - b1[t], x - b2[t], x - b3[t]
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
    return s0, s1, s2, s3


@njit(**_JIT)
def _closer4(F, i, j0, j1, j2, j3, eps2, lo, hi):
    """:func:`_closer` (F, i, j_k, eps2, lo, hi) of four rows j_k, as four 0/1 ints: their fast
    sums in one pass over row i, in blocks of ``_FAST_BLOCK`` terms, stopping once all four
    reach ``hi``."""
    d = F.shape[1]
    a, b0, b1, b2, b3 = F[i], F[j0], F[j1], F[j2], F[j3]
    s0 = s1 = s2 = s3 = 0.0
    for start in range(0, d, _FAST_BLOCK):
        stop = min(start + _FAST_BLOCK, d)
        p0, p1, p2, p3 = _sum_sq_diff4(
            a[start:stop], b0[start:stop], b1[start:stop], b2[start:stop], b3[start:stop]
        )
        s0, s1 = s0 + np.float64(p0), s1 + np.float64(p1)
        s2, s3 = s2 + np.float64(p2), s3 + np.float64(p3)
        if s0 >= hi and s1 >= hi and s2 >= hi and s3 >= hi:
            break
    return (
        _decide(F, i, j0, s0, eps2, lo, hi),
        _decide(F, i, j1, s1, eps2, lo, hi),
        _decide(F, i, j2, s2, eps2, lo, hi),
        _decide(F, i, j3, s3, eps2, lo, hi),
    )


@njit(inline="always")
def _link_batch(F, rows, i, batch, n, eps2, lo, hi, parent):
    """Union sweep item i with each of the items batch[:n] (n <= 4) whose distance to it is
    below eps (:func:`_closer4`; past n, batch[n - 1] is tested again and ignored); returns
    the number of sets merged."""
    last = n - 1
    links = _closer4(
        F, rows[i], rows[batch[0]], rows[batch[min(1, last)]], rows[batch[min(2, last)]],
        rows[batch[min(3, last)]], eps2, lo, hi,
    )  # fmt: skip
    merged = 0
    for k in range(n):
        if links[k]:
            merged += _union(parent, i, batch[k])
    return merged


@njit(**_JIT)
def sweep_components(F_, rows_, Z, r_, eps, slack, parent_):
    """Union-find of the graph linking rows of F closer than ``eps`` (single linkage at eps).

    F : float (P, D); rows : int64 (m,), the rows of F to cluster, sorted by ``Z[:, 0]`` (item
    i of the sweep is row ``rows[i]`` of F); Z : float64 (m, k), their centred coordinates on k
    orthonormal directions; r : float64 (m,), the norms of their centred residuals outside
    those directions. Then
    ``||dZ||^2 + (r_i - r_j)^2 <= ||F_i - F_j||^2 <= ||dZ||^2 + (r_i + r_j)^2`` up to rounding,
    which ``slack`` (>= 0, in F's units) covers. Pairs are scanned in sorted order while
    ``Z_j0 - Z_i0 < eps + slack``; a pair already in one set, or whose lower bound reaches
    ``eps + slack``, is skipped; one whose upper bound is below ``eps - slack`` is linked; any
    other is linked only when its exact float64 distance is below eps (a vectorized sum in F's
    precision decides first when it is farther from eps than its rounding and _sqdist's; the
    sweep sums four pairs of one row at a time: evolution's 1,000 agents, ~230,000 such tests,
    9.0-10.7 -> 7.2-7.5 ms).
    parent : int64 (m,), filled (root = smallest sweep index).

    Before the sweep, every row is tested against the row nearest the centre (the smallest
    ``||Z_i||^2 + r_i^2``) with the same bounds and distances; the sweep stops as soon as every
    row is in one set. A population near consensus is then one set after ``m`` tests. The
    components do not depend on the order in which links are found.
    """
    # the arguments borrowed (the caller holds them): their views count no references
    F, rows, r, parent = borrow(F_), borrow(rows_), borrow(r_), borrow(parent_)
    m = Z.shape[0]
    eps2 = eps * eps
    sure = max(eps - slack, 0.0)
    sure2 = sure * sure
    # _sqdist_fast and _sqdist are within (D + 2) u (relative, u of F's dtype and of float64)
    # of the exact sum of squares: outside a margin of 4 (D + 2) u around eps^2, they decide a
    # pair alike. Subnormal or overflowing squares (eps^2 far from 1) void the bound.
    rel = 4.0 * (F.shape[1] + 2) * np.finfo(F.dtype).eps
    lo, hi = 0.0, np.inf
    if _TINY < eps2 < 1.0 / _TINY and rel < 0.1:
        lo, hi = eps2 * (1.0 - rel), eps2 * (1.0 + rel)
    for i in range(m):
        parent[i] = i
    sets = m
    ZT = np.ascontiguousarray(Z.T)  # (k, m): the lower bounds of a row's window, vectorized
    low, far = np.empty(m), np.empty(m)
    cand = np.empty(m, dtype=np.int64)
    batch = np.empty(4, dtype=np.int64)  # the items of i's next four distance tests
    hub, best = 0, np.inf
    for i in range(m):
        d2 = r[i] * r[i]
        for t in range(ZT.shape[0]):
            d2 += ZT[t, i] * ZT[t, i]
        if d2 < best:
            hub, best = i, d2
    cut = eps + slack
    for j in range(m):
        if j == hub:
            continue
        a, b = min(hub, j), max(hub, j)
        proj = 0.0
        for t in range(ZT.shape[0]):
            e = ZT[t, b] - ZT[t, a]
            proj += e * e
        # the link test of the sweep below, written out at both places: as one shared helper
        # (inlined or called) it made evolution's sweep 1.6-1.9x slower (256 agents, measured)
        gap, span = r[a] - r[b], r[a] + r[b]
        if proj + gap * gap >= cut * cut:
            continue
        if proj + span * span < sure2 or _closer(F, rows[a], rows[b], eps2, lo, hi):
            sets -= _union(parent, a, b)
    # two rounds: the first examines only pairs whose lower bound is below eps / 2 (likely
    # links, which join most of a dense cluster cheaply); the second every candidate pair, most
    # of them now skipped as already joined
    for frac in (0.5, 1.0):
        cut = frac * eps + slack
        cut2 = cut * cut
        end = 0
        for i in range(m):
            if sets == 1:
                break
            # the window of rows j > i with Z_j0 - Z_i0 < cut (Z_0 ascending: it only grows)
            end = max(end, i + 1)
            while end < m and ZT[0, end] - ZT[0, i] < cut:
                end += 1
            _window_bounds(ZT, r, i, end, low, far)
            n_cand = 0  # the window's pairs under the lower bound, gathered without branches
            for j in range(i + 1, end):
                cand[n_cand] = j
                n_cand += far[j] < cut2
            n_batch = 0  # pairs whose distance decides, tested four at a time
            for q in range(n_cand):
                j = cand[q]
                if _find(parent, i) == _find(parent, j):
                    continue
                span = r[i] + r[j]
                if low[j] + span * span < sure2:
                    sets -= _union(parent, i, j)
                    continue
                batch[n_batch] = j
                n_batch += 1
                if n_batch == 4:
                    sets -= _link_batch(F, rows, i, batch, 4, eps2, lo, hi, parent)
                    n_batch = 0
            if n_batch:
                sets -= _link_batch(F, rows, i, batch, n_batch, eps2, lo, hi, parent)
    for i in range(m):
        _find(parent, i)


@njit(**_JIT)
def _window_bounds(ZT, r, i, end, low, far):
    """low[j] = ||Z_j - Z_i||^2 (ZT: Z transposed, (k, m)) summed over the directions in order,
    and far[j] = low[j] + (r_i - r_j)^2, the squared lower bound of the pair's distance, for
    i < j < end (vectorized over j: views indexed from 0)."""
    k = ZT.shape[0]
    w = low[i + 1 : end]
    z = ZT[0, i + 1 : end]
    zi = ZT[0, i]
    for q in range(w.shape[0]):
        dz = z[q] - zi
        w[q] = dz * dz
    for t in range(1, k):
        z = ZT[t, i + 1 : end]
        zi = ZT[t, i]
        for q in range(w.shape[0]):
            e = z[q] - zi
            w[q] += e * e
    f = far[i + 1 : end]
    rj = r[i + 1 : end]
    ri = r[i]
    for q in range(w.shape[0]):
        gap = ri - rj[q]
        f[q] = w[q] + gap * gap


@njit(**_JIT)
def group_means(F, lab, counts, out):
    """out[g] (D,) float64 = mean of the rows of F (m, D) labelled g (lab int64 (m,), every
    label in [0, G) and every group non-empty), summed in the order of the rows; counts (G,)
    int64 = the rows of each group. One pass over F in row order (no sort): a group's first row
    is copied, the next ones added, then the sum is scaled by 1 / count."""
    D = F.shape[1]
    for g in range(counts.shape[0]):
        counts[g] = 0
    for p in range(F.shape[0]):
        g = lab[p]
        row, dst = F[p], out[g]
        if counts[g] == 0:
            for t in range(D):
                dst[t] = row[t]
        else:
            for t in range(D):
                dst[t] += row[t]
        counts[g] += 1
    for g in range(counts.shape[0]):
        dst = out[g]
        inv = 1.0 / counts[g]
        for t in range(D):
            dst[t] *= inv


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def pair_rows(C, I, J, out, lo, hi):
    """out[p] = ||C[I[p]] - C[J[p]]|| for p in lo..hi-1 (a slot of pair_distances)."""
    D = C.shape[1]
    for p in range(lo, hi):
        a, b = C[I[p]], C[J[p]]
        acc = 0.0
        for t in range(D):
            d = a[t] - b[t]
            acc += d * d
        out[p] = np.sqrt(acc)


@njit(parallel=True, **_JIT)
def pair_distances_parallel(C, I, J, out):
    """out[p] = ||C[I[p]] - C[J[p]]|| (float64) for rows of C (G, D) float64."""
    n = I.shape[0]
    for c in prange((n + 255) // 256):
        pair_rows(C, I, J, out, c * 256, min(n, (c + 1) * 256))


@njit(**_JIT)
def pair_distances_serial(C, I, J, out):
    """:func:`pair_distances_parallel` in one thread."""
    pair_rows(C, I, J, out, 0, I.shape[0])


def pair_distances(C: np.ndarray, I: np.ndarray, J: np.ndarray, out: np.ndarray) -> None:
    """out[p] = ||C[I[p]] - C[J[p]]|| (see :func:`pair_distances_parallel`)."""
    pick(pair_distances_parallel, pair_distances_serial, I.size * C.shape[1])(C, I, J, out)


@njit(**_JIT)
def _assign_rows(panel, labels, rows, eps2, out, lo, hi):
    for q in range(lo, hi):
        out[q] = -1
        for i in range(panel.shape[0]):
            s = 0.0
            for start in range(0, panel.shape[1], _BLOCK):
                for t in range(start, min(start + _BLOCK, panel.shape[1])):
                    d = np.float64(rows[q, t]) - np.float64(panel[i, t])
                    s += d * d
                if s >= eps2:
                    break
            if s < eps2:
                out[q] = labels[i]
                break


@njit(parallel=True, **_JIT)
def assign_within_parallel(panel, labels, rows, eps2, out):
    """out[q] = labels[i] of the first row i of ``panel`` (m, D) closer than sqrt(eps2) to
    ``rows[q]`` (float64 distance, early exit), or -1. Each q writes only its own slot."""
    q_n = rows.shape[0]
    for c in prange((q_n + 15) // 16):
        _assign_rows(panel, labels, rows, eps2, out, c * 16, min(q_n, (c + 1) * 16))


@njit(**_JIT)
def assign_within_serial(panel, labels, rows, eps2, out):
    """:func:`assign_within_parallel` in one thread."""
    _assign_rows(panel, labels, rows, eps2, out, 0, rows.shape[0])


def assign_within(
    panel: np.ndarray, labels: np.ndarray, rows: np.ndarray, eps2: float, out: np.ndarray
) -> None:
    """out[q]: the label of the first panel row within sqrt(eps2) of rows[q], or -1."""
    work = rows.shape[0] * panel.shape[0] * 64
    pick(assign_within_parallel, assign_within_serial, work)(panel, labels, rows, eps2, out)


@njit(**_JIT)
def first_appearance(roots, labels):
    """labels[p] = rank of roots[p] among the distinct roots in order of first appearance
    (0, 1, ...); roots : int64 (P,) values in [0, P). Returns the number of labels. O(P)."""
    P = roots.shape[0]
    rank = np.full(P, -1, dtype=np.int64)
    n = 0
    for p in range(P):
        r = roots[p]
        if rank[r] < 0:
            rank[r] = n
            n += 1
        labels[p] = rank[r]
    return n


@njit(**_JIT)
def sorted_components(F, Z, r, eps, limit, labels):
    """:func:`sweep_components` of every row of F, its inputs prepared and its result numbered,
    in one call (a collect's Python calls around a kernel cost several microseconds each).

    F : float (m, D); Z : float64 (m, k) and r : float64 (m,), the rows' centred coordinates and
    residual norms (:func:`simulator.kernels.measure_pivot.pivot_coordinates`); eps > 0;
    limit : the largest spread the sweep takes (float64 squares of distances must fit; +inf: no
    check). The rows are swept in the stable order of ``Z[:, 0]``, with the bounds' slack
    ``1e-6 spread + 1e-9 eps`` (spread: the largest ``sqrt(||Z_i||^2 + r_i^2)``).

    Returns (spread, number of components, rows in the largest), and fills labels : int64 (m,),
    components numbered 0, 1, ... in order of first appearance; unless ``not spread < limit``
    (then the caller rescales; the counts are 0 and labels are left unset).
    """
    m, k = Z.shape
    order = np.argsort(Z[:, 0], kind="mergesort")
    Zs = np.empty((m, k))
    rs = np.empty(m)
    top_z = top_r = 0.0
    finite = True  # a NaN coordinate makes the spread NaN (the caller's rescaled path)
    for i in range(m):
        row = order[i]
        s = 0.0
        for j in range(k):
            z = Z[row, j]
            Zs[i, j] = z
            s += z * z
        rs[i] = r[row]
        q = r[row] * r[row]
        finite &= s == s and q == q
        top_z = max(top_z, s)
        top_r = max(top_r, q)
    spread = np.sqrt(top_z + top_r) if finite else np.nan
    if not spread < limit:
        return spread, 0, 0
    parent = np.empty(m, dtype=np.int64)
    sweep_components(F, order, Zs, rs, eps, 1e-6 * spread + 1e-9 * eps, parent)
    root = np.empty(m, dtype=np.int64)
    for i in range(m):
        root[order[i]] = order[parent[i]]
    n = first_appearance(root, labels)
    counts = np.zeros(n, dtype=np.int64)
    for i in range(m):
        counts[labels[i]] += 1
    return spread, n, counts.max() if n else 0
