"""The tiles' local frame: east-north-up metres at the scene origin, placed on the globe by the
root transform (ENU -> ECEF, EPSG:4978).

Heights go through :mod:`twin.crs` (the shipped GCG2016 quasigeoid for DHHN heights), so a
building's ECEF position is its true ellipsoidal position: buildings stand on the terrain.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from twin.crs import SceneCRS, enu_to_ecef_matrix, height_transformer, parse_crs
from twin.errors import CRSError, TwinWarning

__all__ = ["LocalFrame", "local_frame", "GERMAN_HORIZONTAL"]

#: horizontal CRSs used with German height systems: a scene in one of them without a vertical datum
#: is assumed to carry DHHN2016 heights (DHHN92 differs by centimetres), with a warning
GERMAN_HORIZONTAL = {"EPSG:25832", "EPSG:25833", "EPSG:4258", "EPSG:31466", "EPSG:31467", "EPSG:31468",
                     "EPSG:31469", "EPSG:3068", "EPSG:5650", "EPSG:5652", "EPSG:5653"}
DHHN2016 = "EPSG:7837"


@dataclass
class LocalFrame:
    """Scene coordinates -> local ENU metres, and the 4x4 ENU -> ECEF matrix.

    Attributes
    ----------
    crs : SceneCRS or None
        The CRS used for the heights (None for an unreferenced local scene).
    origin : ndarray (3,)
        Origin in scene coordinates.
    matrix : ndarray (4, 4)
        Row-major ENU -> ECEF; the identity for a local (un-georeferenced) frame.
    georeferenced : bool
    """

    crs: SceneCRS | None
    origin: np.ndarray
    matrix: np.ndarray
    georeferenced: bool
    note: str | None = None

    def to_local(self, xyz: np.ndarray) -> np.ndarray:
        """Scene coordinates (n, 3) -> ENU metres (n, 3), float64."""
        p = np.asarray(xyz, np.float64).reshape(-1, 3)
        if not self.georeferenced:
            return p - self.origin
        t = height_transformer(self.crs, "EPSG:4978")
        x, y, z = t.transform(p[:, 0], p[:, 1], p[:, 2])
        ecef = np.column_stack([x, y, z])
        return (ecef - self.matrix[:3, 3]) @ self.matrix[:3, :3]

    def transform_column_major(self) -> list[float]:
        """The 3D Tiles ``transform`` (16 numbers, column-major)."""
        return [float(v) for v in self.matrix.T.reshape(-1)]


def local_frame(crs, origin, *, vertical_datum: str | None = None, allow_local: bool = False) -> LocalFrame:
    """Build the tiles frame of a scene CRS at ``origin``.

    Parameters
    ----------
    crs : SceneCRS or str
        The scene CRS.
    origin : array_like (3,)
        Origin in scene coordinates (metres).
    vertical_datum : str, optional
        Height system to assume when the CRS has none (``"EPSG:7837"`` DHHN2016, ``"EPSG:5783"``
        DHHN92). Without it a German horizontal CRS is assumed to carry DHHN2016 heights (a
        :class:`TwinWarning` says so); any other CRS without heights raises.
    allow_local : bool
        Write an unreferenced (``local``) scene in its own frame, without a georeference (a
        :class:`TwinWarning`: CesiumJS puts such a tileset at the Earth's centre). Default: raise.

    Raises
    ------
    CRSError
        A local CRS without ``allow_local``; a non-German CRS without heights.
    MissingGridError
        The geoid grid of the vertical datum is missing.
    """
    scrs = parse_crs(crs)
    origin = np.asarray(origin, np.float64).reshape(3)
    if scrs.is_local:
        if not allow_local:
            raise CRSError("the scene has a local (unreferenced) CRS, so its tiles cannot be placed on the globe; "
                           "re-import it with crs='EPSG:25832+7837' (or --crs) if you know its CRS, or pass "
                           "allow_local=True (--allow-local) to write un-georeferenced tiles")
        warnings.warn("the scene has a local CRS: writing un-georeferenced tiles (no root transform); CesiumJS "
                      "will place them at the Earth's centre, plain glTF viewers show them fine",
                      TwinWarning, stacklevel=3)
        return LocalFrame(None, origin, np.eye(4), False, "local CRS: not georeferenced")
    note = None
    if scrs.vertical is None:
        if vertical_datum is not None:
            vd = parse_crs(vertical_datum) if not str(vertical_datum).upper().startswith("EPSG:") else None
            code = vertical_datum if vd is None else vd.vertical
            scrs = SceneCRS(scrs.horizontal, code, scrs.source)
            note = f"heights assumed in {code} (vertical_datum)"
        elif scrs.horizontal in GERMAN_HORIZONTAL:
            scrs = SceneCRS(scrs.horizontal, DHHN2016, scrs.source)
            note = f"{scrs.horizontal} has no height system; DHHN2016 (EPSG:7837) assumed"
            warnings.warn(f"the scene CRS {scrs.horizontal} has no vertical datum; assuming DHHN2016 heights "
                          "(EPSG:7837, through the GCG2016 quasigeoid). Pass vertical_datum='EPSG:5783' "
                          "(--vertical-datum) for DHHN92 or re-import with a compound CRS",
                          TwinWarning, stacklevel=3)
        else:
            raise CRSError(f"the scene CRS {scrs} has no vertical datum, so its heights cannot be made ellipsoidal "
                           "and buildings would float or sink; pass vertical_datum='EPSG:...' (--vertical-datum)")
    matrix = enu_to_ecef_matrix(scrs, origin)
    return LocalFrame(scrs, origin, matrix, True, note)
