"""One forward pass of a set of agents over the probe, with every per-agent statistic fused in.

:func:`probe_pass` runs the networks of the rows ``rows`` of ``params`` on the probe set (the
same forward code as :func:`simulator.kernels.mlp.population_forward`, so the outputs are the
ones ``Population.predict`` gives) and, while an agent's outputs are in cache, fills its row of
every per-agent statistic the measures need: its loss (the same code as ``Population.loss``),
its squared error against a common truth, its decisions and accuracy, its predictive entropy,
and the spread of its outputs. Outputs and first-hidden-layer activations are stored only when
asked (``preds`` and ``hidden`` may have zero rows), so a pass over every agent of a large
population (per-agent tables) allocates only a few scalars per agent.

Agents go in chunks of :data:`LANES` (measured at 10,000 agents, panel of 256, one thread:
~1.7x faster than one agent at a time for 8-16-1 on 256 items, ~3x for a 1-1 affine net):

* one scratch allocation per chunk, and every array borrowed (views of a borrowed array do no
  reference counting, which the threads would otherwise contend on: the per-agent version ran
  no faster on two threads than on one for the social_learning panel);
* the probe is transposed once per chunk (it is the same for every agent), then each agent runs
  :func:`simulator.kernels.mlp._forward_loaded`, the layers of ``Population.predict``'s and the
  training's forward pass: the same outputs bit for bit. A softmax output's log-sum-exp is
  taken only when the loss or the entropy reads it (outputs alone: ``Population.predict`` on a
  shared input set, the detector's pass of every agent);
* the sums over the probe items (squared error, spread, entropy) are sequential float64 sums,
  one chain per agent whose latency bounded the per-agent code: the chunk keeps its agents'
  outputs side by side and sums them in SIMD lanes, one lane an agent, each lane adding the
  same terms in the same order (the same bits; a test compares them with plain Python sums).

Each iteration of the parallel loop writes only its own agents' rows: results are
bit-identical on any number of threads (a test).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.activations import OUT_SOFTMAX
from simulator.kernels.arrays import borrow, prefetch
from simulator.kernels.elementary import log_unit
from simulator.kernels.gemm import TRANSPOSE_BYTES, transpose, wide_vectors
from simulator.kernels.mlp import (
    _borrowed_net,
    _forward_loaded,
    _layer_buffers,
    _load_input,
    _max_width,
    _output_delta,
    _scales,
)
from simulator.kernels.sized import sized_call

# The statistics are summed in a fixed order without reassociation (exact, reproducible sums);
# the forward pass is simulator.kernels.mlp's own (compiled with its flags).
_JIT = {"cache": True, "error_model": "numpy"}
# Agents per chunk: one iteration of the parallel loop, one scratch allocation, and one SIMD
# lane each in the sums over the probe items (16 float64 lanes: two AVX-512 vectors).
LANES = 16
TRANSPOSE_LANES = TRANSPOSE_BYTES // 4  # rows of a float32 block of the block transpose

# Below this much work (multiply-adds, with ITEM_OVERHEAD per agent and item: ~0.06 ms) a
# probe pass runs in its serial twin; above, the parallel kernel on the threads the thread
# chooser finds faster (see simulator.kernels.measure_weights.SERIAL_BELOW).
SERIAL_WORK = 1 << 20
# What an agent's probe item costs beyond its network's multiply-adds (its loss, error and
# spread terms, the copies and stores), in multiply-adds of a larger network's pass: measured
# one thread, 256 agents x 256 items, 2.1 ns an item for polarization's 1-1 networks (2
# parameters), 0.056 ns a multiply-add for 8-16-1 (161). Counting multiply-adds alone put that
# 1-1 pass (138 us serial, 76-98 us on two threads) below SERIAL_WORK, on one thread.
ITEM_OVERHEAD = 32

_SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)

# Columns of the ``stats`` output (float64, (m, N_STATS)).
LOSS, SQ_ERR, CORRECT, ENTROPY, SPREAD = 0, 1, 2, 3, 4
N_STATS = 5


@njit(inline="always", **_JIT)
def _plogp(p):
    """``p log p`` of a probability p in [0, 1] (float64), 0 for p = 0, branch-free so that a
    loop over items vectorizes: the log is :func:`simulator.kernels.elementary.log_unit`'s
    polynomial (a few ulps from ``np.log``; exactly 0 at p = 1) of ``max(p, smallest normal
    float64)``: a subnormal p's term, below 1e-305, is off by a few per cent of itself."""
    return p * log_unit(max(p, _SMALLEST_NORMAL)) if p > 0.0 else 0.0


