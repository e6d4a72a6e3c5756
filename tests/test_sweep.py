"""Sweeps in one process (backend="serial"): tables, failures, resume, progress, plots, CLI."""

from __future__ import annotations

import io
import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from models import REGISTRY
from simulator.cli import main
from simulator.sweep import load_spec, plot_sweep, sweep
from simulator.sweep.progress import make_progress

SPEC = textwrap.dedent(
    """
    model = "gossip_learning"
    steps = 3
    seeds = [0, 1]

    [fixed]
    n_agents = 8
    measures = "fast"
    graph_params = {k = 2, p = 0.2}

    [vary]
    mixing_rate = [0.0, 1.0]
    lr = [0.01, 0.1]
    """
)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "grid"
    return out, sweep(SPEC, out, backend="serial", progress=None)


def test_each_run_row_holds_its_parameters_seed_and_final_measures(grid):
    out, runs = grid
    spec = load_spec(SPEC)
    assert list(runs["run_id"]) == [r.run_id for r in spec.runs()]
    assert (runs["status"] == "ok").all() and (runs["error"] == "").all()
    row = runs.iloc[5]
    model = REGISTRY["gossip_learning"](
        rng=int(row["seed"]),
        n_agents=8,
        measures="fast",
        graph_params={"k": 2, "p": 0.2},
        mixing_rate=row["mixing_rate"],
        lr=row["lr"],
    )
    model.run_for(3)
    truth = model.model_dataframe()
    for name in model.measure_names:
        assert row[name] == truth[name].iloc[-1]
    steps = pd.read_csv(out / "steps.csv")
    mine = steps[steps["run_id"] == row["run_id"]].reset_index(drop=True)
    assert list(mine["step"]) == [0, 1, 2, 3]
    for name in model.measure_names:
        np.testing.assert_array_equal(mine[name], truth[name])
    assert (mine["graph_params"] == '{"k": 2, "p": 0.2}').all()


def test_manifest_records_spec_hash_versions_and_code_revision(grid):
    out, _ = grid
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["spec_hash"] == load_spec(SPEC).hash
    assert manifest["swept"] == ["mixing_rate", "lr"]
    assert {"numpy", "mesa", "numba"} <= set(manifest["versions"])
    assert manifest["code_revision"] and manifest["history"]


def test_rerunning_into_the_same_folder_runs_nothing_and_changes_nothing(grid):
    out, runs = grid
    before = {name: (out / name).read_bytes() for name in ("runs.csv", "steps.csv")}
    events = []
    again = sweep(SPEC, out, backend="serial", progress=events.append)
    assert events == []
    pd.testing.assert_frame_equal(again, runs)
    assert before == {name: (out / name).read_bytes() for name in before}


def test_a_run_that_raises_is_recorded_and_the_others_finish(tmp_path):
    # lr=10 diverges (losses explode) during the run: checks at spec time cannot see it
    # (4 steps: every run with lr=10 is past the limit of 10^6 x its initial loss by then)
    text = SPEC.replace("lr = [0.01, 0.1]", "lr = [0.01, 10.0]").replace("steps = 3", "steps = 4")
    events = []
    runs = sweep(text, tmp_path, backend="serial", progress=events.append)
    bad = runs["lr"] == 10.0
    assert (runs.loc[bad, "status"] == "failed").all() and bad.sum() == 4
    assert (runs.loc[~bad, "status"] == "ok").all()
    assert runs.loc[bad, "error"].str.contains("DivergenceError: diverged at step").all()
    assert runs.loc[bad, "probe_loss"].isna().all() and runs.loc[~bad, "probe_loss"].notna().all()
    assert "Traceback" in (tmp_path / "errors.log").read_text()
    assert events[-1].done == 8 and events[-1].failed == 4
    # a failed run keeps the steps it collected before it stopped (runs.csv says it failed)
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert set(steps["run_id"]) == set(runs["run_id"])
    failed_steps = steps[steps["run_id"].isin(runs.loc[bad, "run_id"])]
    firsts = failed_steps.groupby("run_id")["step"].agg(["min", "max", "count"])
    assert len(firsts) == 4 and (firsts["min"] == 0).all() and (firsts["max"] <= 4).all()
    assert (firsts["count"] == firsts["max"] + 1).all()  # every step up to the divergence
    # resuming retries the failed runs only, and keeps one row per run and step
    events.clear()
    again = sweep(text, tmp_path, backend="serial", progress=events.append)
    assert len(events) == 4 and all(e.status == "failed" for e in events)
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 8 and len(again) == 8
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "steps.csv").sort_values(["run_id", "step"], ignore_index=True),
        steps.sort_values(["run_id", "step"], ignore_index=True),
    )


