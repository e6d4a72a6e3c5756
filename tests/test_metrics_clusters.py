"""Function-space clusters, NMI, modularity, polarization and consensus time."""

from __future__ import annotations

from typing import NamedTuple

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from simulator import ParameterError, metrics
from simulator.kernels import measure_partition as KP


def _oracle_components(F: np.ndarray, eps: float) -> np.ndarray:
    """Slow truth: all pairwise RMS distances, then connected components."""
    P, n = F.shape[:2]
    G = F.reshape(P, -1).astype(np.float64)
    return connected_components(cdist(G, G) / np.sqrt(n) < eps, directed=False)[1]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True if a and b group the agents identically (up to renaming the groups)."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return len(pairs.T) == len(np.unique(a)) == len(np.unique(b))


def _groups(rng, P: int, n_groups: int, spread: float, n: int = 24, d: int = 2, dtype=np.float32):
    centers = rng.standard_normal((n_groups, n, d))
    member = rng.integers(0, n_groups, P)
    F = centers[member] + spread * rng.standard_normal((P, n, d))
    return F.astype(dtype), member


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(1, 6),
    st.floats(0.01, 1.0),
    st.sampled_from([0.03, 0.1, 0.3, 0.8, 1.5, 3.0]),
    st.sampled_from([np.float32, np.float64]),
)
def test_function_clusters_equal_the_components_of_the_eps_graph(seed, n_groups, spread, eps, dt):
    rng = np.random.default_rng(seed)
    F, _ = _groups(rng, int(rng.integers(1, 160)), n_groups, spread, dtype=dt)
    labels, n_clusters, share = metrics.function_clusters(F, eps)
    truth = _oracle_components(F, eps)
    assert _same_partition(labels, truth)
    assert n_clusters == truth.max() + 1
    assert share == pytest.approx(np.bincount(truth).max() / F.shape[0])
    first = np.unique(labels, return_index=True)[1]
    assert np.all(np.diff(first) > 0)  # numbered by first appearance


def test_identical_agents_form_one_cluster():
    F = np.repeat(np.random.default_rng(0).standard_normal((1, 30, 1)), 200, axis=0)
    labels, n_clusters, share = metrics.function_clusters(F, 1e-6)
    assert n_clusters == 1 and share == 1.0 and not labels.any()


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.05, 2.0),
    st.sampled_from([np.float32, np.float64]),
)
def test_clusters_near_consensus_equal_the_components_of_the_eps_graph(seed, reach, dt):
    """Agents spread over a ball of RMS radius reach * eps / 2 around a common function: below
    reach 1 every agent is linked to the one nearest the centre before the sweep starts (which
    then stops at once), above it the sweep decides; either way the eps graph's components."""
    rng = np.random.default_rng(seed)
    P, n, eps = int(rng.integers(2, 200)), 16, 0.1
    F = rng.standard_normal((1, n, 1)) + rng.standard_normal((P, n, 1))
    centre = F.mean(axis=0)
    rms = np.sqrt(((F - centre) ** 2).mean(axis=(1, 2)))
    F = (centre + (F - centre) / rms.max() * reach * eps / 2).astype(dt)
    labels, n_clusters, share = metrics.function_clusters(F, eps)
    truth = _oracle_components(F, eps)
    assert _same_partition(labels, truth)
    assert n_clusters == truth.max() + 1
    assert share == pytest.approx(np.bincount(truth).max() / P)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("reach", [2.0, 3.0, 4.0])
def test_agents_apart_within_a_few_eps_equal_the_components_of_the_eps_graph(reach, dt):
    """Many agents in 256 output dimensions, all within a few eps of each other but mostly
    unlinked (evolution's populations): few pairs are settled by the bounds, so the sweep
    decides most of them from their distances, four pairs of one agent at a time."""
    rng = np.random.default_rng(int(reach * 10))
    P, n, eps = 300, 256, 0.1
    noise = rng.standard_normal((P, n, 1))
    noise *= rng.uniform(0.3, 1.0, (P, 1, 1)) / np.sqrt((noise**2).mean(axis=(1, 2)))[:, None, None]
    F = (rng.standard_normal((1, n, 1)) + noise * reach * eps / 2).astype(dt)
    labels, n_clusters, _ = metrics.function_clusters(F, eps)
    truth = _oracle_components(F, eps)
    assert 1 < truth.max() + 1 < P  # some agents linked, not all of them
    assert _same_partition(labels, truth)
    assert n_clusters == truth.max() + 1


