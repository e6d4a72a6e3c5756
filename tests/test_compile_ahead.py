"""A helper process compiles a scenario's step and measure kernels beside a cold build."""

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
from click.testing import CliRunner

from simulator import compile_ahead, runprogress
from simulator.cli import main
from simulator.model import NeuralModel
from simulator.params import resolve
from simulator.population import Population
from simulator.registry import load_registry
from simulator.tasks.base import Task

ROOT = Path(__file__).resolve().parents[1]


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_stop_ends_a_running_helper_and_can_be_called_again():
    helper = compile_ahead.Helper(_sleeper())
    assert helper.running()
    helper.stop()
    assert not helper.running() and helper.process.returncode == -signal.SIGTERM
    helper.stop()


def test_no_helper_when_switched_off_or_on_one_cpu(monkeypatch):
    monkeypatch.setattr(compile_ahead, "_current", None)
    monkeypatch.setenv(compile_ahead.ENV, "0")
    assert compile_ahead.start("gossip_learning", {}) is None
    monkeypatch.delenv(compile_ahead.ENV)
    monkeypatch.setattr(compile_ahead, "usable_cpus", lambda: 1)
    assert compile_ahead.start("gossip_learning", {}) is None


def test_one_helper_at_a_time(monkeypatch):
    monkeypatch.delenv(compile_ahead.ENV, raising=False)
    monkeypatch.setattr(compile_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(compile_ahead, "_current", compile_ahead.Helper(_sleeper()))
    try:
        assert compile_ahead.start("gossip_learning", {}) is None
    finally:
        compile_ahead._current.stop()


def test_parameters_refused_or_that_cannot_be_pickled_start_no_helper(monkeypatch):
    monkeypatch.delenv(compile_ahead.ENV, raising=False)
    monkeypatch.setattr(compile_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(compile_ahead, "_current", None)
    assert compile_ahead.start("gossip_learning", {"n_agents": -3}) is None
    assert compile_ahead.start("no_such_scenario", {}) is None
    graph = nx.path_graph(8)
    graph.graph["note"] = lambda: 0  # a valid graph that pickle cannot take
    cls = load_registry()["gossip_learning"]
    resolve(cls.param_specs(), {"graph": graph}, cls.__name__)  # accepted ...
    assert compile_ahead.start("gossip_learning", {"graph": graph}) is None  # ... not pickled


def test_a_run_stops_its_helper_when_the_command_ends(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_ahead.ENV, raising=False)
    monkeypatch.setattr(compile_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(compile_ahead, "_current", None)
    monkeypatch.setattr(runprogress, "kernels_cold", lambda dtype: True)
    args = ["run", "polarization", "--steps", "1", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "in two processes" in result.output
    helper = compile_ahead._current
    assert helper is not None and not helper.running()


@pytest.mark.parametrize("name", sorted(load_registry()))
def test_the_helper_steps_and_measures_every_scenario_and_restores_the_classes(name):
    before = NeuralModel.collect, NeuralModel._cka_baseline, Population.loss, Task.batch
    model = compile_ahead.compile_kernels(name, {})
    assert model.steps == 1 and model._measures["step"] == 1
    after = NeuralModel.collect, NeuralModel._cka_baseline, Population.loss, Task.batch
    assert after == before


def test_an_app_session_starts_a_helper_when_the_kernels_are_cold(monkeypatch):
    from simulator.app import session

    monkeypatch.delenv(compile_ahead.ENV, raising=False)
    monkeypatch.setattr(compile_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(compile_ahead, "_current", None)
    monkeypatch.setattr(session, "kernels_cold", lambda dtype: dtype == "float32")
    app = session.Session("polarization", build=False)
    assert app.rebuild() and compile_ahead._current is not None
    compile_ahead._current.stop()
    monkeypatch.setattr(compile_ahead, "_current", None)
    assert app.set_param("dtype", "float64") and compile_ahead._current is None


def test_the_helpers_population_is_capped():
    model = compile_ahead.compile_kernels("polarization", {"n_agents": 20_000})
    assert model.n_agents == compile_ahead.MAX_AGENTS


_COMPILED_BY_A_STEP = """
import sys
from numba.core import event
compiled = []
class Listener(event.Listener):
    depth = 0
    def on_start(self, e):
        if self.depth == 0:
            compiled.append(e.data["dispatcher"].py_func.__qualname__)
        self.depth += 1
    def on_end(self, e):
        self.depth -= 1
event.register("numba:compile", Listener())
from simulator.registry import get_model
model = get_model("gossip_learning")(rng=0)
model.step()
print(" ".join(compiled))
"""


@pytest.mark.slow
def test_the_helper_leaves_the_step_and_measure_kernels_in_the_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "simulator.compile_ahead"],
        input=pickle.dumps(("gossip_learning", {})),
        env=env,
        check=True,
        timeout=1200,
    )
    out = subprocess.run(
        [sys.executable, "-c", _COMPILED_BY_A_STEP],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
    )
    compiled = set(out.stdout.split())
    # what the helper leaves to the main process (the data), the main process compiled (and
    # no forward pass: the CKA baseline's hidden layers come from NumPy) ...
    assert "teacher_sample" in compiled and "_population_forward" not in compiled
    # ... and what the helper compiled, the main process loaded
    helpers = {"population_lanes", "probe_pass", "mean_cka_parallel", "_align_consensus"}
    assert not compiled & {*helpers, "sweep_components", "mix_rows"}


def _processes_with(env_value: str) -> list[int]:
    """Processes whose environment holds ``env_value`` (Linux /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if env_value.encode() in environ.split(b"\0"):
            found.append(int(pid))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_cold_run_with_a_helper_writes_what_a_warm_run_writes_and_leaves_no_process(tmp_path):
    cache = tmp_path / "cache"
    tag = f"NEUROPOP_TEST_TAG={tmp_path.name}"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env["NEUROPOP_TEST_TAG"] = tmp_path.name
    env.pop(compile_ahead.ENV, None)
    args = [sys.executable, "-m", "simulator", "run", "gossip_learning", "--steps", "3"]
    args += ["--agents-every", "1"]
    cold = subprocess.run(
        [*args, "--out", str(tmp_path / "cold")], env=env, capture_output=True, text=True,
        timeout=1200, check=True,
    )  # fmt: skip
    if compile_ahead.usable_cpus() >= 2:
        assert "in two processes" in cold.stderr
    assert _processes_with(tag) == []  # the helper ended with the run
    env[compile_ahead.ENV] = "0"
    warm = subprocess.run(
        [*args, "--out", str(tmp_path / "warm")], env=env, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip
    assert "compiling" not in warm.stderr
    names = ("model.csv", "agents.csv")
    for name in names:
        assert (tmp_path / "cold" / name).read_bytes() == (tmp_path / "warm" / name).read_bytes()


_SWEEP = """
name = "cold start"
model = "gossip_learning"
steps = 3
seeds = [0, 1]
[fixed]
n_agents = 16
[vary]
mixing_rate = [0.0, 0.5]
"""


@pytest.mark.slow
def test_a_cold_local_sweep_compiles_in_its_first_run_only_and_gives_the_warm_results(tmp_path):
    (tmp_path / "spec.toml").write_text(_SWEEP)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop(compile_ahead.ENV, None)
    tables = {}
    for name in ("cold", "warm"):
        if name == "warm":
            env[compile_ahead.ENV] = "0"
        subprocess.run(
            [sys.executable, "-m", "simulator", "sweep", str(tmp_path / "spec.toml"), "--out",
             str(tmp_path / name), "--workers", "2"],
            env=env, capture_output=True, check=True, timeout=1200,
        )  # fmt: skip
        tables[name] = pd.read_csv(tmp_path / name / "runs.csv").sort_values("run_id")
    cold, warm = (tables[n].reset_index(drop=True) for n in ("cold", "warm"))
    assert (cold["status"] == "ok").all() and len(cold) == 4
    if compile_ahead.usable_cpus() >= 2:  # one run compiled (minutes), the others waited for it
        seconds = cold["seconds"].sort_values().to_numpy()
        assert seconds[-1] > 20 * seconds[-2], seconds
    pd.testing.assert_frame_equal(cold.drop(columns="seconds"), warm.drop(columns="seconds"))
