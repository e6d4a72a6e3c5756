"""Interaction kernels over the social graph in CSR form.

Each parallel kernel writes only the rows of the agents its iteration owns, reading a snapshot
of the others, so updates are synchronous and bit-identical on 1 or N threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.mlp import _forward_agent, _layer_buffers, _max_width

_JIT = {"cache": True, "error_model": "numpy"}


@njit(parallel=True, **_JIT)
def mix_rows(params, indptr, indices, weights, rate, out):
    """out[i] = (1 - rate) params[i] + rate sum_k weights[k] params[indices[k]], k in row i.

    params, out : float (P, n), distinct arrays; weights : float64 (nnz,).
    """
    n_agents, n = params.shape
    for i in prange(n_agents):
        acc = np.zeros(n, dtype=np.float64)
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
    for i in prange(n_agents):
        acc = np.zeros(n, dtype=np.float64)
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


@njit(parallel=True, **_JIT)
def neighbour_mean(params, indptr, indices, out):
    """out[i] = mean of params over i's neighbours (params[i] itself for an isolated agent)."""
    n_agents, n = params.shape
    for i in prange(n_agents):
        deg = indptr[i + 1] - indptr[i]
        if deg == 0:
            out[i] = params[i]
            continue
        acc = np.zeros(n, dtype=np.float64)
        for k in range(indptr[i], indptr[i + 1]):
            src = params[indices[k]]
            for c in range(n):
                acc[c] += src[c]
        for c in range(n):
            out[i, c] = acc[c] / deg


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

    preds : float (P, m), each agent's outputs on the probe set, flattened.
    """
    n_agents, m = preds.shape
    mask = np.zeros(indices.shape[0], dtype=np.bool_)
    for i in prange(n_agents):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            sq = 0.0
            for c in range(m):
                d = preds[i, c] - preds[j, c]
                sq += d * d
            mask[k] = np.sqrt(sq / m) < eps
    return mask


@njit(parallel=True, cache=True, error_model="numpy")
def neighbour_predictions(params, X, indptr, indices, mask, net, out):
    """Mean over i's (unmasked) neighbours j of f_j(X_i), for every agent i.

    params : float (P, n_params); X : float (P, B, d_in); mask : bool (nnz,);
    out : float (P, B, d_out), filled. Returns int64 (P,) the number of neighbours averaged
    (0: out[i] is left at 0).
    """
    n_agents = params.shape[0]
    batch = X.shape[1]
    dims = net.dims
    n_layers = dims.shape[0] - 1
    d_out = dims[n_layers]
    width = _max_width(dims)
    size = 2 * (n_layers + 1) * width * batch
    counts = np.zeros(n_agents, dtype=np.int64)
    for i in prange(n_agents):
        scratch = np.empty(size + 2 * batch, dtype=params.dtype)
        acts, zs = _layer_buffers(scratch, n_layers, width, batch)
        tmp = scratch[size:]
        o = acts[n_layers, :d_out]
        acc = np.zeros((d_out, batch), dtype=np.float64)
        for k in range(indptr[i], indptr[i + 1]):
            if not mask[k]:
                continue
            counts[i] += 1
            _forward_agent(params[indices[k]], X, np.int64(i), net, acts, zs, tmp)
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
    return counts
