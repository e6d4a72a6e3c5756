"""Training passes of small networks on short batches, with one agent per SIMD lane.

A small network's products (8-16-1: 8 x 16 and 16 x 1 per sample) are too short for register
tiles along the batch to pay for their set-up, loads and lane sums. Here a chunk of V agents
(V = the lanes of a 64-byte vector, or of a 32-byte one without AVX-512: 16 / 8 float32, 8 / 4
float64) is transposed so that every parameter and every activation of the chunk is one vector
of V lanes, one agent per lane, and the products become sums of lane vectors
(:func:`lane_tile`): no lane sums, no transposes inside the pass, every multiply-add a full
vector. Each lane runs exactly the arithmetic its agent would alone (sums in a fixed order, the
same element-wise functions), so results do not depend on the chunking or the thread count.

Layout of a chunk (offsets in elements; each "element" below is V consecutive values, one per
lane): parameters ``W[k]`` at ``k V`` (the canonical row order of :mod:`simulator.kernels.mlp`),
gradients ``G[k]`` likewise, and layer ``l``'s activations for sample ``b``, unit ``i`` at
``(b d_l + i) V``.

The forward pass sums as mlp's register tiles do (the bias, then the inputs in order, one
multiply-add each; :func:`lane_tile_cols` runs two samples at once, each summed the same way).
The MSE loss of a linear output is computed side by side, its squared errors summed in the
order every MSE loss is summed in (``losses.squares_in_order``); every other output function
and loss runs mlp's per-agent functions on the lane's (K, B) output block. Either way losses are
mlp's to the last bit (``Population.loss``, the probe pass and the gradient pass agree exactly).
The weight gradients sum over the batch in order (the register tiles sum some of them in vector
lanes): parameters after a step differ from the register tiles' in their last bits. Plain SGD
updates the chunk side by side (:func:`_lane_sgd`); every other optimizer runs mlp's per-agent
update on the agent's gradient row, so every loss, output function and optimizer is supported
as it is there. Measured (one
thread, 1,000 agents, alternated with the register tiles in one process, 2026-12-06): see the
README's Performance section; wider layers (4-32-32-2, 16-32-10) and longer batches (8-16-1
with B >= 64) were slower in lanes, hence :data:`LANE_MAX_WIDTH` and :data:`LANE_MAX_MACS`.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from simulator.kernels.activations import (
    F1,
    IDENTITY,
    OUT_SOFTMAX,
    RELU,
    SIGMOID,
    TANH,
    derivative,
)
from simulator.kernels.arrays import borrow, flat
from simulator.kernels.gemm import (
    VECTOR_BYTES,
    _array_data,
    _counted_loop,
    _fmuladd,
    _int64s,
    _load,
    transpose,
    wide_vectors,
)
from simulator.kernels.losses import MSE, SUM_PARTS, _output_delta, _scales, _softmax_block
from simulator.kernels.mlp import (
    _JIT,
    DIVERGED,
    MODE_GRAD,
    MODE_LOSS,
    MODE_TRAIN,
    OK,
    _activate_block,
    _activate_in_place,
    _borrowed_net,
    _max_width,
    _status,
    macs_per_sample,
)
from simulator.kernels.optim import SGD, _as_type_of, apply_update

LANE_MAX_WIDTH = 16
"""The widest layer (inputs and outputs included) trained in lanes; wider networks go through
the register tiles of :mod:`simulator.kernels.mlp`."""


LANE_MAX_MACS = 4_608
"""The most multiply-adds of one agent's forward pass over its batch (B sum_l d_{l-1} d_l)
trained in lanes. Lanes win where an agent's products are too small for tiles along the batch
(one thread, float32, against the register tiles: 8-16-1 with B = 32, 4,608 multiply-adds,
1.2-1.6x; 2-8-1 with B = 16 2.4x; 1-1 with B = 256 1.3x) and lose once the batch is long
enough to fill the tiles (8-16-1: B = 64 0.95-0.98x, B = 128 0.65-0.82x, B = 512 0.68x)."""

CHUNKS_PER_ITERATION = 4
"""Chunks of agents handled by one iteration of the parallel loop (with one scratch buffer)."""


def lanes_of(dtype) -> int:
    """Agents per chunk: the lanes of one vector of ``dtype``."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def _tile_codegen(lanes, n_rows, n_cols, dtype):
    """The code of :func:`lane_tile` (one column) and :func:`lane_tile_cols` (``n_cols``):
    arguments (c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init, i_off,
    i_step, use_init, post, p_off, p_step, use_post, rows[, c_col, a_col, cols])."""

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        cp, ap, bp, ip, pp = (
            _array_data(context, builder, signature, args, i) for i in (0, 3, 6, 11, 15)
        )
        (c_off_, c_step_, a_off_, a_step_, b_off_, b_kstep_, b_rstep_, n_k_, i_off_, i_step_,
         p_off_, p_step_) = _int64s(
            context, builder, signature, args, (1, 2, 4, 5, 7, 8, 9, 10, 12, 13, 16, 17)
        )  # fmt: skip
        if n_cols > 1:
            c_col_, a_col_ = _int64s(context, builder, signature, args, (20, 21))
        else:
            c_col_ = a_col_ = ir.Constant(i64, 0)
        use_init_ = context.cast(builder, args[14], signature.args[14], types.boolean)
        use_post_ = context.cast(builder, args[18], signature.args[18], types.boolean)
        scalar = context.get_value_type(dtype)
        vec = ir.VectorType(scalar, lanes)
        item = dtype.bitwidth // 8
        fma = _fmuladd(builder, vec)

        def at(off, step, r):
            return builder.add(off, builder.mul(ir.Constant(i64, r), step))

        zero = ir.Constant(vec, None)
        inits = [
            builder.select(use_init_, _load(builder, ip, at(i_off_, i_step_, r), vec, item), zero)
            for r in range(n_rows)
        ]
        start = inits * n_cols  # accumulator (s, r) at s n_rows + r

        def body(k, acc):
            a_k = builder.add(a_off_, builder.mul(k, a_step_))
            a_s = [_load(builder, ap, at(a_k, a_col_, s), vec, item) for s in range(n_cols)]
            row = builder.add(b_off_, builder.mul(k, b_kstep_))
            b_r = [_load(builder, bp, at(row, b_rstep_, r), vec, item) for r in range(n_rows)]
            return [
                builder.call(fma, [a_s[s], b_r[r], acc[s * n_rows + r]])
                for s in range(n_cols)
                for r in range(n_rows)
            ]

        final = _counted_loop(builder, n_k_, start, body)
        scales = [_load(builder, pp, at(p_off_, p_step_, r), vec, item) for r in range(n_rows)]
        for s in range(n_cols):
            c_s = at(c_off_, c_col_, s)
            for r in range(n_rows):
                value = final[s * n_rows + r]
                value = builder.select(use_post_, builder.fmul(value, scales[r]), value)
                ptr = builder.gep(cp, [at(c_s, c_step_, r)])
                builder.store(value, builder.bitcast(ptr, vec.as_pointer()), align=item)
        return context.get_dummy_value()

    return codegen


