"""twin.workflows.compare on synthetic run folders whose answers can be counted by hand.

The grid: 6 x 6 cells of 2 m (cell area 4 m2), cell centres x = 1, 3, ..., 11 and y = 11, 9, ..., 1.
One building "B1" covers x 4..8, y 4..8: the 2 x 2 cells with centres (5|7, 5|7), i.e. rows 2-3 and
columns 2-3. Its outline (the cells touching it, outside it) is rows 1-4 x columns 1-4 minus the
footprint: 12 cells.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

X = np.arange(6) * 2.0 + 1.0
Y = (np.arange(6) * 2.0 + 1.0)[::-1]
CELL_M2 = 4.0


def footprints():
    import geopandas as gpd
    from shapely.geometry import box

    return gpd.GeoDataFrame({"gml_id": ["B1"], "name": ["Rathaus"]}, geometry=[box(4, 4, 8, 8)], crs="EPSG:25832")


def write_heavyrain(folder, max_depth, arrival=None, *, infiltration=0.0, rain=144.0, x=X, y=Y):
    import xarray as xr

    folder.mkdir(parents=True)
    data = {"max_depth": (("y", "x"), np.asarray(max_depth, np.float32), {"units": "m"})}
    if arrival is not None:
        data["arrival_time"] = (("y", "x"), np.asarray(arrival, np.float32), {"units": "s"})
    xr.Dataset(data, coords={"x": x, "y": y}).to_netcdf(folder / "result.nc")
    (folder / "max_depth.tif").write_bytes(b"")   # marks a bare heavy-rain folder; never read
    wb = {"rain_m3": rain, "inflow_m3": 0.0, "infiltration_m3": infiltration, "drainage_m3": 0.0,
          "outflow_m3": 10.0, "storage_m3": rain - infiltration - 10.0}
    (folder / "run.json").write_text(json.dumps({"water_balance": wb}))


def write_heat(folder, ta, utci, *, x=X, y=Y):
    import xarray as xr

    folder.mkdir(parents=True)
    xr.Dataset({"air_temperature": (("y", "x"), np.asarray(ta, np.float32), {"units": "degC"}),
                "utci": (("y", "x"), np.asarray(utci, np.float32), {"units": "degC"})},
               coords={"x": x, "y": y}).to_netcdf(folder / "result.nc")
    (folder / "svf.tif").write_bytes(b"")
    (folder / "run.json").write_text(json.dumps({"svf_kind": "cosine"}))


def write_screening(folder, exposure: dict):
    import geopandas as gpd
    from shapely.geometry import box

    folder.mkdir(parents=True)
    gdf = gpd.GeoDataFrame({"gml_id": list(exposure), "exposure": list(exposure.values())},
                           geometry=[box(4, 4, 8, 8)] * len(exposure), crs="EPSG:25832")
    gdf.to_parquet(folder / "buildings_exposure.parquet")
    (folder / "run.json").write_text(json.dumps({"kind": "heavyrain-screening",
                                                 "fill_spill_merge": {"ponded_m3": 50.0}}))


def base_depth():
    d = np.zeros((6, 6))
    d[0, :] = 0.6          # a flooded street along the top row (6 cells > 0.5 m), not touching B1
    d[1, 1:5] = 0.2        # outline cells above B1 (row 1, columns 1-4)
    d[4, 2] = 0.35         # one outline cell below B1: the building's maximum
    d[2:4, 2:4] = 0.0      # the footprint itself (blocked)
    return d


def make_runs(tmp_path):
    """Workspace with runs 'base' and 'plan' (plan: the street 0.6 -> 0.4 m, the cell below B1 0.35 -> 0.25 m,
    infiltration 0 -> 30 m3, 2 K cooler around B1, exposure high -> medium)."""
    ws = tmp_path / "ws"
    arr = np.full((6, 6), np.nan)
    arr[0, :] = 600.0
    arr[1, 1:5] = 900.0
    arr[4, 2] = 1200.0
    d0 = base_depth()
    d1 = d0.copy()
    d1[0, :] = 0.4
    d1[4, 2] = 0.25
    a1 = arr.copy()
    a1[4, 2] = 1500.0
    ta0 = np.full((6, 6), 30.0)
    ta0[2:4, 2:4] = 50.0        # roof cells: must never count (inside the footprint)
    ut0 = np.full((6, 6), 33.0)
    ut0[0, :] = 40.0            # hot top row: 6 cells above 38
    ut0[2:4, 2:4] = 60.0
    ta1, ut1 = ta0 - 2.0, ut0 - 2.0
    for rid, name, d, a, inf, ta, ut, ex in (("base", "Bestand", d0, arr, 0.0, ta0, ut0, "high"),
                                              ("plan", "Schwammstadt", d1, a1, 30.0, ta1, ut1, "medium")):
        run = ws / "runs" / rid
        write_heavyrain(run / "heavyrain", d, a, infiltration=inf)
        write_heat(run / "heat", ta, ut)
        write_screening(run / "screening", {"B1": ex})
        (run / "run.json").write_text(json.dumps({"id": rid, "scenario_id": name.lower()}))
        (run / "scenario.json").write_text(json.dumps({"name": name, "scene": "nowhere"}))
    return ws


def test_indicators_by_hand(tmp_path):
    from twin.workflows import compare_runs

    ws = make_runs(tmp_path)
    c = compare_runs(ws, ["base", "plan"], footprints=footprints())
    ind = c.indicators
    assert c.run_ids == ["base", "plan"]
    assert [r.label for r in c.runs] == ["Bestand", "Schwammstadt"]
    # base: > 0.1 m: 6 street + 4 outline + 1 = 11 cells; > 0.3: 6 + 1; > 0.5: 6
    assert ind.loc["flooded_area_gt_0.1m", "base"] == 11 * CELL_M2
    assert ind.loc["flooded_area_gt_0.3m", "base"] == 7 * CELL_M2
    assert ind.loc["flooded_area_gt_0.5m", "base"] == 6 * CELL_M2
    # plan: street at 0.4 m (> 0.3, not > 0.5), the cell below B1 at 0.25
    assert ind.loc["flooded_area_gt_0.1m", "plan"] == 11 * CELL_M2
    assert ind.loc["flooded_area_gt_0.3m", "plan"] == 6 * CELL_M2
    assert ind.loc["flooded_area_gt_0.5m", "plan"] == 0.0
    assert ind.loc["flooded_area_gt_0.5m", "delta[plan]"] == -6 * CELL_M2
    assert ind.loc["volume_retained", "base"] == 0.0
    assert ind.loc["volume_retained", "plan"] == 30.0
    assert ind.loc["volume_runoff", "delta[plan]"] == -30.0
    assert ind.loc["buildings_exposure_high", "base"] == 1 and ind.loc["buildings_exposure_medium", "plan"] == 1
    assert ind.loc["buildings_exposure_high", "delta[plan]"] == -1
    # UTCI outside the footprint (32 cells): 33 everywhere, 40 in the top row
    assert ind.loc["utci_area_gt_26", "base"] == 32 * CELL_M2
    assert ind.loc["utci_area_gt_32", "base"] == 32 * CELL_M2
    assert ind.loc["utci_area_gt_38", "base"] == 6 * CELL_M2
    assert ind.loc["utci_area_gt_46", "base"] == 0.0          # the 60 degC roof cells are left out
    assert ind.loc["utci_area_gt_32", "plan"] == 6 * CELL_M2   # 31 and 38 degC
    assert ind.loc["utci_area_gt_38", "plan"] == 0.0
    assert ind.loc["air_temperature_mean", "base"] == pytest.approx(30.0)
    assert ind.loc["air_temperature_mean", "delta[plan]"] == pytest.approx(-2.0)
    assert ind.loc["utci_mean", "base"] == pytest.approx((26 * 33 + 6 * 40) / 32)
    assert set(ind.columns) == {"label", "unit", "base", "plan", "delta[plan]"}


def test_buildings_by_hand(tmp_path):
    from twin.workflows import compare_runs

    c = compare_runs(make_runs(tmp_path), ["base", "plan"], footprints=footprints())
    b = c.buildings.loc["B1"]
    assert b["name"] == "Rathaus"
    assert b["footprint_m2"] == pytest.approx(16.0)
    assert b["max_depth_m[base]"] == pytest.approx(0.35)          # the outline's maximum
    assert b["max_depth_m[plan]"] == pytest.approx(0.25)
    assert b["delta_max_depth_m[plan]"] == pytest.approx(-0.10)
    assert b["arrival_time_s[base]"] == 900.0                     # the outline's minimum, the street is not on it
    assert b["arrival_time_s[plan]"] == 900.0
    # ring of 10 m = 5 cells: every cell outside the footprint; the 50 degC roof never counts
    assert b["ta_c[base]"] == pytest.approx(30.0)
    assert b["delta_ta_c[plan]"] == pytest.approx(-2.0)
    assert b["utci_c[base]"] == pytest.approx((26 * 33 + 6 * 40) / 32)
    assert b["exposure[base]"] == "high" and b["exposure_change[plan]"] == "high -> medium"
    assert c.buildings.crs == "EPSG:25832"
    # a 2 m ring: rows 1-4 x columns 1-4 minus the footprint: 12 cells, none in the hot top row
    c2 = compare_runs(make_runs(tmp_path / "again"), ["base", "plan"], footprints=footprints(), ring_m=2.0)
    assert c2.buildings.loc["B1", "utci_c[base]"] == pytest.approx(33.0)


def test_maps(tmp_path):
    from twin.workflows import compare_runs

    c = compare_runs(make_runs(tmp_path), ["base", "plan"], footprints=footprints())
    m = c.maps
    assert list(m["run"].values) == ["base", "plan"]
    assert m["max_depth"].dims == ("run", "y", "x")
    np.testing.assert_allclose(m["max_depth"].sel(run="base").values, base_depth())
    d = m["delta_max_depth"].sel(run="plan").values
    assert np.allclose(d[0], -0.2) and d[4, 2] == pytest.approx(-0.1) and np.count_nonzero(np.round(d, 6)) == 7
    assert np.all(m["delta_max_depth"].sel(run="base").values == 0)
    dt = m["delta_arrival_time"].sel(run="plan").values
    assert dt[4, 2] == 300.0 and np.isnan(dt[5, 5])          # never flooded: NaN, not 0
    assert int(m["flood_change"].sel(run="plan").sum()) == 0  # same cells above 0.1 m
    np.testing.assert_allclose(m["delta_utci"].sel(run="plan").values, -2.0)
    assert m.attrs["reference"] == "base"


def test_three_runs_and_written_outputs(tmp_path):
    import geopandas as gpd
    import pandas as pd
    import xarray as xr

    from twin.workflows import compare_run_dirs

    ws = make_runs(tmp_path)
    dry = tmp_path / "dry"   # a bare heavy-rain folder (as `twin sim heavyrain` writes it): nothing flooded
    write_heavyrain(dry, np.zeros((6, 6)), np.full((6, 6), np.nan))
    c = compare_run_dirs([ws / "runs" / "base", ws / "runs" / "plan", dry], footprints=footprints())
    assert c.run_ids == ["base", "plan", "dry"]
    assert c.indicators.loc["flooded_area_gt_0.1m", "delta[dry]"] == -11 * CELL_M2
    assert int(c.maps["flood_change"].sel(run="dry").sum()) == -11
    assert np.isnan(c.indicators.loc["buildings_exposure_high", "dry"])
    assert any("screening results only in" in n for n in c.notes)
    out = c.write(tmp_path / "cmp")
    ind = pd.read_csv(out / "indicators.csv", index_col=0)
    assert ind.loc["flooded_area_gt_0.5m", "base"] == 24.0
    assert gpd.read_file(out / "buildings.gpkg").loc[0, "gml_id"] == "B1"
    with xr.open_dataset(out / "maps.nc") as m:
        assert m["max_depth"].shape == (3, 6, 6)
    js = json.loads((out / "comparison.json").read_text())
    assert js["reference"] == "base" and js["runs"][2]["models"] == ["heavyrain"]
    flooded = next(r for r in js["indicators"] if r["key"] == "flooded_area_gt_0.1m")
    assert flooded["values"]["dry"] == 0.0 and flooded["delta"]["plan"] == 0.0
    from twin.errors import TwinIOError

    with pytest.raises(TwinIOError, match="already holds"):
        c.write(out)


def test_other_grids_and_fallback_footprints(tmp_path):
    """A run on a finer grid is sampled onto the reference's; heat on its own grid gets its own dims;
    without footprints given, the screening table's geometry is used."""
    from twin.workflows import compare_run_dirs

    ws = make_runs(tmp_path)
    fine = tmp_path / "fine"
    xf = np.arange(12) * 1.0 + 0.5
    yf = (np.arange(12) * 1.0 + 0.5)[::-1]
    d = np.kron(base_depth(), np.ones((2, 2)))     # the same depths on 1 m cells
    write_heavyrain(fine / "heavyrain", d, None, x=xf, y=yf)
    write_heat(fine / "heat", np.full((12, 12), 29.0), np.full((12, 12), 30.0), x=xf, y=yf)
    c = compare_run_dirs([fine, ws / "runs" / "base"])
    assert c.maps["max_depth"].shape == (2, 12, 12)
    assert "resampled" in c.maps.attrs and c.maps.attrs["resampled"] == "base"
    np.testing.assert_allclose(c.maps["delta_max_depth"].sel(run="base").values, 0.0)
    assert c.maps["utci"].dims == ("run", "y", "x")   # heat shares the 1 m grid of the reference's flood
    assert c.buildings.attrs["footprints"] == "screening footprint cells"
    assert c.buildings.loc["B1", "max_depth_m[base]"] == pytest.approx(0.35)
    assert c.indicators.loc["flooded_area_gt_0.5m", "fine"] == 24 * 1.0


