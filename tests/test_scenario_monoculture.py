"""monoculture: copying one popular model lifts members, sinks the crowd, correlates failures."""

from __future__ import annotations

from models import REGISTRY

SEEDS = (0, 1, 2)
STEPS = 60


def _final(share: float, seed: int):
    m = REGISTRY["monoculture"](rng=seed, adopt_share=share, collect_every=STEPS)
    m.run_for(STEPS)
    return m.model_dataframe().iloc[-1]


def test_adoption_homogenizes_outcomes_and_costs_the_crowd_its_advantage():
    for seed in SEEDS:
        diverse, mono = _final(0.0, seed), _final(0.75, seed)
        assert mono.outcome_homogenization > 2 * diverse.outcome_homogenization
        assert mono.agreement > diverse.agreement
        assert mono.ensemble_accuracy < diverse.ensemble_accuracy - 0.05  # the crowd loses
        assert mono.accuracy > diverse.accuracy  # while its members gain (best is copied)
        assert mono.ensemble_accuracy < diverse.ensemble_accuracy < 1.0
