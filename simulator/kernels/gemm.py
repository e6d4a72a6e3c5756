"""Small matrix products inside the kernels, from register tiles of explicit SIMD vectors.

A 64-wide layer of one agent is a product of 64 x 64 matrices: too small for a BLAS call to
pay off its fixed costs (argument checks, packing both operands into buffers, ~30% of the time
OpenBLAS spent on them in the training kernel), too large for plain loops, which LLVM can
vectorize only along one axis and so store every partial sum back to memory. Here the
innermost step is a tile of 8 rows x 2 vectors of C (16 accumulators: 32 float32 or 16 float64
columns), kept in registers over the whole sum: per k, two vector loads of B, eight scalar
loads of A broadcast to vectors and sixteen multiply-adds. Sixteen independent sums keep both
FMA units of a core busy through their 4-cycle latency; 4 rows (8 sums) left them waiting
(one core, in cache, 64x64x64: 133 -> 155 GFLOP/s float32, 64 -> 74 float64; 12 rows gained
little more, 16 lost on shorter products).

Addressing (every offset and stride in elements, from the first element of the array passed;
any view works, whatever its dimensions)::

    C[m, n] = c[c_off + m * ldc + n]
    A[m, k] = a[a_off + m * sam + k * sak]      (so A may be a transposed view: sam = 1)
    B[k, n] = b[b_off + k * ldb + n]

Rows of C and B are contiguous (unit stride along n); A has any strides. The caller
guarantees every addressed element lies inside its array (the kernels pass views of their own
buffers with the shapes they were carved with).

The drivers (:func:`gemm`, :func:`gemm_nt` and their row loops) are inlined into their callers
(``inline="always"``): a call of a Numba function passes every array as a structure of ~7
words, so a small product paid more for its calls than for its arithmetic (a 1 x 32 x 16
product took ~96 ns called, ~22 ns inlined; 8-16-1, B = 32: ~16% less time per agent).

Three products, measured in the training kernel against OpenBLAS called through ``np.dot``
(64-64-10, B = 64, float32: ~13% more agent steps per second on one thread, ~17% on two) and
against blocked plain loops on narrow layers (8-16-1, B = 32: ~10% float32, ~4% float64):

* :func:`gemm`: C = A B (+ bias) as above, for forward passes and input gradients;
* :func:`gemm_nt`: C = A B^T with both factors read along their rows (dot-product tiles, the
  lanes summed at the end), for weight gradients of narrow layers;
* :func:`transpose`: square SIMD blocks transposed by shuffles, to feed :func:`gemm` with the
  inputs or the deltas in the orientation it needs.

``llvm.fmuladd`` lets LLVM fuse each multiply-add where the CPU has FMA, and keeps a multiply
and an add where it has not. Vectors are 64 bytes where the CPU Numba compiles for has AVX-512
(16 float32 or 8 float64 lanes: on a 64x64x64 float32 product ~1.35x the 32-byte tiles, measured
on an AVX-512 Xeon), else 32 bytes (AVX2), split by LLVM on narrower SIMD; columns left over
after the wide tiles go through 32-byte tiles, then one at a time. The summation order of every
element is fixed, so results do not depend on the thread count (the vector width depends on the
CPU, so the last bits may differ between machines).
"""

from __future__ import annotations

from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

INIT_ZERO, INIT_BIAS = 0, 1
"""How a product starts: C = A B, or C = A B + bias (bias[bias_off + m] on row m)."""

TILE_ROWS = 8  # rows of the main tile of gemm (then 4, 2, 1 at the edge)
NT_ROWS = 4  # rows of gemm_nt's dot-product tiles
HALF_BYTES = 32  # AVX2: 8 float32 or 4 float64 lanes


def _target_has_avx512() -> bool:
    """Whether the CPU Numba compiles for has AVX-512F (NUMBA_CPU_FEATURES / NUMBA_CPU_NAME if
    set, else the host). Numba's cache is keyed on that CPU, so each machine compiles its own."""
    if config.CPU_FEATURES:
        return "+avx512f" in str(config.CPU_FEATURES).split(",")
    if config.CPU_NAME not in (None, "host"):
        return False  # a named CPU: stay with 32-byte vectors, which every x86-64 target takes
    return bool(llvm.get_host_cpu_features().get("avx512f", False))


