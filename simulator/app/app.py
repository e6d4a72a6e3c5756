"""The browser app: watch a population of neural-network agents homogenize, live.

Run it with ``simulator app`` (or ``solara run simulator/app/app.py``). Each browser session
gets its own :class:`~simulator.app.session.Session` (its own model) and its own
:class:`~simulator.app.worker.Worker` thread; nothing is shared between visitors. Pick a
scenario and its parameters in the sidebar, then Step, Play/Pause (the page redraws every
``steps per frame`` steps) and Reset. The main area shows the social graph coloured by
function-space cluster, the homogenization map, measures over time (the scenario's "Watch"
measures unless the user picks others) and one agent's network, as interactive charts (hover,
zoom, click an agent); the run so far downloads as the same CSV table ``simulator run`` writes.

The server is bounded (:mod:`simulator.app.limits`): at most ``--max-sessions`` browser
sessions at once (one more is told the server is busy), and no session builds a model whose
estimated memory or number of agents is over the ``simulator app`` limits.
"""

from __future__ import annotations

import time
from typing import Any

import solara

from simulator.app.assets import use_local_assets
from simulator.app.controls import ParamControls, RunControls
from simulator.app.limits import Limits, SessionSlots
from simulator.app.panels import AgentPanel, GraphPanel, MapPanel, SeriesPanel
from simulator.app.render import PANELS, draw, shown_measures
from simulator.app.session import Session
from simulator.app.worker import Worker

# `solara run simulator/app/app.py` without SOLARA_ASSETS_PROXY_CACHE_DIR: serve the local
# front-end assets if `make assets` fetched them (settings are read before this page).
use_local_assets()

FRAME_SECONDS = 0.3  # a frame (steps + redraw) takes at least this long while playing
LARGE = 5000  # from this many agents the page suggests cheaper measures
LIMITS = Limits.from_env()  # set by `simulator app --max-agents/--max-memory/--max-sessions`
SLOTS = SessionSlots(LIMITS.max_sessions)  # browser sessions served at once, server-wide


class Player:
    """Play/Pause: a chain of frame jobs on the session's worker, one frame re-queuing the next.

    Each Play starts a new chain (``token``); a frame of an older chain stops, so pressing Play
    twice never doubles the speed.
    """

    def __init__(self, session: Session, worker: Worker):
        self.session, self.worker = session, worker
        self.token = 0
        self.playing = False
        self.per_frame = 1

    def play(self) -> None:
        self.token += 1
        self.playing = True
        self.worker.submit("playing", self._frame, self.token)

    def pause(self) -> None:
        self.playing = False
        self.token += 1

    def _frame(self, token: int) -> None:
        if not self.playing or token != self.token:
            return
        start = time.monotonic()
        ok = self.session.step(self.per_frame)
        draw(self.session)
        if not ok:
            self.pause()
            return
        time.sleep(max(FRAME_SECONDS - (time.monotonic() - start), 0.0))
        if self.playing and token == self.token:
            self.worker.submit("playing", self._frame, token)


@solara.component
def Page() -> Any:
    """The app's single page: a session slot, then the simulator (or a busy message)."""
    owner = solara.use_memo(lambda: object(), [])
    admitted = solara.use_memo(lambda: SLOTS.acquire(id(owner)), [])
    solara.use_effect(lambda: lambda: SLOTS.release(id(owner)), [])
    solara.Title("neuropop: a population homogenizing")
    if not admitted:
        solara.Error(
            f"This server is busy: {SLOTS.limit} sessions are running (its limit, set by "
            "`simulator app --max-sessions`). Close another tab or try again later.",
            classes=["neuropop-busy-server"],
        )
        return
    Simulator()


