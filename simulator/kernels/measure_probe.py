"""One forward pass of a set of agents over the probe, with every per-agent statistic fused in.

:func:`probe_pass` runs the networks of the rows ``rows`` of ``params`` on the probe set (the
same forward code as :func:`simulator.kernels.mlp.population_forward`, so the outputs are the
ones ``Population.predict`` gives) and, while an agent's outputs are in cache, fills its row of
every per-agent statistic the measures need: its loss (the same code as ``Population.loss``),
its squared error against a common truth, its decisions and accuracy, its predictive entropy,
and the spread of its outputs. Outputs and first-hidden-layer activations are stored only when
asked (``preds`` and ``hidden`` may have zero rows), so a pass over every agent of a large
population (per-agent tables) allocates only a few scalars per agent.

Each iteration of the parallel loop writes only its own agent's rows: results are bit-identical
on any number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.activations import OUT_SOFTMAX
from simulator.kernels.mlp import (
    _forward_agent,
    _layer_buffers,
    _max_width,
    _output_delta,
    _scales,
)

_JIT = {"cache": True, "error_model": "numpy"}

# Columns of the ``stats`` output (float64, (m, N_STATS)).
LOSS, SQ_ERR, CORRECT, ENTROPY, SPREAD = 0, 1, 2, 3, 4
N_STATS = 5


@njit(**_JIT)
def _entropy(o, b):
    """Predictive entropy (nats) of item b; one output is P(class 1)."""
    K = o.shape[0]
    h = 0.0
    if K == 1:
        p1 = np.float64(o[0, b])
        for p in (p1, 1.0 - p1):
            if p > 0.0:
                h -= p * np.log(p)
        return h
    for k in range(K):
        p = np.float64(o[k, b])
        if p > 0.0:
            h -= p * np.log(p)
    return h


@njit(**_JIT)
def _decisions(o, dec_row, best):
    """dec_row[b] = class decision of item b from outputs o (K, n): argmax (first on ties), or
    ``o > 0.5`` for one output. best : (n,) scratch. Loops run over the items (vectorizable)."""
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
            if o[k, b] > best[b]:
                best[b] = o[k, b]
                dec_row[b] = k


@njit(**_JIT)
def _entropy_sum(o, z, tmp, softmax, scratch):
    """Sum over items of the predictive entropy (nats); softmax outputs use H = lse - sum p z
    with the log-sum-exp the softmax left in tmp[n:] (no logarithm per class)."""
    K, n = o.shape
    h = 0.0
    if softmax:
        for b in range(n):
            scratch[b] = o[0, b] * z[0, b]
        for k in range(1, K):
            for b in range(n):
                scratch[b] += o[k, b] * z[k, b]
        for b in range(n):
            h += np.float64(tmp[n + b]) - np.float64(scratch[b])
        return h
    for b in range(n):
        h += _entropy(o, b)
    return h


@njit(**_JIT)
def _spread(o):
    """Mean over outputs of the (population) std of o (K, n) over the items, float64."""
    K, n = o.shape
    spread = 0.0
    for k in range(K):
        mean = 0.0
        for b in range(n):
            mean += o[k, b]
        mean /= n
        var = 0.0
        for b in range(n):
            d = np.float64(o[k, b]) - mean
            var += d * d
        spread += np.sqrt(var / n)
    return spread / K


@njit(**_JIT)
def _agent_stats(o, z, tmp, Y, yi, truth, labels, net, scales, delta, dec_row, stats_row):
    """Fill one agent's statistics from its outputs ``o`` (K, n) and pre-activations ``z``.

    Each statistic is computed only when its input is given: the loss with Y, the squared error
    and the output spread with ``truth``, decisions, accuracy and entropy with ``labels``.
    ``delta`` (K, n) is scratch (the loss's gradient, then a row for the other statistics).
    """
    K, n = o.shape
    out_kind = net.acts[net.dims.shape[0] - 2]
    if Y.shape[0] > 0:
        loss, _ = _output_delta(out_kind, net.loss, z, o, Y, yi, delta, tmp, scales)
        stats_row[LOSS] = loss
    if truth.shape[0] > 0:
        acc = 0.0
        for b in range(n):
            for k in range(K):
                d = np.float64(o[k, b]) - truth[b, k]
                acc += d * d
        stats_row[SQ_ERR] = acc / (n * K)
        stats_row[SPREAD] = _spread(o)
    if labels.shape[0] > 0:
        _decisions(o, dec_row, delta[0])
        right = 0
        for b in range(n):
            right += dec_row[b] == labels[b]
        stats_row[CORRECT] = right / n
        h = _entropy_sum(o, z, tmp, out_kind == OUT_SOFTMAX, delta[0])
        stats_row[ENTROPY] = h / n


@njit(**_JIT)
def _probe_agent(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats, i):
    """Forward pass and statistics of agent rows[i] (see :func:`probe_pass`)."""
    m = rows.shape[0]
    n = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    width = _max_width(dims)
    d_out = dims[n_layers]
    size = 2 * (n_layers + 1) * width * n
    scales = _scales(n, d_out, params.dtype)
    scratch = np.empty(size + 2 * n + d_out * n, dtype=params.dtype)
    acts, zs = _layer_buffers(scratch, n_layers, width, n)
    tmp = scratch[size : size + 2 * n]
    delta = scratch[size + 2 * n :].reshape((d_out, n))
    _forward_agent(params[rows[i]], X, 0, net, acts, zs, tmp)
    o = acts[n_layers, :d_out]
    dec_row = dec[i] if dec.shape[0] == m else dec[0]
    yi = np.int64(i) if Y.shape[0] == m and m > 1 else np.int64(0)
    _agent_stats(o, zs[n_layers, :d_out], tmp, Y, yi, truth, labels, net, scales, delta,
                 dec_row, stats[i])  # fmt: skip
    if preds.shape[0] > 0:
        for b in range(n):
            for k in range(d_out):
                preds[i, b, k] = o[k, b]
    s = hid_slot[i]
    if s >= 0:
        a = acts[1, : dims[1]]
        for b in range(n):
            for j in range(dims[1]):
                hidden[s, b, j] = a[j, b]


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
    """
    for i in prange(rows.shape[0]):
        _probe_agent(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec,
                     stats, i)  # fmt: skip


@njit(**_JIT)
def probe_pass_serial(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec, stats):
    """:func:`probe_pass` in one thread (small sets of agents)."""
    for i in range(rows.shape[0]):
        _probe_agent(params, rows, X, Y, truth, labels, net, preds, hidden, hid_slot, dec,
                     stats, i)  # fmt: skip


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
