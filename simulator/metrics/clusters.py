"""Clusters of agents in function space, and how they sit on the social graph."""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np

from simulator.config import check_int, check_number, fail
from simulator.kernels import measure as KM
from simulator.kernels import measure_function as KF
from simulator.kernels import measure_grid as KG
from simulator.kernels import measure_partition as KP
from simulator.kernels.sized import EDGE_FLOPS, sized
from simulator.metrics._checks import (
    all_finite,
    as_array,
    get_rng,
    int_labels,
    max_abs,
    preds_array,
    row_chunks,
    unit_scale,
)


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

    The directions approximate the top principal axes (randomized range finder: a Gaussian
    sketch with 4 extra vectors drawn from ``rng``, no power iteration: three passes over G);
    they are re-orthonormalized in float64, so distances between coordinates never exceed
    distances between rows (up to rounding).
    """
    D = G.shape[1]
    mu = G.mean(axis=0, dtype=np.float64)
    if D <= k:
        V = np.eye(D)
    else:
        Q = np.linalg.qr(_times(G, mu, rng.standard_normal((D, min(D, k + 4)))))[0]
        V = np.linalg.svd(_transposed_times(G, mu, Q), full_matrices=False)[2][:k].T
        V = np.linalg.qr(V)[0]
    return np.ascontiguousarray(_times(G, mu, V)), V


_MAX_DIRECTIONS = 24  # at most this many directions prune the pairs of the sweep
# Below this radius its square (the kernels compare squared distances) could be subnormal or 0
# (then even identical rows were not linked): the rows are clustered scaled up by a power of two.
_SMALL_EPS = 2.0**-500


def _scale_up(eps: float, top: float, limit: float) -> float:
    """The power of two ``s >= 1`` that brings ``eps s`` to at least :data:`_SMALL_EPS` while
    ``top s`` (the largest absolute value to be scaled) stays below ``limit``; as close as those
    allow (1.0 when none is needed or possible)."""
    want = math.ceil(math.log2(_SMALL_EPS) - math.log2(eps))
    room = math.floor(math.log2(limit) - math.log2(top if top > 0.0 else 1.0))
    return math.ldexp(1.0, max(0, min(want, room, 1023)))


def _warn_small_eps(eps: float, top: float) -> None:
    warnings.warn(
        f"eps={eps:.3g} is too small beside outputs of up to {top:.3g} for squared distances "
        "in float64: agents closer than eps may be left unlinked",
        RuntimeWarning,
        stacklevel=5,
    )


@functools.cache
def _spread_limit(dtype: np.dtype) -> float:
    """Largest spread (max distance of a row to the mean row) for which every squared distance
    between rows, and its partial sums, fit in ``dtype`` (the sweep sums in the rows' own
    precision first): sqrt(max) / 8, ~1.7e153 for float64, ~2.3e18 for float32."""
    return float(np.sqrt(np.finfo(dtype).max)) / 8.0


def _components(
    G: np.ndarray, eps: float, mu: np.ndarray | None = None, rescale: bool = True
) -> tuple[np.ndarray, int, int]:
    """Labels 0..C-1 (by first appearance) of the components of ``||G_i - G_j|| < eps``, C,
    and the rows in the largest component; ``mu``: the mean row of G (float64) when the caller
    has it. Rows too spread for their squared distances to fit in G's dtype
    are clustered rescaled (``rescale``: not yet)."""
    P = G.shape[0]
    if mu is None:
        mu = np.empty(G.shape[1])
        KF.column_means(G, mu)
    Z, r = KM.pivot_coordinates(G, mu, _MAX_DIRECTIONS, eps)
    labels = np.empty(P, dtype=np.int64)
    small = rescale and eps < _SMALL_EPS  # eps * eps would underflow (a rare path)
    limit = _spread_limit(G.dtype) if rescale else math.inf
    # the bounds are exact up to float64 rounding of Z and r (the residual norm comes from a
    # difference of squares: relative error ~1e-8 of the row's norm): a generous slack, set
    # from the spread in the kernel (which returns without sweeping if it reaches limit)
    spread, n, largest = KM.sorted_components(G, Z, r, eps, 0.0 if small else limit, labels)
    if rescale and not spread < limit:  # huge rows, or NaN from an overflow
        return _rescaled_components(G, eps, mu, spread)  # a rare path
    if small:  # rows and eps scaled up: float32 rows leave too little room
        G = np.asarray(G, dtype=np.float64)
        top = max_abs(G)
        s = _scale_up(eps, top, _spread_limit(G.dtype) / 4.0)
        if eps * s < _SMALL_EPS:
            _warn_small_eps(eps, top)
        return _components(G * s, eps * s, mu * s, rescale=False)
    return labels, n, largest


def _rescaled_components(
    G: np.ndarray, eps: float, mu: np.ndarray, spread: float
) -> tuple[np.ndarray, int, int]:
    """:func:`_components` of rows whose squared distances could overflow: of ``G s`` at radius
    ``eps s``, the same components, with ``s`` the largest power of two that brings the spread
    (``spread``, or a bound from ``max |G|`` where that overflowed) below half the limit (a small
    ``eps s`` stays as far from underflow as it can)."""
    limit = math.log2(_spread_limit(G.dtype)) - 1.0
    if math.isfinite(spread):
        log_spread = math.log2(spread)
    else:  # ||G_i - mu|| <= 2 sqrt(D) max |G|
        log_spread = math.log2(max_abs(G)) + 1.0 + 0.5 * math.log2(G.shape[1])
    s = math.ldexp(1.0, -max(0, math.ceil(log_spread - limit)))
    if eps * s < _SMALL_EPS:
        _warn_small_eps(eps, max_abs(G))
    return _components(G * G.dtype.type(s), eps * s, mu * s, rescale=False)


def function_clusters(
    preds: Any, eps: float, max_agents: int | None = None, rng: Any = None
) -> tuple[np.ndarray, int, float]:
    """Clusters of agents linked by chains of function-space distances below ``eps``.

    Two agents are linked when their RMS output distance over the probe,
    ``sqrt(mean_n ||f_i(x_n) - f_j(x_n)||^2)``, is ``< eps``; clusters are the connected
    components of that graph (single linkage cut at ``eps``, as in bounded-confidence models).

    Method (exact, not sampled or approximated; links are decided by float64 distances on the
    original outputs): the agents' coordinates on 3 to 24 orthonormal directions (pivoted
    Gram-Schmidt on the centred outputs, a greedy approximation of the top principal axes:
    :func:`simulator.kernels.measure_pivot.pivot_coordinates`; directions are added until fewer
    than 5% of a fixed sample of pairs are still within ``eps`` on them, and past 8 only while
    they keep pruning many pairs) are exact lower bounds of their distances. Every agent is
    first tested against the agent nearest the centre (a population near consensus is one
    cluster after these P tests); then the agents are swept in the order of the first
    coordinate, until every agent is in one component; a pair is examined only while its first
    coordinates differ by less than ``eps``, skipped when both agents are already in one
    component (union-find) or when a lower bound of its distance (projections and the norms of
    the residuals outside them) already reaches ``eps``, linked at once when an upper bound is
    below ``eps``, and otherwise linked when its exact float64 distance
    (:func:`simulator.kernels.measure.sweep_components`) is below ``eps``: a vectorized sum in
    the outputs' own precision decides first, and leaves to the sequential float64 sum every
    pair within its rounding bound (relative 4 (D + 2) u) of ``eps``. Bounds decide only pairs
    farther than a margin of about 1e-6 x the outputs' spread from ``eps``. Cost: O(k P D) for
    the coordinates (k <= 24), then O(P^2 k) cheap checks at worst (all agents within ``eps`` of
    each other along every direction) and one exact O(D) distance per examined pair not yet
    joined: a few milliseconds for P = 500 and D = 1,600; the worst case for any exact method
    (agents isolated from each other yet all within a few ``eps``) costs O(P^2 D).

    Sampling, only when ``max_agents`` is given and smaller than P: a uniform sample of
    ``max_agents`` agents (without replacement, from ``rng``) is clustered; agents outside it
    get label -1 and the count and share refer to the sample.

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified.
    eps : float > 0, in output units.
    max_agents : int >= 1, optional.
    rng : numpy.random.Generator or int, optional; default seed 0. Used only for sampling.

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
    P = F.shape[0]
    agents = None
    if max_agents is not None and check_int("max_agents", max_agents, low=1) < P:
        agents = np.sort(gen.choice(P, size=max_agents, replace=False))
        F = F[agents]
    sample, n_clusters, largest = cluster_outputs(F, eps)
    if agents is None:
        return sample, n_clusters, largest
    labels = np.full(P, -1, dtype=np.int64)
    labels[agents] = sample
    return labels, n_clusters, largest


