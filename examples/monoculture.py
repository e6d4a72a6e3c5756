"""Monoculture: as more agents copy one popular model, failures pile onto the same cases.

    .venv/bin/python examples/monoculture.py

Runs the ``monoculture`` scenario (40 weak, diverse learners of an 8-class mixture) for six
adoption shares x 5 seeds, 100 steps each; prints the mean over seeds of the individual and
crowd (vote) accuracy, the worst agent's accuracy, outcome homogenization and agreement, and
saves docs/figures/monoculture.png.
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

from models import REGISTRY

SHARES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95)
SEEDS = range(5)
STEPS = 100
COLUMNS = [
    "accuracy",
    "ensemble_accuracy",
    "worst_accuracy",
    "outcome_homogenization",
    "agreement",
]


def run(share: float) -> np.ndarray:
    """Mean over seeds of the final COLUMNS, (5,)."""
    finals = []
    for seed in SEEDS:
        model = REGISTRY["monoculture"](rng=seed, adopt_share=share, collect_every=STEPS)
        model.run_for(STEPS)
        finals.append(model.model_dataframe().iloc[-1][COLUMNS].to_numpy(dtype=float))
    return np.mean(finals, axis=0)


def main() -> None:
    rows = np.array([run(share) for share in SHARES])
    print(f"mean over {len(SEEDS)} seeds at step {STEPS}")
    print("adopt_share" + "".join(f"{c:>24s}" for c in COLUMNS))
    for share, row in zip(SHARES, rows):
        print(f"{share:11.2f}" + "".join(f"{v:24.3f}" for v in row))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    ax.plot(SHARES, rows[:, 0], "o-", label="mean individual accuracy")
    ax.plot(SHARES, rows[:, 1], "s-", label="crowd (vote) accuracy")
    ax.plot(SHARES, rows[:, 2], "^-", label="worst agent's accuracy")
    ax.set(xlabel="adopt_share (agents copying the popular model)", ylabel="accuracy on probe")
    ax.set_title("members gain, the crowd loses")
    ax.legend(fontsize=7)
    ax = axes[1]
    identical = (1 - rows[:, 0]) ** -2.0  # H of identical models with this error rate, k = 3
    ax.semilogy(SHARES, rows[:, 3], "o-", color="tab:red", label="outcome_homogenization")
    ax.semilogy(SHARES, identical, "k--", label="identical models, same error (e^-2)")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="independent failures (1)")
    ax.set(xlabel="adopt_share", ylabel="P(3 agents all fail) / product")
    ax.set_title("correlated failures")
    ax.legend(fontsize=7)
    fig.suptitle("monoculture: 40 learners, one popular model copied by a growing share")
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "figures" / "monoculture.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
