"""Social learning rules: how agents learn from their neighbours, composable with training.

A rule may change each agent's minibatch before training (:meth:`SocialRule.before_train`,
e.g. distillation) and act on the parameters after it (:meth:`SocialRule.after_train`, e.g.
gossip). Every rule works on whole arrays through the kernels in
:mod:`simulator.kernels.social`; none loops over agents in Python.

A rule with zero strength is never built, so a model whose strengths are all zero trains its
agents independently.

Raw weight averaging of *independently initialized* networks is destructive (hidden units are
permuted between them; see ``shared/notes/science-facts.md``): the scenarios start agents from a
shared initialization when they average weights, and say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.config import check_choice
from simulator.graph import MixingCSR, mixing_matrix
from simulator.kernels import social as S
from simulator.kernels.mlp import PASS_OVERHEAD_FLOPS
from simulator.kernels.sized import EDGE_FLOPS, blocks, sized_call
from simulator.metrics.functions import summarize_outputs
from simulator.schedules import (
    acting_sequence,
    check_schedule,
    imitate_in_sequence,
    move_in_sequence,
)

if TYPE_CHECKING:
    from simulator.model import NeuralModel


GOSSIP_ORDERS = ("train_then_mix", "mix_then_train", "dpsgd")


class SocialRule:
    """Base class: a no-op on both sides of training.

    A rule that reports measures names them in ``measure_names`` and returns them from
    :meth:`measures`; the model adds them to its own (see ``NeuralModel.extra_measures``).
    State a rule keeps between steps goes through :meth:`get_state` / :meth:`set_state`
    (numpy arrays or JSON-able values), so a checkpoint can restore it.

    ``changes_networks``: False for a rule whose :meth:`after_train` only reads the networks;
    the model then keeps its cached probe predictions (``model.probe_predictions()``) across
    the rule instead of computing them again for the next rule. Leave it True (the default)
    when the rule may write ``model.population.params``.
    """

    name = "none"
    measure_names: tuple[str, ...] = ()
    changes_networks = True

    def measures(self, model: NeuralModel) -> dict[str, float]:
        """This rule's measures (the names in ``measure_names``) for the current step."""
        return {}

    def before_train(
        self, model: NeuralModel, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the (possibly changed) minibatch X (P, B, d_in), Y (P, B, d_out)."""
        return X, Y

    def after_train(self, model: NeuralModel) -> None:
        """Act on ``model.population.params`` after the training step."""

    def graph_changed(self, model: NeuralModel) -> None:
        """Rebuild anything derived from the graph (called when ``model.graph`` changes)."""

    def get_state(self) -> dict[str, Any]:
        """State the rule carries from one step to the next, for a checkpoint (see
        :mod:`simulator.checkpoint` for the values allowed); ``{}`` for a stateless rule.
        Randomness comes from ``model.social_rng``, which the model's checkpoint holds."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (after the model and graph are rebuilt)."""

    def scratch(
        self,
        key: str,
        like: np.ndarray | None = None,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
    ) -> np.ndarray:
        """An uninitialized C-contiguous array shaped and typed like ``like`` (or of ``shape``
        and ``dtype``), kept in ``self._buffers`` from step to step (a rule that allocated, and
        page-faulted in, a parameter-sized array every step paid for it at large populations).
        Never part of the rule's state: every use overwrites it whole before reading it."""
        if like is not None:
            shape, dtype = like.shape, like.dtype
        buffers = self.__dict__.setdefault("_buffers", {})
        buf = buffers.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype):
            buf = buffers[key] = np.empty(shape, dtype=dtype)
        return buf


