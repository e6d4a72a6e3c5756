"""The scenarios as ordinary Mesa models: SolaraViz (Reset and parameter changes), string
reporters in a user's own DataCollector, agent tables, batch_run, and the version bounds."""

from __future__ import annotations

import importlib.util
import tomllib
import warnings
from importlib.metadata import version
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import pytest
from mesa.experimental.scenarios import Scenario

from simulator.config import ParameterError
from simulator.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = load_registry()
SMALL = {"n_agents": 10, "measures": "fast"}


@pytest.fixture(params=sorted(REGISTRY))
def scenario(request):
    return REGISTRY[request.param]


def test_every_scenario_rebuilds_from_what_solaraviz_reset_passes(scenario):
    from mesa.visualization.solara_viz import _build_model_init_kwargs

    model = scenario(rng=0, **SMALL)
    # what SolaraViz's Reset button hands the model class (mesa 3.5: an extra scenario=)
    kwargs = _build_model_init_kwargs(
        model,
        {"rng": "7", **SMALL, "n_agents": 12},
        add_scenario_when_empty=True,
        require_model_accepts_scenario=True,
    )
    assert isinstance(kwargs.get("scenario"), Scenario)
    reset = type(model)(**kwargs)
    direct = scenario(rng=7, **{**SMALL, "n_agents": 12})
    assert (reset.n_agents, reset.seed) == (12, 7)
    reset.run_for(2)
    direct.run_for(2)
    pd.testing.assert_frame_equal(reset.model_dataframe(), direct.model_dataframe())


def test_a_mesa_scenario_carries_seed_and_parameters():
    cls = REGISTRY["gossip_learning"]
    m = cls(scenario=Scenario(rng=3, n_agents=14, mixing_rate=0.2))
    assert (m.seed, m.n_agents, m.p["mixing_rate"]) == (3, 14, 0.2)
    assert m.scenario.n_agents == 14
    with pytest.raises(ParameterError, match="n_agents given both"):
        cls(n_agents=20, scenario=Scenario(rng=3, n_agents=14))
    with pytest.raises(ParameterError, match="differ"):
        cls(rng=4, scenario=Scenario(rng=3))
    with pytest.raises(ParameterError, match="no parameter 'n_agentz'.*did you mean 'n_agents'"):
        cls(scenario=Scenario(rng=3, n_agentz=14))
    with pytest.raises(ParameterError, match="scenario="):
        cls(scenario={"n_agents": 3})


def test_every_measure_is_a_model_attribute_for_string_reporters(scenario):
    m = scenario(rng=1, n_agents=10)
    reporters = {name: name for name in m.measure_names}
    dc = mesa.DataCollector(model_reporters=reporters)
    for _ in range(2):
        m.step()
        dc.collect(m)
    mine = dc.get_model_vars_dataframe().astype(float)
    builtin = m.model_dataframe()[m.measure_names].iloc[-2:].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, builtin.astype(float), check_names=False)
    with pytest.raises(AttributeError, match="no attribute 'not_a_measure'"):
        _ = m.not_a_measure


def test_agent_properties_work_as_string_agent_reporters():
    m = REGISTRY["gossip_learning"](rng=0, n_agents=12)
    dc = mesa.DataCollector(
        model_reporters={"fd": "function_dispersion"},
        agent_reporters={"loss": "loss", "fitness": "fitness", "degree": "degree"},
    )
    m.step()
    dc.collect(m)
    agents = dc.get_agent_vars_dataframe()
    assert len(agents) == 12
    by_row = {a.unique_id: a.index for a in m.agents}
    rows = [by_row[i] for i in agents.index.get_level_values("AgentID")]
    np.testing.assert_array_equal(agents["loss"].to_numpy(), m.losses[rows])
    np.testing.assert_array_equal(agents["degree"].to_numpy(), m.csr.degree[rows])
    assert dc.get_model_vars_dataframe()["fd"].iloc[0] == m.function_dispersion


