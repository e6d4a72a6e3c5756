"""Validated public attributes: a value is checked every time it is assigned.

Used by :class:`simulator.population.Population` so that nothing a user assigns reaches a kernel
unchecked (see its Notes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator import config as C

__all__ = ["Checked", "Fixed", "keep", "number", "readonly"]


class Checked:
    """A public attribute validated on every assignment: ``check(name, value)`` returns the
    value to store (in ``_<name>``) or raises ParameterError."""

    def __init__(self, check: Any, doc: str = ""):
        self.check, self.__doc__ = check, doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.slot, self.check(self.name, value))


class Fixed(Checked):
    """Set once when the population is built (its arrays and kernels depend on it)."""

    def __set__(self, obj: Any, value: Any) -> None:
        if hasattr(obj, self.slot):
            raise AttributeError(
                f"{self.name} is fixed when a Population is built (its arrays depend on it): "
                "build a new Population (or Population.from_params(pop.params, ...))"
            )
        super().__set__(obj, value)


def number(low: float, high: float = np.inf, **kw: Any) -> Any:
    """A check: a finite number in [low, high] (see :func:`simulator.config.check_number`)."""
    return lambda name, value: C.check_number(name, value, low, high, **kw)


def keep(name: str, value: Any) -> Any:
    """A check that keeps the value as given (for attributes fixed at construction)."""
    return value


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (assign the attribute instead of writing into it)."""
    view = a.view()
    view.flags.writeable = False
    return view
