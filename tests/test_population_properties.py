"""Invariants of ParamLayout and Population, checked on examples drawn by hypothesis."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import OUTPUT_LOSS

from simulator import ParamLayout, Population

SETTINGS = settings(max_examples=25, deadline=None)
layer_tuples = st.lists(st.integers(1, 7), min_size=2, max_size=5).map(tuple)
configs = st.fixed_dictionaries(
    {
        "layers": st.sampled_from([(3, 5, 2), (2, 4, 3, 2), (4, 3)]),
        "activation": st.sampled_from(["identity", "step", "sigmoid", "tanh", "relu"]),
        "output_loss": st.sampled_from(OUTPUT_LOSS),
        "optimizer": st.sampled_from(["sgd", "momentum", "adam"]),
        "dtype": st.sampled_from(["float32", "float64"]),
        "seed": st.integers(0, 2**32 - 1),
    }
)


def _build(cfg: dict, n_agents: int = 4, **kwargs) -> Population:
    output, loss = cfg["output_loss"]
    return Population(
        n_agents,
        cfg["layers"],
        activation=cfg["activation"],
        output=output,
        loss=loss,
        optimizer=cfg["optimizer"],
        dtype=cfg["dtype"],
        seed=cfg["seed"],
        lr=0.05,
        **kwargs,
    )


def _data(cfg: dict, n_agents: int | None, batch: int = 5, seed: int = 0):
    """Inputs and targets that suit cfg's loss; shared (no agent axis) when n_agents is None."""
    rng = np.random.default_rng(seed)
    d_in, d_out = cfg["layers"][0], cfg["layers"][-1]
    lead = () if n_agents is None else (n_agents,)
    X = rng.standard_normal((*lead, batch, d_in))
    Y = rng.random((*lead, batch, d_out))
    if cfg["output_loss"][1] == "cross_entropy":
        Y /= Y.sum(axis=-1, keepdims=True)
    return X, Y


# ---------------------------------------------------------------- layout
@SETTINGS
@given(layer_tuples, st.integers(0, 3))
def test_layout_unravel_then_ravel_round_trips(layers, n_rows):
    layout = ParamLayout(layers)
    assert layout.n_params == sum(a * b + b for a, b in itertools.pairwise(layers))
    rows = np.arange(max(n_rows, 1) * layout.n_params, dtype=float).reshape(-1, layout.n_params)
    row = rows[0]
    parts = layout.unravel(row)
    assert [w.shape for w, _ in parts] == list(itertools.pairwise(layers))
    assert [b.shape for _, b in parts] == [(d,) for d in layers[1:]]
    assert all(np.shares_memory(w, row) and np.shares_memory(b, row) for w, b in parts)
    np.testing.assert_array_equal(layout.ravel(parts), row)
    np.testing.assert_array_equal(layout.ravel(layout.unravel(rows)), rows)  # batches of rows
    # Canonical order: W_l row-major (W[i, j] = input i -> output j), then b_l, layer by layer.
    pos = 0
    for l, (w, b) in enumerate(parts):
        assert layout.weight_slice(l) == slice(pos, pos + w.size)
        np.testing.assert_array_equal(w, row[pos : pos + w.size].reshape(w.shape))
        pos += w.size
        assert layout.bias_slice(l) == slice(pos, pos + b.size)
        pos += b.size
    assert pos == layout.n_params


@SETTINGS
@given(layer_tuples, st.integers(0, 2**32 - 1))
def test_ravel_of_random_layers_is_inverted_by_unravel(layers, seed):
    layout = ParamLayout(layers)
    rng = np.random.default_rng(seed)
    weights = [
        (rng.standard_normal((a, b)), rng.standard_normal(b)) for a, b in itertools.pairwise(layers)
    ]
    for (w, b), (w2, b2) in zip(weights, layout.unravel(layout.ravel(weights))):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)


# ---------------------------------------------------------------- symmetry
@SETTINGS
@given(configs, st.booleans())
def test_identical_agents_stay_identical_under_identical_data(cfg, shared):
    pop = _build(cfg, weight_decay=0.01, clip_norm=1.0)
    pop.params[:] = pop.params[0]
    for step in range(4):
        X, Y = _data(cfg, None, seed=step)
        if not shared:  # the same batch, given to each agent separately
            X, Y = np.repeat(X[None], 4, axis=0), np.repeat(Y[None], 4, axis=0)
        losses = pop.train_step(X, Y)
        assert np.all(losses == losses[0])
    assert np.all(pop.params == pop.params[0])
    assert np.all(pop.predict(X) == pop.predict(X)[0])


@SETTINGS
@given(configs, st.permutations(range(5)))
def test_predict_and_training_are_equivariant_under_agent_permutation(cfg, perm):
    perm = np.array(perm)
    pop = _build(cfg, n_agents=5)
    X, Y = _data(cfg, 5)
    shared = _data(cfg, None, seed=1)[0]
    permuted = Population.from_params(
        pop.params[perm].copy(),
        cfg["layers"],
        activation=cfg["activation"],
        output=cfg["output_loss"][0],
        loss=cfg["output_loss"][1],
        optimizer=cfg["optimizer"],
        lr=0.05,
    )
    np.testing.assert_array_equal(permuted.predict(shared), pop.predict(shared)[perm])
    np.testing.assert_array_equal(permuted.predict(X[perm]), pop.predict(X)[perm])
    np.testing.assert_array_equal(permuted.train_step(X[perm], Y[perm]), pop.train_step(X, Y)[perm])
    np.testing.assert_array_equal(permuted.params, pop.params[perm])


