"""Bounded app sessions: memory estimated before building, limits, session slots, host warning."""

from __future__ import annotations

import gc
import time
import tracemalloc

import networkx as nx
import pytest

from simulator.app.limits import Limits, SessionSlots, estimate, expected_edges, is_loopback
from simulator.app.session import Session
from simulator.config import ParameterError
from simulator.registry import get_model


@pytest.mark.parametrize(
    ("graph", "params", "n"),
    [
        ("complete", {}, 40),
        ("ring", {"k": 6}, 50),
        ("watts_strogatz", {"k": 4, "p": 0.3}, 60),
        ("torus", {}, 49),
        ("barabasi_albert", {"m": 3}, 80),
        ("random_regular", {"d": 3}, 40),
        ("star", {}, 30),
    ],
)
def test_expected_edges_match_the_built_graph(graph, params, n):
    from simulator.graph import build_graph

    built = build_graph(graph, n, params, seed=0).number_of_edges()
    assert expected_edges(graph, n, params) == built


def test_expected_edges_of_random_graphs_are_their_expectation():
    from simulator.graph import build_graph

    n, p = 400, 0.05
    counts = [build_graph("erdos_renyi", n, {"p": p}, seed=s).number_of_edges() for s in range(5)]
    mean, sd = sum(counts) / 5, (p * (1 - p) * n * (n - 1) / 2) ** 0.5
    assert abs(expected_edges("erdos_renyi", n, {"p": p}) - mean) < 4 * sd / 5**0.5
    assert expected_edges(nx.path_graph(7), 7, None) == 6


@pytest.mark.parametrize(
    ("scenario", "params"),
    [
        # sizes at which the per-agent terms, not a model's fixed objects, decide the estimate
        ("gossip_learning", {"n_agents": 20_000}),
        ("gossip_learning", {"n_agents": 1500, "graph": "complete"}),
        ("social_learning", {"n_agents": 20_000}),
        ("gan_population", {"n_agents": 3000}),
        ("monoculture", {"n_agents": 20_000, "graph": "ring", "graph_params": {"k": 20}}),
        ("polarization", {"n_agents": 20_000}),
        ("evolution", {"n_agents": 20_000}),
    ],
)
def test_memory_estimate_bounds_the_measured_peak(scenario, params):
    """The estimate is at least the traced peak of build + two steps (with the networkx graph
    the app draws from), and at most 4x it."""
    cls = get_model(scenario)
    cls(rng=0, n_agents=20).run_for(1)  # kernels compiled outside the measurement
    est = estimate(cls, params).total
    gc.collect()
    tracemalloc.start()
    try:
        model = cls(rng=0, **params)
        assert model.graph.number_of_nodes() == model.n_agents  # the app draws from it
        model.run_for(2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= est <= 4 * peak, (est / 2**20, peak / 2**20)


def test_limits_refuse_too_many_agents_or_too_much_memory_with_a_message():
    gossip = get_model("gossip_learning")
    limits = Limits(max_agents=10_000, max_memory_mb=256)
    with pytest.raises(ParameterError, match=r"n_agents=20,000 is over .* limit of 10,000"):
        limits.check(gossip, {"n_agents": 20_000})
    with pytest.raises(ParameterError, match=r"needs about .* MiB .* limit of 256 MiB"):
        limits.check(gossip, {"n_agents": 9_000, "graph": "complete"})
    assert limits.check(gossip, {"n_agents": 500}).total < 256 * 2**20
    # the example: k=1,000 on 100k agents passed the edge guard (~14 GiB); refused
    ring = {"n_agents": 100_000, "graph": "ring", "graph_params": {"k": 1000}}
    with pytest.raises(ParameterError, match="50,000,000 edges"):
        Limits().check(gossip, ring)


def test_an_oversized_request_costs_nothing_and_leaves_other_sessions_working():
    limits = Limits()  # the defaults of `simulator app`
    a = Session("gossip_learning", seed=0, limits=limits)
    b = Session("gossip_learning", seed=1, limits=limits)
    assert a.set_param("graph", "complete")  # 64 agents, complete: fine
    before = a.model
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        too_many = a.set_param("n_agents", "1000000")
        too_big = a.set_param("n_agents", "60000")  # complete graph: ~1.8e9 edges
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not too_many and not too_big
    assert "MiB per session" in a.field_errors["n_agents"]  # the last refusal: memory
    assert a.model is before and seconds < 5 and peak < 50 * 2**20  # nothing was built
    assert b.step(2) and b.steps == 2  # the other session is untouched and works
    assert a.step(1) and a.model is before  # and this one keeps its model
    assert a.set_param("n_agents", "40") and a.model.n_agents == 40
    assert "n_agents" not in a.field_errors


def test_session_slots_cap_concurrent_sessions():
    slots = SessionSlots(2)
    assert slots.acquire(1) and slots.acquire(2) and slots.acquire(1)
    assert not slots.acquire(3)
    slots.release(1)
    assert slots.acquire(3) and slots.used == 2


def test_limits_travel_through_the_environment():
    limits = Limits(max_agents=5000, max_memory_mb=300.0, max_sessions=3)
    assert Limits.from_env(limits.to_env()) == limits
    assert Limits.from_env({}) == Limits()


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_app_command_passes_limits_and_scenarios_and_warns_off_loopback(monkeypatch, tmp_path):
    import os

    from click.testing import CliRunner

    from simulator.cli import main

    calls = []
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    monkeypatch.setattr("subprocess.call", lambda argv, env: calls.append((argv, env)) or 0)
    own = tmp_path / "mine.py"
    own.write_text("from simulator import NeuralModel\nclass Mine(NeuralModel):\n    '''Mine.'''\n")
    args = ["app", "--no-open", "--host", "0.0.0.0", "--max-agents", "5000"]
    result = CliRunner().invoke(main, [*args, "--max-sessions", "2", "--scenario", f"{own}:Mine"])
    assert result.exit_code == 0, result.output
    assert "warning: --host 0.0.0.0 serves the app beyond this machine" in result.output
    env = calls[0][1]
    assert Limits.from_env(env) == Limits(max_agents=5000, max_sessions=2)
    assert env["NEUROPOP_APP_SCENARIOS"] == f"{own}:Mine"
    from simulator.app.session import app_registry

    assert app_registry(env)[f"{own}:Mine"].__name__ == "Mine"
    quiet = CliRunner().invoke(main, ["app", "--no-open"])
    assert "warning: --host" not in quiet.output
    bad = CliRunner().invoke(main, ["app", "--no-open", "--scenario", "nope.py:X"])
    assert bad.exit_code != 0 and "no such file" in bad.output
