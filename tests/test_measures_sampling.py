"""Function-space measures: exact up to ``measure_exact`` agents, a seeded panel above, with the
error stated in ``simulator.measures.SAMPLED_NOTE`` checked against the exact computation."""

from __future__ import annotations

import numpy as np
import pytest

from models import REGISTRY
from simulator import ParameterError, metrics
from simulator.measures import snapshot

REPS = 150  # panels drawn per statistical test (fixed seeds: the test is deterministic)


def test_the_panel_is_every_agent_up_to_measure_exact_and_a_fixed_seeded_sample_above():
    small = metrics.measure_panel(500, 1000, 256, seed=3)
    assert small.exact and small.rows.tolist() == list(range(500))
    big = metrics.measure_panel(5000, 1000, 256, seed=3)
    assert not big.exact and big.rows.size == 256 == np.unique(big.rows).size
    assert np.all(np.diff(big.rows) > 0) and big.rows.max() < 5000
    np.testing.assert_array_equal(big.rows, metrics.measure_panel(5000, 1000, 256, seed=3).rows)
    assert not np.array_equal(big.rows, metrics.measure_panel(5000, 1000, 256, seed=4).rows)
    assert metrics.measure_panel(5000, 0, 256, seed=3).exact  # 0: always every agent
    assert set(big.align) <= set(big.rows) and big.cka_pos.max() < 256


def test_a_small_model_measures_every_agent_exactly():
    m = REGISTRY["social_learning"](n_agents=40, rng=2)
    m.run_for(3)
    out = snapshot(m)
    pop, task = m.population, m.task
    preds = pop.predict(task.probe_X)
    np.testing.assert_array_equal(m.probe_predictions(), preds)
    assert out["probe_loss"] == pytest.approx(float(np.mean(pop.loss(task.probe_X, task.probe_Y))))
    assert out["function_dispersion"] == pytest.approx(metrics.function_dispersion(preds))
    assert out["consensus_distance"] == pytest.approx(metrics.consensus_distance(pop.params))
    labels, n_clusters, largest = metrics.function_clusters(preds, m.p["cluster_eps"])
    assert out["n_clusters"] == n_clusters and out["largest_cluster"] == pytest.approx(largest)
    np.testing.assert_array_equal(m.cluster_labels, labels)
    assert out["polarization"] == pytest.approx(metrics.polarization(preds, labels, max_pairs=None))
    correct = preds.argmax(-1) == task.probe_labels[0][None]
    assert out["accuracy"] == pytest.approx(correct.mean())
    assert out["disagreement"] == pytest.approx(metrics.disagreement(correct))
    assert out["agreement"] == pytest.approx(metrics.prediction_agreement(preds))
    K = preds.shape[-1]  # coverage: the share of classes some agent predicts on some item
    assert out["coverage"] == np.unique(preds.argmax(-1)).size / K
    assert out["worst_accuracy"] == pytest.approx(correct.mean(axis=1).min())
    div = metrics.diversity(correct)
    assert (out["kw_variance"], out["kappa"]) == (div.kw_variance, div.kappa)
    homogenization = metrics.outcome_homogenization(correct, rng=m.measure_seed)
    assert out["outcome_homogenization"] == homogenization


def test_coverage_counts_the_classes_no_agent_predicts():
    """An output bias of -100 on the last class: no agent predicts it on any item, so coverage
    is (K - 1) / K; the agreement still matches its definition."""
    m = REGISTRY["social_learning"](n_agents=40, rng=2)
    m.run_for(2)
    K = m.task.probe_Y.shape[-1]
    m.population.params[:, m.population.layout.b_offsets[-1] + K - 1] = -100.0
    out = snapshot(m)
    preds = m.population.predict(m.task.probe_X)
    assert np.unique(preds.argmax(-1)).size == K - 1
    assert out["coverage"] == (K - 1) / K
    assert out["agreement"] == pytest.approx(metrics.prediction_agreement(preds))


def _exact_and_panels(name: str, P: int, names: list[str], **kw) -> tuple[dict, np.ndarray]:
    """The exact measures of one model state and REPS panel estimates (panels of 256)."""
    m = REGISTRY[name](n_agents=P, rng=5, measure_exact=1000, measure_agents=256, **kw)
    m.run_for(3)
    m.p["measure_exact"] = 0
    exact = snapshot(m)
    m.p["measure_exact"] = 1000
    est = []
    for seed in range(REPS):
        m.measure_seed = 10_000 + seed
        out = snapshot(m)
        est.append([out[k] for k in names])
    return exact, np.array(est)


