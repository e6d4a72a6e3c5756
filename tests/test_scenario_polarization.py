"""polarization: a wider confidence radius leaves fewer clusters, down to consensus."""

from __future__ import annotations

from models import REGISTRY

SEEDS = (0, 1, 2)
STEPS = 150


def _final(eps: float, seed: int):
    m = REGISTRY["polarization"](rng=seed, confidence=eps, collect_every=STEPS)
    m.run_for(STEPS)
    return m.model_dataframe().iloc[-1]


def test_clusters_fall_from_fragmentation_to_consensus_as_confidence_grows():
    for seed in SEEDS:
        narrow, middle, wide = (_final(eps, seed) for eps in (0.15, 0.5, 1.5))
        assert narrow.n_clusters > middle.n_clusters > wide.n_clusters == 1
        assert narrow.largest_cluster < middle.largest_cluster < wide.largest_cluster == 1
        assert narrow.function_dispersion > middle.function_dispersion > wide.function_dispersion
        assert wide.cluster_nmi == 0.0  # one cluster says nothing about communities
