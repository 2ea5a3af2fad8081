"""Out-of-core terrain (twin.terrain.windows): GeoTIFF tiles as one virtual mosaic read in windows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from affine import Affine

from twin.errors import CRSError, TwinIOError, TwinValueError
from twin.terrain.windows import open_mosaic, write_tiled_geotiff

T = Affine(1.0, 0, 500000, 0, -1.0, 5400000)


def _tiles(tmp_path, full, parts, *, crs="EPSG:25832"):
    paths = []
    for i, (r0, r1, c0, c1) in enumerate(parts):
        paths.append(write_tiled_geotiff(tmp_path / f"t{i}.tif", shape=(r1 - r0, c1 - c0), crs=crs, chunk=64,
                                         transform=T * Affine.translation(c0, r0),
                                         block=lambda a, b, c, d, r0=r0, c0=c0: full[r0 + a:r0 + b, c0 + c:c0 + d]))
    return paths


def test_mosaic_reads_windows_across_tiles_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    full = rng.normal(100, 5, (300, 260)).astype(np.float32)
    full[10:20, 30:40] = np.nan
    # four tiles in a 2 x 2 layout, listed out of order; a gap (no file) stays NaN
    paths = _tiles(tmp_path, full, [(150, 300, 130, 260), (0, 150, 0, 130), (0, 150, 130, 260), (150, 300, 0, 130)])
    m = open_mosaic(paths)
    assert m.shape == (300, 260) and m.transform == T and m.cell_size == 1.0
    assert np.array_equal(m[:, :], full, equal_nan=True)
    assert np.array_equal(m[140:170, 120:140], full[140:170, 120:140], equal_nan=True)
    m2 = pickle.loads(pickle.dumps(m))  # Dask ships it to workers
    assert np.array_equal(np.asarray(m2.to_dask(chunks=100)), full, equal_nan=True)
    with rasterio.open(paths[0]) as src:  # written tiled and compressed, never whole
        assert src.profile["tiled"] and src.block_shapes[0] == (64, 64) and src.compression is not None
    gap = open_mosaic(paths[:3])
    assert np.isnan(gap[150:300, 0:130]).all() and gap.shape == (300, 260)


def test_mosaic_refuses_grids_it_cannot_join(tmp_path):
    full = np.zeros((40, 40), np.float32)
    [a] = _tiles(tmp_path, full, [(0, 20, 0, 20)])
    off = tmp_path / "off.tif"
    write_tiled_geotiff(off, shape=(20, 20), crs="EPSG:25832", transform=T * Affine.translation(20.5, 0),
                        block=lambda a, b, c, d: full[a:b, c:d], chunk=16)
    with pytest.raises(TwinValueError, match="off the grid"):
        open_mosaic([a, off])
    other = tmp_path / "other.tif"
    write_tiled_geotiff(other, shape=(20, 20), crs="EPSG:25833", transform=T * Affine.translation(20, 0),
                        block=lambda a, b, c, d: full[a:b, c:d], chunk=16)
    with pytest.raises(CRSError, match="one CRS"):
        open_mosaic([a, other])
    with pytest.raises(TwinIOError, match="cannot open"):
        open_mosaic([tmp_path / "missing.tif"])
    with pytest.raises(TwinIOError, match="overwrite"):
        write_tiled_geotiff(a, shape=(20, 20), crs="EPSG:25832", transform=T, block=lambda *w: full[:20, :20])
    with pytest.raises(TwinValueError, match="two slices"):
        open_mosaic([a])[3]
