"""Simple heat edits on a grid (trees, unsealing, sealing, water) for ``twin sim heat --edits``.

The scenario engine (twin.scenario) applies the full scenario schema; this is the small stand-alone
path of the heat CLI: a GeoJSON FeatureCollection in the grid's CRS whose features carry a ``type``:

- ``"trees"``: a Point with ``crown_radius_m`` (default 4) or a Polygon; ``height_m`` (default 10)
  canopy height above terrain (kept where a taller canopy exists; never on a building);
- ``"unseal"``: a Polygon whose non-building cells become unsealed (imperviousness 0);
- ``"seal"``: a Polygon whose cells become sealed (imperviousness 1), trees removed;
- ``"water"``: a Polygon of open water (water mask 1, imperviousness 0, no trees);
- ``"green_roof"``: accepted and reported; it changes no street-level predictor (heat.md section 3:
  expect ~0 K at street level in a Ta regression).

A cell is inside a polygon when its centre is (the burn rule of twin.grid).
"""

from __future__ import annotations

import numpy as np

from twin.errors import TwinValueError

__all__ = ["EDIT_TYPES", "apply_heat_edits"]

EDIT_TYPES = ("trees", "unseal", "seal", "water", "green_roof")


def _copy(grid):
    from twin.grid import Grid

    return Grid(grid.transform, grid.crs, grid.shape, {k: np.array(v, copy=True) for k, v in grid.fields.items()},
                dict(grid.units), dict(grid.attrs))


def apply_heat_edits(grid, features) -> tuple[object, list[dict]]:
    """Apply edits (GeoJSON features or a FeatureCollection dict) to a copy of ``grid``.

    Returns ``(edited_grid, report)``, ``report`` one dict per feature: type and changed cell count.
    A feature of an unknown type or without geometry raises :class:`~twin.errors.TwinValueError`
    naming it.
    """
    from rasterio.features import rasterize
    from shapely.geometry import shape as to_shape

    if isinstance(features, dict):
        features = features.get("features", [features])
    g = _copy(grid)
    rows, cols = g.shape
    bld = (np.nan_to_num(np.asarray(g["building_height"], float)) > 0) if "building_height" in g \
        else np.zeros(g.shape, bool)
    for name, units in (("tree_canopy_height", "m"), ("imperviousness", "1"), ("water_mask", "1")):
        if name not in g:
            g.add_field(name, np.zeros(g.shape, np.int32 if name == "water_mask" else np.float32), units=units)
    report = []
    for n, f in enumerate(features):
        props = dict(f.get("properties") or {})
        kind = props.get("type", props.get("edit"))
        if kind not in EDIT_TYPES:
            raise TwinValueError(f"edit {n}: type {kind!r} is not one of {list(EDIT_TYPES)}; set properties.type")
        if not f.get("geometry"):
            raise TwinValueError(f"edit {n} ({kind}) has no geometry")
        geom = to_shape(f["geometry"])
        if kind == "trees" and geom.geom_type in ("Point", "MultiPoint"):
            geom = geom.buffer(float(props.get("crown_radius_m", 4.0)))
        mask = rasterize([(geom, 1)], out_shape=(rows, cols), transform=g.transform, fill=0, dtype="uint8") > 0
        if kind == "trees":
            h = float(props.get("height_m", 10.0))
            if not (h > 0):
                raise TwinValueError(f"edit {n} (trees): height_m={h} must be > 0")
            cells = mask & ~bld
            ch = g["tree_canopy_height"]
            ch[cells] = np.maximum(np.nan_to_num(ch[cells]), h)
        elif kind == "unseal":
            cells = mask & ~bld
            g["imperviousness"][cells] = 0.0
        elif kind == "seal":
            cells = mask & ~bld
            g["imperviousness"][cells] = 1.0
            g["tree_canopy_height"][cells] = 0.0
        elif kind == "water":
            cells = mask & ~bld
            g["water_mask"][cells] = 1
            g["imperviousness"][cells] = 0.0
            g["tree_canopy_height"][cells] = 0.0
        else:  # green_roof
            cells = mask & bld
        report.append({"index": n, "type": kind, "cells": int(cells.sum())})
    if "dsm" in g and "terrain_elevation" in g:  # keep the grid's dsm (terrain + buildings + canopy) consistent
        g.fields["dsm"] = (np.asarray(g["terrain_elevation"], np.float32)
                           + np.nan_to_num(np.asarray(g["building_height"], np.float32) if "building_height" in g else 0)
                           + np.nan_to_num(np.asarray(g["tree_canopy_height"], np.float32))).astype(np.float32)
    return g, report
