"""What a model will hold in memory, estimated from its parameters before it is built.

:func:`estimate` adds up what a configuration will hold: the networkx graph (edges counted from
the generator's parameters, without building it) and the CSR arrays, the population's
parameters with optimizer state and work buffers, a step's minibatch and activations, and the
probe outputs the measures read (every agent up to ``measure_exact``, a panel above). Mesa's
agents and cells are not counted: the model creates them only when something reads
``model.agents`` or ``model.space``. The constants were calibrated against tracemalloc's peak
for builds and steps of several scenarios (tests/test_app_limits.py checks the estimate stays
within [1x, 4x] of the measured peak on several configurations).

Two users: the browser app refuses a session's configuration above the server's limits
(:mod:`simulator.app.limits`), and every model of at least :data:`CHECK_FROM` agents checks at
its build that it fits this machine (:func:`refuse_if_too_large`), so a configuration that
cannot fit gets a ParameterError naming ``n_agents`` instead of a MemoryError deep in the build
or the out-of-memory killer minutes later. Every model, whatever its size, checks its networks
alone once its task has given the input and output widths (:func:`refuse_networks_too_large`:
a few multiplications), so networks too wide for the machine are refused by name too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from simulator.config import ParameterError, count_text, fail, gib_text, machine_memory

__all__ = [
    "CHECK_FROM",
    "Estimate",
    "estimate",
    "expected_edges",
    "machine_memory",
    "refuse_if_too_large",
    "refuse_networks_too_large",
    "refuse_probe_too_large",
]

# bytes, calibrated with tracemalloc (see the module docstring)
NX_PER_NODE = 700  # networkx node: adjacency dict, node attribute dict
NX_PER_EDGE = 330  # both adjacency entries and the shared edge-attribute dict
CSR_PER_EDGE = 64  # CSR indices both ways, mixing weights, edge lists of the rules
PARAM_COPIES = 3  # params, a social rule's output (mixing), a copy (initial or pre-mixing)
OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "adam": 2}  # optimizer state per parameter
FLOAT = 8  # probe statistics are float64
# bytes a collect holds at once per probe output value (an agent's output for one probe item):
# the outputs at the networks' precision and ~3 float64 arrays of the same shape (probabilities,
# truth, differences); traced: 24.5 bytes per value (float32, 10 agents x 200 items x 20,001
# classes, the build's first collect)
PROBE_COPIES = 3
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


# Agents from which a model's build checks its estimate against the machine's memory (below,
# every scenario's defaults need well under 1 GiB, and the estimate would cost ~1 ms a build).
CHECK_FROM = 50_000


def refuse_if_too_large(cls: type, params: dict[str, Any], n_agents: int) -> None:
    """ParameterError naming ``n_agents`` when a model of scenario ``cls`` with ``params`` cannot
    fit in this machine's memory: when its networks, a step's arrays and the CSR graph alone
    (the estimate without the networkx graph, which a large model builds only on demand, and
    without the app's safety margin) exceed the physical memory. Nothing is checked below
    :data:`CHECK_FROM` agents (``n_agents``: the model's, or its given graph's nodes)."""
    if n_agents < CHECK_FROM:
        return
    try:
        est = estimate(cls, params)
    except (ParameterError, ValueError, TypeError, OSError):
        # what the estimate cannot size (a task whose parameters fit only the real model, e.g.
        # task="arrays" with data for n_agents agents: the estimate's 2-agent instance refuses
        # them) is not checked; the build itself reports any bad parameter
        return
    need = est.population + est.step + est.edges * CSR_PER_EDGE
    have = machine_memory()
    if need <= have:
        return
    fits = int(est.n_agents * have / need)
    gib = 2**30
    raise fail(
        "n_agents",
        est.n_agents,
        f"at most about {fits:,} for this configuration on this machine: "
        f"{est.n_agents:,} agents need about {need / gib:,.1f} GiB (networks with optimizer "
        f"state {est.population / gib:,.1f}, a step's arrays {est.step / gib:,.1f}, the graph "
        f"{est.edges * CSR_PER_EDGE / gib:,.1f}) of its {have / gib:,.1f} GiB",
    )


def refuse_networks_too_large(
    layers: tuple[int, ...], n_agents: int, dtype: str, optimizer: str
) -> None:
    """ParameterError when ``n_agents`` networks of widths ``layers`` (inputs, hidden layers,
    outputs) with their optimizer state and working copies cannot fit in this machine's memory,
    checked before any of them is made. It names ``hidden`` when a hidden layer is the widest,
    else ``task_params`` (the task's inputs or outputs: ``n_classes``, say)."""
    n_params = sum((a + 1) * b for a, b in itertools.pairwise(layers))
    itemsize = 8 if str(dtype) == "float64" else 4
    copies = PARAM_COPIES + OPTIMIZER_COPIES.get(str(optimizer), 2)
    need = n_agents * n_params * itemsize * copies
    have = machine_memory()
    if need <= have:
        return
    hidden = layers[1:-1]
    wide_hidden = bool(hidden) and max(hidden) >= max(layers[0], layers[-1])
    name = "hidden" if wide_hidden else "task_params"
    shown = tuple(hidden) if wide_hidden else f"inputs {layers[0]:,}, outputs {layers[-1]:,}"
    raise fail(
        name,
        shown,
        f"networks that fit this machine: {n_agents:,} of widths {layers} have "
        f"{count_text(n_params)} parameters each and need about {gib_text(need)} with their "
        f"{optimizer} state and working copies, of its {gib_text(have)}",
    )


def refuse_probe_too_large(measured: int, n_probe: int, d_out: int, dtype: str) -> None:
    """ParameterError naming ``task_params`` when a collect's outputs on the probe set cannot fit
    in this machine's memory: ``measured`` agents' outputs on ``n_probe`` items of ``d_out``
    values, at the networks' precision and with :data:`PROBE_COPIES` float64 arrays of that
    shape. Checked at every build, whatever the population size (a few multiplications): a task
    with very many outputs (``task="arrays"`` whose integer labels run to millions: one class
    per label value up to the largest) would otherwise meet the out-of-memory killer at the
    first collect."""
    itemsize = 8 if str(dtype) == "float64" else 4
    values = measured * n_probe * d_out
    need = values * (itemsize + PROBE_COPIES * FLOAT)
    have = machine_memory()
    if need <= have:
        return
    raise fail(
        "task_params",
        f"outputs {d_out:,}, probe {n_probe:,} items",
        f"outputs and a probe set whose measures fit this machine: a collect holds the outputs "
        f"of {measured:,} agents on {n_probe:,} probe items x {d_out:,} outputs "
        f"({count_text(values)} values), about {gib_text(need)} of its {gib_text(have)}. "
        "Fewer outputs (integer labels make one class per value up to the largest: number them "
        "0, 1, 2, ...), a smaller probe set, or fewer measured agents (measure_agents, "
        "measure_exact)",
    )
