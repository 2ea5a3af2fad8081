"""Radiation geometry on a DSM: horizon angles, sky view factor, sunlit/shadow masks, shade hours.

Drivers around :mod:`twin.sim.heat._kernels` (validate, cast, compile lazily on first call).
Conventions (also written into every output's attributes by :mod:`twin.sim.heat.model`):

- azimuth clockwise from north, ``K`` directions at ``phi_k = k * 360 / K`` degrees;
- the DSM holds absolute heights (terrain + buildings, m), row 0 north; trees come separately as an
  absolute canopy top with a transmissivity (UMEP: 0.03 leaf-on, 0.5 leaf-off);
- SVF ``"cosine"`` (default, radiative; UMEP's ``1 - mean(sin^2 gamma)``) or ``"solid_angle"``
  (visual; Zakšek et al. 2011, ``1 - mean(sin gamma)``);
- the horizon uses the wall-face distance convention described in ``_kernels``.
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import TwinValueError

__all__ = ["SVF_KINDS", "sky_view_factor", "horizon_angles", "sunlit_fraction", "direction_vectors"]

SVF_KINDS = {"cosine": 0, "solid_angle": 1}
#: default canopy transmissivity of shortwave radiation, leaf-on (UMEP/SOLWEIG, Konarska et al. 2014)
DEFAULT_TRANSMISSIVITY = 0.03


def direction_vectors(directions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azimuths (deg, clockwise from north) and their unit vectors (east, north)."""
    if int(directions) < 4:
        raise TwinValueError(f"directions={directions} is too few for a sky view factor; use 8 or more (32 is typical)")
    az = np.arange(int(directions)) * (360.0 / int(directions))
    rad = np.radians(az)
    return az, np.ascontiguousarray(np.sin(rad)), np.ascontiguousarray(np.cos(rad))


def _surface(dsm, name="dsm") -> np.ndarray:
    z = np.asarray(dsm)
    if z.ndim != 2 or z.size == 0:
        raise TwinValueError(f"{name} must be a non-empty 2-D array, got shape {z.shape}")
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float32)
    return np.ascontiguousarray(z)


def _veg(veg_top, z):
    if veg_top is None:
        return np.zeros((1, 1), z.dtype), False, -np.inf
    v = _surface(veg_top, "veg_top").astype(z.dtype, copy=False)
    if v.shape != z.shape:
        raise TwinValueError(f"veg_top has shape {v.shape}, the DSM {z.shape}; resample the canopy to the DSM grid")
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros((1, 1), z.dtype), False, -np.inf
    return v, True, float(v[finite].max())


def _zmax(z) -> float:
    finite = np.isfinite(z)
    if not finite.any():
        raise TwinValueError("the DSM has no finite height; check its nodata value")
    return float(z[finite].max())


def _offsets(ux, uy, radius_m, cell_m):
    from twin.sim.heat._kernels import ray_offsets

    if not (radius_m > 0):
        raise TwinValueError(f"radius_m={radius_m} must be > 0 (typically 100-500 m)")
    nsteps = max(1, int(math.ceil(radius_m / cell_m)))
    di, dj = ray_offsets(ux, uy, nsteps)
    return di, dj, np.full(len(ux), nsteps, np.int64)


