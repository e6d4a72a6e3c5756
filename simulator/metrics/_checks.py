"""Input checks, random streams and chunking shared by the metrics.

Every public metric validates its arrays here, so a bad shape or dtype becomes a
:class:`~simulator.config.ParameterError` naming the argument, never a Numba typing error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from simulator.config import check_int, fail

DEFAULT_SEED = 0
# Rows per chunk when a float64 temporary of a large array is needed (~32 MiB per chunk).
CHUNK_ELEMENTS = 1 << 22


def get_rng(rng: Any) -> np.random.Generator:
    """``rng`` as a Generator: None -> seed 0, an int seed, or a Generator used as is."""
    if rng is None:
        return np.random.default_rng(DEFAULT_SEED)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise fail("rng", rng, "a numpy.random.Generator, a non-negative int seed, or None (seed 0)")


def real_array(name: str, x: Any, shape_text: str, ndim: int, min_rows: int = 1) -> np.ndarray:
    """``x`` as a finite float array with ``ndim`` dimensions (ints/bools become float64).

    Float32/float64 input is not copied. ``shape_text`` describes the allowed shape.
    """
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise fail(f"{name}.dtype", str(a.dtype), "a real number type")
    if a.ndim != ndim or a.shape[0] < min_rows or any(s < 1 for s in a.shape[1:]):
        raise fail(f"{name}.shape", a.shape, shape_text)
    if a.dtype.kind != "f" or a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise fail(name, "an array with NaN or inf", "finite everywhere")
    return a


def params_array(params: Any) -> np.ndarray:
    """Parameters (P, n_params), P >= 1."""
    return real_array("params", params, "(P, n_params) with P >= 1 and n_params >= 1", 2)


def params_unchecked(params: Any) -> np.ndarray:
    """Parameters (P, n_params) checked for shape and dtype only (no pass over the values):
    for kernels whose float64 sums reveal any NaN or inf, checked afterwards with
    :func:`require_finite`."""
    a = np.asarray(params)
    if a.dtype.kind not in "fiub":
        raise fail("params.dtype", str(a.dtype), "a real number type")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise fail("params.shape", a.shape, "(P, n_params) with P >= 1 and n_params >= 1")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def require_finite(name: str, *sums: Any) -> None:
    """Raise the error of :func:`real_array` if a sum over the values of ``name`` is not finite
    (a NaN or inf anywhere makes the float64 sums over it NaN or inf)."""
    for s in sums:
        if not np.all(np.isfinite(s)):
            raise fail(name, "an array with NaN or inf", "finite everywhere")


def preds_array(preds: Any, name: str = "preds") -> np.ndarray:
    """Outputs on a probe set, (P, n_probe, d_out)."""
    return real_array(name, preds, "(P, n_probe, d_out), every size >= 1", 3)


def int_labels(name: str, x: Any, n: int | None = None) -> np.ndarray:
    """A 1-D integer array (length ``n`` if given) as int64."""
    a = np.asarray(x)
    if a.ndim != 1 or (n is not None and a.shape[0] != n) or a.dtype.kind not in "iub":
        want = f"length {n}" if n is not None else "length >= 1"
        raise fail(f"{name}", f"array of dtype {a.dtype} and shape {a.shape}", f"1-D ints, {want}")
    return a.astype(np.int64)


def check_population(pop: Any, name: str = "pop") -> Any:
    """``pop`` if it is a :class:`simulator.Population` (the measures read its arrays)."""
    from simulator.population import Population

    if not isinstance(pop, Population):
        raise fail(name, f"a {type(pop).__name__}", "a simulator.Population")
    return pop


def check_agent(name: str, value: Any, n_agents: int) -> int:
    """An agent index in [0, n_agents)."""
    return check_int(name, value, 0, n_agents - 1)


def row_chunks(a: np.ndarray) -> Iterator[np.ndarray]:
    """Consecutive row blocks of ``a`` as float64, each about ``CHUNK_ELEMENTS`` values."""
    per_row = max(1, int(np.prod(a.shape[1:])))
    step = max(1, CHUNK_ELEMENTS // per_row)
    for start in range(0, a.shape[0], step):
        yield a[start : start + step].astype(np.float64)


def centered_sq_sum(a: np.ndarray, center: np.ndarray) -> float:
    """sum over rows of ``||a_i - center||^2`` in float64, without a full float64 copy of ``a``."""
    total = 0.0
    for block in row_chunks(a):
        block -= center
        total += float(np.einsum("i,i->", block.ravel(), block.ravel()))
    return total


def sample_pairs(
    n: int, max_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Index pairs ``i < j``: all of them if there are at most ``max_pairs``, else a sample.

    Returns ``(I, J, exact)``. The sample draws ``max_pairs`` pairs uniformly from the
    ``n (n - 1) / 2`` distinct unordered pairs, independently (with replacement).
    """
    if n * (n - 1) // 2 <= max_pairs:
        I, J = np.triu_indices(n, 1)
        return I.astype(np.int64), J.astype(np.int64), True
    I = rng.integers(0, n, size=max_pairs)
    J = rng.integers(0, n - 1, size=max_pairs)
    J += J >= I
    return np.minimum(I, J), np.maximum(I, J), False
