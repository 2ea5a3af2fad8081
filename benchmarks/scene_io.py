"""Scene save/load speed for a city of ~10,000 buildings.

The scene is built by importing the NRW LoD2 tiles (../shared/data) — or, without ../shared, the
bundled Munich sample — and concatenating copies shifted by 1 km until it holds >= 10,000
Building/BuildingPart features. Reported: save and load time (best of 5), and as the reference
measured in the same run, the time to read the same folder's bytes from the page cache
(``Path.read_bytes`` on every file): ``load / raw read`` says how much of the load is decoding.

Run: ``python benchmarks/scene_io.py [--buildings 10000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from twin.citygml import open_citygml
from twin.scene import Scene

REPO = Path(__file__).resolve().parents[1]
NRW = REPO.parent / "shared" / "data" / "citygml" / "nrw-lod2-selfkant"


def build_city(n_buildings: int) -> Scene:
    files = sorted(NRW.glob("*.gml")) if NRW.exists() else sorted((REPO / "data/samples/muenchen-tum/lod2").glob("*.gml"))
    tiles = [open_citygml(f) for f in files]
    per_copy = sum(int(t.features["type"].isin(["Building", "BuildingPart"]).sum()) for t in tiles)
    copies = []
    k = 0
    while len(copies) * per_copy < n_buildings * len(tiles):
        for t in tiles:
            c = Scene.concat([t])
            c = Scene(**{**c.__dict__, "vertices": c.vertices + np.array([1000.0 * k, 0, 0])})
            copies.append(c)
        k += 1
    return Scene.concat(copies)


def best(fn, n=5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=10_000)
    args = ap.parse_args()
    scene = build_city(args.buildings)
    n_b = int(scene.features["type"].isin(["Building", "BuildingPart"]).sum())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "city"
        t_save = best(lambda: scene.save(path, overwrite=True), 3)
        t_load = best(lambda: Scene.load(path))
        size = sum(f.stat().st_size for f in path.iterdir())
        t_raw = best(lambda: [f.read_bytes() for f in path.iterdir()])
        assert Scene.load(path) == scene
    print(f"scene: {n_b} buildings/parts, {len(scene.features)} features, {scene.n_triangles} triangles, "
          f"{size / 1e6:.1f} MB on disk")
    print(f"save {t_save:.3f} s   load {t_load:.3f} s   raw read of the same bytes {t_raw:.4f} s   "
          f"load / raw = {t_load / t_raw:.1f}")


if __name__ == "__main__":
    main()
