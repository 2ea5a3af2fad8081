"""The workflow-level heavy-rain run: inputs checked before any compute, outputs as an xarray Dataset.

:func:`simulate` builds a :class:`~twin.sim.heavyrain.model.HeavyRainModel` from a twin Grid or a DEM
GeoTIFF, runs it with output/gauge events, progress and snapshot callbacks, and returns a
:class:`HeavyRainResult` that writes a run folder (``result.nc``, ``max_depth.tif``, ``gauges.csv``,
``run.json``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from twin.errors import CRSError, TwinIOError, TwinValueError
from twin.sim.heavyrain.forcing import Losses, PointInflow, RainGrid, RainSeries
from twin.sim.heavyrain.model import HeavyRainModel

#: the netCDF4/HDF5 wheels are not thread-safe: two threads writing different files at once can crash the
#: process (seen as a bus error with ensemble members on Dask's threaded scheduler), so writes take this lock
NETCDF_LOCK = threading.Lock()

__all__ = ["simulate", "HeavyRainResult", "read_dem", "read_gauges_csv", "Gauge"]


@dataclass(frozen=True)
class Gauge:
    name: str
    x: float
    y: float


@dataclass
class _Raster:
    elevation: np.ndarray
    transform: Any
    crs_wkt: str
    crs_label: str
    epsg: int | None
    fields: dict = field(default_factory=dict)
    source: str = ""


def read_dem(path: str | os.PathLike) -> _Raster:
    """Read a single-band DEM GeoTIFF (nodata -> NaN); refuses rasters without a CRS or without data."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            z = src.read(1, masked=True).astype(np.float64).filled(np.nan)
            if src.crs is None:
                raise CRSError(f"DEM {path} has no CRS; assign one first (e.g. gdal_edit.py -a_srs EPSG:25832 {path})")
            transform, wkt, epsg = src.transform, src.crs.to_wkt(), src.crs.to_epsg()
    except rasterio.errors.RasterioIOError as exc:
        raise TwinIOError(f"cannot read DEM {path}: {exc}") from exc
    if not np.isfinite(z).any():
        raise TwinValueError(f"DEM {path} holds only nodata; check the file and its nodata value")
    return _Raster(z, transform, wkt, f"EPSG:{epsg}" if epsg else wkt[:60], epsg, source=str(path))


def _from_grid(grid, building_mode: str) -> tuple[_Raster, np.ndarray | None]:
    z = np.asarray(grid["terrain_elevation"], dtype=np.float64)
    blocked = None
    if "building_id" in grid:
        bld = np.asarray(grid["building_id"]) >= 0
        if building_mode == "block":
            blocked = bld
        elif building_mode == "raise":
            z = z + np.where(bld, np.nan_to_num(np.asarray(grid["building_height"], np.float64)), 0.0)
        else:
            raise TwinValueError(f"building_mode {building_mode!r} unknown; use 'block' or 'raise'")
    crs = grid.crs
    epsg = None if crs.is_local else crs.horizontal_epsg
    wkt = ""
    if epsg:
        import pyproj

        wkt = pyproj.CRS.from_epsg(epsg).to_wkt()
    return _Raster(z, grid.transform, wkt, str(crs.source or crs.horizontal or "local"), epsg,
                   fields={k: grid[k] for k in grid.fields}, source="grid"), blocked


