"""Benchmark: one model step at 10,000 and 100,000 agents, split by phase.

Run: ``python -m benchmarks.model_step [--agents 10000 100000] [--steps 5] [--scenario NAME]``

For each population size it builds the scenario (timing the graph, the Mesa network space and
the agents), runs a warm-up step (kernel compilation), then ``--steps`` timed steps and reports
the seconds per step spent in each phase the model records (``model.timings``: task sampling,
training kernel, social rule, measures) and the rest of ``model.step()`` — Mesa's own step
machinery and the model's bookkeeping — as "mesa overhead". The figure to read is the share of a
step that is not kernels or measures.
"""

from __future__ import annotations

import argparse
import time

from simulator.registry import get_model


def bench(scenario: str, n_agents: int, steps: int, measures: str) -> dict[str, float]:
    """Seconds per step by phase for ``n_agents`` agents (after one warm-up step)."""
    cls = get_model(scenario)
    t0 = time.perf_counter()
    model = cls(rng=0, n_agents=n_agents, measures=measures)
    build = time.perf_counter() - t0
    model.step()  # warm-up: compiles kernels for this shape
    model.timings = dict.fromkeys(model.timings, 0.0)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step()
    total = (time.perf_counter() - t0) / steps
    row = {k: v / steps for k, v in model.timings.items()}
    row["mesa overhead"] = total - sum(row.values())
    row["total"] = total
    row["build"] = build
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--scenario", default="gossip_learning")
    parser.add_argument("--measures", default="standard", choices=["standard", "fast"])
    args = parser.parse_args()
    phases = ["task", "train", "social", "measure", "mesa overhead", "total"]
    print(f"scenario={args.scenario} measures={args.measures} steps={args.steps}")
    print(
        f"{'agents':>8} {'build s':>8} "
        + " ".join(f"{p:>14}" for p in phases)
        + "   (seconds per step; share of total)"
    )
    for n in args.agents:
        row = bench(args.scenario, n, args.steps, args.measures)
        cells = " ".join(f"{row[p]:8.4f} ({row[p] / row['total']:4.0%})" for p in phases)
        print(f"{n:>8} {row['build']:8.2f} {cells}")


if __name__ == "__main__":
    main()
