"""Generative tasks: a ring of Gaussian modes for populations of GANs."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.config import check_int, check_number
from simulator.kernels import data as D
from simulator.tasks.base import Task, check_task_memory

__all__ = ["RingMixture"]


class RingMixture(Task):
    """A 2-D mixture of ``n_modes`` Gaussians on a circle: the classic GAN mode-collapse test.

    ``sample`` returns latent codes ``X = z ~ N(0, I)`` (P, B, z_dim) and real points
    ``Y`` (P, B, 2): a generator learns to map the first to the distribution of the second
    (see :mod:`simulator.gan`). ``probe_X`` is a fixed set of latent codes, so every agent's
    generator is compared on the same inputs; ``probe_Y`` is a fixed real sample (a reference,
    not a per-code truth). ``centers`` (n_modes, 2) and ``mode_std`` describe the modes.
    An ``n_probe`` whose probe would not fit in this machine's memory is refused.
    """

    name = "ring"
    kind = "generative"
    output = "linear"
    loss = "mse"

    def __init__(
        self,
        n_agents: int,
        n_modes: int = 8,
        radius: float = 2.0,
        mode_std: float = 0.05,
        z_dim: int = 4,
        n_probe: int = 512,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        settings = {
            "n_modes": n_modes,
            "radius": radius,
            "mode_std": mode_std,
            "z_dim": z_dim,
            "n_probe": n_probe,
        }
        super().__init__(n_agents, seed, communities, settings)
        self.n_modes = check_int("n_modes", n_modes, low=1, high=64)
        self.radius = check_number("radius", radius, 0.0, 100.0, low_open=True)
        self.mode_std = check_number("mode_std", mode_std, 0.0, 10.0, low_open=True)
        self.d_in, self.d_out = check_int("z_dim", z_dim, low=1, high=64), 2
        n_probe = check_int("n_probe", n_probe, low=1)
        check_task_memory(self.name, self._memory, {"n_probe": n_probe})
        angles = 2 * np.pi * np.arange(self.n_modes) / self.n_modes
        self.centers = self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        self.probe_X = self._stream(0).standard_normal((n_probe, self.d_in))
        self.probe_Y = self._real(self._stream(1), (1, n_probe))

    def _memory(self, n_probe: int) -> int:
        """Bytes of the probe: the codes, and the real sample (modes, normals, centers, sum)."""
        return 8 * n_probe * (self.d_in + 7)

    def _real(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        modes = rng.integers(0, self.n_modes, shape)
        return self.centers[modes] + self.mode_std * rng.standard_normal((*shape, 2))

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        D.ring_sample(X, Y, *self._k, step, self.centers, float(self.mode_std))
