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
def _rows(params, L, d_in, d_out, Z, lo, hi):
    """Z[p] for rows lo..hi-1 (see the module docstring)."""
    n = d_in + 1
    t = np.empty(n)
    for p in range(lo, hi):
        row = params[p]
        out = Z[p]
        for k in range(d_out):
            for i in range(d_in):
                t[i] = np.float64(row[i * d_out + k])
            t[d_in] = np.float64(row[d_in * d_out + k])
            for j in range(n):
                acc = t[0] * L[0, j]
                for i in range(1, n):
                    acc = acc + t[i] * L[i, j]
                out[k * n + j] = acc


@njit(parallel=True, **_JIT)
def affine_coordinates(params, L, d_in, d_out, Z):
    """Z (P, (d_in + 1) d_out) float64, filled: the coordinates of every row of params
    (P, n_params) float32 or float64 (W then b, as in a Population row), with L
    (d_in + 1, d_in + 1) float64. Parallel over blocks of :data:`ROWS` rows."""
    P = params.shape[0]
    for c in prange((P + ROWS - 1) // ROWS):
        _rows(params, L, d_in, d_out, Z, c * ROWS, min(P, (c + 1) * ROWS))


@njit(**_JIT)
def affine_coordinates_serial(params, L, d_in, d_out, Z):
    """:func:`affine_coordinates` in one thread."""
    _rows(params, L, d_in, d_out, Z, 0, params.shape[0])
