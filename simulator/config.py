"""Names users type, the codes kernels read, and the checks that stand between them.

Every check raises :class:`ParameterError` naming the parameter, the value it got and what is
allowed, before anything is computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from simulator.kernels import activations as A
from simulator.kernels import mlp as K
from simulator.kernels import optim as O

ACTIVATIONS = {
    "identity": A.IDENTITY,
    "step": A.STEP,
    "sigmoid": A.SIGMOID,
    "tanh": A.TANH,
    "relu": A.RELU,
}
OUTPUTS = {
    "linear": A.OUT_LINEAR,
    "sigmoid": A.OUT_SIGMOID,
    "softmax": A.OUT_SOFTMAX,
    "step": A.OUT_STEP,
}
LOSSES = {"mse": K.MSE, "bce": K.BCE, "cross_entropy": K.CROSS_ENTROPY}
OPTIMIZERS = {"sgd": O.SGD, "momentum": O.MOMENTUM, "adam": O.ADAM}
INITS = ("xavier_uniform", "xavier_normal", "he_normal", "he_uniform", "uniform")
DTYPES = {"float32": np.float32, "float64": np.float64}

# Which output functions each loss accepts, and why.
LOSS_OUTPUTS = {
    "mse": ("linear", "sigmoid", "softmax", "step"),
    "bce": ("sigmoid",),  # binary cross-entropy needs probabilities in (0, 1), per output
    "cross_entropy": ("softmax",),  # softmax cross-entropy: the classifier
}


class ParameterError(ValueError):
    """A parameter has a value that is not allowed. The message names both and what is allowed."""


class DivergenceError(FloatingPointError):
    """Training produced NaN or inf. ``step`` and ``agents`` say when and who.

    The affected agents' parameters and optimizer state were left as they were before the
    step; every other agent's update was applied.
    """

    def __init__(self, message: str, step: int, agents: np.ndarray, losses: np.ndarray):
        super().__init__(message)
        self.step = step
        self.agents = agents
        self.losses = losses


def fail(name: str, value: Any, allowed: str) -> ParameterError:
    """Build the error for parameter ``name`` that got ``value``; ``allowed`` says what is."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ParameterError(f"{name}={shown} is not allowed: {name} must be {allowed}.")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-sensitive)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise fail(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite number in the given interval."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    inside = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not (ok and math.isfinite(v) and inside):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise fail(name, value, f"a finite number in {lo}{low}, {high}{hi}")
    return v


def check_int(name: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer in [low, high]."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise fail(name, value, f"an integer {span}")
    return int(value)


def check_layers(layers: Any) -> tuple[int, ...]:
    """Widths (d_0, ..., d_L): at least an input and an output, each a positive int."""
    if (
        not isinstance(layers, Sequence)
        or isinstance(layers, str)
        or len(layers) < 2
        or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in layers
        )
    ):
        raise fail("layers", layers, "a sequence of at least two positive ints, e.g. (8, 16, 1)")
    return tuple(int(d) for d in layers)


def activation_codes(activation: Any, output: str, n_layers: int) -> np.ndarray:
    """Codes for each layer: the hidden activation(s) then the output function.

    ``activation`` is one name for every hidden layer or a sequence of ``n_layers - 1`` names.
    """
    n_hidden = n_layers - 1
    if isinstance(activation, str):
        names = [activation] * n_hidden
        check_choice("activation", activation, ACTIVATIONS)
    else:
        names = list(activation)
        if len(names) != n_hidden:
            raise fail(
                "activation",
                activation,
                f"one name or a sequence of {n_hidden} names (one per hidden layer)",
            )
        for k, name in enumerate(names):
            check_choice(f"activation[{k}]", name, ACTIVATIONS)
    check_choice("output", output, OUTPUTS)
    return np.array([ACTIVATIONS[n] for n in names] + [OUTPUTS[output]], dtype=np.int64)


def check_loss_output(loss: str, output: str) -> None:
    """Refuse a loss paired with an output function it is not defined for."""
    check_choice("loss", loss, LOSSES)
    allowed = LOSS_OUTPUTS[loss]
    if output not in allowed:
        raise fail("output", output, f"one of {', '.join(map(repr, allowed))} when loss={loss!r}")


def check_dtype(dtype: Any) -> np.dtype:
    """float32 or float64, given as a name or a numpy dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise fail("dtype", dtype, "'float32' or 'float64'") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise fail("dtype", dtype, "'float32' or 'float64'")
    return dt


def check_lr(lr: Any, n_agents: int, dtype: np.dtype) -> np.ndarray:
    """A learning rate >= 0 as a scalar or one per agent; returns shape (n_agents,)."""
    arr = np.asarray(lr, dtype=np.float64) if not isinstance(lr, str) else None
    if arr is None or arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (n_agents,)):
        raise fail("lr", lr, f"a number >= 0 or an array of shape ({n_agents},)")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise fail("lr", lr, "finite and >= 0 (a scalar or one per agent)")
    return np.ascontiguousarray(np.broadcast_to(arr, (n_agents,)), dtype=dtype)