def _tile_types_ok(c, a, b, init, post):
    return all(isinstance(x, types.Array) and x.dtype == c.dtype for x in (c, a, b, init, post))


# fmt: off
@intrinsic
def lane_tile(typingctx, c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k,
              init, i_off, i_step, use_init, post, p_off, p_step, use_post, rows):
    # fmt: on
    """``rows`` (literal) lane vectors of C:
    C[r] = (init[r] if use_init else 0) + sum_k A[k] * B[k, r], times post[r] if use_post,
    with C[r] at ``c_off + r c_step``, A[k] at ``a_off + k a_step``, B[k, r] at
    ``b_off + k b_kstep + r b_rstep``, init[r] at ``i_off + r i_step``, post[r] at
    ``p_off + r p_step`` (element offsets; each a vector of V lanes). The sums run over k in
    order, one multiply-add each, in registers. ``init`` and ``post`` are read whatever the
    flags: their offsets must address the array even when unused."""
    if not isinstance(rows, types.IntegerLiteral) or not _tile_types_ok(c, a, b, init, post):
        return None
    lanes = VECTOR_BYTES * 8 // c.dtype.bitwidth
    sig = types.void(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init,
                     i_off, i_step, use_init, post, p_off, p_step, use_post, rows)  # fmt: skip
    return sig, _tile_codegen(lanes, rows.literal_value, 1, c.dtype)


