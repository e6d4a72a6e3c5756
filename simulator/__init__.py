"""neuropop: populations of small neural networks as Mesa agents on a social graph.

Public surface. Nothing heavy happens at import time: kernels compile on first use (and are
cached on disk) and the Mesa layer is imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulator.config import DivergenceError, ParameterError
from simulator.layout import AgentNetwork, ParamLayout
from simulator.population import Population

__version__ = "0.1.0"

_LAZY = {
    "NeuralModel": ("simulator.model", "NeuralModel"),
    "NeuralAgent": ("simulator.model", "NeuralAgent"),
    "metrics": ("simulator.metrics", None),
    "load": ("simulator.checkpoint", "load"),
}

__all__ = [
    "AgentNetwork",
    "DivergenceError",
    "NeuralAgent",
    "NeuralModel",
    "ParamLayout",
    "ParameterError",
    "Population",
    "load",
    "metrics",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value
