"""Screenshot of the viewer as a person would see it: headless Debian Chromium, software WebGL.

    .venv/bin/python tools/viewer_screenshot.py http://127.0.0.1:8000/#run=... out.png [--timeout 180]

Waits until the page says it is ready and all tiles of the current view are drawn (the DOM flags in
twin/api/viewer/app.js), prints the page's state and errors, and lists any request that left 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
from urllib.parse import urlsplit

ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-quic", "--disable-gpu-compositing"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the view (default 180)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    a = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": a.width, "height": a.height})
        page.on("request", lambda r: outside.append(r.url)
                if urlsplit(r.url).hostname not in ("127.0.0.1", "localhost", None) and not r.url.startswith("data:")
                else None)
        page.goto(a.url)
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=a.timeout * 1000)
        page.wait_for_function("document.body.dataset.idle === '1' && "
                               "Number(document.body.dataset.idleGen) >= Number(document.body.dataset.gen)",
                               timeout=a.timeout * 1000)
        page.screenshot(path=a.out)
        status = page.evaluate("({...document.getElementById('status').dataset})")
        browser.close()
    print(json.dumps({"state": status.get("state"), "tilesets": status.get("tilesets"),
                      "errors": status.get("errors"), "requests_outside_loopback": outside}, indent=1))
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
