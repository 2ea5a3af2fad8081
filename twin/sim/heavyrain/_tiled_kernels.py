"""Numba kernels of the tiled screening (Barnes 2016 style tile floods, border graphs, window checks).

Pure functions on arrays that write into ``out`` arrays (or return small new arrays); they import
only numpy, numba and math. Neighbour order N, NE, E, SE, S, SW, W, NW as in
``_screening_kernels``. ``OCEAN`` (-1) is the label of everything that drains out of the domain.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# the same deterministic binary heap (float64 keys, int64 values, ties broken on the value) as the untiled fill
from twin.sim.heavyrain._screening_kernels import _heap_pop as _pop
from twin.sim.heavyrain._screening_kernels import _heap_push as _push

_DR = (-1, -1, 0, 1, 1, 1, 0, -1)
_DC = (0, 1, 1, 1, 0, -1, -1, -1)

OCEAN = -1  # label of cells that drain straight out of the domain (border or next to NaN)
NO_LABEL = -2  # NaN cells


@njit(cache=True)
def _grow(a, n):
    b = np.empty(max(2 * len(a), n), a.dtype)
    b[:len(a)] = a
    return b


@njit(cache=True)
def tile_fill(z, halo, row0, col0, nrows, ncols, out, label):
    """Priority-Flood of one tile with every tile-edge cell as an outlet; labels and border graph.

    Parameters
    ----------
    z : float64[h, w]
        The tile with a ``halo`` of 2 cells where the domain has them (fewer at the domain border);
        NaN outside the domain.
    halo : int64[4]
        Halo widths (top, bottom, left, right) actually present in ``z``.
    row0, col0 : int
        Global row/column of the tile's first core cell.
    nrows, ncols : int
        Rows and columns of the whole domain.
    out : float64[th, tw]
        Tile-local filled elevations of the core (each tile-edge cell an outlet).
    label : int64[th, tw]
        Seed of every core cell: ``OCEAN`` for cells draining out of the domain (domain border, next
        to NaN), else the global flat index of the tile-edge cell whose flood reached it;
        ``NO_LABEL`` on NaN cells.

    Returns
    -------
    (a, b, w) : int64[], int64[], float64[]
        Border-graph edges: label ``a`` meets label ``b`` at spill elevation ``w`` (within the
        tile, and from the tile's edge cells to the neighbouring tiles' edge cells). Duplicates are
        possible; keep the minimum per pair.
    """
    th, tw = out.shape
    ht = halo[0]
    hl = halo[2]
    h, w = z.shape
    n = th * tw
    closed = np.zeros(n, np.uint8)
    keys = np.empty(n, np.float64)
    vals = np.empty(n, np.int64)
    pit = np.empty(n, np.int64)
    ea = np.empty(1024, np.int64)
    eb = np.empty(1024, np.int64)
    ew = np.empty(1024, np.float64)
    ne = 0
    ph = 0
    pt = 0
    hs = 0
    for r in range(th):
        for c in range(tw):
            i = r * tw + c
            zc = z[r + ht, c + hl]
            out[r, c] = zc
            label[r, c] = NO_LABEL
            if math.isnan(zc):
                closed[i] = 1
                continue
            gr = row0 + r
            gc = col0 + c
            seed = gr == 0 or gc == 0 or gr == nrows - 1 or gc == ncols - 1
            if not seed:
                for k in range(8):
                    if math.isnan(z[r + ht + _DR[k], c + hl + _DC[k]]):
                        seed = True
                        break
            if seed:
                label[r, c] = OCEAN
            elif r == 0 or c == 0 or r == th - 1 or c == tw - 1:
                label[r, c] = gr * ncols + gc
            else:
                continue
            closed[i] = 1
            hs = _push(keys, vals, hs, zc, i)
    # edges to the neighbouring tiles: this tile's edge cells against the halo's first ring
    for r in range(th):
        for c in range(tw):
            if not (r == 0 or c == 0 or r == th - 1 or c == tw - 1):
                continue
            a = label[r, c]
            if a == NO_LABEL:
                continue
            zc = out[r, c]
            for k in range(8):
                rr = r + _DR[k]
                cc = c + _DC[k]
                if rr >= 0 and rr < th and cc >= 0 and cc < tw:
                    continue
                wr = rr + ht
                wc = cc + hl
                if wr < 0 or wr >= h or wc < 0 or wc >= w:
                    continue  # outside the domain
                zn = z[wr, wc]
                if math.isnan(zn):
                    continue
                gr = row0 + rr
                gc = col0 + cc
                seed = gr == 0 or gc == 0 or gr == nrows - 1 or gc == ncols - 1
                if not seed:
                    for k2 in range(8):
                        r2 = wr + _DR[k2]
                        c2 = wc + _DC[k2]
                        if r2 >= 0 and r2 < h and c2 >= 0 and c2 < w and math.isnan(z[r2, c2]):
                            seed = True
                            break
                b = OCEAN if seed else gr * ncols + gc
                if b == a:
                    continue
                if ne == len(ea):
                    ea = _grow(ea, ne + 1)
                    eb = _grow(eb, ne + 1)
                    ew = _grow(ew, ne + 1)
                ea[ne] = a
                eb[ne] = b
                ew[ne] = max(zc, zn)
                ne += 1
    of = out.ravel()  # flat views (out and label are C-contiguous)
    lf = label.ravel()
    while True:
        if ph < pt:
            i = pit[ph]
            ph += 1
        elif hs > 0:
            _, i, hs = _pop(keys, vals, hs)
        else:
            break
        r = i // tw
        c = i - r * tw
        zc = of[i]
        a = lf[i]
        for k in range(8):
            rr = r + _DR[k]
            cc = c + _DC[k]
            if rr < 0 or rr >= th or cc < 0 or cc >= tw:
                continue
            j = rr * tw + cc
            if closed[j]:
                b = lf[j]
                if b != a and b != NO_LABEL:
                    if ne == len(ea):
                        ea = _grow(ea, ne + 1)
                        eb = _grow(eb, ne + 1)
                        ew = _grow(ew, ne + 1)
                    ea[ne] = a
                    eb[ne] = b
                    ew[ne] = max(zc, of[j])
                    ne += 1
                continue
            closed[j] = 1
            lf[j] = a
            if of[j] <= zc:
                of[j] = zc
                pit[pt] = j
                pt += 1
            else:
                hs = _push(keys, vals, hs, of[j], j)
    return ea[:ne].copy(), eb[:ne].copy(), ew[:ne].copy()


@njit(cache=True)
def graph_minimax(n_nodes, indptr, indices, weights, source, level):
    """Priority-Flood on a graph: the lowest spill level from ``source`` to every node (min over paths of
    the max edge weight). ``level`` float64[n_nodes] out; ``source`` gets -inf; unreachable nodes +inf."""
    for i in range(n_nodes):
        level[i] = np.inf
    done = np.zeros(n_nodes, np.uint8)
    m = len(indices) + 1
    keys = np.empty(m, np.float64)
    vals = np.empty(m, np.int64)
    level[source] = -np.inf
    hs = _push(keys, vals, 0, -np.inf, source)
    while hs > 0:
        k, i, hs = _pop(keys, vals, hs)
        if done[i]:
            continue
        done[i] = 1
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if done[j]:
                continue
            lv = max(k, weights[e])
            if lv < level[j]:
                level[j] = lv
                hs = _push(keys, vals, hs, lv, j)


@njit(cache=True)
def equal_regions_inside(f, r0, r1, c0, c1, open_top, open_bottom, open_left, open_right):
    """Whether every 8-connected region of equal ``f`` that meets rows r0..r1-1, cols c0..c1-1 stays off
    the window's open edges (edges that are not the domain border). NaN cells belong to no region."""
    h, w = f.shape
    seen = np.zeros((h, w), np.uint8)
    stack = np.empty(h * w, np.int64)
    for r in range(r0, r1):
        for c in range(c0, c1):
            if seen[r, c] or math.isnan(f[r, c]):
                continue
            v = f[r, c]
            seen[r, c] = 1
            sp = 0
            stack[sp] = r * w + c
            sp += 1
            while sp > 0:
                sp -= 1
                i = stack[sp]
                y = i // w
                x = i - y * w
                if (open_top and y == 0) or (open_bottom and y == h - 1) or (open_left and x == 0) or \
                        (open_right and x == w - 1):
                    return False
                for k in range(8):
                    yy = y + _DR[k]
                    xx = x + _DC[k]
                    if yy < 0 or yy >= h or xx < 0 or xx >= w or seen[yy, xx]:
                        continue
                    if f[yy, xx] == v:
                        seen[yy, xx] = 1
                        stack[sp] = yy * w + xx
                        sp += 1
    return True