# fmt: off
@intrinsic
def lane_tile_cols(typingctx, c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep,
                   n_k, init, i_off, i_step, use_init, post, p_off, p_step, use_post, rows,
                   c_col, a_col, cols):
    # fmt: on
    """:func:`lane_tile` for ``cols`` (literal) columns s sharing B, init and post:
    C[s, r] at ``c_off + s c_col + r c_step`` from A[s, k] at ``a_off + s a_col + k a_step``,
    each exactly as :func:`lane_tile` computes C[r] (the same order: results do not depend on
    the tiling). Each B[k, r] is loaded once for every column."""
    if not isinstance(rows, types.IntegerLiteral) or not isinstance(cols, types.IntegerLiteral):
        return None
    if not _tile_types_ok(c, a, b, init, post):
        return None
    lanes = VECTOR_BYTES * 8 // c.dtype.bitwidth
    sig = types.void(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init,
                     i_off, i_step, use_init, post, p_off, p_step, use_post, rows, c_col, a_col,
                     cols)  # fmt: skip
    return sig, _tile_codegen(lanes, rows.literal_value, cols.literal_value, c.dtype)


# fmt: off
@njit(inline="always", **_JIT)
def lane_products(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init,
                  i_off, i_step, use_init, post, p_off, p_step, use_post, n_rows):
    """:func:`lane_tile` over ``n_rows`` rows, in tiles of 8, 4, 2 and 1 rows."""
    r = 0
    while r + 8 <= n_rows:
        lane_tile(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                  b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                  p_off + r * p_step, p_step, use_post, 8)
        r += 8
    if r + 4 <= n_rows:
        lane_tile(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                  b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                  p_off + r * p_step, p_step, use_post, 4)
        r += 4
    if r + 2 <= n_rows:
        lane_tile(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                  b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                  p_off + r * p_step, p_step, use_post, 2)
        r += 2
    if r < n_rows:
        lane_tile(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                  b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                  p_off + r * p_step, p_step, use_post, 1)
# fmt: on


PAIR_ROWS = 8 if VECTOR_BYTES == 64 else 4
"""Rows of a two-column tile (:func:`lane_products_2`): 2 x 8 accumulators, 8 B and 2 A vectors
fill 26 of AVX-512's 32 vector registers; half of that with 16 registers."""


# fmt: off
@njit(inline="always", **_JIT)
def lane_products_2(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init,
                    i_off, i_step, use_init, post, p_off, p_step, use_post, n_rows, c_col,
                    a_col):
    """:func:`lane_products` for two columns at once (C[s, r] at ``c_off + s c_col``, A[s, k] at
    ``a_off + s a_col``; :func:`lane_tile_cols`), sharing B, init and post: B is loaded once
    for both. The same results as two calls of :func:`lane_products`."""
    r = 0
    while r + PAIR_ROWS <= n_rows:
        lane_tile_cols(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                       b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                       p_off + r * p_step, p_step, use_post, PAIR_ROWS, c_col, a_col, 2)
        r += PAIR_ROWS
    if r + 4 <= n_rows and PAIR_ROWS > 4:
        lane_tile_cols(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                       b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                       p_off + r * p_step, p_step, use_post, 4, c_col, a_col, 2)
        r += 4
    if r + 2 <= n_rows:
        lane_tile_cols(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                       b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                       p_off + r * p_step, p_step, use_post, 2, c_col, a_col, 2)
        r += 2
    if r < n_rows:
        lane_tile_cols(c, c_off + r * c_step, c_step, a, a_off, a_step, b, b_off + r * b_rstep,
                       b_kstep, b_rstep, n_k, init, i_off + r * i_step, i_step, use_init, post,
                       p_off + r * p_step, p_step, use_post, 1, c_col, a_col, 2)
