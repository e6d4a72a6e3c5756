"""Optimizer updates of one agent's parameter row (called inside the population kernels).

Definitions (``g`` is the loss gradient, ``p`` the parameters, ``t`` >= 1 counts the updates this
agent has received since its optimizer state was last reset):

* gradient-norm clipping first: ``g <- g * min(1, clip_norm / ||g||)`` when ``clip_norm > 0``;
* weight decay is L2, coupled: ``g <- g + weight_decay * p``;
* ``sgd``: ``p <- p - lr g``;
* ``momentum`` (heavy ball): ``v <- mu v + g``; ``p <- p - lr v``;
* ``adam`` (bias-corrected, Kingma & Ba 2015): ``m <- b1 m + (1 - b1) g``,
  ``v <- b2 v + (1 - b2) g**2``, ``p <- p - lr (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.

An update whose result is not finite (an overflow) is not applied: the row and the state are
restored and the agent is reported as diverged. A non-finite gradient makes the new values
non-finite, so it is caught by the same check.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from simulator.kernels.gemm import wide_vectors

SGD, MOMENTUM, ADAM = 0, 1, 2


def _as_type_of(x, ref):  # pragma: no cover - replaced by the overload inside Numba
    """``x`` converted to the floating type of the scalar ``ref``."""
    return type(ref)(x)


@overload(_as_type_of)
def _as_type_of_overload(x, ref):
    if ref == types.float32:
        return lambda x, ref: np.float32(x)
    return lambda x, ref: np.float64(x)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz", "arcp"})
def apply_update(p, row, g, opt, overwrite_g):
    """Update ``row`` (agent ``p``'s parameters) in place from gradient ``g``.

    ``overwrite_g``: ``g`` is scratch the update may overwrite (plain SGD then makes one
    pass instead of two).

    ``opt.t[p]`` counts the updates agent ``p`` has received (Adam's bias correction uses it);
    it is incremented here. The new values are checked against ``opt.limit`` (the dtype's
    largest finite value) through the sum of their magnitudes, so an overflow of float32 is
    seen even when the arithmetic ran in float64. Returns False, leaving ``row``, ``opt.t[p]``
    and the optimizer state exactly as they were, when ``g`` or the updated parameters or state
    are not finite.
    """
    wide_vectors()
    n = row.shape[0]
    scale = 1.0
    if opt.clip_norm > 0:
        sq = g[0] * 0
        for k in range(n):
            sq += g[k] * g[k]
        if not np.isfinite(sq):
            return False
        norm = np.sqrt(sq)
        if norm > opt.clip_norm:
            scale = opt.clip_norm / norm
    lr = opt.lr[p]
    wd = opt.weight_decay
    t = opt.t[p] + 1
    if opt.kind == SGD and overwrite_g:
        # one pass computing the new values into g (the caller's scratch), then a copy; in the
        # parameters' dtype (float32 stays float32, at twice the vector width of float64)
        zero = row[0] * 0
        step, decay = _as_type_of(lr * scale, zero), _as_type_of(lr * wd, zero)
        check = zero
        for k in range(n):
            g[k] = row[k] - (step * g[k] + decay * row[k])
            check += abs(g[k])
        if not check <= opt.limit:  # NaN, inf or beyond the dtype's range
            return False
        for k in range(n):  # (a loop: slice assignment is several times slower in Numba)
            row[k] = g[k]
        opt.t[p] = t
        return True
    # Two passes: the first computes every new value and only checks that it is finite (so a
    # step that would overflow leaves row and state untouched, with no backup copy); the
    # second writes them.
    for write in (False, True):
        check = row[0] * 0
        if opt.kind == SGD:
            for k in range(n):
                new = row[k] - lr * (g[k] * scale + wd * row[k])
                check += abs(new)
                if write:
                    row[k] = new
        elif opt.kind == MOMENTUM:
            vel = opt.m[p]
            mu = opt.momentum
            for k in range(n):
                new_v = mu * vel[k] + g[k] * scale + wd * row[k]
                new = row[k] - lr * new_v
                check += abs(new) + abs(new_v)
                if write:
                    vel[k] = new_v
                    row[k] = new
        else:
            m = opt.m[p]
            v = opt.v[p]
            b1, b2 = opt.beta1, opt.beta2
            step_size = lr / (1.0 - b1**t)
            inv_bc2 = 1.0 / (1.0 - b2**t)
            for k in range(n):
                gk = g[k] * scale + wd * row[k]
                new_m = b1 * m[k] + (1 - b1) * gk
                new_v = b2 * v[k] + (1 - b2) * gk * gk
                new = row[k] - step_size * new_m / (np.sqrt(new_v * inv_bc2) + opt.eps)
                check += abs(new) + abs(new_v)
                if write:
                    m[k] = new_m
                    v[k] = new_v
                    row[k] = new
        if not check <= opt.limit:  # NaN, inf or beyond the dtype's range
            return False
    opt.t[p] = t
    return True
