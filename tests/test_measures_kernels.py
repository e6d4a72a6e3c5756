"""Measure kernels against slow, obviously correct NumPy versions; parallel = serial, bitwise."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from simulator import ParameterError, Population, metrics
from simulator.kernels import measure as KM
from simulator.kernels import measure_cka as KC
from simulator.kernels import measure_function as KF
from simulator.kernels import measure_pivot as KPV
from simulator.kernels import measure_polarization as KE
from simulator.kernels import measure_probe as KP
from simulator.kernels import measure_weights as KW
from simulator.measures import class_probabilities


def _rows(seed: int, P: int, D: int, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((P, D)) + rng.standard_normal(D)).astype(dtype)
    X[rng.random(P) < 0.1] = 0.0  # zero rows: cosine 0 by convention
    return X


SHAPES = [(1, 3, np.float64), (7, 5, np.float32), (300, 41, np.float32), (513, 9, np.float64)]
NETS = [
    ("linear", "mse", 2),
    ("softmax", "cross_entropy", 3),
    ("sigmoid", "bce", 1),
    ("step", "mse", 1),
]


@pytest.mark.parametrize(("P", "D", "dtype"), SHAPES)
def test_weight_summary_matches_numpy(P, D, dtype):
    X = _rows(P + D, P, D, dtype)
    X64 = X.astype(np.float64)
    ws = metrics.weight_summary(X)
    mean = X64.mean(axis=0)
    np.testing.assert_allclose(ws.centroid, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ws.sq_distances, ((X64 - mean) ** 2).sum(axis=1), rtol=1e-10)
    assert ws.consensus_distance == pytest.approx(((X64 - mean) ** 2).sum(axis=1).mean())
    if P > 1:
        norms = np.linalg.norm(X64, axis=1)
        U = np.divide(X64, norms[:, None], out=np.zeros_like(X64), where=norms[:, None] > 0)
        cos = [U[i] @ U[j] for i, j in combinations(range(P), 2)]
        assert ws.mean_cosine == pytest.approx(np.mean(cos), abs=1e-12)


def test_weight_summary_refuses_nan_params():
    X = np.ones((5, 3))
    X[2, 1] = np.nan
    with pytest.raises(ParameterError, match="params"):
        metrics.weight_summary(X)


def test_parallel_and_serial_twins_agree_bit_for_bit():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 37)).astype(np.float32)
    nb = KW.n_blocks(3000)
    a = [np.empty((nb, 37)), np.empty((nb, 37)), np.empty(nb, np.int64), np.empty(nb, np.int8)]
    b = [np.empty((nb, 37)), np.empty((nb, 37)), np.empty(nb, np.int64), np.empty(nb, np.int8)]
    KW.block_sums(X, *a)
    KW.block_sums_serial(X, *b)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    c = a[0].sum(axis=0) / 3000
    s1, s2 = np.empty(3000), np.empty(3000)
    KW.row_sq_distances(X, c, s1)
    KW.row_sq_distances_serial(X, c, s2)
    np.testing.assert_array_equal(s1, s2)
    m1, m2 = np.empty(37), np.empty(37)
    KF.column_sums(X, np.empty(0), m1)
    KF.column_sums_serial(X, np.empty(0), m2)
    np.testing.assert_array_equal(m1, m2)
    dec = rng.integers(0, 5, (300, 700))
    c1, c2 = np.empty((700, 5), np.int64), np.empty((700, 5), np.int64)
    KF.class_counts_parallel(dec, c1)
    KF.class_counts_serial(dec, c2)
    np.testing.assert_array_equal(c1, c2)
    labels = rng.integers(0, 5, 700)
    c3, c4 = np.empty((700, 5), np.int64), np.empty((700, 5), np.int64)
    f3, f4 = np.empty((300, 700), np.uint8), np.empty((300, 700), np.uint8)
    KF.decision_tallies_parallel(dec, labels, c3, f3)
    KF.decision_tallies_serial(dec, labels, c4, f4)
    np.testing.assert_array_equal(c3, c1)
    np.testing.assert_array_equal(c4, c1)
    np.testing.assert_array_equal(f3, dec != labels[None, :])
    np.testing.assert_array_equal(f4, f3)
    for h in (5, 16, 21):  # the CKA kernel's tile paths: narrow, two wide vectors, the rest
        H = rng.standard_normal((20, 50, h)).astype(np.float32)
        I, J = rng.integers(0, 20, 90), rng.integers(0, 20, 90)
        assert KC.mean_cka_parallel(H, I, J, 1e-20) == KC.mean_cka_serial(H, I, J, 1e-20)


def test_function_summary_matches_numpy():
    F = np.random.default_rng(2).standard_normal((40, 13, 3)).astype(np.float32)
    fs = metrics.function_summary(F)
    F64 = F.astype(np.float64)
    mean = F64.mean(axis=0)
    np.testing.assert_allclose(fs.mean, mean, rtol=1e-12, atol=1e-15)
    sq = ((F64 - mean) ** 2).sum(axis=2).mean(axis=1)
    np.testing.assert_allclose(fs.sq_distances, sq, rtol=1e-10)
    assert fs.dispersion == pytest.approx(sq.mean())


@pytest.mark.parametrize(("output", "loss", "K"), NETS)
def test_probe_pass_gives_predict_loss_and_numpy_statistics(output, loss, K):
    pop = Population(9, layers=(4, 6, K), output=output, loss=loss, seed=3, dtype=np.float64)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 4))
    labels = rng.integers(0, max(K, 2), 30)
    if loss == "cross_entropy":
        Y = np.eye(K)[labels][None]
    elif K == 1:
        Y = labels[None, :, None].astype(float)
    else:
        Y = rng.standard_normal((9, 30, K))  # one truth per agent
    truth = Y.mean(axis=0)
    rows = np.array([7, 2, 5])
    pp = metrics.probe_pass(pop, X, rows, Y=Y, truth=truth, labels=labels, hidden_pos=[0, 2])
    preds = pop.predict(X)[rows]
    np.testing.assert_array_equal(pp.preds, preds)
    np.testing.assert_array_equal(pp.loss, pop.loss(X[None].repeat(9, 0), Y)[rows])
    np.testing.assert_array_equal(pp.hidden, pop.predict(X, agents=rows[[0, 2]], layer=1))
    np.testing.assert_allclose(pp.sq_error, ((preds - truth) ** 2).mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(pp.spread, preds.std(axis=1).mean(axis=1), rtol=1e-10)
    probs = class_probabilities(preds)
    dec = probs.argmax(-1)
    np.testing.assert_array_equal(pp.decisions, dec)
    np.testing.assert_allclose(pp.accuracy, (dec == labels).mean(axis=1))
    if output != "linear":  # entropy is defined for probabilities (classification outputs)
        ent = -(probs * np.log(np.clip(probs, 1e-300, None))).sum(-1).mean(axis=1)
        np.testing.assert_allclose(pp.entropy, ent, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_on_a_shared_input_set_is_the_training_forward_pass_bit_for_bit(dtype):
    # Population.predict runs a shared input set (a probe) through the probe kernel, one lane
    # per agent; it must give what the training code's forward pass gives, to the last bit
    from simulator.kernels import mlp

    X = np.random.default_rng(1).standard_normal((45, 3))
    for activation in ("tanh", "relu", "sigmoid", "step"):
        for output, loss, K in [*NETS, ("linear", "mse", 1)]:
            for hidden in [(), (7,), (9, 5)]:
                for bias in (True, False):
                    layers = (3, *hidden, K)
                    kw = {"output": output, "loss": loss, "dtype": dtype, "bias": bias}
                    pop = Population(37, layers=layers, activation=activation, seed=2, **kw)
                    want = np.empty((37, 45, K), dtype=dtype)
                    Xa = np.ascontiguousarray(X[None], dtype=dtype)
                    mlp.population_forward(pop.params, Xa, pop._net, len(hidden) + 1, want)
                    got = pop.predict(X)
                    assert got.tobytes() == want.tobytes(), (activation, output, hidden, bias)
                    rows = np.array([5, 0, 36, 5])
                    assert pop.predict(X, agents=rows).tobytes() == want[rows].tobytes()


def test_probe_pass_without_outputs_keeps_only_the_statistics():
    pop = Population(5, layers=(2, 3, 1), seed=0)
    X = np.random.default_rng(0).standard_normal((11, 2))
    pp = metrics.probe_pass(pop, X, keep_preds=False, Y=np.zeros((1, 11, 1)))
    assert pp.preds is None and pp.hidden is None and pp.decisions is None
    np.testing.assert_array_equal(pp.loss, pop.loss(X, np.zeros((11, 1))))
    assert np.isnan(pp.accuracy).all()
    assert KP.N_STATS == 5


def _probe_kernel_args(pop, X, Y, truth, labels, rows, hidden_pos):
    """Arguments of the probe kernels, with fresh output arrays (as metrics.probe_pass builds)."""
    m, n, K = rows.size, X.shape[0], pop.layers[-1]
    slot = np.full(m, -1, dtype=np.int64)
    slot[hidden_pos] = np.arange(hidden_pos.size)
    return (
        pop.params,
        rows,
        np.ascontiguousarray(X[None], dtype=pop.dtype),
        np.ascontiguousarray(Y, dtype=pop.dtype),
        np.ascontiguousarray(truth, dtype=np.float64),
        np.ascontiguousarray(labels, dtype=np.int64),
        pop._net,
        np.empty((m, n, K), dtype=pop.dtype),
        np.empty((hidden_pos.size, n, pop.layers[1]), dtype=pop.dtype),
        slot,
        np.empty((m, n), dtype=np.int64),
        np.full((m, KP.N_STATS), np.nan),
    )


@pytest.mark.parametrize(("output", "loss", "K", "dtype"), [
    ("softmax", "cross_entropy", 4, np.float32),
    ("linear", "mse", 3, np.float64),
    ("sigmoid", "bce", 1, np.float32),
])  # fmt: skip
def test_probe_pass_same_bits_on_one_and_two_threads_and_serial(output, loss, K, dtype):
    numba = pytest.importorskip("numba")
    P, n = 75, 37  # chunks of KP.LANES agents and a partial one; items not a vector multiple
    pop = Population(P, layers=(3, 9, K), output=output, loss=loss, seed=5, dtype=dtype)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((n, 3))
    labels = rng.integers(0, max(K, 2), n)
    Y = np.eye(K)[labels][None] if K > 1 else labels[None, :, None].astype(float)
    rows = rng.permutation(P)[:70].astype(np.int64)
    truth = rng.standard_normal((n, K))
    hidden_pos = np.sort(rng.permutation(70)[:20]).astype(np.int64)
    runs = []
    saved = numba.get_num_threads()
    try:
        for threads in (1, min(2, saved)):
            numba.set_num_threads(threads)
            args = _probe_kernel_args(pop, X, Y, truth, labels, rows, hidden_pos)
            KP.probe_pass(*args)
            runs.append(args[7:])
    finally:
        numba.set_num_threads(saved)
    args = _probe_kernel_args(pop, X, Y, truth, labels, rows, hidden_pos)
    KP.probe_pass_serial(*args)
    runs.append(args[7:])
    for other in runs[1:]:
        for u, v in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(u, v)
    preds, hidden, _, dec, stats = runs[0]
    np.testing.assert_array_equal(preds, pop.predict(X)[rows])
    np.testing.assert_array_equal(hidden, pop.predict(X, agents=rows[hidden_pos], layer=1))
    np.testing.assert_array_equal(dec, class_probabilities(preds).argmax(-1))
    assert not np.isnan(stats[:, [KP.LOSS, KP.SQ_ERR, KP.CORRECT, KP.ENTROPY, KP.SPREAD]]).any()


def test_probe_pass_of_a_panel_of_tiny_networks_goes_parallel_with_the_same_bits(monkeypatch):
    """A probe pass counts each agent's item with its fixed costs (KP.ITEM_OVERHEAD), not only
    its multiply-adds: polarization's panel (256 affine 1-1 agents x 256 items, 2 parameters)
    runs on the parallel kernel; a pass of 16 agents on 16 items stays serial. Both give the
    same outputs and statistics as the serial kernel."""
    called = []
    for name in ("probe_pass", "probe_pass_serial"):
        kernel = getattr(KP, name)
        monkeypatch.setattr(KP, name, lambda *a, _k=kernel, _n=name: called.append(_n) or _k(*a))
    pop = Population(300, layers=(1, 1), seed=3)
    rng = np.random.default_rng(4)
    for m, n, expected in ((256, 256, "probe_pass"), (16, 16, "probe_pass_serial")):
        X = rng.standard_normal((n, 1))
        Y = rng.standard_normal((1, n, 1))
        truth = rng.standard_normal((n, 1))
        rows = np.sort(rng.permutation(300)[:m]).astype(np.int64)
        none = np.empty(0, dtype=np.int64)
        args = _probe_kernel_args(pop, X, Y, truth, none, rows, none)
        called.clear()
        KP.run(*args)
        assert called == [expected]
        ref = _probe_kernel_args(pop, X, Y, truth, none, rows, none)
        KP.probe_pass_serial(*ref)
        np.testing.assert_array_equal(args[7], ref[7])  # the outputs
        np.testing.assert_array_equal(args[11], ref[11])  # loss, error, spread (NaN: unasked)
        assert not np.isnan(args[11][:, [KP.LOSS, KP.SQ_ERR, KP.SPREAD]]).any()


def test_probe_pass_sums_are_sequential_sums_over_the_items():
    """The per-agent sums (done side by side for several agents, in SIMD lanes) are exactly
    the plain sums over the items in order: Python floats give the same bits."""
    P, n, K = 37, 29, 2
    pop = Population(P, layers=(2, 5, K), output="linear", seed=8)
    rng = np.random.default_rng(9)
    X = rng.standard_normal((n, 2))
    truth = rng.standard_normal((n, K))
    pp = metrics.probe_pass(pop, X, truth=truth)
    for i in range(P):
        o = pp.preds[i].astype(np.float64).tolist()
        acc = 0.0
        for b in range(n):
            for k in range(K):
                d = o[b][k] - float(truth[b, k])
                acc += d * d
        assert pp.sq_error[i] == acc / (n * K)
        spread = 0.0
        for k in range(K):
            mean = 0.0
            for b in range(n):
                mean += o[b][k]
            mean /= n
            var = 0.0
            for b in range(n):
                d = o[b][k] - mean
                var += d * d
            spread += math.sqrt(var / n)
        assert pp.spread[i] == spread / K
    sig = Population(P, layers=(2, 5, 1), output="sigmoid", loss="bce", seed=8)
    labels = rng.integers(0, 2, n)
    pp = metrics.probe_pass(sig, X, labels=labels)
    for i in range(P):
        h = 0.0
        for b in range(n):
            p1 = float(pp.preds[i, b, 0])
            for p in (p1, 1.0 - p1):
                if p > 0.0:
                    h -= p * math.log(p)
        assert pp.entropy[i] == pytest.approx(h / n, rel=1e-15, abs=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_entropies_match_math_log_at_every_probability(dtype):
    # one output P(class 1): the branch-free loop against math.log term by term, over the
    # whole range (0 and 1 exactly, the extremes a float32 or float64 holds, subnormals)
    tiny = np.finfo(dtype).smallest_subnormal
    p = np.array([0.0, 1.0, 0.5, tiny, 2 * tiny, np.finfo(dtype).tiny, 1e-30, 1e-7, 0.25,
                  1.0 - np.finfo(dtype).eps, 1.0 - np.finfo(dtype).epsneg, 0.999, 0.75],
                 dtype=dtype)  # fmt: skip
    p = np.concatenate([p, np.random.default_rng(0).random(500).astype(dtype)])
    terms = np.full(p.size, np.nan)
    KP._binary_entropies(p[None], terms)
    for b, x in enumerate(p.astype(np.float64)):
        h = 0.0
        for q in (x, 1.0 - x):
            if q > 0.0:
                h -= q * math.log(q)
        # a subnormal probability's term (below 1e-305) is off by a few per cent of itself
        assert terms[b] == pytest.approx(h, rel=1e-15, abs=1e-300), (b, x)
    assert terms[0] == 0.0 and terms[1] == 0.0  # certain decisions: exactly 0


def test_step_outputs_have_zero_entropy_exactly():
    pop = Population(40, layers=(3, 1), output="step", loss="mse", seed=2)
    X = np.random.default_rng(1).standard_normal((70, 3))
    pp = metrics.probe_pass(pop, X, labels=np.arange(70) % 2)
    assert set(np.unique(pp.preds)) <= {0.0, 1.0}
    assert np.all(pp.entropy == 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_assignment_kernel_finds_the_optimum_of_scipy(seed):
    rng = np.random.default_rng(seed)
    h = int(rng.integers(1, 20))
    S = rng.standard_normal((30, h, h))
    S[:5] = np.round(S[:5])  # ties
    perm = np.empty((30, h), dtype=np.int64)
    KF.assignments(S, perm)
    for r in range(30):
        assert sorted(perm[r]) == list(range(h))
        best = linear_sum_assignment(S[r], maximize=True)
        assert S[r][np.arange(h), perm[r]].sum() == pytest.approx(S[r][best].sum(), abs=1e-12)


def _textbook_hungarian(cost):
    """The O(h^3) Hungarian method with potentials in plain Python (rows' cheapest columns as
    the start, then one shortest augmenting path per unmatched row, columns scanned in order,
    the first least column taken): matching and potentials."""
    h = cost.shape[0]
    u, v = [0.0] * (h + 1), [0.0] * (h + 1)
    p, way = [0] * (h + 1), [0] * (h + 1)
    for r in range(1, h + 1):
        col = 1 + int(np.argmin(cost[r - 1]))  # first column on ties
        u[r] = float(cost[r - 1, col - 1])
        if p[col] == 0:
            p[col] = r
    matched = {p[j] for j in range(1, h + 1) if p[j]}
    for r in range(1, h + 1):
        if r in matched:
            continue
        p[0], j0 = r, 0
        minv, used = [np.inf] * (h + 1), [False] * (h + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], np.inf, 0
            for j in range(1, h + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(h + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    perm = [0] * h
    for j in range(1, h + 1):
        perm[p[j] - 1] = j - 1
    return perm, u, v


@pytest.mark.parametrize("seed", range(3))
def test_assignment_kernel_has_the_textbook_matching_and_potentials_bit_for_bit(seed):
    from simulator.kernels import measure_align as KA

    rng = np.random.default_rng(100 + seed)
    for case in range(40):
        h = int(rng.integers(1, 18))
        cost = rng.standard_normal((h, h))
        if case % 4 == 0:
            cost = np.round(cost)  # ties
        perm, u, v = np.empty(h, dtype=np.int64), np.empty(h + 1), np.empty(h + 1)
        p, way, minv = np.empty(h + 1, dtype=np.int64), np.empty(h + 1, dtype=np.int64), u.copy()
        KA.hungarian(cost, perm, u, v, p, way, minv)
        t_perm, t_u, t_v = _textbook_hungarian(cost)
        assert perm.tolist() == t_perm
        np.testing.assert_array_equal(u, t_u)
        np.testing.assert_array_equal(v, t_v)


def test_pivot_coordinates_are_orthonormal_projections():
    rng = np.random.default_rng(5)
    G = (rng.standard_normal((60, 3)) @ rng.standard_normal((3, 40))).astype(np.float32)
    G += 0.01 * rng.standard_normal(G.shape).astype(np.float32)
    mu = G.mean(axis=0, dtype=np.float64)
    Z, r = KPV.pivot_coordinates(G, mu, 8)
    C = G.astype(np.float64) - mu
    # the coordinates and residual norms account for every row's norm
    np.testing.assert_allclose((Z**2).sum(axis=1) + r**2, (C**2).sum(axis=1), rtol=1e-9)
    dZ = cdist(Z, Z)
    assert np.all(dZ <= cdist(C, C) + 1e-9)
    assert Z.shape[1] == 8


def _oracle_er(F: np.ndarray, labels: np.ndarray) -> float:
    n = F.shape[1]
    G = F.reshape(F.shape[0], -1).astype(np.float64)
    groups = np.unique(labels)
    C = np.stack([G[labels == g].mean(axis=0) for g in groups])
    share = np.array([np.mean(labels == g) for g in groups])
    return float(share**2 @ (cdist(C, C) / np.sqrt(n)) @ share)


@pytest.mark.parametrize("seed", range(3))
def test_exact_polarization_matches_the_esteban_ray_sum(seed):
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((700, 6, 2)).astype(np.float32)
    labels = rng.integers(0, int(rng.integers(2, 400)), 700)
    assert metrics.polarization(F, labels, max_pairs=None) == pytest.approx(
        _oracle_er(F, labels), rel=1e-10
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_esteban_ray_terms_are_the_same_bits_on_any_number_of_threads(threads):
    """The parallel kernel (blocks of tiles taken from both ends) gives every group's term bit
    for bit as its serial twin, for group counts around the tiles and blocks, and each term is
    the sum over the groups above it (oracle: a plain loop over cdist)."""
    import numba

    rng = np.random.default_rng(3)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for G in (1, 2, 3, 4, 5, 31, 32, 33, 64, 65, 97, 130, 161, 263):
            C = rng.standard_normal((G, int(rng.integers(1, 40))))
            share = rng.random(G)
            share /= share.sum()
            par, ser = np.empty(G), np.empty(G)
            KE.er_terms(C, share, par)
            KE.er_terms_serial(C, share, ser)
            assert np.array_equal(par, ser)
            d = cdist(C, C)
            truth = [sum(share[g] * share[h] * (share[g] + share[h]) * d[g, h]
                         for h in range(g + 1, G)) for g in range(G)]  # fmt: skip
            np.testing.assert_allclose(ser, truth, rtol=1e-12, atol=1e-300)
    finally:
        numba.set_num_threads(before)


def test_split_polarization_stays_within_its_stated_error():
    """Many uneven groups: pairs among the largest exact, the rest sampled. The stated bound
    on the standard deviation, (W1 + W2) max d / sqrt(max_pairs / 4), must hold over 60 seeds
    (RMS error), and the estimate must be unbiased (mean error within 4 standard errors)."""
    rng = np.random.default_rng(9)
    F = rng.standard_normal((4000, 5, 1))
    labels = rng.geometric(0.01, 4000)
    exact = _oracle_er(F, labels)
    _, inv = np.unique(labels, return_inverse=True)
    share = np.bincount(inv) / inv.size
    max_pairs = 1024
    k = max(2, int((1 + np.sqrt(1 + 4 * max_pairs)) / 2))
    small = np.sort(share)[::-1][k:]
    top = np.sort(share)[::-1][:k]
    W = np.sum(small**2 * (1 - small)) + np.sum(top**2) * small.sum()
    G = F.reshape(4000, -1)
    C = np.stack([G[inv == g].mean(axis=0) for g in range(share.size)])
    bound = W * cdist(C, C).max() / np.sqrt(5) / np.sqrt(max_pairs / 4)
    est = np.array([metrics.polarization(F, labels, rng=s, max_pairs=max_pairs) for s in range(60)])
    err = est - exact
    assert np.sqrt(np.mean(err**2)) <= bound
    assert abs(err.mean()) <= 4 * err.std() / np.sqrt(60) + 1e-12


def test_group_means_and_pair_distances_match_numpy():
    rng = np.random.default_rng(6)
    F = rng.standard_normal((50, 7)).astype(np.float32)
    lab = rng.integers(0, 6, 50)
    lab[:6] = np.arange(6)  # every group present
    out, counts = np.empty((6, 7)), np.empty(6, dtype=np.int64)
    KM.group_means(F, lab, counts, out)
    np.testing.assert_array_equal(counts, np.bincount(lab))
    for g in range(6):  # each group's rows summed in row order, then scaled: exactly
        total = F[lab == g][0].astype(np.float64)
        for row in F[lab == g][1:]:
            total = total + row.astype(np.float64)
        np.testing.assert_array_equal(out[g], total * (1.0 / counts[g]))
    I, J = rng.integers(0, 50, 40), rng.integers(0, 50, 40)
    d = np.empty(40)
    C = F.astype(np.float64)
    KM.pair_distances(C, I, J, d)
    np.testing.assert_allclose(d, np.linalg.norm(C[I] - C[J], axis=1), rtol=1e-12)


def test_agreement_from_decisions_matches_counting_by_hand():
    rng = np.random.default_rng(8)
    dec = rng.integers(0, 3, (25, 40))
    plur = np.mean([np.bincount(dec[:, b], minlength=3).max() / 25 for b in range(40)])
    assert metrics.agreement_of_decisions(dec, 3) == pytest.approx(plur)


def test_linear_embedding_distances_are_the_rms_output_distances():
    pop = Population(30, layers=(2, 1), output="linear", seed=1, dtype=np.float64)
    X = np.random.default_rng(2).standard_normal((50, 2))
    Z = metrics.linear_embedding(pop, X)
    F = pop.predict(X).reshape(30, -1)
    np.testing.assert_allclose(cdist(Z, Z), cdist(F, F) / np.sqrt(50), rtol=1e-9, atol=1e-12)
    hidden = Population(3, layers=(2, 4, 1), seed=0)
    assert metrics.linear_embedding(hidden, X) is None
    assert metrics.linear_embedding(Population(3, layers=(5, 1), seed=0), X[:, :1]) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("d_in", "d_out"), [(1, 1), (2, 1), (1, 2), (3, 2)])
def test_affine_coordinates_kernel_is_theta_times_the_cholesky_factor(d_in, d_out, dtype):
    from simulator.kernels import measure_affine as KL

    rng = np.random.default_rng(d_in * 10 + d_out)
    P, n = 2 * KL.ROWS + 37, d_in + 1
    params = rng.standard_normal((P, (d_in + 1) * d_out)).astype(dtype)
    L = np.linalg.cholesky(np.cov(rng.standard_normal((n, 3 * n))) + np.eye(n))
    W = params[:, : d_in * d_out].reshape(P, d_in, d_out).astype(np.float64)
    theta = np.concatenate([W, params[:, None, d_in * d_out :].astype(np.float64)], axis=1)
    truth = np.einsum("pik,ij->pkj", theta, L).reshape(P, -1)
    parallel, serial = np.empty_like(truth), np.empty_like(truth)
    KL.affine_coordinates(params, L, d_in, d_out, parallel)
    KL.affine_coordinates_serial(params, L, d_in, d_out, serial)
    np.testing.assert_allclose(parallel, truth, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(parallel, serial)
    # bit for bit the stated order (by columns, or by rows for one output of one or two
    # inputs): sum over i in increasing order, a multiply and an add each
    in_order = theta[:, 0, :, None] * L[0][None, None, :]
    for i in range(1, n):
        in_order = in_order + theta[:, i, :, None] * L[i][None, None, :]
    np.testing.assert_array_equal(parallel, in_order.reshape(P, -1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("d_in", "d_out"), [(1, 1), (2, 1), (1, 2), (3, 2)])
@pytest.mark.parametrize("P", [1, 5, 2 * 1024 + 37])
def test_affine_functions_are_those_of_the_outputs_on_the_probe(d_in, d_out, dtype, P):
    """affine_functions' coordinates are affine_coordinates' (bit for bit) and its statistics
    those of the agents' outputs on the probe computed by NumPy in float64 (a nonlinear truth:
    a residual no affine agent fits); the parallel and serial kernels give the same bits."""
    from simulator.kernels import measure_affine as KL
    from simulator.metrics.linear import (
        affine_coordinates,
        affine_functions,
        probe_factor,
        truth_coordinates,
    )

    rng = np.random.default_rng(P + 10 * d_in + d_out)
    pop = Population(P, layers=(d_in, d_out), output="linear", dtype=dtype, seed=1)
    pop.params[:] = rng.standard_normal(pop.params.shape) * rng.uniform(0.1, 3)
    X = rng.standard_normal((64, d_in)) * 1.5 + 0.7
    Y = np.sin(X @ rng.standard_normal((d_in, d_out))) + 0.3 * X[:, :1] ** 2
    L = probe_factor(pop, X, max_dim=12)
    truth = truth_coordinates(X, Y, L)
    Z, stats = affine_functions(pop, L, truth)
    np.testing.assert_array_equal(Z, affine_coordinates(pop, L))
    F = np.einsum("ni,pik->pnk", X, pop.params[:, : d_in * d_out].reshape(P, d_in, d_out))
    F = F.astype(np.float64) + pop.params[:, None, d_in * d_out :].astype(np.float64)
    mean = F.mean(axis=0)
    err = ((F - Y) ** 2).mean(axis=(1, 2))  # each agent's MSE over items and outputs
    assert stats.dispersion == pytest.approx(((F - mean) ** 2).sum(axis=2).mean(), rel=1e-10)
    assert stats.sq_error == pytest.approx(err.mean(), rel=1e-10)
    assert stats.worst_sq_error == pytest.approx(err.max(), rel=1e-10)
    assert stats.ensemble_sq_error == pytest.approx(((mean - Y) ** 2).mean(), rel=1e-10)
    assert stats.output_spread == pytest.approx(F.std(axis=1).mean(), rel=1e-10)
    np.testing.assert_allclose(stats.mean, Z.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert truth.residual > 0.01
    q = Z.shape[1]
    outs = []
    for kernel in (KL.affine_summary, KL.affine_summary_serial):
        Zk, out = np.empty_like(Z), np.empty(q + KL.N_SUMS)
        blocks = np.empty((-(-P // KL.ROWS), q + KL.N_SUMS))
        kernel(pop.params, L, d_in, d_out, truth.covariance, truth.z, Zk, blocks, out)
        np.testing.assert_array_equal(Zk, Z)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_affine_functions_refuse_agents_whose_coordinates_are_not_finite():
    """A NaN or inf parameter (or a sum that overflows): no statistics (None), for the caller
    to measure the slow way, which names the agents."""
    from simulator.metrics.linear import affine_functions, probe_factor, truth_coordinates

    X = np.linspace(-1, 1, 16)[:, None]
    for bad in (np.nan, np.inf, 1e300):
        pop = Population(40, layers=(1, 1), output="linear", dtype=np.float64, seed=1)
        L = probe_factor(pop, X)
        pop.params[7, 0] = bad
        Z, stats = affine_functions(pop, L, truth_coordinates(X, X, L))
        assert Z.shape == (40, 2) and stats is None, bad


@pytest.mark.parametrize("q", [1, 2, 3])
def test_grid_clusters_equal_the_components_of_the_eps_graph(q):

    for seed in range(4):
        rng = np.random.default_rng(seed)
        Z = rng.standard_normal((300, q)) * rng.uniform(0.05, 2)
        eps = rng.uniform(0.02, 0.4)
        labels, n, share = metrics.grid_clusters(Z, eps)
        truth = connected_components(cdist(Z, Z) < eps, directed=False)[1]
        pairs = np.unique(np.stack([labels, truth]), axis=1)
        assert len(pairs.T) == n == truth.max() + 1
        assert share == pytest.approx(np.bincount(truth).max() / 300)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_grid_clusters_of_points_on_a_lattice_of_step_eps(q):
    """Points exactly a multiple of eps / sqrt(q) apart (integers times a rounded step): the
    rounding of their cell numbers must not put two points eps apart in one cell, which a
    side of exactly eps / sqrt(q) did (6 clusters for 7 at q = 1)."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        eps = float(10 ** rng.uniform(-3, 1))
        step = eps / np.sqrt(q) * rng.choice([1.0, np.sqrt(q)])
        Z = rng.integers(-6, 6, (int(rng.integers(2, 120)), q)) * step
        labels, n, _ = metrics.grid_clusters(Z, eps)
        truth = connected_components(cdist(Z, Z, "sqeuclidean") < eps * eps, directed=False)[1]
        assert len(np.unique(np.stack([labels, truth]), axis=1).T) == n == truth.max() + 1


