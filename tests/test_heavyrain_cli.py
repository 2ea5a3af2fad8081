"""``twin sim heavyrain`` on a bare DEM: outputs, run.json water balance, clear errors before compute."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twin.cli.main import main


@pytest.fixture
def dem(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    y, x = np.mgrid[0:30, 0:40]
    z = (0.01 * x + 0.02 * np.abs(y - 15)).astype(np.float32)
    path = tmp_path / "dem.tif"
    with rasterio.open(path, "w", driver="GTiff", height=30, width=40, count=1, dtype="float32", crs="EPSG:25832",
                       transform=from_origin(500000, 5700000, 2, 2), nodata=-9999) as dst:
        dst.write(z, 1)
    (tmp_path / "gauges.csv").write_text("name,x,y\nA,500010,5699970\n")
    (tmp_path / "inflow.csv").write_text("x,y,time_s,discharge_m3_per_s\n500070,5699970,0,0\n500070,5699970,300,0.5\n"
                                         "500070,5699970,600,0\n")
    return path


def test_cli_runs_on_a_dem_and_writes_the_run_folder(dem, tmp_path):
    out = tmp_path / "run"
    rc = main(["sim", "heavyrain", "--dem", str(dem), "--out", str(out), "--design-storm", "euler2", "--depth-mm", "45",
               "--duration-min", "30", "--duration", "2400", "--inflow", str(tmp_path / "inflow.csv"),
               "--gauges", str(tmp_path / "gauges.csv"), "--boundary", "open", "--output-interval", "300",
               "--no-progress"])
    assert rc == 0
    info = json.loads((out / "run.json").read_text())
    wb = info["water_balance"]
    assert wb["rain_m3"] == pytest.approx(45e-3 * 80 * 60)  # 45 mm on 80 m x 60 m
    assert wb["inflow_m3"] == pytest.approx(150.0)  # triangle 0 -> 0.5 -> 0 m3/s over 600 s
    assert abs(wb["relative_error"]) < 1e-6
    assert info["cell_steps"] > 0 and info["cell_steps_per_s"] > 0
    assert str(dem) in info["input_hashes"]
    import pandas as pd
    import xarray as xr

    g = pd.read_csv(out / "gauges.csv")
    assert list(g.columns) == ["time_s", "name", "depth_m", "wse_m", "speed_m_per_s"]
    with xr.open_dataset(out / "result.nc") as ds:
        assert ds["max_depth"].attrs["units"] == "m" and ds["depth"].sizes["time"] == 8
        assert float(ds["error_volume"][-1]) == pytest.approx(wb["error_m3"])


@pytest.mark.parametrize("extra, message", [
    (["--rain-mm-per-h", "-1", "--rain-duration", "60"], "negative"),
    (["--rain-mm-per-h", "10", "--rain-duration", "60", "--gauges", "BAD"], "outside the domain"),
])
def test_cli_bad_input_fails_before_compute(dem, tmp_path, capsys, extra, message):
    if "BAD" in extra:
        (tmp_path / "bad.csv").write_text("name,x,y\nX,0,0\n")
        extra = [e if e != "BAD" else str(tmp_path / "bad.csv") for e in extra]
    rc = main(["sim", "heavyrain", "--dem", str(dem), "--out", str(tmp_path / "r"), "--no-progress", *extra])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r" / "run.json").exists()


def test_cli_refuses_a_dem_without_crs(tmp_path, capsys):
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1, dtype="float32",
                       transform=from_origin(0, 4, 1, 1)) as dst:
        dst.write(np.zeros((4, 4), np.float32), 1)
    rc = main(["sim", "heavyrain", "--dem", str(path), "--out", str(tmp_path / "r"), "--rain-mm-per-h", "10",
               "--rain-duration", "60", "--no-progress"])
    assert rc == 2 and "no CRS" in capsys.readouterr().err
