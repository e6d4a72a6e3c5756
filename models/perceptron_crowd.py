"""Perceptron crowd: the wisdom of a crowd of perceptrons, with and without sharing weights.

Question
    A crowd of perceptrons, each trained online on a few examples of the same linearly
    separable task, votes better than its members (Condorcet's jury theorem). What happens
    to individual and to collective accuracy when the perceptrons also average their weights
    with their neighbours?

Mechanism
    Each agent is a single-layer network with a step output (``hidden=()``, the separable
    task's ``output="step"``): the squared-error gradient of a step unit is Rosenblatt's
    perceptron rule, ``w <- w + lr (y - o) x``. Agents start from independent random weights
    and each sees one fresh example a step. With ``mixing_rate > 0`` they also gossip their
    weights (Metropolis averaging on a small-world graph). For a single layer, averaging
    weights averages the decision rules directly (no hidden units to permute), so independent
    initializations may be averaged.

Watch
    ``accuracy`` (mean individual accuracy) against ``ensemble_accuracy`` (majority vote of
    the crowd) and their difference ``ensemble_gain``; ``function_dispersion`` and
    ``agreement`` (how alike the votes are). Without sharing the vote is far better than the
    members; sharing lifts the members toward the vote and shrinks the crowd's gain as the
    perceptrons homogenize. Compare ``mixing_rate=0`` with ``mixing_rate=0.5``.
"""

from __future__ import annotations

from models._base import with_defaults
from simulator.model import NeuralModel


class PerceptronCrowd(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=50,
        graph="watts_strogatz",
        graph_params={"k": 4, "p": 0.1},
        task="separable",
        task_params={"d_in": 10, "margin": 0.0},
        hidden=(),
        lr=0.1,
        batch_size=1,
        init="independent",
        mixing_rate=0.5,
        mixing="metropolis",
        cluster_eps=0.1,
    )
