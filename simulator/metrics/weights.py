"""Weight-space homogenization: how close the agents' parameter rows are.

Raw weight distances mistake permuted twins for strangers (hidden units can be permuted, and
sign-flipped for odd activations, without changing the function): the ``aligned_*`` measures
first align hidden units by weight matching (:mod:`simulator.metrics.align`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from simulator.config import check_agents, check_int, fail
from simulator.kernels import measure_align as KA
from simulator.kernels import measure_weights as KW
from simulator.metrics._checks import (
    all_finite,
    check_agent,
    check_population,
    get_rng,
    max_abs,
    params_unchecked,
    require_finite,
    too_large,
)
from simulator.metrics.align import (
    ODD_ACTIVATIONS,
    align_rows,
    alignment_scale,
    hidden_activations,
    one_hidden,
    pair_scale,
)


class WeightSummary(NamedTuple):
    """What one pass over the parameter rows gives (see :func:`weight_summary`).

    centroid : float64 (n_params,); sq_distances : float64 (P,) ``||p_i - centroid||^2``;
    consensus_distance : float; mean_cosine : float; nearest : int, the row nearest the
    centroid (the first of equals: ``argmin(sq_distances)``); spread : float, the largest
    distance to the centroid (``sqrt(max(sq_distances))``); top : float, ``max |centroid|``.
    """

    centroid: np.ndarray
    sq_distances: np.ndarray
    consensus_distance: float
    mean_cosine: float
    nearest: int
    spread: float
    top: float


def weight_summary(params: Any) -> WeightSummary:
    """Centroid, distances to it, consensus distance and mean pairwise cosine, exactly.

    One Numba call (:func:`simulator.kernels.measure_weights.weight_moments`) of two parallel
    passes over ``params``, in float64: the first sums rows and unit rows per block of rows,
    the second the squared distances to the centroid. Partial sums are reduced in a fixed
    order: the result is bit-identical on any number of threads. O(P n_params) time,
    O(n_params P / 256) memory.

    Parameters
    ----------
    params : float array, shape (P, n_params). Not modified. Finite, and small enough for the
        squared distances and row sums to fit in float64 (a ParameterError says which).
    """
    X = params_unchecked(params)  # values checked through the sums below: no extra pass
    P = X.shape[0]
    kernel = KW.pick(KW.weight_moments, KW.weight_moments_serial, KW.row_work(*X.shape))
    centroid, u, sq, nonzero_rows, (total, nearest, far, top) = kernel(
        X, *KW.moments_buffers(*X.shape)
    )
    if not math.isfinite(total):  # NaN or inf if any of sq is, or if their sum overflows
        require_finite("params", centroid, total, values=X)
    cosine = _mean_cosine(u, nonzero_rows, P)
    return WeightSummary(centroid, sq, total / P, cosine, nearest, math.sqrt(far), top)


def _mean_cosine(u: np.ndarray, nonzero: int, P: int) -> float:
    """Mean pairwise cosine from the sum u (D,) of the unit rows and the count of non-zero rows:
    ``(||u||^2 - n_nonzero) / (P (P - 1))`` clipped to [-1, 1]; 1.0 for P = 1."""
    if P == 1:
        return 1.0
    cosine = (float(u @ u) - nonzero) / (P * (P - 1))
    return float(min(1.0, max(-1.0, cosine)))


def consensus_distance(params: Any) -> float:
    """Mean squared Euclidean distance of the agents' parameters to their mean.

    ``D = (1/P) sum_i ||p_i - p_bar||^2``, exact, O(P n_params), accumulated in float64 by
    parallel kernels whose result does not depend on the thread count (:func:`weight_summary`).
    It equals half the mean squared distance over all ``P^2`` ordered pairs
    ``(1/(2 P^2)) sum_{i,j} ||p_i - p_j||^2`` (the centroid identity).

    Parameters
    ----------
    params : float array, shape (P, n_params). Not modified.

    Returns
    -------
    float >= 0 (0 when every agent is identical, and for P = 1). Rows so large that the
    squared distances (or the row sums) overflow float64 are refused by a ParameterError naming
    ``params``, never returned as inf.
    """
    return weight_summary(params).consensus_distance


def mean_pairwise_cosine(params: Any, max_pairs: int = 20_000, rng: Any = None) -> float:
    """Mean cosine similarity of the parameter rows over all pairs of distinct agents.

    Exact for every P in O(P n_params), by the identity
    ``sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - sum_i ||u_i||^2`` with ``u_i = p_i / ||p_i||``
    (:func:`weight_summary`): no pairs are sampled. ``max_pairs`` and ``rng`` are validated
    and accepted for a signature shared with the sampled measures, but not needed.

    Conventions: a zero row has cosine 0 with every other row; P = 1 returns 1.0. Exact for
    any finite rows, however large or small (a row whose squared norm overflows or underflows
    float64 is rescaled by a power of two first).

    Parameters
    ----------
    params : float array, shape (P, n_params). Not modified.

    Returns
    -------
    float in [-1, 1]: 1 when all agents are positive multiples of one row, up to the rounding of
    the unit vectors' squared norms (within a few 1e-16 times n_params; two rows of nine ones
    give 1 - 7.8e-16 on some CPUs, 1 on others: the order of the sums follows the vector width).
    """
    check_int("max_pairs", max_pairs, low=1)
    get_rng(rng)
    X = params_unchecked(params)
    sums, units, nonzero = _block_sums(X)  # one pass: the cosine needs no centroid distances
    # a NaN or inf in a row makes the sums NaN or inf; huge finite rows may overflow the sums
    # of rows (the unit vectors stay exact), so look at the values only then (a rare path)
    if not (np.all(np.isfinite(sums)) and np.all(np.isfinite(units))) and not all_finite(X):
        raise fail("params", "an array with NaN or inf", "finite everywhere")
    return _mean_cosine(units.sum(axis=0), int(nonzero.sum()), X.shape[0])


def _block_sums(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block of rows of X (P, D): the sum of the rows, the sum of their unit vectors
    (float64 (n_blocks, D) each) and the number of non-zero rows (int64 (n_blocks,))."""
    nb, D = KW.n_blocks(X.shape[0]), X.shape[1]
    sums, units = np.empty((nb, D)), np.empty((nb, D))
    nonzero, marks = np.empty(nb, dtype=np.int64), np.empty(nb, dtype=np.int8)
    work = KW.row_work(*X.shape)
    KW.pick(KW.block_sums, KW.block_sums_serial, work)(X, sums, units, nonzero, marks)
    if marks.any():  # a zero, tiny or huge row: its unit vector exactly (a rare path)
        KW.units_again(X, units, nonzero, marks)
    return sums, units, nonzero


