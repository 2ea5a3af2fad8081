"""Sky view factor and sun shadows by raster tiles with halos on Dask (``dask.array.map_overlap``).

Each tile is computed with the untiled kernels of :mod:`twin.sim.heat.geometry` on the tile plus a
halo, then trimmed to the tile:

- SVF: halo = ``ceil(radius_m / cell_m)`` cells, the horizon search radius: every ray of a core cell
  stays inside its window, and the kernel's early exit at the window's own maximum is exact (no
  cell beyond it can raise a horizon), so the result equals the untiled one away from nothing at all
  (the outer border is the domain's own on both).
- Sunlit fraction: halo = ``ceil((z_max - z_min) / (cell_m * tan(elevation)))`` cells, the longest
  shadow any cell can cast.

Results are dask arrays; :func:`write_zarr` stores them chunk by chunk.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twin.errors import TwinValueError

__all__ = ["tiled_sky_view_factor", "tiled_sunlit_fraction", "svf_halo_cells", "as_dask"]


def as_dask(raster, *, tile: int = 1024):
    """A 2-D dask array of a numpy/zarr array, a :class:`twin.terrain.windows.RasterMosaic` or a dask array
    (rechunked to ``tile``), float32."""
    import dask.array as da

    shape = tuple(getattr(raster, "shape", np.shape(raster)))
    if len(shape) != 2 or min(shape) < 1:
        raise TwinValueError(f"the DSM must be a non-empty 2-D raster, got shape {shape}")
    if int(tile) < 1:
        raise TwinValueError(f"tile={tile} must be >= 1 cell")
    arr = raster if isinstance(raster, da.Array) else da.from_array(raster, chunks=(tile, tile), lock=False,
                                                                     asarray=True)
    return arr.astype(np.float32).rechunk((tile, tile))


def svf_halo_cells(*, cell_m: float, radius_m: float) -> int:
    """Halo (cells) that holds every horizon ray of a tile's cells: ``ceil(radius_m / cell_m)``."""
    if not (cell_m > 0 and radius_m > 0):
        raise TwinValueError(f"cell_m ({cell_m}) and radius_m ({radius_m}) must be > 0")
    return max(1, int(math.ceil(radius_m / cell_m)))


def _svf_block(z, *, cell_m, directions, radius_m, kind):
    from twin.sim.heat.geometry import sky_view_factor

    if not np.isfinite(z).any():
        return np.full(z.shape, np.nan, np.float32)
    return sky_view_factor(z, cell_m=cell_m, directions=directions, radius_m=radius_m, kind=kind)


def tiled_sky_view_factor(dsm, *, cell_m: float, directions: int = 32, radius_m: float = 200.0,
                          kind: str = "cosine", tile: int = 1024) -> Any:
    """Sky view factor by tiles (lazy dask array, float32); equals
    :func:`twin.sim.heat.geometry.sky_view_factor` on the whole DSM.

    Parameters
    ----------
    dsm : array-like or dask array, (ny, nx)
        Absolute surface heights (m), NaN nodata.
    cell_m, directions, radius_m, kind
        As :func:`~twin.sim.heat.geometry.sky_view_factor`.
    tile : int
        Tile side in cells (when ``dsm`` is not already a dask array, else its chunks are rechunked).
    """
    import dask.array as da

    from twin.sim.heat.geometry import SVF_KINDS, direction_vectors

    if kind not in SVF_KINDS:
        raise TwinValueError(f"kind={kind!r} is not an SVF definition; use one of {sorted(SVF_KINDS)}")
    direction_vectors(directions)  # validates
    arr = as_dask(dsm, tile=tile)
    halo = svf_halo_cells(cell_m=cell_m, radius_m=radius_m)
    return da.map_overlap(_svf_block, arr, depth=halo, boundary="none", trim=True, dtype=np.float32,
                          cell_m=float(cell_m), directions=int(directions), radius_m=float(radius_m), kind=kind)


def _sun_block(z, *, cell_m, azimuth, elevation):
    from twin.sim.heat.geometry import sunlit_fraction

    if not np.isfinite(z).any():
        return np.full(z.shape, np.nan, np.float32)
    return sunlit_fraction(z, cell_m=cell_m, sun_azimuth_deg=azimuth, sun_elevation_deg=elevation)


def tiled_sunlit_fraction(dsm, *, cell_m: float, sun_azimuth_deg: float, sun_elevation_deg: float,
                          tile: int = 1024, client=None) -> Any:
    """Sunlit fraction for one sun position by tiles (lazy dask array, float32); equals
    :func:`twin.sim.heat.geometry.sunlit_fraction` on the whole DSM.

    The halo is the longest shadow: ``(z_max - z_min) / tan(elevation)``, from the DSM's range
    (computed first, on ``client`` when given).
    """
    import dask.array as da

    from twin.cluster import compute

    if not (cell_m > 0):
        raise TwinValueError(f"cell_m={cell_m} must be > 0")
    arr = as_dask(dsm, tile=tile)
    if not (sun_elevation_deg > 0):
        return da.where(da.isfinite(arr), np.float32(0.0), np.float32(np.nan))
    zmax, zmin = compute(da.nanmax(arr), da.nanmin(arr), client=client)
    if not np.isfinite(zmax):
        raise TwinValueError("the DSM has no finite height; check its nodata value")
    tan_e = math.tan(math.radians(min(sun_elevation_deg, 89.999)))
    halo = max(1, int(math.ceil((float(zmax) - float(zmin)) / (cell_m * tan_e))) + 1)
    halo = min(halo, max(arr.shape))
    depth = {0: min(halo, arr.shape[0]), 1: min(halo, arr.shape[1])}
    return da.map_overlap(_sun_block, arr, depth=depth, boundary="none", trim=True, dtype=np.float32,
                          allow_rechunk=True, cell_m=float(cell_m), azimuth=float(sun_azimuth_deg),
                          elevation=float(sun_elevation_deg))
