"""The vectorizing exp/expm1/log1p of the kernels (simulator.kernels.elementary) and the softplus
built on them against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from simulator.kernels.activations import softplus
from simulator.kernels.arrays import flat
from simulator.kernels.elementary import exp_nonpositive, expm1_nonpositive, log1p_unit


def _elementwise(fn):
    """A compiled loop ``out[k] = fn(x[k])`` (fn: a function Numba compiles)."""

    @njit(cache=False)
    def apply(x, out):
        for k in range(x.shape[0]):
            out[k] = fn(x[k])

    return apply


_apply_exp = _elementwise(exp_nonpositive)
_apply_expm1 = _elementwise(expm1_nonpositive)
_apply_log1p = _elementwise(log1p_unit)
_apply_softplus = _elementwise(softplus)


def _grid(dtype: str) -> np.ndarray:
    dense = -np.linspace(0, 80, 400001)
    tiny = -np.logspace(-30 if dtype == "float32" else -300, 1, 20001)
    return np.concatenate([dense, tiny, [0.0, -0.0]]).astype(dtype)


def _ulps(got: np.ndarray, exact: np.ndarray, dtype: str) -> np.ndarray:
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exp_is_within_two_ulp_where_the_result_is_normal(dtype):
    x = _grid(dtype)
    got = np.empty_like(x)
    _apply_exp(x, got)
    exact = np.exp(x.astype(np.float64))
    normal = exact > np.finfo(dtype).tiny * 2**10
    assert _ulps(got, exact, dtype)[normal].max() <= 2
    # below the dtype's normal range the result stays tiny (clamped), never negative or NaN
    assert np.all((got[~normal] >= 0) & (got[~normal] <= np.finfo(dtype).tiny * 2**11))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_expm1_is_within_two_ulp_relative_down_to_tiny_arguments(dtype):
    x = _grid(dtype)
    got = np.empty_like(x)
    _apply_expm1(x, got)
    exact = np.expm1(x.astype(np.float64))
    assert _ulps(got, exact, dtype).max() <= 2
    assert np.all(got >= -1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_stays_nan_and_minus_infinity_is_the_limit(dtype):
    x = np.array([np.nan, -np.inf], dtype=dtype)
    e, m = np.empty_like(x), np.empty_like(x)
    _apply_exp(x, e)
    _apply_expm1(x, m)
    assert np.isnan(e[0]) and np.isnan(m[0])
    assert 0 <= e[1] < 1e-37 and m[1] == -1


def test_flat_is_a_view_in_row_major_order():
    @njit(cache=False)
    def fill(a):
        f = flat(a)
        for k in range(f.shape[0]):
            f[k] = k

    a = np.zeros((3, 4, 5))
    fill(a[1])  # a C-contiguous slice
    np.testing.assert_array_equal(a[1].ravel(), np.arange(20))
    assert not a[0].any() and not a[2].any()


def _unit_grid(dtype: str) -> np.ndarray:
    dense = np.linspace(0, 1, 400001)
    tiny = np.logspace(-44 if dtype == "float32" else -320, 0, 20001)
    return np.concatenate([dense, tiny, [0.0, 1.0]]).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log1p_is_within_four_ulp_on_the_unit_interval(dtype):
    x = _unit_grid(dtype)
    got = np.empty_like(x)
    _apply_log1p(x, got)
    exact = np.log1p(x.astype(np.float64))  # float64 log1p: within an ulp of float64
    ulps = _ulps(got, exact, dtype)
    assert ulps[exact > 0].max() <= 4  # measured: 3.2 float32, 3.0 float64
    assert np.all(got[x == 0] == 0)  # log1p(0) = 0 exactly; tiny e: log1p(e) = e
    small = (x > 0) & (x < np.finfo(dtype).eps / 4)
    assert np.array_equal(got[small], x[small])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softplus_is_within_a_few_ulp_of_numpy_logaddexp(dtype):
    lim = 80.0 if dtype == "float32" else 700.0
    z = np.concatenate([np.linspace(-lim, lim, 400001), -np.logspace(-30, 1, 2001),
                        np.logspace(-30, 1, 2001), [0.0, -0.0]]).astype(dtype)  # fmt: skip
    got = np.empty_like(z)
    _apply_softplus(z, got)
    exact = np.logaddexp(0.0, z.astype(np.float64))
    normal = exact > np.finfo(dtype).tiny * 2**10
    assert _ulps(got, exact, dtype)[normal].max() <= 4
    assert np.all(got >= 0) and np.all(np.isfinite(got))
    # far below 0 the exponential is taken at the kernels' bound: a tiny value, never more
    assert np.all(got[~normal] <= np.finfo(dtype).tiny * 2**11)
