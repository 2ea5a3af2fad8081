"""Every CityGML file in ../shared/data/citygml imports, and its counts match an independent count.

The counter below is written against the XML directly (lxml iterparse by element local name), not
with the importer's code, so a mistake in the reader's traversal shows up as a count mismatch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from tests.common import SHARED_DATA, TEST_DATA, shared
from twin.citygml import open_citygml

# surface element names -> the name twin reports (CityGML 3.0 calls openings WindowSurface/DoorSurface)
SURFACES = {"RoofSurface": "RoofSurface", "WallSurface": "WallSurface", "GroundSurface": "GroundSurface",
            "ClosureSurface": "ClosureSurface", "OuterCeilingSurface": "OuterCeilingSurface",
            "OuterFloorSurface": "OuterFloorSurface", "Window": "Window", "WindowSurface": "Window",
            "Door": "Door", "DoorSurface": "Door", "WaterSurface": "WaterSurface",
            "WaterGroundSurface": "WaterGroundSurface", "WaterClosureSurface": "WaterClosureSurface"}
# interior (LoD4) features are not imported; surfaces inside them are not counted
INTERIOR = {"Room", "IntBuildingInstallation", "BuildingFurniture", "BuildingRoom"}


def independent_counts(path: Path) -> dict:
    """Count Building, BuildingPart and semantic surfaces, and the union of all envelopes."""
    counts: Counter = Counter()
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    clo = np.full(3, np.inf)
    chi = np.full(3, -np.inf)
    for el in tree.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in ("lowerCorner", "upperCorner"):
            if any(etree.QName(a).localname == "Envelope" for a in el.iterancestors()) is False:
                continue
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el).localname
        if name in ("Building", "BuildingPart"):
            counts[name] += 1
        elif name in SURFACES:
            if not any(etree.QName(a).localname in INTERIOR for a in el.iterancestors()):
                counts["surface:" + SURFACES[name]] += 1
        elif name in ("posList", "pos") and el.text and el.text.strip():
            vals = np.array(el.text.split(), float)
            dim = int(el.get("srsDimension") or (3 if vals.size % 3 == 0 else 2))
            xyz = vals.reshape(-1, dim)[:, :3]
            if xyz.shape[1] == 3:
                clo = np.minimum(clo, xyz.min(axis=0))
                chi = np.maximum(chi, xyz.max(axis=0))
        elif name == "lowerCorner":
            lo = np.minimum(lo, np.array(el.text.split(), float)[:3])
        elif name == "upperCorner":
            hi = np.maximum(hi, np.array(el.text.split(), float)[:3])
    return {"counts": counts, "envelope": (lo, hi), "coordinates": (clo, chi)}


# Envelopes that the files' own coordinates exceed (measured with independent_counts, which reads
# every posList): metres by which the imported bbox may stick out, and why.
ENVELOPE_ALLOWANCE = {
    # generated citygml4j sample: envelope z 0..10 m, roofs reach 12 m
    "lod2_buildings_v3.gml": 2.0,
    # AdV 1 km tiles: the envelope is the tile; buildings crossing its edge are kept whole
    # (x up to 281004.94 on 5657), and 5659's lowest ground point is 0.39 m under the envelope's z
    "LoD2_32_280_5657_1_NW.gml": 5.0,
    "LoD2_32_280_5659_1_NW.gml": 0.5,
    # LoD0 roof edge overhangs the footprint-based envelope by 0.5 m
    "fzk_haus_lod0_v2.gml": 0.5,
    # synthetic SIG3D sample: furniture reference points in Gauss-Krueger coordinates (3603845 ...)
    # while the envelope covers the building's small local coordinates
    "GenericCityObjects.xml": float("inf"),
}


def _all_files():
    root = SHARED_DATA / "citygml"
    if not root.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} is absent"))]
    files = sorted(p for p in root.rglob("*") if p.suffix in (".gml", ".xml", ".citygml"))
    return [pytest.param(p, id=str(p.relative_to(root))) for p in files]


def _open(path: Path):
    # files without any srsName (OGC XLink examples) or with an inline engineering CRS are
    # imported as unreferenced local coordinates: the documented way is crs="local"
    text = path.read_text(encoding="utf-8", errors="replace")
    if "srsName" not in text or 'srsName="#' in text:
        return open_citygml(path, crs="local")
    return open_citygml(path)


@pytest.mark.shared
@pytest.mark.parametrize("path", _all_files())
def test_shared_file_imports_with_independent_counts(path):
    scene = _open(path)
    summary = scene.summary()
    expected = independent_counts(path)
    c = expected["counts"]
    assert summary["counts"].get("Building", 0) == c["Building"]
    assert summary["counts"].get("BuildingPart", 0) == c["BuildingPart"]
    got_surfaces = {k: v for k, v in summary["surfaces"].items()}
    want_surfaces = {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("surface:")}
    assert got_surfaces == want_surfaces
    assert summary["skipped"] <= 2, summary["problems"][:5]   # only the textured LoD3 has 2 degenerate slivers
    if not summary["triangles"]:
        return
    bbox = np.array(summary["bbox"])
    tol = 0.01  # m: envelopes are written with cm precision in these files
    clo, chi = expected["coordinates"]   # extent of every coordinate in the file (all LoDs)
    assert (bbox[:3] >= clo - 1e-9).all() and (bbox[3:] <= chi + 1e-9).all(), (bbox, clo, chi)
    lo, hi = expected["envelope"]
    if np.isfinite(lo).all():
        tol = tol + ENVELOPE_ALLOWANCE.get(path.name, 0.0)
        assert (bbox[:3] >= lo - tol).all() and (bbox[3:] <= hi + tol).all(), (bbox, lo, hi)


@pytest.mark.shared
def test_shipped_test_files_are_copies_of_shared():
    """tests/data/citygml is a verbatim subset of ../shared/data/citygml (provenance in its README)."""
    root = shared("citygml")
    shared_bytes = {p.read_bytes() for p in root.rglob("*") if p.is_file() and p.suffix in (".gml", ".xml")}
    for p in (TEST_DATA / "citygml").iterdir():
        assert p.read_bytes() in shared_bytes, p


@pytest.mark.shared
def test_nrw_tile_xlink_solids_and_crs():
    """NRW LoD2 (CityGML 1.0, AdV CRS, Solids only by xlink:href): reference counts from its PROVENANCE.md."""
    path = shared("citygml", "nrw-lod2-selfkant", "LoD2_32_280_5657_1_NW.gml")
    scene = open_citygml(path)
    assert str(scene.crs) == "EPSG:25832+7837"
    s = scene.summary()
    assert s["counts"] == {"Building": 83, "BuildingPart": 50}
    # PROVENANCE.md: Roof 170, Wall 708, Ground 113, Closure 78 (lxml iterparse counts)
    assert s["surfaces"] == {"ClosureSurface": 78, "GroundSurface": 113, "RoofSurface": 170, "WallSurface": 708}
    # every building or part with a solid got geometry: 113 solids
    lods = scene.features["lod"].to_numpy()
    assert (lods == 2).sum() == 113
    # each solid is closed: the sum of triangle normals weighted by area is ~0 per feature
    v = scene.vertices[scene.triangles]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    per_feature = np.zeros((len(scene.features), 3))
    np.add.at(per_feature, scene.triangle_feature, cross)
    area = np.zeros(len(scene.features))
    np.add.at(area, scene.triangle_feature, np.linalg.norm(cross, axis=1))
    # closed surfaces have zero vector area; real solids carry mm rounding, so relative 1e-4
    has = area > 0
    assert (np.linalg.norm(per_feature[has], axis=1) <= 1e-4 * area[has]).all()


@pytest.mark.shared
def test_hamburg_editions_keep_their_height_datum():
    s16 = open_citygml(shared("citygml", "hamburg-lod2-576-5950", "2016", "LoD2_576_5950_1_HH.xml"))
    s22 = open_citygml(shared("citygml", "hamburg-lod2-576-5950", "2022", "LoD2_576_5950_1_HH.xml"))
    assert (s16.crs.horizontal, s16.crs.vertical) == ("EPSG:25832", "EPSG:5783")   # DHHN92
    assert (s22.crs.horizontal, s22.crs.vertical) == ("EPSG:25832", "EPSG:7837")   # DHHN2016
    # PROVENANCE.md: bounds E 576230..576576, N 5949995..5950846
    bb = s22.bbox
    assert 576229 <= bb[0] and bb[3] <= 576577 and 5949994 <= bb[1] and bb[4] <= 5950847


@pytest.mark.shared
def test_potsdam_typed_generic_attributes():
    """Potsdam LoD1: 519 string, 194 int, 485 double generic attributes (PROVENANCE.md counts)."""
    scene = open_citygml(shared("citygml", "potsdam-lod1", "Potsdam_LoD1.gml"))
    assert str(scene.crs) == "EPSG:25833+5783"
    types = scene.attribute_types
    n = {"string": 0, "int": 0, "double": 0}
    for col in scene.attributes.columns:
        kind = types[col]["type"]
        if kind in n and col not in ("name", "function", "usage", "measuredHeight", "roofType",
                                     "storeysAboveGround", "address", "class", "description",
                                     "yearOfConstruction", "creationDate"):
            n[kind] += int(scene.attributes[col].notna().sum())
    assert n == {"string": 519, "int": 194, "double": 485}


@pytest.mark.shared
def test_textured_lod3_keeps_texture_coordinates():
    scene = open_citygml(shared("citygml", "textured-lod3", "lod3_building_v2.gml"))
    assert len(scene.textures) == 35 and len(scene.materials) == 35   # PROVENANCE.md: 35 + 35
    assert scene.textures["image_path"].notna().all()   # all 8 images are next to the file
    textured = scene.triangle_texture >= 0
    assert textured.sum() > 0
    uv = scene.uv[np.unique(scene.triangles[textured])]
    assert np.isfinite(uv).all()   # every vertex of a textured triangle has coordinates
