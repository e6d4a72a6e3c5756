"""A generator and a discriminator per agent, trained adversarially by the population kernels.

Each agent holds a generator ``G: z -> x`` (the model's ``population``: the network agents
share, copy and are measured by) and a private discriminator ``D: x -> P(real)``. One step:

1. ``D`` takes one optimizer step on binary cross-entropy: real points labelled 1, ``G(z)``
   labelled 0 (one kernel call for the whole population);
2. ``G`` takes one step on the non-saturating loss ``-log D(G(z))`` (Goodfellow et al. 2014),
   optionally plus ``diversity * mean_b log p_hat(G(z_b))``, with ``p_hat`` a Gaussian kernel
   density estimate over the agent's own batch (bandwidth ``bandwidth``): minus an entropy
   estimate of the generated distribution, a remedy for mode collapse (entropy-regularized
   GANs, e.g. Dieng et al. 2019, "Prescribed GANs"). The term uses no real data; the pull
   toward the data reaches ``G`` only through ``D``'s input gradients
   (``Population.input_gradients``). The gradient is applied with the exact identity
   ``d/dx MSE(x, x - c g) = g`` for ``c = B * d / 2``, so no second backward kernel is needed.

Mode collapse on the ring task (8 Gaussians, :class:`simulator.tasks.RingMixture`) shows as a
generator that puts its samples on a few modes and misses the others (``mode_statistics``).
"""

from __future__ import annotations

import numpy as np

from simulator.config import check_number
from simulator.kernels import measure_modes as MH
from simulator.kernels.sized import blocks, sized_call
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
        Discriminators' Adam learning rate.
    diversity : float
        Weight of the kernel entropy bonus in the generators' loss (0: plain GAN). Large
        values (about 3 on the ring task) push samples out of the discriminator's reach.
    bandwidth : float
        Standard deviation of the Gaussian kernel of that entropy estimate, in data units
        (about a third of the distance between modes works on the ring task).
    beta1 : float or None
        Adam's first-moment decay for the discriminators and, set in place on ``generators``,
        for the generators (0.5, as usual for GANs; the default 0.9 lets this small GAN
        oscillate and cover fewer modes). None leaves the generators' value.
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
        bandwidth: float = 0.5,
        beta1: float | None = 0.5,
        seed: int = 0,
    ):
        if generators.output != "linear" or generators.loss_name != "mse":
            raise ValueError("GANTrainer needs generators with output='linear', loss='mse'")
        self.generators = generators
        self.diversity = check_number("diversity", diversity, 0.0)
        self.bandwidth = check_number("bandwidth", bandwidth, 0.0, low_open=True)
        d = generators.layers[-1]
        if beta1 is not None:
            generators.beta1 = check_number("beta1", beta1, 0.0, 1.0, high_open=True)
        self.discriminators = Population(
            generators.n_agents,
            (d, *hidden, 1),
            activation=activation,
            output="sigmoid",
            loss="bce",
            optimizer="adam",
            lr=lr,
            beta1=0.5 if beta1 is None else beta1,
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
            grad += self.diversity * kde_log_density_gradient(fake, self.bandwidth)
        c = batch * fake.shape[2] / 2
        G.train_step(z, fake - c * grad)
        return g_losses


def kde_log_density_gradient(x: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gradient of ``mean_b log p_hat(x_b)`` with respect to every point, per agent.

    ``p_hat(y) = mean_a N(y; x_a, bandwidth^2 I)`` is the Gaussian kernel density estimate over
    the agent's own batch (its own point included); minus the mean is an entropy estimate, so
    descending ``diversity *`` this gradient spreads the batch out.

    Parameters
    ----------
    x : float (P, B, d), each agent's batch of points.
    bandwidth : float > 0, the kernel's standard deviation.

    Returns
    -------
    float64 (P, B, d).
    """
    x = np.asarray(x, dtype=np.float64)
    h2 = bandwidth * bandwidth
    sq = (x * x).sum(axis=-1)
    d2 = sq[:, :, None] + sq[:, None, :] - 2 * (x @ x.transpose(0, 2, 1))  # (P, B, B)
    logits = -d2 / (2 * h2)
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)  # w[p, b, a]: responsibility of x_a for x_b
    # d/dx_b log p_hat(x_b) = -sum_a w_ba (x_b - x_a) / h2; through the other points' densities:
    # sum_c w_cb (x_c - x_b) / h2
    own = -(x - w @ x)
    others = w.transpose(0, 2, 1) @ x - x * w.sum(axis=1)[..., None]
    return (own + others) / (h2 * x.shape[1])


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
    samples = np.ascontiguousarray(samples)
    if samples.dtype.kind != "f":
        samples = samples.astype(np.float64)
    P, n = samples.shape[:2]
    hits = np.empty((P, centers.shape[0]))
    # one parallel pass, no (P, n, M) temporaries; the distances of np.linalg.norm, exactly
    work = MH.ROWS * 4.0 * samples.shape[1] * samples.shape[2] * centers.shape[0]
    args = (samples, np.ascontiguousarray(centers, dtype=np.float64), radius, hits)
    good = sized_call("mode_hits", blocks(P, MH.ROWS), work, MH.mode_hits, *args)
    share = hits / n
    pooled = hits.sum(axis=0) / (P * n)
    return {
        "mode_coverage": float((share >= min_share).mean()),
        "population_coverage": float((pooled >= min_share).mean()),
        "sample_quality": float(good / (P * n)),
    }
