"""Split one data set over agents: IID, by community, or Dirichlet non-IID by label."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from simulator.config import check_choice, check_int, check_number, fail

__all__ = ["DataSplit", "split_dataset"]


class DataSplit(NamedTuple):
    """One data set dealt to agents; every sample goes to exactly one agent.

    ``X`` (M, ...) and ``y`` (M, ...) are the samples grouped by agent (agent 0's first), agent
    ``i`` holding ``counts[i]`` of them; ``indices`` (M,) are their rows in the original data
    (``X == X_original[indices]``). ``proportions`` (n_classes, n_agents) is the Dirichlet draw
    (each class's shares over the agents) for ``how="dirichlet"``, else None.
    """

    X: np.ndarray
    y: np.ndarray
    counts: np.ndarray
    indices: np.ndarray
    proportions: np.ndarray | None

    def task_params(self, **extra: Any) -> dict[str, Any]:
        """``{"X": X, "Y": y, "counts": counts, **extra}`` for ``task="arrays"``."""
        return {"X": self.X, "Y": self.y, "counts": self.counts, **extra}


def split_dataset(
    X: Any,
    y: Any,
    n_agents: int,
    how: str = "iid",
    alpha: float = 0.5,
    communities: Any = None,
    seed: int = 0,
    min_size: int = 1,
) -> DataSplit:
    """Deal the samples of one data set (``X`` (n, ...), labels ``y`` (n,)) to ``n_agents``.

    Parameters
    ----------
    how : str
        ``"iid"``: a seeded random permutation cut into ``n_agents`` parts whose sizes differ
        by at most one. ``"dirichlet"``: the usual federated non-IID split (Hsu, Qi and Brown
        2019): for each class ``k`` draw shares ``p_k ~ Dirichlet(alpha 1)`` over the agents
        and give agent ``i`` the next ``floor(cumsum(p_k) n_k)`` difference of class ``k``'s
        shuffled samples; small ``alpha`` gives each agent few classes, large ``alpha`` tends
        to IID. Redrawn (up to 1000 times) until every agent holds at least ``min_size``
        samples. ``"community"``: labels follow the graph's communities (``communities``
        (n_agents,) ints, e.g. ``model.communities``): class ``k`` belongs to community
        ``k mod C`` (with more communities than classes, community ``c`` gets class
        ``c mod K``, shared with the other communities that get it); a class's samples are
        dealt IID among the agents of the communities it belongs to.
    alpha : float > 0
        Dirichlet concentration (``how="dirichlet"``).
    communities : int array (n_agents,), optional
        Community of every agent (``how="community"``).
    seed : int
        Seeds every draw: the same seed gives the same split.
    min_size : int >= 0
        Smallest number of samples an agent may hold (``"dirichlet"``; the other methods give
        every agent at least one sample when ``n >= n_agents``).

    Returns
    -------
    DataSplit
        ``split.task_params()`` is ready for ``task="arrays"``.
    """
    Xa, ya = np.asarray(X), np.asarray(y)
    n = len(ya) if ya.ndim else 0
    if ya.ndim != 1 or n == 0 or ya.dtype.kind not in "iu":
        raise fail("y", f"{ya.dtype} array of shape {ya.shape}", "integer labels of shape (n,)")
    if Xa.ndim < 1 or Xa.shape[0] != n:
        raise fail("X.shape", Xa.shape, f"({n}, ...): one row per label")
    if ya.min() < 0:
        raise fail("y", f"labels down to {ya.min()}", "labels >= 0")
    P = check_int("n_agents", n_agents, low=1, high=n)
    how = check_choice("how", how, ("iid", "dirichlet", "community"))
    min_size = check_int("min_size", min_size, low=0, high=n // P)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    proportions = None
    if how == "iid":
        owner = np.empty(n, dtype=np.int64)
        owner[rng.permutation(n)] = np.arange(n) * P // n
    elif how == "dirichlet":
        alpha = check_number("alpha", alpha, 0.0, low_open=True)
        owner, proportions = _dirichlet(ya, P, alpha, min_size, rng)
    else:
        owner = _by_community(ya, communities, P, rng)
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=P).astype(np.int64)
    return DataSplit(Xa[order], ya[order], counts, order, proportions)


def _dirichlet(
    y: np.ndarray, P: int, alpha: float, min_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Owner of every sample and the class shares (K, P) of the accepted draw."""
    K = int(y.max()) + 1
    members = [np.flatnonzero(y == k) for k in range(K)]
    for _ in range(1000):
        owner = np.empty(len(y), dtype=np.int64)
        props = rng.dirichlet(np.full(P, alpha), size=K)
        for k, idx in enumerate(members):
            idx = rng.permutation(idx)
            cuts = (np.cumsum(props[k]) * len(idx)).astype(np.int64)[:-1]
            for i, part in enumerate(np.split(idx, cuts)):
                owner[part] = i
        if np.bincount(owner, minlength=P).min() >= min_size:
            return owner, props
    raise fail(
        "min_size",
        min_size,
        f"reachable: 1000 Dirichlet(alpha={alpha}) draws all left an agent with fewer samples "
        "(raise alpha, lower min_size or use fewer agents)",
    )


def _by_community(y: np.ndarray, communities: Any, P: int, rng: np.random.Generator) -> np.ndarray:
    c = np.asarray(communities) if communities is not None else None
    if c is None or c.shape != (P,) or c.dtype.kind not in "iu" or c.min() < 0:
        raise fail("communities", communities, f"integer community labels of shape ({P},)")
    codes = np.unique(c, return_inverse=True)[1].reshape(-1)
    C, K = int(codes.max()) + 1, int(y.max()) + 1
    owner = np.empty(len(y), dtype=np.int64)
    for k in range(K):
        idx = np.flatnonzero(y == k)
        if idx.size == 0:
            continue
        groups = [k % C] if K >= C else [g for g in range(C) if g % K == k]
        agents = np.flatnonzero(np.isin(codes, groups))
        owner[rng.permutation(idx)] = agents[np.arange(idx.size) * agents.size // idx.size]
    return owner
