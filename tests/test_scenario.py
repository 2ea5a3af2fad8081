"""twin.scenario: the schema (validation, clear errors, JSON Schema, hash, SRI storms) and apply_edits
(each edit type changes exactly the cells it should) on synthetic scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from affine import Affine

from twin.errors import TwinValueError
from twin.grid import TerrainRaster, load_landcover_table
from twin.scenario import (SRI_EXTREME_FACTOR, SRI_RETURN_PERIOD_A, Scenario, ScenarioError, apply_edits,
                           parse_scenario, scenario_hash, scenario_id, sri_for_return_period)

from .test_grid import CRS, synthetic_scene

X0, Y0 = 691000.0, 5336000.0   # a Munich-like UTM 32N origin (the scene CRS), metres


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def base(**kw) -> dict:
    d = {"name": "Test", "scene": "synth", "resolution_m": 1.0}
    d.update(kw)
    return d


@pytest.fixture(scope="module")
def scene():
    """40 x 30 m, terrain sloping south (100 m at the south edge), two flat-roofed boxes b0 (roofType 1000)
    and b1 (roofType 3100)."""
    rows, cols = 30, 40
    yy = np.arange(rows)[::-1, None] + 0.5          # metres north of Y0 at the cell centres
    z = (100.0 + 0.02 * yy + 0.0 * np.arange(cols)[None, :]).astype(np.float32)
    terrain = TerrainRaster(z, Affine(1, 0, X0, 0, -1, Y0 + rows), CRS)
    b0 = ([(X0 + 5, Y0 + 5), (X0 + 13, Y0 + 5), (X0 + 13, Y0 + 12), (X0 + 5, Y0 + 12)], [], 100.0, 9.0)
    b1 = ([(X0 + 25, Y0 + 18), (X0 + 33, Y0 + 18), (X0 + 33, Y0 + 26), (X0 + 25, Y0 + 26)], [], 100.5, 12.0)
    sc = synthetic_scene([b0, b1], terrain=terrain)
    sc.attributes["roofType"] = ["1000", "3100"]
    sc.attributes["measuredHeight"] = [9.0, 12.0]
    return sc


@pytest.fixture(scope="module")
def grid(scene):
    return scene.to_grid(1.0)


def centres_in(grid, geom) -> np.ndarray:
    x, y = grid.cell_centres()
    X, Y = np.meshgrid(x, y)
    return shapely.contains_xy(geom, X, Y)


def unchanged_outside(a, b, mask):
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a[~mask], b[~mask], equal_nan=a.dtype.kind == "f")


# ============================================================================================ schema
def test_defaults_models_hash_and_id():
    s = parse_scenario(base(forcing={"rain": {"type": "design_storm", "return_period_a": 100, "depth_mm": 45}}))
    assert s.models == ["heavyrain", "screening"]
    assert s.id == "test" and scenario_id("Entsiegelung Königsplatz  (Variante 2)") == "entsiegelung-koenigsplatz-variante-2"
    # the hash ignores the description and spelled-out defaults, not anything that changes results
    s2 = parse_scenario(dict(base(description="other words", resolution_m=1,
                                  forcing={"rain": {"type": "design_storm", "return_period_a": 100, "depth_mm": 45,
                                                    "shape": "euler2", "duration_min": 60}})))
    assert scenario_hash(s) == scenario_hash(s2)
    s3 = parse_scenario(base(forcing={"rain": {"type": "design_storm", "return_period_a": 100, "depth_mm": 46}}))
    assert scenario_hash(s3) != scenario_hash(s)
    assert parse_scenario(s.model_dump_json()) == s   # JSON round trip


def test_sri_levels_and_depths():
    assert [sri_for_return_period(t) for t in (1, 2, 5, 10, 25, 30, 50, 100, 200)] == [1, 2, 3, 4, 5, 5, 6, 7, 7]
    s = parse_scenario(base(forcing={"rain": {"type": "design_storm", "sri": 10, "depth_mm": 40, "duration_min": 60}}))
    storm = s.forcing.rain
    assert storm.total_depth_mm == pytest.approx(40 * SRI_EXTREME_FACTOR[10])
    assert storm.effective_return_period_a == 100 and storm.effective_sri == 10
    s = parse_scenario(base(forcing={"rain": {"type": "design_storm", "sri": 4,
                                              "depth_duration": [{"duration_min": 30, "depth_mm": 20},
                                                                 {"duration_min": 90, "depth_mm": 32}]}}))
    assert s.forcing.rain.total_depth_mm == pytest.approx(20 + 12 * 30 / 60)   # linear between 30 and 90 min
    assert s.forcing.rain.effective_return_period_a == SRI_RETURN_PERIOD_A[4]
    args = s.forcing.rain.storm_arguments()
    assert args["kind"] == "euler2" and args["idf"][0] == (30, 20)


@pytest.mark.parametrize("doc, where, words", [
    ('{"name": "x", ', "", "not valid JSON"),
    (base(scene="a b"), "scene", "should match pattern"),
    (base(edits=[{"type": "unseal", "area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}}]),
     "edits[0].area.coordinates", "at least 3 distinct points"),
    (base(edits=[{"type": "unseal", "area": {"type": "Polygon",
                                              "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2]]]}}]),
     "edits[0].area", "not a valid polygon"),
    (base(edits=[{"type": "bulldoze"}]), "edits[0]", "unknown type 'bulldoze'"),
    (base(edits=[{"type": "trees", "trees": []}]), "edits[0].trees", "at least 1 item"),
    (base(edits=[{"type": "trees", "trees": [{"x": 1, "y": 2, "crown_radius_m": -1}]}]),
     "edits[0].trees[0].crown_radius_m", "greater than 0"),
    (base(edits=[{"type": "unseal", "landcover": "concrete", "area": square(0, 0, 5, 5)}]),
     "edits[0].landcover", "land-cover class 'concrete' is unknown"),
    (base(edits=[{"type": "retention_basin", "area": square(0, 0, 5, 5)}]), "edits[0]", "exactly one of depth_m"),
    (base(edits=[{"type": "green_roofs"}]), "edits[0]", "choose the buildings"),
    (base(forcing={"rain": {"type": "design_storm", "return_period_a": 100}}), "forcing.rain", "give the storm's depth"),
    (base(forcing={"rain": {"type": "design_storm", "sri": 7, "return_period_a": 50, "depth_mm": 40}}),
     "forcing.rain", "stands for a 100-year storm"),
    (base(forcing={"heat": {"type": "hot_day", "time": "2025-07-15T15:00:00"}}), "forcing.heat.time",
     "timezone"),
    (base(models=["heavyrain"]), "(scenario)", "needs forcing.rain"),
    (base(colour="red"), "colour", "unknown field"),
])
def test_invalid_scenarios_say_where_and_what(doc, where, words):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(json.dumps(doc) if isinstance(doc, dict) else doc)
    msg = str(e.value)
    assert words in msg, msg
    if where:
        assert f"  {where}: " in msg, msg
        assert any(p["loc"] == where for p in e.value.problems)


def test_json_schema_is_published_with_crs_notes_and_the_edit_union():
    schema = Scenario.model_json_schema()
    text = json.dumps(schema)
    assert "scene's CRS" in text and "not longitude/latitude" in text
    edits = schema["properties"]["edits"]["items"]
    assert set(edits["discriminator"]["mapping"]) == {"unseal", "reseal", "green_roofs", "trees", "retention_basin",
                                                     "terrain", "wall", "sewer"}
    assert set(schema["$defs"]["Forcing"]["properties"]) == {"rain", "heat"}


def test_sample_scenarios_validate_with_pydantic_and_the_published_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from twin.scenario import load_scenario

    from .common import SAMPLES

    schema = Scenario.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted((SAMPLES / "scenarios").glob("*.json"))
    assert [f.name for f in files] == ["adaptation.json", "baseline.json"]
    for f in files:
        assert list(validator.iter_errors(json.loads(f.read_text()))) == [], f
        sc = load_scenario(f)
        assert sc.scene == "muenchen-tum" and sc.models == ["heavyrain", "screening", "heat"]
    kinds = {e.type for e in load_scenario(SAMPLES / "scenarios" / "adaptation.json").edits}
    assert {"unseal", "trees", "retention_basin", "green_roofs"} <= kinds


def test_cli_schema_validate_and_new(tmp_path, capsys):
    from twin.cli.main import main

    assert main(["scenario", "schema", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "twin scenario"
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    assert main(["scenario", "new", "Neue Mitte", "--scene", "synth", "--out", str(good), "--return-period", "30",
                 "--depth-mm", "35", "--hot-day", "2025-07-15T15:00:00+02:00"]) == 0
    bad.write_text(json.dumps(base(edits=[{"type": "wall", "line": {"type": "LineString",
                                                                     "coordinates": [[0, 0]]}, "height_m": 1}])))
    capsys.readouterr()
    assert main(["scenario", "validate", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert "ok: 'Neue Mitte' (id neue-mitte)" in out and "heavyrain, screening, heat" in out
    assert "edits[0].line.coordinates: List should have at least 2 items" in err


# ============================================================================================ edits
def test_no_edits_adds_the_scenario_fields_only(grid):
    out, rep = apply_edits(grid, parse_scenario(base(parameters={"heavyrain": {"drainage_mm_per_h": 20}})))
    assert rep.changed_cells == {} and rep.entries == []
    for name in grid.fields:
        assert np.array_equal(out[name], grid[name], equal_nan=True)
    assert np.all(out["roof_retention_mm"] == 0)
    sealed = grid["imperviousness"] >= 0.5
    assert np.all(out["drainage_mm_per_h"][sealed] == 20) and np.all(out["drainage_mm_per_h"][~sealed] == 0)
    assert out.units["drainage_mm_per_h"] == "mm h-1"


@pytest.mark.parametrize("kind, cls", [("unseal", "grass"), ("reseal", "sealed"), ("unseal", "tree"),
                                       ("reseal", "water")])
def test_landcover_edit_changes_exactly_the_centres_inside_except_buildings(grid, kind, cls):
    table = load_landcover_table()
    # a polygon off the cell centres that also covers part of building b0
    poly = {"type": "Polygon", "coordinates": [[[X0 + 2.3, Y0 + 3.7], [X0 + 20.6, Y0 + 2.2], [X0 + 18.1, Y0 + 15.4],
                                                [X0 + 7.2, Y0 + 9.9]]]}
    start = parse_scenario(base(edits=[{"type": "reseal", "area": square(X0, Y0, X0 + 40, Y0 + 30)}] if kind == "unseal"
                                else []))
    g0, _ = apply_edits(grid, start)
    sc = parse_scenario(base(edits=[e.model_dump() for e in start.edits] + [{"type": kind, "landcover": cls,
                                                                             "area": poly}]))
    out, rep = apply_edits(grid, sc)
    inside = centres_in(grid, shapely.Polygon(poly["coordinates"][0]))
    bld = grid["building_id"] >= 0
    mask = inside & ~bld
    assert (inside & bld).any() and mask.sum() > 20
    c = table["classes"][cls]
    for f, key in (("imperviousness", "imperviousness"), ("manning_n", "manning_n"), ("ks_mm_per_h", "ks_mm_per_h"),
                   ("suction_head_mm", "suction_head_mm"), ("porosity", "porosity"), ("landcover", "code"),
                   ("water_mask", "water")):
        assert np.all(out[f][mask] == np.asarray(c[key], out[f].dtype)), f
        assert unchanged_outside(out[f], g0[f], mask), f
    assert np.all(out["tree_canopy_height"][mask] == c["canopy_height_m"])
    assert np.array_equal(out["dsm"][mask], (out["terrain_elevation"] + out["tree_canopy_height"])[mask])
    entry = rep.entries[-1]
    assert entry["cells"] == mask.sum() and entry["skipped_building_cells"] == (inside & bld).sum()


def test_trees_raise_canopy_within_the_crown_and_never_on_buildings(grid):
    trees = [{"x": X0 + 20.2, "y": Y0 + 20.7, "crown_radius_m": 3.2, "height_m": 12},
             {"x": X0 + 12.5, "y": Y0 + 8.5, "crown_radius_m": 2.0, "height_m": 8},      # next to / over b0
             {"x": X0 + 35.3, "y": Y0 + 4.6, "crown_radius_m": 0.2, "height_m": 6}]      # crown smaller than a cell
    out, rep = apply_edits(grid, parse_scenario(base(edits=[{"type": "trees", "trees": trees}])))
    x, y = grid.cell_centres()
    X, Y = np.meshgrid(x, y)
    want = np.zeros(grid.shape, np.float32)
    for t in trees:
        disc = (X - t["x"]) ** 2 + (Y - t["y"]) ** 2 <= t["crown_radius_m"] ** 2
        col, row = ~grid.transform @ (t["x"], t["y"])
        disc[int(row), int(col)] = True
        want[disc] = np.maximum(want[disc], t["height_m"])
    bld = grid["building_id"] >= 0
    want[bld] = 0
    assert np.array_equal(out["tree_canopy_height"], np.maximum(grid["tree_canopy_height"], want))
    col, row = ~grid.transform @ (X0 + 35.3, Y0 + 4.6)
    assert want[int(row), int(col)] == 6 and (want == 6).sum() == 1   # a crown smaller than a cell: the trunk's cell
    changed = want > 0
    assert np.array_equal(out["dsm"][changed], (grid["terrain_elevation"] + want)[changed])
    assert unchanged_outside(out["dsm"], grid["dsm"], changed)
    assert rep.entries[0]["planted"] == 3 and rep.entries[0]["skipped_building_cells"] > 0
    assert rep.changed_cells == {"tree_canopy_height": int(changed.sum()), "dsm": int(changed.sum())}


def test_retention_basin_by_depth_and_by_volume(grid):
    area = square(X0 + 15.2, Y0 + 2.1, X0 + 24.9, Y0 + 9.8)
    inside = centres_in(grid, shapely.Polygon(area["coordinates"][0]))
    for spec, depth in (({"depth_m": 1.5}, 1.5), ({"volume_m3": 100.0}, 100.0 / inside.sum())):
        out, rep = apply_edits(grid, parse_scenario(base(edits=[{"type": "retention_basin", "area": area, **spec}])))
        d = grid["terrain_elevation"] - out["terrain_elevation"]
        assert np.allclose(d[inside], depth, atol=2e-5) and np.all(d[~inside] == 0)
        assert rep.entries[0]["storage_m3"] == pytest.approx(depth * inside.sum())
        assert np.array_equal(out["dsm"] - out["terrain_elevation"], grid["dsm"] - grid["terrain_elevation"])


def test_terrain_change_skips_buildings(grid):
    area = square(X0, Y0, X0 + 10, Y0 + 10)     # overlaps b0
    out, rep = apply_edits(grid, parse_scenario(base(edits=[{"type": "terrain", "area": area, "delta_m": 0.4}])))
    inside = centres_in(grid, shapely.Polygon(area["coordinates"][0]))
    bld = grid["building_id"] >= 0
    d = out["terrain_elevation"] - grid["terrain_elevation"]
    assert np.allclose(d[inside & ~bld], 0.4, atol=1e-5) and np.all(d[bld] == 0) and np.all(d[~inside] == 0)
    assert rep.entries[0]["skipped_building_cells"] == (inside & bld).sum() > 0


def test_wall_is_watertight_for_four_neighbour_flow(grid):
    from scipy import ndimage

    line = {"type": "LineString", "coordinates": [[X0 - 1, Y0 + 29.5], [X0 + 17.3, Y0 + 14.2], [X0 + 41, Y0 + 0.4]]}
    out, rep = apply_edits(grid, parse_scenario(base(edits=[{"type": "wall", "line": line, "height_m": 1.0}])))
    wall = (out["terrain_elevation"] - grid["terrain_elevation"]) > 0.5
    assert np.allclose((out["terrain_elevation"] - grid["terrain_elevation"])[wall], 1.0, atol=1e-5)
    _, n = ndimage.label(~wall & (grid["building_id"] < 0), structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert n == 2   # the diagonal wall splits the open cells in two
    assert rep.entries[0]["cells"] == wall.sum()


def test_green_roofs_by_id_and_by_attribute(grid, scene):
    sc = parse_scenario(base(edits=[{"type": "green_roofs", "buildings": ["b1"], "retention_mm": 25}]))
    out, rep = apply_edits(grid, sc, scene)
    assert np.array_equal(out["roof_retention_mm"] > 0, grid["building_id"] == 1)
    assert np.all(out["roof_retention_mm"][grid["building_id"] == 1] == 25)
    assert rep.entries[0]["buildings"] == ["b1"]
    assert rep.entries[0]["storage_m3"] == pytest.approx((grid["building_id"] == 1).sum() * 0.025)
    flat = parse_scenario(base(edits=[{"type": "green_roofs", "where": [{"attribute": "roofType", "value": "1000"}]}]))
    out, rep = apply_edits(grid, flat, scene)
    assert np.array_equal(out["roof_retention_mm"] > 0, grid["building_id"] == 0)
    tall = parse_scenario(base(edits=[{"type": "green_roofs", "where": [{"attribute": "measuredHeight", "op": "gt",
                                                                         "value": 10}]}]))
    assert rep.entries[0]["buildings"] == ["b0"]
    assert apply_edits(grid, tall, scene)[1].entries[0]["buildings"] == ["b1"]
    with pytest.raises(TwinValueError, match=r"no building with gml:id \['nope'\]"):
        apply_edits(grid, parse_scenario(base(edits=[{"type": "green_roofs", "buildings": ["nope"]}])), scene)
    with pytest.raises(TwinValueError, match="pass the scene"):
        apply_edits(grid, sc)


def test_sewer_capacity_everywhere_and_in_an_area(grid):
    area = square(X0 + 20, Y0, X0 + 40, Y0 + 30)
    sc = parse_scenario(base(parameters={"heavyrain": {"drainage_mm_per_h": 10}},
                             edits=[{"type": "reseal", "area": square(X0, Y0, X0 + 30, Y0 + 30)},
                                    {"type": "sewer", "capacity_mm_per_h": 35, "area": area}]))
    out, _ = apply_edits(grid, sc)
    inside = centres_in(grid, shapely.Polygon(area["coordinates"][0]))
    sealed = out["imperviousness"] >= 0.5
    d = out["drainage_mm_per_h"]
    assert np.all(d[inside & sealed] == 35) and np.all(d[~inside & sealed] == 10) and np.all(d[~sealed] == 0)


def test_edits_outside_the_grid_name_the_crs_problem(grid):
    lonlat = square(11.56, 48.14, 11.57, 48.15)
    with pytest.raises(TwinValueError, match="covers no cell.*metres in the scene's CRS"):
        apply_edits(grid, parse_scenario(base(edits=[{"type": "unseal", "area": lonlat}])))
    with pytest.raises(TwinValueError, match="covers no cell"):
        apply_edits(grid, parse_scenario(base(edits=[{"type": "trees", "trees": [{"x": 11.5, "y": 48.1}]}])))


def test_terrain_edits_on_a_terrain_only_grid(scene):
    t = scene.terrain
    from twin.grid import Grid

    g = Grid(t.transform, t.crs, t.shape, {"terrain_elevation": t.data}, {"terrain_elevation": "m"})
    area = square(X0 + 15, Y0 + 2, X0 + 25, Y0 + 10)
    out, _ = apply_edits(g, parse_scenario(base(edits=[{"type": "retention_basin", "area": area, "depth_m": 1}])))
    assert set(out.fields) == {"terrain_elevation"}
    assert float((g["terrain_elevation"] - out["terrain_elevation"]).sum()) == pytest.approx(80.0, rel=1e-5)
    with pytest.raises(TwinValueError, match="needs grid fields"):
        apply_edits(g, parse_scenario(base(edits=[{"type": "unseal", "area": area}])))
