"""Where each weight lives in a parameter row, and one agent's network as a view of its row."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simulator.population import Population


@dataclass(frozen=True)
class ParamLayout:
    """The canonical layout of one agent's parameter row.

    For each layer ``l = 1 .. L``: ``W_l`` flattened row-major with shape ``(d_{l-1}, d_l)``
    (``W[i, j]`` connects input ``i`` to output ``j``), then ``b_l`` with shape ``(d_l,)``.
    Without biases (``bias=False``) a row holds the ``W_l`` only, one after the other: every
    layer computes ``W^T a`` and its bias is the constant 0 (no parameter, no gradient).

    Parameters
    ----------
    layers : tuple of int
        Widths ``(d_0, ..., d_L)``: inputs, hidden layers, outputs.
    bias : bool
        Whether every layer has a bias vector (True, the default) or none has.
    """

    layers: tuple[int, ...]
    bias: bool = True
    w_offsets: tuple[int, ...] = field(init=False)
    b_offsets: tuple[int, ...] = field(init=False)
    n_params: int = field(init=False)

    def __post_init__(self) -> None:
        w_off, b_off, pos = [], [], 0
        for d_in, d_out in zip(self.layers[:-1], self.layers[1:]):
            w_off.append(pos)
            pos += d_in * d_out
            b_off.append(pos)  # without biases: where b_l would start (its slice is empty)
            pos += d_out if self.bias else 0
        object.__setattr__(self, "w_offsets", tuple(w_off))
        object.__setattr__(self, "b_offsets", tuple(b_off))
        object.__setattr__(self, "n_params", pos)

    @property
    def n_layers(self) -> int:
        """Number of weight layers L (hidden layers + output layer)."""
        return len(self.layers) - 1

    def weight_slice(self, l: int) -> slice:
        """Slice of ``W_l`` (0-based layer index) in a row."""
        start = self.w_offsets[l]
        return slice(start, start + self.layers[l] * self.layers[l + 1])

    def bias_slice(self, l: int) -> slice:
        """Slice of ``b_l`` (0-based layer index) in a row; empty without biases."""
        start = self.b_offsets[l]
        return slice(start, start + (self.layers[l + 1] if self.bias else 0))

    def unravel(self, row: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Views ``[(W_0, b_0), ...]`` into ``row`` (or into the last axis of a batch of rows).

        Writing to a view writes to ``row``. Without biases each ``b_l`` is a read-only array
        of zeros of the shape a bias would have, ``(..., d_l)``, backed by no parameter (the
        layers compute ``W^T a + 0``; writing to it raises ``ValueError``).
        """
        lead = row.shape[:-1]
        out = []
        for l in range(self.n_layers):
            w = row[..., self.weight_slice(l)].reshape(*lead, self.layers[l], self.layers[l + 1])
            if self.bias:
                b = row[..., self.bias_slice(l)]
            else:
                b = np.broadcast_to(np.zeros((), dtype=row.dtype), (*lead, self.layers[l + 1]))
            out.append((w, b))
        return out

    def ravel(self, weights: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`unravel`: one row (or a batch of rows) from per-layer arrays.

        Without biases the ``b`` are left out; they must be all zero (anything else is not a
        network of this layout: ``ValueError``).
        """
        parts = []
        for w, b in weights:
            parts.append(w.reshape(*w.shape[:-2], -1))
            if self.bias:
                parts.append(b)
            elif np.any(b):
                raise ValueError("a layout without biases holds no bias: every b must be 0")
        return np.concatenate(parts, axis=-1)

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dims, w_off, b_off) as int64 arrays, as the kernels read them (b_off -1: no bias)."""
        b_off = self.b_offsets if self.bias else (-1,) * self.n_layers
        return (
            np.array(self.layers, dtype=np.int64),
            np.array(self.w_offsets, dtype=np.int64),
            np.array(b_off, dtype=np.int64),
        )


class AgentNetwork:
    """One agent's MLP: a view of its row of the population's parameters (no copy).

    Attributes
    ----------
    index : int
        The agent's row in ``population.params``.
    """

    def __init__(self, population: Population, index: int):
        self.population = population
        self.index = index

    @property
    def params(self) -> np.ndarray:
        """This agent's parameter row, shape (n_params,): a writable view."""
        return self.population.params[self.index]

    @property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-layer ``(W, b)`` views, ``W`` of shape (d_in, d_out), ``b`` of shape (d_out,)."""
        return self.population.layout.unravel(self.params)

    @property
    def weights(self) -> list[np.ndarray]:
        """Per-layer weight matrices (views)."""
        return [w for w, _ in self.layers]

    @property
    def biases(self) -> list[np.ndarray]:
        """Per-layer bias vectors (views; read-only zeros when the population has no biases)."""
        return [b for _, b in self.layers]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs of this network on ``x`` of shape (B, d_in) -> (B, d_out)."""
        return self.population.predict(x, agents=np.array([self.index]))[0]

    def __repr__(self) -> str:
        layout = self.population.layout
        bias = "" if layout.bias else ", bias=False"
        return f"AgentNetwork(index={self.index}, layers={layout.layers}{bias})"
