"""NeuralModel and NeuralAgent: Mesa agents holding neural networks on a social graph.

One step is a template that scenarios configure through parameters:

1. the task draws a minibatch per agent (``X (P, B, d_in)``, ``Y (P, B, d_out)``);
2. social rules may change it (distillation from neighbours' predictions);
3. the whole population trains in one kernel call;
4. social rules act over the graph (gossip, imitation, bounded confidence, diversity, FedAvg);
5. every ``collect_every`` steps the measures are collected through Mesa's DataCollector.

No Python loop over agents runs on this path: the graph is held as CSR arrays (generated
straight into them for large named graphs) and rebuilt only when :meth:`NeuralModel.set_graph`
changes it. The Mesa agents (one :class:`NeuralAgent` per node of a
:class:`mesa.discrete_space.Network`) are views: each knows its row of ``population.params``.
They, the network space and (for generated large graphs) the networkx graph are created the
first time they are read (``model.agents``, ``model.space``, ``model.agent_list``,
``model.graph``; see :mod:`simulator.mesa_layer`), so a million agents build in seconds.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import mesa
import networkx as nx
import numpy as np
import pandas as pd
from mesa.discrete_space import FixedAgent

from simulator import metrics
from simulator.config import check_number, fail
from simulator.graph import GRAPH_NAMES, build_social_graph
from simulator.kernels import social as S
from simulator.kernels.sized import EDGE_FLOPS, blocks, sized_call
from simulator.layout import AgentNetwork
from simulator.measures import measure_names, snapshot
from simulator.memory_plan import (
    refuse_if_too_large,
    refuse_networks_too_large,
    refuse_probe_too_large,
)
from simulator.mesa_interop import (
    NeuralDataCollector,
    own_init_args,
    read_measure,
    scenario_arguments,
)
from simulator.mesa_layer import LazyMesaLayer
from simulator.metrics.linear import affine_coordinates, probe_factor
from simulator.model_params import BASE_PARAMS
from simulator.params import Param, resolve
from simulator.population import Population
from simulator.rng import coerce_seed, philox_key, stream, stream_seed
from simulator.social import build_rules
from simulator.stubbornness import stubbornness_vector
from simulator.tasks import make_task

_INIT_ROWS = 8_192  # rows of init noise drawn at a time (a small scratch, reused by malloc)


class NeuralAgent(FixedAgent):
    """An agent on a node of the social graph, holding a neural network.

    The network is a view of row ``index`` of ``model.population.params`` (no copy).
    ``step`` is not called on the model's hot path: the population trains in one kernel call.
    """

    def __init__(self, model: NeuralModel, cell: Any, index: int):
        if not getattr(model, "_making_agents", False):  # checked before Mesa registers it
            raise TypeError(
                f"a {type(self).__name__} is made by its model, one per network (row of "
                "model.population.params), when model.agents is first read: a new one would "
                "have no network. Build the model with more agents (n_agents) instead; agents "
                "of another class (mesa.Agent) may be added as in any Mesa model."
            )
        super().__init__(model)
        self.cell = cell
        self.index = index

    def remove(self) -> None:
        """Refused: this agent's network is a row of one population array that trains, mixes
        and is measured as a whole; removing the Mesa agent would leave the network in it."""
        raise TypeError(
            f"agent {self.index} cannot be removed: a NeuralModel's agents are the rows of one "
            "population array, trained, mixed and measured together (the network would stay). "
            "To take agents out of the dynamics, give them no neighbours (model.set_graph) or no "
            "learning (model.population.set_lr with 0 for them); to have fewer, build the model "
            "with fewer (n_agents)."
        )

    @property
    def network(self) -> AgentNetwork:
        """This agent's MLP (a view of its parameter row)."""
        return self.model.population.agent(self.index)

    @property
    def loss(self) -> float:
        """Training loss on the last step."""
        return float(self.model.losses[self.index])

    @property
    def fitness(self) -> float:
        """This agent's fitness (``model.fitness``: minus its recent losses by default)."""
        return float(self.model.fitness[self.index])

    @property
    def degree(self) -> int:
        """Number of neighbours on the social graph."""
        return int(self.model.csr.degree[self.index])

    @property
    def neighbor_indices(self) -> np.ndarray:
        """Indices (rows) of the neighbours."""
        csr = self.model.csr
        return csr.indices[csr.indptr[self.index] : csr.indptr[self.index + 1]]


