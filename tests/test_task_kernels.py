"""Minibatches drawn in kernels: pure functions of (seed, step, agent), thread-invariant, in the
population's dtype, into buffers; each task's distribution checked in float32 as in float64."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from simulator import ParameterError
from simulator.kernels import activations as A
from simulator.kernels import data as D
from simulator.kernels import random as R
from simulator.tasks import TASKS, LinearlySeparable, RingMixture, TeacherRegression, make_task

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False
KEY = (12345, 678)
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


# ---------------------------------------------------------------------------- teacher, bit for bit
# The teacher's kernel is compared with a slow NumPy copy of its arithmetic, operation by
# operation in float32 (no fused multiply-adds), and its normals with box_muller32 applied
# counter by counter to the raw Philox words: any change of a bit fails these tests.
def _tanh32_oracle(x):
    """fast_tanh (float32) in NumPy, in the kernel's order of operations."""
    a1, a3, a5, a7, a9, a11, a13 = (np.float32(c) for c in A._A)
    b0, b2, b4, b6 = (np.float32(c) for c in A._B)
    hi, one = np.float32(A._TANH32_CLAMP), np.float32(1.0)
    x = np.minimum(np.maximum(x, -hi), hi)
    x2 = x * x
    p = x2 * a13 + a11
    for c in (a9, a7, a5, a3, a1):
        p = x2 * p + c
    p = x * p
    q = x2 * b6 + b4
    for c in (b2, b0):
        q = x2 * q + c
    return np.minimum(np.maximum(p / q, -one), one)


@numba.njit
def _fast_tanh_all(z):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        out[i] = A.fast_tanh(z[i])
    return out


def test_the_oracle_tanh_is_fast_tanh_bit_for_bit():
    z = np.random.default_rng(3).standard_normal(100_000).astype(np.float32) * 4
    edges = [0.0, -0.0, 1e-30, -1e-30, 1e-3, 7.9, -7.9, 8.0, -8.0, 1e30, -1e30, np.inf, -np.inf]
    z = np.concatenate([z, np.float32(edges), np.float32(A._TANH32_CLAMP) * np.float32([1, -1])])
    assert _fast_tanh_all(z).tobytes() == _tanh32_oracle(z).tobytes()


def _teacher_oracle(x, W1, b1, W2T, scale):
    """Noiseless outputs float64 (R, d_out) of rows x (R, d_in): hidden sums in input order,
    output sums in hidden order, all float32; the last product in float64. A linear teacher
    (W2T of width 0): the first layer's sums are the outputs."""
    x = x.astype(np.float32)
    z = np.repeat(b1[None], len(x), 0)
    for i in range(W1.shape[0]):
        z = z + W1[i][None] * x[:, i : i + 1]
    if W2T.shape[1] == 0:
        return z.astype(np.float64) * scale
    t = _tanh32_oracle(z)
    acc = np.zeros((len(x), W2T.shape[0]), np.float32)
    for j in range(W1.shape[1]):
        acc = acc + W2T[:, j][None] * t[:, j : j + 1]
    return acc.astype(np.float64) * scale


@numba.njit
def _box_muller32_pairs(words, out):
    for i in range(out.shape[0] // 2):
        out[2 * i], out[2 * i + 1] = R.box_muller32(np.uint64(words[2 * i]), words[2 * i + 1])


def _normals32_oracle(key, agent, step, purpose, n):
    """float32 normals: counter i's words (Philox) -> box_muller32 of words (0, 1) and (2, 3)."""
    counters = np.zeros(((n + 3) // 4, 4), np.uint32)
    counters[:, 0] = np.arange(len(counters))
    counters[:, 1:] = agent, step, purpose
    words = R.philox_block(counters, key).ravel().astype(np.uint64)
    out = np.empty(len(words), np.float32)
    _box_muller32_pairs(words, out)
    return out[:n]


def test_float32_normals_are_box_muller32_of_the_philox_words_bit_for_bit():
    for n in [*range(1, 41), 255, 256, 800]:
        got = R.fill_normals(np.empty((3, n), np.float32), KEY, 7, 1, agent0=5)
        for a in range(3):
            want = _normals32_oracle(KEY, 5 + a, 7, 1, n)
            assert got[a].tobytes() == want.tobytes(), (n, a)


def _teacher_sample_oracle(task, step, X, dtype):
    """Y of TeacherRegression.sample from its X, by the NumPy oracle."""
    P, B, _ = X.shape
    W1, b1, W2T, D1, Db1, D2T = task._weights(step)
    div = np.float32(task.diversity)
    Y = np.empty((P, B, task.d_out), dtype)
    for a in range(P):
        t = task._teacher_of[a]
        w = (W1, b1, W2T) if t < 0 else (W1 + div * D1[t], b1 + div * Db1[t], W2T + div * D2T[t])
        Y[a] = _teacher_oracle(X[a], *w, task._scale).astype(dtype)
    if task.noise > 0:
        eps = R.fill_normals(np.empty((P, B * task.d_out), dtype), task._k, step, D.NOISE)
        Y = Y.astype(np.float64) + task.noise * eps.reshape(Y.shape).astype(np.float64)
    return Y.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("heterogeneity", "noise"), [("shared", 0.0), ("agent", 0.3)])
@pytest.mark.parametrize("shape", [(8, 16, 1), (5, 7, 2), (1, 0, 1), (3, 0, 2)])
def test_teacher_batches_equal_the_numpy_oracle_bit_for_bit(dtype, heterogeneity, noise, shape):
    d_in, hidden, d_out = shape
    task = TeacherRegression(
        70,
        d_in=d_in,
        teacher_hidden=hidden,
        d_out=d_out,
        heterogeneity=heterogeneity,
        noise=noise,
        seed=11,
    )
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            for B in (1, 7, 32, 100):
                X, Y = task.sample(3, B, dtype)
                want_X = R.fill_normals(np.empty((70, B * d_in), dtype), task._k, 3, D.INPUT)
                assert X.tobytes() == want_X.tobytes()
                assert Y.tobytes() == _teacher_sample_oracle(task, 3, X, dtype).tobytes()
                out = task.teacher_outputs(X, step=3)  # teacher_forward, float64
                want = _teacher_sample_oracle(task, 3, X, np.float64) if noise == 0 else None
                if want is not None:
                    assert out.tobytes() == want.tobytes()
    finally:
        numba.set_num_threads(before)


def test_teacher_forward_of_float64_inputs_rounds_them_to_float32_first():
    task = TeacherRegression(4, heterogeneity="agent", seed=2)
    X = np.random.default_rng(1).standard_normal((4, 37, 8))
    want = _teacher_sample_oracle(task, 0, X, np.float64)
    assert task.teacher_outputs(X).tobytes() == want.tobytes()


@pytest.mark.parametrize(("d", "lanes"), [(2, 8), (8, 8), (4, 16), (8, 16), (16, 16)])
def test_the_shuffle_stages_transpose_a_block_of_rows(d, lanes):
    from simulator.kernels.teacher_tile import _transpose_stages

    M = np.arange(lanes * d).reshape(lanes, d)  # lanes rows of d inputs
    vectors = list(M.reshape(d, lanes))  # loaded as d vectors of consecutive numbers
    for ops in _transpose_stages(d, lanes):
        vectors = [np.concatenate([vectors[lo], vectors[hi]])[mask] for _, lo, hi, mask in ops]
    np.testing.assert_array_equal(np.array(vectors), M.T)
