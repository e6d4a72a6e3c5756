"""Affine agents' exact function coordinates, one pass over the parameter rows.

An affine agent ``f(x) = W^T x + b`` (W (d_in, d_out), b (d_out,), stored as one row: W row
by row, then b) has the coordinates ``z[k (d_in + 1) + j] = sum_i t_k[i] L[i, j]`` with
``t_k = [W[:, k]; b_k]`` and L the Cholesky factor of the probe's second-moment matrix (see
:mod:`simulator.metrics.linear`). Each row is read once, widened to float64, and its
``q = (d_in + 1) d_out`` coordinates are summed over i in increasing order with a multiply
and an add each (no fused multiply-add, no reassociation): the same bits on any number of
threads and in the serial twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ROWS", "affine_coordinates", "affine_coordinates_serial"]

_JIT = {"cache": True, "error_model": "numpy"}
ROWS = 1024  # rows per parallel iteration


@njit(inline="always")
def _rows(params, L, d_in, d_out, Z, lo, hi, buf):
    """Z[p] for rows lo..hi-1, at most ROWS (see the module docstring): each coordinate's sums
    a column at a time in ``buf`` (q, ROWS) float64 (the loops over rows vectorize, even for
    the one or two inputs of the scenarios' affine agents), then written row by row."""
    n = d_in + 1
    m = hi - lo
    for k in range(d_out):
        for j in range(n):
            col = buf[k * n + j]
            w = L[0, j]
            for r in range(m):
                col[r] = np.float64(params[lo + r, k]) * w
            for i in range(1, n):
                w = L[i, j]
                at = i * d_out + k  # W[i, k], then b_k at i = d_in
                for r in range(m):
                    col[r] = col[r] + np.float64(params[lo + r, at]) * w
    for r in range(m):
        for c in range(n * d_out):
            Z[lo + r, c] = buf[c, r]


@njit(parallel=True, **_JIT)
def affine_coordinates(params, L, d_in, d_out, Z):
    """Z (P, (d_in + 1) d_out) float64, filled: the coordinates of every row of params
    (P, n_params) float32 or float64 (W then b, as in a Population row), with L
    (d_in + 1, d_in + 1) float64. Parallel over blocks of :data:`ROWS` rows."""
    P, q = Z.shape
    for c in prange((P + ROWS - 1) // ROWS):
        buf = np.empty((q, ROWS))
        _rows(params, L, d_in, d_out, Z, c * ROWS, min(P, (c + 1) * ROWS), buf)


@njit(**_JIT)
def affine_coordinates_serial(params, L, d_in, d_out, Z):
    """:func:`affine_coordinates` in one thread (the same blocks)."""
    P, q = Z.shape
    buf = np.empty((q, ROWS))
    for c in range((P + ROWS - 1) // ROWS):
        _rows(params, L, d_in, d_out, Z, c * ROWS, min(P, (c + 1) * ROWS), buf)
