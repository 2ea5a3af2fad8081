"""Every CRS spelling found in ../shared/data/citygml maps onto horizontal + vertical EPSG codes."""

import pytest

from twin.crs import SceneCRS, parse_crs
from twin.errors import CRSError

SPELLINGS = [
    ("EPSG:25832", "EPSG:25832", None),
    ("EPSG:25833", "EPSG:25833", None),
    ("25832", "EPSG:25832", None),
    ("urn:ogc:def:crs:EPSG::25832", "EPSG:25832", None),
    ("urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783", "EPSG:25832", "EPSG:5783"),
    ("urn:ogc:def:crs,crs:EPSG:6.12:25833,crs:EPSG:6.12:5783", "EPSG:25833", "EPSG:5783"),
    ("urn:ogc:def:crs,crs:EPSG:6.12:3068,crs:EPSG:6.12:5783", "EPSG:3068", "EPSG:5783"),
    ("urn:ogc:def:crs,crs:EPSG::31466,crs:EPSG::5783", "EPSG:31466", "EPSG:5783"),
    ("urn:ogc:def:crs:EPSG:25832, crs:EPSG:5783", "EPSG:25832", "EPSG:5783"),   # malformed, seen in SIG3D data
    ("EPSG:6.12:25833", "EPSG:25833", None),
    ("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016", "EPSG:25832", "EPSG:7837"),
    ("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH", "EPSG:25832", "EPSG:7837"),
    ("urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH", "EPSG:25832", "EPSG:5783"),
    ("urn:adv:crs:ETRS89_UTM33*DE_DHHN2016_NH", "EPSG:25833", "EPSG:7837"),
    ("http://www.opengis.net/def/crs/EPSG/0/25832", "EPSG:25832", None),
    ("EPSG:25832+7837", "EPSG:25832", "EPSG:7837"),
]


@pytest.mark.parametrize("text,horizontal,vertical", SPELLINGS)
def test_spellings(text, horizontal, vertical):
    crs = parse_crs(text)
    assert (crs.horizontal, crs.vertical, crs.source) == (horizontal, vertical, text)
    assert crs.to_pyproj().is_projected if horizontal != "EPSG:3068" or True else True


@pytest.mark.parametrize("text", ["", "#local-CRS-1", "urn:adv:crs:MARS_UTM99", "nonsense"])
def test_unreadable_spellings_name_the_option(text):
    with pytest.raises(CRSError, match="crs="):
        parse_crs(text)


def test_local_and_round_trip():
    assert parse_crs("local").is_local
    c = parse_crs("urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783")
    assert SceneCRS.from_dict(c.to_dict()) == c and str(c) == "EPSG:25832+5783"
