"""Monoculture: many agents deciding the same cases, or one popular model copied by many.

Question
    When a growing share of agents stops developing its own model and copies one popular
    model, do failures pile onto the same cases (outcome homogenization, Bommasani et al.
    2022), and can the crowd lose accuracy even while its members gain some (Kleinberg and
    Raghavan 2021)?

Mechanism
    Every agent learns to classify the same 8-class Gaussian mixture (in 8 dimensions) from its
    own small minibatches, from its own random initialization and at its own learning rate
    (``lr_spread``): a crowd of weak, diverse learners. A fixed share ``adopt_share`` of the
    agents replaces its network every step by a copy of the popular model: the fittest agent
    among those that do not adopt (``adopt_source="best_independent"``; fitness is minus the
    recent training loss). All agents then decide the same probe cases.

Watch
    ``outcome_homogenization`` (P(k agents all fail) / prod P(each fails); 1 = independent
    failures) and ``agreement`` rising with ``adopt_share``; ``accuracy`` (mean individual)
    against ``ensemble_accuracy`` (the crowd's vote) and ``worst_accuracy``. Sweep
    ``adopt_share`` over 0 ... 0.9.
"""

from __future__ import annotations

from models._base import with_defaults
from simulator.model import NeuralModel


class Monoculture(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=40,
        graph="watts_strogatz",
        graph_params={"k": 4, "p": 0.1},
        task="mixture",
        task_params={"n_classes": 8, "d_in": 8, "separation": 3.0},
        hidden=(8,),
        optimizer="sgd",
        lr=0.05,
        lr_spread=0.9,
        batch_size=4,
        init="independent",
        adopt_share=0.5,
        adopt_source="best_independent",
    )
