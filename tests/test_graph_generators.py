"""CSR generators for large graphs: networkx's distributions (compared on small n over many
seeds), exact deterministic graphs, thread invariance, and the switch above NX_MAX_NODES."""

from __future__ import annotations

import warnings

import networkx as nx
import numba
import numpy as np
import pytest
from scipy import stats

from simulator import ParameterError
from simulator.graph import (
    NX_MAX_NODES,
    build_graph,
    build_social_graph,
    communities,
    resolve_graph_params,
    to_csr,
)
from simulator.graph_csr import generate_csr

SEEDS = range(200)


def csr_graph(name: str, n: int, params: dict | None = None, seed: int = 0) -> nx.Graph:
    """The CSR generator's graph as networkx (for statistics)."""
    indptr, indices, _ = generate_csr(name, n, resolve_graph_params(name, n, params), seed)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    G = nx.empty_graph(n)
    G.add_edges_from(zip(rows.tolist(), indices.tolist()))
    return G


def check_simple_sorted(name, n, params=None, seed=0):
    indptr, indices, _ = generate_csr(name, n, resolve_graph_params(name, n, params), seed)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    assert np.all(rows != indices)  # no loops
    for i in range(n):
        row = indices[indptr[i] : indptr[i + 1]]
        assert np.all(np.diff(row) > 0)  # sorted, no repeats
    A = np.zeros((n, n), dtype=int)
    A[rows, indices] = 1
    np.testing.assert_array_equal(A, A.T)  # undirected


