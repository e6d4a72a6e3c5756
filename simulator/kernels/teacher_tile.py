"""The teacher network's forward pass on register tiles: one SIMD vector of batch rows at a time.

A one-hidden-layer tanh teacher (``d_in -> h -> d_out``, float32) evaluated the plain way keeps
each hidden unit's partial sums in memory and loads and stores them once per input
(``ht[j, b] += W1[i, j] * xt[i, b]``). Here one vector of rows (16 float32 lanes with AVX-512,
else 8) is carried through the whole network in registers: for each hidden unit ``j`` the sum
``b1[j] + W1[0, j] x0 + W1[1, j] x1 + ...`` (inputs in order), then tanh, then
``acc[k] += W2T[k, j] tanh(.)`` (hidden units in order).

Every lane performs exactly the operations of the scalar code, in the same order and precision:
a float32 multiply then a float32 add for each term (no fused multiply-add, no reassociation:
the instructions carry no fast-math flags), and :func:`simulator.kernels.activations.fast_tanh`
(float32) written out operation by operation, its ``min``/``max`` as Numba compiles them
(``select(b > a, b, a)``, ``select(b < a, b, a)``). The results are therefore bit-identical to
the scalar loop whatever the vector width (``tests/test_task_kernels.py`` checks it against a
NumPy float32 oracle).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from simulator.kernels.activations import _A as _TANH_A
from simulator.kernels.activations import _B as _TANH_B
from simulator.kernels.activations import _TANH32_CLAMP
from simulator.kernels.gemm import (
    VECTOR_BYTES,
    _array_data,
    _broadcast,
    _counted_loop,
    _int64s,
    _load,
)

__all__ = ["LANES", "teacher_tile", "transpose_rows"]

LANES = VECTOR_BYTES // 4
"""float32 rows per tile (one SIMD vector)."""


def _f32(value: float) -> ir.Constant:
    return ir.Constant(ir.FloatType(), float(np.float32(value)))


def _tanh32(builder, x, lanes):
    """fast_tanh (float32) of every lane of the vector x, operation by operation."""
    vec = x.type

    def const(c):
        return _broadcast(builder, _f32(c), lanes)

    def vmax(a, b):  # Numba's max(a, b): b if b > a else a
        return builder.select(builder.fcmp_ordered(">", b, a), b, a)

    def vmin(a, b):  # Numba's min(a, b): b if b < a else a
        return builder.select(builder.fcmp_ordered("<", b, a), b, a)

    hi, one = const(_TANH32_CLAMP), const(1.0)
    neg_hi, neg_one = const(-_TANH32_CLAMP), const(-1.0)
    x = vmin(vmax(x, neg_hi), hi)
    x2 = builder.fmul(x, x)
    a1, a3, a5, a7, a9, a11, a13 = (const(c) for c in _TANH_A)
    b0, b2, b4, b6 = (const(c) for c in _TANH_B)
    p = builder.fadd(builder.fmul(x2, a13), a11)
    for c in (a9, a7, a5, a3, a1):
        p = builder.fadd(builder.fmul(x2, p), c)
    p = builder.fmul(x, p)
    q = builder.fadd(builder.fmul(x2, b6), b4)
    for c in (b2, b0):
        q = builder.fadd(builder.fmul(x2, q), c)
    assert vec == p.type
    return vmin(vmax(builder.fdiv(p, q), neg_one), one)


@intrinsic
def teacher_tile(typingctx, acc, xt, x_off, ldx, W1, b1, W2T, d_in, h, d_out, n_vec):
    """``acc[k V + l] += sum_j W2T[k, j] tanh(b1[j] + sum_i W1[i, j] xt[i, x_off + l])``.

    ``l < V = n_vec * LANES`` (``n_vec`` a literal int: independent vectors in flight, which
    hide the latency of each unit's chain of dependent operations). Arrays float32,
    C-contiguous, offsets in elements from each array's first element: ``xt[i, c] =
    xt[i ldx + c]`` (the inputs transposed: row i holds input i of every row of the batch),
    ``W1[i, j] = W1[i h + j]``, ``W2T[k, j] = W2T[k h + j]``, ``acc`` holds ``d_out`` rows of
    ``V`` (the caller zeroes it). Sums in the index order shown.
    """
    arrays = (acc, xt, W1, b1, W2T)
    if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in arrays):
        return None
    if not isinstance(n_vec, types.IntegerLiteral):
        return None
    sig = types.void(acc, xt, x_off, ldx, W1, b1, W2T, d_in, h, d_out, n_vec)
    lanes, nv = LANES, n_vec.literal_value

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        accp, xtp, w1p, b1p, w2p = (
            _array_data(context, builder, signature, args, i) for i in (0, 1, 4, 5, 6)
        )
        x_off_, ldx_, d_in_, h_, d_out_ = _int64s(
            context, builder, signature, args, (2, 3, 7, 8, 9)
        )
        vec = ir.VectorType(ir.FloatType(), lanes)

        def unit(j, _):
            s0 = _broadcast(builder, builder.load(builder.gep(b1p, [j])), lanes)

            def term(i, sums):
                w = builder.load(builder.gep(w1p, [builder.add(builder.mul(i, h_), j)]))
                wv = _broadcast(builder, w, lanes)
                row = builder.add(x_off_, builder.mul(i, ldx_))
                new = []
                for v in range(nv):
                    x = _load(builder, xtp, builder.add(row, ir.Constant(i64, v * lanes)), vec, 4)
                    new.append(builder.fadd(sums[v], builder.fmul(wv, x)))
                return new

            sums = _counted_loop(builder, d_in_, [s0] * nv, term)
            t = [_tanh32(builder, s, lanes) for s in sums]

            def out(k, _):
                w = builder.load(builder.gep(w2p, [builder.add(builder.mul(k, h_), j)]))
                wv = _broadcast(builder, w, lanes)
                for v in range(nv):
                    off = builder.add(
                        builder.mul(k, ir.Constant(i64, nv * lanes)), ir.Constant(i64, v * lanes)
                    )
                    ptr = builder.bitcast(builder.gep(accp, [off]), vec.as_pointer())
                    a = builder.load(ptr, align=4)
                    builder.store(builder.fadd(a, builder.fmul(wv, t[v])), ptr, align=4)
                return []

            _counted_loop(builder, d_out_, [], out)
            return []

        _counted_loop(builder, h_, [], unit)
        return context.get_dummy_value()

    return sig, codegen


def _transpose_stages(d: int, lanes: int) -> list[list[tuple[int, int, int, list[int]]]]:
    """Two-source shuffles turning ``d`` vectors holding ``lanes`` rows of ``d`` inputs
    (row-major: element ``f = d b + i`` at vector ``f // lanes``, lane ``f % lanes``) into ``d``
    vectors, vector ``i`` holding input ``i`` of every row in order.

    log2(d) stages; stage s pairs the vectors whose indices differ in bit s and exchanges that
    bit of the vector index with bit s of the lane index (the last stage also puts the lanes
    in row order). Each stage is a list of ``(out, lo, hi, mask)``: vector ``out`` is
    ``shuffle(lo, hi, mask)`` of the previous stage's vectors.
    """
    k = d.bit_length() - 1
    if 1 << k != d or d > lanes:
        raise ValueError(f"d={d} must be a power of two <= lanes={lanes}")
    layout = [[lanes * v + m for m in range(lanes)] for v in range(d)]
    stages = []
    for s in range(k):
        bit = 1 << s
        if s < k - 1:
            new = [
                [layout[(v & ~bit) | (m & bit)][(m & ~bit) | (v & bit)] for m in range(lanes)]
                for v in range(d)
            ]
        else:
            new = [[d * b + v for b in range(lanes)] for v in range(d)]
        ops = []
        for v in range(d):
            lo, hi = v & ~bit, v | bit
            where = {f: m for m, f in enumerate(layout[lo])}
            where.update({f: lanes + m for m, f in enumerate(layout[hi])})
            ops.append((v, lo, hi, [where[f] for f in new[v]]))
        stages.append(ops)
        layout = new
    return stages


@intrinsic
def transpose_rows(typingctx, xt, xt_off, ldx, x, x_off, d):
    """``xt[xt_off + i ldx + b] = x[x_off + d b + i]`` for ``b < LANES``, ``i < d`` (float32,
    ``d`` a literal power of two <= LANES): one block of rows loaded as ``d`` vectors and
    transposed in registers by :func:`_transpose_stages` (a pure data move)."""
    if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (xt, x)):
        return None
    if not isinstance(d, types.IntegerLiteral):
        return None
    n_in, lanes = d.literal_value, LANES
    stages = _transpose_stages(n_in, lanes)
    sig = types.void(xt, xt_off, ldx, x, x_off, d)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        xtp, xp = (_array_data(context, builder, signature, args, i) for i in (0, 3))
        xt_off_, ldx_, x_off_ = _int64s(context, builder, signature, args, (1, 2, 4))
        vec = ir.VectorType(ir.FloatType(), lanes)
        rows = [
            _load(builder, xp, builder.add(x_off_, ir.Constant(i64, v * lanes)), vec, 4)
            for v in range(n_in)
        ]
        for ops in stages:
            masks = [ir.Constant(ir.VectorType(i32, lanes), mask) for *_, mask in ops]
            rows = [
                builder.shuffle_vector(rows[lo], rows[hi], mask)
                for (_, lo, hi, _), mask in zip(ops, masks, strict=True)
            ]
        for i, row in enumerate(rows):
            at = builder.add(xt_off_, builder.mul(ir.Constant(i64, i), ldx_))
            ptr = builder.bitcast(builder.gep(xtp, [at]), vec.as_pointer())
            builder.store(row, ptr, align=4)
        return context.get_dummy_value()

    return sig, codegen
