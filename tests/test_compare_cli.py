"""``twin scenario compare`` / ``twin scenario report`` (twin/cli/scenario_compare.py), tested against the library."""

from __future__ import annotations

import argparse
import json

from .test_compare import make_runs


def _run(argv):
    """The sub-subcommands as ``twin scenario`` mounts them (through twin.cli.main once scenario.py exists)."""
    try:
        import twin.cli.scenario  # noqa: F401
        from twin.cli.main import main

        return main(["scenario", *argv])
    except ModuleNotFoundError as exc:
        if exc.name != "twin.cli.scenario":
            raise
    from twin.cli.scenario_compare import add_parsers

    parser = argparse.ArgumentParser(prog="twin scenario")
    add_parsers(parser.add_subparsers(dest="action", required=True))
    args = parser.parse_args(argv)
    return args._run(args)


def test_compare_prints_and_writes(tmp_path, capsys):
    ws = make_runs(tmp_path)
    assert _run(["compare", "base", "plan", "--workspace", str(ws), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "reference: Bestand (base); compared: Schwammstadt (plan)" in out
    assert "flooded_area_gt_0.5m" in out and "-24.00" in out
    assert (tmp_path / "cmp" / "maps.nc").exists() and (tmp_path / "cmp" / "buildings.gpkg").exists()
    assert _run(["compare", str(ws / "runs" / "base"), str(ws / "runs" / "plan"), "--json", "--label", "A",
                 "--label", "B"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in js["runs"]] == ["A", "B"]
    assert js["buildings"][0]["exposure_change[plan]"] == "high -> medium"


def test_report_cli(tmp_path, capsys, monkeypatch):
    ws = make_runs(tmp_path)
    monkeypatch.chdir(ws)          # the workspace is the current folder
    monkeypatch.setenv("TWIN_CHROMIUM", str(tmp_path / "none"))
    assert _run(["report", "base", "plan", "--out", str(tmp_path / "r.html"), "--lang", "en", "--pdf"]) == 0
    cap = capsys.readouterr()
    assert "report ->" in cap.out and "PDF skipped" in cap.err
    assert "Climate adaptation" in (tmp_path / "r.html").read_text()


def test_cli_errors(tmp_path):
    from twin.errors import TwinError

    ws = make_runs(tmp_path)
    try:   # through twin.cli.main a TwinError is one line on stderr and exit code 2
        rc = _run(["compare", "base", "missing", "--workspace", str(ws)])
    except TwinError as exc:
        assert "neither a folder" in str(exc)
        rc = 2
    assert rc == 2
