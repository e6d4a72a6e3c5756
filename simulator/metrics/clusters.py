"""Clusters of agents in function space, and how they sit on the social graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.config import check_int, check_number, fail
from simulator.kernels import measure as KM
from simulator.metrics._checks import get_rng, int_labels, preds_array, row_chunks


def flat_outputs(F: np.ndarray) -> np.ndarray:
    """(P, n, d) outputs as C-contiguous (P, n * d) rows (a view when possible)."""
    return np.ascontiguousarray(F.reshape(F.shape[0], -1))


def _times(G: np.ndarray, mu: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(G - mu) @ M in float64, chunk by chunk."""
    return np.concatenate([(b - mu) @ M for b in row_chunks(G)])


def _transposed_times(G: np.ndarray, mu: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Q.T @ (G - mu) in float64, chunk by chunk."""
    out = np.zeros((Q.shape[1], G.shape[1]))
    start = 0
    for b in row_chunks(G):
        out += Q[start : start + b.shape[0]].T @ (b - mu)
        start += b.shape[0]
    return out


def principal_coordinates(
    G: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (P, k) float64 of the centred rows of G on k orthonormal directions (D, k).

    The directions approximate the top principal axes (randomized SVD: a Gaussian sketch with
    4 extra vectors drawn from ``rng`` and one power iteration); they are orthonormal to
    float64 precision whatever the data, so distances between coordinates never exceed
    distances between rows (up to rounding).
    """
    D = G.shape[1]
    mu = G.mean(axis=0, dtype=np.float64)
    if D <= k:
        V = np.eye(D)
    else:
        Q = np.linalg.qr(_times(G, mu, rng.standard_normal((D, min(D, k + 4)))))[0]
        Q = np.linalg.qr(_times(G, mu, _transposed_times(G, mu, Q).T))[0]
        V = np.linalg.svd(_transposed_times(G, mu, Q), full_matrices=False)[2][:k].T
    return np.ascontiguousarray(_times(G, mu, V)), V


_BLOCK = 512  # points per block when assigning leaders
_TILE = 2048  # leaders per tile of approximate distances


class _Rows:
    """Rows sorted along the top principal axis, with the float32 copy used for GEMMs."""

    def __init__(self, G: np.ndarray, rng: np.random.Generator):
        Z = principal_coordinates(G, 1, rng)[0][:, 0]
        self.order = np.argsort(Z, kind="stable")
        self.z = Z[self.order]
        self.exact = np.ascontiguousarray(G[self.order])  # original dtype: exact checks
        mu = G.mean(axis=0, dtype=np.float64)
        self.c32 = np.concatenate([(b - mu).astype(np.float32) for b in row_chunks(self.exact)])
        self.nrm = np.einsum("ij,ij->i", self.c32, self.c32, dtype=np.float64)
        # dot-product error of a float32 GEMM is below D u |a| |b| (worst case); keep >= 1e-4
        self.tol = max(1e-4, 4.0 * G.shape[1] * 2.0**-24)
        self._buf = np.empty(_TILE * _TILE, dtype=np.float32)

    def dots(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Dot products A @ B.T (float32) in a reused buffer: valid until the next call."""
        out = self._buf[: A.shape[0] * B.shape[0]].reshape(A.shape[0], B.shape[0])
        return np.matmul(A, B.T, out=out)


def _leaders(R: _Rows, r: float, slack: float) -> tuple[np.ndarray, np.ndarray]:
    """Every row gets a leader closer than r (``leader_of``; a leader is its own), greedily in
    sorted order; returns leader_of and the leaders (ascending)."""
    P = R.z.size
    leader_of = np.full(P, -1, dtype=np.int64)
    leaders = np.empty(P, dtype=np.int64)
    n = 0
    for s in range(0, P, _BLOCK):
        pts = np.arange(s, min(s + _BLOCK, P))
        first = np.searchsorted(leaders[:n], np.searchsorted(R.z, R.z[s] - r - slack))
        for t in range(first, n, _TILE):
            todo = pts[leader_of[pts] < 0]
            if todo.size == 0:
                break
            cand = leaders[t : min(t + _TILE, n)]
            dots = R.dots(R.c32[todo], R.c32[cand])
            KM.assign_leaders(R.exact, dots, todo, cand, R.nrm, R.tol, r * r, leader_of)
        todo = pts[leader_of[pts] < 0]
        if todo.size:
            dots = R.dots(R.c32[todo], R.c32[todo])
            new = KM.new_leaders(R.exact, dots, todo, R.nrm, R.tol, r * r, leader_of)
            leaders[n : n + new.size] = new
            n += new.size
    return leader_of, leaders[:n]


def _components(G: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Labels 0..C-1 (by first appearance) of the components of ``||G_i - G_j|| < eps``."""
    P = G.shape[0]
    R = _Rows(G, rng)
    slack = 1e-9 * (float(np.abs(R.z).max()) + eps)
    leader_of, L = _leaders(R, eps, slack)  # each member is linked to its leader
    balls = KM.ball_members(leader_of)
    rad_pt, rad_ball = np.empty(P), np.empty(P)
    KM.leader_radii(R.exact, leader_of, rad_pt, rad_ball)
    parent = np.empty(P, dtype=np.int64)
    KM.union_with_leaders(leader_of, parent)
    CL, zl = R.c32[L], R.z[L]
    for i0 in range(0, L.size, _TILE):
        i1 = min(i0 + _TILE, L.size)
        # leaders a < b can hold linked members only if d(a, b) < eps + 2 eps
        j_end = np.searchsorted(zl, zl[i1 - 1] + 3.0 * eps + slack, side="right")
        for j0 in range(i0, j_end, _TILE):
            j1 = min(j0 + _TILE, j_end)
            rows, cols = L[i0:i1], L[j0:j1]
            if KM.one_set(parent, rows, cols):
                continue
            dots = R.dots(CL[i0:i1], CL[j0:j1])
            KM.link_leaders(R.exact, dots, rows, cols, R.nrm, R.tol, eps, balls, rad_pt,
                            rad_ball, parent)  # fmt: skip
    root_sorted = np.empty(P, dtype=np.int64)
    KM.roots(parent, root_sorted)
    root = np.empty(P, dtype=np.int64)
    root[R.order] = root_sorted
    _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse]


def function_clusters(
    preds: Any, eps: float, max_agents: int | None = None, rng: Any = None
) -> tuple[np.ndarray, int, float]:
    """Clusters of agents linked by chains of function-space distances below ``eps``.

    Two agents are linked when their RMS output distance over the probe,
    ``sqrt(mean_n ||f_i(x_n) - f_j(x_n)||^2)``, is ``< eps``; clusters are the connected
    components of that graph (single linkage cut at ``eps``, as in bounded-confidence models).

    Method (exact, not sampled or approximated; links are decided by float64 distances on the
    original outputs): agents are sorted along the top principal axis of their outputs; each
    joins the first "leader" closer than ``eps`` or becomes one (so every ball is connected);
    edges between balls are searched only for leader pairs closer than ``eps`` plus both
    balls' radii (triangle inequality) that are not yet in one component (union-find).
    Candidates come from float32 GEMM tiles of dot products with a rigorous tolerance band,
    restricted by the sorted projection; the Numba kernels of :mod:`simulator.kernels.measure`
    confirm each link with an exact distance. Cost: at worst O(P x n_leaders x n_probe d_out)
    GEMM flops (every agent its own leader: agents isolated from each other yet all within a
    few eps, the worst case for any exact method); typically about a second or less for
    P = 10,000 and 256 outputs, much less when agents form few groups; P = 100,000 takes
    seconds when they form groups and up to about a minute in that worst case.

    Sampling, only when ``max_agents`` is given and smaller than P: a uniform sample of
    ``max_agents`` agents (without replacement, from ``rng``) is clustered; agents outside it
    get label -1 and the count and share refer to the sample.

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified.
    eps : float > 0, in output units.
    max_agents : int >= 1, optional.
    rng : numpy.random.Generator or int, optional; default seed 0. Used for the projection
        directions (the result does not depend on them) and for sampling.

    Returns
    -------
    labels : int64 (P,)
        Cluster of each agent, numbered 0, 1, ... in order of the agents' first appearance;
        -1 for agents left out of a sample.
    n_clusters : int
    largest_share : float in (0, 1], share of the (sampled) agents in the largest cluster.
    """
    F = preds_array(preds)
    eps = check_number("eps", eps, 0.0, low_open=True)
    gen = get_rng(rng)
    P, n = F.shape[:2]
    agents = None
    if max_agents is not None and check_int("max_agents", max_agents, low=1) < P:
        agents = np.sort(gen.choice(P, size=max_agents, replace=False))
        F = F[agents]
    sample = _components(flat_outputs(F), eps * np.sqrt(n), gen)
    counts = np.bincount(sample)
    if agents is None:
        labels = sample
    else:
        labels = np.full(P, -1, dtype=np.int64)
        labels[agents] = sample
    return labels, int(counts.size), float(counts.max() / sample.size)


def cluster_nmi(labels: Any, communities: Any) -> float:
    """Normalized mutual information between agent clusters and graph communities.

    ``NMI = I(U; V) / ((H(U) + H(V)) / 2)`` (arithmetic-mean normalization, as
    scikit-learn's default), natural logarithms, over the agents whose cluster label is >= 0
    (label -1 marks agents left out of a sample). 1 for identical partitions up to renaming,
    0 for independent ones. If both partitions are a single group, the result is 1.0.

    Parameters
    ----------
    labels : int array (P,); communities : int array (P,).

    Returns
    -------
    float in [0, 1].
    """
    a = int_labels("labels", labels)
    b = int_labels("communities", communities, a.shape[0])
    keep = a >= 0
    if not keep.any():
        raise fail("labels", "only negative labels", "at least one agent with a label >= 0")
    a = np.unique(a[keep], return_inverse=True)[1]
    b = np.unique(b[keep], return_inverse=True)[1]
    N = a.size
    pa, pb = np.bincount(a) / N, np.bincount(b) / N
    joint_codes, n_ij = np.unique(a * (b.max() + 1) + b, return_counts=True)
    ia, ib = np.divmod(joint_codes, b.max() + 1)
    p_ij = n_ij / N
    mi = float(np.sum(p_ij * np.log(p_ij / (pa[ia] * pb[ib]))))
    h = -float(np.sum(pa * np.log(pa))) - float(np.sum(pb * np.log(pb)))
    if h <= 0:
        return 1.0
    return float(min(1.0, max(0.0, mi / (h / 2))))


def _adjacency(graph: Any, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, weights) of a networkx graph, scipy sparse matrix or CSR-like object."""
    if hasattr(graph, "adj") and hasattr(graph, "nodes"):
        import networkx as nx

        if graph.is_directed():
            raise fail("graph", "a directed graph", "undirected (pass G.to_undirected())")
        if set(graph.nodes) != set(range(P)):
            raise fail(
                "graph",
                f"a graph with {graph.number_of_nodes()} nodes",
                f"nodes 0..{P - 1}, one per agent label",
            )
        graph = nx.to_scipy_sparse_array(graph, nodelist=range(P), format="csr")
    if hasattr(graph, "tocsr"):
        graph = graph.tocsr()
        return graph.indptr, graph.indices, np.asarray(graph.data, dtype=np.float64)
    if isinstance(graph, tuple) and len(graph) in (2, 3) and not hasattr(graph, "indptr"):
        indptr, indices = graph[0], graph[1]
        weights = graph[2] if len(graph) == 3 else None
    elif hasattr(graph, "indptr") and hasattr(graph, "indices"):
        indptr, indices = graph.indptr, graph.indices
        weights = getattr(graph, "weights", None)
    else:
        raise fail(
            "graph",
            type(graph).__name__,
            "a networkx Graph, a scipy sparse matrix, (indptr, indices[, weights]) or "
            "an object with indptr and indices (e.g. simulator.graph.CSRGraph)",
        )
    indptr, indices = np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)
    if indptr.shape != (P + 1,) or indices.shape != (indptr[-1],):
        raise fail(
            "graph",
            f"CSR arrays of shapes {indptr.shape}, {indices.shape}",
            f"indptr ({P + 1},) for {P} agents and indices (indptr[-1],)",
        )
    w = np.ones(indices.size) if weights is None else np.asarray(weights, dtype=np.float64)
    return indptr, indices, w


def modularity(csr_or_graph: Any, labels: Any) -> float:
    """Newman modularity of the agent clusters on the (undirected) social graph.

    ``Q = sum_c [ w_c / (2m) - (k_c / (2m))^2 ]`` where ``2m`` is the sum of all adjacency
    entries (each undirected edge stored in both directions), ``w_c`` the adjacency mass inside
    cluster c (both directions) and ``k_c`` the summed degree of its members. Matches
    ``networkx.community.modularity`` for graphs without self-loops. A graph without edges
    gives 0.0.

    Parameters
    ----------
    csr_or_graph : networkx.Graph with nodes 0..P-1, scipy sparse matrix, tuple
        ``(indptr, indices[, weights])`` or an object with ``indptr``, ``indices`` (and
        optionally ``weights``) such as ``simulator.graph.CSRGraph``. Symmetric adjacency, not a
        mixing matrix.
    labels : int array (P,), every label >= 0 (cluster every agent, no sampling).

    Returns
    -------
    float in [-1/2, 1).
    """
    lab = int_labels("labels", labels)
    if lab.size == 0 or lab.min() < 0:
        raise fail(
            "labels",
            "negative or missing labels",
            "one label >= 0 per agent (cluster all agents: no max_agents)",
        )
    P = lab.size
    indptr, indices, w = _adjacency(csr_or_graph, P)
    if indices.size and (indices.min() < 0 or indices.max() >= P):
        raise fail("graph", "neighbour indices out of range", f"indices in [0, {P})")
    two_m = float(w.sum())
    if two_m == 0:
        return 0.0
    rows = np.repeat(np.arange(P), np.diff(indptr))
    inside = float(w[lab[rows] == lab[indices]].sum())
    degree_mass = np.bincount(lab, weights=np.bincount(rows, weights=w, minlength=P))
    return inside / two_m - float(np.sum((degree_mass / two_m) ** 2))
