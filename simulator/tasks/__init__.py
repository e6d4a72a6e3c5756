"""Environments: seeded per-agent data streams drawn inside parallel kernels.

A task draws one minibatch per agent per step: ``X, Y = task.sample(step, batch)`` with ``X``
(P, B, d_in) and ``Y`` (P, B, d_out), float64 by default (``dtype=np.float32`` for float32
populations); ``task.sample_into(step, X, Y)`` fills arrays you own and ``task.batch(step, B,
dtype)`` reuses the task's own buffers (the model's hot path). Each agent's batch is drawn in a
Numba kernel (:mod:`simulator.kernels.data`) from a counter-based Philox stream keyed by
``(seed, step, agent)`` (:mod:`simulator.kernels.random`): a pure function of those, the same on
1 or N threads and whatever the order of calls. A task keeps no state between steps (the teacher
remembers the last step only for its ``probe_Y`` attribute).

Construction (teachers, probe sets, splits) draws each component with NumPy from its own
``SeedSequence(seed, spawn_key=(0, k, ...))``, streams no step can reach; so the same seed gives
the same base teacher and probe whatever the other parameters.

Every task also fixes a probe set ``probe_X`` (n_probe, d_in), the same for every agent, with
its truth ``probe_Y`` (P or 1, n_probe, d_out): the basis of function-space measures.

``task="arrays"`` takes your own data (:class:`ArrayTask`); :func:`split_dataset` deals one data
set to the agents (IID, by community, or Dirichlet non-IID by label).
"""

from __future__ import annotations

import inspect
from typing import Any

from simulator.config import ParameterError, check_choice
from simulator.tasks.arrays import ArrayTask
from simulator.tasks.base import Task
from simulator.tasks.classes import Digits, GaussianMixture, LinearlySeparable
from simulator.tasks.generative import RingMixture
from simulator.tasks.split import DataSplit, split_dataset
from simulator.tasks.teacher import TeacherRegression

__all__ = [
    "TASKS",
    "ArrayTask",
    "DataSplit",
    "Digits",
    "GaussianMixture",
    "LinearlySeparable",
    "RingMixture",
    "Task",
    "TeacherRegression",
    "make_task",
    "split_dataset",
    "task_params",
]

# ---------------------------------------------------------------------------- registry
TASKS: dict[str, type[Task]] = {
    "teacher": TeacherRegression,
    "mixture": GaussianMixture,
    "digits": Digits,
    "separable": LinearlySeparable,
    "ring": RingMixture,
    "arrays": ArrayTask,
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
