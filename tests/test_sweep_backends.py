"""Sweeps on worker processes: same results on every backend, killed workers and drivers.

These start process pools and a Dask LocalCluster (each worker imports the simulator), so they
are slow on a small machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from simulator.sweep import load_spec, sweep

pytestmark = pytest.mark.slow

SPEC = textwrap.dedent(
    """
    model = "gossip_learning"
    steps = 4
    seeds = [0, 1]

    [fixed]
    n_agents = 12
    measures = "fast"

    [vary]
    mixing_rate = [0.0, 0.5]
    lr = [0.02, 0.08]
    """
)
LONGER = SPEC.replace("steps = 4", "steps = 40").replace("n_agents = 12", "n_agents = 16")


def _tables(out):
    runs = pd.read_csv(out / "runs.csv").drop(columns="seconds")
    steps = pd.read_csv(out / "steps.csv")
    return (
        runs.sort_values("run_id").reset_index(drop=True),
        steps.sort_values(["run_id", "step"]).reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """Reference tables of SPEC and LONGER computed in this process."""
    out = {}
    for name, text in (("spec", SPEC), ("longer", LONGER)):
        folder = tmp_path_factory.mktemp(name)
        sweep(text, folder, backend="serial", progress=None)
        out[name] = _tables(folder)
    return out


def _assert_same(out, reference):
    runs, steps = _tables(out)
    pd.testing.assert_frame_equal(runs, reference[0])
    pd.testing.assert_frame_equal(steps, reference[1])


def test_local_pool_gives_the_serial_results(tmp_path, serial):
    runs = sweep(SPEC, tmp_path, backend="local", workers=2, progress=None)
    assert (runs["status"] == "ok").all()
    _assert_same(tmp_path, serial["spec"])


def test_dask_cluster_gives_the_serial_results(tmp_path, serial):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        runs = sweep(
            SPEC, tmp_path, backend="dask", scheduler=cluster.scheduler_address, progress=None
        )
    assert (runs["status"] == "ok").all()
    _assert_same(tmp_path, serial["spec"])


def test_a_killed_worker_does_not_stop_the_sweep_its_runs_are_retried(tmp_path, serial):
    psutil = pytest.importorskip("psutil")
    killed = []

    def kill_a_worker(event):
        if not killed:
            workers = [
                p
                for p in psutil.Process().children(recursive=True)
                if any("popen_loky" in part for part in p.cmdline())
            ]
            victim = workers[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    runs = sweep(LONGER, tmp_path, backend="local", workers=2, progress=kill_a_worker)
    assert killed
    assert (runs["status"] == "ok").all() and runs["run_id"].is_unique
    _assert_same(tmp_path, serial["longer"])


def test_a_killed_driver_resumes_without_duplicate_or_missing_rows(tmp_path, serial):
    spec = tmp_path / "spec.toml"
    spec.write_text(LONGER)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "simulator", "sweep", str(spec), "--out", str(out)]
    driver = subprocess.Popen(
        [*command, "--workers", "2", "--quiet"], start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        runs_csv = out / "runs.csv"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if runs_csv.exists() and len(runs_csv.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # the orphaned pool workers
        except ProcessLookupError:
            pass
    before = pd.read_csv(runs_csv)
    assert 2 <= len(before) < 8
    events = []
    runs = sweep(str(spec), out, backend="serial", progress=events.append)
    assert len(events) == 8 - len(before)
    assert set(runs["run_id"]) == {r.run_id for r in load_spec(LONGER).runs()}
    assert len(pd.read_csv(runs_csv)) == 8
    _assert_same(out, serial["longer"])
