"""The page's panels: graph, homogenization map, measures over time, one agent.

Panels only show what :func:`simulator.app.render.draw` stored on the session (PNG bytes and
the chosen agent's details), passed in as props so a panel re-renders exactly when they
change, and send the user's choices back as jobs (``submit``); they never read the model while
the worker may be stepping it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reacton.ipyvuetify as rv
import reacton.ipywidgets as rw
import solara

from simulator.app import plots
from simulator.app.graphview import SIZE_PX, nearest_node
from simulator.app.projection import SPACES
from simulator.app.session import Session

Submit = Callable[..., None]


@solara.component
def Png(
    data: bytes | None,
    width_px: int,
    on_click: Callable[[float, float], None] | None = None,
    name: str = "",
) -> Any:
    """A PNG shown at its pixel size (so a click's offset maps to figure pixels)."""
    img = rw.Image(
        value=data or b"",
        format="png",
        layout={"width": f"{width_px}px", "max_width": "none", "min_width": f"{width_px}px"},
    )
    style = "line-height: 0;" + ("cursor: crosshair;" if on_click is not None else "")
    box = rv.Html(tag="div", children=[img], style_=style, class_=f"neuropop-figure {name}")

    def clicked(*args: Any) -> None:
        data = args[-1] or {}
        if on_click is not None and "offsetX" in data and "offsetY" in data:
            on_click(float(data["offsetX"]), float(data["offsetY"]))

    rv.use_event(box, "click", clicked)
    return box


@solara.component
def GraphPanel(session: Session, submit: Submit, png: bytes | None) -> Any:
    """The social graph coloured by function-space cluster; click an agent to inspect it."""

    def clicked(px: float, py: float) -> None:
        agent = nearest_node(session.graph, px, py) if session.graph is not None else None
        if agent is not None:
            submit("selecting", session.select, agent, panels=("graph", "map", "agent"))

    with solara.Column(gap="2px"):
        solara.Text("Social graph, coloured by function-space cluster (click an agent)")
        Png(png, SIZE_PX[0], on_click=clicked, name="neuropop-graph")


@solara.component
def MapPanel(session: Session, submit: Submit, png: bytes | None, space: str) -> Any:
    """The homogenization map (PCA of outputs, or of aligned weights)."""

    def choose(space: str) -> None:
        submit("drawing the map", session.set_view, space, panels=("map",))

    with solara.Column(gap="2px"):
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Text("Homogenization map")
            solara.ToggleButtonsSingle(
                value=space, values=list(SPACES), dense=True, on_value=choose
            )
        Png(png, 460, name="neuropop-map")


@solara.component
def SeriesPanel(
    session: Session, submit: Submit, png: bytes | None, names: list[str], chosen: list[str]
) -> Any:
    """Chosen measures against step (``names``: all the model reports)."""
    shown = [n for n in chosen if n in names] or plots.default_measures(names)

    def choose(values: list[str]) -> None:
        submit("plotting", session.set_view, None, values, panels=("series",))

    with solara.Column(gap="2px"):
        solara.SelectMultiple(
            "measures", values=shown, all_values=names, on_value=choose, dense=True
        )
        Png(png, 920, name="neuropop-series")


@solara.component
def AgentPanel(
    session: Session, submit: Submit, png: bytes | None, info: dict, selected: int, n: int
) -> Any:
    """One agent's network: loss, degree, neighbours, predictions on the probe set."""

    def choose(agent: int | None) -> None:
        if agent is not None:
            submit("selecting", session.select, agent, panels=("graph", "map", "agent"))

    with solara.Row(gap="16px"):
        with solara.Column(gap="4px", style={"min-width": "260px"}):
            solara.InputInt(f"agent (0..{n - 1})", value=selected, on_value=choose, dense=True)
            if info:
                nbrs = info["neighbours"]
                shown = ", ".join(map(str, nbrs[:12])) + (
                    f", ... ({len(nbrs)})" if len(nbrs) > 12 else ""
                )
                rows = [
                    ("loss", f"{info['loss']:.4g}"),
                    ("fitness", f"{info['fitness']:.4g}"),
                    ("degree", str(info["degree"])),
                    ("cluster", str(info["cluster"])),
                ]
                if "community" in info:
                    rows.append(("community", str(info["community"])))
                rows.append(("neighbours", shown))
                for key, value in rows:
                    solara.Text(f"{key}: {value}", classes=[f"neuropop-agent-{key}"])
        Png(png, 460, name="neuropop-agent")
