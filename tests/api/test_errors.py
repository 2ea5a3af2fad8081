"""Bad input gives a clear JSON 4xx, never a 500: invalid JSON, unknown ids, oversized bodies, bad ids."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from twin.api import create_app

from .conftest import auth, make_settings, scenario_doc


def _is_error(r, status: int, error: str | None = None):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) <= {"error", "message", "detail"} and body["message"]
    if error:
        assert body["error"] == error, body
    return body


@pytest.mark.parametrize("url", ["/api/scenes/nope", "/api/scenarios/nope", "/api/runs/nope",
                                 "/api/runs/nope/events", "/api/runs/nope/buildings", "/api/nothing", "/nothing.js"])
def test_unknown_ids_are_404(client, url):
    _is_error(client.get(url), 404, "not_found")


def test_unknown_ids_on_write_routes(client):
    _is_error(client.delete("/api/runs/nope", headers=auth("planner")), 404, "not_found")
    _is_error(client.delete("/api/scenarios/nope", headers=auth("planner")), 404, "not_found")
    _is_error(client.post("/api/runs", json={"scenario": "nope"}, headers=auth("planner")), 404, "not_found")


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "ä", "a.b"])
def test_malformed_ids_are_422(client, bad):
    body = _is_error(client.get(f"/api/scenarios/{bad}"), 422, "validation_error")
    assert body["detail"][0]["field"] == "path.scenario_id"


@pytest.mark.parametrize("payload", [b"{", b"{\"name\": ", b"not json", b"\xff\xfe", b"[1, 2"])
def test_invalid_json_is_422_with_a_message(client, payload):
    r = client.post("/api/scenarios", content=payload, headers={**auth("planner"), "Content-Type": "application/json"})
    body = _is_error(r, 422)
    assert body["error"] in ("invalid_json", "validation_error")


def test_wrong_types_name_the_field(client):
    doc = scenario_doc("Typen", resolution_m="fein")
    body = _is_error(client.post("/api/scenarios", json=doc, headers=auth("planner")), 422, "validation_error")
    assert any(d["field"] == "resolution_m" for d in body["detail"])
    doc = scenario_doc("Edits", edits=[{"type": "unseal", "area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0]]]}}])
    body = _is_error(client.post("/api/scenarios", json=doc, headers=auth("planner")), 422, "validation_error")
    assert any(d["field"].startswith("edits[0]") for d in body["detail"]), body
    body = _is_error(client.post("/api/scenarios", json=scenario_doc("T", edits=[{"type": "teleport"}]),
                                 headers=auth("planner")), 422)
    assert "teleport" in body["message"]


def test_body_that_is_not_an_object(client):
    for payload in ([1, 2], "text", 3, None):
        r = client.post("/api/scenarios", json=payload, headers=auth("planner"))
        _is_error(r, 422)


def test_oversized_body_is_413(workspace):
    with TestClient(create_app(make_settings(workspace, max_body_bytes=4096))) as c:
        big = scenario_doc("Groß", description="x" * 5000)
        body = _is_error(c.post("/api/scenarios", json=big, headers=auth("planner")), 413, "payload_too_large")
        assert "4096" in body["message"]

        def chunks():      # no Content-Length: the limit applies while the body is read
            for _ in range(10):
                yield b" " * 1000
        r = c.post("/api/scenarios", content=chunks(), headers={**auth("planner"), "Content-Type": "application/json"})
        _is_error(r, 413, "payload_too_large")
        assert c.post("/api/scenarios", json=scenario_doc("Klein"), headers=auth("planner")).status_code == 201


def test_method_not_allowed(client):
    _is_error(client.post("/api/health"), 405, "method_not_allowed")
    _is_error(client.patch("/api/scenarios/baseline", json={}), 405, "method_not_allowed")


def test_unexpected_failure_is_a_json_500_without_a_traceback(workspace):
    from twin.api.deps import sensor_store

    app = create_app(make_settings(workspace))

    def broken():
        raise RuntimeError("disk on fire /secret/path")
        yield

    app.dependency_overrides[sensor_store] = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/sensors")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal_error" and "RuntimeError" in body["message"]
    assert "/secret/path" not in r.text and "Traceback" not in r.text


def test_bad_query_parameters(client):
    _is_error(client.get("/api/runs?limit=0"), 422, "validation_error")
    _is_error(client.get("/api/runs?status=exploded"), 422, "validation_error")
    _is_error(client.get("/api/sensors?property=sunshine"), 422, "validation_error")
    _is_error(client.get("/api/compare?runs=a"), 422)
    _is_error(client.get("/api/compare?runs=../x,b"), 422)
    _is_error(client.get("/api/compare"), 422)


def test_multipolygon_with_an_empty_polygon_is_422_not_500(client):
    """Found by the schemathesis fuzz: an empty polygon inside a MultiPolygon crashed the validator."""
    area = {"type": "MultiPolygon", "coordinates": [[]]}
    doc = scenario_doc("Leer", edits=[{"type": "unseal", "area": area}])
    r = client.post("/api/scenarios", json=doc, headers=auth("planner"))
    body = _is_error(r, 422, "validation_error")
    assert "no rings" in body["message"]
