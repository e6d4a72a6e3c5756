"""Coordinates of rows on a few orthonormal directions, for exact single-linkage sweeps.

:func:`pivot_coordinates` projects the centred rows of G (m, D) on directions chosen by pivoted
Gram-Schmidt (each the residual of the row farthest from the span of the previous ones), and
returns the norms of the residuals outside them: exact lower and upper bounds of the rows'
distances, used by :func:`simulator.kernels.measure.sweep_components`. One pass over G per
direction (four rows at a time: four independent sums share the loads of the centre and the
direction), in parallel over blocks of 64 rows or in a serial twin for small inputs; every row
is computed by the same code either way, so the result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simulator.kernels.measure_weights import FLOPS_PER_ELEMENT
from simulator.kernels.sized import sized

_JIT = {"cache": True, "error_model": "numpy"}

__all__ = ["pivot_coordinates"]


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _project_rows(G, mu, v, Z, j, res, lo, hi):
    """Z[i, j] = (G_i - mu) . v and res[i] -= Z[i, j]^2 for rows lo..hi-1, four rows at a
    time (four independent sums share the loads of mu and v)."""
    D = G.shape[1]
    i = lo
    while i + 4 <= hi:
        r0, r1, r2, r3 = G[i], G[i + 1], G[i + 2], G[i + 3]
        a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
        for t in range(D):
            c, w = mu[t], v[t]
            a0 += (np.float64(r0[t]) - c) * w
            a1 += (np.float64(r1[t]) - c) * w
            a2 += (np.float64(r2[t]) - c) * w
            a3 += (np.float64(r3[t]) - c) * w
        Z[i, j], Z[i + 1, j], Z[i + 2, j], Z[i + 3, j] = a0, a1, a2, a3
        res[i] -= a0 * a0
        res[i + 1] -= a1 * a1
        res[i + 2] -= a2 * a2
        res[i + 3] -= a3 * a3
        i += 4
    for q in range(i, hi):
        row = G[q]
        acc = 0.0
        for t in range(D):
            acc += (np.float64(row[t]) - mu[t]) * v[t]
        Z[q, j] = acc
        res[q] -= acc * acc


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _norms_rows(G, mu, res, lo, hi):
    """res[i] = ||G_i - mu||^2 for rows lo..hi-1, four rows at a time."""
    D = G.shape[1]
    i = lo
    while i + 4 <= hi:
        r0, r1, r2, r3 = G[i], G[i + 1], G[i + 2], G[i + 3]
        a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
        for t in range(D):
            c = mu[t]
            d0, d1 = np.float64(r0[t]) - c, np.float64(r1[t]) - c
            d2, d3 = np.float64(r2[t]) - c, np.float64(r3[t]) - c
            a0 += d0 * d0
            a1 += d1 * d1
            a2 += d2 * d2
            a3 += d3 * d3
        res[i], res[i + 1], res[i + 2], res[i + 3] = a0, a1, a2, a3
        i += 4
    for q in range(i, hi):
        row = G[q]
        acc = 0.0
        for t in range(D):
            d = np.float64(row[t]) - mu[t]
            acc += d * d
        res[q] = acc


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _next_direction(G, mu, V, j, p):
    """V[j] = the unit residual of row p (centred) after removing V[:j] (Gram-Schmidt, twice).
    Returns False when the residual vanishes."""
    D = G.shape[1]
    v = V[j]
    for t in range(D):
        v[t] = np.float64(G[p, t]) - mu[t]
    for _ in range(2):
        for q in range(j):
            c = 0.0
            for t in range(D):
                c += V[q, t] * v[t]
            for t in range(D):
                v[t] -= c * V[q, t]
    nrm = 0.0
    for t in range(D):
        nrm += v[t] * v[t]
    if nrm <= 0.0:
        return False
    inv = 1.0 / np.sqrt(nrm)
    for t in range(D):
        v[t] *= inv
    return True


# Adding directions stops (given a radius) once fewer than this share of a fixed sample of
# pairs is still within the radius on the directions so far (and at least _MIN_DIRECTIONS):
# later directions cost a pass over the rows each and would prune few pairs. Measured on 256
# agents' outputs of gossip_learning, evolution and social_learning (10,000 agents, step 3):
# the best fixed counts were 8, 3 and 3-4; this rule takes 8, 3 and 4. Past _DIRECTIONS, a
# population spread over many dimensions keeps paying for more: directions are added while
# the last two together took more than 2 _MIN_GAIN / m of the sample's close share off (m
# rows: about _MIN_GAIN x m of the sweep's m^2 / 2 pairs pruned by each, against one pass
# over the rows each costs). evolution's 1,000 agents after 30 steps (256 probe
# outputs; 238 clusters): the share fell from 0.47 on 8 directions to 0.09 on 16 and the sweep
# with its directions took 2.9-3.0 ms instead of 5.7-6.0; the best fixed count was 16-20.
# A step of the share below that gain (monoculture's 1,000 agents: 0.41 -> 0.37 from 6 to 8
# directions, which 12 or 16 did not beat) stops at 8, as before.
_CLOSE_SHARE = 0.05
_MIN_DIRECTIONS = 3
_SAMPLE_PAIRS = 384
_DIRECTIONS = 8
_MIN_GAIN = 25.0
# ... or while many sample pairs are still close (at least _SPREAD_SHARE) and the last two
# directions took a fifth of them off: agents spread out, not in clusters (whose close
# pairs are mostly joined early and cost the sweep nothing), where each pruned pair saves an
# exact distance. evolution's panel of 256 after 30 steps (237 clusters; close shares 0.55,
# 0.41, 0.29, 0.19, 0.12 on 8, 10, ... 16 directions): 9 -> 17 directions, sweep and
# directions 425 -> ~310 us; 16 other saved states of 9 scenarios keep their counts.
_SPREAD_SHARE = 0.1
_SPREAD_FALL = 0.8


@njit(**_JIT)
def _close_share(Z, k, eps):
    """Share of a fixed pseudo-random sample of pairs of rows whose distance on the first k
    coordinates of Z is below eps (deterministic: a function of the shape of Z only)."""
    m = Z.shape[0]
    n = min(_SAMPLE_PAIRS, m * (m - 1) // 2)
    close = 0
    state = np.uint64(0x9E3779B97F4A7C15)
    for _ in range(n):
        state = state * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
        i = np.int64(state >> np.uint64(33)) % m
        j = (i + 1 + np.int64((state >> np.uint64(11)) & np.uint64(0x3FFFFF)) % (m - 1)) % m
        d = 0.0
        for t in range(k):
            e = Z[i, t] - Z[j, t]
            d += e * e
        close += d < eps * eps
    return close / max(n, 1)


@njit(**_JIT)
def _enough(Z, k, eps, shares):
    """Whether k directions suffice for sweeps at radius eps (> 0): at least _MIN_DIRECTIONS
    and fewer than _CLOSE_SHARE of the sample pairs close on them, or at least _DIRECTIONS
    and the last two directions took less than 2 _MIN_GAIN / m off the close share (m rows),
    unless that share is still at least _SPREAD_SHARE and fell by a fifth over them.
    shares (> k,): the close share on j directions at shares[j], recorded from
    _MIN_DIRECTIONS on."""
    if eps <= 0.0 or Z.shape[0] < 2 or k < _MIN_DIRECTIONS:
        return False
    shares[k] = _close_share(Z, k, eps)
    if shares[k] < _CLOSE_SHARE:
        return True
    gain = 0.5 * (shares[k - 2] - shares[k]) * Z.shape[0]
    falling = shares[k] >= _SPREAD_SHARE and shares[k] <= _SPREAD_FALL * shares[k - 2]
    return k >= _DIRECTIONS and gain < _MIN_GAIN and not falling


@njit(**_JIT)
def _largest(res):
    """``res.max()``, as its own function: written in the parallel driver, it would be a
    parallel loop of its own, cut into the pieces sized for the rows' loops."""
    return res.max()


