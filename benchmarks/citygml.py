"""CityGML import speed and memory: twin's reader against a bare lxml pass over the same bytes.

What is measured
----------------
For each input file, in a fresh Python process each (so peak RSS belongs to that one import):

* ``bare``: the minimal streaming parse -- ``lxml.etree.iterparse(events=("end",),
  tag="{*}cityObjectMember", huge_tree=True)``, clearing each member and deleting its previous
  siblings (bounded memory). No geometry, no tables: just libxml2 tokenising the bytes and building
  one member's element tree at a time.
* ``twin``: ``twin.citygml.open_citygml(path)`` -- the same streaming parse plus everything twin
  does with it: feature/attribute/surface rows, ring coordinates, XLink resolution, Numba
  triangulation, the scene tables, the file's SHA-256. Numba compilation is kept out of the timing
  (the worker imports a small tile first; the kernels are ``cache=True``).

Inputs: the two NRW LoD2 tiles (``../shared/data/citygml/nrw-lod2-selfkant``, ~2 MB each), and a
~150 MB document generated into ``--out-dir`` by repeating the larger tile's ``cityObjectMember``
blocks with every ``gml:id`` and ``xlink:href="#..."`` given a copy suffix (``_c17``), so ids stay
unique and XLinks stay valid (coordinates are not shifted: the copies overlap, which the reader does
not care about). The generated file is reused when it already has the expected size.

Small files are timed best of ``--repeat`` (default 3) inside their worker; the big file once.

How to read the table
---------------------
``bldg/s``   Building + BuildingPart features imported per second (from ``scene.features["type"]``).
``MB/s``     file bytes (10^6) per second of wall time.
``ratio``    ``t_bare / t_twin``: the share of twin's time the parse alone would take. 1.0 means
             twin costs no more than parsing; 0.5 means geometry assembly and triangulation cost as
             much as the parse itself (the aim is >= 0.5). 3DCityDB's importer manages ~1,000
             features/s for comparison.
``peak RSS`` ``ru_maxrss`` of the worker process (MiB), i.e. interpreter + imports + the import
             itself; ``base`` is the RSS just before the timed run (after imports and warm-up), so
             ``peak - base`` is what the import added. The aim is peak < 1 GB on the 150 MB file.
``cpu/wall`` CPU time of the process and its worker processes over wall time of the timed runs
(> 1 means more than one core was busy; one large file is split across processes).

Benchmarks report; they do not assert.

Run: ``python benchmarks/citygml.py [--size-mb 150] [--out-dir .bench] [--json results.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NRW = SHARED / "data" / "citygml" / "nrw-lod2-selfkant"
TILES = [NRW / "LoD2_32_280_5657_1_NW.gml", NRW / "LoD2_32_280_5659_1_NW.gml"]

_MEMBER_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?cityObjectMember[\s>]")
_MEMBER_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?cityObjectMember\s*>")
_GML_NS = re.compile(rb'xmlns:([A-Za-z_][\w.-]*)="http://www\.opengis\.net/gml(?:/3\.2)?"')
_XLINK_NS = re.compile(rb'xmlns:([A-Za-z_][\w.-]*)="http://www\.w3\.org/1999/xlink"')


# ---------------------------------------------------------------------- the large input
def _split(src: bytes) -> tuple[bytes, bytes, bytes]:
    """(header, member blocks, footer) of a CityGML document."""
    first = _MEMBER_START.search(src)
    if first is None:
        raise SystemExit("no cityObjectMember in the source tile")
    last = None
    for last in _MEMBER_END.finditer(src):
        pass
    start = src.rfind(b"\n", 0, first.start()) + 1   # keep the member's indentation with the block
    end = last.end()
    if src[end:end + 1] == b"\n":
        end += 1
    return src[:start], src[start:end], src[end:]


def _id_pattern(header: bytes) -> re.Pattern:
    gml = _GML_NS.search(header)
    xlink = _XLINK_NS.search(header)
    g = re.escape(gml.group(1)) if gml else rb"gml"
    x = re.escape(xlink.group(1)) if xlink else rb"xlink"
    return re.compile(rb'(\b' + g + rb':id="|\b' + x + rb':href="#)([^"]*)"')


def generate_large(source: Path, out_dir: Path, size_mb: float) -> Path:
    """Write ``source`` with its members repeated (fresh ids) until ~size_mb; reuse an existing copy."""
    src = source.read_bytes()
    header, body, footer = _split(src)
    pat = _id_pattern(header)
    n_ids = len(pat.findall(body))
    target = int(size_mb * 1e6)
    copies = max(1, round((target - len(header) - len(footer)) / len(body)))
    suffixes = [f"_c{k}".encode() for k in range(copies)]
    expected = len(header) + len(footer) + sum(len(body) + n_ids * len(s) for s in suffixes)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{source.stem}_x{copies}.gml"
    if path.exists() and path.stat().st_size == expected:
        return path
    tmp = path.with_suffix(".gml.part")
    with open(tmp, "wb") as f:
        f.write(header)
        for s in suffixes:
            f.write(pat.sub(rb'\1\2' + s + rb'"', body))
        f.write(footer)
    os.replace(tmp, path)
    if path.stat().st_size != expected:
        raise SystemExit(f"{path}: generated {path.stat().st_size} bytes, expected {expected}")
    return path


# ---------------------------------------------------------------------- workers (fresh processes)
def _bare_pass(path: Path) -> int:
    from lxml import etree

    n = 0
    with open(path, "rb") as f:
        for _, el in etree.iterparse(f, events=("end",), tag="{*}cityObjectMember", huge_tree=True):
            n += 1
            el.clear()
            parent = el.getparent()
            while el.getprevious() is not None:
                del parent[0]
    return n


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def worker(kind: str, path: Path, repeat: int, warm: Path | None) -> dict:
    """Run in a fresh process: time ``kind`` on ``path`` (best of ``repeat``) and report peak RSS."""
    if kind == "bare":
        fn = lambda: {"members": _bare_pass(path)}  # noqa: E731
    else:
        sys.path.insert(0, str(REPO))
        from twin.citygml import open_citygml

        if warm is not None:
            open_citygml(warm)   # Numba kernels loaded from cache / compiled, imports settled

        def fn():
            scene = open_citygml(path)
            types = scene.features["type"]
            return {"buildings": int(types.isin(["Building", "BuildingPart"]).sum()),
                    "features": int(len(types)), "triangles": int(len(scene.triangles)),
                    "problems": int(len(scene.problems))}
    base = _rss_mib()
    times, cpus, info = [], [], {}
    def cpu() -> float:   # this process and its (finished) worker processes: the split import forks
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    for _ in range(repeat):
        c0, t0 = cpu(), time.perf_counter()
        info = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    best = min(range(repeat), key=times.__getitem__)
    # peak RSS: the largest of this process and any one worker process
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024   # KiB on Linux
    return {"kind": kind, "file": str(path), "bytes": path.stat().st_size, "seconds": times[best],
            "cpu_seconds": cpus[best], "all_seconds": times, "rss_base_mib": base, "rss_peak_mib": peak,
            **info}


def run_worker(kind: str, path: Path, repeat: int, warm: Path | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(path), "--repeat", str(repeat)]
    if warm is not None:
        cmd += ["--warm", str(warm)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"worker {kind} {path} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- driver
def _warm_page_cache(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=150.0, help="size of the generated file (default 150)")
    ap.add_argument("--out-dir", type=Path, default=REPO / ".bench", help="where the generated file goes")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per small file (best of)")
    ap.add_argument("--no-large", action="store_true", help="only the NRW tiles")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--warm", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        kind, path = args.worker
        print(json.dumps(worker(kind, Path(path), args.repeat, args.warm)))
        return

    if not all(t.exists() for t in TILES):
        print(f"citygml benchmark skipped: the NRW tiles are not there ({NRW}); it needs ../shared/data "
              "next to the repository")
        return
    cases = [(t.name, t, args.repeat) for t in TILES]
    if not args.no_large:
        t0 = time.perf_counter()
        big = generate_large(TILES[1], args.out_dir, args.size_mb)
        print(f"generated/reused {big} ({big.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s",
              flush=True)
        cases.append((f"{TILES[1].stem} x{big.stem.rsplit('_x', 1)[1]}", big, 1))

    rows = []
    for label, path, repeat in cases:
        _warm_page_cache(path)
        bare = run_worker("bare", path, repeat, None)
        twin = run_worker("twin", path, repeat, TILES[0])
        mb = path.stat().st_size / 1e6
        row = {"input": label, "path": str(path), "mb": mb, "repeat": repeat,
               "buildings": twin["buildings"], "features": twin["features"], "triangles": twin["triangles"],
               "problems": twin["problems"], "members": bare["members"],
               "twin_s": twin["seconds"], "twin_cpu_s": twin["cpu_seconds"], "bare_s": bare["seconds"],
               "twin_buildings_per_s": twin["buildings"] / twin["seconds"],
               "twin_mb_per_s": mb / twin["seconds"], "bare_mb_per_s": mb / bare["seconds"],
               "ratio_bare_over_twin": bare["seconds"] / twin["seconds"],
               "twin_rss_peak_mib": twin["rss_peak_mib"], "twin_rss_base_mib": twin["rss_base_mib"],
               "bare_rss_peak_mib": bare["rss_peak_mib"], "bare_rss_base_mib": bare["rss_base_mib"],
               "twin_all_s": twin["all_seconds"], "bare_all_s": bare["all_seconds"]}
        rows.append(row)
        print(f"  {label}: twin {row['twin_s']:.3f} s, bare {row['bare_s']:.3f} s, ratio "
              f"{row['ratio_bare_over_twin']:.2f}", flush=True)

    head = (f"{'input':<32} {'MB':>7} {'bldgs':>7} {'twin s':>8} {'bldg/s':>8} {'MB/s':>6} {'cpu/wall':>8} "
            f"{'bare s':>7} {'MB/s':>6} {'ratio':>6} {'twin RSS peak/base':>19} {'bare RSS peak':>13}")
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['input']:<32} {r['mb']:>7.1f} {r['buildings']:>7} {r['twin_s']:>8.3f} "
              f"{r['twin_buildings_per_s']:>8.0f} {r['twin_mb_per_s']:>6.1f} {r['twin_cpu_s'] / r['twin_s']:>8.2f} "
              f"{r['bare_s']:>7.3f} {r['bare_mb_per_s']:>6.1f} {r['ratio_bare_over_twin']:>6.2f} "
              f"{r['twin_rss_peak_mib']:>10.0f}/{r['twin_rss_base_mib']:<4.0f} MiB "
              f"{r['bare_rss_peak_mib']:>9.0f} MiB")
    print("\nratio = t_bare / t_twin (aim >= 0.5); RSS in MiB, peak = ru_maxrss of a fresh process per run "
          "(aim < 1 GB on the large file)")
    if args.json:
        meta = {"python": sys.version.split()[0], "cpu_count": os.cpu_count(), "size_mb": args.size_mb,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            import lxml.etree as et
            meta["lxml"] = ".".join(map(str, et.LXML_VERSION))
            meta["libxml2"] = ".".join(map(str, et.LIBXML_VERSION))
        except ImportError:
            pass
        args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
