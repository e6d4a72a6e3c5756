"""Bad input gets a ParameterError that names the parameter and the value; never a Numba error.

Also: non-finite data and divergence skip exactly the affected agents and keep the rest.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from simulator import DivergenceError, ParameterError, Population

LAYERS = (2, 3, 2)
P, B = 3, 4


def _pop(**kwargs) -> Population:
    args = {"n_agents": P, "layers": LAYERS, "seed": 0} | kwargs
    return Population(**args)


def _data(seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((2, P, B, 2))
    return X.astype(dtype), Y.astype(dtype)


def _raises(name: str, value_text: str | None = None):
    """pytest.raises(ParameterError) whose message starts with ``name=`` (and shows the value)."""
    pattern = "^" + re.escape(name) + "="
    if value_text is not None:
        pattern += re.escape(value_text)
    return pytest.raises(ParameterError, match=pattern)


# ---------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    ("kwargs", "name", "shown"),
    [
        ({"activation": "gelu"}, "activation", "'gelu'"),
        ({"activation": ("tanh", "relu")}, "activation", "('tanh', 'relu')"),
        ({"activation": None}, "activation", "None"),
        ({"activation": 5}, "activation", "5"),
        ({"layers": (2, 3, 3, 2), "activation": ("tanh", "swish")}, "activation[1]", "'swish'"),
        ({"output": "tanh"}, "output", "'tanh'"),
        ({"output": "softmax", "loss": "hinge"}, "loss", "'hinge'"),
        ({"optimizer": "rmsprop"}, "optimizer", "'rmsprop'"),
        ({"init": "orthogonal"}, "init", "'orthogonal'"),
        ({"dtype": "float16"}, "dtype", "'float16'"),
        ({"dtype": np.float16}, "dtype", None),
        ({"dtype": "int32"}, "dtype", "'int32'"),
        ({"dtype": "banana"}, "dtype", "'banana'"),
        ({"lr": -0.1}, "lr", "-0.1"),
        ({"lr": np.nan}, "lr", "nan"),
        ({"lr": [0.1, 0.2]}, "lr", "[0.1, 0.2]"),
        ({"lr": np.ones((P, 1))}, "lr", None),
        ({"lr": [0.1, -0.1, 0.1]}, "lr", None),
        ({"lr": "fast"}, "lr", "'fast'"),
        ({"lr": [0.1, "a", 0.1]}, "lr", None),
        ({"n_agents": 0}, "n_agents", "0"),
        ({"n_agents": 2.0}, "n_agents", "2.0"),
        ({"layers": (3,)}, "layers", "(3,)"),
        ({"layers": (3, 0, 1)}, "layers", "(3, 0, 1)"),
        ({"layers": (3, 2.5, 1)}, "layers", None),
        ({"layers": "3-5-1"}, "layers", "'3-5-1'"),
        ({"momentum": 1.0}, "momentum", "1.0"),
        ({"beta1": -0.1}, "beta1", "-0.1"),
        ({"beta2": 1.5}, "beta2", "1.5"),
        ({"eps": 0.0}, "eps", "0.0"),
        ({"weight_decay": -1e-3}, "weight_decay", "-0.001"),
        ({"clip_norm": -1}, "clip_norm", "-1"),
        ({"clip_norm": "1"}, "clip_norm", "'1'"),
        ({"init_scale": np.inf}, "init_scale", "inf"),
        ({"on_divergence": "ignore"}, "on_divergence", "'ignore'"),
        ({"seed": "abc"}, "seed", "'abc'"),
        ({"seed": -1}, "seed", "-1"),
        # integers too large for a float: a clear error, not Python's OverflowError
        ({"n_agents": 10**400}, "n_agents", "1000"),
        ({"layers": (2, 10**400, 2)}, "layers", None),
        ({"init_scale": 10**400}, "init_scale", "1000"),
        ({"momentum": 10**400}, "momentum", "1000"),
        # weights that would not be finite in the dtype (float32 by default)
        ({"init_scale": 1e39}, "init_scale", "1e+39"),
        # a softmax of one output is the constant 1
        ({"layers": (2, 1), "output": "softmax", "loss": "cross_entropy"}, "output", "'softmax'"),
    ],
)
def test_bad_constructor_arguments_raise_parameter_error_naming_them(kwargs, name, shown):
    with _raises(name, shown):
        _pop(**kwargs)


def test_invalid_loss_output_pairs_name_the_output():
    with _raises("output", "'linear'") as info:
        _pop(output="linear", loss="cross_entropy")
    assert "'softmax'" in str(info.value)
    with _raises("output", "'softmax'"):
        _pop(output="softmax", loss="bce")


def test_set_lr_validates_like_the_constructor():
    pop = _pop()
    with _raises("lr"):
        pop.set_lr(-1.0)
    with _raises("lr"):
        pop.set_lr(np.ones(P + 1))
    pop.set_lr([0.0, 0.1, 0.2])
    np.testing.assert_array_equal(pop.lr, np.array([0.0, 0.1, 0.2], dtype=pop.dtype))


# ---------------------------------------------------------------- from_params
def test_from_params_refuses_what_it_cannot_wrap_without_copying():
    n = _pop().n_params
    with _raises("dtype", "'float32'"):
        Population.from_params(np.zeros((P, n)), LAYERS, dtype="float32")
    with _raises("dtype"):
        Population.from_params(np.zeros((P, n), dtype=np.float16), LAYERS)
    with _raises("dtype"):
        Population.from_params(np.zeros((P, n), dtype=np.int64), LAYERS)
    with _raises("params.shape", f"({P}, {n + 1})"):
        Population.from_params(np.zeros((P, n + 1)), LAYERS)
    with _raises("params.shape"):
        Population.from_params(np.zeros((0, n)), LAYERS)
    with _raises("params"):
        Population.from_params(np.zeros(n), LAYERS)
    with _raises("params"):
        Population.from_params([[0.0] * n], LAYERS)
    with _raises("params", "'a non-contiguous"):
        Population.from_params(np.zeros((2 * P, n))[::2], LAYERS)
    with _raises("params", "'a non-contiguous"):
        Population.from_params(np.asfortranarray(np.zeros((P, n))), LAYERS)
    frozen = np.zeros((P, n))
    frozen.flags.writeable = False
    with _raises("params"):
        Population.from_params(frozen, LAYERS)
    bad = np.zeros((P, n))
    bad[1, 2] = np.nan
    with _raises("params"):
        Population.from_params(bad, LAYERS)


# ---------------------------------------------------------------- data shapes
@pytest.mark.parametrize("method", ["train_step", "loss", "gradients", "input_gradients"])
def test_wrong_data_shapes_raise_parameter_error(method):
    pop = _pop()
    X, Y = _data()
    call = getattr(pop, method)
    with _raises("X.shape", "(3, 4, 3)"):
        call(np.zeros((P, B, 3)), Y)
    with _raises("X.shape", "(2, 4, 2)"):
        call(np.zeros((2, B, 2)), Y)
    with _raises("X.shape"):
        call(np.zeros((P, 0, 2)), Y)
    with _raises("X.shape"):
        call(np.zeros(2), Y)
    with _raises("X.shape"):
        call(np.zeros((1, P, B, 2)), Y)
    with _raises("Y.shape", "(3, 4, 1)"):
        call(X, np.zeros((P, B, 1)))
    with _raises("Y.shape", "(3, 5, 2)"):
        call(X, np.zeros((P, B + 1, 2)))
    with _raises("Y.shape"):
        call(X, np.zeros((2, B, 2)))
    with _raises("Y.shape", "(3, 4) "):  # named as given (it is read as (1, 3, 4) to check it)
        call(X, np.zeros((P, B)))
    with _raises("X.dtype", "'complex128'"):
        call(X + 0j, Y)
    with _raises("Y.dtype", "'<U1'"):
        call(X, np.full((P, B, 2), "a"))
    with _raises("X"):
        call([[[0.0, 1.0]], [[0.0]]], Y)  # ragged
    np.testing.assert_array_equal(pop.params, _pop().params)  # nothing was changed


def test_predict_checks_data_agents_and_layer():
    pop = _pop()
    X, _ = _data()
    with _raises("X.shape"):
        pop.predict(np.zeros((P, B, 3)))
    with _raises("X.shape", "(3, 4, 2)"):
        pop.predict(X, agents=[0, 1])  # per-agent X must have one row per selected agent
    with _raises("X", "'an array with NaN"):
        pop.predict(np.full((B, 2), np.nan))
    with _raises("agents", "[0, 3]"):
        pop.predict(X[:2], agents=[0, 3])
    with _raises("agents", "[-1]"):
        pop.predict(X[:1], agents=[-1])
    with _raises("agents", "1.5"):
        pop.predict(X[:1], agents=1.5)
    with _raises("agents", "1"):
        pop.predict(X[:1], agents=1)
    with _raises("agents"):
        pop.predict(X[:1], agents=[[0]])
    with _raises("layer", "0"):
        pop.predict(X, layer=0)
    with _raises("layer", "3"):
        pop.predict(X, layer=3)
    with _raises("layer", "1.0"):
        pop.predict(X, layer=1.0)
    with _raises("i", "3"):
        pop.agent(3)
    with _raises("i", "-1"):
        pop.agent(-1)


def test_agent_index_arguments_are_checked():
    pop = _pop(optimizer="momentum")
    with _raises("agents", "[5]"):
        pop.reset_optimizer([5])
    with _raises("dst"):
        pop.copy_agents([0], [P])
    with _raises("src", "'a'"):
        pop.copy_agents("a", [1])
    with _raises("src", "array([0, 1])"):  # two sources for one destination
        pop.copy_agents([0, 1], [2])
    pop.copy_agents(0, [1, 2])  # one source for many destinations
    np.testing.assert_array_equal(pop.params[1], pop.params[0])


# ---------------------------------------------------------------- odd but meaningful input
def _twins(**kwargs):
    return _pop(**kwargs), _pop(**kwargs)


def _same_or_parameter_error(call_odd, call_canonical):
    """The odd call either raises ParameterError or returns exactly the canonical result."""
    try:
        got = call_odd()
    except ParameterError:
        return "refused"
    want = call_canonical()
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    return "accepted"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["train_step", "loss", "gradients", "input_gradients"])
def test_odd_inputs_give_the_correct_result_or_a_parameter_error(method, dtype):
    X, Y = _data(1)
    Xc, Yc = X.astype(dtype), Y.astype(dtype)
    odd_inputs = [
        (X.tolist(), Y.tolist()),  # nested lists
        (np.round(X * 3).astype(np.int64), Y),  # integer features
        (X.astype(np.float64), Y.astype(np.float64)),  # float64 data into any population
        (X > 0, Y),  # booleans
        (np.asfortranarray(X), Y[:, ::-1][:, ::-1]),  # non-C-contiguous
        (X[0], Y),  # shared X (B, d_in)
        (X[:1], Y),  # shared X as (1, B, d_in)
        (X, Y[0]),  # shared targets (B, d_out)
        (X[0].tolist(), Y[0].tolist()),  # shared, as lists
    ]
    outcomes = []
    for Xo, Yo in odd_inputs:
        a, b = _twins(dtype=dtype)
        Xw = np.asarray(Xo).astype(dtype)
        Yw = np.asarray(Yo).astype(dtype)
        outcomes.append(
            _same_or_parameter_error(
                lambda a=a, Xo=Xo, Yo=Yo: getattr(a, method)(Xo, Yo),
                lambda b=b, Xw=Xw, Yw=Yw: getattr(b, method)(Xw, Yw),
            )
        )
        np.testing.assert_array_equal(a.params, b.params)
    assert outcomes == ["accepted"] * len(odd_inputs)
    # Refused outright: a ParameterError, never a Numba TypingError or a numpy error.
    for Xo, Yo in [
        ("abc", Yc),
        (None, Yc),
        (3.0, Yc),
        (Xc, None),
        ([[["a", "b"]]], Yc),
        (Xc.astype(object), Yc),
        (np.full_like(Xc, np.inf), Yc),
    ]:
        with pytest.raises(ParameterError):
            getattr(_pop(dtype=dtype), method)(Xo, Yo)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_accepts_integer_labels_and_refuses_bad_ones(dtype):
    kwargs = {"output": "softmax", "loss": "cross_entropy", "dtype": dtype}
    X, _ = _data(2)
    labels = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]])
    one_hot = np.eye(2)[labels]
    for odd in (labels, labels.astype(np.uint8), labels.tolist(), labels[0], labels[0].tolist()):
        a, b = _twins(**kwargs)
        want = one_hot if np.ndim(odd) == 2 else one_hot[0]
        assert (
            _same_or_parameter_error(
                lambda a=a, odd=odd: a.train_step(X, odd), lambda b=b, w=want: b.train_step(X, w)
            )
            == "accepted"
        )
    for one_hot_ints in (one_hot.astype(int), one_hot[0].astype(np.uint8)):  # targets, not labels
        a, b = _twins(**kwargs)
        np.testing.assert_array_equal(
            a.train_step(X, one_hot_ints), b.train_step(X, one_hot_ints.astype(float))
        )
    pop = _pop(**kwargs)
    with _raises("Y", "'labels in [0, 2]'"):
        pop.train_step(X, labels * 2)
    with _raises("Y", "'labels in [-1, 1]'"):
        pop.train_step(X, labels - (labels == 0))
    with _raises("Y.shape", "(3, 4) ") as info:  # float labels are not labels
        pop.train_step(X, labels.astype(float))
    assert "or integer class labels of shape (3, 4) (Y's dtype is float64)" in str(info.value)
    with _raises("Y.shape", "(3, 4) "):
        pop.train_step(X, labels.astype(bool))
    with _raises("Y.shape", "(3, 2) "):  # the shape given, not the one it was made into
        pop.train_step(X, labels[:, :2])


def test_predict_accepts_odd_but_meaningful_inputs():
    pop = _pop(dtype="float32")
    X, _ = _data(3)
    want = pop.predict(X.astype(np.float32))
    np.testing.assert_array_equal(pop.predict(X.tolist()), want)
    np.testing.assert_array_equal(pop.predict(X), want)
    np.testing.assert_array_equal(pop.predict(X[[2, 0]], agents=[2, 0]), want[[2, 0]])
    np.testing.assert_array_equal(pop.predict(X[[0, 2]], agents=[True, False, True]), want[[0, 2]])
    np.testing.assert_array_equal(pop.predict(X[1], agents=np.array([1], np.uint8)), want[[1]])
    np.testing.assert_array_equal(pop.predict(X[:0], agents=[]), want[:0])
    np.testing.assert_array_equal(pop.predict(X, layer=np.int64(2)), want)
    np.testing.assert_array_equal(pop.agent(np.int64(1)).predict(X[1]), want[1])


# ---------------------------------------------------------------- non-finite data
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("where", ["X", "Y"])
def test_nan_data_skips_only_the_affected_agents(where, optimizer):
    pop, twin = _twins(optimizer=optimizer, lr=0.1)
    skipper = _pop(optimizer=optimizer, lr=0.1)  # never sees the bad step at all
    X, Y = _data(4)
    twin.train_step(X, Y)  # the twin sees clean data
    pop.train_step(X, Y)
    skipper.train_step(X, Y)
    Xb, Yb = X.copy(), Y.copy()
    (Xb if where == "X" else Yb)[1, 2, 0] = np.nan
    before = pop.params.copy()
    want = twin.train_step(X, Y)
    with pytest.raises(ParameterError) as info:
        pop.train_step(Xb, Yb)
    assert str(info.value).startswith(f"{where} contains NaN or inf for agents [1]")
    np.testing.assert_array_equal(info.value.agents, [1])
    np.testing.assert_array_equal(info.value.losses[[0, 2]], want[[0, 2]])  # nothing lost
    np.testing.assert_array_equal(pop.params[1], before[1])  # agent 1 not updated
    np.testing.assert_array_equal(pop.params[[0, 2]], twin.params[[0, 2]])  # the others were
    # The others' optimizer state advanced exactly as the twin's did; agent 1's did not move.
    pop.train_step(X, Y)
    twin.train_step(X, Y)
    skipper.train_step(X, Y)
    np.testing.assert_array_equal(pop.params[[0, 2]], twin.params[[0, 2]])
    np.testing.assert_array_equal(pop.params[1], skipper.params[1])


def test_non_finite_data_is_refused_by_every_method():
    pop = _pop()
    X, Y = _data(5)
    X[0, 0, 0] = np.inf
    for method in ("loss", "gradients", "input_gradients"):
        with pytest.raises(ParameterError, match=r"^X contains NaN or inf for agents \[0\]"):
            getattr(pop, method)(X, Y)
    with _raises("X"):
        pop.predict(X)
    np.testing.assert_array_equal(pop.params, _pop().params)


# ---------------------------------------------------------------- divergence
def _diverging(on_divergence: str, dtype: str = "float32") -> tuple[Population, Population]:
    lr = np.array([0.05, 1e6, 0.05])  # agent 1 blows up
    kwargs = {"lr": lr, "dtype": dtype, "on_divergence": on_divergence, "optimizer": "momentum"}
    twin = _pop(**(kwargs | {"lr": np.where(lr > 1, 0.05, lr)}))
    return _pop(**kwargs), twin


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_raises_and_keeps_the_diverged_agent_finite(dtype):
    pop, twin = _diverging("raise", dtype)
    X, Y = _data(6)
    losses = []
    with pytest.raises(DivergenceError) as info:
        for _ in range(50):
            before = pop.params.copy()
            losses.append(pop.train_step(X * 10, Y * 10))
            twin.train_step(X * 10, Y * 10)
    err = info.value
    assert err.step == pop.step_count
    np.testing.assert_array_equal(err.agents, [1])
    assert losses[-1][1] > 1e3 * losses[0][1]  # the loss blew up first
    np.testing.assert_array_equal(pop.params[1], before[1])  # kept as before the failed step
    assert np.all(np.isfinite(pop.params))
    twin.train_step(X * 10, Y * 10)
    np.testing.assert_array_equal(pop.params[[0, 2]], twin.params[[0, 2]])
    assert f"step {err.step}" in str(err)


def test_a_loss_that_overflows_outside_training_says_nothing_was_trained():
    """loss(), gradients() and input_gradients() train nothing: their DivergenceError says so
    (not that training diverged), and a list of more than five losses ends with an ellipsis."""
    pop = Population(n_agents=6, layers=(4, 5, 1), dtype="float32")
    X = np.random.default_rng(0).standard_normal((6, 16, 4)).astype(np.float32)
    Y = np.full((6, 16, 1), 1e20, np.float32)  # squared errors overflow float32
    before = pop.params.copy()
    for method, what in [
        ("loss", "the loss is"),
        ("gradients", "the loss or gradient is"),
        ("input_gradients", "the loss or input gradient is"),
    ]:
        with pytest.raises(DivergenceError, match=f"^{what} NaN/inf in float32") as info:
            getattr(pop, method)(X, Y)
        text = str(info.value)
        assert "nothing was trained" in text and "diverged" not in text
        assert "inf inf inf inf inf] ...)" in text  # 6 agents, 5 losses shown
    np.testing.assert_array_equal(pop.params, before)
    assert pop.step_count == 0


def test_an_update_that_overflows_is_not_applied():
    pop = _pop(lr=[0.1, 1e38, 0.1], dtype="float32", clip_norm=0.0)
    X, Y = _data(7)
    before = pop.params.copy()
    with pytest.raises(DivergenceError) as info:
        pop.train_step(X * 1e3, Y * 1e3)  # loss finite, lr * gradient overflows float32
    assert info.value.step == 1
    np.testing.assert_array_equal(info.value.agents, [1])
    np.testing.assert_array_equal(pop.params[1], before[1])
    assert not np.array_equal(pop.params[0], before[0])


def test_divergence_warns_when_asked_and_training_continues():
    pop, _ = _diverging("warn")
    X, Y = _data(6)
    first = pop.train_step(X * 10, Y * 10)
    with pytest.warns(RuntimeWarning, match=r"diverged at step \d+: .* agents \[1\]"):
        for _ in range(50):
            losses = pop.train_step(X * 10, Y * 10)
    assert not losses[1] < 1e6 * first[1]  # blown up (or NaN)
    assert np.all(losses[[0, 2]] < first[[0, 2]])  # the others kept learning
    assert np.all(np.isfinite(pop.params))


# ---------------------------------------------------------------- assigned attributes (issue 14)
def test_reassigned_params_of_another_size_are_refused_not_a_segfault():
    pop = Population(n_agents=4, layers=(3, 5, 2))
    with _raises("params.shape", "(100000, 32)"):
        pop.params = np.zeros((100000, pop.n_params), np.float32)
    X, Y = np.ones((4, 6, 3)), np.ones((4, 6, 2))
    assert pop.train_step(X, Y).shape == (4,)  # still whole
    with pytest.raises(ParameterError, match="X.shape"):
        pop.train_step(np.ones((100000, 6, 3)), np.ones((100000, 6, 2)))


def test_a_learning_rate_array_of_the_wrong_length_is_refused_and_a_scalar_works():
    pop = Population(n_agents=4, layers=(3, 5, 2))
    with _raises("lr"):
        pop.lr = np.ones(1)
    pop.lr = 0.1  # was a Numba typing error
    np.testing.assert_array_equal(pop.lr, np.full(4, 0.1, np.float32))
    assert pop.train_step(np.ones((4, 6, 3)), np.ones((4, 6, 2))).shape == (4,)
    with pytest.raises(ValueError, match="read-only"):
        pop.lr[0] = -1.0  # the view cannot be written: assign instead
    for bad in (True, -0.1, np.nan, "0.1", np.ones((4, 1))):
        with _raises("lr"):
            pop.lr = bad


def test_fortran_ordered_params_are_copied_in_and_give_the_same_losses():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6, 2))
    a, b = Population(4, (3, 5, 2), seed=1), Population(4, (3, 5, 2), seed=2)
    b.params = np.asfortranarray(a.params)
    assert b.params.flags.c_contiguous
    np.testing.assert_array_equal(a.loss(X, Y), b.loss(X, Y))


def test_optimizer_state_and_constants_are_checked_when_assigned():
    pop = Population(3, LAYERS, optimizer="adam")
    state = pop.optimizer_state
    assert set(state) == {"m", "v", "t"} and not state["m"].flags.writeable
    with _raises("optimizer_state['v']"):
        pop.set_optimizer_state(v=-np.ones((3, pop.n_params)))
    with _raises("optimizer_state['t']"):
        pop.set_optimizer_state(t=np.full(3, 1.5))
    with _raises("optimizer_state['m'].shape"):
        pop.set_optimizer_state(m=np.ones((2, pop.n_params)))
    with _raises("optimizer_state"):
        Population(3, LAYERS).set_optimizer_state(v=np.ones((3, pop.n_params)))
    pop.set_optimizer_state(m=np.ones((3, pop.n_params)), t=np.arange(3))
    np.testing.assert_array_equal(pop.optimizer_state["t"], [0, 1, 2])
    for name, bad in [("beta1", 1.0), ("eps", 0.0), ("momentum", "x"), ("clip_norm", -1)]:
        with _raises(name):
            setattr(pop, name, bad)
    for name in ("optimizer", "dtype", "layout", "activation", "init"):
        with pytest.raises(AttributeError, match="fixed when a Population is built"):
            setattr(pop, name, getattr(pop, name))


def test_params_that_overflow_the_dtype_are_refused():
    pop = Population(3, LAYERS)
    with _raises("params", "'an array with NaN or inf in float32'"):
        pop.params = np.full((3, pop.n_params), 1e39)


def test_targets_that_are_not_distributions_are_refused_for_cross_entropy_and_bce():
    X = np.ones((P, B, 2))
    ce = _pop(output="softmax", loss="cross_entropy")
    with _raises("Y", "'rows summing to 2"):
        ce.train_step(X, np.ones((P, B, 2)))
    with _raises("Y"):
        ce.train_step(X, np.tile([1.5, -0.5], (P, B, 1)))
    bce = _pop(output="sigmoid", loss="bce")
    with _raises("Y", "'targets in [-1.0, 0.5]'"):
        bce.train_step(X, np.full((P, B, 2), 0.5) - np.eye(2)[[0, 1, 0, 1]][None] * 1.5)
    soft = np.full((P, B, 2), 0.5)
    assert ce.train_step(X, soft).shape == (P,) and bce.train_step(X, soft).shape == (P,)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_fast_target_check_finds_one_bad_row_among_many_and_the_exact_rule_decides(dtype):
    """A kernel proves the usual targets fine in one pass; a row in doubt goes to the exact rule,
    which alone decides: sums within 1e-3 of 1 pass even inside the kernel's margin
    (0.9e-3), beyond fail; one bad row at the end of 200,000 (the parallel path) is found;
    a NaN row passes the range check and is reported as NaN."""
    n, b = 2000, 100
    X = np.zeros((n, b, 2))
    ce = Population(n, (2, 3, 2), output="softmax", loss="cross_entropy", dtype=dtype, seed=0)
    good = np.full((n, b, 2), 0.5)
    ce.train_step(X, good)

    def last_row(values):
        Y = good.copy()
        Y[-1, -1] = values
        return Y

    ce.train_step(X, last_row([0.5 + 0.95e-3, 0.5]))
    ce.train_step(X, last_row([0.5 - 0.95e-3, 0.5]))
    for off in (1.2e-3, -1.2e-3):
        with _raises("Y", "'rows summing to"):
            ce.train_step(X, last_row([0.5 + off, 0.5]))
    with _raises("Y", "'negative targets'"):
        ce.train_step(X, last_row([1.0001, -0.0001]))
    with pytest.raises(ParameterError, match="^Y contains NaN"):
        ce.train_step(X, last_row([np.nan, 0.5]))
    bce = Population(n, (2, 3, 2), output="sigmoid", loss="bce", dtype=dtype, seed=0)
    bce.train_step(X, last_row([1.0, 0.0]))
    with _raises("Y", "'targets in [0.5, 1.0001"):
        bce.train_step(X, last_row([1.0001, 0.5]))


@pytest.mark.parametrize("dtype", [None, True])
def test_dtype_none_is_refused_not_read_as_float64(dtype):
    with _raises("dtype"):
        _pop(dtype=dtype)


def test_a_population_too_big_for_memory_is_refused_before_allocating():
    with _raises("n_agents"):
        Population(n_agents=10**12, layers=(64, 64, 10))


def test_exploding_but_finite_losses_get_a_warning():
    """Adam at lr=1e3 runs to huge losses: a warning names it (runs stop: docs/RUNS.md)."""
    pop = Population(8, (3, 16, 1), optimizer="adam", lr=1e3)
    rng = np.random.default_rng(0)
    with pytest.warns(RuntimeWarning, match=r"exploding at step \d+: agents \[.*above 1e\+06 x"):
        for _ in range(12):
            X = rng.standard_normal((8, 32, 3))
            pop.train_step(X, X.sum(-1, keepdims=True))


def test_finite_data_too_large_for_float32_is_named_with_the_dtypes_range():
    pop = _pop()
    X, Y = _data()
    X[1] *= 1e300  # finite in float64, inf once cast to the population's float32
    with pytest.raises(
        ParameterError, match=r"X must be finite in float32 \(\|values\| <= 3.4e\+38\)"
    ):
        pop.train_step(X, Y)
