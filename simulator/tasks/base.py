"""The Task base class: per-agent minibatches drawn by kernels from counter-based streams."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from simulator.config import check_int, count_text, fail, gib_text, machine_memory
from simulator.kernels.random import key_from_seed

__all__ = ["NORMAL_MAX", "Task", "check_communities", "check_task_memory", "data_limit", "one_hot"]

_BUILD, _DATA = 0, 1  # spawn keys: construction streams, the data key
# No normal draw of a task exceeds this: the kernels' Box-Muller normals are at most
# sqrt(2 ln 2**54) = 8.7 (NumPy's, for probes, are unbounded but never seen above 9).
NORMAL_MAX = 10.0


class Task:
    """Base class of every environment.

    A subclass sets ``d_in``, ``d_out``, the probe and ``_fill(step, X, Y)``, a kernel call that
    fills preallocated ``X`` (P, B, d_in) and ``Y`` (P, B, d_out) for ``step``.

    Attributes
    ----------
    name : str
        Registry name (see :data:`simulator.tasks.TASKS`).
    n_agents, seed : int
    communities : int64 array (n_agents,) or None
    d_in, d_out : int
        Input and output widths the agents' networks need.
    kind : str
        ``"regression"``, ``"classification"`` or ``"generative"``.
    output, loss : str
        The Population ``output`` and ``loss`` the task is made for.
    probe_X : float64 (n_probe, d_in)
    probe_Y : float64 (P or 1, n_probe, d_out)
        Truth on the probe; first axis 1 when every agent's environment is the same.
    probe_labels : int64 (P or 1, n_probe) or None
        Class labels for classification tasks.
    settings : dict
        The keyword parameters the task was built with (for a run's config sidecar).
    key : tuple of two ints
        The Philox key of the data streams (from ``seed``).
    """

    name = "task"
    kind = "regression"
    output = "linear"
    loss = "mse"
    probe_labels: np.ndarray | None = None
    full_batch = False  # whether batch size 0 (every sample, every step) is meaningful
    # set from the model's parameters when it is built: a checkpoint must hold the same values
    fixed_state: tuple[str, ...] = ("n_agents", "seed", "communities")

    def __init__(self, n_agents: int, seed: int, communities: Any, settings: dict) -> None:
        self.n_agents = check_int("n_agents", n_agents, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.communities = check_communities(communities, self.n_agents)
        self.settings = settings
        self.key = key_from_seed(self.seed, _DATA)
        self._k = tuple(np.uint64(k) for k in self.key)
        self._buffers: tuple[tuple, np.ndarray, np.ndarray] | None = None

    def _largest(self, limit: float) -> list[tuple[str, float, float]]:
        """``(parameter, value, largest allowed value)`` for every parameter that scales the
        data, so that no entry of X, Y or the probe exceeds ``limit`` in magnitude."""
        return []

    def _check_range(self, dtype: Any) -> None:
        """Refuse a parameter that makes the data (or their squares) overflow ``dtype``.

        O(number of parameters): called once per dtype and buffer, never per sample."""
        dt = np.dtype(dtype)
        for name, value, largest in self._largest(data_limit(dt)):
            if not value <= largest:
                raise fail(
                    name,
                    value,
                    f"<= {largest:.3g} for {dt.name} data (task={self.name!r}: a larger value "
                    f"makes its data, or the squares that losses and gradients sum, overflow "
                    f"{dt.name})",
                )

    def _stream(self, *key: int) -> np.random.Generator:
        """Construction stream ``key`` (one per drawn component, so components never shift)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_BUILD, *key)))

    # ------------------------------------------------------------------ drawing
    def sample(self, step: int, batch: int, dtype: Any = np.float64) -> tuple[np.ndarray, ...]:
        """One minibatch per agent at ``step``: new arrays X (P, B, d_in), Y (P, B, d_out).

        A pure function of (seed, step, batch, dtype); a larger batch extends a smaller one
        (sample ``b`` of an agent does not depend on ``B``). ``dtype`` float64 (default) or
        float32: float32 draws are made for float32 directly (see
        :mod:`simulator.kernels.random`), so they are not the float64 draws rounded.
        """
        step = check_int("step", step, low=0)
        batch = check_int("batch", batch, low=1)
        dt = _float_dtype(dtype)
        self._check_range(dt)
        X = np.empty((self.n_agents, batch, self.d_in), dtype=dt)
        Y = np.empty((self.n_agents, batch, self.d_out), dtype=dt)
        self._fill(step, X, Y)
        return X, Y

    def sample_into(self, step: int, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, ...]:
        """Fill ``X`` (P, B, d_in) and ``Y`` (P, B, d_out) in place with the batch of ``step``.

        Both C-contiguous, of one dtype (float32 or float64), B >= 1. Returns ``(X, Y)``.
        """
        step = check_int("step", step, low=0)
        P, shape = self.n_agents, getattr(X, "shape", None)
        ok = isinstance(X, np.ndarray) and isinstance(Y, np.ndarray) and X.ndim == 3
        ok = ok and X.shape[0] == P and X.shape[1] >= 1 and X.shape[2] == self.d_in
        if not ok or Y.shape != (P, X.shape[1], self.d_out):
            raise fail(
                "X.shape, Y.shape",
                (shape, getattr(Y, "shape", None)),
                f"({P}, B, {self.d_in}) and ({P}, B, {self.d_out}) arrays with B >= 1",
            )
        if X.dtype != Y.dtype or X.dtype not in (np.float32, np.float64):
            raise fail("X.dtype, Y.dtype", (X.dtype, Y.dtype), "both float32 or both float64")
        if not (X.flags.c_contiguous and Y.flags.c_contiguous and X.flags.writeable):
            raise fail("X, Y", "non-contiguous or read-only arrays", "C-contiguous, writable")
        self._check_range(X.dtype)
        self._fill(step, X, Y)
        return X, Y

    def batch(self, step: int, batch_size: int, dtype: Any) -> tuple[np.ndarray, ...]:
        """The minibatch of ``step`` in buffers owned by the task (the model's hot path).

        The same arrays are refilled by the next call: use them before then. ``batch_size=0``
        (the full data, every step) only where :attr:`full_batch` is True.
        """
        dt = _float_dtype(dtype)
        if batch_size == 0:
            raise fail(
                "batch_size",
                0,
                f"an integer >= 1 for task={self.name!r} (0, the full batch, "
                "needs a task with a fixed data set: task='arrays')",
            )
        shape = (check_int("batch_size", batch_size, low=1), dt)
        if self._buffers is None or self._buffers[0] != shape:
            self._check_range(dt)
            self._buffers = None  # free the old buffers before allocating new ones
            P, B = self.n_agents, shape[0]
            self._buffers = (
                shape,
                np.empty((P, B, self.d_in), dtype=dt),
                np.empty((P, B, self.d_out), dtype=dt),
            )
        _, X, Y = self._buffers
        self._fill(check_int("step", step, low=0), X, Y)
        return X, Y

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        raise NotImplementedError

    def probe_Y_at(self, step: int) -> np.ndarray:
        """Truth on the probe at ``step``, float64 (P or 1, n_probe, d_out)."""
        check_int("step", step, low=0)
        return self.probe_Y

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}(n_agents={self.n_agents}, seed={self.seed}, {args})"


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise fail("dtype", dtype, "float32 or float64")
    return dt


