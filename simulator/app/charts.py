"""The app's interactive charts: Vega-Lite specs, as SolaraViz draws them (Altair).

Every chart has labelled axes, tooltips on hover, and zoom and pan (mouse wheel, drag; double
click resets). The page shows a spec with ``solara.widgets.VegaLite`` (what
``solara.FigureAltair`` renders), which loads vega, vega-lite and vega-embed from the app's
local assets folder, never from a CDN.

A chart's *template* (marks, encodings, axes, interactions) is built with Altair once per kind
of chart and cached; each frame only inserts the data (``datasets``), built straight from
NumPy arrays. Running Altair's data pipeline on every frame cost ~0.1 s for 1,000 points;
inserting the values costs about a millisecond.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from simulator.app.graphview import GraphView, cluster_colours
from simulator.app.projection import MapFrame
from simulator.measures import MEASURE_DOCS, class_probabilities

__all__ = ["agent_spec", "graph_spec", "map_spec", "series_spec"]

# solara's VegaLite widget loads vega-lite 5; Altair 6 writes v6 specs, whose features used
# here are all in v5, so the specs say v5 (a name only: nothing is fetched from it)
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
# vega-embed options: SVG (the marks are elements a test can find and click), no "..." menu
# over the chart's corner
EMBED = {"embedOptions": {"renderer": "svg", "actions": False}}
WIDTH, HEIGHT = 420, 340
MAX_EDGES = 2_000  # edges drawn in the graph panel (a seeded sample above this)
SERIES_WIDTH, SERIES_HEIGHT = 400, 150
LOG_SCALE = {"function_dispersion", "consensus_distance", "aligned_distance", "ambiguity"}


def _hex(rgba: np.ndarray) -> list[str]:
    """'#rrggbb' strings of RGBA rows in [0, 1]."""
    rgb = np.clip(np.round(np.asarray(rgba)[:, :3] * 255), 0, 255).astype(np.int64)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.tolist()]


def _finite(values: np.ndarray) -> list[float | None]:
    """Floats for JSON: NaN and infinities become None (a gap)."""
    v = np.asarray(values, dtype=np.float64)
    return [x if np.isfinite(x) else None for x in v.tolist()]


def _records(**columns: list) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def _with_data(template: dict, title: str | None = None, **datasets: list) -> dict:
    """A shallow copy of ``template`` with its data (and title) set: the template stays cached."""
    spec = dict(template)
    spec["$schema"] = SCHEMA
    spec["usermeta"] = EMBED
    spec["datasets"] = datasets
    if title is not None:
        spec["title"] = {"text": title, "fontSize": 12, "anchor": "start"}
    return spec


# ---------------------------------------------------------------------------- measures
@lru_cache(maxsize=64)
def _series_template(names: tuple[str, ...], logs: tuple[bool, ...]) -> dict:
    charts = []
    for i, (name, log) in enumerate(zip(names, logs)):
        zoom = alt.selection_interval(bind="scales", encodings=["x"], name=f"zoom{i}")
        scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
        base = alt.Chart(alt.Data(name="series")).transform_filter(alt.datum.measure == name)
        line = base.mark_line(point=alt.OverlayMarkDef(size=18)).encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title=name, scale=scale),
            tooltip=[
                alt.Tooltip("step:Q"),
                alt.Tooltip("value:Q", title=name, format=".4~g"),
            ],
        )
        title = alt.TitleParams(name, subtitle=MEASURE_DOCS.get(name, "")[:90], fontSize=12)
        charts.append(
            line.properties(width=SERIES_WIDTH, height=SERIES_HEIGHT, title=title).add_params(zoom)
        )
    chart = alt.concat(*charts, columns=2) if len(charts) > 1 else charts[0]
    return chart.to_dict(validate=False)


def series_spec(df: pd.DataFrame, names: list[str]) -> dict:
    """Each measure in ``names`` against ``step`` (one small chart each, two a row).

    ``df``: the model's table (``step`` and one column per measure). A measure whose positive
    values span more than two decades (and listed in :data:`LOG_SCALE`) gets a log axis.
    """
    names = [n for n in names if n in df.columns] or ["step"]
    steps = df["step"].to_numpy().tolist() if "step" in df.columns else list(range(len(df)))
    logs, rows_step, rows_measure, rows_value = [], [], [], []
    for name in names:
        y = df[name].to_numpy(dtype=np.float64)
        finite = y[np.isfinite(y)]
        log = bool(
            name in LOG_SCALE
            and len(finite)
            and finite.min() > 0
            and finite.max() > 100 * finite.min()
        )
        logs.append(log)
        rows_step += steps
        rows_measure += [name] * len(y)
        rows_value += _finite(y)
    records = _records(step=rows_step, measure=rows_measure, value=rows_value)
    return _with_data(_series_template(tuple(names), tuple(logs)), series=records)


# ---------------------------------------------------------------------------- graph and map
def _points_layer(x_title: str, y_title: str, size: int, extra_tooltip: list) -> alt.Chart:
    return (
        alt.Chart(alt.Data(name="points"))
        .mark_circle(opacity=0.85, stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color("colour:N", scale=None),
            size=alt.value(size),
            tooltip=[alt.Tooltip("agent:Q"), alt.Tooltip("cluster:Q"), *extra_tooltip],
        )
    )


def _selected_layer(size: int) -> alt.Chart:
    return (
        alt.Chart(alt.Data(name="selected"))
        .mark_circle(fill=None, stroke="black", strokeWidth=2.5)
        .encode(x="x:Q", y="y:Q", size=alt.value(size * 5), tooltip=[alt.Tooltip("agent:Q")])
    )


@lru_cache(maxsize=16)
def _graph_template(size: int) -> dict:
    edges = (
        alt.Chart(alt.Data(name="edges"))
        .mark_rule(color="#999999", opacity=0.35, strokeWidth=0.7)
        .encode(x="x:Q", y="y:Q", x2="x2:Q", y2="y2:Q")
    )
    nodes = _points_layer("layout x", "layout y", size, [alt.Tooltip("degree:Q")])
    chart = alt.layer(edges, nodes, _selected_layer(size)).properties(width=WIDTH, height=HEIGHT)
    return chart.interactive().to_dict(validate=False)


def edge_records(view: GraphView, max_edges: int = MAX_EDGES) -> list[dict[str, float]]:
    """The drawn edges as line segments (a seeded sample of ``max_edges`` above that many).

    Computed once per graph view (the layout does not change while a model runs).
    """
    e = view.edges
    if len(e) > max_edges:
        keep = np.sort(np.random.default_rng(0).choice(len(e), max_edges, replace=False))
        e = e[keep]
    xy = np.round(view.xy, 4)
    return _records(
        x=xy[e[:, 0], 0].tolist(),
        y=xy[e[:, 0], 1].tolist(),
        x2=xy[e[:, 1], 0].tolist(),
        y2=xy[e[:, 1], 1].tolist(),
    )


def graph_spec(
    view: GraphView,
    labels: np.ndarray,
    degree: np.ndarray,
    selected: int,
    edges: list[dict[str, float]] | None = None,
) -> dict:
    """The social graph (a seeded layout computed once; a sample of large graphs), agents
    coloured by function-space cluster; ``selected`` ringed. Click an agent to inspect it.
    ``edges``: :func:`edge_records` of ``view``, when the caller keeps them between frames."""
    nodes = view.nodes
    colours = _hex(cluster_colours(labels)[nodes])
    x, y = view.xy[:, 0].tolist(), view.xy[:, 1].tolist()
    points = _records(
        agent=nodes.tolist(),
        x=x,
        y=y,
        colour=colours,
        cluster=np.asarray(labels)[nodes].tolist(),
        degree=np.asarray(degree)[nodes].tolist(),
    )
    edges = edge_records(view) if edges is None else edges
    hit = np.flatnonzero(nodes == selected)
    chosen = [{"agent": int(selected), "x": x[hit[0]], "y": y[hit[0]]}] if len(hit) else []
    n_clusters = len(np.unique(labels))
    shown = (
        f"{len(nodes):,} of {view.n_total:,} agents (a sample)"
        if view.sampled
        else f"{view.n_total:,} agents"
    )
    if len(view.edges) > len(edges):
        shown += f", {len(edges):,} of {len(view.edges):,} edges drawn"
    size = 60 if len(nodes) <= 100 else 25
    title = f"social graph: {shown}, {n_clusters} cluster(s)"
    return _with_data(_graph_template(size), title, points=points, edges=edges, selected=chosen)


@lru_cache(maxsize=16)
def _map_template(size: int, with_truth: bool) -> dict:
    layers = [_points_layer("PC1", "PC2", size, [alt.Tooltip("loss:Q", format=".4~g")])]
    if with_truth:
        layers.append(
            alt.Chart(alt.Data(name="truth"))
            .mark_point(shape="diamond", filled=True, color="black", size=180)
            .encode(x="x:Q", y="y:Q", tooltip=[alt.Tooltip("what:N")])
        )
    layers.append(_selected_layer(size))
    chart = alt.layer(*layers).properties(width=WIDTH, height=HEIGHT)
    return chart.interactive().to_dict(validate=False)


def map_spec(
    frame: MapFrame, labels: np.ndarray, losses: np.ndarray, space: str, selected: int
) -> dict:
    """The homogenization map: each agent a point (PCA of its outputs on the probe set, or of
    its aligned weights), coloured by cluster; the truth a black diamond; ``selected`` ringed."""
    agents = frame.agents
    x, y = frame.xy[:, 0].tolist(), frame.xy[:, 1].tolist()
    points = _records(
        agent=agents.tolist(),
        x=x,
        y=y,
        colour=_hex(cluster_colours(labels)[agents]),
        cluster=np.asarray(labels)[agents].tolist(),
        loss=_finite(np.asarray(losses)[agents]),
    )
    truth = []
    if frame.truth is not None:
        truth = [{"x": float(frame.truth[0]), "y": float(frame.truth[1]), "what": "truth"}]
    hit = np.flatnonzero(agents == selected)
    chosen = [{"agent": int(selected), "x": x[hit[0]], "y": y[hit[0]]}] if len(hit) else []
    what = "outputs on the probe set" if space == "function" else "aligned weights"
    size = 60 if len(agents) <= 200 else 20
    title = f"{what}: PCA of {len(agents):,} agents (RMS spread {frame.spread:.3g})"
    template = _map_template(size, frame.truth is not None)
    return _with_data(template, title, points=points, truth=truth, selected=chosen)


# ---------------------------------------------------------------------------- one agent
@lru_cache(maxsize=16)
def _lines_template(x_title: str, y_title: str, kind: str) -> dict:
    colours = alt.Scale(
        domain=["truth", "population mean", "agent", "real sample", "perfect"],
        range=["black", "#999999", "#d62728", "#999999", "black"],
    )
    base = alt.Chart(alt.Data(name="curves"))
    encode = dict(
        x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y("y:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", scale=colours, title=None),
        tooltip=[
            alt.Tooltip("series:N"),
            alt.Tooltip("x:Q", format=".4~g"),
            alt.Tooltip("y:Q", format=".4~g"),
        ],
    )
    mark = base.mark_line() if kind == "lines" else base.mark_circle(size=20, opacity=0.7)
    chart = mark.encode(**encode).properties(width=WIDTH, height=280)
    return chart.interactive().to_dict(validate=False)


@lru_cache(maxsize=4)
def _confusion_template() -> dict:
    base = alt.Chart(alt.Data(name="cells")).encode(
        x=alt.X("predicted:O", title="predicted class"),
        y=alt.Y("true:O", title="true class"),
    )
    rect = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), title="items"),
        tooltip=["true:O", "predicted:O", "count:Q"],
    )
    text = base.mark_text(fontSize=10).encode(text="count:Q")
    chart = alt.layer(rect, text).properties(width=300, height=280)
    return chart.to_dict(validate=False)


def agent_spec(model: Any, agent: int) -> dict:
    """Agent ``agent``'s outputs on the probe set against the truth (and the population mean).

    Regression with one input: curves over x; else prediction against truth per probe point.
    Classification: the confusion matrix of its decisions. Generative tasks: its samples over
    a real sample (first two output dimensions).
    """
    task = model.task
    preds = model.probe_predictions()
    mine = np.asarray(preds[agent], dtype=np.float64)  # (n_probe, d_out)
    row = agent if task.probe_Y.shape[0] > 1 else 0
    if task.kind == "classification":
        labels = task.probe_labels[row]
        guess = class_probabilities(mine[None])[0].argmax(-1)
        k = int(max(labels.max(), guess.max()) + 1)
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (labels, guess), 1)
        t, p = np.indices((k, k))
        cells = _records(
            true=t.ravel().tolist(), predicted=p.ravel().tolist(), count=cm.ravel().tolist()
        )
        title = f"agent {agent}: accuracy {np.mean(guess == labels):.3f}"
        return _with_data(_confusion_template(), title, cells=cells)
    truth = np.asarray(task.probe_Y[row], dtype=np.float64)
    if task.kind == "generative":
        dims = 2 if truth.shape[1] > 1 else 1
        return _curves(
            [("real sample", truth), ("agent", mine)],
            dims,
            "x1",
            "x2",
            f"agent {agent}: generated vs real samples",
            "points",
        )
    mean = np.asarray(preds.mean(axis=0), dtype=np.float64)
    mse = float(np.mean((mine - truth) ** 2))
    X = task.probe_X
    if X.shape[1] == 1:
        order = np.argsort(X[:, 0])
        x = X[order, 0].astype(np.float64)
        series = [
            ("truth", truth[order, 0]),
            ("population mean", mean[order, 0]),
            ("agent", mine[order, 0]),
        ]
        rows = _records(
            x=np.tile(x, 3).tolist(),
            y=_finite(np.concatenate([s for _, s in series])),
            series=[name for name, s in series for _ in range(len(s))],
        )
        title = f"agent {agent}: probe MSE {mse:.4g}"
        return _with_data(_lines_template("x", "output", "lines"), title, curves=rows)
    lo, hi = float(truth.min()), float(truth.max())
    rows = _records(x=[lo, hi], y=[lo, hi], series=["perfect", "perfect"])
    for name, values in (("population mean", mean), ("agent", mine)):
        rows += _records(
            x=truth.ravel().tolist(), y=_finite(values.ravel()), series=[name] * values.size
        )
    title = f"agent {agent}: probe MSE {mse:.4g}"
    return _with_data(_lines_template("truth", "prediction", "points"), title, curves=rows)


def _curves(series, dims, x_title, y_title, title, kind) -> dict:
    rows = []
    for name, values in series:
        y = values[:, 1] if dims > 1 else np.zeros(len(values))
        rows += _records(x=_finite(values[:, 0]), y=_finite(y), series=[name] * len(values))
    return _with_data(_lines_template(x_title, y_title, kind), title, curves=rows)
