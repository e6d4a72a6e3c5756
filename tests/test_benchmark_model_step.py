"""The model-step benchmark's child measurement, on a small model (the benchmark itself is not
a test: it times; this checks that it runs and reports every phase)."""

from __future__ import annotations

from benchmarks.model_step import PHASES, markdown, measure_one


def test_measure_one_times_steps_after_the_warm_up_steps_asked_for():
    row = measure_one("polarization", 120, steps=2, measures="standard", warmup=3)
    assert row["scenario"] == "polarization" and row["agents"] == 120
    assert row["model_steps"] == 3 + 2
    assert row["step"] > 0 and row["build"] > 0 and row["peak_gb"] > 0
    assert all(row[k] >= 0 for k in PHASES) and row["train"] > 0
    assert abs(sum(row[k] for k in PHASES) + row["rest"] - row["step"]) < 1e-9
    table = markdown([row])
    assert table.count("\n") == 2 and "| polarization | 120 |" in table