# fmt: on


@njit(**_JIT)
def _derivative_lanes(kind, a, out):
    """out = f'(a) over a flat block, for the activations kept as a = f(z) alone (tanh,
    sigmoid, ReLU, identity: see mlp._in_place), with z read as a as there."""
    wide_vectors()
    n = a.shape[0]
    if kind == TANH:
        for k in range(n):
            out[k] = derivative(TANH, a[k], a[k])
    elif kind == RELU:
        for k in range(n):
            out[k] = derivative(RELU, a[k], a[k])
    else:
        for k in range(n):
            out[k] = derivative(kind, a[k], a[k])


@njit(inline="always")
def _act_offsets(dims, batch, lanes):
    """Start of each layer's activations block (B d_l V elements) in the activations area."""
    n = dims.shape[0]
    offs = np.empty(n + 1, dtype=np.int64)
    offs[0] = 0
    for l in range(n):
        offs[l + 1] = offs[l] + batch * dims[l] * lanes
    return offs


@njit(**_JIT)
def _lane_scratch_size(dims, batch, n_params, lanes):
    """Elements of one chunk's scratch (see :func:`_lane_chunk`)."""
    n = dims.shape[0]
    acts = 0
    for l in range(n):
        acts += batch * dims[l] * lanes
    width, k = _max_width(dims), dims[n - 1]
    return (3 * n_params * lanes + acts + 2 * batch * width * lanes + 3 * k * batch + 2 * batch
            + 2 * batch * k * lanes + 12 * lanes)  # fmt: skip


@njit(inline="always")
def _gather(lo, n, params, X, W, A, V):
    """Parameters into W (n_params, V) and inputs into A (B, d_0, V): agent lo + l in lane l,
    the last agent repeated in the lanes past n; X may be shared (its first dim 1)."""
    n_params = params.shape[1]
    if n == V:
        transpose(W, 0, V, flat(params), lo * n_params, n_params, V, n_params)
    else:
        for l in range(V):
            for k in range(n_params):
                W[k * V + l] = params[lo + min(l, n - 1), k]
    _gather_rows(lo, n, X, A, V, params.shape[0])


@njit(inline="always")
def _gather_rows(lo, n, X, A, V, n_agents):
    """X (P or 1, B, d) into A (B, d, V): agent lo + l's rows in lane l, the last agent
    repeated in the lanes past n; X may be shared (its first dim 1)."""
    size = X.shape[1] * X.shape[2]
    if X.shape[0] == n_agents and n == V:
        transpose(A, 0, V, flat(X), lo * size, size, V, size)
    else:
        each = X.shape[0] == n_agents
        for l in range(V):
            x = flat(X[(lo + min(l, n - 1)) * each])
            for k in range(size):
                A[k * V + l] = x[k]


# fmt: off
@njit(inline="always")
def _forward(net, offs, batch, W, A, V):
    """Every layer's activations (the output layer's z) into A, layer l's block at offs[l]."""
    dims, w_offs, b_offs, acts = net.dims, net.w_off, net.b_off, net.acts
    n_layers = dims.shape[0] - 1
    for layer in range(n_layers):
        di, do = dims[layer], dims[layer + 1]
        a_in, a_out = offs[layer], offs[layer + 1]
        w_off, b_off = w_offs[layer], b_offs[layer]
        has_bias = b_off >= 0
        bias_at = max(b_off, 0) * V
        if do >= 4:  # per pair of samples, tiles over the outputs
            for b in range(0, batch - 1, 2):
                lane_products_2(A, a_out + b * do * V, V, A, a_in + b * di * V, V, W, w_off * V,
                                do * V, V, di, W, bias_at, V, has_bias, W, 0, 0, False, do,
                                do * V, di * V)
            if batch % 2:
                b = batch - 1
                lane_products(A, a_out + b * do * V, V, A, a_in + b * di * V, V, W, w_off * V,
                              do * V, V, di, W, bias_at, V, has_bias, W, 0, 0, False, do)
        else:  # per output, tiles over the samples
            for j in range(do):
                lane_products(A, a_out + j * V, do * V, W, (w_off + j) * V, do * V, A, a_in, V,
                              di * V, di, W, bias_at + j * V * has_bias, 0, has_bias, W, 0, 0,
                              False, batch)
        if layer < n_layers - 1:
            _activate_in_place(acts[layer], A[a_out : a_out + batch * do * V])


