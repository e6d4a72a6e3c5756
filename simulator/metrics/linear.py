"""Agents whose functions are affine (no hidden layer, linear outputs): exact, small coordinates.

For such agents ``f(x) = W^T x + b``, so over the probe items ``x_n`` the mean squared output
distance of two agents is a quadratic form of their parameter difference:
``mean_n ||f_i(x_n) - f_j(x_n)||^2 = sum_k (t_ik - t_jk)^T M (t_ik - t_jk)`` with
``t_k = [W[:, k]; b_k]`` and ``M = mean_n [x_n; 1][x_n; 1]^T``. With ``M = L L^T`` (Cholesky), the
coordinates ``z_i = (L^T t_ik)_k`` of dimension ``q = (d_in + 1) d_out`` have Euclidean distances
equal to the RMS function-space distances: every agent is placed exactly, in O(P q (d_in + 1)),
without evaluating any network on the probe (one parallel pass over the rows:
:func:`simulator.kernels.measure_affine.affine_coordinates`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from simulator.config import check_int, fail
from simulator.kernels import measure_affine as KL
from simulator.kernels.sized import sized
from simulator.metrics._checks import check_population, real_array

__all__ = [
    "AffineFunctions",
    "TruthCoordinates",
    "affine_coordinates",
    "affine_functions",
    "linear_embedding",
    "probe_factor",
    "truth_coordinates",
]

# What a row of affine_coordinates costs beside its multiply-adds (the loads of its few
# parameters, the coordinates' transposed store), in FLOPs' time at the kernels' ~20 GFLOP/s:
# measured 3.2 ns a row in one thread for polarization's 1-1 agents (q = 2, 8 FLOPs) by
# columns, which counting FLOPs alone kept serial at 100,000 agents (0.32 ms). By rows (one
# output, one or two inputs: polarization's) a row costs 1.2 ns, and at 100,000 agents one
# thread and two take about as long (117 and 111 us): the count errs on neither side.
ROW_FLOPS = 64.0


def linear_embedding(pop: Any, probe_X: Any, max_dim: int = 3) -> np.ndarray | None:
    """Exact coordinates (P, q) float64 of affine agents' functions on the probe, or None.

    None when the agents are not affine (a hidden layer, or an output other than ``linear``),
    when ``q = (d_in + 1) d_out > max_dim``, or when the probe's second-moment matrix is
    singular. ``||z_i - z_j|| = sqrt(mean_n ||f_i(x_n) - f_j(x_n)||^2)`` up to float64 rounding.

    Parameters
    ----------
    pop : Population (read only)
    probe_X : float array (n, d_in), finite (checked when it is used: affine agents, q small
        enough).
    max_dim : int >= 0
        The most coordinates worth having (a caller's cap, e.g. its number of outputs minus
        one). q is at least 2 (d_in = d_out = 1), so 0 and 1 always give None.
    """
    factor = probe_factor(pop, probe_X, max_dim)
    return None if factor is None else affine_coordinates(pop, factor)


def probe_factor(pop: Any, probe_X: Any, max_dim: int = 3) -> np.ndarray | None:
    """The Cholesky factor L ((d_in + 1) x (d_in + 1), float64, C-contiguous) of the probe's
    second-moment matrix ``[X 1]^T [X 1] / n`` that :func:`linear_embedding` places affine
    agents with, or None where it returns None (arguments as there). A function of the
    probe and the population's architecture alone: a caller measuring the same probe again
    keeps it (:func:`affine_coordinates`)."""
    check_population(pop)
    max_dim = check_int("max_dim", max_dim, low=0)
    if pop.layout.n_layers != 1 or pop.output != "linear":
        return None
    d_in, d_out = pop.layers[0], pop.layers[-1]
    q = (d_in + 1) * d_out
    if q > max_dim:
        return None
    X = np.asarray(real_array("probe_X", probe_X, f"(n, {d_in}) with n >= 1", 2), np.float64)
    if X.shape[1] != d_in:
        raise fail("probe_X.shape", X.shape, f"(n, {d_in}): d_in = {d_in} inputs per item")
    Xt = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
    try:
        L = np.linalg.cholesky(Xt.T @ Xt / X.shape[0])
    except np.linalg.LinAlgError:
        return None
    return np.ascontiguousarray(L)


def affine_coordinates(pop: Any, factor: np.ndarray) -> np.ndarray:
    """The coordinates of :func:`linear_embedding` from the factor :func:`probe_factor` gave
    for this population's architecture and the probe: (P, q) float64, one parallel kernel."""
    d_in, d_out = pop.layers[0], pop.layers[-1]
    q = (d_in + 1) * d_out
    params = pop.params
    P = params.shape[0]
    Z = np.empty((P, q))
    work = P * (2.0 * q * (d_in + 1) + ROW_FLOPS)
    kernel = sized(KL.affine_coordinates, KL.affine_coordinates_serial, work)
    kernel(params, factor, d_in, d_out, Z)
    return Z


