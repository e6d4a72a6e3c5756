"""gossip_learning: weight averaging brings consensus, faster on better-connected graphs."""

from __future__ import annotations

import pytest

from models import REGISTRY


def final(seed: int, **kw):
    m = REGISTRY["gossip_learning"](rng=seed, n_agents=32, measures="fast", **kw)
    m.run_for(40)
    return m.model_dataframe().iloc[-1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gossip_brings_consensus_and_a_complete_graph_beats_a_ring(seed):
    alone = final(seed, mixing_rate=0.0)
    ring = final(seed, mixing_rate=0.1, graph="ring")
    complete = final(seed, mixing_rate=0.1, graph="complete")
    assert ring["consensus_distance"] < 0.5 * alone["consensus_distance"]
    assert complete["consensus_distance"] < ring["consensus_distance"]
    assert complete["function_dispersion"] < alone["function_dispersion"]
