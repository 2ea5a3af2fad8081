"""Health, config, scenes, scenarios (CRUD), sensors, compare."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from twin.api import create_app

from .conftest import SCENE_ID, auth, make_settings, scenario_doc


def test_health_and_config(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["registry"] is True and h["active_runs"] == 0
    c = client.get("/api/config").json()
    assert c["models"] == ["heavyrain", "screening", "heat"] and c["cesium_base_url"] == "/cesium/"
    assert c["default_language"] == "de" and c["public_viewer"] is True


def test_scenes(client, workspace):
    scenes = client.get("/api/scenes").json()
    assert [s["id"] for s in scenes] == [SCENE_ID]
    assert scenes[0]["counts"]["features"] == 4 and scenes[0]["tiles"] == f"/tiles/scenes/{SCENE_ID}/manifest.json"
    d = client.get(f"/api/scenes/{SCENE_ID}").json()
    from twin.scene import Scene
    from twin.workflows import scene_info

    ref = scene_info(Scene.load(workspace / "scenes" / SCENE_ID))
    assert d["info"]["counts"] == ref["counts"] and d["info"]["crs"] == ref["crs"]
    assert d["info"]["terrain"] is not None


def test_scenario_crud(client, workspace):
    listing = client.get("/api/scenarios").json()
    assert [s["id"] for s in listing["items"]] == ["baseline"] and listing["invalid"] == []
    r = client.post("/api/scenarios", json=scenario_doc("Entsiegelung Süd"), headers=auth("planner"))
    assert r.status_code == 201 and r.headers["location"] == "/api/scenarios/entsiegelung-sued"
    body = r.json()
    assert body["id"] == "entsiegelung-sued" and len(body["hash"]) == 64
    stored = json.loads((workspace / "scenarios" / "entsiegelung-sued.json").read_text())
    assert stored["name"] == "Entsiegelung Süd"
    # the same name again: conflict
    r = client.post("/api/scenarios", json=scenario_doc("Entsiegelung Süd"), headers=auth("planner"))
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    got = client.get("/api/scenarios/entsiegelung-sued").json()
    assert got["scenario"]["resolution_m"] == 5.0 and got["owner"] == "anna"
    r = client.put("/api/scenarios/entsiegelung-sued", json=scenario_doc("Entsiegelung Süd", resolution_m=10),
                   headers=auth("planner"))
    assert r.status_code == 200 and r.json()["scenario"]["resolution_m"] == 10
    # PUT under an id that is not the name's slug
    r = client.put("/api/scenarios/other", json=scenario_doc("Entsiegelung Süd"), headers=auth("planner"))
    assert r.status_code == 422 and "entsiegelung-sued" in r.json()["message"]
    # PUT creates a new one
    r = client.put("/api/scenarios/neu", json=scenario_doc("Neu"), headers=auth("planner"))
    assert r.status_code == 201
    assert client.delete("/api/scenarios/entsiegelung-sued", headers=auth("planner")).status_code == 204
    assert client.get("/api/scenarios/entsiegelung-sued").status_code == 404
    assert not (workspace / "scenarios" / "entsiegelung-sued.json").exists()


def test_scenario_on_unknown_scene(client):
    r = client.post("/api/scenarios", json=scenario_doc("X", scene="atlantis"), headers=auth("planner"))
    assert r.status_code == 422 and "atlantis" in r.json()["message"]


def test_invalid_stored_scenario_is_listed_not_fatal(client, workspace):
    (workspace / "scenarios" / "broken.json").write_text('{"name": "broken"')
    listing = client.get("/api/scenarios").json()
    assert [p["id"] for p in listing["invalid"]] == ["broken"]
    r = client.get("/api/scenarios/broken")
    assert r.status_code == 409 and r.json()["error"] == "invalid_stored_scenario"


def test_sensors_latest_with_flags(client):
    body = client.get("/api/sensors").json()
    assert body["available"] is True
    by = {s["thing"]: s for s in body["items"]}
    assert set(by) == {"A", "B"}                        # the datastream without readings is left out
    assert by["A"]["value"] == 22.0 and by["A"]["flags"] == 0 and by["A"]["flag_names"] == []
    assert by["B"]["value"] == 55.0 and by["B"]["flag_names"] == ["range"]
    assert by["A"]["lon"] == 11.57 and by["A"]["lat"] == 48.15 and by["A"]["time"].endswith("Z")
    clean = client.get("/api/sensors?include_flagged=false").json()["items"]
    assert {s["thing"]: s["value"] for s in clean} == {"A": 22.0, "B": 20.0}
    assert client.get("/api/sensors?property=precipitation").json()["items"] == []


def test_sensors_absent(workspace):
    (workspace / "sensors.sqlite").unlink()
    with TestClient(create_app(make_settings(workspace))) as c:
        assert c.get("/api/sensors").json() == {"available": False, "items": []}
    assert not (workspace / "sensors.sqlite").exists()     # reading never creates the store


def test_openapi_is_complete(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/health", "/api/config", "/api/scenes", "/api/scenes/{scene_id}", "/api/scenarios",
              "/api/scenarios/{scenario_id}", "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/events",
              "/api/runs/{run_id}/buildings", "/api/compare", "/api/sensors", "/api/settings", "/tiles/{path}",
              "/cesium/{path}"):
        assert p in paths, p
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("tags"), (method, path)
            assert op.get("summary"), (method, path)
            if path.startswith("/api/") and path not in ("/api/health", "/api/config"):
                assert any(c.startswith("4") for c in op["responses"]), (method, path)
    schemas = spec["components"]["schemas"]
    assert "ErrorBody" in schemas and "Scenario" in schemas and "RunOut" in schemas
    assert {"APIKeyHeader", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])


def test_compare_unknown_runs_and_missing_workflow(client, workspace, monkeypatch):
    r = client.get("/api/compare", params={"runs": "base,plan"})
    assert r.status_code == 404 and "'base'" in r.json()["message"]
    for rid in ("base", "plan"):
        (workspace / "runs" / rid).mkdir(parents=True)
    import twin.workflows

    monkeypatch.delattr(twin.workflows, "compare_runs")      # a twin without the comparison workflow
    r = client.get("/api/compare", params={"runs": "base,plan"})
    assert r.status_code == 501 and r.json()["error"] == "not_implemented"
