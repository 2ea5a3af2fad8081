"""twin.grid: exact burn-in, fields, land cover, round trips through xarray, NetCDF and GeoTIFF."""

from __future__ import annotations

import json
import warnings

import mapbox_earcut
import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.crs import SceneCRS
from twin.errors import TwinIOError, TwinValueError, TwinWarning
from twin.grid import FIELDS, Grid, TerrainRaster, building_footprints, load_landcover_table, scene_to_grid
from twin.scene import Scene, surface_type_code, typed_table

CRS = SceneCRS("EPSG:25832", "EPSG:7837")
ROOF, WALL, GROUND = (surface_type_code(n) for n in ("RoofSurface", "WallSurface", "GroundSurface"))


# ------------------------------------------------------------------ synthetic scenes (canonical)
def synthetic_scene(buildings, *, crs=CRS, terrain=None, ground=True, layer="buildings", extra=()):
    """A scene of prism buildings.

    ``buildings``: list of (polygon exterior [(x, y), ...], holes [[...], ...], z_ground, height).
    Ground faces downward (type GroundSurface, or untyped when ``ground`` is False), roof upward,
    walls around the exterior. ``extra``: (layer, polygon, z0, height) prisms of other layers.
    """
    verts, tris, tfeat, ttype = [], [], [], []
    items = [("buildings" if layer == "buildings" else layer, b) for b in buildings] + \
            [(lyr, (poly, [], z0, h)) for lyr, poly, z0, h in extra]
    for fid, (lyr, (ext, holes, z0, h)) in enumerate(items):
        rings = [np.asarray(ext, float)] + [np.asarray(r, float) for r in holes]
        flat = np.vstack(rings)
        ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
        tri = mapbox_earcut.triangulate_float64(flat, ends).reshape(-1, 3)
        # make earcut triangles counter-clockwise seen from above
        p = flat[tri]
        ccw = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0]) > 0
        tri[~ccw] = tri[~ccw][:, ::-1]
        base = len(verts) and sum(len(v) for v in verts)
        n = len(flat)
        verts.append(np.c_[flat, np.full(n, z0)])
        verts.append(np.c_[flat, np.full(n, z0 + h)])
        tris += [tri[:, ::-1] + base, tri + base + n]  # ground faces down, roof up
        tfeat += [fid] * (2 * len(tri))
        ttype += [GROUND if ground else 0] * len(tri) + [ROOF if ground else 0] * len(tri)
        m = len(rings[0])
        for i in range(m):
            j = (i + 1) % m
            tris.append(np.array([[base + i, base + j, base + n + j], [base + i, base + n + j, base + n + i]]))
            tfeat += [fid, fid]
            ttype += [WALL if ground else 0] * 2
    nf = len(items)
    feats = typed_table("features", {
        "gml_id": [f"b{i}" for i in range(nf)], "type": ["Building" if lyr == "buildings" else "Other" for lyr, _ in items],
        "parent": [-1] * nf, "root": list(range(nf)), "layer": [lyr for lyr, _ in items], "lod": [2] * nf,
        "source": ["synthetic"] * nf, "line": [0] * nf})
    attrs = typed_table("attributes", {"x": [0] * nf}).drop(columns="x")
    return Scene(crs=crs, vertices=np.vstack(verts) if verts else np.zeros((0, 3)),
                 triangles=np.vstack(tris) if tris else np.zeros((0, 3), np.int64),
                 triangle_feature=np.array(tfeat, np.int32), triangle_surface_type=np.array(ttype, np.uint8),
                 features=feats, attributes=attrs, terrain=terrain)


def flat_terrain(west, south, east, north, z=100.0, res=1.0, crs=CRS):
    rows, cols = int(round((north - south) / res)), int(round((east - west) / res))
    return TerrainRaster(np.full((rows, cols), z, np.float32), Affine(res, 0, west, 0, -res, north), crs)