VECTOR_BYTES = 64 if _target_has_avx512() else HALF_BYTES
TRANSPOSE_BYTES = HALF_BYTES  # 8x8 float32 / 4x4 float64 blocks (narrow inputs are common)
_JIT = {"cache": True, "error_model": "numpy"}


@intrinsic
def wide_vectors(typingctx):
    """Let LLVM vectorize the calling function's loops with 64-byte vectors (AVX-512).

    LLVM's cost model prefers 32-byte vectors on the AVX-512 CPUs it knows (``prefer-256-bit``:
    some older ones lower their clock on 64-byte code), so element-wise loops ran at half the
    width the register tiles use. This sets the calling function's ``prefer-vector-width``
    attribute (clang's ``-mprefer-vector-width=512``) when :data:`VECTOR_BYTES` is 64; a
    no-op otherwise. Call it at the top of a Numba function: the attribute belongs to the
    function being compiled, so every function whose loops should widen calls it (a tanh pass
    over 4,096 elements, one thread, best of 3 x 20,000 calls: 1.28x in float32 and in
    float64). Results do not depend on it beyond the summation order of reductions compiled
    with ``reassoc``, which stays fixed.
    """

    def codegen(context, builder, signature, args):
        if VECTOR_BYTES == 64:
            # llvmlite knows no string attributes: add the rendered text to its set directly
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.void(), codegen


def _lanes(dtype: types.Float, n_vectors: int, vector_bytes: int = VECTOR_BYTES) -> int:
    """SIMD lanes of one vector (1 for the scalar tile, ``n_vectors == 0``)."""
    return vector_bytes * 8 // dtype.bitwidth if n_vectors else 1


def _counted_loop(builder, count, start_values, body):
    """Emit ``for k in range(count): values = body(k, values)``; return the final values.

    ``count`` is an i64; ``body(k, values)`` emits the loop body and returns the new values
    (LLVM values of the same types). A zero count skips the loop.
    """
    i64 = ir.IntType(64)
    fn = builder.basic_block.function
    before = builder.basic_block
    loop = fn.append_basic_block("loop")
    after = fn.append_basic_block("loop.after")
    builder.cbranch(builder.icmp_signed(">", count, ir.Constant(i64, 0)), loop, after)
    builder.position_at_end(loop)
    k = builder.phi(i64)
    k.add_incoming(ir.Constant(i64, 0), before)
    current = []
    for value in start_values:
        phi = builder.phi(value.type)
        phi.add_incoming(value, before)
        current.append(phi)
    updated = body(k, current)
    k_next = builder.add(k, ir.Constant(i64, 1))
    loop_end = builder.basic_block
    k.add_incoming(k_next, loop_end)
    for phi, value in zip(current, updated, strict=True):
        phi.add_incoming(value, loop_end)
    builder.cbranch(builder.icmp_signed("<", k_next, count), loop, after)
    builder.position_at_end(after)
    final = []
    for start, value in zip(start_values, updated, strict=True):
        phi = builder.phi(value.type)
        phi.add_incoming(start, before)
        phi.add_incoming(value, loop_end)
        final.append(phi)
    return final


def _broadcast(builder, x, lanes):
    """A vector of ``lanes`` copies of the scalar x (x itself when lanes == 1)."""
    if lanes == 1:
        return x
    vec = ir.VectorType(x.type, lanes)
    v = builder.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(v, ir.Constant(vec, ir.Undefined), mask)


def _load(builder, base, offset, vec, item_bytes):
    """Load a vector (or a scalar) of base's element type at element ``offset`` of base."""
    ptr = builder.gep(base, [offset])
    if isinstance(vec, ir.VectorType):
        ptr = builder.bitcast(ptr, vec.as_pointer())
    return builder.load(ptr, align=item_bytes)


