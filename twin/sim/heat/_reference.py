"""Plain-NumPy references of the heat kernels (tests and benchmarks; same conventions, no early exit).

For an integer cell ``(i, j)`` the nearest sample ``s`` steps along ``(ux, uy)`` is
``(i + floor(-s uy + 1/2), j + floor(s ux + 1/2))``: the offset is the same for every cell, so a
horizon scan is a running maximum over shifted copies of the whole raster.
"""

from __future__ import annotations

import math

import numpy as np


def _shifted(z: np.ndarray, di: int, dj: int) -> np.ndarray:
    """``out[i, j] = z[i + di, j + dj]`` (NaN outside)."""
    ny, nx = z.shape
    out = np.full_like(z, np.nan)
    i0, i1 = max(0, -di), min(ny, ny - di)
    j0, j1 = max(0, -dj), min(nx, nx - dj)
    if i0 < i1 and j0 < j1:
        out[i0:i1, j0:j1] = z[i0 + di:i1 + di, j0 + dj:j1 + dj]
    return out


def horizon_tan_numpy(z: np.ndarray, cell_m: float, ux: float, uy: float, nsteps: int) -> np.ndarray:
    """Horizon tangent (>= 0) of every cell along one azimuth; NaN where ``z`` is NaN."""
    z = np.asarray(z, np.float64)
    best = np.zeros_like(z)
    for s in range(1, nsteps + 1):
        d = (s - 0.5) * cell_m
        t = (_shifted(z, math.floor(-s * uy + 0.5), math.floor(s * ux + 0.5)) - z) / d
        np.fmax(best, t, out=best)
    best[np.isnan(z)] = np.nan
    return best


def sky_view_factor_numpy(z, *, cell_m: float, directions: int, radius_m: float, kind: str = "cosine") -> np.ndarray:
    """SVF without vegetation, plain NumPy."""
    nsteps = max(1, int(math.ceil(radius_m / cell_m)))
    acc = np.zeros(np.shape(z))
    for k in range(directions):
        a = math.radians(k * 360.0 / directions)
        t = horizon_tan_numpy(z, cell_m, math.sin(a), math.cos(a), nsteps)
        acc += 1.0 / (1.0 + t * t) if kind == "cosine" else 1.0 - t / np.sqrt(1.0 + t * t)
    return (acc / directions).astype(np.float32)


def sunlit_numpy(z, *, cell_m: float, sun_azimuth_deg: float, sun_elevation_deg: float) -> np.ndarray:
    """Sunlit (1) / shadow (0) without vegetation, plain NumPy (ray to the raster edge)."""
    z = np.asarray(z, np.float64)
    a = math.radians(sun_azimuth_deg)
    ux, uy = math.sin(a), math.cos(a)
    tan_e = math.tan(math.radians(sun_elevation_deg))
    blocked = np.zeros(z.shape, bool)
    ny, nx = z.shape
    for s in range(1, ny + nx):
        di, dj = math.floor(-s * uy + 0.5), math.floor(s * ux + 0.5)
        if abs(di) >= ny and abs(dj) >= nx or abs(di) >= ny or abs(dj) >= nx:
            break
        blocked |= (_shifted(z, di, dj) - z) > tan_e * (s - 0.5) * cell_m
    out = np.where(blocked, 0.0, 1.0).astype(np.float32)
    out[np.isnan(z)] = np.nan
    return out
