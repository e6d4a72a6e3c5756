"""Sweep specs: which scenario, which parameter values, which seeds, what to record.

A spec is a TOML file in the spirit of NetLogo's BehaviorSpace::

    model = "gossip_learning"          # a scenario name (``simulator models`` lists them)
    steps = 60
    seeds = {count = 3, base = 0}      # or a list: [0, 1, 2]
    measures = ["probe_loss", "function_dispersion"]   # default: all the model reports
    record = {every = 10}              # or "every" (every collected step) or "end"

    [fixed]                            # the same in every run
    n_agents = 32

    [vary]                             # all combinations of these values
    mixing_rate = [0.0, 0.5, 1.0]
    lr = {start = 0.01, stop = 0.1, num = 4}   # or {start, stop, step} (stop included)

    [[combinations]]                   # optional: explicit sets, crossed with [vary]
    graph = "ring"
    [[combinations]]
    graph = "watts_strogatz"
    graph_params = {k = 4, p = 0.1}

Every value is checked by the scenario's declared parameters (:class:`simulator.params.Param`)
before anything runs; an error names the TOML line. In ``[vary]`` a list is always a list of
values: ``hidden = [16, 32]`` tries ``(16,)`` and ``(32,)``; ``hidden = [[16, 16]]`` is one value.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.config import ParameterError
from simulator.sweep import check as C
from simulator.sweep import fields as F
from simulator.sweep.fields import SpecError

__all__ = ["Run", "SpecError", "SweepSpec", "load_spec", "run_id"]

TOP_KEYS = (
    "model",
    "name",
    "description",
    "steps",
    "seeds",
    "measures",
    "record",
    "fixed",
    "vary",
    "combinations",
)


@dataclass(frozen=True)
class Run:
    """One run of a sweep: a scenario, its keyword parameters and a seed.

    ``run_id`` is a hash of (model, params, seed, steps): the same run has the same id in any
    folder, on any machine, whichever backend runs it.
    """

    run_id: str
    model: str
    params: dict[str, Any]
    seed: int
    steps: int


def _canonical(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def run_id(model: str, params: dict[str, Any], seed: int, steps: int) -> str:
    """A stable 16-hex-digit id for a run (sha256 of its canonical JSON)."""
    text = json.dumps(
        {"model": model, "params": _canonical(params), "seed": seed, "steps": steps},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: build with :func:`load_spec`.

    Attributes
    ----------
    model : str
        Scenario name.
    steps : int
        Steps per run.
    seeds : tuple of int
        Every combination runs once per seed.
    fixed : dict
        Parameters given to every run (validated values).
    vary : dict of str -> tuple
        Values tried per swept parameter (all combinations).
    combinations : tuple of dict
        Explicit parameter sets, crossed with ``vary`` (empty: none).
    measures : tuple of str or None
        Measures written (None: every measure the model reports).
    record : "every", "end" or int k
        Which collected steps go to steps.csv. Unless ``collect_every`` is given, it also sets
        how often the model measures: ``k`` sets ``collect_every=k``, ``"end"`` measures at
        step 0 and at the end only (so ``consensus_time`` is resolved to that period).
    """

    model: str
    steps: int
    seeds: tuple[int, ...] = (0,)
    fixed: dict[str, Any] = field(default_factory=dict)
    vary: dict[str, tuple] = field(default_factory=dict)
    combinations: tuple[dict[str, Any], ...] = ()
    measures: tuple[str, ...] | None = None
    record: str | int = "every"
    name: str = ""
    description: str = ""
    text: str = field(default="", compare=False, repr=False)

    @property
    def swept(self) -> list[str]:
        """Parameters that take more than one value across runs, in spec order."""
        names = list(self.vary)
        for combo in self.combinations:
            names += [k for k in combo if k not in names]
        grid = self._grid()
        return [k for k in names if len({json.dumps(_canonical(p.get(k))) for p in grid}) > 1]

    def to_dict(self) -> dict[str, Any]:
        """The normalized spec as JSON-ready data (what the hash covers); ``load_spec`` reads it."""
        return _canonical(
            {
                "model": self.model,
                "steps": self.steps,
                "seeds": list(self.seeds),
                "fixed": self.fixed,
                "vary": {k: list(v) for k, v in self.vary.items()},
                "combinations": list(self.combinations),
                "measures": "all" if self.measures is None else list(self.measures),
                "record": {"every": self.record} if isinstance(self.record, int) else self.record,
            }
        )

    @property
    def hash(self) -> str:
        """sha256 of the normalized spec (comments, layout and name do not count)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def _grid(self) -> list[dict[str, Any]]:
        names = list(self.vary)
        combos = self.combinations or ({},)
        out = []
        for values in itertools.product(*(self.vary[k] for k in names)):
            for combo in combos:
                out.append({**self.fixed, **dict(zip(names, values)), **combo})
        return out

    def model_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The keyword parameters a run's model gets: ``params`` plus what ``record`` implies."""
        if "collect_every" in params or self.record == "every":
            return params
        every = self.steps if self.record == "end" else self.record
        return {**params, "collect_every": max(int(every), 1)}

    def runs(self) -> list[Run]:
        """Every run, seeds outermost (a stopped sweep has whole grids for its first seeds)."""
        grid = [self.model_params(p) for p in self._grid()]
        return [
            Run(run_id(self.model, p, seed, self.steps), self.model, p, seed, self.steps)
            for seed in self.seeds
            for p in grid
        ]


