"""Heavy-rain screening speed: fill + flow accumulation + sinks on 4 M and 16 M cells, against pysheds
measured in the same run, and the whole screening of a 1 km2 tile at 1 m.

Seeded synthetic terrain: smooth hills (sum of random sinusoids, ~20 m relief) plus 2 cm noise, so
there are many small sinks and a few large ones, as on a real DGM1 tile. Reported, best of
``--repeat`` runs after a warm-up on a small DEM that compiles the Numba kernels:

- ``fill``: twin Priority-Flood vs pysheds ``fill_depressions`` (skimage morphological
  reconstruction), outputs compared cell by cell;
- ``fill+acc``: twin Priority-Flood+epsilon, D8, accumulation vs pysheds ``fill_depressions`` +
  ``resolve_flats`` + ``flowdir`` + ``accumulation`` (pysheds needs resolve_flats to route flats;
  the epsilon fill does that for us);
- ``sinks``: twin depression hierarchy (every sink with volume, spill, outlet; no pysheds
  counterpart);
- ``screen 1 km2``: :func:`twin.sim.heavyrain.screening.screen` on a 1000 x 1000 grid at 1 m with
  ~2 500 buildings as obstacles, Fill-Spill-Merge for 30 mm, flow paths and exposure (no file
  writing).

pysheds 0.5 calls ``np.in1d`` (removed in numpy 2.4); the run aliases it to ``np.isin``.
Run: ``python benchmarks/screening.py [--sizes 2000 4000] [--repeat 2] [--no-pysheds]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from twin.sim.heavyrain import screening as S


def terrain(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    z = np.zeros((n, n), np.float32)
    for _ in range(12):
        kx, ky = rng.uniform(1, 8, 2)
        ph = rng.uniform(0, 2 * np.pi)
        z += np.float32(rng.uniform(0.5, 2.5)) * np.sin(2 * np.pi * (kx * x + ky * y) + ph).astype(np.float32)
    z += np.float32(0.02) * rng.standard_normal((n, n)).astype(np.float32)
    return (z + 300.0).astype(np.float32)


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def twin_fill_acc(z):
    e = S.fill_depressions(z, epsilon=True)
    d = S.flow_directions(e, condition=False)
    return S.flow_accumulation(directions=d)


def pysheds_funcs(z):
    if not hasattr(np, "in1d"):
        np.in1d = np.isin
    from affine import Affine
    from pysheds.grid import Grid
    from pysheds.sview import Raster, ViewFinder

    vf = ViewFinder(affine=Affine(1, 0, 0, 0, -1, z.shape[0]), shape=z.shape, nodata=-9999.0)
    grid = Grid(viewfinder=vf)
    r = Raster(z.astype(np.float64), viewfinder=vf)

    def fill():
        return grid.fill_depressions(r)

    def fill_acc():
        f = grid.resolve_flats(grid.fill_depressions(r))
        return grid.accumulation(grid.flowdir(f))
    return fill, fill_acc


def town(n: int = 1000, seed: int = 1):
    from affine import Affine

    from twin.grid import Grid

    rng = np.random.default_rng(seed)
    z = terrain(n, seed)
    bid = np.full((n, n), -1, np.int32)
    k = 0
    for r0 in range(5, n - 20, 20):
        for c0 in range(5, n - 20, 20):
            h, w = rng.integers(8, 15, 2)
            bid[r0:r0 + h, c0:c0 + w] = k
            k += 1
    hgt = np.where(bid >= 0, 12.0, 0.0).astype(np.float32)
    return Grid(Affine(1, 0, 0, 0, -1, n), "EPSG:25832", (n, n),
                {"terrain_elevation": z, "building_id": bid, "building_height": hgt}), k


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000], help="DEM side in cells")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-pysheds", action="store_true")
    args = ap.parse_args(argv)

    warm = terrain(64)
    twin_fill_acc(warm)
    S.depression_hierarchy(warm).fill_spill_merge(10.0)
    g, _ = town(100)
    S.screen(g, rain_mm=30.0)
    if not args.no_pysheds:
        for f in pysheds_funcs(warm):
            f()

    print(f"{'cells':>10} {'step':<10} {'twin s':>8} {'pysheds s':>10} {'ratio':>7}  note")
    for n in args.sizes:
        z = terrain(n)
        cells = f"{n * n / 1e6:.0f} M"
        t_fill, f_twin = best(lambda: S.fill_depressions(z), args.repeat)
        t_acc, a_twin = best(lambda: twin_fill_acc(z), args.repeat)
        t_dh, dh = best(lambda: S.depression_hierarchy(z), args.repeat)
        note_dh = f"{dh.n_nodes - 1} sinks, {int((dh.parent[1:] < 0).sum())} top level"
        if args.no_pysheds:
            print(f"{cells:>10} {'fill':<10} {t_fill:8.2f}")
            print(f"{cells:>10} {'fill+acc':<10} {t_acc:8.2f}")
        else:
            p_fill, p_fill_acc = pysheds_funcs(z)
            tp_fill, f_ps = best(p_fill, args.repeat)
            same = np.array_equal(np.asarray(f_ps), f_twin.astype(np.float64))
            print(f"{cells:>10} {'fill':<10} {t_fill:8.2f} {tp_fill:10.2f} {tp_fill / t_fill:6.1f}x  "
                  f"{'identical' if same else 'DIFFERENT'} filled DEM")
            tp_acc, a_ps = best(p_fill_acc, args.repeat)
            print(f"{cells:>10} {'fill+acc':<10} {t_acc:8.2f} {tp_acc:10.2f} {tp_acc / t_acc:6.1f}x  "
                  f"max upstream cells twin {np.nanmax(a_twin):.0f}, pysheds {np.nanmax(np.asarray(a_ps)):.0f}")
        print(f"{cells:>10} {'sinks':<10} {t_dh:8.2f} {'-':>10} {'':>7}  {note_dh}")
        tot = t_acc + t_dh
        print(f"{cells:>10} {'total':<10} {tot:8.2f}" + ("" if args.no_pysheds else
              f" {tp_acc:10.2f} {tp_acc / tot:6.1f}x  twin fill+acc+sinks vs pysheds fill+flats+dir+acc"))
        del z, f_twin, a_twin, dh
    grid, nb = town(1000)
    t_scr, res = best(lambda: S.screen(grid, rain_mm=30.0), args.repeat)
    stages = ", ".join(f"{k} {v:.2f}" for k, v in res.timings_s.items())
    print(f"screen 1 km2 @ 1 m ({nb} buildings, 30 mm FSM): {t_scr:.2f} s  [{stages}]  "
          f"volume error {res.ponding.volume_error:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
