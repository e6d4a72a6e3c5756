"""GANTrainer: the kernel entropy bonus, and a generator that sees real data only through D."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import ParameterError, Population
from simulator.gan import GANTrainer, kde_log_density_gradient


def _mean_log_density(x: np.ndarray, h: float) -> float:
    """Slow oracle: mean_b log mean_a N(x_b; x_a, h^2 I) up to a constant, one agent (B, d)."""
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return float(np.mean(np.log(np.exp(-d2 / (2 * h * h)).mean(axis=1))))


def test_kde_gradient_matches_finite_differences():
    x = np.random.default_rng(0).standard_normal((3, 7, 2))
    h, eps = 0.7, 1e-6
    grad = kde_log_density_gradient(x, h)
    assert grad.shape == x.shape and grad.dtype == np.float64
    for p in range(3):
        numeric = np.zeros_like(x[p])
        for b in range(7):
            for k in range(2):
                e = np.zeros_like(x[p])
                e[b, k] = eps
                up, down = _mean_log_density(x[p] + e, h), _mean_log_density(x[p] - e, h)
                numeric[b, k] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad[p], numeric, atol=1e-7)


def test_kde_gradient_is_translation_invariant_and_sums_to_zero():
    x = np.random.default_rng(1).standard_normal((2, 9, 3))
    g = kde_log_density_gradient(x, 0.5)
    np.testing.assert_allclose(g, kde_log_density_gradient(x + 5.0, 0.5), atol=1e-9)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-12)


def test_descending_the_entropy_bonus_spreads_a_batch():
    x = 0.1 * np.random.default_rng(2).standard_normal((1, 16, 2))
    spread = x.std()
    for _ in range(20):
        x = x - 0.5 * kde_log_density_gradient(x, 0.3)
    assert x.std() > 1.5 * spread


def _generators(seed: int = 0) -> Population:
    return Population(
        4,
        (3, 8, 2),
        activation="relu",
        output="linear",
        loss="mse",
        optimizer="adam",
        lr=0.01,
        dtype="float64",
        seed=seed,
    )


@pytest.mark.parametrize("diversity", [0.0, 1.0])
def test_generator_sees_real_data_only_through_the_discriminator(diversity):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 16, 3))
    real_a, real_b = rng.standard_normal((2, 4, 16, 2))
    after = []
    for real in (real_a, real_b):
        G = _generators()
        trainer = GANTrainer(G, hidden=(8,), lr=0.0, diversity=diversity, seed=1)  # frozen D
        trainer.step(z, real)
        after.append(G.params.copy())
    np.testing.assert_array_equal(after[0], after[1])
    assert not np.array_equal(after[0], _generators().params)
    G = _generators()
    GANTrainer(G, hidden=(8,), lr=0.01, diversity=diversity, seed=1).step(z, real_a)
    changed = G.params.copy()
    G = _generators()
    GANTrainer(G, hidden=(8,), lr=0.01, diversity=diversity, seed=1).step(z, real_b)
    assert not np.array_equal(changed, G.params)  # a learning D carries the data to G


def test_trainer_sets_gan_adam_beta1_and_refuses_bad_settings():
    G = _generators()
    trainer = GANTrainer(G)
    assert G.beta1 == 0.5 and trainer.discriminators.beta1 == 0.5
    G = _generators()
    GANTrainer(G, beta1=None)
    assert G.beta1 == 0.9
    with pytest.raises(ParameterError, match="bandwidth"):
        GANTrainer(_generators(), bandwidth=0.0)
    with pytest.raises(ParameterError, match="diversity"):
        GANTrainer(_generators(), diversity=-1.0)
