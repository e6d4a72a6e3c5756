"""Sweep specs checked whole before anything is written; damaged journals named; in-flight runs
continued from their checkpoints when a killed sweep is resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from simulator.checkpoint import read_metadata
from simulator.cli import main
from simulator.sweep import SpecError, load_spec, sweep
from simulator.sweep.store import SweepFolderError

ROOT = Path(__file__).resolve().parent.parent


def spec(body: str, model: str = "gossip_learning") -> str:
    return f'model = "{model}"\nsteps = 2\n' + textwrap.dedent(body).lstrip("\n")


@pytest.mark.parametrize(
    ("body", "model", "message"),
    [
        (  # impossible combination: k >= n_agents
            "[fixed]\nn_agents = 3\ngraph_params = {k = 4, p = 0.1}\n",
            "gossip_learning",
            "graph_params['k']=4 is not allowed",
        ),
        (  # a generator parameter of another graph
            '[fixed]\ngraph_params = {d = 4}\n[vary]\ngraph = ["random_regular", "erdos_renyi"]\n',
            "gossip_learning",
            "unknown key(s) 'd' for graph='erdos_renyi'",
        ),
        ('[fixed]\ngraph = "/no/such/file.graphml"\n', "gossip_learning", "does not exist"),
        ("[fixed]\ntask_params = {foo = 1}\n", "social_learning", "no parameter(s) 'foo'"),
        (
            "[vary]\ntask_params = [{classes_per_agent = 2}, {classes_per_agent = 99}]\n",
            "social_learning",
            "classes_per_agent=99",
        ),
        ('[fixed]\nn_agents = 1000000\ngraph = "complete"\n', "gossip_learning", "expected edges"),
        ('[fixed]\ntask = "teacher"\n', "gan_population", "task='teacher' is not allowed"),
        ("seeds = {count = 1000000000}\n", "gossip_learning", "at most 10,000"),
        ("[vary]\nlr = {start = 0.0, stop = 1.0, step = 1e-12}\n", "gossip_learning", "10,000"),
        ("[vary]\nlr = {start = 0.0, stop = 1.0, num = 100000000}\n", "gossip_learning", "10,000"),
        (
            "seeds = {count = 1000}\n[vary]\nlr = {start = 0.0, stop = 1.0, num = 1000}\n",
            "gossip_learning",
            "1,000,000 runs",
        ),
        ("[fixed]\nrng = 3\n", "gossip_learning", "no parameter 'rng'"),
        ("[fixed]\nlr = true\n", "gossip_learning", "lr=True"),
        ('[fixed]\ndtype = "float16"\n', "gossip_learning", "dtype='float16'"),
    ],
)
def test_a_spec_that_cannot_run_is_refused_before_anything_is_written(
    tmp_path, body, model, message
):
    out = tmp_path / "out"
    start = time.monotonic()
    with pytest.raises(SpecError) as err:
        sweep(spec(body, model), out, backend="serial", progress=None)
    assert message in str(err.value)
    assert time.monotonic() - start < 30  # nothing huge was allocated or built
    assert not out.exists()
    res = CliRunner().invoke(
        main,
        [
            "sweep",
            str(_write(tmp_path, spec(body, model))),
            "--out",
            str(out),
            "--backend",
            "serial",
        ],
    )
    assert res.exit_code == 2 and message in res.output and not out.exists()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_every_scenario_accepts_every_task_in_a_spec_or_names_why_not():
    from models import REGISTRY
    from simulator.tasks import TASKS

    for name in REGISTRY:
        for task in TASKS:
            text = spec(f'[fixed]\nn_agents = 8\ntask = "{task}"\n', name)
            try:
                assert len(load_spec(text).runs()) == 1
            except SpecError as exc:  # the GAN takes only task="ring"; "arrays" needs data
                gan = name == "gan_population" and "task=" in str(exc)
                assert gan or (task == "arrays" and "task_params" in str(exc)), (name, task, exc)


GOOD = spec('seeds = [0, 1]\n[fixed]\nn_agents = 8\nmeasures = "fast"\n')


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("manifest.json", "{not json", "manifest.json, line 1: not valid JSON"),
        ("manifest.json", '{\n  "spec": {}\n}\n', "not a sweep manifest (no spec_hash"),
        ("manifest.json", "[1, 2]", "not a sweep manifest"),
        ("runs.csv", "a,b\n1,2\n", "runs.csv, line 1"),
        ("runs.csv", "\x00\x01\x02garbage\n", "runs.csv, line 1"),
        ("runs.csv", b"run_id,status,error\n\xff\xfe,ok,\n", "cannot be read"),
    ],
)
def test_a_damaged_journal_is_named_on_resume_and_plot(tmp_path, name, content, message):
    out = tmp_path / "s"
    sweep(GOOD, out, backend="serial", progress=None)
    if isinstance(content, bytes):
        (out / name).write_bytes(content)
    else:
        (out / name).write_text(content)
    with pytest.raises(SweepFolderError, match=message.replace("(", r"\(")):
        sweep(None, out, backend="serial", progress=None) if name == "runs.csv" else sweep(
            GOOD, out, backend="serial", progress=None
        )
    res = CliRunner().invoke(main, ["sweep", "--resume", "--out", str(out), "--backend", "serial"])
    assert res.exit_code == 2 and name in res.output, res.output
    res = CliRunner().invoke(main, ["plot", str(out)])
    assert res.exit_code == 2 and name in res.output, res.output
    assert "Traceback" not in res.output


def test_a_ragged_runs_csv_is_named_when_read(tmp_path):
    from simulator.sweep import read_runs

    out = tmp_path / "s"
    sweep(GOOD, out, backend="serial", progress=None)
    with (out / "runs.csv").open("a") as fh:
        fh.write("x,y,z,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26\n")
    with pytest.raises(SweepFolderError, match="runs.csv"):
        read_runs(out)


SLOW_SPEC = spec(
    'seeds = [0, 1]\n[fixed]\nn_agents = 12\nmeasures = "fast"\n[vary]\nlr = [0.01, 0.05]\n'
).replace("steps = 2", "steps = 300")


def _frame(out: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(out / name).drop(columns=["seconds", "resumed_from_step"], errors="ignore")
    return df.sort_values([c for c in ("run_id", "step") if c in df]).reset_index(drop=True)


def test_a_killed_sweep_continues_its_in_flight_runs_from_their_checkpoints(tmp_path):
    path = _write(tmp_path, SLOW_SPEC)
    whole = tmp_path / "whole"
    sweep(str(path), whole, backend="serial", progress=None)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["sweep", str(path), "--out", str(out), "--backend", "serial", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", *args, "--checkpoint-every", "10"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline, step = time.monotonic() + 300, 0
    while step < 20 and time.monotonic() < deadline:  # the first run is well under way
        assert proc.poll() is None, proc.stderr.read()
        for ck in (out / "checkpoints").glob("*.npz"):
            try:
                step = max(step, read_metadata(ck)["steps"])
            except Exception:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any((out / "checkpoints").glob("*.npz"))
    res = CliRunner().invoke(  # no --checkpoint-every: the checkpoints found are used
        main, ["sweep", "--resume", "--out", str(out), "--backend", "serial", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "ok").all() and len(runs) == 4
    assert runs["resumed_from_step"].max() >= 20  # continued, not rerun from step 0
    assert not any((out / "checkpoints").glob("*.npz"))
    for name in ("runs.csv", "steps.csv"):
        pd.testing.assert_frame_equal(_frame(out, name), _frame(whole, name))
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["history"]) == 2


@pytest.mark.parametrize("name", ["runs.csv", "steps.csv", "manifest.json", ".runs.csv.partial"])
def test_symlinks_planted_in_a_sweep_folder_are_never_followed(tmp_path, name):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    out = tmp_path / "s"
    sweep(GOOD, out, backend="serial", progress=None)
    (out / name).unlink(missing_ok=True)
    (out / name).symlink_to(outside)
    try:
        sweep(
            GOOD.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"),
            out,
            backend="serial",
            progress=None,
            force=True,
        )
    except SweepFolderError as exc:
        assert "symlink" in str(exc)
    assert outside.read_text() == "precious\n"
