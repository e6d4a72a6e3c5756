"""Names users type, the codes kernels read, and the checks that stand between them.

Every check raises :class:`ParameterError` naming the parameter, the value it got and what is
allowed, before anything is computed.
"""

from __future__ import annotations

import math
import os
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
    """Training produced NaN or inf. ``step`` and ``agents`` say when and who; ``why`` what
    those agents have, for a one-line status ("have a NaN/inf loss, gradient or update" when
    not given).

    The affected agents' parameters and optimizer state were left as they were before the
    step; every other agent's update was applied.
    """

    def __init__(
        self,
        message: str,
        step: int,
        agents: np.ndarray,
        losses: np.ndarray,
        why: str = "have a NaN/inf loss, gradient or update; lower lr or set clip_norm",
    ):
        super().__init__(message)
        self.step = step
        self.agents = agents
        self.losses = losses
        self.why = why


def fail(name: str, value: Any, allowed: str) -> ParameterError:
    """Build the error for parameter ``name`` that got ``value``; ``allowed`` says what is."""
    shown = " ".join(repr(value).split())  # one line, even for an array
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
    try:
        v = float(value) if ok else math.nan
    except OverflowError:  # an integer too large for a float, e.g. 10**400
        v = math.nan
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
        try:
            names = list(activation)
        except TypeError:
            names = None
        if names is None or len(names) != n_hidden:
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
    """float32 or float64, given as a name or a numpy dtype (None is refused: numpy would read
    it as float64)."""
    if dtype is None or isinstance(dtype, bool):
        raise fail("dtype", dtype, "'float32' or 'float64'")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise fail("dtype", dtype, "'float32' or 'float64'") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise fail("dtype", dtype, "'float32' or 'float64'")
    return dt


def check_lr(lr: Any, n_agents: int, dtype: np.dtype) -> np.ndarray:
    """A learning rate >= 0 as a scalar or one per agent; returns shape (n_agents,).

    Booleans (``lr=True``) and strings are refused, not read as numbers."""
    try:
        raw = None if isinstance(lr, str | bytes | bool) else np.asarray(lr)
        arr = None if raw is None or raw.dtype.kind not in "iuf" else raw.astype(np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (n_agents,)):
        raise fail("lr", lr, f"a number >= 0 or an array of shape ({n_agents},)")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise fail("lr", lr, "finite and >= 0 (a scalar or one per agent)")
    # always a fresh writable copy: a read-only array would make Numba compile another kernel
    return np.array(np.broadcast_to(arr, (n_agents,)), dtype=dtype, order="C")


def check_params(params: Any, n_params: int, layers: tuple[int, ...], dtype: Any = None) -> None:
    """Weights a population can wrap without copying: a finite, C-contiguous, writable float32
    or float64 array of shape (n_agents >= 1, n_params); ``dtype``, if given, must be its dtype."""
    if not isinstance(params, np.ndarray) or params.ndim != 2:
        raise fail(
            "params", type(params).__name__, f"a 2-D numpy array of shape (n_agents, {n_params})"
        )
    if params.shape[1] != n_params or params.shape[0] < 1:
        raise fail("params.shape", params.shape, f"(n_agents, {n_params}) for layers={layers}")
    if dtype is not None and check_dtype(dtype) != params.dtype:
        raise fail(
            "dtype",
            str(np.dtype(dtype)),
            f"the dtype of params ({params.dtype}): from_params never copies",
        )
    check_dtype(params.dtype)
    if not (params.flags.c_contiguous and params.flags.writeable):
        raise fail(
            "params",
            "a non-contiguous or read-only array",
            "C-contiguous and writable (use np.ascontiguousarray(params))",
        )
    if not np.all(np.isfinite(params)):
        raise fail("params", "an array with NaN or inf", "finite everywhere")


def check_agents(name: str, agents: Any, n_agents: int) -> np.ndarray:
    """Agent indices as int64: an int, a 1-D int array, or a boolean mask of shape (n_agents,)."""
    allowed = (
        f"an integer, a 1-D integer array of agent indices or a boolean mask of shape ({n_agents},)"
    )
    try:
        idx = np.asarray(agents)
    except (TypeError, ValueError) as exc:
        raise fail(name, agents, allowed) from exc
    if idx.dtype.kind == "b" and idx.shape == (n_agents,):
        return np.flatnonzero(idx)
    if idx.size == 0 and idx.ndim == 1:
        return idx.astype(np.int64)
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise fail(name, agents, allowed)
    if idx.min() < 0 or idx.max() >= n_agents:
        raise fail(name, agents, f"agent indices in [0, {n_agents - 1}]")
    return idx.astype(np.int64)


