"""Federated learning: a server averages non-IID clients, versus decentralized gossip.

Question
    Clients each hold data of only one class of a 4-class task (non-IID). How does federated
    averaging through a server (a star) compare with fully decentralized gossip on the same
    data, in accuracy, consensus and fairness across clients, and what does Gaussian noise on
    the shared models (differential-privacy style) cost?

Mechanism
    Each agent is a client training a small MLP on its own class (``classes_per_agent=1``),
    from a shared initialization. Every ``fedavg_every`` local steps the server (the hub of
    the star graph) collects every participating client's parameters plus ``N(0,
    fedavg_noise^2)`` noise and sends back their average, which every client then starts from
    (McMahan et al. 2017's FedAvg; the rule talks to every client, whatever the graph). The
    decentralized alternative switches the server off (``fedavg_every=0``) and lets clients
    average with their graph neighbours instead (``mixing_rate`` on, e.g., a ring). Measures
    collected at a multiple of ``fedavg_every`` see the clients right after a round, i.e. the
    model the server deploys (``collect_every=fedavg_every`` keeps only those); in between,
    clients drift toward their own class.

Watch
    ``accuracy`` and ``worst_accuracy`` (fairness: the least accurate client on the balanced
    probe), ``consensus_distance`` and ``function_dispersion`` (0 after a FedAvg round; above
    0 for gossip), ``ensemble_accuracy``. Sweep ``fedavg_noise`` (0, 0.3, 1) and compare with
    ``fedavg_every=0, mixing_rate=0.1, graph="ring"``.
"""

from __future__ import annotations

from models._base import with_defaults
from simulator.model import NeuralModel


class Federated(NeuralModel):
    __doc__ = __doc__
    params = with_defaults(
        n_agents=20,
        graph="star",
        task="mixture",
        task_params={"n_classes": 4, "classes_per_agent": 1, "separation": 3.0},
        hidden=(16,),
        optimizer="sgd",
        lr=0.1,
        batch_size=16,
        init="shared",
        fedavg_every=5,
        fedavg_noise=0.0,
        fedavg_participation=1.0,
    )
