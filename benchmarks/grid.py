"""Burn-in speed of ``Scene.to_grid`` per km2 at 1 m and 0.5 m, against rasterio in the same run.

A seeded synthetic district of 1 km x 1 km holds rotated rectangular LoD2-like prism buildings
(ground, roof, walls; ~35 % of the area built up) on a flat 1 m terrain. Reported, best of
``--repeat`` runs after a warm-up that compiles the Numba kernels:

- ``footprints``: twin's footprint burn (building id of every cell whose centre lies in a
  footprint) from the GroundSurface triangles;
- ``rasterio``: ``rasterio.features.rasterize`` of the same footprints as shapely polygons
  (the reference, same rule: cell centre inside, ``all_touched=False``);
- ``to_grid``: the whole ``Scene.to_grid`` (terrain, ids, roof z-buffer, land cover, 12 fields).

The two id rasters are compared cell by cell (cells that differ are centres lying exactly on an
edge, where the tie rules differ). Run: ``python benchmarks/grid.py [--km 1] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio import features

from twin.crs import SceneCRS
from twin.grid import TerrainRaster, _triangles_uv, building_footprints, scene_to_grid
from twin.scene import Scene, surface_type_code, typed_table


def district(km: float, seed: int = 0) -> tuple[Scene, list]:
    rng = np.random.default_rng(seed)
    side = 1000.0 * km
    pitch = 20.0  # one building per 20 m x 20 m block
    n_side = int(side // pitch)
    cx, cy = np.meshgrid((np.arange(n_side) + 0.5) * pitch, (np.arange(n_side) + 0.5) * pitch)
    cx, cy = cx.ravel() + rng.uniform(-2, 2, cx.size), cy.ravel() + rng.uniform(-2, 2, cy.size)
    n = cx.size
    w, d = rng.uniform(8, 14, n), rng.uniform(8, 14, n)
    ang = rng.uniform(0, np.pi / 2, n)
    h = rng.uniform(6, 30, n)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) / 2
    ca, sa = np.cos(ang)[:, None], np.sin(ang)[:, None]
    px = cx[:, None] + corners[:, 0] * w[:, None] * ca - corners[:, 1] * d[:, None] * sa
    py = cy[:, None] + corners[:, 0] * w[:, None] * sa + corners[:, 1] * d[:, None] * ca
    z0 = 500.0
    verts = np.zeros((n, 8, 3))
    verts[:, :4, 0], verts[:, :4, 1], verts[:, :4, 2] = px, py, z0
    verts[:, 4:, 0], verts[:, 4:, 1], verts[:, 4:, 2] = px, py, (z0 + h)[:, None]
    local = np.array([[0, 2, 1], [0, 3, 2],  # ground, facing down
                      [4, 5, 6], [4, 6, 7],  # roof
                      [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
    tris = (local[None] + 8 * np.arange(n)[:, None, None]).reshape(-1, 3)
    g, r, wl = (surface_type_code(s) for s in ("GroundSurface", "RoofSurface", "WallSurface"))
    ttype = np.tile(np.array([g, g, r, r] + [wl] * 8, np.uint8), n)
    feats = typed_table("features", {"gml_id": [f"b{i}" for i in range(n)], "type": ["Building"] * n,
                                     "parent": [-1] * n, "root": list(range(n)), "layer": ["buildings"] * n,
                                     "lod": [2] * n, "source": ["synthetic"] * n, "line": [0] * n})
    attrs = pd.DataFrame(index=feats.index)
    terrain = TerrainRaster(np.full((int(side), int(side)), z0, np.float32), Affine(1, 0, 0, 0, -1, side),
                            SceneCRS("EPSG:25832"))
    scene = Scene(crs=SceneCRS("EPSG:25832"), vertices=verts.reshape(-1, 3), triangles=tris,
                  triangle_feature=np.repeat(np.arange(n, dtype=np.int32), 12), triangle_surface_type=ttype,
                  features=feats, attributes=attrs, terrain=terrain)
    polys = [(shapely.Polygon(np.c_[px[i], py[i]]), i) for i in range(n)]
    return scene, polys


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--km", type=float, default=1.0, help="side of the square district in km")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from twin._grid_kernels import burn_triangles

    scene, polys = district(args.km)
    area_km2 = args.km ** 2
    print(f"district {args.km:g} km x {args.km:g} km, {len(polys)} buildings, {scene.n_triangles} triangles, "
          f"built-up {sum(p.area for p, _ in polys) / (area_km2 * 1e6):.0%}")
    scene_to_grid(scene, 4.0)  # warm-up: compile the kernels outside the timings
    print(f"{'res':>5} {'cells':>10} {'footprints s':>13} {'rasterio s':>11} {'ratio':>6} {'to_grid s':>10} "
          f"{'to_grid s/km2':>14} {'differ':>7}")
    for res in (1.0, 0.5):
        side = int(round(1000 * args.km / res))
        transform = Affine(res, 0, 0, 0, -res, 1000.0 * args.km)
        shape = (side, side)

        def twin_footprints():
            idx, bid = building_footprints(scene)
            uv, z = _triangles_uv(scene, idx, transform)
            out = np.full(shape, -1, np.int32)
            burn_triangles(uv, z, bid, False, out, np.empty((1, 1)))
            return out

        def rio():
            return features.rasterize(polys, out_shape=shape, transform=transform, fill=-1, dtype="int32",
                                      all_touched=False)

        t_twin, a = best(twin_footprints, args.repeat)
        t_rio, b = best(rio, args.repeat)
        t_grid, g = best(lambda: scene_to_grid(scene, res), args.repeat)
        differ = int((a != b).sum())
        print(f"{res:>5g} {side * side:>10d} {t_twin:>13.3f} {t_rio:>11.3f} {t_rio / t_twin:>5.1f}x "
              f"{t_grid:>10.3f} {t_grid / area_km2:>14.3f} {differ:>7d}")
    print("ratio = rasterio time / twin footprint time (higher is faster than rasterio)")


if __name__ == "__main__":
    main()
