"""GAN population: mode collapse as homogenization of outputs, at laptop scale.

Question
    Every agent is a small generator/discriminator pair learning the same 2-D mixture
    (8 Gaussians on a ring). Does each generator cover all the modes, or does it collapse onto
    some of them (mode collapse)? Does the crowd cover more than its members, what happens to
    that advantage when agents share generators, and does a diversity term restore coverage?

Mechanism
    Each agent holds a generator ``G: z -> x`` (the network agents share and are measured by)
    and a private discriminator trained against it (:class:`simulator.gan.GANTrainer`: one
    kernel call per network per step; the generator learns only through the discriminator's
    input gradients). Plain GANs here miss a few modes each, different ones per agent, so the
    pooled samples cover more than any member. Generators start from one shared
    initialization; ``mixing_rate > 0`` gossips them with their neighbours, which homogenizes
    the outputs: every agent then misses the same modes and the crowd covers no more than its
    members. ``gan_diversity`` adds an entropy bonus (a kernel density estimate over the
    agent's own batch, bandwidth ``gan_bandwidth``; no real data) to each generator's loss,
    which spreads samples onto missed modes. A mode is covered by an agent when at least
    ``min_share`` of its samples fall within ``3 * mode_std`` of it.

Watch
    ``mode_coverage`` (per agent) vs ``population_coverage`` (pooled: what the crowd covers),
    ``sample_quality``, ``function_dispersion`` of the generators' outputs on fixed latent codes
    (homogenization of outputs), ``d_loss``. Compare ``gan_diversity`` 0 vs 1 and
    ``mixing_rate`` 0 vs 0.1 over about 2000 steps.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from models._base import with_defaults
from simulator.gan import GANTrainer, mode_statistics
from simulator.model import NeuralModel
from simulator.params import Param
from simulator.rng import stream_seed


class GANPopulation(NeuralModel):
    __doc__ = __doc__
    params: ClassVar[dict[str, Param]] = {
        **with_defaults(
            n_agents=16,
            graph="ring",
            task="ring",
            task_params={
                "n_modes": 8,
                "radius": 2.0,
                "mode_std": 0.05,
                "z_dim": 4,
                "n_probe": 256,
            },
            hidden=(32, 32),
            activation="relu",
            optimizer="adam",
            lr=0.002,
            batch_size=64,
            init="shared",
            mixing_rate=0.0,
            cluster_eps=0.5,
            measures="fast",
        ),
        # generators learn a distribution of points: only the generative task fits
        "task": Param("ring", "str", choices=("ring",), help="the 2-D mixture generators learn"),
        "gan_diversity": Param(0.0, "float", 0, 100, help="weight of the entropy bonus"),
        "gan_bandwidth": Param(
            0.5, "float", 1e-6, 100, help="kernel std of the entropy estimate (data units)"
        ),
        "d_lr": Param(0.01, "float", 0, 1, help="discriminators' learning rate"),
        "min_share": Param(0.02, "float", 0, 1, help="share of samples that makes a mode covered"),
    }
    # a discriminator per agent (with Adam state) and the trainer's per-step batches: bytes per
    # agent at batch_size 64 beyond what the app's memory estimate counts (traced: ~41 KB per
    # agent in all at 1,000 and 3,000 agents, build and two steps; the mode statistics no
    # longer hold (P, n_probe, n_modes) float64 temporaries)
    memory_per_agent: ClassVar[int] = 25_000
    state_attributes: ClassVar[tuple[str, ...]] = (
        *NeuralModel.state_attributes,
        "trainer.discriminators",
        "trainer.d_losses",
    )
    extra_measure_names: ClassVar[tuple[str, ...]] = (
        "d_loss",
        "mode_coverage",
        "population_coverage",
        "sample_quality",
    )

    def __init__(self, rng=None, **kwargs):
        self._trainer: GANTrainer | None = None
        super().__init__(rng=rng, **kwargs)

    @property
    def trainer(self) -> GANTrainer:
        """The adversarial trainer (built with the population)."""
        if self._trainer is None:
            self._trainer = GANTrainer(
                self.population,
                hidden=self.p["hidden"],
                activation="tanh",
                lr=self.p["d_lr"],
                diversity=self.p["gan_diversity"],
                bandwidth=self.p["gan_bandwidth"],
                seed=stream_seed(self.seed, "init"),
            )
        return self._trainer

    def train(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """X: latent codes, Y: real points (see the ring task)."""
        return self.trainer.step(X, Y)

    def extra_measures(self) -> dict[str, float]:
        task = self.task
        stats = mode_statistics(
            self.probe_predictions(),
            task.centers,
            3 * task.mode_std,
            self.p["min_share"],
        )
        return {**super().extra_measures(), "d_loss": float(self.trainer.d_losses.mean()), **stats}
