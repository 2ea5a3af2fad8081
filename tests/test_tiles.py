"""3D Tiles writer: glb/PNG encoders, buildings, terrain, results, snapshots, checks, validator, CLI.

Canonical inputs: a synthetic city of box buildings on a sloped synthetic terrain (in UTM 32 /
DHHN2016 near Munich) and the shipped Munich LoD2 sample on its DGM1 terrain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from tests.common import REPO, SAMPLES
from twin.crs import SceneCRS
from twin.errors import CRSError, TwinIOError, TwinWarning
from twin.grid import TerrainRaster
from twin.scene import SURFACE_TYPES, Scene, typed_table
from twin.tiles import SnapshotWriter, check_tileset, write_tiles
from twin.tiles._glb import GlbBuilder, accessor_array, read_glb
from twin.tiles._png import encode_png
from twin.tiles.check import content_positions

CRS = SceneCRS("EPSG:25832", "EPSG:7837", "EPSG:25832+7837")
X0, Y0, Z0 = 691000.0, 5336000.0, 515.0
NODE = shutil.which("node")
VALIDATOR = REPO / "tools" / "validate-gltf.mjs"


# ------------------------------------------------------------------------------------ fixtures
def box_city(n: int = 30, *, crs: SceneCRS = CRS, spacing: float = 25.0, terrain: bool = True) -> Scene:
    """``n`` box buildings (10 x 8 m, 6..20 m high) on a grid, each face its own 4 vertices."""
    verts, tris, feat, stype = [], [], [], []
    roof, wall, ground = (SURFACE_TYPES.index(t) for t in ("RoofSurface", "WallSurface", "GroundSurface"))
    side = int(np.ceil(np.sqrt(n)))
    for i in range(n):
        x0, y0 = X0 + (i % side) * spacing, Y0 + (i // side) * spacing
        z0 = Z0 + 0.01 * (x0 - X0)
        x1, y1, z1 = x0 + 10, y0 + 8, z0 + 6 + (i % 8) * 2
        faces = [([(x0, y0, z0), (x0, y1, z0), (x1, y1, z0), (x1, y0, z0)], ground),
                 ([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], roof),
                 ([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], wall),
                 ([(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)], wall),
                 ([(x1, y1, z0), (x0, y1, z0), (x0, y1, z1), (x1, y1, z1)], wall),
                 ([(x0, y1, z0), (x0, y0, z0), (x0, y0, z1), (x0, y1, z1)], wall)]
        for pts, st in faces:
            b = len(verts)
            verts += pts
            tris += [(b, b + 1, b + 2), (b, b + 2, b + 3)]
            feat += [i, i]
            stype += [st, st]
    features = typed_table("features", {"gml_id": [f"B{i:04d}" for i in range(n)], "type": ["Building"] * n,
                                        "parent": [-1] * n, "root": list(range(n)), "layer": ["buildings"] * n,
                                        "lod": [2] * n, "source": ["synthetic"] * n, "line": [0] * n})
    attributes = pd.DataFrame({"name": [f"Haus {i}" for i in range(n)],
                               "function": pd.array(["31001_1000"] * n, dtype="string"),
                               "storeysAboveGround": pd.array([2 + i % 3 for i in range(n)], dtype="Int64"),
                               "address": pd.array(["Arcisstraße 21, München"] + [None] * (n - 1), dtype="string")})
    attributes.index = pd.RangeIndex(n, name="feature_id")
    ter = None
    if terrain:
        cols = rows = int(side * spacing + 60)
        tr = Affine(1.0, 0, X0 - 30, 0, -1.0, Y0 + side * spacing + 30)
        xs = tr.c + (np.arange(cols) + 0.5)
        data = np.tile(Z0 + 0.01 * (xs - X0), (rows, 1)).astype(np.float32)
        data[5:8, 5:8] = np.nan
        ter = TerrainRaster(data, tr, crs)
    v = np.asarray(verts, float)
    return Scene(crs=crs, origin=np.round([v[:, 0].mean(), v[:, 1].mean(), v[:, 2].min()]), vertices=v,
                 triangles=np.asarray(tris), triangle_feature=np.asarray(feat), triangle_surface_type=np.asarray(stype),
                 features=features, attributes=attributes,
                 attribute_types={"name": {"type": "string"}, "function": {"type": "string"},
                                  "storeysAboveGround": {"type": "int"}, "address": {"type": "string"}},
                 terrain=ter)


def run_folder(path: Path, scene: Scene, *, times: int = 2) -> Path:
    """A synthetic run folder: result.nc (static max_depth + svf, time-dependent depth) and a
    per-building table, on a 2 m grid over the terrain."""
    import xarray as xr

    path.mkdir(parents=True)
    w, s, e, n = scene.terrain.bounds
    x = np.arange(w + 1, e, 2.0)
    y = np.arange(n - 1, s, -2.0)
    X, Y = np.meshgrid(x, y)
    depth = np.clip(0.5 - np.hypot(X - X0 - 20, Y - Y0 - 20) / 40, 0, None)
    ds = xr.Dataset({"max_depth": (("y", "x"), depth, {"units": "m"}),
                     "svf": (("y", "x"), np.full_like(depth, 0.7), {"units": "1"}),
                     "depth": (("time", "y", "x"), np.stack([depth * (k + 1) / times for k in range(times)]),
                               {"units": "m"})},
                    coords={"x": x, "y": y, "time": np.arange(times) * 600.0})
    ds.to_netcdf(path / "result.nc")
    (path / "run.json").write_text(json.dumps({"name": "storm100", "model": "synthetic"}))
    ids = scene.features["gml_id"].astype(str).to_numpy()
    pd.DataFrame({"gml_id": ids, "exposure_class": [["low", "high"][i % 2] for i in range(len(ids))],
                  "damage_eur": np.arange(len(ids)) * 1000.0}).to_parquet(path / "buildings_exposure.parquet")
    return path


@pytest.fixture(scope="module")
def munich(tmp_path_factory) -> Scene:
    from twin.workflows import import_city

    out = tmp_path_factory.mktemp("munich") / "scene"
    return import_city(sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml")), out, crs="EPSG:25832+7837",
                       terrain=sorted((SAMPLES / "muenchen-tum" / "dgm1").glob("*.tif")))


def all_tilesets(root: Path) -> list[Path]:
    return sorted(root.rglob("tileset.json"))


def property_table(gltf: dict, binary: bytes) -> dict[str, list]:
    ext = gltf["extensions"]["EXT_structural_metadata"]
    table = ext["propertyTables"][0]
    props = ext["schema"]["classes"][table["class"]]["properties"]
    views = gltf["bufferViews"]
    out = {}
    for pid, p in table["properties"].items():
        v = views[p["values"]]
        raw = binary[v["byteOffset"]:v["byteOffset"] + v["byteLength"]]
        if props[pid]["type"] == "STRING":
            o = views[p["stringOffsets"]]
            offs = np.frombuffer(binary, np.uint32, table["count"] + 1, o["byteOffset"])
            out[pid] = [raw[a:b].decode() for a, b in zip(offs[:-1], offs[1:])]
        else:
            out[pid] = np.frombuffer(raw, np.dtype(props[pid]["componentType"].lower())).tolist()
    return out


# ------------------------------------------------------------------------------------ encoders
def test_glb_accessors_round_trip_with_padding():
    b = GlbBuilder()
    q = np.arange(30, dtype=np.uint16).reshape(10, 3)
    nrm = np.array([[127, 0, -127]] * 4, np.int8)
    f = np.linspace(0, 1, 7, dtype=np.float32)
    ia = b.add_accessor(q, "VEC3", minmax=True)
    ib = b.add_accessor(nrm, "VEC3", normalized=True)
    ic = b.add_accessor(f, "SCALAR")
    b.add("nodes", {})
    gltf, binary = read_glb(b.to_bytes())
    assert gltf["bufferViews"][gltf["accessors"][ia]["bufferView"]]["byteStride"] == 8
    assert np.array_equal(accessor_array(gltf, binary, ia), q)
    assert np.allclose(accessor_array(gltf, binary, ib), [[1, 0, -1]] * 4)
    assert np.array_equal(accessor_array(gltf, binary, ic)[:, 0], f)
    assert gltf["accessors"][ia]["min"] == [0, 1, 2] and gltf["accessors"][ia]["max"] == [27, 28, 29]
    assert all(v["byteOffset"] % 8 == 0 for v in gltf["bufferViews"])


def test_png_decodes_to_the_same_pixels():
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    png = encode_png(rgba)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    ihdr_len = int.from_bytes(png[8:12], "big")
    idat = png[8 + 12 + ihdr_len:]
    n = int.from_bytes(idat[:4], "big")
    raw = np.frombuffer(zlib.decompress(idat[8:8 + n]), np.uint8).reshape(5, 1 + 7 * 4)
    assert (raw[:, 0] == 0).all() and np.array_equal(raw[:, 1:].reshape(5, 7, 4), rgba)


# ------------------------------------------------------------------------------------ buildings
def test_buildings_quadtree_checks_and_property_tables(tmp_path):
    scene = box_city(30, terrain=False)
    rep = write_tiles(scene, tmp_path / "t", max_features_per_tile=4)
    assert rep.buildings.features == 30 and rep.buildings.tiles >= 8
    assert check_tileset(tmp_path / "t" / "tileset.json") == []
    ts = json.loads((tmp_path / "t" / "tileset.json").read_text())
    assert ts["asset"]["version"] == "1.1" and len(ts["root"]["transform"]) == 16
    assert ts["root"]["geometricError"] > 0 and "children" in ts["root"]
    seen = {}
    for glb in (tmp_path / "t" / "buildings").rglob("*.glb"):
        gltf, binary = read_glb(glb.read_bytes())
        assert "KHR_mesh_quantization" in gltf["extensionsRequired"]
        table = property_table(gltf, binary)
        assert len(table["gml_id"]) <= 4
        for k, gid in enumerate(table["gml_id"]):
            seen[gid] = {p: v[k] for p, v in table.items()}
        # roof and wall are separate materials
        names = {m["name"] for m in gltf["materials"]}
        assert {"roof", "wall"} <= names
    assert sorted(seen) == [f"B{i:04d}" for i in range(30)]
    b0, b7 = seen["B0000"], seen["B0007"]
    assert b0["address"] == "Arcisstraße 21, München" and b7["address"] == ""
    assert b0["storeys"] == 2 and b7["storeys"] == 3
    assert b7["height"] == pytest.approx(6 + 7 * 2, abs=0.01)   # geometric height (no measuredHeight)
    assert b0["name"] == "Haus 0" and b0["type"] == "Building"


def test_quantised_output_is_smaller_and_same_positions(tmp_path):
    scene = box_city(12, terrain=False)
    q = write_tiles(scene, tmp_path / "q", max_features_per_tile=100)
    f = write_tiles(scene, tmp_path / "f", max_features_per_tile=100, quantize=False)
    assert q.buildings.content_bytes < 0.8 * f.buildings.content_bytes
    pq = content_positions(*read_glb((tmp_path / "q" / "buildings/0/0/0.glb").read_bytes()))
    pf = content_positions(*read_glb((tmp_path / "f" / "buildings/0/0/0.glb").read_bytes()))
    assert np.abs(pq - pf).max() < 0.005


def test_local_crs_is_refused_or_written_unreferenced(tmp_path):
    scene = box_city(3, crs=SceneCRS(None), terrain=False)
    with pytest.raises(CRSError, match="allow_local"):
        write_tiles(scene, tmp_path / "a")
    with pytest.warns(TwinWarning, match="un-georeferenced"):
        rep = write_tiles(scene, tmp_path / "b", allow_local=True)
    ts = json.loads((tmp_path / "b" / "tileset.json").read_text())
    assert "transform" not in ts["root"] and not rep.georeferenced
    assert check_tileset(tmp_path / "b" / "tileset.json") == []


def test_horizontal_only_german_crs_assumes_dhhn2016_with_a_warning(tmp_path):
    scene = box_city(2, crs=SceneCRS("EPSG:25832"), terrain=False)
    with pytest.warns(TwinWarning, match="DHHN2016"):
        a = write_tiles(scene, tmp_path / "a")
    b = write_tiles(box_city(2, terrain=False), tmp_path / "b")
    ta = json.loads((tmp_path / "a" / "tileset.json").read_text())["root"]["transform"]
    tb = json.loads((tmp_path / "b" / "tileset.json").read_text())["root"]["transform"]
    assert np.allclose(ta, tb) and a.notes
    with pytest.raises(CRSError, match="vertical"):
        write_tiles(box_city(2, crs=SceneCRS("EPSG:32632"), terrain=False), tmp_path / "c")


def test_existing_output_is_not_overwritten(tmp_path):
    scene = box_city(2, terrain=False)
    write_tiles(scene, tmp_path / "t")
    with pytest.raises(TwinIOError, match="overwrite"):
        write_tiles(scene, tmp_path / "t")
    write_tiles(scene, tmp_path / "t", overwrite=True)
    assert not (tmp_path / "t.partial").exists()


# ------------------------------------------------------------------------------------ heights
def _independent_ecef(xyz: np.ndarray) -> np.ndarray:
    """pyproj with the shipped GCG2016 grid, built here without twin.crs."""
    import pyproj

    pyproj.datadir.append_data_dir(str(REPO / "twin" / "data" / "geoid"))
    t = pyproj.Transformer.from_crs("EPSG:25832+7837", "EPSG:4978", always_xy=True, only_best=True)
    x, y, z = t.transform(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    return np.column_stack([x, y, z])


def _citygml_points(files) -> np.ndarray:
    from lxml import etree

    pts = []
    for f in files:
        for el in etree.parse(str(f)).iter("{*}posList", "{*}pos"):
            pts.append(np.array(el.text.split(), float).reshape(-1, 3))
    return np.unique(np.vstack(pts), axis=0)


def test_building_positions_in_ecef_match_independent_pyproj(munich, tmp_path):
    write_tiles(munich, tmp_path / "t")
    ts = json.loads((tmp_path / "t" / "tileset.json").read_text())
    m = np.asarray(ts["root"]["transform"]).reshape(4, 4).T      # column-major -> matrix
    tiles = []
    for glb in (tmp_path / "t" / "buildings").rglob("*.glb"):
        p = content_positions(*read_glb(glb.read_bytes()))
        tiles.append(p @ m[:3, :3].T + m[:3, 3])
    ecef_tiles = np.vstack(tiles)
    pts = _citygml_points(sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml")))
    ecef_gml = _independent_ecef(pts)
    # sanity: the independent transformation really applied the quasigeoid (~ +45.7 m in Munich)
    import pyproj
    no_geoid = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4978", always_xy=True).transform(*pts[:1].T)
    assert 40 < np.linalg.norm(ecef_gml[0] - np.ravel(no_geoid)) < 50
    d = np.sqrt(((ecef_tiles[:, None, :] - ecef_gml[None, :, :]) ** 2).sum(-1))
    tile_to_gml = d.min(axis=1)   # every tile vertex is a CityGML point
    gml_to_tile = d.min(axis=0)   # every CityGML point is in the tiles
    assert tile_to_gml.max() < 0.1, tile_to_gml.max()
    assert gml_to_tile.max() < 0.1, gml_to_tile.max()
    print(f"ECEF check: {len(ecef_tiles)} tile vertices, max {tile_to_gml.max() * 1000:.1f} mm, "
          f"median {np.median(tile_to_gml) * 1000:.1f} mm")


# ------------------------------------------------------------------------------------ terrain
def test_terrain_neighbours_share_edges_and_checks_pass(tmp_path):
    from twin.tiles.frame import local_frame
    from twin.tiles.terrain import TerrainPyramid

    scene = box_city(16)
    pyr = TerrainPyramid(scene.terrain, local_frame(scene.crs, scene.origin), tile_cells=32)
    leaves = {(t.x, t.y): t for t in pyr.tiles() if t.level == pyr.levels}
    assert len(leaves) >= 4
    pairs = 0
    for (x, y), t in leaves.items():
        right = leaves.get((x + 1, y))
        if right is None:
            continue
        edge_x = t.xy[:, 0].max()
        a = t.enu[np.abs(t.xy[:, 0] - edge_x) < 1e-6]
        b = right.enu[np.abs(right.xy[:, 0] - edge_x) < 1e-6]
        assert len(a) >= 4
        sa = {tuple(np.round(p, 9)) for p in a}
        sb = {tuple(np.round(p, 9)) for p in b}
        assert sa == sb     # identical vertices (surface and skirt) on the shared edge: no crack
        pairs += 1
    assert pairs >= 2
    errors = [t.error for t in pyr.tiles()]
    assert min(errors) == 0.0 and pyr.root.error >= max(errors)
    rep = write_tiles(scene, tmp_path / "t")
    assert rep.terrain["tiles"] >= 5
    assert check_tileset(tmp_path / "t" / "terrain" / "tileset.json") == []


# ------------------------------------------------------------------------------------ results
def test_run_folder_drapes_water_snapshots_and_building_results(tmp_path):
    scene = box_city(9)
    run = run_folder(tmp_path / "run-a", scene, times=3)
    rep = write_tiles(scene, tmp_path / "t", runs=[run], terrain_tile_cells=32)
    out = tmp_path / "t"
    manifest = json.loads((out / "manifest.json").read_text())
    ids = {layer["id"] for layer in manifest["layers"]}
    assert {"buildings", "terrain", "storm100/max_depth", "storm100/max_depth/water", "storm100/svf"} <= ids
    runj = manifest["runs"][0]
    assert runj["id"] == "storm100" and runj["run"]["model"] == "synthetic"
    assert [s["time_s"] for s in runj["snapshots"]] == [0.0, 600.0, 1200.0]
    for snap in runj["snapshots"]:
        kinds = sorted(layer["kind"] for layer in snap["layers"])
        assert kinds == ["drape", "water"]
        for layer in snap["layers"]:
            assert (out / layer["tileset"]).exists()
    for ts in all_tilesets(out):
        assert check_tileset(ts) == [], ts
    drape = json.loads((out / "runs/storm100/max_depth/tileset.json").read_text())
    md = drape["metadata"]["properties"]
    assert md["colormap"] == "water" and md["vmin"] == 0.0 and md["vmax"] > 0 and md["units"] == "m"
    assert drape["schema"]["classes"]["drape"]
    # per-building results
    assert {"storm100_exposure_class", "storm100_damage_eur", "storm100_max_depth_max"} <= set(
        rep.buildings.properties)
    gltf, binary = read_glb(next((out / "buildings").rglob("*.glb")).read_bytes())
    table = property_table(gltf, binary)
    for k, gid in enumerate(table["gml_id"]):
        i = int(gid[1:])
        assert table["storm100_exposure_class"][k] == ["low", "high"][i % 2]
        assert table["storm100_damage_eur"][k] == i * 1000.0
    # water: max depth 0.5 m near (X0 + 20, Y0 + 20): building B0001 (x 25..35, y 0..8) is close
    k = table["gml_id"].index("B0000")
    assert 0.0 < table["storm100_max_depth_max"][k] <= 0.5
    water = json.loads((out / "runs/storm100/max_depth_water/tileset.json").read_text())
    assert water["root"].get("children") or water["root"].get("content")


def test_snapshot_writer_is_atomic_and_lists_snapshots(tmp_path, monkeypatch):
    scene = box_city(4)
    out = tmp_path / "t"
    write_tiles(scene, out, terrain_tile_cells=32)
    w, s, e, n = scene.terrain.bounds
    x = np.arange(w + 1, e, 2.0)
    y = np.arange(n - 1, s, -2.0)
    writer = SnapshotWriter(out, scene, run="live", tile_cells=32)

    class FakeModel:   # what HeavyRainModel offers the callback: time, h, cell_centres()
        def __init__(self, t):
            self.time = t
            self.h = np.full((len(y), len(x)), 0.02 * (1 + t / 60), np.float32)

        def cell_centres(self):
            return x, y

    writer(FakeModel(0.0))
    writer(FakeModel(60.0))
    m = json.loads((out / "manifest.json").read_text())
    live = next(r for r in m["runs"] if r["id"] == "live")
    assert [sn["time_s"] for sn in live["snapshots"]] == [0.0, 60.0]
    assert m["layers"][0]["id"] == "buildings"     # the rest of the manifest is kept
    # a snapshot that fails half-way leaves nothing visible and the manifest unchanged
    import twin.tiles.terrain as terrain_mod

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(terrain_mod, "write_water_surface", boom)
    before = (out / "manifest.json").read_text()
    with pytest.raises(RuntimeError):
        writer(FakeModel(120.0))
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in (out / "runs/live/snapshots").iterdir() if not p.name.startswith(".")) == ["0", "1"]
    for ts in all_tilesets(out / "runs/live/snapshots"):
        assert check_tileset(ts) == []


# ------------------------------------------------------------------------------------ checks catch faults
def test_check_tileset_reports_broken_tilesets(tmp_path):
    write_tiles(box_city(12, terrain=False), tmp_path / "t", max_features_per_tile=4)
    path = tmp_path / "t" / "tileset.json"
    ts = json.loads(path.read_text())
    ts["root"]["children"][0]["geometricError"] = ts["root"]["geometricError"] * 10
    leaf = ts["root"]["children"][-1]
    while "children" in leaf:
        leaf = leaf["children"][0]
    leaf["boundingVolume"]["box"][5:12] = [0.0, 0, 0, 0.1, 0, 0, 0]   # shrink: content sticks out
    path.write_text(json.dumps(ts))
    problems = check_tileset(path)
    assert any("exceeds the parent" in p for p in problems)
    assert any("outside the tile box" in p for p in problems)


# ------------------------------------------------------------------------------------ validator
def _validate(folder: Path) -> dict:
    if NODE is None:
        pytest.skip("node is not installed: the glTF validator needs nodejs (apt-get install nodejs npm; make npmdeps)")
    if not (REPO / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("node_modules/gltf-validator is absent: run `make npmdeps` (npm ci) to install the validator")
    proc = subprocess.run([NODE, str(VALIDATOR), str(folder)], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_every_glb_passes_the_khronos_validator(munich, tmp_path):
    scene = box_city(9)
    write_tiles(scene, tmp_path / "synthetic", runs=[run_folder(tmp_path / "run", scene)], terrain_tile_cells=32)
    write_tiles(munich, tmp_path / "munich", terrain_tile_cells=64)
    write_tiles(munich, tmp_path / "munich-f32", quantize=False, terrain_tile_cells=256)
    for name in ("synthetic", "munich", "munich-f32"):
        summary = _validate(tmp_path / name)
        assert summary["files"] > 3
        bad = [r for r in summary["reports"] if r["numErrors"] or r["numWarnings"]]
        assert summary["errors"] == 0 and summary["warnings"] == 0, bad[:3]


# ------------------------------------------------------------------------------------ CLI
def test_cli_tiles(munich, tmp_path):
    from twin.cli.main import main

    scene_dir = tmp_path / "scene"
    munich.save(scene_dir)
    run = run_folder(tmp_path / "run", munich, times=1)
    out = tmp_path / "tiles"
    assert main(["tiles", str(scene_dir), "--run", str(run), "--out", str(out), "--max-features-per-tile", "2",
                 "--gzip-json"]) == 0
    assert (out / "tileset.json").exists() and (out / "terrain" / "tileset.json").exists()
    assert (out / "tileset.json.gz").exists()
    assert (out / "runs" / "storm100" / "max_depth" / "tileset.json").exists()
    m = json.loads((out / "manifest.json").read_text())
    assert m["georeferenced"] and m["crs"] == "EPSG:25832+7837"
    assert main(["tiles", str(scene_dir), "--out", str(out)]) == 2          # refuses to overwrite
    for ts in all_tilesets(out):
        assert check_tileset(ts) == [], ts
