"""Benchmark: one frame of the browser app (a step + redrawing every chart) against the step alone.

Run: ``python -m benchmarks.app_frame [--agents 1000] [--reps 7] [--scenarios NAME ...]``

For each scenario it builds the app's :class:`~simulator.app.session.Session` at ``--agents``
agents, warms up (kernels compiled, chart templates built), then alternates, ``--reps`` times,
a step alone and a frame: the step, :func:`simulator.app.render.draw` of all four panels (the
graph, the homogenization map, the measures, one agent) and the JSON encoding of the specs the
page sends to the browser. Medians are reported with the ratio frame / step; the target is at
most 2 (the redraw costs no more than the step it shows). Time spent in the browser drawing
the SVG is not included (it runs on the visitor's machine, in parallel with the next step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from simulator.app.render import PANELS, draw
from simulator.app.session import Session

SCENARIOS = ("gossip_learning", "social_learning", "polarization", "monoculture")


def bench(scenario: str, n_agents: int, reps: int) -> dict[str, float]:
    """Median seconds of a step, of a frame, and of each panel's redraw."""
    session = Session(scenario, seed=0, build=False)
    if not session.set_param("n_agents", n_agents):
        raise SystemExit(f"{scenario}: {session.field_errors or session.error}")
    for _ in range(2):  # warm-up: kernels, chart templates, the map's first PCA
        session.step(1)
        draw(session)
    steps, frames = [], []
    panels: dict[str, list[float]] = {p: [] for p in PANELS}
    clock = time.perf_counter
    for _ in range(reps):
        t0 = clock()
        session.step(1)
        steps.append(clock() - t0)
        t0 = clock()
        session.step(1)
        for panel in PANELS:
            t1 = clock()
            draw(session, (panel,))
            panels[panel].append(clock() - t1)
        json.dumps(session.images)  # what goes over the websocket
        frames.append(clock() - t0)
    row = {"step": statistics.median(steps), "frame": statistics.median(frames)}
    row.update({p: statistics.median(v) for p, v in panels.items()})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.agents} agents, median of {args.reps} interleaved reps, load {load:.1f}")
    cols = ["step", "frame", *PANELS]
    print(f"{'scenario':18s}" + "".join(f"{c:>10s}" for c in cols) + "  frame/step")
    for scenario in args.scenarios:
        row = bench(scenario, args.agents, args.reps)
        cells = "".join(f"{row[c]:10.4f}" for c in cols)
        print(f"{scenario:18s}{cells}  {row['frame'] / row['step']:9.2f}x")


if __name__ == "__main__":
    main()