@njit(inline="always")
def _backward(net, offs, batch, W, A, G, D, D_next, ones, V):
    """Gradients of every layer into G from the output delta in D (B, d_L, V); D and D_next
    hold the hidden layers' deltas in turn."""
    dims, w_offs, b_offs, acts = net.dims, net.w_off, net.b_off, net.acts
    for layer in range(dims.shape[0] - 2, -1, -1):
        di, do = dims[layer], dims[layer + 1]
        a_in = offs[layer]
        w_off, b_off = w_offs[layer], b_offs[layer]
        if do >= di:  # weight gradients: per pair of inputs, tiles over the outputs
            for i in range(0, di - 1, 2):
                lane_products_2(G, (w_off + i * do) * V, V, A, a_in + i * V, di * V, D, 0,
                                do * V, V, batch, W, 0, 0, False, W, 0, 0, False, do, do * V, V)
            if di % 2:
                i = di - 1
                lane_products(G, (w_off + i * do) * V, V, A, a_in + i * V, di * V, D, 0, do * V,
                              V, batch, W, 0, 0, False, W, 0, 0, False, do)
        else:  # per output, tiles over the inputs
            for j in range(do):
                lane_products(G, (w_off + j) * V, do * V, D, j * V, do * V, A, a_in, di * V, V,
                              batch, W, 0, 0, False, W, 0, 0, False, di)
        if b_off >= 0:
            lane_products(G, b_off * V, V, ones, 0, 0, D, 0, do * V, V, batch, W, 0, 0, False,
                          W, 0, 0, False, do)
        if layer == 0:
            break
        # the layer below's delta: (W delta) f'(a), the derivative as each product's factor
        _derivative_lanes(acts[layer - 1], A[a_in : a_in + batch * di * V],
                          D_next[: batch * di * V])
        for b in range(batch):
            lane_products(D_next, b * di * V, V, D, b * do * V, V, W, w_off * V, V, do * V, do,
                          W, 0, 0, False, D_next, b * di * V, V, True, di)
        D, D_next = D_next, D


