"""Polarization: bounded-confidence learning in function space, from fragmentation to consensus.

Question
    When agents learn only from neighbours whose predictions are close to their own, how does
    the confidence radius ``epsilon`` decide between fragmentation, a few opposed camps and
    consensus? Do the camps follow the social graph's communities? (Deffuant et al. 2000,
    Hegselmann-Krause 2002: on opinions uniform in an interval of width R, about
    ``R / (2 epsilon)`` clusters remain.)

Mechanism
    Agents are single-layer linear networks ``f_i(x) = w_i x + b_i`` on one input (``hidden=()``,
    ``d_in=1``), so an agent's "opinion" is its function and the RMS distance between two
    agents' outputs on the probe set is their distance in function space. Independent
    initialization draws ``w_i`` uniformly (biases start at 0): opinions start uniform on an
    interval of width R = the largest initial distance. Each step, every agent moves by
    ``bc_rate`` toward the mean of itself and those neighbours on a stochastic block model
    graph (4 communities) whose function-space distance is below ``confidence`` (bounded
    confidence). For a linear network averaging weights is exactly averaging functions, so
    this is Hegselmann-Krause dynamics in function space on a graph. Agents see no data by
    default (``lr=0``); with ``lr > 0`` a common truth pulls every camp toward one function.
    The truth is a linear teacher (``teacher_hidden=0``), which a linear agent can represent
    exactly, so every camp can reach it; and its data cost ~0.6x a training step, where the
    default 16-unit tanh teacher's cost 2.4-2.6x (``benchmarks/model_step.py``).

Watch
    ``n_clusters`` (agents chained by function-space distance < ``cluster_eps``) and
    ``largest_cluster`` as ``confidence`` grows; ``function_dispersion``, ``polarization``;
    ``cluster_nmi`` and ``modularity`` say whether the camps follow the graph's communities.
    Sweep ``confidence`` over 0.1 ... 2.
"""

from __future__ import annotations

from models._base import with_defaults
from simulator.model import NeuralModel


class Polarization(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=100,
        graph="sbm",
        # expected degrees: 12 inside one's block, 0.75 outside (p_in 0.5, p_out 0.01 at 100
        # agents), so the graph stays sparse at any size
        graph_params={"blocks": 4, "k_in": 12, "k_out": 0.75},
        task="teacher",
        task_params={"d_in": 1, "teacher_hidden": 0},
        hidden=(),
        lr=0.0,
        init="independent",
        confidence=0.3,
        confidence_space="function",
        bc_rate=0.5,
        cluster_eps=0.02,
    )