def test_agents_at_eps_plus_or_minus_a_hair_are_split_or_joined_exactly():
    """Three agents on a line, the middle one nearest the centre, at RMS distance eps (1 + 1e-12)
    or eps (1 - 1e-6) from it: the tests against the central agent and the sweep split them
    (three clusters) or join them (one) as the exact distances say."""
    eps, n = 0.5, 8
    for gap, expect in ((1 + 1e-12, 3), (1 - 1e-6, 1)):
        F = np.zeros((3, n, 1))
        F[0], F[2] = -eps * gap, eps * gap  # RMS distance to the middle agent: eps * gap
        _, n_clusters, _ = metrics.function_clusters(F, eps)
        assert n_clusters == expect == _oracle_components(F, eps).max() + 1


def test_two_separated_groups_give_two_clusters_matching_their_communities():
    rng = np.random.default_rng(1)
    communities = np.repeat([0, 1], [70, 30])
    rng.shuffle(communities)
    centers = np.stack([np.zeros((16, 1)), np.full((16, 1), 5.0)])
    F = centers[communities] + 0.05 * rng.standard_normal((100, 16, 1))
    labels, n_clusters, share = metrics.function_clusters(F, 0.5)
    assert n_clusters == 2 and share == pytest.approx(0.7)
    assert metrics.cluster_nmi(labels, communities) == pytest.approx(1.0)
    assert metrics.cluster_nmi(labels, rng.integers(0, 2, 100)) < 0.1
    perm = rng.permutation(100)
    labels_p, n_p, share_p = metrics.function_clusters(F[perm], 0.5)
    assert (n_p, share_p) == (n_clusters, share)
    assert _same_partition(labels_p, labels[perm])


def test_sampled_function_clusters_mark_the_agents_left_out():
    rng = np.random.default_rng(2)
    F, member = _groups(rng, 3000, 3, 0.01)
    labels, n_clusters, share = metrics.function_clusters(F, 0.3, max_agents=500, rng=rng)
    assert (labels >= 0).sum() == 500 and n_clusters == 3
    assert share == pytest.approx(np.bincount(member).max() / 3000, abs=0.06)
    assert _same_partition(labels[labels >= 0], member[labels >= 0])


def test_function_clusters_handle_ten_thousand_agents():
    rng = np.random.default_rng(3)
    F, member = _groups(rng, 10_000, 5, 0.02, n=64, d=1)
    labels, n_clusters, _ = metrics.function_clusters(F, 0.2)
    assert n_clusters == 5 and _same_partition(labels, member)