class NeuralModel(LazyMesaLayer, mesa.Model):
    """A population of neural-network agents on a graph, learning from data and each other.

    Every parameter of :data:`BASE_PARAMS` (and a scenario's ``params``) is a keyword
    argument with a default, so ``NeuralModel()`` works; ``rng`` is the seed (an int; None draws
    one and records it in ``model.seed``). ``scenario`` (a Mesa ``Scenario``, as SolaraViz's
    Reset passes) may carry the seed and parameter values instead (see
    :mod:`simulator.mesa_interop`).

    Every measure of the last collected step is readable as an attribute
    (``model.function_dispersion``), so Mesa's string reporters work:
    ``DataCollector(model_reporters={"fd": "function_dispersion"})``.

    ``fitness`` (Python API only) replaces the default fitness used by imitation and adoption:
    a callable ``fitness(model) -> array-like (n_agents,)`` of finite numbers, higher is fitter,
    called once per step by each rule that reads fitness (and by ``agent_table``). It may read
    anything public on the model (``model.population.params``, ``model.losses``,
    ``model.probe_predictions()``, ...) and ``model.default_fitness()``, but not
    ``model.fitness`` itself (that would call it again). Under a sequential schedule a copy
    takes over the copied agent's fitness for the rest of the step. The callable is not part of
    ``config``: record what it is yourself. Example::

        def accuracy_fitness(model):
            probs = model.probe_predictions()
            return (probs.argmax(-1) == model.task.probe_labels[0]).mean(axis=1)

        NeuralModel(task="mixture", imitation_rate=0.1, fitness=accuracy_fitness)

    ``stubbornness`` s (a number or one per agent, in [0, 1]) pulls each agent back toward its
    initial parameters after the social rules of every step, ``x(t+1) = (1 - s) x' + s x(0)``
    (Friedkin-Johnsen); ``initial_params`` holds ``x(0)`` (None when every s is 0).

    The Mesa space and agents are created on first read (:mod:`simulator.mesa_layer`):
    ``model.agents`` is then Mesa's AgentSet, ``model.space`` a Network, ``agent.cell`` the
    agent's cell, all kept in step with :meth:`set_graph`.
    """

    agent_class: ClassVar[type] = NeuralAgent

    params: ClassVar[dict[str, Param]] = BASE_PARAMS
    fitness_memory: ClassVar[float] = 0.3  # weight of the newest loss in the fitness average
    extra_measure_names: ClassVar[tuple[str, ...]] = ()  # a scenario's own measures
    # bytes per agent (at batch_size 64, scaled by batch) a scenario holds beyond its population
    # and a step's data, e.g. a second network per agent; the app's memory estimate adds it
    memory_per_agent: ClassVar[int] = 0
    #: What a checkpoint holds beyond the graph, the rules' get_state, the collected tables and
    #: Mesa's clock (see simulator.checkpoint), listed once: every attribute the next step
    #: depends on. Dotted paths reach inside ("trainer.discriminators"). Add new state here
    #: (or, in a scenario, ``(*NeuralModel.state_attributes, "mine")``);
    #: tests/test_checkpoint.py fails, naming the attribute, when state is missing.
    state_attributes: ClassVar[tuple[str, ...]] = (
        "random",
        "rng",
        "social_rng",
        "population",
        "task",
        "losses",
        "fitness_ema",
        "consensus_step",
        "novelty_weight",
        "diversity_now",
        "copies_last_step",
        "cluster_labels",
        "cka_baseline",
        "initial_params",
        "running",
        "timings",
        "_measures",
    )

    @classmethod
    def param_specs(cls) -> dict[str, Param]:
        """The declared parameters of this model (defaults, types, ranges)."""
        return dict(cls.params)

    def remove_all_agents(self) -> None:
        """Refused, as :meth:`NeuralAgent.remove` is: the networks cannot go."""
        raise TypeError(
            "a NeuralModel's agents cannot be removed: they are the rows of one population "
            "array (see NeuralAgent.remove)"
        )

    def __new__(cls, *args: Any, **kwargs: Any) -> NeuralModel:
        """A new model, with the arguments of a scenario's own ``__init__`` noted (see
        :func:`simulator.mesa_interop.own_init_args`) before that ``__init__`` runs."""
        model = super().__new__(cls)
        model._init_args = own_init_args(cls, NeuralModel.__init__, args, kwargs)
        return model

    def __init__(
        self,
        /,
        rng: Any = None,
        scenario: Any = None,
        *,
        fitness: Callable[[NeuralModel], Any] | None = None,
        **kwargs: Any,
    ):
        if fitness is not None and not callable(fitness):
            raise fail("fitness", fitness, "a callable (model) -> array of shape (n_agents,)")
        self.fitness_fn = fitness
        rng, kwargs = scenario_arguments(scenario, rng, kwargs)
        seed = coerce_seed(rng)
        if scenario is not None:
            vars(scenario)["rng"] = seed  # Mesa requires scenario.rng == rng
        super().__init__(rng=seed, scenario=scenario)
        self.seed = seed
        self.p = resolve(self.param_specs(), kwargs, type(self).__name__)
        graph = self.p["graph"]
        n = graph.number_of_nodes() if isinstance(graph, nx.Graph) else self.p["n_agents"]
        refuse_if_too_large(type(self), kwargs, n)  # large models only, before any big array
        self._given = set(kwargs)
        # a scenario's own __init__ arguments too: its tables' columns, and passed again by a
        # rebuild (checkpoints keep them)
        self.config = {**self.p, "seed": seed, **self.__dict__.get("_init_args", {})}
        self._build_graph()
        self._build_population()
        self.stubbornness = stubbornness_vector(self.p["stubbornness"], self.n_agents)
        self.initial_params = None if self.stubbornness is None else self.population.params.copy()
        self.rules = self.make_rules()
        for rule in self.rules:
            rule.graph_changed(self)
        self.social_rng = stream(seed, "social")
        self.mutation_key = philox_key(seed, "mutation")  # imitation's mutation noise
        self.measure_seed = stream_seed(seed, "measure")
        batch = self.task.batch(0, self.p["batch_size"], self.population.dtype)
        self.losses = self.population.loss(*batch).astype(np.float64)
        self.fitness_ema = self.losses.copy()
        self.consensus_step = -1
        self.novelty_weight = self.p["novelty_weight"]
        self.diversity_now = float("nan")
        self.copies_last_step = 0
        self.cluster_labels = np.zeros(self.n_agents, dtype=np.int64)
        self._probe_cache: np.ndarray | None = None
        self.measure_names = [
            *measure_names(self.task.kind, self.communities is not None, self.p["measures"]),
            *self.extra_measure_names,
            *(name for rule in self.rules for name in rule.measure_names),
        ]
        self.cka_baseline = self._cka_baseline() if "cka_baseline" in self.measure_names else 0.0
        self.measure_collector = NeuralDataCollector(
            self,
            model_reporters={
                name: partial(read_measure, name) for name in ("step", *self.measure_names)
            },
        )
        self.agent_frames: list[pd.DataFrame] = []
        self.timings = dict.fromkeys(("task", "train", "social", "measure"), 0.0)
        self.collect()

    # ------------------------------------------------------------------ construction
    def _build_graph(self) -> None:
        p = self.p
        graph = p["graph"]
        named = isinstance(graph, str) and graph in GRAPH_NAMES
        n = p["n_agents"] if named or "n_agents" in self._given else None
        # a scenario's default graph_params belong to its default graph: another graph gets
        # only the graph_params the user gave explicitly
        default_graph = self.param_specs()["graph"].default
        same = isinstance(graph, str) and graph == default_graph
        gp = p["graph_params"] if same or "graph_params" in self._given else None
        social = build_social_graph(graph, n, gp, seed=stream_seed(self.seed, "graph"))
        # a graph object or file without n_agents decides the number of agents (one given
        # that differs from its node count was refused above); the config records it
        p["n_agents"] = self.config["n_agents"] = social.n
        self.n_agents = social.n
        self.communities = social.communities
        self.csr = social.csr
        self._init_mesa_layer(social)

    def _build_population(self) -> None:
        p, n = self.p, self.n_agents
        # a scenario's default task_params belong to its default task (as for graph_params)
        same = p["task"] == self.param_specs()["task"].default
        tp = p["task_params"] if same or "task_params" in self._given else {}
        self.task = make_task(p["task"], n, stream_seed(self.seed, "data"), self.communities, **tp)
        init_rng = stream(self.seed, "init")
        lr = p["lr"] * init_rng.uniform(1 - p["lr_spread"], 1 + p["lr_spread"], n)
        kwargs = dict(
            layers=(self.task.d_in, *p["hidden"], self.task.d_out),
            activation=p["activation"],
            bias=p["bias"],
            output=self.task.output,
            loss=self.task.loss,
            optimizer=p["optimizer"],
            weight_decay=p["weight_decay"],
            clip_norm=p["clip_norm"],
            dtype=p["dtype"],
        )
        self.pop_kwargs = kwargs
        refuse_networks_too_large(kwargs["layers"], n, p["dtype"], p["optimizer"])
        measured = n if n <= p["measure_exact"] else p["measure_agents"]
        refuse_probe_too_large(measured, self.task.probe_X.shape[0], self.task.d_out, p["dtype"])
        if p["init"] == "shared":
            one = Population(1, seed=init_rng, lr=0.0, **kwargs)
            params = np.empty((n, one.params.shape[1]), dtype=one.params.dtype)
            params[...] = one.params  # n copies of the row
            if p["init_noise"] > 0:  # in slices of rows: the same draws, no (P, n_params) float64
                for lo in range(0, n, _INIT_ROWS):
                    rows = params[lo : lo + _INIT_ROWS]
                    rows += (init_rng.standard_normal(rows.shape) * p["init_noise"]).astype(
                        params.dtype
                    )
            self.population = Population.from_params(params, lr=lr, **kwargs)
        else:
            self.population = Population(n, seed=init_rng, lr=lr, **kwargs)

    def _cka_baseline(self) -> float:
        if self.population.layout.n_layers < 2:
            return 1.0
        kwargs = {k: v for k, v in self.pop_kwargs.items() if k != "weight_decay"}
        return float(
            metrics.cka_baseline(kwargs, self.task.probe_X, n_agents=20, seed=self.measure_seed)
        )

    def set_graph(self, graph: nx.Graph) -> None:
        """Replace the social graph (same nodes 0..n-1): CSR arrays, communities, mixing weights
        and, once built, Mesa's space (every ``agent.cell`` moves to the new space, so
        ``agent.cell.neighborhood`` lists the new neighbours). The task keeps the communities
        it was built with (its data do not move). A model that reports ``cluster_nmi`` (its
        graph had communities) needs them in the new graph too (node attribute
        ``"community"``): without them it is refused before anything changes."""
        social = build_social_graph(graph, self.n_agents, None, seed=0)
        if social.communities is None and "cluster_nmi" in self.measure_names:
            raise fail(
                "graph",
                f"a graph of {graph.number_of_nodes()} nodes without communities",
                "a graph whose nodes all have a 'community' attribute (an int): this model "
                "reports cluster_nmi, the agreement of its clusters with the graph's communities",
            )
        self._social = social
        self.communities = social.communities
        self.csr = social.csr
        self._sync_mesa()
        for rule in self.rules:
            rule.graph_changed(self)

    def make_rules(self) -> list:
        """The social rules (:class:`simulator.social.SocialRule`), applied in order each step.

        Built from the parameters; a scenario adds a rule of its own by overriding this:
        ``return [*super().make_rules(), MyRule(self.p["my_rate"])]`` (docs/OWN_SCENARIOS.md).
        """
        return build_rules(self.p)

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        """One step: sample, (distil), train, social rules, collect.

        Seconds spent in each phase accumulate in ``self.timings`` (task, train, social,
        measure), so a benchmark can tell the kernels' time from the Mesa layer's.
        """
        t, clock, timings = self.steps, time.perf_counter, self.timings
        t0 = clock()
        X, Y = self.task.batch(t, self.p["batch_size"], self.population.dtype)  # reused buffers
        t1 = clock()
        for rule in self.rules:
            X, Y = rule.before_train(self, X, Y)
        t2 = clock()
        self.copies_last_step = 0
        self.losses = self.train(X, Y)
        self._probe_cache = None
        a = self.fitness_memory
        self.fitness_ema = (1 - a) * self.fitness_ema + a * self.losses
        t3 = clock()
        for rule in self.rules:
            rule.after_train(self)
            if rule.changes_networks:
                self._probe_cache = None
        if self.stubbornness is not None:  # Friedkin-Johnsen: back toward x(0)
            S.pull_toward(self.population.params, self.initial_params, self.stubbornness)
            self._probe_cache = None
        t4 = clock()
        if t % self.p["collect_every"] == 0:
            self.collect()
        t5 = clock()
        timings["task"] += t1 - t0
        timings["social"] += (t2 - t1) + (t4 - t3)
        timings["train"] += t3 - t2
        timings["measure"] += t5 - t4

    def run_for(self, duration: float | int) -> None:
        """Mesa's ``run_for``, with ``duration`` checked first: a finite number >= 0 of time
        units (one step each). Mesa's own would run forever for ``inf`` and do nothing for a
        negative or NaN one."""
        check_number("duration", duration, 0.0)
        super().run_for(duration)

    def run_until(self, end_time: float | int) -> None:
        """Mesa's ``run_until``, with ``end_time`` checked first: a finite number."""
        check_number("end_time", end_time)
        super().run_until(end_time)

    def train(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Train every agent on its minibatch; returns the losses (P,) as float64.

        The default is one optimizer step of the population; a scenario whose agents hold more
        than one network (a generator and a discriminator, say) overrides this with an engine
        trainer.
        """
        return self.population.train_step(X, Y).astype(np.float64)

    def extra_measures(self) -> dict[str, float]:
        """A scenario's own measures (named in ``extra_measure_names``), from engine metrics,
        and those of the active social rules (their ``measure_names``). An override adds its
        own to ``super().extra_measures()``."""
        out: dict[str, float] = {}
        for rule in self.rules:
            out.update(rule.measures(self))
        return out

    @property
    def fitness(self) -> np.ndarray:
        """Fitness of each agent, float64 (P,), read by imitation and adoption: the ``fitness``
        callable's values when the model was given one, else :meth:`default_fitness`."""
        if self.fitness_fn is None:
            return self.default_fitness()
        values = self.fitness_fn(self)
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.shape != (self.n_agents,) or not np.all(np.isfinite(arr)):
            shown = values if arr is None else f"an array of shape {arr.shape}"
            if arr is not None and arr.shape == (self.n_agents,):
                shown = "an array with NaN or inf"
            raise fail(
                "fitness",
                shown,
                f"a callable returning {self.n_agents} finite numbers (one per agent)",
            )
        return arr

    def default_fitness(self) -> np.ndarray:
        """Minus each agent's recent (moving-average) training loss, float64 (P,), plus
        ``novelty_weight * novelty`` when the novelty term is on."""
        if self.novelty_weight > 0:
            return -self.fitness_ema + self.novelty_weight * self.novelty()
        return -self.fitness_ema

    def novelty(self) -> np.ndarray:
        """RMS function-space distance of each agent from its neighbours' mean output, (P,)."""
        preds = self.probe_predictions().reshape(self.n_agents, -1)
        preds = np.ascontiguousarray(preds, dtype=self.population.dtype)
        out = np.empty(self.n_agents)
        work = S.ROWS * (self.csr.indices.size / max(self.n_agents, 1) + 4.0) * preds.shape[1]
        cast = preds.dtype != np.float64  # NumPy's float64 mean would have cast through buffers
        sized_call("novelty", blocks(self.n_agents, S.ROWS), work, S.novelty_rms, preds,
                   self.csr.indptr, self.csr.indices, cast, out)  # fmt: skip
        return out

    def probe_predictions(self) -> np.ndarray:
        """Every agent's outputs on the task's probe set, (P, n_probe, d_out).

        Cached until the networks change (training or a social rule).
        """
        if self._probe_cache is None:
            self._probe_cache = self.population.predict(self.task.probe_X)
        return self._probe_cache

    def confident_edges(self, epsilon: float | None, space: str = "function") -> np.ndarray:
        """Mask over CSR entries: neighbours within ``epsilon`` (RMS) of the agent, all if None.

        In function space the RMS is over every output on the task's probe set. For affine agents
        (no hidden layer, linear outputs) it comes from :func:`simulator.metrics.linear_embedding`
        instead, without evaluating any network: q = (d_in + 1) d_out exact coordinates per
        agent instead of n_probe d_out outputs (polarization: 2 instead of 256), computed in
        float64 (the outputs' RMS up to float64 rounding).
        """
        csr = self.csr
        if epsilon is None:
            return np.ones(csr.indices.shape[0], dtype=bool)
        if space == "function":
            values = self._affine_coordinates()
            if values is None:
                values = self.probe_predictions().reshape(self.n_agents, -1)
        else:
            values = self.population.params
        values = np.ascontiguousarray(values)  # its own dtype: the kernel widens exactly
        per_edge = 3.0 * values.shape[1] + EDGE_FLOPS
        work = S.ROWS * per_edge * csr.indices.shape[0] / max(self.n_agents, 1)
        n_blocks = blocks(self.n_agents, S.ROWS)
        args = (values, csr.indptr, csr.indices, float(epsilon))
        return sized_call("confident_edges", n_blocks, work, S.confident_edges, *args)

    def _affine_coordinates(self) -> np.ndarray | None:
        """Affine agents' exact function coordinates (P, q) float64, scaled so that the RMS of
        a row difference over its q columns is the RMS output distance on the probe (that of
        :meth:`probe_predictions` rows); None for other agents, or when the probe's outputs are
        fewer numbers than q (then the predictions are cheaper)."""
        pop = self.population
        d_in, d_out = pop.layers[0], pop.layers[-1]
        n_outputs = self.task.probe_X.reshape(-1, d_in).shape[0] * d_out
        factor = self._affine_factor()
        if factor is None or (d_in + 1) * d_out > n_outputs - 1:
            return None
        Z = affine_coordinates(pop, factor)  # metrics.linear_embedding's, its factor kept
        # ||z_i - z_j||^2 = mean_n ||f_i(x_n) - f_j(x_n)||^2; the kernel divides by q columns,
        # the outputs' RMS by n d_out values: scale by sqrt(q / d_out) = sqrt(d_in + 1)
        Z *= np.sqrt(d_in + 1.0)
        return Z

    def _affine_factor(self) -> np.ndarray | None:
        """The probe's factor that places affine agents, whatever their number of coordinates
        (:func:`simulator.metrics.linear.probe_factor`), None for other agents: computed once
        for each probe array (kept in ``_probe_factor_cache``; the social rules and the
        measures of every step read it)."""
        X = self.task.probe_X
        kept = getattr(self, "_probe_factor_cache", None)
        if kept is None or kept[0] is not X:
            pop = self.population
            q = (pop.layers[0] + 1) * pop.layers[-1]
            kept = self._probe_factor_cache = (X, probe_factor(pop, X, max_dim=q))
        return kept[1]

    # ------------------------------------------------------------------ measurement
    def collect(self) -> None:
        """Compute this step's measures and hand them to the DataCollector."""
        self._probe_cache = None  # the networks may have been changed from outside
        self.last_probe = None
        self._measures = {"step": self.steps, **snapshot(self)}
        self._warn_infinite_measures()
        self.measure_collector.collect(self)
        every = self.p["agent_every"]
        if every and self.steps % every == 0:
            self.agent_frames.append(self.agent_table())
        self.last_probe = None  # this collect's probe pass: transient, never state

    def _warn_infinite_measures(self) -> None:
        """Warn once a run when a measure is +-inf (outputs or losses of diverging agents that
        overflow the dtype on the probe): recorded as measured, never silently. dp_epsilon's
        inf is its rule's to explain (see simulator.privacy)."""
        if getattr(self, "_warned_infinite", False):
            return
        # the usual case in one builtin sum: a finite total means no value is inf (an inf or
        # NaN makes it inf or NaN, as does an overflow; those are looked at one by one)
        if math.isfinite(sum([v for v in self._measures.values() if isinstance(v, float)])):
            return
        bad = [
            k
            for k, v in self._measures.items()
            if not k.startswith("dp_epsilon") and isinstance(v, float) and math.isinf(v)
        ]
        if bad:
            self._warned_infinite = True
            warnings.warn(
                f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} inf at step {self.steps}: "
                "some agents' outputs or losses overflow "
                f"{self.population.dtype} (training is diverging; lower lr or set clip_norm)",
                RuntimeWarning,
                stacklevel=3,
            )

    def agent_table(self) -> pd.DataFrame:
        """One row per agent for the current step (vectorized; no loop over agents).

        Probe losses and accuracies come from this collect's probe pass when it covered every
        agent; otherwise from one statistics-only pass over all agents (no outputs kept).
        """
        from simulator.measures import run_probe

        probe = getattr(self, "last_probe", None)
        if probe is None or probe.rows.size != self.n_agents:
            probe = run_probe(self, None, keep_preds=False)
        table = {
            "step": self.steps,
            "agent": np.arange(self.n_agents),
            "loss": self.losses,
            "probe_loss": probe.loss,
            "fitness": self.fitness,
            "degree": self.csr.degree,
            "cluster": self.cluster_labels,
        }
        if self.task.kind == "generative":  # no truth on the probe: no probe loss (as in model.csv)
            del table["probe_loss"]
        if self.task.kind == "classification":
            table["accuracy"] = probe.accuracy
        if self.communities is not None:
            table["community"] = self.communities
        return pd.DataFrame(table)

    def save(self, path: Any) -> Any:
        """Write a checkpoint of this model to ``path`` (a ``.npz`` file; see
        :mod:`simulator.checkpoint`); ``simulator.load(path)`` continues it. Returns the path."""
        from simulator.checkpoint import save

        return save(self, path)

    def agents_dataframe(self) -> pd.DataFrame:
        """Every per-agent table collected so far (see ``agent_every``)."""
        if not self.agent_frames:
            return pd.DataFrame()
        return pd.concat(self.agent_frames, ignore_index=True)

    def agent_ids(self) -> np.ndarray:
        """Mesa ``unique_id`` of the agent of each row, int64 (P,)."""
        return np.fromiter((a.unique_id for a in self.agent_list), np.int64, self.n_agents)

    def __getattr__(self, name: str) -> Any:
        """A measure of the last collected step, read as an attribute (Mesa string reporters)."""
        measures = self.__dict__.get("_measures")
        if measures is not None and name in measures:
            return measures[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def datacollector(self) -> mesa.DataCollector:
        """Mesa's DataCollector: the model's own (:attr:`measure_collector`, every measure of
        every collected step), or the user's once one is assigned (the Mesa habit
        ``self.datacollector = mesa.DataCollector(...)`` in ``__init__`` and
        ``self.datacollector.collect(self)`` in ``step``). An assigned Mesa collector collects
        when its user says so, never in the model's own collect, so its rows are the user's (one
        per call). An assigned :class:`NeuralDataCollector` (the model's own reporters with more
        of the user's) replaces the model's own instead. The model's table goes on in
        :attr:`measure_collector`, which ``model_dataframe()``, ``simulator run``, sweeps and
        checkpoints read (a checkpoint holds that table, not an assigned collector's rows)."""
        user = self.__dict__.get("_user_collector")
        return self.measure_collector if user is None else user

    @datacollector.setter
    def datacollector(self, value: Any) -> None:
        if isinstance(value, NeuralDataCollector):  # the model's kind: it becomes the model's
            self.__dict__["measure_collector"] = value
            value = None
        self.__dict__["_user_collector"] = value

    def model_dataframe(self) -> pd.DataFrame:
        """The model's own table (:attr:`measure_collector`): one row per collected step,
        ``step`` first."""
        return self.measure_collector.get_model_vars_dataframe().reset_index(drop=True)
