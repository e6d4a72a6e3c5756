"""Environments: seeded per-agent data streams, non-IID splits, teachers and drift."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from simulator import ParameterError, Population
from simulator.tasks import (
    TASKS,
    GaussianMixture,
    LinearlySeparable,
    TeacherRegression,
    make_task,
    task_params,
)

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False
needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn not installed")
NAMES = [pytest.param(n, marks=needs_sklearn) if n == "digits" else n for n in TASKS]


def build(name: str, n_agents: int, seed: int = 0, **params):
    """make_task, with a small data set of one's own for task='arrays'."""
    if name == "arrays" and "X" not in params:
        rng = np.random.default_rng(100)
        params = {
            "X": rng.standard_normal((n_agents, 7, 3)),
            "Y": rng.standard_normal((n_agents, 7, 2)),
        }
    return make_task(name, n_agents, seed=seed, **params)


# ---------------------------------------------------------------------------- every task
@pytest.mark.parametrize("name", NAMES)
def test_batches_are_a_pure_function_of_seed_and_step(name):
    task = build(name, 6, seed=3)
    later = task.sample(9, 5)
    X, Y = task.sample(4, 5)
    fresh = build(name, 6, seed=3)
    X2, Y2 = fresh.sample(4, 5)  # another object, another call order: same batch
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    assert not np.array_equal(X, later[0])
    assert not np.array_equal(X, build(name, 6, seed=4).sample(4, 5)[0])


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_declared_model(name):
    task = build(name, 7, seed=0)
    X, Y = task.sample(0, 3)
    assert X.shape == (7, 3, task.d_in) and Y.shape == (7, 3, task.d_out)
    assert X.dtype == Y.dtype == np.float64
    X32, Y32 = task.sample(0, 3, dtype=np.float32)
    assert X32.dtype == Y32.dtype == np.float32 and X32.shape == X.shape
    n_probe = task.probe_X.shape[0]
    assert task.probe_X.shape == (n_probe, task.d_in) and task.probe_X.dtype == np.float64
    assert task.probe_Y.shape in ((1, n_probe, task.d_out), (7, n_probe, task.d_out))
    assert task.kind in ("regression", "classification", "generative")
    if task.kind == "classification":
        assert task.probe_labels.dtype == np.int64
        assert task.probe_labels.shape == task.probe_Y.shape[:2]
    else:
        assert task.probe_labels is None
    Population(7, layers=(task.d_in, 4, task.d_out), output=task.output, loss=task.loss)


def test_errors_name_the_parameter_and_what_is_allowed():
    with pytest.raises(ParameterError, match=r"task='nope' .*'teacher', 'mixture'"):
        make_task("nope", 4, seed=0)
    with pytest.raises(ParameterError, match=r"'hidden'.*allowed: d_in, d_out, teacher_hidden"):
        make_task("teacher", 4, seed=0, hidden=3)
    with pytest.raises(ParameterError, match="diversity=-1"):
        make_task("teacher", 4, seed=0, diversity=-1)
    with pytest.raises(ParameterError, match="heterogeneity='community' .*communities"):
        make_task("teacher", 4, seed=0, heterogeneity="community")
    with pytest.raises(ParameterError, match=r"classes_per_agent=5 .*\[1, 4\]"):
        make_task("mixture", 4, seed=0, classes_per_agent=5)
    with pytest.raises(ParameterError, match=r"communities=.*shape \(4,\)"):
        make_task("mixture", 4, seed=0, communities=np.zeros(3, dtype=int))
    with pytest.raises(ParameterError, match="margin=-0.1"):
        make_task("separable", 4, seed=0, margin=-0.1)
    with pytest.raises(ParameterError, match="step=-1"):
        make_task("mixture", 4, seed=0).sample(-1, 2)
    with pytest.raises(ParameterError, match="batch=0"):
        make_task("mixture", 4, seed=0).sample(0, 0)
    assert set(task_params("mixture")) == {
        "n_classes",
        "d_in",
        "classes_per_agent",
        "separation",
        "n_probe",
    }


