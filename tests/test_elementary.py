"""The vectorizing exp/expm1 of the kernels (simulator.kernels.elementary) against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from simulator.kernels.arrays import flat
from simulator.kernels.elementary import exp_nonpositive, expm1_nonpositive


@njit(cache=False)
def _apply_exp(x, out):
    for k in range(x.shape[0]):
        out[k] = exp_nonpositive(x[k])


@njit(cache=False)
def _apply_expm1(x, out):
    for k in range(x.shape[0]):
        out[k] = expm1_nonpositive(x[k])


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
