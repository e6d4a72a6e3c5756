"""Standard figures of a sweep folder or of one run's folder, as PNG (matplotlib, Agg; no
pyplot state is touched).

A sweep folder (runs.csv, steps.csv, manifest.json; :func:`plot_sweep`):

* ``<param>.png`` for each swept parameter: every measure against that parameter, mean over
  seeds with a band of +- one standard deviation; one line per value of a second swept
  parameter (when there are two), else averaged over the other parameters (the title says so).
* ``heatmap_<a>_<b>.png`` when exactly two parameters are swept: the mean over seeds of each
  measure on the a x b grid.
* ``steps.png``: every measure against the step (steps.csv), one line per parameter
  combination (up to 8), band over seeds.

The value of a measure for a run is its final value (runs.csv; ``stat="final"``) or its mean
over the recorded steps (steps.csv; ``stat="mean"``).

A run's folder (model.csv, config.json and maybe agents.csv, as ``simulator run`` writes;
:func:`plot_run`):

* ``measures.png``: every measure against the step;
* ``agents.png`` (when agents.csv is there): the per-agent columns against the step, median
  with the 10-90 % band over agents.

:func:`plot_folder` draws whichever the folder is.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_folder", "plot_run", "plot_sweep"]

MAX_LINES = 8


def plot_folder(
    out: str | os.PathLike,
    measures: list[str] | None = None,
    stat: str = "final",
    figdir: str | os.PathLike | None = None,
) -> list[Path]:
    """The standard figures of ``out``: a sweep folder (manifest.json) or a run's (model.csv)."""
    from simulator.config import ParameterError

    out = Path(out)
    if (out / "manifest.json").exists():
        return plot_sweep(out, measures, stat=stat, figdir=figdir)
    if _run_table(out) is not None:
        return plot_run(out, measures, figdir=figdir)
    raise ParameterError(
        f"{out} is neither a sweep folder (no manifest.json) nor a run's folder (no model.csv "
        "or model.parquet)"
    )


def _run_table(out: Path) -> Path | None:
    return next(
        (out / f"model.{ext}" for ext in ("csv", "parquet") if (out / f"model.{ext}").exists()),
        None,
    )


def _read_table(path: Path) -> pd.DataFrame:
    from simulator.config import ParameterError

    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:
        raise ParameterError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


AGENT_COLUMNS = ("loss", "probe_loss", "fitness", "accuracy")


def plot_run(
    out: str | os.PathLike,
    measures: list[str] | None = None,
    figdir: str | os.PathLike | None = None,
) -> list[Path]:
    """Draw one run's folder (written by ``simulator run``); return the PNG paths written.

    Parameters
    ----------
    out : path
        The run's folder: model.csv (or .parquet), config.json, maybe agents.csv.
    measures : list of str, optional
        Measures to draw (default: those config.json lists, else every numeric column of
        model.csv that varies, other than ``step``).
    figdir : path, optional
        Where the PNGs go (default ``out/figures``).
    """
    from simulator.config import ParameterError, fail

    out = Path(out)
    table = _run_table(out)
    if table is None:
        raise ParameterError(f"{out} is not a run's folder (no model.csv or model.parquet)")
    df = _read_table(table)
    if "step" not in df.columns or not len(df):
        raise ParameterError(f"{table} has no step column or no rows")
    config_path = out / "config.json"
    listed: list[str] = []
    if config_path.exists():
        try:
            listed = list(json.loads(config_path.read_text()).get("measures", []))
        except (ValueError, AttributeError):
            listed = []
    numeric = [c for c in df.columns if c != "step" and pd.api.types.is_numeric_dtype(df[c])]
    available = [m for m in listed if m in df.columns] or [
        c for c in numeric if df[c].nunique() > 1
    ]
    if measures is None:
        measures = available
    missing = [m for m in measures if m not in numeric]
    if missing:
        raise fail("measures", missing, "among " + ", ".join(available))
    if not measures:
        raise ParameterError(f"{table} has no measure to draw")
    figdir = Path(figdir) if figdir is not None else out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    name = df["model"].iloc[0] if "model" in df.columns else out.name
    fig, axes = _grid(len(measures))
    for ax, measure in zip(axes, measures):
        ax.plot(df["step"].to_numpy(float), df[measure].to_numpy(float), marker="o", ms=2)
        ax.set_title(measure, fontsize=10)
        ax.set_xlabel("step")
    fig.suptitle(f"{name}: measures against step ({out.name})", fontsize=10)
    written = [figdir / "measures.png"]
    fig.savefig(written[0], dpi=100)
    agents = next(
        (out / f"agents.{e}" for e in ("csv", "parquet") if (out / f"agents.{e}").exists()), None
    )
    if agents is not None:
        path = _agents_figure(_read_table(agents), name, figdir / "agents.png")
        if path is not None:
            written.append(path)
    return written


