"""``exp``, ``expm1`` and ``log1p`` of the arguments the kernels need, and ``log``, written so that
Numba loops vectorize them.

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

``log_unit`` / ``log_unit32`` (a positive normal number; named for their first use, the uniforms
of the Box-Muller normals in :mod:`simulator.kernels.random`) reduce ``u = 2**e x`` from the
bits, ``x`` in [sqrt(1/2), sqrt(2)), and sum ``log x = 2 atanh(s)``, ``s = (x - 1) / (x + 1)``,
by its series. :func:`log1p_unit` (``e`` in [0, 1]: softplus's ``log(1 + exp(-|z|))``) adds the
rounding of ``v = 1 + e`` back: ``log v + (e - (v - 1)) / v``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)
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


# ---------------------------------------------------------------------------- log
def _bitcast(source, target, ir_target):
    """An intrinsic reinterpreting a ``source`` number's bits as a ``target`` one (a bitcast:
    no instruction, and a loop of them vectorizes)."""

    @intrinsic
    def cast(typingctx, x):
        if x != source:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir_target)

        return target(x), codegen

    return cast


_bits = _bitcast(types.float64, types.int64, ir.IntType(64))
from_bits = _bitcast(types.int64, types.float64, ir.DoubleType())  # also for measure kernels
_bits32 = _bitcast(types.float32, types.int32, ir.IntType(32))


@intrinsic
def _from_bits32(typingctx, n):
    """The float32 whose bits are the low 32 bits of the integer ``n`` (a bitcast)."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if n.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(n), codegen


_FAST = {"contract"}  # fused multiply-adds, no reassociation
_LOG_COEF = tuple(2.0 / (2 * k + 1) for k in range(12))  # 2 atanh(s) = sum 2 s^(2k+1)/(2k+1)
# float32 versions (16 lanes per vector): truncation errors below 1e-9, float32 eps is 6e-8
_F32 = np.float32
_LOG32 = tuple(_F32(c) for c in _LOG_COEF[:6])
_LN2_32, _SQRT2_32 = _F32(_LN2), _F32(_SQRT2)
_HALF32, _ONE32 = _F32(0.5), _F32(1.0)
_I23, _I127 = np.int32(23), np.int32(127)
_MANT32, _ONE_BITS32 = np.int32(0x7FFFFF), np.int32(0x3F800000)


@njit(inline="always")
def horner(c, x):
    """``c[0] + c[1] x + c[2] x**2 + ...`` (a tuple of coefficients), in Horner's order."""
    p = c[-1]
    for k in range(len(c) - 2, -1, -1):
        p = p * x + c[k]
    return p


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def _log_parts(u):
    """``u = 2**e x``, ``x`` in [sqrt(1/2), sqrt(2)): returns ``(e, s)``, ``s = (x-1)/(x+1)``."""
    b = _bits(u)
    e = (b >> 52) - 1023
    x = from_bits((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # in [1, 2)
    big = x > _SQRT2
    x = 0.5 * x if big else x
    e = e + 1 if big else e
    return np.float64(e), (x - 1.0) / (x + 1.0)


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def log_unit(u):
    """Natural log of a positive, normal float64 ``u`` (a uniform in (0, 1) where it was first
    used, but any positive normal number).

    ``u = 2**e x`` with ``x`` in [sqrt(1/2), sqrt(2)) from the bits; ``log x = 2 atanh(s)``,
    ``s = (x - 1) / (x + 1)``, ``|s| <= 0.172``, by its series to ``s**23`` (next term < 1e-18).
    """
    e, s = _log_parts(u)
    return e * _LN2 + s * horner(_LOG_COEF, s * s)


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def log_unit32(u):
    """Natural log of a positive, normal float32 ``u``, in float32 arithmetic: the same
    reduction as :func:`log_unit`, series to ``s**11`` (truncation below 1e-9)."""
    b = _bits32(u)
    e = (b >> _I23) - _I127
    x = _from_bits32((b & _MANT32) | _ONE_BITS32)  # in [1, 2)
    big = x > _SQRT2_32
    x = _HALF32 * x if big else x
    e = e + 1 if big else e
    s = (x - _ONE32) / (x + _ONE32)
    return _F32(e) * _LN2_32 + s * horner(_LOG32, s * s)


def log1p_unit(e):  # pragma: no cover - replaced by the overload inside Numba
    """log(1 + e) for e in [0, 1] (see the module docstring)."""
    return np.log1p(e)


@overload(log1p_unit, jit_options=_OVERLOAD)
def _log1p_overload(e):
    if e == types.float32:

        def impl32(e):
            v = _ONE32 + e  # in [1, 2]: normal; v - 1 is exact (Sterbenz)
            return log_unit32(v) + (e - (v - _ONE32)) / v

        return impl32
    if e == types.float64:

        def impl64(e):
            v = 1.0 + e
            return log_unit(v) + (e - (v - 1.0)) / v

        return impl64
    return None
