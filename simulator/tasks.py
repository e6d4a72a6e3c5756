"""Environments: seeded, vectorized per-agent data streams.

A task draws one minibatch per agent per step: ``X, Y = task.sample(step, batch)`` with ``X``
float64 (P, B, d_in) and ``Y`` float64 (P, B, d_out). The batch is a pure function of
``(seed, step, batch)``: it is drawn from ``SeedSequence(seed, spawn_key=(1, step))``, so the
order of calls never matters. Construction (teachers, probe sets, splits) draws each component
from its own ``SeedSequence(seed, spawn_key=(0, k, ...))``, streams no step can reach; so the same
seed gives the same base teacher and probe whatever the other parameters.

Every task also fixes a probe set ``probe_X`` (n_probe, d_in), the same for every agent, with
its truth ``probe_Y`` (P or 1, n_probe, d_out): the basis of function-space measures.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from simulator.config import ParameterError, check_choice, check_int, check_number, fail

__all__ = [
    "TASKS",
    "Digits",
    "GaussianMixture",
    "LinearlySeparable",
    "RingMixture",
    "Task",
    "TeacherRegression",
    "make_task",
    "task_params",
]

_BUILD, _DATA = 0, 1
_CHUNK = 1 << 22  # elements of the largest temporary in a chunked teacher forward pass


class Task:
    """Base class of every environment.

    Attributes
    ----------
    name : str
        Registry name (see :data:`TASKS`).
    n_agents, seed : int
    communities : int64 array (n_agents,) or None
    d_in, d_out : int
        Input and output widths the agents' networks need.
    kind : str
        ``"regression"`` or ``"classification"``.
    output, loss : str
        The Population ``output`` and ``loss`` the task is made for.
    probe_X : float64 (n_probe, d_in)
    probe_Y : float64 (P or 1, n_probe, d_out)
        Truth on the probe; first axis 1 when every agent's environment is the same.
    probe_labels : int64 (P or 1, n_probe) or None
        Class labels for classification tasks.
    settings : dict
        The keyword parameters the task was built with (for a run's config sidecar).
    """

    name = "task"
    kind = "regression"
    output = "linear"
    loss = "mse"
    probe_labels: np.ndarray | None = None

    def __init__(self, n_agents: int, seed: int, communities: Any, settings: dict) -> None:
        self.n_agents = check_int("n_agents", n_agents, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.communities = _check_communities(communities, self.n_agents)
        self.settings = settings

    def _stream(self, *key: int) -> np.random.Generator:
        """Construction stream ``key`` (one per drawn component, so components never shift)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_BUILD, *key)))

    def sample(self, step: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """One minibatch per agent at ``step``: X (P, B, d_in), Y (P, B, d_out), float64."""
        step = check_int("step", step, low=0)
        batch = check_int("batch", batch, low=1)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_DATA, step)))
        return self._sample(rng, step, batch)

    def _sample(self, rng: np.random.Generator, step: int, batch: int) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def probe_Y_at(self, step: int) -> np.ndarray:
        """Truth on the probe at ``step``, float64 (P or 1, n_probe, d_out)."""
        check_int("step", step, low=0)
        return self.probe_Y

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}(n_agents={self.n_agents}, seed={self.seed}, {args})"


def _check_communities(communities: Any, n_agents: int) -> np.ndarray | None:
    if communities is None:
        return None
    c = np.asarray(communities)
    if c.shape != (n_agents,) or not np.issubdtype(c.dtype, np.integer) or np.any(c < 0):
        raise fail(
            "communities",
            communities,
            f"None or an integer array of shape ({n_agents},) with values >= 0",
        )
    return c.astype(np.int64)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


