"""Out-of-core terrain: several GeoTIFF/COG tiles as one virtual mosaic read in windows.

:class:`RasterMosaic` opens only the headers. Slicing it (``mosaic[r0:r1, c0:c1]``) reads that window
from every file that overlaps it (rasterio windows; a COG's internal tiles and overviews make that
cheap), so a city-wide DEM is never held whole. It is picklable (paths and grid only), so Dask tasks
on any worker read their own windows, and :meth:`RasterMosaic.to_dask` is a lazy dask array.

The files must share one grid: the same CRS, the same square cell size and origins on whole cells
of each other (DGM1 tiles of a state survey are). Where files overlap, the later file wins; cells
no file covers are NaN. Use :func:`twin.terrain.read_terrain` to resample grids that differ.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from twin.errors import CRSError, TwinIOError, TwinValueError

__all__ = ["RasterMosaic", "open_mosaic", "write_tiled_geotiff"]


@dataclass(frozen=True)
class _Part:
    path: str
    row0: int
    col0: int
    rows: int
    cols: int
    nodata: float | None


class RasterMosaic:
    """A virtual mosaic of single-band rasters on one grid (see the module docstring).

    Attributes
    ----------
    shape : (rows, cols)
    transform : affine.Affine
        Of the mosaic (north-up, square cells).
    crs_wkt : str
    cell_size : float
        m.
    dtype : numpy.dtype
        float64 (values are read as float64, nodata as NaN).
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, parts: Sequence[_Part], shape: tuple[int, int], transform, crs_wkt: str) -> None:
        self._parts = tuple(parts)
        self.shape = (int(shape[0]), int(shape[1]))
        self.transform = transform
        self.crs_wkt = crs_wkt
        self.cell_size = float(transform.a)

    def __repr__(self) -> str:
        return f"RasterMosaic({len(self._parts)} files, {self.shape[0]} x {self.shape[1]} cells @ {self.cell_size:g} m)"

    @property
    def files(self) -> list[str]:
        return [p.path for p in self._parts]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2 or not all(isinstance(k, slice) for k in key):
            raise TwinValueError(f"a RasterMosaic is read with two slices (mosaic[r0:r1, c0:c1]), got {key!r}")
        (r0, r1, rs), (c0, c1, cs) = (k.indices(n) for k, n in zip(key, self.shape))
        if rs != 1 or cs != 1:
            raise TwinValueError("a RasterMosaic window must be contiguous (step 1)")
        return self.read_window(r0, r1, c0, c1)

    def read_window(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows r0..r1-1 and columns c0..c1-1 of the mosaic (float64, NaN where no file has data)."""
        import rasterio
        from rasterio.windows import Window

        out = np.full((max(0, r1 - r0), max(0, c1 - c0)), np.nan)
        if out.size == 0:
            return out
        for p in self._parts:
            a0, a1 = max(r0, p.row0), min(r1, p.row0 + p.rows)
            b0, b1 = max(c0, p.col0), min(c1, p.col0 + p.cols)
            if a0 >= a1 or b0 >= b1:
                continue
            try:
                with rasterio.open(p.path) as src:
                    data = src.read(1, window=Window(b0 - p.col0, a0 - p.row0, b1 - b0, a1 - a0), masked=True)
            except rasterio.errors.RasterioIOError as exc:
                raise TwinIOError(f"cannot read {p.path} window rows {a0}:{a1} cols {b0}:{b1}: {exc}") from exc
            block = data.astype(np.float64).filled(np.nan)
            if p.nodata is not None and not math.isnan(p.nodata):
                block[block == p.nodata] = np.nan
            valid = ~np.isnan(block)
            view = out[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
            view[valid] = block[valid]
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.read_window(0, self.shape[0], 0, self.shape[1])
        return a if dtype is None else a.astype(dtype)

    def to_dask(self, *, chunks: int = 1024):
        """A lazy dask array over the mosaic, one window read per chunk."""
        import dask.array as da

        return da.from_array(self, chunks=(chunks, chunks), lock=False, asarray=True, fancy=False)


def open_mosaic(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> RasterMosaic:
    """Open one or several rasters on a shared grid as a :class:`RasterMosaic` (headers only).

    Raises
    ------
    TwinIOError
        A file is missing or not a raster.
    CRSError
        A file has no CRS, or the files' CRSs differ.
    TwinValueError
        Non-square or rotated cells, different cell sizes, or origins off each other's cell grid.
    """
    import rasterio
    from affine import Affine

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [str(Path(p)) for p in paths]
    if not paths:
        raise TwinValueError("give at least one raster file")
    heads = []
    for p in paths:
        try:
            with rasterio.open(p) as src:
                heads.append((p, src.transform, src.crs, src.height, src.width, src.nodata))
        except rasterio.errors.RasterioIOError as exc:
            raise TwinIOError(f"cannot open {p} as a raster: {exc}") from exc
    p0, t0, crs0, *_ = heads[0]
    if crs0 is None:
        raise CRSError(f"{p0} has no CRS; assign one first (e.g. gdal_edit.py -a_srs EPSG:25832 {p0})")
    cell = t0.a
    for p, t, crs, h, w, _ in heads:
        if t.b != 0 or t.d != 0 or t.e >= 0 or not math.isclose(t.a, -t.e, rel_tol=1e-9):
            raise TwinValueError(f"{p}: the mosaic needs north-up square cells, got transform {tuple(t)[:6]}")
        if not math.isclose(t.a, cell, rel_tol=1e-9):
            raise TwinValueError(f"{p} has {t.a:g} m cells, {p0} {cell:g} m; resample with twin.terrain.read_terrain")
        if crs != crs0:
            raise CRSError(f"{p} is in {crs}, {p0} in {crs0}; reproject the tiles to one CRS first")
    x0 = min(t.c for _, t, *_ in heads)
    y0 = max(t.f for _, t, *_ in heads)
    parts, rows, cols = [], 0, 0
    for p, t, _, h, w, nodata in heads:
        fc, fr = (t.c - x0) / cell, (y0 - t.f) / cell
        c, r = int(round(fc)), int(round(fr))
        if abs(fc - c) > 1e-6 or abs(fr - r) > 1e-6:
            raise TwinValueError(f"{p}: its origin lies {fc - c:+.3f}, {fr - r:+.3f} cells off the grid of {p0}; "
                                 "resample with twin.terrain.read_terrain")
        parts.append(_Part(p, r, c, int(h), int(w), None if nodata is None else float(nodata)))
        rows, cols = max(rows, r + h), max(cols, c + w)
    return RasterMosaic(parts, (rows, cols), Affine(cell, 0.0, x0, 0.0, -cell, y0), crs0.to_wkt())


def write_tiled_geotiff(path: str | os.PathLike, *, shape: tuple[int, int], transform, crs,
                        block: Callable[[int, int, int, int], np.ndarray], chunk: int = 1024,
                        dtype: str = "float32", overwrite: bool = False,
                        progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a tiled, deflate-compressed GeoTIFF window by window (never whole in memory).

    Parameters
    ----------
    shape : (rows, cols)
    transform : affine.Affine
    crs : anything rasterio takes (``"EPSG:25832"``, WKT)
    block : callable(r0, r1, c0, c1) -> ndarray
        Values of rows r0..r1-1, cols c0..c1-1 (nodata: NaN for float types, -1 for integer types).
    chunk : int
        Window side (cells); a multiple of 16 (the GeoTIFF tile size is min(chunk, 512)).
    """
    import rasterio
    from rasterio.windows import Window

    path = Path(path)
    if path.exists() and not overwrite:
        raise TwinIOError(f"{path} exists; pass overwrite=True to replace it")
    if chunk % 16:
        raise TwinValueError(f"chunk={chunk} must be a multiple of 16 (GeoTIFF tiles)")
    rows, cols = shape
    bs = min(chunk, 512)
    floating = np.dtype(dtype).kind == "f"
    profile = dict(driver="GTiff", height=rows, width=cols, count=1, dtype=dtype, crs=crs, transform=transform,
                   nodata=np.nan if floating else -1, tiled=True, blockxsize=bs, blockysize=bs, compress="deflate",
                   predictor=3 if floating else 2, BIGTIFF="IF_SAFER")
    windows = [(r0, min(r0 + chunk, rows), c0, min(c0 + chunk, cols))
               for r0 in range(0, rows, chunk) for c0 in range(0, cols, chunk)]
    with rasterio.open(path, "w", **profile) as dst:
        for i, (r0, r1, c0, c1) in enumerate(windows):
            data = np.asarray(block(r0, r1, c0, c1), dtype=dtype)
            if data.shape != (r1 - r0, c1 - c0):
                raise TwinValueError(f"block({r0}, {r1}, {c0}, {c1}) returned shape {data.shape}")
            dst.write(data, 1, window=Window(c0, r0, c1 - c0, r1 - r0))
            if progress:
                progress(i + 1, len(windows))
    return path
