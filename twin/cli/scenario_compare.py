"""``twin scenario compare RUN...`` and ``twin scenario report RUN... --out report.html``.

Shells over :func:`twin.workflows.compare.compare_run_dirs` and :func:`twin.workflows.report.write_report`.
:func:`add_parsers` adds both to the ``twin scenario`` sub-subcommands (``twin/cli/scenario.py`` calls it).
A RUN is a run id of the workspace (``--workspace``, default: the current folder when it has ``runs/``)
or a run folder; the first RUN is the reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parsers(subparsers) -> None:
    """Add ``compare`` and ``report`` to the ``twin scenario`` sub-subparsers."""
    p = subparsers.add_parser(
        "compare", help="compare runs: difference maps, buildings, indicators",
        description="Compare two or more runs (the first is the reference): difference maps of max depth, arrival "
                    "time, air temperature and UTCI, a per-building change table and indicators. Prints the "
                    "indicators; --out writes maps.nc, buildings.gpkg/.csv, indicators.csv and comparison.json.")
    _common(p)
    p.add_argument("--out", metavar="DIR", help="folder for maps.nc, buildings.gpkg, buildings.csv, indicators.csv, "
                                                "comparison.json")
    p.add_argument("--overwrite", action="store_true", help="replace a comparison in --out")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (indicators, buildings, notes)")
    p.set_defaults(_run=run_compare, _scenario_run=run_compare)

    r = subparsers.add_parser(
        "report", help="write the council report (HTML, optional PDF)",
        description="Write a self-contained HTML report comparing the runs (maps, affected buildings, indicators, "
                    "method, data sources); German by default. --pdf also prints it with headless Chromium.")
    _common(r)
    r.add_argument("--out", required=True, metavar="report.html", help="HTML file to write")
    r.add_argument("--lang", choices=["de", "en"], default="de", help="language (default de)")
    r.add_argument("--pdf", nargs="?", const=True, default=False, metavar="report.pdf",
                   help="also write a PDF (default: next to the HTML); skipped with a message without Chromium")
    r.add_argument("--title", help="report title")
    r.set_defaults(_run=run_report, _scenario_run=run_report)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids of the workspace or run folders; the first is the "
                                                          "reference")
    p.add_argument("--workspace", "-w", metavar="WORKSPACE", help="workspace folder (default: the current folder "
                                                                   "when it has runs/)")
    p.add_argument("--label", action="append", metavar="NAME", help="name of a run in tables and maps (one per RUN, "
                                                                     "in order; default: the scenario's name)")


def _workspace(args) -> str | None:
    if args.workspace:
        return args.workspace
    return "." if Path("runs").is_dir() else None


def run_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from twin.workflows.compare import compare_run_dirs

    comp = compare_run_dirs(args.runs, labels=args.label, workspace=_workspace(args))
    if args.out:
        comp.write(args.out, overwrite=args.overwrite)
    if args.json:
        json.dump(comp.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    ids = comp.run_ids
    labels = {r.id: r.label for r in comp.runs}
    print("reference: " + f"{labels[ids[0]]} ({ids[0]})" + "; compared: " +
          ", ".join(f"{labels[i]} ({i})" for i in ids[1:]))
    table = comp.indicators.drop(columns=["label"])
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:,.2f}".format):
        print(table.to_string())
    b = comp.buildings
    for rid in ids[1:]:
        col = f"delta_max_depth_m[{rid}]"
        if col in b and b[col].notna().any():
            print(f"buildings with lower max depth in {rid}: {int((b[col] < -0.005).sum())}, higher: "
                  f"{int((b[col] > 0.005).sum())} (of {len(b)})")
    for n in comp.notes:
        print(f"note: {n}")
    if args.out:
        print(f"-> {args.out}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from twin.workflows.report import write_report

    res = write_report(_workspace(args), args.runs, args.out, lang=args.lang, pdf=args.pdf, title=args.title,
                       labels=args.label)
    print(f"report -> {res.html}")
    if res.pdf is not None:
        print(f"pdf -> {res.pdf}")
    elif res.message:
        print(res.message, file=sys.stderr)
    return 0


def main(argv=None) -> int:   # pragma: no cover - for `python -m twin.cli.scenario_compare` while testing
    parser = argparse.ArgumentParser(prog="twin scenario")
    sub = parser.add_subparsers(dest="action", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