def _nmi_oracle(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook NMI, arithmetic-mean normalization, by counting (Vinh et al. 2010)."""
    from collections import Counter
    from math import log

    N = len(a)
    ca, cb, cab = Counter(a.tolist()), Counter(b.tolist()), Counter(zip(a.tolist(), b.tolist()))
    mi = sum(c / N * log(N * c / (ca[x] * cb[y])) for (x, y), c in cab.items())
    ha = -sum(c / N * log(c / N) for c in ca.values())
    hb = -sum(c / N * log(c / N) for c in cb.values())
    return mi / ((ha + hb) / 2)


def test_cluster_nmi_matches_the_textbook_formula():
    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = rng.integers(0, 4, 60), rng.integers(0, 3, 60)
        b[:30] = a[:30]
        assert metrics.cluster_nmi(a, b) == pytest.approx(_nmi_oracle(a, b), rel=1e-12)
    assert metrics.cluster_nmi(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7])) == 1.0
    assert metrics.cluster_nmi(np.zeros(5, int), np.zeros(5, int)) == 1.0
    with_unsampled = np.array([-1, 0, 0, 1, 1])
    assert metrics.cluster_nmi(with_unsampled, np.array([9, 2, 2, 3, 3])) == pytest.approx(1.0)


@pytest.mark.parametrize("case", ["table", "negative communities", "many of both"])
def test_cluster_nmi_is_the_textbook_formula_on_each_way_of_counting(case):
    """The contingency table is counted densely in one pass when it is small, after renumbering
    when labels are negative or large, and cell by cell when both partitions are many."""
    rng = np.random.default_rng(41)
    P = 3000
    a = rng.integers(0, 40, P)
    b = (a + rng.integers(0, 3, P)) % 25
    if case == "negative communities":
        b -= 10
    if case == "many of both":  # 2,000 x 2,000 cells: far more than the agents
        a, b = rng.integers(0, 2000, P), rng.integers(10**6, 10**6 + 2000, P)
    a[rng.random(P) < 0.1] = -1  # agents outside a sample do not count
    keep = a >= 0
    truth = _nmi_oracle(a[keep], b[keep])
    assert metrics.cluster_nmi(a, b) == pytest.approx(truth, rel=1e-12)


class _CSR(NamedTuple):  # the shape of simulator.graph.CSRGraph
    indptr: np.ndarray
    indices: np.ndarray
    degree: np.ndarray


@pytest.mark.parametrize("parallel", [False, True])
def test_modularity_matches_networkx_for_graph_csr_and_tuple(parallel, monkeypatch):
    from simulator.kernels import measure_weights

    if parallel:  # the parallel kernel on every size, blocks of 16 agents
        monkeypatch.setattr(measure_weights, "SERIAL_BELOW", 0)
        monkeypatch.setattr(KP, "ROWS", 16)
    G = nx.stochastic_block_model(
        [15, 20, 10], [[0.5, 0.05, 0.02], [0.05, 0.4, 0.05], [0.02, 0.05, 0.6]], seed=5
    )
    labels = np.array([G.nodes[v]["block"] for v in range(45)])
    labels[:3] = 2  # not a perfect partition
    truth = nx.community.modularity(G, [set(np.flatnonzero(labels == c)) for c in range(3)])
    A = nx.to_scipy_sparse_array(G, nodelist=range(45), format="csr")
    csr = _CSR(A.indptr.astype(np.int64), A.indices.astype(np.int64), np.diff(A.indptr))
    for graph in (G, A, csr, (A.indptr, A.indices)):
        assert metrics.modularity(graph, labels) == pytest.approx(truth, abs=1e-12)
    assert metrics.modularity(G, np.zeros(45, int)) == pytest.approx(0.0, abs=1e-12)
    assert metrics.modularity(nx.empty_graph(4), np.arange(4)) == 0.0


@pytest.mark.parametrize("n_labels", [3, 300, 70_000])  # uint8, uint16, uint32 label tables
def test_modularity_matches_the_definition_for_any_number_of_labels(n_labels):
    rng = np.random.default_rng(n_labels)
    P, nnz = 100_000, 400_000
    u, v = rng.integers(0, P, nnz), rng.integers(0, P, nnz)
    A = sparse.coo_array((np.ones(2 * nnz), (np.r_[u, v], np.r_[v, u])), shape=(P, P)).tocsr()
    labels = rng.integers(0, n_labels, P) * 7 + 5  # not 0..k-1: renumbered inside
    rows = np.repeat(np.arange(P), np.diff(A.indptr))
    two_m = A.data.sum()
    inside = A.data[labels[rows] == labels[A.indices]].sum()
    degree_mass = np.bincount(labels, weights=np.asarray(A.sum(axis=1)).ravel())
    truth = inside / two_m - np.sum((degree_mass / two_m) ** 2)
    got = metrics.modularity((A.indptr, A.indices, A.data), labels)
    assert got == pytest.approx(truth, abs=1e-12)


def test_polarization_is_zero_for_consensus_and_d_over_four_for_two_equal_poles():
    rng = np.random.default_rng(6)
    same = np.repeat(rng.standard_normal((1, 12, 2)), 40, axis=0)
    assert metrics.polarization(same) == 0.0
    assert metrics.polarization(same, np.arange(40) % 3) == pytest.approx(0.0, abs=1e-12)
    a, b = rng.standard_normal((2, 12, 2))
    d = np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1)))
    two = np.stack([a] * 20 + [b] * 20)
    lab = np.repeat([0, 1], 20)
    assert metrics.polarization(two, lab) == pytest.approx(d / 4)
    assert metrics.polarization(two) == pytest.approx(d / 4)  # two poles found without labels
    lopsided = np.stack([a] * 30 + [b] * 10)
    assert metrics.polarization(lopsided, np.repeat([0, 1], [30, 10])) == pytest.approx(0.1875 * d)
    assert metrics.polarization(two[::-1], lab[::-1]) == pytest.approx(d / 4)


def test_the_sampled_pairs_are_the_draws_generator_choice_makes():
    """Polarization's strata draw groups by inverting a CDF of the generator's uniforms: the
    same items as ``Generator.choice(n, size, p=p)`` and the same generator state after, for
    weights with zeros, one item and many."""
    from simulator.kernels.measure_polarization import _draw, _inverse_cdf

    for seed in range(300):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 60))
        weight = rng.random(n) ** 3
        if seed % 5 == 0 and n > 1:
            weight[rng.integers(0, n, size=n // 2)] = 0.0
        pool = rng.permutation(1000)[:n]
        size = int(rng.integers(1, 300))
        ours, numpys = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
        got = _draw(ours, pool, _inverse_cdf(weight), size)
        want = pool[numpys.choice(n, size=size, p=weight / weight.sum())]
        np.testing.assert_array_equal(got, want)
        assert ours.random() == numpys.random()


def test_sampled_polarization_of_many_groups_is_close_to_the_exact_one():
    rng = np.random.default_rng(7)
    F = rng.standard_normal((3000, 8, 1))
    labels = rng.geometric(0.01, 3000)  # ~400 groups of uneven shares: ~80k pairs of groups
    exact = metrics.polarization(F, labels, max_pairs=10**6)
    sampled = metrics.polarization(F, labels, rng=rng)
    assert sampled == pytest.approx(exact, rel=0.03)
    perm = rng.permutation(3000)
    assert metrics.polarization(F[perm], labels[perm], max_pairs=10**6) == pytest.approx(exact)


def test_consensus_time_is_the_first_step_of_the_final_run_below_tol():
    assert metrics.consensus_time([3.0, 2.0, 0.1, 0.5, 0.1, 0.05], 0.2) == 4
    assert metrics.consensus_time([0.1, 0.1], 0.2) == 0
    assert metrics.consensus_time([0.1, 0.3], 0.2) is None
    assert metrics.consensus_time([0.1, np.nan, 0.1], 0.2) == 2
    assert metrics.consensus_time([], 0.2) is None


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ParameterError, match="eps"):
        metrics.function_clusters(np.ones((3, 4, 1)), 0.0)
    with pytest.raises(ParameterError, match="communities"):
        metrics.cluster_nmi(np.zeros(4, int), np.zeros(3, int))
    empty = np.array([], int)
    with pytest.raises(ParameterError, match=r"^labels=.*shape \(0,\).*length >= 1"):
        metrics.cluster_nmi(empty, empty)
    with pytest.raises(ParameterError, match=r"^labels_u=.*shape \(0,\).*length >= 1"):
        metrics.sampled_modularity(empty, empty)
    with pytest.raises(ParameterError, match="labels"):
        metrics.modularity(nx.path_graph(3), np.array([0, -1, 0]))
    with pytest.raises(ParameterError, match="graph"):
        metrics.modularity(nx.path_graph(3), np.array([0, 1, 0, 1]))
    with pytest.raises(ParameterError, match="out of range"):
        metrics.modularity((np.array([0, 1, 2]), np.array([1, 5])), np.array([0, 1]))
    with pytest.raises(ParameterError, match="out of order"):  # row 0 claims 100 entries
        metrics.modularity((np.array([0, 100, 2]), np.array([1, 0])), np.array([0, 1]))
    with pytest.raises(ParameterError, match="NaN or inf"):
        metrics.grid_clusters(np.array([[0.0, 1.0], [np.nan, 0.0]]), 0.5)
    with pytest.raises(ParameterError, match="Z"):
        metrics.grid_clusters(np.zeros((5, 4)), 0.5)
    with pytest.raises(ParameterError, match=r"eps.*at least 2.27e\+287"):  # 2**46 cells / 16
        metrics.grid_clusters(np.array([[0.0], [1e300]]), 1e-300)
    with pytest.raises(ParameterError, match="tol"):
        metrics.consensus_time([1.0], float("nan"))


def test_modularity_and_nmi_handle_isolated_last_agents_and_large_label_values():
    G = nx.Graph([(0, 1), (1, 2), (2, 0), (3, 4)])
    G.add_nodes_from([5, 6])  # isolated, last
    labels = np.array([7, 7, 7, 10**9, 10**9, 3, 3])
    assert metrics.modularity(G, labels) == pytest.approx(
        nx.community.modularity(G, [{0, 1, 2}, {3, 4}, {5, 6}])
    )
    assert metrics.cluster_nmi(labels, labels * 3 + 1) == pytest.approx(1.0)


@pytest.mark.parametrize("parallel", [False, True])
def test_exact_polarization_is_the_sum_over_every_ordered_pair_of_groups(parallel, monkeypatch):
    """ER = sum_{g != h} pi_g^2 pi_h d_gh from a brute-force double loop, for group counts on
    and off the kernel's tiles of four and its blocks of 32 groups, in its serial and parallel
    forms."""
    from simulator.kernels import measure_weights

    if parallel:
        monkeypatch.setattr(measure_weights, "SERIAL_BELOW", 0)
    rng = np.random.default_rng(12)
    for n_groups in (2, 3, 4, 5, 9, 31, 32, 33, 70, 133):
        F = rng.standard_normal((200, 6, 2))
        labels = rng.integers(0, n_groups, 200)
        labels[:n_groups] = np.arange(n_groups)  # every group present
        share = np.bincount(labels) / 200
        C = np.stack([F[labels == g].reshape(-1, 12).mean(axis=0) for g in range(n_groups)])
        truth = sum(
            share[g] ** 2 * share[h] * np.sqrt(np.mean(np.sum((C[g] - C[h]).reshape(6, 2) ** 2, 1)))
            for g in range(n_groups)
            for h in range(n_groups)
            if g != h
        )
        assert metrics.polarization(F, labels, max_pairs=None) == pytest.approx(truth, rel=1e-12)
