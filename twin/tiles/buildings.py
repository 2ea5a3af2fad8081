"""Buildings (and other city objects) -> 3D Tiles 1.1 with glb content.

Layout: an explicit quadtree over the buildings' footprint centres, split until a tile holds at
most ``max_features_per_tile`` buildings; content only in the leaves, ``refine: ADD``. A leaf's
geometric error is 0 (it is the full model); an inner tile's is half its box diagonal (the size of
the detail it leaves out) and never smaller than a child's. Boxes are tight (content extent plus
1 cm) in the local ENU frame of the scene origin, whose ENU -> ECEF matrix is the root transform.

Content per leaf: one glb, one mesh, one primitive per appearance (roof, wall, opening, other,
each CityGML material, each texture) sharing the vertex attributes; y-up as glTF requires
(``(e, n, u) -> (e, u, -n)``); positions quantised to uint16 over the tile box
(``KHR_mesh_quantization``, error <= box size / 131070) and normals to int8 by default;
``EXT_mesh_features`` feature ids per vertex into the ``EXT_structural_metadata`` property table
(one row per building of the tile).
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.scene import SURFACE_TYPES, Scene
from twin.tiles._glb import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GlbBuilder
from twin.tiles._tileset import asset, box_from_bounds, write_json
from twin.tiles.frame import LocalFrame
from twin.tiles.metadata import (CLASS_ID, NO_DATA_FLOAT, NO_DATA_INT, Property, encode_property_table, sanitize_id,
                                 schema)

__all__ = ["write_buildings", "building_properties", "BuildingTilesStats"]

_ROOF, _WALL, _OPENING, _OTHER = "roof", "wall", "opening", "other"
_SEMANTIC_COLOUR = {_ROOF: [0.70, 0.27, 0.20, 1.0], _WALL: [0.92, 0.89, 0.83, 1.0],
                    _OPENING: [0.45, 0.60, 0.75, 1.0], _OTHER: [0.62, 0.62, 0.60, 1.0]}
_SURFACE_CLASS = np.array([_OTHER] * len(SURFACE_TYPES), dtype=object)
_SURFACE_CLASS[[SURFACE_TYPES.index(n) for n in ("RoofSurface",)]] = _ROOF
_SURFACE_CLASS[[SURFACE_TYPES.index(n) for n in ("WallSurface", "OuterCeilingSurface", "InteriorWallSurface")]] = _WALL
_SURFACE_CLASS[[SURFACE_TYPES.index(n) for n in ("Window", "Door")]] = _OPENING
_SURFACE_CODE = {_ROOF: 0, _WALL: 1, _OPENING: 2, _OTHER: 3}
_SURFACE_CLASS_CODE = np.array([_SURFACE_CODE[c] for c in _SURFACE_CLASS], np.int64)
_WRAP = {"wrap": 10497, "mirror": 33648, "clamp": 33071, "border": 33071, "none": 33071}
_IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

# thematic attributes under the names the issue and viewers use
_RENAMES = {"measuredHeight": "height", "storeysAboveGround": "storeys", "roofType": "roof_type"}


@dataclass
class BuildingTilesStats:
    """What :func:`write_buildings` wrote."""

    features: int = 0
    tiles: int = 0
    triangles: int = 0
    content_bytes: int = 0
    tileset_bytes: int = 0
    properties: list[str] = field(default_factory=list)
    textures: int = 0
    skipped_textures: list[str] = field(default_factory=list)


def building_properties(scene: Scene, roots: np.ndarray, height_m: np.ndarray,
                        extra: pd.DataFrame | None = None) -> list[Property]:
    """The property table columns of the buildings ``roots`` (feature ids).

    ``gml_id``, ``type``, ``name``, ``function``, ``usage``, ``height`` (measuredHeight, else the
    geometric height ``height_m``), ``roof_type``, ``storeys``, ``address``, every other attribute
    of the scene (strings, int32, float64), then the columns of ``extra`` (index = gml_id: results
    of simulation runs).
    """
    feats = scene.features.iloc[roots]
    attrs = scene.attributes.iloc[roots]
    taken: set[str] = set()
    props = [Property(sanitize_id("gml_id", taken), "gml:id", "STRING", feats["gml_id"].astype(object).to_numpy(),
                      "CityGML gml:id of the building"),
             Property(sanitize_id("type", taken), "type", "STRING", feats["type"].astype(object).to_numpy(),
                      "CityGML class")]
    types = scene.attribute_types
    order = [c for c in ("name", "function", "usage", "measuredHeight", "roofType", "storeysAboveGround", "address")
             if c in attrs.columns] + [c for c in attrs.columns if c not in (
                 "name", "function", "usage", "measuredHeight", "roofType", "storeysAboveGround", "address")]
    if "measuredHeight" not in attrs.columns:
        order.insert(0, "measuredHeight")
    for col in order:
        pid = sanitize_id(_RENAMES.get(col, col), taken)
        kind = (types.get(col) or {}).get("type", "string")
        if col == "measuredHeight":
            vals = pd.to_numeric(attrs[col], errors="coerce").to_numpy(float) if col in attrs else np.full(len(roots), np.nan)
            vals = np.where(np.isfinite(vals), vals, height_m)
            props.append(Property(pid, "height", "FLOAT64", np.where(np.isfinite(vals), vals, NO_DATA_FLOAT),
                                  "measuredHeight in metres, else the geometric height (highest minus lowest point)"))
        elif kind == "int":
            v = pd.to_numeric(attrs[col], errors="coerce")
            props.append(Property(pid, col, "INT32", v.fillna(NO_DATA_INT).to_numpy(np.float64).astype(np.int32)))
        elif kind in ("double", "measure"):
            v = pd.to_numeric(attrs[col], errors="coerce").to_numpy(float)
            uom = (types.get(col) or {}).get("uom")
            props.append(Property(pid, col, "FLOAT64", np.where(np.isfinite(v), v, NO_DATA_FLOAT),
                                  f"unit {uom}" if uom else ""))
        else:
            v = attrs[col].astype(object).where(attrs[col].notna(), "").astype(str).to_numpy(object)
            props.append(Property(pid, col, "STRING", v))
    if extra is not None and len(extra.columns):
        idx = extra.reindex(feats["gml_id"].astype(str).to_numpy())
        for col in extra.columns:
            s = idx[col]
            name = str(col)
            pid = sanitize_id(name, taken)
            desc = str(extra.attrs.get("descriptions", {}).get(col, ""))
            if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
                v = pd.to_numeric(s, errors="coerce")
                props.append(Property(pid, name, "INT32", v.fillna(NO_DATA_INT).to_numpy(np.float64).astype(np.int32), desc))
            elif pd.api.types.is_numeric_dtype(s.dtype):
                v = s.to_numpy(float)
                props.append(Property(pid, name, "FLOAT64", np.where(np.isfinite(v), v, NO_DATA_FLOAT), desc))
            else:
                props.append(Property(pid, name, "STRING", s.astype(object).where(s.notna(), "").astype(str)
                                      .to_numpy(object), desc))
    return props


# ---------------------------------------------------------------------------------------- quadtree
@dataclass
class _Node:
    level: int
    x: int
    y: int
    items: np.ndarray | None = None        # building indices (leaf)
    children: list["_Node"] = field(default_factory=list)
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    uri: str | None = None


def _quadtree(centres: np.ndarray, max_items: int, *, max_level: int = 24) -> _Node:
    lo = centres.min(axis=0)
    size = float(max(np.ptp(centres[:, 0]), np.ptp(centres[:, 1]), 1e-6)) * (1 + 1e-9)

    def build(level: int, x: int, y: int, idx: np.ndarray) -> _Node:
        node = _Node(level, x, y)
        if len(idx) <= max_items or level >= max_level:
            node.items = idx
            return node
        cell = size / 2 ** (level + 1)
        cx = np.floor((centres[idx, 0] - lo[0]) / cell).astype(np.int64) - 2 * x
        cy = np.floor((centres[idx, 1] - lo[1]) / cell).astype(np.int64) - 2 * y
        q = np.clip(cx, 0, 1) + 2 * np.clip(cy, 0, 1)
        for k in range(4):
            sub = idx[q == k]
            if len(sub):
                node.children.append(build(level + 1, 2 * x + (k & 1), 2 * y + (k >> 1), sub))
        return node

    return build(0, 0, 0, np.arange(len(centres)))


def _leaves(node: _Node):
    if node.items is not None:
        yield node
    for c in node.children:
        yield from _leaves(c)


# ---------------------------------------------------------------------------------------- writer
def write_buildings(scene: Scene, out_dir: str | os.PathLike, frame: LocalFrame, *,
                    max_features_per_tile: int = 1000, quantize: bool = True,
                    extra_properties: pd.DataFrame | None = None, gzip_json: bool = False,
                    tileset_name: str = "tileset.json", content_dir: str = "buildings", client=None,
                    subtree_level: int = 2) -> BuildingTilesStats:
    """Write every non-terrain feature of ``scene`` as a 3D Tiles 1.1 tileset under ``out_dir``.

    Parameters
    ----------
    scene : Scene
    out_dir : path
        ``out_dir/tileset.json`` and ``out_dir/buildings/{level}/{x}/{y}.glb``.
    frame : LocalFrame
        From :func:`twin.tiles.frame.local_frame`.
    max_features_per_tile : int
        Quadtree leaves hold at most this many buildings (top-level features).
    quantize : bool
        ``KHR_mesh_quantization`` (uint16 positions, int8 normals); else float32.
    extra_properties : DataFrame, optional
        Per-building values (index gml_id) appended to the property table (simulation results).
    client : distributed.Client, optional
        Write the glbs with one Dask task per quadtree subtree (the nodes at ``subtree_level``, or leaves
        above it) on this cluster; the tileset JSON is assembled here. The files are the same.

    Returns
    -------
    BuildingTilesStats
    """
    out_dir = Path(out_dir)
    stats = BuildingTilesStats()
    feats = scene.features
    layer = feats["layer"].astype(object).to_numpy()
    keep_feature = layer != "terrain"
    tf = scene.triangle_feature
    tri_keep = keep_feature[tf] if scene.n_triangles else np.zeros(0, bool)
    tri_idx = np.flatnonzero(tri_keep)
    root_col = feats["root"].to_numpy(np.int64)
    root_of_feature = np.where(root_col >= 0, root_col, np.arange(len(feats)))
    tri_root = root_of_feature[tf[tri_idx]]
    roots, tri_b = np.unique(tri_root, return_inverse=True)   # building index of each kept triangle
    stats.features = int(len(roots))
    stats.triangles = int(len(tri_idx))

    used = np.unique(scene.triangles[tri_idx]) if len(tri_idx) else np.zeros(0, np.int64)
    vmap = np.full(len(scene.vertices), -1, np.int64)
    vmap[used] = np.arange(len(used))
    enu = frame.to_local(scene.vertices[used]) if len(used) else np.zeros((0, 3))
    tris = vmap[scene.triangles[tri_idx]]                      # into enu

    if not len(roots):
        ts = {"asset": asset(), "geometricError": 0.0,
              "root": {"boundingVolume": {"box": box_from_bounds(np.zeros(3), np.zeros(3))},
                       "geometricError": 0.0, "refine": "ADD"}}
        if frame.georeferenced:
            ts["root"]["transform"] = frame.transform_column_major()
        stats.tileset_bytes = write_json(out_dir / tileset_name, ts, gzip_sibling=gzip_json)
        return stats

    # per-building extent (for the quadtree and the geometric height)
    order = np.argsort(tri_b, kind="stable")
    tv = enu[tris[order]]                                      # (m, 3, 3)
    tmin, tmax = tv.min(axis=1), tv.max(axis=1)
    starts = np.searchsorted(tri_b[order], np.arange(len(roots)))
    bmin = np.minimum.reduceat(tmin, starts, axis=0)
    bmax = np.maximum.reduceat(tmax, starts, axis=0)
    centres = (bmin[:, :2] + bmax[:, :2]) / 2
    # geometric height in the scene's own heights (ENU up differs by < 1 mm over a building)
    props = building_properties(scene, roots, bmax[:, 2] - bmin[:, 2], extra_properties)
    stats.properties = [p.id for p in props]
    sch = schema(props, description="A building (CityGML top-level feature) with its attributes and results")

    tree = _quadtree(centres, max(1, int(max_features_per_tile)))
    leaves = list(_leaves(tree))
    leaf_of_b = np.empty(len(roots), np.int64)
    for i, leaf in enumerate(leaves):
        leaf_of_b[leaf.items] = i
    tri_leaf = leaf_of_b[tri_b]
    lorder = np.argsort(tri_leaf, kind="stable")
    lstarts = np.searchsorted(tri_leaf[lorder], np.arange(len(leaves) + 1))
    images: dict[int, tuple[bytes, str] | None] = {}
    for leaf in leaves:
        leaf.uri = f"{content_dir}/{leaf.level}/{leaf.x}/{leaf.y}.glb"
    if client is None:
        for i, leaf in enumerate(leaves):
            sel = lorder[lstarts[i]:lstarts[i + 1]]
            glb, lo, hi = _tile_glb(scene, used, enu, tris[sel], tri_idx[sel], tri_b[sel], props, sch, quantize, images,
                                    stats)
            leaf.lo, leaf.hi = lo, hi
            path = out_dir / leaf.uri
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(glb)
            stats.content_bytes += len(glb)
    else:
        _write_subtrees(client, tree, leaves, scene, used, enu, tris, tri_idx, tri_b, lorder, lstarts, props, sch,
                        quantize, out_dir, stats, int(subtree_level))
    stats.tiles = len(leaves)
    root = _tile_json(tree)
    if frame.georeferenced:
        root["transform"] = frame.transform_column_major()
    ts = {"asset": asset(), "schema": sch, "geometricError": max(root["geometricError"] * 2, _diag(tree) / 2, 1.0),
          "root": root}
    ts["statistics"] = {"classes": {CLASS_ID: {"count": stats.features}}}
    stats.tileset_bytes = write_json(out_dir / tileset_name, ts, gzip_sibling=gzip_json)
    return stats


def _subtree_leaf_groups(tree: _Node, leaves: list[_Node], level: int) -> list[list[int]]:
    """Leaf indices grouped by their subtree: the nodes at ``level`` (and leaves above it) are the subtrees."""
    pos = {id(leaf): i for i, leaf in enumerate(leaves)}
    groups: list[list[int]] = []

    def walk(node: _Node) -> None:
        if node.level >= level or node.items is not None:
            groups.append([pos[id(leaf)] for leaf in _leaves(node)])
            return
        for c in node.children:
            walk(c)

    walk(tree)
    return groups


def _write_leaf_group(scene, used, enu, parts, props, sch, quantize, out_dir) -> tuple[list, BuildingTilesStats]:
    """One Dask task: the glbs of one subtree's leaves. ``parts``: (leaf index, uri, tris, tri_idx, tri_b)."""
    stats = BuildingTilesStats()
    images: dict = {}
    done = []
    for i, uri, tr, ti, tb in parts:
        glb, lo, hi = _tile_glb(scene, used, enu, tr, ti, tb, props, sch, quantize, images, stats)
        path = Path(out_dir) / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(glb)
        stats.content_bytes += len(glb)
        done.append((i, lo, hi))
    return done, stats


