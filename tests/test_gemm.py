"""The register-tile products of the kernels (simulator.kernels.gemm) against NumPy.

Shapes cover full tiles, edge tiles (rows not a multiple of 4, columns not a multiple of the SIMD
width, single columns), empty sums, and operands addressed through offsets and strides inside
larger arrays (nothing outside the block may change).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.kernels.gemm import INIT_BIAS, INIT_ZERO, gemm, gemm_nt, transpose

SHAPES = [(64, 64, 64), (10, 64, 64), (64, 64, 10), (13, 37, 5), (1, 1, 1), (7, 3, 0), (5, 17, 3)]
TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-5)}


def _exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) @ b.astype(np.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("m", "n", "k"), SHAPES)
@pytest.mark.parametrize("init", [INIT_ZERO, INIT_BIAS])
@pytest.mark.parametrize("a_transposed", [False, True])
def test_gemm_matches_numpy(m, n, k, init, a_transposed, dtype):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(m + 3).astype(dtype)
    # C is a block at row 2, column 1 of a larger array: the rest must stay untouched
    big = rng.standard_normal((m + 4, n + 5)).astype(dtype)
    before = big.copy()
    c_off, ldc = 2 * big.shape[1] + 1, big.shape[1]
    if a_transposed:  # A read through a transposed layout: A[i, k] at a[k * m + i]
        a, sam, sak = np.ascontiguousarray(A.T), 1, m
    else:
        a, sam, sak = A, k, 1
    gemm(big, c_off, ldc, a, 0, sam, sak, B, 0, n, m, n, k, init, bias, 3)
    start = {
        INIT_ZERO: 0.0,
        INIT_BIAS: bias[3 : 3 + m, None].astype(np.float64),
    }[init]
    np.testing.assert_allclose(big[2 : 2 + m, 1 : 1 + n], start + _exact(A, B), **TOL[dtype])
    outside = np.ones(big.shape, dtype=bool)
    outside[2 : 2 + m, 1 : 1 + n] = False
    np.testing.assert_array_equal(big[outside], before[outside])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("m", "j", "n"), [(64, 64, 64), (64, 10, 64), (13, 7, 37), (1, 1, 1), (5, 3, 0), (6, 5, 3)]
)
def test_gemm_nt_matches_numpy(m, j, n, dtype):
    rng = np.random.default_rng(m * 1000 + j * 10 + n)
    A = rng.standard_normal((m, n)).astype(dtype)
    B = rng.standard_normal((j, n)).astype(dtype)
    C = np.full((m, j + 2), np.nan, dtype=dtype)
    gemm_nt(C, 1, j + 2, A, 0, n, B, 0, n, m, j, n)
    np.testing.assert_allclose(C[:, 1 : 1 + j], _exact(A, B.T), **TOL[dtype])
    assert np.isnan(C[:, 0]).all() and np.isnan(C[:, -1]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("rows", "cols"), [(64, 64), (64, 10), (10, 64), (13, 7), (1, 1), (0, 3), (16, 24)]
)
def test_transpose_is_exact(rows, cols, dtype):
    rng = np.random.default_rng(rows * 100 + cols)
    src = rng.standard_normal((rows, cols)).astype(dtype)
    dst = np.full((cols, rows), np.nan, dtype=dtype)
    transpose(dst, 0, rows, src, 0, cols, rows, cols)
    np.testing.assert_array_equal(dst, src.T)


def test_nan_and_inf_propagate():
    """No fast-math flags: a NaN or inf in an operand reaches the result it touches."""
    A = np.ones((4, 8), dtype=np.float32)
    B = np.ones((8, 16), dtype=np.float32)
    A[1, 3] = np.nan
    B[5, 2] = np.inf
    C = np.zeros((4, 16), dtype=np.float32)
    gemm(C, 0, 16, A, 0, 8, 1, B, 0, 16, 4, 16, 8, INIT_ZERO, C, 0)
    assert np.isnan(C[1]).all()
    assert np.isinf(C[[0, 2, 3], 2]).all()
    assert np.isfinite(np.delete(C[[0, 2, 3]], 2, axis=1)).all()