@solara.component
def Simulator() -> Any:
    """Sidebar (scenario, seed, run controls, parameters) and the main area's panels."""
    _, set_tick = solara.use_state(0)

    def redraw() -> None:
        set_tick(lambda t: t + 1)

    session = solara.use_memo(lambda: Session(build=False, limits=LIMITS), [])
    worker = solara.use_memo(lambda: Worker(after=redraw), [])
    player = solara.use_memo(lambda: Player(session, worker), [])
    solara.use_effect(lambda: worker.stop, [])  # end the thread with the browser session
    per_frame = solara.use_reactive(1)
    player.per_frame = per_frame.value

    def submit(label: str, fn: Any, *args: Any, panels: tuple = PANELS) -> None:
        """Run ``fn(*args)`` on the worker, then redraw ``panels``."""

        def job() -> None:
            fn(*args)
            draw(session, panels)

        worker.submit(label, job)
        redraw()

    def first_build() -> None:
        if session.model is None and not worker.busy:
            submit("building the model (the first build compiles kernels)", session.rebuild)

    solara.use_effect(first_build, [])

    def changing(label: str, fn: Any, *args: Any) -> None:
        player.pause()
        submit(label, fn, *args)

    def toggle_play() -> None:
        if player.playing:
            player.pause()
        else:
            player.play()
        redraw()

    model = session.model
    with solara.Sidebar():
        with solara.Card("Run", margin=0, elevation=0):
            solara.Select(
                "scenario",
                values=session.scenarios,
                value=session.scenario,
                on_value=lambda name: changing("building", session.set_scenario, name),
            )
            solara.InputInt(
                "seed",
                value=session.seed,
                on_value=lambda s: changing("building", session.set_seed, s),
            )
            RunControls(
                playing=player.playing,
                per_frame=per_frame,
                on_step=lambda: submit("stepping", session.step, 1),
                on_play=toggle_play,
                on_reset=lambda: changing("resetting", session.reset),
                can_step=model is not None,
            )
            if model is not None:
                solara.FileDownload(
                    session.csv_bytes,
                    filename=session.csv_name(),
                    label="Download CSV",
                    mime_type="text/csv",
                )
        with solara.Card("Parameters", margin=0, elevation=0):
            ParamControls(
                session,
                lambda name, v: changing("building", session.set_param, name, v),
                session.scenario,
                dict(session.raw),
                dict(session.field_errors),
            ).key(session.scenario)
            solara.Text(
                f"This server builds at most {LIMITS.max_agents:,} agents and "
                f"{LIMITS.max_memory_mb:,.0f} MiB per session.",
                style={"font-size": "0.8em", "color": "#666"},
            )

    with solara.Column(gap="10px", style={"padding": "8px"}):
        busy = worker.busy and worker.label != "playing"
        solara.ProgressLinear(busy)
        if busy:
            solara.Text(f"{worker.label}...", classes=["neuropop-busy"])
        if session.error:
            solara.Error(session.error, classes=["neuropop-error"])
        for name, message in sorted(session.field_errors.items()):
            solara.Warning(f"{name}: {message}", dense=True, classes=["neuropop-field-message"])
        if model is None:
            return
        doc = (type(model).__doc__ or "").strip().splitlines()[0]
        solara.Text(
            f"{session.scenario}: {doc}  |  step {model.steps}  |  {model.n_agents:,} agents",
            classes=["neuropop-status"],
        )
        if model.n_agents >= LARGE and model.p["measures"] == "standard":
            solara.Info(
                f"{model.n_agents:,} agents: the standard measures cost seconds a step. "
                "measures='fast' or collect_every > 1 speed it up (clusters are then coloured "
                "only at collected steps, or not at all with 'fast').",
                dense=True,
            )
        specs = session.images
        with solara.Row(gap="12px", style={"flex-wrap": "wrap"}):
            GraphPanel(session, submit, specs.get("graph"))
            MapPanel(session, submit, specs.get("map"), session.space)
        SeriesPanel(
            session,
            submit,
            specs.get("series"),
            list(model.measure_names),
            shown_measures(session),
        )
        AgentPanel(
            session,
            submit,
            specs.get("agent"),
            dict(session.info),
            session.selected,
            model.n_agents,
        )