def _sum_lanes_of_each(builder, vectors):
    """The sum of the lanes of each vector, as scalars, in a fixed order (deterministic).

    Vectors are reduced ``lanes`` at a time into one vector whose lane t holds the sum of
    vector t: at each level, pairs of vectors are interleaved in blocks of h lanes and the two
    halves added (h = 1, 2, 4, ...), so every add works on full vectors.
    """
    lanes = vectors[0].type.count
    i32 = ir.IntType(32)
    zero = ir.Constant(vectors[0].type, None)
    sums = []
    for start in range(0, len(vectors), lanes):
        group = list(vectors[start : start + lanes])
        group += [zero] * (lanes - len(group))
        h = 1
        while len(group) > 1:
            lo = [
                (t // (2 * h)) * 2 * h + t % h + (0 if t % (2 * h) < h else lanes)
                for t in range(lanes)
            ]
            hi = [x + h for x in lo]
            mask_lo = ir.Constant(ir.VectorType(i32, lanes), lo)
            mask_hi = ir.Constant(ir.VectorType(i32, lanes), hi)
            group = [
                builder.fadd(
                    builder.shuffle_vector(x, y, mask_lo), builder.shuffle_vector(x, y, mask_hi)
                )
                for x, y in zip(group[0::2], group[1::2], strict=True)
            ]
            h *= 2
        sums += [builder.extract_element(group[0], ir.Constant(i32, t)) for t in range(lanes)]
    return sums[: len(vectors)]


def _array_data(context, builder, signature, args, index):
    """Data pointer of the array argument ``index`` of an intrinsic."""
    return make_array(signature.args[index])(context, builder, args[index]).data


def _int64s(context, builder, signature, args, indices):
    """Integer arguments ``indices`` of an intrinsic, as i64 values."""
    return [context.cast(builder, args[i], signature.args[i], types.int64) for i in indices]


def _fmuladd(builder, kind):
    """``llvm.fmuladd`` for a float or a float vector type: fused where the CPU has FMA."""
    if isinstance(kind, ir.VectorType):
        name = f"v{kind.count}f{_bits(kind.element)}"
    else:
        name = f"f{_bits(kind)}"
    fnty = ir.FunctionType(kind, [kind] * 3)
    return cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fmuladd.{name}")


def _bits(scalar) -> int:
    """Width of an LLVM float type: 64 for double, else 32."""
    return 64 if isinstance(scalar, ir.DoubleType) else 32


# fmt: off
@intrinsic
def _tile(typingctx, c, c_off, ldc, a, a_off, sam, sak, b, b_off, ldb, k_len, init, bias,
          bias_off, rows, n_vectors, vector_bytes):
    # fmt: on
    """One register tile: ``rows`` rows (literal, 1..8) x ``n_vectors`` SIMD vectors (literal,
    1 or 2; 0 for a single scalar column) of ``vector_bytes`` (literal, 32 or 64) of C,
    addressed as in the module docstring."""
    literals = (rows, n_vectors, vector_bytes)
    if not all(isinstance(x, types.IntegerLiteral) for x in literals):
        return None
    if not all(isinstance(x, types.Array) and x.dtype == c.dtype for x in (c, a, b, bias)):
        return None
    if not isinstance(c.dtype, types.Float):
        return None
    n_rows, n_vec = rows.literal_value, n_vectors.literal_value
    lanes = _lanes(c.dtype, n_vec, vector_bytes.literal_value)
    n_cols = max(n_vec, 1)
    # fmt: off
    sig = types.void(c, c_off, ldc, a, a_off, sam, sak, b, b_off, ldb, k_len, init, bias,
                     bias_off, rows, n_vectors, vector_bytes)
    # fmt: on

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        cp, ap, bp, biasp = (
            _array_data(context, builder, signature, args, i) for i in (0, 3, 7, 12)
        )
        c_off_, ldc_, a_off_, sam_, sak_, b_off_, ldb_, k_len_, init_, bias_off_ = _int64s(
            context, builder, signature, args, (1, 2, 4, 5, 6, 8, 9, 10, 11, 13)
        )
        scalar = context.get_value_type(c.dtype)
        vec = ir.VectorType(scalar, lanes) if lanes > 1 else scalar
        item_bytes = c.dtype.bitwidth // 8
        fmuladd = _fmuladd(builder, vec)

        def c_at(i, v):
            row = builder.add(c_off_, builder.mul(ir.Constant(i64, i), ldc_))
            return builder.add(row, ir.Constant(i64, v * lanes))

        # the starting accumulators: one block per init mode, merged by phis
        fn = builder.basic_block.function
        modes = (INIT_ZERO, INIT_BIAS)
        blocks = {mode: fn.append_basic_block(f"tile.init{mode}") for mode in modes}
        merged = fn.append_basic_block("tile.start")
        switch = builder.switch(init_, blocks[INIT_ZERO])
        switch.add_case(ir.Constant(i64, INIT_BIAS), blocks[INIT_BIAS])
        starts = []
        for mode, block in blocks.items():
            builder.position_at_end(block)
            values = []
            for i in range(n_rows):
                if mode == INIT_BIAS:
                    at = builder.add(bias_off_, ir.Constant(i64, i))
                    row_bias = _load(builder, biasp, at, scalar, item_bytes)
                    values += [_broadcast(builder, row_bias, lanes)] * n_cols
                else:
                    values += [ir.Constant(vec, None)] * n_cols
            starts.append((builder.basic_block, values))
            builder.branch(merged)
        builder.position_at_end(merged)
        start = []
        for j in range(n_rows * n_cols):
            phi = builder.phi(vec)
            for block, values in starts:
                phi.add_incoming(values[j], block)
            start.append(phi)

        def body(k, acc):  # acc[i, v] += A[i, k] * B[k, v-th vector]
            b_row = builder.add(b_off_, builder.mul(k, ldb_))
            bs = [
                _load(builder, bp, builder.add(b_row, ir.Constant(i64, v * lanes)), vec, item_bytes)
                for v in range(n_cols)
            ]
            a_col = builder.add(a_off_, builder.mul(k, sak_))
            out = []
            for i in range(n_rows):
                a_at = builder.add(a_col, builder.mul(ir.Constant(i64, i), sam_))
                a_i = _broadcast(builder, _load(builder, ap, a_at, scalar, item_bytes), lanes)
                out += [
                    builder.call(fmuladd, [a_i, bs[v], acc[i * n_cols + v]]) for v in range(n_cols)
                ]
            return out

        final = _counted_loop(builder, k_len_, start, body)
        for i in range(n_rows):
            for v in range(n_cols):
                ptr = builder.gep(cp, [c_at(i, v)])
                if lanes > 1:
                    ptr = builder.bitcast(ptr, vec.as_pointer())
                builder.store(final[i * n_cols + v], ptr, align=item_bytes)
        return context.get_dummy_value()

    return sig, codegen


# fmt: off
# (the drivers below call one tile shape per line pair: kept packed by hand, not one argument
# per line)
@njit(inline="always", **_JIT)
def _row_block(c, c_off, ldc, a, a_off, sam, sak, b, b_off, ldb, n_len, k_len, init, bias,
               bias_off, rows):
    """Columns 0..n_len of ``rows`` (literal) rows of C: tiles of two vectors, then one, then
    (with 64-byte vectors) one 32-byte vector, then single columns."""
    lanes = VECTOR_BYTES // c.itemsize
    half = HALF_BYTES // c.itemsize
    n = 0
    while n + 2 * lanes <= n_len:
        _tile(c, c_off + n, ldc, a, a_off, sam, sak, b, b_off + n, ldb, k_len, init, bias,
              bias_off, rows, 2, VECTOR_BYTES)
        n += 2 * lanes
    if n + lanes <= n_len:
        _tile(c, c_off + n, ldc, a, a_off, sam, sak, b, b_off + n, ldb, k_len, init, bias,
              bias_off, rows, 1, VECTOR_BYTES)
        n += lanes
    if VECTOR_BYTES > HALF_BYTES and n + half <= n_len:
        _tile(c, c_off + n, ldc, a, a_off, sam, sak, b, b_off + n, ldb, k_len, init, bias,
              bias_off, rows, 1, HALF_BYTES)
        n += half
    while n < n_len:
        _tile(c, c_off + n, ldc, a, a_off, sam, sak, b, b_off + n, ldb, k_len, init, bias,
              bias_off, rows, 0, HALF_BYTES)
        n += 1


@njit(inline="always", **_JIT)
def gemm(c, c_off, ldc, a, a_off, sam, sak, b, b_off, ldb, m_len, n_len, k_len, init, bias,
         bias_off):
    """C = A B [+ bias] for an (m_len, n_len) block of C with a sum over k_len terms.

    Addressing of c, a, b as in the module docstring; ``init`` is INIT_ZERO or INIT_BIAS (row m
    then starts from ``bias[bias_off + m]``; bias is read for that mode only).
    All arrays share one float dtype.
    """
    m = 0
    while m + TILE_ROWS <= m_len:
        _row_block(c, c_off + m * ldc, ldc, a, a_off + m * sam, sam, sak, b, b_off, ldb, n_len,
                   k_len, init, bias, bias_off + m, 8)
        m += TILE_ROWS
    if m + 4 <= m_len:
        _row_block(c, c_off + m * ldc, ldc, a, a_off + m * sam, sam, sak, b, b_off, ldb, n_len,
                   k_len, init, bias, bias_off + m, 4)
        m += 4
    if m + 2 <= m_len:
        _row_block(c, c_off + m * ldc, ldc, a, a_off + m * sam, sam, sak, b, b_off, ldb, n_len,
                   k_len, init, bias, bias_off + m, 2)
        m += 2
    if m < m_len:
        _row_block(c, c_off + m * ldc, ldc, a, a_off + m * sam, sam, sak, b, b_off, ldb, n_len,
                   k_len, init, bias, bias_off + m, 1)
# fmt: on


@intrinsic
def _dot_tile(typingctx, c, c_off, ldc, a, a_off, lda, b, b_off, ldb, n_len, rows, cols,
              vector_bytes):  # fmt: skip
    """C[i, j] = sum_n A[i, n] B[j, n] for i < rows, j < cols (literals), with
    ``C[i, j] = c[c_off + i ldc + j]``, ``A[i, n] = a[a_off + i lda + n]``,
    ``B[j, n] = b[b_off + j ldb + n]``: one vector accumulator (``vector_bytes``, a literal)
    per element of C over whole vectors of n, a scalar one over the remaining n, then the lanes
    summed."""
    if not all(isinstance(x, types.IntegerLiteral) for x in (rows, cols, vector_bytes)):
        return None
    if not all(isinstance(x, types.Array) and x.dtype == c.dtype for x in (c, a, b)):
        return None
    if not isinstance(c.dtype, types.Float):
        return None
    n_rows, n_cols = rows.literal_value, cols.literal_value
    lanes = _lanes(c.dtype, 1, vector_bytes.literal_value)
    sig = types.void(c, c_off, ldc, a, a_off, lda, b, b_off, ldb, n_len, rows, cols, vector_bytes)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        cp, ap, bp = (_array_data(context, builder, signature, args, i) for i in (0, 3, 6))
        c_off_, ldc_, a_off_, lda_, b_off_, ldb_, n_len_ = _int64s(
            context, builder, signature, args, (1, 2, 4, 5, 7, 8, 9)
        )
        scalar = context.get_value_type(c.dtype)
        vec = ir.VectorType(scalar, lanes)
        item_bytes = c.dtype.bitwidth // 8
        fused = {kind: _fmuladd(builder, kind) for kind in (vec, scalar)}
        a_rows = [
            builder.add(a_off_, builder.mul(ir.Constant(i64, i), lda_)) for i in range(n_rows)
        ]
        b_rows = [
            builder.add(b_off_, builder.mul(ir.Constant(i64, j), ldb_)) for j in range(n_cols)
        ]

        def body_for(kind, step, first):
            def body(k, acc):
                n = builder.add(first, builder.mul(k, ir.Constant(i64, step)))
                bs = [_load(builder, bp, builder.add(r, n), kind, item_bytes) for r in b_rows]
                out = []
                for r in a_rows:
                    x = _load(builder, ap, builder.add(r, n), kind, item_bytes)
                    for j in range(n_cols):
                        out.append(builder.call(fused[kind], [x, bs[j], acc[len(out)]]))
                return out

            return body

        n_vec = builder.sdiv(n_len_, ir.Constant(i64, lanes))
        zero_v = [ir.Constant(vec, None)] * (n_rows * n_cols)
        vsum = _counted_loop(builder, n_vec, zero_v, body_for(vec, lanes, ir.Constant(i64, 0)))
        done = builder.mul(n_vec, ir.Constant(i64, lanes))
        zero_s = [ir.Constant(scalar, 0.0)] * (n_rows * n_cols)
        ssum = _counted_loop(builder, builder.sub(n_len_, done), zero_s, body_for(scalar, 1, done))
        sums = _sum_lanes_of_each(builder, vsum)
        for i in range(n_rows):
            for j in range(n_cols):
                t = i * n_cols + j
                total = builder.fadd(sums[t], ssum[t])
                at = builder.add(
                    c_off_, builder.add(builder.mul(ir.Constant(i64, i), ldc_), ir.Constant(i64, j))
                )
                builder.store(total, builder.gep(cp, [at]), align=item_bytes)
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always", **_JIT)
def _nt_rows(c, c_off, ldc, a, a_off, lda, b, b_off, ldb, j_len, n_len, rows):
    """Columns 0..j_len of ``rows`` (literal) rows of C = A B^T: two columns per tile, then one;
    wide vectors when n_len holds at least two of them (the lane sums cost more than they
    save on shorter sums)."""
    j = 0
    if VECTOR_BYTES > HALF_BYTES and n_len >= 2 * VECTOR_BYTES // c.itemsize:
        while j + 4 <= j_len:  # 16 sums: the lane-sum tree of 16-lane vectors is full
            _dot_tile(c, c_off + j, ldc, a, a_off, lda, b, b_off + j * ldb, ldb, n_len, rows, 4,
                      VECTOR_BYTES)  # fmt: skip
            j += 4
        while j + 2 <= j_len:
            _dot_tile(c, c_off + j, ldc, a, a_off, lda, b, b_off + j * ldb, ldb, n_len, rows, 2,
                      VECTOR_BYTES)  # fmt: skip
            j += 2
    while j + 2 <= j_len:
        _dot_tile(c, c_off + j, ldc, a, a_off, lda, b, b_off + j * ldb, ldb, n_len, rows, 2,
                  HALF_BYTES)  # fmt: skip
        j += 2
    while j < j_len:
        _dot_tile(c, c_off + j, ldc, a, a_off, lda, b, b_off + j * ldb, ldb, n_len, rows, 1,
                  HALF_BYTES)  # fmt: skip
        j += 1


@njit(inline="always", **_JIT)
def gemm_nt(c, c_off, ldc, a, a_off, lda, b, b_off, ldb, m_len, j_len, n_len):
    """C = A B^T for an (m_len, j_len) block of C, a sum over n_len terms, with
    ``C[m, j] = c[c_off + m ldc + j]``, ``A[m, n] = a[a_off + m lda + n]`` and
    ``B[j, n] = b[b_off + j ldb + n]`` (rows of A and B contiguous). For weight gradients:
    both factors are activations or deltas stored (width, batch)."""
    m = 0
    while m + NT_ROWS <= m_len:
        _nt_rows(c, c_off + m * ldc, ldc, a, a_off + m * lda, lda, b, b_off, ldb, j_len, n_len, 4)
        m += NT_ROWS
    while m < m_len:
        _nt_rows(c, c_off + m * ldc, ldc, a, a_off + m * lda, lda, b, b_off, ldb, j_len, n_len, 1)
        m += 1


def _transpose_plan(lanes: int):
    """The shuffles of one ``lanes`` x ``lanes`` block transpose, checked on index labels.

    Vector i (i < lanes / 2) starts as [row i, row i + lanes/2] of the block's left half,
    vector lanes/2 + i as the same rows of its right half: two half-rows each, a load and an
    insert from memory, which use no shuffle unit. Then both halves of every vector are
    transposed at once by in-lane stages h = 1, 2, ..., lanes / 4 (pairs of vectors (i, i + h)
    of one group interleaved in blocks of h lanes). Shuffles run on one port of the CPU, so a
    transpose is bounded by their count: 16 instead of 24 per 8 x 8 float32 block.

    Returns (masks, order): the (lo, hi) shuffle masks of each stage, and ``order[v]``, the
    source column vector v holds at the end.
    """
    half = lanes // 2
    rows = [
        [(i, t) for t in range(half)] + [(i + half, t) for t in range(half)] for i in range(half)
    ]
    rows += [
        [(i, t + half) for t in range(half)] + [(i + half, t + half) for t in range(half)]
        for i in range(half)
    ]

    def in_lane(small):  # a mask on two half-size vectors, applied to both halves of two vectors
        out = []
        for t in range(lanes):
            b, m = t // half, small[t % half]
            out.append(b * half + m if m < half else lanes + b * half + m - half)
        return out

    masks = []
    h = 1
    while h < half:
        lo = [(t // (2 * h)) * h + t % h + (0 if (t // h) % 2 == 0 else half) for t in range(half)]
        lo, hi = in_lane(lo), in_lane([x + half // 2 for x in lo])
        masks.append((h, lo, hi))
        new = list(rows)
        for i in range(lanes):
            if (i // h) % 2 == 0:
                both = rows[i] + rows[i + h]
                new[i], new[i + h] = [both[x] for x in lo], [both[x] for x in hi]
        rows = new
        h *= 2
    order = []
    for labels in rows:
        column = labels[0][1]
        assert labels == [(i, column) for i in range(lanes)], labels  # a whole source column
        order.append(column)
    return masks, order


@intrinsic
def _transpose_tile(typingctx, dst, d_off, ldd, src, s_off, lds):
    """dst[d_off + j ldd + i] = src[s_off + i lds + j] for i, j < lanes (8 float32, 4 float64):
    one square block, loaded as half-rows paired into vectors and transposed by shuffles (see
    :func:`_transpose_plan`)."""
    if not all(isinstance(x, types.Array) and x.dtype == dst.dtype for x in (dst, src)):
        return None
    if not isinstance(dst.dtype, types.Float):
        return None
    lanes = _lanes(dst.dtype, 1, TRANSPOSE_BYTES)
    half = lanes // 2
    masks, order = _transpose_plan(lanes)
    sig = types.void(dst, d_off, ldd, src, s_off, lds)

    def codegen(context, builder, signature, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        dp, sp = (_array_data(context, builder, signature, args, i) for i in (0, 3))
        d_off_, ldd_, s_off_, lds_ = _int64s(context, builder, signature, args, (1, 2, 4, 5))
        scalar = context.get_value_type(dst.dtype)
        vec, half_vec = ir.VectorType(scalar, lanes), ir.VectorType(scalar, half)
        item_bytes = dst.dtype.bitwidth // 8

        def half_row(i, col):
            at = builder.add(s_off_, builder.mul(ir.Constant(i64, i), lds_))
            return _load(builder, sp, builder.add(at, ir.Constant(i64, col)), half_vec, item_bytes)

        join = ir.Constant(ir.VectorType(i32, lanes), list(range(lanes)))
        rows = [
            builder.shuffle_vector(half_row(i, col), half_row(i + half, col), join)
            for col in (0, half)
            for i in range(half)
        ]
        for h, lo, hi in masks:
            mask_lo = ir.Constant(ir.VectorType(i32, lanes), lo)
            mask_hi = ir.Constant(ir.VectorType(i32, lanes), hi)
            new = list(rows)
            for i in range(lanes):
                if (i // h) % 2 == 0:
                    x, y = rows[i], rows[i + h]
                    new[i] = builder.shuffle_vector(x, y, mask_lo)
                    new[i + h] = builder.shuffle_vector(x, y, mask_hi)
            rows = new
        for row, j in zip(rows, order, strict=True):
            ptr = builder.gep(dp, [builder.add(d_off_, builder.mul(ir.Constant(i64, j), ldd_))])
            builder.store(row, builder.bitcast(ptr, vec.as_pointer()), align=item_bytes)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _copy_element(typingctx, dst, d_at, src, s_at):
    """dst[d_at] = src[s_at], element offsets from each array's first element."""
    if not all(isinstance(x, types.Array) for x in (dst, src)) or dst.dtype != src.dtype:
        return None
    sig = types.void(dst, d_at, src, s_at)

    def codegen(context, builder, signature, args):
        dp, sp = (_array_data(context, builder, signature, args, i) for i in (0, 2))
        d_at_, s_at_ = _int64s(context, builder, signature, args, (1, 3))
        builder.store(builder.load(builder.gep(sp, [s_at_])), builder.gep(dp, [d_at_]))
        return context.get_dummy_value()

    return sig, codegen


@njit(**_JIT)
def transpose(dst, d_off, ldd, src, s_off, lds, n_rows, n_cols):
    """dst[d_off + j ldd + i] = src[s_off + i lds + j] for i < n_rows, j < n_cols: square
    blocks of SIMD width through shuffles, the edges element by element."""
    lanes = TRANSPOSE_BYTES // dst.itemsize
    i = 0
    while i + lanes <= n_rows:
        j = 0
        while j + lanes <= n_cols:
            _transpose_tile(dst, d_off + j * ldd + i, ldd, src, s_off + i * lds + j, lds)
            j += lanes
        for jj in range(j, n_cols):
            for ii in range(i, i + lanes):
                _copy_element(dst, d_off + jj * ldd + ii, src, s_off + ii * lds + jj)
        i += lanes
    for ii in range(i, n_rows):
        for jj in range(n_cols):
            _copy_element(dst, d_off + jj * ldd + ii, src, s_off + ii * lds + jj)
