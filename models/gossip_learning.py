"""Gossip learning: decentralized learning of one shared task over a social graph.

Question
    How fast do agents that average their weights with neighbours reach consensus, and what
    does consensus cost or buy in accuracy? (Decentralized SGD, Lian et al. 2017.)

Mechanism
    Every agent fits the same teacher network from its own samples (one SGD step a step), then
    averages weights with its neighbours (Metropolis weights by default: doubly stochastic, so
    the population mean is preserved and, with ``lr=0``, the disagreement falls at least as fast
    as SLEM(W)^(2t)). Agents start from a shared initialization: averaging independently
    initialized networks is destructive (their hidden units are permuted).

Watch
    ``consensus_distance`` and ``function_dispersion`` (homogenization), ``probe_loss`` vs
    ``ensemble_loss`` (what the crowd knows beyond its members), ``consensus_time``. Sweep
    ``mixing_rate`` and the graph (ring vs complete vs small world).
"""

from __future__ import annotations

from models._base import with_defaults
from simulator.model import NeuralModel


class GossipLearning(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=64,
        graph="watts_strogatz",
        graph_params={"k": 4, "p": 0.1},
        task="teacher",
        task_params={"noise": 0.1},
        hidden=(16,),
        lr=0.05,
        init="shared",
        init_noise=0.1,
        mixing_rate=0.5,
        mixing="metropolis",
    )
