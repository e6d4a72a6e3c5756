"""The element-wise activations as the kernels compute them, seen through the public API.

A (1, 1, 1) network with W1 = 1, b1 = 0 makes ``predict(x, layer=1)`` return ``act(x)``
exactly, so each activation is evaluated by the kernel on a dense grid and compared with NumPy.
The kernel's tanh is a fast approximation (not np.tanh): float32 within 5 ulp and 3e-7 absolute
of the exact value, float64 within 1e-14 (absolute, and relative for |x| >= 1e-300).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator import Population


def _kernel_activation(name: str, x: np.ndarray, dtype: str) -> np.ndarray:
    pop = Population(1, (1, 1, 1), activation=name, dtype=dtype)
    net = pop.agent(0)
    net.weights[0][...] = 1
    net.biases[0][...] = 0
    return pop.predict(np.asarray(x, dtype=dtype)[:, None], layer=1)[0, :, 0]


def _grid(dtype: str) -> np.ndarray:
    tiny = np.logspace(-30 if dtype == "float32" else -300, 1.5, 20001)
    dense = np.linspace(-25, 25, 500001)
    huge = np.array([1e3, 1e6, 1e30, np.finfo(dtype).max])
    return np.concatenate([dense, tiny, -tiny, huge, -huge, [0.0]]).astype(dtype)


def test_tanh_float32_is_within_a_few_ulp_of_numpy():
    x = _grid("float32")
    got = _kernel_activation("tanh", x, "float32").astype(np.float64)
    exact = np.tanh(x.astype(np.float64))
    err = np.abs(got - exact)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(err / ulp) <= 5
    assert err.max() <= 3e-7
    assert np.all(np.abs(got) <= 1)


def test_tanh_float64_is_within_1e_14_of_numpy():
    x = _grid("float64")
    got = _kernel_activation("tanh", x, "float64")
    exact = np.tanh(x)
    err = np.abs(got - exact)
    assert err.max() <= 1e-14
    assert np.all(err <= 1e-14 * np.abs(exact))  # relative too (x >= 1e-300 on this grid)
    assert np.all(np.abs(got) <= 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tanh_is_odd_and_saturates(dtype):
    x = np.abs(_grid(dtype))
    np.testing.assert_array_equal(
        _kernel_activation("tanh", -x, dtype), -_kernel_activation("tanh", x, dtype)
    )
    big = _kernel_activation("tanh", np.array([30.0, 1e30]), dtype)
    # float32 saturates at 1 - 4 ulp (the approximation's value at its clamp, 7.905...)
    np.testing.assert_allclose(big, 1.0, rtol=0, atol=3e-7 if dtype == "float32" else 0)


@pytest.mark.parametrize(("dtype", "atol"), [("float32", 1e-7), ("float64", 1e-15)])
def test_sigmoid_matches_logistic_function(dtype, atol):
    x = _grid(dtype)
    x64 = x.astype(np.float64)
    exact = np.exp(-np.logaddexp(0, -x64))  # 1 / (1 + exp(-x)) without overflow
    got = _kernel_activation("sigmoid", x, dtype)
    np.testing.assert_allclose(got, exact, rtol=0, atol=atol)
    assert np.all((got >= 0) & (got <= 1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_identity_relu_and_step_are_exact(dtype):
    x = np.concatenate([_grid(dtype), -np.finfo(dtype).tiny * np.arange(3)]).astype(dtype)
    np.testing.assert_array_equal(_kernel_activation("identity", x, dtype), x)
    np.testing.assert_array_equal(_kernel_activation("relu", x, dtype), np.maximum(x, 0))
    step = _kernel_activation("step", x, dtype)
    np.testing.assert_array_equal(step, (x > 0).astype(dtype))  # Heaviside with step(0) = 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hidden_step_uses_straight_through_estimator_on_unit_window(dtype):
    # Loss = mean (w2 step(x) - y)^2 with w1 = 1, b1 = 0, b2 = 0: dL/dx = 2 (o - y) w2 ste(x) / B
    # where ste(x) = 1 for |x| <= 1, else 0.
    one = np.float64(1.0)
    x = np.array([-2.0, -one, -np.nextafter(one, 2), -0.5, 0.0, 0.5, one, np.nextafter(one, 2), 3])
    x = x.astype(dtype)
    pop = Population(1, (1, 1, 1), activation="step", dtype=dtype)
    net = pop.agent(0)
    net.weights[0][...] = 1
    net.biases[0][...] = 0
    net.weights[1][...] = 0.75
    net.biases[1][...] = 0
    y = np.full(x.shape, 0.25)
    dx = pop.input_gradients(x[:, None], y[:, None])[0, :, 0]
    o = 0.75 * (x > 0)
    want = 2 * (o - 0.25) * 0.75 * (np.abs(x) <= 1) / x.size
    np.testing.assert_allclose(dx, want, rtol=1e-6, atol=0)
