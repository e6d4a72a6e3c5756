"""The results of :mod:`benchmarks.train_step` as markdown: per run, and summed over runs.

A report is the dict one full run returns (``train_step.measure``): when, where, the load
level, and per thread count (``workers``) the timings of every peer on every configuration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import peers

PEER_NAMES = {
    "population": "Population",
    "numpy": "NumPy batched",
    "numpy_threads": "NumPy batched, thread pool",
    "jax": "JAX jit(vmap(grad))",
    "mesa_loop": "Mesa loop*",
}
# The targets: (text, load levels (None: any), layers (list of them; None: any), dtype, threads,
# ratio, minimum). "vs_best" is Population / the best peer, "pop_share" its share of the GEMM limit.
FLOORS = (
    ("Population >= 1.0x the best peer, every config", None, None, None, None, "vs_best", 1.0),
    ("Quiet: Population >= 3x the best peer, 8-16-1 and 64-64-10", (0,),
     [[8, 16, 1], [64, 64, 10]], None, None, "vs_best", 3.0),
    ("Quiet: Population >= 80% of the GEMM limit, 64-64-10 float32, 2 threads", (0,),
     [[64, 64, 10]], "float32", 2, "pop_share", 0.8),
    ("Population >= 10x the Mesa loop, 8-16-1", None, [[8, 16, 1]], None, None, "vs_mesa", 10.0),
)  # fmt: skip
FLOP_NOTE = (
    "Model FLOPs per agent step = 2 * B * (2 * sum_l d_{l-1} d_l + sum_{l>=2} d_{l-1} d_l): "
    "2 FLOPs per multiply-add of the forward products, the weight gradients and the input "
    f"gradients of every layer but the first (8-16-1, B=32: {peers.model_flops((8, 16, 1), 32):,}; "
    f"64-64-10, B=64: {peers.model_flops((64, 64, 10), 64):,}). "
    "% limit = model FLOP/s / GEMM FLOP/s at the same dtype and thread count."
)


def step_seconds(rounds: list[float], load: int) -> float:
    """The seconds per step that a peer's timed rounds stand for (each round: the mean of a
    fixed number of steps, the same number in every round).

    Quiet (``load == 0``): their median, so that one round slowed by a stray process does not
    count. Under load: their mean, i.e. the total time of all the steps timed, what a run of
    many steps takes. There the rounds are bimodal: a one-thread peer runs alone on its core in
    some rounds and shares it with a busy process in others (about twice as slow), and a
    median over a few rounds picks one of the two modes by the luck of the draw (2026-12-06,
    two busy processes, seven rounds: Population's median was a shared round and JAX's an
    unshared one, 0.67x, while the totals gave 1.04x).
    """
    if len(rounds) == 0:
        raise ValueError("no timed rounds")
    return float(np.median(rounds) if load == 0 else np.mean(rounds))


def _per_round(value: float | list[float], load: int) -> float:
    """A per-round figure (a list; one number in reports before 2026-12-06) summarized as the
    rounds' times are."""
    return float(value) if np.isscalar(value) else step_seconds(value, load)


def statistic(load: int) -> str:
    """The name of what :func:`step_seconds` takes of the rounds at this load level."""
    return "median" if load == 0 else "mean"


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (thread count, dtype, config): throughputs, ratios, shares of the limit."""
    rows = []
    load = report.get("load", 0)
    for w in report["workers"]:
        for run in w["runs"]:
            sps = {
                n: p["n_agents"] * run["batch"] / step_seconds(p["seconds"], load)
                for n, p in run["peers"].items()
            }
            others = {n: v for n, v in sps.items() if n != "population"}
            best = max(others, key=others.__getitem__)
            gflops = run["flops_per_agent_step"] / run["batch"] / 1e9  # per agent-sample
            limit = run["limit_gflops"]
            rows.append({
                "config": run["config"], "layers": run["layers"], "dtype": run["dtype"],
                "threads": w["threads"], "sps": sps, "best": best,
                "vs_best": sps["population"] / others[best],
                "vs_mesa": sps["population"] / sps["mesa_loop"],
                "pop_share": sps["population"] * gflops / limit,
                "best_share": others[best] * gflops / limit, "limit": limit,
                "cpu": {n: _per_round(p["cpu_per_wall"], load) for n, p in run["peers"].items()},
                "mesa_agents": run["peers"]["mesa_loop"]["n_agents"],
            })  # fmt: skip
    return rows


def floors(report: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/FAIL of each floor on the rows it concerns, with the worst measured ratio."""
    out = []
    for text, loads, layers, dtype, threads, key, minimum in FLOORS:
        if loads is not None and report.get("load", 0) not in loads:
            continue
        rows = [
            r
            for r in summary_rows(report)
            if (layers is None or r["layers"] in layers)
            and dtype in (None, r["dtype"])
            and threads in (None, r["threads"])
        ]
        if not rows:
            out.append({"floor": text, "verdict": "NOT MEASURED", "worst": None, "row": ""})
            continue
        worst = min(rows, key=lambda r: r[key])
        out.append({
            "floor": text, "verdict": "PASS" if worst[key] >= minimum else "FAIL",
            "worst": worst[key],
            "row": f"{worst['config']} {worst['dtype']} {worst['threads']} thr",
        })  # fmt: skip
    return out


