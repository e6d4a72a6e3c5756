"""The parameters every NeuralModel declares: defaults, types, allowed ranges, help.

Scenarios change defaults with ``models._base.with_defaults``; the command line, the app and
sweep specs are validated against these declarations (see :mod:`simulator.params`).
"""

from __future__ import annotations

from simulator import config as C
from simulator.graph import GRAPH_NAMES, MIXING_KINDS
from simulator.params import Param
from simulator.privacy import ACCOUNTANTS
from simulator.schedules import SCHEDULES
from simulator.social import GOSSIP_ORDERS
from simulator.stubbornness import PerAgentParam
from simulator.tasks import TASKS

BASE_PARAMS: dict[str, Param] = {
    "n_agents": Param(100, "int", 2, 1_000_000, help="number of agents (nodes of the graph)"),
    "graph": Param(
        "watts_strogatz",
        "str",
        choices=GRAPH_NAMES,
        open_choices=True,
        help="social graph: a name, a networkx graph or an edge-list/GraphML file (a graph or "
        "file gives n_agents its node count when n_agents is not given)",
    ),
    "graph_params": Param({}, "dict", help="generator parameters, e.g. {'k': 4, 'p': 0.1}"),
    "task": Param("teacher", "str", choices=tuple(TASKS), help="what agents learn"),
    "task_params": Param({}, "dict", help="task parameters, e.g. {'classes_per_agent': 2}"),
    "hidden": Param((16,), "ints", help="hidden layer widths"),
    "activation": Param("tanh", "str", choices=tuple(C.ACTIVATIONS), help="hidden activation"),
    "bias": Param(
        True, "bool", help="layers with biases (false: W^T a only; hidden=() is least squares)"
    ),
    "optimizer": Param("sgd", "str", choices=tuple(C.OPTIMIZERS)),
    "lr": Param(0.05, "float", 0, 10, help="learning rate; 0 turns local training off"),
    "lr_spread": Param(
        0.0, "float", 0, 1, help="heterogeneous learners: lr_i ~ lr * U(1 - spread, 1 + spread)"
    ),
    "batch_size": Param(
        32, "int", 0, 4096, help="samples per agent per step; 0: the full data (task='arrays')"
    ),
    "weight_decay": Param(0.0, "float", 0, 10),
    "clip_norm": Param(
        0.0, "float", 0, 1e6, help="each agent's gradient clipped to this L2 norm; 0: off"
    ),
    "init": Param(
        "shared",
        "str",
        choices=("shared", "independent"),
        help="start every agent from one initialization, or each from its own",
    ),
    "init_noise": Param(0.0, "float", 0, 10, help="per-agent noise added to a shared init"),
    "dtype": Param("float32", "str", choices=("float32", "float64")),
    # social rules (a zero strength switches a rule off)
    "mixing_rate": Param(0.0, "float", 0, 1, help="gossip: weight averaging rate (1: full round)"),
    "mixing": Param("metropolis", "str", choices=MIXING_KINDS, help="gossip weights"),
    "gossip_mode": Param("sync", "str", choices=("sync", "pairwise")),
    "distill_weight": Param(
        0.0, "float", 0, 1, help="weight of neighbours' predictions in targets"
    ),
    "distill_neighbours": Param("all", "str", choices=("all", "one")),
    "distill_mode": Param(
        "soft",
        "str",
        choices=("soft", "sample"),
        help="soft targets, or labels sampled from neighbours (generated data)",
    ),
    "real_share": Param(0.0, "float", 0, 1, help="sample mode: share of samples with real labels"),
    "sample_noise": Param(0.0, "float", 0, 100, help="sample mode, regression: noise std"),
    "distill_start": Param(
        0,
        "int",
        0,
        100_000_000,
        help="distillation: first steps on the agents' own data only (0: from the start)",
    ),
    "confidence": Param(
        0.0, "float", 0, 1e6, help="bounded confidence epsilon (function-space RMS); 0: no bound"
    ),
    "confidence_space": Param("function", "str", choices=("function", "weights")),
    "bc_rate": Param(0.0, "float", 0, 1, help="bounded-confidence averaging rate"),
    "imitation_rate": Param(0.0, "float", 0, 1, help="probability an agent considers copying"),
    "beta": Param(10.0, "float", 0, 1e4, help="Fermi selection strength"),
    "mutation": Param(0.01, "float", 0, 10, help="std of Gaussian mutation of a copy"),
    "adopt_share": Param(0.0, "float", 0, 1, help="share of agents adopting one popular model"),
    "adopt_source": Param(
        "best_independent",
        "str",
        choices=("best", "best_independent", "first"),
        help="the popular model: fittest agent, fittest non-adopter, or agent 0",
    ),
    "novelty_threshold": Param(
        0.0, "float", 0, 1e6, help="detector: function dispersion below which novelty is rewarded"
    ),
    "novelty_rate": Param(0.05, "float", 0, 10, help="detector: novelty weight change per step"),
    "novelty_weight": Param(0.0, "float", 0, 1e6, help="initial weight of novelty in fitness"),
    "diversity": Param(0.0, "float", 0, 100, help="diversity pressure strength lambda"),
    "fedavg_every": Param(0, "int", 0, 100_000, help="federated averaging period; 0: off"),
    "fedavg_noise": Param(
        0.0, "float", 0, 100, help="std of noise on shared models (not differential privacy)"
    ),
    "fedavg_participation": Param(
        1.0,
        "float",
        0,
        1,
        help="FedAvg: each client takes part in a round with this probability (DP-FedAvg's q)",
    ),
    # the experiment kit: schedules, orders of operations, stubbornness, DP-FedAvg
    "schedule": Param(
        "synchronous",
        "str",
        choices=SCHEDULES,
        help="imitation, adoption, bounded confidence: all at once, each once in random "
        "order, or n_agents random single updates (Moran/voter)",
    ),
    "gossip_order": Param(
        "train_then_mix",
        "str",
        choices=GOSSIP_ORDERS,
        help="gossip: adapt-then-combine, combine-then-adapt, or D-PSGD (W x - lr grad f(x))",
    ),
    "stubbornness": PerAgentParam(
        0.0,
        "float",
        0,
        1,
        help="Friedkin-Johnsen pull toward each agent's initial parameters (or one per agent)",
    ),
    "dp_clip": Param(
        0.0, "float", 0, 1e6, help="DP-FedAvg: L2 bound on each client's update; 0: off"
    ),
    "dp_noise_multiplier": Param(
        1.0, "float", 0, 1e4, help="DP-FedAvg: noise std on the sum, in units of dp_clip"
    ),
    "dp_delta": Param(1e-5, "float", 1e-15, 0.5, help="DP-FedAvg: delta of the reported epsilon"),
    "dp_accountant": Param(
        "rdp",
        "str",
        choices=ACCOUNTANTS,
        help="DP-FedAvg privacy accounting: Renyi DP, or PLD (for dp_noise_multiplier 0 or >= 0.1)",
    ),
    # measurement
    "collect_every": Param(1, "int", 1, 1_000_000, help="collect measures every k steps"),
    "agent_every": Param(
        0,
        "int",
        0,
        1_000_000,
        help="one row per agent every k steps (at collected steps); 0: never",
    ),
    "measures": Param("standard", "str", choices=("standard", "fast")),
    "measure_exact": Param(
        1000,
        "int",
        0,
        1_000_000_000,
        help="function-space measures on every agent up to this many agents (0: always)",
    ),
    "measure_agents": Param(
        256,
        "int",
        2,
        1_000_000,
        help="above measure_exact agents, function-space measures on a seeded panel of this many",
    ),
    "cluster_eps": Param(0.1, "float", 1e-9, 1e6, help="function-space cluster radius (RMS)"),
    "consensus_tol": Param(1e-3, "float", 0, 1e6, help="function dispersion counted as consensus"),
}
