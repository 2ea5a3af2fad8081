"""CityGML reader on shipped real files and on small synthetic documents with known answers."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tests.common import TEST_DATA, document, lod1_box_building, polygon
from twin.citygml import open_citygml, read_citygml
from twin.errors import CityGMLError, CRSError, HostileXMLError, TwinValueError

CG = TEST_DATA / "citygml"


def volume(scene, fid=None) -> float:
    """Signed volume by the divergence theorem: positive only if normals point outward."""
    sel = slice(None) if fid is None else scene.triangle_feature == fid
    v = scene.vertices[scene.triangles[sel]]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def area(scene, mask=None) -> float:
    v = scene.vertices[scene.triangles if mask is None else scene.triangles[mask]]
    return float(np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1).sum() / 2)


def write(tmp_path, text: str, name="city.gml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------- geometry with known answers
def test_unit_cube_volume_and_outward_normals(tmp_path):
    scene = open_citygml(write(tmp_path, document(lod1_box_building("b1", 10, 20, 30, 2, 3, 4))))
    assert scene.n_triangles == 12
    # box 2 x 3 x 4 m: volume 24 m^3 (exact up to float rounding), surface 2*(6+8+12) = 52 m^2
    assert volume(scene) == pytest.approx(24.0, abs=1e-9)
    assert area(scene) == pytest.approx(52.0, abs=1e-9)
    # outward: the roof's normals point up, the ground's down
    n = scene.triangle_normals()
    z = scene.vertices[scene.triangles].mean(axis=1)[:, 2]
    assert (n[z == 34.0][:, 2] > 0.999).all() and (n[z == 30.0][:, 2] < -0.999).all()
    assert scene.features.loc[0, "lod"] == 1 and str(scene.crs) == "EPSG:25832"


def test_orientable_surface_minus_flips(tmp_path):
    roof = [(0, 0, 1), (0, 1, 1), (1, 1, 1), (1, 0, 1)]   # clockwise seen from above: normal down
    member = ('<core:cityObjectMember><bldg:Building gml:id="b"><bldg:lod2MultiSurface><gml:MultiSurface>'
              '<gml:surfaceMember><gml:OrientableSurface orientation="-"><gml:baseSurface>'
              f'{polygon(roof)}</gml:baseSurface></gml:OrientableSurface></gml:surfaceMember>'
              '</gml:MultiSurface></bldg:lod2MultiSurface></bldg:Building></core:cityObjectMember>')
    scene = open_citygml(write(tmp_path, document(member)))
    assert (scene.triangle_normals()[:, 2] > 0.999).all()


def test_polygon_with_hole_area(tmp_path):
    outer = [(0, 0, 0), (10, 0, 0), (10, 10, 0), (0, 10, 0)]
    hole = [(2, 2, 0), (2, 4, 0), (4, 4, 0), (4, 2, 0)]
    member = ('<core:cityObjectMember><bldg:Building gml:id="b"><bldg:lod2MultiSurface><gml:MultiSurface>'
              f'<gml:surfaceMember>{polygon(outer, holes=[hole])}</gml:surfaceMember></gml:MultiSurface>'
              '</bldg:lod2MultiSurface></bldg:Building></core:cityObjectMember>')
    scene = open_citygml(write(tmp_path, document(member)))
    assert area(scene) == pytest.approx(96.0, abs=1e-9)   # 100 - 4 m^2
    assert (scene.triangle_normals()[:, 2] > 0.999).all()


def test_concave_and_collinear_polygon(tmp_path):
    # an L-shape with a collinear point and a duplicated point: area 3 m^2, normal +z
    pts = [(0, 0, 5), (1, 0, 5), (2, 0, 5), (2, 1, 5), (1, 1, 5), (1, 1, 5), (1, 2, 5), (0, 2, 5)]
    member = ('<core:cityObjectMember><bldg:Building gml:id="b"><bldg:lod2MultiSurface><gml:MultiSurface>'
              f'<gml:surfaceMember>{polygon(pts)}</gml:surfaceMember></gml:MultiSurface>'
              '</bldg:lod2MultiSurface></bldg:Building></core:cityObjectMember>')
    scene = open_citygml(write(tmp_path, document(member)))
    assert area(scene) == pytest.approx(3.0, abs=1e-9)
    assert (scene.triangle_normals()[:, 2] > 0.999).all()
    assert len(scene.problems) == 0


# ---------------------------------------------------------------- bad input is reported, not fatal
def test_broken_features_are_reported_and_skipped(tmp_path):
    bad_coords = ('<core:cityObjectMember><bldg:Building gml:id="bad_coords"><bldg:lod2MultiSurface>'
                  '<gml:MultiSurface><gml:surfaceMember><gml:Polygon gml:id="p_bad"><gml:exterior><gml:LinearRing>'
                  '<gml:posList>0 0 0 1 0 x 1 1 0 0 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>'
                  '</gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface></bldg:Building></core:cityObjectMember>\n')
    two_points = ('<core:cityObjectMember><bldg:Building gml:id="two_points"><bldg:lod2MultiSurface>'
                  f'<gml:MultiSurface><gml:surfaceMember>{polygon([(0, 0, 0), (1, 0, 0), (1, 0, 0)], "p_two")}'
                  '</gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface></bldg:Building></core:cityObjectMember>\n')
    dangling = ('<core:cityObjectMember><bldg:Building gml:id="dangling"><bldg:lod2MultiSurface><gml:MultiSurface>'
                '<gml:surfaceMember xlink:href="#nowhere"/></gml:MultiSurface></bldg:lod2MultiSurface>'
                '</bldg:Building></core:cityObjectMember>\n')
    text = document(lod1_box_building("good1"), bad_coords, two_points, dangling, lod1_box_building("good2", 5))
    scene = open_citygml(write(tmp_path, text))
    assert list(scene.features["gml_id"]) == ["good1", "bad_coords", "two_points", "dangling", "good2"]
    assert scene.n_triangles == 24   # both good boxes, nothing of the broken ones
    probs = scene.problems.set_index("id")
    assert "p_bad" in probs.index and "could not be read" in probs.loc["p_bad", "reason"] or \
        "coordinate" in probs.loc["p_bad", "reason"]
    assert probs.loc["p_two", "action"] == "skipped" and "fewer than 3 distinct" in probs.loc["p_two", "reason"]
    assert "dangling" in probs.loc["dangling", "reason"]
    # every problem carries the line of the offending element
    assert scene.problems["line"].notna().all()
    assert int(probs.loc["p_two", "line"]) == text.splitlines().index(
        next(l for l in text.splitlines() if 'gml:id="p_two"' in l)) + 1


def test_truncated_file_imports_what_came_before(tmp_path):
    text = document(*(lod1_box_building(f"b{i}", 3 * i) for i in range(5)))
    cut = text.index('gml:id="b3"') + 40
    scene = open_citygml(write(tmp_path, text[:cut]))
    assert list(scene.features["gml_id"]) == ["b0", "b1", "b2"]
    assert scene.n_triangles == 36
    row = scene.problems.iloc[-1]
    assert row["action"] == "truncated" and "breaks off" in row["reason"] and row["line"] is not None


def test_truncated_gzip(tmp_path):
    text = document(*(lod1_box_building(f"b{i}", 3 * i) for i in range(50))).encode()
    blob = gzip.compress(text)
    p = tmp_path / "city.gml.gz"
    p.write_bytes(blob[: len(blob) * 2 // 3])
    scene = open_citygml(p)
    assert 0 < len(scene.features) < 50 and (scene.problems["action"] == "truncated").any()


@pytest.mark.parametrize("prolog", [
    '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;">]>',
    '<!DOCTYPE x SYSTEM "http://example.invalid/city.dtd">',
], ids=["xxe", "entity-bomb", "external-dtd"])
def test_hostile_xml_is_refused(tmp_path, prolog):
    text = document(lod1_box_building("b")).replace("?>\n", "?>\n" + prolog + "\n", 1)
    with pytest.raises(HostileXMLError, match="refused"):
        open_citygml(write(tmp_path, text))


def test_missing_crs_names_the_option(tmp_path):
    p = write(tmp_path, document(lod1_box_building("b"), srs=None))
    with pytest.raises(CRSError, match=r"crs=.*--crs"):
        open_citygml(p)
    scene = open_citygml(p, crs="EPSG:25833")
    assert str(scene.crs) == "EPSG:25833"


def test_not_citygml(tmp_path):
    with pytest.raises(CityGMLError):
        open_citygml(write(tmp_path, "<?xml version='1.0'?><html><body>no</body></html>"))
    with pytest.raises(CityGMLError):
        open_citygml(tmp_path / "missing.gml")
    with pytest.raises(CityGMLError, match="not a readable XML"):
        open_citygml(write(tmp_path, "this is not xml at all"))


def test_gzip_input_equals_plain(tmp_path):
    plain = CG / "fzk_haus_lod2_v2.gml"
    gz = tmp_path / "fzk.gml.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = open_citygml(plain), open_citygml(gz)
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.triangles, b.triangles)
    assert a.features[["gml_id", "type"]].equals(b.features[["gml_id", "type"]])


# ---------------------------------------------------------------- real shipped files
def test_fzk_lod2_attributes_and_semantics():
    scene = open_citygml(CG / "fzk_haus_lod2_v2.gml")
    assert (scene.crs.horizontal, scene.crs.vertical) == ("EPSG:25832", "EPSG:5783")   # AdV DHHN92
    a = scene.attributes.iloc[0]
    assert scene.attribute_types["GrossPlannedArea"] == {"type": "measure", "uom": "m2"} or \
        scene.attribute_types["GrossPlannedArea"]["type"] == "measure"
    assert isinstance(a["GrossPlannedArea"], float)
    assert a["ConstructionMethod"] and "Karlsruhe" in a["address"] or "76" in a["address"]
    # 2 roofs, 4 walls, 1 ground; the LoD2 solid references these polygons: no triangle twice
    assert scene.summary()["surfaces"] == {"GroundSurface": 1, "RoofSurface": 2, "WallSurface": 4}
    assert (scene.triangle_surface >= 0).all()
    assert volume(scene) > 0


def test_lod_selection():
    f = CG / "Appearance-EPSG25832.xml"   # has lod1Solid and lod2Solid
    hi, lo = open_citygml(f), open_citygml(f, lod=1)
    b_hi = hi.features.index[hi.features["type"] == "Building"][0]
    b_lo = lo.features.index[lo.features["type"] == "Building"][0]
    assert hi.features.loc[b_hi, "lod"] == 2 and lo.features.loc[b_lo, "lod"] == 1
    assert set(np.unique(lo.triangle_lod[lo.triangle_feature == b_lo])) == {1}
    with pytest.raises(TwinValueError):
        open_citygml(f, lod=7)


def test_tin_relief_is_terrain_layer():
    scene = open_citygml(CG / "Appearance-EPSG25832.xml")
    assert "terrain" in scene.layers
    terrain = scene.select(layers=["terrain"])
    assert terrain.n_triangles == 9   # 9 gml:Triangle in the TINRelief (PROVENANCE.md)


def test_cross_top_level_xlinks_v2_and_v3():
    for name in ("xlink4_CityGML_2.gml", "xlink4_CityGML_3.gml"):
        scene = open_citygml(CG / name, crs="local")
        assert scene.summary()["counts"] == {"Building": 2}
        assert not (scene.problems["action"] == "skipped").any()
        # both buildings are closed boxes with positive volume: the shared wall is present in each
        for fid in range(2):
            assert volume(scene, fid) > 0


def test_citygml3_lod3_openings_and_holes():
    scene = open_citygml(CG / "FZK-Haus-LoD3-KIT-IAI-KHH-B36-V1__v3.gml")
    s = scene.summary()
    assert s["surfaces"]["Window"] == 11 and s["surfaces"]["Door"] == 2
    assert s["counts"] == {"Building": 1} and s["skipped"] == 0


def test_building_part_and_orientable_surface():
    scene = open_citygml(CG / "Building_and_garage_LOD2-EPSG25832.xml")
    f = scene.features
    part = f.index[f["type"] == "BuildingPart"][0]
    assert f.loc[part, "parent"] == f.index[f["type"] == "Building"][0]
    assert volume(scene, part) > 0


def test_implicit_geometry_kept_as_reference():
    scene = open_citygml(CG / "GenericCityObjects.xml")
    assert len(scene.implicit) == 2
    assert scene.implicit.loc[0, "library_object"].endswith("TrafficLight434.wrl")
    assert scene.implicit.loc[0, "ref_z"] == pytest.approx(44.8)
    assert "furniture" in scene.layers


def test_appearance_material_and_missing_images():
    scene = open_citygml(CG / "Appearance-EPSG25832.xml")   # LoD2: textures on the facades
    assert len(scene.textures) >= 1 and (scene.triangle_texture >= 0).any()
    tex_vertices = np.unique(scene.triangles[scene.triangle_texture >= 0])
    assert np.isfinite(scene.uv[tex_vertices]).all()
    lod1 = open_citygml(CG / "Appearance-EPSG25832.xml", lod=1)   # the X3DMaterial targets the LoD1 solid
    assert len(lod1.materials) >= 1 and (lod1.triangle_material >= 0).any()
    # the PNGs are not shipped with the SIG3D example: reported, never fatal
    assert scene.textures["image_path"].isna().all()
    assert scene.problems["reason"].str.contains("not found").any()


def test_berlin_zone33_srsname_on_every_geometry():
    scene = open_citygml(CG / "3840_5820.xml")
    assert str(scene.crs) == "EPSG:25833"
    assert scene.summary()["counts"] == {"Building": 5}
    assert scene.metadata["srs_names"] == {"EPSG:25833": 659}   # PROVENANCE.md: x659


def test_read_several_files_into_one_scene():
    files = sorted((TEST_DATA.parent.parent / "data" / "samples" / "muenchen-tum" / "lod2").glob("*.gml"))
    scene = read_citygml(files)
    singles = [open_citygml(f) for f in files]
    assert len(scene.features) == sum(len(s.features) for s in singles)
    assert scene.n_triangles == sum(s.n_triangles for s in singles)
    assert set(scene.features["source"]) == {str(f) for f in files}
    with pytest.raises(CRSError):
        read_citygml([CG / "3840_5820.xml", CG / "fzk_haus_lod2_v2.gml"])   # UTM33 + UTM32


def test_vegetation_with_instanced_implicit_geometry(tmp_path):
    """relativeGMLGeometry is instanced: p' = M[:3,:3] p + M[:3,3] + referencePoint."""
    tri = polygon([(0, 0, 0), (1, 0, 0), (0, 1, 0)], "tpl")
    member = ('<core:cityObjectMember xmlns:veg="http://www.opengis.net/citygml/vegetation/2.0">'
              '<veg:SolitaryVegetationObject gml:id="tree1"><veg:species>1070</veg:species><veg:height uom="m">12'
              '</veg:height><veg:lod2ImplicitRepresentation><core:ImplicitGeometry>'
              '<core:transformationMatrix>2 0 0 1  0 2 0 0  0 0 2 0  0 0 0 1</core:transformationMatrix>'
              f'<core:relativeGMLGeometry>{tri}</core:relativeGMLGeometry>'
              '<core:referencePoint><gml:Point><gml:pos>100 200 50</gml:pos></gml:Point></core:referencePoint>'
              '</core:ImplicitGeometry></veg:lod2ImplicitRepresentation></veg:SolitaryVegetationObject>'
              '</core:cityObjectMember>')
    scene = open_citygml(write(tmp_path, document(member)))
    assert scene.layers == ["vegetation"] and scene.features.loc[0, "lod"] == 2
    assert scene.attributes.loc[0, "species"] == "1070"
    got = scene.vertices[np.unique(scene.triangles)]
    want = np.array([[101, 200, 50], [103, 200, 50], [101, 202, 50]], float)
    assert np.allclose(np.sort(got, axis=0), np.sort(want, axis=0), atol=1e-12)
    assert len(scene.implicit) == 0 and len(scene.problems) == 0