# ---------------------------------------------------------------------------- teacher
def test_teacher_targets_match_the_teacher_and_have_unit_scale():
    task = TeacherRegression(50, seed=1)
    X, Y = task.sample(0, 200)
    np.testing.assert_array_equal(Y, task.teacher_outputs(X))
    assert 0.7 < Y.var() < 1.4
    assert np.abs(Y).max() > 0.5


def test_teacher_noise_is_added_with_the_given_scale():
    clean = TeacherRegression(40, seed=2)
    noisy = TeacherRegression(40, noise=0.5, seed=2)
    X, Y = noisy.sample(3, 100)
    residual = Y - clean.teacher_outputs(X)
    assert residual.std() == pytest.approx(0.5, rel=0.05)
    assert abs(residual.mean()) < 0.02


def test_shared_teacher_gives_every_agent_the_same_targets():
    task = TeacherRegression(8, heterogeneity="shared", seed=0)
    x = np.random.default_rng(0).standard_normal((10, 8))
    Y = task.teacher_outputs(x)
    np.testing.assert_array_equal(Y, np.broadcast_to(Y[0], Y.shape))
    assert task.probe_Y.shape == (1, 256, 1)


def test_agent_teachers_differ_and_community_teachers_agree_within_a_community():
    comm = np.array([0, 0, 1, 1, 2, 2])
    agent = TeacherRegression(6, heterogeneity="agent", seed=0)
    community = TeacherRegression(6, heterogeneity="community", communities=comm, seed=0)
    for task in (agent, community):
        assert task.probe_Y.shape == (6, 256, 1)
    pa, pc = agent.probe_Y[:, :, 0], community.probe_Y[:, :, 0]
    assert all(not np.allclose(pa[i], pa[j]) for i in range(6) for j in range(i))
    for i in range(6):
        for j in range(6):
            assert np.array_equal(pc[i], pc[j]) == (comm[i] == comm[j])
    x = np.random.default_rng(1).standard_normal((5, 8))
    np.testing.assert_array_equal(community.teacher_outputs(x)[0], community.teacher_outputs(x)[1])


def test_diversity_controls_how_far_agent_teachers_stray():
    near = TeacherRegression(20, heterogeneity="agent", diversity=0.1, seed=0).probe_Y
    far = TeacherRegression(20, heterogeneity="agent", diversity=1.0, seed=0).probe_Y
    base = TeacherRegression(20, seed=0).probe_Y
    assert np.mean((near - base) ** 2) < 0.1 * np.mean((far - base) ** 2)
    same = TeacherRegression(20, heterogeneity="agent", diversity=0.0, seed=0).probe_Y
    # equal up to float32 rounding (the teacher's hidden layer is computed in float32)
    np.testing.assert_allclose(same, np.broadcast_to(base, same.shape), atol=1e-5)


@pytest.mark.parametrize("heterogeneity", ["shared", "agent"])
def test_drift_changes_targets_at_drift_step_and_not_before(heterogeneity):
    task = TeacherRegression(5, heterogeneity=heterogeneity, drift_step=10, seed=0)
    before, at, after = task.probe_Y_at(0), task.probe_Y_at(10), task.probe_Y_at(50)
    np.testing.assert_array_equal(task.probe_Y_at(9), before)
    np.testing.assert_array_equal(at, after)
    assert np.mean((at - before) ** 2) > 0.1
    X, Y = task.sample(9, 20)
    np.testing.assert_array_equal(Y, task.teacher_outputs(X, step=0))
    X, Y = task.sample(10, 20)
    np.testing.assert_array_equal(Y, task.teacher_outputs(X, step=10))
    assert not np.allclose(Y, task.teacher_outputs(X, step=0))
    np.testing.assert_array_equal(task.probe_Y, at)  # probe_Y follows the last sampled step


