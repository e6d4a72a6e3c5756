"""Time ``Population.train_step`` beside the alternatives a user would pick.

``python -m benchmarks.train_step [--quick] [--configs ...] [--threads 1,2] [--load 0,1,2]
[--runs K] [--threading-layer tbb|omp] [--out PATH]``

Each thread count runs in its own subprocess with the thread settings in its environment
(``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and,
for one thread, ``XLA_FLAGS``), also applied through ``numba.set_num_threads`` and threadpoolctl;
with fewer threads than usable cores the process is pinned to that many CPUs (XLA starts
helper threads whatever its flags say).
In a subprocess, for each dtype and config, every peer (see :mod:`benchmarks.peers`) is built,
checked to compute the same losses as Population over two steps, then timed in interleaved
repetitions (the order rotates each repetition). The machine's FLOP limit is a large GEMM at
that dtype and thread count, measured before and after the dtype's configs (the best counts).

Throughput is agent-samples per second: ``n_agents * B / median seconds per step``. The Mesa
loop is slow, so it holds only the first ``--mesa-agents`` agents; its throughput is per
agent-sample all the same.

Under load (``--load N``): the benchmark itself starts N other processes that keep a core busy
(``python -c "while True: pass"``, not pinned: the scheduler places them) before each
measurement and kills them after it, whatever happens. ``--load 0,1,2 --runs 3`` measures
quiet, one and two busy processes, three full runs each, and prints the summary table the
README shows (the worst and the median ratio to the best peer over the runs).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import flops, peers

DEFAULT_CONFIGS = ("8-16-1:1000:32", "8-16-1:10000:32", "64-64-10:1000:64")
DTYPES = ("float32", "float64")
RESULTS = Path(__file__).with_name("results.md")


def parse_config(spec: str) -> tuple[tuple[int, ...], int, int]:
    """``"8-16-1:1000:32"`` -> ((8, 16, 1), 1000, 32): layers, agents P, batch B."""
    try:
        layers, n_agents, batch = spec.split(":")
        out = tuple(int(d) for d in layers.split("-")), int(n_agents), int(batch)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"config {spec!r} is not LAYERS:P:B, e.g. 8-16-1:1000:32"
        ) from exc
    if len(out[0]) < 2 or min(out[0]) < 1 or out[1] < 1 or out[2] < 1:
        raise argparse.ArgumentTypeError(f"config {spec!r} needs positive sizes")
    return out


BUSY_CODE = "while True: pass"


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """Keep ``n`` other processes busy (each spinning on one core) while the block runs.

    They are plain Python loops, not pinned, started before the block and killed (then
    reaped) when it ends, also on an error or an interrupt.
    """
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_CODE]))
        if procs:
            time.sleep(0.2)  # let them reach their loop
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def thread_env(threads: int, layer: str | None = None) -> dict[str, str]:
    """This process's environment with every thread pool set to ``threads``.

    ``layer``: Numba's threading layer for the worker (``NUMBA_THREADING_LAYER``), or None to
    leave the environment's choice (the project's default: TBB when installed).
    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are passed through unchanged.
    """
    env = dict(os.environ)
    if layer:
        env["NUMBA_THREADING_LAYER"] = layer
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    return env


# ---------------------------------------------------------------------- worker (one thread count)
def time_interleaved(
    built: dict[str, Any], reps: int, min_time: float
) -> dict[str, dict[str, Any]]:
    """Seconds per step of every peer: ``reps`` rounds, each peer once per round, rotating.

    Each timing covers enough steps to last ``min_time`` seconds (calibrated on one step);
    the garbage collector is off while timing, as in :mod:`timeit`. Also records CPU seconds
    per wall second (the cores a peer really kept busy).
    """
    names = list(built)
    inner = {}
    for name in names:
        start = time.perf_counter()
        built[name].step()
        inner[name] = max(1, math.ceil(min_time / max(time.perf_counter() - start, 1e-9)))
    seconds: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    gc.collect()  # once: a collection costs ~0.2 s with JAX loaded
    gc.disable()
    try:
        for r in range(reps):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                step = built[name].step
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(inner[name]):
                    step()
                wall = time.perf_counter() - t0
                cpu[name].append((time.process_time() - c0) / wall)
                seconds[name].append(wall / inner[name])
    finally:
        gc.enable()
    return {
        n: {"seconds": seconds[n], "inner": inner[n], "cpu_per_wall": float(np.median(cpu[n]))}
        for n in names
    }


def run_case(spec: str, dtype: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build, check and time every peer on one config and dtype."""
    layers, n_agents, batch = parse_config(spec)
    work = peers.make_workload(layers, n_agents, batch, dtype)
    built = peers.build_peers(work, args.threads[0], args.mesa_agents, with_jax=not args.no_jax)
    errors = peers.check_agreement(built, work.dtype)
    timed = time_interleaved(built, args.reps, args.min_time)
    for name, t in timed.items():
        t["n_agents"] = len(built[name].losses())
        t["median_s"] = float(np.median(t["seconds"]))
        t["samples_per_s"] = t["n_agents"] * batch / t["median_s"]
        t["loss_rel_diff"] = errors[name]
    del built
    gc.collect()
    return {
        "config": spec,
        "layers": list(layers),
        "n_agents": n_agents,
        "batch": batch,
        "dtype": dtype,
        "flops_per_agent_step": peers.model_flops(layers, batch),
        "peers": timed,
    }


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Everything measured at one thread count (runs inside its own subprocess)."""
    import numba
    from threadpoolctl import threadpool_limits

    from simulator.kernels.threads import threading_info

    threads = args.threads[0]
    usable = sorted(os.sched_getaffinity(0))
    if threads < len(usable):  # threads started from here on (numba, XLA) inherit the mask
        os.sched_setaffinity(0, usable[:threads])
    numba.set_num_threads(threads)
    limiter = threadpool_limits(limits=threads)
    runs, limits = [], {}
    gemm = {"n": 1024, "reps": 2} if args.quick else {"n": 2048, "reps": 4}
    for dtype in args.dtypes:
        before = flops.gemm_gflops(dtype, threads, **gemm)
        cases = []
        for spec in args.configs:
            start = time.perf_counter()
            cases.append(run_case(spec, dtype, args))
            took = time.perf_counter() - start
            print(f"[bench]   {spec} {dtype}: {took:.1f} s", file=sys.stderr, flush=True)
        limits[dtype] = max(before, flops.gemm_gflops(dtype, threads, **gemm))
        for case in cases:
            case["limit_gflops"] = limits[dtype]
        runs.extend(cases)
    limiter.restore_original_limits()
    return {
        "threads": threads,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.threading_layer(),
        "requested_layer": threading_info()["requested"],
        "blas": flops.blas_info(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpus": sorted(os.sched_getaffinity(0)),
        "gemm_limits_gflops": limits,
        "runs": runs,
    }


# ---------------------------------------------------------------------- report
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


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (thread count, dtype, config): throughputs, ratios, shares of the limit."""
    rows = []
    for w in report["workers"]:
        for run in w["runs"]:
            sps = {n: p["samples_per_s"] for n, p in run["peers"].items()}
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
                "cpu": {n: p["cpu_per_wall"] for n, p in run["peers"].items()},
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
        "Throughput: million agent-samples/s = n_agents * B / median seconds per step. "
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
        f"- Repetitions: {report['reps']} interleaved rounds per config; median reported.",
        f"- {FLOP_NOTE}",
        "",
        table(report),
        "",
        "Cores kept busy (process CPU seconds / wall seconds, median over rounds):",
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
        "over the runs (one value for a single run), the best peer named. Runs per level: "
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


