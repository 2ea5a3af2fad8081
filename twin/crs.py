"""Coordinate reference systems: one place that understands every CRS spelling of German data.

CityGML files name their CRS in many ways (plain ``EPSG:25832``, OGC URNs, compound URNs with or
without an EPSG version, the AdV profile's ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016``,
OGC http URIs, and a few malformed variants seen in the wild). :func:`parse_crs` maps all of
them onto a :class:`SceneCRS` of a horizontal and an optional vertical EPSG code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from twin.errors import CRSError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["SceneCRS", "parse_crs", "LOCAL_CRS", "resolve_crs", "register_grids", "height_transformer",
           "to_ellipsoidal", "to_ecef", "to_enu", "enu_to_ecef_matrix"]

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


# ---------------------------------------------------------------------------------------------
# Heights: scene CRS -> ellipsoidal heights (EPSG:4979), ECEF (EPSG:4978) and a local ENU frame.
# ---------------------------------------------------------------------------------------------

#: EPSG code of WGS 84 geographic 3D (longitude, latitude, ellipsoidal height).
GEOGRAPHIC_3D = "EPSG:4979"
#: EPSG code of WGS 84 geocentric (ECEF) coordinates.
ECEF = "EPSG:4978"

#: Vertical datums whose heights go through another datum's quasigeoid, with the reason. DHHN92
#: and DHHN2016 normal heights differ by a few centimetres (BKG, "Der neue Höhenbezug DHHN2016"),
#: far below the accuracy of LoD2 models, and PROJ has no grid-based DHHN92 transformation
#: (only a ballpark one that keeps the height unchanged).
_VERTICAL_SUBSTITUTES = {
    5783: (7837, "DHHN92 (EPSG:5783) heights transformed with the DHHN2016 quasigeoid GCG2016 "
                 "(EPSG:7837); the two datums differ by a few centimetres"),
}

_GRID_DIR_NAME = "geoid"
_registered_dirs: set[str] = set()


def grid_directory():
    """The folder of PROJ grids shipped with twin (the GCG2016 quasigeoid).

    Returns
    -------
    pathlib.Path
        ``twin/data/geoid`` inside the installed package.
    """
    from pathlib import Path

    return Path(__file__).resolve().parent / "data" / _GRID_DIR_NAME


def register_grids(directory=None) -> None:
    """Make PROJ find twin's shipped grids (no network needed); idempotent.

    Parameters
    ----------
    directory : path-like, optional
        Folder of PROJ grid files; default :func:`grid_directory`.
    """
    import pyproj

    d = str(grid_directory() if directory is None else directory)
    if d not in _registered_dirs:
        pyproj.datadir.append_data_dir(d)
        _registered_dirs.add(d)


def resolve_crs(crs: "str | int | SceneCRS") -> tuple["object", str | None]:
    """Turn any CRS spelling into the pyproj CRS used for height transformations.

    Parameters
    ----------
    crs : str, int or SceneCRS
        Any spelling :func:`parse_crs` accepts.

    Returns
    -------
    pyproj_crs : pyproj.CRS
        Compound (horizontal + vertical) where a vertical datum is known, else horizontal only.
    note : str or None
        Set when the vertical datum was substituted (DHHN92 through GCG2016); record it in the
        scene's metadata.

    Raises
    ------
    CRSError
        For a local engineering CRS or an EPSG code that PROJ does not know.
    """
    import pyproj

    scrs = parse_crs(crs)
    if scrs.is_local:
        raise CRSError("a local engineering CRS has no georeference, so it has no ellipsoidal heights; "
                       "import the scene with crs='EPSG:25832+7837' (or --crs) if you know its CRS")
    note = None
    v = scrs.vertical_epsg
    if v in _VERTICAL_SUBSTITUTES:
        v, note = _VERTICAL_SUBSTITUTES[v]
    text = scrs.horizontal if v is None else f"{scrs.horizontal}+{v}"
    try:
        return pyproj.CRS.from_user_input(text), note
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"PROJ does not know the CRS {text!r} (from {scrs.source!r}); pass a valid "
                       "crs='EPSG:...'") from exc


def height_transformer(crs: "str | int | SceneCRS", target: str = GEOGRAPHIC_3D):
    """The best PROJ transformation from a scene CRS to ``target``; refuses degraded ones.

    The shipped grids are registered first. PROJ falls back, without error, to a "ballpark"
    operation that keeps the height unchanged when a geoid grid is missing; that would put every
    German building ~45 m below its true ellipsoidal height, so this raises instead.

    Parameters
    ----------
    crs : str, int or SceneCRS
        Source CRS; must have a vertical datum (a horizontal-only CRS has no defined heights).
    target : str
        ``"EPSG:4979"`` (lon, lat, ellipsoidal height) or ``"EPSG:4978"`` (ECEF), always x/y order.

    Returns
    -------
    pyproj.Transformer
        ``always_xy=True``.

    Raises
    ------
    MissingGridError
        When the best transformation needs a grid PROJ cannot find (the message names it), or
        when only a ballpark vertical transformation exists.
    CRSError
        When the CRS has no vertical datum, or is local.
    """
    register_grids()
    return _height_transformer(str(parse_crs(crs)), target, frozenset(_registered_dirs))


@lru_cache(maxsize=32)
def _height_transformer(crs: str, target: str, _grid_dirs: frozenset):
    # cached: building a TransformerGroup costs ~0.3 s; the key includes the registered grid folders
    from pyproj.transformer import TransformerGroup

    from twin.errors import MissingGridError

    src, _ = resolve_crs(crs)
    if not src.is_compound:
        raise CRSError(f"the CRS {parse_crs(crs)} has no vertical datum, so its z values cannot be turned into "
                       "ellipsoidal heights; import with crs='EPSG:25832+7837' (DHHN2016) or the datum of your data")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PROJ only warns about missing grids; we raise below
        group = TransformerGroup(src, target, always_xy=True)
    if not group.best_available or not group.transformers:
        missing = sorted({g.short_name or g.name for op in group.unavailable_operations
                          for g in op.grids if not g.available})
        raise MissingGridError(
            f"the best transformation from {src.name} to {target} needs the grid(s) {', '.join(missing) or '?'} "
            "which PROJ cannot find; put them in a folder and call twin.crs.register_grids(folder) "
            "(or set PROJ_DATA), e.g. from https://cdn.proj.org")
    best = group.transformers[0]
    if "ballpark vertical" in best.description.lower():
        raise MissingGridError(
            f"PROJ has no geoid-based transformation from {src.name} to {target} (only '{best.description}', "
            "which keeps heights unchanged); install the geoid grid of this vertical datum and call "
            "twin.crs.register_grids(folder)")
    return best


def _xyz(xyz) -> np.ndarray:
    import numpy as np

    a = np.asarray(xyz, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise CRSError(f"expected points of shape (n, 3) (x, y, z in metres), got {a.shape}")
    return a


def to_ellipsoidal(crs: "str | int | SceneCRS", xyz) -> "np.ndarray":
    """Scene coordinates to WGS 84 longitude, latitude (degrees) and ellipsoidal height (metres).

    Parameters
    ----------
    crs : str, int or SceneCRS
        The scene CRS, with a vertical datum.
    xyz : array_like, shape (n, 3)
        Easting, northing, physical height in metres.

    Returns
    -------
    ndarray of float64, shape (n, 3)
        lon (deg), lat (deg), h (m above the WGS 84 ellipsoid, EPSG:4979).

    Examples
    --------
    >>> to_ellipsoidal("EPSG:25832+7837", [[565500.0, 5928500.0, 5.0]])[0, 2].round(2)
    np.float64(45.02)
    """
    import numpy as np

    return _transform_points(crs, xyz, GEOGRAPHIC_3D)


def to_ecef(crs: "str | int | SceneCRS", xyz) -> "np.ndarray":
    """Scene coordinates to Earth-centred Earth-fixed X, Y, Z in metres (EPSG:4978).

    Parameters
    ----------
    crs : str, int or SceneCRS
        The scene CRS, with a vertical datum.
    xyz : array_like, shape (n, 3)
        Easting, northing, physical height in metres.

    Returns
    -------
    ndarray of float64, shape (n, 3)
    """
    import numpy as np

    return _transform_points(crs, xyz, ECEF)


def _transform_points(crs, xyz, target: str) -> "np.ndarray":
    """(n, 3) scene points through the cached height transformer to ``target``; never inf/NaN."""
    import numpy as np

    p = _xyz(xyz)
    a, b, c = height_transformer(crs, target).transform(p[:, 0], p[:, 1], p[:, 2])
    return _finite(crs, p, np.column_stack([a, b, c]).astype(np.float64))


def _finite(crs, src: "np.ndarray", out: "np.ndarray") -> "np.ndarray":
    """Raise instead of returning inf/NaN for finite input: the points lie outside the area where
    the transformation (its grids) is defined, which means the data's CRS is not what it says."""
    import numpy as np

    bad = ~np.isfinite(out).all(axis=1) & np.isfinite(src).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CRSError(f"{int(bad.sum())} of {len(src)} points cannot be transformed from {crs} (e.g. "
                       f"{src[i, 0]:.2f}, {src[i, 1]:.2f}, {src[i, 2]:.2f}): they lie outside the area of the "
                       "CRS or of its transformation grids. Check the file's srsName against its coordinates, "
                       "or pass the right crs= / --crs")
    return out


