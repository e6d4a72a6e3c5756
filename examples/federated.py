"""Federated averaging vs decentralized gossip on the same non-IID clients, with privacy noise.

    .venv/bin/python examples/federated.py

Runs the ``federated`` scenario (20 clients, each holding one class of a 4-class mixture) in six
settings x 3 seeds for 200 steps: clients alone, FedAvg every 5 steps with Gaussian noise of std
0, 0.3 and 1 on the shared models, and gossip (no server) on a ring and on a small-world graph.
Prints the mean over seeds at step 200 (right after a FedAvg round) and saves
docs/figures/federated.png.
"""

from __future__ import annotations

import os

# idle Numba/OpenMP workers wait passively (faster on a shared machine; results unchanged)
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _common import mean_over_seeds

SEEDS = range(3)
STEPS = 200
GOSSIP = {"fedavg_every": 0, "mixing_rate": 0.1}
SETTINGS = {
    "alone": {"fedavg_every": 0},
    "FedAvg": {},
    "FedAvg\nnoise 0.3": {"fedavg_noise": 0.3},
    "FedAvg\nnoise 1": {"fedavg_noise": 1.0},
    "gossip\nring": {**GOSSIP, "graph": "ring"},
    "gossip\nsmall world": {**GOSSIP, "graph": "watts_strogatz", "graph_params": {"k": 4}},
}
COLUMNS = ["accuracy", "worst_accuracy", "ensemble_accuracy", "consensus_distance"]


def run(setting: dict) -> tuple[np.ndarray, np.ndarray]:
    """Steps (T,) and the mean over seeds of COLUMNS (T, 4)."""
    return mean_over_seeds("federated", SEEDS, STEPS, COLUMNS, collect_every=20, **setting)


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    print(f"mean over {len(SEEDS)} seeds at step {STEPS}")
    print(f"{'setting':20s}" + "".join(f"{c:>20s}" for c in COLUMNS))
    finals = []
    for name, setting in SETTINGS.items():
        steps, mean = run(setting)
        finals.append(mean[-1])
        label = name.replace("\n", " ")
        print(f"{label:20s}" + "".join(f"{v:20.4f}" for v in mean[-1]))
        if "noise" not in name:
            shown = np.where(mean[:, 3] > 0, mean[:, 3], np.nan)
            axes[1].semilogy(steps, shown, label=label if np.isfinite(shown).any() else None)
    finals = np.array(finals)
    x = np.arange(len(SETTINGS))
    axes[0].bar(x - 0.2, finals[:, 0], 0.4, label="mean client accuracy")
    axes[0].bar(x + 0.2, finals[:, 1], 0.4, label="worst client accuracy")
    for i, f in enumerate(finals):
        axes[0].text(i + 0.2, f[1] + 0.01, f"{f[1]:.3f}", ha="center", fontsize=7)
    axes[0].set(xticks=x, xticklabels=list(SETTINGS), ylim=(0, 1.05), ylabel="accuracy on probe")
    axes[0].set_title(f"accuracy and fairness at step {STEPS}")
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].set(xlabel="step", ylabel="consensus_distance (weights)")
    axes[1].set_title("disagreement (FedAvg: exactly 0 after each round)")
    axes[1].legend(fontsize=7)
    fig.suptitle("20 non-IID clients (one class each of 4): server averaging vs gossip")
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "figures" / "federated.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