def test_zero_drift_scale_changes_nothing():
    task = TeacherRegression(3, drift_step=5, drift_scale=0.0, seed=0)
    np.testing.assert_allclose(task.probe_Y_at(5), task.probe_Y_at(0), atol=1e-6)


def test_population_learns_the_teacher():
    task = TeacherRegression(4, seed=0)
    pop = Population(4, layers=(8, 16, 1), lr=0.05, seed=0)
    first = pop.loss(task.probe_X, task.probe_Y[0])
    for step in range(300):
        pop.train_step(*task.sample(step, 32))
    last = pop.loss(task.probe_X, task.probe_Y[0])
    assert np.all(last < 0.5 * first)


def test_a_linear_teacher_is_affine_in_its_inputs_with_unit_scale():
    task = TeacherRegression(30, d_in=3, d_out=2, teacher_hidden=0, seed=1)
    X, Y = task.sample(4, 200)
    A = np.concatenate([X.reshape(-1, 3), np.ones((len(X) * 200, 1))], axis=1)
    coef, *_ = np.linalg.lstsq(A, Y.reshape(-1, 2), rcond=None)
    assert np.abs(A @ coef - Y.reshape(-1, 2)).max() < 1e-5  # float32 sums, nothing else
    W1, b1, _ = task._base
    np.testing.assert_allclose(coef, np.vstack([W1, b1]) * task._scale, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(Y.reshape(-1, 2).std(0) - 1) < 0.1)
    with pytest.raises(ParameterError, match=r"teacher_hidden=-1"):
        TeacherRegression(3, teacher_hidden=-1)


@pytest.mark.parametrize("heterogeneity", ["shared", "agent"])
def test_linear_agents_learn_a_linear_teacher_exactly(heterogeneity):
    """A linear teacher is realizable by linear agents: SGD on noiseless targets drives every
    agent to its own teacher's weights (the unique minimizer), so the loss goes to zero."""
    task = TeacherRegression(
        4, d_in=2, d_out=1, teacher_hidden=0, heterogeneity=heterogeneity, seed=3
    )
    pop = Population(4, layers=(2, 1), lr=0.1, seed=0)
    for step in range(600):
        pop.train_step(*task.sample(step, 32))
    for a in range(4):
        t = task._teacher_of[a]
        W1, b1, _ = task._base  # the base teacher, perturbed below for agents of their own
        if t >= 0:
            W1 = W1 + np.float32(task.diversity) * task._delta[0][t]
            b1 = b1 + np.float32(task.diversity) * task._delta[1][t]
        net = pop.agent(a)
        np.testing.assert_allclose(net.weights[0], W1 * task._scale, atol=1e-4)
        np.testing.assert_allclose(net.biases[0], b1 * task._scale, atol=1e-4)
    assert np.all(pop.loss(task.probe_X, task.probe_Y_at(600)) < 1e-8)


def test_large_population_samples_are_vectorized():
    X, Y = TeacherRegression(100_000, seed=0).sample(0, 32)
    assert Y.shape == (100_000, 32, 1) and np.isfinite(Y).all()
    X, Y = GaussianMixture(100_000, classes_per_agent=2, seed=0).sample(0, 32)
    assert X.shape == (100_000, 32, 2) and Y.shape == (100_000, 32, 4)


# ---------------------------------------------------------------------------- classification
def classes_seen(task, steps: int = 3, batch: int = 64) -> list[set]:
    labels = np.concatenate([task.sample(s, batch)[1].argmax(-1) for s in range(steps)], axis=1)
    return [set(row) for row in labels.tolist()]


def test_non_iid_agents_see_only_their_classes():
    task = GaussianMixture(6, n_classes=4, classes_per_agent=2, seed=0)
    expected = [{i % 4, (i + 1) % 4} for i in range(6)]
    assert classes_seen(task) == expected
    np.testing.assert_array_equal(task.agent_classes[5], [1, 2])


