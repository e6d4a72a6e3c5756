"""Evolution: selection alone makes one lineage; the novelty detector keeps the population diverse.

    .venv/bin/python examples/evolution.py

Runs the ``evolution`` scenario (64 learners of one teacher, copying fitter neighbours with
mutation) for three settings x 3 seeds, 600 steps each: selection without the detector
(``novelty_threshold=0``), selection with it (the default, threshold 0.015), and no selection
(``imitation_rate=0``, independent learners, for reference). Prints the mean over seeds of
the final function dispersion, aligned (weight-space) distance, probe and training loss and
novelty weight, and saves docs/figures/evolution.png (their course over the steps).
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

SETTINGS = {
    "selection, no detector": {"novelty_threshold": 0.0},
    "selection + detector (threshold 0.015)": {},
    "no selection (independent learners)": {"imitation_rate": 0.0, "novelty_threshold": 0.0},
}
SEEDS = range(3)
STEPS = 600
EVERY = 20
COLUMNS = [
    "function_dispersion",
    "aligned_distance",
    "probe_loss",
    "mean_loss",
    "copies",
    "novelty_weight",
]


def run(settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Steps (T,) and the mean over seeds of COLUMNS over the steps, (T, 6)."""
    return mean_over_seeds("evolution", SEEDS, STEPS, COLUMNS, collect_every=EVERY, **settings)


def main() -> None:
    results = {name: run(settings) for name, settings in SETTINGS.items()}
    print(f"mean over {len(SEEDS)} seeds at step {STEPS}")
    print(f"{'setting':40s}" + "".join(f"{c:>20s}" for c in COLUMNS))
    for name, (_, curve) in results.items():
        print(f"{name:40s}" + "".join(f"{v:20.4f}" for v in curve[-1]))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [
        (0, "function_dispersion (log)", True),
        (1, "aligned_distance (weights)", False),
        (2, "probe_loss (MSE vs teacher)", True),
    ]
    for ax, (col, title, log) in zip(axes, panels):
        for (name, (steps, curve)), style in zip(results.items(), ("-", "-", ":")):
            ax.plot(steps[1:], curve[1:, col], style, label=name)
        if col == 0:
            ax.axhline(0.015, color="grey", lw=0.8, ls="--", label="detector threshold")
        ax.set(xlabel="step", title=title, yscale="log" if log else "linear")
    axes[0].legend(fontsize=7)
    fig.suptitle("evolution: selection homogenizes; a novelty detector holds diversity")
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "figures" / "evolution.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
