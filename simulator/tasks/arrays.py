"""Your own data: every agent learns from arrays you give (``task="arrays"``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from simulator.config import ParameterError, check_int, fail
from simulator.kernels import data as D
from simulator.tasks.base import Task, _float_dtype, check_task_memory, one_hot

__all__ = ["ArrayTask"]

_NPZ_KEYS = ("X", "Y", "counts", "probe_X", "probe_Y")


class ArrayTask(Task):
    """Agents learn from fixed data sets given as arrays (or an ``.npz`` file).

    Parameters
    ----------
    X : float array (n_agents, N, d_in), or (M, d_in) with ``counts``
        Agent ``i``'s inputs are ``X[i]`` (or its ``counts[i]`` rows of the flat ``X``, in agent
        order: rows ``sum(counts[:i])`` up to ``sum(counts[:i + 1])``).
    Y : array shaped like X's first axes
        Float targets (n_agents, N, d_out) / (M, d_out): regression (linear output, MSE); or
        integer class labels (n_agents, N) / (M,): classification (softmax output,
        cross-entropy; ``Y`` of a batch is one-hot).
    counts : int array (n_agents,), optional
        Rows per agent of a flat ``X`` (agents may hold different amounts: see
        :func:`simulator.tasks.split_dataset`). Every count must be >= 1.
    path : str or Path, optional
        An ``.npz`` file holding ``X``, ``Y`` and optionally ``counts``, ``probe_X``,
        ``probe_Y`` (instead of passing the arrays).
    probe_X, probe_Y : arrays (n_probe, d_in) and (n_probe, d_out) or labels (n_probe,), optional
        The probe of the function-space measures and its truth (for example a held-out test
        set). Default: ``n_probe`` rows drawn without replacement from all agents' data pooled
        (seeded), so the probe loss is then an in-sample (training) loss.
    n_classes : int, optional
        Number of classes for integer labels (default: largest label + 1); refused when the
        one-hot targets would not fit in this machine's memory.
    n_probe : int
        Size of the default probe (at most the number of rows).

    Minibatches (``batch_size >= 1``) draw rows uniformly with replacement from the agent's own
    data, from the counter-based stream of (seed, step, agent). ``batch_size=0`` is the full
    batch: every agent's whole data set, the same arrays every step (all agents need the same
    number of rows ``N``).

    Data whose magnitude exceeds :func:`simulator.tasks.base.data_limit` of the dtype asked
    for (~1.8e16 for float32) are refused when that dtype is first drawn.
    """

    name = "arrays"
    full_batch = True

    def __init__(
        self,
        n_agents: int,
        X: Any = None,
        Y: Any = None,
        counts: Any = None,
        path: Any = None,
        probe_X: Any = None,
        probe_Y: Any = None,
        n_classes: int | None = None,
        n_probe: int = 256,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        if path is not None:
            if any(v is not None for v in (X, Y, counts, probe_X, probe_Y)):
                raise fail("task_params", "path with arrays", "either 'path' or the arrays")
            X, Y, counts, probe_X, probe_Y = _load_npz(path)
        settings = {"X": _describe(X), "Y": _describe(Y), "counts": _describe(counts)}
        settings |= {"path": None if path is None else str(path), "n_classes": n_classes}
        settings |= {"probe_X": _describe(probe_X), "probe_Y": _describe(probe_Y)}
        settings["n_probe"] = n_probe
        super().__init__(n_agents, seed, communities, settings)
        X, Y, self.counts = _check_data(X, Y, counts, self.n_agents)
        self.d_in = X.shape[1]
        self._X = X
        self._set_targets(Y, n_classes)
        self._set_probe(probe_X, probe_Y, check_int("n_probe", n_probe, low=1))
        self._top = {"X": _top(self._X, self.probe_X), "Y": _top(self._Y, self.probe_Y)}
        self._check_range(np.float64)
        self.offsets = np.zeros(self.n_agents + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.offsets[1:])
        self._cast: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def _set_targets(self, Y: np.ndarray, n_classes: Any) -> None:
        if Y.dtype.kind in "iu":
            self.kind, self.output, self.loss = "classification", "softmax", "cross_entropy"
            top = int(Y.max()) + 1
            k = max(top, 2) if n_classes is None else check_int("n_classes", n_classes, low=2)
            if top > k or Y.min() < 0:
                raise fail("task_params['Y']", f"labels in [{Y.min()}, {Y.max()}]", f"[0, {k})")
            rows = len(Y)  # one-hot targets and the default probe's, float64, and a float32 copy
            given = " (the largest label + 1)" if n_classes is None else ""
            context = f"{given} and {rows:,} rows"
            check_task_memory(
                self.name, lambda n_classes: 20 * rows * n_classes, {"n_classes": k}, context
            )
            self.n_classes = self.d_out = k
            self._Y = one_hot(Y, k)
        else:
            if n_classes is not None:
                raise fail("n_classes", n_classes, "None for float targets (give integer labels)")
            self._Y = Y
            self.d_out = Y.shape[1]

    def _set_probe(self, probe_X: Any, probe_Y: Any, n_probe: int) -> None:
        if (probe_X is None) != (probe_Y is None):
            raise fail("probe_X, probe_Y", "only one of them", "both or neither")
        if probe_X is None:
            m = self._X.shape[0]
            rows = np.sort(self._stream(0).choice(m, min(n_probe, m), replace=False))
            self.probe_X, truth = self._X[rows], self._Y[rows]
        else:
            self.probe_X = _floats("probe_X", probe_X, 2, (None, self.d_in))
            truth = self._probe_truth(probe_Y, self.probe_X.shape[0])
        self.probe_Y = np.ascontiguousarray(truth)[None]
        if self.kind == "classification":
            self.probe_labels = self.probe_Y[0].argmax(-1)[None].astype(np.int64)

    def _probe_truth(self, probe_Y: Any, n: int) -> np.ndarray:
        y = _array("probe_Y", probe_Y)
        if self.kind == "classification":
            if y.dtype.kind not in "iu" or y.shape != (n,):
                raise fail("probe_Y", f"{y.dtype} {y.shape}", f"integer labels of shape ({n},)")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise fail("probe_Y", f"labels in [{y.min()}, {y.max()}]", f"[0, {self.n_classes})")
            return one_hot(y, self.n_classes)
        return _floats("probe_Y", y, 2, (n, self.d_out))

    def _largest(self, limit: float) -> list[tuple[str, float, float]]:
        """The largest magnitude of the inputs (data and probe) and of the float targets."""
        return [(f"max |task_params[{k!r}]|", v, limit) for k, v in self._top.items()]

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        data_X, data_Y = self._data(X.dtype)
        D.arrays_sample(X, Y, *self._k, step, data_X, data_Y, self.offsets)

    def _data(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The pooled data (M, d) in ``dtype`` (cast once and kept)."""
        if dtype == np.float64:
            return self._X, self._Y
        if dtype not in self._cast:
            self._cast[dtype] = (self._X.astype(dtype), self._Y.astype(dtype))
        return self._cast[dtype]

    def full(self, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Every agent's whole data: X (P, N, d_in), Y (P, N, d_out) in ``dtype`` (views of the
        stored data, the same arrays every call: do not modify them)."""
        N = int(self.counts[0])
        if np.any(self.counts != N):
            raise fail(
                "batch_size",
                0,
                ">= 1 here: the full batch needs the same number of rows per agent "
                f"(they hold {self.counts.min()} to {self.counts.max()})",
            )
        dt = _float_dtype(dtype)
        self._check_range(dt)
        data_X, data_Y = self._data(dt)
        P = self.n_agents
        return data_X.reshape(P, N, self.d_in), data_Y.reshape(P, N, self.d_out)

    def batch(self, step: int, batch_size: int, dtype: Any) -> tuple[np.ndarray, ...]:
        """Minibatch in reused buffers, or with ``batch_size=0`` the full data (:meth:`full`)."""
        if batch_size == 0:
            check_int("step", step, low=0)
            return self.full(dtype)
        return super().batch(step, batch_size, dtype)


def _describe(a: Any) -> Any:
    """A short description of an array for the run's config (not the data itself)."""
    if a is None:
        return None
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):  # ragged nested lists, say: the checks below say what
        return f"<{type(a).__name__}, not an array>"
    return f"<array {arr.dtype} {tuple(arr.shape)}>"


