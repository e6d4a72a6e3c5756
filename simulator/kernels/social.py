"""Interaction kernels over the social graph in CSR form.

Each parallel kernel writes only the rows of the agents its iteration owns, reading a snapshot
of the others, so updates are synchronous and bit-identical on 1 or N threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.arrays import borrow
from simulator.kernels.mlp import (
    _borrowed_net,
    _forward_loaded,
    _layer_buffers,
    _load_input,
    _max_width,
)
from simulator.kernels.numpy_sum import buffered_sum, pairwise_sum
from simulator.kernels.random import normals_into

_JIT = {"cache": True, "error_model": "numpy"}
ROWS = 64  # agents per parallel work item of the graph kernels (one accumulator each)


@njit(parallel=True, **_JIT)
def mix_rows(params, indptr, indices, weights, rate, out):
    """out[i] = (1 - rate) params[i] + rate sum_k weights[k] params[indices[k]], k in row i.

    params, out : float (P, n), distinct arrays; weights : float64 (nnz,). The loop runs over
    blocks of ``ROWS`` agents, one float64 accumulator per block (no allocation per agent).
    """
    n_agents, n = params.shape
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        acc = np.empty(n, dtype=np.float64)
        for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
            acc[:] = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                w = weights[k]
                src = params[indices[k]]
                for c in range(n):
                    acc[c] += w * src[c]
            own = params[i]
            for c in range(n):
                out[i, c] = (1.0 - rate) * own[c] + rate * acc[c]


@njit(parallel=True, **_JIT)
def masked_mean_mix(params, indptr, indices, mask, rate, out):
    """Bounded-confidence averaging: out[i] = (1 - rate) p_i + rate mean(p_i and p_j, mask[k]).

    indptr/indices : the plain neighbour CSR (no self entries); mask : bool (nnz,).
    """
    n_agents, n = params.shape
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        acc = np.empty(n, dtype=np.float64)
        for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
            own = params[i]
            count = 1
            for c in range(n):
                acc[c] = own[c]
            for k in range(indptr[i], indptr[i + 1]):
                if mask[k]:
                    count += 1
                    src = params[indices[k]]
                    for c in range(n):
                        acc[c] += src[c]
            for c in range(n):
                out[i, c] = (1.0 - rate) * own[c] + rate * acc[c] / count


@njit(inline="always")
def _neighbour_sum(rows, indptr, indices, i, acc, n):
    """acc[:n] float64 = the sum of the rows (n columns) of agent i's neighbours, in CSR
    order."""
    acc[:] = 0.0
    for k in range(indptr[i], indptr[i + 1]):
        src = rows[indices[k]]
        for c in range(n):
            acc[c] += src[c]


@njit(parallel=True, **_JIT)
def neighbour_mean(params, indptr, indices, out):
    """out[i] = mean of params over i's neighbours (params[i] itself for an isolated agent)."""
    n_agents, n = params.shape
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        acc = np.empty(n, dtype=np.float64)
        for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
            deg = indptr[i + 1] - indptr[i]
            if deg == 0:
                out[i] = params[i]
                continue
            _neighbour_sum(params, indptr, indices, i, acc, n)
            for c in range(n):
                out[i, c] = acc[c] / deg


@njit(parallel=True, **_JIT)
def novelty_rms(preds, indptr, indices, cast, out):
    """out[i] (float64) = RMS over the n columns of ``preds[i] - m_i``, m_i the mean of preds over
    i's neighbours (:func:`neighbour_mean`'s row; 0 for an isolated agent), preds (P, n).

    The same bits as NumPy's ``np.sqrt(((preds - m) ** 2).mean(axis=1, dtype=np.float64))`` with
    ``m`` from :func:`neighbour_mean`: the mean and the differences rounded to preds' dtype,
    the squares in it, their mean in float64 summed in NumPy's order (``cast``: preds is not
    float64, so NumPy summed through its cast buffers; :mod:`simulator.kernels.numpy_sum`),
    with no (P, n) temporaries.
    """
    n_agents, n = preds.shape
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        acc = np.empty(n, dtype=np.float64)
        mean = np.empty(n, dtype=preds.dtype)
        for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
            deg = indptr[i + 1] - indptr[i]
            own = preds[i]
            if deg == 0:
                out[i] = 0.0
                continue
            _neighbour_sum(preds, indptr, indices, i, acc, n)
            for c in range(n):
                mean[c] = acc[c] / deg  # rounded to preds' dtype, as neighbour_mean's row
                d = own[c] - mean[c]
                acc[c] = d * d
            total = buffered_sum(acc, 0, n) if cast else pairwise_sum(acc, 0, n)
            out[i] = np.sqrt(total / n)