class AffineFunctions(NamedTuple):
    """Function-space statistics of every affine agent on the probe, from exact coordinates
    (:func:`affine_functions`). Squared distances are means over the probe items of squared
    norms summed over the d_out outputs; errors are against a common truth.

    Attributes
    ----------
    mean : float64 (q,), the population's mean coordinates (those of its mean function).
    dispersion : mean over agents of ``mean_n ||f_i(x_n) - f_bar(x_n)||^2``.
    sq_error : mean over agents of each agent's MSE against the truth (over items and outputs).
    worst_sq_error : the largest agent MSE against the truth.
    ensemble_sq_error : the MSE of the mean function ``f_bar`` against the truth.
    output_spread : mean over agents and outputs of the standard deviation of an output over
        the probe items (population std, 1/n).
    """

    mean: np.ndarray
    dispersion: float
    sq_error: float
    worst_sq_error: float
    ensemble_sq_error: float
    output_spread: float


class TruthCoordinates(NamedTuple):
    """A truth on the probe split into its affine part and the rest (:func:`truth_coordinates`).

    Attributes
    ----------
    z : float64 (q,), the coordinates of the truth's least-squares affine part, in the basis
        of :func:`affine_coordinates` (a factor L: ``z_k = L^-1 mean_n [x_n; 1] y_nk``).
    residual : float >= 0, ``mean_n ||y_n - a(x_n)||^2`` for that affine part a: what no
        affine agent can fit, the part of every agent's squared error beyond its coordinates'.
    covariance : float64 (d_in, d_in), the probe inputs' covariance (1/n): an affine output's
        variance over the probe is ``W_k^T C W_k``.
    """

    z: np.ndarray
    residual: float
    covariance: np.ndarray


def truth_coordinates(probe_X: Any, truth: Any, factor: np.ndarray) -> TruthCoordinates:
    """The coordinates of a truth on the probe for agents placed with ``factor``.

    Parameters
    ----------
    probe_X : float array (n, d_in), the probe the factor was computed from.
    truth : float array (n, d_out), finite: the outputs every agent is judged against.
    factor : float64 (d_in + 1, d_in + 1), :func:`probe_factor` of this probe.

    Then for an affine agent with coordinates z_i, its MSE against the truth (mean over items
    and outputs) is ``(||z_i - z||^2 + residual) / d_out`` (Pythagoras in the probe's mean
    inner product: the residual is orthogonal to every affine function).
    """
    X = np.asarray(probe_X, dtype=np.float64)
    X = X.reshape(X.shape[0], -1)
    Y = np.asarray(truth, dtype=np.float64).reshape(X.shape[0], -1)
    n = X.shape[0]
    Xt = np.concatenate([X, np.ones((n, 1))], axis=1)
    L = np.asarray(factor, dtype=np.float64)
    z = np.linalg.solve(L, Xt.T @ Y / n)  # (d_in + 1, d_out): column k is z_k
    fitted = Xt @ np.linalg.solve(L.T, z)  # the affine part a(x_n), (n, d_out)
    residual = float(np.mean(np.sum((Y - fitted) ** 2, axis=1)))
    centred = X - X.mean(axis=0)
    covariance = np.ascontiguousarray(centred.T @ centred / n)
    return TruthCoordinates(np.ascontiguousarray(z.T.reshape(-1)), residual, covariance)


def affine_functions(
    pop: Any, factor: np.ndarray, truth: TruthCoordinates
) -> tuple[np.ndarray, AffineFunctions | None]:
    """The coordinates of every agent of ``pop`` (:func:`affine_coordinates`, the same values)
    and their function-space statistics on the probe, exactly (up to float64 rounding), in one
    parallel pass over the rows without evaluating a network: O(P q (d_in + 1)) for the
    coordinates, O(P q) for the distances, O(P d_in^2 d_out) for the spreads
    (:func:`simulator.kernels.measure_affine.affine_summary`).

    Parameters
    ----------
    pop : Population of affine agents.
    factor : float64 (d_in + 1, d_in + 1), :func:`probe_factor` of the probe.
    truth : :func:`truth_coordinates` of the truth on the same probe and factor.

    Returns
    -------
    Z : float64 (P, q), the coordinates.
    stats : AffineFunctions, or None when a coordinate or a sum is not finite (some agent's
        parameters are NaN or inf, or a sum overflows): the caller measures such agents the
        slow way, which names them.
    """
    d_in, d_out = pop.layers[0], pop.layers[-1]
    q = (d_in + 1) * d_out
    params = pop.params
    P = params.shape[0]
    Z = np.empty((P, q))
    blocks = np.empty((-(-P // KL.ROWS), q + KL.N_SUMS))
    out = np.empty(q + KL.N_SUMS)
    work = P * (2.0 * q * (d_in + 1) + 6.0 * q + 2.0 * d_in * d_in * d_out + ROW_FLOPS)
    kernel = sized(KL.affine_summary, KL.affine_summary_serial, work)
    kernel(params, factor, d_in, d_out, truth.covariance, truth.z, Z, blocks, out)
    if not math.isfinite(sum(out.tolist())):
        return Z, None  # a NaN or inf in Z makes the mean so, an overflow a sum (or this check)
    center = out[:q].copy()
    return Z, AffineFunctions(
        center,
        float(out[q + KL.DEV]) / P,
        (float(out[q + KL.ERR]) / P + truth.residual) / d_out,
        (float(out[q + KL.WORST]) + truth.residual) / d_out,
        (float(np.sum((center - truth.z) ** 2)) + truth.residual) / d_out,
        float(out[q + KL.SPREAD]) / (P * d_out),
    )
