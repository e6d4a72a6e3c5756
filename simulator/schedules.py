"""Update schedules: in which order the agents of a copying or averaging rule act within a step.

Names after Cornforth, Green and Newth (2005), "Ordered asynchronous processes in multi-agent
systems":

``"synchronous"``
    Every agent decides from the state at the start of the step; all updates are applied at
    once (the default, and the only schedule before schedules existed).
``"random_order"``
    Every agent acts exactly once per step, in a fresh uniformly random order, and sees the
    updates made earlier in the same step (Mesa's ``AgentSet.shuffle_do``).
``"random_independent"``
    A step is ``n_agents`` elementary updates, each by one agent drawn uniformly *with
    replacement*, applied one after another: the textbook Moran / voter process, with time
    counted in Monte Carlo sweeps (some agents act twice in a step, about ``1/e`` of them not
    at all).

The rules that honour a schedule (imitation, adoption, bounded confidence) draw every random
number of a step from the model's ``social`` stream *before* the sequential part runs, in one
kernel call, so a run is deterministic for a seed and independent of the thread count.
"""

from __future__ import annotations

import numpy as np

from simulator.config import check_choice

__all__ = ["SCHEDULES", "acting_sequence", "check_schedule"]

SCHEDULES = ("synchronous", "random_order", "random_independent")


def check_schedule(schedule: str) -> str:
    """``schedule`` if it is one of :data:`SCHEDULES`, else a ParameterError naming it."""
    return check_choice("schedule", schedule, SCHEDULES)


def acting_sequence(schedule: str, n_agents: int, rng: np.random.Generator) -> np.ndarray:
    """The agents of one step's elementary updates, in the order they act.

    Parameters
    ----------
    schedule : str
        ``"random_order"`` (a permutation of the agents) or ``"random_independent"``
        (``n_agents`` agents drawn uniformly with replacement).
    n_agents : int
    rng : numpy.random.Generator
        The model's ``social`` stream (advanced by this call).

    Returns
    -------
    numpy.ndarray
        int64, shape (n_agents,).
    """
    schedule = check_schedule(schedule)
    if schedule == "random_order":
        return rng.permutation(n_agents).astype(np.int64)
    if schedule == "random_independent":
        return rng.integers(0, n_agents, n_agents, dtype=np.int64)
    raise ValueError("a synchronous step has no sequence of elementary updates")
