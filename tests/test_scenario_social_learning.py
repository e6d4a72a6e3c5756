"""social_learning: distillation lifts individuals toward the crowd and homogenizes them."""

from __future__ import annotations

import pytest

from models import REGISTRY


def final(seed: int, weight: float):
    m = REGISTRY["social_learning"](rng=seed, n_agents=32, distill_weight=weight, measures="fast")
    m.run_for(60)
    return m.model_dataframe().iloc[-1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distillation_lifts_individuals_and_costs_diversity_but_not_the_crowd(seed):
    alone, social = final(seed, 0.0), final(seed, 0.7)
    # non-IID specialists are individually poor, yet their ensemble covers every class
    assert alone["ensemble_accuracy"] > alone["accuracy"] + 0.2
    # learning from neighbours lifts the members toward the crowd...
    assert social["accuracy"] > alone["accuracy"] + 0.15
    # ...homogenizes them in function space, and shrinks what the crowd adds
    assert social["function_dispersion"] < 0.5 * alone["function_dispersion"]
    assert social["ensemble_gain"] < 0.5 * alone["ensemble_gain"]