@njit(parallel=True, **_JIT)
def add_row_noise(params, rows, scale, k0, k1, step, purpose):
    """``params[rows[e]] += scale * z_e`` in place for every e, z_e the float64 normals of stream
    ``(e, step, purpose)`` (:func:`simulator.kernels.random.normals_into`), each ``scale * z``
    rounded once to params' dtype and then added in it. rows int64 (k,), distinct (each
    iteration writes only its own rows)."""
    n = params.shape[1]
    for blk in prange((rows.shape[0] + ROWS - 1) // ROWS):
        z = np.empty(n, dtype=np.float64)
        scaled = np.empty(n, dtype=params.dtype)  # scale * z rounded to params' dtype
        for e in range(blk * ROWS, min(rows.shape[0], (blk + 1) * ROWS)):
            normals_into(z, k0, k1, e, step, purpose)
            for c in range(n):
                scaled[c] = z[c] * scale
            row = params[rows[e]]
            for c in range(n):
                row[c] += scaled[c]


@njit(**_JIT)
def greedy_matching(n_agents, edge_u, edge_v, order):
    """Disjoint pairs from the edges taken in ``order`` (a random permutation): (m, 2) int64."""
    taken = np.zeros(n_agents, dtype=np.bool_)
    pairs = np.empty((min(order.shape[0], n_agents // 2), 2), dtype=np.int64)
    m = 0
    for e in order:
        u, v = edge_u[e], edge_v[e]
        if not taken[u] and not taken[v]:
            taken[u] = True
            taken[v] = True
            pairs[m, 0] = u
            pairs[m, 1] = v
            m += 1
    return pairs[:m]


@njit(parallel=True, **_JIT)
def average_pairs(params, pairs, rate):
    """Each pair (i, j) moves toward its midpoint by ``rate`` (1: both become the midpoint).

    Pairs must be disjoint; the sum of every pair's rows, hence the population mean, is preserved.
    """
    n = params.shape[1]
    for k in prange(pairs.shape[0]):
        a, b = params[pairs[k, 0]], params[pairs[k, 1]]
        for c in range(n):
            shift = 0.5 * rate * (b[c] - a[c])
            a[c] += shift
            b[c] -= shift


@njit(parallel=True, **_JIT)
def confident_edges(preds, indptr, indices, eps):
    """mask[k] = RMS distance between the outputs of i and indices[k] is < eps.

    preds : float32 or float64 (P, m), each agent's outputs on the probe set, flattened (or its
    parameters); differences and sums in float64 (a float32 input is widened exactly, so the
    mask is the one of its float64 copy). Returns bool (nnz,).
    """
    n_agents, m = preds.shape
    # np.empty, not np.zeros: every entry is written below (the rows' ranges cover 0..nnz-1),
    # and np.zeros would be a parallel loop of its own, cut into the pieces sized for the
    # agents' loop (one entry each: 127,594 tasks, 17 ms, for a 0.2 ms kernel)
    mask = np.empty(indices.shape[0], dtype=np.bool_)
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                sq = 0.0
                for c in range(m):
                    d = np.float64(preds[i, c]) - np.float64(preds[j, c])
                    sq += d * d
                mask[k] = np.sqrt(sq / m) < eps
    return mask


@njit(**_JIT)
def _predict_block(blk, scratch_, acc_, params_, X_, indptr_, indices_, mask_, net_, out_, counts_):
    """Agents ``blk * ROWS ..`` of :func:`neighbour_predictions`, with ``scratch_`` (layer
    buffers) and ``acc_`` (float64 (d_out, B)) as their scratch. Every array is borrowed
    (:func:`simulator.kernels.arrays.borrow`; the caller holds them all for the call): the views
    taken per neighbour (its parameter row, the agent's inputs) count no references, which both
    threads would otherwise do on the same owners."""
    params, X, out, counts = borrow(params_), borrow(X_), borrow(out_), borrow(counts_)
    indptr, indices, mask = borrow(indptr_), borrow(indices_), borrow(mask_)
    scratch, acc, net = borrow(scratch_), borrow(acc_), _borrowed_net(net_)
    n_agents = params.shape[0]
    batch = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    d_out = dims[n_layers]
    width = _max_width(dims)
    acts, zs = _layer_buffers(scratch, n_layers, width, batch)
    tmp = scratch[2 * (n_layers + 1) * width * batch :]
    o = acts[n_layers, :d_out]
    for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
        acc[:, :] = 0.0
        counts[i] = 0
        loaded = False  # agent i's inputs, transposed into acts[0] once for all its neighbours
        for k in range(indptr[i], indptr[i + 1]):
            if not mask[k]:
                continue
            counts[i] += 1
            if not loaded:
                _load_input(X, np.int64(i), acts[0, : dims[0]])
                loaded = True
            _forward_loaded(params[indices[k]], net, acts, zs, tmp, False)
            for j in range(d_out):
                for b in range(batch):
                    acc[j, b] += o[j, b]
        if counts[i] > 0:
            for b in range(batch):
                for j in range(d_out):
                    out[i, b, j] = acc[j, b] / counts[i]
        else:
            for b in range(batch):
                for j in range(d_out):
                    out[i, b, j] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def neighbour_predictions(params, X, indptr, indices, mask, net, out):
    """Mean over i's (unmasked) neighbours j of f_j(X_i), for every agent i.

    params : float (P, n_params); X : float (P, B, d_in); mask : bool (nnz,);
    out : float (P, B, d_out), filled. Returns int64 (P,) the number of neighbours averaged
    (0: out[i] is left at 0). The loop runs over blocks of ``ROWS`` agents, whose scratch is
    allocated once per block (:func:`_predict_block`); each agent's mean is summed in float64
    over its neighbours in CSR order.
    """
    n_agents = params.shape[0]
    batch = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    size = 2 * (n_layers + 1) * _max_width(dims) * batch + 2 * batch
    counts = np.empty(n_agents, dtype=np.int64)  # not np.zeros: see confident_edges
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        scratch = np.empty(size, dtype=params.dtype)
        acc = np.empty((dims[n_layers], batch), dtype=np.float64)
        _predict_block(blk, scratch, acc, params, X, indptr, indices, mask, net, out, counts)
    return counts


@njit(parallel=True, **_JIT)
def blend_targets(Y, means, counts, weight, dst):
    """dst[i] = (1 - w_i) Y[i] + w_i means[i], with w_i = weight where counts[i] > 0, else 0.

    The soft targets of distillation, in float64 (the products, then their sum: the arithmetic
    of the NumPy expression ``(1 - w) * Y + w * means`` with a float64 w), rounded once to
    dst's dtype. Y : float (P or 1, B, d_out) (one row shared by every agent when its first
    dimension is 1); means : float (P, B, d_out); counts : int64 (P,); dst : float (P, B,
    d_out), filled. Parallel over blocks of ``ROWS`` agents.
    """
    n_agents, batch, d_out = dst.shape
    shared = Y.shape[0] == 1
    for blk in prange((n_agents + ROWS - 1) // ROWS):
        for i in range(blk * ROWS, min(n_agents, (blk + 1) * ROWS)):
            w = weight if counts[i] > 0 else 0.0
            keep = 1.0 - w
            y = Y[0] if shared else Y[i]
            m = means[i]
            d = dst[i]
            for b in range(batch):
                for j in range(d_out):
                    d[b, j] = keep * np.float64(y[b, j]) + w * np.float64(m[b, j])


# ---------------------------------------------------------------------------- schedules
# The sequential (random_order / random_independent) forms of imitation and bounded confidence.
# One kernel call runs a step's elementary updates one after another, from random numbers drawn
# beforehand, so the result depends on the seed only (no parallel loop, no shared RNG state).


@njit(**_JIT)
def imitation_sequence(acting, look_u, nb_u, accept_u, indptr, indices, fitness, beta, rate):
    """Fermi imitation, one elementary update after another (see :mod:`simulator.schedules`).

    Update ``t`` is by agent ``acting[t]``: with probability ``rate`` (``look_u[t] < rate``) it
    looks at the neighbour ``indices[indptr[i] + floor(nb_u[t] deg_i)]`` (itself when isolated)
    and copies it when ``accept_u[t] < 1 / (1 + exp(-beta (f_j - f_i)))``; a copy takes over the
    neighbour's current fitness, so later updates of the step see it.

    acting : int64 (m,); look_u, nb_u, accept_u : float64 (m,) uniforms in [0, 1);
    fitness : float64 (P,), updated in place (the fitness each agent ends the step with).
    Returns ``(dst, src, parent, origin, last)``: the copies in order, int64 (k,) each, with
    ``parent[e]`` the copy event that last wrote ``src[e]`` before event ``e`` (-1: none);
    ``origin`` int64 (P,) the agent whose start-of-step network each agent ends up carrying;
    ``last`` int64 (P,) the last copy event into each agent (-1: none).
    """
    n, m = fitness.shape[0], acting.shape[0]
    origin = np.arange(n)
    last = np.full(n, -1, dtype=np.int64)
    dst = np.empty(m, dtype=np.int64)
    src = np.empty(m, dtype=np.int64)
    parent = np.empty(m, dtype=np.int64)
    k = 0
    for t in range(m):
        i = acting[t]
        if not look_u[t] < rate:
            continue
        deg = indptr[i + 1] - indptr[i]
        j = i if deg == 0 else indices[indptr[i] + np.int64(nb_u[t] * deg)]
        z = min(max(beta * (fitness[j] - fitness[i]), -500.0), 500.0)
        if accept_u[t] < 1.0 / (1.0 + np.exp(-z)):
            dst[k], src[k], parent[k] = i, j, last[j]
            last[i] = k
            origin[i] = origin[j]
            fitness[i] = fitness[j]
            k += 1
    return dst[:k], src[:k], parent[:k], origin, last


@njit(**_JIT)
def lineage_noise(noise, parent):
    """Accumulate mutation noise along chains of copies, in place.

    noise : float64 (k, n_params), the noise of each copy event in order; parent : int64 (k,).
    Afterwards ``noise[e]`` is the total noise an agent written by event ``e`` carries on top of
    its origin's start-of-step network (a copy of a copy inherits the first copy's noise).
    """
    for e in range(noise.shape[0]):
        p = parent[e]
        if p >= 0:
            for c in range(noise.shape[1]):
                noise[e, c] += noise[p, c]


@njit(cache=True, error_model="numpy")
def bounded_confidence_sequence(
    params_, acting_, indptr_, indices_, eps, rate, preds_, probe_, net_
):
    """Hegselmann-Krause moves one agent after another, each seeing the moves before it.

    Agent ``i = acting[t]`` moves ``p_i <- (1 - rate) p_i + rate mean(p_i, p_j : d(i, j) < eps)``
    over its neighbours j, with d the RMS distance of the rows of ``preds`` (function space),
    or of ``params`` when ``preds`` has no columns (weight space).

    params : float (P, n), updated in place; acting : int64 (m,);
    preds : float (P, n_probe * d_out), each agent's outputs on the probe, sample-major,
    updated in place after each move (one forward pass on ``probe``), or shape (P, 0);
    probe : float (1, n_probe, d_in) in the dtype of ``params``; net : the population's NetArrays.
    """
    # every array borrowed (no reference counted per view: the rows read per neighbour)
    params, acting, preds, probe = borrow(params_), borrow(acting_), borrow(preds_), borrow(probe_)
    indptr, indices, net = borrow(indptr_), borrow(indices_), _borrowed_net(net_)
    n = params.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    d_out = dims[n_layers]
    batch = probe.shape[1]
    width = _max_width(dims)
    size = 2 * (n_layers + 1) * width * batch
    scratch = np.empty(size + 2 * batch, dtype=params.dtype)
    acts, zs = _layer_buffers(scratch, n_layers, width, batch)
    tmp = scratch[size:]
    functional = preds.shape[1] > 0
    if functional:  # the probe, transposed into acts[0] once for every move
        _load_input(probe, np.int64(0), acts[0, : dims[0]])
    acc = np.empty(n, dtype=np.float64)
    for t in range(acting.shape[0]):
        i = acting[t]
        for c in range(n):
            acc[c] = params[i, c]
        count = 1
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if functional:
                d = _rms(preds[i], preds[j])
            else:
                d = _rms(params[i], params[j])
            if d < eps:
                count += 1
                for c in range(n):
                    acc[c] += params[j, c]
        for c in range(n):
            params[i, c] = (1.0 - rate) * params[i, c] + rate * acc[c] / count
        if functional:
            _forward_loaded(params[i], net, acts, zs, tmp, False)
            o = acts[n_layers, :d_out]
            for b in range(batch):
                for j in range(d_out):
                    preds[i, b * d_out + j] = o[j, b]


@njit(**_JIT)
def _rms(a, b):
    """RMS difference of two vectors, in float64."""
    sq = 0.0
    for c in range(a.shape[0]):
        d = np.float64(a[c]) - np.float64(b[c])
        sq += d * d
    return np.sqrt(sq / a.shape[0])


# ---------------------------------------------------------------------------- stubbornness
@njit(parallel=True, **_JIT)
def pull_toward(params, anchor, s):
    """Friedkin-Johnsen anchoring in place: ``params[i] <- (1 - s[i]) params[i] + s[i] anchor[i]``.

    params, anchor : float (P, n), same dtype; s : float64 (P,) in [0, 1].
    """
    n_agents, n = params.shape
    for i in prange(n_agents):
        si = s[i]
        if si == 0.0:
            continue
        for c in range(n):
            params[i, c] = (1.0 - si) * params[i, c] + si * anchor[i, c]
