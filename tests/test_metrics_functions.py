"""Function-space and representation measures: dispersion, agreement, CKA."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulator import ParameterError, Population, metrics

FAST = settings(max_examples=30, deadline=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)


def _preds(max_p: int = 7) -> st.SearchStrategy:
    shape = st.tuples(st.integers(1, max_p), st.integers(1, 6), st.integers(1, 3))
    return arrays(np.float64, shape, elements=finite)


def _cka_oracle(A: np.ndarray, B: np.ndarray) -> float:
    """HSIC form with an explicit centring matrix (Kornblith et al. 2019, eq. 3)."""
    n = A.shape[0]
    H = np.eye(n) - 1.0 / n
    K, L = H @ A @ A.T @ H, H @ B @ B.T @ H
    return float(np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L)))


@FAST
@given(_preds())
def test_function_dispersion_is_half_the_mean_pairwise_squared_output_distance(F):
    P = F.shape[0]
    pair = ((F[:, None] - F[None, :]) ** 2).sum(axis=3).mean(axis=2)
    assert metrics.function_dispersion(F) == pytest.approx(pair.sum() / (2 * P * P), abs=1e-9)


@FAST
@given(_preds(), st.randoms(use_true_random=False))
def test_function_measures_do_not_change_when_agents_are_reordered(F, rnd):
    perm = list(range(F.shape[0]))
    rnd.shuffle(perm)
    for f in (metrics.function_dispersion, metrics.prediction_agreement):
        assert f(F[perm]) == pytest.approx(f(F), rel=1e-9, abs=1e-9)


def test_identical_agents_have_zero_dispersion_and_full_agreement():
    one = np.random.default_rng(0).standard_normal((1, 20, 4)).astype(np.float32)
    F = np.repeat(one, 30, axis=0)
    assert metrics.function_dispersion(F) == 0.0
    assert metrics.prediction_agreement(F) == 1.0
    H = np.repeat(np.random.default_rng(1).standard_normal((1, 20, 5)), 6, axis=0)
    assert metrics.mean_cka(H) == pytest.approx(1.0)


def test_prediction_agreement_counts_the_plurality_share():
    # 4 agents, 2 items, 3 classes: item 0 decisions 0,0,1,2 -> 2/4; item 1: 2,2,2,2 -> 1
    dec = np.array([[0, 2], [0, 2], [1, 2], [2, 2]])
    F = np.eye(3)[dec]
    assert metrics.prediction_agreement(F) == pytest.approx(0.75)
    # one output: decision is output > 0.5
    G = np.array([[[0.9], [0.2]], [[0.6], [0.4]], [[0.1], [0.7]]])
    assert metrics.prediction_agreement(G) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert metrics.agreement_of_decisions(dec, 3) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("dec", "n_classes", "name"),
    [([[0, 3]], 3, "dec"), ([[-1, 0]], 3, "dec"), ([[0.0, 1.0]], 2, "dec"), ([0, 1], 2, "dec"),
     ([[0, 1]], 0, "n_classes")],
)  # fmt: skip
def test_agreement_of_decisions_refuses_decisions_outside_the_classes(dec, n_classes, name):
    """The counts are a kernel writing one slot per class: a decision outside [0, n_classes)
    is refused by name, never written out of bounds."""
    with pytest.raises(ParameterError, match=name):
        metrics.agreement_of_decisions(np.array(dec), n_classes)


def test_linear_cka_matches_the_hsic_oracle_in_feature_and_gram_forms():
    rng = np.random.default_rng(2)
    for n, h1, h2 in [(50, 4, 6), (5, 30, 40)]:  # n > h: feature form; n < h: Gram form
        A = rng.standard_normal((n, h1))
        B = A @ rng.standard_normal((h1, h2)) + rng.standard_normal((n, h2))
        assert metrics.linear_cka(A, B) == pytest.approx(_cka_oracle(A, B), rel=1e-10)


def test_linear_cka_is_invariant_to_rotation_scaling_and_translation_not_general_maps():
    rng = np.random.default_rng(3)
    A = np.tanh(rng.standard_normal((80, 6)) @ rng.standard_normal((6, 8)))
    B = np.tanh(rng.standard_normal((80, 6)))
    Q = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    ref = metrics.linear_cka(A, B)
    assert metrics.linear_cka(A, A) == pytest.approx(1.0)
    assert metrics.linear_cka(3.7 * A @ Q + 5.0, B) == pytest.approx(ref, rel=1e-9)
    M = rng.standard_normal((8, 8)) * np.linspace(0.1, 3, 8)
    assert abs(metrics.linear_cka(A @ M, B) - ref) > 1e-3


def test_linear_cka_of_a_constant_representation_is_zero():
    A = np.ones((10, 3))
    assert metrics.linear_cka(A, np.random.default_rng(4).standard_normal((10, 2))) == 0.0


def test_mean_cka_is_the_mean_over_pairs_and_sampling_stays_close():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((40, 6))
    hidden = np.tanh(base[None] @ rng.standard_normal((30, 6, 8)) * rng.uniform(0.2, 2, (30, 1, 1)))
    pairs = [metrics.linear_cka(hidden[i], hidden[j]) for i in range(30) for j in range(i + 1, 30)]
    exact = metrics.mean_cka(hidden, max_pairs=10_000)
    assert exact == pytest.approx(np.mean(pairs), rel=1e-10)
    sampled = metrics.mean_cka(hidden, max_pairs=300, rng=np.random.default_rng(6))
    assert sampled == pytest.approx(exact, abs=4 * np.std(pairs) / np.sqrt(300))
    perm = rng.permutation(30)
    assert metrics.mean_cka(hidden[perm], max_pairs=10_000) == pytest.approx(exact, rel=1e-10)


def _drawn_pairs(P: int, max_pairs: int, rng: np.random.Generator):
    """The pairs mean_cka averages over, drawn as documented: all i < j if there are at most
    max_pairs, else max_pairs uniform pairs (i from [0, P), j from the other P - 1)."""
    if P * (P - 1) // 2 <= max_pairs:
        return [(i, j) for i in range(P) for j in range(i + 1, P)]
    I = rng.integers(0, P, size=max_pairs)
    J = rng.integers(0, P - 1, size=max_pairs)
    J += J >= I
    return list(zip(np.minimum(I, J), np.maximum(I, J), strict=True))


def _mean_cka_oracle(hidden: np.ndarray, pairs) -> float:
    """Mean of the oracle CKA over the pairs; a pair with a constant representation counts 0."""
    X = hidden.astype(np.float64)
    constant = [np.all(x == x[0]) for x in X]
    total = sum(0.0 if constant[i] or constant[j] else _cka_oracle(X[i], X[j]) for i, j in pairs)
    return total / len(pairs)


CKA_SHAPES = [  # (P, n_probe, h, dtype, max_pairs): the kernel's tile paths and edge sizes
    (12, 256, 16, np.float32, 40),
    (9, 7, 13, np.float64, 1000),
    (8, 40, 24, np.float32, 17),
    (6, 33, 17, np.float64, 15),
    (7, 300, 40, np.float32, 30),
    (5, 20, 1, np.float64, 4),
    (10, 1, 5, np.float32, 20),
    (4, 3, 9, np.float64, 6),
]


@pytest.mark.parametrize(("P", "n", "h", "dtype", "max_pairs"), CKA_SHAPES)
def test_mean_cka_is_the_oracle_mean_over_the_documented_pairs(P, n, h, dtype, max_pairs):
    rng = np.random.default_rng(P * n + h)
    hidden = np.tanh(rng.standard_normal((P, n, h)) * rng.uniform(0.3, 3, (P, 1, h)) + 0.5)
    hidden[1] = rng.standard_normal(h)  # constant over the items: its pairs count as 0
    hidden = hidden.astype(dtype)
    gen, oracle_gen = np.random.default_rng(3), np.random.default_rng(3)
    value = metrics.mean_cka(hidden, max_pairs=max_pairs, rng=gen)
    expected = _mean_cka_oracle(hidden, _drawn_pairs(P, max_pairs, oracle_gen))
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert gen.integers(1 << 62) == oracle_gen.integers(1 << 62)  # the same draws, no more


def test_mean_cka_counts_rounding_level_variation_as_constant_but_not_small_real_variation():
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((3, 64, 6))
    hidden = np.empty((3, 64, 6))
    hidden[0] = 2.5 * (1 + 0.1 * np.arange(6))
    flip = rng.random((64, 6)) < 0.3
    hidden[0][flip] = np.nextafter(hidden[0][flip], np.inf)  # a last-bit difference only
    hidden[1] = Z[1]
    hidden[2] = 5.0 + 1e-6 * Z[2]  # small, but far above rounding: not constant
    assert metrics.mean_cka(hidden[:2]) == 0.0
    exact = metrics.linear_cka(Z[1], Z[2])
    assert metrics.mean_cka(hidden[1:]) == pytest.approx(exact, rel=1e-8)
    assert metrics.mean_cka(hidden) == pytest.approx(exact / 3, rel=1e-8)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_mean_cka_refuses_non_finite_hidden_even_in_agents_no_pair_uses(bad):
    hidden = np.random.default_rng(9).standard_normal((40, 10, 3)).astype(np.float32)
    hidden[17, 4, 2] = bad
    with pytest.raises(ParameterError, match="hidden"):
        metrics.mean_cka(hidden, max_pairs=1)
    with pytest.raises(ParameterError, match="hidden"):
        metrics.mean_cka(hidden[17:18])


def test_cka_baseline_of_independent_networks_is_well_below_one():
    probe = np.random.default_rng(7).standard_normal((128, 8))
    kwargs = {"layers": (8, 16, 1), "activation": "tanh", "lr": np.ones(5), "seed": 99}
    baseline = metrics.cka_baseline(kwargs, probe, n_agents=12)
    assert 0.05 < baseline < 0.9
    assert metrics.cka_baseline(kwargs, probe, n_agents=12) == baseline  # seeded
    same = Population(n_agents=1, layers=(8, 16, 1), seed=1).predict(probe, layer=1)
    assert metrics.mean_cka(np.repeat(same, 4, axis=0)) == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("layers", "activation", "bias"),
    [
        ((8, 16, 1), "tanh", True),
        ((8, 16, 1), "relu", False),
        ((3, 5, 2), "sigmoid", True),
        ((3, 5, 2), "step", True),
        ((3, 5, 2), "identity", True),
        ((4, 16, 16, 3), ("tanh", "relu"), True),
    ],
)
def test_the_baselines_hidden_layers_in_numpy_are_the_populations(layers, activation, bias, dtype):
    """cka_baseline computes its networks' hidden layers in NumPy (no kernel to compile at a
    model's build): they are Population.predict's up to rounding, and so is the baseline."""
    from simulator.metrics.functions import _hidden_layer

    probe = np.random.default_rng(5).standard_normal((64, layers[0]))
    kwargs = {"layers": layers, "activation": activation, "dtype": dtype, "bias": bias}
    pop = Population(n_agents=6, seed=4, **kwargs)
    X = pop._inputs(probe, n_rows=1)
    tol = 1e-6 if dtype == "float32" else 1e-13
    for layer in range(1, len(layers) - 1):
        kernel = pop.predict(probe, layer=layer)
        mine = _hidden_layer(pop, X, layer)
        assert mine.dtype == kernel.dtype and mine.shape == kernel.shape
        np.testing.assert_allclose(mine, kernel, rtol=tol, atol=tol)
    want = metrics.mean_cka(Population(n_agents=6, seed=9, **kwargs).predict(probe, layer=1))
    got = metrics.cka_baseline(kwargs, probe, n_agents=6, seed=9)
    assert got == pytest.approx(want, rel=100 * tol, abs=100 * tol)
    last = len(layers) - 1  # the output layer: Population.predict itself
    want = metrics.mean_cka(Population(n_agents=6, seed=9, **kwargs).predict(probe, layer=last))
    assert metrics.cka_baseline(kwargs, probe, n_agents=6, seed=9, layer=last) == want


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ParameterError, match="preds"):
        metrics.function_dispersion(np.ones((3, 4)))
    with pytest.raises(ParameterError, match="H2"):
        metrics.linear_cka(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(ParameterError, match="max_pairs"):
        metrics.mean_cka(np.ones((3, 4, 2)), max_pairs=0)
    with pytest.raises(ParameterError, match="n_agents"):
        metrics.cka_baseline({"layers": (2, 3, 1)}, np.ones((4, 2)), n_agents=1)
    with pytest.raises(ParameterError, match=r"probe_X.shape=\(4, 3\) .*\(n, 2\)"):
        metrics.cka_baseline({"layers": (2, 3, 1)}, np.ones((4, 3)))
    with pytest.raises(ParameterError, match="probe_X.*NaN"):
        metrics.cka_baseline({"layers": (2, 3, 1)}, np.full((4, 2), np.nan))
    with pytest.raises(ParameterError, match="layer=3"):
        metrics.cka_baseline({"layers": (2, 3, 1)}, np.ones((4, 2)), layer=3)