@pytest.mark.parametrize("q", [1, 2, 3])
def test_grid_clusters_on_a_grid_too_large_for_the_dense_numbering(q):
    """Far-apart groups of points with a small eps: more cells than 4 P + 4096, so the packed
    keys' path runs; still the components of the eps graph."""
    rng = np.random.default_rng(q)
    centres = rng.uniform(0, 1e4, (20, q))
    Z = centres[rng.integers(0, 20, 400)] + rng.normal(0, 0.3, (400, q))
    eps = 0.5
    assert np.prod(np.floor(np.ptp(Z, axis=0) / (eps / np.sqrt(q))) + 1) > 4 * 400 + 4096
    labels, n, share = metrics.grid_clusters(Z, eps)
    truth = connected_components(cdist(Z, Z) < eps, directed=False)[1]
    assert len(np.unique(np.stack([labels, truth]), axis=1).T) == n == truth.max() + 1
    assert share == np.bincount(truth).max() / 400


def test_sampled_modularity_is_unbiased_for_the_modularity():
    import networkx as nx

    from simulator.graph import to_csr

    G = nx.stochastic_block_model([60] * 4, [[0.3 if i == j else 0.02 for j in range(4)]
                                              for i in range(4)], seed=1)  # fmt: skip
    csr = to_csr(G)
    labels = np.repeat(np.arange(4), 60)
    labels[np.random.default_rng(0).random(240) < 0.2] = 4
    exact = metrics.modularity(G, labels)
    rng = np.random.default_rng(3)
    est = []
    for _ in range(300):
        entry = rng.integers(0, csr.indices.size, 128)
        u = np.searchsorted(csr.indptr, entry, side="right") - 1
        est.append(metrics.sampled_modularity(labels[u], labels[csr.indices[entry]]))
    est = np.array(est)
    assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(300)
    assert est.std() < 1.5 / np.sqrt(128)


