"""twin.terrain: DEM formats, mosaics, nodata, reprojection, clipping, TIN, alignment, the demo city."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from tests.test_grid import CRS, flat_terrain, synthetic_scene

from twin.crs import SceneCRS
from twin.errors import CRSError, TwinIOError, TwinWarning
from twin.grid import TerrainRaster
from twin.scene import Scene, typed_table
from twin.terrain import (alignment_report, approximate_terrain, attach_terrain, format_alignment, read_terrain,
                          terrain_info)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "samples" / "muenchen-tum"


# ------------------------------------------------------------------ writers for test tiles
def write_tif(path, data, transform, crs="EPSG:25832", nodata=None):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(data, 1)
    return path


def write_asc(path, data, transform, nodata=-9999.0):
    # ESRI ASCII grid; float32 values printed with repr(), which round-trips exactly
    rows, cols = data.shape
    head = (f"ncols {cols}\nnrows {rows}\nxllcorner {transform.c!r}\nyllcorner {transform.f - rows * -transform.e!r}\n"
            f"cellsize {transform.a!r}\nNODATA_value {nodata}\n")
    body = "\n".join(" ".join(repr(float(v)) if np.isfinite(v) else str(nodata) for v in row) for row in data)
    Path(path).write_text(head + body + "\n")
    return path


def write_xyz(path, data, transform):
    # DGM1 .xyz: one "x y z" line per cell centre, NaN cells left out
    rows, cols = data.shape
    c, r = np.meshgrid(np.arange(cols), np.arange(rows))
    x = transform.c + (c + 0.5) * transform.a
    y = transform.f + (r + 0.5) * transform.e
    ok = np.isfinite(data)
    lines = [f"{xx:.2f} {yy:.2f} {float(zz)!r}" for xx, yy, zz in zip(x[ok], y[ok], data[ok])]
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def cut_into_four(data, transform, folder: Path, formats=("tif", "asc", "xyz", "tif")):
    rows, cols = data.shape
    hr, hc = rows // 2, cols // 2
    paths = []
    for k, (r0, r1, c0, c1) in enumerate([(0, hr, 0, hc), (0, hr, hc, cols), (hr, rows, 0, hc), (hr, rows, hc, cols)]):
        t = transform @ Affine.translation(c0, r0)
        part = np.ascontiguousarray(data[r0:r1, c0:c1])
        fmt = formats[k]
        p = folder / f"tile{k}.{fmt}"
        {"tif": lambda: write_tif(p, part, t), "asc": lambda: write_asc(p, part, t),
         "xyz": lambda: write_xyz(p, part, t)}[fmt]()
        paths.append(p)
    return paths


def random_dem(rows=40, cols=60, seed=0):
    rng = np.random.default_rng(seed)
    return (500 + rng.normal(0, 3, (rows, cols))).astype(np.float32), Affine(1.0, 0, 690000.0, 0, -1.0, 5336000.0)


# ------------------------------------------------------------------ formats and mosaics
def test_mosaic_of_mixed_format_tiles_equals_the_source(tmp_path):
    data, tr = random_dem()
    paths = cut_into_four(data, tr, tmp_path)
    t = read_terrain(paths, source_crs="EPSG:25832")
    assert t.crs == SceneCRS("EPSG:25832")
    assert tuple(t.transform) == tuple(tr) and np.array_equal(t.data, data)  # seamless and exact


def test_nodata_becomes_nan_and_overlap_first_tile_wins(tmp_path):
    data, tr = random_dem(10, 10)
    d2 = data.copy()
    d2[2:4, 2:4] = -9999.0
    a = write_tif(tmp_path / "a.tif", d2, tr, nodata=-9999.0)
    b = write_tif(tmp_path / "b.tif", data + 100, tr)  # same place: fills only a's holes
    t = read_terrain([a])
    assert np.isnan(t.data[2:4, 2:4]).all() and np.isfinite(t.data).sum() == 96
    t2 = read_terrain([a, b])
    assert np.array_equal(t2.data[2:4, 2:4], data[2:4, 2:4] + 100) and t2.data[0, 0] == data[0, 0]


def test_xyz_without_crs_needs_one(tmp_path):
    data, tr = random_dem(4, 4)
    p = write_xyz(tmp_path / "a.xyz", data, tr)
    with pytest.raises(CRSError, match="source_crs"):
        read_terrain(p)
    assert np.array_equal(read_terrain(p, crs="EPSG:25832").data, data)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(TwinIOError, match="does not exist"):
        read_terrain(tmp_path / "nope.tif")
    bad = tmp_path / "bad.tif"
    bad.write_text("not a tiff")
    with pytest.raises(TwinIOError, match="cannot read"):
        read_terrain(bad)


def test_reprojected_tile_keeps_a_plane(tmp_path):
    # a plane z = 500 + 0.01 (x - x0) written in EPSG:25833 comes back in EPSG:25832; bilinear
    # resampling reproduces a plane exactly away from the edges
    from rasterio.warp import Resampling, reproject

    rows, cols = 120, 120
    tr32 = Affine(1.0, 0, 690000.0, 0, -1.0, 5336000.0)
    c, r = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    plane = (500 + 0.01 * c + 0.02 * r).astype(np.float32)
    from rasterio.warp import calculate_default_transform

    tr33, w, h = calculate_default_transform("EPSG:25832", "EPSG:25833", cols, rows,
                                             *rasterio.transform.array_bounds(rows, cols, tr32), resolution=1.0)
    d33 = np.full((h, w), np.nan, np.float32)
    reproject(plane, d33, src_transform=tr32, src_crs="EPSG:25832", dst_transform=tr33, dst_crs="EPSG:25833",
              dst_nodata=np.nan, resampling=Resampling.bilinear)
    p = write_tif(tmp_path / "t33.tif", d33, tr33, crs="EPSG:25833", nodata=np.nan)
    t = read_terrain(p, crs="EPSG:25832+7837", resolution=1.0)
    assert t.crs == SceneCRS("EPSG:25832", "EPSG:7837") and t.metadata["reprojected_from"] == ["EPSG:25833"]
    x = np.array([690040.5, 690060.5, 690080.5])
    y = np.array([5335960.5, 5335950.5, 5335930.5])
    expect = 500 + 0.01 * (x - 690000.0) + 0.02 * (5336000.0 - y)
    assert np.allclose(t.sample(x, y), expect, atol=0.01)  # two bilinear resamplings of a plane


def test_clip_to_bounds_plus_margin(tmp_path):
    data, tr = random_dem(100, 100)
    p = write_tif(tmp_path / "a.tif", data, tr)
    t = read_terrain(p, bounds=(690040.3, 5335940.2, 690050.7, 5335950.1), margin=5.0)
    # snapped outward to whole cells of the tile grid
    assert t.bounds == (690035.0, 5335935.0, 690056.0, 5335956.0)
    assert np.array_equal(t.data, data[44:65, 35:56])
    with pytest.raises(TwinIOError, match="overlap"):
        read_terrain(p, bounds=(0, 0, 10, 10))


# ------------------------------------------------------------------ scene terrain
def test_attach_terrain_round_trips_with_the_scene(tmp_path):
    data, tr = random_dem(60, 80)
    p = write_tif(tmp_path / "dem.tif", data, tr)
    scene = synthetic_scene([([(690010.2, 5335960.2), (690020.8, 5335960.2), (690020.8, 5335975.6),
                               (690010.2, 5335975.6)], [], 500.0, 10.0)])
    t = attach_terrain(scene, [p], margin=5.0)
    assert scene.terrain is t and scene.metadata["terrain"]["margin_m"] == 5.0
    assert t.bounds == (690005.0, 5335955.0, 690026.0, 5335981.0)
    back = Scene.load(scene.save(tmp_path / "scene"))
    assert back == scene and back.terrain.equals(t)
    back.terrain.data[0, 0] += 1
    assert back != scene  # equals() compares the terrain


def test_dhhn92_scene_records_the_substitution(tmp_path):
    data, tr = random_dem(20, 20)
    p = write_tif(tmp_path / "dem.tif", data, tr)
    scene = synthetic_scene([([(690005.0, 5335985.0), (690010.0, 5335985.0), (690010.0, 5335990.0)], [], 500, 5)],
                            crs=SceneCRS("EPSG:25832", "EPSG:5783"))
    attach_terrain(scene, [p])
    assert "GCG2016" in scene.metadata["height_datum_note"]


def test_alignment_flags_floating_and_sinking():
    terrain = flat_terrain(0, 0, 40, 20, z=100.0)
    ok = [(1.2, 1.2), (8.8, 1.2), (8.8, 8.8), (1.2, 8.8)]
    up = [(11.2, 1.2), (18.8, 1.2), (18.8, 8.8), (11.2, 8.8)]
    down = [(21.2, 1.2), (28.8, 1.2), (28.8, 8.8), (21.2, 8.8)]
    tiny = [(31.2, 1.2), (31.6, 1.2), (31.6, 1.6)]  # smaller than a cell: vertices still sample terrain
    scene = synthetic_scene([(ok, [], 100.1, 5), (up, [], 101.0, 5), (down, [], 96.0, 5), (tiny, [], 100.0, 3)],
                            terrain=terrain)
    r = alignment_report(scene)
    assert r["buildings"] == 4 and r["checked"] == 4
    assert r["floating"] == ["b1"] and r["sinking"] == ["b2"]
    offs = {b["gml_id"]: b["offset_m"] for b in r["per_building"]}
    assert offs == pytest.approx({"b0": 0.1, "b1": 1.0, "b2": -4.0, "b3": 0.0}, abs=1e-4)
    assert r["median_m"] == pytest.approx(0.05) and r["max_abs_m"] == pytest.approx(4.0)
    text = "\n".join(format_alignment(r))
    assert "1 buildings float" in text and "b2 (-4.00 m)" in text


def test_tin_relief_is_rasterised():
    # a TINRelief of two triangles over 0..10 x 0..10 with z = 100 + 0.5 x
    v = np.array([[0, 0, 100.0], [10, 0, 105.0], [10, 10, 105.0], [0, 10, 100.0]])
    feats = typed_table("features", {"gml_id": ["tin"], "type": ["TINRelief"], "parent": [-1], "root": [0],
                                     "layer": ["terrain"], "lod": [1], "source": ["x"], "line": [0]})
    attrs = typed_table("attributes", {"x": [0]}).drop(columns="x")
    scene = Scene(crs=CRS, vertices=v, triangles=np.array([[0, 1, 2], [0, 2, 3]]), features=feats, attributes=attrs)
    t = attach_terrain(scene, None, margin=0.0, resolution=1.0)
    assert t.metadata["method"] == "tin" and t.shape == (10, 10)
    x = np.arange(10) + 0.5
    assert np.allclose(t.data, 100 + 0.5 * x[None, :], atol=1e-4)


def test_no_terrain_at_all_interpolates_with_a_warning():
    a = [(1.2, 1.2), (4.8, 1.2), (4.8, 4.8), (1.2, 4.8)]
    b = [(21.2, 1.2), (24.8, 1.2), (24.8, 4.8), (21.2, 4.8)]
    scene = synthetic_scene([(a, [], 10.0, 5), (b, [], 20.0, 5)])
    with pytest.warns(TwinWarning, match="interpolated from 8 building ground points"):
        t = attach_terrain(scene, margin=2.0)
    assert t.metadata["method"] == "interpolated"
    assert np.nanmin(t.data) >= 10.0 and np.nanmax(t.data) <= 20.0  # IDW stays within the samples
    assert t.sample([3.0], [3.0])[0] == pytest.approx(10.0, abs=0.5)


# ------------------------------------------------------------------ real data
def test_hamburg_tile_bounds_crs_and_range(shared_data):
    p = shared_data / "terrain" / "hamburg-dgm1-556-5927" / "dgm1_32_556_9270_1_hh_2022.tif"
    t = read_terrain(p)
    # PROVENANCE.md: 1000 x 1000 px, 1 m, EPSG:25832, E 556000..557000, N 5927000..5928000, -1.85..2.73 m
    assert t.shape == (1000, 1000) and t.resolution == pytest.approx((1.0, 1.0))
    assert t.crs == SceneCRS("EPSG:25832")
    assert np.allclose(t.bounds, (556000, 5927000, 557000, 5928000), atol=1e-6)
    s = t.stats()
    assert s["min"] == pytest.approx(-1.85, abs=0.005) and s["max"] == pytest.approx(2.73, abs=0.005)
    assert s["nodata_fraction"] == 0.0


def test_hamburg_tile_cut_and_mosaicked_is_seamless(shared_data, tmp_path):
    p = shared_data / "terrain" / "hamburg-dgm1-556-5927" / "dgm1_32_556_9270_1_hh_2022.tif"
    full = read_terrain(p)
    data = full.data[:300, :400]  # keep the test fast: a 400 x 300 m corner in four tiles of three formats
    paths = cut_into_four(data, full.transform, tmp_path)
    t = read_terrain(paths, source_crs="EPSG:25832")
    assert np.array_equal(t.data, data)
    assert np.allclose(tuple(t.transform), tuple(full.transform), atol=1e-6)


def test_demo_tiles_mosaic_equals_the_official_tiles(shared_data):
    official = sorted((shared_data / "demo-city" / "muenchen-maxvorstadt-tum" / "dgm1").glob("*.tif"))
    if len(official) != 4:
        pytest.skip("the four official Munich DGM1 tiles are not in ../shared/data")
    big = read_terrain(official)
    # PROVENANCE.md: mosaic E 690000-692000, N 5335000-5337000, z 502.85..525.31 m
    assert big.bounds == (690000.0, 5335000.0, 692000.0, 5337000.0)
    assert big.stats()["min"] == pytest.approx(502.85, abs=0.005) and big.stats()["max"] == pytest.approx(525.31, abs=0.005)
    small = read_terrain(sorted((DEMO / "dgm1").glob("*.tif")))
    w = small.bounds
    r0, c0 = int(big.transform.f - w[3]), int(w[0] - big.transform.c)
    assert np.array_equal(small.data, big.data[r0:r0 + small.shape[0], c0:c0 + small.shape[1]])


def test_demo_city_buildings_sit_on_the_shipped_terrain():
    from twin.citygml import read_citygml

    gml = sorted((DEMO / "lod2").glob("*.gml"))
    tiles = sorted((DEMO / "dgm1").glob("*.tif"))
    if len(gml) != 4 or len(tiles) != 4:
        pytest.skip("the Munich demo sample (data/samples/muenchen-tum) is incomplete in this checkout")
    scene = read_citygml(gml)
    t = attach_terrain(scene, tiles)  # four clipped tiles meeting at E 691000 / N 5336000
    assert np.isfinite(t.data).all() and t.crs.horizontal == "EPSG:25832"
    info = terrain_info(scene)
    assert info["resolution"] == [1.0, 1.0] and 508.0 < info["min"] < info["max"] < 519.1  # PROVENANCE: 503.76..519.07 within 250 m
    r = alignment_report(scene)
    offs = {b["gml_id"]: b["offset_m"] for b in r["per_building"]}
    # PROVENANCE.md: three buildings' GroundSurface within -0.5..-0.1 m of the DGM at the centroid;
    # DEBY_LOD2_4959457 has its ground surface at 509.79 m (a sunken level) below the DGM
    assert r["sinking"] == ["DEBY_LOD2_4959457"] and offs["DEBY_LOD2_4959457"] < -3.0
    for gid in ("DEBY_LOD2_4959322", "DEBY_LOD2_4959323", "DEBY_LOD2_4959462"):
        assert abs(offs[gid]) <= 0.5
    g = scene.to_grid(1.0)
    assert (g["building_id"] >= 0).sum() > 7000  # footprints: ~8100 m2 in total (hand-check of the grid)
    assert np.nanmax(g["building_height"]) == pytest.approx(547.33 - 515.0, abs=1.0)  # roof top 547.33 m
