"""Update schedules of imitation against the voter and Fermi (pairwise comparison) processes.

Replicates run side by side: the social graph is K disjoint copies of a small graph H, each copy
an independent run of the process (the random-independent schedule's draws that fall in one copy
are still uniform over its agents, so every copy is the textbook process in its own time). An
agent's type travels in its first parameter (+1 mutant, -1 resident; lr=0, no mutation), and a
``fitness`` callable gives each type a constant fitness.

Reference values:
- Traulsen, Nowak and Pacheco (2006), PRE 74, 011909: with constant fitness difference Delta the
  pairwise comparison process fixes one mutant among N with probability
  (1 - e^(-beta Delta)) / (1 - e^(-N beta Delta)), on the complete graph and on any regular graph
  (every A-B edge is chosen as often from either side, so T-/T+ = e^(-beta Delta)).
- Neutral voter model (node update): the degree-weighted density is a martingale, so a variant
  held by the agents S fixes with probability sum_{i in S} d_i / sum_j d_j; the synchronous
  update has the same martingale (its expected step is x <- ((1 - a) I + a D^-1 A) x).
- Every schedule: the exact Markov chain over the 2^N type configurations, built below from the
  schedule's definition (one-sweep transition matrix) and solved for absorption.

Each statistical check allows 4.5 standard errors of a binomial proportion (a false alarm has
probability below 1e-5), with fixed seeds.
"""

from __future__ import annotations

import copy
import itertools

import networkx as nx
import numpy as np
import pytest

from simulator.config import ParameterError
from simulator.kernels import social as S
from simulator.kernels.random import fill_normals
from simulator.model import NeuralModel

Z = 4.5  # standard errors allowed
pytestmark = pytest.mark.filterwarnings("ignore:the given graph is disconnected")


# ---------------------------------------------------------------------------- exact chains
def elementary_matrices(H, fit, beta, rate):
    """M[i][s, s']: one elementary update by agent i, over type configurations s (bit i = type)."""
    N = H.number_of_nodes()
    n_states = 2**N
    M = np.zeros((N, n_states, n_states))
    for i in range(N):
        nb = sorted(H[i])
        for s in range(n_states):
            M[i, s, s] += 1 - rate
            for j in nb:
                ti, tj = (s >> i) & 1, (s >> j) & 1
                p = rate / len(nb) / (1 + np.exp(-beta * (fit[tj] - fit[ti])))
                M[i, s, (s & ~(1 << i)) | (tj << i)] += p
                M[i, s, s] += rate / len(nb) - p
    return M


def sweep_matrix(H, schedule, fit, beta, rate):
    """Transition matrix of one step (sweep) of ``schedule`` over type configurations."""
    N = H.number_of_nodes()
    M = elementary_matrices(H, fit, beta, rate)
    if schedule == "random_independent":
        return np.linalg.matrix_power(M.mean(axis=0), N)
    if schedule == "random_order":
        perms = list(itertools.permutations(range(N)))
        total = np.zeros_like(M[0])
        for order in perms:
            P = np.eye(M.shape[1])
            for i in order:
                P = P @ M[i]
            total += P
        return total / len(perms)
    T = np.ones_like(M[0])  # synchronous: each agent decides from the start state, independently
    for s in range(T.shape[0]):
        for i in range(N):
            ti = (s >> i) & 1
            p1 = (1 - rate) * ti
            for j in sorted(H[i]):
                tj = (s >> j) & 1
                a = 1 / (1 + np.exp(-beta * (fit[tj] - fit[ti])))
                p1 += rate / H.degree(i) * (a * tj + (1 - a) * ti)
            bits = (np.arange(T.shape[0]) >> i) & 1
            T[s] *= np.where(bits == 1, p1, 1 - p1)
    return T


def exact_fixation(H, schedule, fit, beta, rate, mutants):
    """Probability that the type held by ``mutants`` (and nobody else) takes over."""
    T = sweep_matrix(H, schedule, fit, beta, rate)
    n = T.shape[0]
    t = np.arange(1, n - 1)
    h = np.linalg.solve(np.eye(n - 2) - T[np.ix_(t, t)], T[t, n - 1])
    return float(np.concatenate([[0.0], h, [1.0]])[sum(1 << i for i in mutants)])


