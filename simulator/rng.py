"""One seed -> named, independent random streams. The only place seeds become generators.

Streams are derived with ``numpy.random.SeedSequence(seed, spawn_key=(k,))`` where ``k`` is a fixed
number per name, so adding a stream never changes the numbers another stream produces.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("graph", "init", "data", "social", "measure", "schedule", "mutation")


def _sequence(seed: int, name: str) -> np.random.SeedSequence:
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r}; streams are {STREAMS}")
    return np.random.SeedSequence(seed, spawn_key=(STREAMS.index(name),))


def stream(seed: int, name: str) -> np.random.Generator:
    """A generator for the stream ``name`` of ``seed`` (always the same numbers)."""
    return np.random.default_rng(_sequence(seed, name))


def stream_seed(seed: int, name: str) -> int:
    """An int seed (< 2**31) for libraries that take one (networkx, tasks)."""
    return int(_sequence(seed, name).generate_state(1)[0] % (2**31 - 1))


def philox_key(seed: int, name: str) -> tuple[int, int]:
    """The Philox4x32 key (two 32-bit words) of the stream ``name`` of ``seed``, for the
    counter-based kernels (:mod:`simulator.kernels.random`): their numbers are computed from
    (key, index, row, step, purpose), not drawn in sequence, so they are the same on any number
    of threads and need no state in a checkpoint."""
    k0, k1 = _sequence(seed, name).generate_state(2, dtype=np.uint32)
    return int(k0), int(k1)


def coerce_seed(rng: object) -> int:
    """A model's seed as an int: ints and digit strings are used as given (a UI may send "42");
    None draws fresh entropy (recorded, so the run can be repeated)."""
    if rng is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(rng, str) and rng.strip().lstrip("-").isdigit():
        rng = int(rng)
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    from simulator.config import fail

    raise fail("rng", rng, "a non-negative integer seed (or None for a fresh one)")
