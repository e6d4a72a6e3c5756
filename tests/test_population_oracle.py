"""Population.train_step / predict / loss against the NumPy oracle in tests/oracle.py.

Tolerances (``assert_allclose``, |a - b| <= atol + rtol |b|):
float64: rtol = 1e-12, atol = 1e-12 on losses, parameters and outputs after 5 steps
(atol = 1e-10 on Adam's parameters, see ADAM_PARAMS_ATOL64);
float32: rtol = 1e-4, atol = 2e-6 (the oracle runs in float64 from the same float32 start
and float32-rounded data). Batches of 8 samples x 2 outputs and power-of-two learning rates keep
the perceptron rule's updates exact, so a step output never flips on a rounding residue.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import OUTPUT_LOSS, OraclePopulation, agent_gradients, make_data

from simulator import ParameterError, Population

ACTIVATIONS = ("identity", "step", "sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "momentum", "adam")
BASE_LR = {"sgd": 0.25, "momentum": 0.125, "adam": 0.03125}
TOL = {"float64": {"rtol": 1e-12, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 2e-6}}
# Adam divides by sqrt(v) + eps: where a gradient is zero in exact arithmetic (common with step
# activations, whose deltas cancel exactly) a rounding residue of ~1e-18 moves a parameter by up
# to lr * 1e-18 / eps ~ 1e-11. Its float64 parameters are compared with atol = 1e-10.
ADAM_PARAMS_ATOL64 = 1e-10
N_AGENTS, BATCH, STEPS = 4, 8, 5


def _pair(dtype, layers, activation, output, loss, optimizer, seed=0, **opt_kwargs):
    """A Population and an oracle that start from the same parameters."""
    lr = BASE_LR[optimizer] * np.array([1.0, 0.5, 0.0, 2.0])[:N_AGENTS]
    pop = Population(
        n_agents=N_AGENTS,
        layers=layers,
        activation=activation,
        output=output,
        loss=loss,
        optimizer=optimizer,
        lr=lr,
        dtype=dtype,
        seed=seed,
        **opt_kwargs,
    )
    oracle = OraclePopulation(
        pop.params.astype(np.float64),
        layers,
        activation,
        output,
        loss,
        optimizer,
        lr.astype(dtype).astype(np.float64),
        opt_kwargs,
    )
    return pop, oracle


def _run_and_compare(pop, oracle, data, dtype):
    tol = TOL[dtype]
    start = pop.params.copy()
    for X, Y in data:
        X32, Y32 = X.astype(dtype), Y.astype(dtype)  # what the kernel sees
        got = pop.train_step(X32, Y32)
        want = oracle.train_step(X32.astype(np.float64), Y32.astype(np.float64))
        np.testing.assert_allclose(got, want, **tol, err_msg="losses")
    if dtype == "float64" and pop.optimizer == "adam":
        tol = {**tol, "atol": ADAM_PARAMS_ATOL64}
    np.testing.assert_allclose(pop.params, oracle.params, **tol, err_msg="params")
    X32 = data[0][0].astype(dtype)
    np.testing.assert_allclose(pop.predict(X32), oracle.predict(X32.astype(np.float64)), **tol)
    # lr = 0 freezes agent 2 exactly; the others moved.
    np.testing.assert_array_equal(pop.params[2], start[2])
    assert not np.array_equal(pop.params[0], start[0])


def _batches(rng, layers, output, loss, shared_x, soft=True):
    return [
        make_data(rng, layers, output, loss, N_AGENTS, BATCH, shared_x, soft) for _ in range(STEPS)
    ]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("layers", "shared_x"), [((3, 5, 2), False), ((3, 4, 4, 2), True)])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(("output", "loss"), OUTPUT_LOSS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_valid_combination_matches_oracle(
    activation, output, loss, optimizer, layers, shared_x, dtype
):
    pop, oracle = _pair(dtype, layers, activation, output, loss, optimizer)
    rng = np.random.default_rng(1)
    data = _batches(rng, layers, output, loss, shared_x)
    _run_and_compare(pop, oracle, data, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_per_agent_data_on_deep_network_and_shared_data_on_shallow_match_oracle(
    activation, optimizer, dtype
):
    for layers, shared_x in (((3, 4, 4, 2), False), ((3, 5, 2), True)):
        for output, loss in (("linear", "mse"), ("softmax", "cross_entropy")):
            pop, oracle = _pair(dtype, layers, activation, output, loss, optimizer, seed=3)
            data = _batches(np.random.default_rng(4), layers, output, loss, shared_x, soft=False)
            _run_and_compare(pop, oracle, data, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_weight_decay_and_clipping_match_oracle(optimizer, dtype):
    layers = (3, 5, 2)
    pop, oracle = _pair(dtype, layers, "tanh", "linear", "mse", optimizer, seed=5)
    data = _batches(np.random.default_rng(6), layers, "linear", "mse", False)
    # Clip between the smallest and largest gradient norm so it binds for some agents only.
    norms = np.linalg.norm(oracle.gradients(*data[0])[0], axis=1)[[0, 1, 3]]
    assert norms.max() > 1.1 * norms.min()
    clip = float(np.sqrt(norms.min() * norms.max()))
    kwargs = {"weight_decay": 0.05, "clip_norm": clip}
    pop, oracle = _pair(dtype, layers, "tanh", "linear", "mse", optimizer, seed=5, **kwargs)
    _run_and_compare(pop, oracle, data, dtype)
    # The two knobs change the result (so the comparison above tested them).
    plain = _pair(dtype, layers, "tanh", "linear", "mse", optimizer, seed=5)[0]
    for X, Y in data:
        plain.train_step(X.astype(dtype), Y.astype(dtype))
    assert np.abs(plain.params - pop.params).max() > 1e-3


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_constants_are_used(optimizer):
    layers = (3, 5, 2)
    kwargs = {"momentum": 0.5, "beta1": 0.7, "beta2": 0.9, "eps": 1e-3}
    pop, oracle = _pair("float64", layers, "sigmoid", "sigmoid", "bce", optimizer, 7, **kwargs)
    data = _batches(np.random.default_rng(8), layers, "sigmoid", "bce", False)
    _run_and_compare(pop, oracle, data, "float64")


def test_mixed_hidden_activations_match_oracle():
    layers = (3, 4, 4, 2)
    acts = ("relu", "tanh")
    pop, oracle = _pair("float64", layers, acts, "softmax", "cross_entropy", "adam", seed=9)
    data = _batches(np.random.default_rng(10), layers, "softmax", "cross_entropy", False)
    _run_and_compare(pop, oracle, data, "float64")


def test_single_layer_network_matches_oracle():
    layers = (4, 3)
    pop, oracle = _pair("float64", layers, "tanh", "softmax", "cross_entropy", "momentum", 11)
    data = _batches(np.random.default_rng(12), layers, "softmax", "cross_entropy", True)
    _run_and_compare(pop, oracle, data, "float64")


def test_integer_labels_equal_one_hot_targets_for_cross_entropy():
    layers = (3, 5, 4)
    rng = np.random.default_rng(13)
    X = rng.standard_normal((N_AGENTS, BATCH, 3))
    labels = rng.integers(0, 4, (N_AGENTS, BATCH))
    a = Population(N_AGENTS, layers, output="softmax", loss="cross_entropy", dtype="float64")
    b = Population(N_AGENTS, layers, output="softmax", loss="cross_entropy", dtype="float64")
    np.testing.assert_array_equal(a.train_step(X, labels), b.train_step(X, np.eye(4)[labels]))
    np.testing.assert_array_equal(a.params, b.params)
    shared = labels[0]  # (B,) labels shared by every agent
    np.testing.assert_array_equal(a.loss(X, shared), b.loss(X, np.eye(4)[shared]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("output", "loss"), OUTPUT_LOSS)
def test_loss_and_hidden_layer_predictions_match_oracle(output, loss, dtype):
    layers = (3, 4, 5, 2)
    pop, oracle = _pair(dtype, layers, ("tanh", "relu"), output, loss, "sgd", seed=14)
    X, Y = make_data(np.random.default_rng(15), layers, output, loss, N_AGENTS, BATCH)
    X, Y = X.astype(dtype), Y.astype(dtype)
    tol = TOL[dtype]
    want_losses = oracle.gradients(X, Y)[1]
    np.testing.assert_allclose(pop.loss(X, Y), want_losses, **tol)
    zs = oracle.pre_activations(X.astype(np.float64))
    np.testing.assert_allclose(pop.predict(X, layer=1), np.tanh(zs[0]), **tol)
    np.testing.assert_allclose(pop.predict(X, layer=2), np.maximum(zs[1], 0), **tol)
    np.testing.assert_allclose(pop.predict(X), oracle.predict(X), **tol)
    agents = np.array([3, 1])
    np.testing.assert_allclose(
        pop.predict(X[agents], agents=agents), oracle.predict(X)[agents], **tol
    )
    np.testing.assert_allclose(pop.agent(1).predict(X[1]), oracle.predict(X)[1], **tol)


@pytest.mark.parametrize(
    ("output", "loss"),
    [
        ("linear", "bce"),
        ("softmax", "bce"),
        ("step", "bce"),
        ("linear", "cross_entropy"),
        ("sigmoid", "cross_entropy"),
        ("step", "cross_entropy"),
    ],
)
def test_invalid_output_loss_pairs_raise_naming_output(output, loss):
    with pytest.raises(ParameterError, match=r"output='" + output + "'.*loss='" + loss):
        Population(4, (3, 5, 2), output=output, loss=loss)


# ---------------------------------------------------------------- finite differences (float64)
SMOOTH = ("identity", "tanh", "sigmoid", "relu")
SMOOTH_PAIRS = OUTPUT_LOSS[:3] + OUTPUT_LOSS[4:]  # every output but the step
FD_STEP = 1e-6


def _fd_setup(activation, output, loss, layers, seed):
    pop = Population(
        N_AGENTS, layers, activation, output, loss, dtype="float64", seed=seed, init_scale=1.5
    )
    rng = np.random.default_rng(seed + 100)
    for l in range(pop.layout.n_layers):  # nonzero biases: a generic point
        pop.params[:, pop.layout.bias_slice(l)] = rng.normal(0, 0.5, (N_AGENTS, layers[l + 1]))
    X, Y = make_data(rng, layers, output, loss, N_AGENTS, BATCH)
    if activation == "relu":  # stay away from the kink: every |z| well above the FD step
        oracle = OraclePopulation(pop.params, layers, activation, output, loss)
        assert min(np.abs(z).min() for z in oracle.pre_activations(X)[:-1]) > 100 * FD_STEP
    return pop, X, Y


def _losses_of_many(pop, params, X, Y):
    """Losses of a population of ``params`` rows (same architecture as ``pop``) in one call."""
    twin = Population.from_params(
        np.ascontiguousarray(params),
        pop.layers,
        activation=pop.activation,
        output=pop.output,
        loss=pop.loss_name,
    )
    return twin.loss(X, Y)


@pytest.mark.parametrize("layers", [(3, 5, 2), (3, 4, 4, 2)])
@pytest.mark.parametrize(("output", "loss"), SMOOTH_PAIRS)
@pytest.mark.parametrize("activation", SMOOTH)
def test_gradients_match_central_differences(activation, output, loss, layers):
    pop, X, Y = _fd_setup(activation, output, loss, layers, seed=len(layers))
    grads, losses = pop.gradients(X, Y)
    np.testing.assert_array_equal(losses, pop.loss(X, Y))
    # Agents are independent: one population holds every +h and -h copy of every agent.
    P, n = pop.params.shape
    shift = FD_STEP * np.eye(n)  # (n, n): row k perturbs parameter k
    rows = pop.params[:, None, None, :] + np.stack([shift, -shift])[None]  # (P, 2, n, n)
    rep = lambda A: np.repeat(A, 2 * n, axis=0)  # noqa: E731 - (P, ...) -> (P * 2n, ...)
    out = _losses_of_many(pop, rows.reshape(-1, n), rep(X), rep(Y)).reshape(P, 2, n)
    fd = (out[:, 0] - out[:, 1]) / (2 * FD_STEP)
    np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-8)
    assert np.abs(grads).max() > 1e-3
    want = OraclePopulation(pop.params, layers, activation, output, loss).gradients(X, Y)[0]
    np.testing.assert_allclose(grads, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("output", "loss"), SMOOTH_PAIRS)
@pytest.mark.parametrize("activation", SMOOTH)
def test_input_gradients_match_central_differences(activation, output, loss):
    layers = (3, 4, 4, 2)
    pop, X, Y = _fd_setup(activation, output, loss, layers, seed=21)
    dx = pop.input_gradients(X, Y)
    assert dx.shape == X.shape
    P, B, d = X.shape
    shift = FD_STEP * np.eye(B * d).reshape(B * d, B, d)  # row k perturbs input k
    Xs = X[:, None, None] + np.stack([shift, -shift])[None]  # (P, 2, B d, B, d)
    params = np.repeat(pop.params, 2 * B * d, axis=0)
    out = _losses_of_many(pop, params, Xs.reshape(-1, B, d), np.repeat(Y, 2 * B * d, axis=0))
    out = out.reshape(P, 2, B, d)
    fd = (out[:, 0] - out[:, 1]) / (2 * FD_STEP)
    np.testing.assert_allclose(dx, fd, rtol=1e-6, atol=1e-8)
    want = OraclePopulation(pop.params, layers, activation, output, loss).gradients(X, Y)[2]
    np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_loss_gradients_and_predict_leave_state_untouched(optimizer, dtype):
    layers = (3, 5, 2)
    a, _ = _pair(dtype, layers, "tanh", "softmax", "cross_entropy", optimizer)
    b, _ = _pair(dtype, layers, "tanh", "softmax", "cross_entropy", optimizer)
    data = _batches(np.random.default_rng(22), layers, "softmax", "cross_entropy", False)
    for X, Y in data:
        before = a.params.copy()
        loss = a.loss(X, Y)
        a.gradients(X, Y)
        a.input_gradients(X, Y)
        a.predict(X)
        np.testing.assert_array_equal(a.params, before)
        reported = a.train_step(X, Y)
        np.testing.assert_array_equal(reported, loss)
        np.testing.assert_array_equal(reported, b.train_step(X, Y))
    np.testing.assert_array_equal(a.params, b.params)  # optimizer state untouched as well


# ---------------------------------------------------------------- perceptron
def test_step_output_update_is_the_perceptron_rule():
    rng = np.random.default_rng(30)
    P, B, d, K = 3, 7, 4, 2
    pop = Population(P, (d, K), output="step", loss="mse", lr=[0.1, 0.3, 1.0], dtype="float64")
    W, b = (a.copy() for a in pop.layout.unravel(pop.params)[0])  # (P, d, K), (P, K)
    X = rng.standard_normal((P, B, d))
    Y = (rng.random((P, B, K)) < 0.5).astype(float)
    out = (np.einsum("pbi,pik->pbk", X, W) + b[:, None] > 0).astype(float)
    assert 0 < np.abs(Y - out).sum() < Y.size  # some right, some wrong
    lr = np.array([0.1, 0.3, 1.0])[:, None, None]
    err = Y - out  # (P, B, K): +1 missed positive, -1 false positive, 0 right
    W_new = W + lr * np.einsum("pbi,pbk->pik", X, err) / (B * K)  # w += lr mean_b (y - o) x / K
    b_new = b + lr[:, 0] * err.sum(axis=1) / (B * K)
    pop.train_step(X, Y)
    ((W_got, b_got),) = pop.layout.unravel(pop.params)
    np.testing.assert_allclose(W_got, W_new, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(b_got, b_new, rtol=1e-14, atol=1e-15)


def test_perceptron_learns_separable_data_within_the_novikoff_bound():
    rng = np.random.default_rng(31)
    P, n, d = 4, 60, 3
    u = np.array([1.0, -2.0, 0.5, 0.3])  # separator (w, bias) in the augmented space (x, 1)
    X = rng.uniform(-1, 1, (P, 4 * n, d))
    margin = (X @ u[:d] + u[d]) / np.linalg.norm(u)
    keep = np.abs(margin) > 0.1
    X = np.stack([X[p][keep[p]][:n] for p in range(P)])  # (P, n, d), every |margin| > 0.1
    Y = (X @ u[:d] + u[d] > 0).astype(float)[..., None]
    gamma = np.min(np.abs(X @ u[:d] + u[d])) / np.linalg.norm(u)
    R = np.max(np.linalg.norm(np.concatenate([X, np.ones((P, n, 1))], axis=2), axis=2))
    params = np.zeros((P, d + 1))  # start at w = 0, b = 0 (the bound assumes it)
    pop = Population.from_params(params, (d, 1), output="step", loss="mse", lr=1.0)
    mistakes = np.zeros(P, dtype=int)
    for _epoch in range(int((R / gamma) ** 2) + 1):  # online: one sample per step
        for i in range(n):
            x, y = X[:, i : i + 1], Y[:, i : i + 1]
            mistakes += (pop.predict(x) != y).ravel()
            pop.train_step(x, y)
        if np.all(pop.predict(X) == Y):
            break
    np.testing.assert_array_equal(pop.predict(X), Y)  # 100 % training accuracy
    assert np.all(mistakes <= (R / gamma) ** 2)  # Novikoff (1962)
    assert np.all(mistakes > 0)


# Every layer goes through the register-tile products (simulator.kernels.gemm); the other oracle
# tests use small nets and batches. These add wide layers: widths and batches that are multiples
# of the SIMD width and some that are not (edge tiles, scalar tails), weight gradients of wide
# layers (transposed delta) and of narrow ones (dot-product tiles), three layers.
TILE_SHAPES = [((64, 64, 10), 64), ((45, 70, 12), 59), ((40, 36, 20, 3), 53)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shared_x", [False, True])
@pytest.mark.parametrize(("layers", "batch"), TILE_SHAPES)
def test_wide_layers_match_oracle(layers, batch, shared_x, dtype):
    """Training, gradients and input gradients of wide layers."""
    pop, oracle = _pair(dtype, layers, "tanh", "softmax", "cross_entropy", "momentum")
    rng = np.random.default_rng(7)
    data = [
        make_data(rng, layers, "softmax", "cross_entropy", N_AGENTS, batch, shared_x, True)
        for _ in range(3)
    ]
    _run_and_compare(pop, oracle, data, dtype)
    X, Y = (a.astype(dtype) for a in data[0])
    grads, _ = pop.gradients(X, Y)
    dx = pop.input_gradients(X, Y)
    tol = TOL[dtype]
    for p in range(N_AGENTS):
        x, y = (X.reshape(-1, *X.shape[-2:])[0] if shared_x else X[p]), Y[p]
        _, g, d = agent_gradients(
            pop.params[p].astype(np.float64),
            layers,
            "tanh",
            "softmax",
            "cross_entropy",
            x.astype(np.float64),
            y.astype(np.float64),
        )
        np.testing.assert_allclose(grads[p], g, **tol)
        np.testing.assert_allclose(dx[p], d, **tol)
