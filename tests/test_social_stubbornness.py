"""Stubborn agents against the Friedkin-Johnsen model in closed form.

x(t+1) = (I - S) W x(t) + S x(0), S = diag(s): with every agent linked to a stubborn one the
iteration converges to x* = (I - (I - S) W)^-1 S x(0) (Friedkin and Johnsen 1990).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from models import REGISTRY
from simulator.config import ParameterError
from simulator.graph import dense, mixing_matrix

GOSSIP = REGISTRY["gossip_learning"]


def stubborn_model(stubbornness, graph=None, **kw):
    base = dict(
        graph=graph if graph is not None else nx.connected_watts_strogatz_graph(10, 4, 0.3, seed=1),
        lr=0.0,
        mixing_rate=1.0,
        mixing="uniform",
        init="independent",
        dtype="float64",
        measures="fast",
        stubbornness=stubbornness,
        rng=0,
    )
    return GOSSIP(**{**base, **kw})


S_VALUES = (0.5, 0.0, 0.0, 0.2, 0.0, 0.0, 0.9, 0.0, 0.0, 0.05)


def test_one_step_is_the_friedkin_johnsen_update():
    m = stubborn_model(S_VALUES)
    x0 = m.population.params.copy()
    W = dense(mixing_matrix(m.csr, "uniform"))
    s = np.array(S_VALUES)[:, None]
    m.step()
    np.testing.assert_allclose(m.population.params, (1 - s) * (W @ x0) + s * x0, atol=1e-12)
    m.step()  # the anchor is x(0), not the previous state
    x1 = (1 - s) * (W @ x0) + s * x0
    np.testing.assert_allclose(m.population.params, (1 - s) * (W @ x1) + s * x0, atol=1e-12)


def test_stubborn_agents_converge_to_the_friedkin_johnsen_equilibrium():
    m = stubborn_model(S_VALUES)
    x0 = m.population.params.copy()
    W = dense(mixing_matrix(m.csr, "uniform"))
    S = np.diag(S_VALUES)
    x_star = np.linalg.solve(np.eye(10) - (np.eye(10) - S) @ W, S @ x0)
    rho = np.max(np.abs(np.linalg.eigvals((np.eye(10) - S) @ W)))
    m.run_for(int(np.log(1e-13) / np.log(rho)) + 1)
    np.testing.assert_allclose(m.population.params, x_star, atol=1e-10)
    assert np.abs(x_star - x_star.mean(axis=0)).max() > 0.05  # disagreement persists


def test_a_scalar_stubbornness_anchors_every_agent_and_one_keeps_the_initial_networks():
    m = stubborn_model(0.3)
    assert m.stubbornness.tolist() == [0.3] * 10
    frozen = stubborn_model(1.0, lr=0.1, mixing="metropolis")
    x0 = frozen.population.params.copy()
    frozen.run_for(5)
    np.testing.assert_array_equal(frozen.population.params, x0)
    free = stubborn_model(0.0)
    assert free.initial_params is None and free.stubbornness is None


def test_stubbornness_pulls_training_back_too():
    """The pull acts after the whole update (training, then the social rules)."""
    kw = dict(lr=0.05, mixing_rate=0.5, init="shared", init_noise=0.1)
    free, anchored = stubborn_model(0.0, **kw), stubborn_model(0.4, **kw)
    x0 = anchored.population.params.copy()
    free.step()
    anchored.step()
    np.testing.assert_allclose(
        anchored.population.params, 0.6 * free.population.params + 0.4 * x0, atol=1e-12
    )


@pytest.mark.parametrize(
    "value",
    [1.5, -0.1, (0.1, 0.2), [0.1] * 9 + [np.nan], [[0.1] * 10], "abc"],
)
def test_bad_stubbornness_is_refused_with_a_clear_error(value):
    with pytest.raises(ParameterError, match="stubbornness"):
        stubborn_model(value)


def test_stubbornness_from_text_and_arrays():
    assert stubborn_model("0.25").stubbornness[0] == 0.25
    m = stubborn_model(str(S_VALUES))
    np.testing.assert_array_equal(m.stubbornness, S_VALUES)
    m = stubborn_model(np.array(S_VALUES))
    assert m.config["stubbornness"] == S_VALUES  # kept JSON-able
