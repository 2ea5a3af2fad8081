"""/tiles, /cesium and the viewer: validators, gzip, ranges, confinement to the served folder."""

from __future__ import annotations

import gzip
import json

import pytest
from fastapi.testclient import TestClient

from twin.api import create_app

from .conftest import SCENE_ID, auth, make_settings, raw_request

T = f"/tiles/scenes/{SCENE_ID}"


def test_tile_etag_cache_control_and_304(client):
    r = client.get(f"{T}/tileset.json", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "public, max-age=60, must-revalidate"
    assert r.headers["accept-ranges"] == "bytes"
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    r2 = client.get(f"{T}/tileset.json", headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    # a list and weak validators match too; another tag does not
    assert client.get(f"{T}/tileset.json", headers={"Accept-Encoding": "identity",
                                                    "If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert client.get(f"{T}/tileset.json", headers={"Accept-Encoding": "identity",
                                                    "If-None-Match": '"other"'}).status_code == 200


def test_etag_changes_when_file_is_replaced(client, workspace):
    path = workspace / "tiles" / "scenes" / SCENE_ID / "manifest.json"
    e1 = client.get(f"{T}/manifest.json").headers["etag"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text('{"layers": [], "runs": [], "new": true}')
    tmp.replace(path)                      # as update_manifest does: atomic replacement
    r = client.get(f"{T}/manifest.json", headers={"If-None-Match": e1})
    assert r.status_code == 200 and r.json()["new"] is True and r.headers["etag"] != e1


def test_gzip_on_the_fly_and_precompressed(client, workspace):
    raw = (workspace / "tiles" / "scenes" / SCENE_ID / "0.glb").read_bytes()
    # httpx decodes gzip transparently: look at the raw stream to see the encoding
    with client.stream("GET", f"{T}/0.glb", headers={"Accept-Encoding": "gzip"}) as r:
        body = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert r.headers["content-type"] == "model/gltf-binary"
    assert gzip.decompress(body) == raw and len(body) < len(raw)
    gz_etag = r.headers["etag"]
    plain = client.get(f"{T}/0.glb", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    assert plain.headers["etag"] != gz_etag             # each representation its own validator
    assert client.get(f"{T}/0.glb", headers={"Accept-Encoding": "gzip", "If-None-Match": gz_etag}).status_code == 304
    # q=0 refuses gzip
    assert "content-encoding" not in client.get(f"{T}/0.glb", headers={"Accept-Encoding": "gzip;q=0"}).headers
    # a .gz sibling is served as it is
    pre = (workspace / "tiles" / "scenes" / SCENE_ID / "pre.json.gz").read_bytes()
    with client.stream("GET", f"{T}/pre.json", headers={"Accept-Encoding": "gzip, br"}) as r:
        assert b"".join(r.iter_raw()) == pre
    # already-compressed images are not compressed again
    assert "content-encoding" not in client.get(f"{T}/image.png", headers={"Accept-Encoding": "gzip"}).headers


@pytest.mark.parametrize("spec, status, expect", [
    ("bytes=0-3", 206, (0, 3)), ("bytes=4-", 206, (4, None)), ("bytes=-10", 206, (-10, None)),
    ("bytes=10-999999", 206, (10, None)), ("bytes=999999-", 416, None), ("bytes=abc", 200, None),
    ("items=0-3", 200, None), ("bytes=0-1,4-5", 200, None)])
def test_range_requests(client, workspace, spec, status, expect):
    raw = (workspace / "tiles" / "scenes" / SCENE_ID / "0.glb").read_bytes()
    r = client.get(f"{T}/0.glb", headers={"Range": spec, "Accept-Encoding": "gzip"})
    assert r.status_code == status
    if status == 206:
        a, b = expect
        part = raw[a:] if b is None else raw[a:b + 1]
        assert r.content == part and "content-encoding" not in r.headers
        start = len(raw) + a if a < 0 else a
        assert r.headers["content-range"] == f"bytes {start}-{start + len(part) - 1}/{len(raw)}"
    elif status == 416:
        assert r.headers["content-range"] == f"bytes */{len(raw)}"
        assert r.json()["error"] == "range_not_satisfiable"
    else:
        assert len(r.content) == len(raw) or r.headers.get("content-encoding") == "gzip"


def test_if_range_with_stale_etag_sends_whole_file(client, workspace):
    raw = (workspace / "tiles" / "scenes" / SCENE_ID / "0.glb").read_bytes()
    etag = client.get(f"{T}/0.glb", headers={"Accept-Encoding": "identity"}).headers["etag"]
    r = client.get(f"{T}/0.glb", headers={"Range": "bytes=0-3", "If-Range": etag})
    assert r.status_code == 206 and r.content == raw[:4]
    r = client.get(f"{T}/0.glb", headers={"Range": "bytes=0-3", "If-Range": '"stale"', "Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.content == raw


def test_head(client, workspace):
    size = (workspace / "tiles" / "scenes" / SCENE_ID / "0.glb").stat().st_size
    r = client.head(f"{T}/0.glb", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) == size


@pytest.mark.parametrize("raw_path", [
    b"/tiles/../secret.txt", b"/tiles/%2e%2e/secret.txt", b"/tiles/%2E%2E/secret.txt",
    b"/tiles/scenes/..%2f..%2fsecret.txt", b"/tiles/scenes/tiny/../../../secret.txt", b"/tiles/%252e%252e/secret.txt",
    b"/tiles//etc/passwd", b"/tiles/%2fetc/passwd", b"/tiles/scenes/%5c..%5csecret.txt", b"/tiles/scenes/tiny/..",
    b"/tiles/%00", b"/tiles/C:/x", b"/cesium/../secret.txt", b"/..%2fsecret.txt", b"/%2e%2e/%2e%2e/etc/passwd"])
def test_traversal_is_refused(client, raw_path):
    """Paths exactly as a server receives them (httpx would normalise `..` away before sending)."""
    status, headers, body = raw_request(client.app, "GET", raw_path)
    assert 400 <= status < 500, (raw_path, status, body)
    doc = json.loads(body)
    assert doc["error"] in ("bad_path", "not_found", "cesium_missing") and doc["message"]
    assert b"outside the tiles folder" not in body


def test_traversal_refused_by_the_viewer_route_too(workspace, tmp_path):
    viewer = tmp_path / "viewer"
    viewer.mkdir()
    (viewer / "index.html").write_text("<!doctype html>")
    (tmp_path / "secret.txt").write_text("outside the viewer folder")
    with TestClient(create_app(make_settings(workspace, viewer_dir=viewer))) as c:
        for raw in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/..%2fsecret.txt"):
            status, _, body = raw_request(c.app, "GET", raw)
            assert status == 400 and b"outside the viewer" not in body


def test_symlink_out_of_the_folder_is_refused(client):
    r = client.get(f"{T}/link-out.txt")
    assert r.status_code == 403 and r.json()["error"] == "bad_path"


def test_missing_tile_and_folder(client):
    assert client.get(f"{T}/nope.glb").json()["error"] == "not_found"
    assert client.get(f"{T}/nope.glb").status_code == 404
    assert client.get("/tiles/scenes").status_code == 404      # folders are not listed


def test_tiles_need_a_key_when_the_viewer_is_private(workspace):
    with TestClient(create_app(make_settings(workspace, public_viewer=False))) as c:
        r = c.get(f"{T}/tileset.json")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert c.get(f"{T}/tileset.json", headers=auth("viewer")).status_code == 200


def test_cesium_missing_is_a_clear_503(client):
    r = client.get("/cesium/Cesium.js")
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "cesium_missing" and "make npmdeps" in body["message"]
    assert client.get("/api/config").json()["cesium_available"] is False


def test_cesium_served_from_setting(workspace, tmp_path):
    cesium = tmp_path / "Cesium"
    (cesium / "Workers").mkdir(parents=True)
    (cesium / "Cesium.js").write_text("var Cesium = {};\n" * 200)
    (cesium / "Workers" / "w.js").write_text("self.x = 1;")
    with TestClient(create_app(make_settings(workspace, cesium_dir=cesium))) as c:
        r = c.get("/cesium/Cesium.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert "max-age=86400" in r.headers["cache-control"]
        assert c.get("/cesium/Workers/w.js").text == "self.x = 1;"
        assert c.get("/api/config").json()["cesium_available"] is True
        assert raw_request(c.app, "GET", b"/cesium/../Cesium/Cesium.js")[0] == 400


def test_viewer_index_and_files(workspace, tmp_path):
    viewer = tmp_path / "viewer"
    viewer.mkdir()
    (viewer / "index.html").write_text("<!doctype html><title>twin</title><script src='app.js'></script>")
    (viewer / "app.js").write_text("console.log('twin');")
    with TestClient(create_app(make_settings(workspace, viewer_dir=viewer))) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert c.get("/app.js").text == "console.log('twin');"
        assert c.get("/missing.js").status_code == 404
        assert c.get("/api/nothing-here").json()["error"] == "not_found"


def test_bundled_viewer_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()
