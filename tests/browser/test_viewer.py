"""The offline viewer in real headless Chromium (SwiftShader WebGL) against a real `twin serve`.

One page (module fixture) is loaded on the 60 mm run and reused by the tests that only look and
click; tests that need a fresh load (URL hash, a run started from the page) open their own.
Screenshots are kept in tests/browser/artifacts/.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.browser.conftest import ARTIFACTS, PLANNER_KEY
from tests.browser.workspace import SCENARIO_ID


def _distinct_colours(rgb: np.ndarray) -> int:
    flat = rgb.reshape(-1, 3).astype(np.int64)
    return len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]))


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels whose colour (or coverage) differs clearly between two canvas images."""
    return (np.abs(a[..., :3] - b[..., :3]).sum(axis=2) > 30) | (np.abs(a[..., 3] - b[..., 3]) > 64)


def test_page_loads_with_no_request_leaving_loopback(viewer, server):
    host = urlsplit(server).netloc
    assert viewer.requests, "the page made no requests at all"
    outside = [u for u in viewer.requests
               if not (u.startswith(("blob:", "data:")) or urlsplit(u).netloc == host)]
    assert outside == [], f"requests leaving {host}: {outside[:10]}"
    paths = {urlsplit(u).path for u in viewer.requests if urlsplit(u).netloc == host}
    # CesiumJS, the viewer, the API and the run's tiles all came from this server
    assert {"/cesium/Cesium.js", "/app.js", "/api/config", "/api/runs", "/api/sensors"} <= paths
    assert any(p.startswith("/tiles/runs/") and p.endswith(".glb") for p in paths)
    assert viewer.errors() == []
    assert [e for e in viewer.console_errors if "favicon" not in e] == []


def test_tiles_render_buildings_terrain_and_flood(viewer, workspace):
    viewer.screenshot("viewer-run.png")
    img = viewer.canvas()
    drawn = img[..., 3] > 0
    assert drawn.mean() > 0.5, f"tiles cover only {drawn.mean():.2f} of the view ({ARTIFACTS / 'viewer-run.png'})"
    rgb = img[..., :3][drawn]
    n = _distinct_colours(rgb)
    assert n > 500, f"only {n} distinct colours: the 3-D view looks flat ({ARTIFACTS / 'viewer-run.png'})"
    _, counts = np.unique(rgb[:, 0].astype(np.int64) * 65536 + rgb[:, 1] * 256 + rgb[:, 2], return_counts=True)
    assert counts.max() < 0.5 * len(rgb), "one colour fills half the view"
    # the flood drape's water colours (blue clearly above red) cover a fair part of the ground
    blue = (rgb[:, 2] > rgb[:, 0] + 40).mean()
    assert blue > 0.05, f"water-blue pixels {blue:.3f}"
    st = json.loads(viewer.status()["state"])
    assert st["run"] == workspace.run_ids[0]
    assert int(viewer.status()["tilesets"]) >= 3      # buildings, terrain, max-depth drape


def _window_xy(viewer, ecef) -> tuple[float, float]:
    xy = viewer.page.evaluate(
        """([x, y, z]) => {
            const C = window.Cesium, scene = window.twinViewer.viewer.scene;
            const p = C.SceneTransforms.worldToWindowCoordinates(scene, new C.Cartesian3(x, y, z));
            return p ? [p.x, p.y] : null;
        }""", list(ecef))
    assert xy is not None, "the building's roof is behind the camera"
    return xy


def test_click_building_shows_gml_id_and_result(viewer, workspace):
    run = workspace.run_ids[0]
    # the largest building of the sample, clicked on its largest roof triangle
    gml_id = "DEBY_LOD2_4959457"
    x, y = _window_xy(viewer, workspace.buildings[gml_id]["roof_ecef"])
    under = viewer.page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName", [x, y])
    assert under == "CANVAS", f"the roof at ({x:.0f}, {y:.0f}) is covered by a {under}"
    viewer.page.mouse.click(x, y)
    viewer.page.wait_for_function("document.getElementById('status').dataset.pick !== ''", timeout=30_000)
    pick = json.loads(viewer.status()["pick"])
    assert pick["gml_id"] == gml_id
    expected = workspace.buildings[gml_id]["values"][run]["heavyrain_max_depth_max"]
    assert pick["properties"]["heavyrain_max_depth_max"] == pytest.approx(expected, abs=1e-9)
    assert 0.05 < expected < 2.0      # water stands against the building after 60 mm
    panel = viewer.page.locator("#info-panel")
    assert panel.is_visible()
    text = panel.inner_text()
    assert gml_id in text
    shown = viewer.page.locator('#info-results tr[data-property="heavyrain_max_depth_max"] td.value').inner_text()
    assert shown == f"{expected:.2f}".replace(".", ",") + " m", shown    # German: decimal comma
    assert "Arcisstraße 21" in text
    viewer.screenshot("viewer-pick.png")
    viewer.page.locator("#info-close").click()
    assert viewer.status()["pick"] == ""


