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

Throughput is agent-samples per second: ``n_agents * B / seconds per step``, the seconds per
step of a peer being the median of its rounds on a quiet machine and their mean under load
(:func:`benchmarks.report.step_seconds` says why). The Mesa loop is slow, so it holds only the
first ``--mesa-agents`` agents; its throughput is per agent-sample all the same.

Under load (``--load N``): the benchmark itself starts N other processes that keep a core busy
(``python -c "while True: pass"``, not pinned: the scheduler places them) before each
measurement and kills them after it, whatever happens. ``--load 0,1,2 --runs 3`` measures
quiet, one and two busy processes, three full runs each, and prints the summary table the
README shows (the worst and the median ratio to the best peer over the runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import flops, peers
from benchmarks.busy import busy_processes, parse_loads
from benchmarks.report import floors, markdown, results_page, summary_table

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
    per wall second of every round (the cores a peer really kept busy).
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
    return {n: {"seconds": seconds[n], "inner": inner[n], "cpu_per_wall": cpu[n]} for n in names}


def run_case(spec: str, dtype: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build, check and time every peer on one config and dtype."""
    layers, n_agents, batch = parse_config(spec)
    work = peers.make_workload(layers, n_agents, batch, dtype)
    built = peers.build_peers(work, args.threads[0], args.mesa_agents, with_jax=not args.no_jax)
    errors = peers.check_agreement(built, work.dtype)
    timed = time_interleaved(built, args.reps, args.min_time)
    for name, t in timed.items():
        t["n_agents"] = len(built[name].losses())
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
    except ValueError:
        p.error(f"--threads takes comma-separated integers, got {args.threads!r}")
    try:
        args.load = parse_loads(args.load)
    except ValueError as exc:
        p.error(str(exc))
    usable = len(os.sched_getaffinity(0))
    if not args.threads or any(t < 1 or t > usable for t in args.threads):
        p.error(f"--threads must be integers in [1, {usable}] (usable cores), got {args.threads}")
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
