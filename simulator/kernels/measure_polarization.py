"""The exact Esteban-Ray sum over every pair of groups, in one parallel kernel.

``ER = sum_{g != h} pi_g^2 pi_h d_gh = sum_{g < h} pi_g pi_h (pi_g + pi_h) d_gh`` with ``d_gh``
the Euclidean distance between the groups' mean rows, each distance from its float64
differences (no Gram-matrix shortcut, whose cancellation would lose near-equal centroids).
Rows are taken four at a time, so each other row is read once per four distances; every group
``g`` accumulates its own term over ``h > g`` in increasing order and writes only its own slot:
the same numbers on any number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["TILE", "er_terms", "er_terms_serial"]

_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract"}}
TILE = 4  # rows of C whose distances to a fifth row are computed in one pass over it


@njit(inline="always")
def _tile(C, share, out, i0):
    """out[g] for the groups g = i0 .. i0 + TILE - 1 (those that exist)."""
    G, D = C.shape
    n = min(TILE, G - i0)
    for k in range(n):
        out[i0 + k] = 0.0
    for k in range(n):  # pairs inside the tile
        a = C[i0 + k]
        for m in range(k + 1, n):
            b = C[i0 + m]
            acc = 0.0
            for t in range(D):
                d = a[t] - b[t]
                acc += d * d
            g, h = i0 + k, i0 + m
            out[g] += share[g] * share[h] * (share[g] + share[h]) * np.sqrt(acc)
    if n < TILE:
        return
    r0, r1, r2, r3 = C[i0], C[i0 + 1], C[i0 + 2], C[i0 + 3]
    for h in range(i0 + TILE, G):
        b = C[h]
        s0 = s1 = s2 = s3 = 0.0
        for t in range(D):
            x = b[t]
            d0, d1, d2, d3 = r0[t] - x, r1[t] - x, r2[t] - x, r3[t] - x
            s0 += d0 * d0
            s1 += d1 * d1
            s2 += d2 * d2
            s3 += d3 * d3
        ph = share[h]
        p0, p1, p2, p3 = share[i0], share[i0 + 1], share[i0 + 2], share[i0 + 3]
        out[i0] += p0 * ph * (p0 + ph) * np.sqrt(s0)
        out[i0 + 1] += p1 * ph * (p1 + ph) * np.sqrt(s1)
        out[i0 + 2] += p2 * ph * (p2 + ph) * np.sqrt(s2)
        out[i0 + 3] += p3 * ph * (p3 + ph) * np.sqrt(s3)


@njit(parallel=True, **_JIT)
def er_terms(C, share, out):
    """out[g] (float64 (G,), filled) = ``sum_{h > g} pi_g pi_h (pi_g + pi_h) ||C_g - C_h||``
    for group means C (G, D) float64 and shares ``share`` (G,) float64; ER is ``out.sum()``.
    Parallel over tiles of :data:`TILE` groups."""
    G = C.shape[0]
    for c in prange((G + TILE - 1) // TILE):
        _tile(C, share, out, c * TILE)


@njit(**_JIT)
def er_terms_serial(C, share, out):
    """:func:`er_terms` in one thread."""
    G = C.shape[0]
    for c in range((G + TILE - 1) // TILE):
        _tile(C, share, out, c * TILE)
