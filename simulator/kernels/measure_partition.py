"""How a partition of the agents (cluster labels) sits on the social graph and against another
partition: the terms of modularity and a contingency table, each in one pass.

Arrays in, scalars out or arrays filled in place. The callers in :mod:`simulator.metrics`
validate shapes and dtypes; these kernels check what only a pass over the values reveals (an
index out of range, a negative label) and report it in their return value, so the caller can
raise a clear error.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ROWS", "contingency", "modularity_terms", "modularity_terms_serial"]

_JIT = {"cache": True, "error_model": "numpy"}


ROWS = 1024  # agents per block of the modularity pass


@njit(inline="always")
def _block_terms(indptr, indices, weights, labels, rows, inside, degree, bad, b):
    """Block ``b`` of :func:`modularity_terms`: its rows' degrees, its inside mass and flag."""
    if weights.shape[0] == 0:
        _block_counts(indptr, indices, labels, rows, inside, degree, bad, b)
        return
    P = labels.shape[0]
    total = 0.0
    ok = True
    for i in range(b * rows, min(P, (b + 1) * rows)):
        li = labels[i]
        d = 0.0
        if indptr[i] < 0 or indptr[i] > indptr[i + 1] or indptr[i + 1] > indices.shape[0]:
            ok = False  # not a CSR row: never read outside indices
            degree[i] = 0.0
            continue
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if j < 0 or j >= P:
                ok = False
                continue
            w = weights[e]
            d += w
            if labels[j] == li:
                total += w
        degree[i] = d
    inside[b] = total
    bad[b] = not ok


@njit(inline="always")
def _block_counts(indptr, indices, labels, rows, inside, degree, bad, b):
    """:func:`_block_terms` of an unweighted graph: every entry counts 1, so the inside mass
    and the degrees are integer counts (exact in float64, whatever the order they are added
    in). The loop over a row's entries has no branch (an index out of range is clamped for
    the read and not counted), so it vectorizes."""
    P = labels.shape[0]
    total = 0
    ok = True
    for i in range(b * rows, min(P, (b + 1) * rows)):
        lo, hi = indptr[i], indptr[i + 1]
        if lo < 0 or lo > hi or hi > indices.shape[0]:
            ok = False  # not a CSR row: never read outside indices
            degree[i] = 0.0
            continue
        li = labels[i]
        same = 0
        valid = 0
        for e in range(lo, hi):
            j = indices[e]
            inside_range = (j >= 0) & (j < P)
            jj = min(max(j, 0), P - 1)
            valid += inside_range
            same += inside_range & (labels[jj] == li)
        ok = ok and valid == hi - lo
        degree[i] = np.float64(valid)
        total += same
    inside[b] = np.float64(total)
    bad[b] = not ok


@njit(parallel=True, **_JIT)
def modularity_terms(indptr, indices, weights, labels, rows, inside, degree, bad):
    """The sums modularity is made of, in one pass over the graph's entries, in parallel over
    blocks of ``rows`` agents (each block writes only its own entries: the same numbers on any
    number of threads).

    Parameters
    ----------
    indptr : int64 (P + 1,); indices : int64 (nnz,): a CSR adjacency (both directions stored).
    weights : float64 (nnz,), or empty for an unweighted graph (every entry 1).
    labels : integer (P,), any values, any integer type (only compared for equality).
        rows : int >= 1, agents per block (:data:`ROWS`).
    inside : float64 (ceil(P / rows),), filled: each block's adjacency mass whose two ends
        share a label. degree : float64 (P,), filled: each agent's summed entries.
        bad : bool (ceil(P / rows),), filled: True where some neighbour index is outside
        [0, P) or some row's bounds are not within indices (such entries are skipped).
    """
    for b in prange(inside.shape[0]):
        _block_terms(indptr, indices, weights, labels, rows, inside, degree, bad, b)


@njit(**_JIT)
def modularity_terms_serial(indptr, indices, weights, labels, rows, inside, degree, bad):
    """:func:`modularity_terms` in one thread."""
    for b in range(inside.shape[0]):
        _block_terms(indptr, indices, weights, labels, rows, inside, degree, bad, b)


@njit(**_JIT)
def contingency(a, b, n_a, n_b, table):
    """table[u, v] (int64 (n_a, n_b), filled) = agents with a[p] = u and b[p] = v, over the
    agents whose label a[p] >= 0 (-1 marks agents outside a sample). a, b : int64 (P,) with
    a < n_a and 0 <= b < n_b. Returns the number of agents counted."""
    table[:, :] = 0
    counted = 0
    for p in range(a.shape[0]):
        if a[p] >= 0:
            table[a[p], b[p]] += 1
            counted += 1
    return counted
