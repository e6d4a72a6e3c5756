"""DP-FedAvg: clipping, the noise scale and Poisson sampling checked directly; epsilon against
Google's dp-accounting for the same mechanism (Poisson-subsampled Gaussian, composed)."""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest

from models import REGISTRY
from simulator.config import ParameterError
from simulator.privacy import DPFederatedAveraging, clip_updates

FEDERATED = REGISTRY["federated"]
Z = 4.5  # standard errors allowed in the statistical checks (fixed seeds)


def dp_model(**kw):
    base = dict(
        lr=0.0,
        fedavg_every=1,
        dp_clip=0.5,
        dp_noise_multiplier=0.0,
        fedavg_participation=1.0,
        dtype="float64",
        measures="fast",
        rng=0,
    )
    return FEDERATED(**{**base, **kw})


def the_rule(m) -> DPFederatedAveraging:
    (rule,) = [r for r in m.rules if isinstance(r, DPFederatedAveraging)]
    return rule


def test_clipping_bounds_each_norm_and_keeps_the_direction():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((50, 7)) * rng.uniform(0.01, 3, (50, 1))
    clipped, was = clip_updates(u, 1.0)
    norms, new = np.linalg.norm(u, axis=1), np.linalg.norm(clipped, axis=1)
    np.testing.assert_allclose(new, np.minimum(norms, 1.0), rtol=1e-12)
    np.testing.assert_array_equal(was, norms > 1.0)
    np.testing.assert_allclose(clipped / new[:, None], u / norms[:, None], rtol=1e-12)
    assert 0 < was.sum() < 50


def test_a_noiseless_full_round_adds_the_mean_clipped_update_to_the_server_model():
    m = dp_model()
    rule, n = the_rule(m), m.n_agents
    theta = rule.server.copy()
    rng = np.random.default_rng(1)
    deltas = rng.standard_normal((n, m.population.n_params)) * rng.uniform(0.01, 0.2, (n, 1))
    m.population.params[...] = theta + deltas
    m.step()
    norms = np.linalg.norm(deltas, axis=1)
    clipped = deltas * np.minimum(1.0, 0.5 / norms)[:, None]
    expected = theta + clipped.sum(axis=0) / n
    np.testing.assert_allclose(rule.server, expected, atol=1e-12)
    np.testing.assert_allclose(m.population.params, np.tile(expected, (n, 1)), atol=1e-12)
    row = m.model_dataframe().iloc[-1]
    assert row["dp_clipped_share"] == pytest.approx((norms > 0.5).mean())
    assert 0 < row["dp_clipped_share"] < 1


def test_the_noise_on_the_server_model_has_std_z_clip_over_q_n():
    """Clients that did not move send zero updates: each round the server model moves by
    N(0, (z C)^2) / (q n) per coordinate. 40 rounds x 116 coordinates: the sample std is
    within 4.5 standard errors (1/sqrt(2N) relative) of z C / (q n)."""
    z, C, q = 1.3, 0.7, 0.5
    m = dp_model(dp_noise_multiplier=z, dp_clip=C, fedavg_participation=q, rng=2)
    rule, n = the_rule(m), m.n_agents
    steps = []
    for _ in range(40):
        before = rule.server.copy()
        m.step()
        steps.append(rule.server - before)
    steps = np.concatenate(steps)
    sigma = z * C / (q * n)
    assert steps.std() == pytest.approx(sigma, rel=Z / np.sqrt(2 * steps.size))
    assert abs(steps.mean()) < Z * sigma / np.sqrt(steps.size)


def test_clients_are_sampled_independently_with_probability_q():
    """Every client sends the same update u with ||u|| = 2C, clipped to u/2: the server moves by
    k u / (2 q n) with k the number sampled, which must be Binomial(n, q) (Poisson sampling),
    not a fixed-size sample."""
    q, C, R = 0.3, 0.5, 300
    m = dp_model(fedavg_participation=q, dp_clip=C, rng=3)
    rule, n = the_rule(m), m.n_agents
    u = np.random.default_rng(4).standard_normal(m.population.n_params)
    u *= 2 * C / np.linalg.norm(u)
    counts = []
    for _ in range(R):
        theta = rule.server.copy()
        m.population.params[...] = theta + u
        m.step()
        counts.append((rule.server - theta) @ u / (u @ u / 2) * q * n)
    counts = np.array(counts)
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)
    mean, var = n * q, n * q * (1 - q)
    assert abs(counts.mean() - mean) < Z * np.sqrt(var / R)
    assert abs(counts.var(ddof=1) - var) < Z * var * np.sqrt(2 / (R - 1))


