"""``twin sim heat``: SVF, shadow, air temperature, UHI and UTCI maps into a run folder."""

from __future__ import annotations

import json
import sys


def add_parser(subparsers):
    p = subparsers.add_parser("heat", help="urban heat: sky view factor, shadows, air temperature, UHI, UTCI")
    p.add_argument("scene", nargs="?", help="scene folder (its terrain.tif + buildings) instead of --dsm")
    p.add_argument("--dsm", help="DSM GeoTIFF with absolute heights (terrain + buildings)")
    p.add_argument("--dem", help="terrain GeoTIFF on the DSM grid (building heights = DSM - DEM)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--sensors", help="CSV (station,x,y,[time],temperature,[flags]), GeoJSON points or a twin sensors "
                                     "SQLite store (quality-controlled first with twin.sensors.qc: flags are written "
                                     "to the store, nothing is deleted; --no-qc skips it)")
    p.add_argument("--time", help="ISO 8601 time (UTC unless an offset is given)")
    p.add_argument("--directions", type=int, default=32)
    p.add_argument("--radius", type=float, default=200.0, help="horizon search radius, m")
    p.add_argument("--svf-only", action="store_true")
    p.add_argument("--resolution", type=float, default=1.0, help="grid cell size of a SCENE_DIR, m (default 1)")
    p.add_argument("--air-temperature", type=float, dest="ta_ref",
                   help="rural/background air temperature of the hour, degC: without --sensors the air temperature "
                        "map is predictor-only (prior coefficients; flagged 'no local readings')")
    p.add_argument("--wind", type=float, default=2.0, help="wind speed at 10 m, m/s (UTCI; default 2)")
    p.add_argument("--rh", type=float, default=50.0, help="relative humidity, %% (default 50)")
    p.add_argument("--global-radiation", type=float, help="measured global horizontal irradiance, W/m2 (default: clear sky)")
    p.add_argument("--rural-station", help="name of a rural reference station among --sensors for the UHI")
    p.add_argument("--edits", "--scenario-delta", dest="edits",
                   help="GeoJSON of heat edits in the scene CRS (type trees|unseal|seal|water|green_roof): adds the "
                        "scenario's Ta/Tmrt/UTCI and delta_*.tif")
    p.add_argument("--no-qc", action="store_true", help="use the readings without quality control")
    p.add_argument("--select-predictors", action="store_true",
                   help="choose the number of predictors (none = ordinary kriging) by the hour's leave-one-out RMSE")
    p.add_argument("--tmrt-scheme", choices=("lite", "solweig"), default="lite",
                   help="mean radiant temperature scheme (default lite; see twin.sim.heat.comfort)")
    p.add_argument("--overwrite", action="store_true")
    from twin.cli._dask import add_dask_options

    add_dask_options(p)  # tiled SVF/shadow into heat.zarr + GeoTIFFs (twin.cli._dask.run_heat_tiled)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import numpy as np
    import rasterio

    from twin.errors import TwinError
    from twin.sim.heat.model import read_sensors_table, run_heat

    from twin.cli import _dask
    if _dask.distributed(args):
        return _dask.run_heat_tiled(args)
    try:
        grid = None
        if args.dsm:
            with rasterio.open(args.dsm) as src:
                dsm = src.read(1, masked=True).filled(np.nan).astype(np.float32)
                transform, epsg = src.transform, (src.crs.to_epsg() if src.crs else None)
        elif args.scene:
            from twin.scene import Scene
            from twin.sim.heat.predictors import surfaces_from_grid

            scene = Scene.load(args.scene)
            grid = scene.to_grid(args.resolution)
            dsm, transform = surfaces_from_grid(grid)[0], grid.transform
            epsg = getattr(grid.crs, "horizontal_epsg", None)   # int, e.g. 25832
        else:
            print("twin sim heat: give a SCENE_DIR or --dsm DSM.tif", file=sys.stderr)
            return 2
        dem = None
        if args.dem:
            with rasterio.open(args.dem) as src:
                dem = src.read(1, masked=True).filled(np.nan).astype(np.float32)
            if dem.shape != dsm.shape:
                print(f"twin sim heat: --dem has shape {dem.shape}, the DSM {dsm.shape}; resample it to the DSM grid",
                      file=sys.stderr)
                return 2
        lonlat = None
        if epsg:
            from pyproj import Transformer

            cx, cy = transform @ (dsm.shape[1] / 2, dsm.shape[0] / 2)
            lonlat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(cx, cy)
        sensors = None
        if args.sensors and str(args.sensors).endswith((".sqlite", ".db")):
            sensors = _from_store(args.sensors, args.time, epsg, qc=not args.no_qc)
        elif args.sensors:
            sensors = read_sensors_table(args.sensors, time=args.time)
        weather = None
        if args.ta_ref is not None:
            if not args.time:
                print("twin sim heat: --air-temperature needs --time (the hour of the weather situation)", file=sys.stderr)
                return 2
            weather = {"time_utc": args.time, "ta_ref_c": args.ta_ref, "wind_m_per_s": args.wind, "rh_pct": args.rh,
                       "global_w_m2": args.global_radiation}
        scenario_grid = None
        if args.edits:
            if grid is None:
                print("twin sim heat: --edits needs a SCENE_DIR (its land cover and trees are what the edits change)",
                      file=sys.stderr)
                return 2
            from twin.sim.heat.edits import apply_heat_edits

            scenario_grid, _ = apply_heat_edits(grid, json.loads(open(args.edits, encoding="utf-8").read()))
        res = run_heat(None if grid is not None else dsm, transform=transform, crs_epsg=epsg, out_dir=args.out, dem=dem,
                       sensors=sensors, time_utc=args.time, directions=args.directions, radius_m=args.radius,
                       svf_only=args.svf_only, lonlat=lonlat, overwrite=args.overwrite, grid=grid, weather=weather,
                       wind_m_per_s=args.wind, rh_pct=args.rh, rural_station=args.rural_station,
                       scenario_grid=scenario_grid, qc=not args.no_qc, tmrt_scheme=args.tmrt_scheme,
                       select_predictors=args.select_predictors)
    except TwinError as exc:
        print(f"twin sim heat: {exc}", file=sys.stderr)
        return 2
    at = res.get("air_temperature", {})
    print(json.dumps({k: res[k] for k in ("air_temperature_method", "timings_s", "notes", "scenario") if k in res} |
                     ({"loo_rmse_k": at["loo_rmse_k"]} if "loo_rmse_k" in at else {})))
    return 0


def _from_store(path, hour, epsg, *, qc: bool = True):
    """Hourly station means from a twin.sensors SQLite store, projected to the DSM's CRS.

    With ``qc`` the store's air temperatures are quality-controlled first (twin.sensors.qc.run_qc:
    range, spike, stuck, CrowdQC-style spatial outliers; flags are written to the store, nothing is
    deleted; staleness is judged at the end of the hour asked for); heat_forcing then reads only
    unflagged readings.
    """
    import pandas as pd
    from pyproj import Transformer

    from twin.errors import TwinValueError
    from twin.sensors import heat_forcing, open_store, run_qc

    if not hour or not epsg:
        raise TwinValueError("reading a sensor store needs --time and a DSM with a CRS")
    with open_store(path) as store:
        if qc:
            end = pd.Timestamp(hour)
            end = (end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")) + pd.Timedelta(hours=1)
            run_qc(store, "air_temperature", now=int(end.value // 1000))
        ds = heat_forcing(store, hour=hour)
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(ds.lon.values, ds.lat.values)
    return pd.DataFrame({"station": ds.station.values, "x": x, "y": y, "temperature": ds.air_temperature.values})
