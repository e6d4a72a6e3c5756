"""The workload and the implementations ("peers") that ``benchmarks.train_step`` times.

Every peer does the same work as :meth:`simulator.Population.train_step`: for each agent, an
MLP with tanh hidden layers and a linear output, MSE loss ``mean_(b,k) (o - y)**2`` on the
agent's own minibatch, one plain SGD step ``p <- p - lr * grad``, and the loss *before* the
update. All peers start from the same parameters (``Population``'s Xavier-uniform init) and
read the same data, so their losses agree step by step (checked by ``check_agreement``).

Peers
-----
* ``population``: ``Population.train_step`` (the fused Numba kernel).
* ``numpy``: batched NumPy, ``np.matmul`` over the agent axis, buffers preallocated.
* ``numpy_threads``: the same, agents split into one chunk per thread in a thread pool
  (NumPy releases the GIL); only built with 2 or more threads.
* ``jax``: ``jit(vmap(value_and_grad(loss)))`` with the SGD update inside the jitted function.
* ``mesa_loop``: one ``mesa.Agent`` per network, each holding its own numpy weights and doing
  its own forward, backward and SGD step, stepped by ``model.agents.do("step")``.

Each peer is built from a :class:`Workload` and exposes ``step()`` (one training step of every
agent it holds) and ``losses()`` (the last step's per-agent losses as a numpy array).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator import Population
from simulator.layout import ParamLayout

LR = 0.05


@dataclass(frozen=True)
class Workload:
    """One benchmark problem.

    Attributes
    ----------
    layers : tuple of int
        Widths ``(d_in, hidden..., d_out)``.
    params : float32 or float64, shape (P, n_params)
        Initial parameters in the canonical layout (never modified; peers copy them).
    X : same dtype, shape (P, B, d_in)
        Each agent's minibatch (the same one every step).
    Y : same dtype, shape (P, B, d_out)
        Targets: a random tanh teacher of X plus noise.
    lr : float
        SGD learning rate.
    """

    layers: tuple[int, ...]
    params: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    lr: float = LR

    @property
    def n_agents(self) -> int:
        """Number of agents P."""
        return self.params.shape[0]

    @property
    def batch(self) -> int:
        """Minibatch size B per agent."""
        return self.X.shape[1]

    @property
    def dtype(self) -> np.dtype:
        """float32 or float64."""
        return self.params.dtype

    @property
    def layout(self) -> ParamLayout:
        """The canonical parameter layout."""
        return ParamLayout(self.layers)


def make_workload(
    layers: tuple[int, ...], n_agents: int, batch: int, dtype: str, seed: int = 0
) -> Workload:
    """Parameters from ``Population``'s own initializer and seeded synthetic data."""
    pop = Population(n_agents, layers, dtype=dtype, seed=seed, lr=LR)
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((n_agents, batch, layers[0]))
    teacher = rng.standard_normal((layers[0], layers[-1])) / np.sqrt(layers[0])
    Y = np.tanh(X @ teacher) + 0.1 * rng.standard_normal((n_agents, batch, layers[-1]))
    dt = pop.dtype
    return Workload(tuple(layers), pop.params.copy(), X.astype(dt), Y.astype(dt))


def model_flops(layers: tuple[int, ...], batch: int) -> int:
    """FLOPs of one agent's training step: 2 * multiply-adds of forward + backward.

    ``2 * B * (2 * sum_l d_{l-1} d_l + sum_{l >= 2} d_{l-1} d_l)``: the forward product and the
    weight gradient of every layer, and the input gradient of every layer but the first.
    Element-wise work (bias, tanh, loss, update) is not counted.
    """
    macs = [a * b for a, b in itertools.pairwise(layers)]
    return 2 * batch * (2 * sum(macs) + sum(macs[1:]))


class PopulationPeer:
    """``Population.train_step`` on the first ``n`` agents."""

    name = "population"

    def __init__(self, work: Workload, n: int):
        self.pop = Population.from_params(work.params[:n].copy(), work.layers, lr=work.lr)
        self.X, self.Y = work.X[:n], work.Y[:n]
        self._losses = np.empty(0)

    def step(self) -> None:
        self._losses = self.pop.train_step(self.X, self.Y)

    def losses(self) -> np.ndarray:
        return np.asarray(self._losses)


