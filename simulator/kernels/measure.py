"""Numba kernels for the pairwise parts of the population measures.

Arrays and scalars in, arrays out (or filled in place, as documented). Validation happens in
:mod:`simulator.metrics` before any call.

* :func:`joint_failures`: for groups of agents, the share of items on which all of them fail.
* :func:`assign_leaders`, :func:`new_leaders`, :func:`link_leaders`: the pieces of an exact
  connected-components search on the graph linking vectors closer than a radius ``eps``
  (single linkage cut at ``eps``), driven tile by tile by
  :func:`simulator.metrics.clusters.function_clusters`. Candidate pairs come from approximate
  dot products (float32 GEMM) with a tolerance band; every link is confirmed by an
  exact float64 distance on the original rows ``F`` before it is made.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_JIT = {"cache": True, "error_model": "numpy"}
# Partial squared distances are checked against their cap after every block of this many terms.
_BLOCK = 32


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


@njit(inline="always")
def _maybe(dot, nrm, tol, p, q, cap2):
    """False only if the approximate dot product ``dot`` of the (centred, float32) rows p and q
    proves ``||F_p - F_q||^2 >= cap2``: ``nrm`` holds their squared norms (float64) and the
    dot product's error is below ``tol * (nrm[p] + nrm[q]) / 2``."""
    s = nrm[p] + nrm[q]
    return s - 2.0 * dot < cap2 + tol * s


@njit(parallel=True, **_JIT)
def assign_leaders(F, dots, pts, cand, nrm, tol, r2, leader_of):
    """Give each unassigned point of ``pts`` the first leader of ``cand`` closer than sqrt(r2).

    dots : float32 (len(pts), len(cand)) approximate dot products of the centred rows (see
    _maybe); nrm : float64 (P,) their squared norms; tol : relative tolerance.
    leader_of : int64 (P,), -1 = unassigned; row ``pts[i]`` is written only by iteration i.
    """
    for i in prange(pts.shape[0]):
        p = pts[i]
        if leader_of[p] >= 0:
            continue
        for j in range(cand.shape[0]):
            a = cand[j]
            if _maybe(dots[i, j], nrm, tol, p, a, r2) and _sqdist(F, p, a, r2) < r2:
                leader_of[p] = a
                break


@njit(**_JIT)
def new_leaders(F, dots, pts, nrm, tol, r2, leader_of):
    """Greedy pass over still-unassigned ``pts`` (``dots``: their dot products, see _maybe): each
    joins an earlier new leader closer than sqrt(r2) or becomes one. Returns the new leaders."""
    out = np.empty(pts.shape[0], dtype=np.int64)
    pos = np.empty(pts.shape[0], dtype=np.int64)
    n = 0
    for i in range(pts.shape[0]):
        p = pts[i]
        for t in range(n):
            a = out[t]
            if _maybe(dots[i, pos[t]], nrm, tol, p, a, r2) and _sqdist(F, p, a, r2) < r2:
                leader_of[p] = a
                break
        if leader_of[p] < 0:
            leader_of[p] = p
            out[n] = p
            pos[n] = i
            n += 1
    return out[:n]


@njit(**_JIT)
def ball_members(leader_of):
    """Points grouped by leader: (start (P + 1,), members (P,)), ball of leader a =
    members[start[a]:start[a + 1]] (empty for non-leaders)."""
    P = leader_of.shape[0]
    start = np.zeros(P + 1, dtype=np.int64)
    for p in range(P):
        start[leader_of[p] + 1] += 1
    for a in range(P):
        start[a + 1] += start[a]
    fill = start[:-1].copy()
    members = np.empty(P, dtype=np.int64)
    for p in range(P):
        members[fill[leader_of[p]]] = p
        fill[leader_of[p]] += 1
    return start, members


@njit(parallel=True, **_JIT)
def leader_radii(F, leader_of, rad_pt, rad_ball):
    """rad_pt[p] = ||F_p - F_leader(p)|| (float64, exact); rad_ball[a] = max over a's ball."""
    P = leader_of.shape[0]
    for p in prange(P):
        rad_pt[p] = np.sqrt(_sqdist(F, p, leader_of[p], np.inf))
    rad_ball[:] = 0.0
    for p in range(P):
        rad_ball[leader_of[p]] = max(rad_ball[leader_of[p]], rad_pt[p])


