"""One browser session's simulation, independent of Solara (so it is tested directly).

A :class:`Session` holds the chosen scenario, the values the user gave, the seed, the model
built from them, and the views computed once per model (graph layout, map state). The page
keeps one Session per browser session (``solara.use_memo``), never one per server, so two
visitors never share a model. Every mutation takes ``lock``: the Play loop steps the model on
a background thread while the page reads it to draw.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd

from simulator.app.graphview import GraphView, graph_view
from simulator.app.projection import HomogenizationMap
from simulator.collect import model_table
from simulator.config import ParameterError
from simulator.params import Param
from simulator.registry import load_registry

DEFAULT_SCENARIO = "gossip_learning"
MAX_DRAWN_NODES = 500


def format_value(value: Any) -> str:
    """A parameter value as the text a user would type (``(16,)``, ``{'k': 4}``, ``0.05``)."""
    if isinstance(value, str):
        return value
    return repr(value)


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
    """

    def __init__(
        self,
        scenario: str | None = None,
        seed: int = 0,
        registry: dict | None = None,
        build: bool = True,
    ):
        self.registry = registry if registry is not None else load_registry()
        if scenario is None:
            scenario = DEFAULT_SCENARIO if DEFAULT_SCENARIO in self.registry else min(self.registry)
        self.lock = threading.RLock()
        self.scenario = scenario
        self.seed = seed
        self.raw: dict[str, Any] = {}
        self.error = ""
        self.model: Any = None
        self.graph: GraphView | None = None
        self.map: HomogenizationMap | None = None
        self.version = 0
        # what the page shows (drawn by simulator.app.render on the worker thread)
        self.selected = 0
        self.space = "function"
        self.measures: list[str] | None = None
        self.images: dict[str, bytes] = {}
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
        """The user's values, validated and coerced (raises ParameterError)."""
        specs = self.specs
        return {name: specs[name].validate(name, value) for name, value in self.raw.items()}

    def set_scenario(self, name: str) -> bool:
        """Switch scenario (its defaults, same seed) and build it; False and ``error`` if not."""
        if name not in self.registry:
            return self._fail(f"unknown scenario {name!r}; scenarios are: {self.scenarios}")
        with self.lock:
            self.scenario = name
            self.raw = {}
        return self.rebuild()

    def set_param(self, name: str, value: Any) -> bool:
        """Set one parameter (raw: a control's value or text) and rebuild the model."""
        if name not in self.specs:
            return self._fail(f"{self.scenario} has no parameter {name!r}")
        with self.lock:
            spec = self.specs[name]
            if spec.kind not in ("str", "any") and isinstance(value, str) and not value.strip():
                self.raw.pop(name, None)  # an emptied field means: the default
            else:
                self.raw[name] = value
        return self.rebuild()

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
    def rebuild(self) -> bool:
        """Build a fresh model (step 0) from scenario, values and seed.

        On a bad value the previous model is kept, ``error`` says what is wrong and False is
        returned; the server keeps running.
        """
        cls = self.registry[self.scenario]
        try:
            model = cls(rng=self.seed, **self.given())
        except ParameterError as exc:
            return self._fail(str(exc))
        except Exception as exc:  # a bad combination the declarations cannot see
            return self._fail(f"could not build {self.scenario}: {type(exc).__name__}: {exc}")
        view = graph_view(model.graph, MAX_DRAWN_NODES, seed=self.seed)
        with self.lock:
            self.model = model
            self.graph = view
            self.map = HomogenizationMap(model.n_agents, seed=self.seed)
            self.selected = min(self.selected, model.n_agents - 1)
            self.error = ""
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
