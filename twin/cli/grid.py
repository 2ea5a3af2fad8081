"""``twin grid SCENE_DIR --resolution 1 [--landcover FILE] --out grid.nc``: burn a scene into a grid."""

from __future__ import annotations

import argparse
import sys
import warnings


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("grid", help="burn a scene into a simulation grid (NetCDF or GeoTIFF)",
                       description="Terrain, building id and height, DSM, land cover, imperviousness, Manning's n, "
                                   "infiltration parameters, tree canopy and water on a raster in the scene's CRS.")
    p.add_argument("scene", metavar="SCENE_DIR")
    p.add_argument("--resolution", type=float, required=True, metavar="M", help="cell size in metres")
    p.add_argument("--out", required=True, metavar="FILE", help="grid.nc (all fields) or field.tif (with --field)")
    p.add_argument("--field", action="append", metavar="NAME",
                   help="field to write (repeatable); a GeoTIFF holds the fields as bands")
    p.add_argument("--landcover", metavar="FILE", help="GeoPackage/GeoJSON/Shapefile of land-cover polygons")
    p.add_argument("--class-column", default="class", metavar="COL", help="column of --landcover with the class")
    p.add_argument("--landcover-table", metavar="FILE",
                   help="TOML/JSON class table (layout of twin/data/landcover/default.toml)")
    p.add_argument("--bounds", type=float, nargs=4, metavar=("WEST", "SOUTH", "EAST", "NORTH"),
                   help="extent in scene CRS metres (default: the terrain's extent)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return p


def run(args: argparse.Namespace) -> int:
    from twin.grid import scene_to_grid
    from twin.scene import Scene

    scene = Scene.load(args.scene)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = scene_to_grid(scene, args.resolution, bounds=args.bounds, landcover=args.landcover,
                             landcover_table=args.landcover_table, class_column=args.class_column)
    for w in caught:
        print(f"twin grid: warning: {w.message}", file=sys.stderr)
    fields = args.field[0] if args.field and len(args.field) == 1 else args.field
    if fields is None and str(args.out).lower().endswith((".tif", ".tiff")):
        print("twin grid: note: no --field given, the GeoTIFF holds every field as a band", file=sys.stderr)
    path = grid.write(args.out, fields=fields, overwrite=args.overwrite)
    rows, cols = grid.shape
    w, s, e, n = grid.bounds
    print(f"grid {cols} x {rows} cells @ {grid.resolution:g} m, x {w:.1f}..{e:.1f} y {s:.1f}..{n:.1f}, "
          f"{int((grid['building_id'] >= 0).sum())} building cells -> {path}")
    return 0
