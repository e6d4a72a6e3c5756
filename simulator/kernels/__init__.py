"""Numba kernels: arrays in, arrays out (see ARCHITECTURE in the docs).

Importing this package runs :func:`simulator.kernels.threads.configure` once: it loads the TBB
runtime of the ``tbb`` package so that Numba's parallel kernels run on TBB's work-stealing
threading layer (robust on a busy machine). ``NUMBA_THREADING_LAYER=omp`` opts out.
"""

from simulator.kernels.threads import configure as _configure

_configure()
