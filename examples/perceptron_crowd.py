"""Perceptron crowd: individual vs collective accuracy, with and without sharing weights.

    .venv/bin/python examples/perceptron_crowd.py

Runs the ``perceptron_crowd`` scenario for 3 gossip rates x 5 seeds (100 steps, 50 agents),
prints the mean over seeds of the individual accuracy, the crowd's (majority vote) accuracy
and their gap, and saves docs/figures/perceptron_crowd.png.
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

RATES = (0.0, 0.1, 0.5)
SEEDS = range(5)
STEPS = 100
COLUMNS = ["accuracy", "ensemble_accuracy", "ensemble_gain", "function_dispersion"]


def run(rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Steps (T,) and the mean over seeds of COLUMNS, (T, 4)."""
    return mean_over_seeds(
        "perceptron_crowd",
        SEEDS,
        STEPS,
        COLUMNS,
        mixing_rate=rate,
        measures="fast",
        collect_every=5,
    )


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    print(f"mean over {len(SEEDS)} seeds at step {STEPS}")
    print("mixing_rate  accuracy  ensemble_accuracy  ensemble_gain  function_dispersion")
    finals = []
    for rate, color in zip(RATES, ("tab:red", "tab:orange", "tab:blue")):
        steps, mean = run(rate)
        finals.append(mean[-1])
        print(f"{rate:11.2f}  " + "  ".join(f"{v:{len(c)}.3f}" for v, c in zip(mean[-1], COLUMNS)))
        axes[0].plot(steps, mean[:, 0], color=color, label=f"individual, mixing {rate}")
        axes[0].plot(steps, mean[:, 1], color=color, ls="--", label=f"crowd vote, mixing {rate}")
    axes[0].set(xlabel="step (one example per agent per step)", ylabel="accuracy on the probe")
    axes[0].set_title("individual (solid) vs crowd (dashed)")
    axes[0].legend(fontsize=7)
    finals = np.array(finals)
    x = np.arange(len(RATES))
    axes[1].bar(x - 0.2, finals[:, 0], 0.4, label="individual accuracy")
    axes[1].bar(x + 0.2, finals[:, 1], 0.4, label="crowd (majority vote) accuracy")
    for i, f in enumerate(finals):
        axes[1].text(i, f[1] + 0.01, f"gain {f[2]:.3f}", ha="center", fontsize=8)
    axes[1].set(xticks=x, xticklabels=[str(r) for r in RATES], ylim=(0.5, 1.05))
    axes[1].set(xlabel="mixing_rate (weight gossip)", title=f"at step {STEPS}")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("50 perceptrons, perceptron rule, separable task in 10-D")
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "figures" / "perceptron_crowd.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
