"""Helpers for declaring scenarios."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from simulator.model_params import BASE_PARAMS
from simulator.params import Param


def with_defaults(**defaults: Any) -> dict[str, Param]:
    """The base parameters with some defaults changed (unknown names are a programming error).

    The parameters named here are marked as the scenario's own (``Param.own``): the command
    line and the app list them first, the rest under "advanced".
    """
    unknown = set(defaults) - set(BASE_PARAMS)
    if unknown:
        raise KeyError(f"not base parameters: {sorted(unknown)}")
    return {
        name: replace(spec, default=defaults[name], own=True) if name in defaults else spec
        for name, spec in BASE_PARAMS.items()
    }
