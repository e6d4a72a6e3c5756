"""Kernels that fuse a collect's steps give the numbers of those steps done one by one in NumPy,
bit for bit (and draw the same numbers from a generator): moving work out of Python changes
nothing a model reports."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from simulator.kernels import measure as KM
from simulator.kernels import measure_function as KF
from simulator.kernels import measure_polarization as KE
from simulator.kernels import measure_weights as KW


def _rows(seed: int, P: int, D: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((P, D)) * rng.random(D) + rng.standard_normal(D)).astype(dtype)
    X[rng.random(P) < 0.05] = 0.0
    return X


SHAPES = [(1, 4, np.float64), (9, 3, np.float32), (700, 33, np.float32), (3000, 161, np.float64)]


def _threads(n: int):
    saved = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return saved


@pytest.mark.parametrize("P,D,dtype", SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_weight_moments_are_the_numpy_reductions_of_the_block_sums(P, D, dtype, threads):
    X = _rows(P + D, P, D, dtype)
    nb = KW.n_blocks(P)
    sums, units = np.empty((nb, D)), np.empty((nb, D))
    nonzero, marks = np.empty(nb, dtype=np.int64), np.empty(nb, dtype=np.int8)
    KW.block_sums_serial(X, sums, units, nonzero, marks)
    if marks.any():
        KW.units_again(X, units, nonzero, marks)
    centroid = sums.sum(axis=0) / P
    sq = np.empty(P)
    KW.row_sq_distances_serial(X, centroid, sq)
    saved = _threads(threads)
    try:
        for kernel in (KW.weight_moments, KW.weight_moments_serial):
            c, u, s, nz, (total, nearest, far, top) = kernel(X, *KW.moments_buffers(P, D))
            np.testing.assert_array_equal(c, centroid)
            np.testing.assert_array_equal(u, units.sum(axis=0))
            np.testing.assert_array_equal(s, sq)
            assert nz == nonzero.sum()
            assert total == sq.sum()
            assert nearest == np.argmin(sq) and far == sq.max()
            assert top == np.abs(centroid).max()
    finally:
        numba.set_num_threads(saved)


@pytest.mark.parametrize("P,D,dtype", SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_output_moments_are_the_column_means_and_distances(P, D, dtype, threads):
    G = _rows(2 * P + D, P, D, dtype)
    mean = np.empty(D)
    KF.column_means(G, mean)
    sq = np.empty(P)
    KW.sq_distances(G, mean, sq)
    sq /= 7
    saved = _threads(threads)
    try:
        for kernel in (KF.output_moments, KF.output_moments_serial):
            m, s, total = kernel(G, 7, np.empty(D + P))
            np.testing.assert_array_equal(m, mean)
            np.testing.assert_array_equal(s, sq)
            assert total == sq.sum()
    finally:
        numba.set_num_threads(saved)


@pytest.mark.parametrize("seed", range(6))
def test_sorted_components_are_the_sweep_of_the_sorted_rows(seed):
    """The kernel against the steps it replaces: a stable sort on the first coordinate, the
    sweep, then labels by first appearance; and the components against a brute force."""
    rng = np.random.default_rng(seed)
    P, D = int(rng.integers(2, 400)), int(rng.integers(1, 30))
    centres = rng.standard_normal((int(rng.integers(1, 8)), D))
    G = centres[rng.integers(0, centres.shape[0], P)] + 0.05 * rng.standard_normal((P, D))
    if seed % 2:
        G = G.astype(np.float32)
    mu = G.astype(np.float64).mean(axis=0)
    eps = float(rng.uniform(0.05, 0.6))
    Z, r = KM.pivot_coordinates(G, mu, 24, eps)
    order = np.argsort(Z[:, 0], kind="stable")
    Zs, rs = np.ascontiguousarray(Z[order]), np.ascontiguousarray(r[order])
    scale = float(np.sqrt(np.einsum("ij,ij->i", Zs, Zs).max() + (rs * rs).max()))
    parent = np.empty(P, dtype=np.int64)
    KM.sweep_components(G, order, Zs, rs, eps, 1e-6 * scale + 1e-9 * eps, parent)
    root = np.empty(P, dtype=np.int64)
    root[order] = order[parent]
    expected = np.empty(P, dtype=np.int64)
    KM.first_appearance(root, expected)
    labels = np.empty(P, dtype=np.int64)
    spread, n, largest = KM.sorted_components(G, Z, r, eps, np.inf, labels)
    np.testing.assert_array_equal(labels, expected)
    assert spread == pytest.approx(scale, rel=1e-14)
    assert (n, largest) == (expected.max() + 1, np.bincount(expected).max())
    G64 = G.astype(np.float64)
    close = ((G64[:, None] - G64[None]) ** 2).sum(axis=-1) < eps * eps
    truth = connected_components(close, directed=False)[1]
    pairs = np.unique(np.stack([labels, truth]), axis=1)
    assert pairs.shape[1] == n == truth.max() + 1
    # a spread at or past the limit: nothing swept, the caller rescales
    assert KM.sorted_components(G, Z, r, eps, spread, labels)[1:] == (0, 0)


def _split_er_numpy(C, share, max_pairs, gen):
    """The split estimate as NumPy computed it before it was one kernel."""

    def inverse_cdf(weight):
        cdf = np.cumsum(weight / weight.sum())
        cdf /= cdf[-1]
        return cdf

    def draw(pool, cdf, size):
        return pool[np.searchsorted(cdf, gen.random(size), side="right")]

    def stratum(g_weight, g_pool, h_pool, n_pairs):
        g = draw(g_pool, inverse_cdf(g_weight), n_pairs)
        h_cdf = inverse_cdf(share[h_pool])
        h = draw(h_pool, h_cdf, n_pairs)
        for _ in range(64):
            same = g == h
            if not same.any():
                break
            h[same] = draw(h_pool, h_cdf, int(same.sum()))
        keep = g != h
        if not keep.any():
            return 0.0, np.zeros(1)
        d = np.sqrt(((C[g[keep]] - C[h[keep]]) ** 2).sum(axis=1))
        out = np.empty(d.size)
        KM.pair_distances(C, g[keep].astype(np.int64), h[keep].astype(np.int64), out)
        return float(out.mean()), d

    G = share.size
    k = max(2, int((1 + np.sqrt(1 + 4 * max_pairs)) / 2))
    order = np.argsort(-share, kind="stable")
    top, rest = np.sort(order[:k]), np.sort(order[k:])
    terms = np.empty(k)
    KE.er_terms_serial(np.ascontiguousarray(C[top]), np.ascontiguousarray(share[top]), terms)
    total = float(terms.sum())
    half = max(1, max_pairs // 4)
    w1 = share[rest] ** 2 * (1 - share[rest])
    if w1.sum() > 0:
        mean, d = stratum(w1, rest, np.arange(G), half)
        assert mean == pytest.approx(d.mean(), rel=1e-12)  # the oracle's distances are right
        total += float(w1.sum()) * mean
    w2 = share[top] ** 2
    if share[rest].sum() > 0:
        mean, _ = stratum(w2, top, rest, half)
        total += float(w2.sum() * share[rest].sum()) * mean
    return total


@pytest.mark.parametrize("seed", range(8))
def test_split_er_kernel_draws_and_sums_as_numpy(seed):
    rng = np.random.default_rng(seed)
    G, D = int(rng.integers(40, 300)), int(rng.integers(1, 50))
    counts = rng.integers(1, 30, G) ** int(rng.integers(1, 3))
    share = counts / counts.sum()
    C = rng.standard_normal((G, D))
    max_pairs = int(rng.choice([16, 100, 512]))
    gen_a, gen_b = np.random.default_rng(seed + 100), np.random.default_rng(seed + 100)
    k = max(2, int((1 + np.sqrt(1 + 4 * max_pairs)) / 2))
    got = KE.split_er(C, share, k, max(1, max_pairs // 4), gen_a)
    assert got == _split_er_numpy(C, share, max_pairs, gen_b)
    assert gen_a.random() == gen_b.random()  # the generator left in the same state


@pytest.mark.parametrize("seed", range(4))
def test_split_er_with_every_group_on_top_is_the_exact_sum(seed):
    rng = np.random.default_rng(seed)
    G, D = int(rng.integers(2, 40)), int(rng.integers(1, 30))
    share = rng.random(G) + 0.01
    share /= share.sum()
    C = rng.standard_normal((G, D))
    terms = np.empty(G)
    KE.er_terms_serial(C, share, terms)
    gen = np.random.default_rng(0)
    assert KE.split_er(C, share, G, 1, gen) == terms.sum()
    assert gen.random() == np.random.default_rng(0).random()  # nothing drawn
