"""Numba kernels of twin.grid: burn triangles into a raster by cell centres.

Pure functions on arrays that write into ``out`` arrays; they import only numpy, numba and math.
Vertices are given in *pixel space*: ``u = (x - west) / res`` (columns), ``v = (north - y) / res``
(rows), so the centre of cell ``(r, c)`` is ``(c + 0.5, r + 0.5)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["burn_triangles", "idw_points"]


@njit(cache=True, inline="always")
def _orient(au, av, bu, bv, pu, pv):
    return (bu - au) * (pv - av) - (bv - av) * (pu - au)


@njit(cache=True, inline="always")
def _owns_edge(au, av, bu, bv):
    # Tie rule for a centre exactly on an edge: of the two triangles that share an edge (and
    # traverse it in opposite directions once both are made positively oriented) exactly one
    # owns it, so a union of triangles covers each centre once, with no gap or double count.
    dv = bv - av
    return dv > 0.0 or (dv == 0.0 and bu - au > 0.0)


@njit(cache=True)
def burn_triangles(tri_uv, tri_z, tri_value, use_z, out_value, out_z):
    """Write each triangle's value into the cells whose centres lie inside it.

    Parameters
    ----------
    tri_uv : float64 array, shape (m, 3, 2)
        Triangle vertices in pixel space (see module docstring).
    tri_z : float64 array, shape (m, 3)
        Vertex heights in metres (used when ``use_z``).
    tri_value : int32 array, shape (m,)
        Value to burn per triangle (e.g. a building id).
    use_z : bool
        If True, a cell takes the value of the triangle with the highest interpolated height at its
        centre and that height goes into ``out_z`` (a z-buffer keeping the maximum); if False the
        last triangle wins and ``out_z`` is not touched.
    out_value : int32 array, shape (rows, cols)
        Burned values; cells no triangle covers keep their content.
    out_z : float64 array, shape (rows, cols)
        Maximum height per cell (initialise with -inf).
    """
    rows, cols = out_value.shape
    for t in range(tri_uv.shape[0]):
        au, av = tri_uv[t, 0, 0], tri_uv[t, 0, 1]
        bu, bv = tri_uv[t, 1, 0], tri_uv[t, 1, 1]
        cu, cv = tri_uv[t, 2, 0], tri_uv[t, 2, 1]
        za, zb, zc = tri_z[t, 0], tri_z[t, 1], tri_z[t, 2]
        area = _orient(au, av, bu, bv, cu, cv)
        if area == 0.0 or math.isnan(area):
            continue  # vertical wall or degenerate: covers no cell centre
        if area < 0.0:  # make positively oriented
            bu, bv, cu, cv = cu, cv, bu, bv
            zb, zc = zc, zb
            area = -area
        own_ab = _owns_edge(au, av, bu, bv)
        own_bc = _owns_edge(bu, bv, cu, cv)
        own_ca = _owns_edge(cu, cv, au, av)
        c0 = max(int(math.floor(min(au, min(bu, cu)) - 0.5)), 0)
        c1 = min(int(math.ceil(max(au, max(bu, cu)) - 0.5)), cols - 1)
        r0 = max(int(math.floor(min(av, min(bv, cv)) - 0.5)), 0)
        r1 = min(int(math.ceil(max(av, max(bv, cv)) - 0.5)), rows - 1)
        value = tri_value[t]
        for r in range(r0, r1 + 1):
            pv = r + 0.5
            for c in range(c0, c1 + 1):
                pu = c + 0.5
                w_a = _orient(bu, bv, cu, cv, pu, pv)  # weight of vertex a
                if w_a < 0.0 or (w_a == 0.0 and not own_bc):
                    continue
                w_b = _orient(cu, cv, au, av, pu, pv)
                if w_b < 0.0 or (w_b == 0.0 and not own_ca):
                    continue
                w_c = _orient(au, av, bu, bv, pu, pv)
                if w_c < 0.0 or (w_c == 0.0 and not own_ab):
                    continue
                if use_z:
                    z = (w_a * za + w_b * zb + w_c * zc) / area
                    if z > out_z[r, c]:
                        out_z[r, c] = z
                        out_value[r, c] = value
                else:
                    out_value[r, c] = value


@njit(cache=True)
def idw_points(px, py, pz, gx, gy, power, out):
    """Inverse-distance-weighted heights at points ``(gx, gy)`` from samples ``(px, py, pz)``.

    Parameters
    ----------
    px, py, pz : float64 arrays, shape (n,)
        Sample positions and heights (metres).
    gx, gy : float64 arrays, shape (k,)
        Where to interpolate.
    power : float
        Distance exponent (2 is the usual Shepard choice).
    out : float64 array, shape (k,)
        Interpolated heights; a query on a sample takes that sample's height.
    """
    for i in range(gx.shape[0]):
        num = 0.0
        den = 0.0
        hit = -1
        for j in range(px.shape[0]):
            d2 = (gx[i] - px[j]) ** 2 + (gy[i] - py[j]) ** 2
            if d2 == 0.0:
                hit = j
                break
            w = 1.0 / d2 ** (power / 2.0)
            num += w * pz[j]
            den += w
        out[i] = pz[hit] if hit >= 0 else (num / den if den > 0.0 else np.nan)
