"""The busy processes the benchmarks measure beside (``--load N``): really running during the
block, gone after it (also when the block raises), and the options that ask for them."""

from __future__ import annotations

import pytest

from benchmarks.busy import busy_processes, fair_share_slowdown, parse_loads
from benchmarks.model_step import median_rows, slowdown_markdown


def test_busy_processes_run_during_the_block_and_are_reaped_after_it():
    with busy_processes(2) as procs:
        assert len(procs) == 2
        assert all(p.poll() is None for p in procs)  # still running: spinning
    assert all(p.returncode is not None for p in procs)  # killed and reaped


def test_busy_processes_are_reaped_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"):
        with busy_processes(1) as procs:
            raise RuntimeError("boom")
    assert procs[0].returncode is not None


def test_no_busy_process_for_a_quiet_level():
    with busy_processes(0) as procs:
        assert procs == []


def test_parse_loads_and_its_errors_name_the_option():
    assert parse_loads("0,1,2") == [0, 1, 2]
    for bad in ("", "1,x", "-1", "65"):
        with pytest.raises(ValueError, match="--load"):
            parse_loads(bad)


def test_fair_share_of_two_cores():
    assert fair_share_slowdown(2, 0, cores=2) == 1.0
    assert fair_share_slowdown(2, 1, cores=2) == 1.5
    assert fair_share_slowdown(2, 2, cores=2) == 2.0
    assert fair_share_slowdown(1, 1, cores=2) == 1.0  # one thread beside one busy: a core each
    assert fair_share_slowdown(8, 1, cores=2) == 1.5  # more threads than cores: the cores count


def test_slowdown_table_divides_each_phase_by_its_quiet_time():
    phases = {"task": 1.0, "train": 2.0, "social": 0.5, "measure": 1.0}
    quiet = [{"scenario": "s", "agents": 10, "step": 4.5, "threads": 2, **phases}]
    loaded = [{"scenario": "s", "agents": 10, "step": 9.0, "threads": 2}]
    loaded[0] |= {k: 2 * v for k, v in phases.items()}
    table = slowdown_markdown(quiet, loaded, busy=1)
    assert table.splitlines()[-1] == "| s | 10 | 4.5 | 2.00 | 2.00 | 2.00 | 2.00 | 2.00 | " + (
        f"{fair_share_slowdown(2, 1):.2f} |"
    )


def test_median_rows_take_each_figure_median_and_keep_failures():
    def row(step, train, error=None):
        r = {"scenario": "s", "agents": 10, "threads": 2}
        if error:
            return r | {"error": error}
        phases = {"task": 1.0, "train": train, "social": 0.0, "measure": 2.0}
        return r | phases | {"rest": 0.1, "step": step, "build": 1.0, "peak_gb": 0.3}

    runs = [[row(3.0, 1.0), row(1.0, 1.0)], [row(9.0, 5.0), row(1.0, 1.0, error="timeout")]]
    runs.append([row(4.0, 2.0), row(2.0, 1.0)])
    first, second = median_rows(runs)
    assert first["step"] == 4.0 and first["train"] == 2.0 and first["measure"] == 2.0
    assert second["error"] == "timeout"