def test_non_iid_classes_follow_communities():
    comm = np.array([0, 0, 2, 2, 1])
    task = GaussianMixture(5, n_classes=3, classes_per_agent=1, communities=comm, seed=0)
    assert classes_seen(task) == [{0}, {0}, {2}, {2}, {1}]


def test_iid_agents_see_every_class():
    assert all(s == {0, 1, 2, 3} for s in classes_seen(GaussianMixture(5, seed=0)))


@pytest.mark.parametrize(("n_classes", "n_probe"), [(4, 400), (3, 400), (7, 50)])
def test_mixture_probe_is_balanced_one_hot_and_iid(n_classes, n_probe):
    task = GaussianMixture(3, n_classes=n_classes, classes_per_agent=1, n_probe=n_probe, seed=0)
    labels = task.probe_labels[0]
    counts = np.bincount(labels, minlength=n_classes)
    assert np.all(counts == counts[0]) and counts[0] == n_probe // n_classes
    np.testing.assert_array_equal(task.probe_Y[0].argmax(1), labels)
    np.testing.assert_array_equal(task.probe_Y[0].sum(1), 1.0)


@pytest.mark.parametrize(("d_in", "n_classes"), [(2, 4), (5, 3), (1, 3)])
def test_mixture_classes_are_unit_gaussians_around_their_means(d_in, n_classes):
    task = GaussianMixture(200, n_classes=n_classes, d_in=d_in, separation=3.0, seed=0)
    X, Y = task.sample(0, 100)
    labels = Y.argmax(-1)
    resid = X - task.means[labels]
    assert np.abs(resid.mean((0, 1))).max() < 4 / np.sqrt(200 * 100)  # 4 standard errors
    np.testing.assert_allclose(resid.reshape(-1, d_in).var(0), 1.0, rtol=0.03)
    if d_in > 1:
        np.testing.assert_allclose(np.linalg.norm(task.means, axis=1), 3.0)
    if d_in >= n_classes:  # a regular simplex: all pairwise distances equal
        dist = np.linalg.norm(task.means[:, None] - task.means[None], axis=-1)
        off = dist[~np.eye(n_classes, dtype=bool)]
        np.testing.assert_allclose(off, off[0])


def test_separable_labels_are_split_by_the_true_hyperplane_with_margin():
    task = LinearlySeparable(50, d_in=3, margin=0.2, seed=1)
    X, Y = task.sample(0, 100)
    score = X @ task.normal + task.offset
    np.testing.assert_array_equal(Y[..., 0], (score > 0).astype(float))
    assert np.abs(score).min() >= 0.2 - 1e-12
    assert 0.2 < Y.mean() < 0.8
    resid = X - (X @ task.normal)[..., None] * task.normal  # orthogonal part is N(0, I - ww^T)
    assert np.abs(resid.mean((0, 1))).max() < 0.03
    probe_score = task.probe_X @ task.normal + task.offset
    np.testing.assert_array_equal(task.probe_labels[0], (probe_score > 0).astype(np.int64))


def test_perceptron_population_learns_the_separable_task():
    task = LinearlySeparable(3, margin=0.3, seed=0)
    pop = Population(3, layers=(2, 1), output="step", loss="mse", lr=0.5, dtype="float64")
    for step in range(300):
        pop.train_step(*task.sample(step, 16))
    accuracy = (pop.predict(task.probe_X)[..., 0] == task.probe_Y[0, :, 0]).mean(axis=1)
    assert np.all(accuracy > 0.97)