# Below this a norm from summed squares may have lost precision to underflow (~sqrt(2^-1022)).
_SMALLEST_NORM = 2.0**-500


def aligned_distance(pop: Any, i: int, j: int) -> float:
    """Euclidean distance between agent ``i`` and agent ``j`` aligned to ``i``.

    ``||p_i - align(p_j -> p_i)||`` (see :func:`align_params`): 0 for a copy of agent ``i`` with
    permuted (and, for ``tanh``/``identity``, sign-flipped) hidden units; never more than the raw
    distance. Not symmetric in general for networks with two or more hidden layers (the
    alignment is a local optimum there). Exact for huge or tiny rows too (aligned rescaled by a
    power of two); rows holding a NaN or inf are refused.
    """
    P = check_population(pop).params.shape[0]
    i = check_agent("i", i, P)
    j = check_agent("j", j, P)
    ref, row = pop.params[i].astype(np.float64), pop.params[j]
    scale = pair_scale(ref, row)
    if scale != 1.0:  # huge or tiny rows: aligned exactly rescaled (a rare path)
        ref, row = ref * scale, row.astype(np.float64) * scale
    aligned = align_rows(pop.layout, hidden_activations(pop), ref, row)[0]
    distance = _norm(ref - aligned)
    if scale == 1.0:
        return distance
    distance /= scale
    if not math.isfinite(distance):
        raise too_large("params", pop.params[[i, j]], "rows whose distance fits in float64")
    return distance


def _norm(v: np.ndarray) -> float:
    """Euclidean norm of a float64 vector, exact even where its squares overflow or underflow
    (then from ``v / max |v|``, a rare path)."""
    norm = float(np.linalg.norm(v))
    if _SMALLEST_NORM < norm < math.inf:
        return norm
    m = max_abs(v)
    return m * float(np.linalg.norm(v / m)) if 0.0 < m < math.inf else norm


MAX_REFINE = 100  # re-alignments to the mean: each costs one alignment of every agent


