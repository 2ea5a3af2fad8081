"""The ``twin`` command: one module per subcommand, each a thin shell over library functions."""

from __future__ import annotations

import argparse
import importlib
import sys

from twin.errors import TwinError

# subcommand name -> module in twin.cli; each module defines add_parser(subparsers) and run(args) -> int
SUBCOMMANDS = {"import": "twin.cli.import_", "info": "twin.cli.info", "grid": "twin.cli.grid",
               "sim": "twin.cli.sim", "sensors": "twin.cli.sensors", "tiles": "twin.cli.tiles",
               "serve": "twin.cli.serve", "scenario": "twin.cli.scenario", "demo": "twin.cli.demo"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Urban digital twin engine.")
    parser.add_argument("--version", action="version", version=f"twin {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # subcommand not built yet
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twin")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except TwinError as exc:
        print(f"twin {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"twin {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
