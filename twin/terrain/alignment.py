"""How well buildings sit on the terrain: the check that catches floating and sunken models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.errors import TwinValueError
from twin.grid import building_footprints

if TYPE_CHECKING:  # pragma: no cover
    from twin.scene import Scene

__all__ = ["alignment_report", "format_alignment", "terrain_info"]


def alignment_report(scene: "Scene", *, threshold: float = 0.5) -> dict:
    """Offset of each building's lowest ground point from the terrain under its footprint.

    For each building (root feature with footprint triangles, see
    :func:`twin.grid.building_footprints`): ``ground_z`` is the lowest vertex of its footprint,
    ``terrain_z`` the lowest terrain height under the footprint (terrain cells whose centres lie
    inside it, and the terrain interpolated at the footprint's vertices, which also covers
    footprints smaller than a cell). ``offset = ground_z - terrain_z``: positive floats, negative
    sinks. A building sitting on a slope touches the terrain at its lowest point, so the minimum
    is the fair comparison.

    Parameters
    ----------
    scene : Scene
        With ``scene.terrain`` set.
    threshold : float
        Metres; buildings with ``|offset| > threshold`` are flagged.

    Returns
    -------
    dict
        ``buildings`` (count), ``checked`` (count with terrain under them), ``threshold_m``,
        ``median_m`` (median offset), ``p95_abs_m`` and ``max_abs_m`` (of ``|offset|``),
        ``floating`` and ``sinking`` (lists of gml_ids), ``no_terrain`` (gml_ids outside the
        terrain), ``per_building`` (list of dicts: ``feature``, ``gml_id``, ``ground_z``,
        ``terrain_z``, ``offset_m``, ``status``).
    """
    from twin._grid_kernels import burn_triangles

    terrain = scene.terrain
    if terrain is None:
        raise TwinValueError("the scene has no terrain; attach one with twin.terrain.attach_terrain(scene, dem_paths) "
                             "(twin import --terrain DEM)")
    idx, bid = building_footprints(scene)
    empty = {"buildings": 0, "checked": 0, "threshold_m": threshold, "median_m": None, "p95_abs_m": None,
             "max_abs_m": None, "floating": [], "sinking": [], "no_terrain": [], "per_building": []}
    if not len(idx):
        return empty
    n_feat = len(scene.features)
    tri = scene.triangles[idx]
    pts = scene.vertices[tri]  # (m, 3, 3)
    ground = np.full(n_feat, np.inf)
    np.minimum.at(ground, bid, pts[..., 2].min(axis=1))
    # terrain at the footprint vertices
    t_vert = terrain.sample(pts[..., 0].ravel(), pts[..., 1].ravel()).reshape(-1, 3)
    t_min = np.full(n_feat, np.inf)
    np.minimum.at(t_min, bid, np.where(np.isnan(t_vert), np.inf, t_vert).min(axis=1))
    # terrain cells whose centres lie inside the footprint
    tr = terrain.transform
    uv = np.empty(pts.shape[:2] + (2,))
    uv[..., 0] = (pts[..., 0] - tr.c) / tr.a
    uv[..., 1] = (pts[..., 1] - tr.f) / tr.e
    owner = np.full(terrain.shape, -1, np.int32)
    burn_triangles(uv, np.ascontiguousarray(pts[..., 2]), bid.astype(np.int32), False, owner, np.empty((1, 1)))
    cells = (owner >= 0) & np.isfinite(terrain.data)
    if cells.any():
        np.minimum.at(t_min, owner[cells], terrain.data[cells].astype(np.float64))
    gml = scene.features["gml_id"].astype(object).to_numpy()
    rows = []
    for f in np.unique(bid):
        g, t = float(ground[f]), float(t_min[f])
        if not np.isfinite(t):
            rows.append({"feature": int(f), "gml_id": str(gml[f]), "ground_z": g, "terrain_z": None,
                         "offset_m": None, "status": "no terrain"})
            continue
        off = g - t
        status = "floating" if off > threshold else ("sinking" if off < -threshold else "ok")
        rows.append({"feature": int(f), "gml_id": str(gml[f]), "ground_z": round(g, 3), "terrain_z": round(t, 3),
                     "offset_m": round(off, 3), "status": status})
    offs = np.array([r["offset_m"] for r in rows if r["offset_m"] is not None])
    out = dict(empty)
    out.update({
        "buildings": len(rows), "checked": int(len(offs)),
        "median_m": round(float(np.median(offs)), 3) if len(offs) else None,
        "p95_abs_m": round(float(np.percentile(np.abs(offs), 95)), 3) if len(offs) else None,
        "max_abs_m": round(float(np.abs(offs).max()), 3) if len(offs) else None,
        "floating": [r["gml_id"] for r in rows if r["status"] == "floating"],
        "sinking": [r["gml_id"] for r in rows if r["status"] == "sinking"],
        "no_terrain": [r["gml_id"] for r in rows if r["status"] == "no terrain"],
        "per_building": rows,
    })
    return out


def terrain_info(scene: "Scene") -> dict | None:
    """``twin info``'s terrain block: size, resolution, bounds, height range, how it was made."""
    if scene.terrain is None:
        return None
    info = scene.terrain.stats()
    info["method"] = scene.terrain.metadata.get("method", "raster")
    info["sources"] = scene.terrain.metadata.get("sources", [])
    return info


def format_alignment(report: dict, *, max_listed: int = 10) -> list[str]:
    """Human-readable lines for ``twin info`` from :func:`alignment_report`'s dict."""
    if not report["buildings"]:
        return ["alignment: no buildings with footprints"]
    lines = [f"alignment: {report['checked']}/{report['buildings']} buildings on terrain; ground - terrain "
             f"median {report['median_m']:+.2f} m, |offset| p95 {report['p95_abs_m']:.2f} m, "
             f"max {report['max_abs_m']:.2f} m"] if report["checked"] else \
        [f"alignment: none of {report['buildings']} buildings lies on the terrain"]
    for key, word in (("floating", "float"), ("sinking", "sink")):
        ids = report[key]
        if ids:
            by_id = {r["gml_id"]: r["offset_m"] for r in report["per_building"]}
            listed = ", ".join(f"{i} ({by_id[i]:+.2f} m)" for i in ids[:max_listed])
            more = f" and {len(ids) - max_listed} more" if len(ids) > max_listed else ""
            lines.append(f"  {len(ids)} buildings {word} by more than {report['threshold_m']} m: {listed}{more}")
    if report["no_terrain"]:
        lines.append(f"  {len(report['no_terrain'])} buildings lie outside the terrain")
    return lines