@njit(**_JIT)
def _lane_chunk(lo, owned, params_, X_, Y_, net_, opt, mode, losses, status, grads_, scales,
                lanes):
    # fmt: on
    """Agents lo .. lo + lanes - 1 (those below P) of :func:`population_lanes`, side by side;
    ``owned`` is the chunk's scratch (:func:`_lane_scratch_size` elements). Every array is
    borrowed (no reference counting on the shared arrays, as in mlp._pass_chunk)."""
    wide_vectors()
    params, X, Y, grads = borrow(params_), borrow(X_), borrow(Y_), borrow(grads_)
    net = _borrowed_net(net_)
    scratch = borrow(owned)
    V = lanes
    n_agents, n_params = params.shape
    batch = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    K = dims[n_layers]
    n = min(V, n_agents - lo)
    width = _max_width(dims)
    offs = _act_offsets(dims, batch, V)
    # the scratch, carved (sizes in _lane_scratch_size)
    W = scratch[: n_params * V]  # parameters, then gradients right after them (_lane_sgd)
    G = scratch[n_params * V : 2 * n_params * V]
    rows = scratch[2 * n_params * V : 3 * n_params * V]  # (V, n_params): gradient rows
    at = 3 * n_params * V
    A = scratch[at : at + offs[n_layers + 1]]  # every layer's activations
    at += offs[n_layers + 1]
    D0 = scratch[at : at + batch * width * V]  # deltas
    D1 = scratch[at + batch * width * V : at + 2 * batch * width * V]
    at += 2 * batch * width * V
    zk = scratch[at : at + K * batch].reshape((K, batch))  # one agent's z, o and delta, (K, B)
    ok = scratch[at + K * batch : at + 2 * K * batch].reshape((K, batch))
    dk = scratch[at + 2 * K * batch : at + 3 * K * batch].reshape((K, batch))
    at += 3 * K * batch
    tmp = scratch[at : at + 2 * batch]
    at += 2 * batch
    check = scratch[at : at + V]  # per lane: the new parameters' magnitudes (_lane_sgd)
    ones = scratch[at + V : at + 2 * V]
    parts = scratch[at + 2 * V : at + 7 * V]  # partial sums (_lane_parts)
    coef = scratch[at + 7 * V : at + 9 * V]  # per-lane factors (_lane_sgd)
    zeros = scratch[at + 9 * V : at + 10 * V]
    finite = scratch[at + 10 * V : at + 12 * V]  # per lane: inputs x 0, targets x 0, summed
    at += 12 * V
    Yl = scratch[at : at + batch * K * V]  # targets, side by side (as z: sample-major)
    T = scratch[at + batch * K * V : at + 2 * batch * K * V]  # squared errors, output-major
    for l in range(V):
        ones[l] = F1
        zeros[l] = ones[l] * 0

    _gather(lo, n, params, X, W, A, V)
    _forward(net, offs, batch, W, A, V)
    # output function, loss and output delta into D0: the forward pass above sums in the order
    # of mlp's (bias first, then the inputs in order, one multiply-add each) and the loss in
    # the order of losses.squares_in_order (MSE) or through mlp's own per-agent functions
    # (the others), so the losses are mlp's to the last bit (those of Population.loss and of
    # the probe pass)
    z = A[offs[n_layers] : offs[n_layers] + batch * K * V]
    out_kind = net.acts[n_layers - 1]
    y_each = Y.shape[0] == n_agents
    _lane_sum(finite, 0, A, batch * dims[0], zeros, parts)  # inputs x 0: 0 where all finite
    if out_kind == IDENTITY and net.loss == MSE:  # side by side
        _gather_rows(lo, n, Y, Yl, V, n_agents)
        _lane_mse(z, Yl, D0, T, scales[2], batch, K)
        _lane_sum(check, 0, T, batch * K, ones, parts)  # the squared errors, summed
        _lane_sum(finite, V, Yl, batch * K, zeros, parts)  # targets x 0
        for l in range(n):
            loss = check[l] * scales[1]
            losses[lo + l] = loss
            status[lo + l] = _status(finite[l] == 0, finite[V + l] == 0, loss)
        n_slow = 0
    else:  # agent by agent
        n_slow = n
    for l in range(n_slow):
        p = lo + l
        for k in range(K):
            for b in range(batch):
                zk[k, b] = z[(b * K + k) * V + l]
        if out_kind == OUT_SOFTMAX:
            _softmax_block(zk, ok, tmp, True)
        else:
            _activate_block(out_kind, zk, ok)
        loss, finite_y = _output_delta(
            out_kind, net.loss, zk, ok, Y, np.int64(p) * y_each, dk, tmp, scales
        )
        losses[p] = loss
        status[p] = _status(finite[l] == 0, finite_y, loss)
        for k in range(K):
            for b in range(batch):
                D0[(b * K + k) * V + l] = dk[k, b]
    if mode == MODE_LOSS:
        return
    for l in range(n, V):  # the repeated lanes: no gradient flows
        for k in range(batch * K):
            D0[k * V + l] = 0
    _backward(net, offs, batch, W, A, G, D0, D1, ones, V)
    if mode == MODE_TRAIN and opt.kind == SGD and opt.clip_norm <= 0:
        _lane_sgd(lo, n, params, scratch, rows, coef, check, parts, opt, status)
        return
    # gradient rows, then each agent's own update (the optimizer code of mlp)
    transpose(rows, 0, n_params, G, 0, V, n_params, V)
    for l in range(n):
        p = lo + l
        g = rows[l * n_params : (l + 1) * n_params]
        if mode == MODE_GRAD:
            for k in range(n_params):
                grads[p, k] = g[k]
        elif status[p] == OK:
            if not apply_update(p, params[p], g, opt, True):
                status[p] = DIVERGED


