"""Numba kernels of the heavy-rain screening: Priority-Flood, depression hierarchy, Fill-Spill-Merge,
D8 / D-infinity directions and flow accumulation.

Pure functions on flat or 2-D arrays that write into ``out`` arrays; they import only numpy, numba
and math. Cells are addressed by their flat row-major index. NaN elevations are cells outside the
domain: water that reaches them (or the grid border) leaves the domain.

Neighbours are visited in the order N, NE, E, SE, S, SW, W, NW (the order of pysheds' D8, so that
ties between equally steep neighbours resolve the same way).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_DR = (-1, -1, 0, 1, 1, 1, 0, -1)
_DC = (0, 1, 1, 1, 0, -1, -1, -1)

OUTLET = -1  # D8 code: the cell drains out of the domain (border or next to NaN)
PIT = -2  # D8 code: interior cell without a lower neighbour (only on unconditioned surfaces)


# ---------------------------------------------------------------------------------- binary heap
# keys float64, values int64 (cell index); ties break on the value so the order is deterministic
@njit(cache=True, inline="always")
def _less(k1, v1, k2, v2):
    return k1 < k2 or (k1 == k2 and v1 < v2)


@njit(cache=True)
def _heap_push(keys, vals, size, key, val):
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if _less(key, val, keys[p], vals[p]):
            keys[i] = keys[p]
            vals[i] = vals[p]
            i = p
        else:
            break
    keys[i] = key
    vals[i] = val
    return size + 1


@njit(cache=True)
def _heap_pop(keys, vals, size):
    """Remove the smallest entry; returns (key, value, new size)."""
    k0 = keys[0]
    v0 = vals[0]
    size -= 1
    key = keys[size]
    val = vals[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _less(keys[c + 1], vals[c + 1], keys[c], vals[c]):
            c += 1
        if _less(keys[c], vals[c], key, val):
            keys[i] = keys[c]
            vals[i] = vals[c]
            i = c
        else:
            break
    if size > 0:
        keys[i] = key
        vals[i] = val
    return k0, v0, size


@njit(cache=True)
def _is_seed(z, r, c, rows, cols):
    """A valid cell on the border or next to a NaN cell: water can leave the domain from it."""
    if r == 0 or c == 0 or r == rows - 1 or c == cols - 1:
        return True
    for k in range(8):
        if math.isnan(z[(r + _DR[k]) * cols + c + _DC[k]]):
            return True
    return False


# ---------------------------------------------------------------------------------- Priority-Flood
@njit(cache=True)
def priority_flood_fill(z, rows, cols, use_epsilon, out):
    """Fill depressions: Priority-Flood with a pit queue (Barnes, Lehman & Mulla 2014, Alg. 2/3;
    with ``use_epsilon`` Alg. 4, every filled cell is raised to ``nextafter`` of the cell that
    reached it, so flats drain towards their spill point).

    Parameters
    ----------
    z : float64[rows * cols]
        Elevations (m), NaN outside the domain. Not modified.
    use_epsilon : bool
    out : float64[rows * cols]
        Filled elevations; NaN where ``z`` is NaN.
    """
    n = rows * cols
    closed = np.zeros(n, np.uint8)
    keys = np.empty(n, np.float64)
    vals = np.empty(n, np.int64)
    pit = np.empty(n, np.int64)
    ph = 0
    pt = 0
    hs = 0
    for i in range(n):
        out[i] = z[i]
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if math.isnan(z[i]):
                closed[i] = 1
            elif _is_seed(z, r, c, rows, cols):
                closed[i] = 1
                hs = _heap_push(keys, vals, hs, z[i], i)
    while True:
        if ph < pt:
            i = pit[ph]
            ph += 1
        elif hs > 0:
            _, i, hs = _heap_pop(keys, vals, hs)
        else:
            break
        zc = out[i]
        thr = np.nextafter(zc, np.inf) if use_epsilon else zc
        r = i // cols
        c = i - r * cols
        for k in range(8):
            rr = r + _DR[k]
            cc = c + _DC[k]
            if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                continue
            j = rr * cols + cc
            if closed[j]:
                continue
            closed[j] = 1
            if out[j] <= thr:
                out[j] = thr
                pit[pt] = j
                pt += 1
            else:
                hs = _heap_push(keys, vals, hs, out[j], j)


# ---------------------------------------------------------------------------------- D8
@njit(cache=True, parallel=True)
def d8_directions(z, dx, dy, out):
    """Steepest-descent D8 direction of every cell (O'Callaghan & Mark 1984).

    Parameters
    ----------
    z : float64[rows, cols]
        Elevations (m), NaN outside.
    dx, dy : float
        Cell size (m).
    out : int8[rows, cols]
        0..7 = N, NE, E, SE, S, SW, W, NW; ``OUTLET`` (-1) for a border cell or a cell next to NaN
        without a lower neighbour; ``PIT`` (-2) for an interior cell without one; -3 for NaN cells.
        Ties go to the first neighbour in that order (as in pysheds).
    """
    rows, cols = z.shape
    dd = math.sqrt(dx * dx + dy * dy)
    for r in prange(rows):
        for c in range(cols):
            zc = z[r, c]
            if math.isnan(zc):
                out[r, c] = -3
                continue
            best = -np.inf
            code = -1
            edge = False
            for k in range(8):
                rr = r + _DR[k]
                cc = c + _DC[k]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    edge = True
                    continue
                zn = z[rr, cc]
                if math.isnan(zn):
                    edge = True
                    continue
                dist = dy if (k == 0 or k == 4) else (dx if (k == 2 or k == 6) else dd)
                s = (zc - zn) / dist
                if s > best:
                    best = s
                    code = k
            if best > 0.0:
                out[r, c] = code
            elif edge:
                out[r, c] = OUTLET
            else:
                out[r, c] = PIT


@njit(cache=True)
def d8_accumulation(directions, weights, out):
    """Upstream sum of ``weights`` along D8 directions (each cell includes itself).

    Topological order by in-degree (Kahn), O(n), no recursion.

    Parameters
    ----------
    directions : int8[rows, cols]
        From :func:`d8_directions`; cells with a negative code receive but pass nothing on.
    weights : float64[rows, cols]
        What each cell contributes (e.g. its area in m2); NaN cells should carry 0.
    out : float64[rows, cols]
    """
    rows, cols = directions.shape
    n = rows * cols
    d = directions.ravel()
    w = weights.ravel()
    acc = out.ravel()
    indeg = np.zeros(n, np.int32)
    down = np.full(n, -1, np.int64)
    for i in range(n):
        acc[i] = w[i]
        k = d[i]
        if k >= 0:
            r = i // cols
            c = i - r * cols
            j = (r + _DR[k]) * cols + c + _DC[k]
            down[i] = j
            indeg[j] += 1
    queue = np.empty(n, np.int64)
    qt = 0
    for i in range(n):
        if indeg[i] == 0:
            queue[qt] = i
            qt += 1
    qh = 0
    while qh < qt:
        i = queue[qh]
        qh += 1
        j = down[i]
        if j >= 0:
            acc[j] += acc[i]
            indeg[j] -= 1
            if indeg[j] == 0:
                queue[qt] = j
                qt += 1


# ---------------------------------------------------------------------------------- D-infinity
# Tarboton (1997) facets: (cardinal neighbour, diagonal neighbour) as neighbour codes, and the
# factors of the global angle  a = af * pi/2 + ac * r  (angle counter-clockwise from east)
_FACET_E1 = (2, 0, 0, 6, 6, 4, 4, 2)
_FACET_E2 = (1, 1, 7, 7, 5, 5, 3, 3)
_FACET_AC = (1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0)
_FACET_AF = (0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0)
# neighbour code of the directions at angles 0, 45, ..., 315 degrees (E, NE, N, NW, W, SW, S, SE)
_ANGLE_NB = (2, 1, 0, 7, 6, 5, 4, 3)


@njit(cache=True, parallel=True)
def dinf_directions(z, cell, angle, recv1, recv2, frac1):
    """D-infinity flow direction (Tarboton 1997) on square cells of size ``cell`` (m).

    Parameters
    ----------
    z : float64[rows, cols]
        Elevations, NaN outside. Facets with a missing corner are skipped.
    angle : float64[rows, cols]
        Flow angle in radians counter-clockwise from east (0 <= a < 2 pi), -1 where the cell has no
        downslope facet (outlet or pit), NaN for NaN cells.
    recv1, recv2 : int64[rows, cols]
        Flat indices of the two receiving neighbours (-1 for none).
    frac1 : float64[rows, cols]
        Share of the flow going to ``recv1`` (the rest goes to ``recv2``).
    """
    rows, cols = z.shape
    quarter = math.pi / 4.0
    rmax = math.atan2(cell, cell)
    diag = math.sqrt(2.0) * cell
    for r in prange(rows):
        for c in range(cols):
            recv1[r, c] = -1
            recv2[r, c] = -1
            frac1[r, c] = 0.0
            e0 = z[r, c]
            if math.isnan(e0):
                angle[r, c] = np.nan
                continue
            best = 0.0
            best_a = -1.0
            for f in range(8):
                k1 = _FACET_E1[f]
                k2 = _FACET_E2[f]
                r1 = r + _DR[k1]
                c1 = c + _DC[k1]
                r2 = r + _DR[k2]
                c2 = c + _DC[k2]
                if r1 < 0 or r1 >= rows or c1 < 0 or c1 >= cols or r2 < 0 or r2 >= rows or c2 < 0 or c2 >= cols:
                    continue
                e1 = z[r1, c1]
                e2 = z[r2, c2]
                if math.isnan(e1) or math.isnan(e2):
                    continue
                s1 = (e0 - e1) / cell
                s2 = (e1 - e2) / cell
                rr = math.atan2(s2, s1)
                s = math.sqrt(s1 * s1 + s2 * s2)
                if rr < 0.0:
                    rr = 0.0
                    s = s1
                elif rr > rmax:
                    rr = rmax
                    s = (e0 - e2) / diag
                if s > best:
                    best = s
                    best_a = _FACET_AF[f] * (math.pi / 2.0) + _FACET_AC[f] * rr
            if best_a < 0.0:
                angle[r, c] = -1.0
                continue
            if best_a >= 2.0 * math.pi:
                best_a -= 2.0 * math.pi
            angle[r, c] = best_a
            sector = int(best_a / quarter)
            if sector > 7:
                sector = 7
            t = (best_a - sector * quarter) / quarter
            ka = _ANGLE_NB[sector]
            kb = _ANGLE_NB[(sector + 1) % 8]
            recv1[r, c] = (r + _DR[ka]) * cols + c + _DC[ka]
            frac1[r, c] = 1.0 - t
            if t > 0.0:
                recv2[r, c] = (r + _DR[kb]) * cols + c + _DC[kb]


@njit(cache=True)
def dinf_accumulation(recv1, recv2, frac1, weights, out):
    """Upstream sum of ``weights`` along D-infinity directions (flow split between two receivers)."""
    n = recv1.size
    r1 = recv1.ravel()
    r2 = recv2.ravel()
    f1 = frac1.ravel()
    w = weights.ravel()
    acc = out.ravel()
    indeg = np.zeros(n, np.int32)
    for i in range(n):
        acc[i] = w[i]
        if r1[i] >= 0:
            indeg[r1[i]] += 1
        if r2[i] >= 0:
            indeg[r2[i]] += 1
    queue = np.empty(n, np.int64)
    qt = 0
    for i in range(n):
        if indeg[i] == 0:
            queue[qt] = i
            qt += 1
    qh = 0
    while qh < qt:
        i = queue[qh]
        qh += 1
        j = r1[i]
        if j >= 0:
            acc[j] += acc[i] * f1[i]
            indeg[j] -= 1
            if indeg[j] == 0:
                queue[qt] = j
                qt += 1
        j = r2[i]
        if j >= 0:
            acc[j] += acc[i] * (1.0 - f1[i])
            indeg[j] -= 1
            if indeg[j] == 0:
                queue[qt] = j
                qt += 1


# ---------------------------------------------------------------------------------- hierarchy
@njit(cache=True)
def _find(uf, x):
    while uf[x] != x:
        uf[x] = uf[uf[x]]
        x = uf[x]
    return x


@njit(cache=True)
def count_pits(z, rows, cols):
    """Number of interior valid cells without a strictly lower neighbour (upper bound of leaves)."""
    n = 0
    for r in range(1, rows - 1):
        for c in range(1, cols - 1):
            i = r * cols + c
            zc = z[i]
            if math.isnan(zc) or _is_seed(z, r, c, rows, cols):
                continue
            low = False
            for k in range(8):
                if z[(r + _DR[k]) * cols + c + _DC[k]] < zc:
                    low = True
                    break
            if not low:
                n += 1
    return n


@njit(cache=True)
def depression_hierarchy(z, rows, cols, label, parent, child1, child2, spill_z, spill_cell, overflow_leaf,
                         volume, area_cells, min_z):
    """Depression hierarchy by a Priority-Flood grown from every pit and the border at once
    (Barnes, Callaghan & Wickert 2021, "Computing water flow through complex landscapes, part 2").

    Cells are processed in non-decreasing elevation; each cell takes the label of the neighbour that
    reached it first (its lowest neighbour), so labels are drainage basins of pits ("leaves"). Where two
    basins meet, the lower of the two cells' components merge at that saddle: two depressions become
    the children of a new meta-depression, a depression that meets the border (label 0, "ocean")
    overflows out of it. Volumes come from running counts and sums of the cells below each saddle.

    Parameters
    ----------
    z : float64[rows * cols]
        Elevations, NaN outside the domain.
    label : int32[rows * cols] (out)
        Leaf id of each cell's basin, 0 for cells draining directly out of the domain, -1 for NaN.
    parent, child1, child2 : int64[m] (out)
        Tree of depressions; node 0 is the ocean; -1 where none. Node ids grow with spill elevation
        (a parent has a larger id than its children).
    spill_z : float64[m] (out)
        Elevation at which the depression spills (its saddle), NaN for the ocean.
    spill_cell : int64[m] (out)
        Saddle cell, -1 for the ocean.
    overflow_leaf : int64[m] (out)
        Leaf (or 0 = out of the domain) whose basin receives the overflow, across the saddle.
    volume : float64[m] (out)
        Volume below the spill elevation in cell units (m3 = volume * cell area).
    area_cells : int64[m] (out)
        Cells below the spill elevation.
    min_z : float64[m] (out)
        Lowest elevation in the depression.

    Returns
    -------
    int
        Number of nodes used (``m`` must be at least 2 * pits + 1).
    """
    n = rows * cols
    m = parent.size
    keys = np.empty(n, np.float64)
    vals = np.empty(n, np.int64)
    hs = 0
    processed = np.zeros(n, np.uint8)
    pushed = np.zeros(n, np.uint8)
    uf = np.arange(m)
    cnt = np.zeros(m, np.int64)  # cells added to the component so far
    tot = np.zeros(m, np.float64)  # sum of their elevations
    last_z = np.full(m, -np.inf)  # elevation of the last cells added, and how many were at it
    last_n = np.zeros(m, np.int64)
    for i in range(m):
        parent[i] = -1
        child1[i] = -1
        child2[i] = -1
        spill_z[i] = np.nan
        spill_cell[i] = -1
        overflow_leaf[i] = -1
        volume[i] = 0.0
        area_cells[i] = 0
        min_z[i] = np.nan
    for i in range(n):
        label[i] = -1
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            zc = z[i]
            if math.isnan(zc):
                continue
            if _is_seed(z, r, c, rows, cols):
                label[i] = 0
                pushed[i] = 1
                hs = _heap_push(keys, vals, hs, zc, i)
                continue
            low = False
            for k in range(8):
                if z[(r + _DR[k]) * cols + c + _DC[k]] < zc:
                    low = True
                    break
            if not low:
                pushed[i] = 1
                hs = _heap_push(keys, vals, hs, zc, i)
    nodes = 1
    while hs > 0:
        zc, i, hs = _heap_pop(keys, vals, hs)
        if label[i] == -1:  # an unclaimed pit: a new leaf
            label[i] = nodes
            min_z[nodes] = zc
            nodes += 1
        a = label[i]
        ra = _find(uf, a)
        if ra != 0:
            cnt[ra] += 1
            tot[ra] += zc
            if zc == last_z[ra]:
                last_n[ra] += 1
            else:
                last_z[ra] = zc
                last_n[ra] = 1
        processed[i] = 1
        r = i // cols
        c = i - r * cols
        for k in range(8):
            rr = r + _DR[k]
            cc = c + _DC[k]
            if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                continue
            j = rr * cols + cc
            if math.isnan(z[j]):
                continue
            if processed[j]:
                b = label[j]
                rb = _find(uf, b)
                if ra == rb:
                    continue
                # saddle at zc between the component of i and that of j
                for side in range(2):
                    rx = ra if side == 0 else rb
                    if rx == 0:
                        continue
                    spill_z[rx] = zc
                    spill_cell[rx] = i
                    overflow_leaf[rx] = b if side == 0 else a
                    volume[rx] = zc * cnt[rx] - tot[rx]
                    area_cells[rx] = cnt[rx] - (last_n[rx] if last_z[rx] == zc else 0)
                if ra == 0 or rb == 0:
                    rx = rb if ra == 0 else ra
                    uf[rx] = 0
                    ra = 0
                else:
                    if nodes >= m:
                        raise IndexError("depression hierarchy: node arrays too small")
                    mm = nodes
                    nodes += 1
                    child1[mm] = ra
                    child2[mm] = rb
                    parent[ra] = mm
                    parent[rb] = mm
                    uf[ra] = mm
                    uf[rb] = mm
                    cnt[mm] = cnt[ra] + cnt[rb]
                    tot[mm] = tot[ra] + tot[rb]
                    min_z[mm] = min(min_z[ra], min_z[rb])
                    if last_z[ra] == last_z[rb]:
                        last_z[mm] = last_z[ra]
                        last_n[mm] = last_n[ra] + last_n[rb]
                    elif last_z[ra] > last_z[rb]:
                        last_z[mm] = last_z[ra]
                        last_n[mm] = last_n[ra]
                    else:
                        last_z[mm] = last_z[rb]
                        last_n[mm] = last_n[rb]
                    ra = mm
            elif not pushed[j]:
                pushed[j] = 1
                label[j] = a
                hs = _heap_push(keys, vals, hs, z[j], j)
            elif label[j] == -1:
                label[j] = a  # a pit at the same level, reached by this basin first
    return nodes


@njit(cache=True)
def subtree_roots(parent, nodes, out):
    """Top-level depression of every node (itself when it has no parent); ``out[0] = 0``."""
    out[0] = 0
    for x in range(nodes - 1, 0, -1):
        p = parent[x]
        out[x] = x if p < 0 else out[p]


@njit(cache=True)
def filled_from_hierarchy(z, label, spill_z, root, out):
    """Elevation of the depression-filled surface: max(z, spill of the cell's top-level depression)."""
    for i in range(z.size):
        a = label[i]
        if a <= 0:
            out[i] = z[i]
        else:
            h = spill_z[root[a]]
            out[i] = h if z[i] < h else z[i]


# ---------------------------------------------------------------------------------- Fill-Spill-Merge
@njit(cache=True)
def fill_spill_merge(parent, child1, child2, overflow_leaf, volume, nodes, inflow, stored, pool, full):
    """Route each leaf's inflow through the depression hierarchy (Barnes, Callaghan & Wickert 2021).

    A depression fills until its spill elevation; the excess crosses its saddle into the basin of
    ``overflow_leaf`` (or leaves the domain through node 0). When both children of a meta-depression
    are full they pool into one lake that fills the meta-depression. Order-independent: the result is
    the unique state where every depression holds min(its capacity, what reaches it).

    Parameters
    ----------
    inflow : float64[m]
        Water delivered to each leaf (any volume unit; zero for meta nodes).
    stored : float64[m] (out)
        Water held by each node that is its own pool representative (a leaf, or a pooled meta
        holding its children); 0 elsewhere.
    pool : int64[m] (out)
        Union-find of pooled nodes: the representative of x is found by following ``pool``.
    full : uint8[m] (out)

    Returns
    -------
    float
        Volume that left the domain.
    """
    for x in range(nodes):
        stored[x] = 0.0
        pool[x] = x
        full[x] = 0
    outflow = 0.0
    for leaf in range(1, nodes):
        x = inflow[leaf]
        if x <= 0.0:
            continue
        p = _find(pool, leaf)
        while x > 0.0:
            if p == 0:
                outflow += x
                break
            room = volume[p] - stored[p]
            if x <= room:
                stored[p] += x
                if x == room:
                    full[p] = 1
                break
            x -= room
            stored[p] = volume[p]
            full[p] = 1
            mm = parent[p]
            if mm < 0:
                p = _find(pool, overflow_leaf[p])
                continue
            q = child2[mm] if child1[mm] == p else child1[mm]
            if full[q]:
                pool[p] = mm
                pool[q] = mm
                stored[mm] = stored[p] + stored[q]
                stored[p] = 0.0
                stored[q] = 0.0
                p = mm
            else:
                p = _find(pool, overflow_leaf[p])
    # representatives hold the pooled water; members of a pool report 0
    return outflow


@njit(cache=True)
def water_levels(z, label, pool, stored, full, spill_z, nodes, cell_area, level):
    """Water surface elevation of every pool from its stored volume; NaN for empty pools.

    A full pool stands at its spill elevation. A partly filled pool: its cells below the spill
    elevation sorted by elevation, and the level h with cell_area * sum(h - z_i over z_i < h) =
    stored found exactly between two consecutive cell elevations.
    """
    n = z.size
    rep = np.empty(n, np.int64)
    count = np.zeros(nodes + 1, np.int64)
    for x in range(nodes):
        level[x] = np.nan
    for i in range(n):
        a = label[i]
        rep[i] = -1
        if a <= 0:
            continue
        p = _find(pool, a)
        rep[i] = p
        if stored[p] > 0.0 and not full[p] and z[i] < spill_z[p]:
            count[p + 1] += 1
    for x in range(nodes):
        if stored[x] > 0.0 and full[x]:
            level[x] = spill_z[x]
        count[x + 1] += count[x]
    buf = np.empty(count[nodes], np.float64)
    fillp = count[:nodes].copy()
    for i in range(n):
        p = rep[i]
        if p > 0 and stored[p] > 0.0 and not full[p] and z[i] < spill_z[p]:
            buf[fillp[p]] = z[i]
            fillp[p] += 1
    for x in range(nodes):
        s = count[x]
        e = count[x + 1]
        if e == s:
            continue
        seg = np.sort(buf[s:e])
        v = stored[x] / cell_area
        cum = 0.0
        m = e - s
        for k in range(m):
            cum += seg[k]
            h = (v + cum) / (k + 1)
            if k == m - 1 or h <= seg[k + 1]:
                level[x] = h
                break
    return rep


@njit(cache=True)
def depth_from_levels(z, rep, level, out):
    """Ponded depth of every cell: its pool's water level minus its elevation, where positive."""
    for i in range(z.size):
        p = rep[i]
        out[i] = 0.0
        if p > 0:
            h = level[p]
            if h == h and h > z[i]:
                out[i] = h - z[i]


# ---------------------------------------------------------------------------------- outputs
@njit(cache=True)
def flow_path_reaches(directions, cls, vert, offsets):
    """Split the D8 network of cells with ``cls >= 0`` into reaches for polylines.

    A reach starts at a head, a confluence or a change of class and runs downstream to (and
    including) the first cell that starts another reach, or to where the network ends.

    Parameters
    ----------
    directions : int8[rows, cols]
    cls : int8[rows, cols]
        Flow-path class of each cell, -1 outside the network.
    vert : int64[>= 2 * n] (out)
        Flat cell indices of the reaches' vertices, one reach after the other.
    offsets : int64[>= n + 1] (out)
        Reach k has vertices ``vert[offsets[k]:offsets[k + 1]]``.

    Returns
    -------
    int
        Number of reaches.
    """
    rows, cols = directions.shape
    n = rows * cols
    d = directions.ravel()
    cl = cls.ravel()
    up = np.zeros(n, np.int32)  # network cells flowing in
    upcls = np.full(n, -1, np.int8)
    down = np.full(n, -1, np.int64)
    for i in range(n):
        if cl[i] < 0 or d[i] < 0:
            continue
        r = i // cols
        c = i - r * cols
        j = (r + _DR[d[i]]) * cols + c + _DC[d[i]]
        if cl[j] >= 0:
            down[i] = j
            up[j] += 1
            upcls[j] = cl[i]
    nv = 0
    nr = 0
    offsets[0] = 0
    for i in range(n):
        if cl[i] < 0:
            continue
        start = up[i] != 1 or upcls[i] != cl[i]
        if not start:
            continue
        vert[nv] = i
        nv += 1
        j = down[i]
        while j >= 0:
            vert[nv] = j
            nv += 1
            if up[j] != 1 or upcls[j] != cl[j]:
                break
            j = down[j]
        nr += 1
        offsets[nr] = nv
    return nr


@njit(cache=True)
def building_outline_stats(building_id, depth, upstream_area, sink, nb, max_depth, max_area, sink_at_max):
    """Per building: max ``depth`` and max ``upstream_area`` over its outline (the non-building cells
    8-adjacent to its footprint), and the ``sink`` id of the outline cell with the deepest water.

    Outputs are indexed by building id (``nb`` entries); -inf / -1 where a building has no outline.
    """
    rows, cols = building_id.shape
    for b in range(nb):
        max_depth[b] = -np.inf
        max_area[b] = -np.inf
        sink_at_max[b] = -1
    for r in range(rows):
        for c in range(cols):
            b = building_id[r, c]
            if b < 0:
                continue
            for k in range(8):
                rr = r + _DR[k]
                cc = c + _DC[k]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    continue
                if building_id[rr, cc] >= 0:
                    continue
                dv = depth[rr, cc]
                if dv == dv and dv > max_depth[b]:
                    max_depth[b] = dv
                    sink_at_max[b] = sink[rr, cc]
                av = upstream_area[rr, cc]
                if av == av and av > max_area[b]:
                    max_area[b] = av
