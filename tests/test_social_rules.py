"""Rules behind the scenario library: generated-data distillation, adoption, the detector."""

from __future__ import annotations

import numpy as np
import pytest

from models import REGISTRY
from simulator.social import Distillation, _sample_targets

SOCIAL = REGISTRY["social_learning"]


def test_sampled_labels_follow_the_predicted_distribution():
    probs = np.broadcast_to(np.array([0.1, 0.6, 0.3]), (4, 5000, 3))
    labels = _sample_targets(probs, "softmax", 0.0, np.random.default_rng(0))
    assert set(np.unique(labels)) == {0.0, 1.0} and (labels.sum(-1) == 1).all()
    freq = labels.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.01)
    coin = _sample_targets(np.full((2, 4000, 1), 0.25), "sigmoid", 0.0, np.random.default_rng(1))
    assert abs(coin.mean() - 0.25) < 0.02


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_soft_targets_are_the_numpy_blend_rounded_once_to_the_models_dtype(dtype):
    import networkx as nx

    G = nx.cycle_graph(150)
    G.remove_edges_from([(9, 10), (10, 11)])  # agent 10 has no neighbour: keeps its targets
    m = SOCIAL(n_agents=150, graph=G, rng=0, measures="fast", dtype=dtype)
    X, Y = m.task.sample(1, 6)
    pop, csr = m.population, m.csr
    means = np.zeros(Y.shape)
    for i in range(150):
        nbrs = csr.indices[csr.indptr[i] : csr.indptr[i + 1]]
        if nbrs.size:
            means[i] = pop.predict(X[i], agents=nbrs).mean(axis=0)
    has = (np.diff(csr.indptr) > 0)[:, None, None]
    w = np.where(has, 0.6, 0.0)
    _, targets = Distillation(0.6).before_train(m, X, Y)
    assert targets.dtype == pop.dtype and targets.shape == Y.shape
    expect = ((1 - w) * Y + w * means).astype(pop.dtype)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(targets, expect, rtol=tol, atol=tol)
    np.testing.assert_array_equal(targets[10], Y[10].astype(pop.dtype))


def test_sample_mode_with_all_real_data_keeps_the_real_labels():
    m = SOCIAL(n_agents=10, rng=0, measures="fast", distill_mode="sample", real_share=1.0)
    X, Y = m.task.sample(1, 8)
    _, targets = Distillation(0.0, mode="sample", real_share=1.0).before_train(m, X, Y)
    np.testing.assert_array_equal(targets, Y)


def test_sample_mode_without_real_data_labels_with_the_neighbours_classes():
    m = SOCIAL(n_agents=10, rng=0, measures="fast", distill_mode="sample", real_share=0.0)
    X, Y = m.task.sample(1, 64)
    _, targets = Distillation(0.0, mode="sample", real_share=0.0).before_train(m, X, Y)
    assert ((targets == 0) | (targets == 1)).all() and (targets.sum(-1) == 1).all()
    assert not np.array_equal(targets, Y)


def test_adopters_carry_the_popular_model_and_the_rest_do_not():
    m = SOCIAL(
        n_agents=20,
        rng=0,
        measures="fast",
        distill_weight=0.0,
        adopt_share=0.5,
        adopt_source="first",
    )
    m.step()
    rows = m.population.params
    same = [np.array_equal(rows[i], rows[0]) for i in range(20)]
    adopters = next(r for r in m.rules if r.name == "adoption").adopters
    assert len(adopters) == 10
    assert sum(same) == len(set(adopters.tolist()) | {0})
    m2 = SOCIAL(n_agents=20, rng=0, measures="fast", distill_weight=0.0)
    m2.step()
    assert sum(np.array_equal(r, m2.population.params[0]) for r in m2.population.params) == 1


def test_detector_raises_the_novelty_weight_while_the_population_is_homogeneous():
    m = REGISTRY["gossip_learning"](
        n_agents=12,
        rng=0,
        measures="fast",
        init_noise=0.0,
        novelty_threshold=1.0,
        novelty_rate=0.1,
        lr=0.0,
    )
    m.run_for(3)  # identical agents: dispersion 0 < threshold
    assert m.novelty_weight == pytest.approx(0.3)
    diverse = REGISTRY["gossip_learning"](
        n_agents=12,
        rng=0,
        measures="fast",
        init="independent",
        mixing_rate=0.0,
        novelty_threshold=1e-9,
        novelty_weight=1.0,
        novelty_rate=0.5,
    )
    diverse.step()
    assert diverse.novelty_weight == 0.5  # diversity is above threshold: the weight decays
    preds = diverse.probe_predictions().astype(np.float64)
    textbook = np.mean(np.sum((preds - preds.mean(axis=0)) ** 2, axis=-1))
    assert diverse.diversity_now == pytest.approx(textbook, rel=1e-12)  # what it compared


@pytest.mark.parametrize(
    "d_in, d_out, dtype", [(1, 1, "float32"), (2, 1, "float64"), (3, 2, "float32")]
)
def test_affine_agents_confidence_mask_is_the_one_of_their_probe_outputs(d_in, d_out, dtype):
    """For affine agents the confident edges come from exact coordinates (no forward pass); they
    must be the edges whose RMS output distance on the probe is below epsilon."""
    from simulator.kernels import social as S

    model = REGISTRY["polarization"](
        rng=5, n_agents=300, task_params={"d_in": d_in, "d_out": d_out}, dtype=dtype
    )
    assert model._affine_coordinates() is not None
    preds = model.probe_predictions().reshape(model.n_agents, -1).astype(np.float64)
    i = np.repeat(np.arange(model.n_agents), np.diff(model.csr.indptr))
    rms = np.sqrt(((preds[i] - preds[model.csr.indices]) ** 2).mean(axis=1))
    for eps in np.quantile(rms, [0.1, 0.5, 0.9]):
        mask = model.confident_edges(eps)
        clear = np.abs(rms - eps) > 1e-5 * eps  # outputs rounded to the population's dtype
        np.testing.assert_array_equal(mask[clear], (rms < eps)[clear])
        assert clear.mean() > 0.95
    # the prediction-based kernel on the same population agrees on every clear edge
    direct = S.confident_edges(preds, model.csr.indptr, model.csr.indices, float(eps))
    np.testing.assert_array_equal(mask[clear], direct[clear])


def test_agents_with_a_hidden_layer_use_their_probe_outputs():
    model = REGISTRY["polarization"](rng=0, n_agents=50, hidden=(4,))
    assert model._affine_coordinates() is None