def centres_inside(grid: Grid, polygon: shapely.Geometry) -> np.ndarray:
    """Reference: shapely point-in-polygon test of every cell centre."""
    x, y = grid.cell_centres()
    X, Y = np.meshgrid(x, y)
    return shapely.contains_xy(polygon, X, Y)


# ------------------------------------------------------------------ burn-in exactness
def test_rectangle_off_the_cell_centres_covers_exactly_its_centres():
    ext = [(10.3, 20.2), (30.7, 20.2), (30.7, 25.9), (10.3, 25.9)]
    scene = synthetic_scene([(ext, [], 100.0, 12.0)], terrain=flat_terrain(0, 0, 50, 50))
    g = scene.to_grid(1.0)
    # centres x = 10.5..30.5 (21 columns), y = 20.5..25.5 (6 rows): hand-counted
    assert (g["building_id"] == 0).sum() == 21 * 6
    assert np.array_equal(g["building_id"] == 0, centres_inside(g, shapely.Polygon(ext)))
    assert np.allclose(g["building_height"][g["building_id"] == 0], 12.0)  # roof 112 - terrain 100
    assert np.all(g["building_height"][g["building_id"] < 0] == 0.0)
    assert np.allclose(g["dsm"][g["building_id"] == 0], 112.0)
    assert np.all(g["imperviousness"][g["building_id"] == 0] == 1.0)  # buildings sealed
    assert np.all(g["imperviousness"][g["building_id"] < 0] == 0.0)   # rest pervious grass


def test_l_shape_with_hole_matches_shapely_reference():
    ext = [(2.2, 2.2), (40.6, 2.2), (40.6, 15.4), (15.1, 15.4), (15.1, 38.8), (2.2, 38.8)]
    hole = [(5.3, 5.3), (10.7, 5.3), (10.7, 10.7), (5.3, 10.7)]
    scene = synthetic_scene([(ext, [hole], 100.0, 6.0)], terrain=flat_terrain(0, 0, 50, 50))
    g = scene.to_grid(0.5)
    assert np.array_equal(g["building_id"] == 0, centres_inside(g, shapely.Polygon(ext, [hole])))


def test_centres_on_a_shared_diagonal_are_counted_once_and_edges_follow_a_fixed_rule():
    # square with corners on cell centres: the diagonal passes through 9 centres; every cell centre
    # strictly inside or on the diagonal is covered, no centre is lost where two triangles meet
    ext = [(0.5, 0.5), (8.5, 0.5), (8.5, 8.5), (0.5, 8.5)]
    scene = synthetic_scene([(ext, [], 0.0, 1.0)], terrain=flat_terrain(0, 0, 10, 10, z=0.0))
    g = scene.to_grid(1.0)
    inside = g["building_id"] == 0
    interior = centres_inside(g, shapely.Polygon(ext))  # strict interior: 7 x 7 centres
    assert interior.sum() == 49
    assert np.all(inside[interior])
    # boundary centres: exactly two of the four sides are owned (top-left style rule): 8 + 8 + corner
    assert inside.sum() - 49 in (2 * 8 + 1, 2 * 8 - 1, 2 * 8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(0.01, 29.99), st.floats(0.01, 29.99)), min_size=3, max_size=9, unique=True),
       st.sampled_from([0.5, 1.0, 2.0]))
def test_random_polygons_match_shapely(points, res):
    # star-shaped polygon around the centroid of random points: simple, possibly concave
    pts = np.array(points)
    c = pts.mean(axis=0)
    order = np.argsort(np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0]))
    ext = [tuple(p) for p in pts[order]]
    poly = shapely.Polygon(ext)
    if not poly.is_valid or poly.area < 1e-3:
        return
    # skip cases where a centre lies within 1e-9 m of an edge: the tie rule decides those
    g0 = Grid(Affine(res, 0, 0, 0, -res, 30), CRS, (int(30 / res), int(30 / res)))
    x, y = g0.cell_centres()
    X, Y = np.meshgrid(x, y)
    if np.any(shapely.distance(poly.exterior, shapely.points(X.ravel(), Y.ravel())) < 1e-9):
        return
    scene = synthetic_scene([(ext, [], 0.0, 3.0)], terrain=flat_terrain(0, 0, 30, 30, z=0.0))
    g = scene.to_grid(res)
    assert np.array_equal(g["building_id"] == 0, centres_inside(g, poly))


