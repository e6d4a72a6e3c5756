"""Weight-space homogenization: how close the agents' parameter rows are.

Raw weight distances mistake permuted twins for strangers (hidden units can be permuted, and
sign-flipped for odd activations, without changing the function): the ``aligned_*`` measures
first align hidden units by weight matching (:mod:`simulator.metrics.align`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.config import check_int
from simulator.metrics._checks import (
    centered_sq_sum,
    check_agent,
    get_rng,
    params_array,
    row_chunks,
)
from simulator.metrics.align import align_rows, hidden_activations


def consensus_distance(params: Any) -> float:
    """Mean squared Euclidean distance of the agents' parameters to their mean.

    ``D = (1/P) sum_i ||p_i - p_bar||^2``, exact, O(P n_params), accumulated in float64.
    It equals half the mean squared distance over all ``P^2`` ordered pairs
    ``(1/(2 P^2)) sum_{i,j} ||p_i - p_j||^2`` (the centroid identity).

    Parameters
    ----------
    params : float array, shape (P, n_params). Not modified.

    Returns
    -------
    float >= 0 (0 when every agent is identical, and for P = 1).
    """
    X = params_array(params)
    return centered_sq_sum(X, X.mean(axis=0, dtype=np.float64)) / X.shape[0]


def mean_pairwise_cosine(params: Any, max_pairs: int = 20_000, rng: Any = None) -> float:
    """Mean cosine similarity of the parameter rows over all pairs of distinct agents.

    Exact for every P in O(P n_params), by the identity
    ``sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - sum_i ||u_i||^2`` with ``u_i = p_i / ||p_i||``:
    no pairs are sampled. ``max_pairs`` and ``rng`` are validated and accepted for a signature
    shared with the sampled measures, but not needed.

    Conventions: a zero row has cosine 0 with every other row; P = 1 returns 1.0.

    Parameters
    ----------
    params : float array, shape (P, n_params). Not modified.

    Returns
    -------
    float in [-1, 1] (1 when all agents are positive multiples of one row).
    """
    X = params_array(params)
    check_int("max_pairs", max_pairs, low=1)
    get_rng(rng)
    P = X.shape[0]
    if P == 1:
        return 1.0
    total = np.zeros(X.shape[1])
    n_nonzero = 0
    for block in row_chunks(X):
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        nz = norms > 0
        n_nonzero += int(nz.sum())
        total += (block[nz] / norms[nz, None]).sum(axis=0)
    value = (float(total @ total) - n_nonzero) / (P * (P - 1))
    return float(min(1.0, max(-1.0, value)))


def aligned_distance(pop: Any, i: int, j: int) -> float:
    """Euclidean distance between agent ``i`` and agent ``j`` aligned to ``i``.

    ``||p_i - align(p_j -> p_i)||`` (see :func:`align_params`): 0 for a copy of agent ``i`` with
    permuted (and, for ``tanh``/``identity``, sign-flipped) hidden units; never more than the raw
    distance. Not symmetric in general for networks with two or more hidden layers (the
    alignment is a local optimum there).
    """
    P = pop.params.shape[0]
    i = check_agent("i", i, P)
    j = check_agent("j", j, P)
    ref = pop.params[i].astype(np.float64)
    aligned = align_rows(pop.layout, hidden_activations(pop), ref, pop.params[j])[0]
    return float(np.linalg.norm(ref - aligned))


def _nearest_to_centroid(params: np.ndarray) -> int:
    """The agent whose row is closest to the raw mean row (lowest index on ties)."""
    mean = params.mean(axis=0, dtype=np.float64)
    dist = np.concatenate([np.einsum("ij,ij->i", b - mean, b - mean) for b in row_chunks(params)])
    return int(np.argmin(dist))


def aligned_consensus_distance(
    pop: Any,
    ref: int | None = None,
    max_agents: int | None = None,
    rng: Any = None,
    refine: int = 1,
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
        Re-alignments to the mean (>= 0).

    Returns
    -------
    float >= 0.
    """
    X = params_array(pop.params)
    P = X.shape[0]
    ref = _nearest_to_centroid(X) if ref is None else check_agent("ref", ref, P)
    refine = check_int("refine", refine, low=0)
    gen = get_rng(rng)
    factor = 1.0
    if max_agents is not None and check_int("max_agents", max_agents, low=2) < P:
        rows = X[np.sort(gen.choice(P, size=max_agents, replace=False))]
        factor = (P - 1) / P * max_agents / (max_agents - 1)
    else:
        rows = X
    acts = hidden_activations(pop)
    aligned = align_rows(pop.layout, acts, X[ref], rows)
    for _ in range(refine):
        aligned = align_rows(pop.layout, acts, aligned.mean(axis=0), aligned)
    return factor * consensus_distance(aligned)
