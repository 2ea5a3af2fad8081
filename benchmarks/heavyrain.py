"""Heavy-rain kernel throughput: cell-steps per second next to a memory-bandwidth reference.

Cases (warm: compiled and run once before timing):
- EA Test 4 at 2 m (500 k cells, flat floodplain, point inflow): run 3600 s, then time the next N steps;
- a synthetic urban DEM >= 4 M cells (2048 x 2048, seeded): gentle slope, 10-30 m building blocks raised 10 m,
  streets, 40 mm/h rain, 1 m cells.
Reference: ``copy_stencil`` (dst = mean of 4 neighbours of src) over arrays of the same shape, measured in
the same run: 8 bytes per cell (one float32 read, one write) -> GB/s of this machine.

Bytes per cell-step of the model (float32 arrays, uniform Manning's n): momentum sweep reads h, z, qx, qy,
scale (20 B) and writes qx, qy, scale (12 B); continuity sweep reads h, z, qx, qy, scale (20 B), writes h
(4 B) and reads the max-depth statistic (4 B): 60 B minimum; wet cells add up to ~24 B of statistics.

Run: ``.venv/bin/python benchmarks/heavyrain.py [--threads N] [--steps N] [--cells-side N]``.
LISFLOOD-FP 8.1 CPU ACC on this 2-core machine class: ~21 M cell-steps/s on EA Test 4 (flood.md §4).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

MODEL_BYTES_PER_CELL_STEP = 60


def _copy_bandwidth(shape, repeats: int = 20) -> tuple[float, float]:
    from twin.sim.heavyrain._kernels import copy_stencil

    src = np.random.default_rng(0).random(shape, dtype=np.float32)
    dst = np.zeros_like(src)
    copy_stencil(src, dst)
    t0 = time.perf_counter()
    for _ in range(repeats):
        copy_stencil(src, dst)
        copy_stencil(dst, src)
    wall = time.perf_counter() - t0
    cells_per_s = 2 * repeats * src.size / wall
    return cells_per_s, cells_per_s * 8 / 1e9


def _time_model(model, steps: int) -> float:
    dt = model.stable_dt()
    model.run_one_step(dt)  # warm
    t0 = time.perf_counter()
    c0 = model.cell_steps
    for _ in range(steps):
        model._step(model.stable_dt())
    wall = time.perf_counter() - t0
    return (model.cell_steps - c0) / wall


def ea4(dx: float = 2.0):
    from twin.sim.heavyrain import HeavyRainModel, PointInflow

    ny, nx = int(2000 / dx), int(1000 / dx)
    ys = [y for y in (np.arange(ny) + 0.5) * dx if 990 < y < 1010]
    q = np.array([0.0, 0.0, 20.0, 20.0, 0.0]) / len(ys)
    m = HeavyRainModel(np.zeros((ny, nx)), cell_size=dx, manning_n=0.05,
                       inflows=[PointInflow(dx / 2, y, [0, 300, 3600, 14400, 18000], q) for y in ys],
                       boundary={"north": "open", "south": "open", "east": "open", "west": "closed"})
    return m


def urban(side: int = 2048, seed: int = 0):
    from twin.sim.heavyrain import HeavyRainModel, uniform_rain

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    z = 0.002 * x + 0.001 * y + rng.normal(0, 0.02, (side, side))
    blocks = np.zeros((side, side), bool)
    for _ in range(side * side // 900):
        r, c = rng.integers(0, side - 30, 2)
        h, w = rng.integers(10, 30, 2)
        blocks[r:r + h, c:c + w] = True
    blocks[::60, :] = False  # streets
    blocks[:, ::60] = False
    z = z + 10.0 * blocks
    return HeavyRainModel(z, cell_size=1.0, manning_n=0.03, rain=uniform_rain(40.0, 3600.0), boundary="open",
                          initial_depth=0.02)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--cells-side", type=int, default=2048)
    args = ap.parse_args()
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    print(f"threads {numba.get_num_threads()}; model moves >= {MODEL_BYTES_PER_CELL_STEP} B per cell-step")
    m = ea4(2.0)
    m.run(3600.0)  # let the flood spread so most of the timed work is on wet cells
    rate = _time_model(m, args.steps)
    ref, gbs = _copy_bandwidth(m.shape)
    print(f"EA Test 4 2 m {m.shape[1]}x{m.shape[0]}: {rate / 1e6:7.1f} M cell-steps/s "
          f"(~{rate * MODEL_BYTES_PER_CELL_STEP / 1e9:.1f} GB/s); copy stencil {ref / 1e6:7.1f} M cells/s = {gbs:.1f} GB/s; "
          f"ratio {rate / ref:.3f}; LISFLOOD-FP 8.1 ~21 M")
    u = urban(args.cells_side)
    u.run(60.0)
    rate = _time_model(u, max(args.steps // 4, 20))
    ref, gbs = _copy_bandwidth(u.shape)
    print(f"urban {u.shape[1]}x{u.shape[0]} ({u.h.size / 1e6:.1f} M cells): {rate / 1e6:7.1f} M cell-steps/s "
          f"(~{rate * MODEL_BYTES_PER_CELL_STEP / 1e9:.1f} GB/s); copy stencil {ref / 1e6:7.1f} M cells/s = {gbs:.1f} GB/s; "
          f"ratio {rate / ref:.3f}")


if __name__ == "__main__":
    main()