def _hash(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class HeavyRainResult:
    """Outputs of :func:`simulate`: ``dataset`` (maxima, times, snapshots, water balance), ``gauges``
    (long table time_s,name,depth_m,wse_m,speed_m_per_s) and ``run_info`` (parameters, timings, balance)."""

    dataset: Any
    gauges: Any
    run_info: dict

    def write(self, run_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``result.nc``, ``max_depth.tif``, ``gauges.csv`` and ``run.json`` into ``run_dir``."""
        import rasterio

        run_dir = Path(run_dir)
        names = ["result.nc", "max_depth.tif", "gauges.csv", "run.json"]
        if run_dir.exists() and any((run_dir / n).exists() for n in names) and not overwrite:
            raise TwinIOError(f"{run_dir} already holds a run; pass overwrite=True (--overwrite) or pick another folder")
        run_dir.mkdir(parents=True, exist_ok=True)
        ds = self.dataset
        with NETCDF_LOCK:
            ds.to_netcdf(run_dir / "result.nc")
        md = ds["max_depth"].to_numpy().astype(np.float32)
        t = self.run_info["grid"]["transform"]
        crs = self.run_info["grid"]["crs_wkt"] or None
        with rasterio.open(run_dir / "max_depth.tif", "w", driver="GTiff", height=md.shape[0], width=md.shape[1],
                           count=1, dtype="float32", crs=crs, transform=rasterio.Affine(*t), nodata=np.nan,
                           compress="deflate") as dst:
            dst.write(md, 1)
            dst.update_tags(1, units="m", long_name="maximum water depth")
        self.gauges.to_csv(run_dir / "gauges.csv", index=False, float_format="%.6g")
        (run_dir / "run.json").write_text(json.dumps(self.run_info, indent=2, default=str))
        return run_dir


def simulate(source, *, duration_s: float, rain: RainSeries | RainGrid | None = None,
             inflows: Sequence[PointInflow] = (), gauges: Sequence[Gauge] | None = None,
             boundary: str | float | Mapping[str, Any] = "closed", manning_n: float | np.ndarray | None = None,
             building_mode: str = "block", losses: Losses | str | None = None, initial_saturation: float = 0.3,
             drainage_mm_per_h: float = 0.0, output_interval_s: float = 300.0, gauge_interval_s: float | None = None,
             depth_threshold_m: float = 0.1, threads: int | None = None,
             progress: Callable[[float, float, dict], None] | None = None,
             on_snapshot: Callable[[float, np.ndarray], None] | None = None,
             keep_snapshots: bool = True, input_files: Sequence[str | os.PathLike] = (),
             **model_options) -> HeavyRainResult:
    """Run a heavy-rain simulation on a twin Grid or a DEM GeoTIFF.

    Parameters
    ----------
    source : twin.grid.Grid or path-like
        A grid from ``scene.to_grid(resolution)`` (terrain, buildings, Manning's n, land cover) or a
        bare DEM GeoTIFF (must have a CRS).
    duration_s : float
        Simulated time (s).
    rain, inflows : forcing (see :mod:`twin.sim.heavyrain.forcing`).
    gauges : sequence of Gauge
        Points sampled every ``gauge_interval_s`` (default ``min(output_interval_s, 60)``).
    manning_n : float or array, optional
        Default: the grid's ``manning_n`` field, else 0.03 (a bare DEM).
    building_mode : {"block", "raise"}
        Buildings of a grid as walls (default) or raised by their height.
    losses : Losses, "grid" or None
        ``"grid"``: Green-Ampt from the grid's ``ks_mm_per_h``, ``suction_head_mm``, ``porosity`` with
        moisture deficit ``porosity (1 - initial_saturation)``.
    drainage_mm_per_h : float
        Sewer capacity (mm/h) on sealed cells (imperviousness >= 0.5; every cell of a bare DEM).
    progress : callable(t_s, duration_s, info), optional
        Called after every output or gauge event.
    on_snapshot : callable(t_s, depth), optional
        Called every ``output_interval_s`` with the depth array (a copy).
    **model_options
        Passed to :class:`HeavyRainModel` (theta, cfl, h_min, dt_max, ...).
    """
    import pandas as pd
    import xarray as xr

    t_wall0 = time.perf_counter()
    if not (duration_s > 0) or not math.isfinite(duration_s):
        raise TwinValueError(f"duration {duration_s} s must be > 0")
    if output_interval_s <= 0:
        raise TwinValueError(f"output interval {output_interval_s} s must be > 0")
    gauge_interval_s = gauge_interval_s or min(output_interval_s, 60.0)
    blocked = None
    if isinstance(source, (str, os.PathLike)):
        raster = read_dem(source)
        input_files = [source, *input_files]
    elif hasattr(source, "fields") and hasattr(source, "transform"):
        raster, blocked = _from_grid(source, building_mode)
    else:
        raise TwinValueError(f"source must be a twin Grid or a DEM GeoTIFF path, got {type(source).__name__}")
    f = raster.fields
    if manning_n is None:
        manning_n = f["manning_n"] if "manning_n" in f else 0.03
    if isinstance(losses, str):
        if losses != "grid":
            raise TwinValueError(f"losses={losses!r}: give a Losses object or 'grid'")
        missing = [k for k in ("ks_mm_per_h", "suction_head_mm", "porosity") if k not in f]
        if missing:
            raise TwinValueError(f"losses='grid' needs grid fields {missing}; burn the grid with twin.grid.scene_to_grid")
        losses = Losses(model="green-ampt", ks_mm_per_h=np.nan_to_num(f["ks_mm_per_h"]),
                        suction_head_mm=np.nan_to_num(f["suction_head_mm"]),
                        moisture_deficit=np.nan_to_num(f["porosity"]) * (1.0 - initial_saturation))
    drainage_mask = None
    if "imperviousness" in f:
        drainage_mask = np.nan_to_num(f["imperviousness"]) >= 0.5
    if threads is not None:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))

    model = HeavyRainModel(raster.elevation, transform=raster.transform, crs=raster.crs_label, manning_n=manning_n,
                           blocked=blocked, boundary=boundary, rain=rain, inflows=inflows, losses=losses,
                           drainage_mm_per_h=drainage_mm_per_h, drainage_mask=drainage_mask,
                           depth_threshold_m=depth_threshold_m, **model_options)
    gauges = list(gauges or [])
    names = [g.name for g in gauges]
    if len(set(names)) != len(names):
        raise TwinValueError(f"gauge names must be unique, got {names}")
    cells = [model.cell_of(g.x, g.y, what=f"gauge {g.name!r}") for g in gauges]

    # ---- time loop over events (outputs and gauge samples)
    xs, ys = model.cell_centres()
    snap_t, snaps, bal_rows, gauge_rows = [], [], [], []

    def record_gauges() -> None:
        for g, row in zip(gauges, model.sample(cells)):
            gauge_rows.append((model.time, g.name, row[0], row[1], row[2]))

    def record_balance() -> None:
        wb = model.water_balance()
        bal_rows.append((model.time, wb.rain_m3, wb.inflow_m3, wb.infiltration_m3, wb.drainage_m3,
                         wb.outflow_m3, wb.storage_m3, wb.error_m3))

    record_gauges()
    record_balance()
    next_out, next_gauge = output_interval_s, gauge_interval_s
    run_wall0 = time.perf_counter()
    while model.time < duration_s - 1e-9:
        target = min(next_out, next_gauge, duration_s)
        model.run_one_step(target - model.time)
        if model.time >= next_gauge - 1e-9 or model.time >= duration_s - 1e-9:
            record_gauges()
            next_gauge += gauge_interval_s
        if model.time >= next_out - 1e-9 or model.time >= duration_s - 1e-9:
            record_balance()
            depth = model.h.copy()
            if keep_snapshots:
                snap_t.append(model.time)
                snaps.append(depth)
            if on_snapshot is not None:
                on_snapshot(model.time, depth)
            next_out += output_interval_s
        if progress is not None:
            progress(model.time, duration_s, {"steps": model.steps, "dt": model.stable_dt()})
    run_wall = time.perf_counter() - run_wall0

    # ---- outputs
    wb = model.water_balance()
    nan_out = ~model.active
    def masked(a, fill=np.nan):  # noqa: E306
        a = np.asarray(a, dtype=np.float32).copy()
        a[nan_out] = fill
        return a
    direction = (np.degrees(np.arctan2(model.vx_at_max, model.vy_at_max)) % 360.0).astype(np.float32)
    direction[model.max_speed <= 0] = np.nan
    dims = ("y", "x")
    thr = f"{depth_threshold_m:g} m"
    data = {
        "max_depth": (dims, masked(model.max_depth), {"units": "m", "long_name": "maximum water depth"}),
        "max_speed": (dims, masked(model.max_speed), {"units": "m s-1", "long_name": "maximum flow speed",
                                                      "comment": f"cells deeper than {model.speed_min_depth_m} m"}),
        "flow_direction": (dims, masked(direction), {"units": "degree", "long_name": "flow direction at maximum speed",
                                                     "comment": "towards, clockwise from grid north"}),
        "velocity_east_at_max_speed": (dims, masked(model.vx_at_max), {"units": "m s-1"}),
        "velocity_north_at_max_speed": (dims, masked(model.vy_at_max), {"units": "m s-1"}),
        "time_of_max_depth": (dims, masked(model.time_of_max_depth), {"units": "s", "long_name": "time of maximum depth"}),
        "arrival_time": (dims, masked(model.arrival_time), {"units": "s", "long_name": f"first time depth >= {thr}"}),
        "duration_above_threshold": (dims, masked(model.duration_above), {"units": "s",
                                                                          "long_name": f"time with depth >= {thr}"}),
        "hazard_rating": (dims, masked(model.max_hazard), {"units": "m2 s-1", "long_name": "maximum of d (v + 0.5)"}),
    }
    coords = {"x": ("x", xs, {"units": "m", "standard_name": "projection_x_coordinate"}),
              "y": ("y", ys, {"units": "m", "standard_name": "projection_y_coordinate"})}
    if snaps:
        data["depth"] = (("time", "y", "x"), np.stack([masked(s) for s in snaps]),
                         {"units": "m", "long_name": "water depth"})
        coords["time"] = ("time", np.asarray(snap_t), {"units": "s", "long_name": "time since start"})
    bal = np.asarray(bal_rows)
    coords["balance_time"] = ("balance_time", bal[:, 0], {"units": "s"})
    for k, name in enumerate(["rain", "inflow", "infiltration", "drainage", "outflow", "storage", "error"], start=1):
        data[f"{name}_volume"] = (("balance_time",), bal[:, k], {"units": "m3", "long_name": f"cumulative {name}"
                                                                   if name not in ("storage", "error") else name})
    cell_steps = model.cell_steps
    info = {
        "software": {"name": "twin", "version": _version(), "model": "twin.sim.heavyrain local inertial"},
        "parameters": {"duration_s": duration_s, "boundary": model.boundary, "theta": model.theta, "cfl": model.cfl,
                       "h_min_m": model.h_min, "dt_max_s": model.dt_max, "depth_threshold_m": depth_threshold_m,
                       "output_interval_s": output_interval_s, "gauge_interval_s": gauge_interval_s,
                       "building_mode": building_mode, "drainage_mm_per_h": drainage_mm_per_h,
                       "losses": None if losses is None else losses.model,
                       "manning_n": float(manning_n) if np.ndim(manning_n) == 0 else "grid",
                       "rain": _describe_rain(rain), "inflows": [(i.x, i.y) for i in inflows],
                       "gauges": [(g.name, g.x, g.y) for g in gauges]},
        "grid": {"shape": list(model.shape), "cell_size_m": model.dx, "transform": list(tuple(model.transform)[:6]),
                 "crs": raster.crs_label, "crs_wkt": raster.crs_wkt, "active_cells": model.n_active,
                 "source": raster.source},
        "input_hashes": {str(p): _hash(p) for p in input_files if p and Path(p).is_file()},
        "wall_s": time.perf_counter() - t_wall0,
        "run_wall_s": run_wall,
        "steps": model.steps,
        "cell_steps": cell_steps,
        "cell_steps_per_s": cell_steps / run_wall if run_wall > 0 else None,
        "threads": _threads(),
        "water_balance": {"rain_m3": wb.rain_m3, "inflow_m3": wb.inflow_m3, "infiltration_m3": wb.infiltration_m3,
                          "drainage_m3": wb.drainage_m3, "outflow_m3": wb.outflow_m3, "storage_m3": wb.storage_m3,
                          "initial_storage_m3": wb.initial_storage_m3, "error_m3": wb.error_m3,
                          "relative_error": wb.relative_error},
    }
    ds = xr.Dataset(data, coords=coords, attrs={
        "title": "twin heavy-rain simulation", "Conventions": "CF-1.8", "crs": raster.crs_label,
        "crs_wkt": raster.crs_wkt, "transform": json.dumps(info["grid"]["transform"]),
        "run": json.dumps({k: info[k] for k in ("software", "parameters", "steps", "water_balance")}, default=str)})
    gauges_df = pd.DataFrame(gauge_rows, columns=["time_s", "name", "depth_m", "wse_m", "speed_m_per_s"])
    return HeavyRainResult(ds, gauges_df, info)


def _describe_rain(rain) -> Any:
    if rain is None:
        return None
    if isinstance(rain, RainSeries):
        return {"type": "series", "times_s": rain.times_s.tolist(), "intensity_mm_per_h": rain.intensity_mm_per_h.tolist()}
    return {"type": "grid", "times_s": rain.times_s.tolist()}


def _threads() -> int:
    import numba

    return int(numba.get_num_threads())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twin")
    except PackageNotFoundError:
        return "unknown"


def read_gauges_csv(path: str | os.PathLike) -> list[Gauge]:
    """``name,x,y`` rows (map coordinates in the DEM/scene CRS)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (OSError, pd.errors.ParserError) as exc:
        raise TwinIOError(f"cannot read gauges {path}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("name", "x", "y") if c not in df.columns]
    if missing:
        raise TwinValueError(f"gauges {path}: missing column(s) {missing}; expected name,x,y")
    return [Gauge(str(r.name), float(r.x), float(r.y)) for r in df.itertuples(index=False)]
