"""Running a scenario: grid -> edits -> models -> run folder -> tiles, recorded in the run registry.

:func:`run_scenario` registers a run (or returns the finished run of the same scenario, inputs and
software version) and executes it; :func:`execute_run` does the work for a registered run and takes
only picklable arguments, so the API can hand it to a process pool. :func:`building_results` reads a
run's per-building table.

Run folder (``WORKSPACE/runs/<run_id>/``)::

    scenario.json       the scenario as validated
    request.json        what was asked: models, tiles
    run.json            the registry record at the end, with notes, the edit report and the forcing
    grid.nc             the edited grid (all fields, incl. roof_retention_mm and drainage_mm_per_h)
    heavyrain/          twin.sim.heavyrain.simulate(...).write: result.nc (maxima, snapshots), max_depth.tif, ...
    screening/          twin.sim.heavyrain.screen(...).write: sinks, flow paths, exposure, ...
    heat/               twin.sim.heat.run_heat: svf, shadow, air temperature, Tmrt, UTCI (result.nc, *.tif)
    buildings.parquet   one row per building (gml_id, footprint in the scene CRS, per-model values)

Tiles go to ``WORKSPACE/tiles/runs/<run_id>/``: the scene (terrain with the run's terrain edits),
the result drapes with one colour scale per field for every run (so runs compare side by side), and
the depth snapshots, each tiled as the model produces it (:class:`twin.tiles.SnapshotWriter`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import shutil
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from twin.errors import TwinError, TwinIOError, TwinValueError
from twin.workflows.registry import RunRecord, RunRegistry, utc_now

__all__ = ["run_scenario", "execute_run", "building_results", "RunCancelled", "software_version", "input_hashes",
           "RESULT_STYLES"]

Progress = Callable[[float, str], None]

#: One colour scale per result field for every run (the viewer compares runs side by side).
RESULT_STYLES: dict[str, dict] = {
    "max_depth": {"colormap": "water", "vmin": 0.0, "vmax": 1.0, "transparent_below": 0.01},
    "ponded_depth": {"colormap": "water", "vmin": 0.0, "vmax": 1.0, "transparent_below": 0.01},
    "filled_depth": {"colormap": "water", "vmin": 0.0, "vmax": 1.0, "transparent_below": 0.01},
    "depth": {"colormap": "water", "vmin": 0.0, "vmax": 1.0, "transparent_below": 0.01},
    "max_speed": {"colormap": "viridis", "vmin": 0.0, "vmax": 2.0, "transparent_below": 0.01},
    "flow_accumulation": {"colormap": "viridis", "vmin": 0.0, "vmax": 10000.0, "transparent_below": 200.0},
    "svf": {"colormap": "gray", "vmin": 0.0, "vmax": 1.0, "transparent_below": None},
    # UTCI heat-stress classes (Bröde et al. 2012): 26 moderate, 32 strong, 38 very strong, 46 extreme
    "utci": {"colormap": "thermal", "vmin": 26.0, "vmax": 46.0, "transparent_below": None},
}
DEFAULT_FIELDS = ("max_depth", "max_speed", "arrival_time", "ponded_depth", "flow_accumulation", "air_temperature",
                  "utci", "svf")
_MODEL_WEIGHTS = {"grid": 0.05, "heavyrain": 0.55, "screening": 0.05, "heat": 0.15, "buildings": 0.02, "tiles": 0.18}


class RunCancelled(TwinError):
    """The run was cancelled (its registry record's ``cancel_requested`` was set)."""


# ============================================================================================ helpers
def software_version() -> str:
    """twin's version plus a fingerprint of its source (``0.1.0+src.<12 hex>``): a run is reused only
    by the same code."""
    import twin

    root = Path(twin.__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return f"{twin.__version__}+src.{h.hexdigest()[:12]}"


def _sha256_file(path: Path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def _scene_dir(workspace: Path, scene_id: str) -> Path:
    d = workspace / "scenes" / scene_id
    if not (d / "scene.json").is_file():
        have = sorted(p.name for p in (workspace / "scenes").glob("*") if (p / "scene.json").is_file()) \
            if (workspace / "scenes").is_dir() else []
        raise TwinValueError(f"the scenario's scene {scene_id!r} is not in {workspace / 'scenes'} "
                             f"(scenes there: {have}); import it with `twin import ... --out {d}`")
    return d


def _hash_scene(scene_dir: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(scene_dir.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(scene_dir)).encode())
            _sha256_file(p, h)
    return h.hexdigest()


def _hash_grid(grid) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([list(tuple(grid.transform)[:6]), list(grid.shape), str(grid.crs)]).encode())
    for name in sorted(grid.fields):
        a = grid.fields[name]
        h.update(name.encode() + str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def input_hashes(workspace: str | os.PathLike, scenario) -> dict:
    """SHA-256 of what a run of ``scenario`` reads besides the scenario: the scene folder's files and,
    for observed rain or a hot day with sensors, the readings used."""
    ws = Path(workspace)
    out = {"scene": _hash_scene(_scene_dir(ws, scenario.scene))}
    rain = scenario.forcing.rain
    if rain is not None and rain.type == "observed" and "heavyrain" in scenario.models:
        out["rain_readings"] = _hash_obj(_observed_rain_table(ws, rain))
    heat = scenario.forcing.heat
    if heat is not None and heat.use_sensors and "heat" in scenario.models and (ws / heat.store).is_file():
        try:
            out["heat_readings"] = _hash_obj(_heat_readings(ws, heat))
        except TwinValueError:
            out["heat_readings"] = "none"
    return out


def _hash_obj(obj) -> str:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return hashlib.sha256(pd.util.hash_pandas_object(obj, index=True).values.tobytes()).hexdigest()
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class _Progress:
    """Maps stage progress onto 0..1, reports to the caller and the registry, checks for cancellation."""

    def __init__(self, registry: RunRegistry, run_id: str, callback: Progress | None, stages: list[str]) -> None:
        self.registry, self.run_id, self.callback = registry, run_id, callback
        total = sum(_MODEL_WEIGHTS[s] for s in stages)
        self.offsets, acc = {}, 0.0
        for s in stages:
            self.offsets[s] = (acc / total, _MODEL_WEIGHTS[s] / total)
            acc += _MODEL_WEIGHTS[s]
        self._last_write = 0.0
        self._last_check = 0.0
        self.fraction = 0.0

    def __call__(self, stage: str, within: float, message: str, *, force: bool = False) -> None:
        off, w = self.offsets[stage]
        self.fraction = min(1.0, max(self.fraction, off + w * min(max(within, 0.0), 1.0)))
        now = time.monotonic()
        if force or now - self._last_check >= 0.5:
            self._last_check = now
            if self.registry.cancel_requested(self.run_id):
                raise RunCancelled(f"run {self.run_id} was cancelled")
        if force or now - self._last_write >= 0.5:
            self._last_write = now
            self.registry.update(self.run_id, progress=round(self.fraction, 4), message=message)
        if self.callback is not None:
            self.callback(self.fraction, message)


# ============================================================================================ forcing
def _observed_rain_table(ws: Path, rain):
    from twin.sensors import open_store
    from twin.sensors.forcing import rain_forcing

    path = ws / rain.store
    if not path.is_file():
        raise TwinValueError(f"observed rain needs the sensor store {path}; sync the gauges first "
                             f"(twin sensors sync --db {path})")
    with open_store(path) as store:
        ds = rain_forcing(store, start=rain.start.isoformat(), end=rain.end.isoformat(), step=f"{rain.step_min:g}min")
    return ds


def _rain(ws: Path, scenario, grid) -> tuple[Any, float, float, str]:
    """(RainSeries | RainGrid, rain duration s, rain depth mm (areal mean), description)."""
    from twin.sim.heavyrain.forcing import RainGrid, RainSeries, design_storm

    rain = scenario.forcing.rain
    if rain.type == "design_storm":
        series = design_storm(**rain.storm_arguments())
        return series, rain.duration_min * 60.0, float(rain.total_depth_mm), rain.describe()
    ds = _observed_rain_table(ws, rain)
    step_s = rain.step_min * 60.0
    n = ds.sizes["time"]
    times = np.arange(n + 1) * step_s
    if rain.distribution == "uniform":
        vals = np.nan_to_num(ds["rain_uniform_mm_per_h"].to_numpy().astype(float))
        series = RainSeries(times, np.append(vals, 0.0))
        depth = float(np.sum(vals) * step_s / 3600.0)
    else:
        from pyproj import Transformer

        from twin.sensors.forcing import rain_field

        epsg = grid.crs.horizontal_epsg
        if not epsg:
            raise TwinValueError("gridded observed rain needs a georeferenced scene; use distribution 'uniform'")
        gx, gy = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(
            ds["lon"].to_numpy(), ds["lat"].to_numpy())
        x, y = grid.cell_centres()
        field = rain_field(ds["rain_mm_per_h"], x, y, gauge_x=gx, gauge_y=gy, method=rain.distribution)
        vals = np.nan_to_num(field.to_numpy())
        series = RainGrid(times, np.concatenate([vals, np.zeros((1,) + vals.shape[1:])]))
        depth = float(np.mean(vals.sum(axis=0)) * step_s / 3600.0)
    return series, n * step_s, depth, rain.describe()


def _heat_readings(ws: Path, heat):
    """One hour's station temperatures of the workspace's store as a DataFrame (lon/lat), or raise."""
    import pandas as pd

    from twin.sensors import open_store
    from twin.sensors.forcing import heat_forcing

    t = pd.Timestamp(heat.time).tz_convert("UTC").floor("h")
    with open_store(ws / heat.store) as store:
        ds = heat_forcing(store, hour=t.isoformat())
    return pd.DataFrame({"station": ds["station"].to_numpy().astype(str), "lon": ds["lon"].to_numpy(),
                         "lat": ds["lat"].to_numpy(), "temperature": ds["air_temperature"].to_numpy()})


def _sensors_in_grid(ws: Path, heat, grid, notes: list[str]):
    """Station temperatures of the hour inside the grid (scene CRS), or None (predictor-only mode)."""
    if not heat.use_sensors or not (ws / heat.store).is_file():
        return None
    try:
        df = _heat_readings(ws, heat)
    except TwinValueError as exc:
        notes.append(f"heat: no sensor readings used ({exc})")
        return None
    epsg = grid.crs.horizontal_epsg
    if not epsg:
        return None
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(df["lon"].to_numpy(),
                                                                                       df["lat"].to_numpy())
    w, s, e, n = grid.bounds
    inside = (x >= w) & (x <= e) & (y >= s) & (y <= n)
    if int(inside.sum()) < 3:
        notes.append(f"heat: {int(inside.sum())} temperature sensors inside the scene (3 needed): air temperature "
                     "from the predictor model without local readings")
        return None
    return df.assign(x=x, y=y)[inside][["station", "x", "y", "temperature"]].reset_index(drop=True)


# ============================================================================================ models
def _run_heat_model(grid, edited, heat, params, out_dir: Path, sensors, has_edits: bool) -> dict:
    """The one place that calls :func:`twin.sim.heat.model.run_heat` (keep it small: the heat package
    changes beside this workflow).

    The baseline surfaces come from the unedited ``grid``; with edits, ``edited`` is the scenario grid
    and run_heat's scenario mode gives the run's Ta (baseline model + coefficients x predictor change,
    :func:`twin.sim.heat.scenario_delta`), Tmrt and UTCI. The run folder's ``result.nc`` then holds the
    run's own values under the plain names (``air_temperature``, ``tmrt``, ``utci``; the edited surfaces'
    ``svf`` and ``shadow``) and the unedited ones as ``baseline_*``.
    """
    from twin.sim.heat.model import run_heat

    weather = {"time_utc": heat.time.isoformat(), "ta_ref_c": heat.air_temperature_c,
               "wind_m_per_s": heat.wind_m_per_s, "rh_pct": heat.relative_humidity_pct}
    info = run_heat(grid=grid, scenario_grid=edited if has_edits else None, weather=weather, sensors=sensors,
                    out_dir=out_dir, time_utc=heat.time.isoformat(), directions=params.directions,
                    radius_m=params.radius_m, overwrite=True)
    if has_edits:
        _promote_scenario_fields(out_dir)
    return info


def _promote_scenario_fields(out_dir: Path) -> None:
    """Rename ``scenario_<f>`` to ``<f>`` (and ``<f>`` to ``baseline_<f>``) in heat/result.nc; SVF and
    shadow of the edited surfaces replace the baseline's."""
    import xarray as xr

    path = out_dir / "result.nc"
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ren = {}
    for v in list(ds.data_vars):
        if v.startswith("scenario_"):
            base = v[len("scenario_"):]
            if base in ds:
                ren[base] = f"baseline_{base}"
            ren[v] = base
    ds = ds.rename({k: f"__{k}" for k in ren}).rename({f"__{k}": v for k, v in ren.items()})
    ds.attrs["scenario_fields"] = ("svf, shadow, air_temperature, tmrt and utci are the scenario's (edited grid); "
                                   "baseline_* the unedited grid's")
    tmp = path.with_suffix(".nc.tmp")
    ds.to_netcdf(tmp)
    os.replace(tmp, path)
    # the GeoTIFFs follow: <f>.tif is the scenario's, baseline_<f>.tif the unedited grid's
    import rasterio

    for old, new in ren.items():
        if not old.startswith("scenario_"):
            continue
        base = new
        tif = out_dir / f"{base}.tif"
        if not tif.is_file():
            continue
        os.replace(tif, out_dir / f"baseline_{base}.tif")
        with rasterio.open(out_dir / f"baseline_{base}.tif") as src:
            profile, tags = src.profile, src.tags()
        with rasterio.open(tif, "w", **profile) as dst:
            dst.write(ds[base].to_numpy().astype(profile["dtype"]), 1)
            dst.update_tags(**tags, scenario="values of the edited grid (the run's scenario)")


def _outline_stats(bid: np.ndarray, values: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Per building id: max / min / mean of ``values`` over its outline (non-building cells 8-adjacent
    to its footprint). Returns (ids, values); NaN where the outline has no finite value."""
    ids = np.unique(bid[bid >= 0])
    nb = int(ids.max()) + 1 if len(ids) else 0
    rows, cols = bid.shape
    pb = np.full((rows + 2, cols + 2), -1, np.int64)
    pb[1:-1, 1:-1] = bid
    cell_r, cell_c = np.mgrid[0:rows, 0:cols]
    pairs_cell, pairs_b = [], []
    free = bid < 0
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            nbid = pb[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
            m = free & (nbid >= 0)
            pairs_cell.append((cell_r[m] * cols + cell_c[m]).astype(np.int64))
            pairs_b.append(nbid[m])
    if not nb:
        return ids, np.zeros(0)
    pc, pbid = np.concatenate(pairs_cell), np.concatenate(pairs_b)
    key = np.unique(pbid * (rows * cols) + pc)
    pbid, pc = key // (rows * cols), key % (rows * cols)
    v = np.asarray(values, np.float64).ravel()[pc]
    ok = np.isfinite(v)
    pbid, v = pbid[ok], v[ok]
    if how == "max":
        out = np.full(nb, -np.inf)
        np.maximum.at(out, pbid, v)
        out[~np.isfinite(out)] = np.nan
    elif how == "min":
        out = np.full(nb, np.inf)
        np.minimum.at(out, pbid, v)
        out[~np.isfinite(out)] = np.nan
    else:
        s = np.bincount(pbid, weights=v, minlength=nb)
        c = np.bincount(pbid, minlength=nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = s / c
    return ids, out[ids]


def _footprints(scene) -> dict[int, Any]:
    """Building root id -> footprint polygon (scene CRS, from the footprint triangles)."""
    import shapely

    from twin.grid import building_footprints

    idx, bid = building_footprints(scene)
    if not len(idx):
        return {}
    tri = scene.vertices[scene.triangles[idx]][:, :, :2]
    rings = np.concatenate([tri, tri[:, :1]], axis=1)
    polys = shapely.polygons(rings)
    polys = shapely.make_valid(polys)
    order = np.argsort(bid, kind="stable")
    b_sorted = bid[order]
    cuts = np.flatnonzero(np.diff(b_sorted)) + 1
    out = {}
    for grp in np.split(order, cuts):
        geom = shapely.union_all(polys[grp], grid_size=1e-6)
        out[int(bid[grp[0]])] = geom
    return out


def _building_table(scene, grid, hr_ds, screening, heat_ds):
    import geopandas as gpd
    import pandas as pd

    bid = np.asarray(grid["building_id"])
    ids = np.unique(bid[bid >= 0])
    gml = scene.features["gml_id"].astype(str)
    cell_area = grid.resolution * abs(grid.transform.e)
    df = pd.DataFrame({"building_id": ids.astype(np.int64), "gml_id": [gml.get(int(i), str(i)) for i in ids],
                       "footprint_m2": np.bincount(bid[bid >= 0], minlength=int(ids.max()) + 1 if len(ids) else 0)[ids]
                       * cell_area if len(ids) else []})
    if "roof_retention_mm" in grid:
        rr = np.asarray(grid["roof_retention_mm"])
        mx = np.zeros(int(ids.max()) + 1 if len(ids) else 0)
        if len(ids):
            np.maximum.at(mx, bid[bid >= 0], rr[bid >= 0])
        df["green_roof"] = mx[ids] > 0 if len(ids) else []
        df["roof_retention_mm"] = mx[ids] if len(ids) else []
    if hr_ds is not None:
        for name, how, col in (("max_depth", "max", "heavyrain_max_depth_m"),
                               ("max_speed", "max", "heavyrain_max_speed_m_per_s"),
                               ("arrival_time", "min", "heavyrain_arrival_time_s"),
                               ("hazard_rating", "max", "heavyrain_hazard_m2_per_s")):
            if name in hr_ds:
                _, v = _outline_stats(bid, hr_ds[name].to_numpy(), how)
                df[col] = v
    if screening is not None:
        ex = pd.DataFrame(screening.exposure.drop(columns="geometry"))
        ex = ex.set_index("building_id")
        for src, col in (("max_depth_m", "screening_depth_m"), ("max_upstream_area_m2", "screening_upstream_area_m2"),
                         ("flow_class", "screening_flow_class"), ("sink_id", "screening_sink_id"),
                         ("exposure", "screening_exposure")):
            if src in ex.columns:
                df[col] = ex[src].reindex(df["building_id"]).to_numpy()
    if heat_ds is not None:
        for name, how, col in (("air_temperature", "mean", "heat_air_temperature_c"), ("utci", "mean", "heat_utci_c"),
                               ("utci", "max", "heat_utci_max_c"), ("tmrt", "mean", "heat_tmrt_c"),
                               ("svf", "mean", "heat_svf")):
            if name in heat_ds and heat_ds[name].dims == ("y", "x"):
                _, v = _outline_stats(bid, heat_ds[name].to_numpy(), how)
                df[col] = v
    feet = _footprints(scene)   # the table's geometry is in the scene CRS
    geoms = [feet.get(int(i)) for i in df["building_id"]]
    crs = None if scene.crs.is_local else f"EPSG:{scene.crs.horizontal_epsg}"
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=crs))


# ============================================================================================ tiles
def _edited_scene(scene, scenario):
    """The scene with the scenario's terrain edits applied to its terrain raster (for the tiles)."""
    from twin.grid import Grid, TerrainRaster
    from twin.scenario import apply_edits

    terrain_edits = [e for e in scenario.edits if e.type in ("retention_basin", "terrain", "wall")]
    if not terrain_edits or scene.terrain is None:
        return scene
    t = scene.terrain
    g = Grid(t.transform, t.crs, t.shape, {"terrain_elevation": t.data}, {"terrain_elevation": "m"})
    sc = scenario.model_copy(update={"edits": terrain_edits})
    edited, _ = apply_edits(g, sc)
    out = copy.copy(scene)
    out.terrain = TerrainRaster(edited["terrain_elevation"], t.transform, t.crs,
                                dict(t.metadata, scenario_edits=[e.type for e in terrain_edits]))
    return out


def _result_fields(run_dir: Path, wanted: list[str]):
    import xarray as xr

    from twin.tiles.runs import ResultField

    fields = []
    sources = [run_dir / "heavyrain" / "result.nc", run_dir / "heat" / "result.nc"]
    for src in sources:
        if not src.is_file():
            continue
        with xr.open_dataset(src) as ds:
            for name in wanted:
                if name in ds and ds[name].dims == ("y", "x"):
                    da = ds[name]
                    fields.append(ResultField(name, ds["x"].to_numpy().astype(np.float64), ds["y"].to_numpy().astype(np.float64),
                                              da.to_numpy().astype(np.float64), da.attrs.get("units"), None,
                                              da.attrs.get("long_name")))
    scr = run_dir / "screening"
    for name in wanted:
        tif = scr / f"{name}.tif"
        if tif.is_file() and name not in {f.name for f in fields}:
            from twin.grid import Grid

            g = Grid.from_geotiff(tif)
            x, y = g.cell_centres()
            fields.append(ResultField(name, x, y, g[name].astype(np.float64), g.units.get(name), None, name))
    return fields


def _write_run_tiles(ws: Path, run_id: str, scene, run_dir: Path, buildings, info: dict, wanted: list[str],
                     styles: dict) -> dict:
    """Write WORKSPACE/tiles/runs/<run_id> (scene + static result layers), keeping the live snapshots."""
    import pandas as pd

    from twin.tiles import write_tiles
    from twin.tiles.runs import RunResults, update_manifest

    final = ws / "tiles" / "runs" / run_id
    staging = ws / "tiles" / "runs" / f".{run_id}.staging"
    for p in (staging, staging.with_name(staging.name + ".partial")):
        if p.exists():
            shutil.rmtree(p)
    table = None
    if buildings is not None and len(buildings):
        table = pd.DataFrame(buildings.drop(columns=["geometry", "building_id"], errors="ignore"))
        table = table.set_index(table["gml_id"].astype(str)).drop(columns=["gml_id"])
        table = table[~table.index.duplicated()]
    res = RunResults(run_id, run_dir, fields=_result_fields(run_dir, wanted), buildings=table, info=info)
    report = write_tiles(scene, staging, runs=[res], styles=styles, overwrite=True)
    live_snaps = final / "runs" / run_id / "snapshots"
    if live_snaps.is_dir():
        target = staging / "runs" / run_id / "snapshots"
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(live_snaps), str(target))
        live = json.loads((final / "manifest.json").read_text()) if (final / "manifest.json").is_file() else {}
        snaps = next((r.get("snapshots", []) for r in live.get("runs", []) if r.get("id") == run_id), [])

        def add(m):
            for r in m["runs"]:
                if r["id"] == run_id:
                    r["snapshots"] = sorted([s for s in snaps if not s.get("partial")], key=lambda s: s["time_s"])
        update_manifest(staging, add)
    trash = ws / "tiles" / "runs" / f".{run_id}.old"
    if trash.exists():
        shutil.rmtree(trash)
    if final.exists():
        os.rename(final, trash)
    os.rename(staging, final)
    if trash.exists():
        shutil.rmtree(trash)
    return {"dir": str(final), "layers": len(report.layers), "seconds": report.seconds, "notes": report.notes}


# ============================================================================================ the run
#: below this many cells the heavy-rain kernels run on one thread: a row-parallel sweep of a small grid
#: costs more in thread hand-offs than it saves (and far more on a loaded machine)
SERIAL_CELLS = 65536


@contextlib.contextmanager
def _threads_for(shape):
    import numba

    before = numba.get_num_threads()
    if shape[0] * shape[1] < SERIAL_CELLS:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _load_request(run_dir: Path) -> dict:
    p = run_dir / "request.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def execute_run(workspace: str | os.PathLike, run_id: str, progress: Progress | None = None) -> RunRecord:
    """Execute a registered run: grid, edits, models, run folder, tiles; the registry follows along.

    Parameters
    ----------
    workspace : path
    run_id : str
        A run created by :func:`run_scenario` (``register_only=True``) or the API; its folder holds
        ``scenario.json`` and ``request.json``.
    progress : callable(fraction, message), optional
        Called as the run advances (fraction 0..1). The registry record's progress and message are
        updated at most twice a second either way.

    Returns
    -------
    RunRecord
        Status ``done``; ``cancelled`` when the record's ``cancel_requested`` was set (checked at every
        progress step).

    Raises
    ------
    TwinError
        When a stage fails; the record is then ``failed`` with the message and ``run.json`` /
        ``error.log`` in the run folder say why.
    """
    from twin.scenario import apply_edits, load_scenario
    from twin.scene import Scene

    ws = Path(workspace)
    registry = RunRegistry(ws)
    rec = registry.get(run_id)
    if rec.status in ("done", "cancelled"):
        return rec
    run_dir = Path(rec.run_dir)
    t_start = time.perf_counter()
    notes: list[str] = []
    timings: dict[str, float] = {}
    report = None
    try:
        scenario = load_scenario(run_dir / "scenario.json")
        request = _load_request(run_dir)
        models = list(request.get("models") or scenario.models)
        want_tiles = bool(request.get("tiles", scenario.outputs.tiles))
        stages = ["grid", *models, "buildings"] + (["tiles"] if want_tiles else [])
        prog = _Progress(registry, run_id, progress, stages)
        registry.update(run_id, status="running", started=utc_now(), progress=0.0, message="building the grid",
                        error=None)
        for sub in ("heavyrain", "screening", "heat"):
            if (run_dir / sub).exists():
                shutil.rmtree(run_dir / sub)
        prog("grid", 0.0, "building the grid", force=True)

        # ---- grid and edits
        t0 = time.perf_counter()
        scene = Scene.load(_scene_dir(ws, scenario.scene))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            grid = scene.to_grid(scenario.resolution_m, bounds=scenario.bounds)
        notes += [f"grid: {w.message}" for w in caught if issubclass(w.category, UserWarning)]
        timings["grid_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        edited, report = apply_edits(grid, scenario, scene)
        notes += report.notes
        timings["edits_s"] = time.perf_counter() - t0
        edited.to_netcdf(run_dir / "grid.nc", overwrite=True)
        inputs = dict(rec.inputs, grid=_hash_grid(edited))
        registry.update(run_id, inputs=inputs)
        prog("grid", 1.0, f"grid {grid.shape[1]} x {grid.shape[0]} cells @ {grid.resolution:g} m, "
                          f"{len(scenario.edits)} edits", force=True)
        names = scene.features["gml_id"]
        x, y = edited.cell_centres()
        hp = scenario.parameters.heavyrain
        water_balance: dict = {}
        hr_ds = screening = heat_ds = None
        rain_depth_mm = None
        sim_duration_s = None
        forcing_desc = {}

        # ---- heavy rain
        if "heavyrain" in models:
            from twin.sim.heavyrain import Losses, simulate

            t0 = time.perf_counter()
            rain, rain_s, rain_depth_mm, desc = _rain(ws, scenario, edited)
            forcing_desc["rain"] = desc
            duration = sim_duration_s = hp.duration_s or rain_s + 3600.0
            rr = np.nan_to_num(np.asarray(edited["roof_retention_mm"], np.float64))
            if hp.infiltration == "grid":
                losses = Losses(model="green-ampt", initial_loss_mm=rr,
                                ks_mm_per_h=np.nan_to_num(edited["ks_mm_per_h"].astype(np.float64)),
                                suction_head_mm=np.nan_to_num(edited["suction_head_mm"].astype(np.float64)),
                                moisture_deficit=np.nan_to_num(edited["porosity"].astype(np.float64))
                                * (1.0 - hp.initial_saturation))
            elif rr.any():
                losses = Losses(initial_loss_mm=rr)
            else:
                losses = None
            drain = np.asarray(edited["drainage_mm_per_h"], np.float64)
            sealed = np.nan_to_num(edited["imperviousness"]) >= 0.5
            vals = np.unique(drain[sealed]) if sealed.any() else np.array([0.0])
            drainage = float(vals[0]) if len(vals) == 1 else drain   # one number where it is uniform
            snap_writer = None
            if want_tiles and scenario.outputs.snapshots and scene.terrain is not None:
                from twin.tiles import SnapshotWriter

                tiles_dir = ws / "tiles" / "runs" / run_id
                if tiles_dir.exists():
                    shutil.rmtree(tiles_dir)
                snap_writer = SnapshotWriter(tiles_dir, _edited_scene(scene, scenario), run=run_id,
                                             styles={"depth": RESULT_STYLES["depth"]})

            def on_snapshot(t_s, depth):
                if snap_writer is not None:
                    snap_writer.write(t_s, {"depth": depth}, x=x, y=y)

            def on_progress(t_s, dur, info):
                prog("heavyrain", t_s / dur, f"heavy rain: {t_s / 60:.0f} of {dur / 60:.0f} min simulated")

            with _threads_for(edited.shape):
                result = simulate(edited, duration_s=duration, rain=rain, boundary=hp.boundary,
                                  building_mode=hp.building_mode, losses=losses, drainage_mm_per_h=drainage,
                                  output_interval_s=hp.output_interval_s, depth_threshold_m=hp.depth_threshold_m,
                                  theta=hp.theta, cfl=hp.cfl, progress=on_progress, on_snapshot=on_snapshot,
                                  keep_snapshots=scenario.outputs.snapshots)
            result.write(run_dir / "heavyrain", overwrite=True)
            hr_ds = result.dataset
            water_balance = dict(result.run_info["water_balance"])
            timings["heavyrain_s"] = time.perf_counter() - t0
            prog("heavyrain", 1.0, "heavy rain done", force=True)

        # ---- screening
        if "screening" in models:
            from twin.sim.heavyrain.screening import ExposureThresholds, screen

            t0 = time.perf_counter()
            sp = scenario.parameters.screening
            if rain_depth_mm is None and scenario.forcing.rain is not None:
                rain_depth_mm = _rain(ws, scenario, edited)[2]
            run_depth = hr_ds["max_depth"].to_numpy().astype(np.float64) if hr_ds is not None else None
            screening = screen(edited, rain_mm=rain_depth_mm, run_depth=run_depth,
                               run_source="heavyrain" if run_depth is not None else "",
                               flow_classes=tuple(sp.flow_classes_m2),
                               thresholds=ExposureThresholds(*sp.depth_thresholds_m, *sp.flow_area_thresholds_m2),
                               min_sink_volume_m3=sp.min_sink_volume_m3, building_names=names)
            screening.write(run_dir / "screening", overwrite=True,
                            inputs={"scene": scenario.scene, "resolution_m": scenario.resolution_m,
                                    "rain_mm": rain_depth_mm, "run": run_id})
            timings["screening_s"] = time.perf_counter() - t0
            prog("screening", 1.0, "screening done", force=True)

        # ---- heat
        if "heat" in models:
            import xarray as xr

            t0 = time.perf_counter()
            heat = scenario.forcing.heat
            forcing_desc["heat"] = heat.describe()
            prog("heat", 0.0, "heat: sky view factor, shadows, air temperature, UTCI", force=True)
            sensors = _sensors_in_grid(ws, heat, grid, notes)
            heat_edits = any(e.type in ("unseal", "reseal", "trees", "retention_basin", "terrain", "wall")
                             for e in scenario.edits)
            info = _run_heat_model(grid, edited, heat, scenario.parameters.heat, run_dir / "heat", sensors,
                                   heat_edits)
            notes += [f"heat: {n}" for n in info.get("notes", [])]
            with xr.open_dataset(run_dir / "heat" / "result.nc") as ds:
                heat_ds = ds.load()
            timings["heat_s"] = time.perf_counter() - t0
            prog("heat", 1.0, "heat done", force=True)

        # ---- per-building table
        t0 = time.perf_counter()
        buildings = _building_table(scene, edited, hr_ds, screening, heat_ds)
        if len(buildings):
            buildings.to_parquet(run_dir / "buildings.parquet")
        timings["buildings_s"] = time.perf_counter() - t0
        prog("buildings", 1.0, f"{len(buildings)} buildings", force=True)

        # ---- tiles
        summary = {"id": run_id, "scenario": scenario.name, "scenario_id": scenario.id, "models": models,
                   "forcing": forcing_desc, "resolution_m": scenario.resolution_m}
        if want_tiles:
            t0 = time.perf_counter()
            prog("tiles", 0.0, "writing 3D tiles", force=True)
            if scene.terrain is None:
                notes.append("tiles: the scene has no terrain, so results are not draped")
            wanted = list(scenario.outputs.fields or DEFAULT_FIELDS)
            styles = dict(RESULT_STYLES)
            if sim_duration_s is not None:
                styles["arrival_time"] = {"colormap": "viridis", "vmin": 0.0, "vmax": float(sim_duration_s),
                                          "transparent_below": None}
            if scenario.forcing.heat is not None:
                ta = scenario.forcing.heat.air_temperature_c
                styles["air_temperature"] = {"colormap": "thermal", "vmin": ta - 2.0, "vmax": ta + 6.0,
                                             "transparent_below": None}
            tiles_info = _write_run_tiles(ws, run_id, _edited_scene(scene, scenario), run_dir, buildings, summary,
                                          wanted, styles)
            notes += [f"tiles: {n}" for n in tiles_info["notes"]]
            timings["tiles_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        rec = registry.update(run_id, status="done", progress=1.0, message="done", finished=utc_now(),
                              timings={k: round(v, 3) for k, v in timings.items()}, water_balance=water_balance)
        _write_run_json(run_dir, rec, scenario, report, notes, forcing_desc)
        if progress is not None:
            progress(1.0, "done")
        return rec
    except RunCancelled:
        timings["total_s"] = time.perf_counter() - t_start
        _drop_tiles(ws, run_id)
        rec = registry.update(run_id, status="cancelled", finished=utc_now(), message="cancelled",
                              timings={k: round(v, 3) for k, v in timings.items()})
        _write_run_json(run_dir, rec, None, report, notes, {})
        return rec
    except BaseException as exc:
        timings["total_s"] = time.perf_counter() - t_start
        msg = f"{type(exc).__name__}: {exc}"
        _drop_tiles(ws, run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.log").write_text(traceback.format_exc())
        rec = registry.update(run_id, status="failed", finished=utc_now(), message="failed", error=msg,
                              timings={k: round(v, 3) for k, v in timings.items()})
        _write_run_json(run_dir, rec, None, report, notes, {})
        if isinstance(exc, TwinError) or not isinstance(exc, Exception):
            raise
        raise TwinError(f"run {run_id} failed: {msg} (traceback in {run_dir / 'error.log'})") from exc


def _drop_tiles(ws: Path, run_id: str) -> None:
    """A run that did not finish keeps no tiles (its live snapshots would look like a result)."""
    for p in (ws / "tiles" / "runs" / run_id, ws / "tiles" / "runs" / f".{run_id}.staging"):
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)


def _write_run_json(run_dir: Path, rec: RunRecord, scenario, report, notes: list[str], forcing: dict) -> None:
    doc = rec.to_dict()
    doc.update({"name": rec.id, "notes": notes, "forcing": forcing,
                "edits": report.to_dict() if report is not None else None})
    if scenario is not None:
        doc["scenario_name"] = scenario.name
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=_json_default))
    os.replace(tmp, run_dir / "run.json")


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def run_scenario(workspace: str | os.PathLike, scenario, *, models=None, reuse: bool = True, tiles: bool | None = None,
                 progress: Progress | None = None, register_only: bool = False) -> RunRecord:
    """Run a scenario in a workspace (or reuse the finished run of the same scenario).

    Parameters
    ----------
    workspace : path
        The workspace folder (layout in DESIGN.md): the scene is ``workspace/scenes/<scenario.scene>``.
    scenario : Scenario, dict or JSON text
        Validated with :func:`twin.scenario.parse_scenario`. It is also saved as
        ``workspace/scenarios/<scenario_id>.json`` when no scenario of that id is there.
    models : list of str, optional
        A subset of ``heavyrain``, ``screening``, ``heat`` (default the scenario's).
    reuse : bool
        Return the newest ``done`` run with the same scenario hash, models, input hashes (scene
        files, sensor readings used) and software version instead of running again. ``False``
        forces a new run.
    tiles : bool, optional
        Write the run's tiles (default ``scenario.outputs.tiles``).
    progress : callable(fraction, message), optional
    register_only : bool
        Register the run and write its folder, but do not execute it (the API then calls
        :func:`execute_run` in a worker process).

    Returns
    -------
    RunRecord
    """
    from twin.scenario import MODELS, parse_scenario, scenario_hash

    ws = Path(workspace)
    sc = parse_scenario(scenario)
    run_models = list(sc.models if models is None else [m for m in MODELS if m in set(models)])
    unknown = set(models or ()) - set(MODELS)
    if unknown or not run_models:
        raise TwinValueError(f"models {sorted(unknown) or list(models or [])} unknown or empty; choose from {MODELS}")
    if "heavyrain" in run_models and sc.forcing.rain is None:
        raise TwinValueError("the heavyrain model needs the scenario's forcing.rain")
    if "heat" in run_models and sc.forcing.heat is None:
        raise TwinValueError("the heat model needs the scenario's forcing.heat")
    want_tiles = sc.outputs.tiles if tiles is None else bool(tiles)
    registry = RunRegistry(ws)
    h = scenario_hash(sc)
    version = software_version()
    inputs = input_hashes(ws, sc.model_copy(update={"models": run_models}))
    if reuse:
        done = registry.find_done(h, run_models, inputs=inputs, version=version)
        if done is not None and (not want_tiles or (ws / "tiles" / "runs" / done.id / "manifest.json").is_file()):
            if progress is not None:
                progress(1.0, f"reused run {done.id}")
            return done
    scen_file = ws / "scenarios" / f"{sc.id}.json"
    if not scen_file.exists():
        scen_file.parent.mkdir(parents=True, exist_ok=True)
        scen_file.write_text(sc.model_dump_json(indent=2, exclude_defaults=False))
    rec = registry.create(scenario_id=sc.id, scenario_hash=h, models=run_models, inputs=inputs, version=version)
    run_dir = Path(rec.run_dir)
    if run_dir.exists():
        raise TwinIOError(f"run folder {run_dir} exists already; remove it")
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.json").write_text(sc.model_dump_json(indent=2))
    (run_dir / "request.json").write_text(json.dumps({"models": run_models, "tiles": want_tiles}))
    if register_only:
        return rec
    return execute_run(ws, rec.id, progress)


def building_results(workspace: str | os.PathLike, run_id: str):
    """The per-building results of a run as a GeoDataFrame in EPSG:4326 (footprints, gml_id and the
    models' values: ``heavyrain_*``, ``screening_*``, ``heat_*``, ``green_roof``).

    Raises
    ------
    RunNotFoundError
        Unknown run id.
    TwinIOError
        The run has no ``buildings.parquet`` (not done, or the scene has no buildings).
    """
    import geopandas as gpd

    rec = RunRegistry(workspace).get(run_id)
    path = Path(rec.run_dir) / "buildings.parquet"
    if not path.is_file():
        raise TwinIOError(f"run {run_id} has no per-building results ({path} is missing; status {rec.status})")
    gdf = gpd.read_parquet(path)
    if gdf.crs is not None:
        gdf = gdf.to_crs("EPSG:4326")
    return gdf
