"""The model-step benchmark's child measurement, on a small model (the benchmark itself is not
a test: it times; this checks that it runs and reports every phase)."""

from __future__ import annotations

from benchmarks.model_step import PHASES, markdown, measure_one, target_lines


def test_measure_one_times_steps_after_the_warm_up_steps_asked_for():
    row = measure_one("polarization", 120, steps=2, measures="standard", warmup=3)
    assert row["scenario"] == "polarization" and row["agents"] == 120
    assert row["model_steps"] == 3 + 2
    assert row["step"] > 0 and row["build"] > 0 and row["peak_gb"] > 0
    assert all(row[k] >= 0 for k in PHASES) and row["train"] > 0
    assert abs(sum(row[k] for k in PHASES) + row["rest"] - row["step"]) < 1e-9
    table = markdown([row])
    assert table.count("\n") == 2 and "| polarization | 120 |" in table


def _row(scenario, agents, train=1.0, **ratios):
    """A benchmark row whose phases are the given multiples of train (0.1 x train otherwise)."""
    r = {"scenario": scenario, "agents": agents, "train": train, "build": 1.0, "peak_gb": 1.0}
    r |= {k: ratios.get(k, 0.1) * train for k in ("task", "social", "measure", "rest")}
    r["step"] = sum(r[k] for k in (*PHASES, "rest"))
    return r


def test_targets_judge_each_run_at_ten_thousand_agents_and_more():
    small_and_slow = _row("polarization", 1_000, measure=9.0)  # below 10,000 agents: not judged
    run1 = [small_and_slow, _row("gossip_learning", 10_000, measure=0.45, task=0.5)]
    run2 = [small_and_slow, _row("gossip_learning", 10_000, measure=0.55, task=0.5)]
    lines = target_lines([run1, run2])
    assert lines[0] == (
        "- FAIL: measure <= 0.5 x train, every scenario at >= 10,000 agents; met in 1 of 2 runs "
        "(worst: 0.55 at gossip_learning 10,000)"
    )
    assert lines[1].startswith("- PASS: task <= 0.6 x train") and "met in 2 of 2 runs" in lines[1]
    assert lines[2].startswith("- FAIL: rest <= 0.05 x train")  # rest 0.1 x train in both runs
    assert len(lines) == 3  # no 1,000,000-agent rows: no line for them


def test_a_failed_configuration_misses_the_targets():
    failed = {"scenario": "evolution", "agents": 100_000, "error": "timeout after 10 s"}
    lines = target_lines([[_row("gossip_learning", 10_000, rest=0.01), failed]])
    assert lines[2] == (
        "- FAIL: rest <= 0.05 x train, every scenario at >= 10,000 agents; met in 0 of 1 runs "
        "(worst: evolution 100,000 failed)"
    )


def test_million_agent_targets_need_the_same_runs_hundred_thousand_step_for_the_ratio():
    base = _row("gossip_learning", 100_000, train=0.05)
    big = _row("gossip_learning", 1_000_000, train=0.5) | {"build": 31.0, "peak_gb": 2.8}
    lines = target_lines([[base, big]])
    assert (
        "- FAIL: gossip_learning at 1,000,000 agents built in <= 30 s; met in 0 of 1 runs "
        "(worst: 31.00)" in lines
    )
    assert any(
        ln.startswith("- PASS: gossip_learning at 1,000,000 agents in <= 4 GB") for ln in lines
    )
    assert any(
        ln.startswith("- PASS: gossip_learning's 1,000,000-agent step <= 12 x")
        and "(worst: 10.00)" in ln
        for ln in lines
    )
    alone = target_lines([[big]])  # --agents 1000000 alone: no step ratio to judge
    assert not any("100,000-agent step" in ln for ln in alone)
    assert any("built in <= 30 s" in ln for ln in alone)
