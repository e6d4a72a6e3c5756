"""Polarization of a population's functions and the time its disagreement takes to vanish."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from simulator.config import check_int, check_number, fail
from simulator.metrics._checks import get_rng, int_labels, preds_array
from simulator.metrics.clusters import flat_outputs, principal_coordinates


def _two_poles(G: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0/1 labels: the side of each agent on the top principal axis of the centred outputs."""
    Z, _ = principal_coordinates(G, 1, rng)
    scale = float(np.abs(Z).max()) if Z.size else 0.0
    return (Z[:, 0] > 1e-9 * scale).astype(np.int64)


def _centroids(G: np.ndarray, lab: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean row (float64) of each group 0..n_groups-1 of G (every group non-empty)."""
    order = np.argsort(lab, kind="stable")
    starts = np.searchsorted(lab[order], np.arange(n_groups))
    sums = np.add.reduceat(G[order].astype(np.float64), starts, axis=0)
    return sums / np.bincount(lab, minlength=n_groups)[:, None]


def polarization(preds: Any, labels: Any = None, rng: Any = None, max_pairs: int = 20_000) -> float:
    """Esteban-Ray polarization (alpha = 1) of the agents' groups in function space.

    ``ER = sum_g sum_h pi_g^2 pi_h d(c_g, c_h)`` (Esteban & Ray 1994 with alpha = 1, K = 1),
    where ``pi_g`` is group g's share of the agents, ``c_g`` its mean output function and
    ``d`` the RMS distance over probe items ``sqrt(mean_n ||c_g(x_n) - c_h(x_n)||^2)``, in output
    units. 0 for consensus (one group, or all centroids equal); two equal groups at distance d
    give ``d / 4``, the maximum for two groups; unequal shares (pi, 1 - pi) give
    ``pi (1 - pi) d``. Many small groups score little: with P singletons ER is the mean
    pairwise distance divided by P.

    Groups: ``labels`` if given (e.g. from :func:`function_clusters`; agents labelled -1 are left
    out). Without labels, two poles: the agents are split by the side of the population mean
    they fall on along the top principal axis of their outputs (computed from ``rng``), so a
    spread-out unimodal population also scores above 0, proportionally to its spread.

    Exact over all pairs of groups when there are at most ``max_pairs`` of them
    (``G (G - 1) / 2``); otherwise sampled: ``max_pairs`` pairs ``(g, h)`` are drawn with
    probabilities ``pi_g^2 / sum pi^2`` and ``pi_h`` from ``rng`` and
    ``ER ~ sum pi^2 * mean d(c_g, c_h)`` (unbiased).

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified.
    labels : int array (P,), optional.
    rng : numpy.random.Generator or int, optional; default seed 0.
    max_pairs : int >= 1

    Returns
    -------
    float >= 0.
    """
    F = preds_array(preds)
    P, n = F.shape[:2]
    max_pairs = check_int("max_pairs", max_pairs, low=1)
    gen = get_rng(rng)
    G = flat_outputs(F)
    lab = _two_poles(G, gen) if labels is None else int_labels("labels", labels, P)
    keep = lab >= 0
    if not keep.any():
        raise fail("labels", "only negative labels", "at least one agent with a label >= 0")
    lab = np.unique(lab[keep], return_inverse=True)[1]
    n_groups = int(lab.max()) + 1
    if n_groups == 1:
        return 0.0
    centroids = _centroids(G[keep], lab, n_groups)
    share = np.bincount(lab) / lab.size
    if n_groups * (n_groups - 1) // 2 > max_pairs:
        sq = share**2
        g = gen.choice(n_groups, size=max_pairs, p=sq / sq.sum())
        h = gen.choice(n_groups, size=max_pairs, p=share)
        step = max(1, (1 << 22) // centroids.shape[1])
        total = 0.0
        for s in range(0, max_pairs, step):
            diff = centroids[g[s : s + step]] - centroids[h[s : s + step]]
            total += float(np.sqrt(np.einsum("ij,ij->i", diff, diff) / n).sum())
        return float(sq.sum() * total / max_pairs)
    dist = cdist(centroids, centroids) / np.sqrt(n)
    return float(share**2 @ dist @ share)


def consensus_time(series: Any, tol: float) -> int | None:
    """First index from which ``series`` stays strictly below ``tol`` until its end.

    Parameters
    ----------
    series : 1-D real array, e.g. consensus distance or function dispersion per collected step.
        NaN counts as not below.
    tol : float

    Returns
    -------
    int, or None if the last value is not below ``tol`` (or the series is empty).
    """
    s = np.asarray(series)
    if s.ndim != 1 or s.dtype.kind not in "fiub":
        raise fail("series", f"array of dtype {s.dtype} and shape {s.shape}", "a 1-D real array")
    tol = check_number("tol", tol)
    below = s.astype(np.float64) < tol
    if s.size == 0 or not below[-1]:
        return None
    above = np.flatnonzero(~below)
    return 0 if above.size == 0 else int(above[-1] + 1)
