"""Kernels that draw every agent's minibatch in one parallel call.

Each kernel fills preallocated ``X`` (P, B, d_in) and ``Y`` (P, B, d_out) (float32 or float64,
C-contiguous) in place. Agent ``a``'s numbers at ``step`` come from its own Philox streams
(:mod:`simulator.kernels.random`), keyed by the task's key and counted by
``(index, a, step, purpose)``, and each iteration writes only its own rows: the batch is a pure
function of (key, step, agent), identical on 1 or N threads, whatever the call order. The only
temporaries are per-chunk buffers: the teacher's scratch, and for streams of at most
``SHORT_STREAM`` numbers per agent (and the label noise) one chunk's numbers, ``CHUNK`` agents'
worth of one array of the batch.

Purposes (the fourth counter word) keep the streams of one agent and step apart.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from simulator.kernels.arrays import flat
from simulator.kernels.gemm import transpose, wide_vectors
from simulator.kernels.random import (
    _U64,
    ndtri,
    normals_across,
    normals_into,
    philox4x32,
    uniform32,
    uniform53,
)
from simulator.kernels.teacher_tile import LANES, teacher_tile, transpose_rows

__all__ = [
    "CHUNK",
    "CLASS",
    "INPUT",
    "NOISE",
    "arrays_sample",
    "digits_sample",
    "mixture_sample",
    "ring_sample",
    "separable_sample",
    "teacher_forward",
    "teacher_sample",
]

INPUT, NOISE, CLASS = 0, 1, 2  # purposes: input normals, output noise, choices of class/row
CHUNK = 64  # agents per parallel work item (one set of small buffers per chunk)
# SIMD vectors of rows in flight in the teacher's forward pass (8-16-1 teacher, one thread,
# time per row: 4 vectors 0.9x the time of 2 and 0.73x that of 1; more would spill registers)
TILE = 4
SUB = 256  # rows per pass of a shared teacher (its scratch fits in a 32 KB L1 cache)
# Numbers per agent up to which a chunk's streams are drawn side by side (normals_across, SIMD
# lanes over agents) rather than one agent at a time (normals_into). 10,000 agents, two
# threads, float32 / float64: 16 numbers each 2.5x / 1.9x faster side by side, 32 1.4x / 1.4x,
# 64 1.05x / 1.2x, 256 0.7x / 0.8x.
SHORT_STREAM = 64


@njit(inline="always")
def _normals_rows(out, k0, k1, agent0, step, purpose):
    """Row ``r`` of ``out`` (A, n), C-contiguous, gets the normals of stream ``(agent0 + r,
    step, purpose)`` (those of :func:`normals_into`, bit for bit)."""
    A, n = out.shape
    if n > SHORT_STREAM:
        for r in range(A):
            normals_into(out[r], k0, k1, agent0 + r, step, purpose)
        return
    K = (n + 3) // 4 * 4
    z = np.empty((K, A), dtype=out.dtype)
    normals_across(z, np.empty((K, A), dtype=np.uint32), k0, k1, agent0, step, purpose)
    transpose(out, 0, n, z, 0, A, n, A)  # out[r, i] = z[i, r], by SIMD blocks


# ---------------------------------------------------------------------------- teacher
@njit(inline="always")
def _agent_teacher(W1, b1, W2T, D1, Db1, D2T, t, div, w1, c1, w2t):
    """Teacher ``t``'s weights ``base + div * delta[t]`` into w1, c1, w2t (float32)."""
    for i in range(W1.shape[0]):
        for j in range(W1.shape[1]):
            w1[i, j] = W1[i, j] + div * D1[t, i, j]
    for j in range(b1.shape[0]):
        c1[j] = b1[j] + div * Db1[t, j]
    for k in range(W2T.shape[0]):
        for j in range(W2T.shape[1]):
            w2t[k, j] = W2T[k, j] + div * D2T[t, k, j]


def _inputs_t(x, xt, n):  # pragma: no cover - overloaded below
    """``xt[i n + b] = float32(x[b, i])`` for every row b of x (B, d_in); rows B..n-1 zero."""


