"""Social graphs: build them by name or load them from a file; networkx <-> CSR; mixing matrices.

Users see networkx graphs; kernels see CSR arrays. :func:`build_graph` always returns an
undirected simple graph whose nodes are ``0..n-1`` (node ``i`` is agent ``i``), with the
original node label kept in the node attribute ``"label"``. :func:`to_csr` turns it into the
arrays a kernel reads and :func:`mixing_matrix` into the weights of one averaging step
``x_i <- sum_j W_ij x_j`` (see the consensus section of the science notes: Metropolis weights
are doubly stochastic and average to the plain mean; uniform weights are only row-stochastic
and average to the (degree + 1)-weighted mean).
"""

from __future__ import annotations

import os
import warnings
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import numpy as np

from simulator.config import (
    ParameterError,
    check_choice,
    check_int,
    check_number,
    fail,
    machine_memory,
)
from simulator.graph_csr import csr_to_networkx, generate_csr
from simulator.graph_io import EDGE_LIST_SUFFIXES, read_graph_file

__all__ = [
    "EDGE_LIST_SUFFIXES",
    "GRAPH_DEFAULTS",
    "GRAPH_NAMES",
    "MIXING_KINDS",
    "NX_MAX_NODES",
    "CSRGraph",
    "MixingCSR",
    "SocialGraph",
    "build_graph",
    "build_social_graph",
    "communities",
    "dense",
    "mixing_matrix",
    "resolve_graph_params",
    "slem",
    "stationary_distribution",
    "to_csr",
]

GRAPH_NAMES: tuple[str, ...] = (
    "complete",
    "ring",
    "torus",
    "erdos_renyi",
    "barabasi_albert",
    "watts_strogatz",
    "sbm",
    "star",
    "random_regular",
)
GRAPH_DEFAULTS: dict[str, dict] = {
    "complete": {},
    "ring": {"k": 2},  # each node linked to its k nearest neighbours (k/2 on each side)
    "torus": {"rows": None, "cols": None},  # None: a square side sqrt(n)
    "erdos_renyi": {"p": 0.1, "k": None},  # k: expected degree, instead of p
    "barabasi_albert": {"m": 2},
    "watts_strogatz": {"k": 4, "p": 0.1},
    # blocks: a count or a list of sizes; k_in / k_out: expected neighbours inside / outside
    # one's block, instead of p_in / p_out (a density that stays sparse as n grows)
    "sbm": {"blocks": 4, "p_in": 0.3, "p_out": 0.01, "k_in": None, "k_out": None},
    "star": {},  # node 0 is the hub
    "random_regular": {"d": 4},
}
MIXING_KINDS = ("metropolis", "uniform", "lazy", "adjacency")
MAX_EDGES = 5_000_000  # a generated graph above this would take gigabytes as a networkx Graph
# Named graphs with more nodes than this are generated straight into CSR arrays (same
# distributions as networkx's generators, other draws); the networkx form is built on demand.
NX_MAX_NODES = 10_000
MAX_CSR_EDGES = 50_000_000  # 800 MB of int64 indices
NODE_BYTES = 64  # the fewest bytes a generated graph takes per node (its int64 node arrays)


class CSRGraph(NamedTuple):
    """Adjacency of an undirected simple graph in compressed sparse rows.

    Neighbours of node ``i`` are ``indices[indptr[i]:indptr[i + 1]]``, sorted, no self-loops.
    ``indptr`` int64 (n + 1,), ``indices`` int64 (nnz,) with nnz = 2 x edges, ``degree`` int64 (n,).
    """

    indptr: np.ndarray
    indices: np.ndarray
    degree: np.ndarray


