"""Aligning hidden units of two networks (weight matching) before comparing their weights.

Hidden units can be permuted, and for odd activations (``tanh``, ``identity``) sign-flipped,
without changing a network's function. To compare two networks' weights we first move the
second onto the first by such a symmetry, chosen to maximize the summed inner products of the
layers' weights (equivalently: to minimize the Euclidean distance of the parameter rows).

Method (weight matching, Ainsworth et al. 2023, "Git Re-Basin", ICLR):

* Hidden layer ``l`` (weight layers ``W_l`` of shape ``(d_{l-1}, h)`` and ``W_{l+1}`` of shape
  ``(h, d_{l+1})``, canonical layout: columns of ``W_l`` and rows of ``W_{l+1}`` are units) is
  matched by a linear assignment (the Hungarian algorithm, a parallel Numba kernel over the
  agents: :func:`simulator.kernels.measure_function.assignments`) on

      S = W_l^a.T @ W_l^b + outer(b_l^a, b_l^b) + W_{l+1}^a @ W_{l+1}^b.T      (h, h)

  where the ``b`` network already carries the alignments of its neighbouring layers. For odd
  activations a unit ``v`` of ``b`` may be negated (its incoming column, bias and outgoing row);
  every term of ``S[u, v]`` flips with it, so the assignment runs on ``|S|`` and each matched
  pair takes the sign of ``S[u, v]``.
* One hidden layer: the assignment is the exact optimum over permutations (and sign flips).
* Deeper networks: a first forward pass matches each layer on its incoming weights and biases
  only (given the layers before it), which recovers an exact permuted copy; then up to
  ``n_passes`` coordinate-descent passes over the layers with the full ``S``, stopping when a
  pass changes nothing. This is a local optimum (the joint problem is NP-hard).
* The result is never farther from the reference than the unaligned row (checked at the end).
* Not handled: the ReLU positive rescaling symmetry, the ``sigmoid`` symmetry
  ``s(-x) = 1 - s(x)`` (it changes the next layer's biases) and general invertible maps of
  ``identity`` layers; ``relu``, ``sigmoid`` and ``step`` layers are matched by permutation only.
* Huge or tiny rows (norms outside :data:`ALIGN_NORMS`, where ``S`` would overflow or underflow
  float64) are aligned after an exact rescaling by a power of two (:func:`alignment_scale`):
  the same alignment, and distances scaled back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.config import fail
from simulator.kernels import measure_function as KF
from simulator.layout import ParamLayout
from simulator.metrics._checks import check_agent, check_population, max_abs

ODD_ACTIVATIONS = frozenset({"tanh", "identity"})
N_PASSES = 5
# Row norms for which the similarities S (at most the product of two rows' norms), the
# assignment's potentials and the squared distances stay normal float64 numbers: rows beyond
# are aligned after an exact rescaling (:func:`alignment_scale`).
ALIGN_NORMS = (2.0**-400, 2.0**500)

Layers = list[tuple[np.ndarray, np.ndarray]]


def hidden_activations(pop: Any) -> list[str]:
    """Names of the hidden activations of ``pop``, one per hidden layer."""
    n_hidden = pop.layout.n_layers - 1
    act = pop.activation
    return [act] * n_hidden if isinstance(act, str) else list(act)


def one_hidden(layout: ParamLayout) -> np.ndarray:
    """int64 (7,) for :func:`simulator.kernels.measure_align.align_consensus`: offsets of W1,
    b1, W2, b2 in a row of a network with one hidden layer (-1 for biases it has not), then
    d_in, h, d_out."""
    b1, b2 = (layout.b_offsets[0], layout.b_offsets[1]) if layout.bias else (-1, -1)
    d_in, h, d_out = layout.layers
    return np.array([layout.w_offsets[0], b1, layout.w_offsets[1], b2, d_in, h, d_out], np.int64)


def _similarity(A: Layers, B: Layers, l: int, outgoing: bool) -> np.ndarray:
    """S (m, h, h) between reference units (axis 1) and the m rows' units (axis 2) of layer l."""
    Wa, ba = A[l]
    Wb, bb = B[l]
    S = np.matmul(Wa.T, Wb)  # (h, d_in) @ (m, d_in, h)
    S += ba[None, :, None] * bb[:, None, :]
    if outgoing:
        S += np.matmul(A[l + 1][0], B[l + 1][0].transpose(0, 2, 1))  # (h, k) @ (m, k, h)
    return S


