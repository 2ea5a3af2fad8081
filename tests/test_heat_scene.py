"""``twin sim heat SCENE_DIR``: predictor-only mode, the sensor-store path (with QC), scenario edits.

Scene: the shipped München sample (4 LoD2 buildings + DGM1; data/samples/README.md), imported once per
module. It has no public street sensors, which is what the predictor-only mode is for; the store
test places synthetic stations inside its extent.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

from tests.common import SAMPLES
from twin.errors import TwinValueError
from twin.sim.heat.airtemp import qc_readings
from twin.sim.heat.predictors import PRIOR_COEFFICIENTS, HeatWeather, predictor_maps, prior_model

HOT_NOON = "2026-07-15T11:00:00Z"  # 13:00 CEST, sun ~62 deg over Munich


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    from twin.cli.main import main

    out = tmp_path_factory.mktemp("heat_scene") / "scene"
    lod2 = sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml"))
    dgm = sorted((SAMPLES / "muenchen-tum" / "dgm1").glob("*.tif"))
    assert main(["import", *map(str, lod2), "--terrain", *map(str, dgm), "--crs", "EPSG:25832+7837",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def grid(scene_dir):
    from twin.scene import Scene

    return Scene.load(scene_dir).to_grid(2.0)


def heat(*argv) -> int:
    from twin.cli.main import main

    return main(["sim", "heat", *map(str, argv)])


def tags(path):
    with rasterio.open(path) as s:
        return s.tags(), s.read(1)


def test_scene_dir_predictor_only_is_flagged(scene_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert heat(scene_dir, "--out", out, "--time", HOT_NOON, "--air-temperature", 31, "--wind", 1.5, "--rh", 40,
                "--resolution", 2, "--directions", 16, "--radius", 100) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["air_temperature_method"] == "predictor_only_prior" and run["local_readings"] is False
    assert any("no local readings" in n for n in run["notes"])
    assert run["uhi_reference"]["c"] == 31.0 and run["weather"]["ta_ref_c"] == 31.0
    for base in ("imperviousness", "building_volume_density", "svf", "tree_canopy", "water_fraction"):
        assert {f"{base}_{r}m" for r in (50, 100, 250, 500)} <= set(run["predictors_available"])
    assert "elevation" in run["predictors_available"]
    t, ta = tags(out / "air_temperature.tif")
    assert t["air_temperature_method"] == "predictor_only_prior" and "none" in t["local_readings"]
    # day prior: no trees in the sample, so only the lapse rate (-6.5 K/km over a few metres) moves Ta
    assert np.nanmax(np.abs(ta - 31.0)) < 0.3
    _, u = tags(out / "utci.tif")
    _, tmrt = tags(out / "tmrt.tif")
    assert np.nanmax(tmrt) - np.nanmin(tmrt) > 15  # sun vs building shade at noon
    assert 30 < np.nanmedian(u) < 46  # strong to very strong heat stress on an open square at 31 degC
    assert (out / "contribution_elevation_above_reference.tif").exists()
    assert "predictor_only_prior" in capsys.readouterr().out


def test_predictor_only_night_warms_the_built_volume(grid):
    preds = predictor_maps(grid, radii_m=(100, 500))
    w = HeatWeather.coerce({"time": "2026-07-15T22:00:00Z", "ta_ref_c": 20.0})
    m, maps = prior_model(preds, w, night=True)
    assert m.method == "predictor_only_prior" and "no local readings" in m.notes[-1]
    coef = dict(zip(m.predictors, m.coef))
    assert coef["building_volume_density_500m"] == PRIOR_COEFFICIENTS["night"]["building_volume_density_500m"][0] > 0
    ny, nx = grid.shape
    yy, xx = np.mgrid[:ny, :nx]
    cx, cy = grid.transform @ (xx + 0.5, yy + 0.5)
    pr = m.predict(cx.ravel(), cy.ravel(), np.column_stack([maps[n].ravel() for n in m.predictors]))
    ta = pr["air_temperature"].reshape(grid.shape)
    bvd = maps["building_volume_density_500m"]
    assert np.corrcoef(ta.ravel(), bvd.ravel())[0, 1] > 0.9  # warmer where more built volume
    assert np.allclose(pr["se"], 1.96)  # PRIOR_RMSE_K["night"]


def test_weather_is_checked():
    with pytest.raises(TwinValueError, match="reference air temperature"):
        HeatWeather.coerce({"time": HOT_NOON})
    with pytest.raises(TwinValueError, match="rh_pct"):
        HeatWeather.coerce({"time": HOT_NOON, "ta_ref_c": 30, "rh_pct": 140})
    w = HeatWeather.coerce({"time": HOT_NOON, "air_temperature_c": 30, "wind_speed_m_per_s": 3, "relative_humidity": 55})
    assert (w.ta_ref_c, w.wind_m_per_s, w.rh_pct) == (30, 3, 55)


def test_qc_readings_leaves_out_flags_range_and_outliers():
    t = np.array([25.1, 25.3, 24.9, 25.0, 25.4, 25.2, 33.0, 61.0, np.nan, 25.0])
    flags = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 4])
    keep, counts = qc_readings(t, flags=flags)
    assert list(np.flatnonzero(~keep)) == [6, 7, 8, 9]
    assert counts == {"missing": 1, "flagged": 1, "range": 1, "spatial_outlier": 1}


def _store_with_stations(path, grid, hour):
    """14 stations on a grid inside the scene; Ta rises with the building volume around them; one station
    reads 9 K too warm (spatial outlier), one is outside the scene."""
    from pyproj import Transformer

    from twin.sensors._model import parse_instant_us
    from twin.sensors.store import open_store

    w, s, e, n = grid.bounds
    rng = np.random.default_rng(4)
    xs = rng.uniform(w + 20, e - 20, 14)
    ys = rng.uniform(s + 20, n - 20, 14)
    xs = np.append(xs, e + 5000)  # outside
    ys = np.append(ys, n)
    lon, lat = Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True).transform(xs, ys)
    t0 = parse_instant_us(hour)
    store = open_store(path)
    for k in range(len(xs)):
        ds = store.upsert_datastream(source="t", iot_id=str(k), name=f"T{k}", property="air_temperature", unit="degC",
                                     thing=f"st{k}", lon=float(lon[k]), lat=float(lat[k]))
        base = 24.0 + 0.3 * np.sin(k) + (9.0 if k == 3 else 0.0)
        rows = [(t0 + (m - 6) * 600_000_000, t0 + (m - 5) * 600_000_000, base + 0.02 * m, None, 0, None)
                for m in range(18)]  # 10-min readings from an hour before to two hours after
        store.insert(ds, rows)
    if hasattr(store, "close"):
        store.close()


def test_scene_dir_with_sensor_store_runs_qc(scene_dir, grid, tmp_path):
    db = tmp_path / "sensors.sqlite"
    hour = "2026-07-15T11:00:00Z"
    _store_with_stations(db, grid, hour)
    out = tmp_path / "run"
    assert heat(scene_dir, "--out", out, "--sensors", db, "--time", hour, "--resolution", 2, "--directions", 8,
                "--radius", 60, "--rural-station", "st0") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["local_readings"] is True and run["air_temperature_method"] in ("regression_kriging", "ordinary_kriging")
    assert any("st14" in n for n in run["notes"])  # outside the grid
    # the 9 K outlier is flagged in the store by twin.sensors.qc (spatial) and never reaches the fit
    from twin.sensors.store import open_store

    flagged = open_store(db).series("air_temperature")
    st3 = flagged[flagged["thing"] == "st3"]
    assert len(st3) and (st3["flags"] != 0).all()
    assert run["air_temperature"]["stations"] == 13
    assert run["uhi_reference"]["what"] == "rural station st0"
    assert set(run["air_temperature"]["loo_rmse_k"]) == {"rk", "mean", "idw"}
    _, ta = tags(out / "air_temperature.tif")
    assert 23 < np.nanmin(ta) and np.nanmax(ta) < 25.5


def test_table_sensors_qc_and_rural_station(grid, tmp_path):
    from twin.sim.heat.model import run_heat

    w, s, e, n = grid.bounds
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"station": [f"s{k}" for k in range(10)], "x": rng.uniform(w + 10, e - 10, 10),
                       "y": rng.uniform(s + 10, n - 10, 10), "temperature": 22 + rng.normal(0, 0.2, 10)})
    df.loc[4, "temperature"] = 35.0
    run = run_heat(grid=grid, out_dir=tmp_path / "r", sensors=df, directions=8, radius_m=40, rural_station="s0",
                   select_predictors=True)
    assert run["qc"]["left_out"] == ["s4"] and run["qc"]["counts"]["spatial_outlier"] == 1
    sel = run["predictor_selection"]
    # 9 stations: a LOO fold of 8 fits one predictor (5 per predictor + 3), so: none or the first
    assert len(sel["loo_rmse_k"]) == 2 and "[]" in sel["loo_rmse_k"]
    assert sel["loo_rmse_k"][str(sel["chosen"])] == min(sel["loo_rmse_k"].values())
    assert run["uhi_reference"]["c"] == pytest.approx(df.temperature[0])
    with pytest.raises(TwinValueError, match="rural station 'nope'"):
        run_heat(grid=grid, out_dir=tmp_path / "r2", sensors=df, directions=8, radius_m=40, rural_station="nope")


def test_scenario_edits_cool_under_new_trees(scene_dir, grid, tmp_path):
    from twin.sim.heat.edits import apply_heat_edits

    w, s, e, n = grid.bounds
    bh = grid["building_height"]
    free = np.argwhere(bh[40:-40, 40:-40] == 0)[len(np.argwhere(bh[40:-40, 40:-40] == 0)) // 2] + 40
    x, y = grid.transform * (free[1] + 0.5, free[0] + 0.5)
    edits = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"type": "trees", "crown_radius_m": 8, "height_m": 12},
         "geometry": {"type": "Point", "coordinates": [x, y]}},
        {"type": "Feature", "properties": {"type": "green_roof"},
         "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}]}
    edited, report = apply_heat_edits(grid, edits)
    assert report[0]["cells"] == pytest.approx(np.pi * 16, rel=0.25) and report[1]["cells"] == int((bh > 0).sum())
    assert np.all(edited["tree_canopy_height"][bh > 0] == 0)  # never on a building
    (tmp_path / "edits.geojson").write_text(json.dumps(edits))
    out = tmp_path / "run"
    assert heat(scene_dir, "--out", out, "--time", HOT_NOON, "--air-temperature", 31, "--resolution", 2,
                "--directions", 16, "--radius", 100, "--edits", tmp_path / "edits.geojson") == 0
    run = json.loads((out / "run.json").read_text())
    sc = run["scenario"]
    assert sc["delta_air_temperature_k"]["max"] <= 0 and sc["delta_air_temperature_k"]["min"] < 0
    assert sc["delta_air_temperature_k"]["min"] >= -3.5  # bounded by the published day spread
    assert sc["delta_tmrt_k"]["min"] < -15  # shade under the new crowns
    _, du = tags(out / "delta_utci.tif")
    assert np.nanmin(du) < -3 and np.nanmax(du) < 0.5


def test_edits_need_a_known_type(grid):
    from twin.sim.heat.edits import apply_heat_edits

    with pytest.raises(TwinValueError, match="type 'lawn'"):
        apply_heat_edits(grid, [{"type": "Feature", "properties": {"type": "lawn"},
                                 "geometry": {"type": "Point", "coordinates": [0, 0]}}])


def test_solweig_scheme_with_trees(grid, tmp_path):
    """The fuller Tmrt scheme runs on a grid with trees (walls vs crowns from the building-only SVF)."""
    from twin.sim.heat.edits import apply_heat_edits
    from twin.sim.heat.model import run_heat

    w, s, e, n = grid.bounds
    trees, _ = apply_heat_edits(grid, [{"type": "Feature", "properties": {"type": "trees", "height_m": 14},
                                        "geometry": {"type": "Polygon", "coordinates": [[[w + 20, s + 20], [w + 120, s + 20],
                                                                                         [w + 120, s + 80], [w + 20, s + 80],
                                                                                         [w + 20, s + 20]]]}}])
    weather = {"time": HOT_NOON, "ta_ref_c": 31.0}
    runs = {sch: run_heat(grid=trees, out_dir=tmp_path / sch, weather=weather, directions=8, radius_m=60, tmrt_scheme=sch)
            for sch in ("lite", "solweig")}
    assert runs["solweig"]["tmrt_scheme"] == "solweig"
    t = {sch: tags(tmp_path / sch / "tmrt.tif")[1] for sch in runs}
    for sch, tm in t.items():
        assert np.isfinite(tm).all() and 25 < np.nanmin(tm) and np.nanmax(tm) < 80, sch
    assert abs(float(np.nanmedian(t["solweig"] - t["lite"]))) < 8  # two schemes, same physics within a few K


def test_coarse_buffer_mean_matches_the_exact_disc():
    """Large discs are averaged on a coarsened raster (predictors.buffer_mean): within 3 % of the exact
    disc mean everywhere and 1 % at the 99th percentile on a blocky field with 20 % NaN."""
    from twin.sim.heat.geometry import disc_mean
    from twin.sim.heat.predictors import EXACT_DISC_CELLS, buffer_mean

    rng = np.random.default_rng(0)
    a = np.zeros((420, 380))
    for _ in range(90):
        i, j = rng.integers(0, 400, 2)
        a[i:i + 20, j:j + 20] = rng.uniform(0, 30)
    a[rng.random(a.shape) < 0.2] = np.nan
    assert np.array_equal(buffer_mean(a, radius_m=40, cell_m=1.0), disc_mean(a, radius_cells=40), equal_nan=True)
    for r in (2 * EXACT_DISC_CELLS, 150):
        exact, fast = disc_mean(a, radius_cells=r), buffer_mean(a, radius_m=r, cell_m=1.0)
        rel = np.abs(fast - exact) / np.nanmean(exact)
        assert np.nanmax(rel) < 0.03 and np.nanpercentile(rel, 99) < 0.01, r
