"""Forward and backward passes of a whole population of MLPs, one Numba call each.

Every kernel takes arrays and scalars only (grouped in :class:`NetArrays` and
:class:`OptArrays`), runs ``prange`` over agents, and each iteration writes only its own
agent's row of every output: results are bit-identical on 1 or N threads.

Inside an agent, activations are kept transposed, shape ``(width, batch)``, so the element-wise
loops run over the batch (long, contiguous, vectorizable) and every matrix product reads rows
of the batch axis in SIMD vectors (:mod:`simulator.kernels.gemm`). Gradient and training passes
of small networks on short batches (:func:`simulator.kernels.lanes.eligible`) run instead with
one agent per SIMD lane (:mod:`simulator.kernels.lanes`), where an agent's products are too
small for tiles along the batch to pay for themselves.

Canonical parameter row of one agent: for each layer ``l``, ``W_l`` flattened row-major
with shape ``(d_{l-1}, d_l)`` (``W[i, j]`` connects input ``i`` to output ``j``), then
``b_l`` of shape ``(d_l,)``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from simulator.kernels.activations import (
    F0,
    IDENTITY,
    OUT_SOFTMAX,
    RELU,
    SIGMOID,
    TANH,
    activate,
    derivative,
)
from simulator.kernels.arrays import borrow, flat, prefetch
from simulator.kernels.gemm import INIT_BIAS, INIT_ZERO, gemm, gemm_nt, transpose, wide_vectors
from simulator.kernels.losses import BCE, CROSS_ENTROPY, MSE, _output_delta, _scales, _softmax_block
from simulator.kernels.optim import apply_update
from simulator.kernels.threads import parallel_begin, parallel_end

MODE_LOSS, MODE_GRAD, MODE_TRAIN, MODE_INPUT_GRAD = 0, 1, 2, 3
OK, BAD_INPUT, BAD_TARGET, DIVERGED = 0, 1, 2, 3

__all__ = [
    "BAD_INPUT",
    "BAD_TARGET",
    "BCE",
    "CROSS_ENTROPY",
    "DIVERGED",
    "MODE_GRAD",
    "MODE_INPUT_GRAD",
    "MODE_LOSS",
    "MODE_TRAIN",
    "MSE",
    "OK",
    "NetArrays",
    "OptArrays",
    "population_forward",
    "population_pass",
]

# Every dense layer goes through the register-tile products of simulator.kernels.gemm (measured
# ahead of BLAS on 64-wide layers and of plain loops on narrow ones: 8-16-1, B = 32, ~10%
# float32, ~4% float64; 4-32-32-2, B = 8, ~2x). Weight gradients of layers at least this wide
# (d_out) transpose delta and use the outer-product tiles (85 GFLOP/s on 64x64x64 float32 in
# cache); narrower ones use the dot-product tiles (~50 GFLOP/s, no transpose; faster for 64x10).
WIDE_GRADIENT = 16
# Agents handled by one iteration of the parallel loop: its scratch memory is allocated once and
# reused for each of them. Each agent still writes only its own rows, whatever the chunking.
AGENTS_PER_CHUNK = 8
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}  # never nnan/ninf: NaNs must stay visible
_JIT = {"cache": True, "error_model": "numpy", "fastmath": FASTMATH}


class NetArrays(NamedTuple):
    """The static description of an MLP, as arrays a kernel can read.

    dims : int64 (L + 1,)   widths d_0 (inputs) ... d_L (outputs)
    w_off, b_off : int64 (L,)  offsets of W_l and b_l in a parameter row (b_off -1: no bias)
    acts : int64 (L,)       activation code of each layer (the last one is the output function)
    loss : int                loss code (MSE, BCE, CROSS_ENTROPY)
    """

    dims: np.ndarray
    w_off: np.ndarray
    b_off: np.ndarray
    acts: np.ndarray
    loss: int


class OptArrays(NamedTuple):
    """Optimizer settings and state. ``lr`` is per agent; ``t`` (int64, (n_agents,)) counts each
    agent's updates since its state was reset; ``m``/``v`` are ``(n_agents, n_params)`` state
    (shape ``(1, 1)`` placeholders when the optimizer keeps none). ``t``, ``m``, ``v`` are
    updated in place."""

    kind: int
    lr: np.ndarray
    momentum: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    clip_norm: float
    t: np.ndarray
    m: np.ndarray
    v: np.ndarray
    limit: float  # the largest finite value of the parameters' dtype


@njit(inline="always")
def _max_width(dims):
    """The widest layer (inputs and outputs included)."""
    width = 0
    for l in range(dims.shape[0]):
        width = max(width, dims[l])
    return width


@njit(**_JIT)
def _layer_buffers(scratch, n_layers, width, batch):
    """Two (n_layers + 1, width, batch) views at the start of a flat scratch buffer.

    Layer ``l``'s block is then ``buf[l, :d_l]``: basic indexing, no reshape (a reshape is a
    call into Numba's C helpers, ~20 ns, which added up to a third of a small agent's step).
    """
    size = (n_layers + 1) * width * batch
    acts = scratch[:size].reshape((n_layers + 1, width, batch))
    zs = scratch[size : 2 * size].reshape((n_layers + 1, width, batch))
    return acts, zs


@njit(**_JIT)
def _all_finite(x):
    """True when every value of the C-contiguous array x is finite (one vectorized pass)."""
    wide_vectors()
    f = flat(x)
    total = f[0] * F0
    for k in range(f.shape[0]):
        total += f[k] * F0
    return total == 0


@njit(**_JIT)
def _load_input(X, xi, a0):
    """Copy sample-major X[xi] (batch, d0) into a0 (d0, batch); False if any value is not finite.

    The check is a separate pass over the contiguous copy, so it vectorizes (summing ``x * 0``
    inside the transposing loop made a serial dependency chain).
    """
    wide_vectors()
    batch, d0 = X.shape[1], X.shape[2]
    if X.strides[2] == X.itemsize and X.strides[1] == d0 * X.itemsize:  # X[xi] contiguous
        transpose(a0, 0, batch, X[xi], 0, d0, batch, d0)
    else:
        for i in range(d0):
            for b in range(batch):
                a0[i, b] = X[xi, b, i]
    return _all_finite(a0)


@njit(**_JIT)
def _dense_forward(row, w_off, b_off, a_in, z_out):
    """z_out (d_out, B) = W^T a_in + b, with W = row[w_off:].reshape(d_in, d_out): register
    tiles of z with A[m, k] = W[k, m] and the bias as their starting value (0 when b_off < 0:
    a layer without bias)."""
    wide_vectors()
    d_in, nb = a_in.shape
    d_out = z_out.shape[0]
    init = INIT_BIAS if b_off >= 0 else INIT_ZERO
    gemm(z_out, 0, nb, row, w_off, 1, d_out, a_in, 0, nb, d_out, nb, d_in, init, row, b_off)


@njit(**_JIT)
def _activate_block(kind, z, a):
    """a = f(z) element-wise (C-contiguous blocks of one shape). One flat loop per kind, so
    each loop is long and branch-free and vectorizes (a switch inside would not)."""
    wide_vectors()
    zf, af = flat(z), flat(a)
    n = zf.shape[0]
    if kind == TANH:
        for k in range(n):
            af[k] = activate(TANH, zf[k])
    elif kind == RELU:
        for k in range(n):
            af[k] = activate(RELU, zf[k])
    else:
        for k in range(n):
            af[k] = activate(kind, zf[k])


@njit(inline="always")
def _in_place(kind):
    """Whether a hidden layer of activation ``kind`` keeps only a = f(z), computed over z in
    place: its derivative is a function of a alone (tanh: 1 - a^2; sigmoid: a (1 - a); ReLU:
    a > 0 exactly where z > 0, and a * 0 = z * 0 bit for bit; identity: a = z). The step
    function's window needs z itself. One (width, batch) block less to write and to keep in
    the caches per hidden layer."""
    return kind == TANH or kind == SIGMOID or kind == RELU or kind == IDENTITY


@njit(**_JIT)
def _activate_in_place(kind, a):
    """a = f(a) element-wise (a C-contiguous block), one flat loop per kind as in
    :func:`_activate_block`. Kept apart from it: called with ``z`` and ``a`` the same array,
    that function's loops would meet LLVM's runtime overlap check and run scalar."""
    wide_vectors()
    af = flat(a)
    n = af.shape[0]
    if kind == TANH:
        for k in range(n):
            af[k] = activate(TANH, af[k])
    elif kind == RELU:
        for k in range(n):
            af[k] = activate(RELU, af[k])
    else:
        for k in range(n):
            af[k] = activate(kind, af[k])


@njit(**_JIT)
def _times_derivative(kind, z, a, delta):
    """delta *= f'(z) element-wise (f' from the output a where it can), one flat loop per kind."""
    wide_vectors()
    zf, af, df = flat(z), flat(a), flat(delta)
    n = zf.shape[0]
    if kind == TANH:
        for k in range(n):
            df[k] *= derivative(TANH, zf[k], af[k])
    elif kind == RELU:
        for k in range(n):
            df[k] *= derivative(RELU, zf[k], af[k])
    else:
        for k in range(n):
            df[k] *= derivative(kind, zf[k], af[k])


@njit(**_JIT)
def _forward_loaded(row, net, acts, zs, tmp, lse_wanted):
    """The layers of :func:`_forward_agent` (arguments there) with its input already in
    ``acts[0, :d_0]``, which they leave as it is: a caller running several networks on one
    input (distillation's neighbours on an agent's batch, the probe) loads it once."""
    wide_vectors()
    dims = net.dims
    n_layers = dims.shape[0] - 1
    for l in range(n_layers):
        a = acts[l + 1, : dims[l + 1]]
        if l < n_layers - 1 and _in_place(net.acts[l]):
            _dense_forward(row, net.w_off[l], net.b_off[l], acts[l, : dims[l]], a)
            _activate_in_place(net.acts[l], a)
            continue
        z = zs[l + 1, : dims[l + 1]]
        _dense_forward(row, net.w_off[l], net.b_off[l], acts[l, : dims[l]], z)
        if net.acts[l] == OUT_SOFTMAX:
            _softmax_block(z, a, tmp, lse_wanted)
        else:
            _activate_block(net.acts[l], z, a)


@njit(**_JIT)
def _forward_agent(row, X, xi, net, acts, zs, tmp, lse_wanted):
    """Forward pass of one agent; fills ``acts[l, :d_l]`` (l = 0..L; l = 0 is X[xi] transposed)
    and ``zs[l, :d_l]`` (l = 1..L, except hidden layers computed in place: see
    :func:`_in_place`), each of shape (d_l, B); tmp is (2 B,) scratch (see
    :func:`_softmax_block`; ``lse_wanted``: a loss will read a softmax output's log-sum-exp).
    Returns False on non-finite X."""
    finite = _load_input(X, xi, acts[0, : net.dims[0]])
    _forward_loaded(row, net, acts, zs, tmp, lse_wanted)
    return finite


@njit(**_JIT)
def _dense_backward(row, g, w_off, b_off, a_in, delta, want_params, d_in_out, delta_t):
    """Gradients of one dense layer.

    g[w_off...] = a_in delta^T and g[b_off...] = sum_b delta (when want_params; no bias
    gradient when b_off < 0);
    d_in_out (d_in, B) = W delta (when its first dim is nonzero).
    delta_t : (B d_out,) scratch for delta transposed (wide layers' weight gradients).
    """
    wide_vectors()
    d_in, nb = a_in.shape
    d_out = delta.shape[0]
    if want_params and d_out >= WIDE_GRADIENT:  # outer-product tiles on delta transposed
        transpose(delta_t, 0, d_out, delta, 0, nb, d_out, nb)
        gemm(g, w_off, d_out, a_in, 0, nb, 1, delta_t, 0, d_out, d_in, d_out, nb, INIT_ZERO, g, 0)
    elif want_params:  # dot-product tiles along the batch
        gemm_nt(g, w_off, d_out, a_in, 0, nb, delta, 0, nb, d_in, d_out, nb)
    if want_params and b_off >= 0:
        for j in range(d_out):
            acc = delta[0, 0] * F0
            for b in range(nb):
                acc += delta[j, b]
            g[b_off + j] = acc
    if d_in_out.shape[0] > 0:  # d_in_out = W delta
        gemm(d_in_out, 0, nb, row, w_off, d_out, 1, delta, 0, nb, d_in, nb, d_out, INIT_ZERO, g, 0)


@njit(**_JIT)
def _backward_agent(row, g, net, acts, zs, delta_out, deltas, want_params, dx):
    """Backpropagate delta_out (d_L, B) through every layer; gradient row into g.

    deltas : (3, width, B) scratch: the hidden layers' deltas (``deltas[0]`` and ``[1]``, used
    alternately) and a transposed delta (``deltas[2]``, see :func:`_dense_backward`).
    dx (d_0, B) receives dLoss/dX when it has a nonzero first dimension.
    """
    wide_vectors()
    dims = net.dims
    n_layers = dims.shape[0] - 1
    delta = delta_out
    delta_t = flat(deltas[2])
    for l in range(n_layers - 1, 0, -1):
        a_in = acts[l, : dims[l]]
        nxt = deltas[l % 2, : dims[l]]
        _dense_backward(row, g, net.w_off[l], net.b_off[l], a_in, delta, want_params, nxt, delta_t)
        z = a_in if _in_place(net.acts[l - 1]) else zs[l, : dims[l]]
        _times_derivative(net.acts[l - 1], z, a_in, nxt)
        delta = nxt
    d_x = dx if dx.shape[0] > 0 else deltas[0, :0]
    a_in = acts[0, : dims[0]]
    _dense_backward(row, g, net.w_off[0], net.b_off[0], a_in, delta, want_params, d_x, delta_t)


@njit(**_JIT)
def _scratch_size(n_layers, width, batch, d_out, d_in, n_params):
    """Elements of one chunk's scratch buffer (see :func:`_pass_chunk`)."""
    size_layers = 2 * (n_layers + 1) * width * batch
    return size_layers + 3 * width * batch + 2 * batch + (d_out + d_in) * batch + n_params


@njit(**_JIT)
def _chunk_buffers(scratch, n_layers, width, batch, d_out, d_in, n_params):
    """The per-agent buffers carved from one chunk's scratch (:func:`_scratch_size` elements):
    acts, zs (n_layers + 1, width, B); deltas (3, width, B); tmp (2 B,); dout (d_out, B);
    dxp (d_in, B); g_own (n_params,)."""
    acts, zs = _layer_buffers(scratch, n_layers, width, batch)
    at = 2 * (n_layers + 1) * width * batch
    deltas = scratch[at : at + 3 * width * batch].reshape((3, width, batch))
    at += 3 * width * batch
    tmp = scratch[at : at + 2 * batch]
    at += 2 * batch
    dout = scratch[at : at + d_out * batch].reshape((d_out, batch))
    at += d_out * batch
    dxp = scratch[at : at + d_in * batch].reshape((d_in, batch))
    g_own = scratch[at + d_in * batch : at + d_in * batch + n_params]
    return acts, zs, deltas, tmp, dout, dxp, g_own


@njit(inline="always")
def _borrowed_net(net):
    """``net`` with its arrays borrowed (:func:`borrow`): passing it to the per-agent functions
    then counts no references to its four arrays' owners."""
    return NetArrays(borrow(net.dims), borrow(net.w_off), borrow(net.b_off), borrow(net.acts),
                     net.loss)  # fmt: skip


@njit(inline="always")
def _status(finite_x, finite_y, loss):
    """OK, or why an agent's step is skipped (its inputs, its targets, or its loss)."""
    if not finite_x:
        return BAD_INPUT
    if not finite_y:
        return BAD_TARGET
    if not np.isfinite(loss):
        return DIVERGED
    return OK


@njit(**_JIT)
def _pass_chunk(
    lo, hi, owned, params_, X_, Y_, net, opt, mode, losses, status, grads_, dx_, scales
):
    """Agents lo..hi-1 of :func:`_population_pass`, with ``owned`` (float, 1-D, at least
    :func:`_scratch_size` elements) as their scratch memory. Every array is borrowed (see
    :func:`simulator.kernels.arrays.borrow`): the caller holds them all for the call."""
    wide_vectors()
    params, X, Y, grads, dx = borrow(params_), borrow(X_), borrow(Y_), borrow(grads_), borrow(dx_)
    n_agents, n_params = params.shape
    batch = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    want_params = mode == MODE_GRAD or mode == MODE_TRAIN
    x_each, y_each = X.shape[0] == n_agents, Y.shape[0] == n_agents
    d_out, d_in = dims[n_layers], dims[0]
    acts, zs, deltas, tmp, dout, dxp, g_own = _chunk_buffers(
        borrow(owned), n_layers, _max_width(dims), batch, d_out, d_in, n_params
    )
    o, z = acts[n_layers, :d_out], zs[n_layers, :d_out]
    x_size, y_size = batch * d_in, Y.shape[1] * Y.shape[2]
    for p in range(lo, hi):
        if p + 1 < hi:  # the next agent's row, inputs and targets, fetched while this one computes
            prefetch(params, (p + 1) * n_params, n_params)
            if x_each:
                prefetch(X, (p + 1) * x_size, x_size)
            if y_each:  # (64-64-10: the loss pass ~1,180 -> ~850 cycles per agent)
                prefetch(Y, (p + 1) * y_size, y_size)
        row = params[p]
        finite_x = _forward_agent(row, X, np.int64(p) * x_each, net, acts, zs, tmp, True)
        loss, finite_y = _output_delta(
            net.acts[n_layers - 1], net.loss, z, o, Y, np.int64(p) * y_each, dout, tmp, scales
        )
        losses[p] = loss
        status[p] = _status(finite_x, finite_y, loss)
        if mode == MODE_LOSS:
            continue
        if mode == MODE_INPUT_GRAD:  # dx[p] (B, d_in) = dxp transposed
            _backward_agent(row, row, net, acts, zs, dout, deltas, False, dxp)
            transpose(dx, p * batch * d_in, d_in, dxp, 0, batch, d_in, batch)
            continue
        g = grads[p] if mode == MODE_GRAD else g_own
        _backward_agent(row, g, net, acts, zs, dout, deltas, want_params, dx[0, :0])
        if mode == MODE_TRAIN and status[p] == OK:
            if not apply_update(p, row, g, opt, True):
                status[p] = DIVERGED


@njit(parallel=True, **_JIT)
def _population_pass(params, X, Y, net, opt, mode, losses, status, grads, dx):
    """Loss, gradients, input gradients or a training step for every agent at once.

    Parameters
    ----------
    params : float, shape (P, n_params); updated in place when ``mode == MODE_TRAIN``.
    X : float, shape (P, B, d_0) or (1, B, d_0) (shared by every agent).
    Y : float, shape (P, B, d_L) or (1, B, d_L).
    net : NetArrays
    opt : OptArrays; its state arrays are updated in place in MODE_TRAIN.
    mode : MODE_LOSS, MODE_GRAD, MODE_TRAIN or MODE_INPUT_GRAD.
    losses : float, shape (P,); filled with each agent's loss before any update.
    status : int8, shape (P,); OK, BAD_INPUT, BAD_TARGET or DIVERGED. A training step skips
        the update of every agent whose status is not OK.
    grads : float, shape (P, n_params) in MODE_GRAD (filled), else (1, 1) unused.
    dx : float, shape (P, B, d_0) in MODE_INPUT_GRAD (filled), else (1, 1, 1) unused.
    """
    wide_vectors()
    n_agents, n_params = params.shape
    dims = net.dims
    n_layers = dims.shape[0] - 1
    n_scratch = _scratch_size(
        n_layers, _max_width(dims), X.shape[1], dims[n_layers], dims[0], n_params
    )
    n_chunks = (n_agents + AGENTS_PER_CHUNK - 1) // AGENTS_PER_CHUNK
    scales = _scales(X.shape[1], dims[n_layers], params.dtype)
    for c in prange(n_chunks):
        wide_vectors()  # (the loop body is compiled as a function of its own)
        # one scratch allocation per chunk of agents, carved into the per-agent buffers
        scratch = np.empty(n_scratch, dtype=params.dtype)
        lo = c * AGENTS_PER_CHUNK
        hi = min(n_agents, lo + AGENTS_PER_CHUNK)
        _pass_chunk(lo, hi, scratch, params, X, Y, net, opt, mode, losses, status, grads, dx,
                    scales)  # fmt: skip


@njit(**_JIT)
def _forward_chunk(lo, hi, owned, params_, X_, net_, layer, out_):
    """Agents lo..hi-1 of :func:`_population_forward`, with ``owned`` as scratch (arrays
    borrowed, as in :func:`_pass_chunk`)."""
    wide_vectors()
    params, X, out, net = borrow(params_), borrow(X_), borrow(out_), _borrowed_net(net_)
    batch = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    width = _max_width(dims)
    x_each = X.shape[0] == params.shape[0]
    scratch = borrow(owned)
    acts, zs = _layer_buffers(scratch, n_layers, width, batch)
    tmp = scratch[
        2 * (n_layers + 1) * width * batch : 2 * (n_layers + 1) * width * batch + 2 * batch
    ]
    d = dims[layer]
    for p in range(lo, hi):
        _forward_agent(params[p], X, np.int64(p) * x_each, net, acts, zs, tmp, False)
        # out[p] (B, d) = acts[layer, :d] transposed
        transpose(out, p * batch * d, d, acts, layer * width * batch, batch, d, batch)


@njit(parallel=True, **_JIT)
def _population_forward(params, X, net, layer, out):
    """Activations of layer ``layer`` (1..L; L = the outputs) for every agent.

    params : float (P, n_params); X : float (P, B, d_0) or (1, B, d_0);
    out : float (P, B, d_layer), C-contiguous, filled.
    """
    wide_vectors()
    n_agents = params.shape[0]
    batch = X.shape[1]
    n_layers = net.dims.shape[0] - 1
    n_scratch = 2 * (n_layers + 1) * _max_width(net.dims) * batch + 2 * batch
    n_chunks = (n_agents + AGENTS_PER_CHUNK - 1) // AGENTS_PER_CHUNK
    for c in prange(n_chunks):
        wide_vectors()  # (the loop body is compiled as a function of its own)
        scratch = np.empty(n_scratch, dtype=params.dtype)  # one per chunk of agents
        lo = c * AGENTS_PER_CHUNK
        _forward_chunk(
            lo, min(n_agents, lo + AGENTS_PER_CHUNK), scratch, params, X, net, layer, out
        )


# What a pass over one agent costs besides its products (calls, loop set-up, transposes, the
# finiteness checks), in FLOPs at the kernel's small-network speed: one thread, float32, B = 32,
# 4,000 agents: a training step of a 1-1 network takes 355 ns per agent and of 1-4-1 516 ns
# (192 and 1,536 FLOPs of products), a forward pass 138 ns and 184 ns; 8-16-1 runs at ~27
# GFLOP/s. So ~120 ns per pass, ~3,000 FLOPs at 25 GFLOP/s. Without it the thread sizing saw
# 10,000 agents of the polarization scenario's 1-1 networks as 1.9 MFLOP of work, below a
# second thread's threshold, and trained them on one thread (3.8 ms; 2.0 ms on two).
PASS_OVERHEAD_FLOPS = 3_000.0


@functools.lru_cache(maxsize=256)
def _macs_of(dims: bytes) -> int:
    widths = np.frombuffer(dims, dtype=np.int64)
    return int(np.dot(widths[:-1], widths[1:]))


def macs_per_sample(dims: np.ndarray) -> int:
    """Multiply-adds of one forward pass over one sample, sum_l d_{l-1} d_l, for the widths
    ``dims`` (int64 (L + 1,)); remembered per network shape (a call costs ~0.3 us, not the
    ~1 us of NumPy's reductions on a tiny array: every pass asks)."""
    return _macs_of(np.asarray(dims, dtype=np.int64).tobytes())


def _agent_flops(dims: np.ndarray, batch: int, passes: int) -> float:
    """Work of ``passes`` passes over one agent (1: forward; 3: a training step), in FLOPs:
    the products of every layer plus :data:`PASS_OVERHEAD_FLOPS` per pass."""
    return passes * (2.0 * batch * macs_per_sample(dims) + PASS_OVERHEAD_FLOPS)


def population_pass(params, X, Y, net, opt, mode, losses, status, grads, dx) -> None:
    """:func:`_population_pass` (arguments and effects there), sized for its work by
    :func:`simulator.kernels.threads.parallel_begin` (threads, work-stealing pieces); the
    gradient and training passes of small networks through
    :func:`simulator.kernels.lanes.population_lanes` (same arguments and effects)."""
    from simulator.kernels import lanes  # (here: lanes builds on this module's functions)

    in_lanes = lanes.eligible(net, mode, X.shape[1])
    n_lanes = lanes.lanes_of(params.dtype)
    per = n_lanes * lanes.CHUNKS_PER_ITERATION if in_lanes else AGENTS_PER_CHUNK
    n_chunks = (params.shape[0] + per - 1) // per
    work = _agent_flops(net.dims, X.shape[1], 1 if mode == MODE_LOSS else 3) * per
    call = parallel_begin(("population_lanes" if in_lanes else "population_pass", mode),
                          n_chunks, work)  # fmt: skip
    try:
        if in_lanes:
            lanes.population_lanes(params, X, Y, net, opt, mode, losses, status, grads, n_lanes)
        else:
            _population_pass(params, X, Y, net, opt, mode, losses, status, grads, dx)
    finally:
        parallel_end(call)


def population_forward(params, X, net, layer, out) -> None:
    """:func:`_population_forward` (arguments and effects there), sized for its work."""
    n_chunks = (params.shape[0] + AGENTS_PER_CHUNK - 1) // AGENTS_PER_CHUNK
    work = _agent_flops(net.dims, X.shape[1], 1) * AGENTS_PER_CHUNK
    call = parallel_begin("population_forward", n_chunks, work)
    try:
        _population_forward(params, X, net, layer, out)
    finally:
        parallel_end(call)