def aligned_consensus_distance(
    pop: Any,
    ref: int | None = None,
    max_agents: int | None = None,
    rng: Any = None,
    refine: int = 1,
    agents: Any = None,
    summary: WeightSummary | None = None,
) -> float:
    """Consensus distance of the agents after aligning their hidden units to a common template.

    Every agent (or a sample) is aligned by weight matching to the reference agent ``ref``, then
    ``refine`` times to the mean of the aligned rows (as in generalized Procrustes analysis),
    and :func:`consensus_distance` of the aligned rows is returned. Hidden-unit permutations
    (and sign flips of ``tanh``/``identity`` units) no longer count as distance: a population of
    permuted copies of one network scores 0.

    Parameters
    ----------
    pop : Population
        Read only (``params``, ``layout``, ``activation``).
    ref : int, optional
        Reference agent. Default: the agent closest to the raw mean row, a choice that does not
        depend on the order of the agents.
    max_agents : int, optional
        If given and smaller than P, align only a uniform sample of ``max_agents`` agents
        (without replacement, drawn from ``rng``) and return the sample estimate
        ``(P - 1)/P * m/(m - 1) * D_sample`` (unbiased for the population value of a fixed
        alignment). Cost: one linear assignment per agent, hidden layer and pass.
    rng : numpy.random.Generator or int, optional
        Used only for sampling; default seed 0.
    refine : int
        Re-alignments to the mean, in [0, MAX_REFINE = 100].
    agents : int array, optional
        Align exactly these distinct agents (a sample drawn by the caller, e.g. the measured
        panel of a model) instead of drawing ``max_agents``; the same sample correction
        applies when they are fewer than P.
    summary : WeightSummary, optional
        :func:`weight_summary` of ``pop.params`` when the caller has it already (it gives the
        default reference, and the finiteness check, without another pass over the rows).

    Returns
    -------
    float >= 0. Rows whose norms are outside ``simulator.metrics.align.ALIGN_NORMS`` are aligned
    rescaled by a power of two (the same alignment); a result beyond float64 is refused by a
    ParameterError naming ``params``.
    """
    check_population(pop)
    if summary is not None and not isinstance(summary, WeightSummary):
        raise fail("summary", f"a {type(summary).__name__}", "weight_summary(pop.params) or None")
    X = params_unchecked(pop.params)
    P = X.shape[0]
    if ref is not None:
        ref = check_agent("ref", ref, P)
    refine = check_int("refine", refine, 0, MAX_REFINE)
    # a bad rng is refused even when no sample is drawn; the default generator is made only
    # for a sample (making one costs ~20 us, a tenth of a small alignment)
    gen = None if rng is None else get_rng(rng)
    who = None
    if agents is not None:
        who = check_agents("agents", agents, P).ravel()  # an int: one agent
        if who.size > 1 and not np.all(who[1:] > who[:-1]):  # sorted and distinct: as it is
            who = np.unique(who)
    elif max_agents is not None and check_int("max_agents", max_agents, low=2) < P:
        gen = get_rng(None) if gen is None else gen
        who = np.sort(gen.choice(P, size=max_agents, replace=False))
    return aligned_distance_of(pop, X, who, summary, ref, refine)


def aligned_distance_of(
    pop: Any,
    X: np.ndarray,
    who: np.ndarray | None,
    summary: WeightSummary | None = None,
    ref: int | None = None,
    refine: int = 1,
) -> float:
    """:func:`aligned_consensus_distance` of arguments already checked (none is checked here):
    ``X`` is ``pop.params`` (float32/64, C-contiguous), ``who`` sorted distinct agent indices
    (or None: all agents), ``ref`` an agent index or None, ``refine`` in [0, MAX_REFINE]. A
    model's collect calls it with its fixed panel, which was checked when it was drawn.
    Returns the same float."""
    P, D = X.shape
    # a bound of the rows' norms: from the summary (no pass over the rows), else from max |X|
    if summary is None:
        top = max_abs(X)
        if not math.isfinite(top):
            raise fail("params", "an array with NaN or inf", "finite everywhere")
        scale = alignment_scale(top, math.sqrt(D))
    else:
        scale = alignment_scale(summary.top + summary.spread / math.sqrt(D), math.sqrt(D))
    if scale != 1.0:  # huge or tiny rows: aligned exactly rescaled (a rare path)
        X = X.astype(np.float64) * scale
    if ref is None:
        summary = weight_summary(X) if summary is None or scale != 1.0 else summary
        ref = summary.nearest
    factor = 1.0
    if who is not None and who.size < P:
        m = who.size
        factor = (P - 1) / P * m / (m - 1) if m > 1 else 0.0
    acts = hidden_activations(pop)
    if pop.layout.n_layers == 2:  # one hidden layer: every step in one kernel
        who = np.arange(P, dtype=np.int64) if who is None else np.asarray(who, dtype=np.int64)
        out = np.empty((who.size, X.shape[1]))
        ref64 = X[ref].astype(np.float64)
        odd = acts[0] in ODD_ACTIVATIONS
        value = KA.align_consensus(X, who, ref64, one_hidden(pop.layout), odd, refine, out)
    else:
        rows = X if who is None else X[who]
        aligned = align_rows(pop.layout, acts, X[ref], rows)
        for _ in range(refine):
            aligned = align_rows(pop.layout, acts, aligned.mean(axis=0), aligned)
        value = weight_summary(aligned).consensus_distance
    if scale == 1.0:
        return factor * value
    value = factor * (value / scale / scale)
    if not math.isfinite(value):
        raise too_large("params", pop.params)
    return value