def _agents_figure(agents: pd.DataFrame, name: str, path: Path) -> Path | None:
    """Median and 10-90 % band over agents of each per-agent column, against the step."""
    columns = [c for c in AGENT_COLUMNS if c in agents.columns]
    if "step" not in agents.columns or not columns or not len(agents):
        return None
    fig, axes = _grid(len(columns))
    grouped = agents.groupby("step")
    for ax, column in zip(axes, columns):
        q = grouped[column].quantile([0.1, 0.5, 0.9]).unstack()
        t = q.index.to_numpy(float)
        (line,) = ax.plot(t, q[0.5].to_numpy(float), marker="o", ms=2, label="median")
        ax.fill_between(
            t, q[0.1], q[0.9], alpha=0.2, color=line.get_color(), linewidth=0, label="10-90 %"
        )
        ax.set_title(f"{column} (per agent)", fontsize=10)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{name}: per-agent columns, median and 10-90 % over agents", fontsize=10)
    fig.savefig(path, dpi=100)
    return path


def plot_sweep(
    out: str | os.PathLike,
    measures: list[str] | None = None,
    stat: str = "final",
    figdir: str | os.PathLike | None = None,
) -> list[Path]:
    """Draw the standard figures of sweep folder ``out``; return the PNG paths written.

    Parameters
    ----------
    out : path
        A folder written by :func:`simulator.sweep.sweep` (runs.csv, steps.csv, manifest.json).
    measures : list of str, optional
        Measures to draw (default: every measure in runs.csv).
    stat : {"final", "mean"}
        Per run: the value at the last step, or the mean over the recorded steps.
    figdir : path, optional
        Where the PNGs go (default ``out/figures``).
    """
    from simulator.config import ParameterError, fail
    from simulator.sweep.store import read_manifest, read_runs

    if stat not in ("final", "mean"):
        raise fail("stat", stat, "'final' or 'mean'")
    out = Path(out)
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        raise ParameterError(f"{out} is not a sweep folder (no manifest.json)")
    manifest = read_manifest(out)  # a clear error for a damaged journal
    swept, spec = manifest.get("swept", []), manifest.get("spec", {})
    runs = read_runs(out)
    if "status" in runs.columns:
        runs = runs[runs["status"] == "ok"]
    if swept:  # values in the order of the spec (lines, legends, axes)
        runs = runs.sort_values(swept, key=lambda col: _rank(col, spec), kind="stable")
    if not len(runs):
        raise ParameterError(f"{out}/runs.csv has no finished run to draw")
    columns = list(runs.columns)
    available = columns[columns.index("error") + 1 :]
    measures = available if measures is None else list(measures)
    missing = [m for m in measures if m not in available]
    if missing:
        raise fail("measures", missing, "among " + ", ".join(available))
    steps = _read_steps(out, runs, measures)
    if stat == "mean":
        if steps is None:
            raise ParameterError(f"stat='mean' needs {out}/steps.csv")
        means = steps.groupby("run_id")[measures].mean()
        runs = runs.drop(columns=measures).join(means, on="run_id")
    figdir = Path(figdir) if figdir is not None else out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    label = "final value" if stat == "final" else "mean over recorded steps"
    n_seeds = runs["seed"].nunique()
    note = f"{label}, mean ± sd over {n_seeds} seed{'s' * (n_seeds > 1)}"
    written = []
    for param in swept:
        others = [p for p in swept if p != param]
        path = figdir / f"{_safe(param)}.png"
        _against(runs, param, others, measures, note, path)
        written.append(path)
    if len(swept) == 2:
        path = figdir / f"heatmap_{_safe(swept[0])}_{_safe(swept[1])}.png"
        _heatmap(runs, swept[0], swept[1], measures, label, path)
        written.append(path)
    if steps is not None:
        path = figdir / "steps.png"
        _steps(steps, swept, measures, path)
        written.append(path)
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _rank(column: pd.Series, spec: dict[str, Any]) -> pd.Series:
    """Sort keys: numbers by value, other values by their place in the spec."""
    if pd.api.types.is_numeric_dtype(column):
        return column
    listed = list(spec.get("vary", {}).get(column.name, []))
    listed += [c[column.name] for c in spec.get("combinations", []) if column.name in c]
    cells = [v if isinstance(v, str) else json.dumps(v) for v in listed]
    return column.map(lambda v: cells.index(v) if v in cells else len(cells))


def _read_steps(out: Path, runs: pd.DataFrame, measures: list[str]) -> pd.DataFrame | None:
    path = out / "steps.csv"
    if not path.exists() or not path.stat().st_size:
        return None
    steps = pd.read_csv(path)
    order = {rid: i for i, rid in enumerate(runs["run_id"])}
    steps = steps[steps["run_id"].isin(order)]
    steps = steps.sort_values("run_id", key=lambda col: col.map(order), kind="stable")
    keep = [m for m in measures if m in steps.columns]
    return steps if keep == measures and len(steps) else None


def _order(values: pd.Series) -> tuple[list[Any], bool]:
    """Distinct values in plotting order, and whether they are numbers."""
    distinct = list(dict.fromkeys(values))
    numeric = all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in distinct
    )
    return (sorted(distinct) if numeric else distinct), numeric


