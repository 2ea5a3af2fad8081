"""``twin info SCENE_DIR [--json]``: what a scene holds."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="summarise a scene folder",
                       description="CRS, extent, feature and surface counts, and the import's problems.")
    p.add_argument("scene", metavar="SCENE_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--problems", type=int, default=10, metavar="N", help="problems to list in text mode")
    return p


def run(args: argparse.Namespace) -> int:
    from twin.scene import Scene
    from twin.terrain import format_alignment
    from twin.workflows import scene_info

    scene = Scene.load(args.scene)
    summary = scene_info(scene)
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    crs = summary["crs"]
    print(f"scene     {args.scene}")
    print(f"CRS       {crs['horizontal'] or 'local (unreferenced)'}"
          f"{' + ' + crs['vertical'] if crs['vertical'] else ' (no vertical datum given)'}"
          f"{'   from ' + repr(crs['source']) if crs['source'] else ''}")
    bb = summary["bbox"]
    if bb[0] is not None:
        print(f"extent    x {bb[0]:.2f} .. {bb[3]:.2f}  y {bb[1]:.2f} .. {bb[4]:.2f}  z {bb[2]:.2f} .. {bb[5]:.2f}"
              f"  ({bb[3] - bb[0]:.0f} m x {bb[4] - bb[1]:.0f} m)")
    print(f"layers    {', '.join(summary['layers']) or '-'}")
    print("features  " + (", ".join(f"{k} {v}" for k, v in summary["counts"].items()) or "-"))
    print("surfaces  " + (", ".join(f"{k} {v}" for k, v in summary["surfaces"].items()) or "-"))
    print(f"geometry  {summary['triangles']} triangles, {summary['vertices']} vertices, LoD {summary['lods']}")
    if summary["materials"] or summary["textures"]:
        print(f"appearance {summary['materials']} materials, {summary['textures']} textures "
              f"(theme {scene.metadata.get('appearance_theme')!r})")
    t = summary["terrain"]
    if t is not None:
        rows, cols = t["shape"]
        rng = f"{t['min']:.2f} .. {t['max']:.2f} m" if t["min"] is not None else "all nodata"
        print(f"terrain   {cols} x {rows} cells at {abs(t['resolution'][0]):g} m, heights {rng}, "
              f"{t['nodata_fraction'] * 100:.1f} % nodata ({t['method']})")
        for line in format_alignment(summary["alignment"]):
            print(f"          {line}")
    else:
        print("terrain   none (import with --terrain DEM...)")
    problems = summary["problems"]
    print(f"problems  {summary['skipped']} skipped, {len(problems) - summary['skipped']} warnings")
    for p in problems[: args.problems]:
        where = f"line {p['line']}" if p["line"] is not None else ""
        print(f"  [{p['action']}] {p['id'] or ''} {where}: {p['reason']}")
    if len(problems) > args.problems:
        print(f"  ... {len(problems) - args.problems} more (twin info --json lists all)")
    return 0
