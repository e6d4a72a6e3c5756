"""Evolution: selection homogenizes a population; a detector that rewards novelty holds diversity.

Question
    Agents learn a task and copy fitter neighbours (selection with mutation). Selection makes
    the population fitter, and also one lineage: does it have to? Can a population that
    watches its own diversity and, when it falls, changes what counts as fit (the essay's
    "emergence and heterogeneity" algorithm) stay diverse while staying about as fit?

Mechanism
    64 agents on a small-world graph, each a small network from its own random
    initialization, fit the same teacher by SGD. Every step each agent, with probability
    ``imitation_rate``, compares itself with a random neighbour and copies it by the Fermi rule
    (strength ``beta``; fitness = minus the recent training loss), with Gaussian ``mutation``
    of the copy. A homogenization detector measures the function-space dispersion of the
    population each step; while it is below ``novelty_threshold`` the weight of a novelty term
    in the fitness (RMS distance of an agent's outputs from its neighbours' mean) rises by
    ``novelty_rate`` per step, and it decays once diversity recovers. Rewarding novelty makes
    rare variants fit (negative frequency dependence), so copying stops erasing them.
    ``novelty_threshold=0`` switches the detector off.

Watch
    ``function_dispersion`` and ``aligned_distance`` (weight-space diversity after aligning
    hidden units) with and without the detector; ``probe_loss`` and ``mean_loss`` (fitness);
    ``novelty_weight`` (the detector's current weight); ``copies``. Compare
    ``novelty_threshold`` 0 (no detector) and 0.015 (the default) over about 600 steps.
"""

from __future__ import annotations

from typing import ClassVar

from models._base import with_defaults
from simulator.model import NeuralModel


class Evolution(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=64,
        graph="watts_strogatz",
        graph_params={"k": 4, "p": 0.1},
        task="teacher",
        hidden=(16,),
        optimizer="sgd",
        lr=0.05,
        init="independent",
        imitation_rate=0.5,
        beta=50.0,
        mutation=0.01,
        novelty_threshold=0.015,
        novelty_rate=0.05,
    )
    extra_measure_names: ClassVar[tuple[str, ...]] = ("novelty_weight",)

    def extra_measures(self) -> dict[str, float]:
        """The detector's current weight of novelty in the fitness."""
        return {**super().extra_measures(), "novelty_weight": float(self.novelty_weight)}
