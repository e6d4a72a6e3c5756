"""Classifier diversity (Kuncheva & Whitaker 2003) and the weighted Krogh-Vedelsby identity."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from models import REGISTRY
from simulator import ParameterError, metrics


def _oracle_disagreement(C: np.ndarray) -> float:
    """Mean over all pairs of agents of the share of items where exactly one is right."""
    L = C.shape[0]
    pairs = list(combinations(range(L), 2))
    return float(np.mean([np.mean(C[i] != C[k]) for i, k in pairs]))


def _oracle_fleiss_kappa(C: np.ndarray) -> float:
    """Fleiss' kappa with two categories (right, wrong), from its textbook definition."""
    L, N = C.shape
    n = np.stack([C.sum(axis=0), L - C.sum(axis=0)], axis=1).astype(float)  # (N, 2)
    P_j = (np.sum(n * (n - 1), axis=1)) / (L * (L - 1))
    p_c = n.sum(axis=0) / (N * L)
    P_bar, P_e = P_j.mean(), np.sum(p_c**2)
    return float((P_bar - P_e) / (1 - P_e))


@pytest.mark.parametrize("seed", range(6))
def test_kw_variance_is_l_minus_1_over_2l_times_the_mean_pairwise_disagreement(seed):
    rng = np.random.default_rng(seed)
    L, N = int(rng.integers(2, 12)), int(rng.integers(1, 40))
    C = rng.random((L, N)) < rng.uniform(0.2, 0.9)
    dis = _oracle_disagreement(C)
    assert metrics.disagreement(C) == pytest.approx(dis, abs=1e-12)
    assert metrics.kw_variance(C) == pytest.approx((L - 1) / (2 * L) * dis, abs=1e-12)
    # the textbook KW formula, directly: 1/(N L^2) sum_j l_j (L - l_j)
    right = C.sum(axis=0)
    assert metrics.kw_variance(C) == pytest.approx(np.sum(right * (L - right)) / (N * L**2))


@pytest.mark.parametrize("seed", range(6))
def test_kappa_is_fleiss_kappa_and_one_minus_disagreement_over_2p_1_minus_p(seed):
    rng = np.random.default_rng(100 + seed)
    L, N = int(rng.integers(2, 10)), int(rng.integers(2, 50))
    C = rng.random((L, N)) < 0.6
    if C.all() or not C.any():
        C[0, 0] = not C[0, 0]
    p = C.mean()
    kappa = metrics.kappa(C)
    assert kappa == pytest.approx(_oracle_fleiss_kappa(C), abs=1e-12)
    assert kappa == pytest.approx(1 - _oracle_disagreement(C) / (2 * p * (1 - p)), abs=1e-12)


def test_diversity_of_a_hand_example():
    # 3 agents, 4 items: l = (3, 2, 1, 0) agents right; N = 4, L = 3
    C = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    # discordant pairs per item: l (L - l) = 0, 2, 2, 0 -> 4 of 3 pairs x 4 items
    d = metrics.diversity(C)
    assert d.disagreement == pytest.approx(4 / 12)
    assert d.kw_variance == pytest.approx(4 / (4 * 9))
    assert d.accuracy == pytest.approx(6 / 12)
    assert d.kappa == pytest.approx(1 - (4 / 12) / (2 * 0.5 * 0.5))


def test_identical_agents_have_no_diversity_and_full_agreement():
    row = np.random.default_rng(0).random(30) < 0.5
    C = np.repeat(row[None], 7, axis=0)
    d = metrics.diversity(C)
    assert d.disagreement == 0.0 and d.kw_variance == 0.0 and d.kappa == 1.0


def test_diversity_degenerate_cases_follow_the_documented_conventions():
    assert metrics.diversity(np.ones((1, 5), dtype=bool)) == (0.0, 0.0, 1.0, 1.0)
    assert metrics.kappa(np.ones((4, 5), dtype=bool)) == 1.0
    assert metrics.kappa(np.zeros((4, 5), dtype=bool)) == 1.0


def test_diversity_does_not_change_when_agents_or_items_are_reordered():
    rng = np.random.default_rng(3)
    C = rng.random((9, 40)) < 0.7
    a = metrics.diversity(C)
    b = metrics.diversity(C[rng.permutation(9)][:, rng.permutation(40)])
    assert a == pytest.approx(b)


