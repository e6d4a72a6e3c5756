"""The browser app (Solara): watch a population of neural-network agents homogenize, live.

Start it with ``simulator app`` (or ``solara run simulator/app/app.py``). Modules:

``app``        the page (one Session and one Worker per browser session)
``session``    scenario, parameter values, seed and the model built from them (no Solara)
``worker``     runs a session's builds and steps on a background thread
``render``     builds the charts on that thread; the page only shows them
``charts``     the interactive charts (Vega-Lite specs, templates built with Altair)
``watch``      the measures plotted by default: the scenario's "Watch" list
``controls``   controls generated from a scenario's ``param_specs()``; Step/Play/Reset
``panels``     graph, homogenization map, measures over time, one agent
``graphview``  the graph's seeded layout (a snowball sample of large graphs), cluster colours
``projection`` the homogenization map: PCA of outputs on the probe set or of aligned weights
``limits``     memory estimate before building, per-session limits, session slots
``serve``      the server's command and environment (``simulator app``)
``assets``     the front-end files, fetched from the npm registry at set-up time

Importing this package imports nothing heavy; ``app`` imports Solara.
"""
