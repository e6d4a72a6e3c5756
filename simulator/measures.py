"""What a model reports at each collected step: one dict of scalars from :mod:`simulator.metrics`.

All measures of a step are computed together from one snapshot, and nothing in it is computed
twice: one pass over the parameters (weight space: centroid, consensus distance, mean cosine,
the reference agent of the alignment) and one forward pass of the measured agents over the
probe (:func:`simulator.metrics.probe_pass`: outputs, first hidden layer of the CKA agents, and
per agent its loss, error, decisions, accuracy, entropy and spread, fused in one Numba kernel).
Mesa's DataCollector reads the result as scalar model reporters.

Which agents are measured in function space: every agent while ``n_agents <= measure_exact``
(default 1,000; 0 means always every agent); above it, a seeded uniform panel of
``measure_agents`` agents (default 256), the same every step
(:func:`simulator.metrics.measure_panel`). Weight-space measures always use every agent,
exactly. Agents without hidden layers and with linear outputs in at most 3 function-space
dimensions (the ``polarization`` scenario) are clustered exactly at every size, from exact
coordinates of their functions; judged by their MSE against one truth (that scenario), every
function-space measure of theirs is exact at every size, from the same coordinates, and no
probe pass runs. ``MEASURE_DOCS`` says for each column what a panel changes;
``SAMPLED_NOTE`` states the error bounds. State a collect keeps between steps (plain model
attributes): ``consensus_step``, ``cluster_labels``, ``measure_panel`` and
``measure_panel_key`` (a pure function of the seed and sizes); ``last_probe`` is this collect's
probe pass (None when none ran), for the per-agent table. Values derived from fixed inputs are
kept between collects in private ``_*_cache`` attributes so a collect does not recompute them:
the probe pass's checked inputs, the probe's factor and the truth's coordinates for affine
agents, the seeded generator and the CKA pairs, the failure groups, the graph measures of
unchanged clusters. Each is checked against its sources at every use, none is saved in a
checkpoint (a loaded model recomputes them, the same values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator import metrics
from simulator.config import DivergenceError
from simulator.kernels import measure as KM
from simulator.kernels import measure_function as KF
from simulator.metrics._checks import sample_pairs
from simulator.metrics.clusters import cluster_outputs, modularity_of_codes, nmi_of_codes
from simulator.metrics.dynamics import (
    load_split_kernel,
    polarization_of_groups,
    polarization_of_rows,
)
from simulator.metrics.functions import (
    counts_agreement,
    decision_counts,
    mean_cka_of_pairs,
    summarize_outputs,
)
from simulator.metrics.linear import (
    AffineFunctions,
    affine_coordinates,
    affine_functions,
    truth_coordinates,
)
from simulator.metrics.probe import Panel, ProbePass, measure_panel, prepare_probe, run_prepared
from simulator.metrics.weights import aligned_distance_of

if TYPE_CHECKING:
    from simulator.model import NeuralModel

CKA_AGENTS = 64  # CKA is averaged over pairs among this many agents of the panel
CKA_PAIRS = 128
ALIGN_AGENTS = 100  # agents aligned for aligned_distance
POLARIZATION_PAIRS = 512  # above the exact size: pairs of groups measured (see polarization)
_AFFINE_PAIRS = 1 << 24  # affine agents: polarization exact up to this many pairs x q
AFFINE_DIMS = 3  # affine agents of at most this many coordinates are measured from them (grid)
MODULARITY_EDGES = 256  # above the exact size: edges drawn to estimate the modularity

SAMPLED_NOTE = (
    "Function-space measures are exact up to measure_exact agents (default 1,000). Above, they "
    "use a seeded uniform panel of m = measure_agents agents (default 256; the same every step); "
    "weight-space measures (consensus_distance, mean_cosine) stay exact. Means over agents "
    "(probe_loss, accuracy, entropy, output_spread) are unbiased with standard error "
    "sd/sqrt(m) x sqrt(1 - m/P) (sd: their spread over agents); for a quantity in [0, 1] "
    "|error| <= sqrt(log(2/delta) / (2m)) with probability 1 - delta (Hoeffding-Serfling), 0.10 "
    "at delta = 0.01 for m = 256. function_dispersion and ambiguity are corrected to be unbiased, "
    "and so is ensemble_loss (floored at 0): the Krogh-Vedelsby identity holds for the "
    "estimates. disagreement is unbiased (a mean over uniform pairs); kw_variance and kappa "
    "follow from it by their identities. worst_accuracy and worst_probe_loss are the panel's "
    "worst: with probability 1 - delta at most log(1/delta)/m of all agents are worse (1.8% at "
    "delta = 0.01). agreement, ensemble_accuracy and coverage are the panel's (plug-in "
    "estimates). n_clusters, largest_cluster, polarization and cluster_nmi describe the "
    "panel's agents: single linkage on a sparser sample splits chains, so they are not "
    "estimates of the population's values, except for affine agents (no hidden layer, linear "
    "outputs, at most 3 function dimensions), clustered exactly over every agent. modularity is "
    "estimated from 256 seeded edges (unbiased for the panel's clusters extended to each edge's "
    "ends by their first panel agent within cluster_eps; standard error <= 1.5/sqrt(256)). "
    "Affine agents judged by their MSE against one truth (the polarization scenario) have no "
    "panel at all: probe_loss, function_dispersion, ensemble_loss, ensemble_gain, ambiguity, "
    "worst_probe_loss and output_spread are exact over every agent too, from the same "
    "coordinates."
)

MEASURE_DOCS = {
    "mean_loss": "mean training loss on the step's minibatches (before the update); all agents",
    "probe_loss": "mean over agents of each agent's loss on the probe set against its truth "
    "(panel mean above measure_exact; affine agents: every agent, exactly)",
    "consensus_distance": "weight space: mean squared distance of params to the population "
    "mean (exact, every agent)",
    "mean_cosine": "weight space: mean pairwise cosine similarity of params (exact, centroid form)",
    "aligned_distance": "weight space: consensus distance after aligning hidden units "
    f"(permutations, sign flips) to a reference agent ({ALIGN_AGENTS} agents of the panel; "
    "relative RMS error measured at 500 agents: 1.3% social_learning, 3.9% evolution; "
    "networks without a hidden layer have nothing to align: consensus_distance, exactly)",
    "function_dispersion": "function space: mean squared distance of outputs on the probe to the "
    "mean output (above measure_exact: unbiased panel estimate; affine agents: exact)",
    "agreement": "function space: mean share of agents agreeing with the plurality decision "
    "(panel share above measure_exact)",
    "cka": "representations: mean linear CKA of first hidden layers "
    f"({CKA_PAIRS} pairs among {CKA_AGENTS} agents of the panel: unbiased, RMS error about "
    "0.008 measured for social_learning with 500 agents)",
    "cka_baseline": "the same between independently initialized networks (reference)",
    "ensemble_loss": "MSE of the population's mean prediction on the probe (above "
    "measure_exact: the panel's, corrected to be unbiased, floored at 0; affine agents: exact)",
    "ensemble_gain": "mean individual loss minus ensemble loss (regression: = ambiguity, "
    "Krogh-Vedelsby); classification: ensemble accuracy minus mean accuracy",
    "ambiguity": "mean squared deviation of individual predictions from the ensemble mean "
    "(above measure_exact: unbiased panel estimate; affine agents: exact)",
    "accuracy": "mean individual accuracy on the probe (panel mean above measure_exact)",
    "ensemble_accuracy": "accuracy of the mean-probability ensemble on the probe (above "
    "measure_exact: the panel's ensemble)",
    "kw_variance": "classifier diversity: Kohavi-Wolpert variance of right/wrong outputs "
    "(Kuncheva & Whitaker 2003); = (P-1)/(2P) x disagreement (above measure_exact: from the "
    "panel's disagreement)",
    "disagreement": "classifier diversity: mean over pairs of agents of the share of items on "
    "which exactly one of the two is right (above measure_exact: pairs of the panel, unbiased)",
    "kappa": "classifier diversity: interrater agreement (Fleiss) of right/wrong outputs, "
    "1 - disagreement / (2 p (1 - p)), p = mean accuracy",
    "outcome_homogenization": "P(all k agents fail) / prod P(agent fails) over groups of agents "
    "(1 = independent failures; groups of 3 among the panel's agents)",
    "n_clusters": "agents linked by chains of function-space RMS distance < cluster_eps "
    "(exact single linkage; above measure_exact: among the panel's agents, except affine "
    "agents, clustered exactly over all)",
    "largest_cluster": "share of agents in the largest cluster (of the panel, likewise)",
    "polarization": "Esteban-Ray polarization of the function-space clusters (0 = consensus); "
    "exact up to measure_exact; above, over the panel's clusters with the pairs of small groups "
    "sampled (error bound in metrics.polarization)",
    "cluster_nmi": "normalized mutual information of clusters vs graph communities (above "
    "measure_exact: over the panel's agents, except affine agents: all)",
    "modularity": "modularity of the function-space clusters on the social graph (exact up to "
    "measure_exact; above: estimated from 256 seeded edges, see SAMPLED_NOTE)",
    "worst_accuracy": "fairness: the lowest individual accuracy on the probe (panel's lowest)",
    "worst_probe_loss": "fairness: the highest individual loss on the probe (above "
    "measure_exact: the panel's highest; affine agents: every agent's)",
    "output_spread": "collapse (regression): mean over agents of the std of outputs over the "
    "probe (panel mean above measure_exact; affine agents: every agent, exactly)",
    "entropy": "collapse (classification): mean predictive entropy on the probe (nats; panel "
    "mean above measure_exact)",
    "coverage": "collapse (classification): share of classes some agent predicts somewhere "
    "(agents of the panel)",
    "consensus_time": "first step at which function_dispersion < consensus_tol (-1: not yet)",
    "copies": "agents that copied a neighbour on this step (imitation)",
    # reported by DP-FedAvg (dp_clip > 0; see simulator.privacy)
    "dp_epsilon": "DP-FedAvg: privacy spent by the rounds so far, epsilon at dp_delta "
    "(dp-accounting)",
    "dp_epsilon_round": "DP-FedAvg: epsilon at dp_delta of one round alone",
    "dp_rounds": "DP-FedAvg: rounds run so far",
    "dp_clipped_share": "DP-FedAvg: share of the last round's participants whose update was "
    "clipped",
}

_FAST = (
    "mean_loss",
    "probe_loss",
    "consensus_distance",
    "function_dispersion",
    "consensus_time",
)


_WEIGHT_AND_CLUSTERS = [
    "mean_cosine",
    "aligned_distance",
    "cka",
    "cka_baseline",
    "n_clusters",
    "largest_cluster",
    "polarization",
    "copies",
]


def measure_names(kind: str, has_communities: bool, level: str) -> list[str]:
    """The columns a model with this task kind reports, in order."""
    names = list(_FAST)
    if kind == "generative":  # no truth per input: no probe loss, no ensemble of predictions
        names.remove("probe_loss")
        return names if level == "fast" else [*names, *_WEIGHT_AND_CLUSTERS]
    if kind == "regression":
        names += ["ensemble_loss", "ensemble_gain", "ambiguity"]
    else:
        names += ["agreement", "accuracy", "ensemble_accuracy", "ensemble_gain"]
    if level == "fast":
        return names
    if kind == "regression":
        names += ["worst_probe_loss", "output_spread"]
    else:
        names += ["worst_accuracy", "entropy", "coverage", "kw_variance", "disagreement", "kappa"]
    names += _WEIGHT_AND_CLUSTERS
    if kind == "classification":
        names.append("outcome_homogenization")
    if has_communities:
        names += ["cluster_nmi", "modularity"]
    return names


def class_probabilities(preds: np.ndarray) -> np.ndarray:
    """(P, n, K) class probabilities; a single output is P(class 1), so K becomes 2."""
    if preds.shape[-1] == 1:
        return np.concatenate([1 - preds, preds], axis=-1)
    return preds


def panel(model: NeuralModel) -> Panel:
    """The model's measured agents (:func:`measure_panel`), built once and kept in
    ``model.measure_panel`` with the key it was built for in ``model.measure_panel_key``: a
    pure function of (n_agents, measure_exact, measure_agents, the measure seed)."""
    p = model.p
    key = (model.n_agents, int(p["measure_exact"]), int(p["measure_agents"]), model.measure_seed)
    if getattr(model, "measure_panel_key", None) != key:
        model.measure_panel = measure_panel(*key, CKA_AGENTS, ALIGN_AGENTS)
        model.measure_panel_key = key
    return model.measure_panel


def probe_truth(model: NeuralModel) -> np.ndarray:
    """The probe's truth at the model's current step, (P or 1, n_probe, d_out)."""
    task = model.task
    return task.probe_Y_at(model.steps) if hasattr(task, "probe_Y_at") else task.probe_Y


def common_truth(model: NeuralModel) -> np.ndarray:
    """The truth the ensemble is judged against, (n_probe, d_out): the probe truth, or its mean
    over agents when every agent has its own (taken once for each truth array the task returns:
    its arrays are kept and read-only)."""
    Y = probe_truth(model)
    if Y.shape[0] == 1:
        return Y[0]
    kept = getattr(model, "_common_truth_cache", None)
    if kept is None or kept[0] is not Y:
        kept = model._common_truth_cache = (Y, Y.mean(axis=0))
    return kept[1]


def run_probe(
    model: NeuralModel, rows: np.ndarray | None, keep_preds: bool, hidden: bool = True
) -> ProbePass:
    """One probe pass of agents ``rows`` (None: all) with the statistics the task allows;
    ``hidden``: also the first hidden layer of the panel's CKA agents (rows must be the panel).

    For the panel and for all agents, the pass's inputs are checked and converted once
    (:func:`prepare_probe`) and kept in ``model._probe_inputs_cache`` while the same arrays come
    in (the task's probe, truth and labels, which the tasks keep and never modify in place; the
    panel): a collect then only runs the kernel. A per-agent truth of more than
    ``_KEEP_BYTES`` is not kept (it is converted for each pass, as before)."""
    pop, task = model.population, model.task
    kind, Y, labels = task.kind, None, None
    if kind != "generative":
        Y = probe_truth(model)
    if kind == "classification":
        labels = task.probe_labels
    pos = None
    if hidden and keep_preds and pop.layout.n_layers > 1 and model.p["measures"] != "fast":
        pos = model.measure_panel.cka_pos
    sources = (pop.params.shape, pop.dtype, task.probe_X, rows, Y, labels, pos)
    plan = getattr(model, "measure_panel", None)
    slot = "all" if rows is None else "panel" if plan is not None and rows is plan.rows else None
    kept = getattr(model, "_probe_inputs_cache", None)
    if kept is None:
        kept = model._probe_inputs_cache = {}
    if slot not in kept or not _same_sources(kept[slot][0], sources):
        truth = common_truth(model) if kind == "regression" else None
        inputs = prepare_probe(
            pop, task.probe_X, rows, Y, truth, None if labels is None else labels[0], pos
        )
        if slot is None or inputs.Y.nbytes > _KEEP_BYTES:  # other rows, or a large truth
            return run_prepared(pop, inputs, keep_preds)
        kept[slot] = (sources, inputs)
    return run_prepared(pop, kept[slot][1], keep_preds)


# The largest truth a collect keeps converted between collects (every agent's own truth for
# the per-agent table of a large population is converted again each time instead).
_KEEP_BYTES = 1 << 24


def _same_sources(a: tuple, b: tuple) -> bool:
    """Whether two tuples of a probe pass's sources are the same: shapes and dtypes equal, the
    arrays the same objects (the kept tuple holds them, so no other array takes their id)."""
    return a[:2] == b[:2] and all(x is y for x, y in zip(a[2:], b[2:], strict=True))


def snapshot(model: NeuralModel) -> dict[str, float]:
    """Every measure of ``model.measure_names`` for the model's current state.

    Leaves ``model.last_probe`` (the probe pass of the panel, or None) and
    ``model.cluster_labels`` (P,) (-1 for agents outside the panel) for the per-agent table and
    the app. Affine agents judged against one truth by their MSE (the ``polarization``
    scenario) are measured in function space exactly over every agent at any size, from
    their coordinates (:func:`_affine`); no probe pass then: ``last_probe`` is None.
    """
    pop, names = model.population, model.measure_names
    plan = panel(model)
    Z, exact = (None, None) if plan.exact else _affine(model)
    probe = fs = None
    if exact is None:
        probe = run_probe(model, plan.rows, keep_preds=True)
        if plan.exact:
            model._probe_cache = probe.preds  # the app and scenario measures read the same outputs
    model.last_probe = probe
    weights = metrics.weight_summary(pop.params)
    if exact is None:
        fs = summarize_outputs(probe.preds)
        _require_finite_outputs(model, fs, probe)
        P, m = model.n_agents, plan.rows.size
        unbias = 1.0 if plan.exact else (P - 1) / P * m / (m - 1)
        dispersion = fs.dispersion * unbias
    else:
        dispersion = exact.dispersion
    out: dict[str, float] = {
        "mean_loss": float(np.mean(model.losses)),
        "consensus_distance": weights.consensus_distance,
        "function_dispersion": dispersion,
    }
    if out["function_dispersion"] < model.p["consensus_tol"] and model.consensus_step < 0:
        model.consensus_step = model.steps
    out["consensus_time"] = model.consensus_step
    if exact is not None:
        out["probe_loss"] = exact.sq_error
    elif model.task.kind != "generative":
        out["probe_loss"] = float(np.mean(probe.loss))
    out.update(model.extra_measures())
    if exact is not None:
        out.update(_affine_regression(exact, pop.layers[-1]))
    elif model.task.kind == "regression":
        out.update(_regression(fs, probe, common_truth(model), P, unbias))
    elif model.task.kind == "classification":
        out.update(_classification(model, fs, probe, plan, P))
    if model.p["measures"] == "fast":
        return {k: float(out[k]) for k in names}
    out.update(_standard(model, probe, weights, fs, plan, Z))
    return {k: float(out[k]) for k in names}


def _affine(model) -> tuple[np.ndarray | None, AffineFunctions | None]:
    """Affine agents' coordinates (those of :func:`simulator.metrics.linear_embedding`, at most
    3 per agent; None for other agents) and, when their probe losses are their MSE against one
    truth (a regression task, loss ``mse``, the same truth for every agent), their
    function-space statistics from the same pass (:func:`simulator.metrics.affine_functions`);
    else, and when some agent's coordinates are not finite, None (the probe pass then measures
    the panel, and names such agents). The truth's coordinates are computed once for each
    truth array and probe factor (kept in ``model._truth_coordinates_cache``)."""
    factor = _probe_factor(model)
    if factor is None:
        return None, None
    pop = model.population
    Y = probe_truth(model) if model.task.kind == "regression" else None
    if Y is None or pop.loss_name != "mse" or Y.shape[0] != 1:  # no truth, or one each
        return affine_coordinates(pop, factor), None
    kept = getattr(model, "_truth_coordinates_cache", None)
    if kept is None or kept[0] is not Y or kept[1] is not factor:
        truth = truth_coordinates(model.task.probe_X, Y[0], factor)
        kept = model._truth_coordinates_cache = (Y, factor, truth)
    return affine_functions(pop, factor, kept[2])


def _affine_regression(exact: AffineFunctions, d_out: int) -> dict[str, float]:
    """The Krogh-Vedelsby terms and the regression collapse measures of every affine agent,
    exactly (:func:`_regression`'s, without a panel)."""
    return {
        "ensemble_loss": exact.ensemble_sq_error,
        "ensemble_gain": exact.sq_error - exact.ensemble_sq_error,
        "ambiguity": exact.dispersion / d_out,
        "worst_probe_loss": exact.worst_sq_error,
        "output_spread": exact.output_spread,
    }


def _require_finite_outputs(model, fs, probe: ProbePass) -> None:
    """Raise a DivergenceError when some agent's outputs on the probe are NaN or inf (they make
    the mean output non-finite): the networks diverged, though their training losses may not
    have overflowed yet (a run stops as diverged, with the steps collected so far)."""
    if np.all(np.isfinite(fs.mean)):
        return
    bad = probe.rows[~np.isfinite(fs.sq_distances)]
    raise DivergenceError(
        f"diverged at step {model.steps}: outputs on the probe are NaN or inf for agents "
        f"{bad[:10].tolist()} ({bad.size} in all); the networks must stay finite to be "
        "measured (lower lr or set clip_norm)",
        model.steps,
        bad,
        probe.loss[~np.isfinite(fs.sq_distances)],
        why="have NaN or inf outputs on the probe; lower lr or set clip_norm",
    )


def _regression(fs, probe: ProbePass, truth: np.ndarray, P: int, unbias: float) -> dict[str, float]:
    """Krogh-Vedelsby terms from the panel's mean output (unbiased above the exact size)."""
    m = probe.rows.size
    d = fs.mean.shape[1]
    truth_err = probe.sq_error  # each agent's MSE against the common truth
    amb_panel = fs.dispersion / d
    ens = float(np.mean((fs.mean - truth) ** 2))
    if m < P:  # E[mse(panel mean)] = ens + (1 - m/P) S^2 / m, S^2 estimated by the panel
        ens = max(0.0, ens - (1 - m / P) / (m - 1) * amb_panel)
    mean_mse = float(np.mean(truth_err))
    return {
        "ensemble_loss": ens,
        "ensemble_gain": mean_mse - ens,
        "ambiguity": amb_panel * unbias,
        "worst_probe_loss": float(np.max(probe.loss)),
        "output_spread": float(np.mean(probe.spread)),
    }


def _classification(model, fs, probe: ProbePass, plan: Panel, P: int) -> dict[str, float]:
    labels = model.task.probe_labels[0]
    K = max(2, fs.mean.shape[1])
    mean = fs.mean
    ens_dec = (mean[:, 0] > 0.5).astype(np.int64) if mean.shape[1] == 1 else mean.argmax(axis=1)
    ens_acc = float(np.mean(ens_dec == labels))
    n = labels.size  # exact share: the integer count of right decisions over all agents
    acc = float(np.rint(probe.accuracy * n).sum() / (probe.accuracy.size * n))
    fast = model.p["measures"] == "fast"
    m = probe.decisions.shape[0]
    if fast:
        counts = decision_counts(probe.decisions, K)  # (n, K): agents deciding k on each item
    else:  # the same counts, and which decisions are wrong (m, n), in one pass
        counts = np.empty((n, K), dtype=np.int64)
        fails = np.empty((m, n), dtype=np.uint8)
        KF.decision_tallies(probe.decisions, labels, counts, fails)
    out = {
        "accuracy": acc,
        "ensemble_accuracy": ens_acc,
        "ensemble_gain": ens_acc - acc,
        "agreement": counts_agreement(counts, m),
    }
    if fast:
        return out
    div = metrics.diversity_of_right(counts[np.arange(n), labels], m, population=P)
    seen = counts.sum(axis=0) > 0  # a class some agent predicts on some item
    out.update(
        worst_accuracy=float(np.min(probe.accuracy)),
        entropy=float(np.mean(probe.entropy)),
        coverage=float(seen.mean()),
        kw_variance=div.kw_variance,
        disagreement=div.disagreement,
        kappa=div.kappa,
        outcome_homogenization=metrics.homogenization_of_failures(fails, _failure_groups(model, m)),
    )
    return out


def _failure_groups(model, m: int) -> np.ndarray:
    """The groups of outcome_homogenization among the m measured agents: those
    :func:`simulator.metrics.outcome_homogenization` draws from a generator seeded with the
    measure seed, drawn once for (m, seed) and kept in ``model._failure_groups_cache``."""
    key = (m, model.measure_seed)
    kept = getattr(model, "_failure_groups_cache", None)
    if kept is None or kept[0] != key:
        groups = metrics.failure_groups(m, rng=np.random.default_rng(model.measure_seed))
        kept = model._failure_groups_cache = (key, groups)
    return kept[1]


def measure_rng(model: NeuralModel) -> np.random.Generator:
    """A generator in the state of ``numpy.random.default_rng(model.measure_seed)``: every
    collect draws the same sample pairs and groups. Seeding anew (~10 us, 100 after a step's
    arrays went through the caches) is done once; each call restores the seeded state (~1.5 us)
    into the generator kept in ``model._measure_rng_cache``."""
    seed = model.measure_seed
    kept = getattr(model, "_measure_rng_cache", None)
    if kept is None or kept[0] != seed:
        rng = np.random.default_rng(seed)
        kept = model._measure_rng_cache = (seed, rng, rng.bit_generator.state)
    kept[1].bit_generator.state = kept[2]
    return kept[1]


def _standard(
    model, probe: ProbePass | None, weights, fs, plan: Panel, Z: np.ndarray | None
) -> dict[str, float]:
    """Weight-space, representation and cluster measures of the standard set: ``probe`` is the
    panel's probe pass (None when affine agents were measured from their coordinates), ``Z``
    the affine agents' coordinates above measure_exact (None for other agents)."""
    pop = model.population
    rng = measure_rng(model)
    load_split_kernel()  # once a process: its first use may come mid-run
    if pop.layout.n_layers == 1:  # no hidden unit to permute: the exact consensus distance
        aligned = weights.consensus_distance
    else:
        # the panel's agents: sorted and distinct, checked when the panel was drawn
        aligned = aligned_distance_of(pop, pop.params, plan.align, weights)
    out = {
        "mean_cosine": weights.mean_cosine,
        "aligned_distance": aligned,
        "cka": 1.0,
        "cka_baseline": model.cka_baseline,
        "copies": model.copies_last_step,
    }
    if probe is not None and probe.hidden is not None:
        out["cka"] = _panel_cka(model, probe.hidden, rng)
    if Z is not None:  # affine agents: every agent placed exactly, clusters of all of them
        out.update(_all_agent_clusters(model, Z, rng))
        return out
    sample, n_clusters, largest = cluster_outputs(probe.preds, model.p["cluster_eps"], fs.mean)
    labels = np.full(model.n_agents, -1, dtype=np.int64)
    labels[plan.rows] = sample
    model.cluster_labels = labels
    pairs = None if plan.exact else POLARIZATION_PAIRS
    out.update(
        n_clusters=n_clusters,
        largest_cluster=largest,
        # one cluster (consensus): no pair of groups, 0 without a pass over the outputs
        polarization=0.0
        if n_clusters == 1
        else polarization_of_groups(probe.preds, sample, rng, pairs, n_clusters),
    )
    if "cluster_nmi" in model.measure_names:
        if plan.exact:
            out.update(_graph_measures(model, labels, n_clusters))
        else:
            out["cluster_nmi"] = metrics.cluster_nmi(sample, model.communities[plan.rows])
            out["modularity"] = _sampled_modularity(model, probe, sample)
    return out


def _probe_factor(model) -> np.ndarray | None:
    """The probe's factor for affine agents of at most :data:`AFFINE_DIMS` coordinates (the
    model's, computed once for each probe array), else None."""
    pop = model.population
    if (pop.layers[0] + 1) * pop.layers[-1] > AFFINE_DIMS:
        return None
    return model._affine_factor()


def _panel_cka(model, hidden: np.ndarray, rng: np.random.Generator) -> float:
    """``metrics.mean_cka(hidden, CKA_PAIRS, rng)`` for the panel's CKA agents: the pairs, drawn
    from the measure seed's fresh generator (:func:`measure_rng`), are the same at every
    collect, so they are drawn once and kept in ``model._cka_pairs_cache`` with the state the
    generator is left in, which is put back for the draws after them."""
    c = hidden.shape[0]
    if c < 2:
        return metrics.mean_cka(hidden, max_pairs=CKA_PAIRS, rng=rng)
    key = (model.measure_seed, c, CKA_PAIRS)
    kept = getattr(model, "_cka_pairs_cache", None)
    if kept is None or kept[0] != key:
        I, J, _ = sample_pairs(c, CKA_PAIRS, rng)
        kept = model._cka_pairs_cache = (key, I, J, rng.bit_generator.state)
    else:
        rng.bit_generator.state = kept[3]
    return mean_cka_of_pairs(hidden, kept[1], kept[2])


def _all_agent_clusters(model, Z: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Clusters, polarization, NMI and modularity of every agent from exact coordinates Z (P, q)
    of affine agents' functions (grid single linkage; polarization exact up to
    _AFFINE_PAIRS / q pairs of groups, else the stated split estimate)."""
    labels, n_clusters, largest = metrics.grid_clusters(Z, model.p["cluster_eps"])
    model.cluster_labels = labels
    # one cluster (consensus): no pair of groups, polarization 0 without a pass over the labels
    pairs = _AFFINE_PAIRS // Z.shape[1]
    out = {
        "n_clusters": n_clusters,
        "largest_cluster": largest,
        "polarization": 0.0
        if n_clusters == 1
        else polarization_of_rows(Z, labels, rng, pairs, n_clusters),
    }
    if "cluster_nmi" in model.measure_names:
        out.update(_graph_measures(model, labels, n_clusters))
    return out


def _graph_measures(model, labels: np.ndarray, n_clusters: int) -> dict[str, float]:
    """cluster_nmi and modularity of every agent's cluster labels (P,) int64, 0..n_clusters-1
    each in use (a clustering's; not checked again): functions of the labels,
    the communities and the graph alone, so they are taken from the last collect when those
    are the same objects and the labels are equal (clusters often stay for many steps, and
    modularity reads every edge: polarization's 10,000 agents, 127,594 entries, ~0.18 ms). A
    new graph (``set_graph``) is a new CSR object; a checkpoint's restore drops it."""
    last = getattr(model, "_graph_measures_cache", None)
    if (
        last is not None
        and last[0] is model.csr
        and last[1] is model.communities
        and np.array_equal(last[2], labels)
    ):
        return last[3]  # callers only read it (out.update)
    csr, communities = model.csr, model.communities
    out = {  # the labels are a clustering's (0..n_clusters-1), the communities codes 0..k-1
        "cluster_nmi": nmi_of_codes(labels, communities, n_clusters, _n_codes(model)),
        "modularity": modularity_of_codes(csr.indptr, csr.indices, None, labels, n_clusters - 1),
    }
    model._graph_measures_cache = (csr, communities, labels.copy(), out)
    return out


def _n_codes(model) -> int:
    """How many communities the model's graph has (its codes are 0..k-1), found once for each
    communities array (kept in ``model._n_communities_cache``)."""
    communities = model.communities
    kept = getattr(model, "_n_communities_cache", None)
    if kept is None or kept[0] is not communities:
        kept = model._n_communities_cache = (communities, int(communities.max()) + 1)
    return kept[1]


def _sampled_modularity(model, probe: ProbePass, sample: np.ndarray) -> float:
    """Modularity above ``measure_exact`` agents from MODULARITY_EDGES seeded uniform edges: each
    end outside the panel joins the cluster of the first panel agent within cluster_eps of it
    (one extra probe pass for those ends), or stands alone (see metrics.sampled_modularity)."""
    csr = model.csr
    nnz = csr.indices.size
    if nnz == 0:
        return 0.0
    rng = measure_rng(model)
    entry = np.sort(rng.integers(0, nnz, MODULARITY_EDGES))
    u = np.searchsorted(csr.indptr, entry, side="right") - 1
    v = csr.indices[entry]
    ends = np.unique(np.concatenate([u, v]))
    lab = np.full(ends.size, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(probe.rows, ends), probe.rows.size - 1)
    known = probe.rows[pos] == ends
    lab[known] = sample[pos[known]]
    others = ends[~known]
    if others.size:
        extra = run_probe(model, others, keep_preds=True, hidden=False)
        P_, n = probe.preds.shape[:2]
        panel = probe.preds.reshape(P_, -1)
        rows = extra.preds.reshape(others.size, -1)
        got = np.empty(others.size, dtype=np.int64)
        eps2 = float(model.p["cluster_eps"]) ** 2 * n
        KM.assign_within(panel, sample, rows, eps2, got)
        alone = got < 0
        got[alone] = sample.max() + 1 + np.arange(int(alone.sum()))
        lab[~known] = got
    return metrics.sampled_modularity(lab[np.searchsorted(ends, u)], lab[np.searchsorted(ends, v)])