def _write_subtrees(client, tree, leaves, scene, used, enu, tris, tri_idx, tri_b, lorder, lstarts, props, sch,
                    quantize, out_dir, stats, level) -> None:
    """The leaf loop of :func:`write_buildings` as one task per subtree on a Dask cluster."""
    [scene_f, enu_f, used_f] = client.scatter([scene, enu, used], broadcast=False)
    futures = []
    for group in _subtree_leaf_groups(tree, leaves, level):
        parts = []
        for i in group:
            sel = lorder[lstarts[i]:lstarts[i + 1]]
            parts.append((i, leaves[i].uri, tris[sel], tri_idx[sel], tri_b[sel]))
        futures.append(client.submit(_write_leaf_group, scene_f, used_f, enu_f, parts, props, sch, quantize,
                                     str(out_dir), pure=False))
    seen_textures: set = set()
    for done, st in client.gather(futures):
        for i, lo, hi in done:
            leaves[i].lo, leaves[i].hi = lo, hi
        stats.content_bytes += st.content_bytes
        stats.textures += st.textures  # an image used by several subtrees is embedded (and counted) in each
        for t in st.skipped_textures:
            if t not in seen_textures:
                seen_textures.add(t)
                stats.skipped_textures.append(t)


def _diag(node: _Node) -> float:
    return float(np.linalg.norm(node.hi - node.lo))