def test_generic_attribute_types(tmp_path):
    attrs = ('<gml:name>Rathaus</gml:name><bldg:function>31001_1000</bldg:function>'
             '<gen:intAttribute name="floors"><gen:value>4</gen:value></gen:intAttribute>'
             '<gen:doubleAttribute name="area"><gen:value>123.5</gen:value></gen:doubleAttribute>'
             '<gen:dateAttribute name="built"><gen:value>1901-05-01</gen:value></gen:dateAttribute>'
             '<gen:uriAttribute name="web"><gen:value>https://example.org/r</gen:value></gen:uriAttribute>'
             '<gen:measureAttribute name="eaves"><gen:value uom="m">7.5</gen:value></gen:measureAttribute>'
             '<gen:genericAttributeSet name="energy"><gen:doubleAttribute name="demand"><gen:value>88</gen:value>'
             '</gen:doubleAttribute></gen:genericAttributeSet>'
             '<bldg:roofType>3100</bldg:roofType><bldg:measuredHeight uom="m">14.2</bldg:measuredHeight>'
             '<bldg:storeysAboveGround>4</bldg:storeysAboveGround>')
    scene = open_citygml(write(tmp_path, document(lod1_box_building("b", extra=attrs))))
    a = scene.attributes.iloc[0]
    t = scene.attribute_types
    assert a["name"] == "Rathaus" and a["function"] == "31001_1000" and a["roofType"] == "3100"
    assert a["floors"] == 4 and t["floors"]["type"] == "int"
    assert a["area"] == 123.5 and t["area"]["type"] == "double"
    assert a["built"] == "1901-05-01" and t["built"]["type"] == "date"
    assert a["web"] == "https://example.org/r" and t["web"]["type"] == "uri"
    assert a["eaves"] == 7.5 and t["eaves"] == {"type": "measure", "uom": "m"}
    assert a["energy.demand"] == 88.0
    assert a["measuredHeight"] == 14.2 and t["measuredHeight"] == {"type": "measure", "uom": "m"}
    assert a["storeysAboveGround"] == 4 and str(scene.attributes["storeysAboveGround"].dtype) == "Int64"


