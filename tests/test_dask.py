"""twin on a real dask.distributed LocalCluster (2 worker processes on 127.0.0.1), shared by this module,
and twin.cluster's client handling. The CLI tests reach the same cluster with --scheduler ADDRESS."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twin.cluster import cluster_info, compute, dask_client, worker_memory
from twin.errors import TwinIOError, TwinValueError

from .dask_dems import city_dsm, urban_dem, valleys


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
    client = Client(lc)
    try:
        yield client
    finally:
        client.close()
        lc.close()


def test_cluster_has_two_worker_processes(cluster):
    info = cluster_info(cluster)
    assert info["workers"] == 2 and info["threads"] == 2 and info["scheduler"].startswith("tcp://127.0.0.1:")
    mem = worker_memory(cluster)
    assert len(mem) == 2 and all(v > 10e6 for v in mem.values())
    assert cluster_info(None)["workers"] == 0


def test_tiled_screening_on_the_cluster_equals_untiled(cluster, tmp_path):
    from twin.sim.heavyrain.screening import fill_depressions, flow_accumulation, flow_directions
    from twin.sim.heavyrain.tiled_screening import tiled_screening

    z = urban_dem()
    d8 = flow_directions(z, cell_size=1.0)
    from distributed import get_task_stream

    seen = []
    with get_task_stream(cluster) as ts:
        r = tiled_screening(z, cell_size=1.0, tile=40, client=cluster, store=tmp_path / "s.zarr",
                            progress=lambda done, total: seen.append((done, total)))
    assert np.array_equal(r.directions[:], d8)
    assert np.array_equal(r.filled[:], fill_depressions(z), equal_nan=True)
    assert np.array_equal(r.upstream_area_m2[:], flow_accumulation(directions=d8), equal_nan=True)
    assert seen and seen[-1][0] == seen[-1][1] == r.tiles  # progress from the tasks of the last stage
    assert len({t["worker"] for t in ts.data}) == 2  # both worker processes ran tiles


def test_tiled_svf_and_catchments_on_the_cluster(cluster):
    from twin.sim.heat.geometry import sky_view_factor
    from twin.sim.heat.tiled import tiled_sky_view_factor
    from twin.sim.heavyrain.catchments import run_by_catchments
    from twin.sim.heavyrain.forcing import uniform_rain
    from twin.sim.heavyrain.model import HeavyRainModel

    z = city_dsm()
    [svf] = compute(tiled_sky_view_factor(z, cell_m=1.0, directions=16, radius_m=20.0, tile=64), client=cluster)
    assert np.nanmax(np.abs(svf - sky_view_factor(z, cell_m=1.0, directions=16, radius_m=20.0))) <= 1e-5
    dem, t = valleys()
    rain = uniform_rain(60.0, 600.0)
    r = run_by_catchments(dem, transform=t, duration_s=900.0, rain=rain, target_cells=300, buffer_cells=6,
                          client=cluster)
    m = HeavyRainModel(dem, transform=t, boundary="open", rain=rain)
    m.run(900.0)
    assert len(r.table) > 1 and np.nanmax(np.abs(r.max_depth - m.max_depth)) < 0.01


def _dem_tif(path, z, cell=1.0):
    import rasterio
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", height=z.shape[0], width=z.shape[1], count=1, dtype="float32",
                       crs="EPSG:25832", transform=Affine(cell, 0, 500000, 0, -cell, 5400000), nodata=np.nan) as d:
        d.write(z.astype(np.float32), 1)
    return path


def test_cli_screening_heat_and_heavyrain_with_scheduler(cluster, tmp_path, capsys):
    import rasterio

    from twin.cli.main import main
    from twin.sim.heat.geometry import sky_view_factor
    from twin.sim.heavyrain.screening import flow_accumulation, flow_directions

    addr = cluster.scheduler.address
    z = urban_dem(80, 90, seed=2)
    dem = _dem_tif(tmp_path / "dem.tif", z)
    assert main(["sim", "screening", "--dem", str(dem), "--out", str(tmp_path / "scr"), "--scheduler", addr,
                 "--tile", "32"]) == 0
    run = json.loads((tmp_path / "scr" / "run.json").read_text())
    assert run["dask"]["workers"] == 2 and run["tiles"] == 9
    with rasterio.open(tmp_path / "scr" / "flow_accumulation.tif") as src:
        area = src.read(1)
    ref = flow_accumulation(directions=flow_directions(z, cell_size=1.0))
    assert np.array_equal(area, ref.astype(np.float32), equal_nan=True)
    # refuses to overwrite, and refuses the untiled-only options with a one-line error
    assert main(["sim", "screening", "--dem", str(dem), "--out", str(tmp_path / "scr"), "--scheduler", addr]) == 2
    assert main(["sim", "screening", "--dem", str(dem), "--out", str(tmp_path / "x"), "--scheduler", addr,
                 "--rain-mm", "30"]) == 2
    assert "untiled" in capsys.readouterr().err

    dsm = _dem_tif(tmp_path / "dsm.tif", city_dsm())
    assert main(["sim", "heat", "--dsm", str(dsm), "--out", str(tmp_path / "heat"), "--scheduler", addr,
                 "--directions", "16", "--radius", "20", "--tile", "64"]) == 0
    with rasterio.open(tmp_path / "heat" / "svf.tif") as src:
        svf = src.read(1)
    assert np.nanmax(np.abs(svf - sky_view_factor(city_dsm(), cell_m=1.0, directions=16, radius_m=20.0))) <= 1e-5

    v, _ = valleys()
    vdem = _dem_tif(tmp_path / "valleys.tif", v, cell=2.0)
    assert main(["sim", "heavyrain", "--dem", str(vdem), "--out", str(tmp_path / "hr"), "--scheduler", addr,
                 "--rain-mm-per-h", "60", "--rain-duration", "600", "--duration", "900", "--boundary", "open",
                 "--catchment-cells", "300", "--buffer-cells", "6"]) == 0
    hr = json.loads((tmp_path / "hr" / "run.json").read_text())
    assert hr["groups"] > 1 and hr["overtopped"] == [] and hr["dask"]["workers"] == 2
    assert (tmp_path / "hr" / "max_depth.tif").exists() and (tmp_path / "hr" / "catchments.csv").exists()


def test_dask_client_options():
    with dask_client() as c:
        assert c is None
        assert compute(np.float64(2.0)) == [2.0]
    with pytest.raises(TwinValueError, match="not both"):
        with dask_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass
    with pytest.raises(TwinValueError, match=">= 1"):
        with dask_client(workers=0):
            pass
    with pytest.raises(TwinValueError, match="not a Dask address"):
        with dask_client(scheduler="localhost"):
            pass
    with pytest.raises(TwinIOError, match="cannot reach"):
        with dask_client(scheduler="tcp://127.0.0.1:9", timeout_s=1.0):
            pass


def test_tiles_one_task_per_subtree_writes_the_same_files(cluster, tmp_path):
    from twin.tiles import write_tiles

    from .test_tiles import box_city

    scene = box_city(30)
    serial = write_tiles(scene, tmp_path / "serial", max_features_per_tile=3)
    dist = write_tiles(scene, tmp_path / "dask", max_features_per_tile=3, client=cluster)
    assert dist.buildings.tiles == serial.buildings.tiles > 4  # several subtrees, each a task
    a = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*") if p.is_file())
    b = sorted(p.relative_to(tmp_path / "dask") for p in (tmp_path / "dask").rglob("*") if p.is_file())
    assert a == b and any(p.suffix == ".glb" for p in a)
    for p in a:
        assert (tmp_path / "serial" / p).read_bytes() == (tmp_path / "dask" / p).read_bytes(), p
