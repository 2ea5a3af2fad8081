"""``--workers N`` / ``--scheduler ADDRESS`` for ``twin sim ...`` and ``twin tiles``, and the tiled runs they select.

Without either option every command runs as before (in memory, in this process). With one of them
the command runs its tiled / distributed path through :func:`twin.cluster.dask_client`:

- ``twin sim screening``: :func:`twin.sim.heavyrain.tiled_screening.tiled_screening` (filled DEM, D8,
  flow accumulation into ``RUN_DIR/screening.zarr`` and GeoTIFFs);
- ``twin sim heat``: tiled SVF (and the shadow at ``--time``) into ``RUN_DIR/heat.zarr`` and GeoTIFFs;
- ``twin sim heavyrain``: :func:`twin.sim.heavyrain.catchments.run_by_catchments`;
- ``twin tiles``: one Dask task per building tile subtree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_dask_options(p: argparse.ArgumentParser, *, tile: bool = True) -> None:
    """Add ``--workers``, ``--scheduler`` (mutually exclusive) and ``--tile`` to a subcommand."""
    g = p.add_argument_group("distributed (Dask)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--workers", type=int, metavar="N",
                   help="run the tiled/distributed path on a LocalCluster of N worker processes (127.0.0.1)")
    x.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the tiled/distributed path on a running Dask cluster (tcp://host:8786)")
    if tile:
        g.add_argument("--tile", type=int, default=1024, metavar="CELLS",
                       help="raster tile side for the tiled path (default 1024 cells)")


def distributed(args: argparse.Namespace) -> bool:
    return getattr(args, "workers", None) is not None or getattr(args, "scheduler", None) is not None


def client(args: argparse.Namespace):
    from twin.cluster import dask_client

    return dask_client(workers=args.workers, scheduler=args.scheduler)


def _progress(args) -> bool:
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def _check_out(out: Path, names: list[str], overwrite: bool) -> None:
    from twin.errors import TwinIOError

    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        raise TwinIOError(f"{out} already holds {existing}; pass --overwrite to replace them")
    out.mkdir(parents=True, exist_ok=True)


def _write_geotiff(path: Path, arr, transform, crs, dtype="float32") -> None:
    from twin.terrain.windows import write_tiled_geotiff

    chunk = 1024
    write_tiled_geotiff(path, shape=tuple(arr.shape), transform=transform, crs=crs, chunk=chunk, dtype=dtype,
                        overwrite=True, block=lambda r0, r1, c0, c1: arr[r0:r1, c0:c1])


def run_screening_tiled(args: argparse.Namespace) -> int:
    """``twin sim screening ... --workers/--scheduler``: tiled fill, D8 and flow accumulation."""
    import numpy as np

    from twin.cluster import cluster_info
    from twin.errors import TwinValueError
    from twin.sim.heavyrain.tiled_screening import tiled_screening

    if args.rain_mm or args.run:
        raise TwinValueError("--rain-mm and --run need the depression hierarchy and exposure, which run untiled; "
                             "drop --workers/--scheduler for them")
    out = Path(args.out).resolve()
    _check_out(out, ["screening.zarr", "flow_accumulation.tif", "filled_depth.tif", "run.json"], args.overwrite)
    if args.dem:
        from twin.terrain.windows import open_mosaic

        if args.resolution:
            raise TwinValueError("--resolution is not supported with --workers (the DEM tiles are read in windows "
                                 "on their own grid); resample them first")
        dem = open_mosaic(args.dem)
        transform, crs, cell = dem.transform, dem.crs_wkt, dem.cell_size
        inputs = {"dem": [str(p) for p in args.dem]}
    else:
        from twin.scene import Scene
        from twin.sim.heavyrain.screening import screening_surface

        scene = Scene.load(args.scene)
        grid = scene.to_grid(args.resolution or 1.0)
        dem = screening_surface(grid)
        transform, cell = grid.transform, grid.resolution
        crs = None if grid.crs.is_local else f"EPSG:{grid.crs.horizontal_epsg}"
        inputs = {"scene": str(args.scene), "resolution_m": args.resolution or 1.0}
    with client(args) as c:
        info = cluster_info(c)
        res = tiled_screening(dem, cell_size=cell, tile=args.tile, client=c, store=out / "screening.zarr",
                              progress=_progress(args), overwrite=args.overwrite)
    _write_geotiff(out / "flow_accumulation.tif", res.upstream_area_m2, transform, crs)
    _write_geotiff(out / "filled_depth.tif", res.filled_depth, transform, crs)
    rows, cols = dem.shape
    run = {"kind": "heavyrain-screening-tiled", "inputs": inputs, "grid": {"shape": [rows, cols], "resolution_m": cell,
           "transform": list(transform)[:6]}, "dask": info, "tiles": res.tiles, "tile_cells": args.tile,
           "graph": res.graph, "timings_s": res.timings_s,
           "outputs": ["screening.zarr (filled, filled_depth, d8, flow_accumulation)", "flow_accumulation.tif",
                       "filled_depth.tif"],
           "not_tiled": "sinks, Fill-Spill-Merge, flow paths and building exposure run untiled (without --workers)"}
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str))
    fd = res.filled_depth
    filled_m3 = float(sum(np.nansum(fd[r0:r0 + args.tile, :]) for r0 in range(0, rows, args.tile))) * cell * cell
    print(f"tiled screening {cols} x {rows} cells @ {cell:g} m in {res.tiles} tiles on "
          f"{info['workers'] or 'in-process'} workers: {filled_m3:.1f} m3 in filled sinks -> {out}")
    return 0


def run_heat_tiled(args: argparse.Namespace) -> int:
    """``twin sim heat ... --workers/--scheduler``: tiled SVF (and the shadow at ``--time``)."""
    import numpy as np

    from twin.cluster import cluster_info, compute
    from twin.errors import TwinValueError
    from twin.sim.heat.tiled import tiled_sky_view_factor, tiled_sunlit_fraction

    if args.sensors or getattr(args, "ta_ref", None) is not None or getattr(args, "edits", None):
        raise TwinValueError("with --workers/--scheduler twin sim heat computes the geometry (SVF, shadow) by tiles; "
                             "air temperature and UTCI run in memory: drop --workers/--scheduler for --sensors")
    out = Path(args.out).resolve()  # workers may run in another directory
    _check_out(out, ["heat.zarr", "svf.tif", "shadow.tif", "run.json"], args.overwrite)
    if args.dsm:
        from twin.terrain.windows import open_mosaic

        dsm = open_mosaic([args.dsm])
        transform, crs, cell = dsm.transform, dsm.crs_wkt, dsm.cell_size
        import pyproj

        epsg = pyproj.CRS.from_wkt(crs).to_epsg()
    elif args.scene:
        from twin.scene import Scene

        grid = Scene.load(args.scene).to_grid(getattr(args, "resolution", 1.0) or 1.0)
        dsm, transform, cell = np.asarray(grid["dsm"], np.float32), grid.transform, grid.resolution
        epsg = None if grid.crs.is_local else grid.crs.horizontal_epsg
        crs = f"EPSG:{epsg}" if epsg else None
    else:
        raise TwinValueError("give a SCENE_DIR or --dsm DSM.tif")
    import dask.array as da

    with client(args) as c:
        info = cluster_info(c)
        layers = {"svf": tiled_sky_view_factor(dsm, cell_m=cell, directions=args.directions, radius_m=args.radius,
                                               tile=args.tile)}
        sun = None
        if args.time:
            from pyproj import Transformer

            from twin.sim.heat.sun import solar_position

            if not epsg:
                raise TwinValueError("a --time needs the scene's position: give a DSM with a CRS")
            cx, cy = transform * (dsm.shape[1] / 2, dsm.shape[0] / 2)
            lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(cx, cy)
            sp = solar_position(args.time, lat, lon).iloc[0]
            sun = (float(sp["azimuth"]), float(sp["apparent_elevation"]))
            layers["shadow"] = 1.0 - tiled_sunlit_fraction(dsm, cell_m=cell, sun_azimuth_deg=sun[0],
                                                           sun_elevation_deg=sun[1], tile=args.tile, client=c)
        import zarr

        zarr.open_group(str(out / "heat.zarr"), mode="w")
        targets = [da.to_zarr(arr.astype(np.float32).rechunk((args.tile, args.tile)), str(out / "heat.zarr"), component=name, overwrite=True,
                              compute=False) for name, arr in layers.items()]
        compute(*targets, client=c, progress=_progress(args), desc="heat: tiles")
    g = zarr.open_group(str(out / "heat.zarr"), mode="r")
    for name in layers:
        _write_geotiff(out / f"{name}.tif", g[name], transform, crs)
    run = {"kind": "heat-tiled", "grid": {"shape": list(dsm.shape), "resolution_m": cell}, "dask": info,
           "directions": args.directions, "radius_m": args.radius, "sun_azimuth_elevation_deg": sun,
           "outputs": [f"{n}.tif" for n in layers] + ["heat.zarr"],
           "not_tiled": "air temperature, UHI and UTCI run in memory (without --workers)"}
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str))
    print(f"tiled heat {dsm.shape[1]} x {dsm.shape[0]} cells @ {cell:g} m: {', '.join(layers)} -> {out}")
    return 0
