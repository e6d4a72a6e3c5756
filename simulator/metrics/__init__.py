"""Homogenization and emergence measures: pure functions of arrays (and of a Population).

None of them modifies its inputs. Randomness (only where pairs, groups or agents are sampled)
comes from an explicit ``rng`` argument: a ``numpy.random.Generator`` or an int seed; the
default is seed 0, so results are reproducible. Each sampling function says in its docstring
when it samples.

Weight space
    :func:`weight_summary`, :func:`consensus_distance`, :func:`mean_pairwise_cosine`,
    :func:`align_params`, :func:`aligned_distance`, :func:`aligned_consensus_distance`
Function space and representations
    :func:`function_summary`, :func:`function_dispersion`, :func:`prediction_agreement`,
    :func:`linear_cka`, :func:`mean_cka`, :func:`cka_baseline`
Agents on the probe
    :func:`probe_pass` (one forward pass with per-agent statistics), :func:`measure_panel`
Ensembles and outcomes
    :func:`ensemble_decomposition` (agent weights), :func:`ensemble_gain`,
    :func:`ensemble_accuracy`, :func:`outcome_homogenization` (and its parts for agents measured
    often: :func:`failure_groups`, :func:`homogenization_of_failures`); classifier diversity
    (Kuncheva & Whitaker 2003): :func:`kw_variance`, :func:`disagreement`, :func:`kappa`,
    :func:`diversity`, :func:`diversity_of_right`
Clusters, polarization, time
    :func:`function_clusters`, :func:`cluster_nmi`, :func:`modularity`,
    :func:`sampled_modularity`, :func:`polarization`,
    :func:`consensus_time`
"""

from simulator.metrics.align import align_params
from simulator.metrics.clusters import (
    cluster_nmi,
    function_clusters,
    grid_clusters,
    modularity,
    sampled_modularity,
)
from simulator.metrics.dynamics import consensus_time, polarization
from simulator.metrics.ensemble import (
    Diversity,
    disagreement,
    diversity,
    diversity_of_right,
    ensemble_accuracy,
    ensemble_decomposition,
    ensemble_gain,
    failure_groups,
    homogenization_of_failures,
    kappa,
    kw_variance,
    outcome_homogenization,
)
from simulator.metrics.functions import (
    FunctionSummary,
    agreement_of_decisions,
    cka_baseline,
    function_dispersion,
    function_summary,
    linear_cka,
    mean_cka,
    prediction_agreement,
)
from simulator.metrics.linear import linear_embedding
from simulator.metrics.probe import Panel, ProbePass, measure_panel, probe_pass
from simulator.metrics.weights import (
    WeightSummary,
    aligned_consensus_distance,
    aligned_distance,
    consensus_distance,
    mean_pairwise_cosine,
    weight_summary,
)

__all__ = [
    "Diversity",
    "FunctionSummary",
    "Panel",
    "ProbePass",
    "WeightSummary",
    "agreement_of_decisions",
    "align_params",
    "aligned_consensus_distance",
    "aligned_distance",
    "cka_baseline",
    "cluster_nmi",
    "consensus_distance",
    "consensus_time",
    "disagreement",
    "diversity",
    "diversity_of_right",
    "ensemble_accuracy",
    "ensemble_decomposition",
    "ensemble_gain",
    "failure_groups",
    "function_clusters",
    "function_dispersion",
    "function_summary",
    "grid_clusters",
    "homogenization_of_failures",
    "kappa",
    "kw_variance",
    "linear_cka",
    "linear_embedding",
    "mean_cka",
    "mean_pairwise_cosine",
    "measure_panel",
    "modularity",
    "outcome_homogenization",
    "polarization",
    "prediction_agreement",
    "probe_pass",
    "sampled_modularity",
    "weight_summary",
]
