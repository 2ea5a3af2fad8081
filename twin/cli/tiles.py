"""``twin tiles SCENE_DIR [--run RUN_DIR ...] --out TILES_DIR``: 3D Tiles 1.1 for CesiumJS."""

from __future__ import annotations

import argparse
import sys
import warnings


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("tiles", help="write buildings, terrain and results as 3D Tiles 1.1",
                       description="Buildings (glb with per-building properties), terrain mesh tiles, result drapes, "
                                   "water surfaces and time snapshots under one folder, with manifest.json for the viewer.")
    p.add_argument("scene", metavar="SCENE_DIR")
    p.add_argument("--run", action="append", default=[], metavar="RUN_DIR",
                   help="simulation run folder (result.nc, run.json, *.parquet per building); repeatable")
    p.add_argument("--out", required=True, metavar="TILES_DIR")
    p.add_argument("--max-features-per-tile", type=int, default=1000, metavar="N", help="buildings per tile (1000)")
    p.add_argument("--terrain-tile-cells", type=int, default=128, metavar="N", help="quads per terrain tile side (128)")
    p.add_argument("--no-quantize", action="store_true", help="float32 positions instead of KHR_mesh_quantization")
    p.add_argument("--gzip-json", action="store_true",
                   help="also write .gz siblings of the JSON files (serve with Content-Encoding: gzip)")
    p.add_argument("--vertical-datum", metavar="EPSG:CODE",
                   help="height system of a scene whose CRS has none (e.g. EPSG:7837 DHHN2016, EPSG:5783 DHHN92)")
    p.add_argument("--allow-local", action="store_true",
                   help="write a scene with a local CRS un-georeferenced (default: refuse)")
    p.add_argument("--overwrite", action="store_true", help="replace TILES_DIR if it exists")
    from twin.cli._dask import add_dask_options

    add_dask_options(p, tile=False)  # one task per building tile subtree
    return p


def run(args: argparse.Namespace) -> int:
    from twin.cli import _dask
    from twin.workflows import tiles

    with warnings.catch_warnings(record=True) as caught, _dask.client(args) as client:
        warnings.simplefilter("always")
        report = tiles(args.scene, args.out, runs=args.run, max_features_per_tile=args.max_features_per_tile,
                       quantize=not args.no_quantize, terrain_tile_cells=args.terrain_tile_cells,
                       gzip_json=args.gzip_json, overwrite=args.overwrite, vertical_datum=args.vertical_datum,
                       allow_local=args.allow_local, client=client)
    for w in caught:
        print(f"twin tiles: warning: {w.message}", file=sys.stderr)
    b = report.buildings
    print(f"{b.features} buildings in {b.tiles} tiles ({b.content_bytes / 1e6:.2f} MB glb)"
          + (f", terrain {report.terrain['tiles']} tiles ({report.terrain['content_bytes'] / 1e6:.2f} MB)"
             if report.terrain else "")
          + f", {len(report.layers)} layers in {report.seconds['total']:.1f} s -> {report.out / 'manifest.json'}")
    for note in report.notes:
        print(f"twin tiles: note: {note}", file=sys.stderr)
    return 0