def cluster_outputs(
    F: np.ndarray, eps: float, mean: np.ndarray | None = None
) -> tuple[np.ndarray, int, float]:
    """:func:`function_clusters` of validated outputs F (P, n, d), every agent, no sampling;
    ``mean``: their mean output (n, d) float64 when the caller has it."""
    n = F.shape[1]
    mu = None if mean is None else np.ascontiguousarray(mean, dtype=np.float64).ravel()
    labels, n_clusters, largest = _components(flat_outputs(F), eps * np.sqrt(n), mu)
    return labels, n_clusters, largest / labels.size


def grid_clusters(Z: Any, eps: float) -> tuple[np.ndarray, int, float]:
    """Exact single linkage at radius ``eps`` of points Z (P, q) with q <= 3, on a grid.

    Same definition as :func:`function_clusters` (components of ``||Z_i - Z_j|| < eps``), for
    low-dimensional coordinates such as :func:`simulator.metrics.linear.linear_embedding`:
    O(P) on a grid of at most ~4 cells per point
    (:func:`simulator.kernels.measure_grid.dense_grid_labels`), else O(P log P)
    (:func:`simulator.kernels.measure_grid.grid_components`).

    Returns
    -------
    labels : int64 (P,) numbered by first appearance; n_clusters : int; largest_share : float.
    """
    Zf = as_array("Z", Z)
    if Zf.dtype.kind not in "fiub" or Zf.ndim != 2 or not 1 <= Zf.shape[1] <= 3 or not Zf.size:
        raise fail(
            "Z",
            f"an array of dtype {Zf.dtype} and shape {Zf.shape}",
            "(P, q) real numbers, P >= 1, 1 <= q <= 3",
        )
    eps = check_number("eps", eps, 0.0, low_open=True)
    Zf = np.ascontiguousarray(Zf, dtype=np.float64)
    P, q = Zf.shape
    lo, hi = np.empty(q), np.empty(q)
    if not KG.bounds(Zf, lo, hi):  # one pass: the finiteness check and the grid's extent
        raise fail("Z", "an array with NaN or inf", "finite everywhere")
    extent, s = float((hi - lo).max()), 1.0
    top = max(float(np.abs(lo).max()), float(np.abs(hi).max()))
    if not extent < _GRID_EXTENT:  # squared distances could overflow: rescale exactly (rare)
        s = math.ldexp(1.0, -math.ceil(math.log2(top) + 1.0 - math.log2(_GRID_EXTENT)))
    elif eps < _SMALL_EPS:  # eps * eps could underflow: scaled up exactly (rare)
        s = _scale_up(eps, top, _GRID_EXTENT / 2.0)
    if s != 1.0:
        Zf, lo, hi = Zf * s, lo * s, hi * s
        extent = float((hi - lo).max())
    side = eps * s / math.sqrt(q)  # a Python float: no overflow warning below
    # A cell's side a hair under eps / sqrt(q): the rounding of a point's cell number (a few
    # ulps of the largest) can then never put two points eps or more apart in one cell (with
    # the side exactly eps / sqrt(q), points on a lattice of step eps were); cells 3 apart in
    # some coordinate are still more than eps apart, so neighbours are within 2 cells.
    if side > 0.0:  # (0 when eps underflowed in a rescaling: refused below)
        side *= 1.0 - (8.0 * (extent / side + 1.0) * 2.0**-52 + 2.0**-40)
    cells_max = min(2.0 ** (62 // q) - 8, _GRID_CELLS)  # packed in 62 // q bits each
    if not extent < cells_max * side:
        least = extent * np.sqrt(q) * 16 / cells_max / s  # in Z's units
        raise fail("eps", eps, f"at least {least:.3g}")
    eps *= s
    bits = 62 // q
    labels = np.empty(P, dtype=np.int64)
    reach = 2
    extent = np.floor((hi - lo) / side).astype(np.int64) + 1  # cells per dimension
    if float(np.prod(extent.astype(np.float64))) <= 4 * P + 4096:  # a small grid: O(P)
        index, pts = np.empty(P, dtype=np.int64), np.empty(P, dtype=np.int64)
        n, largest = KG.dense_grid_labels(Zf, lo, side, extent, eps, reach, labels, index, pts)
        return labels, int(n), float(largest / P)
    # cells by their packed keys; within a cell, any order gives the same components
    cells, keys = np.empty((P, q), dtype=np.int64), np.empty(P, dtype=np.int64)
    KG.cell_keys(Zf, lo, side, bits, cells, keys)
    pts = np.argsort(keys)
    parent = np.empty(P, dtype=np.int64)
    KG.grid_components(Zf, cells, pts, keys[pts], bits, eps, reach, parent)
    n = KM.first_appearance(parent, labels)
    return labels, n, float(np.bincount(labels).max() / P)


# Largest extent of grid_clusters' points along a coordinate (~1.6e120) for which their
# squared distances fit in float64; points beyond are clustered exactly rescaled.
_GRID_EXTENT = 2.0**400
# Most cells along a coordinate: the cell numbers' rounding (8 ulps of 2**46, 2**-3 of a cell)
# stays within the side's margin while cells 3 apart stay more than eps apart.
_GRID_CELLS = 2.0**46


def _dense_codes(x: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..k-1 (a bincount when they are small non-negative ints, O(P))."""
    if x.min() >= 0 and x.max() < 4 * x.size + 16:
        present = np.bincount(x) > 0
        return (np.cumsum(present) - 1)[x]
    return np.unique(x, return_inverse=True)[1]


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
    if a.max() < 0:
        raise fail("labels", "only negative labels", "at least one agent with a label >= 0")
    n_a, n_b = int(a.max()) + 1, int(b.max()) + 1
    if b.min() < 0 or n_a * n_b > _table_cells(a.size):  # renumber labels of any size first
        keep = a >= 0
        a, b = _dense_codes(a[keep]), _dense_codes(b[keep])
        n_a, n_b = int(a.max()) + 1, int(b.max()) + 1
    return nmi_of_codes(a, b, n_a, n_b)


def nmi_of_codes(a: np.ndarray, b: np.ndarray, n_a: int, n_b: int) -> float:
    """:func:`cluster_nmi` of codes already checked, the same computation: a int64 (P,) in
    [0, n_a) or -1 (left out), b int64 (P,) in [0, n_b), each code of b and of the a >= 0 in
    use (a collect's cluster labels and the graph's communities: no pass to check them)."""
    if n_a * n_b <= _table_cells(a.size):  # the whole table in one pass
        table = np.empty((n_a, n_b), dtype=np.int64)
        N = KP.contingency(a, b, n_a, n_b, table)
        codes = np.flatnonzero(table)
        joint, count_a, count_b = table.ravel()[codes], table.sum(axis=1), table.sum(axis=0)
    else:  # many clusters and many communities: the non-empty cells only
        codes, joint = np.unique(a * n_b + b, return_counts=True)
        N, count_a, count_b = a.size, np.bincount(a), np.bincount(b)
    pa, pb = count_a / N, count_b / N
    ia, ib = np.divmod(codes, n_b)
    p_ij = joint / N
    mi = float(np.sum(p_ij * np.log(p_ij / (pa[ia] * pb[ib]))))
    pa, pb = pa[pa > 0], pb[pb > 0]
    h = -float(np.sum(pa * np.log(pa))) - float(np.sum(pb * np.log(pb)))
    if h <= 0:
        return 1.0
    return float(min(1.0, max(0.0, mi / (h / 2))))


def _narrow(codes: np.ndarray, top: int | None = None) -> np.ndarray:
    """Labels 0..k-1 as the narrowest unsigned integers that hold them (uint8 up to 256
    labels). The modularity pass reads a neighbour's label at random: a table of 1 byte per
    agent stays in cache where one of 8 does not (the polarization scenario's 1M agents,
    12.7M entries, the unweighted pass on one thread: int64 labels 62 ms, uint8 43 ms). Labels
    are only compared for equality, so the sums are the same whatever the type. ``top``: the
    largest label when the caller knows it."""
    top = int(codes.max()) if top is None else top
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return codes.astype(dtype)
    return codes


def _table_cells(n: int) -> int:
    """Largest contingency table (cells) built densely for ``n`` agents: O(n) memory."""
    return 4 * n + 4096


def _adjacency(graph: Any, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
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
        return (
            graph.indptr.astype(np.int64),
            graph.indices.astype(np.int64),
            np.asarray(graph.data, dtype=np.float64),
        )
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
    indptr = np.asarray(as_array("graph", indptr), dtype=np.int64)
    indices = np.asarray(as_array("graph", indices), dtype=np.int64)
    if indptr.shape != (P + 1,) or indices.shape != (indptr[-1],):
        raise fail(
            "graph",
            f"CSR arrays of shapes {indptr.shape}, {indices.shape}",
            f"indptr ({P + 1},) for {P} agents and indices (indptr[-1],)",
        )
    w = None if weights is None else np.asarray(as_array("graph", weights), dtype=np.float64)
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
    top = int(lab.max())
    codes = lab if top < _table_cells(P) else _dense_codes(lab)  # a sum per label
    return modularity_of_codes(indptr, indices, w, codes, top if codes is lab else None)


def modularity_of_codes(
    indptr: np.ndarray,
    indices: np.ndarray,
    w: np.ndarray | None,
    codes: np.ndarray,
    top: int | None,
) -> float:
    """:func:`modularity` of codes already checked, the same computation: a CSR adjacency
    (indptr, indices int64, weights float64 or None: every entry 1; its entries are checked
    by the pass) and codes int64 (P,) >= 0 and below ``4 P + 4096``, with their largest
    ``top`` when known (None: found here)."""
    P = codes.size
    w = np.empty(0) if w is None else np.ascontiguousarray(w)  # empty: every entry 1
    n_blocks = (P + KP.ROWS - 1) // KP.ROWS
    inside, degree, bad = np.empty(n_blocks), np.empty(P), np.empty(n_blocks, dtype=np.bool_)
    narrow = _narrow(codes, top)
    kernel = sized(KP.modularity_terms, KP.modularity_terms_serial, indices.size * EDGE_FLOPS)
    kernel(indptr, indices, w, narrow, KP.ROWS, inside, degree, bad)
    if bad.any():
        raise fail(
            "graph",
            "neighbour indices out of range or rows out of order",
            f"indices in [0, {P}), indptr non-decreasing from 0 to len(indices)",
        )
    value = _modularity_of(inside, degree, codes)
    if math.isfinite(value):
        return value
    if not all_finite(w):
        raise fail("graph", "edge weights with NaN or inf", "a graph with finite edge weights")
    # huge weights overflowed a sum (a rare path): Q does not change when all are scaled
    kernel(indptr, indices, w * unit_scale(w), narrow, KP.ROWS, inside, degree, bad)
    return _modularity_of(inside, degree, codes)


def _modularity_of(inside: np.ndarray, degree: np.ndarray, codes: np.ndarray) -> float:
    """Q from the adjacency mass inside clusters (per block of agents) and the degrees."""
    two_m = float(degree.sum())
    if two_m == 0:
        return 0.0
    degree_mass = np.bincount(codes, weights=degree)
    return float(inside.sum()) / two_m - float(np.sum((degree_mass / two_m) ** 2))


def sampled_modularity(labels_u: Any, labels_v: Any) -> float:
    """Modularity estimated from edges drawn uniformly (with replacement) from the graph.

    ``Q = sum_c [w_c / (2m) - (k_c / (2m))^2]`` is ``P(both ends of a random edge end in one
    cluster) - P(two independent degree-weighted agents are in one cluster)``. With the clusters
    ``labels_u[e]``, ``labels_v[e]`` of the two ends of E edges drawn uniformly among the 2m
    directed edges (so ``u_e`` is an agent drawn with probability proportional to its degree),
    the estimate is the share of edges inside a cluster minus the share of pairs ``e != f``
    with ``labels_u[e] == labels_u[f]`` (a U-statistic): unbiased, with a standard error at most
    about ``1.5 / sqrt(E)``.

    Parameters
    ----------
    labels_u, labels_v : int arrays (E,), E >= 2.

    Returns
    -------
    float in [-1, 1].
    """
    a = int_labels("labels_u", labels_u)
    b = int_labels("labels_v", labels_v, a.shape[0])
    E = a.size
    if E < 2:
        raise fail("labels_u", f"{E} edges", "at least 2 sampled edges")
    inside = float(np.mean(a == b))
    counts = np.unique(a, return_counts=True)[1].astype(np.float64)
    null = float((np.sum(counts**2) - E) / (E * (E - 1)))
    return inside - null
