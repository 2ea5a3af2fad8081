"""``twin import FILE... --out SCENE_DIR``: CityGML files into a saved scene."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from twin.errors import TwinIOError, TwinWarning


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help="import CityGML files into a scene folder",
                       description="Import CityGML 1.0/2.0/3.0 files (.gml, .xml, .citygml, optionally .gz) "
                                   "into one scene folder. Broken features are reported and skipped.")
    p.add_argument("files", nargs="+", metavar="FILE", help="CityGML files or folders of them")
    p.add_argument("--out", required=True, metavar="SCENE_DIR", help="scene folder to write")
    p.add_argument("--crs", help="CRS where the files name none (e.g. EPSG:25832, EPSG:25832+7837, local)")
    p.add_argument("--lod", type=int, choices=range(5), help="level of detail (default: highest per feature)")
    p.add_argument("--theme", help="appearance theme to keep (default: the first)")
    p.add_argument("--terrain", nargs="+", metavar="DEM",
                   help="DEM tiles (GeoTIFF/COG, .asc, DGM1 .xyz) to mosaic under the scene; without them the "
                        "CityGML TINRelief, else an approximation from building ground heights (with a warning)")
    p.add_argument("--terrain-margin", type=float, default=150.0, metavar="M",
                   help="metres of terrain kept around the buildings (default 150)")
    p.add_argument("--overwrite", action="store_true", help="replace SCENE_DIR if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from twin.workflows import import_city

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise TwinIOError(f"{out} exists; pass --overwrite to replace it")
    files = [Path(f) for f in args.files]
    total = 0
    for f in files:
        if f.is_file():
            total += f.stat().st_size
        elif f.is_dir():
            total += sum(g.stat().st_size for g in f.iterdir() if g.is_file())
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="import", file=sys.stderr,
               disable=args.quiet or None, dynamic_ncols=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TwinWarning)
            scene = import_city(files, out, lod=args.lod, crs=args.crs, theme=args.theme, terrain=args.terrain,
                                terrain_margin=args.terrain_margin, overwrite=args.overwrite,
                                progress=bar.update, on_file=lambda f: bar.set_postfix_str(f.name))
    finally:
        bar.close()
    for w in caught:
        print(f"twin import: warning: {w.message}", file=sys.stderr)
    summary = scene.summary()
    counts = ", ".join(f"{n} {k}" for k, n in summary["counts"].items())
    skipped = summary["skipped"]
    n_warnings = len(summary["problems"]) - skipped
    print(f"imported {counts or 'no features'}; {summary['triangles']} triangles; CRS {scene.crs} -> {out}")
    if scene.terrain is not None:
        t = scene.terrain
        print(f"terrain: {t.data.shape[1]} x {t.data.shape[0]} cells ({t.metadata.get('method', 'raster')})")
    if skipped or n_warnings:
        print(f"{skipped} skipped, {n_warnings} warnings (see `twin info {out}`)")
    return 0
