"""Declared model parameters: default, type, allowed range, help.

Scenarios declare their parameters once; the command line (`--set`), `simulator models`, the
browser app's controls and sweep specs are all generated from these declarations and validated by
them, so a bad value gets the same clear error wherever it comes from.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.config import ParameterError, fail


@dataclass(frozen=True)
class Param:
    """One model parameter.

    Parameters
    ----------
    default : Any
        Value used when none is given.
    kind : str
        ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"ints"`` (a tuple of ints, e.g. hidden
        widths), ``"dict"`` (keyword parameters of a generator) or ``"any"`` (a networkx graph).
    low, high : float, optional
        Inclusive bounds for numbers.
    choices : tuple of str, optional
        Allowed values for ``"str"`` parameters; ``open_choices`` also accepts other strings
        (a graph file path, say).
    help : str
        One line for users.
    open_choices : bool
        Also accept strings outside ``choices``.
    own : bool
        Set by a scenario (``models._base.with_defaults`` marks the parameters it sets): shown
        first by ``simulator models NAME`` and the app, the others under "advanced".
    """

    default: Any
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    open_choices: bool = False
    own: bool = False

    def allowed(self) -> str:
        """What this parameter accepts, in words."""
        if self.choices:
            more = " (or a file path / networkx graph)" if self.open_choices else ""
            return "one of " + ", ".join(repr(c) for c in self.choices) + more
        if self.kind in ("int", "float"):
            lo = "-inf" if self.low is None else self.low
            hi = "inf" if self.high is None else self.high
            return f"{'an integer' if self.kind == 'int' else 'a number'} in [{lo}, {hi}]"
        return {
            "bool": "true or false",
            "ints": "a tuple of positive integers, e.g. (16,)",
            "dict": "a dict of keyword parameters",
            "str": "a string",
        }.get(self.kind, "any value")

    def validate(self, name: str, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ParameterError."""
        kind = self.kind
        if kind == "any":
            return value
        if isinstance(value, str) and kind not in ("str",):
            value = parse_value(value)
        if kind == "bool":
            if isinstance(value, bool | np.bool_):
                return bool(value)
            raise fail(name, value, self.allowed())
        if kind in ("int", "float"):
            number = _finite_float(value)
            ok = number is not None and (kind == "float" or number.is_integer())
            if (
                not ok
                or (self.low is not None and number < self.low)
                or (self.high is not None and number > self.high)
            ):
                raise fail(name, value, self.allowed())
            return int(value) if kind == "int" else number
        if kind == "ints":
            if _is_int(value):
                value = (value,)
            if not isinstance(value, list | tuple) or not all(_is_int(v) and v >= 1 for v in value):
                raise fail(name, value, self.allowed())
            return tuple(int(v) for v in value)
        if kind == "dict":
            if value is None:
                return {}
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise fail(name, value, self.allowed() + " (names as strings)")
            return dict(value)
        # str
        if not isinstance(value, str) and not (self.open_choices and value is not None):
            raise fail(name, value, self.allowed())
        if self.choices and not self.open_choices and value not in self.choices:
            raise fail(name, value, self.allowed())
        return value


def _is_int(value: Any) -> bool:
    """Whether ``value`` is an integer: Python's or NumPy's (bools are not)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _finite_float(value: Any) -> float | None:
    """``value`` as a finite float if it is a real number (Python's or NumPy's, not a bool), else
    None: also for an integer too large for a float (e.g. ``10**400``), NaN and inf."""
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(
        value, bool | np.bool_
    ):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def with_defaults(**values: Any) -> dict[str, Param]:
    """A scenario's ``params``: the base parameters with some defaults changed, plus new ones.

    ``with_defaults(n_agents=40, lr=0.01, zealot_share=Param(0.1, "float", 0, 1))`` changes two
    base defaults and declares ``zealot_share``. The parameters named here are the scenario's
    own (``Param.own``): ``simulator models NAME`` and the app list them first.
    """
    from dataclasses import replace

    from simulator.model_params import BASE_PARAMS

    unknown = [k for k, v in values.items() if k not in BASE_PARAMS and not isinstance(v, Param)]
    if unknown:
        hints = "".join(did_you_mean(name, BASE_PARAMS) for name in unknown)
        raise ParameterError(
            f"not base parameters: {', '.join(map(repr, unknown))}{hints}; declare a new "
            "parameter with a Param (default, kind, low, high, help=...)"
        )
    out = {}
    for name, spec in BASE_PARAMS.items():
        value = values.get(name, spec)
        if isinstance(value, Param):
            out[name] = replace(value, own=name in values)
        else:
            out[name] = replace(spec, default=spec.validate(name, value), own=True)
    for name, value in values.items():
        if name not in BASE_PARAMS:
            out[name] = replace(value, own=True)
    return out


def parse_value(text: str) -> Any:
    """Parse a command-line value: Python literals (1, 0.5, (16, 8), {'p': 0.1}, True), else text.

    ``true``/``false``/``none`` are accepted in any case.
    """
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        # not a literal (an unhashable key, a nesting too deep to parse): the text itself,
        # which the parameter's check then refuses by name
        return text


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the known names closest to ``name``, else ``""``."""
    known, text = list(known), str(name)
    close = difflib.get_close_matches(text, known, n=2, cutoff=0.6)
    if not close and len(text) >= 3:
        close = [k for k in known if k.startswith(text) or text in k][:2]
    if not close:
        return ""
    return f" (did you mean {' or '.join(map(repr, close))}?)"


def resolve(params: dict[str, Param], given: dict[str, Any], model: str) -> dict[str, Any]:
    """Defaults overlaid with ``given``, every value validated; unknown names are refused
    (with the closest known names suggested)."""
    unknown = sorted(set(given) - set(params), key=str)
    if unknown:
        hints = "".join(did_you_mean(name, params) for name in unknown)
        raise ParameterError(
            f"{model} has no parameter {', '.join(map(repr, unknown))}{hints}; its parameters "
            "are: " + ", ".join(sorted(params))
        )
    out = {}
    for name, spec in params.items():
        value = given.get(name, spec.default)
        out[name] = spec.validate(name, value)
    return out
