"""Adoption's popular model: the fittest agent, the fittest non-adopter, or agent 0."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import NeuralModel, ParameterError
from simulator.social import Adoption


def _model(n: int = 10) -> NeuralModel:
    return NeuralModel(
        rng=3, n_agents=n, task="mixture", hidden=(4,), init="independent", measures="fast"
    )


def _rows_equal_to(params: np.ndarray, src: int) -> set[int]:
    return {i for i in range(params.shape[0]) if np.array_equal(params[i], params[src])}


@pytest.mark.parametrize(
    ("source", "expect_adopter"), [("best", True), ("best_independent", False)]
)
def test_best_independent_copies_the_fittest_non_adopter(source, expect_adopter):
    m = _model()
    rule = Adoption(0.5, source)
    initial = m.population.params.copy()
    rule.after_train(m)  # fixes the adopters
    m.population.params[...] = initial  # undo that round's copies (its source is data-dependent)
    adopters = set(rule.adopters.tolist())
    others = sorted(set(range(10)) - adopters)
    star, runner_up = min(adopters), others[0]
    m.fitness_ema[:] = 5.0
    m.fitness_ema[star] = 1.0  # the fittest agent is an adopter
    m.fitness_ema[runner_up] = 2.0  # the fittest non-adopter
    before = m.population.params.copy()
    rule.after_train(m)
    src = star if expect_adopter else runner_up
    assert _rows_equal_to(m.population.params, src) == adopters | {src}
    np.testing.assert_array_equal(m.population.params[src], before[src])
    assert (m.fitness_ema[sorted(adopters)] == m.fitness_ema[src]).all()


def test_best_independent_with_every_agent_adopting_copies_the_fittest():
    m = _model(6)
    rule = Adoption(1.0, "best_independent")
    m.fitness_ema[:] = np.array([4.0, 3.0, 0.5, 2.0, 6.0, 1.0])
    rule.after_train(m)
    assert _rows_equal_to(m.population.params, 2) == set(range(6))


def test_unknown_adoption_source_is_refused_by_name():
    with pytest.raises(ParameterError, match="adopt_source='worst'.*best_independent"):
        Adoption(0.5, "worst")
    with pytest.raises(ParameterError, match="adopt_source"):
        NeuralModel(adopt_share=0.5, adopt_source="worst")