def as_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)``, or a ParameterError naming ``name`` when NumPy cannot make one
    rectangular array of it (a ragged nested list: rows of different lengths)."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        ragged = "inhomogeneous" in str(exc) or "sequence" in str(exc)
        shown = f"a ragged {type(value).__name__}" if ragged else f"a {type(value).__name__}"
        raise fail(name, shown, "a rectangular array (every row of the same length)") from None


def as_real_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)`` of a real number type, else ParameterError (ragged, str, complex)."""
    arr = as_array(name, value)
    if arr.dtype.kind not in "fiub":
        raise fail(f"{name}.dtype", str(arr.dtype), "a real number type")
    return arr


def check_array(
    name: str,
    value: Any,
    shape: tuple[int, ...],
    context: str = "",
    low: float | None = None,
    dtype: Any = None,
) -> np.ndarray:
    """``value`` as a finite array of exactly ``shape`` in ``dtype`` (if given; a value that
    overflows it is refused), any memory order (the caller copies it into its own C-contiguous
    array), with every entry >= ``low`` if given."""
    arr = as_real_array(name, value)
    if arr.dtype.kind == "b":
        raise fail(f"{name}.dtype", "bool", "a float or integer type")
    if arr.shape != tuple(shape):
        raise fail(f"{name}.shape", arr.shape, f"{tuple(shape)} {context}".rstrip())
    if dtype is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            arr = arr.astype(dtype)
    if not np.all(np.isfinite(arr)):
        where = f" in {np.dtype(dtype).name}" if dtype is not None else ""
        raise fail(name, f"an array with NaN or inf{where}", f"finite everywhere{where}")
    if low is not None and arr.size and arr.min() < low:
        raise fail(name, f"an array with minimum {arr.min()}", f">= {low} everywhere")
    return arr


def check_counts(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as an int64 array of exactly ``shape`` with every entry an integer >= 0."""
    arr = as_real_array(name, value)
    if arr.shape != tuple(shape):
        raise fail(f"{name}.shape", arr.shape, f"{tuple(shape)}")
    if arr.dtype.kind not in "iu" or (arr.size and arr.min() < 0):
        raise fail(name, f"an array of {arr.dtype}", "integers >= 0")
    return arr.astype(np.int64)


def machine_memory() -> int:
    """This machine's physical memory in bytes (1 TiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def count_text(n: int) -> str:
    """A count (any int, however large) for a message: ``1,234`` or ``~10^400``."""
    return f"{n:,}" if n < 10**15 else f"~10^{int((n.bit_length() - 1) * math.log10(2))}"


def gib_text(nbytes: int) -> str:
    """``nbytes`` (any int, however large) in GiB for a message."""
    gib = nbytes >> 30
    if gib < 10**15:
        return f"{nbytes / 2**30:,.1f} GiB"
    return f"10^{int((gib.bit_length() - 1) * math.log10(2))} GiB"


def check_memory(n_agents: int, n_params: int, dtype: np.dtype, optimizer: str) -> None:
    """Refuse a population whose parameters and optimizer state would not fit in this machine's
    memory (a MemoryError or the out-of-memory killer otherwise)."""
    copies = {"sgd": 2, "momentum": 3, "adam": 4}.get(optimizer, 4)  # params, grads/out, m, v
    one = n_params * np.dtype(dtype).itemsize * copies
    need = n_agents * one
    have = machine_memory()
    if one > have:
        raise fail(
            "layers",
            f"{count_text(n_params)} parameters per agent",
            "small enough to fit in memory",
        )
    if need > have:
        raise fail(
            "n_agents",
            n_agents,
            f"small enough that {count_text(n_agents)} x {count_text(n_params)} parameters "
            f"(~{gib_text(need)} "
            f"with optimizer state) fit in this machine's {have / 2**30:,.1f} GiB",
        )
