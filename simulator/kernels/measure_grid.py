"""Exact single linkage at radius eps of many points in 1 to 3 dimensions, on a grid.

Cells have side a hair under ``eps / sqrt(q)`` (q = dimension; the margin covers the rounding
of the cell numbers, see ``metrics.grid_clusters``), so any two points of one cell are closer
than eps and every cell is one piece of a cluster. Two cells can hold linked points only when
their coordinates differ by at most 2 in every dimension; each such pair of non-empty
cells not yet in one component is checked point by point (float64 distances) until a link is
found. On a small grid (a few cells per point, the usual case) the cells are numbered
densely, sorted by counting and a neighbour is found by adding a constant to a cell's number
(:func:`dense_grid_labels`); on a large one neighbouring cells are found by walking the sorted
packed cell keys (:func:`grid_components`). Both give the same components. Time O(P) or
O(P log P) plus the point pairs of neighbouring cells checked before a link (at worst their
product, when points of two adjacent cells are all just farther than eps apart); memory
O(P + the cells of a small grid).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator.kernels.measure import _find

_JIT = {"cache": True, "error_model": "numpy"}


@njit(**_JIT)
def _linked(Z, pts, a0, a1, b0, b1, eps2):
    """True if some point of pts[a0:a1] and some of pts[b0:b1] are closer than sqrt(eps2)."""
    q = Z.shape[1]
    for s in range(a0, a1):
        i = pts[s]
        for t in range(b0, b1):
            j = pts[t]
            d2 = 0.0
            for k in range(q):
                e = Z[i, k] - Z[j, k]
                d2 += e * e
            if d2 < eps2:
                return True
    return False


@njit(**_JIT)
def bounds(Z, lo, hi):
    """lo, hi (q,) float64 = the column minima and maxima of Z (P, q) float64, P >= 1, one
    column at a time with the extremes in registers (the same order of comparisons as one
    pass over the rows: the same values); returns False when some value of Z is NaN or
    infinite (counted in integers: no chain of float additions)."""
    P, q = Z.shape
    nonfinite = 0
    for d in range(q):
        low = Z[0, d]
        high = low
        for p in range(P):
            v = Z[p, d]
            nonfinite += not np.isfinite(v)
            low = min(low, v)
            high = max(high, v)
        lo[d] = low
        hi[d] = high
    return nonfinite == 0


@njit(**_JIT)
def cell_keys(Z, lo, side, bits, cells, keys):
    """cells[p, d] = floor((Z[p, d] - lo[d]) / side) (int64, as NumPy computes it) and
    keys[p] = point p's cell coordinates packed into one int64, ``bits`` per dimension
    (lexicographic order of the coordinates = numeric order of the keys). One pass."""
    P, q = Z.shape
    for p in range(P):
        k = np.int64(0)
        for d in range(q):
            c = np.int64(np.floor((Z[p, d] - lo[d]) / side))
            cells[p, d] = c
            k = (k << bits) | c
        keys[p] = k


@njit(inline="always")
def _ring_of(o, width, reach, off):
    """Offset number ``o`` of the ``width**q`` offsets in [-reach, reach]^q, decoded into
    ``off`` (q,); returns its ring (the largest absolute coordinate), or 0 when its first
    non-zero coordinate is negative (or it is zero): each unordered pair of cells once."""
    q = off.shape[0]
    rem = o
    far = 0
    for d in range(q - 1, -1, -1):
        off[d] = rem % width - reach
        rem //= width
        far = max(far, abs(off[d]))
    for d in range(q):
        if off[d] != 0:
            return far if off[d] > 0 else 0
    return 0


@njit(**_JIT)
def grid_components(Z, cells, pts, sorted_keys, bits, eps, reach, parent):
    """Union-find over cells of the eps-linkage graph of the points Z (P, q) float64.

    cells : int64 (P, q) non-negative cell coordinates (floor of Z / side), each below
    ``2**bits``; pts : int64 (P,) the points in increasing order of their packed keys
    (:func:`cell_keys`; the points of one cell in any order: the components do not depend on
    it) and sorted_keys (P,) those keys in that order. reach : int, the largest coordinate
    difference of linkable cells. parent : int64 (P,), filled: parent[p] = one representative
    point of p's cluster. Neighbour cells are found by a forward-moving pointer per offset (the
    packed key of a shifted cell is the key plus a constant), never by searching.
    """
    P, q = cells.shape
    starts = np.empty(P + 1, dtype=np.int64)
    n_cells = 0
    for s in range(P):
        if s == 0 or sorted_keys[s] != sorted_keys[s - 1]:
            starts[n_cells] = s
            n_cells += 1
    starts[n_cells] = P
    ckeys = np.empty(n_cells, dtype=np.int64)
    for c in range(n_cells):
        ckeys[c] = sorted_keys[starts[c]]
    cpar = np.arange(n_cells)
    eps2 = eps * eps
    width = 2 * reach + 1
    off = np.empty(q, dtype=np.int64)
    limit = np.int64(1) << bits
    # near neighbours (offsets of at most 1 in every dimension) first, for every cell: most
    # farther pairs of cells are then already in one component and cost nothing
    for ring in range(1, reach + 1):
        for o in range(width**q):
            if _ring_of(o, width, reach, off) != ring:
                continue
            shift = np.int64(0)
            for d in range(q):
                shift = shift * limit + off[d]
            j = 0
            for c in range(n_cells):
                base = cells[pts[starts[c]]]
                inside = True
                for d in range(q):
                    v = base[d] + off[d]
                    if v < 0 or v >= limit:
                        inside = False
                        break
                if not inside:
                    continue
                target = ckeys[c] + shift
                while j < n_cells and ckeys[j] < target:
                    j += 1
                if j >= n_cells:
                    break
                if ckeys[j] != target:
                    continue
                ra, rb = _find(cpar, c), _find(cpar, j)
                if ra == rb:
                    continue
                if _linked(Z, pts, starts[c], starts[c + 1], starts[j], starts[j + 1], eps2):
                    if ra < rb:
                        cpar[rb] = ra
                    else:
                        cpar[ra] = rb
    for c in range(n_cells):
        root = _find(cpar, c)
        first = pts[starts[root]]
        for s in range(starts[c], starts[c + 1]):
            parent[pts[s]] = first


@njit(**_JIT)
def _cell_numbers(Z, lo, side, stride, index):
    """index[p] = the dense number of point p's cell, ``sum_d floor((Z[p, d] - lo[d]) / side)
    stride[d]``, a point at a time with its q <= 3 coordinates written out (the same values;
    one column at a time, with a loop over the coordinates, took 2.8 ns a point at 100,000
    points of two coordinates, this 0.7 ns)."""
    P, q = Z.shape
    l0 = lo[0]
    if q == 1:
        for p in range(P):
            index[p] = np.int64(np.floor((Z[p, 0] - l0) / side))
        return
    l1, s0 = lo[1], stride[0]
    if q == 2:
        for p in range(P):
            c0 = np.int64(np.floor((Z[p, 0] - l0) / side))
            index[p] = c0 * s0 + np.int64(np.floor((Z[p, 1] - l1) / side))
        return
    l2, s1 = lo[2], stride[1]
    for p in range(P):
        c0 = np.int64(np.floor((Z[p, 0] - l0) / side))
        c1 = np.int64(np.floor((Z[p, 1] - l1) / side))
        index[p] = c0 * s0 + c1 * s1 + np.int64(np.floor((Z[p, 2] - l2) / side))


@njit(**_JIT)
def dense_grid_labels(Z, lo, side, extent, eps, reach, labels, index, pts):
    """The components of :func:`grid_components` on a small grid, as labels.

    labels : int64 (P,), filled: each point's component, numbered by first appearance (0,
    1, ... in the order of the points). Returns ``(n_labels, largest)``: the number of
    components and the points in the largest. index, pts : int64 (P,) scratch, allocated by
    the caller with NumPy, whose large buffers come in huge pages (the kernel's own 16 MB at
    1,000,000 points took a page fault per 4 KiB written: +2.4 ms a call in a model step).

    The cells are numbered densely, row-major over ``extent`` (int64 (q,), the cells per
    dimension; every point's cell ``floor((Z[p, d] - lo[d]) / side)`` is below it), which is
    the order of the packed keys; the points are put in cell order by a counting sort (the
    points of one cell in index order), and a neighbouring cell is found by adding a constant
    to its number. The pairs of cells are visited in the order of :func:`grid_components`, so
    the same unions happen in the same order. Time O(P + the cells of the grid) plus the point
    pairs checked, as there; made for grids of at most a few cells per point (the caller
    chooses).
    """
    P, q = Z.shape
    stride = np.empty(q, dtype=np.int64)
    n = np.int64(1)
    for d in range(q - 1, -1, -1):
        stride[d] = n
        n *= extent[d]
    _cell_numbers(Z, lo, side, stride, index)
    slot = np.zeros(n, dtype=np.int64)  # points per grid cell, then its non-empty cell + 1
    for p in range(P):
        slot[index[p]] += 1
    most = min(n, P)  # non-empty cells at most
    number = np.empty(most, dtype=np.int64)  # non-empty cell -> grid cell, in grid order
    coords = np.empty((most, q), dtype=np.int64)  # a non-empty cell's coordinates
    starts = np.empty(most + 1, dtype=np.int64)
    cur = np.zeros(q, dtype=np.int64)  # grid cell k's coordinates (an odometer: no division)
    n_cells = 0
    total = 0
    for k in range(n):
        if slot[k] > 0:
            number[n_cells] = k
            coords[n_cells] = cur
            starts[n_cells] = total
            total += slot[k]
            n_cells += 1
            slot[k] = n_cells
        d = q - 1
        cur[d] += 1
        while d > 0 and cur[d] == extent[d]:
            cur[d] = 0
            d -= 1
            cur[d] += 1
    starts[n_cells] = P
    fill = starts[:n_cells].copy()
    for p in range(P):  # index[p] becomes point p's non-empty cell
        c = slot[index[p]] - 1
        index[p] = c
        pts[fill[c]] = p
        fill[c] += 1
    cpar = np.arange(n_cells)
    eps2 = eps * eps
    width = 2 * reach + 1
    off = np.empty(q, dtype=np.int64)
    for ring in range(1, reach + 1):  # offsets and cells in grid_components' order
        for o in range(width**q):
            if _ring_of(o, width, reach, off) != ring:
                continue
            shift = np.int64(0)
            for d in range(q):
                shift += off[d] * stride[d]
            for c in range(n_cells):
                inside = True
                for d in range(q):
                    v = coords[c, d] + off[d]
                    if v < 0 or v >= extent[d]:
                        inside = False
                        break
                if not inside:
                    continue
                j = slot[number[c] + shift] - 1
                if j < 0:
                    continue
                # the union step of grid_components, written out again: as a shared inlined
                # helper both kernels ran 20-45% slower (300,000 x 3: 179 -> 260 ms)
                ra, rb = _find(cpar, c), _find(cpar, j)
                if ra == rb:
                    continue
                if _linked(Z, pts, starts[c], starts[c + 1], starts[j], starts[j + 1], eps2):
                    if ra < rb:
                        cpar[rb] = ra
                    else:
                        cpar[ra] = rb
    # labels by first appearance: a cell's label found once (at its first point), the sizes
    # summed per cell (a count per point was a chain of increments of one counter: 1.7 ns a
    # point at 100,000 points in one cluster)
    rank = np.full(n_cells, -1, dtype=np.int64)  # a root cell's label, -1 before its first point
    cell_label = np.full(n_cells, -1, dtype=np.int64)
    n_labels = 0
    for p in range(P):
        c = index[p]
        label = cell_label[c]
        if label < 0:
            r = _find(cpar, c)
            if rank[r] < 0:
                rank[r] = n_labels
                n_labels += 1
            label = cell_label[c] = rank[r]
        labels[p] = label
    sizes = np.zeros(n_labels, dtype=np.int64)
    for c in range(n_cells):
        sizes[cell_label[c]] += starts[c + 1] - starts[c]
    return n_labels, sizes.max()


__all__ = [
    "bounds",
    "cell_keys",
    "dense_grid_labels",
    "grid_components",
]
