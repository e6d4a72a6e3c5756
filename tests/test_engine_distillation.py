"""Distillation's ``distill_start``: agents learn from real data first, then from neighbours."""

from __future__ import annotations

import numpy as np

from models import REGISTRY


def _distillation(model):
    return next(rule for rule in model.rules if rule.name == "distillation")


def test_generated_labels_replace_real_ones_only_after_distill_start():
    m = REGISTRY["model_collapse"](rng=0, n_agents=8, distill_start=3, measures="fast")
    rule = _distillation(m)
    X, Y = m.task.sample(1, 16)
    m.run_for(3)  # inside steps 1..3 the rule is off
    assert rule.before_train(m, X, Y)[1] is Y
    m.run_for(1)  # step 4 onwards: labels come from neighbours' models (real_share=0)
    _, targets = rule.before_train(m, X, Y)
    assert not np.allclose(targets, Y)


def test_real_data_phase_trains_exactly_like_agents_without_distillation():
    kwargs = dict(n_agents=8, measures="fast", distill_start=5)
    with_rule = REGISTRY["model_collapse"](rng=3, **kwargs)
    alone = REGISTRY["model_collapse"](rng=3, distill_mode="soft", distill_weight=0.0, **kwargs)
    assert not any(rule.name == "distillation" for rule in alone.rules)
    with_rule.run_for(5)
    alone.run_for(5)
    np.testing.assert_array_equal(with_rule.population.params, alone.population.params)
    with_rule.run_for(1)
    alone.run_for(1)
    assert not np.array_equal(with_rule.population.params, alone.population.params)


def test_distill_start_zero_distils_from_the_first_step():
    m = REGISTRY["model_collapse"](rng=0, n_agents=8, distill_start=0, measures="fast")
    X, Y = m.task.sample(1, 16)
    assert not np.allclose(_distillation(m).before_train(m, X, Y)[1], Y)