@njit(**_JIT)
def _near(F, pts, center, cap):
    """Members of ``pts`` closer than ``cap`` to ``center``, and their distances to it."""
    keep = np.empty(pts.shape[0], dtype=np.int64)
    dist = np.empty(pts.shape[0], dtype=np.float64)
    cap2 = cap * cap
    n = 0
    for t in range(pts.shape[0]):
        d2 = _sqdist(F, pts[t], center, cap2)
        if d2 < cap2:
            keep[n] = pts[t]
            dist[n] = np.sqrt(d2)
            n += 1
    return keep[:n], dist[:n]


@njit(**_JIT)
def _cross_edge(F, ball_a, ball_b, a, b, eps, rad_pt, rad_a, rad_b):
    """True if some p of ball_a and q of ball_b are closer than eps.

    Triangle inequalities prune: such a p lies within eps + rad_b of b, such a q within
    eps + rad_a of a, and ||p - q|| >= max(d(p, b) - d(q, b), d(q, a) - d(p, a)).
    """
    eps2 = eps * eps
    margin = eps * (1.0 + 1e-12)
    cand_a, pb = _near(F, ball_a, b, eps + rad_b)
    if cand_a.shape[0] == 0:
        return False
    cand_b, qa = _near(F, ball_b, a, eps + rad_a)
    for s in range(cand_a.shape[0]):
        p = cand_a[s]
        for t in range(cand_b.shape[0]):
            q = cand_b[t]
            if pb[s] - rad_pt[q] >= margin or qa[t] - rad_pt[p] >= margin:
                continue
            if _sqdist(F, p, q, eps2) < eps2:
                return True
    return False


@njit(**_JIT)
def link_leaders(F, dots, rows, cols, nrm, tol, eps, balls, rad_pt, rad_ball, parent):
    """Union the balls of leaders rows[i] < cols[j] whenever they hold a pair closer than eps.

    Leaders a, b are candidates only if d(a, b) < eps + rad_ball[a] + rad_ball[b], as far as
    the approximate dot products ``dots`` (float32 (len(rows), len(cols))) can tell.
    ``balls`` is the (start, members) pair of :func:`ball_members`. parent : int64 (P,)
    union-find, updated in place (the root of a set is its smallest index).
    """
    start, members = balls
    for i in range(rows.shape[0]):
        a = rows[i]
        ball_a = members[start[a] : start[a + 1]]
        for j in range(cols.shape[0]):
            b = cols[j]
            reach = eps + rad_ball[a] + rad_ball[b]
            if b <= a or not _maybe(dots[i, j], nrm, tol, a, b, reach * reach):
                continue
            if _find(parent, a) == _find(parent, b):
                continue
            ball_b = members[start[b] : start[b + 1]]
            if _cross_edge(F, ball_a, ball_b, a, b, eps, rad_pt, rad_ball[a], rad_ball[b]):
                _union(parent, a, b)


@njit(**_JIT)
def one_set(parent, rows, cols):
    """True if every point of ``rows`` and ``cols`` is already in one union-find set."""
    root = _find(parent, rows[0])
    for a in rows:
        if _find(parent, a) != root:
            return False
    for b in cols:
        if _find(parent, b) != root:
            return False
    return True


@njit(**_JIT)
def union_with_leaders(leader_of, parent):
    """Fill ``parent`` (int64 (P,)) with one union-find set per ball (each point joined to its
    leader; the root of a set is its smallest index)."""
    for p in range(parent.shape[0]):
        parent[p] = p
    for p in range(parent.shape[0]):
        _union(parent, p, leader_of[p])


@njit(**_JIT)
def roots(parent, out):
    """out[p] = root of p's set (compresses ``parent`` in place)."""
    for p in range(parent.shape[0]):
        out[p] = _find(parent, p)