def load_spec(source: Any) -> SweepSpec:
    """Read and validate a spec: a path to a TOML file, TOML text, a dict or a SweepSpec.

    A string is TOML text when it contains a newline, else a path. Raises :class:`SpecError`
    (a ParameterError) naming the line of the first problem; nothing has run then.
    """
    if isinstance(source, SweepSpec):
        return source
    if isinstance(source, dict):
        return _build(source, F.Lines("", "sweep spec"), "")
    if isinstance(source, str) and "\n" in source:
        text, name = source, "sweep spec"
    else:
        path = Path(os.fspath(source))
        if not path.is_file():
            raise SpecError(f"sweep spec {str(path)!r} does not exist (or is not a file).")
        try:
            text, name = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"sweep spec {str(path)!r} is not UTF-8 text (TOML is): {exc.reason} at byte "
                f"{exc.start}"
            ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{name}: not valid TOML: {exc}") from None
    return _build(data, F.Lines(text, name), text)


def _build(data: dict[str, Any], at: F.Lines, text: str) -> SweepSpec:
    for key in data:
        if key not in TOP_KEYS:
            hint = {"seed": " (write seeds = [..])", "params": " (write [fixed] or [vary])"}
            raise at.error(
                f"unknown key {key!r}{hint.get(key, '')}; a spec has: {', '.join(TOP_KEYS)}",
                None,
                key,
            )
    if "model" not in data:
        raise at.error('no model: add a line like model = "gossip_learning"')
    from simulator.registry import get_model

    try:
        specs = get_model(str(data["model"])).param_specs()
    except ParameterError as exc:
        raise at.error(str(exc), None, "model") from None
    steps = data.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise at.error(f"steps={steps!r}: steps must be an integer >= 0", None, "steps")
    fixed, vary, combinations = _parameters(data, specs, at)
    F.check_overlaps(fixed, vary, combinations, at)
    seeds = F.seeds(data.get("seeds", [0]), at)
    C.check_total(len(seeds), [len(v) for v in vary.values()], len(combinations), at)
    spec = SweepSpec(
        model=str(data["model"]),
        steps=steps,
        seeds=seeds,
        fixed=fixed,
        vary=vary,
        combinations=combinations,
        measures=F.measures(data.get("measures", "all"), at),
        record=F.record(data.get("record", "every"), at),
        name=str(data.get("name", "")),
        description=str(data.get("description", "")),
        text=text,
    )
    every = fixed.get("collect_every")
    if isinstance(spec.record, int) and every and spec.record % every:
        raise at.error(
            f"record every {spec.record} steps needs collect_every dividing it (got {every})",
            None,
            "record",
        )
    ids = [r.run_id for r in spec.runs()]
    if len(set(ids)) < len(ids):
        raise at.error("two combinations give the same run (a value listed twice?)", None, None)
    C.check_combinations(spec.model, spec._grid(), at)
    return spec


def _parameters(data: dict[str, Any], specs: dict[str, Any], at: F.Lines) -> tuple:
    """[fixed], [vary] and [[combinations]], every value checked by the model's Param."""

    def param(table: str, name: str, value: Any, index: int | None = None) -> Any:
        if name not in specs:
            near = difflib.get_close_matches(name, specs, 3)
            also = f" (did you mean {', '.join(near)}?)" if near else ""
            raise at.error(
                f"{data['model']} has no parameter {name!r}{also}; its parameters are: "
                + ", ".join(sorted(specs)),
                table,
                name,
                index,
            )
        try:
            return specs[name].validate(name, value)
        except ParameterError as exc:
            raise at.error(str(exc), table, name, index) from None

    fixed = {k: param("fixed", k, v) for k, v in F.table(data, "fixed", at).items()}
    vary = {}
    for name, raw in F.table(data, "vary", at).items():
        values = tuple(param("vary", name, v) for v in F.values(name, raw, specs.get(name), at))
        if len({json.dumps(_canonical(v)) for v in values}) < len(values):
            raise at.error(f"{name}: a value is listed twice", "vary", name)
        vary[name] = values
    combos = data.get("combinations", [])
    if not isinstance(combos, list) or not all(isinstance(c, dict) for c in combos):
        raise at.error("combinations must be [[combinations]] tables", None, "combinations")
    combinations = tuple(
        {k: param("combinations", k, v, i) for k, v in c.items()} for i, c in enumerate(combos)
    )
    return fixed, vary, combinations
