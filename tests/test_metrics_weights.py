"""Weight-space measures: consensus distance, cosine, hidden-unit alignment."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulator import ParameterError, Population, metrics

FAST = settings(max_examples=30, deadline=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)


def _rows(max_p: int = 8) -> st.SearchStrategy:
    shape = st.tuples(st.integers(1, max_p), st.integers(1, 6))
    return arrays(np.float64, shape, elements=finite)


def _disguised_copy(pop: Population, i: int, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """Agent i's row with every hidden layer's units permuted (and sign-flipped if ``flip``)."""
    layers = [(w.copy(), b.copy()) for w, b in pop.layout.unravel(pop.params[i].copy())]
    for l in range(len(layers) - 1):
        h = layers[l][1].size
        perm = rng.permutation(h)
        sign = rng.choice([-1.0, 1.0], h) if flip else np.ones(h)
        sign = sign.astype(pop.params.dtype)
        W, b = layers[l]
        layers[l] = (W[:, perm] * sign, b[perm] * sign)
        W2, b2 = layers[l + 1]
        layers[l + 1] = (W2[perm, :] * sign[:, None], b2)
    return pop.layout.ravel(layers)


@FAST
@given(_rows())
def test_consensus_distance_is_half_the_mean_pairwise_squared_distance(X):
    P = X.shape[0]
    pairwise = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    assert metrics.consensus_distance(X) == pytest.approx(pairwise.sum() / (2 * P * P), abs=1e-9)


@FAST
@given(_rows(), st.randoms(use_true_random=False))
def test_weight_measures_do_not_change_when_agents_are_reordered(X, rnd):
    perm = list(range(X.shape[0]))
    rnd.shuffle(perm)
    for f in (metrics.consensus_distance, metrics.mean_pairwise_cosine):
        assert f(X[perm]) == pytest.approx(f(X), rel=1e-9, abs=1e-9)


def test_mean_pairwise_cosine_matches_the_mean_over_all_pairs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 7)) + 0.5
    X[3] = 0.0  # a zero row has cosine 0 with every other row
    norms = np.linalg.norm(X, axis=1)
    U = np.divide(X, norms[:, None], out=np.zeros_like(X), where=norms[:, None] > 0)
    cos = U @ U.T
    iu = np.triu_indices(40, 1)
    assert metrics.mean_pairwise_cosine(X) == pytest.approx(cos[iu].mean(), abs=1e-12)


def test_identical_agents_have_zero_consensus_distance_and_cosine_one():
    X = np.tile(np.random.default_rng(1).standard_normal(33).astype(np.float32), (50, 1))
    assert metrics.consensus_distance(X) == pytest.approx(0.0, abs=1e-10)
    assert metrics.mean_pairwise_cosine(X) == pytest.approx(1.0, abs=1e-6)


def test_float32_params_are_measured_in_float64():
    X = np.random.default_rng(2).standard_normal((300, 50)).astype(np.float32) + 100.0
    exact = metrics.consensus_distance(X.astype(np.float64))
    assert metrics.consensus_distance(X) == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("layers", [(6, 12, 2), (6, 10, 7, 2)])
@pytest.mark.parametrize("activation", ["tanh", "identity", "relu", "sigmoid", "step"])
def test_a_disguised_copy_has_zero_aligned_distance_and_identical_predictions(layers, activation):
    pop = Population(n_agents=3, layers=layers, activation=activation, seed=3)
    rng = np.random.default_rng(4)
    odd = activation in ("tanh", "identity")
    pop.params[1] = _disguised_copy(pop, 0, rng, flip=odd)
    X = rng.standard_normal((64, layers[0]))
    out = pop.predict(X)
    np.testing.assert_allclose(out[1], out[0], atol=1e-5)
    assert np.linalg.norm(pop.params[0] - pop.params[1]) > 1.0
    assert metrics.aligned_distance(pop, 0, 1) < 1e-5
    assert metrics.aligned_distance(pop, 1, 0) < 1e-5
    aligned = metrics.align_params(pop, 0, 1)
    assert aligned.dtype == pop.params.dtype
    np.testing.assert_allclose(aligned, pop.params[0], atol=1e-6)


@pytest.mark.parametrize("layers", [(5, 9, 1), (5, 8, 8, 3)])
def test_alignment_keeps_the_function_and_never_increases_the_distance(layers):
    pop = Population(n_agents=6, layers=layers, activation="tanh", seed=5)
    X = np.random.default_rng(6).standard_normal((32, layers[0]))
    before = pop.params.copy()
    for j in range(1, 6):
        aligned = metrics.align_params(pop, 0, j)
        moved = Population.from_params(aligned[None].copy(), layers=layers, activation="tanh")
        np.testing.assert_allclose(moved.predict(X)[0], pop.predict(X)[j], atol=1e-5)
        raw = np.linalg.norm(pop.params[0].astype(np.float64) - pop.params[j])
        assert metrics.aligned_distance(pop, 0, j) <= raw + 1e-9
    np.testing.assert_array_equal(pop.params, before)


def test_aligned_distance_finds_the_best_permutation_of_a_small_network():
    """One hidden layer of 4 units: brute force over all 4! * 2^4 symmetries."""
    from itertools import permutations, product

    pop = Population(n_agents=2, layers=(3, 4, 2), activation="tanh", seed=7)
    b = pop.layout.unravel(pop.params[1])
    best = np.inf
    for perm in permutations(range(4)):
        for signs in product((-1.0, 1.0), repeat=4):
            s = np.array(signs)
            rows = [
                (b[0][0][:, perm] * s, b[0][1][list(perm)] * s),
                (b[1][0][perm, :] * s[:, None], b[1][1]),
            ]
            best = min(best, np.linalg.norm(pop.params[0] - pop.layout.ravel(rows)))
    assert metrics.aligned_distance(pop, 0, 1) == pytest.approx(best, rel=1e-6)


def test_aligned_consensus_distance_sees_through_disguised_copies():
    pop = Population(n_agents=30, layers=(6, 10, 8, 2), activation="tanh", seed=8)
    rng = np.random.default_rng(9)
    for i in range(1, 30):
        pop.params[i] = _disguised_copy(pop, 0, rng, flip=True)
    assert metrics.consensus_distance(pop.params) > 1.0
    assert metrics.aligned_consensus_distance(pop) == pytest.approx(0.0, abs=1e-10)


def test_aligned_consensus_distance_is_below_raw_and_independent_of_agent_order():
    pop = Population(n_agents=25, layers=(4, 8, 1), activation="tanh", seed=10)
    value = metrics.aligned_consensus_distance(pop)
    assert 0 < value < metrics.consensus_distance(pop.params)
    perm = np.random.default_rng(11).permutation(25)
    shuffled = Population.from_params(pop.params[perm].copy(), layers=(4, 8, 1))
    assert metrics.aligned_consensus_distance(shuffled) == pytest.approx(value, rel=1e-9)


def test_sampled_aligned_consensus_distance_is_close_to_the_exact_one():
    pop = Population(n_agents=400, layers=(4, 8, 1), activation="tanh", seed=12)
    exact = metrics.aligned_consensus_distance(pop, ref=0)
    sampled = [
        metrics.aligned_consensus_distance(pop, ref=0, max_agents=150, rng=np.random.default_rng(s))
        for s in range(3)
    ]
    assert np.mean(sampled) == pytest.approx(exact, rel=0.1)
    again = metrics.aligned_consensus_distance(
        pop, ref=0, max_agents=150, rng=np.random.default_rng(0)
    )
    assert again == sampled[0]


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ParameterError, match="params"):
        metrics.consensus_distance(np.ones(5))
    with pytest.raises(ParameterError, match="params"):
        metrics.consensus_distance(np.array([[1.0, np.nan]]))
    with pytest.raises(ParameterError, match="rng"):
        metrics.mean_pairwise_cosine(np.ones((3, 2)), rng="seed")
    pop = Population(n_agents=3, layers=(2, 3, 1), seed=0)
    with pytest.raises(ParameterError, match="other"):
        metrics.align_params(pop, 0, 3)
    with pytest.raises(ParameterError, match="max_agents"):
        metrics.aligned_consensus_distance(pop, max_agents=1)
