"""Small networks trained side by side, one agent per SIMD lane (simulator.kernels.lanes):
the lane products against NumPy, the whole pass against the register-tile kernel, and each
agent's result independent of the lane and the chunk it lands in."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from simulator import Population
from simulator.config import ParameterError
from simulator.kernels import lanes
from simulator.kernels import mlp as K


# fmt: off
@njit
def _products(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init, i_off,
              i_step, use_init, post, p_off, p_step, use_post, n_rows):
    lanes.lane_products(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k,
                        init, i_off, i_step, use_init, post, p_off, p_step, use_post, n_rows)


@njit
def _products_2(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k, init,
                i_off, i_step, use_init, post, p_off, p_step, use_post, n_rows, c_col, a_col):
    lanes.lane_products_2(c, c_off, c_step, a, a_off, a_step, b, b_off, b_kstep, b_rstep, n_k,
                          init, i_off, i_step, use_init, post, p_off, p_step, use_post, n_rows,
                          c_col, a_col)
# fmt: on


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_rows", [1, 3, 8, 11, 19])
@pytest.mark.parametrize("use_init, use_post", [(False, False), (True, True)])
def test_two_column_products_are_two_one_column_products(dtype, n_rows, use_init, use_post):
    """lane_products_2 gives the bits of lane_products called for each column, and writes
    nothing else."""
    V = lanes.lanes_of(dtype)
    rng = np.random.default_rng(n_rows + 50)
    n_k = 9
    a = rng.standard_normal((3 * n_k + 8) * V).astype(dtype)
    b = rng.standard_normal((n_k * n_rows + 3) * V).astype(dtype)
    init = rng.standard_normal((n_rows + 1) * V).astype(dtype)
    post = rng.standard_normal((n_rows + 2) * V).astype(dtype)
    # column s: C at (1 + s (2 R + 1) + 2 r) V, A[s, k] at (3 + 5 s + 3 k) V
    got = np.full((4 * n_rows + 4) * V, np.nan, dtype)
    want = got.copy()
    # fmt: off
    _products_2(got, V, 2 * V, a, 3 * V, 3 * V, b, 3 * V, n_rows * V, V, n_k, init, V, V,
                use_init, post, 2 * V, V, use_post, n_rows, (2 * n_rows + 1) * V, 5 * V)
    for s in range(2):
        _products(want, (1 + s * (2 * n_rows + 1)) * V, 2 * V, a, (3 + 5 * s) * V, 3 * V, b,
                  3 * V, n_rows * V, V, n_k, init, V, V, use_init, post, 2 * V, V, use_post,
                  n_rows)
    # fmt: on
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).sum() == 2 * n_rows * V


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_rows", [1, 3, 8, 11, 19])
@pytest.mark.parametrize("use_init, use_post", [(False, False), (True, False), (True, True)])
def test_lane_products_match_numpy(dtype, n_rows, use_init, use_post):
    V = lanes.lanes_of(dtype)
    rng = np.random.default_rng(n_rows)
    n_k = 7
    # A[k] at (2 + 3 k) V, B[k, r] at (5 + 2 (k R + r)) V, init[r] at (1 + r) V, C[r] at
    # (1 + 3 r) V, post[r] at 2 r V
    a = rng.standard_normal((n_k + 2) * 3 * V).astype(dtype)
    b = rng.standard_normal((n_k * n_rows * 2 + 5) * V).astype(dtype)
    init = rng.standard_normal((n_rows + 1) * V).astype(dtype)
    post = rng.standard_normal(n_rows * 2 * V).astype(dtype)
    c = np.full((n_rows * 3 + 1) * V, np.nan, dtype)
    # fmt: off
    _products(c, V, 3 * V, a, 2 * V, 3 * V, b, 5 * V, 2 * n_rows * V, 2 * V, n_k, init, V, V,
              use_init, post, 0, 2 * V, use_post, n_rows)
    # fmt: on
    A = np.stack([a[(2 + 3 * k) * V : (3 + 3 * k) * V] for k in range(n_k)]).astype(np.float64)
    for r in range(n_rows):
        B = np.stack(
            [b[(5 + 2 * (k * n_rows + r)) * V : (6 + 2 * (k * n_rows + r)) * V] for k in range(n_k)]
        )
        want = (A * B).sum(axis=0)
        if use_init:
            want += init[(1 + r) * V : (2 + r) * V]
        if use_post:
            want *= post[2 * r * V : (2 * r + 1) * V]
        got = c[(1 + 3 * r) * V : (2 + 3 * r) * V]
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)
    untouched = np.ones(c.shape[0], bool)
    for r in range(n_rows):
        untouched[(1 + 3 * r) * V : (2 + 3 * r) * V] = False
    assert np.isnan(c[untouched]).all()  # nothing written outside the rows


CONFIGS = [
    dict(layers=(8, 16, 1), activation="tanh", output="linear", loss="mse", optimizer="sgd"),
    dict(layers=(8, 16, 1), activation="tanh", output="linear", loss="mse", optimizer="sgd",
         weight_decay=0.01),
    dict(layers=(8, 16, 1), activation="tanh", output="linear", loss="mse", optimizer="sgd",
         clip_norm=0.5),
    dict(layers=(3, 5, 2), activation="sigmoid", output="sigmoid", loss="bce",
         optimizer="momentum"),
    dict(layers=(4, 8, 8, 3), activation="relu", output="softmax", loss="cross_entropy",
         optimizer="adam"),
    dict(layers=(2, 1), activation="tanh", output="step", loss="mse", optimizer="sgd"),
    dict(layers=(5, 16, 4), activation="identity", output="sigmoid", loss="mse",
         optimizer="adam"),
    dict(layers=(1, 1), activation="tanh", output="linear", loss="mse", optimizer="sgd"),
    dict(layers=(3, 6, 3), activation="tanh", output="linear", loss="mse",
         optimizer="momentum"),
]  # fmt: skip


def _data(layers, loss, P, B, dtype, rng, shared_x=False):
    X = rng.standard_normal((1 if shared_x else P, B, layers[0])).astype(dtype)
    if loss == "cross_entropy":
        Y = np.eye(layers[-1], dtype=dtype)[rng.integers(0, layers[-1], (P, B))]
    elif loss == "bce":
        Y = (rng.random((P, B, layers[-1])) < 0.5).astype(dtype)
    else:
        Y = rng.standard_normal((P, B, layers[-1])).astype(dtype)
    return X, Y


def _register_tiles(monkeypatch):
    monkeypatch.setattr(lanes, "eligible", lambda net, mode, batch=32: False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c["layers"])))
@pytest.mark.parametrize("shared_x", [False, True])
def test_lanes_match_the_register_tile_kernel(config, dtype, shared_x, monkeypatch):
    assert lanes.eligible(Population(2, **config)._net, K.MODE_TRAIN)
    P, B = 37, 16  # not a multiple of any lane count: a partial last chunk
    rng = np.random.default_rng(3)
    X, Y = _data(config["layers"], config["loss"], P, B, dtype, rng, shared_x)
    side = Population(P, dtype=dtype, seed=1, lr=0.05, **config)
    own = Population(P, dtype=dtype, seed=1, lr=0.05, **config)
    got = [side.train_step(X, Y) for _ in range(3)] + [side.loss(X, Y)]
    got_grads = side.gradients(X, Y)
    with monkeypatch.context() as m:
        _register_tiles(m)
        want = [own.train_step(X, Y) for _ in range(3)] + [own.loss(X, Y)]
        want_grads = own.gradients(X, Y)
    # two summation orders, three Adam steps (which scale tiny gradients up): float32 last bits
    tol = dict(rtol=1e-3, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, **tol)
    np.testing.assert_allclose(side.params, own.params, **tol)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c["layers"])))
def test_lanes_report_the_losses_of_the_register_tiles_to_the_last_bit(config, dtype, monkeypatch):
    """Same parameters, same data: the losses of a gradient pass and of a training step in lanes
    (MSE with a linear output side by side, the others agent by agent) are the bits of the
    register tiles' and of ``Population.loss``."""
    P, B = 37, 13  # B K not a multiple of 4 for every K: the rest part of the sum is used
    rng = np.random.default_rng(5)
    X, Y = _data(config["layers"], config["loss"], P, B, dtype, rng)
    pop = Population(P, dtype=dtype, seed=3, lr=0.05, **config)
    start = pop.params.copy()
    in_lanes = pop.gradients(X, Y)[1]
    with monkeypatch.context() as m:
        _register_tiles(m)
        in_tiles = pop.gradients(X, Y)[1]
    np.testing.assert_array_equal(in_lanes, in_tiles)
    np.testing.assert_array_equal(in_lanes, pop.loss(X, Y))  # a loss pass in lanes
    with monkeypatch.context() as m:
        _register_tiles(m)
        np.testing.assert_array_equal(pop.loss(X, Y), in_tiles)
    np.testing.assert_array_equal(pop.train_step(X, Y), in_tiles)
    pop.params[:] = start
    with monkeypatch.context() as m:
        _register_tiles(m)
        np.testing.assert_array_equal(pop.train_step(X, Y), in_tiles)


