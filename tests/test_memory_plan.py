"""A model that cannot fit in the machine's memory is refused at its build, naming n_agents.

The machine's memory is set by the test (monkeypatch), so the checks do not depend on the
machine that runs them.
"""

from __future__ import annotations

import re

import pytest

from simulator import memory_plan
from simulator.config import ParameterError
from simulator.registry import get_model

GIB = 2**30


def test_a_model_too_large_for_the_machine_is_refused_before_it_is_built(monkeypatch):
    """gan_population's defaults need ~41 KB per agent (two networks with Adam state): a million
    agents do not fit in 23.5 GiB. The error names n_agents, the need and the size that fits."""
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: int(23.5 * GIB))
    with pytest.raises(ParameterError) as err:
        get_model("gan_population")(rng=0, n_agents=1_000_000)
    msg = str(err.value)
    assert msg.startswith("n_agents=1000000")
    need = float(re.search(r"need about ([\d.,]+) GiB", msg).group(1).replace(",", ""))
    fits = int(re.search(r"at most about ([\d,]+)", msg).group(1).replace(",", ""))
    assert need > 23.5 and "of its 23.5 GiB" in msg
    assert fits == pytest.approx(1_000_000 * 23.5 / need, rel=0.01)


def test_the_check_sizes_the_whole_model_not_only_its_parameters(monkeypatch):
    """gossip_learning at the first checked size: refused when the machine is too small for its
    networks and a step, built when it is not."""
    n = memory_plan.CHECK_FROM
    cls = get_model("gossip_learning")
    est = memory_plan.estimate(cls, {"n_agents": n})
    lean = est.population + est.step + est.edges * memory_plan.CSR_PER_EDGE
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: int(0.9 * lean))
    with pytest.raises(ParameterError, match=f"^n_agents={n} "):
        cls(rng=0, n_agents=n)
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: int(1.1 * lean))
    assert cls(rng=0, n_agents=n, measures="fast").n_agents == n


def test_small_models_are_not_estimated(monkeypatch):
    """Below CHECK_FROM agents the build does not estimate at all (no cost for the many small
    models of tests and sweeps)."""

    def fail(*args, **kwargs):
        raise AssertionError("estimated a small model")

    monkeypatch.setattr(memory_plan, "estimate", fail)
    assert get_model("gan_population")(rng=0, n_agents=8).n_agents == 8


def test_a_large_model_the_estimate_cannot_size_is_built_unchecked(monkeypatch):
    """task="arrays" with data for every agent: the estimate's 2-agent instance of the task
    refuses that data, so the check steps aside and the model is built."""
    import numpy as np

    n = memory_plan.CHECK_FROM
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4, 8)).astype(np.float32)
    Y = rng.standard_normal((n, 4, 1)).astype(np.float32)
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: 1)  # would refuse anything
    # (the networks' and the probe's own checks, sized from the built task, are others: tested
    # below)
    monkeypatch.setattr("simulator.model.refuse_networks_too_large", lambda *a: None)
    monkeypatch.setattr("simulator.model.refuse_probe_too_large", lambda *a: None)
    model = get_model("gossip_learning")(
        rng=0, n_agents=n, task="arrays", task_params={"X": X, "Y": Y}, measures="fast"
    )
    assert model.n_agents == n


def test_networks_too_wide_for_the_machine_are_refused_at_any_population_size(monkeypatch):
    """Below CHECK_FROM agents the estimate is skipped, but the networks are sized from the
    task's widths before any is made: too wide, refused by name (hidden, or task_params when
    the task's inputs or outputs are the widest); within the machine, built."""
    with pytest.raises(ParameterError, match=r"hidden=\(100000000,\) .* 1,000,000,001 param"):
        get_model("gossip_learning")(rng=0, n_agents=10, hidden=(100_000_000,))
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: 10 * 161 * 4 * 3 - 1)
    with pytest.raises(ParameterError, match="hidden=.*of its"):
        get_model("gossip_learning")(rng=0, n_agents=10, graph="complete", measures="fast")
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: 10 * 161 * 4 * 3)
    memory_plan.refuse_networks_too_large((8, 16, 1), 10, "float32", "sgd")  # fits
    with pytest.raises(ParameterError, match="task_params='inputs 2, outputs 100,000,000'"):
        memory_plan.refuse_networks_too_large((2, 4, 100_000_000), 10, "float32", "adam")


def test_a_probe_too_large_for_the_machine_is_refused_naming_task_params(monkeypatch):
    """Integer labels running to 200,000 make 200,001 classes: 10 agents' outputs on the 200
    probe items and their float64 copies (~11 GiB) are refused by name against an 8 GiB
    machine at the build, before the first collect would allocate them; the same data with
    its labels numbered 0, 1, 2 builds and runs."""
    import numpy as np

    monkeypatch.setattr(memory_plan, "machine_memory", lambda: 8 * 2**30)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 20, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (10, 20))
    make = get_model("gossip_learning")
    with pytest.raises(ParameterError, match=r"^task_params='outputs 200,001, probe 200 items'"):
        make(rng=0, n_agents=10, task="arrays", task_params={"X": X, "Y": labels * 100_000})
    model = make(rng=0, n_agents=10, task="arrays", task_params={"X": X, "Y": labels})
    model.run_for(2)
    assert model.task.d_out == 3 and model.steps == 2


def test_the_probe_check_counts_outputs_probe_items_and_measured_agents(monkeypatch):
    """need = measured x n_probe x d_out x (itemsize + PROBE_COPIES x 8) bytes, at most the
    machine's memory."""
    per_value = 4 + memory_plan.PROBE_COPIES * memory_plan.FLOAT
    monkeypatch.setattr(memory_plan, "machine_memory", lambda: 10 * 200 * 1000 * per_value)
    memory_plan.refuse_probe_too_large(10, 200, 1000, "float32")  # exactly fits
    with pytest.raises(ParameterError, match=r"10 agents on 200 probe items x 1,001 outputs"):
        memory_plan.refuse_probe_too_large(10, 200, 1001, "float32")
    with pytest.raises(ParameterError, match=r"measure_agents, measure_exact"):
        memory_plan.refuse_probe_too_large(10, 200, 1000, "float64")
