"""Regression on the outputs of random teacher networks (shared, per agent, per community)."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.config import check_choice, check_int, check_number, fail
from simulator.kernels import data as D
from simulator.tasks.base import NORMAL_MAX, Task, check_task_memory

_F32_MAX = float(np.finfo(np.float32).max)  # the teacher's hidden layer is float32
_SCALE_ROWS = 8192  # inputs of the sample that sets the output scale

__all__ = ["TeacherRegression"]


class TeacherRegression(Task):
    """Regression on the outputs of a random one-hidden-layer tanh teacher network, or of a
    random linear teacher.

    ``y = c * (tanh(x W1 + b1) W2) + noise * N(0, 1)`` with ``x ~ N(0, I)``; ``c`` scales the
    base teacher's outputs to unit variance. Teacher weights: ``W1 ~ N(0, 1/d_in)``,
    ``b1 ~ N(0, 0.25)``, ``W2 ~ N(0, 1/teacher_hidden)``. The hidden layer is computed in
    float32 (inputs rounded to float32), with the vectorizing tanh of the training kernels.
    ``teacher_hidden=0``: a linear teacher, ``y = c * (x W1 + b1) + noise * N(0, 1)`` with
    ``W1 ~ N(0, 1/d_in)`` (d_in, d_out) and ``b1 ~ N(0, 0.25)`` (d_out,), the sum computed in
    float32: a truth that linear agents (``hidden=()``) can represent exactly, at the cost of
    drawing the inputs (a tanh teacher's hidden units cost more than a linear agent's training).

    Parameters
    ----------
    heterogeneity : str
        ``"shared"``: one teacher for all. ``"agent"``: agent i's teacher weights are
        ``base + diversity * delta_i``, ``delta_i`` drawn like the base. ``"community"``: one
        ``delta`` per community (needs ``communities``).
    diversity : float >= 0
        At most what keeps the float32 hidden layer and the targets finite (the error says).
    noise : float >= 0
        Standard deviation of the label noise (the probe truth is noiseless); at most
        ``data_limit(dtype) / 20`` (~9e14 in float32, so squared errors stay finite).
    drift_step : int >= 1 or None
        From this step on the base teacher is ``sqrt(1 - s^2) * base + s * new`` with
        ``s = drift_scale`` in [0, 1] and ``new`` a fresh random teacher (variance-preserving;
        ``s = 1`` replaces it). The perturbations ``delta`` are kept.
    n_probe : int
        Probe size; ``probe_Y`` is the truth at the step most recently passed to
        :meth:`sample` (step 0 before any); :meth:`probe_Y_at` gives it at any step.

    Sizes (``d_in``, ``d_out``, ``teacher_hidden``, ``n_probe``) whose arrays would not fit in
    this machine's memory are refused before anything is allocated.
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
        self.hidden = check_int("teacher_hidden", teacher_hidden, low=0)
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
        sizes = {"d_in": self.d_in, "d_out": self.d_out, "teacher_hidden": self.hidden}
        context = f" and {self.n_agents:,} agents ({self.heterogeneity} teachers)"
        check_task_memory(self.name, self._memory, {**sizes, "n_probe": n_probe}, context)
        self._setup_teachers()
        z = self._stream(3).standard_normal((_SCALE_ROWS, self.d_in))
        self._scale = np.ones(self.d_out)
        outs = self._outputs(z[None], 0, rows=1, base_only=True)[0]
        self._scale = 1.0 / np.maximum(outs.std(0), 1e-12)
        self._bounds = self._weight_bounds()
        self._check_float32_sums()
        self._check_range(np.float64)
        self.probe_X = self._stream(4).standard_normal((n_probe, self.d_in))
        self._probe_cache: dict[bool, np.ndarray] = {}
        self._last_step = 0

    def _n_teachers(self) -> int:
        """Perturbations drawn: one per agent or community (one unused one when shared)."""
        n_t = {"shared": 0, "agent": self.n_agents}.get(self.heterogeneity)
        return max(int(self.communities.max()) + 1 if n_t is None else n_t, 1)

    def _memory(self, d_in: int, d_out: int, teacher_hidden: int, n_probe: int) -> int:
        """Bytes the task allocates: teachers (base, new, drifted and the perturbations, each
        drawn in float64, scaled in a float64 copy and kept in float32), the scale sample with
        its float32 scratch, the probe and its truth (one row per agent unless shared)."""
        weights = d_in * teacher_hidden + teacher_hidden + teacher_hidden * d_out
        if teacher_hidden == 0:  # linear: W1 (d_in, d_out), b1 (d_out,)
            weights = d_in * d_out + d_out
        rows = 1 if self.heterogeneity == "shared" else self.n_agents
        return (
            20 * (3 + self._n_teachers()) * weights
            + _SCALE_ROWS * (12 * d_in + 8 * d_out)
            + n_probe * (12 * d_in + 8 * rows * d_out)
        )

    def _weight_bounds(self) -> tuple[np.ndarray, ...]:
        """Bounds, per hidden unit and per output, of the float32 sums the kernels make:
        ``|b1 + x W1| <= pre + diversity * pre_d`` (inputs ``|x| <= NORMAL_MAX``) and
        ``|tanh(.) W2| <= out + diversity * out_d`` (a linear teacher's outputs are its sums:
        ``out = pre``); base or drifted teacher, any perturbation."""

        def sums(W1: np.ndarray, b1: np.ndarray, W2T: np.ndarray) -> tuple[np.ndarray, ...]:
            pre = np.abs(b1) + NORMAL_MAX * np.abs(W1).sum(axis=-2, dtype=np.float64)
            pre = pre.reshape(-1, pre.shape[-1])
            out = pre if self.hidden == 0 else np.abs(W2T).sum(-1, dtype=np.float64)
            return pre, out

        pre, out = (np.maximum(a, b) for a, b in zip(sums(*self._base), sums(*self._drifted)))
        pre_d, out_d = sums(*self._delta)
        return pre.max(), pre_d.max(), out.reshape(-1), out_d.reshape(len(out_d), -1).max(0)

    def _check_float32_sums(self) -> None:
        """Refuse a diversity that could overflow the teachers' float32 sums (kept below half
        of float32's largest number), whatever the dtype of the data."""
        if self.heterogeneity == "shared":  # only then is the diversity unused
            return
        pre, pre_d, out, out_d = self._bounds
        with np.errstate(divide="ignore"):
            div = float(min((_F32_MAX / 2 - pre) / pre_d, np.min((_F32_MAX / 2 - out) / out_d)))
        if not self.diversity <= div:
            raise fail(
                "diversity",
                self.diversity,
                f"<= {div:.3g} for these teachers (they compute in float32, which a larger "
                "diversity overflows)",
            )

    def _largest(self, limit: float) -> list[tuple[str, float, float]]:
        """Noise adds at most ``noise * NORMAL_MAX`` to a target, the teacher at most
        ``(out + diversity * out_d) * scale``: each may take half of ``limit``."""
        largest = [("noise", self.noise, limit / 2 / NORMAL_MAX)]
        if self.heterogeneity != "shared":
            _, _, out, out_d = self._bounds
            with np.errstate(divide="ignore"):
                div = np.min((limit / 2 - out * self._scale) / (out_d * self._scale))
            largest.append(("diversity", self.diversity, float(div)))
        return largest

    def _setup_teachers(self) -> None:
        """Base, drifted and per-teacher weights as kernel arrays (W2 stored transposed)."""
        base = self._draw_teacher(0, 1)
        new = self._draw_teacher(2, 1)
        s = self.drift_scale
        drifted = [(np.sqrt(1 - s * s) * b + s * w).astype(np.float32) for b, w in zip(base, new)]
        self._base = tuple(a[0] for a in self._kernel_form(base))
        self._drifted = tuple(a[0] for a in self._kernel_form(drifted))
        # shared: one unused perturbation, so the kernels' signature stays the same
        self._delta = self._kernel_form(self._draw_teacher(1, self._n_teachers()))
        of = {"agent": np.arange(self.n_agents), "community": self.communities}
        self._teacher_of = of.get(self.heterogeneity, np.full(self.n_agents, -1)).astype(np.int64)

    @staticmethod
    def _kernel_form(w: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """[W1 (t, d_in, h), b1 (t, 1, h), W2 (t, h, d_out)] -> C-contiguous float32
        W1 (t, d_in, h), b1 (t, h), W2 transposed (t, d_out, h)."""
        W1, b1, W2 = (np.asarray(a, dtype=np.float32) for a in w)
        W2T = np.ascontiguousarray(W2.transpose(0, 2, 1))
        return np.ascontiguousarray(W1), np.ascontiguousarray(b1[:, 0]), W2T

    def _draw_teacher(self, key: int, t: int) -> list[np.ndarray]:
        """``t`` random teachers [W1 (t, d_in, h), b1 (t, 1, h), W2 (t, h, d_out)], float32;
        a linear teacher (h = 0): W1 (t, d_in, d_out), b1 (t, 1, d_out), W2 (t, 0, d_out).

        Teacher i is the same whatever ``t`` (each array has its own stream, drawn row-major).
        """
        h = self.hidden or self.d_out  # the width of the first layer
        shapes = [(t, self.d_in, h), (t, 1, h), (t, self.hidden, self.d_out)]
        scales = [1 / np.sqrt(self.d_in), 0.5, 1 / np.sqrt(max(self.hidden, 1))]
        return [
            (self._stream(key, i).standard_normal(shape) * sc).astype(np.float32)
            for i, (shape, sc) in enumerate(zip(shapes, scales))
        ]

    def _weights(self, step: int) -> tuple:
        drifted = self.drift_step is not None and step >= self.drift_step
        return (*(self._drifted if drifted else self._base), *self._delta)

    def _outputs(self, X: np.ndarray, step: int, rows: int, base_only: bool = False) -> np.ndarray:
        """Noiseless targets float64 (rows, B, d_out) for X (rows or 1, B, d_in)."""
        out = np.empty((rows, X.shape[1], self.d_out))
        of = np.full(rows, -1, np.int64) if base_only else self._teacher_of[:rows]
        X = np.ascontiguousarray(X) if X.dtype in (np.float32, np.float64) else X.astype(float)
        div = np.float32(0.0 if base_only else self.diversity)  # unused for the base teacher
        D.teacher_forward(X, out, *self._weights(step), of, div, self._scale)
        return out

    def _fill(self, step: int, X: np.ndarray, Y: np.ndarray) -> None:
        self._last_step = step
        div, noise = np.float32(self.diversity), float(self.noise)
        W = self._weights(step)
        D.teacher_sample(X, Y, *self._k, step, *W, self._teacher_of, div, self._scale, noise)

    def teacher_outputs(self, X: Any, step: int = 0) -> np.ndarray:
        """Noiseless targets of every agent's teacher at ``step``, float64 (P, B, d_out).

        ``X`` is (P, B, d_in), one batch per agent, or (B, d_in) shared by all agents.
        """
        step = check_int("step", step, low=0)
        X = np.asarray(X)
        X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
        X = X[None] if X.ndim == 2 else X
        if X.ndim != 3 or X.shape[2] != self.d_in or len(X) not in (1, self.n_agents):
            raise fail("X.shape", X.shape, f"(B, {self.d_in}) or ({self.n_agents}, B, {self.d_in})")
        return self._outputs(X, step, self.n_agents)

    def probe_Y_at(self, step: int) -> np.ndarray:
        """Noiseless truth on the probe at ``step``: (1 if shared else P, n_probe, d_out)."""
        step = check_int("step", step, low=0)
        drifted = self.drift_step is not None and step >= self.drift_step
        if drifted not in self._probe_cache:
            rows = 1 if self.heterogeneity == "shared" else self.n_agents
            y = self._outputs(self.probe_X[None], step, rows)
            y.setflags(write=False)
            self._probe_cache[drifted] = y
        return self._probe_cache[drifted]

    @property
    def probe_Y(self) -> np.ndarray:
        return self.probe_Y_at(self._last_step)
