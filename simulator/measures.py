"""What a model reports at each collected step: one dict of scalars from :mod:`simulator.metrics`.

All measures of a step are computed together from one snapshot (the agents' outputs on the
task's probe set, their hidden activations and their parameters), then read by Mesa's
DataCollector as scalar model reporters. Pairwise measures sample pairs above a size (see each
function in :mod:`simulator.metrics`); ``MEASURE_DOCS`` says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator import metrics

if TYPE_CHECKING:
    from simulator.model import NeuralModel

# Clustering is O(P^2) in the worst case (every agent within a few eps of many others): above
# this many agents it runs on a seeded sample, and the unsampled agents get label -1.
CLUSTER_SAMPLE = 2_000
CKA_AGENTS = 64  # CKA is averaged over pairs among this many sampled agents

MEASURE_DOCS = {
    "mean_loss": "mean training loss on the step's minibatches (before the update)",
    "probe_loss": "mean over agents of each agent's loss on the probe set against its truth",
    "consensus_distance": "weight space: mean squared distance of params to the population mean",
    "mean_cosine": "weight space: mean pairwise cosine similarity of params (exact, centroid form)",
    "aligned_distance": "weight space: consensus distance after aligning hidden units "
    "(permutations, sign flips) to a reference agent (sampled agents)",
    "function_dispersion": "function space: mean squared distance of outputs on the probe to the "
    "mean output",
    "agreement": "function space: mean share of agents agreeing with the plurality decision",
    "cka": "representations: mean linear CKA of first hidden layers (pairs among a sample of "
    f"{CKA_AGENTS} agents)",
    "cka_baseline": "the same between independently initialized networks (reference)",
    "ensemble_loss": "MSE of the population's mean prediction on the probe",
    "ensemble_gain": "mean individual loss minus ensemble loss (regression: = ambiguity, "
    "Krogh-Vedelsby); classification: ensemble accuracy minus mean accuracy",
    "ambiguity": "mean squared deviation of individual predictions from the ensemble mean",
    "accuracy": "mean individual accuracy on the probe",
    "ensemble_accuracy": "accuracy of the mean-probability ensemble on the probe",
    "outcome_homogenization": "P(all k agents fail) / prod P(agent fails) over groups of agents "
    "(1 = independent failures)",
    "n_clusters": "agents linked by chains of function-space RMS distance < cluster_eps "
    f"(above {CLUSTER_SAMPLE:,} agents: among a seeded sample of that many)",
    "largest_cluster": "share of agents in the largest cluster (sampled likewise)",
    "polarization": "polarization of the function-space clusters (0 = consensus)",
    "cluster_nmi": "normalized mutual information of clusters vs graph communities",
    "modularity": "modularity of the function-space clusters on the social graph (agents "
    "outside the cluster sample form one extra group)",
    "worst_accuracy": "fairness: the lowest individual accuracy on the probe",
    "worst_probe_loss": "fairness: the highest individual loss on the probe",
    "output_spread": "collapse (regression): mean over agents of the std of outputs over the probe",
    "entropy": "collapse (classification): mean predictive entropy on the probe (nats)",
    "coverage": "collapse (classification): share of classes some agent predicts somewhere",
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
        names += ["worst_accuracy", "entropy", "coverage"]
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


def snapshot(model: NeuralModel) -> dict[str, float]:
    """Every measure of ``model.measure_names`` for the model's current state."""
    pop, task, names = model.population, model.task, model.measure_names
    probe_X = task.probe_X
    probe_Y = task.probe_Y_at(model.steps) if hasattr(task, "probe_Y_at") else task.probe_Y
    preds = model.probe_predictions()
    out: dict[str, float] = {
        "mean_loss": float(np.mean(model.losses)),
        "consensus_distance": metrics.consensus_distance(pop.params),
        "function_dispersion": metrics.function_dispersion(preds),
    }
    if out["function_dispersion"] < model.p["consensus_tol"] and model.consensus_step < 0:
        model.consensus_step = model.steps
    out["consensus_time"] = model.consensus_step
    probe_losses = pop.loss(probe_X, probe_Y) if task.kind != "generative" else None
    if "probe_loss" in names:
        out["probe_loss"] = float(np.mean(probe_losses))
    out.update(model.extra_measures())
    if task.kind == "regression":
        truth = probe_Y[0] if probe_Y.shape[0] == 1 else probe_Y.mean(axis=0)
        ens, mean_mse, amb = metrics.ensemble_decomposition(preds.astype(np.float64), truth)
        out.update(ensemble_loss=ens, ensemble_gain=mean_mse - ens, ambiguity=amb)
    elif task.kind == "classification":
        probs = class_probabilities(preds.astype(np.float64))
        labels = task.probe_labels[0]
        ens_acc, mean_acc = metrics.ensemble_accuracy(probs, labels)
        out.update(
            accuracy=mean_acc,
            ensemble_accuracy=ens_acc,
            ensemble_gain=ens_acc - mean_acc,
            agreement=metrics.prediction_agreement(preds),
        )
    if model.p["measures"] == "fast":
        return {k: float(out[k]) for k in names}
    if task.kind != "generative":
        out.update(_spread_measures(model, preds, probe_losses))
    rng = np.random.default_rng(model.measure_seed + model.steps)
    out["mean_cosine"] = metrics.mean_pairwise_cosine(pop.params, rng=rng)
    out["aligned_distance"] = metrics.aligned_consensus_distance(pop, max_agents=200, rng=rng)
    if (
        pop.layout.n_layers > 1
    ):  # CKA on pairs among a sample of agents: hidden layers of those only
        who = np.sort(rng.choice(pop.n_agents, min(pop.n_agents, CKA_AGENTS), replace=False))
        hidden = pop.predict(probe_X, agents=who, layer=1)
        out["cka"] = metrics.mean_cka(hidden, max_pairs=200, rng=rng)
    else:
        out["cka"] = 1.0
    out["cka_baseline"] = model.cka_baseline
    sample = CLUSTER_SAMPLE if pop.n_agents > CLUSTER_SAMPLE else None
    labels, n_clusters, largest = metrics.function_clusters(
        preds, model.p["cluster_eps"], max_agents=sample, rng=rng
    )
    model.cluster_labels = labels
    out.update(
        n_clusters=n_clusters,
        largest_cluster=largest,
        polarization=metrics.polarization(preds, labels),
    )
    out["copies"] = model.copies_last_step
    if "outcome_homogenization" in names:
        correct = class_probabilities(preds).argmax(-1) == task.probe_labels[0][None, :]
        out["outcome_homogenization"] = metrics.outcome_homogenization(correct, rng=rng)
    if "cluster_nmi" in names:
        out["cluster_nmi"] = metrics.cluster_nmi(labels, model.communities)
        grouped = np.where(labels < 0, labels.max() + 1, labels)
        out["modularity"] = metrics.modularity(model.csr, grouped)
    return {k: float(out[k]) for k in names}


def _spread_measures(
    model: NeuralModel, preds: np.ndarray, probe_losses: np.ndarray
) -> dict[str, float]:
    """Fairness (worst agent) and output-diversity (collapse) measures."""
    if model.task.kind == "regression":
        spread = preds.astype(np.float64).std(axis=1).mean()
        return {"worst_probe_loss": float(probe_losses.max()), "output_spread": float(spread)}
    probs = class_probabilities(preds.astype(np.float64))
    decided = probs.argmax(-1)
    accuracy = (decided == model.task.probe_labels[0][None]).mean(axis=1)
    entropy = -(probs * np.log(np.clip(probs, 1e-300, None))).sum(-1).mean()
    coverage = np.unique(decided).size / probs.shape[-1]
    return {
        "worst_accuracy": float(accuracy.min()),
        "entropy": float(entropy),
        "coverage": float(coverage),
    }
