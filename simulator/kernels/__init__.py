"""Numba kernels: arrays in, arrays out (see ARCHITECTURE in the docs).

Importing this package runs :func:`simulator.kernels.threads.configure` once: it loads the TBB
runtime of the ``tbb`` package so that Numba's parallel kernels run on TBB's work-stealing
threading layer (robust on a busy machine). ``NUMBA_THREADING_LAYER=omp`` opts out. It also
locks Numba's on-disk kernel cache across processes (:mod:`simulator.kernels.cache_lock`), so
that processes compiling at once (a sweep's workers) cannot mix up each other's cache entries.
"""

from simulator.kernels.cache_lock import install as _lock_cache
from simulator.kernels.threads import configure as _configure

_configure()
_lock_cache()
