"""task='arrays' (your own data) and split_dataset (IID, by community, Dirichlet non-IID)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models import REGISTRY
from simulator import ParameterError
from simulator.tasks import make_task, split_dataset

GOSSIP = REGISTRY["gossip_learning"]


def data(P=4, N=6, d_in=3, d_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((P, N, d_in)), rng.standard_normal((P, N, d_out))


# ---------------------------------------------------------------------------- the task
def test_full_batch_is_every_agents_whole_data_every_step():
    X, Y = data()
    task = make_task("arrays", 4, X=X, Y=Y)
    for step in (0, 1, 7):
        for dtype in (np.float64, np.float32):
            bx, by = task.batch(step, 0, dtype)
            np.testing.assert_array_equal(bx, X.astype(dtype))
            np.testing.assert_array_equal(by, Y.astype(dtype))
    assert task.kind == "regression" and (task.d_in, task.d_out) == (3, 2)


def test_minibatches_draw_rows_of_the_agents_own_data_uniformly():
    P, N = 3, 5
    X = np.arange(P * N, dtype=float).reshape(P, N, 1)  # row id as the input
    task = make_task("arrays", P, X=X, Y=-X, seed=1)
    rows = np.concatenate([task.sample(s, 40)[0][..., 0] for s in range(50)], axis=1)
    for a in range(P):
        assert set(np.unique(rows[a])) <= set(range(a * N, (a + 1) * N))
        counts = np.bincount(rows[a].astype(int) - a * N, minlength=N)
        assert stats.chisquare(counts).pvalue > 1e-3
    X1, Y1 = task.sample(3, 8)
    np.testing.assert_array_equal(Y1, -X1)  # inputs and targets stay paired


def test_integer_labels_make_a_classification_task():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 8, 2)), rng.integers(0, 3, (5, 8))
    task = make_task("arrays", 5, X=X, Y=y)
    assert (task.kind, task.output, task.loss, task.d_out) == (
        "classification",
        "softmax",
        "cross_entropy",
        3,
    )
    _, by = task.batch(0, 0, np.float32)
    np.testing.assert_array_equal(by.argmax(-1), y)
    assert task.probe_labels.shape == task.probe_Y.shape[:2]
    assert make_task("arrays", 5, X=X, Y=y, n_classes=6).d_out == 6


def test_ragged_agents_with_counts_and_the_default_and_given_probes():
    rng = np.random.default_rng(1)
    counts = np.array([1, 4, 2])
    X, Y = rng.standard_normal((7, 2)), rng.standard_normal((7, 1))
    task = make_task("arrays", 3, X=X, Y=Y, counts=counts, n_probe=5)
    first = task.sample(0, 30)[0]
    assert np.all(first[0] == X[0])  # agent 0 holds one row
    assert {tuple(r) for r in first[2]} <= {tuple(r) for r in X[5:7]}
    assert task.probe_X.shape == (5, 2)  # drawn from the pooled data
    assert all(any(np.array_equal(p, x) for x in X) for p in task.probe_X)
    with pytest.raises(ParameterError, match="same number of rows per agent .*1 to 4"):
        task.batch(0, 0, np.float64)
    px, py = rng.standard_normal((9, 2)), rng.standard_normal((9, 1))
    given = make_task("arrays", 3, X=X, Y=Y, counts=counts, probe_X=px, probe_Y=py)
    np.testing.assert_array_equal(given.probe_X, px)
    np.testing.assert_array_equal(given.probe_Y[0], py)


def test_data_from_an_npz_file(tmp_path):
    X, Y = data()
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, Y=Y)
    task = make_task("arrays", 4, path=str(path))
    np.testing.assert_array_equal(task.batch(0, 0, np.float64)[0], X)
    assert task.settings["X"] == "<array float64 (4, 6, 3)>"  # the config describes, not dumps
    np.savez(tmp_path / "bad.npz", X=X, Z=Y)
    with pytest.raises(ParameterError, match="needs 'X' and 'Y'"):
        make_task("arrays", 4, path=str(tmp_path / "bad.npz"))
    with pytest.raises(ParameterError, match="no such file"):
        make_task("arrays", 4, path=str(tmp_path / "none.npz"))
    with pytest.raises(ParameterError, match="either 'path' or the arrays"):
        make_task("arrays", 4, path=str(path), X=X)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"X": None}, "'X' and 'Y' arrays"),
        ({"X": np.zeros((3, 6, 3))}, r"task_params\['X'\].shape=\(3, 6, 3\) .*\(4, n, n\)"),
        ({"X": np.zeros((4, 6))}, r"task_params\['X'\].shape=\(4, 6\)"),
        ({"Y": np.zeros((4, 5, 2))}, r"task_params\['Y'\].shape=\(4, 5, 2\) .*\(4, 6, n\)"),
        ({"X": np.full((4, 6, 3), np.nan)}, r"task_params\['X'\].*72 NaN or inf"),
        ({"Y": np.full((4, 6, 2), np.inf)}, r"task_params\['Y'\].*NaN or inf"),
        ({"X": np.zeros((4, 6, 3), dtype=bool)}, "dtype bool.*real"),
        ({"X": np.array([["a"] * 3] * 6 * 4).reshape(4, 6, 3)}, "dtype <U1"),
        ({"Y": -np.ones((4, 6), dtype=int)}, r"labels in \[-1, -1\]"),
        ({"Y": np.full((4, 6), 2**64 - 1, dtype=np.uint64)}, "labels up to 18446744073709551615"),
        ({"Y": np.zeros((4, 6), dtype=int), "n_classes": 1}, "n_classes=1"),
        ({"n_classes": 3}, "n_classes=3 .*integer labels"),
        ({"counts": [6, 6, 6, 6]}, r"task_params\['X'\].shape=\(4, 6, 3\)"),
        ({"X": np.zeros((24, 3)), "counts": [6, 6, 6, 0]}, r"counts.*integers >= 1"),
        ({"probe_X": np.zeros((2, 3))}, "probe_X, probe_Y.*both or neither"),
        ({"probe_X": np.zeros((2, 4)), "probe_Y": np.zeros((2, 2))}, r"probe_X.shape=\(2, 4\)"),
        ({"probe_X": np.zeros((2, 3)), "probe_Y": np.zeros((3, 2))}, r"probe_Y.shape=\(3, 2\)"),
        ({"X": [[[1.0]], [[2.0], [3.0]]]}, r"task_params\['X'\].*unequal lengths"),  # ragged
        ({"Y": [[[1.0]], [[2.0], [3.0]]]}, r"task_params\['Y'\].*unequal lengths"),
        ({"probe_X": [[1.0], [2.0, 3.0]], "probe_Y": np.zeros((2, 2))}, "probe_X.*unequal"),
    ],
)
def test_bad_data_is_refused_with_what_is_allowed(change, match):
    X, Y = data()
    params = {"X": X, "Y": Y, **change}
    with pytest.raises(ParameterError, match=match):
        make_task("arrays", 4, **params)


# ---------------------------------------------------------------------------- in a model
def test_full_batch_gradient_descent_reaches_each_agents_least_squares_fit():
    rng = np.random.default_rng(3)
    P, N = 3, 20
    X = rng.standard_normal((P, N, 2))
    Y = X @ rng.standard_normal((P, 2, 1)) + 0.3 * rng.standard_normal((P, N, 1))
    m = GOSSIP(
        rng=0,
        n_agents=P,
        graph="complete",
        task="arrays",
        task_params={"X": X, "Y": Y},
        batch_size=0,
        hidden=(),
        lr=0.2,
        mixing_rate=0.0,
        dtype="float64",
        measures="fast",
    )
    m.run_for(600)
    for a in range(P):  # least squares with an intercept (the layer's bias)
        A = np.concatenate([X[a], np.ones((N, 1))], axis=1)
        coef = np.linalg.lstsq(A, Y[a], rcond=None)[0]
        W, b = m.agent_list[a].network.layers[0]
        np.testing.assert_allclose(np.concatenate([W.ravel(), b.ravel()]), coef.ravel(), atol=1e-8)


def test_batch_size_zero_needs_the_arrays_task():
    with pytest.raises(ParameterError, match="batch_size=0 .*task='arrays'"):
        GOSSIP(rng=0, n_agents=8, batch_size=0, measures="fast")


# ---------------------------------------------------------------------------- splits
def labelled(n=600, k=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return np.stack([np.arange(n), y], axis=1).astype(float), y


def test_iid_split_uses_every_sample_once_in_near_equal_parts():
    X, y = labelled(103)
    s = split_dataset(X, y, 10, how="iid", seed=1)
    np.testing.assert_array_equal(np.sort(s.indices), np.arange(103))
    np.testing.assert_array_equal(s.X, X[s.indices])
    np.testing.assert_array_equal(s.y, y[s.indices])
    assert s.counts.sum() == 103 and s.counts.max() - s.counts.min() <= 1
    again = split_dataset(X, y, 10, how="iid", seed=1)
    np.testing.assert_array_equal(again.indices, s.indices)
    task = make_task("arrays", 10, **s.task_params())
    assert task.kind == "classification" and task.counts.tolist() == s.counts.tolist()


def test_dirichlet_split_gives_each_class_by_its_drawn_shares():
    X, y = labelled(5000, k=4)
    s = split_dataset(X, y, 8, how="dirichlet", alpha=0.3, seed=2, min_size=0)
    np.testing.assert_array_equal(np.sort(s.indices), np.arange(5000))
    owner = np.repeat(np.arange(8), s.counts)
    for k in range(4):
        n_k = np.sum(y == k)
        got = np.bincount(owner[s.y == k], minlength=8)
        # floor(cumsum(p) n_k) differences: each agent within one sample of p_k n_k
        assert np.abs(got - s.proportions[k] * n_k).max() <= 1.0 + 1e-9
    assert s.proportions.shape == (4, 8)
    np.testing.assert_allclose(s.proportions.sum(axis=1), 1.0)


def test_dirichlet_shares_have_the_dirichlet_variance_and_alpha_sets_the_skew():
    X, y = labelled(4000, k=200, seed=1)
    P, alpha = 5, 0.5
    s = split_dataset(X, y, P, how="dirichlet", alpha=alpha, seed=3, min_size=0)
    shares = s.proportions.ravel()  # 1000 draws of Beta(alpha, (P - 1) alpha)
    assert stats.kstest(shares, stats.beta(alpha, (P - 1) * alpha).cdf).pvalue > 1e-3
    skewed = split_dataset(X, y, P, how="dirichlet", alpha=0.05, seed=3, min_size=0)
    flat = split_dataset(X, y, P, how="dirichlet", alpha=100.0, seed=3, min_size=0)
    assert skewed.proportions.max(axis=1).mean() > 0.8 > 0.3 > flat.proportions.max(axis=1).mean()


def test_dirichlet_min_size_redraws_until_every_agent_has_enough():
    X, y = labelled(300, k=3)
    s = split_dataset(X, y, 10, how="dirichlet", alpha=0.5, seed=0, min_size=10)
    assert s.counts.min() >= 10
    with pytest.raises(ParameterError, match="min_size=30"):
        split_dataset(X, y, 10, how="dirichlet", alpha=0.01, seed=0, min_size=30)


def test_community_split_gives_each_community_its_classes():
    X, y = labelled(800, k=4)
    comm = np.repeat([0, 1], 5)
    s = split_dataset(X, y, 10, how="community", communities=comm, seed=0)
    owner = np.repeat(np.arange(10), s.counts)
    np.testing.assert_array_equal(np.sort(s.indices), np.arange(800))
    for a in range(10):  # community c holds the classes k with k mod 2 == c
        assert set(s.y[owner == a]) == {k for k in range(4) if k % 2 == comm[a]}
    many = split_dataset(X, y, 12, how="community", communities=np.arange(12) % 6, seed=0)
    owner = np.repeat(np.arange(12), many.counts)
    assert all(set(many.y[owner == a]) == {(a % 6) % 4} for a in range(12))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"how": "random"}, "how='random'"),
        ({"n_agents": 0}, "n_agents=0"),
        ({"n_agents": 1000}, "n_agents=1000"),
        ({"how": "dirichlet", "alpha": 0.0}, "alpha=0.0"),
        ({"how": "community"}, "communities=None"),
        ({"how": "community", "communities": [0, 1]}, r"communities=\[0, 1\]"),
        ({"y": np.linspace(0, 1, 600)}, "integer labels"),
        ({"X": np.zeros((5, 2))}, r"X.shape=\(5, 2\)"),
    ],
)
def test_bad_split_requests_are_refused_clearly(kwargs, match):
    X, y = labelled()
    args = {"X": X, "y": y, "n_agents": 6, **kwargs}
    with pytest.raises(ParameterError, match=match):
        split_dataset(**args)


@pytest.mark.parametrize("path", [0, 1.5, b"mine.npz", ["mine.npz"]])
def test_a_path_that_is_not_a_path_is_refused_naming_it(path):
    with pytest.raises(ParameterError, match=r"^task_params\['path'\]=.* str or os\.PathLike"):
        make_task("arrays", 4, path=path)


@pytest.mark.parametrize("n_classes", [10**9, 10**30, 10**400], ids=["1e9", "1e30", "1e400"])
def test_more_classes_than_memory_holds_are_refused(n_classes):
    X, _ = data()
    labels = np.zeros((4, 6), dtype=np.int64)
    with pytest.raises(ParameterError, match=r"^n_classes=1000.* GiB.*this machine's"):
        make_task("arrays", 4, X=X, Y=labels, n_classes=n_classes)
