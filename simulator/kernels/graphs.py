"""Random graph generators that write CSR arrays directly (for large populations).

Each follows the algorithm of the networkx generator of the same name, so the graphs have the
same distribution (``tests/test_graph_generators.py`` compares degree sequences, edge
probabilities, clustering and rewiring statistics with networkx's on small n); the random
numbers come from Philox streams (:mod:`simulator.kernels.random`) under a key from the seed,
so a seed gives the same graph on any number of threads. Outputs are CSR arrays of an
undirected simple graph: ``indptr`` int64 (n + 1,), ``indices`` int64 (2 E,), each row sorted.

* independent edges (``gnp_rows``: Erdos-Renyi and stochastic block models): each node ``u``
  draws its neighbours ``v > u`` by geometric skipping (Batagelj and Brandes 2005, networkx's
  ``fast_gnp_random_graph``), block by block, in parallel over rows (each row its own stream);
* ``watts_strogatz``, ``barabasi_albert``, ``random_regular``: networkx's sequential algorithms
  on a hash set of edges, in one thread.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from simulator.kernels.random import _U64, philox4x32, uniform53

__all__ = [
    "barabasi_albert",
    "edges_to_csr",
    "gnp_rows",
    "random_regular",
    "upper_to_csr",
    "watts_strogatz",
]

_EMPTY = np.int64(-1)
_GONE = np.int64(-2)


# ------------------------------------------------------------------ a stream in one thread
@njit(inline="always")
def _uniform(k0, k1, purpose, i):
    """The ``i``-th uniform on (0, 1) of a sequential stream (one Philox call each)."""
    w0, w1, _, _ = philox4x32(_U64(i), _U64(0), _U64(0), _U64(purpose), k0, k1)
    return uniform53(w0, w1)


@njit(inline="always")
def _below(k0, k1, purpose, i, n):
    """The ``i``-th integer uniform on [0, n) of a sequential stream."""
    return min(np.int64(_uniform(k0, k1, purpose, i) * n), n - 1)


# ---------------------------------------------------------------------------- a set of edges
@njit(inline="always")
def _slot(table, key):
    """Slot of ``key`` in the open-addressing table, or of the first free slot on its probe."""
    mask = table.shape[0] - 1
    h = (_U64(key) * _U64(0x9E3779B97F4A7C15)) >> _U64(20)
    i = np.int64(h & _U64(mask))
    free = -1
    while True:
        k = table[i]
        if k == key:
            return i
        if k == _EMPTY:
            return i if free < 0 else free
        if k == _GONE and free < 0:
            free = i
        i = (i + 1) & mask


@njit
def _new_table(n_edges):
    size = 1
    while size < 2 * n_edges + 16:
        size *= 2
    return np.full(size, _EMPTY, dtype=np.int64)


@njit(inline="always")
def _key(u, v, n):
    return min(u, v) * n + max(u, v)


@njit(inline="always")
def _has(table, key):
    return table[_slot(table, key)] == key


@njit(inline="always")
def _add(table, key):
    table[_slot(table, key)] = key


@njit(inline="always")
def _remove(table, key):
    i = _slot(table, key)
    if table[i] == key:
        table[i] = _GONE


@njit
def _table_edges(table, n):
    keys = table[table >= 0]
    return keys // n, keys % n


# ---------------------------------------------------------------------------- CSR assembly
@njit(parallel=True, cache=True)
def edges_to_csr(n, us, vs):
    """Undirected simple edges ``(us[e], vs[e])`` (no duplicates, no loops) -> indptr, indices
    with every row sorted."""
    deg = np.zeros(n, dtype=np.int64)
    for e in range(us.shape[0]):
        deg[us[e]] += 1
        deg[vs[e]] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        indptr[i + 1] = indptr[i] + deg[i]
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[n], dtype=np.int64)
    for e in range(us.shape[0]):
        u, v = us[e], vs[e]
        indices[fill[u]] = v
        fill[u] += 1
        indices[fill[v]] = u
        fill[v] += 1
    for i in prange(n):
        indices[indptr[i] : indptr[i + 1]].sort()
    return indptr, indices


@njit(cache=True)
def upper_to_csr(n, up_ptr, up_idx):
    """Symmetric CSR from the upper triangle (row ``u`` lists its sorted neighbours ``> u``)."""
    deg = np.zeros(n, dtype=np.int64)
    for u in range(n):
        deg[u] += up_ptr[u + 1] - up_ptr[u]
        for e in range(up_ptr[u], up_ptr[u + 1]):
            deg[up_idx[e]] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        indptr[i + 1] = indptr[i] + deg[i]
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[n], dtype=np.int64)
    for u in range(n):  # ascending u: every row gets its smaller neighbours in order
        for e in range(up_ptr[u], up_ptr[u + 1]):
            v = up_idx[e]
            indices[fill[v]] = u
            fill[v] += 1
        for e in range(up_ptr[u], up_ptr[u + 1]):  # then its larger ones, already sorted
            indices[fill[u]] = up_idx[e]
            fill[u] += 1
    return indptr, indices


# ---------------------------------------------------------------------------- independent edges
@njit(inline="always")
def _row_pass(u, starts, block_of, probs, k0, k1, out, write):
    """Neighbours ``v > u`` of node ``u``: each block ``b`` of nodes (``starts[b]`` to
    ``starts[b + 1]``) is skipped through geometrically with probability ``probs[bu, b]``.
    Writes them to ``out`` when ``write``; returns how many."""
    bu = block_of[u]
    count, draw = 0, 0
    a_ = _U64(u)
    for b in range(bu, starts.shape[0] - 1):
        lo, hi = max(u + 1, starts[b]), starts[b + 1]
        p = probs[bu, b]
        if lo >= hi or p <= 0.0:
            continue
        if p >= 1.0:
            for v in range(lo, hi):
                if write:
                    out[count] = v
                count += 1
            continue
        lp = math.log1p(-p)
        v = lo - 1
        while True:
            w0, w1, _, _ = philox4x32(_U64(draw), a_, _U64(b), _U64(0), k0, k1)
            draw += 1
            # compared as a float first (floor(q) >= m iff q >= m for an integer m): with a
            # tiny p the skip is beyond any int64, or inf
            q = math.log(uniform53(w0, w1)) / lp
            if q >= hi - v - 1:
                break
            v += 1 + np.int64(math.floor(q))
            if write:
                out[count] = v
            count += 1
    return count


@njit(parallel=True, cache=True)
def gnp_rows(n, starts, block_of, probs, k0, k1):
    """Independent edges: ``u < v`` linked with probability ``probs[block u, block v]``.

    ``starts`` int64 (B + 1,) block boundaries, ``block_of`` int64 (n,), ``probs`` float64
    (B, B) symmetric. Row ``u`` draws from its own stream, so the graph does not depend on the
    thread count. Returns the upper triangle ``(up_ptr, up_idx)`` (see :func:`upper_to_csr`).
    """
    counts = np.zeros(n, dtype=np.int64)
    dummy = np.empty(0, dtype=np.int64)
    for u in prange(n):
        counts[u] = _row_pass(u, starts, block_of, probs, k0, k1, dummy, False)
    up_ptr = np.zeros(n + 1, dtype=np.int64)
    for u in range(n):
        up_ptr[u + 1] = up_ptr[u] + counts[u]
    up_idx = np.empty(up_ptr[n], dtype=np.int64)
    for u in prange(n):
        _row_pass(u, starts, block_of, probs, k0, k1, up_idx[up_ptr[u] : up_ptr[u + 1]], True)
    return up_ptr, up_idx


# ---------------------------------------------------------------------------- sequential models
@njit(cache=True)
def watts_strogatz(n, k, p, k0, k1):
    """networkx's ``watts_strogatz_graph``: a ring lattice (each node linked to ``k / 2``
    neighbours on each side), then for ``j = 1 .. k/2`` and ``u = 0 .. n-1`` in order the edge
    ``(u, u + j)`` is, with probability ``p``, replaced by ``(u, w)``, ``w`` uniform among the
    nodes that are neither ``u`` nor its neighbours (skipped when ``u`` has degree n - 1).
    Returns the edges ``(us, vs)``."""
    half = k // 2
    table = _new_table(n * half)
    deg = np.full(n, 2 * half, dtype=np.int64)
    for j in range(1, half + 1):
        for u in range(n):
            _add(table, _key(u, (u + j) % n, n))
    draw = 0
    for j in range(1, half + 1):
        for u in range(n):
            v = (u + j) % n
            r = _uniform(k0, k1, 0, draw)
            draw += 1
            if r >= p:
                continue
            w = _below(k0, k1, 0, draw, n)
            draw += 1
            skip = False
            while w == u or _has(table, _key(u, w, n)):
                w = _below(k0, k1, 0, draw, n)
                draw += 1
                if deg[u] >= n - 1:
                    skip = True
                    break
            if not skip:
                _remove(table, _key(u, v, n))
                _add(table, _key(u, w, n))
                deg[v] -= 1
                deg[w] += 1
    return _table_edges(table, n)


@njit(cache=True)
def barabasi_albert(n, m, k0, k1):
    """networkx's ``barabasi_albert_graph``: a star on nodes 0..m, then each new node links to
    ``m`` distinct nodes drawn uniformly from the list of edge endpoints so far (preferential
    attachment). Returns the edges ``(us, vs)``."""
    n_edges = m + (n - m - 1) * m
    us = np.empty(n_edges, dtype=np.int64)
    vs = np.empty(n_edges, dtype=np.int64)
    repeated = np.empty(2 * n_edges, dtype=np.int64)
    for i in range(m):
        us[i], vs[i] = 0, i + 1
        repeated[i], repeated[m + i] = 0, i + 1
    e, size, draw = m, 2 * m, 0
    targets = np.empty(m, dtype=np.int64)
    for source in range(m + 1, n):
        found = 0
        while found < m:
            x = repeated[_below(k0, k1, 1, draw, size)]
            draw += 1
            new = True
            for t in range(found):
                if targets[t] == x:
                    new = False
            if new:
                targets[found] = x
                found += 1
        for t in range(m):
            us[e], vs[e] = source, targets[t]
            e += 1
            repeated[size] = targets[t]
            repeated[size + m] = source
            size += 1
        size += m
    return us, vs


@njit(cache=True)
def _suitable(table, pot_nodes, n):
    """networkx's check: some pair of distinct nodes with stubs left is not yet an edge."""
    k = pot_nodes.shape[0]
    if k == 0:
        return True
    for i in range(k):
        for j in range(i):
            if not _has(table, _key(pot_nodes[i], pot_nodes[j], n)):
                return True
    return False