def test_parallel_read_equals_sequential():
    files = sorted((TEST_DATA.parent.parent / "data" / "samples" / "muenchen-tum" / "lod2").glob("*.gml"))
    a = read_citygml(files, workers=1)
    b = read_citygml(files, workers=2)
    assert a == b


def _without_lines(scene):
    f = scene.features.drop(columns=["line"])
    return f, scene.features["line"].to_numpy()


def test_split_import_equals_serial(tmp_path):
    """One file imported in two parts by two processes gives the serial result."""
    text = document(*(lod1_box_building(f"b{i}", 3 * i, extra=f"<gml:name>n{i}</gml:name>") for i in range(40)))
    p = write(tmp_path, text)
    a = open_citygml(p, workers=1)
    b = open_citygml(p, workers=2)
    assert b.metadata["parallel_parts"] == 2 and "parallel_parts" not in a.metadata
    fa, la = _without_lines(a)
    fb, lb = _without_lines(b)
    assert fa.equals(fb) and a.attributes.equals(b.attributes)
    # libxml2 reports a start tag's line +-1 depending on where its input buffer broke
    assert np.abs(la - lb).max() <= 1
    for name in ("vertices", "triangles", "triangle_feature", "triangle_surface_type"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata["srs_names"] == b.metadata["srs_names"]


def test_split_falls_back_to_serial_for_cross_part_xlinks(tmp_path):
    """A Solid in the last building that references a polygon of the first: the parts depend on each
    other, so the reader imports serially and nothing dangles."""
    first = lod1_box_building("b0").replace("<gml:Polygon>", '<gml:Polygon gml:id="shared">', 1)
    last = ('<core:cityObjectMember><bldg:Building gml:id="blast"><bldg:lod2MultiSurface><gml:MultiSurface>'
            '<gml:surfaceMember xlink:href="#shared"/></gml:MultiSurface></bldg:lod2MultiSurface>'
            '</bldg:Building></core:cityObjectMember>\n')
    body = [first] + [lod1_box_building(f"b{i}", 3 * i) for i in range(1, 30)] + [last]
    scene = open_citygml(write(tmp_path, document(*body)), workers=2)
    assert "parallel_parts" not in scene.metadata
    assert not scene.problems["reason"].str.contains("dangling").any()
    assert (scene.triangle_feature == len(scene.features) - 1).sum() == 2   # the shared square
