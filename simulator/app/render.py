"""Drawing the page's charts on the session's worker thread, after each job.

The page never reads the model itself: a chart read while the worker steps the model would
block the page (or see half a step). Instead every job that changes the model ends with
:func:`draw`, which reads the model under the session's lock and stores Vega-Lite specs
(:mod:`simulator.app.charts`) and the chosen agent's details on the session; the page only
shows them.

The charts' linear algebra (the map's PCA: a few hundred by a few hundred) runs with one BLAS
thread: at that size threads gain nothing, and on a busy machine a multithreaded
eigendecomposition waiting for a descheduled thread took 1.5-2.5 s instead of 0.02 s.
"""

from __future__ import annotations

from collections.abc import Iterable

from threadpoolctl import threadpool_limits

from simulator.app import charts
from simulator.app.session import Session
from simulator.app.watch import default_measures, distinct

PANELS = ("graph", "map", "series", "agent")


def shown_measures(session: Session) -> list[str]:
    """The measures the series panel plots: the user's choice, else the scenario's Watch list."""
    m = session.model
    names = session.measures or default_measures(m)
    return distinct(m, [n for n in names if n in m.measure_names])


def draw(session: Session, panels: Iterable[str] = PANELS) -> None:
    """Redraw ``panels`` of ``session`` into ``session.specs`` (Vega-Lite specs by panel)."""
    panels = tuple(panels)
    with session.lock, threadpool_limits(1, user_api="blas"):
        m = session.model
        if m is None:
            return
        labels = m.cluster_labels
        selected = session.selected
        out = {}
        if "graph" in panels:
            cached = session._edges
            if cached[0] is not session.graph:  # a new model: its layout's edges, once
                cached = (session.graph, charts.edge_records(session.graph))
                session._edges = cached
            out["graph"] = charts.graph_spec(
                session.graph, labels, m.csr.degree, selected, cached[1]
            )
        if "map" in panels:
            frame = session.map.frame(m, session.space)
            out["map"] = charts.map_spec(frame, labels, m.losses, session.space, selected)
        if "series" in panels:
            out["series"] = charts.series_spec(m.model_dataframe(), shown_measures(session))
        if "agent" in panels:
            out["agent"] = charts.agent_spec(m, selected)
            session.info = session.agent_info()
        session.images.update(out)
        session.drawn += 1
