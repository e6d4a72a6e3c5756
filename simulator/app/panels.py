"""The page's panels: graph, homogenization map, measures over time, one agent.

Panels only show what :func:`simulator.app.render.draw` stored on the session (Vega-Lite specs
and the chosen agent's details), passed in as props so a panel re-renders exactly when they
change, and send the user's choices back as jobs (``submit``); they never read the model while
the worker may be stepping it. Every chart has hover tooltips, zoom and pan (wheel and drag;
double click resets) and labelled axes; clicking an agent in the graph or the map inspects it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import solara
import solara.widgets

from simulator.app.projection import SPACES
from simulator.app.session import Session

Submit = Callable[..., None]


@solara.component
def Chart(spec: dict | None, name: str, on_click: Callable[[dict], None] | None = None) -> Any:
    """A Vega-Lite chart (as ``solara.FigureAltair`` renders it), in a box of CSS class ``name``."""

    def clicked(datum: Any) -> None:
        if on_click is not None and isinstance(datum, dict):
            on_click(datum)

    with solara.Column(gap="0px", classes=["neuropop-chart", name]):
        if spec:
            solara.widgets.VegaLite.element(
                spec=spec, on_click=clicked, listen_to_click=on_click is not None
            )


def _select_from(session: Session, submit: Submit) -> Callable[[dict], None]:
    def select(datum: dict) -> None:
        agent = datum.get("agent")
        if isinstance(agent, int | float):
            submit("selecting", session.select, int(agent), panels=("graph", "map", "agent"))

    return select


@solara.component
def GraphPanel(session: Session, submit: Submit, spec: dict | None) -> Any:
    """The social graph coloured by function-space cluster; click an agent to inspect it."""
    with solara.Column(gap="2px"):
        solara.Text("Social graph, coloured by function-space cluster (click an agent)")
        Chart(spec, "neuropop-graph", on_click=_select_from(session, submit))


@solara.component
def MapPanel(session: Session, submit: Submit, spec: dict | None, space: str) -> Any:
    """The homogenization map (PCA of outputs, or of aligned weights)."""

    def choose(space: str) -> None:
        submit("drawing the map", session.set_view, space, panels=("map",))

    with solara.Column(gap="2px"):
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Text("Homogenization map")
            solara.ToggleButtonsSingle(
                value=space, values=list(SPACES), dense=True, on_value=choose
            )
        Chart(spec, "neuropop-map", on_click=_select_from(session, submit))


@solara.component
def SeriesPanel(
    session: Session, submit: Submit, spec: dict | None, names: list[str], shown: list[str]
) -> Any:
    """Measures against step: ``shown`` (the scenario's Watch list unless the user chose)
    among ``names`` (all the model reports)."""

    def choose(values: list[str]) -> None:
        submit("plotting", session.set_view, None, values, panels=("series",))

    with solara.Column(gap="2px"):
        solara.SelectMultiple(
            "measures", values=shown, all_values=names, on_value=choose, dense=True
        )
        Chart(spec, "neuropop-series")


@solara.component
def AgentPanel(
    session: Session, submit: Submit, spec: dict | None, info: dict, selected: int, n: int
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
                listed = ", ".join(map(str, nbrs[:12])) + (
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
                rows.append(("neighbours", listed))
                for key, value in rows:
                    solara.Text(f"{key}: {value}", classes=[f"neuropop-agent-{key}"])
        Chart(spec, "neuropop-agent")