@njit(**_JIT)
def _binary_entropies(o, terms):
    """terms[b] = predictive entropy (nats) of item b of one output o (1, n), P(class 1):
    ``-(p log p) - (1 - p) log(1 - p)``, in the per-item loop's order, branch-free: ~3 ns an
    item, where a loop with a branch per probability took ~7 ns for step outputs (all 0 or 1:
    mispredicted) and ~28 ns for a sigmoid's (two scalar ``np.log`` calls); one thread."""
    wide_vectors()
    for b in range(o.shape[1]):
        p = np.float64(o[0, b])
        terms[b] = (0.0 - _plogp(p)) - _plogp(1.0 - p)


@njit(**_JIT)
def _decisions(o, dec_row, best):
    """dec_row[b] = class decision of item b from outputs o (K, n): argmax (first on ties), or
    ``o > 0.5`` for one output. best : (n,) scratch. Loops run over the items, branch-free
    (selects, which vectorize: ~2x the loop with an ``if``)."""
    wide_vectors()
    K, n = o.shape
    if K == 1:
        for b in range(n):
            dec_row[b] = 1 if o[0, b] > 0.5 else 0
        return
    for b in range(n):
        best[b] = o[0, b]
        dec_row[b] = 0
    for k in range(1, K):
        for b in range(n):
            v = o[k, b]
            gt = v > best[b]  # strictly: the first class wins ties
            best[b] = v if gt else best[b]
            dec_row[b] = k if gt else dec_row[b]


@njit(**_JIT)
def _chunk_buffers(scratch, n_layers, width, n, d_out):
    """Views of one chunk's flat scratch (see :func:`_scratch_size`): the layer buffers of
    :func:`simulator.kernels.mlp._layer_buffers`, ``tmp`` (2 n), ``delta`` (d_out, n)."""
    acts, zs = _layer_buffers(scratch, n_layers, width, n)
    size = 2 * (n_layers + 1) * width * n
    tmp = scratch[size : size + 2 * n]
    delta = scratch[size + 2 * n : size + 2 * n + d_out * n].reshape((d_out, n))
    return acts, zs, tmp, delta


@njit(**_JIT)
def _scratch_size(n_layers, width, n, d_out):
    """Elements of one chunk's scratch in the parameters' dtype."""
    return 2 * (n_layers + 1) * width * n + 2 * n + d_out * n


@njit(**_JIT)
def _item_terms(o, z, tmp, softmax, scratch, terms):
    """Per-item predictive entropies (nats) of one agent into ``terms`` (n,) float64:
    softmax outputs use H = lse - sum p z with the log-sum-exp the softmax left in tmp[n:]."""
    K, n = o.shape
    if softmax:
        for b in range(n):
            scratch[b] = o[0, b] * z[0, b]
        for k in range(1, K):
            for b in range(n):
                scratch[b] += o[k, b] * z[k, b]
        for b in range(n):
            terms[b] = np.float64(tmp[n + b]) - np.float64(scratch[b])
        return
    if K == 1:
        _binary_entropies(o, terms)
        return
    for b in range(n):  # probabilities of K >= 2 classes without a softmax's log-sum-exp
        h = 0.0
        for k in range(K):
            p = np.float64(o[k, b])
            if p > 0.0:
                h -= p * np.log(p)
        terms[b] = h


@njit(**_JIT)
def _lane_sums(terms, out):
    """out[a] = sum over b, in order, of terms[b, a] (n, L): each lane is one agent's
    sequential sum, and the lanes run side by side in SIMD registers (the loops over the lanes
    have a trip count known only at run time: a constant one would be unrolled into scalar
    code, Numba running no SLP vectorizer)."""
    wide_vectors()
    n, L = terms.shape
    for a in range(L):
        out[a] = 0.0
    for b in range(n):
        for a in range(L):
            out[a] += terms[b, a]


