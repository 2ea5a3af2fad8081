"""3D Tiles writer benchmark: buildings/s and bytes per building, quantised and float32, peak RSS.

Inputs: the two real NRW LoD2 tiles (../shared/data, skipped where absent; timed both as tiling of
the imported scene and as import + tiling, i.e. including triangulation) and a generated city of
10,000 box-and-gable buildings (seeded). Reference in the same run: pg2b3dm's published
throughput (3D BAG, 9,712,728 features in 1 h 54 min 23 s = 1,415 buildings/s, including its
triangulation; github.com/Geodan/pg2b3dm README) and our own float32 output for the size ratio.

    .venv/bin/python benchmarks/tiles.py [--n 10000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PG2B3DM_BUILDINGS_PER_S = 9_712_728 / (1 * 3600 + 54 * 60 + 23)


def generated_city(n: int, seed: int = 0):
    """``n`` LoD2 buildings (box walls + gable roof, 10 faces, 16 triangles) on a jittered grid."""
    import pandas as pd

    from twin.crs import SceneCRS
    from twin.scene import SURFACE_TYPES, Scene, typed_table

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x0 = 691000.0 + (i % side) * 30 + rng.uniform(0, 5, n)
    y0 = 5336000.0 + (i // side) * 30 + rng.uniform(0, 5, n)
    w, d = rng.uniform(8, 16, n), rng.uniform(8, 14, n)
    z0 = 515.0 + rng.uniform(0, 3, n)
    h, ridge = rng.uniform(6, 20, n), rng.uniform(2, 5, n)
    x1, y1, zt = x0 + w, y0 + d, z0 + h
    ym, zr = (y0 + y1) / 2, zt + ridge
    P = lambda *c: np.stack(c, axis=-1)  # noqa: E731  (n, 3) points
    F = lambda *p: np.stack(p, axis=1)  # noqa: E731  (n, k, 3) faces
    faces = [  # (points (n, k, 3), surface type)
        (F(P(x0, y0, z0), P(x0, y1, z0), P(x1, y1, z0), P(x1, y0, z0)), "GroundSurface"),
        (F(P(x0, y0, z0), P(x1, y0, z0), P(x1, y0, zt), P(x0, y0, zt)), "WallSurface"),
        (F(P(x1, y1, z0), P(x0, y1, z0), P(x0, y1, zt), P(x1, y1, zt)), "WallSurface"),
        (F(P(x1, y0, z0), P(x1, y1, z0), P(x1, y1, zt), P(x1, ym, zr), P(x1, y0, zt)), "WallSurface"),
        (F(P(x0, y1, z0), P(x0, y0, z0), P(x0, y0, zt), P(x0, ym, zr), P(x0, y1, zt)), "WallSurface"),
        (F(P(x0, y0, zt), P(x1, y0, zt), P(x1, ym, zr), P(x0, ym, zr)), "RoofSurface"),
        (F(P(x1, y1, zt), P(x0, y1, zt), P(x0, ym, zr), P(x1, ym, zr)), "RoofSurface"),
    ]
    verts, tris, feat, st = [], [], [], []
    base = 0
    for pts, kind in faces:
        k = pts.shape[1]
        verts.append(pts.reshape(-1, 3))
        fan = np.array([[0, j, j + 1] for j in range(1, k - 1)])
        offs = base + np.arange(n)[:, None, None] * k
        tris.append((fan[None] + offs).reshape(-1, 3))
        feat.append(np.repeat(i, k - 2))
        st.append(np.full(n * (k - 2), SURFACE_TYPES.index(kind)))
        base += n * k
    # faces were appended per kind: order triangles by building for realism (not required)
    feats = typed_table("features", {"gml_id": [f"GEN_{j:06d}" for j in i], "type": ["Building"] * n,
                                     "parent": [-1] * n, "root": list(i), "layer": ["buildings"] * n,
                                     "lod": [2] * n, "source": ["generated"] * n, "line": [0] * n})
    attrs = pd.DataFrame({"function": pd.array(["31001_1000"] * n, dtype="string"),
                          "measuredHeight": h + ridge,
                          "storeysAboveGround": pd.array((h // 3).astype(int), dtype="Int64"),
                          "address": pd.array([f"Musterstraße {j}, München" for j in i], dtype="string")})
    attrs.index = pd.RangeIndex(n, name="feature_id")
    v = np.vstack(verts)
    return Scene(crs=SceneCRS("EPSG:25832", "EPSG:7837"), origin=np.round([v[:, 0].mean(), v[:, 1].mean(), v[:, 2].min()]),
                 vertices=v, triangles=np.vstack(tris), triangle_feature=np.concatenate(feat),
                 triangle_surface_type=np.concatenate(st), features=feats, attributes=attrs,
                 attribute_types={"function": {"type": "string"}, "measuredHeight": {"type": "measure", "uom": "m"},
                                  "storeysAboveGround": {"type": "int"}, "address": {"type": "string"}})


def tile(scene, out: Path, quantize: bool) -> tuple[float, int]:
    from twin.tiles import write_tiles

    scene.terrain = None  # buildings only
    t = time.perf_counter()
    rep = write_tiles(scene, out, quantize=quantize, overwrite=True)
    return time.perf_counter() - t, rep.buildings.content_bytes + rep.buildings.tileset_bytes


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args(argv)
    from twin.citygml import read_citygml
    from twin.tiles.frame import local_frame

    local_frame("EPSG:25832+7837", [691000, 5336000, 500])   # warm: PROJ transformer group (~0.3 s, once)
    read_citygml([REPO / "tests" / "data" / "citygml" / "fzk_haus_lod2_v2.gml"])   # warm: reader kernels (JIT cache)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nrw = REPO.parent / "shared" / "data" / "citygml" / "nrw-lod2-selfkant"
        if nrw.is_dir():
            files = sorted(nrw.glob("*.gml"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                scene = read_citygml(files)
                t_import = time.perf_counter() - t
            nb = int((scene.features["parent"] < 0).sum())
            tq, bq = tile(scene, tmp / "nrw-q", True)
            tf, bf = tile(scene, tmp / "nrw-f", False)
            rows.append(("NRW LoD2 (2 tiles)", nb, t_import, tq, bq, bf))
        else:
            print(f"(NRW tiles absent at {nrw}: skipped)")
        t = time.perf_counter()
        city = generated_city(args.n)
        t_gen = time.perf_counter() - t
        tq, bq = tile(city, tmp / "gen-q", True)
        tf, bf = tile(city, tmp / "gen-f", False)
        rows.append((f"generated {args.n} buildings", args.n, None, tq, bq, bf))
        del t_gen
    print(f"reference: pg2b3dm published {PG2B3DM_BUILDINGS_PER_S:,.0f} buildings/s (3D BAG, incl. triangulation)")
    print(f"{'input':28s} {'bldgs':>6s} {'tile b/s':>10s} {'x pg2b3dm':>9s} {'import+tile b/s':>15s} "
          f"{'B/bldg q':>9s} {'B/bldg f32':>10s} {'q/f32':>6s}")
    for name, nb, t_imp, tq, bq, bf in rows:
        bps = nb / tq
        both = f"{nb / (t_imp + tq):15,.0f}" if t_imp is not None else f"{'-':>15s}"
        print(f"{name:28s} {nb:6d} {bps:10,.0f} {bps / PG2B3DM_BUILDINGS_PER_S:9.1f} {both} {bq / nb:9,.0f} "
              f"{bf / nb:10,.0f} {bq / bf:6.2f}")
    print(f"peak RSS {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