def test_time_slider_changes_the_image(viewer, workspace):
    page = viewer.page
    assert page.locator("#timebar").is_visible()
    last = workspace.snapshots - 1
    assert page.locator("#time").get_attribute("max") == str(last)
    images = {}
    for t in (0, last):
        page.locator("#time").fill(str(t))
        page.wait_for_function(f"document.getElementById('status').dataset.snapshot === '{t}'", timeout=30_000)
        viewer.wait_idle()
        images[t] = viewer.canvas()
        assert f"t={t}" in page.evaluate("location.hash")
        assert page.locator("#time-label").inner_text().startswith("nach ")
    viewer.screenshot(f"viewer-snapshot-{last}.png")
    changed = _changed(images[0], images[last])
    assert changed.mean() > 0.02, f"only {changed.mean():.4f} of the pixels changed between the first and last snapshot"
    # the water deepens (same colour scale for every snapshot): darker where the image changed
    both = changed & (images[0][..., 3] > 0) & (images[last][..., 3] > 0)
    assert images[last][both][:, :3].sum(axis=1).mean() < images[0][both][:, :3].sum(axis=1).mean()
    page.locator("#time-max").click()
    page.wait_for_function("document.getElementById('status').dataset.snapshot === '-1'", timeout=30_000)
    viewer.wait_idle()


