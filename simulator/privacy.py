"""Differentially private federated averaging (DP-FedAvg) and its privacy accounting.

DP-FedAvg after McMahan, Ramage, Talwar and Zhang (2018), "Learning differentially private
recurrent language models", ICLR, with its fixed-denominator estimator. Each round:

1. every client takes part independently with probability ``q`` (Poisson sampling);
2. each participant's update relative to the server model ``theta`` is clipped to L2 norm at
   most ``C``: ``u_k = (x_k - theta) min(1, C / ||x_k - theta||)``;
3. the server adds Gaussian noise of standard deviation ``z C`` to the sum of the clipped
   updates and divides by the *expected* number of participants ``q n``:
   ``theta <- theta + (sum_k u_k + N(0, z^2 C^2 I)) / (q n)``;
4. every client starts again from ``theta``.

Adding or removing one client changes the sum by at most ``C``, and the noise is ``z`` times
that: one round is the Poisson-subsampled Gaussian mechanism with noise multiplier ``z`` and
sampling rate ``q`` (client-level privacy, add-or-remove-one neighbours). Its privacy loss, per
round and composed over the rounds so far, is computed by Google's ``dp-accounting`` library
(Renyi DP or privacy-loss distributions), never by hand here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.config import check_choice, check_int, check_number, fail
from simulator.social import SocialRule

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = ["ACCOUNTANTS", "DPFederatedAveraging", "clip_updates", "dp_epsilon"]

ACCOUNTANTS = ("rdp", "pld")
# The smallest positive noise multiplier the "pld" accountant takes: its privacy-loss
# distribution spans ~1 / z^2 and is discretized finely, so its time and memory grow as 1 / z^2
# (measured, one round, q = 1: z = 0.5 1.3 s and 0.27 GB, z = 0.1 5.9 s and 0.78 GB; z = 0.01
# ran for over 10 minutes at 4 GB, z = 0.001 asked for 76 GB). Smaller ones use "rdp".
PLD_MIN_NOISE = 0.1


def clip_updates(updates: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale each row of ``updates`` (k, n) to L2 norm at most ``clip``.

    Returns the clipped updates (float64, (k, n), a new array) and a bool (k,) marking the rows
    that were scaled down.
    """
    u = np.asarray(updates, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", u, u))
    clipped = norms > clip
    scale = np.where(clipped, clip / np.where(clipped, norms, 1.0), 1.0)
    return u * scale[:, None], clipped


def dp_epsilon(
    noise_multiplier: float, sample_rate: float, rounds: int, delta: float, accountant: str = "rdp"
) -> float:
    """Epsilon at ``delta`` after ``rounds`` rounds of the Poisson-sampled Gaussian mechanism.

    Parameters
    ----------
    noise_multiplier : float
        Noise std over the L2 sensitivity (``z``); 0 means no privacy (``inf``).
    sample_rate : float
        Poisson sampling probability ``q`` in (0, 1].
    rounds : int
        Number of rounds composed (0 gives 0.0).
    delta : float
        Target delta in (0, 1).
    accountant : str
        ``"rdp"``: Renyi DP (Mironov 2017; Mironov, Talwar and Zhang 2019). The accountant's
        RDP curve of one round is computed once per mechanism; ``rounds`` rounds compose to
        ``rounds`` times that curve (what ``RdpAccountant.compose(event, rounds)`` holds), turned
        into epsilon by ``dp_accounting.rdp.compute_epsilon``, the accountant's own conversion:
        milliseconds per call. ``"pld"``: privacy-loss distributions (tighter), a
        ``PLDAccountant`` composed ``rounds`` times: about 1-3 s per new round count on this
        class of machine, so measure it at few steps (``collect_every``).

    Returns
    -------
    float
        Epsilon as reported by ``dp_accounting`` (add-or-remove-one neighbouring relation).
    """
    accountant = check_choice("dp_accountant", accountant, ACCOUNTANTS)
    _check_pld_noise(accountant, noise_multiplier)
    if rounds == 0:
        return 0.0
    if noise_multiplier == 0:
        return float("inf")
    if accountant == "rdp":
        import dp_accounting

        orders, rdp = _rdp_curve(float(noise_multiplier), float(sample_rate))
        with _quiet_absl():  # extreme rates (q ~ 1e-300) log rounding warnings per order
            return float(dp_accounting.rdp.compute_epsilon(orders, rounds * rdp, delta)[0])
    return _pld_epsilon(float(noise_multiplier), float(sample_rate), int(rounds), float(delta))


def _check_pld_noise(accountant: str, noise_multiplier: float) -> None:
    """Refuse a positive noise multiplier below :data:`PLD_MIN_NOISE` for the "pld" accountant."""
    if accountant == "pld" and 0 < noise_multiplier < PLD_MIN_NOISE:
        raise fail(
            "dp_noise_multiplier",
            noise_multiplier,
            f"0 or >= {PLD_MIN_NOISE} with dp_accountant='pld' (the privacy-loss distribution "
            "of a smaller noise is too wide to compute here; dp_accountant='rdp' accounts for "
            "any noise)",
        )


@lru_cache(maxsize=64)
def _rdp_curve(noise_multiplier: float, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Orders and RDP of one round, from ``dp_accounting``'s RdpAccountant."""
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    with _quiet_absl():
        acc.compose(_event(noise_multiplier, sample_rate))
    return np.array(acc.orders, dtype=np.float64), np.array(acc.rdp, dtype=np.float64)


@lru_cache(maxsize=4096)
def _pld_epsilon(noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    import dp_accounting

    acc = dp_accounting.pld.PLDAccountant()
    acc.compose(_event(noise_multiplier, sample_rate), rounds)
    return float(acc.get_epsilon(delta))


def _event(noise_multiplier: float, sample_rate: float) -> Any:
    import dp_accounting

    return dp_accounting.PoissonSampledDpEvent(
        sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
    )


@contextmanager
def _quiet_absl() -> Iterator[None]:
    """The RDP accountant skips orders whose series does not converge and logs a warning for
    each through absl; those orders are simply not used, so the warnings are muted here."""
    log = logging.getLogger("absl")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class DPFederatedAveraging(SocialRule):
    """DP-FedAvg: clipped client updates, Gaussian noise on their sum, Poisson client sampling.

    Every ``every`` steps one round runs (see the module docstring for the equations). The
    server model starts as the mean of the agents' parameters when the model is built (their
    shared initialization with ``init="shared"``, the setting DP-FedAvg assumes). Between
    rounds every client trains locally from the last server model; only the sampled ones'
    updates reach the server.

    Measures: ``dp_epsilon`` (privacy spent by the rounds so far, at ``delta``),
    ``dp_epsilon_round`` (one round alone), ``dp_rounds`` and ``dp_clipped_share`` (share of the
    last round's participants whose update was clipped; 0 when none took part).
    """

    name = "dp_fedavg"
    measure_names = ("dp_epsilon", "dp_epsilon_round", "dp_rounds", "dp_clipped_share")

    def __init__(
        self,
        every: int,
        clip: float,
        noise_multiplier: float,
        sample_rate: float,
        delta: float = 1e-5,
        accountant: str = "rdp",
    ):
        self.every = check_int("fedavg_every", every, low=1)
        self.clip = check_number("dp_clip", clip, 0.0, low_open=True)
        self.noise_multiplier = check_number("dp_noise_multiplier", noise_multiplier, 0.0)
        self.sample_rate = check_number("fedavg_participation", sample_rate, 0.0, 1.0, True)
        self.delta = check_number("dp_delta", delta, 0.0, 1.0, True, True)
        self.accountant = check_choice("dp_accountant", accountant, ACCOUNTANTS)
        _check_pld_noise(self.accountant, self.noise_multiplier)
        self.server: np.ndarray | None = None
        self.rounds = 0
        self.clipped_share = 0.0
        self._warned_infinite = False
        if self.noise_multiplier == 0:
            warnings.warn(
                "dp_noise_multiplier=0: DP-FedAvg clips the updates but adds no noise, so it "
                "gives no privacy; dp_epsilon and dp_epsilon_round are reported as inf",
                UserWarning,
                stacklevel=2,
            )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> DPFederatedAveraging:
        """The rule of a model's parameters (``fedavg_every``, ``dp_clip > 0``, ...)."""
        if p["fedavg_noise"] > 0:
            raise fail(
                "fedavg_noise",
                p["fedavg_noise"],
                "0 when dp_clip > 0 (DP-FedAvg adds its own noise, dp_noise_multiplier * dp_clip)",
            )
        return cls(
            every=p["fedavg_every"],
            clip=p["dp_clip"],
            noise_multiplier=p["dp_noise_multiplier"],
            sample_rate=p["fedavg_participation"],
            delta=p["dp_delta"],
            accountant=p["dp_accountant"],
        )

    def graph_changed(self, model: NeuralModel) -> None:
        if self.server is None:  # called once when the model is built (the graph is unused)
            self.server = model.population.params.mean(axis=0, dtype=np.float64)

    def after_train(self, model: NeuralModel) -> None:
        if model.steps % self.every:
            return
        pop, rng = model.population, model.social_rng
        n = pop.n_agents
        who = np.flatnonzero(rng.random(n) < self.sample_rate)
        clipped, was = clip_updates(pop.params[who] - self.server, self.clip)
        noise = rng.standard_normal(pop.n_params) * (self.noise_multiplier * self.clip)
        with np.errstate(over="ignore", invalid="ignore"):
            server = self.server + (clipped.sum(axis=0) + noise) / (self.sample_rate * n)
            params = server.astype(pop.dtype)
        if not np.isfinite(params).all():  # refused before anything changes
            raise fail(
                "fedavg_participation",
                self.sample_rate,
                f"large enough that the server update (the clipped updates and the noise over "
                f"fedavg_participation x n_agents = {self.sample_rate * n:.3g}) stays finite in "
                f"{pop.dtype}",
            )
        self.server = server
        pop.params[...] = params
        self.rounds += 1
        self.clipped_share = float(was.mean()) if who.size else 0.0

    def epsilon(self, rounds: int | None = None) -> float:
        """Epsilon at ``delta`` after ``rounds`` rounds (default: the rounds run so far)."""
        rounds = self.rounds if rounds is None else rounds
        return dp_epsilon(
            self.noise_multiplier, self.sample_rate, rounds, self.delta, self.accountant
        )

    def measures(self, model: NeuralModel) -> dict[str, float]:
        out = {
            "dp_epsilon": self.epsilon(),
            "dp_epsilon_round": self.epsilon(1),
            "dp_rounds": float(self.rounds),
            "dp_clipped_share": self.clipped_share,
        }
        if self.noise_multiplier > 0 and not self._warned_infinite and np.isinf(out["dp_epsilon"]):
            self._warned_infinite = True  # once a run: the accountant says no finite epsilon
            warnings.warn(
                f"the {self.accountant!r} accountant gives dp_epsilon = inf at "
                f"dp_delta={self.delta:g} (no finite epsilon for so small a delta or so many "
                "rounds); it is reported as inf",
                UserWarning,
                stacklevel=2,
            )
        return out

    def get_state(self) -> dict[str, Any]:
        return {
            "server": None if self.server is None else self.server.copy(),
            "rounds": self.rounds,
            "clipped_share": self.clipped_share,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        server = state.get("server")
        self.server = None if server is None else np.array(server, dtype=np.float64)
        self.rounds = int(state.get("rounds", 0))
        self.clipped_share = float(state.get("clipped_share", 0.0))