def test_heat_on_its_own_grid(tmp_path):
    from twin.workflows import compare_run_dirs

    runs = []
    for k, t in enumerate((30.0, 29.0)):
        r = tmp_path / f"r{k}"
        write_heavyrain(r / "heavyrain", base_depth(), None)
        xf, yf = np.arange(12) + 0.5, (np.arange(12) + 0.5)[::-1]
        write_heat(r / "heat", np.full((12, 12), t), np.full((12, 12), t + 3), x=xf, y=yf)
        runs.append(r)
    c = compare_run_dirs(runs, footprints=footprints(), labels=["a", "b"])
    assert c.maps["utci"].dims == ("run", "y_heat", "x_heat") and c.maps["max_depth"].dims == ("run", "y", "x")
    # the footprint covers 16 of the 144 one-metre cells
    assert c.indicators.loc["utci_area_gt_32", "r0"] == 128.0 and [r.label for r in c.runs] == ["a", "b"]
    assert c.buildings.loc["B1", "delta_utci_c[r1]"] == pytest.approx(-1.0)


def test_errors(tmp_path):
    from twin.errors import TwinIOError, TwinValueError
    from twin.workflows import compare_run_dirs, compare_runs

    ws = make_runs(tmp_path)
    with pytest.raises(TwinValueError, match="at least two"):
        compare_runs(ws, ["base"])
    with pytest.raises(TwinIOError, match="neither a folder"):
        compare_runs(ws, ["base", "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TwinIOError, match="nothing to compare"):
        compare_run_dirs([ws / "runs" / "base", tmp_path / "empty"])
    with pytest.raises(TwinIOError, match="no workspace"):
        compare_runs(tmp_path / "empty", ["a", "b"])


def test_retention_basins_left_out_of_flooded_area(tmp_path):
    """Cells inside a retention basin of any run's scenario do not count as flooded, in every run alike."""
    from twin.workflows import compare_runs

    ws = make_runs(tmp_path)
    scen = ws / "runs" / "plan" / "scenario.json"
    basin = {"type": "retention_basin", "depth_m": 1.0,
             "area": {"type": "Polygon", "coordinates": [[[0, 10], [4, 10], [4, 12], [0, 12], [0, 10]]]}}
    scen.write_text(json.dumps({"name": "Schwammstadt", "scene": "nowhere", "edits": [basin]}))
    c = compare_runs(ws, ["base", "plan"], footprints=footprints())
    ind = c.indicators
    # the basin covers the top-row cells with centres (1, 11) and (3, 11)
    assert ind.loc["flooded_area_gt_0.1m", "base"] == 9 * CELL_M2
    assert ind.loc["flooded_area_gt_0.5m", "base"] == 4 * CELL_M2
    assert ind.loc["flooded_area_gt_0.3m", "plan"] == 4 * CELL_M2
    assert "outside retention basins" in ind.loc["flooded_area_gt_0.1m", "label"]
    assert any("retention basin" in n for n in c.notes)
