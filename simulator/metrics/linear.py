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

from typing import Any

import numpy as np

from simulator.config import check_int, fail
from simulator.kernels import measure_affine as KL
from simulator.kernels.sized import sized
from simulator.metrics._checks import check_population, real_array

__all__ = ["affine_coordinates", "linear_embedding", "probe_factor"]

# What a row of affine_coordinates costs beside its multiply-adds (the loads of its few
# parameters, the coordinates' transposed store), in FLOPs' time at the kernels' ~20 GFLOP/s:
# measured 3.2 ns a row in one thread for polarization's 1-1 agents (q = 2, 8 FLOPs), which
# counting FLOPs alone kept serial at 100,000 agents (0.32 ms).
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
