"""A sweep on a real Dask cluster: `dask scheduler` and two `dask worker` processes started
separately, as on a cluster, reached through `--scheduler tcp://127.0.0.1:PORT`.

Results equal the local backend's; a worker killed (SIGKILL, no nanny to restart it) in the
middle of the sweep loses nothing: the scheduler reschedules its runs on the other worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).with_name("dask")
SPEC = """
model = "gossip_learning"
steps = 120
seeds = [0, 1, 2]

[fixed]
n_agents = 24
measures = "fast"

[vary]
mixing_rate = [0.0, 0.5]
lr = [0.02, 0.05]
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}


@pytest.fixture
def cluster(tmp_path):
    """(address, [worker processes]) of a scheduler and two single-thread workers."""
    if not DASK.exists():
        pytest.skip("the dask command is not installed")
    port = _port()
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "cluster.log").open("w")
    common = {"cwd": ROOT, "env": _env(), "stdout": log, "stderr": subprocess.STDOUT}
    procs = [
        subprocess.Popen(
            [
                str(DASK),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            **common,
        )
    ]
    workers = [
        subprocess.Popen(
            [
                str(DASK),
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"w{i}",
            ],
            **common,
        )
        for i in range(2)
    ]
    procs += workers
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _sweep(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", "sweep", *args, "--quiet"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _table(out: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(out / name).drop(columns=["seconds"], errors="ignore")
    keys = [c for c in ("run_id", "step") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
def test_a_real_cluster_gives_the_local_results_and_a_killed_worker_loses_nothing(
    tmp_path, cluster
):
    address, workers = cluster
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    local = _sweep(str(spec), "--out", str(tmp_path / "local"), "--backend", "local")
    assert local.wait(timeout=900) == 0, local.stderr.read()

    out = tmp_path / "dask"
    proc = _sweep(str(spec), "--out", str(out), "--backend", "dask", "--scheduler", address)
    runs = out / "runs.csv"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill a worker once some runs are done, others not
        assert proc.poll() is None, proc.stderr.read()
        if runs.exists() and len(runs.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait()
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    table = pd.read_csv(runs)
    assert len(table) == 12 and (table["status"] == "ok").all(), table[["status", "error"]]
    for name in ("runs.csv", "steps.csv"):
        pd.testing.assert_frame_equal(_table(out, name), _table(tmp_path / "local", name))
