"""The scenario registry, reached from the engine only through this function.

``simulator`` never imports ``models`` at module level (the engine does not depend on its
scenarios); the command line, the app and sweeps call :func:`load_registry`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from simulator.config import ParameterError

if TYPE_CHECKING:
    from simulator.model import NeuralModel


def load_registry() -> dict[str, type[NeuralModel]]:
    """Scenario name -> NeuralModel subclass (the ``models`` package's REGISTRY)."""
    return importlib.import_module("models").REGISTRY


def get_model(name: str) -> type[NeuralModel]:
    """The scenario called ``name``, or a ParameterError listing the scenarios."""
    registry = load_registry()
    if name not in registry:
        raise ParameterError(
            f"unknown scenario {name!r}; scenarios are: {', '.join(sorted(registry))}"
        )
    return registry[name]