def enu_to_ecef_matrix(crs: "str | int | SceneCRS", origin) -> "np.ndarray":
    """The 4x4 matrix that maps a local east-north-up frame at ``origin`` to ECEF.

    This is the root transform of 3D Tiles: geometry is stored in metres relative to the origin
    (no float32 precision loss) and the matrix places it on the globe.

    Parameters
    ----------
    crs : str, int or SceneCRS
        The scene CRS, with a vertical datum.
    origin : array_like, shape (3,)
        Origin in scene coordinates (metres).

    Returns
    -------
    ndarray of float64, shape (4, 4)
        Columns: east, north, up unit vectors and the origin in ECEF (row-major, last row 0 0 0 1).
    """
    import numpy as np

    o = _xyz(np.reshape(origin, (1, 3)))
    lon, lat, _ = to_ellipsoidal(crs, o)[0]
    ecef = to_ecef(crs, o)[0]
    lam, phi = np.radians(lon), np.radians(lat)
    east = np.array([-np.sin(lam), np.cos(lam), 0.0])
    north = np.array([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)])
    up = np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = east, north, up, ecef
    return m


def to_enu(crs: "str | int | SceneCRS", xyz, origin) -> "np.ndarray":
    """Scene coordinates to a local east-north-up frame at ``origin`` (metres).

    Parameters
    ----------
    crs : str, int or SceneCRS
        The scene CRS, with a vertical datum.
    xyz : array_like, shape (n, 3)
        Points in scene coordinates (metres).
    origin : array_like, shape (3,)
        The frame's origin in scene coordinates.

    Returns
    -------
    ndarray of float64, shape (n, 3)
        East, north, up in metres; ``enu_to_ecef_matrix(crs, origin) @ [e, n, u, 1]`` gives ECEF.
    """
    import numpy as np

    m = enu_to_ecef_matrix(crs, origin)
    ecef = to_ecef(crs, xyz)
    return (ecef - m[:3, 3]) @ m[:3, :3]  # rotation is orthonormal: inverse = transpose
