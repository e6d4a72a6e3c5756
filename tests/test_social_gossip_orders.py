"""Orders of gossip and training against their fixed points; averaging without self-weight.

Linear agents with a bias on least squares with full batches: agent i's loss is
f_i(theta) = mean_b (z_b . theta - y_b)^2 over its fixed data, z_b = (x_b, 1) (the bias is a
weight on a constant input), so grad f_i(theta) = H_i theta - c_i with H_i = (2/B) Z_i^T Z_i and
c_i = (2/B) Z_i^T y_i. With W the mixing matrix (``mixing_rate=1``) and step size lr, stacked
over agents (Wk = W kron I):

- train_then_mix: x <- Wk (x - lr (H x - c))    fixed point (I - Wk (I - lr H)) x = lr Wk c
- mix_then_train: x <- (I - lr H) Wk x + lr c    fixed point (I - (I - lr H) Wk) x = lr c
- dpsgd:          x <- Wk x - lr (H x - c)       fixed point (I - Wk + lr H) x = lr c

The fixed full-batch data come from a test-local model subclass that overrides ``train``
(``task="arrays"`` with ``batch_size=0`` is another engineer's work, not on this branch).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from models import REGISTRY
from simulator.graph import dense, mixing_matrix, to_csr
from simulator.model import NeuralModel

D_IN, B, LR = 2, 5, 0.08


class FixedData(NeuralModel):
    """Every agent trains each step on its own fixed full batch ``data = (A, y)``:
    A (P, B, d_in), y (P, B, 1)."""

    data: tuple[np.ndarray, np.ndarray]

    def train(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        A, y = self.data
        return self.population.train_step(A, y).astype(np.float64)


def least_squares_model(G, order, optimizer="sgd", seed=0):
    m = FixedData(
        graph=G,
        task="teacher",
        task_params={"d_in": D_IN, "n_probe": 8},
        hidden=(),
        lr=LR,
        optimizer=optimizer,
        mixing_rate=1.0,
        mixing="metropolis",
        gossip_order=order,
        init="independent",
        dtype="float64",
        measures="fast",
        collect_every=1_000_000,
        rng=seed,
    )
    rng = np.random.default_rng(seed + 100)
    n = m.n_agents
    A = rng.standard_normal((n, B, D_IN))
    truth = rng.standard_normal((n, D_IN + 1))  # heterogeneous local optima
    y = (
        np.einsum("pbi,pi->pb", A, truth[:, :D_IN])
        + truth[:, D_IN:]
        + 0.3 * rng.standard_normal((n, B))
    )
    m.data = (A, y[..., None])
    return m


def affine_gradient(m):
    """Block-diagonal H (nP, nP) and c (nP,) with grad f(x) = H x - c, from the data."""
    A, y = m.data
    n, p = m.n_agents, D_IN + 1
    H, c = np.zeros((n * p, n * p)), np.zeros(n * p)
    for i in range(n):
        Zi = np.hstack([A[i], np.ones((B, 1))])
        H[i * p : (i + 1) * p, i * p : (i + 1) * p] = 2 / B * Zi.T @ Zi
        c[i * p : (i + 1) * p] = 2 / B * Zi.T @ y[i, :, 0]
    return H, c


def mixing(m):
    return np.kron(dense(mixing_matrix(m.csr, "metropolis")), np.eye(D_IN + 1))


def iteration(order, Wk, H, c):
    """(M, v) with x <- M x + v for the given order (SGD with step LR)."""
    eye = np.eye(len(c))
    if order == "train_then_mix":
        return Wk @ (eye - LR * H), LR * Wk @ c
    if order == "mix_then_train":
        return (eye - LR * H) @ Wk, LR * c
    return Wk - LR * H, LR * c


GRAPH = nx.random_regular_graph(3, 8, seed=3)
ORDERS = ["train_then_mix", "mix_then_train", "dpsgd"]


def test_the_affine_gradient_is_the_populations_gradient():
    m = least_squares_model(GRAPH, "dpsgd")
    H, c = affine_gradient(m)
    grads, _ = m.population.gradients(*m.data)
    np.testing.assert_allclose(grads.ravel(), H @ m.population.params.ravel() - c, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_one_step_of_each_order_is_its_equation(order):
    m = least_squares_model(GRAPH, order)
    H, c = affine_gradient(m)
    M, v = iteration(order, mixing(m), H, c)
    x0 = m.population.params.ravel().copy()
    m.step()
    np.testing.assert_allclose(m.population.params.ravel(), M @ x0 + v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_each_order_converges_to_the_solution_of_its_linear_system(order):
    m = least_squares_model(GRAPH, order)
    H, c = affine_gradient(m)
    M, v = iteration(order, mixing(m), H, c)
    rho = np.max(np.abs(np.linalg.eigvals(M)))
    assert rho < 0.97
    fixed = np.linalg.solve(np.eye(len(c)) - M, v)
    for _ in range(int(np.log(1e-13) / np.log(rho)) + 1):
        m.step()
    np.testing.assert_allclose(m.population.params.ravel(), fixed, rtol=0, atol=1e-9)


def test_the_three_fixed_points_differ_and_dpsgd_is_not_the_average_minimizer():
    """The orders are told apart by their fixed points (by far more than the test tolerance).
    D-PSGD with a constant step does not reach consensus on heterogeneous data."""
    m = least_squares_model(GRAPH, "dpsgd")
    H, c = affine_gradient(m)
    Wk = mixing(m)
    pts = []
    for order in ORDERS:
        M, v = iteration(order, Wk, H, c)
        pts.append(np.linalg.solve(np.eye(len(c)) - M, v))
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(pts[a] - pts[b]).max() > 1e-3
    X = pts[2].reshape(m.n_agents, -1)
    assert np.abs(X - X.mean(axis=0)).max() > 1e-3


def test_dpsgd_adds_the_optimizers_own_update_taken_before_mixing():
    """With Adam, one D-PSGD step is W x0 + (Adam(x0) - x0), Adam's step from a twin that only
    trains (its first step is about lr * sign(grad), far from -lr * grad)."""
    m = least_squares_model(GRAPH, "dpsgd", optimizer="adam")
    twin = least_squares_model(GRAPH, "dpsgd", optimizer="adam")
    twin.rules = []  # the same agents and data, training only
    x0 = m.population.params.copy()
    m.step()
    twin.step()
    W = dense(mixing_matrix(m.csr, "metropolis"))
    expected = W @ x0 + (twin.population.params - x0)
    np.testing.assert_allclose(m.population.params, expected, rtol=0, atol=1e-12)
    grads, _ = twin.population.gradients(*m.data)
    assert not np.allclose(twin.population.params - x0, -LR * grads, atol=1e-3)


# ---------------------------------------------------------------------------- adjacency mixing
def test_adjacency_mixing_is_the_row_normalized_adjacency_without_self_weight():
    G = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)])
    G.add_node(4)  # isolated: keeps itself
    W = dense(mixing_matrix(to_csr(G), "adjacency"))
    A = nx.to_numpy_array(G, nodelist=range(5))
    deg = A.sum(axis=1)
    expected = np.divide(A, deg[:, None], out=np.zeros_like(A), where=deg[:, None] > 0)
    expected[4, 4] = 1.0
    np.testing.assert_allclose(W, expected, atol=0)


def adjacency_model(n):
    return REGISTRY["gossip_learning"](
        graph=nx.cycle_graph(n),
        lr=0.0,
        mixing="adjacency",
        mixing_rate=1.0,
        init="independent",
        dtype="float64",
        measures="fast",
        rng=0,
    )


def test_adjacency_averaging_on_an_even_ring_oscillates_forever():
    """D^-1 A on the even ring has eigenvalue -1 on the alternating vector v = (-1)^i: the
    component v . x(t) flips sign every step and x(t) tends to the 2-cycle
    mean + (-1)^t v (v . x0) / n, never to consensus."""
    n = 8
    m = adjacency_model(n)
    x0 = m.population.params.copy()
    v = (-1.0) ** np.arange(n)
    s0, mean0 = v @ x0, x0.mean(axis=0)
    for t in range(1, 201):
        m.step()
        np.testing.assert_allclose(v @ m.population.params, (-1) ** t * s0, rtol=1e-9, atol=1e-12)
    limit = mean0 + np.outer(v, s0) / n
    np.testing.assert_allclose(m.population.params, limit, atol=1e-10)
    m.step()
    np.testing.assert_allclose(m.population.params, 2 * mean0 - limit, atol=1e-10)
    assert np.abs(s0).max() / n > 0.05  # the oscillation is visible, not rounding


def test_adjacency_averaging_on_an_odd_ring_reaches_the_mean():
    m = adjacency_model(9)
    mean0 = m.population.params.mean(axis=0).copy()
    m.run_for(600)
    np.testing.assert_allclose(m.population.params, np.tile(mean0, (9, 1)), atol=1e-10)


@pytest.mark.parametrize("mode", ["sync", "pairwise"])
def test_without_training_every_order_is_plain_mixing(mode):
    """T = identity (lr = 0): the three orders are the same mixing round, pairwise too (the
    pairs are drawn from the same stream in the same order)."""
    finals = []
    for order in ORDERS:
        m = gossip_model(order, mode)
        m.run_for(5)
        finals.append(m.population.params.copy())
    np.testing.assert_array_equal(finals[0], finals[1])
    np.testing.assert_array_equal(finals[0], finals[2])


def gossip_model(order, mode):
    return REGISTRY["gossip_learning"](
        n_agents=16, lr=0.0, gossip_order=order, gossip_mode=mode, measures="fast", rng=1
    )
