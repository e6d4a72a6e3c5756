"""Parameter sweeps: a grid of parameter values x seeds, run on all cores or a Dask cluster.

>>> from simulator.sweep import sweep, plot_sweep
>>> runs = sweep("examples/sweep_gossip.toml", out="out/gossip")   # doctest: +SKIP
>>> plot_sweep("out/gossip")                                        # doctest: +SKIP

The spec format is described in :mod:`simulator.sweep.spec`, the folder in
:mod:`simulator.sweep.store`, the backends and what happens when things fail in
:mod:`simulator.sweep.runner`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.sweep.progress import ProgressEvent
from simulator.sweep.spec import Run, SpecError, SweepSpec, load_spec

__all__ = [
    "ProgressEvent",
    "Run",
    "SpecError",
    "SweepFolderError",
    "SweepSpec",
    "load_spec",
    "plot_sweep",
    "read_runs",
    "sweep",
]


def sweep(
    spec: Any,
    out: str | os.PathLike | None = None,
    *,
    backend: str = "local",
    workers: int | None = None,
    scheduler: Any = None,
    force: bool = False,
    fmt: str = "csv",
    progress: Any = "auto",
    fsync: bool = False,
    command: list[str] | None = None,
    checkpoint_every: int = 0,
) -> pd.DataFrame:
    """Run a sweep into folder ``out`` and return its runs table (one row per run).

    Parameters
    ----------
    spec : path, TOML text, dict, SweepSpec or None
        The sweep (see :mod:`simulator.sweep.spec`). None: the spec stored in ``out``'s
        manifest (resume a sweep).
    out : path, optional
        Output folder (default ``out/sweep-<spec hash>``). Running into a folder that holds
        the same sweep resumes it: finished runs are skipped, failed ones retried.
    backend : {"local", "dask", "serial"}
        Every local core (loky processes), a Dask cluster, or this process.
    workers : int, optional
        Local processes (default: every core); for dask, with no ``scheduler``, the size of
        the LocalCluster started.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (default: ``$NEUROPOP_DASK_SCHEDULER``; none: a LocalCluster).
    force : bool
        Write into a folder holding another spec or code revision anyway (its finished runs
        that this spec also has are kept).
    fmt : {"csv", "parquet"}
        "parquet" also writes runs/steps(/agents).parquet at the end (CSV stays the journal).
    progress : "auto", "bar", "lines", None or callable
        See :func:`simulator.sweep.progress.make_progress`.
    fsync : bool
        fsync each file after each run (survives a power cut, not only a kill).
    checkpoint_every : int
        Each run saves a checkpoint every K steps (0: none) to ``out/checkpoints``; a resumed
        sweep continues its in-flight runs from them (see :mod:`simulator.sweep.runner`).

    Returns
    -------
    pandas.DataFrame
        runs.csv restricted to this spec's runs, in spec order: run_id, model, parameters,
        seed, status, seconds, error, final value of each measure.
    """
    from simulator.config import check_int, fail
    from simulator.sweep.progress import make_progress
    from simulator.sweep.runner import check_backend, run_sweep
    from simulator.sweep.store import SweepStore

    if fmt not in ("csv", "parquet"):
        raise fail("fmt", fmt, "'csv' or 'parquet'")
    if fmt == "parquet":
        _require_pyarrow()
    check_backend(backend, workers)
    if spec is None:
        spec = _stored_spec(out)
    spec = load_spec(spec)
    out = Path(out) if out is not None else Path("out") / f"sweep-{spec.hash[:8]}"
    store = SweepStore(out, fsync=fsync)
    try:
        done = store.open(spec, force=force, command=command)
        runs = spec.runs()
        todo = [run for run in runs if run.run_id not in done]
        reporter = make_progress(progress, len(runs), len(runs) - len(todo))
        run_sweep(
            spec,
            todo,
            store,
            reporter,
            backend,
            workers,
            scheduler,
            checkpoint_every=check_int("checkpoint_every", checkpoint_every, low=0),
        )
        if fmt == "parquet":
            store.export_parquet()
    finally:
        store.close()
    return read_runs(out, spec)


def _stored_spec(out: Any) -> dict | str:
    from simulator.sweep.store import SweepFolderError, read_manifest

    path = Path(out or ".") / "manifest.json"
    manifest = None if out is None else read_manifest(out)
    if manifest is None:
        raise SweepFolderError(f"no sweep to resume: {path} does not exist; give a spec")
    return manifest.get("spec_text") or manifest["spec"]


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from simulator.config import ParameterError

        raise ParameterError(
            "format 'parquet' needs pyarrow: pip install 'neuropop[parquet]'"
        ) from None


def __getattr__(name: str) -> Any:
    if name == "plot_sweep":
        from simulator.sweep.plot import plot_sweep

        return plot_sweep
    if name == "SweepFolderError":
        from simulator.sweep.store import SweepFolderError

        return SweepFolderError
    raise AttributeError(f"module 'simulator.sweep' has no attribute {name!r}")


def read_runs(out: str | os.PathLike, spec: Any = None) -> pd.DataFrame:
    """The runs table of sweep folder ``out`` (only ``spec``'s runs, in order, if given)."""
    from simulator.sweep.store import read_runs as _read

    return _read(out, None if spec is None else load_spec(spec))