def test_record_end_and_every_k_choose_the_rows_of_steps_csv(tmp_path):
    base = SPEC.replace("steps = 3", "steps = 6").replace("seeds = [0, 1]", "seeds = [0]")
    spec_end = base.replace("steps = 6", 'steps = 6\nrecord = "end"')
    sweep(spec_end, tmp_path / "end", backend="serial", progress=None)
    assert set(pd.read_csv(tmp_path / "end" / "steps.csv")["step"]) == {6}
    spec_k = base.replace("steps = 6", "steps = 6\nrecord = {every = 4}")
    runs = sweep(spec_k, tmp_path / "k", backend="serial", progress=None)
    steps = pd.read_csv(tmp_path / "k" / "steps.csv")
    assert sorted(set(steps["step"])) == [0, 4, 6]
    assert (runs["collect_every"] == 4).all()


def test_measures_and_per_agent_rows_are_written_when_the_spec_asks(tmp_path):
    text = SPEC.replace("steps = 3", 'steps = 3\nmeasures = ["probe_loss"]').replace(
        'measures = "fast"', 'measures = "fast"\nagent_every = 3'
    )
    runs = sweep(text, tmp_path, backend="serial", progress=None)
    assert list(runs.columns[-1:]) == ["probe_loss"] and "mean_loss" not in runs.columns
    agents = pd.read_csv(tmp_path / "agents.csv")
    assert len(agents) == len(runs) * 8 * 2  # steps 0 and 3, 8 agents
    assert {"run_id", "mixing_rate", "lr", "seed", "step", "agent", "loss"} <= set(agents.columns)


def test_parquet_tables_equal_the_csv_journal(tmp_path):
    pytest.importorskip("pyarrow")
    runs = sweep(SPEC, tmp_path, backend="serial", progress=None, fmt="parquet")
    back = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(back["run_id"]) == list(pd.read_csv(tmp_path / "runs.csv")["run_id"])
    np.testing.assert_array_equal(back["probe_loss"], runs["probe_loss"])
    assert len(pd.read_parquet(tmp_path / "steps.parquet")) == len(runs) * 4


def test_progress_lines_report_done_failed_and_eta():
    stream = io.StringIO()
    reporter = make_progress("lines", total=3, skipped=1, stream=stream)
    reporter.finished({"status": "ok"})
    reporter.finished({"status": "failed"})
    reporter.close()
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("sweep: 3/3 runs done, 1 failed,") and "ETA 0:00" in lines[-1]


