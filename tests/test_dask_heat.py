"""Tiled SVF and sun shadow (twin.sim.heat.tiled) against the untiled kernels."""

from __future__ import annotations

import numpy as np
import pytest

from twin.cluster import compute
from twin.errors import TwinValueError
from twin.sim.heat.geometry import sky_view_factor, sunlit_fraction
from twin.sim.heat.tiled import svf_halo_cells, tiled_sky_view_factor, tiled_sunlit_fraction

from .dask_dems import city_dsm


@pytest.mark.parametrize("tile", [40, 64])
def test_tiled_svf_equals_untiled_within_1e_5(tile):
    z = city_dsm()
    ref = sky_view_factor(z, cell_m=1.0, directions=16, radius_m=20.0)
    [svf] = compute(tiled_sky_view_factor(z, cell_m=1.0, directions=16, radius_m=20.0, tile=tile))
    assert svf.dtype == np.float32 and svf.shape == z.shape
    assert np.array_equal(np.isnan(svf), np.isnan(ref))
    assert np.nanmax(np.abs(svf - ref)) <= 1e-5  # issue 11: tiled SVF within 1e-5 of the untiled run
    assert np.nanmin(ref) < 0.6  # street canyons exist: the halo matters


def test_tiled_svf_with_a_halo_too_small_would_differ():
    # the check above is not vacuous: cutting the rays at the tile edge (radius 20 m, halo 5 cells) changes the SVF
    import dask.array as da

    from twin.sim.heat.tiled import _svf_block

    z = city_dsm()
    ref = sky_view_factor(z, cell_m=1.0, directions=16, radius_m=20.0)
    short = da.map_overlap(_svf_block, da.from_array(z, chunks=40), depth=5, boundary="none", dtype=np.float32,
                           cell_m=1.0, directions=16, radius_m=20.0, kind="cosine").compute()
    assert np.nanmax(np.abs(short - ref)) > 1e-3
    assert svf_halo_cells(cell_m=1.0, radius_m=20.0) == 20


def test_tiled_sunlit_fraction_equals_untiled():
    z = city_dsm()
    for az, el in ((135.0, 30.0), (250.0, 12.0)):
        ref = sunlit_fraction(z, cell_m=1.0, sun_azimuth_deg=az, sun_elevation_deg=el)
        [sun] = compute(tiled_sunlit_fraction(z, cell_m=1.0, sun_azimuth_deg=az, sun_elevation_deg=el, tile=40))
        assert np.array_equal(sun, ref, equal_nan=True)
    [night] = compute(tiled_sunlit_fraction(z, cell_m=1.0, sun_azimuth_deg=0.0, sun_elevation_deg=-5.0, tile=40))
    assert np.nanmax(night) == 0.0 and np.isnan(night[4, 8])


def test_bad_svf_options_are_refused():
    with pytest.raises(TwinValueError, match="kind"):
        tiled_sky_view_factor(np.zeros((8, 8)), cell_m=1.0, kind="visual")
    with pytest.raises(TwinValueError, match="directions"):
        tiled_sky_view_factor(np.zeros((8, 8)), cell_m=1.0, directions=2)
    with pytest.raises(TwinValueError, match="2-D"):
        tiled_sky_view_factor(np.zeros(8), cell_m=1.0)
