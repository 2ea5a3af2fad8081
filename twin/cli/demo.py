"""``twin demo [WORKSPACE] [--no-serve] [--port 8000]``: the whole twin on the sample city, then the viewer.

A shell over :func:`twin.workflows.demo.run_demo` (import, sensors, baseline + adaptation runs, tiles,
report), followed by ``twin serve WORKSPACE`` unless ``--no-serve``.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="run the demo: sample city, scenarios, tiles, report, sensors, viewer",
                       description="Import the bundled sample city (Munich, TUM) with its terrain, sync real sensor "
                                   "readings (Bern sample) from a local SensorThings server, run the baseline and "
                                   "adaptation scenarios (heavy rain, screening, heat) with their 3D Tiles, write the "
                                   "council report, then serve the viewer and print its URL.")
    p.add_argument("workspace", nargs="?", default="workspace/demo", metavar="WORKSPACE",
                   help="workspace folder (default workspace/demo); finished runs in it are reused")
    p.add_argument("--no-serve", action="store_true", help="stop after building the workspace (CI)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF of the report")
    p.add_argument("--no-sensors", action="store_true", help="skip the live-sensor path")
    p.add_argument("--rerun", action="store_true", help="re-import and run again instead of reusing finished runs")
    return p


def run(args: argparse.Namespace) -> int:
    from twin.workflows.demo import run_demo

    def say(line: str) -> None:
        print(line, flush=True)

    res = run_demo(args.workspace, say=say, pdf=not args.no_pdf, sensors=not args.no_sensors, reuse=not args.rerun)
    say("")
    say(f"demo workspace: {res.workspace}")
    for sid, rid in res.runs.items():
        say(f"  scenario {res.labels[sid]!r}: run {rid} (tiles: {res.workspace / 'tiles' / 'runs' / rid})")
    say(f"  report: {res.report}" + (f" (PDF: {res.pdf})" if res.pdf else "") + f"; English: {res.report_en}")
    if res.sensors:
        say(f"  sensors: {res.sensors['readings']} readings from {res.sensors['stations']} Bern stations in "
            f"{res.workspace / 'sensors.sqlite'}")
    for n in res.notes:
        say(f"  note: {n}")
    say(f"  took {res.timings_s.get('total', 0):.0f} s")
    if args.no_serve:
        return 0
    from twin.cli import serve

    ids = list(res.runs.values())
    view = f"#run={ids[0]}" + (f"&cmp={ids[-1]}" if len(ids) > 1 else "")   # baseline left, adaptation right
    say("")
    say(f"viewer: http://{args.host}:{args.port}/{view}   (Ctrl+C stops the server)")
    ns = argparse.Namespace(workspace=str(res.workspace), host=args.host, port=args.port, max_concurrent_runs=None,
                            private=False, log_level="warning")
    return serve.run(ns)


if __name__ == "__main__":  # pragma: no cover
    from twin.cli.main import main

    sys.exit(main(["demo", *sys.argv[1:]]))
