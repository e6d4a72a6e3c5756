"""Affine agents' exact function coordinates, one pass over the parameter rows.

An affine agent ``f(x) = W^T x + b`` (W (d_in, d_out), b (d_out,), stored as one row: W row
by row, then b) has the coordinates ``z[k (d_in + 1) + j] = sum_i t_k[i] L[i, j]`` with
``t_k = [W[:, k]; b_k]`` and L the Cholesky factor of the probe's second-moment matrix (see
:mod:`simulator.metrics.linear`). Each row is read once, widened to float64, and its
``q = (d_in + 1) d_out`` coordinates are summed over i in increasing order with a multiply
and an add each (no fused multiply-add, no reassociation): the same bits on any number of
threads and in the serial twin.

:func:`affine_summary` computes the same coordinates and, while a block's are in cache, the
function-space statistics of every agent (distances to the mean function and to a truth's
affine part, the outputs' spreads over the probe), reduced in block order: a collect measures
affine agents exactly without evaluating a network on the probe.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "ROWS",
    "affine_coordinates",
    "affine_coordinates_serial",
    "affine_summary",
    "affine_summary_serial",
]

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


# affine_summary's results after the q mean coordinates: the sum over agents of the squared
# distances to the mean coordinates, of the squared distances to the truth's coordinates, the
# largest of those, and the sum of the output spreads (over agents and outputs, each output's
# standard deviation over the probe).
DEV, ERR, WORST, SPREAD = 0, 1, 2, 3
N_SUMS = 4
# The block statistics' sums over rows may be reassociated (vectorized): a block's machine code
# is the same on any number of threads, so are its bits. The coordinates keep _rows' flags
# (a test compares them with affine_coordinates').
_SUMS_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract"}}


@njit(**_SUMS_JIT)
def _block_stats(params, C, d_in, d_out, truth, buf, lo, hi, out, scratch):
    """Statistics of rows lo..hi-1 (at most ROWS) from their coordinates ``buf`` (q, ROWS) by
    columns: out (q + N_SUMS,) = the column sums, then the sum of squared distances to the
    block's own mean, of squared distances to ``truth``, their largest, and the sum of output
    spreads ``sqrt(W_k^T C W_k)``. ``scratch`` (2, ROWS) float64: each row's squared error and
    an output's variance. Every loop over the rows runs on contiguous columns (vectorized)."""
    q = buf.shape[0]
    m = hi - lo
    err, var = scratch[0], scratch[1]
    for r in range(m):
        err[r] = 0.0
    second = 0.0
    for c in range(q):
        col = buf[c]
        total = 0.0
        for r in range(m):
            total += col[r]
        out[c] = total
        mean, target = total / m, truth[c]
        for r in range(m):
            u = col[r] - mean
            v = col[r] - target
            second += u * u
            err[r] += v * v
    total = 0.0
    for r in range(m):
        total += err[r]
    worst = err[0]
    for r in range(1, m):
        worst = max(worst, err[r])
    spread = 0.0
    for k in range(d_out):  # output k's variance over the probe: W_k^T C W_k
        for r in range(m):
            var[r] = 0.0
        for i in range(d_in):
            for j in range(d_in):
                c_ij, a, b = C[i, j], i * d_out + k, j * d_out + k
                for r in range(m):
                    var[r] += c_ij * (np.float64(params[lo + r, a]) * np.float64(params[lo + r, b]))
        for r in range(m):
            spread += np.sqrt(max(var[r], 0.0))
    out[q + DEV] = second
    out[q + ERR] = total
    out[q + WORST] = worst
    out[q + SPREAD] = spread


@njit(**_SUMS_JIT)
def _combine(blocks, P, out):
    """out (q + N_SUMS,) from the blocks' statistics (n_blocks, q + N_SUMS), in block order:
    the mean coordinates; the squared distances to them from each block's own (Chan et al.'s
    pairwise update: ``sum_b second_b + n_b ||mean_b - mean||^2``, no cancellation between
    large sums); the other sums added, the largest kept."""
    n_blocks = blocks.shape[0]
    q = blocks.shape[1] - N_SUMS
    for c in range(q):
        total = blocks[0, c]
        for b in range(1, n_blocks):
            total += blocks[b, c]
        out[c] = total / P
    second = 0.0
    for b in range(n_blocks):
        n_b = min(P, (b + 1) * ROWS) - b * ROWS
        shift = 0.0
        for c in range(q):
            d = blocks[b, c] / n_b - out[c]
            shift += d * d
        second += blocks[b, q + DEV] + n_b * shift
    out[q + DEV] = second
    out[q + ERR] = blocks[0, q + ERR]
    out[q + WORST] = blocks[0, q + WORST]
    out[q + SPREAD] = blocks[0, q + SPREAD]
    for b in range(1, n_blocks):
        out[q + ERR] += blocks[b, q + ERR]
        out[q + WORST] = max(out[q + WORST], blocks[b, q + WORST])
        out[q + SPREAD] += blocks[b, q + SPREAD]


@njit(parallel=True, **_JIT)
def affine_summary(params, L, d_in, d_out, C, truth, Z, blocks, out):
    """:func:`affine_coordinates` (Z filled, the same bits) and, while each block's coordinates
    are in cache, the function-space statistics of every agent.

    C (d_in, d_in) float64: the probe inputs' covariance; truth (q,) float64: the coordinates
    of the truth's affine part (:func:`simulator.metrics.linear.truth_coordinates`). blocks
    (n_blocks, q + N_SUMS) float64 scratch, n_blocks = ceil(P / ROWS). Fills out
    (q + N_SUMS,): the mean coordinates, then sum_i ||z_i - mean||^2, sum_i ||z_i - truth||^2,
    max_i ||z_i - truth||^2 and sum_i sum_k sqrt(W_ik^T C W_ik) (see :func:`_combine`). Blocks
    of ROWS rows, reduced in block order: the same bits on any number of threads."""
    P, q = Z.shape
    for c in prange(blocks.shape[0]):
        buf = np.empty((q, ROWS))
        scratch = np.empty((2, ROWS))
        lo, hi = c * ROWS, min(P, (c + 1) * ROWS)
        _rows(params, L, d_in, d_out, Z, lo, hi, buf)
        _block_stats(params, C, d_in, d_out, truth, buf, lo, hi, blocks[c], scratch)
    _combine(blocks, P, out)


@njit(**_JIT)
def affine_summary_serial(params, L, d_in, d_out, C, truth, Z, blocks, out):
    """:func:`affine_summary` in one thread (the same blocks)."""
    P, q = Z.shape
    buf = np.empty((q, ROWS))
    scratch = np.empty((2, ROWS))
    for c in range(blocks.shape[0]):
        lo, hi = c * ROWS, min(P, (c + 1) * ROWS)
        _rows(params, L, d_in, d_out, Z, lo, hi, buf)
        _block_stats(params, C, d_in, d_out, truth, buf, lo, hi, blocks[c], scratch)
    _combine(blocks, P, out)