def test_gable_roof_height_is_interpolated_per_cell():
    # a 10 m wide building whose roof rises linearly from 5 m (x=0) to 15 m (x=10): replace roof z
    ext = [(0, 0), (10, 0), (10, 4), (0, 4)]
    scene = synthetic_scene([(ext, [], 0.0, 5.0)], terrain=flat_terrain(-2, -2, 12, 6, z=0.0))
    roof = scene.vertices[:, 2] > 0
    scene.vertices[roof, 2] = 5.0 + scene.vertices[roof, 0]
    g = scene.to_grid(1.0)
    x, _ = g.cell_centres()
    row = g["building_height"][g.shape[0] // 2]
    inside = (x > 0) & (x < 10)
    assert np.allclose(row[inside], 5.0 + x[inside], atol=1e-5)  # plane z = 5 + x at cell centres


def test_lod1_without_groundsurface_uses_downward_faces():
    ext = [(1.2, 1.2), (6.8, 1.2), (6.8, 6.8), (1.2, 6.8)]
    scene = synthetic_scene([(ext, [], 0.0, 3.0)], ground=False, terrain=flat_terrain(0, 0, 8, 8, z=0.0))
    idx, bid = building_footprints(scene)
    assert np.all(scene.triangle_normals()[idx, 2] < 0) and np.all(bid == 0)
    g = scene.to_grid(1.0)
    assert np.array_equal(g["building_id"] == 0, centres_inside(g, shapely.Polygon(ext)))


def test_two_buildings_terrain_slope_and_ids():
    a = [(1.1, 1.1), (4.9, 1.1), (4.9, 4.9), (1.1, 4.9)]
    b = [(6.1, 1.1), (9.9, 1.1), (9.9, 4.9), (6.1, 4.9)]
    rows, cols = 6, 12
    z = np.tile(np.arange(cols, dtype=np.float32), (rows, 1))  # terrain rises 1 m per column
    terrain = TerrainRaster(z, Affine(1, 0, 0, 0, -1, 6), CRS)
    scene = synthetic_scene([(a, [], 0.0, 20.0), (b, [], 5.0, 20.0)], terrain=terrain)
    g = scene.to_grid(1.0)
    assert set(np.unique(g["building_id"])) == {-1, 0, 1}
    assert np.array_equal(g["terrain_elevation"], z)  # aligned grid: terrain copied exactly
    m = g["building_id"] == 1
    assert np.allclose(g["building_height"][m], 25.0 - z[m])  # top 25 m minus terrain per cell


def test_vegetation_and_water_layers():
    ext = [(1.1, 1.1), (3.9, 1.1), (3.9, 3.9), (1.1, 3.9)]
    tree = [(5.1, 1.1), (7.9, 1.1), (7.9, 3.9), (5.1, 3.9)]
    pond = [(1.1, 5.1), (3.9, 5.1), (3.9, 7.9), (1.1, 7.9)]
    scene = synthetic_scene([(ext, [], 0.0, 10.0)], terrain=flat_terrain(0, 0, 10, 10, z=0.0),
                            extra=[("vegetation", tree, 0.0, 8.0), ("water", pond, 0.0, 0.0)])
    g = scene.to_grid(1.0)
    t = centres_inside(g, shapely.Polygon(tree))
    assert np.allclose(g["tree_canopy_height"][t], 8.0) and np.all(g["tree_canopy_height"][~t] == 0)
    assert np.allclose(g["dsm"][t], 8.0)
    w = centres_inside(g, shapely.Polygon(pond))
    assert np.array_equal(g["water_mask"] == 1, w)


def test_landcover_file_and_table(tmp_path):
    import geopandas as gpd

    ext = [(1.1, 1.1), (3.9, 1.1), (3.9, 3.9), (1.1, 3.9)]
    scene = synthetic_scene([(ext, [], 0.0, 10.0)], terrain=flat_terrain(0, 0, 10, 10, z=0.0))
    road = shapely.box(0, 5, 10, 7)
    forest = shapely.box(5, 0, 10, 5)
    lake = shapely.box(0, 0, 5, 5)  # under the building: the building stays sealed
    gdf = gpd.GeoDataFrame({"kind": ["Road", "forest", "lake"]}, geometry=[road, forest, lake], crs="EPSG:25832")
    gdf.to_file(tmp_path / "lc.gpkg")
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"classes": {"sealed": {"manning_n": 0.012}}}))
    g = scene.to_grid(1.0, landcover=tmp_path / "lc.gpkg", class_column="kind", landcover_table=table)
    classes = {v: int(k) for k, v in g.attrs["landcover_classes"].items()}
    r = centres_inside(g, road)
    assert np.all(g["landcover"][r] == classes["sealed"]) and np.allclose(g["manning_n"][r], 0.012)
    f = centres_inside(g, forest) & ~r
    assert np.all(g["landcover"][f] == classes["tree"])
    assert np.allclose(g["tree_canopy_height"][f], 10.0)  # default canopy of class tree
    assert np.allclose(g["ks_mm_per_h"][f], 10.9)  # Rawls et al. 1983 sandy loam, default table
    b = g["building_id"] >= 0
    assert np.all(g["landcover"][b] == classes["building"]) and np.all(g["water_mask"][b] == 0)
    assert np.all(g["water_mask"][centres_inside(g, lake) & ~b & ~r] == 1)
    with pytest.raises(TwinValueError, match="no column 'class'"):
        scene.to_grid(1.0, landcover=tmp_path / "lc.gpkg")


