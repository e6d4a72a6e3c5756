"""Bounded app sessions: a model's memory estimated before it is built, and session slots.

One browser session asking for a million agents on a dense graph would otherwise take the
server (and every other visitor's session) down with it. Before building, :func:`estimate`
adds up what a configuration will hold: the networkx graph the app draws from and the CSR
arrays (edges counted from the generator's parameters, without building it), the population's
parameters with optimizer state and work buffers, a step's minibatch and activations, and the
probe outputs the measures read (every agent up to ``measure_exact``, a panel above). Mesa's
agents and cells are not counted: the model creates them only when something reads
``model.agents`` or ``model.space``, which the app does not. :meth:`Limits.check` refuses a
configuration above the server's limits with a message for the page; the previous model stays.
The constants were calibrated against tracemalloc's peak for builds and steps of several
scenarios (tests/test_app_limits.py checks the estimate stays within [1x, 4x] of the measured
peak on several configurations).

The limits come from ``simulator app`` flags (``--max-agents``, ``--max-memory``,
``--max-sessions``), passed to the server process as environment variables.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from simulator.config import ParameterError

__all__ = ["ENV", "Estimate", "Limits", "SessionSlots", "estimate", "expected_edges"]

ENV = {
    "max_agents": "NEUROPOP_APP_MAX_AGENTS",
    "max_memory_mb": "NEUROPOP_APP_MAX_MEMORY_MB",
    "max_sessions": "NEUROPOP_APP_MAX_SESSIONS",
}
# bytes, calibrated with tracemalloc (see the module docstring)
NX_PER_NODE = 700  # networkx node: adjacency dict, node attribute dict
NX_PER_EDGE = 330  # both adjacency entries and the shared edge-attribute dict
CSR_PER_EDGE = 64  # CSR indices both ways, mixing weights, edge lists of the rules
PARAM_COPIES = 3  # params, a social rule's output (mixing), a copy (initial or pre-mixing)
OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "adam": 2}  # optimizer state per parameter
FLOAT = 8  # probe statistics are float64
SAFETY = 1.25  # margin on the sum: the estimate came within 1.1-2.7x of traced peaks (tests)
BASE = 16 * 2**20  # a model's fixed Python objects (task, rules, collector)


@dataclass(frozen=True)
class Estimate:
    """Estimated memory of a configuration, in bytes, by part."""

    n_agents: int
    edges: int
    graph: int
    population: int
    step: int

    @property
    def total(self) -> int:
        """The parts' sum with a safety margin, in bytes."""
        return int(SAFETY * (self.graph + self.population + self.step) + BASE)

    def describe(self) -> str:
        mib = 2**20
        return (
            f"about {self.total / mib:,.0f} MiB ({self.n_agents:,} agents, {self.edges:,} edges: "
            f"graph {self.graph / mib:,.0f}, networks "
            f"{self.population / mib:,.0f}, a step {self.step / mib:,.0f} MiB)"
        )