@njit(**_JIT)
def _lane_error_spread(ob, truth, acc, spread, mean, var):
    """Squared error against ``truth`` (n, K) and output spread of L agents whose outputs are
    ``ob`` (K, n, L) (float64 or the outputs' dtype: converted exactly, as the per-agent code
    did), summed as the per-agent code would, lane by lane (see
    :func:`_lane_sums`): acc, spread (L,) filled; mean, var (K, L) scratch. The error and the
    means share one pass over the items (independent sums, each in its own order)."""
    wide_vectors()
    K, n, L = ob.shape
    for a in range(L):
        acc[a] = 0.0
        spread[a] = 0.0
    for k in range(K):
        for a in range(L):
            mean[k, a] = 0.0
            var[k, a] = 0.0
    for b in range(n):
        for k in range(K):
            t = truth[b, k]
            for a in range(L):
                x = np.float64(ob[k, b, a])
                d = x - t
                acc[a] += d * d
                mean[k, a] += x
    for k in range(K):
        for a in range(L):
            mean[k, a] /= n
    for b in range(n):
        for k in range(K):
            for a in range(L):
                d = np.float64(ob[k, b, a]) - mean[k, a]
                var[k, a] += d * d
    for k in range(K):
        for a in range(L):
            spread[a] += np.sqrt(var[k, a] / n)


@njit(inline="always", **_JIT)
def _agent_outputs(i, a, o, z, tmp, Y, truth, labels, net, scales, delta, dec, stats, oc, tc):
    """The per-agent part of the statistics of agent rows[i] (lane a of its chunk): loss,
    decisions and accuracy now; its outputs (``oc[a]`` (K, n)) and per-item
    entropies (``tc[a]`` (n,)) kept for the sums over the items (:func:`_chunk_stats`).
    Inlined into its caller (same compile flags, so the same bits): called, its fifteen
    arguments cost more than its work for small networks (256 agents of a 1-1 network on 16
    probe items: 65-77 -> 30-32 us for the pass)."""
    K, n = o.shape
    out_kind = net.acts[net.dims.shape[0] - 2]
    if Y.shape[0] > 0:
        yi = np.int64(i) if Y.shape[0] == stats.shape[0] and stats.shape[0] > 1 else np.int64(0)
        loss, _ = _output_delta(out_kind, net.loss, z, o, Y, yi, delta, tmp, scales)
        stats[i, LOSS] = loss
    if truth.shape[0] > 0:
        for k in range(K):
            for b in range(n):
                oc[a, k, b] = o[k, b]
    if labels.shape[0] > 0:
        dec_row = dec[i] if dec.shape[0] == stats.shape[0] else dec[0]
        _decisions(o, dec_row, delta[0])
        right = 0
        for b in range(n):
            right += dec_row[b] == labels[b]
        stats[i, CORRECT] = right / n
        _item_terms(o, z, tmp, out_kind == OUT_SOFTMAX, delta[0], tc[a])


@njit(**_JIT)
def _store_outputs(dst, o):
    """dst (n, K) = o (K, n) transposed: blocks of SIMD width when K fills one, else a loop per
    output with stride-K stores (the block transpose copies narrower ones element by element)."""
    wide_vectors()
    K, n = o.shape
    if K >= TRANSPOSE_LANES:
        transpose(dst, 0, K, o, 0, n, K, n)
        return
    for k in range(K):
        for b in range(n):
            dst[b, k] = o[k, b]


@njit(**_JIT)
def _chunk_stats(lo, hi, truth, labels, oc, tc, ob, terms, sums, stats):
    """The statistics of agents lo..hi-1 summed over the items in lanes (one lane an agent):
    ``oc`` (L, K, n) and ``tc`` (L, n) are transposed by blocks into ``ob`` (K, n, L) and
    ``terms`` (n, L) (one strided store per item and agent was ~2 ns each)."""
    L, K, n = oc.shape
    if truth.shape[0] > 0:
        for k in range(K):  # ob[k] (n, L) = oc[:, k] transposed
            transpose(ob, k * n * L, L, oc, k * n, K * n, L, n)
        acc, spread = sums[0], sums[1]
        mean, var = sums[2 : 2 + K], sums[2 + K : 2 + 2 * K]
        _lane_error_spread(ob, truth, acc, spread, mean, var)
        for i in range(lo, hi):
            stats[i, SQ_ERR] = acc[i - lo] / (n * K)
            stats[i, SPREAD] = spread[i - lo] / K
    if labels.shape[0] > 0:
        transpose(terms, 0, L, tc, 0, n, L, n)
        h = sums[0]
        _lane_sums(terms, h)
        for i in range(lo, hi):
            stats[i, ENTROPY] = h[i - lo] / n


