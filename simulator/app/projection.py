"""The homogenization map: every agent's network as one point in 2-D.

Two spaces:

``"function"``
    Each agent's outputs on the task's probe set, flattened (n_probe * d_out values), projected
    on the two principal directions of the population. Agents that compute the same function
    land on the same point, whatever their weights: convergence, clusters and collapse show as
    points merging. The truth (the probe targets) is drawn as a star in the same coordinates.
``"weights"``
    Parameter rows of a fixed sample of agents after aligning their hidden units to one
    reference agent (:func:`simulator.metrics.align_params`, permutations and sign flips), so
    that networks computing the same function through permuted units are drawn together.

Axes are in output (or weight) units and only grow while a model runs, so a population that
converges visibly shrinks to a point. The principal directions are recomputed every frame and
their signs kept consistent with the previous frame, so the picture does not flip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import metrics

SPACES = ("function", "weights")
MAX_POINTS = 1000  # agents drawn in function space (a fixed seeded sample above this)
MAX_ALIGNED = 100  # agents aligned and drawn in weight space
EXACT_MAX = 512  # exact PCA when the agents drawn or the dimensions are at most this


@dataclass(frozen=True)
class MapFrame:
    """One frame of the map.

    Attributes
    ----------
    agents : int64 (k,)    agent indices drawn
    xy : float64 (k, 2)    their coordinates
    truth : float64 (2,) or None    the probe targets in the same coordinates (function space)
    half_width : float     half the side of the square view (only grows within a model)
    spread : float         RMS distance of the drawn points to their mean, in the space's units
    """

    agents: np.ndarray
    xy: np.ndarray
    truth: np.ndarray | None
    half_width: float
    spread: float


def top2_directions(X: np.ndarray, previous: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Two leading principal directions (D, 2) of centred rows ``X`` (k, D), float64.

    Exact (an eigendecomposition of the smaller Gram matrix) when k or D is at most
    :data:`EXACT_MAX`; else subspace iteration, warm-started from ``previous`` (a seeded
    random start without one). Column signs agree with ``previous`` when given.
    """
    k, D = X.shape
    if min(k, D) <= EXACT_MAX:
        if D <= k:
            _, vecs = np.linalg.eigh(X.T @ X)
            V = vecs[:, ::-1][:, :2]
        else:
            _, vecs = np.linalg.eigh(X @ X.T)
            U = vecs[:, ::-1][:, :2]
            V = X.T @ U
    else:
        warm = previous is not None and previous.shape == (D, 2)
        V = previous if warm else np.random.default_rng(seed).standard_normal((D, 2))
        for _ in range(4 if warm else 20):
            V, _ = np.linalg.qr(X.T @ (X @ V))
    V = np.asarray(V, dtype=np.float64).reshape(D, -1)
    if V.shape[1] < 2:
        V = np.hstack([V, np.zeros((D, 2 - V.shape[1]))])
    norms = np.linalg.norm(V, axis=0)
    V = V / np.where(norms > 0, norms, 1.0)
    if previous is not None and previous.shape == V.shape:
        signs = np.sign(np.sum(V * previous, axis=0))
        V = V * np.where(signs == 0, 1.0, signs)
    return V


class HomogenizationMap:
    """Projection state of one model (sample, last directions, view size); see the module doc."""

    def __init__(self, n_agents: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.sample = (
            np.sort(rng.choice(n_agents, MAX_POINTS, replace=False))
            if n_agents > MAX_POINTS
            else np.arange(n_agents)
        )
        self.aligned_sample = (
            np.sort(rng.choice(n_agents, MAX_ALIGNED, replace=False))
            if n_agents > MAX_ALIGNED
            else np.arange(n_agents)
        )
        self._basis: dict[str, np.ndarray] = {}
        self._half: dict[str, float] = {}

    def frame(self, model, space: str = "function") -> MapFrame:
        """The map of ``model`` now, in ``space`` (``"function"`` or ``"weights"``)."""
        if space == "function":
            agents = self.sample
            preds = model.probe_predictions()
            Z = preds[agents].reshape(len(agents), -1).astype(np.float64)
            probe_Y = model.task.probe_Y
            truth = np.asarray(probe_Y, dtype=np.float64).mean(axis=0).reshape(-1)
            if truth.shape[0] != Z.shape[1] or model.task.kind == "generative":
                truth = None  # a generative task's probe_Y is a reference sample, not targets
        elif space == "weights":
            agents = self.aligned_sample
            pop, ref = model.population, int(agents[0])
            Z = np.stack([metrics.align_params(pop, ref, int(i)) for i in agents]).astype(
                np.float64
            )
            truth = None
        else:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        mean = Z.mean(axis=0)
        X = Z - mean
        V = top2_directions(X, self._basis.get(space))
        self._basis[space] = V
        xy = X @ V
        t = None if truth is None else (truth - mean) @ V
        extent = float(np.abs(xy).max()) if len(xy) else 0.0
        if t is not None:
            extent = max(extent, float(np.abs(t).max()))
        half = max(self._half.get(space, 0.0), 1.1 * extent, 1e-6)
        self._half[space] = half
        spread = float(np.sqrt(np.mean(np.sum(X * X, axis=1)))) if len(X) else 0.0
        return MapFrame(agents=agents, xy=xy, truth=t, half_width=half, spread=spread)