def test_pivot_coordinates_stop_at_the_rank_of_the_rows():
    """Four points span 3 centred dimensions: no fourth direction made of rounding noise."""
    G = np.random.default_rng(1288).standard_normal((4, 48))
    mu = G.mean(axis=0)
    Z, r = KPV.pivot_coordinates(G, mu, 8)
    assert Z.shape[1] == 3
    C = G - mu
    np.testing.assert_allclose((Z**2).sum(axis=1) + r**2, (C**2).sum(axis=1), rtol=1e-12)
    assert np.all(cdist(Z, Z) <= cdist(C, C) * (1 + 1e-12) + 1e-12)


@pytest.mark.parametrize("name", ["gossip_learning", "social_learning", "polarization"])
def test_measures_of_a_large_population_are_the_same_on_one_and_two_threads(name, monkeypatch):
    """Above the serial thresholds the measure kernels run in parallel regions sized by the
    thread chooser; forced onto every thread and onto one, the model table is the same."""
    import numba

    from models import REGISTRY
    from simulator.kernels import measure_weights, threads

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    monkeypatch.setattr(threads, "MIN_WORK_PER_THREAD", 1.0)
    monkeypatch.setattr(threads.CHOOSER, "enabled", False)
    monkeypatch.setattr(measure_weights, "SERIAL_BELOW", 0)  # every measure kernel in parallel
    tables = []
    for n_threads in (2, 1):
        numba.set_num_threads(n_threads)
        try:
            model = REGISTRY[name](rng=2, n_agents=3000)
            model.run_for(2)
            tables.append(model.model_dataframe().to_csv())
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert tables[0] == tables[1]


