"""The Mesa layer: parameters, graphs, errors, per-agent tables."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from models import REGISTRY
from simulator import ParameterError

GOSSIP = REGISTRY["gossip_learning"]


def test_the_documented_example_runs():
    m = GOSSIP(
        n_agents=20, graph=nx.cycle_graph(20), lr=0.0, mixing="metropolis", mixing_rate=1.0, rng=0
    )
    m.step()
    m.run_for(2)
    assert m.population.n_agents == 20 and m.graph.number_of_nodes() == 20
    assert len(m.datacollector.get_model_vars_dataframe()) == 4


def test_seed_given_as_text_is_accepted_like_an_int():
    a, b = GOSSIP(rng="5", n_agents=8, measures="fast"), GOSSIP(rng=5, n_agents=8, measures="fast")
    np.testing.assert_array_equal(a.population.params, b.population.params)


def test_no_seed_draws_one_and_records_it():
    m = GOSSIP(n_agents=8, measures="fast")
    again = GOSSIP(rng=m.seed, n_agents=8, measures="fast")
    np.testing.assert_array_equal(m.population.params, again.population.params)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"lr": -0.1}, "lr=-0.1"),
        ({"mixing_rate": 1.5}, "mixing_rate=1.5"),
        ({"confidence": -1.0}, "confidence"),
        ({"mixing": "magic"}, "mixing='magic'"),
        ({"n_agents": 1}, "n_agents=1"),
        ({"hidden": (0,)}, "hidden"),
        ({"graph": "no_such_graph"}, "no_such_graph"),
    ],
)
def test_bad_parameters_get_a_clear_error(kw, match):
    with pytest.raises(ParameterError, match=match):
        GOSSIP(rng=0, **kw)


def test_a_graph_file_that_does_not_parse_is_refused_clearly(tmp_path):
    bad = tmp_path / "broken.graphml"
    bad.write_text("<graphml><oops")
    with pytest.raises(ParameterError, match="broken.graphml"):
        GOSSIP(graph=str(bad), rng=0)


def test_graph_from_an_edge_list_file(tmp_path):
    path = tmp_path / "ring.edgelist"
    nx.write_edgelist(nx.cycle_graph(9), path, data=False)
    m = GOSSIP(graph=str(path), n_agents=9, rng=0, measures="fast")
    assert m.n_agents == 9 and m.csr.degree.tolist() == [2] * 9


def test_a_graph_object_or_file_sets_the_number_of_agents_when_none_is_given(tmp_path):
    path = tmp_path / "path.edgelist"
    nx.write_edgelist(nx.path_graph(5), path, data=False)
    for graph in (nx.path_graph(5), str(path)):
        m = GOSSIP(graph=graph, rng=0, measures="fast")
        assert m.n_agents == m.p["n_agents"] == m.config["n_agents"] == 5
        with pytest.raises(ParameterError, match="^n_agents=16 .* must be 5, the node count"):
            GOSSIP(graph=graph, n_agents=16, rng=0, measures="fast")


def test_numpy_numbers_are_accepted_as_parameters_and_stored_as_python_ones():
    m = GOSSIP(n_agents=np.int64(12), lr=np.float32(0.5), hidden=(np.int32(4),), rng=0)
    assert (m.n_agents, m.p["hidden"]) == (12, (4,))
    assert type(m.config["n_agents"]) is int and type(m.config["lr"]) is float
    assert m.p["lr"] == float(np.float32(0.5))
    with pytest.raises(ParameterError, match="^n_agents=np.float32"):
        GOSSIP(n_agents=np.float32(12.5), rng=0)


@pytest.mark.parametrize("name", ["n_agents", "lr", "collect_every"])
def test_an_integer_too_large_for_a_float_is_refused_by_name(name):
    with pytest.raises(ParameterError, match=f"^{name}=1000"):
        GOSSIP(**{name: 10**400}, rng=0)


def test_agent_table_has_one_row_per_agent_every_k_steps():
    m = REGISTRY["social_learning"](n_agents=10, agent_every=2, rng=0, measures="fast")
    m.run_for(4)
    df = m.agents_dataframe()
    assert sorted(df["step"].unique()) == [0, 2, 4]
    assert len(df) == 30
    assert {"agent", "loss", "probe_loss", "degree", "cluster", "accuracy"} <= set(df.columns)
    assert np.isfinite(df.select_dtypes("number").to_numpy(dtype=float)).all()


def test_set_graph_rebuilds_the_csr_arrays():
    m = GOSSIP(n_agents=10, graph="ring", rng=0, measures="fast")
    m.set_graph(nx.complete_graph(10))
    assert m.csr.degree.tolist() == [9] * 10
    m.step()


def test_an_infinite_measure_is_recorded_with_a_warning_once():
    m = REGISTRY["polarization"](n_agents=16, lr_spread=1.0, lr=10.0, rng=0, measures="fast")
    with pytest.warns(RuntimeWarning, match="probe_loss .* inf at step") as caught:
        for _ in range(40):
            if np.isinf(m.model_dataframe()["probe_loss"]).any():
                break
            m.step()
    assert np.isinf(m.model_dataframe()["probe_loss"]).any()
    assert sum("inf at step" in str(w.message) for w in caught) == 1


def test_a_generative_task_has_no_probe_loss_column_in_the_agent_table():
    m = REGISTRY["gan_population"](n_agents=6, agent_every=1, rng=0, measures="fast")
    m.step()
    table = m.agents_dataframe()
    assert "probe_loss" not in table.columns and "probe_loss" not in m.model_dataframe()
    assert np.isfinite(table.select_dtypes("number").to_numpy(dtype=float)).all()


@pytest.mark.parametrize("duration", [float("inf"), float("nan"), -1, "3", None, True])
def test_run_for_refuses_a_duration_that_is_not_a_finite_number_of_steps(duration):
    m = REGISTRY["gossip_learning"](n_agents=6, rng=0, graph="complete", measures="fast")
    with pytest.raises(ParameterError, match="duration="):
        m.run_for(duration)  # Mesa's own ran forever (inf) or did nothing (nan, -1)
    with pytest.raises(ParameterError, match="end_time="):
        m.run_until(float("inf"))
    m.run_for(2)
    assert m.steps == 2