@needs_sklearn
def test_digits_probe_is_held_out_balanced_and_agents_keep_their_classes():
    task = make_task("digits", 4, seed=0, classes_per_agent=3)
    assert task.d_in == 64 and task.d_out == 10
    assert np.all(np.bincount(task.probe_labels[0]) == 36)
    X = task.sample(0, 500)[0]
    assert X.min() >= 0 and X.max() <= 1
    assert classes_seen(task) == [{(i + j) % 10 for j in range(3)} for i in range(4)]
    probe = {row.tobytes() for row in task.probe_X}
    assert not any(row.tobytes() in probe for row in X.reshape(-1, 64))


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ParameterError, match=r"pip install neuropop\[digits\]"):
        make_task("digits", 2, seed=0)


# ---------------------------------------------------------------------------- limits
HUGE_SIZES = [
    ("teacher", "d_in"),
    ("teacher", "d_out"),
    ("teacher", "teacher_hidden"),
    ("teacher", "n_probe"),
    ("mixture", "n_classes"),
    ("mixture", "d_in"),
    ("mixture", "n_probe"),
    ("separable", "d_in"),
    ("separable", "n_probe"),
    ("ring", "n_probe"),
]


@pytest.mark.parametrize("size", [10**9, 10**30, 10**400], ids=["1e9", "1e30", "1e400"])
@pytest.mark.parametrize(("name", "param"), HUGE_SIZES)
def test_sizes_beyond_the_machines_memory_are_refused_before_allocating(name, param, size):
    with pytest.raises(ParameterError, match=rf"^{param}=1000.* GiB.*this machine's"):
        make_task(name, 4, seed=0, **{param: size})


def test_the_size_limit_is_this_machines_memory(monkeypatch):
    make_task("teacher", 4, seed=0, d_in=100, teacher_hidden=100)
    monkeypatch.setattr("simulator.tasks.base.machine_memory", lambda: 2**20)
    with pytest.raises(ParameterError, match=r"^d_in=100 .*this machine's 0\.0 GiB"):
        make_task("teacher", 4, seed=0, d_in=100, teacher_hidden=100)


def test_parameters_that_overflow_the_data_are_refused_naming_them():
    with pytest.raises(ParameterError, match=r"^diversity=1e\+300 .*<= .*float32"):
        make_task("teacher", 4, seed=0, heterogeneity="agent", diversity=1e300)
    spread = make_task("teacher", 4, seed=0, heterogeneity="agent", diversity=1e20)
    assert np.isfinite(spread.batch(0, 3, np.float64)[1]).all()
    with pytest.raises(ParameterError, match=r"^diversity=1e\+20 .*<= .*float32 data"):
        spread.batch(0, 3, np.float32)
    with pytest.raises(ParameterError, match=r"^separation=1e\+300 .*<= "):
        make_task("mixture", 4, seed=0, separation=1e300)
    noisy = make_task("teacher", 4, seed=0, noise=1e30)  # finite in float64, not squared in float32
    assert np.isfinite(noisy.batch(0, 3, np.float64)[1]).all()
    with pytest.raises(ParameterError, match=r"^noise=1e\+30 .*<= .*float32"):
        noisy.batch(0, 3, np.float32)
    with pytest.raises(ParameterError, match=r"^noise=1e\+30 .*float32"):
        noisy.sample(0, 3, np.float32)
    make_task("teacher", 4, seed=0, heterogeneity="agent", diversity=1e6, noise=1e6).batch(
        0, 3, np.float32
    )  # large but harmless values stay allowed
    make_task("mixture", 4, seed=0, separation=1e6).batch(0, 3, np.float32)


@pytest.mark.parametrize(
    ("task", "params", "param"),
    [
        ("teacher", {"heterogeneity": "agent", "diversity": 1e300}, "diversity"),
        ("mixture", {"separation": 1e300}, "separation"),
        ("teacher", {"noise": 1e30}, "noise"),
    ],
)
def test_models_refuse_task_parameters_that_overflow_their_data(task, params, param):
    from models import REGISTRY

    with pytest.raises(ParameterError, match=rf"^{param}="):
        REGISTRY["gossip_learning"](rng=0, n_agents=8, task=task, task_params=params)
