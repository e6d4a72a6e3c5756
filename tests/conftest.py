"""Shared test setup: kept minimal on purpose."""

import os

# Numba's OpenMP threading layer spins its idle workers by default; on a machine shared with
# other jobs that turns a tiny parallel kernel call from ~0.1 ms into ~15 ms. Passive waiting
# changes no result (training is bit-identical on any thread count), only the wall time.
# Must be set before the first parallel kernel runs; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
