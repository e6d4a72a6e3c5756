"""Benchmark: the social phase of a step under each update schedule, side by side.

Run: ``python -m benchmarks.schedules [--agents 1000 10000] [--reps 5]``

For imitation (Fermi copying with mutation; the ``evolution`` scenario's settings) and bounded
confidence (function space; the ``polarization`` scenario's settings), both on a small-world
graph of degree 8, it builds one model per
schedule, runs a warm-up step (compilation), then interleaves ``--reps`` rounds of single steps
over the three models and reports the median seconds per step spent in the social rules
(``model.timings["social"]``) and the ratio to the synchronous schedule. The sequential
schedules run one kernel call without a parallel loop (the order of updates matters), so they
may cost more than the synchronous rule on two cores; this measures by how much.
"""

from __future__ import annotations

import argparse
import statistics

from simulator.registry import get_model
from simulator.schedules import SCHEDULES

GRAPH = {"graph": "watts_strogatz", "graph_params": {"k": 8, "p": 0.1}}  # sparse at any size
RULES = {
    "imitation": ("evolution", {"novelty_threshold": 0.0, **GRAPH}),
    "bounded_confidence": ("polarization", GRAPH),
}


def social_seconds(model) -> float:
    """Seconds one step spends in the social rules."""
    before = model.timings["social"]
    model.step()
    return model.timings["social"] - before


def bench(rule: str, n_agents: int, reps: int) -> dict[str, float]:
    """Median social seconds per step for each schedule (interleaved rounds)."""
    scenario, extra = RULES[rule]
    cls = get_model(scenario)
    models = {
        s: cls(rng=0, n_agents=n_agents, measures="fast", collect_every=10**6, schedule=s, **extra)
        for s in SCHEDULES
    }
    for m in models.values():
        m.step()  # warm-up
    times: dict[str, list[float]] = {s: [] for s in SCHEDULES}
    for _ in range(reps):
        for s, m in models.items():
            times[s].append(social_seconds(m))
    return {s: statistics.median(t) for s, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"{'rule':>20} {'agents':>8} " + " ".join(f"{s:>26}" for s in SCHEDULES))
    for rule in RULES:
        for n in args.agents:
            row = bench(rule, n, args.reps)
            base = row["synchronous"]
            cells = " ".join(f"{row[s] * 1e3:12.2f} ms ({row[s] / base:5.2f}x)" for s in SCHEDULES)
            print(f"{rule:>20} {n:>8} {cells}")


if __name__ == "__main__":
    main()
