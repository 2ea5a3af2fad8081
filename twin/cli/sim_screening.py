"""``twin sim screening (SCENE_DIR | --dem DEM.tif) --out RUN_DIR [--rain-mm D] [--run FLOOD_RUN]``.

Sinks, flow paths and building exposure in seconds (the instant tier beside ``twin sim heavyrain``).
Registered by ``twin.cli.sim`` as a sub-subcommand: ``sim_screening.add_parser(sim_subparsers)``.
"""

from __future__ import annotations

import argparse
import sys
import warnings


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "screening", help="sinks, flow paths and building exposure without a dynamic run",
        description="Depression filling (Priority-Flood), the depression hierarchy and Fill-Spill-Merge ponding for a "
                    "rain depth, D8 flow accumulation and flow paths by upstream area, and per-building exposure. "
                    "Writes sinks.gpkg, flow_accumulation.tif, flow_paths.gpkg, filled_depth.tif, ponded_depth.tif "
                    "(with --rain-mm), buildings_exposure.parquet/.csv and run.json into --out.")
    p.add_argument("scene", nargs="?", metavar="SCENE_DIR", help="scene folder (twin import); buildings are obstacles")
    p.add_argument("--dem", nargs="+", metavar="DEM", help="terrain raster(s) instead of a scene (no buildings)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="output folder")
    p.add_argument("--rain-mm", type=float, metavar="D", help="uniform event depth for Fill-Spill-Merge ponding (mm)")
    p.add_argument("--run", metavar="FLOOD_RUN", help="folder of a dynamic run (result.nc max_depth) for the "
                                                     "exposure depth")
    p.add_argument("--resolution", type=float, metavar="M",
                   help="cell size in metres (scene: default 1; DEM: default the DEM's own)")
    p.add_argument("--min-sink-volume", type=float, default=1.0, metavar="M3",
                   help="smallest sink written to sinks.gpkg (default 1 m3)")
    p.add_argument("--flow-classes", type=float, nargs="+", metavar="M2",
                   help="lower upstream-area bounds of the flow-path classes in m2 (default 200 1000 10000 100000)")
    p.add_argument("--depth-thresholds", type=float, nargs=2, metavar=("MEDIUM", "HIGH"),
                   help="exposure depth thresholds in m (default 0.10 0.30)")
    p.add_argument("--flow-area-thresholds", type=float, nargs=2, metavar=("MEDIUM", "HIGH"),
                   help="exposure flow-path upstream-area thresholds in m2 (default 10000 100000)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    from twin.cli._dask import add_dask_options

    add_dask_options(p)  # tiled path: screening.zarr, flow_accumulation.tif, filled_depth.tif (twin.cli._dask)
    p.set_defaults(_run=run, _run_model=run)  # twin.cli.sim dispatches on _run_model
    return p


def run(args: argparse.Namespace) -> int:
    from twin.errors import TwinValueError
    from twin.grid import Grid
    from twin.sim.heavyrain.screening import (FLOW_PATH_CLASSES_M2, ExposureThresholds, read_run_max_depth,
                                              screen)

    if (args.scene is None) == (args.dem is None):
        raise TwinValueError("give either SCENE_DIR or --dem DEM.tif (not both, not neither)")
    from twin.cli import _dask

    if _dask.distributed(args):
        return _dask.run_screening_tiled(args)
    names = None
    if args.dem:
        from twin.terrain import read_terrain

        terrain = read_terrain(args.dem, resolution=args.resolution)
        grid = Grid(terrain.transform, terrain.crs, terrain.shape, {"terrain_elevation": terrain.data},
                    {"terrain_elevation": "m"})
        inputs = {"dem": [str(p) for p in args.dem]}
    else:
        from twin.scene import Scene

        scene = Scene.load(args.scene)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            grid = scene.to_grid(args.resolution or 1.0)
        for w in caught:
            print(f"twin sim screening: warning: {w.message}", file=sys.stderr)
        names = scene.features["gml_id"]
        inputs = {"scene": str(args.scene), "resolution_m": args.resolution or 1.0}
    th = ExposureThresholds(*(args.depth_thresholds or (0.10, 0.30)),
                            *(args.flow_area_thresholds or (10_000.0, 100_000.0)))
    run_depth = None
    if args.run:
        run_depth = read_run_max_depth(args.run, grid)
        inputs["flood_run"] = str(args.run)
    result = screen(grid, rain_mm=args.rain_mm, run_depth=run_depth, run_source=args.run or "",
                    flow_classes=tuple(args.flow_classes or FLOW_PATH_CLASSES_M2), thresholds=th,
                    min_sink_volume_m3=args.min_sink_volume, building_names=names)
    result.write(args.out, overwrite=args.overwrite, inputs=inputs)
    rows, cols = grid.shape
    exp = result.exposure
    line = (f"screening {cols} x {rows} cells @ {grid.resolution:g} m: {int(result.sinks['top_level'].sum())} sinks "
            f"({int((result.sinks['top_level'] & (result.sinks['volume_m3'] >= args.min_sink_volume)).sum())} >= "
            f"{args.min_sink_volume:g} m3), {len(result.flow_paths)} flow-path reaches, {len(exp)} buildings "
            f"({int((exp['exposure'] == 'high').sum())} high, {int((exp['exposure'] == 'medium').sum())} medium)")
    if result.ponding is not None:
        p = result.ponding
        line += (f"; {p.rain_mm:g} mm rain: {p.ponded_m3:.1f} m3 ponded, {p.outflow_m3:.1f} m3 out "
                 f"(volume error {p.volume_error:.1e})")
    print(line + f" -> {args.out}")
    return 0
