"""twin.workflows.run and registry: runs of scenarios on a synthetic workspace (results move the right way
by plausible amounts, re-runs are bit-identical, reuse, cancel, interrupted runs) and one end-to-end run
on the bundled Munich sample (run folder, registry record, tiles manifest)."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from twin.errors import TwinValueError
from twin.grid import TerrainRaster
from twin.workflows import RunNotFoundError, RunRegistry, building_results, execute_run, run_scenario

from .common import SAMPLES
from .test_grid import CRS, synthetic_scene

X0, Y0 = 691000.0, 5336000.0
W, H = 80, 80   # metres


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]}


def make_workspace(root: Path) -> Path:
    """A workspace with scene ``synth``: an 80 x 80 m valley draining south (2 % down-valley, 5 % side slopes
    towards the centre line x = 40 m), two flat-roofed buildings on the west slope, land cover grass."""
    rows, cols = H, W
    yy = np.arange(rows)[::-1, None] + 0.5
    xx = np.arange(cols)[None, :] + 0.5
    z = (100.0 + 0.02 * yy + 0.05 * np.abs(xx - 40.0)).astype(np.float32)
    terrain = TerrainRaster(z, Affine(1, 0, X0, 0, -1, Y0 + rows), CRS)
    b0 = ([(X0 + 6, Y0 + 44), (X0 + 26, Y0 + 44), (X0 + 26, Y0 + 64), (X0 + 6, Y0 + 64)], [], 100.0, 9.0)
    b1 = ([(X0 + 6, Y0 + 12), (X0 + 26, Y0 + 12), (X0 + 26, Y0 + 30), (X0 + 6, Y0 + 30)], [], 100.0, 15.0)
    scene = synthetic_scene([b0, b1], terrain=terrain)
    scene.attributes["roofType"] = ["1000", "1000"]
    scene.origin = np.array([X0 + 40.0, Y0 + 40.0, 100.0])   # the local frame of the tiles
    ws = root / "ws"
    scene.save(ws / "scenes" / "synth")
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("runs"))


STORM = {"type": "design_storm", "return_period_a": 100, "duration_min": 30, "depth_mm": 40, "shape": "block"}
HOT = {"type": "hot_day", "time": "2025-07-15T15:00:00+02:00", "air_temperature_c": 32.0, "use_sensors": False}
SEALED = {"type": "reseal", "landcover": "sealed", "area": square(X0, Y0, X0 + W, Y0 + H), "label": "all sealed"}


def scenario(name, edits=(), *, models=("heavyrain",), rain=STORM, heat=None, **hr):
    params = {"duration_s": 2700, "output_interval_s": 900, **hr}
    return {"name": name, "scene": "synth", "resolution_m": 2.0, "edits": list(edits),
            "forcing": {"rain": rain, **({"heat": heat} if heat else {})}, "models": list(models),
            "parameters": {"heavyrain": params, "heat": {"directions": 8, "radius_m": 60}}}


def balance(ws, rec) -> dict:
    return json.loads((Path(rec.run_dir) / "heavyrain" / "run.json").read_text())["water_balance"]


def max_depth(rec) -> np.ndarray:
    with xr.open_dataset(Path(rec.run_dir) / "heavyrain" / "result.nc") as ds:
        return ds["max_depth"].to_numpy()


# ============================================================================================ registry
def test_registry_create_update_list_cancel_and_find(tmp_path):
    reg = RunRegistry(tmp_path)
    a = reg.create(scenario_id="s", scenario_hash="h1", models=["heavyrain"], inputs={"scene": "x"}, version="v1")
    b = reg.create(scenario_id="s", scenario_hash="h1", models=["heavyrain", "heat"], version="v1")
    assert a.status == "queued" and a.id.startswith("s-") and a.run_dir.endswith(f"runs/{a.id}")
    assert [r.id for r in reg.list()] == [b.id, a.id]
    reg.update(a.id, status="done", progress=1.0, timings={"total_s": 1.5})
    Path(a.run_dir).mkdir(parents=True)
    assert reg.find_done("h1", ["heavyrain"], inputs={"scene": "x"}, version="v1").id == a.id
    assert reg.find_done("h1", ["heavyrain"], inputs={"scene": "y"}) is None
    assert reg.find_done("h1", ["heavyrain"], version="v2") is None
    assert reg.find_done("h1", ["heat", "heavyrain"]) is None          # b is not done
    assert reg.get(a.id).timings == {"total_s": 1.5}
    c = reg.request_cancel(b.id)                                        # queued: cancelled at once
    assert c.status == "cancelled" and c.cancel_requested and c.finished
    with pytest.raises(RunNotFoundError, match="no run 'nope'"):
        reg.get("nope")
    with pytest.raises(TwinValueError, match="status 'bogus'"):
        reg.update(a.id, status="bogus")
    d = reg.create(scenario_id="t", scenario_hash="h2", models=["heat"])
    reg.update(d.id, status="running")
    e = reg.create(scenario_id="t", scenario_hash="h2", models=["heat"])
    assert sorted(reg.mark_interrupted()) == sorted([d.id, e.id])
    assert {reg.get(d.id).status, reg.get(e.id).status} == {"interrupted"}
    assert reg.get(a.id).status == "done"
    with reg._connect() as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _hammer(path: str, run_id: str, n: int) -> None:
    reg = RunRegistry(path)
    for i in range(n):
        reg.update(run_id, progress=i / n, message=f"step {i}")
        reg.get(run_id)


def test_registry_is_safe_for_several_processes(tmp_path):
    reg = RunRegistry(tmp_path)
    ids = [reg.create(scenario_id=f"p{i}", scenario_hash="h", models=["heat"]).id for i in range(3)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), rid, 60)) for rid in ids]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert all(reg.get(rid).message == "step 59" for rid in ids)


# ============================================================================================ runs
def test_run_folder_registry_and_reuse(ws):
    sc = scenario("plain")
    rec = run_scenario(ws, sc, tiles=False)
    assert rec.status == "done" and rec.progress == 1.0
    d = Path(rec.run_dir)
    for f in ("scenario.json", "request.json", "run.json", "grid.nc", "heavyrain/result.nc", "buildings.parquet"):
        assert (d / f).is_file(), f
    assert set(rec.inputs) == {"scene", "grid"} and rec.version.startswith("0.") and "+src." in rec.version
    assert {"grid_s", "heavyrain_s", "total_s"} <= set(rec.timings)
    assert abs(rec.water_balance["relative_error"]) < 1e-6
    assert (ws / "scenarios" / "plain.json").is_file()
    again = run_scenario(ws, sc, tiles=False)
    assert again.id == rec.id                                   # reused
    forced = run_scenario(ws, sc, tiles=False, reuse=False)
    assert forced.id != rec.id
    # a forced re-run gives bit-identical arrays
    for sub in ("heavyrain/result.nc", "grid.nc"):
        with xr.open_dataset(d / sub) as a, xr.open_dataset(Path(forced.run_dir) / sub) as b:
            for v in a.data_vars:
                assert np.array_equal(a[v].values, b[v].values, equal_nan=True), (sub, v)
    table = building_results(ws, rec.id)
    assert table.crs.to_epsg() == 4326 and list(table["gml_id"]) == ["b0", "b1"]
    assert (table["heavyrain_max_depth_m"] >= 0).all() and table.to_crs(25832).geometry.area.gt(300).all()


def test_unsealing_lowers_runoff(ws):
    base = run_scenario(ws, scenario("sealed", [SEALED]), tiles=False)
    unseal = {"type": "unseal", "landcover": "grass", "area": square(X0 + 30, Y0, X0 + 80, Y0 + 80)}
    green = run_scenario(ws, scenario("unsealed east", [SEALED, unseal]), tiles=False)
    b0, b1 = balance(ws, base), balance(ws, green)
    runoff0 = b0["outflow_m3"] + b0["storage_m3"]
    runoff1 = b1["outflow_m3"] + b1["storage_m3"]
    assert b0["infiltration_m3"] == pytest.approx(0.0, abs=1e-6)      # sealed: nothing soaks in
    # grass (Green-Ampt, loam) over 5 of 8 columns of cells takes part of the 40 mm
    unsealed_area = 50 * 80 - 0
    assert 0.05 * 0.040 * unsealed_area < runoff0 - runoff1 <= 0.040 * unsealed_area
    assert b1["outflow_m3"] < b0["outflow_m3"]


def test_retention_basin_lowers_downstream_max_depth(ws):
    base = run_scenario(ws, scenario("valley", [SEALED]), tiles=False)
    basin = {"type": "retention_basin", "area": square(X0 + 30, Y0 + 40, X0 + 50, Y0 + 60), "depth_m": 1.0}
    with_basin = run_scenario(ws, scenario("valley basin", [SEALED, basin]), tiles=False)
    m0, m1 = max_depth(base), max_depth(with_basin)
    downstream = (slice(30, 40), slice(15, 25))            # rows 30-39 (y 0..20 m), x 30..50 m: the valley below
    assert np.nanmax(m1[downstream]) < np.nanmax(m0[downstream]) - 0.005
    b1 = balance(ws, with_basin)
    # the basin holds at most its 400 m3; what the valley above it sends (~1/4 of 256 m3 of rain) stays in it
    assert 20.0 < b1["storage_m3"] - balance(ws, base)["storage_m3"] < 400.0


def test_green_roofs_retain_their_storage(ws):
    base = run_scenario(ws, scenario("roofs", [SEALED]), tiles=False)
    roofs = {"type": "green_roofs", "where": [{"attribute": "roofType", "value": "1000"}], "retention_mm": 20}
    green = run_scenario(ws, scenario("green roofs", [SEALED, roofs]), tiles=False)
    b0, b1 = balance(ws, base), balance(ws, green)
    roof_area = 20 * 20 + 20 * 18                           # m2, both roofs (2 m cells on whole-metre outlines)
    held = (b0["outflow_m3"] + b0["storage_m3"]) - (b1["outflow_m3"] + b1["storage_m3"])
    assert held == pytest.approx(roof_area * 0.020, rel=0.05)           # the first 20 mm on every roof
    t = building_results(ws, green.id)
    assert t["green_roof"].all() and (t["roof_retention_mm"] == 20).all()


def test_trees_lower_air_temperature_and_utci(ws):
    trees = {"type": "trees", "trees": [{"x": X0 + x, "y": Y0 + y, "crown_radius_m": 5, "height_m": 12}
                                        for x in (40, 52, 64) for y in (10, 24, 38, 52, 66)]}
    base = run_scenario(ws, scenario("hot", models=["heat"], heat=HOT), tiles=False)
    shaded = run_scenario(ws, scenario("hot trees", [trees], models=["heat"], heat=HOT), tiles=False)
    with xr.open_dataset(Path(base.run_dir) / "heat" / "result.nc") as a, \
            xr.open_dataset(Path(shaded.run_dir) / "heat" / "result.nc") as b:
        ta0, ta1 = a["air_temperature"].values, b["air_temperature"].values
        u0, u1 = a["utci"].values, b["utci"].values
        assert np.array_equal(b["baseline_air_temperature"].values, ta0)   # same grid, same weather
    with xr.open_dataset(Path(shaded.run_dir) / "grid.nc") as g:
        under = g["tree_canopy_height"].values > 0
    import rasterio

    with rasterio.open(Path(shaded.run_dir) / "heat" / "utci.tif") as src:      # the GeoTIFFs say the same
        assert np.array_equal(src.read(1), u1, equal_nan=True)
    with rasterio.open(Path(shaded.run_dir) / "heat" / "baseline_utci.tif") as src:
        assert np.array_equal(src.read(1), u0, equal_nan=True)
    dta = np.nanmean(ta1[under] - ta0[under])
    dutci = np.nanmean(u1[under] - u0[under])
    assert -3.5 <= dta < -0.05                              # cooler by day, within the published block-scale bound
    assert np.nanmax(ta1 - ta0) <= 1e-6                     # trees warm nothing
    assert -20.0 < dutci < -1.0                             # shade under the crowns: UTCI several K lower


def test_cancel_stops_a_run_and_keeps_no_tiles(ws):
    reg = RunRegistry(ws)
    rec = run_scenario(ws, scenario("to cancel", [SEALED]), register_only=True)
    assert reg.get(rec.id).status == "queued"
    asked = []

    def progress(fraction, message):
        if "heavy rain" in message and not asked:
            asked.append(reg.request_cancel(rec.id).status)

    out = execute_run(ws, rec.id, progress)
    assert out.status == "cancelled" and asked == ["running"]
    assert not (ws / "tiles" / "runs" / rec.id).exists()
    assert json.loads((Path(rec.run_dir) / "run.json").read_text())["status"] == "cancelled"
    assert run_scenario(ws, scenario("to cancel", [SEALED]), tiles=False).id != rec.id   # a cancelled run is not reused


def test_a_failing_run_is_recorded(ws):
    rec = run_scenario(ws, {**scenario("broken"), "scene": "synth"}, register_only=True)
    (Path(rec.run_dir) / "scenario.json").write_text(json.dumps({**scenario("broken"), "scene": "missing"}))
    with pytest.raises(TwinValueError, match="scene 'missing' is not in"):
        execute_run(ws, rec.id)
    r = RunRegistry(ws).get(rec.id)
    assert r.status == "failed" and "scene 'missing'" in r.error and (Path(r.run_dir) / "error.log").is_file()


def test_execute_run_runs_in_a_spawned_process(ws):
    from concurrent.futures import ProcessPoolExecutor

    rec = run_scenario(ws, scenario("pool", models=["screening"]), register_only=True, tiles=False)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        out = pool.submit(execute_run, str(ws), rec.id).result(timeout=120)
    assert out.status == "done" and (Path(out.run_dir) / "screening" / "buildings_exposure.parquet").is_file()


# ============================================================================================ Munich sample
def test_end_to_end_on_the_munich_sample(tmp_path):
    from twin.tiles import check_tileset
    from twin.workflows import import_city

    ws = tmp_path / "ws"
    import_city(sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml")), ws / "scenes" / "muenchen-tum",
                crs="EPSG:25832+7837", terrain=sorted((SAMPLES / "muenchen-tum" / "dgm1").glob("*.tif")))
    sc = {"name": "Munich smoke", "scene": "muenchen-tum", "resolution_m": 8.0,
          "edits": [{"type": "trees", "trees": [{"x": 691020.0, "y": 5336100.0, "crown_radius_m": 6, "height_m": 12}]},
                    {"type": "green_roofs", "buildings": ["DEBY_LOD2_4959462"]}],
          "forcing": {"rain": {"type": "design_storm", "sri": 7, "duration_min": 10, "depth_mm": 25},
                      "heat": HOT},
          "parameters": {"heavyrain": {"duration_s": 900, "output_interval_s": 300},
                         "heat": {"directions": 8, "radius_m": 100}}}
    seen = []
    rec = run_scenario(ws, sc, progress=lambda f, m: seen.append((f, m)))
    assert rec.status == "done" and rec.models == ["heavyrain", "screening", "heat"]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    d = Path(rec.run_dir)
    for f in ("grid.nc", "heavyrain/result.nc", "heavyrain/max_depth.tif", "screening/buildings_exposure.parquet",
              "screening/flow_paths.gpkg", "heat/result.nc", "heat/utci.tif", "buildings.parquet", "run.json"):
        assert (d / f).is_file(), f
    doc = json.loads((d / "run.json").read_text())
    assert doc["status"] == "done" and doc["edits"]["entries"][1]["buildings"] == ["DEBY_LOD2_4959462"]
    assert any("no local readings" in n for n in doc["notes"])
    reg = RunRegistry(ws).get(rec.id)
    assert reg.status == "done" and {"heavyrain_s", "screening_s", "heat_s", "tiles_s"} <= set(reg.timings)
    tiles = ws / "tiles" / "runs" / rec.id
    manifest = json.loads((tiles / "manifest.json").read_text())
    run = next(r for r in manifest["runs"] if r["id"] == rec.id)
    fields = {lay["field"] for lay in run["layers"]}
    assert {"max_depth", "arrival_time", "flow_accumulation", "air_temperature", "utci", "svf"} <= fields
    assert [s["time_s"] for s in run["snapshots"]] == [300.0, 600.0, 900.0]
    for s in run["snapshots"]:
        assert (tiles / s["layers"][0]["tileset"]).is_file()
    assert f"{rec.id}_heavyrain_max_depth_m" in run["building_properties"]
    assert check_tileset(tiles / "tileset.json") == []
    assert check_tileset(tiles / f"runs/{rec.id}/max_depth/tileset.json") == []
    table = building_results(ws, rec.id)
    assert len(table) == 4 and table["green_roof"].sum() == 1 and table["heat_utci_c"].notna().all()
    assert not list((ws / "tiles" / "runs").glob(".*"))          # no staging folders left behind


# ============================================================================================ sensor forcing
def _store(ws: Path, readings: dict[str, tuple[float, float, str, str, list]]) -> None:
    """A sensor store ``ws/sensors.sqlite``: name -> (x, y, property, unit, [(t_end ISO, value), ...]),
    positions in the scene CRS; readings are 5-minute (rain) or 10-minute (temperature) sums/means."""
    import pandas as pd
    from pyproj import Transformer

    from twin.sensors import open_store

    to_ll = Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True)
    with open_store(ws / "sensors.sqlite") as store:
        for name, (x, y, prop, unit, rows) in readings.items():
            lon, lat = to_ll.transform(x, y)
            ds = store.upsert_datastream(source="test", iot_id=name, name=name, property=prop, unit=unit,
                                         thing=name, lon=lon, lat=lat)
            step = pd.Timedelta("5min" if prop == "precipitation" else "10min")
            store.insert(ds, [(int((pd.Timestamp(t) - step).value // 1000), int(pd.Timestamp(t).value // 1000), v,
                               None, 0, f"{name}-{i}") for i, (t, v) in enumerate(rows)])


def test_observed_rain_from_the_sensor_store(tmp_path):
    ws = make_workspace(tmp_path)
    t = ["2024-06-01T14:05:00Z", "2024-06-01T14:10:00Z", "2024-06-01T14:15:00Z"]
    _store(ws, {"g1": (X0 + 10, Y0 + 10, "precipitation", "mm", list(zip(t, [4.0, 6.0, 0.0]))),
                "g2": (X0 + 60, Y0 + 30, "precipitation", "mm", list(zip(t, [2.0, 2.0, 0.0])))})
    obs = {"type": "observed", "start": "2024-06-01T14:00:00Z", "end": "2024-06-01T14:15:00Z"}
    rec = run_scenario(ws, scenario("observed", [SEALED], rain=obs, duration_s=1800), tiles=False)
    assert "rain_readings" in rec.inputs
    # uniform: the gauges' mean, (4 + 2) / 2 + (6 + 2) / 2 = 7 mm on 6400 m2
    assert balance(ws, rec)["rain_m3"] == pytest.approx(6400 * 0.007, rel=1e-9)
    idw = run_scenario(ws, scenario("observed idw", [SEALED], rain={**obs, "distribution": "idw"}, duration_s=1800),
                       tiles=False)
    rain = balance(ws, idw)["rain_m3"]
    assert 6400 * 0.004 < rain < 6400 * 0.010 and rain != pytest.approx(6400 * 0.007, rel=1e-6)
    # new readings for the event change the inputs: the finished run is not reused
    _store(ws, {"g3": (X0 + 40, Y0 + 40, "precipitation", "mm", [("2024-06-01T14:05:00Z", 9.0)])})
    assert run_scenario(ws, scenario("observed", [SEALED], rain=obs, duration_s=1800), tiles=False).id != rec.id


def test_hot_day_uses_sensor_readings_inside_the_scene(tmp_path):
    ws = make_workspace(tmp_path)
    hour = ["2025-07-15T13:10:00Z", "2025-07-15T13:20:00Z"]
    _store(ws, {f"t{i}": (X0 + x, Y0 + y, "air_temperature", "degC", list(zip(hour, [v, v + 0.2])))
                for i, (x, y, v) in enumerate([(10, 10, 31.0), (70, 20, 32.5), (40, 70, 33.0), (60, 60, 32.0)])})
    heat = {**HOT, "use_sensors": True}
    rec = run_scenario(ws, scenario("sensed", models=["heat"], heat=heat), tiles=False)
    info = json.loads((Path(rec.run_dir) / "heat" / "run.json").read_text())
    assert info["local_readings"] is True and info["air_temperature"]["stations"] == 4
    assert "heat_readings" in rec.inputs
    doc = json.loads((Path(rec.run_dir) / "run.json").read_text())
    assert not any("no local readings" in n for n in doc["notes"])


def test_cli_scenario_run(ws, tmp_path, capsys):
    from twin.cli.main import main

    f = tmp_path / "cli.json"
    f.write_text(json.dumps(scenario("cli run", models=["screening"])))
    assert main(["scenario", "run", str(ws), str(f), "--no-progress", "--no-tiles"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run cli-run-") and ": done in " in out
    assert main(["scenario", "run", str(ws), "cli-run", "--json", "--no-progress", "--no-tiles"]) == 0   # by id: reused
    rec = json.loads(capsys.readouterr().out)
    assert rec["status"] == "done" and out.startswith(f"run {rec['id']}:")
    f.write_text(json.dumps({**scenario("cli run"), "resolution_m": -1}))
    assert main(["scenario", "run", str(ws), str(f), "--no-progress"]) == 2
    assert "resolution_m: Input should be greater than 0" in capsys.readouterr().err
    assert main(["scenario", "run", str(ws), "nope", "--no-progress"]) == 2
    assert "neither a scenario file nor a scenario id" in capsys.readouterr().err


@pytest.mark.slow
def test_sample_adaptation_helps_where_it_was_placed(tmp_path):
    """The shipped scenarios at their own 2 m (a few minutes): the swale lowers the water against the main
    building (1.32 -> 1.05 m when measured), trees lower UTCI under their crowns, the flat roof is green."""
    from twin.scenario import load_scenario
    from twin.workflows import import_city

    ws = tmp_path / "ws"
    import_city(sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml")), ws / "scenes" / "muenchen-tum",
                crs="EPSG:25832+7837", terrain=sorted((SAMPLES / "muenchen-tum" / "dgm1").glob("*.tif")))
    runs = {n: run_scenario(ws, load_scenario(SAMPLES / "scenarios" / f"{n}.json"), tiles=False)
            for n in ("baseline", "adaptation")}
    t0, t1 = (building_results(ws, runs[n].id).set_index("gml_id") for n in ("baseline", "adaptation"))
    main = "DEBY_LOD2_4959457"
    assert t1.loc[main, "heavyrain_max_depth_m"] < t0.loc[main, "heavyrain_max_depth_m"] - 0.1
    assert t1["green_roof"].sum() == 1 and t1.loc["DEBY_LOD2_4959462", "green_roof"]
    with xr.open_dataset(Path(runs["adaptation"].run_dir) / "heat" / "result.nc") as h:
        d_utci = (h["utci"] - h["baseline_utci"]).values
    with xr.open_dataset(Path(runs["adaptation"].run_dir) / "grid.nc") as g:
        under = g["tree_canopy_height"].values > 0
    assert np.nanmean(d_utci[under]) < -2.0