def _top(*arrays: np.ndarray) -> float:
    """Largest magnitude in ``arrays`` (float64, finite), without a temporary copy."""
    return max(max(float(a.max()), -float(a.min())) if a.size else 0.0 for a in arrays)


def _load_npz(path: Any) -> tuple:
    try:
        p = Path(path) if isinstance(path, str | os.PathLike) else None
    except TypeError:  # a PathLike whose __fspath__ gives bytes
        p = None
    if p is None:
        raise fail("task_params['path']", path, "a str or os.PathLike path of an .npz file")
    if not p.is_file():
        raise ParameterError(f"task_params['path']={str(path)!r}: no such file.")
    try:
        with np.load(p, allow_pickle=False) as f:
            missing = [k for k in ("X", "Y") if k not in f.files]
            extra = sorted(set(f.files) - set(_NPZ_KEYS))
            if missing or extra:
                raise ParameterError(
                    f"task_params['path']={str(path)!r} holds {sorted(f.files)}: it needs 'X' "
                    f"and 'Y' and may hold {', '.join(_NPZ_KEYS[2:])} (nothing else)."
                )
            return tuple(f[k] if k in f.files else None for k in _NPZ_KEYS)
    except ParameterError:
        raise
    except Exception as exc:
        raise ParameterError(
            f"task_params['path']={str(path)!r} could not be read as .npz: {exc}"
        ) from None


