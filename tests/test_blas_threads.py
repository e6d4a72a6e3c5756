"""BLAS runs single-threaded inside the kernels' parallel loop, and is restored afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import Population
from simulator.kernels.blas_threads import _blas_libraries, single_threaded_blas


@pytest.fixture
def two_blas_threads():
    libs = _blas_libraries()
    if not libs:
        pytest.skip("threadpoolctl sees no BLAS library")
    before = [lib.get_num_threads() for lib in libs]
    for lib in libs:
        lib.set_num_threads(2)
    yield libs
    for lib, n in zip(libs, before, strict=True):
        lib.set_num_threads(n)


def test_single_threaded_inside_and_restored_after(two_blas_threads):
    with single_threaded_blas():
        assert [lib.get_num_threads() for lib in two_blas_threads] == [1] * len(two_blas_threads)
    assert [lib.get_num_threads() for lib in two_blas_threads] == [2] * len(two_blas_threads)
    with single_threaded_blas(active=False):
        assert [lib.get_num_threads() for lib in two_blas_threads] == [2] * len(two_blas_threads)


def test_restored_even_when_the_kernel_call_fails(two_blas_threads):
    pop = Population(4, (64, 64, 10), dtype="float64", seed=0)
    X = np.ones((4, 64, 64))
    X[1, 0, 0] = np.nan
    with pytest.raises(ValueError):
        pop.train_step(X, np.zeros((4, 64, 10)))
    assert [lib.get_num_threads() for lib in two_blas_threads] == [2] * len(two_blas_threads)


def test_uses_blas_follows_the_layer_sizes():
    assert Population(2, (64, 64, 10))._uses_blas(64)
    assert not Population(2, (8, 16, 1))._uses_blas(32)