def expected_edges(graph: Any, n: int, graph_params: dict | None) -> int:
    """Edges the graph will have, computed from the generator's parameters (not built)."""
    from simulator.graph import GRAPH_NAMES, resolve_graph_params

    if isinstance(graph, nx.Graph):
        return graph.number_of_edges()
    if not isinstance(graph, str) or graph not in GRAPH_NAMES:
        path = Path(str(graph))
        if path.is_file():  # a file: about one edge per line (GraphML: per ~60 bytes)
            size = path.stat().st_size
            return size // 60 if path.suffix.lower() in (".graphml", ".xml") else size // 4
        return n * 4
    p = resolve_graph_params(graph, n, graph_params)
    pairs = n * (n - 1) / 2
    if graph == "complete":
        return int(pairs)
    if graph in ("ring", "watts_strogatz"):
        return n * p["k"] // 2
    if graph == "torus":
        return 2 * n
    if graph == "erdos_renyi":
        return int(p["p"] * pairs)
    if graph == "barabasi_albert":
        return p["m"] * max(n - p["m"], 0)
    if graph == "random_regular":
        return n * p["d"] // 2
    if graph == "sbm":
        blocks = p["blocks"]
        sizes = [n // blocks] * blocks if isinstance(blocks, int) else list(blocks)
        inside = sum(s * (s - 1) / 2 for s in sizes)
        return int(p["p_in"] * inside + p["p_out"] * (pairs - inside))
    return n - 1  # star


def _task_shape(p: dict) -> tuple[int, int, int, str]:
    """(d_in, d_out, n_probe, output) of the task, from a tiny instance (2 agents)."""
    from simulator.tasks import make_task

    task = make_task(p["task"], 2, 0, None, **p["task_params"])
    return task.d_in, task.d_out, int(task.probe_X.shape[0]), task.output


def estimate(cls: type, params: dict[str, Any]) -> Estimate:
    """The memory a model of scenario ``cls`` with ``params`` would need (validated first)."""
    from simulator.params import resolve

    p = resolve(cls.param_specs(), params, cls.__name__)
    graph = p["graph"]
    n = graph.number_of_nodes() if isinstance(graph, nx.Graph) else p["n_agents"]
    default_graph = cls.param_specs()["graph"].default
    same = isinstance(graph, str) and graph == default_graph
    gp = p["graph_params"] if same or "graph_params" in params else None
    edges = expected_edges(graph, n, gp)
    d_in, d_out, n_probe, output = _task_shape(p)
    widths = (d_in, *p["hidden"], d_out)
    n_params = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    itemsize = 8 if p["dtype"] == "float64" else 4
    batch = p["batch_size"]
    population = n * n_params * itemsize * (PARAM_COPIES + OPTIMIZER_COPIES[p["optimizer"]])
    # the kernels keep activations in per-thread scratch; what scales with the population is
    # distillation's neighbour outputs and targets (a minibatch's worth of every layer)
    distils = p["distill_weight"] > 0 or p["distill_mode"] == "sample"
    activations = n * batch * sum(widths) * itemsize if distils else 0
    data = n * batch * (d_in + d_out) * itemsize * 2  # a minibatch, and its distilled targets
    # outputs (and first hidden layer) on the probe set of the measured agents, with copies
    # (probabilities, decisions, differences); per-agent statistics for every agent
    measured = n if n <= p["measure_exact"] else p["measure_agents"]
    probe = measured * n_probe * (d_out * 2 + widths[1]) * itemsize + n * 16 * FLOAT
    if p["bc_rate"] > 0 and p["confidence"] > 0 and p["confidence_space"] == "function":
        q = (d_in + 1) * d_out  # affine agents are compared by q exact coordinates instead
        affine = not p["hidden"] and output == "linear" and q < n_probe * d_out
        probe += n * (2 * q * FLOAT if affine else n_probe * d_out * (itemsize + FLOAT))
    extra = n * getattr(cls, "memory_per_agent", 0) * max(batch, 1) // 64
    return Estimate(
        n_agents=n,
        edges=edges,
        graph=n * NX_PER_NODE + edges * (NX_PER_EDGE + CSR_PER_EDGE),
        population=population + extra,
        step=activations + data + probe,
    )


@dataclass(frozen=True)
class Limits:
    """What one session may build, and how many sessions may run at once.

    Parameters
    ----------
    max_agents : int
        Largest ``n_agents`` (or nodes of a given graph) a session may build.
    max_memory_mb : float
        Largest estimated memory of one session's model, in MiB.
    max_sessions : int
        Browser sessions served at once; one more sees a "server busy" message.
    """

    max_agents: int = 100_000
    max_memory_mb: float = 1024.0
    max_sessions: int = 4

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Limits:
        """The limits the ``simulator app`` command set (environment), else the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field, var in ENV.items():
            if env.get(var):
                kind = float if field == "max_memory_mb" else int
                values[field] = kind(env[var])
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return {var: str(getattr(self, field)) for field, var in ENV.items()}

    def check(self, cls: type, params: dict[str, Any]) -> Estimate:
        """The estimate for ``cls(**params)``; a ParameterError if it exceeds these limits."""
        est = estimate(cls, params)
        if est.n_agents > self.max_agents:
            raise ParameterError(
                f"n_agents={est.n_agents:,} is over this server's limit of {self.max_agents:,} "
                "agents per session (the `simulator app --max-agents` flag)"
            )
        if est.total > self.max_memory_mb * 2**20:
            raise ParameterError(
                f"this configuration needs {est.describe()}, over this server's limit of "
                f"{self.max_memory_mb:,.0f} MiB per session (`simulator app --max-memory`); "
                "fewer agents, a sparser graph or smaller networks fit"
            )
        return est


class SessionSlots:
    """At most ``limit`` sessions hold a slot at once (thread-safe; one per server process)."""

    def __init__(self, limit: int):
        self.limit = max(int(limit), 1)
        self._held: set[int] = set()
        self._lock = threading.Lock()

    def acquire(self, owner: int) -> bool:
        """Take a slot for ``owner`` (an id); True if it has one (again), False if full."""
        with self._lock:
            if owner in self._held:
                return True
            if len(self._held) >= self.limit:
                return False
            self._held.add(owner)
            return True

    def release(self, owner: int) -> None:
        with self._lock:
            self._held.discard(owner)

    @property
    def used(self) -> int:
        return len(self._held)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
