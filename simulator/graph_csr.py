"""Named graphs generated straight into CSR arrays, for populations too large for networkx.

networkx builds a million-node random regular graph in about 75 s and holds it in gigabytes of
Python objects; the generators of :mod:`simulator.kernels.graphs` write the same distributions
into ``indptr``/``indices`` arrays in about a second. :func:`generate_csr` takes the validated
parameters of :func:`simulator.graph.resolve_graph_params` and returns the arrays plus the node
attributes (``community`` for ``sbm``, ``row``/``col`` for ``torus``) that the networkx form
would carry; :func:`csr_to_networkx` builds that form when someone asks for it.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from simulator.kernels import graphs as K
from simulator.kernels.random import key_from_seed

__all__ = ["csr_to_networkx", "generate_csr"]

_KEY_TAG = 7  # spawn key of the generators' Philox key (apart from every other stream)


def _ring(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each node linked to its ``k / 2`` nearest neighbours on each side."""
    u = np.repeat(np.arange(n, dtype=np.int64), k // 2)
    j = np.tile(np.arange(1, k // 2 + 1, dtype=np.int64), n)
    return u, (u + j) % n


def _torus(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Periodic grid; node ``r * cols + c`` (networkx's sorted (row, col) labels)."""
    idx = np.arange(rows * cols, dtype=np.int64)
    r, c = np.divmod(idx, cols)
    right = r * cols + (c + 1) % cols
    down = ((r + 1) % rows) * cols + c
    return np.concatenate([idx, idx]), np.concatenate([right, down])


def _blocks(sizes: list[int], p_in: float, p_out: float) -> tuple[np.ndarray, ...]:
    starts = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    block_of = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    probs = np.full((len(sizes), len(sizes)), float(p_out))
    np.fill_diagonal(probs, float(p_in))
    return starts, block_of, probs


def generate_csr(
    name: str, n: int, p: dict, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(indptr, indices, node_attrs)`` of graph ``name`` on ``n`` nodes with resolved params.

    Deterministic graphs (complete, ring, torus, star) are the same as networkx's; random ones
    have networkx's distribution, drawn from Philox streams keyed by ``seed``.
    """
    k0, k1 = (np.uint64(k) for k in key_from_seed(seed, _KEY_TAG))
    attrs: dict[str, np.ndarray] = {}
    if name in ("erdos_renyi", "sbm"):
        sizes = [n] if name == "erdos_renyi" else p["blocks"]
        pin = p["p"] if name == "erdos_renyi" else p["p_in"]
        pout = p["p"] if name == "erdos_renyi" else p["p_out"]
        starts, block_of, probs = _blocks(sizes, pin, pout)
        up_ptr, up_idx = K.gnp_rows(n, starts, block_of, probs, k0, k1)
        indptr, indices = K.upper_to_csr(n, up_ptr, up_idx)
        if name == "sbm":
            attrs["community"] = block_of
        return indptr, indices, attrs
    if name == "complete":
        u, v = np.triu_indices(n, 1)
        us, vs = u.astype(np.int64), v.astype(np.int64)
    elif name == "ring":
        us, vs = _ring(n, p["k"])
    elif name == "torus":
        us, vs = _torus(p["rows"], p["cols"])
        attrs["row"], attrs["col"] = np.divmod(np.arange(n, dtype=np.int64), p["cols"])
    elif name == "star":
        us, vs = np.zeros(n - 1, dtype=np.int64), np.arange(1, n, dtype=np.int64)
    elif name == "watts_strogatz":
        us, vs = K.watts_strogatz(n, p["k"], float(p["p"]), k0, k1)
    elif name == "barabasi_albert":
        us, vs = K.barabasi_albert(n, p["m"], k0, k1)
    elif name == "random_regular":
        us, vs = K.random_regular(n, p["d"], k0, k1)
    else:
        raise ValueError(f"no CSR generator for graph {name!r}")
    indptr, indices = K.edges_to_csr(n, us, vs)
    return indptr, indices, attrs


def csr_to_networkx(
    indptr: np.ndarray, indices: np.ndarray, node_attrs: dict, graph_attrs: dict
) -> nx.Graph:
    """The networkx form of a CSR graph: nodes ``0..n-1`` with attribute ``"label"`` (= the
    node) and ``node_attrs`` (arrays (n,)), edges from the upper triangle, ``G.graph`` updated
    with ``graph_attrs``. Seconds per million edges."""
    n = len(indptr) - 1
    G = nx.Graph()
    G.graph.update(graph_attrs)
    names = list(node_attrs)
    columns = [np.asarray(node_attrs[k]).tolist() for k in names]
    G.add_nodes_from(
        (i, {"label": i, **dict(zip(names, vals))}) for i, *vals in zip(range(n), *columns)
    )
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    upper = rows < indices
    G.add_edges_from(zip(rows[upper].tolist(), indices[upper].tolist()))
    return G