def _check(exact: float, est: np.ndarray, se: float | None = None) -> None:
    """Unbiased (mean within 4 standard errors of the mean) and, when ``se`` is the stated
    standard error, the observed RMS error within 30% of it."""
    err = est - exact
    assert abs(err.mean()) <= 4 * err.std() / np.sqrt(err.size) + 1e-12
    if se is not None:
        assert np.sqrt(np.mean(err**2)) == pytest.approx(se, rel=0.3)


def test_panel_estimates_of_a_regression_population_are_unbiased_with_the_stated_error():
    names = ["probe_loss", "function_dispersion", "ambiguity", "ensemble_loss", "ensemble_gain"]
    exact, est = _exact_and_panels("gossip_learning", 1200, names, init_noise=0.5)
    m, P = 256, 1200
    fpc = np.sqrt(1 - m / P)
    # per-agent spread of the probe loss from a full pass
    g = REGISTRY["gossip_learning"](n_agents=P, rng=5, init_noise=0.5)
    g.run_for(3)
    losses = metrics.probe_pass(g.population, g.task.probe_X, Y=g.task.probe_Y).loss
    _check(exact["probe_loss"], est[:, 0], losses.std(ddof=1) / np.sqrt(m) * fpc)
    for j, k in enumerate(names[1:], start=1):
        _check(exact[k], est[:, j])
    # the Krogh-Vedelsby identity holds for the corrected estimates
    np.testing.assert_allclose(est[:, 4], est[:, 2], rtol=1e-6, atol=1e-12)


def test_panel_estimates_of_a_classification_population_respect_their_bounds():
    names = ["accuracy", "disagreement", "worst_accuracy", "entropy"]
    exact, est = _exact_and_panels("social_learning", 1500, names, distill_weight=0.0)
    _check(exact["accuracy"], est[:, 0])
    _check(exact["disagreement"], est[:, 1])
    _check(exact["entropy"], est[:, 3])
    # Hoeffding-Serfling for a share in [0, 1]: |error| <= sqrt(log(2/delta) / (2 m)) w.p. 1 - delta
    bound = np.sqrt(np.log(2 / 0.01) / (2 * 256))
    assert np.mean(np.abs(est[:, 0] - exact["accuracy"]) > bound) <= 0.01
    # worst of the panel: never below the true worst
    assert np.all(est[:, 2] >= exact["worst_accuracy"])


def test_the_panels_worst_agent_is_within_its_stated_quantile():
    """With probability 1 - delta at most log(1/delta)/m of all agents are worse than the
    panel's worst (delta = 0.05: at most 5% of panels may break it; binomial slack to 10%)."""
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, size=20_000)  # per-agent probe losses
    m, delta = 256, 0.05
    broken = 0
    for seed in range(400):
        panel = metrics.measure_panel(values.size, 1000, m, seed=seed).rows
        broken += np.mean(values > values[panel].max()) > np.log(1 / delta) / m
    assert broken / 400 <= 2 * delta


