"""Emergence and homogenization of outcomes: the crowd versus its members.

* Krogh & Vedelsby (1995): for the uniform average ``f_bar`` of P regressors,
  ``mse(f_bar) = mean_i mse(f_i) - ambiguity`` exactly, with
  ``ambiguity = mean_i mean ||f_i - f_bar||^2``. The ensemble's gain is the ambiguity, which is
  half the mean squared output distance over all ``P^2`` ordered pairs of agents: it vanishes
  exactly as the agents homogenize in function space.
* Kuncheva & Whitaker (2003): diversity of classifier ensembles from their oracle outputs
  (right or wrong per item): Kohavi-Wolpert variance, mean pairwise disagreement, interrater
  agreement kappa, tied by exact identities.
* Bommasani et al. (2022): outcome homogenization compares how often all members of a group
  fail on the same item with what independent failures would give.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any, NamedTuple

import numpy as np

from simulator.config import check_int, fail
from simulator.kernels import measure as KM
from simulator.kernels import measure_function as KF
from simulator.kernels import measure_weights as KW
from simulator.metrics._checks import (
    as_array,
    get_rng,
    int_labels,
    max_abs,
    preds_array,
    real_array,
    too_large,
)


def _targets(y: Any, n: int, d: int) -> np.ndarray:
    """Targets as float64 (n, d); (n,) is accepted when d = 1."""
    Y = as_array("y", y)
    if Y.ndim == 1 and d == 1:
        Y = Y[:, None]
    if Y.shape != (n, d):
        raise fail("y.shape", Y.shape, f"({n}, {d}) to match preds (or ({n},) when d_out = 1)")
    return real_array("y", Y, f"({n}, {d})", 2).astype(np.float64)


def _weights(weights: Any, P: int) -> np.ndarray:
    """Agent weights as float64 (P,), normalized to sum 1."""
    w = as_array("weights", weights)
    if w.shape != (P,) or w.dtype.kind not in "fiub":
        raise fail("weights", f"array of dtype {w.dtype} and shape {w.shape}", f"({P},) reals")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
        raise fail("weights", "negative, non-finite or all-zero weights", "w >= 0, sum(w) > 0")
    return w / w.sum()


def ensemble_decomposition(preds: Any, y: Any, weights: Any = None) -> tuple[float, float, float]:
    """Krogh-Vedelsby decomposition of the (weighted) average ensemble's squared error.

    With agent weights ``w`` (normalized to sum 1; uniform by default),
    ``f_bar = sum_i w_i f_i`` and ``mse`` the mean over probe items and outputs of the squared
    error:

    * ``ensemble_mse = mse(f_bar, y)``
    * ``mean_mse = sum_i w_i mse(f_i, y)``
    * ``ambiguity = sum_i w_i mean (f_i - f_bar)^2``; uniform weights:
      ``= (1/(2 P^2)) sum_{i,j} mean (f_i - f_j)^2`` (= ``function_dispersion / d_out``)

    and ``ensemble_mse == mean_mse - ambiguity`` up to float64 rounding, for any weights
    (Krogh & Vedelsby 1995). Parallel Numba passes, sums in a fixed order (bit-identical on any
    number of threads), O(P n d_out).

    Parameters
    ----------
    preds : float array, shape (P, n, d_out). Not modified.
    y : float array, shape (n, d_out), or (n,) when d_out = 1: the targets.
    weights : float array (P,), optional: non-negative, not all zero.

    Returns
    -------
    (ensemble_mse, mean_mse, ambiguity) : floats, computed in float64. Outputs or targets so
    large that these overflow float64 are refused (a ParameterError names the larger of the
    two), never returned as inf or NaN.
    """
    F = preds_array(preds)
    P, n, d = F.shape
    Y = _targets(y, n, d).ravel()
    G = np.ascontiguousarray(F.reshape(P, n * d))
    fbar = np.empty(n * d)
    if weights is None:
        w = np.full(P, 1.0 / P)
        KF.column_means(G, fbar)
    else:
        w = _weights(weights, P)
        KF.weighted_column_sums(G, w, fbar)
    err, amb = np.empty(P), np.empty(P)
    KW.sq_distances(G, Y, err)
    KW.sq_distances(G, fbar, amb)
    size = n * d
    ens = float(np.sum((fbar - Y) ** 2)) / size
    out = ens, float(np.sum(w * err)) / size, float(np.sum(w * amb)) / size
    if not all(math.isfinite(v) for v in out):  # finite inputs whose squares overflowed
        name, values = ("preds", F) if max_abs(F) >= max_abs(Y) else ("y", Y)
        raise too_large(name, values, _ERRORS_FIT)
    return out


_ERRORS_FIT = "small enough for the squared errors to fit in float64 (|values| below ~1e150)"


def ensemble_gain(preds: Any, y: Any) -> float:
    """``mean_mse - ensemble_mse`` of the uniform-average ensemble (>= 0).

    Returned as the ambiguity of :func:`ensemble_decomposition`, to which it is identical for
    the squared error (computed directly, it is never negative through rounding).
    """
    return ensemble_decomposition(preds, y)[2]


def ensemble_accuracy(probs: Any, labels: Any) -> tuple[float, float]:
    """Accuracy of the mean-probability ensemble and the mean accuracy of its members.

    Parameters
    ----------
    probs : float array, shape (P, n, K): class probabilities (or scores) on n items. With
        K = 1 the single output is P(class 1) and decisions use ``> 0.5``.
    labels : int array, shape (n,), values in [0, K) (in {0, 1} when K = 1).

    Returns
    -------
    (ensemble_accuracy, mean_individual_accuracy) : floats in [0, 1]. Ties in an argmax go
    to the lowest class index.
    """
    F = preds_array(probs, "probs")
    _, n, K = F.shape
    lab = int_labels("labels", labels, n)
    n_classes = max(K, 2)
    if lab.min() < 0 or lab.max() >= n_classes:
        raise fail("labels", f"values in [{lab.min()}, {lab.max()}]", f"ints in [0, {n_classes})")
    with np.errstate(over="ignore"):  # an overflow is seen below, and measured rescaled
        mean, half = F.mean(axis=0, dtype=np.float64), 0.5
    if not np.all(np.isfinite(mean)):  # huge scores overflowed the sum over agents: rare
        # a power of two below 1 / P: the sum fits, the decisions do not change (scaling every
        # score to max |F| ~ 1 instead made ordinary scores subnormal, and flipped them)
        s = math.ldexp(1.0, -math.ceil(math.log2(F.shape[0])) - 1)
        mean, half = (F * F.dtype.type(s)).mean(axis=0, dtype=np.float64), 0.5 * s
    if K == 1:
        ens_dec = (mean[:, 0] > half).astype(np.int64)
        dec = F[:, :, 0] > 0.5
    else:
        ens_dec = mean.argmax(axis=1)
        dec = F.argmax(axis=2)
    return float(np.mean(ens_dec == lab)), float(np.mean(dec == lab[None, :]))


def _groups(P: int, k: int, max_groups: int, rng: np.random.Generator) -> np.ndarray:
    """All k-subsets of range(P) if at most max_groups, else max_groups uniform ones."""
    if math.comb(P, k) <= max_groups:
        return np.array(list(combinations(range(P), k)), dtype=np.int64).reshape(-1, k)
    if 4 * k * k <= P:  # few collisions: draw all at once, redraw groups with a repeat
        groups = rng.integers(0, P, size=(max_groups, k))
        while True:
            bad = _has_repeat(groups)
            if not bad.any():
                return groups.astype(np.int64)
            groups[bad] = rng.integers(0, P, size=(int(bad.sum()), k))
    return np.stack([rng.choice(P, size=k, replace=False) for _ in range(max_groups)])


def _has_repeat(groups: np.ndarray) -> np.ndarray:
    """bool (G,): whether row g of groups (G, k) holds some agent twice (k(k-1)/2 column
    comparisons, cheaper than sorting the rows for small k)."""
    k = groups.shape[1]
    bad = np.zeros(groups.shape[0], dtype=bool)
    for a, b in combinations(range(k), 2):
        bad |= groups[:, a] == groups[:, b]
    return bad


def outcome_homogenization(
    correct: Any, k: int | None = None, max_groups: int = 2_000, rng: Any = None
) -> float:
    """Outcome homogenization of Bommasani et al. (2022), averaged over groups of k agents.

    For a group ``G`` of ``k`` agents,
    ``H(G) = P_x(every agent of G fails on x) / prod_{i in G} P_x(agent i fails on x)``,
    probabilities being shares of the probe items. 1 means failures as if independent; above 1,
    failures pile onto the same items (``e^(1-k)`` for k identical agents with error rate e);
    below 1, the agents fail on different items. The result is the mean of ``H(G)`` over all
    ``C(P, k)`` groups when there are at most ``max_groups``, else over ``max_groups`` groups of
    k distinct agents drawn uniformly (with replacement between groups) from ``rng``.

    Degenerate case, documented choice: a group in which some agent never fails has no joint
    failure and an independence expectation of 0; its ratio 0/0 is taken as 1.0 (nothing to pile
    up: no evidence of correlated failure). So a population without failures scores 1.0. The
    result is always finite.

    Parameters
    ----------
    correct : bool array, shape (P, n_items) (or 0/1 ints): whether agent i is right on item x.
    k : int in [1, P], optional
        Group size; default ``min(P, 3)`` (so ``k = P`` for P <= 3). ``k = 1`` gives 1.0.
    max_groups : int >= 1
    rng : numpy.random.Generator or int, optional; default seed 0.

    Returns
    -------
    float >= 0.
    """
    C = as_array("correct", correct)
    if C.ndim != 2 or C.shape[0] < 1 or C.shape[1] < 1 or C.dtype.kind not in "biu":
        raise fail(
            "correct",
            f"array of dtype {C.dtype} and shape {C.shape}",
            "bool (P, n_items) with P, n_items >= 1",
        )
    if C.dtype.kind != "b" and not np.isin(C, (0, 1)).all():
        raise fail("correct", "integers other than 0 and 1", "bool or 0/1")
    groups = failure_groups(C.shape[0], k, max_groups, rng)
    return homogenization_of_failures(np.ascontiguousarray(C == 0, dtype=np.uint8), groups)


def failure_groups(
    n_agents: int, k: int | None = None, max_groups: int = 2_000, rng: Any = None
) -> np.ndarray:
    """The groups of agents :func:`outcome_homogenization` averages over, with the same
    arguments: int64 (G, k), every k-subset of range(n_agents) (G = C(n_agents, k) <=
    max_groups) or max_groups uniform ones drawn from ``rng``. A caller measuring the same
    agents often can keep them (:func:`homogenization_of_failures`)."""
    P = check_int("n_agents", n_agents, low=1)
    k = min(P, 3) if k is None else check_int("k", k, 1, P)
    max_groups = check_int("max_groups", max_groups, low=1)
    return _groups(P, k, max_groups, get_rng(rng))


def homogenization_of_failures(fails: Any, groups: Any) -> float:
    """:func:`outcome_homogenization` of the failures ``fails`` (P, n_items), bool or 0/1 ints
    (1 = the agent fails on the item; uint8 C-contiguous is used as it is), over ``groups``
    (G, k) of agent indices in [0, P) (:func:`failure_groups`)."""
    F = as_array("fails", fails)
    valid = F.dtype == np.uint8 and F.ndim == 2 and F.flags.c_contiguous and F.size > 0
    fails = F if valid and F.max() <= 1 else _correct_matrix(F, "fails")
    g = as_array("groups", groups)
    P = fails.shape[0]
    if g.ndim != 2 or g.size == 0 or g.dtype.kind not in "iu" or g.min() < 0 or g.max() >= P:
        shown = f"array of dtype {g.dtype} and shape {g.shape}"
        if g.ndim == 2 and g.size and g.dtype.kind in "iu":
            shown = f"indices in [{g.min()}, {g.max()}]"
        raise fail("groups", shown, f"ints (G, k), G, k >= 1, in [0, {P})")
    groups = np.ascontiguousarray(g, dtype=np.int64)
    joint = np.empty(groups.shape[0])
    KW.pick(KM.joint_failures, KM.joint_failures_serial, groups.size * fails.shape[1])(
        fails, groups, joint
    )
    return float(KM.homogenization_ratio(fails, groups, joint))


def _correct_matrix(correct: Any, name: str = "correct") -> np.ndarray:
    """Oracle outputs (L, N) (or failures) as uint8 0/1 (validated)."""
    C = as_array(name, correct)
    if C.ndim != 2 or C.shape[0] < 1 or C.shape[1] < 1 or C.dtype.kind not in "biu":
        raise fail(
            name,
            f"array of dtype {C.dtype} and shape {C.shape}",
            "bool (L, N) with L agents and N items, L, N >= 1",
        )
    if C.dtype.kind != "b" and not np.isin(C, (0, 1)).all():
        raise fail(name, "integers other than 0 and 1", "bool or 0/1")
    return np.ascontiguousarray(C, dtype=np.uint8)


def _population(population: Any, L: int) -> int:
    return L if population is None else check_int("population", population, low=L)


class Diversity(NamedTuple):
    """Kuncheva-Whitaker diversity of a classifier ensemble (see :func:`diversity`)."""

    kw_variance: float
    disagreement: float
    kappa: float
    accuracy: float


def diversity(correct: Any, population: int | None = None) -> Diversity:
    """Kohavi-Wolpert variance, mean pairwise disagreement and interrater agreement kappa.

    Kuncheva & Whitaker (2003), from the oracle outputs ``correct[i, j]`` (agent i right on
    item j), with ``l_j`` the number of the L agents right on item j, N items and
    ``p = sum_j l_j / (N L)`` the mean accuracy:

    * ``disagreement = 2 / (N L (L - 1)) sum_j l_j (L - l_j)``: the mean over pairs of agents of
      the share of items on which exactly one of the two is right;
    * ``kw_variance = 1 / (N L^2) sum_j l_j (L - l_j) = (L - 1) / (2 L) * disagreement``;
    * ``kappa = 1 - (1/L) sum_j l_j (L - l_j) / (N (L - 1) p (1 - p))
      = 1 - disagreement / (2 p (1 - p))`` (Fleiss' kappa on the oracle outputs).

    O(L N). Conventions: L = 1 has no pairs (disagreement 0, kw_variance 0, kappa 1); if every
    agent is right everywhere or wrong everywhere (``p (1 - p) = 0``), kappa is 1.

    Parameters
    ----------
    correct : bool array (L, N) (or 0/1 ints).
    population : int >= L, optional
        When the L rows are a uniform sample (without replacement) of a population of this
        many agents: ``disagreement`` is the sample's, an unbiased estimate of the population's
        (a mean over uniformly drawn pairs), and kw_variance and kappa are the population's
        identities applied to it (``(P - 1) / (2 P) * disagreement``,
        ``1 - disagreement / (2 p (1 - p))`` with p the sample's accuracy).

    Returns
    -------
    Diversity(kw_variance, disagreement, kappa, accuracy), floats.
    """
    C = _correct_matrix(correct)
    return diversity_of_right(C.sum(axis=0, dtype=np.int64), C.shape[0], population)


def diversity_of_right(
    right: np.ndarray, n_agents: int, population: int | None = None
) -> Diversity:
    """:func:`diversity` from ``right`` int64 (N,), the number of the ``n_agents`` agents (L)
    right on each item (e.g. the counts of each item's true class among the decisions)."""
    L = check_int("n_agents", n_agents, low=1)
    right = as_array("right", right)
    if right.ndim != 1 or right.size == 0 or right.dtype.kind not in "iu":
        raise fail("right", f"array of dtype {right.dtype} and shape {right.shape}", "ints (N,)")
    if right.min() < 0 or right.max() > L:
        shown = f"counts in [{right.min()}, {right.max()}]"
        raise fail("right", shown, f"counts in [0, n_agents={L}]")
    right = right.astype(np.int64, copy=False)
    N = right.shape[0]
    P = _population(population, L)
    p = float(right.sum()) / (N * L)
    if L == 1:
        return Diversity(0.0, 0.0, 1.0, p)
    discord = float(np.sum(right * (L - right)))
    dis = 2.0 * discord / (N * L * (L - 1))
    kw = (P - 1) / (2.0 * P) * dis
    spread = p * (1.0 - p)
    kap = 1.0 if spread <= 0 else 1.0 - dis / (2.0 * spread)
    return Diversity(kw, dis, kap, p)


def kw_variance(correct: Any, population: int | None = None) -> float:
    """Kohavi-Wolpert variance of the ensemble's oracle outputs (Kuncheva & Whitaker 2003).

    ``KW = 1 / (N L^2) sum_j l_j (L - l_j)``, ``l_j`` the number of the L agents right on item
    j; equals ``(L - 1) / (2 L)`` times the mean pairwise :func:`disagreement`. In
    ``[0, 1/4]``; 0 when the agents are right on exactly the same items. See :func:`diversity`
    (``population``: the rows are a sample of that many agents).

    Parameters
    ----------
    correct : bool array (L agents, N items).
    """
    return diversity(correct, population).kw_variance


def disagreement(correct: Any) -> float:
    """Mean pairwise disagreement (Kuncheva & Whitaker 2003): over all pairs of agents, the
    share of items on which exactly one of the two is right. In ``[0, 1]``. See
    :func:`diversity`.

    Parameters
    ----------
    correct : bool array (L agents, N items).
    """
    return diversity(correct).disagreement


def kappa(correct: Any) -> float:
    """Interrater agreement kappa of the oracle outputs (Fleiss' kappa, as in Kuncheva &
    Whitaker 2003): ``1 - disagreement / (2 p (1 - p))``, p the mean accuracy. 1 when the
    agents are right on the same items; 0 when they agree only as much as independent agents
    of the same accuracy; negative below that. See :func:`diversity`.

    Parameters
    ----------
    correct : bool array (L agents, N items).
    """
    return diversity(correct).kappa
