"""Where one agent's training step spends its time: each phase of the kernel timed alone.

``python -m benchmarks.phases [--configs 8-16-1:32,64-64-10:64] [--dtypes float32,float64]``

For networks with one hidden layer (tanh) and a linear output (MSE), one thread: each phase
of ``simulator.kernels.mlp``'s step (input transposed and checked, each dense layer forward,
tanh, the output delta, each dense layer backward, tanh's derivative, the SGD update) runs in a
small Numba loop on one agent's buffers (in cache), and the whole step is timed on 1,000
agents through the register-tile kernel itself and through ``Population.train_step`` (which
trains networks at most 16 wide in SIMD lanes instead: ``simulator.kernels.lanes``). Every
figure is the best of many repetitions (a shared machine slows some repetitions, never speeds
one up), in nanoseconds per agent. The sum of the phases against the register-tile step
shows what is left (chunk set-up, calls, memory traffic).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numba
import numpy as np
from numba import njit

from simulator import Population
from simulator.kernels import mlp as K
from simulator.kernels.activations import IDENTITY, TANH
from simulator.kernels.optim import apply_update


def best_seconds(fn: Callable[[], None], calls: int, seconds: float) -> float:
    """Best time of one of ``calls`` calls made by ``fn``, over ``seconds`` of repetitions."""
    fn()
    best = np.inf
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


@njit(cache=True)
def _load(n, X, a0):
    for _ in range(n):
        K._load_input(X, 0, a0)


@njit(cache=True)
def _forward(n, row, w_off, b_off, a_in, z):
    for _ in range(n):
        K._dense_forward(row, w_off, b_off, a_in, z)


@njit(cache=True)
def _tanh(n, z, a):
    for _ in range(n):
        K._activate_block(TANH, z, a)


@njit(cache=True)
def _delta(n, z, Y, delta, tmp, scales):
    for _ in range(n):
        K._output_delta(IDENTITY, K.MSE, z, z, Y, 0, delta, tmp, scales)


@njit(cache=True)
def _backward(n, row, g, w_off, b_off, a_in, delta, d_in_out, delta_t):
    for _ in range(n):
        K._dense_backward(row, g, w_off, b_off, a_in, delta, True, d_in_out, delta_t)


@njit(cache=True)
def _derivative(n, z, a, delta, fresh):
    for _ in range(n):
        delta[...] = fresh  # (the copy is timed too; it is small beside the pass)
        K._times_derivative(TANH, z, a, delta)


@njit(cache=True)
def _update(n, row, g, opt):
    for _ in range(n):
        apply_update(0, row, g, opt, True)  # as the kernel calls it (g is scratch)


WHOLE_TILES = "whole step (register tiles, 1,000 agents)"
WHOLE_STEP = "whole step (train_step, 1,000 agents)"


def phases(layers: tuple[int, int, int], batch: int, dtype: str, seconds: float) -> dict:
    """Nanoseconds per agent of every phase, and of the whole step, for one configuration."""
    d0, d1, d2 = layers
    dt = np.dtype(dtype)
    pop = Population(8, layers, dtype=dtype, lr=1e-6)
    rng = np.random.default_rng(0)
    row, opt = pop.params[0].copy(), pop._opt()
    g = np.zeros_like(row)
    w1, w2 = (int(v) for v in pop.layout.arrays[1])  # offsets of W and b in a row
    b1, b2 = (int(v) for v in pop.layout.arrays[2])
    X = rng.standard_normal((1, batch, d0)).astype(dt)
    Y = rng.standard_normal((1, batch, d2)).astype(dt)
    a0, z1, a1 = (np.empty((d, batch), dt) for d in (d0, d1, d1))
    z2, d2_, d1_ = np.empty((d2, batch), dt), np.empty((d2, batch), dt), np.empty((d1, batch), dt)
    delta_t, tmp = np.empty(max(d1, d2) * batch, dt), np.empty(2 * batch, dt)
    scales = np.array([1 / batch, 1 / (batch * d2), 2 / (batch * d2)], dt)
    none = np.empty((0, batch), dt)
    n = max(20, int(2e6 / (batch * (d0 * d1 + d1 * d2))))  # calls per timing: >= ~50 us
    K._load_input(X, 0, a0)
    K._dense_forward(row, w1, b1, a0, z1)
    K._activate_block(TANH, z1, a1)
    K._dense_forward(row, w2, b2, a1, z2)
    fresh = np.full((d1, batch), 0.5, dt)
    steps = {
        "input (transpose, check)": lambda: _load(n, X, a0),
        "layer 1 forward": lambda: _forward(n, row, w1, b1, a0, z1),
        "tanh": lambda: _tanh(n, z1, a1),
        "layer 2 forward": lambda: _forward(n, row, w2, b2, a1, z2),
        "output delta (MSE)": lambda: _delta(n, z2, Y, d2_, tmp, scales),
        "layer 2 backward": lambda: _backward(n, row, g, w2, b2, a1, d2_, d1_, delta_t),
        "tanh derivative": lambda: _derivative(n, z1, a1, d1_, fresh),
        "layer 1 backward": lambda: _backward(n, row, g, w1, b1, a0, d1_, none, delta_t),
        "SGD update": lambda: _update(n, row, g, opt),
    }
    out = {name: best_seconds(fn, n, seconds / 12) * 1e9 for name, fn in steps.items()}
    big = Population(1000, layers, dtype=dtype, lr=1e-6)
    Xb = rng.standard_normal((1000, batch, d0)).astype(dt)
    Yb = rng.standard_normal((1000, batch, d2)).astype(dt)
    losses, status = np.empty(1000, dtype=dt), np.empty(1000, dtype=np.int8)
    no_grads, no_dx = np.empty((1, 1), dtype=dt), np.empty((1, 1, 1), dtype=dt)

    def tiles_step():  # the register-tile kernel, whose phases these are
        K._population_pass(big.params, Xb, Yb, big._net, big._opt(), K.MODE_TRAIN, losses,
                           status, no_grads, no_dx)  # fmt: skip

    out[WHOLE_TILES] = best_seconds(tiles_step, 1, seconds / 4) / 1000 * 1e9
    out[WHOLE_STEP] = best_seconds(lambda: big.train_step(Xb, Yb), 1, seconds / 4) / 1000 * 1e9
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the phases of every configuration and dtype asked for."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.phases", description=__doc__)
    p.add_argument("--configs", default="8-16-1:32,64-64-10:64", help="D0-D1-D2:B,...")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--seconds", type=float, default=6.0, help="per configuration and dtype")
    args = p.parse_args(argv)
    numba.set_num_threads(1)
    for spec in args.configs.split(","):
        net, batch = spec.split(":")
        layers = tuple(int(d) for d in net.split("-"))
        if len(layers) != 3:
            p.error(f"{spec}: one hidden layer only (D0-D1-D2:B)")
        for dtype in args.dtypes.split(","):
            got = phases(layers, int(batch), dtype, args.seconds)
            tiles, whole = got.pop(WHOLE_TILES), got.pop(WHOLE_STEP)
            print(f"\n{net}, B = {batch}, {dtype}, one thread: ns per agent")
            for name, ns in got.items():
                print(f"  {name:26s} {ns:9.0f}")
            print(f"  {'sum of the phases':26s} {sum(got.values()):9.0f}")
            print(f"  {'whole step, tiles':26s} {tiles:9.0f}")
            print(f"  {'whole step, train_step':26s} {whole:9.0f}  (in lanes when at most 16 wide)")


if __name__ == "__main__":
    main()