def test_affine_agents_are_clustered_exactly_at_any_size():
    """The polarization scenario's agents are affine: above measure_exact their clusters are
    computed for every agent from exact coordinates, equal to the probe-based exact ones."""
    gp = {"blocks": 4, "p_in": 0.01, "p_out": 0.0005}
    kw = dict(n_agents=2500, rng=1, graph_params=gp, confidence=0.05, cluster_eps=0.002)
    m = REGISTRY["polarization"](measure_exact=1000, **kw)
    m.run_for(5)
    big = snapshot(m)
    m.p["measure_exact"] = 0
    exact = snapshot(m)
    for k in ("n_clusters", "largest_cluster", "cluster_nmi", "modularity"):
        assert big[k] == pytest.approx(exact[k], rel=1e-12, abs=1e-12), k
    # no hidden unit to align: the aligned distance is the population's consensus distance at
    # any size, and the alignment of every agent finds nothing to change
    population_value = metrics.consensus_distance(m.population.params)
    assert big["aligned_distance"] == exact["aligned_distance"] == population_value
    aligned = metrics.aligned_consensus_distance(m.population)
    assert aligned == pytest.approx(population_value, rel=1e-12)
    assert population_value > 0
    # the probe path's outputs are float32, the coordinates float64
    assert big["polarization"] == pytest.approx(exact["polarization"], rel=1e-6)
    assert exact["n_clusters"] > 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "task_params",
    [
        {"d_in": 1, "teacher_hidden": 0},
        {"d_in": 2, "teacher_hidden": 8},
        {"d_in": 1, "teacher_hidden": 0, "drift_step": 2},  # the truth changes at step 2
    ],
)
def test_affine_agents_function_measures_are_exact_at_any_size(task_params, dtype, monkeypatch):
    """Above measure_exact, affine agents judged by their MSE against one truth get every
    function-space measure over all agents, exactly, from their coordinates (no probe pass):
    equal to the measures of every agent's outputs on the probe (NumPy, float64), and to the
    exact probe-based path up to the outputs' precision. A linear teacher, and a tanh teacher
    on two inputs (a truth no affine agent fits exactly)."""
    kw = dict(n_agents=1500, rng=2, lr=0.05, dtype=dtype, task_params=task_params)
    m = REGISTRY["polarization"](measure_exact=1000, **kw)
    m.run_for(4)
    import simulator.measures as MS

    m.p["measure_exact"] = 0
    snapshot(m)  # a probe pass of every agent, left in last_probe
    assert m.last_probe is not None
    m.p["measure_exact"] = 1000

    def no_probe_pass(*args, **kwargs):
        raise AssertionError("affine agents above measure_exact need no probe pass")

    monkeypatch.setattr(MS, "run_probe", no_probe_pass)
    big = snapshot(m)
    assert m.last_probe is None
    monkeypatch.undo()
    F = m.population.predict(m.task.probe_X).astype(np.float64)  # (P, n, 1)
    Y = MS.probe_truth(m)[0].astype(np.float64)  # the truth at this step
    mean = F.mean(axis=0)
    err = ((F - Y) ** 2).mean(axis=(1, 2))
    dispersion = ((F - mean) ** 2).sum(axis=2).mean()
    oracle = {
        "function_dispersion": dispersion,
        "ambiguity": dispersion,
        "probe_loss": err.mean(),
        "worst_probe_loss": err.max(),
        "ensemble_loss": ((mean - Y) ** 2).mean(),
        "ensemble_gain": err.mean() - ((mean - Y) ** 2).mean(),
        "output_spread": F.std(axis=1).mean(),
    }
    rel = 1e-5 if dtype == "float32" else 1e-9  # the oracle's outputs are in the agents' dtype
    m.p["measure_exact"] = 0
    exact = snapshot(m)
    for k, value in oracle.items():
        assert big[k] == pytest.approx(value, rel=rel), k
        assert big[k] == pytest.approx(exact[k], rel=rel), k
    assert big["function_dispersion"] > 0 and big["worst_probe_loss"] > big["probe_loss"]


def test_affine_agents_with_their_own_truths_keep_the_panel_for_their_losses():
    """Affine agents each judged against its own teacher: their losses are not distances to
    one truth, so above measure_exact the probe pass measures the panel (its estimates), while
    their clusters stay exact over every agent."""
    kw = dict(n_agents=1500, rng=2, lr=0.05)
    tp = {"d_in": 1, "teacher_hidden": 0, "heterogeneity": "agent"}
    m = REGISTRY["polarization"](measure_exact=1000, task_params=tp, **kw)
    m.run_for(3)
    big = snapshot(m)
    assert m.last_probe is not None and m.last_probe.rows.size == 256
    m.p["measure_exact"] = 0
    exact = snapshot(m)
    assert big["n_clusters"] == exact["n_clusters"]
    assert big["probe_loss"] != pytest.approx(exact["probe_loss"], rel=1e-9)  # an estimate
    assert big["probe_loss"] == pytest.approx(exact["probe_loss"], rel=0.1)


@pytest.mark.parametrize("eps", [0.002, 0.5])
def test_graph_measures_kept_from_the_last_collect_equal_a_fresh_computation(eps, monkeypatch):
    """cluster_nmi and modularity of unchanged clusters on an unchanged graph are taken from
    the last collect: every step they equal the measures computed afresh, whether the clusters
    change every step (a small radius) or stay (a large one: one cluster, computed only at the
    start and after a new graph replaced the old one)."""
    import networkx as nx

    gp = {"blocks": 4, "p_in": 0.01, "p_out": 0.0005}
    kw = dict(n_agents=2500, rng=1, graph_params=gp, confidence=0.05, cluster_eps=eps)
    m = REGISTRY["polarization"](measure_exact=1000, **kw)
    import simulator.measures as MS

    calls = []
    modularity, computed = metrics.modularity, MS.modularity_of_codes

    def counted(*args):
        calls.append(1)
        return computed(*args)

    monkeypatch.setattr(MS, "modularity_of_codes", counted)
    seen = set()
    for step in range(8):
        if step == 5:
            graph = nx.random_regular_graph(6, m.n_agents, seed=3)
            with pytest.raises(ParameterError, match="'community' attribute"):
                m.set_graph(graph)  # cluster_nmi needs communities: refused, nothing changed
            nx.set_node_attributes(graph, {i: i % 3 for i in graph}, "community")
            m.set_graph(graph)
        m.step()
        collected = len(calls)
        row = m.datacollector.model_vars
        labels = m.cluster_labels
        fresh = (metrics.cluster_nmi(labels, m.communities), modularity(m.csr, labels))
        assert (row["cluster_nmi"][-1], row["modularity"][-1]) == pytest.approx(
            fresh, rel=1e-12, abs=1e-12
        ), step
        seen.add(labels.tobytes())
    if eps == 0.5:  # one cluster throughout: computed after the step of the new graph only
        assert len(seen) == 1 and collected == 1
    else:
        assert len(seen) > 4


