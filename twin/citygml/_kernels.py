"""Numba kernels for CityGML geometry: planar-polygon triangulation in batches.

Pure functions on arrays; they import only numpy, numba and math, allocate nothing inside their
loops beyond small per-polygon scratch, and write into ``out`` arrays.

Scheme: each ring is projected onto the coordinate plane that drops the dominant axis of its
Newell normal (Newell 1972, via Sutherland, Sproull & Schumacker, "A characterization of ten
hidden-surface algorithms", 1974), with the projection's handedness chosen so the ring is
counter-clockwise in 2D. It is then ear-clipped (Meisters 1975, "Polygons have ears"), O(n^2)
per ring, which is cheap for the 4-20 vertex polygons of city models. Triangles are emitted in
ring order, so their right-hand normals agree with the ring's Newell normal (CityGML's outward
orientation); ``flip`` reverses them (OrientableSurface orientation="-").
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["triangulate_rings", "newell_normals"]


@njit(cache=True, nogil=True)
def _newell(coords, start, n):
    nx = 0.0
    ny = 0.0
    nz = 0.0
    for i in range(n):
        a = start + i
        b = start + (i + 1) % n
        xa, ya, za = coords[a, 0], coords[a, 1], coords[a, 2]
        xb, yb, zb = coords[b, 0], coords[b, 1], coords[b, 2]
        nx += (ya - yb) * (za + zb)
        ny += (za - zb) * (xa + xb)
        nz += (xa - xb) * (ya + yb)
    return nx, ny, nz


@njit(cache=True, nogil=True)
def newell_normals(coords, ring_start, ring_count, out):
    """Newell normal (not normalised; length = 2 x area) of each ring into ``out`` (n_rings, 3)."""
    for r in range(ring_start.shape[0]):
        nx, ny, nz = _newell(coords, ring_start[r], ring_count[r])
        out[r, 0] = nx
        out[r, 1] = ny
        out[r, 2] = nz


@njit(cache=True, nogil=True)
def _cross2(ax, ay, bx, by, cx, cy):
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True, nogil=True)
def _point_in_tri(px, py, ax, ay, bx, by, cx, cy):
    # inclusive of edges, for a counter-clockwise triangle
    return (_cross2(ax, ay, bx, by, px, py) >= 0.0 and _cross2(bx, by, cx, cy, px, py) >= 0.0
            and _cross2(cx, cy, ax, ay, px, py) >= 0.0)


@njit(cache=True, nogil=True)
def _emit(out_tris, out_ring, nt, r, ia, ib, ic, rev):
    """Write triangle ``nt`` (a, b, c), reversed when ``rev``."""
    if rev:
        out_tris[nt, 0] = ic
        out_tris[nt, 1] = ib
        out_tris[nt, 2] = ia
    else:
        out_tris[nt, 0] = ia
        out_tris[nt, 1] = ib
        out_tris[nt, 2] = ic
    out_ring[nt] = r


@njit(cache=True, nogil=True)
def triangulate_rings(coords, ring_start, ring_count, flip, out_tris, out_ring, min_area):
    """Triangulate simple rings (no holes) into ``out_tris``.

    Parameters
    ----------
    coords : float64 (n_vertices, 3)
        Ring vertices, each ring contiguous, closing vertex already dropped.
    ring_start, ring_count : int64 (n_rings,)
        Offset and number of vertices of each ring in ``coords``.
    flip : bool (n_rings,)
        Reverse the orientation of a ring's triangles.
    out_tris : int64 (>= sum(max(count-2, 0)), 3)
        Vertex indices into ``coords``.
    out_ring : int64 (same length)
        Ring of each triangle.
    min_area : float
        Rings whose Newell area (m^2) is below this are degenerate and produce no triangle.

    Returns
    -------
    n_tris : int
        Number of triangles written.
    status : int8 (n_rings,)
        0 ok, 1 degenerate (too few distinct points or zero area), 2 ear clipping stalled and the
        remainder was fanned (self-intersecting or strongly non-planar input).
    """
    n_rings = ring_start.shape[0]
    status = np.zeros(n_rings, np.int8)
    maxn = 0
    for r in range(n_rings):
        if ring_count[r] > maxn:
            maxn = ring_count[r]
    idx = np.empty(maxn, np.int64)
    px = np.empty(maxn, np.float64)
    py = np.empty(maxn, np.float64)
    nt = 0
    for r in range(n_rings):
        s = ring_start[r]
        n0 = ring_count[r]
        # distinct consecutive vertices
        m = 0
        for i in range(n0):
            v = s + i
            if m > 0:
                u = idx[m - 1]
                if coords[u, 0] == coords[v, 0] and coords[u, 1] == coords[v, 1] and coords[u, 2] == coords[v, 2]:
                    continue
            idx[m] = v
            m += 1
        while m > 1:
            u = idx[m - 1]
            v = idx[0]
            if coords[u, 0] == coords[v, 0] and coords[u, 1] == coords[v, 1] and coords[u, 2] == coords[v, 2]:
                m -= 1
            else:
                break
        if m < 3:
            status[r] = 1
            continue
        nx = 0.0
        ny = 0.0
        nz = 0.0
        for i in range(m):
            a = idx[i]
            b = idx[(i + 1) % m]
            nx += (coords[a, 1] - coords[b, 1]) * (coords[a, 2] + coords[b, 2])
            ny += (coords[a, 2] - coords[b, 2]) * (coords[a, 0] + coords[b, 0])
            nz += (coords[a, 0] - coords[b, 0]) * (coords[a, 1] + coords[b, 1])
        ax, ay, az = abs(nx), abs(ny), abs(nz)
        if 0.5 * np.sqrt(nx * nx + ny * ny + nz * nz) <= min_area:
            status[r] = 1
            continue
        # project: drop the dominant axis; keep the ring counter-clockwise in 2D
        if az >= ax and az >= ay:
            i0, i1, sgn = 0, 1, nz
        elif ax >= ay:
            i0, i1, sgn = 1, 2, nx
        else:
            i0, i1, sgn = 2, 0, ny
        for i in range(m):
            px[i] = coords[idx[i], i0]
            py[i] = coords[idx[i], i1] if sgn > 0 else -coords[idx[i], i1]
        # local index list (positions into px/py and idx)
        loc = np.empty(m, np.int64)
        for i in range(m):
            loc[i] = i
        k = m
        # a triangle counter-clockwise in the (possibly mirrored) projection has the ring's own
        # orientation in 3D, so only an explicit flip reverses it
        rev = flip[r]
        stalled = 0
        i = 0
        while k > 3:
            found = False
            for t in range(k):
                a = loc[(i + t) % k]
                b = loc[(i + t + 1) % k]
                c = loc[(i + t + 2) % k]
                cr = _cross2(px[a], py[a], px[b], py[b], px[c], py[c])
                if cr <= 0.0:
                    continue
                inside = False
                for q in range(k):
                    p = loc[q]
                    if p == a or p == b or p == c:
                        continue
                    if (px[p] == px[a] and py[p] == py[a]) or (px[p] == px[b] and py[p] == py[b]) \
                            or (px[p] == px[c] and py[p] == py[c]):
                        continue
                    if _point_in_tri(px[p], py[p], px[a], py[a], px[b], py[b], px[c], py[c]):
                        inside = True
                        break
                if inside:
                    continue
                # clip ear at b
                _emit(out_tris, out_ring, nt, r, idx[a], idx[b], idx[c], rev)
                nt += 1
                pos = (i + t + 1) % k
                for q in range(pos, k - 1):
                    loc[q] = loc[q + 1]
                k -= 1
                i = pos % k if pos < k else 0
                found = True
                break
            if not found:
                # no strictly convex ear: drop a collinear (zero-area) vertex if there is one,
                # else the input self-intersects; fan the rest so nothing is lost
                dropped = False
                for t in range(k):
                    a = loc[t % k]
                    b = loc[(t + 1) % k]
                    c = loc[(t + 2) % k]
                    if _cross2(px[a], py[a], px[b], py[b], px[c], py[c]) == 0.0:
                        pos = (t + 1) % k
                        for q in range(pos, k - 1):
                            loc[q] = loc[q + 1]
                        k -= 1
                        dropped = True
                        break
                if not dropped:
                    stalled = 1
                    for t in range(1, k - 1):
                        a = loc[0]
                        b = loc[t]
                        c = loc[t + 1]
                        _emit(out_tris, out_ring, nt, r, idx[a], idx[b], idx[c], rev)
                        nt += 1
                    k = 0
                    break
        if k == 3:
            a = loc[0]
            b = loc[1]
            c = loc[2]
            last = _cross2(px[a], py[a], px[b], py[b], px[c], py[c])
            if last < 0.0:
                stalled = 1   # the last triangle is inverted: the ring crosses itself
            if last != 0.0:
                _emit(out_tris, out_ring, nt, r, idx[a], idx[b], idx[c], rev)
                nt += 1
        status[r] = 2 if stalled else 0
    return nt, status