@njit(**_JIT)
def _lane_sgd(lo, n, params, WG, mags, coef, check, parts, opt, status):
    """Plain SGD (optim.apply_update's definition: p - lr (g + wd p), refused when the new
    values' magnitudes do not sum to a finite value within the dtype's range), side by side.
    WG: the chunk's parameters W then its gradients G (n_params V each, as in
    :func:`_lane_chunk`'s scratch); the new values replace W, then the rows of the agents whose
    status is OK. mags: (n_params V,), coef: (2 V,), check: (V,), parts: (5 V,) scratch."""
    wide_vectors()
    V = check.shape[0]
    n_params = params.shape[1]
    size = n_params * V
    W = WG[:size]
    zero = W[0] * 0
    for l in range(V):
        lr = opt.lr[lo + min(l, n - 1)]
        coef[l] = -_as_type_of(lr, zero)
        coef[V + l] = -_as_type_of(lr * opt.weight_decay, zero)
    # W[r] <- W[r] - lr G[r] - lr wd W[r], one multiply-add each (G[r] at size + r V)
    lane_products(WG, 0, V, coef, 0, V, WG, size, -size, V, 2, WG, 0, V, True, WG, 0, 0, False,
                  n_params)  # fmt: skip
    for k in range(size):
        mags[k] = abs(W[k])
    for l in range(V):
        coef[l] = zero + 1
    _lane_sum(check, 0, mags, n_params, coef[:V], parts)
    every = n == V
    for l in range(n):
        p = lo + l
        if status[p] == OK and not check[l] <= opt.limit:
            status[p] = DIVERGED
        every = every and status[p] == OK
    if every:
        transpose(flat(params), lo * n_params, n_params, W, 0, V, n_params, V)
    else:
        for l in range(n):
            if status[lo + l] == OK:
                for k in range(n_params):
                    params[lo + l, k] = W[k * V + l]
    for l in range(n):
        if status[lo + l] == OK:
            opt.t[lo + l] += 1


@njit(inline="always", **_JIT)
def _lane_parts(parts, src, count, factor):
    """The partial sums of sum_k src[k V + l] * factor[l] (k < count) of each lane l, in the
    order of losses.squares_in_order: parts[r V + l] (r < 4) the terms k = r mod 4 below
    4 floor(count / 4), in order, parts[4 V + l] the rest. ``parts`` is (5 V,) scratch."""
    V = factor.shape[0]
    q = count // SUM_PARTS
    lane_tile(parts, 0, V, factor, 0, 0, src, 0, 4 * V, V, q, factor, 0, 0, False, factor, 0, 0,
              False, 4)  # fmt: skip
    lane_tile(parts, 4 * V, 0, factor, 0, 0, src, 4 * q * V, V, 0, count - 4 * q, factor, 0, 0,
              False, factor, 0, 0, False, 1)  # fmt: skip


@njit(cache=True, error_model="numpy", fastmath=False)  # set: see losses.squares_in_order
def _parts_in_order(parts, l, V):
    """Lane l's sum from :func:`_lane_parts`: ((p0 + p1) + (p2 + p3)) + p4."""
    return ((parts[l] + parts[V + l]) + (parts[2 * V + l] + parts[3 * V + l])) + parts[4 * V + l]


@njit(inline="always", **_JIT)
def _lane_sum(out, o_off, src, count, factor, parts):
    """out[o_off + l] = sum_k src[k V + l] * factor[l] for each lane l (k < count), by
    :func:`_lane_parts`."""
    _lane_parts(parts, src, count, factor)
    for l in range(factor.shape[0]):
        out[o_off + l] = _parts_in_order(parts, l, factor.shape[0])


