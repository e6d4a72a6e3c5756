"""A user-given fitness callable drives imitation and adoption, and bad values get clear errors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from simulator.config import ParameterError
from simulator.model import NeuralModel


def model(fitness, **kw):
    base = dict(
        graph=nx.complete_graph(12),
        hidden=(3,),
        lr=0.0,
        init="independent",
        measures="fast",
        rng=0,
    )
    return NeuralModel(fitness=fitness, **{**base, **kw})


@pytest.mark.parametrize("schedule", ["synchronous", "random_order", "random_independent"])
@pytest.mark.parametrize("favourite", [0, 11])
def test_imitation_takes_over_the_network_the_callable_favours(schedule, favourite):
    """Fitness -1e4 |w_i - w_fav| (w: the first weight): with beta = 50 an agent copies a
    fitter neighbour with probability ~1 and a less fit one ~never, so the favourite's network
    takes over (the default, loss-based fitness would pick some other agent)."""

    def fitness(m):  # read from the network itself, so it travels with copies
        return -1e4 * np.abs(m.population.params[:, 0] - x0[favourite, 0])

    m = model(fitness, imitation_rate=1.0, beta=50.0, mutation=0.0, schedule=schedule)
    x0 = m.population.params.copy()
    m.run_for(60)
    np.testing.assert_array_equal(m.population.params, np.tile(x0[favourite], (12, 1)))


def test_adoption_copies_the_agent_the_callable_calls_best():
    def fitness(m):
        f = np.zeros(m.n_agents)
        f[7] = 1.0
        return f

    m = model(fitness, adopt_share=0.5, adopt_source="best")
    x0 = m.population.params.copy()
    m.step()
    adopters = m.rules[0].adopters
    for i in range(m.n_agents):
        expected = x0[7] if i in adopters else x0[i]
        np.testing.assert_array_equal(m.population.params[i], expected)
    np.testing.assert_array_equal(m.agent_table()["fitness"], fitness(m))


def test_the_callable_may_build_on_the_default_fitness():
    m = model(lambda m: m.default_fitness() + 1.0, imitation_rate=0.5)
    np.testing.assert_allclose(m.fitness, -m.fitness_ema + 1.0)


@pytest.mark.parametrize(
    ("fitness", "match"),
    [
        (lambda m: np.zeros(5), r"shape \(5,\)"),
        (lambda m: np.full(12, np.nan), "NaN or inf"),
        (lambda m: "high", "high"),
        (lambda m: np.zeros((12, 1)), r"shape \(12, 1\)"),
    ],
)
def test_a_bad_fitness_value_is_refused_naming_fitness(fitness, match):
    m = model(fitness, imitation_rate=0.5)
    with pytest.raises(ParameterError, match=f"fitness.*{match}.*12 finite numbers"):
        m.step()


def test_a_fitness_that_is_not_callable_is_refused_at_construction():
    with pytest.raises(ParameterError, match="fitness=3.*callable"):
        model(3)