def test_per_agent_tables_above_measure_exact_cover_every_agent_exactly():
    m = REGISTRY["social_learning"](n_agents=1300, rng=0, agent_every=1, measures="fast")
    df = m.agents_dataframe()
    assert len(df) == 1300 and np.isfinite(df["probe_loss"]).all()
    task = m.task
    np.testing.assert_allclose(
        df["probe_loss"], m.population.loss(task.probe_X, task.probe_Y), rtol=1e-6
    )
    right = m.population.predict(task.probe_X).argmax(-1) == task.probe_labels[0][None]
    np.testing.assert_allclose(df["accuracy"], right.mean(axis=1))


def test_modularity_of_a_panel_with_hidden_layers_is_a_bounded_estimate():
    gp = {"blocks": 4, "p_in": 0.02, "p_out": 0.001}
    m = REGISTRY["social_learning"](
        n_agents=1200, rng=3, graph="sbm", graph_params=gp, measure_exact=1000
    )
    m.run_for(2)
    est = snapshot(m)
    m.p["measure_exact"] = 0
    exact = snapshot(m)
    assert -1.0 <= est["modularity"] <= 1.0
    assert abs(est["modularity"] - exact["modularity"]) <= 4 * 1.5 / np.sqrt(256)


def test_a_panels_diversity_and_homogenization_are_those_of_its_agents():
    """Above measure_exact the classification measures are those of the panel's decisions (the
    groups of outcome_homogenization drawn once and kept: the same on every collect)."""
    m = REGISTRY["social_learning"](n_agents=1200, rng=3)
    for _ in range(3):
        m.step()
        out = snapshot(m)
        probe = m.last_probe
        correct = probe.decisions == m.task.probe_labels[0][None]
        div = metrics.diversity(correct, population=1200)
        assert (out["kw_variance"], out["disagreement"]) == (div.kw_variance, div.disagreement)
        assert out["kappa"] == div.kappa
        homogenization = metrics.outcome_homogenization(correct, rng=m.measure_seed)
        assert out["outcome_homogenization"] == homogenization


def test_a_collects_kept_inputs_pairs_and_generator_give_what_fresh_ones_give():
    """What a collect keeps between collects (the probe pass's checked inputs, the CKA pairs,
    the measure seed's generator) gives every step the measures of a computation from scratch:
    the probe pass of the public function, the CKA of metrics.mean_cka with a fresh generator,
    and a generator in the seeded state (the draws after the pairs included); a new probe
    array is taken up at the next collect."""
    from simulator.measures import _panel_cka, measure_rng, run_probe

    m = REGISTRY["gossip_learning"](n_agents=1500, rng=4)
    plan = m.measure_panel
    for step in range(3):
        m.step()
        probe = run_probe(m, plan.rows, keep_preds=True)
        fresh = metrics.probe_pass(
            m.population, m.task.probe_X, plan.rows, m.task.probe_Y_at(m.steps),
            m.task.probe_Y_at(m.steps)[0], None, True, plan.cka_pos,
        )  # fmt: skip
        for a, b in zip(probe, fresh, strict=True):
            np.testing.assert_array_equal(a, b)
        seeded = np.random.default_rng(m.measure_seed)
        expected = metrics.mean_cka(fresh.hidden, max_pairs=128, rng=seeded)
        rng = measure_rng(m)
        rng.random(7)  # a used generator: the next call starts it afresh
        rng = measure_rng(m)
        assert _panel_cka(m, probe.hidden, rng) == expected, step
        assert rng.random() == seeded.random()  # the same state after the pairs
    m.task.probe_X = m.task.probe_X * 0.5  # a new probe: prepared again
    np.testing.assert_array_equal(
        run_probe(m, plan.rows, keep_preds=True).preds,
        m.population.predict(m.task.probe_X)[plan.rows],
    )
