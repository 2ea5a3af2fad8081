"""Tile serving benchmark: requests/s and latency percentiles at 50 concurrent clients on loopback.

The twin server (``twin serve``: FastAPI + uvicorn, ETag, gzip, ranges, access checks) serves a
workspace's 3D Tiles; the references, measured in the same run on the same files, are two plain static
file servers: Python's ``http.server.ThreadingHTTPServer`` and Starlette ``StaticFiles`` under the same
uvicorn. Every server runs in its own process on 127.0.0.1; the clients are ``--client-procs``
processes of a minimal asyncio HTTP/1.1 client (keep-alive connections, ``--concurrency`` requests in
flight in total; httpx would spend more CPU per request than the servers), each walking the tile URLs
in a shuffled order. Bytes are counted as sent (compressed for gzip). Each measurement is bounded by ``--requests`` and
``--seconds`` (whichever comes first) after a warm-up.

Tiles: the bundled sample city (terrain meshes, ~170 kB glbs) and a generated city of ``--buildings``
LoD2 buildings in tiles of 50 (small glbs), both written by ``twin tiles`` into one workspace.

Modes: ``identity`` (plain bytes, as the references send them), ``gzip`` (twin only; Accept-Encoding:
gzip, compressed once and cached) and ``revalidate`` (twin only; If-None-Match with the current ETag,
answered 304 with no body).

    .venv/bin/python benchmarks/api.py [--requests 4000] [--seconds 15] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable


# ------------------------------------------------------------------------------------------ workspace
def build_workspace(root: Path, n_buildings: int) -> Path:
    """WORKSPACE/tiles/scenes/{tum,generated}: real sample tiles and many small building tiles."""
    import importlib.util
    import warnings

    from twin.tiles import write_tiles
    from twin.workflows import import_city

    samples = REPO / "data" / "samples" / "muenchen-tum"
    scene = import_city(sorted((samples / "lod2").glob("*.gml")), root / "scenes" / "tum", crs="EPSG:25832+7837",
                        terrain=sorted((samples / "dgm1").glob("*.tif")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_tiles(scene, root / "tiles" / "scenes" / "tum")
        spec = importlib.util.spec_from_file_location("_bench_tiles", REPO / "benchmarks" / "tiles.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        write_tiles(mod.generated_city(n_buildings), root / "tiles" / "scenes" / "generated", max_features_per_tile=50)
    return root


def tile_paths(tiles: Path) -> list[str]:
    return sorted(str(p.relative_to(tiles)) for p in tiles.rglob("*") if p.is_file() and not p.name.endswith(".gz"))


# ------------------------------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_STATIC_UVICORN = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
app = Starlette(routes=[Mount("/tiles", StaticFiles(directory=sys.argv[1]))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""

_THREADING = """
import functools, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class H(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, as the other servers
    def translate_path(self, path):
        return super().translate_path(path[len("/tiles"):] if path.startswith("/tiles/") else path)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), functools.partial(H, directory=sys.argv[1])).serve_forever()
