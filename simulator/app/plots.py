"""Matplotlib figures of the app (no pyplot, no CDN): measures over time, the map, one agent.

Each function returns a :class:`matplotlib.figure.Figure`; :func:`to_png` turns it into bytes
for the page. Figures are built from arrays the caller read under the session's lock.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simulator.app.graphview import cluster_colours
from simulator.app.projection import MapFrame
from simulator.measures import class_probabilities

DPI = 80
# measures shown first, when the model reports them
PREFERRED = (
    "function_dispersion",
    "agreement",
    "ensemble_gain",
    "n_clusters",
    "probe_loss",
    "accuracy",
    "consensus_distance",
)
LOG_SCALE = {"function_dispersion", "consensus_distance", "aligned_distance", "ambiguity"}


def to_png(fig: Figure) -> bytes:
    """PNG bytes of ``fig`` at its own size and dpi."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def default_measures(names: list[str], k: int = 4) -> list[str]:
    """The first ``k`` of :data:`PREFERRED` that a model reports (padded from ``names``)."""
    chosen = [n for n in PREFERRED if n in names][:k]
    for n in names:
        if len(chosen) >= k:
            break
        if n not in chosen and n != "step":
            chosen.append(n)
    return chosen


def series_figure(df: pd.DataFrame, names: list[str], width_px: int = 920) -> Figure:
    """One small panel per measure in ``names`` against ``step`` (two panels a row)."""
    names = [n for n in names if n in df.columns] or ["step"]
    cols = 2 if len(names) > 1 else 1
    rows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(width_px / DPI, 2.1 * rows), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    fig.subplots_adjust(
        left=0.06,
        right=0.98,
        top=1 - 0.3 / (2.1 * rows),
        bottom=0.45 / (2.1 * rows),
        hspace=0.55,
        wspace=0.15,
    )
    steps = df["step"].to_numpy() if "step" in df.columns else np.arange(len(df))
    for ax, name in zip(axes, names, strict=False):
        y = df[name].to_numpy(dtype=np.float64)
        ax.plot(steps, y, lw=1.6, color="#1f77b4", marker="o" if len(y) < 3 else None, ms=3)
        ax.set_title(name, fontsize=10, loc="left")
        finite = y[np.isfinite(y)]
        if (
            name in LOG_SCALE
            and len(finite)
            and finite.min() > 0
            and finite.max() > 100 * (finite.min())
        ):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    axes[min(len(names), len(axes)) - 1].set_xlabel("step", fontsize=9)
    return fig


def map_figure(
    frame: MapFrame, labels: np.ndarray, space: str, selected: int | None = None
) -> Figure:
    """The homogenization map: agents as points coloured by cluster, the truth as a star."""
    fig = Figure(figsize=(460 / DPI, 400 / DPI), dpi=DPI)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.14, right=0.97, top=0.93, bottom=0.11)
    colours = cluster_colours(labels)[frame.agents]
    size = 30 if len(frame.agents) <= 200 else 10
    ax.scatter(frame.xy[:, 0], frame.xy[:, 1], s=size, c=colours, alpha=0.8, lw=0)
    if frame.truth is not None:
        ax.scatter([frame.truth[0]], [frame.truth[1]], marker="*", s=220, c="black", label="truth")
        ax.legend(loc="upper right", fontsize=8, markerscale=0.5, framealpha=0.8)
    if selected is not None:
        hit = np.flatnonzero(frame.agents == selected)
        if len(hit):
            x, y = frame.xy[hit[0]]
            ax.scatter([x], [y], s=160, facecolors="none", edgecolors="black", lw=2)
    h = frame.half_width
    ax.set_xlim(-h, h)
    ax.set_ylim(-h, h)
    ax.set_aspect("equal")
    what = "outputs on the probe set" if space == "function" else "aligned weights"
    ax.set_title(f"{what}: PCA of {len(frame.agents):,} agents", fontsize=10, loc="left")
    ax.set_xlabel(f"PC1 (RMS spread {frame.spread:.3g})", fontsize=9)
    ax.set_ylabel("PC2", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return fig


def agent_figure(model, agent: int) -> Figure:
    """Agent ``agent``'s predictions on the probe set against the truth.

    Regression with one input: curves over x; otherwise prediction vs truth per probe point
    (the population mean in grey). Classification: confusion matrix of its predicted classes.
    Generative tasks: its samples against a real sample (first two output dimensions).
    """
    task = model.task
    preds = model.probe_predictions()
    mine = np.asarray(preds[agent], dtype=np.float64)  # (n_probe, d_out)
    row = agent if task.probe_Y.shape[0] > 1 else 0
    fig = Figure(figsize=(460 / DPI, 330 / DPI), dpi=DPI)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.14)
    if task.kind == "classification":
        labels = task.probe_labels[row]
        guess = class_probabilities(mine[None])[0].argmax(-1)
        k = int(max(labels.max(), guess.max()) + 1)
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (labels, guess), 1)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xlabel("predicted class", fontsize=9)
        ax.set_ylabel("true class", fontsize=9)
        ax.set_title(
            f"agent {agent}: accuracy {np.mean(guess == labels):.3f}", fontsize=10, loc="left"
        )
        return fig
    truth = np.asarray(task.probe_Y[row], dtype=np.float64)  # (n_probe, d_out)
    if task.kind == "generative":  # outputs are samples: compare distributions, not points
        _samples(ax, truth, mine, agent)
        return fig
    mean = np.asarray(preds.mean(axis=0), dtype=np.float64)
    X = task.probe_X
    if X.shape[1] == 1:
        order = np.argsort(X[:, 0])
        x = X[order, 0]
        ax.plot(x, truth[order, 0], color="black", lw=2, label="truth")
        ax.plot(x, mean[order, 0], color="grey", lw=1, label="population mean")
        ax.plot(x, mine[order, 0], color="#d62728", lw=1.6, label=f"agent {agent}")
        ax.set_xlabel("x", fontsize=9)
    else:
        lo, hi = float(truth.min()), float(truth.max())
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="perfect")
        ax.scatter(truth.ravel(), mean.ravel(), s=6, c="grey", alpha=0.5, label="population mean")
        ax.scatter(truth.ravel(), mine.ravel(), s=8, c="#d62728", label=f"agent {agent}")
        ax.set_xlabel("truth", fontsize=9)
        ax.set_ylabel("prediction", fontsize=9)
    mse = float(np.mean((mine - truth) ** 2))
    ax.set_title(f"agent {agent}: probe MSE {mse:.4g}", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return fig


def _samples(ax, real: np.ndarray, generated: np.ndarray, agent: int) -> None:
    """Scatter a generator's samples over real ones (first two dimensions)."""
    dims = min(real.shape[1], 2)
    xr = real[:, 0]
    yr = real[:, 1] if dims > 1 else np.zeros_like(xr)
    xg = generated[:, 0]
    yg = generated[:, 1] if dims > 1 else np.zeros_like(xg)
    ax.scatter(xr, yr, s=6, c="grey", alpha=0.5, label="real sample")
    ax.scatter(xg, yg, s=8, c="#d62728", alpha=0.7, label=f"agent {agent}'s samples")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"agent {agent}: generated vs real", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
