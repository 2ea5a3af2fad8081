"""`twin serve WORKSPACE`: a real uvicorn server on 127.0.0.1, its session key, a real run, raw paths."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TWIN = Path(sys.executable).with_name("twin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """A request line sent as is: no client normalises the path."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_twin_serve(workspace):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    proc = subprocess.Popen([str(TWIN), "serve", str(workspace), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=workspace)
    lines = []
    try:
        base = f"http://127.0.0.1:{port}"
        key = None
        end = time.monotonic() + 60
        while time.monotonic() < end:                    # read stdout until uvicorn says it is up
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"planner key for this session: (\S+)", line):
                key = m.group(1)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        assert key, "".join(lines)
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/api/health").json()["status"] == "ok"
            assert c.get("/").status_code == 200 and "<html" in c.get("/").text.lower()
            assert c.get("/cesium/Cesium.js").status_code in (200, 503)   # 503 where npm deps are absent
            # raw traversal attempts reach the server unchanged and are refused
            for path in ("/tiles/../secret.txt", "/tiles/%2e%2e/secret.txt", "/tiles/scenes/tiny/../../../secret.txt",
                         "/../secret.txt", "/cesium/%2e%2e/%2e%2e/secret.txt"):
                status, body = raw_get(port, path)
                assert 400 <= status < 500 and b"outside the tiles folder" not in body, (path, status)
            # the session key is a planner's: a real run in the forkserver pool
            assert c.post("/api/runs", json={"scenario": "baseline"}).status_code == 401
            r = c.post("/api/runs", json={"scenario": "baseline"}, headers={"X-API-Key": key})
            assert r.status_code == 202, r.text
            rid = r.json()["id"]
            events = []
            with c.stream("GET", f"/api/runs/{rid}/events") as s:
                for line in s.iter_lines():
                    if line.startswith("event: "):
                        events.append(line[7:])
                    elif line.startswith("data: ") and events[-1] == "end":
                        final = json.loads(line[6:])
            assert events[-1] == "end" and final["status"] == "done", final
            assert c.get(f"/api/runs/{rid}/buildings", params={"format": "csv"}).text.startswith("building_id")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, "".join(lines) + out
