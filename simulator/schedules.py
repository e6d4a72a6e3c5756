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

from typing import TYPE_CHECKING

import numpy as np

from simulator.config import check_choice
from simulator.kernels import social as S
from simulator.kernels.random import fill_normals

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = [
    "SCHEDULES",
    "acting_sequence",
    "check_schedule",
    "imitate_in_sequence",
    "move_in_sequence",
]

SCHEDULES = ("synchronous", "random_order", "random_independent")
SEQUENCE_MUTATION = 1  # purpose word of the copy events' noise (social.MUTATION: 0)


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


def imitate_in_sequence(
    model: NeuralModel, schedule: str, rate: float, beta: float, mutation: float
) -> None:
    """One step of Fermi imitation as elementary updates in ``schedule`` order.

    Draws the acting agents, then three uniforms per update (look, neighbour, accept) from
    ``model.social_rng``; the kernel decides the copies in order, each carrying the copied
    agent's current fitness. Then every agent that was written gets the network and optimizer
    state of the agent whose start-of-step network it ends up with (its *origin*), its
    ``fitness_ema``, and, with ``mutation > 0``, the sum of the ``N(0, mutation^2)`` noises of
    the chain of copies that brought it there (copy event ``e``'s noise is the counter-based
    stream ``(e, step, SEQUENCE_MUTATION)`` under ``model.mutation_key``). Updates
    ``model.population`` and ``model.fitness_ema`` in place and sets ``model.copies_last_step``
    to the number of agents that copied.
    """
    rng, csr, pop = model.social_rng, model.csr, model.population
    acting = acting_sequence(schedule, pop.n_agents, rng)
    look, nb, accept = (rng.random(acting.shape[0]) for _ in range(3))
    fitness = np.array(model.fitness, dtype=np.float64)
    dst, _, parent, origin, last = S.imitation_sequence(
        acting, look, nb, accept, csr.indptr, csr.indices, fitness, beta, rate
    )
    changed = np.flatnonzero(last >= 0)
    model.copies_last_step = int(changed.size)  # agents that copied (some more than once)
    if changed.size == 0:
        return
    pop.copy_agents(origin[changed], changed)
    model.fitness_ema[changed] = model.fitness_ema[origin[changed]]
    if mutation > 0:  # event e's noise: the counter-based stream (e, step, SEQUENCE_MUTATION)
        noise = np.empty((dst.size, pop.n_params))
        fill_normals(noise, model.mutation_key, model.steps, SEQUENCE_MUTATION)
        noise *= mutation
        S.lineage_noise(noise, parent)
        pop.params[changed] += noise[last[changed]].astype(pop.dtype)


def move_in_sequence(
    model: NeuralModel, schedule: str, epsilon: float, rate: float, space: str
) -> None:
    """One step of bounded-confidence moves in ``schedule`` order, in one kernel call.

    Distances in function space use the agents' probe outputs, recomputed for an agent after it
    moves; in weight space (``space="weights"``) the current parameters. Updates
    ``model.population.params`` in place.
    """
    pop, csr = model.population, model.csr
    acting = acting_sequence(schedule, pop.n_agents, model.social_rng)
    if space == "function":
        # a copy in the population's dtype (the kernel widens to float64 exactly)
        preds = model.probe_predictions().reshape(pop.n_agents, -1).copy()
    else:
        preds = np.empty((pop.n_agents, 0))
    probe = np.ascontiguousarray(model.task.probe_X[None], dtype=pop.dtype)
    S.bounded_confidence_sequence(
        pop.params, acting, csr.indptr, csr.indices, float(epsilon), float(rate), preds, probe,
        pop._net,
    )  # fmt: skip
