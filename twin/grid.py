"""Rasters of the scene: the terrain raster and the simulation :class:`Grid`.

The simulations run on a raster burned from the scene. :func:`scene_to_grid` (``Scene.to_grid``)
burns terrain, buildings (id, height), land cover and its hydraulic parameters, tree canopy and
water into named float32/int32 fields with units on a north-up grid in the scene's CRS.

Burn-in rule: a polygon covers exactly the cells whose **centres** lie inside it (the rule of
``rasterio.features.rasterize`` without ``all_touched``). Footprints come from the buildings'
GroundSurface triangles, so the burn is exact for any triangulated footprint, holes included; a
centre exactly on an edge shared by two triangles is counted once.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from affine import Affine

from twin.crs import SceneCRS, parse_crs
from twin.errors import TwinIOError, TwinValueError, TwinWarning

if TYPE_CHECKING:  # pragma: no cover
    import xarray

    from twin.scene import Scene

__all__ = ["Grid", "TerrainRaster", "scene_to_grid", "load_landcover_table", "building_footprints"]

GROUND_SURFACE = 3  # index of "GroundSurface" in twin.scene.SURFACE_TYPES
_DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "landcover" / "default.toml"

#: Fields :func:`scene_to_grid` writes: name -> (dtype, units, description).
FIELDS: dict[str, tuple[str, str, str]] = {
    "terrain_elevation": ("float32", "m", "terrain height in the scene's vertical datum"),
    "building_id": ("int32", "1", "feature id of the building (features.root) whose footprint covers the cell centre, -1 for none"),
    "building_height": ("float32", "m", "building top above terrain at the cell centre, 0 outside buildings"),
    "dsm": ("float32", "m", "surface height: terrain + buildings + tree canopy"),
    "imperviousness": ("float32", "1", "sealed fraction 0..1"),
    "landcover": ("int32", "1", "land-cover class code (see attrs['landcover_classes'])"),
    "manning_n": ("float32", "s m-1/3", "Manning roughness"),
    "ks_mm_per_h": ("float32", "mm h-1", "Green-Ampt saturated hydraulic conductivity"),
    "suction_head_mm": ("float32", "mm", "Green-Ampt wetting-front suction head"),
    "porosity": ("float32", "1", "Green-Ampt effective porosity"),
    "tree_canopy_height": ("float32", "m", "tree canopy height above terrain, 0 without trees"),
    "water_mask": ("int32", "1", "1 for open water, else 0"),
}


# ================================================================================ TerrainRaster
@dataclass(eq=False)
class TerrainRaster:
    """A single-band elevation raster (digital terrain model) on a north-up grid.

    Attributes
    ----------
    data : ndarray of float32, shape (rows, cols)
        Heights in metres in the vertical datum of ``crs``; NaN where there is no data.
    transform : affine.Affine
        Pixel (col, row) -> (x, y) of the cell's upper-left corner; north-up (``e == -a``).
    crs : SceneCRS
        Horizontal CRS (and vertical datum when known).
    metadata : dict
        Provenance (sources, how it was made); JSON-serialisable.
    """

    data: np.ndarray
    transform: Affine
    crs: SceneCRS
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.ascontiguousarray(self.data, dtype=np.float32)
        if self.data.ndim != 2:
            raise TwinValueError(f"terrain data must be 2-D (rows, cols), got shape {self.data.shape}")
        self.transform = Affine(*tuple(self.transform)[:6])
        if self.transform.b != 0 or self.transform.d != 0 or self.transform.e >= 0:
            raise TwinValueError(f"terrain raster must be north-up without rotation, got transform {tuple(self.transform)[:6]}; "
                                 "warp it first (gdalwarp)")
        self.crs = parse_crs(self.crs)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]

    @property
    def resolution(self) -> tuple[float, float]:
        """Cell size ``(dx, dy)`` in metres."""
        return (self.transform.a, -self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the raster's outer cell edges."""
        return _bounds(self.transform, self.shape)

    def stats(self) -> dict:
        """Size, resolution, bounds and height range, for ``twin info``."""
        finite = np.isfinite(self.data)
        return {"shape": list(self.shape), "resolution": list(self.resolution), "bounds": list(self.bounds),
                "crs": str(self.crs), "min": float(np.nanmin(self.data)) if finite.any() else None,
                "max": float(np.nanmax(self.data)) if finite.any() else None,
                "nodata_fraction": float(1.0 - finite.mean()) if self.data.size else 1.0}

    def sample(self, x, y, *, method: str = "bilinear") -> np.ndarray:
        """Heights at points ``(x, y)`` (metres, raster CRS); NaN outside or next to nodata.

        Parameters
        ----------
        x, y : array_like
            Coordinates in metres.
        method : {"bilinear", "nearest"}
            Bilinear between the four surrounding cell centres, or the cell containing the point.
        """
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        inv = ~self.transform
        col, row = inv @ (x, y)
        rows, cols = self.shape
        if method == "nearest":
            c = np.floor(col).astype(np.int64)
            r = np.floor(row).astype(np.int64)
            ok = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
            out = np.full(np.shape(x), np.nan)
            out[ok] = self.data[r[ok], c[ok]]
            return out
        if method != "bilinear":
            raise TwinValueError(f"unknown sampling method {method!r}; use 'bilinear' or 'nearest'")
        fc, fr = col - 0.5, row - 0.5  # relative to cell centres
        # clamp to the outer half cell so points near the edge use the edge cells
        inside = (col >= 0) & (col <= cols) & (row >= 0) & (row <= rows)
        fc = np.clip(fc, 0, cols - 1)
        fr = np.clip(fr, 0, rows - 1)
        c0 = np.minimum(np.floor(fc).astype(np.int64), max(cols - 2, 0))
        r0 = np.minimum(np.floor(fr).astype(np.int64), max(rows - 2, 0))
        c1 = np.minimum(c0 + 1, cols - 1)
        r1 = np.minimum(r0 + 1, rows - 1)
        tc, tr = fc - c0, fr - r0
        d = self.data.astype(np.float64)
        out = (d[r0, c0] * (1 - tc) * (1 - tr) + d[r0, c1] * tc * (1 - tr)
               + d[r1, c0] * (1 - tc) * tr + d[r1, c1] * tc * tr)
        return np.where(inside, out, np.nan)

    def to_geotiff(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a deflate-compressed, tiled float32 GeoTIFF (nodata NaN)."""
        import rasterio

        path = _check_out(path, overwrite)
        rows, cols = self.shape
        profile = dict(driver="GTiff", height=rows, width=cols, count=1, dtype="float32", nodata=np.nan,
                       crs=_rio_crs(self.crs), transform=self.transform, compress="deflate", predictor=3,
                       **({"tiled": True, "blockxsize": 256, "blockysize": 256} if rows >= 256 and cols >= 256 else {}))
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(self.data, 1)
            dst.update_tags(twin_crs=json.dumps(self.crs.to_dict()), twin_metadata=json.dumps(self.metadata, default=str))
        return path

    @classmethod
    def from_geotiff(cls, path: str | os.PathLike) -> "TerrainRaster":
        """Read a raster written by :meth:`to_geotiff` (or any single-band GeoTIFF)."""
        import rasterio

        try:
            with rasterio.open(path) as src:
                data = src.read(1, masked=True).astype(np.float32).filled(np.nan)
                tags = src.tags()
                crs = SceneCRS.from_dict(json.loads(tags["twin_crs"])) if "twin_crs" in tags \
                    else parse_crs(f"EPSG:{src.crs.to_epsg()}")
                meta = json.loads(tags.get("twin_metadata", "{}"))
                transform = src.transform
        except rasterio.errors.RasterioIOError as exc:
            raise TwinIOError(f"cannot read terrain raster {path}: {exc}") from exc
        return cls(data, transform, crs, meta)

    def equals(self, other: object) -> bool:
        return (isinstance(other, TerrainRaster) and self.crs == other.crs
                and tuple(self.transform) == tuple(other.transform)
                and self.data.shape == other.data.shape
                and np.array_equal(self.data, other.data, equal_nan=True)
                and json.dumps(self.metadata, sort_keys=True, default=str)
                == json.dumps(other.metadata, sort_keys=True, default=str))

    def __repr__(self) -> str:
        s = self.stats()
        return (f"<TerrainRaster {s['shape'][1]}x{s['shape'][0]} @ {s['resolution'][0]:g} m crs={self.crs} "
                f"z={s['min']}..{s['max']}>")


# ================================================================================ Grid
@dataclass(eq=False)
class Grid:
    """A raster on the scene's CRS holding named fields with units.

    Attributes
    ----------
    transform : affine.Affine
        Pixel (col, row) -> (x, y) of the upper-left cell corner; north-up.
    crs : SceneCRS
        The scene's CRS.
    shape : tuple of int
        ``(rows, cols)``.
    fields : dict of str -> ndarray
        float32 or int32 arrays of ``shape``. float fields use NaN as nodata, int fields -1.
    units : dict of str -> str
        UDUNITS-style units per field (``"m"``, ``"1"``, ``"s m-1/3"``).
    attrs : dict
        JSON-serialisable metadata (e.g. ``landcover_classes``).
    """

    transform: Affine
    crs: SceneCRS
    shape: tuple[int, int]
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.transform = Affine(*tuple(self.transform)[:6])
        self.crs = parse_crs(self.crs)
        self.shape = (int(self.shape[0]), int(self.shape[1]))
        for name, arr in list(self.fields.items()):
            self.fields[name] = self._checked(name, arr)
            self.units.setdefault(name, "1")

    def _checked(self, name: str, data) -> np.ndarray:
        arr = np.asarray(data)
        if arr.shape != self.shape:
            raise TwinValueError(f"field {name!r} has shape {arr.shape}, the grid is {self.shape}")
        if arr.dtype not in (np.float32, np.int32):
            kind = "float32" if arr.dtype.kind == "f" else "int32"
            arr = arr.astype(kind)
        return np.ascontiguousarray(arr)

    def add_field(self, name: str, data, *, units: str) -> None:
        """Add or replace a field (cast to float32 / int32)."""
        self.fields[name] = self._checked(name, data)
        self.units[name] = units

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.fields[name]
        except KeyError:
            raise KeyError(f"the grid has no field {name!r}; it has {sorted(self.fields)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    @property
    def resolution(self) -> float:
        return self.transform.a

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return _bounds(self.transform, self.shape)

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """1-D x (columns) and y (rows) of the cell centres, metres."""
        rows, cols = self.shape
        x = self.transform.c + (np.arange(cols) + 0.5) * self.transform.a
        y = self.transform.f + (np.arange(rows) + 0.5) * self.transform.e
        return x, y

    # ---------------------------------------------------------------- xarray
    def to_xarray(self) -> "xarray.Dataset":
        """An xarray Dataset: one variable per field (dims ``y``, ``x``), units in attrs.

        The affine transform and CRS ride in the Dataset attrs (``transform``, ``crs``), with a CF
        ``spatial_ref``-style ``crs_wkt``, so :meth:`from_xarray` rebuilds the grid exactly.
        """
        import xarray as xr

        x, y = self.cell_centres()
        data_vars = {}
        for name, arr in self.fields.items():
            desc = FIELDS.get(name, ("", "", ""))[2]
            data_vars[name] = (("y", "x"), arr, {"units": self.units.get(name, "1"), "long_name": desc or name,
                                                  "_FillValue_twin": "nan" if arr.dtype.kind == "f" else -1})
        ds = xr.Dataset(data_vars, coords={"x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
                                           "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"})})
        ds.attrs.update({"transform": list(tuple(self.transform)[:6]), "crs": json.dumps(self.crs.to_dict()),
                         "crs_wkt": _crs_wkt(self.crs), "twin_attrs": json.dumps(self.attrs, default=str),
                         "Conventions": "CF-1.8"})
        return ds

    @classmethod
    def from_xarray(cls, ds: "xarray.Dataset") -> "Grid":
        """Rebuild a grid from :meth:`to_xarray` output (or any Dataset with 1-D regular x/y)."""
        if "transform" in ds.attrs:
            transform = Affine(*[float(v) for v in np.ravel(ds.attrs["transform"])[:6]])
        else:
            x, y = ds["x"].values, ds["y"].values
            if len(x) < 2 or len(y) < 2:
                raise TwinValueError("cannot infer the grid transform from fewer than 2 x/y values; "
                                     "set ds.attrs['transform'] = [a, b, c, d, e, f]")
            dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
            transform = Affine(dx, 0, float(x[0]) - dx / 2, 0, dy, float(y[0]) - dy / 2)
        crs = SceneCRS.from_dict(json.loads(ds.attrs["crs"])) if "crs" in ds.attrs else SceneCRS(None)
        attrs = json.loads(ds.attrs.get("twin_attrs", "{}"))
        names = [n for n in ds.data_vars if ds[n].dims == ("y", "x")]
        if not names:
            raise TwinValueError(f"the Dataset has no (y, x) variables; it has {list(ds.data_vars)}")
        shape = ds[names[0]].shape
        fields = {n: ds[n].values for n in names}
        units = {n: str(ds[n].attrs.get("units", "1")) for n in names}
        return cls(transform, crs, shape, fields, units, attrs)

    # ---------------------------------------------------------------- files
    def to_netcdf(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write all fields to a compressed NetCDF-4 file (read back with :meth:`from_netcdf`)."""
        path = _check_out(path, overwrite)
        ds = self.to_xarray()
        encoding = {n: {"zlib": True, "complevel": 4, "_FillValue": None} for n in self.fields}
        ds.to_netcdf(path, engine="netcdf4", encoding=encoding)
        return path

    @classmethod
    def from_netcdf(cls, path: str | os.PathLike) -> "Grid":
        import xarray as xr

        with xr.open_dataset(path, engine="netcdf4", mask_and_scale=False) as ds:
            return cls.from_xarray(ds.load())

    def to_geotiff(self, path: str | os.PathLike, *, fields: "list[str] | str | None" = None,
                   overwrite: bool = False) -> Path:
        """Write fields as bands of one deflate GeoTIFF (band description = field name).

        A single field keeps its dtype. Several fields of mixed dtypes go into float64 bands, which
        hold float32 and int32 values exactly; the original dtype and units are stored in band tags
        so :meth:`from_geotiff` restores them.
        """
        import rasterio

        names = list(self.fields) if fields is None else ([fields] if isinstance(fields, str) else list(fields))
        for n in names:
            self[n]
        if not names:
            raise TwinValueError("no fields to write; the grid is empty")
        path = _check_out(path, overwrite)
        dtypes = {self.fields[n].dtype for n in names}
        dtype = next(iter(dtypes)) if len(dtypes) == 1 else np.dtype("float64")
        rows, cols = self.shape
        profile = dict(driver="GTiff", height=rows, width=cols, count=len(names), dtype=dtype.name,
                       crs=_rio_crs(self.crs), transform=self.transform, compress="deflate",
                       **({"tiled": True, "blockxsize": 256, "blockysize": 256} if rows >= 256 and cols >= 256 else {}))
        with rasterio.open(path, "w", **profile) as dst:
            for i, n in enumerate(names, start=1):
                dst.write(self.fields[n].astype(dtype, copy=False), i)
                dst.set_band_description(i, n)
                dst.update_tags(i, units=self.units.get(n, "1"), dtype=self.fields[n].dtype.name)
            dst.update_tags(twin_crs=json.dumps(self.crs.to_dict()), twin_attrs=json.dumps(self.attrs, default=str))
        return path

    @classmethod
    def from_geotiff(cls, path: str | os.PathLike) -> "Grid":
        """Read a GeoTIFF written by :meth:`to_geotiff` (any GeoTIFF: bands named ``band1``...)."""
        import rasterio

        try:
            with rasterio.open(path) as src:
                tags = src.tags()
                crs = SceneCRS.from_dict(json.loads(tags["twin_crs"])) if "twin_crs" in tags \
                    else (parse_crs(f"EPSG:{src.crs.to_epsg()}") if src.crs else SceneCRS(None))
                fields, units = {}, {}
                for i in range(1, src.count + 1):
                    name = src.descriptions[i - 1] or f"band{i}"
                    bt = src.tags(i)
                    fields[name] = src.read(i).astype(bt.get("dtype", src.dtypes[i - 1]))
                    units[name] = bt.get("units", "1")
                return cls(src.transform, crs, (src.height, src.width), fields, units,
                           json.loads(tags.get("twin_attrs", "{}")))
        except rasterio.errors.RasterioIOError as exc:
            raise TwinIOError(f"cannot read grid GeoTIFF {path}: {exc}") from exc

    def write(self, path: str | os.PathLike, *, fields: "list[str] | str | None" = None,
              overwrite: bool = False) -> Path:
        """Write to NetCDF (``.nc``, all fields) or GeoTIFF (``.tif``/``.tiff``, ``fields`` or all).

        Raises
        ------
        TwinValueError
            For another suffix, or ``fields`` with a NetCDF path.
        """
        suffix = Path(path).suffix.lower()
        if suffix in (".nc", ".nc4", ".netcdf"):
            if fields is not None:
                names = [fields] if isinstance(fields, str) else list(fields)
                sub = Grid(self.transform, self.crs, self.shape, {n: self[n] for n in names},
                           {n: self.units[n] for n in names}, dict(self.attrs))
                return sub.to_netcdf(path, overwrite=overwrite)
            return self.to_netcdf(path, overwrite=overwrite)
        if suffix in (".tif", ".tiff"):
            return self.to_geotiff(path, fields=fields, overwrite=overwrite)
        raise TwinValueError(f"cannot tell the format of {path}: use a .nc (NetCDF, all fields) or .tif "
                             "(GeoTIFF, one field with --field) file name")

    def equals(self, other: object) -> bool:
        """Same transform, CRS, shape, fields (dtype and values, NaN == NaN), units and attrs."""
        if not (isinstance(other, Grid) and tuple(self.transform) == tuple(other.transform)
                and self.crs == other.crs and self.shape == other.shape
                and set(self.fields) == set(other.fields) and self.units == other.units
                and json.dumps(self.attrs, sort_keys=True, default=str) == json.dumps(other.attrs, sort_keys=True, default=str)):
            return False
        return all(self.fields[n].dtype == other.fields[n].dtype
                   and np.array_equal(self.fields[n], other.fields[n], equal_nan=self.fields[n].dtype.kind == "f")
                   for n in self.fields)

    def __repr__(self) -> str:
        return (f"<Grid {self.shape[1]}x{self.shape[0]} @ {self.resolution:g} m crs={self.crs} "
                f"fields={list(self.fields)}>")


# ================================================================================ land cover
def load_landcover_table(path: str | os.PathLike | None = None) -> dict:
    """The land-cover class table: defaults, updated from a TOML or JSON file.

    Parameters
    ----------
    path : path-like, optional
        A table with the layout of ``twin/data/landcover/default.toml`` (``[classes.NAME]`` with
        ``code``, ``imperviousness``, ``manning_n``, ``ks_mm_per_h``, ``suction_head_mm``,
        ``porosity``, ``canopy_height_m``, ``water``; ``[aliases]``; ``default_class``).

    Returns
    -------
    dict
        ``{"classes": {name: {...}}, "aliases": {...}, "default_class": str, "building_class": str}``.
    """
    import tomllib

    table = tomllib.loads(_DEFAULT_TABLE.read_text())
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise TwinIOError(f"cannot read the land-cover table {p}: {exc}") from exc
        try:
            user = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise TwinValueError(f"land-cover table {p} is not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: "
                                 f"{exc}") from exc
        for name, values in user.get("classes", {}).items():
            base = dict(table["classes"].get(name, table["classes"][table["default_class"]]))
            if name not in table["classes"]:
                base["code"] = max(c["code"] for c in table["classes"].values()) + 1
            base.update(values)
            table["classes"][name] = base
        table["aliases"].update(user.get("aliases", {}))
        for k in ("default_class", "building_class"):
            table[k] = user.get(k, table[k])
    required = ("code", "imperviousness", "manning_n", "ks_mm_per_h", "suction_head_mm", "porosity",
                "canopy_height_m", "water")
    for name, c in table["classes"].items():
        missing = [k for k in required if k not in c]
        if missing:
            raise TwinValueError(f"land-cover class {name!r} lacks {missing}; add them to the table")
        if not 0.0 <= float(c["imperviousness"]) <= 1.0:
            raise TwinValueError(f"land-cover class {name!r}: imperviousness {c['imperviousness']} is outside 0..1")
    codes = [c["code"] for c in table["classes"].values()]
    if len(set(codes)) != len(codes):
        raise TwinValueError(f"land-cover class codes must be unique, got {codes}")
    for k in ("default_class", "building_class"):
        if table[k] not in table["classes"]:
            raise TwinValueError(f"{k} {table[k]!r} is not one of the classes {sorted(table['classes'])}")
    return table


def _class_name(value: Any, table: dict) -> str | None:
    key = str(value).strip()
    if key in table["classes"]:
        return key
    low = key.lower()
    for name in table["classes"]:
        if name.lower() == low:
            return name
    alias = {k.lower(): v for k, v in table["aliases"].items()}.get(low)
    return alias if alias in table["classes"] else None


def _burn_landcover(path, table: dict, class_column: str, crs: SceneCRS, transform: Affine,
                    shape: tuple[int, int], out: np.ndarray) -> None:
    import geopandas as gpd
    from rasterio import features

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError
        raise TwinIOError(f"cannot read the land-cover file {path}: {exc}") from exc
    if class_column not in gdf.columns:
        raise TwinValueError(f"land-cover file {path} has no column {class_column!r}; its columns are "
                             f"{[c for c in gdf.columns if c != 'geometry']}; pass class_column= (--class-column)")
    if gdf.crs is not None and not crs.is_local:
        gdf = gdf.to_crs(crs.horizontal)
    unknown = set()
    shapes = []
    for geom, value in zip(gdf.geometry, gdf[class_column]):
        name = _class_name(value, table)
        if name is None:
            unknown.add(str(value))
            continue
        if geom is not None and not geom.is_empty:
            shapes.append((geom, int(table["classes"][name]["code"])))
    if unknown:
        warnings.warn(f"land-cover values {sorted(unknown)[:10]} in {path} match no class; those polygons keep the "
                      f"default class {table['default_class']!r}; map them under [aliases] in a table",
                      TwinWarning, stacklevel=3)
    if shapes:
        features.rasterize(shapes, out_shape=shape, transform=transform, out=out, all_touched=False)


# ================================================================================ scene -> grid
def _bounds(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    rows, cols = shape
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (cols, rows)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _check_out(path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise TwinIOError(f"{path} exists; pass overwrite=True (or --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    return path


def _rio_crs(crs: SceneCRS):
    from rasterio.crs import CRS

    return None if crs.is_local else CRS.from_epsg(crs.horizontal_epsg)


def _crs_wkt(crs: SceneCRS) -> str:
    if crs.is_local:
        return ""
    import pyproj

    return pyproj.CRS.from_epsg(crs.horizontal_epsg).to_wkt()


def _triangles_uv(scene: "Scene", tri_index: np.ndarray, transform: Affine) -> tuple[np.ndarray, np.ndarray]:
    v = scene.vertices[scene.triangles[tri_index]]  # (m, 3, 3)
    uv = np.empty(v.shape[:2] + (2,))
    uv[..., 0] = (v[..., 0] - transform.c) / transform.a
    uv[..., 1] = (v[..., 1] - transform.f) / transform.e
    return uv, np.ascontiguousarray(v[..., 2])


def _feature_roots(scene: "Scene") -> tuple[np.ndarray, np.ndarray]:
    """Root feature id of each triangle and whether that root is on the buildings layer."""
    roots = scene.features["root"].to_numpy(np.int64)
    roots = np.where(roots >= 0, roots, np.arange(len(roots)))
    tri_root = roots[scene.triangle_feature] if scene.n_triangles else np.zeros(0, np.int64)
    layer = scene.features["layer"].to_numpy(dtype=object)
    return tri_root, layer


def building_footprints(scene: "Scene") -> tuple[np.ndarray, np.ndarray]:
    """Triangles that make up each building's footprint.

    GroundSurface triangles per building root (``features.root``); for a building without any,
    its downward-facing triangles (the bottom of a LoD1 solid); without those, all its triangles
    projected to 2-D.

    Returns
    -------
    triangle_index : ndarray of int64
        Rows of ``scene.triangles``.
    building : ndarray of int32
        Root feature id of each of those triangles.
    """
    if not scene.n_triangles:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    tri_root, layer = _feature_roots(scene)
    is_bldg = layer[tri_root] == "buildings"
    ground = is_bldg & (scene.triangle_surface_type == GROUND_SURFACE)
    has_ground = np.zeros(len(scene.features), bool)
    has_ground[tri_root[ground]] = True
    rest = is_bldg & ~has_ground[tri_root]
    pick = ground.copy()
    if rest.any():
        down = rest & (scene.triangle_normals()[:, 2] < -1e-6)
        has_down = np.zeros(len(scene.features), bool)
        has_down[tri_root[down]] = True
        pick |= down | (rest & ~has_down[tri_root])
    idx = np.flatnonzero(pick)
    return idx, tri_root[idx].astype(np.int32)


def _grid_frame(scene: "Scene", resolution: float, bounds) -> tuple[Affine, tuple[int, int]]:
    if not (isinstance(resolution, (int, float)) and math.isfinite(resolution) and resolution > 0):
        raise TwinValueError(f"resolution must be a positive number of metres, got {resolution!r}")
    if bounds is None:
        if getattr(scene, "terrain", None) is not None:
            bounds = scene.terrain.bounds
        else:
            bb = scene.bbox
            if any(np.isnan(bb)):
                raise TwinValueError("the scene is empty and has no terrain; pass bounds=(west, south, east, north)")
            bounds = (bb[0], bb[1], bb[3], bb[4])
    west, south, east, north = (float(b) for b in bounds)
    if not (east > west and north > south):
        raise TwinValueError(f"bounds must be (west, south, east, north) with east > west and north > south, got {bounds}")
    # snap outward to whole multiples of the resolution so grids of one scene line up
    west = math.floor(west / resolution) * resolution
    north = math.ceil(north / resolution) * resolution
    cols = max(1, math.ceil((east - west) / resolution - 1e-9))
    rows = max(1, math.ceil((north - south) / resolution - 1e-9))
    return Affine(resolution, 0.0, west, 0.0, -resolution, north), (rows, cols)


def _terrain_on_grid(scene: "Scene", transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    terrain = getattr(scene, "terrain", None)
    if terrain is None:
        terrain = approximate_terrain(scene, resolution=transform.a, bounds=_bounds(transform, shape))
    return resample_to(terrain, transform, shape, scene.crs)


def resample_to(terrain: TerrainRaster, transform: Affine, shape: tuple[int, int], crs: SceneCRS) -> np.ndarray:
    """Terrain heights at the cell centres of a grid (bilinear; exact copy on an aligned grid)."""
    rows, cols = shape
    tr = terrain.transform
    same_crs = terrain.crs.horizontal == crs.horizontal or crs.is_local or terrain.crs.is_local
    if same_crs and tr.a == transform.a and tr.e == transform.e:
        off_c = (transform.c - tr.c) / tr.a
        off_r = (transform.f - tr.f) / tr.e
        if off_c == round(off_c) and off_r == round(off_r):
            out = np.full(shape, np.nan, np.float32)
            oc, orow = int(round(off_c)), int(round(off_r))
            tr_rows, tr_cols = terrain.shape
            r0, r1 = max(0, -orow), min(rows, tr_rows - orow)
            c0, c1 = max(0, -oc), min(cols, tr_cols - oc)
            if r1 > r0 and c1 > c0:
                out[r0:r1, c0:c1] = terrain.data[r0 + orow:r1 + orow, c0 + oc:c1 + oc]
            return out
    if same_crs:
        xs = transform.c + (np.arange(cols) + 0.5) * transform.a
        ys = transform.f + (np.arange(rows) + 0.5) * transform.e
        out = np.empty(shape, np.float32)
        for r in range(rows):  # row by row keeps memory flat for big grids
            out[r] = terrain.sample(xs, np.full(cols, ys[r]))
        return out
    from rasterio.warp import Resampling, reproject

    out = np.full(shape, np.nan, np.float32)
    reproject(terrain.data, out, src_transform=terrain.transform, src_crs=_rio_crs(terrain.crs), src_nodata=np.nan,
              dst_transform=transform, dst_crs=_rio_crs(crs), dst_nodata=np.nan, resampling=Resampling.bilinear)
    return out


def approximate_terrain(scene: "Scene", *, resolution: float = 1.0, margin: float = 0.0, bounds=None,
                        warn: bool = True) -> TerrainRaster:
    """Terrain from the scene itself: its TIN relief, else interpolated building ground heights.

    Parameters
    ----------
    scene : Scene
    resolution : float
        Cell size in metres.
    margin : float
        Metres added around the scene's extent.
    bounds : (west, south, east, north), optional
        Extent instead of the scene's bounding box plus ``margin``.
    warn : bool
        Warn (:class:`TwinWarning`) when the terrain is interpolated from building ground points.

    Returns
    -------
    TerrainRaster
        ``metadata["method"]`` is ``"tin"`` (TINRelief triangles rasterised at cell centres,
        cells outside the TIN are NaN) or ``"interpolated"`` (inverse-distance weighting of the
        buildings' GroundSurface vertices and of TerrainIntersectionCurve points where the scene has
        them, Shepard 1968, power 2).
    """
    from twin._grid_kernels import burn_triangles, idw_points

    bb = scene.bbox
    if any(np.isnan(bb)):
        raise TwinValueError("cannot derive terrain from an empty scene; pass a DEM (--terrain)")
    if bounds is None:
        bounds = (bb[0] - margin, bb[1] - margin, bb[3] + margin, bb[4] + margin)
    transform, shape = _grid_frame(scene, resolution, bounds)
    tri_root, layer = _feature_roots(scene)
    relief = np.flatnonzero(layer[tri_root] == "terrain") if scene.n_triangles else np.zeros(0, np.int64)
    if len(relief):
        uv, z = _triangles_uv(scene, relief, transform)
        ids = np.zeros(shape, np.int32)
        zbuf = np.full(shape, -np.inf)
        burn_triangles(uv, z, np.ones(len(relief), np.int32), True, ids, zbuf)
        data = np.where(np.isfinite(zbuf), zbuf, np.nan).astype(np.float32)
        return TerrainRaster(data, transform, scene.crs, {"method": "tin", "triangles": int(len(relief))})
    idx, _ = building_footprints(scene)
    pts = scene.vertices[np.unique(scene.triangles[idx])] if len(idx) else np.zeros((0, 3))
    tic = scene.terrain_intersection
    if len(tic):
        pts = np.vstack([pts, tic[["x", "y", "z"]].to_numpy(np.float64)])
    if not len(pts):
        raise TwinValueError("the scene has no terrain: no DEM, no TINRelief and no building ground points; "
                             "pass a DEM with --terrain (attach_terrain)")
    if warn:
        warnings.warn(f"no terrain raster and no TINRelief: an approximate terrain was interpolated from "
                      f"{len(pts)} building ground points; heights between buildings are guesses, pass a DEM "
                      "(--terrain) for real terrain", TwinWarning, stacklevel=2)
    # interpolate on a coarse grid (<= 256 x 256) and sample bilinearly: the ground points are
    # metres apart, a finer IDW adds cost but no information
    rows, cols = shape
    step = max(1, math.ceil(max(rows, cols) / 256))
    cr, cc = math.ceil(rows / step), math.ceil(cols / step)
    ctr = Affine(transform.a * step, 0, transform.c, 0, transform.e * step, transform.f)
    gx = ctr.c + (np.arange(cc) + 0.5) * ctr.a
    gy = ctr.f + (np.arange(cr) + 0.5) * ctr.e
    GX, GY = np.meshgrid(gx, gy)
    out = np.empty(GX.size)
    idw_points(pts[:, 0].copy(), pts[:, 1].copy(), pts[:, 2].copy(), GX.ravel(), GY.ravel(), 2.0, out)
    coarse = TerrainRaster(out.reshape(cr, cc), ctr, scene.crs)
    data = resample_to(coarse, transform, shape, scene.crs) if step > 1 else coarse.data
    return TerrainRaster(data, transform, scene.crs, {"method": "interpolated", "points": int(len(pts))})


def scene_to_grid(scene: "Scene", resolution: float, *, bounds=None, landcover: str | os.PathLike | None = None,
                  landcover_table: str | os.PathLike | Mapping | None = None, class_column: str = "class") -> Grid:
    """Burn a scene into a simulation grid (``Scene.to_grid``).

    Parameters
    ----------
    scene : Scene
        With ``scene.terrain`` set (see :func:`twin.terrain.attach_terrain`); without it an
        approximate terrain is interpolated from the buildings, with a :class:`TwinWarning`.
    resolution : float
        Cell size in metres.
    bounds : (west, south, east, north), optional
        Extent in scene CRS metres, snapped outward to multiples of ``resolution``. Default: the
        terrain's extent, else the scene's bounding box.
    landcover : path-like, optional
        GeoPackage/GeoJSON/Shapefile with polygons and a class column; reprojected to the scene CRS.
        Without it every cell not under a building is the table's ``default_class`` (grass).
    landcover_table : path-like or dict, optional
        Class table (TOML/JSON, layout of ``twin/data/landcover/default.toml``) or the dict
        :func:`load_landcover_table` returns.
    class_column : str
        Column of ``landcover`` holding the class names.

    Returns
    -------
    Grid
        Fields: see :data:`FIELDS`. Buildings are sealed (``building_class``) whatever the land
        cover says; water cells from the land cover or from water-layer features set ``water_mask``.
    """
    from twin._grid_kernels import burn_triangles

    table = landcover_table if isinstance(landcover_table, Mapping) else load_landcover_table(landcover_table)
    transform, shape = _grid_frame(scene, resolution, bounds)
    terrain = _terrain_on_grid(scene, transform, shape)

    # buildings: footprint (id), then a z-buffer of all building triangles inside the footprint
    idx, bid = building_footprints(scene)
    building_id = np.full(shape, -1, np.int32)
    dummy_z = np.empty((1, 1))
    if len(idx):
        uv, z = _triangles_uv(scene, idx, transform)
        burn_triangles(uv, z, bid, False, building_id, dummy_z)
    tri_root, layer = _feature_roots(scene)
    building_top = np.full(shape, -np.inf)
    top_id = np.full(shape, -1, np.int32)
    bldg_tris = np.flatnonzero(layer[tri_root] == "buildings") if scene.n_triangles else np.zeros(0, np.int64)
    if len(bldg_tris):
        uv, z = _triangles_uv(scene, bldg_tris, transform)
        burn_triangles(uv, z, tri_root[bldg_tris].astype(np.int32), True, top_id, building_top)
    in_bldg = building_id >= 0
    # a footprint cell no roof triangle reaches (e.g. a ground-only feature) takes the building's max z
    missing = in_bldg & ~np.isfinite(building_top)
    if missing.any() and len(bldg_tris):
        zmax = np.full(len(scene.features), -np.inf)
        np.maximum.at(zmax, tri_root[bldg_tris], scene.vertices[scene.triangles[bldg_tris]][..., 2].max(axis=1))
        building_top[missing] = zmax[building_id[missing]]
    building_height = np.where(in_bldg, np.maximum(building_top - terrain, 0.0), 0.0).astype(np.float32)
    building_height[in_bldg & np.isnan(terrain)] = np.nan

    # land cover
    codes = {c["code"]: name for name, c in table["classes"].items()}
    landcover_code = np.full(shape, table["classes"][table["default_class"]]["code"], np.int32)
    if landcover is not None:
        _burn_landcover(landcover, table, class_column, scene.crs, transform, shape, landcover_code)
    landcover_code[in_bldg] = table["classes"][table["building_class"]]["code"]
    lut_codes = np.array(sorted(codes))
    pos = np.searchsorted(lut_codes, landcover_code)

    def lut(key: str) -> np.ndarray:
        vals = np.array([float(table["classes"][codes[c]][key]) for c in lut_codes])
        return vals[pos].astype(np.float32)

    # vegetation and water features of the scene
    canopy = lut("canopy_height_m")
    veg = np.flatnonzero(layer[tri_root] == "vegetation") if scene.n_triangles else np.zeros(0, np.int64)
    if len(veg):
        vtop = np.full(shape, -np.inf)
        uv, z = _triangles_uv(scene, veg, transform)
        burn_triangles(uv, z, np.ones(len(veg), np.int32), True, np.zeros(shape, np.int32), vtop)
        has = np.isfinite(vtop) & ~in_bldg
        canopy[has] = np.maximum(vtop[has] - terrain[has], 0.0)
    canopy[in_bldg] = 0.0
    water = lut("water").astype(np.int32)
    wat = np.flatnonzero(layer[tri_root] == "water") if scene.n_triangles else np.zeros(0, np.int64)
    if len(wat):
        wmask = np.zeros(shape, np.int32)
        uv, z = _triangles_uv(scene, wat, transform)
        burn_triangles(uv, z, np.ones(len(wat), np.int32), False, wmask, dummy_z)
        water[(wmask > 0) & ~in_bldg] = 1

    dsm = (terrain + np.maximum(building_height, canopy)).astype(np.float32)
    grid = Grid(transform, scene.crs, shape, attrs={
        "landcover_classes": {str(c): codes[c] for c in lut_codes},
        "terrain_source": (scene.terrain.metadata.get("method", "raster")
                           if getattr(scene, "terrain", None) is not None else "interpolated"),
        "burn_rule": "cell centre inside polygon",
    })
    values = {"terrain_elevation": terrain, "building_id": building_id, "building_height": building_height,
              "dsm": dsm, "imperviousness": lut("imperviousness"), "landcover": landcover_code,
              "manning_n": lut("manning_n"), "ks_mm_per_h": lut("ks_mm_per_h"),
              "suction_head_mm": lut("suction_head_mm"), "porosity": lut("porosity"),
              "tree_canopy_height": canopy, "water_mask": water}
    for name, arr in values.items():
        grid.add_field(name, np.asarray(arr).astype(FIELDS[name][0]), units=FIELDS[name][1])
    return grid
