"""``twin sim MODEL ...``: simulations; each model a sub-subcommand (``heavyrain`` now, ``screening`` later).

``twin sim heavyrain (SCENE_DIR | --dem DEM.tif) --out RUN_DIR [options]`` is a shell over
:func:`twin.sim.heavyrain.simulate`.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    from twin.cli import sim_heat, sim_screening

    p = sub.add_parser("sim", help="run a simulation (heavyrain, screening, heat)",
                       description="Run a simulation on a scene or a raster.")
    models = p.add_subparsers(dest="model", metavar="MODEL")
    models.required = True
    _add_heavyrain(models)
    sim_screening.add_parser(models)
    heat = sim_heat.add_parser(models)
    heat.set_defaults(_run_model=sim_heat.run)
    return p


def _add_heavyrain(models) -> None:
    p = models.add_parser(
        "heavyrain", help="2D heavy-rain inundation (local inertial)",
        description="Where does water from a cloudburst flow, how deep, how fast, when. Writes RUN_DIR/result.nc, "
                    "max_depth.tif, gauges.csv and run.json.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("scene", nargs="?", metavar="SCENE_DIR", help="scene folder (burned with scene.to_grid)")
    src.add_argument("--dem", metavar="DEM.tif", help="bare DEM GeoTIFF (must have a CRS)")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--resolution", type=float, default=1.0, metavar="M", help="grid cell size for a scene (default 1 m)")
    rain = p.add_mutually_exclusive_group()
    rain.add_argument("--rain-mm-per-h", type=float, metavar="R", help="uniform rain intensity (mm/h)")
    rain.add_argument("--rain-series", metavar="rain.csv", help="time_s,intensity_mm_per_h (step function)")
    rain.add_argument("--rain-netcdf", metavar="rain.nc", help="gridded rain (time, y, x) on the model grid")
    rain.add_argument("--design-storm", choices=["block", "euler2"], help="design storm from --depth-mm and --duration-min")
    p.add_argument("--rain-duration", type=float, metavar="S", help="duration of --rain-mm-per-h (s; default the run)")
    p.add_argument("--depth-mm", type=float, help="design storm total depth (mm)")
    p.add_argument("--duration-min", type=float, help="design storm duration (min)")
    p.add_argument("--interval-min", type=float, default=5.0, help="design storm block length (min, default 5)")
    p.add_argument("--duration", type=float, metavar="S", help="simulated time (s; default: rain duration + 1 h)")
    p.add_argument("--manning", type=float, metavar="N", help="Manning's n for all cells (default: grid field, else 0.03)")
    p.add_argument("--inflow", metavar="inflow.csv", help="x,y,time_s,discharge_m3_per_s (linear in time)")
    p.add_argument("--gauges", metavar="gauges.csv", help="name,x,y")
    p.add_argument("--boundary", default="closed", choices=["closed", "open"], help="all four edges (default closed)")
    p.add_argument("--buildings", default="block", choices=["block", "raise"], help="buildings as walls or raised cells")
    p.add_argument("--infiltration", choices=["none", "grid"], default="none",
                   help="'grid': Green-Ampt from the scene's land cover")
    p.add_argument("--drainage-mm-per-h", type=float, default=0.0, help="sewer capacity on sealed cells (mm/h)")
    p.add_argument("--output-interval", type=float, default=300.0, metavar="S", help="depth snapshots every S seconds")
    p.add_argument("--depth-threshold", type=float, default=0.1, metavar="M", help="for arrival time and duration")
    p.add_argument("--theta", type=float, default=0.7, help="de Almeida theta (default 0.7)")
    p.add_argument("--cfl", type=float, default=0.7, help="Courant number (default 0.7)")
    p.add_argument("--threads", type=int, metavar="N", help="Numba threads (default all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing RUN_DIR")
    from twin.cli._dask import add_dask_options

    add_dask_options(p, tile=False)
    p.add_argument("--catchment-cells", type=int, default=250_000, metavar="N",
                   help="with --workers/--scheduler: run by catchments merged to at least N cells (default 250000)")
    p.add_argument("--buffer-cells", type=int, default=10, metavar="N",
                   help="with --workers/--scheduler: buffer around each catchment (default 10 cells)")
    p.set_defaults(_run_model=_run_heavyrain)


def run(args: argparse.Namespace) -> int:
    return args._run_model(args)


def _run_heavyrain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from twin.errors import TwinValueError
    from twin.sim import heavyrain as hr

    out = Path(args.out)
    if out.exists() and (out / "run.json").exists() and not args.overwrite:
        raise TwinValueError(f"{out} already holds a run; pass --overwrite or choose another --out")
    # ---- forcing (checked before any compute)
    rain = None
    inputs = []
    if args.rain_mm_per_h is not None:
        if args.rain_mm_per_h < 0:
            raise TwinValueError(f"--rain-mm-per-h {args.rain_mm_per_h} is negative; rain must be >= 0")
        dur = args.rain_duration or args.duration
        if dur is None:
            raise TwinValueError("--rain-mm-per-h needs --rain-duration S (or --duration S)")
        rain = hr.uniform_rain(args.rain_mm_per_h, dur)
    elif args.rain_series:
        rain = hr.read_rain_csv(args.rain_series)
        inputs.append(args.rain_series)
    elif args.design_storm:
        if args.depth_mm is None or args.duration_min is None:
            raise TwinValueError("--design-storm needs --depth-mm and --duration-min")
        rain = hr.design_storm(args.design_storm, depth_mm=args.depth_mm, duration_min=args.duration_min,
                               interval_min=args.interval_min)
    inflows = hr.read_inflow_csv(args.inflow) if args.inflow else []
    gauges = hr.read_gauges_csv(args.gauges) if args.gauges else []
    inputs += [p for p in (args.inflow, args.gauges, args.rain_netcdf) if p]
    duration = args.duration
    if duration is None:
        if rain is None or not hasattr(rain, "times_s"):
            raise TwinValueError("give --duration S")
        duration = float(rain.times_s[-1]) + 3600.0
    # ---- source
    if args.dem:
        source = args.dem
        grid_shape = None
    else:
        import warnings

        from twin.scene import Scene

        scene = Scene.load(args.scene)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            source = scene.to_grid(args.resolution)
        for w in caught:
            print(f"twin sim heavyrain: warning: {w.message}", file=sys.stderr)
        grid_shape = source.shape
    if args.rain_netcdf:
        rain = _rain_grid(args.rain_netcdf, source, grid_shape)
    from twin.cli import _dask

    if _dask.distributed(args):
        return _run_heavyrain_catchments(args, source, rain, duration, out)
    bar = None
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=round(duration), unit="s", desc="heavyrain", file=sys.stderr)

        def progress(t, total, info):
            bar.update(round(t) - bar.n)
    result = hr.simulate(source, duration_s=duration, rain=rain, inflows=inflows, gauges=gauges,
                         boundary=args.boundary, manning_n=args.manning, building_mode=args.buildings,
                         losses="grid" if args.infiltration == "grid" else None,
                         drainage_mm_per_h=args.drainage_mm_per_h, output_interval_s=args.output_interval,
                         depth_threshold_m=args.depth_threshold, threads=args.threads, progress=progress,
                         theta=args.theta, cfl=args.cfl, input_files=inputs)
    if bar is not None:
        bar.close()
    result.write(out, overwrite=args.overwrite)
    info = result.run_info
    wb = info["water_balance"]
    print(f"heavyrain {info['grid']['shape'][1]} x {info['grid']['shape'][0]} cells @ {info['grid']['cell_size_m']:g} m, "
          f"{duration:g} s in {info['steps']} steps, {info['run_wall_s']:.1f} s wall "
          f"({info['cell_steps_per_s'] / 1e6:.1f} M cell-steps/s); max depth "
          f"{float(result.dataset['max_depth'].max()):.3f} m; volume error {wb['relative_error']:.2e} -> {out}")
    return 0


def _run_heavyrain_catchments(args: argparse.Namespace, source, rain, duration: float, out) -> int:
    """``--workers/--scheduler``: one task per catchment (+ buffer), merged (twin.sim.heavyrain.catchments)."""
    import json

    import numpy as np

    from twin.cli import _dask
    from twin.cluster import cluster_info
    from twin.errors import TwinValueError
    from twin.sim import heavyrain as hr
    from twin.sim.heavyrain.catchments import run_by_catchments

    unsupported = [f for f, v in (("--inflow", args.inflow), ("--gauges", args.gauges), ("--rain-netcdf", args.rain_netcdf),
                                  ("--infiltration grid", args.infiltration == "grid"),
                                  ("--drainage-mm-per-h", args.drainage_mm_per_h)) if v]
    if unsupported or not isinstance(rain, hr.RainSeries):
        raise TwinValueError(f"heavy rain by catchments (--workers/--scheduler) takes uniform rain and no "
                             f"{', '.join(unsupported) or 'gridded rain'}; drop --workers/--scheduler for those")
    if isinstance(source, str):
        raster = hr.read_dem(source)
        z, transform, crs = raster.elevation, raster.transform, raster.crs_wkt or None
        manning = args.manning or 0.03
    else:
        z = np.asarray(source["terrain_elevation"], np.float64)
        if "building_id" in source:  # buildings as walls (block) or raised cells, as the single-domain run
            bld = np.asarray(source["building_id"]) >= 0
            z = (np.where(bld, np.nan, z) if args.buildings == "block" else
                 z + np.where(bld, np.nan_to_num(np.asarray(source["building_height"], np.float64)), 0.0))
        transform = source.transform
        crs = None if source.crs.is_local else f"EPSG:{source.crs.horizontal_epsg}"
        manning = args.manning or (float(np.nanmedian(source["manning_n"])) if "manning_n" in source else 0.03)
    from twin.sim.heavyrain.screening import flow_directions, screening_surface

    # catchments from the screening surface (buildings are obstacles whose roofs shed water), not from walls
    surface = screening_surface(source) if not isinstance(source, str) else z
    directions = flow_directions(surface, cell_size=float(transform.a))
    _dask._check_out(out, ["max_depth.tif", "catchments.tif", "catchments.csv", "run.json"], args.overwrite)
    with _dask.client(args) as c:
        info = cluster_info(c)
        res = run_by_catchments(z, transform=transform, duration_s=duration, rain=rain, directions=directions,
                                target_cells=args.catchment_cells, buffer_cells=args.buffer_cells,
                                boundary=args.boundary, manning_n=manning, client=c, progress=_dask._progress(args),
                                theta=args.theta, cfl=args.cfl, depth_threshold_m=args.depth_threshold)
    _dask._write_geotiff(out / "max_depth.tif", res.max_depth, transform, crs)
    _dask._write_geotiff(out / "catchments.tif", res.groups, transform, crs, dtype="int32")
    res.table.to_csv(out / "catchments.csv", index=False)
    run = {"kind": "heavyrain-catchments", "grid": {"shape": list(z.shape), "cell_size_m": float(transform.a)},
           "dask": info, "duration_s": duration, "groups": int(len(res.table)), "rounds": res.rounds,
           "overtopped": res.overtopped, "timings_s": res.timings_s, "manning_n": manning,
           "rain_m3": float(res.table["rain_m3"].sum()), "outflow_m3": float(res.table["outflow_m3"].sum())}
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str))
    still = int(res.table["overtopped"].sum())
    print(f"heavyrain by catchments {z.shape[1]} x {z.shape[0]} cells: {len(res.table)} groups in {res.rounds} round(s), "
          f"{len(res.overtopped)} overtopping(s) seen, {still} still overtopping; max depth "
          f"{float(np.nanmax(res.max_depth)):.3f} m -> {out}")
    return 0


def _rain_grid(path, source, grid_shape):
    import numpy as np

    from twin.errors import TwinValueError
    from twin.sim import heavyrain as hr

    rg, x, y = hr.read_rain_netcdf(path)
    if grid_shape is None:
        shape = hr.read_dem(source).elevation.shape
    else:
        shape = grid_shape
    if rg.intensity_mm_per_h.shape[1:] != tuple(shape):
        raise TwinValueError(f"rain grid {path} is {rg.intensity_mm_per_h.shape[1:]} cells (y, x), the model grid "
                             f"{tuple(shape)}; regrid the rain onto the DEM")
    if np.any(np.diff(y) > 0):
        raise TwinValueError(f"rain grid {path}: y must decrease (north-up rows like the DEM)")
    return rg
