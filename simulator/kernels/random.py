"""Counter-based random numbers for Numba kernels: Philox4x32-10 and what is built on it.

A counter-based generator is a keyed bijection of a counter: the random words at counter ``c``
under key ``k`` are ``philox(c, k)``, computed from nothing else. No state is carried from one
draw to the next, so every agent of every step can draw its own numbers inside a parallel loop,
in any order, on any number of threads, and get the same bits (see ``shared/notes``: each
iteration writes only its own row).

Philox4x32-10 (Salmon, Moraes, Dror and Shaw 2011, "Parallel random numbers: as easy as 1, 2, 3")
maps a 128-bit counter (four 32-bit words) and a 64-bit key (two words) to four 32-bit words by
ten rounds of 32 x 32 -> 64-bit multiplications and xors; it passes TestU01's BigCrush for every
key. ``tests/test_random.py`` checks this implementation against Random123's published
known-answer vectors.

The counter layout used by the simulator is ``(index, agent, step, purpose)``: word block
``index`` of the numbers ``agent`` draws at ``step`` for ``purpose`` (inputs, label noise, class
choices, ...; one small integer each). The key is derived from the run's seed
(:func:`key_from_seed`). Different purposes, agents and steps therefore never share a counter.

Built on the raw words (all branch-free arithmetic that LLVM vectorizes; Numba's ``math.log``,
``math.sin`` are scalar library calls here):

* :func:`uniform53`: a float64 in (0, 1) from two words, ``(m + 0.5) / 2**53``; never 0 or 1.
* :func:`uniform32`: a float64 in [0, 1) from one word, ``w / 2**32`` (for choosing an index).
* :func:`box_muller`: two independent standard normals from three words (radius from 53 bits,
  so the largest magnitude is about 8.6; angle from 32 bits), through ``elementary.log_unit`` and
  :func:`sincos_turn`, polynomial ``log`` and ``sin``/``cos`` accurate to a few float64 ulps.
  :func:`box_muller32` makes float32 normals from two words in float32 arithmetic (16 lanes
  per vector; largest magnitude 6.77), so a float32 population's data cost half as much.
* :func:`ndtri`: the inverse of the standard normal CDF (Wichura's AS 241, ~1e-16 relative).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from simulator.kernels.elementary import horner, log_unit, log_unit32
from simulator.kernels.gemm import wide_vectors

__all__ = [
    "box_muller",
    "fill_normals",
    "fill_uniforms",
    "key_from_seed",
    "ndtri",
    "normals_across",
    "philox4x32",
    "philox_block",
    "uniform32",
    "uniform53",
]

_U64 = np.uint64
_M0, _M1 = _U64(0xD2511F53), _U64(0xCD9E8D57)
_W0, _W1 = _U64(0x9E3779B9), _U64(0xBB67AE85)
_LOW32, _S32, _S21, _S11 = _U64(0xFFFFFFFF), _U64(32), _U64(21), _U64(11)
_TWO_M32 = 2.0**-32
_TWO_M53 = 2.0**-53
_TWO_PI = 2.0 * math.pi
_FAST = {"contract"}  # fused multiply-adds, no reassociation


# ---------------------------------------------------------------------------- keys
def key_from_seed(seed: int, *tags: int) -> tuple[int, int]:
    """A Philox key (two 32-bit words) for ``seed`` and optional integer ``tags``.

    Derived through ``numpy.random.SeedSequence(seed, spawn_key=tags)``, whose hashing mixes
    every bit of the seed into both words (nearby seeds give unrelated keys).
    """
    words = np.random.SeedSequence(int(seed), spawn_key=tuple(int(t) for t in tags))
    k0, k1 = words.generate_state(2, dtype=np.uint32)
    return int(k0), int(k1)


# ---------------------------------------------------------------------------- Philox
@njit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``.

    Every argument and result is a uint64 holding a 32-bit word (the caller keeps them below
    2**32).
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _LOW32, (p0 >> _S32) ^ c3 ^ k1, p0 & _LOW32
        k0 = (k0 + _W0) & _LOW32
        k1 = (k1 + _W1) & _LOW32
    return c0, c1, c2, c3


@njit(inline="always")
def uniform53(w0, w1):
    """A float64 uniform on (0, 1), ``(m + 0.5) / 2**53`` with ``m`` the top 53 of 64 bits."""
    m = (w0 << _S21) ^ (w1 >> _S11)
    return (np.float64(m & _U64(0x1FFFFFFFFFFFFF)) + 0.5) * _TWO_M53


@njit(inline="always")
def uniform32(w):
    """A float64 uniform on [0, 1) with 32 random bits: ``w / 2**32``."""
    return np.float64(w) * _TWO_M32


# ------------------------------------------------- sin, cos (log: simulator.kernels.elementary)
_SIN_COEF = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(9))
_COS_COEF = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(10))
# float32 versions (16 lanes per vector): truncation errors below 1e-9, float32 eps is 6e-8
_F32 = np.float32
_SIN32 = tuple(_F32(c) for c in _SIN_COEF[:5])
_COS32 = tuple(_F32(c) for c in _COS_COEF[:6])
_TWO_PI_32 = _F32(_TWO_PI)
_HALF32, _ONE32, _QUARTER32, _FOUR32 = _F32(0.5), _F32(1.0), _F32(0.25), _F32(4.0)
_TWO_M32_32, _TWO_M33_32, _MINUS_TWO32 = _F32(2.0**-32), _F32(2.0**-33), _F32(-2.0)


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def _turn(v):
    """``v = q / 4 + r / (2 pi)``: returns ``(q mod 4, r)`` with ``|r| <= pi / 4`` (exact)."""
    q = np.floor(4.0 * v + 0.5)
    return np.int64(q) & 3, (v - 0.25 * q) * _TWO_PI


@njit(inline="always")
def _rotate(qi, c, s):
    """``(cos, sin)`` of ``r + qi pi / 2`` from ``c = cos r``, ``s = sin r``."""
    odd = (qi & 1) == 1  # an odd quarter turn exchanges sin and cos
    sign = -1.0 if qi >= 2 else 1.0  # half a turn negates both
    return sign * (-s if odd else c), sign * (c if odd else s)


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def sincos_turn(v):
    """``(cos 2 pi v, sin 2 pi v)`` for ``v`` in [0, 1].

    Reduced exactly to ``r = 2 pi (v - q / 4)``, ``|r| <= pi / 4``, ``q = rint(4 v)``; Taylor
    series to ``r**17`` / ``r**18`` (next term < 2e-16), then rotated by ``q`` quarter turns.
    """
    qi, r = _turn(v)
    r2 = r * r
    return _rotate(qi, horner(_COS_COEF, r2), r * horner(_SIN_COEF, r2))


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def box_muller(w0, w1, w2):
    """Two independent N(0, 1) float64 from three random words (Box and Muller 1958).

    Radius from 53 bits (largest magnitude ~8.6), angle from 32 bits; ~1e-15 relative accuracy.
    """
    radius = np.sqrt(-2.0 * log_unit(uniform53(w0, w1)))
    c, s = sincos_turn(uniform32(w2))
    return radius * c, radius * s


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def sincos_turn32(v):
    """``(cos 2 pi v, sin 2 pi v)`` for float32 ``v`` in [0, 1], in float32 arithmetic: the
    reduction of :func:`sincos_turn`, series to ``r**9`` / ``r**10`` (truncation below 3e-8)."""
    q = np.floor(_FOUR32 * v + _HALF32)
    r = (v - _QUARTER32 * q) * _TWO_PI_32
    r2 = r * r
    c, s = horner(_COS32, r2), r * horner(_SIN32, r2)
    qi = np.int32(q) & 3
    odd = (qi & 1) == 1
    sign = _F32(-1.0) if qi >= 2 else _ONE32
    return sign * (-s if odd else c), sign * (c if odd else s)


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def box_muller32(w0, w1):
    """Two independent N(0, 1) float32 from two random words, in float32 arithmetic.

    ``u = w0 / 2**32 + 2**-33`` (in float32: small values keep their 32 bits, values near 1
    round to 24), so magnitudes stop at 6.77 (P(|z| > 6.77) = 1.3e-11); the angle from ``w1``.
    Relative error of a few float32 ulps.
    """
    u = _F32(w0) * _TWO_M32_32 + _TWO_M33_32
    radius = np.sqrt(_MINUS_TWO32 * log_unit32(u))
    c, s = sincos_turn32(_F32(w1) * _TWO_M32_32)
    return radius * c, radius * s


# ---------------------------------------------------------------------------- inverse normal CDF
_A = (
    3.387132872796366608,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
)
_B = (
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_C = (
    1.42343711074968357734,
    4.63033784615654529590,
    5.76949722146069140550,
    3.64784832476320460504,
    1.27045825245236838258,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
_D = (
    1.0,
    2.05319162663775882187,
    1.67638483018380384940,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
_E = (
    6.65790464350110377720,
    5.46378491116411436990,
    1.78482653991729133580,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_F = (
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)


@njit(inline="always")
def _poly(c, x):
    p = c[7]
    for k in range(6, -1, -1):
        p = p * x + c[k]
    return p


@njit(cache=True)
def ndtri(p):
    """Inverse of the standard normal CDF at ``p`` in (0, 1) (Wichura 1988, AS 241 PPND16).

    Relative error about 1e-16. ``p <= 0`` gives ``-inf`` and ``p >= 1`` gives ``+inf``.
    """
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _poly(_A, r) / _poly(_B, r)
    r = p if q < 0.0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        x = _poly(_C, r) / _poly(_D, r)
    else:
        r -= 5.0
        x = _poly(_E, r) / _poly(_F, r)
    return -x if q < 0.0 else x


# ---------------------------------------------------------------------------- array fills
def normals_into(out, k0, k1, agent, step, purpose):  # pragma: no cover - overloaded below
    """Fill the 1-D contiguous float ``out`` with N(0, 1) numbers of stream
    ``(agent, step, purpose)`` (float32 ``out`` holds raw Philox words for a moment).

    float64 ``out``: numbers ``2 i``, ``2 i + 1`` come from counter ``(i, agent, step, purpose)``
    by :func:`box_muller`. float32 ``out``: numbers ``4 i .. 4 i + 3`` from counter ``i`` by
    :func:`box_muller32` (two per pair of words, in float32 arithmetic). Either way a longer
    ``out`` extends a shorter one: the first numbers do not depend on the length.
    """


@overload(normals_into)
def _normals_into(out, k0, k1, agent, step, purpose):
    fill = _normals4 if out.dtype == types.float32 else _normals2

    def impl(out, k0, k1, agent, step, purpose):
        wide_vectors()  # this function's loops at the full SIMD width (no change to the bits)
        fill(out, k0, k1, agent, step, purpose)

    return impl


@njit(inline="always")
def _normals2(out, k0, k1, agent, step, purpose):
    n = out.shape[0]
    a, s, p = _U64(agent), _U64(step), _U64(purpose)
    for i in range(n // 2):
        w0, w1, w2, _ = philox4x32(_U64(i), a, s, p, k0, k1)
        z0, z1 = box_muller(w0, w1, w2)
        out[2 * i] = z0
        out[2 * i + 1] = z1
    if n % 2:
        w0, w1, w2, _ = philox4x32(_U64(n // 2), a, s, p, k0, k1)
        out[n - 1] = box_muller(w0, w1, w2)[0]


@njit(inline="always")
def _normals4(out, k0, k1, agent, step, purpose):
    """float32 normals in two passes over ``out``: the Philox words of every whole counter
    stored in ``out`` as raw bits, then each pair of words replaced by its two normals (the
    same arithmetic as one pass; the float32 pass then runs at the full float32 vector width
    instead of the width of the 64-bit words)."""
    n = out.shape[0]
    a, s, p = _U64(agent), _U64(step), _U64(purpose)
    bits = out.view(np.uint32)
    for i in range(n // 4):
        w0, w1, w2, w3 = philox4x32(_U64(i), a, s, p, k0, k1)
        bits[4 * i] = np.uint32(w0)
        bits[4 * i + 1] = np.uint32(w1)
        bits[4 * i + 2] = np.uint32(w2)
        bits[4 * i + 3] = np.uint32(w3)
    for i in range(n // 4 * 2):
        z0, z1 = box_muller32(bits[2 * i], bits[2 * i + 1])
        out[2 * i] = z0
        out[2 * i + 1] = z1
    rest = n % 4
    if rest:
        w0, w1, w2, w3 = philox4x32(_U64(n // 4), a, s, p, k0, k1)
        z0, z1 = box_muller32(w0, w1)
        z2, _ = box_muller32(w2, w3)
        base = n - rest
        out[base] = z0
        if rest > 1:
            out[base + 1] = z1
        if rest > 2:
            out[base + 2] = z2


def normals_across(z, w, k0, k1, agent0, step, purpose):  # pragma: no cover - overloaded below
    """The first ``K`` numbers of the streams ``(agent0 + r, step, purpose)``, one agent per
    column: ``z[k, r]`` is the number :func:`normals_into` puts at ``out[k]`` for agent
    ``agent0 + r``, bit for bit.

    ``z`` float32 or float64 (K, A), C-contiguous, ``K`` a multiple of the numbers one counter
    gives (4 in float32, 2 in float64); ``w`` uint32 (K, A) scratch (float32 only; any array
    for float64). The loops run across agents, so SIMD lanes hold agents: a short stream (a
    few dozen numbers per agent, such as a minibatch's label noise) costs per number what a
    long one does, where :func:`normals_into` would run one partial vector per agent.
    """


@overload(normals_across)
def _normals_across(z, w, k0, k1, agent0, step, purpose):
    fill = _across4 if z.dtype == types.float32 else _across2

    def impl(z, w, k0, k1, agent0, step, purpose):
        wide_vectors()
        fill(z, w, k0, k1, agent0, step, purpose)

    return impl


@njit(inline="always")
def _across2(z, w, k0, k1, agent0, step, purpose):
    s, p = _U64(step), _U64(purpose)
    for i in range(z.shape[0] // 2):
        c = _U64(i)
        z0, z1 = z[2 * i], z[2 * i + 1]
        for r in range(z.shape[1]):
            w0, w1, w2, _ = philox4x32(c, _U64(agent0 + r), s, p, k0, k1)
            z0[r], z1[r] = box_muller(w0, w1, w2)


@njit(inline="always")
def _across4(z, w, k0, k1, agent0, step, purpose):
    """The words of every counter first (8 agents per 64-bit vector), then the float32 normals
    of each pair of word rows (16 agents per vector), as :func:`_normals4` does along a row."""
    s, p = _U64(step), _U64(purpose)
    for i in range(z.shape[0] // 4):
        c = _U64(i)
        b0, b1, b2, b3 = w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]
        for r in range(z.shape[1]):
            w0, w1, w2, w3 = philox4x32(c, _U64(agent0 + r), s, p, k0, k1)
            b0[r] = np.uint32(w0)
            b1[r] = np.uint32(w1)
            b2[r] = np.uint32(w2)
            b3[r] = np.uint32(w3)
    for q in range(z.shape[0] // 2):
        u0, u1 = w[2 * q], w[2 * q + 1]
        z0, z1 = z[2 * q], z[2 * q + 1]
        for r in range(z.shape[1]):
            z0[r], z1[r] = box_muller32(u0[r], u1[r])


@njit(parallel=True, cache=True, error_model="numpy")
def _fill_normals(out, k0, k1, step, purpose, agent0):
    for a in prange(out.shape[0]):
        normals_into(out[a], k0, k1, agent0 + a, step, purpose)


@njit(parallel=True, cache=True, error_model="numpy")
def _fill_uniforms(out, k0, k1, step, purpose, agent0):
    for a in prange(out.shape[0]):
        row = out[a]
        ag, s, p = _U64(agent0 + a), _U64(step), _U64(purpose)
        for i in range(row.shape[0]):
            w0, w1, _, _ = philox4x32(_U64(i), ag, s, p, k0, k1)
            row[i] = uniform53(w0, w1)


@njit(cache=True)
def _philox_block(counters, k0, k1, out):
    for i in range(counters.shape[0]):
        c = counters[i]
        r = philox4x32(_U64(c[0]), _U64(c[1]), _U64(c[2]), _U64(c[3]), k0, k1)
        for j in range(4):
            out[i, j] = r[j]


def _key(key: tuple[int, int]) -> tuple[np.uint64, np.uint64]:
    k0, k1 = (int(k) for k in key)
    if not (0 <= k0 < 2**32 and 0 <= k1 < 2**32):
        raise ValueError(f"key words must be in [0, 2**32), got {key!r}")
    return _U64(k0), _U64(k1)


def philox_block(counters: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of each row of ``counters`` (n, 4) (uint32 words) under ``key``.

    Returns uint32 (n, 4). For tests and for drawing outside kernels.
    """
    c = np.ascontiguousarray(counters, dtype=np.uint32).reshape(-1, 4)
    out = np.empty(c.shape, dtype=np.uint32)
    _philox_block(c, *_key(key), out)
    return out


def fill_normals(
    out: np.ndarray, key: tuple[int, int], step: int, purpose: int, agent0: int = 0
) -> np.ndarray:
    """Fill ``out`` (P, M), float32 or float64, in place: row ``a`` holds the normals of agent
    ``agent0 + a`` at ``step`` for ``purpose`` (see :func:`normals_into`). Returns ``out``."""
    if out.ndim != 2 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous 2-D array")
    _fill_normals(out, *_key(key), int(step), int(purpose), int(agent0))
    return out


def fill_uniforms(
    out: np.ndarray, key: tuple[int, int], step: int, purpose: int, agent0: int = 0
) -> np.ndarray:
    """Fill float64 ``out`` (P, M) in place with uniforms on (0, 1) (53 bits each), row ``a``
    from agent ``agent0 + a``'s stream at ``step`` for ``purpose``. Returns ``out``."""
    if out.ndim != 2 or not out.flags.c_contiguous or out.dtype != np.float64:
        raise ValueError("out must be a C-contiguous 2-D float64 array")
    _fill_uniforms(out, *_key(key), int(step), int(purpose), int(agent0))
    return out
