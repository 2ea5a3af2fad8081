"""Heavy-rain screening: sinks (Senken), flow paths (Fliesswege) and building exposure in seconds.

The instant tier beside the dynamic model. On the terrain with buildings as obstacles it computes

- the depression-filled surface (Priority-Flood, Barnes, Lehman & Mulla 2014; the epsilon variant
  gives drainable flats),
- the depression hierarchy (every sink with area, volume, max depth, spill point, overflow target
  and the rain depth over its own catchment that fills it) and Fill-Spill-Merge (Barnes, Callaghan &
  Wickert 2021): the ponded water after a uniform rain of a given depth, without a dynamic run,
- D8 and D-infinity (Tarboton 1997) flow directions and flow accumulation (upstream area), and a
  flow-path map classified by upstream area,
- a building exposure table (max depth along each outline, largest flow path reaching it, the sink
  it lies in, an exposure class).

Buildings are obstacles: building cells are raised to the top of their building (terrain +
``building_height``, the maximum over the footprint, so roofs hold no water) and rain on roofs runs
off to the ground around them. NaN cells are outside the domain; water reaching them or the grid
border leaves the domain.

Defaults (ours, not a norm; every one is a keyword argument):

- :data:`FLOW_PATH_CLASSES_M2` = (200, 1 000, 10 000, 100 000) m2 upstream area: flow paths start
  at 200 m2 (0.02 ha); classes 1..4 = 0.02-0.1 ha, 0.1-1 ha, 1-10 ha, >= 10 ha (the graded
  catchment-size classes of German Starkregen flow-path maps).
- :class:`ExposureThresholds`: depth along the outline >= 0.10 m (a door sill / basement window
  sill) is medium, >= 0.30 m high; a flow path of >= 1 ha reaching the outline is at least medium,
  >= 10 ha high. Otherwise low.
- ``min_sink_volume_m3`` = 1 m3: smaller sinks (DEM noise) stay in the hierarchy table but are not
  written as sink polygons.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from twin.errors import TwinIOError, TwinValueError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas
    import pandas

    from twin.grid import Grid

__all__ = ["FLOW_PATH_CLASSES_M2", "ExposureThresholds", "DepressionHierarchy", "FillSpillMergeResult",
           "ScreeningResult", "fill_depressions", "depression_hierarchy", "flow_directions", "flow_accumulation",
           "flow_path_classes", "flow_paths", "building_exposure", "screening_surface", "read_run_max_depth",
           "screen"]

#: Lower bounds (m2 upstream area) of the flow-path classes 1..n; below the first, no flow path.
FLOW_PATH_CLASSES_M2: tuple[float, ...] = (200.0, 1_000.0, 10_000.0, 100_000.0)

D8_OUTLET = -1  # D8 code of a cell draining out of the domain
D8_CODES = "0..7 = N, NE, E, SE, S, SW, W, NW; -1 drains out of the domain; -2 pit; -3 outside (NaN)"


@dataclass(frozen=True)
class ExposureThresholds:
    """Thresholds of the building exposure class (low / medium / high); see the module docstring."""

    depth_medium_m: float = 0.10
    depth_high_m: float = 0.30
    flow_area_medium_m2: float = 10_000.0
    flow_area_high_m2: float = 100_000.0

    def __post_init__(self) -> None:
        if not (0 <= self.depth_medium_m <= self.depth_high_m):
            raise TwinValueError(f"exposure depth thresholds must satisfy 0 <= medium <= high, got "
                                 f"{self.depth_medium_m} and {self.depth_high_m} m")
        if not (0 <= self.flow_area_medium_m2 <= self.flow_area_high_m2):
            raise TwinValueError(f"exposure flow-area thresholds must satisfy 0 <= medium <= high, got "
                                 f"{self.flow_area_medium_m2} and {self.flow_area_high_m2} m2")


def _kernels():
    from twin.sim.heavyrain import _screening_kernels

    return _screening_kernels


def _as_dem(dem) -> np.ndarray:
    z = np.asarray(dem)
    if z.ndim != 2 or z.size == 0:
        raise TwinValueError(f"the DEM must be a non-empty 2-D array (rows, cols), got shape {z.shape}")
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    return np.ascontiguousarray(z, dtype=np.float64)


def _check_cell(cell_size: float) -> float:
    if not (np.isfinite(cell_size) and cell_size > 0):
        raise TwinValueError(f"cell_size must be a positive number of metres, got {cell_size!r}")
    return float(cell_size)


# ================================================================================ fill
def fill_depressions(dem, *, epsilon: bool = False) -> np.ndarray:
    """Fill every depression to its spill elevation (Priority-Flood, Barnes et al. 2014).

    Parameters
    ----------
    dem : array_like, shape (rows, cols)
        Elevations in metres; NaN cells are outside the domain (water leaves there and at the border).
    epsilon : bool
        Priority-Flood+epsilon: filled cells rise by one float64 ulp per cell away from the spill
        point, so every cell has a strictly lower neighbour (drainable flats).

    Returns
    -------
    ndarray of float64
        Filled elevations (>= ``dem``), NaN where ``dem`` is NaN.
    """
    z = _as_dem(dem)
    out = np.empty(z.size, np.float64)
    _kernels().priority_flood_fill(z.ravel(), z.shape[0], z.shape[1], bool(epsilon), out)
    return out.reshape(z.shape)


# ================================================================================ hierarchy
@dataclass(frozen=True)
class FillSpillMergeResult:
    """Ponded water after a uniform rain (Fill-Spill-Merge).

    Attributes
    ----------
    rain_mm : float
    depth : ndarray of float64
        Ponded water depth per cell (m).
    rain_m3, ponded_m3, outflow_m3 : float
        Rain on the domain, water held in sinks, water that left the domain; ponded + outflow = rain
        to float64 round-off.
    node_stored_m3 : ndarray of float64
        Water held per depression node (pool representatives).
    node_full : ndarray of bool
    """

    rain_mm: float
    depth: np.ndarray
    rain_m3: float
    ponded_m3: float
    outflow_m3: float
    node_stored_m3: np.ndarray
    node_full: np.ndarray

    @property
    def volume_error(self) -> float:
        """(ponded + outflow - rain) / rain; 0 for no rain."""
        return (self.ponded_m3 + self.outflow_m3 - self.rain_m3) / self.rain_m3 if self.rain_m3 else 0.0


@dataclass(eq=False)
class DepressionHierarchy:
    """Depressions of a DEM as a tree (Barnes et al. 2021); build it with :func:`depression_hierarchy`.

    Node 0 is the outside of the domain; nodes 1.. are leaf depressions (one per pit basin) and
    meta-depressions (two neighbours merged above their common saddle), a parent always having a
    larger id than its children.

    Attributes
    ----------
    dem : ndarray of float64
    cell_size : float
    label : ndarray of int32
        Leaf basin of every cell (0: drains straight out of the domain, -1: NaN).
    parent, child1, child2, overflow_leaf, spill_cell, area_cells : ndarray of int64
    spill_z, volume_cells, min_z : ndarray of float64
        ``volume_cells`` in m * cells (times cell area = m3).
    """

    dem: np.ndarray
    cell_size: float
    label: np.ndarray
    parent: np.ndarray
    child1: np.ndarray
    child2: np.ndarray
    spill_z: np.ndarray
    spill_cell: np.ndarray
    overflow_leaf: np.ndarray
    volume_cells: np.ndarray
    area_cells: np.ndarray
    min_z: np.ndarray
    _root: np.ndarray = field(repr=False)
    _catchment: np.ndarray = field(repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    @property
    def cell_area(self) -> float:
        return self.cell_size * self.cell_size

    @property
    def root(self) -> np.ndarray:
        """Top-level depression of every node."""
        return self._root

    def top_level_id(self) -> np.ndarray:
        """Top-level sink id of every cell whose filled depth is > 0, else 0 (int32)."""
        flat = self.label.ravel()
        out = np.zeros(flat.size, np.int32)
        inside = np.flatnonzero(flat > 0)
        roots = self._root[flat[inside]]
        wet = self.dem.ravel()[inside] < self.spill_z[roots]
        out[inside[wet]] = roots[wet]
        out = out.reshape(self.label.shape)
        return out

    def filled(self) -> np.ndarray:
        """The depression-filled DEM (equals :func:`fill_depressions` without epsilon)."""
        out = np.empty(self.dem.size)
        _kernels().filled_from_hierarchy(self.dem.ravel(), self.label.ravel(), self.spill_z, self._root, out)
        return out.reshape(self.dem.shape)

    def filled_depth(self) -> np.ndarray:
        """Depth of the filled sinks (m): filled DEM minus DEM, 0 outside sinks, NaN outside the domain."""
        return self.filled() - self.dem

    def table(self, transform=None) -> "pandas.DataFrame":
        """One row per depression (node 0, the outside, excluded).

        Columns: ``sink_id``, ``parent`` (-1 top level), ``children`` count, ``leaf``, ``top_level``,
        ``area_m2`` (cells below the spill elevation), ``volume_m3``, ``max_depth_m``,
        ``spill_elevation_m``, ``spill_row``/``spill_col`` (and ``spill_x``/``spill_y`` with a
        ``transform``), ``overflows_into`` (the leaf sink whose basin takes the overflow, -1: out of
        the domain), ``catchment_m2`` (cells draining into it, its nested sinks' included) and
        ``fill_rain_mm`` (volume / catchment: the uniform rain that fills it from its own catchment,
        i.e. without water overflowing from upstream sinks, so an upper bound).
        """
        import pandas as pd

        ids = np.arange(1, self.n_nodes)
        cols = self.dem.shape[1]
        a = self.cell_area
        vol = self.volume_cells[ids] * a
        catch = self._catchment[ids] * a
        nchild = (self.child1[ids] >= 0).astype(np.int64) + (self.child2[ids] >= 0)
        cell = self.spill_cell[ids]
        df = pd.DataFrame({
            "sink_id": ids, "parent": self.parent[ids], "children": nchild, "leaf": nchild == 0,
            "top_level": self.parent[ids] < 0, "area_m2": self.area_cells[ids] * a, "volume_m3": vol,
            "max_depth_m": self.spill_z[ids] - self.min_z[ids], "spill_elevation_m": self.spill_z[ids],
            "spill_row": cell // cols, "spill_col": cell % cols,
            "overflows_into": np.where(self.overflow_leaf[ids] > 0, self.overflow_leaf[ids], -1),
            "catchment_m2": catch,
            "fill_rain_mm": np.where(catch > 0, vol / np.where(catch > 0, catch, 1.0) * 1000.0, np.inf),
        })
        if transform is not None:
            df["spill_x"] = transform.c + (df["spill_col"] + 0.5) * transform.a
            df["spill_y"] = transform.f + (df["spill_row"] + 0.5) * transform.e
        return df

    def fill_spill_merge(self, rain_mm: float) -> FillSpillMergeResult:
        """Ponded water after ``rain_mm`` of uniform rain on every domain cell (Barnes et al. 2021).

        Each cell's rain runs to the pit of its basin; sinks fill to their spill elevation, the
        excess crosses the saddle into the neighbouring basin, and neighbours that are both full
        merge into one lake. No time, infiltration or drainage: the end state of an instantaneous
        event of that depth.
        """
        if not (np.isfinite(rain_mm) and rain_mm >= 0):
            raise TwinValueError(f"rain_mm must be a non-negative number of millimetres, got {rain_mm!r}")
        k = _kernels()
        m = self.n_nodes
        lab = self.label.ravel()
        per_leaf = np.bincount(lab[lab >= 0], minlength=m).astype(np.float64)
        rain_cells = rain_mm / 1000.0  # m * cells
        inflow = per_leaf * rain_cells
        direct_out = inflow[0]
        inflow[0] = 0.0
        stored = np.zeros(m)
        pool = np.zeros(m, np.int64)
        full = np.zeros(m, np.uint8)
        out = k.fill_spill_merge(self.parent, self.child1, self.child2, self.overflow_leaf, self.volume_cells, m,
                                 inflow, stored, pool, full)
        level = np.empty(m)
        z = self.dem.ravel()
        rep = k.water_levels(z, lab, pool, stored, full, self.spill_z, m, 1.0, level)
        depth = np.empty(z.size)
        k.depth_from_levels(z, rep, level, depth)
        depth = depth.reshape(self.dem.shape)
        depth[np.isnan(self.dem)] = np.nan
        a = self.cell_area
        valid = int((lab >= 0).sum())
        return FillSpillMergeResult(float(rain_mm), depth, rain_mm / 1000.0 * valid * a,
                                    float(np.nansum(depth)) * a, (out + direct_out) * a, stored * a, full.astype(bool))


def depression_hierarchy(dem, *, cell_size: float = 1.0) -> DepressionHierarchy:
    """Build the depression hierarchy of a DEM (Barnes, Callaghan & Wickert 2021).

    Parameters
    ----------
    dem : array_like, shape (rows, cols)
        Elevations in metres, NaN outside the domain.
    cell_size : float
        Square cell size in metres (areas and volumes scale with its square).
    """
    k = _kernels()
    z = _as_dem(dem)
    cell = _check_cell(cell_size)
    rows, cols = z.shape
    flat = z.ravel()
    m = 2 * int(k.count_pits(flat, rows, cols)) + 2
    label = np.empty(z.size, np.int32)
    parent, child1, child2 = (np.empty(m, np.int64) for _ in range(3))
    spill_z, volume, min_z = (np.empty(m) for _ in range(3))
    spill_cell, overflow_leaf, area = (np.empty(m, np.int64) for _ in range(3))
    used = k.depression_hierarchy(flat, rows, cols, label, parent, child1, child2, spill_z, spill_cell,
                                  overflow_leaf, volume, area, min_z)
    arrays = [a[:used].copy() for a in (parent, child1, child2, spill_z, spill_cell, overflow_leaf, volume, area,
                                        min_z)]
    parent, child1, child2, spill_z, spill_cell, overflow_leaf, volume, area, min_z = arrays
    root = np.empty(used, np.int64)
    k.subtree_roots(parent, used, root)
    catchment = np.bincount(label[label >= 0], minlength=used).astype(np.int64)
    for x in range(1, used):  # children before parents: ids grow towards the root
        if parent[x] >= 0:
            catchment[parent[x]] += catchment[x]
    return DepressionHierarchy(z, cell, label.reshape(z.shape), parent, child1, child2, spill_z, spill_cell,
                               overflow_leaf, volume, area, min_z, root, catchment)


# ================================================================================ flow
def flow_directions(dem, *, cell_size: float = 1.0, routing: str = "d8", condition: bool = True):
    """Flow directions on the (epsilon-filled) DEM.

    Parameters
    ----------
    dem : array_like, shape (rows, cols)
    cell_size : float
        Square cell size in metres.
    routing : {"d8", "dinf"}
    condition : bool
        Fill depressions with Priority-Flood+epsilon first, so every cell drains (default). Pass
        False for a DEM that is already conditioned.

    Returns
    -------
    d8 : ndarray of int8
        See :data:`D8_CODES`.
    dinf : (angle, recv1, recv2, frac1)
        Angle in radians counter-clockwise from east (Tarboton 1997), -1 without a downslope facet;
        the two receiving cells (flat indices, -1 none) and the share going to the first.
    """
    k = _kernels()
    z = fill_depressions(dem, epsilon=True) if condition else _as_dem(dem)
    cell = _check_cell(cell_size)
    if routing == "d8":
        out = np.empty(z.shape, np.int8)
        k.d8_directions(z, cell, cell, out)
        return out
    if routing == "dinf":
        angle = np.empty(z.shape)
        r1 = np.empty(z.shape, np.int64)
        r2 = np.empty(z.shape, np.int64)
        f1 = np.empty(z.shape)
        k.dinf_directions(z, cell, angle, r1, r2, f1)
        return angle, r1, r2, f1
    raise TwinValueError(f"unknown routing {routing!r}; use 'd8' or 'dinf'")


def flow_accumulation(dem=None, *, cell_size: float = 1.0, routing: str = "d8", condition: bool = True,
                      directions=None) -> np.ndarray:
    """Upstream area (m2) of every cell, itself included; NaN outside the domain.

    Parameters
    ----------
    dem : array_like, optional
        Elevations; not needed when ``directions`` are given.
    routing : {"d8", "dinf"}
    directions : optional
        The output of :func:`flow_directions` for ``routing``.
    """
    k = _kernels()
    cell = _check_cell(cell_size)
    if directions is None:
        if dem is None:
            raise TwinValueError("pass a dem or its directions")
        directions = flow_directions(dem, cell_size=cell, routing=routing, condition=condition)
    if routing == "d8":
        d = np.ascontiguousarray(directions, dtype=np.int8)
        w = np.where(d == -3, 0.0, cell * cell)
        out = np.empty(d.shape)
        k.d8_accumulation(d, w, out)
        out[d == -3] = np.nan
        return out
    if routing == "dinf":
        angle, r1, r2, f1 = directions
        w = np.where(np.isnan(angle), 0.0, cell * cell)
        out = np.empty(angle.shape)
        k.dinf_accumulation(r1, r2, f1, w, out)
        out[np.isnan(angle)] = np.nan
        return out
    raise TwinValueError(f"unknown routing {routing!r}; use 'd8' or 'dinf'")


def flow_path_classes(upstream_area_m2, classes: Sequence[float] = FLOW_PATH_CLASSES_M2) -> np.ndarray:
    """Flow-path class per cell: 1..len(classes) by upstream area (m2), 0 below the first bound."""
    bounds = np.asarray(classes, np.float64)
    if bounds.ndim != 1 or len(bounds) == 0 or np.any(np.diff(bounds) <= 0) or bounds[0] <= 0:
        raise TwinValueError(f"flow-path classes must be increasing positive areas in m2, got {list(classes)}")
    a = np.asarray(upstream_area_m2)
    return np.searchsorted(bounds, np.nan_to_num(a, nan=0.0), side="right").astype(np.int8)


def flow_paths(directions: np.ndarray, upstream_area_m2: np.ndarray, transform, *, crs=None,
               classes: Sequence[float] = FLOW_PATH_CLASSES_M2) -> "geopandas.GeoDataFrame":
    """D8 flow paths as polylines through cell centres, one per reach, classified by upstream area.

    A reach runs from a head, confluence or class change to the next one. Columns: ``flow_class``
    (1..n), ``class_min_m2``, ``upstream_area_m2`` (at its downstream end), ``cells``.
    """
    import geopandas as gpd
    import shapely

    k = _kernels()
    cls = flow_path_classes(upstream_area_m2, classes).astype(np.int8) - 1
    n = int((cls >= 0).sum())
    vert = np.empty(2 * n + 1, np.int64)
    offsets = np.empty(n + 1, np.int64)
    nr = k.flow_path_reaches(np.ascontiguousarray(directions, dtype=np.int8), cls, vert, offsets)
    cols = directions.shape[1]
    v = vert[:offsets[nr]]
    rr, cc = v // cols, v % cols
    xy = np.column_stack([transform.c + (cc + 0.5) * transform.a, transform.f + (rr + 0.5) * transform.e])
    lengths = np.diff(offsets[:nr + 1])
    keep = lengths >= 2  # a lone cell draining straight out of the domain makes no line
    vkeep = np.repeat(keep, lengths)
    idx = np.repeat(np.arange(int(keep.sum())), lengths[keep])
    geoms = shapely.linestrings(xy[vkeep], indices=idx) if keep.any() else np.array([], dtype=object)
    first = v[offsets[:nr]]
    last = v[offsets[1:nr + 1] - 1]
    area = np.asarray(upstream_area_m2).ravel()
    fc = cls.ravel()[first] + 1
    bounds = np.asarray(classes, np.float64)
    gdf = gpd.GeoDataFrame({"flow_class": fc[keep].astype(np.int64), "class_min_m2": bounds[fc[keep] - 1],
                            "upstream_area_m2": area[last][keep], "cells": lengths[keep]},
                           geometry=np.asarray(geoms) if keep.any() else [], crs=_gpd_crs(crs))
    return gdf


# ================================================================================ grid inputs
def screening_surface(grid: "Grid") -> np.ndarray:
    """Terrain with buildings as obstacles (float64): building cells raised to their building's top.

    Every cell of a building takes the maximum of terrain + ``building_height`` over its footprint
    (so roofs are flat blocks that shed water); a building without a valid height is raised by
    10 m (``_MISSING_BUILDING_HEIGHT_M``), enough to be an obstacle in any street flood.
    """
    z = np.asarray(grid["terrain_elevation"], np.float64).copy()
    if "building_id" not in grid:
        return z
    bid = np.asarray(grid["building_id"])
    inb = bid >= 0
    if not inb.any():
        return z
    h = np.asarray(grid["building_height"], np.float64) if "building_height" in grid else np.zeros(z.shape)
    h = np.where(np.isfinite(h) & (h > 0), h, _MISSING_BUILDING_HEIGHT_M)
    top = np.full(int(bid.max()) + 1, -np.inf)
    np.maximum.at(top, bid[inb], (z + h)[inb])
    bad = ~np.isfinite(top)
    top[bad] = np.nan
    z[inb] = top[bid[inb]]
    return z


_MISSING_BUILDING_HEIGHT_M = 10.0


def read_run_max_depth(run_dir: str | os.PathLike, grid: "Grid") -> np.ndarray:
    """``max_depth`` of a dynamic run (``RUN_DIR/result.nc``) on ``grid``'s cells (nearest cell centre).

    Raises
    ------
    TwinIOError
        When the run folder has no readable ``result.nc`` with a ``max_depth`` (y, x) variable.
    """
    import xarray as xr

    path = Path(run_dir) / "result.nc"
    if not path.exists():
        raise TwinIOError(f"{run_dir} has no result.nc; pass the folder of a finished `twin sim heavyrain` run")
    try:
        with xr.open_dataset(path) as ds:
            if "max_depth" not in ds:
                raise TwinIOError(f"{path} has no max_depth variable (it has {list(ds.data_vars)})")
            da = ds["max_depth"].load()
    except (OSError, ValueError) as exc:
        raise TwinIOError(f"cannot read {path}: {exc}") from exc
    if set(da.dims) != {"y", "x"}:
        raise TwinIOError(f"{path}: max_depth has dims {da.dims}, expected (y, x)")
    da = da.transpose("y", "x")
    rx, ry = da["x"].values.astype(np.float64), da["y"].values.astype(np.float64)
    gx, gy = grid.cell_centres()
    if len(rx) == len(gx) and len(ry) == len(gy) and np.allclose(rx, gx) and np.allclose(ry, gy):
        return np.asarray(da.values, np.float64)

    def nearest(src, dst):
        order = np.argsort(src)
        s = src[order]
        pos = np.clip(np.searchsorted(s, dst), 1, len(s) - 1) if len(s) > 1 else np.zeros(len(dst), int)
        if len(s) > 1:
            pos = np.where(np.abs(dst - s[pos - 1]) <= np.abs(dst - s[pos]), pos - 1, pos)
        step = np.abs(np.diff(s)).max() if len(s) > 1 else np.inf
        ok = np.abs(s[pos] - dst) <= 0.5 * step + 1e-9
        return order[pos], ok

    ix, okx = nearest(rx, gx)
    iy, oky = nearest(ry, gy)
    out = np.asarray(da.values, np.float64)[np.ix_(iy, ix)]
    out[~oky, :] = np.nan
    out[:, ~okx] = np.nan
    return out


def building_exposure(grid: "Grid", *, depth: np.ndarray, upstream_area_m2: np.ndarray, sink_id: np.ndarray,
                      thresholds: ExposureThresholds = ExposureThresholds(), depth_source: str = "",
                      names: "pandas.Series | None" = None,
                      flow_classes: Sequence[float] = FLOW_PATH_CLASSES_M2) -> "geopandas.GeoDataFrame":
    """Exposure of every building of ``grid`` (``building_id`` >= 0).

    Per building, over its outline (the non-building cells 8-adjacent to its footprint): the max
    water ``depth`` (m), the largest ``upstream_area_m2`` (the largest flow path reaching it) and its
    class, the top-level sink of the deepest outline cell (``sink_id``, -1 none), and the exposure
    class from ``thresholds``. Geometry: the footprint cells as polygons (the footprint the
    analysis used). ``names`` maps building ids to gml_ids.
    """
    import geopandas as gpd
    import pandas as pd

    bid = np.ascontiguousarray(grid["building_id"], dtype=np.int32) if "building_id" in grid \
        else np.full(grid.shape, -1, np.int32)
    ids = np.unique(bid[bid >= 0])
    crs = _gpd_crs(grid.crs)
    cols = ["building_id", "gml_id", "footprint_m2", "max_depth_m", "depth_source", "max_upstream_area_m2",
            "flow_class", "sink_id", "exposure"]
    if not len(ids):
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=crs)
    nb = int(ids.max()) + 1
    md, ma = np.empty(nb), np.empty(nb)
    ms = np.empty(nb, np.int64)
    _kernels().building_outline_stats(bid, np.ascontiguousarray(depth, np.float64),
                                      np.ascontiguousarray(upstream_area_m2, np.float64),
                                      np.ascontiguousarray(sink_id, np.int64), nb, md, ma, ms)
    d = np.where(np.isfinite(md[ids]), md[ids], np.nan)
    a = np.where(np.isfinite(ma[ids]), ma[ids], np.nan)
    level = np.zeros(len(ids), np.int8)
    level = np.maximum(level, np.where(d >= thresholds.depth_medium_m, 1, 0))
    level = np.maximum(level, np.where(d >= thresholds.depth_high_m, 2, 0))
    level = np.maximum(level, np.where(a >= thresholds.flow_area_medium_m2, 1, 0))
    level = np.maximum(level, np.where(a >= thresholds.flow_area_high_m2, 2, 0))
    footprint = np.bincount(bid[bid >= 0], minlength=nb)[ids] * grid.resolution ** 2
    gml = (names.reindex(ids).astype(object).to_numpy() if names is not None else np.full(len(ids), None, object))
    df = pd.DataFrame({"building_id": ids.astype(np.int64), "gml_id": gml, "footprint_m2": footprint,
                       "max_depth_m": d, "depth_source": depth_source, "max_upstream_area_m2": a,
                       "flow_class": flow_path_classes(a, flow_classes).astype(np.int64),
                       "sink_id": np.where((np.nan_to_num(d) > 0) & (ms[ids] > 0), ms[ids], -1),
                       "exposure": pd.Categorical(np.array(["low", "medium", "high"])[level],
                                                  categories=["low", "medium", "high"], ordered=True)})
    geoms = _raster_polygons(bid, grid.transform, ids)
    return gpd.GeoDataFrame(df, geometry=geoms, crs=crs)


def _raster_polygons(values: np.ndarray, transform, ids: np.ndarray):
    """One (multi)polygon per id from the cells holding it (rasterio.features.shapes, dissolved)."""
    import shapely
    from rasterio import features
    from shapely.geometry import shape

    parts: dict[int, list] = {}
    mask = values >= 0 if values.dtype.kind == "i" else values > 0
    for geom, v in features.shapes(values.astype(np.int32), mask=mask, transform=transform, connectivity=4):
        parts.setdefault(int(v), []).append(shape(geom))
    return [shapely.union_all(parts[int(i)]) if len(parts.get(int(i), [])) > 1 else
            (parts[int(i)][0] if int(i) in parts else None) for i in ids]


def _gpd_crs(crs):
    if crs is None:
        return None
    if hasattr(crs, "is_local"):
        return None if crs.is_local else f"EPSG:{crs.horizontal_epsg}"
    return crs


# ================================================================================ workflow
@dataclass(eq=False)
class ScreeningResult:
    """Everything :func:`screen` computed; :meth:`write` puts it in a run folder."""

    grid: "Grid"
    surface: np.ndarray
    hierarchy: DepressionHierarchy
    directions: np.ndarray
    upstream_area_m2: np.ndarray
    filled_depth: np.ndarray
    sink_id: np.ndarray
    sinks: "pandas.DataFrame"
    flow_paths: "geopandas.GeoDataFrame"
    exposure: "geopandas.GeoDataFrame"
    ponding: FillSpillMergeResult | None
    parameters: dict
    timings_s: dict

    def sink_polygons(self, *, min_volume_m3: float | None = None) -> "geopandas.GeoDataFrame":
        """Top-level sinks (the filled areas) of at least ``min_volume_m3`` as polygons with their table row."""
        import geopandas as gpd

        vmin = self.parameters["min_sink_volume_m3"] if min_volume_m3 is None else min_volume_m3
        top = self.sinks[self.sinks["top_level"] & (self.sinks["volume_m3"] >= vmin)]
        nested = self.sinks[self.sinks["leaf"]].assign(top=lambda d: self.hierarchy.root[d["sink_id"].to_numpy()])
        top = top.assign(nested_leaves=top["sink_id"].map(nested.groupby("top").size()).fillna(0).astype(np.int64))
        ids = top["sink_id"].to_numpy()
        keep = np.isin(self.sink_id, ids)
        geoms = _raster_polygons(np.where(keep, self.sink_id, -1).astype(np.int32), self.grid.transform, ids)
        return gpd.GeoDataFrame(top.reset_index(drop=True), geometry=geoms, crs=_gpd_crs(self.grid.crs))

    def write(self, out_dir: str | os.PathLike, *, overwrite: bool = False, inputs: dict | None = None) -> dict:
        """Write sinks.gpkg, flow_accumulation.tif, flow_paths.gpkg, filled_depth.tif, ponded_depth.tif
        (with rain), buildings_exposure.parquet (+ .csv) and run.json into ``out_dir``.

        Raises
        ------
        TwinIOError
            When ``out_dir`` holds any of those files and ``overwrite`` is False.
        """
        import geopandas as gpd

        from twin.grid import Grid

        t0 = time.perf_counter()
        out = Path(out_dir)
        names = ["sinks.gpkg", "flow_accumulation.tif", "flow_paths.gpkg", "filled_depth.tif",
                 "buildings_exposure.parquet", "buildings_exposure.csv", "run.json"]
        if self.ponding is not None:
            names.append("ponded_depth.tif")
        existing = [n for n in names if (out / n).exists()]
        if existing and not overwrite:
            raise TwinIOError(f"{out} already holds {existing}; pass overwrite=True (--overwrite) to replace them")
        out.mkdir(parents=True, exist_ok=True)
        for n in existing:
            (out / n).unlink()
        g = self.grid
        rasters = {"flow_accumulation": (self.upstream_area_m2, "m2"), "filled_depth": (self.filled_depth, "m")}
        if self.ponding is not None:
            rasters["ponded_depth"] = (self.ponding.depth, "m")
        for name, (arr, units) in rasters.items():
            Grid(g.transform, g.crs, g.shape, {name: arr.astype(np.float32)}, {name: units}).to_geotiff(
                out / f"{name}.tif")
        polys = self.sink_polygons()
        polys.to_file(out / "sinks.gpkg", layer="sinks", driver="GPKG")
        table = self.sinks[self.sinks["volume_m3"] >= self.parameters["min_sink_volume_m3"]]
        pts = gpd.GeoDataFrame(table.reset_index(drop=True), crs=_gpd_crs(g.crs), geometry=gpd.points_from_xy(
            table["spill_x"], table["spill_y"]))
        pts.to_file(out / "sinks.gpkg", layer="sink_hierarchy", driver="GPKG")
        fp = self.flow_paths
        if len(fp):
            fp.to_file(out / "flow_paths.gpkg", layer="flow_paths", driver="GPKG")
        else:
            gpd.GeoDataFrame(fp, geometry=gpd.GeoSeries([], crs=_gpd_crs(g.crs))).to_file(
                out / "flow_paths.gpkg", layer="flow_paths", driver="GPKG")
        exp = self.exposure
        exp.to_parquet(out / "buildings_exposure.parquet")
        exp.assign(geometry_wkt=exp.geometry.to_wkt()).drop(columns="geometry").to_csv(
            out / "buildings_exposure.csv", index=False)
        timings = dict(self.timings_s, write=time.perf_counter() - t0)
        run = {"kind": "heavyrain-screening", "software": {"twin": _version()}, "inputs": inputs or {},
               "grid": {"shape": list(g.shape), "resolution_m": g.resolution, "transform": list(g.transform)[:6],
                        "crs": str(g.crs)},
               "parameters": self.parameters, "timings_s": timings,
               "sinks": {"all": int(len(self.sinks)), "top_level": int(self.sinks["top_level"].sum()),
                         "written": int(len(polys)),
                         "filled_volume_m3": float(np.nansum(self.filled_depth) * g.resolution ** 2)},
               "flow_paths": int(len(fp)),
               "buildings": {"count": int(len(exp)),
                             "exposure": {c: int((exp["exposure"] == c).sum()) for c in ("low", "medium", "high")}}}
        if self.ponding is not None:
            p = self.ponding
            run["fill_spill_merge"] = {"rain_mm": p.rain_mm, "rain_m3": p.rain_m3, "ponded_m3": p.ponded_m3,
                                       "outflow_m3": p.outflow_m3, "volume_error": p.volume_error}
        (out / "run.json").write_text(json.dumps(run, indent=2, default=_json_default))
        return {n: out / n for n in names if (out / n).exists()}


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twin")
    except PackageNotFoundError:
        return "unknown"


def screen(grid: "Grid", *, rain_mm: float | None = None, run_depth: np.ndarray | None = None,
           run_source: str = "", flow_classes: Sequence[float] = FLOW_PATH_CLASSES_M2,
           thresholds: ExposureThresholds = ExposureThresholds(), min_sink_volume_m3: float = 1.0,
           building_names: "pandas.Series | None" = None) -> ScreeningResult:
    """The whole screening of a grid: sinks, Fill-Spill-Merge, flow paths, building exposure.

    Parameters
    ----------
    grid : Grid
        With ``terrain_elevation`` (m) and optionally ``building_id`` / ``building_height``.
    rain_mm : float, optional
        Uniform event depth for Fill-Spill-Merge (``ponding``).
    run_depth : ndarray, optional
        Max depth of a dynamic run on ``grid`` (:func:`read_run_max_depth`); used for the exposure
        depth instead of the screening.
    flow_classes, thresholds, min_sink_volume_m3
        See the module docstring.
    building_names : pandas.Series, optional
        gml_id by building id.

    Returns
    -------
    ScreeningResult
        The exposure depth is, in this order: the dynamic run's max depth, the Fill-Spill-Merge
        ponded depth, the filled sink depth (sinks full: the worst case of a very long event).
    """
    if "terrain_elevation" not in grid:
        raise TwinValueError(f"the grid has no terrain_elevation field (it has {sorted(grid.fields)})")
    if rain_mm is not None and not (np.isfinite(rain_mm) and rain_mm >= 0):
        raise TwinValueError(f"rain_mm must be a non-negative number of millimetres, got {rain_mm!r}")
    if abs(grid.transform.a + grid.transform.e) > 1e-9 * abs(grid.transform.a):
        raise TwinValueError(f"screening needs square cells, got {grid.transform.a} x {-grid.transform.e} m")
    if run_depth is not None and np.shape(run_depth) != grid.shape:
        raise TwinValueError(f"run_depth has shape {np.shape(run_depth)}, the grid is {grid.shape}")
    cell = grid.resolution
    t = {}
    t0 = time.perf_counter()
    z = screening_surface(grid)
    t["surface"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dh = depression_hierarchy(z, cell_size=cell)
    filled_depth = dh.filled_depth()
    sink_id = dh.top_level_id()
    sinks = dh.table(grid.transform)
    t["sinks"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    directions = flow_directions(z, cell_size=cell, routing="d8")
    area = flow_accumulation(directions=directions, cell_size=cell, routing="d8")
    t["flow"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    paths = flow_paths(directions, area, grid.transform, crs=grid.crs, classes=flow_classes)
    t["flow_paths"] = time.perf_counter() - t0
    ponding = None
    if rain_mm is not None:
        t0 = time.perf_counter()
        ponding = dh.fill_spill_merge(float(rain_mm))
        t["fill_spill_merge"] = time.perf_counter() - t0
    if run_depth is not None:
        depth, source = np.asarray(run_depth, np.float64), f"dynamic run {run_source}".strip()
    elif ponding is not None:
        depth, source = ponding.depth, f"fill-spill-merge {rain_mm:g} mm"
    else:
        depth, source = filled_depth, "filled sinks (worst case)"
    t0 = time.perf_counter()
    exposure = building_exposure(grid, depth=depth, upstream_area_m2=area, sink_id=sink_id, thresholds=thresholds,
                                 depth_source=source, names=building_names, flow_classes=flow_classes)
    t["exposure"] = time.perf_counter() - t0
    params = {"rain_mm": rain_mm, "routing": "d8", "flow_path_classes_m2": list(flow_classes),
              "exposure_thresholds": asdict(thresholds), "min_sink_volume_m3": min_sink_volume_m3,
              "exposure_depth_source": source, "buildings": "raised to their top (obstacles)",
              "dem_sha256": hashlib.sha256(np.ascontiguousarray(grid["terrain_elevation"]).tobytes()).hexdigest()}
    return ScreeningResult(grid, z, dh, directions, area, filled_depth, sink_id, sinks, paths, exposure, ponding,
                           params, t)
