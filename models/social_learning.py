"""Social learning: non-IID agents distil from their neighbours.

Question
    Each agent sees only some of the classes of a task. When does the crowd beat the
    individual, and what does learning from neighbours cost in homogenization?

Mechanism
    A Gaussian-mixture classification task with 4 classes; every agent samples only 2 of them
    (non-IID). Agents train on their own data with targets mixed with their neighbours'
    predicted probabilities for the same inputs (distillation, weight ``distill_weight``).
    With ``distill_weight=0`` agents are independent specialists: individually poor, yet their
    mean-probability ensemble covers every class. Distillation spreads knowledge along the
    graph: individual accuracy rises toward the ensemble's while function-space dispersion
    falls (homogenization), and the ensemble gain shrinks.

Watch
    ``accuracy`` vs ``ensemble_accuracy`` and ``ensemble_gain``, ``function_dispersion``,
    ``agreement``, ``cka`` against ``cka_baseline``, ``outcome_homogenization``.
"""

from __future__ import annotations

from models._base import with_defaults
from simulator.model import NeuralModel


class SocialLearning(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=64,
        graph="watts_strogatz",
        graph_params={"k": 6, "p": 0.1},
        task="mixture",
        task_params={"n_classes": 4, "classes_per_agent": 2, "separation": 3.0},
        hidden=(16,),
        optimizer="adam",
        lr=0.01,
        init="independent",
        distill_weight=0.5,
        cluster_eps=0.1,
    )