def test_landcover_table_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[classes.grass]\nimperviousness = 2.0\n')
    with pytest.raises(TwinValueError, match="outside 0..1"):
        load_landcover_table(bad)
    t = load_landcover_table()
    assert t["default_class"] == "grass" and t["classes"]["building"]["imperviousness"] == 1.0


def test_without_terrain_warns_and_interpolates():
    ext = [(1.2, 1.2), (6.8, 1.2), (6.8, 6.8), (1.2, 6.8)]
    scene = synthetic_scene([(ext, [], 50.0, 3.0)])
    with pytest.warns(TwinWarning, match="approximate terrain"):
        g = scene.to_grid(1.0)
    assert np.allclose(g["terrain_elevation"], 50.0)  # every ground point is at 50 m
    assert g.attrs["terrain_source"] == "interpolated"


def test_bad_resolution_and_bounds():
    scene = synthetic_scene([([(0, 0), (1, 0), (1, 1)], [], 0.0, 1.0)], terrain=flat_terrain(0, 0, 2, 2))
    with pytest.raises(TwinValueError, match="positive"):
        scene.to_grid(0)
    with pytest.raises(TwinValueError, match="east > west"):
        scene.to_grid(1.0, bounds=(5, 0, 1, 1))


def test_fields_types_and_units():
    scene = synthetic_scene([([(1.5, 1.5), (3.5, 1.5), (3.5, 3.5)], [], 0.0, 2.0)], terrain=flat_terrain(0, 0, 5, 5))
    g = scene.to_grid(1.0)
    assert set(g.fields) == set(FIELDS)
    for name, (dtype, units, _) in FIELDS.items():
        assert g[name].dtype == dtype and g.units[name] == units


