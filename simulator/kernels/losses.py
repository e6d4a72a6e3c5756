"""Losses of one agent and dLoss/dz of its output layer, for the kernels of
:mod:`simulator.kernels.mlp` (activations stored transposed, shape ``(width, batch)``).

Definitions: see :mod:`simulator.population`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.activations import F0, F1, HALF, OUT_SOFTMAX, OUT_STEP, SIGMOID, softplus
from simulator.kernels.elementary import exp_nonpositive
from simulator.kernels.gemm import wide_vectors
from simulator.kernels.optim import _as_type_of

MSE, BCE, CROSS_ENTROPY = 0, 1, 2
# as in simulator.kernels.mlp: never nnan/ninf, NaNs must stay visible
_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract", "nsz", "arcp"}}


@njit(**_JIT)
def _scales(batch, n_out, dtype):
    """[1/B, 1/(B K), 2/(B K)] as an array of ``dtype`` (scalars would promote float32)."""
    out = np.empty(3, dtype=dtype)
    out[0] = 1.0 / batch
    out[1] = 1.0 / (batch * n_out)
    out[2] = 2.0 / (batch * n_out)
    return out


@njit(**_JIT)
def _softmax_block(z, a, tmp, lse_wanted):
    """Column-wise softmax over the first axis.

    tmp : (2 B,) scratch; with ``lse_wanted`` (bool) ``tmp[B:]`` holds on return each sample's
    log-sum-exp of ``z`` (the cross-entropy loss and the entropy read it instead of
    exponentiating again); without, its sum of exponentials: the log (a scalar call per sample,
    ~1.8 ns in float32, a fifth of a 2-16-4 network's forward pass per item) is skipped where
    only the outputs are needed (predictions, distillation). The outputs are the same either way.
    """
    wide_vectors()
    d, batch = z.shape
    zmax = tmp[:batch]
    lse = tmp[batch : 2 * batch]
    for b in range(batch):
        zmax[b] = z[0, b]
    for j in range(1, d):
        for b in range(batch):
            zmax[b] = max(zmax[b], z[j, b])
    for j in range(d):
        for b in range(batch):
            a[j, b] = exp_nonpositive(z[j, b] - zmax[b])
    for b in range(batch):
        lse[b] = a[0, b]
    for j in range(1, d):
        for b in range(batch):
            lse[b] += a[j, b]
    for j in range(d):
        for b in range(batch):
            a[j, b] /= lse[b]
    if lse_wanted:
        for b in range(batch):
            lse[b] = zmax[b] + np.log(lse[b])


SUM_PARTS = 4
"""Interleaved partial sums of :func:`squares_in_order` (element e goes to part e mod 4)."""


@njit(cache=True, error_model="numpy", fastmath=False)  # set, or a caller's is inherited
def squares_in_order(d):
    """sum_e d[e]^2 in one fixed order: each square rounded, then added to part e mod 4 while
    e < 4 floor(n / 4), the rest to a fifth part in order; the result is
    ((p0 + p1) + (p2 + p3)) + p4. An agent's MSE loss is this sum over its output errors
    (o - y) in the order of its (K, B) block (output-major) times 1 / (B K), in every kernel
    that reports one: the register tiles, the probe pass and the lanes of
    :mod:`simulator.kernels.lanes` (which add the parts of 16 agents side by side), so
    ``Population.loss``, the probe pass and a training step give the same bits.

    No fast-math, and said so: Numba compiles a function that leaves ``fastmath`` unset with
    the flags of the (fast-math) kernel that first calls it, and reassociation or contraction
    would change this order (measured: 369 of 2,000 random sums differed by an ulp).

    d : float (n,). Returns a scalar of d's dtype.
    """
    n = d.shape[0]
    zero = _as_type_of(0.0, d[0])
    p0, p1, p2, p3, rest = zero, zero, zero, zero, zero
    whole = n // SUM_PARTS * SUM_PARTS
    for e in range(0, whole, SUM_PARTS):
        p0 += d[e] * d[e]
        p1 += d[e + 1] * d[e + 1]
        p2 += d[e + 2] * d[e + 2]
        p3 += d[e + 3] * d[e + 3]
    for e in range(whole, n):
        rest += d[e] * d[e]
    return ((p0 + p1) + (p2 + p3)) + rest


@njit(**_JIT)
def _output_delta(out_kind, loss, z, o, Y, yi, delta, tmp, scales):
    """Loss of one agent and dLoss/dz of its output layer into delta (K, B).

    scales : [1/B, 1/(B K), 2/(B K)] in the data's dtype (see :func:`_scales`).
    tmp : (2 B,) scratch; for the cross-entropy, ``tmp[B:]`` must hold the log-sum-exp left by
    :func:`_softmax_block` in the forward pass.
    Returns (loss, targets_finite). See :mod:`simulator.population` for the definitions.
    """
    wide_vectors()
    n_out, batch = o.shape
    zero = o[0, 0] * F0
    total = zero
    check = zero
    if loss == CROSS_ENTROPY:  # softmax output: L = mean_b sum_k y_k (lse_b - z_kb)
        inv = scales[0]
        ysum = tmp[:batch]
        lse = tmp[batch : 2 * batch]  # left there by _softmax_block
        for k in range(n_out):  # delta <- Y transposed, so every loop below runs over b
            for b in range(batch):
                delta[k, b] = Y[yi, b, k]
        for b in range(batch):
            ysum[b] = delta[0, b]
        for k in range(1, n_out):
            for b in range(batch):
                ysum[b] += delta[k, b]
        for b in range(batch):
            check += ysum[b] * F0
        for k in range(n_out):
            for b in range(batch):
                y = delta[k, b]
                total += y * (lse[b] - z[k, b])
                delta[k, b] = (o[k, b] * ysum[b] - y) * inv
        return total * inv, check == 0
    inv, two_inv = scales[1], scales[2]
    for k in range(n_out):  # delta <- Y transposed, so the loops below read contiguously
        for b in range(batch):
            delta[k, b] = Y[yi, b, k]
    if loss == BCE:  # sigmoid output: L = mean softplus(z) - y z
        for k in range(n_out):
            for b in range(batch):
                y = delta[k, b]
                check += y * F0
                total += softplus(z[k, b]) - y * z[k, b]
                delta[k, b] = (o[k, b] - y) * inv
        return total * inv, check == 0
    # MSE: L = mean (o - y)^2, the squares summed in the one order of :func:`squares_in_order`
    for k in range(n_out):
        for b in range(batch):
            y = delta[k, b]
            check += y * F0
            delta[k, b] = o[k, b] - y
    total = squares_in_order(delta.reshape(n_out * batch))
    for k in range(n_out):
        for b in range(batch):
            delta[k, b] *= two_inv
    if out_kind == OUT_STEP:  # perceptron rule: delta = (o - y) / (B K)
        for k in range(n_out):
            for b in range(batch):
                delta[k, b] *= HALF
    elif out_kind == SIGMOID:
        for k in range(n_out):
            for b in range(batch):
                delta[k, b] *= o[k, b] * (F1 - o[k, b])
    elif out_kind == OUT_SOFTMAX:  # Jacobian of softmax: s_k (g_k - sum_j g_j s_j)
        for b in range(batch):
            tmp[b] = zero
        for k in range(n_out):
            for b in range(batch):
                tmp[b] += delta[k, b] * o[k, b]
        for k in range(n_out):
            for b in range(batch):
                delta[k, b] = o[k, b] * (delta[k, b] - tmp[b])
    return total * inv, check == 0


# ---------------------------------------------------------------------------- target checks
_CHECK = {"cache": True, "error_model": "numpy"}  # no fast-math: the comparisons see NaNs
TARGET_ROWS = 1024  # target rows per parallel slot of the range check
# A cross-entropy target row may sum to 1 within 1e-3 (Population's rule); rows summing to 1
# within this margin pass here whatever the order of their sum, the others go to the exact check.
SUM_MARGIN = 0.9e-3


@njit(inline="always")
def _rows_doubtful(Y, loss, lo, hi):
    """Whether some row lo..hi-1 of Y (R, d) may break the loss's target range: a value below 0
    (cross-entropy, BCE), above 1 (BCE) or a row sum off 1 by more than SUM_MARGIN
    (cross-entropy). NaN rows pass, as they do in the exact check."""
    d = Y.shape[1]
    doubtful = False
    for r in range(lo, hi):
        total, low, high = 0.0, False, False
        for k in range(d):
            y = np.float64(Y[r, k])
            total += y
            low |= y < 0.0
            high |= y > 1.0
        if loss == BCE:
            doubtful |= low | high
        else:
            doubtful |= low | (abs(total - 1.0) > SUM_MARGIN)
    return doubtful


@njit(parallel=True, **_CHECK)
def targets_doubtful(Y, loss, slots):
    """slots[s] (bool, (ceil(R / TARGET_ROWS),)): whether the rows of slot s of Y (R, d), float,
    may break the target range of ``loss`` (BCE or CROSS_ENTROPY); see :func:`_rows_doubtful`."""
    R = Y.shape[0]
    for s in prange(slots.shape[0]):
        slots[s] = _rows_doubtful(Y, loss, s * TARGET_ROWS, min(R, (s + 1) * TARGET_ROWS))


@njit(**_CHECK)
def targets_doubtful_serial(Y, loss, slots):
    """:func:`targets_doubtful` in one thread."""
    R = Y.shape[0]
    for s in range(slots.shape[0]):
        slots[s] = _rows_doubtful(Y, loss, s * TARGET_ROWS, min(R, (s + 1) * TARGET_ROWS))