@overload(_inputs_t)
def _inputs_t_overload(x, xt, n):
    if x.dtype == types.float32:

        def impl(x, xt, n):  # blocks transposed by shuffles
            B, d_in = x.shape
            if d_in == 8 and LANES == 16:  # LANES rows at a time, in registers
                for b0 in range(0, B - LANES + 1, LANES):
                    transpose_rows(xt, b0, n, x, b0 * 8, 8)
                rest = B - B % LANES
                for b in range(rest, B):
                    for i in range(d_in):
                        xt[i * n + b] = x[b, i]
            else:
                transpose(xt, 0, n, x, 0, d_in, B, d_in)
            _zero_tail(xt, B, n, d_in)

        return impl

    def impl(x, xt, n):
        B, d_in = x.shape
        for b in range(B):
            for i in range(d_in):
                xt[i * n + b] = np.float32(x[b, i])
        _zero_tail(xt, B, n, d_in)

    return impl


@njit(inline="always")
def _zero_tail(xt, B, n, d_in):
    for i in range(d_in):
        for b in range(B, n):
            xt[i * n + b] = 0.0


@njit(inline="always")
def _linear_rows(x, y, W, b, scale, acc):
    """``y[r] = scale * (x[r] W + b)`` for every row r of a linear teacher, the sum in float32.

    x (R, d_in) any float dtype (rounded to float32), y (R, d_out) written, W (d_in, d_out), b
    (d_out,) float32, ``acc`` float32 scratch of at least R. Per output k:
    ``a = b[k] + W[0, k] x0 + W[1, k] x1 + ...`` (inputs in order, a multiply and an add each,
    float32), then ``y = a * scale[k]`` in float64, rounded to y's dtype. The loops run along
    the rows, so SIMD lanes hold rows.
    """
    R, d_in = x.shape
    for k in range(W.shape[1]):
        for r in range(R):
            acc[r] = b[k]
        for i in range(d_in):
            w = W[i, k]
            for r in range(R):
                acc[r] = acc[r] + w * np.float32(x[r, i])
        for r in range(R):
            y[r, k] = acc[r] * scale[k]


@njit(inline="always")
def _teacher_rows(x, y, W1, b1, W2T, scale, buf):
    """``y[b] = scale * (tanh(x[b] W1 + b1) W2)`` for every row b; hidden layer in float32.

    A teacher without hidden layer (``W2T`` of shape (d_out, 0); W1 (d_in, d_out), b1
    (d_out,)) is linear: :func:`_linear_rows`.

    x (B, d_in) C-contiguous, any float dtype (rounded to float32), y (B, d_out) written, W1
    (d_in, h), b1 (h,), W2T (d_out, h) float32, scale float64 (d_out,). ``buf`` float32
    scratch of at least :func:`_buf_size` (B). Per row: ``z_j = b1[j] + W1[0, j] x0 + ...``
    (float32, inputs in order, a multiply and an add each), ``fast_tanh``, then
    ``a_k = 0 + W2T[k, 0] t0 + ...`` (hidden units in order) and ``y = a_k * scale[k]`` in
    float64, rounded to y's dtype. The rows go through :func:`teacher_tile` ``TILE`` SIMD
    vectors at a time (x transposed into ``buf`` first), every lane computing exactly what the
    scalar loops computed.
    """
    if W2T.shape[1] == 0:
        _linear_rows(x, y, W1, b1, scale, buf)
        return
    B, d_in = x.shape
    h, d_out = W1.shape[1], W2T.shape[0]
    n = (B + LANES - 1) // LANES * LANES
    xt = buf[: d_in * n]
    acc = buf[d_in * n : d_in * n + d_out * TILE * LANES]
    _inputs_t(x, xt, n)
    t0 = 0
    while t0 < n:  # tiles of TILE vectors, then of 2, then of 1
        left = (n - t0) // LANES
        V = (TILE if left >= TILE else (2 if left >= 2 else 1)) * LANES
        for m in range(d_out * V):
            acc[m] = 0.0
        if left >= TILE:
            teacher_tile(acc, xt, t0, n, W1, b1, W2T, d_in, h, d_out, TILE)
        elif left >= 2:
            teacher_tile(acc, xt, t0, n, W1, b1, W2T, d_in, h, d_out, 2)
        else:
            teacher_tile(acc, xt, t0, n, W1, b1, W2T, d_in, h, d_out, 1)
        for k in range(d_out):
            for m in range(min(V, B - t0)):
                y[t0 + m, k] = acc[k * V + m] * scale[k]
        t0 += V


