"""Ensembles (twin.workflows.ensemble): scenarios x storms as independent tasks, each member computed once."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from twin.errors import TwinValueError
from twin.sim.heavyrain.forcing import RainGrid, uniform_rain
from twin.workflows.ensemble import run_ensemble

from .dask_dems import valleys


def _tif(path, z):
    with rasterio.open(path, "w", driver="GTiff", height=z.shape[0], width=z.shape[1], count=1, dtype="float32",
                       crs="EPSG:25832", transform=Affine(2.0, 0, 500000, 0, -2.0, 5400000), nodata=np.nan) as d:
        d.write(z.astype(np.float32), 1)
    return path


@pytest.fixture
def scenarios(tmp_path):
    z, _ = valleys(24, 30)
    dammed = z.copy()
    dammed[16, :] += 0.6  # a dam across all valleys holds water back
    return {"baseline": _tif(tmp_path / "base.tif", z), "dam": _tif(tmp_path / "dam.tif", dammed)}


def test_ensemble_runs_each_member_once_and_reuses_run_folders(tmp_path, scenarios):
    storms = {"light": uniform_rain(20.0, 300.0), "heavy": uniform_rain(80.0, 300.0),
              "heavy_again": uniform_rain(80.0, 300.0)}
    calls = []
    df = run_ensemble(scenarios, storms, duration_s=400.0, out_dir=tmp_path / "ens", boundary="open",
                      progress=lambda done, total: calls.append(total))
    assert len(df) == 6 and set(df["status"]) == {"run", "same-as"}
    assert (df["status"] == "same-as").sum() == 2 and calls[-1] == 4  # 4 distinct members, 4 tasks
    d = df.set_index(["scenario", "storm"])
    assert d.loc[("baseline", "heavy_again"), "key"] == d.loc[("baseline", "heavy"), "key"]
    assert d.loc[("baseline", "heavy_again"), "max_depth_m"] == d.loc[("baseline", "heavy"), "max_depth_m"]
    for sc in scenarios:  # physics: the stronger storm floods deeper, every member conserves volume
        assert d.loc[(sc, "heavy"), "max_depth_m"] > d.loc[(sc, "light"), "max_depth_m"]
        assert d.loc[(sc, "heavy"), "rain_m3"] == pytest.approx(4 * d.loc[(sc, "light"), "rain_m3"], rel=1e-6)
    assert d.loc[("dam", "heavy"), "max_depth_m"] > d.loc[("baseline", "heavy"), "max_depth_m"]
    assert (df["volume_error"].abs() < 1e-6).all()
    assert (tmp_path / "ens" / "dam__heavy" / "result.nc").exists()
    # the second call finds every member in its folder and runs nothing
    again = run_ensemble(scenarios, storms, duration_s=400.0, out_dir=tmp_path / "ens", boundary="open")
    assert set(again["status"]) == {"reused", "same-as"} and (again["wall_s"] == 0).all()
    assert np.allclose(again["max_depth_m"], df["max_depth_m"])
    # another option is another member
    third = run_ensemble({"baseline": scenarios["baseline"]}, {"light": storms["light"]}, duration_s=400.0,
                         out_dir=tmp_path / "ens", boundary="closed")
    assert list(third["status"]) == ["run"]


def test_ensemble_with_the_run_registry(tmp_path, scenarios):
    registry = pytest.importorskip("twin.workflows.registry")
    reg = registry.RunRegistry(tmp_path / "ws")
    storms = {"s1": uniform_rain(40.0, 120.0)}
    df = run_ensemble(scenarios, storms, duration_s=180.0, out_dir=tmp_path / "ws" / "runs", registry=reg)
    assert list(df["status"]) == ["run", "run"]
    recs = [reg.get(i) for i in df["run_id"]]
    assert all(r.status == "done" and r.water_balance["rain_m3"] > 0 for r in recs)
    again = run_ensemble(scenarios, storms, duration_s=180.0, out_dir=tmp_path / "ws" / "runs", registry=reg)
    assert list(again["status"]) == ["reused", "reused"] and list(again["run_id"]) == list(df["run_id"])


def test_bad_ensembles_are_refused(scenarios):
    with pytest.raises(TwinValueError, match="at least one"):
        run_ensemble(scenarios, {}, duration_s=10.0)
    with pytest.raises(TwinValueError, match="RainSeries"):
        run_ensemble(scenarios, {"g": RainGrid([0.0], np.zeros((1, 2, 2)))}, duration_s=10.0)
    with pytest.raises(TwinValueError, match="name"):
        run_ensemble({"a b": scenarios["dam"]}, {"s": uniform_rain(1.0, 1.0)}, duration_s=10.0)
    with pytest.raises(TwinValueError, match="Grid"):
        run_ensemble({"x": 3}, {"s": uniform_rain(1.0, 1.0)}, duration_s=10.0)