# ---------------------------------------------------------------------- driver
def run_threads(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """Run the worker for ``threads`` in a subprocess and return its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "worker.json"
        cmd = [sys.executable, "-m", "benchmarks.train_step", "--worker", "--worker-out", str(out)]
        cmd += ["--threads", str(threads), "--configs", ",".join(args.configs)]
        cmd += ["--dtypes", ",".join(args.dtypes), "--reps", str(args.reps)]
        cmd += ["--min-time", str(args.min_time), "--mesa-agents", str(args.mesa_agents)]
        cmd += ["--quick"] * args.quick + ["--no-jax"] * args.no_jax
        subprocess.run(cmd, env=thread_env(threads, args.threading_layer), check=True)
        return json.loads(out.read_text())


def command_line(argv: list[str]) -> str:
    """How this run was started, for the record."""
    return " ".join(["python -m benchmarks.train_step", *argv])


def measure(args: argparse.Namespace, argv: list[str], load: int, run: int) -> dict[str, Any]:
    """One full run (every thread count, dtype and config) with ``load`` busy processes."""
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(argv),
        "machine": flops.machine(),
        "loadavg_before": os.getloadavg(),
        "load": load,
        "run": run,
        "jax": not args.no_jax and peers.jax_available(),
        "mesa_agents": args.mesa_agents,
        "reps": args.reps,
        "workers": [],
    }
    with busy_processes(load):
        for threads in args.threads:
            print(f"[bench] load {load}, run {run + 1}: {threads} thread(s) ...", flush=True)
            report["workers"].append(run_threads(args, threads))
    report["loadavg_after"] = os.getloadavg()
    report["wall_s"] = time.perf_counter() - started
    report["floors"] = floors(report)
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__)
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke run (< 2 min)")
    p.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help="comma-separated LAYERS:P:B (default: %(default)s)",
    )
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="float32,float64 or one of them")
    p.add_argument(
        "--load",
        default="0",
        help="busy processes kept running during the measurement; comma-separated to measure "
        "several levels, e.g. 0,1,2 (default 0: none)",
    )
    p.add_argument("--runs", type=int, default=1, help="full runs per load level (default 1)")
    p.add_argument(
        "--threading-layer",
        choices=("tbb", "omp", "workqueue"),
        default=None,
        help="NUMBA_THREADING_LAYER of the workers (default: the project's own choice, TBB)",
    )
    p.add_argument("--reps", type=int, default=None, help="timed rounds (default 15; quick 3)")
    p.add_argument("--min-time", type=float, default=None, help="seconds per timing (0.05)")
    p.add_argument(
        "--mesa-agents", type=int, default=None, help="agents in the Mesa loop (500; quick 200)"
    )
    p.add_argument("--no-jax", action="store_true", help="leave JAX out even if installed")
    p.add_argument("--out", type=Path, help="write the full results as JSON here")
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"markdown table path (default {RESULTS.name} beside this file; none with --quick)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for spec in args.configs:
        try:
            parse_config(spec)
        except argparse.ArgumentTypeError as exc:
            p.error(str(exc))
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not args.dtypes or any(d not in DTYPES for d in args.dtypes):
        p.error(f"--dtypes must be float32 and/or float64, got {args.dtypes}")
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
        args.load = [int(n) for n in args.load.split(",")]
    except ValueError:
        p.error(
            f"--threads and --load take comma-separated integers: {args.threads!r}, {args.load!r}"
        )
    usable = len(os.sched_getaffinity(0))
    if not args.threads or any(t < 1 or t > usable for t in args.threads):
        p.error(f"--threads must be integers in [1, {usable}] (usable cores), got {args.threads}")
    if not args.load or any(n < 0 or n > 64 for n in args.load):
        p.error(f"--load must be integers in [0, 64], got {args.load}")
    if args.runs < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    args.reps = args.reps or (3 if args.quick else 15)
    args.min_time = args.min_time or (0.01 if args.quick else 0.05)
    args.mesa_agents = args.mesa_agents or (200 if args.quick else 500)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables and the floors. Returns 0 (floors never fail a run)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        args.worker_out.write_text(json.dumps(worker(args)))
        return 0
    reports = []
    for load in args.load:
        for run in range(args.runs):
            reports.append(measure(args, argv, load, run))
            print(markdown(reports[-1]), flush=True)
    page = results_page(reports)
    if len(reports) > 1:
        print(summary_table(reports))
    if args.out:
        args.out.write_text(json.dumps(reports if len(reports) > 1 else reports[0], indent=1))
    results = args.results or (None if args.quick else RESULTS)
    if results:
        results.write_text(page)
        print(f"[bench] wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
