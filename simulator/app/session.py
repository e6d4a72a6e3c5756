"""One browser session's simulation, independent of Solara (so it is tested directly).

A :class:`Session` holds the chosen scenario, the values the user gave, the seed, the model
built from them, and the views computed once per model (graph layout, map state). The page
keeps one Session per browser session (``solara.use_memo``), never one per server, so two
visitors never share a model. Every mutation takes ``lock``: the Play loop steps the model on
a background thread while the page reads it to draw.

A bad value belongs to its field: :meth:`Session.set_param` checks the value alone, then the
model built with it (a combination the declarations cannot see, or a configuration over the
server's :class:`~simulator.app.limits.Limits`); on failure ``field_errors[name]`` says why,
the model and the other values stay as they were, and every other field keeps working.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd

from simulator import compile_ahead
from simulator.app.graphview import GraphView, graph_view
from simulator.app.limits import Limits
from simulator.app.projection import HomogenizationMap
from simulator.collect import model_table
from simulator.config import ParameterError
from simulator.params import Param
from simulator.registry import get_model, load_registry
from simulator.runprogress import kernels_cold

DEFAULT_SCENARIO = "gossip_learning"
MAX_DRAWN_NODES = 500
SCENARIOS_ENV = "NEUROPOP_APP_SCENARIOS"  # MODULE:CLASS references, one a line


def app_registry(env: dict | None = None) -> dict:
    """The scenarios the app offers: registered ones, then ``simulator app --scenario`` ones."""
    import os

    registry = dict(load_registry())
    refs = (os.environ if env is None else env).get(SCENARIOS_ENV, "")
    for ref in filter(None, (r.strip() for r in refs.splitlines())):
        registry[ref] = get_model(ref)
    return registry


def format_value(value: Any) -> str:
    """A parameter value as the text a user would type (``(16,)``, ``{'k': 4}``, ``0.05``)."""
    if isinstance(value, str):
        return value
    return repr(value)


_MISSING = object()


class Session:
    """Scenario, parameter values, seed and the model built from them.

    Parameters
    ----------
    scenario : str, optional
        A registered scenario (default ``gossip_learning``, else the first one).
    seed : int
        The model's seed (``rng``).
    registry : dict, optional
        Scenario name -> model class (default :func:`simulator.registry.load_registry`).
    build : bool
        Build the model now (else ``model`` is None until :meth:`rebuild`).
    limits : Limits, optional
        What this session may build (default: the server's, :meth:`Limits.from_env`).
    """

    def __init__(
        self,
        scenario: str | None = None,
        seed: int = 0,
        registry: dict | None = None,
        build: bool = True,
        limits: Limits | None = None,
    ):
        self.registry = registry if registry is not None else app_registry()
        self.limits = limits if limits is not None else Limits.from_env()
        if scenario is None:
            scenario = DEFAULT_SCENARIO if DEFAULT_SCENARIO in self.registry else min(self.registry)
        self.lock = threading.RLock()
        self.scenario = scenario
        self.seed = seed
        self.raw: dict[str, Any] = {}  # what the user typed or chose, by parameter
        self.values: dict[str, Any] = {}  # the valid values the model is built from
        self.field_errors: dict[str, str] = {}
        self.error = ""
        self.model: Any = None
        self.graph: GraphView | None = None
        self.map: HomogenizationMap | None = None
        self.version = 0
        # what the page shows (drawn by simulator.app.render on the worker thread)
        self.selected = 0
        self.space = "function"
        self.measures: list[str] | None = None
        self.images: dict[str, dict] = {}  # Vega-Lite specs by panel (simulator.app.render)
        self._edges: tuple = (None, None)  # (graph view, its edge records), kept per model
        self.info: dict[str, Any] = {}
        self.drawn = 0
        if build:
            self.rebuild()

    # ------------------------------------------------------------------ parameters
    @property
    def scenarios(self) -> list[str]:
        """Registered scenario names, sorted."""
        return sorted(self.registry)

    @property
    def specs(self) -> dict[str, Param]:
        """The current scenario's parameter declarations."""
        return self.registry[self.scenario].param_specs()

    def shown(self, name: str) -> Any:
        """The value a control shows: what the user gave, else the default."""
        return self.raw.get(name, self.specs[name].default)

    def given(self) -> dict[str, Any]:
        """The user's valid values (validated and coerced), by parameter."""
        return dict(self.values)

    def set_scenario(self, name: str) -> bool:
        """Switch scenario (its defaults, same seed) and build it; False and ``error`` if not."""
        if name not in self.registry:
            return self._fail(f"unknown scenario {name!r}; scenarios are: {self.scenarios}")
        with self.lock:
            self.scenario = name
            self.raw, self.values, self.field_errors = {}, {}, {}
        return self.rebuild()

    def set_param(self, name: str, value: Any) -> bool:
        """Set one parameter (raw: a control's value or text) and rebuild the model.

        A value that is invalid alone, or that the model cannot be built with, marks this
        field (``field_errors[name]``) and leaves the model and the other values as they were.
        """
        if name not in self.specs:
            return self._fail(f"{self.scenario} has no parameter {name!r}")
        spec = self.specs[name]
        empty = spec.kind not in ("str", "any") and isinstance(value, str) and not value.strip()
        with self.lock:
            if empty:
                self.raw.pop(name, None)  # an emptied field means: the default
            else:
                self.raw[name] = value
        try:
            valid = None if empty else spec.validate(name, value)
        except ParameterError as exc:
            return self._field_fail(name, str(exc))
        previous = self.values.get(name, _MISSING)
        with self.lock:
            if empty:
                self.values.pop(name, None)
            else:
                self.values[name] = valid
        if self.rebuild(field=name):
            return True
        with self.lock:  # the model was not built with it: keep the previous value
            if previous is _MISSING:
                self.values.pop(name, None)
            else:
                self.values[name] = previous
        return False

    def _field_fail(self, name: str, message: str) -> bool:
        with self.lock:
            self.field_errors[name] = message
            self.version += 1
        return False

    def set_seed(self, seed: Any) -> bool:
        """Set the seed and rebuild."""
        from simulator.rng import coerce_seed

        try:
            seed = coerce_seed(seed)
        except ParameterError as exc:
            return self._fail(str(exc))
        self.seed = seed
        return self.rebuild()

    # ------------------------------------------------------------------ the model
    def rebuild(self, field: str | None = None) -> bool:
        """Build a fresh model (step 0) from scenario, values and seed.

        The configuration's memory is estimated first and refused above ``limits``. On failure
        the previous model is kept and False is returned: the message goes to
        ``field_errors[field]`` when a field's change caused it, else to ``error``.
        """
        cls = self.registry[self.scenario]
        fail = self._fail if field is None else (lambda msg: self._field_fail(field, msg))
        try:
            self.limits.check(cls, self.given())
            _compile_ahead_if_cold(self.scenario, cls, self.given())
            model = cls(rng=self.seed, **self.given())
        except ParameterError as exc:
            return fail(str(exc))
        except MemoryError:
            return fail(f"out of memory building {self.scenario}: try fewer agents")
        except Exception as exc:  # a bad combination the declarations cannot see
            return fail(f"could not build {self.scenario}: {type(exc).__name__}: {exc}")
        view = graph_view(model.graph, MAX_DRAWN_NODES, seed=self.seed)
        with self.lock:
            self.model = model
            self.graph = view
            self.map = HomogenizationMap(model.n_agents, seed=self.seed)
            self.selected = min(self.selected, model.n_agents - 1)
            self.error = ""
            if field is not None:
                self.field_errors.pop(field, None)
            self.version += 1
        return True

    def reset(self) -> bool:
        """Rebuild the model at step 0 with the same values and seed."""
        return self.rebuild()

    def step(self, n: int = 1) -> bool:
        """Advance the model ``n`` steps; False (and ``error``) if a step failed."""
        if self.model is None:
            return False
        with self.lock:
            try:
                for _ in range(int(n)):
                    self.model.step()
            except Exception as exc:  # DivergenceError and friends: show, keep serving
                self.version += 1
                self.error = f"step {self.model.steps} failed: {type(exc).__name__}: {exc}"
                return False
            self.error = ""
            self.version += 1
        return True

    def _fail(self, message: str) -> bool:
        with self.lock:
            self.error = message
            self.version += 1
        return False

    # ------------------------------------------------------------------ reading
    @property
    def steps(self) -> int:
        """Steps taken by the current model."""
        return int(self.model.steps) if self.model is not None else 0

    def select(self, agent: Any) -> bool:
        """Choose the agent to inspect (an index 0..n-1); False if out of range."""
        try:
            agent = int(agent)
        except (TypeError, ValueError):
            return False
        if self.model is None or not 0 <= agent < self.model.n_agents:
            return False
        with self.lock:
            self.selected = agent
            self.version += 1
        return True

    def set_view(self, space: str | None = None, measures: list[str] | None = None) -> None:
        """Choose the map's space and the measures plotted (None: leave as is)."""
        with self.lock:
            if space is not None:
                self.space = space
            if measures is not None:
                self.measures = list(measures)

    def agent_info(self, agent: int | None = None) -> dict[str, Any]:
        """Loss, fitness, degree, cluster and neighbours of one agent (default: selected)."""
        m = self.model
        i = self.selected if agent is None else int(agent)
        with self.lock:
            csr = m.csr
            nbrs = csr.indices[csr.indptr[i] : csr.indptr[i + 1]]
            info = {
                "agent": i,
                "loss": float(m.losses[i]),
                "fitness": float(m.fitness[i]),
                "degree": int(csr.degree[i]),
                "cluster": int(m.cluster_labels[i]),
                "neighbours": [int(j) for j in np.sort(nbrs)],
            }
            if m.communities is not None:
                info["community"] = int(m.communities[i])
        return info

    def table(self) -> pd.DataFrame:
        """The run so far as the tidy table ``simulator run`` writes to model.csv."""
        with self.lock:
            return model_table(self.model, self.scenario)

    def csv_bytes(self) -> bytes:
        """:meth:`table` as CSV bytes (same float format as model.csv)."""
        text = self.table().to_csv(index=False, float_format="%.10g", lineterminator="\n")
        return text.encode()

    def csv_name(self) -> str:
        """A file name for the download, e.g. ``gossip_learning-seed0-step25.csv``."""
        return f"{self.scenario}-seed{self.seed}-step{self.steps}.csv"


def _compile_ahead_if_cold(name: str, cls: type, given: dict[str, Any]) -> None:
    """A helper process compiling the measures' and the step's kernels beside the build when
    the kernel cache is cold (:mod:`simulator.compile_ahead`), so the first build and the
    first step wait for less compiling; it runs on (at most one per server process) until it
    is done or the server exits."""
    dtype = given.get("dtype", cls.param_specs()["dtype"].default)
    if isinstance(dtype, str) and kernels_cold(dtype):
        compile_ahead.start(name, given)
