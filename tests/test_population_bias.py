"""Bias-free layers: ``Population(..., bias=False)`` against the oracle, finite differences and
the least-squares normal equations.

Tolerances as in tests/test_population_oracle.py (float64 rtol = atol = 1e-12; float32 rtol 1e-4,
atol 2e-6). Without biases a layer computes ``W^T a``; the oracle (tests/oracle.py,
``bias=False``) sets every bias to the constant 0 and leaves it out of the rows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from oracle import OUTPUT_LOSS, OraclePopulation, agent_gradients, make_data

from simulator import ParameterError, Population
from simulator.layout import ParamLayout

TOL = {"float64": {"rtol": 1e-12, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 2e-6}}
BASE_LR = {"sgd": 0.25, "momentum": 0.125, "adam": 0.03125}
N_AGENTS, BATCH, STEPS = 4, 8, 5
FD_STEP = 1e-6


def _pair(dtype, layers, activation, output, loss, optimizer, seed=0):
    lr = BASE_LR[optimizer] * np.array([1.0, 0.5, 0.0, 2.0])
    pop = Population(
        N_AGENTS,
        layers,
        activation,
        output,
        loss,
        optimizer,
        lr=lr,
        dtype=dtype,
        seed=seed,
        bias=False,
    )
    oracle = OraclePopulation(
        pop.params.astype(np.float64),
        layers,
        activation,
        output,
        loss,
        optimizer,
        lr.astype(dtype).astype(np.float64),
        bias=False,
    )
    return pop, oracle


# ---------------------------------------------------------------- layout and views
@pytest.mark.parametrize("layers", [(3, 5, 2), (4, 1), (2, 7, 6, 3)])
def test_layout_without_bias_holds_only_the_weights(layers):
    with_b, without = ParamLayout(layers), ParamLayout(layers, bias=False)
    weights = sum(a * b for a, b in itertools.pairwise(layers))
    assert without.n_params == weights == with_b.n_params - sum(layers[1:])
    row = np.arange(without.n_params, dtype=np.float64)
    parts = without.unravel(row)
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w, _ in parts]), row)
    for l, (w, b) in enumerate(parts):
        assert w.shape == (layers[l], layers[l + 1]) and np.shares_memory(w, row)
        assert b.shape == (layers[l + 1],) and not b.flags.writeable and not b.any()
        assert without.bias_slice(l).stop == without.bias_slice(l).start  # empty
    np.testing.assert_array_equal(without.ravel(parts), row)
    rows = np.stack([row, -row])  # a batch of rows
    np.testing.assert_array_equal(without.ravel(without.unravel(rows)), rows)
    assert without.unravel(rows)[0][1].shape == (2, layers[1])


def test_ravel_without_bias_refuses_nonzero_biases():
    layout = ParamLayout((3, 2), bias=False)
    with pytest.raises(ValueError, match="bias"):
        layout.ravel([(np.ones((3, 2)), np.array([0.0, 1.0]))])


def test_agent_view_without_bias_reads_and_writes_the_row():
    pop = Population(3, (4, 5, 2), bias=False, seed=1)
    assert pop.n_params == 4 * 5 + 5 * 2 and pop.params.shape == (3, 30) and not pop.bias
    net = pop.agent(1)
    net.weights[1][...] = 0.5
    np.testing.assert_array_equal(pop.params[1, 20:], 0.5)
    assert all(not b.any() and not b.flags.writeable for b in net.biases)
    with pytest.raises(ValueError):
        net.biases[0][0] = 1.0
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    h = np.tanh(x @ net.weights[0])
    np.testing.assert_allclose(net.predict(x), h @ net.weights[1], rtol=1e-5, atol=1e-6)
    assert "bias=False" in repr(pop) and "bias=False" in repr(net)


def test_from_params_without_bias_wraps_weight_only_rows():
    params = np.random.default_rng(3).standard_normal((5, 3 * 4 + 4 * 2))
    pop = Population.from_params(params, (3, 4, 2), bias=False)
    assert pop.params is params and pop.n_params == 20
    with pytest.raises(ParameterError, match=r"params\.shape"):
        Population.from_params(params, (3, 4, 2))  # with biases a row has 26 entries
    with pytest.raises(ParameterError, match=r"params\.shape"):
        Population.from_params(np.zeros((5, 26)), (3, 4, 2), bias=False)


@pytest.mark.parametrize("bad", ["no", 0, None, 1.0])
def test_bias_must_be_a_bool(bad):
    with pytest.raises(ParameterError, match="bias"):
        Population(2, (3, 2), bias=bad)
    with pytest.raises(ParameterError, match="bias"):
        Population.from_params(np.zeros((2, 6)), (3, 2), bias=bad)


# ---------------------------------------------------------------- oracle
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize(("output", "loss"), OUTPUT_LOSS)
@pytest.mark.parametrize(("layers", "activation"), [((3, 5, 2), "tanh"), ((3, 4, 4, 2), "relu")])
def test_training_without_bias_matches_oracle(layers, activation, output, loss, optimizer, dtype):
    pop, oracle = _pair(dtype, layers, activation, output, loss, optimizer)
    rng = np.random.default_rng(5)
    tol = TOL[dtype]
    start = pop.params.copy()
    for _ in range(STEPS):
        X, Y = (a.astype(dtype) for a in make_data(rng, layers, output, loss, N_AGENTS, BATCH))
        got = pop.train_step(X, Y)
        np.testing.assert_allclose(got, oracle.train_step(X, Y), **tol, err_msg="losses")
    if dtype == "float64" and optimizer == "adam":
        tol = {**tol, "atol": 1e-10}  # as in test_population_oracle (ADAM_PARAMS_ATOL64)
    np.testing.assert_allclose(pop.params, oracle.params, **tol, err_msg="params")
    np.testing.assert_allclose(pop.predict(X), oracle.predict(X.astype(np.float64)), **tol)
    np.testing.assert_array_equal(pop.params[2], start[2])  # lr = 0
    assert not np.array_equal(pop.params[0], start[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("layers", "batch"), [((64, 64, 10), 64), ((45, 70, 12), 59)])
def test_wide_layers_without_bias_match_oracle(layers, batch, dtype):
    """The register-tile paths (wide weight gradients, edge tiles) without a bias."""
    pop, oracle = _pair(dtype, layers, "tanh", "softmax", "cross_entropy", "momentum")
    rng = np.random.default_rng(7)
    data = make_data(rng, layers, "softmax", "cross_entropy", N_AGENTS, batch)
    X, Y = (a.astype(dtype) for a in data)
    grads, losses = pop.gradients(X, Y)
    dx = pop.input_gradients(X, Y)
    for p in range(N_AGENTS):
        args = (X[p].astype(np.float64), Y[p].astype(np.float64))
        value, g, d = agent_gradients(
            pop.params[p].astype(np.float64),
            layers,
            "tanh",
            "softmax",
            "cross_entropy",
            *args,
            bias=False,
        )
        np.testing.assert_allclose(losses[p], value, **TOL[dtype])
        np.testing.assert_allclose(grads[p], g, **TOL[dtype])
        np.testing.assert_allclose(dx[p], d, **TOL[dtype])
    got = pop.train_step(X, Y)
    np.testing.assert_allclose(got, oracle.train_step(X, Y), **TOL[dtype])
    np.testing.assert_allclose(pop.params, oracle.params, **TOL[dtype])


# ---------------------------------------------------------------- finite differences (float64)
@pytest.mark.parametrize(("output", "loss"), [("linear", "mse"), ("softmax", "cross_entropy")])
@pytest.mark.parametrize("layers", [(3, 5, 2), (3, 4, 4, 2)])
def test_gradients_without_bias_match_central_differences(layers, output, loss):
    pop = Population(
        N_AGENTS, layers, "tanh", output, loss, dtype="float64", seed=8, bias=False, init_scale=1.5
    )
    rng = np.random.default_rng(9)
    X, Y = make_data(rng, layers, output, loss, N_AGENTS, BATCH)
    grads, _ = pop.gradients(X, Y)
    P, n = pop.params.shape
    shift = FD_STEP * np.eye(n)
    rows = (pop.params[:, None, None, :] + np.stack([shift, -shift])[None]).reshape(-1, n)
    twin = Population.from_params(
        rows, layers, activation="tanh", output=output, loss=loss, bias=False
    )
    rep = lambda A: np.repeat(A, 2 * n, axis=0)  # noqa: E731
    out = twin.loss(rep(X), rep(Y)).reshape(P, 2, n)
    np.testing.assert_allclose(grads, (out[:, 0] - out[:, 1]) / (2 * FD_STEP), rtol=1e-6, atol=1e-8)
    assert np.abs(grads).max() > 1e-3
    # input gradients: perturb each input of each agent
    dx = pop.input_gradients(X, Y)
    B, d = X.shape[1:]
    shift = FD_STEP * np.eye(B * d).reshape(B * d, B, d)
    Xs = (X[:, None, None] + np.stack([shift, -shift])[None]).reshape(-1, B, d)
    many = Population.from_params(
        np.repeat(pop.params, 2 * B * d, axis=0),
        layers,
        activation="tanh",
        output=output,
        loss=loss,
        bias=False,
    )
    out = many.loss(Xs, np.repeat(Y, 2 * B * d, axis=0)).reshape(P, 2, B, d)
    np.testing.assert_allclose(dx, (out[:, 0] - out[:, 1]) / (2 * FD_STEP), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- exact least squares
@pytest.mark.parametrize("n_out", [1, 3])
def test_linear_population_without_bias_converges_to_the_normal_equations(n_out):
    """Full-batch gradient descent on mean (X W - Y)^2 reaches W* = (X^T X)^-1 X^T Y.

    The loss is (1 / (B K)) ||X W - Y||^2, its Hessian H = 2 X^T X / (B K) (the same for every
    output). With lr = 1 / lambda_max(H) the error contracts by (1 - lambda_min / lambda_max)
    per step; 400 steps take it far below the 1e-10 tolerance for these well-conditioned X.
    Data are not generated by a linear model (Y has a nonlinear part), so W* is a genuine
    least-squares fit, not an exact interpolation.
    """
    rng = np.random.default_rng(11)
    P, B, d = 5, 40, 4
    X = rng.standard_normal((P, B, d))
    Y = np.sin(X @ rng.standard_normal((d, n_out))) + 0.3 * rng.standard_normal((P, B, n_out))
    W_star = np.stack([np.linalg.solve(X[p].T @ X[p], X[p].T @ Y[p]) for p in range(P)])
    lam = np.stack([np.linalg.eigvalsh(2 * X[p].T @ X[p] / (B * n_out)) for p in range(P)])
    assert np.all(lam[:, -1] / lam[:, 0] < 10)  # the convergence rate the docstring relies on
    pop = Population(
        P,
        (d, n_out),
        output="linear",
        loss="mse",
        optimizer="sgd",
        lr=1.0 / lam[:, -1],
        dtype="float64",
        bias=False,
        seed=12,
    )
    assert pop.n_params == d * n_out
    for _ in range(400):
        losses = pop.train_step(X, Y)
    W = pop.layout.unravel(pop.params)[0][0]  # (P, d, K)
    np.testing.assert_allclose(W, W_star, rtol=0, atol=1e-10)
    best = np.mean((X @ W_star - Y) ** 2, axis=(1, 2))
    np.testing.assert_allclose(losses, best, rtol=1e-12)
    grads, _ = pop.gradients(X, Y)
    assert np.abs(grads).max() < 1e-10  # the normal equations X^T (X W - Y) = 0 hold
