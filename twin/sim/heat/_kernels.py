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
def _horizon_tan(z, i, j, z0, ux, uy, nsteps, cell_m, z_max):  # one ray; the row kernels below are the fast path
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


@njit(cache=True)
def _row_horizon(z, i, di, dj, nsteps_k, cell_m, z_max, reach, best, early_exit=True):
    """Horizon tangents of every cell of row ``i`` along one azimuth into ``best`` (the same scan as
    :func:`_horizon_tan`, reorganised: for a given step the sample offset ``(di[s], dj[s])`` is the
    same for every cell, so a step is one contiguous, vectorisable pass over the row)."""
    ny, nx = z.shape
    for j in range(nx):
        best[j] = 0.0
    for s in range(1, nsteps_k + 1):
        ii = i + di[s - 1]
        if ii < 0 or ii >= ny:
            break
        d = (s - 0.5) * cell_m
        if early_exit and (s & 15) == 1:  # exact early exit: no remaining cell can raise any horizon of the row
            alive = False
            for j in range(nx):
                if reach[j] > best[j] * d:
                    alive = True
                    break
            if not alive:
                break
        inv_d = 1.0 / d
        o = dj[s - 1]
        j0 = max(0, -o)
        j1 = min(nx, nx - o)
        for j in range(j0, j1):
            t = (z[ii, j + o] - z[i, j]) * inv_d
            best[j] = t if t > best[j] else best[j]  # NaN never wins


@njit(parallel=True, cache=True)
def sky_view_factor_kernel(z, veg_top, has_veg, cell_m, di, dj, nsteps, tau, kind, z_max, veg_max, out, early_exit=True):
    """SVF of every cell (mean over the azimuths of the visible sky), written into ``out``.

    Parameters
    ----------
    z : (ny, nx) float array
        Surface heights (terrain + buildings), m. NaN cells get NaN.
    veg_top : (ny, nx) float array
        Absolute canopy top, m (NaN without trees); ignored unless ``has_veg``.
    cell_m : float
        Cell size, m.
    di, dj : (K, nsteps) int64
        Row and column offsets of the nearest sample ``s`` steps along each azimuth
        (:func:`ray_offsets`).
    nsteps : (K,) int64
        Steps per azimuth (the search radius in cells).
    tau : float
        Canopy transmissivity of shortwave/sky (0 opaque, 1 transparent).
    kind : int
        :data:`SVF_COSINE` or :data:`SVF_SOLID_ANGLE`.
    z_max, veg_max : float
        Maxima of ``z`` and ``veg_top`` (early ray termination).
    out : (ny, nx) float32
        SVF 0..1.
    early_exit : bool
        Stop a row's rays once nothing can raise a horizon (exact); False scans every ray to its full
        length (scene-independent cost, for scaling studies).
    """
    ny, nx = z.shape
    nk = di.shape[0]
    for i in prange(ny):
        reach = np.empty(nx)
        reach_v = np.empty(nx)
        bb = np.empty(nx)
        bv = np.empty(nx)
        acc = np.zeros(nx)
        for j in range(nx):
            reach[j] = z_max - z[i, j] if z[i, j] == z[i, j] else -1.0
            reach_v[j] = veg_max - z[i, j] if z[i, j] == z[i, j] else -1.0
        for k in range(nk):
            _row_horizon(z, i, di[k], dj[k], nsteps[k], cell_m, z_max, reach, bb, early_exit)
            if has_veg:
                _row_horizon_from(veg_top, z, i, di[k], dj[k], nsteps[k], cell_m, reach_v, bv, early_exit)
            for j in range(nx):
                fb = _sky_term(bb[j], kind)
                if has_veg and bv[j] > bb[j]:
                    fv = _sky_term(bv[j], kind)
                    fb = fv + tau * (fb - fv)
                acc[j] += fb
        for j in range(nx):
            out[i, j] = acc[j] / nk if z[i, j] == z[i, j] else np.nan


@njit(cache=True)
def _row_horizon_from(top, z, i, di, dj, nsteps_k, cell_m, reach, best, early_exit=True):
    """Like :func:`_row_horizon` for a second surface ``top`` seen from the heights ``z``."""
    ny, nx = z.shape
    for j in range(nx):
        best[j] = 0.0
    for s in range(1, nsteps_k + 1):
        ii = i + di[s - 1]
        if ii < 0 or ii >= ny:
            break
        d = (s - 0.5) * cell_m
        if early_exit and (s & 15) == 1:
            alive = False
            for j in range(nx):
                if reach[j] > best[j] * d:
                    alive = True
                    break
            if not alive:
                break
        inv_d = 1.0 / d
        o = dj[s - 1]
        for j in range(max(0, -o), min(nx, nx - o)):
            t = (top[ii, j + o] - z[i, j]) * inv_d
            best[j] = t if t > best[j] else best[j]


@njit(parallel=True, cache=True)
def horizon_kernel(z, cell_m, di, dj, nsteps, z_max, out):
    """Horizon tangent cube ``out[k, i, j]`` (float32, >= 0; NaN where ``z`` is NaN)."""
    ny, nx = z.shape
    nk = di.shape[0]
    for i in prange(ny):
        reach = np.empty(nx)
        bb = np.empty(nx)
        for j in range(nx):
            reach[j] = z_max - z[i, j] if z[i, j] == z[i, j] else -1.0
        for k in range(nk):
            _row_horizon(z, i, di[k], dj[k], nsteps[k], cell_m, z_max, reach, bb)
            for j in range(nx):
                out[k, i, j] = bb[j] if z[i, j] == z[i, j] else np.nan


def ray_offsets(ux, uy, nsteps):
    """Nearest-cell offsets ``(di, dj)`` of steps 1..nsteps along each unit vector (east ``ux``, north ``uy``).

    Plain NumPy (called once per run by the driver): ``di = floor(-s uy + 1/2)``, ``dj = floor(s ux + 1/2)``.
    """
    s = np.arange(1, nsteps + 1, dtype=np.float64)
    di = np.floor(-s[None, :] * np.asarray(uy)[:, None] + 0.5).astype(np.int64)
    dj = np.floor(s[None, :] * np.asarray(ux)[:, None] + 0.5).astype(np.int64)
    return di, dj


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