def test_builtin_collector_gives_the_vectorized_agent_tables():
    m = REGISTRY["social_learning"](rng=0, n_agents=10, agent_every=2, measures="fast")
    m.run_for(4)
    agents = m.datacollector.get_agent_vars_dataframe()
    assert agents.index.names == ["Step", "AgentID"]
    assert sorted(set(agents.index.get_level_values("Step"))) == [0, 2, 4]
    assert {"loss", "probe_loss", "fitness", "degree", "cluster", "accuracy"} <= set(agents)
    ids = {a.index: a.unique_id for a in m.agents}
    last = agents.xs(4, level="Step")
    assert list(last.index) == [ids[i] for i in last["agent"]]
    np.testing.assert_allclose(last["loss"].to_numpy(), m.losses)


def test_builtin_collector_keeps_a_users_own_reporters_beside_the_measures():
    """The built-in collector appends the model's own measures itself (no deepcopy of each
    float) and leaves a user's reporters given to it (a lambda, a string, a function with
    arguments, one returning an array, an agent reporter) to Mesa's collect: the same tables
    as Mesa's own DataCollector with the same reporters, ``model_reporters`` unchanged."""
    from simulator.mesa_interop import NeuralDataCollector

    m = REGISTRY["gossip_learning"](rng=0, n_agents=12, measures="fast")
    user = {
        "twice": lambda model: 2.0 * model.function_dispersion,
        "fd": "function_dispersion",
        "n": [len, [m.agent_list]],
        "losses": lambda model: model.losses,  # an array: Mesa keeps a copy of each step's
    }
    reporters = {**m.datacollector.model_reporters, **user}
    agent_reporters = {"degree": "degree"}
    m.datacollector = dc = NeuralDataCollector(
        m, model_reporters=reporters, agent_reporters=agent_reporters
    )
    mine = dc.model_reporters
    plain = mesa.DataCollector(model_reporters=reporters, agent_reporters=agent_reporters)
    for collector in (dc, plain):
        collector.collect(m)
    for _ in range(3):
        m.step()
        plain.collect(m)
    assert dc.model_reporters is mine and list(mine) == list(reporters)
    ours, theirs = dc.get_model_vars_dataframe(), plain.get_model_vars_dataframe()
    losses = ours.pop("losses").iloc[-1], theirs.pop("losses").iloc[-1]
    pd.testing.assert_frame_equal(ours, theirs)
    assert len(ours) == 4 and all(type(v) is float for v in dc.model_vars["function_dispersion"])
    assert losses[0] is not m.losses and np.array_equal(losses[0], m.losses)
    assert np.array_equal(losses[0], losses[1])
    pd.testing.assert_frame_equal(dc.get_agent_vars_dataframe(), plain.get_agent_vars_dataframe())


def test_builtin_collector_without_agent_rows_warns_and_returns_an_empty_table():
    m = REGISTRY["gossip_learning"](rng=0, n_agents=8, measures="fast")
    m.step()
    with pytest.warns(UserWarning, match="agent_every"):
        agents = m.datacollector.get_agent_vars_dataframe()
    assert len(agents) == 0 and agents.index.names == ["Step", "AgentID"]


def test_mesa_batch_run_runs_a_scenario():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = mesa.batch_run(
            REGISTRY["gossip_learning"],
            parameters={"n_agents": 8, "mixing_rate": [0.0, 1.0], "measures": "fast"},
            number_processes=1,
            data_collection_period=-1,
            max_steps=3,
            rng=[0],
            display_progress=False,
        )
    df = pd.DataFrame(results)
    assert sorted(df["mixing_rate"]) == [0.0, 1.0]
    assert "function_dispersion" in df.columns
    by_rate = df.set_index("mixing_rate")["consensus_distance"]
    assert by_rate[1.0] < by_rate[0.0]  # averaging with neighbours homogenizes