def test_diversity_of_a_panel_estimates_the_population_without_bias():
    """Disagreement over a uniform sample of agents is unbiased for the population's (a mean
    over uniform pairs); 400 samples of 20 agents among 200: mean within 4 standard errors."""
    rng = np.random.default_rng(11)
    skill = rng.uniform(0.3, 0.9, 200)
    C = rng.random((200, 60)) < skill[:, None]
    truth = metrics.diversity(C)
    est = np.array(
        [
            metrics.diversity(C[rng.choice(200, 20, replace=False)], population=200).disagreement
            for _ in range(400)
        ]
    )
    assert abs(est.mean() - truth.disagreement) < 4 * est.std() / np.sqrt(400)
    kw = metrics.diversity(C[:20], population=200).kw_variance
    assert kw == pytest.approx(199 / 400 * metrics.disagreement(C[:20]))


def test_bad_oracle_outputs_name_the_parameter():
    with pytest.raises(ParameterError, match="correct"):
        metrics.kw_variance(np.full((3, 4), 0.5))
    with pytest.raises(ParameterError, match="correct"):
        metrics.kappa(np.array([[0, 2, 1]]))
    with pytest.raises(ParameterError, match="population"):
        metrics.kw_variance(np.ones((5, 3), dtype=bool), population=4)


@pytest.mark.parametrize("seed", range(5))
def test_weighted_ensemble_error_is_weighted_mean_error_minus_weighted_ambiguity(seed):
    rng = np.random.default_rng(seed)
    P, n, d = int(rng.integers(1, 9)), int(rng.integers(1, 20)), int(rng.integers(1, 4))
    F, y, w = rng.standard_normal((P, n, d)), rng.standard_normal((n, d)), rng.random(P)
    ens, mean_mse, amb = metrics.ensemble_decomposition(F.astype(np.float32), y, weights=w)
    assert ens == pytest.approx(mean_mse - amb, rel=1e-9, abs=1e-12)
    # against NumPy, from the definitions
    F64 = F.astype(np.float32).astype(np.float64)
    wn = w / w.sum()
    fbar = np.einsum("p,pnd->nd", wn, F64)
    assert ens == pytest.approx(np.mean((fbar - y) ** 2))
    assert mean_mse == pytest.approx(np.sum(wn * np.mean((F64 - y) ** 2, axis=(1, 2))))
    assert amb == pytest.approx(np.sum(wn * np.mean((F64 - fbar) ** 2, axis=(1, 2))))
    # weights are normalized: scaling them changes nothing
    scaled = metrics.ensemble_decomposition(F, y, weights=7.5 * w)
    assert scaled == pytest.approx(metrics.ensemble_decomposition(F, y, weights=w))


def test_uniform_weights_are_the_default_and_a_zero_weight_drops_an_agent():
    rng = np.random.default_rng(4)
    F, y = rng.standard_normal((5, 12, 2)), rng.standard_normal((12, 2))
    plain = metrics.ensemble_decomposition(F, y)
    assert metrics.ensemble_decomposition(F, y, weights=np.ones(5)) == pytest.approx(plain)
    w = np.array([1.0, 0.0, 2.0, 1.0, 0.0])
    keep = metrics.ensemble_decomposition(F[[0, 2, 3]], y, weights=w[[0, 2, 3]])
    assert metrics.ensemble_decomposition(F, y, weights=w) == pytest.approx(keep)


@pytest.mark.parametrize("bad", [np.ones(3), -np.ones(4), np.zeros(4), np.array([1, np.nan, 1, 1])])
def test_bad_weights_name_the_parameter(bad):
    F = np.zeros((4, 3, 1))
    with pytest.raises(ParameterError, match="weights"):
        metrics.ensemble_decomposition(F, np.zeros(3), weights=bad)


def test_classification_models_report_the_diversity_measures():
    m = REGISTRY["social_learning"](n_agents=12, rng=0)
    m.run_for(2)
    df = m.model_dataframe()
    assert {"kw_variance", "disagreement", "kappa"} <= set(df.columns)
    last = df.iloc[-1]
    assert last["kw_variance"] == pytest.approx(11 / 24 * last["disagreement"])
    acc = last["accuracy"]
    assert last["kappa"] == pytest.approx(1 - last["disagreement"] / (2 * acc * (1 - acc)))
    gossip = REGISTRY["gossip_learning"](n_agents=8, rng=0)
    assert "kappa" not in gossip.measure_names
