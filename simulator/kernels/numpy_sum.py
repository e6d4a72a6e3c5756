"""NumPy's pairwise summation, bit for bit, for Numba kernels that replace NumPy reductions.

``np.sum`` and ``np.mean`` along a contiguous axis add in a fixed tree (NumPy's
``pairwise_sum``, ``numpy/_core/src/umath/loops_utils.h.src``): fewer than 8 numbers one after
another; up to 128 numbers in 8 running sums (element ``i`` into sum ``i % 8``) combined as
``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``, then the rest one by one; more than 128
split in two at ``n / 2`` rounded down to a multiple of 8, each half summed so and the two
added. A kernel that adds in this order gets NumPy's result to the last bit, so moving a
reduction from NumPy into a kernel changes no number a model reports
(``tests/test_numpy_sum.py`` compares them for every length up to 299 and for longer ones up
to 100,003).

No fast-math here: reassociation would change the order, which is the point of the module.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# fastmath=False said, not left unset: Numba compiles a function that leaves it unset with the
# flags of the first (fast-math) kernel that calls it (see losses.squares_in_order)
_JIT = {"cache": True, "error_model": "numpy", "fastmath": False}
BLOCK = 128  # NumPy's PW_BLOCKSIZE
BUFFER = 8192  # NumPy's default buffer size (numbers cast at a time)
MAX_DEPTH = 64  # open halves at most (the tree's depth: log2(n / 128) + 1)


@njit(inline="always")
def _block_sum(a, lo, n):
    """Sum of ``a[lo:lo + n]``, 1 <= n <= BLOCK, in NumPy's order for such a block."""
    if n < 8:
        res = a[lo]  # NumPy starts from -0.0, and -0.0 + x is x for every x
        for i in range(lo + 1, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    whole = n - n % 8
    while i < whole:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(**_JIT)
def _tree_sum(a, lo, n):
    """:func:`pairwise_sum` of more than BLOCK numbers: NumPy's recursion (the sum of the two
    halves' sums) unrolled into a loop over the leaves, left to right, with a stack of the
    halves still open (Numba does not cache recursive functions)."""
    left = np.empty(MAX_DEPTH, dtype=a.dtype)  # a finished left half's sum, waiting
    right = np.empty((MAX_DEPTH, 2), dtype=np.int64)  # the right half to do (-1: under way)
    top = 0
    at, size = lo, n
    while True:
        while size > BLOCK:  # down the left halves to a block
            half = size // 2
            half -= half % 8
            right[top, 0], right[top, 1] = at + half, size - half
            top += 1
            size = half
        total = _block_sum(a, at, size)
        while top > 0 and right[top - 1, 1] < 0:  # right halves finished: add them to their left
            top -= 1
            total = left[top] + total
        if top == 0:
            return total
        left[top - 1] = total  # a left half finished: its right half next
        at, size = right[top - 1, 0], right[top - 1, 1]
        right[top - 1, 1] = -1


@njit(**_JIT)
def pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo + n]`` (1-D, n >= 1) in NumPy's pairwise order, in ``a``'s dtype.

    For ``np.sum(x, axis=-1)`` of a float32 x pass the float32 row. For ``np.mean(x, axis=-1,
    dtype=np.float64)`` of a float32 x pass the row converted to float64 and use
    :func:`buffered_sum` (NumPy casts through buffers of ``BUFFER`` numbers).
    """
    if n <= BLOCK:
        return _block_sum(a, lo, n)
    return _tree_sum(a, lo, n)


@njit(**_JIT)
def buffered_sum(a, lo, n):
    """NumPy's sum of ``n`` numbers it had to cast first (``dtype=`` another type): the pairwise
    sums of consecutive pieces of ``BUFFER`` numbers, added one after another."""
    res = pairwise_sum(a, lo, min(n, BUFFER))
    at = BUFFER
    while at < n:
        res += pairwise_sum(a, lo + at, min(BUFFER, n - at))
        at += BUFFER
    return res


__all__ = ["BLOCK", "BUFFER", "buffered_sum", "pairwise_sum"]
