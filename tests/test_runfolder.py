"""`simulator run` writes its folder as one unit and keeps what it computed when it stops early.

Real processes: a run killed with SIGKILL continues from its checkpoint to a model.csv
byte-identical to an uninterrupted run; Ctrl-C (SIGINT) writes the steps so far and a checkpoint.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import REGISTRY
from simulator.checkpoint import read_metadata
from simulator.runfolder import EXIT_CODES, OutputFolder, OutputFolderError, run_into
from simulator.runprogress import StepProgress, kernels_cold

ROOT = Path(__file__).resolve().parent.parent
RUN = ["run", "gossip_learning", "--set", "n_agents=16", "--quiet"]


def simulator(*args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=600,
        env=env,
        **kw,
    )


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            step = read_metadata(path)["steps"]
            if step >= at_least:
                return step
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_a_killed_run_resumes_to_a_byte_identical_model_csv(tmp_path):
    args = [*RUN, "--steps", "300", "--seed", "4", "--agents-every", "7", "--checkpoint-every", "9"]
    whole = simulator(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = start(*args, "--out", str(out))
    step = _wait_for_checkpoint(tmp_path / ".killed.partial" / "checkpoint.npz", proc, 18)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not out.exists()  # nothing that looks complete
    res = simulator("run", "--resume", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    assert step < 300
    for name in ("model.csv", "agents.csv"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "completed" and config["steps_done"] == 300
    assert not (tmp_path / ".killed.partial").exists()


@pytest.mark.slow
def test_ctrl_c_writes_the_steps_so_far_and_a_checkpoint_to_continue(tmp_path):
    out = tmp_path / "run"
    whole = simulator(*RUN, "--steps", "200", "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    proc = start(*RUN[:-1], "--steps", "200", "--out", str(out))
    deadline = time.monotonic() + 300
    line = ""
    while "step" not in line and time.monotonic() < deadline:  # a progress line: steps run
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_CODES["interrupted"], err
    assert "Traceback" not in err and "interrupted at step" in err
    config = json.loads((out / "config.json").read_text())
    k = config["steps_done"]
    assert config["status"] == f"interrupted at step {k}" and 0 < k < 200
    lines = (out / "model.csv").read_text().splitlines()
    assert len(lines) == k + 2  # header + steps 0..k
    res = simulator("run", "--resume", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    assert (out / "model.csv").read_bytes() == (tmp_path / "whole" / "model.csv").read_bytes()


def test_divergence_keeps_the_good_steps_and_exits_3(tmp_path):
    out = tmp_path / "d"
    res = simulator(*RUN, "--set", "lr=10", "--steps", "20", "--out", str(out))
    assert res.returncode == EXIT_CODES["diverged"] == 3
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    config = json.loads((out / "config.json").read_text())
    assert config["status"].startswith(f"diverged at step {config['steps_done']}: agents [")
    rows = (out / "model.csv").read_text().splitlines()
    assert len(rows) == config["steps_done"] + 2
    assert config["status"].endswith("lower lr or set clip_norm (e.g. --set clip_norm=1)")
    # the advice works: the same run with every gradient clipped to norm 1 completes
    clipped = tmp_path / "c"
    res = simulator(
        *RUN, "--set", "lr=10", "--set", "clip_norm=1", "--steps", "20", "--out", str(clipped)
    )
    assert res.returncode == 0, res.stderr
    config = json.loads((clipped / "config.json").read_text())
    assert config["status"] == "completed" and config["parameters"]["clip_norm"] == 1


def test_outputs_that_overflow_before_the_losses_do_stop_the_run_as_diverged(tmp_path):
    """Linear units at lr=10: the probe outputs are NaN or inf by step 3 while the training
    losses are still under the divergence threshold: the collect's check says diverged (3),
    not an error in a step (4)."""
    out = tmp_path / "d"
    args = ("run", "gossip_learning", "--set", "n_agents=12", "--set", "lr=10")
    res = simulator(*args, "--set", "activation=identity", "--steps", "15", "--out", str(out))
    assert res.returncode == EXIT_CODES["diverged"]
    assert "NaN or inf outputs on the probe" in res.stderr and "Traceback" not in res.stderr
    config = json.loads((out / "config.json").read_text())
    rows = (out / "model.csv").read_text().splitlines()
    # the header and steps 0 .. steps_done - 1: the failing step trained, its collect stopped
    assert config["steps_done"] >= 1 and len(rows) == config["steps_done"] + 1


def test_an_existing_folder_is_refused_and_force_replaces_it_whole(tmp_path):
    out = tmp_path / "D"
    first = simulator(*RUN, "--steps", "2", "--seed", "1", "--agents-every", "1", "--out", str(out))
    assert first.returncode == 0, first.stderr
    again = simulator(*RUN, "--steps", "2", "--seed", "2", "--out", str(out))
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
    assert "Traceback" not in again.stderr
    forced = simulator(*RUN, "--steps", "2", "--seed", "2", "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.csv"]  # no agents.csv
    assert json.loads((out / "config.json").read_text())["seed"] == 2


@pytest.mark.parametrize("kind", ["file", "parent-file", "symlink", "dot"])
def test_an_unusable_out_is_found_before_the_first_step(tmp_path, kind):
    (tmp_path / "f").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    out = {"file": "f", "parent-file": "f/sub", "symlink": "link", "dot": "."}[kind]
    start_time = time.monotonic()
    res = simulator(*RUN, "--steps", "100000", "--out", str(tmp_path / out))
    assert res.returncode == 2, res.stderr
    assert "--out" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - start_time < 60  # refused, not run
    assert (tmp_path / "f").read_text() == "x" and not any((tmp_path / "real").iterdir())


def test_planted_symlinks_in_a_partial_folder_are_never_followed(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("precious")
    model = REGISTRY["gossip_learning"](rng=0, n_agents=8)
    folder = OutputFolder(tmp_path / "D", resume=True)
    partial = folder.open()
    for name in (".model.csv.partial", ".config.json.partial", "model.csv", "checkpoint.npz"):
        (partial / name).symlink_to(outside)
    outcome = run_into(model, folder, 2, "gossip_learning", checkpoint_every=1)
    assert outcome.code == 0 and outside.read_text() == "precious"
    assert not any(p.is_symlink() for p in (tmp_path / "D").iterdir())


def test_an_error_inside_a_step_keeps_the_steps_and_logs_the_traceback(tmp_path):
    model = REGISTRY["gossip_learning"](rng=0, n_agents=8)
    calls = {"n": 0}
    train = model.train

    def failing(X, Y):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom\nsecond line")
        return train(X, Y)

    model.train = failing
    folder = OutputFolder(tmp_path / "E")
    folder.open()
    outcome = run_into(model, folder, 10, "gossip_learning")
    assert outcome.code == EXIT_CODES["error"] == 4
    assert outcome.status == "error at step 3: RuntimeError: boom"
    assert "Traceback" in (tmp_path / "E" / "error.log").read_text()
    assert len((tmp_path / "E" / "model.csv").read_text().splitlines()) == 1 + 3  # steps 0..2


def test_resume_refuses_what_it_cannot_honour(tmp_path):
    from click.testing import CliRunner

    from simulator.cli import main

    def cli(*args: str):
        return CliRunner().invoke(main, list(args))

    out = tmp_path / "R"
    run = ["run", "gossip_learning", "--set", "n_agents=8", "--quiet", "--out", str(out)]
    assert cli(*run, "--steps", "3").exit_code == 0
    res = cli("run", "--resume", str(out))
    assert res.exit_code == 2 and "no checkpoint" in res.output
    assert cli(*run, "--steps", "3", "--force", "--checkpoint-every", "2").exit_code == 0
    res = cli("run", "--resume", str(out), "--set", "lr=0.1")
    assert res.exit_code == 2 and "drop --set" in res.output
    res = cli("run", "social_learning", "--resume", str(out))
    assert res.exit_code == 2 and "holds a run of 'gossip_learning'" in res.output
    res = cli("run", "--resume", str(out), "--steps", "1")
    assert res.exit_code == 2 and "already at step 3" in res.output
    res = cli("run", "--resume", str(out), "--steps", "5", "--format", "parquet")
    assert (
        res.exit_code == 2 and "drop --format parquet" in res.output and "writes csv" in res.output
    )
    res = cli("run", "--resume", str(out), "--steps", "5", "--quiet", "--format", "csv")
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["steps_done"] == 5 and config["run"]["checkpoint_every"] == 2
    assert read_metadata(out / "checkpoint.npz")["steps"] == 5  # the period carried over


class _FakeModel:
    def __init__(self, steps, measure_share):
        self.steps = steps
        self.timings = {"task": 0.0, "train": 1.0 - measure_share, "social": 0.0}
        self.timings["measure"] = measure_share
        self.p = {"collect_every": 1, "measures": "standard"}


def test_progress_is_plain_lines_off_a_terminal_with_a_hint_when_measuring_dominates():
    stream = io.StringIO()
    progress = StepProgress(20, quiet=False, stream=stream)
    progress.t0 -= 10  # as if 10 s had passed
    for k in range(1, 21):
        progress.update(_FakeModel(k, 0.8))
    text = stream.getvalue()
    assert text.count("step ") >= 10 and "\x1b" not in text and "\r" not in text
    assert text.count("hint: measuring takes 80% of each step") == 1
    quiet = io.StringIO()
    progress = StepProgress(20, quiet=False, stream=quiet)
    progress.t0 -= 10
    for k in range(1, 21):
        progress.update(_FakeModel(k, 0.2))
    assert "hint" not in quiet.getvalue()


def test_a_cold_kernel_cache_is_detected(tmp_path):
    from simulator.registry import get_model

    get_model("gossip_learning")(rng=0, n_agents=8)  # trains nothing yet: its losses, a collect
    assert not kernels_cold("float32")
    code = "from simulator.runprogress import kernels_cold; print(kernels_cold('float32'))"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    # Numba caches next to the source when it can write there; NUMBA_CACHE_DIR moves it
    assert res.stdout.strip() == "True", res.stderr


def test_output_folder_refuses_a_locked_partial(tmp_path):
    first = OutputFolder(tmp_path / "L")
    first.open()
    with pytest.raises(OutputFolderError, match="another run is writing"):
        OutputFolder(tmp_path / "L", resume=True).open()
    first.close()


@pytest.mark.slow
def test_the_first_run_on_a_cold_cache_says_kernels_compile_and_the_second_does_not(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    outputs = []
    for i in range(2):
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator",
                "run",
                "perceptron_crowd",
                "--steps",
                "1",
                "--set",
                "n_agents=8",
                "--out",
                str(tmp_path / f"o{i}"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert res.returncode == 0, res.stderr
        outputs.append(res.stderr)
    notice = [
        line for line in outputs[0].splitlines() if "compiling the simulation kernels" in line
    ]
    assert len(notice) == 1 and "float32" in notice[0]
    assert "compiling" not in outputs[1]


def test_a_stopped_partial_run_is_not_silently_thrown_away(tmp_path):
    partial = tmp_path / ".D.partial"
    partial.mkdir()
    (partial / "checkpoint.npz").write_bytes(b"stand-in")
    with pytest.raises(OutputFolderError, match="--resume continues it, --force starts over"):
        OutputFolder(tmp_path / "D").open()
    assert (partial / "checkpoint.npz").exists()
    forced = OutputFolder(tmp_path / "D", force=True)
    forced.open()
    assert not (partial / "checkpoint.npz").exists()  # --force starts over
    forced.close()