def _solaraviz_example():
    spec = importlib.util.spec_from_file_location(
        "solara_viz_example", ROOT / "examples" / "solara_viz.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_solaraviz_page_steps_and_resets_with_a_changed_parameter():
    solara = pytest.importorskip("solara")
    v = pytest.importorskip("ipyvuetify")
    from solara.components.applayout import AppLayout

    example = _solaraviz_example()
    _, rc = solara.render(AppLayout(children=[example.page]), handle_error=False)

    def status() -> str:
        found = rc.find(v.Html, class_="neuropop-viz-status").widgets
        return str(found[0].children[0]) if found else ""

    assert status().startswith("step 0 | 64 agents")
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert status().startswith("step 1 | 64 agents")
    rc.find(v.Slider, label="n_agents").widget.v_model = 30
    rc.find(v.Btn, children=["Reset"]).widget.click()
    assert status().startswith("step 0 | 30 agents | seed 0")
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert status().startswith("step 1 | 30 agents")
    assert not rc.find(v.Alert).widgets  # no error shown


def test_pyproject_bounds_mesa_and_numba_to_the_tested_versions():
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = {Requirement(d).name.lower(): Requirement(d) for d in deps}
    for name in ("mesa", "numba", "altair"):
        spec = reqs[name].specifier
        assert spec.contains(version(name)), (name, str(spec), version(name))
    for name in ("mesa", "numba"):
        assert any(s.operator == "<" for s in reqs[name].specifier), f"{name} has no upper bound"


def test_every_scenario_resets_in_solaraviz_with_its_own_parameters(scenario):
    solara = pytest.importorskip("solara")
    v = pytest.importorskip("ipyvuetify")
    from mesa.visualization import SolaraViz, make_plot_component
    from solara.components.applayout import AppLayout

    from simulator.mesa_interop import solaraviz_params
    from simulator.registry import own_parameters

    params = solaraviz_params(scenario)
    assert set(params) == {"rng", *own_parameters(scenario)[0]}
    model = solara.Reactive(scenario(rng=0))
    page = SolaraViz(model, components=[make_plot_component("mean_loss")], model_params=params)
    _, rc = solara.render(AppLayout(children=[page]), handle_error=False)
    try:
        rc.find(v.Btn, children=["Step"]).widget.click()
        assert model.value.steps == 1
        rc.find(v.Btn, children=["Reset"]).widget.click()
        assert model.value.steps == 0 and model.value.seed == 0
        assert type(model.value) is scenario
        assert not rc.find(v.Alert).widgets
    finally:
        rc.close()


@pytest.mark.slow
def test_batch_run_in_processes_runs_a_scenario_loaded_from_a_file(tmp_path):
    """mesa.batch_run forces the spawn start method: its workers import the scenario's class by
    module name. A scenario loaded from a file (``get_model("path.py:Class")``) is importable
    there (its folder goes on sys.path), so two processes give the rows one gives; before, every
    worker died unpickling the class and batch_run waited forever."""
    import subprocess
    import sys

    home = tmp_path / "elsewhere"
    home.mkdir()
    (home / "my_crowd_scenario.py").write_text(
        "from models.gossip_learning import GossipLearning\n\n"
        "class MyCrowd(GossipLearning):\n"
        "    pass\n"
    )
    script = tmp_path / "run_batch.py"
    script.write_text(
        "import json, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import mesa\n"
        "from simulator.registry import get_model\n"
        "if __name__ == '__main__':\n"
        f"    cls = get_model({str(home / 'my_crowd_scenario.py') + ':MyCrowd'!r})\n"
        "    rows = {}\n"
        "    for procs in (1, 2):\n"
        "        out = mesa.batch_run(cls, parameters={'n_agents': [8, 10], 'measures': 'fast'},\n"
        "                             rng=[0], max_steps=2, number_processes=procs,\n"
        "                             data_collection_period=-1, display_progress=False)\n"
        "        rows[procs] = sorted((r['n_agents'], r['consensus_distance']) for r in out)\n"
        "    print(json.dumps(rows))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert [n for n, _ in rows["2"]] == [8, 10]
    assert rows["2"] == rows["1"]  # the same runs, whatever the number of processes
