"""Keep BLAS single-threaded while a population kernel calls it.

The kernels call BLAS (gemm, for layers of at least ``BLAS_MIN_MACS`` multiply-adds) from
inside their own parallel loop over agents. An OpenBLAS allowed several threads then sends each
of those small calls through its thread pool and locks: on this project's 2-core machines,
64x64 gemms from two Numba threads ran at 109 GFLOP/s with ``OPENBLAS_NUM_THREADS=2`` against
145 GFLOP/s with 1 (``benchmarks/README.md``). :func:`single_threaded_blas` sets every loaded
BLAS to one thread for the duration of a call and restores the previous counts afterwards (a
few microseconds: direct calls into each library, through threadpoolctl's controllers).

Two Python threads running kernels at once may interleave set and restore; that can only cost
speed, never change a result (BLAS threading does not change what a gemm returns here).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_libraries: list[Any] | None = None


def _blas_libraries() -> list[Any]:
    """threadpoolctl's controllers of the loaded BLAS libraries (found once)."""
    global _libraries
    if _libraries is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (Numba's BLAS: load it before looking)
            from threadpoolctl import ThreadpoolController

            controllers = ThreadpoolController().lib_controllers
            _libraries = [lib for lib in controllers if lib.user_api == "blas"]
        except Exception:  # no threadpoolctl or an unknown BLAS: leave threads as they are
            _libraries = []
    return _libraries


@contextmanager
def single_threaded_blas(active: bool = True) -> Iterator[None]:
    """Within the block, every loaded BLAS uses one thread (when ``active``)."""
    changed = []
    if active:
        for lib in _blas_libraries():
            threads = lib.get_num_threads()
            if threads is not None and threads > 1:
                lib.set_num_threads(1)
                changed.append((lib, threads))
    try:
        yield
    finally:
        for lib, threads in changed:
            lib.set_num_threads(threads)
