"""Every run of a sweep checked before anything is written: limits, and each distinct
combination of parameters resolved through the model's own checks.

For each distinct combination (seeds aside) the checks a model runs when it is built, without
the heavy work: the scenario's declared parameters (:func:`simulator.params.resolve`), the
graph's generator parameters for its size (and the edge guard; a graph file is read once), and
the task built at 4 agents (its own parameter checks). A scenario's default graph_params and
task_params apply only to its default graph and task, as in the model.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.config import ParameterError

if TYPE_CHECKING:
    from simulator.sweep.fields import Lines

__all__ = ["MAX_RUNS", "MAX_VALUES", "check_combinations", "check_count"]

MAX_RUNS = 100_000  # runs in one sweep (seeds x combinations)
MAX_VALUES = 10_000  # values of one swept parameter, or seeds


def check_count(name: str, count: float, at: Lines, table: str | None = None) -> None:
    """Refuse more than :data:`MAX_VALUES` values for ``name`` (before they are made)."""
    if count > MAX_VALUES:
        raise at.error(
            f"{name}: {count:,.0f} values; a sweep takes at most {MAX_VALUES:,} per parameter "
            "(split it into several sweeps)",
            table,
            name,
        )


def check_total(seeds: int, sizes: list[int], combos: int, at: Lines) -> None:
    """Refuse a sweep of more than :data:`MAX_RUNS` runs (before the runs are made)."""
    total = seeds * math.prod(sizes) * max(combos, 1)
    if total > MAX_RUNS:
        raise at.error(
            f"{total:,} runs ({seeds} seeds x {' x '.join(map(str, sizes)) or '1'} values"
            f"{f' x {combos} combinations' if combos else ''}); a sweep runs at most "
            f"{MAX_RUNS:,}: split it"
        )


def _key(value: Any) -> str:
    from simulator.sweep.spec import _canonical

    return json.dumps(_canonical(value), sort_keys=True, default=repr)


def _own(p: dict[str, Any], specs: dict[str, Any], given: dict[str, Any], kind: str) -> dict:
    """The ``{kind}_params`` the model uses: the scenario default only with its default."""
    same = p[kind] == specs[kind].default
    return p[f"{kind}_params"] if same or f"{kind}_params" in given else {}


class _Checker:
    def __init__(self, model: str, cls: type):
        self.model, self.cls, self.specs = model, cls, cls.param_specs()
        self.graphs: dict[str, Any] = {}
        self.tasks: dict[str, None] = {}

    def graph(self, p: dict[str, Any], given: dict[str, Any]) -> bool:
        """Check the graph; return whether it has communities."""
        from simulator.graph import GRAPH_NAMES, MAX_EDGES, _expected_edges, resolve_graph_params

        graph, n, gp = p["graph"], p["n_agents"], _own(p, self.specs, given, "graph")
        key = _key([graph, n, gp])
        if key not in self.graphs:
            if isinstance(graph, str) and graph in GRAPH_NAMES:
                full = resolve_graph_params(graph, n, gp)
                if _expected_edges(graph, n, full) > MAX_EDGES:
                    raise ParameterError(
                        f"n_agents={n} with graph={graph!r} gives more than {MAX_EDGES:,} "
                        "expected edges (gigabytes as a networkx graph)"
                    )
                self.graphs[key] = graph == "sbm"
            else:
                from simulator.graph import build_graph, communities

                G = build_graph(graph, n, gp or None)
                self.graphs[key] = communities(G) is not None
        return self.graphs[key]

    def task(self, p: dict[str, Any], given: dict[str, Any], has_communities: bool) -> None:
        from simulator.tasks import make_task

        tp = _own(p, self.specs, given, "task")
        key = _key([p["task"], tp, has_communities])
        if key not in self.tasks:
            n = 4
            comm = np.arange(n) % 2 if has_communities else None
            make_task(p["task"], n, 0, comm, **tp)
            self.tasks[key] = None

    def check(self, given: dict[str, Any]) -> None:
        from simulator.params import resolve

        p = resolve(self.specs, given, self.model)
        self.task(p, given, self.graph(p, given))


def check_combinations(model: str, grid: list[dict[str, Any]], at: Lines) -> None:
    """Build-time checks of every distinct parameter combination of ``grid`` (see module doc).

    Raises SpecError naming the combination and the parameter at fault.
    """
    from simulator.registry import get_model

    checker = _Checker(model, get_model(model))
    seen: set[str] = set()
    for given in grid:
        key = _key(given)
        if key in seen:
            continue
        seen.add(key)
        try:
            checker.check(given)
        except (ParameterError, TypeError, ValueError, OSError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
            if len(shown) > 160:
                shown = shown[:157] + "..."
            raise at.error(f"the run with {shown} cannot be built: {exc}") from None
