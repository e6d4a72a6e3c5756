"""Polarization of a population's functions and the time its disagreement takes to vanish."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.config import check_int, check_number, fail
from simulator.kernels import measure as KM
from simulator.kernels import measure_polarization as KE
from simulator.kernels import measure_weights as KW
from simulator.metrics._checks import (
    as_array,
    get_rng,
    int_labels,
    max_abs,
    preds_array,
    too_large,
    unit_scale,
)
from simulator.metrics.clusters import _dense_codes, flat_outputs, principal_coordinates

# Outputs all below this in absolute value are measured scaled up (their squared distances
# could be subnormal or 0: ER came out 0 for two agents 1e-200 apart).
_TINY_OUTPUTS = 2.0**-400


def _two_poles(G: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """0/1 labels: the side of each agent on the top principal axis of the centred outputs;
    None if the coordinates overflowed float64 (huge outputs)."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # huge outputs: seen below
            Z, _ = principal_coordinates(G, 1, rng)
    except np.linalg.LinAlgError:  # the mean row overflowed: inf or NaN in the factorizations
        return None
    scale = float(np.abs(Z).max()) if Z.size else 0.0
    if not math.isfinite(scale):
        return None
    return (Z[:, 0] > 1e-9 * scale).astype(np.int64)


def _centroids(G: np.ndarray, lab: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean row (float64) of each group 0..n_groups-1 of G (every group non-empty), and the
    number of rows of each (int64)."""
    out, counts = np.empty((n_groups, G.shape[1])), np.empty(n_groups, dtype=np.int64)
    KM.group_means(G, np.ascontiguousarray(lab, dtype=np.int64), counts, out)
    return out, counts


def _exact_er(C: np.ndarray, share: np.ndarray, gen: np.random.Generator) -> float:
    """sum_{g != h} pi_g^2 pi_h d_gh over all pairs (d in C's units), exactly: every distance
    from its float64 differences (:func:`simulator.kernels.measure_polarization.er_terms`,
    O(G^2 D), parallel over groups above a small size). Below that size, the kernel of the
    split estimate with every group exact (no pair drawn: ``gen`` is not used), which the
    collect has loaded already (a kernel's first call in a process loads it: ~4 ms)."""
    G, D = C.shape
    if G * G * D // 2 < KW.SERIAL_BELOW:
        return KE.split_er(np.ascontiguousarray(C), np.ascontiguousarray(share), G, 1, gen)
    out = np.empty(G)
    kernel = KW.pick(KE.er_terms, KE.er_terms_serial, G * G * D // 2)
    kernel(np.ascontiguousarray(C, dtype=np.float64), np.ascontiguousarray(share), out)
    return float(out.sum())


_SPLIT_LOADED = False


def load_split_kernel() -> None:
    """Load the split estimate's kernel (:func:`simulator.kernels.measure_polarization.split_er`)
    in this process, once, on two groups: a model's first collect calls this, so the kernel's
    first use later in a run (when a population's groups fall below the exact limit: its first
    call in a process loads it from the cache, ~1-4 ms) does not land in a step."""
    global _SPLIT_LOADED
    if not _SPLIT_LOADED:
        C, share = np.zeros((2, 1)), np.full(2, 0.5)
        KE.split_er(C, share, 2, 1, np.random.default_rng(0))
        _SPLIT_LOADED = True


def _split_er(C: np.ndarray, share: np.ndarray, max_pairs: int, gen) -> float:
    """ER with the pairs among the k largest groups exact (k (k - 1) / 2 <= max_pairs / 2) and
    the rest (pairs with a smaller group) estimated from max_pairs / 2 pairs in two strata, in
    one kernel call (:func:`simulator.kernels.measure_polarization.split_er`, drawing from
    ``gen``). Its exact part runs in one thread: at most ~max_pairs / 2 distances of C's rows
    (social_learning's 1,600 outputs: ~0.1 ms), less than the Python around a parallel call."""
    k = max(2, int((1 + np.sqrt(1 + 4 * max_pairs)) / 2))
    C, share = np.ascontiguousarray(C), np.ascontiguousarray(share)
    return KE.split_er(C, share, k, max(1, max_pairs // 4), gen)


def polarization(
    preds: Any, labels: Any = None, rng: Any = None, max_pairs: int | None = 20_000
) -> float:
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

    Cost and exactness: centroids in one pass over the outputs (O(P D)); exact over all
    ``G (G - 1) / 2`` pairs of groups (O(G^2 D)) when ``max_pairs`` is None or at least that
    many. Otherwise the pairs among the ``k`` largest groups (``k (k - 1) / 2 <= max_pairs``)
    are exact and the pairs involving a smaller group are estimated from ``max_pairs / 2``
    distances (``max_pairs / 4`` in each of two strata: pairs whose first group is small, and
    pairs of a large and a small group), drawn from ``rng`` with probabilities ``pi_g^2 pi_h``:
    unbiased, with a standard deviation below ``(W_1 + W_2) max_gh d_gh / sqrt(max_pairs / 4)``,
    where ``W_1 = sum_{g small} pi_g^2 (1 - pi_g)`` and
    ``W_2 = (sum_{g large} pi_g^2)(sum_{h small} pi_h)`` are the strata's weights in ER.

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified. Outputs whose distances
        overflow float64 are measured exactly rescaled by a power of two (ER scales with them).
    labels : int array (P,), optional.
    rng : numpy.random.Generator or int, optional; default seed 0.
    max_pairs : int >= 1 or None (exact).

    Returns
    -------
    float >= 0.
    """
    F = preds_array(preds)
    P = F.shape[0]
    if max_pairs is not None:
        max_pairs = check_int("max_pairs", max_pairs, low=1)
    gen = get_rng(rng)
    lab = None if labels is None else int_labels("labels", labels, P)
    top = max_abs(F)
    if not 0.0 < top < _TINY_OUTPUTS:
        value = _polarization(F, lab, gen, max_pairs)
        if math.isfinite(value):
            return value
    # huge outputs (a distance or a coordinate overflowed) or tiny ones (squared distances
    # could underflow), a rare path. ER is positively homogeneous: measure F s, s a power of
    # two (exact), and scale back
    s = unit_scale(F)
    value = _polarization(F * F.dtype.type(s), lab, gen, max_pairs) / s
    if not math.isfinite(value):
        raise too_large("preds", F, "small enough for the polarization to fit in float64")
    return value


def _polarization(
    F: np.ndarray, lab: np.ndarray | None, gen: np.random.Generator, max_pairs: int | None
) -> float:
    """:func:`polarization` of validated outputs (two poles when ``lab`` is None); NaN or inf
    when a distance or coordinate overflowed."""
    if lab is None:
        lab = _two_poles(flat_outputs(F), gen)
        if lab is None:
            return math.nan
    return polarization_of_groups(F, lab, gen, max_pairs)


def polarization_of_groups(
    F: np.ndarray,
    lab: np.ndarray,
    gen: np.random.Generator,
    max_pairs: int | None,
    n_groups: int | None = None,
) -> float:
    """:func:`polarization` of validated outputs F (P, n, d) with int64 labels (P,)
    (``n_groups``: see :func:`polarization_of_rows`)."""
    ER = polarization_of_rows(flat_outputs(F), lab, gen, max_pairs, n_groups)
    return ER / np.sqrt(F.shape[1])


def polarization_of_rows(
    G: np.ndarray,
    lab: np.ndarray,
    gen: np.random.Generator,
    max_pairs: int | None,
    n_groups: int | None = None,
) -> float:
    """Esteban-Ray polarization with Euclidean distances between the groups' mean rows of G
    (P, D) (the method of :func:`polarization`, without its RMS scaling). ``n_groups``, when
    the caller knows the labels are 0 .. n_groups - 1, each used (a clustering's labels): they
    are taken as they are."""
    every = True
    if n_groups is None:
        keep = lab >= 0
        every = bool(keep.all())
        if not every and not keep.any():
            raise fail("labels", "only negative labels", "at least one agent with a label >= 0")
        lab = _dense_codes(lab if every else lab[keep])
        n_groups = int(lab.max()) + 1
    if n_groups == 1:
        return 0.0
    centroids, counts = _centroids(G if every else G[keep], lab, n_groups)
    share = counts / lab.size
    if max_pairs is None or n_groups * (n_groups - 1) // 2 <= max_pairs:
        return _exact_er(centroids, share, gen)
    return _split_er(centroids, share, max_pairs, gen)


def consensus_time(series: Any, tol: float) -> int | None:
    """First index from which ``series`` stays strictly below ``tol`` until its end.

    Parameters
    ----------
    series : 1-D real array of distances or dispersions (values >= 0), e.g. the consensus
        distance or function dispersion per collected step. NaN counts as not below.
    tol : float >= 0
        A negative ``tol`` is refused: no distance is below it. 0 is allowed and never reached
        (as ``consensus_tol = 0`` in a model).

    Returns
    -------
    int, or None if the last value is not below ``tol`` (or the series is empty).
    """
    s = as_array("series", series)
    if s.ndim != 1 or s.dtype.kind not in "fiub":
        raise fail("series", f"array of dtype {s.dtype} and shape {s.shape}", "a 1-D real array")
    tol = check_number("tol", tol, 0.0)
    below = s.astype(np.float64) < tol
    if s.size == 0 or not below[-1]:
        return None
    above = np.flatnonzero(~below)
    return 0 if above.size == 0 else int(above[-1] + 1)
