"""Which measures the app plots by default: the ones the scenario says to watch.

A scenario names them in a ``watch`` class attribute (a tuple of measure names), or else in the
``Watch`` section of its docstring (the ``double-backticked`` names there that the model
reports, in order). Two names for one series are shown once: for regression
``ambiguity`` equals ``ensemble_gain`` (the Krogh-Vedelsby identity).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["IDENTICAL", "MAX_PANELS", "default_measures", "watch_list"]

MAX_PANELS = 6
# measure -> the measure it always equals (same series), by task kind
IDENTICAL = {"regression": {"ambiguity": "ensemble_gain"}}
# when a scenario names nothing to watch
FALLBACK = ("function_dispersion", "consensus_distance", "probe_loss", "accuracy", "n_clusters")
_SECTION = re.compile(r"^Watch\s*$(.*?)(?=^\S|\Z)", re.M | re.S)


def watch_list(cls: type) -> list[str]:
    """The names a scenario class says to watch (``watch``, else its docstring's Watch section)."""
    declared = getattr(cls, "watch", None)
    if declared:
        return list(declared)
    doc = cls.__doc__ or ""
    section = _SECTION.search(doc)
    return re.findall(r"``([A-Za-z_][A-Za-z_0-9]*)``", section.group(1)) if section else []


def default_measures(model: Any) -> list[str]:
    """Measures to plot for ``model``: its watch list, reported and distinct, at most six."""
    reported = list(model.measure_names)
    same = IDENTICAL.get(getattr(model.task, "kind", ""), {})
    chosen: list[str] = []
    for name in [*watch_list(type(model)), *([] if watch_list(type(model)) else FALLBACK)]:
        name = same.get(name, name)
        if name in reported and name not in chosen:
            chosen.append(name)
    if not chosen:
        chosen = [n for n in reported if n != "step"][:4]
    return chosen[:MAX_PANELS]


def distinct(model: Any, names: list[str]) -> list[str]:
    """``names`` without repeats, a measure identical to another shown once."""
    same = IDENTICAL.get(getattr(model.task, "kind", ""), {})
    out: list[str] = []
    for name in names:
        name = same.get(name, name) if same.get(name) in names or same.get(name) in out else name
        if name not in out:
            out.append(name)
    return out
