"""Canonical small rasters of the Dask tests (tiled screening, tiled heat, catchments), defined once."""

from __future__ import annotations

import numpy as np
from affine import Affine


def urban_dem(rows: int = 150, cols: int = 170, *, seed: int = 0) -> np.ndarray:
    """Rolling terrain (cm-rounded, float32 values) with flat-roofed buildings (raised blocks, the screening
    surface), a 20 x 30 flat at 49 m (a filled lake bed), a NaN hole and many depressions that cross tiles."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    z = 50 + 0.02 * x + 0.01 * y + 2 * np.sin(x / 9.0) * np.cos(y / 7.0) + rng.normal(0, 0.3, (rows, cols))
    z = np.round(z, 2)
    for _ in range(12):
        r, c = rng.integers(0, rows - 8), rng.integers(0, cols - 8)
        z[r:r + rng.integers(3, 8), c:c + rng.integers(3, 8)] = np.round(z[r, c] + 8, 2)
    z[40:60, 40:70] = 49.0
    z[rows // 2:rows // 2 + 3, 5:9] = np.nan
    return z.astype(np.float32).astype(np.float64)


def city_dsm(rows: int = 130, cols: int = 150, *, seed: int = 1) -> np.ndarray:
    """A DSM (float32): gently noisy ground at 30 m with 25 box buildings 5-25 m tall and a NaN patch."""
    rng = np.random.default_rng(seed)
    z = (rng.normal(0, 0.2, (rows, cols)) + 30).astype(np.float32)
    for _ in range(25):
        r, c = rng.integers(0, rows - 10, 2)
        z[r:r + 8, c:c + 6] += np.float32(rng.uniform(5, 25))
    z[3:6, 7:9] = np.nan
    return z


def valleys(rows: int = 60, cols: int = 90, *, cell: float = 2.0) -> tuple[np.ndarray, Affine]:
    """Three valleys running north to south between ridges 1.5 m high (divides every 30 cells), sloping 2.5 %
    to the south edge (float32 values), with its transform; water leaves at an open south edge."""
    y, x = np.mgrid[0:rows, 0:cols]
    z = 10 + 0.05 * (rows - y) * cell / 2 + 1.5 * np.abs(np.sin(np.pi * x / 30.0)) + 0.002 * ((x * 7 + y * 13) % 5)
    return z.astype(np.float32).astype(np.float64), Affine(cell, 0, 0, 0, -cell, rows * cell)


def walled_basin(rows: int = 60, cols: int = 90, *, cell: float = 2.0) -> tuple[np.ndarray, Affine]:
    """:func:`valleys` with a walled basin (floor 12 m) across the middle divide whose south wall (12.05 m) is
    lower than the rest (14 m): a long storm fills it and it spills over that wall."""
    z, t = valleys(rows, cols, cell=cell)
    box = (slice(20, 40), slice(35, 56))
    z[box] = np.minimum(z[box], 12.0)
    z[20:40, 35] = 14
    z[20:40, 55] = 14
    z[20, 35:56] = 14
    z[39, 35:56] = 12.05
    return z.astype(np.float32).astype(np.float64), t
