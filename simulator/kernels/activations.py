"""Element-wise activation functions and their derivatives, for Numba kernels.

Codes (``int``) are used inside kernels; :mod:`simulator.config` maps names to codes.

``tanh`` is not ``math.tanh``: inside a Numba loop that is a scalar library call costing
15-25 ns per element, which dominates small networks. We use approximations that
vectorize and are checked against ``np.tanh`` in ``tests/test_activations.py``:

* float32: the minimax rational approximation of Eigen (``generic_fast_tanh_float``),
  accurate to a few float32 ulps on the whole real line.
* float64: ``tanh|x| = -e / (2 + e)`` with ``e = expm1(-2|x|)`` from
  :mod:`simulator.kernels.elementary` (a vectorizing ``expm1``, within 2 ulp), so the result
  is within a few ulp of ``np.tanh``, relative, down to the smallest ``|x|``.

``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)`` reuses them (an exact identity).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from simulator.kernels.elementary import exp_nonpositive, expm1_nonpositive, log1p_unit

IDENTITY, STEP, SIGMOID, TANH, RELU = 0, 1, 2, 3, 4

# Constants as float32: Numba (like NumPy) turns float32 * int (or * a Python float) into
# float64, which would silently run float32 networks in float64 at half the vector width.
# float32 * float32 stays float32 and float64 * float32 stays float64, so these keep the
# dtype of the data they meet. (0, 0.5 and 1 are exact in float32.)
F0, HALF, F1 = np.float32(0.0), np.float32(0.5), np.float32(1.0)
# Output functions: codes continue after the hidden activations so one switch serves both.
OUT_LINEAR, OUT_SIGMOID, OUT_SOFTMAX, OUT_STEP = IDENTITY, SIGMOID, 10, STEP

# Straight-through estimator window for the step activation in hidden layers:
# d step(z) / dz is taken as 1 for |z| <= STE_WINDOW and 0 outside (hard-tanh STE).
STE_WINDOW = 1.0

_TANH32_CLAMP = 7.90531110763549805
_A = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
_B = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


def fast_tanh(x):  # pragma: no cover - replaced by the overload inside Numba
    """Hyperbolic tangent that vectorizes inside Numba loops (see module docstring)."""
    return np.tanh(x)


@overload(fast_tanh)
def _fast_tanh_overload(x):
    if x == types.float32:
        a1, a3, a5, a7, a9, a11, a13 = (np.float32(c) for c in _A)
        b0, b2, b4, b6 = (np.float32(c) for c in _B)
        hi, one = np.float32(_TANH32_CLAMP), np.float32(1.0)  # float32: no float64 detour

        def tanh32(x):
            x = min(max(x, -hi), hi)
            x2 = x * x
            p = x2 * a13 + a11
            p = x2 * p + a9
            p = x2 * p + a7
            p = x2 * p + a5
            p = x2 * p + a3
            p = x2 * p + a1
            p = x * p
            q = x2 * b6 + b4
            q = x2 * q + b2
            q = x2 * q + b0
            return min(max(p / q, -one), one)  # p ~ q for large |x|: keep |tanh| <= 1

        return tanh32

    if x == types.float64:

        def tanh64(x):
            e = expm1_nonpositive(-2.0 * abs(x))  # tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|))
            t = -e / (2.0 + e)
            return t if x >= 0 else -t

        return tanh64
    return None


@njit(inline="always")
def activate(kind, z):
    """Apply activation ``kind`` to a scalar pre-activation ``z``."""
    if kind == TANH:
        return fast_tanh(z)
    if kind == RELU:
        return z if z > 0 else z * F0
    if kind == SIGMOID:
        # in float64 even for float32 data: float32 tanh saturates 4 ulp below 1, which would
        # leave sigmoid(-20) at 1.2e-7 instead of ~2e-9
        return 0.5 + 0.5 * fast_tanh(0.5 * z)
    if kind == STEP:
        return z * F0 + F1 if z > 0 else z * F0
    return z


@njit(inline="always")
def derivative(kind, z, a):
    """Derivative of activation ``kind`` at pre-activation ``z`` with output ``a``."""
    if kind == TANH:
        return F1 - a * a
    if kind == RELU:
        return z * F0 + F1 if z > 0 else z * F0
    if kind == SIGMOID:
        return a * (F1 - a)
    if kind == STEP:
        return z * F0 + F1 if abs(z) <= STE_WINDOW else z * F0
    return z * F0 + F1


@njit(inline="always")
def softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)), without overflow, in z's dtype, from
    the vectorizing exp and log1p of :mod:`simulator.kernels.elementary` (a loop over a batch
    vectorizes; the C library's were two scalar calls an element: binary cross-entropy
    training of 8-16-1 networks took 1.5x, of 2-16-1 1.8x the time of MSE). A few ulps from
    ``np.logaddexp(0, z)``; below z = -87 (float32) / -708 (float64) the exponential is taken
    at that bound (a value below 1e-37 / 1e-307 instead of a smaller one)."""
    return max(z, z * F0) + log1p_unit(exp_nonpositive(-abs(z)))
