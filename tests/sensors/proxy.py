"""A loopback fault-injecting proxy in front of a real SensorThings server (GET only).

Faults are deterministic so the tests can state exact counts: request-count based errors (500, 429,
timeouts), nextLink loops, duplicated pages, and per-Observation rewrites chosen by a hash of the
``@iot.id`` (NaN/null/string results, skewed time zones, future timestamps). Every rewritten
Observation is recorded (``nan_ids``, ``future_ids``) for the assertions. Upstream absolute nextLinks
are made relative, so the client's handling of relative links is exercised too.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Faults:
    error_every: int = 0          # every n-th request answers 500
    error_status: int = 500
    timeout_every: int = 0        # every n-th request stalls for delay_s (client times out)
    delay_s: float = 2.0
    too_many_every: int = 0       # every n-th request answers 429 with Retry-After: 0
    loop_after: int = 0           # the n-th nextLink of a paging points back to the first page
    duplicate_pages: bool = False  # each page repeats the previous page's entities first
    bad_result_mod: int = 0       # Observations with hash % mod == 1 get a NaN/null/"n/a" result
    future_mod: int = 0           # Observations with hash % mod == 2 move to now + 1 day
    skew_offsets: bool = False    # every time is re-expressed in +02:00 / -05:00 (same instant)
    nan_ids: set = field(default_factory=set)
    future_ids: set = field(default_factory=set)
    requests: int = 0
    injected: dict = field(default_factory=dict)


def _h(iot_id) -> int:
    return int(hashlib.sha1(str(iot_id).encode()).hexdigest()[:8], 16)


class FaultProxy:
    def __init__(self, upstream_origin: str, faults: Faults | None = None):
        self.upstream = upstream_origin.rstrip("/")
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._prev_page: dict[str, list] = {}
        self._next_count: dict[str, int] = {}
        self._first_path: dict[str, str] = {}
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        self._future_base = today + timedelta(days=2)
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()

    def _count(self, kind: str) -> None:
        self.faults.injected[kind] = self.faults.injected.get(kind, 0) + 1

    def _send(self, h, status: int, body: bytes, headers: dict | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self, h) -> None:
        f = self.faults
        with self._lock:
            f.requests += 1
            n = f.requests
        if f.error_every and n % f.error_every == 0:
            self._count("error")
            return self._send(h, f.error_status, b'{"code":500,"type":"error","message":"injected"}')
        if f.too_many_every and n % f.too_many_every == 0:
            self._count("429")
            return self._send(h, 429, b'{"message":"slow down"}', {"Retry-After": "0"})
        if f.timeout_every and n % f.timeout_every == 0:
            self._count("timeout")
            time.sleep(f.delay_s)
            return self._send(h, 504, b'{"message":"late"}')
        try:
            r = self._http.get(self.upstream + h.path)
        except httpx.HTTPError as exc:
            return self._send(h, 502, json.dumps({"message": f"upstream: {exc}"}).encode())
        if r.status_code != 200:
            return self._send(h, r.status_code, r.content)
        data = r.json()
        if isinstance(data, dict) and isinstance(data.get("value"), list) and "Observations" in h.path:
            data = self._rewrite(h.path, data)
        if isinstance(data, dict) and isinstance(data.get("@iot.nextLink"), str):
            data["@iot.nextLink"] = data["@iot.nextLink"].replace(self.upstream, "")  # relative link
        self._send(h, 200, json.dumps(data).encode())

    def _rewrite(self, path: str, data: dict) -> dict:
        f = self.faults
        base = path.split("?", 1)[0]
        first = "$skip" not in path and "%24skip" not in path
        values = data["value"]
        for o in values:
            oid = o.get("@iot.id")
            hv = _h(oid)
            if f.bad_result_mod and hv % f.bad_result_mod == 1:
                o["result"] = ("NaN", None, "n/a")[hv % 3]
                f.nan_ids.add(oid)
            if f.future_mod and hv % f.future_mod == 2:
                future = self._future_base + timedelta(microseconds=hv % 86_400_000_000)  # unique per id
                o["phenomenonTime"] = future.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                f.future_ids.add(oid)
            if f.skew_offsets and isinstance(o.get("phenomenonTime"), str):
                t = datetime.fromisoformat(o["phenomenonTime"].replace("Z", "+00:00"))
                tz = timezone(timedelta(hours=2)) if hv % 2 else timezone(timedelta(hours=-5))
                o["phenomenonTime"] = t.astimezone(tz).isoformat()
        if f.duplicate_pages:
            with self._lock:
                prev = [] if first else self._prev_page.get(base, [])
                self._prev_page[base] = [dict(o) for o in values]
            if prev:
                self._count("duplicate_page")
                data["value"] = prev + values
        nxt = data.get("@iot.nextLink")
        if first:
            self._first_path[base] = path
        if f.loop_after and isinstance(nxt, str):
            with self._lock:
                k = 1 if first else self._next_count.get(base, 0) + 1
                self._next_count[base] = k
            if k == f.loop_after:
                self._count("loop")
                data["@iot.nextLink"] = self._first_path.get(base, path)  # back to the first page of this paging
        return data
