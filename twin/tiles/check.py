"""The project's own tileset checks (the CesiumJS 3d-tiles-validator is not installable here).

:func:`check_tileset` walks a tileset and reports, as readable strings:

- structure: ``asset.version`` 1.1, root ``refine``, every tile with a box and a geometric error;
- geometric error never grows downwards, leaves at 0 where the content is the full model;
- every child's box inside its parent's, every content's box and every content vertex (after the
  glb's node transform and the y-up -> z-up rotation) inside its tile's and its content's box;
- property tables: every table property is in the schema, byte lengths match ``count`` and the
  component type, string offsets grow and end at the values' length, views are 8-byte aligned,
  feature ids are below ``featureCount`` and ``featureCount`` equals the table's ``count``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from twin.tiles._glb import accessor_array, read_glb
from twin.tiles._tileset import box_bounds

__all__ = ["check_tileset", "content_positions"]

_SIZE = {"INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "INT32": 4, "UINT32": 4, "INT64": 8, "UINT64": 8,
         "FLOAT32": 4, "FLOAT64": 8}
_TOL = 1e-6


def content_positions(gltf: dict, binary: bytes) -> np.ndarray:
    """Every mesh vertex of a glb in the tile frame (z-up), metres, float64 (n, 3)."""
    out = []
    nodes = gltf.get("nodes", [])
    for node in nodes:
        if "mesh" not in node:
            continue
        if "matrix" in node:
            m = np.asarray(node["matrix"], np.float64).reshape(4, 4).T
        else:
            s = np.diag([*node.get("scale", [1, 1, 1]), 1.0])
            t = np.eye(4)
            t[:3, 3] = node.get("translation", [0, 0, 0])
            if "rotation" in node:
                raise ValueError("node rotations are not used by twin")
            m = t @ s
        for prim in gltf["meshes"][node["mesh"]]["primitives"]:
            p = accessor_array(gltf, binary, prim["attributes"]["POSITION"]).astype(np.float64)
            g = p @ m[:3, :3].T + m[:3, 3]
            out.append(np.column_stack([g[:, 0], -g[:, 2], g[:, 1]]))   # y-up -> z-up
    return np.vstack(out) if out else np.zeros((0, 3))


def _inside(lo, hi, plo, phi, tol=_TOL) -> bool:
    return bool(np.all(lo >= plo - tol) and np.all(hi <= phi + tol))


def _check_glb(path: Path, problems: list[str], tile_box, content_box, tileset_schema) -> None:
    try:
        gltf, binary = read_glb(path.read_bytes())
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: unreadable glb ({exc})")
        return
    pos = content_positions(gltf, binary)
    if len(pos):
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        for name, box in (("tile", tile_box), ("content", content_box)):
            if box is not None:
                blo, bhi = box_bounds(box)
                if not _inside(lo, hi, blo, bhi, 1e-4):
                    problems.append(f"{path}: content {lo.round(3).tolist()}..{hi.round(3).tolist()} outside the "
                                    f"{name} box {blo.round(3).tolist()}..{bhi.round(3).tolist()}")
    ext = gltf.get("extensions", {}).get("EXT_structural_metadata")
    views = gltf.get("bufferViews", [])
    tables = ext.get("propertyTables", []) if ext else []
    if ext:
        schema = ext.get("schema")
        if schema is None:
            problems.append(f"{path}: EXT_structural_metadata without an embedded schema")
            return
        if tileset_schema is not None and schema != tileset_schema:
            problems.append(f"{path}: glb schema differs from the tileset schema")
        for ti, table in enumerate(tables):
            cls = schema.get("classes", {}).get(table.get("class"))
            if cls is None:
                problems.append(f"{path}: property table {ti} has class {table.get('class')!r} not in the schema")
                continue
            count = int(table["count"])
            for pid, prop in table.get("properties", {}).items():
                d = cls["properties"].get(pid)
                where = f"{path}: table {ti} property {pid!r}"
                if d is None:
                    problems.append(f"{where} is not in the schema")
                    continue
                v = views[prop["values"]]
                if v.get("byteOffset", 0) % 8:
                    problems.append(f"{where}: values view not 8-byte aligned")
                if d["type"] == "STRING":
                    ov = views[prop["stringOffsets"]]
                    otype = prop.get("stringOffsetType", "UINT32")
                    osz = _SIZE[otype]
                    if ov["byteLength"] != (count + 1) * osz:
                        problems.append(f"{where}: {ov['byteLength']} offset bytes, expected {(count + 1) * osz}")
                        continue
                    offs = np.frombuffer(binary, np.dtype(otype.lower()), count + 1, ov.get("byteOffset", 0))
                    if np.any(np.diff(offs.astype(np.int64)) < 0) or offs[0] != 0 or offs[-1] != v["byteLength"]:
                        problems.append(f"{where}: string offsets do not run 0..{v['byteLength']} upwards")
                    else:
                        try:
                            binary[v.get("byteOffset", 0):v.get("byteOffset", 0) + v["byteLength"]].decode("utf-8")
                        except UnicodeDecodeError:
                            problems.append(f"{where}: values are not UTF-8")
                elif d["type"] == "SCALAR":
                    want = count * _SIZE[d["componentType"]]
                    if d.get("array"):
                        continue
                    if v["byteLength"] != want:
                        problems.append(f"{where}: {v['byteLength']} bytes, schema {d['componentType']} x {count} "
                                        f"= {want}")
    for mesh in gltf.get("meshes", []):
        for prim in mesh["primitives"]:
            fx = prim.get("extensions", {}).get("EXT_mesh_features")
            if not fx:
                continue
            for fid in fx.get("featureIds", []):
                ids = accessor_array(gltf, binary, prim["attributes"][f"_FEATURE_ID_{fid['attribute']}"])
                if len(ids) and (ids.max() >= fid["featureCount"] or ids.min() < 0):
                    problems.append(f"{path}: feature ids {ids.min()}..{ids.max()} outside 0..{fid['featureCount'] - 1}")
                pt = fid.get("propertyTable")
                if pt is not None:
                    if pt >= len(tables):
                        problems.append(f"{path}: featureIds refer to property table {pt}, which does not exist")
                    elif tables[pt]["count"] != fid["featureCount"]:
                        problems.append(f"{path}: featureCount {fid['featureCount']} != table count {tables[pt]['count']}")


def check_tileset(path: str | Path) -> list[str]:
    """Check a tileset.json and its content; returns the problems found (empty when it passes)."""
    path = Path(path)
    problems: list[str] = []
    try:
        ts = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [f"{path}: unreadable tileset ({exc})"]
    if ts.get("asset", {}).get("version") != "1.1":
        problems.append(f"{path}: asset.version is {ts.get('asset', {}).get('version')!r}, expected '1.1'")
    root = ts.get("root")
    if root is None:
        return problems + [f"{path}: no root tile"]
    if root.get("refine") not in ("ADD", "REPLACE"):
        problems.append(f"{path}: root refine is {root.get('refine')!r}")
    if "geometricError" not in ts or ts["geometricError"] < root.get("geometricError", 0):
        problems.append(f"{path}: tileset geometricError {ts.get('geometricError')} below the root's")
    schema = ts.get("schema")
    base = path.parent

    def walk(tile: dict, where: str, parent_box, parent_error: float) -> None:
        box = tile.get("boundingVolume", {}).get("box")
        if box is None:
            problems.append(f"{where}: no box bounding volume")
            return
        if "geometricError" not in tile:
            problems.append(f"{where}: no geometricError")
            return
        if tile["geometricError"] > parent_error + _TOL:
            problems.append(f"{where}: geometricError {tile['geometricError']} exceeds the parent's {parent_error}")
        lo, hi = box_bounds(box)
        if parent_box is not None and not _inside(lo, hi, *box_bounds(parent_box)):
            problems.append(f"{where}: box not inside the parent's box")
        if "transform" in tile and tile is not root:
            problems.append(f"{where}: child transforms are not used by twin")
        content = tile.get("content")
        if content:
            cbox = content.get("boundingVolume", {}).get("box")
            if cbox is not None and not _inside(*box_bounds(cbox), lo, hi):
                problems.append(f"{where}: content box not inside the tile box")
            uri = content.get("uri", "")
            target = base / uri
            if not target.exists():
                problems.append(f"{where}: content {uri} missing")
            elif uri.endswith(".glb"):
                _check_glb(target, problems, box, cbox, schema)
        elif not tile.get("children"):
            if tile is not root:
                problems.append(f"{where}: leaf without content")
        for i, child in enumerate(tile.get("children", [])):
            walk(child, f"{where}/{i}", box, tile["geometricError"])

    walk(root, f"{path}:root", None, float(ts.get("geometricError", np.inf)))
    return problems
