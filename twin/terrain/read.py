"""Read terrain models and mosaic them onto one north-up grid in the scene's CRS."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
from affine import Affine

from twin.crs import SceneCRS, parse_crs, resolve_crs
from twin.errors import CRSError, TwinIOError, TwinValueError
from twin.grid import TerrainRaster, approximate_terrain

if TYPE_CHECKING:  # pragma: no cover
    from twin.scene import Scene

__all__ = ["read_terrain", "attach_terrain"]

_XYZ_SUFFIXES = {".xyz", ".txt", ".csv"}


@dataclass
class _Source:
    path: Path
    data: np.ndarray  # float32, NaN nodata
    transform: Affine
    crs: SceneCRS | None


def _read_xyz(path: Path) -> tuple[np.ndarray, Affine]:
    """A DGM1-style x y z point list on a regular grid (points are cell centres)."""
    import pandas as pd

    try:
        pts = pd.read_csv(path, sep=r"\s+", header=None, comment="#", usecols=[0, 1, 2],
                          dtype=np.float64).to_numpy()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        try:  # comma- or semicolon-separated variants
            pts = pd.read_csv(path, sep=None, engine="python", header=None, comment="#", usecols=[0, 1, 2],
                              dtype=np.float64).to_numpy()
        except (OSError, ValueError, pd.errors.ParserError):
            raise TwinIOError(f"cannot read {path} as an x y z point grid ({exc}); expected three numbers "
                              "per line") from exc
    if len(pts) < 4:
        raise TwinIOError(f"{path}: {len(pts)} points are too few for a terrain grid")
    xs, ys = np.unique(pts[:, 0]), np.unique(pts[:, 1])
    dx = np.diff(xs).min() if len(xs) > 1 else 1.0
    dy = np.diff(ys).min() if len(ys) > 1 else dx
    if not math.isclose(dx, dy, rel_tol=1e-6):
        raise TwinIOError(f"{path}: point spacing differs in x ({dx} m) and y ({dy} m); only square grids are supported")
    cols = int(round((xs[-1] - xs[0]) / dx)) + 1
    rows = int(round((ys[-1] - ys[0]) / dx)) + 1
    c = np.rint((pts[:, 0] - xs[0]) / dx).astype(np.int64)
    r = np.rint((ys[-1] - pts[:, 1]) / dx).astype(np.int64)
    if np.abs((pts[:, 0] - xs[0]) / dx - c).max() > 1e-3 or np.abs((ys[-1] - pts[:, 1]) / dx - r).max() > 1e-3:
        raise TwinIOError(f"{path}: the points do not lie on a regular {dx:g} m grid")
    data = np.full((rows, cols), np.nan, np.float32)
    data[r, c] = pts[:, 2]
    return data, Affine(dx, 0.0, xs[0] - dx / 2, 0.0, -dx, ys[-1] + dx / 2)


def _open(path: Path, clip: tuple[float, float, float, float] | None, target: SceneCRS | None) -> _Source:
    if not path.exists():
        raise TwinIOError(f"terrain file {path} does not exist")
    if path.suffix.lower() in _XYZ_SUFFIXES:
        data, transform = _read_xyz(path)
        return _Source(path, data, transform, None)
    import rasterio
    from rasterio.windows import Window, from_bounds

    try:
        with rasterio.open(path) as src:
            crs = None
            if src.crs is not None:
                epsg = src.crs.to_epsg()
                if epsg is None:
                    raise CRSError(f"{path}: its CRS ({src.crs.to_string()[:80]}) has no EPSG code; "
                                   "reproject it with gdalwarp -t_srs EPSG:25832")
                crs = parse_crs(f"EPSG:{epsg}")
            if src.transform.b != 0 or src.transform.d != 0:
                raise TwinIOError(f"{path}: rotated rasters are not supported; warp it north-up first (gdalwarp)")
            window = None
            if clip is not None and (crs is None or target is None or crs.horizontal == target.horizontal):
                w = from_bounds(*clip, transform=src.transform)
                # whole cells that touch the clip box (rasterio's round_offsets rounds 44.9 up)
                col0 = max(math.floor(round(w.col_off, 6)), 0)
                row0 = max(math.floor(round(w.row_off, 6)), 0)
                col1 = min(math.ceil(round(w.col_off + w.width, 6)), src.width)
                row1 = min(math.ceil(round(w.row_off + w.height, 6)), src.height)
                if col1 <= col0 or row1 <= row0:
                    return _Source(path, np.zeros((0, 0), np.float32), src.transform, crs)
                window = Window(col0, row0, col1 - col0, row1 - row0)
            band = src.read(1, window=window, masked=True)
            data = band.astype(np.float32).filled(np.nan)
            transform = src.window_transform(window) if window is not None else src.transform
    except rasterio.errors.RasterioIOError as exc:
        raise TwinIOError(f"cannot read terrain file {path}: {exc}; GeoTIFF, ESRI ASCII grid (.asc) and x y z "
                          "point lists (.xyz) are supported") from exc
    if transform.e > 0:  # south-up: flip to north-up
        data = data[::-1].copy()
        transform = Affine(transform.a, 0, transform.c, 0, -transform.e, transform.f + transform.e * data.shape[0])
    return _Source(path, data, transform, crs)


def read_terrain(paths: "str | os.PathLike | Iterable[str | os.PathLike]", *, crs=None,
                 source_crs=None, bounds=None, margin: float = 0.0, resolution: float | None = None) -> TerrainRaster:
    """Read one or more terrain tiles into one seamless raster.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        GeoTIFF (incl. Cloud-Optimized GeoTIFF), ESRI ASCII grid (``.asc``) or x y z point lists on a
        regular grid (German DGM1 ``.xyz`` tiles; points are cell centres).
    crs : str, SceneCRS, optional
        CRS of the result (the scene's CRS); tiles in another horizontal CRS are reprojected
        (bilinear). Default: the first tile's CRS.
    source_crs : str, SceneCRS, optional
        CRS of tiles that do not state one (``.xyz``, ``.asc`` without ``.prj``). Default ``crs``.
    bounds : (west, south, east, north), optional
        Clip to this extent (in ``crs``) plus ``margin`` metres; the result is snapped outward to
        whole cells of the tiles' grid.
    margin : float
        Metres added around ``bounds``.
    resolution : float, optional
        Cell size in metres; default the finest tile resolution (tiles on the same grid are copied
        without resampling, so a mosaic of tiles cut from one raster equals that raster).

    Returns
    -------
    TerrainRaster
        float32 heights (NaN for nodata) with ``metadata["sources"]``.

    Raises
    ------
    TwinIOError
        When a file cannot be read or the tiles do not overlap ``bounds``.
    CRSError
        When a tile has no CRS and neither ``source_crs`` nor ``crs`` says which.
    """
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not paths:
        raise TwinValueError("no terrain files given")
    target = parse_crs(crs) if crs is not None else None
    src_default = parse_crs(source_crs) if source_crs is not None else target
    clip = None
    if bounds is not None:
        w, s, e, n = (float(b) for b in bounds)
        clip = (w - margin, s - margin, e + margin, n + margin)
    sources = [_open(p, clip, target) for p in paths]
    for src in sources:
        if src.crs is None:
            if src_default is None:
                raise CRSError(f"{src.path} does not say its CRS; pass source_crs='EPSG:25832' (or --crs)")
            src.crs = src_default
    if target is None:
        target = sources[0].crs
    sources = [s for s in sources if s.data.size]
    if not sources:
        raise TwinIOError(f"none of the terrain files {[str(p) for p in paths]} overlaps the scene extent {clip}")

    # target frame: finest resolution, grid origin of the first tile in the target CRS (so aligned
    # tiles are copied, not resampled)
    from rasterio.warp import transform_bounds

    def tile_bounds(s: _Source):
        rows, cols = s.data.shape
        b = (s.transform.c, s.transform.f + s.transform.e * rows, s.transform.c + s.transform.a * cols, s.transform.f)
        if s.crs.horizontal == target.horizontal or target.is_local or s.crs.is_local:
            return b, s.transform.a
        tb = transform_bounds(s.crs.horizontal, target.horizontal, *b)
        return tb, (tb[2] - tb[0]) / cols

    tbs = [tile_bounds(s) for s in sources]
    res = float(resolution) if resolution else min(r for _, r in tbs)
    same = [s for s in sources if s.crs.horizontal == target.horizontal and s.transform.a == res]
    ox, oy = (same[0].transform.c, same[0].transform.f) if same else (0.0, 0.0)
    west = min(b[0] for b, _ in tbs)
    south = min(b[1] for b, _ in tbs)
    east = max(b[2] for b, _ in tbs)
    north = max(b[3] for b, _ in tbs)
    if clip is not None:
        west, south, east, north = max(west, clip[0]), max(south, clip[1]), min(east, clip[2]), min(north, clip[3])
        if east <= west or north <= south:
            raise TwinIOError(f"the terrain files do not overlap the scene extent {clip}")
    west = ox + math.floor(round((west - ox) / res, 6)) * res
    north = oy + math.ceil(round((north - oy) / res, 6)) * res
    cols = max(1, math.ceil(round((east - west) / res, 6)))
    rows = max(1, math.ceil(round((north - south) / res, 6)))
    transform = Affine(res, 0.0, west, 0.0, -res, north)
    out = np.full((rows, cols), np.nan, np.float32)

    from rasterio.crs import CRS as RioCRS
    from rasterio.warp import Resampling, reproject

    for s in sources:
        aligned = (s.crs.horizontal == target.horizontal and s.transform.a == res and s.transform.e == -res)
        off_c = (s.transform.c - west) / res
        off_r = (north - s.transform.f) / res
        if aligned and abs(off_c - round(off_c)) < 1e-6 and abs(off_r - round(off_r)) < 1e-6:
            oc, orow = int(round(off_c)), int(round(off_r))
            sr, sc = s.data.shape
            r0, r1 = max(0, orow), min(rows, orow + sr)
            c0, c1 = max(0, oc), min(cols, oc + sc)
            if r1 <= r0 or c1 <= c0:
                continue
            patch = s.data[r0 - orow:r1 - orow, c0 - oc:c1 - oc]
            view = out[r0:r1, c0:c1]
            fill = np.isnan(view)  # first tile wins where tiles overlap
            view[fill] = patch[fill]
            continue
        tmp = np.full((rows, cols), np.nan, np.float32)
        reproject(s.data, tmp, src_transform=s.transform,
                  src_crs=RioCRS.from_epsg(s.crs.horizontal_epsg) if not s.crs.is_local else None,
                  src_nodata=np.nan, dst_transform=transform,
                  dst_crs=RioCRS.from_epsg(target.horizontal_epsg) if not target.is_local else None,
                  dst_nodata=np.nan, resampling=Resampling.bilinear)
        fill = np.isnan(out)
        out[fill] = tmp[fill]
    meta = {"method": "raster", "sources": [str(p) for p in paths],
            "reprojected_from": sorted({str(s.crs) for s in sources if s.crs.horizontal != target.horizontal})}
    return TerrainRaster(out, transform, target, meta)


def attach_terrain(scene: "Scene", paths=None, *, margin: float = 150.0, resolution: float | None = None,
                   source_crs=None) -> TerrainRaster:
    """Give a scene its terrain: DEM tiles when given, else its TINRelief, else an approximation.

    Sets ``scene.terrain`` and records how in ``scene.metadata["terrain"]`` (and, for DHHN92
    scenes, ``scene.metadata["height_datum_note"]``).

    Parameters
    ----------
    scene : Scene
        Modified in place.
    paths : path-like or list of path-like, optional
        DEM tiles (see :func:`read_terrain`); mosaicked, reprojected to the scene CRS and clipped
        to the scene's extent plus ``margin``.
    margin : float
        Metres of terrain kept around the scene's bounding box (default 150 m).
    resolution : float, optional
        Cell size in metres; default the DEM's (1 m for a scene without a DEM).
    source_crs : str, optional
        CRS of DEM tiles that do not state one; default the scene's.

    Returns
    -------
    TerrainRaster
        The attached terrain. Without ``paths`` and without a TINRelief, a :class:`TwinWarning`
        says the terrain was interpolated from building ground heights.
    """
    bb = scene.bbox
    has_geometry = not any(np.isnan(bb))
    if paths:
        if scene.crs.is_local and source_crs is None:
            source_crs = scene.crs
        bounds = (bb[0], bb[1], bb[3], bb[4]) if has_geometry else None
        terrain = read_terrain(paths, crs=scene.crs if not scene.crs.is_local else None, source_crs=source_crs,
                               bounds=bounds, margin=margin, resolution=resolution)
        if scene.crs.is_local:
            terrain = TerrainRaster(terrain.data, terrain.transform, scene.crs, terrain.metadata)
    else:
        terrain = approximate_terrain(scene, resolution=resolution or 1.0, margin=margin)
    scene.terrain = terrain
    scene.metadata["terrain"] = {**terrain.metadata, "margin_m": margin}
    if not scene.crs.is_local and scene.crs.vertical is not None:
        _, note = resolve_crs(scene.crs)
        if note:
            scene.metadata["height_datum_note"] = note
    return terrain
