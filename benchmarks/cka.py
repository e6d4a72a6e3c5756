"""The mean-CKA measure beside the NumPy computation a user would write, interleaved.

``python -m benchmarks.cka [--threads 1,2] [--seconds 0.3] [--rounds 5]``

At the shapes the standard measures use at 10,000 agents (``CKA_PAIRS`` = 128 pairs among the
``CKA_AGENTS`` = 64 panel agents; 256 probe items for gossip_learning, 400 for
social_learning; 16 hidden units; float32), :func:`simulator.metrics.mean_cka` is timed
against a NumPy version of the same definition (float64: centre the agents used, then
``np.matmul`` of the (h, n) x (n, h) pairs in one batch, norms from each agent's Gram matrix).
Both draw the same pairs. Each figure is the best call over ``--seconds`` of repetitions,
the two alternated for ``--rounds`` rounds (a shared machine slows some calls, never speeds
one up); the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

import numba
import numpy as np

from simulator import metrics
from simulator.measures import CKA_AGENTS, CKA_PAIRS
from simulator.metrics._checks import sample_pairs

SHAPES = {"gossip_learning": (CKA_AGENTS, 256, 16), "social_learning": (CKA_AGENTS, 400, 16)}


def numpy_mean_cka(hidden: np.ndarray, max_pairs: int, rng: np.random.Generator) -> float:
    """mean_cka's definition in batched NumPy (float64), constant agents counted as 0."""
    I, J, _ = sample_pairs(hidden.shape[0], max_pairs, rng)
    used, inverse = np.unique(np.concatenate([I, J]), return_inverse=True)
    X = hidden[used].astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    Xt = X.transpose(0, 2, 1)
    norms = np.sqrt(((Xt @ X) ** 2).sum(axis=(1, 2)))
    norms[
        (X**2).sum(axis=(1, 2)) <= 1e-20 * (hidden[used].astype(np.float64) ** 2).sum(axis=(1, 2))
    ] = 0
    a, b = inverse[: I.size], inverse[I.size :]
    hsic = ((Xt[a] @ X[b]) ** 2).sum(axis=(1, 2))
    den = norms[a] * norms[b]
    ok = den > 0
    return float(np.minimum(1.0, hsic[ok] / den[ok]).sum()) / I.size


def _seeded(fn: Callable[..., float], hidden: np.ndarray) -> float:
    """``fn(hidden, CKA_PAIRS, rng)`` with the same seeded pairs at every call."""
    return fn(hidden, CKA_PAIRS, np.random.default_rng(1))


def best_call(fn: Callable[[], float], seconds: float) -> float:
    """Best time of one call of ``fn`` over ``seconds`` of repetitions."""
    fn()
    best, end = np.inf, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, shape in SHAPES.items():
        rng = np.random.default_rng(0)
        hidden = np.tanh(rng.standard_normal(shape) + rng.standard_normal((shape[0], 1, shape[2])))
        hidden = hidden.astype(np.float32)
        ours = partial(_seeded, metrics.mean_cka, hidden)
        peer = partial(_seeded, numpy_mean_cka, hidden)
        assert abs(ours() - peer()) <= 1e-12 * abs(peer())
        for threads in (int(t) for t in args.threads.split(",")):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            t_ours = t_peer = np.inf
            for _ in range(args.rounds):  # alternated: both see the same spells of load
                t_ours = min(t_ours, best_call(ours, args.seconds))
                t_peer = min(t_peer, best_call(peer, args.seconds))
            print(
                f"{name} {shape} float32, {threads} thread(s): mean_cka {t_ours * 1e3:.3f} ms, "
                f"NumPy {t_peer * 1e3:.3f} ms ({t_peer / t_ours:.1f}x); "
                f"load {os.getloadavg()[0]:.2f}"
            )
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
