"""Drawing the page's figures on the session's worker thread, after each job.

The page never draws from the model itself: a figure read while the worker steps the model
would block the page (or see half a step). Instead every job that changes the model ends with
:func:`draw`, which reads the model under the session's lock and stores PNG bytes and the
chosen agent's details on the session; the page only shows them.
"""

from __future__ import annotations

from collections.abc import Iterable

from simulator.app import plots
from simulator.app.graphview import draw_graph
from simulator.app.session import Session

PANELS = ("graph", "map", "series", "agent")


def draw(session: Session, panels: Iterable[str] = PANELS) -> None:
    """Redraw ``panels`` of ``session`` into ``session.images`` (PNG bytes by panel name)."""
    panels = tuple(panels)
    with session.lock:
        m = session.model
        if m is None:
            return
        labels = m.cluster_labels.copy()
        selected = session.selected
        images = {}
        if "graph" in panels:
            images["graph"] = plots.to_png(draw_graph(session.graph, labels, selected))
        if "map" in panels:
            frame = session.map.frame(m, session.space)
            images["map"] = plots.to_png(plots.map_figure(frame, labels, session.space, selected))
        if "series" in panels:
            names = session.measures or plots.default_measures(m.measure_names)
            names = [n for n in names if n in m.measure_names]
            images["series"] = plots.to_png(plots.series_figure(m.model_dataframe(), names))
        if "agent" in panels:
            images["agent"] = plots.to_png(plots.agent_figure(m, selected))
            session.info = session.agent_info()
        session.images.update(images)
        session.drawn += 1
