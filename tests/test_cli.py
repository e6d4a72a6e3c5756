"""The `simulator` command line: real runs writing real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def simulator(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_run_writes_tidy_model_agents_and_config(tmp_path):
    out = tmp_path / "run"
    res = simulator(
        "run",
        "social_learning",
        "--steps",
        "4",
        "--seed",
        "3",
        "--set",
        "n_agents=12",
        "--set",
        "measures='fast'",
        "--agents-every",
        "2",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    model = pd.read_csv(out / "model.csv")
    assert list(model["step"]) == [0, 1, 2, 3, 4]
    assert {"accuracy", "ensemble_accuracy", "function_dispersion", "n_agents", "lr"} <= set(
        model.columns
    )
    assert (model["n_agents"] == 12).all() and (model["model"] == "social_learning").all()
    assert not model.isna().any().any()
    agents = pd.read_csv(out / "agents.csv")
    assert len(agents) == 12 * 3 and set(agents["step"]) == {0, 2, 4}
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3 and config["parameters"]["n_agents"] == 12
    assert config["versions"]["mesa"] and config["model"] == "social_learning"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no_such_model"], "unknown scenario 'no_such_model'"),
        (["run", "gossip_learning", "--set", "lr=-1"], "lr=-1"),
        (["run", "gossip_learning", "--set", "mixing_rate=2"], "mixing_rate=2"),
        (["run", "gossip_learning", "--set", "lrr=1"], "no parameter 'lrr'"),
        (["run", "gossip_learning", "--set", "graph=/no/such/file.graphml"], "file.graphml"),
        (["run", "gossip_learning", "--set", "rng=3"], "give the seed with --seed"),
        (["run", "gossip_learning", "--set", "task_params={1: 2}"], "task_params={1: 2}"),
        (["run", "gossip_learning", "--set", "lr=True"], "lr=True"),
        (["run", "gossip_learning", "--set", "dtype=None"], "dtype=None"),
        (["run", "gan_population", "--set", "task=teacher"], "task='teacher'"),
        (["run", "gossip_learning", "--divergence-factor", "nan"], "--divergence-factor"),
        (["run", "gossip_learning", "--set", "n_agents=1" + "0" * 400], "n_agents=1000"),
        (["run", "gossip_learning", "--set", "lr=" + "-" * 3000 + "1"], "lr='---"),  # too deep
        (["run", "gossip_learning", "--set", "graph_params={[1]: 2}"], "graph_params="),
        (["run", "gossip_learning", "--set", "hidden=(100000000,)"], "hidden=(100000000,)"),
        (
            ["run", "gossip_learning", "--agents-every", "1", "--set", "agent_every=2"],
            "--agents-every 1 and --set agent_every=2 disagree",
        ),
    ],
)
def test_bad_input_gets_a_clear_error_and_no_output(tmp_path, args, message):
    out = tmp_path / "out"
    res = simulator(*args, "--steps", "2", "--out", str(out))
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (out / "model.csv").exists()


def test_models_lists_scenarios_and_their_parameters():
    res = simulator("models")
    assert (
        res.returncode == 0 and "gossip_learning" in res.stdout and "social_learning" in res.stdout
    )
    res = simulator("models", "gossip_learning")
    assert res.returncode == 0
    assert "mixing_rate" in res.stdout and "a number in [0, 1]" in res.stdout


@pytest.mark.slow
def test_same_seed_gives_byte_identical_model_csv_on_one_and_two_threads(tmp_path):
    outputs = []
    for threads in ("1", "2", "2"):
        out = tmp_path / f"t{threads}-{len(outputs)}"
        res = simulator(
            "run",
            "social_learning",
            "--steps",
            "6",
            "--seed",
            "11",
            "--set",
            "n_agents=40",
            "--out",
            str(out),
            "--quiet",
            env={"NUMBA_NUM_THREADS": threads},
        )
        assert res.returncode == 0, res.stderr
        outputs.append((out / "model.csv").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_every_scenario_runs_with_every_task_or_names_why_not():
    """A scenario's default task_params belong to its default task (--set task=OTHER works)."""
    import warnings

    from models import REGISTRY
    from simulator import ParameterError
    from simulator.tasks import TASKS

    for name, cls in REGISTRY.items():
        for task in TASKS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    model = cls(rng=0, n_agents=8, task=task, measures="fast")
                model.step()
            except ParameterError as exc:  # the GAN learns a distribution: only task="ring";
                # task="arrays" holds the user's data, so without task_params it names them
                gan = name == "gan_population" and "task='" in str(exc)
                assert gan or (task == "arrays" and "task_params" in str(exc)), (name, task, exc)
            else:
                assert model.task.name == task and model.steps == 1
