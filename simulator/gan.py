"""A generator and a discriminator per agent, trained adversarially by the population kernels.

Each agent holds a generator ``G: z -> x`` (the model's ``population``: the network agents
share, copy and are measured by) and a private discriminator ``D: x -> P(real)``. One step:

1. ``D`` takes one optimizer step on binary cross-entropy: real points labelled 1, ``G(z)``
   labelled 0 (one kernel call for the whole population);
2. ``G`` takes one step on the non-saturating loss ``-log D(G(z))`` (Goodfellow et al. 2014),
   optionally minus ``diversity * mean_b ||G(z_b) - mean||^2`` (the remedy for mode collapse:
   reward spread within a batch). The gradient reaches ``G`` through ``D``'s input gradients
   (``Population.input_gradients``) and is applied with the exact identity
   ``d/dx MSE(x, x - c g) = g`` for ``c = B * d / 2``, so no second backward kernel is needed.
"""

from __future__ import annotations

import numpy as np

from simulator.population import Population


class GANTrainer:
    """Adversarial training of ``generators`` against per-agent discriminators.

    Parameters
    ----------
    generators : Population
        ``(z_dim, ..., d)`` networks with a linear output and ``loss="mse"``.
    hidden : tuple of int
        Hidden widths of the discriminators.
    activation : str
        Their hidden activation.
    lr : float
        Discriminators' Adam learning rate (``beta1 = 0.5``, as usual for GANs).
    diversity : float
        Weight of the within-batch spread bonus in the generators' loss (0: plain GAN).
    seed : int
        Seeds the discriminators' initialization.
    """

    def __init__(
        self,
        generators: Population,
        hidden: tuple[int, ...] = (32, 32),
        activation: str = "tanh",
        lr: float = 0.002,
        diversity: float = 0.0,
        seed: int = 0,
    ):
        if generators.output != "linear" or generators.loss_name != "mse":
            raise ValueError("GANTrainer needs generators with output='linear', loss='mse'")
        self.generators = generators
        self.diversity = diversity
        d = generators.layers[-1]
        self.discriminators = Population(
            generators.n_agents,
            (d, *hidden, 1),
            activation=activation,
            output="sigmoid",
            loss="bce",
            optimizer="adam",
            lr=lr,
            beta1=0.5,
            dtype=generators.dtype.name,
            seed=seed,
        )
        self.d_losses = np.zeros(generators.n_agents)

    def step(self, z: np.ndarray, real: np.ndarray) -> np.ndarray:
        """One adversarial step for every agent.

        Parameters
        ----------
        z : float (P, B, z_dim) latent codes; real : float (P, B, d) real points.

        Returns
        -------
        float64 (P,): each generator's loss ``-mean log D(G(z))`` before its update.
        """
        G, D = self.generators, self.discriminators
        fake = G.predict(z)
        n, batch = fake.shape[0], fake.shape[1]
        X = np.concatenate([np.asarray(real, dtype=G.dtype), fake], axis=1)
        labels = np.concatenate([np.ones((n, batch, 1)), np.zeros((n, batch, 1))], axis=1)
        self.d_losses = D.train_step(X, labels).astype(np.float64)
        ones = np.ones((n, batch, 1), dtype=G.dtype)
        g_losses = D.loss(fake, ones).astype(np.float64)
        grad = D.input_gradients(fake, ones).astype(np.float64)  # d mean_b loss_b / d x_b
        if self.diversity > 0:
            centred = fake - fake.mean(axis=1, keepdims=True)
            grad -= 2 * self.diversity * centred / batch
        c = batch * fake.shape[2] / 2
        G.train_step(z, fake - c * grad)
        return g_losses


def mode_statistics(
    samples: np.ndarray, centers: np.ndarray, radius: float, min_share: float
) -> dict[str, float]:
    """How well generated samples cover the modes of a mixture.

    Parameters
    ----------
    samples : float (P, n, d), each agent's generated points.
    centers : float (M, d), the modes.
    radius : float
        A sample is of high quality when it lies within ``radius`` of its nearest mode.
    min_share : float
        A mode is covered by an agent when at least this share of the agent's samples are
        high-quality samples of that mode.

    Returns
    -------
    dict with ``mode_coverage`` (mean over agents of the share of modes each covers),
    ``population_coverage`` (share of modes covered by the pooled samples of all agents, with
    the same ``min_share`` of the pool), ``sample_quality`` (share of high-quality samples).
    """
    dist = np.linalg.norm(samples[:, :, None, :] - centers[None, None], axis=-1)  # (P, n, M)
    nearest = dist.argmin(axis=-1)
    good = dist.min(axis=-1) < radius
    m = centers.shape[0]
    hits = np.zeros((samples.shape[0], m))
    agent = np.repeat(np.arange(samples.shape[0]), samples.shape[1]).reshape(good.shape)
    np.add.at(hits, (agent[good], nearest[good]), 1.0)
    share = hits / samples.shape[1]
    pooled = hits.sum(axis=0) / good.size
    return {
        "mode_coverage": float((share >= min_share).mean()),
        "population_coverage": float((pooled >= min_share).mean()),
        "sample_quality": float(good.mean()),
    }
