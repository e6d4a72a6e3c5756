"""Social learning: when does the crowd beat the individual, and at what cost in homogenization?

    .venv/bin/python examples/social_learning.py

Runs the ``social_learning`` scenario (64 agents, each seeing 2 of 4 classes) with distillation
weights 0, 0.3 and 0.7 for 3 seeds (150 steps), prints the mean over seeds of the individual and
the ensemble accuracy, the ensemble gain and the function-space dispersion, and saves
docs/figures/social_learning.png.
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

WEIGHTS = (0.0, 0.3, 0.7)
SEEDS = range(3)
STEPS = 150
COLUMNS = ["accuracy", "ensemble_accuracy", "ensemble_gain", "function_dispersion"]


def run(weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Steps (T,) and the mean over seeds of COLUMNS, (T, 4)."""
    return mean_over_seeds(
        "social_learning",
        SEEDS,
        STEPS,
        COLUMNS,
        distill_weight=weight,
        measures="fast",
        collect_every=5,
    )


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    print(f"mean over {len(SEEDS)} seeds at step {STEPS}")
    print("distill_weight  " + "  ".join(COLUMNS))
    for weight, color in zip(WEIGHTS, ("tab:red", "tab:orange", "tab:blue")):
        steps, mean = run(weight)
        print(
            f"{weight:14.1f}  " + "  ".join(f"{v:{len(c)}.3f}" for v, c in zip(mean[-1], COLUMNS))
        )
        axes[0].plot(steps, mean[:, 0], color=color, label=f"individual, weight {weight}")
        axes[0].plot(steps, mean[:, 1], color=color, ls="--", label=f"ensemble, weight {weight}")
        axes[1].plot(steps, mean[:, 3], color=color, label=f"distill_weight {weight}")
    axes[0].set(xlabel="step", ylabel="accuracy on the (IID) probe")
    axes[0].set_title("individual (solid) vs ensemble (dashed)")
    axes[0].legend(fontsize=7)
    axes[1].set(xlabel="step", ylabel="function dispersion", title="homogenization")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    out = Path(__file__).resolve().parent.parent / "docs" / "figures" / "social_learning.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