def _grid(n: int) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    cols = min(4, n)
    rows = math.ceil(n / cols)
    width, height = 3.6 * cols + 0.4, 3.0 * rows + 0.8
    fig = Figure(figsize=(width, height))  # fixed margins: constrained layout doubles the time
    fig.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.2 / width,
        bottom=1.0 / height,
        top=1 - 0.55 / height,
        wspace=0.4,
        hspace=0.5,
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _band(ax: Any, x: np.ndarray, data: pd.DataFrame, measure: str, label: Any) -> None:
    mean = data.groupby("_x")[measure].mean().reindex(x)
    sd = data.groupby("_x")[measure].std(ddof=1).reindex(x).fillna(0.0)
    pos = np.arange(len(x)) if x.dtype == object else x.astype(float)
    (line,) = ax.plot(pos, mean.to_numpy(float), marker="o", ms=3, label=label)
    ax.fill_between(
        pos,
        (mean - sd).to_numpy(float),
        (mean + sd).to_numpy(float),
        alpha=0.2,
        color=line.get_color(),
        linewidth=0,
    )


def _against(runs, param, others, measures, note, path) -> None:
    xs, numeric = _order(runs[param])
    x = np.array(xs, dtype=float if numeric else object)
    data = runs.assign(_x=runs[param])
    split = others[0] if len(others) == 1 and runs[others[0]].nunique() <= MAX_LINES else None
    fig, axes = _grid(len(measures))
    for ax, measure in zip(axes, measures):
        if split is None:
            _band(ax, x, data, measure, None)
        else:
            for value in _order(runs[split])[0]:
                _band(ax, x, data[data[split] == value], measure, f"{split}={value}")
        ax.set_title(measure, fontsize=10)
        ax.set_xlabel(param)
        if not numeric:
            ax.set_xticks(np.arange(len(x)), [str(v)[:14] for v in x], rotation=30, fontsize=8)
        elif _spans_decades(x):
            ax.set_xscale("symlog", linthresh=x[x > 0].min())
            ax.set_xticks(x, [f"{v:g}" for v in x], fontsize=8)
    if split is not None:
        axes[0].legend(fontsize=7)
    extra = f"; averaged over {', '.join(others)}" if others and split is None else ""
    fig.suptitle(f"{note}{extra}", fontsize=10)
    fig.savefig(path, dpi=100)


def _spans_decades(x: np.ndarray) -> bool:
    """Non-negative values whose positive ones span two decades or more (log-like grids)."""
    pos = x[x > 0]
    return bool((x >= 0).all() and len(pos) >= 3 and pos.max() >= 100 * pos.min())


def _heatmap(runs, a, b, measures, label, path) -> None:
    ya, _ = _order(runs[a])
    xb, _ = _order(runs[b])
    fig, axes = _grid(len(measures))
    for ax, measure in zip(axes, measures):
        table = runs.pivot_table(index=a, columns=b, values=measure, aggfunc="mean")
        grid = table.reindex(index=ya, columns=xb).to_numpy(float)
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(np.arange(len(xb)), [str(v)[:10] for v in xb], rotation=30, fontsize=8)
        ax.set_yticks(np.arange(len(ya)), [str(v)[:10] for v in ya], fontsize=8)
        ax.set_xlabel(b)
        ax.set_ylabel(a)
        ax.set_title(measure, fontsize=10)
    fig.suptitle(f"{label}, mean over seeds", fontsize=10)
    fig.savefig(path, dpi=100)


def _steps(steps: pd.DataFrame, swept: list[str], measures: list[str], path) -> None:
    by = _step_groups(steps, swept)
    keys = steps[by].astype(str).agg(", ".join, axis=1) if by else None
    groups = list(dict.fromkeys(keys)) if by else [None]
    fig, axes = _grid(len(measures))
    for ax, measure in zip(axes, measures):
        for group in groups:
            data = steps if group is None else steps[keys == group]
            stats = data.groupby("step")[measure].agg(["mean", "std"]).fillna({"std": 0.0})
            t = stats.index.to_numpy(float)
            low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
            (line,) = ax.plot(t, stats["mean"], label=group)
            ax.fill_between(t, low, high, alpha=0.2, color=line.get_color(), linewidth=0)
        ax.set_title(measure, fontsize=10)
        ax.set_xlabel("step")
    if by:
        axes[0].legend(fontsize=7, title=", ".join(by), title_fontsize=7)
    pooled = [p for p in swept if p not in by]
    over = ", ".join(["seeds", *pooled])
    fig.suptitle(f"mean ± sd over {over}", fontsize=10)
    fig.savefig(path, dpi=100)


def _step_groups(steps: pd.DataFrame, swept: list[str]) -> list[str]:
    """Parameters to draw one line per value of: all swept ones if few lines, else one."""
    if swept and len(steps.groupby(swept, dropna=False)) <= MAX_LINES:
        return swept
    return next(([p] for p in swept if steps[p].nunique() <= MAX_LINES), [])
