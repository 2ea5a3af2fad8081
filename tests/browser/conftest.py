"""Fixtures of the browser tests: one workspace, one `twin serve` and one headless Chromium per session.

Chromium is Debian's (/usr/bin/chromium, `make sysdeps`), driven by Playwright with SwiftShader
WebGL (no GPU); Playwright never downloads a browser here. Tests wait on the flags the page writes
into the DOM (see twin/api/viewer/app.js), never on sleeps.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.workspace import Workspace, build_workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic",
                 # software compositing of the page: WebGL still runs on SwiftShader, but a full-page
                 # screenshot takes 0.1 s instead of 5-10 s on a loaded machine
                 "--disable-gpu-compositing"]
CESIUM = Path(__file__).resolve().parents[2] / "node_modules" / "cesium" / "Build" / "Cesium" / "Cesium.js"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: a planner key the server accepts (tests only)
PLANNER_KEY = "browser-test-planner-key-0123456789"
VIEWPORT = {"width": 1024, "height": 640}   # software WebGL: every pixel costs


def pytest_collection_modifyitems(config, items):
    # skip the whole package, with the reason, where the browser or CesiumJS is missing
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is absent (Debian chromium: `make sysdeps` or apt-get install chromium)"
    elif not CESIUM.exists():
        reason = f"{CESIUM} is absent (CesiumJS from npm: `make npmdeps`)"
    if reason:
        here = Path(__file__).resolve().parent
        for item in items:
            if Path(str(item.fspath)).resolve().is_relative_to(here):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("browser") / "workspace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(workspace: Workspace):
    """`twin serve WORKSPACE` on 127.0.0.1 (a real uvicorn process); yields its base URL."""
    port = _free_port()
    env = dict(os.environ, TWIN_API_KEYS=json.dumps([{"name": "planner", "key": PLANNER_KEY, "role": "planner"}]),
               TWIN_SSE_POLL_S="0.2", NUMBA_NUM_THREADS=os.environ.get("NUMBA_NUM_THREADS", "1"))
    log = open(workspace.path.parent / "serve.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli.main", "serve", str(workspace.path), "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"twin serve exited with {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"twin serve did not answer within 60 s:\n{log.read()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class ViewerPage:
    """A loaded viewer page with every request it made and helpers that wait on its DOM flags."""

    def __init__(self, page, base: str):
        self.page = page
        self.base = base
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def open(self, hash_: str = "", *, timeout_s: float = 120) -> "ViewerPage":
        self.page.goto(f"{self.base}/{hash_}")
        self.page.wait_for_function("document.body.dataset.ready === '1'", timeout=timeout_s * 1000)
        self.wait_idle(timeout_s=timeout_s)
        return self

    def wait_idle(self, *, timeout_s: float = 90) -> None:
        """Until every tileset shown for the latest change is loaded and drawn."""
        self.page.wait_for_function(
            "document.body.dataset.idle === '1' && document.body.dataset.idleGen === document.body.dataset.gen",
            timeout=timeout_s * 1000)

    def status(self) -> dict:
        return self.page.evaluate("() => ({...document.getElementById('status').dataset})")

    def errors(self) -> list[str]:
        return json.loads(self.status().get("errors") or "[]")

    def screenshot(self, name: str) -> bytes:
        """A full-page screenshot, kept in tests/browser/artifacts/ (look at them)."""
        ARTIFACTS.mkdir(exist_ok=True)
        png = self.page.screenshot()
        (ARTIFACTS / name).write_bytes(png)
        return png

    def canvas(self) -> "np.ndarray":
        """The 3-D view's own pixels (RGBA uint8, no HTML panels on top), read from the WebGL canvas
        (the viewer keeps its drawing buffer); transparent where nothing was drawn."""
        import base64
        import io

        import numpy as np
        from PIL import Image

        url = self.page.evaluate("() => window.twinViewer.viewer.canvas.toDataURL('image/png')")
        png = base64.b64decode(url.split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.int16)


@pytest.fixture(scope="module")
def viewer(browser, server, workspace) -> ViewerPage:
    """The viewer on the 60 mm run, loaded once per module."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    # without the water surfaces: each snapshot or comparison then loads one tileset, not two
    vp = ViewerPage(page, server).open(f"#run={workspace.run_ids[0]}&water=0")
    yield vp
    context.close()


@pytest.fixture
def fresh_page(browser, server):
    """A new, empty page (own context) for tests that load the viewer themselves."""
    context = browser.new_context(viewport=VIEWPORT)
    yield ViewerPage(context.new_page(), server)
    context.close()
