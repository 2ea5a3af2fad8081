"""Sky view factor speed on a 1 m DSM: twin's Numba kernel against a plain-NumPy scan in the same run.

A seeded synthetic district (blocks of 30 m with rectangular buildings 6-40 m high, streets between,
a few tall towers and a gentle terrain slope) at 1 m cells. Reported after a warm-up that compiles
the kernel (JIT outside the timing), best of ``--repeat``:

- ``svf``: twin.sim.heat.geometry.sky_view_factor, cosine-weighted, ``--directions`` azimuths,
  ``--radius`` m, on ``--size`` x ``--size`` cells (default 1000 x 1000 = 1 Mpx, 32, 200 m);
- ``numpy``: the plain-NumPy reference (twin.sim.heat._reference: a running maximum over shifted
  copies of the raster, no early ray exit) on a ``--ref-size`` crop, reported per cell x direction
  and extrapolated to the full size (the reference is O(cells x directions x radius), exactly
  linear); both results are compared on the crop;
- scaling: the kernel at 1/4 and 1/2 of the cells and at half the directions, as time per
  (cell x direction), which is flat if the cost is linear in cells x directions;
- ``shadow``: one sun position (elevation 30 deg) on the full DSM;
- ``linear_scaling``: the kernel with ``early_exit=False`` (every ray scanned to the full radius, so
  the cost does not depend on the scene) on the district at ``--scaling-sizes`` x
  ``--scaling-directions`` with ``--scaling-radius``, as ns per (cell x direction x step) and the
  log-log slopes of time against cells and against directions (1.0 = linear), next to the plain-NumPy
  reference (no early exit either) on the smallest size. The radius is short (25 m) so that rays
  leaving the raster (which cost nothing) are a small share at every size. Measured (2 cores, load ~3):
  0.95-1.03 ns per cell x direction x step from 0.25 to 2 Mpx and 16 to 64 directions (log-log slopes
  1.005 in cells, 0.98 in directions); the NumPy reference 2.0 ns.

Context: UMEP/SOLWEIG's CPU SVF of a 1000 x 1000 tile is reported at ~1,200 s (Kamath et al. 2026,
JOSS, SOLWEIG-GPU paper; see ../shared/reference/heat.md). That is not measured here.

Run: ``python benchmarks/heat.py [--size 1000] [--directions 32] [--radius 200] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from twin.sim.heat import _reference as ref
from twin.sim.heat.geometry import sky_view_factor, sunlit_fraction


def district(size: int, seed: int = 0) -> np.ndarray:
    """Absolute heights (m) of a seeded 1 m district of ``size`` x ``size`` cells."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    z = (0.01 * xx + 0.005 * yy).astype(np.float32)  # terrain slope, 10 m per km
    pitch = 30
    for by in range(0, size, pitch):
        for bx in range(0, size, pitch):
            if rng.random() < 0.15:  # park / square
                continue
            w, d = rng.integers(12, 26, 2)
            oy, ox = rng.integers(0, pitch - d + 1), rng.integers(0, pitch - w + 1)
            h = rng.uniform(6, 40) if rng.random() > 0.03 else rng.uniform(60, 100)
            z[by + oy:by + oy + d, bx + ox:bx + ox + w] += h
    return z


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--directions", type=int, default=32)
    ap.add_argument("--radius", type=float, default=200.0)
    ap.add_argument("--ref-size", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scaling-sizes", default="500,707,1000,1414", help="edge lengths (cells) of the scaling study")
    ap.add_argument("--scaling-directions", default="16,32,64")
    ap.add_argument("--scaling-radius", type=float, default=25.0)
    ap.add_argument("--skip-main", action="store_true", help="only the linear-scaling study")
    a = ap.parse_args(argv)
    import numba

    z = district(a.size)
    k, r = a.directions, a.radius
    sky_view_factor(z[:50, :50], cell_m=1.0, directions=k, radius_m=r)  # compile
    sky_view_factor(z[:50, :50], cell_m=1.0, directions=k, radius_m=r, early_exit=False)
    sunlit_fraction(z[:50, :50], cell_m=1.0, sun_azimuth_deg=180, sun_elevation_deg=30)
    lin = linear_scaling(a)
    if a.skip_main:
        print(json.dumps({"linear_scaling": lin}, indent=2))
        return {"linear_scaling": lin}
    t_svf = best(lambda: sky_view_factor(z, cell_m=1.0, directions=k, radius_m=r), a.repeat)

    crop = z[:a.ref_size, :a.ref_size]
    t0 = time.perf_counter()
    want = ref.sky_view_factor_numpy(crop, cell_m=1.0, directions=k, radius_m=r)
    t_np_crop = time.perf_counter() - t0
    got = sky_view_factor(crop, cell_m=1.0, directions=k, radius_m=r)
    max_diff = float(np.nanmax(np.abs(got - want)))
    t_np_full = t_np_crop * (a.size / a.ref_size) ** 2

    scaling = {}
    for label, n, kk in (("1/4 cells", a.size // 2, k), ("1/2 cells", int(a.size / 2 ** 0.5), k),
                         ("all cells", a.size, k), ("half directions", a.size, k // 2)):
        t = t_svf if label == "all cells" else best(
            lambda: sky_view_factor(z[:n, :n], cell_m=1.0, directions=kk, radius_m=r), max(1, a.repeat - 1))
        scaling[label] = {"cells": n * n, "directions": kk, "s": round(t, 3),
                          "ns_per_cell_direction": round(1e9 * t / (n * n * kk), 2)}
    t_shadow = best(lambda: sunlit_fraction(z, cell_m=1.0, sun_azimuth_deg=180, sun_elevation_deg=30), a.repeat)
    res = {
        "dsm": f"{a.size}x{a.size} @ 1 m, synthetic district (seed 0), z max {float(z.max()):.0f} m",
        "directions": k, "radius_m": r, "threads": numba.get_num_threads(), "cpus": os.cpu_count(),
        "svf_s": round(t_svf, 3), "svf_mpx_per_s": round(a.size ** 2 / 1e6 / t_svf, 3),
        "numpy_ref_crop": f"{a.ref_size}x{a.ref_size}", "numpy_crop_s": round(t_np_crop, 3),
        "numpy_full_s_extrapolated": round(t_np_full, 1), "speedup_vs_numpy": round(t_np_full / t_svf, 1),
        "max_abs_diff_vs_numpy": max_diff, "scaling": scaling, "shadow_30deg_s": round(t_shadow, 3),
        "umep_cpu_1000x1000_reported_s": 1187, "linear_scaling": lin,
    }
    print(json.dumps(res, indent=2))
    return res


def linear_scaling(a) -> dict:
    """Time of the full-length scan (no early exit) over cells x directions; see the module docstring."""
    sizes = [int(v) for v in a.scaling_sizes.split(",")]
    dirs = [int(v) for v in a.scaling_directions.split(",")]
    r = a.scaling_radius
    steps = int(np.ceil(r))
    z = district(max(sizes), seed=1)
    rows = []
    for n in sizes:
        for k in dirs:
            t = best(lambda: sky_view_factor(z[:n, :n], cell_m=1.0, directions=k, radius_m=r, early_exit=False),
                     max(1, a.repeat - 1))
            rows.append({"cells": n * n, "directions": k, "s": round(t, 4),
                         "ns_per_cell_direction_step": round(1e9 * t / (n * n * k * steps), 3)})
    t_arr = np.array([row["s"] for row in rows])
    cells = np.array([row["cells"] for row in rows], float)
    kk = np.array([row["directions"] for row in rows], float)
    # log t = c + a log(cells) + b log(directions): a = b = 1 for linear cost
    coef = np.linalg.lstsq(np.column_stack([np.ones(len(rows)), np.log(cells), np.log(kk)]), np.log(t_arr), rcond=None)[0]
    per = np.array([row["ns_per_cell_direction_step"] for row in rows])
    n0 = sizes[0]
    t0 = time.perf_counter()
    ref.sky_view_factor_numpy(z[:n0, :n0], cell_m=1.0, directions=dirs[0], radius_m=r)
    t_np = time.perf_counter() - t0
    return {"radius_m": r, "steps_per_ray": steps, "runs": rows,
            "loglog_slope_cells": round(float(coef[1]), 3), "loglog_slope_directions": round(float(coef[2]), 3),
            "ns_per_cell_direction_step_min_max": [float(per.min()), float(per.max())],
            "numpy_ref": {"cells": n0 * n0, "directions": dirs[0], "s": round(t_np, 3),
                          "ns_per_cell_direction_step": round(1e9 * t_np / (n0 * n0 * dirs[0] * steps), 3)}}


if __name__ == "__main__":
    main()
