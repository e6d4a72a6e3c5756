"""Metrics at the edges of their inputs: ragged lists, huge and tiny finite values, NaN probes.

Each value is either correct (checked against the same metric on rescaled inputs: the cosine,
CKA, clusters, polarization and aligned distances scale exactly with a power of two) or refused
with a ParameterError naming the argument: never a silently wrong number, inf or NaN.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator import ParameterError, Population, metrics

RAGGED = [[1.0, 2.0], [3.0]]
RAGGED_3D = [[[1.0], [2.0]], [[3.0]]]
RAGGED_INTS = [[0, 1], [1]]


# (metric, keyword arguments, the ragged one); "F", "POP" and "AFFINE" are made in the test
RAGGED_CALLS = [
    ("function_dispersion", {"preds": RAGGED_3D}, "preds"),
    ("function_dispersion", {"preds": RAGGED}, "preds"),
    ("function_summary", {"preds": RAGGED_3D}, "preds"),
    ("prediction_agreement", {"preds": RAGGED_3D}, "preds"),
    ("polarization", {"preds": RAGGED_3D}, "preds"),
    ("polarization", {"preds": "F", "labels": RAGGED_INTS}, "labels"),
    ("ensemble_gain", {"preds": RAGGED_3D, "y": [[0.0], [0.0]]}, "preds"),
    ("ensemble_decomposition", {"preds": "F", "y": RAGGED}, "y"),
    ("ensemble_decomposition", {"preds": "F", "y": "F0", "weights": RAGGED}, "weights"),
    ("ensemble_accuracy", {"probs": RAGGED_3D, "labels": [0, 1]}, "probs"),
    ("function_clusters", {"preds": RAGGED_3D, "eps": 0.1}, "preds"),
    ("mean_cka", {"hidden": RAGGED_3D}, "hidden"),
    ("linear_cka", {"H1": RAGGED, "H2": [[1.0, 1.0], [1.0, 1.0]]}, "H1"),
    ("consensus_distance", {"params": RAGGED}, "params"),
    ("mean_pairwise_cosine", {"params": RAGGED}, "params"),
    ("weight_summary", {"params": RAGGED}, "params"),
    ("outcome_homogenization", {"correct": RAGGED_INTS}, "correct"),
    ("diversity", {"correct": RAGGED_INTS}, "correct"),
    ("diversity_of_right", {"right": RAGGED_INTS, "n_agents": 2}, "right"),
    ("homogenization_of_failures", {"fails": RAGGED_INTS, "groups": [[0]]}, "fails"),
    ("agreement_of_decisions", {"dec": RAGGED_INTS, "n_classes": 2}, "dec"),
    ("cluster_nmi", {"labels": RAGGED_INTS, "communities": [0, 1]}, "labels"),
    ("sampled_modularity", {"labels_u": RAGGED_INTS, "labels_v": [0, 1]}, "labels_u"),
    ("grid_clusters", {"Z": RAGGED, "eps": 0.5}, "Z"),
    ("consensus_time", {"series": RAGGED, "tol": 0.5}, "series"),
    ("probe_pass", {"pop": "POP", "X": [[1.0, 1.0]], "truth": RAGGED}, "truth"),
    ("probe_pass", {"pop": "POP", "X": [[1.0, 1.0]], "rows": RAGGED_INTS}, "rows"),
    ("linear_embedding", {"pop": "AFFINE", "probe_X": RAGGED}, "probe_X"),
]


@pytest.mark.parametrize("call", RAGGED_CALLS, ids=lambda c: f"{c[0]}-{c[2]}")
def test_ragged_nested_lists_are_refused_naming_the_argument(call):
    name, kwargs, ragged = call
    F = np.random.default_rng(0).random((3, 4, 2))
    made = {
        "F": F,
        "F0": F[0],
        "POP": Population(3, layers=(2, 3, 2), seed=0),
        "AFFINE": Population(3, layers=(2, 1), seed=0),
    }
    kwargs = {k: made[v] if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(ParameterError, match=rf"^{ragged}=.*rectangular"):
        getattr(metrics, name)(**kwargs)


@pytest.mark.parametrize("scale", [1e300, 1e200, 1e160, 1e-170, 1e-300, 5e-324])
def test_mean_cosine_of_identical_huge_or_tiny_rows_is_one(scale):
    # 1 up to the rounding of the unit vectors' norms (their squares are summed in an order
    # that depends on the vector width LLVM picks for the CPU: on a Zen 4 core, two rows of
    # nine ones give 1 - 7.8e-16, exactly 1 on a Zen 5 one), whatever the rows' scale
    for P in (2, 5, 9):  # rows in the kernel's four-row steps and one by one
        assert metrics.mean_pairwise_cosine(np.full((P, 9), scale)) == pytest.approx(1, abs=4e-15)
        assert metrics.mean_pairwise_cosine(np.full((P, 9), -scale)) == pytest.approx(1, abs=4e-15)


def test_mean_cosine_does_not_depend_on_each_rows_scale_even_beyond_float64_squares():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((11, 7))
    X[4] = 0.0  # a zero row still counts 0 with every other row
    expected = metrics.mean_pairwise_cosine(X)
    scales = 2.0 ** rng.integers(-1000, 1000, 11).astype(float)  # exact: no value subnormal
    scales[:3] = (2.0**1020, 2.0**-1010, 1.0)
    assert metrics.mean_pairwise_cosine(X * scales[:, None]) == pytest.approx(expected, abs=1e-12)
    big = X * 1e200  # squared distances overflow: the cosine is still exact
    assert metrics.mean_pairwise_cosine(big) == pytest.approx(expected, abs=1e-12)


def test_mean_cosine_of_many_rows_with_a_few_huge_tiny_and_zero_ones_is_exact():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((30_000, 10)) + 0.3  # above the parallel kernels' threshold
    X[::97] = 0.0
    X[5] = np.ldexp(X[5], 1000)
    X[6] = np.ldexp(X[6], -1060)  # subnormal values
    X[7] = np.ldexp(1.0, -600)  # every square underflows to 0
    exps = np.frexp(np.abs(X).max(axis=1))[1]  # the oracle: each row brought near 1 exactly
    Y = np.ldexp(X, -exps[:, None])
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    U = np.divide(Y, norms, out=np.zeros_like(Y), where=norms > 0)
    total = U.sum(axis=0)
    expected = (total @ total - np.count_nonzero(norms)) / (30_000 * 29_999)
    assert metrics.mean_pairwise_cosine(X) == pytest.approx(expected, rel=1e-9)


def test_consensus_distance_beyond_float64_is_refused_naming_params():
    rng = np.random.default_rng(4)
    assert metrics.consensus_distance(np.full((5, 9), 1e300)) == 0.0  # exact, fits
    for X in (rng.standard_normal((5, 9)) * 1e200, np.full((5, 3), 1e308)):
        with pytest.raises(ParameterError, match=r"^params=.*too large"):
            metrics.consensus_distance(X)
        with pytest.raises(ParameterError, match=r"^params=.*too large"):
            metrics.weight_summary(X)
    with pytest.raises(ParameterError, match=r"^params=.*NaN or inf"):
        metrics.consensus_distance(np.array([[1.0, np.inf], [1.0, 2.0]]))


def _scaled(pop: Population, scale: float) -> Population:
    big = Population(pop.n_agents, pop.layers, activation=pop.activation, dtype=np.float64)
    big.params = pop.params.astype(np.float64) * scale
    return big


@pytest.mark.parametrize("scale", [2.0**700, 2.0**-700])
@pytest.mark.parametrize("layers", [(3, 5, 2), (3, 4, 4, 2)])
def test_aligned_distances_scale_with_huge_or_tiny_params(scale, layers):
    pop = Population(6, layers, activation="tanh", seed=1, dtype=np.float64)
    big = _scaled(pop, scale)  # a power of two: every distance scales exactly
    for j in range(1, 6):
        expected = metrics.aligned_distance(pop, 0, j) * scale
        assert metrics.aligned_distance(big, 0, j) == pytest.approx(expected, rel=1e-12)
        aligned = metrics.align_params(big, 0, j)
        np.testing.assert_array_equal(aligned, metrics.align_params(pop, 0, j) * scale)
    if scale < 1:
        expected = metrics.aligned_consensus_distance(pop) * scale * scale
        got = metrics.aligned_consensus_distance(big)
        assert got == pytest.approx(expected, rel=1e-12)
    else:  # the squared distances exceed float64
        with pytest.raises(ParameterError, match=r"^params=.*too large"):
            metrics.aligned_consensus_distance(big)


def test_aligned_consensus_distance_of_huge_permuted_copies_is_zero():
    pop = Population(5, (3, 5, 2), activation="tanh", seed=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    for i in range(1, 5):  # agent 0 with its hidden units permuted and sign-flipped
        perm, sign = rng.permutation(5), rng.choice([-1.0, 1.0], 5)
        (W1, b1), (W2, b2) = pop.layout.unravel(pop.params[0].copy())
        moved = [(W1[:, perm] * sign, b1[perm] * sign), (W2[perm] * sign[:, None], b2)]
        pop.params[i] = pop.layout.ravel(moved)
    assert metrics.aligned_distance(_scaled(pop, 2.0**1000), 0, 3) == 0.0
    big = _scaled(pop, 2.0**505)  # consensus distances up to ~2^1010 still fit in float64
    raw = metrics.consensus_distance(big.params)
    assert 0.0 <= metrics.aligned_consensus_distance(big) <= 1e-20 * raw


def test_aligned_distances_refuse_nan_params_instead_of_crashing():
    pop = Population(4, (3, 5, 2), seed=1)
    pop.params[1, 0] = np.nan  # written in place: the Population cannot see it
    for call in (
        lambda: metrics.aligned_distance(pop, 0, 1),
        lambda: metrics.align_params(pop, 1, 0),
        lambda: metrics.aligned_consensus_distance(pop, ref=0),
    ):
        with pytest.raises(ParameterError, match=r"^params=.*NaN or inf"):
            call()


def test_probe_pass_refuses_a_probe_truth_or_targets_with_nan_or_inf():
    pop = Population(4, (3, 5, 2), seed=0)
    X = np.ones((6, 3))
    for bad in (np.full((6, 3), np.nan), np.where(np.eye(6, 3) > 0, np.inf, 1.0)):
        with pytest.raises(ParameterError, match=r"^X=.*NaN or inf"):
            metrics.probe_pass(pop, bad)
    with pytest.raises(ParameterError, match=r"^truth=.*NaN or inf"):
        metrics.probe_pass(pop, X, truth=np.full((6, 2), np.nan))
    with pytest.raises(ParameterError, match=r"^Y=.*NaN or inf"):
        metrics.probe_pass(pop, X, Y=np.full((4, 6, 2), np.inf))
    ok = metrics.probe_pass(pop, X, Y=np.zeros((6, 2)), truth=np.zeros((6, 2)))
    assert np.all(np.isfinite(ok.loss)) and np.all(np.isfinite(ok.sq_error))


@pytest.mark.parametrize("where", ["preds", "y"])
def test_ensemble_decomposition_beyond_float64_is_refused_naming_the_argument(where):
    F, y = np.zeros((5, 7, 2)), np.zeros((7, 2))
    if where == "preds":
        F[:] = 1e300
    else:
        y[:] = -1e300
    for func in (metrics.ensemble_decomposition, metrics.ensemble_gain):
        with pytest.raises(ParameterError, match=rf"^{where}=.*too large"):
            func(F, y)


def test_function_dispersion_beyond_float64_is_refused_naming_preds():
    F = np.random.default_rng(5).standard_normal((5, 7, 2)) * 1e200
    for func in (metrics.function_dispersion, metrics.function_summary):
        with pytest.raises(ParameterError, match=r"^preds=.*too large"):
            func(F)
    assert metrics.function_dispersion(np.full((5, 7, 2), 1e300)) == 0.0


@pytest.mark.parametrize("dtype, scale", [(np.float64, 2.0**600), (np.float32, 2.0**100)])
def test_scale_free_function_measures_of_huge_outputs_are_those_of_scaled_ones(dtype, scale):
    rng = np.random.default_rng(6)
    F = rng.standard_normal((30, 7, 2))
    F[10:20] = F[10] + 1e-3 * rng.standard_normal((10, 7, 2))  # one tight cluster
    F = F.astype(dtype)
    big = F * dtype(scale)
    for eps in (0.01, 0.5, 3.0):
        labels, n, share = metrics.function_clusters(F, eps)
        got = metrics.function_clusters(big, eps * scale)
        np.testing.assert_array_equal(got[0], labels)
        assert got[1:] == (n, share)
    for labels in (None, np.arange(30) % 3):
        expected = metrics.polarization(F, labels) * scale
        assert metrics.polarization(big, labels) == pytest.approx(expected, rel=1e-9)
    assert metrics.mean_cka(big) == pytest.approx(metrics.mean_cka(F), rel=1e-9)
    assert metrics.linear_cka(big[0], big[1]) == pytest.approx(
        metrics.linear_cka(F[0], F[1]), rel=1e-9
    )


@pytest.mark.parametrize("scale", [2.0**600, 2.0**-600, 2.0**300])
def test_cka_does_not_depend_on_the_scale_of_each_agent(scale):
    rng = np.random.default_rng(7)
    H = rng.standard_normal((6, 9, 4))
    expected = metrics.mean_cka(H)
    mixed = H.copy()
    mixed[::2] *= scale  # half the agents at another scale: CKA is scale-free per agent
    assert metrics.mean_cka(mixed) == pytest.approx(expected, rel=1e-9)
    assert metrics.linear_cka(mixed[0], mixed[1]) == pytest.approx(
        metrics.linear_cka(H[0], H[1]), rel=1e-9
    )


def test_grid_clusters_of_huge_coordinates_are_those_of_scaled_ones():
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((40, 2))
    Z[10:20] = Z[10] + 1e-3 * rng.standard_normal((10, 2))
    for eps in (0.01, 0.2):
        expected = metrics.grid_clusters(Z, eps)
        got = metrics.grid_clusters(Z * 2.0**700, eps * 2.0**700)
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1:] == expected[1:]


def test_ensemble_accuracy_of_huge_scores_is_that_of_scaled_ones():
    rng = np.random.default_rng(9)
    probs = rng.random((6, 20, 3)) * 0.1
    probs[:, :, 0] += 0.8
    probs[:, :, 2] += 0.9  # class 2 wins on every item, class 0 comes close
    labels = np.full(20, 2)
    assert metrics.ensemble_accuracy(probs, labels) == (1.0, 1.0)
    huge = probs * 2.0**1023  # the sums over agents exceed float64
    assert metrics.ensemble_accuracy(huge, labels) == (1.0, 1.0)


def test_linear_embedding_refuses_a_probe_with_nan_and_documents_its_cap():
    pop = Population(4, (3, 2), seed=1)
    X = np.random.default_rng(0).standard_normal((10, 3))
    assert metrics.linear_embedding(pop, X, max_dim=8).shape == (4, 8)
    for cap in (0, 1, 7):  # q = (3 + 1) * 2 = 8 coordinates: more than the cap
        assert metrics.linear_embedding(pop, X, max_dim=cap) is None
    with pytest.raises(ParameterError, match="^max_dim="):
        metrics.linear_embedding(pop, X, max_dim=-1)
    X[0, 0] = np.nan
    with pytest.raises(ParameterError, match=r"^probe_X=.*NaN or inf"):
        metrics.linear_embedding(pop, X, max_dim=8)
    with pytest.raises(ParameterError, match=r"^probe_X.shape="):
        metrics.linear_embedding(pop, np.ones((10, 4)), max_dim=8)


def test_consensus_time_refuses_a_negative_tolerance():
    series = [0.5, 0.1, 0.0]
    assert metrics.consensus_time(series, 0.2) == 1
    assert metrics.consensus_time(series, 0.0) is None  # nothing is below 0
    with pytest.raises(ParameterError, match="^tol="):
        metrics.consensus_time(series, -1)


def test_modularity_of_huge_edge_weights_is_that_of_unit_weights():
    from scipy import sparse

    rng = np.random.default_rng(10)
    upper = sparse.random(40, 40, density=0.2, random_state=11, format="csr")
    A = (upper + upper.T).tocsr()  # weights in (0, 2): symmetric
    labels = rng.integers(0, 3, 40)
    expected = metrics.modularity(A, labels)
    huge = A * 1e307  # the degrees' sum overflows float64
    assert metrics.modularity(huge, labels) == pytest.approx(expected, rel=1e-12)
    A.data[0] = np.nan
    with pytest.raises(ParameterError, match=r"^graph=.*NaN or inf"):
        metrics.modularity(A, labels)


def test_clusters_link_rows_closer_than_a_tiny_eps():
    """A radius whose square underflows float64 (eps below ~1e-154) linked nothing, not even
    identical rows: such rows and eps are now clustered scaled up by a power of two."""
    assert metrics.function_clusters(np.zeros((3, 2, 1)), 1e-170)[1] == 1
    gap = np.array([[[0.0]], [[0.99999e-160]]])  # 0.99999 eps apart: linked
    assert metrics.function_clusters(gap, 1e-160)[1] == 1
    assert metrics.function_clusters(gap, 0.99998e-160)[1] == 2
    Z = np.array([[0.0], [0.9e-200], [1.5e-200]])  # gaps of 0.9 and 0.6 eps
    assert metrics.grid_clusters(Z, 1e-200)[1] == 1
    assert metrics.grid_clusters(Z, 0.8e-200)[1] == 2
    Z = np.array([[0.0], [0.7e-160], [1.69999e-160]])
    assert metrics.grid_clusters(Z, 1e-160)[1] == 1


def test_clusters_warn_when_eps_is_too_small_beside_the_outputs_spread():
    """An eps 1e316 times below the outputs' largest value cannot be compared in squares of
    either scale: a warning says so instead of silence."""
    with pytest.warns(RuntimeWarning, match="eps=1e-16 is too small"):
        metrics.function_clusters(np.array([[[0.0]], [[0.0]], [[1e300]]]), 1e-16)


@pytest.mark.parametrize("d", [1e-200, 3e-162, 1e-310])
def test_polarization_of_tiny_outputs_is_exact(d):
    """Two equal groups d apart score d / 4, also where d * d underflows (it was 0 at 1e-200,
    5% high at 3e-162)."""
    F = np.array([[[0.0]], [[d]]])
    assert metrics.polarization(F, labels=[0, 1]) == pytest.approx(d / 4, rel=1e-9, abs=0)


def test_polarization_without_labels_of_huge_outputs_is_measured_rescaled():
    """The two poles' principal axis of outputs whose mean overflows raised numpy's
    LinAlgError: now measured rescaled, as with labels."""
    F = np.array([[[1.0e308, 0.0]], [[1.5e308, 1.0]]])
    assert metrics.polarization(F) == pytest.approx(metrics.polarization(F, labels=[0, 1]))
    assert metrics.polarization(F) == pytest.approx(0.5e308 / 4, rel=1e-12)


def test_ensemble_accuracy_with_one_huge_item_keeps_the_other_decisions():
    """Scores whose mean overflows on one item were all scaled to ~1 by 2**-1024, which made
    the other items' scores subnormal and flipped a decision just above 0.5."""
    x = 0.5 + 2.0**-52
    assert metrics.ensemble_accuracy(np.array([[[1e308], [x]]] * 2), [1, 1]) == (1.0, 1.0)
    F = np.array([[[1e308, 0.0], [0.5, x]]] * 2)
    assert metrics.ensemble_accuracy(F, [0, 1]) == (1.0, 1.0)