def check_communities(communities: Any, n_agents: int) -> np.ndarray | None:
    """``communities`` as int64 (n_agents,) codes >= 0, or None."""
    if communities is None:
        return None
    c = np.asarray(communities)
    if c.shape != (n_agents,) or not np.issubdtype(c.dtype, np.integer) or np.any(c < 0):
        raise fail(
            "communities",
            communities,
            f"None or an integer array of shape ({n_agents},) with values >= 0",
        )
    return c.astype(np.int64)


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """float64 one-hot rows (..., k) of integer ``labels`` in [0, k) (no (k, k) identity)."""
    labels = np.asarray(labels)
    out = np.zeros((*labels.shape, k))
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def data_limit(dtype: Any) -> float:
    """Largest magnitude a task's data may reach in ``dtype``: ``sqrt(max) / 1024``, so that
    sums of up to 2**20 of their squares (losses, gradients) stay finite: ~1.8e16 in float32,
    ~1.3e151 in float64."""
    return math.sqrt(float(np.finfo(dtype).max)) / 1024


def check_task_memory(
    task: str, need: Callable[..., int], sizes: dict[str, int], context: str = ""
) -> None:
    """Refuse a task whose arrays would not fit in this machine's memory, before any is made.

    ``need(**sizes)`` is the bytes the task allocates (Python ints: exact at any size). The
    error names the size whose reduction to 1 saves the most (the one that makes it large).
    """
    total, have = need(**sizes), machine_memory()
    if total <= have:
        return
    name = max(sizes, key=lambda k: total - need(**{**sizes, k: 1}))
    given = ", ".join(f"{k}={count_text(v)}" for k, v in sizes.items())
    raise fail(
        name,
        sizes[name],
        f"small enough that task={task!r} fits in memory: with {given}{context} its arrays "
        f"take ~{gib_text(total)}, more than this machine's {have / 2**30:,.1f} GiB",
    )