def sky_view_factor(dsm, *, cell_m: float, directions: int = 32, radius_m: float = 200.0, kind: str = "cosine",
                    veg_top=None, transmissivity: float = DEFAULT_TRANSMISSIVITY, early_exit: bool = True) -> np.ndarray:
    """Sky view factor of every cell of a DSM.

    Parameters
    ----------
    dsm : (ny, nx) array
        Absolute surface heights (terrain + buildings), m; NaN = nodata (gets NaN).
    cell_m : float
        Cell size, m.
    directions : int
        Number of azimuths (32 keeps the azimuthal discretisation error of a canyon below 0.01).
    radius_m : float
        Search radius, m (obstacles further away are ignored; pad the DSM by this much).
    kind : {"cosine", "solid_angle"}
        Cosine-weighted (radiative, UMEP) or solid-angle (visual) SVF.
    veg_top : (ny, nx) array, optional
        Absolute tree canopy top, m (NaN where no tree).
    transmissivity : float
        Canopy transmissivity (0..1).
    early_exit : bool
        Stop rays once nothing can raise the horizon (exact, default); False scans every ray to
        ``radius_m`` (same result, scene-independent cost: for scaling studies).

    Returns
    -------
    ndarray float32 (ny, nx), 0..1.

    References
    ----------
    Dozier & Frew (1990) IEEE TGRS 28:963; Lindberg & Grimmond (2011) Theor Appl Climatol 105:311;
    Zakšek, Oštir & Kokalj (2011) Remote Sens. 3:398.
    """
    from twin.sim.heat import _kernels

    if kind not in SVF_KINDS:
        raise TwinValueError(f"kind={kind!r} is not an SVF definition; use one of {sorted(SVF_KINDS)}")
    if not (cell_m > 0):
        raise TwinValueError(f"cell_m={cell_m} must be > 0")
    if not (0.0 <= transmissivity <= 1.0):
        raise TwinValueError(f"transmissivity={transmissivity} must lie in 0..1")
    z = _surface(dsm)
    _, ux, uy = direction_vectors(directions)
    v, has_veg, vmax = _veg(veg_top, z)
    di, dj, nst = _offsets(ux, uy, radius_m, cell_m)
    out = np.empty(z.shape, np.float32)
    _kernels.sky_view_factor_kernel(z, v, has_veg, float(cell_m), di, dj, nst, float(transmissivity),
                                    SVF_KINDS[kind], _zmax(z), vmax, out, bool(early_exit))
    return out


def horizon_angles(dsm, *, cell_m: float, directions: int = 32, radius_m: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    """Horizon elevation angles (deg, float32 cube ``(K, ny, nx)``) and their azimuths (deg)."""
    from twin.sim.heat import _kernels

    z = _surface(dsm)
    az, ux, uy = direction_vectors(directions)
    out = np.empty((len(az),) + z.shape, np.float32)
    di, dj, nst = _offsets(ux, uy, radius_m, cell_m)
    _kernels.horizon_kernel(z, float(cell_m), di, dj, nst, _zmax(z), out)
    np.degrees(np.arctan(out, out=out), out=out)
    return az, out


def sunlit_fraction(dsm, *, cell_m: float, sun_azimuth_deg: float, sun_elevation_deg: float, veg_top=None,
                    transmissivity: float = DEFAULT_TRANSMISSIVITY) -> np.ndarray:
    """Sunlit fraction of every cell for one sun position (float32; 1 sun, 0 shadow, ``tau`` under trees).

    A ray from each cell centre toward the sun is marched until it leaves the raster or rises above the
    highest surface (cost O(cells * (z_max - z) / (cell * tan(elevation))), the shifted-DSM idea of
    Ratti & Richens 1999 per cell). The sun below the horizon gives 0 everywhere.
    """
    from twin.sim.heat import _kernels

    z = _surface(dsm)
    if not (cell_m > 0):
        raise TwinValueError(f"cell_m={cell_m} must be > 0")
    out = np.empty(z.shape, np.float32)
    if not (sun_elevation_deg > 0):
        out[:] = 0.0
        out[~np.isfinite(z)] = np.nan
        return out
    v, has_veg, vmax = _veg(veg_top, z)
    rad = math.radians(sun_azimuth_deg)
    tan_elev = math.tan(math.radians(min(sun_elevation_deg, 89.999)))
    _kernels.sunlit_kernel(z, v, has_veg, float(cell_m), math.sin(rad), math.cos(rad), tan_elev,
                           float(transmissivity), _zmax(z), vmax, out)
    return out


def disc_mean(values, *, radius_cells: float) -> np.ndarray:
    """Mean of the finite values within a disc of ``radius_cells`` around every cell (NaN skipped)."""
    from twin.sim.heat import _kernels

    a = np.ascontiguousarray(np.asarray(values, np.float64))
    out = np.empty(a.shape, np.float64)
    _kernels.disc_mean_kernel(a, float(radius_cells), out)
    return out
