"""The social graph as the app draws it: a seeded layout computed once per model, sampled if large.

A spring layout of 10,000 nodes costs minutes and draws as a hairball, so graphs above
``max_nodes`` are drawn as a snowball sample (breadth-first from seeded random start nodes):
a connected piece that keeps the local structure a reader can see. Positions are computed once
per model (``networkx.spring_layout(seed=...)``) and reused for every frame; only the colours
(function-space clusters) change as the simulation runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import networkx as nx
import numpy as np

# Colours of the largest clusters (by size rank); smaller clusters are grey.
PALETTE = np.array(
    [
        (0.122, 0.467, 0.706, 1.0),
        (1.000, 0.498, 0.055, 1.0),
        (0.173, 0.627, 0.173, 1.0),
        (0.839, 0.153, 0.157, 1.0),
        (0.580, 0.404, 0.741, 1.0),
        (0.549, 0.337, 0.294, 1.0),
        (0.890, 0.467, 0.761, 1.0),
        (0.737, 0.741, 0.133, 1.0),
        (0.090, 0.745, 0.812, 1.0),
    ]
)
OTHER = np.array((0.62, 0.62, 0.62, 1.0))


@dataclass(frozen=True)
class GraphView:
    """Positions of the drawn part of a model's graph.

    Attributes
    ----------
    nodes : int64 (k,)
        Agent indices drawn (all agents when the graph has at most ``max_nodes`` nodes).
    xy : float64 (k, 2)
        Their positions, scaled into [-1, 1].
    edges : int64 (m, 2)
        Edges among drawn nodes, as positions in ``nodes``.
    n_total : int
        Number of agents in the model.
    """

    nodes: np.ndarray
    xy: np.ndarray
    edges: np.ndarray
    n_total: int

    @property
    def sampled(self) -> bool:
        """True when only a part of the graph is drawn."""
        return len(self.nodes) < self.n_total

    @property
    def limits(self) -> tuple[float, float, float, float]:
        """Axis limits (xmin, xmax, ymin, ymax) of the drawing."""
        return (-1.1, 1.1, -1.1, 1.1)


def snowball_sample(G: nx.Graph, max_nodes: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``max_nodes`` nodes of ``G`` (nodes 0..n-1) by breadth-first search from random starts.

    Returns a sorted int64 array; all nodes when ``G`` has at most ``max_nodes``.
    """
    n = G.number_of_nodes()
    if n <= max_nodes:
        return np.arange(n, dtype=np.int64)
    seen: set[int] = set()
    starts = rng.permutation(n)
    for start in starts:
        if len(seen) >= max_nodes:
            break
        if int(start) in seen:
            continue
        queue = deque([int(start)])
        seen.add(int(start))
        while queue and len(seen) < max_nodes:
            node = queue.popleft()
            for nb in G.neighbors(node):
                if nb not in seen and len(seen) < max_nodes:
                    seen.add(nb)
                    queue.append(nb)
    return np.array(sorted(seen), dtype=np.int64)


def graph_view(G: nx.Graph, max_nodes: int = 500, seed: int = 0) -> GraphView:
    """Lay out ``G`` (or a snowball sample of ``max_nodes`` of its nodes) once, seeded."""
    rng = np.random.default_rng(seed)
    nodes = snowball_sample(G, max_nodes, rng)
    sub = G.subgraph(nodes.tolist())
    pos = nx.spring_layout(sub, seed=int(seed), iterations=50) if len(nodes) > 1 else {}
    xy = np.array([pos.get(int(v), (0.0, 0.0)) for v in nodes], dtype=np.float64).reshape(-1, 2)
    if len(xy):
        xy = xy - xy.mean(axis=0)
        xy /= max(np.abs(xy).max(), 1e-12)
    where = {int(v): i for i, v in enumerate(nodes)}
    edges = np.array([(where[u], where[v]) for u, v in sub.edges()], dtype=np.int64).reshape(-1, 2)
    return GraphView(nodes=nodes, xy=xy, edges=edges, n_total=G.number_of_nodes())


def cluster_colours(labels: np.ndarray) -> np.ndarray:
    """RGBA (P, 4): clusters coloured by size rank (largest first), small ones grey."""
    labels = np.asarray(labels)
    out = np.tile(OTHER, (len(labels), 1))
    if len(labels) == 0:
        return out
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(values))
    r = rank[inverse]
    top = ((r < len(PALETTE)) & (counts[inverse] > 1)) | (len(values) == 1)
    out[top] = PALETTE[np.minimum(r[top], len(PALETTE) - 1)]
    return out