@pytest.mark.parametrize("kernel", ["joint_failures", "joint_failures_serial"])
def test_joint_failures_equal_the_numpy_count(kernel):
    """Share of items every agent of a group fails on: blocks of groups, counts past 255."""
    rng = np.random.default_rng(9)
    fails = (rng.random((40, 700)) < 0.9).astype(np.uint8)
    groups = rng.integers(0, 40, size=(150, 3))
    out = np.empty(150)
    getattr(KM, kernel)(fails, groups, out)
    np.testing.assert_array_equal(out, fails[groups].all(axis=1).mean(axis=1))


def test_mean_cka_kernel_gives_the_same_bits_on_one_and_two_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    rng = np.random.default_rng(11)
    H = np.tanh(rng.standard_normal((64, 256, 16)) + rng.standard_normal((64, 1, 16)))
    H[3] = 0.25  # a constant agent: its pairs count as 0
    I, J = rng.integers(0, 64, 300), rng.integers(0, 64, 300)
    values = []
    for n_threads in (1, 2):
        numba.set_num_threads(n_threads)
        try:
            for dtype in (np.float32, np.float64):
                values.append(KC.mean_cka_parallel(H.astype(dtype), I, J, 1e-20))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert values[:2] == values[2:]


def _one_hidden_rows(rng, P: int, d_in: int, h: int, d_out: int, bias: bool, ties: bool):
    """Random rows of d_in-h-d_out networks and their layout for measure_align; ``ties``:
    every row has two identical hidden units and a zero unit (assignments with ties)."""
    from simulator.layout import ParamLayout
    from simulator.metrics.align import one_hidden

    layout = ParamLayout((d_in, h, d_out), bias=bias)
    X = rng.standard_normal((P, layout.n_params)) + rng.standard_normal(layout.n_params)
    if ties:
        W1 = X[:, : d_in * h].reshape(P, d_in, h)
        W1[:, :, 1], W1[:, :, 2] = W1[:, :, 0], 0.0
        W2 = X[:, layout.w_offsets[1] : layout.w_offsets[1] + h * d_out].reshape(P, h, d_out)
        W2[:, 1], W2[:, 2] = W2[:, 0], 0.0
        if bias:
            X[:, layout.b_offsets[0] + 1] = X[:, layout.b_offsets[0]]
            X[:, layout.b_offsets[0] + 2] = 0.0
    return X, one_hidden(layout)


