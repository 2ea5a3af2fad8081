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
    p.add_argument("--sensors", help="CSV (station,x,y,[time],temperature), GeoJSON points or a twin sensors SQLite store")
    p.add_argument("--time", help="ISO 8601 time (UTC unless an offset is given)")
    p.add_argument("--directions", type=int, default=32)
    p.add_argument("--radius", type=float, default=200.0, help="horizon search radius, m")
    p.add_argument("--svf-only", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import numpy as np
    import rasterio

    from twin.errors import TwinError
    from twin.sim.heat.model import read_sensors_table, run_heat

    try:
        if args.dsm:
            with rasterio.open(args.dsm) as src:
                dsm = src.read(1, masked=True).filled(np.nan).astype(np.float32)
                transform, epsg = src.transform, (src.crs.to_epsg() if src.crs else None)
        elif args.scene:
            from twin.scene import Scene

            scene = Scene.load(args.scene)
            grid = scene.to_grid(1.0)
            dsm, transform = grid["dsm"], grid.transform
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
        if args.sensors and args.sensors.endswith((".sqlite", ".db")):
            sensors = _from_store(args.sensors, args.time, epsg)
        elif args.sensors:
            sensors = read_sensors_table(args.sensors, time=args.time)
        res = run_heat(dsm, transform=transform, crs_epsg=epsg, out_dir=args.out, dem=dem, sensors=sensors,
                       time_utc=args.time, directions=args.directions, radius_m=args.radius, svf_only=args.svf_only,
                       lonlat=lonlat, overwrite=args.overwrite)
    except TwinError as exc:
        print(f"twin sim heat: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: res[k] for k in ("timings_s", "notes") if k in res} |
                     ({"loo_rmse_k": res["air_temperature"]["loo_rmse_k"]} if "air_temperature" in res else {})))
    return 0


def _from_store(path, hour, epsg):
    """Hourly station means from a twin.sensors SQLite store, projected to the DSM's CRS."""
    import pandas as pd
    from pyproj import Transformer

    from twin.errors import TwinValueError
    from twin.sensors import heat_forcing, open_store

    if not hour or not epsg:
        raise TwinValueError("reading a sensor store needs --time and a DSM with a CRS")
    with open_store(path) as store:
        ds = heat_forcing(store, hour=hour)
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(ds.lon.values, ds.lat.values)
    return pd.DataFrame({"station": ds.station.values, "x": x, "y": y, "temperature": ds.air_temperature.values})
