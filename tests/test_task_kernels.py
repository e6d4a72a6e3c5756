"""Minibatches drawn in kernels: pure functions of (seed, step, agent), thread-invariant, in the
population's dtype, into buffers; each task's distribution checked in float32 as in float64."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from simulator import ParameterError
from simulator.tasks import TASKS, LinearlySeparable, RingMixture, TeacherRegression, make_task

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False
NAMES = list(TASKS)
VARIANTS = [
    ("teacher", {"heterogeneity": "agent", "noise": 0.3}),
    ("teacher", {"drift_step": 2}),
    ("mixture", {"classes_per_agent": 2}),
]


def build(name: str, n_agents: int, seed: int = 0, **params):
    if name == "digits" and not HAVE_SKLEARN:
        pytest.skip("scikit-learn not installed")
    if name == "arrays" and "X" not in params:
        rng = np.random.default_rng(7)
        params = {
            "X": rng.standard_normal((n_agents, 11, 3)),
            "Y": rng.integers(0, 4, (n_agents, 11)),
        }
    return make_task(name, n_agents, seed=seed, **params)


@pytest.mark.parametrize(("name", "params"), [(n, {}) for n in NAMES] + VARIANTS)
def test_batches_are_bit_identical_on_one_and_two_threads(name, params):
    task = build(name, 301, seed=5, **params)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [task.sample(3, 9, dtype) for dtype in (np.float64, np.float32)]
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = [task.sample(3, 9, dtype) for dtype in (np.float64, np.float32)]
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_a_larger_batch_extends_a_smaller_one_and_agents_do_not_depend_on_each_other(name):
    task = build(name, 6, seed=1)
    for dtype in (np.float64, np.float32):
        X5, Y5 = task.sample(2, 5, dtype)
        X9, Y9 = task.sample(2, 9, dtype)
        np.testing.assert_array_equal(X9[:, :5], X5)
        np.testing.assert_array_equal(Y9[:, :5], Y5)
    # agent i's batch is the same in a population of 6 and of 9 (keyed by the agent, not P)
    if name not in ("arrays",):
        bigger = build(name, 9, seed=1)
        np.testing.assert_array_equal(bigger.sample(2, 5)[0][:6], task.sample(2, 5)[0])


@pytest.mark.parametrize("name", NAMES)
def test_sample_into_and_the_reused_buffers_give_the_same_batch(name):
    task = build(name, 5, seed=2)
    X, Y = task.sample(4, 6, np.float32)
    bx, by = np.empty_like(X), np.empty_like(Y)
    assert task.sample_into(4, bx, by)[0] is bx
    np.testing.assert_array_equal(bx, X)
    np.testing.assert_array_equal(by, Y)
    first = task.batch(4, 6, np.float32)
    np.testing.assert_array_equal(first[0], X)
    again = task.batch(5, 6, np.float32)
    assert again[0] is first[0]  # the same buffer, refilled
    np.testing.assert_array_equal(again[0], task.sample(5, 6, np.float32)[0])


def test_bad_buffers_and_batch_size_zero_are_refused_clearly():
    task = TeacherRegression(4, seed=0)
    with pytest.raises(ParameterError, match=r"\(4, B, 8\) and \(4, B, 1\)"):
        task.sample_into(0, np.empty((4, 3, 7)), np.empty((4, 3, 1)))
    with pytest.raises(ParameterError, match="both float32 or both float64"):
        task.sample_into(0, np.empty((4, 3, 8)), np.empty((4, 3, 1), np.float32))
    with pytest.raises(ParameterError, match="C-contiguous"):
        task.sample_into(0, np.empty((4, 3, 16))[:, :, ::2], np.empty((4, 3, 1)))
    with pytest.raises(ParameterError, match="dtype=.*float32 or float64"):
        task.sample(0, 3, dtype=np.int32)
    with pytest.raises(ParameterError, match="batch_size=0 .*task='arrays'"):
        task.batch(0, 0, np.float32)


# ---------------------------------------------------------------------------- distributions
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_teacher_targets_are_the_teacher_of_the_stored_inputs(dtype):
    task = TeacherRegression(30, heterogeneity="agent", seed=3)
    X, Y = task.sample(1, 40, dtype)
    np.testing.assert_array_equal(Y, task.teacher_outputs(X).astype(dtype))
    assert stats.kstest(X.ravel().astype(float), "norm").pvalue > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_teacher_noise_is_normal_with_the_given_scale(dtype):
    task = TeacherRegression(200, noise=0.5, seed=4)
    X, Y = task.sample(2, 50, dtype)
    resid = (Y.astype(float) - task.teacher_outputs(X)).ravel() / 0.5
    assert stats.kstest(resid, "norm").pvalue > 1e-3


def test_teacher_forward_matches_a_numpy_oracle():
    task = TeacherRegression(3, d_in=5, d_out=2, teacher_hidden=7, seed=1)
    X = np.random.default_rng(0).standard_normal((3, 10, 5))
    W1, b1, W2T = task._base  # the base teacher, float32
    h = np.tanh(X.astype(np.float32).astype(float) @ W1 + b1)
    np.testing.assert_allclose(task.teacher_outputs(X), (h @ W2T.T) * task._scale, rtol=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ring_points_sit_on_the_modes_with_the_mode_std(dtype):
    task = RingMixture(100, n_modes=5, mode_std=0.1, seed=0)
    _, Y = task.sample(0, 200, dtype)
    pts = Y.reshape(-1, 2).astype(float)
    d = np.linalg.norm(pts[:, None] - task.centers[None], axis=-1)
    mode = d.argmin(1)
    counts = np.bincount(mode, minlength=5)
    assert stats.chisquare(counts).pvalue > 1e-3  # modes uniform
    resid = (pts - task.centers[mode]).ravel() / 0.1
    assert stats.kstest(resid, "norm").pvalue > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_separable_inputs_are_truncated_normals_outside_the_margin(dtype):
    task = LinearlySeparable(100, d_in=3, margin=0.3, seed=2)
    X, Y = task.sample(1, 100, dtype)
    s = X.astype(float) @ task.normal
    assert np.abs(s + task.offset).min() >= 0.3 - 1e-6
    np.testing.assert_array_equal(Y[..., 0], (s + task.offset > 0).astype(dtype))
    # s follows N(0, 1) conditioned on avoiding the band: compare the CDFs
    lo, hi = -task.offset - 0.3, -task.offset + 0.3
    mass = stats.norm.cdf(lo) + stats.norm.sf(hi)

    def truncated_cdf(x):
        x = np.asarray(x)
        below = stats.norm.cdf(np.minimum(x, lo))
        above = np.clip(stats.norm.cdf(x) - stats.norm.cdf(hi), 0, None)
        return (below + above) / mass

    assert stats.kstest(s.ravel(), truncated_cdf).pvalue > 1e-3
