"""A small workspace (synthetic scene, tiles, scenarios, sensor readings) and test clients per role."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from twin.api import Settings, create_app

KEYS = {"viewer": "viewer-key-0123456789", "planner": "planner-key-anna-0123", "planner2": "planner-key-ben-01234",
        "admin": "admin-key-0123456789ab"}
TOKENS = {"planner": "planner-token-0123456789abcdef"}
CREDENTIALS = [{"name": "vera", "key": KEYS["viewer"], "role": "viewer"},
               {"name": "anna", "key": KEYS["planner"], "role": "planner"},
               {"name": "ben", "key": KEYS["planner2"], "role": "planner"},
               {"name": "root", "key": KEYS["admin"], "role": "admin"}]
SCENE_ID = "tiny"


def auth(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def scenario_doc(name: str = "Baseline", *, scene: str = SCENE_ID, **extra) -> dict:
    """A minimal valid scenario on the tiny scene: screening only, 20 m cells (fast)."""
    doc = {"name": name, "scene": scene, "resolution_m": 5.0, "models": ["screening"],
           "forcing": {"rain": {"type": "design_storm", "return_period_a": 100, "duration_min": 60, "depth_mm": 45}}}
    doc.update(extra)
    return doc


def _tiles(root: Path) -> None:
    t = root / "tiles" / "scenes" / SCENE_ID
    t.mkdir(parents=True)
    (t / "manifest.json").write_text(json.dumps({"format": "twin-tiles", "version": 1, "layers": [
        {"id": "buildings", "kind": "buildings", "tileset": "tileset.json"}], "runs": []}))
    (t / "tileset.json").write_text(json.dumps({"asset": {"version": "1.1"}, "geometricError": 100,
                                                "root": {"content": {"uri": "0.glb"}, "pad": "x" * 4000}}))
    (t / "0.glb").write_bytes(b"glTF" + bytes(range(256)) * 64)           # 16 kB, compressible
    (t / "pre.json").write_text(json.dumps({"big": "y" * 5000}))
    import gzip
    (t / "pre.json.gz").write_bytes(gzip.compress((t / "pre.json").read_bytes(), mtime=0))
    (t / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
    (root / "secret.txt").write_text("outside the tiles folder")
    os.symlink(root / "secret.txt", t / "link-out.txt")


def _sensors(root: Path) -> None:
    from twin.sensors.store import open_store

    with open_store(root / "sensors.sqlite") as store:
        a = store.upsert_datastream(source="http://sta.test/v1.1", iot_id="1", name="Ta station A",
                                    property="air_temperature", unit="degC", thing="A", lon=11.57, lat=48.15)
        b = store.upsert_datastream(source="http://sta.test/v1.1", iot_id="2", name="Ta station B",
                                    property="air_temperature", unit="degC", thing="B", lon=11.58, lat=48.14)
        store.upsert_datastream(source="http://sta.test/v1.1", iot_id="3", name="empty", property="precipitation",
                                unit="mm", thing="C", lon=11.5, lat=48.1)
        t0 = 1_780_000_000_000_000
        store.insert(a, [(t0, t0, 21.5, None, 0, "o1"), (t0 + 600_000_000, t0 + 600_000_000, 22.0, None, 0, "o2")])
        store.insert(b, [(t0, t0, 20.0, None, 0, "o3"), (t0 + 600_000_000, t0 + 600_000_000, 55.0, None, 1, "o4")])


@pytest.fixture(scope="session")
def template_workspace(tmp_path_factory) -> Path:
    """Built once: scenes/tiny (box city), tiles, a scenario, sensor readings."""
    from tests.test_tiles import box_city

    root = tmp_path_factory.mktemp("api-template") / "ws"
    box_city(4).save(root / "scenes" / SCENE_ID)
    _tiles(root)
    (root / "scenarios").mkdir()
    (root / "scenarios" / "baseline.json").write_text(json.dumps(scenario_doc("Baseline")))
    _sensors(root)
    return root


@pytest.fixture
def workspace(template_workspace, tmp_path) -> Path:
    """A fresh copy per test (tests write scenarios and runs)."""
    dst = tmp_path / "ws"
    shutil.copytree(template_workspace, dst, symlinks=True)
    link = dst / "tiles" / "scenes" / SCENE_ID / "link-out.txt"
    link.unlink()
    os.symlink(dst / "secret.txt", link)
    return dst


def make_settings(workspace: Path, **kw) -> Settings:
    base = {"workspace": workspace, "api_keys": CREDENTIALS,
            "tokens": [{"name": "anna-token", "key": TOKENS["planner"], "role": "planner"}],
            "cesium_dir": workspace / "no-cesium-here", "sse_poll_s": 0.05}
    base.update(kw)
    return Settings(_env_file=None, **base)


@pytest.fixture
def settings(workspace) -> Settings:
    return make_settings(workspace)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def raw_request(app, method: str, raw_path: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """Call the ASGI app with a path exactly as a server passes it (no client-side ``..`` normalisation,
    which httpx and browsers do): ``path`` percent-decoded once, ``raw_path`` as sent."""
    import asyncio
    from urllib.parse import unquote_to_bytes

    path_part, _, query = raw_path.partition(b"?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": unquote_to_bytes(path_part).decode("utf-8", "surrogateescape"), "raw_path": path_part,
             "query_string": query, "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    out: dict = {"status": None, "headers": {}, "body": b""}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["headers"], out["body"]