def _tile_json(node: _Node) -> dict:
    if node.items is not None:
        return {"boundingVolume": {"box": box_from_bounds(node.lo, node.hi)}, "geometricError": 0.0,
                "refine": "ADD", "content": {"uri": node.uri, "boundingVolume": {"box": box_from_bounds(node.lo, node.hi)}}}
    kids = [_tile_json(c) for c in node.children]
    node.lo = np.min([c.lo for c in node.children], axis=0)
    node.hi = np.max([c.hi for c in node.children], axis=0)
    # half the xy diagonal: the size of what this tile leaves out; never below a child's error
    ge = max(float(np.linalg.norm((node.hi - node.lo)[:2])) / 2, max(k["geometricError"] for k in kids) * 1.5, 1.0)
    pad = 0.02  # a parent's box is its children's union plus a little more than their own padding
    return {"boundingVolume": {"box": box_from_bounds(node.lo, node.hi, pad=pad)}, "geometricError": ge,
            "refine": "ADD", "children": kids}


def _group_of_triangles(scene: Scene, tri_global: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """Primitive group per triangle: textures, CityGML materials, then semantic classes."""
    tex = scene.triangle_texture[tri_global].astype(np.int64)
    mat = scene.triangle_material[tri_global].astype(np.int64)
    sem = _SURFACE_CLASS_CODE[scene.triangle_surface_type[tri_global]]
    key = np.where(tex >= 0, tex, np.where(mat >= 0, (1 << 32) + mat, (2 << 32) + sem))
    ukeys, inv = np.unique(key, return_inverse=True)
    groups = []
    for k in ukeys:
        k = int(k)
        if k < (1 << 32):
            groups.append(("texture", k))
        elif k < (2 << 32):
            groups.append(("material", k - (1 << 32)))
        else:
            groups.append(("semantic", k - (2 << 32)))
    return inv, groups


def _load_image(scene: Scene, tex_id: int, cache: dict, stats: BuildingTilesStats) -> tuple[bytes, str] | None:
    if tex_id in cache:
        return cache[tex_id]
    row = scene.textures.iloc[tex_id]
    path = row.get("image_path")
    result = None
    if isinstance(path, str) and path and Path(path).is_file():
        ext = Path(path).suffix.lower()
        if ext in _IMAGE_MIME:
            result = (Path(path).read_bytes(), _IMAGE_MIME[ext])
        else:
            try:  # other formats (TIFF, GIF, BMP): convert when Pillow is available
                import io

                from PIL import Image

                buf = io.BytesIO()
                Image.open(path).convert("RGBA").save(buf, "PNG")
                result = (buf.getvalue(), "image/png")
            except Exception:  # noqa: BLE001 - any decoder failure means: draw untextured
                result = None
    if result is None:
        stats.skipped_textures.append(str(row.get("image_uri")))
    else:
        stats.textures += 1
    cache[tex_id] = result
    return result


def _tile_glb(scene: Scene, used: np.ndarray, enu: np.ndarray, tris: np.ndarray, tri_global: np.ndarray, tri_b: np.ndarray,
              props: list[Property], sch: dict, quantize: bool, images: dict,
              stats: BuildingTilesStats) -> tuple[bytes, np.ndarray, np.ndarray]:
    """One leaf's glb; returns (bytes, lo, hi) of its ENU content extent."""
    bld, tri_f = np.unique(tri_b, return_inverse=True)         # tile-local feature id per triangle
    nf = len(bld)
    # a vertex is (scene vertex, feature): split vertices shared by two buildings
    key = np.repeat(tri_f, 3) + nf * tris.reshape(-1).astype(np.int64)
    ukey, inv = np.unique(key, return_inverse=True)
    local_tris = inv.reshape(-1, 3)
    vsrc = ukey // nf
    vfeat = (ukey % nf).astype(np.float32)
    pos = enu[vsrc]
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    # area-weighted vertex normals (vertices are per polygon ring, so these are the face normals)
    p = pos[local_tris]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    vn = np.zeros_like(pos)
    for k in range(3):
        for a in range(3):
            vn[:, a] += np.bincount(local_tris[:, k], weights=fn[:, a], minlength=len(pos))
    ln = np.linalg.norm(vn, axis=1, keepdims=True)
    vn = np.where(ln > 0, vn / np.where(ln > 0, ln, 1), np.array([0.0, 0.0, 1.0]))
    # ENU z-up -> glTF y-up
    g = np.column_stack([pos[:, 0], pos[:, 2], -pos[:, 1]])
    gn = np.column_stack([vn[:, 0], vn[:, 2], -vn[:, 1]])

    b = GlbBuilder()
    node: dict = {"mesh": 0}
    if quantize:
        glo, ghi = g.min(axis=0), g.max(axis=0)
        scale = np.maximum(ghi - glo, 1e-6) / 65535.0
        q = np.round((g - glo) / scale).astype(np.uint16)
        pos_acc = b.add_accessor(q, "VEC3", minmax=True)
        nrm_acc = b.add_accessor(np.round(gn * 127).astype(np.int8), "VEC3", normalized=True)
        node["translation"] = [float(v) for v in glo]
        node["scale"] = [float(v) for v in scale]
        b.use_extension("KHR_mesh_quantization", required=True)
    else:
        centre = (g.min(axis=0) + g.max(axis=0)) / 2
        pos_acc = b.add_accessor((g - centre).astype(np.float32), "VEC3", minmax=True)
        nrm_acc = b.add_accessor(gn.astype(np.float32), "VEC3")
        node["translation"] = [float(v) for v in centre]
    fid_acc = b.add_accessor(vfeat, "SCALAR")
    attributes = {"POSITION": pos_acc, "NORMAL": nrm_acc, "_FEATURE_ID_0": fid_acc}
    uv_acc = None

    ginv, groups = _group_of_triangles(scene, tri_global)
    primitives = []
    feature_ext = {"featureIds": [{"featureCount": int(nf), "attribute": 0, "propertyTable": 0}]}
    for gi, (kind, ident) in enumerate(groups):
        tsel = local_tris[ginv == gi]
        material: dict = {"pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.9},
                          "doubleSided": True}
        attrs = dict(attributes)
        if kind == "texture":
            img = _load_image(scene, ident, images, stats)
            if img is None:
                kind, ident = "semantic", _SURFACE_CODE[_OTHER]
            else:
                if uv_acc is None:
                    uv = scene.uv[used[vsrc]]
                    uv = np.where(np.isfinite(uv), uv, 0.0).astype(np.float32)
                    uv[:, 1] = 1.0 - uv[:, 1]     # CityGML: origin bottom-left; glTF: top-left
                    uv_acc = b.add_accessor(uv, "VEC2")
                attrs["TEXCOORD_0"] = uv_acc
                wrap = _WRAP.get(str(scene.textures.iloc[ident].get("wrap_mode") or "wrap").lower(), 10497)
                sampler = b.add("samplers", {"magFilter": 9729, "minFilter": 9987, "wrapS": wrap, "wrapT": wrap})
                tex = b.add("textures", {"source": b.add_image(*img), "sampler": sampler})
                material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": tex}
                material["name"] = f"texture {scene.textures.iloc[ident].get('image_uri')}"
        if kind == "material":
            m = scene.materials.iloc[ident]
            rgb = [m.get("diffuse_r"), m.get("diffuse_g"), m.get("diffuse_b")]
            rgb = [float(v) if pd.notna(v) else 0.8 for v in rgb]
            alpha = 1.0 - float(m.get("transparency")) if pd.notna(m.get("transparency")) else 1.0
            material["pbrMetallicRoughness"]["baseColorFactor"] = [*rgb, alpha]
            if alpha < 1.0:
                material["alphaMode"] = "BLEND"
            material["name"] = f"material {m.get('gml_id')}"
        elif kind == "semantic":
            name = {v: k for k, v in _SURFACE_CODE.items()}[ident]
            material["pbrMetallicRoughness"]["baseColorFactor"] = list(_SEMANTIC_COLOUR[name])
            material["name"] = name
        mi = b.add("materials", material)
        idx_dtype = np.uint16 if len(pos) < 65535 else np.uint32
        ind = b.add_accessor(tsel.reshape(-1).astype(idx_dtype), "SCALAR", target=ELEMENT_ARRAY_BUFFER)
        primitives.append({"attributes": attrs, "indices": ind, "material": mi, "mode": 4,
                           "extensions": {"EXT_mesh_features": feature_ext}})
    b.add("meshes", {"primitives": primitives})
    b.add("nodes", node)
    b.gltf["scenes"] = [{"nodes": [0]}]
    b.gltf["scene"] = 0
    table = encode_property_table(b, props, bld)
    b.gltf.setdefault("extensions", {})["EXT_structural_metadata"] = {"schema": sch, "propertyTables": [table]}
    b.use_extension("EXT_mesh_features")
    b.use_extension("EXT_structural_metadata")
    return b.to_bytes(), lo, hi
