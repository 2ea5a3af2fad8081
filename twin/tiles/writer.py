"""Everything under one folder: buildings, terrain, results and the manifest a viewer reads.

Layout of ``TILES_DIR``::

    tileset.json                 buildings (+ buildings/{level}/{x}/{y}.glb)
    terrain/tileset.json         terrain mesh tiles
    runs/<run>/<field>/tileset.json          drape of a static field (e.g. max_depth)
    runs/<run>/<field>_water/tileset.json    water surface of a depth field
    runs/<run>/snapshots/<i>/<field>/...     one layer per output time
    manifest.json                layers, runs and snapshots, colour maps and value ranges

The whole folder is written as ``TILES_DIR.partial`` and renamed into place at the end, so an
interrupted run never leaves a half-written tileset behind.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from twin.errors import TwinIOError
from twin.scene import Scene
from twin.tiles.buildings import BuildingTilesStats, write_buildings
from twin.tiles.frame import local_frame
from twin.tiles.runs import (RunResults, _style_json, building_values, is_depth_field, read_run, style_for,
                             update_manifest)

__all__ = ["write_tiles", "TilesReport"]


@dataclass
class TilesReport:
    """What :func:`write_tiles` wrote and how long it took."""

    out: Path
    buildings: BuildingTilesStats
    terrain: dict | None
    layers: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    georeferenced: bool = True
    notes: list[str] = field(default_factory=list)


def _building_bboxes(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """gml_ids and footprint bounding boxes (west, south, east, north) of the top-level non-terrain features."""
    feats = scene.features
    keep = feats["layer"].astype(object).to_numpy() != "terrain"
    if not scene.n_triangles:
        return np.zeros(0, object), np.zeros((0, 4))
    root_col = feats["root"].to_numpy(np.int64)
    root = np.where(root_col >= 0, root_col, np.arange(len(feats)))
    tk = keep[scene.triangle_feature]
    tr = root[scene.triangle_feature[tk]]
    v = scene.vertices[scene.triangles[tk]]
    roots, inv = np.unique(tr, return_inverse=True)
    lo = np.full((len(roots), 2), np.inf)
    hi = np.full((len(roots), 2), -np.inf)
    np.minimum.at(lo, inv, v[:, :, :2].min(axis=1))
    np.maximum.at(hi, inv, v[:, :, :2].max(axis=1))
    return feats["gml_id"].astype(str).to_numpy()[roots], np.column_stack([lo, hi])


def write_tiles(scene: Scene, out: str | os.PathLike, *, runs: Sequence[str | os.PathLike | RunResults] = (),
                max_features_per_tile: int = 1000, quantize: bool = True, terrain_tile_cells: int = 128,
                gzip_json: bool = False, overwrite: bool = False, vertical_datum: str | None = None,
                allow_local: bool = False, styles: Mapping[str, dict] | None = None, client=None) -> TilesReport:
    """Write a scene and its simulation runs as 3D Tiles 1.1 under ``out``.

    Parameters
    ----------
    scene : Scene
    out : path
        Output folder (layout in the module docstring); refused if it exists unless ``overwrite``.
    runs : run folders or :class:`RunResults`
        Results to drape and to attach to the buildings (see :func:`twin.tiles.read_run`).
    max_features_per_tile : int
        Buildings per leaf tile (default 1000, like pg2b3dm).
    quantize : bool
        ``KHR_mesh_quantization`` (smaller; default) or float32 positions.
    terrain_tile_cells : int
        Quads per terrain tile side.
    gzip_json : bool
        Also write ``.gz`` siblings of the JSON files (serve them with ``Content-Encoding: gzip``;
        the plain files are always there).
    vertical_datum, allow_local :
        See :func:`twin.tiles.frame.local_frame`.
    styles : mapping, optional
        Colour map per field name (``colormap``, ``vmin``, ``vmax``, ``transparent_below``).
    client : distributed.Client, optional
        Write the building glbs with one Dask task per quadtree subtree (:func:`twin.cluster.dask_client`).

    Returns
    -------
    TilesReport

    Raises
    ------
    TwinIOError
        ``out`` exists and ``overwrite`` is false.
    CRSError, MissingGridError
        The scene cannot be georeferenced (see :func:`twin.tiles.frame.local_frame`).
    """
    from twin.tiles.terrain import (FieldSampler, TerrainPyramid, drape_metadata, write_drape, write_terrain,
                                    write_water_surface)

    out = Path(out)
    if out.exists() and not overwrite:
        raise TwinIOError(f"{out} exists; pass overwrite=True (or --overwrite) to replace it")
    t0 = time.perf_counter()
    frame = local_frame(scene.crs, scene.origin, vertical_datum=vertical_datum, allow_local=allow_local)
    run_results = [r if isinstance(r, RunResults) else read_run(r) for r in runs]
    names = [r.name for r in run_results]
    if len(set(names)) != len(names):
        raise TwinIOError(f"two runs share a name ({names}); give each run folder its own name")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    seconds = {"frame_and_runs": time.perf_counter() - t0}

    extra = None
    if run_results:
        gml_ids, bboxes = _building_bboxes(scene)
        parts = [building_values(r, gml_ids, bboxes) for r in run_results]
        extra = pd.concat(parts, axis=1)
        extra.attrs["descriptions"] = {k: v for p in parts for k, v in p.attrs.get("descriptions", {}).items()}
    t = time.perf_counter()
    bstats = write_buildings(scene, tmp, frame, max_features_per_tile=max_features_per_tile, quantize=quantize,
                             extra_properties=extra, gzip_json=gzip_json, client=client)
    seconds["buildings"] = time.perf_counter() - t
    layers: list[dict] = [{"id": "buildings", "kind": "buildings", "tileset": "tileset.json",
                           "features": bstats.features, "properties": bstats.properties}]
    notes = []
    if frame.note:
        notes.append(frame.note)
    if bstats.skipped_textures:
        notes.append(f"{len(bstats.skipped_textures)} texture image(s) missing or unreadable, drawn untextured")
    tstats = None
    pyramid = None
    if scene.terrain is not None:
        t = time.perf_counter()
        pyramid = TerrainPyramid(scene.terrain, frame, tile_cells=terrain_tile_cells)
        tstats = write_terrain(pyramid, tmp / "terrain", quantize=quantize, gzip_json=gzip_json)
        seconds["terrain"] = time.perf_counter() - t
        layers.append({"id": "terrain", "kind": "terrain", "tileset": "terrain/tileset.json"})
    else:
        notes.append("the scene has no terrain: no terrain tiles and no result drapes")

    runs_json = []
    t = time.perf_counter()
    for r in run_results:
        entry: dict = {"id": r.name, "run": r.info, "layers": [], "snapshots": [],
                       "building_properties": [c for c in (extra.columns if extra is not None else [])
                                               if str(c).startswith(r.name + "_")]}
        if pyramid is None and r.fields:
            notes.append(f"run {r.name}: fields not draped (no terrain)")
        for f in r.fields if pyramid is not None else []:
            st = style_for(f, styles)
            style_js = _style_json(st, f.units)
            if f.times is None:
                sampler = FieldSampler(f.x, f.y, f.values)
                meta = drape_metadata(f.name, f.units, st, run=r.name, time_s=None)
                rel = f"runs/{r.name}/{f.name}"
                write_drape(pyramid, tmp / rel, sampler, st, meta=meta, quantize=quantize, gzip_json=gzip_json)
                lay = [{"id": f"{r.name}/{f.name}", "kind": "drape", "field": f.name, "tileset": f"{rel}/tileset.json",
                        "replaces": "terrain", "style": style_js}]
                if is_depth_field(f.name):
                    write_water_surface(pyramid, tmp / f"{rel}_water", sampler, st, meta=meta, quantize=quantize,
                                        gzip_json=gzip_json)
                    lay.append({"id": f"{r.name}/{f.name}/water", "kind": "water", "field": f.name,
                                "tileset": f"{rel}_water/tileset.json", "style": style_js})
                entry["layers"] += lay
                layers += lay
            else:
                for i, ts in enumerate(f.times):
                    sampler = FieldSampler(f.x, f.y, f.values[i])
                    meta = drape_metadata(f.name, f.units, st, run=r.name, time_s=float(ts))
                    rel = f"runs/{r.name}/snapshots/{i}/{f.name}"
                    write_drape(pyramid, tmp / rel, sampler, st, meta=meta, quantize=quantize, gzip_json=gzip_json)
                    lay = [{"id": f"{r.name}/{i}/{f.name}", "kind": "drape", "field": f.name,
                            "tileset": f"{rel}/tileset.json", "replaces": "terrain", "style": style_js}]
                    if is_depth_field(f.name):
                        write_water_surface(pyramid, tmp / f"{rel}_water", sampler, st, meta=meta,
                                            quantize=quantize, gzip_json=gzip_json)
                        lay.append({"id": f"{r.name}/{i}/{f.name}/water", "kind": "water", "field": f.name,
                                    "tileset": f"{rel}_water/tileset.json", "style": style_js})
                    snap = next((s for s in entry["snapshots"] if s["index"] == i), None)
                    if snap is None:
                        snap = {"index": i, "time_s": float(ts), "layers": []}
                        entry["snapshots"].append(snap)
                    snap["layers"] += lay
        runs_json.append(entry)
    seconds["runs"] = time.perf_counter() - t

    def fill(m):
        m.update({"format": "twin-tiles", "version": 1, "generator": "twin.tiles",
                  "crs": str(scene.crs), "origin": [float(v) for v in scene.origin],
                  "georeferenced": frame.georeferenced, "root_transform": frame.transform_column_major(),
                  "layers": layers, "runs": runs_json, "notes": notes})
    update_manifest(tmp, fill)
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)
    seconds["total"] = time.perf_counter() - t0
    return TilesReport(out, bstats, tstats, layers, seconds, frame.georeferenced, notes)
