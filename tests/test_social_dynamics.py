"""Social learning rules against analytic results: consensus limits, rates, invariants."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from models import REGISTRY
from simulator.graph import dense, mixing_matrix, slem, stationary_distribution, to_csr
from simulator.kernels import social as S
from simulator.kernels.random import fill_normals
from simulator.social import MUTATION

GOSSIP = REGISTRY["gossip_learning"]


def gossip_model(graph, **kw):
    base = dict(
        lr=0.0,
        mixing="metropolis",
        mixing_rate=1.0,
        init="independent",
        dtype="float64",
        measures="fast",
        rng=0,
    )
    return GOSSIP(graph=graph, **{**base, **kw})


def disagreement(params):
    return float(((params - params.mean(axis=0)) ** 2).sum(axis=1).mean())


def test_gossip_preserves_population_mean():
    m = gossip_model(nx.cycle_graph(20), n_agents=20)
    mean0 = m.population.params.mean(axis=0).copy()
    m.run_for(25)
    np.testing.assert_allclose(m.population.params.mean(axis=0), mean0, atol=1e-9, rtol=0)


def test_gossip_round_is_exactly_one_multiplication_by_the_mixing_matrix():
    G = nx.cycle_graph(12)
    m = gossip_model(G, n_agents=12)
    x0 = m.population.params.copy()
    m.step()
    W = dense(mixing_matrix(to_csr(G), "metropolis"))
    np.testing.assert_allclose(m.population.params, W @ x0, atol=1e-12)


@pytest.mark.parametrize(
    "graph",
    [
        nx.cycle_graph(16),
        nx.random_regular_graph(3, 16, seed=1),
        nx.barabasi_albert_graph(30, 2, seed=2),
    ],
)
def test_gossip_disagreement_decays_at_least_at_the_spectral_rate(graph):
    m = gossip_model(graph)
    lam = slem(dense(mixing_matrix(to_csr(m.graph), "metropolis")))
    d0 = disagreement(m.population.params)
    for t in range(1, 31):
        m.step()
        assert disagreement(m.population.params) <= lam ** (2 * t) * d0 * (1 + 1e-9) + 1e-24


def test_gossip_disagreement_ratio_approaches_slem_squared():
    m = gossip_model(nx.cycle_graph(10))
    lam = slem(dense(mixing_matrix(to_csr(m.graph), "metropolis")))
    prev = disagreement(m.population.params)
    for _ in range(60):
        m.step()
        cur = disagreement(m.population.params)
        ratio, prev = cur / prev, cur
    assert ratio == pytest.approx(lam**2, rel=1e-3)


def test_row_stochastic_averaging_converges_to_the_stationary_weighted_mean():
    G = nx.star_graph(7)  # degrees differ: the uniform rule is not doubly stochastic
    m = gossip_model(G, mixing="uniform")
    x0 = m.population.params.copy()
    pi = stationary_distribution(dense(mixing_matrix(to_csr(m.graph), "uniform")))
    m.run_for(200)
    target = pi @ x0
    np.testing.assert_allclose(m.population.params, np.broadcast_to(target, x0.shape), atol=1e-9)
    assert not np.allclose(target, x0.mean(axis=0), atol=1e-6)  # it is not the plain mean


def test_pairwise_gossip_preserves_the_mean_and_reaches_consensus():
    m = gossip_model(nx.cycle_graph(12), gossip_mode="pairwise")
    mean0 = m.population.params.mean(axis=0).copy()
    d0 = disagreement(m.population.params)
    m.run_for(300)
    np.testing.assert_allclose(m.population.params.mean(axis=0), mean0, atol=1e-9)
    assert disagreement(m.population.params) < 1e-6 * d0


def test_zero_strengths_leave_agents_independent():
    """Changing one agent's start changes nobody else's trajectory when every rule is off."""
    kw = dict(
        n_agents=12,
        graph="ring",
        mixing_rate=0.0,
        init="independent",
        lr=0.1,
        dtype="float64",
        measures="fast",
        rng=3,
    )
    a, b = GOSSIP(**kw), GOSSIP(**kw)
    b.population.params[0] += 0.5
    a.run_for(5)
    b.run_for(5)
    np.testing.assert_array_equal(a.population.params[1:], b.population.params[1:])
    assert not np.array_equal(a.population.params[0], b.population.params[0])


@pytest.mark.parametrize("masked", [False, True])
def test_neighbour_predictions_match_a_direct_computation(masked):
    # each agent's inputs are loaded once for all its neighbours, whichever of them the mask
    # skips (the first, the last, all)
    m = REGISTRY["social_learning"](
        n_agents=10, graph="watts_strogatz", graph_params={"k": 4, "p": 0.2}, dtype="float64",
        measures="fast", rng=0,
    )  # fmt: skip
    pop, csr = m.population, m.csr
    X, _ = m.task.sample(1, 5)
    out = np.full((10, 5, pop.layers[-1]), np.nan)
    mask = np.ones(csr.indices.shape[0], dtype=bool)
    if masked:
        mask = np.random.default_rng(1).random(mask.shape[0]) < 0.5
        mask[csr.indptr[3] : csr.indptr[4]] = False  # agent 3 hears nobody
    counts = S.neighbour_predictions(pop.params, X, csr.indptr, csr.indices, mask, pop._net, out)
    for i in range(10):
        edges = slice(csr.indptr[i], csr.indptr[i + 1])
        nbrs = csr.indices[edges][mask[edges]]
        assert counts[i] == nbrs.size
        if nbrs.size == 0:
            np.testing.assert_array_equal(out[i], 0.0)
            continue
        expect = pop.predict(X[i], agents=nbrs).mean(axis=0)
        np.testing.assert_allclose(out[i], expect, atol=1e-12)
    assert counts[3] == (0 if masked else csr.indptr[4] - csr.indptr[3])


def test_federated_averaging_without_noise_makes_every_agent_the_mean():
    m = gossip_model("ring", n_agents=9, mixing_rate=0.0, fedavg_every=1)
    x0 = m.population.params.copy()
    m.step()
    np.testing.assert_allclose(
        m.population.params, np.broadcast_to(x0.mean(0), x0.shape), atol=1e-12
    )


def test_bounded_confidence_with_a_tiny_epsilon_is_no_interaction_and_a_huge_one_is_averaging():
    tiny = gossip_model("ring", n_agents=10, mixing_rate=0.0, confidence=1e-9, bc_rate=1.0)
    x0 = tiny.population.params.copy()
    tiny.step()
    np.testing.assert_array_equal(tiny.population.params, x0)
    huge = gossip_model("ring", n_agents=10, mixing_rate=0.0, confidence=1e5, bc_rate=1.0)
    x0 = huge.population.params.copy()
    huge.step()
    expect = (x0 + np.roll(x0, 1, axis=0) + np.roll(x0, -1, axis=0)) / 3
    np.testing.assert_allclose(huge.population.params, expect, atol=1e-12)


def test_imitation_mutation_is_the_counter_based_stream_of_each_copy():
    # copy e (in agent order) gets mutation * stream (e, step, MUTATION) of the model's key:
    # what is left after taking it off is a neighbour's network of before the step
    m = gossip_model(
        "ring", n_agents=30, mixing_rate=0.0, imitation_rate=1.0, beta=50.0, mutation=0.1, lr=0.05
    )
    m.population.set_lr(0.0)
    x0 = m.population.params.copy()
    noise = fill_normals(np.empty((30, x0.shape[1])), m.mutation_key, m.steps + 1, MUTATION)
    m.step()
    copied = np.flatnonzero((m.population.params != x0).any(axis=1))
    assert copied.size == m.copies_last_step > 0
    for e, k in enumerate(copied):
        source = m.population.params[k] - (noise[e] * 0.1).astype(x0.dtype)
        neighbours = x0[[(k - 1) % 30, (k + 1) % 30]]
        assert np.isclose(source, neighbours, rtol=0, atol=1e-6).all(axis=1).any(), k


def test_imitation_without_mutation_only_copies_networks_that_exist():
    m = gossip_model(
        "ring", n_agents=30, mixing_rate=0.0, imitation_rate=1.0, beta=50.0, mutation=0.0, lr=0.05
    )
    before = {(row + 0.0).tobytes() for row in m.population.params}  # +0.0: -0.0 == 0.0
    m.population.set_lr(0.0)
    m.step()
    after = [(row + 0.0).tobytes() for row in m.population.params]
    assert set(after) <= before
    assert len(set(after)) < len(before)  # selection reduced diversity