def _oracle_align_consensus(X, who, ref, lay, odd, refine):
    """Slow truth: scipy's assignment on S (|S| with sign flips for odd activations) per row,
    kept when not farther from the reference; then ``refine`` times to the mean."""
    w1, b1, w2, _, d_in, h, d_out = (int(v) for v in lay)

    def units(row):
        W = row[w1 : w1 + d_in * h].reshape(d_in, h)
        B = row[b1 : b1 + h] if b1 >= 0 else np.zeros(h)
        V = row[w2 : w2 + h * d_out].reshape(h, d_out)
        return W, B, V

    def align(row, target):
        (Wt, Bt, Vt), (W, B, V) = units(target), units(row)
        S = Wt.T @ W + np.outer(Bt, B) + Vt @ V.T
        _, perm = linear_sum_assignment(-(np.abs(S) if odd else S))
        sign = np.where(odd & (S[np.arange(h), perm] < 0), -1.0, 1.0)
        out = row.copy()
        out[w1 : w1 + d_in * h] = (W[:, perm] * sign).ravel()
        if b1 >= 0:
            out[b1 : b1 + h] = B[perm] * sign
        out[w2 : w2 + h * d_out] = (V[perm] * sign[:, None]).ravel()
        return out if out @ target >= row @ target else row

    rows = np.array([align(X[i].astype(np.float64), ref) for i in who])
    for _ in range(refine):
        center = rows.mean(axis=0)
        rows = np.array([align(r, center) for r in rows])
    return float(((rows - rows.mean(axis=0)) ** 2).sum(axis=1).mean()), rows