def _squares_in_order(d: np.ndarray):
    """losses.squares_in_order's stated order, in NumPy scalars of d's dtype."""
    n = d.size
    whole = n // 4 * 4
    parts = [d.dtype.type(0)] * 5
    for e in range(n):
        parts[e % 4 if e < whole else 4] += d[e] * d[e]
    return ((parts[0] + parts[1]) + (parts[2] + parts[3])) + parts[4]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers, B", [((8, 16, 1), 32), ((3, 6, 3), 13), ((2, 5), 7)])
def test_an_mse_loss_is_summed_in_its_stated_order(layers, B, dtype):
    """An agent's MSE loss is sum((o - y)^2) over its (K, B) errors, output-major, in the order
    losses.squares_in_order states (parts e mod 4, then the rest), times 1 / (B K): in a loss
    pass (register tiles), a gradient pass and a training step (lanes)."""
    P = 20
    rng = np.random.default_rng(6)
    X, Y = _data(layers, "mse", P, B, dtype, rng)
    pop = Population(P, layers=layers, dtype=dtype, seed=4, lr=0.05, output="linear", loss="mse")
    errors = pop.predict(X) - Y  # (P, B, K), the outputs the loss pass computes
    inv = np.dtype(dtype).type(1.0 / (B * layers[-1]))
    want = np.array([_squares_in_order(e.T.ravel()) * inv for e in errors])
    assert want.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(pop.loss(X, Y), want)
    np.testing.assert_array_equal(pop.gradients(X, Y)[1], want)
    np.testing.assert_array_equal(pop.train_step(X, Y), want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS[:5], ids=lambda c: "-".join(map(str, c["layers"])))
