"""Tiled screening (twin.sim.heavyrain.tiled_screening) against the untiled screening: cell for cell equal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import TwinIOError, TwinValueError
from twin.sim.heavyrain.screening import fill_depressions, flow_accumulation, flow_directions
from twin.sim.heavyrain.tiled_screening import tiled_screening

from .dask_dems import urban_dem


def _untiled(z, cell):
    d = flow_directions(z, cell_size=cell)
    return fill_depressions(z), d, flow_accumulation(directions=d, cell_size=cell)


@pytest.mark.parametrize("tile,halo", [(23, 4), (64, 32)])
def test_tiled_screening_equals_untiled_on_an_urban_dem(tile, halo):
    z = urban_dem()
    filled, d8, area = _untiled(z, 1.0)
    r = tiled_screening(z, cell_size=1.0, tile=tile, halo_cells=halo)
    assert r.tiles == int(np.ceil(150 / tile) * np.ceil(170 / tile))
    # exact: the same float64 fill, the same D8 code and the same upstream area in every cell
    assert np.array_equal(r.filled, filled, equal_nan=True)
    assert np.array_equal(r.directions, d8)
    assert np.array_equal(r.upstream_area_m2, area, equal_nan=True)
    assert np.array_equal(r.filled_depth, (filled - z).astype(np.float32), equal_nan=True)
    # the flat and the filled depressions crossing tiles made some windows grow beyond the first halo
    assert max(r.halo_cells.values()) > halo
    assert (filled > z).sum() > 100  # depressions exist (the test is not vacuous)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 70), cols=st.integers(1, 70), levels=st.integers(2, 12),
       tile=st.integers(8, 40), halo=st.integers(1, 6), cell=st.sampled_from([1.0, 2.0, 0.5]),
       holes=st.booleans())
def test_tiled_screening_equals_untiled_on_integer_dems(seed, rows, cols, levels, tile, halo, cell, holes):
    # integer elevations: many ties, plateaus and flats across tile edges (the hard case for epsilon fills)
    rng = np.random.default_rng(seed)
    z = rng.integers(0, levels, (rows, cols)).astype(np.float64)
    if holes:
        z[rng.random((rows, cols)) < 0.05] = np.nan
    filled, d8, area = _untiled(z, cell)
    r = tiled_screening(z, cell_size=cell, tile=tile, halo_cells=halo)
    assert np.array_equal(r.filled, filled, equal_nan=True)
    assert np.array_equal(r.directions, d8)
    assert np.array_equal(r.upstream_area_m2, area, equal_nan=True)


def test_tiled_screening_writes_zarr_and_refuses_to_overwrite(tmp_path):
    import zarr

    z = urban_dem(70, 90, seed=3)
    filled, d8, area = _untiled(z, 2.0)
    store = tmp_path / "s.zarr"
    r = tiled_screening(z, cell_size=2.0, tile=32, store=store)
    g = zarr.open_group(str(store), mode="r")
    assert g["d8"].chunks == (32, 32) and g.attrs["cell_size_m"] == 2.0
    assert np.array_equal(g["d8"][:], d8)
    assert np.array_equal(g["flow_accumulation"][:], area, equal_nan=True)
    assert np.array_equal(r.filled[:], filled, equal_nan=True)
    with pytest.raises(TwinIOError, match="overwrite"):
        tiled_screening(z, cell_size=2.0, tile=32, store=store)
    tiled_screening(z, cell_size=2.0, tile=48, store=store, overwrite=True)
    assert zarr.open_group(str(store), mode="r")["d8"].chunks == (48, 48)


def test_tiled_screening_reads_a_geotiff_mosaic(tmp_path):
    from affine import Affine

    from twin.terrain.windows import open_mosaic, write_tiled_geotiff

    z = urban_dem(96, 80, seed=5)
    t = Affine(1.0, 0, 400000, 0, -1.0, 5700000)
    paths = []
    for i, r0 in enumerate((0, 48)):
        paths.append(write_tiled_geotiff(tmp_path / f"dgm_{i}.tif", shape=(48, 80), transform=t * Affine.translation(0, r0),
                                         crs="EPSG:25832", chunk=16, block=lambda a, b, c, d, r0=r0: z[r0 + a:r0 + b, c:d]))
    r = tiled_screening(open_mosaic(paths), cell_size=1.0, tile=24)
    filled, d8, area = _untiled(z, 1.0)
    assert np.array_equal(r.directions, d8) and np.array_equal(r.filled, filled, equal_nan=True)


def test_levels_closer_than_the_epsilon_steps_are_refused():
    # a plateau at 10 m beside a cell one float64 step higher: the untiled epsilon fill climbs over that step,
    # which no tiling can reproduce from local windows; the tiled run says so instead of differing
    z = np.full((20, 20), 10.0)
    z[10, 10] = np.nextafter(10.0, 11.0)
    with pytest.raises(TwinValueError, match="float64 steps apart"):
        tiled_screening(z, cell_size=1.0, tile=8)


@pytest.mark.parametrize("kwargs,match", [({"tile": 4}, "tile"), ({"halo_cells": 0}, "halo"),
                                          ({"cell_size": 0.0}, "cell_size")])
def test_bad_options_are_refused(kwargs, match):
    opts = {"cell_size": 1.0} | kwargs
    with pytest.raises(TwinValueError, match=match):
        tiled_screening(np.zeros((10, 10)), **opts)
    with pytest.raises(TwinValueError, match="2-D"):
        tiled_screening(np.zeros(10), cell_size=1.0)


def test_tiles_outside_the_domain_and_an_all_nan_dem():
    rng = np.random.default_rng(3)
    z = rng.integers(0, 6, (60, 60)).astype(np.float64)
    z[10:40, 10:40] = np.nan  # whole tiles of 10 x 10 outside the domain, and lakes of NaN touching the border
    z[0:20, 45:60] = np.nan
    filled, d8, area = _untiled(z, 1.0)
    r = tiled_screening(z, cell_size=1.0, tile=10)
    assert np.array_equal(r.filled, filled, equal_nan=True) and np.array_equal(r.directions, d8)
    assert np.array_equal(r.upstream_area_m2, area, equal_nan=True)
    empty = tiled_screening(np.full((30, 30), np.nan), cell_size=1.0, tile=10)
    assert np.isnan(empty.filled).all() and (empty.directions == -3).all() and np.isnan(empty.upstream_area_m2).all()
