"""perceptron_crowd: the vote beats the members; sharing weights closes the gap."""

from __future__ import annotations

import numpy as np

from models import REGISTRY

SEEDS = (0, 1, 2)


def _final(rate: float, seed: int):
    m = REGISTRY["perceptron_crowd"](rng=seed, n_agents=30, mixing_rate=rate, measures="fast")
    m.run_for(60)
    return m.model_dataframe().iloc[-1]


def test_crowd_vote_beats_members_and_sharing_lifts_members_and_shrinks_the_gain():
    alone = [_final(0.0, s) for s in SEEDS]
    shared = [_final(0.5, s) for s in SEEDS]
    for a, s in zip(alone, shared):
        assert a.ensemble_accuracy > a.accuracy + 0.05  # wisdom of the independent crowd
        assert s.accuracy > a.accuracy  # members learn from each other's weights
        assert s.ensemble_gain < a.ensemble_gain  # ... and the crowd's advantage shrinks
        assert s.function_dispersion < a.function_dispersion  # they homogenize
    assert np.mean([s.ensemble_gain for s in shared]) < 0.5 * np.mean(
        [a.ensemble_gain for a in alone]
    )