def _floats(name: str, a: Any, ndim: int, shape: tuple) -> np.ndarray:
    """``a`` as C-contiguous finite float64 of ``ndim`` dims matching ``shape`` (None: any)."""
    arr = _array(name, a)
    if arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise fail(name, f"an array of dtype {arr.dtype}", "a real (float or integer) array")
    ok = arr.ndim == ndim and all(s is None or s == t for s, t in zip(shape, arr.shape))
    if not ok:
        want = ", ".join("n" if s is None else str(s) for s in shape)
        raise fail(f"{name}.shape", arr.shape, f"({want})")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise fail(name, f"an array with {int(bad.sum())} NaN or inf values", "finite values")
    return arr


def _array(name: str, value: Any) -> np.ndarray:
    """``value`` as a NumPy array; nested lists of unequal lengths are refused by ``name``
    (NumPy cannot make them one array)."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        raise fail(
            name,
            f"nested sequences of unequal lengths ({type(value).__name__})",
            "an array: every row of the same length",
        ) from None


def _check_data(X: Any, Y: Any, counts: Any, P: int) -> tuple[np.ndarray, ...]:
    """Flat X (M, d_in) float64, Y (M, d_out) float64 or (M,) int64, counts int64 (P,)."""
    if X is None or Y is None:
        raise fail("task_params", "no X/Y", "'X' and 'Y' arrays (or 'path' to an .npz file)")
    Xa, Ya = _array("task_params['X']", X), _array("task_params['Y']", Y)
    if counts is None:
        Xa = _floats("task_params['X']", Xa, 3, (P, None, None))
        N = Xa.shape[1]
        if N < 1 or Xa.shape[2] < 1:
            raise fail("task_params['X'].shape", Xa.shape, f"({P}, N, d_in) with N, d_in >= 1")
        lead, c = (P, N), np.full(P, N, dtype=np.int64)
        Xa = Xa.reshape(P * N, -1)
    else:
        c = _array("task_params['counts']", counts)
        if c.shape != (P,) or c.dtype.kind not in "iu" or np.any(c < 1):
            raise fail("task_params['counts']", counts, f"integers >= 1 of shape ({P},)")
        Xa = _floats("task_params['X']", Xa, 2, (int(c.sum()), None))
        lead, c = (Xa.shape[0],), c.astype(np.int64)
    if Ya.dtype.kind == "u" and Ya.size and Ya.max() > np.iinfo(np.int64).max:
        raise fail("task_params['Y']", f"labels up to {Ya.max()}", "labels in [0, n_classes)")
    if Ya.dtype.kind in "iu" and Ya.shape == lead:
        return Xa, Ya.reshape(-1).astype(np.int64), c
    if Ya.dtype.kind in "iu" and Ya.ndim != len(lead) + 1:
        raise fail("task_params['Y'].shape", Ya.shape, f"{lead} integer labels")
    Ya = _floats("task_params['Y']", Ya, len(lead) + 1, (*lead, None))
    return Xa, Ya.reshape(Xa.shape[0], -1), c