def traulsen(N, beta_delta):
    return (1 - np.exp(-beta_delta)) / (1 - np.exp(-N * beta_delta))


# ---------------------------------------------------------------------------- simulation
def typed_model(H, K, schedule, fit, beta, rate, mutants, seed):
    """K disjoint copies of H; in copy k the agents ``mutants[k]`` are the mutants."""
    G = nx.disjoint_union_all([H] * K)
    N = H.number_of_nodes()

    def fitness(model):
        return np.where(model.population.params[:, 0] > 0, fit[1], fit[0])

    m = NeuralModel(
        graph=G,
        task="teacher",
        task_params={"d_in": 1, "n_probe": 4},
        hidden=(),
        lr=0.0,
        batch_size=1,
        imitation_rate=rate,
        beta=beta,
        mutation=0.0,
        schedule=schedule,
        measures="fast",
        collect_every=1_000_000,
        dtype="float64",
        rng=seed,
        fitness=fitness,
    )
    types = np.zeros((K, N), dtype=bool)
    for k, who in enumerate(mutants):
        types[k, list(who)] = True
    m.population.params[:, 0] = np.where(types.ravel(), 1.0, -1.0)
    return m


def fixation_share(m, K, N, max_steps=5000):
    """Run until every copy is of one type; the share of copies the mutants took over."""
    for _ in range(max_steps):
        types = (m.population.params[:, 0] > 0).reshape(K, N)
        if np.all(types.all(axis=1) | ~types.any(axis=1)):
            return types.all(axis=1)
        m.step()
    raise AssertionError("not every replicate fixed")


def check_share(fixed, p):
    se = np.sqrt(p * (1 - p) / fixed.size)
    assert abs(fixed.mean() - p) < Z * se, (fixed.mean(), p, se)


def test_the_exact_chains_reproduce_the_closed_forms():
    """The chains the statistical tests use agree with Traulsen et al. and the voter model."""
    for H in (nx.complete_graph(5), nx.cycle_graph(6)):
        N = H.number_of_nodes()
        p = exact_fixation(H, "random_independent", (0.0, 0.5), 1.0, 1.0, [0])
        assert p == pytest.approx(traulsen(N, 0.5), abs=1e-12)
    star = nx.star_graph(4)  # hub 0 of degree 4, four leaves: sum of degrees 8
    for schedule in ("random_independent", "synchronous"):
        assert exact_fixation(star, schedule, (0, 0), 1.0, 1.0, [0]) == pytest.approx(0.5)
        assert exact_fixation(star, schedule, (0, 0), 1.0, 1.0, [2]) == pytest.approx(1 / 8)


def test_random_independent_fermi_fixation_matches_the_traulsen_closed_form():
    H, K = nx.complete_graph(6), 3000
    m = typed_model(H, K, "random_independent", (0.0, 0.5), 1.0, 1.0, [[0]] * K, seed=1)
    check_share(fixation_share(m, K, 6), traulsen(6, 0.5))  # 0.414


