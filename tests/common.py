"""Canonical test inputs, defined once: paths to shipped and shared data, tiny CityGML documents."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SAMPLES = REPO / "data" / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with a clear reason where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is only beside the repo in CI and dev checkouts)")
    return path


CITYGML2_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0"
  xmlns:bldg="http://www.opengis.net/citygml/building/2.0"
  xmlns:gen="http://www.opengis.net/citygml/generics/2.0"
  xmlns:dem="http://www.opengis.net/citygml/relief/2.0"
  xmlns:gml="http://www.opengis.net/gml" xmlns:xlink="http://www.w3.org/1999/xlink"
  xmlns:xAL="urn:oasis:names:tc:ciq:xsdschema:xAL:2.0">
"""
CITYGML2_FOOTER = "</core:CityModel>\n"


def ring(points, ident: str | None = None) -> str:
    pts = list(points) + [points[0]]
    rid = f' gml:id="{ident}"' if ident else ""
    return (f"<gml:LinearRing{rid}><gml:posList>" + " ".join(f"{x} {y} {z}" for x, y, z in pts)
            + "</gml:posList></gml:LinearRing>")


def polygon(points, ident: str | None = None, holes=()) -> str:
    pid = f' gml:id="{ident}"' if ident else ""
    inner = "".join(f"<gml:interior>{ring(h)}</gml:interior>" for h in holes)
    return f"<gml:Polygon{pid}><gml:exterior>{ring(points)}</gml:exterior>{inner}</gml:Polygon>"


def box_faces(x0, y0, z0, dx, dy, dz):
    """The six faces of an axis-aligned box, counter-clockwise seen from outside."""
    x1, y1, z1 = x0 + dx, y0 + dy, z0 + dz
    return {
        "GroundSurface": [(x0, y0, z0), (x0, y1, z0), (x1, y1, z0), (x1, y0, z0)],
        "RoofSurface": [(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)],
        "WallSurface": [
            [(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)],
            [(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)],
            [(x1, y1, z0), (x0, y1, z0), (x0, y1, z1), (x1, y1, z1)],
            [(x0, y1, z0), (x0, y0, z0), (x0, y0, z1), (x0, y1, z1)],
        ],
    }


def lod1_box_building(ident: str, x0=0.0, y0=0.0, z0=0.0, dx=1.0, dy=1.0, dz=1.0, extra: str = "") -> str:
    f = box_faces(x0, y0, z0, dx, dy, dz)
    faces = [f["GroundSurface"], f["RoofSurface"], *f["WallSurface"]]
    members = "".join(f"<gml:surfaceMember>{polygon(p)}</gml:surfaceMember>" for p in faces)
    return (f'<core:cityObjectMember><bldg:Building gml:id="{ident}">{extra}'
            f"<bldg:lod1Solid><gml:Solid><gml:exterior><gml:CompositeSurface>{members}"
            "</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod1Solid>"
            "</bldg:Building></core:cityObjectMember>\n")


def document(*members: str, srs: str | None = "EPSG:25832") -> str:
    env = (f'<gml:boundedBy><gml:Envelope srsName="{srs}" srsDimension="3"><gml:lowerCorner>0 0 0</gml:lowerCorner>'
           "<gml:upperCorner>100 100 100</gml:upperCorner></gml:Envelope></gml:boundedBy>\n") if srs else ""
    return CITYGML2_HEADER + env + "".join(members) + CITYGML2_FOOTER