@njit(inline="always")
def _buf_size(rows, d_in, d_out):
    """float32 scratch :func:`_teacher_rows` needs for ``rows`` rows."""
    return d_in * ((rows + LANES - 1) // LANES * LANES) + d_out * TILE * LANES


@njit(parallel=True, cache=True, error_model="numpy")
def teacher_sample(X, Y, k0, k1, step, W1, b1, W2T, D1, Db1, D2T, teacher_of, div, scale, noise):
    """Inputs ``N(0, I)`` and targets of each agent's teacher, plus ``noise * N(0, 1)``.

    W1 (d_in, h), b1 (h,), W2T (d_out, h): the base teacher at ``step`` (float32); D1, Db1, D2T
    (T, ...) the per-teacher perturbations, ``teacher_of`` int64 (P,) (-1: the base teacher),
    ``div`` float32, ``scale`` float64 (d_out,), ``noise`` float64 >= 0. Agents of the base
    teacher are pushed through it a chunk at a time (long vectorized loops).
    """
    P, B, d_in = X.shape
    d_out = W2T.shape[0]
    for c in prange((P + CHUNK - 1) // CHUNK):
        wide_vectors()  # in the loop body: the body is compiled as a function of its own
        lo, hi = c * CHUNK, min(P, (c + 1) * CHUNK)
        buf = np.empty(_buf_size(max(B, SUB), d_in, d_out), dtype=np.float32)
        w1, c1, w2t = np.empty_like(W1), np.empty_like(b1), np.empty_like(W2T)
        _normals_rows(X[lo:hi].reshape((hi - lo, B * d_in)), k0, k1, lo, step, INPUT)
        shared = True
        for a in range(lo, hi):
            shared = shared and teacher_of[a] < 0
        if shared:  # in slices of SUB rows, so the scratch stays in the L1 cache
            xs = X[lo:hi].reshape(((hi - lo) * B, d_in))
            ys = Y[lo:hi].reshape(((hi - lo) * B, d_out))
            for r0 in range(0, xs.shape[0], SUB):
                r1 = min(xs.shape[0], r0 + SUB)
                _teacher_rows(xs[r0:r1], ys[r0:r1], W1, b1, W2T, scale, buf)
        for a in range(lo, hi):
            t = teacher_of[a]
            if not shared and t < 0:
                _teacher_rows(X[a], Y[a], W1, b1, W2T, scale, buf)
            elif not shared:
                _agent_teacher(W1, b1, W2T, D1, Db1, D2T, t, div, w1, c1, w2t)
                _teacher_rows(X[a], Y[a], w1, c1, w2t, scale, buf)
        if noise > 0:
            eps = np.empty((hi - lo, B * d_out), dtype=Y.dtype)
            _normals_rows(eps, k0, k1, lo, step, NOISE)
            for a in range(lo, hi):
                ya = flat(Y[a])
                for i in range(ya.shape[0]):
                    ya[i] += noise * eps[a - lo, i]


@njit(parallel=True, cache=True, error_model="numpy")
def teacher_forward(X, out, W1, b1, W2T, D1, Db1, D2T, teacher_of, div, scale):
    """Noiseless teacher outputs ``out`` (R, B, d_out) for X (R or 1, B, d_in); row ``r`` uses
    teacher ``teacher_of[r]`` (-1: the base). Arguments as in :func:`teacher_sample`."""
    R = out.shape[0]
    for c in prange((R + CHUNK - 1) // CHUNK):
        buf = np.empty(_buf_size(X.shape[1], W1.shape[0], W2T.shape[0]), dtype=np.float32)
        w1, c1, w2t = np.empty_like(W1), np.empty_like(b1), np.empty_like(W2T)
        for r in range(c * CHUNK, min(R, (c + 1) * CHUNK)):
            x = X[r] if X.shape[0] == R else X[0]
            t = teacher_of[r]
            if t < 0:
                _teacher_rows(x, out[r], W1, b1, W2T, scale, buf)
            else:
                _agent_teacher(W1, b1, W2T, D1, Db1, D2T, t, div, w1, c1, w2t)
                _teacher_rows(x, out[r], w1, c1, w2t, scale, buf)


# ---------------------------------------------------------------------------- classes
@njit(inline="always")
def _word(w, t):
    """Word ``t`` (0..3) of a Philox result."""
    return w[0] if t == 0 else (w[1] if t == 1 else (w[2] if t == 2 else w[3]))


@njit(inline="always")
def _classes(a, step, k0, k1, choices, out):
    """Class of every sample of agent ``a``: ``choices[floor(u * len(choices))]``, one word each."""
    k = choices.shape[0]
    a_, s_, p_ = _U64(a), _U64(step), _U64(CLASS)
    for blk in range((out.shape[0] + 3) // 4):
        w = philox4x32(_U64(blk), a_, s_, p_, k0, k1)
        for t in range(min(4, out.shape[0] - 4 * blk)):
            j = min(np.int64(uniform32(_word(w, t)) * k), k - 1)
            out[4 * blk + t] = choices[j]


@njit(parallel=True, cache=True, error_model="numpy")
def mixture_sample(X, Y, k0, k1, step, choices, row_of, means):
    """Gaussian classes: class ``c`` uniform over ``choices[row_of[a]]`` (int64 (R, k)),
    ``x = means[c] + N(0, I)`` (means float64 (K, d_in)), ``y`` one-hot."""
    P, B, d_in = X.shape
    for c in prange((P + CHUNK - 1) // CHUNK):
        cls = np.empty(B, dtype=np.int64)
        lo, hi = c * CHUNK, min(P, (c + 1) * CHUNK)
        _normals_rows(X[lo:hi].reshape((hi - lo, B * d_in)), k0, k1, lo, step, INPUT)
        for a in range(lo, hi):
            _classes(a, step, k0, k1, choices[row_of[a]], cls)
            Y[a] = 0
            for b in range(B):
                Y[a, b, cls[b]] = 1
                for i in range(d_in):
                    X[a, b, i] += means[cls[b], i]


@njit(parallel=True, cache=True, error_model="numpy")
def digits_sample(X, Y, k0, k1, step, choices, row_of, data, starts, counts):
    """Images of a class uniform over the agent's choices, each image uniform within its class.

    ``data`` (N, 64) is sorted by class: class ``c`` is rows ``starts[c]`` to
    ``starts[c] + counts[c]``."""
    P, B, d_in = X.shape
    for c in prange((P + CHUNK - 1) // CHUNK):
        cls = np.empty(B, dtype=np.int64)
        for a in range(c * CHUNK, min(P, (c + 1) * CHUNK)):
            _classes(a, step, k0, k1, choices[row_of[a]], cls)
            Y[a] = 0
            a_, s_, p_ = _U64(a), _U64(step), _U64(INPUT)
            for blk in range((B + 3) // 4):
                w = philox4x32(_U64(blk), a_, s_, p_, k0, k1)
                for t in range(min(4, B - 4 * blk)):
                    b = 4 * blk + t
                    cb = cls[b]
                    j = min(np.int64(uniform32(_word(w, t)) * counts[cb]), counts[cb] - 1)
                    row = data[starts[cb] + j]
                    for i in range(d_in):
                        X[a, b, i] = row[i]
                    Y[a, b, cb] = 1


@njit(parallel=True, cache=True, error_model="numpy")
def separable_sample(X, Y, k0, k1, step, normal, offset, lo, up):
    """``x ~ N(0, I)`` conditioned on ``|w . x + offset| >= margin`` by the inverse CDF:
    the part of ``x`` along the unit ``normal`` is ``s = ndtri(u)`` for ``u < lo`` and
    ``-ndtri(lo + up - u)`` (``= ndtri(1 - up + u - lo)``) otherwise, ``u ~ U(0, lo + up)``
    (``lo = ndtr(-offset - margin)``, ``up = ndtr(offset - margin)``); label
    ``s + offset > 0`` in ``Y`` (P, B, 1)."""
    P, B, d_in = X.shape
    for a in prange(P):
        normals_into(flat(X[a]), k0, k1, a, step, INPUT)
        a_, s_, p_ = _U64(a), _U64(step), _U64(CLASS)
        for blk in range((B + 1) // 2):
            w = philox4x32(_U64(blk), a_, s_, p_, k0, k1)
            for t in range(min(2, B - 2 * blk)):
                b = 2 * blk + t
                u = (uniform53(w[0], w[1]) if t == 0 else uniform53(w[2], w[3])) * (lo + up)
                s = ndtri(u) if u < lo else -ndtri(max(lo + up - u, 1e-300))
                proj = 0.0
                for i in range(d_in):
                    proj += X[a, b, i] * normal[i]
                for i in range(d_in):
                    X[a, b, i] += (s - proj) * normal[i]
                Y[a, b, 0] = 1.0 if s + offset > 0 else 0.0


@njit(parallel=True, cache=True, error_model="numpy")
def ring_sample(X, Y, k0, k1, step, centers, std):
    """Latent codes ``X ~ N(0, I)`` and real points ``Y = centers[m] + std N(0, I)`` with the
    mode ``m`` uniform over the rows of ``centers`` (n_modes, 2)."""
    P, B, d_z = X.shape
    modes = np.arange(centers.shape[0])
    for c in prange((P + CHUNK - 1) // CHUNK):
        m = np.empty(B, dtype=np.int64)
        lo, hi = c * CHUNK, min(P, (c + 1) * CHUNK)
        _normals_rows(X[lo:hi].reshape((hi - lo, B * d_z)), k0, k1, lo, step, INPUT)
        _normals_rows(Y[lo:hi].reshape((hi - lo, 2 * B)), k0, k1, lo, step, NOISE)
        for a in range(lo, hi):
            _classes(a, step, k0, k1, modes, m)
            for b in range(B):
                for i in range(2):
                    Y[a, b, i] = centers[m[b], i] + std * Y[a, b, i]


# ---------------------------------------------------------------------------- your own data
@njit(parallel=True, cache=True, error_model="numpy")
def arrays_sample(X, Y, k0, k1, step, data_X, data_Y, offsets):
    """Rows drawn uniformly with replacement from each agent's own data: agent ``a`` owns rows
    ``offsets[a] : offsets[a + 1]`` of ``data_X`` (M, d_in) and ``data_Y`` (M, d_out). The row
    is ``floor(u n)`` with a 53-bit uniform ``u`` (unbiased to 1e-16 relative for any n)."""
    P, B, d_in = X.shape
    d_out = Y.shape[2]
    for a in prange(P):
        lo, n = offsets[a], offsets[a + 1] - offsets[a]
        a_, s_, p_ = _U64(a), _U64(step), _U64(INPUT)
        for blk in range((B + 1) // 2):
            w = philox4x32(_U64(blk), a_, s_, p_, k0, k1)
            for t in range(min(2, B - 2 * blk)):
                b = 2 * blk + t
                u = uniform53(w[0], w[1]) if t == 0 else uniform53(w[2], w[3])
                r = lo + min(np.int64(u * n), n - 1)
                for i in range(d_in):
                    X[a, b, i] = data_X[r, i]
                for i in range(d_out):
                    Y[a, b, i] = data_Y[r, i]
