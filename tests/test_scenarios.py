"""Contract tests every registered scenario gets for free."""

from __future__ import annotations

import numpy as np
import pytest

from models import REGISTRY
from simulator import NeuralAgent, NeuralModel, ParameterError


@pytest.fixture(params=sorted(REGISTRY))
def scenario(request):
    return REGISTRY[request.param]


def test_every_scenario_runs_with_its_defaults(scenario):
    m = scenario(rng=1)
    m.run_for(3)
    df = m.datacollector.get_model_vars_dataframe()
    assert list(df["step"]) == [0, 1, 2, 3]
    assert set(m.measure_names) <= set(df.columns)
    assert np.isfinite(df[m.measure_names].to_numpy(dtype=float)).all()


def test_every_scenario_is_a_mesa_model_of_neural_agents_on_a_network(scenario):
    m = scenario(rng=0, n_agents=12, measures="fast")
    assert isinstance(m, NeuralModel)
    agents = list(m.agents)
    assert len(agents) == 12 and all(isinstance(a, NeuralAgent) for a in agents)
    a = agents[5]
    assert np.shares_memory(a.network.params, m.population.params)
    assert a.cell.coordinate == a.index
    assert sorted(n.coordinate for n in a.cell.neighborhood) == sorted(a.neighbor_indices)


def test_every_scenario_documents_its_question_and_measures(scenario):
    doc = scenario.__doc__ or ""
    for word in ("Question", "Mechanism", "Watch"):
        assert word in doc


def test_every_parameter_has_a_default_that_validates(scenario):
    for name, spec in scenario.param_specs().items():
        assert spec.validate(name, spec.default) == spec.validate(name, spec.default)


def test_unknown_parameter_is_refused_with_the_list_of_parameters(scenario):
    with pytest.raises(ParameterError, match="no parameter 'lrr'.*lr"):
        scenario(lrr=0.1)


def test_same_seed_same_numbers_other_seed_other_numbers(scenario):
    a = scenario(rng=7, n_agents=16, measures="fast")
    b = scenario(rng=7, n_agents=16, measures="fast")
    c = scenario(rng=8, n_agents=16, measures="fast")
    for m in (a, b, c):
        m.run_for(3)
    assert a.model_dataframe().equals(b.model_dataframe())
    assert not np.array_equal(a.population.params, c.population.params)


def test_scenarios_run_under_mesa_batch_run():
    import mesa

    results = mesa.batch_run(
        REGISTRY["gossip_learning"],
        parameters={"n_agents": 10, "mixing_rate": [0.0, 1.0], "measures": "fast"},
        number_processes=1,
        max_steps=3,
        data_collection_period=-1,
        rng=[0],
        display_progress=False,
    )
    assert len(results) == 2
    assert {r["mixing_rate"] for r in results} == {0.0, 1.0}
