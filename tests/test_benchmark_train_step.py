"""The training-step benchmark's report: which statistic of the timed rounds it reports (the
benchmark itself is not a test: it times; this checks what it makes of the times)."""

from __future__ import annotations

import pytest

from benchmarks.report import step_seconds, summary_rows, summary_table

# Seconds per step of seven rounds under load: alone on the core (1 ms) or sharing it (2 ms).
POP = [1.0, 2.0, 2.0, 1.0, 2.0, 1.0, 2.0]  # 4 of 7 rounds shared: median 2.0, mean 1.571
PEER = [1.2, 2.4, 1.2, 1.2, 2.4, 2.4, 1.2]  # 3 of 7 shared: median 1.2, mean 1.714


def _report(load: int) -> dict:
    def peer(seconds: list[float]) -> dict:
        ms = [s / 1000 for s in seconds]
        return {"seconds": ms, "n_agents": 1000, "cpu_per_wall": [1.0] * len(ms)}

    run = {
        "config": "8-16-1:1000:32", "layers": [8, 16, 1], "dtype": "float64", "batch": 32,
        "flops_per_agent_step": 19456, "limit_gflops": 50.0,
        "peers": {"population": peer(POP), "jax": peer(PEER), "mesa_loop": peer([50.0] * 7)},
    }  # fmt: skip
    return {"load": load, "workers": [{"threads": 1, "runs": [run]}], "floors": []}


def test_quiet_rounds_are_summarized_by_their_median():
    assert step_seconds([1.0, 1.1, 9.0], 0) == pytest.approx(1.1)  # a stray slow round ignored


def test_no_rounds_is_an_error_not_a_nan():
    with pytest.raises(ValueError, match="no timed rounds"):
        step_seconds([], 1)


def test_rounds_under_load_are_summarized_by_their_mean_the_total_time_of_the_steps():
    assert step_seconds(POP, 2) == pytest.approx(11 / 7)
    (row,) = summary_rows(_report(2))
    # medians would say 0.6x (a shared round against an unshared one); the totals say 1.09x
    assert row["vs_best"] == pytest.approx((12 / 7) / (11 / 7))
    assert row["sps"]["population"] == pytest.approx(1000 * 32 / (11 / 7 / 1000))
    (quiet,) = summary_rows(_report(0))
    assert quiet["vs_best"] == pytest.approx(1.2 / 2.0)


def test_the_summary_table_reports_and_names_the_statistic_of_each_level():
    table = summary_table([_report(0), _report(2)])
    assert "| 0.60x (JAX) |" in table and "| 1.09x (JAX) |" in table
    assert "median of its timed rounds when quiet and their mean under load" in table