# ------------------------------------------------------------------ round trips
def _grid() -> Grid:
    scene = synthetic_scene([([(1.5, 1.5), (7.5, 1.5), (7.5, 4.5)], [], 0.0, 2.0)],
                            terrain=flat_terrain(0, 0, 10, 6))
    g = scene.to_grid(0.5)
    g.fields["terrain_elevation"][0, 0] = np.nan  # nodata must survive
    g.fields["dsm"][1, 1] = np.float32(1e-7)  # odd float32 values too
    return g


def test_grid_xarray_round_trip_is_exact():
    g = _grid()
    ds = g.to_xarray()
    assert ds["building_height"].attrs["units"] == "m" and ds.sizes == {"y": g.shape[0], "x": g.shape[1]}
    assert Grid.from_xarray(ds).equals(g)


def test_grid_netcdf_round_trip_is_exact(tmp_path):
    g = _grid()
    assert Grid.from_netcdf(g.to_netcdf(tmp_path / "g.nc")).equals(g)
    with pytest.raises(TwinIOError, match="overwrite"):
        g.to_netcdf(tmp_path / "g.nc")


def test_grid_geotiff_round_trip_is_exact(tmp_path):
    g = _grid()
    assert Grid.from_geotiff(g.to_geotiff(tmp_path / "all.tif")).equals(g)  # mixed dtypes -> float64 bands
    one = Grid.from_geotiff(g.to_geotiff(tmp_path / "dsm.tif", fields="dsm"))
    assert one["dsm"].dtype == np.float32 and np.array_equal(one["dsm"], g["dsm"], equal_nan=True)
    assert tuple(one.transform) == tuple(g.transform)


def test_terrain_raster_geotiff_round_trip_and_sampling(tmp_path):
    z = np.arange(12, dtype=np.float32).reshape(3, 4)
    z[0, 0] = np.nan
    t = TerrainRaster(z, Affine(2, 0, 100, 0, -2, 206), CRS, {"sources": ["x"]})
    assert TerrainRaster.from_geotiff(t.to_geotiff(tmp_path / "t.tif")).equals(t)
    # bilinear between centres (103, 203) = 5 and (105, 203) = 6 (row 1? no: row 0 is y 205)
    assert t.sample([105.0], [203.0])[0] == pytest.approx(6.0)  # a cell centre: row 1, col 2 -> 6
    assert t.sample([106.0], [203.0])[0] == pytest.approx(6.5)  # halfway to col 3 (7)
    assert np.isnan(t.sample([99.0], [203.0])[0])  # outside


# ------------------------------------------------------------------ CLI
def test_cli_grid_writes_netcdf_and_geotiff(tmp_path, capsys):
    from twin.cli.main import main

    ext = [(10.3, 20.2), (30.7, 20.2), (30.7, 25.9), (10.3, 25.9)]
    scene = synthetic_scene([(ext, [], 100.0, 12.0)], terrain=flat_terrain(0, 0, 50, 50))
    scene.save(tmp_path / "scene")
    assert main(["grid", str(tmp_path / "scene"), "--resolution", "1", "--out", str(tmp_path / "g.nc")]) == 0
    assert "126 building cells" in capsys.readouterr().out  # 21 x 6 centres, see the rectangle test
    assert Grid.from_netcdf(tmp_path / "g.nc").equals(scene.to_grid(1.0))
    assert main(["grid", str(tmp_path / "scene"), "--resolution", "2", "--field", "dsm",
                 "--out", str(tmp_path / "dsm.tif")]) == 0
    one = Grid.from_geotiff(tmp_path / "dsm.tif")
    assert list(one.fields) == ["dsm"] and one.shape == (25, 25)
    # refuses to overwrite; unknown suffix is an error with a fix
    assert main(["grid", str(tmp_path / "scene"), "--resolution", "1", "--out", str(tmp_path / "g.nc")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["grid", str(tmp_path / "scene"), "--resolution", "1", "--out", str(tmp_path / "g.xyz")]) == 2
