"""``twin scenario new|validate|run|schema`` (and ``compare``/``report`` from ``twin.cli.scenario_compare``).

Shells over :mod:`twin.scenario` and :func:`twin.workflows.run_scenario`:

- ``twin scenario new NAME --scene SCENE [--workspace WS | --out FILE] [storm / hot-day options]``
  writes a starter scenario JSON;
- ``twin scenario validate FILE...`` checks scenario files and prints each problem as ``field.path: message``;
- ``twin scenario run WORKSPACE SCENARIO [--models ...] [--force] [--no-tiles]`` runs one (a file or a
  scenario id of ``WORKSPACE/scenarios``), or reuses its finished run;
- ``twin scenario schema [--out FILE]`` prints the JSON Schema.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("scenario", help="describe, validate, run and compare scenarios",
                       description="Scenarios: edits (unseal, green roofs, trees, retention basins, terrain, walls, "
                                   "sewer capacity), forcing (design storms, observed rain, a hot day), models.")
    cmds = p.add_subparsers(dest="scenario_command", metavar="COMMAND")
    cmds.required = True

    n = cmds.add_parser("new", help="write a starter scenario JSON",
                        description="Write a scenario with a design storm and/or a hot day and no edits; add edits "
                                    "in the file (see `twin scenario schema`).")
    n.add_argument("name", help="scenario name (its id is the slug of it)")
    n.add_argument("--scene", required=True, help="scene id (folder name under WORKSPACE/scenes)")
    where = n.add_mutually_exclusive_group(required=True)
    where.add_argument("--workspace", metavar="WS", help="write WS/scenarios/<id>.json")
    where.add_argument("--out", metavar="FILE", help="write this file")
    n.add_argument("--resolution", type=float, default=2.0, metavar="M", help="grid cell size (default 2 m)")
    n.add_argument("--return-period", type=float, metavar="A", help="design storm return period (years)")
    n.add_argument("--sri", type=int, metavar="N", help="Starkregenindex level 1-12 instead of a return period")
    n.add_argument("--depth-mm", type=float, metavar="D",
                   help="the storm's depth at the place (KOSTRA-DWD for this return period and duration)")
    n.add_argument("--duration-min", type=float, default=60.0, metavar="MIN", help="storm duration (default 60)")
    n.add_argument("--hot-day", metavar="ISO_TIME", help="hour of a hot day, e.g. 2025-07-15T15:00:00+02:00")
    n.add_argument("--air-temperature", type=float, default=32.0, metavar="C",
                   help="reference air temperature of the hot day (default 32 degC)")
    n.add_argument("--description", default="")
    n.add_argument("--overwrite", action="store_true", help="replace an existing file")
    n.set_defaults(_scenario_run=_run_new)

    v = cmds.add_parser("validate", help="check scenario files",
                        description="Validate scenario JSON files against the schema; prints every problem as "
                                    "field.path: message. Exit status 2 if any file is invalid.")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("--json", action="store_true", help="print one JSON object per file")
    v.set_defaults(_scenario_run=_run_validate)

    r = cmds.add_parser("run", help="run a scenario (or reuse its finished run)",
                        description="Grid -> edits -> models -> run folder WORKSPACE/runs/<run_id> -> tiles "
                                    "WORKSPACE/tiles/runs/<run_id>, recorded in WORKSPACE/registry.sqlite. The same "
                                    "scenario on the same inputs and software reuses the finished run unless --force.")
    r.add_argument("workspace", metavar="WORKSPACE")
    r.add_argument("scenario", metavar="SCENARIO", help="scenario file, or the id of WORKSPACE/scenarios/<id>.json")
    r.add_argument("--models", nargs="+", choices=["heavyrain", "screening", "heat"], help="subset of the models")
    r.add_argument("--force", action="store_true", help="run again even if a finished run exists")
    r.add_argument("--no-tiles", action="store_true", help="skip the 3D tiles")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the run record as JSON")
    r.set_defaults(_scenario_run=_run_run)

    s = cmds.add_parser("schema", help="print the scenario JSON Schema")
    s.add_argument("--out", metavar="FILE", help="write it to a file instead")
    s.set_defaults(_scenario_run=_run_schema)

    try:
        compare = importlib.import_module("twin.cli.scenario_compare")
    except ModuleNotFoundError as exc:
        if exc.name != "twin.cli.scenario_compare":
            raise
    else:
        compare.add_parsers(cmds)
    return p


def run(args: argparse.Namespace) -> int:
    return int(args._scenario_run(args) or 0)


# ------------------------------------------------------------------------------------------------ new
def _run_new(args) -> int:
    from twin.errors import TwinIOError
    from twin.scenario import parse_scenario

    forcing: dict = {}
    if args.depth_mm is not None or args.return_period is not None or args.sri is not None:
        storm = {"type": "design_storm", "duration_min": args.duration_min}
        if args.return_period is not None:
            storm["return_period_a"] = args.return_period
        if args.sri is not None:
            storm["sri"] = args.sri
        if args.depth_mm is not None:
            storm["depth_mm"] = args.depth_mm
        forcing["rain"] = storm
    if args.hot_day:
        forcing["heat"] = {"type": "hot_day", "time": args.hot_day, "air_temperature_c": args.air_temperature}
    sc = parse_scenario({"name": args.name, "scene": args.scene, "description": args.description,
                         "resolution_m": args.resolution, "forcing": forcing}, source="the new scenario")
    out = Path(args.out) if args.out else Path(args.workspace) / "scenarios" / f"{sc.id}.json"
    if out.exists() and not args.overwrite:
        raise TwinIOError(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(sc.model_dump_json(indent=2, exclude_none=True) + "\n")
    print(f"scenario {sc.name!r} (id {sc.id}, models {', '.join(sc.models)}) -> {out}")
    return 0


# ------------------------------------------------------------------------------------------------ validate
def _run_validate(args) -> int:
    from twin.errors import TwinError
    from twin.scenario import load_scenario, scenario_hash

    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except TwinError as exc:
            bad += 1
            problems = getattr(exc, "problems", [])
            if args.json:
                print(json.dumps({"file": f, "valid": False, "message": str(exc), "problems": problems}))
            else:
                print(f"{f}: invalid: {exc}", file=sys.stderr)
            continue
        kinds = [e.type for e in sc.edits]
        if args.json:
            print(json.dumps({"file": f, "valid": True, "name": sc.name, "id": sc.id, "hash": scenario_hash(sc),
                              "models": sc.models, "edits": kinds}))
        else:
            rain = sc.forcing.rain.describe() if sc.forcing.rain is not None else "no rain"
            heat = sc.forcing.heat.describe() if sc.forcing.heat is not None else "no hot day"
            print(f"{f}: ok: {sc.name!r} (id {sc.id}), scene {sc.scene} @ {sc.resolution_m:g} m, "
                  f"{len(kinds)} edits ({', '.join(kinds) or 'none'}), models {', '.join(sc.models)}; {rain}; {heat}")
    return 2 if bad else 0


# ------------------------------------------------------------------------------------------------ run
def _resolve_scenario(workspace: Path, spec: str):
    from twin.errors import TwinValueError
    from twin.scenario import load_scenario

    p = Path(spec)
    if p.is_file():
        return load_scenario(p)
    q = workspace / "scenarios" / f"{spec}.json"
    if q.is_file():
        return load_scenario(q)
    have = sorted(x.stem for x in (workspace / "scenarios").glob("*.json")) if (workspace / "scenarios").is_dir() else []
    raise TwinValueError(f"{spec} is neither a scenario file nor a scenario id in {workspace / 'scenarios'} "
                         f"(ids there: {have})")


def _run_run(args) -> int:
    from twin.workflows import run_scenario

    ws = Path(args.workspace)
    sc = _resolve_scenario(ws, args.scenario)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=1000, desc=sc.id[:24], file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def progress(fraction: float, message: str) -> None:
        if bar is not None:
            bar.n = int(round(fraction * 1000))
            bar.set_postfix_str(message[:60], refresh=False)
            bar.refresh()

    try:
        rec = run_scenario(ws, sc, models=args.models, reuse=not args.force, tiles=False if args.no_tiles else None,
                           progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2, default=str))
        return 0 if rec.status == "done" else 2
    tiles = ws / "tiles" / "runs" / rec.id / "manifest.json"
    print(f"run {rec.id}: {rec.status}" + (f" in {rec.timings.get('total_s', 0):.1f} s" if rec.timings else "")
          + f" -> {rec.run_dir}" + (f"; tiles {tiles}" if tiles.is_file() else ""))
    wb = rec.water_balance
    if wb:
        print(f"  water balance: rain {wb.get('rain_m3', 0):.0f} m3, infiltration {wb.get('infiltration_m3', 0):.0f} m3, "
              f"drainage {wb.get('drainage_m3', 0):.0f} m3, outflow {wb.get('outflow_m3', 0):.0f} m3, "
              f"stored {wb.get('storage_m3', 0):.0f} m3 (error {wb.get('relative_error', 0):.1e})")
    if rec.status != "done":
        print(f"twin scenario run: {rec.message}{': ' + rec.error if rec.error else ''}", file=sys.stderr)
        return 2
    return 0


# ------------------------------------------------------------------------------------------------ schema
def _run_schema(args) -> int:
    from twin.scenario import Scenario

    text = json.dumps(Scenario.model_json_schema(), indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"scenario JSON Schema -> {args.out}")
    else:
        print(text)
    return 0