# ---------------------------------------------------------------- seeds
@SETTINGS
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["xavier_uniform", "xavier_normal", "he_normal", "he_uniform", "uniform"]),
    st.sampled_from(["float32", "float64"]),
)
def test_same_seed_gives_same_params_and_different_seed_different(seed, other, init, dtype):
    make = lambda s: Population(6, (3, 5, 2), init=init, dtype=dtype, seed=s).params  # noqa: E731
    np.testing.assert_array_equal(make(seed), make(seed))
    np.testing.assert_array_equal(make(np.random.default_rng(seed)), make(seed))
    if other != seed:
        assert not np.array_equal(make(seed), make(other))
    params = make(seed)
    assert params.dtype == np.dtype(dtype) and params.flags.c_contiguous
    layout = ParamLayout((3, 5, 2))
    for l in range(2):
        assert np.all(params[:, layout.bias_slice(l)] == 0)  # biases start at 0
    assert len(np.unique(params[:, layout.weight_slice(0)], axis=0)) == 6  # agents differ


# ---------------------------------------------------------------- memory
@SETTINGS
@given(configs)
def test_from_params_wraps_the_callers_array_and_trains_it_in_place(cfg):
    layout = ParamLayout(cfg["layers"])
    mine = np.random.default_rng(cfg["seed"]).standard_normal((3, layout.n_params))
    mine = mine.astype(cfg["dtype"])
    original = mine.copy()
    output, loss = cfg["output_loss"]
    pop = Population.from_params(
        mine, cfg["layers"], activation=cfg["activation"], output=output, loss=loss, lr=0.5
    )
    assert pop.params is mine or np.shares_memory(pop.params, mine)
    assert pop.dtype == mine.dtype and pop.n_agents == 3
    X, Y = _data(cfg, 3)
    pop.train_step(X, Y)
    assert np.shares_memory(pop.params, mine)
    assert not np.array_equal(mine, original)
    mine[:] = original  # writes by the caller are seen by the population
    twin = Population.from_params(
        original.copy(), cfg["layers"], activation=cfg["activation"], output=output, loss=loss
    )
    np.testing.assert_array_equal(pop.predict(X), twin.predict(X))


@SETTINGS
@given(configs, st.integers(0, 3))
def test_agent_views_are_writable_views_of_the_params(cfg, i):
    pop = _build(cfg)
    net = pop.agent(i)
    X = _data(cfg, None)[0]
    assert np.shares_memory(net.params, pop.params)
    np.testing.assert_array_equal(net.predict(X), pop.predict(X)[i])
    for w, b in net.layers:
        assert np.shares_memory(w, pop.params) and np.shares_memory(b, pop.params)
    net.weights[0][0, -1] = 7.0
    net.biases[-1][...] = -3.0
    row = pop.params[i]
    assert row[pop.layout.weight_slice(0)][cfg["layers"][1] - 1] == 7.0
    assert np.all(row[pop.layout.bias_slice(pop.layout.n_layers - 1)] == -3.0)
    net.params[:] = 0.0
    assert np.all(pop.params[i] == 0)
    others = [j for j in range(4) if j != i]
    assert not np.all(pop.params[others] == 0)
    out = net.predict(X)
    np.testing.assert_array_equal(out, pop.predict(X)[i])
    assert np.all(out == out[0])  # a zero network ignores its input


# ---------------------------------------------------------------- optimizer state
@SETTINGS
@given(configs)
def test_copied_agents_train_exactly_like_their_source(cfg):
    pop = _build(cfg)
    X, Y = _data(cfg, None)
    for _ in range(3):
        pop.train_step(X, Y)
    pop.copy_agents(np.array([0, 0]), np.array([2, 3]))  # optimizer state travels along
    for _ in range(3):
        pop.train_step(X, Y)
    assert np.all(pop.params[[2, 3]] == pop.params[0])


@SETTINGS
@given(configs, st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True))
def test_reset_agents_train_like_a_fresh_population(cfg, agents):
    pop = _build(cfg)
    for step in range(3):
        pop.train_step(*_data(cfg, 4, seed=step))
    pop.reset_optimizer(np.array(agents))
    output, loss = cfg["output_loss"]
    fresh = Population.from_params(
        pop.params.copy(),
        cfg["layers"],
        activation=cfg["activation"],
        output=output,
        loss=loss,
        optimizer=cfg["optimizer"],
        lr=0.05,
    )
    for step in range(3, 6):
        X, Y = _data(cfg, 4, seed=step)
        pop.train_step(X, Y)
        fresh.train_step(X, Y)
    # Adam's bias correction restarts too: a reset agent is indistinguishable from a new one.
    np.testing.assert_array_equal(pop.params[agents], fresh.params[agents])
    kept = [j for j in range(4) if j not in agents]
    smooth = cfg["activation"] in ("identity", "sigmoid", "tanh") and output != "step"
    if kept and smooth and cfg["optimizer"] != "sgd":  # (nonzero gradients, so nonzero state)
        assert not np.array_equal(pop.params[kept], fresh.params[kept])