@pytest.mark.parametrize("accountant", ["rdp", pytest.param("pld", marks=pytest.mark.slow)])
def test_epsilon_is_the_accountants_figure_for_the_same_mechanism(accountant):
    q, z, delta, every = 0.25, 1.1, 1e-5, 2
    m = dp_model(
        fedavg_participation=q,
        dp_noise_multiplier=z,
        dp_delta=delta,
        dp_accountant=accountant,
        fedavg_every=every,
        lr=0.05,
        rng=5,
    )
    m.run_for(8)
    df = m.model_dataframe()
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z))
    make = {"rdp": dp_accounting.rdp.RdpAccountant, "pld": dp_accounting.pld.PLDAccountant}
    acc = make[accountant]()
    expected = [0.0]
    for _ in range(4):
        acc.compose(event)  # one round at a time
        expected.append(acc.get_epsilon(delta))
    rounds = df["step"].to_numpy() // every
    np.testing.assert_array_equal(df["dp_rounds"], rounds)
    np.testing.assert_allclose(df["dp_epsilon"], np.array(expected)[rounds], rtol=1e-6)
    np.testing.assert_allclose(df["dp_epsilon_round"], expected[1], rtol=1e-6)
    assert 0 < expected[1] < expected[4]


def test_plain_fedavg_noise_cannot_be_mixed_with_dp_fedavg():
    with pytest.raises(ParameterError, match="fedavg_noise.*dp_clip"):
        dp_model(fedavg_noise=0.1)
    with pytest.raises(ParameterError, match="fedavg_participation"):
        dp_model(fedavg_participation=0.0)


def test_the_rule_state_round_trips():
    m = dp_model(dp_noise_multiplier=1.0, lr=0.05, rng=6)
    m.run_for(3)
    state = the_rule(m).get_state()
    fresh = DPFederatedAveraging(1, 0.5, 1.0, 1.0)
    fresh.set_state(state)
    np.testing.assert_array_equal(fresh.server, the_rule(m).server)
    assert fresh.rounds == 3 and fresh.epsilon() == the_rule(m).epsilon()


def test_without_dp_the_measures_and_the_plain_rule_stay_as_they_were():
    m = FEDERATED(measures="fast", rng=0)
    assert not any(name.startswith("dp_") for name in m.measure_names)
    assert [r.name for r in m.rules] == ["fedavg"]


def test_no_noise_is_no_privacy_and_says_so():
    with pytest.warns(UserWarning, match="dp_noise_multiplier=0: .* no privacy"):
        m = dp_model()
    m.step()
    row = m.model_dataframe().iloc[-1]
    assert np.isinf(row["dp_epsilon"]) and np.isinf(row["dp_epsilon_round"])


def test_a_participation_too_small_for_a_finite_update_is_refused_and_nothing_changes():
    m = dp_model(dp_noise_multiplier=1.0, fedavg_participation=1e-300, dtype="float32")
    server, params = the_rule(m).server.copy(), m.population.params.copy()
    with pytest.raises(ParameterError, match="^fedavg_participation=1e-300 .* stays finite"):
        for _ in range(50):  # a round with a participant, or with noise alone, overflows
            m.step()
    rule = the_rule(m)
    assert np.isfinite(rule.server).all() and np.isfinite(m.population.params).all()
    np.testing.assert_array_equal(rule.server, server)
    np.testing.assert_array_equal(m.population.params, params)


def test_the_pld_accountant_refuses_a_noise_too_small_to_account_for():
    """Below 0.1 the privacy-loss distribution is too wide to compute here (z = 0.001 asked
    for 76 GB, z = 0.01 ran for minutes): refused by name before any round, pointing to rdp,
    which takes any noise."""
    from simulator.privacy import PLD_MIN_NOISE, dp_epsilon

    for z in (1e-300, 1e-3, 0.09):
        with pytest.raises(ParameterError, match=r"dp_noise_multiplier=.*dp_accountant='rdp'"):
            DPFederatedAveraging(1, 1.0, z, 1.0, accountant="pld")
        with pytest.raises(ParameterError, match="dp_noise_multiplier="):
            dp_epsilon(z, 1.0, 3, 1e-5, accountant="pld")
    assert dp_epsilon(1e-3, 1.0, 3, 1e-5, accountant="rdp") > 0  # rdp: any noise
    DPFederatedAveraging(1, 1.0, PLD_MIN_NOISE, 1.0, accountant="pld")
    with pytest.warns(UserWarning, match="no privacy"):
        DPFederatedAveraging(1, 1.0, 0.0, 1.0, accountant="pld")  # 0: inf, as before
