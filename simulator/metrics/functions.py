"""Function-space and representation homogenization: outputs and hidden activations on a probe.

Outputs on a fixed probe set are invariant to every reparametrization of a network, so these
are the safest measures of "are these agents the same?". Linear CKA compares hidden
representations; it is far from 0 even between unrelated random networks, so always report it
beside :func:`cka_baseline`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from simulator.config import check_int, fail
from simulator.kernels import measure_cka as KC
from simulator.kernels import measure_function as KF
from simulator.kernels import measure_weights as KW
from simulator.metrics._checks import (
    as_array,
    get_rng,
    max_abs,
    preds_array,
    real_array,
    sample_pairs,
    too_large,
)
from simulator.metrics.align import hidden_activations

# A representation whose centred energy is below this share of its raw energy is constant
# up to rounding: its CKA with anything is defined as 0.
_CONSTANT_RTOL = 1e-20


class FunctionSummary(NamedTuple):
    """The population's mean output and each agent's distance to it (see
    :func:`function_summary`).

    mean : float64 (n_probe, d_out); sq_distances : float64 (P,)
    ``mean_n ||f_i(x_n) - f_bar(x_n)||^2``; dispersion : float, their mean.
    """

    mean: np.ndarray
    sq_distances: np.ndarray
    dispersion: float


def function_summary(preds: Any) -> FunctionSummary:
    """Mean output function and each agent's mean squared distance to it, exactly.

    Two parallel Numba passes over the outputs in float64 (:mod:`simulator.kernels`), each
    sum in a fixed order: bit-identical on any number of threads; O(P n_probe d_out).

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified. Finite, and small enough for
        the squared distances to fit in float64 (else a ParameterError says so).
    """
    F = preds_array(preds)
    summary = summarize_outputs(F)
    if not math.isfinite(summary.dispersion):  # finite outputs whose squares overflowed
        raise too_large("preds", F)
    return summary


def summarize_outputs(F: np.ndarray) -> FunctionSummary:
    """:func:`function_summary` of outputs F (P, n, d) already validated (no value checks: a NaN
    or inf anywhere makes the mean non-finite)."""
    P, n, d = F.shape
    G = np.ascontiguousarray(F.reshape(P, n * d))
    kernel = KW.pick(KF.output_moments, KF.output_moments_serial, G.size)
    mean, sq, total = kernel(G, n, np.empty(n * d + P))
    return FunctionSummary(mean.reshape(n, d), sq, total / P)


def function_dispersion(preds: Any) -> float:
    """Mean squared distance of the agents' outputs to the population's mean output.

    ``(1/P) sum_i mean_n ||f_i(x_n) - f_bar(x_n)||^2`` (squared norm summed over outputs,
    averaged over probe items), float64, exact (:func:`function_summary`). Equals half the mean
    over all ``P^2`` ordered pairs of ``mean_n ||f_i(x_n) - f_j(x_n)||^2``; with ``d_out = 1``
    it is the Krogh-Vedelsby ambiguity.

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified.

    Returns
    -------
    float >= 0 (0 when all agents compute the same outputs).
    """
    return function_summary(preds).dispersion


def _decisions(F: np.ndarray) -> tuple[np.ndarray, int]:
    """Class decisions (P, n) int64 and the number of classes K."""
    if F.shape[2] == 1:
        return (F[:, :, 0] > 0.5).astype(np.int64), 2
    return F.argmax(axis=2).astype(np.int64), F.shape[2]


def prediction_agreement(preds: Any) -> float:
    """Mean over probe items of the share of agents that make the plurality decision.

    Decisions: the argmax over outputs (first index on ties), or for ``d_out == 1`` the
    threshold ``output > 0.5``. 1 means every agent decides alike on every item; the minimum is
    ``1/K`` for ``K`` classes.

    Parameters
    ----------
    preds : float array, shape (P, n_probe, d_out). Not modified.

    Returns
    -------
    float in [1/K, 1].
    """
    F = preds_array(preds)
    _P, _n = F.shape[:2]
    dec, K = _decisions(F)
    return decisions_agreement(dec, K)


def agreement_of_decisions(dec: Any, n_classes: int) -> float:
    """:func:`prediction_agreement` from decisions ``dec`` (P, n) ints in [0, n_classes)."""
    n_classes = check_int("n_classes", n_classes, low=1)
    d = as_array("dec", dec)
    if d.ndim != 2 or d.dtype.kind not in "iu" or 0 in d.shape:
        raise fail("dec", f"an array of dtype {d.dtype} and shape {d.shape}", "ints (P, n)")
    if d.min() < 0 or d.max() >= n_classes:
        raise fail("dec", f"values in [{d.min()}, {d.max()}]", f"ints in [0, {n_classes})")
    # classes no agent decides count 0 on every item: only those up to the largest decision
    return decisions_agreement(d, min(n_classes, int(d.max()) + 1))


def decision_counts(dec: np.ndarray, n_classes: int) -> np.ndarray:
    """counts (n, K) int64: how many agents make decision k on item b, for decisions (m, n)
    known to be valid (a kernel's output): no pass over them to check their range."""
    counts = np.empty((dec.shape[1], n_classes), dtype=np.int64)
    KF.class_counts(np.ascontiguousarray(dec, dtype=np.int64), counts)
    return counts


def counts_agreement(counts: np.ndarray, n_agents: int) -> float:
    """Mean over items of the share of the ``n_agents`` agents making the plurality decision,
    from :func:`decision_counts`."""
    return float(counts.max(axis=1).mean() / n_agents)


def decisions_agreement(dec: np.ndarray, n_classes: int) -> float:
    """:func:`agreement_of_decisions` of decisions known to be valid (a kernel's output): no
    pass over them to check their range."""
    return counts_agreement(decision_counts(dec, n_classes), dec.shape[0])


def _centered(H: np.ndarray) -> np.ndarray:
    """float64 copy of H with each column (last axis) centred over the items (axis -2)."""
    X = np.array(H, dtype=np.float64)
    X -= X.mean(axis=-2, keepdims=True)
    return X


def _is_constant(raw: np.ndarray, centered_energy: np.ndarray) -> np.ndarray:
    raw_energy = np.einsum("...ij,...ij->...", raw, raw, dtype=np.float64)
    return centered_energy <= _CONSTANT_RTOL * raw_energy


def linear_cka(H1: Any, H2: Any) -> float:
    """Linear centred kernel alignment of two representations of the same items.

    Kornblith et al. (2019): with column-centred ``X``, ``Y``,
    ``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, computed in float64 (by the
    ``n x n`` Gram form when that is cheaper). Invariant to orthogonal maps, isotropic scaling
    and translation of either representation, not to general invertible maps.

    Convention: if either representation is constant over the items (up to rounding), the
    result is 0.0.

    Parameters
    ----------
    H1 : float array, shape (n, h1); H2 : float array, shape (n, h2). Not modified.

    Returns
    -------
    float in [0, 1]; ``linear_cka(H, H) == 1`` for non-constant H.
    """
    A = real_array("H1", H1, "(n, h1) with n >= 1, h1 >= 1", 2)
    B = real_array("H2", H2, "(n, h2) with n >= 1, h2 >= 1", 2)
    if A.shape[0] != B.shape[0]:
        raise fail("H2.shape", B.shape, f"({A.shape[0]}, h2): as many items as H1")
    A, B = _moderate(A), _moderate(B)
    X, Y = _centered(A), _centered(B)
    n, h1, h2 = X.shape[0], X.shape[1], Y.shape[1]
    if _is_constant(A, np.sum(X * X)) or _is_constant(B, np.sum(Y * Y)):
        return 0.0
    if n * n * (h1 + h2) < n * (h1 * h2 + h1 * h1 + h2 * h2):
        K, L = X @ X.T, Y @ Y.T
        hsic, nx, ny = np.sum(K * L), np.linalg.norm(K), np.linalg.norm(L)
    else:
        hsic = np.sum((Y.T @ X) ** 2)
        nx, ny = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    return float(min(1.0, max(0.0, hsic / (nx * ny))))


# max |value| of a representation for which linear_cka's products of four values (its Gram
# matrices' squares) stay normal float64 numbers; beyond, it is rescaled by a power of two.
_CKA_VALUES = (2.0**-120, 2.0**120)


def _moderate(H: np.ndarray) -> np.ndarray:
    """H itself when its ``max |value|`` is 0 or in ``_CKA_VALUES``, else H (as float64) times
    the power of two that brings it into [0.5, 1): exact, and CKA does not change."""
    top = max_abs(H)
    if top == 0.0 or _CKA_VALUES[0] <= top < _CKA_VALUES[1]:
        return H
    return np.ldexp(H.astype(np.float64), -math.frexp(top)[1])


def _hidden_array(hidden: Any) -> np.ndarray:
    """``hidden`` as a C-contiguous float32/float64 (P, n_probe, h) array, checked for dtype and
    shape (finiteness is checked by the kernel, which reads every value anyway)."""
    a = as_array("hidden", hidden)
    if a.dtype.kind not in "fiub":
        raise fail("hidden.dtype", str(a.dtype), "a real number type")
    if a.ndim != 3 or any(s < 1 for s in a.shape):
        raise fail("hidden.shape", a.shape, "(P, n_probe, h), every size >= 1")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def mean_cka(hidden: Any, max_pairs: int = 2_000, rng: Any = None) -> float:
    """Mean linear CKA (:func:`linear_cka`) between the agents' hidden representations.

    Exact over all ``P (P - 1) / 2`` pairs when there are at most ``max_pairs`` of them;
    otherwise the mean over ``max_pairs`` pairs drawn uniformly (with replacement) from ``rng``,
    an unbiased estimate with standard error about ``std / sqrt(max_pairs)``. One Numba kernel
    (:func:`simulator.kernels.measure_cka.mean_cka_pairs`) centres each agent used once and
    computes every pair's ``||X_i^T X_j||_F^2``, in float64: O((pairs + P / 2) h^2 n_probe)
    multiply-adds, bit-identical on any number of threads.

    Parameters
    ----------
    hidden : float array, shape (P, n_probe, h): each agent's activations on the same probe.
        Finite. Not modified.
    max_pairs : int >= 1
    rng : numpy.random.Generator or int, optional; default seed 0.

    Returns
    -------
    float in [0, 1]; 1.0 for P = 1.
    """
    Hs = _hidden_array(hidden)
    max_pairs = check_int("max_pairs", max_pairs, low=1)
    gen = get_rng(rng)
    P = Hs.shape[0]
    if P == 1:
        if not np.all(np.isfinite(Hs)):
            raise fail("hidden", "an array with NaN or inf", "finite everywhere")
        return 1.0
    I, J, _ = sample_pairs(P, max_pairs, gen)
    return mean_cka_of_pairs(Hs, I, J)


def mean_cka_of_pairs(hidden: np.ndarray, I: np.ndarray, J: np.ndarray) -> float:
    """The mean linear CKA over the pairs ``(I[k], J[k])`` (int64, ``I < J``, as
    :func:`simulator.metrics._checks.sample_pairs` draws them) of hidden (P, n_probe, h),
    C-contiguous float32 or float64, P >= 2 (the core of :func:`mean_cka`, for a caller that
    keeps its pairs)."""
    value = KC.mean_cka_pairs(hidden, I, J, _CONSTANT_RTOL)
    if value == math.inf:  # an agent's values too large or small for float64 products: rare
        value = KC.mean_cka_pairs(_per_agent_unit(hidden), I, J, _CONSTANT_RTOL)
    if value != value:  # the kernel's sign of a NaN or inf in hidden
        raise fail("hidden", "an array with NaN or inf", "finite everywhere")
    return value


def _per_agent_unit(Hs: np.ndarray) -> np.ndarray:
    """Hs (P, n, h) as float64 with each agent scaled by the power of two that brings its
    ``max |value|`` into [0.5, 1) (exact; CKA is invariant to isotropic scaling). NaN and inf
    stay NaN or inf."""
    top = np.maximum(Hs.max(axis=(1, 2)), -Hs.min(axis=(1, 2))).astype(np.float64)
    ok = np.isfinite(top) & (top > 0)
    exponent = np.frexp(np.where(ok, top, 1.0))[1]
    return np.ldexp(Hs.astype(np.float64), -exponent[:, None, None])


_INIT_KEYS_DROPPED = ("n_agents", "seed", "lr", "_params")
# The hidden activations of simulator.kernels.activations.activate in NumPy (the kernels' tanh
# is a vectorizing approximation within a few ulps of np.tanh; sigmoid is the same identity).
_NUMPY_ACTIVATIONS = {
    "identity": lambda z: z,
    "step": lambda z: (z > 0).astype(z.dtype),
    "sigmoid": lambda z: 0.5 + 0.5 * np.tanh(0.5 * z),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}


def _hidden_layer(pop: Any, X: np.ndarray, layer: int) -> np.ndarray:
    """Hidden layer ``layer`` (1 .. L-1) of every agent of ``pop`` on the inputs X (1, n, d_in)
    in the population's dtype: computed in float64 by NumPy, returned in the population's dtype
    (P, n, d_layer). The layers of ``Population.predict`` up to rounding (a test compares them),
    without a kernel to compile for it."""
    h = X.astype(np.float64)
    layers = pop.layout.unravel(pop.params)[:layer]
    for (W, b), act in zip(layers, hidden_activations(pop), strict=False):
        z = np.matmul(h, W.astype(np.float64)) + b.astype(np.float64)[:, None, :]
        h = _NUMPY_ACTIVATIONS[act](z)
    return h.astype(pop.dtype)


def cka_baseline(
    pop_kwargs: dict, probe_X: Any, n_agents: int = 20, seed: int = 12345, layer: int = 1
) -> float:
    """Mean linear CKA between independently initialized networks of one architecture.

    The reference level for :func:`mean_cka`: unrelated random networks already score well
    above 0 (often 0.5-0.9 for small networks), so report this beside it.

    Parameters
    ----------
    pop_kwargs : dict
        Keyword arguments of :class:`simulator.Population` (``layers``, ``activation``,
        ``init``, ``dtype``, ...). ``n_agents``, ``seed`` and ``lr`` are ignored.
    probe_X : float array, shape (n_probe, d_in).
    n_agents : int >= 2
        Networks drawn; all ``n_agents (n_agents - 1) / 2`` pairs are compared.
    seed : int
        Seed of the initialization.
    layer : int
        Hidden layer compared (1 = first).

    Returns
    -------
    float in [0, 1].
    """
    from simulator.population import Population

    if not isinstance(pop_kwargs, dict):
        raise fail("pop_kwargs", pop_kwargs, "a dict of Population keyword arguments")
    n_agents = check_int("n_agents", n_agents, low=2)
    kwargs = {k: v for k, v in pop_kwargs.items() if k not in _INIT_KEYS_DROPPED}
    try:
        pop = Population(n_agents=n_agents, seed=seed, **kwargs)
    except TypeError as exc:  # a keyword Population does not take
        raise fail("pop_kwargs", sorted(kwargs), f"Population keyword arguments ({exc})") from None
    L = pop.layout.n_layers
    layer = check_int("layer", layer, 1, L)
    if layer < L:
        # A model computes its baseline once, at its build: a hidden layer in NumPy costs
        # ~1 ms there where compiling the forward kernel cost 10-13 s of a cold start. In
        # the population's dtype, so that mean_cka runs the compiled kernel the collect's CKA
        # uses.
        d_in = pop.layers[0]
        X = real_array("probe_X", probe_X, f"(n, {d_in}) with n >= 1", 2)
        if X.shape[1] != d_in or X.shape[0] < 1:
            raise fail("probe_X.shape", X.shape, f"(n, {d_in}) with n >= 1")
        X = np.ascontiguousarray(X, dtype=pop.dtype)[None]  # the inputs predict would see
        if not np.all(np.isfinite(X)):
            raise fail("probe_X", f"an array with NaN or inf (as {pop.dtype})", "finite everywhere")
        hidden = _hidden_layer(pop, X, layer)
    else:
        hidden = pop.predict(probe_X, layer=layer)
    return mean_cka(hidden, max_pairs=n_agents * (n_agents - 1) // 2)


__all__ = [
    "FunctionSummary",
    "agreement_of_decisions",
    "cka_baseline",
    "function_dispersion",
    "function_summary",
    "linear_cka",
    "mean_cka",
    "prediction_agreement",
    "summarize_outputs",
]
