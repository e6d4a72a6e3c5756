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

import numpy as np
from numba import njit, prange

from simulator.kernels.measure_weights import pick

_JIT = {"cache": True, "error_model": "numpy"}
# Partial squared distances are checked against their cap after every block of this many terms.
_BLOCK = 32


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


@njit(**_JIT)
def sweep_components(F, Z, r, eps, slack, parent):
    """Union-find of the graph linking rows of F closer than ``eps`` (single linkage at eps).

    F : float (m, D), rows sorted by ``Z[:, 0]``; Z : float64 (m, k), the centred rows'
    coordinates on k orthonormal directions; r : float64 (m,), the norms of the centred rows'
    residuals outside those directions. Then
    ``||dZ||^2 + (r_i - r_j)^2 <= ||F_i - F_j||^2 <= ||dZ||^2 + (r_i + r_j)^2`` up to rounding,
    which ``slack`` (>= 0, in F's units) covers. Pairs are scanned in sorted order while
    ``Z_j0 - Z_i0 < eps + slack``; a pair already in one set, or whose lower bound reaches
    ``eps + slack``, is skipped; one whose upper bound is below ``eps - slack`` is linked; any
    other is linked only when its exact float64 distance is below eps. parent : int64 (m,),
    filled (root = smallest index).
    """
    m, k = Z.shape
    eps2 = eps * eps
    sure = max(eps - slack, 0.0)
    sure2 = sure * sure
    for i in range(m):
        parent[i] = i
    # two rounds: the first examines only pairs whose lower bound is below eps / 2 (likely
    # links, which join most of a dense cluster cheaply); the second every candidate pair, most
    # of them now skipped as already joined
    for frac in (0.5, 1.0):
        cut = frac * eps + slack
        cut2 = cut * cut
        for i in range(m):
            for j in range(i + 1, m):
                dz = Z[j, 0] - Z[i, 0]
                if dz >= cut:
                    break
                proj = dz * dz
                for t in range(1, k):
                    e = Z[j, t] - Z[i, t]
                    proj += e * e
                gap = r[i] - r[j]
                if proj + gap * gap >= cut2 or _find(parent, i) == _find(parent, j):
                    continue
                span = r[i] + r[j]
                if proj + span * span < sure2 or _sqdist(F, i, j, eps2) < eps2:
                    _union(parent, i, j)
    for i in range(m):
        _find(parent, i)


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
    """Z[i, j] = (G_i - mu) . v and res[i] -= Z[i, j]^2 for rows lo..hi-1."""
    D = G.shape[1]
    for i in range(lo, hi):
        row = G[i]
        acc = 0.0
        for t in range(D):
            acc += (np.float64(row[t]) - mu[t]) * v[t]
        Z[i, j] = acc
        res[i] -= acc * acc


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _norms_rows(G, mu, res, lo, hi):
    D = G.shape[1]
    for i in range(lo, hi):
        row = G[i]
        acc = 0.0
        for t in range(D):
            d = np.float64(row[t]) - mu[t]
            acc += d * d
        res[i] = acc


@njit(**_JIT)
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


@njit(parallel=True, **_JIT)
def _pivot_parallel(G, mu, V, Z, res):
    m = G.shape[0]
    n_chunks = (m + 63) // 64
    for c in prange(n_chunks):
        _norms_rows(G, mu, res, c * 64, min(m, (c + 1) * 64))
    k = 0
    floor = 1e-10 * res.max()  # below: what is left is rounding, not a direction
    while k < V.shape[0]:
        p = np.argmax(res)
        if res[p] <= floor or not _next_direction(G, mu, V, k, p):
            break
        for c in prange(n_chunks):
            _project_rows(G, mu, V[k], Z, k, res, c * 64, min(m, (c + 1) * 64))
        k += 1
    return k


@njit(**_JIT)
def _pivot_serial(G, mu, V, Z, res):
    m = G.shape[0]
    _norms_rows(G, mu, res, 0, m)
    k = 0
    floor = 1e-10 * res.max()  # below: what is left is rounding, not a direction
    while k < V.shape[0]:
        p = np.argmax(res)
        if res[p] <= floor or not _next_direction(G, mu, V, k, p):
            break
        _project_rows(G, mu, V[k], Z, k, res, 0, m)
        k += 1
    return k


def pivot_coordinates(G: np.ndarray, mu: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (m, k') float64 of the centred rows of G (m, D) on k' <= k orthonormal
    directions chosen by pivoted Gram-Schmidt: each direction is the residual of the row
    farthest from the span of the previous ones (a greedy approximation of the top principal
    axes; deterministic, lowest index on ties). The directions are orthonormal to float64
    precision (Gram-Schmidt applied twice), so distances between coordinates never exceed
    distances between rows (up to rounding). Also returns the norms (m,) of the rows' residuals
    outside those directions. Cost O(k m D)."""
    m, D = G.shape
    V = np.zeros((min(k, D), D))
    Z = np.zeros((m, V.shape[0]))
    res = np.empty(m)
    kernel = pick(_pivot_parallel, _pivot_serial, G.size)
    used = kernel(G, mu, V, Z, res)
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