@njit(**_JIT)
def _first_largest(res):
    """``np.argmax(res)``, as its own function (see :func:`_largest`)."""
    return np.argmax(res)


@njit(**_JIT)
def _shares(k):
    """The close shares of :func:`_enough` for up to k directions (shares[0] = 1), allocated in
    its own function: written in the parallel driver, ``np.ones`` would be a parallel loop of
    its own (see :func:`_largest`)."""
    return np.ones(k + 1)


@njit(parallel=True, **_JIT)
def _pivot_parallel(G, mu, V, Z, res, eps):
    m = G.shape[0]
    n_chunks = (m + 63) // 64
    for c in prange(n_chunks):
        _norms_rows(G, mu, res, c * 64, min(m, (c + 1) * 64))
    k = 0
    floor = 1e-10 * _largest(res)  # below: what is left is rounding, not a direction
    shares = _shares(V.shape[0])
    while k < V.shape[0] and not _enough(Z, k, eps, shares):
        p = _first_largest(res)
        if res[p] <= floor or not _next_direction(G, mu, V, k, p):
            break
        for c in prange(n_chunks):
            _project_rows(G, mu, V[k], Z, k, res, c * 64, min(m, (c + 1) * 64))
        k += 1
    return k


@njit(**_JIT)
def _pivot_serial(G, mu, V, Z, res, eps):
    m = G.shape[0]
    _norms_rows(G, mu, res, 0, m)
    k = 0
    floor = 1e-10 * _largest(res)  # below: what is left is rounding, not a direction
    shares = _shares(V.shape[0])
    while k < V.shape[0] and not _enough(Z, k, eps, shares):
        p = _first_largest(res)
        if res[p] <= floor or not _next_direction(G, mu, V, k, p):
            break
        _project_rows(G, mu, V[k], Z, k, res, 0, m)
        k += 1
    return k


def pivot_coordinates(
    G: np.ndarray, mu: np.ndarray, k: int, eps: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (m, k') float64 of the centred rows of G (m, D) on k' <= k orthonormal
    directions chosen by pivoted Gram-Schmidt: each direction is the residual of the row
    farthest from the span of the previous ones (a greedy approximation of the top principal
    axes; deterministic, lowest index on ties). The directions are orthonormal to float64
    precision (Gram-Schmidt applied twice), so distances between coordinates never exceed
    distances between rows (up to rounding). Also returns the norms (m,) of the rows' residuals
    outside those directions. Cost O(k' m D).

    ``eps`` > 0 (the radius of a sweep that will use them): stop before k directions once at
    least ``_MIN_DIRECTIONS`` leave fewer than ``_CLOSE_SHARE`` of a fixed sample of pairs
    within eps, or at least ``_DIRECTIONS`` stopped pruning many of them (``_MIN_GAIN``): more
    would cost more passes than the pairs they prune. The result depends only on the inputs,
    never on the thread count."""
    m, D = G.shape
    V = np.empty((min(k, D), D))  # every direction is written before it is read
    Z = np.empty((m, V.shape[0]))  # column j is written by the pass of direction j
    res = np.empty(m)
    # one pass over G per direction, and one for the norms
    used = sized(
        _pivot_parallel,
        _pivot_serial,
        G.size * (min(V.shape[0], _DIRECTIONS) + 1) * FLOPS_PER_ELEMENT,
    )(G, mu, V, Z, res, float(eps))
    coords = np.ascontiguousarray(Z[:, :used]) if used else np.zeros((m, 1))
    return coords, np.sqrt(np.maximum(res, 0.0))
