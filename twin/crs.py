"""Coordinate reference systems: one place that understands every CRS spelling of German data.

CityGML files name their CRS in many ways (plain ``EPSG:25832``, OGC URNs, compound URNs with or
without an EPSG version, the AdV profile's ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016``,
OGC http URIs, and a few malformed variants seen in the wild). :func:`parse_crs` maps all of
them onto a :class:`SceneCRS` of a horizontal and an optional vertical EPSG code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from twin.errors import CRSError

__all__ = ["SceneCRS", "parse_crs", "LOCAL_CRS"]

#: The name of the unreferenced ("local engineering") CRS: coordinates are kept as they are.
LOCAL_CRS = "local"

# AdV CRS identifiers (GeoInfoDok, "Koordinatenreferenzsysteme der AdV") -> EPSG codes.
_ADV_HORIZONTAL = {
    "ETRS89_UTM32": 25832,
    "ETRS89_UTM33": 25833,
    "ETRS89_3GK3": 5677,   # ETRS89 / 3-degree Gauss-Krueger zone 3 (E-N)
    "ETRS89_LAT-LON": 4258,
    "DE_DHDN_3GK2": 31466,
    "DE_DHDN_3GK3": 31467,
    "DE_DHDN_3GK4": 31468,
    "DE_DHDN_3GK5": 31469,
    "DE_DHDN_LAT-LON": 4314,
}
_ADV_VERTICAL = {
    "DE_DHHN2016_NH": 7837,
    "DE_DHHN92_NH": 5783,
    "DE_DHHN85_NOH": 5784,
    "DE_SNN76_NH": 5785,
}
# Vertical EPSG codes we recognise when a compound spelling lists two codes.
_VERTICAL_EPSG = {5783, 5784, 5785, 7837, 5773, 3855, 5714, 5701, 8357}

_EPSG_CODE = re.compile(r"EPSG(?::[0-9.]*)?:+(\d+)", re.IGNORECASE)
_HTTP_CODE = re.compile(r"/def/crs/EPSG/[^/]+/(\d+)", re.IGNORECASE)
_GML_SRS = re.compile(r"epsg\.xml#(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class SceneCRS:
    """A scene's coordinate reference system: horizontal CRS plus optional vertical datum.

    Parameters
    ----------
    horizontal : str or None
        ``"EPSG:25832"`` style code, or None for an unreferenced local engineering CRS.
    vertical : str or None
        ``"EPSG:7837"`` (DHHN2016), ``"EPSG:5783"`` (DHHN92), ... or None when the source
        did not say which height system its z values are in.
    source : str or None
        The spelling this CRS was parsed from, kept for the record.
    """

    horizontal: str | None
    vertical: str | None = None
    source: str | None = field(default=None, compare=False)

    @property
    def is_local(self) -> bool:
        """True for an unreferenced (local engineering) CRS."""
        return self.horizontal is None

    @property
    def horizontal_epsg(self) -> int | None:
        return None if self.horizontal is None else int(self.horizontal.split(":")[1])

    @property
    def vertical_epsg(self) -> int | None:
        return None if self.vertical is None else int(self.vertical.split(":")[1])

    def to_dict(self) -> dict:
        return {"horizontal": self.horizontal, "vertical": self.vertical, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneCRS":
        return cls(d.get("horizontal"), d.get("vertical"), d.get("source"))

    def to_pyproj(self):
        """The pyproj CRS (compound when a vertical datum is known)."""
        import pyproj

        if self.is_local:
            raise CRSError("a local engineering CRS has no georeference; import with crs='EPSG:...'")
        if self.vertical is None:
            return pyproj.CRS.from_epsg(self.horizontal_epsg)
        return pyproj.CRS.from_user_input(f"{self.horizontal}+{self.vertical_epsg}")

    def __str__(self) -> str:
        if self.is_local:
            return LOCAL_CRS
        return self.horizontal if self.vertical is None else f"{self.horizontal}+{self.vertical_epsg}"


def _split_codes(codes: list[int], text: str) -> SceneCRS:
    horizontal = [c for c in codes if c not in _VERTICAL_EPSG]
    vertical = [c for c in codes if c in _VERTICAL_EPSG]
    if len(horizontal) != 1 or len(vertical) > 1:
        raise CRSError(f"cannot read a CRS from {text!r}: expected one horizontal and at most one "
                       "vertical EPSG code; pass crs='EPSG:25832' (or --crs) to set it")
    return SceneCRS(f"EPSG:{horizontal[0]}", f"EPSG:{vertical[0]}" if vertical else None, text)


def parse_crs(text: "str | SceneCRS | int | None") -> SceneCRS:
    """Parse any CRS spelling found in German CityGML into a :class:`SceneCRS`.

    Parameters
    ----------
    text : str, int or SceneCRS
        ``EPSG:25832``, ``25832``, ``EPSG:25832+7837``, ``urn:ogc:def:crs:EPSG::25832``,
        ``urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783``, ``urn:ogc:def:crs,crs:EPSG:6.12:25833,crs:EPSG:6.12:5783``,
        the malformed ``urn:ogc:def:crs:EPSG:25832, crs:EPSG:5783``,
        ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016``,
        ``http://www.opengis.net/def/crs/EPSG/0/25832`` or ``"local"``.

    Raises
    ------
    CRSError
        If the spelling is empty, an inline local CRS reference (``#local-CRS-1``) or unknown.

    Examples
    --------
    >>> parse_crs("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016")
    SceneCRS(horizontal='EPSG:25832', vertical='EPSG:7837', source='urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016')
    >>> str(parse_crs("urn:ogc:def:crs,crs:EPSG:6.12:25833,crs:EPSG:6.12:5783"))
    'EPSG:25833+5783'
    """
    if isinstance(text, SceneCRS):
        return text
    if isinstance(text, int):
        return SceneCRS(f"EPSG:{text}", None, str(text))
    if text is None or not str(text).strip():
        raise CRSError("no CRS given; pass crs='EPSG:25832' (or --crs EPSG:25832) to set it")
    s = str(text).strip()
    if s.lower() == LOCAL_CRS:
        return SceneCRS(None, None, s)
    if s.startswith("#"):
        raise CRSError(f"the srsName {s!r} refers to a local engineering CRS defined inside the file; "
                       "pass crs='EPSG:...' (or --crs) if you know the real CRS, or crs='local' to keep "
                       "the coordinates unreferenced")
    if s.isdigit():
        return SceneCRS(f"EPSG:{int(s)}", None, s)
    if s.lower().startswith("urn:adv:crs:"):
        parts = [p.strip().upper() for p in s[len("urn:adv:crs:"):].split("*")]
        h = _ADV_HORIZONTAL.get(parts[0])
        if h is None:
            raise CRSError(f"unknown AdV CRS {parts[0]!r} in {s!r}; pass crs='EPSG:...' (or --crs)")
        v = None
        for p in parts[1:]:
            if p in _ADV_VERTICAL:
                v = _ADV_VERTICAL[p]
            elif p not in {"GCG2016", "GCG2011", "GCG05", ""}:
                raise CRSError(f"unknown AdV height system {p!r} in {s!r}; pass crs='EPSG:...' (or --crs)")
        return SceneCRS(f"EPSG:{h}", f"EPSG:{v}" if v else None, s)
    m = re.fullmatch(r"EPSG:(\d+)\+(\d+)", s, re.IGNORECASE)
    if m:
        return SceneCRS(f"EPSG:{int(m[1])}", f"EPSG:{int(m[2])}", s)
    codes = [int(c) for c in _EPSG_CODE.findall(s)] or [int(c) for c in _HTTP_CODE.findall(s)] \
        or [int(c) for c in _GML_SRS.findall(s)]
    if not codes:
        raise CRSError(f"cannot read a CRS from srsName {s!r}; pass crs='EPSG:25832' (or --crs) to set it")
    return _split_codes(codes, s)
