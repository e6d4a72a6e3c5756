"""Agents on the probe set: one forward pass with every per-agent statistic, and the panel.

:func:`probe_pass` evaluates a set of agents on the probe once (a parallel Numba kernel,
:func:`simulator.kernels.measure_probe.probe_pass`) and returns their outputs (optional), the
first hidden layer of a few of them (for CKA), their decisions and, per agent, the loss,
squared error, accuracy, predictive entropy and output spread. Every function-space measure of
a collected step is computed from one such pass.

:func:`measure_panel` is the seeded sample of agents those measures use above a population size
(every agent at or below it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from simulator.config import as_real_array, check_int, fail
from simulator.kernels import measure_probe as KP
from simulator.metrics._checks import all_finite, as_array, check_population


class ProbePass(NamedTuple):
    """The result of :func:`probe_pass` for agents ``rows`` (m of them).

    preds : (m, n, d_out) in the population's dtype, or None (not kept).
    hidden : (c, n, d_1) first-layer activations of the agents ``rows[hidden_pos]``, or None.
    decisions : int64 (m, n) class decisions (argmax; ``> 0.5`` for one output), or None.
    loss, sq_error, accuracy, entropy, spread : float64 (m,); NaN where not computed (no truth,
    no labels). ``spread`` is the mean over outputs of the std of the outputs over the probe.
    """

    rows: np.ndarray
    preds: np.ndarray | None
    hidden: np.ndarray | None
    decisions: np.ndarray | None
    loss: np.ndarray
    sq_error: np.ndarray
    accuracy: np.ndarray
    entropy: np.ndarray
    spread: np.ndarray


class ProbeInputs(NamedTuple):
    """The arguments of one probe pass in the kernel's form (:func:`prepare_probe`), checked.

    rows : int64 (m,). X : (1, n, d_in) in the population's dtype. Y : (0, 1 or m, n, d_out)
    rows in the population's dtype (P-row truths already read at ``rows``). truth : float64
    (n, d_out) or (0, d_out). labels : int64 (n,) or (0,). hidden_slot : int64 (m,), the row of
    each agent's first hidden layer in the output (-1: none); n_hidden : rows of that output.
    """

    rows: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    truth: np.ndarray
    labels: np.ndarray
    hidden_slot: np.ndarray
    n_hidden: int


def probe_pass(
    pop: Any,
    X: Any,
    rows: Any = None,
    Y: Any = None,
    truth: Any = None,
    labels: Any = None,
    keep_preds: bool = True,
    hidden_pos: Any = None,
) -> ProbePass:
    """Evaluate agents ``rows`` of ``pop`` on the probe ``X`` once, with per-agent statistics.

    Parameters
    ----------
    pop : Population. Read only.
    X : float array (n, d_in): the probe. Finite (in the population's dtype).
    rows : int array (m,), optional: the agents (default: all, in order).
    Y : float array (1 or P, n, d_out), optional: the truth for each agent's loss (the same
        loss as ``pop.loss``); a P-row truth is read at ``rows``. Finite (in the population's
        dtype; checked when a loss comes out NaN or inf, so without a pass over Y otherwise).
    truth : float array (n, d_out), optional: a common truth for the squared error. Finite.
    labels : int array (n,), optional: class labels for decisions, accuracy and entropy.
    keep_preds : bool: return the outputs (m, n, d_out); False keeps only the statistics.
    hidden_pos : int array, optional: positions into ``rows`` whose first hidden layer is
        returned (networks with a hidden layer only).

    Returns
    -------
    ProbePass
    """
    if not isinstance(keep_preds, bool | np.bool_):
        raise fail("keep_preds", keep_preds, "True or False")
    inputs = prepare_probe(pop, X, rows, Y, truth, labels, hidden_pos)
    return run_prepared(pop, inputs, bool(keep_preds))


def prepare_probe(
    pop: Any,
    X: Any,
    rows: Any = None,
    Y: Any = None,
    truth: Any = None,
    labels: Any = None,
    hidden_pos: Any = None,
) -> ProbeInputs:
    """The arguments of :func:`probe_pass` (which see) checked and in the kernel's form, for
    :func:`run_prepared`: a caller that runs the same probe again (the measures, every
    collect) checks and converts it once."""
    P = check_population(pop).params.shape[0]
    if rows is None:
        rows = np.arange(P, dtype=np.int64)
    else:
        rows = _indices("rows", rows, None, P, "agent indices")
        if rows.size == 0:
            raise fail("rows", "no indices", f"at least one agent index in [0, {P})")
    m = rows.size
    Xa = pop._inputs(X, "X", n_rows=1)
    if not all_finite(Xa):  # a NaN or inf, or a value beyond the population's dtype
        raise fail("X", f"an array with NaN or inf (as {pop.dtype})", "finite everywhere")
    n, dims, dt = Xa.shape[1], pop.layers, pop.dtype
    d_out = dims[-1]
    Ya = np.empty((0, n, d_out), dtype=dt)
    if Y is not None:
        Ya = as_real_array("Y", Y)
        if Ya.ndim == 2:
            Ya = Ya[None]
        if Ya.ndim != 3:
            raise fail("Y.shape", Ya.shape, f"(1 or {P}, {n}, {d_out})")
        if Ya.shape[0] == P and P > 1:
            Ya = Ya[rows]
        Ya = np.ascontiguousarray(Ya, dtype=dt)
        if Ya.shape[0] not in (1, m) or Ya.shape[1:] != (n, d_out):
            raise fail("Y.shape", Ya.shape, f"(1 or {P}, {n}, {d_out})")
    T = np.empty((0, d_out))
    if truth is not None:
        T = as_array("truth", truth)
        if T.dtype.kind not in "fiub" or T.size != n * d_out:
            raise fail("truth", f"an array of shape {T.shape}", f"({n}, {d_out}) real numbers")
        T = np.ascontiguousarray(T, dtype=np.float64).reshape(n, d_out)
        if not all_finite(T):
            raise fail("truth", "an array with NaN or inf", "finite everywhere")
    lab = np.empty(0, dtype=np.int64)
    if labels is not None:
        lab = _indices("labels", labels, n, max(2, d_out), f"{n} class labels")
    pos = np.empty(0, dtype=np.int64)
    if hidden_pos is not None:
        pos = _indices("hidden_pos", hidden_pos, None, m, "distinct positions into rows")
        if np.unique(pos).size != pos.size:
            raise fail("hidden_pos", "repeated positions", "distinct positions into rows")
    if pos.size and len(dims) < 3:
        raise fail("hidden_pos", "positions", "None for networks without a hidden layer")
    slot = np.full(m, -1, dtype=np.int64)
    slot[pos] = np.arange(pos.size)
    return ProbeInputs(rows, Xa, Ya, T, lab, slot, int(pos.size))


def run_prepared(pop: Any, inputs: ProbeInputs, keep_preds: bool) -> ProbePass:
    """:func:`probe_pass` of inputs from :func:`prepare_probe` for this ``pop`` (not checked
    again: the same population's shapes and dtype, unchanged arrays)."""
    rows, Xa, Ya = inputs.rows, inputs.X, inputs.Y
    m, n, dims, dt = rows.size, Xa.shape[1], pop.layers, pop.dtype
    lab = inputs.labels
    preds = np.empty((m if keep_preds else 0, n, dims[-1]), dtype=dt)
    hidden = np.empty((inputs.n_hidden, n, dims[1] if len(dims) > 2 else 1), dtype=dt)
    dec = np.empty((m, n) if lab.size else (1, 0), dtype=np.int64)
    stats = np.full((m, KP.N_STATS), np.nan)
    KP.run(pop.params, rows, Xa, Ya, inputs.truth, lab, pop._net, preds, hidden,
           inputs.hidden_slot, dec, stats)  # fmt: skip
    if Ya.size and not np.all(np.isfinite(stats[:, KP.LOSS])) and not all_finite(Ya):
        raise fail("Y", f"an array with NaN or inf (as {pop.dtype})", "finite everywhere")
    return ProbePass(
        rows,
        preds if keep_preds else None,
        hidden if inputs.n_hidden else None,
        dec if lab.size else None,
        stats[:, KP.LOSS],
        stats[:, KP.SQ_ERR],
        stats[:, KP.CORRECT],
        stats[:, KP.ENTROPY],
        stats[:, KP.SPREAD],
    )


def _indices(name: str, x: Any, size: int | None, bound: int, what: str) -> np.ndarray:
    """``x`` as int64 (size,) (any length if None) with every value in [0, bound): the kernel
    indexes with them, so nothing else may pass."""
    a = as_array(name, x)
    if a.ndim != 1 or a.dtype.kind not in "iu" or (size is not None and a.size != size):
        raise fail(name, f"an array of dtype {a.dtype} and shape {a.shape}", what)
    if a.size and (a.min() < 0 or a.max() >= bound):
        raise fail(name, f"values in [{a.min()}, {a.max()}]", f"{what}, in [0, {bound})")
    return np.ascontiguousarray(a, dtype=np.int64)


class Panel(NamedTuple):
    """The agents the function-space measures of a model use (see :func:`measure_panel`).

    rows : int64 (m,) sorted agent indices (all agents when ``exact``).
    exact : bool, True when ``rows`` is every agent.
    cka_pos : int64, positions into ``rows`` of the agents whose hidden layers CKA compares.
    align : int64, agent indices aligned for ``aligned_distance``.
    """

    rows: np.ndarray
    exact: bool
    cka_pos: np.ndarray
    align: np.ndarray


def measure_panel(
    n_agents: int,
    exact_up_to: int,
    size: int,
    seed: int,
    cka_agents: int = 64,
    align_agents: int = 200,
) -> Panel:
    """Every agent if ``exact_up_to`` is 0 or ``n_agents <= exact_up_to``; else a seeded sample.

    The sample is ``min(size, n_agents)`` distinct agents drawn uniformly without replacement from
    ``numpy.random.default_rng(seed)``, once: the same panel every step (a fixed panel is, at
    every step, a uniform sample independent of the population's state, and its measures do not
    jitter from step to step). CKA uses the first ``cka_agents`` of a seeded shuffle of the
    panel, ``aligned_distance`` the first ``align_agents``.

    Error of a panel mean of a per-agent quantity (m panel agents of P, sd its spread over the
    agents): unbiased, standard error ``sd / sqrt(m) * sqrt(1 - m / P)``; for a quantity in
    [0, 1], ``|error| <= sqrt(log(2 / delta) / (2 m))`` with probability ``1 - delta``
    (Hoeffding's bound, which holds for sampling without replacement). The panel's largest value
    exceeds all but a share ``log(1 / delta) / m`` of the agents' values with probability
    ``1 - delta``. ``simulator.measures.SAMPLED_NOTE`` lists what each measure does with it.

    Parameters
    ----------
    n_agents : int >= 1; exact_up_to : int >= 0; size : int >= 2; seed : int >= 0.
    """
    n_agents = check_int("n_agents", n_agents, low=1)
    limit = check_int("measure_exact", exact_up_to, low=0)
    size = min(check_int("measure_agents", size, low=2), n_agents)
    cka_agents = check_int("cka_agents", cka_agents, low=1)
    align_agents = check_int("align_agents", align_agents, low=1)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    exact = limit == 0 or n_agents <= limit or size == n_agents
    rows = np.arange(n_agents) if exact else np.sort(rng.choice(n_agents, size, replace=False))
    order = rng.permutation(rows.size)
    cka_pos = np.sort(order[: min(cka_agents, rows.size)])
    align = rows[np.sort(order[: min(align_agents, rows.size)])]
    return Panel(rows.astype(np.int64), exact, cka_pos.astype(np.int64), align.astype(np.int64))


__all__ = [
    "Panel",
    "ProbeInputs",
    "ProbePass",
    "measure_panel",
    "prepare_probe",
    "probe_pass",
    "run_prepared",
]