class MixingCSR(NamedTuple):
    """A mixing matrix W in CSR form; row ``i`` lists agent ``i`` itself FIRST, then its neighbours.

    ``indptr`` int64 (n + 1,), ``indices`` int64 (nnz + n,), ``weights`` float64 (nnz + n,).
    Every row sums to 1 (row-stochastic).
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray


# ---------------------------------------------------------------------------- building
def resolve_graph_params(name: str, n_agents: int, graph_params: dict | None = None) -> dict:
    """The full, validated parameters of generator ``name`` for ``n_agents`` nodes.

    Defaults from :data:`GRAPH_DEFAULTS` are filled in, ``torus`` rows/cols are resolved and
    every value is checked (``n_agents`` too: at least 2, and few enough that the graph's node
    arrays fit in memory); raises :class:`ParameterError` naming the parameter otherwise.
    """
    check_choice("graph", name, GRAPH_NAMES)
    n = check_int("n_agents", n_agents, low=2)
    if n * NODE_BYTES > machine_memory():
        raise fail(
            "n_agents",
            n,
            f"small enough that a graph's arrays (at least {NODE_BYTES} bytes per node) fit in "
            f"this machine's {machine_memory() / 2**30:,.1f} GiB",
        )
    given = dict(graph_params or {})
    unknown = sorted(set(given) - set(GRAPH_DEFAULTS[name]), key=str)
    if unknown:
        allowed = ", ".join(map(repr, GRAPH_DEFAULTS[name])) or "none"
        raise ParameterError(
            f"graph_params has unknown key(s) {', '.join(map(repr, unknown))} for graph={name!r}; "
            f"allowed keys: {allowed}."
        )
    pairs = {"erdos_renyi": (("p", "k"),), "sbm": (("p_in", "k_in"), ("p_out", "k_out"))}
    for prob, degree in pairs.get(name, ()):
        if given.get(degree) is not None and given.get(prob) is not None:
            raise ParameterError(
                f"graph_params gives both {prob!r} and {degree!r} for graph={name!r}: give "
                f"the edge probability or the expected degree, not both."
            )
    p = {**GRAPH_DEFAULTS[name], **given}
    return _VALIDATORS.get(name, lambda p, n: p)(p, n)


def _key(k: str) -> str:
    return f"graph_params[{k!r}]"


def _check_ring(p: dict, n: int) -> dict:
    if n < 3:  # no even k in [2, n - 1]: the size is what cannot work
        raise fail(
            "n_agents", n, "at least 3 for a ring or small world (2 agents: graph='complete')"
        )
    k = check_int(_key("k"), p["k"], low=2)
    if k % 2 or k >= n:
        largest = (n - 1) // 2 * 2
        raise fail(
            _key("k"),
            k,
            f"an even integer in [2, n_agents - 1] = [2, {n - 1}] (for n_agents={n}: "
            f"graph_params={{'k': {largest}}} at most)",
        )
    return {"k": k}


def _check_torus(p: dict, n: int) -> dict:
    rows, cols = p["rows"], p["cols"]
    if rows is None and cols is None:
        side = round(n**0.5)
        if side * side != n:
            raise fail(
                "n_agents", n, "a perfect square for graph='torus' (or give graph_params rows/cols)"
            )
        rows = cols = side
    elif rows is None or cols is None:
        given = "rows" if cols is None else "cols"
        g = check_int(_key(given), p[given], low=1)
        if n % g:
            raise fail(_key(given), g, f"a divisor of n_agents={n}")
        rows, cols = (g, n // g) if given == "rows" else (n // g, g)
    rows, cols = check_int(_key("rows"), rows, low=3), check_int(_key("cols"), cols, low=3)
    if rows * cols != n:
        raise fail(_key("rows") + " * " + _key("cols"), rows * cols, f"n_agents={n}")
    return {"rows": rows, "cols": cols}


def _check_prob(p: dict, *keys: str) -> dict:
    return {**p, **{k: check_number(_key(k), p[k], 0.0, 1.0) for k in keys}}


def _check_ba(p: dict, n: int) -> dict:
    return {"m": check_int(_key("m"), p["m"], low=1, high=max(n - 1, 0))}


def _check_ws(p: dict, n: int) -> dict:
    p = _check_prob(p, "p")
    return {"k": _check_ring(p, n)["k"], "p": p["p"]}


def _from_degree(p: dict, prob: str, degree: str, others: float) -> dict:
    """``p[prob] = min(1, p[degree] / others)`` when the expected degree is given (then dropped).

    An expected degree above the number of nodes in reach (``others``) links to all of them, so
    a scenario's default degree works at any size (small populations get complete blocks).
    """
    k = p.pop(degree, None)
    if k is None:
        return p
    k = check_number(_key(degree), k, 0.0)
    return {**p, prob: min(1.0, k / others) if others > 0 else 0.0}


def _check_er(p: dict, n: int) -> dict:
    return _check_prob(_from_degree(p, "p", "k", n - 1), "p")


def _check_sbm(p: dict, n: int) -> dict:
    blocks = p["blocks"]
    if isinstance(blocks, int | np.integer) and not isinstance(blocks, bool):
        check_int(_key("blocks"), blocks, low=1, high=n)
        sizes = [len(a) for a in np.array_split(np.arange(n), int(blocks))]
    else:
        sizes = list(blocks) if isinstance(blocks, list | tuple | np.ndarray) else None
        ok = sizes is not None and all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in sizes
        )
        if not ok or sum(sizes) != n:
            raise fail(
                _key("blocks"),
                blocks,
                f"a number of equal blocks in [1, {n}] or a list of positive sizes summing to {n}",
            )
        sizes = [int(s) for s in sizes]
    mean = n / len(sizes)  # expected degrees are exact for equal blocks
    p = _from_degree(p, "p_in", "k_in", mean - 1)
    p = _from_degree(p, "p_out", "k_out", n - mean)
    p = _check_prob(p, "p_in", "p_out")
    return {"blocks": sizes, "p_in": p["p_in"], "p_out": p["p_out"]}


def _check_rr(p: dict, n: int) -> dict:
    d = check_int(_key("d"), p["d"], low=0, high=n - 1)
    if (n * d) % 2:
        raise fail(_key("d"), d, f"such that n_agents * d is even (n_agents={n})")
    return {"d": d}


_VALIDATORS = {
    "ring": _check_ring,
    "torus": _check_torus,
    "erdos_renyi": _check_er,
    "barabasi_albert": _check_ba,
    "watts_strogatz": _check_ws,
    "sbm": _check_sbm,
    "random_regular": _check_rr,
}


def _expected_edges(name: str, n: int, p: dict) -> float:
    if name == "complete":
        return n * (n - 1) / 2
    if name == "erdos_renyi":
        return p["p"] * n * (n - 1) / 2
    if name == "sbm":
        s = np.asarray(p["blocks"], dtype=float)
        within = float(np.sum(s * (s - 1) / 2))
        return p["p_in"] * within + p["p_out"] * (n * (n - 1) / 2 - within)
    per_node = {"ring": "k", "watts_strogatz": "k", "random_regular": "d"}
    if name in per_node:
        return n * p[per_node[name]] / 2
    return {"torus": 2.0 * n, "star": n - 1.0, "barabasi_albert": n * p.get("m", 0)}[name]


def _check_size(name: str, n: int, p: dict, limit: int) -> None:
    if _expected_edges(name, n, p) > limit:
        hint = {"erdos_renyi": " (or give the expected degree 'k')", "sbm": " (or k_in, k_out)"}
        raise fail(
            "n_agents",
            n,
            f"small enough that graph={name!r} has at most {limit:,} expected edges "
            "(denser graphs take gigabytes); lower n_agents or the edge probability"
            + hint.get(name, ""),
        )


def _drawable(p: float) -> float:
    """``p``, or 0.0 when ``1 - p`` rounds to 1 in float64.

    networkx skips through the pairs by ``log(U) / log(1 - p)``, which divides by zero then;
    such a ``p`` (at most 2**-54) gives under 3e-9 expected edges on the at most
    :data:`NX_MAX_NODES` nodes networkx generates, so the edgeless graph is what it draws.
    """
    return p if 1.0 - p < 1.0 else 0.0


def _generate(name: str, n: int, p: dict, seed: int) -> nx.Graph:
    _check_size(name, n, p, MAX_EDGES)
    if name == "complete":
        return nx.complete_graph(n)
    if name == "ring":
        return (
            nx.watts_strogatz_graph(n, p["k"], 0.0, seed=seed) if p["k"] > 2 else nx.cycle_graph(n)
        )
    if name == "torus":
        G = nx.grid_2d_graph(p["rows"], p["cols"], periodic=True)
        G = nx.convert_node_labels_to_integers(G, ordering="sorted", label_attribute="rc")
        for _, a in G.nodes(data=True):
            a["row"], a["col"] = (int(x) for x in a.pop("rc"))
        return G
    if name == "erdos_renyi":
        return nx.fast_gnp_random_graph(n, _drawable(p["p"]), seed=seed)
    if name == "barabasi_albert":
        return nx.barabasi_albert_graph(n, p["m"], seed=seed)
    if name == "watts_strogatz":
        return nx.watts_strogatz_graph(n, p["k"], p["p"], seed=seed)
    if name == "sbm":
        sizes = p["blocks"]
        probs = np.full((len(sizes), len(sizes)), _drawable(p["p_out"]))
        np.fill_diagonal(probs, _drawable(p["p_in"]))
        G = nx.stochastic_block_model(sizes, probs.tolist(), seed=seed)
        for _, a in G.nodes(data=True):
            a["community"] = int(a.pop("block"))
        G.graph.pop("partition", None)
        return G
    if name == "star":
        return nx.star_graph(n - 1)
    return nx.random_regular_graph(p["d"], n, seed=seed)


def build_graph(
    graph: str | nx.Graph | os.PathLike,
    n_agents: int | None = None,
    graph_params: dict | None = None,
    seed: int = 0,
) -> nx.Graph:
    """Build the social graph of a population.

    Parameters
    ----------
    graph : str, networkx.Graph or path
        A name from :data:`GRAPH_NAMES` (parameters in ``graph_params``, defaults in
        :data:`GRAPH_DEFAULTS`); an undirected ``nx.Graph`` (copied, never modified); or a path
        to a ``.graphml`` file or an edge list (``.edgelist .txt .csv .tsv .el``: two node
        labels per line separated by whitespace or commas, ``#`` comments, an optional header
        line, an optional third column or ``{...}`` dict of edge attributes; a line holding a
        single label adds an isolated node).
    n_agents : int >= 2, optional
        Number of nodes; required for a name, checked against a given graph or file (which
        needs at least 2 nodes too).
    graph_params : dict, optional
        Generator parameters (names only), e.g. ``{"p": 0.05}`` for ``erdos_renyi``.
    seed : int
        Seeds every random generator; the same seed gives the same graph. Named graphs with
        more than :data:`NX_MAX_NODES` nodes come from the CSR generators of
        :mod:`simulator.graph_csr` (networkx's distributions, other draws), converted.

    Returns
    -------
    networkx.Graph
        Undirected and simple, nodes ``0..n-1`` in order (sorted original labels), node
        attribute ``"label"`` (the original label, unless the node already had a ``"label"``
        attribute, which is kept) and, for ``sbm`` or when given, ``"community"``.
        ``G.graph`` holds ``"n_components"``, ``"n_isolated"`` and, for a name, ``"graph"``
        and ``"seed"``.

    Warns
    -----
    UserWarning
        When self-loops are removed, parallel edges merged, or the graph is disconnected.
    """
    seed = check_int("seed", seed, low=0)
    if n_agents is not None:
        n_agents = check_int("n_agents", n_agents, low=2)
    if _generated_as_csr(graph, n_agents):
        return build_social_graph(graph, n_agents, graph_params, seed).networkx
    if isinstance(graph, str) and graph in GRAPH_NAMES:
        if n_agents is None:
            raise fail("n_agents", None, f"an integer >= 2 when graph={graph!r} is a name")
        params = resolve_graph_params(graph, n_agents, graph_params)
        G = _generate(graph, n_agents, params, seed)
        G.graph.update(graph=graph, seed=seed)
        source, owned = f"graph={graph!r}", True
    else:
        if graph_params:
            raise fail("graph_params", graph_params, "empty when graph is a Graph or a file")
        if isinstance(graph, nx.Graph):
            G, source, owned = graph, "the given graph", False
        elif isinstance(graph, os.PathLike) or _looks_like_path(graph):
            G, source, owned = read_graph_file(Path(graph)), f"graph file {str(graph)!r}", True
        else:
            matrix = len(getattr(graph, "shape", ())) == 2  # an adjacency matrix (NumPy, SciPy)
            raise fail(
                "graph",
                graph,
                "one of " + ", ".join(map(repr, GRAPH_NAMES)) + ", a networkx Graph, "
                "or the path of a .graphml or edge-list file ("
                + " ".join(EDGE_LIST_SUFFIXES)
                + ")"
                + (
                    "; an adjacency matrix becomes a Graph with networkx.from_numpy_array(A) "
                    "or networkx.from_scipy_sparse_array(A)"
                    if matrix
                    else ""
                ),
            )
        if G.is_directed():
            raise ParameterError(
                f"{source} is directed: agents mix over undirected graphs. "
                "Pass G.to_undirected() (or an undirected file) instead."
            )
        if n_agents is not None and G.number_of_nodes() != n_agents:
            raise fail("n_agents", n_agents, f"{G.number_of_nodes()}, the node count of {source}")
    return _finish(G, source, owned)


def _looks_like_path(graph: Any) -> bool:
    if not isinstance(graph, str):
        return False
    suffixes = (".graphml", *EDGE_LIST_SUFFIXES)
    return graph.endswith(suffixes) or "/" in graph or os.sep in graph or os.path.exists(graph)


def _sorted_labels(nodes: list) -> list:
    try:
        return sorted(nodes)
    except TypeError:
        return sorted(nodes, key=lambda x: (type(x).__name__, repr(x)))


def _finish(G: nx.Graph, source: str, owned: bool) -> nx.Graph:
    """Relabel to 0..n-1, make simple, record components; modifies ``G`` only when ``owned``."""
    n = G.number_of_nodes()
    if n < 2:
        raise ParameterError(
            f"{source} has {'no nodes' if n == 0 else '1 node'}: graph must have at least 2 "
            "nodes (a population needs at least two agents)."
        )
    labels = list(G.nodes)
    if G.is_multigraph():
        warnings.warn(f"{source} has parallel edges; merged into single edges.", stacklevel=3)
    order = _sorted_labels(labels)
    if owned and not G.is_multigraph() and labels == order == list(range(len(labels))):
        H = G
        for u, a in H.nodes(data=True):
            a.setdefault("label", u)
    else:
        idx = {u: i for i, u in enumerate(order)}
        H = nx.Graph()
        H.graph.update(G.graph)
        H.add_nodes_from((i, {"label": u, **G.nodes[u]}) for i, u in enumerate(order))
        H.add_edges_from((idx[u], idx[v], a) for u, v, a in G.edges(data=True))
    loops = list(nx.selfloop_edges(H))
    if loops:
        H.remove_edges_from(loops)
        warnings.warn(
            f"{source}: removed {len(loops)} self-loop(s) (an agent always mixes with itself).",
            UserWarning,
            stacklevel=3,
        )
    H.graph.update(_components(to_csr(H), source))
    return H


def _components(csr: CSRGraph, source: str) -> dict[str, int]:
    """``n_components`` and ``n_isolated`` of a graph; warns when it is disconnected."""
    n_comp = _n_components(csr)
    n_isolated = int(np.count_nonzero(csr.degree == 0))
    if n_comp > 1:
        warnings.warn(
            f"{source} is disconnected: {n_comp} components ({n_isolated} isolated "
            "nodes); agents in different components never interact.",
            UserWarning,
            stacklevel=4,
        )
    return {"n_components": n_comp, "n_isolated": n_isolated}


def _generated_as_csr(graph: Any, n_agents: int | None) -> bool:
    return isinstance(graph, str) and graph in GRAPH_NAMES and (n_agents or 0) > NX_MAX_NODES


class SocialGraph:
    """A population's social graph: CSR arrays and communities, the networkx form on demand.

    Attributes
    ----------
    csr : CSRGraph
    communities : int64 (n,) or None
        From the node attribute ``"community"`` (``sbm`` blocks).
    attrs : dict
        Graph attributes (``n_components``, ``n_isolated``, ``graph`` and ``seed`` for names).
    """

    def __init__(
        self,
        csr: CSRGraph,
        communities: np.ndarray | None,
        graph: nx.Graph | None = None,
        node_attrs: dict[str, np.ndarray] | None = None,
        attrs: dict | None = None,
    ) -> None:
        self.csr, self.communities = csr, communities
        self._graph, self._node_attrs = graph, node_attrs or {}
        self.attrs = dict(graph.graph) if graph is not None else dict(attrs or {})

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.csr.degree)

    @property
    def has_networkx(self) -> bool:
        """Whether the networkx form exists yet."""
        return self._graph is not None

    @property
    def networkx(self) -> nx.Graph:
        """The graph as networkx (built on first use from the CSR arrays for generated graphs:
        about 5 s per million nodes; the same object afterwards)."""
        if self._graph is None:
            c = self.csr
            self._graph = csr_to_networkx(c.indptr, c.indices, self._node_attrs, self.attrs)
        return self._graph


def build_social_graph(
    graph: str | nx.Graph | os.PathLike,
    n_agents: int | None = None,
    graph_params: dict | None = None,
    seed: int = 0,
) -> SocialGraph:
    """Like :func:`build_graph`, without building a networkx graph when none is needed.

    A name with more than :data:`NX_MAX_NODES` nodes is generated straight into CSR arrays by
    :func:`simulator.graph_csr.generate_csr` (same distribution as networkx's generator, other
    draws; up to :data:`MAX_CSR_EDGES` expected edges); anything else goes through
    :func:`build_graph`. Raises and warns as :func:`build_graph` does.
    """
    seed = check_int("seed", seed, low=0)
    if not _generated_as_csr(graph, n_agents):
        G = build_graph(graph, n_agents, graph_params, seed)
        return SocialGraph(to_csr(G), communities(G), G)
    n = check_int("n_agents", n_agents, low=2)
    params = resolve_graph_params(graph, n, graph_params)
    _check_size(graph, n, params, MAX_CSR_EDGES)
    indptr, indices, node_attrs = generate_csr(graph, n, params, seed)
    csr = CSRGraph(indptr, indices, np.diff(indptr))
    attrs = {"graph": graph, "seed": seed, **_components(csr, f"graph={graph!r}")}
    return SocialGraph(csr, node_attrs.get("community"), None, node_attrs, attrs)


def _n_components(csr: CSRGraph) -> int:
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import connected_components

    n = len(csr.degree)
    A = csr_array((np.ones(len(csr.indices), dtype=np.int8), csr.indices, csr.indptr), shape=(n, n))
    return int(connected_components(A, directed=False)[0])


# ---------------------------------------------------------------------------- arrays
def communities(G: nx.Graph) -> np.ndarray | None:
    """Community of every node (in ``list(G)`` order) from the node attribute ``"community"``.

    Returns int64 (n,) codes ``0..k-1`` (values sorted: integer communities 0..k-1 keep their
    numbers), or None when no node has the attribute. Raises :class:`ParameterError` when only
    some nodes have it.
    """
    values = [v for _, v in G.nodes(data="community", default=None)]
    missing = sum(v is None for v in values)
    if missing == len(values):
        return None
    if missing:
        raise ParameterError(
            f"node attribute 'community' is missing on {missing} of {len(values)} nodes: "
            "give every node a community or none."
        )
    try:
        codes = np.unique(np.asarray(values), return_inverse=True)[1]
    except TypeError:
        codes = np.unique(np.asarray([repr(v) for v in values]), return_inverse=True)[1]
    return codes.astype(np.int64).reshape(-1)


def to_csr(G: nx.Graph) -> CSRGraph:
    """Adjacency of undirected ``G`` as CSR arrays; row ``i`` is the ``i``-th node of ``list(G)``.

    Self-loops are dropped and parallel edges merged. Vectorized: O(edges log edges) in NumPy
    after one pass over ``G.edges()``.
    """
    if not isinstance(G, nx.Graph):
        raise fail("G", type(G).__name__, "a networkx Graph")
    if G.is_directed():
        raise ParameterError("to_csr needs an undirected graph; pass G.to_undirected().")
    n = G.number_of_nodes()
    nbrs = [d for _, d in G.adjacency()]  # raw neighbour dicts, in list(G) order
    counts = np.fromiter(map(len, nbrs), dtype=np.int64, count=n)
    flat = chain.from_iterable(nbrs)
    if not all(isinstance(u, int) and 0 <= u < n and u == i for i, u in enumerate(G)):
        idx = {u: i for i, u in enumerate(G)}
        flat = map(idx.__getitem__, flat)
    cols = np.fromiter(flat, dtype=np.int64, count=int(counts.sum()))
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    keep = rows != cols
    key = rows[keep] * n + cols[keep]
    if len(key) > 1 and not np.all(key[1:] > key[:-1]):
        key.sort()
    rows, indices = np.divmod(key, max(n, 1))
    degree = np.bincount(rows, minlength=n).astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(degree, out=indptr[1:])
    return CSRGraph(indptr, indices.astype(np.int64), degree)


def mixing_matrix(csr: CSRGraph, kind: str = "metropolis") -> MixingCSR:
    """Weights of one averaging step ``x_i <- sum_j W_ij x_j`` over the graph.

    Parameters
    ----------
    csr : CSRGraph
    kind : str
        ``"metropolis"``: ``W_ij = 1 / (1 + max(d_i, d_j))`` on edges, ``W_ii = 1 - sum_j W_ij``
        (symmetric, doubly stochastic: consensus on the plain mean). ``"uniform"``: equal
        weights ``1 / (d_i + 1)`` over self and neighbours, ``W = (D + I)^-1 (A + I)``
        (row-stochastic only: consensus on the (degree + 1)-weighted mean). ``"lazy"``:
        ``(I + W_metropolis) / 2`` (eigenvalues in [0, 1]). ``"adjacency"``: the
        row-normalized adjacency ``W = D^-1 A``, no self-weight (DeGroot averaging of the
        neighbours only; an isolated node keeps itself, ``W_ii = 1``). Row-stochastic; on a
        bipartite graph (an even ring, say) it has the eigenvalue -1, so ``x <- W x``
        oscillates with period 2 and never reaches consensus.

    Returns
    -------
    MixingCSR
        Row ``i`` holds ``i`` first, then its neighbours in ``csr`` order.
    """
    check_choice("kind", kind, MIXING_KINDS)
    if not isinstance(csr, CSRGraph):
        raise fail("csr", type(csr).__name__, "a CSRGraph (from simulator.graph.to_csr)")
    deg, n = csr.degree, len(csr.degree)
    rows = np.repeat(np.arange(n, dtype=np.int64), deg)
    if kind == "uniform":
        w_nb = 1.0 / (deg[rows] + 1.0)
        w_self = 1.0 / (deg + 1.0)
    elif kind == "adjacency":
        w_nb = 1.0 / deg[rows]  # rows holds only nodes with neighbours: deg >= 1
        w_self = (deg == 0).astype(np.float64)
    else:
        w_nb = 1.0 / (1.0 + np.maximum(deg[rows], deg[csr.indices]))
        w_self = 1.0 - np.bincount(rows, weights=w_nb, minlength=n)
        if kind == "lazy":
            w_nb, w_self = w_nb / 2, (1.0 + w_self) / 2
    indptr = csr.indptr + np.arange(n + 1, dtype=np.int64)
    is_self = np.zeros(len(csr.indices) + n, dtype=bool)
    is_self[indptr[:-1]] = True
    indices = np.empty(len(is_self), dtype=np.int64)
    weights = np.empty(len(is_self), dtype=np.float64)
    indices[is_self], indices[~is_self] = np.arange(n), csr.indices
    weights[is_self], weights[~is_self] = w_self, w_nb
    return MixingCSR(indptr, indices, weights)


def dense(mixing: MixingCSR, max_n: int = 5000) -> np.ndarray:
    """The (n, n) float64 matrix of ``mixing``, for tests and analysis of small graphs."""
    n = len(mixing.indptr) - 1
    if n > max_n:
        raise fail("n", n, f"<= max_n={max_n} for a dense matrix (it takes n^2 x 8 bytes)")
    W = np.zeros((n, n))
    rows = np.repeat(np.arange(n), np.diff(mixing.indptr))
    W[rows, mixing.indices] = mixing.weights
    return W


def slem(W: np.ndarray) -> float:
    """Second-largest eigenvalue modulus of a dense stochastic matrix ``W`` (n, n).

    Governs consensus speed: disagreement shrinks like ``slem**(2 t)`` for symmetric doubly
    stochastic W. 1.0 for a disconnected graph; 0.0 for a single agent.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise fail("W.shape", W.shape, "square (n, n)")
    if W.shape[0] < 2:
        return 0.0
    ev = np.linalg.eigvalsh(W) if np.allclose(W, W.T) else np.linalg.eigvals(W)
    return float(np.sort(np.abs(ev))[-2])


def stationary_distribution(W: np.ndarray) -> np.ndarray:
    """Left Perron vector ``pi`` of row-stochastic ``W`` (``pi W = pi``), float64 (n,), sum 1.

    Consensus by ``x <- W x`` converges to ``pi . x(0)``. Unique when W is irreducible (a
    connected graph); for a disconnected graph one of the stationary vectors is returned.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise fail("W.shape", W.shape, "square (n, n)")
    vals, vecs = np.linalg.eig(W.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return v / v.sum()
