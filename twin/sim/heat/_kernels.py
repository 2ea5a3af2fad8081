"""Numba kernels of the urban-heat model (private; imports numpy, numba and math only).

Raster layout: ``(ny, nx)`` C-contiguous float32/float64 arrays, row 0 = north, column 0 = west,
square cells of ``cell_m`` metres. Heights are absolute (terrain + buildings) in metres; NaN = nodata.

Horizon scan (Dozier & Frew 1990; Zakšek et al. 2011): along each azimuth ``phi`` (clockwise from
north) a ray leaves the cell centre in steps of one cell length; each step samples the nearest cell.
The horizon of that azimuth is ``max((z(sample) - z0) / d)`` (a tangent) over the ray.

Distance convention ("wall face"): a sample ``s`` steps away is taken at ``d = (s - 1/2) * cell_m``,
the distance to the near face of the sampled cell along an axis. Heights are thus treated as
prisms filling their cells (as a DSM rasterised from building footprints is), not as points at the
cell centres; with the centre convention an infinite canyon 20 cells wide would look half a cell
wider on each side. Rays stop at the raster edge (pad the DSM by the search radius) and as soon as
no remaining cell could raise the horizon (``(z_max - z0) / d <= best``; ``z_max`` the raster
maximum), which is exact and makes open ground the only expensive case.

Vegetation: a second surface ``veg_top`` (absolute canopy top, NaN without trees) is scanned the
same way; sky seen between the building/terrain horizon and the canopy horizon passes with the
canopy transmissivity ``tau`` (UMEP's ``svfbuveg = svf - (1 - svfveg) (1 - tau)`` per direction).

SVF per direction with horizon elevation ``gamma``:
- cosine-weighted (radiative, UMEP/Oke/Dozier & Frew): ``cos^2 gamma = 1 / (1 + t^2)``, ``t = tan gamma``;
- solid-angle (visual, Zakšek et al. 2011): ``1 - sin gamma = 1 - t / sqrt(1 + t^2)``.
SVF is the mean over the azimuths.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: SVF definitions (argument ``kind`` of the kernels)
SVF_COSINE, SVF_SOLID_ANGLE = 0, 1


@njit(inline="always", cache=True)
def _horizon_tan(z, i, j, z0, ux, uy, nsteps, cell_m, z_max):
    """Tangent of the horizon elevation (>= 0) from cell ``(i, j)`` at height ``z0`` along (ux east, uy north)."""
    ny, nx = z.shape
    best = 0.0
    reach = z_max - z0
    if not (reach > 0.0):
        return 0.0
    for s in range(1, nsteps + 1):
        d = (s - 0.5) * cell_m
        if reach <= best * d:
            break
        ii = int(math.floor(i - s * uy + 0.5))
        jj = int(math.floor(j + s * ux + 0.5))
        if ii < 0 or ii >= ny or jj < 0 or jj >= nx:
            break
        t = (z[ii, jj] - z0) / d
        if t > best:  # NaN compares False: nodata never obstructs
            best = t
    return best


@njit(inline="always", cache=True)
def _sky_term(t, kind):
    """Visible sky of one azimuth for horizon tangent ``t`` (cosine-weighted or solid-angle)."""
    if kind == SVF_COSINE:
        return 1.0 / (1.0 + t * t)
    return 1.0 - t / math.sqrt(1.0 + t * t)


@njit(parallel=True, cache=True)
def sky_view_factor_kernel(z, veg_top, has_veg, cell_m, ux, uy, nsteps, tau, kind, z_max, veg_max, out):
    """SVF of every cell (mean over the azimuths of the visible sky), written into ``out``.

    Parameters
    ----------
    z : (ny, nx) float array
        Surface heights (terrain + buildings), m. NaN cells get NaN.
    veg_top : (ny, nx) float array
        Absolute canopy top, m (NaN without trees); ignored unless ``has_veg``.
    cell_m : float
        Cell size, m.
    ux, uy : (K,) float64
        Unit vectors of the azimuths (east, north components).
    nsteps : int
        Search radius in cells.
    tau : float
        Canopy transmissivity of shortwave/sky (0 opaque, 1 transparent).
    kind : int
        :data:`SVF_COSINE` or :data:`SVF_SOLID_ANGLE`.
    z_max, veg_max : float
        Maxima of ``z`` and ``veg_top`` (early ray termination).
    out : (ny, nx) float32
        SVF 0..1.
    """
    ny, nx = z.shape
    nk = ux.shape[0]
    for i in prange(ny):
        for j in range(nx):
            z0 = z[i, j]
            if not (z0 == z0):
                out[i, j] = np.nan
                continue
            acc = 0.0
            for k in range(nk):
                tb = _horizon_tan(z, i, j, z0, ux[k], uy[k], nsteps, cell_m, z_max)
                fb = _sky_term(tb, kind)
                if has_veg:
                    tv = _horizon_tan(veg_top, i, j, z0, ux[k], uy[k], nsteps, cell_m, veg_max)
                    if tv > tb:
                        fv = _sky_term(tv, kind)
                        fb = fv + tau * (fb - fv)
                acc += fb
            out[i, j] = acc / nk


@njit(parallel=True, cache=True)
def horizon_kernel(z, cell_m, ux, uy, nsteps, z_max, out):
    """Horizon tangent cube ``out[k, i, j]`` (float32, >= 0; NaN where ``z`` is NaN)."""
    ny, nx = z.shape
    nk = ux.shape[0]
    for i in prange(ny):
        for j in range(nx):
            z0 = z[i, j]
            for k in range(nk):
                if not (z0 == z0):
                    out[k, i, j] = np.nan
                else:
                    out[k, i, j] = _horizon_tan(z, i, j, z0, ux[k], uy[k], nsteps, cell_m, z_max)


@njit(inline="always", cache=True)
def _blocked(z, i, j, z0, ux, uy, tan_elev, cell_m, z_max):
    """True when a cell of ``z`` rises above the sun ray from ``(i, j)`` (ray toward the sun)."""
    ny, nx = z.shape
    reach = z_max - z0
    s = 1
    while True:
        d = (s - 0.5) * cell_m
        if reach <= tan_elev * d:
            return False
        ii = int(math.floor(i - s * uy + 0.5))
        jj = int(math.floor(j + s * ux + 0.5))
        if ii < 0 or ii >= ny or jj < 0 or jj >= nx:
            return False
        if z[ii, jj] - z0 > tan_elev * d:
            return True
        s += 1


@njit(parallel=True, cache=True)
def sunlit_kernel(z, veg_top, has_veg, cell_m, ux, uy, tan_elev, tau, z_max, veg_max, out):
    """Sunlit fraction of every cell for one sun position, written into ``out``.

    1 = sunlit, 0 = shadow of buildings/terrain, ``tau`` = under or behind tree canopy only.
    ``(ux, uy)`` is the unit vector toward the sun's azimuth (east, north), ``tan_elev`` the tangent
    of its elevation (> 0). NaN cells get NaN.
    """
    ny, nx = z.shape
    for i in prange(ny):
        for j in range(nx):
            z0 = z[i, j]
            if not (z0 == z0):
                out[i, j] = np.nan
                continue
            if _blocked(z, i, j, z0, ux, uy, tan_elev, cell_m, z_max):
                out[i, j] = 0.0
            elif has_veg:
                vt = veg_top[i, j]
                if (vt == vt and vt > z0) or _blocked(veg_top, i, j, z0, ux, uy, tan_elev, cell_m, veg_max):
                    out[i, j] = tau
                else:
                    out[i, j] = 1.0
            else:
                out[i, j] = 1.0


@njit(parallel=True, cache=True)
def disc_mean_kernel(values, radius_cells, out):
    """Mean of the finite ``values`` whose cell centres lie within ``radius_cells`` (a disc buffer).

    Row-wise prefix sums per row of the disc: O(ny * nx * radius). NaN cells are skipped; a cell with
    no finite neighbour gets NaN.
    """
    ny, nx = values.shape
    r = radius_cells
    csum = np.zeros((ny, nx + 1))
    ccnt = np.zeros((ny, nx + 1))
    for i in prange(ny):
        for j in range(nx):
            v = values[i, j]
            ok = v == v
            csum[i, j + 1] = csum[i, j] + (v if ok else 0.0)
            ccnt[i, j + 1] = ccnt[i, j] + (1.0 if ok else 0.0)
    rr = int(math.floor(r))
    for i in prange(ny):
        for j in range(nx):
            s = 0.0
            c = 0.0
            for di in range(-rr, rr + 1):
                ii = i + di
                if ii < 0 or ii >= ny:
                    continue
                half = int(math.floor(math.sqrt(max(r * r - di * di, 0.0))))
                j0 = max(j - half, 0)
                j1 = min(j + half + 1, nx)
                s += csum[ii, j1] - csum[ii, j0]
                c += ccnt[ii, j1] - ccnt[ii, j0]
            out[i, j] = s / c if c > 0 else np.nan
