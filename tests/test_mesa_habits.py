"""Mesa habits a user brings to these models, each with the behaviour Mesa gives: an own
DataCollector, ``model.running = False``, a scenario's own ``__init__`` arguments, agents that
cannot be removed or added, and a scenario file used by ``mesa.batch_run`` (tests/test_mesa.py)."""

from __future__ import annotations

import json
import textwrap
import warnings

import mesa
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from models import REGISTRY
from simulator.checkpoint import CheckpointError
from simulator.cli import main
from simulator.model import NeuralAgent, NeuralModel
from simulator.sweep import sweep

SCENARIOS = textwrap.dedent(
    """
    import mesa
    from simulator import NeuralModel


    class OwnCollector(NeuralModel):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.datacollector = mesa.DataCollector(
                model_reporters={"fd": "function_dispersion"}, agent_reporters={"loss": "loss"}
            )
            self.datacollector.collect(self)

        def step(self):
            super().step()
            self.datacollector.collect(self)


    class Stopper(NeuralModel):
        def step(self):
            super().step()
            if self.steps >= 3:
                self.running = False


    class Boosted(NeuralModel):
        def __init__(self, boost=1.0, **kw):
            super().__init__(**kw)
            self.boost = boost

        def step(self):
            super().step()
            self.population.params *= 1 - 0.01 * self.boost
    """
)


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "habit_scenarios.py"
    path.write_text(SCENARIOS)
    return path


def cli(*args: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(main, list(args))


def _load(scenario_file, name):
    from simulator.registry import get_model

    return get_model(f"{scenario_file}:{name}")


def test_an_own_datacollector_gets_one_row_per_collect_and_the_models_table_stays(scenario_file):
    cls = _load(scenario_file, "OwnCollector")
    model = cls(rng=0, n_agents=10, measures="fast")
    model.run_for(2)
    mine = model.datacollector.get_model_vars_dataframe()
    assert len(mine) == 3  # the user's collect at build and after each step, nothing more
    assert len(model.datacollector.get_agent_vars_dataframe()) == 3 * 10
    table = model.model_dataframe()
    assert table["step"].tolist() == [0, 1, 2]  # the model's own, in measure_collector
    np.testing.assert_array_equal(mine["fd"], table["function_dispersion"])
    assert model.measure_collector is not model.datacollector
    model.datacollector = model.measure_collector  # given back: the model's own again
    assert model.datacollector is model.measure_collector


def test_simulator_run_writes_the_models_table_beside_an_own_collector(scenario_file, tmp_path):
    out = tmp_path / "run"
    ref = f"{scenario_file}:OwnCollector"
    res = cli("run", ref, "--steps", "3", "--set", "n_agents=10", "--out", str(out))
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "model.csv")
    assert table["step"].tolist() == [0, 1, 2, 3] and "mean_loss" in table.columns