def _match(S: np.ndarray, odd: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row: perm (h,) with perm[u] = unit of b matched to unit u of a, and signs (h,)."""
    m, h, _ = S.shape
    score = np.ascontiguousarray(np.abs(S) if odd else S, dtype=np.float64)
    perm = np.empty((m, h), dtype=np.int64)
    KF.assignments(score, perm)  # one O(h^3) Hungarian per row, in parallel
    if odd:
        picked = np.take_along_axis(S, perm[:, :, None], axis=2)[:, :, 0]
        sign = np.where(picked < 0, -1.0, 1.0)
    else:
        sign = np.ones((m, h))
    return perm, sign


def _apply(B: Layers, l: int, perm: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Permute and flip hidden units of layer l of every row in B (in place); which changed."""
    W, b = B[l]
    W[...] = np.take_along_axis(W, perm[:, None, :], axis=2) * sign[:, None, :]
    b[...] = np.take_along_axis(b, perm, axis=1) * sign
    W2 = B[l + 1][0]
    W2[...] = np.take_along_axis(W2, perm[:, :, None], axis=1) * sign[:, :, None]
    return (perm != np.arange(perm.shape[1])).any(axis=1) | (sign < 0).any(axis=1)


def align_rows(
    layout: ParamLayout,
    activations: list[str],
    ref: np.ndarray,
    rows: np.ndarray,
    n_passes: int = N_PASSES,
) -> np.ndarray:
    """Align each of ``rows`` (m, n_params) to ``ref`` (n_params,); float64 (m, n_params).

    ``activations`` holds one name per hidden layer. The inputs are not modified.
    """
    ref64 = np.asarray(ref, dtype=np.float64)
    rows64 = np.array(rows, dtype=np.float64, ndmin=2)
    n_hidden = layout.n_layers - 1
    if n_hidden == 0:
        return rows64
    A = layout.unravel(ref64)
    B = [(w.copy(), b.copy()) for w, b in layout.unravel(rows64)]
    odd = [a in ODD_ACTIVATIONS for a in activations]
    first = 0 if n_hidden > 1 else 1  # pass 0 (incoming weights only) seeds deep networks
    for pass_ in range(first, n_passes + 1):
        changed = np.zeros(rows64.shape[0], dtype=bool)
        for l in range(n_hidden):
            perm, sign = _match(_similarity(A, B, l, outgoing=pass_ > 0), odd[l])
            changed |= _apply(B, l, perm, sign)
        if (pass_ > 0 and not changed.any()) or n_hidden == 1:
            break  # one hidden layer: the assignment on the full S is already optimal
    out = layout.ravel(B)
    worse = out @ ref64 < rows64 @ ref64  # equal norms: larger inner product = closer
    out[worse] = rows64[worse]
    return out


def alignment_scale(m: float, factor: float = 1.0) -> float:
    """A power of two to multiply rows whose norms are at most ``m * factor`` by (finite
    ``m >= 0``, ``factor >= 1``; their product may overflow): 1.0 when that bound is 0 or in
    :data:`ALIGN_NORMS`, else one that brings it near 1. Multiplying by it is exact (barring
    values it makes subnormal) and leaves the rows' alignment as it is."""
    if m == 0.0:
        return 1.0
    log_bound = math.log2(m) + math.log2(factor)
    if math.log2(ALIGN_NORMS[0]) <= log_bound < math.log2(ALIGN_NORMS[1]):
        return 1.0
    return math.ldexp(1.0, max(-1074, min(1023, -math.ceil(log_bound))))


def pair_scale(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`alignment_scale` of two parameter rows, refused by name if either holds a NaN or
    inf (``pop.params`` can be written in place, past the Population's checks)."""
    ma, mb = max_abs(a), max_abs(b)
    if not (math.isfinite(ma) and math.isfinite(mb)):
        raise fail("params", "an array with NaN or inf", "finite everywhere")
    return alignment_scale(max(ma, mb), math.sqrt(a.size))


def align_params(pop: Any, ref: int, other: int) -> np.ndarray:
    """Agent ``other``'s parameter row with its hidden units aligned to agent ``ref``.

    Hidden units are permuted (and, for ``tanh`` and ``identity`` layers, sign-flipped) by
    weight matching (see the module docstring): the returned network computes the same
    function as agent ``other`` (``pop.predict`` agrees up to float rounding) and is at least as
    close to agent ``ref`` in Euclidean distance as the unaligned row.

    Parameters
    ----------
    pop : Population
        Read: ``pop.params``, ``pop.layout``, ``pop.activation``. Not modified.
    ref, other : int
        Agent indices.

    Returns
    -------
    numpy.ndarray, shape (n_params,), dtype of ``pop.params``: a new array.
    """
    P = check_population(pop).params.shape[0]
    ref = check_agent("ref", ref, P)
    other = check_agent("other", other, P)
    a, b = pop.params[ref], pop.params[other]
    scale = pair_scale(a, b)
    if scale != 1.0:  # huge or tiny rows: aligned exactly rescaled (a rare path)
        a, b = a.astype(np.float64) * scale, b.astype(np.float64) * scale
    out = align_rows(pop.layout, hidden_activations(pop), a, b)[0]
    return (out if scale == 1.0 else out / scale).astype(pop.params.dtype)
