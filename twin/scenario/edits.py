"""A scenario's edits applied to a simulation grid.

:func:`apply_edits` returns a changed copy of a :class:`~twin.grid.Grid` and an :class:`EditReport`
of what each edit changed. Cells are chosen with the grid's own burn rule: a polygon covers the cells
whose **centres** lie inside it (``rasterio.features.rasterize`` without ``all_touched``, as
:func:`twin.grid.scene_to_grid`); a wall covers every cell its line passes through; a tree the cells
whose centres lie within its crown radius (at least the cell under the trunk). Building cells
(``building_id >= 0``) are never changed by surface and terrain edits (the report counts them).

Fields each edit changes:

============== ==============================================================================
unseal/reseal  landcover, imperviousness, manning_n, ks_mm_per_h, suction_head_mm, porosity,
               water_mask from the class table; tree_canopy_height rises to the class's canopy
               (trees already standing stay); dsm
trees          tree_canopy_height (the larger of old and new), dsm
retention      terrain_elevation lowered by the depth (volume / covered area), dsm
terrain        terrain_elevation + delta, dsm
wall           terrain_elevation + height, dsm
green_roofs    roof_retention_mm on the chosen buildings' cells: rain held on the roof before it
               sheds (an initial loss of the heavy-rain model; acts with building_mode "raise",
               where roofs receive rain)
sewer          drainage_mm_per_h: sewer inlet capacity; set everywhere or inside an area
============== ==============================================================================

Every grid that passes through here gets the two scenario fields ``roof_retention_mm`` (0 without
green roofs) and ``drainage_mm_per_h`` (the scenario's base capacity, changed by sewer edits). The
drainage is zero on the cells whose imperviousness is below 0.5 once all edits are made: the heavy-rain
model drains only sealed cells (a cell sealed by an edit gets the capacity, an unsealed one loses it),
and roofs (sealed) drain through their downpipes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from twin.errors import TwinValueError

if TYPE_CHECKING:  # pragma: no cover
    from twin.grid import Grid
    from twin.scenario.schema import Scenario
    from twin.scene import Scene

__all__ = ["apply_edits", "EditReport", "SCENARIO_FIELDS"]

#: fields the scenario adds to a grid: name -> (dtype, units, description)
SCENARIO_FIELDS = {
    "roof_retention_mm": ("float32", "mm", "green-roof retention storage on roof cells (initial loss)"),
    "drainage_mm_per_h": ("float32", "mm h-1", "sewer inlet capacity drained from sealed cells"),
}
_SEALED = 0.5   # imperviousness from which the heavy-rain model drains a cell (twin.sim.heavyrain.simulate)


@dataclass
class EditReport:
    """What :func:`apply_edits` changed: one entry per edit, and the changed cells per field."""

    entries: list[dict] = field(default_factory=list)
    changed_cells: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"entries": self.entries, "changed_cells": self.changed_cells, "notes": self.notes}


# ------------------------------------------------------------------------------------------ cell selection
def _polygon_mask(grid: "Grid", geom) -> np.ndarray:
    from rasterio import features

    return features.rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0,
                              all_touched=False, dtype="uint8").astype(bool)


def _line_mask(grid: "Grid", geom) -> np.ndarray:
    from rasterio import features

    return features.rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0,
                              all_touched=True, dtype="uint8").astype(bool)


def _where(edit, grid: "Grid", k: int) -> str:
    w, s, e, n = grid.bounds
    return (f"edit {k} ({edit.type}{' ' + repr(edit.label) if edit.label else ''}): the geometry covers no cell "
            f"of the {grid.resolution:g} m grid (x {w:.0f}..{e:.0f}, y {s:.0f}..{n:.0f}, {grid.crs}); coordinates "
            "are metres in the scene's CRS. If it lies inside, it is smaller than a cell: enlarge it or use a finer "
            "resolution_m")


def _cell_index(grid: "Grid", x: float, y: float) -> tuple[int, int] | None:
    col, row = ~grid.transform @ (x, y)
    r, c = int(math.floor(row)), int(math.floor(col))
    if 0 <= r < grid.shape[0] and 0 <= c < grid.shape[1]:
        return r, c
    return None


# ------------------------------------------------------------------------------------------ the edits
def _class_values(table: dict, name: str) -> dict:
    return table["classes"][name]


def _set_landcover(g: dict, mask: np.ndarray, cls: dict) -> None:
    g["landcover"][mask] = int(cls["code"])
    for f, key in (("imperviousness", "imperviousness"), ("manning_n", "manning_n"), ("ks_mm_per_h", "ks_mm_per_h"),
                   ("suction_head_mm", "suction_head_mm"), ("porosity", "porosity")):
        g[f][mask] = float(cls[key])
    g["water_mask"][mask] = int(cls["water"])
    canopy = float(cls["canopy_height_m"])
    if canopy > 0:
        g["tree_canopy_height"][mask] = np.maximum(g["tree_canopy_height"][mask], canopy)


def _select_buildings(edit, scene: "Scene", grid_ids: np.ndarray, k: int) -> tuple[list[int], list[str]]:
    """Root feature ids (as burned into building_id) of the buildings an edit names or filters."""
    feats = scene.features
    roots = feats["root"].to_numpy(np.int64)
    roots = np.where(roots >= 0, roots, np.arange(len(feats)))
    is_bldg = feats["layer"].astype(object).to_numpy() == "buildings"
    gml = feats["gml_id"].astype(str).to_numpy()
    chosen = np.zeros(len(feats), bool)
    chosen[np.flatnonzero(is_bldg & (roots == np.arange(len(feats))))] = True   # building roots
    if edit.buildings:
        index = {g: int(roots[i]) for i, g in enumerate(gml) if is_bldg[i]}
        unknown = [b for b in edit.buildings if b not in index]
        if unknown:
            raise TwinValueError(f"edit {k} (green_roofs): no building with gml:id {unknown[:5]} in the scene "
                                 f"({int(chosen.sum())} buildings, e.g. {list(gml[chosen][:3])})")
        named = np.zeros(len(feats), bool)
        named[[index[b] for b in edit.buildings]] = True
        chosen &= named
    if edit.where:
        attrs = scene.attributes
        ok_feature = np.ones(len(feats), bool)
        for cond in edit.where:
            if cond.attribute not in attrs.columns:
                raise TwinValueError(f"edit {k} (green_roofs): the scene has no attribute {cond.attribute!r}; "
                                     f"it has {sorted(attrs.columns)}")
            col = attrs[cond.attribute].reindex(feats.index)
            ok_feature &= np.array([_holds(v, cond.op, cond.value) for v in col], bool)
        hit_root = np.zeros(len(feats), bool)
        hit_root[roots[ok_feature & is_bldg]] = True   # a building is chosen when it or one of its parts matches
        chosen &= hit_root
    ids = [int(i) for i in np.flatnonzero(chosen)]
    present = set(np.unique(grid_ids[grid_ids >= 0]).tolist())
    return [i for i in ids if i in present], [str(gml[i]) for i in ids if i in present]


def _num(v):
    try:
        f = float(v)
        return f if math.isfinite(f) else None
    except (TypeError, ValueError):
        return None


def _holds(v, op: str, target) -> bool:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return op == "ne"
    if op == "in":
        return any(_holds(v, "eq", t) for t in target)
    a, b = _num(v), _num(target)
    if op in ("eq", "ne"):
        same = (a == b) if (a is not None and b is not None) else (str(v).strip() == str(target).strip())
        return same if op == "eq" else not same
    if a is None or b is None:
        return False
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def apply_edits(grid: "Grid", scenario: "Scenario", scene: "Scene | None" = None,
                *, landcover_table: dict | None = None) -> tuple["Grid", EditReport]:
    """Apply ``scenario.edits`` in order to a copy of ``grid``.

    Parameters
    ----------
    grid : Grid
        From ``scene.to_grid(scenario.resolution_m)``: terrain, buildings, land cover and its
        parameters, canopy. A grid with only ``terrain_elevation`` takes the terrain edits (the
        others raise).
    scenario : Scenario
    scene : Scene, optional
        Needed for green roofs (gml:ids and attributes of the buildings).
    landcover_table : dict, optional
        The class table (default ``twin/data/landcover/default.toml``).

    Returns
    -------
    (Grid, EditReport)
        The edited grid (the input is not changed) with the scenario fields ``roof_retention_mm``
        and ``drainage_mm_per_h`` added (see the module docstring), and the report.

    Raises
    ------
    TwinValueError
        An edit covers no cell of the grid (coordinates outside it, e.g. longitude/latitude instead of
        the scene CRS), names unknown buildings, or needs a field the grid lacks.
    """
    from twin.grid import Grid, load_landcover_table

    table = landcover_table or load_landcover_table()
    g = {name: arr.copy() for name, arr in grid.fields.items()}
    units = dict(grid.units)
    terrain_only = set(g) <= {"terrain_elevation", "dsm", "building_id", "building_height"}
    shape = grid.shape
    if "building_id" in g:
        in_bldg = g["building_id"] >= 0
    else:
        in_bldg = np.zeros(shape, bool)
    cell_area = grid.resolution * abs(grid.transform.e)
    hr = scenario.parameters.heavyrain
    if not terrain_only:
        g.setdefault("roof_retention_mm", np.zeros(shape, np.float32))
        g.setdefault("drainage_mm_per_h", np.full(shape, hr.drainage_mm_per_h, np.float32))
        units.update({k: v[1] for k, v in SCENARIO_FIELDS.items()})
    report = EditReport()
    before = {k: v.copy() for k, v in g.items()}
    if "drainage_mm_per_h" in g and "imperviousness" in g:   # as the unedited grid drains
        before["drainage_mm_per_h"][np.nan_to_num(g["imperviousness"]) < _SEALED] = 0.0

    def need(fields, edit, k):
        missing = [f for f in fields if f not in g]
        if missing:
            raise TwinValueError(f"edit {k} ({edit.type}) needs grid fields {missing}; burn the grid with "
                                 "scene.to_grid (the grid has " + ", ".join(sorted(g)) + ")")

    for k, edit in enumerate(scenario.edits):
        entry = {"index": k, "type": edit.type, "label": edit.label}
        t = edit.type
        if t in ("unseal", "reseal", "retention_basin", "terrain"):
            area = _polygon_mask(grid, edit.area.to_shapely())
            if not area.any():
                raise TwinValueError(_where(edit, grid, k))
            mask = area & ~in_bldg
            entry.update(cells=int(mask.sum()), area_m2=float(mask.sum() * cell_area),
                         skipped_building_cells=int((area & in_bldg).sum()))
            if not mask.any():
                report.notes.append(f"edit {k} ({t}): every cell it covers is a building; nothing changed")
            if t in ("unseal", "reseal"):
                need(["landcover", "imperviousness", "manning_n", "ks_mm_per_h", "suction_head_mm", "porosity",
                      "tree_canopy_height", "water_mask"], edit, k)
                cls = _class_values(table, edit.landcover)
                entry.update(landcover=edit.landcover, imperviousness_before=float(np.mean(g["imperviousness"][mask]))
                             if mask.any() else None, imperviousness_after=float(cls["imperviousness"]))
                _set_landcover(g, mask, cls)
            elif t == "retention_basin":
                need(["terrain_elevation"], edit, k)
                depth = edit.depth_m if edit.depth_m is not None else (
                    edit.volume_m3 / (mask.sum() * cell_area) if mask.any() else 0.0)
                g["terrain_elevation"][mask] -= np.float32(depth)
                entry.update(depth_m=float(depth), storage_m3=float(depth * mask.sum() * cell_area))
            else:
                need(["terrain_elevation"], edit, k)
                g["terrain_elevation"][mask] += np.float32(edit.delta_m)
                entry.update(delta_m=edit.delta_m, volume_m3=float(edit.delta_m * mask.sum() * cell_area))
        elif t == "wall":
            need(["terrain_elevation"], edit, k)
            line = _line_mask(grid, edit.line.to_shapely())
            if not line.any():
                raise TwinValueError(_where(edit, grid, k))
            mask = line & ~in_bldg
            g["terrain_elevation"][mask] += np.float32(edit.height_m)
            entry.update(cells=int(mask.sum()), length_m=float(edit.line.to_shapely().length),
                         height_m=edit.height_m, skipped_building_cells=int((line & in_bldg).sum()))
        elif t == "trees":
            need(["tree_canopy_height"], edit, k)
            xs, ys = grid.cell_centres()
            planted, skipped, outside = 0, 0, 0
            canopy = g["tree_canopy_height"]
            any_cell = np.zeros(shape, bool)
            for tree in edit.trees:
                # cells whose centres lie within the crown: a window around the trunk, then the disc test
                r = tree.crown_radius_m
                c0, c1 = np.searchsorted(xs, tree.x - r, "left"), np.searchsorted(xs, tree.x + r, "right")
                ry = ys[::-1]   # ascending
                r0a, r1a = np.searchsorted(ry, tree.y - r, "left"), np.searchsorted(ry, tree.y + r, "right")
                rows = np.arange(len(ys) - r1a, len(ys) - r0a)
                cols = np.arange(c0, c1)
                disc = np.zeros(shape, bool)
                if len(rows) and len(cols):
                    dx = xs[cols][None, :] - tree.x
                    dy = ys[rows][:, None] - tree.y
                    disc[np.ix_(rows, cols)] = dx * dx + dy * dy <= r * r
                trunk = _cell_index(grid, tree.x, tree.y)
                if trunk is None and not disc.any():
                    outside += 1
                    continue
                if trunk is not None:
                    disc[trunk] = True
                cells = disc & ~in_bldg
                skipped += int((disc & in_bldg).sum())
                if cells.any():
                    planted += 1
                canopy[cells] = np.maximum(canopy[cells], np.float32(tree.height_m))
                any_cell |= cells
            if outside == len(edit.trees):
                raise TwinValueError(_where(edit, grid, k))
            entry.update(trees=len(edit.trees), planted=planted, outside=outside, cells=int(any_cell.sum()),
                         skipped_building_cells=skipped)
            if outside:
                report.notes.append(f"edit {k} (trees): {outside} of {len(edit.trees)} trees lie outside the grid")
        elif t == "green_roofs":
            if scene is None:
                raise TwinValueError(f"edit {k} (green_roofs) chooses buildings by gml:id or attribute; pass the "
                                     "scene to apply_edits(grid, scenario, scene)")
            need(["building_id", "roof_retention_mm"], edit, k)
            ids, names = _select_buildings(edit, scene, g["building_id"], k)
            mask = np.isin(g["building_id"], np.asarray(ids, np.int32)) if ids else np.zeros(shape, bool)
            g["roof_retention_mm"][mask] = np.float32(edit.retention_mm)
            entry.update(buildings=names, cells=int(mask.sum()), roof_area_m2=float(mask.sum() * cell_area),
                         retention_mm=edit.retention_mm,
                         storage_m3=float(mask.sum() * cell_area * edit.retention_mm / 1000.0))
            if not ids:
                report.notes.append(f"edit {k} (green_roofs): no building of the grid matches; nothing changed")
            if hr.building_mode == "block":
                report.notes.append(f"edit {k} (green_roofs): building_mode 'block' puts no rain on roofs, so green "
                                    "roofs change no heavy-rain result; use building_mode 'raise'")
        elif t == "sewer":
            need(["drainage_mm_per_h"], edit, k)
            if edit.area is None:
                mask = np.ones(shape, bool)
            else:
                mask = _polygon_mask(grid, edit.area.to_shapely())
                if not mask.any():
                    raise TwinValueError(_where(edit, grid, k))
            g["drainage_mm_per_h"][mask] = np.float32(edit.capacity_mm_per_h)
            entry.update(cells=int(mask.sum()), capacity_mm_per_h=edit.capacity_mm_per_h)
        else:  # pragma: no cover - the schema admits no other type
            raise TwinValueError(f"edit {k}: unknown type {t!r}")
        report.entries.append(entry)

    if "drainage_mm_per_h" in g and "imperviousness" in g:
        g["drainage_mm_per_h"][np.nan_to_num(g["imperviousness"]) < _SEALED] = 0.0
    if "dsm" in g and "terrain_elevation" in g:
        moved = np.zeros(shape, bool)
        for f in ("terrain_elevation", "tree_canopy_height"):
            if f in g:
                moved |= g[f] != before[f]
        bh = np.nan_to_num(g["building_height"]) if "building_height" in g else np.zeros(shape, np.float32)
        can = g["tree_canopy_height"] if "tree_canopy_height" in g else np.zeros(shape, np.float32)
        g["dsm"][moved] = (g["terrain_elevation"] + np.maximum(bh, can))[moved]
    for name, arr in g.items():
        old = before.get(name)
        if old is not None:
            diff = ~((arr == old) | (np.isnan(arr) & np.isnan(old)) if arr.dtype.kind == "f" else (arr == old))
            n = int(diff.sum())
            if n:
                report.changed_cells[name] = n
    out = Grid(grid.transform, grid.crs, grid.shape, {}, {}, dict(grid.attrs))
    for name, arr in g.items():
        out.add_field(name, arr, units=units.get(name, SCENARIO_FIELDS.get(name, ("", "1"))[1]))
    out.attrs["scenario_edits"] = [{k: v for k, v in e.items() if k != "buildings"} for e in report.entries]
    return out, report
