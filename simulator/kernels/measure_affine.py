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

from simulator.kernels.elementary import from_bits

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
def _rows_one_output(params, L, d_in, Z, lo, hi, buf, C, var):
    """:func:`_rows` of agents with one output and one or two inputs (q = 2 or 3: the
    polarization scenario's), a row at a time with its parameters and the factor's entries in
    registers: the same operations in the same order (3.6x faster than by columns for q = 2,
    whose strided loads did not vectorize well). With ``var`` not empty, also each row's
    output variance over the probe ``var[r] = sum_ij C[i, j] (w_i w_j)`` (i, j in order)."""
    spread = var.shape[0] > 0
    if d_in == 1:
        l00, l01, l10, l11 = L[0, 0], L[0, 1], L[1, 0], L[1, 1]
        c00 = C[0, 0]
        for r in range(hi - lo):
            p0, p1 = np.float64(params[lo + r, 0]), np.float64(params[lo + r, 1])
            z0 = p0 * l00 + p1 * l10
            z1 = p0 * l01 + p1 * l11
            Z[lo + r, 0], Z[lo + r, 1] = z0, z1
            buf[0, r], buf[1, r] = z0, z1
            if spread:
                var[r] = c00 * (p0 * p0)
        return
    l00, l01, l02, l11, l12 = L[0, 0], L[0, 1], L[0, 2], L[1, 1], L[1, 2]
    l10, l20, l21, l22 = L[1, 0], L[2, 0], L[2, 1], L[2, 2]
    c00, c01, c10, c11 = C[0, 0], C[0, 1], C[1, 0], C[1, 1]
    for r in range(hi - lo):
        p0, p1 = np.float64(params[lo + r, 0]), np.float64(params[lo + r, 1])
        p2 = np.float64(params[lo + r, 2])
        z0 = p0 * l00 + p1 * l10 + p2 * l20
        z1 = p0 * l01 + p1 * l11 + p2 * l21
        z2 = p0 * l02 + p1 * l12 + p2 * l22
        Z[lo + r, 0], Z[lo + r, 1], Z[lo + r, 2] = z0, z1, z2
        buf[0, r], buf[1, r], buf[2, r] = z0, z1, z2
        if spread:
            var[r] = c00 * (p0 * p0) + c01 * (p0 * p1) + c10 * (p1 * p0) + c11 * (p1 * p1)


@njit(inline="always")
def _by_rows(d_in, d_out):
    """Whether :func:`_rows` goes a row at a time (:func:`_rows_one_output`)."""
    return d_out == 1 and d_in <= 2


@njit(inline="always")
def _rows(params, L, d_in, d_out, Z, lo, hi, buf, C, var):
    """Z[p] for rows lo..hi-1, at most ROWS (see the module docstring), and the same
    coordinates by columns in ``buf`` (q, ROWS) float64: each coordinate's sums a column at a
    time (the loops over rows vectorize), then written row by row; one output of one or two
    inputs by rows (:func:`_rows_one_output`, which also fills ``var`` when it is not
    empty)."""
    if _by_rows(d_in, d_out):
        _rows_one_output(params, L, d_in, Z, lo, hi, buf, C, var)
        return
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
        _rows(params, L, d_in, d_out, Z, c * ROWS, min(P, (c + 1) * ROWS), buf, L, buf[0, :0])


@njit(**_JIT)
def affine_coordinates_serial(params, L, d_in, d_out, Z):
    """:func:`affine_coordinates` in one thread (the same blocks)."""
    P, q = Z.shape
    buf = np.empty((q, ROWS))
    for c in range((P + ROWS - 1) // ROWS):
        _rows(params, L, d_in, d_out, Z, c * ROWS, min(P, (c + 1) * ROWS), buf, L, buf[0, :0])


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
    an output's variance (already there when :func:`_rows` went by rows). Every loop over the
    rows runs on contiguous columns (vectorized)."""
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
    # the largest error from its bits: squares' sums are >= 0 (or NaN, which the total shows),
    # ordered as their int64 patterns, whose maximum vectorizes
    bits = err[:m].view(np.int64)
    top = bits[0]
    for r in range(1, m):
        top = max(top, bits[r])
    spread = 0.0
    for k in range(d_out):  # output k's variance over the probe: W_k^T C W_k
        if not _by_rows(d_in, d_out):
            for r in range(m):
                var[r] = 0.0
            for i in range(d_in):
                for j in range(d_in):
                    c_ij, a, b = C[i, j], i * d_out + k, j * d_out + k
                    for r in range(m):
                        w_i, w_j = np.float64(params[lo + r, a]), np.float64(params[lo + r, b])
                        var[r] += c_ij * (w_i * w_j)
        for r in range(m):
            spread += np.sqrt(max(var[r], 0.0))
    out[q + DEV] = second
    out[q + ERR] = total
    out[q + WORST] = from_bits(top)
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
        _rows(params, L, d_in, d_out, Z, lo, hi, buf, C, scratch[1])
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
        _rows(params, L, d_in, d_out, Z, lo, hi, buf, C, scratch[1])
        _block_stats(params, C, d_in, d_out, truth, buf, lo, hi, blocks[c], scratch)
    _combine(blocks, P, out)
