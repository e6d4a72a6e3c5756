"""Training is bit-identical on 1 and 2 Numba threads and on the TBB and OpenMP threading layers
(each agent writes only its own row)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Runs in a subprocess: trains a few populations and prints a SHA-256 of their bytes.
SCRIPT = """
import hashlib, json
import numba
import numpy as np
from simulator import Population
from simulator.kernels import threads
from simulator.kernels.threads import threading_info

# every call on every thread there is, however small its work and however fast one thread is
threads.MIN_WORK_PER_THREAD = 1.0
threads.CHOOSER.enabled = False

CONFIGS = [
    # small layers
    dict(layers=(8, 16, 1), activation="tanh", output="linear", loss="mse", optimizer="sgd"),
    dict(layers=(8, 16, 16, 3), activation="relu", output="softmax", loss="cross_entropy",
         optimizer="adam"),
    # 64-64-10 with B = 64: wide layers
    dict(layers=(64, 64, 10), activation="tanh", output="softmax", loss="cross_entropy",
         optimizer="momentum"),
    # widths and a batch off the SIMD width: edge tiles and scalar tails
    dict(layers=(45, 70, 12), activation="sigmoid", output="linear", loss="mse",
         optimizer="adam"),
]
out = {"threads": numba.get_num_threads()}
# a population large enough that both threads get work (kernels size their thread count)
big = Population(4000, (8, 16, 1), seed=9)
rng = np.random.default_rng(9)
X, Y = rng.standard_normal((4000, 32, 8)), rng.standard_normal((4000, 32, 1))
h = hashlib.sha256()
for step in range(2):
    h.update(big.train_step(X, Y).tobytes())
h.update(big.params.tobytes())
out["big"] = h.hexdigest()
for dtype in ("float32", "float64"):
    for k, cfg in enumerate(CONFIGS):
        rng = np.random.default_rng(k)
        P, B = 24, 64 if cfg["layers"][0] == 64 else 32
        pop = Population(P, dtype=dtype, seed=k, lr=np.linspace(0.01, 0.1, P), **cfg)
        h = hashlib.sha256()
        for step in range(3):
            X = rng.standard_normal((P, B, cfg["layers"][0]))
            Y = rng.random((P, B, cfg["layers"][-1]))
            if cfg["loss"] == "cross_entropy":  # targets must be distributions
                Y /= Y.sum(axis=-1, keepdims=True)
            h.update(pop.train_step(X, Y).tobytes())
        h.update(pop.params.tobytes())
        h.update(pop.gradients(X, Y)[0].tobytes())
        h.update(pop.input_gradients(X, Y).tobytes())
        h.update(pop.predict(X[0]).tobytes())
        out[f"{dtype}-{k}"] = h.hexdigest()
out["layer"] = threading_info()["layer"]
print(json.dumps(out))
"""


def _run(threads: int, layer: str | None = None) -> dict:
    env = os.environ | {"NUMBA_NUM_THREADS": str(threads)}
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_is_bit_identical_on_one_and_two_threads():
    one, two = _run(1), _run(2)
    assert (one.pop("threads"), two.pop("threads")) == (1, 2)
    assert one.pop("layer") == two.pop("layer") == "tbb"  # the default, found without setup
    assert len(one) == 9  # 4 configs x 2 dtypes, and the large population
    assert one == two


def test_training_is_bit_identical_on_tbb_and_openmp_layers():
    tbb, omp = _run(2, "tbb"), _run(2, "omp")
    assert (tbb.pop("layer"), omp.pop("layer")) == ("tbb", "omp")
    assert tbb == omp
