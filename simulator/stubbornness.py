"""Stubborn agents: every step each agent is pulled back toward its own initial parameters.

The Friedkin-Johnsen model (Friedkin and Johnsen 1990): after the step's training and social
rules, ``x_i(t+1) = (1 - s_i) [update of x(t)]_i + s_i x_i(0)`` with stubbornness ``s_i`` in
[0, 1] (0: no anchoring, 1: the agent never leaves its initial parameters). With averaging
``x <- W x`` as the only update (``lr=0``, ``mixing_rate=1``) the population converges to
``x* = (I - (I - S) W)^-1 S x(0)``, ``S = diag(s)``, whenever every agent is linked by a path
to some agent with ``s > 0``.

``x(0)`` is kept as model state (``NeuralModel.initial_params``), allocated only when some
``s_i > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.config import fail
from simulator.params import Param, parse_value

__all__ = ["PerAgentParam", "stubbornness_vector"]


@dataclass(frozen=True)
class PerAgentParam(Param):
    """A number in ``[low, high]``, or one such number per agent (a sequence or 1-D array).

    Declared as ``kind="float"`` so the command line, sweeps and the app treat the scalar form
    like any number; a per-agent value is kept as a tuple of floats (JSON-able in the config).
    Its length is checked against the number of agents when the model is built.
    """

    def allowed(self) -> str:
        return f"{super().allowed()}, or a sequence of such numbers, one per agent"

    def validate(self, name: str, value: Any) -> Any:
        if isinstance(value, str):
            value = parse_value(value)
        if isinstance(value, np.ndarray | Sequence) and not isinstance(value, str):
            arr = np.asarray(value)
            low = -np.inf if self.low is None else self.low
            high = np.inf if self.high is None else self.high
            if (
                arr.ndim != 1
                or arr.size == 0
                or arr.dtype.kind not in "iuf"
                or not np.all(np.isfinite(arr))
                or np.any(arr < low)
                or np.any(arr > high)
            ):
                raise fail(name, value, self.allowed())
            return tuple(float(v) for v in arr)
        return super().validate(name, value)


def stubbornness_vector(value: float | tuple[float, ...], n_agents: int) -> np.ndarray | None:
    """Per-agent stubbornness float64 (n_agents,), or None when every agent has 0.

    ``value`` is a validated ``stubbornness`` parameter: a number, or one number per agent.
    """
    if isinstance(value, tuple):
        if len(value) != n_agents:
            raise fail(
                "stubbornness",
                value,
                f"a number in [0, 1] or a sequence of {n_agents} such numbers (one per agent)",
            )
        s = np.array(value, dtype=np.float64)
    else:
        s = np.full(n_agents, float(value))
    return s if np.any(s > 0) else None