# ---------------------------------------------------------------------------- regression
class TeacherRegression(Task):
    """Regression on the outputs of a random one-hidden-layer tanh teacher network.

    ``y = c * (tanh(x W1 + b1) W2) + noise * N(0, 1)`` with ``x ~ N(0, I)``; ``c`` scales the
    base teacher's outputs to unit variance. Teacher weights: ``W1 ~ N(0, 1/d_in)``,
    ``b1 ~ N(0, 0.25)``, ``W2 ~ N(0, 1/teacher_hidden)``.

    Parameters
    ----------
    heterogeneity : str
        ``"shared"``: one teacher for all. ``"agent"``: agent i's teacher weights are
        ``base + diversity * delta_i``, ``delta_i`` drawn like the base. ``"community"``: one
        ``delta`` per community (needs ``communities``).
    diversity : float >= 0
    noise : float >= 0
        Standard deviation of the label noise (the probe truth is noiseless).
    drift_step : int >= 1 or None
        From this step on the base teacher is ``sqrt(1 - s^2) * base + s * new`` with
        ``s = drift_scale`` in [0, 1] and ``new`` a fresh random teacher (variance-preserving;
        ``s = 1`` replaces it). The perturbations ``delta`` are kept.
    n_probe : int
        Probe size; ``probe_Y`` is the truth at the step most recently passed to
        :meth:`sample` (step 0 before any); :meth:`probe_Y_at` gives it at any step.
    """

    name = "teacher"

    def __init__(
        self,
        n_agents: int,
        d_in: int = 8,
        d_out: int = 1,
        teacher_hidden: int = 16,
        heterogeneity: str = "shared",
        diversity: float = 0.5,
        noise: float = 0.0,
        drift_step: int | None = None,
        drift_scale: float = 1.0,
        n_probe: int = 256,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        settings = dict(locals())
        for k in ("self", "n_agents", "seed", "communities", "__class__"):
            settings.pop(k, None)
        super().__init__(n_agents, seed, communities, settings)
        self.d_in = check_int("d_in", d_in, low=1)
        self.d_out = check_int("d_out", d_out, low=1)
        self.hidden = check_int("teacher_hidden", teacher_hidden, low=1)
        choices = ("shared", "agent", "community")
        self.heterogeneity = check_choice("heterogeneity", heterogeneity, choices)
        self.diversity = check_number("diversity", diversity, 0.0)
        self.noise = check_number("noise", noise, 0.0)
        if drift_step is not None:
            drift_step = check_int("drift_step", drift_step, low=1)
        self.drift_step = drift_step
        self.drift_scale = check_number("drift_scale", drift_scale, 0.0, 1.0)
        n_probe = check_int("n_probe", n_probe, low=1)
        if heterogeneity == "community" and self.communities is None:
            raise fail(
                "heterogeneity",
                heterogeneity,
                "'shared' or 'agent' when no communities are given (build the graph with "
                "communities, e.g. graph='sbm', or pass communities=...)",
            )
        self._base = self._draw_teacher(0, 1)
        n_t = {"shared": 0, "agent": self.n_agents}.get(heterogeneity)
        n_t = int(self.communities.max()) + 1 if n_t is None else n_t
        self._delta = self._draw_teacher(1, n_t) if n_t else None
        self._teacher_of = {"agent": np.arange(self.n_agents), "community": self.communities}.get(
            heterogeneity
        )
        new = self._draw_teacher(2, 1)
        s = self.drift_scale
        mix = zip(self._base, new)
        self._drifted = [(np.sqrt(1 - s * s) * b + s * w).astype(np.float32) for b, w in mix]
        z = self._stream(3).standard_normal((8192, self.d_in))
        self._scale = 1.0
        self._scale = 1.0 / np.maximum(self._forward(z[None], self._base, None)[0].std(0), 1e-12)
        self.probe_X = self._stream(4).standard_normal((n_probe, self.d_in))
        self._probe_cache: dict[bool, np.ndarray] = {}
        self._last_step = 0

    def _draw_teacher(self, key: int, t: int) -> list[np.ndarray]:
        """``t`` random teachers [W1 (t, d_in, h), b1 (t, 1, h), W2 (t, h, d_out)], float32.

        Teacher i is the same whatever ``t`` (each array has its own stream, drawn row-major).
        """
        shapes = [(t, self.d_in, self.hidden), (t, 1, self.hidden), (t, self.hidden, self.d_out)]
        scales = [1 / np.sqrt(self.d_in), 0.5, 1 / np.sqrt(self.hidden)]
        return [
            (self._stream(key, i).standard_normal(shape) * sc).astype(np.float32)
            for i, (shape, sc) in enumerate(zip(shapes, scales))
        ]

    def _forward(self, X: np.ndarray, base: list, agents: slice | None) -> np.ndarray:
        """Outputs float64 (C, B, d_out) for X (C or 1, B, d_in) of the teachers of ``agents``
        (None: the base teacher alone). The hidden layer is computed in float32 (fast tanh)."""
        X32 = X.astype(np.float32)
        if agents is None:
            W1, b1, W2 = (w[0] for w in base)
            Ht = W1.T @ X32.reshape(-1, self.d_in).T  # (h, C * B): BLAS's fast orientation
            Ht += b1.T
            np.tanh(Ht, out=Ht)
            return ((W2.T @ Ht).T * self._scale).reshape(*X.shape[:2], self.d_out)
        t = self._teacher_of[agents]
        W1, b1, W2 = (b + self.diversity * dl[t] for b, dl in zip(base, self._delta))
        H = X32 @ W1
        H += b1
        np.tanh(H, out=H)
        return (H @ W2) * self._scale

    def _outputs(self, X: np.ndarray, step: int, n_rows: int) -> np.ndarray:
        """Targets (n_rows, B, d_out) for X (n_rows or 1, B, d_in), in chunks of agents."""
        drifted = self.drift_step is not None and step >= self.drift_step
        base = self._drifted if drifted else self._base
        out = np.empty((n_rows, X.shape[1], self.d_out))
        c = max(1, _CHUNK // (X.shape[1] * max(self.hidden, self.d_in)))
        for lo in range(0, n_rows, c):
            sl = slice(lo, min(lo + c, n_rows))
            Xc = X if len(X) == 1 else X[sl]
            out[sl] = self._forward(Xc, base, None if self._delta is None else sl)
        return out

    def _sample(self, rng: np.random.Generator, step: int, batch: int) -> tuple[np.ndarray, ...]:
        self._last_step = step
        X = rng.standard_normal((self.n_agents, batch, self.d_in))
        Y = self._outputs(X, step, self.n_agents)
        if self.noise > 0:
            Y += self.noise * rng.standard_normal(Y.shape)
        return X, Y

    def teacher_outputs(self, X: Any, step: int = 0) -> np.ndarray:
        """Noiseless targets of every agent's teacher at ``step``, float64 (P, B, d_out).

        ``X`` is (P, B, d_in), one batch per agent, or (B, d_in) shared by all agents.
        """
        step = check_int("step", step, low=0)
        X = np.asarray(X, dtype=np.float64)
        X = X[None] if X.ndim == 2 else X
        if X.ndim != 3 or X.shape[2] != self.d_in or len(X) not in (1, self.n_agents):
            raise fail("X.shape", X.shape, f"(B, {self.d_in}) or ({self.n_agents}, B, {self.d_in})")
        return self._outputs(X, step, self.n_agents)

    def probe_Y_at(self, step: int) -> np.ndarray:
        """Noiseless truth on the probe at ``step``: (1 if shared else P, n_probe, d_out)."""
        step = check_int("step", step, low=0)
        drifted = self.drift_step is not None and step >= self.drift_step
        if drifted not in self._probe_cache:
            rows = 1 if self._delta is None else self.n_agents
            y = np.ascontiguousarray(self._outputs(self.probe_X[None], step, rows))
            y.setflags(write=False)
            self._probe_cache[drifted] = y
        return self._probe_cache[drifted]

    @property
    def probe_Y(self) -> np.ndarray:
        return self.probe_Y_at(self._last_step)


# ---------------------------------------------------------------------------- classification
class _Classes(Task):
    """Shared machinery of classification tasks with optional non-IID class subsets."""

    kind = "classification"
    output = "softmax"
    loss = "cross_entropy"

    def _setup_classes(self, n_classes: int, classes_per_agent: Any, n_probe: int) -> int:
        self.n_classes = n_classes
        k = n_classes if classes_per_agent is None else classes_per_agent
        self.classes_per_agent = check_int("classes_per_agent", k, low=1, high=n_classes)
        who = np.arange(self.n_agents) if self.communities is None else self.communities
        self.agent_classes = (who[:, None] + np.arange(self.classes_per_agent)) % n_classes
        n_probe = check_int("n_probe", n_probe, low=n_classes)
        return n_probe - n_probe % n_classes  # every class the same share of the probe

    def _draw_classes(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Class of every sample, int64 (P, B): uniform over each agent's classes."""
        j = rng.integers(0, self.classes_per_agent, (self.n_agents, batch))
        return np.take_along_axis(self.agent_classes, j, axis=1)

    def _set_probe(self, X: np.ndarray, labels: np.ndarray) -> None:
        self.probe_X = X
        self.probe_labels = labels[None].astype(np.int64)
        self.probe_Y = _one_hot(labels, self.d_out)[None]


class GaussianMixture(_Classes):
    """Gaussian classes with unit covariance around means at distance ``separation`` from 0.

    Means: on a circle in the first two inputs when ``d_in < n_classes`` (evenly spaced on
    [-separation, separation] when ``d_in == 1``); vertices of a regular simplex when
    ``d_in >= n_classes``. Targets are one-hot (P, B, n_classes).

    Non-IID: with ``classes_per_agent = k < n_classes`` agent i sees only classes
    ``(i + j) mod n_classes`` for ``j < k`` (``(c + j)`` for its community ``c`` when
    ``communities`` are given); ``agent_classes`` (P, k) lists them. The probe is IID and
    balanced (``n_probe`` is rounded down to a multiple of ``n_classes``).
    """

    name = "mixture"

    def __init__(
        self,
        n_agents: int,
        n_classes: int = 4,
        d_in: int = 2,
        classes_per_agent: int | None = None,
        separation: float = 3.0,
        n_probe: int = 400,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        settings = {"n_classes": n_classes, "d_in": d_in, "classes_per_agent": classes_per_agent}
        settings |= {"separation": separation, "n_probe": n_probe}
        super().__init__(n_agents, seed, communities, settings)
        self.d_in = check_int("d_in", d_in, low=1)
        self.d_out = check_int("n_classes", n_classes, low=2)
        self.separation = check_number("separation", separation, 0.0)
        n_probe = self._setup_classes(self.d_out, classes_per_agent, n_probe)
        self.means = self._means(self.d_out, self.d_in, self.separation)
        labels = np.arange(n_probe) % self.d_out
        self._set_probe(
            self.means[labels] + self._stream(0).standard_normal((n_probe, d_in)), labels
        )

    @staticmethod
    def _means(k: int, d: int, r: float) -> np.ndarray:
        m = np.zeros((k, d))
        if d == 1:
            m[:, 0] = np.linspace(-r, r, k)
        elif d < k:
            angle = 2 * np.pi * np.arange(k) / k
            m[:, 0], m[:, 1] = r * np.cos(angle), r * np.sin(angle)
        else:
            v = np.eye(k) - 1.0 / k
            m[:, :k] = r * v / np.linalg.norm(v, axis=1, keepdims=True)
        return m

    def _sample(self, rng: np.random.Generator, step: int, batch: int) -> tuple[np.ndarray, ...]:
        cls = self._draw_classes(rng, batch)
        X = self.means[cls] + rng.standard_normal((self.n_agents, batch, self.d_in))
        return X, _one_hot(cls, self.d_out)


class Digits(_Classes):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), pixels / 16.

    64 inputs, 10 classes, one-hot targets. A stratified, balanced probe of ``n_probe`` images
    (rounded down to a multiple of 10, at most 1700) is held out; agents sample with
    replacement from the rest, each from its own classes (non-IID as in
    :class:`GaussianMixture`). Needs scikit-learn: ``pip install neuropop[digits]``.
    """

    name = "digits"

    def __init__(
        self,
        n_agents: int,
        classes_per_agent: int | None = None,
        n_probe: int = 360,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        settings = {"classes_per_agent": classes_per_agent, "n_probe": n_probe}
        super().__init__(n_agents, seed, communities, settings)
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ParameterError(
                "task='digits' needs scikit-learn, which is not installed: "
                "pip install neuropop[digits]"
            ) from None
        self.d_in, self.d_out = 64, 10
        n_probe = self._setup_classes(10, classes_per_agent, n_probe)
        if n_probe > 1700:
            raise fail("n_probe", n_probe, "at most 1700 (170 images per class held out)")
        data = load_digits()
        X, y = data.data / 16.0, data.target.astype(np.int64)
        perm = self._stream(0).permutation(len(y))
        order = perm[np.argsort(y[perm], kind="stable")]  # shuffled within each class
        counts = np.bincount(y, minlength=10)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        per = n_probe // 10
        rank = np.arange(len(y)) - np.repeat(starts, counts)
        held = order[rank < per]
        held = held[np.argsort(np.arange(len(held)) % per, kind="stable")]  # interleave classes
        train = order[rank >= per]
        self._X, self._counts = X[train], counts - per
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]])
        self._set_probe(X[held], y[held])

    def _sample(self, rng: np.random.Generator, step: int, batch: int) -> tuple[np.ndarray, ...]:
        cls = self._draw_classes(rng, batch)
        u = rng.random(cls.shape)
        idx = self._starts[cls] + (u * self._counts[cls]).astype(np.int64)
        return self._X[idx], _one_hot(cls, 10)


class LinearlySeparable(Task):
    """Two classes split by a random hyperplane: the perceptron's world.

    ``x ~ N(0, I)`` conditioned on ``|w . x + b| >= margin`` (``w`` a random unit vector in
    ``normal``, ``b ~ U(-0.5, 0.5)`` in ``offset``; exact inverse-CDF sampling, no
    rejection); label ``1`` if ``w . x + b > 0`` else ``0`` as a single output (P, B, 1).
    Made for ``output="step"``, ``loss="mse"``. ``communities`` is accepted and unused.
    """

    name = "separable"
    kind = "classification"
    output = "step"
    loss = "mse"

    def __init__(
        self,
        n_agents: int,
        d_in: int = 2,
        margin: float = 0.1,
        n_probe: int = 400,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        settings = {"d_in": d_in, "margin": margin, "n_probe": n_probe}
        super().__init__(n_agents, seed, communities, settings)
        self.d_in, self.d_out = check_int("d_in", d_in, low=1), 1
        self.margin = check_number("margin", margin, 0.0, 5.0)
        n_probe = check_int("n_probe", n_probe, low=1)
        rng = self._stream(0)
        w = rng.standard_normal(self.d_in)
        self.normal, self.offset = w / np.linalg.norm(w), float(rng.uniform(-0.5, 0.5))
        X, Y = self._draw(self._stream(1), (1, n_probe))
        self.probe_X, self.probe_Y = X[0], Y
        self.probe_labels = Y[..., 0].astype(np.int64)

    def _draw(self, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        w, b, m = self.normal, self.offset, self.margin
        z = rng.standard_normal((*shape, self.d_in))
        z -= (z @ w)[..., None] * w  # the part orthogonal to w
        lo, hi = ndtr(-b - m), ndtr(-b + m)  # s = w . x must avoid (-b - m, -b + m)
        u = rng.random(shape) * (lo + 1.0 - hi)
        u_lo, u_hi = np.clip(u, 1e-300, lo), np.clip(hi + u - lo, hi, 1 - 1e-16)
        s = np.where(u < lo, ndtri(u_lo), ndtri(u_hi))
        X = z + s[..., None] * w
        return X, (s + b > 0).astype(np.float64)[..., None]

    def _sample(self, rng: np.random.Generator, step: int, batch: int) -> tuple[np.ndarray, ...]:
        return self._draw(rng, (self.n_agents, batch))


class RingMixture(Task):
    """A 2-D mixture of ``n_modes`` Gaussians on a circle: the classic GAN mode-collapse test.

    ``sample`` returns latent codes ``X = z ~ N(0, I)`` (P, B, z_dim) and real points
    ``Y`` (P, B, 2): a generator learns to map the first to the distribution of the second
    (see :mod:`simulator.gan`). ``probe_X`` is a fixed set of latent codes, so every agent's
    generator is compared on the same inputs; ``probe_Y`` is a fixed real sample (a reference,
    not a per-code truth). ``centers`` (n_modes, 2) and ``mode_std`` describe the modes.
    """

    name = "ring"
    kind = "generative"
    output = "linear"
    loss = "mse"

    def __init__(
        self,
        n_agents: int,
        n_modes: int = 8,
        radius: float = 2.0,
        mode_std: float = 0.05,
        z_dim: int = 4,
        n_probe: int = 512,
        seed: int = 0,
        communities: Any = None,
    ) -> None:
        settings = {
            "n_modes": n_modes,
            "radius": radius,
            "mode_std": mode_std,
            "z_dim": z_dim,
            "n_probe": n_probe,
        }
        super().__init__(n_agents, seed, communities, settings)
        self.n_modes = check_int("n_modes", n_modes, low=1, high=64)
        self.radius = check_number("radius", radius, 0.0, 100.0, low_open=True)
        self.mode_std = check_number("mode_std", mode_std, 0.0, 10.0, low_open=True)
        self.d_in, self.d_out = check_int("z_dim", z_dim, low=1, high=64), 2
        n_probe = check_int("n_probe", n_probe, low=1)
        angles = 2 * np.pi * np.arange(self.n_modes) / self.n_modes
        self.centers = self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        self.probe_X = self._stream(0).standard_normal((n_probe, self.d_in))
        self.probe_Y = self._real(self._stream(1), (1, n_probe))

    def _real(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        modes = rng.integers(0, self.n_modes, shape)
        return self.centers[modes] + self.mode_std * rng.standard_normal((*shape, 2))

    def _sample(self, rng: np.random.Generator, step: int, batch: int) -> tuple[np.ndarray, ...]:
        z = rng.standard_normal((self.n_agents, batch, self.d_in))
        return z, self._real(rng, (self.n_agents, batch))


# ---------------------------------------------------------------------------- registry
TASKS: dict[str, type[Task]] = {
    "teacher": TeacherRegression,
    "mixture": GaussianMixture,
    "digits": Digits,
    "separable": LinearlySeparable,
    "ring": RingMixture,
}


def task_params(name: str) -> dict[str, Any]:
    """The keyword parameters of task ``name`` with their defaults."""
    check_choice("task", name, TASKS)
    sig = inspect.signature(TASKS[name].__init__)
    skip = {"self", "n_agents", "seed", "communities"}
    return {k: p.default for k, p in sig.parameters.items() if k not in skip}


def make_task(
    name: str, n_agents: int, seed: int = 0, communities: Any = None, **params: Any
) -> Task:
    """Build task ``name`` from :data:`TASKS` with its keyword ``params``.

    Raises :class:`ParameterError` for an unknown name or parameter (listing what is
    allowed) and for an invalid value (naming it).
    """
    allowed = task_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ParameterError(
            f"task={name!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}."
        )
    return TASKS[name](n_agents, seed=seed, communities=communities, **params)
