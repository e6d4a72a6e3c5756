"""Losses of one agent and dLoss/dz of its output layer, for the kernels of
:mod:`simulator.kernels.mlp` (activations stored transposed, shape ``(width, batch)``).

Definitions: see :mod:`simulator.population`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator.kernels.activations import F0, F1, HALF, OUT_SOFTMAX, OUT_STEP, SIGMOID, softplus
from simulator.kernels.elementary import exp_nonpositive
from simulator.kernels.gemm import wide_vectors

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
def _softmax_block(z, a, tmp):
    """Column-wise softmax over the first axis.

    tmp : (2 B,) scratch; on return ``tmp[B:]`` holds each sample's log-sum-exp of ``z``
    (the cross-entropy loss reads it instead of exponentiating again).
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
    for b in range(batch):
        lse[b] = zmax[b] + np.log(lse[b])


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
    # MSE: L = mean (o - y)^2
    for k in range(n_out):
        for b in range(batch):
            y = delta[k, b]
            check += y * F0
            diff = o[k, b] - y
            total += diff * diff
            delta[k, b] = diff * two_inv
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
