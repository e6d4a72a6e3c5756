"""federated: a server's average is one fair model; gossip only nears it; noise costs accuracy."""

from __future__ import annotations

from models import REGISTRY

SEEDS = (0, 1, 2)
STEPS = 100  # a multiple of fedavg_every: measured right after a round


def _final(seed: int, **setting):
    m = REGISTRY["federated"](rng=seed, n_agents=12, collect_every=STEPS, **setting)
    m.run_for(STEPS)
    return m.model_dataframe().iloc[-1]


def test_fedavg_is_exact_consensus_and_fairer_than_gossip_and_noise_costs_accuracy():
    for seed in SEEDS:
        alone = _final(seed, fedavg_every=0)
        fed = _final(seed)
        noisy = _final(seed, fedavg_noise=1.0)
        gossip = _final(seed, fedavg_every=0, mixing_rate=0.1, graph="ring")
        assert fed.consensus_distance == 0.0 and fed.worst_accuracy == fed.accuracy
        assert gossip.consensus_distance > 0.0
        assert fed.worst_accuracy > gossip.worst_accuracy  # fairness across clients
        assert min(fed.accuracy, gossip.accuracy) > alone.accuracy + 0.3  # sharing pays
        assert noisy.accuracy < fed.accuracy  # privacy noise on the shared models
