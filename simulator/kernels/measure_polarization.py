"""The exact Esteban-Ray sum over every pair of groups, in one parallel kernel.

``ER = sum_{g != h} pi_g^2 pi_h d_gh = sum_{g < h} pi_g pi_h (pi_g + pi_h) d_gh`` with ``d_gh``
the Euclidean distance between the groups' mean rows, each distance from its float64
differences (no Gram-matrix shortcut, whose cancellation would lose near-equal centroids).

The groups go in tiles of :data:`TILE` rows. A pair of tiles is one pass over the columns with
16 sums side by side (each row of one tile against each row of the other: 8 rows read per
column for 16 distances; four at a time, against one row, read 5 rows for 4 distances and was
half as fast: 1,000 groups of 1,600 columns, one thread, 109 -> 46-50 ms). The row tiles go
in blocks of :data:`BLOCK_TILES`; one parallel iteration takes a block from each end, one with
many tiles above it and one with few, so the iterations cost about the same (two threads:
81 -> 22 ms). Every group ``g`` accumulates its own term over ``h > g`` in increasing order and
is written only by its block: the same numbers on any number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.gemm import wide_vectors
from simulator.kernels.measure import pair_rows
from simulator.kernels.numpy_sum import pairwise_sum

__all__ = ["BLOCK_TILES", "TILE", "er_terms", "er_terms_serial", "split_er"]

_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract"}}
TILE = 4  # rows of C per tile
BLOCK_TILES = 8  # row tiles per parallel iteration


@njit(inline="always")
def _inside(C, share, out, i0, n):
    """out[g] = the terms of the pairs inside the tile of rows i0 .. i0 + n - 1 (its first
    terms: these h are the smallest above g)."""
    D = C.shape[1]
    for k in range(n):
        out[i0 + k] = 0.0
    for k in range(n):
        for m in range(k + 1, n):
            acc = 0.0
            for t in range(D):
                d = C[i0 + k, t] - C[i0 + m, t]
                acc += d * d
            g, h = i0 + k, i0 + m
            out[g] += share[g] * share[h] * (share[g] + share[h]) * np.sqrt(acc)


@njit(**_JIT)
def _cross(C, share, out, i0, h0):
    """out[i0 + k] += the terms of the pairs (i0 + k, h0 + m), k, m < TILE, h0 + m < G, in
    increasing m (a full tile of rows at i0; rows past G at h0 repeat the last row, and their
    sums are not used)."""
    wide_vectors()
    G, D = C.shape
    h1, h2, h3 = min(h0 + 1, G - 1), min(h0 + 2, G - 1), min(h0 + 3, G - 1)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = 0.0
    for t in range(D):
        a0, a1, a2, a3 = C[i0, t], C[i0 + 1, t], C[i0 + 2, t], C[i0 + 3, t]
        b0, b1, b2, b3 = C[h0, t], C[h1, t], C[h2, t], C[h3, t]
        d = a0 - b0
        s00 += d * d
        d = a0 - b1
        s01 += d * d
        d = a0 - b2
        s02 += d * d
        d = a0 - b3
        s03 += d * d
        d = a1 - b0
        s10 += d * d
        d = a1 - b1
        s11 += d * d
        d = a1 - b2
        s12 += d * d
        d = a1 - b3
        s13 += d * d
        d = a2 - b0
        s20 += d * d
        d = a2 - b1
        s21 += d * d
        d = a2 - b2
        s22 += d * d
        d = a2 - b3
        s23 += d * d
        d = a3 - b0
        s30 += d * d
        d = a3 - b1
        s31 += d * d
        d = a3 - b2
        s32 += d * d
        d = a3 - b3
        s33 += d * d
    sums = ((s00, s01, s02, s03), (s10, s11, s12, s13), (s20, s21, s22, s23), (s30, s31, s32, s33))
    n = min(TILE, G - h0)
    for k in range(TILE):
        g = i0 + k
        pg = share[g]
        row = sums[k]
        for m in range(n):
            ph = share[h0 + m]
            out[g] += pg * ph * (pg + ph) * np.sqrt(row[m])


@njit(inline="always")
def _block(C, share, out, b):
    """out[g] of the groups of row tiles b BLOCK_TILES .. (b + 1) BLOCK_TILES - 1: the pairs
    inside each tile, then the tiles above in increasing order. Only the last tile can be
    partial, and it has no tile above."""
    G = C.shape[0]
    n_tiles = (G + TILE - 1) // TILE
    lo, hi = b * BLOCK_TILES, min(n_tiles, (b + 1) * BLOCK_TILES)
    for ti in range(lo, hi):
        _inside(C, share, out, ti * TILE, min(TILE, G - ti * TILE))
    for th in range(lo + 1, n_tiles):
        for ti in range(lo, min(hi, th)):
            _cross(C, share, out, ti * TILE, th * TILE)


@njit(parallel=True, **_JIT)
def er_terms(C, share, out):
    """out[g] (float64 (G,), filled) = ``sum_{h > g} pi_g pi_h (pi_g + pi_h) ||C_g - C_h||``
    for group means C (G, D) float64 and shares ``share`` (G,) float64; ER is ``out.sum()``.
    Parallel over pairs of blocks of :data:`BLOCK_TILES` tiles of :data:`TILE` groups."""
    n_tiles = (C.shape[0] + TILE - 1) // TILE
    n_blocks = (n_tiles + BLOCK_TILES - 1) // BLOCK_TILES
    for c in prange((n_blocks + 1) // 2):  # a block with many tiles above, one with few
        _block(C, share, out, c)
        if n_blocks - 1 - c != c:
            _block(C, share, out, n_blocks - 1 - c)


@njit(**_JIT)
def er_terms_serial(C, share, out):
    """:func:`er_terms` in one thread."""
    n_tiles = (C.shape[0] + TILE - 1) // TILE
    for b in range((n_tiles + BLOCK_TILES - 1) // BLOCK_TILES):
        _block(C, share, out, b)


# The split estimate of :func:`simulator.metrics.dynamics.polarization_of_rows`, in one call:
# NumPy's operations in NumPy's order (no fast-math), the generator's draws in its order.
_EXACT = {"cache": True, "error_model": "numpy", "fastmath": False}


@njit(**_EXACT)
def _sum(a):
    """``a.sum()`` of a float64 1-D array, bit for bit (0.0 when empty)."""
    return pairwise_sum(a, 0, a.shape[0]) if a.shape[0] else 0.0


@njit(**_EXACT)
def _inverse_cdf(weight):
    """``np.cumsum(weight / weight.sum())``, then divided by its last value (exactly 1 at
    the end), as NumPy computes them."""
    total = _sum(weight)
    cdf = np.empty(weight.shape[0])
    acc = 0.0
    for i in range(weight.shape[0]):
        acc = weight[i] / total if i == 0 else acc + weight[i] / total
        cdf[i] = acc
    last = cdf[-1]
    for i in range(cdf.shape[0]):
        cdf[i] /= last
    return cdf


@njit(**_EXACT)
def _draw(gen, pool, cdf, size):
    """``pool[np.searchsorted(cdf, gen.random(size), side="right")]``."""
    return pool[np.searchsorted(cdf, gen.random(size), side="right")]


@njit(**_EXACT)
def _stratum(gen, C, share, g_weight, g_pool, h_pool, n_pairs):
    """Mean distance over n_pairs pairs: g from g_pool with prob ~ g_weight, h != g from h_pool
    with prob ~ share (a drawn h equal to g is redrawn, up to 64 rounds)."""
    g = _draw(gen, g_pool, _inverse_cdf(g_weight), n_pairs)
    h_cdf = _inverse_cdf(share[h_pool])
    h = _draw(gen, h_pool, h_cdf, n_pairs)
    for _ in range(64):
        same = g == h
        n_same = same.sum()
        if n_same == 0:
            break
        new = _draw(gen, h_pool, h_cdf, n_same)
        j = 0
        for i in range(n_pairs):
            if same[i]:
                h[i] = new[j]
                j += 1
    keep = g != h
    n = keep.sum()
    if n == 0:
        return 0.0
    out = np.empty(n)
    pair_rows(C, g[keep], h[keep], out, 0, n)
    return _sum(out) / n


@njit(**_EXACT)
def split_er(C, share, k, quarter, gen):
    """Esteban-Ray sum of groups with mean rows C (G, D) float64 and shares (G,): the pairs
    among the k largest groups exact (:func:`er_terms_serial`), the rest estimated from
    ``quarter`` pairs in each of two strata drawn from ``gen`` (a numpy Generator, advanced as
    :func:`simulator.metrics.dynamics._split_er` advances it: the same draws, the same value)."""
    G = share.shape[0]
    order = np.argsort(-share, kind="mergesort")  # stable
    top, rest = np.sort(order[:k]), np.sort(order[k:])
    terms = np.empty(top.shape[0])
    er_terms_serial(np.ascontiguousarray(C[top]), np.ascontiguousarray(share[top]), terms)
    total = _sum(terms)
    s_rest = share[rest]
    w1 = s_rest * s_rest * (1.0 - s_rest)
    if _sum(w1) > 0:
        total += _sum(w1) * _stratum(gen, C, share, w1, rest, np.arange(G), quarter)
    s_top = share[top]
    w2 = s_top * s_top
    if _sum(s_rest) > 0:
        mean = _stratum(gen, C, share, w2, top, rest, quarter)
        total += (_sum(w2) * _sum(s_rest)) * mean
    return total
