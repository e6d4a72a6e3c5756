"""Classification tasks: Gaussian mixtures, scikit-learn's digits, a separable hyperplane."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from simulator.config import ParameterError, check_int, check_number, fail
from simulator.kernels import data as D
from simulator.tasks.base import Task, check_task_memory, one_hot

__all__ = ["Digits", "GaussianMixture", "LinearlySeparable"]


class _Classes(Task):
    """Shared machinery of classification tasks with optional non-IID class subsets."""

    kind = "classification"
    output = "softmax"
    loss = "cross_entropy"

    def _setup_classes(
        self,
        n_classes: int,
        classes_per_agent: Any,
        n_probe: int,
        check_memory: Callable[[int], None] | None = None,
    ) -> int:
        """Check the class choices and ``n_probe`` (``check_memory(n_probe)`` before the first
        array); return ``n_probe`` rounded down to a multiple of ``n_classes``."""
        self.n_classes = n_classes
        k = n_classes if classes_per_agent is None else classes_per_agent
        self.classes_per_agent = check_int("classes_per_agent", k, low=1, high=n_classes)
        if check_memory is not None:
            check_memory(check_int("n_probe", n_probe, low=1))
        n_probe = check_int("n_probe", n_probe, low=n_classes)
        who = np.arange(self.n_agents) if self.communities is None else self.communities
        self.agent_classes = (who[:, None] + np.arange(self.classes_per_agent)) % n_classes
        return n_probe - n_probe % n_classes  # every class the same share of the probe

    def _choices(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows of class choices (R, k), row of each agent (P,)) for the kernels."""
        if self.communities is None:
            return self.agent_classes, np.arange(self.n_agents, dtype=np.int64)
        k, c = self.classes_per_agent, np.arange(int(self.communities.max()) + 1)
        rows = (c[:, None] + np.arange(k)) % self.n_classes
        return rows.astype(np.int64), self.communities

    def _set_probe(self, X: np.ndarray, labels: np.ndarray) -> None:
        self.probe_X = X
        self.probe_labels = labels[None].astype(np.int64)
        self.probe_Y = one_hot(labels, self.d_out)[None]


class GaussianMixture(_Classes):
    """Gaussian classes with unit covariance around means at distance ``separation`` from 0.

    Means: on a circle in the first two inputs when ``d_in < n_classes`` (evenly spaced on
    [-separation, separation] when ``d_in == 1``); vertices of a regular simplex when
    ``d_in >= n_classes``. Targets are one-hot (P, B, n_classes).

    Non-IID: with ``classes_per_agent = k < n_classes`` agent i sees only classes
    ``(i + j) mod n_classes`` for ``j < k`` (``(c + j)`` for its community ``c`` when
    ``communities`` are given); ``agent_classes`` (P, k) lists them. The probe is IID and
    balanced (``n_probe`` is rounded down to a multiple of ``n_classes``).

    Sizes whose arrays would not fit in this machine's memory are refused before anything is
    allocated, and so is a ``separation`` above half the data limit of the dtype
    (:func:`simulator.tasks.base.data_limit`: ~9e15 for float32 data).
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
        self._check_range(np.float64)
        n_probe = self._setup_classes(self.d_out, classes_per_agent, n_probe, self._check_memory)
        self.means = self._means(self.d_out, self.d_in, self.separation)
        labels = np.arange(n_probe) % self.d_out
        self._set_probe(
            self.means[labels] + self._stream(0).standard_normal((n_probe, d_in)), labels
        )

    def _check_memory(self, n_probe: int) -> None:
        sizes = {"n_classes": self.d_out, "d_in": self.d_in, "n_probe": n_probe}
        check_task_memory(self.name, self._memory, sizes, f" and {self.n_agents:,} agents")

    def _memory(self, n_classes: int, d_in: int, n_probe: int) -> int:
        """Bytes the task allocates: every agent's classes (int64, and a temporary), the
        means (with a (k, k) simplex when ``d_in >= n_classes``), the probe (three (n_probe,
        d_in) arrays while it is drawn), its labels and one-hot truth."""
        k = n_classes if self.settings["classes_per_agent"] is None else self.classes_per_agent
        simplex = 3 * n_classes * n_classes if d_in >= n_classes else 0
        return 8 * (
            2 * self.n_agents * k
            + n_classes * d_in
            + simplex
            + n_probe * (3 * d_in + n_classes + 2)
        )

    def _largest(self, limit: float) -> list[tuple[str, float, float]]:
        """``|x| <= separation + |N(0, 1)|``: the separation may take half of ``limit``."""
        return [("separation", self.separation, limit / 2)]

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

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        D.mixture_sample(X, Y, *self._k, step, *self._choices(), self.means)


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
        self._X, self._counts = np.ascontiguousarray(X[train]), counts - per
        self._X32 = self._X.astype(np.float32)
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]])
        self._set_probe(X[held], y[held])

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        data = self._X32 if X.dtype == np.float32 else self._X
        D.digits_sample(X, Y, *self._k, step, *self._choices(), data, self._starts, self._counts)


class LinearlySeparable(Task):
    """Two classes split by a random hyperplane: the perceptron's world.

    ``x ~ N(0, I)`` conditioned on ``|w . x + b| >= margin`` (``w`` a random unit vector in
    ``normal``, ``b ~ U(-0.5, 0.5)`` in ``offset``; exact inverse-CDF sampling, no
    rejection); label ``1`` if ``w . x + b > 0`` else ``0`` as a single output (P, B, 1).
    Made for ``output="step"``, ``loss="mse"``. ``communities`` is accepted and unused.
    ``d_in`` and ``n_probe`` whose probe would not fit in this machine's memory are refused.
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
        sizes = {"d_in": self.d_in, "n_probe": n_probe}
        check_task_memory(self.name, self._memory, sizes)
        rng = self._stream(0)
        w = rng.standard_normal(self.d_in)
        self.normal, self.offset = w / np.linalg.norm(w), float(rng.uniform(-0.5, 0.5))
        X, Y = self._draw_probe(self._stream(1), n_probe)
        self.probe_X, self.probe_Y = X, Y[None]
        self.probe_labels = self.probe_Y[..., 0].astype(np.int64)

    @staticmethod
    def _memory(d_in: int, n_probe: int) -> int:
        """Bytes the probe takes while it is drawn: three (n_probe, d_in) arrays, eight of
        (n_probe,) and the normal."""
        return 8 * (3 * n_probe * d_in + 8 * n_probe + 2 * d_in)

    def _draw_probe(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """A fixed probe drawn with NumPy from ``rng``, like the batches: (n, d_in), (n, 1)."""
        w, b = self.normal, self.offset
        lo, up = self._tails
        z = rng.standard_normal((n, self.d_in))
        z -= (z @ w)[:, None] * w  # the part orthogonal to w
        u = rng.random(n) * (lo + up)
        upper = -ndtri(np.clip(lo + up - u, 1e-300, None))  # = ndtri(1 - up + (u - lo)), precisely
        s = np.where(u < lo, ndtri(np.clip(u, 1e-300, None)), upper)
        return z + s[:, None] * w, (s + b > 0).astype(np.float64)[:, None]

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        lo, up = self._tails
        D.separable_sample(X, Y, *self._k, step, self.normal, self.offset, lo, up)

    @property
    def _tails(self) -> tuple[float, float]:
        """Probability mass of ``w . x`` below and above the margin band."""
        b, m = self.offset, self.margin
        return float(ndtr(-b - m)), float(ndtr(b - m))
