"""``twin demo --no-serve`` end to end into a temporary workspace, and the demo's sensor seed.

The end-to-end case runs exactly what ``make demo`` runs before serving: the sample city, the live-sensor
path (a local SensorThings server with the Bern sample), the sample's baseline and adaptation scenarios
with their tiles, and the report. Expected sensor counts are derived from the shipped sample.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BERN = REPO / "tests" / "data" / "sensors" / "bern_sample.json"


def _expected_observations(sample: dict) -> int:
    """Distinct (datastream, time) pairs: the latest observation of every datastream plus the 11117 series."""
    pairs = {(o["Datastream"]["@iot.id"], o["phenomenonTime"]) for o in sample["Observations"]}
    ts = sample["Timeseries"]
    for kind in ("temperature", "humidity"):
        pairs |= {(f"{ts['station']}-{kind}", t) for t, _ in ts[kind]}
    return len(pairs)


def test_bern_seed_is_the_sample_verbatim():
    """Every seeded reading is one of the sample's, at its own station in Bern (nothing invented or moved)."""
    from twin.workflows.demo import _bern_things

    sample = json.loads(BERN.read_text(encoding="utf-8"))
    things = _bern_things(sample)
    assert len(things) == len(sample["Things"])
    locs = {loc["@iot.id"]: loc["location"]["coordinates"] for loc in sample["Locations"]}
    real = {(o["Datastream"]["@iot.id"], o["phenomenonTime"], o["result"]) for o in sample["Observations"]}
    ts = sample["Timeseries"]
    for kind in ("temperature", "humidity"):
        real |= {(f"{ts['station']}-{kind}", t, v) for t, v in ts[kind]}
    n = 0
    for th in things:
        lon, lat = th["Locations"][0]["location"]["coordinates"][:2]
        assert [lon, lat] == locs[th["properties"]["bern_id"]][:2]
        assert 7.0 < lon < 7.7 and 46.8 < lat < 47.2          # Bern
        for ds in th["Datastreams"]:
            for o in ds["Observations"]:
                assert (ds["properties"]["bern_id"], o["phenomenonTime"], o["result"]) in real
                n += 1
    assert n == _expected_observations(sample)


def test_demo_no_serve_end_to_end(tmp_path):
    if not (REPO / "data" / "samples" / "scenarios").is_dir():
        pytest.skip("data/samples/scenarios (the sample's baseline and adaptation) not shipped yet")
    ws = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "twin.cli.main", "demo", str(ws), "--no-serve"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "[1/" in out and "live sensors" in out and "report" in out          # progress shown
    demo = json.loads((ws / "demo.json").read_text())
    runs = demo["runs"]
    assert len(runs) == 2
    # both scenarios' tiles: manifests with result layers
    for rid in runs.values():
        manifest = json.loads((ws / "tiles" / "runs" / rid / "manifest.json").read_text())
        assert manifest["layers"], rid
        assert any("max_depth" in json.dumps(layer) for layer in manifest["layers"]), rid
        assert (ws / "runs" / rid / "heavyrain" / "result.nc").exists()
        assert (ws / "runs" / rid / "heat" / "result.nc").exists()
    assert (ws / "tiles" / "scenes" / demo["scene"] / "manifest.json").exists()
    # the report: both scenarios, maps, the predictor-only heat statement, the attribution
    import lxml.html

    doc = lxml.html.fromstring((ws / "report.html").read_bytes())
    labels = [td.text_content() for td in doc.xpath('//section[@id="runs"]//tbody/tr/td[2]')]
    assert labels == list(demo["labels"].values())
    assert len(doc.xpath("//img[starts-with(@src, 'data:image/png;base64,')]")) >= 2
    assert "ohne lokale Messwerte" in doc.xpath('//section[@id="method"]')[0].text_content()
    assert "Bayerische Vermessungsverwaltung" in doc.xpath('//section[@id="sources"]')[0].text_content()
    assert (ws / "report_en.html").exists() and (ws / "comparison" / "indicators.csv").exists()
    # the sensors: every Bern observation in the store, nothing else
    from twin.sensors import open_store

    expected = _expected_observations(json.loads(BERN.read_text(encoding="utf-8")))
    with open_store(ws / "sensors.sqlite") as store:
        assert store.count() == expected
        rows = store.list_datastreams()
    assert len(rows) == 12 and {r["property"] for r in rows} == {"air_temperature", "relative_humidity"}
    assert demo["sensors"]["readings"] == expected
    # a second demo in the same workspace reuses the runs
    again = subprocess.run([sys.executable, "-m", "twin.cli.main", "demo", str(ws), "--no-serve", "--no-pdf"],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((ws / "demo.json").read_text())["runs"] == runs
