"""Social graphs: construction, files, CSR arrays and mixing matrices, checked against networkx
and analytic results."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import REGISTRY
from simulator import ParameterError
from simulator.graph import (
    GRAPH_DEFAULTS,
    GRAPH_NAMES,
    MIXING_KINDS,
    build_graph,
    communities,
    dense,
    mixing_matrix,
    slem,
    stationary_distribution,
    to_csr,
)

RANDOM_NAMES = ("erdos_renyi", "barabasi_albert", "watts_strogatz", "sbm", "random_regular")


@st.composite
def graphs(draw, max_n: int = 25) -> nx.Graph:
    """Random simple graphs, nodes 0..n-1 inserted in a random order, possibly disconnected."""
    n = draw(st.integers(1, max_n))
    order = draw(st.permutations(range(n)))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
    G = nx.Graph()
    G.add_nodes_from(order)
    G.add_edges_from((u, v) for u, v in pairs if u != v)
    return G


def quiet_build(*args, **kwargs) -> nx.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_graph(*args, **kwargs)


def edge_set(G: nx.Graph) -> set[frozenset]:
    return {frozenset(e) for e in G.edges()}


# ---------------------------------------------------------------------------- CSR and mixing
@settings(max_examples=60, deadline=None)
@given(graphs())
def test_csr_equals_networkx_adjacency(G):
    csr = to_csr(G)
    n = G.number_of_nodes()
    A = nx.to_numpy_array(G, nodelist=list(G))
    rows = np.repeat(np.arange(n), csr.degree)
    B = np.zeros((n, n))
    B[rows, csr.indices] = 1
    np.testing.assert_array_equal(B, A)
    np.testing.assert_array_equal(csr.degree, A.sum(1))
    np.testing.assert_array_equal(np.diff(csr.indptr), csr.degree)
    for i in range(n):
        row = csr.indices[csr.indptr[i] : csr.indptr[i + 1]]
        assert np.all(np.diff(row) > 0) and i not in row
    assert all(a.dtype == np.int64 for a in csr)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_metropolis_weights_are_symmetric_and_doubly_stochastic(G):
    W = dense(mixing_matrix(to_csr(G), "metropolis"))
    np.testing.assert_allclose(W, W.T, atol=1e-15)
    np.testing.assert_allclose(W.sum(0), 1.0, atol=1e-12)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-12)
    assert W.min() >= 0
    pos = {u: i for i, u in enumerate(G)}  # rows follow list(G)
    for u, v in G.edges():
        assert W[pos[u], pos[v]] == pytest.approx(1 / (1 + max(G.degree[u], G.degree[v])))


@settings(max_examples=40, deadline=None)
@given(graphs())
def test_uniform_weights_are_equal_over_self_and_neighbours(G):
    mixing = mixing_matrix(to_csr(G), "uniform")
    W = dense(mixing)
    A = nx.to_numpy_array(G, nodelist=list(G))
    expected = (A + np.eye(len(A))) / (A.sum(1, keepdims=True) + 1)
    np.testing.assert_allclose(W, expected, atol=1e-15)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(graphs(), st.sampled_from(MIXING_KINDS))
def test_mixing_rows_list_the_agent_itself_first(G, kind):
    mixing = mixing_matrix(to_csr(G), kind)
    n = G.number_of_nodes()
    assert len(mixing.indices) == len(mixing.weights) == 2 * G.number_of_edges() + n
    np.testing.assert_array_equal(mixing.indices[mixing.indptr[:-1]], np.arange(n))
    assert mixing.weights.dtype == np.float64 and mixing.indices.dtype == np.int64


def test_lazy_mixing_is_half_identity_plus_metropolis():
    csr = to_csr(quiet_build("barabasi_albert", 30, seed=3))
    lazy = dense(mixing_matrix(csr, "lazy"))
    metropolis = dense(mixing_matrix(csr, "metropolis"))
    np.testing.assert_allclose(lazy, (np.eye(30) + metropolis) / 2, atol=1e-15)
    assert np.linalg.eigvalsh(lazy).min() >= -1e-12


@pytest.mark.parametrize("graph", ["barabasi_albert", "star", "watts_strogatz"])
def test_uniform_mixing_converges_to_the_degree_weighted_mean(graph):
    G = quiet_build(graph, 24, seed=1)
    csr = to_csr(G)
    W = dense(mixing_matrix(csr, "uniform"))
    assert not np.allclose(W.sum(0), 1.0)  # not doubly stochastic
    pi = stationary_distribution(W)
    d = csr.degree.astype(float)
    np.testing.assert_allclose(pi, (d + 1) / np.sum(d + 1), atol=1e-10)
    x = np.random.default_rng(0).standard_normal(24)
    np.testing.assert_allclose(np.linalg.matrix_power(W, 2000) @ x, pi @ x, atol=1e-8)


def test_metropolis_stationary_distribution_is_uniform():
    W = dense(mixing_matrix(to_csr(quiet_build("barabasi_albert", 20, seed=0))))
    np.testing.assert_allclose(stationary_distribution(W), np.full(20, 1 / 20), atol=1e-12)


@pytest.mark.parametrize("n", [4, 5, 8, 13, 30])
def test_slem_of_metropolis_ring_matches_the_analytic_value(n):
    W = dense(mixing_matrix(to_csr(build_graph("ring", n))))
    assert slem(W) == pytest.approx(1 / 3 + 2 / 3 * np.cos(2 * np.pi / n), abs=1e-12)


def test_slem_is_one_for_a_disconnected_graph():
    G = nx.Graph([(0, 1), (2, 3)])
    with pytest.warns(UserWarning):
        W = dense(mixing_matrix(to_csr(build_graph(G))))
    assert slem(W) == pytest.approx(1.0)


def test_to_csr_handles_a_100k_node_random_regular_graph():
    G = nx.random_regular_graph(4, 100_000, seed=0)
    csr = to_csr(G)
    assert csr.indptr[-1] == 400_000 and np.all(csr.degree == 4)
    mixing = mixing_matrix(csr)
    np.testing.assert_allclose(np.bincount(mixing.indices, mixing.weights), 1.0)


# ---------------------------------------------------------------------------- named graphs
@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_every_named_graph_builds_with_defaults(name):
    G = quiet_build(name, 16, seed=0)
    assert list(G.nodes) == list(range(16))
    assert not G.is_directed() and nx.number_of_selfloops(G) == 0
    assert [G.nodes[i]["label"] for i in G] == list(range(16))
    assert G.graph["n_components"] == nx.number_connected_components(G)
    assert G.graph["n_isolated"] == nx.number_of_isolates(G)
    assert set(GRAPH_DEFAULTS) == set(GRAPH_NAMES)


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_same_seed_same_graph_other_seed_other_graph(name):
    a, b = quiet_build(name, 16, seed=7), quiet_build(name, 16, seed=7)
    assert edge_set(a) == edge_set(b)
    assert any(edge_set(quiet_build(name, 16, seed=s)) != edge_set(a) for s in (8, 9, 10))


def test_named_graphs_have_their_defining_structure():
    assert quiet_build("complete", 16).number_of_edges() == 120
    ring = build_graph("ring", 16)
    assert all(d == 2 for _, d in ring.degree) and nx.is_connected(ring)
    torus = build_graph("torus", 16)
    assert all(d == 4 for _, d in torus.degree) and torus.number_of_edges() == 32
    assert nx.is_isomorphic(torus, nx.grid_2d_graph(4, 4, periodic=True))
    assert nx.is_isomorphic(build_graph("torus", 15, {"rows": 3}), nx.grid_2d_graph(3, 5, True))
    star = build_graph("star", 16)
    assert star.degree[0] == 15 and all(star.degree[i] == 1 for i in range(1, 16))
    ws = build_graph("watts_strogatz", 16, {"k": 4, "p": 0.0})
    assert all(d == 4 for _, d in ws.degree)
    rr = build_graph("random_regular", 16, {"d": 3})
    assert all(d == 3 for _, d in rr.degree)
    assert build_graph("ring", 10, {"k": 4}).number_of_edges() == 20


def test_sbm_sets_communities_that_are_denser_inside():
    G = quiet_build("sbm", 40, {"blocks": [10, 30], "p_in": 0.9, "p_out": 0.0}, seed=2)
    c = communities(G)
    np.testing.assert_array_equal(c, np.repeat([0, 1], [10, 30]))
    assert all(c[u] == c[v] for u, v in G.edges())
    c4 = communities(quiet_build("sbm", 16))
    np.testing.assert_array_equal(np.bincount(c4), [4, 4, 4, 4])


def test_communities_is_none_without_the_attribute_and_codes_user_labels():
    assert communities(build_graph("ring", 5)) is None
    G = nx.path_graph(4)
    nx.set_node_attributes(G, {0: "b", 1: "a", 2: "b", 3: "c"}, "community")
    np.testing.assert_array_equal(communities(build_graph(G)), [1, 0, 1, 2])
    del G.nodes[3]["community"]
    with pytest.raises(ParameterError, match="missing on 1 of 4"):
        communities(G)


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        ("erdos_renyi", {"p": 1.5}, r"graph_params\['p'\]=1.5 .*\[0.0, 1.0\]"),
        ("watts_strogatz", {"k": 3}, r"graph_params\['k'\]=3 .*even"),
        ("watts_strogatz", {"k": 16}, r"graph_params\['k'\]=16 .*\[2, 15\] .*\{'k': 14\} at most"),
        ("barabasi_albert", {"m": 16}, r"graph_params\['m'\]=16 .*\[1, 15\]"),
        ("sbm", {"blocks": [3, 3]}, r"graph_params\['blocks'\]=\[3, 3\] .*summing to 16"),
        ("sbm", {"p_out": -0.1}, r"graph_params\['p_out'\]=-0.1"),
        ("random_regular", {"d": 16}, r"graph_params\['d'\]=16 .*\[0, 15\]"),
        ("ring", {"p": 0.1}, r"unknown key\(s\) 'p' .*allowed keys: 'k'"),
        ("complete", {"k": 2}, r"unknown key\(s\) 'k' .*allowed keys: none"),
    ],
)
def test_bad_graph_params_are_named_with_what_is_allowed(name, params, pattern):
    with pytest.raises(ParameterError, match=pattern):
        build_graph(name, 16, params)


def test_bad_names_sizes_and_seeds_are_refused_clearly():
    with pytest.raises(ParameterError, match=r"graph='lattice' .*'erdos_renyi'"):
        build_graph("lattice", 10)
    with pytest.raises(ParameterError, match="n_agents=15 .*perfect square"):
        build_graph("torus", 15)
    with pytest.raises(ParameterError, match="n_agents=None"):
        build_graph("ring")
    with pytest.raises(ParameterError, match="seed=-1"):
        build_graph("ring", 5, seed=-1)
    with pytest.raises(ParameterError, match=r"graph_params\['d'\]=3 .*n_agents \* d is even"):
        build_graph("random_regular", 15, {"d": 3})
    with pytest.raises(ParameterError, match="n_agents=100000 .*expected edges"):
        build_graph("complete", 100_000)
    for name in ("ring", "watts_strogatz"):  # no k fits 2 agents: the size is named, not k
        with pytest.raises(ParameterError, match=r"^n_agents=2 .*at least 3 .*'complete'"):
            build_graph(name, 2)
    with pytest.raises(ParameterError, match=r"^graph_params\['k'\]=4 .*\{'k': 2\} at most"):
        REGISTRY["gossip_learning"](rng=0, n_agents=3)  # the scenario's default k=4
    assert build_graph("complete", 2).number_of_edges() == 1


# ---------------------------------------------------------------------------- user graphs
def test_user_graph_is_relabelled_sorted_and_left_unmodified():
    G = nx.Graph([("c", "a"), ("a", "b"), ("b", "b")])
    with pytest.warns(UserWarning, match="removed 1 self-loop"):
        H = build_graph(G, n_agents=3)
    assert [H.nodes[i]["label"] for i in H] == ["a", "b", "c"]
    assert edge_set(H) == {frozenset((0, 2)), frozenset((0, 1))}
    assert G.has_edge("b", "b")  # the caller's graph is untouched
    named = nx.Graph([(10, 20)])
    named.nodes[10]["label"] = "Alice"
    assert [build_graph(named).nodes[i]["label"] for i in (0, 1)] == ["Alice", 20]


def test_directed_graph_is_refused_with_the_fix():
    with pytest.raises(ParameterError, match=r"directed.*G\.to_undirected\(\)"):
        build_graph(nx.DiGraph([(0, 1)]))


def test_multigraph_is_collapsed_with_a_warning():
    G = nx.MultiGraph([(0, 1), (0, 1), (1, 2)])
    with pytest.warns(UserWarning, match="parallel edges"):
        H = build_graph(G)
    assert type(H) is nx.Graph and H.number_of_edges() == 2


def test_disconnected_graph_warns_once_and_records_components():
    G = nx.Graph([(0, 1), (2, 3)])
    G.add_node(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        H = build_graph(G)
    assert len([w for w in caught if "disconnected" in str(w.message)]) == 1
    assert H.graph["n_components"] == 3 and H.graph["n_isolated"] == 1


def test_empty_graph_and_wrong_size_are_refused():
    with pytest.raises(ParameterError, match="no nodes"):
        build_graph(nx.Graph())
    with pytest.raises(ParameterError, match="n_agents=5 .*3, the node count"):
        build_graph(nx.path_graph(3), n_agents=5)


def test_arrays_given_as_the_graph_are_refused_naming_graph():
    """An adjacency matrix (NumPy or SciPy) or an array of names is not a graph: a
    ParameterError naming ``graph`` (the matrices with the networkx call that converts them),
    not an error from comparing an array with the names."""
    A = nx.to_numpy_array(nx.cycle_graph(10))
    for value in (A, nx.to_scipy_sparse_array(nx.cycle_graph(10))):
        with pytest.raises(ParameterError, match=r"^graph=.*networkx\.from_numpy_array\(A\)"):
            REGISTRY["gossip_learning"](n_agents=10, rng=0, graph=value)
    with pytest.raises(
        ParameterError, match=r"^graph=array\(\['ring', 'ring'\].*edge-list file"
    ) as info:
        REGISTRY["gossip_learning"](n_agents=10, rng=0, graph=np.array(["ring", "ring"]))
    assert "adjacency" not in str(info.value)
    G = REGISTRY["gossip_learning"](n_agents=10, rng=0, graph=nx.from_numpy_array(A)).graph
    assert nx.is_isomorphic(G, nx.cycle_graph(10))  # the conversion the message names works


def test_a_graph_or_file_of_one_node_is_refused_naming_graph(tmp_path):
    with pytest.raises(ParameterError, match="given graph has 1 node: graph must have at least 2"):
        build_graph(nx.path_graph(1))
    path = tmp_path / "one.txt"
    path.write_text("7\n")
    with pytest.raises(ParameterError, match=r"one\.txt' has 1 node: graph must have at least 2"):
        build_graph(path)
    with pytest.raises(ParameterError, match=r"^n_agents=1 "):
        build_graph("complete", 1)
    with pytest.raises(ParameterError, match="has 1 node: graph must have at least 2"):
        REGISTRY["gossip_learning"](rng=0, graph=nx.path_graph(1))


# ---------------------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", [".edgelist", ".txt", ".el"])
def test_edge_list_round_trips(tmp_path, suffix):
    G = quiet_build("barabasi_albert", 30, seed=4)
    path = tmp_path / f"g{suffix}"
    nx.write_edgelist(G, path)  # "u v {}" lines
    H = build_graph(path, n_agents=30)
    assert edge_set(H) == edge_set(G)
    assert build_graph(str(path)).number_of_nodes() == 30


def test_graphml_round_trips_with_attributes(tmp_path):
    G = quiet_build("sbm", 24, seed=1)
    path = tmp_path / "g.graphml"
    nx.write_graphml(G, path)
    H = quiet_build(path)
    assert list(H) == list(range(24)) and edge_set(H) == edge_set(G)
    np.testing.assert_array_equal(communities(H), communities(G))


def test_edge_list_parallel_edges_and_self_loops_are_cleaned_with_warnings(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("1 2\n2 1\n02 3\n3 3\n")
    with pytest.warns(UserWarning) as caught:
        H = build_graph(path, n_agents=3)
    messages = " ".join(str(w.message) for w in caught)
    assert "1 parallel edge(s)" in messages and "removed 1 self-loop" in messages
    assert edge_set(H) == {frozenset((0, 1)), frozenset((1, 2))}
    assert [H.nodes[i]["label"] for i in H] == [1, 2, 3]


def test_csv_edge_list_with_header_comments_and_weights(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("# a comment\nsource,target,weight\nx,y,2.5\ny,z,1  # trailing\nw\n")
    with pytest.warns(UserWarning, match="disconnected"):
        H = build_graph(path)
    assert [H.nodes[i]["label"] for i in H] == ["w", "x", "y", "z"]
    assert H.edges[1, 2]["weight"] == 2.5 and H.graph["n_isolated"] == 1


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("missing.edgelist", None, "does not exist"),
        ("bad.graphml", "<graphml><node", "could not be read as GraphML"),
        ("bad.tsv", "0\t1\tnot-a-weight\n", "line 1: third column 'not-a-weight'"),
        ("empty.txt", "# nothing\n", "no nodes"),
        ("g.gml", "graph [ ]", "unknown suffix '.gml'"),
        ("nan.edgelist", '0 1 {"weight": nan}\n', "line 1: edge attributes .* not a literal dict"),
    ],
)
def test_bad_files_are_named_with_the_problem(tmp_path, name, content, pattern):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ParameterError, match=pattern) as info:
        build_graph(path)
    assert name in str(info.value)


def test_directed_graphml_file_is_refused(tmp_path):
    path = tmp_path / "d.graphml"
    nx.write_graphml(nx.DiGraph([(0, 1)]), path)
    with pytest.raises(ParameterError, match=r"d\.graphml.* is directed"):
        build_graph(path)