def test_neutral_exit_probability_is_the_degree_weighted_share():
    """Voter model on a star: a variant at the hub (degree 5 of 10) fixes with probability 1/2,
    one at a leaf with 1/10, under the random-independent and the synchronous schedule."""
    H, K = nx.star_graph(5), 4000
    mutants = [[0]] * (K // 2) + [[3]] * (K // 2)
    for schedule, seed in (("random_independent", 2), ("synchronous", 3)):
        m = typed_model(H, K, schedule, (0.0, 0.0), 1.0, 1.0, mutants, seed)
        fixed = fixation_share(m, K, 6)
        check_share(fixed[: K // 2], 0.5)
        check_share(fixed[K // 2 :], 0.1)


def test_random_order_fixation_matches_its_exact_markov_chain():
    """Path of three, a less fit mutant in the middle: it fixes with probability 0.1485 under
    random order, 0.1973 random independent, 0.0792 synchronous (exact chains); with 4000
    replicates (SE 0.0056) the schedules are 8.7 and 12.3 standard errors apart."""
    H, K = nx.path_graph(3), 4000
    fit, beta = (1.0, 0.0), 1.0
    p = exact_fixation(H, "random_order", fit, beta, 1.0, [1])
    assert p == pytest.approx(0.1485, abs=1e-4)
    m = typed_model(H, K, "random_order", fit, beta, 1.0, [[1]] * K, seed=4)
    check_share(fixation_share(m, K, 3), p)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["synchronous", "random_order", "random_independent"])
@pytest.mark.parametrize(
    ("graph", "fit", "beta", "rate", "mutants"),
    [
        (nx.complete_graph(4), (0.0, 0.5), 1.0, 1.0, [0]),
        (nx.cycle_graph(5), (0.0, 1.0), 2.0, 0.5, [0, 1]),
        (nx.star_graph(4), (0.5, 0.0), 1.0, 1.0, [1]),
        (nx.path_graph(5), (0.0, 0.0), 1.0, 0.7, [0]),
    ],
)
def test_every_schedule_matches_its_exact_markov_chain(schedule, graph, fit, beta, rate, mutants):
    K, N = 6000, graph.number_of_nodes()
    p = exact_fixation(graph, schedule, fit, beta, rate, mutants)
    m = typed_model(graph, K, schedule, fit, beta, rate, [mutants] * K, seed=5)
    check_share(fixation_share(m, K, N), p)


# ---------------------------------------------------------------------------- kernels
def test_a_copy_carries_its_fitness_to_later_updates_in_the_same_step():
    """Path 0-1-2-3, agent 0 far fitter: acting 1, 2, 3 in turn, each looking left and always
    accepting a fitter model, the fit network travels to the end of the path in one step."""
    G = nx.path_graph(4)
    indptr = np.array([0, 1, 3, 5, 6])
    indices = np.array([1, 0, 2, 1, 3, 2])
    assert sorted(G[2]) == [1, 3]
    fitness = np.array([10.0, 0.0, 0.0, 0.0])
    acting = np.array([1, 2, 3])
    zeros = np.zeros(3)
    dst, src, parent, origin, last = S.imitation_sequence(
        acting, zeros, zeros, zeros, indptr, indices, fitness, 50.0, 1.0
    )
    np.testing.assert_array_equal(dst, [1, 2, 3])
    np.testing.assert_array_equal(src, [0, 1, 2])
    np.testing.assert_array_equal(parent, [-1, 0, 1])
    np.testing.assert_array_equal(origin, [0, 0, 0, 0])
    np.testing.assert_array_equal(last, [-1, 0, 1, 2])
    np.testing.assert_array_equal(fitness, [10.0] * 4)
    noise = np.array([[1.0], [2.0], [4.0]])
    S.lineage_noise(noise, parent)
    np.testing.assert_array_equal(noise[:, 0], [1.0, 3.0, 7.0])  # a copy of a copy: both noises


def imitation_oracle(params, fitness, indptr, indices, acting, look, nb, accept, noise, p):
    """The sequential definition, one row copy at a time (float64); ``noise`` row e is the
    standard normal noise of copy event e."""
    x, f = params.astype(np.float64), fitness.copy()
    events = []
    for t, i in enumerate(acting):
        if look[t] >= p["imitation_rate"]:
            continue
        deg = indptr[i + 1] - indptr[i]
        j = i if deg == 0 else indices[indptr[i] + int(nb[t] * deg)]
        if accept[t] < 1 / (1 + np.exp(-np.clip(p["beta"] * (f[j] - f[i]), -500, 500))):
            events.append((i, j))
            f[i] = f[j]
    for (i, j), e in zip(events, noise[: len(events)] * p["mutation"]):
        x[i] = x[j] + e
    return x


@pytest.mark.parametrize("schedule", ["random_order", "random_independent"])
def test_sequential_imitation_matches_a_one_copy_at_a_time_oracle(schedule):
    p = dict(imitation_rate=0.8, beta=3.0, mutation=0.05)
    m = NeuralModel(
        n_agents=30,
        graph="watts_strogatz",
        hidden=(3,),
        lr=0.0,
        init="independent",
        schedule=schedule,
        dtype="float64",
        measures="fast",
        rng=7,
        fitness=lambda model: -np.abs(model.population.params).sum(axis=1),
        **p,
    )
    for _ in range(3):
        x0 = m.population.params.copy()
        fit = -np.abs(x0).sum(axis=1)
        rng = copy.deepcopy(m.social_rng)
        n = m.n_agents
        acting = rng.permutation(n) if schedule == "random_order" else rng.integers(0, n, n)
        look, nb, accept = (rng.random(n) for _ in range(3))
        # copy event e's noise: the stream (e, step, SEQUENCE_MUTATION) of the model's key
        noise = fill_normals(np.empty((n, x0.shape[1])), m.mutation_key, m.steps + 1, 1)
        expected = imitation_oracle(
            x0, fit, m.csr.indptr, m.csr.indices, acting, look, nb, accept, noise, p
        )
        m.step()
        np.testing.assert_allclose(m.population.params, expected, rtol=0, atol=1e-12)
    assert m.copies_last_step > 0


def bc_oracle(m, x0, acting, eps, rate, space):
    """Hegselmann-Krause moves one at a time, distances from the current networks."""
    x = x0.copy()
    pop, csr = m.population, m.csr
    for i in acting:
        if space == "function":
            pop.params[...] = x
            values = pop.predict(m.task.probe_X).reshape(m.n_agents, -1).astype(np.float64)
        else:
            values = x.astype(np.float64)
        nb = csr.indices[csr.indptr[i] : csr.indptr[i + 1]]
        d = np.sqrt(((values[nb] - values[i]) ** 2).mean(axis=1))
        close = np.concatenate([[i], nb[d < eps]])
        x[i] = (1 - rate) * x[i] + rate * x[close].astype(np.float64).mean(axis=0)
    return x


@pytest.mark.parametrize("space", ["function", "weights"])
@pytest.mark.parametrize("schedule", ["random_order", "random_independent"])
def test_sequential_bounded_confidence_matches_a_one_move_at_a_time_oracle(schedule, space):
    eps = 0.6 if space == "function" else 1.2
    m = NeuralModel(
        n_agents=24,
        graph="watts_strogatz",
        task_params={"n_probe": 16},
        hidden=(4,),
        lr=0.0,
        init="independent",
        confidence=eps,
        confidence_space=space,
        bc_rate=0.7,
        schedule=schedule,
        dtype="float64",
        measures="fast",
        rng=8,
    )
    x0 = m.population.params.copy()
    rng = copy.deepcopy(m.social_rng)
    n = m.n_agents
    acting = rng.permutation(n) if schedule == "random_order" else rng.integers(0, n, n)
    expected = bc_oracle(m, x0, acting, eps, 0.7, space)
    m.population.params[...] = x0
    m.step()
    assert not np.allclose(m.population.params, x0)  # some agents moved
    np.testing.assert_allclose(m.population.params, expected, rtol=0, atol=1e-12)


def test_random_independent_adoption_copies_only_to_the_drawn_adopters():
    kw = dict(
        n_agents=40, task="mixture", adopt_share=0.5, lr=0.0, measures="fast", rng=9,
        init="independent",
    )  # fmt: skip
    m = NeuralModel(schedule="random_independent", **kw)
    x0 = m.population.params.copy()
    rng = copy.deepcopy(m.social_rng)
    m.step()
    drawn = rng.integers(0, 40, 40)
    adopters = m.rules[0].adopters
    src = int(m.rules[0].candidates[np.argmax(-m.fitness_ema[m.rules[0].candidates])])
    copied = np.flatnonzero(np.all(m.population.params == x0[src], axis=1))
    expected = np.union1d(adopters[np.isin(adopters, drawn)], [src])
    np.testing.assert_array_equal(copied, expected)
    assert 0 < len(copied) - 1 < len(adopters)  # some adopters were not drawn this step
    sync = NeuralModel(**kw)  # every adopter copies each step (random order: the same)
    sync.step()
    same = np.all(sync.population.params == sync.population.params[src], axis=1)
    assert same.sum() == len(adopters) + 1


def test_an_unknown_schedule_is_refused_with_the_allowed_names():
    with pytest.raises(ParameterError, match="schedule.*random_order"):
        NeuralModel(n_agents=4, imitation_rate=0.5, schedule="shuffled")
