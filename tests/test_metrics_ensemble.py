"""Ensembles and outcomes: Krogh-Vedelsby decomposition, accuracy, outcome homogenization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulator import ParameterError, metrics

FAST = settings(max_examples=40, deadline=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)


@st.composite
def _preds_and_targets(draw):
    P, n, d = draw(st.integers(1, 7)), draw(st.integers(1, 8)), draw(st.integers(1, 3))
    F = draw(arrays(np.float64, (P, n, d), elements=finite))
    y = draw(arrays(np.float64, (n, d), elements=finite))
    return F, y


@FAST
@given(_preds_and_targets())
def test_ensemble_error_is_mean_error_minus_ambiguity(data):
    F, y = data
    ens, mean_mse, amb = metrics.ensemble_decomposition(F, y)
    assert abs(ens - (mean_mse - amb)) <= 1e-10
    assert ens == pytest.approx(np.mean((F.mean(axis=0) - y) ** 2), abs=1e-10)
    assert mean_mse == pytest.approx(np.mean((F - y) ** 2), abs=1e-10)
    assert metrics.ensemble_gain(F, y) == pytest.approx(mean_mse - ens, abs=1e-10)


@FAST
@given(_preds_and_targets())
def test_ambiguity_is_half_the_mean_pairwise_squared_output_distance(data):
    F, y = data
    P = F.shape[0]
    pair = ((F[:, None] - F[None, :]) ** 2).mean(axis=(2, 3))  # mean over items and outputs
    amb = metrics.ensemble_decomposition(F, y)[2]
    assert amb == pytest.approx(pair.sum() / (2 * P * P), abs=1e-10)
    assert amb == pytest.approx(metrics.function_dispersion(F) / F.shape[2], abs=1e-10)


@FAST
@given(_preds_and_targets(), st.randoms(use_true_random=False))
def test_ensemble_measures_do_not_change_when_agents_are_reordered(data, rnd):
    F, y = data
    perm = list(range(F.shape[0]))
    rnd.shuffle(perm)
    np.testing.assert_allclose(
        metrics.ensemble_decomposition(F[perm], y),
        metrics.ensemble_decomposition(F, y),
        rtol=1e-9,
        atol=1e-9,
    )


def test_homogenized_agents_have_no_ensemble_gain():
    F = np.repeat(np.random.default_rng(0).standard_normal((1, 10, 2)), 5, axis=0)
    y = np.zeros((10, 2))
    ens, mean_mse, amb = metrics.ensemble_decomposition(F.astype(np.float32), y)
    assert amb == 0.0
    assert ens == pytest.approx(mean_mse)
    assert metrics.ensemble_decomposition(F[:, :, :1], np.zeros(10))[2] == 0.0  # y of shape (n,)


def test_ensemble_accuracy_of_the_mean_probability_vote():
    # 3 agents, 3 items, 2 classes; on item 2 the mean outvotes two mildly wrong agents
    probs = np.array(
        [
            [[0.9, 0.1], [0.4, 0.6], [0.45, 0.55]],
            [[0.8, 0.2], [0.3, 0.7], [0.45, 0.55]],
            [[0.3, 0.7], [0.6, 0.4], [0.99, 0.01]],
        ]
    )
    labels = np.array([0, 1, 0])
    ens, mean_acc = metrics.ensemble_accuracy(probs, labels)
    assert ens == pytest.approx(1.0)
    assert mean_acc == pytest.approx((2 + 2 + 1) / 9)  # agents right on 2, 2 and 1 items
    single = probs[:, :, 1:]  # one output = P(class 1), decided by > 0.5
    assert metrics.ensemble_accuracy(single, labels) == pytest.approx((ens, mean_acc))


def test_independent_failures_are_not_homogenized():
    rng = np.random.default_rng(1)
    errors = rng.uniform(0.2, 0.4, size=(6, 1))
    correct = rng.random((6, 40_000)) >= errors
    for k in (2, 3):
        assert metrics.outcome_homogenization(correct, k=k) == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_identical_agents_fail_together_by_e_to_the_one_minus_k(k):
    e = 0.2
    one = np.arange(1000) >= int(e * 1000)  # exactly 20 % errors
    correct = np.tile(one, (5, 1))
    assert metrics.outcome_homogenization(correct, k=k) == pytest.approx(e ** (1 - k), rel=1e-12)


def test_outcome_homogenization_degenerate_cases_are_finite_and_documented():
    assert metrics.outcome_homogenization(np.ones((4, 50), dtype=bool)) == 1.0  # no failures
    correct = np.random.default_rng(2).random((4, 50)) > 0.3
    correct[0] = True  # one perfect agent: its groups count 0/0 as 1
    assert np.isfinite(metrics.outcome_homogenization(correct))
    assert metrics.outcome_homogenization(correct, k=1) == 1.0
    assert metrics.outcome_homogenization(np.zeros((1, 5), dtype=bool)) == 1.0  # P = 1: k = 1


def test_sampled_outcome_homogenization_is_close_to_the_exact_one_and_order_free():
    rng = np.random.default_rng(3)
    shared = rng.random(3000) < 0.25
    own = rng.random((14, 3000)) < rng.uniform(0.05, 0.3, (14, 1))
    correct = ~np.where(rng.random((14, 1)) < 0.5, shared | own, own)  # half share failures
    exact = metrics.outcome_homogenization(correct, k=3, max_groups=10_000)  # C(14, 3) = 364
    sampled = metrics.outcome_homogenization(correct, k=3, max_groups=2000, rng=rng)
    assert sampled == pytest.approx(exact, rel=0.1)
    perm = rng.permutation(14)
    shuffled = metrics.outcome_homogenization(correct[perm], k=3, max_groups=10_000)
    assert shuffled == pytest.approx(exact, rel=1e-12)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ParameterError, match="y.shape"):
        metrics.ensemble_decomposition(np.ones((2, 3, 1)), np.ones((4, 1)))
    with pytest.raises(ParameterError, match="labels"):
        metrics.ensemble_accuracy(np.ones((2, 3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ParameterError, match="k="):
        metrics.outcome_homogenization(np.ones((3, 4), dtype=bool), k=4)
    with pytest.raises(ParameterError, match="correct"):
        metrics.outcome_homogenization(np.full((3, 4), 0.5))


def _numpy_homogenization(fails: np.ndarray, groups: np.ndarray) -> float:
    """The ratio of outcome homogenization by NumPy's operations (its former code)."""
    rates = fails.mean(axis=1)
    joint = np.array([np.mean(np.all(fails[g] == 1, axis=0)) for g in groups])
    expected = np.prod(rates[groups], axis=1)
    ratio = np.ones_like(joint)
    np.divide(joint, expected, out=ratio, where=expected > 0)
    return float(ratio.mean())