"""


def start_server(kind: str, workspace: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    tiles = str(workspace / "tiles")
    if kind == "twin":
        cmd = [str(Path(PY).with_name("twin")), "serve", str(workspace), "--port", str(port), "--log-level",
               "warning", "--no-session-key"]
    elif kind == "starlette-static":
        cmd = [PY, "-c", _STATIC_UVICORN, tiles, str(port)]
    else:
        cmd = [PY, "-c", _THREADING, tiles, str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start on port {port}")


# ------------------------------------------------------------------------------------------ clients
# A minimal HTTP/1.1 keep-alive client on asyncio streams: httpx spends ~0.5 ms of client CPU per
# request, which on a small machine would measure the client instead of the servers.
async def _get(reader, writer, path: str, headers: dict[str, str]) -> tuple[int, str, int]:
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write((head + "\r\n").encode())
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdr = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            hdr[k.strip().lower()] = v.strip()
    if hdr.get("transfer-encoding", "").lower() == "chunked":
        n = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size:
                n += len(await reader.readexactly(size))
            await reader.readexactly(2)
            if not size:
                break
    else:
        n = int(hdr.get("content-length", "0"))
        if n:
            await reader.readexactly(n)
    return status, hdr.get("etag", ""), n


async def _client(port: int, paths: list[str], n: int, concurrency: int, seconds: float, mode: str,
                  etags: dict[str, str], seed: int) -> tuple[list[float], int, int, float]:
    rng = random.Random(seed)
    order = paths[:]
    rng.shuffle(order)
    lat: list[float] = []
    nbytes = 0
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker():
        nonlocal counter, nbytes, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while counter < n and time.perf_counter() < deadline:
                p = order[counter % len(order)]
                counter += 1
                headers = {"Accept-Encoding": "gzip" if mode == "gzip" else "identity"}
                if mode == "revalidate":
                    headers["If-None-Match"] = etags[p]
                t0 = time.perf_counter()
                status, _, size = await _get(reader, writer, f"/tiles/{p}", headers)
                lat.append(time.perf_counter() - t0)
                nbytes += size
                if status not in (200, 304):
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, nbytes, errors, time.perf_counter() - t0


def _client_proc(args) -> tuple[list[float], int, int, float]:
    return asyncio.run(_client(*args))


def measure(port: int, paths: list[str], *, requests: int, seconds: float, concurrency: int, procs: int, mode: str,
            etags: dict[str, str]) -> dict:
    per = max(1, concurrency // procs)
    jobs = [(port, paths, requests // procs, per, seconds, mode, etags, i) for i in range(procs)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(procs) as pool:
        pool.map(_client_proc, [(port, paths, min(400, len(paths) * 2), per, 10.0, mode, etags, 99 + i)
                                for i in range(procs)])          # warm-up: page cache, gzip cache, imports
        results = pool.map(_client_proc, jobs)
    lat = np.concatenate([np.asarray(r[0]) for r in results]) * 1000.0
    return {"requests": int(lat.size), "rps": lat.size / max(r[3] for r in results), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "mb_per_s": sum(r[1] for r in results) / 1e6 / max(r[3] for r in results),
            "errors": sum(r[2] for r in results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000, help="requests per measurement (4000)")
    ap.add_argument("--seconds", type=float, default=15.0, help="time limit per measurement (15 s)")
    ap.add_argument("--concurrency", type=int, default=50, help="requests in flight (50)")
    ap.add_argument("--client-procs", type=int, default=2, help="client processes (2)")
    ap.add_argument("--buildings", type=int, default=3000, help="buildings of the generated city (3000)")
    ap.add_argument("--workspace", type=Path, help="use this workspace's tiles/ instead of building one")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.workspace:
            ws = args.workspace.resolve()
        else:
            t0 = time.perf_counter()
            ws = build_workspace(Path(tmp) / "ws", args.buildings)
            print(f"tiles written in {time.perf_counter() - t0:.1f} s", flush=True)
        paths = tile_paths(ws / "tiles")
        sizes = np.array([(ws / "tiles" / p).stat().st_size for p in paths])
        print(f"{len(paths)} files, median {np.median(sizes) / 1e3:.1f} kB, total {sizes.sum() / 1e6:.1f} MB; "
              f"{args.concurrency} concurrent requests from {args.client_procs} client processes on "
              f"{os.cpu_count()} CPUs", flush=True)
        rows = []
        for kind, modes in (("threading-http", ["identity"]), ("starlette-static", ["identity"]),
                            ("twin", ["identity", "gzip", "revalidate"])):
            port = free_port()
            proc = start_server(kind, ws, port)
            try:
                etags = {}
                if "revalidate" in modes:
                    import httpx

                    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
                        etags = {p: c.head(f"/tiles/{p}", headers={"Accept-Encoding": "identity"}).headers["etag"]
                                 for p in paths}
                for mode in modes:
                    r = measure(port, paths, requests=args.requests, seconds=args.seconds,
                                concurrency=args.concurrency, procs=args.client_procs, mode=mode, etags=etags)
                    rows.append((kind, mode, r))
                    print(f"  {kind:17s} {mode:10s} {r['rps']:8.0f} req/s  p99 {r['p99_ms']:7.1f} ms", flush=True)
            finally:
                proc.terminate()
                proc.wait(10)
        ref = {m: r for k, m, r in rows if k == "threading-http"}["identity"]
        ref2 = {m: r for k, m, r in rows if k == "starlette-static"}["identity"]
        print()
        print(f"{'server':18s}{'mode':12s}{'requests':>9s}{'req/s':>9s}{'p50 ms':>9s}{'p99 ms':>9s}{'MB/s':>8s}"
              f"{'errors':>7s}{'req/s vs http.server':>22s}{'vs StaticFiles':>16s}")
        for kind, mode, r in rows:
            print(f"{kind:18s}{mode:12s}{r['requests']:9d}{r['rps']:9.0f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}"
                  f"{r['mb_per_s']:8.1f}{r['errors']:7d}{r['rps'] / ref['rps']:21.2f}x{r['rps'] / ref2['rps']:15.2f}x")


if __name__ == "__main__":
    main()