@njit(cache=True)
def _try_regular(n, d, k0, k1, attempt):
    """One attempt of networkx's pairing algorithm; (True, edges) or (False, ...)."""
    table = _new_table(n * d // 2)
    stubs = np.empty(n * d, dtype=np.int64)
    for r in range(d):
        stubs[r * n : (r + 1) * n] = np.arange(n)
    pot = np.zeros(n, dtype=np.int64)
    draw, rnd = 0, 0
    ok = True
    while stubs.shape[0] > 0:
        for i in range(stubs.shape[0] - 1, 0, -1):  # Fisher-Yates shuffle
            w0, w1, _, _ = philox4x32(_U64(draw), _U64(attempt), _U64(rnd), _U64(2), k0, k1)
            draw += 1
            j = min(np.int64(uniform53(w0, w1) * (i + 1)), i)
            stubs[i], stubs[j] = stubs[j], stubs[i]
        rnd += 1
        touched = []
        for e in range(stubs.shape[0] // 2):
            s1, s2 = stubs[2 * e], stubs[2 * e + 1]
            key = _key(s1, s2, n)
            if s1 != s2 and not _has(table, key):
                _add(table, key)
            else:
                for s in (s1, s2):
                    if pot[s] == 0:
                        touched.append(s)
                    pot[s] += 1
        nodes = np.array(touched, dtype=np.int64) if len(touched) else np.empty(0, np.int64)
        if not _suitable(table, nodes, n):
            ok = False
            break
        total = 0
        for s in nodes:
            total += pot[s]
        stubs = np.empty(total, dtype=np.int64)
        f = 0
        for s in nodes:
            for _ in range(pot[s]):
                stubs[f] = s
                f += 1
            pot[s] = 0
    us, vs = _table_edges(table, n)
    return ok, us, vs


@njit(cache=True)
def random_regular(n, d, k0, k1):
    """networkx's ``random_regular_graph``: stubs paired at random, round after round, failed
    pairs (loops, repeats) re-paired; an attempt with no usable pair left starts over."""
    attempt = 0
    while True:
        ok, us, vs = _try_regular(n, d, k0, k1, attempt)
        if ok:
            return us, vs
        attempt += 1
