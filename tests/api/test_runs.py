"""/api/runs: start (202), follow (record, SSE), cancel, reuse, bounded concurrency, restart."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from twin.api import create_app

from .conftest import auth, make_settings


def app_with(workspace, target: str | None = None, **kw):
    app = create_app(make_settings(workspace, **kw))
    if target:
        app.state.run_target = f"tests.api.fakes:{target}"
    return app


def wait_for(client, run_id, statuses, timeout=60.0, headers=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rec = client.get(f"/api/runs/{run_id}", headers=headers).json()
        if rec["status"] in statuses:
            return rec
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {rec['status']} after {timeout} s")


def events(client, run_id) -> list[tuple[str, dict]]:
    out = []
    with client.stream("GET", f"/api/runs/{run_id}/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out


def test_start_follow_and_finish(workspace):
    with TestClient(app_with(workspace, "slow_run")) as c:
        r = c.post("/api/runs", json={"scenario": "baseline"}, headers=auth("planner"))
        assert r.status_code == 202, r.text
        rec = r.json()
        assert rec["status"] in ("queued", "running") and rec["owner"] == "anna" and rec["reused"] is False
        assert r.headers["location"] == f"/api/runs/{rec['id']}"
        ev = events(c, rec["id"])
        names = [n for n, _ in ev]
        assert names[-1] == "end" and ev[-1][1]["status"] == "done"
        progress = [d["progress"] for n, d in ev if n == "progress"]
        assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] == 1.0
        done = c.get(f"/api/runs/{rec['id']}").json()
        assert done["status"] == "done" and done["timings"]["total_s"] > 0 and done["finished"]
        listing = c.get("/api/runs").json()
        assert listing["total"] == 1 and listing["items"][0]["id"] == rec["id"]
        assert c.get("/api/runs?status=running").json()["total"] == 0
        assert c.get("/api/runs?scenario=baseline").json()["total"] == 1


def test_planner_needed_to_start(client):
    assert client.post("/api/runs", json={"scenario": "baseline"}).status_code == 401
    assert client.post("/api/runs", json={"scenario": "baseline"}, headers=auth("viewer")).status_code == 403


def test_bad_run_requests(client):
    r = client.post("/api/runs", json={"scenario": "baseline", "models": ["flood"]}, headers=auth("planner"))
    assert r.status_code == 422
    r = client.post("/api/runs", json={"scenario": "baseline", "models": ["heat"]}, headers=auth("planner"))
    assert r.status_code == 422 and "forcing" in r.json()["message"]
    r = client.post("/api/runs", json={"scenario": "../etc"}, headers=auth("planner"))
    assert r.status_code == 422


def test_bounded_concurrency_queue_and_cancel(workspace):
    """One worker: the second run waits queued; cancelling it removes it at once; cancelling the running
    one stops it through cancel_requested. Only the owner or an admin may cancel."""
    with TestClient(app_with(workspace, "endless_run", max_concurrent_runs=1, max_queued_runs=2)) as c:
        a = c.post("/api/runs", json={"scenario": "baseline", "reuse": False}, headers=auth("planner")).json()
        wait_for(c, a["id"], ["running"])
        b = c.post("/api/runs", json={"scenario": "baseline", "reuse": False}, headers=auth("planner")).json()
        time.sleep(0.3)
        assert c.get(f"/api/runs/{b['id']}").json()["status"] == "queued"
        # the queue is full
        r = c.post("/api/runs", json={"scenario": "baseline", "reuse": False}, headers=auth("planner"))
        assert r.status_code == 429 and r.headers["retry-after"]
        assert c.get("/api/health").json()["active_runs"] == 2
        # someone else's run
        assert c.delete(f"/api/runs/{b['id']}", headers=auth("planner2")).status_code == 403
        r = c.delete(f"/api/runs/{b['id']}", headers=auth("planner"))
        assert r.status_code == 202 and r.json()["status"] == "cancelled"
        r = c.delete(f"/api/runs/{a['id']}", headers=auth("admin"))
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        assert wait_for(c, a["id"], ["cancelled"])["status"] == "cancelled"
        # finished runs cannot be cancelled
        assert c.delete(f"/api/runs/{a['id']}", headers=auth("admin")).status_code == 409
        assert c.get(f"/api/runs/{b['id']}").json()["started"] is None      # never ran


def test_a_dying_worker_fails_its_run_and_the_pool_recovers(workspace):
    app = app_with(workspace, "crashing_run")
    with TestClient(app) as c:
        a = c.post("/api/runs", json={"scenario": "baseline"}, headers=auth("planner")).json()
        rec = wait_for(c, a["id"], ["failed"])
        assert "worker process died" in rec["message"]
        app.state.runner.target = "tests.api.fakes:slow_run"
        b = c.post("/api/runs", json={"scenario": "baseline"}, headers=auth("planner")).json()
        assert wait_for(c, b["id"], ["done"])["status"] == "done"


def test_shutdown_and_restart_mark_interrupted(workspace):
    with TestClient(app_with(workspace, "endless_run")) as c:
        a = c.post("/api/runs", json={"scenario": "baseline"}, headers=auth("planner")).json()
        wait_for(c, a["id"], ["running"])
    # clean shutdown: the run is recorded as interrupted, its worker gone
    from twin.workflows.registry import RunRegistry

    reg = RunRegistry(workspace)
    assert reg.get(a["id"]).status == "interrupted"
    # a crash leaves "running" behind: the next start-up marks it
    reg.update(a["id"], status="running", finished=None)
    rec2 = reg.create(scenario_id="baseline", scenario_hash="x" * 64, models=["screening"])
    with TestClient(app_with(workspace)) as c:
        assert c.get(f"/api/runs/{a['id']}").json()["status"] == "interrupted"
        assert c.get(f"/api/runs/{rec2.id}").json()["status"] == "interrupted"
        assert c.get("/api/settings", headers=auth("admin")).json()["interrupted_at_start"] == 2
        # an interrupted run's event stream ends at once
        assert [n for n, _ in events(c, a["id"])][-1] == "end"


def test_without_registry_runs_answer_503(workspace, monkeypatch):
    import twin.workflows.registry as registry

    def broken(*a, **k):
        raise OSError("read-only file system")

    monkeypatch.setattr(registry, "RunRegistry", broken)
    with TestClient(create_app(make_settings(workspace))) as c:
        h = c.get("/api/health").json()
        assert h["status"] == "degraded" and "read-only" in h["problems"][0]
        r = c.get("/api/runs")
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert c.get("/api/scenes").status_code == 200     # the rest keeps working