class Gossip(SocialRule):
    """Weight averaging with neighbours.

    ``mode="sync"``: every agent at once, ``params <- (1 - rate) params + rate W params`` with
    mixing matrix W (``metropolis``: symmetric doubly stochastic, preserves the mean;
    ``uniform``: self and neighbours equally, row-stochastic; ``lazy``: (I + W_metropolis) / 2;
    ``adjacency``: neighbours only, D^-1 A).
    ``mode="pairwise"``: a random set of disjoint edges; each pair moves to its midpoint
    (by ``rate``), which preserves the population mean exactly.

    ``order`` places the mixing M relative to the local optimizer step T (docs/DYNAMICS.md):
    ``"train_then_mix"`` x <- M(T(x)) (adapt-then-combine), ``"mix_then_train"``
    x <- T(M(x)) (combine-then-adapt) and ``"dpsgd"`` x <- M(x) + (T(x) - x): the update the
    optimizer computes at the pre-mixing parameters, added after mixing (D-PSGD, Lian et al.
    2017; for SGD, x <- W x - lr grad f(x)).
    """

    name = "gossip"

    def __init__(
        self,
        rate: float,
        kind: str = "metropolis",
        mode: str = "sync",
        order: str = "train_then_mix",
    ):
        self.rate, self.kind, self.mode = rate, kind, mode
        self.order = check_choice("gossip_order", order, GOSSIP_ORDERS)
        self.mixing: MixingCSR | None = None
        self._x0: np.ndarray | None = None  # dpsgd: the parameters before training (one step)

    def graph_changed(self, model: NeuralModel) -> None:
        self.mixing = mixing_matrix(model.csr, self.kind)
        indptr, indices = model.csr.indptr, model.csr.indices
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        keep = rows < indices  # each undirected edge once
        self.edge_u, self.edge_v = rows[keep], indices[keep]

    def before_train(
        self, model: NeuralModel, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.order == "mix_then_train":
            self._mix(model, model.population.params)
        elif self.order == "dpsgd":
            params = model.population.params
            self._x0 = self.scratch("x0", params)
            np.copyto(self._x0, params)
        return X, Y

    def after_train(self, model: NeuralModel) -> None:
        params = model.population.params
        if self.order == "train_then_mix":
            self._mix(model, params)
        elif self.order == "dpsgd" and self._x0 is not None:
            x0, self._x0 = self._x0, None
            params -= x0  # the optimizer's step, taken at x0 (its state advanced once)
            self._mix(model, x0)
            params += x0  # = mixed x0 + the step (the sum of the same two numbers)

    def _mix(self, model: NeuralModel, params: np.ndarray) -> None:
        """One mixing round of ``params`` (P, n_params), in place."""
        if self.mode == "pairwise":
            order = model.social_rng.permutation(self.edge_u.shape[0])
            pairs = S.greedy_matching(params.shape[0], self.edge_u, self.edge_v, order)
            S.average_pairs(params, pairs, self.rate)
            return
        m = self.mixing
        out = self.scratch("mixed", params)
        n_agents, n = params.shape
        work = S.ROWS * (2.0 * n + EDGE_FLOPS) * (1.0 + m.indices.shape[0] / max(n_agents, 1))
        sized_call("mix_rows", blocks(n_agents, S.ROWS), work, S.mix_rows, params,
                   m.indptr, m.indices, m.weights, self.rate, out)  # fmt: skip
        np.copyto(params, out)


class Distillation(SocialRule):
    """Train also on neighbours' predictions for one's own inputs.

    ``mode="soft"``: targets become ``(1 - weight) y + weight * mean_j f_j(x)`` over neighbours j
    (only those within ``confidence`` in function space when it is set). For a softmax
    classifier the mean of the neighbours' probabilities is a soft target.

    ``mode="sample"``: learning from data the neighbours *generate*. Each sample keeps its real
    label with probability ``real_share``; otherwise its label is drawn from the neighbours'
    mean predictive distribution (a class for a softmax classifier, a 0/1 outcome for a single
    probability output, or the mean prediction plus Gaussian noise of std ``sample_noise`` for
    regression). With ``real_share=0`` this is iterated learning from synthetic data (the set-up
    of model collapse).

    ``neighbours="one"`` asks a single random neighbour per step (cheaper; same expectation).

    ``start``: during the model's first ``start`` steps (``1 <= model.steps <= start`` inside a
    step) the rule leaves the minibatch alone, so agents first learn from their own (real) data
    and generated-data learning starts from trained models. ``start=0``: from the first step.
    """

    name = "distillation"

    def __init__(
        self,
        weight: float,
        neighbours: str = "all",
        confidence: float | None = None,
        mode: str = "soft",
        real_share: float = 0.0,
        sample_noise: float = 0.0,
        start: int = 0,
    ):
        self.weight, self.neighbours, self.confidence = weight, neighbours, confidence
        self.mode, self.real_share, self.sample_noise = mode, real_share, sample_noise
        self.start = start

    def before_train(
        self, model: NeuralModel, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.start and model.steps <= self.start:
            return X, Y
        pop, csr = model.population, model.csr
        mask = model.confident_edges(self.confidence)
        if self.neighbours == "one":
            mask = mask & _one_neighbour_mask(csr.indptr, model.social_rng)
        Xc = np.ascontiguousarray(X, dtype=pop.dtype)
        P, n_blocks = pop.n_agents, blocks(pop.n_agents, S.ROWS)
        out = self.scratch("means", shape=(P, *Y.shape[1:]), dtype=pop.dtype)
        macs = float(np.dot(pop.layers[:-1], pop.layers[1:]))  # per sample and forward pass
        per_edge = 2.0 * Xc.shape[1] * macs + PASS_OVERHEAD_FLOPS + EDGE_FLOPS  # a forward pass
        work = S.ROWS * csr.indices.shape[0] / max(P, 1) * per_edge
        args = (pop.params, Xc, csr.indptr, csr.indices, mask, pop._net, out)
        counts = sized_call("neighbour_predictions", n_blocks, work, S.neighbour_predictions, *args)
        if self.mode == "soft":  # the targets in the model's dtype, in reused buffers
            targets = self.scratch("targets", out)
            work = S.ROWS * 4.0 * out[0].size
            sized_call("blend_targets", n_blocks, work, S.blend_targets, np.ascontiguousarray(Y),
                       out, counts, float(self.weight), targets)  # fmt: skip
            return Xc, targets
        has = (counts > 0)[:, None, None]
        synthetic = _sample_targets(
            out.astype(np.float64), pop.output, self.sample_noise, model.social_rng
        )
        real = model.social_rng.random(Y.shape[:2])[..., None] < self.real_share
        return Xc, np.where(real | ~has, Y, synthetic)


def _sample_targets(
    probs: np.ndarray, output: str, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw targets from predictive outputs (P, B, K): one-hot classes for softmax, 0/1 for a
    single sigmoid/step output, ``mean + N(0, noise^2)`` for a linear output."""
    if output == "softmax":
        cum = np.cumsum(probs, axis=-1)
        u = rng.random(probs.shape[:-1])[..., None] * cum[..., -1:]
        k = np.minimum((u > cum).sum(axis=-1), probs.shape[-1] - 1)
        return np.eye(probs.shape[-1])[k]
    if output in ("sigmoid", "step"):
        return (rng.random(probs.shape) < probs).astype(np.float64)
    return probs + noise * rng.standard_normal(probs.shape)


class Imitation(SocialRule):
    """Copy a fitter neighbour, with Gaussian mutation (Fermi rule).

    Each step every agent, with probability ``rate``, looks at one random neighbour j and copies
    j's network with probability ``1 / (1 + exp(-beta (f_j - f_i)))``, fitness ``f = -`` the
    agent's recent loss (an exponential moving average) unless the model was given a
    ``fitness`` callable. The copy gets ``N(0, mutation^2)`` noise on every parameter.

    ``schedule="synchronous"``: decisions use the networks and fitness as they were before
    anyone copied. ``"random_order"`` / ``"random_independent"`` (see
    :mod:`simulator.schedules`): the agents act one after another; a copy takes over the
    network, its optimizer state and its fitness (mutation included), so a later update in the
    same step can copy the copy.
    """

    name = "imitation"

    def __init__(
        self,
        rate: float,
        beta: float = 10.0,
        mutation: float = 0.01,
        schedule: str = "synchronous",
    ):
        self.rate, self.beta, self.mutation = rate, beta, mutation
        self.schedule = check_schedule(schedule)

    def after_train(self, model: NeuralModel) -> None:
        if self.schedule != "synchronous":
            imitate_in_sequence(model, self.schedule, self.rate, self.beta, self.mutation)
            return
        rng, csr, pop = model.social_rng, model.csr, model.population
        n = pop.n_agents
        looks = rng.random(n) < self.rate
        entry = _random_neighbour_entry(csr.indptr, rng)
        model_j = (
            np.where(entry >= 0, csr.indices[np.maximum(entry, 0)], np.arange(n))
            if csr.indices.size
            else np.arange(n)
        )
        fit = model.fitness
        z = np.clip(self.beta * (fit[model_j] - fit), -500, 500)
        copies = looks & (rng.random(n) < 1.0 / (1.0 + np.exp(-z)))
        dst = np.flatnonzero(copies)
        src = model_j[dst]
        if dst.size == 0:
            return
        pop.copy_agents(src, dst)
        model.fitness_ema[dst] = model.fitness_ema[src]
        if self.mutation > 0:
            add_noise_rows(pop.params, dst, self.mutation, model.mutation_key, model.steps)
        model.copies_last_step = int(dst.size)


class BoundedConfidence(SocialRule):
    """Average weights only with neighbours that think alike (Hegselmann-Krause on networks).

    Agent i moves by ``rate`` toward the mean of itself and its neighbours whose RMS distance
    from it is below ``epsilon``: in function space (outputs on the probe set, invariant to
    reparametrization) or in raw weight space (``space="weights"``; meaningful when agents
    share an initialization).

    ``schedule="synchronous"``: every agent moves from the start-of-step state (Hegselmann-
    Krause). ``"random_order"`` / ``"random_independent"``: agents move one after another,
    each measuring distances to and averaging the neighbours' current networks (an agent's
    probe outputs are recomputed after it moves).
    """

    name = "bounded_confidence"

    def __init__(
        self,
        epsilon: float,
        rate: float = 0.5,
        space: str = "function",
        schedule: str = "synchronous",
    ):
        self.epsilon, self.rate, self.space = epsilon, rate, space
        self.schedule = check_schedule(schedule)

    def after_train(self, model: NeuralModel) -> None:
        pop, csr = model.population, model.csr
        if self.schedule != "synchronous":
            move_in_sequence(model, self.schedule, self.epsilon, self.rate, self.space)
            return
        mask = model.confident_edges(self.epsilon, self.space)
        params = pop.params
        out = self.scratch("mixed", params)
        n_agents, n = params.shape
        work = S.ROWS * (2.0 * n + EDGE_FLOPS) * (1.0 + csr.indices.shape[0] / max(n_agents, 1))
        sized_call("masked_mean_mix", blocks(n_agents, S.ROWS), work, S.masked_mean_mix,
                   params, csr.indptr, csr.indices, mask, self.rate, out)  # fmt: skip
        np.copyto(params, out)


class DiversityPressure(SocialRule):
    """A novelty regularizer: each agent is pushed away from its neighbours' mean.

    After training, ``p_i <- p_i + lr_i * strength * (p_i - mean_j p_j)``: one gradient step
    on ``-strength/2 ||p_i - m_i||^2``. It counters homogenization; large strengths grow the
    weights without bound, so keep ``lr * strength`` small (or use weight decay).
    """

    name = "diversity"

    def __init__(self, strength: float):
        self.strength = strength

    def after_train(self, model: NeuralModel) -> None:
        pop, csr = model.population, model.csr
        mean = self.scratch("mean", pop.params)
        S.neighbour_mean(pop.params, csr.indptr, csr.indices, mean)
        step = (pop.lr * self.strength)[:, None]
        np.subtract(pop.params, mean, out=mean)  # p_i - m_i in the population's dtype
        np.multiply(step, mean, out=mean, casting="unsafe")  # in float64, then rounded
        pop.params += mean


class FederatedAveraging(SocialRule):
    """A server averages the participants' models every ``every`` steps and sends it back.

    Each round a random share ``participation`` of agents sends its parameters plus
    ``N(0, noise^2)`` noise; every agent then starts from the average. The graph is not used:
    the server talks to every client (a star).

    The noise is *not* differential privacy: nothing bounds what one client's parameters can
    contribute (no clipping), so no privacy figure follows from it. For a guarantee use
    DP-FedAvg (``dp_clip > 0``; :class:`simulator.privacy.DPFederatedAveraging`).
    """

    name = "fedavg"

    def __init__(self, every: int = 1, noise: float = 0.0, participation: float = 1.0):
        self.every, self.noise, self.participation = every, noise, participation

    def after_train(self, model: NeuralModel) -> None:
        if model.steps % self.every:
            return
        pop, rng = model.population, model.social_rng
        who = np.flatnonzero(rng.random(pop.n_agents) < self.participation)
        if who.size == 0:
            return
        shared = pop.params[who].astype(np.float64)
        if self.noise > 0:
            shared += rng.standard_normal(shared.shape) * self.noise
        pop.params[...] = shared.mean(axis=0).astype(pop.dtype)


class Adoption(SocialRule):
    """A share of the agents adopts one popular model (a monoculture).

    Every step the agents in a fixed, seeded subset of size ``round(share * P)`` replace their
    network by a copy of the popular model: the currently fittest agent (``source="best"``),
    the fittest agent outside that subset (``source="best_independent"``: a model developed
    by an agent that does not adopt; every agent is a candidate when all adopt) or agent 0
    (``source="first"``). The others keep learning on their own.

    With ``"best"`` the fittest agent is often an adopter whose last minibatch happened to be
    easy (fitness is a recent training loss), so the popular lineage is selected on minibatch
    luck and learns mostly from easy batches; ``"best_independent"`` avoids that.

    Schedules: a copy carries the popular model's fitness, so the popular model is the same at
    every elementary update of a step. ``"synchronous"`` and ``"random_order"`` (every adopter
    acts once) therefore give the same result; under ``"random_independent"`` only the
    adopters drawn among the step's ``n_agents`` draws (with replacement) copy it.
    """

    name = "adoption"

    def __init__(
        self, share: float, source: str = "best_independent", schedule: str = "synchronous"
    ):
        self.share = share
        self.source = check_choice("adopt_source", source, ("best", "best_independent", "first"))
        self.schedule = check_schedule(schedule)
        self.adopters: np.ndarray | None = None

    def after_train(self, model: NeuralModel) -> None:
        n = model.n_agents
        if self.adopters is None:
            order = np.random.default_rng(model.measure_seed).permutation(n)
            self.adopters = np.sort(order[: round(self.share * n)])
            free = np.setdiff1d(np.arange(n), self.adopters)
            self.candidates = free if free.size else np.arange(n)
        if self.source == "first":
            src = 0
        elif self.source == "best":
            src = int(np.argmax(model.fitness))
        else:
            src = int(self.candidates[np.argmax(model.fitness[self.candidates])])
        dst = self.adopters[self.adopters != src]
        if self.schedule == "random_independent":
            drawn = acting_sequence(self.schedule, n, model.social_rng)
            dst = dst[np.isin(dst, drawn)]
        model.population.copy_agents(np.full(dst.size, src), dst)
        model.fitness_ema[dst] = model.fitness_ema[src]

    def get_state(self) -> dict[str, Any]:
        if self.adopters is None:
            return {"adopters": None}
        return {"adopters": self.adopters.copy(), "candidates": self.candidates.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        adopters = state["adopters"]
        self.adopters = None if adopters is None else np.asarray(adopters, dtype=np.int64)
        if adopters is not None:
            self.candidates = np.asarray(state["candidates"], dtype=np.int64)


class HomogenizationDetector(SocialRule):
    """Watches diversity and adapts the fitness function when the population homogenizes.

    After each training step it measures the function-space dispersion of the population on the
    probe set. While it is below ``threshold`` the weight of a novelty term in the fitness rises
    by ``rate`` per step; once diversity recovers the weight decays by the factor
    ``1 - rate`` per step. Fitness then is ``-recent_loss + novelty_weight * novelty``, with
    novelty the RMS function-space distance of an agent from the mean of its neighbours (see
    :meth:`simulator.model.NeuralModel.novelty`). Put it before imitation, which reads fitness.
    """

    name = "detector"
    changes_networks = False  # the fitness's novelty reads the same probe predictions

    def __init__(self, threshold: float, rate: float = 0.05):
        self.threshold, self.rate = threshold, rate

    def after_train(self, model: NeuralModel) -> None:
        # function_dispersion in float64 by two kernel passes (no temporaries of the outputs)
        dispersion = summarize_outputs(model.probe_predictions()).dispersion
        model.diversity_now = dispersion
        if dispersion < self.threshold:
            model.novelty_weight += self.rate
        else:
            model.novelty_weight *= 1 - self.rate


MUTATION = 0  # purpose word of the synchronous copies' noise (schedules.SEQUENCE_MUTATION: 1)


def add_noise_rows(
    params: np.ndarray, rows: np.ndarray, scale: float, key: tuple[int, int], step: int
) -> None:
    """``params[rows] += scale * N(0, 1)``, in place: the noise of the ``e``-th row is the
    counter-based stream ``(e, step, MUTATION)`` under ``key`` (float64 normals, as
    :func:`simulator.kernels.random.fill_normals` draws them), scaled in float64, rounded once
    to the parameters' dtype and added in it, by one parallel kernel
    (:func:`simulator.kernels.social.add_row_noise`: no (k, n_params) temporaries).
    ``rows`` int (k,), distinct."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    k0, k1 = (np.uint64(k) for k in key)
    work = S.ROWS * 30.0 * params.shape[1]  # ~30 FLOPs' time per normal and update
    sized_call("add_row_noise", blocks(rows.shape[0], S.ROWS), work, S.add_row_noise, params,
               rows, float(scale), k0, k1, int(step), MUTATION)  # fmt: skip


def _random_neighbour_entry(indptr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each agent, the CSR entry of one uniformly random neighbour (-1 when isolated)."""
    deg = np.diff(indptr)
    u = rng.random(deg.shape[0])
    return np.where(deg > 0, indptr[:-1] + (u * deg).astype(np.int64), -1)


def _one_neighbour_mask(indptr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mask over CSR entries that keeps one random neighbour per agent."""
    entry = _random_neighbour_entry(indptr, rng)
    mask = np.zeros(indptr[-1], dtype=bool)
    mask[entry[entry >= 0]] = True
    return mask


def build_rules(p: dict[str, Any]) -> list[SocialRule]:
    """The rules switched on by a model's parameters (those with a nonzero strength)."""
    rules: list[SocialRule] = []
    if p["distill_weight"] > 0 or p["distill_mode"] == "sample":
        confidence = p["confidence"] if p["confidence"] > 0 else None
        rules.append(
            Distillation(
                p["distill_weight"],
                p["distill_neighbours"],
                confidence,
                p["distill_mode"],
                p["real_share"],
                p["sample_noise"],
                p.get("distill_start", 0),
            )
        )
    schedule = p.get("schedule", "synchronous")
    if p["mixing_rate"] > 0:
        order = p.get("gossip_order", "train_then_mix")
        rules.append(Gossip(p["mixing_rate"], p["mixing"], p["gossip_mode"], order))
    if p["bc_rate"] > 0 and p["confidence"] > 0:
        rules.append(
            BoundedConfidence(p["confidence"], p["bc_rate"], p["confidence_space"], schedule)
        )
    if p["novelty_threshold"] > 0:
        rules.append(HomogenizationDetector(p["novelty_threshold"], p["novelty_rate"]))
    if p["imitation_rate"] > 0:
        rules.append(Imitation(p["imitation_rate"], p["beta"], p["mutation"], schedule))
    if p["adopt_share"] > 0:
        rules.append(Adoption(p["adopt_share"], p["adopt_source"], schedule))
    if p["diversity"] > 0:
        rules.append(DiversityPressure(p["diversity"]))
    if p["fedavg_every"] > 0 and p.get("dp_clip", 0.0) > 0:
        from simulator.privacy import DPFederatedAveraging  # imports this module

        rules.append(DPFederatedAveraging.from_params(p))
    elif p["fedavg_every"] > 0:
        rules.append(
            FederatedAveraging(p["fedavg_every"], p["fedavg_noise"], p["fedavg_participation"])
        )
    return rules
