"""The sweep folder survives kills: torn lines, orphan rows, other specs, two drivers."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from simulator.sweep import SweepFolderError, load_spec, sweep
from simulator.sweep.store import SweepStore

SPEC = textwrap.dedent(
    """
    model = "gossip_learning"
    steps = 2
    seeds = [0, 1, 2]

    [fixed]
    n_agents = 8
    measures = "fast"

    [vary]
    mixing_rate = [0.0, 1.0]
    """
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished sweep folder and its files' bytes."""
    out = tmp_path_factory.mktemp("ref")
    sweep(SPEC, out, backend="serial", progress=None)
    return {name: (out / name).read_bytes() for name in ("runs.csv", "steps.csv")}


def _fresh(tmp_path, reference):
    for name, data in reference.items():
        (tmp_path / name).write_bytes(data)
    spec = load_spec(SPEC)
    store = SweepStore(tmp_path)
    store.open(spec)  # writes the manifest of this spec and code revision
    store.close()
    return spec


def _rows(path):
    """The data lines without the seconds column (timings differ between runs)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return sorted(map(tuple, df.drop(columns=["seconds"], errors="ignore").to_numpy()))


def test_a_torn_last_line_is_cut_off_and_nothing_reruns(tmp_path, reference):
    _fresh(tmp_path, reference)
    with (tmp_path / "runs.csv").open("a") as fh:
        fh.write("0123456789abcdef,gossip_learning,8,fa")  # driver killed mid-write
    with (tmp_path / "steps.csv").open("a") as fh:
        fh.write("0123456789abcdef,8,fast,0.0,0,0,2.1")
    events = []
    sweep(SPEC, tmp_path, backend="serial", progress=events.append)
    assert events == []
    for name, data in reference.items():
        assert (tmp_path / name).read_bytes() == data


def test_steps_of_a_run_whose_row_was_never_written_are_dropped_and_rerun(tmp_path, reference):
    _fresh(tmp_path, reference)
    lines = reference["runs.csv"].decode().splitlines(keepends=True)
    (tmp_path / "runs.csv").write_text("".join(lines[:-1]))  # killed between steps and row
    lost = lines[-1].split(",", 1)[0]
    events = []
    sweep(SPEC, tmp_path, backend="serial", progress=events.append)
    assert [e.run_id for e in events] == [lost]
    assert _rows(tmp_path / "runs.csv") == _rows_bytes(tmp_path, reference["runs.csv"])
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert not steps.duplicated(["run_id", "step"]).any()
    assert _rows(tmp_path / "steps.csv") == _rows_bytes(tmp_path, reference["steps.csv"])


def _rows_bytes(tmp_path, data):
    path = tmp_path / "expected.csv"
    path.write_bytes(data)
    return _rows(path)


def test_a_folder_of_another_spec_is_refused_unless_forced(tmp_path, reference):
    _fresh(tmp_path, reference)
    more_seeds = SPEC.replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2, 3]")
    with pytest.raises(SweepFolderError, match="another sweep.*--force"):
        sweep(more_seeds, tmp_path, backend="serial", progress=None)
    events = []
    runs = sweep(more_seeds, tmp_path, backend="serial", progress=events.append, force=True)
    assert len(events) == 2 and {e.status for e in events} == {"ok"}  # only seed 3 ran
    assert len(runs) == 8 and runs["run_id"].is_unique


def test_a_folder_written_by_another_code_revision_is_refused_unless_forced(tmp_path, reference):
    _fresh(tmp_path, reference)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["code_revision"] = "0" * 40
    path.write_text(json.dumps(manifest))
    with pytest.raises(SweepFolderError, match="code revision 0000"):
        sweep(SPEC, tmp_path, backend="serial", progress=None)
    runs = sweep(SPEC, tmp_path, backend="serial", progress=None, force=True)
    assert len(runs) == 6


def test_two_drivers_cannot_write_one_folder(tmp_path, reference):
    spec = _fresh(tmp_path, reference)
    holder = SweepStore(tmp_path)
    holder.open(spec)
    try:
        with pytest.raises(SweepFolderError, match="another sweep is writing"):
            sweep(SPEC, tmp_path, backend="serial", progress=None)
    finally:
        holder.close()
    assert len(sweep(SPEC, tmp_path, backend="serial", progress=None)) == 6


def test_columns_first_seen_later_widen_the_header(tmp_path):
    spec = load_spec(SPEC)
    store = SweepStore(tmp_path)
    store.open(spec)
    run_a, run_b = spec.runs()[:2]
    store.record(run_a, {"status": "failed", "error": "boom\nsecond line", "seconds": 1}, [])
    steps = pd.DataFrame({"step": [0, 2], "probe_loss": [1.5, 0.25]})
    store.record(run_b, {"status": "ok", "final": {"probe_loss": 0.25}, "steps": steps}, [])
    store.close()
    runs = pd.read_csv(tmp_path / "runs.csv", keep_default_na=False, na_values=[""])
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs["probe_loss"].isna().tolist() == [True, False]
    assert runs["error"][0] == "boom | second line"
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == 3
