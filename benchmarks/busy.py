"""Other work on the machine, on demand: processes that keep a core busy while a block runs.

Both benchmarks (``train_step --load N`` and ``model_step --load N``) measure under load with
the same busy processes: plain Python loops (``python -c "while True: pass"``), not pinned (the
scheduler places them, as it would a user's other work), started before the block and killed,
then reaped, when it ends, also on an error or an interrupt.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

__all__ = ["BUSY_CODE", "busy_processes", "fair_share_slowdown", "parse_loads"]

BUSY_CODE = "while True: pass"
MAX_LOAD = 64


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """Keep ``n`` other processes busy (each spinning on one core) while the block runs.

    Yields the processes (an empty list for ``n = 0``: nothing is started).
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


def parse_loads(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]: busy-process counts, each in [0, MAX_LOAD].

    Raises ValueError naming the option and what it allows.
    """
    try:
        loads = [int(part) for part in text.split(",")]
    except ValueError:
        loads = []
    if not loads or any(n < 0 or n > MAX_LOAD for n in loads):
        raise ValueError(
            f"--load must be comma-separated integers in [0, {MAX_LOAD}], got {text!r}"
        )
    return loads


def fair_share_slowdown(threads: int, busy: int, cores: int | None = None) -> float:
    """How much slower a job running ``threads`` threads gets beside ``busy`` spinning
    processes on ``cores`` cores (default: those this process may use) if the scheduler shares
    the cores evenly among the runnable threads and the job scales perfectly:
    ``max(1, (threads + busy) / cores)``, e.g. 1.5x for two threads beside one busy process on
    two cores, 2x beside two. A job that loses more waits on its threads (a parallel call held
    up by a thread whose core is taken)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    threads = max(1, min(threads, cores))
    return max(1.0, (threads + busy) / cores)
