"""Tidy tables of what a run measured, written as CSV (or Parquet) with a JSON config sidecar.

``model.csv``: one row per collected step: ``step``, every measure, then every parameter (the
same value on each row, so tables from many runs concatenate and group directly).
``agents.csv``: one row per agent per recorded step. ``config.json``: all parameters, the seed,
the versions of the packages and the code revision.

Files are written to a temporary name (created exclusively, never through a symlink), fsynced
and renamed when complete, so a file that exists is whole; a run that fails leaves no table that
looks complete. :mod:`simulator.runfolder` makes the whole folder one unit the same way.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd

from simulator.atomic import write_atomically

if TYPE_CHECKING:
    from simulator.model import NeuralModel

PACKAGES = ("numpy", "numba", "mesa", "networkx", "pandas", "scipy", "solara")


def versions() -> dict[str, str]:
    """Python and key package versions."""
    out = {"python": platform.python_version()}
    for name in (*PACKAGES, "neuropop"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_revision() -> str:
    """The git commit of the simulator's source tree (with ``+dirty`` if modified), or "unknown"."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "simulator", "models"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def jsonable(value: Any) -> Any:
    """A JSON-friendly form of a parameter value (graphs are described, not dumped)."""
    if isinstance(value, nx.Graph):
        return f"<networkx graph: {value.number_of_nodes()} nodes, {value.number_of_edges()} edges>"
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def param_columns(config: dict[str, Any]) -> dict[str, Any]:
    """Parameters as scalar CSV cells: numbers and strings as they are, others as JSON text."""
    out = {}
    for name, value in config.items():
        v = jsonable(value)
        out[name] = v if isinstance(v, str | int | float | bool) else json.dumps(v)
    return out


def model_table(model: NeuralModel, scenario: str | None = None) -> pd.DataFrame:
    """The tidy model table: measures per collected step, then the parameters as columns."""
    df = model.model_dataframe()
    cols = param_columns(model.config)
    if scenario is not None:
        cols = {"model": scenario, **cols}
    for name, value in cols.items():
        if name not in df.columns:
            df[name] = value
    return df


def write_table(df: pd.DataFrame, path: Path, fmt: str = "csv") -> Path:
    """Write ``df`` to ``path`` (suffix set by ``fmt``: csv or parquet), atomically."""
    path = path.with_suffix("." + fmt)
    nan_cols = [c for c in df.columns if df[c].dtype.kind == "f" and df[c].isna().any()]
    if nan_cols:
        warnings.warn(
            f"{path.name}: columns {nan_cols} contain NaN (empty cells in CSV)",
            RuntimeWarning,
            stacklevel=2,
        )
    if fmt == "parquet":
        write_atomically(path, lambda fh: df.to_parquet(fh, index=False), binary=True)
    else:
        write_atomically(
            path, lambda fh: df.to_csv(fh, index=False, float_format="%.10g", lineterminator="\n")
        )
    return path


def write_run(
    model: NeuralModel,
    out_dir: str | os.PathLike,
    scenario: str,
    steps: int,
    command: list[str] | None = None,
    fmt: str = "csv",
    status: str = "completed",
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write model.csv, agents.csv (when per-agent rows were kept) and config.json to ``out_dir``.

    ``status`` ("completed", or why the run stopped early, e.g. "diverged at step 12: ...")
    and ``extra`` (more keys) go into config.json, which also records ``steps_done``. Returns
    the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"model": write_table(model_table(model, scenario), out / "model", fmt)}
    agents = model.agents_dataframe()
    if len(agents):
        written["agents"] = write_table(agents, out / "agents", fmt)
    config = {
        "model": scenario,
        "steps": steps,
        "steps_done": int(model.steps),
        "status": status,
        "seed": model.seed,
        "parameters": jsonable(model.config),
        "measures": model.measure_names,
        "versions": versions(),
        "code_revision": code_revision(),
        "command": command if command is not None else sys.argv,
        **(extra or {}),
    }
    path = out / "config.json"
    write_atomically(path, lambda fh: fh.write(json.dumps(config, indent=2) + "\n"))
    written["config"] = path
    return written
