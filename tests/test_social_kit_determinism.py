"""Schedules, gossip orders, stubbornness and DP-FedAvg give the same numbers for a seed on 1
and 2 Numba threads, and again on a second run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import hashlib, json, warnings
import numba
import numpy as np
from simulator.model import NeuralModel

warnings.simplefilter("ignore")
RUNS = {
    "imitation-random_order": dict(imitation_rate=0.7, mutation=0.02, schedule="random_order"),
    "imitation-random_independent": dict(
        imitation_rate=0.7, mutation=0.02, schedule="random_independent"
    ),
    "bc-function": dict(confidence=0.5, bc_rate=0.5, schedule="random_order"),
    "bc-weights": dict(
        confidence=1.0, bc_rate=0.5, confidence_space="weights", schedule="random_independent"
    ),
    "dpsgd-stubborn": dict(
        mixing_rate=0.5, gossip_order="dpsgd", stubbornness=0.2, init="shared", init_noise=0.1
    ),
    "cta-adjacency": dict(mixing_rate=1.0, gossip_order="mix_then_train", mixing="adjacency"),
    "dp-fedavg": dict(
        task="mixture", fedavg_every=2, dp_clip=0.3, dp_noise_multiplier=1.0,
        fedavg_participation=0.5, init="shared",
    ),
}
out = {"threads": numba.get_num_threads()}
for name, kw in RUNS.items():
    kw = {"n_agents": 40, "hidden": (8,), "measures": "fast", "rng": 3, "init": "independent",
          **kw}
    m = NeuralModel(**kw)
    m.run_for(6)
    h = hashlib.sha256(m.population.params.tobytes())
    h.update(m.model_dataframe().to_csv().encode())
    out[name] = h.hexdigest()
print(json.dumps(out))
"""


def _run(threads: int) -> dict:
    env = os.environ | {"NUMBA_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_kit_is_bit_identical_on_one_and_two_threads():
    one, two = _run(1), _run(2)
    assert (one.pop("threads"), two.pop("threads")) == (1, 2)
    assert len(one) == 7
    assert one == two
