"""Heat workflow and CLI on a small synthetic DSM; air-temperature fallbacks; scenario bounds."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from twin.errors import TwinValueError
from twin.sim.heat import fit_air_temperature, scenario_delta
from twin.sim.heat.model import read_sensors_table

T = Affine(2.0, 0, 500000.0, 0, -2.0, 5800000.0)  # EPSG:25833, Berlin


def _dsm(tmp_path):
    rng = np.random.default_rng(1)
    z = np.full((80, 80), 35.0, np.float32)
    for _ in range(25):
        i, j = rng.integers(0, 70, 2)
        z[i:i + 8, j:j + 8] += rng.uniform(6, 25)
    prof = dict(driver="GTiff", height=80, width=80, count=1, dtype="float32", transform=T, crs="EPSG:25833")
    with rasterio.open(tmp_path / "dsm.tif", "w", **prof) as d:
        d.write(z, 1)
    st = pd.DataFrame({"station": [f"s{k}" for k in range(12)], "x": 500010 + rng.uniform(0, 140, 12),
                       "y": 5799990 - rng.uniform(0, 140, 12), "time": "2024-07-01T12:00:00Z"})
    st["temperature"] = 28 + rng.normal(0, 0.7, 12)
    st.loc[len(st)] = ["far", 600000.0, 5700000.0, "2024-07-01T12:00:00Z", 30.0]
    st.to_csv(tmp_path / "sensors.csv", index=False)
    return z


def _args(**kw):
    from twin.cli import sim_heat

    ap = argparse.ArgumentParser()
    sim_heat.add_parser(ap.add_subparsers())
    argv = ["heat"] + [a for k, v in kw.items() for a in ([f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)]))]
    return ap.parse_args(argv)


def test_cli_writes_the_run_folder(tmp_path, capsys):
    from twin.cli import sim_heat

    _dsm(tmp_path)
    args = _args(dsm=tmp_path / "dsm.tif", out=tmp_path / "run", sensors=tmp_path / "sensors.csv",
                 time="2024-07-01T12:00:00Z", directions=16, radius=60)
    assert sim_heat.run(args) == 0
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"svf.tif", "shadow.tif", "air_temperature.tif", "uhi.tif", "air_temperature_se.tif", "utci.tif",
            "result.nc", "run.json"} <= names
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "far" in " ".join(run["notes"])  # the sensor outside the grid is named
    assert set(run["air_temperature"]["loo_rmse_k"]) == {"rk", "mean", "idw"}
    with rasterio.open(tmp_path / "run" / "svf.tif") as s:
        assert "cosine" in s.tags()["svf_definition"]
    assert sim_heat.run(args) == 2  # no silent overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_cli_svf_only_and_no_readings_in_hour(tmp_path, capsys):
    from twin.cli import sim_heat

    _dsm(tmp_path)
    assert sim_heat.run(_args(dsm=tmp_path / "dsm.tif", out=tmp_path / "r1", svf_only=True, directions=8, radius=20)) == 0
    assert sim_heat.run(_args(dsm=tmp_path / "dsm.tif", out=tmp_path / "r2", sensors=tmp_path / "sensors.csv",
                              time="2024-07-02T12:00:00Z", directions=8, radius=20)) == 2
    assert "no readings in the hour" in capsys.readouterr().err


def test_fallbacks_are_flagged():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 5000, (2, 20))
    p = rng.random((20, 2))
    t = 20 + 3 * p[:, 0] + rng.normal(0, 0.1, 20)
    m = fit_air_temperature(x, y, t, p, ["imperviousness_500m", "tree_canopy_500m"], night=False)
    assert m.method == "regression_kriging" and m.coef[0] == pytest.approx(3, abs=0.6) and m.coef[1] <= 0
    m = fit_air_temperature(x[:9], y[:9], t[:9], p[:9], ["imperviousness_500m", "tree_canopy_500m"], night=False)
    assert m.predictors == ["imperviousness_500m"] and "support 1 predictor" in m.notes[0]
    m = fit_air_temperature(x[:7], y[:7], t[:7], p[:7], ["imperviousness_500m"], night=False)
    assert m.method == "ordinary_kriging"
    m = fit_air_temperature(x[:3], y[:3], t[:3], p[:3], ["imperviousness_500m"], night=False)
    assert m.method == "idw" and "inverse-distance" in m.notes[-1]
    with pytest.raises(TwinValueError, match="no station"):
        fit_air_temperature([], [], [], None, [], night=True)


def test_sign_constraint_holds_against_the_data():
    """Data that say 'sealing cools' cannot give a negative sealing coefficient (physics wins)."""
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 5000, (2, 20))
    p = rng.random((20, 1))
    m = fit_air_temperature(x, y, 20 - 2 * p[:, 0], p, ["imperviousness_500m"], night=True)
    assert m.coef[0] == 0.0


def test_scenario_delta_signs_and_bounds():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 5000, (2, 20))
    p = rng.random((20, 1))
    m = fit_air_temperature(x, y, 20 + 4 * p[:, 0], p, ["imperviousness_500m"], night=True)
    d, info = scenario_delta(m, {"imperviousness_500m": np.array([-0.3, -5.0]), "green_roof": np.array([1, 1])})
    assert d[0] < 0 and d[1] == -2.1  # unsealing cools; clipped to the 2.1 K night spread (Ziter et al. 2019)
    assert info["ignored"] == ["green_roof"] and info["cells_clipped"] == 1


def test_sensor_table_needs_columns(tmp_path):
    (tmp_path / "s.csv").write_text("name,x,y,t\n")
    with pytest.raises(TwinValueError, match="temperature"):
        read_sensors_table(tmp_path / "s.csv")


def test_sensor_table_drops_flagged_readings(tmp_path):
    (tmp_path / "s.csv").write_text("station,x,y,time,temperature,flags\n"
                                    "a,0,0,2024-07-01T12:10:00Z,25.0,0\na,0,0,2024-07-01T12:20:00Z,80.0,1\n"
                                    "b,5,5,2024-07-01T12:10:00Z,26.0,4\n")
    df = read_sensors_table(tmp_path / "s.csv", time="2024-07-01T12:00:00Z")
    assert list(df.station) == ["a"] and df.temperature.iloc[0] == 25.0