class NumpyPeer:
    """Batched NumPy over agents ``lo:hi``: np.matmul on (P, B, d) stacks, no temporaries."""

    name = "numpy"

    def __init__(self, work: Workload, n: int, lo: int = 0):
        hi, dt, L = lo + n, work.dtype, len(work.layers) - 1
        self.X, self.Y = work.X[lo:hi], work.Y[lo:hi]
        unraveled = work.layout.unravel(work.params[lo:hi])
        self.W = [np.ascontiguousarray(w) for w, _ in unraveled]  # (n, d_in, d_out)
        self.b = [np.ascontiguousarray(b[:, None, :]) for _, b in unraveled]  # (n, 1, d_out)
        B, widths = work.batch, work.layers[1:]
        self.A = [np.empty((n, B, d), dt) for d in widths]  # activations of layers 1..L
        self.D = [np.empty((n, B, d), dt) for d in widths]  # dLoss/dz of layers 1..L
        self.T = [np.empty((n, B, d), dt) for d in widths]  # scratch
        self.GW = [np.empty_like(w) for w in self.W]
        self.Gb = [np.empty_like(b) for b in self.b]
        self._losses = np.empty(n, dt)
        self.lr = dt.type(work.lr)
        self.scale = dt.type(1.0 / (B * work.layers[-1]))
        self.L = L

    def step(self) -> None:
        L, A, D, T = self.L, self.A, self.D, self.T
        a = self.X
        for l in range(L):
            np.matmul(a, self.W[l], out=A[l])
            A[l] += self.b[l]
            if l < L - 1:
                np.tanh(A[l], out=A[l])
            a = A[l]
        delta = np.subtract(A[L - 1], self.Y, out=D[L - 1])
        np.multiply(delta, delta, out=T[L - 1])
        np.sum(T[L - 1], axis=(1, 2), out=self._losses)
        self._losses *= self.scale
        delta *= 2 * self.scale
        for l in range(L - 1, -1, -1):
            a_in = self.X if l == 0 else A[l - 1]
            np.matmul(a_in.transpose(0, 2, 1), delta, out=self.GW[l])
            np.sum(delta, axis=1, keepdims=True, out=self.Gb[l])
            if l > 0:
                nxt = np.matmul(delta, self.W[l].transpose(0, 2, 1), out=D[l - 1])
                np.multiply(a_in, a_in, out=T[l - 1])
                np.subtract(1, T[l - 1], out=T[l - 1])
                nxt *= T[l - 1]
                delta = nxt
            self.GW[l] *= self.lr
            self.W[l] -= self.GW[l]
            self.Gb[l] *= self.lr
            self.b[l] -= self.Gb[l]

    def losses(self) -> np.ndarray:
        return self._losses


class NumpyThreadsPeer:
    """:class:`NumpyPeer` on ``threads`` contiguous chunks of agents, run in a thread pool."""

    name = "numpy_threads"

    def __init__(self, work: Workload, n: int, threads: int):
        edges = np.linspace(0, n, threads + 1).astype(int)
        spans = itertools.pairwise(edges)
        self.chunks = [NumpyPeer(work, int(hi - lo), int(lo)) for lo, hi in spans]
        self.pool = ThreadPoolExecutor(threads)

    def step(self) -> None:
        for f in [self.pool.submit(c.step) for c in self.chunks]:
            f.result()

    def losses(self) -> np.ndarray:
        return np.concatenate([c.losses() for c in self.chunks])


class JaxPeer:
    """``jit(vmap(value_and_grad(loss)))`` plus the SGD update, in one jitted function."""

    name = "jax"

    def __init__(self, work: Workload, n: int):
        import jax
        import jax.numpy as jnp

        if work.dtype == np.float64 and not jax.config.read("jax_enable_x64"):
            jax.config.update("jax_enable_x64", True)
        L, lr = len(work.layers) - 1, work.lr

        def loss(params: Any, x: Any, y: Any) -> Any:
            a = x
            for l, (w, b) in enumerate(params):
                a = a @ w + b
                if l < L - 1:
                    a = jnp.tanh(a)
            return jnp.mean((a - y) ** 2)

        def train(params: Any, x: Any, y: Any) -> Any:
            values, grads = jax.vmap(jax.value_and_grad(loss))(params, x, y)
            new = jax.tree.map(lambda p, g: p - lr * g, params, grads)
            return new, values

        self._jax = jax
        self._train = jax.jit(train, donate_argnums=0)
        self.params = [
            (jnp.asarray(w), jnp.asarray(b)) for w, b in work.layout.unravel(work.params[:n])
        ]
        self.X, self.Y = jnp.asarray(work.X[:n]), jnp.asarray(work.Y[:n])
        self._losses = None

    def step(self) -> None:
        self.params, self._losses = self._train(self.params, self.X, self.Y)
        self._jax.block_until_ready((self.params, self._losses))

    def losses(self) -> np.ndarray:
        return np.asarray(self._losses)


