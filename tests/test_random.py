"""Counter-based random numbers: Philox4x32-10 against its reference, and the quality of what
is built on it (uniforms, normals, the inverse normal CDF), independence, thread invariance."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit
from scipy import special, stats

from simulator.kernels import random as R

KEY = R.key_from_seed(2024)


# ---------------------------------------------------------------------------- Philox
@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    [  # Random123's published known-answer vectors (kat_vectors, philox4x32 10 rounds)
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_matches_the_random123_known_answers(counter, key, expected):
    out = R.philox_block(np.array([counter], dtype=np.uint32), key)
    assert tuple(int(w) for w in out[0]) == expected


def test_philox_words_are_uniform_bits():
    counters = np.zeros((50_000, 4), dtype=np.uint32)
    counters[:, 0] = np.arange(50_000)
    words = R.philox_block(counters, KEY).ravel()
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    # every bit position is 1 half the time (4 standard errors of 200,000 fair coins)
    assert np.abs(bits.mean(axis=0) - 0.5).max() < 4 * 0.5 / np.sqrt(bits.shape[0])
    assert stats.kstest(words / 2.0**32, "uniform").pvalue > 1e-3


def test_keys_depend_on_every_part_of_the_seed():
    keys = {R.key_from_seed(s, t) for s in range(50) for t in range(3)}
    assert len(keys) == 150


# ---------------------------------------------------------------------------- building blocks
@njit
def _logs(u):
    out = np.empty_like(u)
    out32 = np.empty(u.shape[0], dtype=np.float32)
    for i in range(u.shape[0]):
        out[i] = R.log_unit(u[i])
        out32[i] = R.log_unit32(np.float32(u[i]))
    return out, out32


@njit
def _sincos(v):
    out = np.empty((v.shape[0], 4))
    for i in range(v.shape[0]):
        out[i, 0], out[i, 1] = R.sincos_turn(v[i])
        out[i, 2], out[i, 3] = R.sincos_turn32(np.float32(v[i]))
    return out


@njit
def _ndtri(p):
    out = np.empty_like(p)
    for i in range(p.shape[0]):
        out[i] = R.ndtri(p[i])
    return out


def test_log_sin_cos_and_ndtri_match_numpy_and_scipy():
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.random(20_000), 2.0 ** -rng.uniform(0, 53, 2000), [2.0**-53, 0.5]])
    log, log32 = _logs(u)
    np.testing.assert_allclose(log, np.log(u), rtol=1e-15, atol=2e-16)  # a few ulp
    u32 = u.astype(np.float32)
    np.testing.assert_allclose(log32, np.log(u32.astype(float)), rtol=4e-7, atol=2e-7)
    v = np.concatenate([rng.random(20_000), np.arange(9) / 8, [1 - 2.0**-24]])
    sc = _sincos(v)
    np.testing.assert_allclose(sc[:, 0], np.cos(2 * np.pi * v), rtol=0, atol=1e-15)
    np.testing.assert_allclose(sc[:, 1], np.sin(2 * np.pi * v), rtol=0, atol=1e-15)
    v32 = 2 * np.pi * v.astype(np.float32).astype(float)
    np.testing.assert_allclose(sc[:, 2], np.cos(v32), rtol=0, atol=5e-7)  # a few float32 ulp
    np.testing.assert_allclose(sc[:, 3], np.sin(v32), rtol=0, atol=5e-7)
    p = np.concatenate([rng.random(20_000), 10.0 ** -rng.uniform(0, 300, 2000), [0.5, 1e-300]])
    p = np.concatenate([p, 1 - p[:1000]])
    np.testing.assert_allclose(_ndtri(p), special.ndtri(p), rtol=1e-13, atol=1e-15)
    assert _ndtri(np.array([0.0, 1.0])).tolist() == [-np.inf, np.inf]


# ---------------------------------------------------------------------------- normals
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normals_have_the_moments_and_distribution_of_n01(dtype):
    z = R.fill_normals(np.empty((400, 2500), dtype=dtype), KEY, step=5, purpose=0)
    x = z.ravel().astype(np.float64)
    n = x.size  # one million
    assert abs(x.mean()) < 4 / np.sqrt(n)
    assert abs(x.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.skew(x)) < 4 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(x)) < 4 * np.sqrt(24 / n)
    assert stats.kstest(x, "norm").pvalue > 1e-3
    # the tails: P(|z| > 3) and P(|z| > 4) as for N(0, 1) (4 standard errors)
    for t in (3.0, 4.0):
        q = 2 * stats.norm.sf(t)
        assert abs(np.mean(np.abs(x) > t) - q) < 4 * np.sqrt(q / n)


def test_normals_are_independent_between_agents_steps_and_purposes():
    a = R.fill_normals(np.empty((1000, 64)), KEY, step=3, purpose=0)
    others = [
        R.fill_normals(np.empty((1000, 64)), KEY, step=3, purpose=0, agent0=1),  # next agent
        R.fill_normals(np.empty((1000, 64)), KEY, step=4, purpose=0),  # next step
        R.fill_normals(np.empty((1000, 64)), KEY, step=3, purpose=1),  # another purpose
        R.fill_normals(np.empty((1000, 64)), R.key_from_seed(2025), step=3, purpose=0),
    ]
    bound = 4 / np.sqrt(a.size)
    for b in others:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < bound
    # within a stream: neighbours (the pair of one Box-Muller draw) and lag 2 uncorrelated
    flat = a.ravel()
    for lag in (1, 2, 4):
        assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < bound
    # the squares too (Box-Muller pairs share a radius: independence, not only no correlation)
    sq = a[:, 0::2] ** 2, a[:, 1::2] ** 2
    assert abs(np.corrcoef(sq[0].ravel(), sq[1].ravel())[0, 1]) < 4 / np.sqrt(sq[0].size)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_longer_row_extends_a_shorter_one(dtype):
    short = R.fill_normals(np.empty((3, 9), dtype=dtype), KEY, 1, 0)
    long = R.fill_normals(np.empty((3, 20), dtype=dtype), KEY, 1, 0)
    np.testing.assert_array_equal(long[:, :9], short)
    np.testing.assert_array_equal(R.fill_normals(np.empty((1, 9), dtype), KEY, 1, 0, 2), short[2:])


@njit
def _across(z, w, k0, k1, agent0, step, purpose):
    R.normals_across(z, w, k0, k1, agent0, step, purpose)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normals_drawn_across_agents_are_each_agents_stream_bit_for_bit(dtype):
    k0, k1 = (np.uint64(k) for k in KEY)
    per = 4 if dtype == np.float32 else 2  # numbers one counter gives
    for n in (1, 3, 8, 33):
        K = -(-n // per) * per
        for A in (1, 7, 64, 67):  # 67: lanes left over after whole vectors
            z = np.full((K, A), np.nan, dtype=dtype)
            _across(z, np.empty((K, A), dtype=np.uint32), k0, k1, 11, 4, 1)
            want = R.fill_normals(np.empty((A, K), dtype=dtype), KEY, 4, 1, agent0=11)
            assert z.T.tobytes() == np.ascontiguousarray(want).tobytes(), (n, A)


def test_uniforms_are_uniform_on_the_open_interval():
    u = R.fill_uniforms(np.empty((100, 5000)), KEY, 0, 0).ravel()
    assert u.min() > 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)


def test_results_are_bit_identical_on_one_and_two_threads():
    def draw():
        return (
            R.fill_normals(np.empty((257, 33)), KEY, 7, 0),
            R.fill_normals(np.empty((257, 33), dtype=np.float32), KEY, 7, 0),
            R.fill_uniforms(np.empty((257, 5)), KEY, 7, 2),
        )

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = draw()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = draw()
    finally:
        numba.set_num_threads(before)
    for x, y in zip(one, two):
        assert x.tobytes() == y.tobytes()