def test_running_false_ends_a_run_and_a_sweep_where_mesa_would(scenario_file, tmp_path):
    ref = f"{scenario_file}:Stopper"
    out = tmp_path / "run"
    res = cli("run", ref, "--steps", "10", "--set", "n_agents=10", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "stopped by the model at step 3 (model.running = False)" in res.output
    config = json.loads((out / "config.json").read_text())
    assert config["steps_done"] == 3 and config["status"].startswith("stopped by the model")
    assert pd.read_csv(out / "model.csv")["step"].tolist() == [0, 1, 2, 3]
    spec = f'model = "{ref}"\nsteps = 8\nseeds = [0]\n[fixed]\nn_agents = 8\nmeasures = "fast"\n'
    runs = sweep(spec, tmp_path / "sweep", backend="serial", progress=None)
    assert (runs["status"] == "ok").all()
    assert pd.read_csv(tmp_path / "sweep" / "steps.csv")["step"].tolist() == [0, 1, 2, 3]


def test_an_own_init_argument_is_recorded_and_a_resumed_run_keeps_it(scenario_file, tmp_path):
    ref = f"{scenario_file}:Boosted"
    common = ["run", ref, "--set", "n_agents=10", "--set", "boost=3", "--quiet"]
    assert cli(*common, "--steps", "6", "--out", str(tmp_path / "full")).exit_code == 0
    half = tmp_path / "half"
    res = cli(*common, "--steps", "3", "--checkpoint-every", "3", "--out", str(half))
    assert res.exit_code == 0, res.output
    res = cli("run", "--resume", str(half), "--steps", "6", "--quiet")
    assert res.exit_code == 0, res.output
    full = (tmp_path / "full" / "model.csv").read_bytes()
    assert (half / "model.csv").read_bytes() == full  # boost=3 again, not its default
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["parameters"]["boost"] == 3
    assert (pd.read_csv(tmp_path / "full" / "model.csv")["boost"] == 3).all()
    cls = _load(scenario_file, "Boosted")
    assert cls(rng=0, n_agents=10, measures="fast").config["boost"] == 1.0  # its default
    with pytest.raises(CheckpointError, match=r"__init__ argument boost=.*must be a number"):
        from simulator.checkpoint import save

        save(cls(rng=0, n_agents=10, measures="fast", boost=object()), tmp_path / "x.npz")


def test_agents_cannot_be_removed_or_added_and_nothing_changes():
    model = REGISTRY["gossip_learning"](rng=0, n_agents=20, measures="fast")
    with pytest.raises(TypeError, match="cannot be removed"):
        model.remove_all_agents()  # before the agents exist, too
    with pytest.raises(TypeError, match="agent 3 cannot be removed: .*set_graph"):
        model.agent_list[3].remove()
    with pytest.raises(TypeError, match="cannot be removed"):
        model.agents.select(lambda a: a.index < 5).do("remove")
    with pytest.raises(TypeError, match="made by its model, one per network"):
        NeuralAgent(model, model.space[0], 0)
    assert len(model.agents) == 20 and [a.index for a in model.agent_list] == list(range(20))
    assert all(a.cell is model.space[a.index] for a in model.agent_list)

    class Visitor(mesa.Agent):  # another class of agent: added as in any Mesa model
        pass

    Visitor(model)
    assert len(model.agents) == 21 and len(model.agents_by_type[NeuralAgent]) == 20
    model.step()


def test_a_model_of_the_base_class_records_no_init_arguments():
    model = NeuralModel(rng=0, n_agents=8, measures="fast")
    assert model._init_args == {}
    assert set(model.config) == {*model.p, "seed"}


class Counting(NeuralAgent):
    """A user's agent class: state of its own, set by its step."""

    def step(self):
        self.visits = getattr(self, "visits", 0) + 1
        if self.index % 2:
            self.tag = f"odd{self.index}"


class CountingModel(NeuralModel):
    agent_class = Counting

    def step(self):
        super().step()
        self.agents.shuffle_do("step")


def test_a_checkpoint_keeps_what_a_users_agents_carry(tmp_path):
    """Attributes of the model's agents beyond those it gives them come back from a checkpoint,
    each on its own agent (and absent where it was absent); the run continues as the original."""
    import simulator

    model = CountingModel(rng=0, n_agents=10, measures="fast")
    model.run_for(3)
    model.save(tmp_path / "c.npz")
    back = simulator.load(tmp_path / "c.npz", model_class=CountingModel)
    assert [a.visits for a in back.agent_list] == [3] * 10
    assert [getattr(a, "tag", None) for a in back.agent_list] == [
        f"odd{i}" if i % 2 else None for i in range(10)
    ]
    assert not hasattr(back.agent_list[0], "tag")
    model.run_for(2)
    back.run_for(2)
    assert [a.visits for a in back.agent_list] == [5] * 10
    pd.testing.assert_frame_equal(back.model_dataframe(), model.model_dataframe())
    model.agent_list[0].visits = object()
    with pytest.raises(CheckpointError, match=r"agents' attribute 'visits'"):
        model.save(tmp_path / "d.npz")