@njit(**_JIT)
def _probe_chunk(lo, hi, owned, lanes_, params_, rows_, X_, Y_, truth_, labels_, net_, preds_,
                 hidden_, hid_slot_, dec_, stats_):  # fmt: skip
    """Agents rows[lo:hi] (at most LANES) of :func:`probe_pass`, with ``owned`` (params'
    dtype: :func:`_scratch_size`, then twice the outputs' size of :func:`_lane_sizes`) and
    ``lanes_`` (float64: twice the terms' size, then (2 + 2 d_out) LANES) as scratch, zeros
    where a lane has no agent. Arrays are borrowed
    (see :func:`simulator.kernels.arrays.borrow`): no reference counting of views, which both
    threads would otherwise contend on."""
    wide_vectors()
    params, X, Y, truth = borrow(params_), borrow(X_), borrow(Y_), borrow(truth_)
    preds, hidden, dec, stats = borrow(preds_), borrow(hidden_), borrow(dec_), borrow(stats_)
    rows, labels, hid_slot = borrow(rows_), borrow(labels_), borrow(hid_slot_)
    net = _borrowed_net(net_)
    n, n_params = X.shape[1], params.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    d_out, d_1 = dims[n_layers], dims[1]
    width = _max_width(dims)
    scratch, lanes = borrow(owned), borrow(lanes_)
    acts, zs, tmp, delta = _chunk_buffers(scratch, n_layers, width, n, d_out)
    n_out, n_terms = _lane_sizes(n, d_out, truth, labels)
    k_out, at = n_out // (n * LANES), _scratch_size(n_layers, width, n, d_out)
    oc = scratch[at : at + n_out].reshape((LANES, k_out, n))
    ob = scratch[at + n_out : at + 2 * n_out].reshape((k_out, n, LANES))
    tc = lanes[:n_terms].reshape((n_terms // n, n))
    terms = lanes[n_terms : 2 * n_terms].reshape((n, n_terms // n))
    sums = lanes[2 * n_terms :].reshape((2 + 2 * d_out, LANES))
    scales = _scales(n, d_out, params.dtype)
    _load_input(X, 0, acts[0, : dims[0]])
    o, z = acts[n_layers, :d_out], zs[n_layers, :d_out]
    lse_wanted = Y.shape[0] > 0 or labels.shape[0] > 0  # outputs alone need no log-sum-exp
    for i in range(lo, hi):
        if i + 1 < hi:  # the next agent's parameters, fetched while this one computes
            prefetch(params, rows[i + 1] * n_params, n_params)
        _forward_loaded(params[rows[i]], net, acts, zs, tmp, lse_wanted)
        _agent_outputs(i, i - lo, o, z, tmp, Y, truth, labels, net, scales, delta, dec, stats,
                       oc, tc)  # fmt: skip
        if preds.shape[0] > 0:  # preds[i] (n, d_out) = o transposed
            _store_outputs(preds[i], o)
        s = hid_slot[i]
        if s >= 0:  # hidden[s] (n, d_1) = acts[1, :d_1] transposed
            transpose(hidden, s * n * d_1, d_1, acts, width * n, n, d_1, n)
    _chunk_stats(lo, hi, truth, labels, oc, tc, ob, terms, sums, stats)


@njit(**_JIT)
def _lane_sizes(n, d_out, truth, labels):
    """Elements of one chunk's outputs (LANES, d_out, n) (in the outputs' dtype) when the
    squared error and spread are asked for, and of its per-item terms (LANES, n) (float64)
    when the entropy is; each is kept twice: as the agents write them and transposed for the
    sums."""
    n_out = d_out * n * LANES if truth.shape[0] > 0 else 0
    n_terms = n * LANES if labels.shape[0] > 0 else 0
    return n_out, n_terms


@njit(**_JIT)
def _pass_chunk(c, params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats):
    """Chunk c of :func:`probe_pass`: its scratch, then :func:`_probe_chunk`."""
    n, dims = X.shape[1], net.dims
    n_layers = dims.shape[0] - 1
    d_out = dims[n_layers]
    n_out, n_terms = _lane_sizes(n, d_out, truth, labels)
    n_own = _scratch_size(n_layers, _max_width(dims), n, d_out) + 2 * n_out
    owned = np.empty(n_own, dtype=params.dtype)
    lanes = np.empty(2 * n_terms + (2 + 2 * d_out) * LANES)
    lo = c * LANES
    hi = min(rows.shape[0], lo + LANES)
    if hi - lo < LANES:  # lanes without an agent: zeros (their sums are never read)
        owned[:] = 0.0
        lanes[:] = 0.0
    _probe_chunk(lo, hi, owned, lanes, params, rows, X, Y, truth, labels, net, preds, hidden,
                 hid_slot, dec, stats)  # fmt: skip


@njit(parallel=True, **_JIT)
def probe_pass(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats):
    """Forward pass of agents ``rows`` on the probe, with per-agent statistics.

    Parameters
    ----------
    params : float (P, n_params). Not modified.
    rows : int64 (m,): the agents, in the order of every output's rows.
    X : float (1, n, d_in) in the dtype of params: the probe.
    Y : float (1 or m, n, d_out) in the dtype of params: the truth for the loss (row i for
        agent rows[i] when it has m rows); (0, n, d_out): no loss.
    truth : float64 (n, d_out) for the squared error, or (0, d_out): none.
    labels : int64 (n,) for decisions, accuracy and entropy, or (0,): none.
    net : NetArrays.
    preds : float (m, n, d_out) filled with the outputs, or (0, n, d_out): not stored.
    hidden : float (c, n, d_1) filled with first-layer activations of the agents whose
        ``hid_slot`` is >= 0 (row ``hid_slot[i]``); hid_slot : int64 (m,).
    dec : int64 (m, n) filled with decisions when labels are given, else (1, 0).
    stats : float64 (m, N_STATS), filled (columns LOSS, SQ_ERR, CORRECT, ENTROPY, SPREAD;
        columns without their input are left as they were).

    Agents go in chunks of :data:`LANES` (one iteration of the parallel loop each, writing only
    its own agents' rows).
    """
    for c in prange((rows.shape[0] + LANES - 1) // LANES):
        _pass_chunk(c, params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec,
                    stats)  # fmt: skip


@njit(**_JIT)
def probe_pass_serial(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats):
    """:func:`probe_pass` in one thread (small sets of agents)."""
    for c in range((rows.shape[0] + LANES - 1) // LANES):
        _pass_chunk(c, params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec,
                    stats)  # fmt: skip


def run(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats) -> None:
    """:func:`probe_pass` (arguments and effects there): in its serial twin below
    :data:`SERIAL_WORK` (multiply-adds and :data:`ITEM_OVERHEAD` per agent and item), else on
    the threads the thread chooser finds faster."""
    m = rows.shape[0]
    per_item = params.shape[1] + ITEM_OVERHEAD  # ~ multiply-adds of an agent's item
    args = (params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats)
    if m * X.shape[1] * per_item < SERIAL_WORK:
        probe_pass_serial(*args)
    else:  # LANES agents per iteration, ~2 flops per multiply-add
        per_chunk = 2.0 * LANES * X.shape[1] * per_item
        sized_call("probe_pass", -(-m // LANES), per_chunk, probe_pass, *args)


def shared_outputs(params: np.ndarray, rows: np.ndarray, X: np.ndarray, net) -> np.ndarray:
    """Outputs (m, n, d_out) of agents ``rows`` (int64 (m,)) of ``params`` on one input set
    ``X`` (1, n, d_in), C-contiguous in the dtype of params: the probe pass without its
    statistics.

    The same outputs, bit for bit, as :func:`simulator.kernels.mlp.population_forward` (a test
    compares them for every activation and output function, float32 and float64, 0-2 hidden
    layers, with and without biases), and faster on a shared input set: the inputs are
    transposed once per chunk of agents (social_learning's 2-16-4 softmax networks, 10,000
    agents x 400 probe items, two threads: 72 ms -> 33 ms).
    """
    m, n, d_out = rows.shape[0], X.shape[1], int(net.dims[-1])
    dt = params.dtype
    preds = np.empty((m, n, d_out), dtype=dt)
    none = np.empty((0, n, d_out), dtype=dt)
    run(params, rows, X, none, np.empty((0, d_out)), np.empty(0, dtype=np.int64), net, preds,
        np.empty((0, n, 1), dtype=dt), np.full(m, -1, dtype=np.int64),
        np.empty((1, 0), dtype=np.int64), np.empty((m, N_STATS)))  # fmt: skip
    return preds


__all__ = [
    "CORRECT",
    "ENTROPY",
    "LOSS",
    "N_STATS",
    "SPREAD",
    "SQ_ERR",
    "probe_pass",
    "probe_pass_serial",
]