@njit(**_JIT)
def _lane_mse(z, y, delta, terms, two_inv, batch, K):
    """A chunk's output delta ``(z - y) two_inv`` (losses._output_delta's MSE with a linear
    output) and squared errors ``(z - y)^2`` (rounded), over blocks of B K V elements: z, y and
    delta sample-major ((b K + k) V + l), terms output-major ((k B + b) V + l, the order of
    losses.squares_in_order) for :func:`_lane_parts`."""
    wide_vectors()
    if K == 1:
        for e in range(z.shape[0]):
            diff = z[e] - y[e]
            terms[e] = diff * diff
            delta[e] = diff * two_inv
        return
    V = z.shape[0] // (batch * K)
    for b in range(batch):
        for k in range(K):
            src, dst = (b * K + k) * V, (k * batch + b) * V
            for l in range(V):
                diff = z[src + l] - y[src + l]
                terms[dst + l] = diff * diff
                delta[src + l] = diff * two_inv


@njit(parallel=True, **_JIT)
def population_lanes(params, X, Y, net, opt, mode, losses, status, grads, lanes):
    """mlp._population_pass for MODE_LOSS, MODE_GRAD and MODE_TRAIN of a network eligible
    for lanes (:func:`eligible`), ``lanes`` agents per chunk."""
    wide_vectors()
    n_agents, n_params = params.shape
    dims = net.dims
    n_layers = dims.shape[0] - 1
    n_scratch = _lane_scratch_size(dims, X.shape[1], n_params, lanes)
    scales = _scales(X.shape[1], dims[n_layers], params.dtype)
    n_chunks = (n_agents + lanes - 1) // lanes
    for c in prange((n_chunks + CHUNKS_PER_ITERATION - 1) // CHUNKS_PER_ITERATION):
        wide_vectors()
        # one scratch allocation per iteration (a chunk's can exceed 128 KiB, where malloc
        # maps fresh pages from the system on every call), reused by its chunks
        scratch = np.empty(n_scratch, dtype=params.dtype)
        first = c * CHUNKS_PER_ITERATION
        for chunk in range(first, min(n_chunks, first + CHUNKS_PER_ITERATION)):
            _lane_chunk(chunk * lanes, scratch, params, X, Y, net, opt, mode, losses, status,
                        grads, scales, lanes)  # fmt: skip


IN_PLACE = (TANH, SIGMOID, RELU, IDENTITY)


def eligible(net, mode: int, batch: int = 32) -> bool:
    """Whether a pass of ``mode`` over networks ``net`` on ``batch`` samples runs in lanes:
    loss, gradient and training passes of networks at most :data:`LANE_MAX_WIDTH` wide, with at
    most :data:`LANE_MAX_MACS` multiply-adds in a forward pass over the batch, whose hidden
    layers keep only f(z) (not the step function, whose derivative needs z).

    Loss passes give the register tiles' bits either way; in lanes, a model's build (which
    computes its initial losses) compiles no kernel its steps do not use: the register tiles'
    pass is ~50 s of a cold start's compiling. Speed against the register tiles (10,000
    agents, B = 32, one and two threads): 8-16-1 float32 1.25-1.5x, float64 0.96-0.98x; 1-1
    3-4x; 2-8-1 float32 2.7-2.9x, float64 1.4-1.6x."""
    if mode not in (MODE_LOSS, MODE_GRAD, MODE_TRAIN):
        return False
    dims, acts = (np.asarray(a, dtype=np.int64).tobytes() for a in (net.dims, net.acts))
    return _shape_fits(dims, acts) and (
        batch * macs_per_sample(net.dims) <= LANE_MAX_MACS
    )


@functools.lru_cache(maxsize=256)
def _shape_fits(dims: bytes, acts: bytes) -> bool:
    """Widths (int64) at most LANE_MAX_WIDTH and hidden activations (int64) in IN_PLACE;
    remembered per network shape (every pass asks)."""
    widths, kinds = np.frombuffer(dims, dtype=np.int64), np.frombuffer(acts, dtype=np.int64)
    return int(widths.max()) <= LANE_MAX_WIDTH and all(int(k) in IN_PLACE for k in kinds[:-1])
