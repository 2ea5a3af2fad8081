"""Scene: save/load round trips (property-based and on real imports), selection, merging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.common import CITYGML2_HEADER, TEST_DATA
from twin.citygml import open_citygml
from twin.crs import SceneCRS
from twin.errors import CRSError, SceneFormatError, TwinIOError
from twin.scene import SURFACE_TYPES, Scene, typed_table

CRSS = [SceneCRS("EPSG:25832", "EPSG:7837", "urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH"),
        SceneCRS("EPSG:25833", None, "EPSG:25833"), SceneCRS(None, None, "local")]


@st.composite
def scenes(draw):
    n_feat = draw(st.integers(0, 6))
    n_vert = draw(st.integers(0 if n_feat == 0 else 3, 30))
    n_tri = draw(st.integers(0, 20)) if n_vert >= 3 and n_feat else 0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    verts = rng.normal(500000, 1000, (n_vert, 3))
    uv = rng.random((n_vert, 2)).astype(np.float32)
    uv[rng.random(n_vert) < 0.5] = np.nan
    tris = rng.integers(0, max(n_vert, 1), (n_tri, 3))
    types = draw(st.lists(st.sampled_from(["Building", "BuildingPart", "TINRelief", "CityFurniture"]),
                          min_size=n_feat, max_size=n_feat))
    feats = typed_table("features", {
        "gml_id": [draw(st.one_of(st.none(), st.text(max_size=8))) for _ in range(n_feat)],
        "type": types, "parent": [-1] * n_feat, "root": list(range(n_feat)),
        "layer": ["buildings"] * n_feat, "lod": [2] * n_feat, "source": ["x.gml"] * n_feat,
        "line": list(range(n_feat))})
    attrs = pd.DataFrame({"measuredHeight": pd.array(rng.random(n_feat) * 30, dtype="float64"),
                          "storeysAboveGround": pd.array([draw(st.one_of(st.none(), st.integers(0, 40)))
                                                          for _ in range(n_feat)], dtype="Int64"),
                          "name": pd.array([draw(st.one_of(st.none(), st.text(max_size=12)))
                                            for _ in range(n_feat)], dtype="string")},
                         index=pd.RangeIndex(n_feat, name="feature_id"))
    n_surf = draw(st.integers(0, 4)) if n_feat else 0
    surfs = typed_table("surfaces", {"gml_id": [f"s{i}" for i in range(n_surf)],
                                     "type": ["RoofSurface"] * n_surf,
                                     "feature": list(rng.integers(0, max(n_feat, 1), n_surf))})
    problems = typed_table("problems", {"id": ["b1"], "type": ["Building"], "reason": ["ünïcode reason"],
                                        "line": [None], "file": ["x.gml"], "action": ["skipped"]})
    return Scene(crs=draw(st.sampled_from(CRSS)), origin=rng.normal(0, 1000, 3), vertices=verts, uv=uv,
                 triangles=tris, triangle_feature=rng.integers(0, max(n_feat, 1), n_tri),
                 triangle_surface=rng.integers(-1, max(n_surf, 1), n_tri) if n_surf else np.full(n_tri, -1),
                 triangle_surface_type=rng.integers(0, len(SURFACE_TYPES), n_tri),
                 triangle_lod=rng.integers(0, 4, n_tri), features=feats, attributes=attrs,
                 attribute_types={"measuredHeight": {"type": "measure", "uom": "m"},
                                  "storeysAboveGround": {"type": "int"}, "name": {"type": "string"}},
                 surfaces=surfs, problems=problems, metadata={"sources": [{"path": "x.gml"}], "lod": None})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scene=scenes())
def test_save_load_round_trip_property(tmp_path_factory, scene):
    path = tmp_path_factory.mktemp("scene") / "s"
    scene.save(path)
    back = Scene.load(path)
    assert back == scene
    assert back.vertices.dtype == np.float64 and back.triangles.dtype == np.int64


@pytest.mark.parametrize("name", ["Appearance-EPSG25832.xml", "GenericCityObjects.xml",
                                  "FZK-Haus-LoD3-KIT-IAI-KHH-B36-V1__v3.gml", "TUM-Main-Entrance.gml"])
def test_round_trip_real_imports(tmp_path, name):
    scene = open_citygml(TEST_DATA / "citygml" / name)
    back = Scene.load(scene.save(tmp_path / "s"))
    assert back == scene
    assert back.summary() == scene.summary()


def test_equality_detects_differences(tmp_path):
    scene = open_citygml(TEST_DATA / "citygml" / "fzk_haus_lod2_v2.gml")
    other = Scene.load(scene.save(tmp_path / "s"))
    other.vertices[0, 2] += 1e-9
    assert other != scene
    other = Scene.load(tmp_path / "s")
    other.attributes.iloc[0, 0] = "changed"
    assert other != scene


def test_save_refuses_to_overwrite(tmp_path):
    scene = open_citygml(TEST_DATA / "citygml" / "fzk_haus_lod2_v2.gml")
    scene.save(tmp_path / "s")
    with pytest.raises(TwinIOError, match="overwrite"):
        scene.save(tmp_path / "s")
    scene.save(tmp_path / "s", overwrite=True)
    (tmp_path / "notascene").mkdir()
    (tmp_path / "notascene" / "precious.txt").write_text("keep me")
    with pytest.raises(TwinIOError, match="not a twin scene"):
        scene.save(tmp_path / "notascene", overwrite=True)
    assert (tmp_path / "notascene" / "precious.txt").exists()


def test_load_errors(tmp_path):
    with pytest.raises(SceneFormatError, match="not a twin scene folder"):
        Scene.load(tmp_path)
    scene = open_citygml(TEST_DATA / "citygml" / "fzk_haus_lod2_v2.gml")
    scene.save(tmp_path / "s")
    (tmp_path / "s" / "geometry.npz").unlink()
    with pytest.raises(SceneFormatError, match="re-import"):
        Scene.load(tmp_path / "s")


def test_select_and_concat_keep_geometry_consistent():
    scene = open_citygml(TEST_DATA / "citygml" / "Building_and_garage_LOD2-EPSG25832.xml")
    b = scene.select(layers=["buildings"])
    t = scene.select(layers=["terrain"])
    assert b.n_triangles + t.n_triangles == scene.n_triangles
    assert set(b.features["type"]) == {"Building", "BuildingPart"}
    # surfaces follow their features and triangles still point at the right surface type
    names = np.array(SURFACE_TYPES)[b.triangle_surface_type]
    have = b.triangle_surface >= 0
    assert (b.surfaces["type"].to_numpy()[b.triangle_surface[have]] == names[have]).all()
    both = Scene.concat([b, t])
    assert both.n_triangles == scene.n_triangles and len(both.features) == len(scene.features)
    assert np.allclose(np.sort(both.vertices[both.triangles].reshape(-1, 3), axis=0),
                       np.sort(scene.vertices[scene.triangles].reshape(-1, 3), axis=0))
    other = Scene(crs=SceneCRS("EPSG:25833"))
    with pytest.raises(CRSError, match="different CRSs"):
        Scene.concat([b, other])


def test_invalid_arrays_are_rejected():
    with pytest.raises(ValueError, match="out of range"):
        Scene(crs=CRSS[0], vertices=np.zeros((3, 3)), triangles=[[0, 1, 5]],
              features=typed_table("features", {"type": ["Building"], "parent": [-1], "root": [0], "lod": [1],
                                                "line": [1]}),
              attributes=pd.DataFrame(index=pd.RangeIndex(1, name="feature_id")))
