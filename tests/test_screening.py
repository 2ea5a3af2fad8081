"""Heavy-rain screening: Priority-Flood, depression hierarchy, Fill-Spill-Merge, D8/D-inf, flow paths,
building exposure and the ``twin sim screening`` CLI module.

References: a plain-NumPy fill (iterated min-max reconstruction, the fixed point Priority-Flood
computes; Barnes et al. 2014 sec. 1), hand-computed sinks, pysheds 0.5 (fill_depressions,
flowdir, accumulation) on the same DEM, and the V-catchment DEM (shared data).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.common import shared
from twin.sim.heavyrain import screening as S

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ references
def fill_reference(z: np.ndarray) -> np.ndarray:
    """Plain-NumPy depression filling: W = z on seeds (border / next to NaN), +inf elsewhere, then
    W = max(z, min over the 8 neighbours of W) until nothing changes (Planchon & Darboux 2002 style)."""
    z = np.asarray(z, np.float64)
    rows, cols = z.shape
    nan = np.isnan(z)
    pad = np.pad(nan, 1, constant_values=True)
    seed = np.zeros_like(nan)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            seed |= pad[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
    w = np.where(seed | nan, z, np.inf)
    while True:
        p = np.pad(np.where(nan, np.inf, w), 1, constant_values=np.inf)
        m = np.full_like(w, np.inf)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr or dc:
                    m = np.minimum(m, p[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols])
        new = np.where(seed | nan, z, np.maximum(z, m))
        if np.array_equal(new, w, equal_nan=True):
            return new
        w = new


def dems(min_side=1, max_side=12, with_nan=True):
    """Random DEMs on a coarse height lattice (ties and flats happen), optionally with NaN holes."""
    def build(draw):
        shape = draw(st.tuples(st.integers(min_side, max_side), st.integers(min_side, max_side)))
        z = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 9))).astype(np.float64) * 0.5
        if with_nan and draw(st.booleans()):
            holes = draw(hnp.arrays(np.bool_, shape, elements=st.booleans()))
            z[holes & (draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 4))) == 0)] = np.nan
        if draw(st.booleans()):
            z = z.astype(np.float32).astype(np.float64)
        return z
    return st.composite(lambda draw: build(draw))()


# ------------------------------------------------------------------------------ Priority-Flood
@SETTINGS
@given(dems())
def test_priority_flood_equals_numpy_reference(z):
    np.testing.assert_array_equal(S.fill_depressions(z), fill_reference(z))  # exact: same fixed point


@SETTINGS
@given(dems())
def test_filled_dem_has_no_interior_sinks(z):
    f = S.fill_depressions(z)
    np.testing.assert_array_equal(S.fill_depressions(f), f)  # idempotent: nothing left to fill
    e = S.fill_depressions(z, epsilon=True)
    assert np.all((e >= f) | np.isnan(f))
    # epsilon variant: every cell drains (strictly lower neighbour or the domain edge): no D8 pits
    d = S.flow_directions(e, condition=False)
    assert not np.any(d == -2)
    assert np.nanmax(e - f, initial=0.0) < 1e-9  # a float64 ulp ladder, far below any DEM precision


def test_fill_edge_cases():
    assert S.fill_depressions(np.array([[3.0]]))[0, 0] == 3.0
    z = np.full((3, 3), 5.0)
    z[1, 1] = 1.0
    assert S.fill_depressions(z)[1, 1] == 5.0
    z[0, 1] = np.nan  # the pit now touches the outside: it drains
    assert S.fill_depressions(z)[1, 1] == 1.0
    with pytest.raises(ValueError, match="2-D"):
        S.fill_depressions(np.zeros(4))


# ------------------------------------------------------------------------------ hierarchy and FSM
def two_pits():
    """Rim 10 m; pit A (cells 1 m) and pit B (2 m) separated by a 5 m saddle; rim drains at (0, 1) = 6 m."""
    z = np.full((5, 7), 10.0)
    z[0, 1] = 6.0
    z[1:4, 1:3] = 1.0  # A: 6 cells at 1 m
    z[1:4, 3] = 5.0  # saddle column
    z[1:4, 4:6] = 2.0  # B: 6 cells at 2 m
    return z


def test_hierarchy_two_pits_by_hand():
    z = two_pits()
    dh = S.depression_hierarchy(z, cell_size=2.0)
    t = dh.table().set_index("sink_id")
    leaves = t[t["leaf"]]
    assert len(leaves) == 2 and len(t) == 3
    a = leaves[leaves["max_depth_m"] == 4.0].iloc[0]  # A spills over the 5 m saddle: 6 cells x 4 m x 4 m2
    b = leaves[leaves["max_depth_m"] == 3.0].iloc[0]
    assert a["volume_m3"] == 6 * 4 * 4.0 and b["volume_m3"] == 6 * 3 * 4.0
    assert a["area_m2"] == b["area_m2"] == 24.0
    meta = t[~t["leaf"]].iloc[0]
    # merged lake spills at 6 m over 15 cells: A 6 x 5 m, B 6 x 4 m, saddle 3 x 1 m
    assert meta["spill_elevation_m"] == 6.0 and meta["volume_m3"] == (30 + 24 + 3) * 4.0
    assert meta["overflows_into"] == -1 and meta["top_level"]
    np.testing.assert_array_equal(dh.filled(), S.fill_depressions(z))


def test_fill_spill_merge_by_hand():
    z = two_pits()
    dh = S.depression_hierarchy(z, cell_size=1.0)
    cells = np.isfinite(z).sum()
    # rain on the 20 border cells leaves the domain (seeds drain out); the 15 interior cells run to
    # their pits: A's basin holds A and the saddle column (9 cells, reached from the lower pit first),
    # B's its 6 cells. 0.5 m of rain: A 4.5 m3 (level 1.75 m), B 3 m3 (level 2.5 m), 10 m3 out
    r = dh.fill_spill_merge(500.0)
    assert r.outflow_m3 == pytest.approx(10.0, rel=1e-12)
    assert r.ponded_m3 == pytest.approx(7.5, rel=1e-12)
    np.testing.assert_allclose(r.depth[1:4, 1:3], 0.75, rtol=1e-12)
    np.testing.assert_allclose(r.depth[1:4, 4:6], 0.5, rtol=1e-12)
    # huge rain: both full and merged at 6 m, the rest leaves
    r = dh.fill_spill_merge(10_000.0)
    assert r.ponded_m3 == pytest.approx(57.0, rel=1e-12)
    assert r.outflow_m3 == pytest.approx(cells * 10.0 - 57.0, rel=1e-12)
    np.testing.assert_allclose(r.depth, dh.filled_depth(), atol=1e-12)


@SETTINGS
@given(dems(min_side=1, max_side=14), st.floats(0.0, 5000.0))
def test_fill_spill_merge_conserves_volume(z, rain_mm):
    dh = S.depression_hierarchy(z, cell_size=1.5)
    np.testing.assert_array_equal(dh.filled(), S.fill_depressions(z))
    r = dh.fill_spill_merge(rain_mm)
    # ponded + outflow = rain to float64 round-off (tolerance: 1e-12 of the rain volume)
    assert abs(r.ponded_m3 + r.outflow_m3 - r.rain_m3) <= 1e-12 * max(r.rain_m3, 1.0)
    fd = dh.filled_depth()
    ok = np.isfinite(z)
    assert np.all(r.depth[ok] >= 0) and np.all(r.depth[ok] <= fd[ok] + 1e-9)
    # table volumes of the top-level sinks add up to the filled volume
    t = dh.table()
    assert t.loc[t["top_level"], "volume_m3"].sum() == pytest.approx(np.nansum(fd) * 1.5 ** 2, rel=1e-9, abs=1e-9)


def test_fill_spill_merge_monotone_and_saturates():
    rng = np.random.default_rng(7)
    z = rng.random((60, 70)) * 5
    dh = S.depression_hierarchy(z)
    ponded = [dh.fill_spill_merge(r).ponded_m3 for r in (0, 1, 10, 100, 1000, 100_000)]
    assert ponded[0] == 0 and all(b >= a for a, b in zip(ponded, ponded[1:]))
    assert ponded[-1] == pytest.approx(np.nansum(dh.filled_depth()), rel=1e-12)


# ------------------------------------------------------------------------------ flow
def test_d8_accumulation_on_a_plane_and_nan():
    z = np.add.outer(np.arange(4.0), np.zeros(3))[::-1].copy()  # rises to the north: everything flows S
    a = S.flow_accumulation(z, cell_size=2.0)
    np.testing.assert_array_equal(a[-1], [16.0, 16.0, 16.0])  # 4 cells x 4 m2 per column
    z[0, 0] = np.nan
    a = S.flow_accumulation(z, cell_size=1.0)
    assert np.isnan(a[0, 0]) and np.nansum(a[-1]) == 11.0


def test_dinf_conserves_area():
    rng = np.random.default_rng(2)
    z = rng.random((30, 40))
    d = S.flow_directions(z, routing="dinf")
    a = S.flow_accumulation(directions=d, routing="dinf")
    outlets = d[0] == -1
    assert np.nansum(a[outlets]) == pytest.approx(z.size, rel=1e-12)  # every cell's area leaves somewhere


def test_flow_paths_and_classes():
    # a V valley: 1 m per cell down to the south, 3 m per cell down to the middle column
    z = np.add.outer(np.arange(30.0)[::-1], 3.0 * np.abs(np.arange(5) - 2.0))
    d = S.flow_directions(z)
    a = S.flow_accumulation(directions=d)
    gdf = S.flow_paths(d, a, _Transform(), classes=(3.0, 50.0))
    assert set(gdf["flow_class"]) == {1, 2}
    assert gdf["upstream_area_m2"].max() == 150.0  # whole grid reaches the channel's outlet cell
    np.testing.assert_array_equal(S.flow_path_classes([1.0, 3.0, 49.0, 50.0, np.nan], (3.0, 50.0)), [0, 1, 1, 2, 0])
    with pytest.raises(ValueError, match="increasing"):
        S.flow_path_classes([1.0], (5.0, 2.0))


class _Transform:
    a, c, e, f = 1.0, 0.0, -1.0, 30.0


# ------------------------------------------------------------------------------ pysheds
@pytest.fixture(scope="module")
def pysheds():
    pytest.importorskip("pysheds", reason="pysheds (test extra) is the D8 reference")
    # pysheds 0.5 calls np.in1d, removed in numpy 2.4; np.isin is its documented 1-D equivalent
    if not hasattr(np, "in1d"):
        np.in1d = np.isin
    from affine import Affine
    from pysheds.grid import Grid
    from pysheds.sview import Raster, ViewFinder

    def make(z):
        vf = ViewFinder(affine=Affine(1, 0, 0, 0, -1, z.shape[0]), shape=z.shape, nodata=-9999.0)
        return Grid(viewfinder=vf), (lambda a: Raster(np.ascontiguousarray(a, np.float64), viewfinder=vf))
    return make


@pytest.mark.parametrize("seed", range(4))
def test_fill_and_d8_accumulation_equal_pysheds(pysheds, seed):
    rng = np.random.default_rng(seed)
    z = rng.random((80, 110)) * 10
    grid, raster = pysheds(z)
    np.testing.assert_array_equal(S.fill_depressions(z), np.asarray(grid.fill_depressions(raster(z))))
    cond = S.fill_depressions(z, epsilon=True)  # the same conditioned DEM for both
    ref = np.asarray(grid.accumulation(grid.flowdir(raster(cond))))
    mine = S.flow_accumulation(cond, condition=False)  # cell_size 1: area in cells
    np.testing.assert_array_equal(mine, ref)  # exact: same D8 rule and tie order


def test_dinf_angles_equal_pysheds(pysheds):
    rng = np.random.default_rng(11)
    z = rng.random((50, 60))  # continuous values: no ties between facets
    grid, raster = pysheds(z)
    ref = np.asarray(grid.flowdir(raster(z), routing="dinf"))
    mine = S.flow_directions(z, routing="dinf", condition=False)[0]
    inner = (slice(1, -1), slice(1, -1))  # pysheds leaves the border undefined
    both = np.isfinite(ref[inner]) & (ref[inner] >= 0) & (mine[inner] >= 0)
    assert both.mean() > 0.8
    np.testing.assert_allclose(mine[inner][both], ref[inner][both], atol=1e-12)


# ------------------------------------------------------------------------------ V-catchment
@pytest.mark.shared
def test_v_catchment_flow_converges_on_the_channel():
    from twin.grid import TerrainRaster

    dem = TerrainRaster.from_geotiff(shared("flood-benchmarks", "v-catchment", "vs_dem.tif"))
    z = dem.data.astype(np.float64)
    cell = dem.resolution[0]  # 5 m
    d = S.flow_directions(z, cell_size=cell)
    a = S.flow_accumulation(directions=d, cell_size=cell)
    channel = np.flatnonzero(z[100] == z[100].min())  # the flat 5-cell channel, cols 160..164
    assert list(channel) == [160, 161, 162, 163, 164]
    outlet = np.argwhere(d == -1)
    # the only cells draining out are the channel's downstream end, and they carry the whole catchment
    assert set(map(tuple, outlet)) == {(200, c) for c in channel}
    assert a[d == -1].sum() == np.isfinite(z).sum() * cell * cell  # to the cell: 65 325 cells
    # flow paths of 1 ha or more lie in the channel only
    assert set(np.argwhere(a >= 10_000.0)[:, 1]) <= set(channel)
    # a hillslope row reaches the channel bank with the area of the whole row of its plane (160 cells)
    assert a[100, 159] == 160 * cell * cell and a[100, 165] == 160 * cell * cell
    dh = S.depression_hierarchy(z, cell_size=cell)
    assert dh.n_nodes == 1 and np.nanmax(dh.filled_depth()) == 0.0  # a tilted V has no sinks


# ------------------------------------------------------------------------------ grid, exposure, CLI
def town_grid():
    """60 x 50 cells @ 1 m sloping south, a hollow (0.4 m deep) in front of building 7, building 3 on the slope."""
    from twin.grid import Grid
    from affine import Affine

    rows, cols = 60, 50
    z = np.add.outer(np.linspace(6.0, 0.0, rows), np.zeros(cols)).astype(np.float32)
    z[30:36, 20:30] -= 0.4 + np.linspace(0, 0.3, 6)[:, None].astype(np.float32)  # hollow
    bid = np.full((rows, cols), -1, np.int32)
    bid[36:42, 22:28] = 7  # south of (below) the hollow
    bid[10:14, 5:9] = 3
    h = np.where(bid >= 0, 8.0, 0.0).astype(np.float32)
    return Grid(Affine(1, 0, 1000, 0, -1, 2000), "EPSG:25832", (rows, cols),
                {"terrain_elevation": z, "building_id": bid, "building_height": h},
                {"terrain_elevation": "m", "building_id": "1", "building_height": "m"})


def test_screen_buildings_are_obstacles_and_exposed():
    import pandas as pd

    grid = town_grid()
    res = S.screen(grid, rain_mm=20.0, building_names=pd.Series({3: "B3", 7: "B7"}))
    assert np.all(res.filled_depth[grid["building_id"] >= 0] == 0.0)  # roofs hold no water
    exp = res.exposure.set_index("building_id")
    assert exp.loc[7, "gml_id"] == "B7" and exp.loc[7, "footprint_m2"] == 36.0
    assert exp.loc[7, "sink_id"] > 0 and exp.loc[3, "sink_id"] == -1
    assert exp.loc[7, "max_depth_m"] > 0.1 and exp.loc[7, "exposure"] in ("medium", "high")
    assert exp.loc[3, "max_depth_m"] == 0.0 and exp.loc[3, "exposure"] == "low"
    assert abs(res.ponding.volume_error) < 1e-12
    # the same with a dynamic run depth of 0.5 m everywhere: both high
    res2 = S.screen(grid, run_depth=np.full(grid.shape, 0.5), run_source="x")
    assert set(res2.exposure["exposure"]) == {"high"}
    assert res2.exposure["depth_source"].iloc[0] == "dynamic run x"


def _cli(argv):
    from twin.cli import sim_screening

    p = argparse.ArgumentParser(prog="twin")
    sub = p.add_subparsers()
    sim = sub.add_parser("sim")
    sim.set_defaults(_run=None)  # what twin.cli.main sets on the sim parser; the sub-subcommand's wins
    sim_screening.add_parser(sim.add_subparsers())
    args = p.parse_args(["sim", "screening", *argv])
    return args._run(args)


def test_cli_with_dem_and_dynamic_run(tmp_path, capsys):
    import geopandas as gpd
    import pandas as pd
    import rasterio
    import xarray as xr

    from twin.errors import TwinIOError

    grid = town_grid()
    dem = tmp_path / "dem.tif"
    grid.to_geotiff(dem, fields="terrain_elevation")
    out = tmp_path / "run"
    assert _cli([f"--dem={dem}", "--out", str(out), "--rain-mm", "30"]) == 0
    names = {"sinks.gpkg", "flow_accumulation.tif", "flow_paths.gpkg", "filled_depth.tif", "ponded_depth.tif",
             "buildings_exposure.parquet", "buildings_exposure.csv", "run.json"}
    assert names <= {p.name for p in out.iterdir()}
    run = json.loads((out / "run.json").read_text())
    assert abs(run["fill_spill_merge"]["volume_error"]) < 1e-12 and run["sinks"]["written"] >= 1
    sinks = gpd.read_file(out / "sinks.gpkg", layer="sinks")
    with rasterio.open(out / "filled_depth.tif") as src:
        filled = src.read(1)
    # polygon area = cells with filled depth > 0 (1 m2 cells)
    assert sinks.area.sum() == pytest.approx(float((filled > 0).sum()))
    assert len(gpd.read_file(out / "flow_paths.gpkg")) > 0
    with pytest.raises(TwinIOError, match="overwrite"):
        _cli(["--dem", str(dem), "--out", str(out)])

    # a synthetic dynamic run on the same grid with buildings: exposure from its max_depth
    flood = tmp_path / "flood"
    flood.mkdir()
    x, y = grid.cell_centres()
    depth = np.zeros(grid.shape, np.float32)
    depth[42, 22:28] = 0.35  # just south of building 7
    xr.Dataset({"max_depth": (("y", "x"), depth, {"units": "m"})}, coords={"x": x, "y": y}).to_netcdf(
        flood / "result.nc")
    res = S.screen(grid, run_depth=S.read_run_max_depth(flood, grid))
    exp = res.exposure.set_index("building_id")
    assert exp.loc[7, "max_depth_m"] == pytest.approx(0.35) and exp.loc[7, "exposure"] == "high"
    res.write(tmp_path / "r2")
    back = pd.read_parquet(tmp_path / "r2" / "buildings_exposure.parquet")
    assert list(back.sort_values("building_id")["building_id"]) == [3, 7]
    with pytest.raises(TwinIOError, match="result.nc"):
        S.read_run_max_depth(tmp_path, grid)


def test_cli_needs_one_input(tmp_path):
    from twin.errors import TwinValueError

    with pytest.raises(TwinValueError, match="SCENE_DIR or --dem"):
        _cli(["--out", str(tmp_path / "x")])
