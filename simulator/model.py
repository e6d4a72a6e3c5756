"""NeuralModel and NeuralAgent: Mesa agents holding neural networks on a social graph.

One step is a template that scenarios configure through parameters:

1. the task draws a minibatch per agent (``X (P, B, d_in)``, ``Y (P, B, d_out)``);
2. social rules may change it (distillation from neighbours' predictions);
3. the whole population trains in one kernel call;
4. social rules act over the graph (gossip, imitation, bounded confidence, diversity, FedAvg);
5. every ``collect_every`` steps the measures are collected through Mesa's DataCollector.

No Python loop over agents runs on this path: the graph is turned into CSR arrays once and
again only when :meth:`NeuralModel.set_graph` changes it. The Mesa agents (one
:class:`NeuralAgent` per node of a :class:`mesa.discrete_space.Network`) are views: each knows
its row of ``population.params``.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, ClassVar

import mesa
import networkx as nx
import numpy as np
import pandas as pd
from mesa.discrete_space import FixedAgent, Network

from simulator import metrics
from simulator.graph import build_graph, communities, to_csr
from simulator.kernels import social as S
from simulator.layout import AgentNetwork
from simulator.measures import measure_names, snapshot
from simulator.model_params import BASE_PARAMS
from simulator.params import Param, resolve
from simulator.population import Population
from simulator.rng import coerce_seed, stream, stream_seed
from simulator.social import build_rules
from simulator.tasks import make_task


class NeuralAgent(FixedAgent):
    """An agent on a node of the social graph, holding a neural network.

    The network is a view of row ``index`` of ``model.population.params`` (no copy).
    ``step`` is not called on the model's hot path: the population trains in one kernel call.
    """

    def __init__(self, model: NeuralModel, cell: Any, index: int):
        super().__init__(model)
        self.cell = cell
        self.index = index

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
        """Minus the moving average of recent losses."""
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


class NeuralModel(mesa.Model):
    """A population of neural-network agents on a graph, learning from data and each other.

    Every parameter of :data:`BASE_PARAMS` (and a scenario's ``params``) is a keyword
    argument with a default, so ``NeuralModel()`` works; ``rng`` is the seed (an int; None draws
    one and records it in ``model.seed``).
    """

    params: ClassVar[dict[str, Param]] = BASE_PARAMS
    fitness_memory: ClassVar[float] = 0.3  # weight of the newest loss in the fitness average
    extra_measure_names: ClassVar[tuple[str, ...]] = ()  # a scenario's own measures

    @classmethod
    def param_specs(cls) -> dict[str, Param]:
        """The declared parameters of this model (defaults, types, ranges)."""
        return dict(cls.params)

    def __init__(self, rng: Any = None, **kwargs: Any):
        seed = coerce_seed(rng)
        super().__init__(rng=seed)
        self.seed = seed
        self.p = resolve(self.param_specs(), kwargs, type(self).__name__)
        self._given = set(kwargs)
        self.config = {**self.p, "seed": seed}
        self._build_graph()
        self._build_population()
        self.rules = build_rules(self.p)
        for rule in self.rules:
            rule.graph_changed(self)
        self.social_rng = stream(seed, "social")
        self.measure_seed = stream_seed(seed, "measure")
        self.losses = self.population.loss(*self.task.sample(0, self.p["batch_size"])).astype(
            np.float64
        )
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
        ]
        self.cka_baseline = self._cka_baseline() if "cka_baseline" in self.measure_names else 0.0
        self.datacollector = mesa.DataCollector(
            model_reporters={
                name: partial(_read_measure, name) for name in ("step", *self.measure_names)
            }
        )
        self.agent_frames: list[pd.DataFrame] = []
        self.timings = dict.fromkeys(("task", "train", "social", "measure"), 0.0)
        self.collect()

    # ------------------------------------------------------------------ construction
    def _build_graph(self) -> None:
        p = self.p
        graph = p["graph"]
        n = None if isinstance(graph, nx.Graph) else p["n_agents"]
        # a scenario's default graph_params belong to its default graph: another graph gets
        # only the graph_params the user gave explicitly
        default_graph = self.param_specs()["graph"].default
        same = isinstance(graph, str) and graph == default_graph
        gp = p["graph_params"] if same or "graph_params" in self._given else None
        self.graph = build_graph(graph, n, gp, seed=stream_seed(self.seed, "graph"))
        self.n_agents = self.graph.number_of_nodes()
        self.communities = communities(self.graph)
        self.csr = to_csr(self.graph)
        self.space = Network(self.graph, capacity=1, random=self.random, layout=None)
        cells = [self.space[i] for i in range(self.n_agents)]
        self.agent_list = list(
            NeuralAgent.create_agents(self, self.n_agents, cells, list(range(self.n_agents)))
        )

    def _build_population(self) -> None:
        p, n = self.p, self.n_agents
        self.task = make_task(
            p["task"], n, stream_seed(self.seed, "data"), self.communities, **p["task_params"]
        )
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
            dtype=p["dtype"],
        )
        self.pop_kwargs = kwargs
        if p["init"] == "shared":
            one = Population(1, seed=init_rng, lr=0.0, **kwargs)
            params = np.repeat(one.params, n, axis=0)
            if p["init_noise"] > 0:
                params += (init_rng.standard_normal(params.shape) * p["init_noise"]).astype(
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
        """Replace the social graph (same nodes 0..n-1); rebuild CSR arrays and mixing weights."""
        G = build_graph(graph, self.n_agents, None, seed=0)
        self.graph = G
        self.communities = communities(G)
        self.csr = to_csr(G)
        for rule in self.rules:
            rule.graph_changed(self)

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        """One step: sample, (distil), train, social rules, collect.

        Seconds spent in each phase accumulate in ``self.timings`` (task, train, social,
        measure), so a benchmark can tell the kernels' time from the Mesa layer's.
        """
        t, clock, timings = self.steps, time.perf_counter, self.timings
        t0 = clock()
        X, Y = self.task.sample(t, self.p["batch_size"])
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
            self._probe_cache = None  # the rule may have changed the networks
        t4 = clock()
        if t % self.p["collect_every"] == 0:
            self.collect()
        t5 = clock()
        timings["task"] += t1 - t0
        timings["social"] += (t2 - t1) + (t4 - t3)
        timings["train"] += t3 - t2
        timings["measure"] += t5 - t4

    def train(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Train every agent on its minibatch; returns the losses (P,) as float64.

        The default is one optimizer step of the population; a scenario whose agents hold more
        than one network (a generator and a discriminator, say) overrides this with an engine
        trainer.
        """
        return self.population.train_step(X, Y).astype(np.float64)

    def extra_measures(self) -> dict[str, float]:
        """A scenario's own measures (named in ``extra_measure_names``), from engine metrics."""
        return {}

    @property
    def fitness(self) -> np.ndarray:
        """Fitness of each agent, shape (P,): minus its recent (moving-average) training loss,
        plus ``novelty_weight * novelty`` when the novelty term is on."""
        if self.novelty_weight > 0:
            return -self.fitness_ema + self.novelty_weight * self.novelty()
        return -self.fitness_ema

    def novelty(self) -> np.ndarray:
        """RMS function-space distance of each agent from its neighbours' mean output, (P,)."""
        preds = self.probe_predictions().reshape(self.n_agents, -1).astype(self.population.dtype)
        mean = np.empty_like(preds)
        S.neighbour_mean(np.ascontiguousarray(preds), self.csr.indptr, self.csr.indices, mean)
        return np.sqrt(((preds - mean) ** 2).mean(axis=1, dtype=np.float64))

    def probe_predictions(self) -> np.ndarray:
        """Every agent's outputs on the task's probe set, (P, n_probe, d_out).

        Cached until the networks change (training or a social rule).
        """
        if self._probe_cache is None:
            self._probe_cache = self.population.predict(self.task.probe_X)
        return self._probe_cache

    def confident_edges(self, epsilon: float | None, space: str = "function") -> np.ndarray:
        """Mask over CSR entries: neighbours within ``epsilon`` (RMS) of the agent, all if None."""
        csr = self.csr
        if epsilon is None:
            return np.ones(csr.indices.shape[0], dtype=bool)
        if space == "function":
            values = self.probe_predictions().reshape(self.n_agents, -1)
        else:
            values = self.population.params
        return S.confident_edges(
            np.ascontiguousarray(values, dtype=np.float64), csr.indptr, csr.indices, float(epsilon)
        )

    # ------------------------------------------------------------------ measurement
    def collect(self) -> None:
        """Compute this step's measures and hand them to the DataCollector."""
        self._probe_cache = None  # the networks may have been changed from outside
        self._measures = {"step": self.steps, **snapshot(self)}
        self.datacollector.collect(self)
        every = self.p["agent_every"]
        if every and self.steps % every == 0:
            self.agent_frames.append(self.agent_table())

    def agent_table(self) -> pd.DataFrame:
        """One row per agent for the current step (vectorized; no loop over agents)."""
        pop, task = self.population, self.task
        probe_Y = task.probe_Y_at(self.steps) if hasattr(task, "probe_Y_at") else task.probe_Y
        table = {
            "step": self.steps,
            "agent": np.arange(self.n_agents),
            "loss": self.losses,
            "probe_loss": pop.loss(task.probe_X, probe_Y).astype(np.float64),
            "fitness": self.fitness,
            "degree": self.csr.degree,
            "cluster": self.cluster_labels,
        }
        if task.kind == "classification":
            from simulator.measures import class_probabilities

            probs = class_probabilities(self.probe_predictions())
            table["accuracy"] = (probs.argmax(-1) == task.probe_labels[0][None]).mean(axis=1)
        if self.communities is not None:
            table["community"] = self.communities
        return pd.DataFrame(table)

    def agents_dataframe(self) -> pd.DataFrame:
        """Every per-agent table collected so far (see ``agent_every``)."""
        if not self.agent_frames:
            return pd.DataFrame()
        return pd.concat(self.agent_frames, ignore_index=True)

    def model_dataframe(self) -> pd.DataFrame:
        """The DataCollector's model table: one row per collected step, ``step`` first."""
        return self.datacollector.get_model_vars_dataframe().reset_index(drop=True)


def _read_measure(name: str, model: NeuralModel) -> float:
    """DataCollector model reporter (bound with functools.partial): one measure of the snapshot."""
    return model._measures[name]