def test_plots_draw_each_measure_against_each_swept_parameter_and_a_heat_map(grid, tmp_path):
    out, _ = grid
    paths = plot_sweep(out, figdir=tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["heatmap_mixing_rate_lr.png", "lr.png", "mixing_rate.png", "steps.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mean = plot_sweep(out, measures=["probe_loss"], stat="mean", figdir=tmp_path / "m")
    assert len(mean) == 4
    with pytest.raises(ValueError, match="measures"):
        plot_sweep(out, measures=["nope"], figdir=tmp_path)


def test_cli_sweep_refuses_an_invalid_spec_naming_the_line(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.replace("mixing_rate = [0.0, 1.0]", "mixing_rate = [0.0, 3.0]"))
    result = CliRunner().invoke(main, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.toml, line 12: mixing_rate=3.0 is not allowed" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_sweep_resume_and_plot(tmp_path):
    spec = tmp_path / "ok.toml"
    spec.write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0]"))
    out = str(tmp_path / "o")
    runner = CliRunner()
    result = runner.invoke(main, ["sweep", str(spec), "--out", out, "--backend", "serial"])
    assert result.exit_code == 0, result.output
    assert "4 runs (0 failed)" in result.output
    result = runner.invoke(main, ["sweep", "--resume", "--out", out, "--backend", "serial"])
    assert result.exit_code == 0 and "4 runs (0 failed)" in result.output
    result = runner.invoke(main, ["plot", out, "--measure", "probe_loss"])
    assert result.exit_code == 0 and "mixing_rate.png" in result.output


def test_progress_bar_counts_resumed_runs_as_done():
    stream = io.StringIO()
    reporter = make_progress("bar", total=4, skipped=2, stream=stream)
    reporter.finished({"status": "ok"})
    reporter.finished({"status": "failed"})
    reporter.close()
    assert "4/4" in stream.getvalue() and "failed=1" in stream.getvalue()


def test_unknown_backend_is_refused_before_the_folder_is_touched(tmp_path):
    with pytest.raises(ValueError, match="backend='ray'.*'local', 'dask', 'serial'"):
        sweep(SPEC, tmp_path / "o", backend="ray")
    assert not (tmp_path / "o").exists()


def test_a_local_workers_run_stops_once_its_sweep_process_is_gone():
    """A local worker is a child of the sweep's process (task["parent"]); a worker whose parent
    is another process (the sweep was killed) does not start or continue runs nobody will
    record. Serial and cluster tasks carry no parent and are never stopped."""
    import os

    from simulator.sweep.runner import Orphaned, _stop_if_orphaned, execute_run

    _stop_if_orphaned({"parent": os.getppid()})  # the parent is alive: nothing happens
    _stop_if_orphaned({})
    with pytest.raises(Orphaned, match="is gone"):
        _stop_if_orphaned({"parent": os.getppid() + 1})
    task = {
        "model": "gossip_learning",
        "params": {"n_agents": 8, "measures": "fast"},
        "seed": 0,
        "steps": 2,
        "record": "every",
        "measures": None,
        "parent": os.getppid() + 1,
    }
    result = execute_run(task)
    assert result["status"] == "failed" and result["error"].startswith("Orphaned")
    assert execute_run({**task, "parent": os.getppid()})["status"] == "ok"


def test_a_parameter_only_some_combinations_set_has_its_column_before_seed(tmp_path):
    """docs/OUTPUTS.md's example: graph_params is set by one [[combinations]] entry only. Every
    row of runs.csv and steps.csv has it, before seed, with the value the run's model used (its
    config), and the sweep's plot reads it as a parameter, not a measure."""
    from simulator.sweep import plot_sweep

    text = textwrap.dedent(
        """
        model = "gossip_learning"
        steps = 2
        seeds = [0]
        measures = ["probe_loss"]
        [fixed]
        n_agents = 12
        [vary]
        mixing_rate = [0.0, 1.0]
        [[combinations]]
        graph = "ring"
        [[combinations]]
        graph = "watts_strogatz"
        graph_params = {k = 2, p = 0.1}
        """
    )
    runs = sweep(text, tmp_path, backend="serial", progress=None)
    for name in ("runs", "steps"):
        header = list(pd.read_csv(tmp_path / f"{name}.csv", nrows=0).columns)
        assert header.index("graph_params") < header.index("seed"), header
    ring = runs[runs["graph"] == "ring"]
    used = REGISTRY["gossip_learning"](rng=0, n_agents=12, graph="ring").config["graph_params"]
    assert (ring["graph_params"] == json.dumps(used)).all()
    assert (runs.loc[runs["graph"] != "ring", "graph_params"] == '{"k": 2, "p": 0.1}').all()
    assert plot_sweep(tmp_path)  # figures written; no parameter taken for a measure
