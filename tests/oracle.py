"""A slow, obviously-correct NumPy reference for :class:`simulator.Population`.

Everything is written from the definitions in the docstrings of ``simulator/population.py`` and
``simulator/kernels/optim.py``, one agent at a time, in float64 (or whatever dtype the inputs
have), with ``np.tanh`` and plain matrix products. Nothing here is fast or clever on purpose.

Shapes: one agent's ``row`` is (n_params,) in the canonical layout (for each layer ``W`` of shape
(d_in, d_out) flattened row-major, then ``b`` (d_out,); without biases only the ``W``, and every
``b`` is the constant 0); ``x`` is (B, d_in), ``y`` is (B, K).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

# Every (output, loss) pair the engine accepts: the oracle tests and the property tests cover all.
OUTPUT_LOSS = (
    ("linear", "mse"),
    ("sigmoid", "mse"),
    ("softmax", "mse"),
    ("step", "mse"),
    ("sigmoid", "bce"),
    ("softmax", "cross_entropy"),
)

STE_WINDOW = 1.0  # hidden step: d step(z)/dz = 1 for |z| <= 1, else 0


def unravel(
    row: np.ndarray, layers: tuple[int, ...], bias: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copies [(W (d_in, d_out), b (d_out,)), ...] of one parameter row (b = 0 without bias)."""
    out, pos = [], 0
    for d_in, d_out in itertools.pairwise(layers):
        W = row[pos : pos + d_in * d_out].reshape(d_in, d_out).copy()
        pos += d_in * d_out
        b = row[pos : pos + d_out].copy() if bias else np.zeros(d_out, dtype=row.dtype)
        pos += d_out if bias else 0
        out.append((W, b))
    assert pos == row.shape[0]
    return out


def ravel(weights: list[tuple[np.ndarray, np.ndarray]], bias: bool = True) -> np.ndarray:
    """Inverse of :func:`unravel` (the b are left out without bias)."""
    parts = [(W.ravel(), b) if bias else (W.ravel(),) for W, b in weights]
    return np.concatenate([part for layer in parts for part in layer])


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), evaluated without overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """Hidden activation or output function ``name`` applied to pre-activations z (B, d)."""
    if name in ("identity", "linear"):
        return z.copy()
    if name == "step":
        return (z > 0).astype(z.dtype)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0).astype(z.dtype)
    if name == "softmax":
        return softmax(z)
    raise ValueError(name)