def test_an_agents_result_does_not_depend_on_its_lane(config, dtype):
    """Agents 5..36 trained in a population of 37 and alone in a population of 32 (other lanes,
    other chunks, a full last chunk instead of a partial one): the same bits."""
    P, B = 37, 16
    rng = np.random.default_rng(4)
    X, Y = _data(config["layers"], config["loss"], P, B, dtype, rng)
    whole = Population(P, dtype=dtype, seed=2, lr=0.05, **config)
    part = Population(P - 5, dtype=dtype, seed=2, lr=0.05, **config)
    part.params[:] = whole.params[5:]
    for _ in range(3):
        lw = whole.train_step(X, Y)
        lp = part.train_step(X[5:], Y[5:])
        np.testing.assert_array_equal(lp, lw[5:])
    np.testing.assert_array_equal(part.params, whole.params[5:])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bad_inputs_and_targets_stop_only_their_agents(dtype, monkeypatch):
    config = CONFIGS[0]
    P, B = 37, 16
    rng = np.random.default_rng(5)
    X, Y = _data(config["layers"], config["loss"], P, B, dtype, rng)
    X[3, 2, 0] = np.nan
    Y[20, 1, 0] = np.inf
    side = Population(P, dtype=dtype, seed=1, **config)
    own = Population(P, dtype=dtype, seed=1, **config)
    with pytest.raises(ParameterError, match=r"agents \[3\]") as got:
        side.train_step(X, Y)
    with monkeypatch.context() as m:
        _register_tiles(m)
        with pytest.raises(ParameterError) as want:
            own.train_step(X, Y)
    assert str(got.value) == str(want.value)
    before = Population(P, dtype=dtype, seed=1, **config).params
    np.testing.assert_array_equal(side.params[[3, 20]], before[[3, 20]])
    assert not np.array_equal(side.params[4], before[4])
    np.testing.assert_allclose(side.params, own.params, rtol=2e-4, atol=2e-6)


def test_which_networks_and_passes_run_in_lanes():
    def net(layers, **kw):
        return Population(2, layers, **kw)._net

    assert lanes.eligible(net((8, 16, 1)), K.MODE_TRAIN)
    assert lanes.eligible(net((8, 16, 1)), K.MODE_LOSS)
    assert lanes.eligible(net((8, 16, 1)), K.MODE_GRAD)
    assert not lanes.eligible(net((8, 16, 1)), K.MODE_INPUT_GRAD)
    assert not lanes.eligible(net((8, lanes.LANE_MAX_WIDTH + 1, 1)), K.MODE_TRAIN)
    assert not lanes.eligible(net((8, 16, 1), activation="step"), K.MODE_TRAIN)
    # lanes where an agent's products are small: a longer batch fills the tiles
    assert lanes.eligible(net((8, 16, 1)), K.MODE_TRAIN, batch=32)
    assert not lanes.eligible(net((8, 16, 1)), K.MODE_TRAIN, batch=64)
    assert lanes.eligible(net((1, 1)), K.MODE_TRAIN, batch=4096)


def test_a_long_batch_trains_in_the_register_tiles_the_same_as_before(monkeypatch):
    pop = Population(3, (2, 4, 1), seed=0, lr=0.1)
    twin = Population(3, (2, 4, 1), seed=0, lr=0.1)
    rng = np.random.default_rng(0)
    B = 1_000  # 12,000 multiply-adds a pass: over LANE_MAX_MACS
    X = rng.standard_normal((3, B, 2)).astype(np.float32)
    Y = rng.standard_normal((3, B, 1)).astype(np.float32)
    assert not lanes.eligible(pop._net, K.MODE_TRAIN, B)
    pop.train_step(X, Y)
    with monkeypatch.context() as m:
        _register_tiles(m)
        twin.train_step(X, Y)
    np.testing.assert_array_equal(pop.params, twin.params)