@pytest.mark.parametrize("seed", range(6))
def test_align_consensus_matches_scipy_assignments(seed):
    from simulator.kernels import measure_align as KA

    rng = np.random.default_rng(seed)
    d_in, h, d_out = int(rng.integers(1, 6)), int(rng.integers(1, 12)), int(rng.integers(1, 4))
    X, lay = _one_hidden_rows(rng, 40, d_in, h, d_out, bias=seed % 2 == 0, ties=False)
    X = X.astype(np.float32) if seed % 3 == 0 else X
    who = np.sort(rng.choice(40, 25, replace=False)).astype(np.int64)
    ref = X[3].astype(np.float64)
    odd, refine = seed % 2 == 1, seed % 3
    out = np.empty((25, X.shape[1]))
    value = KA.align_consensus(X, who, ref, lay, odd, refine, out)
    truth, rows = _oracle_align_consensus(X, who, ref, lay, odd, refine)
    np.testing.assert_allclose(out, rows, rtol=0, atol=1e-12)
    assert value == pytest.approx(truth, rel=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_align_consensus_is_bit_identical_on_one_and_two_threads_and_serial(ties):
    """Every row's alignment is written by one iteration: the parallel kernel on 1 or 2
    threads, its serial twin and the sized call give the same bits (ties included)."""
    import numba

    from simulator.kernels import measure_align as KA

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    rng = np.random.default_rng(7 + ties)
    X, lay = _one_hidden_rows(rng, 300, 8, 16, 2, bias=True, ties=ties)
    who = np.arange(0, 300, 2, dtype=np.int64)
    ref = X[5].astype(np.float64)
    results = []
    for run in ("two", "one", "serial", "sized"):
        out = np.empty((who.size, X.shape[1]))
        warm = np.zeros((3, who.size, 16))
        numba.set_num_threads(1 if run == "one" else 2)
        try:
            if run == "serial":
                d = KA._align_consensus_serial(X, who, ref, lay, True, 2, warm, out)
            elif run == "sized":
                d = KA.align_consensus(X, who, ref, lay, True, 2, out)
            else:
                d = KA._align_consensus(X, who, ref, lay, True, 2, warm, out)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append((d, out))
    for d, out in results[1:]:
        assert d == results[0][0]
        np.testing.assert_array_equal(out, results[0][1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sweep_decides_pairs_at_eps_by_the_exact_float64_sum(dtype):
    """Radii placed exactly on, and one float64 step around, pairwise distances: the
    vectorized first test must leave those pairs to the sequential float64 sum (_sqdist), so
    the components are those of the exact predicate ``_sqdist < eps^2``."""
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((6, 300))
    F = (centers[rng.integers(0, 6, 120)] + 0.02 * rng.standard_normal((120, 300))).astype(dtype)
    m = F.shape[0]
    exact = np.array([[KM._sqdist(F, i, j, np.inf) for j in range(m)] for i in range(m)])
    for pick in np.sort(exact[0])[1:6]:  # radii among the nearest: most pairs are close calls
        for eps2 in (pick, np.nextafter(pick, np.inf), np.nextafter(pick, 0.0)):
            eps = float(np.sqrt(eps2))
            mu = F.mean(axis=0, dtype=np.float64)
            Z, r = KPV.pivot_coordinates(F, mu, 8)
            order = np.argsort(Z[:, 0], kind="stable")
            parent = np.empty(m, dtype=np.int64)
            KM.sweep_components(
                F,
                order.astype(np.int64),
                np.ascontiguousarray(Z[order]),
                r[order],
                eps,
                1e-9 * eps,
                parent,
            )
            root = np.empty(m, dtype=np.int64)
            root[order] = order[parent]
            truth = connected_components(exact < eps * eps, directed=False)[1]
            pairs = np.unique(np.stack([root, truth]), axis=1)
            assert pairs.shape[1] == len(np.unique(root)) == len(np.unique(truth))


def test_pivot_coordinates_with_a_radius_stop_early_and_stay_exact_bounds():
    """Given the sweep's radius, directions stop once a sample of pairs is mostly pruned (at
    least 3); the coordinates are the same projections, the same bits in parallel and serial."""
    rng = np.random.default_rng(21)
    G = (rng.standard_normal((300, 4)) @ rng.standard_normal((4, 500)) * 3).astype(np.float32)
    G += 0.05 * rng.standard_normal(G.shape).astype(np.float32)
    mu = G.mean(axis=0, dtype=np.float64)
    Z8, _ = KPV.pivot_coordinates(G, mu, 8)
    Z, r = KPV.pivot_coordinates(G, mu, 8, eps=1.0)
    assert 3 <= Z.shape[1] < 8
    np.testing.assert_array_equal(Z, Z8[:, : Z.shape[1]])
    C = G.astype(np.float64) - mu
    np.testing.assert_allclose((Z**2).sum(axis=1) + r**2, (C**2).sum(axis=1), rtol=1e-9)
    for eps in (0.0, 1.0):
        out = []
        for kernel in (KPV._pivot_parallel, KPV._pivot_serial):
            V, Zk, res = np.zeros((8, 500)), np.zeros((300, 8)), np.empty(300)
            out.append((kernel(G, mu, V, Zk, res, eps), Zk, res))
        assert out[0][0] == out[1][0]
        np.testing.assert_array_equal(out[0][1], out[1][1])
        np.testing.assert_array_equal(out[0][2], out[1][2])


def test_pivot_coordinates_go_past_8_directions_while_they_prune_and_clusters_stay_exact():
    """Rows spread over 20 dimensions, with a radius that links few pairs: the first 8
    directions leave most pairs close, the next ones keep pruning, so more are taken (at most
    the cap); the coordinates are the same projections as without a radius, and the clusters
    are the exact components of the pairs closer than eps."""
    rng = np.random.default_rng(5)
    G = rng.standard_normal((400, 20)) @ rng.standard_normal((20, 256)) / np.sqrt(20)
    G = G.astype(np.float32)
    mu = G.mean(axis=0, dtype=np.float64)
    dist = np.sqrt(((G[:, None].astype(np.float64) - G[None]) ** 2).sum(axis=-1))
    eps = float(np.quantile(dist[np.triu_indices(400, 1)], 0.001))
    Z, r = KPV.pivot_coordinates(G, mu, 24, eps)
    Z8, _ = KPV.pivot_coordinates(G, mu, 8, eps)
    assert Z8.shape[1] == 8 and 8 < Z.shape[1] < 24
    np.testing.assert_array_equal(Z[:, :8], Z8)
    C = G.astype(np.float64) - mu
    np.testing.assert_allclose((Z**2).sum(axis=1) + r**2, (C**2).sum(axis=1), rtol=1e-9)
    labels, n, largest = metrics.clusters._components(G, eps, mu)
    truth = connected_components(dist < eps, directed=False)[1]
    assert (n, largest) == (truth.max() + 1, np.bincount(truth).max())
    assert (
        len(np.unique(np.stack([labels, truth]), axis=1).T) == labels.max() + 1 == truth.max() + 1
    )


def test_pivot_coordinates_continue_while_a_high_close_share_keeps_falling():
    """256 rows spread over 20 dimensions (no clusters): past 8 directions each pair of new
    ones prunes less than 2 x 25 / 256 of the sample's close share (the gain rule alone would
    stop), but the share is still above 0.1 and falls by a fifth per two directions, so more are
    taken; the count is where the documented rule stops, and the clusters stay exact."""
    rng = np.random.default_rng(0)
    m = 256
    G = rng.standard_normal((m, 20)) @ rng.standard_normal((20, 256)) / np.sqrt(20)
    G = G.astype(np.float32)
    mu = G.mean(axis=0, dtype=np.float64)
    dist = np.sqrt(((G[:, None].astype(np.float64) - G[None]) ** 2).sum(axis=-1))
    eps = float(np.quantile(dist[np.triu_indices(m, 1)], 0.002))
    Z, _ = KPV.pivot_coordinates(G, mu, 24, eps)
    share = [KPV._close_share(KPV.pivot_coordinates(G, mu, 24)[0], k, eps) for k in range(25)]

    def stops(k):
        gain = 0.5 * (share[k - 2] - share[k]) * m
        falling = share[k] >= 0.1 and share[k] <= 0.8 * share[k - 2]
        return share[k] < 0.05 or (gain < 25 and not falling)

    used = Z.shape[1]
    assert 8 < used < 24
    assert not any(stops(k) for k in range(8, used)) and stops(used)
    assert any(0.5 * (share[k - 2] - share[k]) * m < 25 for k in range(8, used))
    labels, n, largest = metrics.clusters._components(G, eps, mu)
    truth = connected_components(dist < eps, directed=False)[1]
    assert (n, largest) == (truth.max() + 1, np.bincount(truth).max())
    assert (
        len(np.unique(np.stack([labels, truth]), axis=1).T) == labels.max() + 1 == truth.max() + 1
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"labels": np.array([0, 1, 2, 9, -4])}, "labels"),  # 2 classes: only 0 and 1
        ({"labels": np.array([0, 1])}, "labels"),  # one label per probe item
        ({"labels": np.array([0.0, 1, 0, 1, 0])}, "labels"),
        ({"hidden_pos": np.array([0, 99])}, "hidden_pos"),
        ({"hidden_pos": np.array([-1])}, "hidden_pos"),  # no wrap-around to the last row
        ({"hidden_pos": np.array([1, 1])}, "hidden_pos"),
        ({"truth": np.ones((4, 2))}, "truth"),
    ],
)
def test_probe_pass_refuses_indices_the_kernel_would_follow_out_of_range(kwargs, name):
    """Labels and hidden positions index arrays inside the kernel: out of range, they are
    refused by name, before any pass (never read or written out of bounds)."""
    pop = Population(4, layers=(2, 3, 2), output="softmax", seed=0)
    with pytest.raises(ParameterError, match=name):
        metrics.probe_pass(pop, np.ones((5, 2)), Y=np.ones((1, 5, 2)), **kwargs)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_dense_grid_gives_the_keyed_grids_components(q):
    """The small grid's dense numbering (counting sort, neighbours by index arithmetic) finds
    the components the packed keys' walk finds: the same labels by first appearance, the same
    largest size, and both the components of the eps graph."""
    from simulator.kernels import measure as KM
    from simulator.kernels import measure_grid as KG

    for seed in range(6):
        rng = np.random.default_rng(10 * q + seed)
        P = int(rng.integers(1, 3000))
        centres = rng.uniform(-1, 1, (int(rng.integers(1, 12)), q))
        Z = centres[rng.integers(0, len(centres), P)] + rng.normal(0, 0.05, (P, q))
        eps = float(rng.uniform(0.01, 0.2))
        lo, hi = Z.min(axis=0), Z.max(axis=0)
        side, bits, reach = eps / np.sqrt(q), 62 // q, int(np.ceil(np.sqrt(q)))
        extent = np.floor((hi - lo) / side).astype(np.int64) + 1
        cells, keys = np.empty((P, q), dtype=np.int64), np.empty(P, dtype=np.int64)
        KG.cell_keys(Z, lo, side, bits, cells, keys)
        assert (cells < extent).all()
        pts = np.argsort(keys)
        parent, keyed = np.empty(P, dtype=np.int64), np.empty(P, dtype=np.int64)
        KG.grid_components(Z, cells, pts, keys[pts], bits, eps, reach, parent)
        n = KM.first_appearance(parent, keyed)
        dense = np.empty(P, dtype=np.int64)
        scratch = np.empty(P, dtype=np.int64), np.empty(P, dtype=np.int64)
        assert KG.dense_grid_labels(Z, lo, side, extent, eps, reach, dense, *scratch) == (
            n,
            np.bincount(keyed).max(),
        )
        np.testing.assert_array_equal(dense, keyed)
        truth = connected_components(cdist(Z, Z) < eps, directed=False)[1]
        assert len(np.unique(np.stack([dense, truth]), axis=1).T) == n == truth.max() + 1


def test_grid_bounds_are_the_column_extremes_and_see_any_non_finite_value():
    from simulator.kernels import measure_grid as KG

    rng = np.random.default_rng(7)
    for q in (1, 2, 3):
        Z = rng.standard_normal((1001, q)) * 10.0 ** rng.integers(-3, 4, q)
        lo, hi = np.empty(q), np.empty(q)
        assert KG.bounds(Z, lo, hi)
        np.testing.assert_array_equal(lo, Z.min(axis=0))
        np.testing.assert_array_equal(hi, Z.max(axis=0))
        for bad in (np.nan, np.inf, -np.inf):
            W = Z.copy()
            W[int(rng.integers(1001)), int(rng.integers(q))] = bad
            assert not KG.bounds(W, lo, hi)
