"""Time the teacher task's data kernel and its two parts: the input normals and the forward pass.

``python -m benchmarks.data_kernel [--agents 10000] [--batch 32] [--shape 8-16-1]
[--dtypes float32,float64] [--threads 1,2] [--reps 5] [--calls 15]``

For each dtype and thread count, in interleaved repetitions: ``teacher_sample`` (normals,
teacher, label noise: what ``TeacherRegression.sample_into`` runs), the input normals alone
(``fill_normals`` of the same shape) and the forward pass alone (``teacher_forward`` on the
same inputs). Reported: the best wall-clock milliseconds per call over ``--reps`` x
``--calls``, and on one thread also the best CPU time of the calling thread (which runs the
whole kernel then), less disturbed by other processes on a shared machine. Prints the load
average; compare figures measured in one run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numba
import numpy as np

from simulator.kernels import data as D
from simulator.kernels.random import fill_normals
from simulator.tasks.teacher import TeacherRegression


def best_ms(fn: Callable[[], object], calls: int, clock: Callable[[], float]) -> float:
    """Best time of one call among ``calls`` calls, in milliseconds."""
    best = float("inf")
    for _ in range(calls):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best * 1e3


def cases(task: TeacherRegression, P: int, B: int, dtype: str) -> dict[str, Callable]:
    """The three timed calls on buffers of ``dtype``."""
    X = np.empty((P, B, task.d_in), dtype)
    Y = np.empty((P, B, task.d_out), dtype)
    out = np.empty((P, B, task.d_out))
    N = X.reshape(P, -1)
    W = task._weights(1)
    div, noise = np.float32(task.diversity), float(task.noise)
    args = (*task._k, 1, *W, task._teacher_of, div, task._scale, noise)
    return {
        "teacher_sample": lambda: D.teacher_sample(X, Y, *args),
        "normals": lambda: fill_normals(N, task._k, 1, D.INPUT),
        "forward": lambda: D.teacher_forward(X, out, *W, task._teacher_of, div, task._scale),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument(
        "--shape", default="8-16-1", help="teacher d_in-hidden-d_out (hidden 0: a linear teacher)"
    )
    ap.add_argument("--heterogeneity", default="shared", choices=("shared", "agent"))
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--calls", type=int, default=15)
    a = ap.parse_args(argv)
    d_in, hidden, d_out = (int(v) for v in a.shape.split("-"))
    task = TeacherRegression(
        a.agents, d_in=d_in, teacher_hidden=hidden, d_out=d_out,
        heterogeneity=a.heterogeneity, noise=a.noise, seed=0,
    )  # fmt: skip
    threads = [min(int(t), numba.config.NUMBA_NUM_THREADS) for t in a.threads.split(",")]
    print(f"teacher {a.shape}, {a.heterogeneity}, noise {a.noise}: {a.agents} agents x B={a.batch}")
    print(f"load average before: {os.getloadavg()}")
    for dtype in a.dtypes.split(","):
        calls = cases(task, a.agents, a.batch, dtype)
        for fn in calls.values():
            fn()  # compile
        for n in threads:
            numba.set_num_threads(n)
            wall = dict.fromkeys(calls, float("inf"))
            cpu = dict.fromkeys(calls, float("inf"))
            for _ in range(a.reps):
                for name, fn in calls.items():
                    wall[name] = min(wall[name], best_ms(fn, a.calls, time.perf_counter))
                    if n == 1:
                        cpu[name] = min(cpu[name], best_ms(fn, a.calls, time.thread_time))
            row = ", ".join(
                f"{k} {wall[k]:.2f}" + (f" (cpu {cpu[k]:.2f})" if n == 1 else "") for k in calls
            )
            print(f"{dtype}, {n} thread(s), ms per call: {row}")
    print(f"load average after: {os.getloadavg()}, threading layer {numba.threading_layer()}")


if __name__ == "__main__":
    main()
