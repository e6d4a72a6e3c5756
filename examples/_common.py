"""What the example scripts share: running a scenario over seeds and averaging its measures."""

from __future__ import annotations

import os

# idle Numba/OpenMP workers wait passively (faster on a shared machine; results unchanged)
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np

from models import REGISTRY


def mean_over_seeds(
    scenario: str, seeds, steps: int, columns: list[str], **params
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``scenario`` once per seed for ``steps`` steps.

    Returns
    -------
    steps : int array (T,), the collected steps.
    mean : float array (T, len(columns)), each column averaged over the seeds.
    """
    curves = []
    for seed in seeds:
        model = REGISTRY[scenario](rng=seed, **params)
        model.run_for(steps)
        df = model.model_dataframe()
        curves.append(df[columns].to_numpy(dtype=float))
    return df["step"].to_numpy(), np.mean(curves, axis=0)