def derivative(name: str, z: np.ndarray) -> np.ndarray:
    """d activation / dz of a hidden activation (the step uses the straight-through estimator)."""
    if name == "identity":
        return np.ones_like(z)
    if name == "step":
        return (np.abs(z) <= STE_WINDOW).astype(z.dtype)
    if name == "sigmoid":
        s = sigmoid(z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    raise ValueError(name)


def hidden_names(activation, n_layers: int) -> list[str]:
    """One activation name per hidden layer."""
    if isinstance(activation, str):
        return [activation] * (n_layers - 1)
    return list(activation)


def forward(row, layers, activation, output, x, bias=True):
    """Pre-activations ``zs`` and activations ``acts`` of every layer (acts[0] is x)."""
    names = [*hidden_names(activation, len(layers) - 1), output]
    acts, zs = [x], []
    for (W, b), name in zip(unravel(row, layers, bias), names):
        z = acts[-1] @ W + b
        zs.append(z)
        acts.append(activate(name, z))
    return zs, acts


def loss_and_delta(output: str, loss: str, z: np.ndarray, o: np.ndarray, y: np.ndarray):
    """The loss of one agent on (B, K) outputs and dLoss/dz of its output layer, (B, K)."""
    B, K = o.shape
    if loss == "cross_entropy":
        assert output == "softmax"
        logp = z - z.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        value = -(y * logp).sum() / B
        delta = (o * y.sum(axis=1, keepdims=True) - y) / B
        return value, delta
    if loss == "bce":
        assert output == "sigmoid"
        logp, log1mp = -np.logaddexp(0, -z), -np.logaddexp(0, z)
        value = -(y * logp + (1 - y) * log1mp).mean()
        return value, (o - y) / (B * K)
    assert loss == "mse"
    value = ((o - y) ** 2).mean()
    g = 2 * (o - y) / (B * K)  # dLoss/do
    if output == "linear":
        return value, g
    if output == "step":  # perceptron rule
        return value, (o - y) / (B * K)
    if output == "sigmoid":
        return value, g * o * (1 - o)
    assert output == "softmax"
    # dL/dz_k = sum_j g_j do_j/dz_k = o_k (g_k - sum_j g_j o_j), one sample at a time
    delta = np.empty_like(g)
    for s in range(B):
        J = np.diag(o[s]) - np.outer(o[s], o[s])
        delta[s] = J @ g[s]
    return value, delta


def batch_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for a (B, m), b (B, n), each entry an exactly rounded sum (math.fsum).

    Exact sums make a gradient that is zero in exact arithmetic come out as exactly 0 (Adam
    divides by sqrt(v) + eps and would magnify a 1e-19 residue to 1e-12).
    """
    out = np.empty((a.shape[1], b.shape[1]), dtype=np.result_type(a, b))
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            out[i, j] = math.fsum(a[:, i] * b[:, j])
    return out


def agent_gradients(row, layers, activation, output, loss, x, y, bias=True):
    """(loss, gradient row (n_params,), dLoss/dx (B, d_in)) of one agent by backpropagation."""
    names = hidden_names(activation, len(layers) - 1)
    weights = unravel(row, layers, bias)
    zs, acts = forward(row, layers, activation, output, x, bias)
    value, delta = loss_and_delta(output, loss, zs[-1], acts[-1], y)
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        W, _ = weights[l]
        grads[l] = (batch_sum(acts[l], delta), batch_sum(np.ones((len(delta), 1)), delta)[0])
        delta = delta @ W.T
        if l > 0:
            delta = delta * derivative(names[l - 1], zs[l - 1])
    return value, ravel(grads, bias), delta


@dataclass
class Optimizer:
    """The optimizer updates of ``simulator/kernels/optim.py`` for one population, row by row."""

    kind: str
    lr: np.ndarray  # (P,)
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    t: int = 0
    m: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)

    def update(self, p: int, row: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The new parameter row of agent ``p`` (``t`` must already count this step)."""
        norm = np.sqrt(np.sum(g * g))
        if self.clip_norm > 0 and norm > self.clip_norm:
            g = g * (self.clip_norm / norm)
        g = g + self.weight_decay * row
        lr = self.lr[p]
        if self.kind == "sgd":
            return row - lr * g
        if self.kind == "momentum":
            self.m[p] = self.momentum * self.m.get(p, 0 * row) + g
            return row - lr * self.m[p]
        assert self.kind == "adam"
        self.m[p] = self.beta1 * self.m.get(p, 0 * row) + (1 - self.beta1) * g
        self.v[p] = self.beta2 * self.v.get(p, 0 * row) + (1 - self.beta2) * g * g
        m_hat = self.m[p] / (1 - self.beta1**self.t)
        v_hat = self.v[p] / (1 - self.beta2**self.t)
        return row - lr * m_hat / (np.sqrt(v_hat) + self.eps)


@dataclass
class OraclePopulation:
    """A population trained agent by agent with the definitions above.

    ``params`` (P, n_params) is a float64 copy (or of ``dtype``); X, Y may be per agent
    (P, B, .) or shared (B, .). ``bias=False``: rows hold the weights only, every bias is 0.
    """

    params: np.ndarray
    layers: tuple[int, ...]
    activation: object = "tanh"
    output: str = "linear"
    loss: str = "mse"
    optimizer: str = "sgd"
    lr: object = 0.05
    opt_kwargs: dict = field(default_factory=dict)
    dtype: object = np.float64
    bias: bool = True

    def __post_init__(self):
        self.params = np.array(self.params, dtype=self.dtype)
        P = self.params.shape[0]
        lr = np.broadcast_to(np.asarray(self.lr, dtype=self.dtype), (P,))
        self.opt = Optimizer(self.optimizer, lr, **self.opt_kwargs)

    def _data(self, X, Y):
        P = self.params.shape[0]
        X = np.asarray(X, dtype=self.dtype)
        Y = np.asarray(Y, dtype=self.dtype)
        X = np.broadcast_to(X, (P, *X.shape[-2:])) if X.ndim == 2 else X
        Y = np.broadcast_to(Y, (P, *Y.shape[-2:])) if Y.ndim == 2 else Y
        return X, Y

    def gradients(self, X, Y):
        """(grads (P, n_params), losses (P,), input gradients (P, B, d_in))."""
        X, Y = self._data(X, Y)
        out = [
            agent_gradients(
                row, self.layers, self.activation, self.output, self.loss, X[p], Y[p], self.bias
            )
            for p, row in enumerate(self.params)
        ]
        losses = np.array([o[0] for o in out])
        return np.stack([o[1] for o in out]), losses, np.stack([o[2] for o in out])

    def train_step(self, X, Y) -> np.ndarray:
        """One update of every agent; returns the losses before it."""
        grads, losses, _ = self.gradients(X, Y)
        self.opt.t += 1
        for p in range(self.params.shape[0]):
            self.params[p] = self.opt.update(p, self.params[p], grads[p])
        return losses

    def predict(self, X) -> np.ndarray:
        """Outputs (P, B, K)."""
        X, _ = self._data(X, np.zeros((1, 1)))
        return np.stack(
            [
                forward(row, self.layers, self.activation, self.output, X[p], self.bias)[1][-1]
                for p, row in enumerate(self.params)
            ]
        )

    def pre_activations(self, X) -> list[np.ndarray]:
        """Pre-activations of every layer, each (P, B, d_l)."""
        X, _ = self._data(X, np.zeros((1, 1)))
        per_agent = [
            forward(row, self.layers, self.activation, self.output, X[p], self.bias)[0]
            for p, row in enumerate(self.params)
        ]
        return [np.stack([zs[l] for zs in per_agent]) for l in range(len(self.layers) - 1)]


def make_data(
    rng: np.random.Generator,
    layers: tuple[int, ...],
    output: str,
    loss: str,
    n_agents: int,
    batch: int,
    shared_x: bool = False,
    soft: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets that suit the loss: X (P or -, B, d_in), Y (P, B, K) in float64.

    mse: Gaussian targets (0/1 for a step output); bce: probabilities in (0, 1);
    cross_entropy: soft probability rows (``soft``) or one-hot rows.
    """
    d_in, K = layers[0], layers[-1]
    X = rng.standard_normal((batch, d_in) if shared_x else (n_agents, batch, d_in))
    shape = (n_agents, batch, K)
    if loss == "mse" and output == "step":
        Y = (rng.random(shape) < 0.5).astype(float)
    elif loss == "mse":
        Y = rng.standard_normal(shape)
    elif loss == "bce":
        Y = rng.random(shape)
    elif soft:
        Y = rng.random(shape) + 0.1
        Y /= Y.sum(axis=-1, keepdims=True)
    else:
        Y = np.eye(K)[rng.integers(0, K, shape[:2])]
    return X, Y
