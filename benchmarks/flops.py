"""The machine's FLOP limit, measured, and the facts about the machine a result depends on.

The limit is what a large square ``np.matmul`` (GEMM, ``2 n**3`` FLOPs) reaches at a given
dtype and BLAS thread count: the best of a few repetitions. ``python -m benchmarks.flops``
prints it for float32 and float64 at the current thread settings.
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from typing import Any

import numpy as np

# Environment variables that change which OpenBLAS kernels numpy uses: reported, never changed.
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
VERSIONED = ("numpy", "numba", "mesa", "jax", "jaxlib", "scipy", "threadpoolctl")


def gemm_gflops(dtype: Any, threads: int, n: int = 2048, reps: int = 4) -> float:
    """Best GFLOP/s of ``np.matmul`` of two (n, n) matrices of ``dtype`` on ``threads`` threads.

    Parameters
    ----------
    dtype : float32 or float64
    threads : int
        BLAS threads (set through threadpoolctl for the duration of the probe).
    n : int
        Matrix size; the product costs ``2 n**3`` FLOPs.
    reps : int
        Timed repetitions after one warm-up; the fastest one counts.

    Returns
    -------
    float : GFLOP/s (1e9 floating-point operations per second).
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    best = np.inf
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, b, out=out)
        for _ in range(reps):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def cpu_model() -> str:
    """The CPU's model name, family and model numbers from /proc/cpuinfo ('unknown' if absent)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or "unknown"
    flags = set(fields.get("flags", "").split())
    simd = [f for f in ("avx512f", "avx2", "fma") if f in flags]
    return (
        f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')}, "
        f"model {fields.get('model', '?')}; {' '.join(simd) or 'no AVX'})"
    )


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of every loaded BLAS: library, kernel (architecture), threads."""
    from threadpoolctl import threadpool_info

    keep = ("internal_api", "architecture", "version", "num_threads", "prefix", "filepath")
    rows = [{k: d.get(k) for k in keep} for d in threadpool_info() if d.get("user_api") == "blas"]
    for row in rows:
        row["filepath"] = os.path.basename(str(row["filepath"]))
    return rows


def versions() -> dict[str, str]:
    """Installed versions of the packages the benchmark depends on."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    """Cores, CPU model, package versions and the OpenBLAS environment variables that are set."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "versions": versions(),
        "openblas_env": {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ},
    }


def main() -> None:
    """Print the GEMM limit at float32 and float64 for 1 and all usable threads."""
    info = machine()
    print(f"CPU: {info['cpu']}, {info['cores_usable']} usable cores")
    for t in sorted({1, info["cores_usable"]}):
        for dt in ("float32", "float64"):
            print(f"{dt} GEMM, {t} thread(s): {gemm_gflops(dt, t):.1f} GFLOP/s")
    for row in blas_info():
        print(f"BLAS: {row['internal_api']} {row['version']} kernel={row['architecture']}")


if __name__ == "__main__":
    main()