@pytest.mark.parametrize("seed", range(8))
def test_homogenization_of_failures_is_numpys_arithmetic_to_the_last_bit(seed):
    rng = np.random.default_rng(seed)
    P, n = int(rng.integers(1, 40)), int(rng.integers(1, 300))
    fails = (rng.random((P, n)) < rng.uniform(0, 0.6, (P, 1))).astype(np.uint8)
    fails[rng.random(P) < 0.2] = 0  # some agents never fail: their groups count 1
    for k in sorted({1, min(P, 2), min(P, 3)}):
        groups = metrics.failure_groups(P, k, max_groups=300, rng=seed)
        assert groups.shape[1] == k and groups.dtype == np.int64
        got = metrics.homogenization_of_failures(fails, groups)
        assert got == _numpy_homogenization(fails, groups)
        again = metrics.outcome_homogenization(fails == 0, k=k, max_groups=300, rng=seed)
        assert again == got  # the public function: the same groups and arithmetic


def test_diversity_of_right_is_diversity_of_the_oracle_outputs():
    rng = np.random.default_rng(4)
    for L, N in ((1, 7), (2, 30), (25, 400)):
        correct = rng.random((L, N)) < 0.7
        right = correct.sum(axis=0, dtype=np.int64)
        for population in (None, L + 100):
            assert metrics.diversity_of_right(right, L, population) == metrics.diversity(
                correct, population=population
            )


def test_the_parts_of_homogenization_and_diversity_refuse_bad_input_by_name():
    fails = np.zeros((4, 10), dtype=np.uint8)
    fails[0, :3] = 1
    groups = metrics.failure_groups(4, 3)
    as_bool = metrics.homogenization_of_failures(fails.astype(bool), groups)
    assert as_bool == metrics.homogenization_of_failures(fails, groups)
    bad_groups = [np.array([[0, 1, 4]]), np.array([[-1, 0, 1]]), np.zeros((0, 3), int), [0, 1]]
    for bad in bad_groups:
        with pytest.raises(ParameterError, match="groups="):
            metrics.homogenization_of_failures(fails, bad)
    for bad in (fails * 2, np.zeros((0, 5), np.uint8), np.ones((2, 3)) * 0.5):
        with pytest.raises(ParameterError, match="fails="):
            metrics.homogenization_of_failures(bad, groups)
    with pytest.raises(ParameterError, match="n_agents="):
        metrics.failure_groups(0)
    for bad in (np.array([0, 5]), np.array([-1, 1]), np.array([0.5, 1.0]), np.zeros((2, 2), int)):
        with pytest.raises(ParameterError, match="right="):
            metrics.diversity_of_right(bad, 4)
    with pytest.raises(ParameterError, match="n_agents="):
        metrics.diversity_of_right(np.array([1, 2]), 0)
