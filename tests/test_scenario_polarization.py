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


def test_with_learning_every_camp_reaches_the_common_linear_truth():
    """The truth is a linear teacher, which a linear agent represents exactly: with lr > 0 the
    camps that bounded confidence alone would keep apart (eps 0.15: many clusters at lr = 0)
    all converge to the teacher's function, so the loss on the probe goes to zero and one
    cluster remains."""
    for seed in SEEDS:
        m = REGISTRY["polarization"](rng=seed, confidence=0.15, lr=0.1, collect_every=STEPS)
        m.run_for(STEPS)
        final = m.model_dataframe().iloc[-1]
        assert final.n_clusters == 1 and final.function_dispersion < 1e-8
        assert final.probe_loss < 1e-8 and final.worst_probe_loss < 1e-8
        assert _final(0.15, seed).n_clusters > 5  # without learning: fragmented