@njit(cache=True)
def min_level_gap_ulps(f):
    """Smallest ``(f_high - f_low) / spacing(f_high)`` over 8-adjacent pairs with different finite values
    (inf when there is none): how many float64 steps a flat-resolving epsilon may climb safely."""
    h, w = f.shape
    best = np.inf
    for r in range(h):
        for c in range(w):
            a = f[r, c]
            if math.isnan(a):
                continue
            for k in range(1, 5):  # NE, E, SE, S: each unordered pair once
                rr = r + _DR[k]
                cc = c + _DC[k]
                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                    continue
                b = f[rr, cc]
                if math.isnan(b) or b == a:
                    continue
                hi = max(a, b)
                lo = min(a, b)
                m = max(abs(hi), abs(lo))
                g = (hi - lo) / (np.nextafter(m, np.inf) - m)
                if g < best:
                    best = g
    return best


@njit(cache=True)
def tile_accumulation(d8, weights, inject, acc, exit_of):
    """Upstream sums within one tile plus where each cell's flow leaves the tile.

    Parameters
    ----------
    d8 : int8[th, tw]
        D8 codes (0..7, negative: terminal); a code pointing outside the tile leaves the tile.
    weights, inject : float64[th, tw]
        Contribution of each cell and inflow from other tiles injected at entry cells.
    acc : float64[th, tw]
        Out: sums of ``weights + inject`` over each cell's upstream cells within the tile.
    exit_of : int64[th, tw]
        Out: tile-local flat index of the cell whose flow leaves the tile downstream of each cell
        (the cell itself when it points outside), -1 when its path ends inside the tile.
    """
    th, tw = d8.shape
    n = th * tw
    indeg = np.zeros(n, np.int32)
    down = np.full(n, -1, np.int64)
    leaves = np.zeros(n, np.uint8)
    for i in range(n):
        r = i // tw
        c = i - r * tw
        acc[r, c] = weights[r, c] + inject[r, c]
        k = d8[r, c]
        if k >= 0:
            rr = r + _DR[k]
            cc = c + _DC[k]
            if rr < 0 or rr >= th or cc < 0 or cc >= tw:
                leaves[i] = 1
            else:
                j = rr * tw + cc
                down[i] = j
                indeg[j] += 1
    order = np.empty(n, np.int64)
    qt = 0
    for i in range(n):
        if indeg[i] == 0:
            order[qt] = i
            qt += 1
    qh = 0
    while qh < qt:
        i = order[qh]
        qh += 1
        j = down[i]
        if j >= 0:
            acc[j // tw, j % tw] += acc[i // tw, i % tw]
            indeg[j] -= 1
            if indeg[j] == 0:
                order[qt] = j
                qt += 1
    for q in range(qt - 1, -1, -1):  # downstream first
        i = order[q]
        r = i // tw
        c = i - r * tw
        if leaves[i]:
            exit_of[r, c] = i
        elif down[i] >= 0:
            j = down[i]
            exit_of[r, c] = exit_of[j // tw, j % tw]
        else:
            exit_of[r, c] = -1


@njit(cache=True)
def dag_totals(n, local, target_node, total):
    """Totals over a forest of exit nodes: ``total[x] = local[x] + sum(total[y] for y with target_node[y] == x)``
    (``target_node`` -1: drains nowhere further). Kahn order; the graph is acyclic (D8 on a conditioned DEM)."""
    indeg = np.zeros(n, np.int32)
    for i in range(n):
        total[i] = local[i]
        if target_node[i] >= 0:
            indeg[target_node[i]] += 1
    q = np.empty(n, np.int64)
    qt = 0
    for i in range(n):
        if indeg[i] == 0:
            q[qt] = i
            qt += 1
    qh = 0
    while qh < qt:
        i = q[qh]
        qh += 1
        j = target_node[i]
        if j >= 0:
            total[j] += total[i]
            indeg[j] -= 1
            if indeg[j] == 0:
                q[qt] = j
                qt += 1
    return qt


@njit(cache=True)
def terminal_of(d8, out):
    """Flat index of the cell where each cell's D8 path ends (a cell with a negative code: it drains out of
    the domain, or a pit); -1 on NaN cells (code -3). ``out`` int64[rows, cols]."""
    rows, cols = d8.shape
    n = rows * cols
    indeg = np.zeros(n, np.int32)
    down = np.full(n, -1, np.int64)
    for i in range(n):
        k = d8[i // cols, i % cols]
        if k >= 0:
            j = (i // cols + _DR[k]) * cols + i % cols + _DC[k]
            down[i] = j
            indeg[j] += 1
    order = np.empty(n, np.int64)
    qt = 0
    for i in range(n):
        if indeg[i] == 0:
            order[qt] = i
            qt += 1
    qh = 0
    while qh < qt:
        i = order[qh]
        qh += 1
        j = down[i]
        if j >= 0:
            indeg[j] -= 1
            if indeg[j] == 0:
                order[qt] = j
                qt += 1
    for q in range(qt - 1, -1, -1):
        i = order[q]
        r = i // cols
        c = i - r * cols
        if d8[r, c] == -3:
            out[r, c] = -1
        elif down[i] < 0:
            out[r, c] = i
        else:
            j = down[i]
            out[r, c] = out[j // cols, j % cols]
