"""A real run of the workflow (twin.workflows.run.execute_run) through the server's process pool on the
tiny synthetic scene: heavy rain with snapshots + screening, followed over SSE, then its results."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient

from twin.api import create_app

from .conftest import auth, make_settings, scenario_doc
from .test_runs import events


def test_real_run_with_progress_snapshots_and_buildings(workspace, monkeypatch):
    # reuse compares the software version, a hash of twin's source: pin it, so an edit of the checkout
    # while the test runs (several people share one working tree) cannot make the two requests differ
    import twin.workflows.run

    monkeypatch.setattr(twin.workflows.run, "software_version", lambda: "test-version")
    doc = scenario_doc("Starkregen", models=["heavyrain", "screening"],
                       parameters={"heavyrain": {"duration_s": 900, "output_interval_s": 300}})
    with TestClient(create_app(make_settings(workspace))) as c:
        assert c.post("/api/scenarios", json=doc, headers=auth("planner")).status_code == 201
        r = c.post("/api/runs", json={"scenario": "starkregen"}, headers=auth("planner"))
        assert r.status_code == 202, r.text
        rid = r.json()["id"]
        ev = events(c, rid)
        names = [n for n, _ in ev]
        end = ev[-1][1]
        assert names[-1] == "end" and end["status"] == "done", end
        progress = [d for n, d in ev if n == "progress"]
        assert any(0 < d["progress"] < 1 and d["status"] == "running" for d in progress)
        snaps = [d for n, d in ev if n == "snapshot"]
        assert len(snaps) >= 2, names
        # snapshots arrive while the model runs (tiled as they are produced), not only at the end
        first_snap = names.index("snapshot")
        assert any(n == "progress" and d["status"] == "running" for n, d in ev[first_snap:]), names
        for s in snaps:                       # every announced layer is there to fetch
            for layer in s["layers"]:
                assert c.get(layer["url"]).status_code == 200, layer
        rec = c.get(f"/api/runs/{rid}").json()
        assert rec["water_balance"] and rec["timings"] and rec["models"] == ["heavyrain", "screening"]
        manifest = c.get(rec["links"]["tiles"])
        assert manifest.status_code == 200 and manifest.json()["layers"]

        geo = c.get(f"/api/runs/{rid}/buildings")
        assert geo.status_code == 200 and geo.headers["content-type"].startswith("application/geo+json")
        fc = geo.json()
        assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4 == fc["numberMatched"]
        lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
        assert 11 < lon < 12 and 48 < lat < 49          # EPSG:4326 footprints
        props = fc["features"][0]["properties"]
        depth_col = next(k for k in props if k.startswith("heavyrain_") and "depth" in k)
        ordered = c.get(f"/api/runs/{rid}/buildings", params={"sort": depth_col, "order": "asc"}).json()["features"]
        values = [f["properties"][depth_col] for f in ordered]
        assert values == sorted(values)
        cut = sorted(values)[1]
        sel = c.get(f"/api/runs/{rid}/buildings", params={"filter": f"{depth_col}>{cut}"}).json()
        assert sel["numberMatched"] == sum(v > cut for v in values)
        one = c.get(f"/api/runs/{rid}/buildings", params={"gml_id": "B0002", "format": "csv"})
        assert one.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(one.text)))
        assert [r["gml_id"] for r in rows] == ["B0002"] and float(rows[0]["lon"]) > 11
        page = c.get(f"/api/runs/{rid}/buildings", params={"limit": 2, "offset": 1, "format": "csv"})
        assert len(list(csv.DictReader(io.StringIO(page.text)))) == 2 and page.headers["x-total-count"] == "4"
        bad = c.get(f"/api/runs/{rid}/buildings", params={"filter": "nonsense>1"})
        assert bad.status_code == 422 and depth_col in bad.json()["message"]
        assert c.get(f"/api/runs/{rid}/buildings", params={"filter": f"{depth_col}>abc"}).status_code == 422
        assert c.get(f"/api/runs/{rid}/buildings", params={"sort": "nope"}).status_code == 422

        # the same scenario again: the finished run is reused (200), unless reuse is off (202)
        again = c.post("/api/runs", json={"scenario": "starkregen"}, headers=auth("planner"))
        assert again.status_code == 200 and again.json()["id"] == rid and again.json()["reused"] is True

        # two runs compared
        doc2 = scenario_doc("Starkregen Plus", models=["heavyrain", "screening"],
                            forcing={"rain": {"type": "design_storm", "return_period_a": 100, "duration_min": 60,
                                              "depth_mm": 80}},
                            parameters={"heavyrain": {"duration_s": 900, "output_interval_s": 300}})
        assert c.post("/api/scenarios", json=doc2, headers=auth("planner")).status_code == 201
        rid2 = c.post("/api/runs", json={"scenario": "starkregen-plus"}, headers=auth("planner")).json()["id"]
        assert events(c, rid2)[-1][1]["status"] == "done"
        cmp = c.get("/api/compare", params={"runs": f"{rid},{rid2}", "buildings": "true"})
        assert cmp.status_code == 200, cmp.text
        body = cmp.json()
        assert body["reference"] == rid and [r["id"] for r in body["runs"]] == [rid, rid2]
        keys = {i["key"]: i for i in body["indicators"]}
        assert keys and len(body["buildings"]) == 4
        vol = next(i for k, i in keys.items() if "runoff" in k or "rain" in k)
        assert set(vol["values"]) == {rid, rid2}
        json.dumps(body, allow_nan=False)