def test_split_screen_compares_two_runs(viewer, workspace):
    page = viewer.page
    before = viewer.canvas()
    page.locator("#compare").select_option(workspace.run_ids[1])
    page.wait_for_function("window.twinViewer.compare !== null", timeout=30_000)
    viewer.wait_idle()
    after = viewer.canvas()
    viewer.screenshot("viewer-split.png")
    assert page.locator("#split-handle").is_visible()
    assert page.evaluate("window.twinViewer.viewer.scene.splitPosition") == pytest.approx(0.5)
    directions = page.evaluate("""() => {
        const C = window.Cesium, out = [];
        const prims = window.twinViewer.viewer.scene.primitives;
        for (let i = 0; i < prims.length; i++) {
            const p = prims.get(i);
            if (p instanceof C.Cesium3DTileset && p.show) out.push(p.splitDirection);
        }
        return out;
    }""")
    assert -1 in directions and 1 in directions        # SplitDirection.LEFT and .RIGHT
    w = before.shape[1]
    left = _changed(before[:, : w // 2 - 20], after[:, : w // 2 - 20])
    right = _changed(before[:, w // 2 + 20:], after[:, w // 2 + 20:])
    # the left half still shows the 60 mm run; the right half now the 30 mm run (less, shallower water)
    assert left.mean() < 0.02, f"left half changed in {left.mean():.3f} of its pixels"
    assert right.mean() > 0.03, f"right half changed in only {right.mean():.4f} of its pixels"
    assert f"cmp={workspace.run_ids[1]}" in page.evaluate("location.hash")
    assert page.locator("#legend-right").is_hidden()    # both runs' depths share one colour scale
    page.locator("#compare").select_option("")
    page.wait_for_function("window.twinViewer.compare === null", timeout=30_000)
    viewer.wait_idle()


def test_sensor_marker_shows_latest_values(viewer, workspace):
    sensor = workspace.sensor
    labels = viewer.page.evaluate("""() => {
        const ds = window.twinViewer.viewer.dataSources;
        const out = [];
        for (let i = 0; i < ds.length; i++) for (const e of ds.get(i).entities.values) {
            const C = window.Cesium;
            const c = C.Cartographic.fromCartesian(e.position.getValue(C.JulianDate.now()));
            out.push({text: e.label.text.getValue(), lon: C.Math.toDegrees(c.longitude), lat: C.Math.toDegrees(c.latitude)});
        }
        return out;
    }""")
    assert len(labels) == 1
    (m,) = labels
    assert m["lon"] == pytest.approx(sensor["lon"], abs=1e-9) and m["lat"] == pytest.approx(sensor["lat"], abs=1e-9)
    assert sensor["thing"] in m["text"]
    assert "27,4 °C" in m["text"]                    # air temperature, German notation
    assert "12,6 mm" in m["text"] and "⚠" in m["text"]  # the QC-flagged rain reading is marked


def test_hash_round_trips_and_ignores_garbage(viewer):
    """state.js: a link's hash parses to the state that formats back to the same hash."""
    out = viewer.page.evaluate("""async () => {
        const m = await import('/state.js');
        const h = '#run=r-1&layer=max_depth&water=0&t=2&cmp=r-2&split=0.3&off=terrain&sensors=0&globe=1'
                + '&color=heavyrain_max_depth_max&cam=11.5681,48.1478,650,200,-45,0&lang=en';
        const bad = m.parseHash('#t=x&split=7&cam=1,2,3&lang=en&zzz=1');
        return {again: m.formatHash(m.parseHash(h)), h, bad, empty: m.formatHash(m.parseHash(''))};
    }""")
    assert out["again"] == out["h"]
    assert out["bad"]["t"] == -1 and out["bad"]["split"] == 0.95 and out["bad"]["cam"] is None
    assert out["empty"] == "#"


def test_link_restores_view_layer_and_language(fresh_page, workspace):
    run = workspace.run_ids[1]
    cam = [11.5681, 48.1478, 650.0, 200.0, -45.0, 0.0]
    vp = fresh_page.open(f"#run={run}&layer=arrival_time&water=0&lang=en&cam={','.join(map(str, cam))}")
    page = vp.page
    assert page.locator("#layers-panel h2").inner_text() == "Layers"
    assert page.locator("input[name=result-layer][value='arrival_time']").is_checked()
    assert page.locator("#legend-title").inner_text() == "Water arrival time"
    got = page.evaluate("""() => {
        const C = window.Cesium, cam = window.twinViewer.viewer.camera, c = cam.positionCartographic;
        return [C.Math.toDegrees(c.longitude), C.Math.toDegrees(c.latitude), c.height,
                C.Math.toDegrees(cam.heading), C.Math.toDegrees(cam.pitch)];
    }""")
    assert got[0] == pytest.approx(cam[0], abs=1e-6) and got[1] == pytest.approx(cam[1], abs=1e-6)
    assert got[2] == pytest.approx(cam[2], abs=0.5)
    assert got[3] == pytest.approx(cam[3], abs=0.01) and got[4] == pytest.approx(cam[4], abs=0.01)
    vp.screenshot("viewer-link-en.png")
    # toggling the language relabels the page and goes into the link
    page.locator("#lang").click()
    assert page.locator("#layers-panel h2").inner_text() == "Ebenen"
    assert page.locator("#legend-title").inner_text() == "Ankunftszeit des Wassers"
    assert "lang=" not in page.evaluate("location.hash")          # German is the default
    assert "layer=arrival_time" in page.evaluate("location.hash")
    # the opt-in globe draws the NaturalEarthII imagery that ships with CesiumJS, from this server
    page.locator("#show-globe").check()
    page.wait_for_function("performance.getEntriesByType('resource').some(e => e.name.includes('/NaturalEarthII/'))",
                           timeout=60_000)
    assert "globe=1" in page.evaluate("location.hash")
    page.locator("#show-globe").uncheck()
    host = urlsplit(vp.base).netloc
    assert [u for u in vp.requests if not u.startswith(("blob:", "data:")) and urlsplit(u).netloc != host] == []
    assert any("/cesium/Assets/Textures/NaturalEarthII/" in u for u in vp.requests)
    assert vp.errors() == []


def test_run_started_from_the_page_reports_progress_and_arrives(viewer, workspace):
    """Last on the shared page: a planner starts a run, watches its progress, and its layers appear."""
    page = viewer.page
    page.locator("#new-run-toggle").click()
    assert page.locator("#run-panel").is_visible()
    page.wait_for_function(f"[...document.querySelectorAll('#run-scenario option')].some(o => o.value === "
                           f"'{SCENARIO_ID}')", timeout=30_000)
    page.locator("#run-scenario").select_option(SCENARIO_ID)
    page.locator("#api-key").fill(PLANNER_KEY)
    page.locator("#run-start").click()
    page.wait_for_function("['done', 'failed', 'cancelled', 'interrupted'].includes("
                           "document.getElementById('run-status').dataset.status)", timeout=150_000)
    status = page.evaluate("() => ({...document.getElementById('run-status').dataset})")
    assert status["status"] == "done", status
    run_id = status["run"]
    assert run_id.startswith(SCENARIO_ID)
    log = json.loads(status["progressLog"])
    assert any(0 < p < 1 for p in log), f"no intermediate progress was reported: {log}"
    assert log == sorted(log) and log[-1] == 1
    assert int(status.get("snapshots") or 0) >= 1, "no snapshot event arrived while the run went on"
    # the page switched to the new run and shows its layers
    page.wait_for_function(f"window.twinViewer.state.run === '{run_id}'", timeout=30_000)
    viewer.wait_idle()
    assert page.locator("input[name=result-layer][value='max_depth']").is_checked()
    assert page.locator("#timebar").is_visible()       # its depth snapshots
    assert f"run={run_id}" in page.evaluate("location.hash")
    assert page.locator("#run-progress").evaluate("el => el.value") == 1
    viewer.screenshot("viewer-new-run.png")
    assert viewer.errors() == []
