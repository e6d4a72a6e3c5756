"""Numba kernels for the pairwise parts of the population measures.

Arrays and scalars in, arrays out (or filled in place, as documented). Validation happens in
:mod:`simulator.metrics` before any call.

* :func:`joint_failures`: for groups of agents, the share of items on which all of them fail.
* :func:`sweep_components`: exact connected components of the graph linking rows closer than
  a radius ``eps`` (single linkage cut at ``eps``): a sweep along the top principal axis,
  pruned by projected distances, every link confirmed by an exact float64 distance.
* :func:`group_means`, :func:`pair_distances`: cluster centroids and distances between them
  (polarization).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numba import njit, prange

from simulator.kernels import threads
from simulator.kernels.measure_weights import FLOPS_PER_ELEMENT, pick
from simulator.kernels.sized import sized_call

_JIT = {"cache": True, "error_model": "numpy"}
# Partial squared distances are checked against their cap after every block of this many terms.
_BLOCK = 32
_FAST_BLOCK = 256  # the same for the vectorized sum of the sweep's first test
_TINY = 1e-30  # squared radii outside (_TINY, 1 / _TINY): no fast test (see sweep_components)


def sized(parallel, serial, work: float):
    """The serial twin of a kernel when ``work`` (FLOPs) would keep only one thread busy (see
    :data:`simulator.kernels.threads.MIN_WORK_PER_THREAD`): no parallel region at all; else
    the parallel kernel, sized by :func:`simulator.kernels.sized.sized_call` (one thread or
    all, as measured faster). Both run the same per-row code: identical results. Returns a
    callable taking the kernel's arguments."""
    if work < 2.0 * threads.MIN_WORK_PER_THREAD:
        return serial
    return partial(sized_call, parallel.__name__, 1, float(work), parallel)


@njit(parallel=True, **_JIT)
def joint_failures(fail, groups, out):
    """out[g] = share of items on which every agent of ``groups[g]`` fails.

    fail : uint8 (P, n_items), 1 = failure; groups : int64 (G, k); out : float64 (G,), filled.
    Each group writes only its own entry: bit-identical on any number of threads.
    """
    n_groups, k = groups.shape
    n_items = fail.shape[1]
    for g in prange(n_groups):
        acc = fail[groups[g, 0]].copy()
        for m in range(1, k):
            row = fail[groups[g, m]]
            for t in range(n_items):
                acc[t] &= row[t]
        count = np.int64(0)  # not the uint8 of acc: it would wrap at 255
        for t in range(n_items):
            count += acc[t]
        out[g] = count / n_items


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
    """Merge the sets of i and j; the smaller root index becomes the root."""
    ri, rj = _find(parent, i), _find(parent, j)
    if ri < rj:
        parent[rj] = ri
    elif rj < ri:
        parent[ri] = rj


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


@njit(**_JIT)
def _closer(F, i, j, eps2, lo, hi):
    """``_sqdist(F, i, j, eps2) < eps2``, decided by :func:`_sqdist_fast` when its sum is
    outside [lo, hi) (a margin wider than the rounding of either sum), else by _sqdist."""
    s = _sqdist_fast(F, i, j, hi)
    if s >= hi:
        return False
    if s < lo:
        return True
    return _sqdist(F, i, j, eps2) < eps2


