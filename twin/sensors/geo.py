"""The scene's bounding box in WGS84, for selecting sensors."""

from __future__ import annotations

import math
import os

from twin.errors import CRSError

__all__ = ["scene_bbox_wgs84", "bbox_to_wgs84"]


def bbox_to_wgs84(bbox_xy: tuple[float, float, float, float], crs: str, *, densify: int = 21
                  ) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` in ``crs`` -> ``(lon_min, lat_min, lon_max, lat_max)``, edges densified."""
    from pyproj import Transformer

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return tuple(float(v) for v in tr.transform_bounds(*bbox_xy, densify_pts=densify))


def scene_bbox_wgs84(scene_dir: str | os.PathLike) -> tuple[float, float, float, float]:
    from twin.scene import Scene

    scene = Scene.load(scene_dir)
    minx, miny, _, maxx, maxy, _ = scene.bbox
    if any(math.isnan(v) for v in (minx, miny, maxx, maxy)):
        raise CRSError(f"scene {os.fspath(scene_dir)!r} is empty: no bounding box to select sensors by; fix: "
                       "give --bbox LON_MIN,LAT_MIN,LON_MAX,LAT_MAX")
    if scene.crs.horizontal is None:
        raise CRSError(f"scene {os.fspath(scene_dir)!r} has a local CRS: its box cannot be placed on the globe; "
                       "fix: give --bbox LON_MIN,LAT_MIN,LON_MAX,LAT_MAX")
    return bbox_to_wgs84((minx, miny, maxx, maxy), scene.crs.horizontal)
