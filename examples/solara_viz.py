"""A scenario in Mesa's own SolaraViz, with Mesa's own components.

    solara run examples/solara_viz.py            # http://localhost:8765
    NEUROPOP_SCENARIO=polarization solara run examples/solara_viz.py

The graph is drawn by ``make_space_component`` (agents coloured by function-space cluster),
the measures by ``make_plot_component`` on their names (the model's DataCollector has one
column per measure). The sidebar offers the scenario's own parameters
(:func:`simulator.mesa_interop.solaraviz_params`); Reset rebuilds the model with the values
shown, through Mesa's own ``scenario=`` mechanism. ``simulator app`` is the project's richer
app (one model per visitor, bounded sessions); this file shows the scenarios are ordinary Mesa
models. As in every SolaraViz app, the module-level model is shared by all browser sessions
until one presses Reset.
"""

from __future__ import annotations

import os

import solara
from mesa.visualization import SolaraViz, make_plot_component, make_space_component
from mesa.visualization.components import AgentPortrayalStyle
from mesa.visualization.utils import update_counter

from simulator.app.assets import use_local_assets
from simulator.mesa_interop import solaraviz_params
from simulator.registry import get_model

use_local_assets()  # the page's JavaScript from the local copy (`make assets`), not a CDN

SCENARIO = os.environ.get("NEUROPOP_SCENARIO", "gossip_learning")
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def agent_portrayal(agent) -> AgentPortrayalStyle:
    """An agent's dot: coloured by its function-space cluster (grey beyond six clusters)."""
    cluster = int(agent.model.cluster_labels[agent.index])
    colour = COLOURS[cluster] if 0 <= cluster < len(COLOURS) else "tab:gray"
    return AgentPortrayalStyle(color=colour, size=40)


@solara.component
def Status(model) -> None:
    """One line: the step, the number of agents and the function dispersion."""
    update_counter.get()  # re-render after every step, as Mesa's own components do
    solara.Text(
        f"step {model.steps} | {model.n_agents} agents | seed {model.seed} | "
        f"function_dispersion {model.function_dispersion:.4g}",
        classes=["neuropop-viz-status"],
    )


cls = get_model(SCENARIO)
model_params = solaraviz_params(cls)
model = cls(rng=0)  # the sliders start at the scenario's defaults
watched = [m for m in ("function_dispersion", "consensus_distance") if m in model.measure_names]
page = SolaraViz(
    model,
    components=[
        Status,
        make_space_component(agent_portrayal),
        make_plot_component(watched),
        make_plot_component("mean_loss"),
    ],
    model_params=model_params,
    name=f"neuropop: {SCENARIO}",
)
