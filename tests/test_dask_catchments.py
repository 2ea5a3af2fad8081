"""Heavy rain by catchments (twin.sim.heavyrain.catchments) against the single-domain run."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import TwinValueError
from twin.sim.heavyrain.catchments import catchment_labels, merge_catchments, run_by_catchments
from twin.sim.heavyrain.forcing import RainGrid, uniform_rain
from twin.sim.heavyrain.model import HeavyRainModel
from twin.sim.heavyrain.screening import flow_directions

from .dask_dems import valleys, walled_basin


def _single(z, t, rain, duration):
    m = HeavyRainModel(z, transform=t, boundary="open", rain=rain)
    m.run(duration)
    return m.max_depth


def test_catchments_follow_d8_and_merge_to_the_target_size():
    z, _ = valleys()
    d8 = flow_directions(z, cell_size=2.0)
    lab = catchment_labels(d8)
    k = lab.max() + 1
    assert k >= 4 and (lab >= 0).all()
    # every cell's D8 neighbour lies in its own catchment
    rows, cols = z.shape
    rr, cc = np.nonzero(d8 >= 0)
    dr = np.array([-1, -1, 0, 1, 1, 1, 0, -1])[d8[rr, cc]]
    dc = np.array([0, 1, 1, 1, 0, -1, -1, -1])[d8[rr, cc]]
    assert np.array_equal(lab[rr + dr, cc + dc], lab[rr, cc])
    g = merge_catchments(lab, target_cells=1000)
    sizes = np.bincount(g.ravel())
    assert 1 < len(sizes) < k and sizes.min() >= 1000
    # groups are unions of whole catchments, also when merging across the lowest divides
    g2 = merge_catchments(lab, target_cells=1000, elevation=z)
    assert np.bincount(g2.ravel()).min() >= 250 and len(np.unique(g2)) > 1
    for c in range(k):
        assert len(np.unique(g[lab == c])) == 1 and len(np.unique(g2[lab == c])) == 1


def test_catchment_run_matches_the_single_domain_run_within_1_cm():
    z, t = valleys()
    rain = uniform_rain(60.0, 600.0)
    ref = _single(z, t, rain, 900.0)
    r = run_by_catchments(z, transform=t, duration_s=900.0, rain=rain, target_cells=300, buffer_cells=6)
    assert len(r.table) > 1 and not r.overtopped and r.rounds == 1
    assert np.nanmax(ref) > 0.05
    # issue 11: within 1 cm max depth where no divide is overtopped
    assert np.nanmax(np.abs(r.max_depth - ref)) < 0.01
    assert (r.table["volume_error"].abs() < 1e-6).all()
    assert r.table["rain_m3"].sum() == pytest.approx(60.0 / 3.6e6 * 600.0 * z.size * 4.0, rel=1e-6)


def test_overtopped_divide_is_flagged_and_run_with_its_neighbours():
    z, t = walled_basin()
    rain = uniform_rain(200.0, 1200.0)
    ref = _single(z, t, rain, 1500.0)
    r = run_by_catchments(z, transform=t, duration_s=1500.0, rain=rain, target_cells=300, buffer_cells=6)
    assert r.overtopped and r.overtopped[0]["round"] == 0 and r.rounds >= 2
    spill = [o for o in r.overtopped if o["depth_m"] > 0.05]
    assert spill and all(o["reached"] for o in spill)
    x, y = spill[0]["x"], spill[0]["y"]  # just across its low south wall (row 39, y = 41 m), cols 35-55 (x = 70-112 m)
    assert 70 <= x <= 112 and abs(y - 41.0) <= 6.0
    assert not r.table["overtopped"].any()
    assert np.nanmax(np.abs(r.max_depth - ref)) < 0.01


def test_bad_catchment_inputs_are_refused():
    z, t = valleys(20, 20)
    with pytest.raises(TwinValueError, match="RainSeries"):
        run_by_catchments(z, transform=t, duration_s=60.0, rain=RainGrid([0.0], np.zeros((1, 20, 20))))
    with pytest.raises(TwinValueError, match="boundary"):
        run_by_catchments(z, transform=t, duration_s=60.0, rain=uniform_rain(10.0, 60.0), boundary="wall")
    with pytest.raises(TwinValueError, match="buffer"):
        run_by_catchments(z, transform=t, duration_s=60.0, rain=uniform_rain(10.0, 60.0), buffer_cells=0)
    with pytest.raises(TwinValueError, match="target"):
        merge_catchments(np.zeros((3, 3), np.int32), target_cells=0)
