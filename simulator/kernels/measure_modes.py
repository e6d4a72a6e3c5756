"""How generated samples fall on the modes of a mixture: one pass over every agent's samples.

For each sample the Euclidean distance to every mode is the square root of its squared
differences summed over the coordinates in order (NumPy's ``norm`` over a short last axis),
in float64 from samples of either float dtype; the nearest mode is the first of the least
distance, and the sample counts as a hit of that mode when the distance is below the radius.
Parallel over blocks of agents, each writing only its own rows: the same counts on any number
of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ROWS", "mode_hits"]

_JIT = {"cache": True, "error_model": "numpy"}
ROWS = 16  # agents per parallel iteration


@njit(parallel=True, **_JIT)
def mode_hits(samples, centers, radius, hits):
    """Fill hits (P, M) float64 with each agent's number of hits on each mode.

    samples : float (P, n, d); centers : float64 (M, d), M >= 1; radius : float.
    Returns the number of samples within ``radius`` of their nearest mode (all agents).
    """
    P, n, d = samples.shape
    M = centers.shape[0]
    n_blocks = (P + ROWS - 1) // ROWS
    # np.empty and a plain loop for the total: np.zeros and good.sum() would each be a parallel
    # loop of their own, cut into the pieces sized for the blocks' loop (see
    # simulator.kernels.social.confident_edges)
    good = np.empty(n_blocks, dtype=np.int64)
    for blk in prange(n_blocks):
        count = 0
        for i in range(blk * ROWS, min(P, (blk + 1) * ROWS)):
            row = hits[i]
            for m in range(M):
                row[m] = 0.0
            for s in range(n):
                x = samples[i, s]
                best, nearest = np.inf, 0
                for m in range(M):
                    acc = 0.0
                    for k in range(d):
                        e = np.float64(x[k]) - centers[m, k]
                        acc += e * e
                    dist = np.sqrt(acc)
                    if dist < best:
                        best, nearest = dist, m
                if best < radius:
                    row[nearest] += 1.0
                    count += 1
        good[blk] = count
    total = 0
    for blk in range(n_blocks):
        total += good[blk]
    return total