def _mesa_classes() -> tuple[type, type]:
    """The Mesa model and agent classes (built lazily so importing this module stays light)."""
    import mesa

    class MLPAgent(mesa.Agent):
        """An agent holding its own MLP as numpy arrays, trained one SGD step per ``step``."""

        def __init__(self, model: mesa.Model, layers: list, x: np.ndarray, y: np.ndarray):
            super().__init__(model)
            self.layers = [(w.copy(), b.copy()) for w, b in layers]
            self.x, self.y = x, y
            self.loss = np.nan

        def step(self) -> None:
            acts = [self.x]
            for w, b in self.layers[:-1]:
                acts.append(np.tanh(acts[-1] @ w + b))
            w, b = self.layers[-1]
            diff = acts[-1] @ w + b - self.y
            self.loss = np.mean(diff * diff)
            delta = diff * (2.0 / diff.size)
            lr = self.model.lr
            for l in range(len(self.layers) - 1, -1, -1):
                w, b = self.layers[l]
                a_in = acts[l]
                grad_w = a_in.T @ delta
                grad_b = delta.sum(axis=0)
                if l > 0:
                    delta = (delta @ w.T) * (1 - a_in * a_in)
                w -= lr * grad_w
                b -= lr * grad_b

    class MLPModel(mesa.Model):
        """A Mesa model whose step asks every agent to train itself."""

        def __init__(self, work: Workload, n: int):
            super().__init__(rng=0)
            self.lr = work.lr
            unravel = work.layout.unravel
            self.nets = [
                MLPAgent(self, unravel(work.params[i]), work.X[i], work.Y[i]) for i in range(n)
            ]

        def step(self) -> None:
            self.agents.do("step")

    return MLPModel, MLPAgent


class MesaLoopPeer:
    """What a Mesa user would write: agent objects each training its own numpy MLP."""

    name = "mesa_loop"

    def __init__(self, work: Workload, n: int):
        model_cls, _ = _mesa_classes()
        self.model = model_cls(work, n)

    def step(self) -> None:
        self.model.step()

    def losses(self) -> np.ndarray:
        return np.array([a.loss for a in self.model.nets])


def jax_available() -> bool:
    """True when JAX can be imported."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def build_peers(
    work: Workload, threads: int, mesa_agents: int, with_jax: bool = True
) -> dict[str, Any]:
    """Every peer for ``work``; the Mesa loop holds only the first ``mesa_agents`` agents."""
    P = work.n_agents
    peers: dict[str, Any] = {
        "population": PopulationPeer(work, P),
        "numpy": NumpyPeer(work, P),
    }
    if threads > 1:
        peers["numpy_threads"] = NumpyThreadsPeer(work, P, threads)
    if with_jax and jax_available():
        peers["jax"] = JaxPeer(work, P)
    peers["mesa_loop"] = MesaLoopPeer(work, min(mesa_agents, P))
    return peers


def check_agreement(peers: dict[str, Any], dtype: np.dtype) -> dict[str, float]:
    """Run two steps of every (fresh) peer and compare its losses with ``population``'s.

    The first step's losses check the forward pass and the loss; the second step's losses
    (after one SGD update) check the gradient and the update. Returns each peer's largest
    relative difference ``max |l - l_pop| / max(|l_pop|, 1e-3)`` over both steps; raises
    ``AssertionError`` if any exceeds the tolerance (1e-3 for float32, 1e-8 for float64).
    """
    tol = 1e-3 if dtype == np.float32 else 1e-8
    seen: dict[str, list[np.ndarray]] = {}
    for name, peer in peers.items():
        seen[name] = []
        for _ in range(2):
            peer.step()
            seen[name].append(peer.losses().astype(np.float64))
    errors = {}
    for name, runs in seen.items():
        err = 0.0
        for ref, got in zip(seen["population"], runs):
            ref = ref[: got.shape[0]]
            err = max(err, float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3))))
        errors[name] = err
        if not err <= tol:
            raise AssertionError(
                f"peer {name!r} disagrees with Population: relative loss difference {err:.3g}"
                f" > {tol:g}; it does not compute the same training step"
            )
    return errors