def same_distribution(ours, theirs) -> float:
    """p-value of a two-sample test that two samples of a statistic share a distribution."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    if len(np.unique(np.concatenate([ours, theirs]))) < 15:  # a few values: chi-square
        values = np.unique(np.concatenate([ours, theirs]))
        table = np.array([[np.sum(s == v) for v in values] for s in (ours, theirs)])
        table = table[:, table.sum(0) > 0]
        return stats.chi2_contingency(table)[1] if table.shape[1] > 1 else 1.0
    return stats.ks_2samp(ours, theirs).pvalue


# ---------------------------------------------------------------------------- deterministic
@pytest.mark.parametrize(
    ("name", "n", "params"),
    [("complete", 12, None), ("ring", 15, {"k": 4}), ("torus", 20, {"rows": 4}), ("star", 9, None)],
)
def test_deterministic_graphs_equal_networkx(name, n, params):
    indptr, indices, attrs = generate_csr(name, n, resolve_graph_params(name, n, params), 0)
    ref = to_csr(build_graph(name, n, params))
    np.testing.assert_array_equal(indptr, ref.indptr)
    np.testing.assert_array_equal(indices, ref.indices)
    if name == "torus":
        G = build_graph(name, n, params)
        assert attrs["row"].tolist() == [G.nodes[i]["row"] for i in range(n)]
        assert attrs["col"].tolist() == [G.nodes[i]["col"] for i in range(n)]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("erdos_renyi", {"p": 0.1}),
        ("sbm", {"blocks": [10, 20, 30], "p_in": 0.4, "p_out": 0.05}),
        ("watts_strogatz", {"k": 6, "p": 0.3}),
        ("barabasi_albert", {"m": 3}),
        ("random_regular", {"d": 5}),
    ],
)
def test_random_graphs_are_simple_sorted_and_seeded(name, params):
    check_simple_sorted(name, 60, params, seed=3)
    a, b = csr_graph(name, 60, params, 3), csr_graph(name, 60, params, 3)
    assert set(a.edges) == set(b.edges)
    assert set(csr_graph(name, 60, params, 4).edges) != set(a.edges)


# ---------------------------------------------------------------------------- distributions
def test_gnp_edges_are_independent_with_probability_p():
    n, p = 40, 0.15
    A = sum(nx.to_numpy_array(csr_graph("erdos_renyi", n, {"p": p}, s)) for s in SEEDS)
    freq = A[np.triu_indices(n, 1)] / len(SEEDS)  # each pair's edge frequency over seeds
    # every pair linked with probability p: its count over the seeds is Binomial(seeds, p)
    counts = freq * len(SEEDS)
    var = len(SEEDS) * p * (1 - p)
    assert abs(freq.mean() - p) < 4 * np.sqrt(p * (1 - p) / (len(SEEDS) * freq.size))
    assert abs(counts.var() - var) < 4 * var * np.sqrt(2 / counts.size)
    degrees = [d for s in SEEDS[:50] for _, d in csr_graph("erdos_renyi", n, {"p": p}, s).degree]
    theirs = [d for s in SEEDS[:50] for _, d in nx.fast_gnp_random_graph(n, p, seed=s).degree]
    assert same_distribution(degrees, theirs) > 1e-3


def test_sbm_block_densities_are_p_in_and_p_out():
    sizes, p_in, p_out = [15, 25], 0.3, 0.04
    params = {"blocks": sizes, "p_in": p_in, "p_out": p_out}
    A = sum(nx.to_numpy_array(csr_graph("sbm", 40, params, s)) for s in SEEDS) / len(SEEDS)
    blk = np.repeat([0, 1], sizes)
    iu = np.triu_indices(40, 1)
    same = blk[iu[0]] == blk[iu[1]]
    for mask, p in ((same, p_in), (~same, p_out)):
        se = np.sqrt(p * (1 - p) / (len(SEEDS) * mask.sum()))
        assert abs(A[iu][mask].mean() - p) < 4 * se
    _, _, attrs = generate_csr("sbm", 40, resolve_graph_params("sbm", 40, params), 0)
    np.testing.assert_array_equal(attrs["community"], blk)


def test_watts_strogatz_rewiring_and_clustering_follow_networkx():
    n, k, p = 60, 4, 0.2
    lattice = {frozenset((u, (u + j) % n)) for u in range(n) for j in (1, 2)}

    def stats_of(G):
        rewired = sum(frozenset(e) not in lattice for e in G.edges)
        return rewired, nx.average_clustering(G), np.var([d for _, d in G.degree])

    ours = np.array([stats_of(csr_graph("watts_strogatz", n, {"k": k, "p": p}, s)) for s in SEEDS])
    theirs = np.array([stats_of(nx.watts_strogatz_graph(n, k, p, seed=s)) for s in SEEDS])
    for col in range(3):
        assert same_distribution(ours[:, col], theirs[:, col]) > 1e-3
    # a rewired edge leaves the lattice with probability ~p (a rewire can land on a lattice pair)
    assert abs(ours[:, 0].mean() / (n * k / 2) - p) < 0.02


def test_barabasi_albert_degrees_follow_networkx():
    n, m = 150, 2
    ours = [csr_graph("barabasi_albert", n, {"m": m}, s) for s in SEEDS[:100]]
    theirs = [nx.barabasi_albert_graph(n, m, seed=s) for s in SEEDS[:100]]
    assert all(G.number_of_edges() == m + (n - m - 1) * m for G in ours)
    deg = lambda gs: [d for G in gs for _, d in G.degree]  # noqa: E731
    assert same_distribution(deg(ours), deg(theirs)) > 1e-3
    assert (
        same_distribution(
            [max(dict(G.degree).values()) for G in ours],
            [max(dict(G.degree).values()) for G in theirs],
        )
        > 1e-3
    )
    # preferential attachment: older nodes have larger degrees
    mean_deg = np.mean([[G.degree[i] for i in range(n)] for G in ours], axis=0)
    assert mean_deg[:10].mean() > 3 * mean_deg[-50:].mean()


def test_random_regular_graphs_are_regular_and_follow_networkx():
    n, d = 10, 3
    ours = [csr_graph("random_regular", n, {"d": d}, s) for s in SEEDS]
    theirs = [nx.random_regular_graph(d, n, seed=s) for s in SEEDS]
    assert all(all(deg == d for _, deg in G.degree) for G in ours)
    tri = lambda gs: [sum(nx.triangles(G).values()) // 3 for G in gs]  # noqa: E731
    assert same_distribution(tri(ours), tri(theirs)) > 1e-3
    A = sum(nx.to_numpy_array(G) for G in ours) / len(ours)  # every pair equally likely
    off = A[np.triu_indices(n, 1)]
    assert abs(off.mean() - d / (n - 1)) < 1e-12
    assert stats.chisquare(off * len(ours)).pvalue > 1e-3


def test_generators_give_the_same_graph_on_one_and_two_threads():
    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out.append(
                [
                    generate_csr(name, 3000, resolve_graph_params(name, 3000, params), 5)[:2]
                    for name, params in (
                        ("erdos_renyi", {"k": 8}),
                        ("sbm", {"k_in": 6, "k_out": 1}),
                    )
                ]
            )
    finally:
        numba.set_num_threads(before)
    for (a1, b1), (a2, b2) in zip(*out):
        assert a1.tobytes() == a2.tobytes() and b1.tobytes() == b2.tobytes()


# ---------------------------------------------------------------------------- large graphs
def test_large_named_graphs_skip_networkx_until_asked():
    n = NX_MAX_NODES + 2000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sparse sbm graphs may leave isolated nodes
        social = build_social_graph("sbm", n, {"blocks": 3, "k_in": 8, "k_out": 1}, seed=1)
    assert not social.has_networkx
    assert social.csr.degree.mean() == pytest.approx(9, rel=0.05)
    np.testing.assert_array_equal(np.bincount(social.communities), [4000] * 3)
    G = social.networkx
    assert G.number_of_nodes() == n and G.number_of_edges() * 2 == social.csr.indices.size
    np.testing.assert_array_equal(communities(G), social.communities)
    assert G.graph["graph"] == "sbm" and "n_components" in G.graph
    ws = build_graph("watts_strogatz", n, {"k": 4, "p": 0.1}, seed=2)
    assert isinstance(ws, nx.Graph) and all(ws.nodes[i]["label"] == i for i in (0, n - 1))


def test_expected_degrees_set_the_edge_probabilities():
    p = resolve_graph_params("sbm", 100, {"blocks": 4, "k_in": 12, "k_out": 0.75})
    assert (p["p_in"], p["p_out"]) == (0.5, 0.01)
    assert resolve_graph_params("erdos_renyi", 101, {"k": 5})["p"] == 0.05
    with pytest.raises(ParameterError, match="both 'p_in' and 'k_in'"):
        resolve_graph_params("sbm", 100, {"p_in": 0.1, "k_in": 3})
    assert resolve_graph_params("erdos_renyi", 100, {"k": 200})["p"] == 1.0  # all in reach
    small = resolve_graph_params("sbm", 12, {"blocks": 4, "k_in": 12, "k_out": 0.75})
    assert (small["p_in"], small["p_out"]) == (1.0, 0.75 / 9)
    with pytest.raises(ParameterError, match=r"graph_params\['k_out'\]=-1"):
        resolve_graph_params("sbm", 100, {"k_out": -1})
    with pytest.raises(ParameterError, match="n_agents=20000 .*expected edges.*'k'"):
        build_social_graph("erdos_renyi", 20_000, {"p": 0.9})


@pytest.mark.parametrize("n", [16, NX_MAX_NODES + 6])  # networkx's generators, then the CSR ones
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("erdos_renyi", {"p": 1e-300}),
        ("erdos_renyi", {"k": 1e-300}),
        ("erdos_renyi", {"p": 5e-324}),  # the smallest subnormal
        ("erdos_renyi", {"p": 1e-17}),  # 1 - p == 1 in float64
        ("sbm", {"p_in": 1e-300, "p_out": 0.0}),
        ("sbm", {"p_in": 0.0, "p_out": 1e-300}),
        ("sbm", {"k_in": 1e-300, "k_out": 5e-324}),
    ],
)
def test_vanishing_edge_probabilities_give_the_edgeless_graph(name, params, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # disconnected
        social = build_social_graph(name, n, params, seed=1)
    assert social.n == n and social.csr.indices.size == 0
    assert social.attrs["n_isolated"] == n


def test_edge_probabilities_near_one_and_zero_keep_their_graphs():
    n = NX_MAX_NODES + 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = build_social_graph("sbm", 40, {"blocks": 2, "p_in": 1.0, "p_out": 0.0}, seed=1)
        big = build_social_graph("sbm", n, {"blocks": 2, "p_in": 1e-6, "p_out": 1e-300}, seed=1)
    assert np.all(full.csr.degree == 19)  # two complete blocks, nothing between them
    rows = np.repeat(np.arange(n), big.csr.degree)
    assert np.all(big.communities[rows] == big.communities[big.csr.indices])  # no edge between


@pytest.mark.parametrize("n", [10**12, 10**30, 10**400], ids=["1e12", "1e30", "1e400"])
@pytest.mark.parametrize("name", ["ring", "torus", "sbm", "erdos_renyi", "complete"])
def test_node_counts_beyond_memory_are_refused_without_overflow(name, n):
    with pytest.raises(ParameterError, match=r"^n_agents=1000.*bytes per node"):
        build_social_graph(name, n)
