"""``exp`` and ``expm1`` of non-positive arguments, written so that Numba loops vectorize them.

Inside a Numba loop ``np.exp`` is a scalar call into the C library (5-20 ns per element), which
dominated softmax layers and the float64 ``tanh``. These versions are plain arithmetic that LLVM
turns into AVX2 code, several elements per instruction:

* range reduction ``w = n ln2 + r`` with ``n = rint(w / ln2)``, ``|r| <= ln2 / 2`` (``ln2`` in
  two parts, so ``r`` is exact to the last bits);
* ``expm1(r)`` by its Taylor series in Horner form (degree 14 in float64, 8 in float32: the
  first omitted term is below 1e-16, resp. 1e-9, relative);
* ``exp(w) = 2**n (1 + expm1(r))`` and ``expm1(w) = 2**n expm1(r) + (2**n - 1)``, where ``2**n``
  is built from its bits (no rounding; see :func:`_times_pow2`).

Both are for ``w <= 0``, the only arguments the kernels need (softmax after subtracting the
maximum, ``tanh`` through ``expm1(-2|x|)``). Arguments below ``LOWEST`` are treated as
``LOWEST``: ``exp`` returns ~1e-38 (float32) / ~1e-304 (float64) instead of an underflow to a
subnormal or 0, an absolute difference below any tolerance that matters here. NaN stays NaN.
``tests/test_elementary.py`` checks both against NumPy to a few ulp.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

_LN2 = math.log(2.0)
# ln2 split so that n * LN2_HI is exact for |n| < 2**11 (float64) / 2**8 (float32)
_LN2_HI64, _LN2_LO64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LN2_HI32, _LN2_LO32 = 6.9314575195e-01, 1.4286067653e-06
# exp(LOWEST) and 2**rint(LOWEST / ln2) are normal numbers of the dtype
_LOWEST64, _LOWEST32 = -708.0, -87.0
# Fused multiply-adds allowed, reassociation not: it would undo the two-part range reduction.
_CONTRACT = {"contract"}
_OVERLOAD = {"fastmath": _CONTRACT}


@intrinsic
def _rint(typingctx, x):
    """Round to the nearest integer (ties to even), as a float of the same type."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.rint", [args[0].type])
        return builder.call(fn, args)

    return x(x), codegen


@intrinsic
def _times_pow2(typingctx, f, n):
    """``f * 2**n`` for a float ``n`` holding an integer in the dtype's normal exponent range.

    ``2**n`` is assembled from its bits (biased exponent ``n + 1023`` or ``n + 127`` shifted
    into place), which vectorizes, unlike ``ldexp``.
    """
    if not isinstance(f, types.Float) or f != n:
        return None

    def codegen(context, builder, signature, args):
        value, power = args
        if value.type == ir.DoubleType():
            itype, bias, shift = ir.IntType(64), 1023, 52
        else:
            itype, bias, shift = ir.IntType(32), 127, 23
        k = builder.fptosi(power, ir.IntType(32))
        if itype.width == 64:
            k = builder.sext(k, itype)
        bits = builder.shl(builder.add(k, ir.Constant(itype, bias)), ir.Constant(itype, shift))
        return builder.fmul(value, builder.bitcast(bits, value.type))

    return f(f, n), codegen


def _taylor(degree: int) -> tuple[float, ...]:
    """1/degree!, ..., 1/2!, 1/1!: the Horner coefficients of expm1(r) / r."""
    return tuple(1.0 / math.factorial(k) for k in range(degree, 0, -1))


def _reduced_expm1_factory(dtype: type[np.floating]):
    """Numba-compatible function w -> (expm1(r), n) with w = n ln2 + r."""
    if dtype is np.float64:
        coefs = _taylor(14)
        hi, lo, lowest = _LN2_HI64, _LN2_LO64, _LOWEST64
    else:
        coefs = _taylor(8)
        hi, lo, lowest = _LN2_HI32, _LN2_LO32, _LOWEST32
    c = tuple(dtype(v) for v in coefs)
    inv_ln2, ln2_hi, ln2_lo, low = dtype(1 / _LN2), dtype(hi), dtype(lo), dtype(lowest)
    degree = len(c)

    @njit(inline="always", fastmath=_CONTRACT)
    def reduced(w):
        w = max(w, low)  # NaN stays NaN (it is the first argument)
        n = _rint(w * inv_ln2)
        r = (w - n * ln2_hi) - n * ln2_lo
        q = c[0]
        for k in range(1, degree):
            q = q * r + c[k]
        return q * r, n

    return reduced


_REDUCED = {dtype: _reduced_expm1_factory(dtype) for dtype in (np.float32, np.float64)}


def exp_nonpositive(w):  # pragma: no cover - replaced by the overload inside Numba
    """exp(w) for w <= 0 (see the module docstring)."""
    return np.exp(max(w, _LOWEST64))


def expm1_nonpositive(w):  # pragma: no cover - replaced by the overload inside Numba
    """expm1(w) for w <= 0 (see the module docstring)."""
    return np.expm1(max(w, _LOWEST64))


def _reduction_for(w):
    """(the reduction, 1 in w's dtype) for a float32 or float64 Numba type, else None."""
    for numba_type, dtype in ((types.float32, np.float32), (types.float64, np.float64)):
        if w == numba_type:
            return _REDUCED[dtype], dtype(1.0)
    return None


@overload(exp_nonpositive, jit_options=_OVERLOAD)
def _exp_overload(w):
    found = _reduction_for(w)
    if found is None:
        return None
    reduced, one = found

    def impl(w):
        e, n = reduced(w)
        return _times_pow2(e + one, n)

    return impl


@overload(expm1_nonpositive, jit_options=_OVERLOAD)
def _expm1_overload(w):
    found = _reduction_for(w)
    if found is None:
        return None
    reduced, one = found

    def impl(w):
        e, n = reduced(w)
        s = _times_pow2(one, n)
        return s * e + (s - one)

    return impl
