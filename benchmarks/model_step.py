"""Benchmark: build time, peak memory and one model step by phase, per scenario and size.

Run: ``python -m benchmarks.model_step [--agents 1000 10000 100000] [--million]
[--scenarios gossip_learning social_learning polarization evolution] [--steps 3]
[--warmup 3] [--measures standard]``

Every (scenario, agents) configuration runs in its own subprocess, so its peak resident memory
(``ru_maxrss``) is its own. The child first builds and steps a 64-agent model of the scenario
(kernel compilation and cache loading, not counted), then times the build of the full model
(graph, task, population, first collect), ``--warmup`` untimed steps (default 3: the first use
of the size's buffers, and the thread chooser's first try of one thread for each kind of
parallel call, which it makes on a model's third step: social_learning's 10,000 agents trained
in 14.3 ms on step 3 against 7.4-8.3 ms on the steps around it, and a warm-up of 1 put that
step among the timed ones; more to time a model past its first steps, e.g. at consensus), and
``--steps`` timed steps with
the scenario's default measures collected every step (``--measures fast`` for the fast set,
``none`` to skip collecting). It reports seconds per step by phase
(``model.timings``: task, train, social, measure) and "rest": the step minus those four
phases (Mesa's step machinery and the model's bookkeeping). Ratios are to the training kernel's
time. Targets (issue 11): task <= 0.6 x train, rest <= 0.05 x train; at 1M agents
(gossip_learning) build <= 30 s, peak memory <= 4 GB, step within 12 x the 100k step.

The table is printed as markdown, ready for the README; the machine's load average is printed
with it (the figures of a shared machine are noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SCENARIOS = ("gossip_learning", "social_learning", "polarization", "evolution")
PHASES = ("task", "train", "social", "measure")


def measure_one(scenario: str, n_agents: int, steps: int, measures: str, warmup: int = 3) -> dict:
    """Build and step one model in this process; figures as a dict (seconds, GB)."""
    from simulator.registry import get_model

    if measures == "none":  # time everything but measuring: collect() does nothing
        from simulator.model import NeuralModel

        NeuralModel.collect = lambda self: None
        measures = "fast"
    cls = get_model(scenario)
    warm = cls(rng=0, n_agents=64, measures=measures)  # compile / load kernels, not timed
    warm.step()
    del warm
    t0 = time.perf_counter()
    model = cls(rng=0, n_agents=n_agents, measures=measures)
    build = time.perf_counter() - t0
    for _ in range(warmup):  # the first use of this size's buffers, then any steps asked for
        model.step()
    model.timings = dict.fromkeys(model.timings, 0.0)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step()
    step = (time.perf_counter() - t0) / steps
    row = {k: model.timings[k] / steps for k in PHASES}
    row["rest"] = step - sum(row.values())
    row["model_steps"] = int(model.steps)  # warm-up and timed steps
    row |= {"step": step, "build": build, "scenario": scenario, "agents": n_agents}
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return row


def run_child(
    scenario: str, n_agents: int, steps: int, measures: str, timeout: float, warmup: int = 3
) -> dict:
    """:func:`measure_one` in a fresh interpreter (its own peak memory)."""
    cmd = [sys.executable, "-m", "benchmarks.model_step", "--child", scenario, str(n_agents)]
    cmd += ["--steps", str(steps), "--measures", measures, "--warmup", str(warmup)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"scenario": scenario, "agents": n_agents, "error": f"timeout after {timeout} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"scenario": scenario, "agents": n_agents, "error": err}
    return json.loads(lines[-1])


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table: seconds per step by phase and each phase / train."""
    head = "| scenario | agents | build s | peak GB | step s | task | train | social | measure "
    head += "| rest | task/train | social/train | measure/train | rest/train |"
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scenario']} | {r['agents']:,} | {r['error']} |" + " |" * 11)
            continue
        cells = [r["scenario"], f"{r['agents']:,}", f"{r['build']:.1f}", f"{r['peak_gb']:.2f}"]
        cells += [f"{r['step']:.3g}"] + [f"{r[k]:.3g}" for k in (*PHASES, "rest")]
        train = max(r["train"], 1e-12)
        cells += [f"{r[k] / train:.2f}" for k in ("task", "social", "measure", "rest")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also 1,000,000 agents")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps after the build (default 3)"
    )
    parser.add_argument(
        "--measures",
        default="standard",
        choices=["standard", "fast", "none"],
        help="the measures collected every step ('none': no collect at all, to time the rest)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per configuration")
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "AGENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 0 or args.steps < 1:
        parser.error(f"--warmup must be >= 0 and --steps >= 1, got {args.warmup} and {args.steps}")
    if args.child:
        row = measure_one(args.child[0], int(args.child[1]), args.steps, args.measures, args.warmup)
        print(json.dumps(row), flush=True)
        return
    sizes = [*args.agents, *([1_000_000] if args.million else [])]
    load = os.getloadavg()
    print(
        f"measures={args.measures} steps={args.steps} warmup={args.warmup} "
        f"load average {load[0]:.1f} at start"
    )
    rows = []
    for scenario in args.scenarios:
        for n in sizes:
            rows.append(
                run_child(scenario, n, args.steps, args.measures, args.timeout, args.warmup)
            )
            r = rows[-1]
            done = r.get("error") or f"step {r['step']:.3g} s, build {r['build']:.1f} s"
            print(f"  {scenario} {n:,}: {done}", file=sys.stderr, flush=True)
    print(markdown(rows))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (2 cores)")


if __name__ == "__main__":
    main()