@njit(**_JIT)
def sweep_components(F, rows, Z, r, eps, slack, parent):
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
    precision decides first when it is farther from eps than its rounding and _sqdist's).
    parent : int64 (m,), filled (root = smallest sweep index).
    """
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
    ZT = np.ascontiguousarray(Z.T)  # (k, m): the lower bounds of a row's window, vectorized
    low = np.empty(m)
    # two rounds: the first examines only pairs whose lower bound is below eps / 2 (likely
    # links, which join most of a dense cluster cheaply); the second every candidate pair, most
    # of them now skipped as already joined
    for frac in (0.5, 1.0):
        cut = frac * eps + slack
        cut2 = cut * cut
        end = 0
        for i in range(m):
            # the window of rows j > i with Z_j0 - Z_i0 < cut (Z_0 ascending: it only grows)
            end = max(end, i + 1)
            while end < m and ZT[0, end] - ZT[0, i] < cut:
                end += 1
            _window_bounds(ZT, i, end, low)
            for j in range(i + 1, end):
                proj = low[j]
                gap = r[i] - r[j]
                if proj + gap * gap >= cut2 or _find(parent, i) == _find(parent, j):
                    continue
                span = r[i] + r[j]
                if proj + span * span < sure2 or _closer(F, rows[i], rows[j], eps2, lo, hi):
                    _union(parent, i, j)
    for i in range(m):
        _find(parent, i)


@njit(**_JIT)
def _window_bounds(ZT, i, end, low):
    """low[j] = ||Z_j - Z_i||^2 (ZT: Z transposed, (k, m)) for i < j < end, summed over the
    directions in order (vectorized over j: views indexed from 0)."""
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


@njit(**_JIT)
def group_means(F, order, starts, out):
    """out[g] (D,) float64 = mean of the rows ``order[starts[g]:starts[g + 1]]`` of F (m, D):
    rows grouped by label (``order`` sorts the labels, ``starts`` bounds each group), summed in
    that order; each row of ``out`` written once (no zero fill)."""
    D = F.shape[1]
    for g in range(starts.shape[0] - 1):
        dst = out[g]
        first = F[order[starts[g]]]
        for t in range(D):
            dst[t] = first[t]
        for s in range(starts[g] + 1, starts[g + 1]):
            row = F[order[s]]
            for t in range(D):
                dst[t] += row[t]
        inv = 1.0 / (starts[g + 1] - starts[g])
        for t in range(D):
            dst[t] *= inv


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _pair_rows(C, I, J, out, lo, hi):
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
        _pair_rows(C, I, J, out, c * 256, min(n, (c + 1) * 256))


@njit(**_JIT)
def pair_distances_serial(C, I, J, out):
    """:func:`pair_distances_parallel` in one thread."""
    _pair_rows(C, I, J, out, 0, I.shape[0])


def pair_distances(C: np.ndarray, I: np.ndarray, J: np.ndarray, out: np.ndarray) -> None:
    """out[p] = ||C[I[p]] - C[J[p]]|| (see :func:`pair_distances_parallel`)."""
    pick(pair_distances_parallel, pair_distances_serial, I.size * C.shape[1])(C, I, J, out)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _project_rows(G, mu, v, Z, j, res, lo, hi):
    """Z[i, j] = (G_i - mu) . v and res[i] -= Z[i, j]^2 for rows lo..hi-1, four rows at a
    time (four independent sums share the loads of mu and v)."""
    D = G.shape[1]
    i = lo
    while i + 4 <= hi:
        r0, r1, r2, r3 = G[i], G[i + 1], G[i + 2], G[i + 3]
        a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
        for t in range(D):
            c, w = mu[t], v[t]
            a0 += (np.float64(r0[t]) - c) * w
            a1 += (np.float64(r1[t]) - c) * w
            a2 += (np.float64(r2[t]) - c) * w
            a3 += (np.float64(r3[t]) - c) * w
        Z[i, j], Z[i + 1, j], Z[i + 2, j], Z[i + 3, j] = a0, a1, a2, a3
        res[i] -= a0 * a0
        res[i + 1] -= a1 * a1
        res[i + 2] -= a2 * a2
        res[i + 3] -= a3 * a3
        i += 4
    for q in range(i, hi):
        row = G[q]
        acc = 0.0
        for t in range(D):
            acc += (np.float64(row[t]) - mu[t]) * v[t]
        Z[q, j] = acc
        res[q] -= acc * acc


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _norms_rows(G, mu, res, lo, hi):
    """res[i] = ||G_i - mu||^2 for rows lo..hi-1, four rows at a time."""
    D = G.shape[1]
    i = lo
    while i + 4 <= hi:
        r0, r1, r2, r3 = G[i], G[i + 1], G[i + 2], G[i + 3]
        a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
        for t in range(D):
            c = mu[t]
            d0, d1 = np.float64(r0[t]) - c, np.float64(r1[t]) - c
            d2, d3 = np.float64(r2[t]) - c, np.float64(r3[t]) - c
            a0 += d0 * d0
            a1 += d1 * d1
            a2 += d2 * d2
            a3 += d3 * d3
        res[i], res[i + 1], res[i + 2], res[i + 3] = a0, a1, a2, a3
        i += 4
    for q in range(i, hi):
        row = G[q]
        acc = 0.0
        for t in range(D):
            d = np.float64(row[t]) - mu[t]
            acc += d * d
        res[q] = acc


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _next_direction(G, mu, V, j, p):
    """V[j] = the unit residual of row p (centred) after removing V[:j] (Gram-Schmidt, twice).
    Returns False when the residual vanishes."""
    D = G.shape[1]
    v = V[j]
    for t in range(D):
        v[t] = np.float64(G[p, t]) - mu[t]
    for _ in range(2):
        for q in range(j):
            c = 0.0
            for t in range(D):
                c += V[q, t] * v[t]
            for t in range(D):
                v[t] -= c * V[q, t]
    nrm = 0.0
    for t in range(D):
        nrm += v[t] * v[t]
    if nrm <= 0.0:
        return False
    inv = 1.0 / np.sqrt(nrm)
    for t in range(D):
        v[t] *= inv
    return True


# Adding directions stops (given a radius) once fewer than this share of a fixed sample of
# pairs is still within the radius on the directions so far (and at least _MIN_DIRECTIONS):
# later directions cost a pass over the rows each and would prune few pairs. Measured on 256
# agents' outputs of gossip_learning, evolution and social_learning (10,000 agents, step 3):
# the best fixed counts were 8, 3 and 3-4; this rule takes 8, 3 and 4.
_CLOSE_SHARE = 0.05
_MIN_DIRECTIONS = 3
_SAMPLE_PAIRS = 384


@njit(**_JIT)
def _close_share(Z, k, eps):
    """Share of a fixed pseudo-random sample of pairs of rows whose distance on the first k
    coordinates of Z is below eps (deterministic: a function of the shape of Z only)."""
    m = Z.shape[0]
    n = min(_SAMPLE_PAIRS, m * (m - 1) // 2)
    close = 0
    state = np.uint64(0x9E3779B97F4A7C15)
    for _ in range(n):
        state = state * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
        i = np.int64(state >> np.uint64(33)) % m
        j = (i + 1 + np.int64((state >> np.uint64(11)) & np.uint64(0x3FFFFF)) % (m - 1)) % m
        d = 0.0
        for t in range(k):
            e = Z[i, t] - Z[j, t]
            d += e * e
        close += d < eps * eps
    return close / max(n, 1)


@njit(**_JIT)
def _enough(Z, k, eps):
    """Whether k directions suffice for sweeps at radius eps (> 0; see _CLOSE_SHARE)."""
    return (
        eps > 0.0
        and Z.shape[0] > 1
        and k >= _MIN_DIRECTIONS
        and (_close_share(Z, k, eps) < _CLOSE_SHARE)
    )


@njit(parallel=True, **_JIT)
def _pivot_parallel(G, mu, V, Z, res, eps):
    m = G.shape[0]
    n_chunks = (m + 63) // 64
    for c in prange(n_chunks):
        _norms_rows(G, mu, res, c * 64, min(m, (c + 1) * 64))
    k = 0
    floor = 1e-10 * res.max()  # below: what is left is rounding, not a direction
    while k < V.shape[0] and not _enough(Z, k, eps):
        p = np.argmax(res)
        if res[p] <= floor or not _next_direction(G, mu, V, k, p):
            break
        for c in prange(n_chunks):
            _project_rows(G, mu, V[k], Z, k, res, c * 64, min(m, (c + 1) * 64))
        k += 1
    return k


@njit(**_JIT)
def _pivot_serial(G, mu, V, Z, res, eps):
    m = G.shape[0]
    _norms_rows(G, mu, res, 0, m)
    k = 0
    floor = 1e-10 * res.max()  # below: what is left is rounding, not a direction
    while k < V.shape[0] and not _enough(Z, k, eps):
        p = np.argmax(res)
        if res[p] <= floor or not _next_direction(G, mu, V, k, p):
            break
        _project_rows(G, mu, V[k], Z, k, res, 0, m)
        k += 1
    return k


def pivot_coordinates(
    G: np.ndarray, mu: np.ndarray, k: int, eps: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (m, k') float64 of the centred rows of G (m, D) on k' <= k orthonormal
    directions chosen by pivoted Gram-Schmidt: each direction is the residual of the row
    farthest from the span of the previous ones (a greedy approximation of the top principal
    axes; deterministic, lowest index on ties). The directions are orthonormal to float64
    precision (Gram-Schmidt applied twice), so distances between coordinates never exceed
    distances between rows (up to rounding). Also returns the norms (m,) of the rows' residuals
    outside those directions. Cost O(k' m D).

    ``eps`` > 0 (the radius of a sweep that will use them): stop before k directions once at
    least ``_MIN_DIRECTIONS`` leave fewer than ``_CLOSE_SHARE`` of a fixed sample of pairs
    within eps (more would cost more passes than the pairs they prune). The result depends
    only on the inputs, never on the thread count."""
    m, D = G.shape
    V = np.zeros((min(k, D), D))
    Z = np.zeros((m, V.shape[0]))
    res = np.empty(m)
    # one pass over G per direction, and one for the norms
    used = sized(_pivot_parallel, _pivot_serial, G.size * (V.shape[0] + 1) * FLOPS_PER_ELEMENT)(
        G, mu, V, Z, res, float(eps)
    )
    return np.ascontiguousarray(Z[:, : max(used, 1)]), np.sqrt(np.maximum(res, 0.0))


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
def inside_mass(indptr, indices, weights, labels):
    """Sum of the adjacency entries (weights, or 1 when weights is empty) whose two ends have
    the same label, over the CSR graph; float64. One pass over the entries."""
    total = 0.0
    unit = weights.shape[0] == 0
    for i in range(indptr.shape[0] - 1):
        li = labels[i]
        for e in range(indptr[i], indptr[i + 1]):
            if labels[indices[e]] == li:
                total += 1.0 if unit else weights[e]
    return total
