"""Roles (viewer, planner, admin), API keys and bearer tokens, the public viewer switch, CORS."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from twin.api import Settings, create_app

from .conftest import KEYS, TOKENS, auth, make_settings, scenario_doc


def test_public_viewer_reads_without_a_key(client):
    assert client.get("/api/scenes").status_code == 200
    assert client.get("/api/scenarios").status_code == 200


def test_anonymous_cannot_write(client):
    r = client.post("/api/scenarios", json=scenario_doc("Neu"))
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized" and "planner" in r.json()["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_viewer_key_cannot_write(client):
    r = client.post("/api/scenarios", json=scenario_doc("Neu"), headers=auth("viewer"))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "vera" in r.json()["message"]


def test_unknown_key_or_token_is_401_even_for_reads(client):
    assert client.get("/api/scenes", headers={"X-API-Key": "not-a-key-at-all-123"}).status_code == 401
    r = client.get("/api/scenes", headers={"Authorization": "Bearer wrong-token-0123456789"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_bearer_token_with_role(client):
    r = client.post("/api/scenarios", json=scenario_doc("Per Token"), headers={"Authorization": f"Bearer {TOKENS['planner']}"})
    assert r.status_code == 201 and r.json()["owner"] == "anna-token"


def test_private_server_needs_a_key_for_everything(workspace):
    with TestClient(create_app(make_settings(workspace, public_viewer=False))) as c:
        for url in ("/api/scenes", "/api/scenarios", "/api/runs", "/api/sensors", "/api/compare?runs=a,b"):
            r = c.get(url)
            assert r.status_code == 401, url
        assert c.get("/api/scenes", headers=auth("viewer")).status_code == 200
        # what the page needs before anyone logs in stays open
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/config").json()["public_viewer"] is False


def test_planner_changes_only_their_own_scenarios_admin_any(client):
    r = client.post("/api/scenarios", json=scenario_doc("Annas Plan"), headers=auth("planner"))
    assert r.status_code == 201 and r.json()["owner"] == "anna"
    sid = r.json()["id"]
    changed = scenario_doc("Annas Plan", description="von Ben geändert")
    r = client.put(f"/api/scenarios/{sid}", json=changed, headers=auth("planner2"))
    assert r.status_code == 403 and "anna" in r.json()["message"]
    assert client.delete(f"/api/scenarios/{sid}", headers=auth("planner2")).status_code == 403
    assert client.put(f"/api/scenarios/{sid}", json=changed, headers=auth("planner")).status_code == 200
    assert client.delete(f"/api/scenarios/{sid}", headers=auth("admin")).status_code == 204


def test_scenarios_made_outside_the_api_are_admin_only(client):
    doc = scenario_doc("Baseline", description="changed")
    r = client.put("/api/scenarios/baseline", json=doc, headers=auth("planner"))
    assert r.status_code == 403 and "admin" in r.json()["message"]
    assert client.put("/api/scenarios/baseline", json=doc, headers=auth("admin")).status_code == 200


def test_settings_route_is_admin_only_and_hides_secrets(client):
    assert client.get("/api/settings").status_code == 401
    assert client.get("/api/settings", headers=auth("planner")).status_code == 403
    r = client.get("/api/settings", headers=auth("admin"))
    assert r.status_code == 200
    body = r.json()
    assert {c["name"] for c in body["credentials"]} == {"vera", "anna", "ben", "root", "anna-token"}
    for secret in list(KEYS.values()) + list(TOKENS.values()):
        assert secret not in r.text


def test_settings_from_the_environment(monkeypatch, workspace):
    monkeypatch.setenv("TWIN_WORKSPACE", str(workspace))
    monkeypatch.setenv("TWIN_API_KEYS", '[{"name": "env", "key": "environment-key-0123", "role": "admin"}]')
    monkeypatch.setenv("TWIN_PUBLIC_VIEWER", "false")
    monkeypatch.setenv("TWIN_MAX_BODY_BYTES", "2048")
    s = Settings(_env_file=None)
    assert s.workspace == workspace.resolve() and s.api_keys[0].role.value == "admin"
    assert s.public_viewer is False and s.max_body_bytes == 2048
    with TestClient(create_app()) as c:
        assert c.get("/api/settings", headers={"X-API-Key": "environment-key-0123"}).status_code == 200


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="16 characters"):
        Settings(_env_file=None, workspace=".", api_keys=[{"name": "x", "key": "short", "role": "admin"}])


def test_cors(workspace):
    with TestClient(create_app(make_settings(workspace, cors_origins=["https://geo.example.org"]))) as c:
        r = c.get("/api/scenes", headers={"Origin": "https://geo.example.org"})
        assert r.headers["access-control-allow-origin"] == "https://geo.example.org"
        r = c.options("/api/runs", headers={"Origin": "https://geo.example.org", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "X-API-Key"})
        assert r.status_code == 200 and "POST" in r.headers["access-control-allow-methods"]
        r = c.get("/api/scenes", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(make_settings(workspace))) as c:   # off by default
        assert "access-control-allow-origin" not in c.get("/api/scenes", headers={"Origin": "https://x.org"}).headers
