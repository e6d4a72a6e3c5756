"""Input checks, random streams and chunking shared by the metrics.

Every public metric validates its arrays here, so a bad shape or dtype becomes a
:class:`~simulator.config.ParameterError` naming the argument, never a Numba typing error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from simulator.config import ParameterError, as_array, check_int, fail

DEFAULT_SEED = 0
# Rows per chunk when a float64 temporary of a large array is needed (~32 MiB per chunk).
CHUNK_ELEMENTS = 1 << 22
# What the squared measures (distances, errors, dispersions) allow: values whose squares and
# sums of squares fit in float64 (its largest value is ~1.8e308).
SQUARES_FIT = "small enough for its squared distances to fit in float64 (|values| below ~1e150)"


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
    a = as_array(name, x)
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
    a = as_array("params", params)
    if a.dtype.kind not in "fiub":
        raise fail("params.dtype", str(a.dtype), "a real number type")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise fail("params.shape", a.shape, "(P, n_params) with P >= 1 and n_params >= 1")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def require_finite(name: str, *sums: Any, values: np.ndarray | None = None) -> None:
    """Raise the error of :func:`real_array` if a sum over the values of ``name`` is not finite
    (a NaN or inf anywhere makes the float64 sums over it NaN or inf).

    With ``values`` (the array summed), a sum that overflowed although every value is finite
    raises :func:`too_large` instead; ``values`` is read only then (a rare path).
    """
    for s in sums:
        if not np.all(np.isfinite(s)):
            if values is not None and all_finite(values):
                raise too_large(name, values)
            raise fail(name, "an array with NaN or inf", "finite everywhere")


def all_finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite: its max and min (two passes, no temporary)."""
    return a.size == 0 or bool(np.isfinite(a.max()) and np.isfinite(a.min()))


def max_abs(a: np.ndarray) -> float:
    """``max |a|`` as a float (two passes, no temporary array); 0.0 for an empty array."""
    return float(max(a.max(), -a.min())) if a.size else 0.0


def too_large(name: str, values: np.ndarray, allowed: str = SQUARES_FIT) -> ParameterError:
    """The error for finite ``values`` of argument ``name`` too large for a float64 result."""
    return fail(name, f"values up to {max_abs(values):.3g} in absolute value (too large)", allowed)


def unit_scale(a: np.ndarray) -> float:
    """The power of two ``s`` that brings ``max |a|`` into [0.5, 1): multiplying by it is exact
    (barring values it makes subnormal, 2^-1022 below the largest). At most 2^1023 (the largest
    float64 power of two: a subnormal ``max |a|`` comes to at least 2^-52). 1.0 for an all-zero
    array. For the rare paths of scale-free measures (a pass over ``a``)."""
    m = max_abs(a)
    return math.ldexp(1.0, min(1023, -math.frexp(m)[1])) if 0.0 < m < math.inf else 1.0


def preds_array(preds: Any, name: str = "preds") -> np.ndarray:
    """Outputs on a probe set, (P, n_probe, d_out)."""
    return real_array(name, preds, "(P, n_probe, d_out), every size >= 1", 3)


def int_labels(name: str, x: Any, n: int | None = None) -> np.ndarray:
    """A 1-D integer array (length ``n`` if given, else at least 1) as int64."""
    a = as_array(name, x)
    size_ok = a.ndim == 1 and (a.shape[0] >= 1 if n is None else a.shape[0] == n)
    if not size_ok or a.dtype.kind not in "iub":
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
