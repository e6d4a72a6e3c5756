"""Kernels that replace NumPy reductions add in NumPy's order, so they report the same bits.

Oracles: ``np.sum`` / ``np.mean`` themselves. Also the kernels built on that order (the
novelty of the evolution scenario's detector, the mutation noise of imitation) against the
NumPy code they replaced, on 1 and 2 threads.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

from simulator.kernels import social as S
from simulator.kernels.numpy_sum import BUFFER, buffered_sum, pairwise_sum
from simulator.kernels.random import fill_normals
from simulator.social import MUTATION, add_noise_rows

LENGTHS = [*range(1, 300), 383, 384, 385, 1023, 1024, 1025, 4099, BUFFER - 1, BUFFER, BUFFER + 1]
LONG = [3 * BUFFER + 17, 100_003]


@njit
def _row_sums(x, out):
    for r in range(x.shape[0]):
        out[r] = pairwise_sum(x[r], 0, x.shape[1])


@njit
def _row_means64(x, cast, out):
    n = x.shape[1]
    row = np.empty(n)
    for r in range(x.shape[0]):
        for c in range(n):
            row[c] = x[r, c]
        out[r] = (buffered_sum(row, 0, n) if cast else pairwise_sum(row, 0, n)) / n


def _values(rng, shape, dtype):
    """Numbers of many magnitudes and both signs: any change of order shows in the last bits."""
    return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-4, 4, shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pairwise_sum_is_numpys_sum_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    for n in LENGTHS + LONG:
        x = _values(rng, (2, n), dtype)
        got = np.empty(2, dtype=dtype)
        _row_sums(x, got)
        assert np.array_equal(got, x.sum(axis=-1)), n
        assert np.array_equal(got, [np.sum(x[0]), np.sum(x[1])]), n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float64_means_are_numpys_bit_for_bit_with_and_without_the_cast(dtype):
    """np.mean(x, axis=-1, dtype=float64): a float32 x is cast through buffers of BUFFER numbers
    (buffered_sum), a float64 x summed as one (pairwise_sum); the many-row case too."""
    rng = np.random.default_rng(1)
    cast = dtype != np.float64
    for n in LENGTHS + LONG:
        x = _values(rng, (2, n), dtype)
        got = np.empty(2)
        _row_means64(x, cast, got)
        assert np.array_equal(got, x.mean(axis=-1, dtype=np.float64)), n
    for shape in [(2000, 256), (300, 1600), (40, 9000), (5, 3 * BUFFER)]:
        x = _values(rng, shape, dtype) ** 2
        got = np.empty(shape[0])
        _row_means64(x, cast, got)
        assert np.array_equal(got, x.mean(axis=1, dtype=np.float64)), shape


def test_a_reordered_sum_would_be_caught():
    """The oracle sees the order: a plain left-to-right sum differs from NumPy's in the last
    bits on these numbers (so the equalities above are not vacuous)."""
    x = _values(np.random.default_rng(2), 1000, np.float32)
    plain = np.float32(0.0)
    for v in x:
        plain = np.float32(plain + v)
    assert plain != x.sum()


def _novelty_numpy(preds, indptr, indices):
    """The detector's novelty as NumPy computed it before the kernel (the oracle): the
    neighbours' mean summed in float64 in CSR order and rounded to preds' dtype (what
    neighbour_mean computes; written out here), then NumPy's squares and float64 mean."""
    mean = preds.copy()  # an isolated agent's mean is its own row
    for i in range(preds.shape[0]):
        neighbours = indices[indptr[i] : indptr[i + 1]]
        if neighbours.size:
            acc = np.zeros(preds.shape[1])
            for j in neighbours:
                acc += preds[j]
            mean[i] = acc / neighbours.size
    kernel_mean = np.empty_like(preds)
    S.neighbour_mean(preds, indptr, indices, kernel_mean)
    assert np.array_equal(kernel_mean, mean)
    return np.sqrt(((preds - mean) ** 2).mean(axis=1, dtype=np.float64))


def _random_csr(rng, P, isolated):
    """A random symmetric graph in CSR form with the agents ``isolated`` left alone."""
    A = np.triu(rng.random((P, P)) < 4.0 / P, 1)
    A = A | A.T
    A[isolated, :] = False
    A[:, isolated] = False
    indptr = np.concatenate([[0], np.cumsum(A.sum(axis=1))]).astype(np.int64)
    return indptr, np.flatnonzero(A) % P


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_novelty_kernel_is_the_numpy_formula_bit_for_bit(dtype, threads):
    rng = np.random.default_rng(3)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for P, n in [(1, 5), (7, 1), (150, 256), (300, 37), (70, BUFFER + 300)]:
            indptr, indices = _random_csr(rng, P, isolated=[0] if P > 1 else [])
            preds = _values(rng, (P, n), dtype)
            got = np.empty(P)
            S.novelty_rms(preds, indptr, indices, dtype != np.float64, got)
            assert np.array_equal(got, _novelty_numpy(preds, indptr, indices)), (P, n)
            if P > 1:
                assert got[0] == 0.0  # isolated: its own mean
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_mutation_noise_is_the_numpy_formula_bit_for_bit(dtype, threads):
    """add_noise_rows (one kernel) against the fill-scale-round-add it replaced, for more rows
    than one parallel block holds; rows not named are untouched."""
    rng = np.random.default_rng(4)
    key, step, scale = (123, 456), 7, 0.013
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for P, k in [(5, 1), (300, 150), (1000, 999)]:
            params = _values(rng, (P, 41), dtype)
            rows = rng.permutation(P)[:k]
            want = params.copy()
            noise = fill_normals(np.empty((k, 41)), key, step, MUTATION, 0)
            want[rows] += (noise * scale).astype(dtype)
            add_noise_rows(params, rows, scale, key, step)
            assert np.array_equal(params, want), (P, k)
    finally:
        numba.set_num_threads(before)