def table(report: dict[str, Any]) -> str:
    """The results as a markdown table (M agent-samples/s), then the floors."""
    names = [n for n in PEER_NAMES if any(n in r["sps"] for r in summary_rows(report))]
    head = ["config L:P:B", "dtype", "thr", *(PEER_NAMES[n] for n in names)]
    head += ["Pop / best peer", "Pop / Mesa", "Pop % limit", "best peer % limit", "GEMM GFLOP/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary_rows(report):
        cells = [r["config"], r["dtype"], str(r["threads"])]
        cells += [f"{r['sps'][n] / 1e6:.2f}" if n in r["sps"] else "-" for n in names]
        cells += [f"{r['vs_best']:.2f}x ({PEER_NAMES[r['best']]})", f"{r['vs_mesa']:.1f}x"]
        cells += [f"{100 * r['pop_share']:.1f}%", f"{100 * r['best_share']:.1f}%"]
        cells += [f"{r['limit']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    mesa = {r["mesa_agents"] for r in summary_rows(report)}
    lines.append("")
    lines.append(
        "Throughput: million agent-samples/s = n_agents * B / seconds per step, the "
        f"{statistic(report.get('load', 0))} over the rounds. "
        f"*Mesa loop timed on the first {'/'.join(map(str, sorted(mesa)))} agents only "
        "(per-agent-sample throughput)."
    )
    busy = [r for r in summary_rows(report) if r["cpu"]["population"] < 0.8 * r["threads"]]
    if busy:
        worst = min(busy, key=lambda r: r["cpu"]["population"] / r["threads"])
        lines.append(
            f"WARNING: the machine was busy: on {len(busy)} of {len(summary_rows(report))} rows "
            f"Population got < 80% of its cores (worst {worst['cpu']['population']:.2f} CPU s "
            f"per s on {worst['threads']} thread(s)); multi-threaded peers suffer most from "
            "that, so rerun on an idle machine before trusting those ratios."
        )
    lines.append("")
    for f in report["floors"]:
        worst = "" if f["worst"] is None else f" (worst {f['worst']:.2f}x at {f['row']})"
        lines.append(f"- {f['verdict']}: {f['floor']}{worst}")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The whole results page: when, where, with what, how, the table and the floors."""
    m = report["machine"]
    vers = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    env = m["openblas_env"] or "neither set"
    load = report.get("load", 0)
    lines = [
        f"## Quiet, run {report.get('run', 0) + 1}"
        if load == 0
        else f"## {load} busy process{'es' if load > 1 else ''}, run {report.get('run', 0) + 1}",
        "",
        f"- Date: {report['date']}; wall time {report['wall_s']:.0f} s",
        f"- Busy processes started by the benchmark: {load}",
        f"- Command: `{report['command']}`",
        f"- Machine: {m['cpu']}; {m['cores']} cores ({m['cores_usable']} usable); "
        f"{m['platform']}; shared with other work (load average "
        f"{report['loadavg_before'][0]:.2f} before, {report['loadavg_after'][0]:.2f} after)",
        f"- Versions: {vers}",
        f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {env}",
    ]
    for w in report["workers"]:
        blas = "; ".join(
            f"{b['internal_api']} {b['version']} kernel={b['architecture']} "
            f"threads={b['num_threads']} ({b['filepath']})"
            for b in w["blas"]
        )
        lines.append(
            f"- {w['threads']} thread(s): numba {w['numba_threads']} threads "
            f"({w['numba_threading_layer']} layer, requested {w.get('requested_layer', '?')}); "
            f"BLAS: {blas}; "
            f"XLA_FLAGS='{w['xla_flags']}'; pinned to CPUs {w['cpus']}"
        )
    lines += [
        f"- Repetitions: {report['reps']} interleaved rounds per config; their "
        f"{statistic(load)} reported (the median when quiet, the mean under load: "
        "`benchmarks.report.step_seconds`).",
        f"- {FLOP_NOTE}",
        "",
        table(report),
        "",
        f"Cores kept busy (process CPU seconds / wall seconds, {statistic(load)} over rounds):",
        "",
        "| config | dtype | thr | " + " | ".join(PEER_NAMES.values()) + " |",
        "|" + "---|" * (3 + len(PEER_NAMES)),
    ]
    for r in summary_rows(report):
        cpu = [f"{r['cpu'][n]:.2f}" if n in r["cpu"] else "-" for n in PEER_NAMES]
        lines.append(f"| {r['config']} | {r['dtype']} | {r['threads']} | " + " | ".join(cpu) + " |")
    return "\n".join(lines) + "\n"


def _load_name(load: int) -> str:
    return "quiet" if load == 0 else f"{load} busy"


def summary_table(reports: list[dict[str, Any]]) -> str:
    """One row per (config, dtype, threads); per load level: Population's median throughput and
    its ratio to the best peer, worst and median over the runs (the README's table)."""
    loads = sorted({r.get("load", 0) for r in reports})
    cells: dict[tuple, dict[int, list[dict[str, Any]]]] = {}
    for report in reports:
        for row in summary_rows(report):
            key = (row["config"], row["dtype"], row["threads"])
            cells.setdefault(key, {}).setdefault(report.get("load", 0), []).append(row)
    head = ["config L:P:B", "dtype", "thr"]
    for load in loads:
        head += [f"Population, {_load_name(load)}", f"Pop / best peer, {_load_name(load)}"]
    head += ["Pop % limit, quiet"] if 0 in loads else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (config, dtype, threads), by_load in cells.items():
        row = [config, dtype, str(threads)]
        for load in loads:
            runs = by_load.get(load, [])
            if not runs:
                row += ["-", "-"]
                continue
            sps = float(np.median([r["sps"]["population"] for r in runs])) / 1e6
            ratios = sorted(r["vs_best"] for r in runs)
            names = sorted({PEER_NAMES[r["best"]].split(" ")[0] for r in runs})
            spread = (
                f"{ratios[0]:.2f}x"
                if len(ratios) == 1
                else (f"{ratios[0]:.2f}x / {float(np.median(ratios)):.2f}x")
            )
            row += [f"{sps:.2f}", f"{spread} ({', '.join(names)})"]
        if 0 in loads:
            shares = [r["pop_share"] for r in by_load.get(0, [])]
            row += [f"{100 * float(np.median(shares)):.0f}%" if shares else "-"]
        lines.append("| " + " | ".join(row) + " |")
    runs = {load: sum(r.get("load", 0) == load for r in reports) for load in loads}
    lines += [
        "",
        "Population: million agent-samples/s, median over runs. Pop / best peer: worst / median "
        "over the runs (one value for a single run), the best peer named. Within a run, every "
        "peer's seconds per step are the median of its timed rounds when quiet and their mean "
        "under load (the total time of the steps timed). Runs per level: "
        + ", ".join(f"{_load_name(k)} {v}" for k, v in runs.items())
        + ".",
    ]
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        for f in report["floors"]:
            verdicts.setdefault(f["floor"], []).append(f)
    lines.append("")
    for floor, fs in verdicts.items():
        measured = [f for f in fs if f["worst"] is not None]
        if not measured:
            continue
        worst = min(measured, key=lambda f: f["worst"])
        ok = all(f["verdict"] == "PASS" for f in measured)
        passed = sum(f["verdict"] == "PASS" for f in measured)
        lines.append(
            f"- {'PASS' if ok else 'FAIL'}: {floor}; met in {passed} of {len(measured)} runs "
            f"(worst {worst['worst']:.2f}x at {worst['row']})"
        )
    return "\n".join(lines)


def results_page(reports: list[dict[str, Any]]) -> str:
    """results.md: the summary over runs (when there are several), then every run in full."""
    lines = ["# Training-step benchmark: latest results", ""]
    if len(reports) > 1:
        lines += ["## Summary", "", summary_table(reports), ""]
    lines += [markdown(r) for r in reports]
    return "\n".join(lines)
